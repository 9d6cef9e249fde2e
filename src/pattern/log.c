/*
 * The writing side of the logging pipeline (docs/log.md): a log handle
 * puts records into the log's channel and never waits for the drain.
 *
 * On a ring (shm:, sysvshm:, mmap:) a record is built in place: reserve,
 * fill, commit, with no copy and no system call.  The log is made with
 * policy=drop, so a reservation that finds the ring full drops the record
 * and counts it in the ring (what `ipcx ls` shows); the handle counts it
 * too, and its next record that gets through carries the count to the
 * drain.  Other channels get the record by a send that does not wait.
 *
 * Threads share a handle through a mutex: a ring channel is used by one
 * thread at a time, and a record is one reservation.  The lock is held for
 * the clock read and the reservation only (a printf is formatted before).
 */
#include "logrec_int.h"

#include <errno.h>
#include <ipcx.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A printf message up to this long is formatted on the stack, before the lock. */
#define LOG_FMT_STACK 512
/* The longest a writer that does not block waits for another writer's claim. */
#define LOG_WAIT_MS 1
/* The wall clock is read again when the cached offset is older than this. */
#define LOG_WALL_REFRESH_NS 1000000

struct ipcx_log {
	ipcx_chan *c;
	pthread_mutex_t mu;
	bool ring;          /* reserve/commit; else a send */
	int timeout;        /* for reserve or send (see ipcx_log_open) */
	pid_t pid;          /* the process that opened it */
	size_t max;         /* largest record */
	uint8_t name_len;
	char name[LOG_NAME_MAX];
	uint64_t pending, written, dropped;
	int64_t wall_off, wall_at; /* CLOCK_REALTIME - CLOCK_MONOTONIC, read at wall_at */
	char *buf;          /* channels without reserve: the record is built here */
};

/* ---- process and thread ids, without a system call per record ------------------- */

static pid_t self_pid;
static _Atomic unsigned fork_gen;
static __thread __attribute__((tls_model("initial-exec"))) pid_t self_tid;
static __thread __attribute__((tls_model("initial-exec"))) unsigned self_tid_gen;
static pthread_once_t ids_once = PTHREAD_ONCE_INIT;

static void ids_after_fork(void)
{
	self_pid = getpid();
	atomic_fetch_add(&fork_gen, 1);
}

static void ids_init(void)
{
	self_pid = getpid();
	pthread_atfork(NULL, NULL, ids_after_fork);
}

/* The calling thread's id, asked of the kernel once per thread (and fork). */
static inline pid_t thread_id(void)
{
	unsigned gen = atomic_load_explicit(&fork_gen, memory_order_relaxed) + 1;
	if (self_tid_gen != gen) {
		self_tid = gettid();
		self_tid_gen = gen;
	}
	return self_tid;
}

/* ---- levels ---------------------------------------------------------------------- */

static const char *const level_names[] = { "emerg",   "alert",  "crit", "err",
					   "warning", "notice", "info", "debug" };

IPCX_EXPORT const char *ipcx_log_level_name(int level)
{
	return level >= 0 && level < 8 ? level_names[level] : NULL;
}

IPCX_EXPORT int ipcx_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} aliases[] = { { "error", IPCX_LOG_ERR }, { "warn", IPCX_LOG_WARNING },
			{ "panic", IPCX_LOG_EMERG } };
	for (int i = 0; name && i < 8; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	for (size_t i = 0; name && i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (!strcmp(name, aliases[i].name))
			return aliases[i].level;
	return -EINVAL;
}

/* ---- opening ---------------------------------------------------------------------- */

bool ipcx__log_is_ring(const char *url)
{
	return !strncmp(url, "shm:", 4) || !strncmp(url, "sysvshm:", 8) ||
	       !strncmp(url, "mmap:", 5);
}

/* Does the URL's query name option key? */
static bool has_opt(const char *url, const char *key)
{
	const char *q = strchr(url, '?');
	size_t n = strlen(key);
	for (const char *p = q; p; p = strchr(p + 1, '&'))
		if (!strncmp(p + 1, key, n) && p[1 + n] == '=')
			return true;
	return false;
}

/* Whoever makes the log first, writer or drain, makes it the same way. */
char *ipcx__log_url(const char *url, bool block)
{
	char *u = NULL;
	if (ipcx__log_is_ring(url) && !has_opt(url, "policy")) {
		if (asprintf(&u, "%s%cpolicy=%s", url, strchr(url, '?') ? '&' : '?',
			     block ? "block" : "drop") < 0)
			u = NULL;
	} else {
		u = strdup(url);
	}
	return u;
}

static void set_name(ipcx_log *l, const char *name)
{
	if (!name)
		name = program_invocation_short_name;
	size_t n = strlen(name);
	l->name_len = (uint8_t)(n < LOG_NAME_MAX ? n : LOG_NAME_MAX);
	memcpy(l->name, name, l->name_len);
}

IPCX_EXPORT int ipcx_log_open(const char *url, const char *name, unsigned flags, ipcx_log **ret)
{
	if (!url || !ret || (flags & ~IPCX_LOG_BLOCK))
		return -EINVAL;
	pthread_once(&ids_once, ids_init);
	ipcx_log *l = calloc(1, sizeof(*l));
	char *u = ipcx__log_url(url, flags & IPCX_LOG_BLOCK);
	if (!l || !u) {
		free(l);
		free(u);
		return -ENOMEM;
	}
	int r = ipcx_dial(u, 0, &l->c);
	free(u);
	if (r < 0) {
		free(l);
		return r;
	}
	l->ring = ipcx__log_is_ring(url);
	/*
	 * A full policy=drop ring drops at once, whatever the timeout: what a
	 * writer may wait for is another writer's claim in progress (a few
	 * stores), at most LOG_WAIT_MS, or, on a log made with policy=block
	 * by a writer that did not ask to block, room for as long.
	 */
	l->timeout = (flags & IPCX_LOG_BLOCK) ? -1 : l->ring ? LOG_WAIT_MS : 0;
	l->max = ipcx_max_msg(l->c);
	l->pid = self_pid;
	set_name(l, name);
	if (l->max < LOG_REC_HDR + l->name_len + 1) {
		ipcx_close(l->c);
		free(l);
		return -EMSGSIZE;
	}
	if (!l->ring && !(l->buf = malloc(l->max))) {
		ipcx_close(l->c);
		free(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->mu, NULL);
	*ret = l;
	return 0;
}

static int put(ipcx_log *l, int level, const char *msg, size_t len, uint8_t flags);

IPCX_EXPORT int ipcx_log_close(ipcx_log *l)
{
	if (!l)
		return 0;
	/*
	 * Drops after the last record: one try to say so, in a record of its
	 * own.  If it does not fit either, the log counts it dropped too.
	 */
	if (l->pending && l->pid == self_pid)
		put(l, IPCX_LOG_WARNING, NULL, 0, LOG_REC_DROPS);
	int r = ipcx_close(l->c);
	pthread_mutex_destroy(&l->mu);
	free(l->buf);
	free(l);
	return r;
}

/* ---- writing ---------------------------------------------------------------------- */

/*
 * Both clocks from one read: the wall clock is the monotonic one plus an
 * offset read at most LOG_WALL_REFRESH_NS ago.  The two run at the same
 * rate (NTP slews both); only a step of the wall clock (settimeofday)
 * shows up late, by at most that long.
 */
static void stamp(ipcx_log *l, struct log_rec_hdr *h)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t mono = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (mono - l->wall_at > LOG_WALL_REFRESH_NS || !l->wall_at) {
		struct timespec w;
		clock_gettime(CLOCK_REALTIME, &w);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		mono = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		l->wall_off = (int64_t)w.tv_sec * 1000000000 + w.tv_nsec - mono;
		l->wall_at = mono;
	}
	h->mono_ns = (uint64_t)mono;
	h->wall_ns = (uint64_t)(mono + l->wall_off);
}

/* The header of the next record, and its size with a message of len bytes. */
static size_t header(ipcx_log *l, int level, size_t *len, struct log_rec_hdr *h)
{
	size_t room = l->max - LOG_REC_HDR - l->name_len;
	h->magic = LOG_REC_MAGIC;
	h->level = (uint8_t)level;
	h->flags = 0;
	h->name_len = l->name_len;
	h->pad = 0;
	h->pid = (uint32_t)l->pid;
	h->tid = (uint32_t)thread_id();
	h->dropped = l->pending;
	if (*len > room) {
		*len = room;
		h->flags |= LOG_REC_TRUNC;
	}
	stamp(l, h);
	return LOG_REC_HDR + l->name_len + *len;
}

/* The record did not get through: count it, for the next one to report. */
static int lost(ipcx_log *l, int r)
{
	l->pending++;
	l->dropped++;
	/* A full log, whichever way the channel said it. */
	return r == -EAGAIN || r == -ETIMEDOUT ? -ENOBUFS : r;
}

/* Room for a record of n bytes (the lock held): 0 and where to build it, or counted lost. */
static int begin(ipcx_log *l, size_t n, char **p)
{
	if (!l->ring) {
		*p = l->buf;
		return 0;
	}
	void *slot;
	int r = ipcx_reserve(l->c, n, l->timeout, &slot);
	if (r < 0)
		return lost(l, r);
	*p = slot;
	return 0;
}

/* The record of n bytes at p is whole: commit or send it. */
static int finish(ipcx_log *l, char *p, size_t n, const struct log_rec_hdr *h)
{
	memcpy(p, h, LOG_REC_HDR);
	memcpy(p + LOG_REC_HDR, l->name, l->name_len);
	int r = l->ring ? ipcx_commit(l->c, n) : (int)ipcx_send(l->c, p, n, l->timeout);
	if (r < 0)
		return lost(l, r);
	l->pending = 0;
	l->written++;
	return 0;
}

static int put(ipcx_log *l, int level, const char *msg, size_t len, uint8_t flags)
{
	struct log_rec_hdr h;
	size_t n = header(l, level, &len, &h);
	h.flags |= flags;
	char *p;
	int r = begin(l, n, &p);
	if (r < 0)
		return r;
	if (len)
		memcpy(p + LOG_REC_HDR + l->name_len, msg, len);
	return finish(l, p, n, &h);
}

/* A message of len bytes (as vsnprintf counted it) formatted into the record. */
static int put_fmt(ipcx_log *l, int level, size_t len, const char *fmt, va_list ap)
{
	struct log_rec_hdr h;
	size_t n = header(l, level, &len, &h);
	if (n + 1 > l->max) { /* vsnprintf's '\0' takes the last byte */
		len--, n--;
		h.flags |= LOG_REC_TRUNC;
	}
	char *p;
	int r = begin(l, n + 1, &p);
	if (r < 0)
		return r;
	vsnprintf(p + LOG_REC_HDR + l->name_len, len + 1, fmt, ap);
	return finish(l, p, n, &h);
}

static int enter(ipcx_log *l, int level)
{
	if (!l || level < 0 || level > 7)
		return -EINVAL;
	pthread_mutex_lock(&l->mu);
	if (l->pid != self_pid) {
		pthread_mutex_unlock(&l->mu);
		return -ECHILD; /* the parent's channel names the parent in the ring */
	}
	return 0;
}

IPCX_EXPORT int ipcx_log_write(ipcx_log *l, int level, const char *msg, size_t len)
{
	if (!msg && len)
		return -EINVAL;
	int r = enter(l, level);
	if (r < 0)
		return r;
	r = put(l, level, msg, len, 0);
	pthread_mutex_unlock(&l->mu);
	return r;
}

IPCX_EXPORT int ipcx_log_vprintf(ipcx_log *l, int level, const char *fmt, va_list ap)
{
	if (!fmt)
		return -EINVAL;
	char small[LOG_FMT_STACK];
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	int r = n < 0 ? -EINVAL : enter(l, level);
	if (r == 0) {
		if ((size_t)n < sizeof(small))
			r = put(l, level, small, (size_t)n, 0);
		else
			r = put_fmt(l, level, (size_t)n, fmt, again);
		pthread_mutex_unlock(&l->mu);
	}
	va_end(again);
	return r;
}

IPCX_EXPORT int ipcx_log_printf(ipcx_log *l, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = ipcx_log_vprintf(l, level, fmt, ap);
	va_end(ap);
	return r;
}

IPCX_EXPORT int ipcx_log_stats(ipcx_log *l, struct ipcx_log_stats *ret)
{
	if (!l || !ret)
		return -EINVAL;
	pthread_mutex_lock(&l->mu);
	*ret = (struct ipcx_log_stats){ .written = l->written, .dropped = l->dropped,
					.pending = l->pending };
	pthread_mutex_unlock(&l->mu);
	return 0;
}
