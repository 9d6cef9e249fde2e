/*
 * libFuzzer target: arbitrary bytes as the shared state of a ring.  The
 * validation code must turn every one of them into a refusal (-EBADMSG ...)
 * or a working ring, never into a crash, an out-of-bounds access or a hang.
 *
 * Input: one byte of mode, then the rest.
 *   mode even: the rest is the whole segment, header included.
 *   mode odd:  a valid 64 KiB ring with messages in it, whose control state
 *              (indices, seq and meta words) and data are overwritten by the
 *              rest, so the fuzzer spends its time past the header checks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shm/ring.h"
#include "fuzz_ring.h"

#define SEG_CAP  65536u
#define SEG_MAX  1024u

static uint8_t *segment(size_t *len)
{
	static uint8_t *mem;
	static size_t size;
	if (!mem) {
		struct ring_geom g = { .capacity = SEG_CAP, .max_msg = SEG_MAX };
		size = (size_t)ipcx__ring_size(&g);
		mem = aligned_alloc(4096, size);
	}
	*len = size;
	return mem;
}

/* A valid ring with a few messages, in mem. */
static void valid_ring(uint8_t *mem, size_t len, bool spsc)
{
	memset(mem, 0, len);
	struct ring_geom g = { .capacity = SEG_CAP, .max_msg = SEG_MAX,
			       .flags = spsc ? RING_F_SPSC : 0, .policy = RING_BLOCK };
	ipcx__ring_format(mem, len, &g);
	struct ring r;
	if (ipcx__ring_attach(&r, mem, len, false) == 0) {
		char msg[SEG_MAX] = { 0 };
		for (int i = 0; i < 8; i++)
			ipcx__ring_send(&r, msg, (size_t)(i * 97) % SEG_MAX, 0);
		ipcx__ring_detach(&r);
	}
}

/* Everything a peer does with a ring, each call non-blocking. */
static void exercise(uint8_t *mem, size_t len)
{
	struct ring r;
	struct ring_hdr *h = (struct ring_hdr *)mem;
	/* No doorbells: pokes would go to abstract sockets named by the input. */
	atomic_store(&h->pollers, 0);
	if (ipcx__ring_attach(&r, mem, len, false) < 0)
		return;
	(void)ipcx__ring_check(&r);
	char buf[SEG_MAX];
	uint64_t cursor = 0;
	for (int i = 0; i < 4; i++) {
		ssize_t n = ipcx__ring_read_ahead(&r, &cursor, buf, sizeof(buf), 0);
		if (n < 0 && n != -EMSGSIZE)
			break;
	}
	for (int i = 0; i < 4; i++) {
		ssize_t n = ipcx__ring_recv(&r, buf, sizeof(buf), 0);
		if (n < 0 && n != -EAGAIN && n != -EMSGSIZE)
			break;
	}
	const void *p;
	ssize_t n = ipcx__ring_peek(&r, 0, &p);
	if (n >= 0) {
		volatile uint8_t sink = 0;
		for (ssize_t i = 0; i < n; i++)
			sink ^= ((const uint8_t *)p)[i]; /* the whole message is in bounds */
		(void)sink;
		ipcx__ring_release(&r);
	}
	ipcx__ring_send(&r, buf, 100, 0);
	void *slot;
	if (ipcx__ring_reserve(&r, 200, 0, &slot) == 0) {
		memset(slot, 1, 200);
		ipcx__ring_commit(&r, 150);
	}
	uint64_t st[6];
	ipcx__ring_stats(&r, st);
	ipcx__ring_detach(&r);
}

int ipcx_fuzz_ring(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len;
	uint8_t *mem = segment(&len);
	uint8_t mode = data[0];
	data++, size--;
	if (!(mode & 1)) {
		memset(mem, 0, len);
		memcpy(mem, data, size < len ? size : len);
		/* The input's own geometry may claim a larger segment: give the size it has. */
		exercise(mem, len);
		return 0;
	}
	valid_ring(mem, len, mode & 2);
	/* Overwrite from the dynamic part of the header on, wrapping the input over it. */
	size_t start = offsetof(struct ring_hdr, rx_waiters);
	size_t skip_lo = offsetof(struct ring_hdr, peers), skip_hi = sizeof(struct ring_hdr);
	for (size_t i = 0; i < size; i++) {
		size_t off = start + ((mode >> 2) * 4099u + i) % (len - start);
		if (off >= skip_lo && off < skip_hi)
			continue; /* pids would be signalled (with 0, harmlessly, but slowly) */
		mem[off] = data[i];
	}
	exercise(mem, len);
	return 0;
}
