/*
 * Unix domain sockets: unix: (stream, framed), unixpacket: (SOCK_SEQPACKET)
 * and unixgram: (SOCK_DGRAM).  An address is a path ("unix:/run/app.sock")
 * or a name in the abstract namespace ("unix:@app"), which has no file.
 *
 * A listener owns its socket file: it replaces a stale one (no listener
 * answers on it), refuses a live one (-EADDRINUSE), never touches a path
 * that is not a socket, and removes the file when it closes (the process
 * that listened does: a fork()ed child closing its copy leaves it).  Creating or
 * replacing the file happens under a lock (ipcx__path_lock in sock.h), so
 * that of two listeners racing for one path exactly one wins.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/io.h"
#include "core/record.h"
#include "core/sock.h"
#include "core/tran.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PACKET_MAX_DEFAULT (64u << 10)
#define PACKET_MAX_LIMIT   (16u << 20)

struct uaddr {
	struct sockaddr_un sa;
	socklen_t len;
	bool abstract;
	const char *path; /* for a path address */
};

struct uopts {
	int type;
	int framing;
	size_t max_msg;
	mode_t mode;
	bool keep;
	uint64_t timeout_ms;
};

static int parse_addr(const struct ipcx__url *u, struct uaddr *a)
{
	memset(a, 0, sizeof(*a));
	a->sa.sun_family = AF_UNIX;
	const char *b = u->body;
	size_t cap = sizeof(a->sa.sun_path);
	if (b[0] == '@') {
		size_t n = strlen(b + 1);
		if (n == 0)
			return ipcx__fail(-EINVAL, "%s: empty abstract name after '@'", u->orig);
		if (n > cap - 1)
			return ipcx__fail(-EINVAL, "%s: abstract name longer than %zu bytes",
					  u->orig, cap - 1);
		a->abstract = true;
		memcpy(a->sa.sun_path + 1, b + 1, n); /* sun_path[0] = '\0': abstract */
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
		return 0;
	}
	int r = ipcx__url_path(u, cap, &a->path);
	if (r < 0)
		return r;
	memcpy(a->sa.sun_path, a->path, strlen(a->path) + 1);
	a->len = (socklen_t)sizeof(a->sa);
	return 0;
}

/*
 * One table for unix: (a stream, with framing=) and one for unixpacket: and
 * unixgram:, which is the first one's head: the indexes are the same.
 */
enum { UX_MAX, UX_MODE, UX_KEEP, UX_TIMEOUT, UX_FRAMING, UX_NOPTS };
#define UX_COMMON(max_limit, max_default)                                                  \
	[UX_MAX] = IPCX__UINT("max", 1, max_limit, max_default),                           \
	[UX_MODE] = IPCX__MODE("mode", 0600), [UX_KEEP] = IPCX__BOOL("keep", false),      \
	[UX_TIMEOUT] = IPCX__UINT("timeout", 0, INT32_MAX, 10000)
static const struct ipcx__opt stream_options[UX_NOPTS + 1] = {
	UX_COMMON(IPCX__STREAM_MAX_LIMIT, IPCX__STREAM_MAX_DEFAULT),
	[UX_FRAMING] = IPCX__FRAMING_OPT,
};
static const struct ipcx__opt packet_options[UX_FRAMING + 1] = {
	UX_COMMON(PACKET_MAX_LIMIT, PACKET_MAX_DEFAULT),
};

static void parse_opts(const struct ipcx__url *u, int type, struct uopts *o)
{
	o->type = type;
	o->framing = type == SOCK_STREAM ? (int)ipcx__opt(u, UX_FRAMING) : IPCX__FRAME_PACKET;
	o->max_msg = (size_t)ipcx__opt(u, UX_MAX);
	o->mode = (mode_t)ipcx__opt(u, UX_MODE);
	o->keep = ipcx__opt(u, UX_KEEP);
	o->timeout_ms = ipcx__opt(u, UX_TIMEOUT);
}

/*
 * Datagrams and packets larger than the socket's send buffer fail with
 * EMSGSIZE; make room for the largest message (root may exceed wmem_max).
 */
static int sndbuf_for(const struct uopts *o)
{
	return o->type == SOCK_STREAM ? 0 : (int)(o->max_msg + 4096);
}

static void size_buffers(int fd, const struct uopts *o)
{
	if (sndbuf_for(o) > 0)
		ipcx__sock_sndbuf(fd, sndbuf_for(o));
}

/* Is a listener alive on this socket file?  Ask it. */
static int probe_live(const struct uaddr *a, int type)
{
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0 ? 0 : -errno;
	close(fd);
	if (r == 0 || r == -EAGAIN || r == -EINPROGRESS)
		return 1;
	return r == -ECONNREFUSED ? 0 : r;
}

/* Clear the way for bind(): remove a stale socket file, refuse anything else. */
static int claim_path(const struct ipcx__url *u, const struct uaddr *a, int type)
{
	struct stat st;
	if (lstat(a->path, &st) < 0)
		return errno == ENOENT ? 0 : ipcx__fail(-errno, "%s: cannot examine the path", u->orig);
	if (!S_ISSOCK(st.st_mode))
		return ipcx__fail(-EEXIST, "%s: the path exists and is not a socket; not touching it",
				  u->orig);
	int live = probe_live(a, type);
	if (live == -ENOENT)
		return 0; /* its listener removed it just now, as it closed */
	if (live == 1)
		return ipcx__fail(-EADDRINUSE, "%s: a live listener owns this socket", u->orig);
	if (live < 0 && live != -EPROTOTYPE)
		return ipcx__fail(live, "%s: cannot tell whether the socket is in use", u->orig);
	if (live == -EPROTOTYPE)
		return ipcx__fail(-EADDRINUSE, "%s: a socket of another kind owns this path",
				  u->orig);
	/* Stale: its listener died without removing it. */
	if (unlink(a->path) < 0 && errno != ENOENT)
		return ipcx__fail(-errno, "%s: cannot remove the stale socket", u->orig);
	return 0;
}

/*
 * Bind with the mode already in place.  On Linux the socket file takes the
 * socket inode's mode (less the umask), so fchmod() before bind() leaves no
 * moment in which the file has wider permissions; the chmod() after bind()
 * applies the exact mode whatever the umask is.
 */
static int bind_socket(const struct ipcx__url *u, int fd, const struct uaddr *a, mode_t mode)
{
	if (!a->abstract && fchmod(fd, mode) < 0)
		return ipcx__fail(-errno, "%s: cannot set the socket's mode", u->orig);
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0)
		return ipcx__fail(-errno, "%s: cannot bind", u->orig);
	if (!a->abstract && chmod(a->path, mode) < 0) {
		int err = -errno;
		unlink(a->path);
		return ipcx__fail(err, "%s: cannot set the socket file's mode", u->orig);
	}
	return 0;
}

/* The socket's name for its creator record: "/path" or "@name" (malloc'd). */
static char *record_name(const struct uaddr *a)
{
	char *s = NULL;
	if (a->abstract) {
		size_t n = a->len - offsetof(struct sockaddr_un, sun_path) - 1;
		if (asprintf(&s, "@%.*s", (int)n, a->sa.sun_path + 1) < 0)
			return NULL;
		return s;
	}
	return strdup(a->path);
}

/* Create, bind and (for connection types) listen; returns the socket. */
static int make_bound(const struct ipcx__url *u, unsigned flags, const struct uaddr *a,
		      const struct uopts *o)
{
	int r;
	if (!a->abstract && (r = claim_path(u, a, o->type)) < 0)
		return r;
	int fd = socket(AF_UNIX, o->type | ipcx__sock_flags(flags), 0);
	if (fd < 0)
		return ipcx__fail(-errno, "%s: cannot create a socket", u->orig);
	size_buffers(fd, o);
	/* An abstract name's datagrams carry their senders' credentials (gram_recv). */
	int one = 1;
	if (a->abstract && o->type == SOCK_DGRAM &&
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		r = ipcx__fail(-errno, "%s: cannot ask for senders' credentials", u->orig);
		close(fd);
		return r;
	}
	if ((r = bind_socket(u, fd, a, o->mode)) < 0) {
		close(fd);
		return r;
	}
	if (o->type != SOCK_DGRAM && listen(fd, SOMAXCONN) < 0) {
		r = ipcx__fail(-errno, "%s: cannot listen", u->orig);
		if (!a->abstract)
			unlink(a->path);
		close(fd);
		return r;
	}
	return fd;
}

/*
 * make_bound(), for a path under its lock, so that no other listener sees
 * the socket between bind() and listen(); *file is the socket file made.
 */
static int open_bound(const struct ipcx__url *u, unsigned flags, const struct uaddr *a,
		      const struct uopts *o, struct stat *file)
{
	if (a->abstract)
		return make_bound(u, flags, a, o);
	int lk = ipcx__path_lock(u->orig, a->path, ipcx__deadline((int)o->timeout_ms));
	if (lk < 0)
		return lk;
	int fd = make_bound(u, flags, a, o);
	if (fd >= 0 && lstat(a->path, file) < 0) {
		int err = ipcx__fail(-errno, "%s: the socket file vanished", u->orig);
		close(fd);
		fd = err;
	}
	ipcx__path_unlock(a->path, lk);
	return fd;
}

/* ---- unixgram: a bound datagram socket receives from anyone ------------------- */

struct gram {
	ipcx_chan base;
	struct ipcx__io io;
	bool listener;
	mode_t mode;
	uid_t uid;         /* who listened */
	gid_t gid;
	uint64_t received;
	char *unlink_path;
	dev_t dev;      /* the socket file's, for ipcx__sockfile_remove */
	ino_t ino;
	char *record;   /* its name in its creator record ("/path", "@name"), or NULL */
	pid_t creator;  /* only its close removes the file and the record */
};

static ssize_t gram_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct gram *g = ipcx__container_of(c, struct gram, base);
	if (g->listener)
		return ipcx__fail(-EOPNOTSUPP, "a unixgram listener only receives");
	return ipcx__io_send(&g->io, msg, len, ipcx__deadline(timeout_ms));
}

static ssize_t gram_sendv(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	struct gram *g = ipcx__container_of(c, struct gram, base);
	if (g->listener)
		return ipcx__fail(-EOPNOTSUPP, "a unixgram listener only receives");
	return ipcx__io_sendv(&g->io, msgs, n, ipcx__deadline(timeout_ms));
}

/*
 * A datagram's sender, from the SCM_CREDENTIALS the kernel attaches (the
 * listener set SO_PASSCRED): admitted by the listener's mode as a
 * connection would be (sock.h), its group being the sender's (real or
 * effective) gid: a datagram carries no supplementary groups.  No
 * credentials, no admission.  Descriptors a sender passed are closed.
 * The io layer asks this of every datagram it takes, one by one or many
 * to a recvmmsg, and drops and counts the ones refused (io->refused).
 */
static bool sender_admitted(void *arg, struct msghdr *mh)
{
	const struct gram *g = arg;
	bool ok = false;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			struct ucred cr;
			memcpy(&cr, CMSG_DATA(cm), sizeof(cr));
			ok = ipcx__mode_admits(g->mode, g->uid, cr.uid, cr.gid == g->gid);
		} else if (cm->cmsg_type == SCM_RIGHTS) {
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < n; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
				close(fd);
			}
		}
	}
	return ok;
}

static ssize_t gram_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct gram *g = ipcx__container_of(c, struct gram, base);
	if (!g->listener)
		return ipcx__fail(-EOPNOTSUPP, "a unixgram dialer only sends");
	ssize_t r = ipcx__io_recv(&g->io, buf, cap, ipcx__deadline(timeout_ms));
	if (r >= 0)
		g->received++;
	return r;
}

static ssize_t gram_recvv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	struct gram *g = ipcx__container_of(c, struct gram, base);
	if (!g->listener)
		return ipcx__fail(-EOPNOTSUPP, "a unixgram dialer only sends");
	ssize_t r = ipcx__io_recvv(&g->io, msgs, n, ipcx__deadline(timeout_ms));
	if (r > 0)
		g->received += (uint64_t)r;
	return r;
}

static int gram_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	struct gram *g = ipcx__container_of(c, struct gram, base);
	if (!g->listener)
		return -EOPNOTSUPP; /* as a connection's dialer */
	*ret = (struct ipcx_stats){ .received = g->received, .dropped = g->io.refused };
	return 0;
}

static int gram_close(ipcx_chan *c)
{
	struct gram *g = ipcx__container_of(c, struct gram, base);
	bool creator = g->creator == getpid(); /* not a fork()ed child's copy */
	if (g->unlink_path && creator) /* while the socket is still bound */
		ipcx__sockfile_remove(g->unlink_path, g->dev, g->ino);
	ipcx__close_fd(g->io.fd);
	ipcx__io_fini(&g->io);
	if (g->record && creator)
		ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_UNIX_SOCKET, g->record));
	free(g->unlink_path);
	free(g->record);
	free(g);
	return 0;
}

static const struct ipcx__chan_ops gram_ops = {
	.send = gram_send,
	.sendv = gram_sendv,
	.recv = gram_recv,
	.recvv = gram_recvv,
	.stats = gram_stats,
	.close = gram_close,
};

static int gram_new(const struct ipcx_tran *t, int fd, const struct uopts *o, bool listener,
		    char *path, const struct stat *file, char *record, ipcx_chan **ret)
{
	struct gram *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	ipcx__chan_init(&g->base, &gram_ops, t, fd, o->max_msg);
	ipcx__io_init(&g->io, fd, IPCX__FRAME_PACKET, o->max_msg, true);
	g->listener = listener;
	g->unlink_path = path;
	if (file) {
		g->dev = file->st_dev;
		g->ino = file->st_ino;
	}
	g->record = record;
	g->creator = getpid();
	*ret = &g->base;
	return 0;
}

/* A listener on an abstract name: its socket has SO_PASSCRED (make_bound). */
static void gram_check_senders(ipcx_chan *c, mode_t mode)
{
	struct gram *g = ipcx__container_of(c, struct gram, base);
	g->io.admit = sender_admitted;
	g->io.admit_arg = g;
	g->mode = mode;
	g->uid = geteuid();
	g->gid = getegid();
}

/* ---- listen and dial ------------------------------------------------------------ */

static int unix_listen_type(const struct ipcx__url *u, unsigned flags, int type,
			    const struct ipcx_tran *t, ipcx_chan **ret)
{
	struct uaddr a;
	struct uopts o;
	int r;
	if ((r = parse_addr(u, &a)) < 0)
		return r;
	parse_opts(u, type, &o);
	if (type == SOCK_DGRAM && (flags & IPCX_ACCEPT))
		return ipcx__fail(-EINVAL, "%s: unixgram has no connections to accept", u->orig);
	struct stat file = { 0 };
	int fd = open_bound(u, flags, &a, &o, &file);
	if (fd < 0)
		return fd;
	char *path = (a.abstract || o.keep) ? NULL : strdup(a.path);
	/* A kept object is meant to outlive us: no creator record, so that
	 * ipcx gc never takes it for an orphan. */
	char *record = o.keep ? NULL : record_name(&a);
	if (record)
		ipcx__record_created(IPCX__OBJ_NAMED(IPCX_OBJ_UNIX_SOCKET, record));
	if (type == SOCK_DGRAM) {
		r = gram_new(t, fd, &o, true, path, &file, record, ret);
		if (r == 0 && a.abstract)
			gram_check_senders(*ret, o.mode);
	} else {
		struct ipcx__srv_cfg cfg = {
			.framing = o.framing, .max_msg = o.max_msg, .flags = flags,
			.check_peer = a.abstract, .mode = o.mode, .sndbuf = sndbuf_for(&o),
			.unlink_path = path, .dev = file.st_dev, .ino = file.st_ino,
			.record = record, .creator = getpid(),
		};
		r = ipcx__srv_new(t, fd, &cfg, ret);
		fd = -1; /* the listener took it, or closed it */
	}
	if (r < 0) {
		if (!a.abstract) /* before the socket closes, as a listener's close does */
			ipcx__sockfile_remove(a.path, file.st_dev, file.st_ino);
		ipcx__close_fd(fd);
		if (record)
			ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_UNIX_SOCKET, record));
		free(path);
		free(record);
	}
	return r;
}

static int unix_dial_type(const struct ipcx__url *u, unsigned flags, int type,
			  const struct ipcx_tran *t, ipcx_chan **ret)
{
	struct uaddr a;
	struct uopts o;
	int r;
	if ((r = parse_addr(u, &a)) < 0)
		return r;
	parse_opts(u, type, &o);
	int fd = socket(AF_UNIX, type | ipcx__sock_flags(flags), 0);
	if (fd < 0)
		return ipcx__fail(-errno, "%s: cannot create a socket", u->orig);
	size_buffers(fd, &o);
	int64_t deadline = ipcx__deadline((int)o.timeout_ms);
	r = ipcx__sock_connect(fd, (const struct sockaddr *)&a.sa, a.len, deadline);
	if (r < 0) {
		close(fd);
		return ipcx__fail(r, "%s: cannot connect", u->orig);
	}
	if (a.abstract && type != SOCK_DGRAM && (r = ipcx__await_admission(u->orig, fd, deadline)) < 0) {
		close(fd);
		return r;
	}
	if (type == SOCK_DGRAM)
		r = gram_new(t, fd, &o, false, NULL, NULL, NULL, ret);
	else
		r = ipcx__conn_new(t, fd, o.framing, o.max_msg, true, ret);
	if (r < 0)
		close(fd);
	return r;
}


#define UNIX_TRAN(NAME, TYPE, OPTS)                                                        \
	static const struct ipcx_tran NAME##_tran;                                         \
	static int NAME##_listen(const struct ipcx__url *u, unsigned f, ipcx_chan **ret)   \
	{                                                                                  \
		return unix_listen_type(u, f, TYPE, &NAME##_tran, ret);                    \
	}                                                                                  \
	static int NAME##_dial(const struct ipcx__url *u, unsigned f, ipcx_chan **ret)     \
	{                                                                                  \
		return unix_dial_type(u, f, TYPE, &NAME##_tran, ret);                      \
	}                                                                                  \
	static const struct ipcx_tran NAME##_tran = {                                      \
		.scheme = #NAME, .options = OPTS, .listen = NAME##_listen, .dial = NAME##_dial, \
	}

UNIX_TRAN(unix, SOCK_STREAM, stream_options);
UNIX_TRAN(unixpacket, SOCK_SEQPACKET, packet_options);
UNIX_TRAN(unixgram, SOCK_DGRAM, packet_options);

const struct ipcx_tran *const ipcx__trans_unix[] = { &unix_tran, &unixpacket_tran,
						     &unixgram_tran, NULL };
