/* ipcx: the command-line tool.  Verbs are added by the CLI work. */
#include <ipcx.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("ipcx %s\n", ipcx_version());
		return 0;
	}
	fprintf(stderr, "usage: ipcx --version\n");
	return 2;
}
