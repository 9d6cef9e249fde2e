/*
 * Publish/subscribe over sockets, the subscriber: it dials the publisher
 * and says which topics it wants (the hello, pubsub_int.h); when nobody is
 * there, or the publisher goes, it dials again, first after 10 ms, then
 * doubling up to 100 ms, so that publishers and subscribers start in any
 * order and a publisher that comes back is heard again.  Messages published
 * while it is not connected are not for it, as with any socket pub/sub.
 *
 * Its descriptor (ipcx_sub_fileno) is an epoll set of the connection's
 * descriptor and a timer that falls due when the next dial does: readable
 * while a message waits or a dial is due, both level-triggered.
 */
#include "pubsub_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_FIRST 10
#define BACKOFF_MAX   100

struct sock_sub {
	struct ipcx_sub s;
	char *url;  /* for the transport: our options taken out */
	ipcx_chan *c; /* NULL while not connected */
	int ep, timer, cfd;
	int backoff;
	int64_t next_dial;
	uint8_t *buf;
	size_t cap;
	uint64_t lost, lag;
};

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The timer falls due at the next dial (0: disarmed). */
static void arm(struct sock_sub *ss, int64_t at_ms)
{
	struct itimerspec it = { 0 };
	if (at_ms) {
		int64_t left = at_ms - ps_now_ms();
		if (left < 1)
			left = 1;
		it.it_value.tv_sec = left / 1000;
		it.it_value.tv_nsec = (left % 1000) * 1000000;
	}
	timerfd_settime(ss->timer, 0, &it, NULL);
	uint64_t v;
	ssize_t r = read(ss->timer, &v, sizeof(v)); /* not readable until it falls due again */
	(void)r;
}

static void hang_up(struct sock_sub *ss)
{
	if (ss->cfd >= 0)
		epoll_ctl(ss->ep, EPOLL_CTL_DEL, ss->cfd, NULL);
	ipcx_close(ss->c);
	ss->c = NULL;
	ss->cfd = -1;
	ss->backoff = BACKOFF_FIRST;
	ss->next_dial = ps_now_ms();
	arm(ss, ss->next_dial);
}

static int send_hello(struct sock_sub *ss)
{
	size_t len = 8;
	for (size_t i = 0; i < ss->s.pre.n; i++)
		len += strlen(ss->s.pre.v[i]) + 1;
	uint8_t *h = malloc(len);
	if (!h)
		return -ENOMEM;
	h[0] = 'P', h[1] = 'S', h[2] = PS_VERSION, h[3] = 'H';
	put_le(h + 4, ss->s.pre.all ? 0 : ss->s.pre.n, 2);
	put_le(h + 6, 0, 2);
	size_t off = 8;
	for (size_t i = 0; !ss->s.pre.all && i < ss->s.pre.n; i++) {
		size_t l = strlen(ss->s.pre.v[i]) + 1;
		memcpy(h + off, ss->s.pre.v[i], l);
		off += l;
	}
	ssize_t r = ipcx_send(ss->c, h, off, 1000);
	free(h);
	return r < 0 ? (int)r : 0;
}

/*
 * Dial if it is time: 0 connected (or not yet time), -ECONNREFUSED nobody
 * there (the next dial is set), another error for a URL that cannot work.
 */
static int try_dial(struct sock_sub *ss)
{
	if (ss->c || ps_now_ms() < ss->next_dial)
		return 0;
	int r = ipcx_dial(ss->url, 0, &ss->c);
	if (r == 0 && !ss->buf) {
		ss->cap = ipcx_max_msg(ss->c);
		ss->buf = malloc(ss->cap);
		r = ss->buf ? 0 : -ENOMEM;
	}
	if (r == 0 && (r = send_hello(ss)) == 0) {
		ss->cfd = ipcx_fileno(ss->c);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = ss->cfd };
		r = ss->cfd < 0 ? ss->cfd : epoll_ctl(ss->ep, EPOLL_CTL_ADD, ss->cfd, &ev);
	}
	if (r == 0) {
		ss->backoff = BACKOFF_FIRST;
		arm(ss, 0);
		return 0;
	}
	if (ss->c) {
		ipcx_close(ss->c);
		ss->c = NULL;
		ss->cfd = -1;
		r = -ECONNREFUSED; /* it went at once: as if nobody were there */
	}
	if (r != -ECONNREFUSED && r != -ENOENT)
		return r;
	ss->next_dial = ps_now_ms() + ss->backoff;
	ss->backoff = ss->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : ss->backoff * 2;
	arm(ss, ss->next_dial);
	return -ECONNREFUSED;
}

/* A message frame of n bytes in buf: 0 with its topic length, or -EBADMSG. */
static int parse(struct sock_sub *ss, size_t n, size_t *tlen)
{
	const uint8_t *b = ss->buf;
	if (n < PS_HDR + 1 || b[0] != 'P' || b[1] != 'S' || b[2] != PS_VERSION || b[3] != 'M')
		return -EBADMSG;
	size_t tl = (size_t)get_le(b + 4, 2);
	if (tl > IPCX_TOPIC_MAX || PS_HDR + tl + 1 > n || b[PS_HDR + tl] != 0 ||
	    memchr(b + PS_HDR, 0, tl))
		return -EBADMSG;
	ss->lost += get_le(b + 8, 8);
	ss->lag = get_le(b + 16, 8);
	*tlen = tl;
	return 0;
}

/* Not connected: dial when due, else wait for the next dial (or the deadline). */
static int reconnect(struct sock_sub *ss, int64_t deadline)
{
	int r = try_dial(ss);
	if (ss->c || (r != 0 && r != -ECONNREFUSED))
		return r == -ECONNREFUSED ? 0 : r;
	int left = ps_left(deadline);
	if (left == 0)
		return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
	int64_t until = ss->next_dial - ps_now_ms();
	if (until > 0 && (left < 0 || until < left))
		left = (int)until;
	poll(NULL, 0, left);
	return 0;
}

static ssize_t ss_next(ipcx_sub *s, struct ps_timer *t, const char **topic, const void **msg)
{
	struct sock_sub *ss = (struct sock_sub *)s;
	ps_timer_fix(t); /* a dial may wait: it needs the deadline */
	for (;;) {
		if (!ss->c) {
			int r = reconnect(ss, t->deadline);
			if (r < 0)
				return r;
			t->waited = true; /* the receive gets what is left */
			continue;
		}
		ssize_t n = ipcx_recv(ss->c, ss->buf, ss->cap, ps_timer_next(t));
		if (n == -EPIPE || n == -ECONNRESET) {
			hang_up(ss); /* the publisher has gone: dial again */
			continue;
		}
		if (n < 0)
			return ps_timer_result(t, n);
		size_t tl;
		if (parse(ss, (size_t)n, &tl) < 0 || !ps_prefixes_match(&s->pre, (char *)ss->buf + PS_HDR, tl)) {
			s->filtered++;
			continue;
		}
		*topic = (const char *)ss->buf + PS_HDR;
		*msg = ss->buf + PS_HDR + tl + 1;
		return n - (ssize_t)(PS_HDR + tl + 1);
	}
}

static int ss_done(ipcx_sub *s)
{
	(void)s;
	return 0;
}

static int ss_fileno(ipcx_sub *s)
{
	return ((struct sock_sub *)s)->ep;
}

static int ss_stats(ipcx_sub *s, struct ipcx_pubsub_stats *ret)
{
	struct sock_sub *ss = (struct sock_sub *)s;
	ret->lost = ss->lost;
	ret->lag = ss->lag;
	ret->subscribers = 1;
	return 0;
}

static int ss_close(ipcx_sub *s)
{
	struct sock_sub *ss = (struct sock_sub *)s;
	ipcx_close(ss->c);
	if (ss->ep >= 0)
		close(ss->ep);
	if (ss->timer >= 0)
		close(ss->timer);
	free(ss->buf);
	free(ss->url);
	free(ss);
	return 0;
}

static const struct sub_ops sock_sub_ops = {
	.next = ss_next,
	.done = ss_done,
	.fileno = ss_fileno,
	.stats = ss_stats,
	.close = ss_close,
};

int ps_sock_sub(const char *url, unsigned flags, struct ps_prefixes *pre, ipcx_sub **ret)
{
	static const char *const ours[] = { "policy", "queue", "linger", NULL };
	struct sock_sub *ss = calloc(1, sizeof(*ss));
	struct ps_url *u = malloc(sizeof(*u));
	char *turl = malloc(PS_URL_MAX);
	int r = ss && u && turl ? ps_url_parse(url, u) : -ENOMEM;
	if (r == 0 && ps_url_get(u, "history"))
		r = ipcx_errdetail_set(-EINVAL, "%s: history= is for shared memory (a ring)", url);
	if (r == 0)
		r = ps_url_make(u, ours, NULL, turl, PS_URL_MAX);
	free(u);
	if (r < 0) {
		free(turl);
		free(ss);
		return r;
	}
	(void)flags;
	ss->s.ops = &sock_sub_ops;
	ss->url = turl;
	ss->cfd = -1;
	ss->backoff = BACKOFF_FIRST;
	ss->ep = epoll_create1(EPOLL_CLOEXEC);
	ss->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = ss->timer };
	if (ss->ep < 0 || ss->timer < 0 || epoll_ctl(ss->ep, EPOLL_CTL_ADD, ss->timer, &ev) < 0)
		r = -errno;
	ss->s.pre = *pre;
	/* A publisher there now hears of us at once; if none is, we dial again later. */
	if (r == 0 && (r = try_dial(ss)) == -ECONNREFUSED)
		r = 0;
	if (r < 0) {
		ss->s.pre = (struct ps_prefixes){ 0 }; /* still the caller's */
		ss_close(&ss->s);
		return r;
	}
	*ret = &ss->s;
	return 0;
}
