/*
 * ipcx_test_helper: a peer the tests exec, to prove that channels cross
 * exec().  Usage: ipcx_test_helper echo URL COUNT — dial URL, receive COUNT
 * messages and send each one back; exit 0 on success.
 * ipcx_test_helper event-post FD N — adopt the inherited eventfd FD and post
 * N to it.
 * ipcx_test_helper pool-worker — a pool worker started by exec: answer each
 * task with its bytes and its pid ("TASK@PID"); exit 0 when asked to stop.
 */
#include "raw.h"

#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int echo(const char *url, long count)
{
	ipcx_chan *c;
	int r = ipcx_dial(url, 0, &c);
	if (r < 0) {
		fprintf(stderr, "helper: dial %s: %s %s\n", url, ipcx_strerror(r), ipcx_errdetail());
		return 1;
	}
	size_t cap = ipcx_max_msg(c);
	char *buf = malloc(cap ? cap : 1);
	for (long i = 0; buf && i < count; i++) {
		ssize_t n = ipcx_recv(c, buf, cap, 60000);
		if (n < 0 || ipcx_send(c, buf, (size_t)n, 60000) != n) {
			free(buf);
			ipcx_close(c);
			return 1;
		}
	}
	free(buf);
	return ipcx_close(c) == 0 ? 0 : 1;
}

static int event_post(int fd, unsigned long long n)
{
	ipcx_event *e = NULL;
	int r = ipcx_event_adopt(fd, 0, &e);
	if (r == 0)
		r = ipcx_event_post(e, n);
	if (r < 0)
		fprintf(stderr, "helper: event %d: %s %s\n", fd, ipcx_strerror(r), ipcx_errdetail());
	ipcx_event_close(e);
	return r < 0;
}

static int pool_worker(void)
{
	ipcx_worker *w;
	int r = ipcx_worker_open(0, &w);
	if (r < 0) {
		fprintf(stderr, "helper: ipcx_worker_open: %s %s\n", ipcx_strerror(r), ipcx_errdetail());
		return 1;
	}
	char task[4096], res[4200];
	ssize_t n;
	while ((n = ipcx_worker_next(w, task, sizeof(task), -1)) >= 0) {
		int len = snprintf(res, sizeof(res), "%.*s@%d", (int)n, task, (int)getpid());
		if (ipcx_worker_reply(w, res, (size_t)len) < 0)
			break;
	}
	ipcx_worker_close(w);
	return n == -ESHUTDOWN ? 0 : 1;
}

int main(int argc, char **argv)
{
	int raw = helper_raw(argc, argv);
	if (raw != 2)
		return raw;
	if (argc == 4 && strcmp(argv[1], "echo") == 0)
		return echo(argv[2], strtol(argv[3], NULL, 10));
	if (argc == 2 && strcmp(argv[1], "pool-worker") == 0)
		return pool_worker();
	if (argc == 4 && strcmp(argv[1], "event-post") == 0)
		return event_post((int)strtol(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
	fprintf(stderr, "usage: ipcx_test_helper echo URL COUNT | event-post FD N | pool-worker\n");
	return 2;
}
