/*
 * Fuzzing the reader of a FIFO's chunked frames (src/core/chunk.h), as many
 * writers, their deaths and programs that are not ipcx leave them.  The
 * input is a script: its first byte picks the reader's max; then each step
 * is an operation byte and a length byte:
 *   op % 8 < 4   the next chunk of writer op % 4's message; a new message of
 *                (length byte) x 97 bytes when it has none under way
 *   op % 8 == 4  writer (op / 8) % 4 dies in the middle of a chunk, cut after
 *                (length byte) bytes; another process takes its place.  With
 *                op & 0x40: the chunk is lost and the writer goes on (what a
 *                reader makes of a chunk torn some other way: its message
 *                must not be returned with a hole)
 *   op % 8 == 5  (length byte) bytes that are not a chunk, from the script
 *   op % 8 == 6  writer (op / 8) % 4 gives up its message: with an ABORT
 *                chunk if op & 0x40, silently otherwise
 *   op % 8 == 7  a message of one chunk, (length byte) x 15 bytes
 * Each step is one write() to a pipe, as a writer makes it (a chunk is never
 * split); after a step with op & 0x80, and at the end, the reader receives
 * until the pipe is empty, with a small buffer now and then.  Chunks are
 * encoded here from the documented format, independently of the writer.
 * Findings: a crash, a sanitizer report, a loop that does not end, and any
 * difference from exactly the messages that writers completed (whole, in
 * the order their last chunks went in), with -EMSGSIZE exactly for each
 * message larger than max.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc.h"
#include "core/io.h"
#include "fuzz_chunks.h"

#define CHUNK   4096
#define HDR     28
#define DATA    (CHUNK - HDR - 4)
#define WRITERS 4
#define EVENTS  4096
#define MAX_GEN 40 /* deaths in a script: fewer than the reader's 64 messages under way */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t pattern(uint32_t id, uint32_t msg, size_t at)
{
	return (uint8_t)(id * 29 + msg * 7 + at * 13 + (at >> 9));
}

/* One chunk as docs/transports.md describes it; returns its length. */
static size_t encode(uint8_t *out, uint8_t flags, uint32_t chan, uint32_t arg, uint32_t msg,
		     size_t at, size_t len, bool padded)
{
	memcpy(out, "IXC1", 4);
	out[4] = flags;
	out[5] = 0;
	out[6] = (uint8_t)len;
	out[7] = (uint8_t)(len >> 8);
	put32(out + 8, chan ? 4242 : 0);  /* a pid, but ... */
	put32(out + 12, 0);               /* ... from no namespace: never asked if alive */
	put32(out + 16, chan);
	put32(out + 20, arg);
	uint32_t check = ipcx__crc32c(0, out, 24);
	put32(out + 24, check);
	for (size_t i = 0; i < len; i++)
		out[HDR + i] = pattern(chan, msg, at + i);
	size_t end = HDR + len;
	if (padded) {
		memset(out + end, 0, DATA - len);
		end = HDR + DATA;
	}
	put32(out + end, check);
	return end + 4;
}

struct writer {
	uint32_t chan; /* who it is; a new one after each death */
	uint32_t msg;  /* its message's number */
	size_t len;    /* its message's length, 0 with none under way */
	size_t sent;   /* bytes of it written */
	bool holed;    /* a chunk of it was lost: it must not arrive */
};

struct event {
	ssize_t len;   /* -EMSGSIZE: a message larger than max */
	uint32_t chan, msg;
};

struct run {
	int rd, wr;
	size_t max;
	size_t pages, room; /* the pipe's pages, and those surely free */
	struct ipcx__io io;
	struct writer w[WRITERS];
	uint32_t next_chan;
	uint32_t singles; /* messages of one chunk so far */
	int gens;
	struct event ev[EVENTS];
	int nev, taken, calls;
};

static void expect(struct run *r, ssize_t len, uint32_t chan, uint32_t msg)
{
	if (r->nev < EVENTS)
		r->ev[r->nev++] = (struct event){ len, chan, msg };
}

static void drain(struct run *r);

/*
 * One write, as a writer makes it.  Each takes at most one page of the pipe
 * (at most PIPE_BUF bytes: a page of its own, or the end of the last one);
 * when none is surely free, the reader first empties the pipe.
 */
static void put(struct run *r, const uint8_t *b, size_t n)
{
	if (!n)
		return;
	if (!r->room) {
		drain(r);
		r->room = r->pages;
	}
	if (write(r->wr, b, n) != (ssize_t)n)
		abort(); /* the pipe has room: a write of at most PIPE_BUF goes in whole */
	r->room--;
}

/* The next chunk of writer w's message (starting one of len bytes if none). */
static void step_chunk(struct run *r, struct writer *w, size_t len, size_t cut)
{
	if (!w->len) {
		w->len = len > DATA ? len : DATA + 1 + len;
		w->sent = 0;
		w->msg++;
		w->holed = false;
	}
	static uint8_t c[CHUNK];
	size_t piece = w->len - w->sent < DATA ? w->len - w->sent : DATA;
	uint8_t flags = (uint8_t)((w->sent == 0 ? 1 : 0) | (w->sent + piece == w->len ? 2 : 0));
	uint32_t arg = (uint32_t)(w->sent == 0 ? w->len : w->sent);
	size_t n = encode(c, flags, w->chan, arg, w->msg, w->sent, piece, true);
	put(r, c, cut < n ? cut : n);
	if (cut < n)
		return; /* torn: the caller replaces the writer */
	if (flags & 1 && w->len > r->max && !w->holed)
		expect(r, -EMSGSIZE, 0, 0);
	w->sent += piece;
	if (w->sent == w->len) {
		if (w->len <= r->max && !w->holed)
			expect(r, (ssize_t)w->len, w->chan, w->msg);
		w->len = 0;
	}
}

/* Writer w's next chunk never arrives, and it goes on with the one after. */
static void step_lose(struct run *r, struct writer *w, size_t len)
{
	if (!w->len)
		step_chunk(r, w, len, CHUNK); /* a message under way first */
	if (!w->len)
		return;
	size_t piece = w->len - w->sent < DATA ? w->len - w->sent : DATA;
	w->sent += piece;
	w->holed = true;
	if (w->sent == w->len)
		w->len = 0;
}

/* A message of one chunk carries no writer: its pattern uses chan 0. */
static void step_single(struct run *r, size_t len)
{
	static uint8_t c[CHUNK];
	uint32_t msg = ++r->singles;
	put(r, c, encode(c, 3, 0, (uint32_t)len, msg, 0, len, false));
	expect(r, len <= r->max ? (ssize_t)len : -EMSGSIZE, 0, msg);
}

static void step_abort(struct run *r, struct writer *w, bool tell)
{
	if (tell) {
		uint8_t c[HDR + 4];
		put(r, c, encode(c, 4, w->chan, 0, 0, 0, 0, false));
	}
	w->len = 0;
}

/* Receive until the pipe is empty, checking each result against the script. */
static void drain(struct run *r)
{
	static uint8_t buf[1 << 20];
	for (;;) {
		size_t cap = r->calls++ % 4 == 3 ? r->max / 3 : r->max;
		ssize_t n = ipcx__io_try_recv(&r->io, buf, cap);
		if (n == -EAGAIN)
			return;
		if (r->taken == r->nev)
			abort(); /* more than the writers completed */
		const struct event *e = &r->ev[r->taken];
		if (n == -EMSGSIZE && (e->len == -EMSGSIZE || (size_t)e->len > cap)) {
			r->taken += e->len == -EMSGSIZE;
			continue;
		}
		if (n != e->len)
			abort(); /* not the next message, or not whole */
		for (size_t i = 0; i < (size_t)n; i++)
			if (buf[i] != pattern(e->chan, e->msg, i))
				abort();
		r->taken++;
	}
}

static void step(struct run *r, uint8_t op, uint8_t len, const uint8_t *junk, size_t njunk)
{
	struct writer *w = &r->w[(op / 8) % WRITERS];
	switch (op % 8) {
	case 4:
		if (op & 0x40) {
			step_lose(r, w, (size_t)len * 97);
			break;
		}
		if (r->gens++ >= MAX_GEN)
			break;
		step_chunk(r, w, (size_t)len * 97, len);
		*w = (struct writer){ .chan = r->next_chan++ };
		break;
	case 5:
		put(r, junk, njunk);
		break;
	case 6:
		step_abort(r, w, op & 0x40);
		break;
	case 7:
		step_single(r, (size_t)len * 15);
		break;
	default:
		step_chunk(r, &r->w[op % WRITERS], (size_t)len * 97, CHUNK);
	}
}

void ipcx_fuzz_chunks(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	static struct run r;
	memset(&r, 0, sizeof(r));
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return;
	r.rd = fds[0];
	r.wr = fds[1];
	fcntl(r.wr, F_SETPIPE_SZ, 1 << 20);
	int sz = fcntl(r.wr, F_GETPIPE_SZ);
	r.pages = r.room = sz > CHUNK ? (size_t)sz / CHUNK : 1;
	r.max = 1 + (size_t)data[0] * 97;
	ipcx__io_init(&r.io, r.rd, IPCX__FRAME_CHUNK, r.max, false);
	for (int k = 0; k < WRITERS; k++)
		r.w[k].chan = (uint32_t)k + 1;
	r.next_chan = WRITERS + 1;
	size_t i = 1;
	while (i + 2 <= size && r.nev < EVENTS - 2) {
		uint8_t op = data[i], len = data[i + 1];
		i += 2;
		size_t njunk = size - i < len ? size - i : len;
		const uint8_t *junk = data + i;
		if (op % 8 == 5)
			i += njunk;
		step(&r, op, len, junk, njunk);
		if (op & 0x80) {
			drain(&r);
			r.room = r.pages;
		}
	}
	drain(&r);
	if (r.taken != r.nev)
		abort(); /* a completed message was not delivered */
	ipcx__io_fini(&r.io);
	close(r.rd);
	close(r.wr);
}
