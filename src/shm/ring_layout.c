/*
 * The segment: its layout, formatting a new ring, attaching to one (where
 * the geometry is read once and checked), detaching, and the walk that
 * validates the shared state (ring.h).
 */
#include "shm/ring_bcast.h"
#include "shm/ring_ops.h"
#include "shm/ring_peer.h"
#include "shm/ring_wait.h"

#include <sys/random.h>

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
	    ((flags & RING_F_SPSC) && policy == RING_OVERWRITE) ||
	    ((flags & RING_F_BCAST) && !ipcx__bcast_geom_ok(ncells, max, flags, policy)))
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
	r->persistent = flags & RING_F_BCAST; /* its peers come and go: never -EPIPE */
	ipcx__ring_fences_init();
	return readonly ? 0 : ipcx__ring_peer_join(r);
}

void ipcx__ring_detach(struct ring *r)
{
	if (!r->h)
		return;
	if (r->flags & RING_F_BCAST)
		ipcx__bcast_detach(r);
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
		atomic_store(&pe->receiver, 0);
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

/* ---- the validation walk ------------------------------------------------------------- */

ssize_t ipcx__ring_check(struct ring *r)
{
	if (r->flags & RING_F_BCAST)
		return ipcx__bcast_check(r);
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
