/*
 * The logging rows (bench/logloop.c drives them): ipcx's log into a file
 * through its drain, and what multi-process programs do without it:
 * write(2) of a line to an O_APPEND file from each process, and fprintf to
 * a line-buffered O_APPEND stream.  spdlog's async logger is a peer
 * program (bench/peer_spdlog.cc).  Each row with one and with two writer
 * processes.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes a 64-byte message's record takes in the ring: two 64-byte cells. */
#define REC_BYTES 128u

/* A ring that holds every writer's timed burst, at least 1 MiB. */
static uint64_t ring_bytes(const struct bh_params *p, int writers)
{
	uint64_t need = (uint64_t)writers * bh_log_count(p) * REC_BYTES, cap = 1u << 20;
	while (cap < need)
		cap *= 2;
	return cap;
}

/* Bursts that meet in the log: writer processes times threads ("1", "2", "1x2"). */
static int bursts_of(const struct bh_ctx *c)
{
	return strcmp(c->arg, "1") ? 2 : 1;
}

/* ---- ipcx: a shm: log, its drain writing the file -------------------------------- */

static void ipcx_url(const struct bh_ctx *c, char *buf, size_t cap)
{
	char leaf[32], name[128];
	snprintf(leaf, sizeof(leaf), "%u-log", c->p->seq);
	bh_name(c->p, leaf, name, sizeof(name));
	/* Writers that wait for room: no record is dropped, so the rate counts them all. */
	snprintf(buf, cap, "shm:%s?capacity=%llu&max=4096&policy=block", name,
		 (unsigned long long)ring_bytes(c->p, bursts_of(c)));
}

/* One lap of the ring in all, so that every process has touched its pages. */
static uint64_t ipcx_warmup(const struct bh_ctx *c, int writers)
{
	return ring_bytes(c->p, bursts_of(c)) / REC_BYTES / (uint64_t)writers;
}

static int ipcx_open(struct bh_ctx *c, void **w)
{
	char url[256];
	ipcx_url(c, url, sizeof(url));
	int r = ipcx_log_open(url, "bench", IPCX_LOG_BLOCK, (ipcx_log **)w);
	if (r < 0)
		bh_note(c->res, BH_ERROR, "log open %s: %s", url, ipcx_strerror(r));
	return r;
}

static int ipcx_log_one(void *w, const char *msg, size_t len)
{
	return ipcx_log_write(w, IPCX_LOG_INFO, msg, len);
}

static int ipcx_log_end(void *w)
{
	return ipcx_log_close(w);
}

static int ipcx_drain_open(struct bh_ctx *c, void **d)
{
	char url[256], out[256];
	ipcx_url(c, url, sizeof(url));
	bh_path(c->p, "ipcx.log", out, sizeof(out));
	struct ipcx_logd_opts o = { .out = out };
	return ipcx_logd_open(url, &o, (ipcx_logd **)d);
}

static int64_t ipcx_drain_run(void *d)
{
	ssize_t n = ipcx_logd_run(d, 10);
	return n == -ETIMEDOUT || n == -EAGAIN ? 0 : n;
}

static void ipcx_drain_close(void *d)
{
	ipcx_logd_close(d);
}

static const struct bh_logops ipcx_lo = {
	.open = ipcx_open,
	.log = ipcx_log_one,
	.close = ipcx_log_end,
	.drain_open = ipcx_drain_open,
	.drain_run = ipcx_drain_run,
	.drain_close = ipcx_drain_close,
	.warmup = ipcx_warmup,
};

/* ---- write(2) of a line to an O_APPEND file, from each process ------------------------ */

struct wline {
	int fd;
	char line[4096];
};

static int write_open(struct bh_ctx *c, void **w)
{
	char path[256];
	bh_path(c->p, "write.log", path, sizeof(path));
	struct wline *x = malloc(sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (x->fd < 0) {
		int e = -errno;
		free(x);
		return e;
	}
	*w = x;
	return 0;
}

/* The cheapest a line can be: the message and its newline, one write(2). */
static int write_one(void *w, const char *msg, size_t len)
{
	struct wline *x = w;
	memcpy(x->line, msg, len);
	x->line[len] = '\n';
	return write(x->fd, x->line, len + 1) == (ssize_t)(len + 1) ? 0 : -errno;
}

static int write_end(void *w)
{
	struct wline *x = w;
	int r = close(x->fd) < 0 ? -errno : 0;
	free(x);
	return r;
}

static const struct bh_logops write_lo = { .open = write_open, .log = write_one, .close = write_end };

/* ---- fprintf to a line-buffered O_APPEND stream ------------------------------------------ */

static int stdio_open(struct bh_ctx *c, void **w)
{
	char path[256];
	bh_path(c->p, "stdio.log", path, sizeof(path));
	FILE *f = fopen(path, "ae");
	if (!f)
		return -errno;
	setvbuf(f, NULL, _IOLBF, 4096); /* a line at a time: whole lines from each process */
	*w = f;
	return 0;
}

static int stdio_one(void *w, const char *msg, size_t len)
{
	return fprintf(w, "%.*s\n", (int)len, msg) < 0 ? -EIO : 0;
}

static int stdio_end(void *w)
{
	return fclose(w) ? -errno : 0;
}

static const struct bh_logops stdio_lo = { .open = stdio_open, .log = stdio_one, .close = stdio_end };

/* ---- the rows --------------------------------------------------------------------------------- */

#define LOG_OP(name, lo, n, t)                                                                  \
	static int name(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)              \
	{                                                                                       \
		return bh_log_loop(c, &lo, n, t, h, r);                                         \
	}
LOG_OP(ipcx1, ipcx_lo, 1, 1)
LOG_OP(ipcx2, ipcx_lo, 2, 1)
LOG_OP(ipcx1t2, ipcx_lo, 1, 2)
LOG_OP(write1, write_lo, 1, 1)
LOG_OP(write2, write_lo, 2, 1)
LOG_OP(stdio1, stdio_lo, 1, 1)
LOG_OP(stdio2, stdio_lo, 2, 1)

#define ROW(var, who, how, fn, n)                                                              \
	static const struct bh_ops var = { .transport = "log", .impl = who, .mode = how,         \
					   .shared_bytes = bh_log_shared_bytes, .op = fn,       \
					   .arg = n }
ROW(ipcx_1, "ipcx", "1 writer", ipcx1, "1");
ROW(ipcx_2, "ipcx", "2 writers", ipcx2, "2");
/* One process, two threads on one handle: what its lock costs. */
ROW(ipcx_1t2, "ipcx", "2 threads", ipcx1t2, "1x2");
ROW(write_1, "write", "1 writer", write1, "1");
ROW(write_2, "write", "2 writers", write2, "2");
ROW(stdio_1, "fprintf", "1 writer", stdio1, "1");
ROW(stdio_2, "fprintf", "2 writers", stdio2, "2");

const struct bh_ops *const bh_log_ops[] = { &ipcx_1,  &ipcx_2,  &ipcx_1t2, &write_1,
					    &write_2, &stdio_1, &stdio_2,  NULL };
