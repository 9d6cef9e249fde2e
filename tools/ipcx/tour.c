/* ipcx tour: placeholder until the CLI work lands. */
#include "cli.h"

#include <stdio.h>

int cli_tour(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "ipcx tour: not built yet\n");
	return CLI_FAIL;
}
