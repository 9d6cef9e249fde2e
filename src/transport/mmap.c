/*
 * mmap:/path — a persistent message log: the ring of shm:, in a regular
 * file mapped MAP_SHARED, with a CRC-32C on every record.
 *
 * listen and dial do the same thing: open the log, creating it (O_EXCL,
 * 0600 unless mode=, never through a symlink) if it does not exist, so that
 * `ipcx send mmap:/path a b c` works with nobody receiving.  A log that
 * exists is used only if its owner and mode say that nobody but the caller,
 * root, and whom mode= names could have written it (ipcx__trust).  The file is
 * never removed by ipcx: it is the point of the log.  A receive takes the
 * oldest record (the read position is in the file, so a later process goes
 * on where the last one stopped).  The log is bounded: when it is full the
 * oldest records are overwritten and counted as dropped (policy=overwrite,
 * the default; drop and block are the alternatives).
 *
 * Every process holds a shared lock (OFD) on the file.  The opener that gets it
 * exclusively is alone: it formats a new file, or recovers an old one (the
 * peers of earlier runs are gone; a record a killed writer left half
 * written is dropped, and the log is cut at the first record whose checksum
 * fails, after a machine crash).  The others wait for that, up to timeout=
 * (milliseconds, default 10000): any process that can open the file can
 * take the exclusive lock and keep it, and an open must not wait for ever.
 * durability=none|batch|always: msync never, every 64 records and on close,
 * or after every record.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/tran.h"
#include "core/trust.h"
#include "core/url.h"
#include "shm/ring.h"
#include "shm/ringchan.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct ipcx_tran mmap_tran;

/* durability=: when appends reach the disk (docs/transports.md). */
static const char *const durs[] = { "none", "batch", "always", NULL };
enum { MMAP_MODE = RING_NOPTS, MMAP_KEEP, MMAP_DURABILITY, MMAP_TIMEOUT, MMAP_NOPTS };
static const struct ipcx__opt mmap_options[MMAP_NOPTS + 1] = {
	IPCX__RING_OPTS,
	[MMAP_MODE] = IPCX__MODE("mode", 0600),
	[MMAP_KEEP] = IPCX__BOOL("keep", false), /* taken, and moot: a log always stays */
	[MMAP_DURABILITY] = IPCX__ENUM("durability", durs, 0),
	/* the wait for an opener that formats or recovers, in milliseconds */
	[MMAP_TIMEOUT] = IPCX__UINT("timeout", 0, INT32_MAX, 10000),
};

#define WAIT_MAX_NS (32 * 1000000LL)

static int mmap_unmap(struct ringchan *rc)
{
	munmap(rc->map, rc->maplen);
	ipcx__close_fd(rc->lockfd); /* drops the lock */
	return 0;
}

/*
 * Open-file-description locks on the whole file: unlike flock(), turning
 * the exclusive lock into a shared one is atomic, so no other opener can
 * slip in and "recover" a log we are attached to.
 */
static int lock_fd(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
	while (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		if (errno != EINTR)
			return errno == EACCES ? -EWOULDBLOCK : -errno;
	return 0;
}

/*
 * The shared lock, once the exclusive holder lets go, but not after deadline.
 * The kernel has no timed wait for a record lock: try, and sleep between
 * tries (1 ms doubling up to 32 ms), as ipcx_lock does.
 */
static int wait_shared(int fd, const struct ipcx__url *u, int64_t deadline, uint64_t ms)
{
	int64_t step = 1000000;
	for (;;) {
		int r = lock_fd(fd, F_RDLCK);
		if (r != -EWOULDBLOCK)
			return r;
		int64_t now = ipcx__now_ns();
		if (now >= deadline)
			return ipcx__fail(-ETIMEDOUT, "%s: another process holds the log exclusively "
					  "(formatting or recovering it, or keeping it) for more than "
					  "timeout=%llu ms", u->orig, (unsigned long long)ms);
		int64_t until = now + step < deadline ? now + step : deadline;
		struct timespec ts = { until / 1000000000, until % 1000000000 };
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		step = step * 2 > WAIT_MAX_NS ? WAIT_MAX_NS : step * 2;
	}
}

static int map_file(struct ringchan *rc, const struct ipcx__url *u, uint64_t size)
{
	if (size < RING_HDR || size > RING_MAX_CAP * 2)
		return ipcx__fail(-EBADMSG, "%s: %llu bytes is not the size of a log", u->orig,
				  (unsigned long long)size);
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, rc->lockfd, 0);
	if (m == MAP_FAILED)
		return ipcx__fail(-errno, "%s: mmap: %s", u->orig, strerror(errno));
	rc->map = m;
	rc->maplen = size;
	return 0;
}

/* Alone with the file: lay out a new log, or recover an old one. */
static int open_exclusive(struct ringchan *rc, const struct ipcx__url *u,
			  const struct ring_geom *g, uint64_t size)
{
	bool fresh = size == 0;
	if (fresh) {
		size = ipcx__ring_size(g);
		if (ftruncate(rc->lockfd, (off_t)size) < 0)
			return ipcx__fail(-errno, "%s: cannot size the log", u->orig);
	}
	int r = map_file(rc, u, size);
	if (r < 0)
		return r;
	r = ipcx__ringchan_init(rc, &mmap_tran, fresh, g);
	if (r == 0 && !fresh)
		r = ipcx__ring_recover(&rc->ring) < 0 ? -EBADMSG : 0;
	if (r == 0 && fresh)
		msync(rc->map, rc->maplen, MS_SYNC);
	if (r < 0) {
		ipcx__ring_detach(&rc->ring);
		munmap(rc->map, rc->maplen);
		return r == -EAGAIN ? ipcx__fail(-EBADMSG, "%s: not an ipcx log", u->orig) : r;
	}
	return 0;
}

static int open_log(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct ring_geom g = { 0 };
	mode_t mode = (mode_t)ipcx__opt(u, MMAP_MODE);
	int dur = (int)ipcx__opt(u, MMAP_DURABILITY);
	uint64_t timeout_ms = ipcx__opt(u, MMAP_TIMEOUT);
	const char *path;
	int r;
	if ((r = ipcx__url_path(u, PATH_MAX, &path)) || (r = ipcx__ring_geom_parse(u, &g)))
		return r;
	int64_t deadline = ipcx__now_ns() + (int64_t)timeout_ms * 1000000;
	if (!ipcx__opt_set(u, RING_OPT_POLICY))
		g.policy = (g.flags & RING_F_SPSC) ? RING_DROP : RING_OVERWRITE;
	g.flags |= RING_F_CRC;
	struct ringchan *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	snprintf(rc->url, sizeof(rc->url), "%s", u->orig);
	int oflags = O_RDWR | O_NOFOLLOW | ((flags & IPCX_INHERIT) ? 0 : O_CLOEXEC);
	bool created = true;
	rc->lockfd = open(path, oflags | O_CREAT | O_EXCL, mode);
	if (rc->lockfd < 0 && errno == EEXIST) {
		created = false;
		rc->lockfd = open(path, oflags);
	}
	if (rc->lockfd < 0) {
		r = ipcx__fail(-errno, "%s: cannot open: %s", u->orig, strerror(errno));
		free(rc);
		return r;
	}
	struct stat st;
	if (created && fchmod(rc->lockfd, mode) < 0)
		r = -errno;
	else if (fstat(rc->lockfd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = ipcx__fail(-EINVAL, "%s: not a regular file", u->orig);
	else if (!created) /* another user's log, or one others may write, is forgeable */
		r = ipcx__trust(u->orig, st.st_uid, st.st_gid, st.st_mode, mode);
	else
		r = 0;
	if (r == 0 && (r = lock_fd(rc->lockfd, F_WRLCK)) == 0)
		r = open_exclusive(rc, u, &g, (uint64_t)st.st_size);
	else if (r == -EWOULDBLOCK) {
		/* Others have it open; an exclusive holder formats or recovers first. */
		if ((r = wait_shared(rc->lockfd, u, deadline, timeout_ms)) == 0 &&
		    (r = fstat(rc->lockfd, &st) < 0 ? -errno : 0) == 0 &&
		    (r = map_file(rc, u, (uint64_t)st.st_size)) == 0) {
			r = ipcx__ringchan_init(rc, &mmap_tran, false, &g);
			if (r < 0)
				munmap(rc->map, rc->maplen);
			if (r == -EAGAIN)
				r = ipcx__fail(-EBADMSG, "%s: not an ipcx log", u->orig);
		}
	}
	if (r == 0)
		r = lock_fd(rc->lockfd, F_RDLCK); /* exclusive to shared, atomically */
	if (r < 0) {
		if (rc->ring.h) {
			ipcx__ring_detach(&rc->ring);
			munmap(rc->map, rc->maplen);
		}
		close(rc->lockfd);
		if (created)
			unlink(path);
		free(rc);
		return r;
	}
	rc->ring.persistent = true;
	rc->ring.durability = dur;
	rc->unmap = mmap_unmap;
	/* No creator record: a log is meant to outlive its writers, as keep=1 is. */
	*ret = &rc->c;
	return 0;
}

static const struct ipcx_tran mmap_tran = {
	.scheme = "mmap",
	.options = mmap_options,
	.listen = open_log,
	.dial = open_log,
};

const struct ipcx_tran *const ipcx__trans_mmap[] = { &mmap_tran, NULL };
