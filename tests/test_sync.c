/*
 * Synchronisation: POSIX named and unnamed semaphores, System V semaphore
 * sets, the robust mutex and file locks.  Crash tests kill a holder with
 * SIGKILL and check what the kernel gives back; permission tests drop a
 * child to nobody.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "tsupport.h"

#define NOBODY 65534

static bool drop_to_nobody(void)
{
	return setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0;
}

static void need_root(void)
{
	if (getuid() != 0)
		cr_skip_test("needs root to drop to nobody");
}

static char *url_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *url_of(const char *fmt, ...)
{
	static char buf[8][256];
	static unsigned slot;
	char *b = buf[slot++ % 8];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, 256, fmt, ap);
	va_end(ap);
	return b;
}

static void *shared_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

/* A child that does something, posts, and then waits to be killed. */
struct holder {
	struct t_sync ready;
	const char *url;
	void *mem;
	int fd, other_fd; /* a pipe's read end, and its write end to close */
	unsigned flags;
};

static void hold_forever(struct holder *h)
{
	t_post(&h->ready);
	for (;;)
		pause();
}

/* ---- POSIX named semaphores --------------------------------------------------- */

static mode_t shm_mode(const char *name)
{
	struct stat st;
	char path[300];
	snprintf(path, sizeof(path), "/dev/shm/sem.%s", name);
	if (lstat(path, &st) != 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

Test(sem, posix_create_post_wait_remove)
{
	const char *name = t_name();
	char *url = url_of("sem:/%s", name);
	ipcx_sem *s, *o;
	cr_assert_eq(ipcx_sem_create(url, 2, 0, &s), 0, "%s", ipcx_errdetail());
	cr_expect_eq(shm_mode(name), 0600, "mode %o", shm_mode(name));
	cr_assert_eq(ipcx_sem_open(url, 0, &o), 0);
	unsigned v = 99;
	cr_expect_eq(ipcx_sem_value(o, &v), 0);
	cr_expect_eq(v, 2);
	cr_expect_eq(ipcx_sem_wait(o, 0), 0);
	cr_expect_eq(ipcx_sem_wait(s, 0), 0);
	cr_expect_eq(ipcx_sem_wait(o, 0), -EAGAIN);
	cr_expect_eq(ipcx_sem_post(s), 0);
	cr_expect_eq(ipcx_sem_wait(o, 0), 0);
	ipcx_sem *dup = NULL;
	cr_expect_eq(ipcx_sem_create(url, 0, 0, &dup), -EEXIST);
	cr_expect_null(dup);
	cr_expect_eq(ipcx_sem_close(o), 0);
	cr_expect_eq(ipcx_sem_close(s), 0);
	cr_expect_eq(shm_mode(name), (mode_t)-1, "the creator did not remove it");
	cr_expect_eq(ipcx_sem_open(url, 0, &o), -ENOENT);
}

Test(sem, posix_wait_times_out_never_early)
{
	char *url = url_of("sem:/%s", t_name());
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(url, 0, 0, &s), 0);
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_sem_wait(s, 50), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 50 * 1000000LL);
	ipcx_sem_close(s);
}

/* A child that takes the semaphore by name (h->url) or at h->mem, says so, and waits on it. */
static int wait_in_child(void *arg)
{
	struct holder *h = arg;
	ipcx_sem *s;
	int r = h->url ? ipcx_sem_open(h->url, 0, &s)
			: ipcx_sem_attach_at(h->mem, IPCX_SEM_SIZE, &s);
	if (r != 0)
		return 1;
	t_post(&h->ready);
	r = ipcx_sem_wait(s, T_GUARD_MS);
	ipcx_sem_close(s);
	return r == 0 ? 0 : 2;
}

/* A post on s wakes the child of wait_in_child() waiting in another process. */
static void expect_post_wakes_child(struct holder *h, ipcx_sem *s)
{
	t_sync_init(&h->ready);
	pid_t pid = t_spawn(wait_in_child, h);
	cr_assert(t_wait_post(&h->ready, T_GUARD_MS));
	cr_expect_eq(ipcx_sem_post(s), 0);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	t_sync_close(&h->ready);
}

Test(sem, posix_post_wakes_another_process)
{
	struct holder h = { .url = url_of("sem:/%s", t_name()) };
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(h.url, 0, 0, &s), 0);
	expect_post_wakes_child(&h, s);
	ipcx_sem_close(s);
}

Test(sem, posix_keep_and_unlink)
{
	const char *name = t_name();
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(url_of("sem:/%s?keep=1&mode=0640", name), 1, 0, &s), 0);
	cr_expect_eq(shm_mode(name), 0640, "explicit mode not exact: %o", shm_mode(name));
	ipcx_sem_close(s);
	cr_expect_eq(shm_mode(name), 0640, "keep=1 removed it");
	cr_expect_eq(ipcx_sem_unlink(url_of("sem:/%s", name)), 0);
	cr_expect_eq(shm_mode(name), (mode_t)-1);
	cr_expect_eq(ipcx_sem_unlink(url_of("sem:/%s", name)), -ENOENT);
}

Test(sem, posix_refuses_a_symlink)
{
	const char *name = t_name();
	char link[300];
	snprintf(link, sizeof(link), "/dev/shm/sem.%s", name);
	cr_assert_eq(symlink(t_path("target"), link), 0);
	ipcx_sem *s;
	cr_expect_eq(ipcx_sem_create(url_of("sem:/%s", name), 0, 0, &s), -EEXIST);
	cr_expect_eq(ipcx_sem_open(url_of("sem:/%s", name), 0, &s), -ELOOP);
	cr_expect_neq(access(t_path("target"), F_OK), 0, "created through the symlink");
	unlink(link);
}

struct perm {
	const char *url;
	int want;
};

static int nobody_opens_sem(void *arg)
{
	struct perm *p = arg;
	if (!drop_to_nobody())
		return 10;
	ipcx_sem *s;
	int r = ipcx_sem_open(p->url, 0, &s);
	if (r != p->want)
		return 1;
	if (r == 0) {
		if (ipcx_sem_post(s) != 0 || ipcx_sem_wait(s, T_GUARD_MS) != 0)
			return 2;
		ipcx_sem_close(s);
	}
	return 0;
}

static void check_nobody(const char *create_url, const char *open_url, int want)
{
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(create_url, 1, 0, &s), 0, "%s: %s", create_url,
		     ipcx_errdetail());
	struct perm p = { .url = open_url, .want = want };
	cr_expect_eq(t_join(t_spawn(nobody_opens_sem, &p), T_GUARD_MS), 0, "%s as nobody",
		     create_url);
	ipcx_sem_close(s);
}

Test(sem, posix_permissions)
{
	need_root();
	const char *a = t_name(), *b = t_name();
	check_nobody(url_of("sem:/%s", a), url_of("sem:/%s", a), -EACCES);
	/* Writable by everyone: nobody uses it only if it says it accepts that. */
	check_nobody(url_of("sem:/%s?mode=0666", b), url_of("sem:/%s", b), -EPERM);
	check_nobody(url_of("sem:/%s?mode=0666", b), url_of("sem:/%s?mode=0666", b), 0);
}

/* As nobody: make a semaphore that outlives this process (keep=1). */
static int nobody_plants_sem(void *arg)
{
	if (!drop_to_nobody())
		return 10;
	ipcx_sem *s;
	if (ipcx_sem_create(arg, 1, 0, &s) != 0)
		return 1;
	return ipcx_sem_close(s) == 0 ? 0 : 2;
}

/*
 * A semaphore that another user made, or that others may write, is no lock
 * and no count: opening it is refused unless mode= accepts its owner.
 */
static void check_planted(const char *plant_url, const char *url, const char *accepting)
{
	need_root();
	cr_assert_eq(t_join(t_spawn(nobody_plants_sem, (void *)plant_url), T_GUARD_MS), 0,
		     "%s: nobody could not make it", plant_url);
	ipcx_sem *s = NULL;
	cr_expect_eq(ipcx_sem_open(url, 0, &s), -EPERM, "%s: opened nobody's semaphore", url);
	cr_expect(strstr(ipcx_errdetail(), "uid 65534"), "%s: %s", url, ipcx_errdetail());
	cr_expect_null(s);
	cr_expect_eq(ipcx_sem_open(accepting, 0, &s), 0, "%s: %s", accepting, ipcx_errdetail());
	cr_expect_eq(ipcx_sem_post(s), 0);
	cr_expect_eq(ipcx_sem_wait(s, 0), 0);
	ipcx_sem_close(s);
	cr_expect_eq(ipcx_sem_unlink(url), 0);
}

Test(sem, posix_planted_by_another_user_is_refused)
{
	const char *n = t_name();
	check_planted(url_of("sem:/%s?keep=1&mode=0666", n), url_of("sem:/%s", n),
		      url_of("sem:/%s?mode=0666", n));
}

Test(sem, bad_urls)
{
	ipcx_sem *s = NULL;
	const char *bad[] = { "sem:/", "sem:/a/b", "sem:name", "sem:/..", "sem:/x?max=3",
			      "sem:/x?mode=999", "sysvsem:0", "sysvsem:abc", "sysvsem:-1",
			      "sysvsem:0x1ffffffff", "sysvsem:5?nsems=0", "sysvsem:5?index=3",
			      "sysvsem:/tmp", "sysvsem:5?proj=3", "sysvsem:5?bogus=1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ipcx_sem_create(bad[i], 0, 0, &s), -EINVAL, "%s", bad[i]);
	cr_expect_eq(ipcx_sem_create("mq:/x", 0, 0, &s), -EPROTONOSUPPORT);
	cr_expect_eq(ipcx_sem_open("sem:/x?keep=1", 0, &s), -EINVAL, "keep is for the creator");
	cr_expect_eq(ipcx_sem_open("sysvsem:5?nsems=2", 0, &s), -EINVAL, "nsems is for the creator");
	cr_expect_eq(ipcx_sem_open("sysvsem:5?keep=1", 0, &s), -EINVAL, "keep is for the creator");
	cr_expect_eq(ipcx_sem_create(url_of("sem:/%s", t_name()), 0, 1, &s), -EINVAL);
	cr_expect_eq(ipcx_sem_create(url_of("sem:/%s", t_name()), 1u << 31, 0, &s), -EINVAL);
	cr_expect_eq(ipcx_sem_create(url_of("sysvsem:%d", t_sysv_key()), 40000, 0, &s), -EINVAL);
	cr_expect_null(s);
	cr_expect_eq(ipcx_sem_close(NULL), 0);
	cr_expect_eq(ipcx_sem_post(NULL), -EINVAL);
}

/* ---- POSIX unnamed semaphores in shared memory -------------------------------- */

Test(sem, unnamed_in_shared_memory)
{
	struct holder h = { .mem = shared_page() };
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_init_at(h.mem, 4096, 0, &s), 0);
	expect_post_wakes_child(&h, s);
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_sem_wait(s, 30), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 30 * 1000000LL);
	ipcx_sem_close(s);
	munmap(h.mem, 4096);
}

Test(sem, unnamed_refuses_bad_memory)
{
	char *mem = shared_page();
	ipcx_sem *s = NULL;
	cr_expect_eq(ipcx_sem_attach_at(mem, 4096, &s), -EBADMSG, "zeroed memory holds none");
	cr_expect_eq(ipcx_sem_init_at(mem + 4, 64, 0, &s), -EINVAL);
	cr_expect_eq(ipcx_sem_init_at(mem, IPCX_SEM_SIZE - 1, 0, &s), -EINVAL);
	cr_expect_eq(ipcx_sem_init_at(NULL, 4096, 0, &s), -EINVAL);
	cr_expect_null(s);
	munmap(mem, 4096);
}

/* ---- System V semaphore sets ---------------------------------------------------- */

static int sysv_exists(int key)
{
	return semget(key, 0, 0) >= 0;
}

Test(sysvsem, create_post_wait_remove)
{
	int key = t_sysv_key();
	char *url = url_of("sysvsem:0x%08x?nsems=3&index=2", key);
	ipcx_sem *s, *o, *m0;
	cr_assert_eq(ipcx_sem_create(url, 1, 0, &s), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_sem_open(url_of("sysvsem:%d?index=2", key), 0, &o), 0);
	cr_assert_eq(ipcx_sem_open(url_of("sysvsem:%d", key), 0, &m0), 0);
	struct semid_ds ds;
	cr_assert_eq(semctl(semget(key, 0, 0), 0, IPC_STAT, &ds), 0);
	cr_expect_eq(ds.sem_perm.mode & 0777, 0600);
	cr_expect_eq(ds.sem_nsems, 3);
	cr_expect_eq(ipcx_sem_wait(o, 0), 0);
	cr_expect_eq(ipcx_sem_wait(o, 0), -EAGAIN);
	cr_expect_eq(ipcx_sem_wait(m0, 0), 0, "member 0 has its own value");
	cr_expect_eq(ipcx_sem_post(s), 0);
	unsigned v = 0;
	cr_expect_eq(ipcx_sem_value(o, &v), 0);
	cr_expect_eq(v, 1);
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_sem_wait(m0, 40), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 40 * 1000000LL);
	cr_expect_eq(ipcx_sem_open(url_of("sysvsem:%d?index=3", key), 0, &o), -EINVAL);
	ipcx_sem *dup;
	cr_expect_eq(ipcx_sem_create(url, 0, 0, &dup), -EEXIST);
	ipcx_sem_close(o);
	ipcx_sem_close(m0);
	cr_expect_eq(ipcx_sem_close(s), 0);
	cr_expect(!sysv_exists(key), "the creator did not remove it");
}

Test(sysvsem, ftok_path_and_unlink)
{
	int fd = open(t_path("keyfile"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	/*
	 * ftok keys are not tagged for the leak check, so this test removes
	 * its set itself, whatever happens.
	 */
	char *url = url_of("sysvsem:%s?proj=7", t_path("keyfile"));
	key_t key = ftok(t_path("keyfile"), 7);
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(url_of("%s&keep=1", url), 0, 0, &s), 0, "%s",
		     ipcx_errdetail());
	ipcx_sem_close(s);
	int exists = sysv_exists(key);
	cr_expect_eq(ipcx_sem_unlink(url), 0);
	cr_expect(exists, "keep=1 removed it");
	cr_expect(!sysv_exists(key));
	cr_expect_eq(ipcx_sem_unlink(url), -ENOENT);
}

static int take_and_hold(void *arg)
{
	struct holder *h = arg;
	ipcx_sem *s;
	if (ipcx_sem_open(h->url, 0, &s) != 0 || ipcx_sem_wait(s, T_GUARD_MS) != 0)
		return 1;
	hold_forever(h);
	return 0;
}

/* SEM_UNDO: a holder killed with SIGKILL gives its unit back. */
Test(sysvsem, killed_holder_gives_units_back)
{
	int key = t_sysv_key();
	struct holder h = { .url = url_of("sysvsem:%d", key) };
	t_sync_init(&h.ready);
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(h.url, 1, 0, &s), 0);
	pid_t pid = t_spawn(take_and_hold, &h);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS), "holder did not take the unit");
	cr_expect_eq(ipcx_sem_wait(s, 0), -EAGAIN, "the holder has the only unit");
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_sem_wait(s, T_GUARD_MS), 0, "the unit did not come back");
	ipcx_sem_close(s);
	t_sync_close(&h.ready);
}

/* The contrast: without SEM_UNDO the unit dies with its holder. */
Test(sysvsem, without_undo_the_unit_is_lost)
{
	int key = t_sysv_key();
	struct holder h = { .url = url_of("sysvsem:%d?undo=0", key) };
	t_sync_init(&h.ready);
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(url_of("sysvsem:%d", key), 1, 0, &s), 0);
	pid_t pid = t_spawn(take_and_hold, &h);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS));
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_sem_wait(s, 0), -EAGAIN);
	ipcx_sem_close(s);
	t_sync_close(&h.ready);
}

Test(sysvsem, permissions)
{
	need_root();
	int a = t_sysv_key(), b = t_sysv_key();
	check_nobody(url_of("sysvsem:%d", a), url_of("sysvsem:%d", a), -EACCES);
	check_nobody(url_of("sysvsem:%d?mode=0666", b), url_of("sysvsem:%d", b), -EPERM);
	check_nobody(url_of("sysvsem:%d?mode=0666", b), url_of("sysvsem:%d?mode=0666", b), 0);
}

Test(sysvsem, planted_by_another_user_is_refused)
{
	int k = t_sysv_key();
	check_planted(url_of("sysvsem:%d?keep=1&mode=0666", k), url_of("sysvsem:%d", k),
		      url_of("sysvsem:%d?mode=0666", k));
}

/* ---- robust mutex ------------------------------------------------------------- */

struct guarded {
	char mutex[IPCX_MUTEX_SIZE] __attribute__((aligned(8)));
	long counter;
	int consistent; /* the "data": 0 while a holder is half-way through */
};

/* In a child: attach to the parent's mutex in g and take it (NULL if either fails). */
static ipcx_mutex *attach_and_lock(struct guarded *g)
{
	ipcx_mutex *m;
	if (ipcx_mutex_attach_at(g->mutex, sizeof(g->mutex), &m) != 0 ||
	    ipcx_mutex_lock(m, T_GUARD_MS) != 0)
		return NULL;
	return m;
}

static int lock_and_die(void *arg)
{
	struct holder *h = arg;
	struct guarded *g = h->mem;
	if (!attach_and_lock(g))
		return 1;
	g->consistent = 0; /* half-way through an update ... */
	hold_forever(h);
	return 0;
}

static ipcx_mutex *killed_holder(struct guarded *g)
{
	struct holder h = { .mem = g };
	t_sync_init(&h.ready);
	ipcx_mutex *m;
	cr_assert_eq(ipcx_mutex_init_at(g->mutex, sizeof(g->mutex), 0, &m), 0);
	g->consistent = 1;
	pid_t pid = t_spawn(lock_and_die, &h);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS));
	cr_expect_eq(ipcx_mutex_lock(m, 0), -EAGAIN, "the holder has it");
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	t_sync_close(&h.ready);
	return m;
}

Test(mutex, killed_holder_gives_eownerdead_then_recovers)
{
	struct guarded *g = shared_page();
	ipcx_mutex *m = killed_holder(g);
	cr_assert_eq(ipcx_mutex_lock(m, T_GUARD_MS), -EOWNERDEAD);
	cr_expect_eq(g->consistent, 0, "the holder's half-done update is visible");
	g->consistent = 1; /* repair */
	cr_expect_eq(ipcx_mutex_consistent(m), 0);
	cr_expect_eq(ipcx_mutex_unlock(m), 0);
	/* Normal locking again. */
	cr_expect_eq(ipcx_mutex_lock(m, 0), 0);
	cr_expect_eq(ipcx_mutex_unlock(m), 0);
	cr_expect_eq(ipcx_mutex_lock(m, T_GUARD_MS), 0);
	cr_expect_eq(ipcx_mutex_unlock(m), 0);
	ipcx_mutex_close(m);
	munmap(g, 4096);
}

Test(mutex, unlocked_without_repair_is_unrecoverable)
{
	struct guarded *g = shared_page();
	ipcx_mutex *m = killed_holder(g);
	cr_assert_eq(ipcx_mutex_lock(m, T_GUARD_MS), -EOWNERDEAD);
	cr_expect_eq(ipcx_mutex_unlock(m), 0);
	cr_expect_eq(ipcx_mutex_lock(m, T_GUARD_MS), -ENOTRECOVERABLE);
	ipcx_mutex_close(m);
	munmap(g, 4096);
}

static int hold_until_told(void *arg)
{
	struct holder *h = arg;
	ipcx_mutex *m = attach_and_lock(h->mem);
	if (!m)
		return 1;
	close(h->other_fd);
	t_post(&h->ready);
	/* h->fd: a pipe the parent closes to say "release". */
	char c;
	while (read(h->fd, &c, 1) > 0)
		;
	return ipcx_mutex_unlock(m) == 0 ? 0 : 2;
}

Test(mutex, timed_lock)
{
	struct guarded *g = shared_page();
	ipcx_mutex *m;
	cr_assert_eq(ipcx_mutex_init_at(g->mutex, sizeof(g->mutex), 0, &m), 0);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct holder h = { .mem = g, .fd = p[0], .other_fd = p[1] };
	t_sync_init(&h.ready);
	pid_t pid = t_spawn(hold_until_told, &h);
	close(p[0]);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS));
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_mutex_lock(m, 50), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 50 * 1000000LL);
	close(p[1]);
	cr_expect_eq(ipcx_mutex_lock(m, T_GUARD_MS), 0);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	cr_expect_eq(ipcx_mutex_lock(m, 0), -EDEADLK);
	cr_expect_eq(ipcx_mutex_unlock(m), 0);
	cr_expect_eq(ipcx_mutex_unlock(m), -EPERM);
	ipcx_mutex_close(m);
	t_sync_close(&h.ready);
	munmap(g, 4096);
}

#define BUMPS 20000

static int bump(void *arg)
{
	struct guarded *g = arg;
	ipcx_mutex *m;
	if (ipcx_mutex_attach_at(g->mutex, sizeof(g->mutex), &m) != 0)
		return 1;
	for (int i = 0; i < BUMPS; i++) {
		if (ipcx_mutex_lock(m, T_GUARD_MS) != 0)
			return 2;
		/* A read-modify-write that loses updates unless excluded. */
		long v = __atomic_load_n(&g->counter, __ATOMIC_RELAXED);
		__atomic_store_n(&g->counter, v + 1, __ATOMIC_RELAXED);
		ipcx_mutex_unlock(m);
	}
	ipcx_mutex_close(m);
	return 0;
}

Test(mutex, excludes_between_processes)
{
	struct guarded *g = shared_page();
	ipcx_mutex *m;
	cr_assert_eq(ipcx_mutex_init_at(g->mutex, sizeof(g->mutex), 0, &m), 0);
	pid_t a = t_spawn(bump, g), b = t_spawn(bump, g);
	cr_expect_eq(t_join(a, T_GUARD_MS), 0);
	cr_expect_eq(t_join(b, T_GUARD_MS), 0);
	cr_expect_eq(g->counter, 2 * BUMPS);
	ipcx_mutex_close(m);
	munmap(g, 4096);
}

Test(mutex, bad_input)
{
	char *mem = shared_page();
	ipcx_mutex *m = NULL;
	cr_expect_eq(ipcx_mutex_attach_at(mem, 4096, &m), -EBADMSG);
	cr_expect_eq(ipcx_mutex_init_at(mem + 4, 4000, 0, &m), -EINVAL);
	cr_expect_eq(ipcx_mutex_init_at(mem, IPCX_MUTEX_SIZE - 1, 0, &m), -EINVAL);
	cr_expect_eq(ipcx_mutex_init_at(mem, 4096, 1, &m), -EINVAL);
	cr_expect_null(m);
	cr_expect_eq(ipcx_mutex_close(NULL), 0);
	cr_expect_eq(ipcx_mutex_lock(NULL, 0), -EINVAL);
	munmap(mem, 4096);
}

/* ---- file locks --------------------------------------------------------------- */

static int open_rw(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	return fd;
}

/* Two opens of one file are two open file descriptions: their locks conflict. */
static void exclusion(unsigned kind)
{
	const char *path = t_path("lockfile");
	int a = open_rw(path), b = open_rw(path);
	cr_assert_eq(ipcx_lock_fd(a, 0, 0, kind, 0), 0);
	cr_expect_eq(ipcx_lock_fd(b, 0, 0, kind, 0), -EAGAIN);
	cr_expect_eq(ipcx_lock_fd(b, 0, 0, kind | IPCX_LOCK_SHARED, 0), -EAGAIN);
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_lock_fd(b, 0, 0, kind, 60), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 60 * 1000000LL, "timed out early");
	/* Shared with shared is fine; exclusive then waits. */
	cr_assert_eq(ipcx_lock_fd(a, 0, 0, kind | IPCX_LOCK_SHARED, 0), 0, "downgrade");
	cr_expect_eq(ipcx_lock_fd(b, 0, 0, kind | IPCX_LOCK_SHARED, 0), 0);
	cr_expect_eq(ipcx_lock_fd(a, 0, 0, kind, 0), -EAGAIN, "upgrade while shared");
	cr_expect_eq(ipcx_unlock_fd(b, 0, 0, kind), 0);
	cr_expect_eq(ipcx_lock_fd(a, 0, 0, kind, T_GUARD_MS), 0);
	cr_expect_eq(ipcx_unlock_fd(a, 0, 0, kind), 0);
	cr_expect_eq(ipcx_lock_fd(b, 0, 0, kind, -1), 0);
	close(a);
	close(b);
}

Test(filelock, record_lock_excludes)
{
	exclusion(0);
}

Test(filelock, flock_excludes)
{
	exclusion(IPCX_LOCK_FLOCK);
}

Test(filelock, record_ranges)
{
	const char *path = t_path("ranges");
	int a = open_rw(path), b = open_rw(path);
	cr_assert_eq(ipcx_lock_fd(a, 0, 10, 0, 0), 0);
	cr_expect_eq(ipcx_lock_fd(b, 10, 10, 0, 0), 0, "disjoint ranges");
	cr_expect_eq(ipcx_lock_fd(b, 5, 10, 0, 0), -EAGAIN, "overlapping ranges");
	cr_expect_eq(ipcx_unlock_fd(a, 0, 10, 0), 0);
	cr_expect_eq(ipcx_lock_fd(b, 5, 10, 0, 0), 0);
	cr_expect_eq(ipcx_lock_fd(b, 0, 10, IPCX_LOCK_FLOCK, 0), -EINVAL, "flock has no range");
	cr_expect_eq(ipcx_lock_fd(b, -1, 10, 0, 0), -EINVAL);
	cr_expect_eq(ipcx_lock_fd(b, 0, 0, 0x10, 0), -EINVAL);
	cr_expect_eq(ipcx_lock_fd(-1, 0, 0, 0, 0), -EBADF);
	close(a);
	close(b);
}

static int lock_path_and_hold(void *arg)
{
	struct holder *h = arg;
	ipcx_lock *l;
	if (ipcx_lock_open(h->url, h->flags, 0, T_GUARD_MS, &l) != 0)
		return 1;
	hold_forever(h);
	return 0;
}

static void killed_lock_holder(unsigned kind)
{
	struct holder h = { .url = t_path("crash"), .flags = kind };
	t_sync_init(&h.ready);
	pid_t pid = t_spawn(lock_path_and_hold, &h);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS));
	ipcx_lock *l = NULL;
	cr_expect_eq(ipcx_lock_open(h.url, kind, 0, 0, &l), -EAGAIN);
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_lock_open(h.url, kind, 0, T_GUARD_MS, &l), 0, "not released");
	cr_expect_eq(ipcx_lock_close(l), 0);
	t_sync_close(&h.ready);
}

Test(filelock, killed_holder_releases_record_lock)
{
	killed_lock_holder(0);
}

Test(filelock, killed_holder_releases_flock)
{
	killed_lock_holder(IPCX_LOCK_FLOCK);
}

Test(filelock, lock_open_is_safe)
{
	const char *path = t_path("new");
	ipcx_lock *l;
	cr_assert_eq(ipcx_lock_open(path, 0, 0, 0, &l), 0);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
	ipcx_lock_close(l);
	cr_assert_eq(ipcx_lock_open(t_path("m"), 0, 0644, 0, &l), 0);
	cr_assert_eq(stat(t_path("m"), &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0644);
	ipcx_lock_close(l);
	cr_assert_eq(symlink(t_path("victim"), t_path("link")), 0);
	cr_expect_eq(ipcx_lock_open(t_path("link"), 0, 0, 0, &l), -ELOOP);
	cr_expect_neq(access(t_path("victim"), F_OK), 0, "created through the symlink");
	cr_expect_eq(ipcx_lock_open(t_tmpdir(), IPCX_LOCK_FLOCK, 0, 0, &l), 0, "a directory");
	ipcx_lock_close(l);
	cr_expect_eq(ipcx_lock_open(path, 0, 01777, 0, &l), -EINVAL);
	cr_expect_eq(ipcx_lock_close(NULL), 0);
}

static int nobody_locks(void *arg)
{
	struct perm *p = arg;
	if (!drop_to_nobody())
		return 10;
	ipcx_lock *l;
	int r = ipcx_lock_open(p->url, 0, 0, 0, &l);
	if (r == 0)
		ipcx_lock_close(l);
	return r == p->want ? 0 : 1;
}

Test(filelock, permissions)
{
	need_root();
	/* Let nobody through the test's own folder, to reach the files. */
	cr_assert_eq(chmod(t_tmpdir(), 0711), 0);
	ipcx_lock *a, *b;
	cr_assert_eq(ipcx_lock_open(t_path("private"), IPCX_LOCK_SHARED, 0, 0, &a), 0);
	cr_assert_eq(ipcx_lock_open(t_path("open"), IPCX_LOCK_SHARED, 0666, 0, &b), 0);
	ipcx_lock_close(a);
	ipcx_lock_close(b);
	struct perm p1 = { .url = t_path("private"), .want = -EACCES };
	struct perm p2 = { .url = t_path("open"), .want = 0 };
	cr_expect_eq(t_join(t_spawn(nobody_locks, &p1), T_GUARD_MS), 0);
	cr_expect_eq(t_join(t_spawn(nobody_locks, &p2), T_GUARD_MS), 0);
}

/* ---- primitives in a named shared-memory region ------------------------------ */

/* The child maps the region by name itself: its own mapping, at its own address. */
static int region_child(void *arg)
{
	struct holder *h = arg;
	ipcx_region *rg;
	if (ipcx_region_open(h->url, 0, 0, &rg) != 0)
		return 1;
	char *base = ipcx_region_addr(rg);
	ipcx_mutex *m;
	ipcx_sem *s;
	if (ipcx_mutex_attach_at(base, IPCX_MUTEX_SIZE, &m) != 0 ||
	    ipcx_sem_attach_at(base + IPCX_MUTEX_SIZE, IPCX_SEM_SIZE, &s) != 0)
		return 2;
	if (ipcx_mutex_lock(m, T_GUARD_MS) != 0 || ipcx_sem_post(s) != 0)
		return 3;
	hold_forever(h);
	return 0;
}

Test(mutex, killed_holder_in_a_named_region)
{
	struct holder h = { .url = url_of("shm:/%s", t_name()) };
	t_sync_init(&h.ready);
	ipcx_region *rg;
	cr_assert_eq(ipcx_region_open(h.url, IPCX_REGION_CREATE, 4096, &rg), 0, "%s",
		     ipcx_errdetail());
	char *base = ipcx_region_addr(rg);
	ipcx_mutex *m;
	ipcx_sem *s;
	cr_assert_eq(ipcx_mutex_init_at(base, IPCX_MUTEX_SIZE, 0, &m), 0);
	cr_assert_eq(ipcx_sem_init_at(base + IPCX_MUTEX_SIZE, IPCX_SEM_SIZE, 0, &s), 0);
	pid_t pid = t_spawn(region_child, &h);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS));
	cr_expect_eq(ipcx_sem_wait(s, 0), 0, "the child's post is seen through the region");
	cr_expect_eq(ipcx_mutex_lock(m, 0), -EAGAIN);
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_mutex_lock(m, T_GUARD_MS), -EOWNERDEAD);
	cr_expect_eq(ipcx_mutex_consistent(m), 0);
	cr_expect_eq(ipcx_mutex_unlock(m), 0);
	ipcx_mutex_close(m);
	ipcx_sem_close(s);
	cr_expect_eq(ipcx_region_close(rg), 0);
	t_sync_close(&h.ready);
}

/* The trap SEM_UNDO avoids: a POSIX semaphore's holder that dies keeps its unit. */
Test(sem, posix_killed_holder_keeps_its_unit)
{
	struct holder h = { .url = url_of("sem:/%s", t_name()) };
	t_sync_init(&h.ready);
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(h.url, 1, 0, &s), 0);
	pid_t pid = t_spawn(take_and_hold, &h);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS));
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	unsigned v = 9;
	cr_expect_eq(ipcx_sem_value(s, &v), 0);
	cr_expect_eq(v, 0, "the unit is lost with its holder (use sysvsem: or the mutex)");
	ipcx_sem_close(s);
	t_sync_close(&h.ready);
}
