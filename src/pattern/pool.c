/*
 * Process pools, the master's side: start N workers (a function in a forked
 * child, or a program), watch them through pidfds, restart the dead with a
 * back-off, notice a crash loop, replace them one by one on reload, stop
 * them gracefully.  Tasks are task.c; the worker's side is worker.c; the
 * design and every crash case are in docs/pool.md.
 *
 * No thread of our own: every pool call supervises (pool_pump), and
 * ipcx_pool_fileno() lets an event loop do it.  The workers are children of
 * the thread that drives the pool, and die with it: PR_SET_PDEATHSIG follows
 * the thread that forked.
 */
#include "poolmaster_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2) /* Linux 5.11 */
#endif

extern char **environ;

/* What an epoll event is about: tag << 32 | seat. */
enum { T_WAKE = 1, T_PID, T_CTL, T_RX, T_SIG, T_TIMER, T_TX };

#define MAX_WORKERS 1024u

int64_t pool_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ms_ns(int ms)
{
	return (int64_t)ms * 1000000;
}

/* ---- options ------------------------------------------------------------------ */

static void defaults(struct ipcx_pool_opts *o)
{
	if (!o->max_msg)
		o->max_msg = 4096;
	if (!o->window)
		o->window = 8;
	if (!o->limit)
		o->limit = 4096;
	if (!o->grace_ms)
		o->grace_ms = 5000;
	if (!o->backoff_ms)
		o->backoff_ms = 100;
	if (!o->backoff_max_ms)
		o->backoff_max_ms = 5000;
	if (!o->crash_limit)
		o->crash_limit = 10;
	if (!o->crash_window_ms)
		o->crash_window_ms = 10000;
}

/* The queue option: the control socket, a line filter's stdio, or a URL (poolq.c). */
static int parse_queue(ipcx_pool *p)
{
	const char *q = p->o.queue ? p->o.queue : "shm:";
	if (!strcmp(q, "socket")) {
		p->q = Q_SOCKET;
	} else if (!strcmp(q, "stdio")) {
		if (!p->o.argv)
			return ipcx_errdetail_set(-EINVAL, "pool: queue \"stdio\" is for a program (argv)");
		p->q = Q_STDIO;
		p->o.window = 1;
	} else {
		return poolq_parse(p, q);
	}
	return 0;
}

static int check_opts(const struct ipcx_pool_opts *o)
{
	if (o->workers == 0 || o->workers > MAX_WORKERS)
		return ipcx_errdetail_set(-EINVAL, "pool: %u workers (want 1 .. %u)", o->workers,
					  MAX_WORKERS);
	if (!o->fn == !o->argv || (o->argv && !o->argv[0]))
		return ipcx_errdetail_set(-EINVAL, "pool: give either fn or argv");
	if (o->flags & ~(IPCX_POOL_SIGNALS | IPCX_POOL_AT_LEAST_ONCE))
		return ipcx_errdetail_set(-EINVAL, "pool: unknown flags 0x%x", o->flags);
	if (o->max_msg > (64u << 20) || o->window > 65536 || o->grace_ms < 0 ||
	    o->backoff_ms < 0 || o->backoff_max_ms < 0 || o->crash_window_ms < 0)
		return ipcx_errdetail_set(-EINVAL, "pool: max_msg, window or a time out of range");
	if (o->name && (strlen(o->name) > 100 || strchr(o->name, '/')))
		return ipcx_errdetail_set(-EINVAL, "pool: name '%s': at most 100 bytes, no '/'",
					  o->name);
	return 0;
}

/* ---- the epoll set and the timer ------------------------------------------- */

static int watch(ipcx_pool *p, int fd, int tag, unsigned seat)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)tag << 32 | seat };
	return epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void unwatch(ipcx_pool *p, int fd)
{
	if (fd >= 0)
		epoll_ctl(p->ep, EPOLL_CTL_DEL, fd, NULL);
}

/* Set the timer to the earliest thing due: a restart, a reload step, the end of the grace. */
static void arm_timer(ipcx_pool *p)
{
	int64_t due = 0;
	for (unsigned i = 0; i < p->n; i++)
		if (p->ix[i].seat < 0 && p->ix[i].restart_at && (!due || p->ix[i].restart_at < due))
			due = p->ix[i].restart_at;
	if (p->reload_next >= 0 && p->reload_at && (!due || p->reload_at < due))
		due = p->reload_at;
	if (p->stopping && !p->stopped && p->grace_end && (!due || p->grace_end < due))
		due = p->grace_end;
	struct itimerspec its = { 0 };
	if (due) {
		if (due < 1)
			due = 1;
		its.it_value.tv_sec = due / 1000000000;
		its.it_value.tv_nsec = due % 1000000000;
	}
	timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- starting a worker --------------------------------------------------------- */

struct spawn_fds {
	ipcx_chan *ctl_child;  /* the worker's end of the control pair */
	int in[2], out[2];     /* stdio: the program's stdin and stdout pipes */
	int execp[2];          /* exec: reports a failed exec (close-on-exec) */
	int keep[3];           /* exec: the control, region and event descriptors it inherits */
	char task_url[320], result_url[320];
	char env[800];
};

static void close_pair(int fd[2])
{
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0) {
			close(fd[i]);
			fd[i] = -1;
		}
}

static void close_channels(struct seat *s)
{
	poolq_clean(s);
	if (s->tx != s->ctl)
		ipcx_close(s->tx);
	if (s->rx != s->ctl && s->rx != s->tx)
		ipcx_close(s->rx);
	ipcx_close(s->ctl);
	if (s->lfd >= 0)
		close(s->lfd);
	free(s->lbuf);
	s->tx = s->rx = s->ctl = NULL;
	s->lbuf = NULL;
	s->llen = 0;
	s->ctl_fd = s->rx_fd = s->tx_fd = s->lfd = -1;
}

static int make_channels(ipcx_pool *p, unsigned si, struct spawn_fds *f)
{
	struct seat *s = &p->seat[si];
	if (p->q == Q_STDIO) {
		if (pipe2(f->in, O_CLOEXEC) < 0 || pipe2(f->out, O_CLOEXEC) < 0)
			return -errno;
		char u[64];
		snprintf(u, sizeof(u), "fd:%d?framing=lines&max=%zu", f->in[1], p->o.max_msg);
		int r = ipcx_dial(u, 0, &s->tx);
		if (r < 0)
			return r;
		f->in[1] = -1; /* the channel owns it */
		/* Results: read here, whole lines only (task.c, line_recv). */
		if (!(s->lbuf = malloc(p->o.max_msg + 1)))
			return -ENOMEM;
		int fl = fcntl(f->out[0], F_GETFL);
		if (fl < 0 || fcntl(f->out[0], F_SETFL, fl | O_NONBLOCK) < 0)
			return -errno;
		s->lfd = s->rx_fd = f->out[0];
		f->out[0] = -1;
		return 0;
	}
	int r = ipcx_pair("socket", 0, &s->ctl, &f->ctl_child);
	if (r < 0)
		return r;
	/* Asked before anything is received: the socket itself. */
	s->ctl_fd = ipcx_fileno(s->ctl);
	if (p->q == Q_SOCKET) {
		s->tx = s->rx = s->ctl;
		return 0;
	}
	return poolq_make(p, si, f->task_url, f->result_url, sizeof(f->task_url));
}

/* What an exec'd worker that calls ipcx_worker_open() is told. */
static char **worker_env(ipcx_pool *p, unsigned si, struct spawn_fds *f)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], POOL_ENV "=", sizeof(POOL_ENV)))
			env[k++] = environ[i];
	bool sock = p->q == Q_SOCKET;
	/* Asked here, not in the child: between fork and exec it only reads these. */
	f->keep[0] = ipcx_fileno(f->ctl_child);
	f->keep[1] = ipcx_region_fd(p->region);
	f->keep[2] = ipcx_event_fileno(p->wake);
	snprintf(f->env, sizeof(f->env), POOL_ENV "=2 %u %u %d %d %d %zu %d %" PRIu64 " %s %s",
		 p->seat[si].index, si, f->keep[0], f->keep[1], f->keep[2], p->o.max_msg, p->qmode,
		 p->seat[si].cookie, sock ? "-" : f->task_url, sock ? "-" : f->result_url);
	env[k] = f->env;
	return env;
}

/* In the child: what the master holds must not keep other workers' channels open. */
static void child_close_master_fds(ipcx_pool *p)
{
	close(p->ep);
	close(p->tfd);
	if (p->sigs)
		close(ipcx_signals_fileno(p->sigs));
	for (unsigned j = 0; j < p->nseats; j++) {
		struct seat *o = &p->seat[j];
		if (o->pidfd >= 0)
			close(o->pidfd);
		if (o->ctl_fd >= 0)
			close(o->ctl_fd);
		if (o->lfd >= 0)
			close(o->lfd);
	}
}

static void child_exec(ipcx_pool *p, struct spawn_fds *f, char **env)
{
	if (p->q == Q_STDIO) {
		int a = fcntl(f->in[0], F_DUPFD, 3), b = fcntl(f->out[1], F_DUPFD, 3);
		if (a < 0 || b < 0 || dup2(a, 0) < 0 || dup2(b, 1) < 0)
			goto fail;
	} else {
		/*
		 * nats.c 3.4 opens its sockets without close-on-exec: the program
		 * would hold the master's NATS connections, which then outlive
		 * the master's close of them on the server (seen: a worker
		 * holding the connection of another worker's result queue).  Over
		 * nats:// the program inherits only its three descriptors (and
		 * 0-2).  A system call: safe between fork and exec.
		 */
		if (p->qlossy)
			syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
		for (int i = 0; i < 3; i++)
			if (fcntl(f->keep[i], F_SETFD, 0) < 0)
				goto fail;
	}
	execvpe(p->argv[0], p->argv, env ? env : environ);
fail:;
	int e = errno;
	ssize_t w = write(f->execp[1], &e, sizeof(e));
	(void)w;
	_exit(127);
}

/*
 * The child, after fork: never returns.  The master may run other threads
 * (nats.c's, the program's own), whose locks fork copies as they were, so
 * an exec'd worker makes only system calls before execvpe (prctl, getppid,
 * sigprocmask, close, close_range, fcntl, dup2, write, _exit) and reads
 * what the parent prepared; glibc's execvpe searches PATH in a buffer on the
 * stack, without malloc.  A forked worker (fn) runs on in the copy, which
 * is why nats:// queues are refused for it (poolq.c).
 */
static void child(ipcx_pool *p, unsigned si, struct spawn_fds *f, char **env)
{
	/* Die with the master.  If it died before prctl, our parent is now
	 * someone else: nobody would ever stop us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != p->master)
		_exit(0);
	pthread_sigmask(SIG_SETMASK, &p->child_mask, NULL);
	child_close_master_fds(p);
	if (p->o.argv)
		child_exec(p, f, env);
	struct pool_worker_init in = {
		.index = p->seat[si].index, .seat = si, .max_msg = p->o.max_msg,
		.ctl = f->ctl_child, .shared = p->sh, .wake = p->wake,
		.task_url = p->q == Q_SOCKET ? NULL : f->task_url,
		.result_url = p->q == Q_SOCKET ? NULL : f->result_url,
		.qmode = p->qmode, .cookie = p->seat[si].cookie,
	};
	pw_run_forked(&in, p->o.fn, p->o.arg);
}

/* The parent's side of a started exec: 0 if the program runs, else why not. */
static int exec_outcome(ipcx_pool *p, pid_t pid, struct spawn_fds *f)
{
	close(f->execp[1]);
	f->execp[1] = -1;
	int e = 0;
	ssize_t n;
	while ((n = read(f->execp[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(e))
		return 0; /* closed by the exec: it runs */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return ipcx_errdetail_set(-e, "pool: cannot run %s: %s", p->argv[0], strerror(e));
}

static void spawn_cleanup(struct spawn_fds *f, char **env)
{
	ipcx_close(f->ctl_child);
	close_pair(f->in);
	close_pair(f->out);
	close_pair(f->execp);
	free(env);
}

/* Start a worker for index in seat si. */
static int spawn(ipcx_pool *p, unsigned si, unsigned index)
{
	struct seat *s = &p->seat[si];
	*s = (struct seat){ .state = S_FREE, .index = index, .pidfd = -1, .ctl_fd = -1, .rx_fd = -1,
			    .tx_fd = -1, .lfd = -1 };
	p->gen++;
	atomic_store(&p->sh->seat[si].started, 0);
	struct spawn_fds f = { .in = { -1, -1 }, .out = { -1, -1 }, .execp = { -1, -1 } };
	char **env = NULL;
	int r = make_channels(p, si, &f);
	if (r == 0 && p->o.argv && pipe2(f.execp, O_CLOEXEC) < 0)
		r = -errno;
	if (r == 0 && p->o.argv && p->q != Q_STDIO && !(env = worker_env(p, si, &f)))
		r = -ENOMEM;
	if (r < 0) {
		spawn_cleanup(&f, env);
		close_channels(s);
		return r;
	}
	fflush(NULL); /* or the child would write what the parent had buffered */
	pid_t pid = fork();
	if (pid == 0)
		child(p, si, &f, env);
	r = pid < 0 ? ipcx_errdetail_set(-errno, "pool: fork: %s", strerror(errno)) : 0;
	if (r == 0 && p->o.argv)
		r = exec_outcome(p, pid, &f);
	spawn_cleanup(&f, env);
	if (r == 0 && (s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
		r = ipcx_errdetail_set(-errno, "pool: pidfd_open: %s (Linux 5.3 or later is needed)",
				       strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (r == 0)
		r = watch(p, s->pidfd, T_PID, si);
	if (r == 0 && s->ctl_fd >= 0)
		r = watch(p, s->ctl_fd, T_CTL, si);
	if (r == 0 && s->rx_fd >= 0)
		r = watch(p, s->rx_fd, T_RX, si);
	if (r < 0) {
		if (s->pidfd >= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			unwatch(p, s->pidfd);
			close(s->pidfd);
			s->pidfd = -1;
		}
		unwatch(p, s->ctl_fd);
		unwatch(p, s->rx_fd);
		close_channels(s);
		return r;
	}
	s->pid = pid;
	s->born_ns = pool_now_ns();
	/* A line filter cannot say it is up: it is once it runs. */
	s->state = p->q == Q_STDIO ? S_READY : S_STARTING;
	return 0;
}

static int free_seat(ipcx_pool *p)
{
	for (unsigned i = 0; i < p->nseats; i++)
		if (p->seat[i].state == S_FREE && p->seat[i].pidfd < 0)
			return (int)i;
	return -1;
}

/* ---- deaths, restarts, the crash loop ------------------------------------- */

static void begin_stop(ipcx_pool *p, int err);

/* Count an unrequested death; true if it makes a crash loop. */
static bool crash_counted(ipcx_pool *p, int64_t now)
{
	unsigned lim = p->o.crash_limit;
	p->deaths[p->ndeaths++ % lim] = now;
	if (p->ndeaths < lim)
		return false;
	int64_t oldest = p->deaths[p->ndeaths % lim];
	return now - oldest <= ms_ns(p->o.crash_window_ms);
}

/* The back-off for index i after a death at now of a worker born at born. */
static int64_t backoff_ns(ipcx_pool *p, struct wix *x, int64_t born, int64_t now)
{
	if (now - born >= ms_ns(p->o.backoff_max_ms))
		x->level = 0;
	else if (x->level < 31)
		x->level++;
	if (!x->level)
		return 0;
	int64_t d = ms_ns(p->o.backoff_ms) << (x->level - 1 < 20 ? x->level - 1 : 20);
	return d < ms_ns(p->o.backoff_max_ms) ? d : ms_ns(p->o.backoff_max_ms);
}

static void reload_step(ipcx_pool *p);
static void replaced(ipcx_pool *p, unsigned si);

/* An unrequested death (or a failed start) of a worker for index i. */
static void died_unasked(ipcx_pool *p, unsigned index, bool replacement, int64_t born)
{
	int64_t now = pool_now_ns();
	if (crash_counted(p, now)) {
		p->crashloop = true;
		snprintf(p->crash_why, sizeof(p->crash_why), "pool: crash loop: %u worker deaths "
			 "within %d ms; restarts stopped", p->o.crash_limit, p->o.crash_window_ms);
		begin_stop(p, -ECHILD);
		return;
	}
	if (p->stopping)
		return;
	struct wix *x = &p->ix[index];
	int64_t d = backoff_ns(p, x, born, now);
	if (replacement)
		p->reload_at = now + d;
	else if (x->seat < 0 && !(p->reload_new >= 0 && p->seat[p->reload_new].index == index))
		x->restart_at = now + (d ? d : 1);
}

/* Reap seat s, whose pidfd said it exited, and settle what it held. */
static void reap(ipcx_pool *p, unsigned si)
{
	struct seat *s = &p->seat[si];
	int st;
	while (waitpid(s->pid, &st, WNOHANG) < 0 && errno == EINTR)
		;
	/* (0 cannot be: the pidfd says it exited; ECHILD: someone else reaped it.) */
	while (task_drain(p, s))
		;
	task_seat_died(p, s);
	bool asked = s->state == S_RETIRING || p->stopping;
	bool replacement = (int)si == p->reload_new;
	unwatch(p, s->pidfd);
	unwatch(p, s->ctl_fd);
	unwatch(p, s->rx_fd);
	unwatch(p, s->tx_fd);
	close(s->pidfd);
	close_channels(s);
	s->pidfd = -1;
	s->state = S_FREE;
	unsigned index = s->index;
	if (p->ix[index].seat == (int)si)
		p->ix[index].seat = -1;
	if (replacement)
		p->reload_new = -1;
	if ((int)si == p->reload_old) {
		p->reload_old = -1;
		p->reload_next++;
	}
	if (!asked)
		died_unasked(p, index, replacement, s->born_ns);
	if (p->stopping && !p->stopped) {
		bool live = false;
		for (unsigned i = 0; i < p->nseats; i++)
			live |= p->seat[i].pidfd >= 0;
		p->stopped = !live;
	}
	reload_step(p);
	arm_timer(p);
}

/* Start what is due: restarts, the reload's next replacement; kill after the grace. */
static void due(ipcx_pool *p)
{
	int64_t now = pool_now_ns();
	if (p->stopping) {
		if (p->grace_end && now >= p->grace_end)
			for (unsigned i = 0; i < p->nseats; i++)
				pool_kill_seat(p, &p->seat[i]);
		arm_timer(p);
		return;
	}
	for (unsigned i = 0; i < p->n && !p->stopping; i++) {
		struct wix *x = &p->ix[i];
		if (x->seat >= 0 || !x->restart_at || x->restart_at > now)
			continue;
		int si = free_seat(p);
		if (si < 0)
			break;
		x->restart_at = 0;
		if (spawn(p, (unsigned)si, i) == 0) {
			x->seat = si;
			p->restarts++;
		} else {
			died_unasked(p, i, false, now);
		}
	}
	reload_step(p);
	arm_timer(p);
}

void pool_kill_seat(ipcx_pool *p, struct seat *s)
{
	(void)p;
	if (s->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
}

/*
 * A nats:// queue of seat s lost messages (a server switch, an overflow),
 * closed, or found nobody listening.  Which tasks or results were lost
 * nobody can tell, so the worker goes, and its death settles each task it
 * held by what it had started (task_seat_died).  Its queue descriptors stay
 * readable until then: not watched any more.
 */
void pool_queue_lost(ipcx_pool *p, struct seat *s)
{
	pool_kill_seat(p, s);
	s->broken = true;
	unwatch(p, s->rx_fd);
	unwatch(p, s->tx_fd);
}

/* Seat si's task channel (nats://, reply=1) is readable: nothing may come
 * there but a loss notice (-ECONNRESET, -EPIPE ...). */
static void tx_event(ipcx_pool *p, unsigned si)
{
	struct seat *s = &p->seat[si];
	if (s->tx && ipcx_recv(s->tx, p->rbuf, p->frame_cap, 0) != -EAGAIN)
		pool_queue_lost(p, s);
}

/* ---- reload and stop ------------------------------------------------------------ */

/* Send the in-band stop (after every task given) and the control one. */
static void send_stop(ipcx_pool *p, struct seat *s)
{
	struct frame f = { .kind = F_STOP };
	if (p->q == Q_STDIO) {
		/* A line filter stops at the end of its input. */
		ipcx_close(s->tx);
		s->tx = NULL;
		s->stop_owed = false;
		return;
	}
	ssize_t r = ipcx_send(s->tx, &f, FRAME, 0);
	s->stop_owed = r == -EAGAIN; /* its queue is full: again when it has room */
	if (s->ctl != s->tx && !s->stop_owed)
		ipcx_send(s->ctl, &f, FRAME, 0);
}

void pool_retire(ipcx_pool *p, struct seat *s)
{
	if (s->pidfd < 0 || s->state == S_RETIRING)
		return;
	s->state = S_RETIRING;
	send_stop(p, s);
}

static void reload_step(ipcx_pool *p)
{
	while (!p->stopping && p->reload_next >= 0 && p->reload_new < 0 && p->reload_old < 0) {
		if (p->reload_next >= (int)p->n) {
			p->reload_next = -1;
			return;
		}
		unsigned i = (unsigned)p->reload_next;
		if (p->ix[i].seat < 0) { /* dead: its restart brings the new one */
			p->reload_next++;
			continue;
		}
		if (p->reload_at > pool_now_ns())
			return;
		int si = free_seat(p);
		if (si < 0)
			return;
		p->reload_at = 0;
		if (spawn(p, (unsigned)si, i) < 0) {
			died_unasked(p, i, true, pool_now_ns());
			return;
		}
		p->reload_new = si;
		if (p->seat[si].state == S_READY) /* a line filter is up once it runs */
			replaced(p, (unsigned)si);
		return;
	}
}

/* The replacement said it is up: the old worker may go. */
static void replaced(ipcx_pool *p, unsigned si)
{
	struct seat *s = &p->seat[si];
	struct wix *x = &p->ix[s->index];
	p->reload_new = -1;
	if (x->seat >= 0) {
		p->reload_old = x->seat;
		pool_retire(p, &p->seat[x->seat]);
	} else {
		p->reload_next++;
	}
	x->seat = (int)si;
	x->restart_at = 0;
	reload_step(p);
}

IPCX_EXPORT int ipcx_pool_reload(ipcx_pool *p)
{
	if (!p)
		return -EINVAL;
	if (p->stopping)
		return ipcx_errdetail_set(-ESHUTDOWN, "pool: stopping");
	if (p->reload_next >= 0)
		return ipcx_errdetail_set(-EBUSY, "pool: a reload is running");
	p->reload_next = 0;
	p->reload_at = 0;
	reload_step(p);
	arm_timer(p);
	return 0;
}

static void begin_stop(ipcx_pool *p, int err)
{
	if (p->stopping)
		return;
	p->stopping = true;
	p->stop_err = err;
	p->reload_next = -1;
	for (unsigned i = 0; i < p->n; i++)
		p->ix[i].restart_at = 0;
	task_fail_pending(p, err);
	bool live = false;
	for (unsigned i = 0; i < p->nseats; i++)
		if (p->seat[i].pidfd >= 0) {
			pool_retire(p, &p->seat[i]);
			live = true;
		}
	p->stopped = !live;
	p->grace_end = pool_now_ns() + ms_ns(p->o.grace_ms);
	arm_timer(p);
}

/* ---- supervision ---------------------------------------------------------------- */

static void ctl_read(ipcx_pool *p, unsigned si)
{
	struct seat *s = &p->seat[si];
	if (s->ctl != s->rx) {
		struct frame f;
		ssize_t n;
		while (s->ctl && (n = ipcx_recv(s->ctl, &f, sizeof(f), 0)) >= 0) {
			/* Anything but its hello (F_LOST: its queue lost messages)
			 * gets the worker killed; its death settles its tasks. */
			if (n != (ssize_t)FRAME || f.kind != F_HELLO || f.dseq != (uint64_t)s->pid) {
				pool_kill_seat(p, s);
				return;
			}
			if (s->state == S_STARTING)
				pool_hello(p, s);
		}
	} else {
		task_drain(p, s); /* "socket": hello and results come this way */
	}
	if (s->state == S_READY)
		task_dispatch(p);
}

void pool_hello(ipcx_pool *p, struct seat *s)
{
	if (s->state != S_STARTING)
		return;
	/* Its queue's other end is open now: finish ours (a URL queue). */
	int r = poolq_up(p, s);
	if (r == 0 && p->q == Q_URL && p->qmode == QM_ACCEPT)
		r = watch(p, s->rx_fd, T_RX, (unsigned)(s - p->seat));
	if (r == 0 && s->tx_fd >= 0)
		r = watch(p, s->tx_fd, T_TX, (unsigned)(s - p->seat));
	if (r < 0) { /* its death settles it (it holds no task yet) and restarts it */
		pool_kill_seat(p, s);
		s->broken = true;
		return;
	}
	s->state = S_READY;
	if ((int)(s - p->seat) == p->reload_new)
		replaced(p, (unsigned)(s - p->seat));
}

static void signals_read(ipcx_pool *p)
{
	struct ipcx_siginfo si;
	while (ipcx_signals_next(p->sigs, 0, &si) == 0) {
		if (si.action == IPCX_SIG_STOP)
			begin_stop(p, -ECANCELED);
		else if (si.action == IPCX_SIG_RELOAD && !p->stopping && p->reload_next < 0)
			ipcx_pool_reload(p);
	}
}

static void handle(ipcx_pool *p, uint64_t data)
{
	unsigned si = (unsigned)data;
	uint64_t v;
	ssize_t n;
	switch ((int)(data >> 32)) {
	case T_WAKE:
		ipcx_event_wait(p->wake, 0, &v);
		break;
	case T_PID:
		reap(p, si);
		break;
	case T_CTL:
		ctl_read(p, si);
		break;
	case T_RX:
		task_drain(p, &p->seat[si]);
		break;
	case T_TX:
		tx_event(p, si);
		break;
	case T_SIG:
		signals_read(p);
		break;
	case T_TIMER:
		n = read(p->tfd, &v, sizeof(v));
		(void)n;
		due(p);
		break;
	}
}

bool pool_arm(ipcx_pool *p)
{
	/* From now on a worker that sends a result posts the wake-up event.
	 * Look once more after saying so (both sides fence): a result sent
	 * before the flag was seen is found here. */
	atomic_store(&p->sh->master_waiting, 1);
	bool got = false;
	for (unsigned i = 0; i < p->nseats; i++)
		if (p->seat[i].pidfd >= 0 && p->seat[i].inflight)
			got |= task_drain(p, &p->seat[i]);
	return got;
}

int pool_pump(ipcx_pool *p, int wait_ms)
{
	bool got = false;
	for (unsigned i = 0; i < p->nseats; i++) {
		p->seat[i].full = false;
		if (p->seat[i].pidfd >= 0 && p->seat[i].inflight)
			got |= task_drain(p, &p->seat[i]);
	}
	task_dispatch(p);
	for (unsigned i = 0; i < p->nseats; i++)
		if (p->seat[i].stop_owed)
			send_stop(p, &p->seat[i]);
	if (got || (wait_ms != 0 && pool_arm(p)))
		wait_ms = 0;
	struct epoll_event ev[16];
	int n = epoll_wait(p->ep, ev, 16, wait_ms);
	atomic_store_explicit(&p->sh->master_waiting, 0, memory_order_relaxed);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		handle(p, ev[i].data.u64);
	return n > 0 || got;
}

/* ---- the public calls ------------------------------------------------------------- */

static char **copy_argv(char *const *argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **c = calloc(n + 1, sizeof(*c));
	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(argv[i]))) {
			for (size_t j = 0; j < i; j++)
				free(c[j]);
			free(c);
			return NULL;
		}
	return c;
}

static void pool_free(ipcx_pool *p)
{
	for (unsigned i = 0; p->seat && i < p->nseats; i++) {
		struct seat *s = &p->seat[i];
		if (s->pidfd >= 0) { /* only when start failed half-way */
			pool_kill_seat(p, s);
			waitpid(s->pid, NULL, 0);
			close(s->pidfd);
		}
		close_channels(s);
	}
	task_free_all(p);
	if (p->ep >= 0)
		close(p->ep);
	if (p->tfd >= 0)
		close(p->tfd);
	ipcx_signals_close(p->sigs);
	ipcx_event_close(p->wake);
	ipcx_region_close(p->region);
	for (size_t i = 0; p->argv && p->argv[i]; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p->seat);
	free(p->ix);
	free(p->deaths);
	free(p->rbuf);
	free(p->sbuf);
	free(p);
}

static int setup(ipcx_pool *p)
{
	static unsigned counter;
	if (p->o.name)
		snprintf(p->name, sizeof(p->name), "%s", p->o.name);
	else
		snprintf(p->name, sizeof(p->name), "ipcx-pool-%d-%u", (int)getpid(),
			 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	p->n = p->o.workers;
	p->nseats = p->n + 1;
	p->master = getpid();
	p->frame_cap = FRAME + p->o.max_msg;
	p->reload_next = p->reload_new = p->reload_old = -1;
	p->seat = calloc(p->nseats, sizeof(*p->seat));
	p->ix = calloc(p->n, sizeof(*p->ix));
	p->deaths = calloc(p->o.crash_limit, sizeof(*p->deaths));
	p->rbuf = malloc(p->frame_cap);
	p->sbuf = malloc(p->frame_cap);
	if (!p->seat || !p->ix || !p->deaths || !p->rbuf || !p->sbuf ||
	    (p->o.argv && !(p->argv = copy_argv(p->o.argv))))
		return -ENOMEM;
	for (unsigned i = 0; i < p->nseats; i++)
		p->seat[i] = (struct seat){ .pidfd = -1, .ctl_fd = -1, .rx_fd = -1, .tx_fd = -1,
					    .lfd = -1 };
	for (unsigned i = 0; i < p->n; i++)
		p->ix[i].seat = -1;
	size_t size = sizeof(struct pool_shared) + p->nseats * sizeof(struct pool_seat);
	int r = ipcx_region_open("memfd:ipcx-pool", IPCX_REGION_CREATE, size, &p->region);
	if (r < 0)
		return r;
	p->sh = ipcx_region_addr(p->region);
	p->sh->magic = POOL_MAGIC;
	p->sh->nseats = p->nseats;
	if ((r = ipcx_event_open(0, 0, &p->wake)) < 0)
		return r;
	if ((p->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0)
		return -errno;
	if ((r = watch(p, ipcx_event_fileno(p->wake), T_WAKE, 0)) < 0 ||
	    (r = watch(p, p->tfd, T_TIMER, 0)) < 0)
		return r;
	pthread_sigmask(SIG_BLOCK, NULL, &p->child_mask);
	if (p->o.flags & IPCX_POOL_SIGNALS) {
		if ((r = ipcx_signals_shutdown(0, &p->sigs)) < 0 ||
		    (r = watch(p, ipcx_signals_fileno(p->sigs), T_SIG, 0)) < 0)
			return r;
	}
	for (unsigned i = 0; i < p->n; i++) {
		if ((r = spawn(p, i, i)) < 0)
			return r;
		p->ix[i].seat = (int)i;
	}
	return 0;
}

IPCX_EXPORT int ipcx_pool_start(const struct ipcx_pool_opts *o, ipcx_pool **ret)
{
	ipcx_errdetail_set(0, "%s", ""); /* no detail from an earlier call */
	if (!o || !ret)
		return ipcx_errdetail_set(-EINVAL, "pool: no options or no place for the pool");
	int r = check_opts(o);
	if (r < 0)
		return r;
	ipcx_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->o = *o;
	p->ep = p->tfd = -1;
	defaults(&p->o);
	r = parse_queue(p);
	if (r == 0)
		r = setup(p);
	if (r < 0) {
		pool_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

IPCX_EXPORT int ipcx_pool_run(ipcx_pool *p, int timeout_ms)
{
	if (!p)
		return -EINVAL;
	if (pattern_check_timeout(timeout_ms) < 0)
		return -EINVAL;
	int64_t end = timeout_ms < 0 ? INT64_MAX : pool_now_ns() + ms_ns(timeout_ms);
	for (;;) {
		if (p->stopped)
			return p->crashloop ? ipcx_errdetail_set(-ECHILD, "%s", p->crash_why) : 0;
		int64_t left = end - pool_now_ns();
		if (left <= 0 && timeout_ms >= 0) {
			pool_pump(p, 0);
			if (p->stopped)
				continue;
			pool_arm(p); /* ipcx_pool_fileno() says when to come back */
			return timeout_ms ? -ETIMEDOUT : -EAGAIN;
		}
		int r = pool_pump(p, timeout_ms < 0 ? -1 : (int)((left + 999999) / 1000000));
		if (r < 0)
			return r;
	}
}

IPCX_EXPORT int ipcx_pool_stop(ipcx_pool *p, int grace_ms)
{
	if (!p)
		return -EINVAL;
	if (grace_ms < -1)
		return ipcx_errdetail_set(-EINVAL, "pool: grace %d ms: want -1 (the pool's), 0 (none) "
					  "or a number of milliseconds (a timeout)", grace_ms);
	if (!p->stopping) {
		if (grace_ms >= 0)
			p->o.grace_ms = grace_ms;
		begin_stop(p, -ECANCELED);
	}
	while (!p->stopped) {
		int r = pool_pump(p, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

IPCX_EXPORT int ipcx_pool_stats(ipcx_pool *p, struct ipcx_pool_stats *ret)
{
	if (!p || !ret)
		return -EINVAL;
	struct ipcx_pool_stats st = { .done = p->done, .failed = p->failed,
				      .restarts = p->restarts, .requeued = p->requeued,
				      .stopped = p->stopped, .crashloop = p->crashloop };
	for (unsigned i = 0; i < p->nseats; i++) {
		struct seat *s = &p->seat[i];
		if (!s->head)
			continue;
		uint64_t started = p->q == Q_STDIO ? UINT64_MAX : atomic_load(&p->sh->seat[i].started);
		st.running += s->head->dseq <= started;
	}
	st.queued = p->unfinished - st.running;
	for (unsigned i = 0; i < p->n; i++)
		st.workers += p->ix[i].seat >= 0 && p->seat[p->ix[i].seat].state == S_READY;
	if (p->reload_next >= 0)
		st.reloading = p->n - (unsigned)p->reload_next;
	*ret = st;
	return 0;
}

IPCX_EXPORT pid_t ipcx_pool_pid(ipcx_pool *p, unsigned i)
{
	if (!p || i >= p->n)
		return -EINVAL;
	int si = p->ix[i].seat;
	return si >= 0 ? p->seat[si].pid : -ESRCH;
}

IPCX_EXPORT int ipcx_pool_fileno(ipcx_pool *p)
{
	return p ? p->ep : -EINVAL;
}

IPCX_EXPORT int ipcx_pool_close(ipcx_pool *p)
{
	if (!p)
		return 0;
	int r = ipcx_pool_stop(p, -1);
	pool_free(p);
	return r;
}
