/*
 * nng as a peer, over ipc:// (a Unix socket file in the run's folder) or
 * tcp:// on the loopback: a pair1 socket each side for the channel rows;
 * req0/rep0 for the request/reply rows.  Their round trip uses the cooked
 * sockets (one call at a time, as nng's req does); calls per second with
 * BH_INFLIGHT in flight use the raw ones, where the caller puts the request
 * id in the header itself (nng's own way to have many calls in flight).
 */
#include "peer.h"

#include <errno.h>
#include <stdatomic.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/transport/tcp/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nkind {
	const char *transport; /* "ipc" or "tcp" */
	bool rpc;              /* req0/rep0, else pair1 */
};

static const struct nkind k_pair_ipc = { "ipc", false };
static const struct nkind k_pair_tcp = { "tcp", false };
static const struct nkind k_rpc_ipc = { "ipc", true };
static const struct nkind k_rpc_tcp = { "tcp", true };

struct nside {
	nng_socket sock;
	bool open, raw;
	nng_msg *held; /* raw rep: the request being answered, header and all */
	uint32_t seq;  /* raw req: the next request id */
};

/* nng has its own error numbers: keep the words, hand back -EIO. */
static int nerr(struct bh_ctx *c, const char *what, int rv)
{
	bh_note(c->res, BH_ERROR, "%s: %s", what, nng_strerror(rv));
	return -EIO;
}

static int open_socket(struct bh_ctx *c, struct nside *n, const struct nkind *k)
{
	n->raw = k->rpc && c->p->kind == BH_THR;
	if (!k->rpc)
		return nng_pair1_open(&n->sock);
	if (n->raw)
		return c->side ? nng_rep0_open_raw(&n->sock) : nng_req0_open_raw(&n->sock);
	return c->side ? nng_rep0_open(&n->sock) : nng_req0_open(&n->sock);
}

static int n_open(struct bh_ctx *c)
{
	const struct nkind *k = c->arg;
	struct nside *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	c->priv = n;
	int rv = open_socket(c, n, k);
	if (rv)
		return nerr(c, "nng open", rv);
	n->open = true;
	/* No cap on a received message: the bench sizes go to 1 MiB and beyond. */
	nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, 0);
	char url[300];
	if (c->side) {
		if (!strcmp(k->transport, "ipc"))
			peer_ipc_url(c->p, "nng", url, sizeof(url));
		else
			snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
		nng_listener l;
		if ((rv = nng_listen(n->sock, url, &l, 0)))
			return nerr(c, "nng_listen", rv);
		if (strcmp(k->transport, "ipc")) {
			int port = 0;
			if ((rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)))
				return nerr(c, "bound port", rv);
			snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
		}
		return bh_ctl_send(c, url, strlen(url) + 1);
	}
	int r = bh_ctl_recv_str(c, url, sizeof(url));
	if (r < 0)
		return r;
	if ((rv = nng_dial(n->sock, url, NULL, 0)))
		return nerr(c, "nng_dial", rv);
	return 0;
}

/* Raw req: a message with the request id in its header. */
static int raw_send(struct bh_ctx *c, struct nside *n, const void *buf, size_t len)
{
	nng_msg *m;
	int rv = nng_msg_alloc(&m, 0);
	if (!rv)
		rv = nng_msg_header_append_u32(m, 0x80000000u | (n->seq++ & 0x7fffffffu));
	if (!rv)
		rv = nng_msg_append(m, buf, len);
	if (!rv && (rv = nng_sendmsg(n->sock, m, 0)))
		nng_msg_free(m);
	return rv ? nerr(c, "nng_sendmsg", rv) : 0;
}

static int n_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct nside *n = c->priv;
	if (n->raw && c->side) { /* raw rep: the request goes back, header and all */
		nng_msg *m = n->held;
		n->held = NULL;
		int rv = nng_sendmsg(n->sock, m, 0);
		if (rv)
			nng_msg_free(m);
		return rv ? nerr(c, "nng_sendmsg", rv) : 0;
	}
	if (n->raw)
		return raw_send(c, n, buf, len);
	int rv = nng_send(n->sock, (void *)buf, len, 0);
	return rv ? nerr(c, "nng_send", rv) : 0;
}

static int n_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct nside *n = c->priv;
	if (n->raw) {
		nng_msg *m;
		int rv = nng_recvmsg(n->sock, &m, 0);
		if (rv)
			return nerr(c, "nng_recvmsg", rv);
		size_t got = nng_msg_len(m);
		if (c->side)
			n->held = m;
		else
			nng_msg_free(m);
		return got == len ? 0 : -EBADMSG;
	}
	size_t got = len;
	int rv = nng_recv(n->sock, buf, &got, 0);
	if (rv)
		return nerr(c, "nng_recv", rv);
	return got == len ? 0 : -EBADMSG;
}

static void n_close(struct bh_ctx *c)
{
	struct nside *n = c->priv;
	if (!n)
		return;
	if (n->held)
		nng_msg_free(n->held);
	if (n->open)
		nng_close(n->sock);
	free(n);
	c->priv = NULL;
}

static const struct bh_ops n_ipc = { "unix", "nng", "ipc", .open = n_open, .send = n_send,
	.recv = n_recv, .close = n_close, .arg = &k_pair_ipc };
static const struct bh_ops n_tcp = { "tcp", "nng", "tcp", .open = n_open, .send = n_send,
	.recv = n_recv, .close = n_close, .arg = &k_pair_tcp };
static const struct bh_ops n_rpc_ipc = { "rpc-unix", "nng", "req/rep", .open = n_open,
	.send = n_send, .recv = n_recv, .close = n_close, .thr = bh_rpc_pipeline,
	.arg = &k_rpc_ipc };
static const struct bh_ops n_rpc_tcp = { "rpc-tcp", "nng", "req/rep", .open = n_open,
	.send = n_send, .recv = n_recv, .close = n_close, .thr = bh_rpc_pipeline,
	.arg = &k_rpc_tcp };

/* ---- fan-out: pub0 and sub0 over ipc ------------------------------------------------ */

/*
 * pub0 never waits: a subscriber whose queue is full loses the message,
 * uncounted by nng.  The queues are set to nng's largest (8192 messages on
 * each side) so that it loses as little as it can; what is lost anyway
 * shows in the row's "lost".  The publisher knows its subscribers as pipes.
 */
#define NNG_FAN_BUF 8192

struct nfan {
	nng_socket sock;
	bool open;
	_Atomic int pipes;
};

static void nf_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev;
	atomic_fetch_add(&((struct nfan *)arg)->pipes, 1);
}

static int nf_fail(struct bh_fan *f, const char *what, int rv)
{
	bh_note(f->res, BH_ERROR, "%s: %s", what, nng_strerror(rv));
	return -EIO;
}

static int nf_pub_open(struct bh_fan *f)
{
	struct nfan *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	f->priv = n;
	int rv = nng_pub0_open(&n->sock);
	if (rv)
		return nf_fail(f, "pub0", rv);
	n->open = true;
	nng_socket_set_int(n->sock, NNG_OPT_SENDBUF, NNG_FAN_BUF);
	nng_pipe_notify(n->sock, NNG_PIPE_EV_ADD_POST, nf_pipe_added, n);
	peer_ipc_url(f->p, "nfan", f->addr, sizeof(f->addr));
	rv = nng_listen(n->sock, f->addr, NULL, 0);
	return rv ? nf_fail(f, "listen", rv) : 0;
}

static int nf_pub_wait(struct bh_fan *f, int want)
{
	struct nfan *n = f->priv;
	uint64_t deadline = bh_now() + (uint64_t)f->p->timeout_ms * 1000000u;
	while (atomic_load(&n->pipes) < want) {
		if (bh_now() > deadline)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return 0;
}

static int nf_pub_send(struct bh_fan *f, const void *buf, size_t len)
{
	struct nfan *n = f->priv;
	int rv = nng_send(n->sock, (void *)buf, len, 0);
	return rv ? nf_fail(f, "send", rv) : 0;
}

static int nf_sub_open(struct bh_fan *f)
{
	struct nfan *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	f->priv = n;
	int rv = nng_sub0_open(&n->sock);
	if (rv)
		return nf_fail(f, "sub0", rv);
	n->open = true;
	nng_socket_set_int(n->sock, NNG_OPT_RECVBUF, NNG_FAN_BUF);
	nng_socket_set_ms(n->sock, NNG_OPT_RECVTIMEO, 100);
	if ((rv = nng_socket_set(n->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)))
		return nf_fail(f, "subscribe", rv);
	rv = nng_dial(n->sock, f->addr, NULL, 0);
	return rv ? nf_fail(f, "dial", rv) : 0;
}

static int nf_sub_recv(struct bh_fan *f, void *buf, size_t len, int timeout_ms)
{
	struct nfan *n = f->priv;
	(void)timeout_ms; /* NNG_OPT_RECVTIMEO, set once */
	size_t got = len;
	int rv = nng_recv(n->sock, buf, &got, 0);
	if (rv == NNG_ETIMEDOUT)
		return -ETIMEDOUT;
	if (rv)
		return nf_fail(f, "recv", rv);
	return got == len ? 0 : -EBADMSG;
}

static void nf_close(struct bh_fan *f)
{
	struct nfan *n = f->priv;
	if (!n)
		return;
	if (n->open)
		nng_close(n->sock);
	free(n);
	f->priv = NULL;
}

static const struct bh_fan_ops nf_ipc = { "pubsub-unix", "nng", .pub_open = nf_pub_open,
	.pub_wait = nf_pub_wait, .pub_send = nf_pub_send, .sub_open = nf_sub_open,
	.sub_recv = nf_sub_recv, .close = nf_close };

const struct bh_fan_ops *peer_fan_ops(const char *transport)
{
	return !strcmp(transport, "pubsub-ipc") ? &nf_ipc : NULL;
}

const struct bh_ops *peer_ops(const char *transport)
{
	static const struct peer_row rows[] = {
		{ "ipc", &n_ipc },
		{ "tcp", &n_tcp },
		{ "reqrep-ipc", &n_rpc_ipc },
		{ "reqrep-tcp", &n_rpc_tcp },
	};
	return peer_find(rows, sizeof(rows) / sizeof(rows[0]), transport);
}

const char *peer_version(void)
{
	static char v[32];
	snprintf(v, sizeof(v), "nng %s", nng_version());
	return v;
}
