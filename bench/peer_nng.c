/*
 * nng as a peer: a pair1 socket each side, over ipc:// (a Unix socket file
 * in the run's folder) or tcp:// on the loopback.
 */
#include "peer.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/transport/tcp/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nside {
	nng_socket sock;
	bool open;
};

/* nng has its own error numbers: keep the words, hand back -EIO. */
static int nerr(struct bh_ctx *c, const char *what, int rv)
{
	bh_note(c->res, BH_ERROR, "%s: %s", what, nng_strerror(rv));
	return -EIO;
}

static int n_open(struct bh_ctx *c)
{
	const char *kind = c->arg;
	struct nside *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	c->priv = n;
	int rv = nng_pair1_open(&n->sock);
	if (rv)
		return nerr(c, "nng_pair1_open", rv);
	n->open = true;
	/* No cap on a received message: the bench sizes go to 1 MiB and beyond. */
	nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, 0);
	char url[300];
	if (c->side) {
		if (!strcmp(kind, "ipc")) {
			char path[256];
			bh_path(c->p, "nng", path, sizeof(path));
			snprintf(url, sizeof(url), "ipc://%s", path);
		} else {
			snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
		}
		nng_listener l;
		if ((rv = nng_listen(n->sock, url, &l, 0)))
			return nerr(c, "nng_listen", rv);
		if (strcmp(kind, "ipc")) {
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

static int n_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct nside *n = c->priv;
	int rv = nng_send(n->sock, (void *)buf, len, 0);
	return rv ? nerr(c, "nng_send", rv) : 0;
}

static int n_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct nside *n = c->priv;
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
	if (n->open)
		nng_close(n->sock);
	free(n);
	c->priv = NULL;
}

static const struct bh_ops n_ipc = { "unix", "nng", "ipc", .open = n_open, .send = n_send,
	.recv = n_recv, .close = n_close, .arg = "ipc" };
static const struct bh_ops n_tcp = { "tcp", "nng", "tcp", .open = n_open, .send = n_send,
	.recv = n_recv, .close = n_close, .arg = "tcp" };

const struct bh_ops *peer_ops(const char *transport)
{
	return !strcmp(transport, "ipc") ? &n_ipc : !strcmp(transport, "tcp") ? &n_tcp : NULL;
}

const char *peer_version(void)
{
	static char v[32];
	snprintf(v, sizeof(v), "nng %s", nng_version());
	return v;
}
