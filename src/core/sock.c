/* Connected sockets as channels, and listeners: see sock.h. */
#include "core/sock.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/io.h"
#include "core/record.h"
#include "core/tran.h"
#include "ipcx.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int ipcx__sock_flags(unsigned flags)
{
	return SOCK_NONBLOCK | ((flags & IPCX_INHERIT) ? 0 : SOCK_CLOEXEC);
}

/* ---- a connected socket ------------------------------------------------------ */

struct conn {
	ipcx_chan base;
	struct ipcx__io io;
	bool exact_on_poll;
};

static void conn_update_pending(struct conn *k)
{
	ipcx__chan_pending(&k->base, ipcx__io_has_msg(&k->io));
}

static ssize_t conn_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct conn *k = ipcx__container_of(c, struct conn, base);
	return ipcx__io_send(&k->io, msg, len, ipcx__deadline(timeout_ms));
}

/* LEN frames go out many to a write, packets many to a sendmmsg; other
 * framings one by one. */
static ssize_t conn_sendv(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	struct conn *k = ipcx__container_of(c, struct conn, base);
	int64_t deadline = ipcx__deadline(timeout_ms);
	if (k->io.framing == IPCX__FRAME_LEN || k->io.framing == IPCX__FRAME_PACKET)
		return ipcx__io_sendv(&k->io, msgs, n, deadline);
	return ipcx__io_send_each(&k->io, msgs, n, deadline);
}

static ssize_t conn_recvv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	struct conn *k = ipcx__container_of(c, struct conn, base);
	ssize_t r = ipcx__io_recvv(&k->io, msgs, n, ipcx__deadline(timeout_ms));
	if (k->base.buffered)
		conn_update_pending(k);
	return r;
}

static ssize_t conn_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct conn *k = ipcx__container_of(c, struct conn, base);
	ssize_t r = ipcx__io_recv(&k->io, buf, cap, ipcx__deadline(timeout_ms));
	if (k->base.buffered)
		conn_update_pending(k);
	return r;
}

static int conn_close(ipcx_chan *c)
{
	struct conn *k = ipcx__container_of(c, struct conn, base);
	/* Best effort, never blocking: the tail of a message that timed out. */
	int r = ipcx__io_flush(&k->io, 0);
	ipcx__io_fini(&k->io);
	if (close(k->io.fd) < 0 && r == 0 && errno != EINTR)
		r = -errno;
	free(k);
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

static int conn_fileno(ipcx_chan *c)
{
	struct conn *k = ipcx__container_of(c, struct conn, base);
	if (k->exact_on_poll && c->pollfd < 0 && ipcx__io_set_exact(&k->io))
		c->buffered = false;
	return ipcx__chan_pollfd(c);
}

static const struct ipcx__chan_ops conn_ops = {
	.send = conn_send,
	.sendv = conn_sendv,
	.recv = conn_recv,
	.recvv = conn_recvv,
	.close = conn_close,
	.fileno = conn_fileno,
};

int ipcx__conn_new(const struct ipcx_tran *t, int fd, int framing, size_t max_msg,
		   bool sock, ipcx_chan **ret)
{
	struct conn *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	ipcx__chan_init(&k->base, &conn_ops, t, fd, max_msg);
	ipcx__io_init(&k->io, fd, framing, max_msg, sock);
	k->base.buffered = framing == IPCX__FRAME_LEN || framing == IPCX__FRAME_LINES;
	*ret = &k->base;
	return 0;
}

void ipcx__conn_exact_on_poll(ipcx_chan *c)
{
	ipcx__container_of(c, struct conn, base)->exact_on_poll = true;
}

/* ---- creating or replacing a socket file ---------------------------------------- */

static int lock_name(const char *path, char *buf)
{
	int n = snprintf(buf, PATH_MAX, "%s.ipcx-lock", path);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* A lock file is only ever a regular file of ours that nobody linked elsewhere. */
static bool lock_file_ours(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == geteuid() && st->st_nlink == 1;
}

/* flock(LOCK_EX) until deadline: flock has no timeout, so try and sleep. */
static int lock_until(int fd, int64_t deadline)
{
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (ipcx__remaining_ms(deadline) == 0)
			return -EADDRINUSE;
		/* The holder is between two system calls of a claim: not long. */
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int ipcx__path_lock(const char *url, const char *path, int64_t deadline)
{
	char lp[PATH_MAX];
	if (lock_name(path, lp) < 0)
		return ipcx__fail(-ENAMETOOLONG, "%s: the lock file's name is too long", url);
	for (;;) {
		int fd = open(lp, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
			      0600);
		if (fd < 0 && (errno == ELOOP || errno == EISDIR))
			return ipcx__fail(-EEXIST, "%s: %s is a %s; not touching it", url, lp,
					  errno == ELOOP ? "symbolic link" : "folder");
		if (fd < 0)
			return ipcx__fail(-errno, "%s: cannot create the lock file %s", url, lp);
		struct stat st, now;
		if (fstat(fd, &st) < 0 || !lock_file_ours(&st)) {
			close(fd);
			return ipcx__fail(-EEXIST, "%s: %s is not a lock file of ours; not touching it",
					  url, lp);
		}
		int r = lock_until(fd, deadline);
		if (r < 0) {
			close(fd);
			return ipcx__fail(r, r == -EADDRINUSE ? "%s: another listener is creating the "
								"socket (it holds %s)"
							      : "%s: cannot lock %s",
					  url, lp);
		}
		/* Its holder removes the file when done: a lock on a removed file
		 * guards nothing, so take the one the name leads to now. */
		if (lstat(lp, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino)
			return fd;
		close(fd);
	}
}

void ipcx__path_unlock(const char *path, int fd)
{
	char lp[PATH_MAX];
	if (lock_name(path, lp) == 0)
		unlink(lp); /* still ours: nobody else removes it while we hold it */
	close(fd);
}

void ipcx__sockfile_remove(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev && st.st_ino == ino)
		unlink(path);
}

/* ---- connect with a deadline --------------------------------------------------- */

int ipcx__sock_connect(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	for (;;) {
		if (connect(fd, sa, len) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS)
			break;
		if (errno != EAGAIN)
			return -errno;
		/*
		 * A Unix listener's backlog is full: the kernel offers nothing to
		 * wait on, so retry after a short pause, until the deadline.
		 */
		if (ipcx__remaining_ms(deadline) == 0)
			return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	int p = ipcx__wait_fd(fd, POLLOUT, deadline);
	if (p < 0)
		return p == -EAGAIN ? -ETIMEDOUT : p;
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return -err;
}

/* ---- listeners ------------------------------------------------------------------ */

/*
 * Out of descriptors (EMFILE, ENFILE) or kernel memory, accept() fails while
 * the connection stays queued, so a level-triggered listening socket stays
 * readable: waiting on it again would spin.  A fan-in listener instead stops
 * watching it for a pause (10 ms, doubling while accept keeps failing, up to
 * a second), ended by a timer in its epoll set or at once when one of its
 * own peers leaves.  The waiting connections stay in the kernel's backlog
 * and are taken in as descriptors come back: nothing is refused or lost.
 */
#define PAUSE_FIRST_MS 10
#define PAUSE_MAX_MS   1000

struct srv {
	ipcx_chan base;
	int lfd;
	int ep;          /* fan-in: epoll over lfd, the pause timer and every peer */
	int timer;       /* fan-in: timerfd that ends a pause in accepting, or -1 */
	int pause_ms;    /* length of the last pause; 0 once an accept works */
	bool paused;     /* lfd is out of ep until the timer fires */
	struct ipcx__srv_cfg cfg;
	struct conn **peers;
	size_t npeers, cap;
	size_t next;     /* where the next fair scan of buffered peers starts */
	uid_t uid;       /* who listened: the owner for ipcx__mode_admits */
	gid_t gid;
	uint64_t received, refused;
};

/* ---- who may connect to an abstract name (see sock.h) ---------------------------- */

bool ipcx__mode_admits(mode_t mode, uid_t owner, uid_t uid, bool in_group)
{
	if (uid == 0 || uid == owner)
		return true;
	return (mode & 0002) || ((mode & 0020) && in_group);
}

/* Is gid the peer's effective group or one of its supplementary groups? */
static bool peer_in_group(int fd, gid_t peer_gid, gid_t gid)
{
	if (peer_gid == gid)
		return true;
	gid_t some[64], *groups = some;
	socklen_t len = sizeof(some);
	int r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	if (r < 0 && errno == ERANGE && (groups = malloc(len)) != NULL)
		r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	bool found = false;
	for (size_t i = 0; r == 0 && i < len / sizeof(gid_t) && !found; i++)
		found = groups[i] == gid;
	if (groups != some)
		free(groups);
	return found;
}

enum verdict { ADMIT, ADMIT_TELL, REFUSE };

static enum verdict peer_verdict(const struct srv *s, int fd)
{
	if (!s->cfg.check_peer)
		return ADMIT;
	struct ucred cr;
	socklen_t l = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		return REFUSE;
	if (cr.uid == 0 || cr.uid == s->uid)
		return ADMIT; /* the dialer knows: it waits for no verdict */
	bool in_group = (s->cfg.mode & 0020) && peer_in_group(fd, cr.gid, s->gid);
	return ipcx__mode_admits(s->cfg.mode, s->uid, cr.uid, in_group) ? ADMIT_TELL : REFUSE;
}

/* Decide on a peer just accepted; false when it was turned away (fd closed). */
static bool admit_peer(struct srv *s, int fd)
{
	enum verdict v = peer_verdict(s, fd);
	const char yes = IPCX__ADMITTED;
	/* An empty socket buffer takes one byte at once; if not, the peer is gone. */
	if (v == ADMIT_TELL && send(fd, &yes, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
		close(fd);
		return false;
	}
	if (v == REFUSE) {
		s->refused++;
		close(fd);
		return false;
	}
	return true;
}

int ipcx__await_admission(const char *url, int fd, int64_t deadline)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		return ipcx__fail(-errno, "%s: cannot tell who listens", url);
	uid_t me = geteuid();
	if (me == 0 || me == cr.uid)
		return 0;
	char b = 0;
	ssize_t n;
	for (;;) {
		int w = ipcx__wait_fd(fd, POLLIN, deadline);
		if (w == -ETIMEDOUT || w == -EAGAIN)
			return ipcx__fail(-ETIMEDOUT, "%s: the listener (uid %u) did not admit this "
						      "user (uid %u) in time; across users it must be "
						      "an ipcx listener that receives or accepts",
					  url, (unsigned)cr.uid, (unsigned)me);
		if (w < 0)
			return ipcx__fail(w, "%s: waiting to be admitted", url);
		n = recv(fd, &b, 1, MSG_DONTWAIT);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			break;
	}
	if (n == 1 && b == IPCX__ADMITTED)
		return 0;
	if (n == 1)
		return ipcx__fail(-EPROTO, "%s: the listener spoke before admitting us: not an ipcx "
					   "listener", url);
	return ipcx__fail(-EACCES, "%s: refused: the listener (uid %u) admits only the users its "
				   "mode= lets write (default 0600: its own user and root), not uid %u",
			  url, (unsigned)cr.uid, (unsigned)me);
}

void ipcx__sock_sndbuf(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

static int srv_accept_fd(struct srv *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, ipcx__sock_flags(s->cfg.flags));
		if (fd < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (!admit_peer(s, fd))
			continue;
		/* An accepted socket starts with the default buffers, not the
		 * listener's: size it for the largest message as well. */
		if (s->cfg.sndbuf > 0)
			ipcx__sock_sndbuf(fd, s->cfg.sndbuf);
		return fd;
	}
}

static int srv_grow(struct srv *s)
{
	size_t cap = s->cap ? s->cap * 2 : 8;
	struct conn **p = realloc(s->peers, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->peers = p;
	s->cap = cap;
	return 0;
}

/* Take a new peer's descriptor into the fan-in set; closes it on failure. */
static int srv_add_peer(struct srv *s, int fd)
{
	ipcx_chan *c;
	int r = ipcx__conn_new(s->base.tran, fd, s->cfg.framing, s->cfg.max_msg, true, &c);
	if (r < 0) {
		close(fd);
		return r;
	}
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
		r = -errno;
		conn_close(c);
		return r;
	}
	s->peers[s->npeers++] = ipcx__container_of(c, struct conn, base);
	return 0;
}

/* Stop watching the listening socket for a while (see PAUSE_FIRST_MS). */
static void srv_pause(struct srv *s)
{
	if (!s->paused)
		epoll_ctl(s->ep, EPOLL_CTL_DEL, s->lfd, NULL);
	s->paused = true;
	s->pause_ms = s->pause_ms ? s->pause_ms * 2 : PAUSE_FIRST_MS;
	if (s->pause_ms > PAUSE_MAX_MS)
		s->pause_ms = PAUSE_MAX_MS;
	struct itimerspec its = { .it_value = { s->pause_ms / 1000,
						(long)(s->pause_ms % 1000) * 1000000 } };
	timerfd_settime(s->timer, 0, &its, NULL);
}

/* Watch it again; the pause length stays until an accept works. */
static void srv_resume(struct srv *s)
{
	if (!s->paused)
		return;
	/* Disarming also forgets an expiry not read yet: the timer is quiet. */
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	timerfd_settime(s->timer, 0, &off, NULL);
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &e);
	s->paused = false;
}

static void srv_drop_peer(struct srv *s, struct conn *k)
{
	for (size_t i = 0; i < s->npeers; i++)
		if (s->peers[i] == k) {
			s->peers[i] = s->peers[--s->npeers];
			break;
		}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, k->io.fd, NULL);
	conn_close(&k->base);
	srv_resume(s); /* if paused: a descriptor just came back */
}

/* Take in every waiting peer; how many were taken. */
static int srv_accept_all(struct srv *s)
{
	int taken = 0;
	for (;;) {
		int fd = srv_accept_fd(s);
		if (fd == -EINTR || fd == -ECONNABORTED)
			continue;
		if (fd == -EAGAIN || fd == -EWOULDBLOCK)
			break;
		if (fd < 0) {
			srv_pause(s); /* EMFILE, ENFILE, ENOBUFS, ENOMEM ... */
			break;
		}
		s->pause_ms = 0;
		if (s->npeers == s->cap && srv_grow(s) < 0) {
			close(fd);
			break;
		}
		if (srv_add_peer(s, fd) < 0)
			break;
		taken++;
	}
	return taken;
}

/* A message some peer already has in its buffer, taken fairly. */
static ssize_t srv_take_buffered(struct srv *s, void *buf, size_t cap)
{
	for (size_t i = 0; i < s->npeers; i++) {
		size_t at = (s->next + i) % s->npeers;
		struct conn *k = s->peers[at];
		if (!ipcx__io_has_msg(&k->io))
			continue;
		ssize_t r = ipcx__io_try_recv(&k->io, buf, cap);
		if (r == -EPIPE) {
			srv_drop_peer(s, k);
			return -EAGAIN; /* the list changed: scan again */
		}
		s->next = at + 1;
		return r;
	}
	return -EAGAIN;
}

static void srv_update_pending(struct srv *s)
{
	bool any = false;
	for (size_t i = 0; i < s->npeers && !any; i++)
		any = ipcx__io_has_msg(&s->peers[i]->io);
	ipcx__chan_pending(&s->base, any);
}

/*
 * Serve the ready descriptors epoll reported; a message, or -EAGAIN.
 * *taken counts the peers taken in.
 */
static ssize_t srv_serve_events(struct srv *s, struct epoll_event *ev, int n, void *buf,
				size_t cap, int *taken)
{
	ssize_t got = -EAGAIN;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &s->timer) {
			srv_resume(s);
			*taken += srv_accept_all(s);
			continue;
		}
		if (!ev[i].data.ptr) {
			if (!s->paused) /* by an earlier event of this batch */
				*taken += srv_accept_all(s);
			continue;
		}
		if (got != -EAGAIN)
			continue; /* still ready next time: level-triggered */
		struct conn *k = ev[i].data.ptr;
		ssize_t r = ipcx__io_try_recv(&k->io, buf, cap);
		if (r == -EPIPE)
			srv_drop_peer(s, k);
		else if (r != -EAGAIN)
			got = r;
	}
	return got;
}

/*
 * Every pass checks the deadline, whatever epoll reported.  A pass that took
 * in new peers earns one more look, even past the deadline, so that a
 * receive with timeout 0 returns a message that came with a new peer.
 */
static ssize_t srv_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct srv *s = ipcx__container_of(c, struct srv, base);
	int64_t deadline = ipcx__deadline(timeout_ms);
	bool looked_again = false;
	ssize_t r;
	while ((r = srv_take_buffered(s, buf, cap)) == -EAGAIN) {
		struct epoll_event ev[16];
		int taken = 0;
		int n = epoll_wait(s->ep, ev, 16, ipcx__remaining_ms(deadline));
		if (n < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (n > 0 && (r = srv_serve_events(s, ev, n, buf, cap, &taken)) != -EAGAIN)
			break;
		if (taken && !looked_again) {
			looked_again = true;
			continue;
		}
		if (ipcx__remaining_ms(deadline) == 0) {
			r = deadline == 0 ? -EAGAIN : -ETIMEDOUT;
			break;
		}
	}
	if (r >= 0)
		s->received++;
	srv_update_pending(s);
	return r;
}

static ssize_t srv_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	return ipcx__fail(-EOPNOTSUPP, "a listener receives from all its peers; "
				       "listen with IPCX_ACCEPT to talk to one");
}

static int srv_accept(ipcx_chan *c, int timeout_ms, ipcx_chan **ret)
{
	struct srv *s = ipcx__container_of(c, struct srv, base);
	if (!(s->cfg.flags & IPCX_ACCEPT))
		return ipcx__fail(-EINVAL, "listen with IPCX_ACCEPT to accept peers one by one");
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		int fd = srv_accept_fd(s);
		if (fd >= 0) {
			int r = ipcx__conn_new(c->tran, fd, s->cfg.framing, s->cfg.max_msg, true, ret);
			if (r < 0)
				close(fd);
			return r;
		}
		if (fd == -EMFILE || fd == -ENFILE)
			return ipcx__fail(fd, "out of descriptors (%s): the connection waits in "
					      "the backlog until one is closed",
					  fd == -EMFILE ? "RLIMIT_NOFILE" : "fs.file-max");
		if (fd != -EINTR && fd != -EAGAIN && fd != -EWOULDBLOCK && fd != -ECONNABORTED)
			return fd;
		int w = ipcx__wait_fd(s->lfd, POLLIN, deadline);
		if (w < 0)
			return w;
	}
}

static int srv_close(ipcx_chan *c)
{
	struct srv *s = ipcx__container_of(c, struct srv, base);
	/* A child made by fork() that closes its copy (a prefork server's
	 * worker) leaves the file and the record to the parent, which still
	 * listens on the same socket. */
	bool creator = s->cfg.creator == getpid();
	/* While lfd still listens (see ipcx__sockfile_remove). */
	if (s->cfg.unlink_path && creator)
		ipcx__sockfile_remove(s->cfg.unlink_path, s->cfg.dev, s->cfg.ino);
	for (size_t i = 0; i < s->npeers; i++)
		conn_close(&s->peers[i]->base);
	free(s->peers);
	ipcx__close_fd(s->timer);
	ipcx__close_fd(s->ep);
	ipcx__close_fd(s->lfd);
	if (s->cfg.record && creator)
		ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_UNIX_SOCKET, s->cfg.record));
	free(s->cfg.unlink_path);
	free(s->cfg.record);
	free(s);
	return 0;
}

/* A listener sends nothing; depth is not known (it is in the kernel's buffers). */
static int srv_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	struct srv *s = ipcx__container_of(c, struct srv, base);
	*ret = (struct ipcx_stats){ .received = s->received, .dropped = s->refused,
				    .peers = s->npeers };
	return 0;
}

static int srv_addr(ipcx_chan *c, char *buf, size_t cap)
{
	struct srv *s = ipcx__container_of(c, struct srv, base);
	return s->cfg.addr ? s->cfg.addr(c, buf, cap) : ipcx__chan_url(c, buf, cap);
}

static const struct ipcx__chan_ops srv_ops = {
	.send = srv_send,
	.recv = srv_recv,
	.accept = srv_accept,
	.stats = srv_stats,
	.close = srv_close,
	.addr = srv_addr,
};

int ipcx__srv_lfd(ipcx_chan *c)
{
	return ipcx__container_of(c, struct srv, base)->lfd;
}

int ipcx__srv_new(const struct ipcx_tran *t, int lfd, struct ipcx__srv_cfg *cfg,
		  ipcx_chan **ret)
{
	struct srv *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lfd = lfd;
	s->ep = s->timer = -1;
	s->cfg = *cfg;
	/* As a dialer's SO_PEERCRED sees us: the ids of listen(), just called. */
	s->uid = geteuid();
	s->gid = getegid();
	ipcx__chan_init(&s->base, &srv_ops, t, lfd, cfg->max_msg);
	if (!(cfg->flags & IPCX_ACCEPT)) {
		bool inherit = cfg->flags & IPCX_INHERIT;
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
		struct epoll_event te = { .events = EPOLLIN, .data.ptr = &s->timer };
		s->ep = epoll_create1(inherit ? 0 : EPOLL_CLOEXEC);
		s->timer = timerfd_create(CLOCK_MONOTONIC,
					  TFD_NONBLOCK | (inherit ? 0 : TFD_CLOEXEC));
		if (s->ep < 0 || s->timer < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, lfd, &e) < 0 ||
		    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->timer, &te) < 0) {
			int err = -errno;
			s->cfg.unlink_path = s->cfg.record = NULL; /* the caller frees them */
			srv_close(&s->base);
			return err;
		}
		s->base.fd = s->ep;
		s->base.buffered = cfg->framing == IPCX__FRAME_LEN ||
				   cfg->framing == IPCX__FRAME_LINES;
	}
	/* The listener owns the strings from here on. */
	cfg->unlink_path = cfg->record = NULL;
	*ret = &s->base;
	return 0;
}

int ipcx__inet_addr_url(int fd, const char *scheme, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -EINVAL;
	bool v6 = ss.ss_family == AF_INET6;
	char url[NI_MAXHOST + NI_MAXSERV + 32];
	int n = snprintf(url, sizeof(url), "%s://%s%s%s:%s", scheme, v6 ? "[" : "", host,
			 v6 ? "]" : "", port);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC; /* buf untouched */
	memcpy(buf, url, (size_t)n + 1);
	return n;
}
