/*
 * The ring under stress: many producers and consumers in separate processes
 * (every message delivered exactly once), processes killed with SIGKILL at
 * arbitrary points (the ring goes on and its counters account for every
 * message), and a segment scribbled on (-EBADMSG, never a crash).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/ring.h"
#include "tsupport.h"

struct msg {
	uint32_t producer, seq, len, sum;
	uint8_t fill[200];
};

static uint32_t fill_sum(const struct msg *m)
{
	uint32_t s = m->producer * 131u + m->seq;
	for (uint32_t i = 0; i < m->len; i++)
		s = s * 31u + m->fill[i];
	return s;
}

static size_t make_msg(struct msg *m, uint32_t producer, uint32_t seq)
{
	m->producer = producer;
	m->seq = seq;
	m->len = (seq * 37u + producer) % sizeof(m->fill);
	for (uint32_t i = 0; i < m->len; i++)
		m->fill[i] = (uint8_t)(seq + i);
	m->sum = fill_sum(m);
	return offsetof(struct msg, fill) + m->len;
}

static bool msg_ok(const struct msg *m, ssize_t n)
{
	return n >= (ssize_t)offsetof(struct msg, fill) && m->len <= sizeof(m->fill) &&
	       (size_t)n == offsetof(struct msg, fill) + m->len && m->sum == fill_sum(m);
}

/* Shared between the test and its children (MAP_SHARED before fork). */
struct board {
	_Atomic uint32_t confirmed[8]; /* per producer: messages whose send returned */
	_Atomic uint32_t bad;          /* malformed messages seen */
	_Atomic uint32_t count[8][1 << 17];
};

static struct board *board_new(void)
{
	void *m = mmap(NULL, sizeof(struct board), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	return m;
}

struct role {
	const char *url;
	struct board *b;
	uint32_t id, n; /* producer id and messages (n = 0: until killed) */
	struct t_sync *sync;
};

static int producer(void *arg)
{
	struct role *a = arg;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 1;
	struct msg m;
	for (uint32_t i = 0; a->n == 0 || i < a->n; i++) {
		if (i >= (1u << 17))
			return 0;
		size_t len = make_msg(&m, a->id, i);
		if (ipcx_send(c, &m, len, T_GUARD_MS) != (ssize_t)len)
			return 2;
		atomic_store(&a->b->confirmed[a->id], i + 1);
	}
	ipcx_close(c);
	return 0;
}

static int consumer(void *arg)
{
	struct role *a = arg;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 1;
	struct msg m;
	uint32_t got = 0;
	for (;;) {
		ssize_t n = ipcx_recv(c, &m, sizeof(m), T_GUARD_MS);
		if (n == 0)
			break; /* the stop message */
		if (n < 0)
			return 2;
		if (!msg_ok(&m, n) || m.producer >= 8 || m.seq >= (1u << 17)) {
			atomic_fetch_add(&a->b->bad, 1);
			continue;
		}
		atomic_fetch_add(&a->b->count[m.producer][m.seq], 1);
		if (a->sync && ++got == 2000)
			t_post(a->sync); /* it is running: the test may kill now */
	}
	ipcx_close(c);
	return 0;
}

static void stress(const char *opts, int np, int nc, uint32_t n)
{
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s?%s", t_name(), opts);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0, "%s", ipcx_errdetail());
	struct board *b = board_new();
	struct role roles[8];
	pid_t pids[8];
	for (int i = 0; i < nc; i++) {
		roles[i] = (struct role){ u, b, 0, 0, NULL };
		pids[i] = t_spawn(consumer, &roles[i]);
	}
	for (int i = 0; i < np; i++) {
		roles[nc + i] = (struct role){ u, b, (uint32_t)i, n, NULL };
		pids[nc + i] = t_spawn(producer, &roles[nc + i]);
	}
	for (int i = 0; i < np; i++)
		cr_assert_eq(t_join(pids[nc + i], 300000), 0, "producer %d", i);
	for (int i = 0; i < nc; i++)
		cr_assert_eq(ipcx_send(l, "", 0, T_GUARD_MS), 0);
	for (int i = 0; i < nc; i++)
		cr_assert_eq(t_join(pids[i], 300000), 0, "consumer %d", i);
	cr_expect_eq(atomic_load(&b->bad), 0);
	for (int p = 0; p < np; p++)
		for (uint32_t s = 0; s < n; s++)
			cr_assert_eq(atomic_load(&b->count[p][s]), 1, "message %d/%u delivered %u times",
				     p, s, atomic_load(&b->count[p][s]));
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, (uint64_t)np * n + (uint64_t)nc);
	cr_expect_eq(st.received, st.sent);
	cr_expect_eq(st.dropped, 0);
	cr_expect_eq(st.depth, 0);
	ipcx_close(l);
	munmap(b, sizeof(*b));
}

Test(ring, mpmc_exactly_once)
{
	stress("capacity=16384&max=256", 3, 3, 20000);
}

Test(ring, mpmc_exactly_once_spinless)
{
	stress("capacity=4096&max=256&spin=0", 2, 2, 5000);
}

Test(ring, spsc_in_order)
{
	stress("capacity=8192&max=256&spsc=1", 1, 1, 50000);
}

/* The smallest ring (4 cells): every lap wraps, often with a pad. */
static int tiny_producer(void *arg)
{
	const char *u = arg;
	ipcx_chan *c;
	if (ipcx_dial(u, 0, &c) < 0)
		return 1;
	uint8_t m[64];
	for (uint32_t i = 0; i < 5000; i++) {
		size_t len = i % 65;
		for (size_t k = 0; k < len; k++)
			m[k] = (uint8_t)(i + k);
		if (ipcx_send(c, m, len, T_GUARD_MS) != (ssize_t)len)
			return 2;
	}
	ipcx_close(c);
	return 0;
}

static void tiny_ring(const char *opts)
{
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s?%s", t_name(), opts);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0, "%s", ipcx_errdetail());
	pid_t p = t_spawn(tiny_producer, u);
	for (uint32_t i = 0; i < 5000; i++) {
		uint8_t m[64];
		ssize_t n = ipcx_recv(l, m, sizeof(m), T_GUARD_MS);
		cr_assert_eq(n, (ssize_t)(i % 65), "message %u: %zd %s", i, n, ipcx_errdetail());
		for (ssize_t k = 0; k < n; k++)
			cr_assert_eq(m[k], (uint8_t)(i + (uint32_t)k), "message %u byte %zd", i, k);
	}
	cr_assert_eq(t_join(p, T_GUARD_MS), 0);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, 5000);
	cr_expect_eq(st.received, 5000);
	ipcx_close(l);
}

Test(ring, smallest_ring_spsc)
{
	tiny_ring("capacity=256&max=64&spsc=1");
}

Test(ring, smallest_ring_mpmc)
{
	tiny_ring("capacity=256&max=64");
}

static void kill_rounds(const char *opts, int np, int nc)
{
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s?%s", t_name(), opts);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0);
	struct board *b = board_new();
	srand((unsigned)getpid());
	int consumer_kills = 0;
	for (int round = 0; round < 4; round++) {
		struct t_sync running;
		t_sync_init(&running);
		struct role roles[4];
		pid_t pids[4];
		int n = np + nc;
		for (int i = 0; i < np; i++)
			roles[i] = (struct role){ u, b, (uint32_t)(round * np + i), 0, NULL };
		for (int i = np; i < n; i++)
			roles[i] = (struct role){ u, b, 0, 0, &running };
		for (int i = 0; i < n; i++)
			pids[i] = t_spawn(i < np ? producer : consumer, &roles[i]);
		for (int i = np; i < n; i++)
			cr_assert(t_wait_post(&running, T_GUARD_MS));
		int first = rand() % n;
		for (int i = 0; i < n; i++)
			kill(pids[(first + i) % n], SIGKILL);
		for (int i = 0; i < n; i++)
			cr_assert_eq(t_join(pids[i], T_GUARD_MS), 128 + SIGKILL);
		consumer_kills += nc;
		t_sync_close(&running);
	}
	/* Drain what is left; the dead peers' half-done steps are repaired. */
	struct msg m;
	ssize_t n;
	while ((n = ipcx_recv(l, &m, sizeof(m), 0)) >= 0) {
		cr_assert(msg_ok(&m, n));
		atomic_fetch_add(&b->count[m.producer][m.seq], 1);
	}
	cr_expect(n == -EAGAIN || n == -EPIPE, "%zd", n);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	/*
	 * Every message is accounted for, exactly: wherever a process was
	 * killed, its successors tell whether it had counted (ring_int.h,
	 * "Counting").
	 */
	cr_expect_eq(st.depth, 0);
	cr_expect_eq(st.sent, st.received + st.dropped, "sent %llu received %llu dropped %llu",
		     (unsigned long long)st.sent, (unsigned long long)st.received,
		     (unsigned long long)st.dropped);
	cr_expect_eq(st.peers, 1, "the dead are not counted");
	if (getenv("RING_VERBOSE"))
		fprintf(stderr, "%s: sent %llu received %llu dropped %llu\n", opts,
			(unsigned long long)st.sent, (unsigned long long)st.received,
			(unsigned long long)st.dropped);
	cr_expect_eq(atomic_load(&b->bad), 0, "no torn message delivered");
	uint64_t missing = 0;
	for (int p = 0; p < 8; p++) {
		uint32_t conf = atomic_load(&b->confirmed[p]);
		for (uint32_t s = 0; s < (1u << 17); s++) {
			uint32_t c = atomic_load(&b->count[p][s]);
			cr_assert_leq(c, 1, "message %d/%u delivered %u times", p, s, c);
			missing += s < conf && c == 0;
		}
	}
	/* A consumer killed after recv() returned but before it noted the message. */
	cr_expect_leq(missing, st.dropped + (uint64_t)consumer_kills, "%llu lost, %llu dropped",
		      (unsigned long long)missing, (unsigned long long)st.dropped);
	/* And the ring still works, for a new producer and consumer. */
	memset(b->confirmed, 0, sizeof(b->confirmed));
	memset(b->count, 0, sizeof(b->count));
	struct role pr = { u, b, 7, 3000, NULL }, cr = { u, b, 0, 0, NULL };
	pid_t pc = t_spawn(consumer, &cr), pp = t_spawn(producer, &pr);
	cr_assert_eq(t_join(pp, T_GUARD_MS), 0);
	/* The stop message, after the producer (an SPSC ring has one at a time). */
	cr_assert_eq(ipcx_send(l, "", 0, T_GUARD_MS), 0);
	cr_assert_eq(t_join(pc, T_GUARD_MS), 0);
	for (uint32_t s = 0; s < 3000; s++)
		cr_assert_eq(atomic_load(&b->count[7][s]), 1);
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, st.received + st.dropped);
	ipcx_close(l);
	munmap(b, sizeof(*b));
}

/*
 * Rounds of producers and consumers, all killed with SIGKILL while they
 * run, so kills land in the middle of claims, copies and releases.
 * Afterwards the ring must still work, no message may have been delivered
 * twice, the counters must balance exactly, and every message a producer
 * was told was sent must have been received or counted as dropped.
 * tests/test_ring_crash.c kills at each step in turn.
 */
Test(ring, sigkill_anywhere)
{
	kill_rounds("capacity=16384&max=256", 2, 2);
}

Test(ring, sigkill_anywhere_spsc)
{
	kill_rounds("capacity=16384&max=256&spsc=1", 1, 1);
}

/* ---- corruption ------------------------------------------------------------ */

static void *map_segment(const char *name, size_t *len)
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

/* A listening ring (URL in u) and its segment, mapped for the test to scribble on. */
struct scribble {
	char u[256];
	ipcx_chan *l;
	struct ring_hdr *h;
	size_t len;
};

static void scribble_open(struct scribble *sc, const char *opts)
{
	const char *name = t_name();
	snprintf(sc->u, sizeof(sc->u), "shm:/%s%s", name, opts);
	cr_assert_eq(ipcx_listen(sc->u, 0, &sc->l), 0);
	sc->h = map_segment(name, &sc->len);
}

static void scribble_close(struct scribble *sc)
{
	munmap(sc->h, sc->len);
	ipcx_close(sc->l);
}

static void expect_dial(const char *u, int want)
{
	ipcx_chan *d = NULL;
	int r = ipcx_dial(u, 0, &d);
	cr_expect_eq(r, want, "dial: %s %s", ipcx_strerror(r), ipcx_errdetail());
	ipcx_close(d);
}

Test(ring, corrupt_header_refused)
{
	struct scribble sc;
	scribble_open(&sc, "");
	struct ring_hdr *h = sc.h;
	const char *u = sc.u;
	struct ring_hdr save = *h;
	h->magic ^= 1;
	expect_dial(u, -EBADMSG);
	h->magic = save.magic;
	h->version = 99;
	expect_dial(u, -EBADMSG);
	h->version = save.version;
	h->ncells = 1u << 30;
	expect_dial(u, -EBADMSG);
	h->ncells = save.ncells;
	h->max_msg = h->ncells * 64;
	expect_dial(u, -EBADMSG);
	h->max_msg = save.max_msg;
	h->data_off += 4096;
	expect_dial(u, -EBADMSG);
	h->data_off = save.data_off;
	expect_dial(u, 0);
	scribble_close(&sc);
}

Test(ring, corrupt_indices_are_ebadmsg)
{
	struct scribble sc;
	scribble_open(&sc, "");
	struct ring_hdr *h = sc.h;
	ipcx_chan *l = sc.l;
	_Atomic uint64_t *meta = (_Atomic uint64_t *)((char *)h + h->meta_off);
	char buf[64];
	cr_assert_eq(ipcx_send(l, "abc", 3, 0), 3);
	/* A length beyond the maximum. */
	uint64_t m = atomic_load(&meta[0]);
	atomic_store(&meta[0], (m & ~0xffffffffull) | 0x3fffffff);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EBADMSG);
	/* More cells than the ring has. */
	atomic_store(&meta[0], (uint64_t)1 << 52 | 3);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EBADMSG);
	atomic_store(&meta[0], m);
	/* The head behind the tail, or too far ahead of it. */
	uint64_t head = atomic_load(&h->head);
	atomic_store(&h->tail, 5 << 8); /* tail: pos << 8 */
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EBADMSG);
	atomic_store(&h->tail, 0);
	atomic_store(&h->head, (uint64_t)(h->ncells + 10) << 8);
	cr_expect_eq(ipcx_send(l, "x", 1, 0), -EBADMSG);
	atomic_store(&h->head, head);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), 3, "repaired by hand, it works again");
	scribble_close(&sc);
}

/* Random bytes anywhere in the shared state: any answer but a crash or hang. */
Test(ring, scribble_never_crashes)
{
	struct scribble sc;
	scribble_open(&sc, "?capacity=4096&max=512");
	struct ring_hdr *h = sc.h;
	ipcx_chan *l = sc.l, *d;
	cr_assert_eq(ipcx_dial(sc.u, 0, &d), 0);
	size_t shared_end = h->data_off; /* header, seq and meta: all the control state */
	srand(12345);
	char buf[512];
	int bad = 0;
	for (int i = 0; i < 3000; i++) {
		if (i % 100 == 0) {
			/* A fresh, valid ring state now and then, with messages in it. */
			atomic_store(&h->head, 0);
			atomic_store(&h->tail, 0);
			atomic_store(&h->rel, 0);
			memset((char *)h + h->seq_off, 0, h->data_off - h->seq_off);
			for (int k = 0; k < 5; k++)
				ipcx_send(d, buf, (size_t)(k * 100), 0);
		}
		size_t off = offsetof(struct ring_hdr, rx_waiters) +
			     (size_t)rand() % (shared_end - offsetof(struct ring_hdr, rx_waiters));
		/* Leave the peer table alone: random pids would be signalled with 0. */
		if (off >= offsetof(struct ring_hdr, peers) && off < sizeof(struct ring_hdr))
			continue;
		((volatile uint8_t *)h)[off] = (uint8_t)rand();
		ssize_t r = ipcx_recv(l, buf, sizeof(buf), 0);
		cr_assert(r >= 0 || r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r == -EPIPE,
			  "recv: %zd", r);
		r = ipcx_send(d, buf, (size_t)(rand() % 512), 0);
		cr_assert(r >= 0 || r == -EAGAIN || r == -EBADMSG, "send: %zd", r);
		bad += r == -EBADMSG;
	}
	cr_expect_gt(bad, 0, "the scribbles were noticed");
	ipcx_close(d);
	scribble_close(&sc);
}
