/*
 * Event counters (eventfd) and passing descriptors over Unix sockets.
 *
 * The descriptor is always non-blocking: a wait polls it and then reads, and
 * if another process sharing the counter took the count in between, the read
 * says EAGAIN and the wait goes back to polling instead of blocking forever.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct ipcx_event {
	int fd;
};

static int event_wrap(int fd, ipcx_event **ret)
{
	ipcx_event *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->fd = fd;
	*ret = e;
	return 0;
}

IPCX_EXPORT int ipcx_event_open(uint64_t initial, unsigned flags, ipcx_event **ret)
{
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the event");
	if (flags & ~(IPCX_EVENT_SEMAPHORE | IPCX_INHERIT))
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	if (initial > UINT_MAX)
		return ipcx__fail(-EINVAL, "initial count %llu is above %u (eventfd's limit)",
				  (unsigned long long)initial, UINT_MAX);
	int efl = EFD_NONBLOCK | (flags & IPCX_INHERIT ? 0 : EFD_CLOEXEC) |
		  (flags & IPCX_EVENT_SEMAPHORE ? EFD_SEMAPHORE : 0);
	int fd = eventfd((unsigned)initial, efl);
	if (fd < 0)
		return ipcx__fail(-errno, "eventfd");
	int r = event_wrap(fd, ret);
	if (r < 0)
		ipcx__close_fd(fd);
	return r;
}

/* Is fd an eventfd?  Its /proc link reads "anon_inode:[eventfd]". */
static bool is_eventfd(int fd)
{
	char path[64], target[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

IPCX_EXPORT int ipcx_event_adopt(int fd, unsigned flags, ipcx_event **ret)
{
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the event");
	if (flags & ~IPCX_INHERIT)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return ipcx__fail(-EBADF, "descriptor %d is not open", fd);
	if (!is_eventfd(fd))
		return ipcx__fail(-EINVAL, "descriptor %d is not an eventfd", fd);
	int r = ipcx__set_nonblock(fd);
	if (r == 0)
		r = ipcx__set_cloexec(fd, !(flags & IPCX_INHERIT));
	if (r < 0)
		return ipcx__fail(r, "descriptor %d: fcntl", fd);
	return event_wrap(fd, ret);
}

IPCX_EXPORT int ipcx_event_post(ipcx_event *e, uint64_t n)
{
	if (!e)
		return ipcx__fail(-EINVAL, "no event");
	if (n == 0 || n == UINT64_MAX)
		return ipcx__fail(-EINVAL, "cannot post %llu (1 to 2^64-2)", (unsigned long long)n);
	for (;;) {
		if (write(e->fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
			return 0;
		if (errno != EINTR)
			return errno == EAGAIN ? ipcx__fail(-EAGAIN, "the counter would overflow")
					       : ipcx__fail(-errno, "eventfd write");
	}
}

IPCX_EXPORT int ipcx_event_wait(ipcx_event *e, int timeout_ms, uint64_t *ret)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!e || !ret)
		return ipcx__fail(-EINVAL, "no event or no place for the count");
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		uint64_t v;
		if (read(e->fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
			*ret = v;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return ipcx__fail(-errno, "eventfd read");
		if (timeout_ms == 0)
			return -EAGAIN;
		int r = ipcx__wait_fd(e->fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

IPCX_EXPORT int ipcx_event_fileno(ipcx_event *e)
{
	return e ? e->fd : ipcx__fail(-EINVAL, "no event");
}

IPCX_EXPORT int ipcx_event_close(ipcx_event *e)
{
	if (!e)
		return 0;
	int r = close(e->fd) < 0 && errno != EINTR ? -errno : 0;
	free(e);
	return r;
}

/* ---- descriptor passing ------------------------------------------------- */

/* Room for one descriptor, aligned as cmsg wants. */
union fd_cmsg {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

IPCX_EXPORT int ipcx_fd_send(int sock, int fd, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (sock < 0 || fd < 0)
		return ipcx__fail(-EBADF, "bad descriptor (socket %d, sending %d)", sock, fd);
	/* One byte of payload: a stream socket carries no ancillary data alone. */
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union fd_cmsg u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));

	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == 1)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return ipcx__fail(-errno, "sendmsg(SCM_RIGHTS) on socket %d", sock);
		if (timeout_ms == 0)
			return -EAGAIN;
		int r = ipcx__wait_fd(sock, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
}

/* Close every descriptor a message brought (all of them, on a bad message). */
static void close_all_rights(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			ipcx__close_fd(fd);
		}
	}
}

/* The one descriptor of a well-formed message, or -EBADMSG. */
static int take_one_right(struct msghdr *mh)
{
	struct cmsghdr *c = CMSG_FIRSTHDR(mh);
	if ((mh->msg_flags & MSG_CTRUNC) || !c || CMSG_NXTHDR(mh, c) ||
	    c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int))) {
		close_all_rights(mh);
		return ipcx__fail(-EBADMSG, "the message carried no descriptor, or more than one");
	}
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

IPCX_EXPORT int ipcx_fd_recv(int sock, unsigned flags, int timeout_ms, int *ret)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the descriptor");
	if (flags & ~IPCX_INHERIT)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	if (sock < 0)
		return ipcx__fail(-EBADF, "bad socket %d", sock);
	int rflags = MSG_DONTWAIT | (flags & IPCX_INHERIT ? 0 : MSG_CMSG_CLOEXEC);
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		char byte;
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		/* Room for a few, so that a peer sending several is seen and refused. */
		union {
			char buf[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		ssize_t n = recvmsg(sock, &mh, rflags);
		if (n > 0) {
			int fd = take_one_right(&mh);
			if (fd < 0)
				return fd;
			*ret = fd;
			return 0;
		}
		if (n == 0)
			return ipcx__fail(-EPIPE, "the peer closed the socket");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return ipcx__fail(-errno, "recvmsg on socket %d", sock);
		if (timeout_ms == 0)
			return -EAGAIN;
		int r = ipcx__wait_fd(sock, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}
