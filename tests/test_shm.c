/*
 * The shm: and sysvshm: ring channels: round trip, sizes, timeouts,
 * readiness, zero-copy, policies, statistics, peers that die, and removal.
 * Multi-process stress and crash tests are in test_ring.c.
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
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sched.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm/ring.h"
#include "tpriv.h"
#include "trace.h"
#include "tsupport.h"

static char url[256];

static const char *shm_url(const char *opts)
{
	snprintf(url, sizeof(url), "shm:/%s%s%s", t_name(), opts ? "?" : "", opts ? opts : "");
	return url;
}

static void open_pair(const char *u, ipcx_chan **l, ipcx_chan **d)
{
	int r = ipcx_listen(u, 0, l);
	cr_assert_eq(r, 0, "listen %s: %s %s", u, ipcx_strerror(r), ipcx_errdetail());
	r = ipcx_dial(u, 0, d);
	cr_assert_eq(r, 0, "dial %s: %s %s", u, ipcx_strerror(r), ipcx_errdetail());
}

static void roundtrip(const char *u)
{
	ipcx_chan *l, *d;
	open_pair(u, &l, &d);
	size_t max = ipcx_max_msg(l);
	cr_assert_geq(max, 64 * 1024);
	char *big = malloc(max), *buf = malloc(max);
	for (size_t i = 0; i < max; i++)
		big[i] = (char)(i * 7 + 1);
	size_t sizes[] = { 0, 1, 63, 64, 65, 1000, max };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		cr_assert_eq(ipcx_send(d, big, sizes[i], T_GUARD_MS), (ssize_t)sizes[i]);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ssize_t n = ipcx_recv(l, buf, max, T_GUARD_MS);
		cr_assert_eq(n, (ssize_t)sizes[i], "message %zu: %zd", i, n);
		cr_assert(memcmp(buf, big, sizes[i]) == 0);
	}
	cr_expect_eq(ipcx_send(d, big, max + 1, 0), -EMSGSIZE);
	/* Too small a buffer: the message stays queued. */
	cr_assert_eq(ipcx_send(d, "hello", 5, 0), 5);
	cr_expect_eq(ipcx_recv(l, buf, 4, 0), -EMSGSIZE);
	cr_expect_eq(ipcx_recv(l, buf, 5, 0), 5);
	free(big);
	free(buf);
	cr_assert_eq(ipcx_close(d), 0);
	cr_assert_eq(ipcx_close(l), 0);
}

Test(shm, roundtrip_posix)
{
	roundtrip(shm_url(NULL));
}

Test(shm, roundtrip_spsc)
{
	roundtrip(shm_url("spsc=1&capacity=262144"));
}

Test(shm, roundtrip_sysv)
{
	char u[64];
	int key = t_sysv_key();
	snprintf(u, sizeof(u), "sysvshm:0x%08x", (unsigned)key);
	roundtrip(u);
	cr_expect_eq(shmget(key, 0, 0), -1, "segment left after close");
	cr_expect_eq(errno, ENOENT);
}

Test(shm, removed_on_close_unless_keep)
{
	const char *name = t_name();
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s", name);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0);
	char path[300];
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	/* Exclusive: a second listener is refused. */
	ipcx_chan *l2;
	cr_expect_eq(ipcx_listen(u, 0, &l2), -EEXIST);
	ipcx_close(l);
	cr_expect_eq(stat(path, &st), -1);
	cr_expect_eq(ipcx_dial(u, 0, &l2), -ECONNREFUSED);

	snprintf(u, sizeof(u), "shm:/%s?keep=1&mode=0640", name);
	cr_assert_eq(ipcx_listen(u, 0, &l), 0);
	cr_assert_eq(ipcx_send(l, "kept", 4, 0), 4);
	ipcx_close(l);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0640);
	ipcx_chan *d;
	cr_assert_eq(ipcx_dial(u, 0, &d), 0);
	char buf[8];
	cr_expect_eq(ipcx_recv(d, buf, sizeof(buf), 0), 4);
	ipcx_close(d);
	cr_assert_eq(shm_unlink(name), 0);
}

Test(shm, bad_urls)
{
	ipcx_chan *c;
	const char *bad[] = { "shm:noslash", "shm:/a/b", "shm:/x?capacity=100",
			      "shm:/x?max=0", "shm:/x?capacity=4096&max=4096",
			      "shm:/x?policy=never", "shm:/x?spsc=1&policy=overwrite",
			      "shm:/x?bogus=1", "sysvshm:0", "sysvshm:abc" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ipcx_listen(bad[i], 0, &c), -EINVAL, "%s", bad[i]);
}

Test(shm, timeouts)
{
	ipcx_chan *l, *d;
	open_pair(shm_url("capacity=1024&max=64"), &l, &d);
	char buf[64] = { 0 };
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 30), -ETIMEDOUT);
	int sent = 0;
	while (ipcx_send(d, buf, 64, 0) == 64)
		sent++;
	cr_expect_eq(sent, 16, "a 16-cell ring holds 16 one-cell records");
	cr_expect_eq(ipcx_send(d, buf, 64, 0), -EAGAIN);
	cr_expect_eq(ipcx_send(d, buf, 64, 30), -ETIMEDOUT);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), 64);
	cr_expect_eq(ipcx_send(d, buf, 64, 0), 64);
	ipcx_close(d);
	ipcx_close(l);
}

struct sender_arg {
	const char *url;
	struct t_sync *go;
	int count;
};

static int sender(void *arg)
{
	struct sender_arg *a = arg;
	ipcx_chan *d;
	if (ipcx_dial(a->url, 0, &d) < 0)
		return 1;
	for (int i = 0; i < a->count; i++) {
		if (!t_wait_post(a->go, T_GUARD_MS))
			return 2;
		if (ipcx_send(d, &i, sizeof(i), T_GUARD_MS) != sizeof(i))
			return 3;
	}
	ipcx_close(d);
	return 0;
}

static void poll_readiness(const char *opts)
{
	const char *u = shm_url(opts);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0);
	int fd = ipcx_fileno(l);
	cr_assert_geq(fd, 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_fileno(l), fd, "the same descriptor every time");
	cr_expect(!t_readable(fd, 0));
	struct t_sync go;
	t_sync_init(&go);
	struct sender_arg a = { u, &go, 3 };
	pid_t pid = t_spawn(sender, &a);
	/* The peer in another process sends one; the descriptor turns readable. */
	t_post(&go);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, T_GUARD_MS), 1);
	int v;
	cr_expect_eq(ipcx_recv(l, &v, sizeof(v), 0), sizeof(v));
	cr_expect_eq(v, 0);
	cr_expect(!t_readable(fd, 0), "not readable once the ring is empty");
	t_post(&go);
	t_post(&go);
	cr_assert_eq(t_join(pid, T_GUARD_MS), 0);
	cr_assert_eq(poll(&p, 1, T_GUARD_MS), 1);
	cr_expect_eq(ipcx_recv(l, &v, sizeof(v), 0), sizeof(v));
	cr_expect(t_readable(fd, 0), "still readable: one message left");
	cr_expect_eq(ipcx_recv(l, &v, sizeof(v), 0), sizeof(v));
	cr_expect_eq(v, 2);
	cr_expect(!t_readable(fd, 0));
	t_sync_close(&go);
	ipcx_close(l);
}

Test(shm, poll_readiness)
{
	poll_readiness(NULL);
}

Test(shm, poll_readiness_spsc)
{
	poll_readiness("spsc=1");
}

Test(shm, zero_copy)
{
	ipcx_chan *l, *d;
	open_pair(shm_url(NULL), &l, &d);
	void *slot;
	cr_assert_eq(ipcx_reserve(d, 100, 0, &slot), 0);
	cr_expect_eq(ipcx_send(d, "x", 1, 0), -EBUSY, "reserve must be committed first");
	memcpy(slot, "zero-copy", 9);
	cr_assert_eq(ipcx_commit(d, 9), 0);
	cr_expect_eq(ipcx_commit(d, 9), -EINVAL);
	cr_assert_eq(ipcx_send(d, "second", 6, 0), 6);
	const void *m;
	cr_assert_eq(ipcx_peek(l, 0, &m), 9);
	cr_expect(memcmp(m, "zero-copy", 9) == 0);
	cr_assert_eq(ipcx_release(l), 0);
	char buf[16];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), 6);
	/* A reservation abandoned by close is skipped, never delivered. */
	cr_assert_eq(ipcx_reserve(d, 10, 0, &slot), 0);
	ipcx_close(d);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN, "a listener waits for more");
	ipcx_close(l);
}

Test(shm, stats)
{
	ipcx_chan *l, *d;
	open_pair(shm_url(NULL), &l, &d);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ipcx_send(d, &i, sizeof(i), 0), sizeof(i));
	int v;
	cr_assert_eq(ipcx_recv(l, &v, sizeof(v), 0), sizeof(v));
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, 5);
	cr_expect_eq(st.received, 1);
	cr_expect_eq(st.dropped, 0);
	cr_expect_eq(st.depth, 4);
	cr_expect_eq(st.peers, 2);
	ipcx_close(d);
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.peers, 1);
	ipcx_close(l);
}

Test(shm, policy_drop)
{
	ipcx_chan *l, *d;
	open_pair(shm_url("capacity=1024&max=64&policy=drop"), &l, &d);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(ipcx_send(d, &i, sizeof(i), -1), sizeof(i), "never blocks");
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, 20);
	cr_expect_eq(st.dropped, 4, "16 one-cell records fit");
	int v, want = 0;
	while (ipcx_recv(l, &v, sizeof(v), 0) == sizeof(v))
		cr_expect_eq(v, want++, "the oldest are kept");
	cr_expect_eq(want, 16);
	ipcx_close(d);
	ipcx_close(l);
}

/* A reservation on a full policy=drop ring: the message is dropped, counted, and said. */
Test(shm, policy_drop_reserve)
{
	ipcx_chan *l, *d;
	open_pair(shm_url("capacity=1024&max=64&policy=drop"), &l, &d);
	void *slot;
	int ok = 0, refused = 0;
	for (int i = 0; i < 20; i++) {
		int r = ipcx_reserve(d, 8, -1, &slot);
		cr_assert(r == 0 || r == -ENOBUFS, "never blocks: %d", r);
		if (r == 0) {
			memcpy(slot, &i, sizeof(i));
			cr_assert_eq(ipcx_commit(d, sizeof(i)), 0);
		}
		ok += r == 0;
		refused += r == -ENOBUFS;
	}
	cr_expect(ok == 16 && refused == 4, "16 one-cell records fit: %d, %d", ok, refused);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, 20, "a refused reservation is a message sent and dropped");
	cr_expect_eq(st.dropped, 4);
	cr_expect_eq(st.depth, 16);
	ipcx_close(d);
	ipcx_close(l);
}

static void read_ahead(const char *u)
{
	ipcx_chan *l, *d;
	open_pair(u, &l, &d);
	char buf[512], big[300];
	memset(big, 'b', sizeof(big));
	uint64_t cur = 0, last = 0;
	cr_expect_eq(ipcx_read_ahead(l, &cur, buf, sizeof(buf), 0), -EAGAIN);
	cr_expect_eq(ipcx_read_ahead(l, &cur, buf, sizeof(buf), 20), -ETIMEDOUT);
	cr_expect_eq(cur, 0, "untouched on failure");
	/* Laps of a small ring: records of one to five cells, with pads at the ends. */
	for (int lap = 0; lap < 40; lap++) {
		int n = 0;
		for (int i = 0; i < 5; i++, n++) {
			size_t len = 1 + (size_t)((lap * 5 + i) * 61) % sizeof(big);
			big[0] = (char)i;
			if (ipcx_send(d, big, len, 0) != (ssize_t)len)
				break;
		}
		cr_assert_gt(n, 0);
		cur = 0;
		for (int i = 0; i < n; i++) {
			ssize_t k = ipcx_read_ahead(l, &cur, buf, sizeof(buf), 0);
			cr_assert_gt(k, 0, "lap %d, %d: %zd", lap, i, k);
			cr_expect_eq(buf[0], (char)i, "in order");
			cr_expect_gt(cur, last, "the cursor names messages in increasing order");
			last = cur;
		}
		cr_expect_eq(ipcx_read_ahead(l, &cur, buf, sizeof(buf), 0), -EAGAIN, "no more");
		uint64_t first = 0, second = 0;
		cr_expect_eq(ipcx_read_ahead(l, &first, buf, 0, 0), -EMSGSIZE, "no room");
		cr_expect_eq(first, 0, "the cursor stays");
		cr_assert_gt(ipcx_read_ahead(l, &second, buf, sizeof(buf), 0), 0);
		/* Still all there, for recv. */
		for (int i = 0; i < n; i++) {
			cr_assert_gt(ipcx_recv(l, buf, sizeof(buf), 0), 0);
			cr_expect_eq(buf[0], (char)i);
		}
		cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
		/* second names the message after the first: taken now (or not yet sent). */
		cr_expect_eq(ipcx_read_ahead(l, &second, buf, sizeof(buf), 0), n > 1 ? -ESTALE : -EAGAIN,
			     "the cursor's message was taken");
	}
	ipcx_close(d);
	ipcx_close(l);
}

Test(shm, read_ahead_mpmc)
{
	read_ahead(shm_url("capacity=1024&max=300"));
}

Test(shm, read_ahead_spsc)
{
	read_ahead(shm_url("capacity=1024&max=300&spsc=1"));
}

Test(shm, read_ahead_waits_at_the_front)
{
	ipcx_chan *l, *d;
	open_pair(shm_url(NULL), &l, &d);
	char buf[16];
	uint64_t cur = 0;
	cr_assert_eq(ipcx_send(d, "one", 3, 0), 3);
	cr_assert_eq(ipcx_read_ahead(l, &cur, buf, sizeof(buf), 0), 3);
	/* Past the oldest message it never waits: take what was read first. */
	cr_expect_eq(ipcx_read_ahead(l, &cur, buf, sizeof(buf), 1000), -EAGAIN);
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), 0), 3);
	cr_assert_eq(ipcx_send(d, "two", 3, 0), 3);
	cr_expect_eq(ipcx_read_ahead(l, &cur, buf, sizeof(buf), T_GUARD_MS), 3);
	cr_expect(memcmp(buf, "two", 3) == 0);
	ipcx_close(d);
	ipcx_close(l);
	ipcx_chan *a, *b;
	cr_assert_eq(ipcx_pair("socket", 0, &a, &b), 0);
	cur = 0;
	cr_expect_eq(ipcx_read_ahead(a, &cur, buf, sizeof(buf), 0), -EOPNOTSUPP);
	cr_expect_eq(ipcx_read_ahead(a, NULL, buf, sizeof(buf), 0), -EINVAL);
	ipcx_close(a);
	ipcx_close(b);
}

/* A channel that receives says so in its slot: ls tells a consumer (a log's drain) is there. */
Test(shm, receivers)
{
	ipcx_chan *l, *d;
	open_pair(shm_url(NULL), &l, &d);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(d, &st), 0);
	cr_expect_eq(st.receivers, 0);
	char buf[8];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	cr_assert_eq(ipcx_stats(d, &st), 0);
	cr_expect_eq(st.receivers, 1, "one that tried counts");
	cr_expect_eq(st.peers, 2);
	ipcx_close(l);
	cr_assert_eq(ipcx_stats(d, &st), 0);
	cr_expect_eq(st.receivers, 0);
	ipcx_close(d);
}

Test(shm, policy_overwrite)
{
	ipcx_chan *l, *d;
	open_pair(shm_url("capacity=1024&max=64&policy=overwrite"), &l, &d);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(ipcx_send(d, &i, sizeof(i), 0), sizeof(i));
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, 100);
	cr_expect_eq(st.dropped, 84);
	int v, want = 84;
	while (ipcx_recv(l, &v, sizeof(v), 0) == sizeof(v))
		cr_expect_eq(v, want++, "the newest are kept, in order");
	cr_expect_eq(want, 100);
	ipcx_close(d);
	ipcx_close(l);
}

static int listen_send_die(void *arg)
{
	struct sender_arg *a = arg;
	ipcx_chan *l;
	if (ipcx_listen(a->url, 0, &l) < 0)
		return 1;
	int v = 42;
	if (ipcx_send(l, &v, sizeof(v), 0) != sizeof(v))
		return 2;
	t_post(a->go);
	pause(); /* killed here: the ring stays behind, with its listener dead */
	return 0;
}

/*
 * The listener killed: a dialer gets what was queued, then -EPIPE, from
 * recv and from send; a new listener replaces the stale ring and removes it.
 */
static void dead_listener_is_epipe(const char *u)
{
	struct t_sync go;
	t_sync_init(&go);
	struct sender_arg a = { u, &go, 1 };
	pid_t pid = t_spawn(listen_send_die, &a);
	cr_assert(t_wait_post(&go, T_GUARD_MS));
	ipcx_chan *d;
	cr_assert_eq(ipcx_dial(u, 0, &d), 0);
	int v = 0;
	cr_assert_eq(ipcx_recv(d, &v, sizeof(v), 0), sizeof(v));
	cr_expect_eq(v, 42);
	cr_expect_eq(ipcx_recv(d, &v, sizeof(v), 0), -EAGAIN, "listener alive: just empty");
	cr_assert_eq(ipcx_send(d, &v, sizeof(v), 0), sizeof(v));
	kill(pid, SIGKILL);
	/* A killed process is a zombie until reaped: it already counts as dead. */
	cr_assert_eq(ipcx_recv(d, &v, sizeof(v), T_GUARD_MS), sizeof(v), "what was queued");
	cr_expect_eq(ipcx_recv(d, &v, sizeof(v), T_GUARD_MS), -EPIPE);
	ssize_t r = 0;
	for (int i = 0; i < 5000 && r >= 0; i++)
		r = ipcx_send(d, &v, sizeof(v), T_GUARD_MS);
	cr_expect_eq(r, -EPIPE, "sends learn of it within a bounded number");
	t_join(pid, T_GUARD_MS);
	ipcx_close(d);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0, "stale ring replaced: %s", ipcx_errdetail());
	ipcx_chan *l2;
	cr_expect_eq(ipcx_listen(u, 0, &l2), -EEXIST, "a live one is not");
	ipcx_close(l);
	t_sync_close(&go);
}

Test(shm, dead_listener_is_epipe)
{
	dead_listener_is_epipe(shm_url(NULL));
}

/* SPSC: 5000 small sends fit the ring, so the fast path itself must look. */
Test(shm, dead_listener_is_epipe_spsc)
{
	dead_listener_is_epipe(shm_url("spsc=1"));
}

Test(shm, stale_sysv_replaced)
{
	char u[64];
	snprintf(u, sizeof(u), "sysvshm:%d", t_sysv_key());
	struct t_sync go;
	t_sync_init(&go);
	struct sender_arg a = { u, &go, 1 };
	pid_t pid = t_spawn(listen_send_die, &a);
	cr_assert(t_wait_post(&go, T_GUARD_MS));
	kill(pid, SIGKILL);
	t_join(pid, T_GUARD_MS);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0, "stale segment replaced: %s", ipcx_errdetail());
	ipcx_close(l);
	t_sync_close(&go);
}

/*
 * Two listeners replacing the same stale ring (stale), or creating a ring
 * where nothing is yet, at once: exactly one wins, the other is refused as
 * by a live ring, and the name is the winner's ring (support/trace.h).  One
 * round on a fresh name; remove() takes the name away after a failure.
 */
static bool is_eexist(int err)
{
	return err == -EEXIST;
}

static void race_round(const char *u, int round, int *results, void (*remove)(const char *u),
		       bool stale)
{
	struct t_race r;
	t_race_round(u, round, results, stale, is_eexist, &r);
	if (!t_race_ok(&r))
		remove(u);
	cr_assert(r.both, "round %d: a racer never listened", round);
	cr_assert_eq(r.wins, 1, "round %d: %d winners (%d, %d)", round, r.wins, r.result[0],
		     r.result[1]);
	cr_assert(r.lost_right, "round %d: the loser got %d, %d", round, r.result[0], r.result[1]);
	cr_assert_eq(r.reached, 0, "round %d: the winner's ring is not the one named", round);
	cr_assert_eq(r.exits, 0, "round %d: racers exited %d in all", round, r.exits);
}

/* "/name" of "shm:/name?options", in buf. */
static const char *posix_name(const char *u, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", strchr(u, '/'));
	buf[strcspn(buf, "?")] = 0;
	return buf;
}

static void remove_posix(const char *u)
{
	char name[256];
	shm_unlink(posix_name(u, name, sizeof(name)));
}

static void remove_sysv(const char *u)
{
	int id = shmget((key_t)strtoul(strchr(u, ':') + 1, NULL, 0), 0, 0);
	if (id >= 0)
		shmctl(id, IPC_RMID, NULL);
}

#define RACE_ROUNDS 150

/*
 * RACE_ROUNDS rounds of two listeners racing for a fresh shm: or sysvshm:
 * name, where a killed listener left a stale ring (stale), or where nothing
 * is yet; the winner's close removes its ring.
 */
static void race_rounds(bool sysv, bool stale)
{
	int *results = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(results, MAP_FAILED);
	for (int i = 0; i < RACE_ROUNDS; i++) {
		char u[256], name[256];
		int key = t_sysv_key();
		if (sysv)
			snprintf(u, sizeof(u), "sysvshm:0x%08x?capacity=1024&max=64", (unsigned)key);
		else
			snprintf(u, sizeof(u), "shm:/%s?capacity=1024&max=64", t_name());
		race_round(u, i, results, sysv ? remove_sysv : remove_posix, stale);
		bool left = sysv ? shmget(key, 0, 0) >= 0
				 : shm_open(posix_name(u, name, sizeof(name)), O_RDONLY, 0) >= 0;
		cr_assert(!left, "round %d: the winner's close did not remove its ring", i);
	}
	munmap(results, 4096);
}

Test(shm, stale_ring_replaced_once)
{
	race_rounds(false, true);
}

Test(shm, stale_sysv_replaced_once)
{
	race_rounds(true, true);
}

/*
 * Two listeners on a name nobody holds, at once: exactly one wins and the
 * other gets -EEXIST.  The loser must not take the winner's new segment,
 * formatted but not yet joined, for a stale one (issue 18).
 */
Test(shm, fresh_sysv_listeners_race)
{
	race_rounds(true, false);
}

Test(shm, fresh_ring_listeners_race)
{
	race_rounds(false, false);
}

/*
 * What the loser of that race saw, held still: a segment its creator (this
 * process) has formatted but not yet joined, nobody attached.  It is not a
 * stale ring: a listener is refused, and the segment is left alone.
 */
Test(shm, sysv_ring_of_a_running_creator_is_not_stale)
{
	int key = t_sysv_key();
	struct ring_geom g = { .capacity = 1024, .max_msg = 64, .policy = RING_BLOCK };
	size_t size = ipcx__ring_size(&g);
	int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
	cr_assert_geq(id, 0);
	void *m = shmat(id, NULL, 0);
	cr_assert_neq(m, (void *)-1);
	cr_assert_eq(ipcx__ring_format(m, size, &g), 0);
	shmdt(m);
	char u[64];
	snprintf(u, sizeof(u), "sysvshm:0x%08x", (unsigned)key);
	ipcx_chan *l = NULL;
	int r = ipcx_listen(u, 0, &l);
	int now = shmget(key, 0, 0);
	if (r == 0)
		ipcx_close(l);
	shmctl(id, IPC_RMID, NULL);
	cr_expect_eq(r, -EEXIST, "listen: %d %s", r, ipcx_errdetail());
	cr_expect_eq(now, id, "the segment is the one its creator made");
}

/* Blocking send and receive across processes, woken by the futex. */
static int echo_child(void *arg)
{
	const char **urls = arg;
	ipcx_chan *in, *out;
	if (ipcx_dial(urls[0], 0, &in) < 0 || ipcx_dial(urls[1], 0, &out) < 0)
		return 1;
	char buf[256];
	for (;;) {
		ssize_t n = ipcx_recv(in, buf, sizeof(buf), T_GUARD_MS);
		if (n < 0) {
			fprintf(stderr, "echo child: recv: %s %s\n", ipcx_strerror((int)n), ipcx_errdetail());
			return 2;
		}
		if (ipcx_send(out, buf, (size_t)n, T_GUARD_MS) != n)
			return 3;
		if (n == 0)
			break;
	}
	ipcx_close(in);
	ipcx_close(out);
	return 0;
}

Test(shm, ping_pong_blocking)
{
	char u1[256], u2[256];
	snprintf(u1, sizeof(u1), "%s", shm_url("spin=0"));
	snprintf(u2, sizeof(u2), "%s", shm_url("spsc=1&spin=0"));
	ipcx_chan *a, *b;
	cr_assert_eq(ipcx_listen(u1, 0, &a), 0);
	cr_assert_eq(ipcx_listen(u2, 0, &b), 0);
	const char *urls[2] = { u1, u2 };
	pid_t pid = t_spawn(echo_child, urls);
	char buf[256];
	for (int i = 1; i <= 2000; i++) {
		size_t len = (size_t)(i % 200) + 1;
		memset(buf, i & 0xff, len);
		cr_assert_eq(ipcx_send(a, buf, len, T_GUARD_MS), (ssize_t)len);
		char back[256];
		ssize_t got = ipcx_recv(b, back, sizeof(back), T_GUARD_MS);
		cr_assert_eq(got, (ssize_t)len, "round %d: %zd %s", i, got, ipcx_errdetail());
		cr_assert(memcmp(back, buf, len) == 0);
	}
	cr_assert_eq(ipcx_send(a, buf, 0, T_GUARD_MS), 0);
	cr_assert_eq(ipcx_recv(b, buf, sizeof(buf), T_GUARD_MS), 0);
	cr_assert_eq(t_join(pid, T_GUARD_MS), 0);
	ipcx_close(a);
	ipcx_close(b);
}

/* ---- a commit longer than its reservation (issue 18) ------------------------------ */

/* u's listener and a dialer; a commit of more than was reserved is refused. */
static void commit_within_reservation(const char *u)
{
	ipcx_chan *l, *d;
	open_pair(u, &l, &d);
	char want[100];
	memset(want, 'r', sizeof(want));
	void *slot;
	cr_assert_eq(ipcx_reserve(d, 100, 0, &slot), 0, "%s", ipcx_errdetail());
	memcpy(slot, want, sizeof(want));
	int r = ipcx_commit(d, 101);
	cr_expect_eq(r, -EINVAL, "%s: commit of 101 bytes after a reserve of 100: %d", u, r);
	cr_expect_eq(ipcx_commit(d, SIZE_MAX), -EINVAL);
	const void *m;
	cr_expect_eq(ipcx_peek(l, 0, &m), -EAGAIN, "%s: a refused commit publishes nothing", u);
	r = ipcx_commit(d, 100);
	cr_assert_eq(r, 0, "%s: the reservation stays open: %d %s", u, r, ipcx_errdetail());
	cr_assert_eq(ipcx_peek(l, T_GUARD_MS, &m), 100);
	cr_expect(memcmp(m, want, sizeof(want)) == 0);
	cr_assert_eq(ipcx_release(l), 0);
	cr_expect_eq(ipcx_commit(d, 0), -EINVAL, "%s: nothing reserved any more", u);
	/* A reservation whose commit was refused, abandoned by close: never delivered. */
	cr_assert_eq(ipcx_reserve(d, 10, 0, &slot), 0);
	cr_expect_eq(ipcx_commit(d, 11), -EINVAL);
	cr_assert_eq(ipcx_close(d), 0);
	char buf[16];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN, "%s", u);
	cr_assert_eq(ipcx_close(l), 0);
}

Test(shm, commit_within_reservation)
{
	commit_within_reservation(shm_url(NULL));
	char u[256];
	snprintf(u, sizeof(u), "sysvshm:0x%08x", (unsigned)t_sysv_key());
	commit_within_reservation(u);
	snprintf(u, sizeof(u), "mmap:%s", t_path("commit.log"));
	commit_within_reservation(u);
	unlink(t_path("commit.log"));
}

/* ---- a listener's close waits for nobody (issue 18) -------------------------------- */

/* In a child: open u (listen or dial), post ready, wait for go; NULL on failure. */
static ipcx_chan *open_then_wait(const char *u, bool listen, struct t_sync *ready,
				 struct t_sync *go)
{
	ipcx_chan *c;
	if ((listen ? ipcx_listen(u, 0, &c) : ipcx_dial(u, 0, &c)) < 0)
		return NULL;
	t_post(ready);
	if (t_wait_post(go, T_GUARD_MS))
		return c;
	ipcx_close(c);
	return NULL;
}


struct holder {
	const char *url, *name;
	struct t_sync *ready, *go, *locked;
	bool fork; /* the listener forks a child that keeps its mapping */
};

static int pause_forever(void *arg)
{
	(void)arg;
	pause(); /* killed by its parent */
	return 0;
}

/*
 * Listen, say so, and close when told: exits 0 if the close returned 0.
 * With fork, a child made before the close holds a copy of the mapping (and
 * with it the lock of the listener's open file description) while we close.
 */
static int listen_close_on_go(void *arg)
{
	struct holder *a = arg;
	ipcx_chan *l = open_then_wait(a->url, true, a->ready, a->go);
	if (!l)
		return 1;
	pid_t child = a->fork ? t_spawn(pause_forever, NULL) : 0;
	int r = ipcx_close(l);
	if (child) {
		kill(child, SIGKILL);
		t_join(child, T_GUARD_MS);
	}
	return r == 0 ? 0 : 3;
}

/* A process that can open the segment asks for a shared flock and keeps it. */
static int lock_shared_and_hold(void *arg)
{
	struct holder *a = arg;
	int fd = shm_open(a->name, O_RDONLY, 0);
	if (fd < 0)
		return 1;
	if (flock(fd, LOCK_SH) < 0) /* waits while the listener lives */
		return 2;
	t_post(a->locked);
	pause(); /* killed by the test */
	return 0;
}

/* The kernel shows pid's flock request as blocked ("->") in /proc/locks. */
static bool flock_blocked(pid_t pid)
{
	FILE *f = fopen("/proc/locks", "r");
	char line[256], want[32];
	snprintf(want, sizeof(want), " %d ", (int)pid);
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, "-> FLOCK") && strstr(line, want);
	if (f)
		fclose(f);
	return found;
}

/*
 * One listener that closes while another process waits for a shared lock on
 * its segment (hostile), or while a child it forked keeps a copy of its
 * mapping (careless): the close returns at once, 0, and removes the name.
 * Returns the listener's exit status (137: its close hung and was killed).
 */
static int close_while_locked(bool hostile, bool fork)
{
	const char *u = shm_url(NULL);
	char name[256];
	posix_name(u, name, sizeof(name));
	struct t_sync ready, go, locked;
	t_sync_init(&ready);
	t_sync_init(&go);
	t_sync_init(&locked);
	struct holder a = { u, name, &ready, &go, &locked, fork };
	pid_t lis = t_spawn(listen_close_on_go, &a);
	cr_assert(t_wait_post(&ready, T_GUARD_MS));
	pid_t hold = hostile ? t_spawn(lock_shared_and_hold, &a) : 0;
	/* The kernel's own record of a waiting lock request is the handshake. */
	time_t guard = time(NULL) + T_GUARD_MS / 1000;
	while (hostile && !flock_blocked(hold) && time(NULL) < guard)
		sched_yield();
	cr_assert(!hostile || flock_blocked(hold), "the holder never asked for its lock");
	t_post(&go);
	int st = t_join(lis, T_GUARD_MS);
	if (hostile) {
		cr_expect(t_wait_post(&locked, T_GUARD_MS), "the holder gets its lock once the ring is gone");
		kill(hold, SIGKILL);
		t_join(hold, T_GUARD_MS);
	}
	bool gone = shm_open(name, O_RDONLY, 0) < 0 && errno == ENOENT;
	if (!gone)
		shm_unlink(name);
	t_sync_close(&ready);
	t_sync_close(&go);
	t_sync_close(&locked);
	cr_expect(gone, "the close removed the name");
	return st;
}

/*
 * The waiter gets its shared lock the moment the listener's mapping goes;
 * on main the close then asked for the exclusive lock and waited for ever,
 * when the waiter was faster (in about a third of the rounds): ten rounds.
 */
Test(shm, close_never_waits_for_a_locker)
{
	for (int i = 0; i < 10; i++) {
		int st = close_while_locked(true, false);
		cr_assert_eq(st, 0, "round %d: the listener's close: exit status %d", i, st);
	}
}

/* On main the close waited for its own lock, kept by the child's mapping. */
Test(shm, close_never_waits_for_a_forked_child)
{
	int st = close_while_locked(false, true);
	cr_assert_eq(st, 0, "the listener's close: exit status %d", st);
}

/* ---- a peer that truncates the segment (issue 18; docs/shm.md, "Trust") ------------ */

struct cutter {
	const char *url, *path; /* the object as a file: /dev/shm/NAME, or the log */
	off_t to;               /* cut it to this many bytes */
	struct t_sync *ready, *go;
};

/* The hostile peer: any process that can open the object for writing. */
static int cut_object(void *arg)
{
	const struct cutter *a = arg;
	int fd = open(a->path, O_RDWR | O_CLOEXEC);
	return fd >= 0 && ftruncate(fd, a->to) == 0 ? 0 : 1;
}

/* Where the ring's data starts: the header's data_off, read as ls reads it. */
static off_t data_off(const char *path)
{
	struct ring_hdr h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	cr_assert(h.data_off > RING_HDR && h.data_off < h.total_size);
	return (off_t)h.data_off;
}

/*
 * A receiver waiting on an empty ring: the cut is noticed when it wakes, and
 * its receive fails with -EBADMSG instead of touching the segment; then,
 * when told, its close returns 0.  Exits 0 when all of that happened.
 */
static int wait_for_the_cut(void *arg)
{
	const struct cutter *a = arg;
	ipcx_chan *c = open_then_wait(a->url, true, a->ready, a->go);
	if (!c)
		return 1;
	char buf[64];
	ssize_t n = ipcx_recv(c, buf, sizeof(buf), T_GUARD_MS);
	if (n != -EBADMSG || !strstr(ipcx_errdetail(), "cut short"))
		return 3;
	if (ipcx_recv(c, buf, sizeof(buf), 0) != -EBADMSG || ipcx_send(c, "x", 1, 0) != -EBADMSG)
		return 4; /* the channel stays unusable, and says so */
	if (!t_wait_post(a->go, T_GUARD_MS)) /* the name stays while the test dials it */
		return 5;
	return ipcx_close(c) == 0 ? 0 : 6;
}

/* A sender attached before the cut: its next message lands on a page that is gone. */
static int send_after_the_cut(void *arg)
{
	const struct cutter *a = arg;
	ipcx_chan *c = open_then_wait(a->url, false, a->ready, a->go);
	if (!c)
		return 1;
	char msg[64] = "after the cut";
	signal(SIGBUS, SIG_DFL); /* a sanitizer's handler would make an exit of it */
	ipcx_send(c, msg, sizeof(msg), T_GUARD_MS);
	return 3; /* survived: the documented SIGBUS did not come */
}

/*
 * The object's name as a file for a sysvshm: segment: a System V segment has
 * no size to change (no call resizes one), but root can open the file behind
 * a mapping of it through /proc/PID/map_files and cut that.  A mapping of
 * our own provides the entry; *att is to be detached (never touched).
 */
static const char *sysv_file(int key, char *buf, size_t cap, void **att)
{
	int id = shmget(key, 0, 0);
	struct shmid_ds ds;
	cr_assert(id >= 0 && shmctl(id, IPC_STAT, &ds) == 0);
	*att = shmat(id, NULL, 0);
	cr_assert_neq(*att, (void *)-1);
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (ds.shm_segsz + page - 1) / page * page;
	snprintf(buf, cap, "/proc/%d/map_files/%lx-%lx", (int)getpid(), (unsigned long)*att,
		 (unsigned long)*att + len);
	return buf;
}

/*
 * Cut to where the data starts: the header and the cell words stay, every
 * data page goes.  What docs/shm.md promises: a new attach is refused with
 * -EBADMSG; a process waiting in the ring gets -EBADMSG when it wakes and
 * closes cleanly; a process that touches a lost page dies of SIGBUS.  path:
 * the object as a file (NULL for sysvshm: key); nobody: the cut is made by
 * another user.
 */
static void cut_live_ring(const char *u, const char *path, int key, bool nobody)
{
	struct t_sync ready, go_recv, go_send;
	t_sync_init(&ready);
	t_sync_init(&go_recv);
	t_sync_init(&go_send);
	struct cutter rx = { u, path, 0, &ready, &go_recv };
	struct cutter tx = { u, path, 0, &ready, &go_send };
	pid_t lis = t_spawn(wait_for_the_cut, &rx);
	cr_assert(t_wait_post(&ready, T_GUARD_MS));
	pid_t snd = t_spawn(send_after_the_cut, &tx);
	cr_assert(t_wait_post(&ready, T_GUARD_MS));
	t_post(&go_recv); /* the receiver now waits, with a peer attached */
	char mf[128];
	void *att = NULL;
	if (!path)
		path = sysv_file(key, mf, sizeof(mf), &att);
	struct cutter cut = { u, path, data_off(path), NULL, NULL };
	int st = nobody ? t_run_as_nobody(cut_object, &cut)
			: t_join(t_spawn(cut_object, &cut), T_GUARD_MS);
	cr_assert_eq(st, 0, "the cut");
	ipcx_chan *c = NULL;
	int r = ipcx_dial(u, 0, &c);
	cr_expect_eq(r, -EBADMSG, "%s: a new attach after the cut: %d %s", u, r, ipcx_errdetail());
	cr_expect(r != -EBADMSG || strstr(ipcx_errdetail(), "smaller than"), "%s", ipcx_errdetail());
	if (r == 0)
		ipcx_close(c);
	t_post(&go_recv); /* the receiver may close now */
	t_post(&go_send);
	int st_send = t_join(snd, T_GUARD_MS), st_lis = t_join(lis, T_GUARD_MS);
	if (att)
		shmdt(att);
	t_sync_close(&ready);
	t_sync_close(&go_recv);
	t_sync_close(&go_send);
	cr_expect_eq(st_send, 128 + SIGBUS, "%s: the sender: exit status %d", u, st_send);
	cr_expect_eq(st_lis, 0, "%s: the waiting receiver: exit status %d", u, st_lis);
}

/* The name of u's object, and its file in /dev/shm. */
static void shm_paths(const char *u, char *name, size_t ncap, char *path, size_t pcap)
{
	posix_name(u, name, ncap);
	snprintf(path, pcap, "/dev/shm%s", name);
}

static void expect_removed(const char *name)
{
	bool gone = shm_open(name, O_RDONLY, 0) < 0 && errno == ENOENT;
	if (!gone)
		shm_unlink(name);
	cr_expect(gone, "the listener's close removed its name after the cut");
}

Test(shm, cut_live_ring)
{
	const char *u = shm_url("capacity=65536&max=1024");
	char name[256], path[300];
	shm_paths(u, name, sizeof(name), path, sizeof(path));
	cut_live_ring(u, path, 0, false);
	expect_removed(name);
}

/*
 * Another user dials a ring: a 0600 one keeps it out (EACCES); a 0666 one it
 * may open, and takes only if its dial URL says that it shares the ring with
 * everyone (mode=0666), since anyone could have written what is in it.
 */
static void nobody_dials_ring(const char *scheme, const char *name)
{
	char own[256], open_u[300], plain[256], shared[300];
	snprintf(own, sizeof(own), "%s:%s?capacity=4096&max=64", scheme, name);
	snprintf(open_u, sizeof(open_u), "%s&mode=0666", own);
	snprintf(plain, sizeof(plain), "%s:%s", scheme, name);
	snprintf(shared, sizeof(shared), "%s?mode=0666", plain);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(own, 0, &l), 0, "%s: %s", own, ipcx_errdetail());
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, plain), 10, "%s: 0600", plain);
	cr_assert_eq(ipcx_close(l), 0);
	cr_assert_eq(ipcx_listen(open_u, 0, &l), 0, "%s: %s", open_u, ipcx_errdetail());
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, plain), 13, "%s: not trusted", plain);
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, shared), 0, "%s", shared);
	cr_assert_eq(ipcx_close(l), 0);
}

Test(shm, permissions)
{
	if (geteuid() != 0 || !t_have_nobody())
		cr_skip_test("needs root and a user 'nobody'");
	char name[200], key[32];
	snprintf(name, sizeof(name), "/%s", t_name());
	nobody_dials_ring("shm", name);
	snprintf(key, sizeof(key), "0x%08x", (unsigned)t_sysv_key());
	nobody_dials_ring("sysvshm", key);
}

/* mode=0666 lets another user cut it; mode=0644 does not (nor lets it dial). */
Test(shm, cut_by_another_user)
{
	const char *u = shm_url("capacity=65536&max=1024&mode=0644");
	char name[256], path[300];
	shm_paths(u, name, sizeof(name), path, sizeof(path));
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0);
	struct cutter cut = { u, path, 0, NULL, NULL };
	cr_expect_eq(t_run_as_nobody(cut_object, &cut), 1, "nobody opened a 0644 ring for writing");
	cr_assert_eq(ipcx_close(l), 0);
	u = shm_url("capacity=65536&max=1024&mode=0666");
	shm_paths(u, name, sizeof(name), path, sizeof(path));
	cut_live_ring(u, path, 0, true);
	expect_removed(name);
}

Test(shm, cut_live_log)
{
	char u[300];
	const char *path = t_path("cut.log");
	snprintf(u, sizeof(u), "mmap:%s?capacity=65536&max=1024", path);
	cut_live_ring(u, path, 0, false);
	unlink(path);
}

Test(shm, cut_live_sysv_ring_as_root)
{
	if (geteuid() != 0)
		cr_skip_test("only root can cut a System V segment (through /proc/PID/map_files)");
	char u[64];
	int key = t_sysv_key();
	snprintf(u, sizeof(u), "sysvshm:0x%08x?capacity=65536&max=1024", (unsigned)key);
	cut_live_ring(u, NULL, key, false);
	cr_expect_eq(shmget(key, 0, 0), -1, "the listener's close removed the segment");
}

/* The premise of docs/shm.md, "Trust": a peer that is not root cannot resize a segment. */
static int try_to_cut_sysv(void *arg)
{
	int key = *(int *)arg;
	int id = shmget(key, 0, 0);
	struct shmid_ds ds;
	if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0)
		return 1;
	if (shmget(key, ds.shm_segsz / 2, 0) != id || shmget(key, ds.shm_segsz * 2, 0) != -1)
		return 2; /* a smaller size names the same segment; a larger one is refused */
	struct shmid_ds now;
	if (shmctl(id, IPC_STAT, &now) < 0 || now.shm_segsz != ds.shm_segsz)
		return 3;
	void *att = NULL;
	char mf[128];
	sysv_file(key, mf, sizeof(mf), &att);
	int fd = open(mf, O_RDWR | O_CLOEXEC);
	int e = errno;
	shmdt(att);
	return fd < 0 && e == EPERM ? 0 : 4;
}

Test(shm, sysv_segment_cannot_be_cut_by_a_peer)
{
	char u[64];
	int key = t_sysv_key();
	snprintf(u, sizeof(u), "sysvshm:0x%08x?capacity=4096&max=64&mode=0666", (unsigned)key);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0);
	int st = geteuid() == 0 ? t_run_as_nobody(try_to_cut_sysv, &key) : try_to_cut_sysv(&key);
	cr_expect_eq(st, 0, "a peer that is not root: %d", st);
	cr_assert_eq(ipcx_close(l), 0);
}

/* Listen, say so, close when told: exits 0 if the close returned 0 (no SIGBUS). */
static int close_after_the_cut(void *arg)
{
	const struct cutter *a = arg;
	ipcx_chan *c = open_then_wait(a->url, true, a->ready, a->go);
	return c && ipcx_close(c) == 0 ? 0 : 1;
}

/*
 * Cut to nothing: nothing of the ring is left to read.  A new attach is
 * refused (-EBADMSG, after the wait for a ring being created), a new
 * listener finds no stale ring to replace (-EEXIST), and the listener's
 * close neither touches the segment nor fails.
 */
Test(shm, cut_to_nothing)
{
	const char *u = shm_url("capacity=4096&max=64");
	char name[256], path[300];
	snprintf(path, sizeof(path), "/dev/shm%s", posix_name(u, name, sizeof(name)));
	struct t_sync ready, go;
	t_sync_init(&ready);
	t_sync_init(&go);
	struct cutter a = { u, path, 0, &ready, &go };
	pid_t lis = t_spawn(close_after_the_cut, &a);
	cr_assert(t_wait_post(&ready, T_GUARD_MS));
	cr_assert_eq(t_join(t_spawn(cut_object, &a), T_GUARD_MS), 0, "the cut");
	ipcx_chan *c = NULL;
	int r = ipcx_dial(u, 0, &c);
	cr_expect_eq(r, -EBADMSG, "a new attach: %d %s", r, ipcx_errdetail());
	cr_expect(r != -EBADMSG || strstr(ipcx_errdetail(), "0 bytes"), "%s", ipcx_errdetail());
	if (r == 0)
		ipcx_close(c);
	r = ipcx_listen(u, 0, &c);
	cr_expect_eq(r, -EEXIST, "a new listener: %d %s", r, ipcx_errdetail());
	if (r == 0)
		ipcx_close(c);
	t_post(&go);
	int st = t_join(lis, T_GUARD_MS);
	bool gone = shm_open(name, O_RDONLY, 0) < 0 && errno == ENOENT;
	if (!gone)
		shm_unlink(name);
	t_sync_close(&ready);
	t_sync_close(&go);
	cr_expect_eq(st, 0, "the listener's close after the cut: exit status %d", st);
	cr_expect(gone, "the listener's close removed its name");
}
