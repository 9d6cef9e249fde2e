/*
 * ipcx's request/reply, through the public API: one row per transport.  The
 * server (side 1) serves a fresh URL and hands its address over the control
 * link; the client (side 0) dials it.  Round trip: ipcx_rpc_start, then
 * ipcx_rpc_wait, each call with a 60 s deadline (a real one, so that the
 * deadline heap is part of the cost).  The stream column: calls per second
 * with BH_INFLIGHT in flight (bh_rpc_pipeline).  The server echoes.
 */
#include "bench.h"

#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 60000

struct rpcside {
	ipcx_rpc_server *s;
	ipcx_rpc_client *c;
	struct ipcx_rpc_req *held; /* the server's request, until it answers */
};

static int note(struct bh_ctx *c, int r, const char *what, const char *url)
{
	const char *d = ipcx_errdetail();
	bh_note(c->res, r == -EMSGSIZE ? BH_SKIP : BH_ERROR, "%s %s: %s%s%s%s", what, url,
		ipcx_strerror(r), *d ? " (" : "", d, *d ? ")" : "");
	return r;
}

/* "%N" in a template: a name unique to the run and the case. */
static void expand(const struct bh_params *p, const char *t, char *out, size_t cap)
{
	char name[128];
	snprintf(name, sizeof(name), "%s-%ur", p->prefix, p->seq);
	const char *n = strstr(t, "%N"), *d = strstr(t, "%D"), *k = strstr(t, "%K");
	if (n)
		snprintf(out, cap, "%.*s%s%s", (int)(n - t), t, name, n + 2);
	else if (d)
		snprintf(out, cap, "%.*s%s/%s%s", (int)(d - t), t, p->dir, name, d + 2);
	else if (k)
		snprintf(out, cap, "%.*s%d%s", (int)(k - t), t, p->key, k + 2);
	else
		snprintf(out, cap, "%s", t);
}

static int r_open(struct bh_ctx *c)
{
	struct rpcside *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	c->priv = x;
	/*
	 * Room for the message and the frame around it, and for calls to travel
	 * together (a batch of 64 KiB at most): the largest message is never
	 * less than 64 KiB, the default of the rings.
	 */
	char url[512], full[640], addr[640];
	expand(c->p, c->arg, url, sizeof(url));
	size_t max = c->p->size + 64 < (64u << 10) ? (64u << 10) : c->p->size + 64;
	snprintf(full, sizeof(full), "%s%smax=%zu", url, strchr(url, '?') ? "&" : "?", max);
	int r;
	if (c->side) {
		if ((r = ipcx_rpc_serve(full, 0, &x->s)) < 0)
			return note(c, r, "serve", full);
		if ((r = ipcx_rpc_server_addr(x->s, addr, sizeof(addr))) < 0)
			return note(c, r, "address of", full);
		if (!strchr(addr, '?'))
			snprintf(addr + strlen(addr), sizeof(addr) - strlen(addr), "?max=%zu", max);
		return bh_ctl_send(c, addr, strlen(addr) + 1);
	}
	if ((r = bh_ctl_recv_str(c, addr, sizeof(addr))) < 0)
		return r;
	if ((r = ipcx_rpc_dial(addr, 0, &x->c)) < 0)
		return note(c, r, "dial", addr);
	return 0;
}

/* Client: start a call.  Server: answer the request it holds. */
static int r_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct rpcside *x = c->priv;
	if (c->side) {
		/* The request's own bytes go back: the echo the channel rows make. */
		struct ipcx_rpc_req *q = x->held;
		x->held = NULL;
		return ipcx_rpc_reply(q, q->data, q->len);
	}
	/* More follow until the harness waits: they may go out together. */
	uint64_t id;
	return ipcx_rpc_start(x->c, buf, len, CALL_TIMEOUT_MS, IPCX_RPC_MORE, &id);
}

/* Client: the next result.  Server: the next request. */
static int r_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct rpcside *x = c->priv;
	if (c->side) {
		int r = ipcx_rpc_next(x->s, timeout_ms, &x->held);
		if (r == 0 && x->held->len != len)
			return -EBADMSG;
		return r;
	}
	struct ipcx_rpc_result res;
	int r = ipcx_rpc_wait(x->c, timeout_ms, buf, len, &res);
	if (r < 0)
		return r;
	if (res.status < 0)
		return (int)res.status;
	return res.status == (ssize_t)len ? 0 : -EBADMSG;
}

static void r_close(struct bh_ctx *c)
{
	struct rpcside *x = c->priv;
	if (!x)
		return;
	ipcx_rpc_client_close(x->c);
	ipcx_rpc_server_close(x->s);
	free(x);
	c->priv = NULL;
}

#define RPC_ROW(name, tmpl)                                                                 \
	static const struct bh_ops rpc_##name = { .transport = "rpc-" #name, .impl = "ipcx",  \
		.mode = "blocking", .open = r_open, .send = r_send, .recv = r_recv,           \
		.close = r_close, .thr = bh_rpc_pipeline, .arg = tmpl }

RPC_ROW(shm, "shm:/%N");
RPC_ROW(sysvshm, "sysvshm:%K");
RPC_ROW(unix, "unix:%D");
RPC_ROW(unixpacket, "unixpacket:%D");
RPC_ROW(tcp, "tcp://127.0.0.1:0");

const struct bh_ops *const bh_ipcx_rpc_ops[] = {
	&rpc_shm, &rpc_sysvshm, &rpc_unix, &rpc_unixpacket, &rpc_tcp, NULL,
};
