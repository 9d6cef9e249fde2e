/*
 * The drain of the logging pipeline (docs/log.md): takes records out of
 * the log in order and writes them as lines to a file or standard output.
 *
 * Nothing lost, nothing written twice, whenever the drain is killed.  On a
 * ring the drain reads a batch ahead without taking it (ipcx_read_ahead),
 * writes the batch's lines with one write(2), and only then takes the
 * records (peek/release, checked against what it read).  Killed before the
 * write, the records are all still in the log; killed after it, some may
 * be both in the log and in the file.  So a drain that starts (resume())
 * reads the last line of its file and renders the records at the front of
 * the log until one renders to that line: those were written already, and
 * are taken without being written again.  Rendering is a pure function of
 * the record (logfmt.c) and a line holds the record's time to the
 * nanosecond, pid and thread id, so no other record renders the same.  A
 * line torn by a kill in the middle of write(2) is cut off first.  The
 * page cache keeps what write(2) wrote when the process dies, so no fsync
 * is needed for that; IPCX_LOGD_FSYNC makes the lines durable before the
 * records leave the log, for a machine that crashes.
 *
 * Other channels (sockets) cannot be read ahead: records are taken, then
 * written; a drain killed in between loses what it held.
 */
#include "logfmt_int.h"
#include "logrec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOGD_BATCH    1024       /* records per batch */
#define LOGD_OUT_HIGH (256u << 10) /* a batch's lines stop growing past this */
#define LOGD_HEAD     48         /* bytes of each record kept to check the take */
#define LOGD_TAIL     (1u << 20) /* the end of the output read when resuming */
#define LOGD_NAP_MIN_NS 250000   /* the drain's first nap when the log is empty */
#define LOGD_NAP_MAX_NS 16000000 /* and its longest */

struct seen {
	uint32_t len;
	uint8_t head[LOGD_HEAD];
};

struct ipcx_logd {
	ipcx_chan *c;
	bool ahead;     /* the log can be read ahead: write first, take after */
	bool resumed;   /* the output's end was compared with the log's front */
	bool idle;      /* the log was empty when last looked at */
	int lockfd;     /* mmap: the log file, flock'ed: one drain at a time */
	int fd;         /* the output */
	bool file;      /* the output is a file of ours (not standard output) */
	char *path;
	uint64_t size;  /* of the output file */
	uint64_t rotate_size;
	unsigned keep, flags;
	struct logfmt fmt;
	struct logclock clk;
	char *rec;      /* one record */
	size_t cap;
	struct pat_bytes out; /* the batch's lines */
	struct seen *seen; /* the batch's records, to check them as they are taken */
	struct ipcx_logd_stats st;
	char *format;   /* owned copy: fmt points into it */
};

/* ---- the output -------------------------------------------------------------------- */

static int open_out(ipcx_logd *d)
{
	if (!d->file) {
		d->fd = STDOUT_FILENO;
		return 0;
	}
	/* Read and written: resuming reads its end, and cuts a torn line off. */
	int fd = open(d->path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL; /* rotation and resuming need a regular file */
	}
	d->fd = fd;
	d->size = (uint64_t)st.st_size;
	return 0;
}

static void close_out(ipcx_logd *d)
{
	if (d->file && d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

IPCX_EXPORT int ipcx_logd_reopen(ipcx_logd *d)
{
	if (!d)
		return -EINVAL;
	if (!d->file)
		return 0;
	close_out(d);
	return open_out(d);
}

/*
 * Write the batch's lines.  A failure (a full disk) cuts the file back to
 * where the batch began, so that writing the batch again later repeats
 * nothing; its records stay in the log.
 */
static int emit(ipcx_logd *d)
{
	size_t off = 0;
	while (off < d->out.len) {
		ssize_t n = write(d->fd, d->out.p + off, d->out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;
			if (d->file && off && ftruncate(d->fd, (off_t)d->size) < 0)
				e = -errno;
			return e;
		}
		off += (size_t)n;
	}
	d->size += off;
	d->out.len = 0;
	if ((d->flags & IPCX_LOGD_FSYNC) && d->file && fdatasync(d->fd) < 0)
		return -errno;
	return 0;
}

/* FILE.i, or FILE itself for i = 0. */
static int rotated_name(const ipcx_logd *d, unsigned i, char *buf, size_t cap)
{
	int n = i ? snprintf(buf, cap, "%s.%u", d->path, i) : snprintf(buf, cap, "%s", d->path);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* FILE.keep-1 -> FILE.keep ... FILE -> FILE.1, then a new FILE. */
static int rotate(ipcx_logd *d)
{
	char from[PATH_MAX], to[PATH_MAX];
	for (unsigned i = d->keep; i > 0; i--) {
		if (rotated_name(d, i - 1, from, sizeof(from)) < 0 ||
		    rotated_name(d, i, to, sizeof(to)) < 0)
			return -ENAMETOOLONG;
		if (rename(from, to) < 0 && errno != ENOENT)
			return -errno;
	}
	if (d->keep == 0 && unlink(d->path) < 0 && errno != ENOENT)
		return -errno;
	d->st.rotations++;
	return ipcx_logd_reopen(d);
}

/* ---- taking what was written ------------------------------------------------------ */

static void remember(ipcx_logd *d, size_t i, size_t len)
{
	d->seen[i].len = (uint32_t)len;
	memcpy(d->seen[i].head, d->rec, len < LOGD_HEAD ? len : LOGD_HEAD);
}

/*
 * Take the n records read ahead, now that their lines are written.  Each
 * must be the one read: anything else means that another consumer takes
 * records from this log.
 */
static int take(ipcx_logd *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const void *p;
		ssize_t len = ipcx_peek(d->c, 0, &p);
		if (len < 0)
			return len == -EAGAIN ? -EBUSY : (int)len;
		size_t k = (size_t)len < LOGD_HEAD ? (size_t)len : LOGD_HEAD;
		bool same = (size_t)len == d->seen[i].len && !memcmp(p, d->seen[i].head, k);
		int r = ipcx_release(d->c);
		if (!same)
			return -EBUSY;
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- resuming after an earlier drain ------------------------------------------------- */

/*
 * The last whole line of the file at path (fd, or a new descriptor when
 * fd < 0), without its '\n', into a buffer to free; 0 when there is none.
 * With cut, a partial line at the end (a write killed half-way) is cut off.
 */
static ssize_t last_line(const char *path, int fd, bool cut, char **ret)
{
	int own = fd < 0 ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	int rfd = fd < 0 ? own : fd;
	struct stat st;
	if (rfd < 0 || fstat(rfd, &st) < 0 || st.st_size == 0) {
		if (own >= 0)
			close(own);
		return 0;
	}
	size_t n = st.st_size < (off_t)LOGD_TAIL ? (size_t)st.st_size : LOGD_TAIL;
	off_t at = st.st_size - (off_t)n;
	char *buf = malloc(n);
	ssize_t got = buf ? pread(rfd, buf, n, at) : -1;
	ssize_t r = 0;
	if (got == (ssize_t)n) {
		size_t end = n;
		while (end && buf[end - 1] != '\n')
			end--; /* a torn line, if any, ends after the last '\n' */
		if (end < n && cut && (end || at == 0)) {
			if (ftruncate(rfd, at + (off_t)end) < 0)
				end = 0;
		}
		size_t start = end ? end - 1 : 0;
		while (start && buf[start - 1] != '\n')
			start--;
		if (end && (start || at == 0)) {
			memmove(buf, buf + start, end - 1 - start);
			r = (ssize_t)(end - 1 - start);
			*ret = buf;
			buf = NULL;
		}
	}
	free(buf);
	if (own >= 0)
		close(own);
	return r;
}

/* The offset just past the line of b that equals want, or 0. */
static size_t find_line(const struct pat_bytes *b, const char *want, size_t wlen)
{
	for (size_t s = 0; s < b->len;) {
		const char *nl = memchr(b->p + s, '\n', b->len - s);
		size_t e = nl ? (size_t)(nl - b->p) : b->len;
		if (e - s == wlen && !memcmp(b->p + s, want, wlen))
			return e + 1;
		s = e + 1;
	}
	return 0;
}

/*
 * Records at the front of the log that an earlier drain already wrote:
 * take them without writing them again (see the top of this file).  The
 * earlier drain's last batch had at most LOGD_BATCH records.
 */
static int resume(ipcx_logd *d)
{
	d->resumed = true;
	if (!d->ahead || !d->file)
		return 0;
	char *last = NULL;
	ssize_t ll = last_line(d->path, d->fd, true, &last);
	struct stat st;
	if (fstat(d->fd, &st) == 0)
		d->size = (uint64_t)st.st_size;
	if (ll == 0 && d->size == 0) { /* rotated (or moved by logrotate) just after a write */
		char one[PATH_MAX];
		if (rotated_name(d, 1, one, sizeof(one)) == 0)
			ll = last_line(one, -1, false, &last);
	}
	if (ll <= 0)
		return 0;
	struct pat_bytes tmp = { 0 };
	uint64_t cursor = 0, ignored = 0;
	size_t found = 0, after = 0;
	for (size_t i = 0; i < LOGD_BATCH && !found; i++) {
		ssize_t len = ipcx_read_ahead(d->c, &cursor, d->rec, d->cap, 0);
		if (len < 0)
			break;
		remember(d, i, (size_t)len);
		tmp.len = 0;
		if (ipcx__logfmt_record(&d->fmt, &d->clk, cursor, d->rec, (size_t)len, &tmp,
					&ignored) < 0)
			break;
		if ((after = find_line(&tmp, last, (size_t)ll)) != 0)
			found = i + 1;
	}
	int r = 0;
	if (found) {
		/* The lines of the last record that the killed write did not reach. */
		memmove(tmp.p, tmp.p + after, tmp.len - after);
		tmp.len -= after;
		struct pat_bytes swap = d->out;
		d->out = tmp;
		tmp = swap;
		if ((r = emit(d)) == 0 && (r = take(d, found)) == 0)
			d->st.skipped += found;
	}
	free(tmp.p);
	free(last);
	return r;
}

/* ---- batches -------------------------------------------------------------------------- */

/* Render one record into the batch; counts go to *st, made good once written. */
static int render(ipcx_logd *d, uint64_t id, size_t len, struct ipcx_logd_stats *st)
{
	int r = ipcx__logfmt_record(&d->fmt, &d->clk, id, d->rec, len, &d->out, &st->dropped);
	if (r < 0)
		return r;
	st->records++;
	st->invalid += r == 1;
	return 0;
}

static void count(ipcx_logd *d, const struct ipcx_logd_stats *st)
{
	d->st.records += st->records;
	d->st.dropped += st->dropped;
	d->st.invalid += st->invalid;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The first record of a batch, on a ring.  The drain polls instead of
 * sleeping on the ring's futex: a committer that finds a sleeper wakes it
 * with a system call, and every writer's commit does so until the sleeper
 * has run, which on a busy machine takes milliseconds of a burst: a log
 * call must not pay for the drain's sleep.  Naps from LOGD_NAP_MIN_NS,
 * doubling up to LOGD_NAP_MAX_NS while the log stays empty.
 */
static ssize_t first_ahead(ipcx_logd *d, uint64_t *cursor, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ns() + (int64_t)timeout_ms * 1000000;
	int64_t nap = LOGD_NAP_MIN_NS;
	for (;;) {
		/*
		 * An idle drain looks before it touches the ring: a peer that cut
		 * the log short (ftruncate) while it napped would make the touch a
		 * SIGBUS.  ipcx_stats makes the ring's check for that (docs/shm.md,
		 * "Trust"), as a futex sleeper's wake-up does, and says -EBADMSG.
		 */
		struct ipcx_stats st;
		if (d->idle && ipcx_stats(d->c, &st) == -EBADMSG)
			return -EBADMSG;
		ssize_t len = ipcx_read_ahead(d->c, cursor, d->rec, d->cap, 0);
		d->idle = len == -EAGAIN;
		if (len != -EAGAIN || timeout_ms == 0)
			return len;
		int64_t left = deadline < 0 ? nap : deadline - mono_ns();
		if (left <= 0)
			return -ETIMEDOUT;
		struct timespec ts = { 0, left < nap ? left : nap };
		nanosleep(&ts, NULL);
		nap = nap * 2 < LOGD_NAP_MAX_NS ? nap * 2 : LOGD_NAP_MAX_NS;
	}
}

/*
 * One batch.  A ring: read ahead, write, then take.  Other channels (no
 * reading ahead): take, then write; their records have no position, so
 * their ids count them.
 */
static ssize_t batch(ipcx_logd *d, int timeout_ms)
{
	struct ipcx_logd_stats st = { 0 };
	uint64_t cursor = 0;
	size_t n = 0;
	ssize_t len = 0;
	d->out.len = 0;
	while (n < LOGD_BATCH && d->out.len < LOGD_OUT_HIGH) {
		int wait = n ? 0 : timeout_ms;
		if (d->ahead)
			len = n ? ipcx_read_ahead(d->c, &cursor, d->rec, d->cap, 0)
				: first_ahead(d, &cursor, timeout_ms);
		else
			len = ipcx_recv(d->c, d->rec, d->cap, wait);
		if (len == -ESTALE)
			return -EBUSY; /* another consumer took a record from under us */
		if (len < 0)
			break;
		if (d->ahead)
			remember(d, n, (size_t)len);
		uint64_t id = d->ahead ? cursor : d->st.records + n + 1;
		int r = render(d, id, (size_t)len, &st);
		if (r < 0)
			return r;
		n++;
	}
	if (!n)
		return len; /* nothing came, or the channel failed (it says so again next time) */
	int r = emit(d);
	if (r == 0 && d->ahead)
		r = take(d, n);
	if (r < 0)
		return r;
	count(d, &st);
	return (ssize_t)n;
}

IPCX_EXPORT ssize_t ipcx_logd_run(ipcx_logd *d, int timeout_ms)
{
	if (!d)
		return -EINVAL;
	if (timeout_ms < -1)
		return ipcx_errdetail_set(-EINVAL, "timeout %d ms: want -1 (wait forever), 0 (do "
						   "not wait) or a number of milliseconds", timeout_ms);
	if (!d->resumed) {
		int r = resume(d);
		if (r < 0)
			return r;
	}
	ssize_t n = batch(d, timeout_ms);
	if (n > 0 && d->file && d->rotate_size && d->size >= d->rotate_size) {
		int r = rotate(d);
		if (r < 0)
			return r;
	}
	return n;
}

/* ---- opening -------------------------------------------------------------------------- */

/* An mmap: log's path (the URL's body up to '?'), or NULL. */
static char *mmap_path(const char *url)
{
	if (strncmp(url, "mmap:", 5))
		return NULL;
	const char *p = url + 5;
	if (!strncmp(p, "//", 2))
		p += 2;
	return strndup(p, strcspn(p, "?"));
}

/*
 * One drain per log: a listener is alone by itself (a second one is
 * refused), and an mmap: log, which any number may open, is flock'ed.
 */
static int lock_log(ipcx_logd *d, const char *url)
{
	char *path = mmap_path(url);
	if (!path)
		return 0;
	d->lockfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (d->lockfd < 0)
		return -errno;
	if (flock(d->lockfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? ipcx_errdetail_set(-EBUSY, "%s: another drain has it", url)
					    : -errno;
	return 0;
}

static int open_log(ipcx_logd *d, const char *url)
{
	char *u = ipcx__log_url(url, false);
	if (!u)
		return -ENOMEM;
	int r = ipcx_listen(u, 0, &d->c);
	free(u);
	if (r == -EEXIST || r == -EADDRINUSE)
		r = ipcx_errdetail_set(-EBUSY, "%s: another drain has it", url);
	if (r < 0)
		return r;
	r = lock_log(d, url);
	if (r < 0)
		return r;
	d->cap = ipcx_max_msg(d->c);
	uint64_t cursor = 0;
	char probe;
	/* Can it be read ahead?  (0 bytes of room: a message answers -EMSGSIZE.) */
	ssize_t k = ipcx_read_ahead(d->c, &cursor, &probe, 0, 0);
	d->ahead = k != -EOPNOTSUPP;
	d->rec = malloc(d->cap ? d->cap : 1);
	d->seen = calloc(LOGD_BATCH, sizeof(*d->seen));
	return d->rec && d->seen ? 0 : -ENOMEM;
}

IPCX_EXPORT int ipcx_logd_close(ipcx_logd *d)
{
	if (!d)
		return 0;
	int r = ipcx_close(d->c);
	close_out(d);
	if (d->lockfd >= 0)
		close(d->lockfd);
	free(d->path);
	free(d->rec);
	free(d->seen);
	free(d->out.p);
	free(d->format);
	free(d);
	return r;
}

IPCX_EXPORT int ipcx_logd_open(const char *url, const struct ipcx_logd_opts *o, ipcx_logd **ret)
{
	static const struct ipcx_logd_opts none = { 0 };
	if (!url || !ret)
		return -EINVAL;
	if (!o)
		o = &none;
	if (o->flags & ~(IPCX_LOGD_JSON | IPCX_LOGD_FSYNC))
		return -EINVAL;
	ipcx_logd *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = d->lockfd = -1;
	d->flags = o->flags;
	d->rotate_size = o->rotate_size;
	d->keep = o->keep;
	d->file = o->out && strcmp(o->out, "-") != 0;
	int r = 0;
	if ((o->format && !(d->format = strdup(o->format))) || (d->file && !(d->path = strdup(o->out))))
		r = -ENOMEM;
	if (r == 0 && (r = ipcx__logfmt_parse(d->format, o->flags & IPCX_LOGD_JSON, &d->fmt)) < 0)
		r = ipcx_errdetail_set(r, "format '%s': %s", d->format,
				       r == -E2BIG ? "too many parts"
						   : "say %t %m %l %n %p %T %d %s or %%");
	if (r == 0)
		r = open_log(d, url);
	if (r == 0)
		r = open_out(d);
	if (r < 0) {
		ipcx_logd_close(d);
		return r;
	}
	*ret = d;
	return 0;
}

IPCX_EXPORT int ipcx_logd_stats(ipcx_logd *d, struct ipcx_logd_stats *ret)
{
	if (!d || !ret)
		return -EINVAL;
	*ret = d->st;
	return 0;
}
