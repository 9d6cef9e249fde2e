/*
 * nats:// on real nats-server processes the tests start (loopback, free
 * ports; tests/support/tnats.h): URL and server errors, no libnats, a
 * listener's limits (max=, pending=), queue groups, JetStream's redelivery,
 * a server that dies for good, the reconnect buffer, and a three-server
 * cluster losing a server mid-stream.  The conformance suite runs over
 * nats:// as well (tests/test_conformance.c).
 *
 * nats.c runs threads of its own, and a child forked after it started lacks
 * them (docs/nats.md, "fork"): so the tests do their NATS work in children
 * forked from a parent that never opened a nats:// channel, except where
 * the fork itself is under test.  Processes synchronise by handshakes; the
 * timeouts below are guards, except where a wait on the protocol's own
 * timer (JetStream's ack_wait) is the point.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ipcx.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tnats.h"
#include "tsupport.h"

static void url_of(char *buf, size_t cap, const char *servers, const char *subject,
		   const char *opts)
{
	snprintf(buf, cap, "nats://%s/%s%s%s", servers, subject, *opts ? "?" : "", opts);
}

/* In a child: open or exit with a code that says which step failed. */
static ipcx_chan *must_open(const char *url, bool listen, int code)
{
	ipcx_chan *c;
	int r = listen ? ipcx_listen(url, 0, &c) : ipcx_dial(url, 0, &c);
	if (r < 0) {
		fprintf(stderr, "%s %s: %s (%s)\n", listen ? "listen" : "dial", url,
			ipcx_strerror(r), ipcx_errdetail());
		_exit(code);
	}
	return c;
}

static void must_send(ipcx_chan *c, const void *m, size_t n, int code)
{
	ssize_t r = ipcx_send(c, m, n, T_GUARD_MS);
	if (r != (ssize_t)n) {
		fprintf(stderr, "send: %s (%s)\n", ipcx_strerror((int)r), ipcx_errdetail());
		_exit(code);
	}
}

/* Numbered messages: 8 bytes of sequence number. */
static void send_seq(ipcx_chan *c, uint64_t seq)
{
	must_send(c, &seq, sizeof(seq), 81);
}

static void write_all(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		_exit(82);
}

static void read_all(int fd, void *p, size_t n)
{
	cr_assert_eq(read(fd, p, n), (ssize_t)n, "a child did not report");
}

/* ---- errors ---------------------------------------------------------------- */

static void expect_fail(const char *url, bool listen, int err, const char *words)
{
	ipcx_chan *c = NULL;
	int r = listen ? ipcx_listen(url, 0, &c) : ipcx_dial(url, 0, &c);
	cr_expect_eq(r, err, "%s: gave %d (%s), want %d", url, r, ipcx_errdetail(), err);
	cr_expect(strstr(ipcx_errdetail(), words), "%s: detail '%s' lacks '%s'", url,
		  ipcx_errdetail(), words);
	cr_expect_null(c);
	if (c)
		ipcx_close(c);
}

Test(nats, url_errors)
{
	expect_fail("nats://127.0.0.1:4222", false, -EINVAL, "/subject");
	expect_fail("nats://127.0.0.1:4222/", false, -EINVAL, "no subject");
	expect_fail("nats://127.0.0.1:4222/a.*", false, -EINVAL, "wildcards");
	expect_fail("nats://127.0.0.1:4222/a.>.b", true, -EINVAL, "last token");
	expect_fail("nats://127.0.0.1:4222/a..b", true, -EINVAL, "empty token");
	expect_fail("nats://127.0.0.1:4222,/a", false, -EINVAL, "empty server");
	expect_fail("nats://127.0.0.1:0/a", false, -EINVAL, "port 0");
	expect_fail("nats://127.0.0.1:4222/a?queue=a.b", true, -EINVAL, "queue");
	expect_fail("nats://127.0.0.1:4222/a?stream=", true, -EINVAL, "stream");
	expect_fail("nats://127.0.0.1:4222/a?pending=0", true, -EINVAL, "pending");
	expect_fail("nats://127.0.0.1:4222/a?color=red", true, -EINVAL, "unknown option");
}

Test(nats, server_errors)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	char url[256], addr[64];
	snprintf(addr, sizeof(addr), "%s", s.addr);
	/* Nobody listens on a stopped server's port. */
	struct t_nats gone = { 0 };
	cr_assert(t_nats_start(&gone, false, NULL, NULL, 0));
	url_of(url, sizeof(url), gone.addr, "a", "timeout=2000");
	t_nats_stop(&gone);
	expect_fail(url, false, -ECONNREFUSED, "cannot connect to any server");
	/* max= above the server's max_payload (1 MiB by default). */
	url_of(url, sizeof(url), addr, "a", "max=2000000");
	expect_fail(url, true, -EINVAL, "exceeds the max_payload of the server (1048576)");
	/* JetStream on a server without it. */
	url_of(url, sizeof(url), addr, "a", "stream=S");
	expect_fail(url, false, -EOPNOTSUPP, "JetStream");
	/* A listener does not publish; a dialer receives only with reply=1. */
	url_of(url, sizeof(url), addr, "a", "");
	ipcx_chan *l = NULL, *d = NULL;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_accept(l, 0, &d), -EINVAL);
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	char buf[8];
	cr_expect_eq(ipcx_send(l, "x", 1, 0), -EOPNOTSUPP);
	cr_expect_eq(ipcx_recv(d, buf, sizeof(buf), 0), -EOPNOTSUPP);
	cr_expect(strstr(ipcx_errdetail(), "reply=1"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_max_msg(d), 1048576u, "the server's max_payload is the channel's max");
	cr_expect_eq(strcmp(ipcx_scheme(d), "nats"), 0);
	ipcx_close(d);
	ipcx_close(l);
	t_nats_stop(&s);
}

/*
 * Without libnats (simulated by naming a library that is not there), the
 * scheme says what to install, and every other transport still works.
 */
Test(nats, without_libnats)
{
	setenv("IPCX_NATS_LIBRARY", "/nonexistent/libnats.so.3.4", 1);
	ipcx_chan *c = NULL;
	for (int i = 0; i < 2; i++) { /* the second use reports the same */
		int r = ipcx_dial("nats://127.0.0.1:4222/a", 0, &c);
		cr_expect_eq(r, -EPROTONOSUPPORT, "gave %d", r);
		cr_expect(strstr(ipcx_errdetail(), "install Debian's libnats3.4"), "detail: %s",
			  ipcx_errdetail());
		cr_expect_null(c);
	}
	cr_expect_eq(ipcx_listen("nats://127.0.0.1:4222/a", 0, &c), -EPROTONOSUPPORT);
	/* A bad URL is still told apart from a missing library. */
	cr_expect_eq(ipcx_dial("nats://127.0.0.1:4222", 0, &c), -EINVAL);
	ipcx_chan *l, *d;
	char url[300], buf[8];
	snprintf(url, sizeof(url), "unix:%s", t_path(t_name()));
	cr_assert_eq(ipcx_listen(url, 0, &l), 0);
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	cr_expect_eq(ipcx_send(d, "still", 5, T_GUARD_MS), 5);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 5);
	ipcx_close(d);
	ipcx_close(l);
}

/* ---- a listener's limits ------------------------------------------------------ */

struct one {
	char url[300];      /* the listener's */
	char url_tx[300];   /* the publisher's */
	struct t_sync ready, go;
	int report[2];      /* the listener's figures */
};

static int oversize_listener(void *arg)
{
	struct one *o = arg;
	ipcx_chan *l = must_open(o->url, true, 70);
	t_post(&o->ready);
	char buf[64];
	ssize_t first = ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS);
	bool named = strstr(ipcx_errdetail(), "above this listener's max of 16") != NULL;
	ssize_t second = ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS);
	int64_t out[3] = { first, named, second };
	write_all(o->report[1], out, sizeof(out));
	ipcx_close(l);
	return 0;
}

/* A message over the listener's max= is refused and dropped, in its place. */
Test(nats, oversize_is_reported_in_place)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	struct one o;
	url_of(o.url, sizeof(o.url), s.addr, "big", "max=16");
	url_of(o.url_tx, sizeof(o.url_tx), s.addr, "big", "");
	t_sync_init(&o.ready);
	cr_assert_eq(pipe(o.report), 0);
	pid_t pid = t_spawn(oversize_listener, &o);
	close(o.report[1]);
	cr_assert(t_wait_post(&o.ready, T_GUARD_MS));
	ipcx_chan *d = must_open(o.url_tx, false, 1);
	cr_expect_eq(ipcx_send(d, "seventeen bytes!!", 17, T_GUARD_MS), 17);
	cr_expect_eq(ipcx_send(d, "fits", 4, T_GUARD_MS), 4);
	int64_t out[3];
	read_all(o.report[0], out, sizeof(out));
	cr_expect_eq(out[0], -EMSGSIZE, "the message over the limit gave %lld", (long long)out[0]);
	cr_expect(out[1], "the detail names the limit");
	cr_expect_eq(out[2], 4, "the next message gave %lld", (long long)out[2]);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	ipcx_close(d);
	t_nats_stop(&s);
}

struct slow {
	char url_small[300], url_big[300], url_tx[300];
	struct t_sync ready, sent;
	int report[2];
};

enum { SLOW_N = 2000, SLOW_PENDING = 10 };

/*
 * Two subscriptions: one whose queue holds 10 messages, one that holds all.
 * Once the big one has every message, so has the small one's connection
 * (same server, same stream of messages) bar a few in flight.
 */
static int slow_listener(void *arg)
{
	struct slow *s = arg;
	ipcx_chan *small = must_open(s->url_small, true, 70), *big = must_open(s->url_big, true, 71);
	t_post(&s->ready);
	if (!t_wait_post(&s->sent, T_GUARD_MS))
		return 72;
	char buf[64];
	for (int i = 0; i < SLOW_N; i++)
		if (ipcx_recv(big, buf, sizeof(buf), T_GUARD_MS) != 8)
			return 73;
	int64_t got = 0, dropped = 0, markers = 0, named = 0;
	while (got + dropped < SLOW_N) {
		ssize_t n = ipcx_recv(small, buf, sizeof(buf), T_GUARD_MS);
		if (n == 8) {
			got++;
			continue;
		}
		if (n != -ENOBUFS)
			return 74;
		markers++;
		named += strstr(ipcx_errdetail(), "slow consumer") != NULL;
		unsigned long long k = 0;
		if (sscanf(strstr(ipcx_errdetail(), ": ") + 2, "%llu", &k) != 1)
			return 75;
		dropped += (int64_t)k;
	}
	struct ipcx_stats st;
	ipcx_stats(small, &st);
	int64_t out[5] = { got, dropped, markers, named, (int64_t)st.dropped };
	write_all(s->report[1], out, sizeof(out));
	ipcx_close(small);
	ipcx_close(big);
	return 0;
}

/* A receiver that falls behind loses messages, and is told how many. */
Test(nats, slow_consumer_is_told)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	struct slow s;
	url_of(s.url_small, sizeof(s.url_small), srv.addr, "flood", "pending=10");
	url_of(s.url_big, sizeof(s.url_big), srv.addr, "flood", "");
	url_of(s.url_tx, sizeof(s.url_tx), srv.addr, "flood", "");
	t_sync_init(&s.ready);
	t_sync_init(&s.sent);
	cr_assert_eq(pipe(s.report), 0);
	pid_t pid = t_spawn(slow_listener, &s);
	close(s.report[1]);
	cr_assert(t_wait_post(&s.ready, T_GUARD_MS));
	ipcx_chan *d = must_open(s.url_tx, false, 1);
	for (uint64_t i = 0; i < SLOW_N; i++)
		cr_assert_eq(ipcx_send(d, &i, 8, T_GUARD_MS), 8);
	t_post(&s.sent);
	int64_t out[5];
	read_all(s.report[0], out, sizeof(out));
	int st = t_join(pid, T_GUARD_MS);
	cr_expect_eq(st, 0, "the listener ended with %d", st);
	cr_expect_eq(out[0] + out[1], SLOW_N, "received %lld + dropped %lld", (long long)out[0],
		     (long long)out[1]);
	cr_expect_gt(out[1], 0, "nothing was dropped from a queue of %d", SLOW_PENDING);
	cr_expect_geq(out[0], SLOW_PENDING, "the queue's own messages arrive");
	cr_expect_eq(out[3], out[2], "every -ENOBUFS names the slow consumer");
	cr_expect_eq(out[4], out[1], "ipcx_stats counts what was reported");
	ipcx_close(d);
	t_nats_stop(&srv);
}

/* ---- a close while messages arrive --------------------------------------------- */

enum { REOPEN_ROUNDS = 50, FLOOD_SIZE = 256 * 1024 };

struct flood {
	char url[300];
	struct t_sync quit;
};

static int flooder(void *arg)
{
	struct flood *f = arg;
	ipcx_chan *d = must_open(f->url, false, 70);
	char *m = calloc(1, FLOOD_SIZE);
	struct pollfd p = { f->quit.fd[0], POLLIN, 0 };
	while (m && poll(&p, 1, 0) == 0)
		must_send(d, m, FLOOD_SIZE, 71);
	free(m);
	return ipcx_close(d) == 0 ? 0 : 72;
}

/* Listen, take one message, close; again and again, with more on the way. */
static int reopening_listener(void *arg)
{
	struct flood *f = arg;
	char *buf = malloc(FLOOD_SIZE);
	for (int i = 0; buf && i < REOPEN_ROUNDS; i++) {
		ipcx_chan *l = must_open(f->url, true, 73);
		ssize_t n = ipcx_recv(l, buf, FLOOD_SIZE, T_GUARD_MS);
		if (n != FLOOD_SIZE) {
			fprintf(stderr, "round %d: %zd (%s)\n", i, n, ipcx_errdetail());
			return 74;
		}
		if (ipcx_close(l) != 0)
			return 75;
	}
	free(buf);
	return buf ? 0 : 76;
}

/*
 * A listener closed while large messages keep coming: nats.c 3.4's read
 * thread may be copying one for the subscription being closed, and the
 * subscription must outlive that (upstream 0a7dd28; docs/nats.md "nats.c
 * 3.4 and the fixes it lacks").  Before ipcx waited for the connection's
 * close to destroy it, the listener died in one of its first few closes
 * (SIGSEGV or SIGABRT in natsConn_processMsg).
 */
Test(nats, close_while_messages_arrive)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	struct flood f;
	url_of(f.url, sizeof(f.url), s.addr, "flood", "");
	t_sync_init(&f.quit);
	pid_t tx = t_spawn(flooder, &f), rx = t_spawn(reopening_listener, &f);
	int st = t_join(rx, T_GUARD_MS);
	t_post(&f.quit);
	cr_expect_eq(st, 0, "the listener ended with %d (%d: SIGSEGV, %d: SIGABRT)", st,
		     128 + SIGSEGV, 128 + SIGABRT);
	cr_expect_eq(t_join(tx, T_GUARD_MS), 0, "the publisher failed");
	t_sync_close(&f.quit);
	t_nats_stop(&s);
}

/* ---- queue groups -------------------------------------------------------------- */

enum { GROUP = 3, GROUP_MSGS = 3000 };

struct member {
	char url[300];
	struct t_sync ready, quit;
	int ids[2]; /* each message's number, as received */
};

static int group_worker(void *arg)
{
	struct member *m = arg;
	ipcx_chan *l = must_open(m->url, true, 70);
	t_post(&m->ready);
	struct pollfd p[2] = { { ipcx_fileno(l), POLLIN, 0 }, { m->quit.fd[0], POLLIN, 0 } };
	for (;;) {
		if (poll(p, 2, T_GUARD_MS) <= 0)
			return 71;
		if (p[1].revents)
			break;
		uint32_t id;
		ssize_t n = ipcx_recv(l, &id, sizeof(id), 0);
		if (n == -EAGAIN)
			continue;
		if (n != 4)
			return 72;
		write_all(m->ids[1], &id, sizeof(id));
	}
	ipcx_close(l);
	return 0;
}

/* Listeners of one queue group: each message goes to exactly one of them. */
Test(nats, queue_group_each_message_once)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	static struct member m[GROUP];
	pid_t pid[GROUP];
	for (int i = 0; i < GROUP; i++) {
		url_of(m[i].url, sizeof(m[i].url), s.addr, "jobs", "queue=workers");
		t_sync_init(&m[i].ready);
		t_sync_init(&m[i].quit);
		cr_assert_eq(pipe(m[i].ids), 0);
		pid[i] = t_spawn(group_worker, &m[i]);
	}
	for (int i = 0; i < GROUP; i++) {
		cr_assert(t_wait_post(&m[i].ready, T_GUARD_MS));
		close(m[i].ids[1]);
	}
	char url[300];
	url_of(url, sizeof(url), s.addr, "jobs", "");
	ipcx_chan *d = must_open(url, false, 1);
	for (uint32_t i = 0; i < GROUP_MSGS; i++)
		cr_assert_eq(ipcx_send(d, &i, 4, T_GUARD_MS), 4);
	static uint8_t seen[GROUP_MSGS];
	int per[GROUP] = { 0 }, total = 0;
	struct pollfd p[GROUP];
	for (int i = 0; i < GROUP; i++)
		p[i] = (struct pollfd){ m[i].ids[0], POLLIN, 0 };
	while (total < GROUP_MSGS) {
		cr_assert_gt(poll(p, GROUP, T_GUARD_MS), 0, "%d of %d arrived", total, GROUP_MSGS);
		for (int i = 0; i < GROUP; i++) {
			uint32_t id;
			if (!(p[i].revents & POLLIN) || read(m[i].ids[0], &id, 4) != 4)
				continue;
			cr_assert_lt(id, GROUP_MSGS);
			cr_expect_eq(seen[id], 0, "message %u went to two listeners", id);
			seen[id]++;
			per[i]++;
			total++;
		}
	}
	for (int i = 0; i < GROUP; i++) {
		t_post(&m[i].quit);
		cr_expect_eq(t_join(pid[i], T_GUARD_MS), 0);
		cr_expect_gt(per[i], 0, "listener %d got none: the group was not shared", i);
		cr_log_info("queue group: listener %d took %d of %d", i, per[i], GROUP_MSGS);
	}
	ipcx_close(d);
	t_nats_stop(&s);
}

/* ---- JetStream ------------------------------------------------------------------ */

struct js {
	char url_tx[300], url_rx[300];
	int count;      /* messages the publisher sends */
	int take;       /* messages a listener takes before it says so (or -1: all) */
	struct t_sync ready;
	int report[2];
};

static int js_publisher(void *arg)
{
	struct js *j = arg;
	ipcx_chan *d = must_open(j->url_tx, false, 70);
	for (uint64_t i = 0; i < (uint64_t)j->count; i++)
		send_seq(d, i);
	return ipcx_close(d) == 0 ? 0 : 71;
}

/*
 * Take j->take messages, reporting each number, then say so and wait to be
 * killed; with take 0, wait until a message has been delivered to us (the
 * descriptor is readable) without receiving it.
 */
static int js_doomed_listener(void *arg)
{
	struct js *j = arg;
	ipcx_chan *l = must_open(j->url_rx, true, 70);
	if (j->take == 0 && !t_chan_readable(l, T_GUARD_MS))
		return 71;
	for (int i = 0; i < j->take; i++) {
		uint64_t seq;
		if (ipcx_recv(l, &seq, sizeof(seq), T_GUARD_MS) != 8)
			return 72;
		write_all(j->report[1], &seq, sizeof(seq));
	}
	t_post(&j->ready);
	pause();
	return 0;
}

/* Receive until every number from `from` to count-1 has come; report them all. */
static int js_listener(void *arg)
{
	struct js *j = arg;
	ipcx_chan *l = must_open(j->url_rx, true, 70);
	uint8_t *seen = calloc((size_t)j->count, 1);
	int missing = j->count - j->take;
	while (missing > 0) {
		uint64_t seq;
		ssize_t n = ipcx_recv(l, &seq, sizeof(seq), T_GUARD_MS);
		if (n != 8) {
			fprintf(stderr, "js listener: %zd (%s)\n", n, ipcx_errdetail());
			return 73;
		}
		write_all(j->report[1], &seq, sizeof(seq));
		if (seq < (uint64_t)j->count && seq >= (uint64_t)j->take && !seen[seq]++)
			missing--;
	}
	free(seen);
	return ipcx_close(l) == 0 ? 0 : 74;
}

static void js_setup(struct js *j, const struct t_nats *s, int count, const char *ack_wait)
{
	memset(j, 0, sizeof(*j));
	const char *subject = t_name(), *stream = t_name();
	char opts[128];
	snprintf(opts, sizeof(opts), "stream=%s", stream);
	url_of(j->url_tx, sizeof(j->url_tx), s->addr, subject, opts);
	snprintf(opts, sizeof(opts), "stream=%s&ack_wait=%s", stream, ack_wait);
	url_of(j->url_rx, sizeof(j->url_rx), s->addr, subject, opts);
	j->count = count;
	t_sync_init(&j->ready);
	cr_assert_eq(pipe(j->report), 0);
}

/* Read the numbers a listener reported, after it exited. */
static int js_collect(struct js *j, uint64_t *got, int cap)
{
	close(j->report[1]);
	int n = 0;
	uint64_t seq;
	while (n < cap && read(j->report[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq))
		got[n++] = seq;
	close(j->report[0]);
	cr_assert_eq(pipe(j->report), 0);
	return n;
}

/* A listener that takes `take` messages (0: none, once some were delivered
 * to it), then is killed. */
static void js_kill_after(struct js *j, int take)
{
	j->take = take;
	pid_t doomed = t_spawn(js_doomed_listener, j);
	cr_assert(t_wait_post(&j->ready, T_GUARD_MS), "the first listener did not get its %d",
		  take);
	kill(doomed, SIGKILL);
	cr_expect_eq(t_join(doomed, T_GUARD_MS), 128 + SIGKILL);
}

/* Published while no listener runs: delivered, in order, when one starts. */
Test(nats, stream_delivers_to_a_late_listener)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, true, NULL, NULL, 0));
	struct js j;
	js_setup(&j, &s, 200, "30000");
	cr_assert_eq(t_join(t_spawn(js_publisher, &j), T_GUARD_MS), 0, "the publisher failed");
	j.take = 0;
	cr_assert_eq(t_join(t_spawn(js_listener, &j), T_GUARD_MS), 0, "the listener failed");
	static uint64_t got[400];
	int n = js_collect(&j, got, 400);
	cr_expect_eq(n, 200, "received %d of 200", n);
	for (int i = 0; i < n && i < 200; i++)
		cr_expect_eq(got[i], (uint64_t)i, "message %d is %llu", i, (unsigned long long)got[i]);
	t_nats_stop(&s);
}

/*
 * The redelivery rule: a message is acknowledged when its listener asks for
 * the next one (or closes).  A listener killed after taking ten has
 * acknowledged nine; the next listener of the durable gets the tenth and
 * every later one again, and none of the nine.
 */
Test(nats, stream_redelivers_what_was_not_acknowledged)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, true, NULL, NULL, 0));
	struct js j;
	js_setup(&j, &s, 100, "1000");
	cr_assert_eq(t_join(t_spawn(js_publisher, &j), T_GUARD_MS), 0);
	js_kill_after(&j, 10);
	static uint64_t got[400];
	int n = js_collect(&j, got, 400);
	cr_assert_eq(n, 10);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(got[i], (uint64_t)i);
	j.take = 9; /* what the next must get again: 9 .. 99 */
	cr_assert_eq(t_join(t_spawn(js_listener, &j), T_GUARD_MS), 0, "the second listener failed");
	n = js_collect(&j, got, 400);
	int dups = 0;
	static uint8_t seen[100];
	for (int i = 0; i < n; i++) {
		cr_expect_geq(got[i], 9u, "message %llu was acknowledged, yet came again",
			      (unsigned long long)got[i]);
		if (got[i] < 100)
			dups += seen[got[i]]++ > 0;
	}
	cr_expect_geq(n, 91);
	cr_log_info("stream redelivery: %d messages for the 91 unacknowledged (%d twice)", n, dups);
	t_nats_stop(&s);
}

/* A listener killed before it receives anything: all of it comes again. */
Test(nats, stream_redelivers_after_a_listener_dies_unread)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, true, NULL, NULL, 0));
	struct js j;
	js_setup(&j, &s, 50, "1000");
	cr_assert_eq(t_join(t_spawn(js_publisher, &j), T_GUARD_MS), 0);
	js_kill_after(&j, 0);
	cr_assert_eq(t_join(t_spawn(js_listener, &j), T_GUARD_MS), 0, "the second listener failed");
	static uint64_t got[200];
	int n = js_collect(&j, got, 200);
	static uint8_t seen[50];
	int distinct = 0;
	for (int i = 0; i < n; i++)
		if (got[i] < 50 && !seen[got[i]]++)
			distinct++;
	cr_expect_eq(distinct, 50, "received %d of the 50 (in %d messages)", distinct, n);
	t_nats_stop(&s);
}

/* ---- a server that is gone for good -------------------------------------------- */

struct gone {
	char url[300];
	struct t_sync ready;
	int report[2];
};

static int gone_listener(void *arg)
{
	struct gone *g = arg;
	ipcx_chan *l = must_open(g->url, true, 70);
	t_post(&g->ready);
	char buf[8];
	int64_t out[2];
	out[0] = ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS);
	out[1] = t_chan_readable(l, 0); /* level-triggered: still readable at the end */
	write_all(g->report[1], out, sizeof(out));
	ipcx_close(l);
	return 0;
}

/*
 * nats.c started in the parent (a connection opened, used and closed):
 * its callback thread is not in a child forked after that.  The channel is
 * closed first so that no thread of its connection is at work (allocating,
 * holding a lock) at the fork; docs/nats.md says why that matters.
 */
static void start_nats_here(const char *url)
{
	ipcx_chan *d;
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(d, "x", 1, T_GUARD_MS), 1);
	cr_assert_eq(ipcx_close(d), 0);
}

static void expect_closed(bool parent_has_nats)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	struct gone g;
	url_of(g.url, sizeof(g.url), s.addr, "gone", "reconnect=0");
	t_sync_init(&g.ready);
	cr_assert_eq(pipe(g.report), 0);
	if (parent_has_nats)
		start_nats_here(g.url);
	pid_t pid = t_spawn(gone_listener, &g);
	close(g.report[1]);
	cr_assert(t_wait_post(&g.ready, T_GUARD_MS));
	ipcx_chan *mine = NULL;
	cr_assert_eq(ipcx_dial(g.url, 0, &mine), 0, "%s", ipcx_errdetail());
	t_nats_kill(&s, SIGKILL);
	int64_t out[2];
	read_all(g.report[0], out, sizeof(out));
	cr_expect_eq(out[0], -EPIPE, "a waiting receive gave %lld", (long long)out[0]);
	cr_expect(out[1], "the descriptor is not readable after the end");
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	/* A publisher finds out at its first send after nats.c noticed. */
	ssize_t r = ipcx_send(mine, "x", 1, T_GUARD_MS);
	for (int i = 0; i < 100000 && r == 1; i++)
		r = ipcx_send(mine, "x", 1, T_GUARD_MS);
	cr_expect_eq(r, -EPIPE, "a publisher to a dead server gave %zd (%s)", r, ipcx_errdetail());
	ipcx_close(mine);
	t_nats_stop(&s);
}

/* No server left and no reconnecting: a receive ends with -EPIPE. */
Test(nats, server_gone_ends_a_receive)
{
	expect_closed(false);
}

/* The same in a child forked after nats.c started (no callback thread). */
Test(nats, server_gone_ends_a_receive_in_a_forked_child)
{
	expect_closed(true);
}

/* ---- the reconnect buffer ------------------------------------------------------ */

/*
 * While the only server is away, sends go into the reconnect buffer until
 * reconnect_buf bytes; then a send waits for the server up to its timeout.
 * The server back on its port, the same channel sends again.
 */
/*
 * A listener and a reply=1 dialer on a quiet subject, their server
 * SIGKILLed and started again on its port: with no message published, each
 * turns readable when its connection is made again and says -ECONNRESET
 * once (nats.c's reconnected callback; docs/nats.md, "When a server dies").
 * The pool's nats:// queues depend on it: a dialled channel learns of its
 * own connection's switch.
 */
static void expect_switch_told(ipcx_chan *c, const char *what)
{
	char buf[16];
	cr_expect(t_chan_readable(c, T_GUARD_MS), "%s: not readable after the switch", what);
	ssize_t r = ipcx_recv(c, buf, sizeof(buf), 0);
	cr_expect_eq(r, -ECONNRESET, "%s: %zd (%s)", what, r, ipcx_errdetail());
	cr_expect(strstr(ipcx_errdetail(), "made again") != NULL, "%s: %s", what, ipcx_errdetail());
	cr_expect_eq(ipcx_recv(c, buf, sizeof(buf), 0), -EAGAIN, "%s: told more than once", what);
	cr_expect(!t_chan_readable(c, 0), "%s: still readable", what);
}

Test(nats, switch_is_told_without_a_message)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	char lurl[300], durl[300];
	url_of(lurl, sizeof(lurl), s.addr, "ipcxt.quiet", "reconnect_wait=50");
	url_of(durl, sizeof(durl), s.addr, "ipcxt.quiet", "reconnect_wait=50&reply=1");
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(lurl, 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(durl, 0, &d), 0, "%s", ipcx_errdetail());
	cr_expect(!t_chan_readable(l, 0) && !t_chan_readable(d, 0));
	int port = s.port;
	t_nats_kill(&s, SIGKILL);
	cr_assert(t_nats_start(&s, false, NULL, NULL, port), "cannot restart on port %d", port);
	expect_switch_told(l, "listener");
	expect_switch_told(d, "reply=1 dialer");
	cr_expect_eq(ipcx_close(l), 0);
	cr_expect_eq(ipcx_close(d), 0);
	t_nats_stop(&s);
}

Test(nats, reconnect_buffer_is_bounded)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	char url[300];
	url_of(url, sizeof(url), s.addr, "buffered", "reconnect_buf=4096&reconnect_wait=50");
	ipcx_chan *d;
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	int port = s.port;
	t_nats_kill(&s, SIGKILL);
	char m[100];
	memset(m, 'm', sizeof(m));
	/* A send may find the socket dead before nats.c does: then it is not
	 * written, and a send that may wait waits until nats.c reconnects, which
	 * buffers, up to 4096 bytes of protocol. */
	ssize_t r;
	int sent = 0;
	for (int i = 0; i < 100000; i++) {
		r = ipcx_send(d, m, sizeof(m), 0);
		if (r == -EAGAIN && strstr(ipcx_errdetail(), "lost; reconnecting"))
			r = ipcx_send(d, m, sizeof(m), T_GUARD_MS);
		if (r != (ssize_t)sizeof(m))
			break;
		sent++;
	}
	cr_expect_eq(r, -EAGAIN, "a send with the buffer full gave %zd (%s) after %d", r, ipcx_errdetail(), sent);
	cr_expect(strstr(ipcx_errdetail(), "reconnect buffer is full"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_send(d, m, sizeof(m), 100), -ETIMEDOUT);
	cr_log_info("reconnect buffer: %d sends of 100 bytes went in before it was full", sent);
	cr_assert(t_nats_start(&s, false, NULL, NULL, port), "cannot restart on port %d", port);
	cr_expect_eq(ipcx_send(d, m, sizeof(m), T_GUARD_MS), (ssize_t)sizeof(m), "%s",
		     ipcx_errdetail());
	cr_expect_eq(ipcx_close(d), 0, "%s", ipcx_errdetail());
	t_nats_stop(&s);
}

/* ---- a three-server cluster ----------------------------------------------------- */

/*
 * A listener and a publisher on different servers; one server SIGKILLed
 * mid-stream.  The publisher sends numbered messages until the listener has
 * seen enough of those sent after the kill; the listener marks every number
 * it gets and records every -ECONNRESET.  docs/nats.md states what may
 * happen: one run of messages lost around the switch, nothing else; nothing
 * twice; messages that went through the old path may arrive after the first
 * ones through the new path (NATS orders per connection, and these are two),
 * but in order among themselves; the listener whose server died is told
 * (-ECONNRESET).
 */
struct flow {
	char url_rx[300], url_tx[300], url_probe[2][300];
	struct t_sync ready, probe_seen, kill_now, killed, enough;
	int kseq[2];   /* publisher -> listener: the number it was at when told of the kill */
	int report[2];
};

enum { KILL_AFTER = 5000, AFTER_SWITCH = 2000 };
#define END_MARK UINT64_MAX

struct flow_report {
	int64_t received, markers, gaps, lost_in_gaps, lost_at_end, gap_first;
	int64_t last_before_mark, top, late, late_disorder, twice, last, kill_seq;
};

/* What the listener has seen: a bit per number, the highest so far + 1, and
 * the last number that came late (below that). */
struct flow_seen {
	uint8_t *bit;
	size_t bytes;
	uint64_t next;
	int64_t late_last;
};

static bool flow_mark(struct flow_seen *s, uint64_t seq)
{
	if (seq / 8 >= s->bytes) {
		size_t n = s->bytes ? s->bytes : 1 << 16;
		while (seq / 8 >= n)
			n *= 2;
		uint8_t *b = realloc(s->bit, n);
		if (!b)
			return false;
		memset(b + s->bytes, 0, n - s->bytes);
		s->bit = b;
		s->bytes = n;
	}
	return true;
}

static bool flow_has(const struct flow_seen *s, uint64_t seq)
{
	return seq / 8 < s->bytes && (s->bit[seq / 8] >> (seq % 8) & 1);
}

static int flow_note(struct flow_report *r, struct flow_seen *s, uint64_t seq)
{
	if (!flow_mark(s, seq))
		return -ENOMEM;
	if (flow_has(s, seq)) {
		r->twice++;
		return 0;
	}
	s->bit[seq / 8] |= (uint8_t)(1u << (seq % 8));
	r->received++;
	if (seq < s->next) {
		r->late++;
		if ((int64_t)seq <= s->late_last)
			r->late_disorder++;
		s->late_last = (int64_t)seq;
	} else {
		s->next = seq + 1;
	}
	r->top = (int64_t)s->next - 1;
	return 0;
}

/* The numbers never received, up to the last one sent: in how many runs,
 * from where, and how many of them after the last one received. */
static void flow_gaps(struct flow_report *r, const struct flow_seen *s)
{
	bool in_gap = false;
	for (int64_t q = 0; q <= r->top; q++) {
		bool missing = !flow_has(s, (uint64_t)q);
		if (missing && !in_gap && r->gaps++ == 0)
			r->gap_first = q;
		r->lost_in_gaps += missing;
		in_gap = missing;
	}
	r->lost_at_end = r->last - r->top;
}

/* A probe: "probe" and which path it took. */
static void flow_probe(struct flow *f, const uint64_t *buf, unsigned *probes)
{
	unsigned bit = 1u << ((const char *)buf)[8];
	if (!(*probes & bit)) {
		*probes |= bit;
		t_post(&f->probe_seen);
	}
}

static int flow_listener(void *arg)
{
	struct flow *f = arg;
	ipcx_chan *l = must_open(f->url_rx, true, 70);
	t_post(&f->ready);
	struct flow_report r = { .gap_first = -1, .last_before_mark = -1, .last = -1,
				 .top = -1, .kill_seq = -1 };
	struct flow_seen seen = { .late_last = -1 };
	uint64_t buf[2];
	unsigned probes = 0;
	int64_t after = 0; /* messages sent after the publisher heard of the kill */
	bool killed = false, told = false;
	struct pollfd kp = { f->kseq[0], POLLIN, 0 };
	for (;;) {
		ssize_t n = ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS);
		if (n == -ECONNRESET) {
			if (r.markers++ == 0)
				r.last_before_mark = r.top;
			continue;
		}
		if (n == 16 && buf[0] == END_MARK)
			break;
		if (n == 9) {
			flow_probe(f, buf, &probes);
			continue;
		}
		if (n != 8) {
			fprintf(stderr, "flow listener: %zd (%s)\n", n, ipcx_errdetail());
			return 71;
		}
		if (flow_note(&r, &seen, buf[0]) < 0)
			return 73;
		if (!killed && r.received >= KILL_AFTER) {
			killed = true;
			t_post(&f->kill_now);
		}
		if (r.kill_seq < 0 && killed && r.received % 64 == 0 && poll(&kp, 1, 0) > 0) {
			uint64_t k;
			if (read(f->kseq[0], &k, sizeof(k)) != (ssize_t)sizeof(k))
				return 72;
			r.kill_seq = (int64_t)k;
		}
		if (r.kill_seq >= 0 && (int64_t)buf[0] > r.kill_seq)
			after++;
		if (!told && after >= AFTER_SWITCH) {
			told = true;
			t_post(&f->enough);
		}
	}
	r.last = (int64_t)buf[1]; /* what the publisher sent last */
	flow_gaps(&r, &seen);
	free(seen.bit);
	write_all(f->report[1], &r, sizeof(r));
	ipcx_close(l);
	return 0;
}

/* Probe one path until the listener has heard it (interest crosses routes
 * asynchronously: a message published before it arrives is dropped). */
static int probe(ipcx_chan *c, char which, struct t_sync *seen)
{
	char m[9] = "probe";
	m[8] = which;
	int64_t until = (int64_t)time(NULL) + T_GUARD_MS / 1000;
	do {
		must_send(c, m, sizeof(m), 80);
		if (t_wait_post(seen, 20))
			return 0;
	} while (time(NULL) < until);
	return 1;
}

static int flow_publisher(void *arg)
{
	struct flow *f = arg;
	if (!t_wait_post(&f->ready, T_GUARD_MS))
		return 70;
	for (int i = 0; i < 2 && f->url_probe[i][0]; i++) {
		ipcx_chan *p = must_open(f->url_probe[i], false, 71);
		if (probe(p, (char)i, &f->probe_seen))
			return 72;
		ipcx_close(p);
	}
	ipcx_chan *d = must_open(f->url_tx, false, 73);
	struct pollfd ev[2] = { { f->killed.fd[0], POLLIN, 0 }, { f->enough.fd[0], POLLIN, 0 } };
	bool told = false;
	uint64_t seq = 0;
	for (;; seq++) {
		if (seq % 64 == 0 && poll(ev, 2, 0) > 0) {
			if (ev[1].revents)
				break;
			if (ev[0].revents && !told) {
				told = true;
				ev[0].fd = -1;
				write_all(f->kseq[1], &seq, sizeof(seq));
			}
		}
		send_seq(d, seq);
	}
	uint64_t end[2] = { END_MARK, seq - 1 };
	must_send(d, end, sizeof(end), 74);
	return ipcx_close(d) == 0 ? 0 : 75;
}

static void run_flow(struct t_nats s[3], int victim, struct flow *f, struct flow_report *r)
{
	t_sync_init(&f->ready);
	t_sync_init(&f->probe_seen);
	t_sync_init(&f->kill_now);
	t_sync_init(&f->killed);
	t_sync_init(&f->enough);
	cr_assert_eq(pipe(f->kseq), 0);
	cr_assert_eq(pipe(f->report), 0);
	pid_t rx = t_spawn(flow_listener, f), tx = t_spawn(flow_publisher, f);
	close(f->report[1]); /* a child that dies is an end of file, not a hang */
	cr_assert(t_wait_post(&f->kill_now, T_GUARD_MS), "the stream did not start");
	t_nats_kill(&s[victim], SIGKILL);
	t_post(&f->killed);
	read_all(f->report[0], r, sizeof(*r));
	cr_expect_eq(t_join(tx, T_GUARD_MS), 0, "the publisher failed");
	cr_expect_eq(t_join(rx, T_GUARD_MS), 0, "the listener failed");
	for (int i = 0; i < 3; i++)
		t_nats_stop(&s[i]);
	int64_t sent = r->last + 1, lost = sent - r->received;
	cr_log_info("cluster, server %c killed: %lld sent, %lld received, %lld lost in %lld "
		    "run(s) from %lld; %lld came late (after higher numbers); %lld -ECONNRESET; "
		    "the publisher heard of the kill at %lld",
		    'A' + victim, (long long)sent, (long long)r->received, (long long)lost,
		    (long long)r->gaps, (long long)r->gap_first, (long long)r->late,
		    (long long)r->markers, (long long)r->kill_seq);
	cr_expect_eq(r->twice, 0, "%lld messages came twice", (long long)r->twice);
	cr_expect_eq(r->late_disorder, 0, "%lld of the %lld late messages came out of order "
		     "among themselves", (long long)r->late_disorder, (long long)r->late);
	cr_expect_leq(r->gaps, 1, "the loss is not one run around the switch");
	cr_expect_eq(r->lost_at_end, 0, "a loss at the end of the stream");
}

Test(nats, cluster_listener_server_killed, .timeout = 300)
{
	static struct t_nats s[3];
	cr_assert(t_nats_cluster(s));
	static struct flow f;
	memset(&f, 0, sizeof(f));
	/* The listener on B, failing over to C; the publisher on A. */
	char list[200];
	snprintf(list, sizeof(list), "%s,%s", s[1].addr, s[2].addr);
	url_of(f.url_rx, sizeof(f.url_rx), list, "flow", "pending=4000000&reconnect_wait=50");
	url_of(f.url_tx, sizeof(f.url_tx), s[0].addr, "flow", "");
	url_of(f.url_probe[0], sizeof(f.url_probe[0]), s[0].addr, "flow", "");
	struct flow_report r;
	run_flow(s, 1, &f, &r);
	cr_expect_eq(r.markers, 1, "the listener whose server died is told once (-ECONNRESET), "
		     "not %lld times", (long long)r.markers);
	if (r.gaps)
		cr_expect_gt(r.gap_first, r.last_before_mark, "the loss is before the switch");
}

Test(nats, cluster_publisher_server_killed, .timeout = 300)
{
	static struct t_nats s[3];
	cr_assert(t_nats_cluster(s));
	static struct flow f;
	memset(&f, 0, sizeof(f));
	/* The publisher on A, failing over to C; the listener on B. */
	char list[200];
	snprintf(list, sizeof(list), "%s,%s", s[0].addr, s[2].addr);
	url_of(f.url_rx, sizeof(f.url_rx), s[1].addr, "flow", "pending=4000000");
	url_of(f.url_tx, sizeof(f.url_tx), list, "flow", "reconnect_wait=50");
	url_of(f.url_probe[0], sizeof(f.url_probe[0]), s[0].addr, "flow", "");
	url_of(f.url_probe[1], sizeof(f.url_probe[1]), s[2].addr, "flow", "");
	struct flow_report r;
	run_flow(s, 0, &f, &r);
	cr_expect_eq(r.markers, 0, "the listener's own connection never moved");
}

/* ---- RPC over nats:// ------------------------------------------------------------ */

/*
 * The RPC layer (docs/rpc.md) over a subject: a server listens with
 * IPCX_ACCEPT (a channel per client, by the client's inbox), a client dials
 * with reply=1.  The servers are children; the client is the test.
 */
struct rpcs {
	char url[300];
	int id;           /* what the server puts before each reply ("1:") */
	int hold;         /* take this many, post `held`, then close (0: echo for ever) */
	bool wait_go;     /* forked early: serve only when told (`go`) */
	struct t_sync ready, held, go;
};

/* A server forked before the test's client opened waits here for its turn. */
static bool rpc_turn(struct rpcs *a)
{
	return !a->wait_go || t_wait_post(&a->go, T_GUARD_MS);
}

static int rpc_server(void *arg)
{
	struct rpcs *a = arg;
	ipcx_rpc_server *s;
	if (!rpc_turn(a))
		return 69;
	if (ipcx_rpc_serve(a->url, 0, &s) < 0) {
		fprintf(stderr, "serve %s: %s\n", a->url, ipcx_errdetail());
		return 70;
	}
	t_post(&a->ready);
	struct ipcx_rpc_req *held[8], *q;
	for (int i = 0; i < a->hold; i++)
		if (ipcx_rpc_next(s, T_GUARD_MS, &held[i]) < 0)
			return 71;
	if (a->hold) {
		t_post(&a->held);
		pause(); /* killed, or closed by the test's SIGTERM */
	}
	while (ipcx_rpc_next(s, T_GUARD_MS, &q) == 0) {
		char out[300];
		const char *d = q->data;
		if (q->len && d[0] == 'E') {
			ipcx_rpc_fail(q, -ENOENT, "no such thing");
			continue;
		}
		int n = snprintf(out, sizeof(out), "%d:%.*s", a->id, (int)q->len, d);
		bool quit = q->len == 4 && !memcmp(d, "quit", 4);
		ipcx_rpc_reply(q, out, (size_t)n);
		if (quit)
			break;
	}
	return ipcx_rpc_server_close(s) == 0 ? 0 : 72;
}

/* Close the server gracefully on SIGTERM (a held server closes with its calls). */
static int rpc_server_closing(void *arg)
{
	struct rpcs *a = arg;
	ipcx_rpc_server *s;
	if (!rpc_turn(a))
		return 69;
	if (ipcx_rpc_serve(a->url, 0, &s) < 0)
		return 70;
	t_post(&a->ready);
	struct ipcx_rpc_req *held[8];
	for (int i = 0; i < a->hold; i++)
		if (ipcx_rpc_next(s, T_GUARD_MS, &held[i]) < 0)
			return 71;
	t_post(&a->held);
	if (!t_wait_post(&a->ready, T_GUARD_MS)) /* the test's "close now" */
		return 72;
	return ipcx_rpc_server_close(s) == 0 ? 0 : 73;
}

/*
 * Fork a server; it serves at once, or (wait_go) only after rpc_go().  The
 * test's client runs nats.c's threads: a child forked after it opened could
 * inherit a lock one of them held (docs/nats.md, "Threads and fork"), so a
 * server needed later is forked before the client, and told when to serve.
 */
static pid_t rpc_fork(struct rpcs *a, const char *addr, const char *opts, int id, int hold,
		      int (*fn)(void *), bool wait_go)
{
	memset(a, 0, sizeof(*a));
	url_of(a->url, sizeof(a->url), addr, "svc", opts);
	a->id = id;
	a->hold = hold;
	a->wait_go = wait_go;
	t_sync_init(&a->ready);
	t_sync_init(&a->held);
	t_sync_init(&a->go);
	return t_spawn(fn, a);
}

/* Let a forked server serve (if it waits to be told), and wait until it does. */
static void rpc_go(struct rpcs *a)
{
	if (a->wait_go)
		t_post(&a->go);
	cr_assert(t_wait_post(&a->ready, T_GUARD_MS), "the server did not start");
}

static pid_t rpc_start(struct rpcs *a, const char *addr, const char *opts, int id, int hold,
		       int (*fn)(void *))
{
	pid_t pid = rpc_fork(a, addr, opts, id, hold, fn, false);
	rpc_go(a);
	return pid;
}

static ssize_t call(ipcx_rpc_client *c, const char *m, char *buf, size_t cap, int ms)
{
	return ipcx_rpc_call(c, m, strlen(m), buf, cap, ms);
}

/* Calls and their replies, an error reply, and 1000 calls in flight at once. */
Test(nats, rpc_calls)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	struct rpcs a;
	pid_t pid = rpc_start(&a, s.addr, "", 1, 0, rpc_server);
	ipcx_rpc_client *c;
	cr_assert_eq(ipcx_rpc_dial(a.url, 0, &c), 0, "%s", ipcx_errdetail());
	char buf[300];
	for (int i = 0; i < 200; i++) {
		char m[32], want[40];
		snprintf(m, sizeof(m), "call %d", i);
		snprintf(want, sizeof(want), "1:%s", m);
		ssize_t n = call(c, m, buf, sizeof(buf), T_GUARD_MS);
		cr_assert_eq(n, (ssize_t)strlen(want), "call %d: %zd (%s)", i, n, ipcx_errdetail());
		cr_assert(!memcmp(buf, want, (size_t)n));
	}
	cr_expect_eq(call(c, "Ex", buf, sizeof(buf), T_GUARD_MS), -ENOENT);
	cr_expect(strstr(ipcx_errdetail(), "no such thing"), "%s", ipcx_errdetail());
	enum { N = 1000 };
	static uint64_t ids[N];
	for (int i = 0; i < N; i++) {
		char m[32];
		snprintf(m, sizeof(m), "%d", i);
		cr_assert_eq(ipcx_rpc_start(c, m, strlen(m), T_GUARD_MS, 0, &ids[i]), 0, "%s",
			     ipcx_errdetail());
	}
	static uint8_t done[N];
	for (int k = 0; k < N; k++) {
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(c, T_GUARD_MS, buf, sizeof(buf) - 1, &res), 0, "%s",
			     ipcx_errdetail());
		cr_assert_geq(res.status, 2, "call: %d (%s)", (int)res.status, ipcx_errdetail());
		buf[res.status] = '\0';
		int i = atoi(buf + 2);
		cr_assert(i >= 0 && i < N && ids[i] == res.id && !done[i], "reply %s for the wrong call",
			  buf);
		done[i] = 1;
	}
	cr_expect_eq(call(c, "quit", buf, sizeof(buf), T_GUARD_MS), 6);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	ipcx_rpc_client_close(c);
	t_nats_stop(&s);
}

/* Two servers in a queue group: each call to one of them, both used. */
Test(nats, rpc_queue_group)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	struct rpcs a[2];
	pid_t pid[2];
	for (int i = 0; i < 2; i++)
		pid[i] = rpc_start(&a[i], s.addr, "queue=workers", i + 1, 0, rpc_server);
	ipcx_rpc_client *c;
	cr_assert_eq(ipcx_rpc_dial(a[0].url, 0, &c), 0, "%s", ipcx_errdetail());
	int by[3] = { 0 };
	char buf[300];
	for (int i = 0; i < 400; i++) {
		ssize_t n = call(c, "x", buf, sizeof(buf), T_GUARD_MS);
		cr_assert_eq(n, 3, "call %d: %zd (%s)", i, n, ipcx_errdetail());
		by[buf[0] - '0']++;
	}
	cr_log_info("rpc queue group: server 1 took %d, server 2 took %d of 400", by[1], by[2]);
	cr_expect(by[1] > 0 && by[2] > 0, "one server took every call");
	for (int i = 0; i < 2; i++) /* a quit goes to one of them: kill both */
		kill(pid[i], SIGKILL), t_join(pid[i], T_GUARD_MS);
	ipcx_rpc_client_close(c);
	t_nats_stop(&s);
}

/*
 * What a caller sees of a server that goes: one that closes says so (its
 * calls in hand fail at once); one that is killed cannot, and its calls end
 * at their deadline; a subject nobody serves fails at once (the server's
 * "no responders"); a new server on the subject serves the next call.
 */
Test(nats, rpc_server_gone)
{
	struct t_nats s = { 0 };
	cr_assert(t_nats_start(&s, false, NULL, NULL, 0));
	/* All three servers forked before the client opens; each serves when told. */
	struct rpcs a[3];
	pid_t pid[3];
	pid[0] = rpc_fork(&a[0], s.addr, "", 1, 2, rpc_server_closing, false);
	pid[1] = rpc_fork(&a[1], s.addr, "", 2, 1, rpc_server, true);
	pid[2] = rpc_fork(&a[2], s.addr, "", 3, 0, rpc_server, true);
	rpc_go(&a[0]);
	ipcx_rpc_client *c;
	cr_assert_eq(ipcx_rpc_dial(a[0].url, 0, &c), 0, "%s", ipcx_errdetail());
	uint64_t id[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(ipcx_rpc_start(c, "x", 1, T_GUARD_MS, 0, &id[i]), 0);
	cr_assert(t_wait_post(&a[0].held, T_GUARD_MS));
	t_post(&a[0].ready); /* close now, with both calls in hand */
	char buf[64];
	for (int i = 0; i < 2; i++) {
		struct ipcx_rpc_result res;
		cr_assert_eq(ipcx_rpc_wait(c, T_GUARD_MS, buf, sizeof(buf), &res), 0);
		cr_expect_eq(res.status, -ECONNRESET, "a call held by a server that closed: %d",
			     (int)res.status);
	}
	cr_expect_eq(t_join(pid[0], T_GUARD_MS), 0);
	/* Nobody serves the subject now: the next call fails at once. */
	ssize_t r = call(c, "x", buf, sizeof(buf), T_GUARD_MS);
	cr_expect(r < 0 && r != -ETIMEDOUT, "a call nobody serves gave %zd (%s)", r, ipcx_errdetail());
	/* A server killed holding a call: the call ends at its deadline. */
	rpc_go(&a[1]);
	cr_assert_eq(ipcx_rpc_start(c, "x", 1, 1000, 0, &id[0]), 0);
	cr_assert(t_wait_post(&a[1].held, T_GUARD_MS));
	kill(pid[1], SIGKILL);
	t_join(pid[1], T_GUARD_MS);
	struct ipcx_rpc_result res;
	cr_assert_eq(ipcx_rpc_wait(c, T_GUARD_MS, buf, sizeof(buf), &res), 0);
	cr_expect_eq(res.status, -ETIMEDOUT, "a call held by a killed server: %d", (int)res.status);
	/* And a new server takes the next call. */
	rpc_go(&a[2]);
	cr_expect_eq(call(c, "again", buf, sizeof(buf), T_GUARD_MS), 7, "%s", ipcx_errdetail());
	cr_expect_eq(call(c, "quit", buf, sizeof(buf), T_GUARD_MS), 6);
	cr_expect_eq(t_join(pid[2], T_GUARD_MS), 0);
	ipcx_rpc_client_close(c);
	t_nats_stop(&s);
}

/* ---- publish/subscribe over nats:// (docs/pubsub.md, "NATS") ------------------- */

enum { PS_MAX_GOT = 64, PS_FLOOD = 2000, PS_EVERY = 3000 };

struct ps_sub {
	char url[300];
	const char *pre[3];
	size_t npre;
	bool batch; /* take them with ipcx_sub_recvv */
	struct t_sync ready;
	int report[2];
};

static ipcx_sub *must_sub(const char *url, const char *const *pre, size_t n, int code)
{
	ipcx_sub *s;
	int r = ipcx_sub_open(url, pre, n, 0, &s);
	if (r < 0) {
		fprintf(stderr, "sub %s: %s (%s)\n", url, ipcx_strerror(r), ipcx_errdetail());
		_exit(code);
	}
	return s;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The end of a run of topics: every subscriber of the test keeps it. */
#define PS_END "weather.os-end"

/* Receive until PS_END; report each as "TOPIC=PAYLOAD;" and then the counters. */
static int topic_sub(void *arg)
{
	struct ps_sub *a = arg;
	ipcx_sub *s = must_sub(a->url, a->pre, a->npre, 70);
	t_post(&a->ready);
	char out[4096] = "", t[4][IPCX_TOPIC_MAX + 1], b[4][64];
	size_t o = 0;
	for (bool end = false; !end;) {
		struct ipcx_sub_msg m[4];
		for (int i = 0; i < 4; i++)
			m[i] = (struct ipcx_sub_msg){ t[i], sizeof(t[i]), b[i], sizeof(b[i]) - 1, 0 };
		ssize_t k = a->batch ? ipcx_sub_recvv(s, m, 4, T_GUARD_MS)
				     : ipcx_sub_recv(s, t[0], sizeof(t[0]), b[0], sizeof(b[0]) - 1,
						     T_GUARD_MS);
		if (k < 0) {
			fprintf(stderr, "sub: %s (%s)\n", ipcx_strerror((int)k), ipcx_errdetail());
			return 71;
		}
		if (!a->batch) {
			m[0].len = (size_t)k;
			k = 1;
		}
		for (ssize_t i = 0; i < k && o < sizeof(out) - 300; i++) {
			b[i][m[i].len] = 0;
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s=%s;", t[i], b[i]);
			end |= !strcmp(t[i], PS_END);
		}
	}
	struct ipcx_pubsub_stats st;
	if (ipcx_sub_stats(s, &st) < 0)
		return 72;
	snprintf(out + o, sizeof(out) - o, " received %llu lost %llu lag %llu",
		 (unsigned long long)st.received, (unsigned long long)st.lost,
		 (unsigned long long)st.lag);
	write_all(a->report[1], out, strlen(out) + 1);
	ipcx_sub_close(s);
	return 0;
}

static void ps_sub_start(struct ps_sub *a, pid_t *pid)
{
	t_sync_init(&a->ready);
	cr_assert_eq(pipe(a->report), 0);
	*pid = t_spawn(topic_sub, a);
	close(a->report[1]);
}

static void ps_sub_result(struct ps_sub *a, pid_t pid, char *buf, size_t cap)
{
	ssize_t n = read(a->report[0], buf, cap - 1);
	buf[n > 0 ? n : 0] = 0;
	close(a->report[0]);
	int st = t_join(pid, T_GUARD_MS);
	cr_expect_eq(st, 0, "subscriber %s ended with %d", a->pre[0] ? a->pre[0] : "(all)", st);
	t_sync_close(&a->ready);
}

static ipcx_pub *must_pub(const char *url)
{
	ipcx_pub *p = NULL;
	int r = ipcx_pub_open(url, 0, &p);
	cr_assert_eq(r, 0, "pub %s: %s (%s)", url, ipcx_strerror(r), ipcx_errdetail());
	return p;
}

static void publish(ipcx_pub *p, const char *topic, const char *msg)
{
	ssize_t r = ipcx_pub_send(p, topic, msg, strlen(msg), T_GUARD_MS);
	cr_assert_eq(r, (ssize_t)strlen(msg), "publish %s: %s (%s)", topic,
		     ipcx_strerror((int)r), ipcx_errdetail());
}

/*
 * Topics: each subscriber gets what starts with one of its prefixes, with
 * the topic back exactly (the empty one too), in the order published,
 * whether the server filters (a subject under SUBJECT) or the subscriber
 * (prefixes that end inside a token).
 */
Test(nats, pubsub_topics)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	static struct ps_sub subs[4] = {
		{ .pre = { NULL }, .npre = 0 },
		{ .pre = { "weather." }, .npre = 1, .batch = true },
		{ .pre = { "weather.os", "news" }, .npre = 2 },
		{ .pre = { "" , "x.y." }, .npre = 2, .batch = true },
	};
	pid_t pid[4];
	for (int i = 0; i < 4; i++) {
		url_of(subs[i].url, sizeof(subs[i].url), srv.addr, "ipcxt.ps", "");
		ps_sub_start(&subs[i], &pid[i]);
	}
	for (int i = 0; i < 4; i++)
		cr_assert(t_wait_post(&subs[i].ready, T_GUARD_MS), "subscriber %d not ready", i);
	char url[300];
	url_of(url, sizeof(url), srv.addr, "ipcxt.ps", "");
	ipcx_pub *p = must_pub(url);
	publish(p, "weather.oslo", "rain");
	publish(p, "", "no topic");
	publish(p, "news", "hello");
	publish(p, "newsletter.x", "read");
	publish(p, "weather.rome", "sun");
	publish(p, "_", "underscore");
	publish(p, "weathers", "plural");
	publish(p, PS_END, "end");
	struct ipcx_pubsub_stats st;
	cr_expect_eq(ipcx_pub_stats(p, &st), 0);
	cr_expect_eq(st.published, 8);
	cr_expect_eq(ipcx_pub_close(p), 0);
	const char *all = "weather.oslo=rain;=no topic;news=hello;newsletter.x=read;"
			  "weather.rome=sun;_=underscore;weathers=plural;" PS_END "=end;";
	char want[4][1024], got[4096];
	snprintf(want[0], sizeof(want[0]), "%s received 8 lost 0 lag 0", all);
	snprintf(want[1], sizeof(want[1]), "weather.oslo=rain;weather.rome=sun;" PS_END
		 "=end; received 3 lost 0 lag 0");
	snprintf(want[2], sizeof(want[2]), "weather.oslo=rain;news=hello;newsletter.x=read;" PS_END
		 "=end; received 4 lost 0 lag 0");
	snprintf(want[3], sizeof(want[3]), "%s received 8 lost 0 lag 0", all);
	for (int i = 0; i < 4; i++) {
		ps_sub_result(&subs[i], pid[i], got, sizeof(got));
		cr_expect_str_eq(got, want[i], "subscriber %d", i);
	}
	t_nats_stop(&srv);
}

struct ps_every {
	char url[300];
	struct t_sync ready;
	int report[2];
};

/* Every message, in order: each is its number; the topic says it again. */
static int every_sub(void *arg)
{
	struct ps_every *a = arg;
	ipcx_sub *s = must_sub(a->url, NULL, 0, 70);
	t_post(&a->ready);
	uint64_t ok = 0;
	for (uint64_t i = 0; i < PS_EVERY; i++) {
		char t[IPCX_TOPIC_MAX + 1], want[32];
		uint64_t v = UINT64_MAX;
		ssize_t n = ipcx_sub_recv(s, t, sizeof(t), &v, sizeof(v), T_GUARD_MS);
		snprintf(want, sizeof(want), "n.%llu", (unsigned long long)(i % 7));
		if (n != 8) {
			fprintf(stderr, "sub: message %llu: %s (%s)\n", (unsigned long long)i,
				ipcx_strerror((int)n), ipcx_errdetail());
			break;
		}
		ok += v == i && !strcmp(t, want);
	}
	struct ipcx_pubsub_stats st = { 0 };
	ipcx_sub_stats(s, &st);
	uint64_t out[3] = { ok, st.received, st.lost };
	write_all(a->report[1], out, sizeof(out));
	ipcx_sub_close(s);
	return 0;
}

/* Two subscriber processes each get every message, in order. */
Test(nats, pubsub_every_subscriber_gets_every_message)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	struct ps_every a[2];
	pid_t pid[2];
	for (int i = 0; i < 2; i++) {
		url_of(a[i].url, sizeof(a[i].url), srv.addr, "ipcxt.every", "");
		t_sync_init(&a[i].ready);
		cr_assert_eq(pipe(a[i].report), 0);
		pid[i] = t_spawn(every_sub, &a[i]);
		close(a[i].report[1]);
	}
	for (int i = 0; i < 2; i++)
		cr_assert(t_wait_post(&a[i].ready, T_GUARD_MS));
	char url[300];
	url_of(url, sizeof(url), srv.addr, "ipcxt.every", "policy=drop");
	ipcx_pub *p = must_pub(url);
	for (uint64_t i = 0; i < PS_EVERY; i++) {
		char t[32];
		snprintf(t, sizeof(t), "n.%llu", (unsigned long long)(i % 7));
		cr_assert_eq(ipcx_pub_send(p, t, &i, 8, T_GUARD_MS), 8);
	}
	cr_expect_eq(ipcx_pub_close(p), 0);
	for (int i = 0; i < 2; i++) {
		uint64_t out[3] = { 0 };
		read_all(a[i].report[0], out, sizeof(out));
		close(a[i].report[0]);
		cr_expect_eq(t_join(pid[i], T_GUARD_MS), 0);
		cr_expect_eq(out[0], PS_EVERY, "subscriber %d: %llu of %d in order", i,
			     (unsigned long long)out[0], PS_EVERY);
		cr_expect_eq(out[1], PS_EVERY);
		cr_expect_eq(out[2], 0);
		t_sync_close(&a[i].ready);
	}
	t_nats_stop(&srv);
}

struct ps_slow {
	char url_small[300], url_big[300];
	struct t_sync ready, sent;
	int report[2];
};

/*
 * Two subscribers in one process: one with a queue of 10 (pending=10) that
 * reads only once everything was published, one that holds all.  Once the
 * big one has every message, so has the small one's connection (one server,
 * the same messages), bar a few in flight: its received + lost reaches the
 * count published, with no -ENOBUFS ever returned.
 */
static int slow_sub(void *arg)
{
	struct ps_slow *a = arg;
	ipcx_sub *small = must_sub(a->url_small, NULL, 0, 70), *big = must_sub(a->url_big, NULL, 0, 71);
	t_post(&a->ready);
	if (!t_wait_post(&a->sent, T_GUARD_MS))
		return 72;
	char t[IPCX_TOPIC_MAX + 1];
	uint64_t v;
	for (int i = 0; i < PS_FLOOD; i++)
		if (ipcx_sub_recv(big, t, sizeof(t), &v, sizeof(v), T_GUARD_MS) != 8)
			return 73;
	uint64_t got = 0, order = 0, last = 0;
	struct ipcx_pubsub_stats st = { 0 };
	int64_t deadline = now_ms() + T_GUARD_MS;
	while (ipcx_sub_stats(small, &st) == 0 && st.received + st.lost < PS_FLOOD &&
	       now_ms() < deadline) {
		ssize_t n = ipcx_sub_recv(small, t, sizeof(t), &v, sizeof(v), 100);
		if (n == -ETIMEDOUT)
			continue; /* a loss nats.c reports later, on its own thread */
		if (n != 8)
			return 74;
		order += !got || v > last;
		last = v;
		got++;
	}
	uint64_t out[6] = { got, order, st.received, st.lost, st.lag, st.published };
	write_all(a->report[1], out, sizeof(out));
	ipcx_sub_close(small);
	ipcx_sub_close(big);
	return 0;
}

/* A subscriber that falls behind loses messages, and counts every one. */
Test(nats, pubsub_slow_subscriber_counts_its_losses)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	struct ps_slow a;
	url_of(a.url_small, sizeof(a.url_small), srv.addr, "ipcxt.flood", "pending=10");
	url_of(a.url_big, sizeof(a.url_big), srv.addr, "ipcxt.flood", "");
	t_sync_init(&a.ready);
	t_sync_init(&a.sent);
	cr_assert_eq(pipe(a.report), 0);
	pid_t pid = t_spawn(slow_sub, &a);
	close(a.report[1]);
	cr_assert(t_wait_post(&a.ready, T_GUARD_MS));
	char url[300];
	url_of(url, sizeof(url), srv.addr, "ipcxt.flood", "");
	ipcx_pub *p = must_pub(url);
	for (uint64_t i = 0; i < PS_FLOOD; i++)
		cr_assert_eq(ipcx_pub_send(p, "tick", &i, 8, T_GUARD_MS), 8);
	t_post(&a.sent);
	uint64_t out[6] = { 0 };
	read_all(a.report[0], out, sizeof(out));
	int st = t_join(pid, T_GUARD_MS);
	cr_expect_eq(st, 0, "the subscriber ended with %d", st);
	cr_expect_eq(out[2] + out[3], PS_FLOOD, "received %llu + lost %llu",
		     (unsigned long long)out[2], (unsigned long long)out[3]);
	cr_expect_eq(out[0], out[2], "received counts what was received");
	cr_expect_eq(out[1], out[0], "in order");
	cr_expect_gt(out[3], 0, "nothing was lost from a queue of 10");
	cr_expect_eq(out[4], 0);
	cr_expect_eq(out[5], PS_FLOOD, "published, as the subscriber counts it");
	cr_expect_eq(ipcx_pub_close(p), 0);
	t_nats_stop(&srv);
}

static void expect_sub_fail(const char *url, const char *const *pre, size_t n, int err,
			    const char *words)
{
	ipcx_sub *s = NULL;
	int r = ipcx_sub_open(url, pre, n, 0, &s);
	cr_expect_eq(r, err, "%s: gave %d (%s), want %d", url, r, ipcx_errdetail(), err);
	cr_expect(strstr(ipcx_errdetail(), words), "%s: detail '%s' lacks '%s'", url,
		  ipcx_errdetail(), words);
	if (s)
		ipcx_sub_close(s);
}

/* What core NATS cannot do is refused, with a reason; so are topics it cannot route. */
Test(nats, pubsub_refusals)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	char url[300];
	ipcx_pub *p = NULL;
	url_of(url, sizeof(url), srv.addr, "ipcxt.no", "policy=block");
	cr_expect_eq(ipcx_pub_open(url, 0, &p), -EOPNOTSUPP);
	cr_expect(strstr(ipcx_errdetail(), "slowest subscriber"), "%s", ipcx_errdetail());
	url_of(url, sizeof(url), srv.addr, "ipcxt.no", "history=5");
	expect_sub_fail(url, NULL, 0, -EINVAL, "history=");
	url_of(url, sizeof(url), srv.addr, "ipcxt.no", "queue=100");
	expect_sub_fail(url, NULL, 0, -EINVAL, "queue group");
	url_of(url, sizeof(url), srv.addr, "ipcxt.no", "stream=S");
	expect_sub_fail(url, NULL, 0, -EINVAL, "JetStream");
	url_of(url, sizeof(url), srv.addr, "ipcxt.*", "");
	expect_sub_fail(url, NULL, 0, -EINVAL, "wildcards");
	url_of(url, sizeof(url), srv.addr, "ipcxt.no", "");
	const char *bad[] = { "a..b" };
	expect_sub_fail(url, bad, 1, -EINVAL, "none empty");
	const char *blank[] = { "a b" };
	expect_sub_fail(url, blank, 1, -EINVAL, "blanks");
	cr_assert_null(p);
	p = must_pub(url);
	const char *topics[] = { "a..b", ".a", "a.", "a b", "*", "a.>", "tab\there" };
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		ssize_t r = ipcx_pub_send(p, topics[i], "x", 1, 0);
		cr_expect_eq(r, -EINVAL, "topic '%s': %zd (%s)", topics[i], r, ipcx_errdetail());
	}
	cr_expect_eq(ipcx_pub_wait(p, 1, 0), -EOPNOTSUPP);
	cr_expect_eq(ipcx_pub_subscribers(p, NULL, 0), -EOPNOTSUPP);
	cr_expect_eq(ipcx_pub_close(p), 0);
	/* ipcx_send_to is for a dialled core nats:// channel only. */
	ipcx_chan *l = must_open(url, true, 1);
	cr_expect_eq(ipcx_send_to(l, "a", "x", 1, 0), -EOPNOTSUPP);
	ipcx_close(l);
	ipcx_chan *a = NULL, *b = NULL;
	cr_assert_eq(ipcx_pair("socket", 0, &a, &b), 0);
	cr_expect_eq(ipcx_send_to(a, "a", "x", 1, 0), -EOPNOTSUPP);
	ipcx_close(a);
	ipcx_close(b);
	t_nats_stop(&srv);
}

struct ps_switch {
	char url[300];
	struct t_sync ready, got;
	int report[2];
};

/*
 * Receive across a server switch: what comes first is the -ECONNRESET
 * (nothing was published before the server died), once, then the messages
 * through the restarted server.
 */
static int switch_sub(void *arg)
{
	struct ps_switch *a = arg;
	ipcx_sub *s = must_sub(a->url, NULL, 0, 70);
	t_post(&a->ready);
	int64_t resets = 0, first = 0, msgs = 0, named = 0;
	for (;;) {
		char t[IPCX_TOPIC_MAX + 1], b[16];
		ssize_t n = ipcx_sub_recv(s, t, sizeof(t), b, sizeof(b), T_GUARD_MS);
		if (!first)
			first = n;
		if (n == -ECONNRESET) {
			resets++;
			named += strstr(ipcx_errdetail(), "made again") != NULL;
			continue;
		}
		if (n < 0)
			return 71;
		if (msgs++ == 0)
			t_post(&a->got);
		if (!strcmp(t, "last"))
			break;
	}
	int64_t out[4] = { resets, first, named, msgs };
	write_all(a->report[1], out, sizeof(out));
	ipcx_sub_close(s);
	return 0;
}

/* A subscriber whose server dies and comes back is told, once, and goes on. */
Test(nats, pubsub_server_switch_is_reported)
{
	struct t_nats srv = { 0 };
	cr_assert(t_nats_start(&srv, false, NULL, NULL, 0));
	struct ps_switch a;
	url_of(a.url, sizeof(a.url), srv.addr, "ipcxt.switch", "reconnect_wait=50&reconnect=600");
	t_sync_init(&a.ready);
	t_sync_init(&a.got);
	cr_assert_eq(pipe(a.report), 0);
	pid_t pid = t_spawn(switch_sub, &a);
	close(a.report[1]);
	cr_assert(t_wait_post(&a.ready, T_GUARD_MS));
	int port = srv.port;
	t_nats_kill(&srv, SIGKILL);
	cr_assert(t_nats_start(&srv, false, NULL, NULL, port), "cannot restart on port %d", port);
	char url[300];
	url_of(url, sizeof(url), srv.addr, "ipcxt.switch", "");
	ipcx_pub *p = must_pub(url);
	/* Until its subscription is renewed on the new server, what we publish
	 * reaches nobody: publish until it says it got one (the wait is the
	 * handshake; the total is the guard). */
	int64_t deadline = now_ms() + T_GUARD_MS;
	bool got = false;
	while (!got && now_ms() < deadline) {
		publish(p, "again", "x");
		got = t_wait_post(&a.got, 20);
	}
	cr_assert(got, "the subscriber got nothing through the new server");
	publish(p, "last", "x");
	int64_t out[4] = { 0 };
	read_all(a.report[0], out, sizeof(out));
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	cr_expect_eq(out[0], 1, "-ECONNRESET %lld times", (long long)out[0]);
	cr_expect_eq(out[1], -ECONNRESET, "the first receive gave %lld", (long long)out[1]);
	cr_expect_eq(out[2], 1, "its detail says the connection was made again");
	cr_expect_geq(out[3], 2);
	cr_expect_eq(ipcx_pub_close(p), 0);
	t_nats_stop(&srv);
}
