/*
 * ZeroMQ as a peer, over ipc:// (a Unix stream socket file in the run's
 * folder) or tcp:// on the loopback: a PAIR socket each side for the
 * channel rows; REQ/REP and DEALER/ROUTER for the request/reply rows.
 */
#include "peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct zside {
	void *ctx, *sock;
	unsigned char id[256]; /* ROUTER: the identity of the peer that called */
	size_t idlen;
};

/* How a row uses ZeroMQ: the sockets of each side and the transport. */
struct zkind {
	const char *transport; /* "ipc" or "tcp" */
	int client, server;    /* socket types */
};

static const struct zkind k_pair_ipc = { "ipc", ZMQ_PAIR, ZMQ_PAIR };
static const struct zkind k_pair_tcp = { "tcp", ZMQ_PAIR, ZMQ_PAIR };
static const struct zkind k_reqrep_ipc = { "ipc", ZMQ_REQ, ZMQ_REP };
static const struct zkind k_reqrep_tcp = { "tcp", ZMQ_REQ, ZMQ_REP };
static const struct zkind k_dealer_ipc = { "ipc", ZMQ_DEALER, ZMQ_ROUTER };
static const struct zkind k_dealer_tcp = { "tcp", ZMQ_DEALER, ZMQ_ROUTER };

static int zerr(void)
{
	return zmq_errno() ? -zmq_errno() : -EIO;
}

static int z_open(struct bh_ctx *c)
{
	const struct zkind *k = c->arg;
	struct zside *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	c->priv = z;
	z->ctx = zmq_ctx_new();
	z->sock = z->ctx ? zmq_socket(z->ctx, c->side ? k->server : k->client) : NULL;
	if (!z->sock)
		return zerr();
	int zero = 0;
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	char ep[300];
	if (c->side) {
		if (!strcmp(k->transport, "ipc"))
			peer_ipc_url(c->p, "zmq", ep, sizeof(ep));
		else
			snprintf(ep, sizeof(ep), "tcp://127.0.0.1:*");
		if (zmq_bind(z->sock, ep) < 0)
			return zerr();
		size_t len = sizeof(ep);
		if (zmq_getsockopt(z->sock, ZMQ_LAST_ENDPOINT, ep, &len) < 0)
			return zerr();
		return bh_ctl_send(c, ep, strlen(ep) + 1);
	}
	int r = bh_ctl_recv_str(c, ep, sizeof(ep));
	if (r < 0)
		return r;
	return zmq_connect(z->sock, ep) < 0 ? zerr() : 0;
}

/* One zmq_send, again after EINTR. */
static int z_send1(void *sock, const void *buf, size_t len, int flags)
{
	for (;;) {
		int n = zmq_send(sock, buf, len, flags);
		if (n == (int)len)
			return 0;
		if (n < 0 && zmq_errno() == EINTR)
			continue;
		return n < 0 ? zerr() : -EIO;
	}
}

/* One zmq_recv of at most len bytes: its length, or -errno. */
static int z_recv1(void *sock, void *buf, size_t len)
{
	for (;;) {
		int n = zmq_recv(sock, buf, len, 0);
		if (n >= 0)
			return n;
		if (zmq_errno() != EINTR)
			return zerr();
	}
}

static int z_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct zside *z = c->priv;
	const struct zkind *k = c->arg;
	/* A ROUTER answers the peer that called: its identity frame first. */
	if (c->side && k->server == ZMQ_ROUTER) {
		int r = z_send1(z->sock, z->id, z->idlen, ZMQ_SNDMORE);
		if (r)
			return r;
	}
	return z_send1(z->sock, buf, len, 0);
}

static int z_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct zside *z = c->priv;
	const struct zkind *k = c->arg;
	if (c->side && k->server == ZMQ_ROUTER) {
		int n = z_recv1(z->sock, z->id, sizeof(z->id));
		if (n < 0)
			return n;
		z->idlen = (size_t)n;
	}
	int n = z_recv1(z->sock, buf, len);
	return n < 0 ? n : n == (int)len ? 0 : -EBADMSG;
}

/* REQ/REP cannot have two calls in flight: no calls-per-second figure. */
static int z_lockstep(const struct bh_ops *ops, struct bh_ctx *c, struct bh_result *r)
{
	(void)ops;
	if (c->side == 0)
		bh_note(r, BH_SKIP, "REQ/REP is lockstep: one call at a time");
	return 0;
}

static void z_close(struct bh_ctx *c)
{
	struct zside *z = c->priv;
	if (!z)
		return;
	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	free(z);
	c->priv = NULL;
}

static const struct bh_ops z_ipc = { "unix", "zmq", "ipc", .open = z_open, .send = z_send,
	.recv = z_recv, .close = z_close, .arg = &k_pair_ipc };
static const struct bh_ops z_tcp = { "tcp", "zmq", "tcp", .open = z_open, .send = z_send,
	.recv = z_recv, .close = z_close, .arg = &k_pair_tcp };
static const struct bh_ops z_reqrep_ipc = { "rpc-unix", "zmq", "req/rep", .open = z_open,
	.send = z_send, .recv = z_recv, .close = z_close, .thr = z_lockstep,
	.arg = &k_reqrep_ipc };
static const struct bh_ops z_reqrep_tcp = { "rpc-tcp", "zmq", "req/rep", .open = z_open,
	.send = z_send, .recv = z_recv, .close = z_close, .thr = z_lockstep,
	.arg = &k_reqrep_tcp };
static const struct bh_ops z_dealer_ipc = { "rpc-unix", "zmq", "dealer", .open = z_open,
	.send = z_send, .recv = z_recv, .close = z_close, .thr = bh_rpc_pipeline,
	.arg = &k_dealer_ipc };
static const struct bh_ops z_dealer_tcp = { "rpc-tcp", "zmq", "dealer", .open = z_open,
	.send = z_send, .recv = z_recv, .close = z_close, .thr = bh_rpc_pipeline,
	.arg = &k_dealer_tcp };

/* ---- fan-out: XPUB and SUB over ipc -------------------------------------------------- */

/*
 * The publisher is an XPUB (a PUB that hears subscriptions, so it can wait
 * for its subscribers: ZeroMQ's own cure for the slow joiner).  High-water
 * marks 0 (no limit) on both sides: ZeroMQ then never drops, as no other
 * row does; with the default (1000) PUB would drop silently.
 */
struct zfan {
	void *ctx, *sock;
};

static int zf_open(struct bh_fan *f, int type)
{
	struct zfan *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	f->priv = z;
	z->ctx = zmq_ctx_new();
	z->sock = z->ctx ? zmq_socket(z->ctx, type) : NULL;
	if (!z->sock)
		return zerr();
	int zero = 0, slice = 100;
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z->sock, type == ZMQ_XPUB ? ZMQ_SNDHWM : ZMQ_RCVHWM, &zero, sizeof(zero));
	int one = 1; /* every subscription up, not only the first of each topic */
	if (type == ZMQ_XPUB)
		zmq_setsockopt(z->sock, ZMQ_XPUB_VERBOSE, &one, sizeof(one));
	if (type == ZMQ_SUB)
		zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &slice, sizeof(slice));
	return 0;
}

static int zf_pub_open(struct bh_fan *f)
{
	int r = zf_open(f, ZMQ_XPUB);
	if (r < 0)
		return r;
	struct zfan *z = f->priv;
	peer_ipc_url(f->p, "zfan", f->addr, sizeof(f->addr));
	return zmq_bind(z->sock, f->addr) < 0 ? zerr() : 0;
}

/* Each subscriber's subscription arrives as a message: count n of them. */
static int zf_pub_wait(struct bh_fan *f, int n)
{
	struct zfan *z = f->priv;
	int slice = 100;
	zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &slice, sizeof(slice));
	uint64_t deadline = bh_now() + (uint64_t)f->p->timeout_ms * 1000000u;
	char buf[64];
	for (int got = 0; got < n;) {
		int k = zmq_recv(z->sock, buf, sizeof(buf), 0);
		if (k > 0 && buf[0] == 1)
			got++;
		if (bh_now() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

static int zf_pub_send(struct bh_fan *f, const void *buf, size_t len)
{
	return z_send1(((struct zfan *)f->priv)->sock, buf, len, 0);
}

static int zf_sub_open(struct bh_fan *f)
{
	int r = zf_open(f, ZMQ_SUB);
	if (r < 0)
		return r;
	struct zfan *z = f->priv;
	if (zmq_setsockopt(z->sock, ZMQ_SUBSCRIBE, "", 0) < 0)
		return zerr();
	return zmq_connect(z->sock, f->addr) < 0 ? zerr() : 0;
}

static int zf_sub_recv(struct bh_fan *f, void *buf, size_t len, int timeout_ms)
{
	struct zfan *z = f->priv;
	(void)timeout_ms; /* ZMQ_RCVTIMEO, set once */
	int n = zmq_recv(z->sock, buf, len, 0);
	if (n < 0)
		return zmq_errno() == EAGAIN || zmq_errno() == EINTR ? -ETIMEDOUT : zerr();
	return n == (int)len ? 0 : -EBADMSG;
}

static void zf_close(struct bh_fan *f)
{
	struct zfan *z = f->priv;
	if (!z)
		return;
	if (z->sock)
		zmq_close(z->sock);
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	free(z);
	f->priv = NULL;
}

static const struct bh_fan_ops zf_ipc = { "pubsub-unix", "zmq", .pub_open = zf_pub_open,
	.pub_wait = zf_pub_wait, .pub_send = zf_pub_send, .sub_open = zf_sub_open,
	.sub_recv = zf_sub_recv, .close = zf_close };

const struct bh_fan_ops *peer_fan_ops(const char *transport)
{
	return !strcmp(transport, "pubsub-ipc") ? &zf_ipc : NULL;
}

const struct bh_ops *peer_ops(const char *transport)
{
	static const struct peer_row rows[] = {
		{ "ipc", &z_ipc },
		{ "tcp", &z_tcp },
		{ "reqrep-ipc", &z_reqrep_ipc },
		{ "reqrep-tcp", &z_reqrep_tcp },
		{ "dealer-ipc", &z_dealer_ipc },
		{ "dealer-tcp", &z_dealer_tcp },
	};
	return peer_find(rows, sizeof(rows) / sizeof(rows[0]), transport);
}

const char *peer_version(void)
{
	static char v[32];
	int a, b, c;
	zmq_version(&a, &b, &c);
	snprintf(v, sizeof(v), "zmq %d.%d.%d", a, b, c);
	return v;
}
