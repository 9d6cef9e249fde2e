/*
 * mq:/name, the POSIX message queue transport: raw interop both ways,
 * priorities, timeouts, readiness, permissions, limits and cleanup.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tpriv.h"
#include "tsupport.h"

/* Small queues: every test process shares root's RLIMIT_MSGQUEUE budget. */
#define SMALL "maxmsg=4&msgsize=256"

static char url[256], qname[128];

static const char *mq_url(const char *opts)
{
	snprintf(qname, sizeof(qname), "/%s", t_name());
	snprintf(url, sizeof(url), "mq:%s%s%s", qname, opts ? "?" : "", opts ? opts : "");
	return url;
}

static bool queue_exists(const char *name)
{
	mqd_t q = mq_open(name, O_RDONLY);
	if (q == (mqd_t)-1)
		return false;
	mq_close(q);
	return true;
}

Test(mq, round_trip_and_cleanup)
{
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(mq_url(SMALL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	cr_expect_str_eq(ipcx_scheme(d), "mq");
	cr_expect_eq(ipcx_max_msg(d), 256);
	cr_assert_eq(ipcx_send(d, "hello", 5, 1000), 5);
	cr_assert_eq(ipcx_send(d, "", 0, 1000), 0);
	char buf[256];
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 5);
	cr_expect_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 0, "empty message");
	cr_expect_eq(ipcx_close(d), 0);
	cr_expect_eq(ipcx_close(l), 0);
	cr_expect(!queue_exists(qname), "the listener removes its queue");
}

Test(mq, raw_mq_send_reaches_ipcx_in_priority_order)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(mq_url(SMALL), 0, &l), 0, "%s", ipcx_errdetail());
	mqd_t q = mq_open(qname, O_WRONLY);
	cr_assert_neq(q, (mqd_t)-1);
	cr_assert_eq(mq_send(q, "low", 3, 1), 0);
	cr_assert_eq(mq_send(q, "high", 4, 7), 0);
	cr_assert_eq(mq_send(q, "low2", 4, 1), 0);
	mq_close(q);
	char buf[256];
	const char *want[] = { "high", "low", "low2" };
	for (int i = 0; i < 3; i++) {
		ssize_t n = ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS);
		cr_assert_eq(n, (ssize_t)strlen(want[i]));
		cr_expect_eq(memcmp(buf, want[i], (size_t)n), 0, "message %d", i);
	}
	ipcx_close(l);
}

Test(mq, ipcx_send_reaches_raw_mq_receive_with_its_priority)
{
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(mq_url(SMALL), 0, &l), 0, "%s", ipcx_errdetail());
	char durl[300];
	snprintf(durl, sizeof(durl), "%s&prio=9", url);
	cr_assert_eq(ipcx_dial(durl, 0, &d), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(d, "payload\0x", 9, 1000), 9);
	mqd_t q = mq_open(qname, O_RDONLY);
	cr_assert_neq(q, (mqd_t)-1);
	char buf[256];
	unsigned prio = 0;
	cr_assert_eq(mq_receive(q, buf, sizeof(buf), &prio), 9, "exactly the payload");
	cr_expect_eq(memcmp(buf, "payload\0x", 9), 0);
	cr_expect_eq(prio, 9);
	mq_close(q);
	ipcx_close(d);
	ipcx_close(l);
}

Test(mq, timeouts_on_empty_and_full)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(mq_url("maxmsg=2&msgsize=64"), 0, &l), 0, "%s",
		     ipcx_errdetail());
	char buf[64];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 30), -ETIMEDOUT);
	cr_assert_eq(ipcx_send(l, "a", 1, 0), 1);
	cr_assert_eq(ipcx_send(l, "b", 1, 0), 1);
	cr_expect_eq(ipcx_send(l, "c", 1, 0), -EAGAIN, "full");
	cr_expect_eq(ipcx_send(l, "c", 1, 30), -ETIMEDOUT, "full");
	ipcx_close(l);
}

Test(mq, small_buffer_keeps_the_message)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(mq_url(SMALL), 0, &l), 0, "%s", ipcx_errdetail());
	char big[256];
	memset(big, 'x', sizeof(big));
	cr_expect_eq(ipcx_send(l, big, 257, 0), -EMSGSIZE, "larger than msgsize");
	cr_assert_eq(ipcx_send(l, big, 100, 0), 100);
	cr_assert_eq(ipcx_send(l, "ok", 2, 0), 2);
	char small[10], buf[256];
	cr_expect_eq(ipcx_recv(l, small, sizeof(small), 0), -EMSGSIZE);
	cr_expect(t_chan_readable(l, 0), "the held message keeps the channel readable");
	cr_expect_eq(ipcx_recv(l, small, sizeof(small), 0), -EMSGSIZE);
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), 0), 100, "the message was kept");
	cr_assert_eq(ipcx_recv(l, small, sizeof(small), 0), 2, "small buffer, small message");
	cr_expect_eq(memcmp(small, "ok", 2), 0);
	cr_expect(!t_chan_readable(l, 0));
	ipcx_close(l);
}

Test(mq, fileno_is_level_triggered)
{
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(mq_url(SMALL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	cr_expect(!t_chan_readable(l, 0));
	cr_assert_eq(ipcx_send(d, "1", 1, 0), 1);
	cr_assert_eq(ipcx_send(d, "2", 1, 0), 1);
	cr_expect(t_chan_readable(l, 0));
	cr_expect(t_chan_readable(l, 0), "still readable: level-triggered");
	char buf[256];
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), 0), 1);
	cr_expect(t_chan_readable(l, 0), "one message left");
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), 0), 1);
	cr_expect(!t_chan_readable(l, 0));
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(d, &st), 0);
	cr_expect_eq(st.sent, 2);
	ipcx_close(d);
	ipcx_close(l);
}

static int recv_timeout_ms;

static int blocked_receiver(void *arg)
{
	ipcx_chan *d;
	struct t_sync *s = arg;
	if (ipcx_dial(url, 0, &d) < 0)
		return 1;
	t_post(s);
	char buf[256];
	/* Both ways of waiting: a deadline (poll) and none (a blocking call). */
	ssize_t n = ipcx_recv(d, buf, sizeof(buf), recv_timeout_ms);
	ipcx_close(d);
	return n == 4 && !memcmp(buf, "wake", 4) ? 0 : 2;
}

static void wake_test(int timeout_ms)
{
	ipcx_chan *l;
	struct t_sync s;
	recv_timeout_ms = timeout_ms;
	t_sync_init(&s);
	cr_assert_eq(ipcx_listen(mq_url(SMALL), 0, &l), 0, "%s", ipcx_errdetail());
	pid_t p = t_spawn(blocked_receiver, &s);
	cr_assert(t_wait_post(&s, T_GUARD_MS));
	cr_assert_eq(ipcx_send(l, "wake", 4, timeout_ms), 4);
	cr_expect_eq(t_join(p, T_GUARD_MS), 0, "t_join kills it past the guard");
	ipcx_close(l);
	t_sync_close(&s);
}

Test(mq, blocked_receiver_wakes_with_deadline)
{
	wake_test(T_GUARD_MS);
}

Test(mq, blocked_receiver_wakes_without_deadline)
{
	wake_test(-1);
}

static int blocked_sender(void *arg)
{
	ipcx_chan *d;
	struct t_sync *s = arg;
	if (ipcx_dial(url, 0, &d) < 0)
		return 1;
	t_post(s);
	/* The queue holds 2: the third send blocks until a receive makes room. */
	for (int i = 0; i < 3; i++)
		if (ipcx_send(d, "m", 1, -1) != 1)
			return 2;
	ipcx_close(d);
	return 0;
}

Test(mq, blocked_sender_wakes_without_deadline)
{
	ipcx_chan *l;
	struct t_sync s;
	t_sync_init(&s);
	cr_assert_eq(ipcx_listen(mq_url("maxmsg=2&msgsize=16"), 0, &l), 0, "%s",
		     ipcx_errdetail());
	pid_t p = t_spawn(blocked_sender, &s);
	cr_assert(t_wait_post(&s, T_GUARD_MS));
	char buf[16];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), -1), 1);
	cr_expect_eq(t_join(p, T_GUARD_MS), 0);
	ipcx_close(l);
	t_sync_close(&s);
}

Test(mq, keep_leaves_the_queue_and_listen_is_exclusive)
{
	ipcx_chan *l, *l2;
	cr_assert_eq(ipcx_listen(mq_url(SMALL "&keep=1"), 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_listen(url, 0, &l2), -EEXIST);
	cr_expect(strstr(ipcx_errdetail(), "exists"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_close(l), 0);
	cr_expect(queue_exists(qname), "keep=1 leaves it");
	cr_expect_eq(mq_unlink(qname), 0);
}

Test(mq, bad_urls)
{
	ipcx_chan *c = NULL;
	cr_expect_eq(ipcx_dial("mq:noslash", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_dial("mq:/a/b", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_dial("mq:/", 0, &c), -EINVAL);
	char longname[300] = "mq:/";
	memset(longname + 4, 'n', 260);
	cr_expect_eq(ipcx_dial(longname, 0, &c), -EINVAL);
	cr_expect_eq(ipcx_listen("mq:/x?prio=40000", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_listen("mq:/x?maxmsg=0", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_listen("mq:/x?bogus=1", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_listen("mq:/x?msgsize=10&max=10", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_dial(mq_url(NULL), 0, &c), -ENOENT);
	cr_expect(strstr(ipcx_errdetail(), "no such queue"), "%s", ipcx_errdetail());
	cr_expect_null(c, "untouched on failure");
}

Test(mq, permissions)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(mq_url(SMALL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, url), 10, "0600 refuses nobody");
	ipcx_close(l);
	cr_assert_eq(ipcx_listen(mq_url(SMALL "&mode=0666"), 0, &l), 0, "%s",
		     ipcx_errdetail());
	/* A dialer takes a queue others may write only if its URL says so. */
	char plain[200], shared[220];
	snprintf(plain, sizeof(plain), "mq:%s", qname);
	snprintf(shared, sizeof(shared), "mq:%s?mode=0666", qname);
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, plain), 13, "not trusted");
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, shared), 0, "mode=0666 lets it in");
	ipcx_close(l);
}

/* In a child without CAP_SYS_RESOURCE: ask for one message too many. */
static int over_msg_max(void *arg)
{
	(void)arg;
	char u[300];
	ipcx_chan *c;
	long msg_max = 0;
	FILE *f = fopen("/proc/sys/fs/mqueue/msg_max", "r");
	if (!f || fscanf(f, "%ld", &msg_max) != 1 || msg_max >= 65536)
		return 4;
	fclose(f);
	snprintf(u, sizeof(u), "%s?maxmsg=%ld&msgsize=16", url, msg_max + 1);
	int r = ipcx_listen(u, 0, &c);
	if (r != -EINVAL)
		return 1;
	if (!strstr(ipcx_errdetail(), "maxmsg") || !strstr(ipcx_errdetail(), "msg_max"))
		return 2;
	snprintf(u, sizeof(u), "%s?maxmsg=1&msgsize=16777216", url);
	r = ipcx_listen(u, 0, &c);
	return r == -EINVAL && strstr(ipcx_errdetail(), "msgsize_max") ? 0 : 3;
}

Test(mq, limits_name_the_limit)
{
	mq_url(NULL);
	cr_expect_eq(t_run_as_nobody(over_msg_max, NULL), 0);
	/* Beyond the kernel's hard limit even root is refused. */
	ipcx_chan *c;
	cr_expect_eq(ipcx_listen(mq_url("maxmsg=65537"), 0, &c), -EINVAL);
}

static int over_rlimit(void *arg)
{
	(void)arg;
	struct rlimit rl = { 4096, 4096 };
	if (setrlimit(RLIMIT_MSGQUEUE, &rl) < 0)
		return 1;
	char u[300];
	ipcx_chan *c;
	snprintf(u, sizeof(u), "%s?maxmsg=8&msgsize=1024", url);
	int r = ipcx_listen(u, 0, &c);
	if (r == 0)
		ipcx_close(c);
	return r == -EMFILE && strstr(ipcx_errdetail(), "RLIMIT_MSGQUEUE") ? 0 : 2;
}

Test(mq, rlimit_msgqueue_names_the_limit)
{
	mq_url(NULL);
	cr_expect_eq(t_join(t_spawn(over_rlimit, NULL), T_GUARD_MS), 0);
}
