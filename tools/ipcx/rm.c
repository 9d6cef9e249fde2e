/* ipcx rm: remove IPC objects named by URL. */
#include "cli.h"

#include <getopt.h>
#include <ipcx.h>
#include <stdio.h>

static void help(FILE *f)
{
	fprintf(f, "usage: ipcx rm [--force] URL...\n"
		   "Remove objects: sysvmq:KEY, sysvsem:KEY, sysvshm:KEY (KEY decimal or 0x hex;\n"
		   "add ?id=N for an IPC_PRIVATE one), shm:/name, sem:/name, mq:/name,\n"
		   "fifo:/path, unix:/path.  A path is removed only if it is a FIFO or socket\n"
		   "(a symlink is never followed).\n\n"
		   "  --force   as root, remove another user's object too\n");
}

int cli_rm(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': flags |= IPCX_RM_FORCE; break;
		case 'h': help(stdout); return CLI_OK;
		default: return cli_usage("rm", "unknown option");
		}
	}
	if (optind == argc)
		return cli_usage("rm", "name at least one URL");
	int status = CLI_OK;
	for (int i = optind; i < argc; i++) {
		int r = ipcx_obj_remove(argv[i], flags);
		if (r < 0)
			status = cli_fail(r, "cannot remove %s", argv[i]);
	}
	return status;
}
