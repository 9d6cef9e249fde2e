/*
 * The broadcast ring and dead peers (ring_bcast.h): a publisher killed while
 * it owned the head or wrote a record, a subscriber killed while its cursor
 * held back a block-mode publisher; and the checks of the shared indices.
 */
#include "shm/ring_bcast.h"

#include "shm/ring_bell.h"
#include "shm/ring_peer.h"

/*
 * What a claimant that died owning the head had begun at hp (a pad, its
 * record): forgotten, and next_no put back if it had taken a number.  Only
 * the owner of the head writes at or past it, and we own it now, so any
 * CLAIMED record there is the dead claimant's.
 */
static void forget_claim(struct ring *r, uint64_t hp)
{
	uint64_t p = hp;
	for (int i = 0; i < 2; i++) {
		uint64_t s = atomic_load(seqw(r, p));
		uint32_t len;
		uint64_t c;
		enum kind k;
		if (SEQPOS(s) != p || (SEQTAG(s) & T_OWNED) != T_CLAIMED)
			return;
		bool ok = bc_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &k) == 0;
		if (ok && k == K_MSG) {
			uint64_t n = bc_no_at(r, p);
			if (atomic_load(&r->h->next_no) == n + 1)
				atomic_store(&r->h->next_no, n);
		}
		atomic_store(seqw(r, p), SEQ(p, 0));
		if (!ok || k != K_PAD)
			return;
		p += c;
	}
}

/* The head's owner is dead: take the head over, undo its claim, give the head back. */
static void fix_head(struct ring *r)
{
	uint64_t hw = atomic_load(&r->h->head);
	unsigned o = (unsigned)(hw & 0xff);
	if (!o || o > RING_PEERS || r->me < 0 || (int)o - 1 == r->me ||
	    ipcx__ring_peer_alive(r, o - 1))
		return;
	if (!atomic_compare_exchange_strong(&r->h->head, &hw, (hw & ~0xffull) | (uint64_t)(r->me + 1)))
		return;
	forget_claim(r, hw >> 8);
	ipcx__bcast_free_head(r, hw >> 8);
}

/* A dead publisher's record at pos (behind the head): published if it counted it, else lost. */
static void fix_record(struct ring *r, uint64_t pos)
{
	uint64_t s = atomic_load(seqw(r, pos));
	unsigned k = SEQTAG(s) & T_PEER;
	uint32_t len;
	uint64_t c;
	enum kind kd;
	if (SEQPOS(s) != pos || (SEQTAG(s) & T_OWNED) != T_CLAIMED || k >= RING_PEERS ||
	    (int)k == r->me || pos >= atomic_load(&r->h->head) >> 8 ||
	    ipcx__ring_peer_alive(r, k) ||
	    bc_decode(r, pos, atomic_load(metaw(r, pos)), &len, &c, &kd) < 0)
		return;
	struct ring_peer *pe = &r->h->peers[k];
	uint64_t tx = atomic_load(&pe->tx), txs = atomic_load(&pe->tx_snap);
	if (atomic_load(seqw(r, pos)) != s)
		return; /* still k's (its slot is swept before reuse), so were the counters */
	uint64_t to = SEQ(pos, T_COMMITTED);
	if (kd == K_MSG && tx != txs + 1) {
		/* It died before counting the message: published (so counted) and lost. */
		atomic_compare_exchange_strong(&pe->tx, &txs, txs + 1);
		to = SEQ(pos, T_LOST);
	}
	if (atomic_compare_exchange_strong(seqw(r, pos), &s, to))
		notify_rx(r);
}

/* Block: subscribers that died where they hold the publishers back stop counting. */
static void release_dead_subs(struct ring *r)
{
	uint64_t hp = atomic_load(&r->h->head) >> 8, rl = atomic_load(&r->h->rel), m;
	if (ipcx__bcast_min_cursor(r, rl, hp, &m) < 0)
		return;
	bool freed = false;
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		uint32_t one = 1;
		if ((int)k != r->me && atomic_load(&pe->sub) && atomic_load(&pe->cursor) == m &&
		    !ipcx__ring_peer_alive(r, k))
			freed |= atomic_compare_exchange_strong(&pe->sub, &one, 0);
	}
	if (freed) {
		atomic_fetch_add(&r->h->tx_seq, 1);
		futex_wake(&r->h->tx_seq);
	}
}

void ipcx__bcast_repair(struct ring *r)
{
	fix_head(r);
	fix_record(r, atomic_load(&r->h->rel));
	if (r->bc_sub)
		fix_record(r, r->bc_pos);
	if (r->policy == RING_BLOCK)
		release_dead_subs(r);
}

/*
 * Before dead slot k is taken again: its subscription ends, and every
 * record it was writing is published or lost (else the new holder would
 * look like their writer).  One walk from rel to the head; false if the
 * ring moved under every try.
 */
bool ipcx__bcast_sweep_dead(struct ring *r, unsigned k)
{
	atomic_store(&r->h->peers[k].sub, 0);
	fix_head(r);
	for (int tries = 0; tries < 8; tries++) {
		uint64_t p = atomic_load(&r->h->rel), hd = atomic_load(&r->h->head) >> 8;
		bool left = false, moved = false;
		for (uint64_t i = 0; p < hd && !moved; i++) {
			uint64_t s = atomic_load(seqw(r, p));
			uint32_t len;
			uint64_t c;
			enum kind kd;
			if (SEQPOS(s) == p && SEQTAG(s) == (T_CLAIMED | k)) {
				fix_record(r, p);
				left |= atomic_load(seqw(r, p)) == s;
			}
			moved = i > r->ncells || SEQPOS(s) != p ||
				bc_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &kd) < 0;
			p += moved ? 0 : c;
		}
		if (!moved)
			return !left;
	}
	return false;
}

int ipcx__bcast_check_indices(struct ring *r)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rl = atomic_load(&r->h->rel), hw = atomic_load(&r->h->head), hd = hw >> 8;
		if (atomic_load(&r->h->rel) != rl || atomic_load(&r->h->head) != hw)
			continue; /* words that only grow, read the same twice: a consistent view */
		bool ok = (hw & 0xff) <= RING_PEERS && rl <= hd && hd - rl <= r->ncells &&
			  atomic_load(&r->h->tail) == 0 && (!r->bc_sub || r->bc_pos <= hd);
		return ok ? 0 : ipcx__fail(-EBADMSG, "broadcast ring: indices out of order");
	}
	return 0; /* never still: a busy ring, not a broken one */
}

ssize_t ipcx__bcast_check(struct ring *r)
{
	uint64_t rl = atomic_load(&r->h->rel), hw = atomic_load(&r->h->head), hd = hw >> 8;
	if ((hw & 0xff) > RING_PEERS || rl > hd || hd - rl > r->ncells ||
	    atomic_load(&r->h->next_no) < (hd > rl ? 1 : 0))
		return -EBADMSG;
	ssize_t n = 0;
	uint64_t p = rl, prev = 0;
	for (uint64_t i = 0; p < hd; i++) {
		uint64_t s = atomic_load(seqw(r, p));
		unsigned tag = SEQTAG(s);
		uint32_t len;
		uint64_t c;
		enum kind k;
		bool claimed = (tag & T_OWNED) == T_CLAIMED && (tag & T_PEER) < RING_PEERS;
		if (i > r->ncells || SEQPOS(s) != p || !(claimed || bc_readable(s, p)) ||
		    bc_decode(r, p, atomic_load(metaw(r, p)), &len, &c, &k) < 0 || p + c > hd)
			return -EBADMSG;
		uint64_t no = bc_no_at(r, p);
		if (no >= atomic_load(&r->h->next_no) || (i && no < prev))
			return -EBADMSG;
		prev = no;
		n += tag == T_COMMITTED && k == K_MSG;
		p += c;
	}
	return n;
}
