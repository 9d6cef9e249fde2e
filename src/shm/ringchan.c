/* Channel operations over a ring, shared by shm:, sysvshm: and mmap:. */
#include "ringchan.h"

#include "record.h"

#include <errno.h>
#include <stdlib.h>

#define RC(c) ((struct ringchan *)(c))

static ssize_t rc_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	return ipcx__ring_send(&RC(c)->ring, msg, len, timeout_ms);
}

static ssize_t rc_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	return ipcx__ring_recv(&RC(c)->ring, buf, cap, timeout_ms);
}

static int rc_reserve(ipcx_chan *c, size_t len, int timeout_ms, void **slot)
{
	return ipcx__ring_reserve(&RC(c)->ring, len, timeout_ms, slot);
}

static int rc_commit(ipcx_chan *c, size_t len)
{
	return ipcx__ring_commit(&RC(c)->ring, len);
}

static ssize_t rc_peek(ipcx_chan *c, int timeout_ms, const void **msg)
{
	return ipcx__ring_peek(&RC(c)->ring, timeout_ms, msg);
}

static int rc_release(ipcx_chan *c)
{
	return ipcx__ring_release(&RC(c)->ring);
}

static int rc_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	uint64_t v[5];
	int r = ipcx__ring_stats(&RC(c)->ring, v);
	if (r < 0)
		return r;
	ret->sent = v[0];
	ret->received = v[1];
	ret->dropped = v[2];
	ret->depth = v[3];
	ret->peers = v[4];
	return 0;
}

static int rc_fileno(ipcx_chan *c)
{
	return ipcx__ring_fileno(&RC(c)->ring);
}

/*
 * The listener that created the ring, for a channel that dialed it.  Its
 * peer slot names it (pid and start time); the owner flag marks the slot.
 */
static int rc_peer(ipcx_chan *c, struct ipcx_proc *ret)
{
	struct ring *r = &RC(c)->ring;
	if (r->persistent)
		return ipcx__fail(-EOPNOTSUPP, "a log has no listener to name");
	if (r->me >= 0 && atomic_load(&r->h->peers[r->me].owner))
		return ipcx__fail(-ENOTCONN, "the ring's listener has no one peer");
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		pid_t pid = (pid_t)atomic_load(&pe->pid);
		uint64_t start = atomic_load(&pe->start);
		if (!atomic_load(&pe->owner) || pid <= 0 || start == 0)
			continue;
		if (!ipcx__proc_alive(pid, start))
			continue;
		ret->pid = pid;
		ret->start = start;
		return 0;
	}
	return ipcx__fail(-EPIPE, "ring: its listener is gone");
}

static int rc_close(ipcx_chan *c)
{
	struct ringchan *rc = RC(c);
	ipcx__ring_detach(&rc->ring);
	int r = rc->unmap ? rc->unmap(rc) : 0;
	free(rc);
	return r;
}

const struct ipcx__chan_ops ipcx__ringchan_ops = {
	.send = rc_send,
	.recv = rc_recv,
	.reserve = rc_reserve,
	.commit = rc_commit,
	.peek = rc_peek,
	.release = rc_release,
	.stats = rc_stats,
	.fileno = rc_fileno,
	.peer = rc_peer,
	.close = rc_close,
};

int ipcx__ringchan_init(struct ringchan *rc, const struct ipcx_tran *t, bool format,
			const struct ring_geom *g)
{
	if (format) {
		int r = ipcx__ring_format(rc->map, rc->maplen, g);
		if (r < 0)
			return r;
	}
	int r = ipcx__ring_attach(&rc->ring, rc->map, rc->maplen, false);
	if (r < 0)
		return r;
	rc->ring.spin_us = g->spin_us;
	if (rc->owner)
		ipcx__ring_own(&rc->ring);
	ipcx__chan_init(&rc->c, &ipcx__ringchan_ops, t, -1, rc->ring.max_msg);
	return 0;
}
