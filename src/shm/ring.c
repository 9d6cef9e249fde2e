/*
 * The shared-memory ring: variable-size records in cells of 64 bytes.
 *
 * Positions count cells and only grow (56 bits: years at any real rate).
 * Three shared indices: head (next cell a producer claims), tail (next
 * record a consumer takes) and rel (every cell before it is free again);
 * rel <= tail <= head <= rel + ncells.  Per cell there is a seq word and a
 * meta word; only the cell where a record starts uses them:
 *
 *   seq  = pos << 8 | state   state: COMMITTED, LOST (committed, its writer
 *                             died), RELEASED, CLAIMED|peer, READING|peer
 *   meta = cells << 32 | len  len may carry PAD (skip these cells)
 *
 * Many producers, many consumers (the default):
 *   claim:   CAS head pos<<8 -> pos<<8|peer+1 (we own the head for a moment),
 *            write meta, seq = CLAIMED|peer, store head = pos+cells;
 *            then copy the message and set seq = COMMITTED.
 *   take:    CAS seq COMMITTED -> READING|peer (each record to exactly one
 *            consumer), store tail = pos+cells, copy, seq = RELEASED, then
 *            move rel over every RELEASED record at its front.
 * Every state a process can die in names the dead peer, whose slot in the
 * peer table names its pid and start time; whoever is blocked behind it
 * finishes or undoes its step (repair()).  One producer and one consumer
 * (spsc=1): no CAS; the producer publishes seq = COMMITTED and then moves
 * the head, the consumer watches only the next cell's seq and moves
 * tail/rel after copying, so a dead peer leaves nothing half done.
 *
 * Waiting: a short spin, then a futex on rx_seq / tx_seq (shared futexes:
 * the segment is mapped by several processes).  A waker touches the futex
 * only when a sleeper announced itself in rx_waiters / tx_waiters.
 */
#include "ring.h"

#include "crc.h"
#include "record.h"
#include "tran.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define T_COMMITTED 0x01u
#define T_LOST      0x02u
#define T_RELEASED  0x03u
#define T_CLAIMED   0x40u
#define T_READING   0x80u
#define T_SKIPPING  0xc0u /* a consumer moves the tail over a pad or a LOST record */
#define T_OWNED     (T_CLAIMED | T_READING)
#define T_PEER      0x3fu

#define M_PAD  0x80000000u
#define M_LEN  0x3fffffffu

#define SEQ(pos, tag) ((uint64_t)(pos) << 8 | (tag))
#define SEQPOS(s)     ((s) >> 8)
#define SEQTAG(s)     ((unsigned)((s)&0xffu))

#define RELAXED memory_order_relaxed
#define ACQ     memory_order_acquire
#define REL     memory_order_release

enum kind { K_MSG, K_PAD };

#ifdef IPCX_CRASHPOINTS
int ipcx__crash_point = -1;
unsigned ipcx__crash_after;
#define CRASH(p)                                                                        \
	do {                                                                            \
		if (ipcx__crash_point == (p) && ipcx__crash_after-- == 0)               \
			raise(SIGKILL);                                                 \
	} while (0)
#else
#define CRASH(p) ((void)0)
#endif

/*
 * The SPSC fast path is inlined into send and receive: every call, push
 * and spill is a store, and a producer's stores wait in order behind its
 * stores to lines the consumer holds; fewer of them, more messages in
 * flight (docs/shm.md, "Performance").
 */
#define HOT  static inline __attribute__((always_inline))
#define COLD static __attribute__((noinline, cold))
/* Out of the fast path but not cold: waits spin here (cold code is slower). */
#define SLOW static __attribute__((noinline))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

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
 */
static int fences; /* 1: we registered, plain stores; -1: seq_cst stores */
static bool mb_global; /* membarrier GLOBAL_EXPEDITED is there to call */
static pthread_once_t fences_once = PTHREAD_ONCE_INIT;

static void fences_init(void)
{
	long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	mb_global = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED);
	fences = mb_global && (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
			 syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0
		 ? 1
		 : -1;
}

/* Store v with the ordering the handshake needs from this process. */
HOT void publish(_Atomic uint64_t *w, uint64_t v)
{
	if (fences > 0) {
		atomic_store_explicit(w, v, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the order */
	} else {
		atomic_store(w, v);
	}
}

/* The sleeper's half: false if it could not be done (sleep briefly then). */
static bool sleeper_barrier(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!mb_global)
		return true; /* nobody registered: every store is seq_cst */
	return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
}

static inline uint8_t *cell_ptr(const struct ring *r, uint64_t pos)
{
	return r->data + (pos & r->mask) * RING_CELL;
}

/* The seq and meta words of the record that starts at cell pos. */
static inline _Atomic uint64_t *seqw(const struct ring *r, uint64_t pos)
{
	return &r->cell[pos & r->mask].seq;
}

static inline _Atomic uint64_t *metaw(const struct ring *r, uint64_t pos)
{
	return &r->cell[pos & r->mask].meta;
}

/* ---- futex ---------------------------------------------------------------- */

/* Shared (not FUTEX_PRIVATE): the word is in memory other processes map. */
static void futex_wait(_Atomic uint32_t *w, uint32_t val, int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, ns >= 0 ? &ts : NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- peers: who is attached, and is it still alive ------------------------- */

/*
 * The start time tells a live process from a later one that got the same
 * pid; a zombie (killed, not yet reaped) counts as dead.
 */
static bool peer_alive(const struct ring *r, unsigned k)
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
		if ((int)k != r->me && peer_alive(r, k))
			return true;
	return false;
}

/* ---- counting ---------------------------------------------------------------------- */

/*
 * A counter and the record state it goes with are two stores, and a process
 * can be killed between them; yet the counters must account for every
 * message.  So whoever comes after a dead process can always tell which of
 * the two stores it made.
 *
 * Many producers, many consumers: every peer slot counts for itself
 * (struct ring_peer: tx, rx, dr, pd).  A process owns at most one record at
 * a time (a channel is used by one thread at a time), and outside of one its
 * tx, rx and dr equal their *_snap copies.  It counts before it changes the
 * record's state, and takes the snapshot after; so while a record names a
 * dead peer, "the peer counted it" is exactly "tx, rx or dr is one more than
 * its snapshot".  A repairer that has to count for the dead (a message lost
 * or dropped) moves the dead peer's counter from snapshot to snapshot + 1 by
 * CAS before it fixes the record: repairers that race, or that come after
 * one killed half-way, count once (fix_record()).
 *
 * One producer, one consumer: one writer per counter (sent: the producer;
 * received, dropped: the consumer), and the low byte of the index each
 * moves next (head, tail) carries its counter's low byte.  A counter one
 * ahead of that byte means "counted, index not moved"; the next producer or
 * consumer finishes the step (spsc_adopt_tx(), spsc_adopt_rx()).
 */

static inline struct ring_peer *me_peer(const struct ring *r)
{
	return &r->h->peers[r->me];
}

/* One writer: a plain store counts, no locked instruction on the fast path. */
static inline uint64_t bump(_Atomic uint64_t *c)
{
	uint64_t v = atomic_load_explicit(c, RELAXED) + 1;
	atomic_store_explicit(c, v, REL);
	return v;
}

/* The record is given up: counter and snapshot agree again. */
static inline void snap(_Atomic uint64_t *c, _Atomic uint64_t *copy)
{
	atomic_store_explicit(copy, atomic_load_explicit(c, RELAXED), RELAXED);
}

/* A dead peer's counter, from its snapshot to one more, at most once. */
static void count_for_dead(_Atomic uint64_t *c, uint64_t at)
{
	atomic_compare_exchange_strong(c, &at, at + 1);
}

/* The tail's position (its low byte counts, in SPSC rings). */
static inline uint64_t tail_pos(const struct ring *r)
{
	return atomic_load_explicit(&r->h->tail, ACQ) >> 8;
}

/* ---- releasing and the rel watermark ----------------------------------------- */

/* Check a meta word for the record at pos; fills len, cells, kind. */
HOT int meta_decode(const struct ring *r, uint64_t pos, uint64_t m, uint32_t *len,
		       uint64_t *cells, enum kind *kind)
{
	uint64_t c = m >> 32;
	uint32_t l = (uint32_t)m;
	if (c == 0 || c > r->ncells || (pos & r->mask) + c > r->ncells)
		return -EBADMSG;
	if (l & M_PAD) {
		*kind = K_PAD;
		*len = 0;
	} else {
		if ((l & ~M_LEN) || l > r->max_msg || ring_cells_for(l) > c)
			return -EBADMSG;
		*kind = K_MSG;
		*len = l;
	}
	*cells = c;
	return 0;
}

HOT void notify_tx(struct ring *r)
{
	if (atomic_load_explicit(&r->h->tx_waiters, RELAXED)) {
		atomic_fetch_add(&r->h->tx_seq, 1);
		futex_wake(&r->h->tx_seq);
	}
}

static void notify_rx(struct ring *r);

/*
 * Move rel over the RELEASED records at its front.  Consumers finish out of
 * order, so whoever releases the record at rel carries it over the ones
 * released after it.
 */
static void advance_rel(struct ring *r)
{
	for (uint64_t i = 0; i < r->ncells; i++) {
		uint64_t p = atomic_load_explicit(&r->h->rel, ACQ);
		uint64_t s = atomic_load_explicit(seqw(r, p), ACQ);
		if (s != SEQ(p, T_RELEASED))
			break;
		uint32_t len;
		uint64_t c;
		enum kind k;
		if (meta_decode(r, p, atomic_load_explicit(metaw(r, p), RELAXED), &len, &c,
				&k) < 0 ||
		    p + c > tail_pos(r))
			break;
		atomic_compare_exchange_strong(&r->h->rel, &p, p + c);
	}
	notify_tx(r);
}

static void release_at(struct ring *r, uint64_t pos)
{
	publish(seqw(r, pos), SEQ(pos, T_RELEASED));
	advance_rel(r);
}

/* A record we took (READING) goes undelivered: count it dropped, free it. */
static void drop_taken(struct ring *r, uint64_t pos)
{
	struct ring_peer *pe = me_peer(r);
	bump(&pe->dr);
	CRASH(CP_DR_COUNTED);
	release_at(r, pos);
	snap(&pe->dr, &pe->dr_snap);
}

/* ---- repair: finish or undo the step a dead peer was in --------------------- */

static void fix_head(struct ring *r)
{
	uint64_t hw = atomic_load(&r->h->head);
	unsigned owner = (unsigned)(hw & 0xff);
	if (owner && owner <= RING_PEERS && !peer_alive(r, owner - 1))
		atomic_compare_exchange_strong(&r->h->head, &hw, hw & ~0xffull);
}

static void fix_free(struct ring *r, uint64_t pos, uint64_t s)
{
	if (atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, T_RELEASED)))
		advance_rel(r);
}

/* A dead consumer's record (READING or SKIPPING). */
static void fix_reading(struct ring *r, uint64_t pos, uint64_t s, enum kind k,
			struct ring_peer *pe, const uint64_t v[6])
{
	uint64_t rx = v[2], rxs = v[3], dr = v[4], drs = v[5];
	bool skipping = (SEQTAG(s) & T_OWNED) == T_SKIPPING;
	if (!skipping && (rx == rxs + 1 || dr == drs + 1)) {
		fix_free(r, pos, s); /* delivered or dropped, and counted: free it */
	} else if (tail_pos(r) == pos) {
		/* It never moved the tail: nobody has the record; give it back. */
		uint64_t back = skipping && k == K_MSG ? T_LOST : T_COMMITTED;
		atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, back));
	} else if (skipping || k == K_PAD) {
		fix_free(r, pos, s); /* nothing to count */
	} else {
		/* It had the message and died with it: lost in flight, counted. */
		count_for_dead(&pe->dr, drs);
		CRASH(CP_FIX_DR);
		fix_free(r, pos, s);
	}
}

/* A dead producer's record (CLAIMED). */
static void fix_claimed(struct ring *r, uint64_t pos, uint64_t s, enum kind k,
			struct ring_peer *pe, const uint64_t v[6])
{
	uint64_t tx = v[0], txs = v[1], dr = v[4], drs = v[5];
	if (pos >= atomic_load(&r->h->head) >> 8) {
		/* It died before moving the head: the claim never happened. */
		atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, 0));
		return;
	}
	if (k == K_MSG && (tx != txs + 1 || dr != drs)) {
		/*
		 * It died before it counted the message (or a repairer already
		 * decided so: dr moved): the message is lost, sent and dropped.
		 */
		count_for_dead(&pe->dr, drs);
		CRASH(CP_FIX_DR);
		count_for_dead(&pe->tx, txs);
		CRASH(CP_FIX_TX);
		atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, T_LOST));
	} else if (atomic_compare_exchange_strong(seqw(r, pos), &s, SEQ(pos, T_COMMITTED))) {
		notify_rx(r); /* a pad, or a whole message it counted: publish it */
	}
}

/*
 * The record at pos names peer k, which is dead: finish or undo its step.
 * The dead peer's counters are read, then the record again: while the
 * record still names k its slot has not been reused (sweep_dead() fixes a
 * peer's records before its slot is taken), so the counters were its own.
 */
static void fix_record(struct ring *r, uint64_t pos, uint64_t s)
{
	unsigned k = SEQTAG(s) & T_PEER;
	uint32_t len;
	uint64_t c;
	enum kind kd;
	if (k >= RING_PEERS || meta_decode(r, pos, atomic_load(metaw(r, pos)), &len, &c, &kd) < 0)
		return;
	struct ring_peer *pe = &r->h->peers[k];
	uint64_t v[6] = { atomic_load(&pe->tx), atomic_load(&pe->tx_snap),
			  atomic_load(&pe->rx), atomic_load(&pe->rx_snap),
			  atomic_load(&pe->dr), atomic_load(&pe->dr_snap) };
	if (atomic_load(seqw(r, pos)) != s)
		return;
	if ((SEQTAG(s) & T_OWNED) == T_CLAIMED)
		fix_claimed(r, pos, s, kd, pe, v);
	else
		fix_reading(r, pos, s, kd, pe, v);
}

static bool owned_by_dead(const struct ring *r, uint64_t pos, uint64_t s)
{
	unsigned tag = SEQTAG(s);
	return SEQPOS(s) == pos && (tag & T_OWNED) && !peer_alive(r, tag & T_PEER);
}

static void repair(struct ring *r)
{
	if (r->flags & RING_F_SPSC)
		return; /* the next producer or consumer adopts what a dead one left */
	fix_head(r);
	uint64_t pos[2] = { tail_pos(r), atomic_load(&r->h->rel) };
	for (int i = 0; i < 2; i++) {
		uint64_t s = atomic_load(seqw(r, pos[i]));
		if (owned_by_dead(r, pos[i], s))
			fix_record(r, pos[i], s);
	}
}

/*
 * One walk from rel to the head (the head's cell included: a claim that
 * never moved the head leaves its record there), fixing every record peer k
 * owns (k < 0: every peer but us).  -EAGAIN: the ring moved under the walk;
 * 1: one is still owned.
 */
static int sweep_walk(struct ring *r, int k)
{
	uint64_t p = atomic_load(&r->h->rel), hd = atomic_load(&r->h->head) >> 8;
	int left = 0;
	for (uint64_t i = 0; i <= r->ncells; i++) {
		uint64_t s = atomic_load(seqw(r, p));
		int owner = (int)(SEQTAG(s) & T_PEER);
		if (SEQPOS(s) == p && (SEQTAG(s) & T_OWNED) && (k < 0 ? owner != r->me : owner == k)) {
			fix_record(r, p, s);
			left |= atomic_load(seqw(r, p)) == s;
		}
		uint32_t len;
		uint64_t c;
		enum kind kd;
		if (p >= hd)
			return left;
		if (SEQPOS(s) != p ||
		    meta_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &kd) < 0)
			return -EAGAIN;
		p += c;
	}
	return -EAGAIN;
}

/*
 * Before a dead peer's slot is reused, fix every record it still owns, or
 * they would look owned by the new, live process for ever (and its counters
 * would no longer be the dead one's).  False if that could not be done.
 */
static bool sweep_dead(struct ring *r, unsigned k)
{
	if (r->flags & RING_F_SPSC)
		return true;
	fix_head(r);
	for (int tries = 0; tries < 8; tries++)
		if (sweep_walk(r, (int)k) == 0)
			return true;
	return false;
}

static int peer_join(struct ring *r)
{
	pid_t me = getpid();
	uint64_t start = 0;
	(void)ipcx__proc_start(me, &start);
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned k = 0; k < RING_PEERS; k++) {
			struct ring_peer *pe = &r->h->peers[k];
			uint32_t old = atomic_load(&pe->pid);
			if (pass == 0 ? old != 0 : (old == 0 || peer_alive(r, k) || !sweep_dead(r, k)))
				continue;
			/* Clear the start first: a checker then trusts the pid alone. */
			uint64_t ost = atomic_load(&pe->start);
			if (!atomic_compare_exchange_strong(&pe->start, &ost, 0))
				continue;
			if (!atomic_compare_exchange_strong(&pe->pid, &old, (uint32_t)me))
				continue;
			atomic_store(&pe->armed, 0);
			atomic_store(&pe->owner, 0);
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

/* ---- the doorbell: a pollable descriptor across unrelated processes ---------- */

static socklen_t bell_addr(const struct ring *r, unsigned k, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* Abstract name; the uid is random per segment, so it is not guessable. */
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "ipcx.ring.%016llx.%u",
			 (unsigned long long)r->uid, k);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void poke(struct ring *r, unsigned k)
{
	int fd = __atomic_load_n(&r->pokefd, __ATOMIC_ACQUIRE);
	if (fd < 0) {
		int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (nfd < 0)
			return;
		int expect = -1;
		if (__atomic_compare_exchange_n(&r->pokefd, &expect, nfd, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			fd = nfd;
		else {
			close(nfd);
			fd = expect;
		}
	}
	struct sockaddr_un a;
	socklen_t alen = bell_addr(r, k, &a);
	char b = 1;
	ssize_t n = sendto(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
	(void)n; /* a full or vanished doorbell needs no second poke */
}

/* Poke every poller that announced it is waiting (armed), once each. */
COLD void poke_pollers(struct ring *r)
{
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		uint32_t one = 1;
		if (atomic_load_explicit(&pe->armed, RELAXED) &&
		    atomic_compare_exchange_strong(&pe->armed, &one, 0))
			poke(r, k);
	}
}

HOT void notify_rx(struct ring *r)
{
	/* Loads after the store of the commit: see publish(). */
	if (atomic_load_explicit(&r->h->rx_waiters, RELAXED)) {
		atomic_fetch_add(&r->h->rx_seq, 1);
		futex_wake(&r->h->rx_seq);
	}
	if (atomic_load_explicit(&r->h->pollers, RELAXED))
		poke_pollers(r);
}

/* ---- the many-producer many-consumer protocol ------------------------------------ */

/* Room for len bytes: 0 and *pos, -EAGAIN full, -EBUSY another claim in progress. */
static int mpmc_claim(struct ring *r, uint32_t len, uint64_t *pos, uint64_t *cellsp)
{
	uint64_t cells = ring_cells_for(len);
	for (;;) {
		uint64_t hw = atomic_load_explicit(&r->h->head, ACQ);
		if (hw & 0xff)
			return -EBUSY;
		uint64_t hp = hw >> 8, c = hp & r->mask, start = hp, pad = 0;
		if (c + cells > r->ncells) {
			pad = r->ncells - c; /* a record never wraps: skip to the next lap */
			start = hp + pad;
		}
		uint64_t rl = atomic_load_explicit(&r->h->rel, ACQ);
		if (rl > hp || hp - rl > r->ncells) {
			if (atomic_load(&r->h->head) != hw)
				continue;
			return -EBADMSG;
		}
		if (start + cells - rl > r->ncells)
			return -EAGAIN;
		uint64_t mine = hp << 8 | (uint64_t)(r->me + 1);
		if (!atomic_compare_exchange_weak(&r->h->head, &hw, mine))
			continue;
		CRASH(CP_HEAD_TAGGED);
		/* We own the head: meta first, so a repairer can trust it. */
		unsigned tag = T_CLAIMED | (unsigned)r->me;
		if (pad) {
			atomic_store_explicit(metaw(r, hp), pad << 32 | M_PAD, RELAXED);
			atomic_store_explicit(seqw(r, hp), SEQ(hp, tag), REL);
		}
		atomic_store_explicit(metaw(r, start), cells << 32 | len, RELAXED);
		atomic_store_explicit(seqw(r, start), SEQ(start, tag), REL);
		atomic_store_explicit(&r->h->head, (start + cells) << 8, REL);
		if (pad)
			atomic_store_explicit(seqw(r, hp), SEQ(hp, T_COMMITTED), REL);
		CRASH(CP_CLAIMED);
		*pos = start;
		*cellsp = cells;
		return 0;
	}
}

HOT int check_crc(struct ring *r, uint64_t pos, uint32_t len);

/*
 * The next message: 0 (READING is ours), -EAGAIN empty, -EBUSY, -EMSGSIZE.
 * Pads and LOST records are skipped (SKIPPING, then RELEASED); nothing is
 * counted for them (a LOST message was counted when it was found lost).
 */
static int mpmc_take(struct ring *r, size_t cap, uint64_t *pos, uint32_t *lenp,
		     uint64_t *cellsp)
{
	for (;;) {
		/*
		 * Only the tail and the cell are read: a spinning consumer leaves
		 * the producers' head line alone.  Whether "not committed" means
		 * empty or a corrupt index is decided off the fast path
		 * (check_indices, when a wait begins).
		 */
		uint64_t t = tail_pos(r);
		uint64_t s = atomic_load_explicit(seqw(r, t), ACQ);
		unsigned tag = SEQTAG(s);
		if (SEQPOS(s) != t)
			return -EAGAIN;
		if (tag & T_OWNED)
			return -EBUSY;
		if (tag != T_COMMITTED && tag != T_LOST)
			return -EAGAIN;
		uint32_t len;
		uint64_t c;
		enum kind k;
		uint64_t m = atomic_load_explicit(metaw(r, t), RELAXED);
		if (meta_decode(r, t, m, &len, &c, &k) < 0) {
			if (tail_pos(r) != t)
				continue;
			return ipcx__fail(-EBADMSG, "ring: bad record at %llu", (unsigned long long)t);
		}
		bool deliver = k == K_MSG && tag == T_COMMITTED;
		if (deliver && len > cap)
			return -EMSGSIZE;
		unsigned mine = (deliver ? T_READING : T_SKIPPING) | (unsigned)r->me;
		if (!atomic_compare_exchange_strong(seqw(r, t), &s, SEQ(t, mine)))
			continue;
		CRASH(deliver ? CP_TAKEN : CP_SKIPPING);
		atomic_store_explicit(&r->h->tail, (t + c) << 8, REL);
		if (!deliver) {
			release_at(r, t);
			continue;
		}
		CRASH(CP_TAIL_MOVED);
		if (check_crc(r, t, len) < 0) {
			drop_taken(r, t);
			continue;
		}
		*pos = t;
		*lenp = len;
		*cellsp = c;
		return 0;
	}
}

/*
 * The shared indices make sense: rel <= tail <= head <= rel + ncells, and
 * the record at the tail is where the head says one is.  Called when a wait
 * begins, not on the fast path.
 */
static int check_indices(struct ring *r)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rl = atomic_load(&r->h->rel), tw = atomic_load(&r->h->tail), t = tw >> 8;
		uint64_t hw = atomic_load(&r->h->head), hd = hw >> 8;
		uint64_t s = atomic_load(seqw(r, t));
		/*
		 * The words only grow: if each reads the same twice, there was an
		 * instant when all of them held these values together.
		 */
		if (atomic_load(&r->h->rel) != rl || atomic_load(&r->h->tail) != tw ||
		    atomic_load(&r->h->head) != hw || atomic_load(seqw(r, t)) != s)
			continue;
		bool ok = rl <= t;
		if (r->flags & RING_F_SPSC) /* the head moves after the commit: tail may pass it */
			ok = ok && (hd >= rl ? hd - rl <= r->ncells : rl - hd <= r->ncells);
		else
			ok = ok && (hw & 0xff) <= RING_PEERS && (tw & 0xff) == 0 && t <= hd &&
			     hd - rl <= r->ncells && (hd == t || SEQPOS(s) == t);
		return ok ? 0 : ipcx__fail(-EBADMSG, "ring: indices out of order");
	}
	return 0; /* never still: a busy ring, not a broken one */
}

/* ---- the single-producer single-consumer protocol --------------------------------- */

/*
 * What an earlier producer, killed, left past the head: at most a pad and a
 * message it committed but did not move the head over, and perhaps did not
 * count (sent's low byte equal to the head's: not counted; one ahead:
 * counted).  Returns sent as it should be, and the head in *headp.
 */
static uint64_t spsc_settle_tx(const struct ring *r, uint64_t *headp)
{
	uint64_t hw = atomic_load(&r->h->head), hp = hw >> 8, n = atomic_load(&r->h->sent);
	bool counted = (uint8_t)n == (uint8_t)((hw & 0xff) + 1);
	for (int i = 0; i < 2; i++) {
		uint32_t len;
		uint64_t c;
		enum kind k;
		if (atomic_load(seqw(r, hp)) != SEQ(hp, T_COMMITTED) ||
		    meta_decode(r, hp, atomic_load(metaw(r, hp)), &len, &c, &k) < 0)
			break;
		hp += c;
		if (k == K_MSG) {
			n += !counted;
			break;
		}
	}
	*headp = hp << 8 | (n & 0xff);
	return n;
}

/* A new producer channel takes over the head (once, at its first claim). */
static void spsc_adopt_tx(struct ring *r)
{
	uint64_t hw, n = spsc_settle_tx(r, &hw);
	atomic_store(&r->h->sent, n);
	atomic_store(&r->h->head, hw);
	r->adopted_tx = true;
}

/*
 * A new consumer channel takes over the tail: a consumer killed after it
 * counted a message but before it moved the tail (its counters' low byte
 * one ahead of the tail's) leaves that message to skip, and one killed
 * between tail and rel leaves rel behind.
 */
static void spsc_adopt_rx(struct ring *r)
{
	uint64_t tw = atomic_load(&r->h->tail), t = tw >> 8;
	uint64_t n = atomic_load(&r->h->received) + atomic_load(&r->h->dropped);
	uint32_t len;
	uint64_t c;
	enum kind k;
	if ((uint8_t)n == (uint8_t)((tw & 0xff) + 1) && atomic_load(seqw(r, t)) == SEQ(t, T_COMMITTED) &&
	    meta_decode(r, t, atomic_load(metaw(r, t)), &len, &c, &k) == 0)
		t += c;
	atomic_store(&r->h->tail, t << 8 | (n & 0xff));
	if (atomic_load(&r->h->rel) < t)
		publish(&r->h->rel, t);
	r->adopted_rx = true;
}

/* The SPSC consumer is done with the record before next; n: its counters' sum. */
HOT void spsc_consumed(struct ring *r, uint64_t next, uint64_t n)
{
	atomic_store_explicit(&r->h->tail, next << 8 | (n & 0xff), RELAXED);
	CRASH(CP_SPSC_TAIL);
	publish(&r->h->rel, next);
}

/*
 * Room for len bytes at the head, judged by the cached rel (read again when
 * it looks short): 0, -EAGAIN (full) or -EBADMSG (indices out of order).
 * Makes no call, so that the fast path around it saves no registers.
 */
HOT int spsc_room(struct ring *r, uint32_t len, uint64_t *pos, uint64_t *cellsp,
		  uint64_t *padp)
{
	uint64_t cells = ring_cells_for(len);
	uint64_t hp = atomic_load_explicit(&r->h->head, RELAXED) >> 8;
	uint64_t c = hp & r->mask, start = hp, pad = 0;
	if (c + cells > r->ncells) {
		pad = r->ncells - c;
		start = hp + pad;
	}
	if (r->cached_rel > hp || start + cells - r->cached_rel > r->ncells) {
		uint64_t rl = atomic_load_explicit(&r->h->rel, ACQ);
		if (rl > hp || hp - rl > r->ncells)
			return -EBADMSG;
		r->cached_rel = rl;
		if (start + cells - rl > r->ncells)
			return -EAGAIN;
	}
	*pos = start;
	*cellsp = cells;
	*padp = pad;
	return 0;
}

HOT int spsc_claim(struct ring *r, uint32_t len, uint64_t *pos, uint64_t *cellsp,
		   uint64_t *padp)
{
	if (!r->adopted_tx)
		spsc_adopt_tx(r);
	int rc = spsc_room(r, len, pos, cellsp, padp);
	return rc == -EBADMSG ? ipcx__fail(-EBADMSG, "ring: indices out of order") : rc;
}

/*
 * The record at the tail, if committed: 0 with its position, length, cells
 * and kind, -EAGAIN (not committed: empty) or -EBADMSG (a bad meta word).
 * Makes no call.  Only the tail (ours) and the cell are read: a spinning
 * consumer keeps the producer's head line out of its cache.
 */
HOT int spsc_next(struct ring *r, uint64_t *pos, uint32_t *lenp, uint64_t *cellsp,
		  enum kind *kind)
{
	uint64_t t = atomic_load_explicit(&r->h->tail, RELAXED) >> 8;
	if (atomic_load_explicit(seqw(r, t), ACQ) != SEQ(t, T_COMMITTED))
		return -EAGAIN;
	*pos = t;
	return meta_decode(r, t, atomic_load_explicit(metaw(r, t), RELAXED), lenp, cellsp, kind);
}

HOT int spsc_take(struct ring *r, size_t cap, uint64_t *pos, uint32_t *lenp,
		  uint64_t *cellsp)
{
	if (!r->adopted_rx)
		spsc_adopt_rx(r);
	for (;;) {
		uint64_t t;
		uint32_t len;
		uint64_t c;
		enum kind k;
		int rc = spsc_next(r, &t, &len, &c, &k);
		if (rc == -EAGAIN)
			return rc;
		if (rc < 0)
			return ipcx__fail(-EBADMSG, "ring: bad record at %llu", (unsigned long long)t);
		if (k == K_MSG && len > cap)
			return -EMSGSIZE;
		if (k == K_PAD || check_crc(r, t, len) < 0) {
			uint64_t d = k == K_MSG ? bump(&r->h->dropped) : atomic_load(&r->h->dropped);
			spsc_consumed(r, t + c, atomic_load(&r->h->received) + d);
			continue;
		}
		*pos = t;
		*lenp = len;
		*cellsp = c;
		return 0;
	}
}

/* ---- records: checksums, commit, release ------------------------------------------ */

/* A record's checksum covers its position (no stale lap passes) and length. */
static uint32_t record_crc(struct ring *r, uint64_t pos, uint32_t len)
{
	uint64_t hdr[2] = { pos, len };
	return ipcx__crc32c(ipcx__crc32c(0, hdr, sizeof(hdr)), cell_ptr(r, pos), len);
}

HOT int check_crc(struct ring *r, uint64_t pos, uint32_t len)
{
	if (!(r->flags & RING_F_CRC))
		return 0;
	return atomic_load(&r->crc[pos & r->mask]) == record_crc(r, pos, len) ? 0 : -EBADMSG;
}

COLD void sync_now(struct ring *r)
{
	r->batch = 0;
	msync(r->h, r->size, MS_SYNC);
}

HOT void durable(struct ring *r, bool force)
{
	if (r->durability == 0)
		return;
	if (r->durability == 1 && !force && ++r->batch < 64)
		return;
	sync_now(r);
}

/* Publish an SPSC record (and the pad before it), count it, move the head. */
HOT void spsc_commit(struct ring *r, uint64_t pos, uint32_t len, uint64_t cells, uint64_t pad)
{
	if (pad) {
		uint64_t p0 = pos - pad;
		atomic_store_explicit(metaw(r, p0), pad << 32 | M_PAD, RELAXED);
		atomic_store_explicit(seqw(r, p0), SEQ(p0, T_COMMITTED), REL);
	}
	atomic_store_explicit(metaw(r, pos), cells << 32 | len, RELAXED);
	/* seq_cst: orders the commit before the loads of the waiter flags. */
	publish(seqw(r, pos), SEQ(pos, T_COMMITTED));
	CRASH(CP_SPSC_COMMITTED);
	uint64_t n = bump(&r->h->sent);
	CRASH(CP_SPSC_SENT);
	atomic_store_explicit(&r->h->head, (pos + cells) << 8 | (n & 0xff), REL);
}

/* The SPSC consumer is done with the message at pos: count it, move the tail. */
HOT void spsc_release(struct ring *r, uint64_t pos, uint64_t cells)
{
	uint64_t n = bump(&r->h->received);
	CRASH(CP_SPSC_RECEIVED);
	spsc_consumed(r, pos + cells, n + atomic_load_explicit(&r->h->dropped, RELAXED));
}

HOT void commit_at(struct ring *r, uint64_t pos, uint32_t len, uint64_t cells, uint64_t pad)
{
	if (r->flags & RING_F_CRC)
		atomic_store_explicit(&r->crc[pos & r->mask], record_crc(r, pos, len), RELAXED);
	if (r->flags & RING_F_SPSC) {
		spsc_commit(r, pos, len, cells, pad);
	} else {
		struct ring_peer *pe = me_peer(r);
		atomic_store_explicit(metaw(r, pos), cells << 32 | len, RELAXED);
		bump(&pe->tx); /* after the copy (release): counted means whole */
		CRASH(CP_TX_COUNTED);
		publish(seqw(r, pos), SEQ(pos, T_COMMITTED));
		CRASH(CP_COMMITTED);
		snap(&pe->tx, &pe->tx_snap);
	}
	durable(r, false);
	notify_rx(r);
}

HOT void release_msg(struct ring *r, uint64_t pos, uint64_t cells)
{
	if (r->flags & RING_F_SPSC) {
		spsc_release(r, pos, cells);
		notify_tx(r);
	} else {
		struct ring_peer *pe = me_peer(r);
		bump(&pe->rx);
		CRASH(CP_RX_COUNTED);
		release_at(r, pos);
		snap(&pe->rx, &pe->rx_snap);
	}
	durable(r, false);
}

static bool has_msg(struct ring *r)
{
	uint64_t t = tail_pos(r);
	uint64_t s = atomic_load(seqw(r, t));
	return s == SEQ(t, T_COMMITTED) || s == SEQ(t, T_LOST);
}

static bool has_room(struct ring *r, uint64_t cells)
{
	uint64_t hw = atomic_load(&r->h->head);
	uint64_t rl = atomic_load(&r->h->rel);
	/* Worst case with the pad to the end of the lap; an MPMC head's tag: a claim. */
	bool claiming = !(r->flags & RING_F_SPSC) && (hw & 0xff);
	return !claiming && (hw >> 8) + 2 * cells <= rl + r->ncells;
}

/* ---- waiting ------------------------------------------------------------------- */

struct wait {
	bool init;
	unsigned n;
	int64_t deadline, spin_end, next_check;
};

/*
 * -EPIPE for a process that dialed a ring whose listener is gone (killed,
 * or closed).  The listener itself never gets it: like a server socket it
 * waits for the next peer.  Nor does anyone when the ring is meant to
 * outlive its listener (keep=1, the mmap: log).
 */
static int epipe_check(struct ring *r)
{
	if (r->persistent || r->me < 0 || atomic_load(&r->h->peers[r->me].owner) ||
	    atomic_load(&r->h->kept))
		return 0;
	for (unsigned k = 0; k < RING_PEERS; k++)
		if (atomic_load(&r->h->peers[k].owner) && peer_alive(r, k))
			return 0;
	return ipcx__fail(-EPIPE, "ring: its listener is gone");
}

void ipcx__ring_own(struct ring *r)
{
	if (r->me >= 0)
		atomic_store(&r->h->peers[r->me].owner, 1);
}

/*
 * One step of waiting for the ring to change; 0 means try again.  Spin
 * first (spin_us), then sleep on the futex, waking every 100 ms while other
 * processes are attached to look for dead ones (a killed process wakes
 * nobody).  busy: another process is in the middle of a step; it will not
 * wake us, so yield instead of sleeping.
 */
static int wait_step(struct ring *r, struct wait *w, int timeout_ms, bool rx, bool busy,
		     uint64_t cells)
{
	if (!w->init) {
		int64_t now = ipcx__now_ns();
		w->init = true;
		w->deadline = timeout_ms < 0 ? -1 : now + (int64_t)timeout_ms * 1000000;
		w->spin_end = now + (int64_t)r->spin_us * 1000;
		w->next_check = timeout_ms == 0 ? now : w->spin_end;
	}
	if (timeout_ms == 0) {
		if (w->n++ == 0) {
			repair(r);
			int e = check_indices(r);
			return e;
		}
		int e = epipe_check(r);
		return e ? e : -EAGAIN;
	}
	if ((++w->n & 31) != 0 && w->n < (1u << 30)) {
		cpu_relax();
		return 0;
	}
	int64_t now = ipcx__now_ns();
	if (now < w->spin_end) {
		cpu_relax();
		return 0;
	}
	if (w->deadline >= 0 && now >= w->deadline)
		return -ETIMEDOUT;
	if (now >= w->next_check) {
		w->next_check = now + 10 * 1000000;
		repair(r);
		int e = check_indices(r);
		if (!e && !busy)
			e = epipe_check(r);
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
	uint32_t v = atomic_load(fw);
	/* Announce, then look again: a committer that missed us sees the flag. */
	atomic_fetch_add(waiters, 1);
	if (!sleeper_barrier() && (ns < 0 || ns > 1000000))
		ns = 1000000; /* no barrier on the others: never sleep long on a miss */
	if (!(rx ? has_msg(r) : has_room(r, cells)))
		futex_wait(fw, v, ns);
	int e = r->whole ? r->whole(r) : 0; /* a sleeper is the one a cut would find */
	atomic_fetch_sub(waiters, 1);
	return e;
}

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
	return wait_step(r, w, timeout_ms, rx, busy, cells);
}

/* ---- public (library-internal) operations ------------------------------------------ */

COLD void rearm(struct ring *r)
{
	char b[16];
	while (recv(r->bell, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
	struct ring_peer *pe = &r->h->peers[r->me];
	atomic_store(&pe->armed, 1);
	sleeper_barrier(); /* pairs with the committer's look at pollers */
	uint32_t one = 1;
	/* A message that came before we armed: ring our own bell. */
	if (has_msg(r) && atomic_compare_exchange_strong(&pe->armed, &one, 0))
		poke(r, (unsigned)r->me);
}

HOT void after_take(struct ring *r)
{
	if (r->bell >= 0 && !has_msg(r))
		rearm(r);
}

/* Claim room, waiting as the policy says; 1 means the message was dropped. */
static int claim_wait(struct ring *r, uint32_t len, int timeout_ms, uint64_t *pos,
		      uint64_t *cells, uint64_t *pad)
{
	struct wait w = { 0 };
	for (;;) {
		int rc;
		*pad = 0;
		if (r->flags & RING_F_SPSC)
			rc = spsc_claim(r, len, pos, cells, pad);
		else
			rc = mpmc_claim(r, len, pos, cells);
		if (rc == 0)
			return 0;
		if (rc == -EAGAIN && r->policy == RING_DROP) {
			bump(&me_peer(r)->pd); /* one store: sent and dropped at once */
			return 1;
		}
		if (rc == -EAGAIN && r->policy == RING_OVERWRITE) {
			uint64_t p, c;
			uint32_t l;
			int t = mpmc_take(r, SIZE_MAX, &p, &l, &c);
			if (t == 0) {
				drop_taken(r, p);
				continue;
			}
			if (t != -EAGAIN && t != -EBUSY)
				return t;
			rc = -EBUSY; /* a consumer is slow to release: wait */
		}
		if (rc != -EAGAIN && rc != -EBUSY)
			return rc;
		rc = ring_wait(r, &w, timeout_ms, false, rc == -EBUSY, ring_cells_for(len));
		if (rc)
			return rc;
	}
}

static int take_wait(struct ring *r, size_t cap, int timeout_ms, uint64_t *pos, uint32_t *len,
		     uint64_t *cells)
{
	struct wait w = { 0 };
	for (;;) {
		int rc = r->flags & RING_F_SPSC ? spsc_take(r, cap, pos, len, cells)
						: mpmc_take(r, cap, pos, len, cells);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN && rc != -EBUSY)
			return rc;
		rc = ring_wait(r, &w, timeout_ms, true, rc == -EBUSY, 0);
		if (rc) {
			if (r->bell >= 0)
				rearm(r);
			return rc;
		}
	}
}

/*
 * Sending into a ring where nobody else is attached any more: -EPIPE.  The
 * check costs system calls, so it is made on one send in 1024 (and when a
 * send has to wait): a sender learns of a dead receiver within that many.
 */
HOT int send_check(struct ring *r)
{
	/*
	 * Threads may share a channel: a plain load and store (no locked
	 * instruction on the fast path), so a count may be lost, never more.
	 */
	uint32_t n = atomic_load_explicit(&r->nsend, RELAXED) + 1;
	atomic_store_explicit(&r->nsend, n, RELAXED);
	if (r->persistent || (n & 1023) != 0)
		return 0;
	return epipe_check(r);
}

bool ipcx__ring_abandoned(struct ring *r)
{
	return !atomic_load(&r->h->kept) && !others_alive(r);
}

/* Copy n <= 64 bytes without a call: overlapping fixed-size moves. */
HOT void copy_small(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n >= 32) {
		memcpy(d, s, 32);
		memcpy(d + n - 32, s + n - 32, 32);
	} else if (n >= 16) {
		memcpy(d, s, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* A call that takes a record: the channel is attached and holds none now. */
static int free_to_take(const struct ring *r)
{
	if (r->me < 0)
		return -EBADF;
	if (r->reserved || r->peeked)
		return ipcx__fail(-EBUSY, "a reserved or peeked message is not finished");
	return 0;
}

/* check: make the -EPIPE check now (the fast path saw its turn come). */
SLOW ssize_t send_slow(struct ring *r, const void *msg, size_t len, int timeout_ms, bool check)
{
	int e = free_to_take(r);
	if (!e)
		e = check && !r->persistent ? epipe_check(r) : send_check(r);
	if (e)
		return e;
	if (len > r->max_msg)
		return -EMSGSIZE;
	uint64_t pos = 0, cells = 0, pad = 0;
	int rc = claim_wait(r, (uint32_t)len, timeout_ms, &pos, &cells, &pad);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (len)
			memcpy(cell_ptr(r, pos), msg, len);
		commit_at(r, pos, (uint32_t)len, cells, pad);
	}
	return (ssize_t)len;
}

/*
 * What the fast paths leave to the slow ones: MPMC, checksums (the mmap:
 * log), a reservation or peek in progress, a doorbell, a new channel's
 * first call (it adopts what an earlier peer left).
 */
HOT bool spsc_fast(const struct ring *r)
{
	return (r->flags & (RING_F_SPSC | RING_F_CRC)) == RING_F_SPSC && r->durability == 0 &&
	       r->me >= 0 && !r->reserved && !r->peeked;
}

/* Wake sleepers and poke pollers, then return n (a tail call of the fast paths). */
SLOW ssize_t notified(struct ring *r, bool rx, ssize_t n)
{
	if (rx)
		notify_rx(r);
	else
		notify_tx(r);
	return n;
}

/*
 * The fast path: an SPSC ring with room for a message of at most 64 bytes.
 * It makes no call but tail calls (nothing to save on the stack: every
 * store counts, see above); everything else goes to send_slow.
 */
ssize_t ipcx__ring_send(struct ring *r, const void *msg, size_t len, int timeout_ms)
{
	uint64_t pos, cells, pad;
	if (!spsc_fast(r) || !r->adopted_tx || len > RING_CELL || len > r->max_msg ||
	    spsc_room(r, (uint32_t)len, &pos, &cells, &pad) != 0)
		return send_slow(r, msg, len, timeout_ms, false);
	/* The -EPIPE check when the head crosses a multiple of 1024 cells. */
	if (((pos - pad) ^ (pos + cells)) >> 10)
		return send_slow(r, msg, len, timeout_ms, true);
	copy_small(cell_ptr(r, pos), msg, len);
	spsc_commit(r, pos, (uint32_t)len, cells, pad);
	/* Loads after the store of the commit: see publish(). */
	if (atomic_load_explicit(&r->h->rx_waiters, RELAXED) |
	    atomic_load_explicit(&r->h->pollers, RELAXED))
		return notified(r, true, (ssize_t)len);
	return (ssize_t)len;
}

SLOW ssize_t recv_slow(struct ring *r, void *buf, size_t cap, int timeout_ms)
{
	int e = free_to_take(r);
	if (e)
		return e;
	uint64_t pos = 0, cells = 0;
	uint32_t len = 0;
	int rc = take_wait(r, cap, timeout_ms, &pos, &len, &cells);
	if (rc < 0)
		return rc;
	if (len <= RING_CELL)
		copy_small(buf, cell_ptr(r, pos), len);
	else
		memcpy(buf, cell_ptr(r, pos), len);
	release_msg(r, pos, cells);
	after_take(r);
	return len;
}

/* The fast path: an SPSC ring with a message of at most 64 bytes waiting. */
ssize_t ipcx__ring_recv(struct ring *r, void *buf, size_t cap, int timeout_ms)
{
	uint64_t pos, cells;
	uint32_t len;
	enum kind k;
	if (!spsc_fast(r) || !r->adopted_rx || r->bell >= 0 ||
	    spsc_next(r, &pos, &len, &cells, &k) != 0 || k != K_MSG || len > cap ||
	    len > RING_CELL)
		return recv_slow(r, buf, cap, timeout_ms);
	copy_small(buf, cell_ptr(r, pos), len);
	spsc_release(r, pos, cells);
	if (atomic_load_explicit(&r->h->tx_waiters, RELAXED))
		return notified(r, false, len);
	return len;
}

int ipcx__ring_reserve(struct ring *r, size_t len, int timeout_ms, void **slot)
{
	int e = free_to_take(r);
	if (e)
		return e;
	if (len > r->max_msg)
		return -EMSGSIZE;
	uint64_t pos, cells, pad;
	int save = r->policy;
	if (r->policy == RING_DROP)
		r->policy = RING_BLOCK; /* a reservation cannot be dropped: report full */
	int rc = claim_wait(r, (uint32_t)len, save == RING_DROP ? 0 : timeout_ms, &pos, &cells,
			    &pad);
	r->policy = save;
	if (rc < 0)
		return rc;
	r->reserved = true;
	r->res_pos = pos;
	r->res_cells = (uint32_t)cells;
	r->res_pad = pad;
	*slot = cell_ptr(r, pos);
	return 0;
}

int ipcx__ring_commit(struct ring *r, size_t len)
{
	if (!r->reserved)
		return ipcx__fail(-EINVAL, "commit without reserve");
	if (len > (uint64_t)r->res_cells * RING_CELL || len > r->max_msg)
		return ipcx__fail(-EMSGSIZE, "commit: %zu bytes is more than reserved", len);
	r->reserved = false;
	commit_at(r, r->res_pos, (uint32_t)len, r->res_cells, r->res_pad);
	return 0;
}

ssize_t ipcx__ring_peek(struct ring *r, int timeout_ms, const void **msg)
{
	int e = free_to_take(r);
	if (e)
		return e;
	uint64_t pos, cells;
	uint32_t len;
	int rc = take_wait(r, SIZE_MAX, timeout_ms, &pos, &len, &cells);
	if (rc < 0)
		return rc;
	r->peeked = true;
	r->peek_pos = pos;
	r->peek_cells = cells;
	*msg = cell_ptr(r, pos);
	return len;
}

int ipcx__ring_release(struct ring *r)
{
	if (!r->peeked)
		return ipcx__fail(-EINVAL, "release without peek");
	r->peeked = false;
	release_msg(r, r->peek_pos, r->peek_cells);
	after_take(r);
	return 0;
}

/*
 * The header's counters plus every slot's.  r may be a copy of the header
 * alone (ipcx ls reads it from outside: no cells, no flags): then an SPSC
 * message committed by a producer killed before it counted it is missing
 * until the next producer adopts the ring.
 */
int ipcx__ring_stats(struct ring *r, uint64_t out[5])
{
	uint64_t sent = atomic_load(&r->h->sent), recvd = atomic_load(&r->h->received);
	uint64_t dropped = atomic_load(&r->h->dropped);
	if ((r->flags & RING_F_SPSC) && r->cell) {
		uint64_t hw;
		sent = spsc_settle_tx(r, &hw);
	}
	uint64_t peers = 0;
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		uint64_t pd = atomic_load(&pe->pd);
		sent += atomic_load(&pe->tx) + pd;
		recvd += atomic_load(&pe->rx);
		dropped += atomic_load(&pe->dr) + pd;
		peers += peer_alive(r, k);
	}
	uint64_t depth = sent >= recvd + dropped ? sent - recvd - dropped : 0;
	out[0] = sent;
	out[1] = recvd;
	out[2] = dropped;
	out[3] = depth > r->ncells ? r->ncells : depth;
	out[4] = peers;
	return 0;
}

int ipcx__ring_fileno(struct ring *r)
{
	if (r->bell >= 0)
		return r->bell;
	if (r->me < 0)
		return -EBADF;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return ipcx__fail(-errno, "ring: doorbell socket");
	struct sockaddr_un a;
	socklen_t alen = bell_addr(r, (unsigned)r->me, &a);
	if (bind(fd, (struct sockaddr *)&a, alen) < 0) {
		int e = -errno;
		close(fd);
		return ipcx__fail(e, "ring: doorbell bind");
	}
	r->bell = fd;
	atomic_store(&r->h->peers[r->me].poller, 1);
	atomic_fetch_add(&r->h->pollers, 1);
	rearm(r);
	return fd;
}

/* ---- layout, attach, detach -------------------------------------------------------- */

struct layout {
	uint64_t seq_off, meta_off, crc_off, data_off, total;
};

static void layout(uint64_t ncells, uint32_t flags, struct layout *l)
{
	/* seq and meta of a cell side by side: a reader takes one cache line. */
	l->seq_off = RING_HDR;
	l->meta_off = l->seq_off + 8;
	l->crc_off = l->seq_off + 16 * ncells;
	uint64_t end = l->crc_off + ((flags & RING_F_CRC) ? 4 * ncells : 0);
	l->data_off = (end + 4095) & ~4095ull;
	l->total = l->data_off + ncells * RING_CELL;
}

uint64_t ipcx__ring_size(const struct ring_geom *g)
{
	struct layout l;
	layout(g->capacity / RING_CELL, g->flags, &l);
	return l.total;
}

int ipcx__ring_format(void *mem, size_t size, const struct ring_geom *g)
{
	struct layout l;
	uint64_t ncells = g->capacity / RING_CELL;
	layout(ncells, g->flags, &l);
	if (size < l.total)
		return -EINVAL;
	struct ring_hdr *h = mem;
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->hdr_size = RING_HDR;
	h->total_size = l.total;
	if (getrandom(&h->uid, sizeof(h->uid), GRND_NONBLOCK) != sizeof(h->uid))
		h->uid = (uint64_t)ipcx__now_ns() ^ (uint64_t)getpid() << 32;
	h->cell_size = RING_CELL;
	h->ncells = (uint32_t)ncells;
	h->max_msg = g->max_msg;
	h->flags = g->flags;
	h->policy = (uint32_t)g->policy;
	h->seq_off = l.seq_off;
	h->meta_off = l.meta_off;
	h->crc_off = l.crc_off;
	h->data_off = l.data_off;
	/* Position 0 of every lap-0 cell reads as "never written" (pos 0, tag 0). */
	atomic_store(&h->ready, 1);
	return 0;
}

int ipcx__ring_attach(struct ring *r, void *mem, size_t size, bool readonly)
{
	memset(r, 0, sizeof(*r));
	r->me = -1;
	r->bell = r->pokefd = -1;
	if (size < RING_HDR)
		return ipcx__fail(-EBADMSG, "ring: segment smaller than its header");
	struct ring_hdr *h = mem;
	if (!atomic_load_explicit(&h->ready, ACQ))
		return h->magic == 0 || h->magic == RING_MAGIC ? -EAGAIN
							     : ipcx__fail(-EBADMSG, "ring: bad magic");
	/* Read the geometry once; the shared copy is never trusted again. */
	uint64_t magic = h->magic, total = h->total_size;
	uint32_t version = h->version, hsz = h->hdr_size, cell = h->cell_size;
	uint64_t ncells = h->ncells;
	uint32_t max = h->max_msg, flags = h->flags, policy = h->policy;
	struct layout l;
	layout(ncells, flags, &l);
	if (magic != RING_MAGIC)
		return ipcx__fail(-EBADMSG, "ring: bad magic");
	if (version != RING_VERSION)
		return ipcx__fail(-EBADMSG, "ring: version %u, this library reads %u", version,
				  RING_VERSION);
	if (hsz != RING_HDR || cell != RING_CELL || ncells < RING_MIN_CAP / RING_CELL ||
	    (ncells & (ncells - 1)) ||
	    ncells * RING_CELL > RING_MAX_CAP || max == 0 || max > RING_MAX_MSG ||
	    ring_cells_for(max) > ncells / 2 || (flags & ~RING_F_MASK) || policy >= RING_NPOLICY ||
	    ((flags & RING_F_SPSC) && policy == RING_OVERWRITE))
		return ipcx__fail(-EBADMSG, "ring: bad geometry in the header");
	if (h->seq_off != l.seq_off || h->meta_off != l.meta_off || h->crc_off != l.crc_off ||
	    h->data_off != l.data_off || total != l.total || total > size)
		return ipcx__fail(-EBADMSG, "ring: header does not match the segment's size");
	r->h = h;
	r->size = size;
	r->cell = (struct ring_cell *)((uint8_t *)mem + l.seq_off);
	r->crc = (_Atomic uint32_t *)((uint8_t *)mem + l.crc_off);
	r->data = (uint8_t *)mem + l.data_off;
	r->ncells = ncells;
	r->mask = ncells - 1;
	r->max_msg = max;
	r->flags = flags;
	r->policy = (int)policy;
	r->uid = h->uid;
	r->spin_us = RING_DEF_SPIN;
	r->readonly = readonly;
	pthread_once(&fences_once, fences_init);
	return readonly ? 0 : peer_join(r);
}

void ipcx__ring_detach(struct ring *r)
{
	if (!r->h)
		return;
	if (r->reserved && !(r->flags & RING_F_SPSC)) {
		/* The head moved past it: commit it as padding, nobody sees it. */
		atomic_store(metaw(r, r->res_pos), (uint64_t)r->res_cells << 32 | M_PAD);
		atomic_store(seqw(r, r->res_pos), SEQ(r->res_pos, T_COMMITTED));
	}
	r->reserved = false;
	if (r->peeked)
		ipcx__ring_release(r);
	durable(r, true);
	if (r->me >= 0) {
		struct ring_peer *pe = &r->h->peers[r->me];
		if (atomic_exchange(&pe->poller, 0))
			atomic_fetch_sub(&r->h->pollers, 1);
		atomic_store(&pe->armed, 0);
		atomic_store(&pe->owner, 0);
		atomic_store(&pe->start, 0);
		atomic_store(&pe->pid, 0);
		/* Sleepers look for dead peers when they wake: wake them now. */
		atomic_fetch_add(&r->h->rx_seq, 1);
		futex_wake(&r->h->rx_seq);
		atomic_fetch_add(&r->h->tx_seq, 1);
		futex_wake(&r->h->tx_seq);
	}
	ipcx__close_fd(r->bell);
	ipcx__close_fd(r->pokefd);
	r->bell = r->pokefd = -1;
	r->me = -1;
	r->h = NULL;
}

/* ---- validation walk and recovery -------------------------------------------------- */

ssize_t ipcx__ring_check(struct ring *r)
{
	uint64_t rl = atomic_load(&r->h->rel), t = tail_pos(r);
	uint64_t hw = atomic_load(&r->h->head), hd = hw >> 8;
	bool spsc = r->flags & RING_F_SPSC;
	if ((!spsc && (hw & 0xff) > RING_PEERS) || rl > t || t > hd || hd - rl > r->ncells)
		return -EBADMSG;
	ssize_t n = 0;
	uint64_t p = (r->flags & RING_F_SPSC) ? t : rl;
	for (uint64_t i = 0; p < hd; i++) {
		if (i > r->ncells)
			return -EBADMSG;
		uint32_t len;
		uint64_t c;
		enum kind k;
		if (meta_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &k) < 0 ||
		    p + c > hd)
			return -EBADMSG;
		if (!(r->flags & RING_F_SPSC)) {
			uint64_t s = atomic_load(seqw(r, p));
			unsigned tag = SEQTAG(s);
			bool owned = (tag & T_OWNED) && (tag & T_PEER) < RING_PEERS;
			if (SEQPOS(s) != p || !(owned || tag == T_COMMITTED || tag == T_LOST ||
						tag == T_RELEASED))
				return -EBADMSG;
			if (p >= t && tag == T_RELEASED)
				return -EBADMSG;
			n += p >= t && tag == T_COMMITTED && k == K_MSG;
		} else {
			n += k == K_MSG;
		}
		p += c;
	}
	return n;
}

/*
 * Recovery's first step: every other peer is gone (the caller holds an
 * exclusive lock), so their half-done records are repaired as any dead
 * peer's would be, and their slots emptied, counters carried over into the
 * header.
 */
static void recover_peers(struct ring *r)
{
	struct ring_hdr *h = r->h;
	uint64_t sum[3] = { 0, 0, 0 };
	for (unsigned k = 0; k < RING_PEERS; k++) {
		if ((int)k != r->me) { /* dead to peer_alive() from now on */
			atomic_store(&h->peers[k].pid, 0);
			atomic_store(&h->peers[k].start, 0);
		}
	}
	if (r->flags & RING_F_SPSC) {
		spsc_adopt_tx(r);
		spsc_adopt_rx(r);
	} else {
		fix_head(r);
		(void)sweep_walk(r, -1);
	}
	/* Our own slot's counters are its earlier holders': carried over too. */
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &h->peers[k];
		uint64_t pd = atomic_exchange(&pe->pd, 0);
		sum[0] += atomic_exchange(&pe->tx, 0) + pd;
		sum[1] += atomic_exchange(&pe->rx, 0);
		sum[2] += atomic_exchange(&pe->dr, 0) + pd;
		atomic_store(&pe->tx_snap, 0);
		atomic_store(&pe->rx_snap, 0);
		atomic_store(&pe->dr_snap, 0);
		if ((int)k == r->me)
			continue;
		atomic_store(&pe->poller, 0);
		atomic_store(&pe->armed, 0);
		atomic_store(&pe->owner, 0);
	}
	atomic_fetch_add(&h->sent, sum[0]);
	atomic_fetch_add(&h->received, sum[1]);
	atomic_fetch_add(&h->dropped, sum[2]);
	atomic_store(&h->pollers, 0);
	atomic_store(&h->rx_waiters, 0);
	atomic_store(&h->tx_waiters, 0);
}

/*
 * Persistent rings only, with nobody else attached (the caller holds an
 * exclusive lock).  Everything before tail was taken; records from tail on
 * are kept while they are whole, and the log is cut at the first one that
 * is not (a writer killed mid-record, or pages lost in a machine crash).
 * What was cut is counted dropped, so the counters still balance.
 */
ssize_t ipcx__ring_recover(struct ring *r)
{
	struct ring_hdr *h = r->h;
	recover_peers(r);
	uint64_t t = tail_pos(r), hd = atomic_load(&h->head) >> 8;
	if (t > hd || hd - t > r->ncells)
		t = hd;
	atomic_store(&h->rel, t);
	ssize_t kept = 0;
	uint64_t p = t;
	while (p < hd) {
		uint32_t len;
		uint64_t c;
		enum kind k;
		uint64_t s = atomic_load(seqw(r, p));
		if (meta_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &k) < 0 ||
		    p + c > hd)
			break;
		if (!(r->flags & RING_F_SPSC)) {
			unsigned tag = SEQTAG(s);
			if (SEQPOS(s) != p)
				break;
			if (tag != T_COMMITTED && tag != T_LOST)
				atomic_store(seqw(r, p), SEQ(p, T_LOST));
			else if (tag == T_COMMITTED && k == K_MSG && check_crc(r, p, len) < 0)
				break;
			kept += tag == T_COMMITTED && k == K_MSG;
		} else {
			if (k == K_MSG && check_crc(r, p, len) < 0)
				break;
			kept += k == K_MSG;
		}
		p += c;
	}
	/* Forget what lies past the cut, or it would read as committed. */
	for (uint64_t q = p; q < hd && q - p < r->ncells; q++)
		atomic_store(seqw(r, q), 0);
	uint64_t sent = atomic_load(&h->sent), recvd = atomic_load(&h->received);
	uint64_t dropped = atomic_load(&h->dropped);
	if (sent < recvd + dropped + (uint64_t)kept)
		atomic_store(&h->sent, sent = recvd + dropped + (uint64_t)kept);
	else
		atomic_store(&h->dropped, dropped = sent - recvd - (uint64_t)kept);
	/* The SPSC indices' low bytes carry the counters' (see "Counting"). */
	bool spsc = r->flags & RING_F_SPSC;
	atomic_store(&h->tail, t << 8 | (spsc ? (recvd + dropped) & 0xff : 0));
	atomic_store(&h->head, p << 8 | (spsc ? sent & 0xff : 0));
	return kept;
}
