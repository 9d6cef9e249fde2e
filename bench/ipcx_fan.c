/*
 * ipcx's publish/subscribe as a fan-out backend (bench/fanout.c), through
 * the public API: pubsub-shm (a broadcast ring, shm:, policy=block) and
 * pubsub-unix (a publisher on a Unix socket, policy=block), which never
 * drop, as the peers are set up not to; and pubsub-shm-drop (the same ring
 * with policy=drop), whose publisher never waits: its rate (in the note)
 * is the cost per message that must not grow with the subscribers; and
 * pubsub-shm once more with subscribers that take batches of up to 64
 * (ipcx_sub_recvv; modes "1 sub b64", "4 subs b64").  Every
 * message goes under one topic; subscribers keep every topic.
 */
#include "bench.h"

#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAN_BATCH 64 /* entries of a batched subscriber's ipcx_sub_recvv */

struct fside {
	ipcx_pub *p;
	ipcx_sub *s;
	/* A batched subscriber: what its last ipcx_sub_recvv got, handed out one by one. */
	struct ipcx_sub_msg m[FAN_BATCH];
	uint8_t *bufs;
	size_t have, next;
};

static int note(struct bh_fan *f, int r, const char *what)
{
	const char *d = ipcx_errdetail();
	bh_note(f->res, r == -EMSGSIZE ? BH_SKIP : BH_ERROR, "%s: %s%s%s%s", what,
		ipcx_strerror(r), *d ? " (" : "", d, *d ? ")" : "");
	return r;
}

/* The URL: the row's template with a name of the run's, and room for the size. */
static void url_of(struct bh_fan *f, char *buf, size_t cap)
{
	const char *t = f->arg;
	size_t max = f->p->size + 64; /* the topic travels with each message */
	if (!strcmp(t, "shm"))
		snprintf(buf, cap, "shm:/%s-%uf?max=%zu", f->p->prefix, f->p->seq, max);
	else if (!strcmp(t, "shm-drop"))
		snprintf(buf, cap, "shm:/%s-%uf?max=%zu&policy=drop", f->p->prefix, f->p->seq, max);
	else
		snprintf(buf, cap, "unix:%s/%s-%uf?max=%zu", f->p->dir, f->p->prefix, f->p->seq, max);
}

static int f_pub_open(struct bh_fan *f)
{
	struct fside *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	f->priv = x;
	url_of(f, f->addr, sizeof(f->addr));
	int r = ipcx_pub_open(f->addr, 0, &x->p);
	return r < 0 ? note(f, r, "publish") : 0;
}

static int f_pub_wait(struct bh_fan *f, int n)
{
	struct fside *x = f->priv;
	int r = ipcx_pub_wait(x->p, (size_t)n, f->p->timeout_ms);
	return r < 0 ? note(f, r, "wait for subscribers") : 0;
}

static int f_pub_send(struct bh_fan *f, const void *buf, size_t len)
{
	struct fside *x = f->priv;
	ssize_t r = ipcx_pub_send(x->p, "b", buf, len, -1);
	return r < 0 ? note(f, (int)r, "publish") : 0;
}

static int f_sub_open(struct bh_fan *f)
{
	struct fside *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	f->priv = x;
	int r = ipcx_sub_open(f->addr, NULL, 0, 0, &x->s);
	return r < 0 ? note(f, r, "subscribe") : 0;
}

static int f_sub_recv(struct bh_fan *f, void *buf, size_t len, int timeout_ms)
{
	struct fside *x = f->priv;
	ssize_t n = ipcx_sub_recv(x->s, NULL, 0, buf, len, timeout_ms);
	if (n == -ETIMEDOUT || n == -EAGAIN)
		return (int)n;
	if (n < 0)
		return note(f, (int)n, "receive");
	return (size_t)n == len ? 0 : -EBADMSG;
}

/*
 * The batched row: up to FAN_BATCH messages a call of ipcx_sub_recvv, each
 * then copied into the loop's buffer (as zmq_recv copies each message out
 * of what its I/O thread batched), so that every row's loop is the same.
 */
static int f_sub_recv_batched(struct bh_fan *f, void *buf, size_t len, int timeout_ms)
{
	struct fside *x = f->priv;
	if (x->next == x->have) {
		if (!x->bufs) {
			if (!(x->bufs = malloc(FAN_BATCH * len)))
				return -ENOMEM;
			for (size_t i = 0; i < FAN_BATCH; i++)
				x->m[i] = (struct ipcx_sub_msg){ .buf = x->bufs + i * len, .cap = len };
		}
		ssize_t n = ipcx_sub_recvv(x->s, x->m, FAN_BATCH, timeout_ms);
		if (n == -ETIMEDOUT || n == -EAGAIN)
			return (int)n;
		if (n < 0)
			return note(f, (int)n, "receive");
		x->have = (size_t)n;
		x->next = 0;
	}
	const struct ipcx_sub_msg *m = &x->m[x->next++];
	if (m->len != len)
		return -EBADMSG;
	memcpy(buf, m->buf, len);
	return 0;
}

static void f_close(struct bh_fan *f)
{
	struct fside *x = f->priv;
	if (!x)
		return;
	ipcx_sub_close(x->s);
	ipcx_pub_close(x->p);
	free(x->bufs);
	free(x);
	f->priv = NULL;
}

#define FAN_ROW(name, tname, tmpl)                                                                      \
	static const struct bh_fan_ops fan_##name = {                                            \
		.transport = tname, .impl = "ipcx", .pub_open = f_pub_open,            \
		.pub_wait = f_pub_wait, .pub_send = f_pub_send, .sub_open = f_sub_open,          \
		.sub_recv = f_sub_recv, .close = f_close, .arg = tmpl }

FAN_ROW(shm, "pubsub-shm", "shm");
FAN_ROW(shm_drop, "pubsub-shm-drop", "shm-drop");
FAN_ROW(unix, "pubsub-unix", "unix");

/* pubsub-shm again, its subscribers taking batches (ipcx_sub_recvv): modes "N sub(s) b64". */
static const char *const batched_modes[2] = { "1 sub b64", "4 subs b64" };
static const struct bh_fan_ops fan_shm_batched = {
	.transport = "pubsub-shm", .impl = "ipcx", .pub_open = f_pub_open, .pub_wait = f_pub_wait,
	.pub_send = f_pub_send, .sub_open = f_sub_open, .sub_recv = f_sub_recv_batched,
	.close = f_close, .arg = "shm", .modes = batched_modes
};

const struct bh_fan_ops *const bh_ipcx_fan_ops[] = { &fan_shm, &fan_shm_batched, &fan_shm_drop,
						      &fan_unix, NULL };
