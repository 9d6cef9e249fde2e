/*
 * shm:/name — the ring channel over POSIX shared memory (shm_open).
 *
 * listen creates the object exclusively (0600 unless mode=), sizes it, lays
 * out the ring and owns it: close removes it unless keep=1.  dial attaches
 * to an existing ring and takes its geometry from the header (the creation
 * options of the URL are ignored there, spin= is honoured).  Any attached
 * process may send and receive: it is a queue, like mq:.
 */
#include "shm/ringchan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct ipcx_tran shm_tran;

static const char *const shm_options[] = { "capacity", "max",  "spsc", "policy",
					   "spin",     "mode", "keep", NULL };

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

static int shm_unmap(struct ringchan *rc)
{
	if (rc->owner && rc->keep)
		atomic_store(&((struct ring_hdr *)rc->map)->kept, 1);
	munmap(rc->map, rc->maplen);
	if (rc->owner && !rc->keep) {
		const char *name = rc->canon + strlen("shm:");
		if (shm_unlink(name) < 0)
			return -errno;
		ipcx__record_removed(rc->canon);
	}
	return 0;
}

static int map_fd(int fd, size_t len, void **ret)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	*ret = m;
	return 0;
}

/*
 * A ring left by a listener that was killed (it could not remove it): ours
 * (same owner), a valid ring, and no process attached.  Remove it so that a
 * new listener can create the name again, as a stale socket file is.
 */
static bool remove_stale(const char *name, const char *canon)
{
	int fd = shm_open(name, O_RDWR, 0);
	if (fd < 0)
		return false;
	struct stat st;
	bool stale = false;
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && st.st_size >= RING_HDR &&
	    (uint64_t)st.st_size <= RING_MAX_CAP * 2) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			struct ring r;
			stale = ipcx__ring_attach(&r, m, (size_t)st.st_size, true) == 0 &&
				ipcx__ring_abandoned(&r);
			munmap(m, (size_t)st.st_size);
		}
	}
	close(fd);
	/* Unlink only the object we judged, not one a racing listener made since. */
	struct stat now;
	int fd2 = stale ? shm_open(name, O_RDONLY, 0) : -1;
	if (fd2 >= 0 && fstat(fd2, &now) == 0 && now.st_ino == st.st_ino && shm_unlink(name) == 0)
		ipcx__record_removed(canon);
	else
		stale = false;
	ipcx__close_fd(fd2);
	return stale;
}

static int shm_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct ring_geom g = { 0 };
	mode_t mode = 0600;
	bool keep = false;
	const char *name;
	int r;
	if ((r = shm_name(u, &name)) || (r = ipcx__ring_geom_parse(u, &g)) ||
	    (r = ipcx__url_opt_mode(u, &mode)) || (r = ipcx__url_opt_bool(u, "keep", &keep)))
		return r;
	struct ringchan *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	snprintf(rc->canon, sizeof(rc->canon), "shm:%s", name);
	rc->maplen = ipcx__ring_size(&g);
	/* shm_open adds O_NOFOLLOW and O_CLOEXEC; O_EXCL: no squatter. */
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, mode);
	if (fd < 0 && errno == EEXIST && remove_stale(name, rc->canon))
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, mode);
	if (fd < 0) {
		r = ipcx__fail(-errno, "%s: cannot create: %s", u->orig, strerror(errno));
		free(rc);
		return r;
	}
	if (fchmod(fd, mode) < 0 || ftruncate(fd, (off_t)rc->maplen) < 0)
		r = ipcx__fail(-errno, "%s: cannot size the segment", u->orig);
	else
		r = map_fd(fd, rc->maplen, &rc->map);
	close(fd);
	if (r == 0) {
		rc->owner = true;
		rc->keep = keep;
		rc->unmap = shm_unmap;
		r = ipcx__ringchan_init(rc, &shm_tran, true, &g);
		if (r < 0)
			munmap(rc->map, rc->maplen);
	}
	if (r < 0) {
		shm_unlink(name);
		free(rc);
		return r;
	}
	(void)flags; /* the channel keeps no descriptor to inherit */
	if (!keep) /* a kept ring is meant to outlive us: not an orphan for gc */
		ipcx__record_created(rc->canon);
	*ret = &rc->c;
	return 0;
}

/* The creator maps and formats after shm_open: wait a little for it. */
static int shm_attach(const struct ipcx__url *u, const char *name, struct ringchan *rc)
{
	for (int tries = 0;; tries++) {
		int fd = shm_open(name, O_RDWR, 0);
		if (fd < 0)
			return ipcx__fail(errno == ENOENT ? -ECONNREFUSED : -errno,
					  "%s: cannot open: %s", u->orig, strerror(errno));
		struct stat st;
		int r = fstat(fd, &st) < 0 ? -errno : 0;
		if (r == 0 && (uint64_t)st.st_size > RING_MAX_CAP * 2)
			r = ipcx__fail(-EBADMSG, "%s: segment too large to be a ring", u->orig);
		if (r == 0 && st.st_size >= RING_HDR) {
			rc->maplen = (size_t)st.st_size;
			r = map_fd(fd, rc->maplen, &rc->map);
			if (r == 0) {
				/* A look without joining: is it formatted yet? */
				r = ipcx__ring_attach(&rc->ring, rc->map, rc->maplen, true);
				if (r < 0)
					munmap(rc->map, rc->maplen);
			}
		} else if (r == 0) {
			r = -EAGAIN;
		}
		close(fd);
		if (r != -EAGAIN || tries >= 1000)
			return r == -EAGAIN ? ipcx__fail(-ECONNREFUSED, "%s: not a ready ring", u->orig)
					    : r;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

static int shm_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct ring_geom g = { 0 };
	const char *name;
	int r;
	if ((r = shm_name(u, &name)) || (r = ipcx__ring_geom_parse(u, &g)))
		return r;
	struct ringchan *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	snprintf(rc->canon, sizeof(rc->canon), "shm:%s", name);
	r = shm_attach(u, name, rc);
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
