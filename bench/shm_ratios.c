/*
 * ipcx-shm-ratios: the shm: ring against the fastest thing possible on this
 * machine, measured in one run, printed as the ratios issue 4 sets:
 *
 *   64-byte round trip, median        ipcx shm / raw spin ping-pong  (<= 1.5)
 *                                      ZeroMQ ipc / ipcx shm           (>= 100)
 *   64-byte messages one way, rate    ipcx shm / raw SPSC spin ring  (>= 0.5)
 *   1 MiB messages one way, bandwidth ipcx shm / raw SPSC spin ring  (>= 0.7)
 *
 * The two sides are forked processes pinned to different CPUs.  The raw
 * baselines are written here, on an anonymous MAP_SHARED mapping, with no
 * checks at all: the cost of moving cache lines and nothing else.  ipcx is
 * used through the public API only (spsc=1, and a spin long enough that the
 * ping-pong never sleeps).  ZeroMQ is measured when the build found it.
 *
 * For a shared, noisy machine: every baseline and its ipcx counterpart run
 * back to back, in alternating order, REPS times after a warm-up; each
 * ratio is taken within a pair and judged by the median of the pairs, with
 * the spread and the count of pairs that meet the target printed beside
 * it.  Streams are timed by the receiver in steady state (see stamp_at).
 * Nothing is adjusted after the fact: the verdicts are the figures printed.
 *
 *   usage: ipcx-shm-ratios [-n ROUNDS] [-r REPS] [--cpus A,B]
 */
#include <errno.h>
#include <ipcx.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef SHM_RATIOS_ZMQ
#include <zmq.h>
#endif

#define BATCH 100 /* round trips timed together: the clock costs ~20 ns */

static int cpu_a = 0, cpu_b = 1;
static long rounds = 20000;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s) < 0)
		perror("sched_setaffinity");
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void *shared(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return m;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static pid_t fork_pinned(int cpu)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0)
		pin(cpu);
	return pid;
}

static void reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "ipcx-shm-ratios: a child failed (status %d)\n", st);
}

/* ---- raw baselines ------------------------------------------------------- */

struct pingpong {
	_Alignas(128) _Atomic uint64_t ping;
	_Alignas(128) _Atomic uint64_t pong;
	_Alignas(128) char msg[2][64];
};

/* Round trips of a 64-byte message through two spinning flags: median ns. */
static double raw_rtt(void)
{
	struct pingpong *p = shared(sizeof(*p));
	long nb = rounds / BATCH;
	pid_t pid = fork_pinned(cpu_b);
	if (pid == 0) {
		char buf[64];
		for (uint64_t i = 1; i <= (uint64_t)nb * BATCH; i++) {
			while (atomic_load_explicit(&p->ping, memory_order_acquire) != i)
				relax();
			memcpy(buf, p->msg[0], 64);
			memcpy(p->msg[1], buf, 64);
			atomic_store_explicit(&p->pong, i, memory_order_release);
		}
		_exit(0);
	}
	pin(cpu_a);
	double *v = calloc((size_t)nb, sizeof(double));
	char buf[64] = { 1 };
	uint64_t i = 0;
	for (long b = 0; b < nb; b++) {
		uint64_t t0 = now_ns();
		for (int k = 0; k < BATCH; k++) {
			i++;
			memcpy(p->msg[0], buf, 64);
			atomic_store_explicit(&p->ping, i, memory_order_release);
			while (atomic_load_explicit(&p->pong, memory_order_acquire) != i)
				relax();
			memcpy(buf, p->msg[1], 64);
		}
		v[b] = (double)(now_ns() - t0) / BATCH;
	}
	reap(pid);
	double m = median(v, (size_t)nb);
	free(v);
	munmap(p, sizeof(*p));
	return m;
}

/* A single-producer single-consumer ring of fixed slots, indices cached. */
struct rawring {
	_Alignas(128) _Atomic uint64_t head;
	_Alignas(128) _Atomic uint64_t tail;
	_Alignas(128) char data[];
};

/*
 * A stream is timed by its receiver, in steady state: the clock starts when
 * the receiver has taken `warm` messages (two laps of the ring: pages
 * touched, both sides running) and stops at the last.  The same for the raw
 * ring and for ipcx, so that neither's start-up (fork, attach, first page
 * faults) counts in a rate.
 */
struct stamps {
	_Atomic uint64_t t0, t1;
};

static inline void stamp_at(struct stamps *st, uint64_t got, uint64_t warm, uint64_t total)
{
	if (got == warm)
		atomic_store(&st->t0, now_ns());
	if (got == total)
		atomic_store(&st->t1, now_ns());
}

static double stamps_rate(struct stamps *st, long count)
{
	uint64_t t0 = atomic_load(&st->t0), t1 = atomic_load(&st->t1);
	munmap(st, sizeof(*st));
	if (!t0 || t1 <= t0) {
		fprintf(stderr, "ipcx-shm-ratios: a stream's receiver did not finish\n");
		exit(1);
	}
	return (double)count / ((double)(t1 - t0) / 1e9);
}

/* The raw ring's copy: a constant size for 64 bytes, so it is inlined too. */
static inline void raw_copy(void *d, const void *s, size_t size)
{
	if (size == 64)
		memcpy(d, s, 64);
	else
		memcpy(d, s, size);
}

/* Messages of size bytes one way through a raw ring: messages per second. */
static double raw_stream(size_t size, size_t slots, long count)
{
	size_t len = sizeof(struct rawring) + slots * size;
	struct rawring *r = shared(len);
	struct stamps *st = shared(sizeof(*st));
	uint64_t warm = 2 * slots, total = warm + (uint64_t)count;
	pid_t pid = fork_pinned(cpu_b);
	char *buf = malloc(size);
	memset(buf, 7, size);
	if (pid == 0) {
		uint64_t head = 0;
		for (uint64_t t = 0; t < total; t++) {
			while (t == head)
				head = atomic_load_explicit(&r->head, memory_order_acquire);
			raw_copy(buf, r->data + (t % slots) * size, size);
			atomic_store_explicit(&r->tail, t + 1, memory_order_release);
			stamp_at(st, t + 1, warm, total);
		}
		_exit(0);
	}
	pin(cpu_a);
	uint64_t tail = 0;
	for (uint64_t h = 0; h < total; h++) {
		while (h - tail >= slots)
			tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		raw_copy(r->data + (h % slots) * size, buf, size);
		atomic_store_explicit(&r->head, h + 1, memory_order_release);
	}
	reap(pid);
	free(buf);
	munmap(r, len);
	return stamps_rate(st, count);
}

/* ---- ipcx ---------------------------------------------------------------- */

static void die(int r, const char *what)
{
	fprintf(stderr, "ipcx-shm-ratios: %s: %s %s\n", what, ipcx_strerror(r), ipcx_errdetail());
	exit(1);
}

static ipcx_chan *listen_or_die(const char *url)
{
	ipcx_chan *c;
	int r = ipcx_listen(url, 0, &c);
	if (r < 0)
		die(r, url);
	return c;
}

static ipcx_chan *dial_or_die(const char *url)
{
	ipcx_chan *c;
	int r = ipcx_dial(url, 0, &c);
	if (r < 0)
		die(r, url);
	return c;
}

static void name(char *buf, size_t cap, const char *tag, const char *opts)
{
	snprintf(buf, cap, "shm:/ipcx-ratios-%d-%s?%s", (int)getpid(), tag, opts);
}

static double ipcx_rtt(const char *opts)
{
	char ua[256], ub[256];
	name(ua, sizeof(ua), "a", opts);
	name(ub, sizeof(ub), "b", opts);
	ipcx_chan *a = listen_or_die(ua), *b = listen_or_die(ub);
	long nb = rounds / BATCH;
	pid_t pid = fork_pinned(cpu_b);
	if (pid == 0) {
		ipcx_chan *in = dial_or_die(ua), *out = dial_or_die(ub);
		char buf[64];
		for (long i = 0; i < nb * BATCH; i++) {
			ssize_t n = ipcx_recv(in, buf, sizeof(buf), -1);
			if (n != 64)
				die((int)(n < 0 ? n : -EIO), "echo recv");
			if ((n = ipcx_send(out, buf, 64, -1)) != 64)
				die((int)(n < 0 ? n : -EIO), "echo send");
		}
		ipcx_close(in);
		ipcx_close(out);
		_exit(0);
	}
	pin(cpu_a);
	double *v = calloc((size_t)nb, sizeof(double));
	char buf[64] = { 1 };
	for (long bt = 0; bt < nb; bt++) {
		uint64_t t0 = now_ns();
		for (int k = 0; k < BATCH; k++) {
			if (ipcx_send(a, buf, 64, -1) != 64 || ipcx_recv(b, buf, sizeof(buf), -1) != 64)
				die(-EIO, "ping-pong");
		}
		v[bt] = (double)(now_ns() - t0) / BATCH;
	}
	reap(pid);
	ipcx_close(a);
	ipcx_close(b);
	double m = median(v, (size_t)nb);
	free(v);
	return m;
}

/* ring: bytes of ring (capacity=), for the warm-up of two laps. */
static double ipcx_stream(const char *opts, size_t ring, size_t size, long count)
{
	char u[256];
	name(u, sizeof(u), "s", opts);
	ipcx_chan *rx = listen_or_die(u);
	char *buf = malloc(size);
	memset(buf, 7, size);
	struct stamps *st = shared(sizeof(*st));
	uint64_t warm = 2 * (ring / (size < 64 ? 64 : size)), total = warm + (uint64_t)count;
	pid_t pid = fork_pinned(cpu_b);
	if (pid == 0) {
		ipcx_chan *c = dial_or_die(u);
		for (uint64_t i = 1; i <= total; i++) {
			ssize_t n = ipcx_recv(c, buf, size, -1);
			if (n != (ssize_t)size)
				die((int)(n < 0 ? n : -EIO), "stream recv");
			stamp_at(st, i, warm, total);
		}
		ipcx_close(c);
		_exit(0);
	}
	pin(cpu_a);
	ipcx_chan *tx = dial_or_die(u);
	for (uint64_t i = 0; i < total; i++)
		if (ipcx_send(tx, buf, size, -1) != (ssize_t)size)
			die(-EIO, "stream");
	reap(pid);
	ipcx_close(tx);
	ipcx_close(rx);
	free(buf);
	return stamps_rate(st, count);
}

/* ---- ZeroMQ -------------------------------------------------------------- */

#ifdef SHM_RATIOS_ZMQ
static double zmq_rtt(void)
{
	char ep[128];
	snprintf(ep, sizeof(ep), "ipc:///tmp/ipcx-ratios-%d.zmq", (int)getpid());
	long n = rounds / 20 > 2000 ? rounds / 20 : 2000; /* ZeroMQ is slow: fewer rounds */
	long nb = n / BATCH;
	pid_t pid = fork_pinned(cpu_b);
	if (pid == 0) {
		void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
		char buf[64];
		if (zmq_connect(s, ep) < 0)
			_exit(1);
		for (long i = 0; i < nb * BATCH; i++)
			if (zmq_recv(s, buf, sizeof(buf), 0) != 64 || zmq_send(s, buf, 64, 0) != 64)
				_exit(1);
		zmq_close(s);
		zmq_ctx_term(ctx);
		_exit(0);
	}
	pin(cpu_a);
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PAIR);
	if (zmq_bind(s, ep) < 0) {
		perror("zmq_bind");
		exit(1);
	}
	double *v = calloc((size_t)nb, sizeof(double));
	char buf[64] = { 1 };
	for (long bt = 0; bt < nb; bt++) {
		uint64_t t0 = now_ns();
		for (int k = 0; k < BATCH; k++)
			if (zmq_send(s, buf, 64, 0) != 64 || zmq_recv(s, buf, sizeof(buf), 0) != 64)
				exit(1);
		v[bt] = (double)(now_ns() - t0) / BATCH;
	}
	reap(pid);
	zmq_close(s);
	zmq_ctx_term(ctx);
	unlink(ep + strlen("ipc://")); /* ZeroMQ leaves its socket file */
	double m = median(v, (size_t)nb);
	free(v);
	return m;
}
#endif


/* ---- main ------------------------------------------------------------------ */

static void stamp(const char *when)
{
	char load[64] = "?";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (!fgets(load, sizeof(load), f))
			load[0] = '\0';
		fclose(f);
		load[strcspn(load, "\n")] = '\0';
	}
	time_t t = time(NULL);
	struct tm tm;
	char date[64];
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
	printf("%s: %s, load average %s\n", when, date, load);
}

/* One target: the ratio of each back-to-back pair, judged by their median. */
struct target {
	const char *what;
	double limit;
	bool at_most;
	double *q; /* per repetition */
};

static bool meets(const struct target *t, double q)
{
	return t->at_most ? q <= t->limit : q >= t->limit;
}

static bool report(const struct target *t, int reps)
{
	double *v = malloc((size_t)reps * sizeof(*v));
	memcpy(v, t->q, (size_t)reps * sizeof(*v));
	double med = median(v, (size_t)reps), lo = v[0], hi = v[reps - 1];
	int ok = 0;
	for (int k = 0; k < reps; k++)
		ok += meets(t, t->q[k]);
	bool holds = meets(t, med);
	printf("  %-40s %8.2f %8.2f %8.2f   %s %6.2f   %3d/%-3d  %s\n", t->what, med, lo, hi,
	       t->at_most ? "<=" : ">=", t->limit, ok, reps, holds ? "HOLDS" : "MISSED");
	free(v);
	return holds;
}

static double med_of(const double *v, int n)
{
	double *c = malloc((size_t)n * sizeof(*c));
	memcpy(c, v, (size_t)n * sizeof(*c));
	double m = median(c, (size_t)n);
	free(c);
	return m;
}

/*
 * A baseline and its ipcx counterpart, back to back; the order alternates
 * from one repetition to the next, so that neither side always runs first
 * (after the other's caches, or the other's turn of a noisy neighbour).
 */
#define PAIR(k, base, mine)                                                                 \
	do {                                                                                \
		if ((k) & 1) {                                                              \
			mine;                                                               \
			base;                                                               \
		} else {                                                                    \
			base;                                                               \
			mine;                                                               \
		}                                                                           \
	} while (0)

/*
 * The rings of the streams hold as many bytes as the raw rings (4096 x 64 B,
 * 8 x 1 MiB).  The round trip's holds four 64-byte messages, the smallest
 * ring there is: one message in flight needs no more, and on this machine a
 * ping-pong that rotates through more lines is slower (docs/shm.md).
 */
#define RTT_OPTS "spin=1000000&capacity=256&max=64"
#define S64_RING 262144
#define S64_OPTS "spin=1000000&capacity=262144"
#define S1M_RING 8388608
#define S1M_OPTS "spsc=1&spin=1000000&max=1048576&capacity=8388608"

int main(int argc, char **argv)
{
	int reps = 11;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			rounds = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cpus") && i + 1 < argc &&
			 sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b) == 2)
			;
		else {
			fprintf(stderr, "usage: ipcx-shm-ratios [-n ROUNDS] [-r REPS] [--cpus A,B]\n");
			return 2;
		}
	}
	if (rounds < 10 * BATCH)
		rounds = 10 * BATCH;
	if (reps < 1 || reps > 1000)
		reps = 11;
	long n64 = rounds * 50, n1m = rounds / 40 > 200 ? rounds / 40 : 200;
	size_t mib = 1 << 20;
	stamp("ipcx-shm-ratios start");
	printf("CPUs %d and %d; %d repetitions after a warm-up, each: %ld round trips, %ld messages "
	       "of 64 B, %ld of 1 MiB;\nevery baseline and its ipcx counterpart run back to back, "
	       "in alternating order\n",
	       cpu_a, cpu_b, reps, rounds, n64, n1m);
	printf("ipcx URLs: round trip shm:?%s[&spsc=1], 64 B shm:?%s[&spsc=1], 1 MiB shm:?%s\n",
	       RTT_OPTS, S64_OPTS, S1M_OPTS);

	/* Warm-up: page faults, CPU frequency, the library's first calls. */
	raw_rtt();
	ipcx_rtt("spsc=1&" RTT_OPTS);
	raw_stream(64, 4096, n64 / 4);
	ipcx_stream("spsc=1&" S64_OPTS, S64_RING, 64, n64 / 4);

	size_t sz = (size_t)reps * sizeof(double);
	double *rr = malloc(sz), *rs = malloc(sz), *rm = malloc(sz), *zq = malloc(sz);
	double *r64 = malloc(sz), *s64 = malloc(sz), *m64 = malloc(sz), *r1m = malloc(sz),
	       *s1m = malloc(sz);
	double *q_rtt = malloc(sz), *q_zmq = malloc(sz), *q_64 = malloc(sz), *q_1m = malloc(sz);
	printf("\n%3s  %-29s  %-26s  %-17s\n", "rep", "64 B RTT ns: raw spsc mpmc zmq",
	       "64 B Mmsg/s: raw spsc mpmc", "1 MiB GB/s: raw spsc");
	for (int k = 0; k < reps; k++) {
		PAIR(k, rr[k] = raw_rtt(), rs[k] = ipcx_rtt("spsc=1&" RTT_OPTS));
		rm[k] = ipcx_rtt(RTT_OPTS);
#ifdef SHM_RATIOS_ZMQ
		zq[k] = zmq_rtt();
#else
		zq[k] = 0;
#endif
		PAIR(k, r64[k] = raw_stream(64, 4096, n64),
		     s64[k] = ipcx_stream("spsc=1&" S64_OPTS, S64_RING, 64, n64));
		m64[k] = ipcx_stream(S64_OPTS, S64_RING, 64, n64);
		PAIR(k, r1m[k] = raw_stream(mib, 8, n1m) * (double)mib,
		     s1m[k] = ipcx_stream(S1M_OPTS, S1M_RING, mib, n1m) * (double)mib);
		q_rtt[k] = rs[k] / rr[k];
		q_zmq[k] = zq[k] / rs[k];
		q_64[k] = s64[k] / r64[k];
		q_1m[k] = s1m[k] / r1m[k];
		printf("%3d  %5.0f %5.0f %5.0f %7.0f     %6.1f %6.1f %6.1f     %6.2f %6.2f\n", k + 1,
		       rr[k], rs[k], rm[k], zq[k], r64[k] / 1e6, s64[k] / 1e6, m64[k] / 1e6,
		       r1m[k] / 1e9, s1m[k] / 1e9);
		fflush(stdout);
	}
	printf("med  %5.0f %5.0f %5.0f %7.0f     %6.1f %6.1f %6.1f     %6.2f %6.2f\n",
	       med_of(rr, reps), med_of(rs, reps), med_of(rm, reps), med_of(zq, reps),
	       med_of(r64, reps) / 1e6, med_of(s64, reps) / 1e6, med_of(m64, reps) / 1e6,
	       med_of(r1m, reps) / 1e9, med_of(s1m, reps) / 1e9);

	struct target t[] = {
		{ "64 B RTT: ipcx shm / raw spin ping-pong", 1.5, true, q_rtt },
		{ "64 B RTT: zeromq ipc / ipcx shm", 100, false, q_zmq },
		{ "64 B rate: ipcx shm / raw SPSC ring", 0.5, false, q_64 },
		{ "1 MiB bandwidth: ipcx shm / raw SPSC ring", 0.7, false, q_1m },
	};
	printf("\nratios of the back-to-back pairs (ipcx: spsc=1):\n");
	printf("  %-40s %8s %8s %8s   %-9s   %-7s  %s\n", "", "median", "min", "max", "target",
	       "pairs", "verdict");
	int held = 0, judged = 0;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
#ifndef SHM_RATIOS_ZMQ
		if (t[i].q == q_zmq) {
			printf("  %-40s (ZeroMQ not found at build time: not judged)\n", t[i].what);
			continue;
		}
#endif
		judged++;
		held += report(&t[i], reps);
	}
	printf("%d of %d targets hold (by the median of the pairs; \"pairs\" counts the pairs that "
	       "meet the target on their own)\n",
	       held, judged);
	stamp("end");
	free(rr), free(rs), free(rm), free(zq), free(r64), free(s64), free(m64), free(r1m),
		free(s1m), free(q_rtt), free(q_zmq), free(q_64), free(q_1m);
	return 0;
}
