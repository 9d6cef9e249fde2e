/*
 * A pool's queues over a channel URL: the rule that turns the URL the user
 * gives into one queue per worker, made by the master, owned by it and
 * removed by it (docs/pool.md, "Queues").
 *
 * Each worker process gets names of its own, NAME-sSEATgGEN (then 't' for
 * tasks, 'r' for results), put after the URL's path: "fifo:/run/app/" gives
 * /run/app/NAME-s0g1t, "unix:@app." gives @app.NAME-s0g1, "shm:" gives
 * /NAME-s0g1t.  System V queues get a random key each (created exclusively,
 * another one tried if taken; "sysvmq:KEY" keeps KEY's upper 16 bits);
 * tcp://HOST:0 an ephemeral port each.
 *
 * Three ways to make them, by what the transport's listen and dial do
 * (QM_* in poolwire_int.h).  Names in the file system exist only while a
 * worker starts: once it is up, the master removes them (the channels live
 * on in open descriptors), and if it dies before, the master removes them
 * then.  So a master killed after its workers are up leaves none.
 */
#include "poolmaster_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct qscheme {
	const char *name;
	int mode;
	bool ring, key, path; /* a ring; a random System V key; a path (or @name) is required */
	/* Loses messages and says so (-ECONNRESET, -ENOBUFS ...): any error on the
	 * queue is its worker's death; exec'd workers only (nats://). */
	bool lossy;
	const char *refused;  /* why the pool cannot use it */
};

static const struct qscheme schemes[] = {
	{ "shm", QM_DIAL, .ring = true },
	{ "sysvshm", QM_DIAL, .ring = true, .key = true },
	{ "mmap", QM_DIAL, .ring = true, .path = true },
	{ "mq", QM_DIAL, .ring = false },
	{ "sysvmq", QM_DIAL, .key = true },
	{ "file", QM_DIAL, .path = true },
	{ "fifo", QM_LISTEN, .path = true },
	{ "unixgram", QM_LISTEN, .path = true },
	{ "unix", QM_ACCEPT, .path = true },
	{ "unixpacket", QM_ACCEPT, .path = true },
	{ "tcp", QM_ACCEPT, .path = false },
	{ "udp", .refused = "UDP may lose, duplicate or reorder a datagram, and a task lost on "
			    "the way would never have an outcome" },
	{ "nats", QM_LISTEN, .lossy = true },
	{ "fd", .refused = "the pool makes each worker's descriptors itself: use \"socket\" or "
			   "\"stdio\"" },
};

#define RING_SPSC_OPTS "spsc=1"

/* Whether the options (a=b&c=d) name opt. */
static bool has_opt(const char *opts, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *o = opts; *o; o++)
		if ((o == opts || o[-1] == '&') && !strncmp(o, opt, n) && o[n] == '=')
			return true;
	return false;
}

static int bad(const char *q, const char *why)
{
	return ipcx_errdetail_set(-EINVAL, "pool: queue '%s': %s (docs/pool.md, \"Queues\")", q, why);
}

/*
 * nats://HOST:PORT[,...]/PREFIX: each worker's subjects are PREFIX, then
 * NAME-sSgG, then t or r.  PREFIX is whole tokens ending in a dot
 * ("jobs." gives jobs.NAME-s0g1t), the start of one token ("jobs-" gives
 * jobs-NAME-s0g1t), or nothing; NAME, within one token, has no dot.
 */
static int check_subject_prefix(ipcx_pool *p, const char *q, const char *path, size_t len)
{
	const char *slash = len > 2 && !strncmp(path, "//", 2) ? memchr(path + 2, '/', len - 2)
								: NULL;
	if (!slash || slash == path + 2)
		return bad(q, "want nats://HOST:PORT[,HOST:PORT...]/PREFIX, each worker's subjects "
			      "PREFIX + NAME-sSgG + t or r");
	for (const char *c = slash + 1; c < path + len; c++)
		if (*c == '*' || *c == '>' || (unsigned char)*c <= ' ' || *c == 0x7f ||
		    (*c == '.' && (c == slash + 1 || c[-1] == '.')))
			return bad(q, "the subject prefix is tokens ending in '.' (\"jobs.\") or the "
				      "start of one (\"jobs-\"): no wildcards, blanks or empty tokens");
	const char *name = p->o.name ? p->o.name : "";
	for (const char *c = name; *c; c++)
		if (*c == '.' || *c == '*' || *c == '>' || (unsigned char)*c <= ' ' || *c == 0x7f)
			return ipcx_errdetail_set(-EINVAL, "pool: name '%s': over nats:// it is part "
						  "of one subject token: no '.', '*', '>' or blanks",
						  name);
	return 0;
}

/* The path part for scheme k: what every name starts with. */
static int check_path(ipcx_pool *p, const struct qscheme *k, const char *q, const char *path,
		      size_t len)
{
	if (k->lossy) {
		int r = check_subject_prefix(p, q, path, len);
		if (r < 0)
			return r;
	} else if (!strcmp(k->name, "tcp")) {
		if (len < 5 || strncmp(path, "//", 2) || len < 4 || strncmp(path + len - 2, ":0", 2))
			return bad(q, "want tcp://HOST:0, each worker gets a port of its own");
	} else if (k->key) {
		/* "sysvmq:" any key; "sysvmq:KEY": keys with KEY's upper 16 bits */
		char num[16], *end;
		unsigned long base = 0;
		if (len) {
			snprintf(num, sizeof(num), "%.*s", (int)(len < 15 ? len : 15), path);
			base = strtoul(num, &end, 0);
			if (len > 14 || *end || base > 0x7fffffff || !(base >> 16))
				return bad(q, "want \"SCHEME:\" or \"SCHEME:KEY\", KEY from 0x10000 "
					      "to 0x7fffffff (the pool keeps its upper 16 bits)");
		}
		p->qkeybase = (uint32_t)base & 0x7fff0000u;
		len = 0;
	} else if (!k->path) { /* shm:, mq: names are "/" and one word */
		if (len && (path[0] != '/' || memchr(path + 1, '/', len - 1)))
			return bad(q, "want \"SCHEME:\" or \"SCHEME:/prefix\"");
		if (!len)
			path = "/", len = 1;
	} else {
		bool abstract = !strncmp(k->name, "unix", 4) && len && path[0] == '@';
		if (!len || (path[0] != '/' && !abstract))
			return bad(q, "want a folder or a prefix of names: \"SCHEME:/dir/\", "
				      "\"SCHEME:/dir/prefix\" (or \"SCHEME:@prefix\" for a Unix socket)");
		p->qfs = !abstract;
	}
	if (len >= sizeof(p->qpath))
		return bad(q, "path too long");
	memcpy(p->qpath, path, len);
	p->qpath[len] = 0;
	return 0;
}

int poolq_parse(ipcx_pool *p, const char *q)
{
	const char *colon = strchr(q, ':');
	const struct qscheme *k = NULL;
	for (size_t i = 0; colon && i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].name) == (size_t)(colon - q) &&
		    !strncmp(q, schemes[i].name, (size_t)(colon - q)))
			k = &schemes[i];
	if (!k)
		return ipcx_errdetail_set(-EINVAL, "pool: queue '%s': want a channel URL (\"shm:\", "
						   "\"fifo:/dir/\", \"unix:@prefix\" ...), \"socket\" or "
						   "\"stdio\"", q);
	if (k->refused)
		return bad(q, k->refused);
	if (k->lossy && !p->o.argv)
		return bad(q, "a nats:// queue is for exec'd workers (argv), not fn: a forked worker "
			      "would run the NATS client in a copy of the master, whose client "
			      "threads and library state fork does not copy; an exec'd program "
			      "starts it afresh");
	const char *rest = colon + 1, *mark = strchr(rest, '?');
	const char *user = mark ? mark + 1 : "";
	if (strpbrk(q, " \t\n"))
		return bad(q, "no white space");
	static const char *const mine[] = { "max", "capacity", "spsc", "policy", "fanout", "sub",
					    "keep", "type", "rtype", "msgsize", "from" };
	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++)
		if (has_opt(user, mine[i]))
			return bad(q, "the pool sets max, capacity, spsc and policy; keep, fanout, "
				      "sub, type, rtype, msgsize and from would break its queues");
	/* A queue group or a stream would share or redeliver a worker's
	 * tasks; reply= is the pool's own (its loss notices, below). */
	static const char *const nats_mine[] = { "queue", "stream", "reply", "idle" };
	for (size_t i = 0; k->lossy && i < sizeof(nats_mine) / sizeof(nats_mine[0]); i++)
		if (has_opt(user, nats_mine[i]))
			return bad(q, "the pool addresses each worker on subjects of its own: queue= "
				      "(a queue group) and stream= would hand its tasks to others or "
				      "twice, and reply= and idle= are the pool's");
	if (strlen(user) >= sizeof(p->quser))
		return bad(q, "options too long");
	int r = check_path(p, k, q, rest, mark ? (size_t)(mark - rest) : strlen(rest));
	if (r < 0)
		return r;
	p->q = Q_URL;
	p->qmode = k->mode;
	p->qring = k->ring;
	p->qkey = k->key;
	p->qlossy = k->lossy;
	snprintf(p->qscheme, sizeof(p->qscheme), "%s", k->name);
	snprintf(p->quser, sizeof(p->quser), "%s", user);
	return 0;
}

/* ---- making a worker's queue ------------------------------------------------ */

/* The options the pool sets, then the user's. */
static void queue_opts(ipcx_pool *p, char *buf, size_t cap)
{
	size_t msg = FRAME + p->o.max_msg;
	int n;
	if (p->qring) {
		/* Room for the window's tasks at the largest size (a message
		 * never wraps: one more for the padding).  A worker waiting for
		 * a task spins 2 us, not a ring's 20 (SPIN_NS in task.c). */
		size_t cells = (msg + 63) / 64, ring = 256;
		while (ring < (p->o.window + 1) * cells * 64 || ring < 2 * msg)
			ring *= 2;
		n = snprintf(buf, cap, "%s&policy=block&max=%zu&capacity=%zu%s", RING_SPSC_OPTS, msg,
			     ring, has_opt(p->quser, "spin") ? "" : "&spin=2");
	} else {
		n = snprintf(buf, cap, "max=%zu", msg);
	}
	if (*p->quser && n > 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n, "&%s", p->quser);
}

/* URL number k (0 tasks, 1 results; -1 the one duplex queue) of seat si. */
static void queue_url(ipcx_pool *p, unsigned si, int k, const char *opts, char *url, size_t cap)
{
	if (p->qkey) {
		uint32_t key = 0;
		while (key == 0) { /* 0 is IPC_PRIVATE */
			if (getrandom(&key, sizeof(key), 0) != sizeof(key))
				key = (uint32_t)pool_now_ns();
			key = p->qkeybase ? p->qkeybase | (key & 0xffff) : key & 0x7fffffff;
		}
		snprintf(url, cap, "%s:%u?%s", p->qscheme, key, opts);
	} else if (!strcmp(p->qscheme, "tcp")) {
		snprintf(url, cap, "tcp:%s?%s", p->qpath, opts);
	} else {
		snprintf(url, cap, "%s:%s%s-s%ug%u%s?%s", p->qscheme, p->qpath, p->name, si, p->gen,
			 k < 0 ? "" : k ? "r" : "t", opts);
	}
}

/* The path of a URL made by queue_url (up to '?'), kept for removal. */
static int keep_path(struct seat *s, int k, const char *url)
{
	const char *path = strchr(url, ':') + 1;
	if (!(s->path[k] = strndup(path, strcspn(path, "?"))))
		return -ENOMEM;
	return 0;
}

/* url with reply=1 added (its options are never empty: the pool sets max). */
static char *with_reply(const char *url)
{
	size_t n = strlen(url);
	char *d = malloc(n + sizeof("&reply=1"));
	if (d)
		snprintf(d, n + sizeof("&reply=1"), "%s&reply=1", url);
	return d;
}

/* Listen on URL number k of seat si (a fresh random key while it is taken). */
static int listen_on(ipcx_pool *p, unsigned si, int k, const char *opts, unsigned flags,
		     char *url, size_t cap, ipcx_chan **c)
{
	for (int tries = 0;; tries++) {
		queue_url(p, si, k, opts, url, cap);
		struct stat st;
		/* mmap: opens a log that exists: never one that is not ours to make. */
		if (p->qfs && !strcmp(p->qscheme, "mmap") && lstat(strchr(url, ':') + 1, &st) == 0)
			return ipcx_errdetail_set(-EEXIST, "pool: %s exists already", url);
		int r = ipcx_listen(url, flags, c);
		if (r == -EEXIST && p->qkey && tries < 32)
			continue;
		if (r == 0 && p->qfs)
			r = keep_path(&p->seat[si], k < 0 ? 0 : k, url);
		return r;
	}
}

int poolq_make(ipcx_pool *p, unsigned si, char *turl, char *rurl, size_t cap)
{
	struct seat *s = &p->seat[si];
	char opts[200];
	queue_opts(p, opts, sizeof(opts));
	int r;
	switch (p->qmode) {
	case QM_ACCEPT:
		if ((r = listen_on(p, si, -1, opts, IPCX_ACCEPT, turl, cap, &s->acc)) < 0)
			return r;
		if (!strcmp(p->qscheme, "tcp")) { /* the port the system chose */
			char addr[160];
			if ((r = ipcx_addr(s->acc, addr, sizeof(addr))) < 0)
				return r;
			snprintf(turl, cap, "%.*s?%s", (int)strcspn(addr, "?"), addr, opts);
		}
		snprintf(rurl, cap, "%s", turl);
		while (!s->cookie)
			if (getrandom(&s->cookie, sizeof(s->cookie), 0) != sizeof(s->cookie))
				return ipcx_errdetail_set(-errno, "pool: getrandom: %s", strerror(errno));
		return 0;
	case QM_LISTEN:
		queue_url(p, si, 0, opts, turl, cap);
		if (p->qfs && (r = keep_path(s, 0, turl)) < 0)
			return r;
		/* nats://: both dialled ends take reply=1, which gives a dialled
		 * channel a descriptor and its own connection's loss notices
		 * (docs/pool.md, "Queues over nats://"). */
		if (!(s->dial_url = p->qlossy ? with_reply(turl) : strdup(turl)))
			return -ENOMEM;
		if ((r = listen_on(p, si, 1, opts, 0, rurl, cap, &s->rx)) < 0)
			return r;
		if (p->qlossy && strlen(rurl) + sizeof("&reply=1") > cap)
			return ipcx_errdetail_set(-ENAMETOOLONG, "pool: queue URL too long: %s", rurl);
		if (p->qlossy)
			strcat(rurl, "&reply=1");
		break;
	default:
		if ((r = listen_on(p, si, 0, opts, 0, turl, cap, &s->tx)) < 0 ||
		    (r = listen_on(p, si, 1, opts, 0, rurl, cap, &s->rx)) < 0)
			return r;
	}
	/* Rings wake the master through the pool's event (pw_wake_master);
	 * the others are watched as well. */
	if (!p->qring && (s->rx_fd = ipcx_fileno(s->rx)) < 0)
		return s->rx_fd;
	return 0;
}

/* ---- when the worker is up, and after ------------------------------------- */

/* Remove a name made for seat s: only a non-folder of our own, not a link. */
static void remove_path(char **path)
{
	struct stat st;
	if (*path && lstat(*path, &st) == 0 && st.st_uid == geteuid() && !S_ISDIR(st.st_mode) &&
	    !S_ISLNK(st.st_mode))
		unlink(*path);
	free(*path);
	*path = NULL;
}

/*
 * The worker's connection: the first one that says, first thing, the seat's
 * cookie and the worker's pid.  Another (someone else's on 127.0.0.1) is
 * closed.  The worker connected and sent that before it said it is up, so
 * the waits are guards only.
 */
static int accept_worker(ipcx_pool *p, struct seat *s)
{
	(void)p;
	for (int tries = 0; tries < 8; tries++) {
		ipcx_chan *c;
		int r = ipcx_accept(s->acc, 1000, &c);
		if (r < 0)
			return r;
		struct frame f;
		ssize_t n = ipcx_recv(c, &f, sizeof(f), 1000);
		if (n == (ssize_t)FRAME && f.kind == F_HELLO && f.id == s->cookie &&
		    f.dseq == (uint64_t)s->pid) {
			s->tx = s->rx = c;
			return 0;
		}
		ipcx_close(c);
	}
	return ipcx_errdetail_set(-EPROTO, "pool: worker %d did not connect to its queue",
				  (int)s->pid);
}

int poolq_up(ipcx_pool *p, struct seat *s)
{
	int r = 0;
	if (p->q != Q_URL)
		return 0;
	if (p->qmode == QM_ACCEPT && (r = accept_worker(p, s)) == 0) {
		ipcx_close(s->acc); /* removes its socket file */
		s->acc = NULL;
		if ((s->rx_fd = ipcx_fileno(s->rx)) < 0)
			r = s->rx_fd;
	}
	if (p->qmode == QM_LISTEN && !s->tx)
		r = ipcx_dial(s->dial_url, 0, &s->tx);
	/* nats://: the task channel's descriptor says when its connection
	 * lost messages or closed, or nobody listens on the worker's subject. */
	if (r == 0 && p->qlossy && (s->tx_fd = ipcx_fileno(s->tx)) < 0)
		r = s->tx_fd;
	/* Both ends are open: the names are no longer needed. */
	remove_path(&s->path[0]);
	remove_path(&s->path[1]);
	return r;
}

void poolq_clean(struct seat *s)
{
	ipcx_close(s->acc);
	s->acc = NULL;
	free(s->dial_url);
	s->dial_url = NULL;
	s->cookie = 0;
	remove_path(&s->path[0]);
	remove_path(&s->path[1]);
}
