/*
 * Crash repair (ring_repair.c): finishing or undoing the step a dead peer
 * was in, so that nobody waits behind it for ever, and the counters still
 * account for every message ("Counting", ring_int.h).  Recovery of a
 * persistent ring (ipcx__ring_recover, ring.h) is there too.
 */
#ifndef IPCX_SHM_RING_REPAIR_H
#define IPCX_SHM_RING_REPAIR_H

#include "shm/ring_int.h"

/*
 * Fix a dead peer's step at the head, the tail and rel: what a blocked
 * call waits behind.  Nothing to do in an SPSC ring (the next producer or
 * consumer adopts what a dead one left).
 */
void ipcx__ring_repair(struct ring *r);

/*
 * Before a dead peer's slot is reused, fix every record it still owns, or
 * they would look owned by the new, live process for ever (and its counters
 * would no longer be the dead one's).  False if that could not be done.
 */
bool ipcx__ring_sweep_dead(struct ring *r, unsigned k);

#endif
