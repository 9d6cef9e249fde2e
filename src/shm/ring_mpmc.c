/*
 * The many-producer many-consumer protocol: taking a record, and freeing
 * what consumers release (ring_mpmc.h; claims, commits and releases are
 * inlined there).
 */
#include "shm/ring_mpmc.h"

void ipcx__ring_advance_rel(struct ring *r)
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

void ipcx__ring_release_at(struct ring *r, uint64_t pos)
{
	publish(seqw(r, pos), SEQ(pos, T_RELEASED));
	ipcx__ring_advance_rel(r);
}

int ipcx__ring_mpmc_take(struct ring *r, size_t cap, bool look, uint64_t *pos, uint32_t *lenp,
			 uint64_t *cellsp)
{
	for (;;) {
		/*
		 * Only the tail and the cell are read: a spinning consumer leaves
		 * the producers' head line alone.  Whether "not committed" means
		 * empty or a corrupt index is decided off the fast path
		 * (ipcx__ring_check_indices, when a wait begins).
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
		if (look && deliver && check_crc(r, t, len) == 0) {
			/* Read ahead: a whole message stays where it is, untaken. */
			*pos = t;
			*lenp = len;
			*cellsp = c;
			return 0;
		}
		unsigned mine = (deliver ? T_READING : T_SKIPPING) | (unsigned)r->me;
		if (!atomic_compare_exchange_strong(seqw(r, t), &s, SEQ(t, mine)))
			continue;
		CRASH(deliver ? CP_TAKEN : CP_SKIPPING);
		atomic_store_explicit(&r->h->tail, (t + c) << 8, REL);
		if (!deliver) {
			ipcx__ring_release_at(r, t);
			continue;
		}
		CRASH(CP_TAIL_MOVED);
		/* (A look comes here only for a damaged record: it goes as any would.) */
		if (look || check_crc(r, t, len) < 0) {
			drop_taken(r, t);
			continue;
		}
		*pos = t;
		*lenp = len;
		*cellsp = c;
		return 0;
	}
}
