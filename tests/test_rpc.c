/*
 * Request/reply over every transport in docs/rpc.md's table: the same tests
 * for each (`cases` below), then the ones that need a raw peer or a
 * particular transport.  A server is a child process; the parent is the
 * client.  Processes synchronise by handshakes (t_post / t_wait_post, the
 * server's address on a pipe), never by sleeping; the long timeouts are
 * guards: a call that should fail at once because its server died carries
 * a 60 s timeout, so that failing by timeout instead is a test failure.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <ipcx.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsupport.h"

/* ---- the transports ---------------------------------------------------------- */

struct tcase {
	const char *name;
	void (*url)(char *buf, size_t cap); /* NULL: an ipcx_pair("socket") */
	bool ring;                          /* shm:, sysvshm: */
	bool fixed;                         /* its address can be served again (reconnect) */
};

static void url_unix(char *b, size_t n) { snprintf(b, n, "unix:%s", t_path(t_name())); }
static void url_unix_abstract(char *b, size_t n) { snprintf(b, n, "unix:@%s", t_name()); }
static void url_unixpacket(char *b, size_t n) { snprintf(b, n, "unixpacket:%s", t_path(t_name())); }
static void url_tcp(char *b, size_t n) { snprintf(b, n, "tcp://127.0.0.1:0"); }
static void url_shm(char *b, size_t n) { snprintf(b, n, "shm:/%s", t_name()); }
static void url_sysvshm(char *b, size_t n) { snprintf(b, n, "sysvshm:0x%08x", (unsigned)t_sysv_key()); }

static const struct tcase cases[] = {
	{ "unix", url_unix, false, true },
	{ "unix-abstract", url_unix_abstract, false, true },
	{ "unixpacket", url_unixpacket, false, true },
	{ "tcp", url_tcp, false, true },
	{ "shm", url_shm, true, true },
	{ "sysvshm", url_sysvshm, true, true },
	{ "pair", NULL, false, false },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Criterion runs each parameter in a fresh process: pass indexes, not pointers. */
static struct criterion_test_params case_params(void)
{
	static int idx[NCASES];
	for (size_t i = 0; i < NCASES; i++)
		idx[i] = (int)i;
	return cr_make_param_array(int, idx, NCASES);
}

/* Cases without the pair (which has no URL to share or serve again). */
static struct criterion_test_params url_params(void)
{
	static int idx[NCASES];
	size_t n = 0;
	for (size_t i = 0; i < NCASES; i++)
		if (cases[i].url)
			idx[n++] = (int)i;
	return cr_make_param_array(int, idx, n);
}

/* ---- the server child ---------------------------------------------------------- */

enum srv_mode {
	ECHO,    /* answer each request with itself; "E<detail>" -> -ENOENT <detail> */
	REVERSE, /* take n, answer them last first, then ECHO */
	HOLD,    /* take n, post `held`, then wait for `go` (or be killed); then ECHO */
	THREADS, /* ECHO, but the answers come from two other threads */
	CLOSE,   /* take n, post `held`, wait for `go`, then close the server with them */
	GATHER,  /* take n (any number), answer them last first, then ECHO */
};

struct srv {
	const struct tcase *tc;
	char url[512];        /* what to serve */
	ipcx_chan *chan;      /* serve this channel instead (pair end, shared listener) */
	ipcx_chan *other;     /* the client's pair end, closed in the child */
	unsigned flags;
	enum srv_mode mode;
	int n;
	bool wait_go_first;   /* serve only after `go` */
	bool open_on_go;      /* forked early: open the server only after `go` */
	int addr[2];          /* the server writes its address, then a newline */
	struct t_sync held, go;
};

static ipcx_rpc_server *srv_open(struct srv *a)
{
	ipcx_rpc_server *s;
	int r = a->chan ? ipcx_rpc_serve_chan(a->chan, 0, &s) : ipcx_rpc_serve(a->url, a->flags, &s);
	if (r < 0) {
		fprintf(stderr, "%s: serve %s: %s (%s)\n", a->tc->name, a->url, ipcx_strerror(r),
			ipcx_errdetail());
		_exit(80);
	}
	char addr[600];
	int n = ipcx_rpc_server_addr(s, addr, sizeof(addr) - 1);
	if (n < 0)
		n = snprintf(addr, sizeof(addr) - 1, "%s", a->url);
	addr[n++] = '\n';
	if (write(a->addr[1], addr, (size_t)n) != n)
		_exit(81);
	return s;
}

static void echo(struct ipcx_rpc_req *q)
{
	const char *d = q->data;
	int r;
	if (q->len && d[0] == 'E') {
		char detail[64];
		snprintf(detail, sizeof(detail), "%.*s", (int)q->len - 1, d + 1);
		r = ipcx_rpc_fail(q, -ENOENT, detail);
	} else {
		r = ipcx_rpc_reply(q, q->data, q->len);
	}
	(void)r; /* a caller that went away is the caller's business */
}

static bool is_quit(const struct ipcx_rpc_req *q)
{
	return q->len == 4 && !memcmp(q->data, "quit", 4);
}

static struct ipcx_rpc_req *take(ipcx_rpc_server *s)
{
	struct ipcx_rpc_req *q;
	int r = ipcx_rpc_next(s, T_GUARD_MS, &q);
	if (r < 0) {
		fprintf(stderr, "next: %s (%s)\n", ipcx_strerror(r), ipcx_errdetail());
		_exit(82);
	}
	return q;
}

/* THREADS: requests go through a small queue to two answering threads. */
struct tq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ipcx_rpc_req *q[64];
	int head, tail;
	bool stop;
};

static void *answerer(void *arg)
{
	struct tq *t = arg;
	for (;;) {
		pthread_mutex_lock(&t->mu);
		while (t->head == t->tail && !t->stop)
			pthread_cond_wait(&t->cv, &t->mu);
		if (t->head == t->tail) {
			pthread_mutex_unlock(&t->mu);
			return NULL;
		}
		struct ipcx_rpc_req *q = t->q[t->head++ % 64];
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
		echo(q);
	}
}

static void serve_threads(ipcx_rpc_server *s)
{
	struct tq t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, 0, 0, false };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, answerer, &t);
	struct ipcx_rpc_req *q;
	while (ipcx_rpc_next(s, T_GUARD_MS, &q) == 0) {
		if (is_quit(q)) {
			echo(q);
			break;
		}
		pthread_mutex_lock(&t.mu);
		while (t.tail - t.head == 64)
			pthread_cond_wait(&t.cv, &t.mu);
		t.q[t.tail++ % 64] = q;
		pthread_cond_broadcast(&t.cv);
		pthread_mutex_unlock(&t.mu);
	}
	pthread_mutex_lock(&t.mu);
	t.stop = true;
	pthread_cond_broadcast(&t.cv);
	pthread_mutex_unlock(&t.mu);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
}

/* GATHER: hold all n requests at once (the server says so), then answer last first. */
static void gather(ipcx_rpc_server *s, int n)
{
	struct ipcx_rpc_req **q = malloc((size_t)n * sizeof(*q));
	if (!q)
		_exit(85);
	for (int i = 0; i < n; i++)
		q[i] = take(s);
	struct ipcx_rpc_stats st;
	if (ipcx_rpc_server_stats(s, &st) < 0 || st.pending != (uint64_t)n) {
		fprintf(stderr, "gather: %llu requests pending, not %d\n",
			(unsigned long long)st.pending, n);
		_exit(86);
	}
	for (int i = n - 1; i >= 0; i--)
		echo(q[i]);
	free(q);
}

static int srv_main(void *arg)
{
	struct srv *a = arg;
	if (a->other)
		ipcx_close(a->other);
	if (a->open_on_go && !t_wait_post(&a->go, T_GUARD_MS))
		_exit(82);
	ipcx_rpc_server *s = srv_open(a);
	if (a->wait_go_first && !t_wait_post(&a->go, T_GUARD_MS))
		_exit(83);
	struct ipcx_rpc_req *held[64];
	int n = a->n < 64 ? a->n : 64;
	switch (a->mode) {
	case REVERSE:
		for (int i = 0; i < n; i++)
			held[i] = take(s);
		for (int i = n - 1; i >= 0; i--)
			echo(held[i]);
		break;
	case HOLD:
	case CLOSE:
		for (int i = 0; i < n; i++)
			held[i] = take(s);
		t_post(&a->held);
		if (!t_wait_post(&a->go, T_GUARD_MS))
			_exit(84);
		if (a->mode == CLOSE) {
			ipcx_rpc_server_close(s);
			return 0;
		}
		for (int i = 0; i < n; i++)
			echo(held[i]);
		break;
	case GATHER:
		gather(s, a->n);
		break;
	case THREADS:
		serve_threads(s);
		ipcx_rpc_server_close(s);
		return 0;
	case ECHO:
		break;
	}
	/* ECHO until the test says "quit" (or the guard passes). */
	struct ipcx_rpc_req *q;
	while (ipcx_rpc_next(s, T_GUARD_MS, &q) == 0) {
		bool quit = is_quit(q);
		echo(q);
		if (quit)
			break;
	}
	ipcx_rpc_server_close(s);
	return 0;
}

/* ---- the test's side ------------------------------------------------------------- */

struct env {
	const struct tcase *tc;
	struct srv srv;
	pid_t pid;
	char addr[600];
	ipcx_chan *pair;     /* the client's pair end */
	ipcx_rpc_client *c;
};

static void read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	struct pollfd p = { fd, POLLIN, 0 };
	while (n + 1 < cap) {
		cr_assert_gt(poll(&p, 1, T_GUARD_MS), 0, "no address from the server");
		ssize_t k = read(fd, buf + n, 1);
		cr_assert_eq(k, 1, "the server died before it served");
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
}

/* Set up srv for tc (a fresh URL or pair) without starting it. */
static void srv_init(struct env *e, const struct tcase *tc, enum srv_mode mode, int n)
{
	memset(e, 0, sizeof(*e));
	e->tc = tc;
	struct srv *a = &e->srv;
	a->tc = tc;
	a->mode = mode;
	a->n = n;
	cr_assert_eq(pipe(a->addr), 0);
	t_sync_init(&a->held);
	t_sync_init(&a->go);
	if (tc->url) {
		tc->url(a->url, sizeof(a->url));
	} else {
		cr_assert_eq(ipcx_pair("socket", 0, &e->pair, &a->chan), 0);
		a->other = e->pair;
		snprintf(a->url, sizeof(a->url), "pair");
	}
}

/* Start the server child and wait until it serves. */
static pid_t srv_start(struct env *e, struct srv *a)
{
	pid_t pid = t_spawn(srv_main, a);
	read_line(a->addr[0], e->addr, sizeof(e->addr));
	return pid;
}

static void env_dial(struct env *e)
{
	int r = e->pair ? ipcx_rpc_client_chan(e->pair, 0, &e->c) : ipcx_rpc_dial(e->addr, 0, &e->c);
	cr_assert_eq(r, 0, "%s: dial %s: %s (%s)", e->tc->name, e->addr, ipcx_strerror(r),
		     ipcx_errdetail());
}

/* The server started, the client not yet (children to fork go in between). */
static void env_serve(struct env *e, const struct tcase *tc, enum srv_mode mode, int n)
{
	srv_init(e, tc, mode, n);
	e->pid = srv_start(e, &e->srv);
	if (e->srv.chan) { /* the pair: the parent keeps only the client's end */
		ipcx_close(e->srv.chan);
		e->srv.chan = NULL;
	}
}

static void env_open(struct env *e, const struct tcase *tc, enum srv_mode mode, int n)
{
	env_serve(e, tc, mode, n);
	env_dial(e);
}

static void expect_echo(struct env *e, const char *msg);

/* Stop the server (if it runs: it closes, removing what it made), then the client. */
static void env_close(struct env *e, int want_status)
{
	if (e->pid > 0) {
		expect_echo(e, "quit");
		int st = t_join(e->pid, T_GUARD_MS);
		if (want_status >= 0)
			cr_expect_eq(st, want_status, "%s: server exit %d", e->tc->name, st);
	}
	cr_expect_eq(ipcx_rpc_client_close(e->c), 0);
	e->c = NULL;
	ipcx_close(e->pair);
	close(e->srv.addr[0]);
	close(e->srv.addr[1]);
	t_sync_close(&e->srv.held);
	t_sync_close(&e->srv.go);
}

static void expect_echo(struct env *e, const char *msg)
{
	char buf[256];
	ssize_t n = ipcx_rpc_call(e->c, msg, strlen(msg), buf, sizeof(buf), T_GUARD_MS);
	cr_assert_eq(n, (ssize_t)strlen(msg), "%s: call '%s': %zd (%s: %s)", e->tc->name, msg, n,
		     ipcx_strerror((int)n), ipcx_errdetail());
	cr_assert(memcmp(buf, msg, (size_t)n) == 0, "%s: reply differs", e->tc->name);
}

/* Numbers as payloads, with a first byte that is never the echo server's 'E'. */
static int tagged(int i)
{
	return i << 8 | '#';
}

static int untag(int v)
{
	return (v & 0xff) == '#' ? v >> 8 : -1;
}

static struct ipcx_rpc_stats cstats(struct env *e)
{
	struct ipcx_rpc_stats st;
	cr_assert_eq(ipcx_rpc_client_stats(e->c, &st), 0);
	return st;
}

/* ---- the conformance tests ------------------------------------------------------------ */

ParameterizedTestParameters(rpc, call_reply) { return case_params(); }

ParameterizedTest(int *ci, rpc, call_reply)
{
	struct env e;
	env_open(&e, &cases[*ci], ECHO, 0);
	for (int i = 0; i < 200; i++) {
		char m[32];
		snprintf(m, sizeof(m), "call %d", i);
		expect_echo(&e, m);
	}
	char big[4000];
	memset(big, 'x', sizeof(big));
	char back[4000];
	cr_expect_eq(ipcx_rpc_call(e.c, big, sizeof(big), back, sizeof(back), T_GUARD_MS),
		     (ssize_t)sizeof(big));
	cr_expect(memcmp(big, back, sizeof(big)) == 0);
	/* A reply larger than the buffer: -EMSGSIZE, and the client goes on. */
	cr_expect_eq(ipcx_rpc_call(e.c, big, 100, back, 10, T_GUARD_MS), -EMSGSIZE);
	expect_echo(&e, "still fine");
	struct ipcx_rpc_stats st = cstats(&e);
	cr_expect_eq(st.calls, 203);
	cr_expect_eq(st.pending, 0);
	cr_expect_eq(st.malformed, 0);
	env_close(&e, 0);
}

ParameterizedTestParameters(rpc, out_of_order) { return case_params(); }

/* Sixteen calls answered last first: each result matched to its own call. */
ParameterizedTest(int *ci, rpc, out_of_order)
{
	struct env e;
	env_open(&e, &cases[*ci], REVERSE, 16);
	uint64_t ids[16];
	for (int i = 0; i < 16; i++) {
		char m[16];
		snprintf(m, sizeof(m), "n%02d", i);
		cr_assert_eq(ipcx_rpc_start(e.c, m, 3, T_GUARD_MS, i < 15 ? IPCX_RPC_MORE : 0,
					    &ids[i]), 0);
	}
	for (int k = 0; k < 16; k++) {
		char buf[16];
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(e.c, T_GUARD_MS, buf, sizeof(buf), &res), 0);
		int want = 15 - k; /* the order the server answered in */
		cr_expect_eq(res.id, ids[want], "%s: result %d is not call %d", e.tc->name, k, want);
		char m[16];
		snprintf(m, sizeof(m), "n%02d", want);
		cr_expect(res.status == 3 && !memcmp(buf, m, 3), "%s: payload of %d", e.tc->name, want);
	}
	struct ipcx_rpc_result res;
	char b[4];
	cr_expect_eq(ipcx_rpc_wait(e.c, 0, b, sizeof(b), &res), -EAGAIN, "nothing is left");
	env_close(&e, 0);
}

ParameterizedTestParameters(rpc, ten_thousand_in_flight) { return case_params(); }

/*
 * 10 000 calls in flight at once: the server takes every one before it
 * answers any (it checks that it holds them all), so the client has all of
 * them pending; the answers come last first, each matched to its call.
 */
ParameterizedTest(int *ci, rpc, ten_thousand_in_flight)
{
	enum { N = 10000 };
	struct env e;
	env_open(&e, &cases[*ci], GATHER, N);
	uint64_t *ids = malloc(N * sizeof(*ids));
	for (int i = 0; i < N; i++) {
		int v = tagged(i);
		/* Half of them may travel in batches (IPCX_RPC_MORE), half alone. */
		unsigned more = (i / 100) % 2 ? IPCX_RPC_MORE : 0;
		cr_assert_eq(ipcx_rpc_start(e.c, &v, sizeof(v), T_GUARD_MS, more, &ids[i]), 0,
			     "%s: start %d: %s", e.tc->name, i, ipcx_errdetail());
	}
	struct ipcx_rpc_stats st = cstats(&e);
	cr_expect_eq(st.calls, N);
	cr_expect_eq(st.pending, N, "%s: %llu of %d calls in flight", e.tc->name,
		     (unsigned long long)st.pending, N);
	char *seen = calloc(N, 1);
	for (int k = 0; k < N; k++) {
		int v = -1;
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(e.c, T_GUARD_MS, &v, sizeof(v), &res), 0, "%s: result %d",
			     e.tc->name, k);
		cr_assert_eq(res.status, (ssize_t)sizeof(v));
		v = untag(v);
		cr_assert(v >= 0 && v < N && !seen[v] && res.id == ids[v], "%s: result %d: value %d",
			  e.tc->name, k, v);
		cr_expect_eq(v, N - 1 - k, "%s: result %d is call %d, not the one answered then",
			     e.tc->name, k, v);
		seen[v] = 1;
	}
	st = cstats(&e);
	cr_expect_eq(st.replies, N);
	cr_expect_eq(st.pending, 0);
	cr_expect_eq(st.late, 0);
	free(seen);
	free(ids);
	env_close(&e, 0);
}

ParameterizedTestParameters(rpc, timeout_then_late_reply) { return case_params(); }

/*
 * The server holds a call past its timeout, then answers it: the late reply
 * is counted and dropped, and the next call gets its own reply.
 */
ParameterizedTest(int *ci, rpc, timeout_then_late_reply)
{
	struct env e;
	env_open(&e, &cases[*ci], HOLD, 1);
	char buf[32];
	ssize_t n = ipcx_rpc_call(e.c, "slow", 4, buf, sizeof(buf), 300);
	cr_assert_eq(n, -ETIMEDOUT, "%s: %zd (%s)", e.tc->name, n, ipcx_strerror((int)n));
	cr_assert(t_wait_post(&e.srv.held, T_GUARD_MS)); /* it had the call */
	t_post(&e.srv.go); /* now it answers, late, and serves on */
	expect_echo(&e, "next");
	struct ipcx_rpc_stats st = cstats(&e);
	cr_expect_eq(st.timeouts, 1);
	cr_expect_eq(st.late, 1, "%s: late %llu", e.tc->name, (unsigned long long)st.late);
	cr_expect_eq(st.replies, 1);
	cr_expect_eq(st.pending, 0);
	env_close(&e, 0);
}

ParameterizedTestParameters(rpc, error_reply) { return case_params(); }

ParameterizedTest(int *ci, rpc, error_reply)
{
	struct env e;
	env_open(&e, &cases[*ci], ECHO, 0);
	char buf[64];
	ssize_t n = ipcx_rpc_call(e.c, "Eno such key", 12, buf, sizeof(buf), T_GUARD_MS);
	cr_expect_eq(n, -ENOENT, "%s: %zd", e.tc->name, n);
	cr_expect_str_eq(ipcx_errdetail(), "no such key");
	uint64_t id;
	cr_assert_eq(ipcx_rpc_start(e.c, "Egone", 5, T_GUARD_MS, 0, &id), 0);
	struct ipcx_rpc_result res;
	cr_assert_eq(ipcx_rpc_wait(e.c, T_GUARD_MS, buf, sizeof(buf), &res), 0);
	cr_expect_eq(res.id, id);
	cr_expect_eq(res.status, -ENOENT);
	cr_expect_str_eq(buf, "gone");
	expect_echo(&e, "fine after errors");
	cr_expect_eq(cstats(&e).errors, 2);
	env_close(&e, 0);
}

ParameterizedTestParameters(rpc, server_killed_with_calls_pending) { return case_params(); }

/*
 * The server takes three calls and holds them; two more wait behind them.
 * Killed with SIGKILL, it fails all five at once: their 60 s timeouts are
 * only the guard (failing by timeout would be -ETIMEDOUT).  A call made
 * while nobody serves the URL is refused; once a new server serves it, the
 * next call reaches it.
 */
ParameterizedTest(int *ci, rpc, server_killed_with_calls_pending)
{
	struct env e;
	env_serve(&e, &cases[*ci], HOLD, 3);
	/* The next server is forked now, before the client: a client on a ring
	 * runs a watcher thread, and a child forked after it started could
	 * inherit a lock it held (under ASan, the allocator's). */
	struct srv again = e.srv;
	pid_t again_pid = 0;
	if (e.tc->fixed) {
		/* What the first server serves (tcp://: the port it got). */
		snprintf(again.url, sizeof(again.url), "%.*s", (int)sizeof(again.url) - 1, e.addr);
		again.mode = ECHO;
		again.open_on_go = true;
		t_sync_init(&again.go);
		again_pid = t_spawn(srv_main, &again);
	}
	env_dial(&e);
	uint64_t id;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipcx_rpc_start(e.c, "held", 4, 60000, 0, &id), 0);
	cr_assert(t_wait_post(&e.srv.held, T_GUARD_MS));
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ipcx_rpc_start(e.c, "queued", 6, 60000, 0, &id), 0);
	kill(e.pid, SIGKILL);
	cr_expect_eq(t_join(e.pid, T_GUARD_MS), 128 + SIGKILL);
	e.pid = 0;
	for (int i = 0; i < 5; i++) {
		char buf[64];
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(e.c, 60000, buf, sizeof(buf), &res), 0);
		cr_expect(res.status == -ECONNRESET || res.status == -EPIPE,
			  "%s: call %d ended with %zd (%s), not a prompt failure", e.tc->name, i,
			  res.status, ipcx_strerror((int)res.status));
	}
	cr_expect_eq(cstats(&e).timeouts, 0);
	if (e.tc->fixed) {
		/* The reconnect rule: each call dials again; with nobody there yet it is
		 * refused, and the next one reaches the new server. */
		char buf[8];
		ssize_t n = ipcx_rpc_call(e.c, "x", 1, buf, sizeof(buf), T_GUARD_MS);
		cr_expect_eq(n, -ECONNREFUSED, "%s: a call with no server: %zd (%s)", e.tc->name, n,
			     ipcx_errdetail());
		t_post(&again.go);
		read_line(again.addr[0], e.addr, sizeof(e.addr)); /* it serves */
		e.pid = again_pid;
		expect_echo(&e, "hello again");
	} else {
		char buf[8];
		ssize_t n = ipcx_rpc_call(e.c, "x", 1, buf, sizeof(buf), T_GUARD_MS);
		cr_expect(n == -EPIPE || n == -ECONNREFUSED, "%s: %zd", e.tc->name, n);
	}
	env_close(&e, -1);
	if (e.tc->fixed)
		t_sync_close(&again.go);
}

ParameterizedTestParameters(rpc, server_closes_with_calls_pending) { return case_params(); }

/* A server that closes fails the calls it holds (and on rings, those queued) at once. */
ParameterizedTest(int *ci, rpc, server_closes_with_calls_pending)
{
	struct env e;
	env_open(&e, &cases[*ci], CLOSE, 2);
	uint64_t id;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ipcx_rpc_start(e.c, "held", 4, 60000, 0, &id), 0);
	cr_assert(t_wait_post(&e.srv.held, T_GUARD_MS));
	cr_assert_eq(ipcx_rpc_start(e.c, "queued", 6, 60000, 0, &id), 0);
	t_post(&e.srv.go);
	int reset = 0;
	for (int i = 0; i < 3; i++) {
		char buf[64];
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(e.c, 60000, buf, sizeof(buf), &res), 0);
		cr_expect(res.status == -ECONNRESET || res.status == -EPIPE, "%s: %zd (%s)",
			  e.tc->name, res.status, buf);
		reset += res.status == -ECONNRESET;
	}
	cr_expect_geq(reset, 2, "%s: the held calls may have run: -ECONNRESET", e.tc->name);
	cr_expect_eq(t_join(e.pid, T_GUARD_MS), 0);
	e.pid = 0;
	env_close(&e, -1);
}

ParameterizedTestParameters(rpc, replies_from_other_threads) { return case_params(); }

ParameterizedTest(int *ci, rpc, replies_from_other_threads)
{
	enum { N = 2000 };
	struct env e;
	env_open(&e, &cases[*ci], THREADS, 0);
	uint64_t *ids = malloc(N * sizeof(*ids));
	for (int i = 0; i < N; i++) {
		int v = tagged(i);
		cr_assert_eq(ipcx_rpc_start(e.c, &v, sizeof(v), T_GUARD_MS, IPCX_RPC_MORE, &ids[i]), 0);
	}
	for (int k = 0; k < N; k++) {
		int v = -1;
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(e.c, T_GUARD_MS, &v, sizeof(v), &res), 0);
		v = untag(v);
		cr_assert(v >= 0 && v < N && res.id == ids[v]);
	}
	free(ids);
	env_close(&e, 0);
}

ParameterizedTestParameters(rpc, pollable) { return case_params(); }

/* Both descriptors are level-triggered: readable exactly while there is work. */
ParameterizedTest(int *ci, rpc, pollable)
{
	struct env e;
	env_open(&e, &cases[*ci], HOLD, 1);
	int fd = ipcx_rpc_client_fileno(e.c);
	cr_assert_geq(fd, 0);
	struct pollfd p = { fd, POLLIN, 0 };
	cr_expect_eq(poll(&p, 1, 0), 0, "%s: readable with nothing in flight", e.tc->name);
	uint64_t id;
	cr_assert_eq(ipcx_rpc_start(e.c, "p", 1, T_GUARD_MS, 0, &id), 0);
	cr_assert(t_wait_post(&e.srv.held, T_GUARD_MS));
	char buf[8];
	struct ipcx_rpc_result res;
	cr_expect_eq(ipcx_rpc_wait(e.c, 0, buf, sizeof(buf), &res), -EAGAIN);
	cr_expect_eq(poll(&p, 1, 0), 0, "%s: readable before the reply", e.tc->name);
	t_post(&e.srv.go);
	cr_assert_eq(poll(&p, 1, T_GUARD_MS), 1, "%s: not readable with a reply", e.tc->name);
	cr_expect_eq(poll(&p, 1, 0), 1, "%s: level-triggered", e.tc->name);
	cr_assert_eq(ipcx_rpc_wait(e.c, 0, buf, sizeof(buf), &res), 0);
	cr_expect_eq(res.id, id);
	/* A call that times out makes it readable too (its deadline). */
	cr_assert_eq(ipcx_rpc_start(e.c, "Eslow", 5, 1, 0, &id), 0);
	bool got = false;
	while (!got) {
		cr_assert_eq(poll(&p, 1, T_GUARD_MS), 1);
		int r = ipcx_rpc_wait(e.c, 0, buf, sizeof(buf), &res);
		cr_assert(r == 0 || r == -EAGAIN);
		got = r == 0;
	}
	cr_expect(res.status == -ETIMEDOUT || res.status == -ENOENT);
	cr_expect_eq(ipcx_rpc_wait(e.c, 0, buf, sizeof(buf), &res), -EAGAIN);
	/* What remains readable is cleared by a wait that finds nothing. */
	if (poll(&p, 1, 0) == 1) {
		ipcx_rpc_wait(e.c, 0, buf, sizeof(buf), &res);
		cr_expect_eq(poll(&p, 1, 0), 0, "%s: readable with nothing left", e.tc->name);
	}
	env_close(&e, 0);
}

ParameterizedTestParameters(rpc, server_pollable) { return case_params(); }

/*
 * The server's descriptor, with server and client in this process: readable
 * exactly while a request waits, also the second of two that came together
 * (a batch on sockets: the server holds it after taking the first).
 */
ParameterizedTest(int *ci, rpc, server_pollable)
{
	const struct tcase *tc = &cases[*ci];
	ipcx_rpc_server *s;
	ipcx_rpc_client *c;
	ipcx_chan *a = NULL, *b = NULL;
	if (tc->url) {
		char url[512], addr[600];
		tc->url(url, sizeof(url));
		cr_assert_eq(ipcx_rpc_serve(url, 0, &s), 0, "%s: %s", url, ipcx_errdetail());
		if (ipcx_rpc_server_addr(s, addr, sizeof(addr)) < 0)
			snprintf(addr, sizeof(addr), "%s", url);
		cr_assert_eq(ipcx_rpc_dial(addr, 0, &c), 0, "%s: %s", addr, ipcx_errdetail());
	} else {
		cr_assert_eq(ipcx_pair("socket", 0, &a, &b), 0);
		cr_assert_eq(ipcx_rpc_serve_chan(b, 0, &s), 0);
		cr_assert_eq(ipcx_rpc_client_chan(a, 0, &c), 0);
	}
	int fd = ipcx_rpc_server_fileno(s);
	cr_assert_geq(fd, 0);
	struct pollfd p = { fd, POLLIN, 0 };
	struct ipcx_rpc_req *q[2];
	/* What the dial brought (a connection, a ring's HELLO) is no request. */
	cr_expect_eq(ipcx_rpc_next(s, 0, &q[0]), -EAGAIN, "%s", tc->name);
	cr_expect_eq(poll(&p, 1, 0), 0, "%s: readable with no request", tc->name);
	uint64_t id[2];
	cr_assert_eq(ipcx_rpc_start(c, "one", 3, T_GUARD_MS, IPCX_RPC_MORE, &id[0]), 0);
	cr_assert_eq(ipcx_rpc_start(c, "two", 3, T_GUARD_MS, 0, &id[1]), 0);
	cr_assert_eq(poll(&p, 1, T_GUARD_MS), 1, "%s: not readable with requests", tc->name);
	cr_assert_eq(ipcx_rpc_next(s, 0, &q[0]), 0, "%s", tc->name);
	cr_expect_eq(poll(&p, 1, 0), 1, "%s: not readable with a request left", tc->name);
	cr_assert_eq(ipcx_rpc_next(s, 0, &q[1]), 0, "%s: the second request", tc->name);
	cr_expect(q[0]->id == id[0] && q[1]->id == id[1], "%s: in order", tc->name);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ipcx_rpc_reply(q[i], q[i]->data, q[i]->len), 0);
	for (int i = 0; i < 2; i++) {
		char buf[8];
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(c, T_GUARD_MS, buf, sizeof(buf), &res), 0);
		cr_expect_eq(res.status, 3);
	}
	cr_expect_eq(ipcx_rpc_next(s, 0, &q[0]), -EAGAIN, "%s", tc->name);
	cr_expect_eq(poll(&p, 1, 0), 0, "%s: readable with nothing left", tc->name);
	cr_expect_eq(ipcx_rpc_client_close(c), 0);
	cr_expect_eq(ipcx_rpc_server_close(s), 0);
	ipcx_close(a);
	ipcx_close(b);
}

ParameterizedTestParameters(rpc, workers_one_killed) { return url_params(); }

/*
 * Two workers behind one URL: on rings one server and a worker that joined
 * it; on sockets, two forked workers serving one listener.  Only the doomed
 * worker takes requests at first: it takes a call and is killed holding it.
 * That caller gets -ECONNRESET at once; the other worker serves on.
 */
ParameterizedTest(int *ci, rpc, workers_one_killed)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	srv_init(&e, tc, ECHO, 0);
	struct srv good = e.srv, doomed = e.srv;
	good.wait_go_first = true;
	doomed.mode = HOLD;
	doomed.n = 1;
	t_sync_init(&doomed.held);
	ipcx_chan *listener = NULL;
	if (!tc->ring) {
		/* The master: a listener shared by its forked workers. */
		cr_assert_eq(ipcx_listen(e.srv.url, IPCX_ACCEPT, &listener), 0);
		good.chan = doomed.chan = listener;
	}
	pid_t gpid = srv_start(&e, &good);
	if (tc->ring)
		doomed.flags = IPCX_RPC_JOIN;
	pid_t dpid = srv_start(&e, &doomed);
	if (listener)
		cr_assert_gt(ipcx_addr(listener, e.addr, sizeof(e.addr)), 0);
	env_dial(&e);
	uint64_t id;
	cr_assert_eq(ipcx_rpc_start(e.c, "doomed", 6, 60000, 0, &id), 0);
	cr_assert(t_wait_post(&doomed.held, T_GUARD_MS), "the joined worker did not take it");
	kill(dpid, SIGKILL);
	cr_expect_eq(t_join(dpid, T_GUARD_MS), 128 + SIGKILL);
	char buf[64];
	struct ipcx_rpc_result res;
	cr_assert_eq(ipcx_rpc_wait(e.c, 60000, buf, sizeof(buf), &res), 0);
	cr_expect_eq(res.id, id);
	cr_expect_eq(res.status, -ECONNRESET, "%s: %zd (%s)", tc->name, res.status, buf);
	t_post(&good.go);
	for (int i = 0; i < 20; i++) {
		char m[16];
		snprintf(m, sizeof(m), "after %d", i);
		expect_echo(&e, m);
	}
	cr_expect_eq(cstats(&e).timeouts, 0);
	e.pid = gpid;
	env_close(&e, -1);
	ipcx_close(listener);
	t_sync_close(&doomed.held);
}

/* ---- raw peers: frames that are not valid ----------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A frame by hand: the wire of docs/rpc.md. */
static size_t frame(unsigned char *f, int kind, uint32_t flags, uint64_t id, uint64_t aux,
		    uint32_t arg, const char *payload)
{
	size_t len = payload ? strlen(payload) : 0;
	f[0] = 'I';
	f[1] = 'R';
	f[2] = 1;
	f[3] = (unsigned char)kind;
	put32(f + 4, flags);
	put64(f + 8, id);
	put64(f + 16, aux);
	put32(f + 24, arg);
	put32(f + 28, (uint32_t)len);
	if (len)
		memcpy(f + 32, payload, len);
	return 32 + len;
}

/* Junk a hostile peer may send: each must be dropped and counted. */
static int junk(unsigned char (*f)[64], size_t *len)
{
	int n = 0;
	len[n] = 5, memcpy(f[n++], "hello", 5);                  /* too short */
	len[n] = frame(f[n], 1, 0, 7, 0, 0, "x"), f[n][0] = 'Z', n++; /* bad magic */
	len[n] = frame(f[n], 1, 0, 7, 0, 0, "x"), f[n][2] = 9, n++;   /* a future version */
	len[n] = frame(f[n], 77, 0, 7, 0, 0, "x"), n++;          /* unknown kind */
	len[n] = frame(f[n], 1, 0x80, 7, 0, 0, "x"), n++;        /* unknown flags */
	len[n] = frame(f[n], 1, 0, 0, 0, 0, "x"), n++;           /* request without an id */
	len[n] = frame(f[n], 1, 0, 7, 0, 0, "x"), put32(f[n] + 28, 999), n++; /* length lies */
	len[n] = frame(f[n], 1, 0, 7, 0, 0, "xy") - 1, n++;      /* cut short */
	len[n] = frame(f[n], 3, 0, 7, 0, 5000, "x"), n++;        /* errno out of range */
	/* A batch that says two frames and holds one; one that holds a batch. */
	unsigned char in[40];
	size_t il = frame(in, 1, 0, 7, 0, 0, "x");
	len[n] = frame(f[n], 7, 0, 0, 0, 2, NULL), memcpy(f[n] + 32, in, il),
	put32(f[n] + 28, (uint32_t)il), len[n] += il, n++;
	len[n] = frame(f[n], 7, 0, 0, 0, 1, NULL), memcpy(f[n] + 32, in, il),
	put32(f[n] + 28, (uint32_t)il), len[n] += il, n++;       /* a batch of one */
	return n;
}

/* Junk to a server over a raw connection, then one good request: answered. */
Test(rpc, malformed_frames_to_server)
{
	static void (*const urls[])(char *, size_t) = { url_unix, url_unixpacket, url_tcp };
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		char url[256], addr[256];
		urls[u](url, sizeof(url));
		ipcx_rpc_server *s;
		cr_assert_eq(ipcx_rpc_serve(url, 0, &s), 0);
		cr_assert_gt(ipcx_rpc_server_addr(s, addr, sizeof(addr)), 0);
		ipcx_chan *raw;
		cr_assert_eq(ipcx_dial(addr, 0, &raw), 0);
		unsigned char f[16][64];
		size_t len[16];
		int n = junk(f, len);
		len[n] = frame(f[n], 2, 0, 7, 0, 0, "reply?"), n++; /* a reply, to a server */
		len[n] = frame(f[n], 5, 0, 0, 0, 0, NULL), n++;     /* a ring's hello, on a socket */
		for (int i = 0; i < n; i++)
			cr_assert_eq(ipcx_send(raw, f[i], len[i], T_GUARD_MS), (ssize_t)len[i]);
		unsigned char good[64], back[128];
		size_t gl = frame(good, 1, 0, 0x1234, 0, 0, "ok");
		cr_assert_eq(ipcx_send(raw, good, gl, T_GUARD_MS), (ssize_t)gl);
		struct ipcx_rpc_req *q;
		cr_assert_eq(ipcx_rpc_next(s, T_GUARD_MS, &q), 0, "%s: the good request", url);
		cr_expect_eq(q->id, 0x1234);
		cr_assert_eq(ipcx_rpc_reply(q, q->data, q->len), 0);
		ssize_t r = ipcx_recv(raw, back, sizeof(back), T_GUARD_MS);
		cr_assert_eq(r, 34, "%s: the good request was not answered: %zd", url, r);
		cr_expect_eq(back[3], 2);
		cr_expect_eq(back[8], 0x34);
		cr_expect(!memcmp(back + 32, "ok", 2));
		struct ipcx_rpc_stats st;
		cr_assert_eq(ipcx_rpc_server_stats(s, &st), 0);
		cr_expect_eq(st.malformed, (uint64_t)n, "%s: %llu of %d counted", url,
			     (unsigned long long)st.malformed, n);
		cr_expect_eq(st.calls, 1);
		ipcx_close(raw);
		cr_expect_eq(ipcx_rpc_server_close(s), 0);
	}
}

/* The same into a request ring, with the server's counters checked in-process. */
static void malformed_into_ring(void (*url_of)(char *, size_t))
{
	char url[128];
	url_of(url, sizeof(url));
	ipcx_rpc_server *s;
	cr_assert_eq(ipcx_rpc_serve(url, 0, &s), 0);
	ipcx_chan *raw;
	cr_assert_eq(ipcx_dial(url, 0, &raw), 0);
	unsigned char f[16][64];
	size_t len[16];
	int n = junk(f, len);
	len[n] = frame(f[n], 1, 0, 9, 0xdead, 0, "no such client"), n++; /* names no reply ring */
	for (int i = 0; i < n; i++)
		cr_assert_eq(ipcx_send(raw, f[i], len[i], T_GUARD_MS), (ssize_t)len[i]);
	struct ipcx_rpc_req *q;
	cr_expect_eq(ipcx_rpc_next(s, 0, &q), -EAGAIN, "junk was taken for a request");
	struct ipcx_rpc_stats st;
	cr_assert_eq(ipcx_rpc_server_stats(s, &st), 0);
	cr_expect_eq(st.malformed, (uint64_t)n - 1);
	cr_expect_eq(st.dropped, 1, "a request nobody can be answered is dropped");
	cr_expect_eq(st.calls, 0);
	ipcx_close(raw);
	/* A real client still gets through. */
	ipcx_rpc_client *c;
	cr_assert_eq(ipcx_rpc_dial(url, 0, &c), 0);
	uint64_t id;
	cr_assert_eq(ipcx_rpc_start(c, "real", 4, T_GUARD_MS, 0, &id), 0);
	cr_assert_eq(ipcx_rpc_next(s, T_GUARD_MS, &q), 0);
	cr_expect_eq(q->id, id);
	cr_assert_eq(ipcx_rpc_reply(q, "yes", 3), 0);
	char buf[8];
	struct ipcx_rpc_result res;
	cr_assert_eq(ipcx_rpc_wait(c, T_GUARD_MS, buf, sizeof(buf), &res), 0);
	cr_expect_eq(res.status, 3);
	ipcx_rpc_client_close(c);
	ipcx_rpc_server_close(s);
}

Test(rpc, malformed_frames_into_ring) { malformed_into_ring(url_shm); }
Test(rpc, malformed_frames_into_sysvshm_ring) { malformed_into_ring(url_sysvshm); }

/* A raw server answers with junk and a forged reply before the real one. */
Test(rpc, malformed_frames_to_client)
{
	ipcx_chan *a, *b;
	cr_assert_eq(ipcx_pair("socket", 0, &a, &b), 0);
	ipcx_rpc_client *c;
	cr_assert_eq(ipcx_rpc_client_chan(a, 0, &c), 0);
	uint64_t id;
	cr_assert_eq(ipcx_rpc_start(c, "q", 1, T_GUARD_MS, 0, &id), 0);
	unsigned char req[64];
	cr_assert_eq(ipcx_recv(b, req, sizeof(req), T_GUARD_MS), 33);
	unsigned char f[16][64];
	size_t len[16];
	int n = junk(f, len);
	len[n] = frame(f[n], 1, 0, id, 0, 0, "a request, to a client"), n++;
	for (int i = 0; i < n; i++)
		cr_assert_eq(ipcx_send(b, f[i], len[i], T_GUARD_MS), (ssize_t)len[i]);
	unsigned char forged[64], real[64];
	size_t fl = frame(forged, 2, 0, id ^ 1, 0, 0, "forged");
	size_t rl = frame(real, 2, 0, id, 0, 0, "real");
	cr_assert_eq(ipcx_send(b, forged, fl, T_GUARD_MS), (ssize_t)fl);
	cr_assert_eq(ipcx_send(b, real, rl, T_GUARD_MS), (ssize_t)rl);
	char buf[16];
	struct ipcx_rpc_result res;
	cr_assert_eq(ipcx_rpc_wait(c, T_GUARD_MS, buf, sizeof(buf), &res), 0);
	cr_expect_eq(res.id, id);
	cr_expect(res.status == 4 && !memcmp(buf, "real", 4));
	struct ipcx_rpc_stats st;
	ipcx_rpc_client_stats(c, &st);
	cr_expect_eq(st.malformed, (uint64_t)n);
	cr_expect_eq(st.late, 1, "the forged reply names no call of ours");
	ipcx_rpc_client_close(c);
	ipcx_close(a);
	ipcx_close(b);
}

/* ---- rings: a client that dies ----------------------------------------------------------- */

struct doomed_client {
	char url[128];
	struct t_sync sent;
};

static int doomed_client_main(void *arg)
{
	struct doomed_client *d = arg;
	ipcx_rpc_client *c;
	if (ipcx_rpc_dial(d->url, 0, &c) < 0)
		return 1;
	uint64_t id;
	for (int i = 0; i < 100; i++)
		if (ipcx_rpc_start(c, &i, sizeof(i), T_GUARD_MS, 0, &id) < 0)
			return 2;
	t_post(&d->sent);
	pause(); /* killed here, its replies unread */
	return 3;
}

/*
 * A client killed with its calls taken and unanswered: the server answers
 * into its ring (or finds it gone) without blocking, and on close removes
 * the ring the dead client could not.
 */
static void client_killed(void (*url)(char *, size_t))
{
	struct doomed_client d;
	url(d.url, sizeof(d.url));
	t_sync_init(&d.sent);
	ipcx_rpc_server *s;
	cr_assert_eq(ipcx_rpc_serve(d.url, 0, &s), 0);
	pid_t pid = t_spawn(doomed_client_main, &d);
	cr_assert(t_wait_post(&d.sent, T_GUARD_MS));
	struct ipcx_rpc_req *q[100];
	for (int i = 0; i < 100; i++)
		cr_assert_eq(ipcx_rpc_next(s, T_GUARD_MS, &q[i]), 0);
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	for (int i = 0; i < 100; i++)
		ipcx_rpc_reply(q[i], q[i]->data, q[i]->len);
	/* Closing lets go of the dead client's ring, and removes it. */
	cr_expect_eq(ipcx_rpc_server_close(s), 0);
	struct ipcx_obj *objs;
	ssize_t n = ipcx_ls(NULL, IPCX_LS_NOPIDS, &objs);
	cr_assert_geq(n, 0);
	for (ssize_t i = 0; i < n; i++)
		cr_expect(objs[i].creator != pid, "the dead client's %s is left", objs[i].url);
	ipcx_objs_free(objs, (size_t)n);
	t_sync_close(&d.sent);
}

Test(rpc, client_killed_with_replies_pending_shm) { client_killed(url_shm); }
Test(rpc, client_killed_with_replies_pending_sysvshm) { client_killed(url_sysvshm); }

/* ---- odds and ends ------------------------------------------------------------------ */

Test(rpc, no_server)
{
	ipcx_rpc_client *c;
	char url[256];
	url_unix(url, sizeof(url));
	cr_expect_eq(ipcx_rpc_dial(url, 0, &c), -ECONNREFUSED);
	url_shm(url, sizeof(url));
	cr_expect_eq(ipcx_rpc_dial(url, 0, &c), -ECONNREFUSED);
	cr_expect_eq(ipcx_rpc_dial("udp://127.0.0.1:9", 0, &c), -EOPNOTSUPP);
	ipcx_rpc_server *s;
	cr_expect_eq(ipcx_rpc_serve("udp://127.0.0.1:0", 0, &s), -EOPNOTSUPP);
	cr_expect_eq(ipcx_rpc_serve("sysvshm:/tmp?proj=1", 0, &s), -EINVAL);
	cr_expect_eq(ipcx_rpc_serve(url, 0x8000, &s), -EINVAL);
}

Test(rpc, ids_are_unpredictable_and_distinct)
{
	ipcx_chan *a, *b;
	cr_assert_eq(ipcx_pair("socket", 0, &a, &b), 0);
	ipcx_rpc_client *c;
	cr_assert_eq(ipcx_rpc_client_chan(a, 0, &c), 0);
	uint64_t prev = 0, id;
	int small_steps = 0;
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(ipcx_rpc_start(c, "x", 1, -1, 0, &id), 0);
		cr_expect_neq(id, 0);
		cr_expect_neq(id, prev);
		small_steps += id - prev < 1000000 || prev - id < 1000000;
		prev = id;
	}
	cr_expect_lt(small_steps, 3, "ids look like a counter");
	cr_expect_eq(ipcx_rpc_client_stats(c, &(struct ipcx_rpc_stats){ 0 }), 0);
	ipcx_rpc_client_close(c);
	ipcx_close(a);
	ipcx_close(b);
}

/* ---- ipcx_peer and ipcx_proc_watch ------------------------------------------------------ */

static int dial_and_wait(void *arg)
{
	struct { char url[128]; struct t_sync done; } *p = arg;
	ipcx_chan *c;
	if (ipcx_dial(p->url, 0, &c) < 0)
		return 1;
	t_wait_post(&p->done, T_GUARD_MS);
	ipcx_close(c);
	return 0;
}

Test(proc, peer_of_connection_and_ring)
{
	struct ipcx_proc me, p;
	cr_assert_eq(ipcx_proc_self(&me), 0);
	cr_expect_eq(me.pid, getpid());
	cr_expect_gt(me.start, 0);
	/* A ring's dialer names its listener; the listener itself has no one peer. */
	char url[128];
	url_shm(url, sizeof(url));
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0);
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	cr_assert_eq(ipcx_peer(d, &p), 0);
	cr_expect(p.pid == me.pid && p.start == me.start);
	cr_expect_eq(ipcx_peer(l, &p), -ENOTCONN);
	ipcx_close(d);
	ipcx_close(l);
	/* A Unix connection names the process at the other end. */
	struct { char url[128]; struct t_sync done; } arg;
	url_unix(arg.url, sizeof(arg.url));
	t_sync_init(&arg.done);
	cr_assert_eq(ipcx_listen(arg.url, IPCX_ACCEPT, &l), 0);
	cr_expect_eq(ipcx_peer(l, &p), -ENOTCONN);
	pid_t pid = t_spawn(dial_and_wait, &arg);
	cr_assert_eq(ipcx_accept(l, T_GUARD_MS, &d), 0);
	cr_assert_eq(ipcx_peer(d, &p), 0);
	cr_expect_eq(p.pid, pid);
	t_post(&arg.done);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	ipcx_close(d);
	ipcx_close(l);
	t_sync_close(&arg.done);
	/* TCP cannot tell. */
	cr_assert_eq(ipcx_listen("tcp://127.0.0.1:0", IPCX_ACCEPT, &l), 0);
	char addr[128];
	ipcx_addr(l, addr, sizeof(addr));
	cr_assert_eq(ipcx_dial(addr, 0, &d), 0);
	cr_expect_eq(ipcx_peer(d, &p), -EOPNOTSUPP);
	ipcx_close(d);
	ipcx_close(l);
}

static int wait_for_kill(void *arg)
{
	t_post(arg);
	pause();
	return 0;
}

Test(proc, watch_turns_readable_at_death)
{
	struct t_sync up;
	t_sync_init(&up);
	pid_t pid = t_spawn(wait_for_kill, &up);
	cr_assert(t_wait_post(&up, T_GUARD_MS));
	struct ipcx_proc p = { pid, 0 };
	int fd;
	cr_expect_eq(ipcx_proc_watch(&p, 0, &fd), -ESRCH, "a wrong start time names nobody");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert(f);
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *q = strrchr(buf, ')') + 2;
	for (int i = 3; i < 22; i++)
		q = strchr(q, ' ') + 1;
	p.start = strtoull(q, NULL, 10);
	cr_assert_eq(ipcx_proc_watch(&p, 0, &fd), 0);
	struct pollfd pf = { fd, POLLIN, 0 };
	cr_expect_eq(poll(&pf, 1, 0), 0, "readable while it lives");
	kill(pid, SIGKILL);
	cr_expect_eq(poll(&pf, 1, T_GUARD_MS), 1, "not readable after its death");
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(poll(&pf, 1, 0), 1, "level-triggered");
	close(fd);
	cr_expect_eq(ipcx_proc_watch(&p, 0, &fd), -ESRCH, "gone");
	cr_expect_eq(ipcx_proc_watch(&p, 0x40, &fd), -EINVAL);
	t_sync_close(&up);
}
