/*
 * Publish/subscribe through the public API (ipcx_pub_*, ipcx_sub_*), on
 * both families: topic filtering (at the subscriber on a ring, at the
 * publisher on sockets: unwanted messages never reach a socket
 * subscriber); block mode delivers everything in order; in drop mode a
 * subscriber that stops reading stalls nobody and, per subscriber,
 * received + lost = published exactly; a subscriber killed with SIGKILL
 * releases a blocked publisher; history for a late joiner; publishers and
 * subscribers in any order; level-triggered descriptors.  The same through
 * the batch receive (ipcx_sub_recvv), and what a batch leaves behind.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ipcx.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tsupport.h"

static char *ring_url(const char *opts)
{
	static char u[256];
	snprintf(u, sizeof(u), "shm:/%s%s", t_name(), opts);
	return u;
}

static char *sock_url(const char *opts)
{
	static char u[256];
	snprintf(u, sizeof(u), "unix:%s%s", t_path("ps.sock"), opts);
	return u;
}

static ipcx_sub *sub_open(const char *url, const char *prefix)
{
	ipcx_sub *s = NULL;
	const char *pre[1] = { prefix };
	int r = ipcx_sub_open(url, pre, prefix ? 1 : 0, 0, &s);
	cr_assert_eq(r, 0, "sub %s: %s", url, ipcx_errdetail());
	return s;
}

static ipcx_pub *pub_open(const char *url)
{
	ipcx_pub *p = NULL;
	int r = ipcx_pub_open(url, 0, &p);
	cr_assert_eq(r, 0, "pub %s: %s", url, ipcx_errdetail());
	return p;
}

static void pub(ipcx_pub *p, const char *topic, const char *msg)
{
	cr_assert_eq(ipcx_pub_send(p, topic, msg, strlen(msg), T_GUARD_MS), (ssize_t)strlen(msg),
		     "publish %s: %s", topic, ipcx_errdetail());
}

static void expect(ipcx_sub *s, const char *topic, const char *msg)
{
	char t[IPCX_TOPIC_MAX + 1], buf[256];
	ssize_t n = ipcx_sub_recv(s, t, sizeof(t), buf, sizeof(buf), T_GUARD_MS);
	cr_assert_eq(n, (ssize_t)strlen(msg), "recv %s: %zd %s", msg, n, ipcx_errdetail());
	cr_expect_str_eq(t, topic);
	cr_expect_eq(memcmp(buf, msg, (size_t)n), 0);
}

static void expect_none(ipcx_sub *s)
{
	char buf[256];
	cr_expect_eq(ipcx_sub_recv(s, NULL, 0, buf, sizeof(buf), 0), -EAGAIN);
}

/* ---- topics --------------------------------------------------------------------------- */

static void topics(const char *url, bool ring)
{
	/* On sockets a subscriber dials at once when its publisher is there. */
	ipcx_pub *p = pub_open(url);
	ipcx_sub *all = sub_open(url, NULL), *w = sub_open(url, "weather.");
	if (!ring)
		cr_assert_eq(ipcx_pub_wait(p, 2, T_GUARD_MS), 0, "both subscribers are there");
	pub(p, "weather.oslo", "rain");
	pub(p, "news", "hello");
	pub(p, "weather.rome", "sun");
	pub(p, "", "no topic");
	expect(all, "weather.oslo", "rain");
	expect(all, "news", "hello");
	expect(all, "weather.rome", "sun");
	expect(all, "", "no topic");
	expect(w, "weather.oslo", "rain");
	expect(w, "weather.rome", "sun");
	expect_none(w);
	struct ipcx_pubsub_stats st;
	cr_assert_eq(ipcx_sub_stats(w, &st), 0);
	cr_expect_eq(st.received, 2);
	/* A ring's subscriber reads and passes over; a socket's never gets them. */
	cr_expect_eq(st.filtered, ring ? 2 : 0);
	cr_expect_eq(st.published, ring ? 4 : 2);
	cr_expect_eq(st.lost + st.lag, 0);
	cr_assert_eq(ipcx_pub_stats(p, &st), 0);
	cr_expect_eq(st.published, 4);
	cr_expect_eq(st.subscribers, 2);
	struct ipcx_subscriber subs[4];
	cr_expect_eq(ipcx_pub_subscribers(p, subs, 4), 2);
	if (!ring) /* what the publisher sent each: 4 to one, 2 to the other */
		cr_expect_eq(subs[0].received + subs[1].received, 6);
	/* A call that passes over what it does not keep still ends at its timeout. */
	pub(p, "news", "more");
	pub(p, "news", "again");
	char buf[64];
	cr_expect_eq(ipcx_sub_recv(w, NULL, 0, buf, sizeof(buf), 20), -ETIMEDOUT);
	cr_assert_eq(ipcx_sub_stats(w, &st), 0);
	cr_expect_eq(st.filtered, ring ? 4 : 0);
	ipcx_pub_close(p);
	ipcx_sub_close(w);
	ipcx_sub_close(all);
}

Test(pubsub, ring_topics_filtered_by_the_subscriber)
{
	topics(ring_url(""), true);
}

Test(pubsub, sysvshm_topics)
{
	char u[64];
	snprintf(u, sizeof(u), "sysvshm:%d", t_sysv_key());
	topics(u, true);
}

Test(pubsub, socket_topics_filtered_by_the_publisher)
{
	topics(sock_url(""), false);
}

Test(pubsub, tcp_topics)
{
	ipcx_pub *p = pub_open("tcp://127.0.0.1:0");
	char addr[128];
	cr_assert_gt(ipcx_pub_addr(p, addr, sizeof(addr)), 0);
	ipcx_sub *s = sub_open(addr, "a");
	cr_assert_eq(ipcx_pub_wait(p, 1, T_GUARD_MS), 0);
	pub(p, "b", "not for it");
	pub(p, "ab", "for it");
	expect(s, "ab", "for it");
	struct ipcx_pubsub_stats st;
	cr_assert_eq(ipcx_sub_stats(s, &st), 0);
	cr_expect_eq(st.filtered, 0, "the publisher kept 'b' to itself");
	ipcx_sub_close(s);
	ipcx_pub_close(p);
}

Test(pubsub, bad_arguments)
{
	ipcx_pub *p;
	ipcx_sub *s;
	cr_expect_eq(ipcx_pub_open("mq:/x", 0, &p), -EPROTONOSUPPORT);
	cr_expect_eq(ipcx_pub_open(ring_url(""), 1, &p), -EINVAL);
	const char *pre[1] = { "x" };
	cr_expect_eq(ipcx_sub_open(sock_url("?history=3"), pre, 1, 0, &s), -EINVAL);
	p = pub_open(ring_url("?max=100"));
	char topic[300];
	memset(topic, 'x', sizeof(topic) - 1);
	topic[sizeof(topic) - 1] = 0;
	cr_expect_eq(ipcx_pub_send(p, topic, "m", 1, 0), -EINVAL, "a topic of 299 bytes");
	char big[200] = { 0 };
	cr_expect_eq(ipcx_pub_send(p, "t", big, sizeof(big), 0), -EMSGSIZE);
	cr_expect_eq(ipcx_pub_send(p, "t", big, 10, -2), -EINVAL);
	ipcx_pub_close(p);
}

/* ---- order, and zero copy -------------------------------------------------------------- */

Test(pubsub, ring_history_and_peek)
{
	const char *url = ring_url("");
	ipcx_pub *p = pub_open(url);
	char u[300];
	pub(p, "t", "m0");
	pub(p, "u", "m1");
	pub(p, "t", "m2");
	snprintf(u, sizeof(u), "%s?history=2", url);
	ipcx_sub *s = sub_open(u, "t"); /* the last two: m1 (not its topic) and m2 */
	const char *topic;
	const void *m;
	cr_assert_eq(ipcx_sub_peek(s, T_GUARD_MS, &topic, &m), 2);
	cr_expect_str_eq(topic, "t");
	cr_expect_eq(memcmp(m, "m2", 2), 0);
	char buf[8];
	cr_expect_eq(ipcx_sub_recv(s, NULL, 0, buf, sizeof(buf), 0), -EBUSY);
	cr_expect_eq(ipcx_sub_release(s), 0);
	cr_expect_eq(ipcx_sub_release(s), -EINVAL);
	/* Too small a buffer: the message stays. */
	pub(p, "t", "m3");
	cr_expect_eq(ipcx_sub_recv(s, NULL, 0, buf, 1, 0), -EMSGSIZE);
	expect(s, "t", "m3");
	ipcx_sub_close(s);
	ipcx_pub_close(p);
}

/* ---- any order, come and go ---------------------------------------------------------------- */

/*
 * A subscriber dials while it is called or polled (its descriptor turns
 * readable when a dial falls due): an event loop over both, until the
 * publisher has them.
 */
static void wait_dialled(ipcx_pub *p, ipcx_sub *a, ipcx_sub *b)
{
	struct pollfd pf[2] = { { .fd = ipcx_sub_fileno(a), .events = POLLIN },
				{ .fd = ipcx_sub_fileno(b), .events = POLLIN } };
	char buf[16];
	/* Each pass: a dial falls due (poll), is made (recv), the publisher takes it in (wait). */
	for (int i = 0; ipcx_pub_wait(p, 2, 10) != 0; i++) {
		cr_assert_lt(i, T_GUARD_MS / 10, "the subscribers never dialled");
		poll(pf, 2, 10);
		cr_assert_eq(ipcx_sub_recv(a, NULL, 0, buf, sizeof(buf), 0), -EAGAIN);
		cr_assert_eq(ipcx_sub_recv(b, NULL, 0, buf, sizeof(buf), 0), -EAGAIN);
	}
}

Test(pubsub, socket_publishers_come_and_go)
{
	const char *url = sock_url("");
	ipcx_sub *a = sub_open(url, NULL), *b = sub_open(url, ""); /* nobody there yet */
	for (int i = 0; i < 3; i++) {
		/* A new publisher each time; the subscribers dial it again. */
		ipcx_pub *p = pub_open(url);
		wait_dialled(p, a, b);
		char msg[16];
		snprintf(msg, sizeof(msg), "round %d", i);
		pub(p, "t", msg);
		cr_assert_eq(ipcx_pub_close(p), 0);
		expect(a, "t", msg);
		expect(b, "t", msg);
	}
	ipcx_sub_close(a);
	ipcx_sub_close(b);
}

Test(pubsub, ring_any_order)
{
	const char *url = ring_url("");
	ipcx_sub *a = sub_open(url, NULL); /* first: it makes the ring */
	for (int i = 0; i < 3; i++) {
		ipcx_pub *p = pub_open(url);
		pub(p, "t", "x");
		ipcx_pub_close(p);
		expect(a, "t", "x");
	}
	ipcx_pub *p = pub_open(url);
	ipcx_sub_close(a); /* the maker leaves; the ring stays for the publisher */
	ipcx_sub *b = sub_open(url, NULL);
	pub(p, "t", "y");
	expect(b, "t", "y");
	ipcx_pub_close(p);
	ipcx_sub_close(b);
}

static void poll_expect(int fd, int want, int timeout_ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	cr_expect_eq(poll(&pf, 1, timeout_ms), want);
}

static void level_triggered(const char *url, bool ring)
{
	ipcx_pub *p = pub_open(url);
	ipcx_sub *s = sub_open(url, "k");
	if (!ring)
		cr_assert_eq(ipcx_pub_wait(p, 1, T_GUARD_MS), 0);
	int fd = ipcx_sub_fileno(s);
	cr_assert_geq(fd, 0);
	char buf[16];
	while (ipcx_sub_recv(s, NULL, 0, buf, sizeof(buf), 0) != -EAGAIN)
		; /* whatever a connection's arrival left readable */
	poll_expect(fd, 0, 0);
	pub(p, "k", "a");
	pub(p, "k", "b");
	poll_expect(fd, 1, T_GUARD_MS);
	expect(s, "k", "a");
	poll_expect(fd, 1, ring ? 0 : T_GUARD_MS);
	expect(s, "k", "b");
	if (ring) {
		pub(p, "other", "c"); /* not its topic: readable, then -EAGAIN clears it */
		poll_expect(fd, 1, T_GUARD_MS);
		expect_none(s);
		poll_expect(fd, 0, 0);
	}
	ipcx_pub_close(p);
	ipcx_sub_close(s);
}

Test(pubsub, ring_descriptor_level_triggered)
{
	level_triggered(ring_url(""), true);
}

Test(pubsub, socket_descriptor_level_triggered)
{
	level_triggered(sock_url(""), false);
}

/* ---- batches: what is left, timeouts, sizes --------------------------------------------- */

static struct ipcx_sub_msg entry(char *t, size_t tcap, char *buf, size_t cap)
{
	return (struct ipcx_sub_msg){ .topic = t, .tcap = tcap, .buf = buf, .cap = cap };
}

/* Entry i of a batch holds topic and payload msg. */
static void expect_entry(const struct ipcx_sub_msg *m, const char *topic, const char *msg)
{
	cr_expect_str_eq(m->topic, topic);
	cr_expect_eq(m->len, strlen(msg));
	cr_expect_eq(memcmp(m->buf, msg, strlen(msg)), 0, "%s", msg);
}

static void batch_semantics(const char *url, bool ring)
{
	ipcx_pub *p = pub_open(url);
	ipcx_sub *s = sub_open(url, "k");
	if (!ring)
		cr_assert_eq(ipcx_pub_wait(p, 1, T_GUARD_MS), 0);
	char t[8][IPCX_TOPIC_MAX + 1], buf[8][64];
	struct ipcx_sub_msg m[8];
	for (int i = 0; i < 8; i++)
		m[i] = entry(t[i], sizeof(t[i]), buf[i], sizeof(buf[i]));
	while (ipcx_sub_recvv(s, m, 8, 0) != -EAGAIN)
		; /* whatever a connection's arrival left readable */
	cr_expect_eq(ipcx_sub_recvv(s, m, 8, 30), -ETIMEDOUT);
	cr_expect_eq(ipcx_sub_recvv(s, m, 0, 0), 0);
	cr_expect_eq(ipcx_sub_recvv(s, NULL, 1, 0), -EINVAL);
	int fd = ipcx_sub_fileno(s);
	cr_assert_geq(fd, 0);
	pub(p, "k1", "a");
	pub(p, "other", "x"); /* not kept: takes no entry */
	pub(p, "k2", "b");
	pub(p, "k3", "c");
	pub(p, "k4", "d");
	pub(p, "k5", "e");
	poll_expect(fd, 1, T_GUARD_MS);
	/* A batch smaller than what waits: the rest stays, and says so. */
	ssize_t n;
	size_t want = 2, have = 0;
	while (have < want) { /* over a socket they may come apart */
		n = ipcx_sub_recvv(s, m + have, want - have, T_GUARD_MS);
		cr_assert_gt(n, 0, "%zd %s", n, ipcx_errdetail());
		have += (size_t)n;
	}
	if (ring)
		cr_expect_eq(ipcx_sub_recvv(s, m, 0, 0), 0); /* (n = 0 reads nothing) */
	expect_entry(&m[0], "k1", "a");
	expect_entry(&m[1], "k2", "b");
	poll_expect(fd, 1, ring ? 0 : T_GUARD_MS);
	/* A topic cut to its buffer, as ipcx_sub_recv does. */
	m[0].tcap = 2;
	want = 3, have = 0;
	while (have < want) {
		n = ipcx_sub_recvv(s, m + have, 8 - have, T_GUARD_MS);
		cr_assert_gt(n, 0, "%zd %s", n, ipcx_errdetail());
		have += (size_t)n;
	}
	cr_expect_eq(have, 3);
	cr_expect_str_eq(m[0].topic, "k");
	expect_entry(&m[1], "k4", "d");
	expect_entry(&m[2], "k5", "e");
	m[0].tcap = sizeof(t[0]);
	cr_expect_eq(ipcx_sub_recvv(s, m, 8, 0), -EAGAIN);
	/* Too large for its entry: the first is -EMSGSIZE and stays; a later one ends the batch. */
	pub(p, "k6", "0123456789");
	m[0].cap = 4;
	poll_expect(fd, 1, T_GUARD_MS);
	cr_expect_eq(ipcx_sub_recvv(s, m, 8, T_GUARD_MS), -EMSGSIZE, "k6 stays");
	m[0].cap = sizeof(buf[0]);
	m[1].cap = 4;
	pub(p, "k7", "0123456789");
	cr_expect_eq(ipcx_sub_recvv(s, m, 8, T_GUARD_MS), 1, "k6; k7 ends the batch");
	expect_entry(&m[0], "k6", "0123456789");
	cr_expect_eq(ipcx_sub_recvv(s, m + 1, 1, T_GUARD_MS), -EMSGSIZE, "k7 stays");
	m[1].cap = sizeof(buf[1]);
	cr_expect_eq(ipcx_sub_recvv(s, m + 1, 7, T_GUARD_MS), 1);
	expect_entry(&m[1], "k7", "0123456789");
	struct ipcx_pubsub_stats st;
	cr_assert_eq(ipcx_sub_stats(s, &st), 0);
	cr_expect_eq(st.received, 7);
	cr_expect_eq(st.lost, 0);
	cr_expect_eq(st.lag, 0);
	cr_expect_eq(st.received + st.filtered, st.published);
	ipcx_pub_close(p);
	ipcx_sub_close(s);
}

Test(pubsub, ring_batch_what_is_left_timeouts_sizes)
{
	batch_semantics(ring_url(""), true);
}

Test(pubsub, socket_batch_what_is_left_timeouts_sizes)
{
	batch_semantics(sock_url(""), false);
}

/* ---- block: everyone gets everything ------------------------------------------------------- */

#define NMSG 3000

struct reader {
	char url[256];
	const char *prefix;
	struct t_sync open, ready, go, done;
	bool wait_go;
	int stop_after; /* messages it then reports; the test reads its counters */
	size_t batch;   /* >0: reads with ipcx_sub_recvv, this many entries a call */
	int count;      /* numbered messages published (0: NMSG) */
};

/*
 * Subscribers are forked before the publisher opens, and open when told:
 * a socket publisher runs threads (an acceptor, one per subscriber), and a
 * child forked while one of them held a lock of the allocator inherits it
 * held (seen under ASan: a reader hung in its first malloc, and the
 * publisher waited for it until the test's guard ran out).
 */
static pid_t spawn_sub(int (*fn)(void *arg), struct reader *a)
{
	t_sync_init(&a->open);
	t_sync_init(&a->ready);
	return t_spawn(fn, a);
}

/* Up to BATCH messages with their topics, by ipcx_sub_recvv or by one ipcx_sub_recv. */
#define BATCH 16
struct batch {
	struct ipcx_sub_msg m[BATCH];
	char t[BATCH][IPCX_TOPIC_MAX + 1], buf[BATCH][2048];
};

static ssize_t batch_recv(ipcx_sub *s, struct batch *b, size_t n, bool batched)
{
	for (size_t i = 0; i < n; i++)
		b->m[i] = (struct ipcx_sub_msg){ .topic = b->t[i], .tcap = sizeof(b->t[i]),
						 .buf = b->buf[i], .cap = sizeof(b->buf[i]) };
	if (batched)
		return ipcx_sub_recvv(s, b->m, n, T_GUARD_MS);
	ssize_t r = ipcx_sub_recv(s, b->t[0], sizeof(b->t[0]), b->buf[0], sizeof(b->buf[0]),
				  T_GUARD_MS);
	if (r < 0)
		return r;
	b->m[0].len = (size_t)r;
	return 1;
}

/* Reads until "stop"; every message in order, none twice. */
static int reader(void *arg)
{
	struct reader *a = arg;
	ipcx_sub *s;
	const char *pre[1] = { a->prefix };
	if (!t_wait_post(&a->open, T_GUARD_MS))
		return 8;
	if (ipcx_sub_open(a->url, pre, a->prefix ? 1 : 0, 0, &s) < 0)
		return 1;
	t_post(&a->ready);
	if (a->wait_go && !t_wait_post(&a->go, T_GUARD_MS))
		return 2;
	long next = 0, got = 0;
	for (bool stop = false; !stop;) {
		struct batch b;
		ssize_t k = batch_recv(s, &b, a->batch ? a->batch : 1, a->batch > 0);
		if (k < 0)
			return 3;
		for (ssize_t i = 0; i < k && !stop; i++) {
			const char *t = b.t[i];
			if (!strcmp(t, "stop")) {
				stop = true;
				if (i + 1 != k)
					return 9; /* nothing comes after the stop */
				break;
			}
			if (!strcmp(t, "mark")) {
				t_post(&a->done);
				continue;
			}
			size_t n = b.m[i].len;
			b.buf[i][n < 2047 ? n : 2047] = 0;
			long seq = strtol(b.buf[i], NULL, 10);
			if (seq < next)
				return 4; /* out of order, or twice */
			next = seq + 1;
			got++;
		}
	}
	struct ipcx_pubsub_stats st;
	if (ipcx_sub_stats(s, &st) < 0)
		return 5;
	ipcx_sub_close(s);
	/*
	 * Exit status 0: received + lost account for every message published
	 * (the numbered ones, the marks, the stop), and without loss every
	 * numbered one came.
	 */
	long count = a->count ? a->count : NMSG, total = count + a->stop_after + 1;
	if ((long)(st.received + st.lost) != total || st.lag != 0)
		return 6;
	return st.lost == 0 && got != count ? 7 : 0;
}

static void publish_numbered(ipcx_pub *p, int from, int to, size_t size, int timeout_ms)
{
	char buf[2048];
	memset(buf, 'x', sizeof(buf));
	for (int i = from; i < to; i++) {
		int n = snprintf(buf, sizeof(buf), "%d", i);
		buf[n] = ' ';
		cr_assert_eq(ipcx_pub_send(p, "n", buf, size, timeout_ms), (ssize_t)size, "%d: %s", i,
			     ipcx_errdetail());
	}
}

static void block_everyone(const char *url, bool ring, size_t batch)
{
	struct reader r[3];
	pid_t pid[3];
	for (int i = 0; i < 3; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		snprintf(r[i].url, sizeof(r[i].url), "%s", url);
		r[i].batch = batch ? batch + (size_t)i * 3 : 0; /* batches of 4, 7 and 10 */
		pid[i] = spawn_sub(reader, &r[i]);
	}
	ipcx_pub *p = pub_open(url);
	for (int i = 0; i < 3; i++) {
		t_post(&r[i].open);
		cr_assert(t_wait_post(&r[i].ready, T_GUARD_MS));
	}
	if (!ring)
		cr_assert_eq(ipcx_pub_wait(p, 3, T_GUARD_MS), 0);
	publish_numbered(p, 0, NMSG, 600, T_GUARD_MS);
	cr_assert_eq(ipcx_pub_send(p, "stop", "", 0, T_GUARD_MS), 0);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(t_join(pid[i], T_GUARD_MS), 0, "reader %d: everything, in order", i);
	struct ipcx_pubsub_stats st;
	cr_assert_eq(ipcx_pub_stats(p, &st), 0);
	cr_expect_eq(st.lost, 0);
	ipcx_pub_close(p);
}

Test(pubsub, ring_block_everyone_gets_everything)
{
	block_everyone(ring_url("?capacity=65536&max=1024"), true, 0);
}

Test(pubsub, ring_batch_everyone_gets_everything)
{
	block_everyone(ring_url("?capacity=65536&max=1024"), true, 4);
}

Test(pubsub, socket_block_everyone_gets_everything)
{
	block_everyone(sock_url("?queue=8"), false, 0);
}

Test(pubsub, socket_batch_everyone_gets_everything)
{
	block_everyone(sock_url("?queue=8"), false, 4);
}

/* ---- drop: a stuck subscriber stalls nobody, and counts exactly -------------------------------- */

static void drop_stuck(const char *url, bool ring, size_t batch)
{
	struct reader fast = { 0 }, stuck = { 0 };
	snprintf(fast.url, sizeof(fast.url), "%s", url);
	snprintf(stuck.url, sizeof(stuck.url), "%s", url);
	fast.batch = stuck.batch = batch;
	stuck.wait_go = true;
	fast.stop_after = stuck.stop_after = 10; /* the marks */
	t_sync_init(&fast.done);
	t_sync_init(&stuck.go);
	t_sync_init(&stuck.done);
	pid_t pf = spawn_sub(reader, &fast);
	pid_t ps = spawn_sub(reader, &stuck);
	ipcx_pub *p = pub_open(url);
	t_post(&fast.open);
	t_post(&stuck.open);
	cr_assert(t_wait_post(&fast.ready, T_GUARD_MS));
	cr_assert(t_wait_post(&stuck.ready, T_GUARD_MS));
	if (!ring)
		cr_assert_eq(ipcx_pub_wait(p, 2, T_GUARD_MS), 0);
	/*
	 * Ten rounds; after each, the fast one says it got the round's mark.
	 * The stuck one reads nothing meanwhile: publishing never waits for it
	 * (timeout 0), and the fast one is never held up by it.
	 */
	for (int round = 0; round < 10; round++) {
		publish_numbered(p, round * NMSG / 10, (round + 1) * NMSG / 10, 1000, 0);
		cr_assert_eq(ipcx_pub_send(p, "mark", "", 0, 0), 0);
		cr_assert(t_wait_post(&fast.done, T_GUARD_MS), "the fast one got round %d", round);
	}
	struct ipcx_subscriber subs[4];
	ssize_t n = ipcx_pub_subscribers(p, subs, 4);
	cr_assert_eq(n, 2);
	cr_expect_gt(subs[0].lost + subs[1].lost + subs[0].lag + subs[1].lag, 0,
		     "the stuck one is behind");
	t_post(&stuck.go);
	if (!ring) {
		/* Let its queue drain before the last word, which must not be dropped. */
		for (int i = 0; i < T_GUARD_MS; i++) {
			n = ipcx_pub_subscribers(p, subs, 4);
			if (n == 2 && subs[0].lag == 0 && subs[1].lag == 0)
				break;
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		}
	}
	cr_assert_eq(ipcx_pub_send(p, "stop", "", 0, 0), 0);
	cr_expect_eq(t_join(pf, T_GUARD_MS), 0, "fast: received + lost = published");
	cr_expect_eq(t_join(ps, T_GUARD_MS), 0, "stuck: received + lost = published");
	ipcx_pub_close(p);
}

Test(pubsub, ring_drop_stuck_subscriber)
{
	/* 64 KiB: a round of 300 messages of 1 KiB laps it. */
	drop_stuck(ring_url("?capacity=65536&max=2048&policy=drop"), true, 0);
}

Test(pubsub, ring_batch_drop_stuck_subscriber)
{
	drop_stuck(ring_url("?capacity=65536&max=2048&policy=drop"), true, BATCH);
}

Test(pubsub, socket_drop_stuck_subscriber)
{
	drop_stuck(sock_url("?queue=512&policy=drop"), false, 0);
}

Test(pubsub, socket_batch_drop_stuck_subscriber)
{
	drop_stuck(sock_url("?queue=512&policy=drop"), false, BATCH);
}

/* ---- block: a killed subscriber releases the publisher ------------------------------------ */

static int stuck_sub(void *arg)
{
	struct reader *a = arg;
	ipcx_sub *s;
	if (!t_wait_post(&a->open, T_GUARD_MS))
		return 8;
	if (ipcx_sub_open(a->url, NULL, 0, 0, &s) < 0)
		return 1;
	t_post(&a->ready);
	pause();
	return 0;
}

static void killed_releases(const char *url, bool ring)
{
	struct reader stuck = { 0 };
	snprintf(stuck.url, sizeof(stuck.url), "%s", url);
	pid_t pid = spawn_sub(stuck_sub, &stuck);
	ipcx_pub *p = pub_open(url);
	t_post(&stuck.open);
	cr_assert(t_wait_post(&stuck.ready, T_GUARD_MS));
	if (!ring)
		cr_assert_eq(ipcx_pub_wait(p, 1, T_GUARD_MS), 0);
	char buf[1000] = { 0 };
	ssize_t r;
	int sent = 0;
	/* Fill it: its queue (and socket) or the ring, until the publisher must wait. */
	while ((r = ipcx_pub_send(p, "t", buf, sizeof(buf), sent < 10 ? T_GUARD_MS : 100)) > 0)
		cr_assert_lt(++sent, 1000000);
	cr_assert(r == -ETIMEDOUT || r == -EAGAIN, "blocked: %zd", r);
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_pub_send(p, "t", buf, sizeof(buf), T_GUARD_MS), (ssize_t)sizeof(buf),
		     "released: %s", ipcx_errdetail());
	struct ipcx_pubsub_stats st;
	cr_assert_eq(ipcx_pub_stats(p, &st), 0);
	cr_expect_eq(st.subscribers, 0);
	ipcx_pub_close(p);
}

Test(pubsub, ring_killed_subscriber_releases_the_publisher)
{
	killed_releases(ring_url("?capacity=65536&max=2048"), true);
}

Test(pubsub, socket_killed_subscriber_releases_the_publisher)
{
	killed_releases(sock_url("?queue=4"), false);
}

/*
 * Killed while it holds a batch in place (ipcx_peekv, what ipcx_sub_recvv
 * does on a ring, between its peek and its release): its cursor holds the
 * ring until a waiting publisher finds it dead.
 */
static int batch_holder(void *arg)
{
	struct reader *a = arg;
	ipcx_chan *c;
	char u[300];
	snprintf(u, sizeof(u), "%s?fanout=1&sub=1", a->url);
	if (!t_wait_post(&a->open, T_GUARD_MS))
		return 8;
	if (ipcx_dial(u, 0, &c) < 0)
		return 1;
	struct ipcx_msg v[8];
	t_post(&a->ready);
	if (ipcx_peekv(c, v, 8, T_GUARD_MS) < 1)
		return 2;
	t_post(&a->done);
	pause();
	return 0;
}

Test(pubsub, ring_killed_mid_batch_releases_the_publisher)
{
	struct reader h = { 0 };
	snprintf(h.url, sizeof(h.url), "shm:/%s", t_name());
	t_sync_init(&h.done);
	char url[300];
	snprintf(url, sizeof(url), "%s?capacity=65536&max=2048", h.url);
	pid_t pid = spawn_sub(batch_holder, &h);
	ipcx_pub *p = pub_open(url);
	t_post(&h.open);
	cr_assert(t_wait_post(&h.ready, T_GUARD_MS));
	char buf[1000] = { 0 };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ipcx_pub_send(p, "t", buf, sizeof(buf), T_GUARD_MS), (ssize_t)sizeof(buf));
	cr_assert(t_wait_post(&h.done, T_GUARD_MS), "it holds a batch");
	ssize_t r;
	int sent = 4;
	while ((r = ipcx_pub_send(p, "t", buf, sizeof(buf), 100)) > 0)
		cr_assert_lt(++sent, 1000000);
	cr_assert(r == -ETIMEDOUT, "blocked by the held batch: %zd", r);
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_pub_send(p, "t", buf, sizeof(buf), T_GUARD_MS), (ssize_t)sizeof(buf),
		     "released: %s", ipcx_errdetail());
	struct ipcx_pubsub_stats st;
	cr_assert_eq(ipcx_pub_stats(p, &st), 0);
	cr_expect_eq(st.subscribers, 0);
	ipcx_pub_close(p);
}

/* ---- sockets: what batching the publisher's queues could break ------------------------------ */

/*
 * NBIG frames of BIG bytes (900 KB) are several times a Unix socket's
 * buffer (200 KB by default), and less than what policy=block lets wait
 * for a subscriber's next batch (1 MiB): they pile up at the publisher
 * without blocking it and go out in batches that stop part-way when the
 * socket is full.
 */
#define BIG  1500
#define NBIG 600

static ssize_t total_lag(ipcx_pub *p, size_t n)
{
	struct ipcx_subscriber subs[4];
	ssize_t k = ipcx_pub_subscribers(p, subs, 4);
	cr_assert_eq(k, (ssize_t)n);
	ssize_t lag = 0;
	for (ssize_t i = 0; i < k; i++)
		lag += (ssize_t)subs[i].lag;
	return lag;
}

/* One reader forked, the publisher opened, the reader dialled in. */
static ipcx_pub *one_reader(const char *url, struct reader *r, pid_t *pid, int (*fn)(void *))
{
	snprintf(r->url, sizeof(r->url), "%s", url);
	t_sync_init(&r->go);
	*pid = spawn_sub(fn, r);
	ipcx_pub *p = pub_open(url);
	t_post(&r->open);
	cr_assert(t_wait_post(&r->ready, T_GUARD_MS));
	cr_assert_eq(ipcx_pub_wait(p, 1, T_GUARD_MS), 0);
	return p;
}

Test(pubsub, socket_batch_larger_than_the_socket_buffer)
{
	struct reader r = { .wait_go = true, .count = NBIG };
	pid_t pid;
	ipcx_pub *p = one_reader(sock_url("?queue=4096&max=4096"), &r, &pid, reader);
	/* It reads nothing yet: everything queues (block never waits: the queue holds it all). */
	publish_numbered(p, 0, NBIG, BIG, T_GUARD_MS);
	cr_assert_eq(ipcx_pub_send(p, "stop", "", 0, T_GUARD_MS), 0);
	cr_expect_gt(total_lag(p, 1), 0, "the socket is full and frames wait at the publisher");
	t_post(&r.go);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0, "every frame, in order, none lost");
	struct ipcx_pubsub_stats st;
	cr_assert_eq(ipcx_pub_stats(p, &st), 0);
	cr_expect_eq(st.lost, 0);
	cr_expect_eq(ipcx_pub_close(p), 0);
}

Test(pubsub, socket_drop_burst_counts_exactly)
{
	struct reader r = { .wait_go = true };
	pid_t pid;
	ipcx_pub *p = one_reader(sock_url("?queue=16&max=4096&policy=drop"), &r, &pid, reader);
	/* A burst while it reads nothing: most of it dropped, part in flight when the socket filled. */
	publish_numbered(p, 0, NMSG, BIG, 0);
	struct ipcx_subscriber sub;
	cr_assert_eq(ipcx_pub_subscribers(p, &sub, 1), 1);
	cr_expect_gt(sub.lost, 0, "a queue of 16 cannot hold the burst");
	cr_expect_eq(sub.received + sub.lost + sub.lag, NMSG, "the publisher accounts for each");
	t_post(&r.go);
	/* Its queue drains before the last word, which must not be dropped. */
	for (int i = 0; total_lag(p, 1) != 0; i++) {
		cr_assert_lt(i, T_GUARD_MS, "the queue never drained");
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	cr_assert_eq(ipcx_pub_subscribers(p, &sub, 1), 1);
	cr_expect_eq(sub.received + sub.lost, NMSG, "the publisher's count, drained");
	cr_assert_eq(ipcx_pub_send(p, "stop", "", 0, 0), 0);
	/* Its own count (the lost carried in the frames it got) agrees, exactly. */
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0, "received + lost = published, exactly");
	ipcx_pub_close(p);
}

Test(pubsub, socket_subscriber_killed_mid_batch)
{
	const char *url = sock_url("?queue=4096&max=4096");
	struct reader stuck = { 0 }, healthy = { .count = NBIG };
	snprintf(stuck.url, sizeof(stuck.url), "%s", url);
	snprintf(healthy.url, sizeof(healthy.url), "%s", url);
	pid_t ps = spawn_sub(stuck_sub, &stuck);
	pid_t ph = spawn_sub(reader, &healthy);
	ipcx_pub *p = pub_open(url);
	t_post(&stuck.open);
	t_post(&healthy.open);
	cr_assert(t_wait_post(&stuck.ready, T_GUARD_MS));
	cr_assert(t_wait_post(&healthy.ready, T_GUARD_MS));
	cr_assert_eq(ipcx_pub_wait(p, 2, T_GUARD_MS), 0);
	publish_numbered(p, 0, NBIG, BIG, T_GUARD_MS);
	/* The stuck one's socket is full: its thread is inside a batch that cannot finish. */
	cr_expect_gt(total_lag(p, 2), 0);
	kill(ps, SIGKILL);
	cr_expect_eq(t_join(ps, T_GUARD_MS), 128 + SIGKILL);
	/* Its thread sees the failure, counts what never went, and leaves. */
	struct ipcx_pubsub_stats st;
	for (int i = 0;; i++) {
		cr_assert_eq(ipcx_pub_stats(p, &st), 0);
		if (st.subscribers == 1)
			break;
		cr_assert_lt(i, T_GUARD_MS, "the killed subscriber was never released");
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	cr_expect_gt(st.lost, 0, "what it never took is lost");
	cr_expect_leq(st.lost, NBIG);
	/* The other one got everything, in order, and is not held up. */
	cr_assert_eq(ipcx_pub_send(p, "stop", "", 0, T_GUARD_MS), 0);
	cr_expect_eq(t_join(ph, T_GUARD_MS), 0, "the healthy one: everything, in order");
	cr_expect_eq(ipcx_pub_close(p), 0);
}

Test(pubsub, socket_close_lingers_until_everything_queued_is_sent)
{
	struct reader r = { .wait_go = true, .count = NBIG };
	pid_t pid;
	ipcx_pub *p = one_reader(sock_url("?queue=4096&max=4096&linger=60000"), &r, &pid, reader);
	publish_numbered(p, 0, NBIG, BIG, T_GUARD_MS);
	cr_assert_eq(ipcx_pub_send(p, "stop", "", 0, T_GUARD_MS), 0);
	cr_expect_gt(total_lag(p, 1), 0, "most of it still queued at the publisher");
	t_post(&r.go);
	/* Close returns once the queue is sent, and the reader has it all. */
	cr_expect_eq(ipcx_pub_close(p), 0);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0, "everything queued before the close, in order");
}
