/* ipcx gc: remove the orphans that ipcx programs left behind. */
#include "cli.h"

#include <getopt.h>
#include <ipcx.h>
#include <stdio.h>

static void help(FILE *f)
{
	fprintf(f, "usage: ipcx gc [--dry-run] [--match PATTERN] [--json]\n"
		   "Remove the objects ipcx created whose creator is dead and that no process\n"
		   "has open, mapped or attached, and the records of objects already gone.\n"
		   "Objects ipcx did not create are never touched (ipcx rm removes those).\n"
		   "Your own objects only, unless run by root.\n\n"
		   "  --dry-run     remove nothing; list what would be removed\n"
		   "  --match PATTERN  only orphans whose URL matches this shell pattern\n"
		   "                ('shm:/myapp-*'; quote it)\n"
		   "  --json        the orphans as a JSON array (as ipcx ls --json)\n"
		   "  --no-mount    as root, do not mount the mqueue file system if it is not\n");
}

int cli_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' }, { "match", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },    { "no-mount", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },    { NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	const char *match = NULL;
	bool json = false, mount_ok = true;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': flags |= IPCX_GC_DRY_RUN; break;
		case 'm': match = optarg; break;
		case 'j': json = true; break;
		case 'M': mount_ok = false; break;
		case 'h': help(stdout); return CLI_OK;
		default: return cli_usage("gc", "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage("gc", "gc takes no URL (ipcx rm removes named objects)");
	cli_mqueue_prepare(mount_ok);
	struct ipcx_obj *v = NULL;
	ssize_t n = ipcx_gc(match, flags, &v);
	if (n < 0)
		return cli_fail((int)n, "gc");
	bool dry = flags & IPCX_GC_DRY_RUN;
	if (json)
		putchar('[');
	for (ssize_t i = 0; i < n; i++) {
		if (json) {
			fputs(i ? ",\n  " : "\n  ", stdout);
			cli_obj_json(stdout, &v[i]);
		} else {
			printf("%s %s (created by pid %d, which is gone)\n",
			       dry ? "would remove" : "removed", v[i].url, (int)v[i].creator);
		}
	}
	if (json)
		fputs(n ? "\n]\n" : "]\n", stdout);
	ipcx_objs_free(v, (size_t)n);
	return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}
