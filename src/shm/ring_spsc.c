/*
 * The single-producer single-consumer protocol: a new channel's adoption
 * of what an earlier producer or consumer left, and the fast paths of send
 * and receive (its steps are in ring_spsc.h).
 */
#include "shm/ring_spsc.h"

#include "shm/ring_ops.h"

/*
 * What an earlier producer, killed, left past the head: at most a pad and a
 * message it committed but did not move the head over, and perhaps did not
 * count (sent's low byte equal to the head's: not counted; one ahead:
 * counted).  Returns sent as it should be, and the head in *headp.
 */
uint64_t ipcx__ring_spsc_settle_tx(const struct ring *r, uint64_t *headp)
{
	uint64_t hw = atomic_load(&r->h->head), hp = hw >> 8, n = atomic_load(&r->h->sent);
	bool counted = (uint8_t)n == (uint8_t)((hw & 0xff) + 1);
	for (int i = 0; i < 2; i++) {
		uint32_t len;
		uint64_t c;
		enum kind k;
		if (atomic_load(seqw(r, hp)) != SEQ(hp, T_COMMITTED) ||
		    meta_decode(r, hp, atomic_load(metaw(r, hp)), &len, &c, &k) < 0)
			break;
		hp += c;
		if (k == K_MSG) {
			n += !counted;
			break;
		}
	}
	*headp = hp << 8 | (n & 0xff);
	return n;
}

void ipcx__ring_spsc_adopt_tx(struct ring *r)
{
	uint64_t hw, n = ipcx__ring_spsc_settle_tx(r, &hw);
	atomic_store(&r->h->sent, n);
	atomic_store(&r->h->head, hw);
	r->adopted_tx = true;
}

/*
 * A consumer killed after it counted a message but before it moved the
 * tail (its counters' low byte one ahead of the tail's) leaves that message
 * to skip, and one killed between tail and rel leaves rel behind.
 */
void ipcx__ring_spsc_adopt_rx(struct ring *r)
{
	uint64_t tw = atomic_load(&r->h->tail), t = tw >> 8;
	uint64_t n = atomic_load(&r->h->received) + atomic_load(&r->h->dropped);
	uint32_t len;
	uint64_t c;
	enum kind k;
	if ((uint8_t)n == (uint8_t)((tw & 0xff) + 1) && atomic_load(seqw(r, t)) == SEQ(t, T_COMMITTED) &&
	    meta_decode(r, t, atomic_load(metaw(r, t)), &len, &c, &k) == 0)
		t += c;
	atomic_store(&r->h->tail, t << 8 | (n & 0xff));
	if (atomic_load(&r->h->rel) < t)
		publish(&r->h->rel, t);
	r->adopted_rx = true;
}

/* ---- the fast paths ------------------------------------------------------------------ */

/*
 * What the fast paths leave to the slow ones: MPMC, checksums (the mmap:
 * log), a reservation or peek in progress, a doorbell, a new channel's
 * first call (it adopts what an earlier peer left).
 */
HOT bool spsc_fast(const struct ring *r)
{
	return (r->flags & (RING_F_SPSC | RING_F_CRC)) == RING_F_SPSC && r->durability == 0 &&
	       r->me >= 0 && !r->reserved && !r->peeked;
}

/*
 * The fast path: an SPSC ring with room for a message of at most 64 bytes.
 * It makes no call but tail calls (nothing to save on the stack: every
 * store counts, see ring_int.h); everything else goes to the slow path
 * (ring.c).
 */
ssize_t ipcx__ring_send(struct ring *r, const void *msg, size_t len, int timeout_ms)
{
	uint64_t pos, cells, pad;
	if (!spsc_fast(r) || !r->adopted_tx || len > RING_CELL || len > r->max_msg ||
	    spsc_room(r, (uint32_t)len, &pos, &cells, &pad) != 0)
		return ipcx__ring_send_slow(r, msg, len, timeout_ms, false);
	/* The -EPIPE check when the head crosses a multiple of 1024 cells. */
	if (((pos - pad) ^ (pos + cells)) >> 10)
		return ipcx__ring_send_slow(r, msg, len, timeout_ms, true);
	copy_small(cell_ptr(r, pos), msg, len);
	spsc_commit(r, pos, (uint32_t)len, cells, pad);
	/* Loads after the store of the commit: see publish(). */
	if (atomic_load_explicit(&r->h->rx_waiters, RELAXED) |
	    atomic_load_explicit(&r->h->pollers, RELAXED))
		return ipcx__ring_notified(r, true, (ssize_t)len);
	return (ssize_t)len;
}

/* The fast path: an SPSC ring with a message of at most 64 bytes waiting. */
ssize_t ipcx__ring_recv(struct ring *r, void *buf, size_t cap, int timeout_ms)
{
	uint64_t pos, cells;
	uint32_t len;
	enum kind k;
	if (!spsc_fast(r) || !r->adopted_rx || r->bell >= 0 ||
	    spsc_next(r, &pos, &len, &cells, &k) != 0 || k != K_MSG || len > cap ||
	    len > RING_CELL)
		return ipcx__ring_recv_slow(r, buf, cap, timeout_ms);
	copy_small(buf, cell_ptr(r, pos), len);
	spsc_release(r, pos, cells);
	if (atomic_load_explicit(&r->h->tx_waiters, RELAXED))
		return ipcx__ring_notified(r, false, len);
	return len;
}
