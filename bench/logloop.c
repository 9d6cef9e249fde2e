/*
 * The logging rows (docs/log.md, "Performance"): one or two writer
 * processes log 64-byte messages as fast as they can; each call is timed,
 * and the records per second end to end, from the first timed call until
 * every record is in the file.  The same loop drives ipcx's log
 * (bench/logbench.c), write(2), fprintf, and spdlog in its peer program.
 *
 * A log whose calls are cheaper than its backend writes fills up and then
 * runs at its backend's pace: the call cost measured would be the drain's.
 * So the timed burst fits the log's buffer, as it fits spdlog's queue: for
 * ipcx the ring holds the whole burst, and before the burst the writers
 * fill it once and wait until the drain has written it all (its pages are
 * then touched in every process, as spdlog's queue is at its creation).
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bh_logshare {
	_Atomic int drain;      /* 0 starting, 1 open, or -errno */
	_Atomic int stop;       /* the writers are done with it */
	_Atomic uint64_t drained; /* records the drain has written */
	_Atomic uint64_t t_done;  /* when it had written them all */
	_Atomic uint64_t t_end[2]; /* each writer: its records are in the file */
	_Atomic int err[2];
};

size_t bh_log_shared_bytes(const struct bh_params *p)
{
	return sizeof(struct bh_logshare);
}

static void nap(void)
{
	struct timespec ts = { 0, 50000 };
	nanosleep(&ts, NULL);
}

/* Wait for *w to reach at least v; false when the guard passes or the drain failed. */
static bool wait_for(const struct bh_ctx *c, _Atomic uint64_t *w, uint64_t v)
{
	struct bh_logshare *s = c->shared;
	uint64_t deadline = bh_now() + (uint64_t)c->p->timeout_ms * 1000000u;
	while (atomic_load(w) < v) {
		if (atomic_load(&s->drain) < 0 || bh_now() > deadline)
			return false;
		nap();
	}
	return true;
}

/* Records each writer logs in the timed burst: more than round trips (cheap calls). */
uint64_t bh_log_count(const struct bh_params *p)
{
	return p->count * 20;
}

/* The drain, a process of its own: runs until the writers say stop. */
static void drain_main(struct bh_ctx *c, const struct bh_logops *lo, uint64_t target)
{
	struct bh_logshare *s = c->shared;
	void *d = NULL;
	int r = lo->drain_open(c, &d);
	atomic_store(&s->drain, r < 0 ? r : 1);
	while (r >= 0 && !atomic_load(&s->stop)) {
		int64_t n = lo->drain_run(d);
		if (n < 0) {
			atomic_store(&s->drain, (int)n);
			break;
		}
		uint64_t got = atomic_fetch_add(&s->drained, (uint64_t)n) + (uint64_t)n;
		uint64_t zero = 0;
		if (got >= target)
			atomic_compare_exchange_strong(&s->t_done, &zero, bh_now());
	}
	if (d)
		lo->drain_close(d);
	_exit(0);
}

void bh_log_backend_cpus(const struct bh_params *p, int writers)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = writers == 1; i < 2; i++)
		if (p->cpu[i] >= 0)
			CPU_SET(p->cpu[i], &set);
	if (CPU_COUNT(&set))
		sched_setaffinity(0, sizeof(set), &set);
}

static pid_t start_drain(struct bh_ctx *c, const struct bh_logops *lo, int writers,
			 uint64_t target)
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		bh_log_backend_cpus(c->p, writers);
		drain_main(c, lo, target);
	}
	return pid;
}

/* A burst of n timed calls on w (h may be NULL: not recorded). */
struct burst {
	const struct bh_logops *lo;
	void *w;
	uint64_t n;
	struct bh_hist *h;
	int err;
};

static void *burst(void *arg)
{
	struct burst *b = arg;
	char msg[64];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	for (uint64_t i = 0; i < b->n && !b->err; i++) {
		uint64_t t0 = bh_now();
		b->err = b->lo->log(b->w, msg, sizeof(msg));
		if (b->h)
			bh_hist_add(b->h, bh_now() - t0);
	}
	return NULL;
}

/*
 * One writer process: open, fill (warm-up), wait, then the timed burst,
 * from threads threads sharing the one logger (the second one's calls are
 * not recorded).
 */
static int writer(struct bh_ctx *c, const struct bh_logops *lo, int threads, bool timed,
		  uint64_t warm, uint64_t n, uint64_t warm_all, struct bh_hist *h,
		  uint64_t *t_start)
{
	struct bh_logshare *s = c->shared;
	struct burst b[2] = { { lo, NULL, warm, NULL, 0 } };
	int err = lo->open(c, &b[0].w);
	if (!err)
		burst(&b[0]);
	err = err ? err : b[0].err;
	/* The drain has the warm-up out: the burst finds the log empty. */
	if (!err && lo->drain_open && !wait_for(c, &s->drained, warm_all))
		err = -ETIMEDOUT;
	if (!err)
		err = bh_ctl_sync(c);
	*t_start = bh_now();
	b[0] = (struct burst){ lo, b[0].w, n, timed ? h : NULL, err };
	b[1] = (struct burst){ lo, b[0].w, n, NULL, err };
	pthread_t th;
	bool two = !err && threads == 2 && pthread_create(&th, NULL, burst, &b[1]) == 0;
	if (!err && threads == 2 && !two)
		err = -EAGAIN;
	burst(&b[0]);
	if (two)
		pthread_join(th, NULL);
	err = err ? err : b[0].err ? b[0].err : b[1].err;
	int e = b[0].w ? lo->close(b[0].w) : 0;
	atomic_store(&s->t_end[c->side], bh_now());
	return err ? err : e;
}

int bh_log_loop(struct bh_ctx *c, const struct bh_logops *lo, int writers, int threads,
		struct bh_hist *h, struct bh_result *r)
{
	struct bh_logshare *s = c->shared;
	uint64_t n = bh_log_count(c->p);
	uint64_t warm = lo->warmup ? lo->warmup(c, writers) : n / 10;
	uint64_t target = (uint64_t)writers * (warm + (uint64_t)threads * n);
	pid_t drain = -1;
	if (lo->drain_open && c->side == 1) {
		drain = start_drain(c, lo, writers, target);
		if (drain < 0)
			atomic_store(&s->drain, -errno);
	}
	/* A shm: log is made by its drain: writers wait for it to be open. */
	uint64_t deadline = bh_now() + (uint64_t)c->p->timeout_ms * 1000000u;
	while (lo->drain_open && atomic_load(&s->drain) == 0 && bh_now() < deadline)
		nap();
	if (lo->drain_open && atomic_load(&s->drain) != 1)
		return atomic_load(&s->drain) < 0 ? atomic_load(&s->drain) : -ETIMEDOUT;
	int err = 0;
	uint64_t t_start = 0;
	if (c->side == 0 || writers == 2)
		err = writer(c, lo, threads, c->side == 0, warm, n, (uint64_t)writers * warm, h,
			     &t_start);
	else
		err = bh_ctl_sync(c); /* the one writer's start */
	atomic_store(&s->err[c->side], err);
	/* The end: every record in the file. */
	uint64_t end = 0;
	if (!err && c->side == 0) {
		if (lo->drain_open) {
			if (!wait_for(c, &s->t_done, 1))
				err = -ETIMEDOUT;
			end = atomic_load(&s->t_done);
		} else if (writers == 2) {
			if (!wait_for(c, &s->t_end[1], 1))
				err = -ETIMEDOUT;
			end = atomic_load(&s->t_end[1]);
		}
		if (atomic_load(&s->t_end[0]) > end)
			end = atomic_load(&s->t_end[0]);
	}
	/* Both sides are past their work: the drain may go. */
	int e = bh_ctl_sync(c);
	atomic_store(&s->stop, 1);
	if (drain > 0)
		waitpid(drain, NULL, 0);
	if (!err && e)
		err = e;
	if (!err && c->side == 0 && atomic_load(&s->err[1]))
		err = atomic_load(&s->err[1]);
	if (err || c->side)
		return err;
	bh_hist_result(h, r);
	r->msgs_per_s = (double)writers * threads * (double)n / ((double)(end - t_start) / 1e9);
	return 0;
}
