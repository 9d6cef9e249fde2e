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
 * Locking: one mutex over the list and the queues; each thread sends
 * outside it.  Frames are shared by the queues and counted.
 */
#include "pubsub_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

/* One published message, shared by the queues of its subscribers. */
struct frame {
	_Atomic int refs;
	size_t tlen, len;
	char data[]; /* topic, NUL, payload */
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
	struct frame **q;
	size_t head, len;
	uint64_t sent, lost, unsent_lost;
};

struct sock_pub {
	struct ipcx_pub p;
	ipcx_chan *l;
	pthread_t acceptor;
	int stopfd;
	_Atomic bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* room made, a subscriber came or went */
	struct psub *subs;
	size_t threads; /* subscriber threads still running */
	size_t qcap, max;
	bool drop;
	int linger_ms;
	uint64_t lost_gone; /* lost by subscribers that have left */
};

static void frame_put(struct frame *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1)
		free(f);
}

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

/* Send one frame: header (lost before it, lag behind it), topic, payload. */
static int send_frame(struct psub *s, uint8_t *buf, const struct frame *f, uint64_t lost,
		      uint64_t lag)
{
	size_t n = PS_HDR + f->tlen + 1 + f->len;
	buf[0] = 'P', buf[1] = 'S', buf[2] = PS_VERSION, buf[3] = 'M';
	put_le(buf + 4, f->tlen, 2);
	put_le(buf + 6, 0, 2);
	put_le(buf + 8, lost, 8);
	put_le(buf + 16, lag, 8);
	memcpy(buf + PS_HDR, f->data, f->tlen + 1 + f->len);
	for (;;) {
		ssize_t r = ipcx_send(s->c, buf, n, SLICE_MS);
		if (r >= 0)
			return 0;
		if (r != -ETIMEDOUT || atomic_load(&s->pub->stop))
			return (int)r;
	}
}

/* Send what is queued, one message at a time, the lock held only to take it. */
static int drain(struct psub *s, uint8_t *buf)
{
	struct sock_pub *p = s->pub;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (!s->len) {
			pthread_mutex_unlock(&p->mu);
			return 0;
		}
		struct frame *f = s->q[s->head];
		s->head = (s->head + 1) % p->qcap;
		s->len--;
		uint64_t lost = s->unsent_lost, lag = s->len;
		s->unsent_lost = 0;
		/*
		 * Counted sent before it goes, so that a subscriber that has it
		 * never sees a count without it; a failed send moves it to lost.
		 */
		s->sent++;
		pthread_mutex_unlock(&p->mu);
		int r = send_frame(s, buf, f, lost, lag);
		frame_put(f);
		pthread_mutex_lock(&p->mu);
		if (r < 0) {
			s->sent--;
			s->lost++; /* it goes with the connection */
		}
		pthread_cond_broadcast(&p->cv); /* room for a blocked publisher */
		pthread_mutex_unlock(&p->mu);
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
	for (; s->len; s->len--, s->head = (s->head + 1) % p->qcap) {
		frame_put(s->q[s->head]);
		s->lost++;
	}
	p->lost_gone += s->lost;
	p->threads--;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	ipcx_close(s->c);
	close(s->wake);
	ps_prefixes_free(&s->pre);
	free(s->q);
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
			r = drain(s, buf);
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
		s->q = calloc(p->qcap, sizeof(*s->q));
	if (s)
		s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	bool ok = s && s->q && s->wake >= 0;
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
		if (s)
			free(s->q);
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
	return s->len >= p->qcap;
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
		int left = ps_left(deadline);
		if (left == 0)
			return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
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
	}
}

static void enqueue(struct sock_pub *p, struct psub *s, struct frame *f)
{
	if (full(p, s)) {
		s->lost++;
		s->unsent_lost++;
		return;
	}
	s->q[(s->head + s->len) % p->qcap] = f;
	atomic_fetch_add(&f->refs, 1);
	if (s->len++ == 0) {
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
	struct frame *f = malloc(sizeof(*f) + tlen + 1 + len);
	if (!f)
		return -ENOMEM;
	atomic_init(&f->refs, 1); /* ours, while we queue it */
	f->tlen = tlen;
	f->len = len;
	memcpy(f->data, topic, tlen);
	f->data[tlen] = 0;
	if (len)
		memcpy(f->data + tlen + 1, msg, len);
	pthread_mutex_lock(&p->mu);
	int r = p->drop ? 0 : wait_room(p, topic, tlen, timeout_ms == 0 ? 0 : ps_deadline(timeout_ms));
	for (struct psub *s = p->subs; r == 0 && s; s = s->next)
		if (s->active && ps_prefixes_match(&s->pre, topic, tlen))
			enqueue(p, s, f);
	pthread_mutex_unlock(&p->mu);
	frame_put(f);
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
		if (s->len)
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
	pthread_mutex_lock(&p->mu);
	while (busy(p) && ps_left(deadline) != 0) {
		pthread_mutex_unlock(&p->mu);
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		pthread_mutex_lock(&p->mu);
	}
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
