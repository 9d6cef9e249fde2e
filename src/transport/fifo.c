/*
 * fifo:/path — a named pipe.  The listener creates the FIFO (exclusively,
 * 0600 unless ?mode=) and reads; dialers write.  Many writers may share it.
 *
 * The kernel writes up to PIPE_BUF (4096) bytes at once without mixing them
 * with other writers' bytes, and any writer may die in the middle of a
 * message.  So messages go in chunks of at most PIPE_BUF bytes that say
 * whose message they carry (src/core/chunk.h): a message of any size stays
 * whole among many writers, and one cut off by its writer's death is dropped
 * and counted, never returned.  framing=len (a plain 4-byte length, for
 * programs that speak it) keeps messages whole only up to PIPE_BUF less the
 * length, so max is limited to that there.
 *
 * The listener also holds a write end of its own FIFO, so the read end never
 * reports end-of-file when the last writer leaves: writers come and go, and
 * the reader waits for the next one, as a server should.
 */
#include "core/chunk.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/io.h"
#include "core/record.h"
#include "core/tran.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIFO_ATOMIC_MAX (PIPE_BUF - 4)

static const struct ipcx_tran fifo_tran;

struct fifo {
	ipcx_chan base;
	struct ipcx__io io;
	int keepalive;   /* the listener's own write end, or -1 */
	char *path;      /* removed on close (if it still names `own`), or NULL */
	char *record;    /* its path in its creator record, or NULL (keep=1) */
	struct stat own; /* the listener's FIFO (device and inode) */
	pid_t creator;   /* only its close removes the FIFO and the record */
};

static void remove_own(const char *path, const struct stat *own);

static ssize_t fifo_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct fifo *f = ipcx__container_of(c, struct fifo, base);
	if (f->keepalive >= 0)
		return ipcx__fail(-EOPNOTSUPP, "the FIFO's listener reads; dial it to write");
	return ipcx__io_send(&f->io, msg, len, ipcx__deadline(timeout_ms));
}

/*
 * CHUNK framing batches its small messages, PIPE_BUF bytes to a write;
 * framing=len stays one write a message, each whole among many writers.
 */
static ssize_t fifo_sendv(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	struct fifo *f = ipcx__container_of(c, struct fifo, base);
	if (f->keepalive >= 0)
		return ipcx__fail(-EOPNOTSUPP, "the FIFO's listener reads; dial it to write");
	int64_t deadline = ipcx__deadline(timeout_ms);
	if (f->io.framing == IPCX__FRAME_CHUNK)
		return ipcx__io_sendv(&f->io, msgs, n, deadline);
	return ipcx__io_send_each(&f->io, msgs, n, deadline);
}

static ssize_t fifo_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct fifo *f = ipcx__container_of(c, struct fifo, base);
	if (f->keepalive < 0)
		return ipcx__fail(-EOPNOTSUPP, "a FIFO's dialer writes; listen to read");
	ssize_t r = ipcx__io_recv(&f->io, buf, cap, ipcx__deadline(timeout_ms));
	ipcx__chan_pending(c, ipcx__io_has_msg(&f->io));
	return r;
}

/* Messages sent (a dialer), received and dropped torn or abandoned (the listener). */
static int fifo_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	struct fifo *f = ipcx__container_of(c, struct fifo, base);
	*ret = (struct ipcx_stats){ .sent = f->io.sent, .received = f->io.received,
				    .dropped = f->io.ck.dropped };
	return 0;
}

static int fifo_close(ipcx_chan *c)
{
	struct fifo *f = ipcx__container_of(c, struct fifo, base);
	int r = f->keepalive < 0 ? ipcx__io_flush(&f->io, 0) : 0;
	/* Remove the name before closing the read end: a FIFO without a
	 * reader looks stale, and another listener could replace it and then
	 * lose its own FIFO's name to this unlink.  A child made by fork()
	 * closing its copy leaves both to the parent, which still reads. */
	bool creator = f->creator == getpid();
	if (f->path && creator)
		remove_own(f->path, &f->own);
	ipcx__close_fd(f->io.fd);
	ipcx__close_fd(f->keepalive);
	ipcx__io_fini(&f->io);
	if (f->record && creator)
		ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_FIFO, f->record));
	free(f->path);
	free(f->record);
	free(f);
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

static const struct ipcx__chan_ops fifo_ops = {
	.send = fifo_send,
	.sendv = fifo_sendv,
	.recv = fifo_recv,
	.stats = fifo_stats,
	.close = fifo_close,
};

struct fopts {
	const char *path;
	int framing;
	size_t max_msg;
	mode_t mode;
	bool keep;
};

/* framing= is absent by default: chunks (chunk.h), which no word names. */
enum { FIFO_FRAMING, FIFO_MAX, FIFO_MODE, FIFO_KEEP, FIFO_NOPTS };
static const struct ipcx__opt fifo_options[FIFO_NOPTS + 1] = {
	[FIFO_FRAMING] = IPCX__FRAMING_OPT,
	[FIFO_MAX] = IPCX__UINT("max", 1, IPCX__STREAM_MAX_LIMIT, FIFO_ATOMIC_MAX),
	[FIFO_MODE] = IPCX__MODE("mode", 0600),
	[FIFO_KEEP] = IPCX__BOOL("keep", false),
};

static int parse(const struct ipcx__url *u, struct fopts *o)
{
	o->framing = ipcx__opt_set(u, FIFO_FRAMING) ? (int)ipcx__opt(u, FIFO_FRAMING)
						    : IPCX__FRAME_CHUNK;
	o->max_msg = (size_t)ipcx__opt(u, FIFO_MAX);
	o->mode = (mode_t)ipcx__opt(u, FIFO_MODE);
	o->keep = ipcx__opt(u, FIFO_KEEP);
	int r = ipcx__url_path(u, PATH_MAX, &o->path);
	if (r < 0)
		return r;
	if (o->framing == IPCX__FRAME_LEN && o->max_msg > FIFO_ATOMIC_MAX)
		return ipcx__fail(-EINVAL, "%s: framing=len keeps a FIFO's messages whole only up to "
				  "%d bytes (PIPE_BUF less the length); leave framing= out for larger ones",
				  u->orig, FIFO_ATOMIC_MAX);
	return 0;
}

/* The bytes a message of max bytes takes in an empty pipe, in whole pages. */
static size_t pipe_room(const struct fopts *o)
{
	if (o->framing == IPCX__FRAME_CHUNK)
		return ipcx__ck_count(o->max_msg) * IPCX__CHUNK;
	size_t frame = o->max_msg + 4; /* a length or a newline */
	return (frame + PIPE_BUF - 1) / PIPE_BUF * PIPE_BUF;
}

/*
 * Give the pipe room for one whole message of max bytes, so that a message
 * sent into an empty FIFO is all in the pipe when ipcx_send returns (even if
 * the listener reads in the same thread: it gets it at once).  The kernel's
 * default is 64 KiB; ipcx__pipe_fit raises it as far as the system allows.
 */
static void size_pipe(int fd, const struct fopts *o)
{
	(void)ipcx__pipe_fit(fd, pipe_room(o));
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Remove the name of a stale FIFO.  A live listener holds a shared flock on
 * its FIFO from before the FIFO has its name until after the name is gone,
 * so an exclusive flock proves that none does (the kernel drops the lock of
 * a process that dies).  Holding it, remove the name only while it still
 * leads to the locked FIFO: of two listeners that find the same stale FIFO
 * at once, one removes it, and the other, finding it locked or replaced, is
 * refused as by a live listener.  (Device and inode numbers alone do not
 * tell FIFOs apart over time: a removed FIFO's inode is soon reused.)
 */
static int remove_stale(const struct ipcx__url *u, const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0; /* removed already: whoever renames first has the name */
	if (fd < 0)
		return ipcx__fail(-errno, "%s: cannot open the stale FIFO", u->orig);
	struct stat st, now;
	int r = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &st) < 0 || lstat(path, &now) < 0 ||
	    !same_file(&now, &st))
		r = ipcx__fail(-EADDRINUSE, "%s: a listener owns or is replacing this FIFO", u->orig);
	else if (unlink(path) < 0 && errno != ENOENT)
		r = ipcx__fail(-errno, "%s: cannot remove the stale FIFO", u->orig);
	close(fd); /* drops the lock */
	return r;
}

/*
 * A FIFO already at the path is stale when nobody reads it: opening it for
 * writing without blocking then fails with ENXIO (a program that is not
 * ipcx may be reading it: then it is live).  A listener's FIFO has a reader
 * and its lock from the moment it has its name (create_fifo), so this never
 * takes a listener that is still starting for a dead one.  Anything else at
 * the path is not ours to touch.
 */
static int claim_path(const struct ipcx__url *u, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : ipcx__fail(-errno, "%s: cannot examine the path", u->orig);
	if (!S_ISFIFO(st.st_mode))
		return ipcx__fail(-EEXIST, "%s: the path exists and is not a FIFO; not touching it",
				  u->orig);
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return ipcx__fail(-EADDRINUSE, "%s: a live reader owns this FIFO", u->orig);
	}
	if (errno == ENOENT)
		return 0;
	if (errno != ENXIO)
		return ipcx__fail(-errno, "%s: cannot tell whether the FIFO is in use", u->orig);
	return remove_stale(u, path);
}

/* A name for a FIFO under construction, in path's folder: "DIR/.ipcx-fifo-XXXX". */
static int temp_name(const char *path, char *buf, size_t cap)
{
	uint64_t nonce;
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
		nonce = (uint64_t)ipcx__now_ns() ^ (uint64_t)getpid() << 32;
	const char *slash = strrchr(path, '/');
	int n = snprintf(buf, cap, "%.*s/.ipcx-fifo-%016llx", (int)(slash - path), path,
			 (unsigned long long)nonce);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Give tmp the name path, unless something has it already (-EEXIST). */
static int rename_noreplace(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return -errno;
	/* A file system without RENAME_NOREPLACE: link() never replaces either. */
	if (link(tmp, path) < 0)
		return -errno;
	unlink(tmp);
	return 0;
}

/* Open both ends of the FIFO at tmp (the listener reads; see the top), and lock it. */
static int open_ends(const char *tmp, const struct fopts *o, int cloexec, int *rd, int *wr)
{
	*rd = open(tmp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | cloexec);
	if (*rd >= 0)
		*wr = open(tmp, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	/* The listener's lock, held while the read end is open (remove_stale). */
	if (*rd < 0 || *wr < 0 || flock(*rd, LOCK_SH | LOCK_NB) < 0 || fchmod(*rd, o->mode) < 0) {
		int err = -errno;
		ipcx__close_fd(*rd);
		ipcx__close_fd(*wr);
		*rd = *wr = -1;
		return err;
	}
	return 0;
}

/*
 * Make the FIFO under a temporary name in the same folder, open it, and only
 * then rename it to its path, never over anything: at its path it always
 * has a reader.  Of two listeners that get here at once, the second rename
 * fails: -EADDRINUSE.  *st gets the FIFO's identity.
 */
static int create_fifo(const struct ipcx__url *u, const struct fopts *o, int cloexec, int *rd,
		       int *wr, struct stat *st)
{
	char tmp[PATH_MAX];
	*rd = *wr = -1;
	int r = temp_name(o->path, tmp, sizeof(tmp));
	if (r < 0)
		return ipcx__fail(r, "%s: the path is too long", u->orig);
	/* mkfifo fails on anything already there, a symlink included. */
	if (mkfifo(tmp, o->mode) < 0)
		return ipcx__fail(-errno, "%s: cannot create the FIFO", u->orig);
	if ((r = open_ends(tmp, o, cloexec, rd, wr)) < 0 || fstat(*rd, st) < 0) {
		r = ipcx__fail(r < 0 ? r : -errno, "%s: cannot open the FIFO", u->orig);
		goto fail;
	}
	size_pipe(*rd, o);
	r = rename_noreplace(tmp, o->path);
	if (r == -EEXIST)
		r = ipcx__fail(-EADDRINUSE, "%s: another listener took the name first", u->orig);
	else if (r < 0)
		r = ipcx__fail(r, "%s: cannot create the FIFO", u->orig);
	if (r == 0)
		return 0;
fail:
	unlink(tmp);
	ipcx__close_fd(*rd);
	ipcx__close_fd(*wr);
	*rd = *wr = -1;
	return r;
}

/* Remove the listener's FIFO, if its path still names it (see remove_stale). */
static void remove_own(const char *path, const struct stat *own)
{
	struct stat now;
	if (lstat(path, &now) == 0 && same_file(&now, own))
		unlink(path);
}

static int fifo_new(int fd, int keepalive, const struct fopts *o, char *path, char *record,
		    ipcx_chan **ret)
{
	struct fifo *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	ipcx__chan_init(&f->base, &fifo_ops, &fifo_tran, fd, o->max_msg);
	ipcx__io_init(&f->io, fd, o->framing, o->max_msg, false);
	f->base.buffered = keepalive >= 0 && o->framing != IPCX__FRAME_RAW;
	f->keepalive = keepalive;
	f->path = path;
	f->record = record;
	*ret = &f->base;
	return 0;
}

static int fifo_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct fopts o;
	int r;
	if ((r = parse(u, &o)) < 0)
		return r;
	if (flags & IPCX_ACCEPT)
		return ipcx__fail(-EINVAL, "%s: a FIFO has no connections to accept", u->orig);
	if ((r = claim_path(u, o.path)) < 0)
		return r;
	int cloexec = (flags & IPCX_INHERIT) ? 0 : O_CLOEXEC;
	int rd, wr;
	struct stat st;
	if ((r = create_fifo(u, &o, cloexec, &rd, &wr, &st)) < 0)
		return r;
	char *path = NULL, *record = NULL;
	/* A kept FIFO is meant to outlive us: no creator record for gc. */
	if (!o.keep && (!(path = strdup(o.path)) || !(record = strdup(o.path)))) {
		r = -ENOMEM;
		goto fail;
	}
	if (record)
		ipcx__record_created(IPCX__OBJ_NAMED(IPCX_OBJ_FIFO, record));
	if ((r = fifo_new(rd, wr, &o, path, record, ret)) == 0) {
		struct fifo *f = ipcx__container_of(*ret, struct fifo, base);
		f->own = st;
		f->creator = getpid();
		return 0;
	}
	if (record)
		ipcx__record_removed(IPCX__OBJ_NAMED(IPCX_OBJ_FIFO, record));
fail:
	remove_own(o.path, &st); /* while it is still open: see remove_stale */
	ipcx__close_fd(rd);
	ipcx__close_fd(wr);
	free(path);
	free(record);
	return r;
}

static int fifo_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct fopts o;
	int r;
	if ((r = parse(u, &o)) < 0)
		return r;
	/* Look before opening: opening a device can have effects of its own. */
	struct stat st;
	if (stat(o.path, &st) == 0 && !S_ISFIFO(st.st_mode))
		return ipcx__fail(-EINVAL, "%s: not a FIFO", u->orig);
	int cloexec = (flags & IPCX_INHERIT) ? 0 : O_CLOEXEC;
	int fd = open(o.path, O_WRONLY | O_NONBLOCK | cloexec);
	if (fd < 0 && errno == ENXIO)
		return ipcx__fail(-ECONNREFUSED, "%s: nobody is reading the FIFO", u->orig);
	if (fd < 0)
		return ipcx__fail(-errno, "%s: cannot open the FIFO", u->orig);
	/* The path may have changed since stat(): check what was opened. */
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		return ipcx__fail(-EINVAL, "%s: not a FIFO", u->orig);
	}
	if ((r = fifo_new(fd, -1, &o, NULL, NULL, ret)) < 0)
		close(fd);
	return r;
}


static const struct ipcx_tran fifo_tran = {
	.scheme = "fifo",
	.options = fifo_options,
	.listen = fifo_listen,
	.dial = fifo_dial,
};

const struct ipcx_tran *const ipcx__trans_fifo[] = { &fifo_tran, NULL };
