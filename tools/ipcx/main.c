/* ipcx: the command-line tool.  main() finds the verb and hands over. */
#include "cli.h"

#include <errno.h>
#include <ipcx.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct verb {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct verb verbs[] = {
	{ "send", cli_send, "send messages to a URL" },
	{ "recv", cli_recv, "listen on a URL and print the messages that arrive" },
	{ "bridge", cli_bridge, "relay every message from one URL to another" },
	{ "tour", cli_tour, "send messages over every transport and show what happened" },
	{ "lock", cli_lock, "run a command while holding a lock on a file (like flock(1))" },
	{ "signal", cli_signal, "send a signal with a value, or wait for signals" },
	{ "sem", cli_sem, "create, post, wait on or remove a named semaphore" },
	{ "log", cli_log, "write a record into a log (like logger(1))" },
	{ "logd", cli_logd, "drain a log into a file or standard output" },
	{ "pool", cli_pool, "run tasks, one per input line, through N long-lived workers" },
	{ "slot", cli_slot, "run a command while holding one of N shared slots" },
	{ "ls", cli_ls, "list every IPC object on the machine" },
	{ "info", cli_info, "everything known about one object" },
	{ "rm", cli_rm, "remove objects by URL" },
	{ "gc", cli_gc, "remove the orphans ipcx programs left behind" },
	{ "serve", cli_serve, "answer requests on a URL with a command (RPC, like inetd)" },
	{ "call", cli_call, "call an RPC server once and print its reply" },
	{ "pub", cli_pub, "publish messages under a topic (shm: ring or socket)" },
	{ "sub", cli_sub, "subscribe to topics and print TOPIC<TAB>MESSAGE lines" },
	{ "bench", cli_bench, "measure every mechanism: latency, throughput, peers" },
	{ "advise", cli_advise, "which transport fits what you need, with figures from this machine" },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

/*
 * libc's words start with a capital ("Connection refused"); in the middle of
 * our sentence they read better in lower case.  An acronym stays as it is.
 */
static void lower_first(char *s)
{
	if (s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'a' && s[1] <= 'z')
		s[0] = (char)(s[0] - 'A' + 'a');
}

const char *cli_escape(const char *s, char *buf, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n' || c == '\t' || c == '\r')
			o += (size_t)snprintf(buf + o, cap - o, "\\%c",
					      c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

int cli_fail(int err, const char *fmt, ...)
{
	char raw[1024], what[1024], reason[256], esc[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* What we echo may hold what the user typed: one line, whatever it holds. */
	cli_escape(raw, what, sizeof(what));
	snprintf(reason, sizeof(reason), "%s", ipcx_strerror(err));
	lower_first(reason);
	/* The detail usually starts with the URL, which `what` already names. */
	const char *detail = cli_escape(ipcx_errdetail(), esc, sizeof(esc));
	const char *colon = detail ? strstr(detail, ": ") : NULL;
	if (colon && colon > detail) {
		char head[1024];
		snprintf(head, sizeof(head), "%.*s", (int)(colon - detail), detail);
		if (strstr(what, head))
			detail = colon + 2;
	}
	if (detail && *detail && err == -EINVAL) /* the detail says more than "invalid argument" */
		fprintf(stderr, "ipcx: %s: %s\n", what, detail);
	else if (detail && *detail)
		fprintf(stderr, "ipcx: %s: %s (%s)\n", what, reason, detail);
	else
		fprintf(stderr, "ipcx: %s: %s\n", what, reason);
	return CLI_FAIL;
}

int cli_usage(const char *verb, const char *fmt, ...)
{
	char raw[512], msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ipcx %s: %s (see 'ipcx %s --help')\n", verb,
		cli_escape(raw, msg, sizeof(msg)), verb);
	return CLI_USAGE;
}

bool cli_parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ipcx VERB [ARGS...]\n       ipcx --version\n\nverbs:\n");
	for (size_t i = 0; i < NVERBS; i++)
		fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\n'ipcx VERB --help' tells more.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("ipcx %s\n", ipcx_version());
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < NVERBS; i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].run(argc - 1, argv + 1);
	char esc[256];
	fprintf(stderr, "ipcx: unknown verb '%s' (see 'ipcx --help')\n",
		cli_escape(argv[1], esc, sizeof(esc)));
	return CLI_USAGE;
}
