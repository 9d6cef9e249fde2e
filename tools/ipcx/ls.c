/* ipcx ls: every IPC object on the machine, as a table or as JSON. */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <ipcx.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f)
{
	fprintf(f,
		"usage: ipcx ls [OPTIONS] [PATH...]\n"
		"List System V queues, semaphores and shared memory, POSIX shared memory,\n"
		"semaphores and message queues, FIFOs and Unix sockets, whoever made them.\n"
		"FIFOs and socket files are looked for in /tmp, /var/tmp, /run and /dev/shm,\n"
		"where processes have them open, where ipcx made them, and under each PATH.\n\n"
		"  --json          one JSON array of objects (fields: docs/cli.md)\n"
		"  --kind KINDS    only these kinds, comma-separated: sysv-msg, sysv-sem,\n"
		"                  sysv-shm, posix-shm, posix-sem, posix-mq, fifo, unix-socket,\n"
		"                  mmap-log (an mmap: log, listed when named as a PATH)\n"
		"  --owner USER    only objects of this user (name or uid)\n"
		"  --name TEXT     only objects whose URL contains TEXT\n"
		"  --ipcx          only objects ipcx created\n"
		"  --orphans       only orphans (ipcx made them, creator dead, nobody attached)\n"
		"  --no-pids       do not look through /proc for the processes using each\n"
		"  --no-mount      as root, do not mount the mqueue file system if it is not\n");
}

struct filter {
	unsigned kinds; /* bit per enum ipcx_obj_kind; 0 = all */
	int64_t owner;  /* -1 = any */
	const char *name;
	bool ipcx, orphans;
};

static bool parse_kinds(const char *arg, unsigned *kinds)
{
	char *dup = strdup(arg), *save = NULL;
	bool ok = dup != NULL;
	for (char *k = dup ? strtok_r(dup, ",", &save) : NULL; k; k = strtok_r(NULL, ",", &save)) {
		int v = ipcx_obj_kind_parse(k);
		if (v < 0)
			ok = false;
		else
			*kinds |= 1u << v;
	}
	free(dup);
	return ok;
}

static bool parse_owner(const char *arg, int64_t *owner)
{
	long v;
	if (cli_parse_long(arg, 0, INT_MAX, &v)) {
		*owner = v;
		return true;
	}
	struct passwd *pw = getpwnam(arg);
	if (!pw)
		return false;
	*owner = pw->pw_uid;
	return true;
}

static bool wanted(const struct filter *f, const struct ipcx_obj *o)
{
	return (!f->kinds || (f->kinds & (1u << o->kind))) && (f->owner < 0 || o->uid == f->owner) &&
	       (!f->name || strstr(o->url, f->name)) && (!f->ipcx || o->ipcx) &&
	       (!f->orphans || o->orphan);
}

static void print_pids(char *buf, size_t cap, const struct ipcx_obj *o)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < o->npids && len < cap; i++) {
		if (i == 3) {
			snprintf(buf + len, cap - len, ",+%zu", o->npids - 3);
			return;
		}
		len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "", (int)o->pids[i]);
	}
	if (!o->npids)
		snprintf(buf, cap, "-");
}

static void print_table(const struct ipcx_obj *v, size_t n, const struct filter *f)
{
	printf("%-11s %-40s %8s %-8s %4s %10s %6s %6s %2s %-18s %5s %s\n", "KIND", "NAME", "ID",
	       "OWNER", "MODE", "SIZE", "MSGS", "DROP", "RX", "PIDS", "AGE", "IPCX");
	for (size_t i = 0; i < n; i++) {
		const struct ipcx_obj *o = &v[i];
		if (!wanted(f, o))
			continue;
		char name[64], id[24], user[64], size[32], msgs[24], pids[64], age[16], drop[24],
			rx[24];
		if (o->key >= 0 && !o->name[0])
			snprintf(name, sizeof(name), "0x%08" PRIx64, (uint64_t)o->key);
		else
			snprintf(name, sizeof(name), "%s", o->name);
		snprintf(id, sizeof(id), o->id >= 0 ? "%" PRId64 : "-", o->id);
		snprintf(size, sizeof(size), o->size >= 0 ? "%" PRId64 : "-", o->size);
		if (o->kind == IPCX_OBJ_SYSV_SEM && o->nsems >= 0)
			snprintf(size, sizeof(size), "%" PRId64 " sems", o->nsems);
		snprintf(msgs, sizeof(msgs), o->messages >= 0 ? "%" PRId64 : "-", o->messages);
		/* Rings: what was lost, and how many consume (a log's drain). */
		snprintf(drop, sizeof(drop), o->has_stats ? "%" PRIu64 : "-", o->stats.dropped);
		snprintf(rx, sizeof(rx), o->has_stats ? "%" PRIu64 : "-", o->stats.receivers);
		print_pids(pids, sizeof(pids), o);
		printf("%-11s %-40s %8s %-8s %04o %10s %6s %6s %2s %-18s %5s %s\n",
		       ipcx_obj_kind_name(o->kind), name, id, cli_user(o->uid, user, sizeof(user)),
		       o->mode, size, msgs, drop, rx, pids, cli_age(o->ctime, age, sizeof(age)),
		       o->orphan ? "orphan" : o->ipcx ? "yes" : "-");
		/* A broadcast ring's subscribers, one line each, under the ring. */
		for (size_t k = 0; k < o->nsubs; k++)
			printf("%-11s   subscriber pid %d: received %" PRIu64 ", lost %" PRIu64
			       ", lag %" PRIu64 "\n",
			       "", (int)o->subs[k].pid, o->subs[k].received, o->subs[k].lost,
			       o->subs[k].lag);
	}
}

static void print_json(const struct ipcx_obj *v, size_t n, const struct filter *f)
{
	bool first = true;
	putchar('[');
	for (size_t i = 0; i < n; i++) {
		if (!wanted(f, &v[i]))
			continue;
		fputs(first ? "\n  " : ",\n  ", stdout);
		cli_obj_json(stdout, &v[i]);
		first = false;
	}
	fputs(first ? "]\n" : "\n]\n", stdout);
}

int cli_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },     { "kind", required_argument, NULL, 'k' },
		{ "owner", required_argument, NULL, 'o' }, { "name", required_argument, NULL, 'n' },
		{ "ipcx", no_argument, NULL, 'I' },     { "orphans", no_argument, NULL, 'O' },
		{ "no-pids", no_argument, NULL, 'P' },  { "no-mount", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },     { NULL, 0, NULL, 0 },
	};
	struct filter f = { .owner = -1 };
	bool json = false, mount_ok = true;
	unsigned flags = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'k':
			if (!parse_kinds(optarg, &f.kinds))
				return cli_usage("ls", "unknown kind in '%s'", optarg);
			break;
		case 'o':
			if (!parse_owner(optarg, &f.owner))
				return cli_usage("ls", "no user '%s'", optarg);
			break;
		case 'n': f.name = optarg; break;
		case 'I': f.ipcx = true; break;
		case 'O': f.orphans = true; break;
		case 'P': flags |= IPCX_LS_NOPIDS; break;
		case 'M': mount_ok = false; break;
		case 'h': help(stdout); return CLI_OK;
		default: return cli_usage("ls", "unknown option");
		}
	}
	/* Paths to look at: made absolute, since the library takes no relative ones. */
	char **paths = calloc((size_t)(argc - optind) + 1, sizeof(*paths));
	if (!paths)
		return cli_fail(-12, "out of memory");
	int np = 0;
	for (int i = optind; i < argc; i++) {
		char *abs = realpath(argv[i], NULL);
		if (!abs) {
			char esc[1024];
			fprintf(stderr, "ipcx ls: %s: no such file or folder\n",
				cli_escape(argv[i], esc, sizeof(esc)));
			continue;
		}
		paths[np++] = abs;
	}
	if (!f.kinds || (f.kinds & (1u << IPCX_OBJ_POSIX_MQ)))
		cli_mqueue_prepare(mount_ok);
	struct ipcx_obj *v = NULL;
	ssize_t n = ipcx_ls((const char *const *)paths, flags, &v);
	for (int i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	if (n < 0)
		return cli_fail((int)n, "cannot list objects");
	if (json)
		print_json(v, (size_t)n, &f);
	else
		print_table(v, (size_t)n, &f);
	ipcx_objs_free(v, (size_t)n);
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}
