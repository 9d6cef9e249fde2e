/*
 * The broadcast ring, publishing side (ring_bcast.h describes the protocol):
 * claiming room under the head, retiring the oldest records (drop) or
 * waiting for the slowest subscriber (block), committing; and the channel's
 * life on the ring: joining, leaving (the last peer out removes the name),
 * statistics.
 */
#include "shm/ring_bcast.h"

#include "shm/ring_bell.h"
#include "shm/ring_ops.h"
#include "shm/ring_peer.h"

#include <sched.h>

/* ---- the head ------------------------------------------------------------------------- */

int ipcx__bcast_own_head(struct ring *r, uint64_t *hp)
{
	uint64_t hw = atomic_load_explicit(&r->h->head, ACQ);
	for (;;) {
		if (hw & 0xff)
			return -EBUSY;
		if (atomic_compare_exchange_weak(&r->h->head, &hw, hw | (uint64_t)(r->me + 1)))
			break;
	}
	*hp = hw >> 8;
	return 0;
}

void ipcx__bcast_free_head(struct ring *r, uint64_t hp)
{
	atomic_store_explicit(&r->h->head, hp << 8, REL);
}

int ipcx__bcast_min_cursor(struct ring *r, uint64_t rl, uint64_t hp, uint64_t *ret)
{
	uint64_t m = hp;
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		if (!atomic_load_explicit(&pe->sub, ACQ))
			continue;
		uint64_t c = atomic_load_explicit(&pe->cursor, ACQ);
		if (c < rl || c > hp)
			return ipcx__fail(-EBADMSG, "broadcast ring: subscriber %u's cursor is out of range",
					  k);
		if (c < m)
			m = c;
	}
	*ret = m;
	return 0;
}

/* ---- room ------------------------------------------------------------------------------ */

/*
 * Drop: retire the oldest records until [.., end) fits, marking each one
 * RELEASED before its cells are written again.  -EBUSY: the oldest is still
 * being written by another publisher (or one that died: repair).
 */
static int retire(struct ring *r, uint64_t hp, uint64_t end)
{
	uint64_t rl = atomic_load_explicit(&r->h->rel, RELAXED);
	for (uint64_t i = 0; end - rl > r->ncells; i++) {
		uint64_t s = atomic_load_explicit(seqw(r, rl), ACQ);
		unsigned tag = SEQTAG(s);
		uint32_t len;
		uint64_t c;
		enum kind k;
		if (SEQPOS(s) == rl && (tag & T_OWNED) == T_CLAIMED)
			return -EBUSY;
		if (i > r->ncells || !bc_readable(s, rl) ||
		    bc_decode(r, rl, atomic_load_explicit(metaw(r, rl), RELAXED), &len, &c, &k) < 0 ||
		    rl + c > hp)
			return ipcx__fail(-EBADMSG, "broadcast ring: bad record at %llu",
					  (unsigned long long)rl);
		/*
		 * rel first, then the mark (release): a subscriber that sees the
		 * mark also sees rel past the record, and jumps there.
		 */
		atomic_store_explicit(&r->h->rel, rl + c, RELAXED);
		atomic_store_explicit(seqw(r, rl), SEQ(rl, T_RELEASED), REL);
		rl += c;
	}
	/* Every record retired is marked before any of its cells is written. */
	atomic_thread_fence(memory_order_release);
	return 0;
}

/* Block: move rel up to the slowest live subscriber; -EAGAIN if still no room. */
static int wait_room(struct ring *r, uint64_t rl, uint64_t hp, uint64_t end)
{
	uint64_t m;
	int e = ipcx__bcast_min_cursor(r, rl, hp, &m);
	if (e)
		return e;
	if (m > rl)
		atomic_store_explicit(&r->h->rel, m, REL);
	return end - m > r->ncells ? -EAGAIN : 0;
}

/*
 * Claim a record for len bytes: 0 and its position and cells (CLAIMED by
 * us, the head past it, its number written), -EBUSY (another owns the
 * head, or a publisher is still writing the record to retire), -EAGAIN
 * (block: no room), -EBADMSG.
 */
static int claim(struct ring *r, uint32_t len, uint64_t *pos, uint64_t *cellsp)
{
	uint64_t cells = bc_cells(len), hp;
	int e = ipcx__bcast_own_head(r, &hp);
	if (e)
		return e;
	uint64_t c = hp & r->mask, start = hp, pad = 0;
	if (c + cells > r->ncells) {
		pad = r->ncells - c; /* a record never wraps: skip to the next lap */
		start = hp + pad;
	}
	uint64_t end = start + cells, rl = atomic_load_explicit(&r->h->rel, ACQ);
	if (rl > hp || hp - rl > r->ncells)
		e = ipcx__fail(-EBADMSG, "broadcast ring: indices out of order");
	else if (end - rl > r->ncells)
		e = r->policy == RING_DROP ? retire(r, hp, end) : wait_room(r, rl, hp, end);
	if (e) {
		ipcx__bcast_free_head(r, hp);
		return e;
	}
	uint64_t n = atomic_load_explicit(&r->h->next_no, RELAXED);
	unsigned tag = T_CLAIMED | (unsigned)r->me;
	if (pad) {
		bc_set_no(r, hp, n);
		atomic_store_explicit(metaw(r, hp), pad << 32 | M_PAD, RELAXED);
		atomic_store_explicit(seqw(r, hp), SEQ(hp, tag), REL);
	}
	bc_set_no(r, start, n);
	atomic_store_explicit(metaw(r, start), cells << 32 | len, RELAXED);
	atomic_store_explicit(seqw(r, start), SEQ(start, tag), REL);
	atomic_store_explicit(&r->h->next_no, n + 1, REL);
	atomic_store_explicit(&r->h->head, end << 8, REL);
	if (pad)
		atomic_store_explicit(seqw(r, hp), SEQ(hp, T_COMMITTED), REL);
	*pos = start;
	*cellsp = cells;
	return 0;
}

/* Publish a claimed record: count it, then COMMITTED (ring_int.h, "Counting"). */
static void commit(struct ring *r, uint64_t pos, uint32_t len, uint64_t cells)
{
	struct ring_peer *pe = me_peer(r);
	atomic_store_explicit(metaw(r, pos), cells << 32 | len, RELAXED);
	bump(&pe->tx);
	publish(seqw(r, pos), SEQ(pos, T_COMMITTED));
	snap(&pe->tx, &pe->tx_snap);
	notify_rx(r); /* once per sleep (ring_bell.h) */
}

static int claim_wait(struct ring *r, uint32_t len, int timeout_ms, uint64_t *pos,
		      uint64_t *cells)
{
	struct wait w = { 0 };
	for (;;) {
		int rc = claim(r, len, pos, cells);
		if (rc != -EAGAIN && rc != -EBUSY)
			return rc;
		rc = ring_wait(r, &w, timeout_ms, false, rc == -EBUSY, bc_cells(len));
		if (rc)
			return rc;
	}
}

static int ready_to_send(const struct ring *r, size_t len)
{
	if (r->me < 0)
		return -EBADF;
	if (r->reserved || r->peeked)
		return ipcx__fail(-EBUSY, "a reserved or peeked message is not finished");
	return len > r->max_msg ? -EMSGSIZE : 0;
}

ssize_t ipcx__bcast_send(struct ring *r, const void *msg, size_t len, int timeout_ms)
{
	uint64_t pos, cells;
	int e = ready_to_send(r, len);
	if (!e)
		e = claim_wait(r, (uint32_t)len, timeout_ms, &pos, &cells);
	if (e)
		return e;
	if (len <= RING_CELL - BCAST_HDR)
		copy_small(bc_payload(r, pos), msg, len);
	else
		memcpy(bc_payload(r, pos), msg, len);
	commit(r, pos, (uint32_t)len, cells);
	return (ssize_t)len;
}

int ipcx__bcast_reserve(struct ring *r, size_t len, int timeout_ms, void **slot)
{
	uint64_t pos, cells;
	int e = ready_to_send(r, len);
	if (!e)
		e = claim_wait(r, (uint32_t)len, timeout_ms, &pos, &cells);
	if (e)
		return e;
	r->reserved = true;
	r->res_pos = pos;
	r->res_cells = (uint32_t)cells;
	*slot = bc_payload(r, pos);
	return 0;
}

int ipcx__bcast_commit(struct ring *r, size_t len)
{
	if (!r->reserved)
		return ipcx__fail(-EINVAL, "commit without reserve");
	if (bc_cells(len) > r->res_cells || len > r->max_msg)
		return ipcx__fail(-EMSGSIZE, "commit: %zu bytes is more than reserved", len);
	r->reserved = false;
	commit(r, r->res_pos, (uint32_t)len, r->res_cells);
	return 0;
}

bool ipcx__bcast_has_room(struct ring *r, uint64_t cells)
{
	uint64_t hw = atomic_load(&r->h->head), hp = hw >> 8, rl = atomic_load(&r->h->rel), m;
	if (hw & 0xff)
		return false;
	if (r->policy == RING_DROP)
		return true; /* a publisher never waits for subscribers; only for a claim */
	/* Worst case with the pad to the end of the lap. */
	return ipcx__bcast_min_cursor(r, rl, hp, &m) == 0 && hp + 2 * cells - m <= r->ncells;
}

void ipcx__bcast_detach(struct ring *r)
{
	if (r->reserved) {
		/*
		 * Its number was taken: subscribers will count it lost, so it is
		 * counted published (as a killed publisher's record would be).
		 */
		struct ring_peer *pe = me_peer(r);
		bump(&pe->tx);
		snap(&pe->tx, &pe->tx_snap);
		publish(seqw(r, r->res_pos), SEQ(r->res_pos, T_LOST));
		notify_rx(r);
		r->reserved = false;
	}
	r->peeked = false; /* neither received nor lost: the subscription ends with it */
	r->bv_n = 0;
	if (r->bc_sub && r->me >= 0) {
		atomic_store_explicit(&me_peer(r)->sub, 0, REL);
		r->bc_sub = false;
		notify_tx(r);
	}
}

/* ---- life on the ring ------------------------------------------------------------------ */

/*
 * The ring's name belongs to all its peers: the last one out removes it (a
 * publisher or subscriber that came and went leaves nothing behind, and one
 * that is still there keeps the ring reachable).  h->life is 0, a slot + 1
 * while that peer decides whether it is the last, or LIFE_GONE once it is.
 * A leaver announces itself and then looks at the slots; a joiner takes a
 * slot and then looks at life (both seq_cst): one of them sees the other,
 * so a ring is never removed under a peer that has just joined.
 */
#define LIFE_GONE 0xffffffffu

/*
 * A leaver that died deciding, or a mark that no leaver keeps for long (a
 * decision takes microseconds; a second means a scribbled word): take it
 * off.  False: a live one is deciding, wait.
 */
static bool life_settle(struct ring *r, uint32_t v, int64_t since)
{
	if (v - 1 < RING_PEERS && ipcx__ring_peer_alive(r, v - 1) &&
	    ipcx__now_ns() - since < 1000000000)
		return false;
	atomic_compare_exchange_strong(&r->h->life, &v, 0);
	return true;
}

static int life_join(struct ring *r)
{
	int64_t since = ipcx__now_ns();
	for (;;) {
		uint32_t v = atomic_load(&r->h->life);
		if (v == 0)
			return 0;
		if (v == LIFE_GONE)
			return ipcx__fail(-ECONNREFUSED, "broadcast ring: its last peer is removing it");
		if (!life_settle(r, v, since))
			sched_yield();
	}
}

bool ipcx__bcast_leave(struct ring *r)
{
	if (r->me < 0 || atomic_load(&r->h->kept))
		return false;
	uint32_t v, mine = (uint32_t)r->me + 1;
	int64_t since = ipcx__now_ns();
	for (;;) {
		v = atomic_load(&r->h->life);
		if (v == LIFE_GONE)
			return false;
		if (v == 0 && atomic_compare_exchange_strong(&r->h->life, &v, mine))
			break;
		if (v != 0 && !life_settle(r, v, since))
			sched_yield();
	}
	bool others = false;
	for (unsigned k = 0; k < RING_PEERS && !others; k++)
		others = (int)k != r->me && atomic_load(&r->h->peers[k].pid) &&
			 ipcx__ring_peer_alive(r, k);
	atomic_store(&r->h->life, others ? 0 : LIFE_GONE);
	return !others;
}

int ipcx__bcast_open(struct ring *r, const struct ring_geom *g)
{
	int e = life_join(r);
	if (e == 0 && (g->sub || g->history))
		e = ipcx__bcast_subscribe(r, g->history);
	return e;
}

/* ---- counters ------------------------------------------------------------------------- */

static uint64_t lag_of(uint64_t next, uint64_t passed)
{
	return next > passed ? next - passed : 0;
}

/*
 * sent: messages published, by everyone.  A subscribed channel's own
 * received, lost (dropped) and lag (depth); otherwise those of every live
 * subscriber: sums, and the largest lag.  r may be a copy of the header
 * alone (ipcx ls reads it from outside).
 */
int ipcx__bcast_stats(struct ring *r, uint64_t out[5])
{
	uint64_t next = atomic_load(&r->h->next_no), sent = atomic_load(&r->h->sent);
	uint64_t recvd = 0, lost = 0, lag = 0, peers = 0;
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		sent += atomic_load(&pe->tx);
		bool alive = ipcx__ring_peer_alive(r, k);
		peers += alive;
		if (!alive || !atomic_load(&pe->sub) || (r->bc_sub && (int)k != r->me))
			continue;
		uint64_t rx = atomic_load(&pe->rx), dr = atomic_load(&pe->dr);
		uint64_t l = lag_of(next, atomic_load(&pe->base) + rx + dr);
		recvd += rx;
		lost += dr;
		lag = l > lag ? l : lag;
	}
	if (r->bc_sub)
		lag = lag_of(next, r->bc_no);
	out[0] = sent;
	out[1] = recvd;
	out[2] = lost;
	out[3] = lag;
	out[4] = peers;
	return 0;
}

ssize_t ipcx__bcast_subscribers(struct ring *r, struct ipcx_subscriber *buf, size_t n)
{
	uint64_t next = atomic_load(&r->h->next_no);
	size_t count = 0;
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		if (!atomic_load(&pe->sub) || !ipcx__ring_peer_alive(r, k))
			continue;
		if (count < n) {
			uint64_t rx = atomic_load(&pe->rx), dr = atomic_load(&pe->dr);
			buf[count] = (struct ipcx_subscriber){
				.pid = (pid_t)atomic_load(&pe->pid),
				.received = rx,
				.lost = dr,
				.lag = lag_of(next, atomic_load(&pe->base) + rx + dr),
			};
		}
		count++;
	}
	return (ssize_t)count;
}
