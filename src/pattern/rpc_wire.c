/* RPC frames, call ids, time and ring names: see rpc_int.h. */
#include "rpc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- frames ------------------------------------------------------------------ */

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void rpc_put(void *buf, const struct rpc_hdr *h)
{
	unsigned char *p = buf;
	p[0] = 'I';
	p[1] = 'R';
	p[2] = RPC_VERSION;
	p[3] = (unsigned char)h->kind;
	put_le(p + 4, h->flags, 4);
	put_le(p + 8, h->id, 8);
	put_le(p + 16, h->aux, 8);
	put_le(p + 24, h->arg, 4);
	put_le(p + 28, h->len, 4);
}

/* Flags each kind may carry. */
static const uint32_t known_flags[RPC_NKINDS] = {
	[RPC_GONE] = RPC_F_CLOSED | RPC_F_DIED,
};

/* What each kind must look like, beyond the common header. */
static int kind_ok(const struct rpc_hdr *h)
{
	switch (h->kind) {
	case RPC_REQUEST:
		return h->id && !h->arg;
	case RPC_REPLY:
		return h->id && !h->arg && !h->aux;
	case RPC_ERROR:
		return h->id && h->arg >= 1 && h->arg <= 4095 && !h->aux && h->len <= RPC_DETAIL_MAX;
	case RPC_TAKEN:
		return h->id && h->arg && (int32_t)h->arg > 0 && !h->len;
	case RPC_HELLO:
		return !h->id && !h->arg && !h->len;
	case RPC_GONE:
		return !h->id && (int32_t)h->arg > 0 && !h->len;
	case RPC_BATCH:
		return !h->id && !h->aux && h->arg >= 2 && h->arg <= RPC_BATCH_MAX &&
		       h->len >= h->arg * RPC_HDR;
	}
	return 0;
}

int rpc_get(const void *buf, size_t n, struct rpc_hdr *h)
{
	const unsigned char *p = buf;
	if (n < RPC_HDR || p[0] != 'I' || p[1] != 'R' || p[2] != RPC_VERSION)
		return -EBADMSG;
	struct rpc_hdr t = {
		.kind = p[3],
		.flags = (uint32_t)get_le(p + 4, 4),
		.id = get_le(p + 8, 8),
		.aux = get_le(p + 16, 8),
		.arg = (uint32_t)get_le(p + 24, 4),
		.len = (uint32_t)get_le(p + 28, 4),
	};
	if (t.kind < 1 || t.kind >= RPC_NKINDS || (t.flags & ~known_flags[t.kind]) ||
	    (uint64_t)t.len != n - RPC_HDR || !kind_ok(&t))
		return -EBADMSG;
	*h = t;
	return 0;
}

int rpc_batch_next(const unsigned char *p, size_t n, size_t *off, size_t *len)
{
	if (n - *off < RPC_HDR)
		return -EBADMSG;
	uint64_t l = RPC_HDR + get_le(p + *off + 28, 4);
	if (l > n - *off)
		return -EBADMSG;
	*len = (size_t)l;
	*off += (size_t)l;
	return 0;
}

int rpc_batch_check(const unsigned char *p, size_t n, unsigned count)
{
	size_t off = 0, len;
	unsigned k = 0;
	while (off < n && rpc_batch_next(p, n, &off, &len) == 0)
		k++;
	return off == n && k == count ? 0 : -EBADMSG;
}

/* ---- frames going out together ----------------------------------------------------- */

int rpc_out_add(struct rpc_out *o, const struct rpc_hdr *h, const void *payload)
{
	size_t need = RPC_HDR + o->len + RPC_HDR + h->len;
	if (need > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < need)
			cap *= 2;
		unsigned char *b = realloc(o->buf, cap);
		if (!b)
			return -ENOMEM;
		o->buf = b;
		o->cap = cap;
	}
	unsigned char *f = o->buf + RPC_HDR + o->len;
	rpc_put(f, h);
	if (h->len)
		memcpy(f + RPC_HDR, payload, h->len);
	o->len += RPC_HDR + h->len;
	o->n++;
	return 0;
}

size_t rpc_out_would(const struct rpc_out *o, size_t len)
{
	return RPC_HDR + o->len + RPC_HDR + len;
}

const void *rpc_out_msg(struct rpc_out *o, size_t *len)
{
	if (o->n == 1) {
		*len = o->len;
		return o->buf + RPC_HDR;
	}
	struct rpc_hdr h = { .kind = RPC_BATCH, .arg = o->n, .len = (uint32_t)o->len };
	rpc_put(o->buf, &h);
	*len = RPC_HDR + o->len;
	return o->buf;
}

void rpc_out_clear(struct rpc_out *o)
{
	o->len = 0;
	o->n = 0;
}

void rpc_out_free(struct rpc_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

/* ---- ids: SipHash-2-4 of a counter ---------------------------------------------- */

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                        \
	do {                                                                            \
		v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                \
		v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                  \
		v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                  \
		v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                \
	} while (0)

/* SipHash-2-4 of one 64-bit word (an 8-byte message). */
static uint64_t siphash_u64(uint64_t k0, uint64_t k1, uint64_t m)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	uint64_t b = (uint64_t)8 << 56;
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

int rpc_random(uint64_t *ret)
{
	uint64_t v;
	ssize_t n;
	do
		n = getrandom(&v, sizeof(v), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(v))
		return ipcx_errdetail_set(n < 0 ? -errno : -EIO, "getrandom");
	*ret = v;
	return 0;
}

int rpc_ids_init(struct rpc_ids *g)
{
	int r = rpc_random(&g->k0);
	if (r == 0)
		r = rpc_random(&g->k1);
	g->n = 0;
	return r;
}

uint64_t rpc_ids_next(struct rpc_ids *g)
{
	for (;;) {
		uint64_t id = siphash_u64(g->k0, g->k1, ++g->n);
		if (id)
			return id;
	}
}

/* ---- time -------------------------------------------------------------------- */

int64_t rpc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rpc_check_timeout(int timeout_ms)
{
	if (timeout_ms >= -1)
		return 0;
	return ipcx_errdetail_set(-EINVAL, "timeout %d ms: want -1 (wait forever), 0 (do not "
					   "wait) or a number of milliseconds", timeout_ms);
}

int64_t rpc_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return rpc_now() + (int64_t)timeout_ms * 1000000;
}

int rpc_ms_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - rpc_now();
	if (left <= 0)
		return 0;
	int64_t ms = (left + 999999) / 1000000; /* round up: never wake before it */
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* ---- ring names -------------------------------------------------------------- */

bool rpc_is_ring(const char *url)
{
	return !strncmp(url, "shm:", 4) || !strncmp(url, "sysvshm:", 8);
}

int rpc_check_scheme(const char *url)
{
	static const char *const ok[] = { "unix:", "unixpacket:", "tcp:", "shm:", "sysvshm:",
					  "nats:", NULL };
	for (int i = 0; ok[i]; i++)
		if (!strncmp(url, ok[i], strlen(ok[i])))
			return 0;
	return ipcx_errdetail_set(-EOPNOTSUPP, "%s: RPC needs unix:, unixpacket:, tcp://, shm:, "
						"sysvshm: or nats:// (or a duplex channel of one's own)",
				  url);
}

/*
 * The URL a client dials.  A nats:// channel receives what is sent back to
 * it only when dialled with reply=1 (its messages then carry its inbox as
 * their reply subject; docs/nats.md): a client asks for that.
 */
const char *rpc_dial_url(const char *url, char *buf, size_t cap)
{
	if (strncmp(url, "nats:", 5) || strstr(url, "reply="))
		return url;
	int n = snprintf(buf, cap, "%s%sreply=1", url, strchr(url, '?') ? "&" : "?");
	return n > 0 && (size_t)n < cap ? buf : url;
}

/* Keep the options a reply ring takes over from the URL. */
static void keep_opts(const char *q, char *out, size_t cap)
{
	static const char *const keep[] = { "capacity=", "spin=", "mode=", NULL };
	size_t o = 0;
	out[0] = 0;
	while (q && *q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		for (int i = 0; keep[i]; i++)
			if (!strncmp(q, keep[i], strlen(keep[i])) && o + len + 2 < cap) {
				out[o++] = '&';
				memcpy(out + o, q, len);
				o += len;
				out[o] = 0;
			}
		q = end ? end + 1 : NULL;
	}
}

int rpc_ringurl_parse(const char *url, struct rpc_ringurl *ret)
{
	struct rpc_ringurl u;
	memset(&u, 0, sizeof(u));
	u.sysv = !strncmp(url, "sysvshm:", 8);
	const char *body = url + (u.sysv ? 8 : 4);
	if (!strncmp(body, "//", 2))
		body += 2;
	const char *q = strchr(body, '?');
	size_t blen = q ? (size_t)(q - body) : strlen(body);
	keep_opts(q ? q + 1 : NULL, u.opts, sizeof(u.opts));
	if (u.sysv) {
		char key[32], *end;
		if (blen == 0 || blen >= sizeof(key))
			return ipcx_errdetail_set(-EINVAL, "%s: RPC over sysvshm: needs a numeric KEY",
						  url);
		memcpy(key, body, blen);
		key[blen] = 0;
		errno = 0;
		unsigned long long k = strtoull(key, &end, 0);
		if (*end || errno || k == 0 || k > 0xffffffffull)
			return ipcx_errdetail_set(-EINVAL, "%s: RPC over sysvshm: needs a numeric KEY "
							   "(decimal or 0x hex, not 0)", url);
		u.key = (uint32_t)k;
	} else {
		/* Room for ".rpc." and 16 hex digits in a name of at most 255 bytes. */
		if (blen < 2 || body[0] != '/' || blen + 21 > 255)
			return ipcx_errdetail_set(-EINVAL, "%s: RPC over shm: needs /NAME of at most "
							   "234 bytes (its reply rings add 21)", url);
		memcpy(u.name, body, blen);
		u.name[blen] = 0;
	}
	*ret = u;
	return 0;
}

int rpc_reply_url(const struct rpc_ringurl *u, uint64_t token, char *buf, size_t cap)
{
	int n;
	if (u->sysv) {
		/* A key beside the server's: same upper half, never the server's own. */
		if (!token || token > 0xffffffffull || (token >> 16) != (u->key >> 16) || token == u->key)
			return -EINVAL;
		n = snprintf(buf, cap, "sysvshm:0x%08x", (unsigned)token);
	} else {
		n = snprintf(buf, cap, "shm:%s.rpc.%016llx", u->name, (unsigned long long)token);
	}
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
