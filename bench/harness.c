/*
 * The measuring core: histogram, pinning, the two forked sides of a case and
 * their timed loops.  Both sides take their clock from CLOCK_MONOTONIC, which
 * is one clock for the whole machine, so a time stamp taken by the server
 * can be compared with one taken by the client.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- histogram ------------------------------------------------------------ */

void bh_hist_init(struct bh_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
	if (v < BH_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - BH_SUB_BITS;
	/* Row shift+1 holds [2^msb, 2^(msb+1)) in BH_SUB steps of 2^shift. */
	return (shift + 1) * BH_SUB + (unsigned)((v >> shift) - BH_SUB);
}

/* The smallest value of bucket b, and its width. */
static void bucket_range(unsigned b, uint64_t *lo, uint64_t *width)
{
	unsigned row = b / BH_SUB, sub = b % BH_SUB;
	if (row == 0) {
		*lo = sub;
		*width = 1;
		return;
	}
	unsigned shift = row - 1;
	*lo = ((uint64_t)BH_SUB + sub) << shift;
	*width = (uint64_t)1 << shift;
}

void bh_hist_add(struct bh_hist *h, uint64_t v)
{
	unsigned b = bucket_of(v);
	if (b >= BH_BUCKETS)
		b = BH_BUCKETS - 1;
	h->bucket[b]++;
	h->n++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

uint64_t bh_hist_quantile(const struct bh_hist *h, double q)
{
	if (!h->n)
		return 0;
	/* The rank of the quantile, 1-based: the smallest value with at least
	 * q*n values at or below it. */
	uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < BH_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank) {
			uint64_t lo, w;
			bucket_range(b, &lo, &w);
			uint64_t v = lo + w / 2;
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

void bh_hist_result(const struct bh_hist *h, struct bh_result *r)
{
	r->samples = h->n;
	r->p50 = bh_hist_quantile(h, 0.50);
	r->p99 = bh_hist_quantile(h, 0.99);
	r->p999 = bh_hist_quantile(h, 0.999);
	r->max = h->n ? h->max : 0;
	r->min = h->n ? h->min : 0;
	r->mean = h->n ? h->sum / h->n : 0;
}

/* ---- small helpers -------------------------------------------------------- */

void bh_note(struct bh_result *r, int status, const char *fmt, ...)
{
	r->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->note, sizeof(r->note), fmt, ap);
	va_end(ap);
}

void bh_path(const struct bh_params *p, const char *leaf, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s-%s", p->dir, p->prefix, leaf);
}

void bh_name(const struct bh_params *p, const char *leaf, char *buf, size_t cap)
{
	snprintf(buf, cap, "/%s-%s", p->prefix, leaf);
}

void bh_pick_cpus(int cpu[2])
{
	cpu_set_t set;
	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	int n = 0, found[2] = { -1, -1 };
	for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			found[n++] = i;
	if (n == 2) {
		cpu[0] = found[0];
		cpu[1] = found[1];
	}
}

void bh_pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

int bh_ctl_send(struct bh_ctx *c, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = send(c->ctl, buf, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EPIPE;
	}
}

int bh_ctl_recv(struct bh_ctx *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(c->ctl, buf, len, 0);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EPIPE; /* 0: the other side is gone */
	}
}

int bh_ctl_recv_str(struct bh_ctx *c, char *buf, size_t cap)
{
	for (;;) {
		ssize_t n = recv(c->ctl, buf, cap, 0);
		if (n > 0) {
			buf[n < (ssize_t)cap ? n : (ssize_t)cap - 1] = 0;
			return (int)strlen(buf);
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EPIPE;
	}
}

int bh_ctl_sync(struct bh_ctx *c)
{
	char b = 's';
	int r = bh_ctl_send(c, &b, 1);
	return r ? r : bh_ctl_recv(c, &b, 1);
}

/* ---- result lines (peer programs) ----------------------------------------- */

void bh_result_print(const struct bh_result *r, FILE *f)
{
	/* The note goes last: it may hold spaces. */
	fprintf(f, "result %d %llu %llu %llu %llu %llu %llu %llu %.6e %.6e %llu %s\n", r->status,
		(unsigned long long)r->samples, (unsigned long long)r->p50,
		(unsigned long long)r->p99, (unsigned long long)r->p999,
		(unsigned long long)r->max, (unsigned long long)r->min,
		(unsigned long long)r->mean, r->msgs_per_s, r->bytes_per_s,
		(unsigned long long)r->lost, r->note[0] ? r->note : "-");
}

int bh_result_parse(const char *line, struct bh_result *r)
{
	struct bh_result t;
	memset(&t, 0, sizeof(t));
	unsigned long long s, a, b, c, d, e, g, lost;
	int off = 0;
	if (sscanf(line, "result %d %llu %llu %llu %llu %llu %llu %llu %le %le %llu %n",
		   &t.status, &s, &a, &b, &c, &d, &e, &g, &t.msgs_per_s, &t.bytes_per_s,
		   &lost, &off) < 11 || !off)
		return -EINVAL;
	if (t.status < BH_OK || t.status > BH_ERROR)
		return -EINVAL;
	t.samples = s, t.p50 = a, t.p99 = b, t.p999 = c, t.max = d, t.min = e, t.mean = g;
	t.lost = lost;
	snprintf(t.note, sizeof(t.note), "%s", line + off);
	t.note[strcspn(t.note, "\n")] = 0;
	if (!strcmp(t.note, "-"))
		t.note[0] = 0;
	*r = t;
	return 0;
}

/* ---- the two sides ---------------------------------------------------------- */

static void *msg_buffer(size_t size)
{
	size_t cap = size ? size : 1;
	void *b = NULL;
	if (posix_memalign(&b, 64, cap))
		return NULL;
	memset(b, 0x5a, cap); /* touch every page before timing */
	return b;
}

static int lat_client(const struct bh_ops *ops, struct bh_ctx *c, void *buf, struct bh_result *r)
{
	const struct bh_params *p = c->p;
	unsigned char *m = buf;
	struct bh_hist *h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	bh_hist_init(h);
	int err = 0;
	for (uint64_t i = 0; i < p->warmup + p->count && !err; i++) {
		unsigned char tag = (unsigned char)i;
		if (p->size)
			m[0] = tag;
		uint64_t t0 = bh_now();
		err = ops->send(c, m, p->size);
		if (!err)
			err = ops->recv(c, m, p->size, ops->lossy ? 2000 : -1);
		uint64_t t1 = bh_now();
		if (!err && p->size && m[0] != tag) {
			bh_note(r, BH_ERROR, "echo %llu came back altered", (unsigned long long)i);
			err = -EBADMSG;
		}
		if (i >= p->warmup)
			bh_hist_add(h, t1 - t0);
	}
	if (!err)
		bh_hist_result(h, r);
	free(h);
	return err;
}

static int lat_server(const struct bh_ops *ops, struct bh_ctx *c, void *buf)
{
	const struct bh_params *p = c->p;
	for (uint64_t i = 0; i < p->warmup + p->count; i++) {
		int err = ops->recv(c, buf, p->size, ops->lossy ? 2000 : -1);
		if (!err)
			err = ops->send(c, buf, p->size);
		if (err)
			return err;
	}
	return 0;
}

/* What the streaming server reports at the end of a phase. */
struct thr_report {
	uint64_t got;
	uint64_t t_last;
	int err;
};

/*
 * On a lossy transport the receiver cannot count to the end: the sender says
 * on the control link when it has sent everything, and the receiver stops
 * at the first short silence after that.
 */
static int lossy_done(const struct bh_ops *ops, struct bh_ctx *c)
{
	char d = 'd';
	return ops->lossy ? bh_ctl_send(c, &d, 1) : 0;
}

static bool sender_done(struct bh_ctx *c)
{
	char d;
	return recv(c->ctl, &d, 1, MSG_DONTWAIT) == 1;
}

/* n messages on the stream: one by one, or BH_BATCH to a call on batched rows. */
static int send_n(const struct bh_ops *ops, struct bh_ctx *c, void *buf, uint64_t n)
{
	for (uint64_t i = 0; i < n;) {
		uint64_t k = ops->sendv && n - i > BH_BATCH ? BH_BATCH : ops->sendv ? n - i : 1;
		int err = ops->sendv ? ops->sendv(c, buf, c->p->size, k) : ops->send(c, buf, c->p->size);
		if (err)
			return err;
		i += k;
	}
	return 0;
}

/* Up to `most` messages from the stream (exactly one without recvv): *got. */
static int recv_some(const struct bh_ops *ops, struct bh_ctx *c, void *buf, uint64_t most,
		     int timeout_ms, uint64_t *got)
{
	if (!ops->recvv) {
		*got = 1;
		return ops->recv(c, buf, c->p->size, timeout_ms);
	}
	size_t k = 0;
	int err = ops->recvv(c, c->p->size, most < BH_BATCH ? (size_t)most : BH_BATCH, timeout_ms,
			     &k);
	*got = k;
	return err;
}

static int thr_client(const struct bh_ops *ops, struct bh_ctx *c, void *buf, struct bh_result *r)
{
	const struct bh_params *p = c->p;
	struct thr_report rep = { 0, 0, 0 };
	int err = send_n(ops, c, buf, p->warmup);
	if (err)
		return err;
	err = lossy_done(ops, c);
	if (!err)
		err = bh_ctl_recv(c, &rep, sizeof(rep));
	if (err || rep.err)
		return err ? err : rep.err;
	uint64_t t0 = bh_now();
	if ((err = send_n(ops, c, buf, p->count)) != 0)
		return err;
	err = lossy_done(ops, c);
	if (!err)
		err = bh_ctl_recv(c, &rep, sizeof(rep));
	if (err || rep.err)
		return err ? err : rep.err;
	if (!rep.got || rep.t_last <= t0) {
		bh_note(r, BH_ERROR, "no message arrived");
		return -EIO;
	}
	double secs = (double)(rep.t_last - t0) / 1e9;
	r->samples = rep.got;
	r->lost = p->count - rep.got;
	r->msgs_per_s = (double)rep.got / secs;
	r->bytes_per_s = r->msgs_per_s * (double)p->size;
	return 0;
}

/* Receive n messages (fewer if lossy and the stream dried up), then report. */
static int thr_phase(const struct bh_ops *ops, struct bh_ctx *c, void *buf, uint64_t n)
{
	struct thr_report rep = { 0, 0, 0 };
	bool done = false;
	while (rep.got < n) {
		uint64_t k = 0;
		int err = recv_some(ops, c, buf, n - rep.got, ops->lossy ? 20 : -1, &k);
		if (err == -ETIMEDOUT && ops->lossy) {
			if (done)
				break; /* all sent, and nothing more came */
			done = sender_done(c);
			continue;
		}
		if (err) {
			rep.err = err;
			break;
		}
		rep.got += k;
		rep.t_last = bh_now();
	}
	/* All arrived before the silence: the sender's word is still queued. */
	while (ops->lossy && !done && !rep.err)
		done = sender_done(c) || bh_ctl_recv(c, &(char){ 0 }, 1) == 0;
	int err = bh_ctl_send(c, &rep, sizeof(rep));
	return rep.err ? rep.err : err;
}

static int thr_server(const struct bh_ops *ops, struct bh_ctx *c, void *buf)
{
	int err = thr_phase(ops, c, buf, c->p->warmup);
	return err ? err : thr_phase(ops, c, buf, c->p->count);
}

/* Calls in flight: start while the window has room, then take one reply. */
static int pipeline_client(const struct bh_ops *ops, struct bh_ctx *c, void *buf,
			   struct bh_result *r)
{
	const struct bh_params *p = c->p;
	uint64_t total = p->warmup + p->count, started = 0, done = 0, t0 = 0;
	while (done < total) {
		while (started < total && started - done < BH_INFLIGHT) {
			int err = ops->send(c, buf, p->size);
			if (err)
				return err;
			started++;
		}
		int err = ops->recv(c, buf, p->size, -1);
		if (err)
			return err;
		if (++done == p->warmup)
			t0 = bh_now(); /* the timed calls: those that finish after the warm-up */
	}
	uint64_t t1 = bh_now();
	if (!p->warmup)
		bh_note(r, BH_ERROR, "no warm-up to time from");
	r->samples = p->count;
	r->msgs_per_s = (double)p->count / ((double)(t1 - t0) / 1e9);
	r->bytes_per_s = r->msgs_per_s * (double)p->size;
	return p->warmup ? 0 : -EINVAL;
}

int bh_rpc_pipeline(const struct bh_ops *ops, struct bh_ctx *c, struct bh_result *r)
{
	void *buf = msg_buffer(c->p->size);
	if (!buf)
		return -ENOMEM;
	int err = 0;
	if (c->side == 0) {
		err = pipeline_client(ops, c, buf, r);
	} else {
		for (uint64_t i = 0; i < c->p->warmup + c->p->count && !err; i++) {
			err = ops->recv(c, buf, c->p->size, -1);
			if (!err)
				err = ops->send(c, buf, c->p->size);
		}
	}
	free(buf);
	return err;
}

static int run_loops(const struct bh_ops *ops, struct bh_ctx *c, struct bh_result *r)
{
	if (c->p->kind == BH_OPS) {
		struct bh_hist *h = malloc(sizeof(*h));
		if (!h)
			return -ENOMEM;
		bh_hist_init(h);
		int err = ops->op(c, h, r);
		free(h);
		return err;
	}
	if (c->p->kind == BH_THR && ops->thr)
		return ops->thr(ops, c, r);
	void *buf = msg_buffer(c->p->size);
	if (!buf)
		return -ENOMEM;
	int err;
	if (c->p->kind == BH_LAT)
		err = c->side ? lat_server(ops, c, buf) : lat_client(ops, c, buf, r);
	else
		err = c->side ? thr_server(ops, c, buf) : thr_client(ops, c, buf, r);
	free(buf);
	return err;
}

/* A record on the result pipe: a side's result, or SIDES_OPEN from side 0. */
struct record {
	int side;
	struct bh_result r;
};
#define SIDES_OPEN 2

static void send_record(int resfd, int side, const struct bh_result *r)
{
	/* One write of a small struct into a pipe is atomic. */
	struct record rec = { side, *r };
	ssize_t n = write(resfd, &rec, sizeof(rec));
	(void)n;
}

/* One side, in its own process: open, agree to start, loop, close. */
static void run_side(const struct bh_ops *ops, struct bh_ctx *c, int resfd)
{
	struct bh_result *r = c->res; /* zeroed by the caller */
	int err = ops->open ? ops->open(c) : 0;
	if (err) {
		if (r->status == BH_OK)
			bh_note(r, err == -EMSGSIZE ? BH_SKIP : BH_ERROR, "%s: open: %s",
				c->side ? "server" : "client", strerror(-err));
		if (ops->close)
			ops->close(c); /* undo what open got done */
	} else {
		err = bh_ctl_sync(c);
		if (!err && c->side == 0)
			send_record(resfd, SIDES_OPEN, r);
		if (!err)
			err = run_loops(ops, c, r);
		if (err && r->status == BH_OK)
			bh_note(r, err == -EMSGSIZE ? BH_SKIP : BH_ERROR, "%s: %s",
				c->side ? "server" : "client", strerror(-err));
		if (!err)
			(void)bh_ctl_sync(c); /* neither closes while the other still works */
		if (ops->close)
			ops->close(c);
	}
	send_record(resfd, c->side, r);
	_exit(err ? 1 : 0);
}

static pid_t fork_side(const struct bh_ops *ops, const struct bh_params *p, int side,
		       int ctl, int other_ctl, int resfd, void *shared)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* The child: die with the harness, let Ctrl-C end it plainly. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	close(other_ctl);
	if (p->ready_fd && *p->ready_fd > 2)
		close(*p->ready_fd); /* the harness's process signals it */
	bh_pin(p->cpu[side]);
	struct bh_result r;
	memset(&r, 0, sizeof(r));
	struct bh_ctx c = { .p = p, .side = side, .ctl = ctl, .shared = shared,
			    .priv = NULL, .arg = ops->arg, .res = &r };
	run_side(ops, &c, resfd);
	_exit(1);
}

/* Both sides of a case are open: say so on the ready descriptor, once. */
void bh_signal_ready(const struct bh_params *p)
{
	if (!p->ready_fd || *p->ready_fd < 0)
		return;
	/* A reader that went away is not the run's failure: no check beyond EINTR. */
	while (write(*p->ready_fd, "\n", 1) < 0 && errno == EINTR)
		;
	if (*p->ready_fd > 2) /* as ipcx recv --ready-fd: 0, 1 and 2 stay open */
		close(*p->ready_fd);
	*p->ready_fd = -1;
}

/* One side's record from the result pipe, waiting up to wait_ms. */
static int read_record(int resfd, int wait_ms, const struct bh_params *p, struct bh_result got[2],
		       bool have[2])
{
	struct record rec;
	struct pollfd pf = { resfd, POLLIN, 0 };
	if (poll(&pf, 1, wait_ms) <= 0)
		return 0;
	ssize_t k = read(resfd, &rec, sizeof(rec));
	if (k == 0)
		return -EPIPE; /* both sides gone */
	if (k == (ssize_t)sizeof(rec) && rec.side == SIDES_OPEN)
		bh_signal_ready(p);
	if (k != (ssize_t)sizeof(rec) || rec.side < 0 || rec.side > 1)
		return 0;
	got[rec.side] = rec.r;
	have[rec.side] = true;
	return 1;
}

/* A failure that only follows from the other side's (it went away). */
static bool knock_on(const struct bh_result *r)
{
	return strstr(r->note, "Broken pipe") || strstr(r->note, "Connection reset");
}

/* Wait for both sides' records until the guard or a stop request. */
static void collect(int resfd, const struct bh_params *p, volatile sig_atomic_t *stop,
		    struct bh_result *r)
{
	struct bh_result got[2];
	memset(got, 0, sizeof(got));
	bool have[2] = { false, false };
	uint64_t deadline = bh_now() + (uint64_t)p->timeout_ms * 1000000u;
	bool failed = false;
	while (!(have[0] && have[1])) {
		if (stop && *stop) {
			bh_note(r, BH_ERROR, "interrupted");
			return;
		}
		uint64_t now = bh_now();
		if (now >= deadline) {
			if (failed || have[0])
				break; /* a reason, or the client's numbers, are in */
			bh_note(r, BH_ERROR, "timed out after %d ms", p->timeout_ms);
			return;
		}
		int wait_ms = (int)((deadline - now) / 1000000u) + 1;
		if (read_record(resfd, wait_ms > 100 ? 100 : wait_ms, p, got, have) < 0)
			break;
		/* After a failure, or once the client has its numbers, the other
		 * side gets a short grace to report: its reason may be the cause. */
		bool bad = (have[0] && got[0].status != BH_OK) || (have[1] && got[1].status != BH_OK);
		if ((bad && !failed) || (have[0] && !have[1] && !failed)) {
			uint64_t grace = bh_now() + (bad ? 1000000000u : 3000000000u);
			if (grace < deadline)
				deadline = grace;
			failed = bad;
		}
	}
	bool bad0 = have[0] && got[0].status != BH_OK, bad1 = have[1] && got[1].status != BH_OK;
	if (bad0 && bad1)
		*r = knock_on(&got[0]) && !knock_on(&got[1]) ? got[1] : got[0];
	else if (bad0)
		*r = got[0];
	else if (bad1)
		*r = got[1];
	else if (have[0])
		*r = got[0]; /* the numbers stand even if the server hung on close */
	else
		bh_note(r, BH_ERROR, "a side died without a result");
}

int bh_run(const struct bh_ops *ops, const struct bh_params *p,
	   volatile sig_atomic_t *stop, struct bh_result *r)
{
	memset(r, 0, sizeof(*r));
	int ctl[2], res[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		bh_note(r, BH_ERROR, "socketpair: %s", strerror(errno));
		return -errno;
	}
	if (pipe2(res, O_CLOEXEC) < 0) {
		int e = errno;
		close(ctl[0]), close(ctl[1]);
		bh_note(r, BH_ERROR, "pipe: %s", strerror(e));
		return -e;
	}
	size_t shared_len = ops->shared_bytes ? ops->shared_bytes(p) : 0;
	void *shared = NULL;
	if (shared_len) {
		shared = mmap(NULL, shared_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			      -1, 0);
		if (shared == MAP_FAILED) {
			int e = errno;
			close(ctl[0]), close(ctl[1]), close(res[0]), close(res[1]);
			bh_note(r, BH_ERROR, "mmap %zu bytes: %s", shared_len, strerror(e));
			return -e;
		}
	}
	if (ops->prepare) {
		int e = ops->prepare(p, shared);
		if (e) {
			close(ctl[0]), close(ctl[1]), close(res[0]), close(res[1]);
			if (shared)
				munmap(shared, shared_len);
			bh_note(r, BH_ERROR, "prepare: %s", strerror(-e));
			return e;
		}
	}
	pid_t pid[2];
	pid[1] = fork_side(ops, p, 1, ctl[1], ctl[0], res[1], shared);
	pid[0] = pid[1] < 0 ? -1 : fork_side(ops, p, 0, ctl[0], ctl[1], res[1], shared);
	/* Only the sides keep the control link and the result pipe's write end:
	 * when both are gone, the harness sees it. */
	close(ctl[0]), close(ctl[1]), close(res[1]);
	if (ops->release)
		ops->release(shared);
	if (pid[0] < 0 || pid[1] < 0)
		bh_note(r, BH_ERROR, "fork: %s", strerror(errno));
	else
		collect(res[0], p, stop, r);
	/* Sides that reported are on their way out: give them a moment to exit
	 * on their own (a peer library may still be tidying up).  A side still
	 * running after that, or after a failure, is stuck: it goes. */
	uint64_t grace = bh_now() + (r->status == BH_OK && !(stop && *stop) ? 2000000000u : 0);
	for (int i = 0; i < 2; i++) {
		if (pid[i] <= 0)
			continue;
		while (waitpid(pid[i], NULL, WNOHANG) == 0) {
			if (bh_now() >= grace) {
				kill(pid[i], SIGKILL);
				waitpid(pid[i], NULL, 0);
				break;
			}
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	close(res[0]);
	if (shared)
		munmap(shared, shared_len);
	return 0;
}

/* ---- cleaning up after a case that was killed ---------------------------------- */

static void sweep_dir(const char *dir, const char *prefix, bool mqueue)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	size_t n = strlen(prefix);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *name = e->d_name;
		/* POSIX named semaphores live in /dev/shm as "sem.NAME". */
		bool ours = !strncmp(name, prefix, n) ||
			    (!strncmp(name, "sem.", 4) && !strncmp(name + 4, prefix, n));
		if (!ours || e->d_type == DT_DIR)
			continue;
		if (mqueue) {
			char q[300];
			snprintf(q, sizeof(q), "/%s", name);
			mq_unlink(q);
		} else {
			unlinkat(dirfd(d), name, 0);
		}
	}
	closedir(d);
}

static void sweep_sysv(int key)
{
	int id;
	if ((id = msgget(key, 0)) >= 0)
		msgctl(id, IPC_RMID, NULL);
	if ((id = shmget(key, 0, 0)) >= 0)
		shmctl(id, IPC_RMID, NULL);
	if ((id = semget(key, 0, 0)) >= 0)
		semctl(id, 0, IPC_RMID);
}

void bh_sweep(const struct bh_params *p)
{
	/* The private folder holds only this run's files: empty it. */
	DIR *d = opendir(p->dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	/* Sockets a peer library made in /tmp under the run's name (iceoryx). */
	sweep_dir("/tmp", p->prefix, false);
	sweep_dir("/dev/shm", p->prefix, false);
	sweep_dir("/dev/mqueue", p->prefix, true);
	if (p->key) {
		sweep_sysv(p->key);
		sweep_sysv(p->key + 1);
	}
}
