/*
 * Publish/subscribe, the parts its files share.  Private to src/pattern/,
 * which sees only <ipcx.h>.  docs/pubsub.md describes the two families:
 *
 *   shared memory (shm:, sysvshm:)  a broadcast ring (fanout=1): every
 *                  publisher writes into it, every subscriber reads all of it
 *                  from its own cursor and keeps the topics it wants
 *                  (pubsub_ring.c);
 *   sockets (unix:, unixpacket:, tcp://)  the publisher listens and keeps a
 *                  bounded queue per subscriber, sending each only the
 *                  topics it asked for (pubsub_sock.c); subscribers dial
 *                  and dial again when the publisher comes back
 *                  (pubsub_sub.c).
 *   NATS (nats://)  the server is the broker: a topic is a subject suffix,
 *                  a subscriber listens on one subject that covers its
 *                  prefixes; policy=drop only (pubsub_nats.c).
 *
 * struct ipcx_pub and struct ipcx_sub are a table of operations and the
 * family's own state behind it.
 */
#ifndef IPCX_PATTERN_PUBSUB_H
#define IPCX_PATTERN_PUBSUB_H

#include <ipcx.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define PS_URL_MAX  4096
#define PS_OPTS_MAX 16

/* A URL cut at '?' into its base and its options, to take some out and add others. */
struct ps_url {
	char base[PS_URL_MAX];
	int n;
	const char *key[PS_OPTS_MAX], *val[PS_OPTS_MAX];
	char buf[PS_URL_MAX];
};

int ps_url_parse(const char *url, struct ps_url *u);
/* The value of option key, or NULL. */
const char *ps_url_get(const struct ps_url *u, const char *key);
/* A number option (absent: *ret unchanged): 0 or -EINVAL. */
int ps_url_num(const struct ps_url *u, const char *key, uint64_t min, uint64_t max,
	       uint64_t *ret);
/*
 * The URL again, without the options named in drop (NULL-terminated), with
 * extra ("k=v&k=v", or NULL) added: 0 or -ENAMETOOLONG.
 */
int ps_url_make(const struct ps_url *u, const char *const *drop, const char *extra, char *out,
		size_t cap);

/* The family of a URL: shared memory, sockets, NATS, or a negative errno (with a detail). */
enum { PS_RING = 1, PS_SOCK = 2, PS_NATS = 3 };
int ps_family(const char *url);

/* A topic as publishers give it: 0 or -EINVAL (too long). */
int ps_topic_check(const char *topic, size_t *len);

/* Prefixes a subscriber keeps (copied); "" or none: every topic. */
struct ps_prefixes {
	size_t n;
	char **v;
	bool all;
};
int ps_prefixes_set(struct ps_prefixes *p, const char *const *prefixes, size_t n);
void ps_prefixes_free(struct ps_prefixes *p);
bool ps_prefixes_match(const struct ps_prefixes *p, const char *topic, size_t tlen);

/* Milliseconds left until a deadline (ipcx-style: -1 none, 0 passed). */
int64_t ps_now_ms(void);
int ps_left(int64_t deadline);
int64_t ps_deadline(int timeout_ms);

/*
 * A caller's timeout over the waits of one call.  A clock read costs about
 * as much as taking a message from a ring (25-100 ns on a virtual machine;
 * a subscriber's receive read it four times, then once: 40% of its time),
 * so the first wait takes the caller's timeout as it is, and the start is
 * read from the coarse clock (a few ns, never later than the true start;
 * see ps_start_ms).  A later wait (after a message passed over) gets what
 * is left of the deadline, start + timeout: a call never ends early, and
 * ends at most one tick of the coarse clock (1-4 ms) late.
 */
struct ps_timer {
	int timeout_ms;
	int64_t start_ms; /* the call's start, rounded up (timeout_ms > 0) */
	int64_t deadline; /* -1: none; 0: no waiting; else when, in ps_now_ms() */
	bool fixed, waited;
};
struct ps_timer ps_timer_start(int timeout_ms);
/* Set the deadline: start + timeout (if the timeout is some milliseconds). */
void ps_timer_fix(struct ps_timer *t);
/* The timeout for the next wait: the caller's for the first, what is left after. */
int ps_timer_next(struct ps_timer *t);
/* What a wait gave, as the caller asked: the deadline cut a wait to 0 (-EAGAIN): -ETIMEDOUT. */
static inline ssize_t ps_timer_result(const struct ps_timer *t, ssize_t n)
{
	return n == -EAGAIN && t->timeout_ms != 0 ? -ETIMEDOUT : n;
}

/* ---- the two sides, each a table of operations ------------------------------- */

struct pub_ops {
	ssize_t (*send)(ipcx_pub *p, const char *topic, size_t tlen, const void *msg, size_t len,
			int timeout_ms);
	ssize_t (*subscribers)(ipcx_pub *p, struct ipcx_subscriber *buf, size_t n);
	int (*stats)(ipcx_pub *p, struct ipcx_pubsub_stats *ret);
	int (*addr)(ipcx_pub *p, char *buf, size_t cap);
	int (*close)(ipcx_pub *p);
};

struct ipcx_pub {
	const struct pub_ops *ops;
	uint64_t published;
};

struct sub_ops {
	/*
	 * The next message whose topic matches, held until the next call:
	 * its topic (NUL-terminated in place) and payload.
	 */
	ssize_t (*next)(ipcx_sub *s, struct ps_timer *t, const char **topic, const void **msg);
	/* Let go of the message next gave: 0, or -ESTALE (overwritten meanwhile). */
	int (*done)(ipcx_sub *s);
	/*
	 * A batch (ipcx_sub_recvv), for a family that does better than a
	 * next/done each; NULL: pubsub.c loops.  Called with n >= 1 entries
	 * (the first checked; ps_deliver checks the others) and nothing held;
	 * counts received and filtered itself.
	 */
	ssize_t (*recvv)(ipcx_sub *s, struct ipcx_sub_msg *msgs, size_t n, struct ps_timer *t);
	int (*fileno)(ipcx_sub *s);
	int (*stats)(ipcx_sub *s, struct ipcx_pubsub_stats *ret);
	int (*close)(ipcx_sub *s);
};

struct ipcx_sub {
	const struct sub_ops *ops;
	struct ps_prefixes pre;
	bool holding; /* next gave a message that done has not let go of */
	bool peeked;  /* ... and the caller holds it (ipcx_sub_peek) */
	const char *h_topic;
	const void *h_msg;
	size_t h_len;
	uint64_t received, filtered;
};

/*
 * Copy a message (payload of n bytes at m, topic t) into one entry of a
 * batch: 0, or -EMSGSIZE (larger than its cap) or -EINVAL (a NULL buffer
 * or topic of some bytes): nothing copied.
 */
int ps_deliver(struct ipcx_sub_msg *d, const char *t, const void *m, size_t n);

/* The families' constructors. */
int ps_ring_pub(const char *url, unsigned flags, ipcx_pub **ret);
int ps_sock_pub(const char *url, unsigned flags, ipcx_pub **ret);
int ps_nats_pub(const char *url, unsigned flags, ipcx_pub **ret);
/* A subscriber takes over pre (its prefixes) when it succeeds. */
int ps_ring_sub(const char *url, unsigned flags, struct ps_prefixes *pre, ipcx_sub **ret);
int ps_sock_sub(const char *url, unsigned flags, struct ps_prefixes *pre, ipcx_sub **ret);
int ps_nats_sub(const char *url, unsigned flags, struct ps_prefixes *pre, ipcx_sub **ret);

/*
 * Socket frames, little-endian.  A subscriber's hello:
 *   0 'P' 'S'  1 version  3 'H'  4 u16 prefixes  6 u16 0, then the prefixes,
 *   each NUL-terminated.
 * A message:
 *   0 'P' 'S'  2 version  3 'M'  4 u16 topic length  6 u16 0
 *   8 u64 lost: messages dropped for this subscriber since the last frame
 *  16 u64 lag: messages still queued for it behind this one
 *  24 topic, then the payload
 */
#define PS_VERSION 1u
#define PS_HDR     24u

#endif
