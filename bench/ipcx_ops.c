/*
 * ipcx itself, through the public API only.  Every transport is one row of
 * URL template below; a row whose scheme the library does not know (yet) is
 * left out of the run by the driver (bh_ipcx_available), so the table grows
 * as transports land with no other change here.
 *
 * Templates: %D is the run's private folder, %N a name unique to the run
 * and the direction ("ipcxb-123-a"), %K a System V key, %S the host:port
 * of the nats-server the driver started for the run.  The driver appends
 * max=SIZE so that every transport accepts the message size measured; one
 * that does not know the option is opened without it.
 */
#include "bench.h"
#include "driver.h"

#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum style {
	ST_TWO,    /* two one-way objects: the receiver listens, the sender dials */
	ST_ACCEPT, /* one duplex connection: listen with IPCX_ACCEPT, accept, dial */
	ST_PAIR,   /* ipcx_pair() made before fork */
};

struct row {
	enum style style;
	const char *tmpl; /* URL template, or the ipcx_pair() kind */
};

struct ixside {
	char path[400];      /* the file this side listened on, in the run's folder */
	ipcx_chan *tx, *rx;  /* the same channel when duplex */
	ipcx_chan *listener; /* ST_ACCEPT server: kept open until the end */
	ipcx_chan *own;      /* ST_TWO: the object this side listens on */
	struct ipcx_msg *v;  /* batched rows: BH_BATCH messages ... */
	char *vbuf;          /* ... and, receiving, their buffers */
};

/* Expand a template for direction d ('a' client->server, 'b' back). */
static void expand(const struct bh_params *p, const char *t, char d, char *out, size_t cap)
{
	size_t o = 0;
	for (; *t && o + 1 < cap; t++) {
		char tmp[160] = "";
		if (t[0] == '%' && t[1] == 'D')
			snprintf(tmp, sizeof(tmp), "%s", p->dir);
		else if (t[0] == '%' && t[1] == 'N')
			snprintf(tmp, sizeof(tmp), "%s-%u%c", p->prefix, p->seq, d);
		else if (t[0] == '%' && t[1] == 'K')
			snprintf(tmp, sizeof(tmp), "%d", p->key + (d == 'b'));
		else if (t[0] == '%' && t[1] == 'S')
			snprintf(tmp, sizeof(tmp), "%s", p->nats);
		else {
			out[o++] = *t;
			continue;
		}
		t++;
		o += (size_t)snprintf(out + o, cap - o, "%s", tmp);
		if (o >= cap)
			o = cap - 1;
	}
	out[o] = 0;
}

static bool unknown_option(int r)
{
	return r == -EINVAL && strstr(ipcx_errdetail(), "unknown option");
}

/* Listen on the expanded template, with max=SIZE if the transport takes it. */
static int listen_sized(const struct bh_params *p, const char *url, unsigned flags,
			ipcx_chan **ret, char *suffix, size_t cap)
{
	char full[512];
	size_t max = p->size < 64 ? 64 : p->size;
	snprintf(suffix, cap, "%smax=%zu", strchr(url, '?') ? "&" : "?", max);
	snprintf(full, sizeof(full), "%s%s", url, suffix);
	int r = ipcx_listen(full, flags, ret);
	if (unknown_option(r)) {
		suffix[0] = 0;
		r = ipcx_listen(url, flags, ret);
	}
	return r;
}

/*
 * Which limit a size is above, from the library's detail, which names it:
 * "...: msgsize=65536 exceeds /proc/sys/fs/mqueue/msgsize_max (8192); ..."
 * gives "msgsize_max" and "8192", "...: option max: '...' is out of range
 * (1 to 1073741824)" gives "largest message (max=)" and "1073741824".
 * False if the detail says neither.
 */
static bool limit_of(const char *d, char *name, size_t ncap, char *value, size_t vcap)
{
	const char *p = strstr(d, " exceeds "), *open;
	if (p) {
		p += strlen(" exceeds ");
		if (!strncmp(p, "the ", 4))
			p += 4;
		if (!(open = strstr(p, " (")))
			return false;
		size_t n = (size_t)(open - p);
		const char *slash = memrchr(p, '/', n);
		if (slash) { /* a /proc file: its name is the limit's */
			n -= (size_t)(slash + 1 - p);
			p = slash + 1;
		}
		snprintf(name, ncap, "%.*s", (int)n, p);
		snprintf(value, vcap, "%.*s", (int)strcspn(open + 2, ")"), open + 2);
		return true;
	}
	if (strstr(d, "option max") && (p = strstr(d, "out of range (")) && (p = strstr(p, " to "))) {
		snprintf(name, ncap, "largest message (max=)");
		snprintf(value, vcap, "%.*s", (int)strcspn(p + 4, ")"), p + 4);
		return true;
	}
	return false;
}

static int note_fail(struct bh_ctx *c, int r, const char *what, const char *url)
{
	/* A message larger than the transport (or a system limit the library
	 * names) allows is not a failure: say which limit it is above. */
	const char *d = ipcx_errdetail();
	char name[96], value[32], size[32];
	bool too_big = r == -EMSGSIZE ||
		       (r == -EINVAL && (strstr(d, "exceeds") || strstr(d, "option max")));
	if (too_big && limit_of(d, name, sizeof(name), value, sizeof(value))) {
		bh_note(c->res, BH_SKIP, "%s is above %.*s's %s, %s",
			fmt_size(c->p->size, size, sizeof(size)), (int)strcspn(url, ":"), url, name,
			value);
		return r;
	}
	/* A transport whose library is not installed here (nats://) is not a
	 * failure of the run either. */
	bool absent = r == -EPROTONOSUPPORT;
	bh_note(c->res, too_big || absent ? BH_SKIP : BH_ERROR, "%s %s: %s%s%s%s", what, url,
		ipcx_strerror(r), *d ? " (" : "", d, *d ? ")" : "");
	return r;
}

/* The address to hand to the dialer: what the system chose, plus our options. */
static void dial_url(ipcx_chan *ch, const char *url, const char *suffix, char *out, size_t cap)
{
	char addr[400];
	if (ipcx_addr(ch, addr, sizeof(addr)) < 0)
		snprintf(addr, sizeof(addr), "%s", url);
	snprintf(out, cap, "%s%s", addr, strchr(addr, '?') ? "" : suffix);
}

static int check_size(struct bh_ctx *c, ipcx_chan *ch)
{
	if (ch && ipcx_max_msg(ch) < c->p->size) {
		bh_note(c->res, BH_SKIP, "largest message is %zu bytes", ipcx_max_msg(ch));
		return -EMSGSIZE;
	}
	return 0;
}

/*
 * Persistent transports (mmap:, file:) keep their file after close: that is
 * their point.  The bench's files are its own, in its folder, so it removes
 * them itself.
 */
static void note_path(struct ixside *s, const struct bh_params *p, const char *url)
{
	const char *colon = strchr(url, ':');
	if (!colon || strncmp(colon + 1, p->dir, strlen(p->dir)))
		return;
	snprintf(s->path, sizeof(s->path), "%s", colon + 1);
	s->path[strcspn(s->path, "?")] = 0;
}

static int open_two(struct bh_ctx *c, struct ixside *s, const struct row *row)
{
	char url[400], suffix[64], mine[512], theirs[512];
	expand(c->p, row->tmpl, c->side ? 'a' : 'b', url, sizeof(url));
	note_path(s, c->p, url);
	int r = listen_sized(c->p, url, 0, &s->own, suffix, sizeof(suffix));
	if (r)
		return note_fail(c, r, "listen", url);
	s->rx = s->own;
	dial_url(s->own, url, suffix, mine, sizeof(mine));
	r = bh_ctl_send(c, mine, strlen(mine) + 1);
	if (!r)
		r = (int)bh_ctl_recv_str(c, theirs, sizeof(theirs));
	if (r < 0)
		return r;
	r = ipcx_dial(theirs, 0, &s->tx);
	if (r)
		return note_fail(c, r, "dial", theirs);
	return check_size(c, s->rx) ? -EMSGSIZE : check_size(c, s->tx);
}

static int open_accept(struct bh_ctx *c, struct ixside *s, const struct row *row)
{
	char url[400], suffix[64], addr[512];
	int r;
	expand(c->p, row->tmpl, 'a', url, sizeof(url));
	if (c->side) {
		r = listen_sized(c->p, url, IPCX_ACCEPT, &s->listener, suffix, sizeof(suffix));
		if (r)
			return note_fail(c, r, "listen", url);
		dial_url(s->listener, url, suffix, addr, sizeof(addr));
		r = bh_ctl_send(c, addr, strlen(addr) + 1);
		if (r)
			return r;
		r = ipcx_accept(s->listener, 30000, &s->rx);
		if (r)
			return note_fail(c, r, "accept", url);
	} else {
		r = (int)bh_ctl_recv_str(c, addr, sizeof(addr));
		if (r < 0)
			return r;
		r = ipcx_dial(addr, 0, &s->rx);
		if (r)
			return note_fail(c, r, "dial", addr);
	}
	s->tx = s->rx;
	return check_size(c, s->rx);
}

/* ---- ipcx_pair(): made by the harness before fork ---------------------------- */

struct pairset {
	ipcx_chan *a[2], *b[2]; /* pair i: a[i] sends, b[i] receives (pipe) */
	int n;
};

static size_t pair_bytes(const struct bh_params *p)
{
	(void)p;
	return sizeof(struct pairset);
}

static int pair_prepare_kind(void *shared, const char *kind)
{
	struct pairset *ps = shared;
	ps->n = !strcmp(kind, "pipe") ? 2 : 1;
	for (int i = 0; i < ps->n; i++) {
		int r = ipcx_pair(kind, 0, &ps->a[i], &ps->b[i]);
		if (r) {
			for (int j = 0; j < i; j++)
				ipcx_close(ps->a[j]), ipcx_close(ps->b[j]);
			return r;
		}
	}
	return 0;
}

static void pair_release(void *shared)
{
	struct pairset *ps = shared;
	for (int i = 0; i < ps->n; i++)
		ipcx_close(ps->a[i]), ipcx_close(ps->b[i]);
}

static int open_pair(struct bh_ctx *c, struct ixside *s)
{
	struct pairset *ps = c->shared;
	if (ps->n == 2) { /* two pipes: client sends on 0, server on 1 */
		s->tx = c->side ? ps->a[1] : ps->a[0];
		s->rx = c->side ? ps->b[0] : ps->b[1];
		ipcx_close(c->side ? ps->a[0] : ps->a[1]);
		ipcx_close(c->side ? ps->b[1] : ps->b[0]);
	} else { /* one duplex socket pair */
		s->tx = s->rx = c->side ? ps->b[0] : ps->a[0];
		ipcx_close(c->side ? ps->a[0] : ps->b[0]);
	}
	return check_size(c, s->tx);
}

/* ---- the operations ------------------------------------------------------------ */

static int ix_open(struct bh_ctx *c)
{
	const struct row *row = c->arg;
	struct ixside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	switch (row->style) {
	case ST_TWO:
		return open_two(c, s, row);
	case ST_ACCEPT:
		return open_accept(c, s, row);
	case ST_PAIR:
		return open_pair(c, s);
	}
	return -EINVAL;
}

static int ix_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct ixside *s = c->priv;
	ssize_t n = ipcx_send(s->tx, buf, len, -1);
	if (n == -EMSGSIZE) {
		/* Not a skip: the channel said it takes messages of this size. */
		const char *d = ipcx_errdetail();
		bh_note(c->res, BH_ERROR, "%s: send of %zu bytes refused although the channel's "
			"largest message is %zu%s%s%s", c->side ? "server" : "client", len,
			ipcx_max_msg(s->tx), *d ? " (" : "", d, *d ? ")" : "");
	}
	return n == (ssize_t)len ? 0 : n < 0 ? (int)n : -EIO;
}

static int ix_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct ixside *s = c->priv;
	ssize_t n = ipcx_recv(s->rx, buf, len, timeout_ms);
	return n == (ssize_t)len ? 0 : n < 0 ? (int)n : -EBADMSG;
}

/* The batch's descriptors, made on first use: n <= BH_BATCH. */
static int batch_vec(struct ixside *s, size_t len, bool bufs)
{
	if (!s->v && !(s->v = calloc(BH_BATCH, sizeof(*s->v))))
		return -ENOMEM;
	if (bufs && !s->vbuf) {
		size_t cap = len ? len : 1;
		if (!(s->vbuf = malloc(cap * BH_BATCH)))
			return -ENOMEM;
		for (size_t i = 0; i < BH_BATCH; i++)
			s->v[i] = (struct ipcx_msg){ .buf = s->vbuf + i * cap, .cap = cap };
	}
	return 0;
}

static int ix_sendv(struct bh_ctx *c, const void *buf, size_t len, size_t n)
{
	struct ixside *s = c->priv;
	int r = batch_vec(s, len, false);
	if (r)
		return r;
	for (size_t i = 0; i < n; i++)
		s->v[i] = (struct ipcx_msg){ .buf = (void *)buf, .len = len };
	for (size_t done = 0; done < n;) {
		ssize_t k = ipcx_sendv(s->tx, s->v + done, n - done, -1);
		if (k < 0)
			return (int)k;
		done += (size_t)k;
	}
	return 0;
}

static int ix_recvv(struct bh_ctx *c, size_t len, size_t n, int timeout_ms, size_t *got)
{
	struct ixside *s = c->priv;
	int r = batch_vec(s, len, true);
	if (r)
		return r;
	ssize_t k = ipcx_recvv(s->rx, s->v, n, timeout_ms);
	if (k < 0)
		return (int)k;
	for (ssize_t i = 0; i < k; i++)
		if (s->v[i].len != len)
			return -EBADMSG;
	*got = (size_t)k;
	return 0;
}

static void ix_close(struct bh_ctx *c)
{
	struct ixside *s = c->priv;
	if (!s)
		return;
	free(s->v);
	free(s->vbuf);
	if (s->tx != s->rx)
		ipcx_close(s->tx);
	ipcx_close(s->rx);
	if (s->listener)
		ipcx_close(s->listener);
	if (s->path[0])
		unlink(s->path);
	free(s);
	c->priv = NULL;
}

static int pair_prepare_pipe(const struct bh_params *p, void *shared)
{
	(void)p;
	return pair_prepare_kind(shared, "pipe");
}

static int pair_prepare_socket(const struct bh_params *p, void *shared)
{
	(void)p;
	return pair_prepare_kind(shared, "socket");
}

/*
 * Does the library know the scheme of this template?  Asked with an empty
 * address, which the transport refuses before it does anything (a nats://
 * probe must not load libnats and start its threads in the driver, whose
 * children are the measured sides).
 */
static bool scheme_known(const char *tmpl)
{
	char url[32];
	snprintf(url, sizeof(url), "%.*s:", (int)strcspn(tmpl, ":"), tmpl);
	ipcx_chan *ch = NULL;
	int r = ipcx_dial(url, 0, &ch);
	ipcx_close(ch);
	return !(r == -EINVAL && strstr(ipcx_errdetail(), "unknown scheme"));
}

bool bh_ipcx_available(const struct bh_ops *ops, const struct bh_params *p)
{
	const struct row *row = ops->arg;
	if (row->style == ST_PAIR)
		return true; /* ipcx_pair() is part of the core */
	if (strstr(row->tmpl, "%S"))
		return scheme_known(row->tmpl); /* its server starts when its turn comes */
	char url[400];
	expand(p, row->tmpl, 'a', url, sizeof(url));
	ipcx_chan *ch = NULL;
	int r = ipcx_listen(url, 0, &ch);
	if (r == 0) {
		ipcx_close(ch);
		struct ixside s = { .path = "" };
		note_path(&s, p, url);
		if (s.path[0])
			unlink(s.path);
		return true;
	}
	return !(r == -EINVAL && strstr(ipcx_errdetail(), "unknown scheme"));
}

#define ROW(name, md, st, t, lossy_)                                                       \
	static const struct row row_##name = { st, t };                                       \
	static const struct bh_ops ix_##name = { .transport = #name, .impl = "ipcx",         \
		.mode = md, .lossy = lossy_, .open = ix_open, .send = ix_send,              \
		.recv = ix_recv, .close = ix_close, .arg = &row_##name }

ROW(fifo, "blocking", ST_TWO, "fifo:%D/%N", false);
ROW(unix, "blocking", ST_ACCEPT, "unix:%D/%N", false);
ROW(unixpacket, "blocking", ST_ACCEPT, "unixpacket:%D/%N", false);
ROW(unixgram, "blocking", ST_TWO, "unixgram:%D/%N", false);
ROW(tcp, "blocking", ST_ACCEPT, "tcp://127.0.0.1:0", false);
ROW(udp, "blocking", ST_TWO, "udp://127.0.0.1:0", true);
ROW(mq, "blocking", ST_TWO, "mq:/%N", false);
ROW(sysvmq, "blocking", ST_TWO, "sysvmq:%K", false);
ROW(shm, "blocking", ST_TWO, "shm:/%N", false);
ROW(sysvshm, "blocking", ST_TWO, "sysvshm:%K", false);
/* A log overwrites its oldest records when full; the bench wants them all. */
ROW(mmap, "blocking", ST_TWO, "mmap:%D/%N?policy=block", false);
ROW(file, "blocking", ST_TWO, "file:%D/%N", false);
/*
 * A subject on one local nats-server: every message goes through it.  Core
 * NATS has no flow control back to the publisher, so the listener's queue
 * is made large enough for a whole streaming case (docs/nats.md).
 */
ROW(nats, "1 server", ST_TWO, "nats://%S/%N?pending=1000000&pending_bytes=1073741824", false);

static const struct row row_pipe = { ST_PAIR, "pipe" };
static const struct bh_ops ix_pipe = { .transport = "pipe", .impl = "ipcx", .mode = "blocking",
	.shared_bytes = pair_bytes, .prepare = pair_prepare_pipe, .release = pair_release,
	.open = ix_open, .send = ix_send, .recv = ix_recv, .close = ix_close, .arg = &row_pipe };
static const struct row row_spair = { ST_PAIR, "socket" };
static const struct bh_ops ix_spair = { .transport = "socketpair", .impl = "ipcx",
	.mode = "blocking", .shared_bytes = pair_bytes, .prepare = pair_prepare_socket,
	.release = pair_release, .open = ix_open, .send = ix_send, .recv = ix_recv,
	.close = ix_close, .arg = &row_spair };

/*
 * Batched rows: the same channels, the one-way stream BH_BATCH messages to
 * an ipcx_sendv / ipcx_recvv (their round trip is the single message's).
 */
#define BATCHED(name, tr, row, bytes, prep, rel)                                            \
	static const struct bh_ops ixb_##name = { .transport = tr, .impl = "ipcx",           \
		.mode = "batch64", .shared_bytes = bytes, .prepare = prep, .release = rel,  \
		.open = ix_open, .send = ix_send, .recv = ix_recv, .sendv = ix_sendv,       \
		.recvv = ix_recvv, .close = ix_close, .arg = row }

BATCHED(pipe, "pipe", &row_pipe, pair_bytes, pair_prepare_pipe, pair_release);
BATCHED(spair, "socketpair", &row_spair, pair_bytes, pair_prepare_socket, pair_release);
BATCHED(fifo, "fifo", &row_fifo, NULL, NULL, NULL);
BATCHED(unix, "unix", &row_unix, NULL, NULL, NULL);
BATCHED(unixpacket, "unixpacket", &row_unixpacket, NULL, NULL, NULL);
BATCHED(unixgram, "unixgram", &row_unixgram, NULL, NULL, NULL);
BATCHED(tcp, "tcp", &row_tcp, NULL, NULL, NULL);

const struct bh_ops *const bh_ipcx_ops[] = {
	&ix_pipe, &ixb_pipe, &ix_spair, &ixb_spair, &ix_fifo, &ixb_fifo, &ix_unix, &ixb_unix,
	&ix_unixpacket, &ixb_unixpacket, &ix_unixgram, &ixb_unixgram, &ix_tcp, &ixb_tcp,
	&ix_udp, &ix_mq, &ix_sysvmq, &ix_shm, &ix_sysvshm, &ix_mmap, &ix_file, &ix_nats, NULL,
};
