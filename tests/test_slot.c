/*
 * Shared slots: exclusive acquisition, N+1 acquirers with a timeout, a
 * waiter woken by a release, a holder killed with SIGKILL (its slot comes
 * back marked, also to a process already waiting), counters and holders
 * read from outside, and tables that are not tables.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsupport.h"

static char *shm_url(void)
{
	static char buf[8][128];
	static unsigned k;
	char *b = buf[k++ % 8];
	snprintf(b, 128, "shm:/%s", t_name());
	return b;
}

static ipcx_slots *create(const char *url, unsigned n, size_t rec)
{
	ipcx_slots *t;
	int r = ipcx_slots_open(url, n, rec, IPCX_SLOTS_CREATE, &t);
	cr_assert_eq(r, 0, "create %s: %s (%s)", url, ipcx_strerror(r), ipcx_errdetail());
	return t;
}

static struct ipcx_slots_stats stats(ipcx_slots *t)
{
	struct ipcx_slots_stats s;
	cr_assert_eq(ipcx_slots_stats(t, &s), 0);
	return s;
}

static bool shm_exists(const char *url)
{
	int fd = shm_open(url + 4, O_RDONLY, 0);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

Test(slot, acquire_each_once_then_none)
{
	const char *url = shm_url();
	ipcx_slots *t = create(url, 3, 32);
	bool seen[3] = { 0 };
	for (int i = 0; i < 3; i++) {
		unsigned fl = 99;
		int s = ipcx_slot_acquire(t, 0, &fl);
		cr_assert(s >= 0 && s < 3 && !seen[s], "slot %d", s);
		cr_expect_eq(fl, 0);
		seen[s] = true;
		bool dead = true;
		cr_expect_eq(ipcx_slot_holder(t, (unsigned)s, &dead), getpid());
		cr_expect(!dead);
	}
	cr_expect_eq(ipcx_slot_acquire(t, 0, NULL), -EAGAIN);
	cr_expect_eq(ipcx_slot_acquire(t, 20, NULL), -ETIMEDOUT);
	struct ipcx_slots_stats s = stats(t);
	cr_expect_eq(s.slots, 3);
	cr_expect_eq(s.held, 3);
	cr_expect_eq(s.acquired, 3);
	cr_expect_eq(s.timeouts, 2);
	cr_expect_eq(s.record_size, 32);
	cr_assert_eq(ipcx_slot_release(t, 1), 0);
	cr_expect_eq(ipcx_slot_release(t, 1), -EPERM, "released twice");
	cr_expect_eq(ipcx_slot_acquire(t, 0, NULL), 1);
	cr_expect_eq(ipcx_slot_release(t, 7), -EINVAL);
	cr_expect_null(ipcx_slot_record(t, 3));
	memset(ipcx_slot_record(t, 2), 'x', 32);
	for (unsigned i = 0; i < 3; i++)
		cr_expect_eq(ipcx_slot_release(t, i), 0);
	cr_expect_eq(stats(t).held, 0);
	cr_expect_eq(ipcx_slots_close(t), 0);
	cr_expect(!shm_exists(url), "the creator's close removes the table");
}

/* A child that takes a slot, writes its record, says so, and waits. */
struct holder {
	const char *url;
	struct t_sync ready, go;
	const char *mark;
};

static int hold(void *arg)
{
	struct holder *h = arg;
	ipcx_slots *t;
	if (ipcx_slots_open(h->url, 0, 0, 0, &t) < 0)
		return 1;
	int s = ipcx_slot_acquire(t, T_GUARD_MS, NULL);
	if (s < 0)
		return 2;
	snprintf(ipcx_slot_record(t, (unsigned)s), 32, "%s", h->mark);
	t_post(&h->ready);
	if (!t_wait_post(&h->go, T_GUARD_MS))
		return 3;
	ipcx_slot_release(t, (unsigned)s);
	ipcx_slots_close(t);
	return 0;
}

/* Start a holder of one slot of url, marking its record; back once it holds it. */
static pid_t spawn_holder(struct holder *h, const char *url, const char *mark)
{
	*h = (struct holder){ .url = url, .mark = mark };
	t_sync_init(&h->ready);
	t_sync_init(&h->go);
	pid_t pid = t_spawn(hold, h);
	cr_assert(t_wait_post(&h->ready, T_GUARD_MS), "the holder never took its slot");
	return pid;
}

Test(slot, killed_holder_gives_the_slot_back_marked)
{
	const char *url = shm_url();
	ipcx_slots *t = create(url, 1, 32);
	struct holder h;
	pid_t pid = spawn_holder(&h, url, "conn 10.0.0.1 busy");
	bool dead = true;
	cr_expect_eq(ipcx_slot_holder(t, 0, &dead), pid);
	cr_expect(!dead);
	cr_expect_eq(ipcx_slot_acquire(t, 0, NULL), -EAGAIN);
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_slot_holder(t, 0, &dead), pid);
	cr_expect(dead, "the holder is gone but still named");

	unsigned fl = 0;
	cr_assert_eq(ipcx_slot_acquire(t, 0, &fl), 0);
	cr_expect_eq(fl, IPCX_SLOT_RECOVERED);
	cr_expect_str_eq(ipcx_slot_record(t, 0), "conn 10.0.0.1 busy", "the record is as it was left");
	cr_expect_eq(stats(t).recovered, 1);
	cr_assert_eq(ipcx_slot_release(t, 0), 0);
	/* Released normally: the record is consistent again. */
	cr_assert_eq(ipcx_slot_acquire(t, 0, &fl), 0);
	cr_expect_eq(fl, 0);
	cr_expect_eq(ipcx_slot_release(t, 0), 0);
	cr_expect_eq(ipcx_slots_close(t), 0);
}

/* A holder that recovers a slot and dies too leaves it marked for the next. */
static int recover_and_die(void *arg)
{
	ipcx_slots *t;
	if (ipcx_slots_open(arg, 0, 0, 0, &t) < 0)
		return 1;
	unsigned fl = 0;
	if (ipcx_slot_acquire(t, T_GUARD_MS, &fl) != 0 || fl != IPCX_SLOT_RECOVERED)
		return 2;
	kill(getpid(), SIGKILL);
	return 3;
}

Test(slot, a_recoverer_that_dies_leaves_the_mark)
{
	const char *url = shm_url();
	ipcx_slots *t = create(url, 1, 8);
	struct holder h;
	pid_t pid = spawn_holder(&h, url, "m");
	kill(pid, SIGKILL);
	t_join(pid, T_GUARD_MS);
	pid = t_spawn(recover_and_die, (void *)url);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	unsigned fl = 0;
	cr_assert_eq(ipcx_slot_acquire(t, 0, &fl), 0);
	cr_expect_eq(fl, IPCX_SLOT_RECOVERED);
	cr_expect_eq(stats(t).recovered, 2);
	cr_expect_eq(ipcx_slot_release(t, 0), 0);
	cr_expect_eq(ipcx_slots_close(t), 0);
}

static void wait_waiting(ipcx_slots *t, unsigned n)
{
	/* The waiter counts itself in the table: that is the handshake. */
	struct timespec t0, now, d = { 0, 1000000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (stats(t).waiting != n) {
		nanosleep(&d, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		cr_assert_lt(now.tv_sec - t0.tv_sec, T_GUARD_MS / 1000, "nobody waited");
	}
}

struct waiter {
	const char *url;
	struct t_sync got;
};

static int wait_for_slot(void *arg)
{
	struct waiter *w = arg;
	ipcx_slots *t;
	if (ipcx_slots_open(w->url, 0, 0, 0, &t) < 0)
		return 1;
	unsigned fl = 0;
	int s = ipcx_slot_acquire(t, T_GUARD_MS, &fl);
	if (s < 0)
		return 2;
	t_post(&w->got);
	ipcx_slot_release(t, (unsigned)s);
	ipcx_slots_close(t);
	return fl == IPCX_SLOT_RECOVERED ? 10 : 0;
}

/* N holders, then one more acquirer: it times out, then gets the slot freed. */
Test(slot, n_plus_one_acquirers)
{
	enum { N = 3 };
	const char *url = shm_url();
	ipcx_slots *t = create(url, N, 32);
	struct holder h[N];
	pid_t pid[N];
	for (int i = 0; i < N; i++)
		pid[i] = spawn_holder(&h[i], url, "held");
	cr_expect_eq(stats(t).held, N);
	cr_expect_eq(ipcx_slot_acquire(t, 50, NULL), -ETIMEDOUT, "the N+1th got a slot");

	struct waiter w = { .url = url };
	t_sync_init(&w.got);
	pid_t wp = t_spawn(wait_for_slot, &w);
	wait_waiting(t, 1);
	cr_expect(!t_wait_post(&w.got, 0));
	t_post(&h[1].go); /* one holder releases: the waiter must get it */
	cr_expect_eq(t_join(pid[1], T_GUARD_MS), 0);
	cr_expect(t_wait_post(&w.got, T_GUARD_MS), "the waiter was not woken");
	cr_expect_eq(t_join(wp, T_GUARD_MS), 0);
	for (int i = 0; i < N; i++)
		if (i != 1) {
			t_post(&h[i].go);
			cr_expect_eq(t_join(pid[i], T_GUARD_MS), 0);
		}
	struct ipcx_slots_stats s = stats(t);
	cr_expect_eq(s.held, 0);
	cr_expect_eq(s.waiting, 0);
	cr_expect_eq(s.acquired, N + 1);
	cr_expect_eq(s.timeouts, 1);
	cr_expect_eq(ipcx_slots_close(t), 0);
}

Test(slot, a_waiter_gets_a_dead_holders_slot)
{
	const char *url = shm_url();
	ipcx_slots *t = create(url, 1, 32);
	struct holder h;
	pid_t pid = spawn_holder(&h, url, "x");
	struct waiter w = { .url = url };
	t_sync_init(&w.got);
	pid_t wp = t_spawn(wait_for_slot, &w);
	wait_waiting(t, 1);
	kill(pid, SIGKILL); /* nobody posts: the waiter must look for dead holders */
	t_join(pid, T_GUARD_MS);
	cr_expect(t_wait_post(&w.got, T_GUARD_MS));
	cr_expect_eq(t_join(wp, T_GUARD_MS), 10, "the waiter did not see the mark");
	cr_expect_eq(ipcx_slots_close(t), 0);
}

Test(slot, read_only_from_outside)
{
	const char *url = shm_url();
	ipcx_slots *t = create(url, 2, 16);
	int held = ipcx_slot_acquire(t, 0, NULL);
	cr_assert(held == 0 || held == 1);
	ipcx_slots *ro;
	cr_assert_eq(ipcx_slots_open(url, 0, 0, IPCX_SLOTS_RDONLY, &ro), 0);
	struct ipcx_slots_stats s;
	cr_assert_eq(ipcx_slots_stats(ro, &s), 0);
	cr_expect_eq(s.slots, 2);
	cr_expect_eq(s.held, 1);
	cr_expect_eq(s.record_size, 16);
	cr_expect_eq(ipcx_slot_holder(ro, (unsigned)held, NULL), getpid());
	cr_expect_eq(ipcx_slot_holder(ro, (unsigned)!held, NULL), 0);
	cr_expect_eq(ipcx_slot_acquire(ro, 0, NULL), -EINVAL);
	cr_expect_eq(ipcx_slots_close(ro), 0);
	cr_expect(shm_exists(url), "a reader's close removes nothing");
	cr_expect_eq(ipcx_slot_release(t, (unsigned)held), 0);
	cr_expect_eq(ipcx_slots_close(t), 0);
}

Test(slot, sysv_table)
{
	char url[64];
	snprintf(url, sizeof(url), "sysvshm:%d", t_sysv_key());
	ipcx_slots *t = create(url, 4, 0);
	ipcx_slots *other;
	cr_assert_eq(ipcx_slots_open(url, 4, 0, 0, &other), 0);
	int a = ipcx_slot_acquire(t, 0, NULL), b = ipcx_slot_acquire(other, 0, NULL);
	cr_expect(a >= 0 && b >= 0 && a != b);
	cr_expect_eq(ipcx_slot_release(t, (unsigned)a), 0);
	cr_expect_eq(ipcx_slot_release(other, (unsigned)b), 0);
	cr_expect_eq(ipcx_slots_close(other), 0);
	cr_expect_eq(ipcx_slots_close(t), 0);
}

Test(slot, not_a_table)
{
	const char *url = shm_url();
	ipcx_slots *t;
	cr_expect_eq(ipcx_slots_open(url, 0, 0, 0, &t), -ENOENT);
	cr_expect_eq(ipcx_slots_open(url, 0, 8, IPCX_SLOTS_CREATE, &t), -EINVAL, "no slots");
	cr_expect_eq(ipcx_slots_open(url, 1, 8, 0x80, &t), -EINVAL, "unknown flag");

	ipcx_region *r;
	cr_assert_eq(ipcx_region_open(url, IPCX_REGION_CREATE, 65536, &r), 0);
	cr_expect_eq(ipcx_slots_open(url, 0, 0, 0, &t), -EBADMSG, "zeros are not a table");
	cr_expect(strstr(ipcx_errdetail(), "not a slot table") != NULL, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_region_close(r), 0);

	t = create(url, 2, 8);
	ipcx_slots *o;
	cr_expect_eq(ipcx_slots_open(url, 3, 0, 0, &o), -EINVAL, "wrong number of slots");
	cr_expect(strstr(ipcx_errdetail(), "2 slots") != NULL, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_slots_open(url, 2, 8, IPCX_SLOTS_CREATE, &o), -EEXIST);
	/* A scribbled header is refused, never trusted. */
	ipcx_region *raw;
	cr_assert_eq(ipcx_region_open(url, 0, 0, &raw), 0);
	uint32_t *w = ipcx_region_addr(raw);
	uint32_t save = w[2];
	w[2] = 1000000; /* nslots */
	cr_expect_eq(ipcx_slots_open(url, 0, 0, 0, &o), -EBADMSG);
	w[2] = save;
	cr_expect_eq(ipcx_region_close(raw), 0);
	cr_expect_eq(ipcx_slots_close(t), 0);
}

/* Many processes at once: never two holders of one slot. */
struct churn {
	const char *url;
	int *owner; /* per slot, in shared memory: who holds it */
	int rounds;
};

static int churn(void *arg)
{
	struct churn *c = arg;
	ipcx_slots *t;
	if (ipcx_slots_open(c->url, 0, 0, 0, &t) < 0)
		return 1;
	for (int i = 0; i < c->rounds; i++) {
		int s = ipcx_slot_acquire(t, T_GUARD_MS, NULL);
		if (s < 0)
			return 2;
		if (__atomic_exchange_n(&c->owner[s], getpid(), __ATOMIC_SEQ_CST) != 0)
			return 3; /* someone else held it */
		__atomic_store_n(&c->owner[s], 0, __ATOMIC_SEQ_CST);
		if (ipcx_slot_release(t, (unsigned)s) < 0)
			return 4;
	}
	ipcx_slots_close(t);
	return 0;
}

Test(slot, exclusive_under_contention)
{
	const char *url = shm_url();
	ipcx_slots *t = create(url, 2, 0);
	int *owner = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(owner, MAP_FAILED);
	struct churn c = { url, owner, 3000 };
	pid_t pid[5];
	for (int i = 0; i < 5; i++)
		pid[i] = t_spawn(churn, &c);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(t_join(pid[i], T_GUARD_MS), 0);
	struct ipcx_slots_stats s = stats(t);
	cr_expect_eq(s.acquired, 5 * 3000);
	cr_expect_eq(s.held, 0);
	cr_expect_eq(ipcx_slots_close(t), 0);
	munmap(owner, 4096);
}
