/* ipcx info: everything known about one object. */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void help(FILE *f)
{
	fprintf(f, "usage: ipcx info [--json] URL\n"
		   "Everything known about one object (URL as ipcx rm takes it); for a\n"
		   "slot table (ipcx slot), also its counters and holders.\n\n"
		   "  --json   the object as a JSON object (as in ipcx ls --json)\n");
}

static void line_num(const char *what, int64_t v)
{
	if (v >= 0)
		printf("%-14s %" PRId64 "\n", what, v);
}

static void print_words(const struct ipcx_obj *o)
{
	char user[64], group[32], age[16];
	printf("%-14s %s\n", "url", o->url);
	printf("%-14s %s\n", "kind", ipcx_obj_kind_name(o->kind));
	if (o->name[0])
		printf("%-14s %s\n", "name", o->name);
	if (o->key >= 0)
		printf("%-14s 0x%08" PRIx64 "\n", "key", (uint64_t)o->key);
	line_num(o->kind == IPCX_OBJ_UNIX_SOCKET ? "socket inode" : "id", o->id);
	printf("%-14s %s\n", "owner", cli_user(o->uid, user, sizeof(user)));
	snprintf(group, sizeof(group), o->gid >= 0 ? "%" PRId64 : "?", o->gid);
	printf("%-14s %s\n", "group", group);
	printf("%-14s %04o\n", "mode", o->mode);
	line_num("size", o->size);
	line_num("messages", o->messages);
	line_num("semaphores", o->nsems);
	line_num("attached", o->nattch);
	if (o->ctime >= 0) {
		time_t t = (time_t)o->ctime;
		char when[64];
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
		printf("%-14s %s (%s ago)\n", "created", when, cli_age(o->ctime, age, sizeof(age)));
	}
	printf("%-14s", "used by pids");
	for (size_t i = 0; i < o->npids; i++)
		printf(" %d", (int)o->pids[i]);
	printf("%s\n", o->npids ? "" : " none that this user can see");
	if (o->ipcx)
		printf("%-14s yes, by pid %d (%s)\n", "ipcx made it", (int)o->creator,
		       o->creator_alive ? "running" : "gone");
	else
		printf("%-14s no\n", "ipcx made it");
	if (!o->ipcx && o->creator > 0)
		printf("%-14s %d\n", "creator pid", (int)o->creator);
	printf("%-14s %s\n", "orphan", o->orphan ? "yes (ipcx gc removes it)" : "no");
	if (o->has_stats) {
		printf("%-14s sent %" PRIu64 ", received %" PRIu64 ", dropped %" PRIu64
		       ", depth %" PRIu64 ", peers %" PRIu64 ", receivers %" PRIu64 "\n",
		       "statistics", o->stats.sent, o->stats.received, o->stats.dropped,
		       o->stats.depth, o->stats.peers, o->stats.receivers);
		/* A log's drain is its one receiver. */
		printf("%-14s %s\n", "receiving", o->stats.receivers ? "yes (a consumer, or a log's drain, is attached)" : "no");
	}
	for (size_t k = 0; k < o->nsubs; k++)
		printf("%-14s pid %d: received %" PRIu64 ", lost %" PRIu64 ", lag %" PRIu64 "\n",
		       "subscriber", (int)o->subs[k].pid, o->subs[k].received, o->subs[k].lost,
		       o->subs[k].lag);
}

/* A slot table (ipcx slot, ipcx_slots_open): read-only, or NULL if it is not one. */
static ipcx_slots *slot_table(const struct ipcx_obj *o)
{
	ipcx_slots *t;
	if (o->kind != IPCX_OBJ_POSIX_SHM && o->kind != IPCX_OBJ_SYSV_SHM)
		return NULL;
	return ipcx_slots_open(o->url, 0, 0, IPCX_SLOTS_RDONLY, &t) == 0 ? t : NULL;
}

static void print_slots(ipcx_slots *t)
{
	struct ipcx_slots_stats s;
	if (ipcx_slots_stats(t, &s) < 0)
		return;
	printf("%-14s %u (%u held, %u waiting for one), records of %zu bytes\n", "slots", s.slots,
	       s.held, s.waiting, s.record_size);
	printf("%-14s acquired %" PRIu64 ", recovered from dead holders %" PRIu64
	       ", timed out %" PRIu64 "\n", "slot counters", s.acquired, s.recovered, s.timeouts);
	for (unsigned i = 0; i < s.slots; i++) {
		bool dead;
		pid_t pid = ipcx_slot_holder(t, i, &dead);
		if (pid > 0)
			printf("%-14s slot %u: pid %d%s\n", "holder", i, (int)pid,
			       dead ? " (dead: the next holder recovers it)" : "");
	}
}

static void json_slots(FILE *f, ipcx_slots *t)
{
	struct ipcx_slots_stats s;
	if (ipcx_slots_stats(t, &s) < 0)
		return;
	fprintf(f, ", \"slots\": {\"slots\": %u, \"held\": %u, \"waiting\": %u, "
		"\"record_size\": %zu, \"acquired\": %" PRIu64 ", \"recovered\": %" PRIu64
		", \"timeouts\": %" PRIu64 ", \"holders\": [", s.slots, s.held, s.waiting,
		s.record_size, s.acquired, s.recovered, s.timeouts);
	bool first = true;
	for (unsigned i = 0; i < s.slots; i++) {
		bool dead;
		pid_t pid = ipcx_slot_holder(t, i, &dead);
		if (pid > 0)
			fprintf(f, "%s{\"slot\": %u, \"pid\": %d, \"dead\": %s}", first ? "" : ", ", i,
				(int)pid, dead ? "true" : "false");
		first &= pid <= 0;
	}
	fputs("]}", f);
}

/* The object as JSON, with its slot table's state when it holds one. */
static void print_json(const struct ipcx_obj *o, ipcx_slots *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return;
	cli_obj_json(m, o);
	fclose(m);
	if (t && len && buf[len - 1] == '}') {
		buf[len - 1] = 0; /* reopen the object for one more member */
		fputs(buf, stdout);
		json_slots(stdout, t);
		fputs("}\n", stdout);
	} else {
		printf("%s\n", buf);
	}
	free(buf);
}

int cli_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': help(stdout); return CLI_OK;
		default: return cli_usage("info", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage("info", "name one URL");
	const char *url = argv[optind];
	if (!strncmp(url, "mq:", 3))
		cli_mqueue_prepare(true);
	struct ipcx_obj *o;
	int r = ipcx_obj_find(url, 0, &o);
	if (r < 0)
		return cli_fail(r, "no information on %s", url);
	ipcx_slots *t = slot_table(o);
	if (json) {
		print_json(o, t);
	} else {
		print_words(o);
		if (t)
			print_slots(t);
	}
	ipcx_slots_close(t);
	ipcx_objs_free(o, 1);
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}
