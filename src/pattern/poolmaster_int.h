/*
 * The master's side of a pool, shared by pool.c (workers: start, watch,
 * restart, reload, stop) and task.c (tasks: submit, hand out, results, what a
 * dead worker held).  Private to src/pattern/.
 */
#ifndef IPCX_POOLMASTER_H
#define IPCX_POOLMASTER_H

#include "poolwire_int.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum qkind { Q_SOCKET, Q_STDIO, Q_URL };
enum seat_state { S_FREE, S_STARTING, S_READY, S_RETIRING };

/* A task the master holds until its outcome: its bytes are kept so that a
 * task whose worker died before starting it can be handed to another. */
struct task {
	struct task *next;
	uint64_t id;
	uint64_t dseq; /* its place in its worker's queue (0: not handed out) */
	uint32_t len;
	unsigned char data[];
};

struct outcome {
	struct outcome *next;
	struct ipcx_task_result r;
	unsigned char data[];
};

/* One worker process (N seats, plus one for a reload's replacement). */
struct seat {
	int state;
	unsigned index;    /* the worker's index, 0 .. N-1 */
	pid_t pid;
	int pidfd, ctl_fd, rx_fd; /* rx_fd: polled results descriptor (not rings), or -1 */
	int tx_fd;         /* nats://: the task channel's descriptor (its loss notices), or -1 */
	int64_t born_ns;
	ipcx_chan *ctl;    /* the master's end of the control pair (NULL: stdio) */
	ipcx_chan *tx, *rx; /* tasks out, results in (== ctl for "socket") */
	uint64_t dseq;     /* the last dseq handed to it */
	struct task *head, *tail; /* handed out, no outcome yet, in order */
	unsigned inflight;
	bool stop_owed;    /* asked to stop, the in-band stop not sent yet (its queue was full) */
	bool full;         /* its queue refused a task: none until the next pump */
	bool broken;       /* killed for a failed send or a bad frame: nothing more for it */
	/* "stdio": the program's standard output, read here line by line (a
	 * last line cut short by the program's death is no result). */
	int lfd;
	/* URL queues (poolq.c): QM_ACCEPT's listener until the worker is up
	 * and its cookie; QM_LISTEN's task URL, dialled then; the file-system
	 * names made for it, removed once it is up, or when it is gone. */
	ipcx_chan *acc;
	uint64_t cookie;
	char *dial_url;
	char *path[2];
	unsigned char *lbuf; /* max_msg + 1 bytes */
	size_t llen;
	bool skipping;     /* in a line longer than max_msg, reported already */
};

/* Per worker index: which seat runs it, and its restarts. */
struct wix {
	int seat;          /* -1: none running */
	int64_t restart_at; /* 0: no restart due */
	unsigned level;    /* quick deaths in a row: the back-off's exponent */
};

struct ipcx_pool {
	struct ipcx_pool_opts o;
	char **argv;        /* exec mode: a copy */
	enum qkind q;
	/* Q_URL (poolq.c): how each worker's queue is named and made. */
	int qmode;          /* QM_* */
	bool qring, qkey, qfs; /* a ring (sized here); a System V key per queue; names in the file system */
	bool qlossy;        /* nats://: an error on a queue is a loss, and its worker's death */
	char qscheme[16];
	char qpath[200];    /* what the names start with: "/", "/dir/", "@prefix", "//HOST:0", "" */
	char quser[128];    /* the user's options (after '?') */
	uint32_t qkeybase;  /* System V: the upper 16 bits of every key (0: any key) */
	char name[128];
	unsigned n, nseats;
	struct seat *seat;
	struct wix *ix;
	ipcx_region *region;
	struct pool_shared *sh;
	ipcx_event *wake;
	int ep, tfd;
	ipcx_sigs *sigs;
	sigset_t child_mask;
	pid_t master;
	unsigned gen;
	size_t frame_cap;   /* FRAME + max_msg */
	unsigned char *rbuf, *sbuf;

	uint64_t next_id;
	struct task *pend_head, *pend_tail;
	size_t npending, unfinished; /* pending + handed out */
	struct outcome *out_head, *out_tail;
	size_t nout;
	uint64_t done, failed, restarts, requeued;
	unsigned rr_tx, rr_rx, tick;

	int64_t *deaths;    /* times of the last crash_limit unrequested deaths */
	unsigned ndeaths;
	bool stopping, stopped, crashloop;
	char crash_why[160]; /* the crash loop, in words, for every -ECHILD */
	int stop_err;       /* what pending tasks fail with on stop */
	int64_t grace_end;
	int reload_next, reload_new, reload_old; /* -1: none */
	int64_t reload_at;
};

/* pool.c */
int64_t pool_now_ns(void);
/* One round of supervision: handle what epoll says within wait_ms (0: look
 * only), after the results of every seat were taken into outcomes. */
int pool_pump(ipcx_pool *p, int wait_ms);
/* Before a sleep or a return to an event loop: results from now on post the
 * wake-up event.  True if results came meanwhile (taken into outcomes). */
bool pool_arm(ipcx_pool *p);
void pool_kill_seat(ipcx_pool *p, struct seat *s);
void pool_retire(ipcx_pool *p, struct seat *s);
/* A worker said it is up (on its control channel, or a "socket" queue). */
void pool_hello(ipcx_pool *p, struct seat *s);
/* A lossy queue (nats://) of seat s reported a loss or failed: the worker is
 * killed, and its death settles every task it held (docs/pool.md). */
void pool_queue_lost(ipcx_pool *p, struct seat *s);

/* poolq.c: queues over a channel URL (Q_URL) */
/* The queue option, not "socket" or "stdio". */
int poolq_parse(ipcx_pool *p, const char *q);
/* Make seat si's queue, and say what its worker opens (URLs of cap bytes). */
int poolq_make(ipcx_pool *p, unsigned si, char *task_url, char *result_url, size_t cap);
/* Seat s's worker said it is up: finish its queue (accept, dial), remove its names. */
int poolq_up(ipcx_pool *p, struct seat *s);
/* Close what poolq_make left open and remove the names it made. */
void poolq_clean(struct seat *s);

/* task.c */
/* One frame from seat s: 1 a result (*t its task, now the caller's; status;
 * bytes in p->rbuf at *data), 0 nothing waiting, < 0 the channel failed. */
int task_recv(ipcx_pool *p, struct seat *s, struct task **t, int *status,
	      const unsigned char **data, size_t *len);
/* Take every result waiting in seat s into outcomes; true if any. */
bool task_drain(ipcx_pool *p, struct seat *s);
/* Hand pending tasks to workers with room. */
void task_dispatch(ipcx_pool *p);
/* Seat s died: settle each task it held (its results were drained). */
void task_seat_died(ipcx_pool *p, struct seat *s);
/* Fail every pending task with err (stop, crash loop). */
void task_fail_pending(ipcx_pool *p, int err);
void task_outcome(ipcx_pool *p, struct task *t, int status, unsigned worker,
		  const void *data, size_t len);
void task_free_all(ipcx_pool *p);

#endif
