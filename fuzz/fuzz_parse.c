/*
 * Fuzzing the parsers that read what others wrote: URLs (a CLI argument, a
 * configuration file) and the byte stream a peer sends.  A crash, a
 * sanitizer report or a broken invariant (abort) is the finding.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/io.h"
#include "core/url.h"
#include "fuzz_parse.h"

void ipcx_fuzz_url(const uint8_t *data, size_t size)
{
	char s[IPCX__URL_MAX + 16];
	if (size >= sizeof(s))
		size = sizeof(s) - 1;
	memcpy(s, data, size);
	s[size] = '\0';
	struct ipcx__url u;
	if (ipcx__url_parse(s, &u) < 0)
		return;
	char host[256];
	uint16_t port;
	const char *path;
	ipcx__url_hostport(&u, host, sizeof(host), &port);
	ipcx__url_path(&u, 108, &path);
	/* Every option of the URL as each type in turn; the values must keep the table's bounds. */
	static const char *const words[] = { "len", "lines", "raw", NULL };
	static const struct ipcx__opt types[] = {
		IPCX__UINT("", 1, 1000, 1), IPCX__UINT("", 0, SIZE_MAX, 0), IPCX__BOOL("", 0),
		IPCX__ENUM("", words, 0),   IPCX__INT("", -1000, 1000, 0),   IPCX__MODE("", 0600),
	};
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		struct ipcx__opt t[IPCX__OPT_MAX + 1] = { { 0 } };
		for (int i = 0; i < u.nopts; i++) {
			t[i] = types[k];
			t[i].name = u.opt[i].key;
		}
		if (ipcx__url_opts(&u, t) < 0)
			continue;
		for (int i = 0; i < u.nopts; i++) {
			uint64_t v = ipcx__opt(&u, i);
			int64_t sv = (int64_t)v;
			if ((k == 0 && (v < 1 || v > 1000)) || (k == 2 && v > 1) || (k == 3 && v > 2) ||
			    (k == 4 && (sv < -1000 || sv > 1000)) || (k == 5 && v > 0777))
				abort();
		}
	}
}

/*
 * The first byte picks the framing and the limit; the rest is what the peer
 * wrote, delivered through a pipe in one piece.  Receive with buffers of
 * changing sizes until the end, checking that no message is ever longer
 * than the buffer or the limit.
 */
void ipcx_fuzz_frames(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	int framing = data[0] & 1 ? IPCX__FRAME_LINES : IPCX__FRAME_LEN;
	size_t max = 1 + (data[0] >> 1) * 97u;
	data++, size--;
	if (size > 60000) /* what fits in a pipe's buffer without a reader */
		size = 60000;
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return;
	fcntl(fds[1], F_SETPIPE_SZ, 1 << 16);
	ssize_t w = size ? write(fds[1], data, size) : 0;
	close(fds[1]);
	struct ipcx__io io;
	ipcx__io_init(&io, fds[0], framing, max, false);
	static char buf[64 << 10];
	for (size_t i = 0; i < size + 8 && w >= 0; i++) {
		size_t cap = (i * 131u) % (max + 64);
		ssize_t r = ipcx__io_try_recv(&io, buf, cap);
		if (r >= 0 && ((size_t)r > cap || (size_t)r > max))
			abort();
		if (r == -EPIPE)
			break;
		if (r < 0 && r != -EMSGSIZE && r != -EAGAIN)
			abort();
	}
	ipcx__io_fini(&io);
	close(fds[0]);
}
