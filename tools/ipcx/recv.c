/* ipcx recv: placeholder until the CLI work lands. */
#include "cli.h"

#include <stdio.h>

int cli_recv(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "ipcx recv: not built yet\n");
	return CLI_FAIL;
}
