/*
 * Signals: sending with a value (sigqueue) and receiving through signalfd, so
 * that signals are events on a descriptor rather than handlers that interrupt
 * the program anywhere.
 *
 * Two kernel facts shape this file and its documentation:
 *   - a standard signal (1..31) that is already pending is not queued again:
 *     N sends may arrive as one, with only one value;
 *   - real-time signals (SIGRTMIN..SIGRTMAX) queue, up to RLIMIT_SIGPENDING,
 *     each with its value, and are delivered in the order sent (lowest
 *     number first between different real-time signals).
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SIGS_MAX 64

struct ipcx_sigs {
	int fd;
	sigset_t set;     /* the signals of this set */
	sigset_t unblock; /* those we blocked that were not blocked before */
};

IPCX_EXPORT int ipcx_signal_send(pid_t pid, int sig, int value)
{
	if (pid <= 0)
		return ipcx__fail(-EINVAL, "pid %d: only one process can be the target", (int)pid);
	if (sig <= 0 || sig >= NSIG)
		return ipcx__fail(-EINVAL, "%d is not a signal number", sig);
	union sigval v = { .sival_int = value };
	if (sigqueue(pid, sig, v) < 0) {
		int err = errno;
		if (err == EAGAIN)
			return ipcx__fail(-EAGAIN, "process %d has too many queued signals", (int)pid);
		return ipcx__fail(-err, "sigqueue to process %d", (int)pid);
	}
	return 0;
}

static int sigs_check(const int *sigs, size_t n, sigset_t *set)
{
	if (!sigs || n == 0 || n > SIGS_MAX)
		return ipcx__fail(-EINVAL, "want 1 to %d signals, got %zu", SIGS_MAX, n);
	sigemptyset(set);
	for (size_t i = 0; i < n; i++) {
		int s = sigs[i];
		if (s <= 0 || s >= NSIG)
			return ipcx__fail(-EINVAL, "%d is not a signal number", s);
		if (s == SIGKILL || s == SIGSTOP)
			return ipcx__fail(-EINVAL, "%s cannot be caught", sigabbrev_np(s));
		sigaddset(set, s);
	}
	return 0;
}

IPCX_EXPORT int ipcx_signals_open(const int *sigs, size_t n, unsigned flags, ipcx_sigs **ret)
{
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the signal set");
	if (flags & ~IPCX_INHERIT)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	ipcx_sigs *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int r = sigs_check(sigs, n, &s->set);
	if (r < 0) {
		free(s);
		return r;
	}
	/*
	 * Block first, then make the descriptor: a signal that arrives in
	 * between stays pending and is read from the descriptor.
	 */
	sigset_t old;
	pthread_sigmask(SIG_BLOCK, &s->set, &old);
	sigemptyset(&s->unblock);
	for (int i = 1; i < NSIG; i++)
		if (sigismember(&s->set, i) == 1 && sigismember(&old, i) == 0)
			sigaddset(&s->unblock, i);
	int sfl = SFD_NONBLOCK | (flags & IPCX_INHERIT ? 0 : SFD_CLOEXEC);
	s->fd = signalfd(-1, &s->set, sfl);
	if (s->fd < 0) {
		r = ipcx__fail(-errno, "signalfd");
		pthread_sigmask(SIG_UNBLOCK, &s->unblock, NULL);
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

IPCX_EXPORT int ipcx_signals_shutdown(unsigned flags, ipcx_sigs **ret)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	return ipcx_signals_open(sigs, 3, flags, ret);
}

static int action_of(int signo)
{
	if (signo == SIGTERM || signo == SIGINT)
		return IPCX_SIG_STOP;
	if (signo == SIGHUP)
		return IPCX_SIG_RELOAD;
	return IPCX_SIG_OTHER;
}

IPCX_EXPORT int ipcx_signals_next(ipcx_sigs *s, int timeout_ms, struct ipcx_siginfo *ret)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!s || !ret)
		return ipcx__fail(-EINVAL, "no signal set or no place for the signal");
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(s->fd, &si, sizeof(si));
		if (n == (ssize_t)sizeof(si)) {
			memset(ret, 0, sizeof(*ret));
			ret->signo = (int)si.ssi_signo;
			ret->code = si.ssi_code;
			ret->pid = (pid_t)si.ssi_pid;
			ret->uid = (uid_t)si.ssi_uid;
			ret->value = si.ssi_code == SI_QUEUE ? si.ssi_int : 0;
			ret->action = action_of(ret->signo);
			return 0;
		}
		if (n >= 0)
			return ipcx__fail(-EIO, "signalfd returned %zd bytes", n);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return ipcx__fail(-errno, "signalfd read");
		if (timeout_ms == 0)
			return -EAGAIN;
		int r = ipcx__wait_fd(s->fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

IPCX_EXPORT int ipcx_signals_fileno(ipcx_sigs *s)
{
	return s ? s->fd : ipcx__fail(-EINVAL, "no signal set");
}

IPCX_EXPORT int ipcx_signals_close(ipcx_sigs *s)
{
	if (!s)
		return 0;
	/*
	 * Signals still pending would run their default action (terminate, for
	 * SIGTERM) the moment they are unblocked: they were meant for this set,
	 * so take them first.  Only the ones this set blocked are unblocked.
	 */
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(s->fd, &si, sizeof(si));
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
	}
	pthread_sigmask(SIG_UNBLOCK, &s->unblock, NULL);
	int r = close(s->fd) < 0 && errno != EINTR ? -errno : 0;
	free(s);
	return r;
}
