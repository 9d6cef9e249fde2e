/*
 * Tasks in a pool: submit, hand out, take results, and settle what a dead
 * worker held.
 *
 * Each worker has a queue of its own (its seat's tx and rx channels) and at
 * most `window` tasks handed to it; the master keeps every task it handed
 * out, in order, until its outcome.  A worker runs its tasks in order and
 * stores the dseq of the task it starts in shared memory before it runs it,
 * so when it dies, with its results read to the end:
 *
 *   - a task it had not started (dseq > started) never ran: it goes back to
 *     the front of the pending tasks, in both modes;
 *   - the one it had started and not answered ran, perhaps partly: it fails
 *     with -EOWNERDEAD (at most once), or goes back to the pending tasks
 *     with IPCX_POOL_AT_LEAST_ONCE.
 *
 * A line filter (queue "stdio") cannot say it started a task, so its one
 * task in flight counts as started.  Everything a worker sends is checked:
 * a result that is not the answer to the task at the head of its queue gets
 * the worker killed (and then settled as above).
 */
#include "poolmaster_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A result() spins this long before it sleeps.  Short: a pool has more
 * processes than CPUs (the master and N workers), and a spin takes the CPU
 * from the process it waits for (docs/pool.md, Performance).
 */
#define SPIN_NS   2000
#define PUMP_EVERY 128  /* busy calls between two looks at deaths and signals */

/* ---- lists ---------------------------------------------------------------------- */

static void push_back(struct task **head, struct task **tail, struct task *t)
{
	t->next = NULL;
	if (*tail)
		(*tail)->next = t;
	else
		*head = t;
	*tail = t;
}

static struct task *pop_front(struct task **head, struct task **tail)
{
	struct task *t = *head;
	if (t && !(*head = t->next))
		*tail = NULL;
	return t;
}

void task_outcome(ipcx_pool *p, struct task *t, int status, unsigned worker, const void *data,
		  size_t len)
{
	uint64_t id = t->id;
	struct outcome *o = len ? malloc(sizeof(*o) + len) : NULL;
	if (!o) {
		/* A failure, or no memory for the bytes: the task's own memory
		 * (at least an outcome's size) holds it. */
		if (len)
			status = -ENOMEM;
		len = 0;
		o = (struct outcome *)(void *)t;
		t = NULL;
	}
	p->unfinished--;
	if (status)
		p->failed++;
	else
		p->done++;
	o->next = NULL;
	o->r = (struct ipcx_task_result){ .id = id, .status = status, .len = len, .worker = worker };
	if (len)
		memcpy(o->data, data, len);
	if (p->out_tail)
		p->out_tail->next = o;
	else
		p->out_head = o;
	p->out_tail = o;
	p->nout++;
	free(t);
}

/* ---- handing out ------------------------------------------------------------------ */

/* The ready worker with the fewest tasks and room for one more, or NULL. */
static struct seat *pick(ipcx_pool *p)
{
	struct seat *best = NULL;
	for (unsigned k = 0; k < p->nseats; k++) {
		struct seat *s = &p->seat[(p->rr_tx + k) % p->nseats];
		if (s->state != S_READY || s->inflight >= p->o.window || s->full || s->broken)
			continue;
		if (!best || s->inflight < best->inflight)
			best = s;
		if (!s->inflight)
			break;
	}
	if (best)
		p->rr_tx = (unsigned)(best - p->seat) + 1;
	return best;
}

/* Send t to s: 0 sent, -EAGAIN its queue is full, another error: s is broken. */
static int hand_to(ipcx_pool *p, struct seat *s, struct task *t)
{
	ssize_t r;
	if (p->q == Q_STDIO) {
		r = ipcx_send(s->tx, t->data, t->len, 0);
	} else {
		struct frame f = { .kind = F_TASK, .len = t->len, .dseq = s->dseq + 1, .id = t->id };
		memcpy(p->sbuf, &f, FRAME);
		memcpy(p->sbuf + FRAME, t->data, t->len);
		r = ipcx_send(s->tx, p->sbuf, FRAME + t->len, 0);
	}
	if (r < 0)
		return (int)r;
	t->dseq = ++s->dseq;
	push_back(&s->head, &s->tail, t);
	s->inflight++;
	return 0;
}

void task_dispatch(ipcx_pool *p)
{
	while (p->pend_head && !p->stopping) {
		struct seat *s = pick(p);
		if (!s)
			return;
		struct task *t = pop_front(&p->pend_head, &p->pend_tail);
		int r = hand_to(p, s, t);
		if (r < 0) { /* back in front */
			if (!(t->next = p->pend_head))
				p->pend_tail = t;
			p->pend_head = t;
		}
		if (r == -EAGAIN) {
			s->full = true; /* its queue has no room: the others, until the next pump */
			continue;
		}
		if (r < 0) { /* its death settles what it holds, and restarts it */
			pool_kill_seat(p, s);
			s->broken = true;
			continue;
		}
		p->npending--;
	}
}

IPCX_EXPORT int ipcx_pool_submit(ipcx_pool *p, const void *task, size_t len, int timeout_ms,
				 uint64_t *id)
{
	if (!p || (!task && len))
		return ipcx_errdetail_set(-EINVAL, "pool: no pool or no task");
	if (pattern_check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (p->crashloop)
		return ipcx_errdetail_set(-ECHILD, "%s", p->crash_why);
	if (p->stopping)
		return ipcx_errdetail_set(-ESHUTDOWN, "pool: stopping");
	if (len > p->o.max_msg)
		return ipcx_errdetail_set(-EMSGSIZE, "pool: task of %zu bytes, max_msg is %zu", len,
					  p->o.max_msg);
	if (p->q == Q_STDIO && memchr(task, '\n', len))
		return ipcx_errdetail_set(-EINVAL, "pool: a task for a line filter has no newline");
	int64_t end = timeout_ms < 0 ? INT64_MAX : pool_now_ns() + (int64_t)timeout_ms * 1000000;
	while (p->unfinished >= p->o.limit) {
		int64_t left = end - pool_now_ns();
		if (left <= 0)
			return timeout_ms ? -ETIMEDOUT : -EAGAIN;
		int r = pool_pump(p, timeout_ms < 0 ? -1 : (int)((left + 999999) / 1000000));
		if (r < 0)
			return r;
		if (p->crashloop)
			return ipcx_errdetail_set(-ECHILD, "%s", p->crash_why);
		if (p->stopping)
			return ipcx_errdetail_set(-ESHUTDOWN, "pool: stopping");
	}
	size_t size = sizeof(struct task) + len;
	struct task *t = malloc(size > sizeof(struct outcome) ? size : sizeof(struct outcome));
	if (!t)
		return -ENOMEM;
	t->id = ++p->next_id;
	t->dseq = 0;
	t->len = (uint32_t)len;
	if (len)
		memcpy(t->data, task, len);
	if (id)
		*id = t->id; /* now: the pump below may settle and free t */
	push_back(&p->pend_head, &p->pend_tail, t);
	p->npending++;
	p->unfinished++;
	task_dispatch(p);
	if (++p->tick % PUMP_EVERY == 0)
		pool_pump(p, 0);
	return 0;
}

/* ---- results ------------------------------------------------------------------------ */

/* A worker sent what it must not: it is killed; its death settles its tasks. */
static int violation(ipcx_pool *p, struct seat *s)
{
	pool_kill_seat(p, s);
	s->broken = true;
	return -EBADMSG;
}

/*
 * A line filter's next result: a whole line of its output, read here (a
 * last line without its newline, cut short by the program's death, is no
 * result: its task counts as started and unanswered).  As task_recv().
 */
static int line_recv(ipcx_pool *p, struct seat *s, struct task **t, int *status,
		     const unsigned char **data, size_t *len)
{
	size_t cap = p->o.max_msg + 1;
	for (;;) {
		unsigned char *nl = s->llen ? memchr(s->lbuf, '\n', s->llen) : NULL;
		if (nl || s->llen == cap) {
			/* A line (n <= max_msg), or max_msg + 1 bytes of one too long. */
			size_t n = nl ? (size_t)(nl - s->lbuf) : s->llen, used = nl ? n + 1 : n;
			bool skipped = s->skipping; /* the rest of a line answered already */
			s->skipping = !nl;
			if (!skipped && !s->head)
				return violation(p, s); /* a line nobody asked for */
			if (!skipped && nl)
				memcpy(p->rbuf, s->lbuf, n);
			s->llen -= used;
			memmove(s->lbuf, s->lbuf + used, s->llen);
			if (skipped)
				continue;
			*t = pop_front(&s->head, &s->tail);
			s->inflight--;
			*status = nl ? 0 : -EMSGSIZE;
			*data = p->rbuf;
			*len = nl ? n : 0;
			return 1;
		}
		ssize_t r = read(s->lfd, s->lbuf + s->llen, cap - s->llen);
		if (r > 0)
			s->llen += (size_t)r;
		else if (r == 0)
			return -EPIPE;
		else if (errno != EINTR)
			return errno == EAGAIN ? 0 : -errno;
	}
}

int task_recv(ipcx_pool *p, struct seat *s, struct task **t, int *status,
	      const unsigned char **data, size_t *len)
{
	if (p->q == Q_STDIO)
		return s->lfd < 0 || s->pidfd < 0 ? 0 : line_recv(p, s, t, status, data, len);
	for (;;) {
		if (!s->rx || s->pidfd < 0)
			return 0;
		ssize_t n = ipcx_recv(s->rx, p->rbuf, p->frame_cap, 0);
		if (n == -EAGAIN)
			return 0;
		if (n < 0 && p->qlossy) /* results lost (nats://): the worker goes */
			pool_queue_lost(p, s);
		if (n < 0)
			return (int)n;
		struct frame f;
		if ((size_t)n < FRAME)
			return violation(p, s);
		memcpy(&f, p->rbuf, FRAME);
		if (f.kind == F_HELLO && p->q == Q_SOCKET && f.len == 0 && f.dseq == (uint64_t)s->pid) {
			pool_hello(p, s);
			continue;
		}
		if (f.kind != F_RESULT || f.len != (size_t)n - FRAME || !s->head ||
		    f.dseq != s->head->dseq || f.id != s->head->id || f.status > 0)
			return violation(p, s);
		*t = pop_front(&s->head, &s->tail);
		s->inflight--;
		*status = f.status;
		*data = p->rbuf + FRAME;
		*len = f.len;
		return 1;
	}
}

bool task_drain(ipcx_pool *p, struct seat *s)
{
	bool any = false;
	struct task *t;
	int st;
	const unsigned char *d;
	size_t len;
	while (task_recv(p, s, &t, &st, &d, &len) == 1) {
		task_outcome(p, t, st, s->index, d, len);
		any = true;
	}
	return any;
}

/* Hand an outcome to the caller (or -EMSGSIZE, keeping it). */
static int give(struct outcome *o, void *buf, size_t cap, struct ipcx_task_result *ret)
{
	if (o->r.len > cap)
		return ipcx_errdetail_set(-EMSGSIZE, "pool: task %llu's result is %zu bytes",
					  (unsigned long long)o->r.id, o->r.len);
	if (o->r.len)
		memcpy(buf, o->data, o->r.len);
	*ret = o->r;
	return 0;
}

static int take_queued(ipcx_pool *p, void *buf, size_t cap, struct ipcx_task_result *ret)
{
	struct outcome *o = p->out_head;
	int r = give(o, buf, cap, ret);
	if (r < 0)
		return r;
	if (!(p->out_head = o->next))
		p->out_tail = NULL;
	p->nout--;
	free(o);
	return 0;
}

/* A result straight from a worker's queue into buf: 1 given, 0 none. */
static int take_direct(ipcx_pool *p, void *buf, size_t cap, struct ipcx_task_result *ret)
{
	for (unsigned k = 0; k < p->nseats; k++) {
		struct seat *s = &p->seat[(p->rr_rx + k) % p->nseats];
		if (!s->inflight)
			continue;
		struct task *t;
		int st;
		const unsigned char *d;
		size_t len;
		if (task_recv(p, s, &t, &st, &d, &len) != 1)
			continue;
		p->rr_rx = (unsigned)(s - p->seat) + 1;
		if (len > cap) { /* keep it for a larger buffer */
			task_outcome(p, t, st, s->index, d, len);
			return -1;
		}
		*ret = (struct ipcx_task_result){ .id = t->id, .status = st, .len = len,
						  .worker = s->index };
		if (len)
			memcpy(buf, d, len);
		p->unfinished--;
		if (st)
			p->failed++;
		else
			p->done++;
		free(t);
		task_dispatch(p);
		return 1;
	}
	return 0;
}

IPCX_EXPORT int ipcx_pool_result(ipcx_pool *p, void *buf, size_t cap, int timeout_ms,
				 struct ipcx_task_result *ret)
{
	if (!p || !ret || (!buf && cap))
		return ipcx_errdetail_set(-EINVAL, "pool: no pool or no place for the result");
	if (pattern_check_timeout(timeout_ms) < 0)
		return -EINVAL;
	int64_t start = 0, end = 0;
	for (;;) {
		if (p->out_head)
			return take_queued(p, buf, cap, ret);
		int r = take_direct(p, buf, cap, ret);
		if (r)
			return r > 0 ? 0 : take_queued(p, buf, cap, ret);
		if (!p->unfinished) {
			/* Nothing to wait for; still supervise (signals, deaths). */
			if ((r = pool_pump(p, 0)) < 0)
				return r;
			if (p->out_head)
				continue;
			return p->crashloop ? ipcx_errdetail_set(-ECHILD, "%s", p->crash_why)
					    : ipcx_errdetail_set(-ENOENT, "pool: no task outstanding");
		}
		if (++p->tick % PUMP_EVERY == 0 && (r = pool_pump(p, 0)) != 0) {
			if (r < 0)
				return r;
			continue;
		}
		int64_t now = pool_now_ns();
		if (!start) {
			start = now;
			end = timeout_ms < 0 ? INT64_MAX : now + (int64_t)timeout_ms * 1000000;
		}
		if (now - start < SPIN_NS && now < end) {
			__builtin_ia32_pause();
			continue;
		}
		int64_t left = end - now;
		if (left <= 0) {
			if ((r = pool_pump(p, 0)) < 0)
				return r;
			/* Armed for ipcx_pool_fileno() before saying "nothing". */
			if (p->out_head || r || pool_arm(p))
				continue;
			return timeout_ms ? -ETIMEDOUT : -EAGAIN;
		}
		r = pool_pump(p, timeout_ms < 0 ? -1 : (int)((left + 999999) / 1000000));
		if (r < 0)
			return r;
	}
}

/* ---- settling ------------------------------------------------------------------------ */

void task_seat_died(ipcx_pool *p, struct seat *s)
{
	uint64_t started = p->q == Q_STDIO ? UINT64_MAX
					   : atomic_load(&p->sh->seat[s - p->seat].started);
	bool again = p->o.flags & IPCX_POOL_AT_LEAST_ONCE;
	struct task *rq_head = NULL, *rq_tail = NULL, *t;
	while ((t = pop_front(&s->head, &s->tail))) {
		bool ran = t->dseq <= started;
		if (!p->stopping && (!ran || again)) {
			t->dseq = 0;
			push_back(&rq_head, &rq_tail, t);
			p->requeued++;
			p->npending++;
		} else {
			task_outcome(p, t, ran ? -EOWNERDEAD : p->stop_err, s->index, NULL, 0);
		}
	}
	s->inflight = 0;
	if (rq_head) { /* in front of the pending ones, in their order */
		rq_tail->next = p->pend_head;
		if (!p->pend_head)
			p->pend_tail = rq_tail;
		p->pend_head = rq_head;
	}
}

void task_fail_pending(ipcx_pool *p, int err)
{
	struct task *t;
	while ((t = pop_front(&p->pend_head, &p->pend_tail))) {
		p->npending--;
		task_outcome(p, t, err, 0, NULL, 0);
	}
}

void task_free_all(ipcx_pool *p)
{
	struct task *t;
	while ((t = pop_front(&p->pend_head, &p->pend_tail)))
		free(t);
	for (unsigned i = 0; p->seat && i < p->nseats; i++)
		while ((t = pop_front(&p->seat[i].head, &p->seat[i].tail)))
			free(t);
	struct outcome *o = p->out_head;
	while (o) {
		struct outcome *next = o->next;
		free(o);
		o = next;
	}
	p->out_head = p->out_tail = NULL;
}
