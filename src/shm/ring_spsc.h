/*
 * The single-producer single-consumer protocol (ring_spsc.c): its steps,
 * inlined into both the fast paths (ring_spsc.c) and the operations that
 * wait (ring.c), so that the protocol is written once.  Each makes no call
 * but to the adoption of a new channel's first step: a fast path around
 * them saves no registers (docs/shm.md, "Performance").
 */
#ifndef IPCX_SHM_RING_SPSC_H
#define IPCX_SHM_RING_SPSC_H

#include "shm/ring_wait.h"

/*
 * What an earlier producer, killed, left past the head: returns sent as it
 * should be, and the head in *headp.
 */
uint64_t ipcx__ring_spsc_settle_tx(const struct ring *r, uint64_t *headp);
/* A new producer channel takes over the head (once, at its first claim). */
void ipcx__ring_spsc_adopt_tx(struct ring *r);
/* A new consumer channel takes over the tail (once, at its first take). */
void ipcx__ring_spsc_adopt_rx(struct ring *r);

/* The SPSC consumer is done with the record before next; n: its counters' sum. */
HOT void spsc_consumed(struct ring *r, uint64_t next, uint64_t n)
{
	atomic_store_explicit(&r->h->tail, next << 8 | (n & 0xff), RELAXED);
	CRASH(CP_SPSC_TAIL);
	publish(&r->h->rel, next);
}

/*
 * Room for len bytes at the head, judged by the cached rel (read again when
 * it looks short): 0, -EAGAIN (full) or -EBADMSG (indices out of order).
 * Makes no call, so that the fast path around it saves no registers.
 */
HOT int spsc_room(struct ring *r, uint32_t len, uint64_t *pos, uint64_t *cellsp,
		  uint64_t *padp)
{
	uint64_t cells = ring_cells_for(len);
	uint64_t hp = atomic_load_explicit(&r->h->head, RELAXED) >> 8;
	uint64_t c = hp & r->mask, start = hp, pad = 0;
	if (c + cells > r->ncells) {
		pad = r->ncells - c;
		start = hp + pad;
	}
	if (r->cached_rel > hp || start + cells - r->cached_rel > r->ncells) {
		uint64_t rl = atomic_load_explicit(&r->h->rel, ACQ);
		if (rl > hp || hp - rl > r->ncells)
			return -EBADMSG;
		r->cached_rel = rl;
		if (start + cells - rl > r->ncells)
			return -EAGAIN;
	}
	*pos = start;
	*cellsp = cells;
	*padp = pad;
	return 0;
}

HOT int spsc_claim(struct ring *r, uint32_t len, uint64_t *pos, uint64_t *cellsp,
		   uint64_t *padp)
{
	if (!r->adopted_tx)
		ipcx__ring_spsc_adopt_tx(r);
	int rc = spsc_room(r, len, pos, cellsp, padp);
	return rc == -EBADMSG ? ipcx__fail(-EBADMSG, "ring: indices out of order") : rc;
}

/*
 * The record at the tail, if committed: 0 with its position, length, cells
 * and kind, -EAGAIN (not committed: empty) or -EBADMSG (a bad meta word).
 * Makes no call.  Only the tail (ours) and the cell are read: a spinning
 * consumer keeps the producer's head line out of its cache.
 */
HOT int spsc_next(struct ring *r, uint64_t *pos, uint32_t *lenp, uint64_t *cellsp,
		  enum kind *kind)
{
	uint64_t t = atomic_load_explicit(&r->h->tail, RELAXED) >> 8;
	if (atomic_load_explicit(seqw(r, t), ACQ) != SEQ(t, T_COMMITTED))
		return -EAGAIN;
	*pos = t;
	return meta_decode(r, t, atomic_load_explicit(metaw(r, t), RELAXED), lenp, cellsp, kind);
}

HOT int spsc_take(struct ring *r, size_t cap, uint64_t *pos, uint32_t *lenp,
		  uint64_t *cellsp)
{
	if (!r->adopted_rx)
		ipcx__ring_spsc_adopt_rx(r);
	for (;;) {
		uint64_t t;
		uint32_t len;
		uint64_t c;
		enum kind k;
		int rc = spsc_next(r, &t, &len, &c, &k);
		if (rc == -EAGAIN)
			return rc;
		if (rc < 0)
			return ipcx__fail(-EBADMSG, "ring: bad record at %llu", (unsigned long long)t);
		if (k == K_MSG && len > cap)
			return -EMSGSIZE;
		if (k == K_PAD || check_crc(r, t, len) < 0) {
			uint64_t d = k == K_MSG ? bump(&r->h->dropped) : atomic_load(&r->h->dropped);
			spsc_consumed(r, t + c, atomic_load(&r->h->received) + d);
			continue;
		}
		*pos = t;
		*lenp = len;
		*cellsp = c;
		return 0;
	}
}

/* Publish an SPSC record (and the pad before it), count it, move the head. */
HOT void spsc_commit(struct ring *r, uint64_t pos, uint32_t len, uint64_t cells, uint64_t pad)
{
	if (pad) {
		uint64_t p0 = pos - pad;
		atomic_store_explicit(metaw(r, p0), pad << 32 | M_PAD, RELAXED);
		atomic_store_explicit(seqw(r, p0), SEQ(p0, T_COMMITTED), REL);
	}
	atomic_store_explicit(metaw(r, pos), cells << 32 | len, RELAXED);
	/* seq_cst: orders the commit before the loads of the waiter flags. */
	publish(seqw(r, pos), SEQ(pos, T_COMMITTED));
	CRASH(CP_SPSC_COMMITTED);
	uint64_t n = bump(&r->h->sent);
	CRASH(CP_SPSC_SENT);
	atomic_store_explicit(&r->h->head, (pos + cells) << 8 | (n & 0xff), REL);
}

/* The SPSC consumer is done with the message at pos: count it, move the tail. */
HOT void spsc_release(struct ring *r, uint64_t pos, uint64_t cells)
{
	uint64_t n = bump(&r->h->received);
	CRASH(CP_SPSC_RECEIVED);
	spsc_consumed(r, pos + cells, n + atomic_load_explicit(&r->h->dropped, RELAXED));
}

#endif
