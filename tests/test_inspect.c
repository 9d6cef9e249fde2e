/*
 * Object inspection: objects of every kind made with raw system calls (not
 * through ipcx) are listed with the right kind, owner and users; rm removes
 * each and nothing it should not; gc removes what a killed ipcx creator left
 * and leaves live and foreign objects alone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <mqueue.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/proc.h"
#include "core/record.h"
#include "inspect/objurl.h"
#include "tsupport.h"

/* POSIX queues are listed through the mqueue mount; as root, make it as the CLI does. */
static bool mq_listable(void)
{
	char dir[4096];
	if (ipcx_mqueue_dir(dir, sizeof(dir)) == 0)
		return true;
	if (geteuid() != 0)
		return false;
	mkdir("/dev/mqueue", 0755);
	mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	return ipcx_mqueue_dir(dir, sizeof(dir)) == 0;
}

/* ---- raw objects -------------------------------------------------------------------- */

struct raw {
	int kind;
	char url[300];
	char path[256]; /* fifo, socket file; POSIX name for shm/sem/mq */
	int id;         /* System V id */
	int fd;         /* held descriptor, or -1 */
	void *map;      /* held mapping, or NULL */
	size_t maplen;
	bool held;      /* this process keeps it open, mapped or attached */
};

static void raw_sysv(struct raw *r, int kind, bool hold)
{
	int key = t_sysv_key();
	const char *scheme = kind == IPCX_OBJ_SYSV_MSG ? "sysvmq"
			     : kind == IPCX_OBJ_SYSV_SEM ? "sysvsem"
							 : "sysvshm";
	snprintf(r->url, sizeof(r->url), "%s:0x%08x", scheme, (unsigned)key);
	if (kind == IPCX_OBJ_SYSV_MSG) {
		r->id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
		struct {
			long type;
			char text[5];
		} m = { 1, "hello" };
		cr_assert(r->id >= 0 && msgsnd(r->id, &m, 5, IPC_NOWAIT) == 0, "msgget: %m");
	} else if (kind == IPCX_OBJ_SYSV_SEM) {
		r->id = semget(key, 3, IPC_CREAT | IPC_EXCL | 0600);
		cr_assert(r->id >= 0, "semget: %m");
	} else {
		r->id = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
		cr_assert(r->id >= 0, "shmget: %m");
		if (hold) {
			r->map = shmat(r->id, NULL, 0);
			cr_assert(r->map != (void *)-1, "shmat: %m");
			r->held = true;
		}
	}
}

static void raw_posix(struct raw *r, int kind, bool hold)
{
	snprintf(r->path, sizeof(r->path), "/%s", t_name());
	const char *scheme = kind == IPCX_OBJ_POSIX_SHM ? "shm" : kind == IPCX_OBJ_POSIX_SEM ? "sem" : "mq";
	snprintf(r->url, sizeof(r->url), "%s:%s", scheme, r->path);
	if (kind == IPCX_OBJ_POSIX_SHM) {
		int fd = shm_open(r->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		cr_assert(fd >= 0 && ftruncate(fd, 4096) == 0, "shm_open: %m");
		if (hold) {
			r->map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			cr_assert(r->map != MAP_FAILED);
			r->maplen = 4096;
			r->held = true;
		}
		close(fd);
	} else if (kind == IPCX_OBJ_POSIX_SEM) {
		sem_t *s = sem_open(r->path, O_CREAT | O_EXCL, 0600, 1);
		cr_assert(s != SEM_FAILED, "sem_open: %m");
		if (hold) {
			r->map = s;
			r->held = true;
		} else {
			sem_close(s);
		}
	} else {
		mqd_t q = mq_open(r->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, NULL);
		cr_assert(q != (mqd_t)-1, "mq_open: %m");
		r->fd = (int)q;
		if (!hold) {
			mq_close(q);
			r->fd = -1;
		}
		r->held = hold;
	}
}

static void raw_file(struct raw *r, int kind, bool hold, bool abstract)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len;
	if (abstract) {
		snprintf(r->path, sizeof(r->path), "@%s", t_name());
		snprintf(r->url, sizeof(r->url), "unix:%s", r->path);
		memcpy(a.sun_path + 1, r->path + 1, strlen(r->path) - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(r->path));
	} else {
		snprintf(r->path, sizeof(r->path), "%s", t_path(t_name()));
		snprintf(r->url, sizeof(r->url), "%s:%s", kind == IPCX_OBJ_FIFO ? "fifo" : "unix",
			 r->path);
		cr_assert(strlen(r->path) < sizeof(a.sun_path));
		memcpy(a.sun_path, r->path, strlen(r->path) + 1);
		len = sizeof(a);
	}
	if (kind == IPCX_OBJ_FIFO) {
		cr_assert(mkfifo(r->path, 0600) == 0, "mkfifo: %m");
		if (hold)
			r->fd = open(r->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	} else {
		r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert(r->fd >= 0 && bind(r->fd, (struct sockaddr *)&a, len) == 0 &&
				  listen(r->fd, 4) == 0,
			  "bind %s: %m", r->path);
		if (!hold) { /* a socket file nobody is bound to: what a crash leaves */
			close(r->fd);
			r->fd = -1;
		}
	}
	r->held = hold;
}

/* Make one object of kind with raw system calls; hold it open if asked. */
static void raw_make(struct raw *r, int kind, bool hold, bool abstract)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->fd = -1;
	r->id = -1;
	if (kind <= IPCX_OBJ_SYSV_SHM)
		raw_sysv(r, kind, hold);
	else if (kind <= IPCX_OBJ_POSIX_MQ)
		raw_posix(r, kind, hold);
	else
		raw_file(r, kind, hold, abstract);
}

/* Let go of what raw_make held (the object itself stays unless removed). */
static void raw_release(struct raw *r)
{
	if (r->kind == IPCX_OBJ_SYSV_SHM && r->map)
		shmdt(r->map);
	else if (r->kind == IPCX_OBJ_POSIX_SEM && r->map)
		sem_close(r->map);
	else if (r->map)
		munmap(r->map, r->maplen);
	if (r->fd >= 0)
		close(r->fd);
	r->map = NULL;
	r->fd = -1;
	r->held = false;
}

static const struct ipcx_obj *find(const struct ipcx_obj *v, ssize_t n, const char *url)
{
	for (ssize_t i = 0; i < n; i++)
		if (strcmp(v[i].url, url) == 0)
			return &v[i];
	return NULL;
}

static bool has_pid(const struct ipcx_obj *o, pid_t pid)
{
	for (size_t i = 0; i < o->npids; i++)
		if (o->pids[i] == pid)
			return true;
	return false;
}

/* ---- ls and rm ----------------------------------------------------------------------- */

#define NRAW 9

static void make_every_kind(struct raw *r, bool hold)
{
	for (int k = IPCX_OBJ_SYSV_MSG; k <= IPCX_OBJ_MMAP_LOG; k++)
		raw_make(&r[k - 1], k, hold, false);
	raw_make(&r[8], IPCX_OBJ_UNIX_SOCKET, true, true);
}

Test(inspect, ls_finds_every_kind_made_raw)
{
	bool mq = mq_listable();
	struct raw r[NRAW];
	make_every_kind(r, true);
	struct ipcx_obj *v;
	ssize_t n = ipcx_ls(NULL, 0, &v);
	cr_assert(n > 0, "ipcx_ls: %zd %s", n, ipcx_errdetail());
	for (int i = 0; i < NRAW; i++) {
		if (r[i].kind == IPCX_OBJ_POSIX_MQ && !mq)
			continue; /* not root and not mounted: nothing can list queues */
		const struct ipcx_obj *o = find(v, n, r[i].url);
		cr_assert(o, "%s not listed", r[i].url);
		cr_expect_eq(o->kind, r[i].kind, "%s: kind %d", r[i].url, o->kind);
		cr_expect_eq(o->uid, (int64_t)geteuid(), "%s: owner %lld", r[i].url, (long long)o->uid);
		if (r[i].kind != IPCX_OBJ_UNIX_SOCKET)
			cr_expect_eq(o->mode, 0600u, "%s: mode %o", r[i].url, o->mode);
		cr_expect(!o->ipcx && !o->orphan, "%s: raw objects are not ipcx's", r[i].url);
		/* System V queues and semaphore sets are never "open" by a process. */
		if (r[i].kind != IPCX_OBJ_SYSV_MSG && r[i].kind != IPCX_OBJ_SYSV_SEM)
			cr_expect(has_pid(o, getpid()), "%s: our pid is not among its users", r[i].url);
		if (r[i].id >= 0)
			cr_expect_eq(o->id, r[i].id, "%s: id", r[i].url);
	}
	const struct ipcx_obj *q = find(v, n, r[0].url);
	cr_expect(q && q->messages == 1 && q->size == 5, "sysv-msg: one message of 5 bytes");
	const struct ipcx_obj *s = find(v, n, r[1].url);
	cr_expect(s && s->nsems == 3, "sysv-sem: 3 semaphores");
	const struct ipcx_obj *m = find(v, n, r[2].url);
	cr_expect(m && m->size == 8192 && m->nattch == 1, "sysv-shm: size and attachments");
	ipcx_objs_free(v, (size_t)n);

	for (int i = 0; i < NRAW; i++) {
		if (r[i].path[0] == '@') {
			cr_expect_eq(ipcx_obj_remove(r[i].url, 0), -EOPNOTSUPP);
		} else {
			if (r[i].kind == IPCX_OBJ_UNIX_SOCKET && r[i].held) {
				/* Its listener answers: left alone until it is gone. */
				cr_expect_eq(ipcx_obj_remove(r[i].url, 0), -EBUSY, "%s",
					     ipcx_errdetail());
				raw_release(&r[i]);
			}
			int rc = ipcx_obj_remove(r[i].url, 0);
			cr_expect_eq(rc, 0, "rm %s: %d %s", r[i].url, rc, ipcx_errdetail());
			cr_expect_eq(ipcx_obj_remove(r[i].url, 0), -ENOENT, "%s removed twice", r[i].url);
		}
		raw_release(&r[i]);
		struct ipcx_obj *o;
		cr_expect_eq(ipcx_obj_find(r[i].url, 0, &o), -ENOENT, "%s still there", r[i].url);
	}
}

Test(inspect, find_one_object)
{
	struct raw r;
	raw_make(&r, IPCX_OBJ_FIFO, true, false);
	struct ipcx_obj *o;
	int rc = ipcx_obj_find(r.url, 0, &o);
	cr_assert_eq(rc, 0, "%d %s", rc, ipcx_errdetail());
	cr_expect_eq(o->kind, IPCX_OBJ_FIFO);
	cr_expect_str_eq(o->name, r.path);
	cr_expect(has_pid(o, getpid()));
	ipcx_objs_free(o, 1);
	/* The same object under another spelling of its URL. */
	char alt[320];
	snprintf(alt, sizeof(alt), "fifo://%s?mode=0600", r.path);
	cr_expect_eq(ipcx_obj_find(alt, 0, &o), 0);
	ipcx_objs_free(o, 1);
	cr_expect_eq(ipcx_obj_remove(r.url, 0), 0);
	raw_release(&r);
}

Test(inspect, rm_never_deletes_other_files)
{
	const char *file = t_path("regular");
	int fd = open(file, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	close(fd);
	struct raw f;
	raw_make(&f, IPCX_OBJ_FIFO, false, false);
	const char *link = t_path("link");
	cr_assert(symlink(f.path, link) == 0);
	char url[400];
	snprintf(url, sizeof(url), "fifo:%s", file);
	cr_expect_eq(ipcx_obj_remove(url, 0), -EINVAL, "a regular file is no FIFO");
	snprintf(url, sizeof(url), "unix:%s", file);
	cr_expect_eq(ipcx_obj_remove(url, 0), -EINVAL, "a regular file is no socket");
	snprintf(url, sizeof(url), "fifo:%s", link);
	cr_expect_eq(ipcx_obj_remove(url, 0), -EINVAL, "a symlink is never followed");
	snprintf(url, sizeof(url), "unix:%s", f.path);
	cr_expect_eq(ipcx_obj_remove(url, 0), -EINVAL, "a FIFO is no socket");
	struct stat st;
	cr_expect(stat(file, &st) == 0 && S_ISREG(st.st_mode), "the file survived");
	cr_expect(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link survived");
	cr_expect(stat(f.path, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO survived");
	cr_expect_eq(ipcx_obj_remove("shm:/../etc/passwd", 0), -EINVAL);
	cr_expect_eq(ipcx_obj_remove("tcp://127.0.0.1:1", 0), -EINVAL);
	cr_expect_eq(ipcx_obj_remove(f.url, 0x100), -EINVAL, "unknown flags");
	cr_expect_eq(ipcx_obj_remove(f.url, 0), 0);
	unlink(link);
	unlink(file);
}

/*
 * Another process holds the flock a shm: listener holds (a listener making or
 * replacing the segment, or any program): rm leaves it and names the holder.
 */
Test(inspect, rm_leaves_a_segment_a_listener_holds)
{
	char name[300], url[320], want[64];
	snprintf(name, sizeof(name), "/%s", t_name());
	snprintf(url, sizeof(url), "shm:%s", name);
	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	cr_expect_eq(ipcx_obj_remove(url, 0), -EBUSY, "%s", ipcx_errdetail());
	snprintf(want, sizeof(want), "locked by pid %d", (int)getpid());
	cr_expect(strstr(ipcx_errdetail(), want), "%s", ipcx_errdetail());
	int again = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	cr_expect_geq(again, 0, "still there");
	if (again >= 0)
		close(again);
	cr_assert_eq(flock(fd, LOCK_UN), 0);
	cr_expect_eq(ipcx_obj_remove(url, 0), 0, "%s", ipcx_errdetail());
	cr_expect_eq(shm_open(name, O_RDONLY | O_CLOEXEC, 0), -1, "removed");
	close(fd);
	shm_unlink(name);
}

/* A live listener holds the lock from creation to close: rm says so, and whose. */
Test(inspect, rm_says_a_live_listener_holds_its_ring)
{
	char url[320], want[64];
	snprintf(url, sizeof(url), "shm:/%s", t_name());
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_obj_remove(url, 0), -EBUSY, "%s", ipcx_errdetail());
	snprintf(want, sizeof(want), "in use by a live listener (pid %d)", (int)getpid());
	cr_expect(strstr(ipcx_errdetail(), want), "%s", ipcx_errdetail());
	cr_expect(!strstr(ipcx_errdetail(), "creating or replacing"), "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_close(l), 0, "the listener still removes its own ring");
}

/* A socket file nobody is bound to any more, as a killed listener leaves it. */
static void stale_socket(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	cr_assert(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s: %m", path);
	close(fd);
}

/* The lock a unix: listener holds while it creates or replaces its socket file. */
static int hold_path_lock(const char *path)
{
	char lp[400];
	snprintf(lp, sizeof(lp), "%s.ipcx-lock", path);
	int fd = open(lp, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	cr_assert(fd >= 0 && flock(fd, LOCK_EX) == 0, "%s: %m", lp);
	return fd;
}

/*
 * rm of a socket file: a live listener's is left alone (it answers); one
 * whose lock a listener holds (making or replacing it: bound, not answering
 * yet) too; a stale one is removed, with the lock file a killed holder left.
 * Before, rm unlinked each of them.
 */
Test(inspect, rm_leaves_a_live_or_locked_socket)
{
	const char *path = t_path(t_name());
	char url[400], lp[420];
	snprintf(url, sizeof(url), "unix:%s", path);
	snprintf(lp, sizeof(lp), "%s.ipcx-lock", path);
	struct stat st;
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_obj_remove(url, 0), -EBUSY, "%s", ipcx_errdetail());
	cr_expect(strstr(ipcx_errdetail(), "live listener"), "%s", ipcx_errdetail());
	cr_expect_eq(lstat(path, &st), 0, "the live listener's socket is still there");
	cr_expect_neq(lstat(lp, &st), 0, "no lock file left behind");
	ipcx_close(l);

	stale_socket(path);
	int lk = hold_path_lock(path);
	cr_expect_eq(ipcx_obj_remove(url, 0), -EBUSY, "%s", ipcx_errdetail());
	cr_expect(strstr(ipcx_errdetail(), "creating or replacing"), "%s", ipcx_errdetail());
	cr_expect_eq(lstat(path, &st), 0, "the locked socket is still there");
	close(lk); /* the holder is gone; its lock file stays, as a killed one's does */
	cr_assert_eq(lstat(lp, &st), 0);
	cr_expect_eq(ipcx_obj_remove(url, 0), 0, "%s", ipcx_errdetail());
	cr_expect_neq(lstat(path, &st), 0, "the stale socket was removed");
	cr_expect_neq(lstat(lp, &st), 0, "and the stale lock file with it");
	unlink(path);
	unlink(lp);
}

/* A creator that records the object url names, then exits. */
static int record_and_exit(void *url)
{
	struct ipcx__objid o;
	char name[IPCX__CANON_MAX];
	return ipcx__obj_parse(url, &o, name, sizeof(name)) == 0 && ipcx__record_created(&o) == 0
		       ? 0 : 1;
}

/* gc takes the same lock: an orphan socket whose lock a listener holds stays. */
Test(inspect, gc_leaves_a_locked_socket)
{
	const char *path = t_path(t_name());
	char url[400], lp[420];
	snprintf(url, sizeof(url), "unix:%s", path);
	snprintf(lp, sizeof(lp), "%s.ipcx-lock", path);
	stale_socket(path);
	cr_assert_eq(t_join(t_spawn(record_and_exit, url), T_GUARD_MS), 0, "a creator that died");
	struct ipcx_obj *v;
	struct stat st;
	int lk = hold_path_lock(path);
	ssize_t n = ipcx_gc(url, 0, &v);
	cr_expect_eq(n, 0, "an orphan being replaced is not removed");
	ipcx_objs_free(v, n > 0 ? (size_t)n : 0);
	cr_expect_eq(lstat(path, &st), 0, "the locked socket is still there");
	close(lk);
	n = ipcx_gc(url, 0, &v);
	cr_expect_eq(n, 1, "%s", ipcx_errdetail());
	ipcx_objs_free(v, n > 0 ? (size_t)n : 0);
	cr_expect_neq(lstat(path, &st), 0, "the orphan was removed");
	cr_expect_neq(lstat(lp, &st), 0, "and the stale lock file with it");
	unlink(path);
	unlink(lp);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/*
 * What listeners killed while making their objects left: a socket's lock
 * file and FIFOs under their temporary names.  gc removes those nobody
 * holds (beside the paths of its records) and leaves those a listener
 * holds.  Before, gc knew nothing of them and they stayed for ever.
 */
Test(inspect, gc_removes_leftovers_nobody_holds)
{
	char dir[300], fifo_url[400], sock_url[400], held_url[400], lk[420], held_lk[420];
	char tmp_free[400], tmp_held[400];
	const char *fifo = t_path(t_name());
	snprintf(dir, sizeof(dir), "%s", fifo);
	*strrchr(dir, '/') = 0;
	const char *sock = t_path(t_name());
	char held[300];
	snprintf(held, sizeof(held), "%s", t_path(t_name()));
	snprintf(fifo_url, sizeof(fifo_url), "fifo:%s", fifo);
	snprintf(sock_url, sizeof(sock_url), "unix:%s", sock);
	snprintf(held_url, sizeof(held_url), "unix:%s", held);
	snprintf(lk, sizeof(lk), "%s.ipcx-lock", sock);
	snprintf(held_lk, sizeof(held_lk), "%s.ipcx-lock", held);
	snprintf(tmp_free, sizeof(tmp_free), "%s/.ipcx-fifo-%016llx", dir, 1ULL);
	snprintf(tmp_held, sizeof(tmp_held), "%s/.ipcx-fifo-%016llx", dir, 2ULL);
	const char *urls[] = { fifo_url, sock_url, held_url };
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_join(t_spawn(record_and_exit, (void *)urls[i]), T_GUARD_MS), 0);
	close(open(lk, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)); /* a killed holder's */
	int lkfd = hold_path_lock(held);                                   /* a live holder's */
	cr_assert_eq(mkfifo(tmp_free, 0600), 0);
	cr_assert_eq(mkfifo(tmp_held, 0600), 0);
	/* As a listener holds its FIFO while it makes it: read end open, shared flock. */
	int rd = open(tmp_held, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert(rd >= 0 && flock(rd, LOCK_SH | LOCK_NB) == 0);
	/* One gc for the three (it drops the records whose objects are gone). */
	char match[320];
	snprintf(match, sizeof(match), "*%s/*", dir);
	struct ipcx_obj *v;
	ssize_t n = ipcx_gc(match, 0, &v);
	cr_expect_eq(n, 0, "no object to remove: %s", ipcx_errdetail());
	ipcx_objs_free(v, n > 0 ? (size_t)n : 0);
	cr_expect(!exists(lk), "the lock file nobody held was removed");
	cr_expect(exists(held_lk), "the lock file a listener holds stays");
	cr_expect(!exists(tmp_free), "the FIFO nobody held was removed");
	cr_expect(exists(tmp_held), "the FIFO a listener holds stays");
	close(rd);
	close(lkfd);
	unlink(lk);
	unlink(held_lk);
	unlink(tmp_free);
	unlink(tmp_held);
}

Test(inspect, rm_refuses_another_users_object)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to make an object of another user");
	struct raw f;
	raw_make(&f, IPCX_OBJ_FIFO, false, false);
	/* nobody must reach the FIFO through its folder to be its owner: chown the file only. */
	cr_assert(chown(f.path, 65534, 65534) == 0);
	int rc = ipcx_obj_remove(f.url, 0);
	cr_expect_eq(rc, -EPERM, "root without force: %d", rc);
	cr_expect(strstr(ipcx_errdetail(), "force"), "the detail says how: %s", ipcx_errdetail());
	struct raw s;
	raw_make(&s, IPCX_OBJ_SYSV_SEM, false, false);
	struct semid_ds ds = { .sem_perm = { .uid = 65534, .gid = 65534, .mode = 0600 } };
	cr_assert(semctl(s.id, 0, IPC_SET, &ds) == 0, "IPC_SET: %m");
	cr_expect_eq(ipcx_obj_remove(s.url, 0), -EPERM);
	cr_expect_eq(ipcx_obj_remove(f.url, IPCX_RM_FORCE), 0);
	cr_expect_eq(ipcx_obj_remove(s.url, IPCX_RM_FORCE), 0);
}

Test(inspect, kinds_and_flags)
{
	for (int k = IPCX_OBJ_SYSV_MSG; k <= IPCX_OBJ_MMAP_LOG; k++)
		cr_expect_eq(ipcx_obj_kind_parse(ipcx_obj_kind_name(k)), k);
	cr_expect_null(ipcx_obj_kind_name(0));
	cr_expect_eq(ipcx_obj_kind_parse("pipe"), -EINVAL);
	struct ipcx_obj *v = NULL;
	cr_expect_eq(ipcx_ls(NULL, 0x80, &v), -EINVAL);
	const char *rel[] = { "relative/path", NULL };
	cr_expect_eq(ipcx_ls(rel, 0, &v), -EINVAL);
	cr_expect_eq(ipcx_gc(NULL, 0x80, &v), -EINVAL);
	cr_expect_eq(ipcx_obj_find("sysvshm:0", 0, &v), -EINVAL, "key 0 needs ?id=");
	ipcx_objs_free(NULL, 0);
}

/* ---- records and gc -------------------------------------------------------------------- */

/* The kinds an ipcx listener records; each child makes one of each. */
static const int gc_kinds[] = {
	IPCX_OBJ_SYSV_MSG,  IPCX_OBJ_SYSV_SEM, IPCX_OBJ_SYSV_SHM, IPCX_OBJ_POSIX_SHM,
	IPCX_OBJ_POSIX_SEM, IPCX_OBJ_POSIX_MQ, IPCX_OBJ_FIFO,     IPCX_OBJ_UNIX_SOCKET,
};
#define NGC (sizeof(gc_kinds) / sizeof(gc_kinds[0]))

struct creator {
	struct raw r[NGC];
	struct t_sync ready; /* the child made and recorded everything */
	int hold[2];         /* the child lives until this pipe closes */
};

/*
 * A creator as an ipcx listener is one: it makes the objects (raw here, so
 * that every kind is covered) and records them through the listener hook.
 */
static int creator_main(void *arg)
{
	struct creator *c = arg;
	close(c->hold[1]);
	for (size_t i = 0; i < NGC; i++)
		if (t_record_created(c->r[i].url) != 0)
			return 1;
	t_post(&c->ready);
	char b;
	while (read(c->hold[0], &b, 1) < 0 && errno == EINTR)
		;
	return 0;
}

/* The parent makes the objects (names carry its pid, tag and counter) and lets go. */
static pid_t start_creator(struct creator *c)
{
	for (size_t i = 0; i < NGC; i++) {
		raw_make(&c->r[i], gc_kinds[i], false, false);
		raw_release(&c->r[i]);
	}
	t_sync_init(&c->ready);
	cr_assert(pipe2(c->hold, O_CLOEXEC) == 0);
	pid_t pid = t_spawn(creator_main, c);
	close(c->hold[0]);
	cr_assert(t_wait_post(&c->ready, T_GUARD_MS), "the creator did not start");
	return pid;
}

/*
 * Run gc (or a dry run) on this test's objects only, named one by one:
 * other suites run at the same time, and their orphans are not ours to take.
 */
static ssize_t gc_ours(struct creator *const *cs, size_t ncs, unsigned flags,
		       struct ipcx_obj **all)
{
	struct ipcx_obj *v = calloc(ncs * NGC + 1, sizeof(*v));
	cr_assert(v);
	ssize_t n = 0;
	for (size_t c = 0; c < ncs; c++) {
		for (size_t i = 0; i < NGC; i++) {
			struct ipcx_obj *one;
			ssize_t k = ipcx_gc(cs[c]->r[i].url, flags, &one);
			cr_assert(k >= 0 && k <= 1, "gc %s: %zd %s", cs[c]->r[i].url, k,
				  ipcx_errdetail());
			if (k)
				v[n++] = one[0];
			free(one);
		}
	}
	*all = v;
	return n;
}

static bool in_list(const struct ipcx_obj *v, ssize_t n, const char *url)
{
	return find(v, n, url) != NULL;
}

static void cleanup(struct creator *c)
{
	for (size_t i = 0; i < NGC; i++)
		ipcx_obj_remove(c->r[i].url, 0);
}

Test(inspect, gc_removes_what_a_killed_creator_left)
{
	bool mq = mq_listable();
	struct creator dead, live;
	pid_t dpid = start_creator(&dead);
	pid_t lpid = start_creator(&live);
	struct raw foreign; /* made by no ipcx program: never gc's to remove */
	raw_make(&foreign, IPCX_OBJ_FIFO, false, false);

	/* While both run, their objects are ipcx's and nobody's orphans. */
	struct ipcx_obj *v;
	ssize_t n = ipcx_ls(NULL, 0, &v);
	cr_assert(n > 0);
	for (size_t i = 0; i < NGC; i++) {
		if (gc_kinds[i] == IPCX_OBJ_POSIX_MQ && !mq)
			continue;
		const struct ipcx_obj *o = find(v, n, dead.r[i].url);
		cr_assert(o, "%s not listed", dead.r[i].url);
		cr_expect(o->ipcx && o->creator == dpid && o->creator_alive && !o->orphan,
			  "%s: ipcx %d creator %d alive %d orphan %d", o->url, o->ipcx, (int)o->creator,
			  o->creator_alive, o->orphan);
	}
	ipcx_objs_free(v, (size_t)n);

	kill(dpid, SIGKILL);
	cr_assert_eq(t_join(dpid, T_GUARD_MS), 128 + SIGKILL);

	/* Someone still using one of the dead creator's objects keeps it alive. */
	char shmname[300];
	snprintf(shmname, sizeof(shmname), "%s", dead.r[3].path);
	int keep = shm_open(shmname, O_RDONLY | O_CLOEXEC, 0);
	cr_assert(keep >= 0);

	ssize_t want = mq ? (ssize_t)NGC - 1 : (ssize_t)NGC - 2;
	struct creator *both[] = { &dead, &live };
	n = gc_ours(both, 2, IPCX_GC_DRY_RUN, &v);
	for (size_t i = 0; i < NGC; i++) {
		bool expect = i != 3 && (gc_kinds[i] != IPCX_OBJ_POSIX_MQ || mq);
		cr_expect_eq(in_list(v, n, dead.r[i].url), expect, "dry run, %s", dead.r[i].url);
		cr_expect(!in_list(v, n, live.r[i].url), "dry run lists a live one: %s",
			  live.r[i].url);
	}
	cr_expect_eq(n, want, "dry run: %zd orphans", n);
	ipcx_objs_free(v, (size_t)n);
	struct ipcx_obj *o;
	cr_expect_eq(ipcx_obj_find(dead.r[0].url, 0, &o), 0, "a dry run removes nothing");
	ipcx_objs_free(o, 1);

	close(keep);
	want++;
	n = gc_ours(both, 2, 0, &v);
	cr_expect_eq(n, want, "gc removed %zd", n);
	ipcx_objs_free(v, (size_t)n);
	for (size_t i = 0; i < NGC; i++) {
		if (gc_kinds[i] == IPCX_OBJ_POSIX_MQ && !mq)
			continue;
		cr_expect_eq(ipcx_obj_find(dead.r[i].url, 0, &o), -ENOENT, "%s survived gc",
			     dead.r[i].url);
		int rc = ipcx_obj_find(live.r[i].url, 0, &o);
		cr_expect_eq(rc, 0, "gc removed a live one: %s", live.r[i].url);
		if (rc == 0)
			ipcx_objs_free(o, 1);
	}
	cr_expect_eq(ipcx_obj_find(foreign.url, 0, &o), 0, "gc removed a foreign object");
	ipcx_objs_free(o, 1);

	/* The live creator exits without removing: now its objects are orphans too. */
	close(live.hold[1]);
	cr_assert_eq(t_join(lpid, T_GUARD_MS), 0);
	n = gc_ours(both, 2, 0, &v);
	cr_expect_eq(n, want, "gc after the second creator: %zd", n);
	ipcx_objs_free(v, (size_t)n);
	for (size_t i = 0; i < NGC; i++)
		cr_expect_eq(ipcx_obj_find(live.r[i].url, 0, &o), -ENOENT, "%s", live.r[i].url);
	cleanup(&dead);
	cleanup(&live);
	cr_expect_eq(ipcx_obj_remove(foreign.url, 0), 0);
	t_sync_close(&dead.ready);
	t_sync_close(&live.ready);
}

/* One canonical URL per object, whatever form it was named in (inspect/objurl.c). */
Test(inspect, object_urls_have_one_canonical_form)
{
	static const struct {
		const char *url, *canon;
		int kind;
	} v[] = {
		{ "sysvmq:4660", "sysvmq:0x00001234", IPCX_OBJ_SYSV_MSG },
		{ "sysvshm:0x1234?capacity=4096&keep=1", "sysvshm:0x00001234", IPCX_OBJ_SYSV_SHM },
		{ "sysvsem:0?id=7", "sysvsem:0x00000000?id=7", IPCX_OBJ_SYSV_SEM },
		{ "shm:/ring?capacity=4096", "shm:/ring", IPCX_OBJ_POSIX_SHM },
		{ "sem:/s", "sem:/s", IPCX_OBJ_POSIX_SEM },
		{ "mq:/q?maxmsg=4", "mq:/q", IPCX_OBJ_POSIX_MQ },
		{ "fifo:/tmp/f", "fifo:/tmp/f", IPCX_OBJ_FIFO },
		{ "unixgram:/tmp/s", "unix:/tmp/s", IPCX_OBJ_UNIX_SOCKET },
		{ "unixpacket:@abs", "unix:@abs", IPCX_OBJ_UNIX_SOCKET },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char canon[IPCX__CANON_MAX], name[IPCX__NAME_MAX], back[IPCX__CANON_MAX];
		int kind = 0;
		cr_assert_eq(ipcx__obj_canon(v[i].url, &kind, canon, sizeof(canon)), 0, "%s: %s",
			     v[i].url, ipcx_errdetail());
		cr_expect_str_eq(canon, v[i].canon);
		cr_expect_eq(kind, v[i].kind, "%s", v[i].url);
		/* Read back and written again, the canonical URL is itself. */
		struct ipcx__objid o;
		cr_assert_eq(ipcx__obj_parse(canon, &o, name, sizeof(name)), 0, "%s", canon);
		cr_assert_eq(ipcx__obj_url(&o, back, sizeof(back)), 0);
		cr_expect_str_eq(back, canon);
		cr_expect(ipcx__obj_is_canon(canon), "%s", canon);
		cr_expect_eq(ipcx__obj_is_canon(v[i].url), strcmp(v[i].url, v[i].canon) == 0, "%s",
			     v[i].url);
	}
	char canon[IPCX__CANON_MAX];
	int kind = 0;
	cr_expect_eq(ipcx__obj_canon("tcp://127.0.0.1:1", &kind, canon, sizeof(canon)), -EINVAL);
	cr_expect_eq(ipcx__obj_canon("shm:/a/b", &kind, canon, sizeof(canon)), -EINVAL);
	cr_expect_eq(ipcx__obj_canon("fifo:relative", &kind, canon, sizeof(canon)), -EINVAL);
	cr_expect_eq(ipcx__obj_url(IPCX__OBJ_NAMED(99, "/x"), canon, sizeof(canon)), -EINVAL);
	cr_expect_eq(ipcx__obj_url(IPCX__OBJ_NAMED(IPCX_OBJ_FIFO, "/x"), canon, 4), -ENAMETOOLONG);
}

Test(inspect, records_follow_the_listener)
{
	struct raw f;
	raw_make(&f, IPCX_OBJ_FIFO, false, false);
	cr_assert_eq(t_record_created(f.url), 0);
	struct ipcx_obj *o;
	cr_assert_eq(ipcx_obj_find(f.url, 0, &o), 0);
	cr_expect(o->ipcx && o->creator == getpid() && o->creator_alive && !o->orphan);
	ipcx_objs_free(o, 1);
	t_record_removed(f.url);
	cr_assert_eq(ipcx_obj_find(f.url, 0, &o), 0);
	cr_expect(!o->ipcx, "the record went with ipcx__record_removed");
	ipcx_objs_free(o, 1);
	/* A record never makes a listen fail, and never leaves a detail behind. */
	ipcx__clear_detail();
	cr_expect_eq(ipcx__record_created(IPCX__OBJ_NAMED(IPCX_OBJ_FIFO, "relative/path")), -EINVAL);
	cr_expect_eq(ipcx__record_created(IPCX__OBJ_NAMED(0, "/no/kind")), -EINVAL);
	cr_expect_str_eq(ipcx_errdetail(), "");
	/* A URL that names no object has no record (the inspector says why). */
	cr_expect_eq(t_record_created("tcp://127.0.0.1:1"), -EINVAL);
	cr_expect_eq(ipcx_obj_remove(f.url, 0), 0);
}

Test(inspect, ring_stats_without_attaching)
{
	char url[128];
	snprintf(url, sizeof(url), "shm:/%s", t_name());
	ipcx_chan *l, *d;
	int rc = ipcx_listen(url, 0, &l);
	cr_assert_eq(rc, 0, "listen %s: %d %s", url, rc, ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	cr_assert_eq(ipcx_send(d, "ab", 2, T_GUARD_MS), 2);
	cr_assert_eq(ipcx_send(d, "cd", 2, T_GUARD_MS), 2);
	char buf[8];
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 2);
	struct ipcx_obj *o;
	cr_assert_eq(ipcx_obj_find(url, 0, &o), 0, "%s", ipcx_errdetail());
	cr_expect(o->ipcx && o->creator == getpid() && o->creator_alive, "the listener recorded it");
	cr_expect(has_pid(o, getpid()), "mapped by us");
	cr_expect(o->has_stats, "a ring shows its counters");
	cr_expect_eq(o->stats.sent, 2);
	cr_expect_eq(o->stats.received, 1);
	cr_expect_eq(o->stats.depth, 1);
	cr_expect_eq(o->stats.peers, 2, "listener and dialer: %llu", (unsigned long long)o->stats.peers);
	ipcx_objs_free(o, 1);
	/* Looking did not attach: the counters are the channel's own. */
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.peers, 2);
	ipcx_close(d);
	ipcx_close(l);
	cr_expect_eq(ipcx_obj_find(url, 0, &o), -ENOENT, "the listener removed it");
}

/*
 * An mmap: log is found by its path (info, or ls PATH), with its counters
 * read from outside; it is never an orphan and never removed by ipcx.
 */
Test(inspect, mmap_log_by_path)
{
	char url[256];
	snprintf(url, sizeof(url), "mmap:%s", t_path("log"));
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(url, 0, &c), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipcx_send(c, "rec", 3, 0), 3);
	char buf[8];
	cr_assert_eq(ipcx_recv(c, buf, sizeof(buf), 0), 3);
	struct ipcx_obj *o;
	cr_assert_eq(ipcx_obj_find(url, 0, &o), 0, "%s", ipcx_errdetail());
	cr_expect_eq(o->kind, IPCX_OBJ_MMAP_LOG);
	cr_expect_str_eq(o->url, url);
	cr_expect_str_eq(o->name, t_path("log"));
	cr_expect(o->has_stats && o->stats.sent == 3 && o->stats.depth == 2 &&
		  o->stats.peers == 1 && o->stats.receivers == 1);
	cr_expect(!o->orphan && !o->ipcx);
	ipcx_objs_free(o, 1);
	ipcx_close(c);
	cr_assert_eq(ipcx_obj_find(url, 0, &o), 0);
	cr_expect(o->stats.peers == 0 && o->stats.receivers == 0 && o->stats.depth == 2);
	ipcx_objs_free(o, 1);
	const char *paths[] = { t_path("log"), NULL };
	struct ipcx_obj *v;
	ssize_t n = ipcx_ls(paths, IPCX_LS_NOPIDS, &v);
	cr_assert_geq(n, 0);
	int found = 0;
	for (ssize_t i = 0; i < n; i++)
		found += v[i].kind == IPCX_OBJ_MMAP_LOG && !strcmp(v[i].url, url);
	cr_expect_eq(found, 1, "ls PATH lists it");
	ipcx_objs_free(v, (size_t)n);
	cr_expect_eq(ipcx_obj_remove(url, 0), -EINVAL, "ipcx never removes a log file");
	cr_expect_eq(access(t_path("log"), F_OK), 0);
	/* A file that is no log is not one. */
	int fd = open(t_path("plain"), O_CREAT | O_WRONLY, 0600);
	cr_assert_eq(write(fd, "not a ring", 10), 10);
	close(fd);
	snprintf(url, sizeof(url), "mmap:%s", t_path("plain"));
	cr_expect_eq(ipcx_obj_find(url, 0, &o), -ENOENT);
	cr_expect_eq(ipcx_obj_find("mmap:relative", 0, &o), -EINVAL);
}

Test(inspect, private_sysv_objects_by_id)
{
	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	cr_assert(id >= 0, "shmget: %m");
	char url[64];
	snprintf(url, sizeof(url), "sysvshm:0?id=%d", id);
	struct ipcx_obj *o;
	int rc = ipcx_obj_find(url, 0, &o);
	if (rc != 0)
		shmctl(id, IPC_RMID, NULL);
	cr_assert_eq(rc, 0, "%s: %d %s", url, rc, ipcx_errdetail());
	char canon[64];
	snprintf(canon, sizeof(canon), "sysvshm:0x00000000?id=%d", id);
	cr_expect_str_eq(o->url, canon);
	cr_expect_eq(o->key, 0);
	ipcx_objs_free(o, 1);
	cr_expect_eq(ipcx_obj_remove("sysvshm:0", 0), -EINVAL, "key 0 alone names no one object");
	cr_expect_eq(ipcx_obj_remove(url, 0), 0);
	cr_expect_eq(ipcx_obj_remove(url, 0), -ENOENT);
}

/* keep=1 asks the object to outlive its listener: it is no orphan for gc. */
Test(inspect, kept_objects_are_not_recorded)
{
	char urls[2][128], keep[300];
	snprintf(urls[0], sizeof(urls[0]), "shm:/%s", t_name());
	snprintf(urls[1], sizeof(urls[1]), "sysvmq:0x%08x", (unsigned)t_sysv_key());
	for (int i = 0; i < 2; i++) {
		snprintf(keep, sizeof(keep), "%s?keep=1", urls[i]);
		ipcx_chan *l;
		int rc = ipcx_listen(keep, 0, &l);
		cr_assert_eq(rc, 0, "listen %s: %d %s", keep, rc, ipcx_errdetail());
		ipcx_close(l);
		struct ipcx_obj *o;
		rc = ipcx_obj_find(urls[i], 0, &o);
		cr_expect_eq(rc, 0, "%s: kept after close", urls[i]);
		if (rc == 0) {
			cr_expect(!o->ipcx && !o->orphan, "%s: a kept object was recorded", urls[i]);
			ipcx_objs_free(o, 1);
		}
		cr_expect_eq(ipcx_obj_remove(urls[i], 0), 0, "%s: %s", urls[i], ipcx_errdetail());
	}
}

/* ---- records across users (root only) ------------------------------------------------ */

struct as_nobody {
	const char *record; /* URL to record */
	const char *fifo;   /* a FIFO to make first, or NULL */
};

/* A short-lived ipcx program of another user: it records, then exits. */
static int nobody_main(void *arg)
{
	const struct as_nobody *a = arg;
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		return 10;
	unsetenv("XDG_RUNTIME_DIR"); /* its records go to /tmp/ipcx-65534 */
	if (a->fifo && mkfifo(a->fifo, 0600) < 0)
		return 11;
	return t_record_created(a->record) == 0 ? 0 : 12;
}

Test(inspect, records_count_only_for_their_owners_objects)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	/* A user records root's FIFO as its own: root's gc must not believe it. */
	struct raw mine;
	raw_make(&mine, IPCX_OBJ_FIFO, false, false);
	struct as_nobody fake = { .record = mine.url };
	cr_assert_eq(t_join(t_spawn(nobody_main, &fake), T_GUARD_MS), 0);
	struct ipcx_obj *o;
	cr_assert_eq(ipcx_obj_find(mine.url, 0, &o), 0);
	cr_expect(!o->ipcx && !o->orphan, "a record by uid 65534 made root's FIFO an ipcx orphan");
	ipcx_objs_free(o, 1);
	struct ipcx_obj *v;
	cr_expect_eq(ipcx_gc(mine.url, 0, &v), 0);
	ipcx_objs_free(v, 0);
	cr_expect_eq(ipcx_obj_remove(mine.url, 0), 0, "the FIFO survived gc");

	/* The user's own FIFO, recorded and left by a dead program: root's gc takes it. */
	char dir[128], path[192], url[200];
	snprintf(dir, sizeof(dir), "/tmp/%s", t_name());
	cr_assert(mkdir(dir, 0700) == 0 && chown(dir, 65534, 65534) == 0);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	snprintf(url, sizeof(url), "fifo:%s", path);
	struct as_nobody real = { .record = url, .fifo = path };
	int rc = t_join(t_spawn(nobody_main, &real), T_GUARD_MS);
	cr_expect_eq(rc, 0, "the other user's program: %d", rc);
	rc = ipcx_obj_find(url, 0, &o);
	cr_expect_eq(rc, 0, "%s: %s", url, ipcx_errdetail());
	if (rc == 0) {
		cr_expect(o->ipcx && o->orphan && o->uid == 65534, "ipcx %d orphan %d uid %lld", o->ipcx,
			  o->orphan, (long long)o->uid);
		ipcx_objs_free(o, 1);
	}
	ssize_t n = ipcx_gc(url, 0, &v);
	cr_expect_eq(n, 1, "root's gc: %zd", n);
	ipcx_objs_free(v, n > 0 ? (size_t)n : 0);
	struct stat st;
	cr_expect(lstat(path, &st) < 0, "the orphan is still there");
	unlink(path);
	rmdir(dir);
}

static int exit_at_once(void *arg)
{
	(void)arg;
	return 0;
}

/*
 * A process's state comes with its start time (the shm: ring counts a
 * zombie, killed and not yet reaped, as dead).
 */
Test(inspect, proc_stat_tells_a_zombie)
{
	uint64_t mine = 0, again = 0, start = 0;
	char state = '?';
	cr_assert_eq(ipcx__proc_stat(getpid(), &state, &mine), 0);
	cr_expect_eq(state, 'R', "our own state: %c", state);
	cr_assert_eq(ipcx__proc_start(getpid(), &again), 0);
	cr_expect_eq(mine, again);
	pid_t pid = t_spawn(exit_at_once, NULL);
	siginfo_t si;
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0, "%m"); /* not reaped */
	state = '?';
	cr_assert_eq(ipcx__proc_stat(pid, &state, &start), 0);
	cr_expect_eq(state, 'Z', "an exited child's state: %c", state);
	cr_expect_neq(start, 0);
	cr_expect_eq(t_join(pid, 10000), 0);
}

/* Record files are read by root from every user's folder: anything odd is ignored. */
Test(inspect, odd_record_files_are_ignored)
{
	char dir[4200];
	cr_assert_eq(ipcx__record_dir(dir, sizeof(dir)), 0);
	struct raw f;
	raw_make(&f, IPCX_OBJ_FIFO, false, false);
	uint64_t start;
	cr_assert_eq(ipcx__proc_start(getpid(), &start), 0);
	char good[512];
	const int fifo = IPCX_OBJ_FIFO;
	snprintf(good, sizeof(good), "ipcx-record 2\npid %d\nstart %llu\nkind %d\nname %s\n",
		 (int)getpid(), (unsigned long long)start, fifo, f.path);
	char text[9][600];
	/* The first version's format, which named the object by URL. */
	snprintf(text[0], 600, "ipcx-record 1\npid %d\nstart %llu\nurl %s\n", (int)getpid(),
		 (unsigned long long)start, f.url);
	snprintf(text[1], 600, "ipcx-record 2\npid 0\nstart %llu\nkind %d\nname %s\n",
		 (unsigned long long)start, fifo, f.path);
	snprintf(text[2], 600, "ipcx-record 2\npid %d\nstart %llu\nkind %d\nname %s", (int)getpid(),
		 (unsigned long long)start, fifo, f.path); /* no final newline */
	snprintf(text[3], 600, "ipcx-record 2\npid %d\nstart %llu\nkind %d\nname %s\nmore\n",
		 (int)getpid(), (unsigned long long)start, fifo, f.path);
	snprintf(text[4], 600, "ipcx-record 2\npid %d\nstart %llu\nkind %d\nname %s?x=1\n",
		 (int)getpid(), (unsigned long long)start, fifo, f.path); /* not canonical */
	snprintf(text[5], 600, "ipcx-record 2\npid -5\nstart x\nkind %d\nname %s\n", fifo, f.path);
	snprintf(text[6], 600, "%s", "\x01\x02garbage");
	snprintf(text[7], 600, "%s", good); /* good, but written group-writable below */
	snprintf(text[8], 600, "ipcx-record 2\npid %d\nstart %llu\nkind 99\nname %s\n",
		 (int)getpid(), (unsigned long long)start, f.path); /* no such kind */
	char names[10][4300];
	for (int i = 0; i < 10; i++)
		snprintf(names[i], sizeof(names[i]), "%s/r%08x%08x", dir, (unsigned)getpid(), 0x7e00u + i);
	for (int i = 0; i < 9; i++) {
		int fd = open(names[i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		cr_assert(fd >= 0, "%s: %m", names[i]);
		cr_assert(write(fd, text[i], strlen(text[i])) == (ssize_t)strlen(text[i]));
		if (i == 7)
			fchmod(fd, 0620);
		close(fd);
	}
	/* A symlink to a good record elsewhere is not followed. */
	const char *elsewhere = t_path("record");
	int fd = open(elsewhere, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0 && write(fd, good, strlen(good)) == (ssize_t)strlen(good));
	close(fd);
	cr_assert(symlink(elsewhere, names[9]) == 0);

	struct ipcx_obj *o;
	cr_assert_eq(ipcx_obj_find(f.url, 0, &o), 0);
	cr_expect(!o->ipcx, "an odd record file was believed");
	ipcx_objs_free(o, 1);
	for (int i = 0; i < 10; i++)
		unlink(names[i]);

	/* The same text, well formed and in place, is believed: the test is honest. */
	fd = open(names[0], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0 && write(fd, good, strlen(good)) == (ssize_t)strlen(good));
	close(fd);
	cr_assert_eq(ipcx_obj_find(f.url, 0, &o), 0);
	cr_expect(o->ipcx && o->creator == getpid());
	ipcx_objs_free(o, 1);
	unlink(names[0]);
	cr_expect_eq(ipcx_obj_remove(f.url, 0), 0);
}
