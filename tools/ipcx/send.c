/*
 * ipcx send URL [MESSAGE...] [--timeout MS] [--raw]
 *
 * Dials URL and sends each argument as one message; with no arguments, each
 * line of standard input is one message (or, with --raw, all of standard
 * input is one message, byte for byte).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct send_args {
	const char *url;
	long timeout_ms; /* longest wait for each send; -1 = forever */
	bool raw;
	char **msgs;     /* the MESSAGE arguments */
	int nmsgs;
};

static void help(void)
{
	printf("usage: ipcx send URL [MESSAGE...] [--timeout MS] [--raw]\n"
	       "\n"
	       "Dial URL and send each MESSAGE as one message.  With no MESSAGE, each line\n"
	       "of standard input is one message (without its newline; an empty line is an\n"
	       "empty message).  Put '--' before messages that start with '-'.\n"
	       "\n"
	       "  -t, --timeout MS  give up, exit 1, when a message cannot be sent within\n"
	       "                    MS ms (default -1: wait forever; 0: never wait)\n"
	       "      --raw         send all of standard input, byte for byte, as one message\n"
	       "  -h, --help        show this help\n"
	       "\n"
	       "examples:\n"
	       "  ipcx send unix:/tmp/app.sock hello world        # two messages\n"
	       "  printf 'a\\nb\\n' | ipcx send tcp://127.0.0.1:7000 # two messages\n"
	       "  ipcx send --raw fifo:/tmp/f < picture.png        # one message\n");
}

static int parse_args(int argc, char **argv, struct send_args *a)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*a = (struct send_args){ .timeout_ms = -1 };
	int ch;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (!cli_parse_long(optarg, -1, INT_MAX, &a->timeout_ms))
				return cli_usage("send", "MS must be -1 or a whole number of milliseconds, not '%s'",
						 optarg);
			break;
		case 'r':
			a->raw = true;
			break;
		case 'h':
			help();
			return -1;
		case ':':
			return cli_usage("send", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage("send", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc || !*argv[optind])
		return cli_usage("send", "missing URL");
	a->url = argv[optind];
	a->msgs = argv + optind + 1;
	a->nmsgs = argc - optind - 1;
	if (a->raw && a->nmsgs > 0)
		return cli_usage("send", "--raw sends standard input; give no MESSAGE with it");
	return CLI_OK;
}

static int send_one(const struct send_args *a, ipcx_chan *c, const void *msg, size_t len,
		    long nth)
{
	ssize_t r = ipcx_send(c, msg, len, (int)a->timeout_ms);
	if (r == -EMSGSIZE)
		return cli_fail((int)r, "cannot send message %ld (%zu bytes) to %s; its limit is %zu bytes",
				nth, len, a->url, ipcx_max_msg(c));
	if (r < 0)
		return cli_fail((int)r, "cannot send message %ld to %s", nth, a->url);
	return CLI_OK;
}

static int send_lines(const struct send_args *a, ipcx_chan *c)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long nth = 0;
	int rc = CLI_OK;
	errno = 0;
	while (rc == CLI_OK && (n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		rc = send_one(a, c, line, (size_t)n, ++nth);
		errno = 0;
	}
	if (rc == CLI_OK && ferror(stdin))
		rc = cli_fail(errno ? -errno : -EIO, "cannot read standard input");
	free(line);
	return rc;
}

/*
 * Read all of standard input into *buf; stops early, with *len > max, once
 * it is plainly too big for one message.
 */
static int read_all(size_t max, char **buf, size_t *len)
{
	size_t cap = 4096;
	char *b = malloc(cap);
	*len = 0;
	for (;;) {
		if (!b)
			return -ENOMEM;
		if (*len == cap) {
			if (cap > max)
				break;
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t n = read(STDIN_FILENO, b + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;
			free(b);
			return err;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	*buf = b;
	return 0;
}

static int send_raw(const struct send_args *a, ipcx_chan *c)
{
	size_t max = ipcx_max_msg(c), len = 0;
	char *buf = NULL;
	int r = read_all(max, &buf, &len);
	if (r < 0)
		return cli_fail(r, "cannot read standard input");
	int rc;
	if (len > max)
		rc = cli_fail(-EMSGSIZE, "standard input is more than %s takes in one message (%zu bytes)",
			      a->url, max);
	else
		rc = send_one(a, c, buf, len, 1);
	free(buf);
	return rc;
}

int cli_send(int argc, char **argv)
{
	struct send_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;

	ipcx_chan *c = NULL;
	int r = ipcx_dial(a.url, 0, &c);
	if (r < 0)
		return cli_fail(r, "cannot dial %s", a.url);
	if (a.raw)
		rc = send_raw(&a, c);
	else if (a.nmsgs == 0)
		rc = send_lines(&a, c);
	for (int i = 0; i < a.nmsgs && rc == CLI_OK; i++)
		rc = send_one(&a, c, a.msgs[i], strlen(a.msgs[i]), i + 1);
	/* Closing flushes what a send left queued; its failure loses messages. */
	r = ipcx_close(c);
	if (r < 0 && rc == CLI_OK)
		rc = cli_fail(r, "cannot finish sending to %s", a.url);
	return rc;
}
