/*
 * main() of the peer programs (ipcx-bench-zmq, -nng, -iox, -spdlog).  `ipcx bench`
 * runs one case per invocation:
 *
 *   ipcx-bench-LIB --transport T --kind lat|thr|ops --size N --count N
 *                  --warmup N --cpus A,B --dir DIR --prefix P --timeout MS --seq N
 *                  [--subs N]
 *
 * With --subs N the case is a fan-out case (bench/fanout.c): one publisher
 * and N subscribers of the transport's fan-out backend.
 * and reads back one line, "result ..." (bh_result_print).  SIGINT and
 * SIGTERM stop the case; the harness kills both sides and this program
 * removes what they may have left in DIR before it exits.
 */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct bh_ops *peer_find(const struct peer_row *rows, size_t n, const char *transport)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(transport, rows[i].transport))
			return rows[i].ops;
	return NULL;
}

void peer_ipc_url(const struct bh_params *p, const char *tag, char *url, size_t cap)
{
	char path[256];
	bh_path(p, tag, path, sizeof(path));
	snprintf(url, cap, "ipc://%s", path);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: %s --transport T --kind lat|thr|ops --size N --count N --warmup N "
			"--cpus A,B --dir DIR --prefix P --timeout MS | --version\n"
			"(run by 'ipcx bench', not by hand)\n", program_invocation_short_name);
	return 2;
}

int main(int argc, char **argv)
{
	struct bh_params p;
	memset(&p, 0, sizeof(p));
	p.cpu[0] = p.cpu[1] = -1;
	p.timeout_ms = 60000;
	const char *transport = NULL;
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("%s\n", peer_version());
		return 0;
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--transport"))
			transport = v;
		else if (!strcmp(k, "--kind"))
			p.kind = !strcmp(v, "thr") ? BH_THR : !strcmp(v, "ops") ? BH_OPS : BH_LAT;
		else if (!strcmp(k, "--size"))
			p.size = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--count"))
			p.count = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--warmup"))
			p.warmup = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--cpus"))
			sscanf(v, "%d,%d", &p.cpu[0], &p.cpu[1]);
		else if (!strcmp(k, "--dir"))
			snprintf(p.dir, sizeof(p.dir), "%s", v);
		else if (!strcmp(k, "--prefix"))
			snprintf(p.prefix, sizeof(p.prefix), "%s", v);
		else if (!strcmp(k, "--timeout"))
			p.timeout_ms = atoi(v);
		else if (!strcmp(k, "--seq"))
			p.seq = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(k, "--subs"))
			p.subs = atoi(v);
		else
			return usage();
	}
	const struct bh_ops *ops = transport && !p.subs ? peer_ops(transport) : NULL;
	const struct bh_fan_ops *fan = transport && p.subs ? peer_fan_ops(transport) : NULL;
	if ((!ops && !fan) || !p.dir[0] || !p.prefix[0] || !p.count)
		return usage();
	/* The result line goes to the real stdout; a library that logs to stdout
	 * (iceoryx does) writes to /dev/null instead. */
	fflush(stdout);
	int out = dup(1);
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (out < 0 || devnull < 0 || dup2(devnull, 1) < 0)
		return 1;
	close(devnull);
	FILE *res = fdopen(out, "w");
	if (!res)
		return 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct bh_result r;
	if (fan)
		bh_fan_run(fan, &p, &stop, &r);
	else
		bh_run(ops, &p, &stop, &r);
	if (r.status != BH_OK || stop)
		bh_sweep(&p);
	bh_result_print(&r, res);
	fclose(res);
	return stop ? 130 : 0;
}
