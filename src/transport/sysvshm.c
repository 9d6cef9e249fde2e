/*
 * sysvshm:KEY — the same ring as shm:, over a System V segment (shmget).
 *
 * KEY is a number (decimal, or 0x hex), not IPC_PRIVATE.  listen creates the
 * segment exclusively (IPC_CREAT|IPC_EXCL, 0600 unless mode=) and removes it
 * (IPC_RMID) on close unless keep=1; dial attaches to an existing one.
 */
#include "core/error.h"
#include "core/proc.h"
#include "core/record.h"
#include "core/tran.h"
#include "core/trust.h"
#include "core/url.h"
#include "shm/ring.h"
#include "shm/ringchan.h"
#include "ipcx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

static const struct ipcx_tran sysvshm_tran;

enum { SYSVSHM_MODE = RING_BCAST_NOPTS, SYSVSHM_KEEP, SYSVSHM_PROJ, SYSVSHM_NOPTS };
static const struct ipcx__opt sysvshm_options[SYSVSHM_NOPTS + 1] = {
	IPCX__RING_OPTS,
	IPCX__RING_BCAST_OPTS,
	[SYSVSHM_MODE] = IPCX__MODE("mode", 0600),
	[SYSVSHM_KEEP] = IPCX__BOOL("keep", false),
	[SYSVSHM_PROJ] = IPCX__UINT("proj", 1, 255, 0), /* with a /path: ftok(path, proj) */
};

/*
 * Attach within a reservation of the segment's size.  shmat() maps as much
 * of the segment as is left, and root can cut one short (through
 * /proc/PID/map_files); the rest of the range then stays ours and
 * inaccessible, instead of a hole that another mapping could fill, so that
 * the checks for a cut (ringchan.c) see it, and a stray access faults.
 */
static void *attach(int id, size_t size, int flags)
{
	void *m = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return (void *)-1;
	void *a = shmat(id, m, flags | SHM_REMAP);
	if (a == (void *)-1) {
		int e = errno;
		munmap(m, size);
		errno = e;
	}
	return a;
}

static void detach(void *m, size_t size)
{
	shmdt(m);
	munmap(m, size); /* what is left of the reservation */
}

static int sysv_unmap(struct ringchan *rc)
{
	if (rc->owner && rc->keep)
		atomic_store(&((struct ring_hdr *)rc->map)->kept, 1);
	detach(rc->map, rc->maplen);
	if (rc->owner && !rc->keep) {
		if (shmctl(rc->shmid, IPC_RMID, NULL) < 0)
			return -errno;
		ipcx__record_removed(IPCX__OBJ_KEYED(IPCX_OBJ_SYSV_SHM, rc->key));
	}
	return 0;
}

/*
 * The process that created the segment still runs.  Then the segment is not
 * stale, even with nobody attached and a valid ring in it: its creator may be
 * between shmget() and its shmat(), or have formatted the ring and not yet
 * joined it (another listener that looked at the attach count before the
 * creator attached, and at the ring after it formatted, would otherwise
 * remove it).  shm_cpid is set by the kernel at creation: no window.  A pid
 * taken since by a later process is told apart by its start time (one that
 * started after the segment's last change cannot have made it; two seconds
 * for the rounding of both clocks), and a zombie is dead.
 */
static bool creator_runs(const struct shmid_ds *ds)
{
	char state;
	uint64_t ticks;
	if (ds->shm_cpid <= 0 || ipcx__proc_stat(ds->shm_cpid, &state, &ticks) < 0 ||
	    state == 'Z' || state == 'X')
		return false;
	struct timespec real, boot;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0 || clock_gettime(CLOCK_REALTIME, &real) < 0 ||
	    clock_gettime(CLOCK_BOOTTIME, &boot) < 0)
		return true; /* cannot tell: take it for the creator */
	time_t started = real.tv_sec - boot.tv_sec + (time_t)(ticks / (uint64_t)hz);
	return started <= ds->shm_ctime + 2;
}

/*
 * A segment left by a listener that was killed: ours, its creator gone, and
 * nobody attached.  IPC_RMID by id removes exactly the segment judged, never
 * a newer one made under the same key.  Two listeners that judge it at once
 * may both remove it (the id stays valid while the other is still attached
 * to look), but only one creates the key again (IPC_EXCL); the other is
 * refused, as by a live segment.
 */
static bool remove_stale(key_t key, const char *url)
{
	int id = shmget(key, 0, 0);
	struct shmid_ds ds;
	if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0 || ds.shm_perm.uid != geteuid() ||
	    ds.shm_nattch != 0 || ds.shm_segsz < RING_HDR || ds.shm_segsz > RING_MAX_CAP * 2 ||
	    creator_runs(&ds))
		return false;
	void *m = attach(id, ds.shm_segsz, SHM_RDONLY);
	if (m == (void *)-1)
		return false;
	struct ring r;
	bool stale = ipcx__ringchan_fits(m, ds.shm_segsz, url) == 0 &&
		     ipcx__ring_attach(&r, m, ds.shm_segsz, true) == 0 && ipcx__ring_abandoned(&r);
	detach(m, ds.shm_segsz);
	if (!stale)
		return false;
	if (shmctl(id, IPC_RMID, NULL) < 0)
		return false;
	ipcx__record_removed(IPCX__OBJ_KEYED(IPCX_OBJ_SYSV_SHM, key));
	return true;
}

/* Create the segment exclusively, replacing a stale one: its id, or -errno. */
static int create_seg(key_t key, size_t size, mode_t mode, const char *url)
{
	int id = shmget(key, size, IPC_CREAT | IPC_EXCL | (int)mode);
	if (id >= 0 || errno != EEXIST)
		return id < 0 ? -errno : id;
	if (!remove_stale(key, url))
		return -EEXIST; /* live, not a ring, or replaced by another listener */
	id = shmget(key, size, IPC_CREAT | IPC_EXCL | (int)mode);
	return id < 0 ? -errno : id;
}

static int sysv_open(const struct ipcx__url *u, bool create, ipcx_chan **ret)
{
	struct ring_geom g = { 0 };
	mode_t mode = (mode_t)ipcx__opt(u, SYSVSHM_MODE);
	bool keep = ipcx__opt(u, SYSVSHM_KEEP);
	key_t key = 0;
	int r;
	if ((r = ipcx__url_sysv_key(u, ipcx__opt(u, SYSVSHM_PROJ), &key)) ||
	    (r = ipcx__ring_geom_parse(u, &g)) ||
	    (r = ipcx__ring_bcast_parse(u, &g)))
		return r;
	struct ringchan *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	snprintf(rc->url, sizeof(rc->url), "%s", u->orig);
	rc->key = (uint32_t)key;
	for (int tries = 0;; tries++) {
		if (create) {
			rc->maplen = ipcx__ring_size(&g);
			rc->shmid = create_seg(key, rc->maplen, mode, rc->url);
		} else {
			rc->shmid = shmget(key, 0, 0);
			if (rc->shmid < 0)
				rc->shmid = errno == ENOENT ? -ECONNREFUSED : -errno;
		}
		if (rc->shmid < 0) {
			r = ipcx__fail(rc->shmid, "%s: %s", u->orig,
				       rc->shmid == -ECONNREFUSED ? "no segment has this key"
				       : rc->shmid == -EEXIST     ? "exists, and is not a stale ring to replace"
								  : strerror(-rc->shmid));
			break;
		}
		struct shmid_ds ds;
		if (shmctl(rc->shmid, IPC_STAT, &ds) < 0) {
			r = -errno;
			break;
		}
		/* Any user may take a key first: a ring we do not trust is not read. */
		if (!create && (r = ipcx__trust_ipc(u->orig, &ds.shm_perm, mode)) < 0)
			break;
		if (ds.shm_segsz > RING_MAX_CAP * 2) {
			r = ipcx__fail(-EBADMSG, "%s: segment too large to be a ring", u->orig);
			break;
		}
		rc->maplen = ds.shm_segsz;
		rc->map = attach(rc->shmid, rc->maplen, 0);
		if (rc->map == (void *)-1) {
			r = -errno;
			break;
		}
		rc->owner = create;
		rc->keep = keep;
		rc->unmap = sysv_unmap;
		r = ipcx__ringchan_init(rc, &sysvshm_tran, create, &g);
		if (r == 0)
			break;
		detach(rc->map, rc->maplen);
		if (r != -EAGAIN || tries >= 1000) {
			if (r == -EAGAIN)
				r = ipcx__fail(-ECONNREFUSED, "%s: not a ready ring", u->orig);
			break;
		}
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL); /* the creator is formatting */
	}
	if (r < 0) {
		if (create && rc->shmid >= 0)
			shmctl(rc->shmid, IPC_RMID, NULL);
		free(rc);
		return r;
	}
	if (create && !rc->keep) /* a kept ring is meant to outlive us */
		ipcx__record_created(IPCX__OBJ_KEYED(IPCX_OBJ_SYSV_SHM, rc->key));
	*ret = &rc->c;
	return 0;
}

static int sysvshm_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	(void)flags;
	return sysv_open(u, true, ret);
}

static int sysvshm_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	(void)flags;
	return sysv_open(u, false, ret);
}

static const struct ipcx_tran sysvshm_tran = {
	.scheme = "sysvshm",
	.options = sysvshm_options,
	.listen = sysvshm_listen,
	.dial = sysvshm_dial,
};

const struct ipcx_tran *const ipcx__trans_sysvshm[] = { &sysvshm_tran, NULL };
