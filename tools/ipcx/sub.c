/*
 * ipcx sub URL [PREFIX...] [-n COUNT] [--history N] [--timeout MS] [--ready-fd FD]
 *
 * Subscribes to the topics that start with a PREFIX (all without one) and
 * prints each message as one line, TOPIC<TAB>MESSAGE, escaped as ipcx recv
 * escapes.  docs/pubsub.md.
 */
#include "verbloop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ipcx.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define SUB_BUF ((size_t)64 << 20) /* the largest message printed */

struct sub_args {
	const char *url;
	long count;      /* messages to print; 0 = until stopped */
	long history;    /* -1: none */
	long timeout_ms; /* longest wait for each message; -1 = forever */
	long ready_fd;   /* -1 = none */
	char **prefixes;
	int nprefixes;
	bool stats;
};

static void help(void)
{
	printf("usage: ipcx sub URL [PREFIX...] [-n COUNT] [--history N] [--timeout MS]\n"
	       "                [--ready-fd FD] [--stats]\n"
	       "\n"
	       "Subscribe to the topics that start with one of the PREFIXes (every topic\n"
	       "with none) and print each message as TOPIC<TAB>MESSAGE on one line (a\n"
	       "newline, tab or byte that is not text is escaped, as ipcx recv does).\n"
	       "URL as for ipcx pub: shm:/NAME or sysvshm:KEY (a broadcast ring, created\n"
	       "if nobody has it), the socket URL a publisher listens on (dialled\n"
	       "again and again until one is there), or nats://HOST:PORT/SUBJECT (topics\n"
	       "are subjects under SUBJECT; subscribed when --ready-fd says so).\n"
	       "\n"
	       "  -n, --count COUNT   exit 0 after COUNT messages (default: until stopped)\n"
	       "      --history N     a ring: start with up to N of the latest messages\n"
	       "  -t, --timeout MS    exit 1 when no message comes within MS ms\n"
	       "      --ready-fd FD   once subscribed, write the URL and a newline to FD\n"
	       "      --stats         at the end, print received, filtered, lost and lag\n"
	       "                      on standard error\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "examples:\n"
	       "  ipcx sub shm:/news weather. --history 10\n"
	       "  ipcx sub unix:/tmp/news.sock -n 3\n");
}

/* sub's own words for --count and --ready-fd, kept as they were. */
static int own_opt(int ch, const char *arg, void *arg_)
{
	struct sub_args *a = arg_;
	switch (ch) {
	case 'n':
		if (!cli_parse_long(arg, 1, LONG_MAX, &a->count))
			return cli_usage("sub", "COUNT must be a positive whole number, not '%s'", arg);
		return CLI_OK;
	case 'H':
		if (!cli_parse_long(arg, 0, UINT32_MAX, &a->history))
			return cli_usage("sub", "N must be a whole number, not '%s'", arg);
		return CLI_OK;
	case 'R':
		if (!cli_parse_long(arg, 0, INT_MAX, &a->ready_fd) ||
		    fcntl((int)a->ready_fd, F_GETFD) < 0)
			return cli_usage("sub", "descriptor '%s' (--ready-fd) is not open", arg);
		return CLI_OK;
	case 'S':
		a->stats = true;
		return CLI_OK;
	default:
		return VERB_UNKNOWN;
	}
}

static int parse_args(int argc, char **argv, struct sub_args *a)
{
	static const struct option opts[] = {
		VERB_OPT_COUNT,
		{ "history", required_argument, NULL, 'H' },
		VERB_OPT_TIMEOUT,
		VERB_OPT_READY_FD,
		{ "stats", no_argument, NULL, 'S' },
		VERB_OPTS_END,
	};
	*a = (struct sub_args){ .history = -1, .timeout_ms = -1, .ready_fd = -1 };
	int rc = verb_getopt(argc, argv, &(struct verb_opts){
		.verb = "sub", .shortopts = ":n:t:h", .longopts = opts, .help = help,
		.timeout_ms = &a->timeout_ms, .url = &a->url, .own = own_opt, .arg = a });
	a->prefixes = argv + optind;
	a->nprefixes = argc - optind;
	return rc;
}

/* The URL with history=N added, for a ring. */
static char *with_history(const struct sub_args *a)
{
	size_t n = strlen(a->url) + 32;
	char *u = malloc(n);
	if (u && a->history >= 0)
		snprintf(u, n, "%s%chistory=%ld", a->url, strchr(a->url, '?') ? '&' : '?', a->history);
	else if (u)
		snprintf(u, n, "%s", a->url);
	return u;
}

/*
 * The next message, waiting on the subscriber's descriptor and the stop
 * signals: its length, -ETIMEDOUT, -EINTR with *sig set, or another -errno.
 */
static ssize_t next(ipcx_sub *s, int sfd, long timeout_ms, char *topic, char *buf, int *sig)
{
	int64_t deadline = timeout_ms < 0 ? -1 : verb_now_ms() + timeout_ms;
	struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
			       { .fd = ipcx_sub_fileno(s), .events = POLLIN } };
	for (;;) {
		ssize_t n = ipcx_sub_recv(s, topic, IPCX_TOPIC_MAX + 1, buf, SUB_BUF, 0);
		if (n != -EAGAIN)
			return n;
		int left = deadline < 0 ? -1 : (int)(deadline > verb_now_ms() ? deadline - verb_now_ms() : 0);
		if (left == 0)
			return -ETIMEDOUT;
		if (poll(p, 2, left) < 0 && errno != EINTR)
			return -errno;
		if ((p[0].revents & POLLIN) && (*sig = cli_stop_take(sfd)) > 0)
			return -EINTR;
	}
}

static int print_stats(ipcx_sub *s)
{
	struct ipcx_pubsub_stats st;
	int r = ipcx_sub_stats(s, &st);
	if (r < 0)
		return r;
	fprintf(stderr, "received %llu, filtered %llu, lost %llu, lag %llu\n",
		(unsigned long long)st.received, (unsigned long long)st.filtered,
		(unsigned long long)st.lost, (unsigned long long)st.lag);
	return 0;
}

static int loop(const struct sub_args *a, ipcx_sub *s, int sfd, int *sig)
{
	char topic[IPCX_TOPIC_MAX + 1];
	char *buf = malloc(SUB_BUF);
	if (!buf)
		return cli_fail(-ENOMEM, "cannot allocate a buffer");
	int rc = CLI_OK;
	for (long got = 0; a->count == 0 || got < a->count; got++) {
		ssize_t n = next(s, sfd, a->timeout_ms, topic, buf, sig);
		if (n == -EINTR && *sig)
			break;
		if (n == -ECONNRESET) {
			/* nats://: the subscriber moved to another server; what was
			 * published meanwhile may be lost.  It goes on, and so do we. */
			char esc[1024];
			fprintf(stderr, "ipcx: %s: %s (%s); still subscribed\n", a->url,
				ipcx_strerror((int)n), cli_escape(ipcx_errdetail(), esc, sizeof(esc)));
			got--; /* not a message */
			continue;
		}
		if (n == -ETIMEDOUT) {
			rc = verb_no_message(a->url, a->timeout_ms, got);
			break;
		}
		if (n < 0) {
			rc = cli_fail((int)n, "cannot receive on %s", a->url);
			break;
		}
		cli_put_escaped(stdout, topic, strlen(topic));
		putc('\t', stdout);
		cli_put_escaped(stdout, buf, (size_t)n);
		putc('\n', stdout);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			rc = cli_fail(-errno, "cannot write to standard output");
			break;
		}
	}
	free(buf);
	return rc;
}

int cli_sub(int argc, char **argv)
{
	struct sub_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	struct verb_stop st;
	if (verb_stop_open(&st, NULL, 0) != CLI_OK)
		return CLI_FAIL;
	char *url = with_history(&a);
	ipcx_sub *s = NULL;
	int r = url ? ipcx_sub_open(url, (const char *const *)a.prefixes, (size_t)a.nprefixes, 0, &s)
		    : -ENOMEM;
	free(url);
	if (r < 0)
		return verb_stop_close(&st, cli_fail(r, "cannot subscribe on %s", a.url));
	rc = a.ready_fd >= 0 ? cli_announce(a.url, (int)a.ready_fd) : CLI_OK;
	if (rc == CLI_OK)
		rc = loop(&a, s, st.sfd, &st.sig);
	if (a.stats && print_stats(s) < 0 && rc == CLI_OK)
		rc = CLI_FAIL;
	ipcx_sub_close(s);
	return verb_stop_close(&st, rc);
}
