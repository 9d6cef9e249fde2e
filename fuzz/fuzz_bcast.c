/*
 * libFuzzer target: the broadcast ring's shared state from a hostile peer.
 * A valid broadcast ring with messages in it and a subscriber attached has
 * its control state overwritten by the input: the header's indices (head,
 * rel, next_no, life), the subscribers' words in the peer slots (sub,
 * cursor, base), the cells' seq and meta words, and the records' numbers.
 * Then a subscriber joins (at the head, or with history), reads, peeks,
 * releases, peeks a batch and takes part of it; a publisher sends, reserves, commits, and a full ring makes it
 * look at every subscriber's cursor; statistics, the list of subscribers,
 * the validation walk and the repair run.  Every input must end in a
 * refusal or a working ring, never a crash, an out-of-bounds access or a
 * hang.
 *
 * Input: one byte of mode, then the bytes.
 *   bit 0: policy=drop (else block)    bit 1: join with history
 *   bit 2: the subscriber reads first  bits 3-7: where the bytes start
 */
#include "fuzz_bcast.h"

#include "ipcx.h"
#include "shm/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEG_CAP 16384u
#define SEG_MAX 1024u

static uint8_t *segment(size_t *len)
{
	static uint8_t *mem;
	static size_t size;
	if (!mem) {
		struct ring_geom g = { .capacity = SEG_CAP, .max_msg = SEG_MAX, .flags = RING_F_BCAST };
		size = (size_t)ipcx__ring_size(&g);
		mem = aligned_alloc(4096, size);
	}
	*len = size;
	return mem;
}

/* A valid broadcast ring, lapped once, with one subscriber attached (our process). */
static void valid_ring(uint8_t *mem, size_t len, bool drop)
{
	memset(mem, 0, len);
	struct ring_geom g = { .capacity = SEG_CAP, .max_msg = SEG_MAX, .flags = RING_F_BCAST,
			       .policy = drop ? RING_DROP : RING_BLOCK };
	ipcx__ring_format(mem, len, &g);
	struct ring r;
	if (ipcx__ring_attach(&r, mem, len, false) < 0)
		return;
	char msg[SEG_MAX] = { 0 };
	for (int i = 0; i < 40; i++)
		ipcx__ring_send(&r, msg, (size_t)(i * 97) % SEG_MAX, 0);
	ipcx__bcast_subscribe(&r, 0);
	for (int i = 0; i < 6; i++)
		ipcx__ring_send(&r, msg, (size_t)(i * 31) % SEG_MAX, 0);
	/* Leave the slot and its subscription in place, as a process would that died. */
}

/* Bytes the input may write: the dynamic header, not the peers' pids (they would be signalled). */
static bool writable(size_t off)
{
	size_t lo = offsetof(struct ring_hdr, peers), hi = offsetof(struct ring_hdr, next_no);
	if (off < offsetof(struct ring_hdr, rx_waiters))
		return false;
	if (off < lo || off >= hi)
		return true;
	size_t in = (off - lo) % sizeof(struct ring_peer);
	return in >= offsetof(struct ring_peer, sub) &&
	       in < offsetof(struct ring_peer, base) + sizeof(uint64_t);
}

static void read_some(struct ring *r)
{
	char buf[SEG_MAX];
	for (int i = 0; i < 6; i++) {
		ssize_t n = ipcx__ring_recv(r, buf, sizeof(buf), 0);
		if (n < 0 && n != -EAGAIN && n != -EMSGSIZE && n != -EBUSY)
			break;
	}
	const void *p;
	ssize_t n = ipcx__ring_peek(r, 0, &p);
	if (n >= 0) {
		volatile uint8_t sink = 0;
		for (ssize_t i = 0; i < n; i++)
			sink ^= ((const uint8_t *)p)[i]; /* the whole message is in bounds */
		(void)sink;
		ipcx__ring_release(r);
	}
	/* A batch in place: every message of it in bounds; some taken, the rest put back. */
	struct ipcx_msg v[8];
	n = ipcx__ring_peekv(r, v, 8, 0);
	if (n > 0) {
		volatile uint8_t sink = 0;
		for (ssize_t k = 0; k < n; k++)
			for (size_t i = 0; i < v[k].len; i++)
				sink ^= ((const uint8_t *)v[k].buf)[i];
		(void)sink;
		ipcx__ring_releasev(r, (size_t)n / 2 + 1);
	}
}

static void exercise(uint8_t *mem, size_t len, unsigned mode)
{
	struct ring r;
	struct ring_hdr *h = (struct ring_hdr *)mem;
	atomic_store(&h->pollers, 0); /* no doorbells: pokes would go to sockets the input names */
	if (ipcx__ring_attach(&r, mem, len, false) < 0)
		return;
	(void)ipcx__ring_check(&r);
	ipcx__bcast_subscribe(&r, (mode & 2) ? 1000 : 0);
	if (mode & 4)
		read_some(&r);
	char buf[SEG_MAX] = { 0 };
	for (int i = 0; i < 40; i++) /* enough to fill the ring: the cursors are looked at */
		if (ipcx__ring_send(&r, buf, 300, 0) < 0)
			break;
	void *slot;
	if (ipcx__ring_reserve(&r, 200, 0, &slot) == 0) {
		memset(slot, 1, 200);
		ipcx__ring_commit(&r, 150);
	}
	read_some(&r);
	uint64_t st[6];
	ipcx__ring_stats(&r, st);
	struct ipcx_subscriber subs[4];
	ipcx__bcast_subscribers(&r, subs, 4);
	ipcx__bcast_leave(&r);
	ipcx__ring_detach(&r);
}

int ipcx_fuzz_bcast(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len;
	uint8_t *mem = segment(&len);
	unsigned mode = data[0];
	data++, size--;
	valid_ring(mem, len, mode & 1);
	struct ring_hdr *h = (struct ring_hdr *)mem;
	/* The control state and the first records: numbers, meta, seq. */
	size_t start = offsetof(struct ring_hdr, rx_waiters), end = h->data_off + 64 * 64;
	for (size_t i = 0; i < size; i++) {
		size_t off = start + ((mode >> 3) * 4099u + i * 8 + i / 8) % (end - start);
		if (writable(off))
			mem[off] = data[i];
	}
	exercise(mem, len, mode);
	return 0;
}
