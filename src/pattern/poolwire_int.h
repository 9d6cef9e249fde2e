/*
 * What the pool's master (pool.c, task.c) and its workers (worker.c) share:
 * the frames on their channels, the shared memory where a worker records the
 * task it starts, and how an exec'd worker finds all of it.  Private to
 * src/pattern/.
 */
#ifndef IPCX_POOLWIRE_H
#define IPCX_POOLWIRE_H

#include "timeout_int.h"

#include <ipcx.h>

#include <stdatomic.h>
#include <stdint.h>

/* Every frame starts with this header; task and result bytes follow. */
enum { F_TASK = 1, F_STOP = 2, F_RESULT = 3, F_HELLO = 4,
       F_LOST = 5 /* worker to master, on the control channel: its queue lost messages */ };

struct frame {
	uint16_t kind;
	uint16_t zero;
	int32_t status; /* F_RESULT: 0, or a negative errno the worker reports */
	uint32_t len;   /* bytes after the header */
	uint32_t pad;
	uint64_t dseq;  /* F_TASK, F_RESULT: the task's place in this worker's queue, from 1;
	                   F_HELLO: the worker's pid */
	uint64_t id;    /* the task's id */
};
#define FRAME ((size_t)sizeof(struct frame))
_Static_assert(sizeof(struct frame) == 32, "frame header is 32 bytes");

/*
 * The shared region (a memfd of the master's): a header, then one seat per
 * worker process that may run at once (N, plus one being started by a
 * reload).  A worker stores in its seat the dseq of the task it starts before
 * it runs it; the master reads it when the worker has died.
 */
#define POOL_MAGIC 0x4c4f4f50u /* "POOL" */

struct pool_seat {
	_Atomic uint64_t started; /* dseq of the last task started (0: none) */
	char pad[56];
};

struct pool_shared {
	uint32_t magic;
	uint32_t nseats;
	char pad0[56];
	/* The master is about to sleep: a worker that sends a result then posts
	 * the wake-up event (and clears this). */
	_Atomic uint32_t master_waiting __attribute__((aligned(64)));
	char pad1[60];
	struct pool_seat seat[];
};

/* How a worker's queue is made from its URLs (poolq.c, docs/pool.md):
 *   QM_DIAL:    the master listens on both, the worker dials both (rings,
 *               kernel queues, files);
 *   QM_ACCEPT:  one duplex connection: the master listens (IPCX_ACCEPT), the
 *               worker dials and sends F_HELLO with the seat's cookie first,
 *               the master accepts it when the worker says it is up (unix:,
 *               unixpacket:, tcp://);
 *   QM_LISTEN:  the worker listens on the task URL (only a reader may
 *               listen: fifo:, unixgram:), the master dials it when the
 *               worker is up; the master listens on the result URL. */
enum { QM_DIAL = 0, QM_ACCEPT = 1, QM_LISTEN = 2 };

/* The environment variable that tells an exec'd program it is a worker:
 * "2 INDEX SEAT CTLFD REGIONFD EVENTFD MAXMSG QMODE COOKIE TASKURL RESULTURL"
 * (URLs "-" when the control channel carries the tasks). */
#define POOL_ENV "IPCX_WORKER"

/* What a worker is given (fork mode: in memory; exec mode: through POOL_ENV). */
struct pool_worker_init {
	unsigned index, seat;
	size_t max_msg;
	ipcx_chan *ctl;            /* the worker's end of the control pair */
	struct pool_shared *shared;
	ipcx_event *wake;
	const char *task_url, *result_url; /* NULL: tasks on the control channel */
	int qmode;                 /* QM_* */
	uint64_t cookie;           /* QM_ACCEPT: proves the connection is this worker's */
};

/* worker.c: make the worker (fork mode, in the child), run fn, exit. */
void pw_run_forked(const struct pool_worker_init *in, int (*fn)(ipcx_worker *, void *),
		   void *arg) __attribute__((noreturn));

/* Post the wake-up event if the master sleeps (after a result is sent). */
void pw_wake_master(struct pool_shared *sh, ipcx_event *wake);

#endif
