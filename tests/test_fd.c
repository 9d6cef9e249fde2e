/* fd: and ipcx_pair(): channels handed to a child across fork and exec. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsupport.h"

/* Exec the helper, which dials fd:N and echoes `count` messages. */
static pid_t exec_echo(int fd, int count)
{
	char url[32], n[16];
	snprintf(url, sizeof(url), "fd:%d", fd);
	snprintf(n, sizeof(n), "%d", count);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(t_helper(), "ipcx_test_helper", "echo", url, n, (char *)NULL);
		_exit(127);
	}
	return pid;
}

Test(fd, socketpair_across_exec)
{
	ipcx_chan *mine, *theirs;
	cr_assert_eq(ipcx_pair("socket", IPCX_INHERIT, &mine, &theirs), 0);
	pid_t pid = exec_echo(ipcx_fileno(theirs), 3);
	ipcx_close(theirs);
	const char *msgs[] = { "one", "two", "three" };
	char buf[16];
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(msgs[i]);
		cr_assert_eq(ipcx_send(mine, msgs[i], n, T_GUARD_MS), (ssize_t)n);
		cr_assert_eq(ipcx_recv(mine, buf, sizeof(buf), T_GUARD_MS), (ssize_t)n);
		cr_expect(memcmp(buf, msgs[i], n) == 0);
	}
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	/* The child is gone and so is its end: the conversation is over. */
	cr_expect_eq(ipcx_recv(mine, buf, sizeof(buf), T_GUARD_MS), -EPIPE);
	cr_expect_eq(ipcx_send(mine, "x", 1, T_GUARD_MS), -EPIPE);
	ipcx_close(mine);
}

Test(fd, close_on_exec_by_default)
{
	ipcx_chan *a, *b;
	cr_assert_eq(ipcx_pair("socket", 0, &a, &b), 0);
	int fl = fcntl(ipcx_fileno(b), F_GETFD);
	cr_expect(fl & FD_CLOEXEC, "descriptors are close-on-exec unless asked");
	/* A child exec'd without IPCX_INHERIT cannot dial the descriptor. */
	pid_t pid = exec_echo(ipcx_fileno(b), 1);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 1);
	ipcx_close(a);
	ipcx_close(b);
}

static int pipe_writer(void *arg)
{
	ipcx_chan *w = arg;
	for (int i = 0; i < 1000; i++)
		if (ipcx_send(w, &i, sizeof(i), T_GUARD_MS) != sizeof(i))
			return 1;
	return ipcx_close(w) == 0 ? 0 : 2;
}

Test(fd, pipe_across_fork)
{
	ipcx_chan *w, *r;
	cr_assert_eq(ipcx_pair("pipe", 0, &w, &r), 0);
	cr_expect_eq(ipcx_recv(w, NULL, 0, 0), -EBADF, "the write end does not read");
	pid_t pid = t_spawn(pipe_writer, w);
	ipcx_close(w);
	int v;
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(ipcx_recv(r, &v, sizeof(v), T_GUARD_MS), (ssize_t)sizeof(v));
		cr_assert_eq(v, i);
	}
	cr_expect_eq(ipcx_recv(r, &v, sizeof(v), T_GUARD_MS), -EPIPE);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	ipcx_close(r);
}

static volatile sig_atomic_t sigpipes;

static void count_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

/*
 * A send into a pipe whose reader is gone is -EPIPE, and SIGPIPE reaches
 * the caller neither through a handler nor by its default action (which
 * would end this test's process), nor is one left pending.
 */
Test(fd, pipe_without_reader_raises_no_sigpipe)
{
	struct sigaction sa = { .sa_handler = count_sigpipe };
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGPIPE, &sa, NULL), 0);
	ipcx_chan *w, *r;
	cr_assert_eq(ipcx_pair("pipe", 0, &w, &r), 0);
	cr_assert_eq(ipcx_send(w, "x", 1, T_GUARD_MS), 1);
	ipcx_close(r);
	cr_expect_eq(ipcx_send(w, "x", 1, T_GUARD_MS), -EPIPE);
	cr_expect_eq(sigpipes, 0, "the handler ran %d times", (int)sigpipes);
	signal(SIGPIPE, SIG_DFL);
	cr_expect_eq(ipcx_send(w, "xy", 2, T_GUARD_MS), -EPIPE);
	sigset_t pending;
	cr_assert_eq(sigpending(&pending), 0);
	cr_expect(!sigismember(&pending, SIGPIPE), "a SIGPIPE was left pending");
	ipcx_close(w);
}

/* /proc/sys/fs/pipe-max-size: the most an F_SETPIPE_SZ is allowed. */
static long pipe_max_size(void)
{
	long v = -1;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld", &v), 1);
	fclose(f);
	return v;
}

/*
 * ipcx_pair("pipe") raises the pipe to 256 KiB (as far as pipe-max-size
 * allows), not to a whole frame of max (16 MiB), which would spend the
 * user's pipe quota: a 64 KiB message,
 * 4 bytes over the kernel's default 64 KiB with its length, goes into the
 * empty pipe whole, in one write, before any reader runs.
 */
Test(fd, pipe_pair_holds_a_whole_frame)
{
	ipcx_chan *w, *r;
	cr_assert_eq(ipcx_pair("pipe", 0, &w, &r), 0);
	long cap = fcntl(ipcx_fileno(w), F_GETPIPE_SZ);
	long want = pipe_max_size() < (256 << 10) ? pipe_max_size() : (256 << 10);
	cr_expect_eq(cap, want, "capacity %ld", cap);
	enum { LEN = 64 << 10 };
	char *msg = malloc(LEN), *got = malloc(LEN);
	cr_assert(msg && got);
	for (size_t i = 0; i < LEN; i++)
		msg[i] = (char)(i * 7);
	cr_assert_eq(ipcx_send(w, msg, LEN, 0), LEN);
	int queued = -1;
	cr_assert_eq(ioctl(ipcx_fileno(r), FIONREAD, &queued), 0);
	cr_expect_eq(queued, LEN + 4, "%d bytes in the pipe, not the whole frame", queued);
	cr_assert_eq(ipcx_recv(r, got, LEN, T_GUARD_MS), LEN);
	cr_expect(memcmp(msg, got, LEN) == 0);
	free(msg);
	free(got);
	ipcx_close(w);
	ipcx_close(r);
}

#define PAIR_MAX (16u << 20) /* ipcx_pair's max=, larger than any pipe may grow */

static int max_frame_writer(void *arg)
{
	ipcx_chan *w = arg;
	char *msg = malloc(PAIR_MAX);
	if (!msg)
		return 1;
	for (size_t i = 0; i < PAIR_MAX; i++)
		msg[i] = (char)(i % 251);
	int rc = ipcx_send(w, msg, PAIR_MAX, T_GUARD_MS) == (ssize_t)PAIR_MAX ? 0 : 2;
	free(msg);
	return ipcx_close(w) == 0 ? rc : 3;
}

/*
 * A frame of exactly max= bytes, which the pipe cannot be raised to hold
 * (pipe-max-size is smaller), still goes through whole: the writer waits
 * for the reader to make room, step by step.
 */
Test(fd, pipe_frame_of_max_larger_than_the_pipe)
{
	ipcx_chan *w, *r;
	cr_assert_eq(ipcx_pair("pipe", 0, &w, &r), 0);
	cr_assert_lt(fcntl(ipcx_fileno(w), F_GETPIPE_SZ), (long)PAIR_MAX);
	pid_t pid = t_spawn(max_frame_writer, w);
	ipcx_close(w);
	char *got = malloc(PAIR_MAX + 1);
	cr_assert_not_null(got);
	cr_assert_eq(ipcx_recv(r, got, PAIR_MAX + 1, T_GUARD_MS), (ssize_t)PAIR_MAX);
	size_t bad = PAIR_MAX;
	for (size_t i = 0; i < PAIR_MAX && bad == PAIR_MAX; i++)
		if (got[i] != (char)(i % 251))
			bad = i;
	cr_expect_eq(bad, PAIR_MAX, "byte %zu differs", bad);
	cr_expect_eq(ipcx_recv(r, got, 1, T_GUARD_MS), -EPIPE);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	free(got);
	ipcx_close(r);
}

/* Write all of buf to a raw descriptor. */
static void put_raw(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n);
}

/*
 * A frame split across reads: its first half waits in the buffer, the
 * batch receive says -EAGAIN and the descriptor is not readable; once the
 * rest and another frame arrive, one ipcx_recvv returns both.
 */
Test(fd, batch_receive_of_a_split_frame)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	char url[32];
	snprintf(url, sizeof(url), "fd:%d", p[0]);
	ipcx_chan *r;
	cr_assert_eq(ipcx_dial(url, 0, &r), 0);
	struct pollfd pf = { .fd = ipcx_fileno(r), .events = POLLIN };
	const char frame1[] = { 6, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f' };
	const char frame2[] = { 2, 0, 0, 0, 'g', 'h' };
	put_raw(p[1], frame1, 7);
	char b[2][8];
	struct ipcx_msg v[4] = { { b[0], sizeof(b[0]), 0 }, { b[1], sizeof(b[1]), 0 } };
	cr_expect_eq(ipcx_recvv(r, v, 2, 0), -EAGAIN);
	cr_expect_eq(poll(&pf, 1, 0), 0, "readable with half a frame");
	put_raw(p[1], frame1 + 7, sizeof(frame1) - 7);
	put_raw(p[1], frame2, sizeof(frame2));
	cr_expect_eq(poll(&pf, 1, T_GUARD_MS), 1);
	cr_assert_eq(ipcx_recvv(r, v, 2, T_GUARD_MS), 2);
	cr_expect(v[0].len == 6 && memcmp(b[0], "abcdef", 6) == 0);
	cr_expect(v[1].len == 2 && memcmp(b[1], "gh", 2) == 0);
	close(p[1]);
	cr_expect_eq(ipcx_recvv(r, v, 2, T_GUARD_MS), -EPIPE);
	ipcx_close(r);
}

Test(fd, bad_descriptors)
{
	ipcx_chan *c = NULL;
	cr_expect_eq(ipcx_dial("fd:", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_dial("fd:x", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_dial("fd:-1", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_dial("fd:999999", 0, &c), -EBADF);
	cr_expect(strstr(ipcx_errdetail(), "not open"), "%s", ipcx_errdetail());
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char url[32];
	snprintf(url, sizeof(url), "fd:%d", fd);
	cr_expect_eq(ipcx_dial(url, 0, &c), -ENOTSUP);
	cr_expect(strstr(ipcx_errdetail(), "not a pipe or a socket"));
	close(fd);
	cr_expect_null(c);
	ipcx_chan *a = NULL, *b = NULL;
	cr_expect_eq(ipcx_pair("carrier-pigeon", 0, &a, &b), -EINVAL);
	cr_expect_eq(ipcx_pair("socket", 0x100, &a, &b), -EINVAL);
}
