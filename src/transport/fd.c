/*
 * fd:N — a descriptor the process already has: an end of an anonymous pipe
 * or socketpair inherited from a parent, across fork or exec.  The kind of
 * descriptor decides the framing: pipes and stream sockets carry length-
 * prefixed frames (or ?framing=lines|raw), SOCK_SEQPACKET and SOCK_DGRAM keep
 * boundaries themselves.  The channel owns the descriptor and closes it.
 *
 * Also ipcx_pair(), which makes such a pair for a parent and its child.
 */
#include "core/error.h"
#include "core/fd.h"
#include "core/io.h"
#include "core/sock.h"
#include "core/tran.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PACKET_MAX_DEFAULT (64u << 10)
#define PACKET_MAX_LIMIT   (16u << 20)
#define PAIR_PIPE_ROOM     (256u << 10) /* ipcx_pair("pipe")'s pipe: see ipcx_pair */

static const struct ipcx_tran fd_tran;

/* The range of max= depends on the descriptor: checked again once it is known. */
enum { FD_FRAMING, FD_MAX, FD_NOPTS };
static const struct ipcx__opt fd_options[FD_NOPTS + 1] = {
	[FD_FRAMING] = IPCX__FRAMING_OPT,
	[FD_MAX] = IPCX__UINT("max", 1, IPCX__STREAM_MAX_LIMIT, IPCX__STREAM_MAX_DEFAULT),
};

/* What kind of descriptor fd is: its framing and whether it is a socket. */
static int classify(int fd, int *framing, bool *sock)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISFIFO(st.st_mode)) {
		*framing = IPCX__FRAME_LEN;
		*sock = false;
		return 0;
	}
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSUP;
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return -errno;
	*framing = type == SOCK_STREAM ? IPCX__FRAME_LEN : IPCX__FRAME_PACKET;
	*sock = true;
	return 0;
}

/* Adopt fd as a channel: non-blocking, close-on-exec unless inherited. */
static int adopt(int fd, unsigned flags, int framing, bool sock, size_t max_msg,
		 ipcx_chan **ret)
{
	int r = ipcx__set_nonblock(fd);
	if (r == 0)
		r = ipcx__set_cloexec(fd, !(flags & IPCX_INHERIT));
	if (r < 0)
		return r;
	return ipcx__conn_new(&fd_tran, fd, framing, max_msg, sock, ret);
}

static int fd_open(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	if (flags & IPCX_ACCEPT)
		return ipcx__fail(-EINVAL, "%s: an inherited descriptor has no peers to accept",
				  u->orig);
	char *end;
	errno = 0;
	long n = strtol(u->body, &end, 10);
	if (!*u->body || *end || errno || n < 0 || n > INT_MAX)
		return ipcx__fail(-EINVAL, "%s: want fd:N with N a descriptor number", u->orig);
	int fd = (int)n;
	int framing;
	bool sock;
	int r = classify(fd, &framing, &sock);
	if (r == -EBADF)
		return ipcx__fail(r, "%s: descriptor %d is not open", u->orig, fd);
	if (r < 0)
		return ipcx__fail(r, "%s: descriptor %d is not a pipe or a socket", u->orig, fd);
	bool packet = framing == IPCX__FRAME_PACKET;
	size_t max = packet ? PACKET_MAX_DEFAULT : IPCX__STREAM_MAX_DEFAULT;
	if (ipcx__opt_set(u, FD_MAX)) {
		if ((r = ipcx__opt_within(u, FD_MAX, 1, packet ? PACKET_MAX_LIMIT
								: IPCX__STREAM_MAX_LIMIT)) < 0)
			return r;
		max = (size_t)ipcx__opt(u, FD_MAX);
	}
	if (!packet && ipcx__opt_set(u, FD_FRAMING))
		framing = (int)ipcx__opt(u, FD_FRAMING);
	return adopt(fd, flags, framing, sock, max, ret);
}

static const struct ipcx_tran fd_tran = {
	.scheme = "fd",
	.options = fd_options,
	.listen = fd_open,
	.dial = fd_open,
};

const struct ipcx_tran *const ipcx__trans_fd[] = { &fd_tran, NULL };

IPCX_EXPORT int ipcx_pair(const char *kind, unsigned flags, ipcx_chan **a, ipcx_chan **b)
{
	ipcx__clear_detail();
	if (!kind || !a || !b)
		return -EINVAL;
	if (flags & ~IPCX_INHERIT)
		return ipcx__fail(-EINVAL, "ipcx_pair: unknown flags 0x%x", flags & ~IPCX_INHERIT);
	int fds[2], framing;
	bool sock;
	if (strcmp(kind, "socket") == 0) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
			return -errno;
		int want = (int)(PACKET_MAX_DEFAULT + 4096);
		for (int i = 0; i < 2; i++)
			ipcx__sock_sndbuf(fds[i], want);
		framing = IPCX__FRAME_PACKET;
		sock = true;
	} else if (strcmp(kind, "pipe") == 0) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			return -errno;
		/* pipe2 gives [read, write]; a writes, b reads. */
		int t = fds[0];
		fds[0] = fds[1];
		fds[1] = t;
		/*
		 * Room for a 64 KiB message whole (its 4-byte length pushes it past
		 * the kernel's default 64 KiB: one write and one wake-up of the
		 * reader, not two) and a 1 MiB one in four steps, not sixteen.  Not
		 * max= (16 MiB) as far as pipe-max-size allows: each pipe counts its
		 * size against the user's pipe quota (pipe-user-pages-soft, 64 MiB),
		 * and a user over it gets small pipes, ours and every other
		 * program's.  256 KiB: a 1 MiB round trip 0.79 of the 64 KiB pipe's,
		 * 128 KiB 0.95, 1 MiB 0.60 (docs/bench.md).
		 */
		(void)ipcx__pipe_fit(fds[1], PAIR_PIPE_ROOM);
		framing = IPCX__FRAME_LEN;
		sock = false;
	} else {
		return ipcx__fail(-EINVAL, "ipcx_pair: unknown kind '%s' (want socket or pipe)", kind);
	}
	size_t max = sock ? PACKET_MAX_DEFAULT : IPCX__STREAM_MAX_DEFAULT;
	ipcx_chan *ca = NULL, *cb = NULL;
	int r = adopt(fds[0], flags, framing, sock, max, &ca);
	if (r == 0)
		ipcx__conn_exact_on_poll(ca);
	if (r < 0) {
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if ((r = adopt(fds[1], flags, framing, sock, max, &cb)) < 0) {
		ipcx_close(ca);
		close(fds[1]);
		return r;
	}
	ipcx__conn_exact_on_poll(cb);
	*a = ca;
	*b = cb;
	return 0;
}
