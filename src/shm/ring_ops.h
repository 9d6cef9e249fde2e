/*
 * The operations over either protocol (ring.c).  What they offer the other
 * ring files: the slow paths the fast paths hand over to, the questions a
 * wait asks of the protocol (a message? room? indices in order?), the
 * durability of the mmap: log, and the check every taking call makes.  A new protocol answers these questions in
 * ring.c, beside MPMC and SPSC.
 */
#ifndef IPCX_SHM_RING_OPS_H
#define IPCX_SHM_RING_OPS_H

#include "shm/ring_int.h"

/* check: make the -EPIPE check now (the fast path saw its turn come). */
SLOW ssize_t ipcx__ring_send_slow(struct ring *r, const void *msg, size_t len, int timeout_ms,
				  bool check);
SLOW ssize_t ipcx__ring_recv_slow(struct ring *r, void *buf, size_t cap, int timeout_ms);
/* Wake sleepers and poke pollers, then return n (a tail call of the fast paths). */
SLOW ssize_t ipcx__ring_notified(struct ring *r, bool rx, ssize_t n);

/* A record waits at the tail (committed, or lost: to be skipped). */
bool ipcx__ring_has_msg(struct ring *r);
/* Room for a record of cells cells, wherever the lap ends. */
bool ipcx__ring_has_room(struct ring *r, uint64_t cells);
/* A broadcast ring: another subscriber has messages to read (false for other rings). */
bool ipcx__ring_others_behind(struct ring *r);
/*
 * The shared indices make sense: 0 or -EBADMSG.  Called when a wait
 * begins, not on the fast path.
 */
int ipcx__ring_check_indices(struct ring *r);

COLD void ipcx__ring_sync_now(struct ring *r);

/*
 * A call that claims or takes a record (ring.c, ring_ahead.c): the channel
 * is attached and holds none now.
 */
static inline int free_to_take(const struct ring *r)
{
	if (r->me < 0)
		return -EBADF;
	if (r->reserved || r->peeked)
		return ipcx__fail(-EBUSY, "a reserved or peeked message is not finished");
	return 0;
}

/*
 * The mmap: log's durability= after a commit or a release: batch syncs
 * every 64, always every one; force (a close) syncs now.
 */
HOT void durable(struct ring *r, bool force)
{
	if (r->durability == 0)
		return;
	if (r->durability == 1 && !force && ++r->batch < 64)
		return;
	ipcx__ring_sync_now(r);
}

#endif
