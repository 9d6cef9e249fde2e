/*
 * The benchmark harness, shared by `ipcx bench` and the peer programs
 * (ipcx-bench-zmq, -nng, -iox).  A benchmark case is one backend (struct
 * bh_ops: how to open, send, receive and close one link between two
 * processes) measured in one way (ping-pong latency or one-way streaming)
 * at one message size.  The harness forks the two sides, pins them to
 * separate cores, runs the warm-up and the timed loop, and hands back a
 * struct bh_result.  Backends include only <ipcx.h> and the system headers
 * (the peers their own library's header too); nothing here reaches into the
 * library's private headers.
 */
#ifndef IPCX_BENCH_H
#define IPCX_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

struct bh_hist;

/* What a case measures. */
enum bh_kind {
	BH_LAT, /* ping-pong: round-trip time, percentiles */
	BH_THR, /* one-way streaming: messages and bytes per second */
	BH_OPS, /* a primitive's operation loop: operations per second + latency */
};

/* Parameters of one case, the same for every backend. */
struct bh_params {
	enum bh_kind kind;
	size_t size;        /* message size in bytes */
	uint64_t count;     /* timed iterations (messages, round trips) */
	uint64_t warmup;    /* untimed iterations before them */
	int cpu[2];         /* cores for side 0 (client) and 1 (server); -1: not pinned */
	char dir[128];      /* a private folder for path-named objects */
	char prefix[64];    /* the start of every object name ("ipcxb-PID") */
	int key;            /* a System V key base for this case (two keys: key, key+1) */
	unsigned seq;       /* the case's number in the run: names differ per case */
	char nats[64];      /* host:port of the run's nats-server, or "" (none) */
	int timeout_ms;     /* guard: the whole case is killed past this */
	/*
	 * NULL, or a descriptor (`ipcx bench --ready-fd`) that the harness's
	 * process signals once both sides of a case are open, so its objects
	 * exist: one newline, then it is closed and set to -1.
	 */
	int *ready_fd;
	int subs;           /* fan-out cases: subscriber processes (bench/fanout.c) */
};

#define BH_NOTE 160

/* Request/reply rows: calls kept in flight by the client of a BH_THR case. */
#define BH_INFLIGHT 64
#define BH_BATCH    64 /* messages to a call on the batched rows */

/* Outcome of one case. */
enum bh_status {
	BH_OK,
	BH_SKIP,  /* not applicable (size above the mechanism's largest message ...) */
	BH_ERROR, /* failed: note says why */
};

struct bh_result {
	int status;
	char note[BH_NOTE];
	uint64_t samples;                         /* round trips or messages timed */
	uint64_t p50, p99, p999, max, min, mean; /* nanoseconds (BH_LAT, BH_OPS) */
	double msgs_per_s, bytes_per_s;           /* BH_THR, BH_OPS (ops/s) */
	uint64_t lost;                            /* messages that never arrived (UDP) */
};

/* One side's view of a running case. */
struct bh_ctx {
	const struct bh_params *p;
	int side;     /* 0: client (measures), 1: server (echoes / sinks) */
	int ctl;      /* a SOCK_SEQPACKET control link to the other side */
	void *shared; /* MAP_SHARED region made before fork (ops->shared_bytes) */
	void *priv;   /* the backend's own state */
	const void *arg; /* the backend's row (URL template ...) */
	struct bh_result *res; /* where a backend may note why it failed */
};

/*
 * A backend.  open() runs in each side after fork and may use the control
 * link (bh_ctl_send / bh_ctl_recv) to exchange addresses or to order its
 * steps; send()/recv() carry exactly one message of len bytes and return 0
 * or a negative errno; close() undoes open() and removes what it created.
 * For BH_OPS backends, op() runs the whole timed loop on each side instead.
 */
struct bh_ops {
	const char *transport; /* URL scheme or mechanism name: "pipe", "unix" ... */
	const char *impl;      /* "raw", "ipcx", "zmq", "nng", "iceoryx" */
	const char *mode;      /* "blocking", "spin", "futex" ... */
	bool lossy;            /* datagrams may be dropped (the server uses a timeout) */
	size_t (*shared_bytes)(const struct bh_params *p);
	/* Run by the harness before fork (descriptors both sides inherit, in
	 * shared) and after both sides are forked (close the parent's copies). */
	int (*prepare)(const struct bh_params *p, void *shared);
	void (*release)(void *shared);
	int (*open)(struct bh_ctx *c);
	int (*send)(struct bh_ctx *c, const void *buf, size_t len);
	/* timeout_ms: -1 forever; the lossy server uses a finite one. */
	int (*recv)(struct bh_ctx *c, void *buf, size_t len, int timeout_ms);
	void (*close)(struct bh_ctx *c);
	/* BH_OPS: run the timed loop on this side, side 0 records into h. */
	int (*op)(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r);
	/*
	 * BH_THR, if set: run this side's own loop instead of the one-way
	 * stream, and (side 0) fill r->msgs_per_s: request/reply rows measure
	 * calls per second with BH_INFLIGHT calls in flight from one client.
	 */
	int (*thr)(const struct bh_ops *ops, struct bh_ctx *c, struct bh_result *r);
	/*
	 * Batched rows (BH_THR): the one-way stream goes BH_BATCH messages to
	 * a call.  sendv sends n copies of buf whole (0 or -errno); recvv
	 * receives between 1 and n (*got), into buffers of its own.  Round
	 * trips use send/recv: a ping-pong has one message at a time.
	 */
	int (*sendv)(struct bh_ctx *c, const void *buf, size_t len, size_t n);
	int (*recvv)(struct bh_ctx *c, size_t len, size_t n, int timeout_ms, size_t *got);
	const void *arg;
	/* Largest message, or 0 when the backend cannot say in advance. */
	size_t max_size;
};

/* ---- histogram ------------------------------------------------------------ */

/*
 * Log-linear buckets as in HdrHistogram: for each power of two, 64 linear
 * sub-buckets, so any recorded value is known within 1/64 (1.6%).  Exact
 * min and max are kept beside it.
 */
#define BH_SUB_BITS 6
#define BH_SUB      (1u << BH_SUB_BITS)
#define BH_BUCKETS  (64u * BH_SUB)

struct bh_hist {
	uint64_t n, min, max, sum;
	uint32_t bucket[BH_BUCKETS];
};

void bh_hist_init(struct bh_hist *h);
void bh_hist_add(struct bh_hist *h, uint64_t v);
/* The value at quantile q (0..1): the middle of its bucket, never above max. */
uint64_t bh_hist_quantile(const struct bh_hist *h, double q);
void bh_hist_result(const struct bh_hist *h, struct bh_result *r);

/* ---- running cases --------------------------------------------------------- */

static inline uint64_t bh_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Run one case: fork both sides, wait for them (killing them past
 * p->timeout_ms, or when *stop becomes set), fill r.  Returns 0, or a
 * negative errno if the harness itself failed (r then says why too).
 */
int bh_run(const struct bh_ops *ops, const struct bh_params *p,
	   volatile sig_atomic_t *stop, struct bh_result *r);

/* Messages on the control link (small, reliable). 0 or -errno. */
int bh_ctl_send(struct bh_ctx *c, const void *buf, size_t len);
int bh_ctl_recv(struct bh_ctx *c, void *buf, size_t len);
/* A NUL-terminated string of up to cap bytes; returns its length or -errno. */
int bh_ctl_recv_str(struct bh_ctx *c, char *buf, size_t cap);
/* A one-byte handshake: wait until the other side has reached this point. */
int bh_ctl_sync(struct bh_ctx *c);

/* Say on p->ready_fd, once, that a case's objects exist (no-op without one). */
void bh_signal_ready(const struct bh_params *p);

/* Pick the two cores to pin to (the first two allowed), or -1, -1. */
void bh_pick_cpus(int cpu[2]);
/* Pin the calling process to core cpu (ignored if cpu < 0). */
void bh_pin(int cpu);

/* "%s/%s-NAME" in p->dir, and "/%s-NAME" for /dev/shm and /dev/mqueue names. */
void bh_path(const struct bh_params *p, const char *leaf, char *buf, size_t cap);
void bh_name(const struct bh_params *p, const char *leaf, char *buf, size_t cap);

/* Set r to status with a formatted note. */
void bh_note(struct bh_result *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write a result as one text line / read it back (peer programs). */
void bh_result_print(const struct bh_result *r, FILE *f);
int bh_result_parse(const char *line, struct bh_result *r);

/* ---- the backends --------------------------------------------------------- */

/*
 * A lock/unlock loop (BH_OPS): uncontended, side 0 alone; contended, both
 * sides on the same lock.  Timed in batches; the rate counts both sides.
 */
struct bh_lockops {
	int (*lock)(struct bh_ctx *c);
	int (*unlock)(struct bh_ctx *c);
	bool contended;
};
int bh_lock_loop(struct bh_ctx *c, const struct bh_lockops *lo, struct bh_hist *h,
		 struct bh_result *r);

/*
 * A .thr for request/reply backends: the client keeps BH_INFLIGHT calls in
 * flight, starting one with ops->send and taking one reply with ops->recv
 * (in any order); the server takes a request with ops->recv and answers it
 * with ops->send.  Side 0 reports calls per second over the timed calls.
 */
int bh_rpc_pipeline(const struct bh_ops *ops, struct bh_ctx *c, struct bh_result *r);

/*
 * A logger, as the logging rows drive it (bench/logloop.c): one or two
 * writer processes (the case's sides) log 64-byte messages; each call is
 * timed, and the rate is end to end, until every record is in the file.
 */
struct bh_logops {
	/* This writer's logger, in its own process. */
	int (*open)(struct bh_ctx *c, void **w);
	/* One log call of len bytes. */
	int (*log)(void *w, const char *msg, size_t len);
	/* When it returns, the writer's records are in the file (or with the drain). */
	int (*close)(void *w);
	/* A drain process that writes the file (ipcx), or NULL. */
	int (*drain_open)(struct bh_ctx *c, void **d);
	int64_t (*drain_run)(void *d); /* records written (waits briefly), or -errno */
	void (*drain_close)(void *d);
	/* Records each writer process logs before the timed burst (NULL: a tenth of it). */
	uint64_t (*warmup)(const struct bh_ctx *c, int writers);
};
/*
 * Where a logger's backend (a drain, a logging thread) runs: with one
 * writer, on the other core, as the other side of every case; with two,
 * on either core, beside them.  Sets the calling thread's affinity.
 */
void bh_log_backend_cpus(const struct bh_params *p, int writers);
/* The ops' shared_bytes, and the records each writer logs in the timed burst. */
size_t bh_log_shared_bytes(const struct bh_params *p);
uint64_t bh_log_count(const struct bh_params *p);
/*
 * The ops' op(): writers is 1 (side 0 writes) or 2 (both sides do); each
 * writer process logs from threads (1 or 2) threads sharing its logger.
 */
int bh_log_loop(struct bh_ctx *c, const struct bh_logops *lo, int writers, int threads,
		struct bh_hist *h, struct bh_result *r);

/* Raw system-call baselines and primitives (bench/raw.c, bench/prims.c). */
extern const struct bh_ops *const bh_raw_ops[];
extern const struct bh_ops *const bh_prim_ops[];
/* The same primitives through ipcx's API (bench/ipcx_prims.c). */
extern const struct bh_ops *const bh_ipcx_prim_ops[];
/* The logging rows: ipcx's log, write(2), fprintf (bench/logbench.c). */
extern const struct bh_ops *const bh_log_ops[];
/* ipcx itself, one row per URL template (bench/ipcx_ops.c). */
extern const struct bh_ops *const bh_ipcx_ops[];
/* ipcx's request/reply (bench/ipcx_rpc.c). */
extern const struct bh_ops *const bh_ipcx_rpc_ops[];
/* Pools and slots beside their raw counterparts (bench/pool.c). */
extern const struct bh_ops *const bh_pattern_ops[];
/* False when the library does not know the row's scheme (not built yet). */
bool bh_ipcx_available(const struct bh_ops *ops, const struct bh_params *p);

/* ---- fan-out: one publisher, several subscribers (bench/fanout.c) ------------ */

#define BH_FAN_MAX 8

/* One process of a fan-out case: the publisher (id -1) or subscriber id. */
struct bh_fan {
	const struct bh_params *p;
	int id;
	void *priv;
	const void *arg;
	struct bh_result *res; /* where a backend may note why it failed */
	char addr[256];        /* what the publisher's pub_open tells the subscribers */
};

/*
 * A publish/subscribe implementation.  pub_open makes the publisher and
 * may write an address for the subscribers in f->addr; pub_wait (or NULL)
 * waits, bounded, until n subscribers are connected where the library can
 * tell; sub_recv returns 0 with one message of len bytes, -ETIMEDOUT after
 * timeout_ms, or another -errno.  close undoes either side.
 */
struct bh_fan_ops {
	const char *transport, *impl;
	int (*pub_open)(struct bh_fan *f);
	int (*pub_wait)(struct bh_fan *f, int n);
	int (*pub_send)(struct bh_fan *f, const void *buf, size_t len);
	int (*sub_open)(struct bh_fan *f);
	int (*sub_recv)(struct bh_fan *f, void *buf, size_t len, int timeout_ms);
	void (*close)(struct bh_fan *f);
	const void *arg;
	const char *const *modes; /* the rows' modes with 1 and 4 subscribers; NULL: "1 sub", "4 subs" */
};

/*
 * Run one fan-out case (p->subs subscribers; p->kind BH_LAT: paced,
 * publish-to-receive latency; BH_THR: messages per second received by a
 * subscriber, the mean, lost in r->lost).  Fills r; 0, or a negative errno.
 */
int bh_fan_run(const struct bh_fan_ops *ops, const struct bh_params *p,
	       volatile sig_atomic_t *stop, struct bh_result *r);

/* ipcx's publish/subscribe (bench/ipcx_fan.c): pubsub-shm, pubsub-unix. */
extern const struct bh_fan_ops *const bh_ipcx_fan_ops[];

/* Remove every object a case with these parameters may have left. */
void bh_sweep(const struct bh_params *p);

#endif
