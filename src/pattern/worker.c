/*
 * Process pools, the worker's side: take a task, say it started (in the
 * master's shared memory), run it, send its result.  A forked worker gets
 * its ipcx_worker from the pool (pw_run_forked); an exec'd program gets it
 * from ipcx_worker_open(), which reads POOL_ENV.  See task.c for what the
 * master does with the started mark when a worker dies.
 */
#include "poolwire_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ipcx_worker {
	unsigned index, seat;
	size_t max_msg;
	ipcx_chan *ctl, *rx, *tx;    /* rx: tasks in, tx: results out (== ctl for "socket") */
	struct pool_shared *shared;
	ipcx_event *wake;
	ipcx_region *region;         /* exec mode: ours to close, with wake */
	unsigned char *buf;          /* FRAME + max_msg */
	unsigned char *stash;        /* a task read by ipcx_worker_stopping() ("socket") */
	ssize_t stash_len;
	uint64_t dseq, id;           /* the task taken last */
	bool holding;                /* ... and not answered yet */
	bool stop;                   /* the in-band stop was read */
	bool asked;                  /* the control channel said stop (or closed) */
	/* nats://: both queues' descriptors (the result channel is dialled with
	 * reply=1: its descriptor carries its connection's loss notices), and
	 * the loss that ended the queue, returned by every later call. */
	bool lossy;
	int rx_fd, tx_fd;
	int lost;
};

static void close_queue(ipcx_worker *w)
{
	if (w->rx != w->ctl)
		ipcx_close(w->rx);
	if (w->tx != w->ctl && w->tx != w->rx)
		ipcx_close(w->tx);
	w->rx = w->tx = NULL;
}

/* Open the worker's end of its queue, as the master made it (QM_*, poolq.c). */
static int open_queue(ipcx_worker *w, const struct pool_worker_init *in)
{
	int r;
	switch (in->qmode) {
	case QM_ACCEPT: {
		/* One connection; the cookie first, so that the master takes
		 * this one and nobody else's. */
		if ((r = ipcx_dial(in->task_url, 0, &w->rx)) < 0)
			return r;
		w->tx = w->rx;
		struct frame f = { .kind = F_HELLO, .dseq = (uint64_t)getpid(), .id = in->cookie };
		r = (int)ipcx_send(w->tx, &f, FRAME, 5000);
		return r < 0 ? r : 0;
	}
	case QM_LISTEN: /* only a reader may listen; the master dials it once we are up */
		if ((r = ipcx_listen(in->task_url, 0, &w->rx)) < 0 ||
		    (r = ipcx_dial(in->result_url, 0, &w->tx)) < 0)
			return r;
		if (!strncmp(in->task_url, "nats:", 5)) {
			w->lossy = true;
			if ((w->rx_fd = ipcx_fileno(w->rx)) < 0)
				return w->rx_fd;
			if ((w->tx_fd = ipcx_fileno(w->tx)) < 0)
				return w->tx_fd;
		}
		return 0;
	default:
		if ((r = ipcx_dial(in->task_url, 0, &w->rx)) < 0)
			return r;
		return ipcx_dial(in->result_url, 0, &w->tx);
	}
}

static int make(const struct pool_worker_init *in, ipcx_worker **ret)
{
	ipcx_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct ipcx_worker){ .index = in->index, .seat = in->seat, .max_msg = in->max_msg,
				   .ctl = in->ctl, .shared = in->shared, .wake = in->wake };
	int r = 0;
	if (!(w->buf = malloc(FRAME + w->max_msg)))
		r = -ENOMEM;
	if (r == 0 && in->task_url)
		r = open_queue(w, in);
	else
		w->rx = w->tx = w->ctl;
	struct frame hello = { .kind = F_HELLO, .dseq = (uint64_t)getpid() };
	if (r == 0 && (r = (int)ipcx_send(w->ctl, &hello, FRAME, 5000)) > 0)
		r = 0;
	if (r < 0) {
		close_queue(w);
		free(w->buf);
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void pw_run_forked(const struct pool_worker_init *in, int (*fn)(ipcx_worker *, void *), void *arg)
{
	ipcx_worker *w;
	int r = make(in, &w);
	if (r < 0)
		_exit(126);
	int status = fn(w, arg);
	ipcx_worker_close(w);
	fflush(NULL);
	_exit(status & 0xff);
}

void pw_wake_master(struct pool_shared *sh, ipcx_event *wake)
{
	/* The result is published; now look at the flag (the master stores
	 * the flag, then looks at the queues: one of us sees the other). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&sh->master_waiting, memory_order_relaxed) &&
	    atomic_exchange(&sh->master_waiting, 0))
		ipcx_event_post(wake, 1);
}

/* ---- exec mode ------------------------------------------------------------------ */

static int env_fail(const char *what)
{
	return ipcx_errdetail_set(-EINVAL, "worker: %s: %s", POOL_ENV, what);
}

IPCX_EXPORT int ipcx_worker_open(unsigned flags, ipcx_worker **ret)
{
	ipcx_errdetail_set(0, "%s", ""); /* no detail from an earlier call */
	if (!ret || flags)
		return ipcx_errdetail_set(-EINVAL, "worker: bad flags or no place for the worker");
	const char *env = getenv(POOL_ENV);
	if (!env)
		return ipcx_errdetail_set(-ENOENT, "worker: not started by a pool (no %s)", POOL_ENV);
	unsigned v, index, seat;
	int ctlfd, regfd, evfd, qmode;
	size_t max;
	uint64_t cookie;
	char turl[320], rurl[320];
	if (sscanf(env, "%u %u %u %d %d %d %zu %d %" SCNu64 " %319s %319s", &v, &index, &seat,
		   &ctlfd, &regfd, &evfd, &max, &qmode, &cookie, turl, rurl) != 11 || v != 2 ||
	    max == 0 || max > (64u << 20) || qmode < QM_DIAL || qmode > QM_LISTEN)
		return env_fail("malformed");
	char u[32];
	snprintf(u, sizeof(u), "fd:%d", ctlfd);
	struct pool_worker_init in = { .index = index, .seat = seat, .max_msg = max,
				       .task_url = strcmp(turl, "-") ? turl : NULL,
				       .result_url = strcmp(rurl, "-") ? rurl : NULL,
				       .qmode = qmode, .cookie = cookie };
	ipcx_region *region = NULL;
	int r = ipcx_dial(u, 0, &in.ctl);
	if (r == 0)
		r = ipcx_region_adopt(regfd, 0, &region);
	if (r == 0) {
		in.shared = ipcx_region_addr(region);
		size_t size = ipcx_region_size(region);
		if (size < sizeof(struct pool_shared) || in.shared->magic != POOL_MAGIC ||
		    seat >= in.shared->nseats ||
		    size < sizeof(struct pool_shared) + (seat + 1) * sizeof(struct pool_seat))
			r = env_fail("the shared memory is not the pool's");
	}
	if (r == 0)
		r = ipcx_event_adopt(evfd, 0, &in.wake);
	if (r == 0 && (!in.task_url != !in.result_url))
		r = env_fail("one queue URL");
	ipcx_worker *w = NULL;
	if (r == 0)
		r = make(&in, &w);
	if (r < 0) {
		ipcx_event_close(in.wake);
		ipcx_region_close(region);
		ipcx_close(in.ctl);
		return r;
	}
	w->region = region;
	/* Not for the programs this one starts. */
	unsetenv(POOL_ENV);
	*ret = w;
	return 0;
}

/* ---- tasks --------------------------------------------------------------------- */

/*
 * A nats:// queue lost messages (a server switch, an overflow), closed, or
 * found nobody listening: tasks or results may be gone, and only the master
 * can settle them, by our death.  Say so on the control channel (the master
 * kills a worker that says anything but hello there) and keep the error:
 * every later call returns it, whatever the program does with it.
 */
static ssize_t queue_lost(ipcx_worker *w, ssize_t err)
{
	if (!w->lost) {
		struct frame f = { .kind = F_LOST, .dseq = (uint64_t)getpid() };
		ipcx_send(w->ctl, &f, FRAME, 1000);
		w->lost = (int)err;
	}
	return err;
}

/*
 * nats://: a task, waiting on the task queue and on the result channel's
 * descriptor together (nothing comes there but a loss notice).
 */
static ssize_t lossy_recv(ipcx_worker *w, int timeout_ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ssize_t n = ipcx_recv(w->rx, w->buf, FRAME + w->max_msg, 0);
		if (n != -EAGAIN)
			return n < 0 ? queue_lost(w, n) : n;
		int left = -1;
		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			int64_t ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (ms >= timeout_ms)
				return ipcx_errdetail_set(timeout_ms ? -ETIMEDOUT : -EAGAIN,
							  "worker: no task within %d ms", timeout_ms);
			left = timeout_ms - (int)ms;
		}
		struct pollfd pf[2] = { { w->rx_fd, POLLIN, 0 }, { w->tx_fd, POLLIN, 0 } };
		if (poll(pf, 2, left) < 0 && errno != EINTR)
			return ipcx_errdetail_set(-errno, "worker: poll: %s", strerror(errno));
		if (pf[1].revents) {
			n = ipcx_recv(w->tx, w->buf, FRAME + w->max_msg, 0);
			if (n != -EAGAIN)
				return queue_lost(w, n < 0 ? n : ipcx_errdetail_set(-EPROTO,
						  "worker: a message on the result channel"));
		}
	}
}

/* Send a result frame for the task held, then wake the master if it sleeps. */
static int answer(ipcx_worker *w, int status, const void *res, size_t len)
{
	struct frame f = { .kind = F_RESULT, .status = status, .len = (uint32_t)len,
			   .dseq = w->dseq, .id = w->id };
	memcpy(w->buf, &f, FRAME);
	if (len)
		memcpy(w->buf + FRAME, res, len);
	ssize_t r = ipcx_send(w->tx, w->buf, FRAME + len, -1);
	w->holding = false;
	if (r < 0 && w->lossy)
		r = queue_lost(w, r);
	if (r < 0)
		return (int)r;
	pw_wake_master(w->shared, w->wake);
	return 0;
}

/* The next frame on the task channel (or the one ipcx_worker_stopping() kept). */
static ssize_t next_frame(ipcx_worker *w, int timeout_ms)
{
	if (w->stash) {
		ssize_t n = w->stash_len;
		memcpy(w->buf, w->stash, (size_t)n);
		free(w->stash);
		w->stash = NULL;
		return n;
	}
	if (w->lossy)
		return lossy_recv(w, timeout_ms);
	return ipcx_recv(w->rx, w->buf, FRAME + w->max_msg, timeout_ms);
}

IPCX_EXPORT ssize_t ipcx_worker_next(ipcx_worker *w, void *buf, size_t cap, int timeout_ms)
{
	if (!w || (!buf && cap))
		return ipcx_errdetail_set(-EINVAL, "worker: no worker or no buffer");
	if (pattern_check_timeout((int)timeout_ms) < 0)
		return -EINVAL;
	if (w->holding) /* the last task was not answered: say so, or it would look lost */
		answer(w, -ENODATA, NULL, 0);
	if (w->lost)
		return ipcx_errdetail_set(w->lost, "worker: its queue lost messages earlier");
	if (w->stop)
		return ipcx_errdetail_set(-ESHUTDOWN, "worker: asked to stop");
	ssize_t n = next_frame(w, timeout_ms);
	if (n < 0)
		return n;
	struct frame f;
	if ((size_t)n < FRAME)
		return ipcx_errdetail_set(-EBADMSG, "worker: a frame of %zd bytes", n);
	memcpy(&f, w->buf, FRAME);
	if (f.kind == F_STOP) {
		w->stop = w->asked = true;
		return ipcx_errdetail_set(-ESHUTDOWN, "worker: asked to stop");
	}
	if (f.kind != F_TASK || f.len != (size_t)n - FRAME || f.dseq == 0)
		return ipcx_errdetail_set(-EBADMSG, "worker: not a task frame");
	w->dseq = f.dseq;
	w->id = f.id;
	w->holding = true;
	if (f.len > cap) {
		answer(w, -EMSGSIZE, NULL, 0);
		return ipcx_errdetail_set(-EMSGSIZE, "worker: a task of %u bytes, buffer of %zu",
					  f.len, cap);
	}
	/* From here the master knows this task may have run (docs/pool.md). */
	atomic_store_explicit(&w->shared->seat[w->seat].started, f.dseq, memory_order_release);
	if (f.len)
		memcpy(buf, w->buf + FRAME, f.len);
	return (ssize_t)f.len;
}

IPCX_EXPORT int ipcx_worker_reply(ipcx_worker *w, const void *res, size_t len)
{
	if (!w || (!res && len))
		return ipcx_errdetail_set(-EINVAL, "worker: no worker or no result");
	if (!w->holding)
		return ipcx_errdetail_set(-EINVAL, "worker: no task to answer");
	if (w->lost)
		return ipcx_errdetail_set(w->lost, "worker: its queue lost messages earlier");
	if (len > w->max_msg) {
		answer(w, -EMSGSIZE, NULL, 0);
		return ipcx_errdetail_set(-EMSGSIZE, "worker: a result of %zu bytes, max_msg %zu",
					  len, w->max_msg);
	}
	return answer(w, 0, res, len);
}

/* ---- control ------------------------------------------------------------------- */

IPCX_EXPORT int ipcx_worker_fileno(ipcx_worker *w)
{
	return w ? ipcx_fileno(w->ctl) : -EINVAL;
}

IPCX_EXPORT int ipcx_worker_stopping(ipcx_worker *w)
{
	if (!w)
		return -EINVAL;
	while (!w->asked && !w->stash) {
		ssize_t n = ipcx_recv(w->ctl, w->buf, FRAME + w->max_msg, 0);
		if (n == -EAGAIN)
			break;
		if (n < 0 || (size_t)n < FRAME) {
			w->asked = true; /* the master is gone, or speaks nonsense */
			break;
		}
		struct frame f;
		memcpy(&f, w->buf, FRAME);
		if (f.kind == F_STOP) {
			w->asked = true;
			w->stop = w->rx == w->ctl; /* "socket": that was the in-band stop */
		} else if (w->rx == w->ctl && (w->stash = malloc((size_t)n))) {
			memcpy(w->stash, w->buf, (size_t)n); /* a task: for ipcx_worker_next() */
			w->stash_len = n;
		}
	}
	return w->asked;
}

IPCX_EXPORT unsigned ipcx_worker_index(const ipcx_worker *w)
{
	return w ? w->index : 0;
}

IPCX_EXPORT int ipcx_worker_close(ipcx_worker *w)
{
	if (!w)
		return 0;
	close_queue(w);
	ipcx_close(w->ctl);
	if (w->region) { /* exec mode: ours */
		ipcx_event_close(w->wake);
		ipcx_region_close(w->region);
	}
	free(w->stash);
	free(w->buf);
	free(w);
	return 0;
}
