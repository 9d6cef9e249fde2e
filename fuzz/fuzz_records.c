/*
 * Fuzzing the reader of file: record files, which other processes write
 * and which a killed writer leaves torn.  The input is a script: its first
 * byte picks the reader's max; then each step is an operation byte and a
 * length byte, followed by that many payload bytes:
 *   op % 4 == 0, 1  a whole record (encoded here from the documented format)
 *   op % 4 == 2     a record cut short after (length byte) bytes
 *   op % 4 == 3     raw bytes
 * A reader then receives until nothing is left.  Findings: a crash, a
 * sanitizer report, a loop that does not end, a message longer than the
 * buffer or max, and — when the script wrote only whole records — any
 * difference from exactly those records, in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc.h"
#include "fuzz_records.h"

#define MAX_RECS 512

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A record as docs/transports.md describes it, written independently. */
static size_t encode(uint8_t *out, const uint8_t *payload, uint32_t len)
{
	put32(out, 0x52584349u);
	put32(out + 4, len);
	put32(out + 8, 0x01020304u); /* a writer id that is not the reader's */
	put32(out + 12, 0x05060708u);
	put32(out + 16, ipcx__crc32c(0, payload, len));
	put32(out + 20, ipcx__crc32c(0, out, 20));
	memcpy(out + 24, payload, len);
	return 24 + (size_t)len;
}

struct script {
	uint8_t *file;
	size_t len;
	const uint8_t *rec[MAX_RECS]; /* payloads of the whole records, in order */
	uint32_t reclen[MAX_RECS];
	int nrec;
	bool clean; /* nothing but whole records */
};

static void build(struct script *s, const uint8_t *d, size_t n)
{
	memcpy(s->file, "ipcxrec1\0\0\0\0\0\0\0\0", 16);
	s->len = 16;
	s->nrec = 0;
	s->clean = true;
	size_t i = 0;
	while (i + 2 <= n && s->nrec < MAX_RECS) {
		uint8_t op = d[i], len = d[i + 1];
		i += 2;
		size_t avail = n - i < len ? n - i : len;
		const uint8_t *p = d + i;
		i += avail;
		uint8_t rec[24 + 255];
		size_t rl = encode(rec, p, (uint32_t)avail);
		switch (op % 4) {
		case 0:
		case 1:
			memcpy(s->file + s->len, rec, rl);
			s->len += rl;
			s->rec[s->nrec] = p;
			s->reclen[s->nrec++] = (uint32_t)avail;
			break;
		case 2: /* cut after `op / 4` bytes: inside the header or the payload */
			rl = (size_t)(op / 4) % rl;
			memcpy(s->file + s->len, rec, rl);
			s->len += rl;
			s->clean = false;
			break;
		default:
			memcpy(s->file + s->len, p, avail);
			s->len += avail;
			s->clean = s->clean && avail == 0;
		}
	}
}

void ipcx_fuzz_records(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	static uint8_t file[16 + (24 + 255) * MAX_RECS];
	static struct script s;
	s.file = file;
	size_t max = 1 + (size_t)data[0] * 2;
	build(&s, data + 1, size - 1);

	char path[] = "/tmp/ipcx-fuzz-records-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return;
	if (write(fd, s.file, s.len) != (ssize_t)s.len) {
		close(fd);
		unlink(path);
		return;
	}
	close(fd);
	char url[128];
	snprintf(url, sizeof(url), "file:%s?max=%zu", path, max);
	ipcx_chan *c;
	int r = ipcx_dial(url, 0, &c);
	unlink(path); /* the open channel keeps reading it */
	if (r < 0)
		abort(); /* a file that starts with the header always opens */
	static uint8_t buf[512];
	int got = 0;
	size_t want = 0; /* the next whole record expected, in a clean file */
	for (size_t k = 0;; k++) {
		if (k > s.len) /* every step consumes at least a byte of the file */
			abort();
		size_t cap = (k * 37u) % (max + 40);
		ssize_t n = ipcx_recv(c, buf, cap, 0);
		if (n == -EAGAIN)
			break;
		if (n == -EMSGSIZE) {
			/* Too large for cap (it waits) or for max (it is skipped). */
			n = ipcx_recv(c, buf, sizeof(buf), 0);
			if (n == -EMSGSIZE || n == -EAGAIN) {
				while (s.clean && want < (size_t)s.nrec && s.reclen[want] > max)
					want++;
				if (n == -EAGAIN)
					break;
				continue;
			}
		}
		if (n < 0 || (size_t)n > max || (size_t)n > sizeof(buf))
			abort();
		got++;
		if (s.clean) {
			while (want < (size_t)s.nrec && s.reclen[want] > max)
				want++; /* skipped with -EMSGSIZE above */
			if (want >= (size_t)s.nrec || s.reclen[want] != (size_t)n ||
			    memcmp(buf, s.rec[want], (size_t)n))
				abort();
			want++;
		}
	}
	if (s.clean) {
		while (want < (size_t)s.nrec && s.reclen[want] > max)
			want++;
		if (want != (size_t)s.nrec)
			abort(); /* a whole record was never handed out */
	}
	ipcx_close(c);
}
