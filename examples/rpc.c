/*
 * Request/reply on shared memory: the parent serves, a child calls.  Ten
 * calls in flight, answered as they come, then one that the server refuses.
 *
 *   ./example_rpc
 */
#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int serve(ipcx_rpc_server *s)
{
	struct ipcx_rpc_req *q;
	while (ipcx_rpc_next(s, 5000, &q) == 0) {
		if (q->len == 4 && !memcmp(q->data, "quit", 4)) {
			ipcx_rpc_reply(q, "bye", 3);
			break;
		}
		if (q->len == 0) {
			ipcx_rpc_fail(q, -EINVAL, "an empty request");
			continue;
		}
		char in[32], out[64];
		snprintf(in, sizeof(in), "%.*s", (int)q->len, (const char *)q->data);
		long v = strtol(in, NULL, 10);
		int n = snprintf(out, sizeof(out), "%ld squared is %ld", v, v * v);
		ipcx_rpc_reply(q, out, (size_t)n); /* any time, in any order, from any thread */
	}
	return ipcx_rpc_server_close(s) < 0;
}

/* The child: ten calls in flight, answered as they come, then one refused. */
static int call(const char *url)
{
	ipcx_rpc_client *c;
	int r = ipcx_rpc_dial(url, 0, &c);
	if (r < 0) {
		fprintf(stderr, "dial %s: %s (%s)\n", url, ipcx_strerror(r), ipcx_errdetail());
		return 1;
	}
	for (int i = 1; i <= 10; i++) {
		char req[16];
		uint64_t id;
		int n = snprintf(req, sizeof(req), "%d", i);
		ipcx_rpc_start(c, req, (size_t)n, 1000, 0, &id);
	}
	char buf[64];
	struct ipcx_rpc_result res;
	while (ipcx_rpc_wait(c, 1000, buf, sizeof(buf), &res) == 0)
		printf("call %016llx: %.*s\n", (unsigned long long)res.id,
		       res.status > 0 ? (int)res.status : 0, buf);
	ssize_t n = ipcx_rpc_call(c, "", 0, buf, sizeof(buf), 1000);
	printf("empty call: %s (%s)\n", ipcx_strerror((int)n), ipcx_errdetail());
	ipcx_rpc_call(c, "quit", 4, buf, sizeof(buf), 1000);
	ipcx_rpc_client_close(c);
	fflush(stdout); /* _exit below does not */
	return 0;
}

int main(void)
{
	char url[64];
	snprintf(url, sizeof(url), "shm:/example-rpc-%d", (int)getpid());
	ipcx_rpc_server *s;
	int r = ipcx_rpc_serve(url, 0, &s); /* before the fork: the client finds it there */
	if (r < 0) {
		fprintf(stderr, "serve %s: %s (%s)\n", url, ipcx_strerror(r), ipcx_errdetail());
		return 1;
	}
	fflush(stdout);
	pid_t pid = fork(); /* the child opens its own: a ring channel is not shared across fork */
	if (pid == 0)
		_exit(call(url));
	int failed = pid < 0 || serve(s);
	waitpid(pid, NULL, 0);
	return failed;
}
