/*
 * The RPC client: calls matched to replies by id, any number in flight, a
 * deadline per call, a dead server noticed at once (the connection's close,
 * or on rings the watcher's GONE frame), and a redial on the next call.
 * See rpc_int.h for the wire and docs/rpc.md for the protocol.
 */
#include "rpc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* A result nobody was waiting for yet. */
struct done {
	struct done *next;
	uint64_t id;
	ssize_t status;
	size_t len;
	char data[];
};

/* Where the next result goes, straight from the channel: no copy between. */
struct sink {
	uint64_t want; /* 0: the first call to finish; else only this one */
	void *buf;
	size_t cap;
	bool got;
	struct ipcx_rpc_result res;
};

struct ipcx_rpc_client {
	bool ring;      /* shm:, sysvshm: */
	char *url;      /* NULL: a channel of the caller's (no redial) */
	unsigned flags;
	ipcx_chan *ch;  /* sockets: the connection; rings: the request ring */
	bool own_ch;
	bool down;      /* the server has gone: the next call dials again */

	/* rings */
	struct rpc_ringurl ru;
	ipcx_chan *rx;  /* our reply ring (we created it) */
	char rx_url[320];
	uint64_t token; /* names rx for the servers */
	struct rpc_watch watch;
	bool watching;
	struct ipcx_proc owner_who; /* the server that owns the URL */
	int owner;                  /* its watch slot, or -1 */

	unsigned char *rbuf; /* sockets: frames are received here */
	size_t rcap;
	unsigned char *sbuf; /* sockets: frames are built here */
	size_t scap;
	struct rpc_out out;  /* sockets: calls started with IPCX_RPC_MORE, not yet sent */
	bool flushing;

	struct rpc_ids ids;
	struct rpc_tab tab;
	struct done *dhead, **dtail;
	size_t ndone;
	struct ipcx_rpc_stats st;

	/* ipcx_rpc_client_fileno(): epoll over the channel, ready and timer */
	int ep, ready, timer, epch;
	bool ready_set;
	int64_t timer_at;
};

/* ---- results ----------------------------------------------------------------- */

static void put_detail(void *buf, size_t cap, const char *detail, size_t len)
{
	if (!cap)
		return;
	size_t n = len < cap - 1 ? len : cap - 1;
	memcpy(buf, detail, n);
	((char *)buf)[n] = 0;
}

static bool sink_takes(const struct sink *s, uint64_t id)
{
	return s && !s->got && (s->want == 0 || s->want == id);
}

static void update_ready(struct ipcx_rpc_client *c)
{
	if (c->ep < 0 || c->ready_set == (c->ndone > 0))
		return;
	uint64_t v = 1;
	ssize_t n = c->ndone ? write(c->ready, &v, sizeof(v)) : read(c->ready, &v, sizeof(v));
	(void)n;
	c->ready_set = c->ndone > 0;
}

/*
 * Call id has finished: status >= 0 with the reply's len bytes in data, or
 * an error with its detail in data.  It goes to the sink if that waits for
 * it, else to the queue for ipcx_rpc_wait().
 */
static void finish(struct ipcx_rpc_client *c, uint64_t id, ssize_t status, const void *data,
		   size_t len, struct sink *s)
{
	if (status >= 0)
		c->st.replies++;
	else
		c->st.errors++;
	if (status == -ETIMEDOUT)
		c->st.timeouts++;
	if (sink_takes(s, id)) {
		s->got = true;
		s->res.id = id;
		if (status >= 0 && len > s->cap) {
			s->res.status = -EMSGSIZE;
			ipcx_errdetail_set(-EMSGSIZE, "the reply (%zu bytes) is larger than the "
						      "buffer (%zu)", len, s->cap);
			put_detail(s->buf, s->cap, ipcx_errdetail(), strlen(ipcx_errdetail()));
		} else if (status >= 0) {
			memcpy(s->buf, data, len);
			s->res.status = (ssize_t)len;
		} else {
			s->res.status = status;
			ipcx_errdetail_set((int)status, "%.*s", (int)len, (const char *)data);
			put_detail(s->buf, s->cap, data, len);
		}
		return;
	}
	struct done *d = malloc(sizeof(*d) + len);
	if (!d)
		return; /* the call is lost; its caller sees nothing (out of memory) */
	d->next = NULL;
	d->id = id;
	d->status = status;
	d->len = len;
	memcpy(d->data, data, len);
	*c->dtail = d;
	c->dtail = &d->next;
	c->ndone++;
	update_ready(c);
}

/* Fail call id (if in flight) with err and a detail. */
static void fail_call(struct ipcx_rpc_client *c, uint64_t id, int err, const char *detail,
		      struct sink *s)
{
	if (rpc_tab_del(&c->tab, id))
		finish(c, id, err, detail, strlen(detail), s);
}

/* Fail every call held by watch slot w (or every call, w < 0). */
static void fail_calls(struct ipcx_rpc_client *c, int w, int err, const char *detail,
		       struct sink *s)
{
	uint64_t *ids;
	size_t n = rpc_tab_ids(&c->tab, w, &ids);
	for (size_t i = 0; i < n; i++)
		fail_call(c, ids[i], err, detail, s);
	free(ids);
}

/* The server has gone: every call fails, and the next call dials again. */
static void go_down(struct ipcx_rpc_client *c, int err, const char *detail, struct sink *s)
{
	fail_calls(c, -1, err, detail, s);
	c->down = true;
	if (c->ch && c->epch >= 0 && c->ep >= 0)
		epoll_ctl(c->ep, EPOLL_CTL_DEL, c->epch, NULL);
	c->epch = -1;
	if (c->own_ch)
		ipcx_close(c->ch);
	c->ch = NULL;
	c->owner = -1;
}

static void expire(struct ipcx_rpc_client *c, struct sink *s)
{
	if (!c->tab.hn)
		return;
	int64_t now = rpc_now();
	uint64_t id;
	while ((id = rpc_tab_expired(&c->tab, now)))
		fail_call(c, id, -ETIMEDOUT, "no reply in time", s);
}

/* ---- frames from the server ----------------------------------------------------- */

/* A worker has taken call id: watch it, so that its death fails the call. */
static void taken(struct ipcx_rpc_client *c, const struct rpc_hdr *h, struct sink *s)
{
	struct rpc_call *call = rpc_tab_find(&c->tab, h->id);
	if (!call || !c->watching)
		return;
	struct ipcx_proc who = { (pid_t)h->arg, h->aux };
	int k = rpc_watch_add(&c->watch, &who);
	if (k == -ESRCH) {
		char why[96];
		snprintf(why, sizeof(why), "the worker (pid %d) that took the call has gone",
			 (int)who.pid);
		fail_call(c, h->id, -ECONNRESET, why, s);
	} else if (k >= 0) {
		call->worker = (uint16_t)k;
	}
}

static void gone(struct ipcx_rpc_client *c, const struct rpc_hdr *h, struct sink *s)
{
	struct ipcx_proc who = { (pid_t)h->arg, h->aux };
	int k = c->watching ? rpc_watch_find(&c->watch, &who) : -1;
	bool owner = !c->down && who.pid == c->owner_who.pid && who.start == c->owner_who.start;
	char why[96];
	if (owner && (h->flags & RPC_F_DIED)) {
		snprintf(why, sizeof(why), "the server (pid %d) died", (int)who.pid);
		go_down(c, -ECONNRESET, why, s);
	} else if (owner && (h->flags & RPC_F_CLOSED)) {
		go_down(c, -EPIPE, "the server closed", s);
	} else if (k >= 0 && (h->flags & RPC_F_DIED)) {
		snprintf(why, sizeof(why), "the worker (pid %d) that took the call died", (int)who.pid);
		fail_calls(c, k, -ECONNRESET, why, s);
	}
	if (k >= 0 && (h->flags & RPC_F_DIED))
		rpc_watch_release(&c->watch, k);
}

static void on_batch(struct ipcx_rpc_client *c, const unsigned char *p, size_t n,
		     unsigned count, struct sink *s);

/* One frame of n bytes from the server (or our watcher); nested: inside a batch. */
static void on_frame_in(struct ipcx_rpc_client *c, const unsigned char *f, size_t n,
			struct sink *s, bool nested)
{
	struct rpc_hdr h;
	if (rpc_get(f, n, &h) < 0) {
		c->st.malformed++;
		return;
	}
	switch (h.kind) {
	case RPC_REPLY:
	case RPC_ERROR:
		if (!rpc_tab_del(&c->tab, h.id)) {
			c->st.late++; /* its call has ended, or was never ours */
			return;
		}
		if (h.kind == RPC_REPLY)
			finish(c, h.id, h.len, f + RPC_HDR, h.len, s);
		else
			finish(c, h.id, -(ssize_t)h.arg, f + RPC_HDR, h.len, s);
		return;
	case RPC_TAKEN:
		if (c->ring)
			taken(c, &h, s);
		return;
	case RPC_GONE:
		if (c->ring)
			gone(c, &h, s);
		return;
	case RPC_BATCH:
		if (!nested) {
			on_batch(c, f + RPC_HDR, h.len, h.arg, s);
			return;
		}
		c->st.malformed++; /* a batch in a batch is not valid */
		return;
	default:
		c->st.malformed++; /* a server never sends us requests or hellos */
	}
}

static void on_frame(struct ipcx_rpc_client *c, const unsigned char *f, size_t n, struct sink *s)
{
	on_frame_in(c, f, n, s, false);
}

/* Answers that came together: each is a frame of its own, checked on its own. */
static void on_batch(struct ipcx_rpc_client *c, const unsigned char *p, size_t n,
		     unsigned count, struct sink *s)
{
	if (rpc_batch_check(p, n, count) < 0) {
		c->st.malformed++; /* its frames do not add up: none of them is trusted */
		return;
	}
	size_t len;
	for (size_t off = 0; off < n;) {
		size_t at = off;
		rpc_batch_next(p, n, &off, &len);
		on_frame_in(c, p + at, len, s, true);
	}
}

/* ---- receiving ------------------------------------------------------------------ */

/* One frame from the channel, waiting up to ms; 0, or -ETIMEDOUT / -EAGAIN, or fatal. */
static int recv_ring(struct ipcx_rpc_client *c, int ms, struct sink *s)
{
	const void *m;
	ssize_t n = ipcx_peek(c->rx, ms, &m);
	if (n < 0)
		return (int)n;
	on_frame(c, m, (size_t)n, s);
	ipcx_release(c->rx);
	return 0;
}

static int recv_sock(struct ipcx_rpc_client *c, int ms, struct sink *s)
{
	if (!c->ch)
		return ms == 0 ? -EAGAIN : -ETIMEDOUT;
	for (;;) {
		ssize_t n = c->rcap ? ipcx_recv(c->ch, c->rbuf, c->rcap, ms) : -EMSGSIZE;
		if (n == -EMSGSIZE && c->rcap < ipcx_max_msg(c->ch)) {
			size_t cap = c->rcap ? c->rcap * 4 : 4096;
			if (cap > ipcx_max_msg(c->ch))
				cap = ipcx_max_msg(c->ch);
			unsigned char *b = realloc(c->rbuf, cap);
			if (!b)
				return -ENOMEM;
			c->rbuf = b;
			c->rcap = cap;
			continue;
		}
		if (n == -EPIPE) {
			go_down(c, -ECONNRESET, "the server closed the connection", s);
			return 0;
		}
		if (n < 0)
			return (int)n;
		on_frame(c, c->rbuf, (size_t)n, s);
		return 0;
	}
}

static int flush(struct ipcx_rpc_client *c);

/*
 * Take frames and expire calls until the sink has a result, or until
 * `until` (-1: no limit; a time already past: only what is there now).
 * 0, or -ETIMEDOUT / -EAGAIN when until came first, or a fatal error.
 */
static int pump(struct ipcx_rpc_client *c, int64_t until, struct sink *s)
{
	if (c->out.n && !c->flushing) { /* what waits for company goes now: we wait too */
		int r = flush(c);
		if (r < 0 && r != -EPIPE)
			return r;
	}
	for (;;) {
		expire(c, s);
		if (s && s->got)
			return 0;
		if (s && s->want == 0 && !c->tab.n && !c->ndone)
			until = 0; /* nothing in flight: take what is there (late replies), no more */
		int64_t first = rpc_tab_first_deadline(&c->tab);
		int64_t wake = until < 0 || (first >= 0 && first < until) ? first : until;
		int ms = rpc_ms_left(wake);
		int r = c->ring ? recv_ring(c, ms, s) : recv_sock(c, ms, s);
		if (r == -ETIMEDOUT || r == -EAGAIN) {
			if (until >= 0 && rpc_now() >= until) {
				expire(c, s);
				return s && s->got ? 0 : until == 0 ? -EAGAIN : r;
			}
			continue; /* a call's deadline: expire it */
		}
		if (r < 0)
			return r;
	}
}

/* ---- opening ------------------------------------------------------------------- */

static int make_reply_ring(struct ipcx_rpc_client *c, size_t max)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t t;
		int r = rpc_random(&t);
		if (r < 0)
			return r;
		if (c->ru.sysv)
			t = (c->ru.key & 0xffff0000u) | (t & 0xffffu);
		if (rpc_reply_url(&c->ru, t, c->rx_url, sizeof(c->rx_url)) < 0)
			continue; /* the server's own key, or 0 */
		char url[sizeof(c->rx_url) + 300];
		snprintf(url, sizeof(url), "%s?max=%zu%s", c->rx_url, max, c->ru.opts);
		r = ipcx_listen(url, c->flags & IPCX_INHERIT, &c->rx);
		if (r == -EEXIST)
			continue;
		if (r < 0)
			return r;
		c->token = t;
		return 0;
	}
	return ipcx_errdetail_set(-EEXIST, "%s: no free name for a reply ring", c->url);
}

static int send_frame(struct ipcx_rpc_client *c, const struct rpc_hdr *h, const void *payload,
		      int ms);
static void update_timer(struct ipcx_rpc_client *c);

/* Attach to the request ring and learn which process serves it. */
static int open_ring(struct ipcx_rpc_client *c)
{
	int r = ipcx_dial(c->url, c->flags & IPCX_INHERIT, &c->ch);
	if (r < 0)
		return r == -ENOENT ? ipcx_errdetail_set(-ECONNREFUSED, "%s: no server", c->url) : r;
	c->own_ch = true;
	r = ipcx_peer(c->ch, &c->owner_who);
	if (r < 0) {
		ipcx_close(c->ch);
		c->ch = NULL;
		return ipcx_errdetail_set(-ECONNREFUSED, "%s: no server (its ring is left by one "
							 "that has gone)", c->url);
	}
	if (!c->rx && (r = make_reply_ring(c, ipcx_max_msg(c->ch))) == 0) {
		r = rpc_watch_start(&c->watch, c->rx_url);
		c->watching = r == 0;
	}
	if (r == 0) {
		c->owner = rpc_watch_add(&c->watch, &c->owner_who);
		if (c->owner < 0)
			r = c->owner == -ESRCH
				    ? ipcx_errdetail_set(-ECONNREFUSED, "%s: no server (it has just gone)",
							 c->url)
				    : c->owner;
	}
	if (r < 0) {
		ipcx_close(c->ch);
		c->ch = NULL;
		c->owner = -1;
		return r;
	}
	/* Introduce ourselves, so that a server that closes can tell us. */
	struct rpc_hdr hello = { .kind = RPC_HELLO, .aux = c->token };
	send_frame(c, &hello, NULL, 0);
	return 0;
}

static int open_sock(struct ipcx_rpc_client *c)
{
	char buf[4200];
	int r = ipcx_dial(rpc_dial_url(c->url, buf, sizeof(buf)), c->flags & IPCX_INHERIT, &c->ch);
	if (r == -ENOENT || r == -EPIPE)
		r = ipcx_errdetail_set(-ECONNREFUSED, "%s: no server", c->url);
	c->own_ch = r == 0;
	return r;
}

static int poll_add_ch(struct ipcx_rpc_client *c);

/* Dial the URL again after the server went away (the reconnect rule). */
static int redial(struct ipcx_rpc_client *c)
{
	if (!c->url)
		return ipcx_errdetail_set(-EPIPE, "the server has gone (and a channel given to "
						  "ipcx_rpc_client_chan cannot be dialed again)");
	int r = c->ring ? open_ring(c) : open_sock(c);
	if (r < 0)
		return r;
	c->down = false;
	return poll_add_ch(c);
}

static struct ipcx_rpc_client *client_new(unsigned flags)
{
	struct ipcx_rpc_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->flags = flags;
	c->owner = -1;
	c->ep = c->ready = c->timer = c->epch = -1;
	c->dtail = &c->dhead;
	rpc_tab_init(&c->tab);
	return c;
}

IPCX_EXPORT int ipcx_rpc_dial(const char *url, unsigned flags, ipcx_rpc_client **ret)
{
	if (!url || !ret)
		return -EINVAL;
	if (flags & ~IPCX_INHERIT)
		return ipcx_errdetail_set(-EINVAL, "ipcx_rpc_dial: unknown flags 0x%x",
					  flags & ~IPCX_INHERIT);
	struct ipcx_rpc_client *c = client_new(flags);
	if (!c || !(c->url = strdup(url))) {
		free(c);
		return -ENOMEM;
	}
	c->ring = rpc_is_ring(url);
	int r = rpc_check_scheme(url);
	if (r == 0)
		r = rpc_ids_init(&c->ids);
	if (r == 0 && c->ring)
		r = rpc_ringurl_parse(url, &c->ru);
	if (r == 0)
		r = c->ring ? open_ring(c) : open_sock(c);
	if (r < 0) {
		ipcx_rpc_client_close(c);
		return r;
	}
	*ret = c;
	return 0;
}

IPCX_EXPORT int ipcx_rpc_client_chan(ipcx_chan *ch, unsigned flags, ipcx_rpc_client **ret)
{
	if (!ch || !ret)
		return -EINVAL;
	if (flags)
		return ipcx_errdetail_set(-EINVAL, "ipcx_rpc_client_chan: unknown flags 0x%x", flags);
	if (rpc_is_ring(ipcx_scheme(ch)))
		return ipcx_errdetail_set(-EINVAL, "a ring is one-way: dial shm: and sysvshm: "
						   "servers with ipcx_rpc_dial");
	struct ipcx_rpc_client *c = client_new(flags);
	if (!c)
		return -ENOMEM;
	c->ch = ch;
	int r = rpc_ids_init(&c->ids);
	if (r < 0) {
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

/* ---- sending -------------------------------------------------------------------- */

/* Write a frame into the request ring in place (reserve, fill, commit). */
static int ring_send(struct ipcx_rpc_client *c, const struct rpc_hdr *h, const void *payload,
		     int ms)
{
	void *slot;
	int r = ipcx_reserve(c->ch, RPC_HDR + h->len, ms, &slot);
	if (r < 0)
		return r;
	rpc_put(slot, h);
	if (h->len)
		memcpy((char *)slot + RPC_HDR, payload, h->len);
	return ipcx_commit(c->ch, RPC_HDR + h->len);
}

static int sock_send(struct ipcx_rpc_client *c, const struct rpc_hdr *h, const void *payload,
		     int ms)
{
	size_t n = RPC_HDR + h->len;
	if (c->scap < n) {
		unsigned char *b = realloc(c->sbuf, n);
		if (!b)
			return -ENOMEM;
		c->sbuf = b;
		c->scap = n;
	}
	rpc_put(c->sbuf, h);
	if (h->len)
		memcpy(c->sbuf + RPC_HDR, payload, h->len);
	ssize_t w = ipcx_send(c->ch, c->sbuf, n, ms);
	return w < 0 ? (int)w : 0;
}

static int send_frame(struct ipcx_rpc_client *c, const struct rpc_hdr *h, const void *payload,
		      int ms)
{
	return c->ring ? ring_send(c, h, payload, ms) : sock_send(c, h, payload, ms);
}

/* One try: a frame (h, payload), or a whole message (msg, len) already built. */
struct tx {
	const struct rpc_hdr *h;
	const void *payload;
	const void *msg;
	size_t len;
};

static int try_send(struct ipcx_rpc_client *c, const struct tx *t, int ms)
{
	if (!t->msg)
		return send_frame(c, t->h, t->payload, ms);
	ssize_t w = ipcx_send(c->ch, t->msg, t->len, ms);
	return w < 0 ? (int)w : 0;
}

/*
 * Send, waiting up to deadline for room.  While the way to the server is
 * full, take what the server sent us meanwhile: a server blocked on its
 * replies to us would otherwise never read our requests.
 */
static int send_tx(struct ipcx_rpc_client *c, const struct tx *t, int64_t deadline)
{
	int r = try_send(c, t, 0);
	while (r == -EAGAIN || r == -ETIMEDOUT) {
		if (deadline >= 0 && rpc_now() >= deadline)
			return ipcx_errdetail_set(-ETIMEDOUT, "no room to send the call in time");
		int p = pump(c, 0, NULL);
		if (p < 0 && p != -EAGAIN && p != -ETIMEDOUT)
			return p;
		if (c->down || !c->ch)
			return ipcx_errdetail_set(-EPIPE, "the server went away");
		int ms = rpc_ms_left(deadline);
		r = try_send(c, t, ms < 0 || ms > 1 ? 1 : ms);
	}
	return r;
}

static int send_request(struct ipcx_rpc_client *c, const struct rpc_hdr *h, const void *payload,
			int64_t deadline)
{
	struct tx t = { h, payload, NULL, 0 };
	return send_tx(c, &t, deadline);
}

/* Send the calls started with IPCX_RPC_MORE, together. */
static int flush(struct ipcx_rpc_client *c)
{
	struct tx t = { NULL, NULL, NULL, 0 };
	t.msg = rpc_out_msg(&c->out, &t.len);
	c->flushing = true;
	int r = send_tx(c, &t, -1); /* the calls' own deadlines still end them */
	c->flushing = false;
	rpc_out_clear(&c->out);
	if (r == -EPIPE && !c->down)
		go_down(c, -ECONNRESET, "the server went away", NULL);
	return r;
}

/* The largest batch: what a message holds, and no more than RPC_BATCH_BYTES. */
static size_t batch_limit(const struct ipcx_rpc_client *c)
{
	size_t max = ipcx_max_msg(c->ch);
	return max < RPC_BATCH_BYTES ? max : RPC_BATCH_BYTES;
}

/* A call that waits for company (IPCX_RPC_MORE): added to the batch. */
static int batch_call(struct ipcx_rpc_client *c, const struct rpc_hdr *h, const void *req,
		      bool more)
{
	if (c->out.n && (c->out.n >= RPC_BATCH_AUTO || rpc_out_would(&c->out, h->len) > batch_limit(c))) {
		int r = flush(c);
		if (r < 0)
			return r;
	}
	int r = rpc_out_add(&c->out, h, req);
	if (r == 0 && !more)
		r = flush(c);
	return r;
}

IPCX_EXPORT int ipcx_rpc_start(ipcx_rpc_client *c, const void *req, size_t len, int timeout_ms,
			       unsigned flags, uint64_t *id)
{
	if (!c || (!req && len) || !id)
		return -EINVAL;
	if (flags & ~IPCX_RPC_MORE)
		return ipcx_errdetail_set(-EINVAL, "ipcx_rpc_start: unknown flags 0x%x",
					  flags & ~IPCX_RPC_MORE);
	int r = rpc_check_timeout(timeout_ms);
	if (r < 0)
		return r;
	if (c->watching && atomic_exchange(&c->watch.news, 0))
		r = pump(c, 0, NULL); /* a server died while we were idle: learn it now */
	if (r == -EAGAIN || r == -ETIMEDOUT)
		r = 0;
	if (r == 0 && (c->down || !c->ch))
		r = redial(c);
	if (r == 0)
		r = rpc_tab_room(&c->tab);
	if (r < 0)
		return r;
	if (len > ipcx_max_msg(c->ch) - RPC_HDR || len > UINT32_MAX)
		return ipcx_errdetail_set(-EMSGSIZE, "the call (%zu bytes) is larger than the "
						     "channel takes (%zu)", len,
					  ipcx_max_msg(c->ch) - RPC_HDR);
	int64_t deadline = rpc_deadline(timeout_ms);
	uint64_t cid;
	do
		cid = rpc_ids_next(&c->ids);
	while (rpc_tab_find(&c->tab, cid));
	struct rpc_hdr h = { .kind = RPC_REQUEST, .id = cid, .aux = c->token,
			     .len = (uint32_t)len };
	/*
	 * On a socket, calls may travel together: one system call, one wake-up
	 * of the server, for many.  Not once a poller watches us (it would wait
	 * for replies to calls we have not sent), nor on rings (no system calls).
	 */
	if (!c->ring && c->ep < 0 && ((flags & IPCX_RPC_MORE) || c->out.n))
		r = batch_call(c, &h, req, flags & IPCX_RPC_MORE);
	else
		r = send_request(c, &h, req, deadline);
	if (r == -EPIPE && !c->ring && c->url && !c->down) {
		/*
		 * The connection broke while we were idle (the server went away):
		 * the call never left, so dial again and send it once more.
		 */
		go_down(c, -ECONNRESET, "the server closed the connection", NULL);
		r = redial(c);
		if (r == 0)
			r = send_request(c, &h, req, deadline);
	}
	if (r == -EPIPE) {
		if (!c->down)
			go_down(c, -ECONNRESET, "the server went away", NULL);
		return ipcx_errdetail_set(-EPIPE, "the server has gone");
	}
	if (r < 0)
		return r;
	rpc_tab_add(&c->tab, cid, deadline); /* room was made above */
	c->st.calls++;
	*id = cid;
	update_timer(c); /* a poller must wake at this call's deadline too */
	return 0;
}

/* ---- waiting ------------------------------------------------------------------- */

IPCX_EXPORT int ipcx_rpc_wait(ipcx_rpc_client *c, int timeout_ms, void *buf, size_t cap,
			      struct ipcx_rpc_result *ret)
{
	if (!c || (!buf && cap) || !ret)
		return -EINVAL;
	int r = rpc_check_timeout(timeout_ms);
	if (r < 0)
		return r;
	struct sink s = { .want = 0, .buf = buf, .cap = cap };
	if (c->dhead) {
		struct done *d = c->dhead;
		c->dhead = d->next;
		if (!c->dhead)
			c->dtail = &c->dhead;
		c->ndone--;
		update_ready(c);
		s.res.id = d->id;
		s.res.status = d->status;
		if (d->status >= 0 && d->len > cap) {
			s.res.status = -EMSGSIZE;
			ipcx_errdetail_set(-EMSGSIZE, "the reply (%zu bytes) is larger than the "
						      "buffer (%zu)", d->len, cap);
			put_detail(buf, cap, ipcx_errdetail(), strlen(ipcx_errdetail()));
		} else if (d->status >= 0) {
			memcpy(buf, d->data, d->len);
		} else {
			ipcx_errdetail_set((int)d->status, "%.*s", (int)d->len, d->data);
			put_detail(buf, cap, d->data, d->len);
		}
		free(d);
		s.got = true;
	} else {
		if (c->timer >= 0) { /* what woke a poller is being handled now */
			uint64_t v;
			ssize_t n = read(c->timer, &v, sizeof(v));
			(void)n;
			c->timer_at = -2;
		}
		r = pump(c, rpc_deadline(timeout_ms), &s);
	}
	update_timer(c);
	if (r < 0)
		return r;
	*ret = s.res;
	return 0;
}

IPCX_EXPORT ssize_t ipcx_rpc_call(ipcx_rpc_client *c, const void *req, size_t len, void *reply,
				  size_t cap, int timeout_ms)
{
	if (!c || (!reply && cap))
		return -EINVAL;
	uint64_t id;
	int r = ipcx_rpc_start(c, req, len, timeout_ms, 0, &id);
	if (r < 0)
		return r;
	struct sink s = { .want = id, .buf = reply, .cap = cap };
	r = pump(c, -1, &s); /* the call's own deadline ends the wait */
	update_timer(c);
	if (r < 0) {
		rpc_tab_del(&c->tab, id);
		return r;
	}
	return s.res.status;
}

/* ---- polling ------------------------------------------------------------------- */

static void update_timer(struct ipcx_rpc_client *c)
{
	if (c->timer < 0)
		return;
	int64_t at = rpc_tab_first_deadline(&c->tab);
	if (at == c->timer_at)
		return;
	struct itimerspec its = { 0 };
	if (at >= 0) {
		its.it_value.tv_sec = at / 1000000000;
		its.it_value.tv_nsec = at % 1000000000;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1; /* 0 would disarm it */
	}
	timerfd_settime(c->timer, TFD_TIMER_ABSTIME, &its, NULL);
	c->timer_at = at;
}

static void poll_close(struct ipcx_rpc_client *c)
{
	int *fds[] = { &c->ep, &c->ready, &c->timer };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]), *fds[i] = -1;
	c->epch = -1;
}

/* Put the channel that brings replies into the poll set. */
static int poll_add_ch(struct ipcx_rpc_client *c)
{
	if (c->ep < 0)
		return 0;
	ipcx_chan *src = c->ring ? c->rx : c->ch;
	int fd = src ? ipcx_fileno(src) : -1;
	if (fd < 0 || fd == c->epch)
		return fd < 0 && src ? fd : 0;
	struct epoll_event e = { .events = EPOLLIN };
	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &e) < 0 && errno != EEXIST)
		return ipcx_errdetail_set(-errno, "rpc: cannot poll the channel");
	c->epch = fd;
	return 0;
}

IPCX_EXPORT int ipcx_rpc_client_fileno(ipcx_rpc_client *c)
{
	if (!c)
		return -EINVAL;
	if (c->ep >= 0)
		return c->ep;
	if (c->out.n) { /* from now on calls go out at once: so do these */
		int r = flush(c);
		if (r < 0 && r != -EPIPE)
			return r;
	}
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	c->ready = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct epoll_event e = { .events = EPOLLIN };
	int r = 0;
	if (c->ep < 0 || c->ready < 0 || c->timer < 0 ||
	    epoll_ctl(c->ep, EPOLL_CTL_ADD, c->ready, &e) < 0 ||
	    epoll_ctl(c->ep, EPOLL_CTL_ADD, c->timer, &e) < 0)
		r = ipcx_errdetail_set(-errno, "rpc: cannot make the client's poll set");
	if (r == 0)
		r = poll_add_ch(c);
	if (r < 0) {
		poll_close(c);
		return r;
	}
	c->ready_set = false;
	update_ready(c);
	c->timer_at = -2;
	update_timer(c);
	return c->ep;
}

IPCX_EXPORT size_t ipcx_rpc_client_max(const ipcx_rpc_client *c)
{
	const ipcx_chan *src = !c ? NULL : c->ring ? c->rx : c->ch;
	size_t max = src ? ipcx_max_msg(src) : 0;
	return max > RPC_HDR ? max - RPC_HDR : 0;
}

IPCX_EXPORT int ipcx_rpc_client_stats(ipcx_rpc_client *c, struct ipcx_rpc_stats *ret)
{
	if (!c || !ret)
		return -EINVAL;
	*ret = c->st;
	ret->pending = c->tab.n;
	return 0;
}

IPCX_EXPORT int ipcx_rpc_client_close(ipcx_rpc_client *c)
{
	if (!c)
		return 0;
	int r = 0;
	if (c->own_ch)
		r = ipcx_close(c->ch);
	if (c->watching)
		rpc_watch_stop(&c->watch);
	int r2 = ipcx_close(c->rx); /* ours: removes the reply ring */
	if (r == 0)
		r = r2;
	while (c->dhead) {
		struct done *d = c->dhead;
		c->dhead = d->next;
		free(d);
	}
	poll_close(c);
	rpc_tab_fini(&c->tab);
	rpc_out_free(&c->out);
	free(c->rbuf);
	free(c->sbuf);
	free(c->url);
	free(c);
	return r;
}
