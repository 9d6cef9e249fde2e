/*
 * Pieces shared by the verbs that run until stopped (recv, serve): the stop
 * signals as events on a signalfd, dying of the signal that stopped us
 * once everything is closed, and the --ready-fd handshake.
 */
#include "cli.h"

#include <errno.h>
#include <ipcx.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* SIGINT, SIGTERM, SIGHUP, except those our parent asked us to ignore. */
static void stop_signals(sigset_t *set)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;
		if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			continue;
		sigaddset(set, sigs[i]);
	}
}

int cli_stop_open(sigset_t *old)
{
	return cli_signals_open(NULL, 0, old);
}

int cli_signals_open(const int *extra, size_t n, sigset_t *old)
{
	sigset_t stop;
	stop_signals(&stop);
	for (size_t i = 0; i < n; i++)
		sigaddset(&stop, extra[i]);
	if (sigprocmask(SIG_BLOCK, &stop, old) < 0)
		return cli_fail(-errno, "cannot block signals"), -1;
	int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		cli_fail(-errno, "cannot make a signalfd");
		sigprocmask(SIG_SETMASK, old, NULL);
	}
	return sfd;
}

int cli_stop_take(int sfd)
{
	struct signalfd_siginfo si;
	ssize_t r = read(sfd, &si, sizeof(si));
	return r == (ssize_t)sizeof(si) ? (int)si.ssi_signo : 0;
}

int cli_reraise(int sig, const sigset_t *old)
{
	signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, old, NULL);
	raise(sig);
	return 128 + sig; /* only if the signal did not end us */
}

int cli_announce(const char *addr, int fd)
{
	char line[1100];
	int n = snprintf(line, sizeof(line), "%s\n", addr);
	if (n < 0 || n >= (int)sizeof(line))
		return cli_fail(-ENAMETOOLONG, "cannot tell the address %s", addr);
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return cli_fail(-errno, "cannot write to descriptor %d (--ready-fd)", fd);
		off += (int)w;
	}
	if (fd > 2)
		close(fd);
	return CLI_OK;
}
