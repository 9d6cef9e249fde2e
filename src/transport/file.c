/*
 * file:/path — an append-only file of records that readers follow.
 *
 * Layout (all integers little-endian):
 *
 *   file header, 16 bytes:  "ipcxrec1" then 8 reserved zero bytes
 *   record header, 24 bytes: magic "ICXR" | len u32 | writer u64 |
 *                           crc u32 (CRC-32C of the payload) |
 *                           hcrc u32 (CRC-32C of the 20 bytes before it)
 *   then len bytes of payload
 *
 * Writers.  A writer holds an open-file-description write lock on the whole
 * file (fcntl F_OFD_SETLKW) from before the first byte of a record until
 * after the last, and writes with O_APPEND.  Why a lock rather than relying
 * on O_APPEND's single write() alone:
 *   - a write() to a file can be short (a signal, a full disk, RLIMIT_FSIZE,
 *     a network filesystem); with the lock the writer finishes its record
 *     with more writes and nobody's bytes come between, at any record size;
 *   - above all, the lock tells a reader whether the incomplete record at
 *     the end of the file is being written (the lock is held) or was torn by
 *     a writer that died (the kernel dropped the lock with its descriptor).
 *     Without that a reader cannot tell, and would wait forever behind a
 *     torn record for bytes that never come.
 * A torn record stays in the file: the next writer appends after it.
 *
 * Readers.  Every channel reads the file from the start (or from its end
 * at open with from=end) and follows it like tail -f.  A record is handed
 * out only when its header and payload checksums hold.  When they do not,
 * or when a record is incomplete while no writer holds the lock, the reader
 * resynchronises: it scans forward for the next header whose checksum
 * holds.  So a writer killed mid-record never yields a torn record to
 * readers (up to the 2^-32 chance of a CRC-32C collision on the bytes that
 * follow it).  A channel skips the records it wrote itself (each record
 * carries its writer's random 64-bit id), so a channel never receives its
 * own sends, as on a socket.
 *
 * The descriptor behind ipcx_fileno() is an inotify watch on the file
 * (IN_MODIFY: a write happened) combined with the core's "a record waits"
 * eventfd: readable while a complete record waits for this channel.
 *
 * Bytes once written never change (append-only), so the read cache never
 * needs invalidating; truncating the file under its readers is not
 * supported.
 */
#include "core/clock.h"
#include "core/crc.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/tran.h"
#include "core/trust.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_HDR      16
#define REC_HDR       24
#define REC_MAGIC     0x52584349u /* "ICXR" little-endian */
#define DEFAULT_MAX   (1024 * 1024)
#define HARD_MAX      (64 * 1024 * 1024) /* largest record anyone may write */
#define CACHE_MIN     (64 * 1024)
#define LOCK_SLEEP_NS 50000LL
#define LOCK_CAP_NS   10000000LL

static const char file_magic[FILE_HDR] = "ipcxrec1";

struct file_chan {
	struct ipcx_chan c;
	int fd;           /* the file, O_APPEND (read-only if we may not write) */
	bool writable;
	bool sync;        /* fdatasync() after each record */
	bool hdr_ok;      /* the file header is there and right */
	uint64_t id;      /* our writer id: our own records are skipped */
	off_t off;        /* the next record to look at */
	/* A complete record found at off, waiting to be handed out. */
	bool have;
	uint32_t rec_len;
	/* Read cache: bytes [cache_off, cache_off + cache_len) of the file. */
	char *cache;
	size_t cache_cap, cache_len;
	off_t cache_off;
	uint64_t sent, received;
};

/* from= where a new reader starts; sync=1 fdatasyncs every append. */
static const char *const froms[] = { "start", "end", NULL };
enum { FILE_MAX, FILE_MODE, FILE_FROM, FILE_SYNC, FILE_NOPTS };
static const struct ipcx__opt file_options[FILE_NOPTS + 1] = {
	[FILE_MAX] = IPCX__UINT("max", 0, HARD_MAX, DEFAULT_MAX),
	[FILE_MODE] = IPCX__MODE("mode", 0600),
	[FILE_FROM] = IPCX__ENUM("from", froms, 0),
	[FILE_SYNC] = IPCX__BOOL("sync", false),
};

static const struct ipcx__chan_ops file_ops;
static const struct ipcx_tran file_tran;

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- locking ------------------------------------------------------------- */

static int lock_op(int fd, int cmd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	return fcntl(fd, cmd, &fl) < 0 ? -errno : 0;
}

/*
 * Take the writers' lock.  fcntl() has no timed wait: without a deadline we
 * block in F_OFD_SETLKW; with one we retry F_OFD_SETLK, sleeping 50 us
 * doubling to 10 ms between tries.  Writers hold the lock for one write, so
 * the wait is short unless someone holds the file locked on purpose.
 */
static int lock_take(int fd, short type, int timeout_ms)
{
	if (timeout_ms < 0) {
		int r;
		while ((r = lock_op(fd, F_OFD_SETLKW, type)) == -EINTR)
			;
		return r;
	}
	int64_t deadline = ipcx__deadline(timeout_ms), step = LOCK_SLEEP_NS;
	for (;;) {
		int r = lock_op(fd, F_OFD_SETLK, type);
		if (r != -EAGAIN && r != -EACCES && r != -EINTR)
			return r;
		if (timeout_ms == 0)
			return -EAGAIN;
		int64_t now = ipcx__now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		int64_t until = now + step < deadline ? now + step : deadline;
		struct timespec ts = { until / 1000000000, until % 1000000000 };
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		step = step * 2 > LOCK_CAP_NS ? LOCK_CAP_NS : step * 2;
	}
}

static void lock_drop(int fd)
{
	lock_op(fd, F_OFD_SETLK, F_UNLCK);
}

/* Is a writer in the middle of a record?  (Someone holds a write lock.) */
static bool writer_busy(int fd)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return true; /* cannot tell: assume busy and wait rather than skip */
	return fl.l_type != F_UNLCK;
}

/* ---- writing ---------------------------------------------------------------- */

/* Write all of iov (the lock is held, so nobody's bytes come between). */
static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Does the file start with our header?  0 yes, 1 too short yet, or -EBADMSG. */
static int header_check(int fd)
{
	char h[FILE_HDR];
	ssize_t n;
	while ((n = pread(fd, h, FILE_HDR, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if (n < FILE_HDR)
		return 1;
	if (memcmp(h, file_magic, FILE_HDR))
		return ipcx__fail(-EBADMSG, "not an ipcx record file (no 'ipcxrec1' header)");
	return 0;
}

/*
 * With the lock held: give an empty file its header, and never append to
 * a file that is not ours.
 */
static int ensure_header(struct file_chan *f)
{
	if (f->hdr_ok)
		return 0;
	int r = header_check(f->fd);
	if (r == 1) {
		struct stat st;
		if (fstat(f->fd, &st) < 0)
			return -errno;
		if (st.st_size != 0)
			return ipcx__fail(-EBADMSG, "the file header is torn (%lld bytes)",
					  (long long)st.st_size);
		struct iovec iov = { (void *)file_magic, FILE_HDR };
		r = write_all(f->fd, &iov, 1);
	}
	f->hdr_ok = r == 0;
	return r;
}

static ssize_t file_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct file_chan *f = ipcx__container_of(c, struct file_chan, c);
	if (!f->writable)
		return ipcx__fail(-EBADF, "the file was opened read-only (no write permission)");
	unsigned char h[REC_HDR];
	put32(h, REC_MAGIC);
	put32(h + 4, (uint32_t)len);
	put64(h + 8, f->id);
	put32(h + 16, ipcx__crc32c(0, msg, len));
	put32(h + 20, ipcx__crc32c(0, h, 20));
	int r = lock_take(f->fd, F_WRLCK, timeout_ms);
	if (r)
		return r;
	r = ensure_header(f);
	if (!r) {
		struct iovec iov[2] = { { h, REC_HDR }, { (void *)msg, len } };
		r = write_all(f->fd, iov, 2);
	}
	lock_drop(f->fd);
	if (r)
		return r;
	if (f->sync && fdatasync(f->fd) < 0)
		return -errno;
	f->sent++;
	return (ssize_t)len;
}

/* ---- reading ---------------------------------------------------------------- */

/*
 * Make bytes [pos, pos + n) present in the cache, as far as the file has
 * them.  Returns how many of the n bytes are there, or -errno.
 */
static ssize_t cache_fill(struct file_chan *f, off_t pos, size_t n)
{
	off_t end = f->cache_off + (off_t)f->cache_len;
	if (pos >= f->cache_off && pos + (off_t)n <= end)
		return (ssize_t)n;
	if (n > f->cache_cap) {
		size_t cap = n > CACHE_MIN ? n : CACHE_MIN;
		char *p = malloc(cap);
		if (!p)
			return -ENOMEM;
		size_t keep = pos >= f->cache_off && pos < end ? (size_t)(end - pos) : 0;
		if (keep)
			memcpy(p, f->cache + (pos - f->cache_off), keep);
		free(f->cache);
		f->cache = p;
		f->cache_cap = cap;
		f->cache_len = keep;
	} else if (pos >= f->cache_off && pos < end) {
		size_t keep = (size_t)(end - pos);
		memmove(f->cache, f->cache + (pos - f->cache_off), keep);
		f->cache_len = keep;
	} else {
		f->cache_len = 0;
	}
	f->cache_off = pos;
	/* Read as much as fits: the next records usually follow. */
	while (f->cache_len < n) {
		ssize_t r = pread(f->fd, f->cache + f->cache_len, f->cache_cap - f->cache_len,
				  pos + (off_t)f->cache_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		f->cache_len += (size_t)r;
	}
	return (ssize_t)(f->cache_len < n ? f->cache_len : n);
}

/* Forget cached bytes at and after pos: the file may have grown since. */
static void cache_trim(struct file_chan *f, off_t pos)
{
	if (pos < f->cache_off)
		f->cache_len = 0;
	else if (pos < f->cache_off + (off_t)f->cache_len)
		f->cache_len = (size_t)(pos - f->cache_off);
}

static const unsigned char *cached(struct file_chan *f, off_t pos)
{
	return (const unsigned char *)f->cache + (pos - f->cache_off);
}

/* The file header: 0 when present and right, 1 when not there yet. */
static int check_file_header(struct file_chan *f)
{
	if (f->hdr_ok && f->off >= FILE_HDR)
		return 0;
	int r = header_check(f->fd);
	if (r)
		return r;
	f->hdr_ok = true;
	if (f->off < FILE_HDR)
		f->off = FILE_HDR;
	return 0;
}

/* A record header at pos whose checksum holds?  Sets *len. */
static bool header_ok(const unsigned char *h, uint32_t *len)
{
	if (get32(h) != REC_MAGIC || get32(h + 20) != ipcx__crc32c(0, h, 20))
		return false;
	*len = get32(h + 4);
	return *len <= HARD_MAX;
}

/*
 * The record at f->off is torn or corrupt: move f->off to the next place
 * after it where a record header's checksum holds.  Returns 1 if found, 0
 * if the file has no such place yet (f->off then stays, to look again when
 * the file grows).
 */
static int resync(struct file_chan *f)
{
	for (off_t p = f->off + 1;; p++) {
		ssize_t n = cache_fill(f, p, REC_HDR);
		if (n < 0)
			return (int)n;
		if (n < REC_HDR) {
			cache_trim(f, p);
			return 0;
		}
		uint32_t len;
		if (header_ok(cached(f, p), &len)) {
			f->off = p;
			return 1;
		}
	}
}

/* CRC-32C of the payload of the record at off, read in pieces if large. */
static int payload_crc(struct file_chan *f, off_t off, uint32_t len, uint32_t *ret)
{
	uint32_t crc = 0;
	off_t pos = off + REC_HDR;
	while (len) {
		size_t piece = len < CACHE_MIN ? len : CACHE_MIN;
		ssize_t n = cache_fill(f, pos, piece);
		if (n < 0)
			return (int)n;
		if ((size_t)n < piece)
			return -ENODATA; /* cannot happen: the size was checked */
		crc = ipcx__crc32c(crc, cached(f, pos), piece);
		pos += (off_t)piece;
		len -= (uint32_t)piece;
	}
	*ret = crc;
	return 0;
}

/*
 * Is the record at f->off complete?  1 yes (*len set), 0 not yet (a writer
 * is busy with it, or nothing is there), 2 torn or corrupt (resync), or
 * -errno.
 */
static int record_state(struct file_chan *f, uint32_t *len, bool recheck)
{
	ssize_t n = cache_fill(f, f->off, REC_HDR);
	if (n < 0)
		return (int)n;
	if (n == REC_HDR) {
		if (!header_ok(cached(f, f->off), len))
			return 2;
		uint32_t want_crc = get32(cached(f, f->off) + 16);
		bool whole;
		if (*len <= f->c.max_msg) {
			n = cache_fill(f, f->off, (size_t)REC_HDR + *len);
			if (n < 0)
				return (int)n;
			whole = (size_t)n == (size_t)REC_HDR + *len;
		} else {
			/* Too large to hold: check the size, then the checksum piecewise. */
			struct stat st;
			if (fstat(f->fd, &st) < 0)
				return -errno;
			whole = st.st_size >= f->off + REC_HDR + (off_t)*len;
		}
		if (whole) {
			uint32_t crc = 0;
			int r = payload_crc(f, f->off, *len, &crc);
			if (r)
				return r;
			return crc == want_crc ? 1 : 2;
		}
	}
	/* Incomplete: being written, or torn by a writer that died? */
	cache_trim(f, f->off);
	if (n == 0 || writer_busy(f->fd))
		return 0;
	/* No writer: look once more, as it may have finished meanwhile. */
	return recheck ? record_state(f, len, false) : 2;
}

/*
 * Find the next complete record for us at or after f->off.  Returns 1 (it
 * is at f->off, f->rec_len bytes; f->have set; if rec_len <= max the whole
 * record is in the cache), 0 (none yet), or -errno.
 */
static int next_record(struct file_chan *f)
{
	if (f->have)
		return 1;
	int r = check_file_header(f);
	if (r)
		return r > 0 ? 0 : r;
	for (;;) {
		uint32_t len = 0;
		r = record_state(f, &len, true);
		if (r < 0 || r == 0)
			return r;
		if (r == 2) {
			r = resync(f);
			if (r <= 0)
				return r;
			continue;
		}
		/* Our own: a channel never hears itself.  (A record too large for
		 * the cache is not ours: we never send more than max.) */
		if (len <= f->c.max_msg && get64(cached(f, f->off) + 8) == f->id) {
			f->off += REC_HDR + (off_t)len;
			continue;
		}
		f->have = true;
		f->rec_len = len;
		return 1;
	}
}

/* Forget the inotify events seen so far: we are about to look at the file. */
static void drain_events(struct file_chan *f)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(f->c.fd, buf, sizeof(buf)) > 0)
		;
}

static ssize_t file_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct file_chan *f = ipcx__container_of(c, struct file_chan, c);
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		if (!f->have)
			drain_events(f);
		int r = next_record(f);
		if (r < 0)
			return r;
		if (r == 1) {
			uint32_t len = f->rec_len;
			if (len > c->max_msg) {
				/* Nobody could receive it on this channel: skip it. */
				f->off += REC_HDR + (off_t)len;
				f->have = false;
				return ipcx__fail(-EMSGSIZE, "a record of %u bytes is larger than "
						  "max=%zu; skipped", len, c->max_msg);
			}
			if (len > cap) {
				ipcx__chan_pending(c, true);
				return ipcx__fail(-EMSGSIZE, "a record of %u bytes waits; the "
						  "buffer has %zu", len, cap);
			}
			/* next_record() left the whole record in the cache. */
			memcpy(buf, cached(f, f->off) + REC_HDR, len);
			f->off += REC_HDR + (off_t)len;
			f->have = false;
			f->received++;
			/* Look ahead, so that the descriptor says whether another waits. */
			drain_events(f);
			ipcx__chan_pending(c, next_record(f) == 1);
			return (ssize_t)len;
		}
		ipcx__chan_pending(c, false);
		if (timeout_ms == 0)
			return -EAGAIN;
		r = ipcx__wait_fd(c->fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
}

/* ---- opening ---------------------------------------------------------------- */

static uint64_t writer_id(void)
{
	uint64_t id = 0;
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id) || id == 0) {
		/* No entropy yet (early boot): time, pid and an address will do. */
		id = (uint64_t)ipcx__now_ns() ^ ((uint64_t)getpid() << 32) ^
		     (uint64_t)(uintptr_t)&id;
	}
	return id;
}

/* from=end: start after the records already there (none is half-written). */
static int seek_end(struct file_chan *f)
{
	int r = lock_take(f->fd, F_RDLCK, -1);
	if (r)
		return r;
	struct stat st;
	r = fstat(f->fd, &st) < 0 ? -errno : 0;
	lock_drop(f->fd);
	if (!r)
		f->off = st.st_size > FILE_HDR ? st.st_size : FILE_HDR;
	return r;
}

/* The inotify watch behind ipcx_fileno(): a write to the file wakes us. */
static int watch(const struct ipcx__url *u, int fd, unsigned flags)
{
	int in = inotify_init1(IN_NONBLOCK | ((flags & IPCX_INHERIT) ? 0 : IN_CLOEXEC));
	if (in < 0) {
		int e = errno;
		if (e == EMFILE)
			return ipcx__fail(-EMFILE, "%s: inotify_init1: the user's inotify instances "
					  "(/proc/sys/fs/inotify/max_user_instances) or the "
					  "process's descriptors are used up", u->orig);
		return ipcx__fail(-e, "%s: inotify_init1: %s", u->orig, strerror(e));
	}
	/* Through /proc, the watch is on the very file we opened, not on a path
	 * that someone could have pointed elsewhere meanwhile. */
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	if (inotify_add_watch(in, p, IN_MODIFY) < 0 &&
	    inotify_add_watch(in, u->body, IN_MODIFY | IN_DONT_FOLLOW) < 0) {
		int e = errno;
		ipcx__close_fd(in);
		if (e == ENOSPC)
			return ipcx__fail(-ENOSPC, "%s: inotify_add_watch: the user's watches "
					  "(/proc/sys/fs/inotify/max_user_watches) are used up",
					  u->orig);
		return ipcx__fail(-e, "%s: inotify_add_watch: %s", u->orig, strerror(e));
	}
	return in;
}

static int file_wrap(const struct ipcx__url *u, int fd, bool writable, unsigned flags,
		     ipcx_chan **ret)
{
	size_t max = (size_t)ipcx__opt(u, FILE_MAX);
	bool sync = ipcx__opt(u, FILE_SYNC);
	int from = (int)ipcx__opt(u, FILE_FROM);
	int r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ipcx__fail(-errno, "%s: fstat: %s", u->orig, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ipcx__fail(-EINVAL, "%s: not a regular file", u->orig);
	if ((r = header_check(fd)) < 0)
		return ipcx__fail(r, "%s: not an ipcx record file (no 'ipcxrec1' header)",
				  u->orig);
	if ((flags & IPCX_INHERIT) && (r = ipcx__set_cloexec(fd, false)) < 0)
		return r;
	int in = watch(u, fd, flags);
	if (in < 0)
		return in;
	struct file_chan *f = calloc(1, sizeof(*f));
	if (!f) {
		ipcx__close_fd(in);
		return -ENOMEM;
	}
	ipcx__chan_init(&f->c, &file_ops, &file_tran, in, max);
	f->c.buffered = true;
	f->fd = fd;
	f->writable = writable;
	f->sync = sync;
	f->id = writer_id();
	if (from == 1 && (r = seek_end(f)) < 0) {
		ipcx__close_fd(in);
		free(f);
		return r;
	}
	/* Records already in the file wait for us: the descriptor must say so
	 * (an error to report counts too: the receive will return it). */
	ipcx__chan_pending(&f->c, next_record(f) != 0);
	ipcx__clear_detail();
	*ret = &f->c;
	return 0;
}

static int open_fail(const struct ipcx__url *u, int err, bool create)
{
	if (err == EEXIST)
		return ipcx__fail(-EEXIST, "%s: exists already (listen creates the file "
				  "exclusively; dial opens an existing one)", u->orig);
	if (err == ELOOP)
		return ipcx__fail(-ELOOP, "%s: is a symbolic link, which is never followed",
				  u->orig);
	if (err == ENOENT && !create)
		return ipcx__fail(-ENOENT, "%s: no such file", u->orig);
	return ipcx__fail(-err, "%s: open: %s", u->orig, strerror(err));
}

/*
 * The file persists, so listening again on it (the next run of the same
 * program, `ipcx recv` twice) must work.  Creating exclusively is what keeps
 * a squatter from planting the file; trust does the same for a file that
 * is there: we take it only if it is a regular file (never through a
 * symlink) that nobody but whom we trust could have written (ipcx__trust:
 * ours or root's, not writable by group or others unless mode= says so),
 * and already an ipcx record file, or empty.
 */
static int reopen_own(const struct ipcx__url *u, const char *path, mode_t mode, unsigned flags,
		      ipcx_chan **ret)
{
	int fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || header_check(fd) < 0) {
		ipcx__close_fd(fd);
		return ipcx__fail(-EEXIST, "%s: exists already, and is not an ipcx record file "
				  "(listen creates the file exclusively, or reopens a record "
				  "file)", u->orig);
	}
	int r = ipcx__trust(u->orig, st.st_uid, st.st_gid, st.st_mode, mode);
	if (r < 0) {
		close(fd);
		return r;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	r = file_wrap(u, fd, true, flags, ret);
	if (r < 0)
		close(fd);
	return r;
}

static int file_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	const char *path;
	mode_t mode = (mode_t)ipcx__opt(u, FILE_MODE);
	int r = ipcx__url_path(u, PATH_MAX, &path);
	if (r)
		return r;
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST)
		return reopen_own(u, path, mode, flags, ret);
	if (fd < 0)
		return open_fail(u, errno, true);
	/* open() applies the umask; an explicit mode is meant as given. */
	if (ipcx__opt_set(u, FILE_MODE) && fchmod(fd, mode) < 0) {
		r = ipcx__fail(-errno, "%s: fchmod: %s", u->orig, strerror(errno));
		goto fail;
	}
	if ((r = file_wrap(u, fd, true, flags, ret)) < 0)
		goto fail;
	/* Write the file header now, so that readers recognise the file. */
	struct file_chan *f = ipcx__container_of(*ret, struct file_chan, c);
	if ((r = lock_take(fd, F_WRLCK, -1)) == 0) {
		r = ensure_header(f);
		lock_drop(fd);
	}
	if (r) {
		ipcx_close(*ret);
		unlink(path);
		return ipcx__fail(r, "%s: writing the file header: %s", u->orig, strerror(-r));
	}
	drain_events(f); /* our own header write is no news for the descriptor */
	return 0;
fail:
	close(fd);
	unlink(path);
	return r;
}

static int file_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	const char *path;
	mode_t mode = (mode_t)ipcx__opt(u, FILE_MODE); /* whom we let write: see ipcx__trust */
	int r = ipcx__url_path(u, PATH_MAX, &path);
	if (r)
		return r;
	/* O_NONBLOCK: opening a FIFO planted at the path must not hang. */
	int base = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
	bool writable = true;
	int fd = open(path, O_RDWR | O_APPEND | base);
	if (fd < 0 && errno == EACCES) {
		/* Allowed to read but not to write: follow the file read-only. */
		writable = false;
		fd = open(path, O_RDONLY | base);
	}
	if (fd < 0)
		return open_fail(u, errno, false);
	/* Records that someone we do not trust could have written are not believed. */
	if ((r = ipcx__trust_fd(u->orig, fd, mode)) < 0) {
		close(fd);
		return r;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if ((r = file_wrap(u, fd, writable, flags, ret)) < 0)
		close(fd);
	return r;
}

static int file_stats(ipcx_chan *c, struct ipcx_stats *ret)
{
	struct file_chan *f = ipcx__container_of(c, struct file_chan, c);
	/* depth is not counted: that would mean reading the rest of the file. */
	*ret = (struct ipcx_stats){ .sent = f->sent, .received = f->received };
	return 0;
}

static int file_close(ipcx_chan *c)
{
	struct file_chan *f = ipcx__container_of(c, struct file_chan, c);
	int r = close(f->fd) < 0 ? -errno : 0;
	ipcx__close_fd(c->fd);
	free(f->cache);
	free(f);
	return r;
}

static const struct ipcx__chan_ops file_ops = {
	.send = file_send,
	.recv = file_recv,
	.stats = file_stats,
	.close = file_close,
};

static const struct ipcx_tran file_tran = {
	.scheme = "file",
	.options = file_options,
	.listen = file_listen,
	.dial = file_dial,
};

const struct ipcx_tran *const ipcx__trans_file[] = { &file_tran, NULL };
