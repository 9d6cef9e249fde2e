/*
 * A process killed at every step of the ring's protocol, one step at a time.
 *
 * This program links its own copy of the ring (src/shm/ring*.c, the list
 * IPCX_RING_SRC) built with IPCX_CRASHPOINTS (tests/CMakeLists.txt): a
 * child sets ipcx__crash_point and the ring kills it with SIGKILL the
 * (ipcx__crash_after + 1)-th time it passes that point, between two stores
 * a random kill only rarely hits.
 * Each case then checks the exact outcome: which messages arrive, each at
 * most once and never torn, and counters that balance to the message
 * (sent = received + dropped, nothing left).  tests/test_ring.c kills at
 * random points on top of this.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <ipcx.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "shm/ring.h"
#include "tsupport.h"

#define NMSG   10u /* the first phase's messages */
#define NEXTRA 5u  /* sent by a second, healthy producer */
#define KILLED 3u  /* the step dies in the 4th operation (index 3) */

struct msg {
	uint32_t id, sum;
	uint8_t fill[40];
};

static uint32_t msg_sum(const struct msg *m)
{
	uint32_t s = m->id * 2654435761u;
	for (size_t i = 0; i < sizeof(m->fill); i++)
		s = s * 31u + m->fill[i];
	return s;
}

static void msg_make(struct msg *m, uint32_t id)
{
	m->id = id;
	for (size_t i = 0; i < sizeof(m->fill); i++)
		m->fill[i] = (uint8_t)(id + i);
	m->sum = msg_sum(m);
}

/* Shared with the children (MAP_SHARED before fork). */
struct board {
	_Atomic uint32_t confirmed[128]; /* its send returned */
	_Atomic uint32_t got[128];       /* a receive returned it */
	_Atomic uint32_t bad;            /* torn or unknown messages */
};

enum scenario {
	S_PRODUCER, /* a producer dies sending message KILLED; another sends NEXTRA more */
	S_CONSUMER, /* a consumer dies receiving message KILLED */
	S_OVERWRITE, /* a producer dies taking the oldest message off a full ring */
	S_REPAIR_CLAIM, /* a producer dies with a claimed record; its repairer dies too */
	S_REPAIR_READ, /* a consumer dies holding a record; its repairer dies too */
};

struct crash_case {
	char name[24];
	enum scenario sc;
	int point;
	bool spsc;
	/* Expected afterwards. */
	uint64_t sent, received, dropped;
	uint32_t inflight_got; /* times message KILLED was handed to a caller (0 or 1) */
};

struct child {
	const char *url;
	struct board *b;
	int point;
	unsigned after;
	uint32_t first, n; /* ids first .. first + n - 1 (producers) */
};

static void arm(const struct child *a)
{
	ipcx__crash_point = a->point;
	ipcx__crash_after = a->after;
}

static int producer(void *arg)
{
	struct child *a = arg;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 1;
	arm(a);
	for (uint32_t i = a->first; i < a->first + a->n; i++) {
		struct msg m;
		msg_make(&m, i);
		if (ipcx_send(c, &m, sizeof(m), T_GUARD_MS) != (ssize_t)sizeof(m))
			return 2;
		atomic_store(&a->b->confirmed[i], 1);
	}
	ipcx_close(c);
	return 0;
}

static void record(struct board *b, const struct msg *m, ssize_t n)
{
	if (n != (ssize_t)sizeof(*m) || m->id >= 128 || m->sum != msg_sum(m))
		atomic_fetch_add(&b->bad, 1);
	else
		atomic_fetch_add(&b->got[m->id], 1);
}

/* Receives a->n messages (or until killed). */
static int consumer(void *arg)
{
	struct child *a = arg;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 1;
	arm(a);
	for (uint32_t i = 0; i < a->n; i++) {
		struct msg m;
		ssize_t n = ipcx_recv(c, &m, sizeof(m), T_GUARD_MS);
		if (n < 0)
			return 2;
		record(a->b, &m, n);
	}
	ipcx_close(c);
	return 0;
}

static void run(pid_t (*spawn)(int (*)(void *), void *), int (*fn)(void *), struct child *a,
		int want)
{
	pid_t p = spawn(fn, a);
	int st = t_join(p, T_GUARD_MS);
	cr_assert_eq(st, want, "child (crash point %d) exited %d, expected %d", a->point, st, want);
}

/* Take everything the ring still has; repairs happen on the way. */
static void drain(ipcx_chan *l, struct board *b)
{
	for (int empty = 0; empty < 3;) {
		struct msg m;
		ssize_t n = ipcx_recv(l, &m, sizeof(m), 0);
		if (n == -EAGAIN) {
			empty++;
			continue;
		}
		cr_assert_geq(n, 0, "drain: %s %s", ipcx_strerror((int)n), ipcx_errdetail());
		record(b, &m, n);
		empty = 0;
	}
}

static void send_ids(ipcx_chan *l, struct board *b, uint32_t first, uint32_t n)
{
	for (uint32_t i = first; i < first + n; i++) {
		struct msg m;
		msg_make(&m, i);
		cr_assert_eq(ipcx_send(l, &m, sizeof(m), 0), (ssize_t)sizeof(m), "%s",
			     ipcx_errdetail());
		atomic_store(&b->confirmed[i], 1);
	}
}

static void scenario(const struct crash_case *k, const char *u, ipcx_chan *l, struct board *b)
{
	const int killed = 128 + SIGKILL;
	struct child a = { u, b, k->point, KILLED, 0, NMSG };
	struct child healthy = { u, b, -1, 0, 100, NEXTRA };
	switch (k->sc) {
	case S_PRODUCER:
		run(t_spawn, producer, &a, killed);
		run(t_spawn, producer, &healthy, 0);
		break;
	case S_CONSUMER:
		send_ids(l, b, 0, NMSG);
		run(t_spawn, consumer, &a, killed);
		break;
	case S_OVERWRITE: /* the ring holds 16 one-cell messages */
		send_ids(l, b, 0, 16);
		a.after = 0, a.first = 100, a.n = 1;
		run(t_spawn, producer, &a, killed);
		break;
	case S_REPAIR_CLAIM: {
		a.point = CP_CLAIMED;
		run(t_spawn, producer, &a, killed);
		/* Takes 0..2, then repairs the dead producer's record and dies there. */
		struct child r = { u, b, k->point, 0, 0, NMSG };
		run(t_spawn, consumer, &r, killed);
		break;
	}
	case S_REPAIR_READ: {
		send_ids(l, b, 0, NMSG);
		a.point = CP_TAIL_MOVED;
		run(t_spawn, consumer, &a, killed);
		/* Takes 4..9, then (waiting) repairs the dead consumer's record and dies. */
		struct child r = { u, b, k->point, 0, 0, NMSG };
		run(t_spawn, consumer, &r, killed);
		break;
	}
	}
	drain(l, b);
}

/* How many times message i should have been handed to a caller. */
static uint32_t expected_got(const struct crash_case *k, struct board *b, uint32_t i)
{
	if (k->sc == S_OVERWRITE)
		return i == 0 ? 0 : atomic_load(&b->confirmed[i]); /* the oldest was dropped */
	if (i == KILLED)
		return k->inflight_got;
	return atomic_load(&b->confirmed[i]);
}

static void check(const struct crash_case *k, ipcx_chan *l, struct board *b)
{
	cr_expect_eq(atomic_load(&b->bad), 0, "no torn or unknown message");
	for (uint32_t i = 0; i < 128; i++) {
		uint32_t got = atomic_load(&b->got[i]), want = expected_got(k, b, i);
		cr_expect_eq(got, want, "%s: message %u handed out %u times, expected %u", k->name, i,
			     got, want);
	}
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.sent, k->sent, "%s: sent %llu", k->name, (unsigned long long)st.sent);
	cr_expect_eq(st.received, k->received, "%s: received %llu", k->name,
		     (unsigned long long)st.received);
	cr_expect_eq(st.dropped, k->dropped, "%s: dropped %llu", k->name,
		     (unsigned long long)st.dropped);
	cr_expect_eq(st.depth, 0);
}

ParameterizedTestParameters(ring_crash, every_step)
{
	static struct crash_case cases[] = {
		/* A producer dies in its 4th send; a healthy one sends NEXTRA more. */
		{ "CP_HEAD_TAGGED", S_PRODUCER, CP_HEAD_TAGGED, false, 3 + NEXTRA, 3 + NEXTRA, 0, 0 },
		{ "CP_CLAIMED", S_PRODUCER, CP_CLAIMED, false, 4 + NEXTRA, 3 + NEXTRA, 1, 0 },
		{ "CP_TX_COUNTED", S_PRODUCER, CP_TX_COUNTED, false, 4 + NEXTRA, 4 + NEXTRA, 0, 1 },
		{ "CP_COMMITTED", S_PRODUCER, CP_COMMITTED, false, 4 + NEXTRA, 4 + NEXTRA, 0, 1 },
		{ "CP_SPSC_COMMITTED", S_PRODUCER, CP_SPSC_COMMITTED, true, 4 + NEXTRA, 4 + NEXTRA, 0,
		  1 },
		{ "CP_SPSC_SENT", S_PRODUCER, CP_SPSC_SENT, true, 4 + NEXTRA, 4 + NEXTRA, 0, 1 },
		/*
		 * A consumer dies in its 4th receive; the listener drains the rest.
		 * The message comes back, or it was counted: received (the dead
		 * consumer had finished with it) or dropped (it died holding it).
		 */
		{ "CP_TAKEN", S_CONSUMER, CP_TAKEN, false, NMSG, NMSG, 0, 1 },
		{ "CP_TAIL_MOVED", S_CONSUMER, CP_TAIL_MOVED, false, NMSG, NMSG - 1, 1, 0 },
		{ "CP_RX_COUNTED", S_CONSUMER, CP_RX_COUNTED, false, NMSG, NMSG, 0, 0 },
		{ "CP_SPSC_RECEIVED", S_CONSUMER, CP_SPSC_RECEIVED, true, NMSG, NMSG, 0, 0 },
		{ "CP_SPSC_TAIL", S_CONSUMER, CP_SPSC_TAIL, true, NMSG, NMSG, 0, 0 },
		/* policy=overwrite: 16 fill the ring, the oldest is taken off and counted. */
		{ "CP_DR_COUNTED", S_OVERWRITE, CP_DR_COUNTED, false, 16, 15, 1, 0 },
		/* Repairers killed half-way: the next one finishes, counting once. */
		{ "CP_FIX_DR claimed", S_REPAIR_CLAIM, CP_FIX_DR, false, 4, 3, 1, 0 },
		{ "CP_FIX_TX", S_REPAIR_CLAIM, CP_FIX_TX, false, 4, 3, 1, 0 },
		{ "CP_SKIPPING", S_REPAIR_CLAIM, CP_SKIPPING, false, 4, 3, 1, 0 },
		{ "CP_FIX_DR reading", S_REPAIR_READ, CP_FIX_DR, false, NMSG, NMSG - 1, 1, 0 },
	};
	return cr_make_param_array(struct crash_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct crash_case *k, ring_crash, every_step)
{
	char u[256];
	const char *opts = k->sc == S_OVERWRITE ? "capacity=1024&max=64&policy=overwrite"
						: "capacity=4096&max=64";
	snprintf(u, sizeof(u), "shm:/%s?%s%s", t_name(), opts, k->spsc ? "&spsc=1" : "");
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0, "%s: %s", k->name, ipcx_errdetail());
	struct board *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	cr_assert_neq(b, MAP_FAILED);
	scenario(k, u, l, b);
	check(k, l, b);
	/* And the ring goes on. */
	send_ids(l, b, 120, 1);
	struct msg m;
	cr_expect_eq(ipcx_recv(l, &m, sizeof(m), 0), (ssize_t)sizeof(m), "%s: %s", k->name,
		     ipcx_errdetail());
	ipcx_close(l);
	munmap(b, sizeof(*b));
}
