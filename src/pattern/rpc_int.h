/*
 * Request/reply, the parts its files share: the wire format, call ids, the
 * table of calls in flight, and the watcher that turns a server's death
 * into a frame on the client's reply ring.  Private to src/pattern/, which
 * sees only <ipcx.h>.  docs/rpc.md describes the protocol.
 */
#ifndef IPCX_PATTERN_RPC_H
#define IPCX_PATTERN_RPC_H

#include <ipcx.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- wire ------------------------------------------------------------------ */

/*
 * Every frame is one channel message: a 32-byte header, little-endian, then
 * the payload.
 *
 *   0  'I' 'R'   magic
 *   2  u8        version (RPC_VERSION)
 *   3  u8        kind
 *   4  u32       flags (known bits of the kind only)
 *   8  u64       id: the call (0 for HELLO and GONE)
 *  16  u64       aux: REQUEST, HELLO: the client's reply-ring token (rings);
 *                TAKEN, GONE: the server process's start time
 *  24  u32       arg: ERROR: the errno (1 .. 4095); TAKEN, GONE: the pid;
 *                BATCH: the number of frames in it
 *  28  u32       len: payload bytes after the header (= message length - 32)
 *
 * A BATCH frame's payload is other frames back to back (never a batch),
 * each checked on its own: how calls started with IPCX_RPC_MORE travel on
 * sockets, one system call for many, and how their answers come back.
 */
#define RPC_HDR     32u
#define RPC_VERSION 1u
#define RPC_DETAIL_MAX 255u /* longest detail of an error reply */

enum rpc_kind {
	RPC_REQUEST = 1, /* client -> server: a call */
	RPC_REPLY,       /* server -> client: its answer */
	RPC_ERROR,       /* server -> client: an error answer; payload = detail */
	RPC_TAKEN,       /* joined worker -> client: "I hold call id" */
	RPC_HELLO,       /* client -> server: "here is my reply ring" */
	RPC_GONE,        /* -> client: a server process has gone (see flags) */
	RPC_BATCH,       /* sockets: several frames in one message (arg: how many) */
	RPC_NKINDS
};

#define RPC_F_CLOSED 0x1u /* GONE: the server that owns the URL closed it */
#define RPC_F_DIED   0x2u /* GONE: the process died (from the client's watcher) */

struct rpc_hdr {
	unsigned kind;
	uint32_t flags;
	uint64_t id;
	uint64_t aux;
	uint32_t arg;
	uint32_t len;
};

/* Write h into the first RPC_HDR bytes of buf. */
void rpc_put(void *buf, const struct rpc_hdr *h);
/*
 * Read and check the frame of n bytes in buf: 0 and *h, or -EBADMSG with a
 * reason (for the counters; nothing is trusted before this says yes).
 */
int rpc_get(const void *buf, size_t n, struct rpc_hdr *h);

#define RPC_BATCH_MAX    256u       /* frames in one batch */
/*
 * A client's batch goes out once it holds this many calls: with many calls
 * in flight, several batches then overlap (the server works on one while
 * the client fills the next), instead of the two sides taking turns.
 * Measured with 64 in flight, pinned, on a loaded 2-core machine: 8: 60-73k
 * calls/s, 16: 106-111k, 32: 69-91k, 256: 56-87k.
 */
#define RPC_BATCH_AUTO   16u
#define RPC_BATCH_BYTES  (64u << 10) /* bytes of one batch (less if the channel's max is) */

/*
 * The frame of a batch at *off (of the n bytes of its payload): its size in
 * *len, and *off moved past it; -EBADMSG if it does not fit.
 */
int rpc_batch_next(const unsigned char *p, size_t n, size_t *off, size_t *len);

/* The n bytes of a batch's payload are exactly count frames: 0, or -EBADMSG. */
int rpc_batch_check(const unsigned char *p, size_t n, unsigned count);

/* Frames waiting to go out together (a batch, or one frame alone). */
struct rpc_out {
	unsigned char *buf; /* RPC_HDR bytes for the batch header, then the frames */
	size_t len, cap;    /* bytes of frames */
	unsigned n;         /* frames */
};
/* Add a frame; -ENOMEM. */
int rpc_out_add(struct rpc_out *o, const struct rpc_hdr *h, const void *payload);
/* Bytes the message would have with one more frame of len payload bytes. */
size_t rpc_out_would(const struct rpc_out *o, size_t len);
/* The message to send: the frame alone, or the batch (its header written now). */
const void *rpc_out_msg(struct rpc_out *o, size_t *len);
void rpc_out_clear(struct rpc_out *o);
void rpc_out_free(struct rpc_out *o);

/* ---- ids ----------------------------------------------------------------- */

/*
 * Call ids: SipHash-2-4 of a counter under a random 128-bit key, so that a
 * hostile process cannot guess the id of another client's call (and forge
 * its reply) from ids it has seen.  Never 0.
 */
struct rpc_ids {
	uint64_t k0, k1, n;
};
int rpc_ids_init(struct rpc_ids *g);
uint64_t rpc_ids_next(struct rpc_ids *g);
/* 64 random bits (getrandom). */
int rpc_random(uint64_t *ret);

/* ---- time ---------------------------------------------------------------- */

int64_t rpc_now(void); /* CLOCK_MONOTONIC nanoseconds */
/* 0 for -1, 0 or more; else -EINVAL with a detail, as the channels do. */
int rpc_check_timeout(int timeout_ms);
/* A deadline from a timeout in ms: -1 none, else now + ms (0 = now). */
int64_t rpc_deadline(int timeout_ms);
/* Milliseconds until deadline for a channel call: -1 forever, 0 passed. */
int rpc_ms_left(int64_t deadline);

/* ---- calls in flight --------------------------------------------------------- */

#define RPC_NO_WORKER 0xffffu

struct rpc_call {
	uint64_t id;       /* 0: a free slot */
	int64_t deadline;  /* -1: none */
	uint32_t heap;     /* index in the deadline heap, or RPC_NO_HEAP */
	uint16_t worker;   /* the watch slot of the worker that holds it, or RPC_NO_WORKER */
};
#define RPC_NO_HEAP UINT32_MAX

struct rpc_heap_ent {
	int64_t deadline;
	uint64_t id;
};

/*
 * Open addressing on the id (which is already random), linear probing,
 * deletion by backward shift; and a binary heap of deadlines whose entries
 * the table points back to.  Lookup, insert, delete: O(1) (+ O(log n) for
 * a call with a deadline).  Grows by doubling, up to 2 x IPCX_RPC_MAX_CALLS
 * slots.
 */
struct rpc_tab {
	struct rpc_call *slot;
	size_t cap, n;
	struct rpc_heap_ent *heap;
	size_t hn, hcap;
};

void rpc_tab_init(struct rpc_tab *t);
void rpc_tab_fini(struct rpc_tab *t);
/*
 * Make room for one more call, so that the next rpc_tab_add() cannot fail:
 * 0, -ENOBUFS (IPCX_RPC_MAX_CALLS in flight), -ENOMEM.
 */
int rpc_tab_room(struct rpc_tab *t);
/* 0, -ENOBUFS, -ENOMEM, -EEXIST (the id is in flight). */
int rpc_tab_add(struct rpc_tab *t, uint64_t id, int64_t deadline);
struct rpc_call *rpc_tab_find(struct rpc_tab *t, uint64_t id);
/* Remove the call (if there); true if it was there. */
bool rpc_tab_del(struct rpc_tab *t, uint64_t id);
/* The earliest deadline, or -1. */
int64_t rpc_tab_first_deadline(const struct rpc_tab *t);
/* The id of a call whose deadline is at or before now, or 0. */
uint64_t rpc_tab_expired(const struct rpc_tab *t, int64_t now);
/* The ids of every call (worker == w, or all if w < 0) into a malloc'd array. */
size_t rpc_tab_ids(const struct rpc_tab *t, int w, uint64_t **ret);

/* ---- the client's watcher (rings) ---------------------------------------------- */

/*
 * On a ring, nothing tells a client that a server process died: the client
 * sleeps on its reply ring's futex, which a dead process never touches.  So
 * a client keeps one thread that sleeps in epoll on the pidfds of the
 * servers it depends on (ipcx_proc_watch), and when one turns readable,
 * sends a GONE frame (RPC_F_DIED) into the client's own reply ring: the
 * client wakes as for any reply, at once.  The thread costs nothing while
 * nobody dies.  Slots are freed only when the watcher has reported them.
 */
#define RPC_WATCH_MAX 64u

struct rpc_watch {
	pthread_t th;
	bool started;
	int ep;        /* epoll: the pidfds, and quit */
	int quit;      /* eventfd: stop */
	_Atomic int stopping;
	_Atomic int news; /* a GONE was sent since the client last looked */
	ipcx_chan *tx; /* the thread's own channel into the reply ring */
	pthread_mutex_t mu; /* slots */
	struct {
		struct ipcx_proc who;
		int fd;          /* pidfd, or -1: a free slot */
		bool reported;   /* the thread sent its GONE (the client frees it) */
	} w[RPC_WATCH_MAX];
};

/* Start the thread, which sends into the ring at reply_url. */
int rpc_watch_start(struct rpc_watch *w, const char *reply_url);
void rpc_watch_stop(struct rpc_watch *w);
/* The slot watching who (added if new): its index, -ESRCH (gone), -ENOSPC. */
int rpc_watch_add(struct rpc_watch *w, const struct ipcx_proc *who);
/* The slot of who, or -1. */
int rpc_watch_find(struct rpc_watch *w, const struct ipcx_proc *who);
/* The client has handled the GONE of slot k: free it. */
void rpc_watch_release(struct rpc_watch *w, int k);

/* ---- names ------------------------------------------------------------------ */

/*
 * A ring URL, split: scheme ("shm", "sysvshm"), the name or key part
 * without options, the key as a number (sysvshm), and the options the
 * reply rings take over (capacity=, spin=, mode=).
 */
struct rpc_ringurl {
	bool sysv;
	char name[256];    /* shm: "/NAME" */
	uint32_t key;      /* sysvshm: KEY */
	char opts[256];    /* "&capacity=...&spin=..." (each with a leading &) */
};
int rpc_ringurl_parse(const char *url, struct rpc_ringurl *ret);
/* The reply ring of token as a URL (for dialing); -EINVAL if the token cannot be one. */
int rpc_reply_url(const struct rpc_ringurl *u, uint64_t token, char *buf, size_t cap);
/* 0 for a scheme RPC works over, else -EOPNOTSUPP with a detail. */
int rpc_check_scheme(const char *url);
/* True for the schemes served through rings. */
bool rpc_is_ring(const char *url);
/* The URL a socket-like client dials (nats:// asks for replies: reply=1). */
const char *rpc_dial_url(const char *url, char *buf, size_t cap);

#endif
