/*
 * Publish/subscribe over NATS (nats://HOST:PORT[,...]/SUBJECT): the server
 * is the broker.  A message of topic T is published on the subject
 * SUBJECT.T (ipcx_send_to, one connection for every topic, so that one
 * publisher's messages keep their order across topics); the empty topic on
 * SUBJECT._, because no NATS subscription takes both SUBJECT and SUBJECT.>.
 * A subscriber listens on one subject that covers all of its prefixes
 * (SUBJECT.> for every topic; SUBJECT.weather.> for prefixes that all
 * start with "weather."): the server passes over what no subscriber
 * wants, and the subscriber keeps what starts with one of its prefixes.
 *
 * The channel does not give a received message's subject, so the topic
 * also travels in the message, framed:
 *   0 'P' 'S'  2 version  3 'N'  4 u16 topic length  6 u16 0
 *   8 topic, NUL, then the payload
 * which is how the subscriber gets the topic back exactly.
 *
 * Core NATS has no flow control from a subscriber back to a publisher, so
 * policy=drop is the only policy.  What a subscriber's queue could not hold
 * the channel counts (ipcx_stats dropped, and a -ENOBUFS in its place):
 * that count is the subscriber's lost.  A move to another server, where
 * what was published meanwhile may be lost and nobody can count it, is
 * returned once as -ECONNRESET.  docs/pubsub.md, "NATS".
 */
#include "bytes_int.h"
#include "pubsub_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NF_HDR   8u
#define EMPTY_TOK "_" /* the subject token of the empty topic */

struct nats_pub {
	struct ipcx_pub p;
	ipcx_chan *c;
	struct pat_bytes buf; /* the frame being sent */
};

struct nats_sub {
	struct ipcx_sub s;
	ipcx_chan *c;
	uint8_t *buf;
	size_t cap;
	uint64_t oversize; /* refused by the channel (above our max=): lost */
	bool owed;         /* a -ECONNRESET came in a batch that had messages */
	char why[512];     /* ... and its detail */
};

/* ---- URLs, topics and subjects ------------------------------------------------------------- */

/*
 * t (n bytes) as NATS tokens: 0, or -EINVAL.  A topic is one or more tokens
 * separated by '.', none empty, of bytes above the blank (no control
 * characters), none the wildcard '*' or '>'.  A prefix is the start of
 * such a topic: its last token may be cut short, or empty.
 */
static int check_tokens(const char *t, size_t n, bool prefix)
{
	const char *what = prefix ? "prefix" : "topic";
	size_t tok = 0;
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = i < n ? (unsigned char)t[i] : 0;
		if (i < n && ch != '.') {
			if (ch <= ' ' || ch == 0x7f)
				return ipcx_errdetail_set(-EINVAL, "%s '%.*s': over nats:// a %s has no "
							  "blanks or control characters", what, (int)n,
							  t, what);
			continue;
		}
		size_t tl = i - tok;
		bool cut = prefix && i == n; /* a prefix's last token may go on */
		if (tl == 0 && !cut)
			return ipcx_errdetail_set(-EINVAL, "%s '%.*s': over nats:// a topic is "
						  "tokens separated by '.', none empty", what,
						  (int)n, t);
		if (tl == 1 && (t[tok] == '*' || t[tok] == '>') && !cut)
			return ipcx_errdetail_set(-EINVAL, "%s '%.*s': '*' and '>' are NATS "
						  "wildcards, not topic tokens", what, (int)n, t);
		tok = i + 1;
	}
	return 0;
}

/* The URL's subject (after the servers), in base; NULL if there is none. */
static const char *subject_of(const char *base)
{
	const char *s = strncmp(base, "nats://", 7) ? NULL : strchr(base + 7, '/');
	return s ? s + 1 : NULL;
}

/*
 * Our options out, the transport's left: policy= (drop only), and what
 * would change what pub/sub means.  0, or a negative errno with a detail.
 */
static int parse(const char *url, struct ps_url *u, const char *extra_subject, char *out,
		 size_t cap)
{
	static const char *const ours[] = { "policy", NULL };
	static const char *const refused[] = { "queue", "stream", "reply", "linger", NULL };
	static const char *const why[] = {
		"over nats:// queue= is a queue group, where each message goes to one listener; "
		"a subscriber's queue is pending=N",
		"publish/subscribe over a JetStream stream is not built",
		"reply= is for conversations, not publish/subscribe",
		"linger= is for sockets: a nats:// publisher's close waits until the server has "
		"everything (a round trip)",
	};
	int r = ps_url_parse(url, u);
	if (r < 0)
		return r;
	const char *pol = ps_url_get(u, "policy");
	if (ps_url_get(u, "history"))
		return ipcx_errdetail_set(-EINVAL, "%s: history= is for shared memory (a ring): a "
					  "NATS server keeps no messages (core NATS)", url);
	if (pol && !strcmp(pol, "block"))
		return ipcx_errdetail_set(-EOPNOTSUPP, "%s: policy=block: core NATS cannot hold a "
					  "publisher back for its slowest subscriber; policy=drop "
					  "(the default here) loses what a subscriber cannot keep, "
					  "and counts it", url);
	if (pol && strcmp(pol, "drop"))
		return ipcx_errdetail_set(-EINVAL, "%s: policy=%s: want drop (over nats://, drop "
					  "only)", url, pol);
	for (int i = 0; refused[i]; i++)
		if (ps_url_get(u, refused[i]))
			return ipcx_errdetail_set(-EINVAL, "%s: %s", url, why[i]);
	const char *subject = subject_of(u->base);
	if (subject && (strchr(subject, '*') || strchr(subject, '>')))
		return ipcx_errdetail_set(-EINVAL, "%s: a publish/subscribe subject has no "
					  "wildcards: the topics choose", url);
	if (extra_subject) {
		size_t bl = strlen(u->base);
		int n = snprintf(u->base + bl, sizeof(u->base) - bl, "%s", extra_subject);
		if (n < 0 || (size_t)n >= sizeof(u->base) - bl)
			return ipcx_errdetail_set(-ENAMETOOLONG, "%s: URL too long", url);
	}
	return ps_url_make(u, ours, NULL, out, cap);
}

/* Opened with its URL: the transport's, with our options out. */
static int open_chan(const char *url, const char *extra_subject, bool listen, ipcx_chan **c)
{
	struct ps_url *u = malloc(sizeof(*u));
	char *turl = malloc(PS_URL_MAX);
	int r = u && turl ? parse(url, u, extra_subject, turl, PS_URL_MAX) : -ENOMEM;
	if (r == 0)
		r = listen ? ipcx_listen(turl, 0, c) : ipcx_dial(turl, 0, c);
	free(turl);
	free(u);
	return r;
}

/* ---- publishing ------------------------------------------------------------------------- */

static ssize_t np_send(ipcx_pub *pub, const char *topic, size_t tlen, const void *msg,
		       size_t len, int timeout_ms)
{
	struct nats_pub *p = (struct nats_pub *)pub;
	int r = tlen ? check_tokens(topic, tlen, false) : 0;
	if (r < 0)
		return r;
	size_t max = ipcx_max_msg(p->c), n = NF_HDR + tlen + 1 + len;
	if (n > max)
		return ipcx_errdetail_set(-EMSGSIZE, "%zu bytes and a topic of %zu: more than the "
					  "server's max_payload (%zu) less %u", len, tlen, max,
					  NF_HDR + 1);
	p->buf.len = 0;
	if (pat_bytes_room(&p->buf, n) < 0)
		return -ENOMEM;
	uint8_t *b = (uint8_t *)p->buf.p;
	b[0] = 'P', b[1] = 'S', b[2] = PS_VERSION, b[3] = 'N';
	b[4] = (uint8_t)tlen, b[5] = (uint8_t)(tlen >> 8), b[6] = b[7] = 0;
	memcpy(b + NF_HDR, topic, tlen);
	b[NF_HDR + tlen] = 0;
	if (len)
		memcpy(b + NF_HDR + tlen + 1, msg, len);
	ssize_t s = ipcx_send_to(p->c, tlen ? topic : EMPTY_TOK, b, n, timeout_ms);
	return s < 0 ? s : (ssize_t)len;
}

static ssize_t np_subscribers(ipcx_pub *pub, struct ipcx_subscriber *buf, size_t n)
{
	(void)pub, (void)buf, (void)n;
	return ipcx_errdetail_set(-EOPNOTSUPP, "a nats:// publisher does not know its "
				  "subscribers: the server has them");
}

/* Nobody tells a NATS publisher of its subscribers or their losses: published only. */
static int np_stats(ipcx_pub *pub, struct ipcx_pubsub_stats *ret)
{
	(void)pub, (void)ret;
	return 0;
}

static int np_addr(ipcx_pub *pub, char *buf, size_t cap)
{
	return ipcx_addr(((struct nats_pub *)pub)->c, buf, cap);
}

/* The channel's close waits for a round trip: the server has all we sent. */
static int np_close(ipcx_pub *pub)
{
	struct nats_pub *p = (struct nats_pub *)pub;
	int r = ipcx_close(p->c);
	free(p->buf.p);
	free(p);
	return r;
}

static const struct pub_ops nats_pub_ops = {
	.send = np_send,
	.subscribers = np_subscribers,
	.stats = np_stats,
	.addr = np_addr,
	.close = np_close,
};

int ps_nats_pub(const char *url, unsigned flags, ipcx_pub **ret)
{
	(void)flags;
	struct nats_pub *p = calloc(1, sizeof(*p));
	int r = p ? open_chan(url, NULL, false, &p->c) : -ENOMEM;
	if (r < 0) {
		free(p);
		return r;
	}
	p->p.ops = &nats_pub_ops;
	*ret = &p->p;
	return 0;
}

/* ---- subscribing ------------------------------------------------------------------------ */

/* A message frame of n bytes in buf: 0 with its topic length, or -EBADMSG. */
static int frame(const uint8_t *b, size_t n, size_t *tlen)
{
	if (n < NF_HDR + 1 || b[0] != 'P' || b[1] != 'S' || b[2] != PS_VERSION || b[3] != 'N' ||
	    b[6] || b[7])
		return -EBADMSG;
	size_t tl = (size_t)b[4] | (size_t)b[5] << 8;
	if (tl > IPCX_TOPIC_MAX || NF_HDR + tl + 1 > n || b[NF_HDR + tl] != 0 ||
	    memchr(b + NF_HDR, 0, tl))
		return -EBADMSG;
	*tlen = tl;
	return 0;
}

static ssize_t ns_next(ipcx_sub *s, struct ps_timer *t, const char **topic, const void **msg)
{
	struct nats_sub *ns = (struct nats_sub *)s;
	if (ns->owed) {
		ns->owed = false;
		return ipcx_errdetail_set(-ECONNRESET, "%s", ns->why);
	}
	for (;;) {
		ssize_t n = ipcx_recv(ns->c, ns->buf, ns->cap, ps_timer_next(t));
		/* A full queue: counted by the channel (dropped), which is our lost. */
		if (n == -ENOBUFS)
			continue;
		/* Above our max= (our buffer holds any message the channel takes): lost. */
		if (n == -EMSGSIZE) {
			ns->oversize++;
			continue;
		}
		if (n < 0)
			return n == -ECONNRESET ? n : ps_timer_result(t, n);
		size_t tl;
		/* Not ours (another NATS client's message on the subject), or not wanted. */
		if (frame(ns->buf, (size_t)n, &tl) < 0 ||
		    !ps_prefixes_match(&s->pre, (char *)ns->buf + NF_HDR, tl)) {
			s->filtered++;
			continue;
		}
		*topic = (const char *)ns->buf + NF_HDR;
		*msg = ns->buf + NF_HDR + tl + 1;
		return n - (ssize_t)(NF_HDR + tl + 1);
	}
}

static int ns_done(ipcx_sub *s)
{
	(void)s;
	return 0;
}

/*
 * A batch: messages as ns_next gives them, the first under the caller's
 * timeout.  It is a loop, like the sockets', but of its own: a -ECONNRESET
 * after some messages ends the batch and is owed to the next call, where a
 * loop that returns what it has would swallow it.
 */
static ssize_t ns_recvv(ipcx_sub *s, struct ipcx_sub_msg *msgs, size_t n, struct ps_timer *t)
{
	struct nats_sub *ns = (struct nats_sub *)s;
	struct ps_timer now = ps_timer_start(0);
	size_t i = 0;
	for (; i < n; i++) {
		const char *topic;
		const void *m;
		ssize_t len = ns_next(s, i ? &now : t, &topic, &m);
		if (len == -ECONNRESET && i) {
			snprintf(ns->why, sizeof(ns->why), "%s", ipcx_errdetail());
			ns->owed = true;
		}
		if (len < 0)
			return i ? (ssize_t)i : len;
		int r = ps_deliver(&msgs[i], topic, m, (size_t)len);
		if (r < 0) {
			/* It stays for the next call, as ipcx_sub_recv leaves it. */
			s->holding = true;
			s->h_topic = topic;
			s->h_msg = m;
			s->h_len = (size_t)len;
			return i ? (ssize_t)i : r;
		}
		s->received++;
	}
	return (ssize_t)i;
}

static int ns_fileno(ipcx_sub *s)
{
	return ipcx_fileno(((struct nats_sub *)s)->c);
}

/* lost: what the channel dropped (its queue full) and refused (max=); lag: its queue. */
static int ns_stats(ipcx_sub *s, struct ipcx_pubsub_stats *ret)
{
	struct nats_sub *ns = (struct nats_sub *)s;
	struct ipcx_stats st;
	int r = ipcx_stats(ns->c, &st);
	if (r < 0)
		return r;
	ret->lost = st.dropped + ns->oversize;
	ret->lag = st.depth;
	ret->subscribers = 1;
	return 0;
}

static int ns_close(ipcx_sub *s)
{
	struct nats_sub *ns = (struct nats_sub *)s;
	int r = ipcx_close(ns->c);
	free(ns->buf);
	free(ns);
	return r;
}

static const struct sub_ops nats_sub_ops = {
	.next = ns_next,
	.done = ns_done,
	.recvv = ns_recvv,
	.fileno = ns_fileno,
	.stats = ns_stats,
	.close = ns_close,
};

/*
 * The subject suffix that covers every prefix: ".>" for every topic (the
 * empty one is SUBJECT._), else "." + the complete tokens the prefixes all
 * start with + ">", cut back while SUBJECT and it would be longer than a
 * subject may be (255 bytes): a wider subject, filtered here.
 */
static int cover(const struct ps_prefixes *pre, const char *subject, char *out, size_t cap)
{
	size_t common = 0;
	for (size_t i = 0; !pre->all && i < pre->n; i++) {
		int r = check_tokens(pre->v[i], strlen(pre->v[i]), true);
		if (r < 0)
			return r;
		const char *dot = strrchr(pre->v[i], '.');
		size_t c = dot ? (size_t)(dot - pre->v[i]) + 1 : 0;
		if (i == 0)
			common = c;
		size_t k = 0;
		while (k < common && k < c && pre->v[0][k] == pre->v[i][k])
			k++;
		common = k;
	}
	while (common && pre->v[0][common - 1] != '.')
		common--; /* back to a whole token */
	size_t sl = subject ? strlen(subject) : 0;
	while (common && sl + 1 + common + 1 > 255) {
		common--;
		while (common && pre->v[0][common - 1] != '.')
			common--;
	}
	int n = snprintf(out, cap, ".%.*s>", (int)common, common ? pre->v[0] : "");
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int ps_nats_sub(const char *url, unsigned flags, struct ps_prefixes *pre, ipcx_sub **ret)
{
	(void)flags;
	struct nats_sub *ns = calloc(1, sizeof(*ns));
	struct ps_url *u = malloc(sizeof(*u));
	char suffix[IPCX_TOPIC_MAX + 4];
	int r = ns && u ? ps_url_parse(url, u) : -ENOMEM;
	if (r == 0)
		r = cover(pre, subject_of(u->base), suffix, sizeof(suffix));
	free(u);
	/* Subscribed when it returns (the listen makes a round trip to the server). */
	if (r == 0)
		r = open_chan(url, suffix, true, &ns->c);
	if (r == 0) {
		ns->cap = ipcx_max_msg(ns->c);
		if (!(ns->buf = malloc(ns->cap))) {
			ipcx_close(ns->c);
			r = -ENOMEM;
		}
	}
	if (r < 0) {
		free(ns);
		return r;
	}
	ns->s.ops = &nats_sub_ops;
	ns->s.pre = *pre;
	*ret = &ns->s;
	return 0;
}
