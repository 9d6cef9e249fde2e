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
	uint64_t n = 0;
	size_t z = 0;
	bool b = false;
	mode_t m = 0;
	int e = 0;
	static const char *const words[] = { "len", "lines", "raw", NULL };
	ipcx__url_hostport(&u, host, sizeof(host), &port);
	ipcx__url_path(&u, 108, &path);
	for (int i = 0; i < u.nopts; i++) {
		ipcx__url_opt_u64(&u, u.opt[i].key, 1, 1000, &n);
		ipcx__url_opt_size(&u, u.opt[i].key, 0, SIZE_MAX, &z);
		ipcx__url_opt_bool(&u, u.opt[i].key, &b);
		ipcx__url_opt_enum(&u, u.opt[i].key, words, &e);
	}
	ipcx__url_opt_mode(&u, &m);
	if (m > 0777 || n > 1000)
		abort();
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

#ifdef IPCX_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	IPCX_LIBFUZZER(data, size);
	return 0;
}
#endif
