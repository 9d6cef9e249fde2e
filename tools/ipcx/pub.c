/*
 * ipcx pub URL TOPIC [MESSAGE...] [--wait N] [--timeout MS]
 *
 * Publishes each argument (or each line of standard input) under TOPIC, on
 * a shared-memory broadcast ring (shm:, sysvshm:) or as the publisher of a
 * socket URL (unix:, tcp://).  docs/pubsub.md.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct pub_args {
	const char *url, *topic;
	long timeout_ms; /* longest wait for each message, and for --wait; -1 = forever */
	long wait;       /* subscribers to wait for before publishing */
	char **msgs;
	int nmsgs;
};

static void help(void)
{
	printf("usage: ipcx pub URL TOPIC [MESSAGE...] [--wait N] [--timeout MS]\n"
	       "\n"
	       "Publish each MESSAGE under TOPIC (with no MESSAGE, each line of standard\n"
	       "input).  URL: shm:/NAME or sysvshm:KEY, a broadcast ring in shared memory\n"
	       "(created if nobody has it; options capacity=, max=, policy=block|drop); or\n"
	       "unix:/PATH, unix:@NAME, tcp://HOST:PORT, where this process is the\n"
	       "publisher that subscribers dial (options policy=, queue=N, linger=MS).\n"
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

static int parse_args(int argc, char **argv, struct pub_args *a)
{
	static const struct option opts[] = {
		{ "wait", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*a = (struct pub_args){ .timeout_ms = -1 };
	int ch;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":w:t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			if (!cli_parse_long(optarg, 0, INT_MAX, &a->wait))
				return cli_usage("pub", "N must be a whole number, not '%s'", optarg);
			break;
		case 't':
			if (!cli_parse_long(optarg, -1, INT_MAX, &a->timeout_ms))
				return cli_usage("pub", "MS must be -1 or a whole number of milliseconds, not '%s'",
						 optarg);
			break;
		case 'h':
			help();
			return -1;
		case ':':
			return cli_usage("pub", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage("pub", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc || !*argv[optind])
		return cli_usage("pub", "missing URL");
	if (optind + 1 >= argc)
		return cli_usage("pub", "missing TOPIC");
	a->url = argv[optind];
	a->topic = argv[optind + 1];
	if (strlen(a->topic) > IPCX_TOPIC_MAX)
		return cli_usage("pub", "a TOPIC has at most %d bytes", IPCX_TOPIC_MAX);
	a->msgs = argv + optind + 2;
	a->nmsgs = argc - optind - 2;
	return CLI_OK;
}

static int publish(const struct pub_args *a, ipcx_pub *p, const char *msg, size_t len, long nth)
{
	ssize_t r = ipcx_pub_send(p, a->topic, msg, len, (int)a->timeout_ms);
	if (r < 0)
		return cli_fail((int)r, "cannot publish message %ld (%zu bytes) on %s", nth, len, a->url);
	return CLI_OK;
}

static int publish_lines(const struct pub_args *a, ipcx_pub *p)
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
		rc = publish(a, p, line, (size_t)n, ++nth);
		errno = 0;
	}
	if (rc == CLI_OK && ferror(stdin))
		rc = cli_fail(errno ? -errno : -EIO, "cannot read standard input");
	free(line);
	return rc;
}

int cli_pub(int argc, char **argv)
{
	struct pub_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	ipcx_pub *p = NULL;
	int r = ipcx_pub_open(a.url, 0, &p);
	if (r < 0)
		return cli_fail(r, "cannot publish on %s", a.url);
	if (a.wait > 0 && (r = ipcx_pub_wait(p, (size_t)a.wait, (int)a.timeout_ms)) < 0)
		rc = cli_fail(r, "waiting for %ld subscribers on %s", a.wait, a.url);
	if (rc == CLI_OK && a.nmsgs == 0)
		rc = publish_lines(&a, p);
	for (int i = 0; i < a.nmsgs && rc == CLI_OK; i++)
		rc = publish(&a, p, a.msgs[i], strlen(a.msgs[i]), i + 1);
	/* On sockets, closing delivers what is still queued (linger=). */
	r = ipcx_pub_close(p);
	if (r < 0 && rc == CLI_OK)
		rc = cli_fail(r, "cannot finish publishing on %s", a.url);
	return rc;
}
