/*
 * ipcx send URL [MESSAGE...] [--timeout MS] [--raw]
 *
 * Dials URL and sends each argument as one message; with no arguments, each
 * line of standard input is one message (or, with --raw, all of standard
 * input is one message, byte for byte).
 */
#include "verbloop_int.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>

struct send_args {
	const char *url;
	long timeout_ms; /* longest wait for each send; -1 = forever */
	bool raw;
	char **msgs;     /* the MESSAGE arguments */
	int nmsgs;
	ipcx_chan *c;    /* the channel dialled */
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

static int own_opt(int ch, const char *arg, void *a)
{
	(void)arg;
	if (ch != 'r')
		return VERB_UNKNOWN;
	((struct send_args *)a)->raw = true;
	return CLI_OK;
}

static int parse_args(int argc, char **argv, struct send_args *a)
{
	static const struct option opts[] = {
		VERB_OPT_TIMEOUT,
		{ "raw", no_argument, NULL, 'r' },
		VERB_OPTS_END,
	};
	*a = (struct send_args){ .timeout_ms = -1 };
	int rc = verb_getopt(argc, argv, &(struct verb_opts){
		.verb = "send", .shortopts = ":t:h", .longopts = opts, .help = help,
		.timeout_ms = &a->timeout_ms, .url = &a->url, .own = own_opt, .arg = a });
	if (rc != CLI_OK)
		return rc;
	a->msgs = argv + optind;
	a->nmsgs = argc - optind;
	if (a->raw && a->nmsgs > 0)
		return cli_usage("send", "--raw sends standard input; give no MESSAGE with it");
	return CLI_OK;
}

static int send_one(void *arg, const char *msg, size_t len, long nth)
{
	const struct send_args *a = arg;
	ssize_t r = ipcx_send(a->c, msg, len, (int)a->timeout_ms);
	if (r == -EMSGSIZE)
		return cli_fail((int)r, "cannot send message %ld (%zu bytes) to %s; its limit is %zu bytes",
				nth, len, a->url, ipcx_max_msg(a->c));
	if (r < 0)
		return cli_fail((int)r, "cannot send message %ld to %s", nth, a->url);
	return CLI_OK;
}

static int send_raw(struct send_args *a)
{
	size_t max = ipcx_max_msg(a->c), len = 0;
	char *buf = NULL;
	int r = verb_read_stdin(max, &buf, &len);
	if (r < 0)
		return cli_fail(r, "cannot read standard input");
	int rc;
	if (len > max)
		rc = cli_fail(-EMSGSIZE, "standard input is more than %s takes in one message (%zu bytes)",
			      a->url, max);
	else
		rc = send_one(a, buf, len, 1);
	free(buf);
	return rc;
}

int cli_send(int argc, char **argv)
{
	struct send_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;

	int r = ipcx_dial(a.url, 0, &a.c);
	if (r < 0)
		return cli_fail(r, "cannot dial %s", a.url);
	rc = a.raw ? send_raw(&a) : verb_send_each(a.msgs, a.nmsgs, send_one, &a);
	/* Closing flushes what a send left queued; its failure loses messages. */
	r = ipcx_close(a.c);
	if (r < 0 && rc == CLI_OK)
		rc = cli_fail(r, "cannot finish sending to %s", a.url);
	return rc;
}
