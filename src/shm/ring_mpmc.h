/*
 * The many-producer many-consumer protocol (ring_mpmc.c): its steps.  The
 * ones the operations (ring.c) inline are here; a claim is inlined into the
 * claiming loop, commit and release into the calls that make them.
 */
#ifndef IPCX_SHM_RING_MPMC_H
#define IPCX_SHM_RING_MPMC_H

#include "shm/ring_wait.h"

/*
 * Move rel over the RELEASED records at its front.  Consumers finish out of
 * order, so whoever releases the record at rel carries it over the ones
 * released after it.
 */
void ipcx__ring_advance_rel(struct ring *r);

/* Set a taken record RELEASED and move rel. */
void ipcx__ring_release_at(struct ring *r, uint64_t pos);

/*
 * The next message: 0 (READING is ours), -EAGAIN empty, -EBUSY, -EMSGSIZE.
 * Pads and LOST records are skipped (SKIPPING, then RELEASED); nothing is
 * counted for them (a LOST message was counted when it was found lost).
 * look (read ahead, ring_ahead.c): a whole message at the tail is left
 * COMMITTED and returned; pads, lost and damaged records are still taken off.
 */
int ipcx__ring_mpmc_take(struct ring *r, size_t cap, bool look, uint64_t *pos, uint32_t *lenp,
			 uint64_t *cellsp);

/* Room for len bytes: 0 and *pos, -EAGAIN full, -EBUSY another claim in progress. */
static inline int mpmc_claim(struct ring *r, uint32_t len, uint64_t *pos, uint64_t *cellsp)
{
	uint64_t cells = ring_cells_for(len);
	for (;;) {
		uint64_t hw = atomic_load_explicit(&r->h->head, ACQ);
		if (hw & 0xff)
			return -EBUSY;
		uint64_t hp = hw >> 8, c = hp & r->mask, start = hp, pad = 0;
		if (c + cells > r->ncells) {
			pad = r->ncells - c; /* a record never wraps: skip to the next lap */
			start = hp + pad;
		}
		uint64_t rl = atomic_load_explicit(&r->h->rel, ACQ);
		if (rl > hp || hp - rl > r->ncells) {
			if (atomic_load(&r->h->head) != hw)
				continue;
			return -EBADMSG;
		}
		if (start + cells - rl > r->ncells)
			return -EAGAIN;
		uint64_t mine = hp << 8 | (uint64_t)(r->me + 1);
		if (!atomic_compare_exchange_weak(&r->h->head, &hw, mine))
			continue;
		CRASH(CP_HEAD_TAGGED);
		/* We own the head: meta first, so a repairer can trust it. */
		unsigned tag = T_CLAIMED | (unsigned)r->me;
		if (pad) {
			atomic_store_explicit(metaw(r, hp), pad << 32 | M_PAD, RELAXED);
			atomic_store_explicit(seqw(r, hp), SEQ(hp, tag), REL);
		}
		atomic_store_explicit(metaw(r, start), cells << 32 | len, RELAXED);
		atomic_store_explicit(seqw(r, start), SEQ(start, tag), REL);
		atomic_store_explicit(&r->h->head, (start + cells) << 8, REL);
		if (pad)
			atomic_store_explicit(seqw(r, hp), SEQ(hp, T_COMMITTED), REL);
		CRASH(CP_CLAIMED);
		*pos = start;
		*cellsp = cells;
		return 0;
	}
}

/* A record we took (READING) goes undelivered: count it dropped, free it. */
HOT void drop_taken(struct ring *r, uint64_t pos)
{
	struct ring_peer *pe = me_peer(r);
	bump(&pe->dr);
	CRASH(CP_DR_COUNTED);
	ipcx__ring_release_at(r, pos);
	snap(&pe->dr, &pe->dr_snap);
}

/* Publish a claimed record we copied: count it, then COMMITTED. */
HOT void mpmc_commit(struct ring *r, uint64_t pos, uint32_t len, uint64_t cells)
{
	struct ring_peer *pe = me_peer(r);
	atomic_store_explicit(metaw(r, pos), cells << 32 | len, RELAXED);
	bump(&pe->tx); /* after the copy (release): counted means whole */
	CRASH(CP_TX_COUNTED);
	publish(seqw(r, pos), SEQ(pos, T_COMMITTED));
	CRASH(CP_COMMITTED);
	snap(&pe->tx, &pe->tx_snap);
}

/* We are done with the message we took at pos: count it, release it. */
HOT void mpmc_release(struct ring *r, uint64_t pos)
{
	struct ring_peer *pe = me_peer(r);
	bump(&pe->rx);
	CRASH(CP_RX_COUNTED);
	ipcx__ring_release_at(r, pos);
	snap(&pe->rx, &pe->rx_snap);
}

#endif
