/*
 * ipcx log URL [--level L] [--tag T] [--block] [MESSAGE...]
 *
 * Like logger(1): writes one record into the log at URL (the MESSAGE
 * words, joined by spaces), or one record per line of standard input.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct log_args {
	const char *url, *tag;
	int level;
	unsigned flags;
	char **words;
	int nwords;
};

static void help(void)
{
	printf("usage: ipcx log URL [--level L] [--tag T] [--block] [MESSAGE...]\n"
	       "\n"
	       "Write a record into the log at URL (see ipcx logd), like logger(1): the\n"
	       "MESSAGE words joined by spaces, or with no MESSAGE one record per line of\n"
	       "standard input (empty lines are skipped).  A record that finds the log full\n"
	       "is dropped, and the next one says how many were; exit status 1 then.\n"
	       "\n"
	       "  -l, --level L   emerg, alert, crit, err, warning, notice, info (default),\n"
	       "                  debug\n"
	       "  -t, --tag T     the program name in the records (default: the user's name)\n"
	       "  -b, --block     wait for room instead of dropping (a log made with\n"
	       "                  policy=block)\n"
	       "  -h, --help      show this help\n"
	       "\n"
	       "examples:\n"
	       "  ipcx log shm:/app-log --level err disk full\n"
	       "  make 2>&1 | ipcx log mmap:/var/tmp/build.log --tag make\n");
}

static int parse_args(int argc, char **argv, struct log_args *a)
{
	static const struct option opts[] = {
		{ "level", required_argument, NULL, 'l' }, { "tag", required_argument, NULL, 't' },
		{ "block", no_argument, NULL, 'b' },       { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*a = (struct log_args){ .level = IPCX_LOG_INFO };
	int ch;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":l:t:bh", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if ((a->level = ipcx_log_level_parse(optarg)) < 0)
				return cli_usage("log", "no level '%s' (emerg .. debug)", optarg);
			break;
		case 't': a->tag = optarg; break;
		case 'b': a->flags |= IPCX_LOG_BLOCK; break;
		case 'h': help(); return -1;
		case ':': return cli_usage("log", "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage("log", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc || !*argv[optind])
		return cli_usage("log", "missing URL");
	a->url = argv[optind];
	a->words = argv + optind + 1;
	a->nwords = argc - optind - 1;
	return CLI_OK;
}

/* logger(1)'s default tag: the user's name. */
static const char *default_tag(void)
{
	struct passwd *pw = getpwuid(geteuid());
	return pw ? pw->pw_name : "ipcx";
}

/* 0, 1 (dropped), or a failure already reported. */
static int write_one(const struct log_args *a, ipcx_log *l, const char *msg, size_t len)
{
	int r = ipcx_log_write(l, a->level, msg, len);
	if (r == 0 || r == -ENOBUFS)
		return r == 0 ? 0 : 1;
	return -cli_fail(r, "cannot write to %s", a->url);
}

static int log_words(const struct log_args *a, ipcx_log *l, long *dropped)
{
	size_t len = 0;
	for (int i = 0; i < a->nwords; i++)
		len += strlen(a->words[i]) + 1;
	char *msg = malloc(len + 1), *p = msg;
	if (!msg)
		return cli_fail(-ENOMEM, "out of memory");
	for (int i = 0; i < a->nwords; i++)
		p += sprintf(p, "%s%s", i ? " " : "", a->words[i]);
	int r = write_one(a, l, msg, (size_t)(p - msg));
	free(msg);
	if (r < 0)
		return -r;
	*dropped += r;
	return CLI_OK;
}

static int log_lines(const struct log_args *a, ipcx_log *l, long *dropped)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = CLI_OK;
	errno = 0;
	while (rc == CLI_OK && (n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		int r = n ? write_one(a, l, line, (size_t)n) : 0;
		if (r < 0)
			rc = -r;
		else
			*dropped += r;
		errno = 0;
	}
	if (rc == CLI_OK && ferror(stdin))
		rc = cli_fail(errno ? -errno : -EIO, "cannot read standard input");
	free(line);
	return rc;
}

int cli_log(int argc, char **argv)
{
	struct log_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	ipcx_log *l;
	int r = ipcx_log_open(a.url, a.tag ? a.tag : default_tag(), a.flags, &l);
	if (r < 0)
		return cli_fail(r, "cannot open the log %s", a.url);
	long dropped = 0;
	rc = a.nwords ? log_words(&a, l, &dropped) : log_lines(&a, l, &dropped);
	ipcx_log_close(l);
	if (rc == CLI_OK && dropped) {
		char esc[1024];
		fprintf(stderr, "ipcx log: %ld record%s dropped: %s was full\n", dropped,
			dropped == 1 ? "" : "s", cli_escape(a.url, esc, sizeof(esc)));
		rc = CLI_FAIL;
	}
	return rc;
}
