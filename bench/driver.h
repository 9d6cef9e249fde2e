/*
 * The `ipcx bench` driver: what to run (mechanisms x sizes x kinds), the
 * results, and the ways to show them (bench/report.c).
 */
#ifndef IPCX_BENCH_DRIVER_H
#define IPCX_BENCH_DRIVER_H

#include "bench.h"

/* What the ipcx rows add to their URLs (bench/ipcx_ops.c), for the record. */
#define BENCH_URL_OPTIONS                                                              \
	"max=SIZE on every listener (the largest message = the size measured); "       \
	"mmap: policy=block (no overwriting); nats: pending=1000000 and "              \
	"pending_bytes=1073741824 (a queue for a whole stream); otherwise each "        \
	"transport's defaults"

/* One line of the comparison: a mechanism as one implementation drives it. */
struct mech {
	const char *transport; /* URL scheme or mechanism: "unix", "sem" ... */
	const char *impl;      /* raw, ipcx, zmq, nng, iceoryx */
	const char *mode;      /* blocking, spin, futex, handoff ... */
	const struct bh_ops *ops; /* run in this process's harness, or */
	const char *exe;          /* a peer program (full path) with */
	const char *exe_arg;      /* its transport argument ("ipc", "tcp") */
	bool prim;                /* a primitive: measured at size 0 only */
	const struct bh_fan_ops *fan; /* ipcx's fan-out rows: run here, or by the peer */
	int subs;                 /* fan-out: subscriber processes (0: not fan-out) */
};

/* One measured case. */
struct outcome {
	const struct mech *m;
	enum bh_kind kind;
	size_t size;
	uint64_t count;
	uint64_t wall_ns; /* how long the case took, set-up included */
	struct bh_result r;
};

struct env {
	char cpu[128];
	long cores;
	char kernel[400];
	int cpus[2];
	bool quick;
	char date[32];
	char peers[256]; /* "zmq 4.3.4, nng 1.5.2, iceoryx" */
	char options[256];
};

struct run {
	struct env env;
	size_t sizes[16];
	int nsizes;
	struct outcome *out;
	size_t nout, capout;
};

/* bench/report.c */
void report_table(const struct run *run, FILE *f);
int report_json(const struct run *run, const char *path);
int report_html(const struct run *run, const char *path);
/* "64 B", "4 KiB", "1 MiB" */
const char *fmt_size(size_t n, char *buf, size_t cap);

/* tools/ipcx/bench.c calls this. */
int bench_main(int argc, char **argv);

#endif
