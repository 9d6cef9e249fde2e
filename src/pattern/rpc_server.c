/*
 * The RPC server: takes requests (from a request ring, or from the
 * connections of a listener), and answers each on its caller's own way
 * back, at any later time, in any order, from any thread.  See rpc_int.h for
 * the wire and docs/rpc.md for the protocol.
 */
#include "rpc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define REPLY_WAIT_MS 1000 /* longest wait for room in a live caller's channel */
#define DEST_MAX      1024 /* connections (sockets) held at once */
#define RING_DEST_MAX 64   /* reply rings held at once (a ring has 64 peer slots) */

/* Where answers go: a client's reply ring, or a connection. */
struct dest {
	struct dest *next; /* in the server's list, while listed */
	ipcx_chan *ch;
	bool own;          /* close ch with the dest */
	pthread_mutex_t mu; /* one sender (and receiver) at a time */
	unsigned refs;     /* the list's, and each request's (under the server's lock) */
	bool listed;
	bool dead;         /* the client has gone: answers are dropped */
	uint64_t token;    /* rings: the client's token */
	char url[320];     /* rings: its reply ring */
	struct ipcx_proc who; /* rings: the client (its reply ring's listener) */
	uint64_t used;     /* rings: when last used, to choose one to let go */
	unsigned char *sbuf; /* sockets: frames are built here (under mu) */
	size_t scap;
	struct rpc_out out; /* sockets: answers to a batch, to go together (under mu) */
	bool dirty;         /* in the server's list of dests with answers waiting */
};

struct req {
	struct ipcx_rpc_req pub;
	struct ipcx_rpc_server *s;
	struct dest *d;
	struct req *prev, *next; /* requests not yet answered */
	unsigned char data[];
};

enum mode { M_RING, M_ACCEPT, M_CONN };

struct ipcx_rpc_server {
	enum mode mode;
	ipcx_chan *ch;   /* the request ring, the listener, or the connection */
	bool own_ch;
	bool owner;      /* rings: we created the request ring */
	bool told_gone;  /* rings, joined: our clients know the URL's server has gone */
	struct ipcx_proc self, owner_who;
	struct rpc_ringurl ru;
	pthread_mutex_t lock; /* dests, reqs, st */
	struct dest *dests;
	size_t ndests;
	struct req *reqs;
	uint64_t use;
	int ep;          /* sockets: the listener and every connection */
	struct epoll_event ev[64];
	int evn, evi;
	unsigned char *rbuf; /* sockets: frames are received here */
	size_t rcap;
	struct req *queue[RPC_BATCH_MAX]; /* sockets: the rest of a batch of requests */
	unsigned qh, qn;
	int qbell;       /* sockets: an eventfd in ep, readable while the queue holds any */
	bool qrung;
	struct dest *dirty[64]; /* dests with answers waiting to go together */
	unsigned ndirty;
	struct ipcx_rpc_stats st;
};

/*
 * The server whose ipcx_rpc_next() this thread called last: its answers
 * may wait to go out together; another thread's go at once.
 */
static __thread const struct ipcx_rpc_server *next_thread_of;

static void count(struct ipcx_rpc_server *s, uint64_t *ctr)
{
	pthread_mutex_lock(&s->lock);
	(*ctr)++;
	pthread_mutex_unlock(&s->lock);
}

/* ---- destinations --------------------------------------------------------------- */

static struct dest *dest_new(ipcx_chan *ch, bool own)
{
	struct dest *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->ch = ch;
	d->own = own;
	pthread_mutex_init(&d->mu, NULL);
	return d;
}

/*
 * A client killed with SIGKILL leaves its reply ring behind.  Remove it, if
 * the record says that very client made it (a System V key may since have
 * been taken by another).
 */
static void bury(const struct dest *d)
{
	struct ipcx_obj *o = NULL;
	if (ipcx_obj_find(d->url, IPCX_LS_NOPIDS, &o) == 0 && o->creator == d->who.pid)
		ipcx_obj_remove(d->url, 0);
	ipcx_objs_free(o, o ? 1 : 0);
}

static void dest_free(struct dest *d)
{
	struct ipcx_proc who;
	/* A reply ring whose listener, the client, has gone: it died (or it closed,
	 * and removed the ring itself; then there is nothing to bury). */
	bool orphan = d->url[0] && ipcx_peer(d->ch, &who) == -EPIPE;
	if (d->own)
		ipcx_close(d->ch);
	if (orphan)
		bury(d);
	pthread_mutex_destroy(&d->mu);
	rpc_out_free(&d->out);
	free(d->sbuf);
	free(d);
}

/* Drop a reference (under s->lock); the last one frees. */
static void dest_unref(struct dest *d)
{
	if (--d->refs == 0)
		dest_free(d);
}

/* Take d out of the list (under s->lock). */
static void dest_unlist(struct ipcx_rpc_server *s, struct dest *d)
{
	if (!d->listed)
		return;
	for (struct dest **p = &s->dests; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	d->listed = false;
	s->ndests--;
	dest_unref(d);
}

static void dest_list(struct ipcx_rpc_server *s, struct dest *d)
{
	d->next = s->dests;
	s->dests = d;
	d->listed = true;
	d->refs++;
	s->ndests++;
}

/* ---- rings: the clients' reply rings -------------------------------------------------- */

/*
 * Let go of a destination: answers to it are dropped from now on, and its
 * channel is closed once no request holds it.
 */
static void let_go(struct ipcx_rpc_server *s, struct dest *d)
{
	pthread_mutex_lock(&d->mu);
	d->dead = true;
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_lock(&s->lock);
	dest_unlist(s, d);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Make room in the list of clients (under s->lock): one whose client has
 * gone if there is one, else the least recently used (it is dialed again if
 * it calls again).
 */
static void evict_one(struct ipcx_rpc_server *s)
{
	struct dest *lru = NULL;
	for (struct dest *d = s->dests; d; d = d->next) {
		struct ipcx_proc who;
		if (d->dead || ipcx_peer(d->ch, &who) == -EPIPE) {
			lru = d;
			break;
		}
		if (!lru || d->used < lru->used)
			lru = d;
	}
	if (lru)
		dest_unlist(s, lru);
}

/* The client of token: listed already, or its reply ring dialed now; NULL if none. */
static struct dest *client_of(struct ipcx_rpc_server *s, uint64_t token)
{
	pthread_mutex_lock(&s->lock);
	for (struct dest *d = s->dests; d; d = d->next)
		if (d->token == token && !d->dead) {
			d->refs++;
			d->used = ++s->use;
			pthread_mutex_unlock(&s->lock);
			return d;
		}
	pthread_mutex_unlock(&s->lock);
	char url[320];
	ipcx_chan *ch;
	if (rpc_reply_url(&s->ru, token, url, sizeof(url)) < 0 || ipcx_dial(url, 0, &ch) < 0)
		return NULL; /* a token that names no ring: a bad or departed client */
	struct ipcx_proc who;
	struct dest *d = ipcx_peer(ch, &who) == 0 ? dest_new(ch, true) : NULL;
	if (!d) {
		ipcx_close(ch);
		return NULL;
	}
	d->token = token;
	d->who = who;
	snprintf(d->url, sizeof(d->url), "%s", url);
	pthread_mutex_lock(&s->lock);
	if (s->ndests >= RING_DEST_MAX)
		evict_one(s);
	dest_list(s, d);
	d->refs++; /* the caller's */
	d->used = ++s->use;
	pthread_mutex_unlock(&s->lock);
	return d;
}

/* ---- sending a frame to a destination (under d->mu) -------------------------------------- */

static int ring_put(ipcx_chan *ch, const struct rpc_hdr *h, const void *payload, int ms)
{
	void *slot;
	int r = ipcx_reserve(ch, RPC_HDR + h->len, ms, &slot);
	if (r < 0)
		return r;
	rpc_put(slot, h);
	if (h->len)
		memcpy((char *)slot + RPC_HDR, payload, h->len);
	return ipcx_commit(ch, RPC_HDR + h->len);
}

/*
 * A reply ring: at once if there is room; else, if the client still lives,
 * wait a little for it to make room (it takes replies whenever it calls).
 */
static int ring_send(struct dest *d, const struct rpc_hdr *h, const void *payload)
{
	int r = ring_put(d->ch, h, payload, 0);
	if (r != -EAGAIN)
		return r;
	struct ipcx_proc who;
	if (ipcx_peer(d->ch, &who) == -EPIPE)
		return -EPIPE;
	return ring_put(d->ch, h, payload, REPLY_WAIT_MS);
}

static int sock_send(struct dest *d, const struct rpc_hdr *h, const void *payload)
{
	size_t n = RPC_HDR + h->len;
	if (d->scap < n) {
		unsigned char *b = realloc(d->sbuf, n);
		if (!b)
			return -ENOMEM;
		d->sbuf = b;
		d->scap = n;
	}
	rpc_put(d->sbuf, h);
	if (h->len)
		memcpy(d->sbuf + RPC_HDR, payload, h->len);
	ssize_t w = ipcx_send(d->ch, d->sbuf, n, REPLY_WAIT_MS);
	return w < 0 ? (int)w : 0;
}

/* Send one frame to d; 0 or -errno (d is marked dead when its client has gone). */
static int dest_send(struct ipcx_rpc_server *s, struct dest *d, const struct rpc_hdr *h,
		     const void *payload)
{
	pthread_mutex_lock(&d->mu);
	int r = d->dead ? -EPIPE : s->mode == M_RING ? ring_send(d, h, payload)
						       : sock_send(d, h, payload);
	if (r == -EPIPE)
		d->dead = true;
	pthread_mutex_unlock(&d->mu);
	return r;
}

/* ---- answers to a batch, together (sockets) ----------------------------------------- */

/* Send what waits in d->out (under d->mu): 0, or minus the answers lost. */
static int flush_locked(struct dest *d)
{
	if (!d->out.n)
		return 0;
	size_t len;
	const void *m = rpc_out_msg(&d->out, &len);
	ssize_t w = d->dead ? -EPIPE : ipcx_send(d->ch, m, len, REPLY_WAIT_MS);
	int lost = w < 0 ? -(int)d->out.n : 0;
	rpc_out_clear(&d->out);
	if (w == -EPIPE)
		d->dead = true;
	return lost;
}

/* Send every answer that waits (the thread of ipcx_rpc_next, before it waits). */
static void flush_dirty(struct ipcx_rpc_server *s)
{
	for (unsigned i = 0; i < s->ndirty; i++) {
		struct dest *d = s->dirty[i];
		pthread_mutex_lock(&d->mu);
		int lost = -flush_locked(d);
		d->dirty = false;
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_lock(&s->lock);
		s->st.dropped += (uint64_t)lost; /* counted as replies when they were queued */
		s->st.replies -= (uint64_t)lost;
		dest_unref(d);
		pthread_mutex_unlock(&s->lock);
	}
	s->ndirty = 0;
}

/*
 * An answer on a connection.  While the thread that takes requests still
 * holds more of the batch this one came in, it waits to go out with their
 * answers (one system call, one wake-up of the client); otherwise it goes
 * now, with whatever waits for the same client.
 */
static int sock_answer(struct ipcx_rpc_server *s, struct dest *d, const struct rpc_hdr *h,
		       const void *payload)
{
	bool later = next_thread_of == s && s->qn > 0 && (d->dirty || s->ndirty < 64);
	pthread_mutex_lock(&d->mu);
	int r = 0;
	size_t limit = ipcx_max_msg(d->ch) < RPC_BATCH_BYTES ? ipcx_max_msg(d->ch) : RPC_BATCH_BYTES;
	if (d->out.n && (d->out.n >= RPC_BATCH_MAX || rpc_out_would(&d->out, h->len) > limit))
		r = flush_locked(d) < 0 ? -EPIPE : 0;
	if (r == 0 && (later || d->out.n)) {
		r = d->dead ? -EPIPE : rpc_out_add(&d->out, h, payload);
		if (r == 0 && !later)
			r = flush_locked(d) < 0 ? -EPIPE : 0;
	} else if (r == 0) {
		r = d->dead ? -EPIPE : sock_send(d, h, payload);
		if (r == -EPIPE)
			d->dead = true;
	}
	bool mark = later && r == 0 && d->out.n && !d->dirty;
	if (mark)
		d->dirty = true;
	pthread_mutex_unlock(&d->mu);
	if (mark) {
		pthread_mutex_lock(&s->lock);
		d->refs++;
		pthread_mutex_unlock(&s->lock);
		s->dirty[s->ndirty++] = d;
	}
	return r;
}

/* ---- requests --------------------------------------------------------------------- */

static struct req *req_new(struct ipcx_rpc_server *s, const struct rpc_hdr *h,
			   const unsigned char *payload)
{
	struct req *q = malloc(sizeof(*q) + h->len);
	if (!q)
		return NULL;
	memcpy(q->data, payload, h->len);
	q->pub.data = q->data;
	q->pub.len = h->len;
	q->pub.id = h->id;
	q->s = s;
	q->d = NULL;
	q->prev = q->next = NULL;
	return q;
}

/* Hand q (holding a reference on d) out: it joins the unanswered. */
static void req_out(struct ipcx_rpc_server *s, struct req *q, struct dest *d)
{
	q->d = d;
	pthread_mutex_lock(&s->lock);
	q->next = s->reqs;
	if (s->reqs)
		s->reqs->prev = q;
	s->reqs = q;
	s->st.calls++;
	s->st.pending++;
	pthread_mutex_unlock(&s->lock);
}

/*
 * Send the answer h (with payload) for q, then let go of q.  A caller that
 * has gone is the caller's loss: counted, -EPIPE to the server.
 */
static int answer(struct req *q, struct rpc_hdr *h, const void *payload)
{
	struct ipcx_rpc_server *s = q->s;
	h->id = q->pub.id;
	int r = s->mode != M_RING ? sock_answer(s, q->d, h, payload) : dest_send(s, q->d, h, payload);
	pthread_mutex_lock(&s->lock);
	if (q->prev)
		q->prev->next = q->next;
	else
		s->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	s->st.pending--;
	if (r == -EPIPE && s->mode == M_RING)
		dest_unlist(s, q->d); /* its client has gone: let go of its ring */
	if (r < 0)
		s->st.dropped++;
	else if (h->kind == RPC_ERROR)
		s->st.errors++;
	else
		s->st.replies++;
	dest_unref(q->d);
	pthread_mutex_unlock(&s->lock);
	free(q);
	return r;
}

static int answer_error(struct req *q, int err, const char *detail)
{
	size_t len = detail ? strnlen(detail, RPC_DETAIL_MAX) : 0;
	struct rpc_hdr h = { .kind = RPC_ERROR, .arg = (uint32_t)-err, .len = (uint32_t)len };
	return answer(q, &h, detail);
}

IPCX_EXPORT int ipcx_rpc_reply(struct ipcx_rpc_req *req, const void *msg, size_t len)
{
	if (!req || (!msg && len))
		return -EINVAL;
	struct req *q = (struct req *)req;
	size_t max = ipcx_max_msg(q->d->ch);
	if (len > max - RPC_HDR || len > UINT32_MAX) {
		char why[96];
		snprintf(why, sizeof(why), "the reply (%zu bytes) is larger than the channel takes "
					   "(%zu)", len, max - RPC_HDR);
		answer_error(q, -EMSGSIZE, why);
		return ipcx_errdetail_set(-EMSGSIZE, "%s", why);
	}
	struct rpc_hdr h = { .kind = RPC_REPLY, .len = (uint32_t)len };
	int r = answer(q, &h, msg);
	return r < 0 ? ipcx_errdetail_set(-EPIPE, "the caller has gone, or left its replies "
						  "unread: the reply is lost") : 0;
}

IPCX_EXPORT int ipcx_rpc_fail(struct ipcx_rpc_req *req, int err, const char *detail)
{
	if (!req || err >= 0 || err < -4095)
		return -EINVAL;
	int r = answer_error((struct req *)req, err, detail);
	return r < 0 ? ipcx_errdetail_set(-EPIPE, "the caller has gone: the error is lost") : 0;
}

/* ---- taking requests: rings ---------------------------------------------------------- */

/* Tell every client we know the URL's server has gone (a joined worker, once). */
static void tell_gone(struct ipcx_rpc_server *s, const struct ipcx_proc *who)
{
	struct rpc_hdr h = { .kind = RPC_GONE, .flags = RPC_F_CLOSED, .arg = (uint32_t)who->pid,
			     .aux = who->start };
	pthread_mutex_lock(&s->lock);
	size_t n = 0;
	struct dest *v[DEST_MAX];
	for (struct dest *d = s->dests; d && n < DEST_MAX; d = d->next) {
		d->refs++;
		v[n++] = d;
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->mu);
		if (!v[i]->dead) /* a ring full for 100 ms: its calls end at their timeouts */
			ring_put(v[i]->ch, &h, NULL, 100);
		pthread_mutex_unlock(&v[i]->mu);
		pthread_mutex_lock(&s->lock);
		dest_unref(v[i]);
		pthread_mutex_unlock(&s->lock);
	}
}

/*
 * One frame from the request ring: a request (returned in *ret), a hello
 * (the client is learnt), or junk (counted).  0 with *ret or NULL, or the
 * ring's error.
 */
static int take_ring(struct ipcx_rpc_server *s, int ms, struct req **ret)
{
	const void *m;
	ssize_t n = ipcx_peek(s->ch, ms, &m);
	if (n < 0)
		return (int)n;
	struct rpc_hdr h;
	struct req *q = NULL;
	bool ok = rpc_get(m, (size_t)n, &h) == 0 && (h.kind == RPC_REQUEST || h.kind == RPC_HELLO);
	if (ok && h.kind == RPC_REQUEST)
		q = req_new(s, &h, (const unsigned char *)m + RPC_HDR);
	ipcx_release(s->ch); /* copied: the ring's room is free for others */
	*ret = NULL;
	if (!ok) {
		count(s, &s->st.malformed);
		return 0;
	}
	struct dest *d = client_of(s, h.aux);
	if (h.kind == RPC_HELLO || !d || !q) {
		if (h.kind == RPC_REQUEST)
			count(s, &s->st.dropped); /* nobody to answer, or no memory */
		free(q);
		if (d) {
			pthread_mutex_lock(&s->lock);
			dest_unref(d);
			pthread_mutex_unlock(&s->lock);
		}
		return 0;
	}
	req_out(s, q, d);
	/*
	 * A worker that joined tells the caller it holds the call, so that the
	 * caller fails it at once if this process dies (docs/rpc.md).
	 */
	if (!s->owner) {
		struct rpc_hdr t = { .kind = RPC_TAKEN, .id = h.id, .arg = (uint32_t)s->self.pid,
				     .aux = s->self.start };
		dest_send(s, d, &t, NULL);
	}
	*ret = q;
	return 0;
}

static int next_ring(struct ipcx_rpc_server *s, int64_t deadline, struct req **ret)
{
	for (;;) {
		int r = take_ring(s, rpc_ms_left(deadline), ret);
		if (r == -EPIPE && !s->owner && !s->told_gone) {
			tell_gone(s, &s->owner_who);
			s->told_gone = true;
		}
		if (r < 0)
			return r == -EPIPE ? ipcx_errdetail_set(-EPIPE, "the server that owns the URL "
									 "has gone") : r;
		if (*ret)
			return 0;
	}
}

/* ---- taking requests: sockets -------------------------------------------------------- */

static int watch_conn(struct ipcx_rpc_server *s, struct dest *d)
{
	int fd = ipcx_fileno(d->ch);
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = d };
	if (fd < 0)
		return fd;
	return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

/* A connection has gone: out of the poll set, the pending events and the list. */
static void drop_conn(struct ipcx_rpc_server *s, struct dest *d)
{
	int fd = ipcx_fileno(d->ch);
	if (fd >= 0)
		epoll_ctl(s->ep, EPOLL_CTL_DEL, fd, NULL);
	for (int i = s->evi; i < s->evn; i++)
		if (s->ev[i].data.ptr == d)
			s->ev[i].data.ptr = NULL;
	let_go(s, d);
}

static void accept_all(struct ipcx_rpc_server *s)
{
	ipcx_chan *ch;
	while (ipcx_accept(s->ch, 0, &ch) == 0) {
		pthread_mutex_lock(&s->lock);
		bool full = s->ndests >= DEST_MAX;
		pthread_mutex_unlock(&s->lock);
		struct dest *d = full ? NULL : dest_new(ch, true);
		if (!d) {
			ipcx_close(ch); /* too many clients: this one is refused */
			continue;
		}
		pthread_mutex_lock(&s->lock);
		dest_list(s, d);
		pthread_mutex_unlock(&s->lock);
		if (watch_conn(s, d) < 0)
			drop_conn(s, d);
	}
}

/* A request from d (a frame of n bytes) joins the queue of those taken. */
static void queue_request(struct ipcx_rpc_server *s, struct dest *d, const unsigned char *f,
			  size_t n)
{
	struct rpc_hdr h;
	if (rpc_get(f, n, &h) < 0 || h.kind != RPC_REQUEST) {
		count(s, &s->st.malformed);
		return;
	}
	struct req *q = req_new(s, &h, f + RPC_HDR);
	if (!q || s->qn == RPC_BATCH_MAX) {
		free(q);
		count(s, &s->st.dropped);
		return;
	}
	pthread_mutex_lock(&s->lock);
	d->refs++;
	pthread_mutex_unlock(&s->lock);
	req_out(s, q, d);
	s->queue[(s->qh + s->qn++) % RPC_BATCH_MAX] = q;
}

/* Requests that came together: each is a frame of its own, checked on its own. */
static void take_batch(struct ipcx_rpc_server *s, struct dest *d, const unsigned char *p,
		       size_t n, unsigned count_)
{
	if (rpc_batch_check(p, n, count_) < 0) {
		count(s, &s->st.malformed); /* its frames do not add up: none is trusted */
		return;
	}
	size_t len;
	for (size_t off = 0; off < n;) {
		size_t at = off;
		rpc_batch_next(p, n, &off, &len);
		queue_request(s, d, p + at, len);
	}
}

/*
 * The rest of a batch waits in the queue, not in a socket: the bell makes
 * ep (the server's descriptor) readable for it all the same, so that a
 * server that polls takes it.
 */
static void queue_bell(struct ipcx_rpc_server *s)
{
	bool want = s->qn > 0;
	if (want == s->qrung || s->qbell < 0)
		return;
	uint64_t v = 1;
	ssize_t r = want ? write(s->qbell, &v, sizeof(v)) : read(s->qbell, &v, sizeof(v));
	if (r == (ssize_t)sizeof(v))
		s->qrung = want;
}

/* The next request taken: 1 and *ret, or 0. */
static int queue_pop(struct ipcx_rpc_server *s, struct req **ret)
{
	if (!s->qn)
		return 0;
	*ret = s->queue[s->qh];
	s->qh = (s->qh + 1) % RPC_BATCH_MAX;
	s->qn--;
	queue_bell(s);
	return 1;
}

/* One message from connection d: 1 with a request in *ret, 0 nothing, -EPIPE gone. */
static int take_conn(struct ipcx_rpc_server *s, struct dest *d, struct req **ret)
{
	ssize_t n;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		n = s->rcap ? ipcx_recv(d->ch, s->rbuf, s->rcap, 0) : -EMSGSIZE;
		size_t max = ipcx_max_msg(d->ch);
		if (n != -EMSGSIZE || s->rcap >= max)
			break;
		size_t cap = s->rcap ? s->rcap * 4 : 4096;
		unsigned char *b = realloc(s->rbuf, cap < max ? cap : max);
		if (!b) {
			n = -ENOMEM;
			break;
		}
		s->rbuf = b;
		s->rcap = cap < max ? cap : max;
	}
	pthread_mutex_unlock(&d->mu);
	if (n == -EAGAIN || n == -ETIMEDOUT)
		return 0;
	if (n < 0) {
		if (n != -EPIPE) /* a broken stream: nothing more can be read from it */
			count(s, &s->st.malformed);
		return -EPIPE;
	}
	struct rpc_hdr h;
	if (rpc_get(s->rbuf, (size_t)n, &h) < 0 ||
	    (h.kind != RPC_REQUEST && h.kind != RPC_BATCH)) {
		count(s, &s->st.malformed);
		return 0;
	}
	if (h.kind == RPC_BATCH)
		take_batch(s, d, s->rbuf + RPC_HDR, h.len, h.arg);
	else
		queue_request(s, d, s->rbuf, (size_t)n);
	return queue_pop(s, ret);
}

static int next_sock(struct ipcx_rpc_server *s, int64_t deadline, struct req **ret)
{
	if (queue_pop(s, ret))
		return 0;
	flush_dirty(s); /* nothing more of the batch: its answers go now */
	for (;;) {
		while (s->evi < s->evn) {
			void *p = s->ev[s->evi++].data.ptr;
			if (!p || p == &s->qbell)
				continue; /* a connection dropped since; the queue's bell */
			if (p == s) {
				accept_all(s);
				continue;
			}
			int r = take_conn(s, p, ret);
			if (r > 0)
				return 0;
			if (r < 0) {
				drop_conn(s, p);
				if (s->mode == M_CONN)
					return ipcx_errdetail_set(-EPIPE, "the client has gone");
			}
		}
		int ms = rpc_ms_left(deadline);
		int n = epoll_wait(s->ep, s->ev, 64, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && (ms == 0 || rpc_now() >= deadline))
			return ms == 0 ? -EAGAIN : -ETIMEDOUT;
		s->evn = n;
		s->evi = 0;
	}
}

IPCX_EXPORT int ipcx_rpc_next(ipcx_rpc_server *s, int timeout_ms, struct ipcx_rpc_req **ret)
{
	if (!s || !ret)
		return -EINVAL;
	int r = rpc_check_timeout(timeout_ms);
	if (r < 0)
		return r;
	int64_t deadline = rpc_deadline(timeout_ms);
	struct req *q = NULL;
	next_thread_of = s;
	r = s->mode == M_RING ? next_ring(s, deadline, &q) : next_sock(s, deadline, &q);
	if (r < 0)
		return r;
	*ret = &q->pub;
	return 0;
}

/* ---- opening ------------------------------------------------------------------- */

static struct ipcx_rpc_server *server_new(enum mode mode)
{
	struct ipcx_rpc_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->mode = mode;
	s->ep = -1;
	s->qbell = -1;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

/* Sockets: the poll set over the listener (or the one connection). */
static int sock_setup(struct ipcx_rpc_server *s, ipcx_chan *first)
{
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep < 0)
		return -errno;
	s->qbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event b = { .events = EPOLLIN, .data.ptr = &s->qbell };
	if (s->qbell < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->qbell, &b) < 0)
		return -errno;
	if (s->mode == M_ACCEPT) {
		int fd = ipcx_fileno(s->ch);
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = s };
		if (fd < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0)
			return fd < 0 ? fd : -errno;
	}
	if (!first)
		return 0;
	struct dest *d = dest_new(first, s->mode == M_ACCEPT);
	if (!d)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	dest_list(s, d);
	pthread_mutex_unlock(&s->lock);
	int r = watch_conn(s, d);
	if (r < 0)
		drop_conn(s, d);
	return r;
}

static int serve_ring(struct ipcx_rpc_server *s, const char *url, unsigned flags)
{
	int r = rpc_ringurl_parse(url, &s->ru);
	if (r == 0)
		r = ipcx_proc_self(&s->self);
	if (r < 0)
		return r;
	s->owner = !(flags & IPCX_RPC_JOIN);
	r = s->owner ? ipcx_listen(url, flags & IPCX_INHERIT, &s->ch)
		     : ipcx_dial(url, flags & IPCX_INHERIT, &s->ch);
	if (r < 0)
		return r;
	s->own_ch = true;
	if (!s->owner && ipcx_peer(s->ch, &s->owner_who) < 0)
		return ipcx_errdetail_set(-ECONNREFUSED, "%s: no server to join", url);
	if (ipcx_max_msg(s->ch) <= RPC_HDR)
		return ipcx_errdetail_set(-EINVAL, "%s: max must be more than %u (the frame header)",
					  url, RPC_HDR);
	return 0;
}

IPCX_EXPORT int ipcx_rpc_serve(const char *url, unsigned flags, ipcx_rpc_server **ret)
{
	if (!url || !ret)
		return -EINVAL;
	if (flags & ~(IPCX_INHERIT | IPCX_RPC_JOIN))
		return ipcx_errdetail_set(-EINVAL, "ipcx_rpc_serve: unknown flags 0x%x",
					  flags & ~(IPCX_INHERIT | IPCX_RPC_JOIN));
	bool ring = rpc_is_ring(url);
	int r = rpc_check_scheme(url);
	if (r < 0)
		return r;
	if (!ring && (flags & IPCX_RPC_JOIN))
		return ipcx_errdetail_set(-EINVAL, "%s: to share a socket between workers, listen "
						   "with IPCX_ACCEPT, fork, and serve it with "
						   "ipcx_rpc_serve_chan", url);
	struct ipcx_rpc_server *s = server_new(ring ? M_RING : M_ACCEPT);
	if (!s)
		return -ENOMEM;
	if (ring) {
		r = serve_ring(s, url, flags);
	} else {
		r = ipcx_listen(url, IPCX_ACCEPT | (flags & IPCX_INHERIT), &s->ch);
		s->own_ch = r == 0;
		if (r == 0)
			r = sock_setup(s, NULL);
	}
	if (r < 0) {
		ipcx_rpc_server_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

IPCX_EXPORT int ipcx_rpc_serve_chan(ipcx_chan *c, unsigned flags, ipcx_rpc_server **ret)
{
	if (!c || !ret)
		return -EINVAL;
	if (flags)
		return ipcx_errdetail_set(-EINVAL, "ipcx_rpc_serve_chan: unknown flags 0x%x", flags);
	if (rpc_is_ring(ipcx_scheme(c)))
		return ipcx_errdetail_set(-EINVAL, "serve shm: and sysvshm: with ipcx_rpc_serve "
						   "(with IPCX_RPC_JOIN for more workers)");
	/* A listener hands out peers; anything else is one connection. */
	ipcx_chan *first = NULL;
	int r = ipcx_accept(c, 0, &first);
	bool listener = r == 0 || r == -EAGAIN || r == -ETIMEDOUT;
	if (!listener && r != -EOPNOTSUPP)
		return r;
	struct ipcx_rpc_server *s = server_new(listener ? M_ACCEPT : M_CONN);
	if (!s) {
		ipcx_close(first);
		return -ENOMEM;
	}
	s->ch = c;
	r = sock_setup(s, listener ? first : c);
	if (r < 0) {
		ipcx_rpc_server_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

/* ---- the rest ----------------------------------------------------------------- */

IPCX_EXPORT int ipcx_rpc_server_fileno(ipcx_rpc_server *s)
{
	if (!s)
		return -EINVAL;
	return s->mode == M_RING ? ipcx_fileno(s->ch) : s->ep;
}

IPCX_EXPORT int ipcx_rpc_server_addr(ipcx_rpc_server *s, char *buf, size_t cap)
{
	if (!s || !buf)
		return -EINVAL;
	return ipcx_addr(s->ch, buf, cap);
}

IPCX_EXPORT int ipcx_rpc_server_stats(ipcx_rpc_server *s, struct ipcx_rpc_stats *ret)
{
	if (!s || !ret)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	*ret = s->st;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/*
 * The server that owns a ring closes: what is still queued will never run
 * (-EPIPE to its callers), and every client it knows hears that it closed.
 */
static void close_ring_owner(struct ipcx_rpc_server *s)
{
	struct req *q;
	int r;
	while ((r = take_ring(s, 0, &q)) == 0)
		if (q)
			answer_error(q, -EPIPE, "the server closed before taking the call");
	tell_gone(s, &s->self);
}

IPCX_EXPORT int ipcx_rpc_server_close(ipcx_rpc_server *s)
{
	if (!s)
		return 0;
	/* Requests not answered: their callers must not wait for their timeout. */
	s->qn = 0; /* taken: failed below with the others */
	while (s->reqs)
		answer_error(s->reqs, -ECONNRESET, "the server closed before answering");
	flush_dirty(s);
	if (next_thread_of == s)
		next_thread_of = NULL;
	if (s->mode == M_RING && s->owner && s->ch)
		close_ring_owner(s);
	pthread_mutex_lock(&s->lock);
	while (s->dests) {
		struct dest *d = s->dests;
		if (s->mode == M_RING) {
			pthread_mutex_unlock(&s->lock);
			let_go(s, d);
			pthread_mutex_lock(&s->lock);
		} else {
			dest_unlist(s, d);
		}
	}
	pthread_mutex_unlock(&s->lock);
	int r = s->own_ch ? ipcx_close(s->ch) : 0;
	if (s->ep >= 0)
		close(s->ep);
	if (s->qbell >= 0)
		close(s->qbell);
	pthread_mutex_destroy(&s->lock);
	free(s->rbuf);
	free(s);
	return r;
}
