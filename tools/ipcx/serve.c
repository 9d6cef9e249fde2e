/*
 * ipcx serve [-j N] [--join] [--ready-fd FD] URL -- CMD [ARGS...]
 * ipcx serve --echo URL
 *
 * An RPC server, like inetd or socat's EXEC for request/reply: each request
 * runs CMD with the request on its standard input, and what CMD writes on
 * its standard output is the reply; a CMD that exits with a non-zero status
 * (or is killed) is an error reply.  One event loop: the server's
 * descriptor, the stop signals, and each running CMD's output pipe and
 * pidfd.  On SIGINT, SIGTERM or SIGHUP it stops: the requests still running
 * are failed (their callers get -ECONNRESET at once), their CMDs are ended,
 * and what the server created is removed.
 */
#include "verbloop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ipcx.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_JOBS   256
#define OUT_LIMIT  ((size_t)64 << 20) /* more output than this is an error reply */
#define GRACE_MS   1000               /* SIGTERM to SIGKILL for CMDs at stop */

struct serve_args {
	const char *url;
	char **cmd;      /* NULL with --echo */
	long jobs;
	bool echo, join;
	long ready_fd;
};

/* A running CMD and the request it answers. */
struct job {
	pid_t pid;
	int pidfd, out;  /* out: the read end of its standard output, -1 at EOF */
	struct ipcx_rpc_req *req;
	char *buf;
	size_t len, cap;
	bool too_much;   /* it wrote more than OUT_LIMIT: killed */
};

static void help(void)
{
	printf("usage: ipcx serve [-j N] [--join] [--ready-fd FD] URL -- CMD [ARGS...]\n"
	       "       ipcx serve --echo [--ready-fd FD] URL\n"
	       "\n"
	       "Serve requests on URL (unix:, unixpacket:, tcp://, shm:, sysvshm:, nats://):\n"
	       "each request runs CMD with the request on its standard input; its standard\n"
	       "output is the reply.  A CMD that exits with a non-zero status, or is killed,\n"
	       "is an error reply (the caller's 'ipcx call' says which and exits 1).  Runs\n"
	       "until SIGINT, SIGTERM or SIGHUP, then removes what it created.  On nats://,\n"
	       "servers with the same ?queue=GROUP share the calls.\n"
	       "\n"
	       "  -j, --jobs N      run up to N CMDs at once (default 1; at most %d)\n"
	       "      --echo        answer every request with itself (no CMD)\n"
	       "      --join        shm:, sysvshm:: serve beside the server already there, as\n"
	       "                    one more worker (each request goes to one of them)\n"
	       "      --ready-fd FD once serving, write the address (with the port the system\n"
	       "                    chose for :0) and a newline to FD, then close FD\n"
	       "  -h, --help        show this help\n"
	       "\n"
	       "examples:\n"
	       "  ipcx serve unix:/tmp/upper.sock -- tr a-z A-Z\n"
	       "  ipcx serve -j 4 shm:/wc -- wc -w\n"
	       "  ipcx serve --echo tcp://127.0.0.1:7000\n", MAX_JOBS);
}

static int own_opt(int ch, const char *arg, void *arg_)
{
	struct serve_args *a = arg_;
	switch (ch) {
	case 'j':
		if (!cli_parse_long(arg, 1, MAX_JOBS, &a->jobs))
			return cli_usage("serve", "N must be a whole number from 1 to %d, not '%s'",
					 MAX_JOBS, arg);
		return CLI_OK;
	case 'e':
		a->echo = true;
		return CLI_OK;
	case 'J':
		a->join = true;
		return CLI_OK;
	default:
		return VERB_UNKNOWN;
	}
}

static int parse_args(int argc, char **argv, struct serve_args *a)
{
	static const struct option opts[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "echo", no_argument, NULL, 'e' },
		{ "join", no_argument, NULL, 'J' },
		VERB_OPT_READY_FD,
		VERB_OPTS_END,
	};
	*a = (struct serve_args){ .jobs = 1, .ready_fd = -1 };
	/* '+': stop at the first operand, so that CMD's own options stay its own. */
	int rc = verb_getopt(argc, argv, &(struct verb_opts){
		.verb = "serve", .shortopts = "+:j:h", .longopts = opts, .help = help,
		.ready_fd = &a->ready_fd, .url = &a->url, .own = own_opt, .arg = a });
	if (rc != CLI_OK)
		return rc;
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (a->echo && optind < argc)
		return cli_usage("serve", "--echo answers by itself: give no CMD");
	if (!a->echo && optind >= argc)
		return cli_usage("serve", "missing CMD (after '--'), or --echo");
	a->cmd = a->echo ? NULL : argv + optind;
	return CLI_OK;
}

/* ---- running CMD ---------------------------------------------------------------- */

/* The request as a memory file at offset 0: CMD's standard input. */
static int request_file(const struct ipcx_rpc_req *q)
{
	int fd = memfd_create("ipcx-serve-request", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	const char *p = q->data;
	for (size_t off = 0; off < q->len;) {
		ssize_t w = write(fd, p + off, q->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		off += (size_t)w;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int start_job(struct job *j, char **cmd, struct ipcx_rpc_req *q, const sigset_t *mask)
{
	int in = request_file(q), out[2];
	if (in < 0)
		return in;
	if (pipe2(out, O_CLOEXEC) < 0) {
		int e = -errno;
		close(in);
		return e;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/*
		 * CMD gets the signal mask a shell would give it, and a process
		 * group of its own, so that stopping ends whatever it started.
		 */
		sigprocmask(SIG_SETMASK, mask, NULL);
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(in, 0) < 0 || dup2(out[1], 1) < 0)
			_exit(126);
		execvp(cmd[0], cmd);
		fprintf(stderr, "ipcx serve: cannot run %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	int e = pid < 0 ? -errno : 0;
	close(in);
	close(out[1]);
	if (e) {
		close(out[0]);
		return e;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) { /* we could not tell when it ends: do not run it */
		e = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(out[0]);
		return e;
	}
	*j = (struct job){ .pid = pid, .pidfd = pidfd, .out = out[0], .req = q };
	fcntl(j->out, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Take what CMD wrote so far; at EOF the pipe is closed. */
static void read_output(struct job *j)
{
	for (;;) {
		if (j->len == j->cap) {
			size_t cap = j->cap ? j->cap * 2 : 4096;
			char *b = cap <= OUT_LIMIT * 2 ? realloc(j->buf, cap) : NULL;
			if (!b) {
				j->too_much = true;
				kill(j->pid, SIGKILL);
				close(j->out);
				j->out = -1;
				return;
			}
			j->buf = b;
			j->cap = cap;
		}
		ssize_t n = read(j->out, j->buf + j->len, j->cap - j->len);
		if (n > 0) {
			j->len += (size_t)n;
			if (j->len > OUT_LIMIT) {
				j->too_much = true;
				kill(j->pid, SIGKILL);
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		close(j->out); /* EOF, or an error: nothing more to read */
		j->out = -1;
		return;
	}
}

/* CMD has exited: answer its request from its output and status. */
static void finish_job(struct job *j, const char *cmd)
{
	if (j->out >= 0)
		read_output(j); /* what is there; a background child may hold the pipe */
	int st = 0;
	while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
		;
	char why[160];
	if (j->too_much) {
		snprintf(why, sizeof(why), "%s wrote more than %zu bytes", cmd, OUT_LIMIT);
		ipcx_rpc_fail(j->req, -EMSGSIZE, why);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		if (ipcx_rpc_reply(j->req, j->buf, j->len) == -EMSGSIZE)
			fprintf(stderr, "ipcx serve: %s wrote %zu bytes, more than a reply on this "
					"URL takes\n", cmd, j->len);
	} else {
		if (WIFEXITED(st))
			snprintf(why, sizeof(why), "%s exited with status %d", cmd, WEXITSTATUS(st));
		else
			snprintf(why, sizeof(why), "%s was killed by signal %d (%s)", cmd,
				 WTERMSIG(st), strsignal(WTERMSIG(st)));
		ipcx_rpc_fail(j->req, -EREMOTEIO, why);
	}
	if (j->out >= 0)
		close(j->out);
	if (j->pidfd >= 0)
		close(j->pidfd);
	free(j->buf);
	*j = (struct job){ .pid = 0, .pidfd = -1, .out = -1 };
}

/*
 * Stopping: every CMD still running, with what it started, gets SIGTERM,
 * then SIGKILL after a grace.
 */
static void end_jobs(struct job *jobs, long n)
{
	for (long i = 0; i < n; i++)
		if (jobs[i].pid > 0)
			kill(-jobs[i].pid, SIGTERM);
	for (long i = 0; i < n; i++) {
		if (jobs[i].pid <= 0)
			continue;
		struct pollfd p = { jobs[i].pidfd, POLLIN, 0 };
		if (poll(&p, 1, GRACE_MS) <= 0)
			kill(jobs[i].pid, SIGKILL);
		kill(-jobs[i].pid, SIGKILL); /* what it left running in its group */
		waitpid(jobs[i].pid, NULL, 0);
		if (jobs[i].out >= 0)
			close(jobs[i].out);
		if (jobs[i].pidfd >= 0)
			close(jobs[i].pidfd);
		free(jobs[i].buf);
		jobs[i].pid = 0;
	}
}

/* ---- the loop ------------------------------------------------------------------- */

struct loop {
	const struct serve_args *a;
	ipcx_rpc_server *s;
	int sfd;
	struct job jobs[MAX_JOBS];
	long running;
	const sigset_t *mask;
};

/* Take requests while there are free jobs (or, with --echo, all that wait). */
static int take_requests(struct loop *l)
{
	while (l->a->echo || l->running < l->a->jobs) {
		struct ipcx_rpc_req *q;
		int r = ipcx_rpc_next(l->s, 0, &q);
		if (r == -EAGAIN || r == -ETIMEDOUT)
			return CLI_OK;
		if (r < 0)
			return cli_fail(r, "cannot take requests on %s", l->a->url);
		if (l->a->echo) {
			ipcx_rpc_reply(q, q->data, q->len);
			continue;
		}
		long k = 0;
		while (l->jobs[k].pid > 0)
			k++;
		r = start_job(&l->jobs[k], l->a->cmd, q, l->mask);
		if (r < 0) {
			char why[96];
			snprintf(why, sizeof(why), "cannot run %s: %s", l->a->cmd[0], strerror(-r));
			ipcx_rpc_fail(q, r, why);
			continue;
		}
		l->running++;
	}
	return CLI_OK;
}

/* One round of poll; *sig set when a stop signal came. */
static int serve_once(struct loop *l, int *sig)
{
	struct pollfd p[2 + 2 * MAX_JOBS];
	struct job *who[2 + 2 * MAX_JOBS];
	int n = 0;
	p[n++] = (struct pollfd){ l->sfd, POLLIN, 0 };
	bool room = l->a->echo || l->running < l->a->jobs;
	p[n++] = (struct pollfd){ room ? ipcx_rpc_server_fileno(l->s) : -1, POLLIN, 0 };
	for (long i = 0; i < l->a->jobs && !l->a->echo; i++) {
		struct job *j = &l->jobs[i];
		if (j->pid <= 0)
			continue;
		if (j->out >= 0)
			who[n] = j, p[n++] = (struct pollfd){ j->out, POLLIN, 0 };
		who[n] = j, p[n++] = (struct pollfd){ j->pidfd, POLLIN, 0 };
	}
	if (poll(p, (nfds_t)n, -1) < 0)
		return errno == EINTR ? CLI_OK : cli_fail(-errno, "poll");
	if ((p[0].revents & POLLIN) && (*sig = cli_stop_take(l->sfd)) > 0)
		return CLI_OK;
	/* Output first, then exits: finish_job takes what is left of the output. */
	for (int i = 2; i < n; i++)
		if (p[i].revents && p[i].fd == who[i]->out)
			read_output(who[i]);
	for (int i = 2; i < n; i++)
		if (p[i].revents && p[i].fd == who[i]->pidfd) {
			finish_job(who[i], l->a->cmd[0]);
			l->running--;
		}
	return p[1].revents ? take_requests(l) : CLI_OK;
}

int cli_serve(int argc, char **argv)
{
	struct serve_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	struct verb_stop st;
	if (verb_stop_open(&st, NULL, 0) != CLI_OK)
		return CLI_FAIL;
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return verb_stop_close(&st, cli_fail(-ENOMEM, "out of memory"));
	l->a = &a;
	l->sfd = st.sfd;
	l->mask = &st.old;
	for (int i = 0; i < MAX_JOBS; i++)
		l->jobs[i] = (struct job){ .pidfd = -1, .out = -1 };
	int r = ipcx_rpc_serve(a.url, a.join ? IPCX_RPC_JOIN : 0, &l->s);
	if (r < 0) {
		free(l);
		return verb_stop_close(&st, cli_fail(r, "cannot serve %s", a.url));
	}
	char addr[1024];
	if (a.ready_fd >= 0) {
		if (ipcx_rpc_server_addr(l->s, addr, sizeof(addr)) < 0)
			snprintf(addr, sizeof(addr), "%s", a.url);
		rc = cli_announce(addr, (int)a.ready_fd);
	}
	while (rc == CLI_OK && !st.sig)
		rc = serve_once(l, &st.sig);
	/* Close first: the callers of running CMDs learn at once (-ECONNRESET). */
	r = ipcx_rpc_server_close(l->s);
	end_jobs(l->jobs, a.jobs);
	if (r < 0 && rc == CLI_OK && !st.sig)
		rc = cli_fail(r, "cannot close %s", a.url);
	free(l);
	return verb_stop_close(&st, rc);
}
