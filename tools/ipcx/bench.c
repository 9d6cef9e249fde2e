/*
 * ipcx bench: every mechanism measured side by side.  The benchmark lives in
 * bench/ (bench/driver.c); this verb only hands over to it.
 */
#include "cli.h"
#include "driver.h"

int cli_bench(int argc, char **argv)
{
	return bench_main(argc, argv);
}
