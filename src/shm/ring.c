/*
 * The ring's operations over either protocol: send and receive (past their
 * SPSC fast paths, ring_spsc.c), reserve and commit, peek and release, and
 * statistics (reading ahead without taking is ring_ahead.c).  Each claims or takes a record through its protocol
 * (ring_mpmc.h, ring_spsc.h), waiting as it must (ring_wait.h), and answers
 * the questions a wait asks of the protocol (ring_ops.h).  ring_int.h
 * describes the ring and lists its files.
 */
#include "shm/ring_ops.h"

#include "shm/ring_bcast.h"
#include "shm/ring_bell.h"
#include "shm/ring_mpmc.h"
#include "shm/ring_peer.h"
#include "shm/ring_spsc.h"
#include "shm/ring_wait.h"

#include <sys/mman.h>

#ifdef IPCX_CRASHPOINTS
int ipcx__crash_point = -1;
unsigned ipcx__crash_after;
#endif

/* ---- commit and release ---------------------------------------------------------------- */

COLD void ipcx__ring_sync_now(struct ring *r)
{
	r->batch = 0;
	msync(r->h, r->size, MS_SYNC);
}

HOT void commit_at(struct ring *r, uint64_t pos, uint32_t len, uint64_t cells, uint64_t pad)
{
	if (r->flags & RING_F_CRC)
		atomic_store_explicit(&r->crc[pos & r->mask], record_crc(r, pos, len), RELAXED);
	if (r->flags & RING_F_SPSC)
		spsc_commit(r, pos, len, cells, pad);
	else
		mpmc_commit(r, pos, len, cells);
	durable(r, false);
	notify_rx(r);
}

HOT void release_msg(struct ring *r, uint64_t pos, uint64_t cells)
{
	if (r->flags & RING_F_SPSC) {
		spsc_release(r, pos, cells);
		notify_tx(r);
	} else {
		mpmc_release(r, pos);
	}
	durable(r, false);
}

/* ---- what a wait asks ------------------------------------------------------------------ */

bool ipcx__ring_has_msg(struct ring *r)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_has_msg(r);
	uint64_t t = tail_pos(r);
	uint64_t s = atomic_load(seqw(r, t));
	return s == SEQ(t, T_COMMITTED) || s == SEQ(t, T_LOST);
}

bool ipcx__ring_others_behind(struct ring *r)
{
	return (r->flags & RING_F_BCAST) && ipcx__bcast_others_behind(r);
}

bool ipcx__ring_has_room(struct ring *r, uint64_t cells)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_has_room(r, cells);
	uint64_t hw = atomic_load(&r->h->head);
	uint64_t rl = atomic_load(&r->h->rel);
	/* Worst case with the pad to the end of the lap; an MPMC head's tag: a claim. */
	bool claiming = !(r->flags & RING_F_SPSC) && (hw & 0xff);
	return !claiming && (hw >> 8) + 2 * cells <= rl + r->ncells;
}

/*
 * rel <= tail <= head <= rel + ncells, and the record at the tail is where
 * the head says one is.
 */
int ipcx__ring_check_indices(struct ring *r)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_check_indices(r);
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rl = atomic_load(&r->h->rel), tw = atomic_load(&r->h->tail), t = tw >> 8;
		uint64_t hw = atomic_load(&r->h->head), hd = hw >> 8;
		uint64_t s = atomic_load(seqw(r, t));
		/*
		 * The words only grow: if each reads the same twice, there was an
		 * instant when all of them held these values together.
		 */
		if (atomic_load(&r->h->rel) != rl || atomic_load(&r->h->tail) != tw ||
		    atomic_load(&r->h->head) != hw || atomic_load(seqw(r, t)) != s)
			continue;
		bool ok = rl <= t;
		if (r->flags & RING_F_SPSC) /* the head moves after the commit: tail may pass it */
			ok = ok && (hd >= rl ? hd - rl <= r->ncells : rl - hd <= r->ncells);
		else
			ok = ok && (hw & 0xff) <= RING_PEERS && (tw & 0xff) == 0 && t <= hd &&
			     hd - rl <= r->ncells && (hd == t || SEQPOS(s) == t);
		return ok ? 0 : ipcx__fail(-EBADMSG, "ring: indices out of order");
	}
	return 0; /* never still: a busy ring, not a broken one */
}

/* ---- claiming and taking, with waiting ------------------------------------------------- */

/* Claim room, waiting as the policy says; 1 means the message was dropped. */
static int claim_wait(struct ring *r, uint32_t len, int timeout_ms, uint64_t *pos,
		      uint64_t *cells, uint64_t *pad)
{
	struct wait w = { 0 };
	for (;;) {
		int rc;
		*pad = 0;
		if (r->flags & RING_F_SPSC)
			rc = spsc_claim(r, len, pos, cells, pad);
		else
			rc = mpmc_claim(r, len, pos, cells);
		if (rc == 0)
			return 0;
		if (rc == -EAGAIN && r->policy == RING_DROP) {
			bump(&me_peer(r)->pd); /* one store: sent and dropped at once */
			return 1;
		}
		if (rc == -EAGAIN && r->policy == RING_OVERWRITE) {
			uint64_t p, c;
			uint32_t l;
			int t = ipcx__ring_mpmc_take(r, SIZE_MAX, false, &p, &l, &c);
			if (t == 0) {
				drop_taken(r, p);
				continue;
			}
			if (t != -EAGAIN && t != -EBUSY)
				return t;
			rc = -EBUSY; /* a consumer is slow to release: wait */
		}
		if (rc != -EAGAIN && rc != -EBUSY)
			return rc;
		rc = ring_wait(r, &w, timeout_ms, false, rc == -EBUSY, ring_cells_for(len));
		if (rc)
			return rc;
	}
}

static int take_wait(struct ring *r, size_t cap, int timeout_ms, uint64_t *pos, uint32_t *len,
		     uint64_t *cells)
{
	struct wait w = { 0 };
	for (;;) {
		int rc = r->flags & RING_F_SPSC ? spsc_take(r, cap, pos, len, cells)
						: ipcx__ring_mpmc_take(r, cap, false, pos, len, cells);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN && rc != -EBUSY)
			return rc;
		rc = ring_wait(r, &w, timeout_ms, true, rc == -EBUSY, 0);
		if (rc) {
			if (r->bell >= 0)
				ipcx__ring_rearm(r);
			return rc;
		}
	}
}

/* ---- the operations -------------------------------------------------------------------- */

/*
 * Sending into a ring where nobody else is attached any more: -EPIPE.  The
 * check costs system calls, so it is made on one send in 1024 (and when a
 * send has to wait): a sender learns of a dead receiver within that many.
 */
HOT int send_check(struct ring *r)
{
	/*
	 * Threads may share a channel: a plain load and store (no locked
	 * instruction on the fast path), so a count may be lost, never more.
	 */
	uint32_t n = atomic_load_explicit(&r->nsend, RELAXED) + 1;
	atomic_store_explicit(&r->nsend, n, RELAXED);
	if (r->persistent || (n & 1023) != 0)
		return 0;
	return ipcx__ring_epipe_check(r);
}

SLOW ssize_t ipcx__ring_send_slow(struct ring *r, const void *msg, size_t len, int timeout_ms,
				  bool check)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_send(r, msg, len, timeout_ms);
	int e = free_to_take(r);
	if (!e)
		e = check && !r->persistent ? ipcx__ring_epipe_check(r) : send_check(r);
	if (e)
		return e;
	if (len > r->max_msg)
		return -EMSGSIZE;
	uint64_t pos = 0, cells = 0, pad = 0;
	int rc = claim_wait(r, (uint32_t)len, timeout_ms, &pos, &cells, &pad);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (len)
			memcpy(cell_ptr(r, pos), msg, len);
		commit_at(r, pos, (uint32_t)len, cells, pad);
	}
	return (ssize_t)len;
}

SLOW ssize_t ipcx__ring_notified(struct ring *r, bool rx, ssize_t n)
{
	if (rx)
		notify_rx(r);
	else
		notify_tx(r);
	return n;
}

SLOW ssize_t ipcx__ring_recv_slow(struct ring *r, void *buf, size_t cap, int timeout_ms)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_recv(r, buf, cap, timeout_ms);
	int e = free_to_take(r);
	if (e)
		return e;
	mark_receiver(r);
	uint64_t pos = 0, cells = 0;
	uint32_t len = 0;
	int rc = take_wait(r, cap, timeout_ms, &pos, &len, &cells);
	if (rc < 0)
		return rc;
	if (len <= RING_CELL)
		copy_small(buf, cell_ptr(r, pos), len);
	else
		memcpy(buf, cell_ptr(r, pos), len);
	release_msg(r, pos, cells);
	after_take(r);
	return len;
}

int ipcx__ring_reserve(struct ring *r, size_t len, int timeout_ms, void **slot)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_reserve(r, len, timeout_ms, slot);
	int e = free_to_take(r);
	if (e)
		return e;
	if (len > r->max_msg)
		return -EMSGSIZE;
	uint64_t pos, cells, pad;
	int rc = claim_wait(r, (uint32_t)len, timeout_ms, &pos, &cells, &pad);
	/*
	 * policy=drop and no room: the message the caller was about to write
	 * is dropped and counted (sent and dropped) as a send's would be, and
	 * the caller learns it.  Only a full ring drops: waiting for another
	 * producer's claim to finish is not.
	 */
	if (rc == 1)
		return -ENOBUFS;
	if (rc < 0)
		return rc;
	r->reserved = true;
	r->res_pos = pos;
	r->res_cells = (uint32_t)cells;
	r->res_pad = pad;
	*slot = cell_ptr(r, pos);
	return 0;
}

int ipcx__ring_commit(struct ring *r, size_t len)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_commit(r, len);
	if (!r->reserved)
		return ipcx__fail(-EINVAL, "commit without reserve");
	if (len > (uint64_t)r->res_cells * RING_CELL || len > r->max_msg)
		return ipcx__fail(-EMSGSIZE, "commit: %zu bytes is more than reserved", len);
	r->reserved = false;
	commit_at(r, r->res_pos, (uint32_t)len, r->res_cells, r->res_pad);
	return 0;
}

ssize_t ipcx__ring_peek(struct ring *r, int timeout_ms, const void **msg)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_peek(r, timeout_ms, msg);
	int e = free_to_take(r);
	if (e)
		return e;
	mark_receiver(r);
	uint64_t pos, cells;
	uint32_t len;
	int rc = take_wait(r, SIZE_MAX, timeout_ms, &pos, &len, &cells);
	if (rc < 0)
		return rc;
	r->peeked = true;
	r->peek_pos = pos;
	r->peek_cells = cells;
	*msg = cell_ptr(r, pos);
	return len;
}

int ipcx__ring_release(struct ring *r)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_release(r);
	if (!r->peeked)
		return ipcx__fail(-EINVAL, "release without peek");
	r->peeked = false;
	release_msg(r, r->peek_pos, r->peek_cells);
	after_take(r);
	return 0;
}

ssize_t ipcx__ring_peekv(struct ring *r, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	if (!(r->flags & RING_F_BCAST))
		return ipcx__fail(-EOPNOTSUPP, "batches in place are for broadcast rings "
					       "(fanout=1); ipcx_peek takes one");
	return ipcx__bcast_peekv(r, msgs, n, timeout_ms);
}

ssize_t ipcx__ring_releasev(struct ring *r, size_t n)
{
	if (!(r->flags & RING_F_BCAST))
		return ipcx__fail(-EOPNOTSUPP, "batches in place are for broadcast rings "
					       "(fanout=1); ipcx_release lets go of one");
	return ipcx__bcast_releasev(r, n);
}

/*
 * The header's counters plus every slot's.  r may be a copy of the header
 * alone (ipcx ls reads it from outside: no cells, no flags): then an SPSC
 * message committed by a producer killed before it counted it is missing
 * until the next producer adopts the ring.
 */
int ipcx__ring_stats(struct ring *r, uint64_t out[6])
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_stats(r, out);
	uint64_t sent = atomic_load(&r->h->sent), recvd = atomic_load(&r->h->received);
	uint64_t dropped = atomic_load(&r->h->dropped);
	if ((r->flags & RING_F_SPSC) && r->cell) {
		uint64_t hw;
		sent = ipcx__ring_spsc_settle_tx(r, &hw);
	}
	uint64_t peers = 0, receivers = 0;
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		uint64_t pd = atomic_load(&pe->pd);
		sent += atomic_load(&pe->tx) + pd;
		recvd += atomic_load(&pe->rx);
		dropped += atomic_load(&pe->dr) + pd;
		bool alive = ipcx__ring_peer_alive(r, k);
		peers += alive;
		receivers += alive && atomic_load(&pe->receiver);
	}
	uint64_t depth = sent >= recvd + dropped ? sent - recvd - dropped : 0;
	out[0] = sent;
	out[1] = recvd;
	out[2] = dropped;
	out[3] = depth > r->ncells ? r->ncells : depth;
	out[4] = peers;
	out[5] = receivers;
	return 0;
}
