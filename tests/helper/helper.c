/*
 * ipcx_test_helper: a peer the tests exec, to prove that channels cross
 * exec().  Usage: ipcx_test_helper echo URL COUNT — dial URL, receive COUNT
 * messages and send each one back; exit 0 on success.
 * ipcx_test_helper event-post FD N — adopt the inherited eventfd FD and post
 * N to it.
 */
#include "raw.h"

#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
	int raw = helper_raw(argc, argv);
	if (raw != 2)
		return raw;
	if (argc == 4 && strcmp(argv[1], "echo") == 0)
		return echo(argv[2], strtol(argv[3], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "event-post") == 0)
		return event_post((int)strtol(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
	fprintf(stderr, "usage: ipcx_test_helper echo URL COUNT | event-post FD N\n");
	return 2;
}
