/*
 * mq:/name — a POSIX message queue.
 *
 * The payload goes into the queue exactly as given, with no header of ours,
 * so a program that calls mq_send()/mq_receive() itself talks to an ipcx
 * channel in both directions.  The kernel keeps message boundaries and hands
 * out the highest priority first (FIFO within one priority).
 *
 * On Linux an mqd_t is a descriptor that poll() understands (POLLIN while a
 * message waits, POLLOUT while there is room).  A channel holds the queue
 * open twice: a non-blocking descriptor, for poll() and for every wait with
 * a deadline (poll() with a CLOCK_MONOTONIC deadline: mq_timedsend()'s
 * CLOCK_REALTIME deadline would move with the wall clock), and a blocking
 * one for waits without a deadline, which then cost one system call, as a
 * plain mq_send()/mq_receive() does, instead of try, poll, try again.
 *
 * mq_receive() refuses a buffer smaller than the queue's message size.  When
 * the caller's buffer is that small we receive into a buffer of our own; a
 * message that then does not fit the caller stays there (the channel is
 * `buffered`) and the next receive with room returns it, so -EMSGSIZE never
 * loses a message.
 *
 * Limits (per IPC namespace, /proc/sys/fs/mqueue): msg_max (depth) and
 * msgsize_max bind unprivileged creators; CAP_SYS_RESOURCE raises them to
 * the kernel's hard limits (65536 messages, 16 MiB).  queues_max caps the
 * number of queues, and RLIMIT_MSGQUEUE the bytes a user's queues may hold.
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
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MQ_HARD_MSGMAX  65536L              /* kernel HARD_MSGMAX */
#define MQ_HARD_SIZEMAX (16L * 1024 * 1024) /* kernel HARD_MSGSIZEMAX */
#define MQ_PRIO_LIMIT   32768L              /* priorities are 0 .. 32767 */

struct mq_chan {
	struct ipcx_chan c;
	mqd_t mqd;      /* non-blocking */
	mqd_t bmqd;     /* blocking, the same queue; (mqd_t)-1 if none */
	unsigned prio;  /* priority of sends */
	bool owner;     /* created by this listener: unlink on close */
	char *held;     /* our receive buffer (mq_msgsize bytes), or NULL */
	ssize_t heldlen; /* length of the message waiting in held, or -1 */
	uint64_t sent, received;
	char name[NAME_MAX + 2];
};

/* max= is msgsize= by its common name; maxmsg and msgsize default to /proc's. */
enum { MQ_MAXMSG, MQ_MSGSIZE, MQ_MAX, MQ_PRIO, MQ_MODE, MQ_KEEP, MQ_NOPTS };
static const struct ipcx__opt mq_options[MQ_NOPTS + 1] = {
	[MQ_MAXMSG] = IPCX__UINT("maxmsg", 1, MQ_HARD_MSGMAX, 10),
	[MQ_MSGSIZE] = IPCX__UINT("msgsize", 1, MQ_HARD_SIZEMAX, 8192),
	[MQ_MAX] = IPCX__UINT("max", 1, MQ_HARD_SIZEMAX, 8192),
	[MQ_PRIO] = IPCX__UINT("prio", 0, MQ_PRIO_LIMIT - 1, 0),
	[MQ_MODE] = IPCX__MODE("mode", 0600),
	[MQ_KEEP] = IPCX__BOOL("keep", false),
};

/* A value from /proc/sys/fs/mqueue, or -1 if it cannot be read. */
static long mq_limit(const char *leaf)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/sys/fs/mqueue/%s", leaf);
	FILE *f = fopen(path, "re");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* "mq:/name": one slash, then 1 .. NAME_MAX bytes without another slash. */
static int mq_name(const struct ipcx__url *u, char *name)
{
	const char *b = u->body;
	size_t n = strlen(b);
	if (b[0] != '/' || n < 2 || strchr(b + 1, '/'))
		return ipcx__fail(-EINVAL, "%s: want mq:/name (one leading '/', no other)",
				  u->orig);
	if (n - 1 > NAME_MAX)
		return ipcx__fail(-EINVAL, "%s: queue name longer than %d bytes",
				  u->orig, NAME_MAX);
	if (!strcmp(b, "/.") || !strcmp(b, "/.."))
		return ipcx__fail(-EINVAL, "%s: '.' and '..' are not queue names", u->orig);
	memcpy(name, b, n + 1);
	return 0;
}

/*
 * mq_open() failed while creating: say which limit was hit and where it is
 * set, since the kernel's EINVAL / EMFILE / ENOSPC do not.
 */
static int create_fail(const struct ipcx__url *u, int err, const struct mq_attr *a)
{
	long msg_max = mq_limit("msg_max"), size_max = mq_limit("msgsize_max");
	switch (err) {
	case EEXIST:
		return ipcx__fail(-EEXIST, "%s: the queue exists already (listen creates it "
				  "exclusively; dial attaches)", u->orig);
	case EINVAL:
		if (a->mq_maxmsg > msg_max)
			return ipcx__fail(-EINVAL, "%s: maxmsg=%ld exceeds /proc/sys/fs/mqueue/"
					  "msg_max (%ld); CAP_SYS_RESOURCE allows up to %ld",
					  u->orig, a->mq_maxmsg, msg_max, MQ_HARD_MSGMAX);
		if (a->mq_msgsize > size_max)
			return ipcx__fail(-EINVAL, "%s: msgsize=%ld exceeds /proc/sys/fs/mqueue/"
					  "msgsize_max (%ld); CAP_SYS_RESOURCE allows up to %ld",
					  u->orig, a->mq_msgsize, size_max, MQ_HARD_SIZEMAX);
		return ipcx__fail(-EINVAL, "%s: the kernel refused maxmsg=%ld msgsize=%ld",
				  u->orig, a->mq_maxmsg, a->mq_msgsize);
	case EMFILE: {
		struct rlimit rl;
		getrlimit(RLIMIT_MSGQUEUE, &rl);
		return ipcx__fail(-EMFILE, "%s: maxmsg=%ld x msgsize=%ld (plus kernel overhead) "
				  "does not fit the bytes left under RLIMIT_MSGQUEUE (%llu), or "
				  "the process is out of descriptors", u->orig, a->mq_maxmsg,
				  a->mq_msgsize, (unsigned long long)rl.rlim_cur);
	}
	case ENOSPC:
		return ipcx__fail(-ENOSPC, "%s: /proc/sys/fs/mqueue/queues_max (%ld) queues "
				  "exist already", u->orig, mq_limit("queues_max"));
	case ENOSYS:
		return ipcx__fail(-ENOSYS, "%s: this kernel has no POSIX message queues",
				  u->orig);
	default:
		return ipcx__fail(-err, "%s: mq_open: %s", u->orig, strerror(err));
	}
}

static const struct ipcx__chan_ops mq_ops;
static const struct ipcx_tran mq_tran;

/*
 * The blocking descriptor: the queue opened again by name, and checked to
 * be the same queue (the name could have been replaced meanwhile).  Without
 * it the channel still works, through poll().
 */
static mqd_t open_blocking(const char *name, mqd_t mqd, unsigned flags)
{
	mqd_t b = mq_open(name, O_RDWR);
	struct stat s1, s2;
	if (b == (mqd_t)-1)
		return b;
	if (fstat(mqd, &s1) < 0 || fstat(b, &s2) < 0 || s1.st_ino != s2.st_ino ||
	    s1.st_dev != s2.st_dev ||
	    ((flags & IPCX_INHERIT) && ipcx__set_cloexec(b, false) < 0)) {
		mq_close(b);
		return (mqd_t)-1;
	}
	return b;
}

/* Wrap an open queue in a channel. */
static int mq_wrap(const struct ipcx__url *u, mqd_t mqd, unsigned flags, bool owner,
		   const char *name, ipcx_chan **ret)
{
	struct mq_attr a;
	uint64_t prio = ipcx__opt(u, MQ_PRIO);
	int r;
	if (mq_getattr(mqd, &a) < 0)
		return ipcx__fail(-errno, "%s: mq_getattr: %s", u->orig, strerror(errno));
	/* The kernel makes every queue descriptor close-on-exec. */
	if ((flags & IPCX_INHERIT) && (r = ipcx__set_cloexec(mqd, false)) < 0)
		return r;
	struct mq_chan *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	ipcx__chan_init(&m->c, &mq_ops, &mq_tran, mqd, (size_t)a.mq_msgsize);
	m->c.buffered = true;
	m->mqd = mqd;
	m->bmqd = open_blocking(name, mqd, flags);
	m->prio = (unsigned)prio;
	m->owner = owner;
	m->heldlen = -1;
	snprintf(m->name, sizeof(m->name), "%s", name);
	*ret = &m->c;
	return 0;
}

static int mq_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	char name[NAME_MAX + 2];
	mode_t mode = (mode_t)ipcx__opt(u, MQ_MODE);
	bool keep = ipcx__opt(u, MQ_KEEP);
	uint64_t maxmsg = ipcx__opt(u, MQ_MAXMSG), msgsize = ipcx__opt(u, MQ_MSGSIZE);
	/* Defaults: what an unprivileged user may create out of the box. */
	long lim;
	if (!ipcx__opt_set(u, MQ_MAXMSG) && (lim = mq_limit("msg_default")) > 0)
		maxmsg = (uint64_t)lim;
	if (!ipcx__opt_set(u, MQ_MSGSIZE) && (lim = mq_limit("msgsize_default")) > 0)
		msgsize = (uint64_t)lim;
	if (ipcx__opt_set(u, MQ_MAX))
		msgsize = ipcx__opt(u, MQ_MAX);
	int r = mq_name(u, name);
	if (!r && ipcx__opt_set(u, MQ_MSGSIZE) && ipcx__opt_set(u, MQ_MAX))
		r = ipcx__fail(-EINVAL, "%s: give msgsize or max, not both", u->orig);
	if (r)
		return r;

	struct mq_attr a = { .mq_maxmsg = (long)maxmsg, .mq_msgsize = (long)msgsize };
	mqd_t mqd = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, mode, &a);
	if (mqd == (mqd_t)-1)
		return create_fail(u, errno, &a);
	/* mq_open() applies the umask; an explicit mode is meant as given. */
	if (ipcx__opt_set(u, MQ_MODE) && fchmod(mqd, mode) < 0) {
		r = ipcx__fail(-errno, "%s: fchmod: %s", u->orig, strerror(errno));
		goto fail;
	}
	if ((r = mq_wrap(u, mqd, flags, !keep, name, ret)) < 0)
		goto fail;
	if (!keep) /* a kept queue is meant to outlive us: not an orphan for gc */
		ipcx__record_created(IPCX__OBJ_NAMED(IPCX_OBJ_POSIX_MQ, name));
	return 0;
fail:
	mq_close(mqd);
	mq_unlink(name);
	return r;
}

static int mq_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	char name[NAME_MAX + 2];
	mode_t mode = (mode_t)ipcx__opt(u, MQ_MODE); /* whom we let write: see ipcx__trust */
	int r = mq_name(u, name);
	if (r)
		return r;
	mqd_t mqd = mq_open(name, O_RDWR | O_NONBLOCK);
	if (mqd == (mqd_t)-1) {
		int e = errno;
		if (e == ENOENT)
			return ipcx__fail(-ENOENT, "%s: no such queue (is the listener up?)", u->orig);
		if (e == EACCES)
			return ipcx__fail(-EACCES, "%s: no read and write permission on the queue",
					  u->orig);
		return ipcx__fail(-e, "%s: mq_open: %s", u->orig, strerror(e));
	}
	/*
	 * Anyone may create a name in the queues' name space first: messages
	 * that someone we do not trust could have put in are not taken.
	 */
	if ((r = ipcx__trust_fd(u->orig, mqd, mode)) < 0 ||
	    (r = mq_wrap(u, mqd, flags, false, name, ret)) < 0)
		mq_close(mqd);
	return r;
}

/*
 * After a send or receive on the queue failed with errno: 0 to try again
 * (interrupted, or the queue turned ready for events before the deadline),
 * else the negative errno to return.
 */
static int after_failure(struct mq_chan *m, short events, int timeout_ms, int64_t deadline)
{
	if (errno == EINTR)
		return 0;
	if (errno != EAGAIN)
		return -errno;
	if (timeout_ms == 0)
		return -EAGAIN;
	int r = ipcx__wait_fd(m->mqd, events, deadline);
	return r < 0 ? r : 0;
}

static ssize_t mq_send_(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct mq_chan *m = ipcx__container_of(c, struct mq_chan, c);
	int64_t deadline = ipcx__deadline(timeout_ms);
	mqd_t q = timeout_ms < 0 && m->bmqd != (mqd_t)-1 ? m->bmqd : m->mqd;
	for (;;) {
		if (mq_send(q, msg, len, m->prio) == 0) {
			m->sent++;
			return (ssize_t)len;
		}
		int r = after_failure(m, POLLOUT, timeout_ms, deadline);
		if (r < 0)
			return r;
	}
}

/* Hand the held message to the caller, if it fits. */
static ssize_t give_held(struct mq_chan *m, void *buf, size_t cap)
{
	size_t n = (size_t)m->heldlen;
	if (n > cap)
		return ipcx__fail(-EMSGSIZE, "a message of %zu bytes waits; the buffer has %zu",
				  n, cap);
	memcpy(buf, m->held, n);
	m->heldlen = -1;
	m->received++;
	ipcx__chan_pending(&m->c, false);
	return (ssize_t)n;
}

/* One receive on q: straight into buf if it is large enough. */
static ssize_t recv_once(struct mq_chan *m, mqd_t q, void *buf, size_t cap)
{
	if (cap >= m->c.max_msg) {
		ssize_t n = mq_receive(q, buf, cap, NULL);
		m->received += n >= 0;
		return n;
	}
	if (!m->held && !(m->held = malloc(m->c.max_msg)))
		return -1; /* errno is ENOMEM */
	ssize_t n = mq_receive(q, m->held, m->c.max_msg, NULL);
	if (n < 0)
		return n;
	m->heldlen = n;
	ipcx__chan_pending(&m->c, true);
	return give_held(m, buf, cap);
}

static ssize_t mq_recv_(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct mq_chan *m = ipcx__container_of(c, struct mq_chan, c);
	if (m->heldlen >= 0)
		return give_held(m, buf, cap);
	int64_t deadline = ipcx__deadline(timeout_ms);
	mqd_t q = timeout_ms < 0 && m->bmqd != (mqd_t)-1 ? m->bmqd : m->mqd;
	for (;;) {
		ssize_t n = recv_once(m, q, buf, cap);
		if (n >= 0 || n == -EMSGSIZE)
			return n;
		int r = after_failure(m, POLLIN, timeout_ms, deadline);
		if (r < 0)
			return r;
	}
}

static int mq_stats_(ipcx_chan *c, struct ipcx_stats *ret)
{
	struct mq_chan *m = ipcx__container_of(c, struct mq_chan, c);
	struct mq_attr a;
	if (mq_getattr(m->mqd, &a) < 0)
		return -errno;
	*ret = (struct ipcx_stats){ .sent = m->sent, .received = m->received,
				    .depth = (uint64_t)a.mq_curmsgs + (m->heldlen >= 0) };
	return 0;
}

static int mq_close_(ipcx_chan *c)
{
	struct mq_chan *m = ipcx__container_of(c, struct mq_chan, c);
	int r = 0;
	mq_close(m->mqd);
	if (m->bmqd != (mqd_t)-1)
		mq_close(m->bmqd);
	if (m->owner) {
		if (mq_unlink(m->name) < 0)
			r = -errno;
		ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_POSIX_MQ, m->name));
	}
	free(m->held);
	free(m);
	return r;
}

static const struct ipcx__chan_ops mq_ops = {
	.send = mq_send_,
	.recv = mq_recv_,
	.stats = mq_stats_,
	.close = mq_close_,
};

static const struct ipcx_tran mq_tran = {
	.scheme = "mq",
	.options = mq_options,
	.listen = mq_listen,
	.dial = mq_dial,
};

const struct ipcx_tran *const ipcx__trans_mq[] = { &mq_tran, NULL };
