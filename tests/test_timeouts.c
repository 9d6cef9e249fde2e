/*
 * Timeouts are 0 (never block), -1 (wait forever) or a positive number of
 * milliseconds.  Any other negative value is a mistake, and every public
 * function that takes a timeout refuses it with -EINVAL before doing
 * anything: here each is called while it could succeed at once, so that
 * taking the bad value for "forever" shows as a success, and the state is
 * checked to be untouched afterwards.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsupport.h"

static const int bad[] = { -2, -7, -1000, INT_MIN };
#define NBAD (sizeof(bad) / sizeof(bad[0]))

static void expect_einval(long got, int t, const char *what)
{
	cr_expect_eq(got, -EINVAL, "%s with timeout %d: want -EINVAL, got %ld", what, t, got);
	cr_expect(strstr(ipcx_errdetail(), "timeout"), "%s: the detail names the timeout: '%s'",
		  what, ipcx_errdetail());
}

/* A listener of url and a dialer of it. */
static void listen_dial(const char *url, ipcx_chan **l, ipcx_chan **d)
{
	cr_assert_eq(ipcx_listen(url, 0, l), 0, "%s: %s", url, ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, d), 0, "%s: %s", url, ipcx_errdetail());
}

Test(timeouts, channels)
{
	char url[256], buf[16];
	snprintf(url, sizeof(url), "unixpacket:@%s", t_name());
	ipcx_chan *l, *d;
	listen_dial(url, &l, &d);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_send(d, "x", 1, bad[i]), bad[i], "ipcx_send");
	cr_assert_eq(ipcx_send(d, "x", 1, 1000), 1);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_recv(l, buf, sizeof(buf), bad[i]), bad[i], "ipcx_recv");
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 1, "the message is still there");
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN, "and it was the only one");
	ipcx_close(d);
	ipcx_close(l);
}

Test(timeouts, accept)
{
	char url[256];
	snprintf(url, sizeof(url), "unix:@%s", t_name());
	ipcx_chan *l, *d, *a;
	cr_assert_eq(ipcx_listen(url, IPCX_ACCEPT, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_accept(l, bad[i], &a), bad[i], "ipcx_accept");
	cr_expect_eq(ipcx_accept(l, T_GUARD_MS, &a), 0, "the peer still waits");
	ipcx_close(a);
	ipcx_close(d);
	ipcx_close(l);
}

Test(timeouts, reserve_and_peek)
{
	char url[256];
	snprintf(url, sizeof(url), "shm:/%s", t_name());
	ipcx_chan *l, *d;
	listen_dial(url, &l, &d);
	void *slot;
	const void *msg;
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_reserve(d, 8, bad[i], &slot), bad[i], "ipcx_reserve");
	cr_assert_eq(ipcx_send(d, "x", 1, 1000), 1, "no reservation was left open");
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_peek(l, bad[i], &msg), bad[i], "ipcx_peek");
	cr_expect_eq(ipcx_peek(l, T_GUARD_MS, &msg), 1, "the message is still there");
	cr_expect_eq(ipcx_release(l), 0);
	ipcx_close(d);
	ipcx_close(l);
}

/* Batches: a bad timeout sends nothing and takes nothing. */
Test(timeouts, batches)
{
	char url[256];
	snprintf(url, sizeof(url), "unixpacket:@%s", t_name());
	ipcx_chan *l, *d;
	listen_dial(url, &l, &d);
	char b[2][16];
	struct ipcx_msg out[2] = { { "a", 0, 1 }, { "b", 0, 1 } };
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_sendv(d, out, 2, bad[i]), bad[i], "ipcx_sendv");
	cr_expect_eq(ipcx_recv(l, b[0], sizeof(b[0]), 0), -EAGAIN, "nothing was sent");
	cr_assert_eq(ipcx_sendv(d, out, 2, T_GUARD_MS), 2);
	struct ipcx_msg in[2] = { { b[0], sizeof(b[0]), 0 }, { b[1], sizeof(b[1]), 0 } };
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_recvv(l, in, 2, bad[i]), bad[i], "ipcx_recvv");
	cr_expect_eq(ipcx_recvv(l, in, 2, T_GUARD_MS), 2, "both messages are still there");
	ipcx_close(d);
	ipcx_close(l);

	/* In place, on a broadcast ring: nothing is held after a refusal. */
	const char *name = t_name();
	snprintf(url, sizeof(url), "shm:/%s?fanout=1", name);
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	snprintf(url, sizeof(url), "shm:/%s?fanout=1&sub=1", name);
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(l, "x", 1, T_GUARD_MS), 1);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_peekv(d, in, 2, bad[i]), bad[i], "ipcx_peekv");
	cr_expect_eq(ipcx_releasev(d, 0), -EINVAL, "nothing was peeked");
	cr_expect_eq(ipcx_peekv(d, in, 2, T_GUARD_MS), 1, "the message is still there");
	cr_expect_eq(ipcx_releasev(d, 1), 1);
	ipcx_close(d);
	ipcx_close(l);
}

/* Publish/subscribe: a bad timeout publishes nothing and takes nothing. */
Test(timeouts, pubsub)
{
	char url[256];
	snprintf(url, sizeof(url), "shm:/%s", t_name());
	ipcx_pub *p;
	ipcx_sub *s;
	const char *all[1] = { "" };
	cr_assert_eq(ipcx_pub_open(url, 0, &p), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_sub_open(url, all, 1, 0, &s), 0, "%s", ipcx_errdetail());
	for (size_t i = 0; i < NBAD; i++) {
		expect_einval(ipcx_pub_wait(p, 1, bad[i]), bad[i], "ipcx_pub_wait");
		expect_einval(ipcx_pub_send(p, "t", "x", 1, bad[i]), bad[i], "ipcx_pub_send");
	}
	char topic[16], buf[16];
	cr_expect_eq(ipcx_sub_recv(s, topic, sizeof(topic), buf, sizeof(buf), 0), -EAGAIN,
		     "nothing was published");
	cr_assert_eq(ipcx_pub_send(p, "t", "x", 1, T_GUARD_MS), 1);
	struct ipcx_sub_msg m = { topic, sizeof(topic), buf, sizeof(buf), 0 };
	const char *tp;
	const void *mp;
	for (size_t i = 0; i < NBAD; i++) {
		expect_einval(ipcx_sub_recv(s, topic, sizeof(topic), buf, sizeof(buf), bad[i]),
			      bad[i], "ipcx_sub_recv");
		expect_einval(ipcx_sub_recvv(s, &m, 1, bad[i]), bad[i], "ipcx_sub_recvv");
		expect_einval(ipcx_sub_peek(s, bad[i], &tp, &mp), bad[i], "ipcx_sub_peek");
	}
	cr_expect_eq(ipcx_sub_recv(s, topic, sizeof(topic), buf, sizeof(buf), T_GUARD_MS), 1,
		     "the message is still there");
	cr_expect_eq(ipcx_sub_recv(s, topic, sizeof(topic), buf, sizeof(buf), 0), -EAGAIN,
		     "and it was the only one");
	ipcx_sub_close(s);
	ipcx_pub_close(p);
}

Test(timeouts, read_ahead_and_logd)
{
	char url[256], buf[16];
	snprintf(url, sizeof(url), "shm:/%s", t_name());
	ipcx_chan *l, *d;
	listen_dial(url, &l, &d);
	cr_assert_eq(ipcx_send(d, "x", 1, 1000), 1);
	uint64_t cur = 0;
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_read_ahead(l, &cur, buf, sizeof(buf), bad[i]), bad[i],
			      "ipcx_read_ahead");
	cr_expect_eq(cur, 0, "the cursor did not move");
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), 1, "the message is still there");
	ipcx_close(d);
	ipcx_close(l);

	snprintf(url, sizeof(url), "shm:/%s", t_name());
	struct ipcx_logd_opts o = { .out = t_path("log.txt") };
	ipcx_logd *g;
	cr_assert_eq(ipcx_logd_open(url, &o, &g), 0, "%s", ipcx_errdetail());
	ipcx_log *w;
	cr_assert_eq(ipcx_log_open(url, "t", 0, &w), 0);
	cr_assert_eq(ipcx_log_write(w, IPCX_LOG_INFO, "x", 1), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_logd_run(g, bad[i]), bad[i], "ipcx_logd_run");
	cr_expect_eq(ipcx_logd_run(g, T_GUARD_MS), 1, "the record is still there");
	ipcx_log_close(w);
	ipcx_logd_close(g);
}

Test(timeouts, event_and_descriptors)
{
	ipcx_event *e;
	uint64_t v;
	cr_assert_eq(ipcx_event_open(1, 0, &e), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_event_wait(e, bad[i], &v), bad[i], "ipcx_event_wait");
	cr_expect_eq(ipcx_event_wait(e, 0, &v), 0, "the count is still there");
	cr_expect_eq(v, 1);

	int sv[2], got = -1;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_fd_send(sv[0], ipcx_event_fileno(e), bad[i]), bad[i],
			      "ipcx_fd_send");
	cr_assert_eq(ipcx_fd_send(sv[0], ipcx_event_fileno(e), 1000), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_fd_recv(sv[1], 0, bad[i], &got), bad[i], "ipcx_fd_recv");
	cr_expect_eq(ipcx_fd_recv(sv[1], 0, 0, &got), 0, "the descriptor still waits");
	cr_expect_eq(ipcx_fd_recv(sv[1], 0, 0, &got), -EAGAIN, "only one was sent");
	close(got);
	close(sv[0]);
	close(sv[1]);
	ipcx_event_close(e);
}

Test(timeouts, signals)
{
	int sig = SIGUSR1;
	ipcx_sigs *s;
	struct ipcx_siginfo si;
	cr_assert_eq(ipcx_signals_open(&sig, 1, 0, &s), 0);
	cr_assert_eq(ipcx_signal_send(getpid(), SIGUSR1, 7), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_signals_next(s, bad[i], &si), bad[i], "ipcx_signals_next");
	cr_expect_eq(ipcx_signals_next(s, T_GUARD_MS, &si), 0, "the signal is still pending");
	cr_expect_eq(si.signo, SIGUSR1);
	ipcx_signals_close(s);
}

Test(timeouts, semaphores_and_mutex)
{
	char url[256];
	snprintf(url, sizeof(url), "sem:/%s", t_name());
	ipcx_sem *s;
	cr_assert_eq(ipcx_sem_create(url, 1, 0, &s), 0, "%s", ipcx_errdetail());
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_sem_wait(s, bad[i]), bad[i], "ipcx_sem_wait (POSIX)");
	unsigned val = 0;
	cr_expect_eq(ipcx_sem_value(s, &val), 0);
	cr_expect_eq(val, 1, "nothing was taken");
	ipcx_sem_close(s);

	snprintf(url, sizeof(url), "sysvsem:%d", t_sysv_key());
	cr_assert_eq(ipcx_sem_create(url, 1, 0, &s), 0, "%s", ipcx_errdetail());
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_sem_wait(s, bad[i]), bad[i], "ipcx_sem_wait (System V)");
	cr_expect_eq(ipcx_sem_value(s, &val), 0);
	cr_expect_eq(val, 1, "nothing was taken");
	ipcx_sem_close(s);

	_Alignas(8) char mem[IPCX_SEM_SIZE];
	cr_assert_eq(ipcx_sem_init_at(mem, sizeof(mem), 1, &s), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_sem_wait(s, bad[i]), bad[i], "ipcx_sem_wait (unnamed)");
	ipcx_sem_close(s);

	_Alignas(8) char mm[IPCX_MUTEX_SIZE];
	ipcx_mutex *m;
	cr_assert_eq(ipcx_mutex_init_at(mm, sizeof(mm), 0, &m), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_mutex_lock(m, bad[i]), bad[i], "ipcx_mutex_lock");
	cr_expect_eq(ipcx_mutex_unlock(m), -EPERM, "it was not taken");
	ipcx_mutex_close(m);
}

Test(timeouts, file_locks)
{
	ipcx_lock *l = NULL;
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_lock_open(t_path("lock"), 0, 0, bad[i], &l), bad[i],
			      "ipcx_lock_open");
	cr_expect_eq(access(t_path("lock"), F_OK), -1, "nothing was created");
	int fd = open(t_path("f"), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	for (size_t i = 0; i < NBAD; i++) {
		expect_einval(ipcx_lock_fd(fd, 0, 0, 0, bad[i]), bad[i], "ipcx_lock_fd");
		expect_einval(ipcx_lock_fd(fd, 0, 0, IPCX_LOCK_FLOCK, bad[i]), bad[i],
			      "ipcx_lock_fd (flock)");
	}
	close(fd);
}

Test(timeouts, rpc)
{
	char url[256], buf[16];
	snprintf(url, sizeof(url), "unix:@%s", t_name());
	ipcx_rpc_server *s;
	ipcx_rpc_client *c;
	cr_assert_eq(ipcx_rpc_serve(url, 0, &s), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_rpc_dial(url, 0, &c), 0, "%s", ipcx_errdetail());
	uint64_t id;
	for (size_t i = 0; i < NBAD; i++) {
		expect_einval(ipcx_rpc_start(c, "x", 1, bad[i], 0, &id), bad[i], "ipcx_rpc_start");
		expect_einval(ipcx_rpc_call(c, "x", 1, buf, sizeof(buf), bad[i]), bad[i],
			      "ipcx_rpc_call");
	}
	struct ipcx_rpc_req *q;
	cr_expect_eq(ipcx_rpc_next(s, 0, &q), -EAGAIN, "no call was sent");
	cr_assert_eq(ipcx_rpc_start(c, "x", 1, T_GUARD_MS, 0, &id), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_rpc_next(s, bad[i], &q), bad[i], "ipcx_rpc_next");
	cr_assert_eq(ipcx_rpc_next(s, T_GUARD_MS, &q), 0, "the call is still there");
	cr_assert_eq(ipcx_rpc_reply(q, "y", 1), 0);
	struct ipcx_rpc_result res;
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_rpc_wait(c, bad[i], buf, sizeof(buf), &res), bad[i],
			      "ipcx_rpc_wait");
	cr_expect_eq(ipcx_rpc_wait(c, T_GUARD_MS, buf, sizeof(buf), &res), 0, "the reply waits");
	cr_expect_eq(res.id, id);
	ipcx_rpc_client_close(c);
	ipcx_rpc_server_close(s);
}

static int idle_worker(ipcx_worker *w, void *arg)
{
	(void)arg;
	char buf[64];
	for (size_t i = 0; i < NBAD; i++)
		if (ipcx_worker_next(w, buf, sizeof(buf), bad[i]) != -EINVAL)
			return 10; /* it took a task */
	ssize_t n;
	while ((n = ipcx_worker_next(w, buf, sizeof(buf), -1)) >= 0)
		ipcx_worker_reply(w, buf, (size_t)n);
	return n == -ESHUTDOWN ? 0 : 11;
}

Test(timeouts, pools_and_slots)
{
	struct ipcx_pool_opts o = { .workers = 1, .fn = idle_worker, .name = t_name() };
	ipcx_pool *p;
	cr_assert_eq(ipcx_pool_start(&o, &p), 0, "%s", ipcx_errdetail());
	uint64_t id;
	struct ipcx_task_result r;
	char buf[8];
	for (size_t i = 0; i < NBAD; i++) {
		expect_einval(ipcx_pool_submit(p, "x", 1, bad[i], &id), bad[i], "ipcx_pool_submit");
		expect_einval(ipcx_pool_result(p, buf, sizeof(buf), bad[i], &r), bad[i],
			      "ipcx_pool_result");
		expect_einval(ipcx_pool_run(p, bad[i]), bad[i], "ipcx_pool_run");
	}
	struct ipcx_pool_stats s;
	cr_assert_eq(ipcx_pool_stats(p, &s), 0);
	cr_expect_eq(s.queued + s.running + s.done, 0, "no task was taken");
	cr_assert_eq(ipcx_pool_submit(p, "x", 1, T_GUARD_MS, &id), 0);
	cr_assert_eq(ipcx_pool_result(p, buf, sizeof(buf), T_GUARD_MS, &r), 0);
	cr_expect_eq(r.status, 0, "the worker refused its bad timeouts: %d", r.status);
	cr_expect_eq(ipcx_pool_stop(p, -2), -EINVAL);
	cr_expect_eq(ipcx_pool_close(p), 0);

	char url[128];
	snprintf(url, sizeof(url), "shm:/%s", t_name());
	ipcx_slots *t;
	cr_assert_eq(ipcx_slots_open(url, 1, 0, IPCX_SLOTS_CREATE, &t), 0);
	for (size_t i = 0; i < NBAD; i++)
		expect_einval(ipcx_slot_acquire(t, bad[i], NULL), bad[i], "ipcx_slot_acquire");
	struct ipcx_slots_stats ss;
	cr_assert_eq(ipcx_slots_stats(t, &ss), 0);
	cr_expect_eq(ss.held + ss.acquired, 0, "nothing was taken");
	cr_expect_eq(ipcx_slots_close(t), 0);
}
