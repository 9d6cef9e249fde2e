/*
 * file:/path, the append-only record file: readers get every record from
 * the start and follow new ones; concurrent writers never interleave; a
 * writer killed mid-record never shows a torn record; readiness, timeouts,
 * permissions, and files that are not ours.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crc.h"
#include "tpriv.h"
#include "tsupport.h"

static char url[512];

static const char *file_url(const char *leaf, const char *opts)
{
	snprintf(url, sizeof(url), "file:%s%s%s", t_path(leaf), opts ? "?" : "",
		 opts ? opts : "");
	return url;
}

Test(file, crc32c_known_value)
{
	/* The standard check value of CRC-32C. */
	cr_expect_eq(ipcx__crc32c(0, "123456789", 9), 0xE3069283u);
	uint32_t c = ipcx__crc32c(0, "1234", 4);
	cr_expect_eq(ipcx__crc32c(c, "56789", 5), 0xE3069283u, "in pieces");
	char big[1000];
	memset(big, 0xa5, sizeof(big));
	cr_expect_eq(ipcx__crc32c(ipcx__crc32c(0, big, 333), big + 333, 667),
		     ipcx__crc32c(0, big, 1000));
}

Test(file, round_trip_created_0600_and_persists)
{
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	struct stat st;
	cr_assert_eq(stat(t_path("log"), &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	cr_expect_str_eq(ipcx_scheme(d), "file");
	cr_assert_eq(ipcx_send(d, "hello", 5, 1000), 5);
	cr_assert_eq(ipcx_send(d, "", 0, 1000), 0);
	cr_assert_eq(ipcx_send(l, "back", 4, 1000), 4);
	t_expect_recv(l, "hello"); /* the listener never hears itself ... */
	t_expect_recv(l, "");
	char buf[16];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	t_expect_recv(d, "back"); /* ... nor does the dialer */
	cr_expect_eq(ipcx_close(d), 0);
	cr_expect_eq(ipcx_close(l), 0);
	cr_expect_eq(stat(t_path("log"), &st), 0, "the file persists");
	cr_expect_gt(st.st_size, 0);
}

Test(file, reader_gets_everything_from_the_start_then_follows)
{
	ipcx_chan *l, *r, *late;
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	for (int i = 0; i < 3; i++) {
		char m[16];
		int n = snprintf(m, sizeof(m), "old %d", i);
		cr_assert_eq(ipcx_send(l, m, (size_t)n, 1000), n);
	}
	cr_assert_eq(ipcx_dial(url, 0, &r), 0, "%s", ipcx_errdetail());
	char lurl[600];
	snprintf(lurl, sizeof(lurl), "%s?from=end", url);
	cr_assert_eq(ipcx_dial(lurl, 0, &late), 0, "%s", ipcx_errdetail());
	cr_expect(t_chan_readable(r, 0), "records already in the file make it readable");
	cr_expect(!t_chan_readable(late, 0), "from=end: nothing waits");
	t_expect_recv(r, "old 0");
	t_expect_recv(r, "old 1");
	t_expect_recv(r, "old 2");
	char buf[16];
	cr_expect_eq(ipcx_recv(r, buf, sizeof(buf), 20), -ETIMEDOUT);
	cr_expect(!t_chan_readable(r, 0), "nothing waits");
	cr_assert_eq(ipcx_send(l, "new", 3, 1000), 3);
	cr_expect(t_chan_readable(r, T_GUARD_MS), "a new record wakes the follower");
	t_expect_recv(r, "new");
	t_expect_recv(late, "new"); /* from=end skipped the old ones */
	ipcx_close(late);
	ipcx_close(r);
	ipcx_close(l);
}

static int late_writer(void *arg)
{
	struct t_sync *s = arg;
	ipcx_chan *d;
	if (ipcx_dial(url, 0, &d) < 0)
		return 1;
	if (!t_wait_post(s, T_GUARD_MS))
		return 2;
	int ok = ipcx_send(d, "late", 4, 1000) == 4;
	ipcx_close(d);
	return ok ? 0 : 3;
}

Test(file, blocked_reader_wakes)
{
	ipcx_chan *l;
	struct t_sync s;
	t_sync_init(&s);
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	pid_t p = t_spawn(late_writer, &s);
	t_post(&s);
	t_expect_recv(l, "late");
	cr_expect_eq(t_join(p, T_GUARD_MS), 0);
	ipcx_close(l);
	t_sync_close(&s);
}

/* Records that prove their own integrity: writer, sequence, filler. */
#define WRITERS 3
#define PER_WRITER 150

static size_t make_record(char *buf, int w, int seq)
{
	/* Sizes from tiny to several pages, so writes cross page boundaries. */
	size_t n = 16 + (size_t)((seq * 7919 + w * 104729) % 70000);
	memset(buf, 'a' + w, n);
	snprintf(buf, 16, "%d:%06d", w, seq);
	return n;
}

static int busy_writer(void *arg)
{
	int w = (int)(intptr_t)arg;
	ipcx_chan *d;
	if (ipcx_dial(url, 0, &d) < 0)
		return 1;
	char *buf = malloc(70016);
	for (int i = 0; buf && i < PER_WRITER; i++) {
		size_t n = make_record(buf, w, i);
		if (ipcx_send(d, buf, n, T_GUARD_MS) != (ssize_t)n)
			return 2;
	}
	free(buf);
	ipcx_close(d);
	return 0;
}

Test(file, concurrent_writers_never_interleave, .timeout = 120)
{
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	pid_t p[WRITERS];
	for (int w = 0; w < WRITERS; w++)
		p[w] = t_spawn(busy_writer, (void *)(intptr_t)w);
	int next[WRITERS] = { 0 };
	char *buf = malloc(70016), *want = malloc(70016);
	for (int i = 0; i < WRITERS * PER_WRITER; i++) {
		ssize_t n = ipcx_recv(l, buf, 70016, T_GUARD_MS);
		cr_assert_gt(n, 0, "record %d: %zd %s", i, n, ipcx_errdetail());
		int w = buf[0] - '0';
		cr_assert(w >= 0 && w < WRITERS, "record %d from writer '%c'", i, buf[0]);
		size_t wn = make_record(want, w, next[w]);
		cr_assert_eq((size_t)n, wn, "writer %d record %d: length", w, next[w]);
		cr_assert_eq(memcmp(buf, want, wn), 0, "writer %d record %d intact, in order", w,
			     next[w]);
		next[w]++;
	}
	for (int w = 0; w < WRITERS; w++)
		cr_expect_eq(t_join(p[w], T_GUARD_MS), 0);
	free(buf);
	free(want);
	ipcx_close(l);
}

/*
 * A writer killed mid-record, made deterministic: the child holds the
 * writers' lock (as ipcx does) and writes the first part of a real record,
 * then is killed with SIGKILL.  The record's bytes come from a scratch file
 * written through ipcx, so the test does not restate the format.
 */
struct torn {
	const char *path;
	const char *bytes;
	size_t part;
	struct t_sync ready;
};

static int torn_writer(void *arg)
{
	struct torn *t = arg;
	int fd = open(t->path, O_WRONLY | O_APPEND);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fd < 0 || fcntl(fd, F_OFD_SETLKW, &fl) < 0)
		return 1;
	if (write(fd, t->bytes, t->part) != (ssize_t)t->part)
		return 2;
	t_post(&t->ready);
	pause();
	return 3;
}

static char *record_bytes(const char *payload, size_t *len)
{
	ipcx_chan *s;
	char su[600];
	snprintf(su, sizeof(su), "file:%s", t_path("scratch"));
	unlink(t_path("scratch"));
	cr_assert_eq(ipcx_listen(su, 0, &s), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(s, payload, strlen(payload), 1000), (ssize_t)strlen(payload));
	ipcx_close(s);
	int fd = open(t_path("scratch"), O_RDONLY);
	static char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf), 16); /* after the file header */
	close(fd);
	cr_assert_gt(n, 0);
	*len = (size_t)n;
	return buf;
}

static void torn_case(size_t cut)
{
	size_t full;
	const char *rec = record_bytes("THIS RECORD IS TORN BY A KILLED WRITER", &full);
	cr_assert_lt(cut, full);
	ipcx_chan *l, *w;
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &w), 0);
	cr_assert_eq(ipcx_send(w, "before", 6, 1000), 6);
	struct torn t = { .path = t_path("log"), .bytes = rec, .part = cut };
	t_sync_init(&t.ready);
	pid_t p = t_spawn(torn_writer, &t);
	cr_assert(t_wait_post(&t.ready, T_GUARD_MS));
	t_expect_recv(l, "before");
	char buf[256];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN, "a record in progress waits");
	kill(p, SIGKILL);
	cr_expect_eq(t_join(p, T_GUARD_MS), 128 + SIGKILL);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN, "torn: nothing to hand out");
	/* The next writer appends after the torn bytes; readers resynchronise. */
	cr_assert_eq(ipcx_send(w, "after", 5, 1000), 5);
	t_expect_recv(l, "after");
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	/* A new reader, from the start, sees the same. */
	ipcx_chan *r;
	cr_assert_eq(ipcx_dial(url, 0, &r), 0);
	t_expect_recv(r, "before");
	t_expect_recv(r, "after");
	cr_expect_eq(ipcx_recv(r, buf, sizeof(buf), 0), -EAGAIN);
	ipcx_close(r);
	ipcx_close(w);
	ipcx_close(l);
	unlink(t_path("log"));
	t_sync_close(&t.ready);
}

Test(file, writer_killed_mid_record_never_shows_a_torn_record)
{
	size_t cuts[] = { 1, 10, 23, 24, 30, 60 }; /* in the header, at its end, in the payload */
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		torn_case(cuts[i]);
}

/* A real ipcx writer killed at a random moment while writing large records. */
static int big_writer(void *arg)
{
	struct t_sync *s = arg;
	ipcx_chan *d;
	if (ipcx_dial(url, 0, &d) < 0)
		return 1;
	size_t n = 8 << 20;
	char *big = malloc(n);
	if (!big)
		return 2;
	memset(big, 'B', n);
	t_post(s);
	for (;;)
		ipcx_send(d, big, n, -1);
}

Test(file, real_writer_killed_while_writing, .timeout = 120)
{
	ipcx_chan *l, *w;
	struct t_sync s;
	t_sync_init(&s);
	cr_assert_eq(ipcx_listen(file_url("log", "max=16777216"), 0, &l), 0, "%s",
		     ipcx_errdetail());
	pid_t p = t_spawn(big_writer, &s);
	cr_assert(t_wait_post(&s, T_GUARD_MS));
	char *buf = malloc(16 << 20);
	/* Take one whole record, then kill the writer, likely mid-write. */
	ssize_t n = ipcx_recv(l, buf, 16 << 20, T_GUARD_MS);
	cr_assert_eq(n, 8 << 20, "%zd %s", n, ipcx_errdetail());
	kill(p, SIGKILL);
	t_join(p, T_GUARD_MS);
	cr_assert_eq(ipcx_dial(url, 0, &w), 0);
	cr_assert_eq(ipcx_send(w, "end", 3, 1000), 3);
	/* Whatever was cut, every record handed out is whole. */
	for (;;) {
		n = ipcx_recv(l, buf, 16 << 20, T_GUARD_MS);
		cr_assert_gt(n, 0, "%zd %s", n, ipcx_errdetail());
		if (n == 3) {
			cr_expect_eq(memcmp(buf, "end", 3), 0);
			break;
		}
		cr_assert_eq(n, 8 << 20, "only whole records");
		for (ssize_t i = 0; i < n; i += 4096)
			cr_assert_eq(buf[i], 'B');
	}
	free(buf);
	ipcx_close(w);
	ipcx_close(l);
	unlink(t_path("log"));
	t_sync_close(&s);
}

Test(file, small_buffer_keeps_and_oversize_is_skipped)
{
	ipcx_chan *l, *small;
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	char surl[600];
	snprintf(surl, sizeof(surl), "%s?max=8", url);
	cr_assert_eq(ipcx_dial(surl, 0, &small), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_max_msg(small), 8);
	cr_assert_eq(ipcx_send(l, "0123456789", 10, 1000), 10);
	cr_assert_eq(ipcx_send(l, "fits", 4, 1000), 4);
	char buf[4];
	cr_expect_eq(ipcx_recv(small, buf, sizeof(buf), T_GUARD_MS), -EMSGSIZE);
	cr_expect(strstr(ipcx_errdetail(), "skipped"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_recv(small, buf, 2, T_GUARD_MS), -EMSGSIZE, "fits max, not the buffer");
	cr_expect(t_chan_readable(small, 0), "the record still waits");
	cr_expect_eq(ipcx_recv(small, buf, 4, T_GUARD_MS), 4);
	cr_expect_eq(memcmp(buf, "fits", 4), 0);
	cr_expect(!t_chan_readable(small, 0));
	ipcx_close(small);
	ipcx_close(l);
}

static char lock_path[512]; /* set before the fork: a child has its own t_path() */

static int hold_lock(void *arg)
{
	struct t_sync *s = arg;
	int fd = open(lock_path, O_RDWR);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fd < 0 || fcntl(fd, F_OFD_SETLKW, &fl) < 0)
		return 1;
	t_post(s);
	pause();
	return 0;
}

Test(file, timeouts)
{
	ipcx_chan *l;
	struct t_sync s;
	t_sync_init(&s);
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	char buf[8];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 0), -EAGAIN);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), 30), -ETIMEDOUT);
	snprintf(lock_path, sizeof(lock_path), "%s", t_path("log"));
	pid_t p = t_spawn(hold_lock, &s);
	cr_assert(t_wait_post(&s, T_GUARD_MS));
	cr_expect_eq(ipcx_send(l, "x", 1, 0), -EAGAIN, "the writers' lock is taken");
	cr_expect_eq(ipcx_send(l, "x", 1, 30), -ETIMEDOUT);
	kill(p, SIGKILL);
	t_join(p, T_GUARD_MS);
	cr_expect_eq(ipcx_send(l, "x", 1, 1000), 1, "released by the holder's death");
	ipcx_close(l);
	t_sync_close(&s);
}

static int nobody_dial(void *arg)
{
	(void)arg;
	ipcx_chan *d;
	int r = ipcx_dial(url, 0, &d);
	if (r < 0)
		return r == -EACCES ? 10 : 11;
	char buf[32];
	r = ipcx_send(d, "from nobody", 11, 1000) == 11 &&
	    ipcx_recv(d, buf, sizeof(buf), 1000) == 4;
	ipcx_close(d);
	return r ? 0 : 12;
}

Test(file, permissions_and_symlinks)
{
	ipcx_chan *l, *c = NULL;
	t_tmpdir_open_to_all();
	cr_assert_eq(ipcx_listen(file_url("private", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_expect_eq(t_run_as_nobody(nobody_dial, NULL), 10, "0600 refuses nobody");
	ipcx_close(l);
	cr_assert_eq(ipcx_listen(file_url("open", "mode=0666"), 0, &l), 0, "%s",
		     ipcx_errdetail());
	struct stat st;
	cr_assert_eq(stat(t_path("open"), &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0666, "the mode as given, whatever the umask");
	cr_assert_eq(ipcx_send(l, "root", 4, 1000), 4);
	cr_expect_eq(t_run_as_nobody(nobody_dial, NULL), 0, "mode=0666 lets it in");
	t_expect_recv(l, "from nobody");
	ipcx_close(l);
	/* Another user's file at the path is not taken over (tests/test_trust.c). */
	cr_assert_eq(chown(t_path("open"), 65534, 65534), 0);
	cr_expect_eq(ipcx_listen(file_url("open", NULL), 0, &c), -EPERM);
	cr_assert_eq(symlink(t_path("open"), t_path("link")), 0);
	cr_expect_eq(ipcx_listen(file_url("link", NULL), 0, &c), -EEXIST);
	cr_expect_eq(ipcx_dial(file_url("link", NULL), 0, &c), -ELOOP);
	cr_expect_null(c);
}

Test(file, listening_again_reopens_our_own_file)
{
	ipcx_chan *l, *d, *again;
	cr_assert_eq(ipcx_listen(file_url("log", NULL), 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	cr_assert_eq(ipcx_send(d, "kept", 4, 1000), 4);
	ipcx_close(d);
	ipcx_close(l);
	cr_assert_eq(ipcx_listen(url, 0, &again), 0, "the next run: %s", ipcx_errdetail());
	t_expect_recv(again, "kept");
	ipcx_close(again);
}

Test(file, files_that_are_not_ours)
{
	ipcx_chan *c = NULL;
	int fd = open(t_path("foreign"), O_CREAT | O_WRONLY, 0600);
	cr_assert_eq(write(fd, "just some text file\n", 20), 20);
	close(fd);
	cr_expect_eq(ipcx_dial(file_url("foreign", NULL), 0, &c), -EBADMSG);
	cr_expect(strstr(ipcx_errdetail(), "not an ipcx record file"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_listen(url, 0, &c), -EEXIST, "never appends to a foreign file");
	struct stat st;
	cr_assert_eq(stat(t_path("foreign"), &st), 0);
	cr_expect_eq(st.st_size, 20, "untouched");
	cr_expect_eq(ipcx_dial(file_url("missing", NULL), 0, &c), -ENOENT);
	cr_assert_eq(mkfifo(t_path("fifo"), 0600), 0);
	cr_expect_eq(ipcx_dial(file_url("fifo", NULL), 0, &c), -EINVAL, "not a regular file");
	cr_expect_eq(ipcx_listen("file:relative", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_listen(file_url("x", "from=middle"), 0, &c), -EINVAL);
	cr_expect_eq(ipcx_listen(file_url("x", "max=999999999999"), 0, &c), -EINVAL);
	cr_expect_null(c);
	/* An empty file (created by someone else) becomes a record file. */
	fd = open(t_path("empty"), O_CREAT | O_WRONLY, 0600);
	close(fd);
	ipcx_chan *a, *b;
	cr_assert_eq(ipcx_dial(file_url("empty", NULL), 0, &a), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &b), 0);
	cr_assert_eq(ipcx_send(a, "first", 5, 1000), 5);
	t_expect_recv(b, "first");
	ipcx_close(a);
	ipcx_close(b);
}
