/*
 * The ring's own vocabulary, shared by the files that make it: the words
 * of a record, how they are read and counted, and the markers that keep
 * the fast paths inlined.  Private to src/shm/ring*.c; the rest of the
 * library sees ring.h alone.
 *
 * The shared-memory ring: variable-size records in cells of 64 bytes.
 *
 * Positions count cells and only grow (56 bits: years at any real rate).
 * Three shared indices: head (next cell a producer claims), tail (next
 * record a consumer takes) and rel (every cell before it is free again);
 * rel <= tail <= head <= rel + ncells.  Per cell there is a seq word and a
 * meta word; only the cell where a record starts uses them:
 *
 *   seq  = pos << 8 | state   state: COMMITTED, LOST (committed, its writer
 *                             died), RELEASED, CLAIMED|peer, READING|peer
 *   meta = cells << 32 | len  len may carry PAD (skip these cells)
 *
 * Many producers, many consumers (the default):
 *   claim:   CAS head pos<<8 -> pos<<8|peer+1 (we own the head for a moment),
 *            write meta, seq = CLAIMED|peer, store head = pos+cells;
 *            then copy the message and set seq = COMMITTED.
 *   take:    CAS seq COMMITTED -> READING|peer (each record to exactly one
 *            consumer), store tail = pos+cells, copy, seq = RELEASED, then
 *            move rel over every RELEASED record at its front.
 * Every state a process can die in names the dead peer, whose slot in the
 * peer table names its pid and start time; whoever is blocked behind it
 * finishes or undoes its step (ipcx__ring_repair()).  One producer and one
 * consumer (spsc=1): no CAS; the producer publishes seq = COMMITTED and
 * then moves the head, the consumer watches only the next cell's seq and
 * moves tail/rel after copying, so a dead peer leaves nothing half done.
 *
 * Waiting: a short spin, then a futex on rx_seq / tx_seq (shared futexes:
 * the segment is mapped by several processes).  A waker touches the futex
 * only when a sleeper announced itself in rx_waiters / tx_waiters.
 *
 * The ring's files, by concern; each private header says what its file
 * offers the others.  The first four serve any protocol (the broadcast ring
 * beside MPMC and SPSC reuses them); where they need to know the
 * protocol they ask ring.c (ring_ops.h) or ring_repair.c, which dispatch on
 * the ring's flags.
 *
 *   ring_layout.c  the segment: layout, format, attach (and its checks),
 *                  detach, the validation walk
 *   ring_peer.c    peer slots: joining one, liveness, a gone listener (-EPIPE)
 *   ring_bell.c    the doorbell: a pollable descriptor across processes
 *   ring_wait.c    waiting: spin, futex, the wake-up handshake's barrier
 *   ring.c         the operations (send, receive, reserve, commit, peek,
 *                  release, stats) over either protocol: claim and take
 *                  with waiting, commit and release, what a wait asks
 *   ring_ahead.c   reading ahead without taking (ipcx_read_ahead): the
 *                  protocol's take with a look flag at the tail, a checked
 *                  copy past it
 *   ring_mpmc.c    the many-producer many-consumer protocol (ring_mpmc.h:
 *                  the steps the operations inline)
 *   ring_repair.c  crash repair: finishing a dead MPMC peer's step, the
 *                  sweep before a slot is reused, recovery of a
 *                  persistent ring
 *   ring_spsc.c    the single-producer single-consumer protocol and the
 *                  fast paths of send and receive (ring_spsc.h: its steps,
 *                  inlined into both)
 *   ring_bcast.c   the broadcast protocol (fanout=1, publish/subscribe):
 *                  publishing, the channel's life on the ring, statistics
 *                  (ring_bcast.h: the protocol, shared by the three files)
 *   ring_bcast_sub.c     its subscribers: joining, reading, peek/release, batches
 *   ring_bcast_repair.c  its crash repair, dead subscribers, its checks
 */
#ifndef IPCX_SHM_RING_INT_H
#define IPCX_SHM_RING_INT_H

#include "shm/ring.h"

#include "core/crc.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "ipcx.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#define T_COMMITTED 0x01u
#define T_LOST      0x02u
#define T_RELEASED  0x03u
#define T_CLAIMED   0x40u
#define T_READING   0x80u
#define T_SKIPPING  0xc0u /* a consumer moves the tail over a pad or a LOST record */
#define T_OWNED     (T_CLAIMED | T_READING)
#define T_PEER      0x3fu

#define M_PAD  0x80000000u
#define M_LEN  0x3fffffffu

#define SEQ(pos, tag) ((uint64_t)(pos) << 8 | (tag))
#define SEQPOS(s)     ((s) >> 8)
#define SEQTAG(s)     ((unsigned)((s)&0xffu))

#define RELAXED memory_order_relaxed
#define ACQ     memory_order_acquire
#define REL     memory_order_release

enum kind { K_MSG, K_PAD };

#ifdef IPCX_CRASHPOINTS
#define CRASH(p)                                                                        \
	do {                                                                            \
		if (ipcx__crash_point == (p) && ipcx__crash_after-- == 0)               \
			raise(SIGKILL);                                                 \
	} while (0)
#else
#define CRASH(p) ((void)0)
#endif

/*
 * The SPSC fast path is inlined into send and receive: every call, push
 * and spill is a store, and a producer's stores wait in order behind its
 * stores to lines the consumer holds; fewer of them, more messages in
 * flight (docs/shm.md, "Performance").  So what a fast path calls in
 * another file is HOT in that file's header; what it leaves to others is
 * a tail call.
 */
#define HOT  static inline __attribute__((always_inline))
/* Out of line and unlikely: a caller keeps the path to it off its fast path. */
#define COLD __attribute__((noinline, cold))
/* Out of the fast path but not cold: waits spin here (cold code is slower). */
#define SLOW __attribute__((noinline))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static inline uint8_t *cell_ptr(const struct ring *r, uint64_t pos)
{
	return r->data + (pos & r->mask) * RING_CELL;
}

/* The seq and meta words of the record that starts at cell pos. */
static inline _Atomic uint64_t *seqw(const struct ring *r, uint64_t pos)
{
	return &r->cell[pos & r->mask].seq;
}

static inline _Atomic uint64_t *metaw(const struct ring *r, uint64_t pos)
{
	return &r->cell[pos & r->mask].meta;
}

/* Check a meta word for the record at pos; fills len, cells, kind. */
HOT int meta_decode(const struct ring *r, uint64_t pos, uint64_t m, uint32_t *len,
		       uint64_t *cells, enum kind *kind)
{
	uint64_t c = m >> 32;
	uint32_t l = (uint32_t)m;
	if (c == 0 || c > r->ncells || (pos & r->mask) + c > r->ncells)
		return -EBADMSG;
	if (l & M_PAD) {
		*kind = K_PAD;
		*len = 0;
	} else {
		if ((l & ~M_LEN) || l > r->max_msg || ring_cells_for(l) > c)
			return -EBADMSG;
		*kind = K_MSG;
		*len = l;
	}
	*cells = c;
	return 0;
}

/* The tail's position (its low byte counts, in SPSC rings). */
static inline uint64_t tail_pos(const struct ring *r)
{
	return atomic_load_explicit(&r->h->tail, ACQ) >> 8;
}

/* ---- counting ---------------------------------------------------------------------- */

/*
 * A counter and the record state it goes with are two stores, and a process
 * can be killed between them; yet the counters must account for every
 * message.  So whoever comes after a dead process can always tell which of
 * the two stores it made.
 *
 * Many producers, many consumers: every peer slot counts for itself
 * (struct ring_peer: tx, rx, dr, pd).  A process owns at most one record at
 * a time (a channel is used by one thread at a time), and outside of one its
 * tx, rx and dr equal their *_snap copies.  It counts before it changes the
 * record's state, and takes the snapshot after; so while a record names a
 * dead peer, "the peer counted it" is exactly "tx, rx or dr is one more than
 * its snapshot".  A repairer that has to count for the dead (a message lost
 * or dropped) moves the dead peer's counter from snapshot to snapshot + 1 by
 * CAS before it fixes the record: repairers that race, or that come after
 * one killed half-way, count once (fix_record(), ring_repair.c).
 *
 * One producer, one consumer: one writer per counter (sent: the producer;
 * received, dropped: the consumer), and the low byte of the index each
 * moves next (head, tail) carries its counter's low byte.  A counter one
 * ahead of that byte means "counted, index not moved"; the next producer or
 * consumer finishes the step (ipcx__ring_spsc_adopt_tx(), _adopt_rx()).
 */

static inline struct ring_peer *me_peer(const struct ring *r)
{
	return &r->h->peers[r->me];
}

/* One writer: a plain store counts, no locked instruction on the fast path. */
static inline uint64_t bump(_Atomic uint64_t *c)
{
	uint64_t v = atomic_load_explicit(c, RELAXED) + 1;
	atomic_store_explicit(c, v, REL);
	return v;
}

/* The record is given up: counter and snapshot agree again. */
static inline void snap(_Atomic uint64_t *c, _Atomic uint64_t *copy)
{
	atomic_store_explicit(copy, atomic_load_explicit(c, RELAXED), RELAXED);
}

/* ---- checksums (the mmap: log) and copies -------------------------------------------- */

/*
 * A record's checksum covers its position (no stale lap passes) and length;
 * data is the record in the ring, or a copy of it (ring_ahead.c).
 */
static inline uint32_t crc_of(uint64_t pos, uint32_t len, const void *data)
{
	uint64_t hdr[2] = { pos, len };
	return ipcx__crc32c(ipcx__crc32c(0, hdr, sizeof(hdr)), data, len);
}

static inline uint32_t record_crc(struct ring *r, uint64_t pos, uint32_t len)
{
	return crc_of(pos, len, cell_ptr(r, pos));
}

HOT int check_crc(struct ring *r, uint64_t pos, uint32_t len)
{
	if (!(r->flags & RING_F_CRC))
		return 0;
	return atomic_load(&r->crc[pos & r->mask]) == record_crc(r, pos, len) ? 0 : -EBADMSG;
}

/* Copy n <= 64 bytes without a call: overlapping fixed-size moves. */
HOT void copy_small(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n >= 32) {
		memcpy(d, s, 32);
		memcpy(d + n - 32, s + n - 32, 32);
	} else if (n >= 16) {
		memcpy(d, s, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

#endif
