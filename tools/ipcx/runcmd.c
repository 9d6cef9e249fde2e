/*
 * Running a command the way `ipcx lock` and `ipcx slot` do: the command is a
 * child that gets the caller's original signal mask; SIGTERM, SIGINT, SIGHUP
 * and SIGQUIT sent to ipcx are passed on to it; ipcx exits with its status.
 */
#include "cli.h"

#include <errno.h>
#include <ipcx.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A signal set left open at exit on purpose (see cli_run_command). */
static ipcx_sigs *left_open;

static void run_child(char **cmd, const sigset_t *orig, void (*prep)(void *), void *arg)
{
	sigprocmask(SIG_SETMASK, orig, NULL);
	if (prep)
		prep(arg);
	execvp(cmd[0], cmd);
	int err = errno;
	char esc[1024];
	fprintf(stderr, "ipcx: cannot run %s: %s\n", cli_escape(cmd[0], esc, sizeof(esc)),
		strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}

/* Forward signals to the child until it exits; return its status. */
static int supervise(pid_t pid, ipcx_sigs *sigs)
{
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (w < 0 && errno != EINTR)
			return cli_fail(-errno, "waiting for the command");
		struct ipcx_siginfo si;
		int r = ipcx_signals_next(sigs, -1, &si);
		if (r < 0)
			return cli_fail(r, "waiting for the command");
		if (si.signo != SIGCHLD)
			kill(pid, si.signo);
	}
}

int cli_run_command(char **cmd, const sigset_t *orig, void (*prep)(void *), void *arg)
{
	/*
	 * A SIGCHLD ignored by whoever started us would never reach the set
	 * (the kernel discards ignored signals) and we would wait forever.
	 */
	signal(SIGCHLD, SIG_DFL);
	/* Block these before the child exists, so none is missed. */
	static const int fwd[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT };
	ipcx_sigs *sigs;
	int r = ipcx_signals_open(fwd, sizeof(fwd) / sizeof(fwd[0]), 0, &sigs);
	if (r < 0)
		return cli_fail(r, "cannot watch signals");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		r = -errno;
		ipcx_signals_close(sigs);
		return cli_fail(r, "cannot start %s", cmd[0]);
	}
	if (pid == 0)
		run_child(cmd, orig, prep, arg);
	int status = supervise(pid, sigs);
	/*
	 * Not ipcx_signals_close(): unblocking would let a late SIGTERM kill
	 * ipcx and change the exit status.  ipcx exits now; the set stays
	 * reachable from here, for leak checkers.
	 */
	left_open = sigs;
	return status;
}
