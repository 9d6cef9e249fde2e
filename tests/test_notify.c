/*
 * Notifications: event counters (eventfd), descriptor passing, and signals
 * (sigqueue values, signalfd, the shutdown helper, queueing and merging).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "tsupport.h"

/* ---- eventfd -------------------------------------------------------------- */

Test(event, counter_takes_the_whole_count)
{
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(2, 0, &e), 0);
	cr_assert_eq(ipcx_event_post(e, 3), 0);
	cr_assert_eq(ipcx_event_post(e, 4), 0);
	uint64_t v = 0;
	cr_assert_eq(ipcx_event_wait(e, 0, &v), 0);
	cr_expect_eq(v, 9);
	v = 12345;
	cr_expect_eq(ipcx_event_wait(e, 0, &v), -EAGAIN);
	cr_expect_eq(v, 12345, "output untouched on failure");
	ipcx_event_close(e);
}

Test(event, semaphore_takes_one)
{
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(0, IPCX_EVENT_SEMAPHORE, &e), 0);
	cr_assert_eq(ipcx_event_post(e, 3), 0);
	for (int i = 0; i < 3; i++) {
		uint64_t v = 0;
		cr_assert_eq(ipcx_event_wait(e, 0, &v), 0);
		cr_expect_eq(v, 1);
	}
	uint64_t v;
	cr_expect_eq(ipcx_event_wait(e, 0, &v), -EAGAIN);
	ipcx_event_close(e);
}

Test(event, wait_times_out_never_early)
{
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(0, 0, &e), 0);
	uint64_t v;
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_event_wait(e, 50, &v), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 50 * 1000000LL, "returned before the timeout");
	ipcx_event_close(e);
}

Test(event, pollable)
{
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(0, 0, &e), 0);
	int fd = ipcx_event_fileno(e);
	cr_expect(!t_readable(fd, 0));
	cr_assert_eq(ipcx_event_post(e, 1), 0);
	cr_expect(t_readable(fd, 0));
	uint64_t v;
	cr_assert_eq(ipcx_event_wait(e, 0, &v), 0);
	cr_expect(!t_readable(fd, 0));
	ipcx_event_close(e);
}

static int post_five(void *arg)
{
	return ipcx_event_post(arg, 5) == 0 ? 0 : 1;
}

/* The child pid posts want to e: the parent's wait takes it, and the child succeeds. */
static void expect_child_posts(ipcx_event *e, pid_t pid, uint64_t want)
{
	uint64_t v = 0;
	cr_expect_eq(ipcx_event_wait(e, T_GUARD_MS, &v), 0);
	cr_expect_eq(v, want);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
}

Test(event, child_by_fork_wakes_parent)
{
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(0, 0, &e), 0);
	pid_t pid = t_spawn(post_five, e);
	expect_child_posts(e, pid, 5);
	ipcx_event_close(e);
}

Test(event, child_by_exec_adopts_inherited_fd)
{
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(0, IPCX_INHERIT, &e), 0);
	char fdstr[16];
	snprintf(fdstr, sizeof(fdstr), "%d", ipcx_event_fileno(e));
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(t_helper(), "ipcx_test_helper", "event-post", fdstr, "42", (char *)NULL);
		_exit(127);
	}
	expect_child_posts(e, pid, 42);
	ipcx_event_close(e);
}

Test(event, close_on_exec_by_default)
{
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(0, 0, &e), 0);
	cr_expect(fcntl(ipcx_event_fileno(e), F_GETFD) & FD_CLOEXEC);
	ipcx_event_close(e);
}

/*
 * The child exists before the counter does, so the only way it can reach the
 * counter is the descriptor passed over the socket.
 */
static int recv_and_post(void *arg)
{
	int sock = *(int *)arg;
	int fd = -1;
	if (ipcx_fd_recv(sock, 0, T_GUARD_MS, &fd) != 0)
		return 1;
	if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
		return 2;
	ipcx_event *e;
	if (ipcx_event_adopt(fd, 0, &e) != 0)
		return 3;
	int r = ipcx_event_post(e, 7);
	ipcx_event_close(e);
	return r == 0 ? 0 : 4;
}

Test(event, passed_over_unix_socket)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = t_spawn(recv_and_post, &sv[1]);
	ipcx_event *e;
	cr_assert_eq(ipcx_event_open(0, 0, &e), 0);
	cr_assert_eq(ipcx_fd_send(sv[0], ipcx_event_fileno(e), T_GUARD_MS), 0);
	expect_child_posts(e, pid, 7);
	ipcx_event_close(e);
	close(sv[0]);
	close(sv[1]);
}

Test(event, fd_recv_refuses_bad_messages)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int fd = 99;
	cr_expect_eq(ipcx_fd_recv(sv[1], 0, 0, &fd), -EAGAIN);
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_fd_recv(sv[1], 0, 30, &fd), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 30 * 1000000LL);
	/* A byte without a descriptor. */
	cr_assert_eq(write(sv[0], "x", 1), 1);
	cr_expect_eq(ipcx_fd_recv(sv[1], 0, T_GUARD_MS, &fd), -EBADMSG);
	cr_expect_eq(fd, 99, "output untouched on failure");
	cr_expect_eq(ipcx_fd_recv(sv[1], 0x80, 0, &fd), -EINVAL);
	close(sv[0]);
	cr_expect_eq(ipcx_fd_recv(sv[1], 0, T_GUARD_MS, &fd), -EPIPE);
	close(sv[1]);
}

Test(event, bad_input)
{
	ipcx_event *e = NULL;
	cr_expect_eq(ipcx_event_open(0, 0x8000, &e), -EINVAL);
	cr_expect_null(e);
	cr_expect_eq(ipcx_event_open(0, 0, NULL), -EINVAL);
	cr_expect_eq(ipcx_event_open(1ull << 40, 0, &e), -EINVAL);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_expect_eq(ipcx_event_adopt(p[0], 0, &e), -EINVAL, "a pipe is not an eventfd");
	cr_expect_eq(fcntl(p[0], F_GETFD) >= 0, 1, "refused fd left open");
	close(p[0]);
	close(p[1]);
	cr_expect_eq(ipcx_event_adopt(-1, 0, &e), -EBADF);
	cr_assert_eq(ipcx_event_open(0, 0, &e), 0);
	cr_expect_eq(ipcx_event_post(e, 0), -EINVAL);
	cr_expect_eq(ipcx_event_post(e, UINT64_MAX), -EINVAL);
	cr_expect_eq(ipcx_event_post(e, UINT64_MAX - 1), 0);
	cr_expect_eq(ipcx_event_post(e, 1), -EAGAIN, "overflow is refused, not blocked on");
	cr_expect_eq(ipcx_event_close(NULL), 0);
	ipcx_event_close(e);
}

/* ---- signals -------------------------------------------------------------- */

Test(signals, value_travels_with_the_signal)
{
	int sig = SIGRTMIN + 2;
	ipcx_sigs *s;
	cr_assert_eq(ipcx_signals_open(&sig, 1, 0, &s), 0);
	cr_assert_eq(ipcx_signal_send(getpid(), sig, 4242), 0);
	cr_expect(t_readable(ipcx_signals_fileno(s), 0));
	struct ipcx_siginfo si;
	cr_assert_eq(ipcx_signals_next(s, T_GUARD_MS, &si), 0);
	cr_expect_eq(si.signo, sig);
	cr_expect_eq(si.value, 4242);
	cr_expect_eq(si.code, SI_QUEUE);
	cr_expect_eq(si.pid, getpid());
	cr_expect_eq(si.uid, getuid());
	cr_expect_eq(si.action, IPCX_SIG_OTHER);
	cr_expect_eq(ipcx_signals_next(s, 0, &si), -EAGAIN);
	ipcx_signals_close(s);
}

struct burst {
	pid_t target;
	int sig, count;
	struct t_sync done;
};

static int send_burst(void *arg)
{
	struct burst *b = arg;
	for (int i = 0; i < b->count; i++)
		if (ipcx_signal_send(b->target, b->sig, 1000 + i) != 0)
			return 1;
	t_post(&b->done);
	return 0;
}

/*
 * Open *s for b->sig, then let a child send b->count of it to b->target and
 * finish; returns the child's pid.  The set is open before the child starts:
 * until then the signal is not blocked, and its default action would end
 * this process.
 */
static pid_t burst_from_child(struct burst *b, ipcx_sigs **s)
{
	t_sync_init(&b->done);
	cr_assert_eq(ipcx_signals_open(&b->sig, 1, 0, s), 0);
	pid_t pid = t_spawn(send_burst, b);
	cr_assert(t_wait_post(&b->done, T_GUARD_MS));
	cr_assert_eq(t_join(pid, T_GUARD_MS), 0);
	t_sync_close(&b->done);
	return pid;
}

/* Real-time signals queue: every one arrives, in order, with its value. */
Test(signals, realtime_signals_queue_in_order)
{
	struct burst b = { .target = getpid(), .sig = SIGRTMIN + 1, .count = 24 };
	ipcx_sigs *s;
	pid_t pid = burst_from_child(&b, &s);
	for (int i = 0; i < b.count; i++) {
		struct ipcx_siginfo si;
		cr_assert_eq(ipcx_signals_next(s, T_GUARD_MS, &si), 0, "signal %d lost", i);
		cr_expect_eq(si.signo, b.sig);
		cr_expect_eq(si.value, 1000 + i, "out of order: got %d at %d", si.value, i);
		cr_expect_eq(si.pid, pid);
	}
	struct ipcx_siginfo si;
	cr_expect_eq(ipcx_signals_next(s, 0, &si), -EAGAIN, "more than were sent");
	ipcx_signals_close(s);
}

/*
 * Standard signals merge: of several sends while one is pending, the kernel
 * may keep only one.  What this test may rely on is what the kernel keeps: at
 * least one arrives, never more than were sent, and each carries one of the
 * values that were sent.  (On Linux it is one, per signal(7), but a program
 * must not count on any number.)
 */
Test(signals, standard_signals_may_merge)
{
	struct burst b = { .target = getpid(), .sig = SIGUSR1, .count = 5 };
	ipcx_sigs *s;
	burst_from_child(&b, &s);
	int got = 0;
	struct ipcx_siginfo si;
	while (ipcx_signals_next(s, 0, &si) == 0) {
		got++;
		cr_expect_eq(si.signo, SIGUSR1);
		cr_expect(si.value >= 1000 && si.value < 1000 + b.count, "value %d", si.value);
	}
	cr_expect_geq(got, 1, "the signal was lost altogether");
	cr_expect_leq(got, b.count, "more signals than were sent");
	ipcx_signals_close(s);
}

Test(signals, shutdown_helper_tells_stop_from_reload)
{
	ipcx_sigs *s;
	cr_assert_eq(ipcx_signals_shutdown(0, &s), 0);
	struct ipcx_siginfo si;
	cr_assert_eq(kill(getpid(), SIGHUP), 0);
	cr_assert_eq(ipcx_signals_next(s, T_GUARD_MS, &si), 0);
	cr_expect_eq(si.signo, SIGHUP);
	cr_expect_eq(si.action, IPCX_SIG_RELOAD);
	cr_expect_eq(si.code, SI_USER);
	cr_assert_eq(kill(getpid(), SIGTERM), 0);
	cr_assert_eq(ipcx_signals_next(s, T_GUARD_MS, &si), 0);
	cr_expect_eq(si.action, IPCX_SIG_STOP);
	cr_assert_eq(kill(getpid(), SIGINT), 0);
	cr_assert_eq(ipcx_signals_next(s, T_GUARD_MS, &si), 0);
	cr_expect_eq(si.signo, SIGINT);
	cr_expect_eq(si.action, IPCX_SIG_STOP);
	ipcx_signals_close(s);
}

/* A server loop: poll the signal descriptor with an event counter; exit on STOP. */
static int server_loop(void *arg)
{
	struct t_sync *ready = arg;
	ipcx_sigs *s;
	ipcx_event *work;
	if (ipcx_signals_shutdown(0, &s) != 0 || ipcx_event_open(0, 0, &work) != 0)
		return 1;
	t_post(ready);
	int reloads = 0;
	for (;;) {
		struct pollfd p[2] = { { .fd = ipcx_signals_fileno(s), .events = POLLIN },
				       { .fd = ipcx_event_fileno(work), .events = POLLIN } };
		if (poll(p, 2, T_GUARD_MS) <= 0)
			return 2;
		struct ipcx_siginfo si;
		if (ipcx_signals_next(s, 0, &si) != 0)
			continue;
		if (si.action == IPCX_SIG_RELOAD) {
			reloads++;
			t_post(ready);
		} else if (si.action == IPCX_SIG_STOP) {
			ipcx_signals_close(s);
			ipcx_event_close(work);
			return reloads == 1 ? 0 : 3;
		}
	}
}

Test(signals, graceful_shutdown_in_an_event_loop)
{
	struct t_sync ready;
	t_sync_init(&ready);
	pid_t pid = t_spawn(server_loop, &ready);
	cr_assert(t_wait_post(&ready, T_GUARD_MS));
	cr_assert_eq(kill(pid, SIGHUP), 0);
	cr_assert(t_wait_post(&ready, T_GUARD_MS), "reload not seen");
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0, "the server did not stop cleanly");
	t_sync_close(&ready);
}

static bool blocked(int sig)
{
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, sig) == 1;
}

Test(signals, close_restores_the_mask)
{
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &one, NULL); /* blocked before: stays blocked */
	int sigs[] = { SIGUSR1, SIGUSR2 };
	cr_expect(!blocked(SIGUSR1));
	ipcx_sigs *s;
	cr_assert_eq(ipcx_signals_open(sigs, 2, 0, &s), 0);
	cr_expect(blocked(SIGUSR1));
	/* A pending signal of the set is discarded, not delivered, at close. */
	cr_assert_eq(kill(getpid(), SIGUSR1), 0);
	cr_expect_eq(ipcx_signals_close(s), 0);
	cr_expect(!blocked(SIGUSR1));
	cr_expect(blocked(SIGUSR2));
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

Test(signals, next_times_out_never_early)
{
	int sig = SIGUSR1;
	ipcx_sigs *s;
	cr_assert_eq(ipcx_signals_open(&sig, 1, 0, &s), 0);
	struct ipcx_siginfo si;
	int64_t t0 = ipcx__now_ns();
	cr_expect_eq(ipcx_signals_next(s, 40, &si), -ETIMEDOUT);
	cr_expect_geq(ipcx__now_ns() - t0, 40 * 1000000LL);
	ipcx_signals_close(s);
}

static int as_nobody_signal_parent(void *arg)
{
	pid_t parent = *(pid_t *)arg;
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return 10;
	return ipcx_signal_send(parent, SIGUSR1, 1) == -EPERM ? 0 : 1;
}

Test(signals, unprivileged_sender_is_refused)
{
	if (getuid() != 0)
		cr_skip_test("needs root to drop to nobody");
	pid_t self = getpid();
	pid_t pid = t_spawn(as_nobody_signal_parent, &self);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
}

Test(signals, bad_input)
{
	ipcx_sigs *s = NULL;
	int kill9 = SIGKILL, stop = SIGSTOP, zero = 0, big = 1000;
	cr_expect_eq(ipcx_signals_open(&kill9, 1, 0, &s), -EINVAL);
	cr_expect_eq(ipcx_signals_open(&stop, 1, 0, &s), -EINVAL);
	cr_expect_eq(ipcx_signals_open(&zero, 1, 0, &s), -EINVAL);
	cr_expect_eq(ipcx_signals_open(&big, 1, 0, &s), -EINVAL);
	cr_expect_eq(ipcx_signals_open(&kill9, 0, 0, &s), -EINVAL);
	int usr1 = SIGUSR1;
	cr_expect_eq(ipcx_signals_open(&usr1, 1, 0x40, &s), -EINVAL);
	cr_expect_null(s);
	cr_expect(!blocked(SIGUSR1), "a refused set left its signal blocked");
	cr_expect_eq(ipcx_signal_send(0, SIGUSR1, 0), -EINVAL);
	cr_expect_eq(ipcx_signal_send(-1, SIGUSR1, 0), -EINVAL);
	cr_expect_eq(ipcx_signal_send(getpid(), 0, 0), -EINVAL);
	cr_expect_eq(ipcx_signal_send(getpid(), 999, 0), -EINVAL);
	/* A child that has been reaped no longer exists. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	cr_expect_eq(ipcx_signal_send(pid, SIGUSR1, 0), -ESRCH);
	cr_expect_eq(ipcx_signals_close(NULL), 0);
}

static int count_open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* A peer that sends two descriptors at once: refused, and neither is kept. */
Test(event, fd_recv_closes_what_a_bad_message_brought)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	char byte = 'x';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(c), p, 2 * sizeof(int));
	cr_assert_eq(sendmsg(sv[0], &mh, 0), 1);
	int before = count_open_fds();
	int fd = -7;
	cr_expect_eq(ipcx_fd_recv(sv[1], 0, T_GUARD_MS, &fd), -EBADMSG);
	cr_expect_eq(fd, -7);
	cr_expect_eq(count_open_fds(), before, "descriptors of a refused message were kept");
	/* A good one still passes on the same socket, with IPCX_INHERIT honoured. */
	cr_assert_eq(ipcx_fd_send(sv[0], p[0], T_GUARD_MS), 0);
	cr_assert_eq(ipcx_fd_recv(sv[1], IPCX_INHERIT, T_GUARD_MS, &fd), 0);
	cr_expect_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	cr_assert_eq(write(p[1], "k", 1), 1);
	char got = 0;
	cr_expect_eq(read(fd, &got, 1), 1, "the received descriptor is the same pipe");
	cr_expect_eq(got, 'k');
	close(fd);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
