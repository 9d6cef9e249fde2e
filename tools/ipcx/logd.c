/*
 * ipcx logd URL [--out FILE] [--rotate SIZE --keep N] [--json] [--format F]
 *               [--fsync] [--once] [--ready-fd N]
 *
 * The drain of a log: writes the records of URL to FILE (or standard
 * output) until SIGTERM or SIGINT; SIGHUP reopens FILE (for logrotate).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ipcx.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct logd_args {
	const char *url;
	struct ipcx_logd_opts o;
	bool once;
	int ready_fd;
};

static void help(void)
{
	printf("usage: ipcx logd URL [--out FILE] [--rotate SIZE --keep N] [--json]\n"
	       "                 [--format FORMAT] [--fsync] [--once] [--ready-fd N]\n"
	       "\n"
	       "The drain of a log (made if needed): writes its records, in order, one line\n"
	       "each, to FILE or standard output, until SIGTERM or SIGINT.  SIGHUP reopens\n"
	       "FILE (for logrotate).  On shm:, sysvshm: and mmap: a record leaves the log\n"
	       "only once its line is written: a drain killed at any moment loses nothing,\n"
	       "and with --out the next one writes nothing twice.  docs/log.md tells more.\n"
	       "\n"
	       "  -o, --out FILE      append to FILE (made 0600) instead of standard output\n"
	       "  -r, --rotate SIZE   when FILE reaches SIZE bytes (K, M, G), move it to\n"
	       "                      FILE.1, FILE.1 to FILE.2 ... and start a new FILE\n"
	       "  -k, --keep N        rotated files kept (default 5)\n"
	       "  -j, --json          JSON lines instead of text\n"
	       "  -f, --format F      a text line: %%t time (UTC), %%m monotonic seconds,\n"
	       "                      %%l level, %%n program, %%p pid, %%T thread id, %%d record\n"
	       "                      id, %%s message, %%%% a '%%' (default \"%%t %%n[%%p/%%T] %%l: %%s\")\n"
	       "      --fsync         make each batch durable before its records leave the log\n"
	       "      --once          write what the log holds now, then exit\n"
	       "      --ready-fd N    write a newline to descriptor N once the log is open\n"
	       "  -h, --help          show this help\n"
	       "\n"
	       "examples:\n"
	       "  ipcx logd mmap:/var/tmp/app.log --out /var/log/app.txt --rotate 10M --keep 3\n"
	       "  ipcx logd shm:/app-log --json | jq .msg\n");
}

static bool parse_bytes(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return false;
	int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
						     : *end == 'G' || *end == 'g' ? 30 : 0;
	if (shift)
		end++;
	if (*end || v == 0 || v > (1ull << 62) >> shift)
		return false;
	*ret = (uint64_t)v << shift;
	return true;
}

static bool parse_fd(const char *s, int *ret)
{
	long v;
	if (!cli_parse_long(s, 0, INT_MAX, &v))
		return false;
	int fl = fcntl((int)v, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
		return false;
	*ret = (int)v;
	return true;
}

static int parse_args(int argc, char **argv, struct logd_args *a)
{
	enum { FSYNC = 256, ONCE, READY };
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },    { "rotate", required_argument, NULL, 'r' },
		{ "keep", required_argument, NULL, 'k' },   { "json", no_argument, NULL, 'j' },
		{ "format", required_argument, NULL, 'f' }, { "fsync", no_argument, NULL, FSYNC },
		{ "once", no_argument, NULL, ONCE },        { "ready-fd", required_argument, NULL, READY },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	*a = (struct logd_args){ .o.keep = 5, .ready_fd = -1 };
	bool keep_given = false;
	long v;
	int ch;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":o:r:k:jf:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o': a->o.out = optarg; break;
		case 'r':
			if (!parse_bytes(optarg, &a->o.rotate_size))
				return cli_usage("logd", "SIZE must be a number of bytes (10M, 512K ...), not '%s'",
						 optarg);
			break;
		case 'k':
			if (!cli_parse_long(optarg, 0, 1000, &v))
				return cli_usage("logd", "N must be 0 to 1000, not '%s'", optarg);
			a->o.keep = (unsigned)v;
			keep_given = true;
			break;
		case 'j': a->o.flags |= IPCX_LOGD_JSON; break;
		case 'f': a->o.format = optarg; break;
		case FSYNC: a->o.flags |= IPCX_LOGD_FSYNC; break;
		case ONCE: a->once = true; break;
		case READY:
			if (!parse_fd(optarg, &a->ready_fd))
				return cli_usage("logd", "--ready-fd %s: not a descriptor open for writing",
						 optarg);
			break;
		case 'h': help(); return -1;
		case ':': return cli_usage("logd", "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage("logd", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1 || !*argv[optind])
		return cli_usage("logd", optind >= argc ? "missing URL" : "one URL only");
	a->url = argv[optind];
	for (const char *f = a->o.format; f && (f = strchr(f, '%')); f += 2)
		if (!f[1] || !strchr("tmlnpTds%", f[1]))
			return cli_usage("logd", "the format has '%%%.1s': say %%t %%m %%l %%n %%p %%T %%d %%s or %%%%",
					 f + 1);
	if ((a->o.rotate_size || keep_given) && (!a->o.out || !strcmp(a->o.out, "-")))
		return cli_usage("logd", "--rotate and --keep need --out FILE");
	if (keep_given && !a->o.rotate_size)
		return cli_usage("logd", "--keep goes with --rotate");
	return CLI_OK;
}

static void ready(struct logd_args *a)
{
	if (a->ready_fd < 0)
		return;
	ssize_t n = write(a->ready_fd, "\n", 1);
	(void)n;
	if (a->ready_fd > 2)
		close(a->ready_fd);
	a->ready_fd = -1;
}

/* Handle the signals that came: 1 to stop, 0 to go on, or a failure (reported). */
static int signals(ipcx_sigs *s, ipcx_logd *d, const struct logd_args *a)
{
	struct ipcx_siginfo si;
	int stop = 0;
	while (ipcx_signals_next(s, 0, &si) == 0) {
		if (si.action == IPCX_SIG_STOP)
			stop = 1;
		if (si.action != IPCX_SIG_RELOAD || !a->o.out)
			continue;
		int r = ipcx_logd_reopen(d);
		if (r < 0)
			return -cli_fail(r, "cannot reopen %s", a->o.out);
		char esc[PATH_MAX];
		fprintf(stderr, "ipcx logd: reopened %s\n", cli_escape(a->o.out, esc, sizeof(esc)));
	}
	return stop;
}

static int drain(ipcx_logd *d, ipcx_sigs *s, struct logd_args *a)
{
	for (;;) {
		ssize_t n = ipcx_logd_run(d, a->once ? 0 : 100);
		if (n < 0 && n != -ETIMEDOUT && n != -EAGAIN)
			return cli_fail((int)n, "cannot drain %s", a->url);
		if (a->once && n < 0)
			return CLI_OK;
		int st = signals(s, d, a);
		if (st < 0)
			return -st;
		if (st == 0)
			continue;
		/* Asked to stop: write what is there, then go. */
		while ((n = ipcx_logd_run(d, 0)) > 0)
			;
		return n == -EAGAIN || n == -ETIMEDOUT || n == 0 ? CLI_OK
								: cli_fail((int)n, "cannot drain %s", a->url);
	}
}

int cli_logd(int argc, char **argv)
{
	struct logd_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	ipcx_sigs *s;
	int r = ipcx_signals_shutdown(0, &s);
	if (r < 0)
		return cli_fail(r, "cannot catch signals");
	ipcx_logd *d;
	r = ipcx_logd_open(a.url, &a.o, &d);
	if (r == -EBUSY)
		rc = cli_fail(r, "another drain has the log %s", a.url);
	else if (r < 0)
		rc = cli_fail(r, "cannot drain %s%s%s", a.url, a.o.out ? " into " : "",
			      a.o.out ? a.o.out : "");
	if (r == 0) {
		ready(&a);
		rc = drain(d, s, &a);
		r = ipcx_logd_close(d);
		if (rc == CLI_OK && r < 0)
			rc = cli_fail(r, "cannot close %s", a.url);
	}
	ipcx_signals_close(s);
	return rc;
}
