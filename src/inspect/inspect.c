/*
 * Object inspection, the public side: list (ipcx_ls), look up one
 * (ipcx_obj_find), remove (ipcx_obj_remove) and collect orphans (ipcx_gc).
 *
 * A listing reads the creator records first and the objects second: a
 * record is written after its object is made, so an object a record names
 * existed before the scan began, and a record whose object the scan did not
 * find is stale, not new.
 */
#include "inspect/inspect.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/proc.h"
#include "core/record.h"
#include "core/sock.h"
#include "inspect/objurl.h"
#include "ipcx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/file.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const char *const kind_names[] = {
	[IPCX_OBJ_SYSV_MSG] = "sysv-msg",   [IPCX_OBJ_SYSV_SEM] = "sysv-sem",
	[IPCX_OBJ_SYSV_SHM] = "sysv-shm",   [IPCX_OBJ_POSIX_SHM] = "posix-shm",
	[IPCX_OBJ_POSIX_SEM] = "posix-sem", [IPCX_OBJ_POSIX_MQ] = "posix-mq",
	[IPCX_OBJ_FIFO] = "fifo",           [IPCX_OBJ_UNIX_SOCKET] = "unix-socket",
	[IPCX_OBJ_MMAP_LOG] = "mmap-log",
};
#define NKINDS ((int)(sizeof(kind_names) / sizeof(kind_names[0])))

IPCX_EXPORT const char *ipcx_obj_kind_name(int kind)
{
	return kind > 0 && kind < NKINDS ? kind_names[kind] : NULL;
}

IPCX_EXPORT int ipcx_obj_kind_parse(const char *name)
{
	for (int k = 1; name && k < NKINDS; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return ipcx__fail(-EINVAL, "'%s' is no kind of object (sysv-msg, sysv-sem, sysv-shm, "
				   "posix-shm, posix-sem, posix-mq, fifo, unix-socket, mmap-log)",
			  name ? name : "(null)");
}

IPCX_EXPORT int ipcx_mqueue_dir(char *buf, size_t cap)
{
	if (!buf)
		return -EINVAL;
	int r = ipcx__mqueue_mount(buf, cap);
	if (r == -ENOENT)
		return ipcx__fail(r, "the mqueue file system is not mounted");
	return r;
}

/* ---- processes and records ------------------------------------------------------ */

struct pidset {
	pid_t *v;
	size_t n, cap;
	int64_t uid; /* owner of the first process, or -1 */
};

static void pid_collect(const struct pent *e, void *arg)
{
	struct pidset *s = arg;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == e->pid)
			return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		pid_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = e->pid;
	if (s->uid < 0)
		s->uid = e->uid;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return x < y ? -1 : x > y;
}

static void attach_pids(struct objvec *ov, const struct ptab *t)
{
	for (size_t i = 0; i < ov->n; i++) {
		struct ipcx_obj *o = &ov->v[i];
		struct objx *x = &ov->x[i];
		struct pidset s = { .uid = -1 };
		if (x->match == MATCH_FILE || x->match == MATCH_SYSV)
			ipcx__ptab_each(t, x->match, x->match == MATCH_FILE ? x->dev : 0, x->ino,
					pid_collect, &s);
		for (size_t k = 0; k < x->nsocks; k++)
			ipcx__ptab_each(t, MATCH_SOCK, 0, x->socks[k], pid_collect, &s);
		if (s.n)
			qsort(s.v, s.n, sizeof(*s.v), pid_cmp);
		o->pids = s.v;
		o->npids = s.n;
		/* An abstract socket has no file: its owner is its process's. */
		if (o->uid < 0)
			o->uid = s.uid;
	}
}

/*
 * Mark what ipcx created.  A record counts only if whoever wrote it owns the
 * object (or is root): a user cannot make another user's object look like
 * an ipcx orphan for a root gc to remove.
 */
static void apply_records(struct objvec *ov, const struct ipcx__rec *r, char *const *urls,
			  size_t n, bool pids)
{
	for (size_t i = 0; i < n; i++) {
		struct ipcx_obj *o = urls[i] ? ipcx__ov_find(ov, urls[i]) : NULL;
		if (!o || (r[i].owner != 0 && (int64_t)r[i].owner != o->uid))
			continue;
		o->ipcx = true;
		o->creator = r[i].pid;
		o->creator_alive = ipcx__proc_alive(r[i].pid, r[i].start);
	}
	for (size_t i = 0; pids && i < ov->n; i++) {
		struct ipcx_obj *o = &ov->v[i];
		o->orphan = o->ipcx && !o->creator_alive && o->npids == 0 && o->nattch <= 0;
	}
}

/* ---- a scan --------------------------------------------------------------------- */

struct scan {
	struct objvec ov;
	struct ipcx__rec *recs;
	char **urls; /* each record's object, by its canonical URL (NULL: ignored) */
	size_t nrecs;
	bool mq_listed; /* the mqueue mount was there: queues are all listed */
};

static void scan_free(struct scan *s)
{
	ipcx__ov_free(&s->ov);
	for (size_t i = 0; s->urls && i < s->nrecs; i++)
		free(s->urls[i]);
	free(s->urls);
	ipcx__record_list_free(s->recs, s->nrecs);
	memset(s, 0, sizeof(*s));
}

/*
 * The records, each with its object's canonical URL.  A record whose name
 * is not one its kind takes (written by hand, or by something else) is
 * ignored, as a record file that cannot be read is.
 */
static void read_records(struct scan *s)
{
	ipcx__record_list(&s->recs, &s->nrecs);
	s->urls = calloc(s->nrecs + 1, sizeof(*s->urls));
	char url[IPCX__CANON_MAX];
	for (size_t i = 0; s->urls && i < s->nrecs; i++) {
		struct ipcx__objid o = ipcx__rec_obj(&s->recs[i]);
		if (ipcx__obj_url(&o, url, sizeof(url)) == 0 && ipcx__obj_is_canon(url))
			s->urls[i] = strdup(url);
	}
	if (!s->urls) {
		ipcx__record_list_free(s->recs, s->nrecs);
		s->recs = NULL;
		s->nrecs = 0;
	}
}

/* The paths worth a look besides the usual folders: asked, recorded, in use. */
static const char **extra_paths(const char *const *paths, const struct scan *s,
				const struct ptab *t, size_t *n)
{
	size_t np = 0;
	while (paths && paths[np])
		np++;
	const char **v = calloc(np + s->nrecs + t->npaths + 1, sizeof(*v));
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < np; i++)
		v[k++] = paths[i];
	for (size_t i = 0; i < s->nrecs; i++) {
		const struct ipcx__rec *r = &s->recs[i];
		if (s->urls[i] && (r->kind == IPCX_OBJ_FIFO || r->kind == IPCX_OBJ_UNIX_SOCKET) &&
		    r->name[0] == '/')
			v[k++] = r->name;
	}
	for (size_t i = 0; i < t->npaths; i++)
		v[k++] = t->paths[i];
	*n = k;
	return v;
}

/*
 * Find everything.  walk: look through the usual folders for FIFOs and
 * socket files (a lookup by URL does not need to).
 */
static int scan_all(const char *const *paths, unsigned flags, bool walk, struct scan *s)
{
	memset(s, 0, sizeof(*s));
	read_records(s);
	struct ptab t = { 0 };
	bool pids = !(flags & IPCX_LS_NOPIDS);
	if (pids) {
		uint64_t devs[2] = { ipcx__devshm_dev(), ipcx__mqueue_dev() };
		ipcx__ptab_build(&t, devs, 2);
	}
	ipcx__scan_sysv(&s->ov);
	ipcx__scan_devshm(&s->ov);
	s->mq_listed = ipcx__scan_mqueue(&s->ov) == 0;
	ipcx__scan_unix(&s->ov);
	size_t n = 0;
	const char **extra = extra_paths(paths, s, &t, &n);
	if (walk) {
		ipcx__scan_files(&s->ov, extra, n);
	} else {
		for (size_t i = 0; extra && i < n; i++)
			ipcx__scan_path(&s->ov, extra[i]);
	}
	free(extra);
	if (pids)
		attach_pids(&s->ov, &t);
	ipcx__ptab_free(&t);
	apply_records(&s->ov, s->recs, s->urls, s->nrecs, pids);
	for (size_t i = 0; i < s->ov.n; i++)
		ipcx__ring_stats_of(&s->ov.v[i]);
	return 0;
}

/* Hand the objects of a scan to the caller; the scan keeps nothing of them. */
static struct ipcx_obj *take_objs(struct scan *s, size_t *n)
{
	struct ipcx_obj *v = s->ov.v;
	*n = s->ov.n;
	for (size_t i = 0; i < s->ov.n; i++)
		free(s->ov.x[i].socks);
	free(s->ov.x);
	free(s->ov.hash);
	memset(&s->ov, 0, sizeof(s->ov));
	return v;
}

static int obj_cmp(const void *a, const void *b)
{
	const struct ipcx_obj *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return strcmp(x->url, y->url);
}

IPCX_EXPORT ssize_t ipcx_ls(const char *const *paths, unsigned flags, struct ipcx_obj **ret)
{
	if (!ret)
		return -EINVAL;
	if (flags & ~IPCX_LS_NOPIDS)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags & ~IPCX_LS_NOPIDS);
	for (size_t i = 0; paths && paths[i]; i++)
		if (paths[i][0] != '/')
			return ipcx__fail(-EINVAL, "%s: give an absolute path", paths[i]);
	struct scan s;
	int r = scan_all(paths, flags, true, &s);
	if (r < 0)
		return r;
	size_t n;
	struct ipcx_obj *v = take_objs(&s, &n);
	scan_free(&s);
	if (n)
		qsort(v, n, sizeof(*v), obj_cmp);
	*ret = v;
	return (ssize_t)n;
}

IPCX_EXPORT void ipcx_objs_free(struct ipcx_obj *objs, size_t n)
{
	for (size_t i = 0; objs && i < n; i++) {
		free(objs[i].url);
		free(objs[i].name);
		free(objs[i].pids);
		free(objs[i].subs);
	}
	free(objs);
}

static bool is_sysv(int kind)
{
	return kind == IPCX_OBJ_SYSV_MSG || kind == IPCX_OBJ_SYSV_SEM || kind == IPCX_OBJ_SYSV_SHM;
}

/* The object url names (o->name in name), and its canonical URL in canon. */
static int canon_of(const char *url, struct ipcx__objid *o, char *name, char *canon)
{
	if (!url)
		return ipcx__fail(-EINVAL, "no URL given");
	int r = ipcx__obj_parse(url, o, name, IPCX__NAME_MAX);
	if (r == 0 && is_sysv(o->kind) && o->key == 0 && !o->has_id)
		return ipcx__fail(-EINVAL, "%s: key 0 is IPC_PRIVATE, shared by many objects; "
					   "name one with ?id=N",
				  url);
	return r == 0 ? ipcx__obj_url(o, canon, IPCX__CANON_MAX) : r;
}

IPCX_EXPORT int ipcx_obj_find(const char *url, unsigned flags, struct ipcx_obj **ret)
{
	char canon[IPCX__CANON_MAX], name[IPCX__NAME_MAX];
	struct ipcx__objid obj;
	if (!ret)
		return -EINVAL;
	if (flags & ~IPCX_LS_NOPIDS)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags & ~IPCX_LS_NOPIDS);
	int r = canon_of(url, &obj, name, canon);
	if (r < 0)
		return r;
	int kind = obj.kind;
	bool is_path = (kind == IPCX_OBJ_FIFO || kind == IPCX_OBJ_UNIX_SOCKET ||
			kind == IPCX_OBJ_MMAP_LOG) && name[0] == '/';
	const char *paths[2] = { is_path ? name : NULL, NULL };
	struct scan s;
	scan_all(paths, flags, false, &s);
	struct ipcx_obj *o = ipcx__ov_find(&s.ov, canon);
	struct ipcx_obj *one = o ? malloc(sizeof(*one)) : NULL;
	if (one) {
		*one = *o;
		o->url = o->name = NULL;
		o->pids = NULL;
		o->subs = NULL;
		*ret = one;
	}
	if (!o)
		r = ipcx__fail(-ENOENT, "%s: no such %s", url, ipcx_obj_kind_name(kind));
	else if (!one)
		r = -ENOMEM;
	scan_free(&s);
	return r;
}

/* ---- removal -------------------------------------------------------------------- */

/* One removal: what was asked, and by whom. */
struct rmreq {
	const char *url; /* as given, for messages */
	unsigned flags;
	int64_t owner; /* gc: the owner the object had when it was judged an orphan, else -1 */
};

static int owner_ok(const struct rmreq *q, int64_t uid)
{
	const char *url = q->url;
	uid_t me = geteuid();
	/*
	 * gc removes an object only while it still has the owner it had when
	 * judged: a path swapped in between (through a symlinked folder) for
	 * somebody else's FIFO is refused, even for root.
	 */
	if (q->owner >= 0 && uid != q->owner)
		return ipcx__fail(-EPERM, "%s changed owner (uid %lld, was %lld)", url,
				  (long long)uid, (long long)q->owner);
	if (uid == (int64_t)me || (me == 0 && (q->flags & IPCX_RM_FORCE)))
		return 0;
	if (me == 0)
		return ipcx__fail(-EPERM, "%s belongs to uid %lld; pass --force (IPCX_RM_FORCE) "
					  "to remove another user's object",
				  url, (long long)uid);
	return ipcx__fail(-EPERM, "%s belongs to uid %lld, not to you", url, (long long)uid);
}

static int rm_sysv(const struct rmreq *q, const char *canon, int kind)
{
	const char *url = q->url;
	struct objvec ov = { 0 };
	ipcx__scan_sysv(&ov);
	struct ipcx_obj *o = ipcx__ov_find(&ov, canon);
	int r = o ? owner_ok(q, o->uid) : ipcx__fail(-ENOENT, "%s: no such %s", url,
							      ipcx_obj_kind_name(kind));
	if (r == 0) {
		int id = (int)o->id;
		int rc = kind == IPCX_OBJ_SYSV_MSG   ? msgctl(id, IPC_RMID, NULL)
			 : kind == IPCX_OBJ_SYSV_SEM ? semctl(id, 0, IPC_RMID)
						     : shmctl(id, IPC_RMID, NULL);
		if (rc < 0)
			r = ipcx__fail(errno == EINVAL || errno == EIDRM ? -ENOENT : -errno,
				       "%s: IPC_RMID", url);
	}
	ipcx__ov_free(&ov);
	return r;
}

/*
 * Unlink leaf of folder dfd if it is of the wanted type (S_IFREG, S_IFIFO,
 * S_IFSOCK) and may be removed: lstat semantics, a symlink is never
 * followed, and nothing else is ever deleted.
 */
static int rm_leaf(const struct rmreq *q, int dfd, const char *leaf, mode_t type)
{
	const char *url = q->url;
	struct stat st;
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ipcx__fail(-errno, "%s: %s", url, errno == ENOENT ? "no such object" : "stat");
	if ((st.st_mode & S_IFMT) != type)
		return ipcx__fail(-EINVAL, "%s is not a %s (it is a %s); not removed", url,
				  type == S_IFIFO   ? "FIFO"
				  : type == S_IFSOCK ? "socket"
						     : "regular file",
				  S_ISLNK(st.st_mode)   ? "symlink"
				  : S_ISREG(st.st_mode) ? "regular file"
				  : S_ISDIR(st.st_mode) ? "directory"
				  : S_ISFIFO(st.st_mode) ? "FIFO"
				  : S_ISSOCK(st.st_mode) ? "socket"
							 : "device or other file");
	int r = owner_ok(q, st.st_uid);
	if (r == 0 && unlinkat(dfd, leaf, 0) < 0)
		r = ipcx__fail(-errno, "%s: unlink", url);
	return r;
}

/* -EBUSY, saying who holds the lock of the segment open in fd. */
static int rm_busy(const struct rmreq *q, int fd)
{
	pid_t pid = ipcx__ring_owner_of(fd);
	if (pid > 0)
		return ipcx__fail(-EBUSY, "%s: in use by a live listener (pid %d); not removed",
				  q->url, (int)pid);
	pid = ipcx__flock_holder(fd);
	if (pid > 0)
		return ipcx__fail(-EBUSY, "%s: locked by pid %d (a listener making or replacing "
					  "it, or another program); not removed",
				  q->url, (int)pid);
	return ipcx__fail(-EBUSY, "%s: locked by another process; not removed", q->url);
}

/*
 * A shm: listener holds an exclusive flock on its segment from creation to
 * close, and a listener replacing a stale ring holds it while it judges and
 * replaces it (src/transport/shm.c): removing the name then would take a
 * ring from under a listener.  So we take the same lock, without waiting,
 * and remove the name only while it still leads to the object we locked.
 */
static int rm_devshm_locked(const struct rmreq *q, int dfd, const char *leaf)
{
	int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) /* not a regular file, or gone: rm_leaf says which */
		return rm_leaf(q, dfd, leaf, S_IFREG);
	struct stat st, now;
	int r = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		r = errno == EWOULDBLOCK ? rm_busy(q, fd) : ipcx__fail(-errno, "%s: lock", q->url);
	else if (fstat(fd, &st) < 0 || fstatat(dfd, leaf, &now, AT_SYMLINK_NOFOLLOW) < 0)
		r = ipcx__fail(-errno, "%s: %s", q->url, errno == ENOENT ? "no such object" : "stat");
	else if (st.st_dev != now.st_dev || st.st_ino != now.st_ino)
		r = ipcx__fail(-EBUSY, "%s: replaced while we looked; not removed", q->url);
	else
		r = rm_leaf(q, dfd, leaf, S_IFREG);
	close(fd); /* drops the lock, after the unlink */
	return r;
}

static int rm_devshm(const struct rmreq *q, const char *name, int kind)
{
	char leaf[300];
	snprintf(leaf, sizeof(leaf), "%s%s", kind == IPCX_OBJ_POSIX_SEM ? "sem." : "", name + 1);
	int dfd = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ipcx__fail(-errno, "/dev/shm");
	int r = kind == IPCX_OBJ_POSIX_SHM ? rm_devshm_locked(q, dfd, leaf)
					   : rm_leaf(q, dfd, leaf, S_IFREG);
	close(dfd);
	return r;
}

static int rm_mq(const struct rmreq *q, const char *name)
{
	const char *url = q->url;
	char dir[4096];
	struct stat st;
	int r;
	if (ipcx__mqueue_mount(dir, sizeof(dir)) == 0) {
		char *p = NULL;
		r = asprintf(&p, "%s%s", dir, name) < 0 ? -ENOMEM : 0;
		if (r == 0 && lstat(p, &st) < 0)
			r = -errno;
		free(p);
	} else {
		/* No mount to look in: a queue descriptor is a file descriptor to fstat. */
		mqd_t mq = mq_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		r = mq == (mqd_t)-1 ? -errno : 0;
		if (r == 0 && fstat((int)mq, &st) < 0)
			r = -errno;
		if (mq != (mqd_t)-1)
			mq_close(mq);
	}
	if (r == -ENOENT)
		return ipcx__fail(r, "%s: no such posix-mq", url);
	if (r == -EACCES)
		return ipcx__fail(-EPERM, "%s: not yours to remove", url);
	if (r == 0)
		r = owner_ok(q, st.st_uid);
	if (r == 0 && mq_unlink(name) < 0)
		r = ipcx__fail(-errno, "%s: mq_unlink", url);
	return r;
}

/* Does a listener answer on the socket file at path?  1 yes, 0 no, or -errno. */
static int sock_answers(const char *path)
{
	static const int types[] = { SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		int r = connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
		close(fd);
		if (r == 0 || r == -EAGAIN || r == -EINPROGRESS)
			return 1;
		if (r != -EPROTOTYPE) /* else: a socket of another type; ask as that */
			return r == -ECONNREFUSED ? 0 : r;
	}
	return 0;
}

/*
 * A socket file, under the lock a unix: listener holds while it creates or
 * replaces one (ipcx__path_lock): without it, a listener that has just
 * bound a new socket there, and does not answer yet, would lose it.  Under
 * the lock, a socket that answers has a live listener: it is left alone.
 */
static int rm_socket(const struct rmreq *q, int dfd, const char *leaf, const char *path)
{
	struct stat st; /* no lock file beside what is not a socket: rm_leaf says what it is */
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode))
		return rm_leaf(q, dfd, leaf, S_IFSOCK);
	int lk = ipcx__path_lock(q->url, path, ipcx__deadline(1000));
	if (lk == -EADDRINUSE)
		return ipcx__fail(-EBUSY, "%s: a listener is creating or replacing it (it holds "
					  "%s.ipcx-lock); not removed",
				  q->url, path);
	if (lk < 0)
		return lk;
	int live = sock_answers(path);
	int r = live == 1 ? ipcx__fail(-EBUSY, "%s: a live listener answers on it; not removed",
				       q->url)
		: live < 0 && live != -ENOENT && live != -EACCES
			? ipcx__fail(live, "%s: cannot tell whether it is in use", q->url)
			: rm_leaf(q, dfd, leaf, S_IFSOCK);
	ipcx__path_unlock(path, lk); /* and its file, a killed holder's too */
	return r;
}

static int rm_path(const struct rmreq *q, const char *path, int kind)
{
	const char *url = q->url;
	if (path[0] == '@')
		return ipcx__fail(-EOPNOTSUPP, "%s: an abstract socket has no file; it goes away "
					       "when the last process holding it closes it",
				  url);
	char *d = strdup(path), *b = strdup(path);
	int r = d && b ? 0 : -ENOMEM;
	const char *leaf = b ? basename(b) : NULL;
	if (r == 0 && (!*leaf || !strcmp(leaf, "/") || !strcmp(leaf, ".") || !strcmp(leaf, "..")))
		r = ipcx__fail(-EINVAL, "%s: names a folder, not a FIFO or socket", url);
	int dfd = -1;
	if (r == 0 && (dfd = open(dirname(d), O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = ipcx__fail(-errno, "%s: %s", url,
			       errno == ENOENT ? "no such object" : "cannot open its folder");
	if (r == 0)
		r = kind == IPCX_OBJ_FIFO ? rm_leaf(q, dfd, leaf, S_IFIFO)
					  : rm_socket(q, dfd, leaf, path);
	if (dfd >= 0)
		close(dfd);
	free(d);
	free(b);
	return r;
}

/* Remove the creator records that name o (after the object is gone). */
static void drop_records(const struct ipcx__objid *o)
{
	struct ipcx__rec *recs;
	size_t n;
	ipcx__record_list(&recs, &n);
	for (size_t i = 0; i < n; i++) {
		struct ipcx__objid r = ipcx__rec_obj(&recs[i]);
		if (ipcx__objid_eq(&r, o))
			ipcx__record_unlink(&recs[i]);
	}
	ipcx__record_list_free(recs, n);
}

/* Remove object o, whose canonical URL is canon. */
static int remove_obj(const struct rmreq *q, const struct ipcx__objid *o, const char *canon)
{
	int r;
	if (is_sysv(o->kind))
		r = rm_sysv(q, canon, o->kind);
	else if (o->kind == IPCX_OBJ_POSIX_SHM || o->kind == IPCX_OBJ_POSIX_SEM)
		r = rm_devshm(q, o->name, o->kind);
	else if (o->kind == IPCX_OBJ_POSIX_MQ)
		r = rm_mq(q, o->name);
	else
		r = rm_path(q, o->name, o->kind);
	if (r == 0)
		drop_records(o);
	return r;
}

IPCX_EXPORT int ipcx_obj_remove(const char *url, unsigned flags)
{
	char canon[IPCX__CANON_MAX], name[IPCX__NAME_MAX];
	struct ipcx__objid obj;
	if (flags & ~IPCX_RM_FORCE)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags & ~IPCX_RM_FORCE);
	int r = canon_of(url, &obj, name, canon);
	if (r < 0)
		return r;
	if (obj.kind == IPCX_OBJ_MMAP_LOG)
		return ipcx__fail(-EINVAL, "%s: ipcx never removes a log file (rm(1) does)", url);
	struct rmreq q = { .url = url, .flags = flags, .owner = -1 };
	return remove_obj(&q, &obj, canon);
}

/* ---- gc -------------------------------------------------------------------------- */

/* Records whose object the scan did not find (where the scan sees that kind). */
static void prune_stale(const struct scan *s)
{
	for (size_t i = 0; i < s->nrecs; i++) {
		const struct ipcx__rec *r = &s->recs[i];
		if (r->kind == IPCX_OBJ_POSIX_MQ && !s->mq_listed)
			continue;
		if (s->urls[i] && !ipcx__ov_find(&s->ov, s->urls[i]))
			ipcx__record_unlink(r);
	}
}

/*
 * What a listener killed while making its object leaves beside the path:
 * "PATH.ipcx-lock" (a unix: listener's, ipcx__path_lock) and
 * "DIR/.ipcx-fifo-*" (a fifo: listener's FIFO before its rename,
 * create_fifo).  A leftover is removed only if it is of the record's owner,
 * has one link, and nobody holds it: the lock file's flock is free; the
 * FIFO has no reader and its flock (which a listener takes as it opens its
 * read end) is free.  Removed under our own lock, while the name still
 * leads to the file we locked.
 */
static void unlink_locked(int dfd, const char *leaf, int fd)
{
	struct stat st, now;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
	    fstatat(dfd, leaf, &now, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == now.st_dev &&
	    st.st_ino == now.st_ino)
		unlinkat(dfd, leaf, 0);
	close(fd);
}

static bool leftover_of(int dfd, const char *leaf, mode_t type, uid_t owner)
{
	struct stat st;
	return fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == type &&
	       st.st_nlink == 1 && st.st_uid == owner;
}

static void sweep_lock_file(int dfd, const char *leaf, uid_t owner)
{
	char lk[NAME_MAX + 1];
	int n = snprintf(lk, sizeof(lk), "%s.ipcx-lock", leaf);
	if (n < 0 || (size_t)n >= sizeof(lk) || !leftover_of(dfd, lk, S_IFREG, owner))
		return;
	int fd = openat(dfd, lk, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0)
		unlink_locked(dfd, lk, fd);
}

static void sweep_fifo_temp(int dfd, const char *leaf, uid_t owner)
{
	if (!leftover_of(dfd, leaf, S_IFIFO, owner))
		return;
	int fd = openat(dfd, leaf, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || errno != ENXIO) { /* somebody reads it, or it is gone */
		ipcx__close_fd(fd);
		return;
	}
	fd = openat(dfd, leaf, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		unlink_locked(dfd, leaf, fd);
}

static void sweep_leftovers(const struct ipcx__rec *r)
{
	const char *path = r->name;
	if (!path || path[0] != '/')
		return; /* an abstract name has no file */
	char *d = strdup(path), *b = strdup(path);
	int dfd = d && b ? open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd >= 0 && r->kind == IPCX_OBJ_UNIX_SOCKET) {
		sweep_lock_file(dfd, basename(b), r->owner);
	} else if (dfd >= 0) {
		int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
		DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
		if (!dir)
			ipcx__close_fd(dup_fd);
		for (struct dirent *e; dir && (e = readdir(dir));)
			if (strncmp(e->d_name, ".ipcx-fifo-", 11) == 0)
				sweep_fifo_temp(dfd, e->d_name, r->owner);
		if (dir)
			closedir(dir);
	}
	ipcx__close_fd(dfd);
	free(d);
	free(b);
}

/* Beside the recorded paths of fifo: and unix: objects the caller may collect. */
static void sweep_all_leftovers(const struct scan *s, const char *match)
{
	uid_t me = geteuid();
	for (size_t i = 0; i < s->nrecs; i++) {
		const struct ipcx__rec *r = &s->recs[i];
		if ((r->kind != IPCX_OBJ_FIFO && r->kind != IPCX_OBJ_UNIX_SOCKET) ||
		    (me != 0 && r->owner != me))
			continue;
		char url[IPCX__CANON_MAX];
		struct ipcx__objid o = ipcx__rec_obj(r);
		if (!match || (ipcx__obj_url(&o, url, sizeof(url)) == 0 && fnmatch(match, url, 0) == 0))
			sweep_leftovers(r);
	}
}

IPCX_EXPORT ssize_t ipcx_gc(const char *match, unsigned flags, struct ipcx_obj **ret)
{
	if (!ret)
		return -EINVAL;
	if (flags & ~IPCX_GC_DRY_RUN)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags & ~IPCX_GC_DRY_RUN);
	struct scan s;
	int r = scan_all(NULL, 0, false, &s);
	if (r < 0)
		return r;
	if (!(flags & IPCX_GC_DRY_RUN)) {
		sweep_all_leftovers(&s, match);
		prune_stale(&s);
	}
	uid_t me = geteuid();
	struct objvec *ov = &s.ov;
	size_t kept = 0;
	/* Keep, at the front of the vector, the orphans that are removed. */
	for (size_t i = 0; i < ov->n; i++) {
		struct ipcx_obj *o = &ov->v[i];
		bool mine = me == 0 || o->uid == (int64_t)me;
		bool take = o->orphan && mine && (!match || fnmatch(match, o->url, 0) == 0);
		if (take && !(flags & IPCX_GC_DRY_RUN)) {
			struct rmreq q = { .url = o->url, .flags = IPCX_RM_FORCE, .owner = o->uid };
			struct ipcx__objid obj = {
				.kind = o->kind, .name = is_sysv(o->kind) ? NULL : o->name,
				.key = (uint32_t)o->key, .has_id = is_sysv(o->kind) && o->key == 0,
				.id = (uint32_t)o->id,
			};
			take = remove_obj(&q, &obj, o->url) == 0;
		}
		if (!take)
			continue;
		struct ipcx_obj tmp = ov->v[kept];
		ov->v[kept] = *o;
		*o = tmp;
		kept++;
	}
	/* The hash is stale after the swaps: hand over the array as it is. */
	size_t n;
	struct ipcx_obj *v = take_objs(&s, &n);
	for (size_t i = kept; i < n; i++) {
		free(v[i].url);
		free(v[i].name);
		free(v[i].pids);
		free(v[i].subs);
	}
	scan_free(&s);
	*ret = v;
	return (ssize_t)kept;
}
