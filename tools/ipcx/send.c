/* ipcx send: placeholder until the CLI work lands. */
#include "cli.h"

#include <stdio.h>

int cli_send(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "ipcx send: not built yet\n");
	return CLI_FAIL;
}
