/*
 * Where IPC objects are found: /proc/sysvipc for System V, /dev/shm for
 * POSIX shared memory and named semaphores, the mqueue mount for POSIX
 * message queues, /proc/net/unix for bound Unix sockets, and directory walks
 * (never through a symlink) for FIFOs and socket files.  Nothing here opens
 * an object for use, so listing never disturbs one.
 */
#include "core/record.h"
#include "inspect/inspect.h"
#include "inspect/objurl.h"
#include "ipcx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- the object vector ------------------------------------------------------------ */

static size_t url_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (size_t)h;
}

static void hash_put(size_t *tab, size_t cap, const char *url, size_t idx)
{
	size_t i = url_hash(url) & (cap - 1);
	while (tab[i])
		i = (i + 1) & (cap - 1);
	tab[i] = idx + 1;
}

struct ipcx_obj *ipcx__ov_find(const struct objvec *ov, const char *url)
{
	if (!ov->hcap)
		return NULL;
	for (size_t i = url_hash(url) & (ov->hcap - 1); ov->hash[i]; i = (i + 1) & (ov->hcap - 1))
		if (strcmp(ov->v[ov->hash[i] - 1].url, url) == 0)
			return &ov->v[ov->hash[i] - 1];
	return NULL;
}

static int ov_grow(struct objvec *ov)
{
	size_t cap = ov->cap ? ov->cap * 2 : 64;
	struct ipcx_obj *v = realloc(ov->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ov->v = v;
	struct objx *x = realloc(ov->x, cap * sizeof(*x));
	if (!x)
		return -ENOMEM;
	ov->x = x;
	/* The hash table stays at most half full. */
	size_t *h = calloc(cap * 2, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < ov->n; i++)
		hash_put(h, cap * 2, ov->v[i].url, i);
	free(ov->hash);
	ov->hash = h;
	ov->hcap = cap * 2;
	ov->cap = cap;
	return 0;
}

struct ipcx_obj *ipcx__ov_add(struct objvec *ov, int kind, const char *url, const char *name)
{
	if (ipcx__ov_find(ov, url) || (ov->n == ov->cap && ov_grow(ov) < 0))
		return NULL;
	struct ipcx_obj *o = &ov->v[ov->n];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->key = o->id = o->uid = o->gid = o->size = o->messages = -1;
	o->nsems = o->nattch = o->ctime = -1;
	o->url = strdup(url);
	o->name = strdup(name);
	if (!o->url || !o->name) {
		free(o->url);
		free(o->name);
		return NULL;
	}
	memset(&ov->x[ov->n], 0, sizeof(ov->x[0]));
	hash_put(ov->hash, ov->hcap, url, ov->n);
	ov->n++;
	return o;
}

void ipcx__ov_free(struct objvec *ov)
{
	for (size_t i = 0; i < ov->n; i++) {
		free(ov->v[i].url);
		free(ov->v[i].name);
		free(ov->v[i].pids);
		free(ov->v[i].subs);
		free(ov->x[i].socks);
	}
	free(ov->v);
	free(ov->x);
	free(ov->hash);
	memset(ov, 0, sizeof(*ov));
}

/* Owner, mode, times and identity from a stat of the object's file. */
static void fill_stat(struct ipcx_obj *o, struct objx *x, const struct statx *st)
{
	o->uid = st->stx_uid;
	o->gid = st->stx_gid;
	o->mode = st->stx_mode & 07777;
	o->ctime = (st->stx_mask & STATX_BTIME) ? st->stx_btime.tv_sec : st->stx_ctime.tv_sec;
	/* As the st_dev that stat() and /proc/PID/maps give. */
	x->dev = makedev(st->stx_dev_major, st->stx_dev_minor);
	x->ino = st->stx_ino;
}

static int statx_at(int dfd, const char *name, struct statx *st)
{
	return statx(dfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		     STATX_BASIC_STATS | STATX_BTIME, st) < 0
		       ? -errno
		       : 0;
}

/*
 * The next entry of d (open on dfd) that is a regular file and not hidden,
 * with its statx in st; NULL at the end.
 */
static struct dirent *next_file(DIR *d, int dfd, struct statx *st)
{
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && statx_at(dfd, e->d_name, st) == 0 &&
		    S_ISREG(st->stx_mode))
			return e;
	return NULL;
}

/* A new object that is a file (st) in /dev/shm or the mqueue mount; NULL without memory. */
static struct ipcx_obj *add_listed(struct objvec *ov, int kind, const char *url, const char *name,
				   const struct statx *st)
{
	struct ipcx_obj *o = ipcx__ov_add(ov, kind, url, name);
	if (!o)
		return NULL;
	struct objx *x = ipcx__ov_x(ov, o);
	fill_stat(o, x, st);
	x->match = MATCH_FILE;
	return o;
}

/* ---- System V --------------------------------------------------------------------- */

#define SYSV_COLS 24

/* Column index of name in the header of a /proc/sysvipc file, or -1. */
static int col_of(char *const *cols, int ncols, const char *name)
{
	for (int i = 0; i < ncols; i++)
		if (strcmp(cols[i], name) == 0)
			return i;
	return -1;
}

static int split(char *line, char **cols, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(line, " \t\n", &save); tok && n < max;
	     tok = strtok_r(NULL, " \t\n", &save))
		cols[n++] = tok;
	return n;
}

static const struct {
	const char *file, *idcol;
	int kind;
} sysv_files[] = {
	{ "/proc/sysvipc/msg", "msqid", IPCX_OBJ_SYSV_MSG },
	{ "/proc/sysvipc/sem", "semid", IPCX_OBJ_SYSV_SEM },
	{ "/proc/sysvipc/shm", "shmid", IPCX_OBJ_SYSV_SHM },
};

static long long col_val(char *const *v, int nv, int col)
{
	return col >= 0 && col < nv ? strtoll(v[col], NULL, 10) : -1;
}

/* A folder to read entries from, with its descriptor for *at() calls; NULL
 * with errno set on failure. */
static DIR *open_dir(const char *path, int *dfd)
{
	*dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = *dfd >= 0 ? fdopendir(*dfd) : NULL;
	if (!d && *dfd >= 0) {
		int saved = errno;
		close(*dfd);
		errno = saved;
	}
	return d;
}

static void sysv_row(struct objvec *ov, int f, char *const *hdr, int nh, char *const *v, int nv)
{
	long long key = col_val(v, nv, col_of(hdr, nh, "key"));
	long long id = col_val(v, nv, col_of(hdr, nh, sysv_files[f].idcol));
	if (id < 0)
		return;
	uint32_t k = (uint32_t)key;
	char url[64];
	/* IPC_PRIVATE: many may share key 0, the id tells them apart. */
	struct ipcx__objid obj = { .kind = sysv_files[f].kind, .key = k, .has_id = k == 0,
				   .id = (uint32_t)id };
	if (ipcx__obj_url(&obj, url, sizeof(url)) < 0)
		return;
	struct ipcx_obj *o = ipcx__ov_add(ov, sysv_files[f].kind, url, "");
	if (!o)
		return;
	o->key = k;
	o->id = id;
	o->uid = col_val(v, nv, col_of(hdr, nh, "uid"));
	o->gid = col_val(v, nv, col_of(hdr, nh, "gid"));
	int pc = col_of(hdr, nh, "perms");
	o->mode = pc >= 0 && pc < nv ? (unsigned)strtoul(v[pc], NULL, 8) & 0777 : 0;
	o->ctime = col_val(v, nv, col_of(hdr, nh, "ctime"));
	switch (sysv_files[f].kind) {
	case IPCX_OBJ_SYSV_MSG:
		o->size = col_val(v, nv, col_of(hdr, nh, "cbytes"));
		o->messages = col_val(v, nv, col_of(hdr, nh, "qnum"));
		break;
	case IPCX_OBJ_SYSV_SEM:
		o->nsems = col_val(v, nv, col_of(hdr, nh, "nsems"));
		break;
	default:
		o->size = col_val(v, nv, col_of(hdr, nh, "size"));
		o->nattch = col_val(v, nv, col_of(hdr, nh, "nattch"));
		o->creator = (pid_t)col_val(v, nv, col_of(hdr, nh, "cpid"));
		ipcx__ov_x(ov, o)->match = MATCH_SYSV;
		ipcx__ov_x(ov, o)->ino = (uint64_t)id;
	}
}

int ipcx__scan_sysv(struct objvec *ov)
{
	for (int f = 0; f < 3; f++) {
		FILE *fp = fopen(sysv_files[f].file, "re");
		if (!fp)
			continue;
		char *hline = NULL, *line = NULL;
		size_t hcap = 0, cap = 0;
		char *hdr[SYSV_COLS], *v[SYSV_COLS];
		int nh = getline(&hline, &hcap, fp) > 0 ? split(hline, hdr, SYSV_COLS) : 0;
		while (nh && getline(&line, &cap, fp) > 0) {
			int nv = split(line, v, SYSV_COLS);
			sysv_row(ov, f, hdr, nh, v, nv);
		}
		free(hline);
		free(line);
		fclose(fp);
	}
	return 0;
}

/* ---- /dev/shm ---------------------------------------------------------------------- */

uint64_t ipcx__devshm_dev(void)
{
	struct stat st;
	return stat("/dev/shm", &st) == 0 ? st.st_dev : 0;
}

int ipcx__scan_devshm(struct objvec *ov)
{
	int dfd;
	DIR *d = open_dir("/dev/shm", &dfd);
	if (!d)
		return -errno;
	struct dirent *e;
	struct statx st;
	while ((e = next_file(d, dfd, &st))) {
		/* sem_open("/x") is the file /dev/shm/sem.x; shm_open("/x") is /dev/shm/x. */
		bool sem = strncmp(e->d_name, "sem.", 4) == 0 && e->d_name[4];
		char name[300], url[310];
		snprintf(name, sizeof(name), "/%s", sem ? e->d_name + 4 : e->d_name);
		int kind = sem ? IPCX_OBJ_POSIX_SEM : IPCX_OBJ_POSIX_SHM;
		if (ipcx__obj_url(IPCX__OBJ_NAMED(kind, name), url, sizeof(url)) < 0)
			continue;
		struct ipcx_obj *o = add_listed(ov, kind, url, name, &st);
		if (o)
			o->size = (int64_t)st.stx_size;
	}
	closedir(d);
	return 0;
}

/* ---- POSIX message queues ---------------------------------------------------------- */

/* Undo the octal escapes (\040) of a /proc/self/mountinfo field. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; w++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w = *r++;
		}
	}
	*w = '\0';
}

int ipcx__mqueue_mount(char *buf, size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t lcap = 0;
	int r = -ENOENT;
	while (r == -ENOENT && getline(&line, &lcap, f) > 0) {
		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - FSTYPE SOURCE SUPEROPTS" */
		char *sep = strstr(line, " - ");
		char fstype[32], mnt[4096];
		if (!sep || sscanf(sep + 3, "%31s", fstype) != 1 || strcmp(fstype, "mqueue") != 0 ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		unescape(mnt);
		if (strlen(mnt) >= cap)
			r = -ENAMETOOLONG;
		else {
			memcpy(buf, mnt, strlen(mnt) + 1);
			r = 0;
		}
	}
	free(line);
	fclose(f);
	return r;
}

uint64_t ipcx__mqueue_dev(void)
{
	char dir[4096];
	struct stat st;
	if (ipcx__mqueue_mount(dir, sizeof(dir)) < 0 || stat(dir, &st) < 0)
		return 0;
	return st.st_dev;
}

/* Messages waiting: mq_getattr on a read-only descriptor changes nothing. */
static int64_t mq_curmsgs(const char *name)
{
	mqd_t q = mq_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (q == (mqd_t)-1)
		return -1;
	struct mq_attr a;
	int64_t n = mq_getattr(q, &a) == 0 ? a.mq_curmsgs : -1;
	mq_close(q);
	return n;
}

/* The file of a queue reads "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0". */
static int64_t mq_qsize(int dfd, const char *leaf)
{
	char buf[128];
	int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	long long q;
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return sscanf(buf, "QSIZE:%lld", &q) == 1 ? q : -1;
}

int ipcx__scan_mqueue(struct objvec *ov)
{
	char dir[4096];
	int r = ipcx__mqueue_mount(dir, sizeof(dir));
	if (r < 0)
		return r;
	int dfd;
	DIR *d = open_dir(dir, &dfd);
	if (!d)
		return -errno;
	struct dirent *e;
	struct statx st;
	while ((e = next_file(d, dfd, &st))) {
		char name[300], url[310];
		snprintf(name, sizeof(name), "/%s", e->d_name);
		if (ipcx__obj_url(IPCX__OBJ_NAMED(IPCX_OBJ_POSIX_MQ, name), url, sizeof(url)) < 0)
			continue;
		struct ipcx_obj *o = add_listed(ov, IPCX_OBJ_POSIX_MQ, url, name, &st);
		if (!o)
			continue;
		o->size = mq_qsize(dfd, e->d_name);
		o->messages = mq_curmsgs(name);
	}
	closedir(d);
	return 0;
}

/* ---- Unix sockets ----------------------------------------------------------------- */

static int add_sock(struct objx *x, uint64_t ino)
{
	uint64_t *s = realloc(x->socks, (x->nsocks + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	x->socks = s;
	s[x->nsocks++] = ino;
	return 0;
}

/*
 * /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path".  A
 * listener's accepted connections repeat its path, so the sockets of one
 * path (or abstract name, shown with a leading '@') are one object.
 */
int ipcx__scan_unix(struct objvec *ov)
{
	FILE *f = fopen("/proc/net/unix", "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	bool first = true;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long ino;
		int off = 0;
		if (first) {
			first = false;
			continue;
		}
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %llu %n", &ino, &off) != 1 || !off)
			continue;
		char *path = line + off;
		path[strcspn(path, "\n")] = '\0';
		if (!path[0] || (path[0] != '/' && path[0] != '@'))
			continue; /* unnamed, or bound to a relative path we cannot place */
		char url[IPCX__CANON_MAX];
		if (ipcx__obj_url(IPCX__OBJ_NAMED(IPCX_OBJ_UNIX_SOCKET, path), url, sizeof(url)) < 0)
			continue;
		struct ipcx_obj *o = ipcx__ov_find(ov, url);
		if (!o && (o = ipcx__ov_add(ov, IPCX_OBJ_UNIX_SOCKET, url, path))) {
			struct objx *x = ipcx__ov_x(ov, o);
			x->match = MATCH_SOCK;
			o->id = (int64_t)ino;
			struct statx st;
			if (path[0] == '/' && statx_at(AT_FDCWD, path, &st) == 0 &&
			    S_ISSOCK(st.stx_mode))
				fill_stat(o, x, &st);
		}
		if (o && o->kind == IPCX_OBJ_UNIX_SOCKET)
			add_sock(ipcx__ov_x(ov, o), ino);
	}
	free(line);
	fclose(f);
	return 0;
}

/* ---- FIFOs and socket files ------------------------------------------------------ */

/* A FIFO or socket file at path (whose statx is st) becomes an object. */
static void add_file(struct objvec *ov, const char *path, const struct statx *st)
{
	bool fifo = S_ISFIFO(st->stx_mode);
	int kind = fifo ? IPCX_OBJ_FIFO : IPCX_OBJ_UNIX_SOCKET;
	char url[IPCX__CANON_MAX];
	if (ipcx__obj_url(IPCX__OBJ_NAMED(kind, path), url, sizeof(url)) < 0)
		return;
	struct ipcx_obj *o = ipcx__ov_find(ov, url);
	if (!o) {
		/* A socket file no socket is bound to any more: what a crash leaves. */
		o = ipcx__ov_add(ov, kind, url, path);
		if (o) {
			struct objx *x = ipcx__ov_x(ov, o);
			fill_stat(o, x, st);
			x->match = fifo ? MATCH_FILE : MATCH_NONE;
		}
	}
}

/* A regular file that holds an ipcx ring (an mmap: log) becomes an object. */
static void add_log(struct objvec *ov, const char *path, const struct statx *st)
{
	char *url = NULL;
	if (!ipcx__ring_file(path) || asprintf(&url, "mmap:%s", path) < 0)
		return;
	struct ipcx_obj *o = ipcx__ov_find(ov, url) ? NULL : ipcx__ov_add(ov, IPCX_OBJ_MMAP_LOG, url, path);
	if (o) {
		fill_stat(o, ipcx__ov_x(ov, o), st);
		o->size = (int64_t)st->stx_size;
	}
	free(url);
}

void ipcx__scan_path(struct objvec *ov, const char *path)
{
	struct statx st;
	if (path[0] != '/' || statx_at(AT_FDCWD, path, &st) < 0)
		return;
	if (S_ISFIFO(st.stx_mode) || S_ISSOCK(st.stx_mode))
		add_file(ov, path, &st);
	else if (S_ISREG(st.stx_mode))
		add_log(ov, path, &st);
}

#define WALK_DEPTH  4     /* /tmp/a/b/c/fifo */
#define WALK_BUDGET 50000 /* entries looked at, at most, per listing */

static void walk(struct objvec *ov, int dfd, const char *path, int depth, long *budget)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) && --*budget > 0) {
		const char *n = e->d_name;
		if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
			continue;
		unsigned char t = e->d_type;
		char *sub = NULL;
		if (asprintf(&sub, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", n) < 0)
			continue;
		if (t == DT_FIFO || t == DT_SOCK || t == DT_UNKNOWN) {
			struct statx st;
			if (statx_at(dfd, n, &st) == 0) {
				if (S_ISFIFO(st.stx_mode) || S_ISSOCK(st.stx_mode))
					add_file(ov, sub, &st);
				else if (S_ISDIR(st.stx_mode))
					t = DT_DIR;
			}
		}
		if (t == DT_DIR && depth > 1) {
			int sfd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd >= 0)
				walk(ov, sfd, sub, depth - 1, budget);
		}
		free(sub);
	}
	closedir(d);
}

static void walk_path(struct objvec *ov, const char *path, int depth, long *budget)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		walk(ov, fd, path, depth, budget);
	else
		ipcx__scan_path(ov, path);
}

int ipcx__scan_files(struct objvec *ov, const char *const *paths, size_t npaths)
{
	static const char *const usual[] = { "/tmp", "/var/tmp", "/run", "/dev/shm" };
	long budget = WALK_BUDGET;
	for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++)
		walk_path(ov, usual[i], WALK_DEPTH, &budget);
	for (size_t i = 0; paths && i < npaths; i++) {
		long own = WALK_BUDGET; /* asked for by name: a budget of its own */
		walk_path(ov, paths[i], WALK_DEPTH, &own);
	}
	return 0;
}
