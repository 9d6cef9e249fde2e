/*
 * Socket listeners under pressure: two listeners racing to replace one
 * stale socket file, and a listener whose process is out of descriptors
 * while connections wait in its backlog.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"
#include "tsupport.h"

static void *shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- two listeners, one stale socket file -------------------------------------- */

static bool lost_right(int r)
{
	return r == -EADDRINUSE || r == -EEXIST;
}

/* One round on a fresh path; false (and why, in the log) on a wrong outcome. */
static bool race_round(const char *u, const char *path, int round, int *results)
{
	struct t_race r;
	t_race_round(u, round, results, true, lost_right, &r);
	unlink(path); /* after a failure, whatever is left */
	if (!r.both || r.wins != 1 || !r.lost_right)
		cr_log_error("%s round %d: results %d, %d", u, round, r.result[0], r.result[1]);
	else if (!t_race_ok(&r))
		cr_log_error("%s round %d: the winner was not reached (exits %d)", u, round, r.exits);
	return t_race_ok(&r);
}

#define RACE_ROUNDS 200

static void race(const char *scheme)
{
	int *results = shared(4096);
	int bad = 0;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		const char *path = t_path(t_name());
		char u[300];
		snprintf(u, sizeof(u), "%s:%s", scheme, path);
		bad += !race_round(u, path, i, results);
		cr_assert_neq(access(path, F_OK), 0, "%s round %d: the winner removes its file", u, i);
	}
	cr_expect_eq(bad, 0, "%s: %d of %d rounds without exactly one winner reached", scheme, bad,
		     RACE_ROUNDS);
	munmap(results, 4096);
}

Test(race, unix_stale_socket_replaced_once, .timeout = 600)
{
	race("unix");
}

Test(race, unixpacket_stale_socket_replaced_once, .timeout = 600)
{
	race("unixpacket");
}

Test(race, unixgram_stale_socket_replaced_once, .timeout = 600)
{
	race("unixgram");
}

/*
 * A listener closing while a new one takes its path: the new one either is
 * refused (the old one was still there) or wins, and then the path leads to
 * it: the old one's close must not remove the new one's file.
 */
struct handover {
	const char *url;
	struct t_sync *go, *done;
	int *result;
};

static int close_on_go(void *arg)
{
	struct handover *h = arg;
	ipcx_chan *l;
	if (ipcx_listen(h->url, 0, &l) < 0)
		return 1;
	t_post(h->done);
	if (!t_wait_post(h->go, T_GUARD_MS))
		return 2;
	return ipcx_close(l) == 0 ? 0 : 3;
}

static int listen_on_go(void *arg)
{
	struct handover *h = arg;
	if (!t_wait_post(h->go, T_GUARD_MS))
		return 10;
	ipcx_chan *l;
	/* Until the old listener is gone: the outcome to test is the last try. */
	while ((*h->result = ipcx_listen(h->url, 0, &l)) == -EADDRINUSE)
		;
	t_post(h->done);
	if (*h->result < 0)
		return 11;
	int v = -1;
	ssize_t n = ipcx_recv(l, &v, sizeof(v), T_GUARD_MS);
	ipcx_close(l);
	return n == sizeof(v) && v == 42 ? 0 : 12;
}

static void handover(const char *scheme)
{
	int *result = shared(4096);
	int bad = 0;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		const char *path = t_path(t_name());
		char u[300];
		snprintf(u, sizeof(u), "%s:%s", scheme, path);
		struct t_sync go, done;
		t_sync_init(&go);
		t_sync_init(&done);
		struct handover h = { u, &go, &done, result };
		*result = 1;
		pid_t old = t_spawn(close_on_go, &h);
		cr_assert(t_wait_post(&done, T_GUARD_MS), "round %d: the first listener", i);
		pid_t new = t_spawn(listen_on_go, &h);
		t_post(&go);
		t_post(&go);
		bool listened = t_wait_post(&done, T_GUARD_MS) && *result == 0;
		cr_expect_eq(t_join(old, T_GUARD_MS), 0);
		ipcx_chan *d = NULL;
		int v = 42;
		int r = listened ? ipcx_dial(u, 0, &d) : -1;
		if (r == 0 && ipcx_send(d, &v, sizeof(v), T_GUARD_MS) != sizeof(v))
			r = -1;
		if (r < 0)
			kill(new, SIGKILL);
		int st = t_join(new, T_GUARD_MS);
		ipcx_close(d);
		t_sync_close(&go);
		t_sync_close(&done);
		unlink(path);
		if (r < 0 || st != 0) {
			cr_log_error("%s round %d: listen %d, dial %d, exit %d", u, i, *result, r, st);
			bad++;
		}
	}
	cr_expect_eq(bad, 0, "%s: %d of %d new listeners not reached", scheme, bad, RACE_ROUNDS);
	munmap(result, 4096);
}

Test(race, unix_closing_listener_leaves_the_new_one, .timeout = 600)
{
	handover("unix");
}

Test(race, unixgram_closing_listener_leaves_the_new_one, .timeout = 600)
{
	handover("unixgram");
}

/* The lock beside a socket file: never through a link, never another's file. */
Test(race, lock_file_is_ours_or_refused)
{
	const char *path = t_path(t_name());
	char u[300], lock[300];
	snprintf(u, sizeof(u), "unix:%s", path);
	snprintf(lock, sizeof(lock), "%s.ipcx-lock", path);
	const char *target = t_path("target");
	ipcx_chan *l = NULL;
	cr_assert_eq(symlink(target, lock), 0);
	cr_expect_eq(ipcx_listen(u, 0, &l), -EEXIST, "%s", ipcx_errdetail());
	cr_expect(strstr(ipcx_errdetail(), "not touching it"), "%s", ipcx_errdetail());
	cr_expect_neq(access(target, F_OK), 0, "nothing made through the link");
	cr_expect_neq(access(path, F_OK), 0, "no socket made without the lock");
	unlink(lock);
	/* Another user's file: refused, and left alone. */
	int fd = open(lock, O_CREAT | O_EXCL | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fchown(fd, 65534, 65534), 0);
	close(fd);
	cr_expect_eq(ipcx_listen(u, 0, &l), -EEXIST, "%s", ipcx_errdetail());
	cr_expect_eq(access(lock, F_OK), 0, "another user's file is not removed");
	unlink(lock);
	/* One of ours, left by a listener killed while it held it: taken, removed. */
	fd = open(lock, O_CREAT | O_EXCL | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(ipcx_listen(u, 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_neq(access(lock, F_OK), 0, "the lock file is removed once the socket listens");
	ipcx_close(l);
	cr_expect_neq(access(path, F_OK), 0);
}

/* ---- a listener out of descriptors ---------------------------------------------- */

#define FLOOD   150
#define NOFILE  64
#define SLACK_MS 5000 /* how far past its timeout a call may return: a hang guard */

struct starved {
	char url[256];
	bool accept;             /* listen with IPCX_ACCEPT */
	struct t_sync ready, full, flooded, measured, go_on, done;
	int64_t took0, took100;  /* ms the two receives took */
	ssize_t got0, got100;
	ssize_t first, second;   /* the existing peer's messages */
	long busy_ms;            /* runnable (or CPU) ms of a receive of 1000 ms */
	bool runnable;           /* busy_ms is from schedstat, not getrusage */
	ssize_t idle;
	int from_backlog;        /* messages received once descriptors were freed */
	char detail[256];
};

static long cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/*
 * How long this thread has been runnable, in ms: on a CPU or waiting for
 * one (/proc/thread-self/schedstat, read through sched, opened before the
 * descriptors ran out), or -1 where the kernel does not say.  A spinning
 * thread is runnable all the time however busy the machine, where its CPU
 * time shrinks with its share of the CPUs; a sleeping one only as it wakes.
 */
static long runnable_ms(int sched)
{
	char b[96];
	unsigned long long cpu_ns, wait_ns;
	ssize_t n = sched >= 0 ? pread(sched, b, sizeof(b) - 1, 0) : -1;
	if (n <= 0)
		return -1;
	b[n] = '\0';
	if (sscanf(b, "%llu %llu", &cpu_ns, &wait_ns) != 2)
		return -1;
	return (long)((cpu_ns + wait_ns) / 1000000);
}

/* Runnable time where the kernel tells it, else the process's CPU time. */
static long busy_ms(int sched, bool runnable)
{
	return runnable ? runnable_ms(sched) : cpu_ms();
}

/* Take descriptors until there are none left; returns how many. */
static int fill_descriptors(int *fds, int cap)
{
	int n = 0;
	while (n < cap && (fds[n] = dup(0)) >= 0)
		n++;
	return n;
}

static ssize_t timed_recv(ipcx_chan *l, int timeout, int64_t *took)
{
	char buf[64];
	int64_t t0 = now_ms();
	ssize_t n = ipcx_recv(l, buf, sizeof(buf), timeout);
	*took = now_ms() - t0;
	return n;
}

/* The listener, in a process limited to NOFILE descriptors. */
static int starved_listener(void *arg)
{
	struct starved *s = arg;
	struct rlimit rl = { NOFILE, NOFILE };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 20;
	ipcx_chan *l;
	if (ipcx_listen(s->url, s->accept ? IPCX_ACCEPT : 0, &l) < 0)
		return 21;
	ipcx_addr(l, s->url, sizeof(s->url));
	t_post(&s->ready);
	char buf[64];
	ipcx_chan *peer = NULL;
	if (s->accept && ipcx_accept(l, T_GUARD_MS, &peer) < 0)
		return 22;
	s->first = ipcx_recv(peer ? peer : l, buf, sizeof(buf), T_GUARD_MS);
	int sched = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	s->runnable = runnable_ms(sched) >= 0;
	int fds[NOFILE];
	int nfds = fill_descriptors(fds, NOFILE);
	t_post(&s->full);
	if (!t_wait_post(&s->flooded, T_GUARD_MS))
		return 23;
	if (s->accept) {
		/* One peer at a time: the caller hears of the shortage at once. */
		ipcx_chan *c = NULL;
		int64_t t0 = now_ms();
		s->got0 = ipcx_accept(l, 100, &c);
		s->took0 = now_ms() - t0;
		snprintf(s->detail, sizeof(s->detail), "%s", ipcx_errdetail());
		ipcx_close(c);
		t_post(&s->measured);
	} else {
		s->got0 = timed_recv(l, 0, &s->took0);
		s->got100 = timed_recv(l, 100, &s->took100);
		t_post(&s->measured);
		/* The peer it already has is served meanwhile. */
		if (!t_wait_post(&s->go_on, T_GUARD_MS))
			return 24;
		s->second = ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS);
		long b0 = busy_ms(sched, s->runnable);
		int64_t took;
		s->idle = timed_recv(l, 1000, &took);
		s->busy_ms = busy_ms(sched, s->runnable) - b0;
		/* Descriptors come back: the waiting connections are taken in. */
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		nfds = 0;
		while (s->from_backlog < 10 && ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS) == 5)
			s->from_backlog++;
	}
	t_post(&s->done);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (sched >= 0)
		close(sched);
	ipcx_close(peer);
	ipcx_close(l);
	return 0;
}

static void starve(const char *url, bool accept)
{
	struct starved *s = shared(sizeof(*s));
	snprintf(s->url, sizeof(s->url), "%s", url);
	s->accept = accept;
	t_sync_init(&s->ready);
	t_sync_init(&s->full);
	t_sync_init(&s->flooded);
	t_sync_init(&s->measured);
	t_sync_init(&s->go_on);
	t_sync_init(&s->done);
	pid_t pid = t_spawn(starved_listener, s);
	cr_assert(t_wait_post(&s->ready, T_GUARD_MS), "the listener did not start");
	ipcx_chan *p, *w[FLOOD];
	cr_assert_eq(ipcx_dial(s->url, 0, &p), 0, "%s: %s", s->url, ipcx_errdetail());
	cr_assert_eq(ipcx_send(p, "first", 5, T_GUARD_MS), 5);
	cr_assert(t_wait_post(&s->full, T_GUARD_MS), "the listener did not fill its table");
	cr_expect_eq(s->first, 5);
	/* Connections that wait in the backlog, each with a message. */
	for (int i = 0; i < FLOOD; i++) {
		cr_assert_eq(ipcx_dial(s->url, 0, &w[i]), 0, "%d: %s", i, ipcx_errdetail());
		cr_assert_eq(ipcx_send(w[i], "flood", 5, T_GUARD_MS), 5);
	}
	t_post(&s->flooded);
	/* A receive with timeout 0, then one of 100 ms: neither may run on. */
	bool measured = t_wait_post(&s->measured, 100 + 2 * SLACK_MS);
	cr_expect(measured, "%s: the starved listener's receives did not return", url);
	if (measured && accept) {
		cr_expect_eq(s->got0, -EMFILE, "%s: accept gave %zd", url, s->got0);
		cr_expect(strstr(s->detail, "descriptors"), "%s: detail '%s'", url, s->detail);
		cr_expect_leq(s->took0, 100 + SLACK_MS, "%s: accept(100) took %lld ms", url,
			      (long long)s->took0);
	} else if (measured) {
		cr_expect_eq(s->got0, -EAGAIN, "%s: recv(0) gave %zd", url, s->got0);
		cr_expect_leq(s->took0, SLACK_MS, "%s: recv(0) took %lld ms", url,
			      (long long)s->took0);
		cr_expect_eq(s->got100, -ETIMEDOUT, "%s: recv(100) gave %zd", url, s->got100);
		cr_expect_leq(s->took100, 100 + SLACK_MS, "%s: recv(100) took %lld ms", url,
			      (long long)s->took100);
		cr_expect_eq(ipcx_send(p, "again", 5, T_GUARD_MS), 5);
		t_post(&s->go_on);
	}
	bool done = measured && t_wait_post(&s->done, 2 * T_GUARD_MS);
	cr_expect(!measured || done, "%s: the listener did not finish", url);
	if (done && !accept)
		cr_log_info("%s: recv(0) %lld ms, recv(100) %lld ms, idle recv(1000) %ld ms %s", url,
			    (long long)s->took0, (long long)s->took100, s->busy_ms,
			    s->runnable ? "runnable" : "CPU");
	if (done && !accept) {
		cr_expect_eq(s->second, 5, "%s: the existing peer was stalled (%zd)", url, s->second);
		cr_expect_eq(s->idle, -ETIMEDOUT);
		/*
		 * Correct code sleeps: runnable for a few ms.  Spinning on
		 * accept() keeps the thread runnable the whole second, however
		 * busy the machine (its CPU time alone shrank to 100-160 ms at
		 * load 12, and hid the spin; getrusage's CPU time is the
		 * fallback where there is no schedstat).
		 */
		cr_expect_lt(s->busy_ms, 500, "%s: %ld ms %s in an idle receive of 1000 ms", url,
			     s->busy_ms, s->runnable ? "runnable (on a CPU or waiting for one)"
						     : "of CPU");
		cr_expect_eq(s->from_backlog, 10, "%s: %d messages from the backlog", url,
			     s->from_backlog);
	}
	for (int i = 0; i < FLOOD; i++)
		ipcx_close(w[i]);
	ipcx_close(p);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0, "%s: the listener's exit", url);
	munmap(s, sizeof(*s));
}

Test(fdlimit, unix_listener)
{
	char u[256];
	snprintf(u, sizeof(u), "unix:%s", t_path(t_name()));
	starve(u, false);
}

Test(fdlimit, tcp_listener)
{
	starve("tcp://127.0.0.1:0", false);
}

Test(fdlimit, unix_accept)
{
	char u[256];
	snprintf(u, sizeof(u), "unix:%s", t_path(t_name()));
	starve(u, true);
}

Test(fdlimit, tcp_accept)
{
	starve("tcp://127.0.0.1:0", true);
}
