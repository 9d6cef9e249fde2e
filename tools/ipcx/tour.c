/*
 * ipcx tour [--count N] [--size BYTES] [SCHEME...]
 *
 * A short, real tour: for every transport this build has, a child process
 * echoes messages back to its parent, and the parent measures the round
 * trips.  Transports are found by trying one URL per known scheme and
 * skipping those the library reports as unknown, so the tour grows as
 * transports are added: add a line to `stops` for a new scheme.
 *
 * Each stop uses two channels of its transport, one per direction, because
 * a listener receives and a dialer sends on every transport:
 *
 *     parent: listen(pong)  fork  ---- child: listen(ping), report its address
 *     parent: dial(ping)    send  ---> child: recv(ping), send back over pong
 *     parent: recv(pong)    <-------------------------------------'
 *
 * Everything is named after the pid (a folder /tmp/ipcx-tour-PID-XXXXXX for
 * paths, ipcx-tour-PID-... for other names, ftok keys of that folder for
 * System V), and each side closes what it listened on, which removes it.
 * SIGINT/SIGTERM/SIGHUP are held back until the current stop is done, so an
 * interrupted tour still cleans up.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <ipcx.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Guard for every wait in the tour: generous, a loaded machine is slow. */
#define TOUR_TIMEOUT_MS 10000

/* The median is taken over at most this many round trips, evenly spread. */
#define RTT_SAMPLES 65536

enum stop_kind {
	STOP_NAMED, /* listen/dial by URL */
	STOP_FD,    /* fd:N on pipes inherited across fork */
};

struct stop {
	const char *scheme;
	const char *what;
	enum stop_kind kind;
	/*
	 * The URL, with {dir} the tour's folder, {name} "ipcx-tour-PID",
	 * {role} "ping" or "pong", {key} a System V key (ftok of the folder).
	 */
	const char *tmpl;
	/*
	 * A file a persistent transport keeps after its listener closes (a
	 * record file is a log that outlives its writers): the tour removes it.
	 */
	const char *keeps;
};

static const struct stop stops[] = {
	{ "fd", "inherited pipe", STOP_FD, NULL, NULL },
	{ "fifo", "named pipe", STOP_NAMED, "fifo:{dir}/{role}.fifo", NULL },
	{ "unix", "Unix stream socket", STOP_NAMED, "unix:{dir}/{role}.sock", NULL },
	{ "unixpacket", "Unix seqpacket socket", STOP_NAMED, "unixpacket:{dir}/{role}.pkt", NULL },
	{ "unixgram", "Unix datagram socket", STOP_NAMED, "unixgram:{dir}/{role}.dgram", NULL },
	{ "tcp", "TCP, loopback", STOP_NAMED, "tcp://127.0.0.1:0", NULL },
	{ "udp", "UDP, loopback", STOP_NAMED, "udp://127.0.0.1:0", NULL },
	{ "mq", "POSIX message queue", STOP_NAMED, "mq:/{name}-{role}", NULL },
	{ "sysvmq", "System V message queue", STOP_NAMED, "sysvmq:{key}", NULL },
	{ "shm", "POSIX shared-memory ring", STOP_NAMED, "shm:/{name}-{role}", NULL },
	{ "sysvshm", "System V shared-memory ring", STOP_NAMED, "sysvshm:{key}", NULL },
	{ "mmap", "memory-mapped file ring", STOP_NAMED, "mmap:{dir}/{role}.mmap", "{dir}/{role}.mmap" },
	{ "file", "record file", STOP_NAMED, "file:{dir}/{role}.rec", "{dir}/{role}.rec" },
};

#define NSTOPS (sizeof(stops) / sizeof(stops[0]))

struct tour {
	long count;     /* round trips per transport */
	long size;      /* bytes per message */
	bool want[NSTOPS];
	char dir[64];   /* the tour's folder */
	char name[48];  /* "ipcx-tour-PID" */
	int next_proj;  /* ftok project ids handed out so far */
	char *out, *in; /* message buffers */
	int64_t *rtt;   /* sampled round-trip times of the current stop, ns */
	long nrtt;      /* room in rtt: at most RTT_SAMPLES */
	sigset_t held;  /* stop signals, blocked and looked for between messages */
	int sig;        /* the stop signal that came, or 0 */
};

/* What one stop found. */
struct result {
	bool skipped;   /* not in this build */
	char url[256];  /* the ping URL (as the child reports it) */
	char error[512];
	double median_us;
};

static void help(void)
{
	printf("usage: ipcx tour [--count N] [--size BYTES] [SCHEME...]\n"
	       "\n"
	       "Send messages over every transport in this build (or only the SCHEMEs\n"
	       "named) between two processes, check that each comes back intact, and\n"
	       "show the median round-trip time.  Transports not in this build are\n"
	       "listed as such.  Everything the tour creates is removed.\n"
	       "\n"
	       "  -c, --count N       round trips per transport (default 1000)\n"
	       "  -s, --size BYTES    message size (default 64)\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "schemes:");
	for (size_t i = 0; i < NSTOPS; i++)
		printf(" %s", stops[i].scheme);
	printf("\n");
}

static int parse_args(int argc, char **argv, struct tour *t)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":c:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (!cli_parse_long(optarg, 1, 10000000, &t->count))
				return cli_usage("tour", "N must be a whole number from 1 to 10000000, not '%s'",
						 optarg);
			break;
		case 's':
			if (!cli_parse_long(optarg, 16, 65536, &t->size))
				return cli_usage("tour", "BYTES must be a whole number from 16 to 65536, not '%s'",
						 optarg);
			break;
		case 'h':
			help();
			return -1;
		case ':':
			return cli_usage("tour", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage("tour", "unknown option '%s'", argv[optind - 1]);
		}
	}
	bool any = optind < argc;
	for (size_t i = 0; i < NSTOPS; i++)
		t->want[i] = !any;
	for (int a = optind; a < argc; a++) {
		size_t i = 0;
		while (i < NSTOPS && strcmp(argv[a], stops[i].scheme) != 0)
			i++;
		if (i == NSTOPS)
			return cli_usage("tour", "the tour knows no scheme '%s'", argv[a]);
		t->want[i] = true;
	}
	return CLI_OK;
}

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Fill buf from the template; false if it does not fit or ftok fails. */
static bool expand(struct tour *t, const char *tmpl, const char *role, char *buf, size_t cap)
{
	size_t n = 0;
	for (const char *p = tmpl; *p;) {
		char key[16];
		const char *sub = NULL;
		size_t skip = 0;
		if (!strncmp(p, "{dir}", 5))
			sub = t->dir, skip = 5;
		else if (!strncmp(p, "{name}", 6))
			sub = t->name, skip = 6;
		else if (!strncmp(p, "{role}", 6))
			sub = role, skip = 6;
		else if (!strncmp(p, "{key}", 5)) {
			/* ftok of our own folder: a key no other program picks. */
			key_t k = ftok(t->dir, ++t->next_proj);
			if (k == -1)
				return false;
			snprintf(key, sizeof(key), "0x%08x", (unsigned)k);
			sub = key, skip = 5;
		}
		size_t len = sub ? strlen(sub) : 1;
		if (n + len >= cap)
			return false;
		memcpy(buf + n, sub ? sub : p, len);
		n += len;
		p += sub ? skip : 1;
	}
	buf[n] = '\0';
	return true;
}

/* Is this failure the library saying it has no such transport? */
static bool unknown_scheme(int err)
{
	return err == -EPROTONOSUPPORT ||
	       (err == -EINVAL && strstr(ipcx_errdetail(), "unknown scheme") != NULL);
}

static void describe(struct result *res, int err, const char *what)
{
	const char *d = ipcx_errdetail();
	snprintf(res->error, sizeof(res->error), "%s: %s%s%s%s", what, ipcx_strerror(err),
		 *d ? " (" : "", d, *d ? ")" : "");
}

/* A line from the child over the handshake pipe, within the guard. */
static bool read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, TOUR_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || read(fd, buf + n, 1) != 1)
			return false;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return true;
}

static void write_line(int fd, const char *s)
{
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "%s\n", s);
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	ssize_t w = write(fd, buf, (size_t)n);
	(void)w; /* the parent sees a missing line as a failure */
}

/* ---- the child: echo every ping back as a pong ------------------------------ */

/*
 * Echo t->count + 1 messages (a greeting, then the round trips).  The
 * parent never sends an empty message but to say "stop early".
 */
static int echo(struct tour *t, ipcx_chan *in, ipcx_chan *out)
{
	for (long i = 0; i <= t->count; i++) {
		ssize_t n = ipcx_recv(in, t->in, (size_t)t->size, TOUR_TIMEOUT_MS);
		if (n == 0)
			return 0;
		if (n < 0 || ipcx_send(out, t->in, (size_t)n, TOUR_TIMEOUT_MS) != n)
			return 1;
	}
	return 0;
}

/* The child of a named stop: listen on ping, tell the parent, echo to pong. */
static int child_named(struct tour *t, const char *ping_url, const char *pong_addr, int hs)
{
	ipcx_chan *ping = NULL, *pong = NULL;
	int r = ipcx_listen(ping_url, 0, &ping);
	if (r < 0) {
		char line[600];
		const char *d = ipcx_errdetail();
		snprintf(line, sizeof(line), "!cannot listen on %s: %s%s%s%s", ping_url,
			 ipcx_strerror(r), *d ? " (" : "", d, *d ? ")" : "");
		write_line(hs, line);
		return 1;
	}
	char addr[256];
	if (ipcx_addr(ping, addr, sizeof(addr)) < 0)
		snprintf(addr, sizeof(addr), "%s", ping_url);
	write_line(hs, addr);
	close(hs);
	int rc = 1;
	if (ipcx_dial(pong_addr, 0, &pong) == 0)
		rc = echo(t, ping, pong);
	ipcx_close(pong);
	ipcx_close(ping); /* removes the ping object */
	return rc;
}

/* ---- the parent: measure the round trips ------------------------------------ */

/* A stop signal waiting (blocked) in set: its number, or 0. */
static int stopped_by(const sigset_t *set)
{
	sigset_t pend;
	if (sigpending(&pend) < 0)
		return 0;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(set, s) == 1 && sigismember(&pend, s) == 1)
			return s;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* One message there and back, checked byte for byte; 0 or a failure. */
static int round_trip(struct tour *t, ipcx_chan *ping, ipcx_chan *pong, size_t len,
		      struct result *res)
{
	ssize_t r = ipcx_send(ping, t->out, len, TOUR_TIMEOUT_MS);
	if (r < 0) {
		describe(res, (int)r, "send");
		return -1;
	}
	r = ipcx_recv(pong, t->in, (size_t)t->size, TOUR_TIMEOUT_MS);
	if (r < 0) {
		describe(res, (int)r, "receive");
		return -1;
	}
	if ((size_t)r != len || memcmp(t->in, t->out, len) != 0) {
		snprintf(res->error, sizeof(res->error),
			 "the echo differs from the message sent (%zd bytes back for %zu)", r, len);
		return -1;
	}
	return 0;
}

/* A greeting, then t->count timed round trips. */
static int exchange(struct tour *t, const struct stop *s, ipcx_chan *ping, ipcx_chan *pong,
		    struct result *res)
{
	int len = snprintf(t->out, (size_t)t->size, "hello over %s", s->scheme);
	if (round_trip(t, ping, pong, (size_t)len, res) < 0)
		return -1;
	long stride = (t->count + t->nrtt - 1) / t->nrtt, n_rtt = 0;
	for (long i = 0; i < t->count; i++) {
		/* A signal stops the tour within a few messages, cleanly. */
		if (i % 64 == 0 && (t->sig = stopped_by(&t->held)) != 0) {
			snprintf(res->error, sizeof(res->error), "interrupted");
			return -1;
		}
		/* Number each message so that a lost or reordered one shows. */
		memset(t->out, '.', (size_t)t->size);
		int n = snprintf(t->out, (size_t)t->size, "ping %ld ", i);
		t->out[n < t->size ? n : t->size - 1] = '.';
		int64_t t0 = now_ns();
		if (round_trip(t, ping, pong, (size_t)t->size, res) < 0)
			return -1;
		if (i % stride == 0 && n_rtt < t->nrtt)
			t->rtt[n_rtt++] = now_ns() - t0;
	}
	qsort(t->rtt, (size_t)n_rtt, sizeof(t->rtt[0]), cmp_i64);
	res->median_us = (double)t->rtt[n_rtt / 2] / 1000.0;
	return 0;
}

/* Wait for the child; a child that failed makes the stop fail. */
static void reap(pid_t pid, struct result *res)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!res->error[0] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		snprintf(res->error, sizeof(res->error), "the echoing child failed");
}

/* Remove what a persistent transport keeps on purpose (if it did). */
static void remove_kept(struct tour *t, const struct stop *s)
{
	static const char *const roles[] = { "ping", "pong" };
	char path[256];
	for (int i = 0; s->keeps && i < 2; i++)
		if (expand(t, s->keeps, roles[i], path, sizeof(path)))
			unlink(path);
}

static void run_named(struct tour *t, const struct stop *s, struct result *res)
{
	char pong_url[256], ping_url[256], pong_addr[256];
	if (!expand(t, s->tmpl, "pong", pong_url, sizeof(pong_url)) ||
	    !expand(t, s->tmpl, "ping", ping_url, sizeof(ping_url))) {
		snprintf(res->error, sizeof(res->error), "cannot make a URL from %s", s->tmpl);
		return;
	}
	ipcx_chan *pong = NULL, *ping = NULL;
	int r = ipcx_listen(pong_url, 0, &pong);
	if (r < 0) {
		if (unknown_scheme(r))
			res->skipped = true;
		else
			describe(res, r, pong_url);
		return;
	}
	if (ipcx_addr(pong, pong_addr, sizeof(pong_addr)) < 0)
		snprintf(pong_addr, sizeof(pong_addr), "%s", pong_url);
	int hs[2];
	if (pipe2(hs, O_CLOEXEC) < 0) {
		describe(res, -errno, "pipe");
		ipcx_close(pong);
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* The parent's pong listener is its own to close: leave it alone. */
		close(hs[0]);
		_exit(child_named(t, ping_url, pong_addr, hs[1]));
	}
	close(hs[1]);
	if (pid < 0) {
		describe(res, -errno, "fork");
	} else if (!read_line(hs[0], res->url, sizeof(res->url))) {
		snprintf(res->error, sizeof(res->error), "the child did not start listening");
	} else if (res->url[0] == '!') {
		snprintf(res->error, sizeof(res->error), "%s", res->url + 1);
		snprintf(res->url, sizeof(res->url), "%s", ping_url);
	} else if ((r = ipcx_dial(res->url, 0, &ping)) < 0) {
		describe(res, r, "dial");
	} else if (exchange(t, s, ping, pong, res) < 0) {
		ipcx_send(ping, "", 0, 1000); /* tell the child to stop early */
	}
	close(hs[0]);
	/* Closing ping first lets a child still waiting see the end. */
	ipcx_close(ping);
	if (pid > 0)
		reap(pid, res);
	ipcx_close(pong);
	remove_kept(t, s);
}

/* fd: the child inherits one end of each of two pipes across fork. */
static void run_fd(struct tour *t, const struct stop *s, struct result *res)
{
	int pi[2], po[2];
	if (pipe2(pi, O_CLOEXEC) < 0 || pipe2(po, O_CLOEXEC) < 0) {
		describe(res, -errno, "pipe");
		return;
	}
	char url[32];
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(pi[1]);
		close(po[0]);
		ipcx_chan *in = NULL, *out = NULL;
		char u[2][32];
		snprintf(u[0], sizeof(u[0]), "fd:%d", pi[0]);
		snprintf(u[1], sizeof(u[1]), "fd:%d", po[1]);
		int rc = ipcx_dial(u[0], 0, &in) == 0 && ipcx_dial(u[1], 0, &out) == 0 ? echo(t, in, out) : 1;
		ipcx_close(in);
		ipcx_close(out);
		_exit(rc);
	}
	close(pi[0]);
	close(po[1]);
	ipcx_chan *ping = NULL, *pong = NULL;
	snprintf(res->url, sizeof(res->url), "fd:%d", pi[1]);
	snprintf(url, sizeof(url), "fd:%d", po[0]);
	int r;
	if (pid < 0)
		describe(res, -errno, "fork");
	else if ((r = ipcx_dial(res->url, 0, &ping)) < 0 || (r = ipcx_dial(url, 0, &pong)) < 0)
		unknown_scheme(r) ? (void)(res->skipped = true) : describe(res, r, "dial");
	else if (exchange(t, s, ping, pong, res) < 0)
		ipcx_send(ping, "", 0, 1000); /* tell the child to stop early */
	/* A channel owns its descriptor; close the ones no channel took. */
	if (!ping)
		close(pi[1]);
	if (!pong)
		close(po[0]);
	ipcx_close(ping);
	ipcx_close(pong);
	if (pid > 0)
		reap(pid, res);
}

/* ---- the tour ---------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag;
	if (f->level > 0)
		fprintf(stderr, "ipcx: the tour left %s behind; removing it\n", p);
	return remove(p);
}

/* Remove the folder; anything still in it is a leak, reported as a failure. */
static bool remove_dir(const char *dir)
{
	if (rmdir(dir) == 0)
		return true;
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return false;
}

/* The stop signals, blocked until a stop is over (those not ignored). */
static void hold_signals(sigset_t *set, sigset_t *old)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;
		if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(set, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, set, old);
}

static void print_result(const struct stop *s, const struct result *res, long count)
{
	if (res->error[0])
		printf("  %-11s %-28s FAILED: %s\n", s->scheme, s->what, res->error);
	else
		printf("  %-11s %-28s %ld round trips, median %8.1f us   %s\n", s->scheme, s->what,
		       count, res->median_us, res->url);
	fflush(stdout);
}

static int run_stops(struct tour *t)
{
	int failed = 0, ran = 0;
	char skipped[512] = "";
	for (size_t i = 0; i < NSTOPS && !t->sig && !(t->sig = stopped_by(&t->held)); i++) {
		if (!t->want[i])
			continue;
		struct result res = { 0 };
		if (stops[i].kind == STOP_FD)
			run_fd(t, &stops[i], &res);
		else
			run_named(t, &stops[i], &res);
		if (res.skipped) {
			size_t n = strlen(skipped);
			snprintf(skipped + n, sizeof(skipped) - n, " %s", stops[i].scheme);
			continue;
		}
		if (t->sig)
			break;
		ran++;
		failed += res.error[0] != '\0';
		print_result(&stops[i], &res, t->count);
	}
	if (*skipped)
		printf("  not in this build:%s\n", skipped);
	if (!t->sig)
		printf("%d transport%s, %d failed.\n", ran, ran == 1 ? "" : "s", failed);
	return failed ? CLI_FAIL : CLI_OK;
}

int cli_tour(int argc, char **argv)
{
	struct tour t = { .count = 1000, .size = 64 };
	int rc = parse_args(argc, argv, &t);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	snprintf(t.name, sizeof(t.name), "ipcx-tour-%d", (int)getpid());
	snprintf(t.dir, sizeof(t.dir), "/tmp/%s-XXXXXX", t.name);
	t.out = malloc((size_t)t.size);
	t.in = malloc((size_t)t.size);
	t.nrtt = t.count < RTT_SAMPLES ? t.count : RTT_SAMPLES;
	t.rtt = malloc((size_t)t.nrtt * sizeof(*t.rtt));
	if (!t.out || !t.in || !t.rtt) {
		free(t.out), free(t.in), free(t.rtt);
		return cli_fail(-ENOMEM, "cannot allocate the tour's buffers");
	}
	sigset_t old;
	hold_signals(&t.held, &old);
	if (!mkdtemp(t.dir)) {
		rc = cli_fail(-errno, "cannot make a folder %s", t.dir);
	} else {
		printf("ipcx %s tour: %ld round trips of %ld-byte messages per transport,\n"
		       "between this process and a child that echoes them.\n\n",
		       ipcx_version(), t.count, t.size);
		fflush(stdout); /* a script waiting for the tour to start sees this */
		rc = run_stops(&t);
		if (!remove_dir(t.dir))
			rc = CLI_FAIL;
		if (t.sig) {
			/* Die of the signal, as it asked, now that all is removed. */
			signal(t.sig, SIG_DFL);
			sigprocmask(SIG_SETMASK, &old, NULL);
			rc = 128 + t.sig;
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	free(t.out), free(t.in), free(t.rtt);
	return rc;
}
