/*
 * The broadcast ring (fanout=1): every subscriber gets every message, in
 * the ring's one order, in block mode with several publishers and
 * subscribers; in drop mode received + lost = published exactly for a
 * subscriber that falls behind; a subscriber killed with SIGKILL releases
 * a blocked publisher; history for a late joiner; zero-copy reads; a
 * scribbled segment gives -EBADMSG; the last peer out removes the name.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/ring.h"
#include "tsupport.h"

#define NPUB 3
#define PER_PUB 20000

struct msg {
	uint32_t pub, seq, len, sum;
	uint8_t fill[300];
};

static uint32_t fill_sum(const struct msg *m)
{
	uint32_t s = m->pub * 131u + m->seq;
	for (uint32_t i = 0; i < m->len; i++)
		s = s * 31u + m->fill[i];
	return s;
}

static size_t make_msg(struct msg *m, uint32_t pub, uint32_t seq)
{
	m->pub = pub;
	m->seq = seq;
	m->len = (seq * 37u + pub * 11u) % sizeof(m->fill);
	for (uint32_t i = 0; i < m->len; i++)
		m->fill[i] = (uint8_t)(seq + i);
	m->sum = fill_sum(m);
	return offsetof(struct msg, fill) + m->len;
}

static bool msg_ok(const struct msg *m, ssize_t n)
{
	return n >= (ssize_t)offsetof(struct msg, fill) && m->len <= sizeof(m->fill) &&
	       (size_t)n == offsetof(struct msg, fill) + m->len && m->sum == fill_sum(m) &&
	       m->pub < NPUB + 1;
}

/* What the children report, in memory shared before fork. */
struct board {
	_Atomic uint64_t received[8], lost[8], published[8], order_hash[8];
	_Atomic uint32_t bad[8];
};

static struct board *board_new(void)
{
	void *m = mmap(NULL, sizeof(struct board), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	return m;
}

struct role {
	char url[256];
	struct board *b;
	uint32_t id, n;
	struct t_sync ready, go;
	bool slow;
};

static int publisher(void *arg)
{
	struct role *a = arg;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 1;
	struct msg m;
	if (!t_wait_post(&a->go, T_GUARD_MS))
		return 2;
	for (uint32_t i = 0; i < a->n; i++) {
		size_t len = make_msg(&m, a->id, i);
		if (ipcx_send(c, &m, len, T_GUARD_MS) != (ssize_t)len)
			return 3;
	}
	ipcx_close(c);
	return 0;
}

/*
 * Reads until the stop message (pub NPUB).  Checks that each publisher's
 * messages come in order; with no loss, without a gap.  Hashes the order of
 * everything it got: every subscriber must see the ring's one order.
 */
static int subscriber(void *arg)
{
	struct role *a = arg;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 1;
	t_post(&a->ready);
	uint32_t next[NPUB] = { 0 };
	uint64_t hash = 1469598103934665603ull, got = 0;
	struct msg m;
	for (;;) {
		ssize_t n = ipcx_recv(c, &m, sizeof(m), T_GUARD_MS);
		if (n < 0)
			return 2;
		if (!msg_ok(&m, n)) {
			atomic_fetch_add(&a->b->bad[a->id], 1);
			continue;
		}
		if (m.pub == NPUB)
			break;
		if (m.seq < next[m.pub])
			atomic_fetch_add(&a->b->bad[a->id], 1); /* out of order, or twice */
		next[m.pub] = m.seq + 1;
		got++;
		hash = (hash ^ (m.pub << 24 | m.seq)) * 1099511628211ull;
		if (a->slow && got % 64 == 0)
			sched_yield();
	}
	struct ipcx_stats st;
	if (ipcx_stats(c, &st) < 0)
		return 3;
	atomic_store(&a->b->received[a->id], st.received - 1); /* less the stop message */
	atomic_store(&a->b->lost[a->id], st.dropped);
	atomic_store(&a->b->published[a->id], st.sent);
	atomic_store(&a->b->order_hash[a->id], hash);
	if (got != st.received - 1)
		return 4;
	ipcx_close(c);
	return 0;
}

static void send_stop(const char *url)
{
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(url, 0, &c), 0);
	struct msg m;
	size_t len = make_msg(&m, NPUB, 0);
	cr_assert_eq(ipcx_send(c, &m, len, T_GUARD_MS), (ssize_t)len);
	ipcx_close(c);
}

/* nsub subscribers, NPUB publishers, PER_PUB messages each; returns the board. */
static struct board *fan(const char *opts, int nsub, bool slow_first)
{
	struct board *b = board_new();
	struct role *r = calloc(NPUB + nsub, sizeof(*r));
	char url[256];
	snprintf(url, sizeof(url), "shm:/%s?fanout=1&sub=1%s", t_name(), opts);
	ipcx_chan *l;
	/* The listener subscribes too (sub=1) but never reads: it must not hold anyone back. */
	char lurl[256];
	snprintf(lurl, sizeof(lurl), "%s", url);
	char *q = strstr(lurl, "&sub=1");
	memmove(q, q + 6, strlen(q + 6) + 1);
	cr_assert_eq(ipcx_listen(lurl, 0, &l), 0, "%s", ipcx_errdetail());
	pid_t pids[16];
	for (int i = 0; i < nsub; i++) {
		struct role *a = &r[NPUB + i];
		snprintf(a->url, sizeof(a->url), "%s", url);
		a->b = b;
		a->id = (uint32_t)i;
		a->slow = slow_first && i == 0;
		t_sync_init(&a->ready);
		pids[NPUB + i] = t_spawn(subscriber, a);
		cr_assert(t_wait_post(&a->ready, T_GUARD_MS), "subscriber %d started", i);
	}
	for (int i = 0; i < NPUB; i++) {
		struct role *a = &r[i];
		snprintf(a->url, sizeof(a->url), "%s", lurl);
		a->id = (uint32_t)i;
		a->n = PER_PUB;
		t_sync_init(&a->go);
		pids[i] = t_spawn(publisher, a);
	}
	for (int i = 0; i < NPUB; i++)
		t_post(&r[i].go);
	for (int i = 0; i < NPUB; i++)
		cr_assert_eq(t_join(pids[i], T_GUARD_MS), 0, "publisher %d", i);
	send_stop(lurl);
	for (int i = 0; i < nsub; i++)
		cr_assert_eq(t_join(pids[NPUB + i], T_GUARD_MS), 0, "subscriber %d", i);
	ipcx_close(l);
	free(r);
	return b;
}

Test(bcast, block_every_subscriber_every_message)
{
	/* A small ring: the publishers wait for the slowest of three subscribers. */
	struct board *b = fan("&capacity=16384&max=512", 3, true);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(atomic_load(&b->bad[i]), 0, "subscriber %d: bad or out of order", i);
		cr_expect_eq(atomic_load(&b->received[i]), (uint64_t)NPUB * PER_PUB,
			     "subscriber %d got every message", i);
		cr_expect_eq(atomic_load(&b->lost[i]), 0);
		cr_expect_eq(atomic_load(&b->order_hash[i]), atomic_load(&b->order_hash[0]),
			     "one order for everyone");
	}
	cr_expect_eq(atomic_load(&b->published[0]), (uint64_t)NPUB * PER_PUB + 1);
}

Test(bcast, drop_received_plus_lost_is_published)
{
	/* Overwrite freely; the first subscriber yields often, so it is lapped. */
	struct board *b = fan("&capacity=4096&max=512&policy=drop", 2, true);
	for (int i = 0; i < 2; i++) {
		uint64_t rx = atomic_load(&b->received[i]), lost = atomic_load(&b->lost[i]);
		cr_expect_eq(atomic_load(&b->bad[i]), 0, "subscriber %d: torn or out of order", i);
		/* The stop message is received, and counted published. */
		cr_log_info("drop: subscriber %d received %lu lost %lu", i, (unsigned long)rx, (unsigned long)lost);
		cr_expect_eq(rx + lost + 1, atomic_load(&b->published[i]),
			     "subscriber %d: %lu + %lu + 1 != %lu", i, (unsigned long)rx,
			     (unsigned long)lost, (unsigned long)atomic_load(&b->published[i]));
	}
}

/* ---- one process, by hand ---------------------------------------------------------- */

static ipcx_chan *open_ring(const char *name, const char *opts, bool listen)
{
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s?fanout=1%s", name, opts);
	ipcx_chan *c = NULL;
	int r = listen ? ipcx_listen(u, 0, &c) : ipcx_dial(u, 0, &c);
	cr_assert_eq(r, 0, "%s: %s", u, ipcx_errdetail());
	return c;
}

static void expect_msg(ipcx_chan *c, const char *want)
{
	char buf[256];
	ssize_t n = ipcx_recv(c, buf, sizeof(buf), 0);
	cr_assert_eq(n, (ssize_t)strlen(want), "recv %s: %zd %s", want, n, ipcx_errdetail());
	cr_expect_eq(memcmp(buf, want, (size_t)n), 0);
}

static void publish(ipcx_chan *c, int from, int to)
{
	char buf[32];
	for (int i = from; i < to; i++) {
		int n = snprintf(buf, sizeof(buf), "m%d", i);
		cr_assert_eq(ipcx_send(c, buf, (size_t)n, 0), n, "send m%d: %s", i, ipcx_errdetail());
	}
}

Test(bcast, every_subscriber_reads_from_its_own_cursor)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "", true);
	ipcx_chan *a = open_ring(name, "&sub=1", false), *b = open_ring(name, "&sub=1", false);
	publish(p, 0, 3);
	expect_msg(a, "m0");
	expect_msg(a, "m1");
	expect_msg(b, "m0");
	publish(p, 3, 4);
	expect_msg(a, "m2");
	expect_msg(a, "m3");
	expect_msg(b, "m1");
	char buf[8];
	cr_expect_eq(ipcx_recv(a, buf, sizeof(buf), 0), -EAGAIN);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(b, &st), 0);
	cr_expect_eq(st.sent, 4);
	cr_expect_eq(st.received, 2);
	cr_expect_eq(st.depth, 2, "b lags by two");
	struct ipcx_subscriber subs[4];
	cr_expect_eq(ipcx_subscribers(p, subs, 4), 2);
	cr_expect_eq(subs[0].pid, getpid());
	/* A subscriber's buffer too small: -EMSGSIZE, the message stays. */
	cr_expect_eq(ipcx_recv(b, buf, 1, 0), -EMSGSIZE);
	expect_msg(b, "m2");
	ipcx_close(a);
	ipcx_close(b);
	ipcx_close(p);
}

Test(bcast, history_for_a_late_joiner)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "", true);
	publish(p, 0, 10);
	ipcx_chan *late = open_ring(name, "&history=3", false);
	expect_msg(late, "m7");
	expect_msg(late, "m8");
	expect_msg(late, "m9");
	ipcx_chan *all = open_ring(name, "&history=1000", false);
	expect_msg(all, "m0");
	ipcx_chan *none = open_ring(name, "&sub=1", false);
	publish(p, 10, 11);
	expect_msg(none, "m10");
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(late, &st), 0);
	cr_expect_eq(st.depth, 1, "late lags by m10");
	ipcx_close(late);
	ipcx_close(all);
	ipcx_close(none);
	ipcx_close(p);
}

Test(bcast, drop_laps_a_subscriber_and_counts_exactly)
{
	const char *name = t_name();
	/* 256 cells of 64 bytes; each message takes one. */
	ipcx_chan *p = open_ring(name, "&capacity=16384&max=64&policy=drop", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	publish(p, 0, 1000); /* the subscriber has read nothing: lapped several times */
	char buf[64];
	ssize_t n = ipcx_recv(s, buf, sizeof(buf), 0);
	cr_assert_gt(n, 0);
	int first = atoi(buf + 1);
	cr_expect_gt(first, 700, "it skipped to the oldest still there (m%d)", first);
	int got = 1, last = first;
	while ((n = ipcx_recv(s, buf, sizeof(buf), 0)) > 0) {
		buf[n] = 0;
		cr_expect_eq(atoi(buf + 1), last + 1, "in order after the jump");
		last = atoi(buf + 1);
		got++;
	}
	cr_expect_eq(n, -EAGAIN);
	cr_expect_eq(last, 999);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(s, &st), 0);
	cr_expect_eq(st.received, (uint64_t)got);
	cr_expect_eq(st.dropped, (uint64_t)first, "lost exactly m0 .. m%d", first - 1);
	cr_expect_eq(st.received + st.dropped, st.sent);
	cr_expect_eq(st.depth, 0);
	ipcx_close(s);
	ipcx_close(p);
}

Test(bcast, peek_in_place_and_stale_in_drop_mode)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "&capacity=16384&max=64&policy=drop", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	publish(p, 0, 2);
	const void *m;
	cr_assert_eq(ipcx_peek(s, 0, &m), 2);
	cr_expect_eq(memcmp(m, "m0", 2), 0);
	cr_expect_eq(ipcx_release(s), 0);
	cr_assert_eq(ipcx_peek(s, 0, &m), 2);
	cr_expect_eq(memcmp(m, "m1", 2), 0);
	publish(p, 2, 600); /* overwrites what is held */
	cr_expect_eq(ipcx_release(s), -ESTALE);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(s, &st), 0);
	cr_expect_eq(st.received, 1);
	cr_expect_eq(st.received + st.dropped + st.depth, 600);
	/* Zero-copy write. */
	void *slot;
	cr_assert_eq(ipcx_reserve(p, 5, 0, &slot), 0);
	memcpy(slot, "hello", 5);
	cr_assert_eq(ipcx_commit(p, 5), 0);
	char buf[64];
	while (ipcx_recv(s, buf, sizeof(buf), 0) > 0)
		;
	cr_assert_eq(ipcx_stats(s, &st), 0);
	cr_expect_eq(st.received + st.dropped, 601);
	ipcx_close(s);
	ipcx_close(p);
}

/* ---- batches in place (ipcx_peekv / ipcx_releasev) ------------------------------------ */

/* A batch's message i is "m<want>". */
static void expect_in(const struct ipcx_msg *v, int want)
{
	char m[32];
	int n = snprintf(m, sizeof(m), "m%d", want);
	cr_expect_eq(v->len, (size_t)n, "length of m%d", want);
	cr_expect_eq(memcmp(v->buf, m, (size_t)n), 0, "m%d", want);
}

Test(bcast, batch_in_place_takes_part_and_leaves_the_rest)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "&capacity=16384&max=64", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	struct ipcx_msg v[8];
	cr_expect_eq(ipcx_peekv(s, v, 8, 0), -EAGAIN);
	cr_expect_eq(ipcx_peekv(s, v, 8, 20), -ETIMEDOUT);
	cr_expect_eq(ipcx_releasev(s, 0), -EINVAL, "nothing peeked");
	publish(p, 0, 5);
	int fd = ipcx_fileno(s);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ipcx_peekv(s, v, 8, 0), 5, "every one waiting, in one batch");
	for (int i = 0; i < 5; i++)
		expect_in(&v[i], i);
	cr_expect_eq(ipcx_recv(s, (char[8]){ 0 }, 8, 0), -EBUSY, "held");
	cr_expect_eq(ipcx_release(s), -EINVAL, "a batch is let go of with ipcx_releasev");
	cr_expect_eq(ipcx_releasev(s, 6), -EINVAL, "more than were peeked");
	cr_expect_eq(ipcx_releasev(s, 2), 2);
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	cr_expect_eq(poll(&pf, 1, 0), 1, "three left: readable");
	cr_assert_eq(ipcx_peekv(s, v, 2, 0), 2, "no more than asked");
	expect_in(&v[0], 2);
	expect_in(&v[1], 3);
	cr_expect_eq(ipcx_releasev(s, 0), 0, "all put back");
	cr_assert_eq(ipcx_peekv(s, v, 8, 0), 3);
	expect_in(&v[0], 2);
	expect_in(&v[2], 4);
	cr_expect_eq(ipcx_releasev(s, 3), 3);
	cr_expect_eq(poll(&pf, 1, 0), 0, "all read: not readable");
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(s, &st), 0);
	cr_expect_eq(st.received, 5);
	cr_expect_eq(st.depth, 0);
	/* A channel that is not a broadcast ring has no batch in place. */
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s-plain", name);
	ipcx_chan *c;
	cr_assert_eq(ipcx_listen(u, 0, &c), 0);
	cr_expect_eq(ipcx_peekv(c, v, 8, 0), -EOPNOTSUPP);
	cr_expect_eq(ipcx_releasev(c, 1), -EOPNOTSUPP);
	ipcx_close(c);
	ipcx_close(s);
	ipcx_close(p);
}

Test(bcast, batch_overwritten_while_held_in_drop_mode)
{
	const char *name = t_name();
	/* 256 cells of 64 bytes; each message takes one. */
	ipcx_chan *p = open_ring(name, "&capacity=16384&max=64&policy=drop", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	publish(p, 0, 10);
	struct ipcx_msg v[64];
	cr_assert_eq(ipcx_peekv(s, v, 4, 0), 4);
	publish(p, 10, 252); /* still all there: 252 of 256 cells */
	cr_expect_eq(ipcx_releasev(s, 4), 4, "none overwritten");
	cr_assert_eq(ipcx_peekv(s, v, 64, 0), 64);
	expect_in(&v[0], 4);
	publish(p, 252, 300); /* overwrites m0 .. m43: the first forty of the batch */
	cr_expect_eq(ipcx_releasev(s, 64), -ESTALE, "the first was overwritten while held");
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(s, &st), 0);
	cr_expect_eq(st.received, 4);
	cr_expect_eq(st.received + st.dropped + st.depth, 300, "every message accounted for");
	ssize_t n = ipcx_peekv(s, v, 64, 0);
	cr_assert_eq(n, 64);
	char first[32];
	memcpy(first, v[0].buf, v[0].len);
	first[v[0].len] = 0;
	cr_expect_eq((int)st.dropped, atoi(first + 1) - 4, "lost exactly m4 .. before %s", first);
	cr_expect_eq(ipcx_releasev(s, 64), 64);
	while ((n = ipcx_peekv(s, v, 64, 0)) > 0)
		cr_assert_eq(ipcx_releasev(s, (size_t)n), n);
	cr_expect_eq(n, -EAGAIN);
	cr_assert_eq(ipcx_stats(s, &st), 0);
	cr_expect_eq(st.received + st.dropped, 300);
	cr_expect_eq(st.depth, 0);
	ipcx_close(s);
	ipcx_close(p);
}

/* ---- a subscriber killed in block mode ---------------------------------------------- */

struct victim {
	char url[256];
	struct t_sync ready;
};

static int stuck_subscriber(void *arg)
{
	struct victim *v = arg;
	ipcx_chan *c;
	if (ipcx_dial(v->url, 0, &c) < 0)
		return 1;
	t_post(&v->ready);
	pause(); /* never reads: killed by the test */
	return 0;
}

Test(bcast, killed_subscriber_releases_the_publisher)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "&capacity=4096&max=64&policy=block", true);
	ipcx_chan *live = open_ring(name, "&sub=1", false);
	struct victim v;
	snprintf(v.url, sizeof(v.url), "shm:/%s?sub=1", name);
	t_sync_init(&v.ready);
	pid_t pid = t_spawn(stuck_subscriber, &v);
	cr_assert(t_wait_post(&v.ready, T_GUARD_MS));
	/* 4096 bytes hold 64 records of one cell: the 65th waits for the stuck one. */
	char buf[64];
	int sent = 0;
	for (; sent < 64; sent++)
		cr_assert_eq(ipcx_send(p, "x", 1, 0), 1);
	cr_expect_eq(ipcx_send(p, "x", 1, 0), -EAGAIN, "full: the stuck subscriber holds it");
	for (int i = 0; i < 64; i++)
		cr_assert_eq(ipcx_recv(live, buf, sizeof(buf), 0), 1);
	cr_expect_eq(ipcx_send(p, "x", 1, 0), -EAGAIN, "still held by the stuck one");
	struct ipcx_subscriber subs[4];
	cr_expect_eq(ipcx_subscribers(p, subs, 4), 2);
	kill(pid, SIGKILL);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
	/* The dead subscriber is found by the waiting publisher and stops counting. */
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(ipcx_send(p, "y", 1, T_GUARD_MS), 1, "send %d: %s", i, ipcx_errdetail());
		cr_assert_eq(ipcx_recv(live, buf, sizeof(buf), 0), 1);
	}
	cr_expect_eq(ipcx_subscribers(p, subs, 4), 1);
	ipcx_close(live);
	ipcx_close(p);
}

/* ---- life: the last peer out removes the name ---------------------------------------- */

static bool shm_exists(const char *name)
{
	char path[300];
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	return access(path, F_OK) == 0;
}

Test(bcast, last_peer_out_removes_the_name)
{
	const char *name = t_name();
	ipcx_chan *maker = open_ring(name, "", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	ipcx_close(maker); /* the maker leaves first: the ring stays for the others */
	cr_expect(shm_exists(name));
	ipcx_chan *p = open_ring(name, "", false);
	publish(p, 0, 1);
	expect_msg(s, "m0");
	ipcx_close(p);
	cr_expect(shm_exists(name));
	ipcx_close(s);
	cr_expect(!shm_exists(name), "the last one out removed it");
	ipcx_chan *c = NULL;
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s?fanout=1", name);
	cr_expect_eq(ipcx_dial(u, 0, &c), -ECONNREFUSED);
	/* keep=1: nobody removes it. */
	snprintf(u, sizeof(u), "shm:/%s?fanout=1&keep=1", name);
	cr_assert_eq(ipcx_listen(u, 0, &c), 0);
	ipcx_close(c);
	cr_expect(shm_exists(name));
	snprintf(u, sizeof(u), "shm:/%s", name);
	cr_expect_eq(ipcx_obj_remove(u, 0), 0);
}

Test(bcast, sysvshm_fanout)
{
	char u[128];
	snprintf(u, sizeof(u), "sysvshm:%d?fanout=1", t_sysv_key());
	ipcx_chan *p, *s;
	cr_assert_eq(ipcx_listen(u, 0, &p), 0, "%s", ipcx_errdetail());
	char us[160];
	snprintf(us, sizeof(us), "%s&history=1", u);
	publish(p, 0, 2);
	cr_assert_eq(ipcx_dial(us, 0, &s), 0, "%s", ipcx_errdetail());
	expect_msg(s, "m1");
	ipcx_close(p);
	publish(s, 2, 3); /* a subscriber may publish too */
	expect_msg(s, "m2");
	ipcx_close(s);
	cr_expect_eq(ipcx_dial(u, 0, &s), -ECONNREFUSED, "the last peer removed the segment");
}

Test(bcast, bad_options)
{
	ipcx_chan *c;
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s?fanout=1&spsc=1", t_name());
	cr_expect_eq(ipcx_listen(u, 0, &c), -EINVAL);
	snprintf(u, sizeof(u), "shm:/%s?fanout=1&policy=overwrite", t_name());
	cr_expect_eq(ipcx_listen(u, 0, &c), -EINVAL);
	snprintf(u, sizeof(u), "shm:/%s?fanout=1&capacity=256&max=125", t_name());
	cr_expect_eq(ipcx_listen(u, 0, &c), -EINVAL, "a record of max bytes and its number fit twice");
	snprintf(u, sizeof(u), "mmap:%s?fanout=1", t_path("log"));
	cr_expect_eq(ipcx_listen(u, 0, &c), -EINVAL, "not on the mmap: log");
}

/* ---- corruption ------------------------------------------------------------------------ */

static struct ring_hdr *map_segment(const char *name, size_t *len)
{
	int fd = shm_open(name, O_RDWR, 0);
	cr_assert_geq(fd, 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(m, MAP_FAILED);
	*len = (size_t)st.st_size;
	return m;
}

Test(bcast, corrupt_ring_is_ebadmsg)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "&capacity=16384&max=64", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	size_t len;
	struct ring_hdr *h = map_segment(name, &len);
	_Atomic uint64_t *meta = (_Atomic uint64_t *)((char *)h + h->meta_off);
	uint64_t *data = (uint64_t *)((char *)h + h->data_off);
	char buf[64];
	publish(p, 0, 1);
	/* A length beyond the maximum, and the record's number out of its place. */
	uint64_t m = atomic_load(&meta[0]);
	atomic_store(&meta[0], (m & ~0xffffffffull) | 0x3fffffff);
	cr_expect_eq(ipcx_recv(s, buf, sizeof(buf), 0), -EBADMSG);
	atomic_store(&meta[0], m);
	data[0] = 77;
	cr_expect_eq(ipcx_recv(s, buf, sizeof(buf), 0), -EBADMSG);
	data[0] = 0;
	expect_msg(s, "m0");
	/* rel past the head; the head too far ahead; a subscriber's cursor out of range. */
	uint64_t head = atomic_load(&h->head);
	atomic_store(&h->rel, 1000);
	cr_expect_eq(ipcx_send(p, "x", 1, 0), -EBADMSG);
	atomic_store(&h->rel, 0);
	atomic_store(&h->head, (uint64_t)(h->ncells + 10) << 8);
	cr_expect_eq(ipcx_send(p, "x", 1, 0), -EBADMSG);
	atomic_store(&h->head, head);
	for (int i = 0; i < 255; i++) /* the ring is full: the next claim looks at the cursors */
		ipcx_send(p, "y", 1, 0);
	for (unsigned k = 0; k < RING_PEERS; k++)
		if (atomic_load(&h->peers[k].sub))
			atomic_store(&h->peers[k].cursor, 1ull << 40);
	cr_expect_eq(ipcx_send(p, "x", 1, 0), -EBADMSG);
	munmap(h, len);
	ipcx_close(s);
	ipcx_close(p);
}

Test(bcast, scribble_never_crashes)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "&capacity=4096&max=512&policy=drop", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	size_t len;
	struct ring_hdr *h = map_segment(name, &len);
	size_t end = h->data_off + 64 * 16; /* control state and the first records */
	srand(4321);
	char buf[512];
	int bad = 0;
	for (int i = 0; i < 3000; i++) {
		if (i % 100 == 0) {
			/* Now and then a fresh, valid state, with messages in it. */
			ipcx_close(s);
			atomic_store(&h->head, 0);
			atomic_store(&h->rel, 0);
			atomic_store(&h->next_no, 0);
			memset((char *)h + h->seq_off, 0, h->data_off - h->seq_off);
			s = open_ring(name, "&sub=1", false);
			for (int k = 0; k < 5; k++)
				ipcx_send(p, buf, (size_t)(k * 100), 0);
		}
		size_t off = offsetof(struct ring_hdr, rx_waiters) +
			     (size_t)rand() % (end - offsetof(struct ring_hdr, rx_waiters));
		/* Leave the peer slots' pids alone: random pids would be signalled with 0. */
		if (off >= offsetof(struct ring_hdr, peers) && off < offsetof(struct ring_hdr, next_no))
			continue;
		((volatile uint8_t *)h)[off] = (uint8_t)rand();
		ssize_t r = ipcx_recv(s, buf, sizeof(buf), 0);
		cr_assert(r >= 0 || r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r == -EBUSY,
			  "recv: %zd", r);
		r = ipcx_send(p, buf, (size_t)(rand() % 512), 0);
		cr_assert(r >= 0 || r == -EAGAIN || r == -EBADMSG || r == -EBUSY, "send: %zd", r);
		bad += r == -EBADMSG;
	}
	cr_expect_gt(bad, 0, "the scribbles were noticed");
	munmap(h, len);
	ipcx_close(s);
	ipcx_close(p);
}

/* ---- poll ------------------------------------------------------------------------------ */

Test(bcast, descriptor_is_level_triggered)
{
	const char *name = t_name();
	ipcx_chan *p = open_ring(name, "", true);
	ipcx_chan *s = open_ring(name, "&sub=1", false);
	int fd = ipcx_fileno(s);
	cr_assert_geq(fd, 0);
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	cr_expect_eq(poll(&pf, 1, 0), 0, "nothing yet");
	publish(p, 0, 2);
	cr_expect_eq(poll(&pf, 1, T_GUARD_MS), 1);
	expect_msg(s, "m0");
	cr_expect_eq(poll(&pf, 1, 0), 1, "one left: still readable");
	expect_msg(s, "m1");
	cr_expect_eq(poll(&pf, 1, 0), 0, "drained");
	ipcx_close(s);
	ipcx_close(p);
}
