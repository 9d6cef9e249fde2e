/*
 * Shared-memory regions of every kind: POSIX shm, System V shm, memfd,
 * anonymous MAP_SHARED and mapped files.  Creation is exclusive and
 * owner-only by default; names never go through a symlink.  An object that
 * is attached instead of created is used only if nobody but the caller,
 * root and whom mode= names could have written it (ipcx__trust).
 *
 * A name is removed only while it still leads to the object created (same
 * device and inode), so a creator never removes a successor's object made
 * under the name after its own was removed.  A shm: creator also holds an
 * exclusive flock on its object while the region is open, as a shm:
 * listener does (src/transport/shm.c): ipcx rm takes that lock without
 * waiting and leaves a locked object alone, so nobody who keeps to the lock
 * removes the name under a live creator.  Only the process that created
 * the object removes it on close: a child made by fork() that closes its
 * copy of the region leaves the parent's object alone.
 */
#include "core/error.h"
#include "core/fd.h"
#include "core/record.h"
#include "core/trust.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#define KNOWN_FLAGS (IPCX_REGION_CREATE | IPCX_REGION_RDONLY)

enum kind { R_SHM, R_SYSV, R_MEMFD, R_ANON, R_FILE };

struct ipcx_region {
	enum kind kind;
	void *addr;
	size_t size;
	int fd;    /* -1 for sysv and anon */
	int shmid; /* sysv */
	bool creator, keep, removed, rdonly;
	pid_t pid;   /* the creating process: only it removes on close */
	dev_t dev;   /* shm: and file: the object created, whose name close removes */
	ino_t ino;
	char name[PATH_MAX + 16]; /* shm name, file path */
	uint32_t key;              /* sysv */
};

/* The object, for creator records (shm: and sysvshm: regions). */
static struct ipcx__objid region_obj(const struct ipcx_region *r)
{
	return r->kind == R_SYSV ? (struct ipcx__objid){ .kind = IPCX_OBJ_SYSV_SHM, .key = r->key }
				 : (struct ipcx__objid){ .kind = IPCX_OBJ_POSIX_SHM, .name = r->name };
}

static const char *const kinds[] = { "shm", "sysvshm", "memfd", "anon", "file", NULL };

/* Every kind takes mode=; those with a name that outlives the process, keep=. */
enum { REGION_MODE, REGION_KEEP, REGION_NOPTS };
static const struct ipcx__opt named_options[REGION_NOPTS + 1] = {
	[REGION_MODE] = IPCX__MODE("mode", 0600),
	[REGION_KEEP] = IPCX__BOOL("keep", false),
};
static const struct ipcx__opt unnamed_options[REGION_KEEP + 1] = {
	[REGION_MODE] = IPCX__MODE("mode", 0600),
};

static int map(struct ipcx_region *r, int fd, size_t size, off_t have)
{
	if (size == 0)
		size = (size_t)have;
	if (size == 0 || (off_t)size > have)
		return ipcx__fail(-EINVAL, "region: want %zu bytes of an object of %lld", size,
				  (long long)have);
	int prot = PROT_READ | (r->rdonly ? 0 : PROT_WRITE);
	void *m = mmap(NULL, size, prot, MAP_SHARED | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
	if (m == MAP_FAILED)
		return ipcx__fail(-errno, "region: mmap: %s", strerror(errno));
	r->addr = m;
	r->size = size;
	return 0;
}

/* shm:, file: and memfd: — a descriptor, sized when created, then mapped. */
static int open_fd_kind(struct ipcx_region *r, const struct ipcx__url *u, unsigned flags,
			size_t size, mode_t mode)
{
	bool create = flags & IPCX_REGION_CREATE;
	int acc = r->rdonly ? O_RDONLY : O_RDWR;
	int fd;
	if (r->kind == R_MEMFD) {
		fd = memfd_create(u->body, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	} else if (r->kind == R_SHM) {
		const char *n = u->body;
		if (n[0] != '/' || !n[1] || strchr(n + 1, '/') || strlen(n) > NAME_MAX)
			return ipcx__fail(-EINVAL, "%s: want shm:/name", u->orig);
		snprintf(r->name, sizeof(r->name), "%s", n);
		fd = shm_open(n, acc | (create ? O_CREAT | O_EXCL : 0), mode);
	} else {
		const char *p;
		int e = ipcx__url_path(u, PATH_MAX, &p);
		if (e)
			return e;
		snprintf(r->name, sizeof(r->name), "%s", p);
		fd = open(p, acc | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), mode);
	}
	if (fd < 0)
		return ipcx__fail(-errno, "%s: %s", u->orig, strerror(errno));
	r->fd = fd;
	r->creator = create && r->kind != R_MEMFD;
	r->pid = getpid();
	struct stat st;
	if (create && ((r->kind != R_MEMFD && fchmod(fd, mode) < 0) ||
		       ftruncate(fd, (off_t)size) < 0))
		return ipcx__fail(-errno, "%s: cannot size it: %s", u->orig, strerror(errno));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return ipcx__fail(-EINVAL, "%s: not a regular file", u->orig);
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	/* Just made exclusively: only a passing look (ipcx rm) can hold it. */
	if (r->creator && r->kind == R_SHM && flock(fd, LOCK_EX | LOCK_NB) < 0)
		return ipcx__fail(-EBUSY, "%s: another process locked the new object", u->orig);
	/* Bytes that someone we do not trust could have written are not believed. */
	int e = create || r->kind == R_MEMFD
			? 0 : ipcx__trust(u->orig, st.st_uid, st.st_gid, st.st_mode, mode);
	return e ? e : map(r, fd, size, st.st_size);
}

static int open_sysv(struct ipcx_region *r, const struct ipcx__url *u, unsigned flags,
		     size_t size, mode_t mode)
{
	char *end;
	errno = 0;
	long long k = strtoll(u->body, &end, 0);
	if (!*u->body || *end || errno || k == IPC_PRIVATE || k < INT32_MIN || k > UINT32_MAX)
		return ipcx__fail(-EINVAL, "%s: want sysvshm:KEY (a non-zero number)", u->orig);
	key_t key = (key_t)(int32_t)(uint32_t)k;
	r->key = (uint32_t)key;
	bool create = flags & IPCX_REGION_CREATE;
	r->shmid = create ? shmget(key, size, IPC_CREAT | IPC_EXCL | (int)mode) : shmget(key, 0, 0);
	if (r->shmid < 0)
		return ipcx__fail(-errno, "%s: %s", u->orig, strerror(errno));
	r->creator = create;
	r->pid = getpid();
	struct shmid_ds ds;
	if (shmctl(r->shmid, IPC_STAT, &ds) < 0)
		return -errno;
	int e = create ? 0 : ipcx__trust(u->orig, ds.shm_perm.uid, ds.shm_perm.gid,
					 ds.shm_perm.mode, mode);
	if (e)
		return e;
	if (size == 0)
		size = ds.shm_segsz;
	if (size > ds.shm_segsz)
		return ipcx__fail(-EINVAL, "%s: want %zu bytes of a segment of %zu", u->orig, size,
				  (size_t)ds.shm_segsz);
	void *m = shmat(r->shmid, NULL, r->rdonly ? SHM_RDONLY : 0);
	if (m == (void *)-1)
		return ipcx__fail(-errno, "%s: shmat: %s", u->orig, strerror(errno));
	r->addr = m;
	r->size = size;
	return 0;
}

static void unmap(struct ipcx_region *r)
{
	if (!r->addr)
		return;
	if (r->kind == R_SYSV)
		shmdt(r->addr);
	else
		munmap(r->addr, r->size);
	r->addr = NULL;
}

/* 0 if r's name (shm: or file:) still leads to the object r has, else -errno. */
static int still_ours(const struct ipcx_region *r)
{
	struct stat now;
	int e;
	if (r->kind == R_SHM) {
		int fd = shm_open(r->name, O_RDONLY, 0);
		e = fd < 0 || fstat(fd, &now) < 0 ? -errno : 0;
		ipcx__close_fd(fd);
	} else {
		e = lstat(r->name, &now) < 0 ? -errno : 0;
	}
	if (e == 0 && (now.st_dev != r->dev || now.st_ino != r->ino))
		e = -ENOENT; /* removed since, and perhaps made again by someone else */
	return e;
}

static int remove_name(struct ipcx_region *r)
{
	if (r->removed)
		return 0;
	if (r->kind != R_SHM && r->kind != R_SYSV && r->kind != R_FILE)
		return -EOPNOTSUPP;
	int e = r->kind == R_SYSV ? 0 : still_ours(r);
	if (e == -ENOENT)
		return ipcx__fail(e, "%s: the name no longer leads to this region's object; "
				  "not removed", r->name);
	if (e < 0)
		return e;
	if (r->kind == R_SHM)
		e = shm_unlink(r->name);
	else if (r->kind == R_SYSV)
		e = shmctl(r->shmid, IPC_RMID, NULL); /* by id: never a successor's */
	else
		e = unlink(r->name);
	if (e < 0)
		return -errno;
	r->removed = true;
	if (r->kind != R_FILE) {
		struct ipcx__objid o = region_obj(r);
		ipcx__record_removed(&o);
	}
	return 0;
}

static int region_new(struct ipcx_region **ret)
{
	struct ipcx_region *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = r->shmid = -1;
	*ret = r;
	return 0;
}

static void region_free(struct ipcx_region *r, bool remove)
{
	unmap(r);
	if (remove && r->creator)
		remove_name(r);
	ipcx__close_fd(r->fd);
	free(r);
}

IPCX_EXPORT int ipcx_region_open(const char *url, unsigned flags, size_t size, ipcx_region **ret)
{
	ipcx__clear_detail();
	if (!ret || (flags & ~KNOWN_FLAGS))
		return ipcx__fail(-EINVAL, "region: bad flags or no place for the result");
	bool create = flags & IPCX_REGION_CREATE;
	if (create && (size == 0 || (flags & IPCX_REGION_RDONLY)))
		return ipcx__fail(-EINVAL, "region: create needs a size and write access");
	struct ipcx__url *u = malloc(sizeof(*u));
	if (!u)
		return -ENOMEM;
	struct ipcx_region *r = NULL;
	int kind = -1, e = ipcx__url_parse(url, u);
	for (int i = 0; !e && kinds[i]; i++)
		if (!strcmp(u->scheme, kinds[i]))
			kind = i;
	if (!e && kind < 0)
		e = ipcx__fail(-EINVAL, "%s: not a region kind (shm, sysvshm, memfd, anon, file)", url);
	bool named = kind != R_MEMFD && kind != R_ANON;
	if (!e)
		e = ipcx__url_opts(u, named ? named_options : unnamed_options);
	mode_t mode = e ? 0600 : (mode_t)ipcx__opt(u, REGION_MODE);
	bool keep = !e && named && ipcx__opt(u, REGION_KEEP);
	if (!e && !create && (kind == R_MEMFD || kind == R_ANON))
		e = ipcx__fail(-EINVAL, "%s: a %s: region can only be created (adopt a memfd)", url,
			       u->scheme);
	if (!e)
		e = region_new(&r);
	if (!e) {
		r->kind = (enum kind)kind;
		r->rdonly = flags & IPCX_REGION_RDONLY;
		r->keep = keep || kind == R_FILE;
		if (kind == R_SYSV)
			e = open_sysv(r, u, flags, size, mode);
		else if (kind == R_ANON)
			e = map(r, -1, size, (off_t)size);
		else
			e = open_fd_kind(r, u, flags, size, mode);
		if (e) {
			region_free(r, true);
			r = NULL;
		}
	}
	free(u);
	if (e)
		return e;
	/* A kept object is meant to outlive us: not an orphan for gc. */
	if (r->creator && !r->keep && (r->kind == R_SHM || r->kind == R_SYSV)) {
		struct ipcx__objid o = region_obj(r);
		ipcx__record_created(&o);
	}
	*ret = r;
	return 0;
}

IPCX_EXPORT int ipcx_region_adopt(int fd, unsigned flags, ipcx_region **ret)
{
	if (fd < 0 || !ret || (flags & ~KNOWN_FLAGS) || (flags & IPCX_REGION_CREATE))
		return -EINVAL;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return ipcx__fail(-EINVAL, "region: descriptor %d is not a memory file", fd);
	struct ipcx_region *r;
	int e = region_new(&r);
	if (e)
		return e;
	r->kind = R_MEMFD;
	r->rdonly = flags & IPCX_REGION_RDONLY;
	e = map(r, fd, 0, st.st_size);
	if (e) {
		free(r);
		return e;
	}
	r->fd = fd;
	*ret = r;
	return 0;
}

IPCX_EXPORT void *ipcx_region_addr(const ipcx_region *r)
{
	return r ? r->addr : NULL;
}

IPCX_EXPORT size_t ipcx_region_size(const ipcx_region *r)
{
	return r ? r->size : 0;
}

IPCX_EXPORT int ipcx_region_fd(const ipcx_region *r)
{
	if (!r)
		return -EINVAL;
	return r->fd >= 0 ? r->fd : -EOPNOTSUPP;
}

IPCX_EXPORT int ipcx_region_seal(ipcx_region *r, unsigned flags)
{
	if (!r || (flags & ~IPCX_SEAL_WRITE))
		return -EINVAL;
	if (r->kind != R_MEMFD)
		return ipcx__fail(-EOPNOTSUPP, "region: only a memfd can be sealed");
	int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	if (!(flags & IPCX_SEAL_WRITE)) {
		if (fcntl(r->fd, F_ADD_SEALS, seals) < 0)
			return ipcx__fail(-errno, "region: cannot seal: %s", strerror(errno));
		return 0;
	}
	/*
	 * No shared mapping that could become writable may exist when the
	 * write seal is added, not even a read-only one of an O_RDWR file
	 * (mprotect could upgrade it): unmap, seal, map again read-only.
	 */
	munmap(r->addr, r->size);
	r->addr = NULL;
	int e = fcntl(r->fd, F_ADD_SEALS, seals | F_SEAL_WRITE) < 0 ? errno : 0;
	r->rdonly = e == 0;
	void *m = mmap(NULL, r->size, PROT_READ | (e ? PROT_WRITE : 0), MAP_SHARED, r->fd, 0);
	if (m == MAP_FAILED)
		return ipcx__fail(-errno, "region: cannot map it again: %s", strerror(errno));
	r->addr = m;
	if (e)
		return ipcx__fail(-e, "region: cannot seal: %s", strerror(e));
	return 0;
}

IPCX_EXPORT int ipcx_region_remove(ipcx_region *r)
{
	return r ? remove_name(r) : -EINVAL;
}

IPCX_EXPORT int ipcx_region_close(ipcx_region *r)
{
	if (!r)
		return 0;
	int e = 0;
	unmap(r);
	/* A child made by fork() closes its copy: the object stays its parent's. */
	if (r->creator && !r->keep && r->pid == getpid())
		e = remove_name(r);
	ipcx__close_fd(r->fd);
	free(r);
	return e;
}
