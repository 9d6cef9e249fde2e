/*
 * ipcx slot: run a command while holding one of N slots of a shared table,
 * like flock(1) but counting: at most N commands hold a slot of one table
 * at a time.  The first `ipcx slot` on a URL makes the table (kept: it
 * outlives the command, like a lock file; `ipcx rm URL` removes it).  A
 * holder killed with SIGKILL gives its slot back; the command dies with ipcx
 * (PR_SET_PDEATHSIG), so it never runs without its slot.
 */
#include "cli.h"

#include <errno.h>
#include <ipcx.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: ipcx slot [--timeout MS] URL -n N -- COMMAND [ARG...]\n"
	"\n"
	"Run COMMAND while holding one of the N slots of the table at URL (shm:/name,\n"
	"sysvshm:KEY, file:/path), made with N slots if it does not exist; exit with\n"
	"COMMAND's status.\n"
	"\n"
	"  -n N           the number of slots (1 .. 65536)\n"
	"  --timeout MS   give up after MS milliseconds (0: do not wait); exit 1\n"
	"  --help         this text\n"
	"\n"
	"COMMAND gets IPCX_SLOT (the slot's index) and, when the slot's last holder\n"
	"was killed holding it, IPCX_SLOT_RECOVERED=1.  COMMAND is killed if ipcx\n"
	"is.  The table stays until 'ipcx rm URL'; 'ipcx info URL' shows its holders.\n";

struct slot_args {
	const char *url;
	long n;
	int timeout_ms;
	char **cmd;
};

/* Options and the URL in any order before "--"; the command after it. */
static int parse(int argc, char **argv, struct slot_args *a)
{
	a->timeout_ms = -1;
	int i = 1;
	long v;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			fputs(usage_text, stdout);
			return -1;
		} else if (!strcmp(o, "-n")) {
			if (!val || !cli_parse_long(val, 1, 65536, &a->n))
				return cli_usage("slot", "-n wants 1 .. 65536 slots");
			i++;
		} else if (!strcmp(o, "--timeout")) {
			if (!val || !cli_parse_long(val, 0, 0x7fffffff, &v))
				return cli_usage("slot", "--timeout wants milliseconds");
			a->timeout_ms = (int)v;
			i++;
		} else if (o[0] == '-') {
			return cli_usage("slot", "unknown option '%s'", o);
		} else if (a->url) {
			return cli_usage("slot", "one URL, then '--'");
		} else {
			a->url = o;
		}
	}
	if (!a->url)
		return cli_usage("slot", "no URL given");
	if (!a->n)
		return cli_usage("slot", "-n N: how many slots");
	if (i >= argc)
		return cli_usage("slot", "want '-- COMMAND' after the options");
	if (i + 1 >= argc)
		return cli_usage("slot", "no COMMAND after '--'");
	a->cmd = argv + i + 1;
	return 0;
}

/* Open the table, or make it (kept) if there is none yet. */
static int open_table(const struct slot_args *a, ipcx_slots **t)
{
	for (int tries = 0; tries < 3; tries++) {
		int r = ipcx_slots_open(a->url, (unsigned)a->n, 0, 0, t);
		if (r != -ENOENT)
			return r;
		char url[600];
		snprintf(url, sizeof(url), "%s%skeep=1", a->url, strchr(a->url, '?') ? "&" : "?");
		r = ipcx_slots_open(url, (unsigned)a->n, 0, IPCX_SLOTS_CREATE, t);
		if (r != -EEXIST) /* else another ipcx slot made it first */
			return r;
	}
	return -EEXIST;
}

struct child_env {
	char slot[32];
	bool recovered;
};

static void in_child(void *arg)
{
	struct child_env *e = arg;
	/* Never run without the slot: die with the holder. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setenv("IPCX_SLOT", e->slot, 1);
	if (e->recovered)
		setenv("IPCX_SLOT_RECOVERED", "1", 1);
	else
		unsetenv("IPCX_SLOT_RECOVERED");
}

int cli_slot(int argc, char **argv)
{
	struct slot_args a = { 0 };
	int r = parse(argc, argv, &a);
	if (r)
		return r < 0 ? CLI_OK : r;
	sigset_t orig;
	sigprocmask(SIG_BLOCK, NULL, &orig);
	ipcx_slots *t;
	if ((r = open_table(&a, &t)) < 0)
		return cli_fail(r, "cannot open the slot table %s", a.url);
	unsigned fl = 0;
	int s = ipcx_slot_acquire(t, a.timeout_ms, &fl);
	if (s < 0) {
		ipcx_slots_close(t);
		return cli_fail(s == -EAGAIN ? -ETIMEDOUT : s, "no free slot in %s", a.url);
	}
	struct child_env e = { .recovered = fl & IPCX_SLOT_RECOVERED };
	snprintf(e.slot, sizeof(e.slot), "%d", s);
	if (e.recovered)
		fprintf(stderr, "ipcx slot: slot %d of %s was held by a process that died\n", s,
			a.url);
	int status = cli_run_command(a.cmd, &orig, in_child, &e);
	ipcx_slot_release(t, (unsigned)s);
	ipcx_slots_close(t);
	return status;
}
