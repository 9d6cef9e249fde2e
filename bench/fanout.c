/*
 * Fan-out cases: one publisher and p->subs subscriber processes, the same
 * for every implementation (bh_fan_ops).  The publisher runs on the first
 * of the two cores, every subscriber on the second: the publisher has a
 * core of its own and the subscribers share the other (the kernel's
 * scheduler time-slices them), whatever the library.
 *
 * Every message starts with its number and the time it was published
 * (CLOCK_MONOTONIC, the same clock on every core):
 *   BH_THR  the publisher sends p->count messages as fast as the library
 *           lets it (after p->warmup untimed ones); each subscriber counts
 *           what it received and when the last came.  Result: messages per
 *           second received by a subscriber, from the first message
 *           published to its last receipt, the mean over the subscribers
 *           (in the note: the slowest, and the publisher's CPU time per
 *           message and its rate: its cost per message, which under
 *           policy=drop must not grow with the subscribers); messages that
 *           never came, summed, in lost.
 *   BH_LAT  paced: the publisher sends one message and waits until every
 *           subscriber has taken it (a counter in shared memory, not part
 *           of the time), then the next.  Result: publish-to-receive
 *           latency, every subscriber's samples together.
 * The processes meet in a MAP_SHARED page made before they are forked.
 */
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAN_HDR     16u      /* number, time */
#define FAN_WARM    (1ull << 63) /* a warm-up message's number carries this bit */
#define RECV_SLICE  100      /* ms a subscriber waits before looking at pub_done */
#define ACK_WAIT_NS 200000000u /* a paced message nobody acknowledges is lost after this */
#define FAN_CLOCK_EVERY 64   /* BH_THR: a subscriber reads the clock at every 64th message */

enum { F_INIT, F_READY, F_DONE, F_FAILED };

struct fan_sub {
	_Atomic int state;
	uint64_t got, lost, t_last;
	struct bh_result res; /* its notes */
	struct bh_hist hist;
};

struct fan_shm {
	_Atomic int pub_state, go, pub_done, subs_ready;
	_Atomic uint64_t acks;
	uint64_t t0, t_pub_end; /* the first timed message published, the last */
	uint64_t pub_cpu_ns;    /* the publisher's CPU time over the timed messages */
	char addr[256];
	struct bh_result pub_res;
	struct fan_sub sub[BH_FAN_MAX];
};

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Wait, yielding the core, until *w reaches want or the guard passes; false then. */
static bool await(_Atomic int *w, int want, uint64_t deadline)
{
	while (atomic_load(w) < want) {
		if (bh_now() > deadline)
			return false;
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	return true;
}

/* ---- the publisher ----------------------------------------------------------------------- */

static int publish(const struct bh_fan_ops *ops, struct bh_fan *f, uint8_t *buf, uint64_t no)
{
	put64(buf, no);
	put64(buf + 8, bh_now());
	return ops->pub_send(f, buf, f->p->size);
}

/*
 * The process's CPU time: what publishing costs it, whatever else the
 * machine runs (wall time on a shared 2-core machine counts the others'
 * turns on its CPU).  The publisher's library threads count too.
 */
static uint64_t cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Paced: one message, then wait until every subscriber has taken it. */
static int pub_paced(const struct bh_fan_ops *ops, struct bh_fan *f, struct fan_shm *s,
		     uint8_t *buf)
{
	uint64_t n = f->p->warmup + f->p->count, subs = (uint64_t)f->p->subs;
	for (uint64_t i = 0; i < n; i++) {
		int r = publish(ops, f, buf, i < f->p->warmup ? i | FAN_WARM : i - f->p->warmup);
		if (r < 0)
			return r;
		uint64_t until = bh_now() + ACK_WAIT_NS;
		while (atomic_load(&s->acks) < subs * (i + 1) && bh_now() < until)
			sched_yield(); /* a library's own threads may share this core */
		/* A message some subscriber never got: count on as if it had. */
		uint64_t a = atomic_load(&s->acks);
		if (a < subs * (i + 1))
			atomic_compare_exchange_strong(&s->acks, &a, subs * (i + 1));
	}
	return 0;
}

static int pub_stream(const struct bh_fan_ops *ops, struct bh_fan *f, struct fan_shm *s,
		      uint8_t *buf)
{
	for (uint64_t i = 0; i < f->p->warmup; i++) {
		int r = publish(ops, f, buf, i | FAN_WARM);
		if (r < 0)
			return r;
	}
	uint64_t cpu0 = cpu_now();
	s->t0 = bh_now();
	for (uint64_t i = 0; i < f->p->count; i++) {
		int r = publish(ops, f, buf, i);
		if (r < 0)
			return r;
	}
	s->t_pub_end = bh_now();
	s->pub_cpu_ns = cpu_now() - cpu0;
	return 0;
}

/* Every subscriber is open: 0, or -ETIMEDOUT (past the guard, or one failed). */
static int subs_open(const struct bh_fan *f, struct fan_shm *s, uint64_t guard)
{
	while (atomic_load(&s->subs_ready) < f->p->subs) {
		for (int i = 0; i < f->p->subs; i++)
			if (atomic_load(&s->sub[i].state) == F_FAILED)
				return -ETIMEDOUT;
		if (bh_now() > guard)
			return -ETIMEDOUT;
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int pub_side(const struct bh_fan_ops *ops, struct bh_fan *f, struct fan_shm *s)
{
	uint64_t guard = bh_now() + (uint64_t)f->p->timeout_ms * 1000000u;
	uint8_t *buf = calloc(1, f->p->size);
	int r = buf ? ops->pub_open(f) : -ENOMEM;
	if (r == 0) {
		memcpy(s->addr, f->addr, sizeof(s->addr));
		atomic_store(&s->pub_state, F_READY);
		r = subs_open(f, s, guard);
	} else {
		atomic_store(&s->pub_state, F_FAILED);
	}
	if (r == 0 && ops->pub_wait)
		r = ops->pub_wait(f, f->p->subs);
	if (r == 0) {
		atomic_store(&s->go, 1);
		r = f->p->kind == BH_LAT ? pub_paced(ops, f, s, buf) : pub_stream(ops, f, s, buf);
	}
	atomic_store(&s->pub_done, 1);
	/* Stay until the subscribers are done: closing may take queued messages with it. */
	for (int i = 0; i < f->p->subs; i++)
		await(&s->sub[i].state, F_DONE, guard);
	if (r < 0 && f->res->status == BH_OK)
		bh_note(f->res, BH_ERROR, "publisher: %s", strerror(-r));
	ops->close(f);
	free(buf);
	return r;
}

/* ---- a subscriber ----------------------------------------------------------------------- */

static int sub_loop(const struct bh_fan_ops *ops, struct bh_fan *f, struct fan_shm *s,
		    struct fan_sub *me, uint8_t *buf)
{
	uint64_t next = 0, last = f->p->count - 1;
	for (;;) {
		int r = ops->sub_recv(f, buf, f->p->size, RECV_SLICE);
		if (r == -ETIMEDOUT || r == -EAGAIN) {
			if (atomic_load(&s->pub_done))
				break; /* the rest never comes */
			continue;
		}
		if (r < 0)
			return r;
		uint64_t no = get64(buf);
		if (f->p->kind == BH_LAT)
			atomic_fetch_add(&s->acks, 1);
		if (no & FAN_WARM)
			continue;
		if (no < next || no > last)
			return -EBADMSG;
		me->lost += no - next;
		next = no + 1;
		me->got++;
		/*
		 * The time of the last receipt, read at the last message and every
		 * FAN_CLOCK_EVERY (if the last is lost, the rate is over by at most
		 * that many messages' time): a clock read costs as much as taking a
		 * message from a ring (25-100 ns on a virtual machine), which
		 * reading it at every message added to every library's rate.
		 */
		if (f->p->kind == BH_LAT || no == last || me->got % FAN_CLOCK_EVERY == 0) {
			uint64_t now = bh_now();
			me->t_last = now;
			if (f->p->kind == BH_LAT)
				bh_hist_add(&me->hist, now - get64(buf + 8));
		}
		if (no == last)
			return 0;
	}
	me->lost += f->p->count - next;
	return 0;
}

static int sub_side(const struct bh_fan_ops *ops, struct bh_fan *f, struct fan_shm *s)
{
	struct fan_sub *me = &s->sub[f->id];
	uint64_t guard = bh_now() + (uint64_t)f->p->timeout_ms * 1000000u;
	uint8_t *buf = malloc(f->p->size);
	bh_hist_init(&me->hist);
	int r = buf && await(&s->pub_state, F_READY, guard) ? 0 : -ETIMEDOUT;
	if (r == 0 && atomic_load(&s->pub_state) != F_READY)
		r = -ECANCELED; /* the publisher could not open */
	if (r == 0) {
		memcpy(f->addr, s->addr, sizeof(f->addr));
		r = ops->sub_open(f);
	}
	if (r == 0) {
		atomic_fetch_add(&s->subs_ready, 1);
		while (!atomic_load(&s->go) && !atomic_load(&s->pub_done) && bh_now() < guard) {
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
		}
		r = atomic_load(&s->go) ? 0 : -ECANCELED;
	}
	if (r == 0)
		r = sub_loop(ops, f, s, me, buf);
	if (r < 0 && me->res.status == BH_OK)
		bh_note(&me->res, BH_ERROR, "subscriber %d: %s", f->id, strerror(-r));
	atomic_store(&me->state, r < 0 ? F_FAILED : F_DONE);
	ops->close(f);
	free(buf);
	return r;
}

/* ---- the case ---------------------------------------------------------------------------- */

static pid_t fork_one(const struct bh_fan_ops *ops, const struct bh_params *p, int id,
		      struct fan_shm *s)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	if (p->ready_fd && *p->ready_fd > 2)
		close(*p->ready_fd);
	bh_pin(p->cpu[id < 0 ? 0 : 1]);
	struct bh_fan f = { .p = p, .id = id, .arg = ops->arg,
			    .res = id < 0 ? &s->pub_res : &s->sub[id].res };
	int r = id < 0 ? pub_side(ops, &f, s) : sub_side(ops, &f, s);
	_exit(r < 0 ? 1 : 0);
}

/* Every process has exited, been killed past the guard, or the run was stopped. */
static void reap(pid_t *pid, int n, const struct bh_params *p, volatile sig_atomic_t *stop,
		 struct fan_shm *s)
{
	uint64_t deadline = bh_now() + (uint64_t)p->timeout_ms * 1000000u;
	bool told = false;
	for (int i = 0; i < n; i++) {
		while (pid[i] > 0 && waitpid(pid[i], NULL, WNOHANG) == 0) {
			if (!told && atomic_load(&s->go)) {
				bh_signal_ready(p);
				told = true;
			}
			if (bh_now() > deadline || (stop && *stop)) {
				for (int k = 0; k < n; k++)
					if (pid[k] > 0)
						kill(pid[k], SIGKILL);
			}
			struct timespec ts = { 0, 2000000 };
			nanosleep(&ts, NULL);
		}
		pid[i] = 0;
	}
}

static void results(const struct bh_params *p, struct fan_shm *s, struct bh_result *r)
{
	struct bh_hist *all = calloc(1, sizeof(*all));
	double sum = 0, slowest = -1;
	for (int i = 0; i < p->subs; i++) {
		struct fan_sub *me = &s->sub[i];
		if (atomic_load(&me->state) != F_DONE) {
			*r = me->res.status != BH_OK ? me->res : s->pub_res;
			if (r->status == BH_OK)
				bh_note(r, BH_ERROR, "subscriber %d did not finish", i);
			free(all);
			return;
		}
		r->lost += me->lost;
		double secs = (double)(me->t_last - s->t0) / 1e9;
		double rate = me->got && secs > 0 ? (double)me->got / secs : 0;
		sum += rate;
		slowest = slowest < 0 || rate < slowest ? rate : slowest;
		for (unsigned b = 0; all && b < BH_BUCKETS; b++)
			all->bucket[b] += me->hist.bucket[b];
		if (all && me->hist.n) {
			all->min = all->n && all->min < me->hist.min ? all->min : me->hist.min;
			all->max = all->max > me->hist.max ? all->max : me->hist.max;
			all->n += me->hist.n;
			all->sum += me->hist.sum;
		}
	}
	if (s->pub_res.status != BH_OK) {
		*r = s->pub_res;
		free(all);
		return;
	}
	if (p->kind == BH_THR) {
		r->msgs_per_s = sum / p->subs;
		r->bytes_per_s = r->msgs_per_s * (double)p->size;
		r->samples = p->count;
		/* The publisher's own cost per message (CPU time) and rate, whatever the subscribers got. */
		double psecs = (double)(s->t_pub_end - s->t0) / 1e9;
		snprintf(r->note, sizeof(r->note),
			 "publisher %.0f ns CPU/msg, %.0f msg/s; slowest subscriber %.0f msg/s",
			 (double)s->pub_cpu_ns / (double)p->count, psecs > 0 ? (double)p->count / psecs : 0,
			 slowest);
	} else if (all) {
		bh_hist_result(all, r);
	}
	free(all);
}

int bh_fan_run(const struct bh_fan_ops *ops, const struct bh_params *p,
	       volatile sig_atomic_t *stop, struct bh_result *r)
{
	memset(r, 0, sizeof(*r));
	if (p->subs < 1 || p->subs > BH_FAN_MAX || p->size < FAN_HDR || !p->count) {
		bh_note(r, BH_SKIP, "fan-out needs 1 to %d subscribers and %u-byte messages",
			BH_FAN_MAX, FAN_HDR);
		return 0;
	}
	struct fan_shm *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED) {
		bh_note(r, BH_ERROR, "mmap: %s", strerror(errno));
		return -errno;
	}
	pid_t pid[BH_FAN_MAX + 1] = { 0 };
	pid[0] = fork_one(ops, p, -1, s);
	for (int i = 0; i < p->subs && pid[i] > 0; i++)
		pid[i + 1] = fork_one(ops, p, i, s);
	/* Once the publisher goes, every side is open: the objects exist. */
	reap(pid, p->subs + 1, p, stop, s);
	if (stop && *stop)
		bh_note(r, BH_ERROR, "interrupted");
	else
		results(p, s, r);
	munmap(s, sizeof(*s));
	return 0;
}
