/*
 * ipcx lock: run a command while holding a lock on a file, as flock(1) does.
 *
 * The lock is a flock(2) lock by default, so that it excludes flock(1) and
 * every other flock user; --record takes an open-file-description record lock
 * instead.  The command inherits the locked descriptor, so the lock is held
 * until the command and everything it started have closed it, even if ipcx
 * itself is killed.  ipcx forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to the
 * command and exits with its status (128 + N if signal N ended it).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ipcx.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: ipcx lock [--shared] [--record] [--timeout MS] PATH -- COMMAND [ARG...]\n"
	"\n"
	"Run COMMAND while holding a lock on PATH (created 0600 if missing, never\n"
	"through a symlink), and exit with COMMAND's status.\n"
	"\n"
	"  --shared       a shared lock (others may hold shared locks too)\n"
	"  --record       a record lock (fcntl F_OFD_SETLK) instead of flock(2)\n"
	"  --timeout MS   give up after MS milliseconds (0: do not wait); exit 1\n"
	"  --help         this text\n"
	"\n"
	"The default lock is flock(2), the one flock(1) takes, so the two exclude\n"
	"each other.  COMMAND inherits the lock: it is released when COMMAND (and\n"
	"whatever it left running) has exited.\n";

struct lock_args {
	unsigned flags;
	int timeout_ms;
	const char *path;
	char **cmd;
};

/* Find "--"; everything before it is options and PATH, everything after the command. */
static int parse(int argc, char **argv, struct lock_args *a)
{
	static const struct option opts[] = {
		{ "shared", no_argument, NULL, 's' },  { "record", no_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int dd = 1;
	while (dd < argc && strcmp(argv[dd], "--"))
		dd++;
	a->flags = IPCX_LOCK_FLOCK;
	a->timeout_ms = -1;
	opterr = 0;
	optind = 1;
	int c;
	long v;
	while ((c = getopt_long(dd, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			a->flags |= IPCX_LOCK_SHARED;
			break;
		case 'r':
			a->flags &= ~IPCX_LOCK_FLOCK;
			break;
		case 't':
			if (!cli_parse_long(optarg, 0, 0x7fffffff, &v))
				return cli_usage("lock", "--timeout wants milliseconds, got '%s'", optarg);
			a->timeout_ms = (int)v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		default:
			return cli_usage("lock", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != dd - 1)
		return cli_usage("lock", optind >= dd ? "no PATH given" : "one PATH, then '--'");
	if (dd >= argc)
		return cli_usage("lock", "want '-- COMMAND' after PATH");
	if (dd + 1 >= argc)
		return cli_usage("lock", "no COMMAND after '--'");
	a->path = argv[optind];
	a->cmd = argv + dd + 1;
	return 0;
}

/* In the child: the command holds the lock too (flock(1) does the same). */
static void inherit_lock(void *arg)
{
	fcntl(*(int *)arg, F_SETFD, 0);
}

int cli_lock(int argc, char **argv)
{
	struct lock_args a = { 0 };
	int r = parse(argc, argv, &a);
	if (r)
		return r < 0 ? CLI_OK : r;
	sigset_t orig;
	sigprocmask(SIG_BLOCK, NULL, &orig);
	/* Lock first, while Ctrl-C can still interrupt a long wait. */
	ipcx_lock *l;
	if ((r = ipcx_lock_open(a.path, a.flags, 0, a.timeout_ms, &l)) < 0)
		return cli_fail(r == -EAGAIN ? -ETIMEDOUT : r, "cannot lock %s", a.path);
	int fd = ipcx_lock_fileno(l);
	int status = cli_run_command(a.cmd, &orig, inherit_lock, &fd);
	ipcx_lock_close(l);
	return status;
}
