/*
 * The shared-memory message ring behind shm:, sysvshm: and mmap:.
 *
 * The ring lives in a segment that every attached process maps; nothing in
 * it is trusted.  Geometry is read once at attach, checked, and kept in the
 * process-local struct ring; every index and length read later from the
 * segment is checked against that local copy before use (-EBADMSG).
 * docs/shm.md describes the layout and the protocol.
 */
#ifndef IPCX_SHM_RING_H
#define IPCX_SHM_RING_H

#include "core/url.h"
#include "ipcx.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RING_MAGIC   0x474e495258435049ull /* "IPCXRING" little-endian */
/* 4: every ring's receivers arm rx_armed before they sleep, and a committer
 * wakes only an armed sleeper (ring_bell.h); a version 3 sleeper would not
 * arm, and sleep until its 100 ms look, so the versions do not mix. */
#define RING_VERSION 4u
#define RING_PEERS   64u   /* processes (channels) attached at once */
#define RING_CELL    64u   /* bytes per cell: the unit of allocation */
#define RING_BATCH_MAX 64u  /* messages a batch peeked in place (ipcx_peekv) holds at most */
#define RING_HDR     16384u /* header bytes, page-aligned data after it */

#define RING_MIN_CAP   (4u * RING_CELL) /* 256 B: a request/response ring of small messages */
#define RING_MAX_CAP   (1ull << 34)
#define RING_MAX_MSG   (1u << 30)
#define RING_DEF_CAP   (1u << 20)
#define RING_DEF_MAX   (64u << 10)
#define RING_DEF_SPIN  20u /* microseconds of spinning before a futex sleep */

/* Header flags, fixed at creation. */
#define RING_F_SPSC 0x1u /* one producer, one consumer: no CAS on the fast path */
#define RING_F_CRC  0x2u /* records carry a CRC32C (the mmap: log) */
#define RING_F_BCAST 0x4u /* broadcast: every subscriber reads every message (ring_bcast.h) */
#define RING_F_MASK (RING_F_SPSC | RING_F_CRC | RING_F_BCAST)

enum ring_policy { RING_BLOCK, RING_DROP, RING_OVERWRITE, RING_NPOLICY };

#define RING_LINE 128 /* two cache lines: no false sharing with the prefetcher */

/*
 * One attached channel.  A slot is claimed with a CAS on pid.  Its counters
 * (many-producer rings only) are cumulative over every process that held the
 * slot: written by the holder alone while it lives, so a plain store counts,
 * and by whoever repairs its records once it is dead.  The *_snap words hold
 * tx, rx and dr as they were when the holder took the record it owns now,
 * so that a repairer can tell whether the holder counted that record before
 * it died (ring_int.h, "Counting").
 */
struct ring_peer {
	_Alignas(RING_LINE) _Atomic uint32_t pid;
	_Atomic uint32_t poller; /* it has a doorbell socket */
	_Atomic uint32_t armed;  /* poke its doorbell on the next commit */
	_Atomic uint32_t owner;  /* the listener that created the ring */
	_Atomic uint64_t start; /* process start time (clock ticks since boot) */
	_Atomic uint64_t tx;  /* messages committed (or lost by a dying producer) */
	_Atomic uint64_t rx;  /* messages delivered */
	_Atomic uint64_t dr;  /* messages taken off the ring undelivered */
	_Atomic uint64_t pd;  /* messages refused by policy=drop: sent and dropped */
	_Atomic uint64_t tx_snap, rx_snap, dr_snap;
	/*
	 * It has received (or read ahead): a consumer.  In
	 * what was padding, so rings made before it read 0 here.
	 */
	_Atomic uint32_t receiver;
	/*
	 * Broadcast rings (ring_bcast.h): the slot is a subscriber (sub), reading
	 * at cell cursor; the message it started at was number base, so it
	 * has passed base + rx + dr of them (rx received, dr lost).  In what
	 * was padding: rings of other kinds leave them zero.
	 */
	_Atomic uint32_t sub;
	_Atomic uint64_t cursor, base;
};

struct ring_hdr {
	/* Fixed at creation; read once at attach and checked. */
	uint64_t magic;
	uint32_t version, hdr_size;
	uint64_t total_size, uid;
	uint32_t cell_size, ncells, max_msg, flags, policy, pad0;
	uint64_t seq_off, meta_off, crc_off, data_off;
	_Atomic uint32_t ready; /* set last by the creator */
	_Atomic uint32_t kept;  /* its listener closed with keep=1: not stale */
	/* Read on every commit, written only by sleepers and pollers. */
	_Alignas(RING_LINE) _Atomic uint32_t rx_waiters;
	_Atomic uint32_t pollers;
	/*
	 * head: pos << 8 | claiming peer + 1 (MPMC), pos << 8 | sent & 0xff (SPSC).
	 * tail: pos << 8 (MPMC), pos << 8 | (received + dropped) & 0xff (SPSC).
	 * sent, received, dropped: the SPSC producer's and consumer's counters
	 * (one writer each); for MPMC rings only what recovery carried over.
	 */
	_Alignas(RING_LINE) _Atomic uint64_t head;
	_Atomic uint64_t sent;
	_Alignas(RING_LINE) _Atomic uint64_t tail; /* next record to take */
	_Atomic uint64_t received;
	_Alignas(RING_LINE) _Atomic uint64_t rel; /* everything before it is free */
	_Alignas(RING_LINE) _Atomic uint32_t rx_seq; /* futex: a record was committed */
	_Alignas(RING_LINE) _Atomic uint32_t tx_seq; /* futex: room was made */
	_Atomic uint32_t tx_waiters;
	_Alignas(RING_LINE) _Atomic uint64_t dropped;
	_Atomic uint32_t attached_ever;
	_Alignas(RING_LINE) struct ring_peer peers[RING_PEERS];
	/* Broadcast rings only (ring_bcast.h); zero in the others. */
	_Alignas(RING_LINE) _Atomic uint64_t next_no; /* number of the next message claimed */
	_Atomic uint32_t life; /* who may remove the name: see ring_bcast.c */
	_Atomic uint32_t rx_armed; /* (every ring) a receiver sleeps and wants the next commit's wake */
};

_Static_assert(sizeof(struct ring_hdr) <= RING_HDR, "ring header too large");
_Static_assert(sizeof(struct ring_peer) == RING_LINE, "a peer slot's layout is part of the format");

/* The per-cell words; only the cell where a record starts uses them. */
struct ring_cell {
	_Atomic uint64_t seq;  /* pos << 8 | state */
	_Atomic uint64_t meta; /* cells << 32 | len (or PAD) */
};

/* Creation parameters (URL options, parsed by ringchan.c). */
struct ring_geom {
	uint64_t capacity; /* data bytes, a power of two */
	uint32_t max_msg;
	uint32_t flags;
	int policy;
	unsigned spin_us;
	/* Broadcast rings, per channel: subscribe at open, starting history messages back. */
	bool sub;
	uint64_t history;
};

/* The process-local view of a ring.  Nothing here is shared. */
struct ring {
	struct ring_hdr *h;
	struct ring_cell *cell;
	_Atomic uint32_t *crc;
	uint8_t *data;
	size_t size; /* bytes mapped */
	uint64_t ncells, mask;
	uint32_t max_msg, flags;
	int policy;
	int me; /* our peer slot, -1 if none */
	bool persistent; /* never -EPIPE: the mmap: log outlives its peers */
	bool readonly;
	unsigned spin_us;
	int durability; /* mmap: 0 none, 1 batch, 2 always */
	uint64_t uid;   /* names the doorbell sockets */
	uint64_t cached_rel, cached_head; /* SPSC: the other side's index */
	/* A reserved (zero-copy write) or peeked (zero-copy read) record. */
	bool reserved, peeked;
	bool adopted_tx, adopted_rx; /* SPSC: took over from an earlier producer / consumer */
	bool receiving; /* our slot says we are a consumer (ring_peer.receiver) */
	uint64_t res_pos, res_pad, peek_pos, peek_cells;
	uint32_t res_cells;
	/* The pollable descriptor, made on first use (ipcx_fileno). */
	int bell, pokefd;
	uint32_t batch; /* mmap: commits since the last sync */
	_Atomic uint32_t nsend; /* sends, for the -EPIPE check on one in 1024 */
	/* When a wait last looked for dead peers (ring_wait.c): at most once
	 * in CHECK_NS across the waits of this channel. */
	int64_t checked_at;
	/*
	 * Called after every futex sleep, before the segment is touched again:
	 * 0, or an error if another process cut the segment short meanwhile
	 * (ringchan.c; NULL: nobody looks).
	 */
	int (*whole)(struct ring *r);
	/*
	 * A broadcast ring's subscriber (ring_bcast.h): the next record's cell and
	 * the number of the next message; a peeked record's seq word.
	 */
	bool bc_sub;
	uint64_t bc_pos, bc_no, bc_seq;
	/*
	 * A batch peeked in place (ipcx_peekv, broadcast rings): how many, and
	 * each record's position and the cell after it.  0 while none is held
	 * (a single peek is peek_pos/peek_cells).
	 */
	uint32_t bv_n;
	struct { uint64_t pos, end; } bv[RING_BATCH_MAX];
};

/* Cells a message of len bytes takes (an empty one takes one). */
static inline uint64_t ring_cells_for(uint64_t len)
{
	return len ? (len + RING_CELL - 1) / RING_CELL : 1;
}

/* Bytes a segment needs for this geometry. */
uint64_t ipcx__ring_size(const struct ring_geom *g);

/* Lay out a new ring in mem (size bytes, zeroed) and publish it. */
int ipcx__ring_format(void *mem, size_t size, const struct ring_geom *g);

/*
 * Check a mapped segment and fill r.  Registers a peer slot (unless
 * readonly).  Returns 0, -EBADMSG (not a valid ring), -EUSERS (peer table
 * full) or -EAGAIN (the creator has not finished).
 */
int ipcx__ring_attach(struct ring *r, void *mem, size_t size, bool readonly);
/* Abort what is reserved or peeked, leave the peer slot, close sockets. */
void ipcx__ring_detach(struct ring *r);

ssize_t ipcx__ring_send(struct ring *r, const void *msg, size_t len, int timeout_ms);
ssize_t ipcx__ring_recv(struct ring *r, void *buf, size_t cap, int timeout_ms);
int ipcx__ring_reserve(struct ring *r, size_t len, int timeout_ms, void **slot);
int ipcx__ring_commit(struct ring *r, size_t len);
ssize_t ipcx__ring_peek(struct ring *r, int timeout_ms, const void **msg);
int ipcx__ring_release(struct ring *r);
/*
 * A batch in place (ipcx_peekv, ipcx_releasev): broadcast rings only (else
 * -EOPNOTSUPP); at most RING_BATCH_MAX messages a call.
 */
ssize_t ipcx__ring_peekv(struct ring *r, struct ipcx_msg *msgs, size_t n, int timeout_ms);
ssize_t ipcx__ring_releasev(struct ring *r, size_t n);
/*
 * Read ahead without taking (ipcx_read_ahead): the message at *cursor
 * (0: the oldest), copied into buf; *cursor then names it and is where the
 * next read ahead starts.
 */
ssize_t ipcx__ring_read_ahead(struct ring *r, uint64_t *cursor, void *buf, size_t cap,
			      int timeout_ms);
/* sent, received, dropped, depth, peers, receivers (live consumers). */
int ipcx__ring_stats(struct ring *r, uint64_t out[6]);
/* Mark our peer slot as the ring's owner (its listener). */
void ipcx__ring_own(struct ring *r);
/* No process is attached (r attached read-only): a dead listener's ring. */
bool ipcx__ring_abandoned(struct ring *r);
/* The doorbell socket, made on first call. */
int ipcx__ring_fileno(struct ring *r);

/*
 * Validate the segment's shared state without changing it (for the fuzzer
 * and for recovery): walks every record between rel and head.  Returns the
 * number of committed records or -EBADMSG.
 */
ssize_t ipcx__ring_check(struct ring *r);

/*
 * Recovery for a persistent ring when no other process has it open: drop
 * the peers of earlier runs, finish what they left half done, and cut the
 * log at the first record whose checksum fails.  Returns records kept.
 */
ssize_t ipcx__ring_recover(struct ring *r);

/*
 * Broadcast rings (fanout=1 on shm: and sysvshm:): every subscriber reads
 * every record from its own cursor, instead of each going to one consumer.
 * The operations above serve them too; ring_bcast*.c hold the protocol
 * (ring_bcast.h), and docs/shm.md, "Broadcast rings", describes it.
 */
struct ipcx_subscriber;

/* Bytes in front of a record's payload: the message's number. */
#define BCAST_HDR 8u

/*
 * The geometry of a broadcast ring is possible: many producers (not spsc),
 * no checksums (not the mmap: log), policy block or drop, and a record of
 * max bytes fits twice.
 */
static inline bool ipcx__bcast_geom_ok(uint64_t ncells, uint64_t max, uint32_t flags,
				       uint32_t policy)
{
	return !(flags & (RING_F_SPSC | RING_F_CRC)) && (policy == RING_BLOCK || policy == RING_DROP) &&
	       ring_cells_for(max + BCAST_HDR) <= ncells / 2;
}

/*
 * A channel attached (with a peer slot): refuse a ring that its last peer
 * is removing (-ECONNREFUSED: open the name again), and subscribe when g
 * says so (sub=1, history=N).
 */
int ipcx__bcast_open(struct ring *r, const struct ring_geom *g);

/* Subscribe now, if not yet: reading from the next message published. */
int ipcx__bcast_subscribe(struct ring *r, uint64_t history);

/*
 * A channel about to detach: true when it is the last peer, and so the one
 * to remove the ring's name (unless the ring is kept).
 */
bool ipcx__bcast_leave(struct ring *r);

/* The live subscribers: fills up to n of buf, returns how many there are. */
ssize_t ipcx__bcast_subscribers(struct ring *r, struct ipcx_subscriber *buf, size_t n);

/*
 * Fault injection for tests/test_ring_crash.c: built with IPCX_CRASHPOINTS,
 * the ring kills its own process (SIGKILL) the (ipcx__crash_after + 1)-th
 * time it passes point ipcx__crash_point.  Without it the points cost nothing.
 */
enum ring_crash {
	CP_HEAD_TAGGED = 1, /* MPMC producer: owns the head, record not yet CLAIMED */
	CP_CLAIMED,         /* MPMC producer: record CLAIMED, head moved, not copied */
	CP_TX_COUNTED,      /* MPMC producer: counted, not yet COMMITTED */
	CP_COMMITTED,       /* MPMC producer: COMMITTED, snapshot not yet taken */
	CP_TAKEN,           /* MPMC consumer: READING, tail not moved */
	CP_TAIL_MOVED,      /* MPMC consumer: tail moved, not copied */
	CP_RX_COUNTED,      /* MPMC consumer: counted, not yet RELEASED */
	CP_DR_COUNTED,      /* MPMC overwrite or bad checksum: dropped counted, not RELEASED */
	CP_SKIPPING,        /* MPMC consumer: skipping a LOST record, tail not moved */
	CP_FIX_DR,          /* repairer: dead peer's dropped counted, tx not yet */
	CP_FIX_TX,          /* repairer: dead peer's counters done, record not yet fixed */
	CP_SPSC_COMMITTED,  /* SPSC producer: COMMITTED, sent not counted */
	CP_SPSC_SENT,       /* SPSC producer: counted, head not moved */
	CP_SPSC_RECEIVED,   /* SPSC consumer: counted, tail not moved */
	CP_SPSC_TAIL,       /* SPSC consumer: tail moved, rel not */
	CP_NPOINTS
};
#ifdef IPCX_CRASHPOINTS
extern int ipcx__crash_point;
extern unsigned ipcx__crash_after;
#endif

#endif
