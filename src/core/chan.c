/*
 * The public channel API: parse the URL, find the transport, check the
 * arguments every transport would check, and dispatch.  Also the
 * level-triggered pollable descriptor for transports that read ahead.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/registry.h"
#include "core/tran.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define KNOWN_FLAGS (IPCX_INHERIT | IPCX_ACCEPT)

void ipcx__chan_init(ipcx_chan *c, const struct ipcx__chan_ops *ops,
		     const struct ipcx_tran *t, int fd, size_t max_msg)
{
	c->ops = ops;
	c->tran = t;
	c->fd = fd;
	c->max_msg = max_msg;
	c->buffered = false;
	c->pending = false;
	c->pollfd = -1;
	c->readyfd = -1;
	c->url = NULL;
	c->reserving = false;
	c->reserved = 0;
}

void ipcx__chan_fini(ipcx_chan *c)
{
	ipcx__close_fd(c->pollfd);
	ipcx__close_fd(c->readyfd);
	c->pollfd = c->readyfd = -1;
	free(c->url);
	c->url = NULL;
}

void ipcx__chan_pending(ipcx_chan *c, bool pending)
{
	if (c->pending == pending)
		return;
	c->pending = pending;
	if (c->readyfd < 0)
		return;
	/* Mirror the state in the eventfd: readable exactly while pending. */
	uint64_t v = 1;
	if (pending) {
		ssize_t r = write(c->readyfd, &v, sizeof(v));
		(void)r;
	} else {
		ssize_t r = read(c->readyfd, &v, sizeof(v));
		(void)r;
	}
}

static int open_url(const char *url, unsigned flags, ipcx_chan **ret, bool listen)
{
	ipcx__clear_detail();
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the channel (ret is NULL)");
	if (flags & ~KNOWN_FLAGS)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags & ~KNOWN_FLAGS);
	if (!listen && (flags & IPCX_ACCEPT))
		return ipcx__fail(-EINVAL, "IPCX_ACCEPT is for ipcx_listen()");
	struct ipcx__url *u = malloc(sizeof(*u));
	if (!u)
		return -ENOMEM;
	int r = ipcx__url_parse(url, u);
	const struct ipcx_tran *t = r ? NULL : ipcx__tran_find(u->scheme);
	if (!r && !t)
		r = ipcx__fail(-EINVAL, "%s: unknown scheme '%s'", url, u->scheme);
	if (!r)
		r = ipcx__url_opts(u, t->options);
	if (!r) {
		int (*open)(const struct ipcx__url *, unsigned, ipcx_chan **) =
			listen ? t->listen : t->dial;
		if (!open)
			r = ipcx__fail(-EOPNOTSUPP, "%s: %s: cannot %s", url, u->scheme,
				       listen ? "listen" : "dial");
		else
			r = open(u, flags, ret);
	}
	free(u);
	if (r == 0) {
		/* Remember the URL for ipcx_addr(); a channel works without it. */
		(*ret)->url = strdup(url);
	}
	return r;
}

IPCX_EXPORT int ipcx_listen(const char *url, unsigned flags, ipcx_chan **ret)
{
	return open_url(url, flags, ret, true);
}

IPCX_EXPORT int ipcx_dial(const char *url, unsigned flags, ipcx_chan **ret)
{
	return open_url(url, flags, ret, false);
}

IPCX_EXPORT int ipcx_accept(ipcx_chan *l, int timeout_ms, ipcx_chan **ret)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!l || !ret)
		return -EINVAL;
	if (!l->ops->accept)
		return -EOPNOTSUPP;
	return l->ops->accept(l, timeout_ms, ret);
}

IPCX_EXPORT ssize_t ipcx_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || (!msg && len))
		return -EINVAL;
	if (!c->ops->send)
		return -EOPNOTSUPP;
	if (len > c->max_msg)
		return -EMSGSIZE;
	return c->ops->send(c, msg, len, timeout_ms);
}

IPCX_EXPORT ssize_t ipcx_send_to(ipcx_chan *c, const char *to, const void *msg, size_t len,
				 int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || !to || (!msg && len))
		return -EINVAL;
	if (!c->ops->send_to)
		return -EOPNOTSUPP;
	if (len > c->max_msg)
		return -EMSGSIZE;
	return c->ops->send_to(c, to, msg, len, timeout_ms);
}

IPCX_EXPORT ssize_t ipcx_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || (!buf && cap))
		return -EINVAL;
	if (!c->ops->recv)
		return -EOPNOTSUPP;
	return c->ops->recv(c, buf, cap, timeout_ms);
}

/* One by one, under one deadline for the batch. */
static ssize_t sendv_loop(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	int64_t deadline = ipcx__deadline(timeout_ms);
	size_t i = 0;
	for (; i < n; i++) {
		int left = i ? ipcx__remaining_ms(deadline) : timeout_ms;
		ssize_t r = c->ops->send(c, msgs[i].buf, msgs[i].len, left);
		if (r < 0)
			return i ? (ssize_t)i : r;
	}
	return (ssize_t)i;
}

IPCX_EXPORT ssize_t ipcx_sendv(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n,
			       int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || (!msgs && n))
		return -EINVAL;
	if (!c->ops->send)
		return -EOPNOTSUPP;
	/* The batch ends before the first message that is wrong on its own. */
	size_t ok = 0;
	while (ok < n && msgs[ok].len <= c->max_msg && (msgs[ok].buf || !msgs[ok].len))
		ok++;
	if (ok == 0)
		return n == 0 ? 0 : msgs[0].len > c->max_msg ? -EMSGSIZE : -EINVAL;
	return c->ops->sendv ? c->ops->sendv(c, msgs, ok, timeout_ms)
			     : sendv_loop(c, msgs, ok, timeout_ms);
}

/* One by one: the first under the timeout, the others only if they wait. */
static ssize_t recvv_loop(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	for (size_t i = 0; i < n; i++) {
		ssize_t r = c->ops->recv(c, msgs[i].buf, msgs[i].cap, i ? 0 : timeout_ms);
		if (r < 0)
			return i ? (ssize_t)i : r;
		msgs[i].len = (size_t)r;
	}
	return (ssize_t)n;
}

/*
 * A stream's transport hands the messages out of what its read brought,
 * without a system call, and tries one read more when its buffer runs dry;
 * a packet socket's takes many with one recvmmsg.
 */
IPCX_EXPORT ssize_t ipcx_recvv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || (!msgs && n))
		return -EINVAL;
	if (!c->ops->recv)
		return -EOPNOTSUPP;
	/* The batch ends before the first buffer that is wrong on its own. */
	size_t ok = 0;
	while (ok < n && (msgs[ok].buf || !msgs[ok].cap))
		ok++;
	if (ok == 0)
		return n == 0 ? 0 : -EINVAL;
	return c->ops->recvv ? c->ops->recvv(c, msgs, ok, timeout_ms)
			     : recvv_loop(c, msgs, ok, timeout_ms);
}

/*
 * For a transport that reads ahead, its own descriptor is not enough: a
 * message can wait in our buffer while the kernel has nothing more.  Then
 * hand out an epoll descriptor over the transport's fd and an eventfd that
 * mirrors `pending`; it is made on first use, so it costs nothing to
 * programs that never poll.
 */
static int make_pollfd(ipcx_chan *c)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int ev = eventfd(c->pending ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ep < 0 || ev < 0)
		goto fail;
	struct epoll_event e = { .events = EPOLLIN };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0)
		goto fail;
	if (c->fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
		goto fail;
	c->pollfd = ep;
	c->readyfd = ev;
	return ep;
fail:;
	int err = -errno;
	ipcx__close_fd(ep);
	ipcx__close_fd(ev);
	return err;
}

IPCX_EXPORT int ipcx_fileno(ipcx_chan *c)
{
	if (!c)
		return -EINVAL;
	return c->ops->fileno ? c->ops->fileno(c) : ipcx__chan_pollfd(c);
}

int ipcx__chan_pollfd(ipcx_chan *c)
{
	if (!c->buffered)
		return c->fd;
	if (c->pollfd >= 0)
		return c->pollfd;
	return make_pollfd(c);
}

IPCX_EXPORT size_t ipcx_max_msg(const ipcx_chan *c)
{
	return c ? c->max_msg : 0;
}

IPCX_EXPORT const char *ipcx_scheme(const ipcx_chan *c)
{
	return c ? c->tran->scheme : NULL;
}

IPCX_EXPORT int ipcx_reserve(ipcx_chan *c, size_t len, int timeout_ms, void **slot)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || !slot)
		return -EINVAL;
	if (!c->ops->reserve)
		return -EOPNOTSUPP;
	if (len > c->max_msg)
		return -EMSGSIZE;
	int r = c->ops->reserve(c, len, timeout_ms, slot);
	if (r == 0) {
		c->reserving = true;
		c->reserved = len;
	}
	return r;
}

/*
 * More than was reserved would publish bytes the caller never owned (the
 * rest of the last cell, or beyond): refused, and the reservation stays
 * open, to be committed again or abandoned by close.
 */
IPCX_EXPORT int ipcx_commit(ipcx_chan *c, size_t len)
{
	if (!c)
		return -EINVAL;
	if (!c->ops->commit)
		return -EOPNOTSUPP;
	if (!c->reserving)
		return ipcx__fail(-EINVAL, "commit without reserve");
	if (len > c->reserved)
		return ipcx__fail(-EINVAL, "commit of %zu bytes, but %zu were reserved "
					   "(the reservation stays open)",
				  len, c->reserved);
	int r = c->ops->commit(c, len);
	if (r == 0)
		c->reserving = false;
	return r;
}

IPCX_EXPORT ssize_t ipcx_peek(ipcx_chan *c, int timeout_ms, const void **msg)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || !msg)
		return -EINVAL;
	return c->ops->peek ? c->ops->peek(c, timeout_ms, msg) : -EOPNOTSUPP;
}

IPCX_EXPORT int ipcx_release(ipcx_chan *c)
{
	if (!c)
		return -EINVAL;
	return c->ops->release ? c->ops->release(c) : -EOPNOTSUPP;
}

IPCX_EXPORT ssize_t ipcx_peekv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!c || (!msgs && n))
		return -EINVAL;
	if (!c->ops->peekv)
		return ipcx__fail(-EOPNOTSUPP, "batches in place are for broadcast rings (fanout=1)");
	return n ? c->ops->peekv(c, msgs, n, timeout_ms) : 0;
}

IPCX_EXPORT ssize_t ipcx_releasev(ipcx_chan *c, size_t n)
{
	if (!c)
		return -EINVAL;
	if (!c->ops->releasev)
		return ipcx__fail(-EOPNOTSUPP, "batches in place are for broadcast rings (fanout=1)");
	return c->ops->releasev(c, n);
}

IPCX_EXPORT ssize_t ipcx_read_ahead(ipcx_chan *c, uint64_t *cursor, void *buf, size_t cap,
				    int timeout_ms)
{
	if (!c || !cursor || (!buf && cap))
		return -EINVAL;
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	return c->ops->read_ahead ? c->ops->read_ahead(c, cursor, buf, cap, timeout_ms)
				  : -EOPNOTSUPP;
}

IPCX_EXPORT int ipcx_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	if (!c || !ret)
		return -EINVAL;
	return c->ops->stats ? c->ops->stats(c, ret) : -EOPNOTSUPP;
}

IPCX_EXPORT ssize_t ipcx_subscribers(ipcx_chan *c, struct ipcx_subscriber *buf, size_t n)
{
	if (!c || (n && !buf))
		return -EINVAL;
	return c->ops->subscribers ? c->ops->subscribers(c, buf, n) : -EOPNOTSUPP;
}

IPCX_EXPORT int ipcx_close(ipcx_chan *c)
{
	if (!c)
		return 0;
	ipcx__chan_fini(c);
	return c->ops->close(c);
}

IPCX_EXPORT int ipcx_addr(ipcx_chan *c, char *buf, size_t cap)
{
	if (!c || (!buf && cap))
		return -EINVAL;
	return c->ops->addr ? c->ops->addr(c, buf, cap) : ipcx__chan_url(c, buf, cap);
}

int ipcx__chan_url(ipcx_chan *c, char *buf, size_t cap)
{
	size_t n = c->url ? strlen(c->url) : 0;
	if (n >= cap)
		return -ENOSPC;
	memcpy(buf, c->url ? c->url : "", n + 1);
	return (int)n;
}
