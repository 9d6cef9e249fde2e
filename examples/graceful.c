/*
 * A worker that stops cleanly on SIGTERM or Ctrl-C and reloads on SIGHUP,
 * with its signals and its work queue in one poll() loop.
 *
 *   ./example_graceful &  kill -HUP $!;  kill -TERM $!
 */
#include <ipcx.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	ipcx_sigs *sigs;   /* SIGTERM, SIGINT, SIGHUP as events */
	ipcx_event *work;  /* other threads or processes post work here */
	int r = ipcx_signals_shutdown(0, &sigs);
	if (r < 0 || (r = ipcx_event_open(0, 0, &work)) < 0) {
		fprintf(stderr, "setup: %s\n", ipcx_strerror(r));
		return 1;
	}
	ipcx_event_post(work, 1); /* something to do at start */
	printf("pid %d: send HUP to reload, TERM or Ctrl-C to stop\n", (int)getpid());
	fflush(stdout);
	for (int running = 1; running;) {
		struct pollfd p[2] = { { .fd = ipcx_signals_fileno(sigs), .events = POLLIN },
				       { .fd = ipcx_event_fileno(work), .events = POLLIN } };
		if (poll(p, 2, -1) < 0)
			continue;
		struct ipcx_siginfo si;
		while (ipcx_signals_next(sigs, 0, &si) == 0) {
			if (si.action == IPCX_SIG_RELOAD)
				printf("reloading (asked by pid %d)\n", (int)si.pid);
			else if (si.action == IPCX_SIG_STOP)
				running = 0;
		}
		uint64_t n;
		if (ipcx_event_wait(work, 0, &n) == 0)
			printf("doing %llu job(s)\n", (unsigned long long)n);
		fflush(stdout);
	}
	printf("stopping cleanly\n");
	ipcx_event_close(work);
	ipcx_signals_close(sigs);
	return 0;
}
