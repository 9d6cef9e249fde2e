/* Channel operations over a ring, shared by shm:, sysvshm: and mmap:. */
#include "shm/ringchan.h"

#include "core/error.h"
#include "core/proc.h"
#include "core/tran.h"
#include "shm/ring.h"
#include "ipcx.h"

#include <errno.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* In the order of enum ring_policy. */
const char *const ipcx__ring_policy_words[] = { "block", "drop", "overwrite", NULL };
_Static_assert(RING_BLOCK == 0 && RING_DROP == 1 && RING_OVERWRITE == 2,
	       "policy= names the enum ring_policy by index");

int ipcx__ring_geom_parse(const struct ipcx__url *u, struct ring_geom *g)
{
	size_t cap = (size_t)ipcx__opt(u, RING_OPT_CAPACITY), max = (size_t)ipcx__opt(u, RING_OPT_MAX);
	bool spsc = ipcx__opt(u, RING_OPT_SPSC);
	uint64_t spin = ipcx__opt(u, RING_OPT_SPIN);
	g->policy = (int)ipcx__opt(u, RING_OPT_POLICY);
	if (cap == 0) {
		cap = RING_DEF_CAP;
		while (cap < 4 * (uint64_t)max && cap < RING_MAX_CAP)
			cap *= 2;
	} else {
		size_t p2 = RING_MIN_CAP;
		while (p2 < cap)
			p2 *= 2;
		cap = p2;
	}
	if (ring_cells_for(max) > cap / RING_CELL / 2)
		return ipcx__fail(-EINVAL, "%s: capacity %zu must be at least twice max (%zu)",
				  u->orig, cap, max);
	if (spsc && g->policy == RING_OVERWRITE)
		return ipcx__fail(-EINVAL, "%s: policy=overwrite needs the MPMC ring (not spsc=1)",
				  u->orig);
	g->capacity = cap;
	g->max_msg = (uint32_t)max;
	g->flags |= spsc ? RING_F_SPSC : 0;
	g->spin_us = (unsigned)spin;
	return 0;
}

int ipcx__ring_bcast_parse(const struct ipcx__url *u, struct ring_geom *g)
{
	bool fanout = ipcx__opt(u, RING_OPT_FANOUT);
	g->sub = ipcx__opt(u, RING_OPT_SUB);
	g->history = ipcx__opt(u, RING_OPT_HISTORY);
	if (!fanout)
		return 0;
	if ((g->flags & RING_F_SPSC) || g->policy == RING_OVERWRITE)
		return ipcx__fail(-EINVAL, "%s: fanout=1 takes policy=block or drop, and not spsc=1",
				  u->orig);
	/* A broadcast record carries its number in front (ring.h). */
	if (ring_cells_for((uint64_t)g->max_msg + BCAST_HDR) > g->capacity / RING_CELL / 2)
		return ipcx__fail(-EINVAL, "%s: capacity %zu must be at least twice max (%u)",
				  u->orig, g->capacity, g->max_msg);
	g->flags |= RING_F_BCAST;
	return 0;
}

#define RC(ch) ipcx__container_of(ch, struct ringchan, c)

/* ---- a segment cut short by another process ------------------------------------ */

/*
 * A process that can open a shm: or mmap: object for writing can cut it short
 * (ftruncate); touching a page past the new end is then SIGBUS, which a
 * library cannot catch for its caller (docs/shm.md, "Trust").  Where the ring
 * makes system calls anyway (after a futex sleep, in close and stats) the
 * channel looks whether the last page of its mapping is still there: a futex
 * call on a word of a page that is gone faults in the kernel, which returns
 * EFAULT instead of raising the signal, and a cut always takes the last page.
 * If it is gone the mapping is replaced by private zeroed memory, so that
 * nothing this process does later can fault, and every call on the channel
 * fails from then on.
 */
static bool gone(const void *map, size_t off)
{
	uint32_t *w = (uint32_t *)((uint8_t *)(uintptr_t)map + (off & ~(size_t)3));
	return syscall(SYS_futex, w, FUTEX_WAKE, 0, NULL, NULL, 0) < 0 && errno == EFAULT;
}

static bool last_page_gone(const void *map, size_t size)
{
	return gone(map, size - sizeof(uint32_t));
}

static int cut_fail(const struct ringchan *rc)
{
	return ipcx__fail(-EBADMSG, "%s: the segment was cut short by another process "
				    "(truncated); this channel can no longer be used",
			  rc->url);
}

static const struct ipcx__chan_ops cut_ops;

/* ring->whole: 0 while the segment is whole, else make it harmless and fail. */
static int rc_whole(struct ring *r)
{
	struct ringchan *rc = ipcx__container_of(r, struct ringchan, ring);
	if (!rc->cut && !last_page_gone(rc->map, rc->maplen))
		return 0;
	if (!rc->cut) {
		mmap(rc->map, rc->maplen, PROT_READ | PROT_WRITE,
		     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rc->cut = true;
		rc->c.ops = &cut_ops;
	}
	return cut_fail(rc);
}

int ipcx__ringchan_fits(const void *map, size_t size, const char *url)
{
	const struct ring_hdr *h = map;
	if (size < RING_HDR)
		return ipcx__fail(-EBADMSG, "%s: the object is %zu bytes, less than a ring's header",
				  url, size);
	/* A System V segment keeps the size it was made with, whatever is left of it. */
	if (gone(map, 0) || last_page_gone(map, size))
		return ipcx__fail(-EBADMSG, "%s: the object is smaller than the %zu bytes mapped "
					    "(cut short by another process)",
				  url, size);
	uint64_t total = h->total_size;
	if (atomic_load(&h->ready) && h->magic == RING_MAGIC && total > size)
		return ipcx__fail(-EBADMSG, "%s: the object is %zu bytes, smaller than the %llu its "
					    "ring's header says (cut short by another process?)",
				  url, size, (unsigned long long)total);
	return 0;
}

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

static ssize_t rc_peekv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	return ipcx__ring_peekv(&RC(c)->ring, msgs, n, timeout_ms);
}

static ssize_t rc_releasev(ipcx_chan *c, size_t n)
{
	return ipcx__ring_releasev(&RC(c)->ring, n);
}

static ssize_t rc_read_ahead(ipcx_chan *c, uint64_t *cursor, void *buf, size_t cap,
			     int timeout_ms)
{
	return ipcx__ring_read_ahead(&RC(c)->ring, cursor, buf, cap, timeout_ms);
}

static int rc_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	uint64_t v[6];
	int r = rc_whole(&RC(c)->ring);
	if (r == 0)
		r = ipcx__ring_stats(&RC(c)->ring, v);
	if (r < 0)
		return r;
	ret->sent = v[0];
	ret->received = v[1];
	ret->dropped = v[2];
	ret->depth = v[3];
	ret->peers = v[4];
	ret->receivers = v[5];
	return 0;
}

static int rc_fileno(ipcx_chan *c)
{
	struct ring *r = &RC(c)->ring;
	/* A broadcast ring's descriptor tells of messages for a subscriber: be one. */
	int e = r->flags & RING_F_BCAST ? ipcx__bcast_subscribe(r, 0) : 0;
	return e ? e : ipcx__ring_fileno(r);
}

static ssize_t rc_subscribers(ipcx_chan *c, struct ipcx_subscriber *buf, size_t n)
{
	struct ring *r = &RC(c)->ring;
	if (!(r->flags & RING_F_BCAST))
		return ipcx__fail(-EOPNOTSUPP, "not a broadcast ring (fanout=1)");
	return ipcx__bcast_subscribers(r, buf, n);
}

/*
 * The listener that created the ring, for a channel that dialed it.  Its
 * peer slot names it (pid and start time); the owner flag marks the slot.
 */
static int rc_peer(ipcx_chan *c, struct ipcx_proc *ret)
{
	struct ring *r = &RC(c)->ring;
	if (r->flags & RING_F_BCAST)
		return ipcx__fail(-ENOTCONN, "a broadcast ring has no one peer: its peers come and go");
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
	if (rc->ring.h)
		rc_whole(&rc->ring); /* a cut found now: what follows touches private memory */
	/* A broadcast ring's name is removed by its last peer, whoever made it. */
	if (rc->ring.h && !rc->cut && (rc->ring.flags & RING_F_BCAST))
		rc->owner = ipcx__bcast_leave(&rc->ring);
	ipcx__ring_detach(&rc->ring);
	if (rc->cut)
		munmap(rc->map, rc->maplen); /* not the transport's kind of mapping any more */
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
	.peekv = rc_peekv,
	.releasev = rc_releasev,
	.read_ahead = rc_read_ahead,
	.stats = rc_stats,
	.subscribers = rc_subscribers,
	.fileno = rc_fileno,
	.peer = rc_peer,
	.close = rc_close,
};

/* The operations of a channel whose segment was cut short: each one fails. */
static ssize_t cut_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	(void)msg, (void)len, (void)timeout_ms;
	return cut_fail(RC(c));
}

static ssize_t cut_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	(void)buf, (void)cap, (void)timeout_ms;
	return cut_fail(RC(c));
}

static int cut_reserve(ipcx_chan *c, size_t len, int timeout_ms, void **slot)
{
	(void)len, (void)timeout_ms, (void)slot;
	return cut_fail(RC(c));
}

static int cut_commit(ipcx_chan *c, size_t len)
{
	(void)len;
	return cut_fail(RC(c));
}

static ssize_t cut_peek(ipcx_chan *c, int timeout_ms, const void **msg)
{
	(void)timeout_ms, (void)msg;
	return cut_fail(RC(c));
}

static ssize_t cut_peekv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	(void)msgs, (void)n, (void)timeout_ms;
	return cut_fail(RC(c));
}

static ssize_t cut_releasev(ipcx_chan *c, size_t n)
{
	(void)n;
	return cut_fail(RC(c));
}

static ssize_t cut_read_ahead(ipcx_chan *c, uint64_t *cursor, void *buf, size_t cap,
			      int timeout_ms)
{
	(void)cursor, (void)buf, (void)cap, (void)timeout_ms;
	return cut_fail(RC(c));
}

static int cut_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	(void)ret;
	return cut_fail(RC(c));
}

static int cut_any(ipcx_chan *c)
{
	return cut_fail(RC(c));
}

static const struct ipcx__chan_ops cut_ops = {
	.send = cut_send,
	.recv = cut_recv,
	.reserve = cut_reserve,
	.commit = cut_commit,
	.peek = cut_peek,
	.release = cut_any,
	.peekv = cut_peekv,
	.releasev = cut_releasev,
	.read_ahead = cut_read_ahead,
	.stats = cut_stats,
	.fileno = cut_any,
	.close = rc_close,
};

int ipcx__ringchan_init(struct ringchan *rc, const struct ipcx_tran *t, bool format,
			const struct ring_geom *g)
{
	int r = format ? ipcx__ring_format(rc->map, rc->maplen, g)
		       : ipcx__ringchan_fits(rc->map, rc->maplen, rc->url);
	if (r < 0)
		return r;
	r = ipcx__ring_attach(&rc->ring, rc->map, rc->maplen, false);
	if (r < 0)
		return r;
	rc->ring.spin_us = g->spin_us;
	rc->ring.whole = rc_whole;
	if (rc->owner)
		ipcx__ring_own(&rc->ring);
	if (rc->ring.flags & RING_F_BCAST) {
		if (rc->owner && rc->keep) /* nobody removes it: not its maker, not its last peer */
			atomic_store(&rc->ring.h->kept, 1);
		r = ipcx__bcast_open(&rc->ring, g);
		if (r < 0) {
			ipcx__ring_detach(&rc->ring);
			return r;
		}
	}
	ipcx__chan_init(&rc->c, &ipcx__ringchan_ops, t, -1, rc->ring.max_msg);
	return 0;
}
