/*
 * The logging pipeline (ipcx_log_*, ipcx_logd_*; docs/log.md): many
 * writers, each record exactly once, whole and in its writer's order;
 * writers and the drain killed at random; a full log's drops counted
 * exactly and reported where they happened; rotation and reopening;
 * hostile records.  The output is parsed back line by line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pattern/logrec_int.h"
#include "tsupport.h"

#define MAXW 8 /* writer processes in a test */
#define MAXT 4 /* threads per writer */

#define URL_MAX 512

/* mmap:PATH?OPTS into url (URL_MAX bytes), which it returns. */
static const char *mmap_url(char *url, const char *leaf, const char *opts)
{
	snprintf(url, URL_MAX, "mmap:%s%s%s", t_path(leaf), opts ? "?" : "", opts ? opts : "");
	return url;
}

static const char *shm_url(char *url, const char *opts)
{
	snprintf(url, URL_MAX, "shm:/%s%s%s", t_name(), opts ? "?" : "", opts ? opts : "");
	return url;
}

/* ---- what writers write, and checking it ----------------------------------------- */

/* A payload of len bytes for (w, t, seq), and its checksum. */
static void payload(int w, int t, unsigned seq, char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (char)('a' + (w * 7 + t * 3 + seq + i) % 26);
}

static unsigned sum(const char *p, size_t len)
{
	unsigned s = 5381;
	for (size_t i = 0; i < len; i++)
		s = s * 33u + (unsigned char)p[i];
	return s;
}

/* "W.T SEQ SUM PAYLOAD": a message that says whose it is and proves it whole. */
static int message(int w, int t, unsigned seq, size_t plen, char *buf, size_t cap)
{
	char p[4096];
	payload(w, t, seq, p, plen);
	return snprintf(buf, cap, "%d.%d %u %08x %.*s", w, t, seq, sum(p, plen), (int)plen, p);
}

struct line {
	int pid, tid;
	char level[16];
	const char *msg;
	size_t msg_len;
};

/* The default format: "TIME NAME[PID/TID] LEVEL: MESSAGE". */
static bool parse_line(char *l, struct line *x)
{
	int off = 0;
	if (sscanf(l, "%*s %*[^[][%d/%d] %15[^:]: %n", &x->pid, &x->tid, x->level, &off) != 3 ||
	    !off)
		return false;
	x->msg = l + off;
	x->msg_len = strlen(l + off);
	return true;
}

/* Per writer thread: the next sequence number expected. */
struct expect {
	unsigned next[MAXW][MAXT];
	uint64_t drops[MAXW];    /* drops reported for writer w (by pid) */
	uint64_t pending[MAXW];  /* a drop line seen, its record not yet */
	pid_t pid[MAXW];
	int tid[MAXW][MAXT];     /* the thread id seen in (w, t)'s records, once one is */
	int nw;
	long lines;
	bool gaps_ok;            /* drops allowed (policy=drop); else every record */
};

static int writer_of(const struct expect *e, int pid)
{
	for (int i = 0; i < e->nw; i++)
		if (e->pid[i] == pid)
			return i;
	return -1;
}

/*
 * One line of output: a whole, uncorrupted record of a known writer, in
 * its order; with gaps_ok, a gap is exactly what the drop line before it
 * said.  Stops the test at the first line that is wrong.
 */
static void check_line(struct expect *e, char *l)
{
	struct line x;
	e->lines++;
	cr_assert(parse_line(l, &x), "line %ld is not a log line: '%.200s'", e->lines, l);
	int w = writer_of(e, x.pid);
	cr_assert_geq(w, 0, "line %ld from an unknown pid %d", e->lines, x.pid);
	unsigned long long n;
	int used = 0;
	if (!strcmp(x.level, "warning") && sscanf(x.msg, "%llu record%n", &n, &used) == 1 &&
	    (!strcmp(x.msg + used, "s dropped") || !strcmp(x.msg + used, " dropped"))) {
		cr_assert(e->gaps_ok, "a drop where none may be: %s", l);
		e->drops[w] += n;
		e->pending[w] += n;
		return;
	}
	int ww, t, k = 0;
	unsigned seq, s;
	cr_assert_eq(sscanf(x.msg, "%d.%d %u %x %n", &ww, &t, &seq, &s, &k), 4, "'%.200s'", l);
	cr_assert(ww == w && t >= 0 && t < MAXT, "'%.200s'", l);
	/*
	 * The thread id is the writing thread's: each writer thread's records
	 * carry one, a pthread's own (not its process id); the end record
	 * (t = MAXT - 1) is written by the process's main thread: tid == pid.
	 */
	if (t == MAXT - 1)
		cr_assert_eq(x.tid, x.pid, "the main thread's record: '%.200s'", l);
	else if (!e->tid[w][t])
		cr_assert_neq(x.tid, x.pid, "a writer thread's record: '%.200s'", l);
	cr_assert(!e->tid[w][t] || e->tid[w][t] == x.tid, "writer %d.%d was tid %d: '%.200s'", w,
		  t, e->tid[w][t], l);
	e->tid[w][t] = x.tid;
	const char *p = x.msg + k;
	cr_assert_eq(sum(p, strlen(p)), s, "a torn or corrupt record: '%.200s'", l);
	unsigned want = e->next[w][t];
	if (e->gaps_ok && seq != want) {
		/* With one thread per writer, the gap is its drop line's count. */
		cr_assert_gt(seq, want, "out of order or twice: %s (want %u)", l, want);
		cr_assert_eq(e->pending[w], seq - want, "writer %d: a gap of %u, %llu reported: %s",
			     w, seq - want, (unsigned long long)e->pending[w], l);
	} else {
		cr_assert_eq(seq, want, "writer %d.%d: seq %u, want %u (lost, twice, or out of order)",
			     w, t, seq, want);
	}
	e->pending[w] = 0;
	e->next[w][t] = seq + 1;
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		*len = 0;
		return calloc(1, 1);
	}
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	char *b = malloc((size_t)st.st_size + 1);
	cr_assert_eq(read(fd, b, (size_t)st.st_size), st.st_size);
	b[st.st_size] = 0;
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

/* Every line of a file through check_line; the file ends with a whole line. */
static void check_file(struct expect *e, const char *path)
{
	size_t len;
	char *b = slurp(path, &len);
	cr_assert(len == 0 || b[len - 1] == '\n', "%s ends in a torn line", path);
	for (char *s = b, *nl; *s; s = nl + 1) {
		nl = strchr(s, '\n');
		*nl = 0;
		check_line(e, s);
	}
	free(b);
}

/* ---- writers ---------------------------------------------------------------------- */

struct wres {
	uint64_t written, dropped;
	unsigned progress[MAXT]; /* records confirmed written, per thread */
};

struct wplan {
	const char *url;
	int w, threads;
	unsigned count;  /* records per thread; 0: for ever */
	size_t plen_max; /* payload bytes: 0 .. plen_max, varying */
	unsigned flags;
	struct wres *res; /* shared memory */
	ipcx_log *l;
	int t;
	struct t_sync *ready;
};

static void *write_thread(void *arg)
{
	struct wplan *p = arg;
	char m[8192];
	for (unsigned seq = 0; !p->count || seq < p->count; seq++) {
		size_t plen = p->plen_max ? (seq * 37u + (unsigned)p->t * 11u) % (p->plen_max + 1) : 0;
		int n = message(p->w, p->t, seq, plen, m, sizeof(m));
		int r = ipcx_log_write(p->l, IPCX_LOG_INFO, m, (size_t)n);
		if (r != 0 && r != -ENOBUFS)
			return (void *)(intptr_t)r;
		if (r == 0)
			__atomic_store_n(&p->res->progress[p->t], seq + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Writer w: threads share one handle; when done, one last record carries any drops. */
static int writer(void *arg)
{
	struct wplan *p = arg;
	if (ipcx_log_open(p->url, "tester", p->flags, &p->l) < 0)
		return 1;
	if (p->ready)
		t_post(p->ready);
	pthread_t th[MAXT];
	struct wplan per[MAXT];
	for (int t = 0; t < p->threads; t++) {
		per[t] = *p;
		per[t].t = t;
		pthread_create(&th[t], NULL, write_thread, &per[t]);
	}
	int bad = 0;
	for (int t = 0; t < p->threads; t++) {
		void *r;
		pthread_join(th[t], &r);
		bad |= r != NULL;
	}
	/* The end: retried until it gets through, so no drop stays unreported. */
	char m[64];
	int n = message(p->w, MAXT - 1, 0, 0, m, sizeof(m));
	int r;
	while ((r = ipcx_log_write(p->l, IPCX_LOG_INFO, m, (size_t)n)) == -ENOBUFS)
		;
	struct ipcx_log_stats st;
	ipcx_log_stats(p->l, &st);
	p->res->written = st.written;
	p->res->dropped = st.dropped;
	return bad ? 2 : r ? 3 : ipcx_log_close(p->l) ? 4 : 0;
}

static struct wres *shared_results(int n)
{
	void *m = mmap(NULL, sizeof(struct wres) * (size_t)n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	return m;
}

/* Drain until the drain has written `records` records (a guard bounds it). */
static void drain_until(ipcx_logd *d, uint64_t records)
{
	struct ipcx_logd_stats st = { 0 };
	int64_t guard = 0;
	while (ipcx_logd_stats(d, &st) == 0 && st.records < records) {
		ssize_t n = ipcx_logd_run(d, 1000);
		cr_assert(n >= 0 || n == -ETIMEDOUT, "run: %zd", n);
		guard = n > 0 ? 0 : guard + 1;
		cr_assert_lt(guard, 60, "nothing came for a minute (%llu of %llu)",
			     (unsigned long long)st.records, (unsigned long long)records);
	}
}

/* Have these children all exited?  (They stay to be reaped by t_join.) */
static bool all_exited(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)pids[i], &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0)
			return false;
	}
	return true;
}

/* Drain while the writers run, until they have all exited. */
static void drain_while(ipcx_logd *d, const pid_t *pids, int n)
{
	int64_t guard = 0;
	while (!all_exited(pids, n)) {
		ssize_t r = ipcx_logd_run(d, 100);
		cr_assert(r >= 0 || r == -ETIMEDOUT, "run: %zd", r);
		guard = r > 0 ? 0 : guard + 1;
		cr_assert_lt(guard, 600, "the writers are stuck");
	}
}

static void drain_all(ipcx_logd *d)
{
	ssize_t n;
	while ((n = ipcx_logd_run(d, 0)) >= 0)
		;
	cr_assert(n == -EAGAIN, "run: %zd", n);
}

/* ---- several processes and threads at once ----------------------------------------- */

/*
 * Writer processes, each with threads sharing its handle, write at once;
 * the drain runs meanwhile.  Every record appears exactly once, whole, in
 * each writer thread's order.
 */
static void many_writers(const char *url, int nw, int threads, unsigned count, size_t plen,
			 unsigned flags, bool gaps_ok)
{
	const char *out = t_path("many.txt");
	struct ipcx_logd_opts o = { .out = out };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0, "%s", ipcx_errdetail());
	struct wres *res = shared_results(nw);
	struct wplan plan[MAXW];
	struct expect e = { .nw = nw, .gaps_ok = gaps_ok };
	for (int w = 0; w < nw; w++) {
		plan[w] = (struct wplan){ .url = url, .w = w, .threads = threads, .count = count,
					  .plen_max = plen, .flags = flags, .res = &res[w] };
		e.pid[w] = t_spawn(writer, &plan[w]);
	}
	/* Every record, and each writer's end record, is a line; drops are not. */
	uint64_t total = (uint64_t)nw * ((uint64_t)threads * count + 1);
	drain_while(d, e.pid, nw);
	for (int w = 0; w < nw; w++)
		cr_assert_eq(t_join(e.pid[w], T_GUARD_MS), 0, "writer %d", w);
	drain_all(d);
	struct ipcx_logd_stats st;
	ipcx_logd_stats(d, &st);
	cr_assert_eq(ipcx_logd_close(d), 0);
	check_file(&e, out);
	uint64_t written = 0, dropped = 0;
	for (int w = 0; w < nw; w++) {
		written += res[w].written;
		dropped += res[w].dropped;
		cr_expect_eq(e.drops[w], res[w].dropped, "writer %d: %llu dropped, %llu reported", w,
			     (unsigned long long)res[w].dropped, (unsigned long long)e.drops[w]);
		if (!gaps_ok)
			for (int t = 0; t < threads; t++)
				cr_expect_eq(e.next[w][t], count, "writer %d.%d", w, t);
	}
	cr_expect_eq(written, st.records, "every record written is in the file");
	cr_expect_eq(dropped, st.dropped);
	if (!gaps_ok)
		cr_expect(written == total && dropped == 0);
	munmap(res, sizeof(*res) * (size_t)nw);
}

Test(log, many_processes_and_threads_exactly_once_shm)
{
	char url[URL_MAX];
	many_writers(shm_url(url, "capacity=65536&max=4096&policy=block"), 3, 3, 2000, 200,
		     IPCX_LOG_BLOCK, false);
}

Test(log, many_processes_exactly_once_mmap)
{
	char url[URL_MAX];
	many_writers(mmap_url(url, "many", "capacity=65536&max=4096&policy=block"), 4, 1, 3000, 100,
		     IPCX_LOG_BLOCK, false);
}

/*
 * The default policy with a drain that cannot keep up: writers never wait,
 * and every gap in a writer's records is exactly what the line before the
 * next one says.
 */
Test(log, drops_reported_where_they_happened)
{
	char url[URL_MAX];
	many_writers(shm_url(url, "capacity=4096&max=1024"), 3, 1, 3000, 300, 0, true);
}

/* ---- a full log, exactly ------------------------------------------------------------- */

Test(log, full_log_counts_drops_exactly)
{
	char url[URL_MAX];
	mmap_url(url, "full", "capacity=4096&max=512");
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, "full", 0, &l), 0);
	int ok = 0, dropped = 0;
	for (int i = 0; i < 300; i++) {
		int r = ipcx_log_printf(l, IPCX_LOG_NOTICE, "record %03d", i);
		cr_assert(r == 0 || r == -ENOBUFS, "%d", r);
		ok += r == 0;
		dropped += r == -ENOBUFS;
	}
	/* 40 header + 4 name + 10 message bytes: one 64-byte cell each, 64 cells. */
	cr_expect_eq(ok, 64);
	cr_expect_eq(dropped, 300 - 64);
	struct ipcx_log_stats ls;
	cr_assert_eq(ipcx_log_stats(l, &ls), 0);
	cr_expect(ls.written == 64 && ls.dropped == 236 && ls.pending == 236);
	/* The log itself counted them: what `ipcx ls` shows. */
	ipcx_chan *c;
	struct ipcx_stats rs;
	cr_assert_eq(ipcx_dial(url, 0, &c), 0);
	cr_assert_eq(ipcx_stats(c, &rs), 0);
	cr_expect_eq(rs.dropped, 236);
	cr_expect_eq(rs.depth, 64);
	cr_expect_eq(rs.receivers, 0, "no drain yet");
	ipcx_close(c);

	const char *out = t_path("full.txt");
	struct ipcx_logd_opts o = { .out = out, .format = "%l %n: %s" };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	cr_assert_eq(ipcx_dial(url, 0, &c), 0);
	cr_assert_eq(ipcx_stats(c, &rs), 0);
	cr_expect_eq(rs.receivers, 1, "the drain is attached");
	drain_all(d);
	cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_NOTICE, "after %d", 1), 0);
	drain_all(d);
	cr_assert_eq(ipcx_log_close(l), 0);
	struct ipcx_logd_stats st;
	ipcx_logd_stats(d, &st);
	cr_expect_eq(st.records, 65);
	cr_expect_eq(st.dropped, 236);
	ipcx_logd_close(d);
	cr_assert_eq(ipcx_stats(c, &rs), 0);
	cr_expect_eq(rs.receivers, 0, "the drain is gone");
	ipcx_close(c);
	size_t len;
	char *b = slurp(out, &len);
	char want[8192];
	size_t k = 0;
	for (int i = 0; i < 64; i++)
		k += (size_t)snprintf(want + k, sizeof(want) - k, "notice full: record %03d\n", i);
	snprintf(want + k, sizeof(want) - k,
		 "warning full: 236 records dropped\nnotice full: after 1\n");
	cr_expect_str_eq(b, want);
	free(b);
}

/* Drops after a writer's last record: its close reports them in a record of their own. */
Test(log, close_reports_the_last_drops)
{
	char url[URL_MAX];
	mmap_url(url, "last", "capacity=4096&max=512");
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, "w", 0, &l), 0);
	for (int i = 0; i < 70; i++)
		ipcx_log_write(l, IPCX_LOG_INFO, "x", 1);
	struct ipcx_logd_opts o = { .out = t_path("last.txt"), .format = "%l %s",
				    .flags = 0 };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_all(d);
	cr_assert_eq(ipcx_log_close(l), 0);
	drain_all(d);
	ipcx_logd_close(d);
	size_t len;
	char *b = slurp(t_path("last.txt"), &len);
	cr_expect(strstr(b, "info x\nwarning 6 records dropped\n") && b + len == strstr(b, "warning") + 26,
		  "%s", b);
	free(b);
	/* The same in JSON: a record with the count and no message. */
	cr_assert_eq(ipcx_log_open(url, "w", 0, &l), 0);
	for (int i = 0; i < 70; i++)
		ipcx_log_write(l, IPCX_LOG_INFO, "x", 1);
	o.flags = IPCX_LOGD_JSON;
	o.out = t_path("last.json");
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_all(d);
	ipcx_log_close(l);
	drain_all(d);
	ipcx_logd_close(d);
	b = slurp(t_path("last.json"), &len);
	char *lastline = strrchr(b, '{');
	cr_expect(lastline && strstr(lastline, "\"dropped\":6}") && !strstr(lastline, "msg"), "%s",
		  lastline);
	free(b);
}

/* ---- what a record carries besides its message ---------------------------------------------- */

struct from_thread {
	ipcx_log *l;
	pid_t tid;
	int r;
};

static void *log_from_thread(void *arg)
{
	struct from_thread *f = arg;
	f->tid = gettid();
	f->r = ipcx_log_write(f->l, IPCX_LOG_DEBUG, "from a thread", 13);
	return NULL;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One line of "%t %m %p %T %n %l: %s", checked against what the writer was. */
static void check_stamped(const char *line, uint64_t w0, uint64_t w1, uint64_t m0, uint64_t m1,
			  pid_t tid, const char *level, const char *msg)
{
	struct tm tm = { 0 };
	unsigned long wns, msec, mns;
	int pid, t, off = 0;
	char name[80], lv[16];
	cr_assert_eq(sscanf(line, "%d-%d-%dT%d:%d:%d.%9luZ %lu.%9lu %d %d %79s %15[^:]: %n",
			    &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			    &tm.tm_sec, &wns, &msec, &mns, &pid, &t, name, lv, &off),
		     13, "'%s'", line);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	uint64_t wall = (uint64_t)timegm(&tm) * 1000000000u + wns;
	uint64_t mono = (uint64_t)msec * 1000000000u + mns;
	cr_expect(mono >= m0 && mono <= m1, "monotonic %lu not within %lu..%lu: '%s'", mono, m0,
		  m1, line);
	/* The wall clock is the monotonic one plus an offset up to 1 ms old (docs/log.md). */
	cr_expect(wall + 1000000 >= w0 && wall <= w1 + 1000000,
		  "wall clock %lu not within %lu..%lu: '%s'", wall, w0, w1, line);
	cr_expect_eq(pid, getpid(), "'%s'", line);
	cr_expect_eq(t, tid, "'%s'", line);
	cr_expect_str_eq(name, program_invocation_short_name, "the default name: '%s'", line);
	cr_expect_str_eq(lv, level, "'%s'", line);
	cr_expect_str_eq(line + off, msg, "'%s'", line);
}

/*
 * Each record carries its writer's wall-clock and monotonic time (read
 * between the test's clock reads before and after the call), its pid, the
 * writing thread's id and the program name (NULL: this program's).
 */
Test(log, records_carry_time_pid_tid_and_name)
{
	char url[URL_MAX];
	mmap_url(url, "stamp", NULL);
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, NULL, 0, &l), 0);
	uint64_t w0 = clock_ns(CLOCK_REALTIME), m0 = clock_ns(CLOCK_MONOTONIC);
	cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_NOTICE, "n=%d s=%s", 42, "x"), 0);
	struct from_thread f = { .l = l, .r = 1 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, log_from_thread, &f), 0);
	pthread_join(th, NULL);
	cr_assert_eq(f.r, 0);
	uint64_t m1 = clock_ns(CLOCK_MONOTONIC), w1 = clock_ns(CLOCK_REALTIME);
	cr_assert_eq(ipcx_log_close(l), 0);
	const char *out = t_path("stamp.txt");
	struct ipcx_logd_opts o = { .out = out, .format = "%t %m %p %T %n %l: %s" };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_all(d);
	ipcx_logd_close(d);
	size_t len;
	char *b = slurp(out, &len);
	char *second = strchr(b, '\n');
	cr_assert(second && strchr(second + 1, '\n') == b + len - 1, "two lines: %s", b);
	*second++ = 0;
	b[len - 1] = 0;
	check_stamped(b, w0, w1, m0, m1, gettid(), "notice", "n=42 s=x");
	check_stamped(second, w0, w1, m0, m1, f.tid, "debug", "from a thread");
	cr_expect_neq(f.tid, gettid());
	free(b);
}

/* ---- writers killed at random ----------------------------------------------------------- */

Test(log, killed_writers_leave_no_torn_record)
{
	char url[URL_MAX];
	shm_url(url, "capacity=262144&max=8192&policy=block");
	const char *out = t_path("killed.txt");
	struct ipcx_logd_opts o = { .out = out };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	enum { NW = 4 };
	struct wres *res = shared_results(NW);
	struct wplan plan[NW];
	struct expect e = { .nw = NW };
	unsigned kill_at[NW];
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int w = 0; w < NW; w++) {
		/* Large records (up to 4 KiB): a kill lands in a copy as often as not. */
		plan[w] = (struct wplan){ .url = url, .w = w, .threads = 1 + w % 2, .count = 0,
					  .plen_max = 4000, .flags = IPCX_LOG_BLOCK, .res = &res[w] };
		kill_at[w] = 200 + (unsigned)rand() % 3000;
		e.pid[w] = t_spawn(writer, &plan[w]);
	}
	int alive = NW;
	bool dead[NW] = { false };
	int64_t guard = 0;
	while (alive) {
		ssize_t n = ipcx_logd_run(d, 100);
		cr_assert(n >= 0 || n == -ETIMEDOUT, "run: %zd", n);
		guard = n > 0 ? 0 : guard + 1;
		cr_assert_lt(guard, 600, "the writers stopped");
		for (int w = 0; w < NW; w++) {
			if (dead[w] || __atomic_load_n(&res[w].progress[0], __ATOMIC_ACQUIRE) < kill_at[w])
				continue;
			kill(e.pid[w], SIGKILL);
			cr_assert_eq(t_join(e.pid[w], T_GUARD_MS), 128 + SIGKILL);
			dead[w] = true;
			alive--;
		}
	}
	drain_all(d); /* records of the dead, and their half-made ones repaired */
	ipcx_logd_close(d);
	check_file(&e, out);
	for (int w = 0; w < NW; w++)
		for (int t = 0; t < plan[w].threads; t++) {
			unsigned conf = res[w].progress[t];
			cr_expect(e.next[w][t] == conf || e.next[w][t] == conf + 1,
				  "writer %d.%d: confirmed %u, %u in the file", w, t, conf,
				  e.next[w][t]);
		}
	munmap(res, sizeof(*res) * NW);
}

/*
 * The same, made on purpose: a writer dies between its reservation and its
 * commit, half of its record copied (what log.c does in between), while a
 * record of another writer follows it.  The half-made record never reaches
 * the output; the ring counts it dropped; the records around it are whole.
 */
struct half {
	const char *url;
};

static int die_mid_record(void *arg)
{
	const struct half *h = arg;
	ipcx_chan *c;
	void *slot;
	if (ipcx_dial(h->url, 0, &c) < 0 || ipcx_reserve(c, 2000, -1, &slot) < 0)
		return 1;
	struct log_rec_hdr hd = { .magic = LOG_REC_MAGIC, .level = 6, .name_len = 4,
				  .pid = (uint32_t)getpid(), .tid = (uint32_t)getpid() };
	memcpy(slot, &hd, sizeof(hd));
	memcpy((char *)slot + sizeof(hd), "half", 4);
	memset((char *)slot + sizeof(hd) + 4, 'h', 900); /* of 1956 bytes of message */
	raise(SIGKILL);
	return 2;
}

static void writer_dies_mid_record(const char *url, const char *out)
{
	struct ipcx_logd_opts o = { .out = out, .format = "%n: %s" };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0, "%s", ipcx_errdetail());
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, "w", IPCX_LOG_BLOCK, &l), 0);
	cr_assert_eq(ipcx_log_write(l, IPCX_LOG_INFO, "before", 6), 0);
	struct half h = { url };
	cr_assert_eq(t_join(t_spawn(die_mid_record, &h), T_GUARD_MS), 128 + SIGKILL);
	/* Behind the dead claim: the writer or the drain repairs it. */
	cr_assert_eq(ipcx_log_write(l, IPCX_LOG_INFO, "after", 5), 0);
	drain_until(d, 2);
	drain_all(d);
	struct ipcx_logd_stats st;
	ipcx_logd_stats(d, &st);
	cr_expect_eq(st.records, 2);
	cr_expect_eq(st.invalid, 0);
	ipcx_chan *c;
	struct ipcx_stats rs;
	cr_assert_eq(ipcx_dial(url, 0, &c), 0);
	cr_assert_eq(ipcx_stats(c, &rs), 0);
	cr_expect_eq(rs.dropped, 1, "the half-made record is counted lost");
	cr_expect_eq(rs.depth, 0);
	ipcx_close(c);
	cr_expect_eq(ipcx_log_close(l), 0);
	cr_expect_eq(ipcx_logd_close(d), 0);
	size_t len;
	char *b = slurp(out, &len);
	cr_expect_str_eq(b, "w: before\nw: after\n");
	free(b);
}

Test(log, writer_killed_between_reserve_and_commit)
{
	char url[URL_MAX];
	writer_dies_mid_record(shm_url(url, "capacity=65536&max=4096&policy=block"),
			       t_path("half-shm.txt"));
	writer_dies_mid_record(mmap_url(url, "half", "capacity=65536&max=4096&policy=block"),
			       t_path("half-mmap.txt"));
}

/* ---- the drain killed at random ------------------------------------------------------------ */

struct dplan {
	const char *url, *out;
	struct t_sync *open;
	uint64_t *skipped; /* shared: records found already written, over all drains */
};

static int drain_forever(void *arg)
{
	struct dplan *p = arg;
	struct ipcx_logd_opts o = { .out = p->out };
	ipcx_logd *d;
	int r = ipcx_logd_open(p->url, &o, &d);
	t_post(p->open);
	if (r < 0)
		return 1;
	for (bool first = true;; first = false) {
		ssize_t n = ipcx_logd_run(d, 1000);
		if (n < 0 && n != -ETIMEDOUT)
			return 2;
		struct ipcx_logd_stats st;
		if (first && ipcx_logd_stats(d, &st) == 0)
			__atomic_fetch_add(p->skipped, st.skipped, __ATOMIC_RELAXED);
	}
}

static void spin_us(unsigned us)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

/*
 * An mmap: log with writers that wait for room, and a drain killed with
 * SIGKILL at random moments (in its write, between the write and the
 * take, in the take ...) and started again: nothing lost, nothing twice.
 */
Test(log, killed_drain_loses_and_repeats_nothing)
{
	char url[URL_MAX];
	mmap_url(url, "dk", "capacity=65536&max=1024&policy=block");
	const char *out = t_path("dk.txt");
	enum { NW = 2, COUNT = 6000 };
	struct wres *res = shared_results(NW);
	struct wplan plan[NW];
	struct expect e = { .nw = NW };
	struct t_sync ready;
	t_sync_init(&ready);
	for (int w = 0; w < NW; w++) {
		plan[w] = (struct wplan){ .url = url, .w = w, .threads = 1, .count = COUNT,
					  .plen_max = 60, .flags = IPCX_LOG_BLOCK, .res = &res[w],
					  .ready = &ready };
		e.pid[w] = t_spawn(writer, &plan[w]);
		cr_assert(t_wait_post(&ready, T_GUARD_MS), "writer %d opened", w);
	}
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	struct t_sync open;
	t_sync_init(&open);
	uint64_t *skipped = (uint64_t *)shared_results(1);
	struct dplan dp = { url, out, &open, skipped };
	int rounds = 0, idle = 0;
	unsigned seen = 0, most = 6000;
	while (res[0].progress[0] < COUNT || res[1].progress[0] < COUNT) {
		unsigned now = res[0].progress[0] + res[1].progress[0];
		idle = now > seen ? 0 : idle + 1;
		seen = now;
		/*
		 * A drain killed before it gets anything done (a loaded machine, a
		 * sanitizer build) gets longer next time: up to a second.
		 */
		most = idle ? (most < 500000 ? most * 2 : 1000000) : 6000;
		cr_assert_lt(idle, 100, "the writers make no progress");
		rounds++;
		pid_t pid = t_spawn(drain_forever, &dp);
		cr_assert(t_wait_post(&open, T_GUARD_MS));
		spin_us((unsigned)rand() % most);
		kill(pid, SIGKILL);
		int st = t_join(pid, T_GUARD_MS);
		cr_assert(st == 128 + SIGKILL, "the drain failed: %d", st);
	}
	/* A last drain, kept: the writers' end records may still wait for room. */
	struct ipcx_logd_opts o = { .out = out };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_while(d, e.pid, NW);
	for (int w = 0; w < NW; w++)
		cr_assert_eq(t_join(e.pid[w], T_GUARD_MS), 0);
	drain_all(d);
	ipcx_logd_close(d);
	check_file(&e, out);
	for (int w = 0; w < NW; w++)
		cr_expect_eq(e.next[w][0], COUNT, "writer %d: %u of %u", w, e.next[w][0], COUNT);
	cr_expect_eq(e.lines, NW * (COUNT + 1), "every record once, the end records too");
	cr_log_info("%d drains killed; %llu records found already written by the drain before",
		    rounds, (unsigned long long)*skipped);
	munmap(skipped, sizeof(struct wres));
	t_sync_close(&open);
	t_sync_close(&ready);
	munmap(res, sizeof(*res) * NW);
}

/*
 * The state a drain killed between its write and its take leaves, made on
 * purpose: a copy of the log is drained into the file (as the killed drain
 * did), the file is cut in the middle of a line, and a drain of the real
 * log then writes only what is missing, once.
 */
Test(log, resume_after_write_before_take)
{
	char url[URL_MAX], copy[URL_MAX];
	mmap_url(url, "rs", "capacity=65536&max=512");
	mmap_url(copy, "rs-copy", NULL);
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, "rs", 0, &l), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_INFO, "line %d", i), 0);
	cr_assert_eq(ipcx_log_close(l), 0);
	size_t len;
	char *log = slurp(t_path("rs"), &len);
	int fd = open(t_path("rs-copy"), O_CREAT | O_WRONLY | O_EXCL, 0600);
	cr_assert_eq(write(fd, log, len), (ssize_t)len);
	close(fd);
	free(log);
	const char *out = t_path("rs.txt");
	struct ipcx_logd_opts o = { .out = out };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(copy, &o, &d), 0);
	drain_all(d);
	ipcx_logd_close(d);
	char *full = slurp(out, &len);
	/* Keep six whole lines and half of the seventh. */
	char *cut = full;
	for (int i = 0; i < 6; i++)
		cut = strchr(cut, '\n') + 1;
	cut += 10;
	cr_assert_eq(truncate(out, cut - full), 0);
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_all(d);
	struct ipcx_logd_stats st;
	ipcx_logd_stats(d, &st);
	cr_expect_eq(st.skipped, 6);
	cr_expect_eq(st.records, 4);
	ipcx_logd_close(d);
	char *again = slurp(out, &len);
	cr_expect_str_eq(again, full, "the file is as one drain would have made it");
	free(again);
	free(full);
}

/* ---- rotation and reopening ------------------------------------------------------------------ */

static long count_lines(const char *path, int *first, int *last)
{
	size_t len;
	char *b = slurp(path, &len);
	long n = 0;
	for (char *s = b; *s; s = strchr(s, '\n') + 1) {
		int v;
		cr_assert_eq(sscanf(s, "r %d", &v), 1, "%s", s);
		if (!n)
			*first = v;
		*last = v;
		n++;
	}
	free(b);
	return n;
}

Test(log, rotation_keeps_n_files)
{
	char url[URL_MAX];
	mmap_url(url, "rot", "capacity=1048576&max=512");
	const char *out = t_path("rot.txt");
	struct ipcx_logd_opts o = { .out = out, .format = "%s", .rotate_size = 1900, .keep = 2 };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, NULL, 0, &l), 0);
	/* 20 lines of 99 bytes a batch: a rotation after every batch. */
	int next = 0;
	for (int b = 0; b < 5; b++) {
		for (int i = 0; i < 20; i++, next++)
			cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_INFO, "r %05d %0*d", next, 90, 0), 0);
		cr_assert_eq(ipcx_logd_run(d, 0), 20);
	}
	struct ipcx_logd_stats st;
	ipcx_logd_stats(d, &st);
	cr_expect_eq(st.rotations, 5);
	int f, la;
	char one[600], two[600], three[600];
	snprintf(one, sizeof(one), "%s.1", out);
	snprintf(two, sizeof(two), "%s.2", out);
	snprintf(three, sizeof(three), "%s.3", out);
	cr_expect_eq(count_lines(one, &f, &la), 20);
	cr_expect(f == 80 && la == 99, "FILE.1 holds the newest: %d..%d", f, la);
	cr_expect_eq(count_lines(two, &f, &la), 20);
	cr_expect(f == 60 && la == 79, "FILE.2: %d..%d", f, la);
	cr_expect_eq(access(three, F_OK), -1, "only two kept");
	struct stat s;
	cr_expect(stat(out, &s) == 0 && s.st_size == 0 && (s.st_mode & 0777) == 0600);
	/* Moved away by someone else, then reopened: new lines go to a new file. */
	char moved[600];
	snprintf(moved, sizeof(moved), "%s.moved", out);
	cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_INFO, "r %05d", next++), 0);
	cr_assert_eq(ipcx_logd_run(d, 0), 1);
	cr_assert_eq(rename(out, moved), 0);
	cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_INFO, "r %05d", next++), 0);
	cr_assert_eq(ipcx_logd_reopen(d), 0);
	cr_assert_eq(ipcx_logd_run(d, 0), 1);
	cr_expect(count_lines(moved, &f, &la) == 1 && f == 100);
	cr_expect(count_lines(out, &f, &la) == 1 && f == 101);
	ipcx_log_close(l);
	ipcx_logd_close(d);
}

/* ---- hostile and odd records --------------------------------------------------------------- */

static void raw_record(ipcx_chan *c, const struct log_rec_hdr *h, const char *name, size_t nlen,
		       const char *msg, size_t mlen)
{
	char b[1024];
	memcpy(b, h, sizeof(*h));
	memcpy(b + sizeof(*h), name, nlen);
	memcpy(b + sizeof(*h) + nlen, msg, mlen);
	cr_assert_eq(ipcx_send(c, b, sizeof(*h) + nlen + mlen, 0), (ssize_t)(sizeof(*h) + nlen + mlen));
}

/*
 * A writer that writes anything at all into the log: each bad record is one
 * line that says so, a good one cannot make a second line or a control
 * character, and JSON stays valid.
 */
Test(log, hostile_records_stay_in_their_line)
{
	char url[URL_MAX];
	mmap_url(url, "evil", "capacity=65536&max=512");
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(url, 0, &c), 0);
	struct log_rec_hdr h = { .magic = LOG_REC_MAGIC, .level = 6, .name_len = 3, .pid = 1,
				 .tid = 2, .wall_ns = 1, .mono_ns = 2 };
	const char *fake = "fake\n2026-01-01T00:00:00Z x[1/1] emerg: \x1b[31m\x7f";
	raw_record(c, &h, "bad", 3, fake, strlen(fake));
	cr_assert_eq(ipcx_send(c, "short", 5, 0), 5);
	struct log_rec_hdr bad = h;
	bad.magic = 0;
	raw_record(c, &bad, "bad", 3, "m", 1);
	bad = h;
	bad.level = 9;
	raw_record(c, &bad, "bad", 3, "m", 1);
	bad = h;
	bad.name_len = 200;
	raw_record(c, &bad, "bad", 3, "m", 1);
	bad = h;
	bad.flags = LOG_REC_DROPS; /* a drop report must carry drops and no message */
	raw_record(c, &bad, "bad", 3, "m", 1);
	bad = h;
	bad.wall_ns = UINT64_MAX;
	bad.dropped = UINT64_MAX;
	bad.name_len = 2;
	raw_record(c, &bad, "\xff\xfe", 2, "\xc0\xaf \xed\xa0\x80 ok \xe2\x82\xac", 14);
	ipcx_close(c);
	struct ipcx_logd_opts o = { .out = t_path("evil.txt") };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_all(d);
	struct ipcx_logd_stats st;
	ipcx_logd_stats(d, &st);
	cr_expect_eq(st.records, 7);
	cr_expect_eq(st.invalid, 5);
	ipcx_logd_close(d);
	size_t len;
	char *b = slurp(t_path("evil.txt"), &len);
	int lines = 0;
	for (size_t i = 0; i < len; i++) {
		lines += b[i] == '\n';
		cr_expect(b[i] == '\n' || ((unsigned char)b[i] >= 0x20 && b[i] != 0x7f),
			  "a control byte at %zu", i);
	}
	cr_expect_eq(lines, 8, "seven records, one with a drop line:\n%s", b);
	cr_expect(strstr(b, "bad[1/2] info: fake\\n2026-01-01T00:00:00Z x[1/1] emerg: \\x1b[31m\\x7f\n"),
		  "%s", b);
	cr_expect(strstr(b, "invalid record") && strstr(b, "not a log record"), "%s", b);
	free(b);

	/* JSON: the same records, every line an object, strings valid UTF-8. */
	cr_assert_eq(ipcx_dial(url, 0, &c), 0);
	raw_record(c, &h, "bad", 3, "q\"\\\n\x01", 5);
	bad = h;
	bad.dropped = 3;
	bad.name_len = 1;
	raw_record(c, &bad, "\xff", 1, "\xc3\xa9t\xc3", 4);
	ipcx_close(c);
	o = (struct ipcx_logd_opts){ .out = t_path("evil.json"), .flags = IPCX_LOGD_JSON };
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_all(d);
	ipcx_logd_close(d);
	b = slurp(t_path("evil.json"), &len);
	cr_expect(strstr(b, "\"prog\":\"bad\",\"pid\":1,\"tid\":2,\"msg\":\"q\\\"\\\\\\u000a\\u0001\"}\n"),
		  "%s", b);
	cr_expect(strstr(b, "\"prog\":\"\\ufffd\",\"pid\":1,\"tid\":2,\"dropped\":3,\"msg\":\"\xc3\xa9t\\ufffd\"}\n"),
		  "%s", b);
	free(b);
}

/* Long printf messages are formatted in place; longer than the log's largest record, cut. */
Test(log, long_and_cut_messages)
{
	char url[URL_MAX];
	mmap_url(url, "long", "capacity=65536&max=2048");
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, "long", 0, &l), 0);
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_INFO, "%.1000s|", big), 0);
	cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_INFO, "%s|", big), 0);
	cr_assert_eq(ipcx_log_write(l, IPCX_LOG_INFO, big, 4999), 0);
	cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_INFO, "%s", ""), 0);
	cr_expect_eq(ipcx_log_write(l, 8, "x", 1), -EINVAL);
	cr_expect_eq(ipcx_log_write(l, -1, "x", 1), -EINVAL);
	cr_expect_eq(ipcx_log_write(l, 0, NULL, 1), -EINVAL);
	ipcx_log_close(l);
	struct ipcx_logd_opts o = { .out = t_path("long.txt"), .format = "%s" };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	drain_all(d);
	ipcx_logd_close(d);
	size_t len;
	char *b = slurp(t_path("long.txt"), &len);
	/* 2048 - 40 header - 4 name = 2004 bytes of message at most. */
	char want[8192];
	size_t k = (size_t)snprintf(want, sizeof(want), "%.1000s|\n", big);
	k += (size_t)snprintf(want + k, sizeof(want) - k, "%.2003s [truncated]\n", big);
	k += (size_t)snprintf(want + k, sizeof(want) - k, "%.2004s [truncated]\n\n", big);
	cr_expect_str_eq(b, want);
	free(b);
}

Test(log, levels)
{
	const char *names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };
	for (int i = 0; i < 8; i++) {
		cr_expect_str_eq(ipcx_log_level_name(i), names[i]);
		cr_expect_eq(ipcx_log_level_parse(names[i]), i);
	}
	cr_expect_null(ipcx_log_level_name(8));
	cr_expect_eq(ipcx_log_level_parse("error"), IPCX_LOG_ERR);
	cr_expect_eq(ipcx_log_level_parse("warn"), IPCX_LOG_WARNING);
	cr_expect_eq(ipcx_log_level_parse("loud"), -EINVAL);
	cr_expect_eq(ipcx_log_level_parse(NULL), -EINVAL);
}

/* ---- one drain; the handle after fork(); other channels ----------------------------------------- */

Test(log, one_drain_per_log)
{
	ipcx_logd *a, *b;
	char url[URL_MAX];
	mmap_url(url, "one", NULL);
	cr_assert_eq(ipcx_logd_open(url, NULL, &a), 0);
	cr_expect_eq(ipcx_logd_open(url, NULL, &b), -EBUSY);
	ipcx_logd_close(a);
	cr_assert_eq(ipcx_logd_open(url, NULL, &b), 0, "free again");
	ipcx_logd_close(b);
	shm_url(url, NULL);
	cr_assert_eq(ipcx_logd_open(url, NULL, &a), 0);
	cr_expect_eq(ipcx_logd_open(url, NULL, &b), -EBUSY);
	ipcx_logd_close(a);
	ipcx_log *l;
	cr_expect_eq(ipcx_log_open(url, NULL, 0, &l), -ECONNREFUSED, "a shm: log is made by its drain");
	struct ipcx_logd_opts bad = { .format = "%q" };
	cr_expect_eq(ipcx_logd_open(url, &bad, &a), -EINVAL);
	bad = (struct ipcx_logd_opts){ .flags = 0x100 };
	cr_expect_eq(ipcx_logd_open(url, &bad, &a), -EINVAL);
	cr_expect_eq(ipcx_log_open(url, NULL, 0x100, &l), -EINVAL);
}

/*
 * A peer that cuts the log short (docs/shm.md, "Trust") while the drain is
 * idle: the drain says so (-EBADMSG) instead of dying of SIGBUS.
 */
Test(log, idle_drain_survives_a_cut)
{
	char url[URL_MAX];
	mmap_url(url, "cut", "capacity=65536&max=512");
	struct ipcx_logd_opts o = { .out = t_path("cut.txt") };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, NULL, 0, &l), 0);
	cr_assert_eq(ipcx_log_write(l, IPCX_LOG_INFO, "before", 6), 0);
	cr_assert_eq(ipcx_logd_run(d, 0), 1);
	cr_assert_eq(ipcx_logd_run(d, 0), -EAGAIN, "idle");
	cr_assert_eq(truncate(t_path("cut"), 0), 0);
	cr_expect_eq(ipcx_logd_run(d, 10), -EBADMSG, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_logd_run(d, 0), -EBADMSG, "and so does every later call");
	cr_expect_eq(ipcx_logd_close(d), 0);
	cr_expect_eq(ipcx_log_close(l), 0);
}

static int child_uses_parent_handle(void *arg)
{
	ipcx_log *l = arg;
	return ipcx_log_write(l, IPCX_LOG_INFO, "x", 1) == -ECHILD ? 0 : 1;
}

Test(log, forked_child_opens_its_own)
{
	char url[URL_MAX];
	mmap_url(url, "fork", NULL);
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, NULL, 0, &l), 0);
	cr_expect_eq(t_join(t_spawn(child_uses_parent_handle, l), T_GUARD_MS), 0);
	cr_expect_eq(ipcx_log_write(l, IPCX_LOG_INFO, "x", 1), 0, "the parent's still works");
	ipcx_log_close(l);
}

/* Over a socket: slower, records taken before they are written, same lines. */
Test(log, over_a_unix_socket)
{
	char url[URL_MAX];
	snprintf(url, sizeof(url), "unix:%s", t_path("sock"));
	struct ipcx_logd_opts o = { .out = t_path("sock.txt"), .format = "%l %n: %s" };
	ipcx_logd *d;
	cr_assert_eq(ipcx_logd_open(url, &o, &d), 0);
	ipcx_log *l;
	cr_assert_eq(ipcx_log_open(url, "sock", 0, &l), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(ipcx_log_printf(l, IPCX_LOG_DEBUG, "n %d", i), 0);
	drain_until(d, 100);
	ipcx_log_close(l);
	ipcx_logd_close(d);
	size_t len;
	char *b = slurp(t_path("sock.txt"), &len);
	char want[4096];
	size_t k = 0;
	for (int i = 0; i < 100; i++)
		k += (size_t)snprintf(want + k, sizeof(want) - k, "debug sock: n %d\n", i);
	cr_expect_str_eq(b, want);
	free(b);
}
