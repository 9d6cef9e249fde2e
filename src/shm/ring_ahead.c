/*
 * Reading ahead without taking (ipcx_read_ahead, ring.h): a consumer copies
 * the messages after the tail and leaves them in the ring, so that it can
 * write them out before it takes them and lose none if it is killed in
 * between (the log's drain, docs/log.md).  At the tail the protocol's own
 * take runs with a look flag (ipcx__ring_mpmc_take, spsc_take): pads, lost
 * and damaged records go as any consumer takes them, a message stays
 * COMMITTED.  Past the tail nothing is written: a copy is checked as a
 * seqlock read (seq before and after), and on mmap: against its checksum.
 */
#include "shm/ring_mpmc.h"
#include "shm/ring_ops.h"
#include "shm/ring_peer.h"
#include "shm/ring_spsc.h"
#include "shm/ring_wait.h"

/*
 * A record past the tail, looked at in place and left alone: 0 (a committed
 * message), 1 (a pad, a lost record: step over it), -EAGAIN (nothing
 * committed there yet), -EBUSY (a producer is writing it).
 */
static int ahead_at(struct ring *r, uint64_t p, uint64_t *seq, uint32_t *lenp,
		    uint64_t *cellsp)
{
	uint64_t s = atomic_load_explicit(seqw(r, p), ACQ);
	unsigned tag = SEQTAG(s);
	if (SEQPOS(s) != p)
		return -EAGAIN;
	if ((tag & T_OWNED) == T_CLAIMED)
		return -EBUSY;
	if (tag != T_COMMITTED && tag != T_LOST)
		return -EAGAIN;
	enum kind k;
	if (meta_decode(r, p, atomic_load_explicit(metaw(r, p), RELAXED), lenp, cellsp, &k) < 0)
		return ipcx__fail(-EBADMSG, "ring: bad record at %llu", (unsigned long long)p);
	*seq = s;
	return k == K_MSG && tag == T_COMMITTED ? 0 : 1;
}

/*
 * Copy the message at p (whose seq word was s) into buf: 0; 1 when it
 * changed under the copy (a consumer took it, and its cells may have been
 * reused); 2 when its checksum fails (damaged: whoever takes it drops it).
 */
static int copy_out(struct ring *r, uint64_t p, uint64_t s, void *buf, uint32_t len)
{
	memcpy(buf, cell_ptr(r, p), len);
	uint32_t crc = (r->flags & RING_F_CRC) ? atomic_load(&r->crc[p & r->mask]) : 0;
	/* The copy's loads come before the second look at seq (a seqlock's read). */
	atomic_thread_fence(ACQ);
	if (atomic_load_explicit(seqw(r, p), RELAXED) != s)
		return 1;
	if ((r->flags & RING_F_CRC) && crc_of(p, len, buf) != crc)
		return 2;
	return 0;
}

/*
 * The record at the cursor: 0 with its position, seq, length and cells;
 * 1 when at moved (over a record that is no message), or an error.  At the
 * tail the consumer's own step runs with look set (ipcx__ring_mpmc_take,
 * spsc_take): it takes pads, lost and damaged records off as any consumer
 * would, and leaves a message in place.  Past the tail nothing is written, and a
 * record not yet committed is -EAGAIN at once: the caller has messages to
 * take first (a wait there would never see a dead producer repaired).
 */
static int look_at(struct ring *r, uint64_t *at, uint64_t *pos, uint64_t *seq, uint32_t *lenp,
		   uint64_t *cellsp)
{
	uint64_t t = tail_pos(r), p = *at ? *at - 1 : t;
	if (p < t)
		return ipcx__fail(-ESTALE, "read ahead: the message at the cursor was taken");
	if (p == t) {
		int rc = r->flags & RING_F_SPSC ? spsc_take(r, SIZE_MAX, &p, lenp, cellsp)
						: ipcx__ring_mpmc_take(r, SIZE_MAX, true, &p, lenp, cellsp);
		*pos = p;
		*seq = SEQ(p, T_COMMITTED);
		return rc;
	}
	int rc = ahead_at(r, p, seq, lenp, cellsp);
	if (rc == 1)
		*at = p + *cellsp + 1;
	*pos = p;
	return rc == -EBUSY ? -EAGAIN : rc;
}

/* *cursor is 0 (the oldest message) or one more than the next record's position. */
ssize_t ipcx__ring_read_ahead(struct ring *r, uint64_t *cursor, void *buf, size_t cap,
			      int timeout_ms)
{
	int e = free_to_take(r);
	if (e)
		return e;
	mark_receiver(r);
	struct wait w = { 0 };
	uint64_t at = *cursor, steps = 0;
	for (;;) {
		uint64_t p = 0, s = 0, c = 0;
		uint32_t len = 0;
		bool front = at == 0 || at - 1 == tail_pos(r);
		int rc = look_at(r, &at, &p, &s, &len, &c);
		/* A step over a record moves on by a cell at least; a lap of them is a loop. */
		if (rc == 1 && ++steps > r->ncells)
			return ipcx__fail(-EBADMSG, "read ahead: no end to the records");
		if (rc == 1)
			continue;
		if ((rc == -EAGAIN || rc == -EBUSY) && front) {
			rc = ring_wait(r, &w, timeout_ms, true, rc == -EBUSY, 0);
			if (rc)
				return rc;
			continue;
		}
		if (rc < 0)
			return rc;
		if (len > cap)
			return -EMSGSIZE;
		int k = copy_out(r, p, s, buf, len);
		if (k == 1 && at)
			return ipcx__fail(-ESTALE, "read ahead: the message was taken under the copy");
		if (k == 2 && ++steps > r->ncells)
			return ipcx__fail(-EBADMSG, "read ahead: no end to the records");
		if (k == 2)
			at = p + c + 1;
		if (k)
			continue;
		*cursor = p + c + 1;
		return len;
	}
}
