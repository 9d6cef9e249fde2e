/*
 * Pools and slots (docs/pool.md), beside what a program would write without
 * ipcx:
 *
 *   pool  raw   pipes-rr     a master and 2 forked workers, one pipe pair per
 *                            worker, tasks handed out round-robin (a write
 *                            each), results read with poll() and read(),
 *                            every result waiting in one read; a worker
 *                            reads every task waiting and answers them in one
 *                            write: the system calls, used with care
 *   pool  ipcx  shm          ipcx_pool_submit/result through a pool of 2
 *                            workers over its default queue (shm: rings)
 *   slot  raw   sysvsem-undo a System V semaphore of value 1, semop -1 / +1
 *                            with SEM_UNDO: the crash-safe lock the seeds use
 *   slot  ipcx  ...          ipcx_slot_acquire/release on a table of 1 slot
 *
 * A pool row times empty tasks, submit to result, with 64 in flight (32 a
 * worker); side 0 is the master and may run on both CPUs with its workers
 * (side 1 has nothing to do).  Slot rows are lock loops (bh_lock_loop),
 * uncontended (one process) and contended (both sides on the one slot).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS  2
#define INFLIGHT 64 /* tasks in flight, for both rows */
#define BATCH    64 /* results timed together */

/* Both cores for the master and the workers it forks (side 0 was pinned to one). */
static void both_cpus(const struct bh_params *p)
{
	if (p->cpu[0] < 0 || p->cpu[1] < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(p->cpu[0], &set);
	CPU_SET(p->cpu[1], &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static uint64_t ntasks(const struct bh_params *p)
{
	return p->count * 40; /* empty tasks are cheap: more of them */
}

/*
 * The timed loop, the same for both rows: keep INFLIGHT tasks submitted,
 * take results, time each BATCH of results.  submit() and result() return 0
 * or a negative errno.
 */
struct driver {
	int (*submit)(void *st);
	int (*result)(void *st);
	void *st;
};

static int drive(const struct driver *d, uint64_t n, struct bh_hist *h, uint64_t *elapsed)
{
	uint64_t sent = 0, got = 0, t0 = bh_now(), tb = t0;
	while (got < n) {
		while (sent < n && sent - got < INFLIGHT) {
			int e = d->submit(d->st);
			if (e)
				return e;
			sent++;
		}
		int e = d->result(d->st);
		if (e)
			return e;
		if (++got % BATCH == 0 && h) {
			uint64_t now = bh_now();
			bh_hist_add(h, (now - tb) / BATCH);
			tb = now;
		}
	}
	*elapsed = bh_now() - t0;
	return 0;
}

static int run_pool(const struct bh_params *p, const struct driver *d, struct bh_hist *h,
		    struct bh_result *r)
{
	uint64_t ns, n = ntasks(p);
	int e = drive(d, n / 10, NULL, &ns); /* warm-up */
	if (e == 0)
		e = drive(d, n, h, &ns);
	if (e == 0) {
		bh_hist_result(h, r);
		r->msgs_per_s = (double)n / ((double)ns / 1e9);
	}
	return e;
}

/* ---- raw: a pipe pair per worker, round-robin ------------------------------------------ */

struct rec {
	uint64_t id, len; /* an empty task: the id, and no bytes */
};

struct rawpool {
	int req[WORKERS], res[WORKERS];
	pid_t pid[WORKERS];
	unsigned next, ready;
	uint64_t id;
	unsigned have; /* results read ahead in the last read() */
	struct pollfd pf[WORKERS];
};

/* A careful worker: it takes every task waiting in one read, answers them in one write. */
static void raw_worker(int in, int out)
{
	struct rec t[INFLIGHT];
	ssize_t n;
	while ((n = read(in, t, sizeof(t))) > 0) {
		if (n % (ssize_t)sizeof(t[0]))
			break; /* records are written whole (16 bytes < PIPE_BUF) */
		if (write(out, t, (size_t)n) != n)
			break;
	}
	_exit(0);
}

static int raw_submit(void *st)
{
	struct rawpool *rp = st;
	struct rec t = { ++rp->id, 0 };
	int w = (int)(rp->next++ % WORKERS);
	return write(rp->req[w], &t, sizeof(t)) == (ssize_t)sizeof(t) ? 0 : -EIO;
}

/* One result: from those read ahead, or every one waiting on a ready descriptor. */
static int raw_result(void *st)
{
	struct rawpool *rp = st;
	if (rp->have) {
		rp->have--;
		return 0;
	}
	for (;;) {
		for (unsigned k = 0; k < WORKERS; k++) {
			unsigned w = (rp->ready + k) % WORKERS;
			if (!(rp->pf[w].revents & POLLIN))
				continue;
			rp->pf[w].revents = 0;
			rp->ready = w + 1;
			struct rec t[INFLIGHT];
			ssize_t n = read(rp->res[w], t, sizeof(t));
			if (n <= 0 || n % (ssize_t)sizeof(t[0]))
				return -EIO;
			rp->have = (unsigned)(n / (ssize_t)sizeof(t[0])) - 1;
			return 0;
		}
		if (poll(rp->pf, WORKERS, -1) < 0 && errno != EINTR)
			return -errno;
	}
}

static int raw_pool_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	if (c->side)
		return 0;
	both_cpus(c->p);
	struct rawpool rp = { 0 };
	for (int w = 0; w < WORKERS; w++) {
		int a[2], b[2];
		if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0)
			return -errno;
		rp.pid[w] = fork();
		if (rp.pid[w] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(a[1]);
			close(b[0]);
			for (int k = 0; k < w; k++)
				close(rp.req[k]), close(rp.res[k]);
			raw_worker(a[0], b[1]);
		}
		close(a[0]);
		close(b[1]);
		rp.req[w] = a[1];
		rp.res[w] = b[0];
		rp.pf[w] = (struct pollfd){ b[0], POLLIN, 0 };
	}
	struct driver d = { raw_submit, raw_result, &rp };
	int e = run_pool(c->p, &d, h, r);
	for (int w = 0; w < WORKERS; w++) {
		close(rp.req[w]); /* the worker reads the end and exits */
		close(rp.res[w]);
		waitpid(rp.pid[w], NULL, 0);
	}
	return e;
}

/* ---- ipcx: ipcx_pool over shm: rings ------------------------------------------------------ */

static int empty_worker(ipcx_worker *w, void *arg)
{
	char buf[64];
	while (ipcx_worker_next(w, buf, sizeof(buf), -1) >= 0)
		if (ipcx_worker_reply(w, NULL, 0) < 0)
			return 1;
	return 0;
}

static int ipcx_submit(void *st)
{
	uint64_t id;
	return ipcx_pool_submit(st, NULL, 0, -1, &id);
}

static int ipcx_result(void *st)
{
	struct ipcx_task_result res;
	int e = ipcx_pool_result(st, NULL, 0, -1, &res);
	return e ? e : res.status;
}

static int ipcx_pool_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	if (c->side)
		return 0;
	both_cpus(c->p);
	char name[96];
	snprintf(name, sizeof(name), "%s-%u-pool", c->p->prefix, c->p->seq);
	struct ipcx_pool_opts o = { .workers = WORKERS, .fn = empty_worker, .name = name,
				    .window = INFLIGHT / WORKERS, .max_msg = 64 };
	ipcx_pool *pool;
	int e = ipcx_pool_start(&o, &pool);
	if (e < 0)
		return e;
	struct driver d = { ipcx_submit, ipcx_result, pool };
	e = run_pool(c->p, &d, h, r);
	int ce = ipcx_pool_close(pool);
	return e ? e : ce;
}

/* ---- slots: a System V semaphore with SEM_UNDO, and ipcx_slot ------------------------ */

struct ssem {
	int id;
	bool owner;
	ipcx_slots *t;
	int held;
};

static int ssem_open(struct bh_ctx *c)
{
	struct ssem *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	s->id = -1;
	if (c->side) {
		s->id = semget(c->p->key, 1, IPC_CREAT | IPC_EXCL | 0600);
		struct sembuf one = { 0, 1, 0 }; /* no undo: the unit is the slot */
		if (s->id < 0 || semop(s->id, &one, 1) < 0)
			return -errno;
		s->owner = true;
	}
	int e = bh_ctl_sync(c);
	if (!e && !c->side && (s->id = semget(c->p->key, 1, 0)) < 0)
		e = -errno;
	return e;
}

static int ssem_op(struct bh_ctx *c, short delta)
{
	struct ssem *s = c->priv;
	struct sembuf op = { 0, delta, SEM_UNDO };
	while (semop(s->id, &op, 1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int ssem_acquire(struct bh_ctx *c)
{
	return ssem_op(c, -1);
}

static int ssem_release(struct bh_ctx *c)
{
	return ssem_op(c, 1);
}

static void ssem_close(struct bh_ctx *c)
{
	struct ssem *s = c->priv;
	if (s && s->owner && s->id >= 0)
		semctl(s->id, 0, IPC_RMID);
	free(s);
	c->priv = NULL;
}

static void slots_url(const struct bh_params *p, char *buf, size_t cap)
{
	char name[128];
	bh_name(p, "slots", name, sizeof(name));
	snprintf(buf, cap, "shm:%s", name);
}

static int islot_open(struct bh_ctx *c)
{
	struct ssem *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	char url[160];
	slots_url(c->p, url, sizeof(url));
	int e = c->side ? ipcx_slots_open(url, 1, 64, IPCX_SLOTS_CREATE, &s->t) : 0;
	if (!e)
		e = bh_ctl_sync(c);
	if (!e && !c->side)
		e = ipcx_slots_open(url, 0, 0, 0, &s->t);
	return e;
}

static int islot_acquire(struct bh_ctx *c)
{
	struct ssem *s = c->priv;
	int i = ipcx_slot_acquire(s->t, -1, NULL);
	s->held = i;
	return i < 0 ? i : 0;
}

static int islot_release(struct bh_ctx *c)
{
	struct ssem *s = c->priv;
	return ipcx_slot_release(s->t, (unsigned)s->held);
}

static void islot_close(struct bh_ctx *c)
{
	struct ssem *s = c->priv;
	if (s)
		ipcx_slots_close(s->t); /* the creator's close removes the table */
	free(s);
	c->priv = NULL;
}

static const struct bh_lockops ssem_un = { ssem_acquire, ssem_release, false };
static const struct bh_lockops ssem_co = { ssem_acquire, ssem_release, true };
static const struct bh_lockops islot_un = { islot_acquire, islot_release, false };
static const struct bh_lockops islot_co = { islot_acquire, islot_release, true };

static int ssem_un_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &ssem_un, h, r);
}

static int ssem_co_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &ssem_co, h, r);
}

static int islot_un_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &islot_un, h, r);
}

static int islot_co_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &islot_co, h, r);
}

/* ---- the table ------------------------------------------------------------------------- */

static const struct bh_ops raw_pool = { "pool", "raw", "pipes-rr", .op = raw_pool_op };
static const struct bh_ops ipcx_pool_row = { "pool", "ipcx", "shm", .op = ipcx_pool_op };
static const struct bh_ops raw_slot_un = { "slot", "raw", "uncontended", .open = ssem_open,
	.close = ssem_close, .op = ssem_un_op };
static const struct bh_ops raw_slot_co = { "slot", "raw", "contended", .open = ssem_open,
	.close = ssem_close, .op = ssem_co_op };
static const struct bh_ops ipcx_slot_un = { "slot", "ipcx", "uncontended", .open = islot_open,
	.close = islot_close, .op = islot_un_op };
static const struct bh_ops ipcx_slot_co = { "slot", "ipcx", "contended", .open = islot_open,
	.close = islot_close, .op = islot_co_op };

const struct bh_ops *const bh_pattern_ops[] = {
	&raw_pool, &ipcx_pool_row, &raw_slot_un, &raw_slot_co, &ipcx_slot_un, &ipcx_slot_co, NULL,
};
