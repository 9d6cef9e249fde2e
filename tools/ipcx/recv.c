/*
 * ipcx recv URL [-n COUNT] [--timeout MS] [--raw] [--ready-fd FD]
 *
 * Listens on URL (creating the object) and prints each message that arrives.
 * Whatever ends the program, the channel is closed, so the object it created
 * is removed: SIGINT, SIGTERM and SIGHUP are blocked and read from a
 * signalfd that is polled next to the channel's descriptor, so they arrive
 * as events rather than interrupting us between listen and close.
 */
#include "verbloop_int.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The buffer is the channel's largest message, but never more than this. */
#define RECV_BUF_LIMIT ((size_t)1 << 30)

/* When the descriptor cannot be polled, receive in slices this long. */
#define SLICE_MS 200

struct recv_args {
	const char *url;
	long count;      /* messages to wait for; 0 = until stopped */
	long timeout_ms; /* longest wait for each message; -1 = forever */
	bool raw;
	long ready_fd;   /* -1 = none */
};

static void help(void)
{
	printf("usage: ipcx recv URL [-n COUNT] [--timeout MS] [--raw] [--ready-fd FD]\n"
	       "\n"
	       "Listen on URL, creating the object it names, and print each message that\n"
	       "arrives on a line of its own.  The object is removed when recv exits, also\n"
	       "on Ctrl-C, SIGTERM or SIGHUP.\n"
	       "\n"
	       "  -n, --count COUNT   exit 0 after COUNT messages (default: run until stopped)\n"
	       "  -t, --timeout MS    give up, exit 1, when no message comes for MS ms\n"
	       "                      (default -1: wait forever)\n"
	       "      --raw           write each message's bytes unchanged, with nothing added\n"
	       "      --ready-fd FD   once listening, write the channel's address (with the\n"
	       "                      port the system chose for :0) and a newline to FD,\n"
	       "                      then close FD (kept open if it is 0, 1 or 2)\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "Without --raw, printable text and valid UTF-8 are printed as they are; a\n"
	       "backslash is printed as \\\\, newline, tab and carriage return as \\n \\t \\r,\n"
	       "and every other byte as \\xHH.  So each message is exactly one line.\n"
	       "\n"
	       "examples:\n"
	       "  ipcx recv unix:/tmp/app.sock -n 1\n"
	       "  ipcx recv 'tcp://127.0.0.1:0?framing=lines' --ready-fd 2\n"
	       "  ipcx recv fifo:/tmp/f --raw -n 1 > message.bin\n");
}

static int own_opt(int ch, const char *arg, void *a)
{
	(void)arg;
	if (ch != 'r')
		return VERB_UNKNOWN;
	((struct recv_args *)a)->raw = true;
	return CLI_OK;
}

static int parse_args(int argc, char **argv, struct recv_args *a)
{
	static const struct option opts[] = {
		VERB_OPT_COUNT,
		VERB_OPT_TIMEOUT,
		{ "raw", no_argument, NULL, 'r' },
		VERB_OPT_READY_FD,
		VERB_OPTS_END,
	};
	*a = (struct recv_args){ .count = 0, .timeout_ms = -1, .ready_fd = -1 };
	int rc = verb_getopt(argc, argv, &(struct verb_opts){
		.verb = "recv", .shortopts = ":n:t:h", .longopts = opts, .help = help,
		.timeout_ms = &a->timeout_ms, .count = &a->count, .count_name = "COUNT",
		.ready_fd = &a->ready_fd, .url = &a->url, .own = own_opt, .arg = a });
	if (rc == CLI_OK && optind < argc)
		return cli_usage("recv", "one URL only; unexpected '%s'", argv[optind]);
	return rc;
}

/* Length of the valid UTF-8 sequence (2 to 4 bytes) at p, or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and code points past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void cli_put_escaped(FILE *f, const void *msg, size_t n)
{
	const unsigned char *p = msg;
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t u;
		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c >= 0x20 && c < 0x7f)
			putc(c, f);
		else if (c >= 0x80 && (u = utf8_len(p + i, n - i)) > 0) {
			fwrite(p + i, 1, u, f);
			i += u;
			continue;
		} else
			fprintf(f, "\\x%02x", c);
		i++;
	}
}

/* Print one message; false if standard output failed (a closed pipe ...). */
static bool emit(const struct recv_args *a, const void *msg, size_t n)
{
	if (a->raw)
		fwrite(msg, 1, n, stdout);
	else {
		cli_put_escaped(stdout, msg, n);
		putc('\n', stdout);
	}
	/* Flush each message: a reader of the pipe sees it as it arrives. */
	return fflush(stdout) == 0 && !ferror(stdout);
}

/*
 * Wait up to timeout_ms for the channel or a stop signal.  Returns 1 when
 * the channel may have a message, 0 on timeout, -EINTR with *sig set when a
 * stop signal came, or another -errno.
 */
static int wait_event(int sfd, int cfd, int timeout_ms, int *sig)
{
	struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = cfd, .events = POLLIN } };
	int n = poll(p, cfd >= 0 ? 2 : 1, cfd >= 0 ? timeout_ms : 0);
	if (n < 0)
		return errno == EINTR ? 1 : -errno;
	if ((p[0].revents & POLLIN) && (*sig = cli_stop_take(sfd)) > 0)
		return -EINTR;
	if (cfd < 0)
		return 1; /* no pollable descriptor: the receive itself waits */
	return n > 0 ? 1 : 0;
}

/*
 * Receive one message into buf.  Returns its length, -ETIMEDOUT when
 * timeout_ms passes without one, -EINTR with *sig set when a stop signal
 * came, or another -errno.
 */
static ssize_t next_message(ipcx_chan *c, int sfd, char *buf, size_t cap,
			    long timeout_ms, int *sig)
{
	int cfd = ipcx_fileno(c);
	int64_t deadline = timeout_ms < 0 ? -1 : verb_now_ms() + timeout_ms;
	for (;;) {
		int left = -1;
		if (deadline >= 0) {
			int64_t l = deadline - verb_now_ms();
			left = l > 0 ? (int)l : 0;
		}
		int w = wait_event(sfd, cfd, left, sig);
		if (w < 0)
			return w;
		if (w == 0)
			return -ETIMEDOUT;
		/*
		 * With a pollable descriptor the receive must not block; without
		 * one it waits a slice, so that signals are still seen in time.
		 */
		int slice = cfd >= 0 ? 0 : (left < 0 || left > SLICE_MS ? SLICE_MS : left);
		ssize_t r = ipcx_recv(c, buf, cap, slice);
		if (r >= 0 || (r != -EAGAIN && r != -ETIMEDOUT))
			return r;
		if (deadline >= 0 && verb_now_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

/*
 * A message over the limit (max=) is refused with -EMSGSIZE and dropped, on
 * every transport where a peer can send one; the listener goes on serving
 * the others.  Where the message stays queued instead (a System V queue
 * with a max below the sender's), every receive would refuse it again: so
 * many refusals in a row with no message between mean that, and we stop.
 */
#define OVERSIZE_GIVE_UP 1000

static void oversize_note(const char *url, size_t cap)
{
	char esc[1024];
	const char *d = ipcx_errdetail();
	fprintf(stderr, "ipcx: a message over the limit of %s (%zu bytes) was refused and "
		"dropped%s%s%s; still listening\n", url, cap, *d ? " (" : "",
		*d ? cli_escape(d, esc, sizeof(esc)) : "", *d ? ")" : "");
}

static int receive_loop(const struct recv_args *a, ipcx_chan *c, int sfd, int *sig)
{
	size_t cap = ipcx_max_msg(c);
	if (cap > RECV_BUF_LIMIT)
		cap = RECV_BUF_LIMIT;
	char *buf = malloc(cap ? cap : 1);
	if (!buf)
		return cli_fail(-ENOMEM, "cannot allocate a %zu-byte buffer", cap);
	int rc = CLI_OK;
	long oversize = 0; /* refusals in a row, with no message between */
	for (long got = 0; a->count == 0 || got < a->count;) {
		ssize_t n = next_message(c, sfd, buf, cap, a->timeout_ms, sig);
		if (n == -EINTR && *sig)
			break;
		if (n == -EMSGSIZE && ++oversize < OVERSIZE_GIVE_UP) {
			/* One peer broke the limit; the library dropped its message
			 * and goes on, and so do we, for the others. */
			if (oversize <= 3) /* a flood of them is not a flood of lines */
				oversize_note(a->url, cap);
			continue;
		}
		if (n >= 0)
			oversize = 0;
		if (n == -ECONNRESET || n == -ENOBUFS) {
			/* A loss the transport reports in its place (nats://: a
			 * failover, a full queue); the channel goes on, and so do we. */
			char esc[1024];
			fprintf(stderr, "ipcx: %s: %s (%s); still listening\n", a->url,
				ipcx_strerror((int)n), cli_escape(ipcx_errdetail(), esc, sizeof(esc)));
			continue;
		}
		if (n == -ETIMEDOUT) {
			rc = verb_no_message(a->url, a->timeout_ms, got);
			break;
		}
		if (n == -EPIPE && a->count == 0)
			break; /* the only peer has gone: the end, like cat at EOF */
		if (n == -EPIPE) {
			fprintf(stderr, "ipcx: the peer of %s went away after %ld of %ld messages\n",
				a->url, got, a->count);
			rc = CLI_FAIL;
			break;
		}
		if (n < 0) {
			rc = cli_fail((int)n, "cannot receive on %s", a->url);
			break;
		}
		if (!emit(a, buf, (size_t)n)) {
			rc = verb_stdout_failed(-errno);
			break;
		}
		got++;
	}
	free(buf);
	return rc;
}

int cli_recv(int argc, char **argv)
{
	struct recv_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;

	struct verb_stop st;
	if (verb_stop_open(&st, NULL, 0) != CLI_OK)
		return CLI_FAIL;
	ipcx_chan *c = NULL;
	int r = ipcx_listen(a.url, 0, &c);
	if (r < 0)
		return verb_stop_close(&st, cli_fail(r, "cannot listen on %s", a.url));
	rc = a.ready_fd >= 0 ? verb_announce_chan(c, a.url, a.ready_fd) : CLI_OK;
	if (rc == CLI_OK)
		rc = receive_loop(&a, c, st.sfd, &st.sig);
	r = ipcx_close(c);
	if (r < 0 && rc == CLI_OK && !st.sig)
		rc = cli_fail(r, "cannot close %s", a.url);
	return verb_stop_close(&st, rc);
}
