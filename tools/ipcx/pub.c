/*
 * ipcx pub URL TOPIC [MESSAGE...] [--wait N] [--timeout MS]
 *
 * Publishes each argument (or each line of standard input) under TOPIC, on
 * a shared-memory broadcast ring (shm:, sysvshm:), as the publisher of a
 * socket URL (unix:, tcp://), or on subjects of a NATS server (nats://).
 * docs/pubsub.md.
 */
#include "verbloop_int.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <limits.h>
#include <string.h>

struct pub_args {
	const char *url, *topic;
	long timeout_ms; /* longest wait for each message, and for --wait; -1 = forever */
	long wait;       /* subscribers to wait for before publishing */
	char **msgs;
	int nmsgs;
	ipcx_pub *p;
};

static void help(void)
{
	printf("usage: ipcx pub URL TOPIC [MESSAGE...] [--wait N] [--timeout MS]\n"
	       "\n"
	       "Publish each MESSAGE under TOPIC (with no MESSAGE, each line of standard\n"
	       "input).  URL: shm:/NAME or sysvshm:KEY, a broadcast ring in shared memory\n"
	       "(created if nobody has it; options capacity=, max=, policy=block|drop); or\n"
	       "unix:/PATH, unix:@NAME, tcp://HOST:PORT, where this process is the\n"
	       "publisher that subscribers dial (options policy=, queue=N, linger=MS); or\n"
	       "nats://HOST:PORT[,...]/SUBJECT, on a NATS server: TOPIC is published on the\n"
	       "subject SUBJECT.TOPIC (dot-separated tokens; policy=drop only, no --wait).\n"
	       "\n"
	       "  -w, --wait N       first wait until N subscribers are there (on sockets\n"
	       "                     they dial in after we listen: without it, messages\n"
	       "                     published before they connect reach nobody)\n"
	       "  -t, --timeout MS   give up, exit 1, when a message cannot be published\n"
	       "                     (policy=block, a full subscriber) or the subscribers\n"
	       "                     of --wait do not come within MS ms (default -1: wait)\n"
	       "  -h, --help         show this help\n"
	       "\n"
	       "examples:\n"
	       "  ipcx pub shm:/news weather sunny rainy            # two messages\n"
	       "  ipcx pub 'unix:/tmp/news.sock?policy=drop' logs --wait 2 < app.log\n");
}

static int own_opt(int ch, const char *arg, void *a)
{
	if (ch != 'w')
		return VERB_UNKNOWN;
	if (!cli_parse_long(arg, 0, INT_MAX, &((struct pub_args *)a)->wait))
		return cli_usage("pub", "N must be a whole number, not '%s'", arg);
	return CLI_OK;
}

static int parse_args(int argc, char **argv, struct pub_args *a)
{
	static const struct option opts[] = {
		{ "wait", required_argument, NULL, 'w' },
		VERB_OPT_TIMEOUT,
		VERB_OPTS_END,
	};
	*a = (struct pub_args){ .timeout_ms = -1 };
	int rc = verb_getopt(argc, argv, &(struct verb_opts){
		.verb = "pub", .shortopts = ":w:t:h", .longopts = opts, .help = help,
		.timeout_ms = &a->timeout_ms, .url = &a->url, .own = own_opt, .arg = a });
	if (rc != CLI_OK)
		return rc;
	if (optind >= argc)
		return cli_usage("pub", "missing TOPIC");
	a->topic = argv[optind];
	if (strlen(a->topic) > IPCX_TOPIC_MAX)
		return cli_usage("pub", "a TOPIC has at most %d bytes", IPCX_TOPIC_MAX);
	a->msgs = argv + optind + 1;
	a->nmsgs = argc - optind - 1;
	return CLI_OK;
}

static int publish(void *arg, const char *msg, size_t len, long nth)
{
	const struct pub_args *a = arg;
	ssize_t r = ipcx_pub_send(a->p, a->topic, msg, len, (int)a->timeout_ms);
	if (r < 0)
		return cli_fail((int)r, "cannot publish message %ld (%zu bytes) on %s", nth, len, a->url);
	return CLI_OK;
}

int cli_pub(int argc, char **argv)
{
	struct pub_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	int r = ipcx_pub_open(a.url, 0, &a.p);
	if (r < 0)
		return cli_fail(r, "cannot publish on %s", a.url);
	if (a.wait > 0 && (r = ipcx_pub_wait(a.p, (size_t)a.wait, (int)a.timeout_ms)) < 0)
		rc = cli_fail(r, "waiting for %ld subscribers on %s", a.wait, a.url);
	if (rc == CLI_OK)
		rc = verb_send_each(a.msgs, a.nmsgs, publish, &a);
	/* On sockets, closing delivers what is still queued (linger=). */
	r = ipcx_pub_close(a.p);
	if (r < 0 && rc == CLI_OK)
		rc = cli_fail(r, "cannot finish publishing on %s", a.url);
	return rc;
}
