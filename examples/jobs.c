/*
 * Producers and one consumer of jobs.  The program is the same for a
 * shared-memory ring on one host and for a NATS cluster: only the URL
 * differs (docs/nats.md).
 *
 *   ./example_jobs shm:/jobs
 *   ./example_jobs 'nats://10.0.0.1:4222,10.0.0.2:4222,10.0.0.3:4222/jobs'
 */
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PRODUCERS = 4, JOBS = 1000 };

/* A producer: wait for the consumer to listen, then send its jobs. */
static int produce(const char *url, int id, int ready)
{
	char go;
	ipcx_chan *c;
	if (read(ready, &go, 1) != 1 || ipcx_dial(url, 0, &c) < 0) {
		fprintf(stderr, "producer %d: %s\n", id, ipcx_errdetail());
		return 1;
	}
	for (int i = 0; i < JOBS; i++) {
		char job[64];
		int n = snprintf(job, sizeof(job), "job %d from %d", i, id);
		if (ipcx_send(c, job, (size_t)n, 10000) != n) {
			fprintf(stderr, "producer %d: %s\n", id, ipcx_errdetail());
			return 1;
		}
	}
	return ipcx_close(c) < 0; /* close waits until every job is delivered */
}

int main(int argc, char **argv)
{
	const char *url = argc > 1 ? argv[1] : "shm:/ipcx-jobs";
	int ready[2];
	if (pipe(ready) < 0)
		return 1;
	/* Fork before opening any channel: a NATS client's threads are not
	 * copied into a child (docs/nats.md, "fork"). */
	for (int id = 0; id < PRODUCERS; id++)
		if (fork() == 0)
			_exit(produce(url, id, ready[0]));
	ipcx_chan *q;
	int r = ipcx_listen(url, 0, &q);
	if (r < 0)
		fprintf(stderr, "listen %s: %s (%s)\n", url, ipcx_strerror(r), ipcx_errdetail());
	else if (write(ready[1], "gggg", PRODUCERS) != PRODUCERS)
		r = -1;
	close(ready[1]); /* a producer that did not get "go" sees end of file */
	long done = 0, sum = 0;
	for (; r >= 0 && done < PRODUCERS * JOBS; done++) {
		char job[64];
		ssize_t n = ipcx_recv(q, job, sizeof(job) - 1, 10000);
		if (n < 0) {
			fprintf(stderr, "recv: %s (%s)\n", ipcx_strerror((int)n), ipcx_errdetail());
			break;
		}
		job[n] = '\0';
		sum += strtol(job + 4, NULL, 10);
	}
	int failed = 0;
	for (int id = 0; id < PRODUCERS; id++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	printf("%d producers, %ld of %d jobs done, job numbers add up to %ld\n", PRODUCERS - failed,
	       done, PRODUCERS * JOBS, sum);
	ipcx_close(q);
	return done == PRODUCERS * JOBS && !failed ? 0 : 1;
}
