/*
 * Peer slots (ring_peer.c): every attached channel holds one, named by its
 * pid and process start time, so that others can tell whether it lives.
 * Any protocol uses them: records name the slot of the process in the
 * middle of a step, and the slot's counters are its holder's.
 */
#ifndef IPCX_SHM_RING_PEER_H
#define IPCX_SHM_RING_PEER_H

#include "shm/ring_int.h"

/* The holder of slot k runs (a zombie, killed and not reaped, does not). */
bool ipcx__ring_peer_alive(const struct ring *r, unsigned k);

/*
 * Take a free slot, or a dead peer's once its records are fixed
 * (ipcx__ring_sweep_dead); sets r->me.  -EUSERS when none is left.
 */
int ipcx__ring_peer_join(struct ring *r);

/*
 * -EPIPE for a process that dialed a ring whose listener is gone (killed,
 * or closed); 0 otherwise, and always for the listener itself.
 */
int ipcx__ring_epipe_check(struct ring *r);

/*
 * Say in our slot, once, that this channel consumes (it receives, peeks or
 * reads ahead), so that `ipcx ls` can tell from outside whether anybody
 * drains the ring (stats.receivers).
 */
static inline void mark_receiver(struct ring *r)
{
	if (!r->receiving) {
		r->receiving = true;
		atomic_store_explicit(&me_peer(r)->receiver, 1, RELAXED);
	}
}

#endif
