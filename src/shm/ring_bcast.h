/*
 * The broadcast ring's protocol (ring_bcast.c, ring_bcast_sub.c,
 * ring_bcast_repair.c), shared by its files and by the ring files that
 * dispatch to it (ring.c, ring_layout.c, ring_repair.c ask it what a wait
 * or a repair needs to know).  Private to src/shm/ring*.c; the rest of the
 * library sees ring.h.
 *
 * A broadcast ring is a ring (ring_int.h): cells of 64 bytes, the seq and
 * meta words of each record, head (pos << 8 | claiming peer + 1), rel, the
 * peer slots.  What differs:
 *
 *   - Every record's payload is preceded by its message number (8 bytes,
 *     BCAST_HDR), also in pads (the number of the record after the pad).
 *     Numbers come from next_no in the header, taken while the head is
 *     owned, so they follow the records' order with no gap.
 *   - Nobody takes a record.  A subscriber keeps its own cursor (a cell
 *     position, and the number of the message due there) in its process
 *     and in its peer slot (cursor, and base + rx + dr: messages passed).
 *   - rel is the oldest record still whole: records in [rel, head) are
 *     intact.  Only the owner of the head moves it:
 *       block: to the least cursor of the live subscribers, when a claim
 *              finds no room (a subscriber joins under the head too, so it
 *              never starts behind rel);
 *       drop:  over the oldest records, as many as the claim needs; each is
 *              first marked RELEASED (then a release fence), so that a
 *              subscriber that read it meanwhile sees its seq change.
 *   - A subscriber reads a record like a seqlock: seq (acquire) says
 *     COMMITTED at its position, then meta, number and payload are read,
 *     then (acquire fence) seq again; if it changed, the record was
 *     overwritten under it (drop), and the subscriber jumps to rel,
 *     counting as lost exactly the numbers it skipped.  In block mode a
 *     record cannot change under a subscriber: its cursor holds it.
 *
 * Claim (head owned):  [drop: retire the oldest records | block: rel to the
 * least cursor], n = next_no, write the pad's and the record's number, meta
 * and seq = CLAIMED|peer, next_no = n + 1 (release), head = end (release),
 * the pad's seq = COMMITTED.  Commit: count tx, seq = COMMITTED.  A
 * publisher killed owning the head is undone by whoever takes the head over
 * (next_no put back); one killed after moving the head has its record
 * published (it counted it) or marked LOST (it did not: tx counted for it),
 * as in the MPMC ring.  Subscribers count a LOST record as lost.
 */
#ifndef IPCX_SHM_RING_BCAST_H
#define IPCX_SHM_RING_BCAST_H

#include "shm/ring_int.h"
#include "shm/ring_wait.h"

#include "ipcx.h"

/* Cells a record of len payload bytes takes. */
static inline uint64_t bc_cells(uint64_t len)
{
	return ring_cells_for(len + BCAST_HDR);
}

/*
 * The number in a record's first 8 bytes.  Atomic (relaxed) accesses: a
 * publisher may rewrite it while a subscriber reads (drop); the seq check
 * after decides whether what was read counts.
 */
static inline uint64_t bc_no_at(const struct ring *r, uint64_t pos)
{
	return __atomic_load_n((uint64_t *)cell_ptr(r, pos), __ATOMIC_RELAXED);
}

static inline void bc_set_no(const struct ring *r, uint64_t pos, uint64_t no)
{
	__atomic_store_n((uint64_t *)cell_ptr(r, pos), no, __ATOMIC_RELAXED);
}

static inline uint8_t *bc_payload(const struct ring *r, uint64_t pos)
{
	return cell_ptr(r, pos) + BCAST_HDR;
}

/* meta_decode, and the payload fits behind the number. */
static inline int bc_decode(const struct ring *r, uint64_t pos, uint64_t m, uint32_t *len,
			    uint64_t *cells, enum kind *kind)
{
	int e = meta_decode(r, pos, m, len, cells, kind);
	if (e == 0 && *kind == K_MSG && bc_cells(*len) > *cells)
		return -EBADMSG;
	return e;
}

/* A record's seq word says it is whole and readable at pos. */
static inline bool bc_readable(uint64_t s, uint64_t pos)
{
	return s == SEQ(pos, T_COMMITTED) || s == SEQ(pos, T_LOST);
}

/*
 * The head's position and next_no, read together: false if a claim was in
 * progress (try again).  next_no moves only while the head is owned.
 */
static inline bool bc_head_snapshot(const struct ring *r, uint64_t *hp, uint64_t *n)
{
	uint64_t h1 = atomic_load_explicit(&r->h->head, ACQ);
	*n = atomic_load_explicit(&r->h->next_no, ACQ);
	uint64_t h2 = atomic_load_explicit(&r->h->head, ACQ);
	*hp = h1 >> 8;
	return h1 == h2 && !(h1 & 0xff);
}

/* ---- ring_bcast.c: publishing -------------------------------------------------------------- */

/* Own the head (tag it with our slot): 0 and its position, or -EBUSY. */
int ipcx__bcast_own_head(struct ring *r, uint64_t *hp);
/* Give the owned head back at position hp. */
void ipcx__bcast_free_head(struct ring *r, uint64_t hp);
/*
 * The least cursor of the live subscribers, hp when there are none: 0, or
 * -EBADMSG for a cursor outside [rl, hp].
 */
int ipcx__bcast_min_cursor(struct ring *r, uint64_t rl, uint64_t hp, uint64_t *ret);

ssize_t ipcx__bcast_send(struct ring *r, const void *msg, size_t len, int timeout_ms);
int ipcx__bcast_reserve(struct ring *r, size_t len, int timeout_ms, void **slot);
int ipcx__bcast_commit(struct ring *r, size_t len);
int ipcx__bcast_stats(struct ring *r, uint64_t out[5]);
bool ipcx__bcast_has_room(struct ring *r, uint64_t cells);
/* Leaving: an open reservation is lost (published, never delivered), the subscription ends. */
void ipcx__bcast_detach(struct ring *r);

/* ---- ring_bcast_sub.c: subscribing --------------------------------------------------------- */

ssize_t ipcx__bcast_recv(struct ring *r, void *buf, size_t cap, int timeout_ms);
ssize_t ipcx__bcast_peek(struct ring *r, int timeout_ms, const void **msg);
int ipcx__bcast_release(struct ring *r);
ssize_t ipcx__bcast_peekv(struct ring *r, struct ipcx_msg *msgs, size_t n, int timeout_ms);
ssize_t ipcx__bcast_releasev(struct ring *r, size_t n);
bool ipcx__bcast_has_msg(struct ring *r);
/* Another live subscriber's cursor is behind the head (the waits ask: ring_wait.c). */
bool ipcx__bcast_others_behind(struct ring *r);

/* ---- ring_bcast_repair.c: dead peers, and the checks ------------------------------------ */

void ipcx__bcast_repair(struct ring *r);
bool ipcx__bcast_sweep_dead(struct ring *r, unsigned k);
int ipcx__bcast_check_indices(struct ring *r);
/* The validation walk of ipcx__ring_check: records in [rel, head); committed messages. */
ssize_t ipcx__bcast_check(struct ring *r);

#endif
