/*
 * ipcx pool: tasks from standard input, one per line, through N long-lived
 * copies of a command (each task is one line on a worker's stdin, its result
 * one line of that worker's stdout): for workers slow to start, where
 * `xargs -P` would start a process per task.  Built on ipcx_pool_* with the
 * "stdio" queue; a worker that dies is restarted and its task reported.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <ipcx.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: ipcx pool [-j N] [--ordered] [--retry] [--max BYTES] -- COMMAND [ARG...]\n"
	"\n"
	"Read tasks from standard input, one per line; hand each to one of N copies of\n"
	"COMMAND, started once and kept running, as a line on its standard input, and\n"
	"take one line of its standard output as the result; print TASKNO<TAB>RESULT\n"
	"(TASKNO counts input lines from 1) as results come.\n"
	"\n"
	"  -j N          N workers (1 .. 1024; default: the number of CPUs)\n"
	"  --ordered     print results in input order\n"
	"  --retry       run again elsewhere a task whose worker died running it (at\n"
	"                least once); by default it is reported failed (at most once)\n"
	"  --max BYTES   the longest task or result line (default 65536)\n"
	"  --help        this text\n"
	"\n"
	"A worker that dies is restarted; a task it took with it is reported on\n"
	"stderr, and the exit status is then 1.  SIGTERM, SIGINT: stop (tasks not\n"
	"yet run are reported); SIGHUP: restart the workers one by one.\n";

struct pool_args {
	long jobs, max;
	bool ordered, retry;
	char **cmd;
};

static int parse(int argc, char **argv, struct pool_args *a)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	a->jobs = cpus > 0 && cpus <= 1024 ? cpus : 1;
	a->max = 65536;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			fputs(usage_text, stdout);
			return -1;
		} else if (!strcmp(o, "-j") || !strcmp(o, "--jobs")) {
			if (!v || !cli_parse_long(v, 1, 1024, &a->jobs))
				return cli_usage("pool", "-j wants 1 .. 1024 workers");
			i++;
		} else if (!strcmp(o, "--max")) {
			if (!v || !cli_parse_long(v, 1, 16 << 20, &a->max))
				return cli_usage("pool", "--max wants 1 .. 16777216 bytes");
			i++;
		} else if (!strcmp(o, "--ordered")) {
			a->ordered = true;
		} else if (!strcmp(o, "--retry")) {
			a->retry = true;
		} else {
			return cli_usage("pool", "unknown option '%s'", o);
		}
	}
	if (i >= argc)
		return cli_usage("pool", "want '-- COMMAND'");
	if (i + 1 >= argc)
		return cli_usage("pool", "no COMMAND after '--'");
	a->cmd = argv + i + 1;
	return 0;
}

/* ---- the run ------------------------------------------------------------------ */

#define WINDOW 4096 /* tasks read ahead of the oldest not yet printed */

struct run {
	struct pool_args *a;
	ipcx_pool *p;
	/* input */
	char *buf;
	size_t len, cap;
	bool eof, stop_reading;
	uint64_t lines;      /* lines read (the last task number) */
	uint64_t *skip;      /* ids after which a line was not submitted (too long) */
	size_t nskip, capskip;
	/* output */
	uint64_t outcomes, submitted, failed, not_run;
	uint64_t next;       /* --ordered: the next task number to print */
	char **held;         /* --ordered: results waiting, by task number % WINDOW */
	bool *settled;
	char *res;
};

/* The task number of an id: ids count submitted lines only. */
static uint64_t taskno(const struct run *r, uint64_t id)
{
	size_t lo = 0, hi = r->nskip; /* skips with skip[k] < id */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->skip[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return id + lo;
}

static void print_ordered(struct run *r)
{
	while (r->next <= r->lines && r->settled[r->next % WINDOW]) {
		size_t k = r->next % WINDOW;
		if (r->held[k])
			printf("%" PRIu64 "\t%s\n", r->next, r->held[k]);
		free(r->held[k]);
		r->held[k] = NULL;
		r->settled[k] = false;
		r->next++;
	}
}

/* A task's outcome: printed, kept for order, or reported. */
static void settle(struct run *r, uint64_t no, const char *text)
{
	r->outcomes++;
	if (!r->a->ordered) {
		if (text)
			printf("%" PRIu64 "\t%s\n", no, text);
		return;
	}
	size_t k = no % WINDOW;
	r->held[k] = text ? strdup(text) : NULL;
	r->settled[k] = true;
	print_ordered(r);
}

static void failed(struct run *r, uint64_t no, int status)
{
	if (status == -ECANCELED || status == -ECHILD) {
		r->not_run++;
	} else if (status == -EOWNERDEAD) {
		fprintf(stderr, "ipcx pool: task %" PRIu64 " failed: its worker died running it\n", no);
	} else if (status == -EMSGSIZE) {
		fprintf(stderr, "ipcx pool: task %" PRIu64 " failed: its result is longer than "
				"--max\n", no);
	} else {
		fprintf(stderr, "ipcx pool: task %" PRIu64 " failed: %s\n", no, ipcx_strerror(status));
	}
	r->failed++;
	settle(r, no, NULL);
}

/* Take every outcome ready: how many, or < 0 when the pool cannot go on. */
static int take_results(struct run *r)
{
	for (int n = 0;; n++) {
		struct ipcx_task_result res;
		int e = ipcx_pool_result(r->p, r->res, (size_t)r->a->max, 0, &res);
		if (e == -EAGAIN || e == -ENOENT)
			return n;
		if (e < 0)
			return e;
		uint64_t no = taskno(r, res.id);
		if (res.status) {
			failed(r, no, res.status);
			continue;
		}
		r->res[res.len] = 0;
		settle(r, no, r->res);
	}
}

static int skip_line(struct run *r, uint64_t no)
{
	if (r->nskip == r->capskip) {
		size_t cap = r->capskip ? r->capskip * 2 : 16;
		uint64_t *s = realloc(r->skip, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		r->skip = s;
		r->capskip = cap;
	}
	r->skip[r->nskip++] = r->submitted;
	fprintf(stderr, "ipcx pool: task %" PRIu64 " failed: the line is longer than --max\n", no);
	r->failed++;
	settle(r, no, NULL);
	return 0;
}

/* Submit the complete lines read, while the pool takes them: how many. */
static int submit_lines(struct run *r)
{
	size_t off = 0;
	int count = 0;
	for (; !r->stop_reading; count++) {
		if (r->a->ordered && r->lines + 1 - r->next >= WINDOW)
			break; /* the oldest is still running: read no further ahead */
		char *nl = memchr(r->buf + off, '\n', r->len - off);
		size_t n = nl ? (size_t)(nl - (r->buf + off)) : r->len - off;
		if (!nl && !(r->eof && n))
			break;
		uint64_t id;
		int e = n > (size_t)r->a->max ? -EMSGSIZE
					      : ipcx_pool_submit(r->p, r->buf + off, n, 0, &id);
		if (e == -EAGAIN)
			break;
		r->lines++;
		if (e == -EMSGSIZE)
			e = skip_line(r, r->lines);
		else if (e == 0)
			r->submitted++;
		if (e < 0)
			return e;
		off += n + (nl != NULL);
	}
	memmove(r->buf, r->buf + off, r->len - off);
	r->len -= off;
	return count;
}

/* Read what standard input has; a line longer than --max is not kept whole. */
static int read_input(struct run *r)
{
	if (r->len == r->cap) {
		/* A line longer than the buffer: keep its start (it fails anyway). */
		char *nl = memchr(r->buf, '\n', r->len);
		if (!nl)
			r->len = (size_t)r->a->max + 1;
	}
	ssize_t n = read(0, r->buf + r->len, r->cap - r->len);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		r->eof = true;
	r->len += (size_t)n;
	return 0;
}

/* The pool stopped taking tasks (a crash loop, a stop): say so once. */
static void stop_reading(struct run *r, int why)
{
	const char *d = ipcx_errdetail();
	if (!strncmp(d, "pool: ", 6))
		d += 6;
	if (why == -ECHILD && !strstr(d, "crash loop"))
		d = "the workers keep dying (a crash loop)";
	if (!r->stop_reading && !r->eof)
		fprintf(stderr, "ipcx pool: %s; input after line %" PRIu64 " not read\n",
			why == -ECHILD ? d : "stopped", r->lines);
	r->stop_reading = true;
}

static int loop(struct run *r)
{
	for (;;) {
		int e = submit_lines(r);
		if (e == -ECHILD || e == -ESHUTDOWN)
			stop_reading(r, e);
		else if (e < 0)
			return e;
		int taken = take_results(r);
		if (taken == -ECHILD)
			stop_reading(r, taken);
		else if (taken < 0)
			return taken;
		if (taken > 0)
			continue; /* room for more tasks, perhaps */
		struct ipcx_pool_stats st;
		ipcx_pool_stats(r->p, &st);
		if (st.stopped)
			stop_reading(r, st.crashloop ? -ECHILD : -ESHUTDOWN); /* SIGTERM, SIGINT */
		bool more_input = !r->eof && !r->stop_reading;
		if (!more_input && r->outcomes == r->submitted + r->nskip)
			return 0;
		struct pollfd pf[2] = { { ipcx_pool_fileno(r->p), POLLIN, 0 }, { 0, POLLIN, 0 } };
		bool room = r->len < r->cap && !memchr(r->buf, '\n', r->len);
		int nfd = more_input && room ? 2 : 1;
		if (poll(pf, (nfds_t)nfd, -1) < 0 && errno != EINTR)
			return -errno;
		if (pf[0].revents)
			ipcx_pool_run(r->p, 0); /* deaths, signals, restarts */
		if (nfd == 2 && pf[1].revents && (e = read_input(r)) < 0)
			return e;
		if (more_input && !room && r->len == r->cap && (e = read_input(r)) < 0)
			return e;
	}
}

static void run_free(struct run *r)
{
	for (size_t k = 0; r->held && k < WINDOW; k++)
		free(r->held[k]);
	free(r->held);
	free(r->settled);
	free(r->buf);
	free(r->res);
	free(r->skip);
}

/* Start the workers and run the tasks: an exit status. */
static int run_pool(struct run *r)
{
	const struct pool_args *a = r->a;
	r->cap = (size_t)a->max + 2;
	r->buf = malloc(r->cap);
	r->res = malloc((size_t)a->max + 1);
	r->held = calloc(WINDOW, sizeof(*r->held));
	r->settled = calloc(WINDOW, sizeof(*r->settled));
	if (!r->buf || !r->res || !r->held || !r->settled)
		return cli_fail(-ENOMEM, "cannot start");
	struct ipcx_pool_opts o = {
		.workers = (unsigned)a->jobs, .argv = a->cmd, .queue = "stdio",
		.max_msg = (size_t)a->max, .limit = 4 * (unsigned)a->jobs,
		.flags = IPCX_POOL_SIGNALS | (a->retry ? IPCX_POOL_AT_LEAST_ONCE : 0),
	};
	int e = ipcx_pool_start(&o, &r->p);
	if (e == -ENOENT || e == -EACCES) {
		ipcx_errdetail_set(0, "%s", ""); /* the sentence says it all */
		cli_fail(e, "pool: cannot run %s", a->cmd[0]);
		return e == -ENOENT ? 127 : 126;
	}
	if (e < 0)
		return cli_fail(e, "cannot start the workers");
	e = loop(r);
	ipcx_pool_close(r->p);
	if (e < 0)
		cli_fail(e, "pool");
	if (a->ordered)
		print_ordered(r);
	if (r->not_run)
		fprintf(stderr, "ipcx pool: %" PRIu64 " task%s not run\n", r->not_run,
			r->not_run == 1 ? "" : "s");
	if (fflush(stdout) != 0)
		return CLI_FAIL;
	/* Stopped (a signal, a crash loop) with input left: not everything ran. */
	return e < 0 || r->failed || (r->stop_reading && !r->eof) ? CLI_FAIL : CLI_OK;
}

int cli_pool(int argc, char **argv)
{
	struct pool_args a = { 0 };
	int e = parse(argc, argv, &a);
	if (e)
		return e < 0 ? CLI_OK : e;
	struct run r = { .a = &a, .next = 1 };
	int status = run_pool(&r);
	run_free(&r);
	return status;
}
