/*
 * The broadcast ring, subscribing side (ring_bcast.h describes the
 * protocol): joining at the head or up to N messages back, reading records
 * from our own cursor like a seqlock, jumping over what was overwritten
 * (counting it lost), and the zero-copy peek/release, of one message or
 * of a batch (ipcx_peekv/ipcx_releasev).
 */
#include "shm/ring_bcast.h"

#include "shm/ring_bell.h"
#include "shm/ring_ops.h"

/* ---- our cursor ----------------------------------------------------------------------- */

/*
 * A publisher waits (block) for the slowest subscriber, and it does not
 * move rel while it sleeps: wake it when our cursor crosses an eighth of
 * the ring past rel, or reaches the head (we read everything).  So each
 * subscriber wakes it at most twice a sleep, instead of a system call for
 * every message of every subscriber; one that was not the slowest wakes it
 * for nothing, and it sleeps again.
 */
static bool worth_waking(const struct ring *r, uint64_t from, uint64_t to)
{
	uint64_t rl = atomic_load_explicit(&r->h->rel, ACQ), step = r->ncells / 8;
	uint64_t hd = atomic_load_explicit(&r->h->head, ACQ) >> 8;
	return from >= rl && ((from - rl < step && to - rl >= step) || (from < hd && to >= hd));
}

/*
 * Move past what we have read or skipped.  Release: the publishers (block)
 * may reuse the cells behind the cursor only after our reads of them.
 */
static void advance(struct ring *r, uint64_t pos)
{
	uint64_t from = r->bc_pos;
	r->bc_pos = pos;
	/* Then the look at tx_waiters: the wake-up handshake (ring_wait.h, publish()). */
	publish(&me_peer(r)->cursor, pos);
	if (atomic_load_explicit(&r->h->tx_waiters, RELAXED) && worth_waking(r, from, pos)) {
		atomic_fetch_add(&r->h->tx_seq, 1);
		futex_wake(&r->h->tx_seq);
	}
}

/* n messages we will never see: lost.  One writer, a plain store. */
static void count_lost(struct ring *r, uint64_t n)
{
	_Atomic uint64_t *dr = &me_peer(r)->dr;
	atomic_store_explicit(dr, atomic_load_explicit(dr, RELAXED) + n, REL);
	r->bc_no += n;
}

/* ---- joining -------------------------------------------------------------------------- */

/*
 * The first record, walking from rel, whose number is at least want; hp
 * and n (the head and its number) when there is none.  In drop mode the
 * walk races with publishers: each record is read like a seqlock and the
 * walk starts again from rel when one changed under it.
 */
static int find_start(struct ring *r, uint64_t want, uint64_t hp, uint64_t n, uint64_t *pos,
		      uint64_t *no)
{
	*pos = hp;
	*no = n;
	for (int tries = 0; tries < 64; tries++) {
		uint64_t p = atomic_load_explicit(&r->h->rel, ACQ);
		bool again = false;
		for (uint64_t i = 0; p < hp && !again; i++) {
			uint64_t s = atomic_load_explicit(seqw(r, p), ACQ);
			uint32_t len;
			uint64_t c;
			enum kind k;
			int d = bc_decode(r, p, atomic_load_explicit(metaw(r, p), RELAXED), &len, &c, &k);
			uint64_t q = bc_no_at(r, p);
			atomic_thread_fence(memory_order_acquire);
			bool same = atomic_load_explicit(seqw(r, p), RELAXED) == s;
			if (!same || SEQPOS(s) != p) {
				again = true; /* retired under us (drop) */
				break;
			}
			if (d < 0 || i > r->ncells || p + c > hp || q > n)
				return ipcx__fail(-EBADMSG, "broadcast ring: bad record at %llu",
						  (unsigned long long)p);
			if (k == K_MSG && q >= want) {
				*pos = p;
				*no = q;
				return 0;
			}
			p += c;
		}
		if (!again)
			return 0;
	}
	return 0; /* overwritten faster than we can walk: start at the head */
}

/*
 * Block: the head is owned while we choose where to start, so no publisher
 * moves rel past our start before our cursor holds it.  Drop: our cursor
 * holds nothing back; a consistent (head, next_no) is enough.  A claim owns
 * the head for a few stores (a dead owner is undone by the wait's repair):
 * a second of waiting means a scribbled head.
 */
static int join_point(struct ring *r, uint64_t *hp, uint64_t *n, bool *owned)
{
	struct wait w = { 0 };
	for (;;) {
		int e;
		if (r->policy == RING_BLOCK) {
			e = ipcx__bcast_own_head(r, hp);
			*owned = e == 0;
			if (e == 0)
				*n = atomic_load_explicit(&r->h->next_no, ACQ);
		} else {
			e = bc_head_snapshot(r, hp, n) ? 0 : -EBUSY;
		}
		if (e == 0)
			return 0;
		e = ring_wait(r, &w, 1000, false, true, 0);
		if (e)
			return e == -ETIMEDOUT ? ipcx__fail(-EBADMSG, "broadcast ring: its head stays "
							    "owned by a live process")
					       : e;
	}
}

int ipcx__bcast_subscribe(struct ring *r, uint64_t history)
{
	if (r->bc_sub)
		return 0;
	if (r->me < 0)
		return -EBADF;
	uint64_t hp = 0, n = 0, pos, no;
	bool owned = false;
	int e = join_point(r, &hp, &n, &owned);
	if (e)
		return e;
	e = find_start(r, history < n ? n - history : 0, hp, n, &pos, &no);
	if (e == 0) {
		struct ring_peer *pe = me_peer(r);
		/* Our counters are this subscription's: they start at 0. */
		atomic_store(&pe->rx, 0);
		atomic_store(&pe->dr, 0);
		atomic_store(&pe->base, no);
		atomic_store(&pe->cursor, pos);
		atomic_store(&pe->sub, 1);
		r->bc_sub = true;
		r->bc_pos = pos;
		r->bc_no = no;
	}
	if (owned)
		ipcx__bcast_free_head(r, hp);
	return e;
}

/* ---- reading ------------------------------------------------------------------------ */

/*
 * Our cursor is behind rel: what was there has been overwritten (drop).
 * Go to the oldest record still whole and count as lost the numbers in
 * between.  -EBUSY: nothing settled to jump to yet.
 */
static int jump(struct ring *r)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t rl = atomic_load_explicit(&r->h->rel, ACQ), no, hp, n;
		if (rl <= r->bc_pos)
			return 0; /* not behind (any more) */
		uint64_t s = atomic_load_explicit(seqw(r, rl), ACQ);
		if (bc_readable(s, rl)) {
			no = bc_no_at(r, rl);
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(seqw(r, rl), RELAXED) != s)
				continue;
		} else if (bc_head_snapshot(r, &hp, &n) && hp == rl) {
			no = n; /* nothing left at all: everything we missed is gone */
		} else {
			continue; /* a record being written at rel, or rel moving */
		}
		if (atomic_load_explicit(&r->h->rel, ACQ) != rl)
			continue;
		if (no < r->bc_no)
			return ipcx__fail(-EBADMSG, "broadcast ring: message %llu at rel, %llu was due",
					  (unsigned long long)no, (unsigned long long)r->bc_no);
		count_lost(r, no - r->bc_no);
		advance(r, rl);
		return 0;
	}
	return -EBUSY;
}

/*
 * Nothing readable at our cursor p (seq s): 1 if we were overtaken (jump),
 * -EAGAIN (nothing published there yet), -EBUSY (being written), -EBADMSG.
 */
static int not_readable(struct ring *r, uint64_t p, uint64_t s)
{
	if (p < atomic_load_explicit(&r->h->rel, ACQ))
		return 1;
	uint64_t hd = atomic_load_explicit(&r->h->head, ACQ) >> 8;
	if (p >= hd)
		return p == hd ? -EAGAIN
			       : ipcx__fail(-EBADMSG, "broadcast ring: cursor past the head");
	/* The record at p was claimed before the head passed it: look again. */
	uint64_t s2 = atomic_load_explicit(seqw(r, p), ACQ);
	if (s2 != s || (SEQPOS(s2) == p && (SEQTAG(s2) & T_OWNED) == T_CLAIMED))
		return -EBUSY;
	if (p < atomic_load_explicit(&r->h->rel, ACQ))
		return 1;
	return ipcx__fail(-EBADMSG, "broadcast ring: no record where one should start (%llu)",
			  (unsigned long long)p);
}

/*
 * The next message at our cursor: 0 with its length and cells (r->bc_seq
 * holds its seq word), after skipping pads and lost records and jumping
 * over what was overwritten; -EAGAIN, -EBUSY, -EMSGSIZE or -EBADMSG.
 */
static int take(struct ring *r, size_t cap, uint32_t *lenp, uint64_t *cellsp)
{
	for (uint64_t i = 0; i <= 2 * r->ncells + 64; i++) {
		uint64_t p = r->bc_pos;
		uint64_t s = atomic_load_explicit(seqw(r, p), ACQ);
		if (!bc_readable(s, p)) {
			int e = not_readable(r, p, s);
			if (e == 1 && (e = jump(r)) == 0)
				continue;
			return e;
		}
		uint32_t len;
		uint64_t c;
		enum kind k;
		int d = bc_decode(r, p, atomic_load_explicit(metaw(r, p), RELAXED), &len, &c, &k);
		uint64_t no = bc_no_at(r, p);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(seqw(r, p), RELAXED) != s) {
			int e = jump(r); /* overwritten while we looked */
			if (e)
				return e;
			continue;
		}
		if (d < 0 || no != r->bc_no)
			return ipcx__fail(-EBADMSG, "broadcast ring: bad record at %llu",
					  (unsigned long long)p);
		if (k == K_MSG && SEQTAG(s) == T_COMMITTED) {
			if (len > cap)
				return -EMSGSIZE;
			r->bc_seq = s;
			*lenp = len;
			*cellsp = c;
			return 0;
		}
		if (k == K_MSG)
			count_lost(r, 1); /* its publisher died before it was whole */
		advance(r, p + c);
	}
	return -EBUSY;
}

/* Still the record we took?  (Drop: it may have been overwritten since.) */
static bool still_there(const struct ring *r)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(seqw(r, r->bc_pos), RELAXED) == r->bc_seq;
}

static void delivered(struct ring *r, uint64_t cells)
{
	bump(&me_peer(r)->rx);
	r->bc_no++;
	advance(r, r->bc_pos + cells);
	after_take(r);
}

static int take_wait(struct ring *r, size_t cap, int timeout_ms, uint32_t *len, uint64_t *cells,
		     bool *waited)
{
	if (r->me < 0)
		return -EBADF;
	if (r->reserved || r->peeked)
		return ipcx__fail(-EBUSY, "a reserved or peeked message is not finished");
	int e = ipcx__bcast_subscribe(r, 0);
	struct wait w = { 0 };
	while (e == 0) {
		e = take(r, cap, len, cells);
		if (e != -EAGAIN && e != -EBUSY)
			break;
		*waited = true;
		e = ring_wait(r, &w, timeout_ms, true, e == -EBUSY, 0);
		if (e && r->bell >= 0)
			ipcx__ring_rearm(r);
	}
	return e;
}

ssize_t ipcx__bcast_recv(struct ring *r, void *buf, size_t cap, int timeout_ms)
{
	for (;;) {
		uint32_t len;
		uint64_t cells;
		bool waited = false;
		int e = take_wait(r, cap, timeout_ms, &len, &cells, &waited);
		if (e)
			return e;
		/* Copied, then checked: a copy of an overwritten record is not delivered. */
		if (len <= RING_CELL - BCAST_HDR)
			copy_small(buf, bc_payload(r, r->bc_pos), len);
		else
			memcpy(buf, bc_payload(r, r->bc_pos), len);
		if (still_there(r)) {
			delivered(r, cells);
			return len;
		}
		if ((e = jump(r)) != 0)
			return e;
	}
}

ssize_t ipcx__bcast_peek(struct ring *r, int timeout_ms, const void **msg)
{
	uint32_t len;
	uint64_t cells;
	bool waited = false;
	int e = take_wait(r, SIZE_MAX, timeout_ms, &len, &cells, &waited);
	if (e)
		return e;
	r->peeked = true;
	r->peek_pos = r->bc_pos;
	r->peek_cells = cells;
	*msg = bc_payload(r, r->bc_pos);
	return len;
}

/*
 * In drop mode a publisher may overwrite a peeked record while it is held:
 * the release then says so (-ESTALE) and it is counted lost, not received.
 */
int ipcx__bcast_release(struct ring *r)
{
	if (!r->peeked || r->bv_n)
		return ipcx__fail(-EINVAL, r->peeked ? "a batch (ipcx_peekv) is let go of with "
							"ipcx_releasev"
						      : "release without peek");
	r->peeked = false;
	if (still_there(r)) {
		delivered(r, r->peek_cells);
		return 0;
	}
	int e = jump(r);
	after_take(r);
	return e ? e : ipcx__fail(-ESTALE, "broadcast ring: the message was overwritten while held");
}

/* ---- batches in place ----------------------------------------------------------------- */

/*
 * The committed message at p, right behind the last one of a batch (number
 * no): 0 with its length and cells, 1 for a pad to step over (its cells),
 * or -EAGAIN: anything else (nothing there yet, being written, overwritten
 * under us, a record a dead publisher left, or one that is malformed) ends
 * the batch, and the next receive meets it through take(), which knows
 * what to do with each.  Read like a seqlock, as take() does.
 */
static int batch_next(const struct ring *r, uint64_t p, uint64_t no, uint32_t *lenp,
		      uint64_t *cellsp)
{
	uint64_t s = atomic_load_explicit(seqw(r, p), ACQ);
	if (SEQPOS(s) != p || SEQTAG(s) != T_COMMITTED)
		return -EAGAIN;
	uint32_t len = 0;
	uint64_t c = 0;
	enum kind k = K_MSG;
	int d = bc_decode(r, p, atomic_load_explicit(metaw(r, p), RELAXED), &len, &c, &k);
	uint64_t q = bc_no_at(r, p);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(seqw(r, p), RELAXED) != s || d < 0 || q != no)
		return -EAGAIN;
	*lenp = len;
	*cellsp = c;
	return k == K_PAD;
}

/*
 * Up to n (at most RING_BATCH_MAX) messages from our cursor, in place.  The
 * first as a peek takes it (waiting, jumping, skipping); the others in one
 * walk over the records' own seq words, as take() reads them: not the
 * head, whose cache line the publishers write at every claim (with a load
 * of it per batch, a publisher's CPU per message in ipcx bench's "4 subs
 * b64" rows was 158-339 ns, without it 141-145 ns).  Nothing in the
 * segment moves: our cursor, counters and the publishers' wake-up wait
 * for ipcx__bcast_releasev, once for the whole batch.
 */
ssize_t ipcx__bcast_peekv(struct ring *r, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	uint32_t len;
	uint64_t cells;
	bool waited = false;
	int e = take_wait(r, SIZE_MAX, timeout_ms, &len, &cells, &waited);
	if (e)
		return e;
	uint64_t p = r->bc_pos;
	uint32_t k = 0;
	if (n > RING_BATCH_MAX)
		n = RING_BATCH_MAX;
	/*
	 * We waited for it: we had read everything, and the next record is most
	 * likely the one a publisher is writing now.  Looking at it would take
	 * its cache line from under the publisher: a batch of one.  (Before
	 * this, with one subscriber keeping up, a driver's publisher spent
	 * 108-110 ns of CPU per message against 96-100 ns for one-by-one
	 * receives; what this gains was lost in the noise of the runs since,
	 * and the bench's one-subscriber batched row stayed slower:
	 * docs/pubsub.md.)
	 */
	if (waited)
		n = 1;
	for (;;) {
		msgs[k] = (struct ipcx_msg){ .buf = bc_payload(r, p), .cap = len, .len = len };
		r->bv[k].pos = p;
		p += cells;
		r->bv[k++].end = p;
		/* A pad is followed by a record (one pad a lap): a second one ends the batch. */
		e = k < n ? batch_next(r, p, r->bc_no + k, &len, &cells) : -EAGAIN;
		if (e == 1) {
			p += cells;
			e = batch_next(r, p, r->bc_no + k, &len, &cells);
		}
		if (e != 0)
			break;
	}
	r->peeked = true;
	r->bv_n = k;
	return k;
}

/*
 * Take the first n of the batch: each is checked as a release checks one
 * (its seq word still says COMMITTED at its position: drop mode may have
 * overwritten it while held), the first that is not ends the taking there,
 * and we jump as take() does.  One store of the cursor, one of rx, one
 * look at whether a publisher waits.
 */
ssize_t ipcx__bcast_releasev(struct ring *r, size_t n)
{
	if (!r->peeked || !r->bv_n)
		return ipcx__fail(-EINVAL, r->peeked ? "a single peek is let go of with ipcx_release"
						      : "release without peek");
	if (n > r->bv_n)
		return ipcx__fail(-EINVAL, "release of %zu messages, %u were peeked", n, r->bv_n);
	r->peeked = false;
	r->bv_n = 0;
	if (n == 0) {
		after_take(r);
		return 0;
	}
	atomic_thread_fence(memory_order_acquire);
	size_t whole = 0;
	while (whole < n && atomic_load_explicit(seqw(r, r->bv[whole].pos), RELAXED) ==
				    SEQ(r->bv[whole].pos, T_COMMITTED))
		whole++;
	int e = 0;
	if (whole) {
		_Atomic uint64_t *rx = &me_peer(r)->rx;
		atomic_store_explicit(rx, atomic_load_explicit(rx, RELAXED) + whole, REL);
		r->bc_no += whole;
		advance(r, r->bv[whole - 1].end);
	}
	if (whole < n)
		e = jump(r);
	after_take(r);
	if (whole)
		return (ssize_t)whole;
	return e ? e : ipcx__fail(-ESTALE, "broadcast ring: the batch was overwritten while held");
}

/*
 * Only compared, never used as an index: a scribbled cursor makes a waiting
 * subscriber yield its core more often, nothing else.
 */
bool ipcx__bcast_others_behind(struct ring *r)
{
	uint64_t hd = atomic_load_explicit(&r->h->head, RELAXED) >> 8;
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		if ((int)k != r->me && atomic_load_explicit(&pe->sub, RELAXED) &&
		    atomic_load_explicit(&pe->cursor, RELAXED) < hd)
			return true;
	}
	return false;
}

bool ipcx__bcast_has_msg(struct ring *r)
{
	if (!r->bc_sub)
		return false;
	uint64_t p = r->bc_pos;
	return bc_readable(atomic_load(seqw(r, p)), p) || p < atomic_load(&r->h->rel);
}
