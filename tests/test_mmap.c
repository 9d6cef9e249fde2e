/*
 * The mmap: persistent log: messages outlive the processes, a writer killed
 * mid-record never leaves a torn record to be read, a record damaged on
 * disk cuts the log there, the log is bounded, and files are created safely.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/ring.h"
#include "tsupport.h"

static char url[512];

static const char *log_url(const char *leaf, const char *opts)
{
	snprintf(url, sizeof(url), "mmap:%s%s%s", t_path(leaf), opts ? "?" : "", opts ? opts : "");
	return url;
}

static int writer3(void *arg)
{
	ipcx_chan *c;
	if (ipcx_dial(arg, 0, &c) < 0)
		return 1;
	const char *m[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++)
		if (ipcx_send(c, m[i], 1, 0) != 1)
			return 2;
	return ipcx_close(c) == 0 ? 0 : 3;
}

static int reader3(void *arg)
{
	ipcx_chan *c;
	if (ipcx_listen(arg, 0, &c) < 0)
		return 1;
	const char *m[] = { "a", "b", "c" };
	char buf[8];
	for (int i = 0; i < 3; i++)
		if (ipcx_recv(c, buf, sizeof(buf), 0) != 1 || buf[0] != m[i][0])
			return 2;
	if (ipcx_recv(c, buf, sizeof(buf), 0) != -EAGAIN)
		return 3; /* a log never says EPIPE, and it is empty now */
	return ipcx_close(c) == 0 ? 0 : 4;
}

Test(mmap, survives_the_processes)
{
	const char *u = log_url("log", NULL);
	/* The writer runs, and exits, with nobody receiving. */
	cr_assert_eq(t_join(t_spawn(writer3, (void *)u), T_GUARD_MS), 0);
	struct stat st;
	cr_assert_eq(stat(t_path("log"), &st), 0, "the log outlives its writer");
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(t_join(t_spawn(reader3, (void *)u), T_GUARD_MS), 0);
	cr_expect_eq(t_join(t_spawn(reader3, (void *)u), T_GUARD_MS), 2, "taken once only");
}

Test(mmap, refuses_symlinks_and_strangers)
{
	cr_assert_eq(symlink("/tmp/elsewhere", t_path("link")), 0);
	ipcx_chan *c;
	cr_expect_eq(ipcx_dial(log_url("link", NULL), 0, &c), -ELOOP);
	int fd = open(t_path("junk"), O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "this is not a log at all", 24), 24);
	close(fd);
	cr_expect_eq(ipcx_dial(log_url("junk", NULL), 0, &c), -EBADMSG);
	cr_expect_eq(ipcx_dial("mmap:relative/path", 0, &c), -EINVAL);
	cr_expect_eq(ipcx_dial(log_url("x", "durability=sometimes"), 0, &c), -EINVAL);
}

Test(mmap, bounded_overwrites_the_oldest)
{
	const char *u = log_url("small", "capacity=2048&max=64");
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(u, 0, &c), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(ipcx_send(c, &i, sizeof(i), 0), sizeof(i));
	int v, want = 100 - 32;
	while (ipcx_recv(c, &v, sizeof(v), 0) == sizeof(v))
		cr_expect_eq(v, want++);
	cr_expect_eq(want, 100);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(c, &st), 0);
	cr_expect_eq(st.dropped, 68);
	ipcx_close(c);
}

Test(mmap, durability_and_readiness)
{
	const char *u = log_url("dur", "durability=always");
	ipcx_chan *a, *b;
	cr_assert_eq(ipcx_listen(u, 0, &a), 0);
	cr_assert_eq(ipcx_dial(u, 0, &b), 0);
	int fd = ipcx_fileno(a);
	cr_assert_geq(fd, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	cr_expect_eq(poll(&p, 1, 0), 0);
	cr_assert_eq(ipcx_send(b, "synced", 6, 0), 6);
	cr_expect_eq(poll(&p, 1, T_GUARD_MS), 1);
	char buf[16];
	cr_expect_eq(ipcx_recv(a, buf, sizeof(buf), T_GUARD_MS), 6);
	cr_expect_eq(poll(&p, 1, 0), 0);
	ipcx_close(b);
	ipcx_close(a);
}

struct msg {
	uint32_t seq, len, sum;
	uint8_t fill[300];
};

static uint32_t sum(const struct msg *m)
{
	uint32_t s = m->seq;
	for (uint32_t i = 0; i < m->len; i++)
		s = s * 33u + m->fill[i];
	return s;
}

struct wargs {
	const char *url;
	struct t_sync *sync;
	volatile uint32_t *confirmed; /* shared page */
};

static int endless_writer(void *arg)
{
	struct wargs *a = arg;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 1;
	struct msg m;
	for (uint32_t i = 0;; i++) {
		m.seq = i;
		m.len = (i * 61u) % sizeof(m.fill);
		memset(m.fill, (int)i, m.len);
		m.sum = sum(&m);
		size_t len = offsetof(struct msg, fill) + m.len;
		if (ipcx_send(c, &m, len, T_GUARD_MS) != (ssize_t)len)
			return 2;
		*a->confirmed = i + 1;
		if (i == 5000)
			t_post(a->sync);
	}
}

/* kill -9 in the middle of writing, then reopen: whole records only, in order. */
Test(mmap, kill9_mid_write)
{
	for (int round = 0; round < 3; round++) {
		char leaf[32];
		snprintf(leaf, sizeof(leaf), "k9-%d", round);
		const char *u = log_url(leaf, "capacity=1048576&max=512");
		struct t_sync sync;
		t_sync_init(&sync);
		uint32_t *confirmed = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		struct wargs a = { u, &sync, confirmed };
		pid_t pid = t_spawn(endless_writer, &a);
		cr_assert(t_wait_post(&sync, T_GUARD_MS));
		kill(pid, SIGKILL);
		cr_assert_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL);
		uint32_t conf = *confirmed;
		ipcx_chan *c;
		cr_assert_eq(ipcx_dial(u, 0, &c), 0, "%s", ipcx_errdetail());
		struct msg m;
		ssize_t n;
		int64_t last = -1;
		while ((n = ipcx_recv(c, &m, sizeof(m), 0)) >= 0) {
			cr_assert(n == (ssize_t)(offsetof(struct msg, fill) + m.len) && m.sum == sum(&m),
				  "a torn record was returned");
			if (last >= 0)
				cr_assert_eq(m.seq, (uint32_t)last + 1, "in order, no gap");
			last = m.seq;
		}
		cr_expect_eq(n, -EAGAIN);
		cr_expect(last + 1 == (int64_t)conf || last == (int64_t)conf,
			  "last %lld, confirmed %u", (long long)last, conf);
		ipcx_close(c);
		munmap(confirmed, 4096);
		t_sync_close(&sync);
	}
}

/* Damage record 2 of the log at leaf (one-cell records: it starts at cell 2). */
static void damage_record2(const char *leaf)
{
	int fd = open(t_path(leaf), O_RDWR);
	cr_assert_geq(fd, 0);
	struct ring_hdr h;
	cr_assert_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	cr_assert_eq(pwrite(fd, "X", 1, (off_t)(h.data_off + 2 * 64 + 3)), 1);
	close(fd);
}

/* A record damaged on disk (a crash lost its page): the log ends before it. */
Test(mmap, damaged_record_cuts_the_log)
{
	const char *u = log_url("torn", NULL);
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(u, 0, &c), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ipcx_send(c, "0123456789", 10, 0), 10);
	ipcx_close(c);
	damage_record2("torn");
	cr_assert_eq(ipcx_dial(u, 0, &c), 0);
	char buf[16];
	cr_expect_eq(ipcx_recv(c, buf, sizeof(buf), 0), 10);
	cr_expect_eq(ipcx_recv(c, buf, sizeof(buf), 0), 10);
	ssize_t third = ipcx_recv(c, buf, sizeof(buf), 0);
	cr_expect_eq(third, -EAGAIN, "cut before the damage: %zd", third);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(c, &st), 0);
	cr_expect_eq(st.sent, st.received + st.dropped);
	/* The log goes on after the cut. */
	cr_assert_eq(ipcx_send(c, "after", 5, 0), 5);
	cr_expect_eq(ipcx_recv(c, buf, sizeof(buf), 0), 5);
	ipcx_close(c);
}

/* ---- an opener that never lets go of the exclusive lock ---------------------------- */

struct holder {
	const char *path;
	struct t_sync *locked;
};

/* Any process that can open the log can take its exclusive lock and keep it. */
static int hold_exclusive(void *arg)
{
	struct holder *a = arg;
	int fd = open(a->path, O_RDWR | O_CLOEXEC);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return 1;
	t_post(a->locked);
	pause(); /* killed by the test */
	return 0;
}

static int dial_expect_timeout(void *arg)
{
	ipcx_chan *c = NULL;
	int r = ipcx_dial(arg, 0, &c);
	if (r == 0)
		ipcx_close(c);
	if (r != -ETIMEDOUT)
		return 1;
	return strstr(ipcx_errdetail(), "holds the log exclusively") ? 0 : 2;
}

/*
 * The open waits for the exclusive holder only up to timeout= (default
 * 10 s, which this test waits once).  On main it waited in F_OFD_SETLKW for
 * ever: the child was killed by the guard.
 */
Test(mmap, open_waits_for_an_exclusive_holder_no_longer_than_timeout)
{
	const char *path = t_path("held.log");
	char u[600];
	snprintf(u, sizeof(u), "mmap:%s?capacity=4096&max=64", path);
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(u, 0, &c), 0, "%s", ipcx_errdetail());
	ipcx_close(c);
	struct t_sync locked;
	t_sync_init(&locked);
	struct holder h = { path, &locked };
	pid_t hold = t_spawn(hold_exclusive, &h);
	cr_assert(t_wait_post(&locked, T_GUARD_MS), "the holder took the lock");
	const char *waits[] = { "", "&timeout=200", "&timeout=0" };
	for (int i = 0; i < 3; i++) {
		char tu[700];
		snprintf(tu, sizeof(tu), "%s%s", u, waits[i]);
		int st = t_join(t_spawn(dial_expect_timeout, tu), 30000);
		cr_expect_eq(st, 0, "%s: exit status %d (137: it waited past the guard)", tu, st);
	}
	kill(hold, SIGKILL);
	t_join(hold, T_GUARD_MS);
	t_sync_close(&locked);
	/* Once the holder is gone, the log opens again. */
	cr_assert_eq(ipcx_dial(u, 0, &c), 0, "%s", ipcx_errdetail());
	ipcx_close(c);
	unlink(path);
}

/*
 * Reading ahead checks each record's checksum on its copy: a damaged one
 * is stepped over (and dropped, counted, when it is taken); the others are
 * read ahead and then received, in order.
 */
Test(mmap, read_ahead_steps_over_damage)
{
	const char *u = log_url("ahead", NULL);
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(u, 0, &c), 0);
	for (char i = 0; i < 5; i++) {
		char m[10] = "012345678";
		m[0] = (char)('a' + i);
		cr_assert_eq(ipcx_send(c, m, 10, 0), 10);
	}
	damage_record2("ahead"); /* in the page cache, while the log is open */
	char buf[16], seen[8] = { 0 };
	uint64_t cur = 0;
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ipcx_read_ahead(c, &cur, buf, sizeof(buf), 0), 10);
		seen[i] = buf[0];
	}
	cr_expect_str_eq(seen, "abde");
	cr_expect_eq(ipcx_read_ahead(c, &cur, buf, sizeof(buf), 0), -EAGAIN);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ipcx_recv(c, buf, sizeof(buf), 0), 10);
		cr_expect_eq(buf[0], seen[i]);
	}
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(c, &st), 0);
	cr_expect_eq(st.dropped, 1, "the damaged record, when it was taken");
	ipcx_close(c);
}
