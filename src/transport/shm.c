/*
 * shm:/name — the ring channel over POSIX shared memory (shm_open).
 *
 * listen creates the object exclusively (0600 unless mode=), sizes it, lays
 * out the ring and owns it: close removes it unless keep=1.  dial attaches
 * to an existing ring and takes its geometry from the header (the creation
 * options of the URL are ignored there, spin= is honoured).  Any attached
 * process may send and receive: it is a queue, like mq:.
 */
#include "core/error.h"
#include "core/fd.h"
#include "core/record.h"
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
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct ipcx_tran shm_tran;

enum { SHM_MODE = RING_BCAST_NOPTS, SHM_KEEP, SHM_NOPTS };
static const struct ipcx__opt shm_options[SHM_NOPTS + 1] = {
	IPCX__RING_OPTS,
	IPCX__RING_BCAST_OPTS,
	[SHM_MODE] = IPCX__MODE("mode", 0600),
	[SHM_KEEP] = IPCX__BOOL("keep", false),
};

static int shm_name(const struct ipcx__url *u, const char **ret)
{
	const char *n = u->body;
	size_t len = strlen(n);
	if (n[0] != '/' || len < 2 || strchr(n + 1, '/'))
		return ipcx__fail(-EINVAL, "%s: want shm:/name (one '/', then a name)", u->orig);
	if (len > NAME_MAX)
		return ipcx__fail(-EINVAL, "%s: name longer than %d bytes", u->orig, NAME_MAX);
	*ret = n;
	return 0;
}

/*
 * The object's exclusive flock decides who may remove its name.  A listener
 * takes it on the object it creates and holds it until it closes: a flock
 * belongs to the open file description, which the mapping keeps after the
 * descriptor is closed (and so does a fork()ed child's copy of the mapping).
 * A listener replacing a stale ring takes it too, without waiting, judges the
 * ring under it and removes the name; so does ipcx rm.  Whoever removes the
 * name holds the lock and removes it only while it still leads to the object
 * locked (same device and inode), so an unlink never hits a ring another
 * listener made in the meantime.  Nobody ever waits for the lock: another
 * process can take a shared flock on any object it can open, and keep it.
 */
static int unlink_if_ours(const char *name, dev_t dev, ino_t ino)
{
	struct stat now;
	int cur = shm_open(name, O_RDONLY, 0);
	int r = cur < 0 || fstat(cur, &now) < 0 ? -errno : 0;
	if (r == 0 && (now.st_dev != dev || now.st_ino != ino))
		r = -ENOENT; /* removed since, and perhaps made again */
	else if (r == 0 && shm_unlink(name) < 0)
		r = -errno;
	ipcx__close_fd(cur);
	return r;
}

static int shm_unmap(struct ringchan *rc)
{
	int r = 0;
	if (rc->owner && rc->keep) {
		atomic_store(&((struct ring_hdr *)rc->map)->kept, 1);
	} else if (rc->owner) {
		/* Still mapped, so still locked: the name is ours to remove. */
		r = unlink_if_ours(rc->name, rc->dev, rc->ino);
		if (r == 0)
			ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_POSIX_SHM, rc->name));
	}
	munmap(rc->map, rc->maplen); /* drops the lock */
	return r;
}

static int map_fd(int fd, size_t len, void **ret)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	*ret = m;
	return 0;
}

/* The ring in fd is ours (same owner), valid, not kept, and nobody is attached. */
static bool abandoned(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || st.st_size < RING_HDR ||
	    (uint64_t)st.st_size > RING_MAX_CAP * 2)
		return false;
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return false;
	struct ring r;
	bool stale = ipcx__ring_attach(&r, m, (size_t)st.st_size, true) == 0 &&
		     ipcx__ring_abandoned(&r);
	munmap(m, (size_t)st.st_size);
	return stale;
}

/*
 * A ring left by a listener that was killed (it could not remove it): remove
 * it so that a new listener can create the name again, as a stale socket
 * file is.  Judged and removed under the object's lock (above): a live
 * listener holds it, and of two listeners that find a stale ring at once,
 * one removes it, and the other, finding it locked or its name gone, is
 * refused as by a live ring.
 */
static bool remove_stale(const char *name)
{
	int fd = shm_open(name, O_RDWR, 0);
	if (fd < 0)
		return false;
	struct stat st;
	bool removed = flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
		       abandoned(fd) && unlink_if_ours(name, st.st_dev, st.st_ino) == 0;
	close(fd); /* drops the lock */
	if (removed)
		ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_POSIX_SHM, name));
	return removed;
}

/*
 * Lock the object we have just created, before it is a ring: nobody has a
 * reason to hold its lock for more than a look (a listener judging it stale,
 * ipcx rm), so wait a little, never long.
 */
static int lock_new(int fd)
{
	for (int tries = 0;; tries++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (tries >= 1000)
			return -EBUSY;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

/* Create the object exclusively, replacing a stale ring; fd or -errno. */
static int create(const char *name, mode_t mode)
{
	/* shm_open adds O_NOFOLLOW and O_CLOEXEC; O_EXCL: no squatter. */
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, mode);
	if (fd >= 0 || errno != EEXIST)
		return fd < 0 ? -errno : fd;
	if (!remove_stale(name))
		return -EEXIST; /* a live ring, not a ring, or replaced by another listener */
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, mode);
	return fd < 0 ? -errno : fd;
}

static int shm_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct ring_geom g = { 0 };
	mode_t mode = (mode_t)ipcx__opt(u, SHM_MODE);
	bool keep = ipcx__opt(u, SHM_KEEP);
	const char *name;
	int r;
	if ((r = shm_name(u, &name)) || (r = ipcx__ring_geom_parse(u, &g)) ||
	    (r = ipcx__ring_bcast_parse(u, &g)))
		return r;
	struct ringchan *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	snprintf(rc->url, sizeof(rc->url), "%s", u->orig);
	snprintf(rc->name, sizeof(rc->name), "%s", name);
	rc->maplen = ipcx__ring_size(&g);
	int fd = create(name, mode);
	if (fd < 0) {
		r = fd == -EEXIST ? ipcx__fail(fd, "%s: exists, and is not a stale ring to replace",
					       u->orig)
				  : ipcx__fail(fd, "%s: cannot create: %s", u->orig, strerror(-fd));
		free(rc);
		return r;
	}
	/*
	 * Locked until we close (see unlink_if_ours): a ring, formatted and not
	 * yet joined, or live, never looks stale to another listener.
	 */
	struct stat st;
	bool made = fstat(fd, &st) == 0;
	if (!made)
		r = ipcx__fail(-errno, "%s: cannot stat the segment", u->orig);
	else if ((r = lock_new(fd)) < 0)
		r = ipcx__fail(r, "%s: another process holds a lock on the new segment", u->orig);
	else if (fchmod(fd, mode) < 0 || ftruncate(fd, (off_t)rc->maplen) < 0)
		r = ipcx__fail(-errno, "%s: cannot size the segment", u->orig);
	else
		r = map_fd(fd, rc->maplen, &rc->map);
	if (r == 0) {
		rc->owner = true;
		rc->keep = keep;
		rc->dev = st.st_dev;
		rc->ino = st.st_ino;
		rc->unmap = shm_unmap;
		r = ipcx__ringchan_init(rc, &shm_tran, true, &g);
		if (r < 0)
			munmap(rc->map, rc->maplen);
	}
	if (r < 0 && made)
		unlink_if_ours(name, st.st_dev, st.st_ino);
	close(fd); /* the mapping keeps the lock */
	if (r < 0) {
		free(rc);
		return r;
	}
	(void)flags; /* the channel keeps no descriptor to inherit */
	if (!keep) /* a kept ring is meant to outlive us: not an orphan for gc */
		ipcx__record_created(IPCX__OBJ_NAMED(IPCX_OBJ_POSIX_SHM, rc->name));
	*ret = &rc->c;
	return 0;
}

/*
 * After the wait for a creator: an object too small for a ring's header was
 * cut short (or its creator died before sizing it); a zeroed one of a
 * ring's size is not ready.
 */
static int not_ready(const struct ipcx__url *u, off_t size)
{
	if (size < RING_HDR)
		return ipcx__fail(-EBADMSG, "%s: the object is %lld bytes, less than a ring's "
					    "header (cut short, or its creator died before sizing it)",
				  u->orig, (long long)size);
	return ipcx__fail(-ECONNREFUSED, "%s: not a ready ring", u->orig);
}

/*
 * The creator maps and formats after shm_open: wait a little for it.  A ring
 * that someone we do not trust could have written (mode: whom the URL lets
 * write) is not read: any user may take a name in /dev/shm first.
 */
static int shm_attach(const struct ipcx__url *u, const char *name, mode_t mode,
		      struct ringchan *rc)
{
	for (int tries = 0;; tries++) {
		int fd = shm_open(name, O_RDWR, 0);
		if (fd < 0)
			return ipcx__fail(errno == ENOENT ? -ECONNREFUSED : -errno,
					  "%s: cannot open: %s", u->orig, strerror(errno));
		struct stat st;
		int r = fstat(fd, &st) < 0 ? -errno : 0;
		if (r == 0)
			r = ipcx__trust(u->orig, st.st_uid, st.st_gid, st.st_mode, mode);
		if (r == 0 && (uint64_t)st.st_size > RING_MAX_CAP * 2)
			r = ipcx__fail(-EBADMSG, "%s: segment too large to be a ring", u->orig);
		if (r == 0 && st.st_size >= RING_HDR) {
			rc->maplen = (size_t)st.st_size;
			rc->dev = st.st_dev; /* a broadcast ring's last peer removes it: this one */
			rc->ino = st.st_ino;
			r = map_fd(fd, rc->maplen, &rc->map);
			if (r == 0) {
				/* A look without joining: is it formatted yet, and whole? */
				r = ipcx__ringchan_fits(rc->map, rc->maplen, u->orig);
				if (r == 0)
					r = ipcx__ring_attach(&rc->ring, rc->map, rc->maplen, true);
				if (r < 0)
					munmap(rc->map, rc->maplen);
			}
		} else if (r == 0) {
			r = -EAGAIN;
		}
		close(fd);
		if (r != -EAGAIN || tries >= 1000)
			return r == -EAGAIN ? not_ready(u, st.st_size) : r;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

static int shm_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct ring_geom g = { 0 };
	mode_t mode = (mode_t)ipcx__opt(u, SHM_MODE); /* whom we let write: see ipcx__trust */
	const char *name;
	int r;
	if ((r = shm_name(u, &name)) || (r = ipcx__ring_geom_parse(u, &g)) ||
	    (r = ipcx__ring_bcast_parse(u, &g)))
		return r;
	struct ringchan *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	snprintf(rc->url, sizeof(rc->url), "%s", u->orig);
	snprintf(rc->name, sizeof(rc->name), "%s", name);
	r = shm_attach(u, name, mode, rc);
	if (r == 0) {
		rc->unmap = shm_unmap;
		r = ipcx__ringchan_init(rc, &shm_tran, false, &g);
		if (r < 0)
			munmap(rc->map, rc->maplen);
	}
	if (r < 0) {
		free(rc);
		return r;
	}
	(void)flags;
	*ret = &rc->c;
	return 0;
}

static const struct ipcx_tran shm_tran = {
	.scheme = "shm",
	.options = shm_options,
	.listen = shm_listen,
	.dial = shm_dial,
};

const struct ipcx_tran *const ipcx__trans_shm[] = { &shm_tran, NULL };
