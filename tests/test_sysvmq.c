/*
 * sysvmq:KEY, the System V message queue transport: raw interop both ways,
 * message types, timeouts, readiness, a removed queue, permissions, limits.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include "tpriv.h"
#include "tsupport.h"

static char url[256];
static int key;

static const char *sv_url(const char *opts)
{
	key = t_sysv_key();
	snprintf(url, sizeof(url), "sysvmq:0x%08x%s%s", (unsigned)key, opts ? "?" : "",
		 opts ? opts : "");
	return url;
}

static bool queue_exists(int k)
{
	return msgget(k, 0) >= 0;
}

/* Wait (up to the guard) for the channel's descriptor to turn readable. */
struct raw {
	long mtype;
	char mtext[256];
};

static void raw_send(int k, long type, const char *text)
{
	struct raw m = { .mtype = type };
	size_t n = strlen(text);
	memcpy(m.mtext, text, n);
	cr_assert_eq(msgsnd(msgget(k, 0), &m, n, 0), 0, "msgsnd: %s", strerror(errno));
}

Test(sysvmq, round_trip_and_cleanup)
{
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(sv_url(NULL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	cr_expect_str_eq(ipcx_scheme(d), "sysvmq");
	cr_expect_gt(ipcx_max_msg(d), 0);
	cr_assert_eq(ipcx_send(d, "hello", 5, 1000), 5);
	cr_assert_eq(ipcx_send(d, "", 0, 1000), 0);
	t_expect_recv(l, "hello");
	t_expect_recv(l, "");
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.received, 2);
	cr_expect_eq(st.depth, 0);
	ipcx_close(d);
	cr_expect_eq(ipcx_close(l), 0);
	cr_expect(!queue_exists(key), "the listener removes its queue");
}

Test(sysvmq, raw_msgsnd_reaches_ipcx_with_type_selection)
{
	ipcx_chan *l, *t3, *low;
	char u[300];
	cr_assert_eq(ipcx_listen(sv_url(NULL), 0, &l), 0, "%s", ipcx_errdetail());
	snprintf(u, sizeof(u), "%s?type=3", url);
	cr_assert_eq(ipcx_dial(u, 0, &t3), 0, "%s", ipcx_errdetail());
	snprintf(u, sizeof(u), "%s?rtype=-5", url);
	cr_assert_eq(ipcx_dial(u, 0, &low), 0, "%s", ipcx_errdetail());
	raw_send(key, 9, "nine");
	raw_send(key, 5, "five");
	raw_send(key, 3, "three");
	raw_send(key, 2, "two");
	raw_send(key, 3, "three again");
	t_expect_recv(t3, "three");       /* type=3 takes only type 3 */
	t_expect_recv(t3, "three again");
	char buf[16];
	cr_expect_eq(ipcx_recv(t3, buf, sizeof(buf), 0), -EAGAIN);
	t_expect_recv(low, "two");  /* rtype=-5: lowest type <= 5 first */
	t_expect_recv(low, "five");
	t_expect_recv(l, "nine");   /* no option: any type, in order */
	ipcx_close(low);
	ipcx_close(t3);
	ipcx_close(l);
}

Test(sysvmq, ipcx_send_reaches_raw_msgrcv)
{
	ipcx_chan *l, *d;
	char u[300];
	cr_assert_eq(ipcx_listen(sv_url(NULL), 0, &l), 0, "%s", ipcx_errdetail());
	snprintf(u, sizeof(u), "%s?type=7", url);
	cr_assert_eq(ipcx_dial(u, 0, &d), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(d, "pay\0load", 8, 1000), 8);
	struct raw m;
	ssize_t n = msgrcv(msgget(key, 0), &m, sizeof(m.mtext), 0, IPC_NOWAIT);
	cr_assert_eq(n, 8, "exactly the payload");
	cr_expect_eq(m.mtype, 7);
	cr_expect_eq(memcmp(m.mtext, "pay\0load", 8), 0);
	ipcx_close(d);
	ipcx_close(l);
}

Test(sysvmq, timeouts_on_empty_and_full)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(sv_url("qbytes=64&max=32&poll=5"), 0, &l), 0, "%s",
		     ipcx_errdetail());
	cr_expect_eq(ipcx_max_msg(l), 32);
	char buf[32] = { 0 };
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 30), -ETIMEDOUT);
	cr_assert_eq(ipcx_send(l, buf, 32, 0), 32);
	cr_assert_eq(ipcx_send(l, buf, 32, 0), 32);
	cr_expect_eq(ipcx_send(l, buf, 1, 0), -EAGAIN, "full: 64 bytes queued");
	cr_expect_eq(ipcx_send(l, buf, 1, 30), -ETIMEDOUT);
	cr_expect_eq(ipcx_send(l, buf, 33, 0), -EMSGSIZE);
	ipcx_close(l);
}

struct waiter {
	struct t_sync ready;
	int timeout_ms;
};

static int blocked_receiver(void *arg)
{
	struct waiter *w = arg;
	ipcx_chan *d;
	if (ipcx_dial(url, 0, &d) < 0)
		return 1;
	t_post(&w->ready);
	char buf[64];
	ssize_t n = ipcx_recv(d, buf, sizeof(buf), w->timeout_ms);
	ipcx_close(d);
	return n == 4 && !memcmp(buf, "wake", 4) ? 0 : 2;
}

static void wake_test(int timeout_ms)
{
	ipcx_chan *l;
	struct waiter w = { .timeout_ms = timeout_ms };
	t_sync_init(&w.ready);
	cr_assert_eq(ipcx_listen(sv_url(NULL), 0, &l), 0, "%s", ipcx_errdetail());
	pid_t p = t_spawn(blocked_receiver, &w);
	cr_assert(t_wait_post(&w.ready, T_GUARD_MS));
	cr_assert_eq(ipcx_send(l, "wake", 4, 1000), 4);
	cr_expect_eq(t_join(p, T_GUARD_MS), 0);
	ipcx_close(l);
	t_sync_close(&w.ready);
}

Test(sysvmq, blocked_receiver_wakes_without_deadline)
{
	wake_test(-1);
}

Test(sysvmq, blocked_receiver_wakes_with_deadline)
{
	wake_test(T_GUARD_MS);
}

Test(sysvmq, fileno_turns_readable_when_a_message_waits)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(sv_url("poll=20"), 0, &l), 0, "%s", ipcx_errdetail());
	char buf[64];
	/* Drain: the receive that finds nothing re-arms the timer. */
	cr_assert_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	raw_send(key, 1, "m1");
	raw_send(key, 1, "m2");
	/* Readable while a message waits; stays so until received (level). */
	cr_expect(t_chan_readable(l, T_GUARD_MS));
	cr_expect(t_chan_readable(l, T_GUARD_MS));
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), 2);
	cr_expect(t_chan_readable(l, T_GUARD_MS), "one left");
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), 2);
	/* Spurious readiness is allowed: the receive then says -EAGAIN. */
	for (int i = 0; i < 3; i++) {
		cr_expect(t_chan_readable(l, T_GUARD_MS));
		cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	}
	ipcx_close(l);
}

Test(sysvmq, small_buffer_leaves_the_message_queued)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(sv_url(NULL), 0, &l), 0, "%s", ipcx_errdetail());
	raw_send(key, 1, "a message of some length");
	char small[4];
	cr_expect_eq(ipcx_recv(l, small, sizeof(small), 0), -EMSGSIZE);
	t_expect_recv(l, "a message of some length");
	ipcx_close(l);
}

Test(sysvmq, removed_queue_is_a_gone_peer)
{
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(sv_url(NULL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	ipcx_close(l);
	char buf[8];
	cr_expect_eq(ipcx_recv(d, buf, sizeof(buf), 0), -EPIPE);
	cr_expect(strstr(ipcx_errdetail(), "removed"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_send(d, "x", 1, 0), -EPIPE);
	ipcx_close(d);
}

Test(sysvmq, permissions)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(sv_url(NULL), 0, &l), 0, "%s", ipcx_errdetail());
	struct msqid_ds ds;
	cr_assert_eq(msgctl(msgget(key, 0), IPC_STAT, &ds), 0);
	cr_expect_eq(ds.msg_perm.mode & 0777, 0600);
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, url), 10, "0600 refuses nobody");
	ipcx_close(l);
	cr_assert_eq(ipcx_listen(sv_url("mode=0666"), 0, &l), 0, "%s", ipcx_errdetail());
	/* A dialer takes a queue others may write only if its URL says so. */
	char plain[64], shared[80];
	snprintf(plain, sizeof(plain), "sysvmq:0x%08x", (unsigned)key);
	snprintf(shared, sizeof(shared), "%s?mode=0666", plain);
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, plain), 13, "not trusted");
	cr_expect_eq(t_run_as_nobody(t_nobody_dial_send_recv, shared), 0, "mode=0666 lets it in");
	ipcx_close(l);
}

static int qbytes_over_msgmnb(void *arg)
{
	(void)arg;
	ipcx_chan *c;
	char u[300];
	snprintf(u, sizeof(u), "%s?qbytes=1000000000", url);
	int r = ipcx_listen(u, 0, &c);
	if (r == 0)
		ipcx_close(c);
	if (queue_exists(key))
		return 3; /* a failed listen must not leave its queue */
	return r == -EPERM && strstr(ipcx_errdetail(), "msgmnb") ? 0 : 2;
}

Test(sysvmq, limits_name_the_limit)
{
	ipcx_chan *c = NULL;
	cr_expect_eq(ipcx_listen(sv_url("max=100000000"), 0, &c), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "msgmax"), "%s", ipcx_errdetail());
	cr_expect(!queue_exists(key));
	sv_url(NULL);
	cr_expect_eq(t_run_as_nobody(qbytes_over_msgmnb, NULL), 0);
	cr_expect_null(c);
}

Test(sysvmq, ftok_path_and_keep)
{
	const char *p = t_path("anchor");
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	char u[300];
	snprintf(u, sizeof(u), "sysvmq:%s?proj=90&keep=1", p);
	ipcx_chan *l, *l2, *d;
	cr_assert_eq(ipcx_listen(u, 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_listen(u, 0, &l2), -EEXIST);
	snprintf(u, sizeof(u), "sysvmq://%s?proj=90", p);
	cr_assert_eq(ipcx_dial(u, 0, &d), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(d, "via ftok", 8, 1000), 8);
	t_expect_recv(l, "via ftok");
	ipcx_close(d);
	cr_expect_eq(ipcx_close(l), 0);
	key_t k = ftok(p, 90);
	cr_expect(queue_exists(k), "keep=1 leaves it");
	cr_expect_eq(msgctl(msgget(k, 0), IPC_RMID, NULL), 0);
}

Test(sysvmq, bad_urls)
{
	ipcx_chan *c = NULL;
	const char *bad[] = { "sysvmq:", "sysvmq:abc", "sysvmq:0", "sysvmq:0x", "sysvmq:12x",
			      "sysvmq:0x-1", "sysvmq:99999999999", "sysvmq:12?proj=3",
			      "sysvmq:12?type=0", "sysvmq:12?rtype=x", "sysvmq:12?poll=0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ipcx_listen(bad[i], 0, &c), -EINVAL, "%s", bad[i]);
	cr_expect_eq(ipcx_dial(sv_url(NULL), 0, &c), -ENOENT);
	cr_expect(strstr(ipcx_errdetail(), "no queue"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_dial("sysvmq:/nonexistent/ipcxt-path?proj=1", 0, &c), -ENOENT);
	cr_expect_eq(ipcx_dial("sysvmq:/tmp", 0, &c), -EINVAL, "a path needs proj");
	cr_expect_null(c, "untouched on failure");
}
