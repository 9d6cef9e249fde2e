/*
 * File locks: open-file-description record locks (F_OFD_SETLK) and flock.
 *
 * Neither has a timed wait in the kernel.  The ways to add one are
 *   - a timer whose signal interrupts the blocking call: it needs a signal
 *     handler, and a library must not own the program's signal dispositions;
 *   - a helper thread blocking in the call, cancelled on timeout: whether the
 *     lock was taken just as the cancel came is hard to tell, and flock is
 *     not a cancellation point;
 *   - trying without blocking and sleeping in between.
 * This file does the last: a wait of 1 ms, doubling up to 32 ms, never past
 * the deadline.  The cost is at most about 30 wake-ups a second per waiter
 * (no core is burnt) and up to 32 ms of lateness once the lock is free, with
 * no queueing between waiters.  A timeout of -1 blocks in the kernel, which
 * wakes the waiter as soon as the lock is released.
 */
#include "core/clock.h"
#include "core/error.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MAX_MS 32

struct ipcx_lock {
	int fd;
};

/* One attempt; -EAGAIN when someone else holds a conflicting lock. */
static int lock_once(int fd, off_t start, off_t len, unsigned flags, bool block)
{
	int r;
	if (flags & IPCX_LOCK_FLOCK) {
		int op = (flags & IPCX_LOCK_SHARED ? LOCK_SH : LOCK_EX) | (block ? 0 : LOCK_NB);
		r = flock(fd, op);
	} else {
		struct flock fl = { .l_type = flags & IPCX_LOCK_SHARED ? F_RDLCK : F_WRLCK,
				    .l_whence = SEEK_SET, .l_start = start, .l_len = len };
		r = fcntl(fd, block ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
	}
	if (r == 0)
		return 0;
	if (errno == EWOULDBLOCK || errno == EAGAIN || errno == EACCES)
		return -EAGAIN;
	return -errno;
}

static int check_args(int fd, off_t start, off_t len, unsigned flags)
{
	if (flags & ~(IPCX_LOCK_SHARED | IPCX_LOCK_FLOCK))
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	if (fd < 0)
		return ipcx__fail(-EBADF, "bad descriptor %d", fd);
	if (start < 0 || len < 0)
		return ipcx__fail(-EINVAL, "negative range");
	if ((flags & IPCX_LOCK_FLOCK) && (start || len))
		return ipcx__fail(-EINVAL, "flock locks the whole file: start and len must be 0");
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

IPCX_EXPORT int ipcx_lock_fd(int fd, off_t start, off_t len, unsigned flags, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	int r = check_args(fd, start, len, flags);
	if (r < 0)
		return r;
	if (timeout_ms < 0) {
		while ((r = lock_once(fd, start, len, flags, true)) == -EINTR)
			;
		return r < 0 ? ipcx__fail(r, "locking descriptor %d", fd) : 0;
	}
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (int delay = 1;; delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2) {
		r = lock_once(fd, start, len, flags, false);
		if (r == -EINTR)
			continue;
		if (r != -EAGAIN)
			return r < 0 ? ipcx__fail(r, "locking descriptor %d", fd) : 0;
		if (timeout_ms == 0)
			return -EAGAIN;
		int left = ipcx__remaining_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		sleep_ms(left < delay ? left : delay);
	}
}

IPCX_EXPORT int ipcx_unlock_fd(int fd, off_t start, off_t len, unsigned flags)
{
	int r = check_args(fd, start, len, flags & ~IPCX_LOCK_SHARED);
	if (r < 0)
		return r;
	if (flags & IPCX_LOCK_FLOCK)
		r = flock(fd, LOCK_UN);
	else {
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = start,
				    .l_len = len };
		r = fcntl(fd, F_OFD_SETLK, &fl);
	}
	return r < 0 ? ipcx__fail(-errno, "unlocking descriptor %d", fd) : 0;
}

/*
 * Open (or create) a lock file: exclusively created when new, so that its
 * mode is ours; never through a symlink; a directory read-only; and
 * read-only as a fallback when writing is denied and the lock does not
 * need it (flock, or a shared record lock).
 */
static int open_lockfile(const char *path, unsigned flags, mode_t mode)
{
	const int base = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	int fd = open(path, base | O_RDWR | O_CREAT | O_EXCL, mode);
	if (fd >= 0) {
		/* The umask may have taken bits from an explicit mode. */
		if (fchmod(fd, mode) < 0) {
			int err = -errno;
			close(fd);
			unlink(path);
			return err;
		}
		return fd;
	}
	if (errno != EEXIST)
		return -errno;
	fd = open(path, base | O_RDWR);
	bool ro_ok = (flags & (IPCX_LOCK_FLOCK | IPCX_LOCK_SHARED)) != 0;
	if (fd < 0 && (errno == EISDIR || (errno == EACCES && ro_ok)))
		fd = open(path, base | O_RDONLY);
	return fd < 0 ? -errno : fd;
}

IPCX_EXPORT int ipcx_lock_open(const char *path, unsigned flags, mode_t mode, int timeout_ms,
			       ipcx_lock **ret)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!path || !*path || !ret)
		return ipcx__fail(-EINVAL, "no path or no place for the lock");
	if (flags & ~(IPCX_LOCK_SHARED | IPCX_LOCK_FLOCK))
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	if (mode > 0777)
		return ipcx__fail(-EINVAL, "mode %o is not a permission mode", (unsigned)mode);
	int fd = open_lockfile(path, flags, mode ? mode : 0600);
	if (fd < 0)
		return ipcx__fail(fd, "%s: open", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		close(fd);
		return ipcx__fail(-EINVAL, "%s: not a regular file or a directory", path);
	}
	int r = ipcx_lock_fd(fd, 0, 0, flags, timeout_ms);
	if (r < 0) {
		close(fd);
		return r == -EBADF ? ipcx__fail(-EBADF, "%s: an exclusive record lock needs "
						"write access", path) : r;
	}
	ipcx_lock *l = malloc(sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	l->fd = fd;
	*ret = l;
	return 0;
}

IPCX_EXPORT int ipcx_lock_fileno(ipcx_lock *l)
{
	return l ? l->fd : ipcx__fail(-EINVAL, "no lock");
}

IPCX_EXPORT int ipcx_lock_close(ipcx_lock *l)
{
	if (!l)
		return 0;
	/* Closing the only descriptor of the open file releases its locks. */
	int r = close(l->fd) < 0 && errno != EINTR ? -errno : 0;
	free(l);
	return r;
}
