/*
 * Crash repair: finish or undo the step a dead peer was in (ring_repair.h),
 * and the recovery of a persistent ring that nobody else has open.
 */
#include "shm/ring_repair.h"

#include "shm/ring_bcast.h"
#include "shm/ring_bell.h"
#include "shm/ring_mpmc.h"
#include "shm/ring_peer.h"
#include "shm/ring_spsc.h"

/* A dead peer's counter, from its snapshot to one more, at most once. */
static void count_for_dead(_Atomic uint64_t *c, uint64_t at)
{
	atomic_compare_exchange_strong(c, &at, at + 1);
}

static void fix_head(struct ring *r)
{
	uint64_t hw = atomic_load(&r->h->head);
	unsigned owner = (unsigned)(hw & 0xff);
	if (owner && owner <= RING_PEERS && !ipcx__ring_peer_alive(r, owner - 1))
		atomic_compare_exchange_strong(&r->h->head, &hw, hw & ~0xffull);
}

static void fix_free(struct ring *r, uint64_t pos, uint64_t s)
{
	if (atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, T_RELEASED)))
		ipcx__ring_advance_rel(r);
}

/* A dead consumer's record (READING or SKIPPING). */
static void fix_reading(struct ring *r, uint64_t pos, uint64_t s, enum kind k,
			struct ring_peer *pe, const uint64_t v[6])
{
	uint64_t rx = v[2], rxs = v[3], dr = v[4], drs = v[5];
	bool skipping = (SEQTAG(s) & T_OWNED) == T_SKIPPING;
	if (!skipping && (rx == rxs + 1 || dr == drs + 1)) {
		fix_free(r, pos, s); /* delivered or dropped, and counted: free it */
	} else if (tail_pos(r) == pos) {
		/* It never moved the tail: nobody has the record; give it back. */
		uint64_t back = skipping && k == K_MSG ? T_LOST : T_COMMITTED;
		atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, back));
	} else if (skipping || k == K_PAD) {
		fix_free(r, pos, s); /* nothing to count */
	} else {
		/* It had the message and died with it: lost in flight, counted. */
		count_for_dead(&pe->dr, drs);
		CRASH(CP_FIX_DR);
		fix_free(r, pos, s);
	}
}

/* A dead producer's record (CLAIMED). */
static void fix_claimed(struct ring *r, uint64_t pos, uint64_t s, enum kind k,
			struct ring_peer *pe, const uint64_t v[6])
{
	uint64_t tx = v[0], txs = v[1], dr = v[4], drs = v[5];
	if (pos >= atomic_load(&r->h->head) >> 8) {
		/* It died before moving the head: the claim never happened. */
		atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, 0));
		return;
	}
	if (k == K_MSG && (tx != txs + 1 || dr != drs)) {
		/*
		 * It died before it counted the message (or a repairer already
		 * decided so: dr moved): the message is lost, sent and dropped.
		 */
		count_for_dead(&pe->dr, drs);
		CRASH(CP_FIX_DR);
		count_for_dead(&pe->tx, txs);
		CRASH(CP_FIX_TX);
		atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, T_LOST));
	} else if (atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, T_COMMITTED))) {
		notify_rx(r); /* a pad, or a whole message it counted: publish it */
	}
}

/*
 * The record at pos names peer k, which is dead: finish or undo its step.
 * The dead peer's counters are read, then the record again: while the
 * record still names k its slot has not been reused (ipcx__ring_sweep_dead()
 * fixes a peer's records before its slot is taken), so the counters were
 * its own.
 */
static void fix_record(struct ring *r, uint64_t pos, uint64_t s)
{
	unsigned k = SEQTAG(s) & T_PEER;
	uint32_t len;
	uint64_t c;
	enum kind kd;
	if (k >= RING_PEERS || meta_decode(r, pos, atomic_load(metaw(r, pos)), &len, &c, &kd) < 0)
		return;
	struct ring_peer *pe = &r->h->peers[k];
	uint64_t v[6] = { atomic_load(&pe->tx), atomic_load(&pe->tx_snap),
			  atomic_load(&pe->rx), atomic_load(&pe->rx_snap),
			  atomic_load(&pe->dr), atomic_load(&pe->dr_snap) };
	if (atomic_load(seqw(r, pos)) != s)
		return;
	if ((SEQTAG(s) & T_OWNED) == T_CLAIMED)
		fix_claimed(r, pos, s, kd, pe, v);
	else
		fix_reading(r, pos, s, kd, pe, v);
}

static bool owned_by_dead(const struct ring *r, uint64_t pos, uint64_t s)
{
	unsigned tag = SEQTAG(s);
	return SEQPOS(s) == pos && (tag & T_OWNED) && !ipcx__ring_peer_alive(r, tag & T_PEER);
}

void ipcx__ring_repair(struct ring *r)
{
	if (r->flags & RING_F_BCAST) {
		ipcx__bcast_repair(r);
		return;
	}
	if (r->flags & RING_F_SPSC)
		return; /* the next producer or consumer adopts what a dead one left */
	fix_head(r);
	uint64_t pos[2] = { tail_pos(r), atomic_load(&r->h->rel) };
	for (int i = 0; i < 2; i++) {
		uint64_t s = atomic_load(seqw(r, pos[i]));
		if (owned_by_dead(r, pos[i], s))
			fix_record(r, pos[i], s);
	}
}

/*
 * One walk from rel to the head (the head's cell included: a claim that
 * never moved the head leaves its record there), fixing every record peer k
 * owns (k < 0: every peer but us).  -EAGAIN: the ring moved under the walk;
 * 1: one is still owned.
 */
static int sweep_walk(struct ring *r, int k)
{
	uint64_t p = atomic_load(&r->h->rel), hd = atomic_load(&r->h->head) >> 8;
	int left = 0;
	for (uint64_t i = 0; i <= r->ncells; i++) {
		uint64_t s = atomic_load(seqw(r, p));
		int owner = (int)(SEQTAG(s) & T_PEER);
		if (SEQPOS(s) == p && (SEQTAG(s) & T_OWNED) && (k < 0 ? owner != r->me : owner == k)) {
			fix_record(r, p, s);
			left |= atomic_load(seqw(r, p)) == s;
		}
		uint32_t len;
		uint64_t c;
		enum kind kd;
		if (p >= hd)
			return left;
		if (SEQPOS(s) != p ||
		    meta_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &kd) < 0)
			return -EAGAIN;
		p += c;
	}
	return -EAGAIN;
}

bool ipcx__ring_sweep_dead(struct ring *r, unsigned k)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_sweep_dead(r, k);
	if (r->flags & RING_F_SPSC)
		return true;
	fix_head(r);
	for (int tries = 0; tries < 8; tries++)
		if (sweep_walk(r, (int)k) == 0)
			return true;
	return false;
}

/* ---- recovery of a persistent ring --------------------------------------------------- */

/*
 * Recovery's first step: every other peer is gone (the caller holds an
 * exclusive lock), so their half-done records are repaired as any dead
 * peer's would be, and their slots emptied, counters carried over into the
 * header.
 */
static void recover_peers(struct ring *r)
{
	struct ring_hdr *h = r->h;
	uint64_t sum[3] = { 0, 0, 0 };
	for (unsigned k = 0; k < RING_PEERS; k++) {
		if ((int)k != r->me) { /* dead to ipcx__ring_peer_alive() from now on */
			atomic_store(&h->peers[k].pid, 0);
			atomic_store(&h->peers[k].start, 0);
		}
	}
	if (r->flags & RING_F_SPSC) {
		ipcx__ring_spsc_adopt_tx(r);
		ipcx__ring_spsc_adopt_rx(r);
	} else {
		fix_head(r);
		(void)sweep_walk(r, -1);
	}
	/* Our own slot's counters are its earlier holders': carried over too. */
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &h->peers[k];
		uint64_t pd = atomic_exchange(&pe->pd, 0);
		sum[0] += atomic_exchange(&pe->tx, 0) + pd;
		sum[1] += atomic_exchange(&pe->rx, 0);
		sum[2] += atomic_exchange(&pe->dr, 0) + pd;
		atomic_store(&pe->tx_snap, 0);
		atomic_store(&pe->rx_snap, 0);
		atomic_store(&pe->dr_snap, 0);
		if ((int)k == r->me)
			continue;
		atomic_store(&pe->poller, 0);
		atomic_store(&pe->armed, 0);
		atomic_store(&pe->owner, 0);
		atomic_store(&pe->receiver, 0);
	}
	atomic_fetch_add(&h->sent, sum[0]);
	atomic_fetch_add(&h->received, sum[1]);
	atomic_fetch_add(&h->dropped, sum[2]);
	atomic_store(&h->pollers, 0);
	atomic_store(&h->rx_waiters, 0);
	atomic_store(&h->tx_waiters, 0);
}

/*
 * Persistent rings only, with nobody else attached (the caller holds an
 * exclusive lock).  Everything before tail was taken; records from tail on
 * are kept while they are whole, and the log is cut at the first one that
 * is not (a writer killed mid-record, or pages lost in a machine crash).
 * What was cut is counted dropped, so the counters still balance.
 */
ssize_t ipcx__ring_recover(struct ring *r)
{
	struct ring_hdr *h = r->h;
	recover_peers(r);
	uint64_t t = tail_pos(r), hd = atomic_load(&h->head) >> 8;
	if (t > hd || hd - t > r->ncells)
		t = hd;
	atomic_store(&h->rel, t);
	ssize_t kept = 0;
	uint64_t p = t;
	while (p < hd) {
		uint32_t len;
		uint64_t c;
		enum kind k;
		uint64_t s = atomic_load(seqw(r, p));
		if (meta_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &k) < 0 ||
		    p + c > hd)
			break;
		if (!(r->flags & RING_F_SPSC)) {
			unsigned tag = SEQTAG(s);
			if (SEQPOS(s) != p)
				break;
			if (tag != T_COMMITTED && tag != T_LOST)
				atomic_store(seqw(r, p), SEQ(p, T_LOST));
			else if (tag == T_COMMITTED && k == K_MSG && check_crc(r, p, len) < 0)
				break;
			kept += tag == T_COMMITTED && k == K_MSG;
		} else {
			if (k == K_MSG && check_crc(r, p, len) < 0)
				break;
			kept += k == K_MSG;
		}
		p += c;
	}
	/* Forget what lies past the cut, or it would read as committed. */
	for (uint64_t q = p; q < hd && q - p < r->ncells; q++)
		atomic_store(seqw(r, q), 0);
	uint64_t sent = atomic_load(&h->sent), recvd = atomic_load(&h->received);
	uint64_t dropped = atomic_load(&h->dropped);
	if (sent < recvd + dropped + (uint64_t)kept)
		atomic_store(&h->sent, sent = recvd + dropped + (uint64_t)kept);
	else
		atomic_store(&h->dropped, dropped = sent - recvd - (uint64_t)kept);
	/* The SPSC indices' low bytes carry the counters' (see "Counting", ring_int.h). */
	bool spsc = r->flags & RING_F_SPSC;
	atomic_store(&h->tail, t << 8 | (spsc ? (recvd + dropped) & 0xff : 0));
	atomic_store(&h->head, p << 8 | (spsc ? sent & 0xff : 0));
	return kept;
}
