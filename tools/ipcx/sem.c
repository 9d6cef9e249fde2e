/*
 * ipcx sem: create, post, wait on, read and remove a named semaphore
 * (sem:/name or sysvsem:KEY) from the shell.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char usage_text[] =
	"usage: ipcx sem create URL [--value N]\n"
	"       ipcx sem post URL [--count N]\n"
	"       ipcx sem wait URL [--timeout MS]\n"
	"       ipcx sem value URL\n"
	"       ipcx sem remove URL\n"
	"\n"
	"URL is sem:/name (POSIX) or sysvsem:KEY (System V; KEY decimal or 0x hex,\n"
	"or sysvsem:/path?proj=N), with options such as ?mode=0660.\n"
	"\n"
	"  create   make it (exclusively, 0600 unless ?mode= says otherwise) with\n"
	"           value N (default 0); it stays until 'ipcx sem remove'\n"
	"  post     add N (default 1)\n"
	"  wait     take 1, waiting up to MS milliseconds (default: forever);\n"
	"           exit 1 if the time runs out\n"
	"  value    print the current value\n"
	"  remove   remove it\n"
	"\n"
	"Each command is a process of its own, so on sysvsem: units are taken and\n"
	"posted without SEM_UNDO (which would give them back when ipcx exits),\n"
	"unless the URL says undo=1.\n";

/* Does the URL give option key?  Options follow '?', separated by '&'. */
static bool has_opt(const char *url, const char *key)
{
	size_t klen = strlen(key);
	for (const char *q = strchr(url, '?'); q; q = strchr(q, '&')) {
		q++;
		if (!strncmp(q, key, klen) && q[klen] == '=')
			return true;
	}
	return false;
}

/* url with "key=val" added unless the URL gives key already. */
static const char *with_default(const char *url, const char *key, const char *val,
				char *buf, size_t cap)
{
	if (has_opt(url, key))
		return url;
	const char *q = strchr(url, '?');
	const char *sep = !q ? "?" : q[1] ? "&" : "";
	int n = snprintf(buf, cap, "%s%s%s=%s", url, sep, key, val);
	return n > 0 && (size_t)n < cap ? buf : url;
}

static bool is_sysv(const char *url)
{
	return !strncasecmp(url, "sysvsem:", 8);
}

struct sem_args {
	long value, count, timeout;
};

static int parse_opts(int argc, char **argv, struct sem_args *a, const char *allowed)
{
	static const struct option opts[] = {
		{ "value", required_argument, NULL, 'v' }, { "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return -1;
		}
		if (c == '?' || !strchr(allowed, c))
			return cli_usage("sem", "unknown option '%s' for '%s'", argv[optind - 1],
					 argv[0]);
		long *dst = c == 'v' ? &a->value : c == 'c' ? &a->count : &a->timeout;
		long lo = c == 'c' ? 1 : 0;
		if (!cli_parse_long(optarg, lo, 0x7fffffff, dst))
			return cli_usage("sem", "--%s wants a number, got '%s'",
					 c == 'v' ? "value" : c == 'c' ? "count" : "timeout", optarg);
	}
	if (argc - optind != 1)
		return cli_usage("sem", "'%s' wants one URL", argv[0]);
	return 0;
}

static int do_open(const char *url, ipcx_sem **s, char *buf, size_t cap)
{
	if (is_sysv(url))
		url = with_default(url, "undo", "0", buf, cap);
	int r = ipcx_sem_open(url, 0, s);
	return r < 0 ? cli_fail(r, "cannot open %s", url) : 0;
}

int cli_sem(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("sem", "want create, post, wait, value or remove");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return CLI_OK;
	}
	const char *cmd = argv[1];
	const char *allowed = !strcmp(cmd, "create") ? "v" : !strcmp(cmd, "post") ? "c"
			    : !strcmp(cmd, "wait") ? "t" : !strcmp(cmd, "value") ? ""
			    : !strcmp(cmd, "remove") ? "" : NULL;
	if (!allowed)
		return cli_usage("sem", "unknown command '%s'", cmd);
	struct sem_args a = { .value = 0, .count = 1, .timeout = -1 };
	int r = parse_opts(argc - 1, argv + 1, &a, allowed);
	if (r)
		return r < 0 ? CLI_OK : r;
	const char *url = argv[1 + optind];
	char buf[4200];
	ipcx_sem *s;
	if (!strcmp(cmd, "create")) {
		const char *u = with_default(url, "keep", "1", buf, sizeof(buf));
		if ((r = ipcx_sem_create(u, (unsigned)a.value, 0, &s)) < 0)
			return cli_fail(r, "cannot create %s", url);
		ipcx_sem_close(s);
		return CLI_OK;
	}
	if (!strcmp(cmd, "remove")) {
		if ((r = ipcx_sem_unlink(url)) < 0)
			return cli_fail(r, "cannot remove %s", url);
		return CLI_OK;
	}
	if ((r = do_open(url, &s, buf, sizeof(buf))))
		return r;
	if (!strcmp(cmd, "post")) {
		for (long i = 0; i < a.count && r == 0; i++)
			r = ipcx_sem_post(s);
		if (r < 0)
			r = cli_fail(r, "cannot post %s", url);
	} else if (!strcmp(cmd, "wait")) {
		r = ipcx_sem_wait(s, (int)a.timeout);
		if (r < 0)
			r = cli_fail(r == -EAGAIN ? -ETIMEDOUT : r, "cannot take %s", url);
	} else {
		unsigned v;
		r = ipcx_sem_value(s, &v);
		if (r < 0)
			r = cli_fail(r, "cannot read %s", url);
		else
			printf("%u\n", v);
	}
	ipcx_sem_close(s);
	return r;
}
