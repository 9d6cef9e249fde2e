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
 *   usage: ipcx-shm-ratios [-n ROUNDS] [--cpus A,B]
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

/* Messages of size bytes one way through a raw ring: messages per second. */
static double raw_stream(size_t size, size_t slots, long count)
{
	size_t len = sizeof(struct rawring) + slots * size;
	struct rawring *r = shared(len);
	pid_t pid = fork_pinned(cpu_b);
	char *buf = malloc(size);
	memset(buf, 7, size);
	if (pid == 0) {
		uint64_t head = 0;
		for (uint64_t t = 0; t < (uint64_t)count; t++) {
			while (t == head)
				head = atomic_load_explicit(&r->head, memory_order_acquire);
			memcpy(buf, r->data + (t % slots) * size, size);
			atomic_store_explicit(&r->tail, t + 1, memory_order_release);
		}
		_exit(0);
	}
	pin(cpu_a);
	uint64_t tail = 0, t0 = now_ns();
	for (uint64_t h = 0; h < (uint64_t)count; h++) {
		while (h - tail >= slots)
			tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		memcpy(r->data + (h % slots) * size, buf, size);
		atomic_store_explicit(&r->head, h + 1, memory_order_release);
	}
	while (atomic_load_explicit(&r->tail, memory_order_acquire) != (uint64_t)count)
		relax();
	double secs = (double)(now_ns() - t0) / 1e9;
	reap(pid);
	free(buf);
	munmap(r, len);
	return (double)count / secs;
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

static double ipcx_stream(const char *opts, size_t size, long count)
{
	char u[256];
	name(u, sizeof(u), "s", opts);
	ipcx_chan *rx = listen_or_die(u);
	char *buf = malloc(size);
	memset(buf, 7, size);
	pid_t pid = fork_pinned(cpu_b);
	if (pid == 0) {
		ipcx_chan *c = dial_or_die(u);
		for (long i = 0; i < count; i++) {
			ssize_t n = ipcx_recv(c, buf, size, -1);
			if (n != (ssize_t)size)
				die((int)(n < 0 ? n : -EIO), "stream recv");
		}
		ipcx_close(c);
		_exit(0);
	}
	pin(cpu_a);
	ipcx_chan *tx = dial_or_die(u);
	uint64_t t0 = now_ns();
	for (long i = 0; i < count; i++)
		if (ipcx_send(tx, buf, size, -1) != (ssize_t)size)
			die(-EIO, "stream");
	reap(pid); /* the receiver has taken the last one */
	double secs = (double)(now_ns() - t0) / 1e9;
	ipcx_close(tx);
	ipcx_close(rx);
	free(buf);
	return (double)count / secs;
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

static double min_of(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double max_of(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/* ---- main ------------------------------------------------------------------ */

static void verdict(const char *what, double ratio, double limit, bool at_most)
{
	bool ok = at_most ? ratio <= limit : ratio >= limit;
	printf("  %-44s %8.2f   (target %s %.2f)  %s\n", what, ratio, at_most ? "<=" : ">=", limit,
	       ok ? "ok" : "MISSED");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			rounds = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--cpus") && i + 1 < argc &&
			 sscanf(argv[++i], "%d,%d", &cpu_a, &cpu_b) == 2)
			;
		else {
			fprintf(stderr, "usage: ipcx-shm-ratios [-n ROUNDS] [--cpus A,B]\n");
			return 2;
		}
	}
	if (rounds < 10 * BATCH)
		rounds = 10 * BATCH;
	long n64 = rounds * 50, n1m = rounds / 40 > 200 ? rounds / 40 : 200;
	printf("ipcx-shm-ratios: CPUs %d and %d, %ld round trips, %ld small and %ld 1 MiB messages\n",
	       cpu_a, cpu_b, rounds, n64, n1m);

	/*
	 * The machine may be shared: measure each baseline and its ipcx
	 * counterpart back to back, REPS times, and report the median of the
	 * paired ratios (with the figures of that pair), so that load that comes
	 * and goes hits both sides of a ratio alike.
	 */
	enum { REPS = 5 };
	double rr[REPS], rs[REPS], rm[REPS], r64[REPS], s64[REPS], m64[REPS], r1m[REPS], s1m[REPS];
	double q_rtt[REPS], q_64[REPS], q_1m[REPS];
	size_t mib = 1 << 20;
	for (int k = 0; k < REPS; k++) {
		rr[k] = raw_rtt();
		rs[k] = ipcx_rtt("spsc=1&spin=1000000&capacity=4096&max=1024");
		rm[k] = ipcx_rtt("spin=1000000&capacity=4096&max=1024");
		r64[k] = raw_stream(64, 4096, n64);
		s64[k] = ipcx_stream("spsc=1&spin=1000000&capacity=1048576", 64, n64);
		m64[k] = ipcx_stream("spin=1000000&capacity=1048576", 64, n64);
		r1m[k] = raw_stream(mib, 8, n1m) * (double)mib;
		s1m[k] = ipcx_stream("spsc=1&spin=1000000&max=1048576&capacity=8388608", mib, n1m) *
			 (double)mib;
		q_rtt[k] = rs[k] / rr[k];
		q_64[k] = s64[k] / r64[k];
		q_1m[k] = s1m[k] / r1m[k];
	}
	double qr = median(q_rtt, REPS), q64 = median(q_64, REPS), q1m = median(q_1m, REPS);
	printf("64 B round trip, median ns (min over %d runs): raw %.0f, ipcx shm spsc %.0f, ipcx shm mpmc %.0f",
	       REPS, min_of(rr, REPS), min_of(rs, REPS), min_of(rm, REPS));
#ifdef SHM_RATIOS_ZMQ
	double zmq = zmq_rtt();
	printf(", zeromq ipc %.0f", zmq);
#endif
	printf("\n");
	printf("64 B one way, million msg/s (max): raw %.1f, ipcx shm spsc %.1f, ipcx shm mpmc %.1f\n",
	       max_of(r64, REPS) / 1e6, max_of(s64, REPS) / 1e6, max_of(m64, REPS) / 1e6);
	printf("1 MiB one way, GB/s (max): raw %.2f, ipcx shm spsc %.2f\n", max_of(r1m, REPS) / 1e9,
	       max_of(s1m, REPS) / 1e9);

	printf("ratios (median of %d back-to-back pairs):\n", REPS);
	verdict("64 B RTT: ipcx shm / raw spin ping-pong", qr, 1.5, true);
#ifdef SHM_RATIOS_ZMQ
	verdict("64 B RTT: zeromq ipc / ipcx shm", zmq / min_of(rs, REPS), 100, false);
#else
	printf("  %-44s  (ZeroMQ not found at build time)\n", "64 B RTT: zeromq ipc / ipcx shm");
#endif
	verdict("64 B rate: ipcx shm / raw SPSC ring", q64, 0.5, false);
	verdict("1 MiB bandwidth: ipcx shm / raw SPSC ring", q1m, 0.7, false);
	return 0;
}
