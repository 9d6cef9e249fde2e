/*
 * ipcx bridge SRC_URL DST_URL [--count N] [--timeout MS] [--ready-fd FD]
 *
 * Listens on SRC (creating what it names), dials DST, and relays every
 * message, one at a time: a message is taken from SRC only once the one
 * before it is in DST.  So the bridge holds at most one message, and what
 * it holds is always either forwarded or reported.
 *
 * - A send that DST refuses for a while (full, reconnecting, its listener
 *   gone) is tried again, DST dialled anew if the connection went, for up to
 *   --timeout ms; past that the message is reported as not forwarded and the
 *   bridge exits 1.  A message DST can never take (over its max=) is
 *   reported and counted as failed, and the bridge goes on.
 * - A loss SRC reports in place of a message (nats:// -ECONNRESET, -ENOBUFS,
 *   -EMSGSIZE) is printed and counted; the bridge goes on.
 * - SIGUSR1 prints the counters; SIGTERM, SIGINT or SIGHUP stop taking new
 *   messages: the bridge forwards the one it holds and those SRC says are
 *   already waiting in this process (ipcx_stats depth: a nats:// queue, a
 *   ring it owns), prints the counters and exits.
 */
#include "verbloop_int.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_LIMIT ((size_t)1 << 30)
#define SLICE_MS  200 /* a blocked send looks at the signals this often */

struct bridge_args {
	const char *src, *dst;
	long count;      /* messages to forward before exiting 0; 0 = until stopped */
	long timeout_ms; /* how long one message may wait for DST */
	long ready_fd;
};

struct bridge {
	const struct bridge_args *a;
	ipcx_chan *src, *dst;
	int sfd;
	char *buf;
	size_t cap;
	bool stopping;
	unsigned long long taken, forwarded, failed, reported, redials;
};

static void help(void)
{
	printf("usage: ipcx bridge SRC_URL DST_URL [--count N] [--timeout MS] [--ready-fd FD]\n"
	       "\n"
	       "Listen on SRC_URL (creating what it names), dial DST_URL, and relay every\n"
	       "message from one to the other, in order, one at a time.\n"
	       "\n"
	       "  -n, --count N       exit 0 after forwarding N messages\n"
	       "  -t, --timeout MS    how long one message may wait for DST before it is\n"
	       "                      reported as not forwarded and the bridge exits 1\n"
	       "                      (default 10000; -1: wait forever)\n"
	       "      --ready-fd FD   once both ends are open, write SRC's address and a\n"
	       "                      newline to FD, then close FD (kept open if 0, 1 or 2)\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "SIGUSR1 prints the counters on stderr.  SIGTERM, SIGINT or SIGHUP stop the\n"
	       "bridge: it forwards what it holds and what already waits in this process,\n"
	       "prints the counters, and exits (0 if nothing failed).\n"
	       "\n"
	       "examples:\n"
	       "  ipcx bridge shm:/jobs 'nats://10.0.0.1:4222,10.0.0.2:4222/jobs'\n"
	       "  ipcx bridge nats://127.0.0.1:4222/jobs unix:/run/worker.sock\n"
	       "  ipcx bridge fifo:/tmp/in tcp://10.0.0.3:7000 --count 100\n");
}

static int parse_args(int argc, char **argv, struct bridge_args *a)
{
	static const struct option opts[] = {
		VERB_OPT_COUNT,
		VERB_OPT_TIMEOUT,
		VERB_OPT_READY_FD,
		VERB_OPTS_END,
	};
	*a = (struct bridge_args){ .timeout_ms = 10000, .ready_fd = -1 };
	int rc = verb_getopt(argc, argv, &(struct verb_opts){
		.verb = "bridge", .shortopts = ":n:t:h", .longopts = opts, .help = help,
		.timeout_ms = &a->timeout_ms, .count = &a->count, .count_name = "N",
		.ready_fd = &a->ready_fd });
	if (rc != CLI_OK)
		return rc;
	if (argc - optind < 2 || !*argv[optind] || !*argv[optind + 1])
		return cli_usage("bridge", "want SRC_URL and DST_URL");
	if (argc - optind > 2)
		return cli_usage("bridge", "two URLs only; unexpected '%s'", argv[optind + 2]);
	a->src = argv[optind];
	a->dst = argv[optind + 1];
	return CLI_OK;
}

static void counters(const struct bridge *b, const char *when)
{
	char s[512], d[512];
	fprintf(stderr, "ipcx bridge: %s -> %s: %llu taken, %llu forwarded, %llu failed, "
		"%llu losses reported by the source, %llu redials%s\n",
		cli_escape(b->a->src, s, sizeof(s)), cli_escape(b->a->dst, d, sizeof(d)),
		b->taken, b->forwarded, b->failed, b->reported, b->redials, when);
}

/* Take what the signalfd holds: a stop, or a request for the counters. */
static void signals(struct bridge *b)
{
	int sig;
	while ((sig = cli_stop_take(b->sfd)) > 0) {
		if (sig == SIGUSR1)
			counters(b, "");
		else
			b->stopping = true;
	}
}

/* Errors that say DST's connection is gone, and a new dial may mend. */
static bool connection_gone(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN || err == -ECONNREFUSED ||
	       err == -ENOENT;
}

static bool transient(int err)
{
	return err == -ETIMEDOUT || err == -EAGAIN || err == -ENOBUFS || err == -EINTR;
}

/* Dial DST anew: true if it answered (the old channel is replaced). */
static bool redial(struct bridge *b)
{
	ipcx_chan *c = NULL;
	if (ipcx_dial(b->a->dst, 0, &c) < 0)
		return false; /* the next try dials again */
	ipcx_close(b->dst);
	b->dst = c;
	b->redials++;
	return true;
}

/*
 * DST has no listener: wait before dialling again, 1 ms at first, doubling
 * to SLICE_MS, never past the deadline, so that a bridge waiting for DST
 * does not spin a core on failed dials.  A signal cuts the wait short
 * (poll returns EINTR) and is seen by the caller's next signals().
 */
static void back_off(int *wait_ms, int64_t deadline)
{
	int ms = *wait_ms;
	if (deadline >= 0 && deadline - verb_now_ms() < ms)
		ms = (int)(deadline - verb_now_ms());
	if (ms > 0)
		poll(NULL, 0, ms);
	*wait_ms = *wait_ms * 2 > SLICE_MS ? SLICE_MS : *wait_ms * 2;
}

/*
 * Forward the message in b->buf: try until DST takes it or the message's
 * time is up.  0, or the error that made the bridge give up on it (it has
 * been reported and counted then).
 */
static int forward(struct bridge *b, size_t n)
{
	int64_t deadline = b->a->timeout_ms < 0 ? -1 : verb_now_ms() + b->a->timeout_ms;
	int wait_ms = 1; /* between failed dials */
	for (;;) {
		int64_t left = deadline < 0 ? SLICE_MS : deadline - verb_now_ms();
		int slice = left < 0 ? 0 : left > SLICE_MS ? SLICE_MS : (int)left;
		ssize_t r = ipcx_send(b->dst, b->buf, n, slice);
		if (r == (ssize_t)n) {
			b->forwarded++;
			return 0;
		}
		signals(b); /* a blocked send still answers SIGUSR1, and notes a stop */
		if (r == -EMSGSIZE) {
			b->failed++;
			cli_fail((int)r, "message %llu (%zu bytes) not forwarded to %s, whose limit is "
				 "%zu bytes", b->taken, n, b->a->dst, ipcx_max_msg(b->dst));
			return CLI_OK; /* DST can never take it; the others it can */
		}
		if (r >= 0)
			r = -EIO;
		if (!transient((int)r) && !connection_gone((int)r)) {
			b->failed++;
			return cli_fail((int)r, "message %llu (%zu bytes) not forwarded to %s",
					b->taken, n, b->a->dst);
		}
		if (deadline >= 0 && verb_now_ms() >= deadline) {
			b->failed++;
			return cli_fail((int)r, "message %llu (%zu bytes) not forwarded to %s within "
					"%ld ms", b->taken, n, b->a->dst, b->a->timeout_ms);
		}
		if (connection_gone((int)r) && !redial(b))
			back_off(&wait_ms, deadline);
	}
}

/* A loss SRC reports in the place of a message: print it, count it, go on. */
static bool reported_loss(struct bridge *b, ssize_t r)
{
	if (r != -ECONNRESET && r != -ENOBUFS && r != -EMSGSIZE)
		return false;
	char esc[1024];
	fprintf(stderr, "ipcx bridge: %s reports: %s: %s; still relaying\n", b->a->src,
		ipcx_strerror((int)r), cli_escape(ipcx_errdetail(), esc, sizeof(esc)));
	b->reported++;
	return true;
}

/*
 * Take one message from SRC (without waiting) and forward it.  1 when one
 * was relayed, 0 when none waited, or CLI_FAIL-style negative: -1 to stop
 * with an error, -2 when SRC has ended.
 */
static int relay_one(struct bridge *b)
{
	ssize_t r = ipcx_recv(b->src, b->buf, b->cap, 0);
	if (r == -EAGAIN)
		return 0;
	if (reported_loss(b, r))
		return 1;
	if (r == -EPIPE)
		return -2; /* the source's only writer has gone: the end */
	if (r < 0) {
		cli_fail((int)r, "cannot receive on %s", b->a->src);
		return -1;
	}
	b->taken++;
	return forward(b, (size_t)r) == 0 ? 1 : -1;
}

/* Wait for SRC or a signal; false on a poll failure. */
static bool wait_event(struct bridge *b, int cfd)
{
	struct pollfd p[2] = { { b->sfd, POLLIN, 0 }, { cfd, POLLIN, 0 } };
	int n = poll(p, cfd >= 0 ? 2 : 1, cfd >= 0 ? -1 : SLICE_MS);
	if (n < 0 && errno != EINTR) {
		cli_fail(-errno, "cannot wait for %s", b->a->src);
		return false;
	}
	if (n > 0 && (p[0].revents & POLLIN))
		signals(b);
	return true;
}

static bool done(const struct bridge *b)
{
	return b->a->count && b->forwarded >= (unsigned long long)b->a->count;
}

static int run(struct bridge *b)
{
	int cfd = ipcx_fileno(b->src);
	while (!b->stopping && !done(b)) {
		if (!wait_event(b, cfd))
			return CLI_FAIL;
		int r = 0;
		/* A source that never runs dry must not hide the signals. */
		for (unsigned k = 1; !b->stopping && !done(b) && (r = relay_one(b)) > 0; k++)
			if (k % 64 == 0)
				signals(b);
		if (r == -2)
			return CLI_OK;
		if (r < 0)
			return CLI_FAIL;
	}
	if (!b->stopping)
		return CLI_OK;
	/* Stopped: what already waits in this process goes too, then we end. */
	struct ipcx_stats st;
	unsigned long long waiting = ipcx_stats(b->src, &st) == 0 ? st.depth : 0;
	for (unsigned long long i = 0; i < waiting && !done(b); i++)
		if (relay_one(b) <= 0)
			break;
	return CLI_OK;
}

static int open_ends(struct bridge *b)
{
	int r = ipcx_listen(b->a->src, 0, &b->src);
	if (r < 0)
		return cli_fail(r, "cannot listen on %s", b->a->src);
	r = ipcx_dial(b->a->dst, 0, &b->dst);
	if (r < 0)
		return cli_fail(r, "cannot dial %s", b->a->dst);
	b->cap = ipcx_max_msg(b->src);
	if (b->cap > BUF_LIMIT)
		b->cap = BUF_LIMIT;
	if (!(b->buf = malloc(b->cap ? b->cap : 1)))
		return cli_fail(-ENOMEM, "cannot allocate a %zu-byte buffer", b->cap);
	if (b->a->ready_fd < 0)
		return CLI_OK;
	return verb_announce_chan(b->src, b->a->src, b->a->ready_fd);
}

int cli_bridge(int argc, char **argv)
{
	struct bridge_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	/* A stop signal ends the relay, not the process: st.sig stays 0. */
	struct verb_stop st;
	static const int counters_sig[] = { SIGUSR1 };
	if (verb_stop_open(&st, counters_sig, 1) != CLI_OK)
		return CLI_FAIL;
	struct bridge b = { .a = &a, .sfd = st.sfd };
	rc = open_ends(&b);
	if (rc == CLI_OK)
		rc = run(&b);
	if (b.src || b.dst)
		counters(&b, b.stopping ? " (stopped)" : "");
	int r = ipcx_close(b.dst);
	if (r < 0 && rc == CLI_OK)
		rc = cli_fail(r, "cannot finish sending to %s", a.dst);
	ipcx_close(b.src);
	free(b.buf);
	return verb_stop_close(&st, rc == CLI_OK && b.failed ? CLI_FAIL : rc);
}
