/* ipcx info: everything known about one object. */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <ipcx.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void help(FILE *f)
{
	fprintf(f, "usage: ipcx info [--json] URL\n"
		   "Everything known about one object (URL as ipcx rm takes it).\n\n"
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
	if (json) {
		cli_obj_json(stdout, o);
		putchar('\n');
	} else {
		print_words(o);
	}
	ipcx_objs_free(o, 1);
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}
