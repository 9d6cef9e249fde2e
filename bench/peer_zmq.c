/*
 * ZeroMQ as a peer: a PAIR socket each side, over ipc:// (a Unix stream
 * socket file in the run's folder) or tcp:// on the loopback.
 */
#include "peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct zside {
	void *ctx, *sock;
};

static int zerr(void)
{
	return zmq_errno() ? -zmq_errno() : -EIO;
}

static int z_open(struct bh_ctx *c)
{
	const char *kind = c->arg;
	struct zside *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	c->priv = z;
	z->ctx = zmq_ctx_new();
	z->sock = z->ctx ? zmq_socket(z->ctx, ZMQ_PAIR) : NULL;
	if (!z->sock)
		return zerr();
	int zero = 0;
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	char ep[300];
	if (c->side) {
		if (!strcmp(kind, "ipc")) {
			char path[256];
			bh_path(c->p, "zmq", path, sizeof(path));
			snprintf(ep, sizeof(ep), "ipc://%s", path);
		} else {
			snprintf(ep, sizeof(ep), "tcp://127.0.0.1:*");
		}
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

static int z_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct zside *z = c->priv;
	for (;;) {
		int n = zmq_send(z->sock, buf, len, 0);
		if (n == (int)len)
			return 0;
		if (n < 0 && zmq_errno() == EINTR)
			continue;
		return n < 0 ? zerr() : -EIO;
	}
}

static int z_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct zside *z = c->priv;
	for (;;) {
		int n = zmq_recv(z->sock, buf, len, 0);
		if (n == (int)len)
			return 0;
		if (n < 0 && zmq_errno() == EINTR)
			continue;
		return n < 0 ? zerr() : -EBADMSG;
	}
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
	.recv = z_recv, .close = z_close, .arg = "ipc" };
static const struct bh_ops z_tcp = { "tcp", "zmq", "tcp", .open = z_open, .send = z_send,
	.recv = z_recv, .close = z_close, .arg = "tcp" };

const struct bh_ops *peer_ops(const char *transport)
{
	return !strcmp(transport, "ipc") ? &z_ipc : !strcmp(transport, "tcp") ? &z_tcp : NULL;
}

const char *peer_version(void)
{
	static char v[32];
	int a, b, c;
	zmq_version(&a, &b, &c);
	snprintf(v, sizeof(v), "zmq %d.%d.%d", a, b, c);
	return v;
}
