/*
 * Shared slots: a named table of N records in shared memory, each taken
 * exclusively by one process at a time (the seeds' connection pool), safe
 * when a holder is killed.
 *
 * Each slot is a robust process-shared mutex (ipcx_mutex): taking the slot is
 * taking its mutex, so a holder that dies hands the slot back through the
 * kernel's robust futex list, and the next taker gets -EOWNERDEAD: the slot is
 * then marked dirty, and every taker sees IPCX_SLOT_RECOVERED until a holder
 * releases it normally.  An acquire makes no system call when a slot is free.
 *
 * Waiting for *any* slot cannot be a wait on one mutex, so a semaphore in the
 * table serves as a doorbell: a waiter counts itself in `waiters`, looks once
 * more, and sleeps on the semaphore; a releaser that sees waiters posts it
 * (never more posts than waiters).  A holder that is killed posts nothing, so
 * a waiter also wakes every 100 ms to look for slots whose holder died (the
 * ring's sleepers do the same).  See docs/pool.md for why not a System V
 * semaphore with SEM_UNDO.
 *
 * Everything read from the table is checked against the mapping: the header
 * once at open, and indices on every call.
 */
#include "timeout_int.h"

#include <ipcx.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS_MAGIC   0x53544f4cu /* "LOTS" */
#define SLOTS_VERSION 1u
#define SLOTS_MAX     65536u
#define RECORD_MAX    (1u << 20)
#define SLOT_HDR      128u  /* mutex (64), holder, dirty, then the record */
#define LOOK_MS       100   /* a waiter looks for dead holders this often */
#define OPEN_WAIT_MS  500   /* how long an opener waits for a creator to finish */

struct tab_hdr {
	_Atomic uint32_t magic; /* stored last by the creator */
	uint32_t version;
	uint32_t nslots;
	uint32_t slot_size;
	uint64_t record_size;
	uint64_t total;
	char pad0[32];
	char sem[IPCX_SEM_SIZE] __attribute__((aligned(64))); /* the waiters' doorbell */
	_Atomic uint32_t waiters __attribute__((aligned(64)));
	_Atomic uint64_t acquired __attribute__((aligned(64)));
	_Atomic uint64_t recovered;
	_Atomic uint64_t timeouts;
};
#define TAB_HDR ((sizeof(struct tab_hdr) + 63u) & ~(size_t)63u)

struct slot_hdr {
	char mutex[IPCX_MUTEX_SIZE] __attribute__((aligned(64)));
	_Atomic int32_t holder; /* pid, 0 when free (set after the lock, cleared before) */
	_Atomic uint32_t dirty; /* the last holder died holding it */
};
_Static_assert(sizeof(struct slot_hdr) <= SLOT_HDR, "slot header too large");

struct ipcx_slots {
	ipcx_region *region;
	struct tab_hdr *h;
	unsigned char *base; /* first slot */
	unsigned n;
	size_t slot_size, record_size;
	bool rdonly;
	unsigned next; /* where the next scan starts: spreads processes over slots */
	ipcx_sem *bell;
	ipcx_mutex **m;
};

/*
 * This process's pid without a system call on every acquire and release
 * (getpid() is one, and costs as much as the rest of both): kept, and
 * forgotten in a child after fork.
 */
static pid_t my_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
	my_pid = 0;
}

static void watch_fork(void)
{
	pthread_atfork(NULL, NULL, forget_pid);
}

static pid_t self(void)
{
	pthread_once(&pid_once, watch_fork);
	if (!my_pid)
		my_pid = getpid();
	return my_pid;
}

static size_t slot_size_for(size_t record_size)
{
	return (SLOT_HDR + record_size + 63u) & ~(size_t)63u;
}

static struct slot_hdr *slot_at(const ipcx_slots *t, unsigned i)
{
	return (struct slot_hdr *)(t->base + (size_t)i * t->slot_size);
}

static void slots_free(ipcx_slots *t)
{
	if (!t)
		return;
	for (unsigned i = 0; t->m && i < t->n; i++)
		ipcx_mutex_close(t->m[i]);
	free(t->m);
	ipcx_sem_close(t->bell);
	ipcx_region_close(t->region);
	free(t);
}

/* Lay out a new table: every mutex and the doorbell, then the magic. */
static int format(ipcx_slots *t)
{
	struct tab_hdr *h = t->h;
	h->version = SLOTS_VERSION;
	h->nslots = t->n;
	h->slot_size = (uint32_t)t->slot_size;
	h->record_size = t->record_size;
	h->total = TAB_HDR + (uint64_t)t->n * t->slot_size;
	int r = ipcx_sem_init_at(h->sem, sizeof(h->sem), 0, &t->bell);
	for (unsigned i = 0; r == 0 && i < t->n; i++)
		r = ipcx_mutex_init_at(slot_at(t, i)->mutex, IPCX_MUTEX_SIZE, 0, &t->m[i]);
	if (r == 0)
		atomic_store_explicit(&h->magic, SLOTS_MAGIC, memory_order_release);
	return r;
}

/* A creator may still be formatting: wait a little for its magic. */
static bool wait_magic(const struct tab_hdr *h)
{
	for (int ms = 1, waited = 0; waited < OPEN_WAIT_MS; waited += ms, ms *= 2) {
		if (atomic_load_explicit(&h->magic, memory_order_acquire) == SLOTS_MAGIC)
			return true;
		struct timespec ts = { 0, ms * 1000000L };
		nanosleep(&ts, NULL);
	}
	return atomic_load_explicit(&h->magic, memory_order_acquire) == SLOTS_MAGIC;
}

/* Check an existing table's header against the mapping, and attach to it. */
static int attach(ipcx_slots *t, const char *url, unsigned n, size_t record_size)
{
	const struct tab_hdr *h = t->h;
	size_t have = ipcx_region_size(t->region);
	/* An inspector does not wait for a creator that may never come. */
	bool magic = atomic_load_explicit(&h->magic, memory_order_acquire) == SLOTS_MAGIC;
	if (have < TAB_HDR || (!magic && (t->rdonly || !wait_magic(h))))
		return ipcx_errdetail_set(-EBADMSG, "%s: not a slot table", url);
	uint32_t ns = h->nslots, ss = h->slot_size;
	uint64_t rs = h->record_size, total = h->total;
	if (h->version != SLOTS_VERSION || ns == 0 || ns > SLOTS_MAX || rs > RECORD_MAX ||
	    ss != slot_size_for((size_t)rs) || total != TAB_HDR + (uint64_t)ns * ss || total > have)
		return ipcx_errdetail_set(-EBADMSG, "%s: corrupt slot table header", url);
	if ((n && n != ns) || (record_size && record_size != rs))
		return ipcx_errdetail_set(-EINVAL, "%s: the table has %u slots of %llu bytes", url,
					  ns, (unsigned long long)rs);
	t->n = ns;
	t->slot_size = ss;
	t->record_size = (size_t)rs;
	if (t->rdonly)
		return 0;
	if (!(t->m = calloc(t->n, sizeof(*t->m))))
		return -ENOMEM;
	int r = ipcx_sem_attach_at(t->h->sem, sizeof(t->h->sem), &t->bell);
	for (unsigned i = 0; r == 0 && i < t->n; i++)
		r = ipcx_mutex_attach_at(slot_at(t, i)->mutex, IPCX_MUTEX_SIZE, &t->m[i]);
	return r < 0 ? ipcx_errdetail_set(-EBADMSG, "%s: corrupt slot table", url) : 0;
}

IPCX_EXPORT int ipcx_slots_open(const char *url, unsigned n, size_t record_size, unsigned flags,
				ipcx_slots **ret)
{
	ipcx_errdetail_set(0, "%s", ""); /* no detail from an earlier call */
	if (!url || !ret || (flags & ~(IPCX_SLOTS_CREATE | IPCX_SLOTS_RDONLY)))
		return ipcx_errdetail_set(-EINVAL, "slots: bad arguments or flags");
	bool create = flags & IPCX_SLOTS_CREATE;
	if (create && (n == 0 || n > SLOTS_MAX || record_size > RECORD_MAX ||
		       (flags & IPCX_SLOTS_RDONLY)))
		return ipcx_errdetail_set(-EINVAL, "slots: create wants 1 .. %u slots of at most "
					  "%u bytes, writable", SLOTS_MAX, RECORD_MAX);
	ipcx_slots *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->rdonly = flags & IPCX_SLOTS_RDONLY;
	size_t size = 0;
	if (create) {
		t->n = n;
		t->record_size = record_size;
		t->slot_size = slot_size_for(record_size);
		size = TAB_HDR + (size_t)n * t->slot_size;
	}
	unsigned rf = (create ? IPCX_REGION_CREATE : 0) | (t->rdonly ? IPCX_REGION_RDONLY : 0);
	int r = ipcx_region_open(url, rf, size, &t->region);
	if (r < 0) {
		free(t);
		return r;
	}
	t->h = ipcx_region_addr(t->region);
	t->base = (unsigned char *)t->h + TAB_HDR;
	if (create)
		r = (t->m = calloc(n, sizeof(*t->m))) ? format(t) : -ENOMEM;
	else
		r = attach(t, url, n, record_size);
	if (r < 0) {
		slots_free(t);
		return r;
	}
	t->next = (unsigned)self() % t->n;
	*ret = t;
	return 0;
}

/* Try to take slot i: 1 taken (flags set), 0 busy. */
static int take(ipcx_slots *t, unsigned i, unsigned *flags)
{
	struct slot_hdr *s = slot_at(t, i);
	int r = ipcx_mutex_lock(t->m[i], 0);
	if (r == -EOWNERDEAD) {
		/* Its holder died holding it: we hold it now.  Mark the record
		 * before making the mutex usable again, so that if we die too
		 * the next holder still knows. */
		atomic_store(&s->dirty, 1);
		ipcx_mutex_consistent(t->m[i]);
		atomic_fetch_add_explicit(&t->h->recovered, 1, memory_order_relaxed);
		r = 0;
	}
	if (r < 0)
		return 0; /* busy, held by this thread (-EDEADLK), or unusable */
	atomic_store_explicit(&s->holder, (int32_t)self(), memory_order_relaxed);
	if (flags)
		*flags = atomic_load_explicit(&s->dirty, memory_order_relaxed) ? IPCX_SLOT_RECOVERED : 0;
	atomic_fetch_add_explicit(&t->h->acquired, 1, memory_order_relaxed);
	return 1;
}

/*
 * One look over the table: first the slots that look free (no holder), then,
 * if none was, every slot, to find one whose holder died (a try-lock of a
 * live holder's mutex costs no system call).  Returns the index, or -1.
 */
static int scan(ipcx_slots *t, unsigned *flags)
{
	unsigned start = t->next;
	for (int pass = 0; pass < 2; pass++)
		for (unsigned k = 0; k < t->n; k++) {
			unsigned i = (start + k) % t->n;
			if (pass == 0 && atomic_load_explicit(&slot_at(t, i)->holder, memory_order_relaxed))
				continue;
			if (take(t, i, flags)) {
				t->next = (i + 1) % t->n;
				return (int)i;
			}
		}
	return -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int gave_up(ipcx_slots *t, int err)
{
	atomic_fetch_add_explicit(&t->h->timeouts, 1, memory_order_relaxed);
	return err;
}

IPCX_EXPORT int ipcx_slot_acquire(ipcx_slots *t, int timeout_ms, unsigned *flags)
{
	if (!t || t->rdonly)
		return ipcx_errdetail_set(-EINVAL, "slots: no table, or opened read-only");
	int e = pattern_check_timeout(timeout_ms);
	if (e < 0)
		return e;
	int i = scan(t, flags);
	if (i >= 0)
		return i;
	if (timeout_ms == 0)
		return gave_up(t, -EAGAIN);
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
	for (;;) {
		/* Count ourselves before the last look: a releaser that unlocks
		 * after it then sees us and rings (both sides use full barriers). */
		atomic_fetch_add(&t->h->waiters, 1);
		i = scan(t, flags);
		int64_t left = deadline - now_ms();
		int r = 0;
		if (i < 0 && left > 0)
			r = ipcx_sem_wait(t->bell, left < LOOK_MS ? (int)left : LOOK_MS);
		atomic_fetch_sub(&t->h->waiters, 1);
		if (i >= 0)
			return i;
		if (r < 0 && r != -ETIMEDOUT)
			return r;
		if (now_ms() >= deadline) {
			if ((i = scan(t, flags)) >= 0)
				return i;
			return gave_up(t, -ETIMEDOUT);
		}
	}
}

IPCX_EXPORT void *ipcx_slot_record(ipcx_slots *t, unsigned i)
{
	if (!t || i >= t->n)
		return NULL;
	return (unsigned char *)slot_at(t, i) + SLOT_HDR;
}

IPCX_EXPORT int ipcx_slot_release(ipcx_slots *t, unsigned i)
{
	if (!t || t->rdonly || i >= t->n)
		return ipcx_errdetail_set(-EINVAL, "slots: no such slot %u", i);
	struct slot_hdr *s = slot_at(t, i);
	int32_t was = atomic_load_explicit(&s->holder, memory_order_relaxed);
	if (was != (int32_t)self())
		return ipcx_errdetail_set(-EPERM, "slots: slot %u is not held by this process", i);
	/* Cleared while we still hold it (after the unlock it is the next
	 * holder's); put back if the mutex says another thread holds it. */
	uint32_t dirty = atomic_load_explicit(&s->dirty, memory_order_relaxed);
	atomic_store_explicit(&s->holder, 0, memory_order_relaxed);
	atomic_store_explicit(&s->dirty, 0, memory_order_relaxed);
	int r = ipcx_mutex_unlock(t->m[i]);
	if (r < 0) {
		atomic_store_explicit(&s->dirty, dirty, memory_order_relaxed);
		atomic_store_explicit(&s->holder, was, memory_order_relaxed);
		return ipcx_errdetail_set(r, "slots: slot %u is not held by this thread", i);
	}
	atomic_thread_fence(memory_order_seq_cst); /* the unlock, then the look at waiters */
	uint32_t w = atomic_load_explicit(&t->h->waiters, memory_order_relaxed);
	unsigned v;
	if (w && ipcx_sem_value(t->bell, &v) == 0 && v < w)
		ipcx_sem_post(t->bell);
	return 0;
}

IPCX_EXPORT int ipcx_slots_stats(ipcx_slots *t, struct ipcx_slots_stats *ret)
{
	if (!t || !ret)
		return -EINVAL;
	struct ipcx_slots_stats s = { .slots = t->n, .record_size = t->record_size };
	for (unsigned i = 0; i < t->n; i++)
		s.held += atomic_load_explicit(&slot_at(t, i)->holder, memory_order_relaxed) != 0;
	s.waiting = atomic_load_explicit(&t->h->waiters, memory_order_relaxed);
	s.acquired = atomic_load_explicit(&t->h->acquired, memory_order_relaxed);
	s.recovered = atomic_load_explicit(&t->h->recovered, memory_order_relaxed);
	s.timeouts = atomic_load_explicit(&t->h->timeouts, memory_order_relaxed);
	*ret = s;
	return 0;
}

IPCX_EXPORT pid_t ipcx_slot_holder(ipcx_slots *t, unsigned i, bool *dead)
{
	if (!t || i >= t->n)
		return -EINVAL;
	pid_t pid = atomic_load_explicit(&slot_at(t, i)->holder, memory_order_relaxed);
	if (dead)
		*dead = pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
	return pid > 0 ? pid : 0;
}

IPCX_EXPORT int ipcx_slots_close(ipcx_slots *t)
{
	slots_free(t);
	return 0;
}
