/*
 * Publish/subscribe over sockets, the publisher: it listens (IPCX_ACCEPT),
 * and keeps for each subscriber its prefixes, a bounded queue of messages
 * and a thread that sends them, so that a subscriber that stops reading
 * holds up its own thread only.  A message is matched against each
 * subscriber's prefixes once, at publication: one that nobody wants never
 * leaves the process.
 *
 * policy=drop: a full queue drops the new message for that subscriber and
 * counts it; the count travels in the next frame it gets.  policy=block:
 * the publisher waits until every matching subscriber has room, then
 * queues the message for all of them at once, so a send that times out
 * reached nobody.  A subscriber that hangs up (or is killed: its socket
 * closes) ends its thread, which takes it off the list and wakes a waiting
 * publisher.
 *
 * Batches: a subscriber's queue is two byte buffers of frames, already in
 * their wire form.  The publisher appends to one (a copy, no allocation
 * once the buffer has grown); the thread swaps it for the other, which it
 * has sent, and sends the whole batch with ipcx_sendv() (a writev of 64
 * frames on a stream).  The thread is woken (its eventfd) only when it
 * has gone to sleep on an empty queue, so one wake-up moves what piled up
 * meanwhile.  Measured before this (one malloc'd frame, one eventfd write,
 * one send and a condition broadcast a message): docs/pubsub.md.
 *
 * Locking: one mutex over the list and the queues' counts and input
 * buffers; each thread sends its output buffer outside it.
 */
#include "bytes_int.h"
#include "pubsub_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define DEF_QUEUE  1024
#define DEF_LINGER 2000
#define HELLO_MS   5000 /* a subscriber has this long to say what it wants */
#define SLICE_MS   200  /* a blocked send looks at the stop flag this often */
#define SEND_BATCH 256  /* frames to one ipcx_sendv(): four writev()s on a stream */
#define KEEP_BYTES (4u << 20) /* an emptied buffer larger than this is given back */
#define BATCH_BYTES (1u << 20) /* policy=block waits while this much waits for the next batch */
#define YIELD_BYTES (64u << 10) /* a batch this large: yield to a sending thread that waits */
#define FLEN       4    /* a frame's length, before it in a buffer */

/*
 * Frames queued for one subscriber, each as FLEN bytes of length then the
 * frame (PS_HDR, topic, NUL, payload).  Only the counts are shared with
 * the sending thread; the bytes are the publisher's (in) or its (out).
 */
struct qbuf {
	struct pat_bytes by;
	size_t n; /* frames */
};

struct sock_pub;

/* A subscriber, as the publisher keeps it. */
struct psub {
	struct sock_pub *pub;
	struct psub *next;
	ipcx_chan *c;
	int wake; /* eventfd: its queue has messages */
	struct ps_prefixes pre;
	bool active; /* said what it wants */
	bool idle;   /* its thread sleeps on an empty queue: wake it */
	struct qbuf in, out; /* the publisher appends to in; the thread sends out */
	size_t len;          /* frames queued, not yet handed to a send: in.n, the rest of out */
	size_t sending;      /* frames in the send under way */
	uint64_t sent, lost, unsent_lost;
};

struct sock_pub {
	struct ipcx_pub p;
	ipcx_chan *l;
	pthread_t acceptor;
	int stopfd;
	_Atomic bool stop;
	_Atomic int contended; /* sending threads waiting for mu: the publisher yields */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* room made, a subscriber came or went, a queue emptied */
	size_t waiting;    /* publishers or a close waiting on cv for room */
	struct psub *subs;
	size_t threads; /* subscriber threads still running */
	size_t qcap, max;
	bool drop;
	int linger_ms;
	uint64_t lost_gone; /* lost by subscribers that have left */
};

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Emptied: keep the bytes for the next batch, unless a burst made it large. */
static void qbuf_clear(struct qbuf *q)
{
	q->by.len = q->n = 0;
	if (q->by.cap > KEEP_BYTES) {
		free(q->by.p);
		q->by.p = NULL;
		q->by.cap = 0;
	}
}

/*
 * A sending thread takes the lock through this.  The publisher takes it once
 * a message and gives it up only for a moment: on a core shared with it
 * (the publisher's threads share its CPU), a thread that sleeps on the lock
 * was seen waiting 285 ms while the publisher filled the whole queue
 * (1024 frames of 64 KiB, 64 MB, copied out of cache).  The count tells the
 * publisher to yield the CPU after its message once a batch worth sending
 * (YIELD_BYTES) waits; not before, or each small message would go alone
 * (yielding after every one cost 4 subscribers of 64 B frames a factor 20).
 */
static void sender_lock(struct sock_pub *p)
{
	atomic_fetch_add(&p->contended, 1);
	pthread_mutex_lock(&p->mu);
	atomic_fetch_sub(&p->contended, 1);
}

/* ---- a subscriber's thread ----------------------------------------------------------------- */

/* The hello: 'P' 'S' version 'H', u16 count, u16 0, then NUL-terminated prefixes. */
static int read_hello(struct psub *s, uint8_t *buf, size_t cap)
{
	ssize_t n = -ETIMEDOUT;
	for (int waited = 0; waited < HELLO_MS && n == -ETIMEDOUT && !atomic_load(&s->pub->stop);
	     waited += SLICE_MS)
		n = ipcx_recv(s->c, buf, cap, SLICE_MS);
	if (n < 8 || buf[0] != 'P' || buf[1] != 'S' || buf[2] != PS_VERSION || buf[3] != 'H')
		return -EBADMSG;
	size_t count = (size_t)get_le(buf + 4, 2), off = 8;
	if (count > 4096)
		return -EBADMSG;
	const char **v = calloc(count ? count : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *nul = off < (size_t)n ? memchr(buf + off, 0, (size_t)n - off) : NULL;
		if (!nul) {
			free(v);
			return -EBADMSG;
		}
		v[i] = (const char *)buf + off;
		off = (size_t)(nul - buf) + 1;
	}
	int r = ps_prefixes_set(&s->pre, v, count);
	free(v);
	return r;
}

/*
 * Up to SEND_BATCH frames of out from byte *off into m, each with its lag
 * (frames behind it in this batch) written in: how many.
 */
static size_t gather(struct qbuf *out, size_t *off, size_t *left, struct ipcx_msg *m)
{
	size_t k = 0;
	while (k < SEND_BATCH && *left) {
		uint8_t *f = (uint8_t *)out->by.p + *off;
		size_t n = (size_t)get_le(f, FLEN);
		put_le(f + FLEN + 16, --*left, 8);
		m[k++] = (struct ipcx_msg){ .buf = f + FLEN, .len = n };
		*off += FLEN + n;
	}
	return k;
}

/*
 * Send msgs[0..k), retrying while only the time slice runs out: 0, or the
 * failure with *done set to those that went.  A close whose linger has
 * passed (stop) ends it, even while a slow reader takes a little at a time.
 */
static int send_batch(struct psub *s, const struct ipcx_msg *m, size_t k, size_t *done)
{
	*done = 0;
	while (*done < k) {
		ssize_t r = ipcx_sendv(s->c, m + *done, k - *done, SLICE_MS);
		if (r > 0)
			*done += (size_t)r;
		if (r < 0 && r != -ETIMEDOUT)
			return (int)r;
		if (*done < k && atomic_load(&s->pub->stop))
			return -ECANCELED;
		if (r == 0)
			return -EIO; /* not a promise of ipcx_sendv(): never loop on it */
	}
	return 0;
}

/*
 * Send out, batch by batch.  A batch leaves the queue (and is counted
 * sent) as it is handed to ipcx_sendv(), so that the queue's bound is on
 * what waits at the publisher, as before, and a subscriber that has a
 * frame never sees a count without it; a failed send moves what did not
 * go to lost.  After each batch a publisher waiting for room is woken.
 */
static int send_out(struct psub *s)
{
	struct sock_pub *p = s->pub;
	struct ipcx_msg m[SEND_BATCH];
	size_t off = 0, left = s->out.n;
	int r = 0;
	while (left && r == 0) {
		if (atomic_load(&p->stop)) {
			r = -ECANCELED; /* the linger has passed: the rest is lost */
			pthread_mutex_lock(&p->mu);
			s->lost += left;
			s->len -= left;
			pthread_mutex_unlock(&p->mu);
			break;
		}
		size_t k = gather(&s->out, &off, &left, m), done;
		sender_lock(p);
		s->len -= k;
		s->sent += k;
		s->sending = k;
		pthread_mutex_unlock(&p->mu);
		r = send_batch(s, m, k, &done);
		sender_lock(p);
		s->sending = 0;
		if (r < 0) {
			s->sent -= k - done; /* they go with the connection */
			s->lost += k - done + left;
			s->len -= left;
			s->active = false; /* gets nothing more, holds up nobody: leave() ends it */
		}
		if (p->waiting)
			pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	qbuf_clear(&s->out);
	return r;
}

/*
 * Send what is queued: swap the publisher's buffer for our empty one, send
 * it outside the lock, until nothing is left; then say we sleep.
 */
static int drain(struct psub *s)
{
	struct sock_pub *p = s->pub;
	for (;;) {
		sender_lock(p);
		if (!s->in.n) {
			s->idle = true;
			pthread_mutex_unlock(&p->mu);
			return 0;
		}
		struct qbuf t = s->out;
		s->out = s->in;
		s->in = t;
		pthread_mutex_unlock(&p->mu);
		int r = send_out(s);
		if (r < 0)
			return r;
	}
}

/* The subscriber hung up, or anything came that is not for us: read it. */
static int hear(struct psub *s, uint8_t *buf, size_t cap)
{
	ssize_t n = ipcx_recv(s->c, buf, cap, 0);
	return n == -EPIPE || n == -ECONNRESET ? -EPIPE : 0;
}

/* Take s off the list, count what it loses, free it. */
static void leave(struct psub *s)
{
	struct sock_pub *p = s->pub;
	pthread_mutex_lock(&p->mu);
	for (struct psub **pp = &p->subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	s->lost += s->in.n; /* out was sent or counted lost by send_out */
	p->lost_gone += s->lost;
	p->threads--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	ipcx_close(s->c);
	close(s->wake);
	ps_prefixes_free(&s->pre);
	free(s->in.by.p);
	free(s->out.by.p);
	free(s);
}

static void *sub_thread(void *arg)
{
	struct psub *s = arg;
	struct sock_pub *p = s->pub;
	size_t cap = p->max;
	uint8_t *buf = malloc(cap);
	int r = buf ? read_hello(s, buf, cap) : -ENOMEM;
	if (r == 0) {
		pthread_mutex_lock(&p->mu);
		s->active = true;
		s->idle = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	int cfd = r == 0 ? ipcx_fileno(s->c) : -1;
	while (r == 0 && cfd >= 0 && !atomic_load(&p->stop)) {
		struct pollfd pf[2] = { { .fd = s->wake, .events = POLLIN },
					{ .fd = cfd, .events = POLLIN } };
		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			r = hear(s, buf, cap);
		if (r == 0 && pf[0].revents) {
			uint64_t v;
			ssize_t rd = read(s->wake, &v, sizeof(v));
			(void)rd;
			r = drain(s);
		}
	}
	free(buf);
	leave(s);
	return NULL;
}

/* ---- accepting -------------------------------------------------------------------------- */

static void add_sub(struct sock_pub *p, ipcx_chan *c)
{
	struct psub *s = calloc(1, sizeof(*s));
	if (s)
		s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	bool ok = s && s->wake >= 0;
	if (ok) {
		s->pub = p;
		s->c = c;
		pthread_mutex_lock(&p->mu);
		s->next = p->subs;
		p->subs = s;
		p->threads++;
		pthread_mutex_unlock(&p->mu);
		if (pthread_create(&th, &at, sub_thread, s) != 0) {
			leave(s); /* closes c */
			c = NULL;
		}
	}
	pthread_attr_destroy(&at);
	if (!ok) {
		if (s && s->wake >= 0)
			close(s->wake);
		free(s);
		ipcx_close(c);
	}
}

static void *accept_thread(void *arg)
{
	struct sock_pub *p = arg;
	int lfd = ipcx_fileno(p->l);
	while (!atomic_load(&p->stop)) {
		struct pollfd pf[2] = { { .fd = p->stopfd, .events = POLLIN },
					{ .fd = lfd, .events = POLLIN } };
		if (poll(pf, 2, -1) < 0 || pf[0].revents)
			continue;
		ipcx_chan *c;
		if (ipcx_accept(p->l, 0, &c) == 0)
			add_sub(p, c);
	}
	return NULL;
}

/* ---- publishing ------------------------------------------------------------------------- */

static bool full(const struct sock_pub *p, const struct psub *s)
{
	return s->len >= p->qcap || (!p->drop && s->in.by.len >= BATCH_BYTES);
}

/* Until the deadline (-1: none): false when it has passed. */
static bool wait_cv(struct sock_pub *p, int64_t deadline)
{
	int left = ps_left(deadline);
	if (left == 0)
		return false;
	p->waiting++;
	if (left < 0) {
		pthread_cond_wait(&p->cv, &p->mu);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (long)(left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	p->waiting--;
	return true;
}

/* Block: wait (lock held) until every matching subscriber has room. */
static int wait_room(struct sock_pub *p, const char *topic, size_t tlen, int64_t deadline)
{
	for (;;) {
		bool room = true;
		for (struct psub *s = p->subs; s && room; s = s->next)
			room = !s->active || !ps_prefixes_match(&s->pre, topic, tlen) || !full(p, s);
		if (room)
			return 0;
		if (!wait_cv(p, deadline))
			return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
	}
}

/* The message, framed, at the end of s's queue; its thread woken if it sleeps. */
static void enqueue(struct sock_pub *p, struct psub *s, const char *topic, size_t tlen,
		    const void *msg, size_t len)
{
	size_t n = PS_HDR + tlen + 1 + len;
	if (full(p, s) || pat_bytes_room(&s->in.by, FLEN + n) < 0) {
		s->lost++; /* no room (drop), or no memory for it: dropped, and said so */
		s->unsent_lost++;
		return;
	}
	uint8_t *b = (uint8_t *)s->in.by.p + s->in.by.len;
	put_le(b, n, FLEN);
	b += FLEN;
	b[0] = 'P', b[1] = 'S', b[2] = PS_VERSION, b[3] = 'M';
	put_le(b + 4, tlen, 2);
	put_le(b + 6, 0, 2);
	put_le(b + 8, s->unsent_lost, 8); /* lost before it */
	put_le(b + 16, 0, 8);             /* lag: its thread writes it when it goes */
	memcpy(b + PS_HDR, topic, tlen);
	b[PS_HDR + tlen] = 0;
	if (len)
		memcpy(b + PS_HDR + tlen + 1, msg, len);
	s->unsent_lost = 0;
	s->in.by.len += FLEN + n;
	s->in.n++;
	s->len++;
	if (s->idle) {
		s->idle = false;
		uint64_t one = 1;
		ssize_t w = write(s->wake, &one, sizeof(one));
		(void)w;
	}
}

static ssize_t sp_send(ipcx_pub *pub, const char *topic, size_t tlen, const void *msg,
		       size_t len, int timeout_ms)
{
	struct sock_pub *p = (struct sock_pub *)pub;
	if (PS_HDR + tlen + 1 + len > p->max)
		return ipcx_errdetail_set(-EMSGSIZE, "%zu bytes and a topic of %zu: more than max "
						     "(%zu) less %u",
					  len, tlen, p->max, PS_HDR + 1);
	pthread_mutex_lock(&p->mu);
	int r = p->drop ? 0 : wait_room(p, topic, tlen, timeout_ms == 0 ? 0 : ps_deadline(timeout_ms));
	/* policy=block loses nothing: without memory for every copy, none is queued. */
	for (struct psub *s = p->subs; r == 0 && !p->drop && s; s = s->next)
		if (s->active && ps_prefixes_match(&s->pre, topic, tlen) &&
		    pat_bytes_room(&s->in.by, FLEN + PS_HDR + tlen + 1 + len) < 0)
			r = -ENOMEM;
	bool heavy = false; /* a batch worth its system calls waits for someone */
	for (struct psub *s = p->subs; r == 0 && s; s = s->next)
		if (s->active && ps_prefixes_match(&s->pre, topic, tlen)) {
			enqueue(p, s, topic, tlen, msg, len);
			heavy |= s->in.by.len >= YIELD_BYTES;
		}
	pthread_mutex_unlock(&p->mu);
	if (heavy && atomic_load_explicit(&p->contended, memory_order_relaxed))
		sched_yield(); /* a sending thread waits for the lock: let it have it */
	return r < 0 ? r : (ssize_t)len;
}

static ssize_t sp_subscribers(ipcx_pub *pub, struct ipcx_subscriber *buf, size_t n)
{
	struct sock_pub *p = (struct sock_pub *)pub;
	size_t count = 0;
	pthread_mutex_lock(&p->mu);
	for (struct psub *s = p->subs; s; s = s->next) {
		if (!s->active)
			continue;
		if (count < n)
			buf[count] = (struct ipcx_subscriber){
				.received = s->sent, .lost = s->lost, .lag = s->len };
		count++;
	}
	pthread_mutex_unlock(&p->mu);
	return (ssize_t)count;
}

static int sp_stats(ipcx_pub *pub, struct ipcx_pubsub_stats *ret)
{
	struct sock_pub *p = (struct sock_pub *)pub;
	pthread_mutex_lock(&p->mu);
	ret->lost = p->lost_gone;
	for (struct psub *s = p->subs; s; s = s->next) {
		ret->lost += s->lost;
		ret->subscribers += s->active;
		ret->lag = s->len > ret->lag ? s->len : ret->lag;
	}
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static int sp_addr(ipcx_pub *pub, char *buf, size_t cap)
{
	return ipcx_addr(((struct sock_pub *)pub)->l, buf, cap);
}

/* Any subscriber still has messages queued, or being sent. */
static bool busy(const struct sock_pub *p)
{
	for (const struct psub *s = p->subs; s; s = s->next)
		if (s->len || s->sending)
			return true;
	return false;
}

static void stop_all(struct sock_pub *p)
{
	atomic_store(&p->stop, true);
	uint64_t one = 1;
	ssize_t w = write(p->stopfd, &one, sizeof(one));
	(void)w;
	pthread_mutex_lock(&p->mu);
	for (struct psub *s = p->subs; s; s = s->next)
		w = write(s->wake, &one, sizeof(one));
	pthread_mutex_unlock(&p->mu);
}

static int sp_close(ipcx_pub *pub)
{
	struct sock_pub *p = (struct sock_pub *)pub;
	int64_t deadline = ps_deadline(p->linger_ms);
	/* The linger: until every queue is sent (each thread says so on cv), or the deadline. */
	pthread_mutex_lock(&p->mu);
	while (busy(p) && wait_cv(p, deadline))
		;
	pthread_mutex_unlock(&p->mu);
	stop_all(p);
	pthread_join(p->acceptor, NULL);
	pthread_mutex_lock(&p->mu);
	while (p->threads)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	int r = ipcx_close(p->l);
	close(p->stopfd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return r;
}

static const struct pub_ops sock_pub_ops = {
	.send = sp_send,
	.subscribers = sp_subscribers,
	.stats = sp_stats,
	.addr = sp_addr,
	.close = sp_close,
};

/* policy=, queue=, linger= are ours; the rest goes to the transport. */
static int parse(const char *url, struct sock_pub *p, char *out, size_t cap)
{
	static const char *const ours[] = { "policy", "queue", "linger", NULL };
	struct ps_url *u = malloc(sizeof(*u));
	int r = u ? ps_url_parse(url, u) : -ENOMEM;
	uint64_t q = DEF_QUEUE, linger = DEF_LINGER;
	const char *pol = r == 0 ? ps_url_get(u, "policy") : NULL;
	if (r == 0 && ps_url_get(u, "history"))
		r = ipcx_errdetail_set(-EINVAL, "%s: history= is for shared memory (a ring)", url);
	if (r == 0 && pol && strcmp(pol, "block") && strcmp(pol, "drop"))
		r = ipcx_errdetail_set(-EINVAL, "%s: policy=%s: want block or drop", url, pol);
	if (r == 0 && !(r = ps_url_num(u, "queue", 1, 1u << 20, &q)) &&
	    !(r = ps_url_num(u, "linger", 0, 3600000, &linger)))
		r = ps_url_make(u, ours, NULL, out, cap);
	p->drop = pol && !strcmp(pol, "drop");
	p->qcap = q;
	p->linger_ms = (int)linger;
	free(u);
	return r;
}

int ps_sock_pub(const char *url, unsigned flags, ipcx_pub **ret)
{
	struct sock_pub *p = calloc(1, sizeof(*p));
	char *turl = malloc(PS_URL_MAX);
	int r = p && turl ? parse(url, p, turl, PS_URL_MAX) : -ENOMEM;
	if (r == 0)
		r = ipcx_listen(turl, IPCX_ACCEPT, &p->l);
	free(turl);
	if (r < 0) {
		free(p);
		return r;
	}
	(void)flags;
	p->max = ipcx_max_msg(p->l);
	p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (p->stopfd < 0 || pthread_create(&p->acceptor, NULL, accept_thread, p) != 0) {
		r = p->stopfd < 0 ? -errno : -EAGAIN;
		if (p->stopfd >= 0)
			close(p->stopfd);
		ipcx_close(p->l);
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return r;
	}
	p->p.ops = &sock_pub_ops;
	*ret = &p->p;
	return 0;
}
