/* Time, descriptors and signals: the small system-call helpers. */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int64_t ipcx__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ipcx__check_timeout(int timeout_ms)
{
	if (timeout_ms >= -1)
		return 0;
	return ipcx__fail(-EINVAL, "timeout %d ms: want -1 (wait forever), 0 (do not wait) or "
			  "a number of milliseconds", timeout_ms);
}

int64_t ipcx__deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	if (timeout_ms == 0)
		return 0;
	return ipcx__now_ns() + (int64_t)timeout_ms * 1000000;
}

int ipcx__remaining_ms(int64_t deadline)
{
	if (deadline <= 0)
		return (int)deadline;
	int64_t left = deadline - ipcx__now_ns();
	if (left <= 0)
		return 0;
	/* Round up, so that a wait never ends before its deadline. */
	int64_t ms = (left + 999999) / 1000000;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

int ipcx__wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	if (deadline == 0) {
		/* A timeout of 0: look once, never wait. */
		int r = poll(&p, 1, 0);
		return r > 0 ? p.revents : r == 0 ? -EAGAIN : -errno;
	}
	for (;;) {
		int ms = ipcx__remaining_ms(deadline);
		int r = poll(&p, 1, ms);
		if (r > 0)
			return p.revents;
		if (r == 0) {
			if (ms == 0 || ipcx__remaining_ms(deadline) == 0)
				return -ETIMEDOUT;
			continue; /* woke a little early: the kernel rounds down */
		}
		if (errno != EINTR)
			return -errno;
	}
}

int ipcx__set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int ipcx__set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -errno;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

void ipcx__close_fd(int fd)
{
	if (fd < 0)
		return;
	int saved = errno;
	close(fd);
	errno = saved;
}

/*
 * A write to a pipe without readers raises SIGPIPE, and pipes have no
 * MSG_NOSIGNAL.  Linux 6.18 gave pwritev2() one, RWF_NOSIGNAL: the write
 * fails with EPIPE and no signal is generated at all, so nothing can reach
 * the caller whatever its handler or its threads do, in one system call.
 * (Offset -1 is the file position, which a pipe does not have: a plain
 * writev.)  An older kernel refuses the flag with EOPNOTSUPP before writing
 * anything; then, and from then on in this process, block SIGPIPE in this
 * thread around the write, and if it failed with EPIPE consume the signal
 * it left pending (unless one was pending already, which belongs to someone
 * else).  A signal raised by a write is directed at the writing thread, so
 * that too is safe with threads, at two sigprocmask calls per write.
 */
#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100
#endif

static ssize_t writev_masked(int fd, const struct iovec *iov, int n)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t r = writev(fd, iov, n);
	int err = r < 0 ? errno : 0;
	if (err == EPIPE && !sigismember(&old, SIGPIPE)) {
		/* SIGPIPE was not blocked before, so any pending one is ours. */
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r >= 0 ? r : -err;
}

/* Set once the kernel has refused RWF_NOSIGNAL (relaxed: a stale read costs one retry). */
static int no_rwf_nosignal;

ssize_t ipcx__writev_nosig(int fd, const struct iovec *iov, int n)
{
	if (!__atomic_load_n(&no_rwf_nosignal, __ATOMIC_RELAXED)) {
		ssize_t r = pwritev2(fd, iov, n, -1, RWF_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno != EOPNOTSUPP)
			return -errno;
		__atomic_store_n(&no_rwf_nosignal, 1, __ATOMIC_RELAXED);
	}
	return writev_masked(fd, iov, n);
}

/* The largest pipe an unprivileged F_SETPIPE_SZ may ask for. */
static size_t pipe_max_size(void)
{
	unsigned long limit = 1u << 20;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
	if (f) {
		if (fscanf(f, "%lu", &limit) != 1)
			limit = 1u << 20;
		fclose(f);
	}
	return limit;
}

int ipcx__pipe_fit(int fd, size_t bytes)
{
	int cur = fcntl(fd, F_GETPIPE_SZ);
	if (cur < 0)
		return -errno;
	if (bytes <= (size_t)cur)
		return cur;
	size_t limit = pipe_max_size();
	if (bytes > limit)
		bytes = limit;
	if (bytes > (size_t)cur && bytes <= INT_MAX) {
		int got = fcntl(fd, F_SETPIPE_SZ, (int)bytes);
		if (got > 0)
			return got;
	}
	return cur;
}
