/*
 * Waiting for a ring to change: a short spin, then a sleep on a shared
 * futex, with the barrier that lets committers skip the wake-up when
 * nobody sleeps (ring_wait.h).
 */
#include "shm/ring_wait.h"

#include "shm/ring_ops.h"
#include "shm/ring_peer.h"
#include "shm/ring_repair.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

/* How often a waiting channel looks for dead peers (repair, -EPIPE). */
#define CHECK_NS (10 * 1000000LL)

int ipcx__ring_fences; /* see ring_wait.h */
static bool mb_global; /* membarrier GLOBAL_EXPEDITED is there to call */
static pthread_once_t fences_once = PTHREAD_ONCE_INIT;

static void fences_init(void)
{
	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	mb_global = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED);
	bool registered = mb_global && (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
			  syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
	ipcx__ring_fences = registered ? 1 : -1;
}

void ipcx__ring_fences_init(void)
{
	pthread_once(&fences_once, fences_init);
}

bool ipcx__ring_sleeper_barrier(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!mb_global)
		return true; /* nobody registered: every store is seq_cst */
	return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val, int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, ns >= 0 ? &ts : NULL, NULL, 0);
}

/*
 * Spin first (spin_us), then sleep on the futex, waking every 100 ms while
 * other processes are attached to look for dead ones (a killed process
 * wakes nobody).
 */
SLOW int ipcx__ring_wait_step(struct ring *r, struct wait *w, int timeout_ms, bool rx, bool busy,
			      uint64_t cells)
{
	if (!w->init) {
		int64_t now = ipcx__now_ns();
		w->init = true;
		w->deadline = timeout_ms < 0 ? -1 : now + (int64_t)timeout_ms * 1000000;
		w->spin_end = now + (int64_t)r->spin_us * 1000;
		w->yield_from = now + (int64_t)r->spin_us * 1000 / 4;
		/* Dead peers were looked for less than CHECK_NS ago by an
		 * earlier wait: not again before that (a receiver that waits
		 * for every message would pay kill() and a read of /proc each
		 * time), but the sleep ends then to look. */
		w->next_check = timeout_ms == 0 ? now : w->spin_end;
		if (timeout_ms != 0 && r->checked_at && r->checked_at + CHECK_NS > w->next_check)
			w->next_check = r->checked_at + CHECK_NS;
	}
	if (timeout_ms == 0) {
		if (w->n++ == 0) {
			ipcx__ring_repair(r);
			int e = ipcx__ring_check_indices(r);
			return e;
		}
		int e = ipcx__ring_epipe_check(r);
		return e ? e : -EAGAIN;
	}
	if ((++w->n & 31) != 0 && w->n < (1u << 30)) {
		cpu_relax();
		return 0;
	}
	int64_t now = ipcx__now_ns();
	if (now < w->spin_end) {
		/*
		 * A broadcast ring's subscribers usually outnumber the cores: one
		 * that spins gives its core away at each look at the clock (about
		 * every microsecond), so that one with a message to read runs.
		 * In the first quarter of the spin only when another subscriber
		 * has messages to read: a sched_yield costs about a microsecond on
		 * a virtual machine, and a message that comes while a lone
		 * subscriber is in it waits for it (its publish-to-receive p90 was
		 * 1.5 us against 0.37 us without).
		 */
		if ((r->flags & RING_F_BCAST) &&
		    (now >= w->yield_from || (rx && ipcx__ring_others_behind(r))))
			sched_yield();
		else
			cpu_relax();
		return 0;
	}
	if (w->deadline >= 0 && now >= w->deadline)
		return -ETIMEDOUT;
	if (now >= w->next_check) {
		w->next_check = now + CHECK_NS;
		r->checked_at = now;
		ipcx__ring_repair(r);
		int e = ipcx__ring_check_indices(r);
		if (!e && !busy)
			e = ipcx__ring_epipe_check(r);
		if (e)
			return e;
	}
	if (busy) {
		sched_yield();
		return 0;
	}
	_Atomic uint32_t *fw = rx ? &r->h->rx_seq : &r->h->tx_seq;
	_Atomic uint32_t *waiters = rx ? &r->h->rx_waiters : &r->h->tx_waiters;
	int64_t ns = w->deadline < 0 ? -1 : w->deadline - now;
	if (atomic_load(&r->h->attached_ever) > 1 && (ns < 0 || ns > 100000000))
		ns = 100000000;
	if (w->next_check - now < CHECK_NS && (ns < 0 || ns > w->next_check - now))
		ns = w->next_check - now; /* a look put off above is due then */
	uint32_t v = atomic_load(fw);
	/*
	 * A committer wakes the receivers once per sleep, not at every message
	 * until they have run (notify_rx, ring_bell.h): ask for it, after
	 * reading v, so that the wake it takes changes v.
	 */
	if (rx)
		atomic_store(&r->h->rx_armed, 1);
	/* Announce, then look again: a committer that missed us sees the flag. */
	atomic_fetch_add(waiters, 1);
	if (!ipcx__ring_sleeper_barrier() && (ns < 0 || ns > 1000000))
		ns = 1000000; /* no barrier on the others: never sleep long on a miss */
	int e = 0;
	if (!(rx ? ipcx__ring_has_msg(r) : ipcx__ring_has_room(r, cells))) {
		futex_wait(fw, v, ns);
		e = r->whole ? r->whole(r) : 0; /* a sleeper is the one a cut would find */
	}
	atomic_fetch_sub(waiters, 1);
	return e;
}
