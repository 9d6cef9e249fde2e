/*
 * The doorbell (ring_bell.c): a pollable descriptor across unrelated
 * processes, per channel, made on first use (ipcx__ring_fileno, ring.h).
 * A committer pokes the doorbells of channels that armed theirs; a channel
 * re-arms after a receive leaves the ring empty.  Channels that never ask
 * for one cost the senders nothing: pollers stays 0.
 */
#ifndef IPCX_SHM_RING_BELL_H
#define IPCX_SHM_RING_BELL_H

#include "shm/ring_ops.h"
#include "shm/ring_wait.h"

/* Poke every poller that announced it is waiting (armed), once each. */
COLD void ipcx__ring_poke_pollers(struct ring *r);

/* Drain our doorbell and arm it again (ringing it if a message came meanwhile). */
COLD void ipcx__ring_rearm(struct ring *r);

/*
 * A record was committed: wake the receivers that sleep, once, and poke
 * pollers, if there are any.  A woken receiver takes a while to run (a pool
 * or a broadcast ring has more processes than cores), and rx_waiters stays
 * up until it does: waking at every commit meanwhile cost the sender a
 * system call per message.  A sleeper arms rx_armed after reading rx_seq
 * (ring_wait.c); the one committer that disarms it bumps rx_seq, so every
 * sleeper armed before that is woken or does not sleep.
 */
HOT void notify_rx(struct ring *r)
{
	/* Loads after the store of the commit: see publish(). */
	if (atomic_load_explicit(&r->h->rx_waiters, ACQ) && atomic_load(&r->h->rx_armed) &&
	    atomic_exchange(&r->h->rx_armed, 0)) {
		atomic_fetch_add(&r->h->rx_seq, 1);
		futex_wake(&r->h->rx_seq);
	}
	if (atomic_load_explicit(&r->h->pollers, RELAXED))
		ipcx__ring_poke_pollers(r);
}

/* After a take: a doorbell left readable on an empty ring is re-armed. */
HOT void after_take(struct ring *r)
{
	if (r->bell >= 0 && !ipcx__ring_has_msg(r))
		ipcx__ring_rearm(r);
}

#endif
