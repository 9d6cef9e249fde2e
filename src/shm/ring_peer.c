/* Peers: who is attached to a ring, and is it still alive (ring_peer.h). */
#include "shm/ring_peer.h"

#include "core/proc.h"
#include "shm/ring_repair.h"

#include <unistd.h>

/*
 * The start time tells a live process from a later one that got the same
 * pid; a zombie (killed, not yet reaped) counts as dead.
 */
bool ipcx__ring_peer_alive(const struct ring *r, unsigned k)
{
	struct ring_peer *pe = &r->h->peers[k];
	pid_t pid = (pid_t)atomic_load(&pe->pid);
	if (pid <= 0)
		return false;
	if (pid == getpid())
		return true;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	char state = '?';
	uint64_t want = atomic_load(&pe->start), have = 0;
	(void)ipcx__proc_stat(pid, &state, &have); /* have stays 0 if it cannot be read */
	if (state == 'Z' || state == 'X')
		return false;
	/* want == 0: the slot is being taken right now; trust the pid. */
	return have == 0 || want == 0 || have == want;
}

static bool others_alive(const struct ring *r)
{
	for (unsigned k = 0; k < RING_PEERS; k++)
		if ((int)k != r->me && ipcx__ring_peer_alive(r, k))
			return true;
	return false;
}

bool ipcx__ring_abandoned(struct ring *r)
{
	return !atomic_load(&r->h->kept) && !others_alive(r);
}

int ipcx__ring_peer_join(struct ring *r)
{
	pid_t me = getpid();
	uint64_t start = 0;
	(void)ipcx__proc_start(me, &start);
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned k = 0; k < RING_PEERS; k++) {
			struct ring_peer *pe = &r->h->peers[k];
			uint32_t old = atomic_load(&pe->pid);
			if (pass == 0 ? old != 0
				      : (old == 0 || ipcx__ring_peer_alive(r, k) ||
					 !ipcx__ring_sweep_dead(r, k)))
				continue;
			/* Clear the start first: a checker then trusts the pid alone. */
			uint64_t ost = atomic_load(&pe->start);
			if (!atomic_compare_exchange_strong(&pe->start, &ost, 0))
				continue;
			if (!atomic_compare_exchange_strong(&pe->pid, &old, (uint32_t)me))
				continue;
			atomic_store(&pe->armed, 0);
			atomic_store(&pe->owner, 0);
			atomic_store(&pe->receiver, 0);
			if (atomic_exchange(&pe->poller, 0))
				atomic_fetch_sub(&r->h->pollers, 1);
			/* The counters go on (they are the slot's); the snapshots start equal. */
			snap(&pe->tx, &pe->tx_snap);
			snap(&pe->rx, &pe->rx_snap);
			snap(&pe->dr, &pe->dr_snap);
			atomic_store(&pe->start, start);
			atomic_fetch_add(&r->h->attached_ever, 1);
			r->me = (int)k;
			return 0;
		}
	}
	return ipcx__fail(-EUSERS, "ring: all %u peer slots are taken", RING_PEERS);
}

void ipcx__ring_own(struct ring *r)
{
	if (r->me >= 0)
		atomic_store(&r->h->peers[r->me].owner, 1);
}

/*
 * The listener itself never gets -EPIPE: like a server socket it waits for
 * the next peer.  Nor does anyone when the ring is meant to outlive its
 * listener (keep=1, the mmap: log).
 */
int ipcx__ring_epipe_check(struct ring *r)
{
	if (r->persistent || r->me < 0 || atomic_load(&r->h->peers[r->me].owner) ||
	    atomic_load(&r->h->kept))
		return 0;
	for (unsigned k = 0; k < RING_PEERS; k++)
		if (atomic_load(&r->h->peers[k].owner) && ipcx__ring_peer_alive(r, k))
			return 0;
	return ipcx__fail(-EPIPE, "ring: its listener is gone");
}
