/*
 * An nginx-style prefork server on ipcx: the master makes one listening TCP
 * socket, then a pool of N forked workers that all accept on it (the kernel
 * hands each connection to one).  SIGHUP replaces the workers one by one (a
 * new one is up before an old one leaves, and the old one finishes its
 * connection); SIGTERM stops them gracefully; workers die with the master.
 *
 * The protocol: each line a client sends comes back as "PID: LINE", where
 * PID is the worker's; "quit" closes the connection.
 *
 *   prefork_server [PORT [WORKERS]]      (port 0: the system picks one)
 *   printf 'hi\nquit\n' | nc 127.0.0.1 PORT
 */
#include <ipcx.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One connection: answer lines until "quit", the client's end, or a stop. */
static void talk(ipcx_chan *c, ipcx_worker *w)
{
	struct pollfd pf[2] = { { ipcx_fileno(c), POLLIN, 0 }, { ipcx_worker_fileno(w), POLLIN, 0 } };
	char line[1024], reply[1100];
	while (poll(pf, 2, 30000) > 0) {
		if (pf[1].revents && ipcx_worker_stopping(w))
			return; /* asked to stop: between two lines, the connection may go */
		ssize_t n = ipcx_recv(c, line, sizeof(line), 0);
		if (n == -EAGAIN)
			continue;
		if (n < 0 || (n == 4 && !memcmp(line, "quit", 4)))
			return;
		int len = snprintf(reply, sizeof(reply), "%d: %.*s", (int)getpid(), (int)n, line);
		if (ipcx_send(c, reply, (size_t)len, 5000) < 0)
			return;
	}
}

/* A worker: accept on the master's socket until the master says stop. */
static int worker(ipcx_worker *w, void *arg)
{
	ipcx_chan *listener = arg; /* inherited across fork, shared by all */
	struct pollfd pf[2] = { { ipcx_fileno(listener), POLLIN, 0 },
				{ ipcx_worker_fileno(w), POLLIN, 0 } };
	while (!ipcx_worker_stopping(w)) {
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			return 1;
		ipcx_chan *c;
		/* Another worker may have taken it first: -EAGAIN, look again. */
		if ((pf[0].revents & POLLIN) && ipcx_accept(listener, 0, &c) == 0) {
			talk(c, w);
			ipcx_close(c);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 0;
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 4;
	char url[128], addr[128];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d?framing=lines", port);
	ipcx_chan *listener;
	int r = ipcx_listen(url, IPCX_ACCEPT, &listener);
	if (r < 0) {
		fprintf(stderr, "prefork: listen %s: %s (%s)\n", url, ipcx_strerror(r), ipcx_errdetail());
		return 1;
	}
	struct ipcx_pool_opts o = {
		.workers = n, .fn = worker, .arg = listener,
		.flags = IPCX_POOL_SIGNALS, /* SIGTERM, SIGINT: stop; SIGHUP: reload */
		.grace_ms = 10000,          /* time for open connections to finish */
	};
	ipcx_pool *pool;
	if ((r = ipcx_pool_start(&o, &pool)) < 0) {
		fprintf(stderr, "prefork: %s (%s)\n", ipcx_strerror(r), ipcx_errdetail());
		return 1;
	}
	ipcx_addr(listener, addr, sizeof(addr));
	printf("%s %u workers, master %d\n", addr, n, (int)getpid());
	fflush(stdout);
	/* Supervise: restarts, reloads; returns once stopped and every worker gone. */
	r = ipcx_pool_run(pool, -1);
	if (r < 0)
		fprintf(stderr, "prefork: %s (%s)\n", ipcx_strerror(r), ipcx_errdetail());
	ipcx_pool_close(pool);
	ipcx_close(listener);
	return r < 0;
}
