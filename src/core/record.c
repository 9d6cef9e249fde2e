/*
 * Creator records: listen() notes which process created which object, so
 * that `ipcx ls` can mark objects made by ipcx and `ipcx gc` can tell an
 * orphan (its creator dead) from a live object.
 *
 * A record is one small file per object in a folder of the user's own:
 * /run/ipcx/0 for root, else $XDG_RUNTIME_DIR/ipcx, else /tmp/ipcx-UID.  The
 * folder is made 0700 and used only if it is a real folder (never through a
 * symlink) that belongs to the user and nobody else may write.  A file holds
 * the creator's pid, its start time (so that a reused pid is not taken for
 * the creator) and the URL; it is written under a temporary name and renamed
 * into place, so a reader never sees half of one.  Recording is best effort:
 * a listener works the same when its record cannot be written.
 */
#include "core/record.h"

#include "core/error.h"
#include "core/proc.h"
#include "core/url.h"
#include "ipcx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_MAGIC "ipcx-record 1\n"
#define REC_MAX   (IPCX__CANON_MAX + 128)

/* ---- canonical URLs ------------------------------------------------------- */

static const struct {
	const char *scheme;
	int kind;
	const char *canon; /* scheme written in the canonical URL */
} schemes[] = {
	{ "sysvmq", IPCX_OBJ_SYSV_MSG, "sysvmq" },
	{ "sysvsem", IPCX_OBJ_SYSV_SEM, "sysvsem" },
	{ "sysvshm", IPCX_OBJ_SYSV_SHM, "sysvshm" },
	{ "shm", IPCX_OBJ_POSIX_SHM, "shm" },
	{ "sem", IPCX_OBJ_POSIX_SEM, "sem" },
	{ "mq", IPCX_OBJ_POSIX_MQ, "mq" },
	{ "fifo", IPCX_OBJ_FIFO, "fifo" },
	{ "unix", IPCX_OBJ_UNIX_SOCKET, "unix" },
	{ "unixpacket", IPCX_OBJ_UNIX_SOCKET, "unix" },
	{ "unixgram", IPCX_OBJ_UNIX_SOCKET, "unix" },
};

/* What names a System V object besides its key; the owner's other options do not. */
enum { CANON_ID, CANON_PROJ, CANON_NOPTS };
static const struct ipcx__opt sysv_options[CANON_NOPTS + 1] = {
	[CANON_ID] = IPCX__UINT("id", 0, 0x7fffffff, 0),
	[CANON_PROJ] = IPCX__UINT("proj", 1, 255, 0),
};

static int sysv_canon(struct ipcx__url *u, const char *scheme, char *buf, size_t cap)
{
	int r = ipcx__url_opts_lenient(u, sysv_options);
	if (r < 0)
		return r;
	/* An IPC_PRIVATE object has key 0 and is named by its id instead. */
	char *end;
	bool by_id = ipcx__opt_set(u, CANON_ID);
	bool private_by_id = by_id && u->body[0] && strtoull(u->body, &end, 0) == 0 && !*end;
	key_t k = 0;
	r = private_by_id ? 0 : ipcx__url_sysv_key(u, ipcx__opt(u, CANON_PROJ), &k);
	if (r < 0)
		return r;
	unsigned long long key = (uint32_t)k;
	uint64_t id = by_id ? ipcx__opt(u, CANON_ID) : UINT64_MAX;
	int n = id == UINT64_MAX
			? snprintf(buf, cap, "%s:0x%08llx", scheme, key)
			: snprintf(buf, cap, "%s:0x%08llx?id=%llu", scheme, key, (unsigned long long)id);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* POSIX names: "/name", one component, as shm_open/sem_open/mq_open take. */
static int posix_canon(const struct ipcx__url *u, const char *scheme, char *buf, size_t cap)
{
	const char *b = u->body;
	size_t len = strlen(b);
	if (b[0] != '/' || len < 2 || len > 250 || strchr(b + 1, '/'))
		return ipcx__fail(-EINVAL, "%s: want %s:/name (one component)", u->orig, scheme);
	int n = snprintf(buf, cap, "%s:%s", scheme, b);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int path_canon(const struct ipcx__url *u, const char *scheme, int kind, char *buf,
		      size_t cap)
{
	const char *b = u->body;
	bool abstract = kind == IPCX_OBJ_UNIX_SOCKET && b[0] == '@' && b[1];
	if (!abstract && (b[0] != '/' || strlen(b) >= 4096))
		return ipcx__fail(-EINVAL, "%s: want %s:/absolute/path", u->orig, scheme);
	int n = snprintf(buf, cap, "%s:%s", scheme, b);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int ipcx__obj_canon(const char *url, int *kind, char *buf, size_t cap)
{
	struct ipcx__url *u = malloc(sizeof(*u));
	if (!u)
		return -ENOMEM;
	int r = ipcx__url_parse(url, u);
	size_t i = 0;
	while (r == 0 && i < sizeof(schemes) / sizeof(schemes[0]) &&
	       strcmp(schemes[i].scheme, u->scheme) != 0)
		i++;
	if (r == 0 && i == sizeof(schemes) / sizeof(schemes[0]))
		r = ipcx__fail(-EINVAL, "%s: '%s' names no IPC object ipcx can inspect", url,
			       u->scheme);
	if (r == 0) {
		int k = schemes[i].kind;
		const char *s = schemes[i].canon;
		if (k == IPCX_OBJ_SYSV_MSG || k == IPCX_OBJ_SYSV_SEM || k == IPCX_OBJ_SYSV_SHM)
			r = sysv_canon(u, s, buf, cap);
		else if (k == IPCX_OBJ_FIFO || k == IPCX_OBJ_UNIX_SOCKET)
			r = path_canon(u, s, k, buf, cap);
		else
			r = posix_canon(u, s, buf, cap);
		if (r == 0)
			*kind = k;
	}
	free(u);
	return r;
}

/* This process's start time, read once per process (and thread). */
static int self_start(uint64_t *ret)
{
	static __thread pid_t pid;
	static __thread uint64_t start;
	pid_t me = getpid();
	if (pid != me) {
		int r = ipcx__proc_start(me, &start);
		if (r < 0)
			return r;
		pid = me;
	}
	*ret = start;
	return 0;
}

/* ---- record folders ------------------------------------------------------------ */

/*
 * Open a folder that must belong to uid and be writable by nobody else,
 * without following a symlink.  With create, make it (mode) first.
 */
static int open_dir(const char *path, uid_t uid, mode_t mode, bool create)
{
	if (create && mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid ||
	    (st.st_mode & 022)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* The folder of this user's records, made if asked; its path goes in buf. */
static int own_dir(bool create, char *buf, size_t cap)
{
	uid_t uid = geteuid();
	if (uid == 0) {
		/* Made by root, writable by root only: checked when it is made. */
		int p = create ? open_dir("/run/ipcx", 0, 0755, true) : -1;
		if (create && p < 0)
			return p;
		if (p >= 0)
			close(p);
		snprintf(buf, cap, "/run/ipcx/0");
		return open_dir(buf, 0, 0700, create);
	}
	const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (xdg && xdg[0] == '/' && strlen(xdg) < cap - 8 && lstat(xdg, &st) == 0 &&
	    S_ISDIR(st.st_mode) && st.st_uid == uid && !(st.st_mode & 022)) {
		snprintf(buf, cap, "%s/ipcx", xdg);
		return open_dir(buf, uid, 0700, create);
	}
	snprintf(buf, cap, "/tmp/ipcx-%u", (unsigned)uid);
	return open_dir(buf, uid, 0700, create);
}

int ipcx__record_dir(char *buf, size_t cap)
{
	int dfd = own_dir(true, buf, cap);
	if (dfd < 0)
		return dfd;
	close(dfd);
	return 0;
}

/* The record's file name: a hash of the canonical URL (the URL is inside). */
static void rec_file(const char *canon, char *buf, size_t cap)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)canon; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	snprintf(buf, cap, "r%016llx", (unsigned long long)h);
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The hooks run inside a successful listen: they must not leave a detail
 * behind that the caller would take for its own.
 */
struct saved_detail {
	char text[512];
};

static void detail_save(struct saved_detail *d)
{
	snprintf(d->text, sizeof(d->text), "%s", ipcx_errdetail());
}

static void detail_restore(const struct saved_detail *d)
{
	if (d->text[0])
		ipcx__fail(0, "%s", d->text);
	else
		ipcx__clear_detail();
}

static int record_created(const char *url);

int ipcx__record_created(const char *url)
{
	struct saved_detail d = { { 0 } };
	detail_save(&d);
	int r = record_created(url);
	detail_restore(&d);
	return r;
}

static int record_created(const char *url)
{
	char canon[IPCX__CANON_MAX], dir[4200], file[24], tmp[64];
	int kind;
	uint64_t start;
	if (!url || ipcx__obj_canon(url, &kind, canon, sizeof(canon)) < 0)
		return -EINVAL;
	if (self_start(&start) < 0)
		return -EIO;
	int dfd = own_dir(true, dir, sizeof(dir));
	if (dfd < 0)
		return dfd;
	rec_file(canon, file, sizeof(file));
	snprintf(tmp, sizeof(tmp), ".t%d-%s", (int)getpid(), file);
	char *text = NULL;
	int len = asprintf(&text, REC_MAGIC "pid %d\nstart %llu\nurl %s\n", (int)getpid(),
			   (unsigned long long)start, canon);
	int r = len < 0 ? -ENOMEM : 0;
	int fd = -1;
	if (r == 0) {
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		r = fd < 0 ? -errno : write_all(fd, text, (size_t)len);
	}
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	/* A record left by an earlier creator of the same object is stale: replace it. */
	if (r == 0 && renameat(dfd, tmp, dfd, file) < 0)
		r = -errno;
	if (r < 0 && fd >= 0)
		unlinkat(dfd, tmp, 0);
	free(text);
	close(dfd);
	return r;
}

/* ---- reading records ----------------------------------------------------------- */

/* Parse a record file's text; false if it is not one. */
static bool rec_parse(char *text, struct ipcx__rec *r, char **urlp)
{
	if (strncmp(text, REC_MAGIC, strlen(REC_MAGIC)) != 0)
		return false;
	int pid;
	unsigned long long start;
	int off = 0;
	if (sscanf(text + strlen(REC_MAGIC), "pid %d\nstart %llu\nurl %n", &pid, &start, &off) !=
		    2 ||
	    !off || pid <= 0)
		return false;
	char *url = text + strlen(REC_MAGIC) + off;
	char *nl = strchr(url, '\n');
	if (!nl || nl[1])
		return false;
	*nl = '\0';
	char canon[IPCX__CANON_MAX];
	if (ipcx__obj_canon(url, &r->kind, canon, sizeof(canon)) < 0 || strcmp(canon, url) != 0)
		return false;
	r->pid = pid;
	r->start = start;
	*urlp = url;
	return true;
}

/* Read one record file of folder dfd, owned by uid; false if it is not a good one. */
static bool rec_read(int dfd, const char *name, uid_t uid, struct ipcx__rec *r)
{
	char *text = malloc(REC_MAX + 1);
	int fd = text ? openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
	struct stat st;
	bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid &&
		  !(st.st_mode & 022) && st.st_size > 0 && st.st_size <= REC_MAX;
	ssize_t n = ok ? read(fd, text, REC_MAX) : -1;
	if (fd >= 0)
		close(fd);
	char *url = NULL;
	if (n > 0) {
		text[n] = '\0';
		ok = rec_parse(text, r, &url);
	} else {
		ok = false;
	}
	if (ok) {
		r->url = strdup(url);
		r->owner = uid;
		snprintf(r->file, sizeof(r->file), "%s", name);
		ok = r->url != NULL;
	}
	free(text);
	return ok;
}

struct reclist {
	struct ipcx__rec *v;
	size_t n, cap;
};

/* Add the records of one folder (which must belong to uid). */
static void read_dir(struct reclist *l, const char *path, uid_t uid)
{
	int dfd = open_dir(path, uid, 0, false);
	if (dfd < 0)
		return;
	int dup_fd = dup(dfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		close(dfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] != 'r' || strlen(e->d_name) != 17)
			continue;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			struct ipcx__rec *v = realloc(l->v, cap * sizeof(*v));
			if (!v)
				break;
			l->v = v;
			l->cap = cap;
		}
		struct ipcx__rec *r = &l->v[l->n];
		memset(r, 0, sizeof(*r));
		if (!rec_read(dfd, e->d_name, uid, r))
			continue;
		r->dir = strdup(path);
		if (!r->dir) {
			free(r->url);
			continue;
		}
		l->n++;
	}
	closedir(d);
	close(dfd);
}

/* Root reads every user's folder: /run/ipcx/UID, /run/user/UID/ipcx, /tmp/ipcx-UID. */
static void read_all_users(struct reclist *l, const char *own)
{
	static const struct {
		const char *parent, *prefix, *fmt;
	} places[] = {
		{ "/run/ipcx", "", "/run/ipcx/%u" },
		{ "/run/user", "", "/run/user/%u/ipcx" },
		{ "/tmp", "ipcx-", "/tmp/ipcx-%u" },
	};
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		DIR *d = opendir(places[i].parent);
		if (!d)
			continue;
		struct dirent *e;
		size_t plen = strlen(places[i].prefix);
		while ((e = readdir(d))) {
			if (strncmp(e->d_name, places[i].prefix, plen) != 0)
				continue;
			char *end;
			const char *num = e->d_name + plen;
			unsigned long uid = strtoul(num, &end, 10);
			if (!*num || *end || uid > 0x7fffffffu)
				continue;
			char path[128];
			snprintf(path, sizeof(path), places[i].fmt, (unsigned)uid);
			if (strcmp(path, own) != 0)
				read_dir(l, path, (uid_t)uid);
		}
		closedir(d);
	}
}

int ipcx__record_list(struct ipcx__rec **ret, size_t *n)
{
	struct reclist l = { 0 };
	char own[4200];
	int dfd = own_dir(false, own, sizeof(own));
	if (dfd >= 0) {
		close(dfd);
		read_dir(&l, own, geteuid());
	} else {
		own[0] = '\0';
	}
	if (geteuid() == 0) {
		read_all_users(&l, own);
	} else {
		/*
		 * The same user's programs may have chosen another folder (one
		 * ran with $XDG_RUNTIME_DIR set, one without): read them all.
		 */
		static const char *const fmts[] = { "/run/user/%u/ipcx", "/tmp/ipcx-%u" };
		for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
			char path[128];
			snprintf(path, sizeof(path), fmts[i], (unsigned)geteuid());
			if (strcmp(path, own) != 0)
				read_dir(&l, path, geteuid());
		}
	}
	*ret = l.v;
	*n = l.n;
	return 0;
}

void ipcx__record_list_free(struct ipcx__rec *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++) {
		free(r[i].url);
		free(r[i].dir);
	}
	free(r);
}

/*
 * Unlink a record, but only the one that was read: the object may have been
 * made again since, with a new record under the same name.
 */
int ipcx__record_unlink(const struct ipcx__rec *r)
{
	int dfd = open_dir(r->dir, r->owner, 0, false);
	if (dfd < 0)
		return dfd;
	struct ipcx__rec now = { 0 };
	int ret = -ESTALE;
	if (rec_read(dfd, r->file, r->owner, &now) && now.pid == r->pid && now.start == r->start &&
	    strcmp(now.url, r->url) == 0)
		ret = unlinkat(dfd, r->file, 0) < 0 ? -errno : 0;
	free(now.url);
	close(dfd);
	return ret;
}

static void record_removed(const char *url);

void ipcx__record_removed(const char *url)
{
	struct saved_detail d = { { 0 } };
	detail_save(&d);
	record_removed(url);
	detail_restore(&d);
}

static void record_removed(const char *url)
{
	char canon[IPCX__CANON_MAX], dir[4200], file[24];
	int kind;
	if (!url || ipcx__obj_canon(url, &kind, canon, sizeof(canon)) < 0)
		return;
	int dfd = own_dir(false, dir, sizeof(dir));
	if (dfd < 0)
		return;
	rec_file(canon, file, sizeof(file));
	struct ipcx__rec r = { 0 };
	/* Only our own record: another process may have made the object again. */
	if (rec_read(dfd, file, geteuid(), &r) && r.pid == getpid() && strcmp(r.url, canon) == 0)
		unlinkat(dfd, file, 0);
	free(r.url);
	close(dfd);
}
