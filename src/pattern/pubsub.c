/*
 * Publish/subscribe: the public calls, which check their arguments and hand
 * over to the family of the URL (pubsub_int.h), and the helpers the families
 * share: URLs, topics and prefixes, time.
 */
#include "pubsub_int.h"
#include "timeout_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- URLs ----------------------------------------------------------------------------- */

int ps_url_parse(const char *url, struct ps_url *u)
{
	memset(u, 0, sizeof(*u));
	size_t len = strlen(url);
	if (len >= sizeof(u->buf))
		return ipcx_errdetail_set(-ENAMETOOLONG, "URL longer than %d bytes", PS_URL_MAX - 1);
	const char *q = strchr(url, '?');
	size_t blen = q ? (size_t)(q - url) : len;
	memcpy(u->base, url, blen);
	if (!q)
		return 0;
	memcpy(u->buf, q + 1, len - blen);
	for (char *save = NULL, *kv = strtok_r(u->buf, "&", &save); kv;
	     kv = strtok_r(NULL, "&", &save)) {
		if (u->n == PS_OPTS_MAX)
			return ipcx_errdetail_set(-EINVAL, "%s: more than %d options", url, PS_OPTS_MAX);
		char *eq = strchr(kv, '=');
		if (eq)
			*eq = 0;
		u->key[u->n] = kv;
		u->val[u->n++] = eq ? eq + 1 : "";
	}
	return 0;
}

const char *ps_url_get(const struct ps_url *u, const char *key)
{
	for (int i = 0; i < u->n; i++)
		if (!strcmp(u->key[i], key))
			return u->val[i];
	return NULL;
}

int ps_url_num(const struct ps_url *u, const char *key, uint64_t min, uint64_t max,
	       uint64_t *ret)
{
	const char *v = ps_url_get(u, key);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max)
		return ipcx_errdetail_set(-EINVAL, "%s=%s: want a number from %llu to %llu", key, v,
					  (unsigned long long)min, (unsigned long long)max);
	*ret = n;
	return 0;
}

static bool listed(const char *const *names, const char *key)
{
	for (int i = 0; names && names[i]; i++)
		if (!strcmp(names[i], key))
			return true;
	return false;
}

int ps_url_make(const struct ps_url *u, const char *const *drop, const char *extra, char *out,
		size_t cap)
{
	size_t o = (size_t)snprintf(out, cap, "%s", u->base);
	char sep = '?';
	for (int i = 0; i < u->n && o < cap; i++) {
		if (listed(drop, u->key[i]))
			continue;
		o += (size_t)snprintf(out + o, cap - o, "%c%s=%s", sep, u->key[i], u->val[i]);
		sep = '&';
	}
	if (extra && o < cap)
		o += (size_t)snprintf(out + o, cap - o, "%c%s", sep, extra);
	return o < cap ? 0 : ipcx_errdetail_set(-ENAMETOOLONG, "%s: URL too long", u->base);
}

int ps_family(const char *url)
{
	static const char *const ring[] = { "shm:", "sysvshm:", NULL };
	static const char *const sock[] = { "unix:", "unixpacket:", "tcp:", NULL };
	for (int i = 0; ring[i]; i++)
		if (!strncmp(url, ring[i], strlen(ring[i])))
			return PS_RING;
	for (int i = 0; sock[i]; i++)
		if (!strncmp(url, sock[i], strlen(sock[i])))
			return PS_SOCK;
	if (!strncmp(url, "nats:", 5))
		return PS_NATS;
	return ipcx_errdetail_set(-EPROTONOSUPPORT, "%s: publish/subscribe needs shm:, sysvshm:, "
						    "unix:, unixpacket:, tcp:// or nats://", url);
}

/* ---- topics and prefixes ----------------------------------------------------------------- */

int ps_topic_check(const char *topic, size_t *len)
{
	size_t n = strnlen(topic, IPCX_TOPIC_MAX + 1);
	if (n > IPCX_TOPIC_MAX)
		return ipcx_errdetail_set(-EINVAL, "a topic has at most %d bytes", IPCX_TOPIC_MAX);
	*len = n;
	return 0;
}

int ps_prefixes_set(struct ps_prefixes *p, const char *const *prefixes, size_t n)
{
	memset(p, 0, sizeof(*p));
	p->all = n == 0;
	p->v = n ? calloc(n, sizeof(*p->v)) : NULL;
	if (n && !p->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		if (!prefixes[i]) {
			ps_prefixes_free(p);
			return ipcx_errdetail_set(-EINVAL, "prefix %zu is NULL", i);
		}
		int r = ps_topic_check(prefixes[i], &len);
		if (r < 0 || !(p->v[i] = strdup(prefixes[i]))) {
			ps_prefixes_free(p);
			return r < 0 ? r : -ENOMEM;
		}
		p->n++;
		p->all |= len == 0;
	}
	return 0;
}

void ps_prefixes_free(struct ps_prefixes *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

bool ps_prefixes_match(const struct ps_prefixes *p, const char *topic, size_t tlen)
{
	if (p->all)
		return true;
	for (size_t i = 0; i < p->n; i++) {
		size_t l = strlen(p->v[i]);
		if (l <= tlen && !memcmp(topic, p->v[i], l))
			return true;
	}
	return false;
}

/* ---- time ----------------------------------------------------------------------------- */

int64_t ps_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ps_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : ps_now_ms() + timeout_ms;
}

int ps_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - ps_now_ms();
	return left > 0 ? (int)(left < 1000000000 ? left : 1000000000) : 0;
}

/*
 * When the call started, in ps_now_ms() terms, never before it did: the
 * coarse clock (a read of the vDSO's page, no time stamp counter: a few
 * nanoseconds where CLOCK_MONOTONIC costs 25-100 on a virtual machine)
 * lags the monotonic clock by less than its resolution, one tick.
 */
static int64_t ps_start_ms(void)
{
	static _Atomic int64_t res_ns;
	int64_t res = atomic_load_explicit(&res_ns, memory_order_relaxed);
	if (!res) {
		struct timespec r;
		res = clock_getres(CLOCK_MONOTONIC_COARSE, &r) == 0
			      ? (int64_t)r.tv_sec * 1000000000 + r.tv_nsec
			      : 10000000;
		atomic_store_explicit(&res_ns, res, memory_order_relaxed);
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + res;
	return (ns + 999999) / 1000000;
}

struct ps_timer ps_timer_start(int timeout_ms)
{
	struct ps_timer t = { .timeout_ms = timeout_ms, .deadline = timeout_ms,
			      .fixed = timeout_ms <= 0 };
	if (timeout_ms > 0)
		t.start_ms = ps_start_ms();
	return t;
}

void ps_timer_fix(struct ps_timer *t)
{
	if (!t->fixed) {
		t->deadline = t->start_ms + t->timeout_ms;
		t->fixed = true;
	}
}

int ps_timer_next(struct ps_timer *t)
{
	if (!t->waited) {
		t->waited = true;
		return t->timeout_ms;
	}
	ps_timer_fix(t);
	return t->deadline > 0 ? ps_left(t->deadline) : (int)t->deadline;
}

/* ---- publishers --------------------------------------------------------------------------- */

IPCX_EXPORT int ipcx_pub_open(const char *url, unsigned flags, ipcx_pub **ret)
{
	if (!url || !ret)
		return ipcx_errdetail_set(-EINVAL, "no URL, or no place for the publisher");
	if (flags)
		return ipcx_errdetail_set(-EINVAL, "unknown flags 0x%x", flags);
	int fam = ps_family(url);
	if (fam < 0)
		return fam;
	return fam == PS_RING   ? ps_ring_pub(url, flags, ret)
	       : fam == PS_SOCK ? ps_sock_pub(url, flags, ret)
				: ps_nats_pub(url, flags, ret);
}

IPCX_EXPORT ssize_t ipcx_pub_send(ipcx_pub *p, const char *topic, const void *msg, size_t len,
				  int timeout_ms)
{
	size_t tlen = 0;
	if (!p || !topic || (len && !msg))
		return ipcx_errdetail_set(-EINVAL, "no publisher, topic or message");
	int r = pattern_check_timeout(timeout_ms);
	if (r < 0 || (r = ps_topic_check(topic, &tlen)) < 0)
		return r;
	ssize_t n = p->ops->send(p, topic, tlen, msg, len, timeout_ms);
	if (n >= 0)
		p->published++;
	return n;
}

IPCX_EXPORT ssize_t ipcx_pub_subscribers(ipcx_pub *p, struct ipcx_subscriber *buf, size_t n)
{
	if (!p || (n && !buf))
		return -EINVAL;
	return p->ops->subscribers(p, buf, n);
}

/*
 * Nothing tells a publisher when a subscriber arrives (in another
 * process, on a ring), so this looks every millisecond: a call made once,
 * before publishing, not on any message's path.
 */
IPCX_EXPORT int ipcx_pub_wait(ipcx_pub *p, size_t n, int timeout_ms)
{
	if (!p)
		return -EINVAL;
	int r = pattern_check_timeout(timeout_ms);
	if (r < 0)
		return r;
	int64_t deadline = ps_deadline(timeout_ms);
	for (;;) {
		ssize_t have = p->ops->subscribers(p, NULL, 0);
		if (have < 0)
			return (int)have;
		if ((size_t)have >= n)
			return 0;
		if (ps_left(deadline) == 0)
			return timeout_ms == 0 ? -EAGAIN
					       : ipcx_errdetail_set(-ETIMEDOUT, "%zd of %zu subscribers "
										"came",
								    have, n);
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

IPCX_EXPORT int ipcx_pub_stats(ipcx_pub *p, struct ipcx_pubsub_stats *ret)
{
	if (!p || !ret)
		return -EINVAL;
	struct ipcx_pubsub_stats st = { .published = p->published };
	int r = p->ops->stats(p, &st);
	if (r == 0)
		*ret = st;
	return r;
}

IPCX_EXPORT int ipcx_pub_addr(ipcx_pub *p, char *buf, size_t cap)
{
	if (!p || !buf)
		return -EINVAL;
	return p->ops->addr(p, buf, cap);
}

IPCX_EXPORT int ipcx_pub_close(ipcx_pub *p)
{
	return p ? p->ops->close(p) : 0;
}

/* ---- subscribers ------------------------------------------------------------------------- */

IPCX_EXPORT int ipcx_sub_open(const char *url, const char *const *prefixes, size_t n,
			      unsigned flags, ipcx_sub **ret)
{
	if (!url || !ret || (n && !prefixes))
		return ipcx_errdetail_set(-EINVAL, "no URL, prefixes, or place for the subscriber");
	if (flags)
		return ipcx_errdetail_set(-EINVAL, "unknown flags 0x%x", flags);
	struct ps_prefixes pre;
	int fam = ps_family(url);
	if (fam < 0)
		return fam;
	int r = ps_prefixes_set(&pre, prefixes, n);
	if (r < 0)
		return r;
	r = fam == PS_RING   ? ps_ring_sub(url, flags, &pre, ret)
	    : fam == PS_SOCK ? ps_sock_sub(url, flags, &pre, ret)
			     : ps_nats_sub(url, flags, &pre, ret);
	if (r < 0)
		ps_prefixes_free(&pre);
	return r;
}

/* A receive or peek may start: a valid timeout, and no message held by the caller. */
static int ready_to_take(const ipcx_sub *s, int timeout_ms)
{
	int r = pattern_check_timeout(timeout_ms);
	if (r == 0 && s->peeked)
		r = ipcx_errdetail_set(-EBUSY, "a peeked message is not released");
	return r;
}

/* The message next gave and done has not let go of, or the next one. */
static ssize_t held_or_next(ipcx_sub *s, struct ps_timer *t, const char **topic,
			    const void **msg)
{
	if (!s->holding) {
		ssize_t n = s->ops->next(s, t, &s->h_topic, &s->h_msg);
		if (n < 0)
			return n;
		s->h_len = (size_t)n;
		s->holding = true;
	}
	*topic = s->h_topic;
	*msg = s->h_msg;
	return (ssize_t)s->h_len;
}

static int let_go(ipcx_sub *s)
{
	int r = s->ops->done(s);
	s->holding = s->peeked = false;
	if (r == 0)
		s->received++;
	return r;
}

/* An entry whose buffer or topic has some bytes at NULL: -EINVAL; else 0. */
static int entry_check(const struct ipcx_sub_msg *d)
{
	if ((d->cap && !d->buf) || (d->tcap && !d->topic))
		return ipcx_errdetail_set(-EINVAL, "a buffer or topic of some bytes at NULL");
	return 0;
}

int ps_deliver(struct ipcx_sub_msg *d, const char *t, const void *m, size_t n)
{
	int r = entry_check(d);
	if (r < 0)
		return r;
	if (n > d->cap)
		return ipcx_errdetail_set(-EMSGSIZE, "a message of %zu bytes, a buffer of %zu", n,
					  d->cap);
	if (n)
		memcpy(d->buf, m, n);
	d->len = n;
	if (d->tcap) {
		size_t tl = strnlen(t, d->tcap - 1);
		memcpy(d->topic, t, tl);
		d->topic[tl] = 0;
	}
	return 0;
}

/* The next message into d, under t: its length, or a negative errno (-EMSGSIZE: it stays held). */
static ssize_t recv_one(ipcx_sub *s, struct ps_timer *tm, struct ipcx_sub_msg *d)
{
	for (;;) {
		const char *t;
		const void *m;
		ssize_t n = held_or_next(s, tm, &t, &m);
		if (n < 0)
			return n;
		int r = ps_deliver(d, t, m, (size_t)n);
		if (r < 0)
			return r;
		/* -ESTALE: overwritten while copied, so maybe torn; counted lost. */
		r = let_go(s);
		if (r == 0)
			return n;
		if (r != -ESTALE)
			return r;
	}
}

IPCX_EXPORT ssize_t ipcx_sub_recv(ipcx_sub *s, char *topic, size_t tcap, void *buf, size_t cap,
				  int timeout_ms)
{
	if (!s || (cap && !buf) || (tcap && !topic))
		return -EINVAL;
	int r = ready_to_take(s, timeout_ms);
	if (r < 0)
		return r;
	struct ps_timer tm = ps_timer_start(timeout_ms);
	struct ipcx_sub_msg d = { .topic = topic, .tcap = tcap, .buf = buf, .cap = cap };
	return recv_one(s, &tm, &d);
}

/* One by one: the first under the caller's timeout, the others only if they wait. */
static ssize_t recvv_loop(ipcx_sub *s, struct ipcx_sub_msg *msgs, size_t n, struct ps_timer *tm)
{
	struct ps_timer now = ps_timer_start(0);
	for (size_t i = 0; i < n; i++) {
		ssize_t r = recv_one(s, i ? &now : tm, &msgs[i]);
		if (r < 0)
			return i ? (ssize_t)i : r;
	}
	return (ssize_t)n;
}

IPCX_EXPORT ssize_t ipcx_sub_recvv(ipcx_sub *s, struct ipcx_sub_msg *msgs, size_t n,
				   int timeout_ms)
{
	if (!s || (n && !msgs))
		return -EINVAL;
	int r = ready_to_take(s, timeout_ms);
	if (r < 0)
		return r;
	/*
	 * The batch ends before the first entry that is wrong on its own
	 * (ps_deliver looks at each as it fills it: a call that gets one
	 * message does not look at all n).
	 */
	if (n == 0)
		return 0;
	if ((r = entry_check(&msgs[0])) < 0)
		return r;
	struct ps_timer tm = ps_timer_start(timeout_ms);
	/* A message held by an earlier receive (-EMSGSIZE) comes first, one by one. */
	if (s->ops->recvv && !s->holding)
		return s->ops->recvv(s, msgs, n, &tm);
	return recvv_loop(s, msgs, n, &tm);
}

IPCX_EXPORT ssize_t ipcx_sub_peek(ipcx_sub *s, int timeout_ms, const char **topic,
				  const void **msg)
{
	if (!s || !topic || !msg)
		return -EINVAL;
	int r = ready_to_take(s, timeout_ms);
	if (r < 0)
		return r;
	struct ps_timer tm = ps_timer_start(timeout_ms);
	ssize_t n = held_or_next(s, &tm, topic, msg);
	if (n >= 0)
		s->peeked = true;
	return n;
}

IPCX_EXPORT int ipcx_sub_release(ipcx_sub *s)
{
	if (!s)
		return -EINVAL;
	if (!s->peeked)
		return ipcx_errdetail_set(-EINVAL, "release without peek");
	return let_go(s);
}

IPCX_EXPORT int ipcx_sub_fileno(ipcx_sub *s)
{
	return s ? s->ops->fileno(s) : -EINVAL;
}

IPCX_EXPORT int ipcx_sub_stats(ipcx_sub *s, struct ipcx_pubsub_stats *ret)
{
	if (!s || !ret)
		return -EINVAL;
	struct ipcx_pubsub_stats st = { .received = s->received, .filtered = s->filtered };
	int r = s->ops->stats(s, &st);
	if (r < 0)
		return r;
	st.published = st.received + st.filtered + st.lost + st.lag;
	*ret = st;
	return 0;
}

IPCX_EXPORT int ipcx_sub_close(ipcx_sub *s)
{
	if (!s)
		return 0;
	if (s->holding)
		s->ops->done(s);
	ps_prefixes_free(&s->pre);
	return s->ops->close(s);
}
