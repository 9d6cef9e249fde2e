/*
 * The client's watcher thread (rings only): it sleeps in epoll on the
 * pidfds of the server processes the client depends on, and turns a death
 * into a GONE frame on the client's own reply ring, so that a client asleep
 * on that ring wakes at once.  See rpc_int.h.
 */
#include "rpc_int.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define QUIT_TAG UINT64_MAX

/* Tell the client that the process of slot k has gone (retrying while its ring is full). */
static void report(struct rpc_watch *w, int k)
{
	pthread_mutex_lock(&w->mu);
	struct rpc_hdr h = { .kind = RPC_GONE, .flags = RPC_F_DIED,
			     .arg = (uint32_t)w->w[k].who.pid, .aux = w->w[k].who.start };
	pthread_mutex_unlock(&w->mu);
	unsigned char f[RPC_HDR];
	rpc_put(f, &h);
	while (!atomic_load(&w->stopping)) {
		ssize_t n = ipcx_send(w->tx, f, sizeof(f), 100);
		if (n == (ssize_t)sizeof(f) || (n < 0 && n != -ETIMEDOUT && n != -EAGAIN))
			break; /* sent, or the ring is broken: the client sees that itself */
	}
	pthread_mutex_lock(&w->mu);
	w->w[k].reported = true;
	pthread_mutex_unlock(&w->mu);
	atomic_store(&w->news, 1);
}

static void *watch_main(void *arg)
{
	struct rpc_watch *w = arg;
	struct epoll_event ev[16];
	while (!atomic_load(&w->stopping)) {
		int n = epoll_wait(w->ep, ev, 16, -1);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == QUIT_TAG)
				return NULL;
			int k = (int)ev[i].data.u64;
			pthread_mutex_lock(&w->mu);
			int fd = w->w[k].fd;
			bool fresh = fd >= 0 && !w->w[k].reported;
			if (fresh) /* once: a pidfd stays readable */
				epoll_ctl(w->ep, EPOLL_CTL_DEL, fd, NULL);
			pthread_mutex_unlock(&w->mu);
			if (fresh)
				report(w, k);
		}
	}
	return NULL;
}

int rpc_watch_start(struct rpc_watch *w, const char *reply_url)
{
	memset(w, 0, sizeof(*w));
	w->ep = w->quit = -1;
	for (unsigned k = 0; k < RPC_WATCH_MAX; k++)
		w->w[k].fd = -1;
	pthread_mutex_init(&w->mu, NULL);
	int r = ipcx_dial(reply_url, 0, &w->tx);
	if (r < 0)
		return r;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->quit = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = QUIT_TAG };
	if (w->ep < 0 || w->quit < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->quit, &e) < 0) {
		r = ipcx_errdetail_set(-errno, "rpc: cannot make the watcher's epoll set");
		rpc_watch_stop(w);
		return r;
	}
	/* The thread takes no signals: they belong to the program's threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&w->th, NULL, watch_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		rpc_watch_stop(w);
		return ipcx_errdetail_set(-r, "rpc: cannot start the watcher thread");
	}
	w->started = true;
	return 0;
}

void rpc_watch_stop(struct rpc_watch *w)
{
	if (w->started) {
		atomic_store(&w->stopping, 1);
		uint64_t one = 1;
		ssize_t n = write(w->quit, &one, sizeof(one));
		(void)n;
		pthread_join(w->th, NULL);
		w->started = false;
	}
	for (unsigned k = 0; k < RPC_WATCH_MAX; k++)
		if (w->w[k].fd >= 0)
			close(w->w[k].fd), w->w[k].fd = -1;
	if (w->ep >= 0)
		close(w->ep);
	if (w->quit >= 0)
		close(w->quit);
	w->ep = w->quit = -1;
	ipcx_close(w->tx);
	w->tx = NULL;
	pthread_mutex_destroy(&w->mu);
}

static int find_locked(struct rpc_watch *w, const struct ipcx_proc *who)
{
	for (unsigned k = 0; k < RPC_WATCH_MAX; k++)
		if (w->w[k].fd >= 0 && w->w[k].who.pid == who->pid &&
		    w->w[k].who.start == who->start)
			return (int)k;
	return -1;
}

int rpc_watch_find(struct rpc_watch *w, const struct ipcx_proc *who)
{
	pthread_mutex_lock(&w->mu);
	int k = find_locked(w, who);
	pthread_mutex_unlock(&w->mu);
	return k;
}

int rpc_watch_add(struct rpc_watch *w, const struct ipcx_proc *who)
{
	pthread_mutex_lock(&w->mu);
	int k = find_locked(w, who);
	if (k >= 0) {
		pthread_mutex_unlock(&w->mu);
		return k;
	}
	for (unsigned i = 0; i < RPC_WATCH_MAX && k < 0; i++)
		if (w->w[i].fd < 0)
			k = (int)i;
	int r = k < 0 ? ipcx_errdetail_set(-ENOSPC, "rpc: already watching %u servers",
					    RPC_WATCH_MAX) : 0;
	int fd = -1;
	if (r == 0)
		r = ipcx_proc_watch(who, 0, &fd);
	if (r == 0) {
		w->w[k].who = *who;
		w->w[k].fd = fd;
		w->w[k].reported = false;
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)k };
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
			r = -errno;
			close(fd);
			w->w[k].fd = -1;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return r < 0 ? r : k;
}

void rpc_watch_release(struct rpc_watch *w, int k)
{
	if (k < 0 || k >= (int)RPC_WATCH_MAX)
		return;
	pthread_mutex_lock(&w->mu);
	if (w->w[k].fd >= 0 && w->w[k].reported) {
		close(w->w[k].fd);
		w->w[k].fd = -1;
	}
	pthread_mutex_unlock(&w->mu);
}
