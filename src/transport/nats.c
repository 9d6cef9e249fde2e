/*
 * nats://HOST:PORT[,HOST:PORT...]/SUBJECT — a subject on a NATS server or
 * cluster, through nats.c (Debian's libnats3.4), loaded at run time.
 *
 *   dial + send     publishes to SUBJECT
 *   listen + recv   subscribes to SUBJECT (wildcards * and > allowed)
 *   ?queue=GROUP    listeners of one group share the messages, each to one
 *   ?stream=NAME    JetStream: stored, at-least-once (docs/nats.md)
 *
 * Why run-time loading: libipcx must load and work on a machine without
 * libnats, so it has no link-time dependency on it.  The first nats:// URL
 * dlopen()s "libnats.so.3.4" (IPCX_NATS_LIBRARY overrides the name) and
 * takes every function it uses into a table typed from <nats/nats.h>, so a
 * call through the table is checked by the compiler like a direct one.
 * Without the library, or when the build had no <nats/nats.h>, the scheme
 * is -EPROTONOSUPPORT with a detail that names the package to install.
 *
 * nats.c delivers messages on threads of its own.  A listener's callback
 * moves each one into a bounded queue of ours and keeps an eventfd readable
 * while the queue holds anything, so the channel has a level-triggered
 * descriptor like every other.  Whatever the queue cannot take, or what the
 * server or a failover may have lost, becomes a marker in the queue that
 * ipcx_recv() returns as an error in its place (-ENOBUFS, -EMSGSIZE,
 * -ECONNRESET), never a silent drop.  docs/nats.md has the whole contract.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/tran.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NATS names (a queue group, a stream) are at most this long, checked below. */
#define NATS_NAME_MAX 64

/* docs/nats.md has what each means; max=0 (the default) is the server's max_payload. */
enum {
	NO_MAX, NO_QUEUE, NO_STREAM, NO_PENDING, NO_PENDING_BYTES, NO_ACK_WAIT, NO_TIMEOUT,
	NO_RECONNECT, NO_RECONNECT_WAIT, NO_RECONNECT_BUF, NO_REPLY, NO_IDLE, NO_NOPTS
};
static const struct ipcx__opt nats_options[NO_NOPTS + 1] = {
	[NO_MAX] = IPCX__UINT("max", 1, INT32_MAX, 0),
	[NO_QUEUE] = IPCX__STR("queue", 1, NATS_NAME_MAX - 1),
	[NO_STREAM] = IPCX__STR("stream", 1, NATS_NAME_MAX - 1),
	[NO_PENDING] = IPCX__UINT("pending", 1, INT32_MAX, 65536),
	[NO_PENDING_BYTES] = IPCX__UINT("pending_bytes", 1, INT32_MAX, 64u << 20),
	[NO_ACK_WAIT] = IPCX__UINT("ack_wait", 1, INT32_MAX, 30000),
	[NO_TIMEOUT] = IPCX__UINT("timeout", 1, INT32_MAX, 10000),
	[NO_RECONNECT] = IPCX__UINT("reconnect", 0, INT32_MAX, 60),
	[NO_RECONNECT_WAIT] = IPCX__UINT("reconnect_wait", 1, INT32_MAX, 250),
	[NO_RECONNECT_BUF] = IPCX__UINT("reconnect_buf", 0, INT32_MAX, 8u << 20),
	[NO_REPLY] = IPCX__BOOL("reply", false),
	[NO_IDLE] = IPCX__UINT("idle", 1, INT32_MAX, 600000),
};

#ifndef IPCX_HAVE_NATS

/* Built without <nats/nats.h>: the scheme exists and says what to do. */
static int nats_absent(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	(void)flags;
	(void)ret;
	return ipcx__fail(-EPROTONOSUPPORT, "%s: this libipcx was built without NATS support "
			  "(no <nats/nats.h>): install Debian's libnats-dev and rebuild", u->orig);
}

static const struct ipcx_tran nats_tran = {
	.scheme = "nats", .options = nats_options, .listen = nats_absent, .dial = nats_absent,
};

#else /* IPCX_HAVE_NATS */

#include <ctype.h>
#include <dlfcn.h>
#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static const struct ipcx_tran nats_tran;

/* ---- libnats, loaded on first use ----------------------------------------- */

#define NATS_LIBRARY "libnats.so.3.4"
#define NATS_PACKAGE "libnats3.4"

/* Every nats.c function the transport calls: the table is made from this. */
#define NATS_FUNCS(X)                                                                  \
	X(nats_Open) X(nats_GetVersion) X(nats_GetLastError) X(natsStatus_GetText)        \
	X(natsOptions_Create) X(natsOptions_Destroy) X(natsOptions_SetServers)            \
	X(natsOptions_SetNoRandomize) X(natsOptions_SetTimeout)                           \
	X(natsOptions_SetMaxReconnect) X(natsOptions_SetReconnectWait)                    \
	X(natsOptions_SetReconnectJitter) X(natsOptions_SetReconnectBufSize)              \
	X(natsOptions_SetSendAsap) X(natsOptions_SetClosedCB)                             \
	X(natsOptions_SetErrorHandler) X(natsOptions_SetReconnectedCB)                    \
	X(natsConnection_Connect) X(natsConnection_Close) X(natsConnection_Destroy)      \
	X(natsConnection_Publish) X(natsConnection_FlushTimeout)                          \
	X(natsConnection_GetMaxPayload) X(natsConnection_Status)                          \
	X(natsConnection_GetStats) X(natsConnection_GetConnectedUrl)                      \
	X(natsConnection_GetLastError) X(natsConnection_Subscribe)                        \
	X(natsConnection_QueueSubscribe) X(natsSubscription_SetPendingLimits)             \
	X(natsSubscription_GetDropped) X(natsSubscription_GetPending)                     \
	X(natsSubscription_SetOnCompleteCB) X(natsSubscription_Unsubscribe)               \
	X(natsSubscription_Destroy) X(natsStatistics_Create) X(natsStatistics_Destroy)    \
	X(natsStatistics_GetCounts) X(natsMsg_GetData) X(natsMsg_GetDataLength)          \
	X(natsMsg_Destroy) X(natsMsg_Ack) X(natsMsg_Term) X(natsInbox_Create)             \
	X(natsInbox_Destroy) X(natsConnection_JetStream) X(jsCtx_Destroy)                 \
	X(jsOptions_Init) X(jsStreamConfig_Init) X(js_AddStream) X(jsStreamInfo_Destroy) \
	X(jsConsumerConfig_Init) X(js_AddConsumer) X(jsConsumerInfo_Destroy)              \
	X(jsSubOptions_Init) X(js_Subscribe) X(jsPubOptions_Init) X(js_Publish)           \
	X(jsPubAck_Destroy) X(natsConnection_PublishRequest) X(natsConnection_PublishMsg)  \
	X(natsMsg_Create) X(natsMsgHeader_Set) X(natsMsgHeader_Get) X(natsMsg_GetReply)    \
	X(natsMsg_GetSubject) X(natsMsg_IsNoResponders)

#define NATS_MEMBER(f) __typeof__(f) *f;
static struct {
	NATS_FUNCS(NATS_MEMBER)
} nl;

static pthread_once_t nl_once = PTHREAD_ONCE_INIT;
static int nl_err;            /* 0 once loaded, else the error of every use */
static char nl_why[400];      /* what went wrong, for every later failure */
static atomic_bool nl_forked; /* this process was forked after nats.c started */

/*
 * nats.c's own threads (timers, the connection events it reports through
 * callbacks) do not exist in a child forked after it started; the child's
 * connections still send and receive, on threads they make themselves.  We
 * note the fork so that a child's receive does not wait for a callback that
 * cannot come (see wait_queue).
 */
static void nl_after_fork(void)
{
	atomic_store(&nl_forked, true);
}

static void *nl_sym(void *h, const char *name)
{
	void *p = dlsym(h, name);
	if (!p && !nl_err) {
		nl_err = -EPROTONOSUPPORT;
		snprintf(nl_why, sizeof(nl_why), "the NATS library lacks %s (ipcx wants nats.c "
			 "%d.%d, as Debian's %s)", name, NATS_VERSION_MAJOR, NATS_VERSION_MINOR,
			 NATS_PACKAGE);
	}
	return p;
}

/* The library's version must be the one whose header typed the table. */
static void nl_check_version(void)
{
	char want[16];
	snprintf(want, sizeof(want), "%d.%d.", NATS_VERSION_MAJOR, NATS_VERSION_MINOR);
	const char *v = nl.nats_GetVersion();
	if (!v || strncmp(v, want, strlen(want)) != 0) {
		nl_err = -EPROTONOSUPPORT;
		snprintf(nl_why, sizeof(nl_why), "the NATS library is version %s; ipcx was built "
			 "for nats.c %d.%d (Debian's %s)", v ? v : "unknown", NATS_VERSION_MAJOR,
			 NATS_VERSION_MINOR, NATS_PACKAGE);
	}
}

static void nl_load(void)
{
	const char *name = secure_getenv("IPCX_NATS_LIBRARY");
	if (!name || !*name)
		name = NATS_LIBRARY;
	/* Never unloaded: nats.c's threads run its code until the process ends. */
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		nl_err = -EPROTONOSUPPORT;
		snprintf(nl_why, sizeof(nl_why), "NATS needs the nats.c library, which is not "
			 "installed (%s): install Debian's %s (apt-get install %s)", dlerror(),
			 NATS_PACKAGE, NATS_PACKAGE);
		return;
	}
#define NATS_LOOKUP(f) nl.f = (__typeof__(f) *)nl_sym(h, #f);
	NATS_FUNCS(NATS_LOOKUP)
	if (!nl_err)
		nl_check_version();
	if (nl_err)
		return;
	/*
	 * nats_Open() sets SIGPIPE to SIG_IGN for the whole process; nats.c
	 * sends with MSG_NOSIGNAL and needs no such thing, and the caller's
	 * disposition is not ours to change: put it back.
	 */
	struct sigaction old;
	sigaction(SIGPIPE, NULL, &old);
	natsStatus s = nl.nats_Open(-1);
	sigaction(SIGPIPE, &old, NULL);
	if (s != NATS_OK) {
		nl_err = -EIO;
		snprintf(nl_why, sizeof(nl_why), "nats.c failed to start: %s",
			 nl.natsStatus_GetText(s));
		return;
	}
	pthread_atfork(NULL, NULL, nl_after_fork);
}

static int nl_ready(const struct ipcx__url *u)
{
	pthread_once(&nl_once, nl_load);
	return nl_err ? ipcx__fail(nl_err, "%s: %s", u->orig, nl_why) : 0;
}

/* ---- errors ---------------------------------------------------------------- */

static int status_errno(natsStatus s)
{
	switch (s) {
	case NATS_TIMEOUT:
	case NATS_STALE_CONNECTION:
		return -ETIMEDOUT;
	case NATS_NO_SERVER:
		return -ECONNREFUSED;
	case NATS_CONNECTION_CLOSED:
	case NATS_DRAINING:
		return -EPIPE;
	case NATS_CONNECTION_DISCONNECTED:
		return -ENOTCONN;
	case NATS_CONNECTION_AUTH_FAILED:
	case NATS_NOT_PERMITTED:
		return -EACCES;
	case NATS_MAX_PAYLOAD:
		return -EMSGSIZE;
	case NATS_SLOW_CONSUMER:
	case NATS_INSUFFICIENT_BUFFER:
		return -ENOBUFS;
	case NATS_NO_MEMORY:
		return -ENOMEM;
	case NATS_NOT_FOUND:
		return -ENOENT;
	case NATS_NO_SERVER_SUPPORT:
		return -EOPNOTSUPP;
	case NATS_INVALID_SUBJECT:
	case NATS_INVALID_ARG:
	case NATS_INVALID_QUEUE_NAME:
	case NATS_INVALID_TIMEOUT:
	case NATS_ILLEGAL_STATE:
		return -EINVAL;
	case NATS_PROTOCOL_ERROR:
	case NATS_SECURE_CONNECTION_WANTED:
	case NATS_SECURE_CONNECTION_REQUIRED:
	case NATS_SSL_ERROR:
		return -EPROTO;
	case NATS_NO_RESPONDERS:
		return -EHOSTUNREACH;
	default:
		return -EIO;
	}
}

/* JetStream's own codes, where they say more than the status. */
static int js_errno(natsStatus s, jsErrCode e)
{
	switch ((int)e) {
	case JSNotEnabledErr:
	case JSNotEnabledForAccountErr:
		return -EOPNOTSUPP;
	case JSStreamNotFoundErr:
	case JSConsumerNotFoundErr:
		return -ENOENT;
	case JSStreamSubjectOverlapErr:
		return -EEXIST;
	case JSInsufficientResourcesErr:
	case JSStorageResourcesExceededErr:
	case JSMemoryResourcesExceededErr:
		return -ENOSPC;
	default:
		return status_errno(s);
	}
}

/*
 * nats.c's last error text in this thread, without the place in its source
 * it starts with ("(conn.c:2088): No server available ...").
 */
static const char *last_error(void)
{
	natsStatus ls;
	const char *t = nl.nats_GetLastError(&ls);
	if (t && t[0] == '(') {
		const char *end = strstr(t, "): ");
		if (end)
			t = end + 3;
	}
	return t ? t : "";
}

/* Fail with err and a detail: URL, what we did, nats.c's words for it. */
static int nfail(int err, const char *url, const char *what, natsStatus s)
{
	const char *last = last_error(), *text = nl.natsStatus_GetText(s);
	bool more = *last && strcmp(last, text) != 0;
	return ipcx__fail(err, "%s: %s: %s%s%s%s", url, what, text, more ? " (" : "",
			  more ? last : "", more ? ")" : "");
}

/* ---- the URL ------------------------------------------------------------------ */

#define MAX_SERVERS 16
#define SUBJECT_MAX 256

struct nopts {
	char *servers[MAX_SERVERS]; /* "nats://host:port", in one allocation */
	int nservers;
	char subject[SUBJECT_MAX];
	const char *queue, *stream;
	size_t max_msg;            /* 0: the server's max payload */
	uint64_t pending, pending_bytes, ack_wait_ms, timeout_ms;
	uint64_t reconnect, reconnect_wait_ms, reconnect_buf;
	bool reply;                /* dial: an inbox of its own, for what is sent back */
	uint64_t idle_ms;          /* IPCX_ACCEPT: a peer silent this long is forgotten */
	char *block;               /* what servers[] points into */
};

static void opts_free(struct nopts *o)
{
	free(o->block);
	o->block = NULL;
}

/* One server of the list: host:port, [v6]:port; written as nats://... */
static int parse_server(const struct ipcx__url *u, const char *s, size_t n, char *out,
			size_t cap)
{
	struct ipcx__url one;
	char host[256];
	uint16_t port;
	memset(&one, 0, sizeof(one));
	one.orig = u->orig;
	if (n == 0 || n >= sizeof(one.buf))
		return ipcx__fail(-EINVAL, "%s: an empty server in the list (want host:port,...)",
				  u->orig);
	memcpy(one.buf, s, n);
	one.buf[n] = '\0';
	one.body = one.buf;
	int r = ipcx__url_hostport(&one, host, sizeof(host), &port);
	if (r < 0)
		return r;
	if (port == 0)
		return ipcx__fail(-EINVAL, "%s: port 0: a NATS server has a port of its own", u->orig);
	snprintf(out, cap, strchr(host, ':') ? "nats://[%s]:%u" : "nats://%s:%u", host, port);
	return 0;
}

static int parse_servers(const struct ipcx__url *u, const char *list, size_t len,
			 struct nopts *o)
{
	size_t each = 300;
	o->block = malloc(each * MAX_SERVERS);
	if (!o->block)
		return -ENOMEM;
	for (size_t i = 0; i <= len; o->nservers++) {
		if (o->nservers == MAX_SERVERS)
			return ipcx__fail(-EINVAL, "%s: more than %d servers", u->orig, MAX_SERVERS);
		const char *comma = memchr(list + i, ',', len - i);
		size_t n = comma ? (size_t)(comma - (list + i)) : len - i;
		char *out = o->block + each * (size_t)o->nservers;
		int r = parse_server(u, list + i, n, out, each);
		if (r < 0)
			return r;
		o->servers[o->nservers] = out;
		i += n + 1;
	}
	return 0;
}

/*
 * A subject is dot-separated tokens of printable characters.  '*' (one
 * token) and '>' (the rest, last token only) are wildcards: a listener may
 * use them, a publisher may not.
 */
static int check_subject(const char *url, const char *s, bool listen)
{
	size_t n = strlen(s);
	if (n == 0)
		return ipcx__fail(-EINVAL, "%s: no subject (want nats://host:port/subject)", url);
	if (n >= SUBJECT_MAX)
		return ipcx__fail(-EINVAL, "%s: subject longer than %d bytes", url,
				  SUBJECT_MAX - 1);
	const char *tok = s;
	for (const char *p = s;; p++) {
		if (*p != '.' && *p != '\0') {
			if (isspace((unsigned char)*p))
				return ipcx__fail(-EINVAL, "%s: a subject has no blanks", url);
			continue;
		}
		size_t tl = (size_t)(p - tok);
		if (tl == 0)
			return ipcx__fail(-EINVAL, "%s: subject '%s' has an empty token", url, s);
		bool star = tl == 1 && *tok == '*', gt = tl == 1 && *tok == '>';
		if ((star || gt) && !listen)
			return ipcx__fail(-EINVAL, "%s: wildcards (* and >) are for listening; a "
					  "message goes to one subject", url);
		if (gt && *p != '\0')
			return ipcx__fail(-EINVAL, "%s: '>' must be the last token", url);
		if (*p == '\0')
			return 0;
		tok = p + 1;
	}
}

/* A queue group, stream or durable name: no blanks, dots or wildcards. */
static int check_name(const struct ipcx__url *u, const char *key, const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n >= NATS_NAME_MAX)
		return ipcx__fail(-EINVAL, "%s: option %s: want 1 to %d characters", u->orig, key,
				  NATS_NAME_MAX - 1);
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return ipcx__fail(-EINVAL, "%s: option %s: '%s': letters, digits, - and _ only",
					  u->orig, key, v);
	return 0;
}

/* The options, parsed by the core against nats_options; the names checked here. */
static int parse_options(const struct ipcx__url *u, struct nopts *o)
{
	int r;
	o->queue = ipcx__opt_str(u, NO_QUEUE);
	o->stream = ipcx__opt_str(u, NO_STREAM);
	if ((o->queue && (r = check_name(u, "queue", o->queue)) < 0) ||
	    (o->stream && (r = check_name(u, "stream", o->stream)) < 0))
		return r;
	o->max_msg = (size_t)ipcx__opt(u, NO_MAX);
	o->pending = ipcx__opt(u, NO_PENDING);
	o->pending_bytes = ipcx__opt(u, NO_PENDING_BYTES);
	o->ack_wait_ms = ipcx__opt(u, NO_ACK_WAIT);
	o->timeout_ms = ipcx__opt(u, NO_TIMEOUT);
	o->reconnect = ipcx__opt(u, NO_RECONNECT);
	o->reconnect_wait_ms = ipcx__opt(u, NO_RECONNECT_WAIT);
	o->reconnect_buf = ipcx__opt(u, NO_RECONNECT_BUF);
	o->idle_ms = ipcx__opt(u, NO_IDLE);
	o->reply = ipcx__opt(u, NO_REPLY);
	if (o->reply && o->stream)
		return ipcx__fail(-EINVAL, "%s: reply= is for core NATS, not a stream", u->orig);
	return 0;
}

static int parse(const struct ipcx__url *u, bool listen, struct nopts *o)
{
	memset(o, 0, sizeof(*o));
	const char *slash = strchr(u->body, '/');
	if (!slash)
		return ipcx__fail(-EINVAL, "%s: want nats://host:port[,host:port...]/subject",
				  u->orig);
	int r = parse_servers(u, u->body, (size_t)(slash - u->body), o);
	if (r < 0)
		return r;
	snprintf(o->subject, sizeof(o->subject), "%s", slash + 1);
	if ((r = check_subject(u->orig, slash + 1, listen)) < 0)
		return r;
	return parse_options(u, o);
}

/* ---- the queue a listener's callbacks fill ------------------------------------- */

/* What a receive can find: a message, or a marker that stands for a loss. */
enum mark {
	M_MSG,
	M_DROPPED,  /* a full queue */
	M_OVERSIZE, /* a message over max= */
	M_SWITCHED, /* the connection moved to another server */
	M_SERVER,   /* the server's complaint */
	M_PEER,     /* an IPCX_ACCEPT listener: a new peer to accept */
	M_NOBODY,   /* a reply=1 dialer: nobody listened ("no responders") */
	M_BYE,      /* a reply=1 dialer: a listener ended the conversation */
};

struct vconn;

struct item {
	natsMsg *m;       /* M_MSG */
	struct vconn *v;  /* M_PEER */
	enum mark kind;
	int err;          /* M_SERVER: the error */
	uint64_t n;       /* M_DROPPED: messages; M_OVERSIZE: bytes */
};

/*
 * Shared between the channel and nats.c's threads: the message callback
 * (the subscription's delivery thread), its on-complete callback, and the
 * connection's closed and error callbacks (nats.c's callback thread).  It
 * is freed by whichever lets go last (refs).
 */
struct nq {
	pthread_mutex_t mu;
	int refs;
	int efd;              /* eventfd: readable while items wait or closed */
	struct item *ring;
	size_t cap, head, len; /* items in the ring */
	size_t msgs, bytes;    /* messages among them, and their payload */
	size_t max_msgs, max_bytes, max_msg;
	bool stream;           /* JetStream: a message we cannot take is redelivered */
	bool closed;           /* the connection closed for good */
	uint64_t dropped;      /* messages lost to a full queue, ours or nats.c's */
	int64_t lib_dropped;   /* nats.c's count of its own drops, as last seen */
	uint64_t reconnects;   /* nats.c's count, as last seen */
	natsStatistics *stats;
	/*
	 * The subscriptions feeding q, while they exist.  nats.c before 3.7
	 * (Debian has 3.4) hands its error callback a subscription it does
	 * not hold: one destroyed by a close meanwhile is freed memory, so
	 * on_error asks only a subscription still listed here.  A queue is
	 * fed by at most NLIVE: a listener's subscription, and a reply=1
	 * dialer's or a server's inbox.
	 */
#define NLIVE 2
	natsSubscription *live[NLIVE];
	char srv_err[256];     /* the server's last complaint (M_SERVER) */
	bool dialer;           /* a reply=1 dialer's inbox */
	/* An IPCX_ACCEPT listener: its peers by reply subject (docs/nats.md). */
	bool accept;
	struct vconn *peers;
	uint64_t next_id;
	int64_t idle_ns, last_sweep;
	char inbox[64];        /* our reply subjects are INBOX.<peer id> */
};

/*
 * A peer of an IPCX_ACCEPT listener: whoever publishes to the subject with
 * a reply subject of its own (a reply=1 dialer, a NATS request from any
 * client).  Its messages go to its own queue, and the channel accepted for
 * it publishes to its reply subject.  Listed in the listener's table, under
 * the listener's lock; freed when both the table and its holder (the
 * pending accept, then the accepted channel) have let go.
 */
struct vconn {
	struct vconn *next;
	struct nq *q;     /* its messages; closed once the peer has gone */
	char *reply;      /* where what we send it goes */
	uint64_t id;      /* our reply subject for it: INBOX.<id> */
	int64_t last;     /* its last message, CLOCK_MONOTONIC ns */
	int refs;
	bool listed;
};

static void vconn_unref(struct vconn *v);

static void nq_unref(struct nq *q)
{
	pthread_mutex_lock(&q->mu);
	bool last = --q->refs == 0;
	pthread_mutex_unlock(&q->mu);
	if (!last)
		return;
	for (size_t i = 0; i < q->len; i++) {
		struct item *it = &q->ring[(q->head + i) % q->cap];
		if (it->kind == M_MSG)
			nl.natsMsg_Destroy(it->m);
		else if (it->kind == M_PEER)
			vconn_unref(it->v); /* a peer never accepted */
	}
	while (q->peers) { /* their channels are closed: they held a reference to q */
		struct vconn *v = q->peers;
		q->peers = v->next;
		vconn_unref(v);
	}
	if (q->stats)
		nl.natsStatistics_Destroy(q->stats);
	ipcx__close_fd(q->efd);
	pthread_mutex_destroy(&q->mu);
	free(q->ring);
	free(q);
}

/* Keep the eventfd readable exactly while a receive would not wait. */
static void nq_signal(struct nq *q, bool was_ready)
{
	bool ready = q->len > 0 || q->closed;
	uint64_t v = 1;
	ssize_t r = 0;
	if (ready && !was_ready)
		r = write(q->efd, &v, sizeof(v));
	else if (!ready && was_ready)
		r = read(q->efd, &v, sizeof(v));
	(void)r;
}

static bool nq_ready(const struct nq *q)
{
	return q->len > 0 || q->closed;
}

static struct item *nq_tail(struct nq *q)
{
	return q->len ? &q->ring[(q->head + q->len - 1) % q->cap] : NULL;
}

/* Whether sub feeds q still (q->mu held). */
static bool is_live(const struct nq *q, const natsSubscription *sub)
{
	for (int i = 0; i < NLIVE; i++)
		if (q->live[i] == sub)
			return true;
	return false;
}

/* Replace the entry `from` (NULL: a free one) by `to` (q->mu held); false if none. */
static bool live_set(struct nq *q, const natsSubscription *from, natsSubscription *to)
{
	for (int i = 0; i < NLIVE; i++)
		if (q->live[i] == from) {
			q->live[i] = to;
			return true;
		}
	return false;
}

/* Room for one more item: the ring grows (messages are bounded elsewhere). */
static bool nq_room(struct nq *q)
{
	if (q->len < q->cap)
		return true;
	size_t ncap = q->cap ? q->cap * 2 : 64;
	struct item *n = malloc(ncap * sizeof(*n));
	if (!n)
		return false;
	for (size_t i = 0; i < q->len; i++)
		n[i] = q->ring[(q->head + i) % q->cap];
	free(q->ring);
	q->ring = n;
	q->cap = ncap;
	q->head = 0;
	return true;
}

/* Add a marker; one like the last merges into it (a run of drops is one). */
static void nq_mark(struct nq *q, enum mark kind, int err, uint64_t n)
{
	struct item *t = nq_tail(q);
	if (t && t->kind == kind &&
	    (kind == M_DROPPED || kind == M_SWITCHED || kind == M_NOBODY || kind == M_BYE)) {
		t->n += n;
		return;
	}
	/* Without memory the marker is lost, not the count: the callers have
	 * added a drop to q->dropped (ipcx_stats) already. */
	if (!nq_room(q))
		return;
	q->ring[(q->head + q->len++) % q->cap] = (struct item){ NULL, NULL, kind, err, n };
}

/* Take a message, or say why not (the caller destroys it then). */
static bool nq_push_msg(struct nq *q, natsMsg *m, size_t len)
{
	if (q->msgs >= q->max_msgs || q->bytes + len > q->max_bytes || !nq_room(q))
		return false;
	q->ring[(q->head + q->len++) % q->cap] = (struct item){ m, NULL, M_MSG, 0, 0 };
	q->msgs++;
	q->bytes += len;
	return true;
}

/*
 * The connection moved to another server since last time (under q->mu).  A
 * core subscription loses what was published while it was between servers,
 * and a publisher what the dead server had not passed on: say so where it
 * happened.  Asked by each message (so that the marker comes before the
 * first one through the new connection) and by nats.c's reconnected
 * callback (so that it comes even when no message follows); the count
 * makes it one marker either way.
 */
static void nq_note_switch(struct nq *q, natsConnection *nc)
{
	uint64_t rc = 0;
	if (!q->stream && nl.natsConnection_GetStats(nc, q->stats) == NATS_OK &&
	    nl.natsStatistics_GetCounts(q->stats, NULL, NULL, NULL, NULL, &rc) == NATS_OK &&
	    rc != q->reconnects) {
		nq_mark(q, M_SWITCHED, 0, rc - q->reconnects);
		q->reconnects = rc;
	}
}

/* What happened to the connection and to nats.c's own queue since last time. */
static void nq_note_events(struct nq *q, natsConnection *nc, natsSubscription *sub)
{
	int64_t d = 0;
	if (nl.natsSubscription_GetDropped(sub, &d) == NATS_OK && d > q->lib_dropped) {
		nq_mark(q, M_DROPPED, 0, (uint64_t)(d - q->lib_dropped));
		q->dropped += (uint64_t)(d - q->lib_dropped);
		q->lib_dropped = d;
	}
	nq_note_switch(q, nc);
}

/* Put message m (len bytes) in q: taken, refused (max=) or dropped (full). */
static void nq_put(struct nq *q, natsMsg *m, size_t len)
{
	if (len > q->max_msg) {
		/* Above this listener's max=: refused, like a peer's on a socket.
		 * A stream must not offer it again to every listener for ever. */
		nq_mark(q, M_OVERSIZE, 0, len);
		if (q->stream)
			nl.natsMsg_Term(m, NULL);
		nl.natsMsg_Destroy(m);
	} else if (!nq_push_msg(q, m, len)) {
		/* Full.  A stream's unacknowledged message comes back later;
		 * a core one is gone, and counted. */
		if (!q->stream) {
			q->dropped++;
			nq_mark(q, M_DROPPED, 0, 1);
		}
		nl.natsMsg_Destroy(m);
	}
}

/*
 * ipcx's own control messages are empty, with the header "Ipcx: bye": a
 * reply=1 dialer, or a channel accepted for one, that closes says so to the
 * other side.  (An empty message with headers costs nothing to tell apart:
 * a message with data is never looked at.)
 */
#define CTL_HEADER "Ipcx"
#define CTL_BYE    "bye"

static bool is_bye(natsMsg *m)
{
	const char *v = NULL;
	return nl.natsMsg_GetDataLength(m) == 0 &&
	       nl.natsMsgHeader_Get(m, CTL_HEADER, &v) == NATS_OK && v && !strcmp(v, CTL_BYE);
}

static void on_peer_msg(struct nq *q, natsMsg *m);
static struct nq *nq_new(const struct nopts *o, size_t max_msg);

/* The message callback, on the subscription's delivery thread. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct nq *q = closure;
	if (q->accept) {
		on_peer_msg(q, m);
		return;
	}
	size_t len = (size_t)nl.natsMsg_GetDataLength(m);
	pthread_mutex_lock(&q->mu);
	bool was = nq_ready(q);
	nq_note_events(q, nc, sub);
	if (len == 0 && q->dialer && nl.natsMsg_IsNoResponders(m)) {
		nq_mark(q, M_NOBODY, 0, 1);
		nl.natsMsg_Destroy(m);
	} else if (len == 0 && is_bye(m)) {
		if (q->dialer)
			nq_mark(q, M_BYE, 0, 1);
		nl.natsMsg_Destroy(m); /* a listener that is not IPCX_ACCEPT ignores it */
	} else {
		nq_put(q, m, len);
	}
	nq_signal(q, was);
	pthread_mutex_unlock(&q->mu);
}

/* ---- an IPCX_ACCEPT listener's peers ------------------------------------------ */

static void vconn_unref(struct vconn *v)
{
	if (--v->refs > 0)
		return;
	nq_unref(v->q);
	free(v->reply);
	free(v);
}

/* The peer has gone (said bye, no responders, silent too long): its queue
 * ends (-EPIPE after what it holds), and its reply subject is forgotten. */
static void vconn_end(struct nq *l, struct vconn *v)
{
	pthread_mutex_lock(&v->q->mu);
	bool was = nq_ready(v->q);
	v->q->closed = true;
	nq_signal(v->q, was);
	pthread_mutex_unlock(&v->q->mu);
	if (!v->listed)
		return;
	for (struct vconn **p = &l->peers; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	v->listed = false;
	vconn_unref(v);
}

/* Forget the peers silent for longer than idle= (looked at once a second). */
static void sweep_idle(struct nq *l, int64_t now)
{
	if (now - l->last_sweep < 1000000000)
		return;
	l->last_sweep = now;
	for (struct vconn *v = l->peers, *next; v; v = next) {
		next = v->next;
		if (now - v->last > l->idle_ns)
			vconn_end(l, v);
	}
}

/* A new peer: listed, and waiting to be accepted (under l->mu). */
static struct vconn *vconn_new(struct nq *l, const char *reply)
{
	struct vconn *v = calloc(1, sizeof(*v));
	struct nopts o = { .pending = l->max_msgs, .pending_bytes = l->max_bytes };
	if (!v || !(v->reply = strdup(reply)) || !(v->q = nq_new(&o, l->max_msg)) || !nq_room(l)) {
		if (v && v->q)
			nq_unref(v->q);
		if (v)
			free(v->reply);
		free(v);
		return NULL;
	}
	v->id = ++l->next_id;
	v->refs = 2; /* the table, and the accept that will take it */
	v->listed = true;
	v->next = l->peers;
	l->peers = v;
	l->ring[(l->head + l->len++) % l->cap] = (struct item){ NULL, v, M_PEER, 0, 0 };
	return v;
}

/* A message to an IPCX_ACCEPT listener: to its peer's queue, by reply subject. */
static void on_peer_msg(struct nq *l, natsMsg *m)
{
	const char *reply = nl.natsMsg_GetReply(m);
	size_t len = (size_t)nl.natsMsg_GetDataLength(m);
	int64_t now = ipcx__now_ns();
	pthread_mutex_lock(&l->mu);
	bool was = nq_ready(l);
	sweep_idle(l, now);
	struct vconn *v = l->peers;
	while (v && reply && strcmp(v->reply, reply) != 0)
		v = v->next;
	bool bye = len == 0 && is_bye(m);
	if (!reply || (!v && bye)) {
		/* Nobody to answer, or the bye of a peer already forgotten. */
		l->dropped += !reply;
		nl.natsMsg_Destroy(m);
	} else if (bye) {
		vconn_end(l, v);
		nl.natsMsg_Destroy(m);
	} else if (v || (v = vconn_new(l, reply))) {
		v->last = now;
		pthread_mutex_lock(&v->q->mu);
		bool vwas = nq_ready(v->q);
		nq_put(v->q, m, len);
		nq_signal(v->q, vwas);
		pthread_mutex_unlock(&v->q->mu);
	} else {
		l->dropped++;
		nl.natsMsg_Destroy(m);
	}
	nq_signal(l, was);
	pthread_mutex_unlock(&l->mu);
}

/*
 * The listener's inbox: the server's "no responders" to what a channel
 * accepted for a peer sent it, when the peer's reply subject has no
 * subscriber any more (the peer has gone).
 */
static void on_nobody(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	(void)nc, (void)sub;
	struct nq *l = closure;
	const char *subj = nl.natsMsg_GetSubject(m);
	const char *dot = subj ? strrchr(subj, '.') : NULL;
	uint64_t id = dot ? strtoull(dot + 1, NULL, 10) : 0;
	if (nl.natsMsg_IsNoResponders(m)) {
		pthread_mutex_lock(&l->mu);
		for (struct vconn *v = l->peers; v; v = v->next)
			if (v->id == id) {
				vconn_end(l, v);
				break;
			}
		pthread_mutex_unlock(&l->mu);
	}
	nl.natsMsg_Destroy(m);
}

/* The delivery thread has ended: no more on_msg. */
static void on_sub_complete(void *closure)
{
	nq_unref(closure);
}

/* The connection is closed for good (nats.c's callback thread). */
static void on_closed(natsConnection *nc, void *closure)
{
	(void)nc;
	struct nq *q = closure;
	pthread_mutex_lock(&q->mu);
	bool was = nq_ready(q);
	q->closed = true;
	nq_signal(q, was);
	pthread_mutex_unlock(&q->mu);
	nq_unref(q);
}

/*
 * The connection was made again, to the same server or another (nats.c's
 * callback thread; before on_closed, which holds q for it).  An
 * IPCX_ACCEPT listener's queue holds peers, not a stream of messages: its
 * peers' conversations go on, as before.
 */
static void on_reconnected(natsConnection *nc, void *closure)
{
	struct nq *q = closure;
	pthread_mutex_lock(&q->mu);
	if (!q->accept) {
		bool was = nq_ready(q);
		nq_note_switch(q, nc);
		nq_signal(q, was);
	}
	pthread_mutex_unlock(&q->mu);
}

/*
 * The server's complaints that do not close the connection (a permission
 * refused ...) become a marker; nats.c's slow-consumer notice (it dropped
 * messages of its own queue) is counted as the message callback counts it.
 */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	struct nq *q = closure;
	if (err == NATS_SLOW_CONSUMER) {
		/* Its drops may be the last messages: no later on_msg would see
		 * them.  A subscription no longer live has no receiver to tell. */
		pthread_mutex_lock(&q->mu);
		if (sub && is_live(q, sub)) {
			bool was = nq_ready(q);
			nq_note_events(q, nc, sub);
			nq_signal(q, was);
		}
		pthread_mutex_unlock(&q->mu);
		return;
	}
	const char *text = NULL;
	nl.natsConnection_GetLastError(nc, &text);
	pthread_mutex_lock(&q->mu);
	bool was = nq_ready(q);
	snprintf(q->srv_err, sizeof(q->srv_err), "%s", text && *text ? text :
		 nl.natsStatus_GetText(err));
	nq_mark(q, M_SERVER, status_errno(err), 0);
	nq_signal(q, was);
	pthread_mutex_unlock(&q->mu);
}

static struct nq *nq_new(const struct nopts *o, size_t max_msg)
{
	struct nq *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0 || nl.natsStatistics_Create(&q->stats) != NATS_OK) {
		ipcx__close_fd(q->efd);
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	q->refs = 1;
	q->max_msgs = (size_t)o->pending;
	q->max_bytes = (size_t)o->pending_bytes;
	q->max_msg = max_msg;
	q->stream = o->stream != NULL;
	return q;
}

/* ---- the channel ------------------------------------------------------------ */

struct nchan {
	struct ipcx_chan c;
	natsConnection *nc;     /* an accepted channel's is its listener's */
	natsSubscription *sub;  /* listeners */
	natsSubscription *isub; /* the inbox of a reply=1 dialer or an IPCX_ACCEPT listener */
	struct nq *q;           /* listeners, reply=1 dialers; accepted: its peer's */
	jsCtx *js;              /* ?stream= */
	natsMsg *held;          /* stream: returned by the last receive, not yet acked */
	bool listener, accept;  /* listen; with IPCX_ACCEPT */
	atomic_int refs;        /* the channel, and an IPCX_ACCEPT listener's accepted ones */
	struct nchan *parent;   /* accepted: its listener */
	struct vconn *v;        /* accepted: its peer */
	char inbox[64];         /* a reply=1 dialer's reply subject */
	char subject[SUBJECT_MAX]; /* accepted: the peer's reply subject */
	char url[IPCX__URL_MAX];
	int64_t timeout_ms;     /* connect and JetStream API requests */
	uint64_t sent, received;
};

static const struct ipcx__chan_ops nats_ops;

/* Options for nats.c: the servers in the URL's order, failover bounded. */
static int make_options(const char *url, const struct nopts *o, struct nq *q,
			natsOptions **ret)
{
	natsOptions *no = NULL;
	natsStatus s = nl.natsOptions_Create(&no);
	if (s == NATS_OK)
		s = nl.natsOptions_SetServers(no, (const char **)o->servers, o->nservers);
	if (s == NATS_OK)
		s = nl.natsOptions_SetNoRandomize(no, true);
	if (s == NATS_OK)
		s = nl.natsOptions_SetTimeout(no, (int64_t)o->timeout_ms);
	if (s == NATS_OK)
		s = nl.natsOptions_SetMaxReconnect(no, (int)o->reconnect);
	if (s == NATS_OK)
		s = nl.natsOptions_SetReconnectWait(no, (int64_t)o->reconnect_wait_ms);
	if (s == NATS_OK)
		s = nl.natsOptions_SetReconnectJitter(no, 0, 0);
	if (s == NATS_OK)
		s = nl.natsOptions_SetReconnectBufSize(no, (int)o->reconnect_buf);
	/* A send that returned has left the process (in the socket), as on tcp://:
	 * a sender killed just after loses nothing it was told was sent. */
	if (s == NATS_OK)
		s = nl.natsOptions_SetSendAsap(no, true);
	if (s == NATS_OK && q)
		s = nl.natsOptions_SetClosedCB(no, on_closed, q);
	if (s == NATS_OK && q)
		s = nl.natsOptions_SetErrorHandler(no, on_error, q);
	if (s == NATS_OK && q)
		s = nl.natsOptions_SetReconnectedCB(no, on_reconnected, q);
	if (s != NATS_OK) {
		nl.natsOptions_Destroy(no);
		return nfail(status_errno(s), url, "cannot set up the connection", s);
	}
	*ret = no;
	return 0;
}

static int connect_servers(struct nchan *ch, const struct nopts *o, struct nq *q)
{
	natsOptions *no = NULL;
	int r = make_options(ch->url, o, q, &no);
	if (r < 0)
		return r;
	if (q)
		q->refs++; /* the closed callback's, given back when it runs */
	natsStatus s = nl.natsConnection_Connect(&ch->nc, no);
	nl.natsOptions_Destroy(no);
	if (s != NATS_OK) {
		ch->nc = NULL;
		if (q)
			q->refs--; /* no connection: that callback never comes */
		return nfail(status_errno(s), ch->url, "cannot connect to any server of the list", s);
	}
	return 0;
}

/* The channel's max: the server's max_payload, or less if max= says so. */
static int set_max(struct nchan *ch, const struct nopts *o)
{
	int64_t srv = nl.natsConnection_GetMaxPayload(ch->nc);
	if (srv <= 0)
		return ipcx__fail(-EPROTO, "%s: the server announced no max_payload", ch->url);
	if (o->max_msg > (size_t)srv)
		return ipcx__fail(-EINVAL, "%s: max=%zu exceeds the max_payload of the server (%lld)",
				  ch->url, o->max_msg, (long long)srv);
	ch->c.max_msg = o->max_msg ? o->max_msg : (size_t)srv;
	return 0;
}

static int new_chan(const struct ipcx__url *u, const struct nopts *o, struct nchan **ret)
{
	struct nchan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ipcx__chan_init(&ch->c, &nats_ops, &nats_tran, -1, 0);
	atomic_init(&ch->refs, 1);
	snprintf(ch->subject, sizeof(ch->subject), "%s", o->subject);
	snprintf(ch->url, sizeof(ch->url), "%s", u->orig);
	ch->timeout_ms = (int64_t)o->timeout_ms;
	*ret = ch;
	return 0;
}

/* A queue for what the channel receives; its eventfd is the channel's. */
static int make_queue(struct nchan *ch, const struct nopts *o)
{
	if (!(ch->q = nq_new(o, SIZE_MAX)))
		return -ENOMEM;
	ch->c.fd = ch->q->efd;
	return 0;
}

/* A fresh inbox subject ("_INBOX.<unique>"): where replies to us go. */
static int new_inbox(struct nchan *ch, char *buf, size_t cap)
{
	natsInbox *inbox = NULL;
	natsStatus s = nl.natsInbox_Create(&inbox);
	if (s != NATS_OK)
		return nfail(status_errno(s), ch->url, "cannot make an inbox", s);
	snprintf(buf, cap, "%s", (const char *)inbox);
	nl.natsInbox_Destroy(inbox);
	return 0;
}

/*
 * Give a new subscription's delivery thread its reference to q (it gives
 * it back when it ends: on_sub_complete), and our queue limits.
 */
static int hand_over(struct nchan *ch, natsSubscription *sub, struct nq *q,
		     const struct nopts *o)
{
	pthread_mutex_lock(&q->mu);
	q->refs++; /* the delivery thread may run on_msg already */
	bool listed = live_set(q, NULL, sub);
	pthread_mutex_unlock(&q->mu);
	/* A third subscription on one queue, a defect of ours: failed, its
	 * reference kept for good (as below). */
	if (!listed)
		return ipcx__fail(-EOVERFLOW, "%s: more than %d subscriptions feed one queue",
				  ch->url, NLIVE);
	if (nl.natsSubscription_SetOnCompleteCB(sub, on_sub_complete, q) != NATS_OK) {
		/* The subscription closed already: its thread may still be in
		 * on_msg, so its reference is never given back (a few bytes). */
		return ipcx__fail(-EPIPE, "%s: the subscription ended as it began", ch->url);
	}
	/* Twice nats.c's limits would let the queue grow past ours; ours rule. */
	nl.natsSubscription_SetPendingLimits(sub, (int)o->pending, (int)o->pending_bytes);
	return 0;
}

/* Subscribe cb to subject (core NATS), handed over as above. */
static int subscribe_to(struct nchan *ch, natsSubscription **sub, const char *subject,
			const char *queue, natsMsgHandler cb, const struct nopts *o)
{
	natsStatus s = queue ? nl.natsConnection_QueueSubscribe(sub, ch->nc, subject, queue, cb,
								 ch->q)
			     : nl.natsConnection_Subscribe(sub, ch->nc, subject, cb, ch->q);
	if (s != NATS_OK) {
		*sub = NULL;
		return nfail(status_errno(s), ch->url, "cannot subscribe", s);
	}
	return hand_over(ch, *sub, ch->q, o);
}

/* The end of a dial or listen: hand the channel out, or undo it all. */
static int opened(struct nchan *ch, struct nopts *o, int r, ipcx_chan **ret)
{
	opts_free(o);
	if (r < 0) {
		if (ch)
			nats_ops.close(&ch->c);
		return r;
	}
	*ret = &ch->c;
	return 0;
}

static int jetstream(struct nchan *ch)
{
	jsOptions jo;
	nl.jsOptions_Init(&jo);
	jo.Wait = ch->timeout_ms;
	natsStatus s = nl.natsConnection_JetStream(&ch->js, ch->nc, &jo);
	if (s != NATS_OK) {
		ch->js = NULL;
		return nfail(status_errno(s), ch->url, "cannot use JetStream", s);
	}
	return 0;
}

/*
 * The stream, made if it does not exist: file storage, every message kept
 * (limits retention with no limit of its own; the server's JetStream limits
 * apply).  An existing stream of that name is used as it is.
 */
static int ensure_stream(struct nchan *ch, const char *name)
{
	jsStreamConfig cfg;
	nl.jsStreamConfig_Init(&cfg);
	const char *subjects[1] = { ch->subject };
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	jsStreamInfo *si = NULL;
	jsErrCode e = 0;
	natsStatus s = nl.js_AddStream(&si, ch->js, &cfg, NULL, &e);
	nl.jsStreamInfo_Destroy(si);
	if (s == NATS_OK || e == JSStreamNameExistErr)
		return 0;
	if (e == JSNotEnabledErr || e == JSNotEnabledForAccountErr || s == NATS_NO_RESPONDERS)
		return ipcx__fail(-EOPNOTSUPP, "%s: the server has no JetStream (start it with -js)",
				  ch->url);
	char what[400];
	snprintf(what, sizeof(what), "cannot make stream %s for subject %s", name, ch->subject);
	return nfail(js_errno(s, e), ch->url, what, s);
}

/* ---- dial: publish ----------------------------------------------------------- */

static int nats_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	(void)flags; /* nats.c's sockets are its own: IPCX_INHERIT has nothing to keep */
	struct nopts o;
	struct nchan *ch = NULL;
	int r = parse(u, false, &o);
	if (r == 0)
		r = nl_ready(u);
	if (r == 0)
		r = new_chan(u, &o, &ch);
	if (r == 0 && o.reply && (r = make_queue(ch, &o)) == 0)
		ch->q->dialer = true;
	if (r == 0)
		r = connect_servers(ch, &o, ch->q);
	if (r == 0)
		r = set_max(ch, &o);
	if (r == 0 && o.stream && (r = jetstream(ch)) == 0)
		r = ensure_stream(ch, o.stream);
	/* reply=1: an inbox of our own; each message says to answer there.  The
	 * subscription goes out before any publish: no reply can beat it. */
	if (r == 0 && o.reply && (r = new_inbox(ch, ch->inbox, sizeof(ch->inbox))) == 0) {
		ch->q->max_msg = ch->c.max_msg;
		r = subscribe_to(ch, &ch->isub, ch->inbox, NULL, on_msg, &o);
	}
	return opened(ch, &o, r, ret);
}

/*
 * A publish that could not go in because the connection is away: nats.c's
 * reconnect buffer is full, or the socket died under it before it noticed
 * (the message was not written).  Either way nats.c is reconnecting.
 */
static bool away(natsStatus s)
{
	return s == NATS_INSUFFICIENT_BUFFER || s == NATS_IO_ERROR ||
	       s == NATS_CONNECTION_DISCONNECTED;
}

static int closed_for_good(const struct nchan *ch)
{
	return ipcx__fail(-EPIPE, "%s: the connection is closed: no server of the list could be "
			  "reached again", ch->url);
}

/*
 * Publish; while the connection is away, try again until the deadline.
 * nats.c reports no event a sender could wait for, so the tries are 1 ms
 * apart, doubling up to 32 ms, as the file locks do.
 */
static ssize_t publish_core(struct nchan *ch, const char *subject, const char *reply,
			    const void *msg, size_t len, int timeout_ms)
{
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (long step = 1;; step = step < 32 ? step * 2 : 32) {
		natsStatus s = reply ? nl.natsConnection_PublishRequest(ch->nc, subject, reply, msg,
									 (int)len)
				     : nl.natsConnection_Publish(ch->nc, subject, msg, (int)len);
		if (s == NATS_OK)
			return (ssize_t)len;
		if (s == NATS_CONNECTION_CLOSED ||
		    nl.natsConnection_Status(ch->nc) == NATS_CONN_STATUS_CLOSED)
			return closed_for_good(ch);
		if (!away(s))
			return nfail(status_errno(s), ch->url, "cannot publish", s);
		int left = ipcx__remaining_ms(deadline);
		if (left == 0)
			return ipcx__fail(deadline == 0 ? -EAGAIN : -ETIMEDOUT, "%s: %s", ch->url,
					  s == NATS_INSUFFICIENT_BUFFER ?
					  "reconnecting, and the reconnect buffer is full" :
					  "the connection to the server was lost; reconnecting");
		long ms = left < 0 || left > step ? step : left;
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/*
 * A stream stores the message and says so: the send is a round trip, and
 * waits for it however short timeout_ms is (0 included), up to the
 * connection's timeout=.  -ETIMEDOUT means no answer came: the message may
 * have been stored all the same.
 */
static ssize_t publish_stream(struct nchan *ch, const void *msg, size_t len, int timeout_ms)
{
	jsPubOptions po;
	nl.jsPubOptions_Init(&po);
	po.MaxWait = timeout_ms > 0 ? timeout_ms : timeout_ms == 0 ? ch->timeout_ms : INT32_MAX;
	jsPubAck *pa = NULL;
	jsErrCode e = 0;
	natsStatus s = nl.js_Publish(&pa, ch->js, ch->subject, msg, (int)len, &po, &e);
	nl.jsPubAck_Destroy(pa);
	if (s == NATS_OK)
		return (ssize_t)len;
	if (s == NATS_NO_RESPONDERS)
		return ipcx__fail(-ENOENT, "%s: no stream takes subject %s", ch->url, ch->subject);
	return nfail(js_errno(s, e), ch->url, "the stream did not store the message", s);
}

/*
 * A channel accepted for a peer sends to the peer's reply subject, asking
 * for the answer at INBOX.<peer id> of its listener: if nobody subscribes
 * to the peer's subject any more, the server's "no responders" comes back
 * there, and the peer is taken for gone (on_nobody).
 */
static ssize_t send_accepted(struct nchan *ch, const void *msg, size_t len, int timeout_ms)
{
	pthread_mutex_lock(&ch->q->mu);
	bool gone = ch->q->closed;
	pthread_mutex_unlock(&ch->q->mu);
	if (gone)
		return ipcx__fail(-EPIPE, "%s: the peer (%s) has gone", ch->url, ch->subject);
	char reply[96];
	snprintf(reply, sizeof(reply), "%s.%llu", ch->parent->q->inbox,
		 (unsigned long long)ch->v->id);
	return publish_core(ch, ch->subject, reply, msg, len, timeout_ms);
}

static ssize_t nats_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct nchan *ch = ipcx__container_of(c, struct nchan, c);
	if (ch->listener)
		return ipcx__fail(-EOPNOTSUPP, "%s: a listener receives; dial the URL to publish%s",
				  ch->url, ch->accept ? ", or answer on an accepted channel" : "");
	ssize_t r = ch->parent ? send_accepted(ch, msg, len, timeout_ms)
		    : ch->js   ? publish_stream(ch, msg, len, timeout_ms)
			       : publish_core(ch, ch->subject, ch->inbox[0] ? ch->inbox : NULL, msg,
					      len, timeout_ms);
	if (r >= 0)
		ch->sent++;
	return r;
}

/*
 * SUBJECT.TO (ipcx_send_to): the publish/subscribe layer's topics, each a
 * subject of its own on this one connection, so that the server routes
 * them and one publisher's messages keep their order across subjects.
 */
static ssize_t nats_send_to(ipcx_chan *c, const char *to, const void *msg, size_t len,
			    int timeout_ms)
{
	struct nchan *ch = ipcx__container_of(c, struct nchan, c);
	if (ch->listener || ch->parent || ch->js || ch->inbox[0])
		return ipcx__fail(-EOPNOTSUPP, "%s: ipcx_send_to publishes on a dialled core "
				  "channel (not a listener's, a stream's or a reply=1 one)", ch->url);
	char subject[SUBJECT_MAX + 1];
	int n = snprintf(subject, sizeof(subject), "%s.%s", ch->subject, to);
	int r = n < 0 || (size_t)n >= sizeof(subject)
			? ipcx__fail(-EINVAL, "%s: subject %s.%s longer than %d bytes", ch->url,
				     ch->subject, to, SUBJECT_MAX - 1)
			: check_subject(ch->url, subject, false);
	if (r < 0)
		return r;
	ssize_t sent = publish_core(ch, subject, NULL, msg, len, timeout_ms);
	if (sent >= 0)
		ch->sent++;
	return sent;
}

/* ---- listen: subscribe ---------------------------------------------------------- */

/* A name for the durable consumer of listeners that give no queue=. */
static void default_durable(const char *subject, char *buf, size_t cap)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (const char *p = subject; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3u;
	snprintf(buf, cap, "ipcx-%016llx", (unsigned long long)h);
}

/*
 * The durable consumer: made here, not by js_Subscribe, because nats.c
 * deletes a consumer it made itself when its subscription ends, and the
 * messages waiting for the next listener with it.  It pushes to a deliver
 * group, so that every listener of the durable shares it, a new one may
 * join while an old one is dying, and the server never sends more than the
 * queue holds (MaxAckPending).
 */
static int ensure_consumer(struct nchan *ch, const struct nopts *o, const char *durable)
{
	natsInbox *inbox = NULL;
	natsStatus s = nl.natsInbox_Create(&inbox);
	if (s != NATS_OK)
		return nfail(status_errno(s), ch->url, "cannot make a deliver subject", s);
	jsConsumerConfig cc;
	nl.jsConsumerConfig_Init(&cc);
	cc.Durable = durable;
	cc.DeliverSubject = (const char *)inbox;
	cc.DeliverGroup = durable;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = (int64_t)o->ack_wait_ms * 1000000;
	cc.MaxAckPending = (int64_t)o->pending;
	cc.FilterSubject = ch->subject;
	jsConsumerInfo *ci = NULL;
	jsErrCode e = 0;
	s = nl.js_AddConsumer(&ci, ch->js, o->stream, &cc, NULL, &e);
	nl.jsConsumerInfo_Destroy(ci);
	nl.natsInbox_Destroy(inbox);
	if (s == NATS_OK || e == JSConsumerNameExistErr || e == JSConsumerExistingActiveErr)
		return 0;
	char what[400];
	snprintf(what, sizeof(what), "cannot make durable consumer %s on stream %s", durable,
		 o->stream);
	return nfail(js_errno(s, e), ch->url, what, s);
}

static int subscribe_stream(struct nchan *ch, const struct nopts *o)
{
	char dflt[32];
	const char *durable = o->queue;
	if (!durable) {
		default_durable(ch->subject, dflt, sizeof(dflt));
		durable = dflt;
	}
	int r = jetstream(ch);
	if (r == 0)
		r = ensure_stream(ch, o->stream);
	if (r == 0)
		r = ensure_consumer(ch, o, durable);
	if (r < 0)
		return r;
	jsSubOptions so;
	nl.jsSubOptions_Init(&so);
	so.Stream = o->stream;
	so.Consumer = durable;
	so.Queue = durable;
	so.ManualAck = true;
	jsErrCode e = 0;
	natsStatus s = nl.js_Subscribe(&ch->sub, ch->js, ch->subject, on_msg, ch->q, NULL, &so, &e);
	if (s != NATS_OK) {
		ch->sub = NULL;
		return nfail(js_errno(s, e), ch->url, "cannot subscribe to the stream", s);
	}
	return 0;
}

/*
 * An IPCX_ACCEPT listener also subscribes to its inbox's INBOX.*: where the
 * server's "no responders" come back when a peer has gone.
 */
static int subscribe_peers(struct nchan *ch, const struct nopts *o)
{
	struct nq *q = ch->q;
	char wild[96];
	int r = new_inbox(ch, q->inbox, sizeof(q->inbox));
	snprintf(wild, sizeof(wild), "%s.*", q->inbox);
	return r < 0 ? r : subscribe_to(ch, &ch->isub, wild, NULL, on_nobody, o);
}

/*
 * Subscribe, and make sure the server has the subscription before listen
 * returns (a round trip), so that a publisher told "listening" is heard.
 */
static int subscribe(struct nchan *ch, const struct nopts *o)
{
	int r = 0;
	if (ch->accept) { /* before the first message can come */
		ch->q->accept = true;
		ch->q->idle_ns = (int64_t)o->idle_ms * 1000000;
		ch->q->last_sweep = ipcx__now_ns();
	}
	if (o->stream && (r = subscribe_stream(ch, o)) == 0)
		r = hand_over(ch, ch->sub, ch->q, o);
	else if (!o->stream)
		r = subscribe_to(ch, &ch->sub, ch->subject, o->queue, on_msg, o);
	if (r == 0 && ch->accept)
		r = subscribe_peers(ch, o);
	if (r < 0)
		return r;
	natsStatus s = nl.natsConnection_FlushTimeout(ch->nc, ch->timeout_ms);
	if (s != NATS_OK)
		return nfail(status_errno(s), ch->url, "the server did not confirm the subscription", s);
	return 0;
}

static int nats_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct nopts o;
	struct nchan *ch = NULL;
	int r = parse(u, true, &o);
	if (r == 0 && (flags & IPCX_ACCEPT) && o.stream)
		r = ipcx__fail(-EOPNOTSUPP, "%s: IPCX_ACCEPT is for core NATS, not a stream", u->orig);
	if (r == 0)
		r = nl_ready(u);
	if (r == 0)
		r = new_chan(u, &o, &ch);
	if (r == 0) {
		ch->listener = true;
		ch->accept = flags & IPCX_ACCEPT;
		r = make_queue(ch, &o);
	}
	if (r == 0)
		ch->q->accept = ch->accept; /* before any callback can ask (on_reconnected) */
	if (r == 0)
		r = connect_servers(ch, &o, ch->q);
	if (r == 0 && (r = set_max(ch, &o)) == 0) {
		ch->q->max_msg = ch->c.max_msg;
		r = subscribe(ch, &o);
	}
	return opened(ch, &o, r, ret);
}

/* ---- receive ---------------------------------------------------------------------- */

/* A stream's message is acknowledged when the caller comes back for more. */
static void ack_held(struct nchan *ch)
{
	if (!ch->held)
		return;
	nl.natsMsg_Ack(ch->held, NULL);
	nl.natsMsg_Destroy(ch->held);
	ch->held = NULL;
}

/* The error a marker stands for, with its detail. */
static ssize_t marker(struct nchan *ch, const struct item *it)
{
	char where[256] = "";
	switch (it->kind) {
	case M_DROPPED:
		return ipcx__fail(-ENOBUFS, "%s: %llu message%s lost: the receiver fell behind and "
				  "its queue (pending=%zu messages, pending_bytes=%zu) was full "
				  "(a slow consumer)", ch->url, (unsigned long long)it->n,
				  it->n == 1 ? " was" : "s were", ch->q->max_msgs, ch->q->max_bytes);
	case M_OVERSIZE:
		return ipcx__fail(-EMSGSIZE, "%s: a message of %llu bytes, above this listener's "
				  "max of %zu, was refused and dropped", ch->url,
				  (unsigned long long)it->n, ch->c.max_msg);
	case M_SWITCHED:
		nl.natsConnection_GetConnectedUrl(ch->nc, where, sizeof(where));
		return ipcx__fail(-ECONNRESET, "%s: the connection to the server was lost and made "
				  "again%s%s; messages published meanwhile may be lost (core NATS "
				  "is at most once; ?stream= is not)", ch->url, *where ? " to " : "",
				  where);
	case M_SERVER:
		return ipcx__fail(it->err, "%s: the server says: %s", ch->url,
				  ch->q->srv_err);
	case M_NOBODY:
		return ipcx__fail(-EPIPE, "%s: nobody listened (the server answered \"no "
				  "responders\" to %llu message%s)", ch->url,
				  (unsigned long long)it->n, it->n == 1 ? "" : "s");
	case M_BYE:
		return ipcx__fail(-EPIPE, "%s: the listener ended the conversation", ch->url);
	case M_PEER:
	case M_MSG:
		break;
	}
	return -EIO;
}

/* Take the first item off q (under q->mu); its message's bytes leave the count. */
static struct item nq_pop(struct nq *q)
{
	struct item it = q->ring[q->head];
	bool was = nq_ready(q);
	q->head = (q->head + 1) % q->cap;
	q->len--;
	if (it.kind == M_MSG) {
		q->msgs--;
		q->bytes -= (size_t)nl.natsMsg_GetDataLength(it.m);
	}
	nq_signal(q, was);
	return it;
}

/*
 * Take the first item if there is one: a message into buf (returns its
 * length) or a marker's error.  -EAGAIN with nothing waiting; -EPIPE when
 * nothing waits and the connection is closed for good.
 */
static ssize_t take(struct nchan *ch, void *buf, size_t cap)
{
	struct nq *q = ch->q;
	pthread_mutex_lock(&q->mu);
	if (q->len == 0) {
		bool closed = q->closed;
		pthread_mutex_unlock(&q->mu);
		return closed ? closed_for_good(ch) : -EAGAIN;
	}
	struct item it = q->ring[q->head];
	size_t len = it.kind == M_MSG ? (size_t)nl.natsMsg_GetDataLength(it.m) : 0;
	if (it.kind == M_MSG && len > cap) {
		pthread_mutex_unlock(&q->mu);
		return ipcx__fail(-EMSGSIZE, "%s: a %zu-byte message waits; the buffer holds %zu",
				  ch->url, len, cap);
	}
	nq_pop(q);
	pthread_mutex_unlock(&q->mu);
	if (it.kind != M_MSG)
		return marker(ch, &it);
	memcpy(buf, nl.natsMsg_GetData(it.m), len);
	if (q->stream)
		ch->held = it.m;
	else
		nl.natsMsg_Destroy(it.m);
	ch->received++;
	return (ssize_t)len;
}

/*
 * Wait for the queue's descriptor.  In a child forked after nats.c started,
 * the closed callback cannot come (nats.c's callback thread was not
 * forked), so the wait is cut into slices and the connection's state read
 * between them.
 */
static int wait_queue(struct nchan *ch, int64_t deadline)
{
	if (!atomic_load(&nl_forked))
		return ipcx__wait_fd(ch->q->efd, POLLIN, deadline);
	for (;;) {
		int64_t slice = ipcx__deadline(200);
		bool last = deadline == 0 || (deadline > 0 && deadline < slice);
		int r = ipcx__wait_fd(ch->q->efd, POLLIN, last ? deadline : slice);
		if (r != -ETIMEDOUT || last)
			return r;
		if (nl.natsConnection_Status(ch->nc) == NATS_CONN_STATUS_CLOSED) {
			pthread_mutex_lock(&ch->q->mu);
			bool was = nq_ready(ch->q);
			ch->q->closed = true;
			nq_signal(ch->q, was);
			pthread_mutex_unlock(&ch->q->mu);
			return POLLIN;
		}
	}
}

static ssize_t nats_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct nchan *ch = ipcx__container_of(c, struct nchan, c);
	if (!ch->q)
		return ipcx__fail(-EOPNOTSUPP, "%s: a dialled nats:// channel publishes; dial with "
				  "reply=1 to receive what is sent back to it, or listen", ch->url);
	if (ch->accept)
		return ipcx__fail(-EOPNOTSUPP, "%s: an IPCX_ACCEPT listener hands out a channel per "
				  "peer: ipcx_accept", ch->url);
	ack_held(ch);
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		ssize_t r = take(ch, buf, cap);
		if (r != -EAGAIN)
			return r;
		int w = wait_queue(ch, deadline);
		if (w < 0)
			return w;
	}
}

/* ---- IPCX_ACCEPT: a channel per peer ------------------------------------------ */

/* A channel for peer v of listener l (v's reference passes to it). */
static int accepted(struct nchan *l, struct vconn *v, ipcx_chan **ret)
{
	struct nchan *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		pthread_mutex_lock(&l->q->mu);
		vconn_end(l->q, v);
		vconn_unref(v);
		pthread_mutex_unlock(&l->q->mu);
		return -ENOMEM;
	}
	ipcx__chan_init(&ch->c, &nats_ops, &nats_tran, v->q->efd, l->c.max_msg);
	atomic_init(&ch->refs, 1);
	atomic_fetch_add(&l->refs, 1); /* its connection is the listener's */
	ch->parent = l;
	ch->v = v;
	ch->q = v->q;
	ch->nc = l->nc;
	ch->timeout_ms = l->timeout_ms;
	snprintf(ch->subject, sizeof(ch->subject), "%s", v->reply);
	snprintf(ch->url, sizeof(ch->url), "%s", l->url);
	*ret = &ch->c;
	return 0;
}

/* The next peer, or the error of a marker; -EAGAIN with none waiting. */
static int take_peer(struct nchan *l, struct vconn **v)
{
	pthread_mutex_lock(&l->q->mu);
	if (l->q->len == 0) {
		bool closed = l->q->closed;
		pthread_mutex_unlock(&l->q->mu);
		return closed ? closed_for_good(l) : -EAGAIN;
	}
	struct item it = nq_pop(l->q);
	pthread_mutex_unlock(&l->q->mu);
	*v = it.v;
	return it.kind == M_PEER ? 0 : (int)marker(l, &it);
}

static int nats_accept(ipcx_chan *c, int timeout_ms, ipcx_chan **ret)
{
	struct nchan *l = ipcx__container_of(c, struct nchan, c);
	if (!l->accept)
		return ipcx__fail(-EINVAL, "%s: listen with IPCX_ACCEPT to accept peers", l->url);
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		struct vconn *v = NULL;
		int r = take_peer(l, &v);
		if (r == 0)
			return accepted(l, v, ret);
		if (r != -EAGAIN)
			return r;
		if ((r = wait_queue(l, deadline)) < 0)
			return r;
	}
}

/*
 * What to dial to reach an IPCX_ACCEPT listener: its URL with reply=1, so
 * that the dialer's messages carry the subject its answers go to.
 */
static int nats_addr(ipcx_chan *c, char *buf, size_t cap)
{
	struct nchan *ch = ipcx__container_of(c, struct nchan, c);
	const char *u = c->url ? c->url : ch->url;
	const char *more = !ch->accept || strstr(u, "reply=") ? "" : strchr(u, '?') ? "&reply=1"
												 : "?reply=1";
	int n = snprintf(buf, cap, "%s%s", u, more);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

/* ---- the rest ------------------------------------------------------------------ */

static int nats_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	struct nchan *ch = ipcx__container_of(c, struct nchan, c);
	memset(ret, 0, sizeof(*ret));
	ret->sent = ch->sent;
	ret->received = ch->received;
	if (!ch->q)
		return 0;
	int waiting = 0;
	if (ch->sub)
		nl.natsSubscription_GetPending(ch->sub, &waiting, NULL);
	pthread_mutex_lock(&ch->q->mu);
	ret->dropped = ch->q->dropped;
	ret->depth = ch->q->msgs + (uint64_t)(waiting > 0 ? waiting : 0);
	pthread_mutex_unlock(&ch->q->mu);
	return 0;
}

/* Tell the other side of a conversation that we are done ("Ipcx: bye"). */
static void say_bye(struct nchan *ch, const char *to, const char *reply)
{
	natsMsg *m = NULL;
	if (nl.natsMsg_Create(&m, to, reply, NULL, 0) == NATS_OK &&
	    nl.natsMsgHeader_Set(m, CTL_HEADER, CTL_BYE) == NATS_OK)
		nl.natsConnection_PublishMsg(ch->nc, m);
	nl.natsMsg_Destroy(m);
}

/*
 * End a subscription: no more messages, and on_error must not ask it any
 * more.  It is not destroyed here but after the connection is closed
 * (release): nats.c before 3.6.1 (Debian's 3.4) looks up the subscription
 * of each message its read thread takes without holding it, then copies
 * the message and locks the subscription; one destroyed meanwhile is freed
 * memory under that thread (upstream 0a7dd28, "Crash processing inbound
 * message for destroyed subscription").  Our reference keeps it alive
 * until natsConnection_Close, which joins the read thread.
 */
static void end_sub(struct nq *q, natsSubscription *sub)
{
	if (!sub)
		return;
	pthread_mutex_lock(&q->mu);
	live_set(q, sub, NULL);
	pthread_mutex_unlock(&q->mu);
	nl.natsSubscription_Unsubscribe(sub);
}

/* Let go of a channel; the last reference closes the connection and frees. */
static void release(struct nchan *ch)
{
	if (atomic_fetch_sub(&ch->refs, 1) != 1)
		return;
	if (ch->js)
		nl.jsCtx_Destroy(ch->js);
	if (ch->nc)
		nl.natsConnection_Close(ch->nc); /* its read thread is gone: see end_sub */
	if (ch->sub)
		nl.natsSubscription_Destroy(ch->sub);
	if (ch->isub)
		nl.natsSubscription_Destroy(ch->isub);
	if (ch->nc)
		nl.natsConnection_Destroy(ch->nc);
	if (ch->q)
		nq_unref(ch->q);
	free(ch);
}

/*
 * An accepted channel: say bye to the peer (unless it has gone), forget
 * its reply subject (a later message from it is a new peer), and let go of
 * the listener, whose connection it used.
 */
static int close_accepted(struct nchan *ch)
{
	struct nchan *l = ch->parent;
	pthread_mutex_lock(&ch->q->mu);
	bool gone = ch->q->closed;
	pthread_mutex_unlock(&ch->q->mu);
	if (!gone)
		say_bye(ch, ch->subject, NULL);
	pthread_mutex_lock(&l->q->mu);
	vconn_end(l->q, ch->v);
	vconn_unref(ch->v);
	pthread_mutex_unlock(&l->q->mu);
	free(ch);
	release(l);
	return 0;
}

/*
 * Close: acknowledge a stream's last message, say bye (a reply=1 dialer),
 * make sure the server has what was published, end the subscriptions
 * (their delivery threads give back their references), end the peers of
 * an IPCX_ACCEPT listener, and let go: the connection closes with the last
 * reference (an accepted channel still open holds one).
 */
static int nats_close(ipcx_chan *c)
{
	struct nchan *ch = ipcx__container_of(c, struct nchan, c);
	if (ch->parent)
		return close_accepted(ch);
	int r = 0;
	ack_held(ch);
	if (ch->nc && ch->inbox[0])
		say_bye(ch, ch->subject, ch->inbox);
	/*
	 * What was published may still be on its way (in the socket, or in
	 * the reconnect buffer), and a close can turn into a reset that drops
	 * it: a round trip (PING/PONG) proves that the server has it all.
	 */
	if (ch->nc && !ch->listener && (ch->sent || ch->inbox[0])) {
		natsStatus s = nl.natsConnection_FlushTimeout(ch->nc, ch->timeout_ms);
		if (s != NATS_OK)
			r = nfail(status_errno(s), ch->url, "cannot make sure the server has every "
				  "message", s);
	}
	end_sub(ch->q, ch->sub);
	end_sub(ch->q, ch->isub);
	if (ch->accept) {
		pthread_mutex_lock(&ch->q->mu);
		while (ch->q->peers)
			vconn_end(ch->q, ch->q->peers);
		pthread_mutex_unlock(&ch->q->mu);
	}
	release(ch);
	return r;
}

static const struct ipcx__chan_ops nats_ops = {
	.send = nats_send,
	.send_to = nats_send_to,
	.recv = nats_recv,
	.accept = nats_accept,
	.stats = nats_stats,
	.addr = nats_addr,
	.close = nats_close,
};

static const struct ipcx_tran nats_tran = {
	.scheme = "nats",
	.options = nats_options,
	.listen = nats_listen,
	.dial = nats_dial,
};

#endif /* IPCX_HAVE_NATS */

const struct ipcx_tran *const ipcx__trans_nats[] = { &nats_tran, NULL };
