/*
 * The conformance suite: every transport passes the same tests.  A
 * transport joins by adding a row to `cases` below: how to name a fresh
 * object, and what it promises (reliable, ordered, many senders, duplex).
 * A scheme in the registry without a row fails conf/every_scheme_has_a_row.
 *
 * Shape of every test: the parent forks the children, then listens and
 * hands them the address; they dial it and send; the parent receives.
 * Processes synchronise by handshakes (t_post / t_wait_post), never by
 * sleeping; timeouts only guard against hangs.
 *
 * Why fork first: a listener may run threads (nats.c's), and a child forked
 * while one of them holds a lock keeps that lock held for ever: under
 * AddressSanitizer, whose allocator takes no lock around fork(), the child
 * hung in its first malloc of that size (docs/nats.md, "Threads and fork").
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <ipcx.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/registry.h"
#include "core/tran.h"
#include "tnats.h"
#include "tsupport.h"

/* What a transport promises. */
#define T_RELIABLE 0x01u /* no loss, no duplicates */
#define T_ORDERED  0x02u /* one sender's messages arrive in order */
#define T_FANIN    0x04u /* many senders to one receiver */
#define T_ACCEPT   0x08u /* IPCX_ACCEPT gives a duplex channel per peer */
#define T_NOEMPTY  0x10u /* empty messages are refused (SOCK_SEQPACKET) */
#define T_DEATH_RX 0x20u /* the receiver learns (-EPIPE) when its only sender dies */
#define T_SPURIOUS 0x40u /* the descriptor may also turn readable with nothing
                            waiting (sysvmq: the kernel offers nothing to poll) */
#define T_LOG      0x80u /* a log: sends never depend on a live receiver */
#define T_ORPHAN   0x100u /* a killed listener leaves its object: ipcx_gc() takes it */
#define T_NOPEER   0x200u /* publish/subscribe: a send never depends on a live receiver,
                             and a message nobody subscribes to is gone */
#define T_UNSURE   0x400u /* a send that times out may have been stored all the same
                             (JetStream: no acknowledgement came; docs/nats.md) */
#define T_RELAYED  0x800u /* through a server: a send that has returned does not
                             mean the message waits at the receiver yet */

struct tcase {
	const char *name;
	/* Write a fresh URL into buf; NULL for pairs. */
	void (*url)(char *buf, size_t cap);
	const char *pair; /* ipcx_pair() kind, for fd: */
	unsigned caps;
};

static void url_unix(char *b, size_t n) { snprintf(b, n, "unix:%s", t_path(t_name())); }
static void url_unix_abstract(char *b, size_t n) { snprintf(b, n, "unix:@%s", t_name()); }
static void url_unixpacket(char *b, size_t n) { snprintf(b, n, "unixpacket:%s", t_path(t_name())); }
/* Larger than the kernel's default socket buffer: every socket must be sized. */
static void url_unixpacket_1m(char *b, size_t n)
{
	snprintf(b, n, "unixpacket:%s?max=1048576", t_path(t_name()));
}
static void url_unixgram(char *b, size_t n) { snprintf(b, n, "unixgram:%s", t_path(t_name())); }
static void url_tcp4(char *b, size_t n) { snprintf(b, n, "tcp://127.0.0.1:0"); }
static void url_tcp6(char *b, size_t n) { snprintf(b, n, "tcp://[::1]:0"); }
static void url_udp(char *b, size_t n) { snprintf(b, n, "udp://127.0.0.1:0"); }
static void url_fifo(char *b, size_t n) { snprintf(b, n, "fifo:%s", t_path(t_name())); }
/* Small queues: every test process of the machine shares root's RLIMIT_MSGQUEUE. */
static void url_mq(char *b, size_t n) { snprintf(b, n, "mq:/%s?maxmsg=10&msgsize=2048", t_name()); }
static void url_sysvmq(char *b, size_t n) { snprintf(b, n, "sysvmq:0x%08x", (unsigned)t_sysv_key()); }
static void url_file(char *b, size_t n) { snprintf(b, n, "file:%s", t_path(t_name())); }
static void url_shm(char *b, size_t n) { snprintf(b, n, "shm:/%s", t_name()); }
static void url_shm_spsc(char *b, size_t n) { snprintf(b, n, "shm:/%s?spsc=1", t_name()); }
static void url_sysvshm(char *b, size_t n) { snprintf(b, n, "sysvshm:0x%08x", (unsigned)t_sysv_key()); }
/*
 * A subject on a nats-server of the test process's own.  Core NATS has no
 * flow control from a subscriber to a publisher: the listener's queue must
 * hold what one sender can get ahead by (the bulk test sends 100,000); a
 * loss would be reported (-ENOBUFS) and fail the test.
 */
static void url_nats(char *b, size_t n)
{
	snprintf(b, n, "nats://%s/%s?pending=200000", t_nats_addr(), t_name());
}
/* JetStream: a stream and its durable consumer, both new for each test. */
static void url_nats_stream(char *b, size_t n)
{
	const char *addr = t_nats_addr(), *subject = t_name();
	snprintf(b, n, "nats://%s/%s?stream=%s", addr, subject, t_name());
}
/* The log overwrites its oldest records when full unless told to block. */
static void url_mmap(char *b, size_t n) { snprintf(b, n, "mmap:%s?policy=block", t_path(t_name())); }

#define STREAM (T_RELIABLE | T_ORDERED | T_FANIN | T_ACCEPT)

static struct tcase cases[] = {
	{ "unix", url_unix, NULL, STREAM },
	{ "unix-abstract", url_unix_abstract, NULL, STREAM },
	{ "unixpacket", url_unixpacket, NULL, STREAM | T_NOEMPTY },
	{ "unixpacket-1m", url_unixpacket_1m, NULL, STREAM | T_NOEMPTY },
	{ "unixgram", url_unixgram, NULL, T_RELIABLE | T_ORDERED | T_FANIN },
	{ "tcp4", url_tcp4, NULL, STREAM },
	{ "tcp6", url_tcp6, NULL, STREAM },
	/* Loopback UDP rarely loses, but it may: the suite asks no more of it. */
	{ "udp", url_udp, NULL, T_FANIN },
	{ "fifo", url_fifo, NULL, T_RELIABLE | T_ORDERED | T_FANIN },
	{ "fd-socketpair", NULL, "socket", T_RELIABLE | T_ORDERED | T_FANIN | T_NOEMPTY | T_DEATH_RX },
	{ "fd-pipe", NULL, "pipe", T_RELIABLE | T_ORDERED | T_FANIN | T_DEATH_RX },
	{ "mq", url_mq, NULL, T_RELIABLE | T_ORDERED | T_FANIN | T_ORPHAN },
	{ "sysvmq", url_sysvmq, NULL, T_RELIABLE | T_ORDERED | T_FANIN | T_ORPHAN | T_SPURIOUS },
	{ "file", url_file, NULL, T_RELIABLE | T_ORDERED | T_FANIN | T_LOG },
	/* A ring's listener is a server: it waits for the next sender, no -EPIPE. */
	{ "shm", url_shm, NULL, T_RELIABLE | T_ORDERED | T_FANIN },
	/* One producer at a time: the many-senders test is not for it. */
	{ "shm-spsc", url_shm_spsc, NULL, T_RELIABLE | T_ORDERED },
	{ "sysvshm", url_sysvshm, NULL, T_RELIABLE | T_ORDERED | T_FANIN },
	{ "mmap", url_mmap, NULL, T_RELIABLE | T_ORDERED | T_FANIN | T_LOG },
	/* A subscriber learns nothing of a publisher's death (no -EPIPE); with
	 * IPCX_ACCEPT, a channel per dialer that asks for replies (reply=1, which
	 * the listener's address carries). */
	{ "nats", url_nats, NULL, T_RELIABLE | T_ORDERED | T_FANIN | T_NOPEER | T_ACCEPT | T_RELAYED },
	/* A stream stores what is sent whether anyone listens or not: a log. */
	{ "nats-stream", url_nats_stream, NULL, T_RELIABLE | T_ORDERED | T_FANIN | T_LOG | T_UNSURE | T_RELAYED },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* The scheme a row tests: its URL's, or fd: for a pair. */
static void case_scheme(const struct tcase *tc, char *buf, size_t cap)
{
	char url[512] = "fd:";
	if (tc->url)
		tc->url(url, sizeof(url));
	snprintf(buf, cap, "%.*s", (int)strcspn(url, ":"), url);
}

static bool has_row(const char *scheme)
{
	char s[32];
	for (size_t k = 0; k < NCASES; k++) {
		case_scheme(&cases[k], s, sizeof(s));
		if (strcmp(s, scheme) == 0)
			return true;
	}
	return false;
}

/*
 * A transport cannot skip the suite: every registered scheme has a row, and
 * every row a registered scheme.
 */
Test(conf, every_scheme_has_a_row)
{
	size_t n = 0;
	for (const struct ipcx_tran *t; (t = ipcx__tran_at(n)); n++)
		cr_expect(has_row(t->scheme), "scheme %s: no row in cases[] (tests/test_conformance.c)",
			  t->scheme);
	cr_assert_gt(n, 0, "no transport registered");
	for (size_t k = 0; k < NCASES; k++) {
		char s[32];
		case_scheme(&cases[k], s, sizeof(s));
		cr_expect_not_null(ipcx__tran_find(s), "row %s: scheme %s is not registered",
				   cases[k].name, s);
	}
}

/*
 * Criterion hands each parameter to a fresh worker process, which may not
 * share our address-space layout: pass indexes into `cases`, not pointers.
 */
static struct criterion_test_params case_params(void)
{
	static int idx[NCASES];
	for (size_t i = 0; i < NCASES; i++)
		idx[i] = (int)i;
	return cr_make_param_array(int, idx, NCASES);
}

/* ---- the environment of one test ------------------------------------------- */

struct env {
	const struct tcase *tc;
	ipcx_chan *l;       /* the receiving side */
	ipcx_chan *w;       /* pairs: the sending end, closed in the parent after forks */
	char url[600];      /* what a child dials */
	struct t_sync addr; /* the parent writes url here, once per child */
	int children;       /* forked by env_spawn, not yet given url */
};

/* Before the children: a pair (which they inherit), nothing else. */
static void env_init(struct env *e, const struct tcase *tc)
{
	memset(e, 0, sizeof(*e));
	e->tc = tc;
	t_sync_init(&e->addr);
	if (tc->pair) {
		cr_assert_eq(ipcx_pair(tc->pair, 0, &e->w, &e->l), 0, "%s: pair", tc->name);
		snprintf(e->url, sizeof(e->url), "fd:%d", ipcx_fileno(e->w));
	}
}

/* A child, forked before the listener exists: it waits for the address (child_dial). */
static pid_t env_spawn(struct env *e, int (*fn)(void *), void *arg)
{
	cr_assert(e->tc->pair || !e->l, "%s: fork the children before listening", e->tc->name);
	e->children++;
	return t_spawn(fn, arg);
}

/* After the children are forked: the receiving side. */
static void env_listen(struct env *e, unsigned flags)
{
	if (e->tc->pair)
		return;
	char url[512];
	e->tc->url(url, sizeof(url));
	int r = ipcx_listen(url, flags, &e->l);
	cr_assert_eq(r, 0, "%s: listen %s: %s (%s)", e->tc->name, url, ipcx_strerror(r),
		     ipcx_errdetail());
	cr_assert_gt(ipcx_addr(e->l, e->url, sizeof(e->url)), 0);
}

/* The children may go: each gets the address; the parent lets go of its
 * copy of a pair's sending end. */
static void env_forked(struct env *e)
{
	for (; e->children > 0; e->children--)
		cr_assert_eq(write(e->addr.fd[1], e->url, sizeof(e->url)), (ssize_t)sizeof(e->url));
	if (e->w) {
		ipcx_close(e->w);
		e->w = NULL;
	}
}

static void env_close(struct env *e)
{
	env_forked(e);
	t_sync_close(&e->addr);
	cr_expect_eq(ipcx_close(e->l), 0);
}

/* In a child: wait for the address (one write of the parent, atomic in a
 * pipe), then the channel to send on. */
static ipcx_chan *child_dial(struct env *e)
{
	ipcx_chan *c;
	if (read(e->addr.fd[0], e->url, sizeof(e->url)) != (ssize_t)sizeof(e->url)) {
		fprintf(stderr, "%s: no address from the parent\n", e->tc->name);
		_exit(89);
	}
	int r = ipcx_dial(e->url, 0, &c);
	if (r < 0) {
		fprintf(stderr, "%s: dial %s: %s (%s)\n", e->tc->name, e->url, ipcx_strerror(r),
			ipcx_errdetail());
		_exit(90);
	}
	return c;
}

static void child_send(ipcx_chan *c, const void *m, size_t n)
{
	ssize_t r = ipcx_send(c, m, n, T_GUARD_MS);
	if (r != (ssize_t)n) {
		fprintf(stderr, "child send: %s (%s)\n", ipcx_strerror((int)r), ipcx_errdetail());
		_exit(91);
	}
}

/* ---- children ------------------------------------------------------------------ */

struct sender {
	struct env *e;
	int id;
	int count;
	size_t size;          /* bytes per message (at least 8) */
	struct t_sync *sent;  /* posted when all are sent, if set */
	struct t_sync *quit;  /* waited for before exiting, if set */
};

/* Message i of sender id: [id:u32][i:u32] then a pattern. */
static void fill(char *m, size_t n, int id, int i)
{
	uint32_t h[2] = { (uint32_t)id, (uint32_t)i };
	memcpy(m, h, 8);
	for (size_t k = 8; k < n; k++)
		m[k] = (char)(id * 31 + i * 7 + (int)k);
}

static int sender_main(void *arg)
{
	struct sender *s = arg;
	ipcx_chan *c = child_dial(s->e);
	char *m = malloc(s->size);
	for (int i = 0; i < s->count; i++) {
		fill(m, s->size, s->id, i);
		child_send(c, m, s->size);
	}
	if (s->sent)
		t_post(s->sent);
	if (s->quit && !t_wait_post(s->quit, T_GUARD_MS))
		_exit(92);
	free(m);
	ipcx_close(c);
	return 0;
}

static pid_t spawn_sender(struct sender *s)
{
	return env_spawn(s->e, sender_main, s);
}

static void expect_exit0(pid_t pid)
{
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0, "a child failed");
}

/* ---- tests ----------------------------------------------------------------- */

ParameterizedTestParameters(conf, round_trip)
{
	return case_params();
}

ParameterizedTest(int *ci, conf, round_trip)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	struct sender s = { &e, 7, 1, 64, NULL, NULL };
	pid_t pid = spawn_sender(&s);
	env_listen(&e, 0);
	env_forked(&e);
	char buf[128], want[64];
	ssize_t n = ipcx_recv(e.l, buf, sizeof(buf), T_GUARD_MS);
	cr_assert_eq(n, 64, "%s: recv gave %zd (%s)", tc->name, n, ipcx_strerror((int)n));
	fill(want, 64, 7, 0);
	cr_expect(memcmp(buf, want, 64) == 0, "%s: payload differs", tc->name);
	expect_exit0(pid);
	env_close(&e);
}

ParameterizedTestParameters(conf, empty_message)
{
	return case_params();
}

static int send_empty_then_one(void *arg)
{
	struct env *e = arg;
	ipcx_chan *c = child_dial(e);
	child_send(c, "", 0);
	child_send(c, "x", 1);
	ipcx_close(c);
	return 0;
}

ParameterizedTest(int *ci, conf, empty_message)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	if (tc->caps & T_NOEMPTY) {
		env_listen(&e, 0);
		ipcx_chan *c;
		cr_assert_eq(ipcx_dial(e.url, 0, &c), 0);
		cr_expect_eq(ipcx_send(c, "", 0, 0), -EINVAL, "%s: empty send must be refused", tc->name);
		ipcx_close(c);
		env_close(&e);
		return;
	}
	pid_t pid = env_spawn(&e, send_empty_then_one, &e);
	env_listen(&e, 0);
	env_forked(&e);
	char buf[8];
	cr_expect_eq(ipcx_recv(e.l, buf, sizeof(buf), T_GUARD_MS), 0, "%s: empty message", tc->name);
	cr_expect_eq(ipcx_recv(e.l, buf, sizeof(buf), T_GUARD_MS), 1, "%s: message after it", tc->name);
	expect_exit0(pid);
	env_close(&e);
}

/* Receive count messages of `size` from nsenders, checking what was promised. */
static void receive_all(struct env *e, int nsenders, int count, size_t size)
{
	int *next = calloc((size_t)nsenders, sizeof(int));
	char *buf = malloc(size + 1), *want = malloc(size);
	long total = (long)nsenders * count, got = 0;
	while (got < total) {
		int timeout = (e->tc->caps & T_RELIABLE) ? T_GUARD_MS : 2000;
		ssize_t n = ipcx_recv(e->l, buf, size + 1, timeout);
		if (n == -ETIMEDOUT && !(e->tc->caps & T_RELIABLE))
			break; /* an unreliable transport lost the rest */
		cr_assert_eq(n, (ssize_t)size, "%s: message %ld: %zd (%s)", e->tc->name, got, n,
			     ipcx_strerror((int)n));
		uint32_t h[2];
		memcpy(h, buf, 8);
		cr_assert_lt(h[0], (uint32_t)nsenders, "%s: bad sender id", e->tc->name);
		if (e->tc->caps & T_ORDERED)
			cr_assert_eq(h[1], (uint32_t)next[h[0]], "%s: sender %u: got %u, want %d",
				     e->tc->name, h[0], h[1], next[h[0]]);
		next[h[0]] = (int)h[1] + 1;
		fill(want, size, (int)h[0], (int)h[1]);
		cr_assert(memcmp(buf, want, size) == 0, "%s: payload of %u/%u differs", e->tc->name,
			  h[0], h[1]);
		got++;
	}
	if (e->tc->caps & T_RELIABLE)
		cr_expect_eq(got, total, "%s: lost messages", e->tc->name);
	else
		cr_expect_gt(got, 0, "%s: nothing arrived", e->tc->name);
	free(next);
	free(buf);
	free(want);
}

ParameterizedTestParameters(conf, order_and_bulk)
{
	return case_params();
}

/* 100,000 messages from one sender: none lost, none out of order. */
ParameterizedTest(int *ci, conf, order_and_bulk)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	struct sender s = { &e, 0, 100000, 16, NULL, NULL };
	pid_t pid = spawn_sender(&s);
	env_listen(&e, 0);
	env_forked(&e);
	receive_all(&e, 1, s.count, s.size);
	if (tc->caps & T_RELIABLE)
		expect_exit0(pid);
	else
		t_join(pid, T_GUARD_MS); /* it may block on a full queue; then it is killed */
	env_close(&e);
}

ParameterizedTestParameters(conf, many_senders)
{
	return case_params();
}

ParameterizedTest(int *ci, conf, many_senders)
{
	const struct tcase *tc = &cases[*ci];
	if (!(tc->caps & T_FANIN))
		cr_skip_test("%s: one sender only", tc->name);
	struct env e;
	env_init(&e, tc);
	enum { N = 4, COUNT = 2000 };
	struct sender s[N];
	pid_t pid[N];
	for (int i = 0; i < N; i++) {
		s[i] = (struct sender){ &e, i, COUNT, 100, NULL, NULL };
		pid[i] = spawn_sender(&s[i]);
	}
	env_listen(&e, 0);
	env_forked(&e);
	receive_all(&e, N, COUNT, 100);
	for (int i = 0; i < N; i++)
		if (tc->caps & T_RELIABLE)
			expect_exit0(pid[i]);
		else
			t_join(pid[i], T_GUARD_MS);
	env_close(&e);
}

ParameterizedTestParameters(conf, largest_and_oversize)
{
	return case_params();
}

static int send_largest(void *arg)
{
	struct env *e = arg;
	ipcx_chan *c = child_dial(e);
	size_t max = ipcx_max_msg(c);
	char *m = malloc(max + 1);
	fill(m, max, 1, 2);
	if (ipcx_send(c, m, max + 1, 0) != -EMSGSIZE)
		_exit(93);
	child_send(c, m, max);
	child_send(c, "after", 5);
	free(m);
	ipcx_close(c);
	return 0;
}

ParameterizedTest(int *ci, conf, largest_and_oversize)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	pid_t pid = env_spawn(&e, send_largest, &e);
	env_listen(&e, 0);
	size_t max = ipcx_max_msg(e.l);
	cr_assert_gt(max, 0);
	env_forked(&e);
	char *buf = malloc(max), *want = malloc(max);
	/* A buffer too small: -EMSGSIZE, and where boundaries are kept by us or
	 * peeked, the message is still there for a large enough buffer. */
	ssize_t n = ipcx_recv(e.l, buf, 8, T_GUARD_MS);
	cr_expect_eq(n, -EMSGSIZE, "%s: small buffer gave %zd", tc->name, n);
	n = ipcx_recv(e.l, buf, max, T_GUARD_MS);
	cr_assert_eq(n, (ssize_t)max, "%s: largest (%zu) gave %zd (%s)", tc->name, max, n,
		     ipcx_strerror((int)n));
	fill(want, max, 1, 2);
	cr_expect(memcmp(buf, want, max) == 0, "%s: largest payload differs", tc->name);
	n = ipcx_recv(e.l, buf, max, T_GUARD_MS);
	cr_expect_eq(n, 5, "%s: the message after the largest", tc->name);
	expect_exit0(pid);
	free(buf);
	free(want);
	env_close(&e);
}

ParameterizedTestParameters(conf, timeout_and_nonblocking)
{
	return case_params();
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ParameterizedTest(int *ci, conf, timeout_and_nonblocking)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	env_listen(&e, 0);
	char buf[64];
	cr_expect_eq(ipcx_recv(e.l, buf, sizeof(buf), 0), -EAGAIN, "%s: timeout 0", tc->name);
	int64_t t0 = now_ms();
	ssize_t n = ipcx_recv(e.l, buf, sizeof(buf), 150);
	int64_t took = now_ms() - t0;
	cr_expect_eq(n, -ETIMEDOUT, "%s: gave %zd", tc->name, n);
	cr_expect_geq(took, 150, "%s: returned early, after %lld ms", tc->name, (long long)took);
	env_close(&e);
}

ParameterizedTestParameters(conf, poll_readiness)
{
	return case_params();
}

/* Readable exactly while a message waits, also when two arrive in one read. */
ParameterizedTest(int *ci, conf, poll_readiness)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	struct t_sync sent, quit;
	t_sync_init(&sent);
	t_sync_init(&quit);
	struct sender s = { &e, 3, 2, 32, &sent, &quit };
	pid_t pid = spawn_sender(&s);
	env_listen(&e, 0);
	cr_assert_geq(ipcx_fileno(e.l), 0);
	bool exact = !(tc->caps & T_SPURIOUS);
	if (exact)
		cr_expect_not(t_chan_readable(e.l, 0), "%s: readable before anything was sent", tc->name);
	env_forked(&e);
	cr_assert(t_wait_post(&sent, T_GUARD_MS));
	char buf[64];
	for (int i = 0; i < 2; i++) {
		cr_assert(t_chan_readable(e.l, T_GUARD_MS), "%s: not readable with message %d waiting",
			  tc->name, i);
		cr_assert_eq(ipcx_recv(e.l, buf, sizeof(buf), 0), 32, "%s: recv %d", tc->name, i);
	}
	if (exact)
		cr_expect_not(t_chan_readable(e.l, 0), "%s: readable with nothing waiting", tc->name);
	else /* a spurious wake-up is followed by a receive that says so */
		cr_expect_eq(ipcx_recv(e.l, buf, sizeof(buf), 0), -EAGAIN, "%s", tc->name);
	t_post(&quit);
	expect_exit0(pid);
	t_sync_close(&sent);
	t_sync_close(&quit);
	env_close(&e);
}

ParameterizedTestParameters(conf, sender_killed)
{
	return case_params();
}

/*
 * A sender killed with SIGKILL: the receiver still gets what was sent before,
 * and then either learns of the end (-EPIPE) or, for a many-sender object,
 * simply times out: never a hang, never a crash.
 */
ParameterizedTest(int *ci, conf, sender_killed)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	struct t_sync sent, never;
	t_sync_init(&sent);
	t_sync_init(&never);
	struct sender s = { &e, 5, 3, 24, &sent, &never };
	pid_t pid = spawn_sender(&s);
	env_listen(&e, 0);
	env_forked(&e);
	cr_assert(t_wait_post(&sent, T_GUARD_MS));
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	char buf[64];
	int got = 0;
	ssize_t n;
	while ((n = ipcx_recv(e.l, buf, sizeof(buf), 500)) == 24)
		got++;
	if (tc->caps & T_RELIABLE)
		cr_expect_eq(got, 3, "%s: messages sent before the kill", tc->name);
	if (tc->caps & T_DEATH_RX)
		cr_expect_eq(n, -EPIPE, "%s: after the kill: %zd", tc->name, n);
	else
		cr_expect(n == -ETIMEDOUT || n == -EPIPE, "%s: after the kill: %zd", tc->name, n);
	t_sync_close(&sent);
	t_sync_close(&never);
	env_close(&e);
}

ParameterizedTestParameters(conf, receiver_killed)
{
	return case_params();
}

struct rx_child {
	char listen_url[512]; /* made by the parent, whose folder it lives in */
	char url[600];
	struct t_sync *ready;
};

static int receiver_main(void *arg)
{
	struct rx_child *x = arg;
	struct env e;
	memset(&e, 0, sizeof(e));
	if (ipcx_listen(x->listen_url, 0, &e.l) < 0)
		return 94;
	/* Tell the parent the address; then wait to be killed. */
	ipcx_addr(e.l, x->url, sizeof(x->url));
	if (write(x->ready->fd[1], x->url, sizeof(x->url)) != (ssize_t)sizeof(x->url))
		return 95;
	pause();
	return 0;
}

/* The receiver killed with SIGKILL: a sender gets an error, not a hang. */
ParameterizedTest(int *ci, conf, receiver_killed)
{
	const struct tcase *tc = &cases[*ci];
	if (tc->pair)
		cr_skip_test("%s: covered by the pair tests", tc->name);
	struct t_sync ready;
	t_sync_init(&ready);
	struct rx_child x = { "", "", &ready };
	tc->url(x.listen_url, sizeof(x.listen_url));
	pid_t pid = t_spawn(receiver_main, &x);
	char url[600];
	cr_assert_eq(read(ready.fd[0], url, sizeof(url)), (ssize_t)sizeof(url));
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(url, 0, &c), 0, "%s: dial %s: %s", tc->name, url, ipcx_errdetail());
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	/* The first sends may still go into buffers; within a bounded number an
	 * error must come.  A log needs no receiver, nor does a publisher: every
	 * send goes in (into the log; to nobody). */
	ssize_t r = 0;
	char m[64] = "x";
	int i;
	bool nopeer = tc->caps & (T_LOG | T_NOPEER);
	for (i = 0; i < (nopeer ? 100 : 10000) && r >= 0; i++)
		r = ipcx_send(c, m, sizeof(m), 200);
	if (nopeer) {
		cr_expect_eq(r, (ssize_t)sizeof(m), "%s: a send without a receiver was refused: %s",
			     tc->name, ipcx_strerror((int)r));
	} else {
		cr_expect_lt(r, 0, "%s: sends to a dead receiver kept succeeding", tc->name);
		cr_expect(r == -EPIPE || r == -ETIMEDOUT, "%s: gave %s", tc->name,
			  ipcx_strerror((int)r));
	}
	ipcx_close(c);
	if (tc->caps & T_ORPHAN) {
		/* No one was left to remove the queue; its creator record says its
		 * creator is dead, so the garbage collector takes it. */
		char canon[600];
		snprintf(canon, sizeof(canon), "%s", url);
		canon[strcspn(canon, "?")] = '\0';
		struct ipcx_obj *gone = NULL;
		ssize_t ng = ipcx_gc(canon, 0, &gone);
		cr_expect_eq(ng, 1, "%s: gc %s took %zd (%s)", tc->name, canon, ng, ipcx_errdetail());
		if (ng > 0)
			ipcx_objs_free(gone, (size_t)ng);
		if (ng != 1) /* leave nothing behind even so */
			ipcx_obj_remove(canon, 0);
	}
	/* The dead listener could not remove its socket file or FIFO: a new
	 * listener on the same URL finds it stale, replaces it, and cleans up. */
	char fresh[600];
	snprintf(fresh, sizeof(fresh), "%s", url);
	if (strncmp(url, "unix:/", 6) == 0 || strncmp(url, "unixpacket:/", 12) == 0 ||
	    strncmp(url, "unixgram:/", 10) == 0 || strncmp(url, "fifo:/", 6) == 0 ||
	    strncmp(url, "shm:/", 5) == 0 || strncmp(url, "sysvshm:", 8) == 0) {
		ipcx_chan *l;
		cr_expect_eq(ipcx_listen(fresh, 0, &l), 0, "%s: stale object not replaced: %s",
			     tc->name, ipcx_errdetail());
		ipcx_close(l);
	}
	t_sync_close(&ready);
}

ParameterizedTestParameters(conf, duplex_accept)
{
	return case_params();
}

static int echo_client(void *arg)
{
	struct env *e = arg;
	ipcx_chan *c = child_dial(e);
	char buf[64];
	for (int i = 0; i < 100; i++) {
		char m[32];
		int n = snprintf(m, sizeof(m), "ping %d", i);
		child_send(c, m, (size_t)n);
		ssize_t r = ipcx_recv(c, buf, sizeof(buf), T_GUARD_MS);
		if (r != n || memcmp(buf, m, (size_t)n) != 0)
			_exit(96);
	}
	ipcx_close(c);
	return 0;
}

/* IPCX_ACCEPT: one duplex conversation per peer; the peer's end is -EPIPE. */
ParameterizedTest(int *ci, conf, duplex_accept)
{
	const struct tcase *tc = &cases[*ci];
	if (!(tc->caps & T_ACCEPT))
		cr_skip_test("%s: no connections", tc->name);
	struct env e;
	env_init(&e, tc);
	pid_t pid = env_spawn(&e, echo_client, &e);
	env_listen(&e, IPCX_ACCEPT);
	env_forked(&e);
	ipcx_chan *c;
	cr_assert_eq(ipcx_accept(e.l, T_GUARD_MS, &c), 0, "%s: accept", tc->name);
	char buf[64];
	ssize_t n;
	while ((n = ipcx_recv(c, buf, sizeof(buf), T_GUARD_MS)) > 0)
		cr_assert_eq(ipcx_send(c, buf, (size_t)n, T_GUARD_MS), n);
	cr_expect_eq(n, -EPIPE, "%s: end of conversation gave %zd", tc->name, n);
	expect_exit0(pid);
	ipcx_close(c);
	ipcx_chan *none = NULL;
	cr_expect_eq(ipcx_accept(e.l, 0, &none), -EAGAIN, "%s: no second peer", tc->name);
	cr_expect_null(none);
	env_close(&e);
}

ParameterizedTestParameters(conf, duplex_largest)
{
	return case_params();
}

static int take_largest(void *arg)
{
	struct env *e = arg;
	ipcx_chan *c = child_dial(e);
	size_t max = ipcx_max_msg(c);
	char *buf = malloc(max), *want = malloc(max);
	child_send(c, "go", 2);
	ssize_t n = ipcx_recv(c, buf, max, T_GUARD_MS);
	fill(want, max, 4, 4);
	int bad = n != (ssize_t)max || memcmp(buf, want, max) != 0;
	free(buf);
	free(want);
	ipcx_close(c);
	return bad ? 97 : 0;
}

/* The channel ipcx_accept() gives keeps the listener's promise: max bytes back. */
ParameterizedTest(int *ci, conf, duplex_largest)
{
	const struct tcase *tc = &cases[*ci];
	if (!(tc->caps & T_ACCEPT))
		cr_skip_test("%s: no connections", tc->name);
	struct env e;
	env_init(&e, tc);
	pid_t pid = env_spawn(&e, take_largest, &e);
	env_listen(&e, IPCX_ACCEPT);
	env_forked(&e);
	ipcx_chan *c;
	cr_assert_eq(ipcx_accept(e.l, T_GUARD_MS, &c), 0, "%s: accept", tc->name);
	size_t max = ipcx_max_msg(c);
	cr_expect_eq(max, ipcx_max_msg(e.l), "%s: the accepted channel's limit", tc->name);
	char go[4];
	cr_assert_eq(ipcx_recv(c, go, sizeof(go), T_GUARD_MS), 2);
	char *m = malloc(max);
	fill(m, max, 4, 4);
	ssize_t n = ipcx_send(c, m, max, T_GUARD_MS);
	cr_expect_eq(n, (ssize_t)max, "%s: largest from the accepted side: %s", tc->name,
		     ipcx_strerror((int)n));
	free(m);
	expect_exit0(pid);
	ipcx_close(c);
	env_close(&e);
}

/* ---- batches: ipcx_sendv, ipcx_recvv ---------------------------------------- */

#define BATCH_BIG 70000 /* mixed sizes reach past one 64 KiB read */

/* Size of message i of a batch: mixed, from 8 bytes to the channel's limit. */
static size_t batch_size(int i, size_t max)
{
	size_t top = max < BATCH_BIG ? max : BATCH_BIG;
	return 8 + ((size_t)i * 7919u) % (top - 7);
}

struct batcher {
	struct env *e;
	int count;            /* messages, sent `per` to an ipcx_sendv */
	int per;
	size_t size;          /* 0: mixed (batch_size); else every message's, at most
	                         the channel's limit (the child learns it from its dial) */
	int timeout_ms;       /* of each ipcx_sendv */
	ssize_t *sent;        /* shared with the parent: what the batches returned */
	struct t_sync *started, *done, *quit; /* each posted or waited for if set */
	int id;               /* the sender's id in its messages */
	size_t rcap;          /* the receiver's buffers (recv_batches); 0: size + 1 */
};

static size_t batcher_size(const struct batcher *b, int i, size_t max)
{
	return b->size ? (b->size < max ? b->size : max) : batch_size(i, max);
}

static int batcher_main(void *arg)
{
	struct batcher *b = arg;
	ipcx_chan *c = child_dial(b->e);
	size_t max = ipcx_max_msg(c);
	struct ipcx_msg *v = calloc((size_t)b->per, sizeof(*v));
	for (int i = 0; i < b->per; i++)
		v[i].buf = malloc((b->size ? b->size : (max < BATCH_BIG ? max : BATCH_BIG)) + 1);
	if (b->started)
		t_post(b->started);
	ssize_t total = 0;
	for (int at = 0; at < b->count; at += b->per) {
		int k = b->count - at < b->per ? b->count - at : b->per;
		for (int i = 0; i < k; i++) {
			v[i].len = batcher_size(b, at + i, max);
			fill(v[i].buf, v[i].len, b->id, at + i);
		}
		ssize_t r = ipcx_sendv(c, v, (size_t)k, b->timeout_ms);
		if (r < 0 && total == 0)
			total = r;
		if (r > 0)
			total += r;
		if (r != k)
			break;
	}
	*b->sent = total;
	if (b->done)
		t_post(b->done);
	if (b->quit)
		t_wait_post(b->quit, T_GUARD_MS);
	for (int i = 0; i < b->per; i++)
		free(v[i].buf);
	free(v);
	ipcx_close(c);
	return 0;
}

/* Shared with the children: what their ipcx_sendv returned. */
static ssize_t *shared_count(void)
{
	ssize_t *p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	*p = 0;
	return p;
}

/*
 * Receive with ipcx_recvv, `per` buffers at a time, messages `from` on
 * until `count` or a failure; each must be that message of batcher b,
 * whole.  Returns the number of the next; *end gets the failure that ended
 * it (0 if none).
 */
static int recv_batches(struct env *e, const struct batcher *b, int from, int count, int per,
			int timeout_ms, ssize_t *end)
{
	size_t max = ipcx_max_msg(e->l);
	size_t cap = b->rcap ? b->rcap : (b->size ? b->size : (max < BATCH_BIG ? max : BATCH_BIG)) + 1;
	struct ipcx_msg *v = calloc((size_t)per, sizeof(*v));
	char *want = malloc(cap);
	for (int i = 0; i < per; i++)
		v[i] = (struct ipcx_msg){ .buf = malloc(cap), .cap = cap };
	int got = from;
	*end = 0;
	while (got < count) {
		int most = count - got < per ? count - got : per;
		ssize_t r = ipcx_recvv(e->l, v, (size_t)most, timeout_ms);
		if (r < 0) {
			*end = r;
			break;
		}
		cr_assert(r >= 1 && r <= most, "%s: ipcx_recvv gave %zd", e->tc->name, r);
		for (ssize_t i = 0; i < r; i++, got++) {
			uint32_t h[2];
			memcpy(h, v[i].buf, 8);
			cr_assert_eq(h[1], (uint32_t)got, "%s: message %u, want %d", e->tc->name, h[1], got);
			size_t n = batcher_size(b, got, ipcx_max_msg(e->l));
			cr_assert_eq(v[i].len, n, "%s: message %d: %zu bytes, want %zu", e->tc->name, got,
				     v[i].len, n);
			fill(want, n, b->id, got);
			cr_assert(memcmp(v[i].buf, want, n) == 0, "%s: message %d differs", e->tc->name, got);
		}
	}
	for (int i = 0; i < per; i++)
		free(v[i].buf);
	free(v);
	free(want);
	return got;
}

/*
 * One batch test: a batcher child sending count messages, per to an
 * ipcx_sendv of timeout_ms, each of size bytes (0: mixed), forked before
 * the listener.  With handshake it posts `done` once its batches have
 * returned, and waits for `quit` before it closes.
 */
struct batch_run {
	struct env e;
	struct batcher b;
	struct t_sync done, quit;
	pid_t pid;
};

static void batch_start(struct batch_run *r, int ci, int count, int per, size_t size,
			int timeout_ms, bool handshake)
{
	env_init(&r->e, &cases[ci]);
	r->b = (struct batcher){ &r->e, count, per, size, timeout_ms, shared_count(), NULL, NULL,
				 NULL, 1, 0 };
	if (handshake) {
		t_sync_init(&r->done);
		t_sync_init(&r->quit);
		r->b.done = &r->done;
		r->b.quit = &r->quit;
	}
	r->pid = env_spawn(&r->e, batcher_main, &r->b);
	env_listen(&r->e, 0);
	env_forked(&r->e);
}

static void batch_end(struct batch_run *r)
{
	if (r->b.done) {
		t_sync_close(&r->done);
		t_sync_close(&r->quit);
	}
	munmap(r->b.sent, sizeof(*r->b.sent));
	env_close(&r->e);
}

/* recv_batches of messages from..count-1, `per` at a time: all must come. */
static void expect_batches(struct batch_run *r, int from, int count, int per, int timeout_ms)
{
	ssize_t end;
	cr_expect_eq(recv_batches(&r->e, &r->b, from, count, per, timeout_ms, &end), count,
		     "%s: end %zd", r->e.tc->name, end);
}

/*
 * Every message of one batcher (count, sent per at a time, of size) comes
 * whole and in order, received recv_per at a time; every ipcx_sendv went.
 */
static void batch_all_arrive(int ci, int count, int per, size_t size, int recv_per)
{
	struct batch_run r;
	batch_start(&r, ci, count, per, size, T_GUARD_MS, false);
	expect_batches(&r, 0, count, recv_per, T_GUARD_MS);
	expect_exit0(r.pid);
	cr_expect_eq(*r.b.sent, count, "%s: ipcx_sendv", r.e.tc->name);
	batch_end(&r);
}

/*
 * The rows that promise all of `need` and none of `without` (pairs too
 * unless no_pairs), as indexes into cases, in the caller's idx.
 */
static struct criterion_test_params rows_where(int *idx, unsigned need, unsigned without,
					       bool no_pairs)
{
	size_t n = 0;
	for (size_t i = 0; i < NCASES; i++)
		if ((cases[i].caps & (need | without)) == need && !(no_pairs && cases[i].pair))
			idx[n++] = (int)i;
	return cr_make_param_array(int, idx, n);
}

static struct criterion_test_params reliable_params(void)
{
	static int idx[NCASES];
	return rows_where(idx, T_RELIABLE | T_ORDERED, 0, false);
}

ParameterizedTestParameters(conf, batch_mixed_sizes)
{
	return reliable_params();
}

/*
 * Batches of mixed sizes, received in batches of another length: every
 * message whole and in order, frames split across the reads of a stream.
 */
ParameterizedTest(int *ci, conf, batch_mixed_sizes)
{
	batch_all_arrive(*ci, 300, 16, 0, 7);
}

ParameterizedTestParameters(conf, batch_larger_than_buffers)
{
	return reliable_params();
}

/* One ipcx_sendv of 4 MiB, far more than any buffer: it waits for room as it goes. */
ParameterizedTest(int *ci, conf, batch_larger_than_buffers)
{
	batch_all_arrive(*ci, 4096, 4096, 1024, 100);
}

ParameterizedTestParameters(conf, batch_timeout_counts_exactly)
{
	return reliable_params();
}

/*
 * A batch that cannot all go out while nobody receives stops at its
 * timeout and says how many went: exactly those arrive, nothing more.
 */
ParameterizedTest(int *ci, conf, batch_timeout_counts_exactly)
{
	struct batch_run r;
	batch_start(&r, *ci, 20000, 20000, 1000, 200, true);
	const struct tcase *tc = r.e.tc;
	size_t size = batcher_size(&r.b, 0, ipcx_max_msg(r.e.l));
	cr_assert(t_wait_post(&r.done, T_GUARD_MS));
	ssize_t k = *r.b.sent;
	cr_assert(k >= 1 && k <= 20000, "%s: ipcx_sendv gave %zd", tc->name, k);
	/*
	 * A stream keeps the tail of a frame cut by the timeout, and sends it
	 * at close if there is room then without waiting: so the sender
	 * closes once all but the last are taken.
	 */
	expect_batches(&r, 0, (int)k - 1, 64, T_GUARD_MS);
	t_post(&r.quit);
	expect_batches(&r, (int)k - 1, (int)k, 64, T_GUARD_MS);
	expect_exit0(r.pid);
	struct ipcx_msg one = { .buf = malloc(size + 1), .cap = size + 1 };
	ssize_t n = ipcx_recvv(r.e.l, &one, 1, 0);
	if (n == 1 && (tc->caps & T_UNSURE)) {
		/* The message whose send timed out was stored after all: it
		 * may come, next in order and whole, and nothing after it. */
		uint32_t h[2];
		memcpy(h, one.buf, 8);
		cr_expect_eq(h[1], (uint32_t)k, "%s: after the %zd sent came message %u", tc->name, k,
			     h[1]);
		cr_expect_eq(one.len, size, "%s: message %zd", tc->name, k);
		n = ipcx_recvv(r.e.l, &one, 1, 0);
	}
	cr_expect(n == -EAGAIN || n == -EPIPE, "%s: after the %zd sent: %zd", tc->name, k, n);
	free(one.buf);
	batch_end(&r);
}

ParameterizedTestParameters(conf, batch_partial_receive)
{
	/* Not through a server: the test needs what was sent to wait already. */
	static int idx[NCASES];
	return rows_where(idx, T_RELIABLE | T_ORDERED, T_RELAYED, false);
}

/*
 * A receive of fewer than wait takes exactly as many, and the descriptor
 * stays readable until the rest are taken.
 */
ParameterizedTest(int *ci, conf, batch_partial_receive)
{
	struct batch_run r;
	batch_start(&r, *ci, 10, 10, 32, T_GUARD_MS, true);
	const struct tcase *tc = r.e.tc;
	cr_assert_geq(ipcx_fileno(r.e.l), 0);
	cr_assert(t_wait_post(&r.done, T_GUARD_MS));
	cr_assert_eq(*r.b.sent, 10, "%s: ipcx_sendv", tc->name);
	cr_assert(t_readable(ipcx_fileno(r.e.l), T_GUARD_MS), "%s: not readable with 10 waiting",
		  tc->name);
	expect_batches(&r, 0, 3, 3, 0);
	cr_expect(t_readable(ipcx_fileno(r.e.l), 0), "%s: not readable with 7 left", tc->name);
	struct ipcx_msg v[16];
	char bufs[16][40];
	for (int i = 0; i < 16; i++)
		v[i] = (struct ipcx_msg){ .buf = bufs[i], .cap = sizeof(bufs[i]) };
	cr_expect_eq(ipcx_recvv(r.e.l, v, 16, 0), 7, "%s: the 7 left", tc->name);
	if (!(tc->caps & T_SPURIOUS))
		cr_expect_not(t_readable(ipcx_fileno(r.e.l), 0), "%s: readable with nothing waiting",
			      tc->name);
	cr_expect_eq(ipcx_recvv(r.e.l, v, 16, 0), -EAGAIN, "%s", tc->name);
	t_post(&r.quit);
	expect_exit0(r.pid);
	batch_end(&r);
}

ParameterizedTestParameters(conf, batch_full_buffer_whole_buffers)
{
	/* As batch_partial_receive, and not a log: its sends never wait for room. */
	static int idx[NCASES];
	return rows_where(idx, T_RELIABLE | T_ORDERED, T_RELAYED | T_LOG, false);
}

/*
 * A batch of small messages far larger than the kernel's buffer, sent with
 * timeout 0 while nobody receives, stops where the buffer is full and says
 * exactly how many went (a packet socket: where sendmmsg stopped).  They
 * are then received into buffers of ipcx_max_msg() bytes (a packet
 * socket: many to a recvmmsg): a part first, with the descriptor readable
 * for the rest, then all of them, in order, and nothing more.
 */
ParameterizedTest(int *ci, conf, batch_full_buffer_whole_buffers)
{
	enum { COUNT = 200000 }; /* 13 MB of frames: more than any buffer here */
	struct batch_run r;
	batch_start(&r, *ci, COUNT, COUNT, 64, 0, true);
	const struct tcase *tc = r.e.tc;
	cr_assert_geq(ipcx_fileno(r.e.l), 0);
	size_t max = ipcx_max_msg(r.e.l);
	r.b.rcap = max <= (1u << 20) ? max : 65;
	int per = r.b.rcap > 65536 ? 16 : 64;
	cr_assert(t_wait_post(&r.done, T_GUARD_MS));
	ssize_t k = *r.b.sent;
	cr_assert(k >= 4 && k < COUNT, "%s: ipcx_sendv with timeout 0 gave %zd of %d", tc->name, k,
		  COUNT);
	expect_batches(&r, 0, 3, 3, T_GUARD_MS);
	cr_expect(t_readable(ipcx_fileno(r.e.l), 0), "%s: not readable with %zd left", tc->name,
		  k - 3);
	/* As in batch_timeout_counts_exactly: a stream's cut frame goes at close. */
	expect_batches(&r, 3, (int)k - 1, per, T_GUARD_MS);
	t_post(&r.quit);
	expect_batches(&r, (int)k - 1, (int)k, per, T_GUARD_MS);
	expect_exit0(r.pid);
	char *buf = malloc(r.b.rcap);
	struct ipcx_msg one = { .buf = buf, .cap = r.b.rcap };
	ssize_t n = ipcx_recvv(r.e.l, &one, 1, 0);
	cr_expect(n == -EAGAIN || n == -EPIPE, "%s: after the %zd sent: %zd", tc->name, k, n);
	free(buf);
	batch_end(&r);
}

ParameterizedTestParameters(conf, batch_sender_killed)
{
	return reliable_params();
}

/*
 * A sender killed in the middle of a batch too large to go out at once:
 * what arrives is whole and in order, then the end or a timeout; never a
 * torn message.
 */
ParameterizedTest(int *ci, conf, batch_sender_killed)
{
	struct batch_run r;
	batch_start(&r, *ci, 20000, 20000, 1000, T_GUARD_MS, false);
	const struct tcase *tc = r.e.tc;
	/* Mid-batch: the first message is here, the batch cannot all fit. */
	ssize_t end;
	cr_assert_eq(recv_batches(&r.e, &r.b, 0, 1, 1, T_GUARD_MS, &end), 1, "%s: %zd", tc->name,
		     end);
	kill(r.pid, SIGKILL);
	cr_expect_eq(t_join(r.pid, T_GUARD_MS), 128 + SIGKILL);
	int got = recv_batches(&r.e, &r.b, 1, 20000, 64, 500, &end);
	cr_expect(end == -EPIPE || end == -ETIMEDOUT || (end == 0 && (tc->caps & T_LOG)),
		  "%s: after %d: %zd", tc->name, got, end);
	if (tc->caps & T_DEATH_RX)
		cr_expect_eq(end, -EPIPE, "%s", tc->name);
	batch_end(&r);
}

ParameterizedTestParameters(conf, batch_many_senders)
{
	static int idx[NCASES];
	return rows_where(idx, T_RELIABLE | T_ORDERED | T_FANIN, 0, true);
}

/*
 * Three senders batch small messages at once into one object: no batch
 * mixes with another's bytes (on a FIFO a batch shares the pipe with the
 * other writers), each sender's arrive whole and in order.
 */
ParameterizedTest(int *ci, conf, batch_many_senders)
{
	const struct tcase *tc = &cases[*ci];
	struct env e;
	env_init(&e, tc);
	enum { SENDERS = 3, EACH = 400 };
	ssize_t *sent[SENDERS];
	struct batcher b[SENDERS];
	pid_t pid[SENDERS];
	for (int i = 0; i < SENDERS; i++) {
		sent[i] = shared_count();
		b[i] = (struct batcher){ &e, EACH, 50, 64, T_GUARD_MS, sent[i], NULL, NULL, NULL, i, 0 };
		pid[i] = env_spawn(&e, batcher_main, &b[i]);
	}
	env_listen(&e, 0);
	env_forked(&e);
	receive_all(&e, SENDERS, EACH, 64);
	for (int i = 0; i < SENDERS; i++) {
		expect_exit0(pid[i]);
		cr_expect_eq(*sent[i], EACH, "%s: sender %d", tc->name, i);
		munmap(sent[i], sizeof(*sent[i]));
	}
	env_close(&e);
}
