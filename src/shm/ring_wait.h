/*
 * Waiting (ring_wait.c): the wake-up handshake between a committer and a
 * sleeper, the futex, and the wait loop of a blocked call.  Nothing here
 * knows a protocol: the loop asks ring.c whether a message or room is
 * there, and ring_repair.c to look after dead peers.
 */
#ifndef IPCX_SHM_RING_WAIT_H
#define IPCX_SHM_RING_WAIT_H

#include "shm/ring_int.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Memory ordering of the wake-up handshake.  A committer stores its record
 * and then looks at rx_waiters; a sleeper raises rx_waiters and then looks
 * for a record.  Each side needs a full barrier between its store and its
 * load, or both can miss the other.  A seq_cst store on the fast path would
 * stall every commit on the line's ownership transfer (it drains the store
 * buffer), so the barrier is made asymmetric: processes that registered
 * with membarrier(2) publish with plain release stores, and a sleeper, once,
 * before it sleeps, calls MEMBARRIER_CMD_GLOBAL_EXPEDITED, which runs a full
 * barrier on every CPU running a registered process.  A process that could
 * not register publishes with seq_cst stores.
 *
 * ipcx__ring_fences: 1, we registered, plain stores; -1, seq_cst stores.
 * Hidden, so that the fast paths read it as directly as a static.
 */
extern int ipcx__ring_fences __attribute__((visibility("hidden")));

/* Register with membarrier, once per process (every attach calls it). */
void ipcx__ring_fences_init(void);

/* Store v with the ordering the handshake needs from this process. */
HOT void publish(_Atomic uint64_t *w, uint64_t v)
{
	if (ipcx__ring_fences > 0) {
		atomic_store_explicit(w, v, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the order */
	} else {
		atomic_store(w, v);
	}
}

/* The sleeper's half: false if it could not be done (sleep briefly then). */
bool ipcx__ring_sleeper_barrier(void);

/* Shared (not FUTEX_PRIVATE): the word is in memory other processes map. */
static inline void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Room was made: wake the senders that sleep, if one announced itself. */
HOT void notify_tx(struct ring *r)
{
	if (atomic_load_explicit(&r->h->tx_waiters, RELAXED)) {
		atomic_fetch_add(&r->h->tx_seq, 1);
		futex_wake(&r->h->tx_seq);
	}
}

/* The state of one blocked call, zeroed before its first wait. */
struct wait {
	bool init;
	unsigned n;
	int64_t deadline, spin_end, yield_from, next_check;
};

/*
 * One step of waiting for the ring to change; 0 means try again.  rx: for
 * a message (else for room for cells).  busy: another process is in the
 * middle of a step; it will not wake us, so yield instead of sleeping.
 */
SLOW int ipcx__ring_wait_step(struct ring *r, struct wait *w, int timeout_ms, bool rx, bool busy,
			      uint64_t cells);

/*
 * The first spins are made here, inline, and read no clock: a clock read
 * costs more than a message (about 25 ns here), and most waits of a busy
 * ring end within them.  The deadline then counts from the first read, a
 * few spins late.
 */
HOT int ring_wait(struct ring *r, struct wait *w, int timeout_ms, bool rx, bool busy,
		  uint64_t cells)
{
	if (timeout_ms != 0 && !w->init && w->n < 32) {
		w->n++;
		cpu_relax();
		return 0;
	}
	return ipcx__ring_wait_step(r, w, timeout_ms, rx, busy, cells);
}

#endif
