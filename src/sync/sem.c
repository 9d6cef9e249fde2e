/*
 * Semaphores: POSIX named (sem:/name), POSIX unnamed in shared memory, and,
 * through sysvsem.c, System V sets.  One handle type and one set of
 * operations for all of them.
 */
#include "sync/sem.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/record.h"
#include "core/trust.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- URLs ------------------------------------------------------------------ */

/* sem: takes the head of the sysvsem: table (sem.h). */
static const struct ipcx__opt posix_options[SEM_OPT_KEEP + 2] = {
	[SEM_OPT_MODE] = IPCX__MODE("mode", 0600),
	[SEM_OPT_KEEP] = IPCX__BOOL("keep", false),
};

/*
 * "sem:/name": one path component that fits "/dev/shm/sem.NAME".  Returns
 * the name with its leading slash, as sem_open() wants it.
 */
static int posix_name(const struct ipcx__url *u, const char **ret)
{
	const char *b = u->body;
	size_t len = strlen(b);
	if (b[0] != '/' || len < 2)
		return ipcx__fail(-EINVAL, "%s: want sem:/name", u->orig);
	if (strchr(b + 1, '/'))
		return ipcx__fail(-EINVAL, "%s: a semaphore name has no '/' after the first",
				  u->orig);
	if (len - 1 > NAME_MAX - 4)
		return ipcx__fail(-EINVAL, "%s: name longer than %d bytes", u->orig,
				  NAME_MAX - 4);
	if (!strcmp(b, "/.") || !strcmp(b, "/.."))
		return ipcx__fail(-EINVAL, "%s: not a name", u->orig);
	*ret = b;
	return 0;
}

static int parse(const char *url, struct ipcx__url *u)
{
	int r = ipcx__url_parse(url, u);
	if (r < 0)
		return r;
	bool sysv = !strcmp(u->scheme, "sysvsem");
	if (strcmp(u->scheme, "sem") && !sysv)
		return ipcx__fail(-EPROTONOSUPPORT, "%s: a semaphore is sem:/name or sysvsem:KEY",
				  url);
	return ipcx__url_opts(u, sysv ? ipcx__sysvsem_options : posix_options);
}

/* The semaphore as its creator record names it. */
static struct ipcx__objid sem_obj(const struct ipcx_sem *s)
{
	return s->kind == SEM_SYSV
		       ? (struct ipcx__objid){ .kind = IPCX_OBJ_SYSV_SEM, .key = s->key }
		       : (struct ipcx__objid){ .kind = IPCX_OBJ_POSIX_SEM,
					       .name = s->url + strlen("sem:") };
}

static int sem_alloc(enum sem_kind kind, struct ipcx_sem **ret)
{
	struct ipcx_sem *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = kind;
	s->semid = -1;
	*ret = s;
	return 0;
}

/* ---- POSIX named ------------------------------------------------------------ */

/* The file glibc keeps a named semaphore in, opened without following a symlink. */
static int posix_file(const char *name)
{
	char path[NAME_MAX + 16];
	snprintf(path, sizeof(path), "/dev/shm/sem.%s", name + 1);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * sem_open() applies the umask to the mode; an explicit mode such as 0666
 * must be exact, so set it on the file behind the semaphore.  It was just
 * created by link() in sticky /dev/shm, and O_NOFOLLOW refuses a symlink.
 */
static int posix_chmod(const char *name, mode_t mode)
{
	int fd = posix_file(name);
	if (fd < 0)
		return fd;
	int r = fchmod(fd, mode) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int posix_create(const struct ipcx__url *u, unsigned value, struct ipcx_sem *s)
{
	const char *name = NULL;
	mode_t mode = (mode_t)ipcx__opt(u, SEM_OPT_MODE);
	int r = posix_name(u, &name);
	if (r < 0)
		return r;
	if (value > SEM_VALUE_MAX)
		return ipcx__fail(-EINVAL, "%s: value %u is above %d", u->orig, value,
				  SEM_VALUE_MAX);
	snprintf(s->url, sizeof(s->url), "sem:%s", name);
	sem_t *p = sem_open(name, O_CREAT | O_EXCL, mode, value);
	if (p == SEM_FAILED)
		return ipcx__fail(-errno, "%s: sem_open", s->url);
	r = posix_chmod(name, mode);
	if (r < 0) {
		sem_close(p);
		sem_unlink(name);
		return ipcx__fail(r, "%s: setting mode %03o", s->url, (unsigned)mode);
	}
	s->sem = p;
	return 0;
}

static int posix_open(const struct ipcx__url *u, struct ipcx_sem *s)
{
	const char *name = NULL;
	int r = posix_name(u, &name);
	if (r < 0)
		return r;
	if (ipcx__opt_set(u, SEM_OPT_KEEP))
		return ipcx__fail(-EINVAL, "%s: keep is for the creator", u->orig);
	snprintf(s->url, sizeof(s->url), "sem:%s", name);
	/*
	 * A semaphore someone we do not trust could post or wait on is no
	 * lock and no count (docs/transports.md, "Trust"): its file is judged
	 * as a log's is, mode= saying whom we let write.  sem_open() gives no
	 * descriptor, so the file is judged before and must be the same file
	 * after: in sticky /dev/shm only its owner (then one we trust) or
	 * root could have put another in its place meanwhile.
	 */
	int fd = posix_file(name);
	if (fd < 0)
		return ipcx__fail(fd, "%s: sem_open", s->url);
	struct stat before, after;
	mode_t mode = (mode_t)ipcx__opt(u, SEM_OPT_MODE);
	if (fstat(fd, &before) < 0 || (r = ipcx__trust(s->url, before.st_uid, before.st_gid,
						       before.st_mode, mode)) < 0) {
		r = r < 0 ? r : ipcx__fail(-errno, "%s: fstat", s->url);
		close(fd);
		return r;
	}
	close(fd);
	/* glibc opens the file with O_NOFOLLOW: a symlink is refused. */
	sem_t *p = sem_open(name, 0);
	if (p == SEM_FAILED)
		return ipcx__fail(-errno, "%s: sem_open", s->url);
	fd = posix_file(name);
	bool same = fd >= 0 && fstat(fd, &after) == 0 && after.st_dev == before.st_dev &&
		    after.st_ino == before.st_ino;
	if (fd >= 0)
		close(fd);
	if (!same) {
		sem_close(p);
		return ipcx__fail(-EAGAIN, "%s: replaced while it was being opened", s->url);
	}
	s->sem = p;
	return 0;
}

/* ---- create / open / close ------------------------------------------------- */

/*
 * What create and open share: check the arguments, parse the URL and
 * allocate a handle of the kind the scheme names.
 */
static int sem_begin(const char *url, unsigned flags, ipcx_sem **ret, struct ipcx__url *u,
		     bool *sysv, struct ipcx_sem **s)
{
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the semaphore");
	if (flags)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	int r = parse(url, u);
	if (r < 0)
		return r;
	*sysv = !strcmp(u->scheme, "sysvsem");
	return sem_alloc(*sysv ? SEM_SYSV : SEM_POSIX_NAMED, s);
}

IPCX_EXPORT int ipcx_sem_create(const char *url, unsigned value, unsigned flags, ipcx_sem **ret)
{
	struct ipcx__url u;
	struct ipcx_sem *s = NULL;
	bool sysv = false;
	int r = sem_begin(url, flags, ret, &u, &sysv, &s);
	if (r < 0)
		return r;
	bool keep = ipcx__opt(&u, SEM_OPT_KEEP);
	r = sysv ? ipcx__sysvsem_create(&u, value, s) : posix_create(&u, value, s);
	if (r < 0) {
		free(s);
		return r;
	}
	s->owner = !keep;
	/*
	 * The creator record tells `ipcx gc` whose death makes the object an
	 * orphan.  A kept object (keep=1, as `ipcx sem create` makes) is meant
	 * to outlive its creator: it gets no record, and gc leaves it alone.
	 */
	struct ipcx__objid o = sem_obj(s);
	if (s->owner)
		ipcx__record_created(&o);
	*ret = s;
	return 0;
}

IPCX_EXPORT int ipcx_sem_open(const char *url, unsigned flags, ipcx_sem **ret)
{
	struct ipcx__url u;
	struct ipcx_sem *s = NULL;
	bool sysv = false;
	int r = sem_begin(url, flags, ret, &u, &sysv, &s);
	if (r < 0)
		return r;
	r = sysv ? ipcx__sysvsem_open(&u, s) : posix_open(&u, s);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

IPCX_EXPORT int ipcx_sem_close(ipcx_sem *s)
{
	if (!s)
		return 0;
	int r = 0;
	struct ipcx__objid o = sem_obj(s);
	switch (s->kind) {
	case SEM_POSIX_NAMED:
		sem_close(s->sem);
		if (s->owner) {
			if (sem_unlink(o.name) < 0)
				r = ipcx__fail(-errno, "%s: sem_unlink", s->url);
			ipcx__record_removed(&o);
		}
		break;
	case SEM_POSIX_MEM:
		break; /* the semaphore stays in the memory, for its other users */
	case SEM_SYSV:
		if (s->owner) {
			r = ipcx__sysvsem_remove(s);
			ipcx__record_removed(&o);
		}
		break;
	}
	free(s);
	return r;
}

IPCX_EXPORT int ipcx_sem_unlink(const char *url)
{
	struct ipcx__url u;
	int r = parse(url, &u);
	if (r < 0)
		return r;
	if (!strcmp(u.scheme, "sysvsem"))
		return ipcx__sysvsem_unlink(&u);
	const char *name = NULL;
	if ((r = posix_name(&u, &name)) < 0)
		return r;
	if (sem_unlink(name) < 0)
		return ipcx__fail(-errno, "sem:%s: sem_unlink", name);
	ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_POSIX_SEM, name));
	return 0;
}

/* ---- unnamed, in shared memory ---------------------------------------------- */

#define MEM_SEM_MAGIC 0x53584950u /* "PIXS" */

/* The layout in shared memory: the magic tells an attacher it was made. */
struct mem_sem {
	_Atomic uint32_t magic;
	uint32_t version;
	sem_t sem;
};
_Static_assert(sizeof(struct mem_sem) <= IPCX_SEM_SIZE, "IPCX_SEM_SIZE too small");

static int mem_check(void *mem, size_t len)
{
	if (!mem || len < IPCX_SEM_SIZE)
		return ipcx__fail(-EINVAL, "want at least %d bytes of memory", IPCX_SEM_SIZE);
	if ((uintptr_t)mem % 8)
		return ipcx__fail(-EINVAL, "memory not 8-byte aligned");
	return 0;
}

IPCX_EXPORT int ipcx_sem_init_at(void *mem, size_t len, unsigned value, ipcx_sem **ret)
{
	int r = mem_check(mem, len);
	if (r < 0)
		return r;
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the semaphore");
	if (value > SEM_VALUE_MAX)
		return ipcx__fail(-EINVAL, "value %u is above %d", value, SEM_VALUE_MAX);
	struct ipcx_sem *s;
	if ((r = sem_alloc(SEM_POSIX_MEM, &s)) < 0)
		return r;
	struct mem_sem *m = mem;
	atomic_store_explicit(&m->magic, 0, memory_order_relaxed);
	m->version = 1;
	if (sem_init(&m->sem, 1, value) < 0) {
		r = ipcx__fail(-errno, "sem_init");
		free(s);
		return r;
	}
	/* Publish: an attacher that sees the magic sees an initialised sem_t. */
	atomic_store_explicit(&m->magic, MEM_SEM_MAGIC, memory_order_release);
	s->sem = &m->sem;
	snprintf(s->url, sizeof(s->url), "sem:(memory)");
	*ret = s;
	return 0;
}

IPCX_EXPORT int ipcx_sem_attach_at(void *mem, size_t len, ipcx_sem **ret)
{
	int r = mem_check(mem, len);
	if (r < 0)
		return r;
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the semaphore");
	struct mem_sem *m = mem;
	if (atomic_load_explicit(&m->magic, memory_order_acquire) != MEM_SEM_MAGIC ||
	    m->version != 1)
		return ipcx__fail(-EBADMSG, "no ipcx semaphore in this memory");
	struct ipcx_sem *s;
	if ((r = sem_alloc(SEM_POSIX_MEM, &s)) < 0)
		return r;
	s->sem = &m->sem;
	snprintf(s->url, sizeof(s->url), "sem:(memory)");
	*ret = s;
	return 0;
}

/* ---- operations ------------------------------------------------------------- */

static int posix_wait(struct ipcx_sem *s, int timeout_ms)
{
	if (timeout_ms == 0) {
		while (sem_trywait(s->sem) < 0) {
			if (errno == EAGAIN)
				return -EAGAIN;
			if (errno != EINTR)
				return ipcx__fail(-errno, "%s: sem_trywait", s->url);
		}
		return 0;
	}
	int64_t deadline = ipcx__deadline(timeout_ms);
	struct timespec abs = { .tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000 };
	for (;;) {
		/* CLOCK_MONOTONIC: a change of the wall clock moves no deadline. */
		int r = timeout_ms < 0 ? sem_wait(s->sem)
				       : sem_clockwait(s->sem, CLOCK_MONOTONIC, &abs);
		if (r == 0)
			return 0;
		if (errno == ETIMEDOUT)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return ipcx__fail(-errno, "%s: sem_wait", s->url);
	}
}

IPCX_EXPORT int ipcx_sem_post(ipcx_sem *s)
{
	if (!s)
		return ipcx__fail(-EINVAL, "no semaphore");
	if (s->kind == SEM_SYSV)
		return ipcx__sysvsem_post(s);
	if (sem_post(s->sem) < 0)
		return ipcx__fail(-errno, "%s: sem_post", s->url);
	return 0;
}

IPCX_EXPORT int ipcx_sem_wait(ipcx_sem *s, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!s)
		return ipcx__fail(-EINVAL, "no semaphore");
	if (s->kind == SEM_SYSV)
		return ipcx__sysvsem_wait(s, timeout_ms);
	return posix_wait(s, timeout_ms);
}

IPCX_EXPORT int ipcx_sem_value(ipcx_sem *s, unsigned *ret)
{
	if (!s || !ret)
		return ipcx__fail(-EINVAL, "no semaphore or no place for the value");
	if (s->kind == SEM_SYSV)
		return ipcx__sysvsem_value(s, ret);
	int v;
	if (sem_getvalue(s->sem, &v) < 0)
		return ipcx__fail(-errno, "%s: sem_getvalue", s->url);
	*ret = v < 0 ? 0 : (unsigned)v;
	return 0;
}
