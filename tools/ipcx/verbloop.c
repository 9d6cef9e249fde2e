/*
 * What the channel verbs do alike (verbloop_int.h).
 */
#include "verbloop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One of the options verb_getopt knows: CLI_OK, or the usage error. */
static int common_opt(const struct verb_opts *o, int ch, const char *arg)
{
	if (ch == 't' && o->timeout_ms) {
		if (!cli_parse_long(arg, -1, INT_MAX, o->timeout_ms))
			return cli_usage(o->verb, "MS must be -1 or a whole number of milliseconds, "
					 "not '%s'", arg);
		return CLI_OK;
	}
	if (ch == 'n' && o->count) {
		if (!cli_parse_long(arg, 1, LONG_MAX, o->count))
			return cli_usage(o->verb, "%s must be a whole number of 1 or more, not '%s'",
					 o->count_name, arg);
		return CLI_OK;
	}
	/* ch == 'R' && o->ready_fd */
	if (!cli_parse_long(arg, 0, INT_MAX, o->ready_fd))
		return cli_usage(o->verb, "FD must be a descriptor number, not '%s'", arg);
	if (fcntl((int)*o->ready_fd, F_GETFD) < 0)
		return cli_usage(o->verb, "descriptor %ld (--ready-fd) is not open", *o->ready_fd);
	return CLI_OK;
}

static bool is_common(const struct verb_opts *o, int ch)
{
	return (ch == 't' && o->timeout_ms) || (ch == 'n' && o->count) || (ch == 'R' && o->ready_fd);
}

int verb_getopt(int argc, char **argv, const struct verb_opts *o)
{
	int ch, rc = CLI_OK;
	opterr = 0;
	optind = 1;
	while (rc == CLI_OK && (ch = getopt_long(argc, argv, o->shortopts, o->longopts, NULL)) != -1) {
		if (ch == 'h') {
			o->help();
			return -1;
		}
		if (ch == ':')
			return cli_usage(o->verb, "option '%s' needs a value", argv[optind - 1]);
		if (is_common(o, ch))
			rc = common_opt(o, ch, optarg);
		else
			rc = ch != '?' && o->own ? o->own(ch, optarg, o->arg) : VERB_UNKNOWN;
		if (rc == VERB_UNKNOWN)
			return cli_usage(o->verb, "unknown option '%s'", argv[optind - 1]);
	}
	if (rc != CLI_OK || !o->url)
		return rc;
	if (optind >= argc || !*argv[optind])
		return cli_usage(o->verb, "missing URL");
	*o->url = argv[optind++];
	return CLI_OK;
}

static int send_lines(verb_send_fn *one, void *arg)
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
		rc = one(arg, line, (size_t)n, ++nth);
		errno = 0;
	}
	if (rc == CLI_OK && ferror(stdin))
		rc = cli_fail(errno ? -errno : -EIO, "cannot read standard input");
	free(line);
	return rc;
}

int verb_send_each(char **msgs, int n, verb_send_fn *one, void *arg)
{
	if (n == 0)
		return send_lines(one, arg);
	int rc = CLI_OK;
	for (int i = 0; i < n && rc == CLI_OK; i++)
		rc = one(arg, msgs[i], strlen(msgs[i]), i + 1);
	return rc;
}

int verb_read_stdin(size_t limit, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (!b)
			return -ENOMEM;
		if (n == cap) {
			if (cap > limit)
				break;
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t r = read(STDIN_FILENO, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;
			free(b);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = b;
	*len = n;
	return 0;
}

int verb_stop_open(struct verb_stop *st, const int *extra, size_t n)
{
	signal(SIGPIPE, SIG_IGN);
	st->sig = 0;
	st->sfd = cli_signals_open(extra, n, &st->old);
	return st->sfd < 0 ? CLI_FAIL : CLI_OK;
}

int verb_stop_close(struct verb_stop *st, int rc)
{
	close(st->sfd);
	st->sfd = -1;
	if (st->sig)
		return cli_reraise(st->sig, &st->old);
	sigprocmask(SIG_SETMASK, &st->old, NULL);
	return rc;
}

int64_t verb_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int verb_announce_chan(struct ipcx_chan *c, const char *url, long fd)
{
	char addr[1024];
	if (ipcx_addr(c, addr, sizeof(addr)) < 0) /* it cannot tell: the URL given */
		snprintf(addr, sizeof(addr), "%s", url);
	return cli_announce(addr, (int)fd);
}

int verb_no_message(const char *url, long timeout_ms, long got)
{
	fprintf(stderr, "ipcx: no message arrived on %s within %ld ms (%ld received)\n", url,
		timeout_ms, got);
	return CLI_FAIL;
}

int verb_stdout_failed(int err)
{
	if (err != -EPIPE)
		return cli_fail(err, "cannot write to standard output");
	fprintf(stderr, "ipcx: cannot write to standard output: its reader has gone\n");
	return CLI_FAIL;
}
