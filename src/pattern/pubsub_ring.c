/*
 * Publish/subscribe over shared memory: a broadcast ring (shm: or sysvshm:
 * with fanout=1, docs/shm.md).  A message is its topic, a NUL, and its
 * payload, written in place (reserve/commit) by a publisher; a subscriber
 * reads every message in place (peek/release) and keeps those whose topic
 * matches one of its prefixes.  Nobody serves the ring: whoever comes first
 * creates it, the last one out removes it.
 */
#include "pubsub_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ring_pub {
	struct ipcx_pub p;
	ipcx_chan *c;
};

/* Messages a subscriber takes from the ring in one batch (the ring's most). */
#define RS_BATCH 64

struct ring_sub {
	struct ipcx_sub s;
	ipcx_chan *c;
};

/*
 * Attach to the ring, or create it.  Between the two another process may
 * create it (our listen: -EEXIST) or its last peer remove it (our dial:
 * -ECONNREFUSED): try again, for a few seconds.
 */
static int open_or_create(const char *dial_url, const char *listen_url, ipcx_chan **c)
{
	int64_t deadline = ps_now_ms() + 5000;
	for (;;) {
		int r = ipcx_dial(dial_url, 0, c);
		if (r != -ECONNREFUSED)
			return r;
		r = ipcx_listen(listen_url, 0, c);
		if (r != -EEXIST || ps_now_ms() > deadline)
			return r;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

/* The ring's URL for this side: fanout=1 added, the other side's options left out. */
static int ring_open(const char *url, bool sub, ipcx_chan **c)
{
	static const char *const pub_drop[] = { "fanout", "sub", "history", NULL };
	static const char *const sub_drop[] = { "fanout", "sub", NULL };
	struct ps_url *u = malloc(sizeof(*u));
	char *out = malloc(2 * PS_URL_MAX);
	int r = u && out ? ps_url_parse(url, u) : -ENOMEM;
	if (r == 0)
		r = ps_url_make(u, sub ? sub_drop : pub_drop, sub ? "fanout=1&sub=1" : "fanout=1", out,
				PS_URL_MAX);
	if (r == 0)
		r = open_or_create(out, out, c);
	free(out);
	free(u);
	return r;
}

/* ---- publishing ------------------------------------------------------------------------- */

static ssize_t rp_send(ipcx_pub *p, const char *topic, size_t tlen, const void *msg, size_t len,
		       int timeout_ms)
{
	struct ring_pub *rp = (struct ring_pub *)p;
	size_t total = tlen + 1 + len;
	if (total > ipcx_max_msg(rp->c))
		return ipcx_errdetail_set(-EMSGSIZE, "%zu bytes and a topic of %zu: more than the "
						     "ring's max (%zu)",
					  len, tlen, ipcx_max_msg(rp->c));
	void *slot;
	int r = ipcx_reserve(rp->c, total, timeout_ms, &slot);
	if (r < 0)
		return r;
	char *d = slot;
	memcpy(d, topic, tlen);
	d[tlen] = 0;
	if (len)
		memcpy(d + tlen + 1, msg, len);
	r = ipcx_commit(rp->c, total);
	return r < 0 ? r : (ssize_t)len;
}

static ssize_t rp_subscribers(ipcx_pub *p, struct ipcx_subscriber *buf, size_t n)
{
	return ipcx_subscribers(((struct ring_pub *)p)->c, buf, n);
}

static int rp_stats(ipcx_pub *p, struct ipcx_pubsub_stats *ret)
{
	struct ring_pub *rp = (struct ring_pub *)p;
	struct ipcx_stats st;
	int r = ipcx_stats(rp->c, &st);
	ssize_t n = r < 0 ? r : ipcx_subscribers(rp->c, NULL, 0);
	if (n < 0)
		return (int)n;
	/* A channel that does not subscribe sees the sums over the subscribers. */
	ret->lost = st.dropped;
	ret->lag = st.depth;
	ret->subscribers = (uint64_t)n;
	return 0;
}

static int rp_addr(ipcx_pub *p, char *buf, size_t cap)
{
	return ipcx_addr(((struct ring_pub *)p)->c, buf, cap);
}

static int rp_close(ipcx_pub *p)
{
	struct ring_pub *rp = (struct ring_pub *)p;
	int r = ipcx_close(rp->c);
	free(rp);
	return r;
}

static const struct pub_ops ring_pub_ops = {
	.send = rp_send,
	.subscribers = rp_subscribers,
	.stats = rp_stats,
	.addr = rp_addr,
	.close = rp_close,
};

int ps_ring_pub(const char *url, unsigned flags, ipcx_pub **ret)
{
	struct ring_pub *rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	int r = ring_open(url, false, &rp->c);
	if (r < 0) {
		free(rp);
		return r;
	}
	(void)flags;
	rp->p.ops = &ring_pub_ops;
	*ret = &rp->p;
	return 0;
}

/* ---- subscribing ------------------------------------------------------------------------ */

/* The topic of a message of n bytes at m: its length, or -1 if it has none. */
static ssize_t topic_of(const char *m, size_t n)
{
	const char *nul = memchr(m, 0, n < IPCX_TOPIC_MAX + 1 ? n : IPCX_TOPIC_MAX + 1);
	return nul ? nul - m : -1;
}

static ssize_t rs_next(ipcx_sub *s, struct ps_timer *t, const char **topic, const void **msg)
{
	struct ring_sub *rs = (struct ring_sub *)s;
	for (;;) {
		const void *m;
		ssize_t n = ipcx_peek(rs->c, ps_timer_next(t), &m);
		if (n < 0)
			return ps_timer_result(t, n);
		ssize_t tl = topic_of(m, (size_t)n);
		if (tl >= 0 && ps_prefixes_match(&s->pre, m, (size_t)tl)) {
			*topic = m;
			*msg = (const char *)m + tl + 1;
			return n - tl - 1;
		}
		/*
		 * Passed over: no prefix matches, or no topic at all (not a
		 * pub/sub message).  Counted unless it was overwritten while we
		 * looked (-ESTALE: the ring counted it lost).
		 */
		if (ipcx_release(rs->c) == 0)
			s->filtered++;
	}
}

/*
 * What a batch peeked in place gave the caller: copied into out[], one per
 * message kept, passing over the others; it stops before a message larger
 * than its entry's cap (which stays queued) or when out[] is full.
 */
struct rs_batch {
	size_t used;    /* messages of the batch looked at: released */
	bool too_big;   /* the one after them did not fit (or its entry is wrong) */
	int8_t kept[RS_BATCH]; /* 1 copied into the next entry of out[], 0 passed over */
};

static void rs_sort(ipcx_sub *s, const struct ipcx_msg *in, size_t k, struct ipcx_sub_msg *out,
		    size_t n, struct rs_batch *b)
{
	size_t got = 0;
	b->used = 0;
	b->too_big = false;
	for (; b->used < k && got < n; b->used++) {
		const char *m = in[b->used].buf;
		size_t len = in[b->used].len;
		ssize_t tl = topic_of(m, len);
		bool keep = tl >= 0 && ps_prefixes_match(&s->pre, m, (size_t)tl);
		if (keep && ps_deliver(&out[got], m, m + tl + 1, len - (size_t)tl - 1) < 0) {
			b->too_big = true;
			break;
		}
		b->kept[b->used] = keep;
		got += keep;
	}
}

/*
 * A batch in place (ipcx_peekv): one pass over the ring's cursor for up to
 * RS_BATCH messages, each copied out and the batch let go of at once
 * (ipcx_releasev).  Under policy=drop the ones a publisher overwrote while
 * they were copied are not given (the ring counts them lost); the batch is
 * then what was whole before them.
 */
static ssize_t rs_batch(ipcx_sub *s, struct ipcx_sub_msg *out, size_t n, int timeout_ms,
			bool *more)
{
	struct ring_sub *rs = (struct ring_sub *)s;
	struct ipcx_msg in[RS_BATCH];
	struct rs_batch b;
	size_t ask = n < RS_BATCH ? n : RS_BATCH;
	ssize_t k = ipcx_peekv(rs->c, in, ask, timeout_ms);
	if (k < 0)
		return k;
	rs_sort(s, in, (size_t)k, out, n, &b);
	ssize_t whole = ipcx_releasev(rs->c, b.used);
	if (whole < 0 && whole != -ESTALE)
		return whole;
	size_t got = 0;
	for (ssize_t i = 0; i < whole; i++) {
		got += (size_t)b.kept[i];
		s->filtered += (uint64_t)!b.kept[i];
	}
	s->received += got;
	/*
	 * A full batch, every one kept or passed over, whole: more may wait
	 * (one passed over left an entry of out[] free).  Short of full, the
	 * ring had no more: asking again with timeout 0 would cost a wait's
	 * first look (repair, the indices, whether the publishers live).
	 */
	*more = !b.too_big && whole == k && (size_t)k == ask;
	if (!got && b.too_big && whole == (ssize_t)b.used)
		return -EMSGSIZE; /* the first one to keep is larger than out[0].cap */
	return (ssize_t)got;
}

/*
 * Batches until out[] is full: the first waits (what is left of the
 * caller's timeout after messages passed over), the others take only what
 * waits.  A batch that ends short (overwritten, too large) ends the call.
 */
static ssize_t rs_recvv(ipcx_sub *s, struct ipcx_sub_msg *out, size_t n, struct ps_timer *t)
{
	size_t got = 0;
	for (;;) {
		bool more = false;
		ssize_t k = rs_batch(s, out + got, n - got, got ? 0 : ps_timer_next(t), &more);
		if (k < 0)
			return got ? (ssize_t)got : ps_timer_result(t, k);
		got += (size_t)k;
		if (got == n || (got && !more))
			return (ssize_t)got;
	}
}

static int rs_done(ipcx_sub *s)
{
	return ipcx_release(((struct ring_sub *)s)->c);
}

static int rs_fileno(ipcx_sub *s)
{
	return ipcx_fileno(((struct ring_sub *)s)->c);
}

static int rs_stats(ipcx_sub *s, struct ipcx_pubsub_stats *ret)
{
	struct ring_sub *rs = (struct ring_sub *)s;
	struct ipcx_stats st;
	int r = ipcx_stats(rs->c, &st);
	ssize_t n = r < 0 ? r : ipcx_subscribers(rs->c, NULL, 0);
	if (n < 0)
		return (int)n;
	ret->lost = st.dropped;
	/* A message held (peeked) is still counted behind by the ring. */
	ret->lag = st.depth - (s->holding && st.depth);
	ret->subscribers = (uint64_t)n;
	return 0;
}

static int rs_close(ipcx_sub *s)
{
	struct ring_sub *rs = (struct ring_sub *)s;
	int r = ipcx_close(rs->c);
	free(rs);
	return r;
}

static const struct sub_ops ring_sub_ops = {
	.next = rs_next,
	.done = rs_done,
	.recvv = rs_recvv,
	.fileno = rs_fileno,
	.stats = rs_stats,
	.close = rs_close,
};

int ps_ring_sub(const char *url, unsigned flags, struct ps_prefixes *pre, ipcx_sub **ret)
{
	struct ring_sub *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	int r = ring_open(url, true, &rs->c);
	if (r < 0) {
		free(rs);
		return r;
	}
	(void)flags;
	rs->s.ops = &ring_sub_ops;
	rs->s.pre = *pre;
	*ret = &rs->s;
	return 0;
}
