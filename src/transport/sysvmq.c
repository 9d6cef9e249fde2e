/*
 * sysvmq:KEY and sysvmq:/path?proj=N — a System V message queue.
 *
 * The payload travels exactly as given after the mtype long, so a program
 * that calls msgsnd()/msgrcv() itself talks to an ipcx channel in both
 * directions.  type=N (N >= 1, default 1) is the mtype of our sends and,
 * unless rtype is given, the only type we receive; rtype=M is msgrcv()'s
 * msgtyp as is: 0 takes the first message of any type, M > 0 the first of
 * type M, M < 0 the first of the lowest type <= |M|.  Without either option
 * a channel sends type 1 and receives every type.
 *
 * The kernel gives a System V queue no descriptor, no timeout and no way to
 * wait for a message without taking it.  What we do about each, and why:
 *
 *   - Waits without a deadline (timeout -1) block in msgsnd()/msgrcv()
 *     themselves: no latency, no CPU.
 *   - Waits with a deadline retry with IPC_NOWAIT and sleep between tries on
 *     CLOCK_MONOTONIC, 50 us at first, doubling to a cap (poll=MS, default
 *     10 ms).  A message that arrives during such a wait is taken at most
 *     one cap later; an idle wait costs at most 1000/cap wake-ups a second.
 *     The alternatives cost more: interrupting a blocked msgrcv() needs a
 *     signal (stealing a signal number and a handler from the program), and
 *     a helper thread that blocks in msgrcv() would take messages out of
 *     the queue before anyone asked for them.
 *   - ipcx_fileno() is a timerfd, because there is nothing else to poll.
 *     It is readable while the channel believes a message may wait: at
 *     open if the queue holds one (msg_qnum), and after a receive that
 *     returned one, so a loop that drains until -EAGAIN works as on any
 *     descriptor; otherwise, and after a receive that finds nothing, it is
 *     armed for the next backoff step (1 ms doubling to the cap).  So it is readable while a message waits (noticed within one
 *     cap), stays readable until ipcx_recv() is called (level-triggered),
 *     and, honestly, also turns readable once per step while the queue is
 *     empty: the receive that follows returns -EAGAIN.  Nothing runs in the
 *     background and a channel that nobody polls costs nothing.
 *
 * Limits, per IPC namespace: msgmax (/proc/sys/kernel/msgmax) bounds one
 * message, msgmnb (/proc/sys/kernel/msgmnb) the bytes a new queue holds
 * (qbytes=N raises it for this queue; above msgmnb that needs
 * CAP_SYS_RESOURCE), msgmni the number of queues.  A channel's largest
 * message is min(msgmax, the queue's qbytes) unless max= asks for less.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/record.h"
#include "core/tran.h"
#include "core/trust.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FIRST_SLEEP_NS   50000LL    /* first sleep of a deadline wait */
#define FIRST_TICK_NS    1000000LL  /* first re-arm of the readiness timer */
#define DEFAULT_POLL_MS  10

struct sv_msg {
	long mtype;
	char mtext[];
};

struct sv_chan {
	struct ipcx_chan c;
	int id;
	key_t key;
	long stype;        /* mtype of sends */
	long rtype;        /* msgtyp of receives */
	bool owner;        /* created by this listener: IPC_RMID on close */
	bool ready;        /* the timer was set to fire now and not read since */
	int64_t cap_ns;    /* the longest sleep of a wait */
	int64_t tick_ns;   /* the readiness timer's next step */
	struct sv_msg *msg; /* sizeof(long) + max_msg bytes */
	uint64_t sent, received;
};

/*
 * type= is the mtype of sends and, unless rtype= says otherwise, of
 * receives (msgrcv's msgtyp: 0 any, < 0 the lowest type up to -rtype);
 * max= defaults to the queue's own limit and is checked against it.
 */
enum { SV_TYPE, SV_RTYPE, SV_PROJ, SV_MAX, SV_QBYTES, SV_POLL, SV_MODE, SV_KEEP, SV_NOPTS };
static const struct ipcx__opt sv_options[SV_NOPTS + 1] = {
	[SV_TYPE] = IPCX__UINT("type", 1, LONG_MAX, 1),
	[SV_RTYPE] = IPCX__INT("rtype", LONG_MIN + 1, LONG_MAX, 0),
	[SV_PROJ] = IPCX__UINT("proj", 1, 255, 0),
	[SV_MAX] = IPCX__UINT("max", 1, SIZE_MAX, 0),
	[SV_QBYTES] = IPCX__UINT("qbytes", 1, ULONG_MAX, 0),
	[SV_POLL] = IPCX__UINT("poll", 1, 1000, DEFAULT_POLL_MS),
	[SV_MODE] = IPCX__MODE("mode", 0600),
	[SV_KEEP] = IPCX__BOOL("keep", false),
};

static const struct ipcx__chan_ops sv_ops;
static const struct ipcx_tran sv_tran;

/* The namespace's limits, from the kernel itself (no /proc needed). */
static int sv_info(struct msginfo *mi)
{
	if (msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)mi) < 0)
		return ipcx__fail(-errno, "msgctl(IPC_INFO): %s", strerror(errno));
	return 0;
}

static void sv_types(const struct ipcx__url *u, long *stype, long *rtype)
{
	*stype = (long)ipcx__opt(u, SV_TYPE);
	*rtype = ipcx__opt_set(u, SV_TYPE) ? *stype : 0;
	if (ipcx__opt_set(u, SV_RTYPE))
		*rtype = (long)(int64_t)ipcx__opt(u, SV_RTYPE);
}

/* The channel's largest message: min(msgmax, qbytes), or less if asked. */
static int sv_max(const struct ipcx__url *u, int id, size_t *ret)
{
	struct msginfo mi;
	struct msqid_ds ds;
	int r = sv_info(&mi);
	if (r)
		return r;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return ipcx__fail(-errno, "%s: msgctl(IPC_STAT): %s", u->orig, strerror(errno));
	size_t lim = (size_t)mi.msgmax < ds.msg_qbytes ? (size_t)mi.msgmax : ds.msg_qbytes;
	size_t max = ipcx__opt_set(u, SV_MAX) ? (size_t)ipcx__opt(u, SV_MAX) : lim;
	if (max > (size_t)mi.msgmax)
		return ipcx__fail(-EINVAL, "%s: max=%zu exceeds /proc/sys/kernel/msgmax (%d)",
				  u->orig, max, mi.msgmax);
	if (max > ds.msg_qbytes)
		return ipcx__fail(-EINVAL, "%s: max=%zu exceeds the queue's capacity, qbytes "
				  "(%lu; new queues get /proc/sys/kernel/msgmnb)", u->orig, max,
				  (unsigned long)ds.msg_qbytes);
	*ret = max;
	return 0;
}

/* Arm the readiness timer: at once (ns == 0) or after ns. */
static void arm(struct sv_chan *s, int64_t ns)
{
	struct itimerspec its = { 0 };
	if (ns <= 0)
		ns = 1; /* an all-zero it_value would disarm it */
	its.it_value.tv_sec = ns / 1000000000;
	its.it_value.tv_nsec = ns % 1000000000;
	timerfd_settime(s->c.fd, 0, &its, NULL);
}

/*
 * A message was taken (or one too large for the buffer waits): keep the
 * descriptor readable, so that a loop that receives until -EAGAIN works as
 * on any descriptor, and reset the backoff.  Checking msg_qnum here instead
 * would spare one spurious wake-up after the last message, at the price of
 * a system call for every message.
 */
static void note_message(struct sv_chan *s)
{
	s->tick_ns = FIRST_TICK_NS;
	if (!s->ready) {
		arm(s, 0);
		s->ready = true;
	}
}

/* Nothing waited: drain the timer and look again a step later. */
static void note_empty(struct sv_chan *s)
{
	uint64_t ticks;
	ssize_t n = read(s->c.fd, &ticks, sizeof(ticks));
	(void)n;
	arm(s, s->tick_ns);
	s->ready = false;
	s->tick_ns = s->tick_ns * 2 > s->cap_ns ? s->cap_ns : s->tick_ns * 2;
}

/* What the options say; parsed before anything is created. */
struct sv_cfg {
	key_t key;
	long stype, rtype;
	uint64_t poll_ms;
};

static int sv_config(const struct ipcx__url *u, struct sv_cfg *cfg)
{
	cfg->poll_ms = ipcx__opt(u, SV_POLL);
	sv_types(u, &cfg->stype, &cfg->rtype);
	return ipcx__url_sysv_key(u, ipcx__opt(u, SV_PROJ), &cfg->key);
}

static int sv_wrap(const struct ipcx__url *u, int id, const struct sv_cfg *cfg,
		   unsigned flags, bool owner, ipcx_chan **ret)
{
	size_t max = 0;
	int r = sv_max(u, id, &max);
	if (r)
		return r;
	struct sv_chan *s = calloc(1, sizeof(*s));
	if (s)
		s->msg = malloc(sizeof(struct sv_msg) + max);
	int tfd = s && s->msg ? timerfd_create(CLOCK_MONOTONIC,
					       TFD_NONBLOCK | TFD_CLOEXEC) : -1;
	if (tfd < 0 || ((flags & IPCX_INHERIT) && ipcx__set_cloexec(tfd, false) < 0)) {
		r = s && s->msg ? ipcx__fail(-errno, "%s: timerfd_create: %s", u->orig,
					     strerror(errno)) : -ENOMEM;
		ipcx__close_fd(tfd);
		if (s)
			free(s->msg);
		free(s);
		return r;
	}
	ipcx__chan_init(&s->c, &sv_ops, &sv_tran, tfd, max);
	s->id = id;
	s->key = cfg->key;
	s->stype = cfg->stype;
	s->rtype = cfg->rtype;
	s->owner = owner;
	s->cap_ns = (int64_t)cfg->poll_ms * 1000000;
	s->tick_ns = FIRST_TICK_NS;
	/* Readable at first if something waits; else look at the first step. */
	struct msqid_ds ds;
	s->ready = false;
	if (msgctl(id, IPC_STAT, &ds) == 0 && ds.msg_qnum == 0)
		arm(s, s->tick_ns);
	else
		note_message(s);
	*ret = &s->c;
	return 0;
}

static int create_fail(const struct ipcx__url *u, int err)
{
	struct msginfo mi = { 0 };
	if (err == EEXIST)
		return ipcx__fail(-EEXIST, "%s: the queue exists already (listen creates it "
				  "exclusively; dial attaches)", u->orig);
	if (err == ENOSPC) {
		sv_info(&mi);
		return ipcx__fail(-ENOSPC, "%s: /proc/sys/kernel/msgmni (%d) queues exist "
				  "already", u->orig, mi.msgmni);
	}
	return ipcx__fail(-err, "%s: msgget: %s", u->orig, strerror(err));
}

/* qbytes=N: the queue's capacity in bytes, set right after creating it. */
static int set_qbytes(const struct ipcx__url *u, int id)
{
	uint64_t qbytes = ipcx__opt(u, SV_QBYTES);
	if (!qbytes)
		return 0;
	struct msqid_ds ds;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return ipcx__fail(-errno, "%s: msgctl(IPC_STAT): %s", u->orig, strerror(errno));
	ds.msg_qbytes = (msglen_t)qbytes;
	if (msgctl(id, IPC_SET, &ds) == 0)
		return 0;
	if (errno == EPERM) {
		struct msginfo mi = { 0 };
		sv_info(&mi);
		return ipcx__fail(-EPERM, "%s: qbytes=%llu exceeds /proc/sys/kernel/msgmnb (%d);"
				  " raising it needs CAP_SYS_RESOURCE", u->orig,
				  (unsigned long long)qbytes, mi.msgmnb);
	}
	return ipcx__fail(-errno, "%s: msgctl(IPC_SET): %s", u->orig, strerror(errno));
}

static int sv_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct sv_cfg cfg;
	mode_t mode = (mode_t)ipcx__opt(u, SV_MODE);
	bool keep = ipcx__opt(u, SV_KEEP);
	int r = sv_config(u, &cfg);
	if (r)
		return r;
	/* msgget() does not apply the umask: mode is the queue's mode. */
	int id = msgget(cfg.key, IPC_CREAT | IPC_EXCL | (int)mode);
	if (id < 0)
		return create_fail(u, errno);
	if ((r = set_qbytes(u, id)) < 0 || (r = sv_wrap(u, id, &cfg, flags, !keep, ret)) < 0) {
		msgctl(id, IPC_RMID, NULL);
		return r;
	}
	if (!keep) /* a kept queue is meant to outlive us: not an orphan for gc */
		ipcx__record_created(IPCX__OBJ_KEYED(IPCX_OBJ_SYSV_MSG, cfg.key));
	return 0;
}

static int sv_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct sv_cfg cfg;
	mode_t mode = (mode_t)ipcx__opt(u, SV_MODE); /* whom we let write: see ipcx__trust */
	int r = sv_config(u, &cfg);
	if (r)
		return r;
	key_t key = cfg.key;
	/* Asking for mode 0600 makes msgget() check read and write permission. */
	int id = msgget(key, 0600);
	if (id < 0) {
		int e = errno;
		if (e == ENOENT)
			return ipcx__fail(-ENOENT, "%s: no queue with key 0x%08x (is the listener "
					  "up?)", u->orig, (unsigned)key);
		if (e == EACCES)
			return ipcx__fail(-EACCES, "%s: no read and write permission on the queue",
					  u->orig);
		return ipcx__fail(-e, "%s: msgget: %s", u->orig, strerror(e));
	}
	/* Any user may take a key first: a queue we do not trust is not read. */
	struct msqid_ds ds;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return ipcx__fail(-errno, "%s: msgctl(IPC_STAT): %s", u->orig, strerror(errno));
	if ((r = ipcx__trust_ipc(u->orig, &ds.msg_perm, mode)) < 0)
		return r;
	return sv_wrap(u, id, &cfg, flags, false, ret);
}

/*
 * Sleep one step of a deadline wait.  Returns -ETIMEDOUT once the deadline
 * has passed, else 0 (also when a signal cut the sleep short: the caller
 * simply tries again).
 */
static int backoff(int64_t *step, int64_t cap, int64_t deadline)
{
	int64_t now = ipcx__now_ns();
	if (now >= deadline)
		return -ETIMEDOUT;
	int64_t until = now + *step < deadline ? now + *step : deadline;
	struct timespec ts = { until / 1000000000, until % 1000000000 };
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	*step = *step * 2 > cap ? cap : *step * 2;
	return 0;
}

/* The queue went away under us (IPC_RMID): there is no peer any more. */
static int gone(struct sv_chan *s, int err)
{
	if (err == EIDRM || err == EINVAL)
		return ipcx__fail(-EPIPE, "sysvmq:0x%08x: the queue was removed",
				  (unsigned)s->key);
	return -err;
}

static ssize_t sv_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct sv_chan *s = ipcx__container_of(c, struct sv_chan, c);
	int64_t deadline = ipcx__deadline(timeout_ms), step = FIRST_SLEEP_NS;
	int flags = timeout_ms < 0 ? 0 : IPC_NOWAIT;
	s->msg->mtype = s->stype;
	if (len)
		memcpy(s->msg->mtext, msg, len);
	for (;;) {
		if (msgsnd(s->id, s->msg, len, flags) == 0) {
			s->sent++;
			return (ssize_t)len;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return gone(s, errno);
		if (timeout_ms == 0)
			return -EAGAIN;
		int r = backoff(&step, s->cap_ns, deadline);
		if (r)
			return r;
	}
}

static ssize_t sv_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct sv_chan *s = ipcx__container_of(c, struct sv_chan, c);
	int64_t deadline = ipcx__deadline(timeout_ms), step = FIRST_SLEEP_NS;
	int flags = timeout_ms < 0 ? 0 : IPC_NOWAIT;
	size_t want = cap < c->max_msg ? cap : c->max_msg;
	for (;;) {
		ssize_t n = msgrcv(s->id, s->msg, want, s->rtype, flags);
		if (n >= 0) {
			memcpy(buf, s->msg->mtext, (size_t)n);
			s->received++;
			note_message(s);
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno == E2BIG) {
			/* Without MSG_NOERROR the message stays in the queue. */
			note_message(s);
			return ipcx__fail(-EMSGSIZE, "the next message is larger than %zu bytes",
					  want);
		}
		if (errno != ENOMSG && errno != EAGAIN)
			return gone(s, errno);
		if (timeout_ms == 0 || ipcx__now_ns() >= deadline) {
			note_empty(s);
			return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
		}
		backoff(&step, s->cap_ns, deadline);
	}
}

static int sv_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	struct sv_chan *s = ipcx__container_of(c, struct sv_chan, c);
	struct msqid_ds ds;
	if (msgctl(s->id, IPC_STAT, &ds) < 0)
		return gone(s, errno);
	*ret = (struct ipcx_stats){ .sent = s->sent, .received = s->received,
				    .depth = ds.msg_qnum };
	return 0;
}

static int sv_close(ipcx_chan *c)
{
	struct sv_chan *s = ipcx__container_of(c, struct sv_chan, c);
	int r = 0;
	if (s->owner) {
		if (msgctl(s->id, IPC_RMID, NULL) < 0)
			r = -errno;
		ipcx__record_removed(IPCX__OBJ_KEYED(IPCX_OBJ_SYSV_MSG, s->key));
	}
	ipcx__close_fd(c->fd);
	free(s->msg);
	free(s);
	return r;
}

static const struct ipcx__chan_ops sv_ops = {
	.send = sv_send,
	.recv = sv_recv,
	.stats = sv_stats,
	.close = sv_close,
};

static const struct ipcx_tran sv_tran = {
	.scheme = "sysvmq",
	.options = sv_options,
	.listen = sv_listen,
	.dial = sv_dial,
};

const struct ipcx_tran *const ipcx__trans_sysvmq[] = { &sv_tran, NULL };
