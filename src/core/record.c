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
 * the creator) and the object, by kind and name (or key):
 *
 *     ipcx-record 2
 *     pid 4242
 *     start 1234567
 *     kind 4                  enum ipcx_obj_kind
 *     name /ring              or, for a System V object: key 0x00001234
 *
 * It is written under a temporary name and renamed into place, so a reader
 * never sees half of one.  Recording is best effort: a listener works the
 * same when its record cannot be written.  Which URL names the object is
 * the inspector's business (inspect/objurl.h): the core knows no scheme.
 */
#include "core/record.h"

#include "core/error.h"
#include "core/proc.h"
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

#define REC_MAGIC "ipcx-record 2\n"
#define REC_MAX   (IPCX__NAME_MAX + 128)

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

/* An object a record can name: a kind, and a name on one line or a key. */
static bool objid_ok(const struct ipcx__objid *o)
{
	if (!o || o->kind <= 0 || o->kind > 255 || o->has_id)
		return false;
	if (!o->name)
		return true;
	size_t n = strlen(o->name);
	return n > 0 && n < IPCX__NAME_MAX && (o->name[0] == '/' || o->name[0] == '@') &&
	       !strchr(o->name, '\n');
}

bool ipcx__objid_eq(const struct ipcx__objid *a, const struct ipcx__objid *b)
{
	return a->kind == b->kind && !a->name == !b->name &&
	       (a->name ? strcmp(a->name, b->name) == 0 : a->key == b->key);
}

static bool rec_names(const struct ipcx__rec *r, const struct ipcx__objid *o)
{
	struct ipcx__objid x = ipcx__rec_obj(r);
	return ipcx__objid_eq(&x, o);
}

/* The record's file name: a hash of the object (which is inside). */
static void rec_file(const struct ipcx__objid *o, char *buf, size_t cap)
{
	uint64_t h = 0xcbf29ce484222325ull;
	char head[32];
	snprintf(head, sizeof(head), "%d:%s%08x", o->kind, o->name ? "" : "key=",
		 o->name ? 0u : (unsigned)o->key);
	for (const unsigned char *p = (const unsigned char *)head; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	for (const unsigned char *p = (const unsigned char *)(o->name ? o->name : ""); *p; p++)
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

static int record_created(const struct ipcx__objid *o);

int ipcx__record_created(const struct ipcx__objid *o)
{
	struct saved_detail d = { { 0 } };
	detail_save(&d);
	int r = record_created(o);
	detail_restore(&d);
	return r;
}

static int record_created(const struct ipcx__objid *o)
{
	char dir[4200], file[24], tmp[64];
	uint64_t start;
	if (!objid_ok(o))
		return -EINVAL;
	if (self_start(&start) < 0)
		return -EIO;
	int dfd = own_dir(true, dir, sizeof(dir));
	if (dfd < 0)
		return dfd;
	rec_file(o, file, sizeof(file));
	snprintf(tmp, sizeof(tmp), ".t%d-%s", (int)getpid(), file);
	char *text = NULL;
	int len = o->name ? asprintf(&text, REC_MAGIC "pid %d\nstart %llu\nkind %d\nname %s\n",
				     (int)getpid(), (unsigned long long)start, o->kind, o->name)
			  : asprintf(&text, REC_MAGIC "pid %d\nstart %llu\nkind %d\nkey 0x%08x\n",
				     (int)getpid(), (unsigned long long)start, o->kind,
				     (unsigned)o->key);
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

/*
 * Parse a record file's text; false if it is not one.  Whether its name is
 * one its kind takes is for the inspector, which turns it into a URL.
 */
static bool rec_parse(char *text, struct ipcx__rec *r, char **namep)
{
	if (strncmp(text, REC_MAGIC, strlen(REC_MAGIC)) != 0)
		return false;
	int pid, kind, off = 0;
	unsigned long long start;
	char *p = text + strlen(REC_MAGIC);
	if (sscanf(p, "pid %d\nstart %llu\nkind %d\n%n", &pid, &start, &kind, &off) != 3 ||
	    !off || pid <= 0 || kind <= 0 || kind > 255)
		return false;
	p += off;
	char *nl = strchr(p, '\n');
	if (!nl || nl[1])
		return false;
	*nl = '\0';
	unsigned key = 0;
	int n = 0;
	if (strncmp(p, "name ", 5) == 0) {
		*namep = p + 5;
	} else if (sscanf(p, "key 0x%8x%n", &key, &n) == 1 && n == 14 && !p[n]) {
		*namep = NULL;
	} else {
		return false;
	}
	struct ipcx__objid o = { .kind = kind, .name = *namep, .key = key };
	if (!objid_ok(&o))
		return false;
	r->kind = kind;
	r->key = key;
	r->pid = pid;
	r->start = start;
	return true;
}

/* Read one record file of folder dfd, owned by uid; false if it is not a good one. */
static bool rec_read(int dfd, const char *file, uid_t uid, struct ipcx__rec *r)
{
	char *text = malloc(REC_MAX + 1);
	int fd = text ? openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
	struct stat st;
	bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid &&
		  !(st.st_mode & 022) && st.st_size > 0 && st.st_size <= REC_MAX;
	ssize_t n = ok ? read(fd, text, REC_MAX) : -1;
	if (fd >= 0)
		close(fd);
	char *name = NULL;
	if (n > 0) {
		text[n] = '\0';
		ok = rec_parse(text, r, &name);
	} else {
		ok = false;
	}
	if (ok) {
		r->name = name ? strdup(name) : NULL;
		r->owner = uid;
		snprintf(r->file, sizeof(r->file), "%s", file);
		ok = !name || r->name != NULL;
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
			free(r->name);
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
		free(r[i].name);
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
	struct ipcx__objid was = ipcx__rec_obj(r);
	if (rec_read(dfd, r->file, r->owner, &now) && now.pid == r->pid && now.start == r->start &&
	    rec_names(&now, &was))
		ret = unlinkat(dfd, r->file, 0) < 0 ? -errno : 0;
	free(now.name);
	close(dfd);
	return ret;
}

static void record_removed(const struct ipcx__objid *o);

void ipcx__record_removed(const struct ipcx__objid *o)
{
	struct saved_detail d = { { 0 } };
	detail_save(&d);
	record_removed(o);
	detail_restore(&d);
}

static void record_removed(const struct ipcx__objid *o)
{
	char dir[4200], file[24];
	if (!objid_ok(o))
		return;
	int dfd = own_dir(false, dir, sizeof(dir));
	if (dfd < 0)
		return;
	rec_file(o, file, sizeof(file));
	struct ipcx__rec r = { 0 };
	/* Only our own record: another process may have made the object again. */
	if (rec_read(dfd, file, geteuid(), &r) && r.pid == getpid() && rec_names(&r, o))
		unlinkat(dfd, file, 0);
	free(r.name);
	close(dfd);
}
