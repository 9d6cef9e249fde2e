/*
 * Process pools: tasks through forked and exec'd workers over every kind of
 * queue; workers killed with SIGKILL at random (every task has exactly one
 * outcome, at most once or at least once) and at each point user code can
 * reach (running a task, after answering it, with tasks queued behind it);
 * a rolling reload under load; the master killed (no worker survives it);
 * the crash-loop limit; a graceful stop and its grace.  Handshakes only:
 * the pool's own state (workers up, tasks running) is the signal, waited
 * for with a guard.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tnats.h"
#include "tsupport.h"

/* ---- workers ---------------------------------------------------------------------- */

static int echo_fn(ipcx_worker *w, void *arg)
{
	(void)arg;
	char buf[4096];
	ssize_t n;
	while ((n = ipcx_worker_next(w, buf, sizeof(buf), -1)) >= 0)
		if (ipcx_worker_reply(w, buf, (size_t)n) < 0)
			return 2;
	return n == -ESHUTDOWN ? 0 : 3;
}

/* Answers with its pid, so a test can tell which worker ran a task. */
static int pid_fn(ipcx_worker *w, void *arg)
{
	(void)arg;
	char buf[4096];
	ssize_t n;
	while ((n = ipcx_worker_next(w, buf, sizeof(buf), -1)) >= 0) {
		pid_t me = getpid();
		if (ipcx_worker_reply(w, &me, sizeof(me)) < 0)
			return 2;
	}
	return n == -ESHUTDOWN ? 0 : 3;
}

/* Shared by the test and its forked workers (made before the pool). */
struct ctl {
	_Atomic int died;   /* the first "die" or "reply-die" kills its worker, once */
	_Atomic int gated;  /* the first task taken waits for a byte on release first */
	int release[2];     /* "hold" waits for a byte here */
};

static struct ctl *ctl_new(void)
{
	struct ctl *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			     -1, 0);
	cr_assert_neq(c, MAP_FAILED);
	cr_assert_eq(pipe(c->release), 0);
	return c;
}

static void ctl_free(struct ctl *c)
{
	close(c->release[0]);
	close(c->release[1]);
	munmap(c, sizeof(*c));
}

/*
 * "die": killed while running it (started, no result); "reply-die": killed
 * right after answering; "noreply": takes the next task without answering;
 * "hold": waits for a byte on release; "stuck": never answers; else echo.
 */
static int scripted_fn(ipcx_worker *w, void *arg)
{
	struct ctl *c = arg;
	char buf[4096];
	ssize_t n;
	while ((n = ipcx_worker_next(w, buf, sizeof(buf) - 1, -1)) >= 0) {
		buf[n] = 0;
		char b;
		if (atomic_exchange(&c->gated, 0) && read(c->release[0], &b, 1) != 1)
			return 4;
		if (!strcmp(buf, "die") && atomic_exchange(&c->died, 1) == 0)
			kill(getpid(), SIGKILL);
		if (!strcmp(buf, "noreply"))
			continue;
		if (!strcmp(buf, "hold")) {
			char g;
			if (read(c->release[0], &g, 1) != 1)
				return 4;
		}
		while (!strcmp(buf, "stuck"))
			pause();
		if (ipcx_worker_reply(w, buf, (size_t)n) < 0)
			return 2;
		if (!strcmp(buf, "reply-die") && atomic_exchange(&c->died, 1) == 0)
			kill(getpid(), SIGKILL);
	}
	return n == -ESHUTDOWN ? 0 : 3;
}

static int always_die_fn(ipcx_worker *w, void *arg)
{
	(void)arg;
	char buf[64];
	if (ipcx_worker_next(w, buf, sizeof(buf), -1) >= 0)
		kill(getpid(), SIGKILL);
	return 0;
}

static int exit_fn(ipcx_worker *w, void *arg)
{
	(void)w, (void)arg;
	return 3;
}

/* ---- helpers ---------------------------------------------------------------------- */

static ipcx_pool *start(struct ipcx_pool_opts *o)
{
	if (!o->name)
		o->name = t_name();
	ipcx_pool *p;
	int r = ipcx_pool_start(o, &p);
	cr_assert_eq(r, 0, "start: %s (%s)", ipcx_strerror(r), ipcx_errdetail());
	return p;
}

static struct ipcx_pool_stats stats(ipcx_pool *p)
{
	struct ipcx_pool_stats s;
	cr_assert_eq(ipcx_pool_stats(p, &s), 0);
	return s;
}

/* Supervise until every worker is up (the handshake is each worker's hello). */
static void wait_workers(ipcx_pool *p, unsigned n)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (stats(p).workers != n || stats(p).reloading) {
		int r = ipcx_pool_run(p, 50);
		cr_assert(r == -ETIMEDOUT || r == 0, "run: %s", ipcx_strerror(r));
		clock_gettime(CLOCK_MONOTONIC, &t);
		cr_assert_lt(t.tv_sec - t0.tv_sec, T_GUARD_MS / 1000, "workers never came up");
	}
}

/* Supervise until this many tasks are running (started by their workers). */
static void wait_running(ipcx_pool *p, uint64_t n)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (stats(p).running != n) {
		ipcx_pool_run(p, 10);
		clock_gettime(CLOCK_MONOTONIC, &t);
		cr_assert_lt(t.tv_sec - t0.tv_sec, T_GUARD_MS / 1000, "tasks never started");
	}
}

static uint64_t submit(ipcx_pool *p, const char *task)
{
	uint64_t id;
	int r = ipcx_pool_submit(p, task, strlen(task), T_GUARD_MS, &id);
	cr_assert_eq(r, 0, "submit: %s (%s)", ipcx_strerror(r), ipcx_errdetail());
	return id;
}

static struct ipcx_task_result result(ipcx_pool *p, char *buf, size_t cap)
{
	struct ipcx_task_result res;
	int r = ipcx_pool_result(p, buf, cap, T_GUARD_MS, &res);
	cr_assert_eq(r, 0, "result: %s (%s)", ipcx_strerror(r), ipcx_errdetail());
	return res;
}

/* Outcomes of ids 1..n, in order of id, into st[] (status) and buf (results). */
static void collect(ipcx_pool *p, unsigned n, int *st, char (*bytes)[64])
{
	for (unsigned i = 0; i < n; i++) {
		char buf[64] = { 0 };
		struct ipcx_task_result r = result(p, buf, sizeof(buf) - 1);
		cr_assert(r.id >= 1 && r.id <= n, "unknown id %llu", (unsigned long long)r.id);
		cr_assert_eq(st[r.id - 1], 1, "task %llu had two outcomes", (unsigned long long)r.id);
		st[r.id - 1] = r.status;
		if (bytes)
			memcpy(bytes[r.id - 1], buf, sizeof(buf));
	}
}

static bool gone(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH;
	struct pollfd pf = { fd, POLLIN, 0 };
	bool dead = poll(&pf, 1, 0) == 1;
	close(fd);
	return dead;
}

/* ---- tasks ------------------------------------------------------------------------ */

/*
 * Nothing of pool `name` is left: no file in t_tmpdir() (not even a FIFO's
 * temporary name), no socket in /proc/net/unix; once closed, no System V
 * object of the run's key prefix that this process made or used (shm: cpid;
 * msg: last sender or receiver), and no POSIX object in /dev/shm or
 * /dev/mqueue.
 */
static int count_lines(const char *file, const char *needle)
{
	FILE *f = fopen(file, "r");
	int n = 0;
	char line[512];
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

static int sysv_ours(const char *file, int pidcol_a, int pidcol_b)
{
	FILE *f = fopen(file, "r");
	int n = 0;
	char line[512];
	unsigned prefix = (unsigned)t_sysv_key() >> 16;
	while (f && fgets(line, sizeof(line), f)) {
		long v[16];
		int k = sscanf(line, "%ld %ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3],
			       &v[4], &v[5], &v[6], &v[7]);
		if (k == 8 && ((unsigned)v[0] >> 16) == prefix &&
		    (v[pidcol_a] == getpid() || v[pidcol_b] == getpid()))
			n++;
	}
	if (f)
		fclose(f);
	return n;
}

static void names_gone(const char *name, bool closed)
{
	DIR *d = opendir(t_tmpdir());
	cr_assert(d);
	struct dirent *e;
	while ((e = readdir(d)))
		cr_expect(!strstr(e->d_name, name) && strncmp(e->d_name, ".ipcx", 5),
			  "left in the folder: %s", e->d_name);
	closedir(d);
	if (!closed) /* (an open socket keeps its name in /proc/net/unix, unlinked or not) */
		return;
	cr_expect_eq(count_lines("/proc/net/unix", name), 0, "a socket of %s is left", name);
	char path[256];
	snprintf(path, sizeof(path), "/dev/shm/%s-s0g1t", name);
	cr_expect(access(path, F_OK) < 0, "%s is left", path);
	snprintf(path, sizeof(path), "/dev/mqueue/%s-s0g1t", name);
	cr_expect(access(path, F_OK) < 0, "%s is left", path);
	/* msg: key msqid perms cbytes qnum lspid lrpid; shm: key shmid perms size cpid lpid */
	cr_expect_eq(sysv_ours("/proc/sysvipc/msg", 5, 6), 0, "a System V queue is left");
	cr_expect_eq(sysv_ours("/proc/sysvipc/shm", 4, 4), 0, "a System V segment is left");
}

static void names_gone(const char *name, bool closed);
static void die_case_on(const char *queue, unsigned flags, const char *first, int want_first,
			uint64_t want_requeued);

static void echo_many(const char *queue, unsigned ntasks)
{
	struct ipcx_pool_opts o = { .workers = 3, .fn = echo_fn, .queue = queue };
	ipcx_pool *p = start(&o);
	wait_workers(p, 3);
	names_gone(o.name, false); /* removed once the workers are up */
	char want[64], buf[64];
	int *seen = calloc(ntasks + 1, sizeof(int));
	unsigned sent = 0, got = 0;
	while (got < ntasks) {
		while (sent < ntasks) {
			snprintf(want, sizeof(want), "task-%u", sent + 1);
			uint64_t id;
			if (ipcx_pool_submit(p, want, strlen(want), 0, &id) < 0)
				break;
			cr_assert_eq(id, sent + 1);
			sent++;
		}
		struct ipcx_task_result r = result(p, buf, sizeof(buf));
		cr_assert_eq(r.status, 0);
		cr_assert(r.id >= 1 && r.id <= ntasks && !seen[r.id]++);
		snprintf(want, sizeof(want), "task-%llu", (unsigned long long)r.id);
		cr_assert_eq(r.len, strlen(want));
		cr_assert_eq(memcmp(buf, want, r.len), 0);
		cr_assert_lt(r.worker, 3u);
		got++;
	}
	struct ipcx_pool_stats s = stats(p);
	cr_expect_eq(s.done, ntasks);
	cr_expect_eq(s.failed, 0);
	cr_expect_eq(s.queued + s.running, 0);
	struct ipcx_task_result r;
	cr_expect_eq(ipcx_pool_result(p, buf, sizeof(buf), 0, &r), -ENOENT);
	cr_expect_eq(ipcx_pool_close(p), 0);
	names_gone(o.name, true);
	free(seen);
}

Test(pool, tasks_over_shm_rings)
{
	echo_many(NULL, 5000);
}

Test(pool, tasks_over_the_control_socket)
{
	echo_many("socket", 2000);
}

Test(pool, tasks_over_posix_queues)
{
	echo_many("mq:", 2000);
}

static void exec_on(const char *queue)
{
	char *argv[] = { (char *)t_helper(), "pool-worker", NULL };
	struct ipcx_pool_opts o = { .workers = 2, .argv = argv, .queue = queue };
	ipcx_pool *p = start(&o);
	pid_t pids[2] = { ipcx_pool_pid(p, 0), ipcx_pool_pid(p, 1) };
	cr_assert(pids[0] > 0 && pids[1] > 0);
	for (int i = 0; i < 100; i++)
		submit(p, "x");
	for (int i = 0; i < 100; i++) {
		char buf[64] = { 0 };
		struct ipcx_task_result r = result(p, buf, sizeof(buf) - 1);
		cr_assert_eq(r.status, 0);
		int pid = 0;
		cr_assert_eq(sscanf(buf, "x@%d", &pid), 1, "got '%s'", buf);
		cr_assert(pid == pids[0] || pid == pids[1], "answered by %d", pid);
	}
	cr_expect_eq(ipcx_pool_close(p), 0);
	cr_expect(gone(pids[0]) && gone(pids[1]));
	names_gone(o.name, true);
}

Test(pool, exec_worker_program)
{
	exec_on(NULL);
}

/* ---- queues over other channel URLs (docs/pool.md, "Queues") ------------------------ */

/* The queue URL of a kind: a folder of this test's, an abstract prefix or
 * a System V key of the run (for the leak check), an ephemeral port. */
static const char *url_of(const char *kind)
{
	static char u[256];
	size_t n = strlen(kind);
	if (!strcmp(kind, "tcp"))
		snprintf(u, sizeof(u), "tcp://127.0.0.1:0");
	else if (!strncmp(kind, "sysv", 4))
		snprintf(u, sizeof(u), "%s:%d", kind, t_sysv_key());
	else if (kind[n - 1] == '@') /* "unix@": "unix:@NAME." */
		snprintf(u, sizeof(u), "%.*s:@%s.", (int)n - 1, kind, t_name());
	else
		snprintf(u, sizeof(u), "%s:%s/", kind, t_tmpdir());
	return u;
}

/*
 * Over one kind of queue: 1000 tasks through 3 workers; a worker SIGKILLed
 * while running a task (at most once: -EOWNERDEAD, the three behind it run
 * by its successor; at least once: run again) and right after answering
 * (the answer counts); no name left once the workers are up, nothing at all
 * once the pool is closed.
 */
static void over_queue(const char *kind)
{
	char q[256];
	snprintf(q, sizeof(q), "%s", url_of(kind));
	echo_many(q, 1000);
	die_case_on(q, 0, "die", -EOWNERDEAD, 3);
	die_case_on(q, IPCX_POOL_AT_LEAST_ONCE, "die", 0, 4);
	die_case_on(q, 0, "reply-die", 0, 3);
}

Test(pool, queue_fifo)
{
	over_queue("fifo");
}

Test(pool, queue_unix_path)
{
	over_queue("unix");
}

Test(pool, queue_unix_abstract)
{
	over_queue("unix@");
}

Test(pool, queue_unixpacket)
{
	over_queue("unixpacket");
}

Test(pool, queue_unixpacket_abstract)
{
	over_queue("unixpacket@");
}

Test(pool, queue_unixgram)
{
	over_queue("unixgram");
}

Test(pool, queue_unixgram_abstract)
{
	over_queue("unixgram@");
}

Test(pool, queue_tcp)
{
	over_queue("tcp");
}

Test(pool, queue_sysvmq)
{
	over_queue("sysvmq");
}

Test(pool, queue_sysvshm)
{
	over_queue("sysvshm");
}

Test(pool, queue_file)
{
	over_queue("file");
}

Test(pool, queue_mmap)
{
	over_queue("mmap");
}

Test(pool, queue_mq_and_shm_kills)
{
	die_case_on("mq:", 0, "die", -EOWNERDEAD, 3);
	die_case_on("mq:", IPCX_POOL_AT_LEAST_ONCE, "die", 0, 4);
	die_case_on("socket", 0, "die", -EOWNERDEAD, 3);
}

/* An exec'd program finds each way of opening its queue in its environment. */
Test(pool, exec_worker_over_url_queues)
{
	const char *kinds[] = { "unix@", "tcp", "fifo", "sysvmq", "file" };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char q[256];
		snprintf(q, sizeof(q), "%s", url_of(kinds[i]));
		exec_on(q);
	}
}

Test(pool, line_filter_on_stdio)
{
	char *argv[] = { "cat", NULL };
	struct ipcx_pool_opts o = { .workers = 2, .argv = argv, .queue = "stdio" };
	ipcx_pool *p = start(&o);
	int st[200];
	char bytes[200][64];
	for (int i = 0; i < 200; i++) {
		char t[32];
		snprintf(t, sizeof(t), "line %d", i + 1);
		submit(p, t);
		st[i] = 1;
	}
	uint64_t id;
	cr_expect_eq(ipcx_pool_submit(p, "a\nb", 3, 0, &id), -EINVAL, "a newline in a line task");
	collect(p, 200, st, bytes);
	for (int i = 0; i < 200; i++) {
		char t[32];
		snprintf(t, sizeof(t), "line %d", i + 1);
		cr_expect_eq(st[i], 0);
		cr_expect_str_eq(bytes[i], t);
	}
	cr_expect_eq(ipcx_pool_close(p), 0);
}

/*
 * A line filter's output is read by the master a whole line at a time: a
 * line longer than max_msg is -EMSGSIZE (and its rest skipped), and a last
 * line cut short by the filter's death is no result (its task failed).
 */
Test(pool, line_filter_long_line_and_line_cut_by_death)
{
	char *argv[] = { "sh", "-c",
			 "while read l; do case $l in"
			 "  long) printf '%0100d\\n' 0;;"
			 "  cut) printf half; kill -9 $$;;"
			 "  *) echo \"got $l\";; esac; done",
			 NULL };
	struct ipcx_pool_opts o = { .workers = 1, .argv = argv, .queue = "stdio", .max_msg = 64,
				    .backoff_ms = 1 };
	ipcx_pool *p = start(&o);
	const char *tasks[] = { "a", "long", "b", "cut", "c" };
	for (int i = 0; i < 5; i++)
		submit(p, tasks[i]);
	int st[5] = { 1, 1, 1, 1, 1 };
	char bytes[5][64];
	collect(p, 5, st, bytes);
	cr_expect_eq(st[0], 0);
	cr_expect_str_eq(bytes[0], "got a");
	cr_expect_eq(st[1], -EMSGSIZE, "a 101-byte line: %s", ipcx_strerror(st[1]));
	cr_expect_eq(st[2], 0, "the line after a long one: %s", ipcx_strerror(st[2]));
	cr_expect_str_eq(bytes[2], "got b");
	cr_expect_eq(st[3], -EOWNERDEAD, "a line cut by death: %s", ipcx_strerror(st[3]));
	cr_expect_eq(st[4], 0, "after the restart: %s", ipcx_strerror(st[4]));
	cr_expect_str_eq(bytes[4], "got c");
	cr_expect_eq(stats(p).restarts, 1);
	cr_expect_eq(ipcx_pool_close(p), 0);
}

Test(pool, result_larger_than_the_buffer_is_kept)
{
	struct ipcx_pool_opts o = { .workers = 1, .fn = echo_fn };
	ipcx_pool *p = start(&o);
	uint64_t id = submit(p, "twelve bytes");
	char small[4], big[64];
	struct ipcx_task_result r;
	int e;
	while ((e = ipcx_pool_result(p, small, sizeof(small), T_GUARD_MS, &r)) == -ETIMEDOUT)
		;
	cr_assert_eq(e, -EMSGSIZE);
	r = result(p, big, sizeof(big));
	cr_expect_eq(r.id, id);
	cr_expect_eq(r.len, 12);
	cr_expect_eq(ipcx_pool_close(p), 0);
}

Test(pool, bad_options_and_tasks)
{
	ipcx_pool *p;
	struct ipcx_pool_opts o = { .workers = 0, .fn = echo_fn };
	cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL);
	char *argv[] = { "cat", NULL };
	o = (struct ipcx_pool_opts){ .workers = 1, .fn = echo_fn, .argv = argv };
	cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "fn and argv");
	o = (struct ipcx_pool_opts){ .workers = 1, .fn = echo_fn, .queue = "stdio" };
	cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "stdio without a program");
	o = (struct ipcx_pool_opts){ .workers = 1, .fn = echo_fn, .queue = "shm:?max=9" };
	cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "max is the pool's");
	cr_expect(strstr(ipcx_errdetail(), "queue") != NULL, "detail: %s", ipcx_errdetail());
	/* Queues the pool cannot use, or URLs it cannot make names from:
	 * refused, nothing made. */
	const char *other[] = { "file:", "fifo:", "fifo:relative/", "unix:", "sysvmq:5",
				"sysvmq:0x10000?keep=1", "tcp://127.0.0.1:7000", "udp://127.0.0.1:0",
				"nats://127.0.0.1:4222/x", "fd:3", "shmx:", "shm:x", "shm:/a/b",
				"mmap:/tmp/?policy=overwrite", "file:/tmp/?from=end" };
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		o = (struct ipcx_pool_opts){ .workers = 1, .fn = echo_fn, .queue = other[i] };
		cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "queue %s", other[i]);
	}
	o = (struct ipcx_pool_opts){ .workers = 1, .fn = echo_fn, .flags = 0x100 };
	cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "unknown flag");
	char *nowhere[] = { "/nonexistent/ipcx-no-such-program", NULL };
	o = (struct ipcx_pool_opts){ .workers = 2, .argv = nowhere, .queue = "stdio" };
	cr_expect_eq(ipcx_pool_start(&o, &p), -ENOENT);
	cr_expect(strstr(ipcx_errdetail(), "cannot run") != NULL, "detail: %s", ipcx_errdetail());

	o = (struct ipcx_pool_opts){ .workers = 1, .fn = echo_fn, .max_msg = 16 };
	p = start(&o);
	char big[17] = { 0 };
	uint64_t id;
	cr_expect_eq(ipcx_pool_submit(p, big, sizeof(big), 0, &id), -EMSGSIZE);
	cr_expect_eq(ipcx_pool_close(p), 0);
}

/* ---- a worker killed at each point user code reaches ------------------------------- */

static void die_case_on(const char *queue, unsigned flags, const char *first, int want_first,
			uint64_t want_requeued)
{
	struct ctl *c = ctl_new();
	struct ipcx_pool_opts o = { .workers = 1, .fn = scripted_fn, .arg = c, .flags = flags,
				    .backoff_ms = 1, .queue = queue };
	ipcx_pool *p = start(&o);
	wait_workers(p, 1);
	pid_t first_pid = ipcx_pool_pid(p, 0);
	/* All four are handed to the one worker before it acts on the first
	 * (it waits at the gate): a send to a worker already dead would fail,
	 * and the master keep the task instead of requeueing it. */
	const char *tasks[] = { first, "a", "b", "c" };
	int st[4] = { 1, 1, 1, 1 };
	char bytes[4][64];
	atomic_store(&c->gated, 1);
	for (int i = 0; i < 4; i++)
		submit(p, tasks[i]);
	cr_assert_eq(write(c->release[1], "g", 1), 1);
	collect(p, 4, st, bytes);
	cr_expect_eq(st[0], want_first, "%s: %s", first, ipcx_strerror(st[0]));
	for (int i = 1; i < 4; i++) {
		cr_expect_eq(st[i], 0);
		cr_expect_str_eq(bytes[i], tasks[i]);
	}
	struct ipcx_pool_stats s = stats(p);
	cr_expect_eq(s.requeued, want_requeued, "requeued %llu", (unsigned long long)s.requeued);
	cr_expect_eq(s.failed, want_first ? 1 : 0);
	cr_expect_eq(s.restarts, strcmp(first, "noreply") ? 1 : 0);
	cr_expect(strcmp(first, "noreply") == 0 || gone(first_pid));
	cr_expect_eq(ipcx_pool_close(p), 0);
	names_gone(o.name, true);
	ctl_free(c);
}

static void die_case(unsigned flags, const char *first, int want_first, uint64_t want_requeued)
{
	die_case_on(NULL, flags, first, want_first, want_requeued);
}

Test(pool, killed_while_running_fails_once_the_rest_go_elsewhere)
{
	die_case(0, "die", -EOWNERDEAD, 3);
}

Test(pool, killed_while_running_runs_again_at_least_once)
{
	die_case(IPCX_POOL_AT_LEAST_ONCE, "die", 0, 4);
}

Test(pool, killed_after_answering_keeps_the_answer)
{
	die_case(0, "reply-die", 0, 3);
}

Test(pool, next_without_reply_fails_the_task)
{
	die_case(0, "noreply", -ENODATA, 0);
}

/* ---- SIGKILL at random ------------------------------------------------------------- */

#define NTASKS 10000

static void random_kills(unsigned flags)
{
	struct ipcx_pool_opts o = { .workers = 3, .fn = echo_fn, .flags = flags, .window = 4,
				    .backoff_ms = 1, .backoff_max_ms = 5, .crash_limit = 1000000 };
	ipcx_pool *p = start(&o);
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	srand(seed);
	unsigned char *outcomes = calloc(NTASKS + 1, 1);
	unsigned sent = 0, got = 0, kills = 0, failed = 0;
	char buf[64], want[64];
	while (got < NTASKS) {
		while (sent < NTASKS) {
			snprintf(want, sizeof(want), "t%u", sent + 1);
			uint64_t id;
			if (ipcx_pool_submit(p, want, strlen(want), 0, &id) < 0)
				break;
			sent++;
		}
		struct ipcx_task_result r = result(p, buf, sizeof(buf));
		cr_assert(r.id >= 1 && r.id <= NTASKS);
		cr_assert_eq(outcomes[r.id]++, 0, "task %llu: a second outcome (seed %u)",
			     (unsigned long long)r.id, seed);
		if (r.status == 0) {
			snprintf(want, sizeof(want), "t%llu", (unsigned long long)r.id);
			cr_assert(r.len == strlen(want) && !memcmp(buf, want, r.len));
		} else {
			cr_assert_eq(r.status, -EOWNERDEAD, "%s", ipcx_strerror(r.status));
			cr_assert_eq(flags & IPCX_POOL_AT_LEAST_ONCE, 0, "a failure at least once");
			failed++;
		}
		got++;
		if (rand() % 64 == 0) {
			pid_t pid = ipcx_pool_pid(p, (unsigned)rand() % 3);
			if (pid > 0 && kill(pid, SIGKILL) == 0)
				kills++;
		}
	}
	for (unsigned i = 1; i <= NTASKS; i++)
		cr_assert_eq(outcomes[i], 1, "task %u: %u outcomes (seed %u)", i, outcomes[i], seed);
	cr_expect_gt(kills, 20, "the test killed too few workers");
	cr_expect_leq(failed, kills, "more failures than kills");
	wait_workers(p, 3);
	struct ipcx_pool_stats s = stats(p);
	cr_expect_eq(s.done + s.failed, NTASKS);
	cr_expect_eq(s.failed, failed);
	cr_expect_geq(s.restarts, 1);
	cr_expect_eq(s.queued + s.running, 0);
	cr_expect_eq(ipcx_pool_close(p), 0);
	free(outcomes);
}

Test(pool, sigkill_at_random_at_most_once, .timeout = 300)
{
	random_kills(0);
}

Test(pool, sigkill_at_random_at_least_once, .timeout = 300)
{
	random_kills(IPCX_POOL_AT_LEAST_ONCE);
}

/* ---- reload ------------------------------------------------------------------------ */

/*
 * A SIGHUP 500 tasks into 3000: every task has one outcome across the
 * replacement, both workers are replaced and the old ones are gone, and
 * the new ones serve.  Whether the new ones take any of the 3000 is up to
 * timing (under ASan, forking a replacement took longer than the old
 * workers took to finish all 2500 that were left), so the test sends 64
 * more once the reload is over: each must come from a new worker.
 */
Test(pool, sighup_rolling_restart_loses_nothing, .timeout = 300)
{
	struct ipcx_pool_opts o = { .workers = 2, .fn = pid_fn, .flags = IPCX_POOL_SIGNALS };
	ipcx_pool *p = start(&o);
	wait_workers(p, 2);
	pid_t old[2] = { ipcx_pool_pid(p, 0), ipcx_pool_pid(p, 1) };
	enum { N = 3000, AFTER = 64 };
	unsigned char *seen = calloc(N + AFTER + 1, 1);
	cr_assert_not_null(seen);
	unsigned sent = 0, got = 0;
	while (got < N) {
		while (sent < N && sent < got + 64) {
			uint64_t id;
			if (ipcx_pool_submit(p, "x", 1, 0, &id) < 0)
				break;
			sent++;
		}
		pid_t who;
		struct ipcx_task_result r = result(p, (char *)&who, sizeof(who));
		cr_assert_eq(r.status, 0, "task %llu: %s", (unsigned long long)r.id,
			     ipcx_strerror(r.status));
		cr_assert(r.id >= 1 && r.id <= N && !seen[r.id]++);
		if (++got == 500)
			raise(SIGHUP); /* this thread has it blocked: the pool reads it */
	}
	wait_workers(p, 2);
	pid_t now[2] = { ipcx_pool_pid(p, 0), ipcx_pool_pid(p, 1) };
	for (int i = 0; i < 2; i++) {
		cr_expect(now[i] != old[0] && now[i] != old[1], "worker %d was not replaced", i);
		cr_expect(gone(old[i]), "old worker %d still runs", i);
	}
	for (unsigned i = 0; i < AFTER; i++) {
		uint64_t id;
		cr_assert_eq(ipcx_pool_submit(p, "x", 1, T_GUARD_MS, &id), 0);
	}
	for (unsigned i = 0; i < AFTER; i++) {
		pid_t who;
		struct ipcx_task_result r = result(p, (char *)&who, sizeof(who));
		cr_assert_eq(r.status, 0);
		cr_assert(r.id > N && r.id <= N + AFTER && !seen[r.id]++);
		cr_expect(who == now[0] || who == now[1], "task %llu ran in %d, not a new worker",
			  (unsigned long long)r.id, (int)who);
	}
	struct ipcx_pool_stats s = stats(p);
	cr_expect_eq(s.done, N + AFTER);
	cr_expect_eq(s.failed, 0);
	cr_expect_eq(s.restarts, 0);
	cr_expect_eq(ipcx_pool_close(p), 0);
	free(seen);
}

static void reload_busy(const char *queue)
{
	struct ipcx_pool_opts o = { .workers = 3, .fn = pid_fn, .queue = queue };
	ipcx_pool *p = start(&o);
	wait_workers(p, 3);
	cr_assert_eq(ipcx_pool_reload(p), 0);
	cr_expect_eq(ipcx_pool_reload(p), -EBUSY);
	for (int i = 0; i < 300; i++)
		submit(p, "x");
	for (int i = 0; i < 300; i++) {
		pid_t who;
		cr_assert_eq(result(p, (char *)&who, sizeof(who)).status, 0);
	}
	wait_workers(p, 3);
	cr_expect_eq(stats(p).failed, 0);
	cr_expect_eq(stats(p).restarts, 0);
	cr_expect_eq(ipcx_pool_close(p), 0);
	names_gone(o.name, true);
}

Test(pool, reload_call_while_busy)
{
	reload_busy("socket");
}

/* A replacement gets queues of its own beside the old worker's (new names). */
Test(pool, reload_over_url_queues)
{
	const char *kinds[] = { "unix@", "fifo", "tcp", "sysvmq" };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char q[256];
		snprintf(q, sizeof(q), "%s", url_of(kinds[i]));
		reload_busy(q);
	}
}

/* ---- the master's death -------------------------------------------------------------- */

struct master_arg {
	int fd;          /* where the master writes its workers' pids */
	bool exec;
	const char *name;
	const char *queue; /* forked workers: NULL (rings) or a URL queue */
};

static int master_main(void *arg)
{
	struct master_arg *m = arg;
	char *argv[] = { "cat", NULL };
	struct ipcx_pool_opts o = { .workers = 3, .name = m->name };
	if (m->exec) {
		o.argv = argv;
		o.queue = "stdio";
	} else {
		o.fn = echo_fn;
		o.queue = m->queue;
	}
	ipcx_pool *p;
	if (ipcx_pool_start(&o, &p) < 0)
		return 1;
	/* Up: past PR_SET_PDEATHSIG (before it, a worker whose master died
	 * exits on its own), so a forked one can only die of the signal. */
	struct ipcx_pool_stats s;
	for (int i = 0; ipcx_pool_stats(p, &s) == 0 && s.workers < 3; i++)
		if (i == T_GUARD_MS / 20 || ipcx_pool_run(p, 20) != -ETIMEDOUT)
			return 4;
	pid_t pids[3];
	for (unsigned i = 0; i < 3; i++)
		pids[i] = ipcx_pool_pid(p, i);
	if (write(m->fd, pids, sizeof(pids)) != sizeof(pids))
		return 2;
	ipcx_pool_run(p, -1); /* until killed */
	return 3;
}

static void master_killed(bool exec, const char *queue)
{
	/* Orphans come to us, so that we can see how they died. */
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	int fd[2];
	cr_assert_eq(pipe(fd), 0);
	struct master_arg m = { fd[1], exec, t_name(), queue };
	pid_t master = t_spawn(master_main, &m);
	struct pollfd pf = { fd[0], POLLIN, 0 };
	cr_assert_eq(poll(&pf, 1, T_GUARD_MS), 1, "the master never reported");
	pid_t pids[3];
	cr_assert_eq(read(fd[0], pids, sizeof(pids)), (ssize_t)sizeof(pids));
	int pfd[3];
	for (int i = 0; i < 3; i++) {
		cr_assert_gt(pids[i], 0);
		pfd[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
		cr_assert_geq(pfd[i], 0);
	}
	kill(master, SIGKILL);
	cr_expect_eq(t_join(master, T_GUARD_MS), 128 + SIGKILL);
	for (int i = 0; i < 3; i++) {
		struct pollfd w = { pfd[i], POLLIN, 0 };
		cr_expect_eq(poll(&w, 1, T_GUARD_MS), 1, "worker %d outlived its master", pids[i]);
		/* A forked worker gets SIGKILL (PR_SET_PDEATHSIG); cat, or a
		 * worker whose queue is a socket or a FIFO, may see the end of
		 * its input first and exit: gone either way. */
		int st = 0;
		cr_expect_eq(waitpid(pids[i], &st, 0), pids[i]);
		cr_expect((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
				  ((exec || queue) && WIFEXITED(st)),
			  "worker %d: status 0x%x", pids[i], st);
		close(pfd[i]);
	}
	close(fd[0]);
	close(fd[1]);
	if (queue) { /* its workers were up: their names were removed then */
		names_gone(m.name, true);
		return;
	}
	/* The killed master's rings are orphans now: gc finds and removes them. */
	char match[160];
	snprintf(match, sizeof(match), "shm:/%s-*", m.name);
	struct ipcx_obj *v;
	ssize_t n = ipcx_gc(match, 0, &v);
	cr_expect_eq(n, exec ? 0 : 6, "gc removed %zd", n);
	ipcx_objs_free(v, n > 0 ? (size_t)n : 0);
}

Test(pool, master_sigkill_kills_forked_workers)
{
	master_killed(false, NULL);
}

/* Names in a folder are removed once the workers are up: a master killed
 * then leaves none. */
Test(pool, master_sigkill_leaves_no_fifo_or_socket_names)
{
	char q[256];
	snprintf(q, sizeof(q), "%s", url_of("fifo"));
	master_killed(false, q);
	snprintf(q, sizeof(q), "%s", url_of("unix"));
	master_killed(false, q);
	snprintf(q, sizeof(q), "%s", url_of("file"));
	master_killed(false, q);
}

Test(pool, master_sigkill_kills_exec_workers)
{
	master_killed(true, NULL);
}

/* ---- crash loop ------------------------------------------------------------------------ */

static void crash_loop(struct ipcx_pool_opts *o)
{
	o->workers = 2;
	o->crash_limit = 5;
	o->crash_window_ms = 600000;
	o->backoff_ms = 1;
	o->backoff_max_ms = 4;
	ipcx_pool *p = start(o);
	int r = ipcx_pool_run(p, T_GUARD_MS);
	cr_assert_eq(r, -ECHILD, "run: %s", ipcx_strerror(r));
	cr_expect(strstr(ipcx_errdetail(), "crash loop") != NULL, "detail: %s", ipcx_errdetail());
	struct ipcx_pool_stats s = stats(p);
	cr_expect(s.crashloop && s.stopped);
	cr_expect(s.restarts >= 3 && s.restarts <= 5, "%llu restarts",
		  (unsigned long long)s.restarts);
	uint64_t id;
	cr_expect_eq(ipcx_pool_submit(p, "x", 1, 0, &id), -ECHILD);
	cr_expect_eq(ipcx_pool_close(p), 0);
}

Test(pool, crash_loop_is_reported_not_spun)
{
	struct ipcx_pool_opts o = { .fn = exit_fn };
	crash_loop(&o);
}

Test(pool, crash_loop_of_a_program)
{
	char *argv[] = { "false", NULL };
	struct ipcx_pool_opts o = { .argv = argv, .queue = "stdio" };
	crash_loop(&o);
}

Test(pool, crash_loop_fails_the_tasks_left)
{
	/* Every worker dies on its first task, which at least once goes back
	 * to the next one: a crash loop with work waiting. */
	struct ipcx_pool_opts o = { .workers = 1, .fn = always_die_fn, .crash_limit = 3,
				    .backoff_ms = 1, .backoff_max_ms = 2,
				    .flags = IPCX_POOL_AT_LEAST_ONCE };
	ipcx_pool *p = start(&o);
	submit(p, "x");
	submit(p, "y");
	int st[2] = { 1, 1 };
	collect(p, 2, st, NULL);
	cr_expect_eq(st[0], -ECHILD, "%s", ipcx_strerror(st[0]));
	cr_expect_eq(st[1], -ECHILD, "%s", ipcx_strerror(st[1]));
	struct ipcx_task_result r;
	char buf[8];
	cr_expect_eq(ipcx_pool_result(p, buf, sizeof(buf), 0, &r), -ECHILD);
	struct ipcx_pool_stats s = stats(p);
	cr_expect(s.crashloop);
	cr_expect_eq(s.failed, 2);
	cr_expect_geq(s.requeued, 2);
	cr_expect_eq(ipcx_pool_close(p), 0);
}

/* ---- stop ------------------------------------------------------------------------------ */

Test(pool, stop_finishes_held_tasks_and_cancels_the_rest)
{
	struct ctl *c = ctl_new();
	struct ipcx_pool_opts o = { .workers = 2, .fn = scripted_fn, .arg = c, .window = 1 };
	ipcx_pool *p = start(&o);
	wait_workers(p, 2);
	pid_t pids[2] = { ipcx_pool_pid(p, 0), ipcx_pool_pid(p, 1) };
	submit(p, "hold");
	submit(p, "hold");
	wait_running(p, 2);
	submit(p, "a"); /* window 1: these wait in the master */
	submit(p, "b");
	submit(p, "c");
	cr_assert_eq(write(c->release[1], "xx", 2), 2);
	cr_assert_eq(ipcx_pool_stop(p, T_GUARD_MS), 0);
	cr_expect(gone(pids[0]) && gone(pids[1]), "stop returned with a worker alive");
	int st[5] = { 1, 1, 1, 1, 1 };
	char bytes[5][64];
	collect(p, 5, st, bytes);
	cr_expect_eq(st[0], 0);
	cr_expect_eq(st[1], 0);
	cr_expect_str_eq(bytes[0], "hold");
	for (int i = 2; i < 5; i++)
		cr_expect_eq(st[i], -ECANCELED, "%d: %s", i, ipcx_strerror(st[i]));
	struct ipcx_pool_stats s = stats(p);
	cr_expect(s.stopped && !s.crashloop);
	uint64_t id;
	cr_expect_eq(ipcx_pool_submit(p, "x", 1, 0, &id), -ESHUTDOWN);
	cr_expect_eq(ipcx_pool_close(p), 0);
	ctl_free(c);
}

Test(pool, stop_kills_a_worker_past_its_grace)
{
	struct ctl *c = ctl_new();
	struct ipcx_pool_opts o = { .workers = 1, .fn = scripted_fn, .arg = c };
	ipcx_pool *p = start(&o);
	wait_workers(p, 1);
	pid_t pid = ipcx_pool_pid(p, 0);
	submit(p, "stuck");
	wait_running(p, 1);
	cr_assert_eq(ipcx_pool_stop(p, 50), 0);
	cr_expect(gone(pid));
	char buf[64];
	struct ipcx_task_result r = result(p, buf, sizeof(buf));
	cr_expect_eq(r.status, -EOWNERDEAD);
	cr_expect_eq(stats(p).restarts, 0);
	cr_expect_eq(ipcx_pool_close(p), 0);
	ctl_free(c);
}

Test(pool, sigterm_stops_run)
{
	struct ipcx_pool_opts o = { .workers = 2, .fn = echo_fn, .flags = IPCX_POOL_SIGNALS };
	ipcx_pool *p = start(&o);
	wait_workers(p, 2);
	pid_t pids[2] = { ipcx_pool_pid(p, 0), ipcx_pool_pid(p, 1) };
	raise(SIGTERM); /* blocked in this thread: the pool reads it */
	cr_assert_eq(ipcx_pool_run(p, T_GUARD_MS), 0);
	cr_expect(stats(p).stopped);
	cr_expect(gone(pids[0]) && gone(pids[1]));
	cr_expect_eq(ipcx_pool_close(p), 0);
}

/* ---- queues over nats:// (docs/pool.md, "Queues over nats://") ------------------- */

/* A pool of the helper program over nats:// on server srv; opts after '?'. */
static ipcx_pool *nats_pool(const struct t_nats *srv, const char *opts, char *q, size_t cap,
			    struct ipcx_pool_opts *o)
{
	static char *argv[] = { NULL, "pool-worker", NULL };
	argv[0] = (char *)t_helper();
	snprintf(q, cap, "nats://%s/ipcxt.pool.%s", srv->addr, opts ? opts : "");
	*o = (struct ipcx_pool_opts){ .workers = 2, .argv = argv, .queue = q };
	return start(o);
}

/* The helper answers "TASK@PID": task-ID, by one of the pool's workers. */
static void check_answer(ipcx_pool *p, const struct ipcx_task_result *r, const char *buf)
{
	char want[64];
	int n = snprintf(want, sizeof(want), "task-%llu@", (unsigned long long)r->id);
	cr_assert(r->len > (size_t)n && !memcmp(buf, want, (size_t)n), "task %llu got '%.*s'",
		  (unsigned long long)r->id, (int)r->len, buf);
	(void)p;
}

/*
 * Submit ntasks (ids first+1 ..) as room allows and take every outcome: each
 * id once; ok and failed (-EOWNERDEAD) counted.  at_result: called once
 * after that many outcomes (the server's kill), or 0 for never.
 */
static void nats_run(ipcx_pool *p, uint64_t first, unsigned ntasks, unsigned at_result,
		     void (*at)(void *), void *arg, unsigned *ok, unsigned *failed)
{
	unsigned char *seen = calloc(ntasks + 1, 1);
	unsigned sent = 0, got = 0;
	char buf[128];
	while (got < ntasks) {
		while (sent < ntasks) {
			snprintf(buf, sizeof(buf), "task-%llu", (unsigned long long)(first + sent + 1));
			uint64_t id;
			if (ipcx_pool_submit(p, buf, strlen(buf), 0, &id) < 0)
				break;
			cr_assert_eq(id, first + sent + 1);
			sent++;
		}
		struct ipcx_task_result r = result(p, buf, sizeof(buf) - 1);
		cr_assert(r.id > first && r.id <= first + ntasks, "unknown id %llu",
			  (unsigned long long)r.id);
		cr_assert_eq(seen[r.id - first]++, 0, "task %llu: a second outcome",
			     (unsigned long long)r.id);
		if (r.status == 0) {
			check_answer(p, &r, buf);
			++*ok;
		} else {
			cr_assert_eq(r.status, -EOWNERDEAD, "task %llu: %s",
				     (unsigned long long)r.id, ipcx_strerror(r.status));
			++*failed;
		}
		if (++got == at_result)
			at(arg);
	}
	free(seen);
}

Test(pool, nats_queue_exec_workers, .timeout = 300)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	char q[300];
	struct ipcx_pool_opts o;
	ipcx_pool *p = nats_pool(&srv, NULL, q, sizeof(q), &o);
	wait_workers(p, 2);
	pid_t pids[2] = { ipcx_pool_pid(p, 0), ipcx_pool_pid(p, 1) };
	unsigned ok = 0, failed = 0;
	nats_run(p, 0, 3000, 0, NULL, NULL, &ok, &failed);
	cr_expect_eq(ok, 3000);
	cr_expect_eq(failed, 0);
	struct ipcx_pool_stats s = stats(p);
	cr_expect_eq(s.done, 3000);
	cr_expect_eq(s.restarts, 0, "a worker died: %llu restarts", (unsigned long long)s.restarts);
	cr_expect_eq(s.queued + s.running, 0);
	cr_expect_eq(ipcx_pool_close(p), 0);
	cr_expect(gone(pids[0]) && gone(pids[1]));
	names_gone(o.name, true);
	t_nats_stop(&srv);
}

/* Fork mode, and URLs the pool cannot name a worker's subjects from:
 * refused before anything is made (no server needed). */
Test(pool, nats_queue_refusals)
{
	ipcx_pool *p;
	char *argv[] = { (char *)t_helper(), "pool-worker", NULL };
	struct ipcx_pool_opts o = { .workers = 1, .fn = echo_fn, .queue = "nats://127.0.0.1:4222/x." };
	cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "fork mode");
	cr_expect(strstr(ipcx_errdetail(), "exec'd workers") != NULL, "detail: %s", ipcx_errdetail());
	const char *bad[] = { "nats://127.0.0.1:4222", "nats:127.0.0.1:4222/x.", "nats:///x.",
			      "nats://127.0.0.1:4222/x.*.", "nats://127.0.0.1:4222/x.>",
			      "nats://127.0.0.1:4222/.x", "nats://127.0.0.1:4222/a..b.",
			      "nats://127.0.0.1:4222/x.?queue=g", "nats://127.0.0.1:4222/x.?stream=S",
			      "nats://127.0.0.1:4222/x.?reply=1", "nats://127.0.0.1:4222/x.?max=99",
			      "nats://127.0.0.1:4222/x. y" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = (struct ipcx_pool_opts){ .workers = 1, .argv = argv, .queue = bad[i] };
		cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "queue %s", bad[i]);
		cr_expect(strstr(ipcx_errdetail(), "queue") != NULL, "%s: detail %s", bad[i],
			  ipcx_errdetail());
	}
	o = (struct ipcx_pool_opts){ .workers = 1, .argv = argv, .name = "a.b",
				     .queue = "nats://127.0.0.1:4222/x." };
	cr_expect_eq(ipcx_pool_start(&o, &p), -EINVAL, "a name with a dot");
	cr_expect(strstr(ipcx_errdetail(), "token") != NULL, "detail: %s", ipcx_errdetail());
}

struct restart_arg {
	struct t_nats *srv;
	int port;
};

static void kill_and_restart(void *arg)
{
	struct restart_arg *a = arg;
	t_nats_kill(a->srv, SIGKILL);
	cr_assert(t_nats_start(a->srv, false, NULL, NULL, a->port), "cannot restart on port %d",
		  a->port);
}

/*
 * The server SIGKILLed and started again on its port, 300 outcomes into
 * 3000 tasks: each worker's connections (and the master's) lose what was
 * in flight, so every worker is killed and restarted; every task still has
 * exactly one outcome (its result, or -EOWNERDEAD for one a worker had
 * started), and the pool serves afterwards.
 */
Test(pool, nats_queue_server_killed_mid_run, .timeout = 300)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	struct restart_arg a = { &srv, srv.port };
	char q[300];
	struct ipcx_pool_opts o;
	ipcx_pool *p = nats_pool(&srv, "?reconnect_wait=50", q, sizeof(q), &o);
	wait_workers(p, 2);
	pid_t pids[2] = { ipcx_pool_pid(p, 0), ipcx_pool_pid(p, 1) };
	unsigned ok = 0, failed = 0;
	nats_run(p, 0, 3000, 300, kill_and_restart, &a, &ok, &failed);
	cr_expect_eq(ok + failed, 3000);
	struct ipcx_pool_stats s = stats(p);
	cr_expect_eq(s.done, ok);
	cr_expect_eq(s.failed, failed);
	cr_expect_geq(s.restarts, 2, "both workers lost messages, %llu restarts",
		      (unsigned long long)s.restarts);
	/* A worker's death fails the tasks it started and whose results did not
	 * come: with results lost, up to its window (8) of them. */
	cr_expect_leq(failed, 8 * s.restarts, "more failures (%u) than 8 per worker death "
		      "(%llu restarts)", failed, (unsigned long long)s.restarts);
	cr_expect(gone(pids[0]) && gone(pids[1]), "a worker of before the switch lives");
	/* And it goes on. */
	wait_workers(p, 2);
	unsigned ok2 = 0, failed2 = 0;
	nats_run(p, 3000, 200, 0, NULL, NULL, &ok2, &failed2);
	cr_expect_eq(ok2, 200);
	cr_expect_eq(ipcx_pool_close(p), 0);
	names_gone(o.name, true);
	t_nats_stop(&srv);
}
