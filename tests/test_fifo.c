/*
 * fifo: beyond the conformance suite: messages larger than PIPE_BUF from
 * writers that are killed mid-message or that write at the same time, a
 * message that fills the pipe, and two listeners racing for one name.
 * Hostile and dying peers are separate processes; synchronisation is by
 * handshakes only.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsupport.h"

/* ---- messages that say who sent them and can be checked whole ------------------ */

struct mhdr {
	uint32_t writer, seq, len;
};

/* A size in [sizeof(struct mhdr), max], mostly large, the same for (w, seq). */
static size_t msg_size(uint32_t w, uint32_t seq, size_t max)
{
	uint32_t x = w * 2654435761u ^ seq * 40503u ^ 0x9e3779b9u;
	x ^= x >> 15;
	x *= 2246822519u;
	x ^= x >> 13;
	size_t lo = sizeof(struct mhdr);
	return lo + x % (max - lo + 1);
}

static void msg_fill(char *m, uint32_t w, uint32_t seq, size_t len)
{
	struct mhdr h = { w, seq, (uint32_t)len };
	memcpy(m, &h, sizeof(h));
	for (size_t k = sizeof(h); k < len; k++)
		m[k] = (char)(w * 131 + seq * 31 + k * 7 + (k >> 8));
}

/* True when m[0..n) is exactly message (writer, seq) as msg_fill made it. */
static bool msg_whole(const char *m, size_t n, struct mhdr *h, char *scratch)
{
	if (n < sizeof(*h))
		return false;
	memcpy(h, m, sizeof(*h));
	if (h->len != n)
		return false;
	msg_fill(scratch, h->writer, h->seq, n);
	return memcmp(m, scratch, n) == 0;
}

struct writer {
	const char *url;
	uint32_t id;
	uint32_t count; /* 0: until killed */
	size_t max;
	struct t_sync *started;
};

/* Sends messages (id, 0), (id, 1) ... of msg_size() bytes. */
static int writer_main(void *arg)
{
	struct writer *w = arg;
	ipcx_chan *c;
	if (ipcx_dial(w->url, 0, &c) < 0)
		return 90;
	char *m = malloc(w->max);
	if (w->started)
		t_post(w->started);
	for (uint32_t seq = 0; w->count == 0 || seq < w->count; seq++) {
		size_t n = msg_size(w->id, seq, w->max);
		msg_fill(m, w->id, seq, n);
		ssize_t r = ipcx_send(c, m, n, T_GUARD_MS);
		if (r != (ssize_t)n) {
			fprintf(stderr, "writer %u: send %u: %s\n", w->id, seq, ipcx_strerror((int)r));
			return 91;
		}
	}
	free(m);
	return ipcx_close(c) == 0 ? 0 : 92;
}

/*
 * Receive one message and check that it is one that was sent, whole, and
 * the next of its writer (or a later one: a message cut off by its writer's
 * death is dropped).  Returns its writer.
 */
static uint32_t recv_checked(ipcx_chan *l, char *buf, char *scratch, size_t max,
			     uint32_t *next, uint32_t nwriters)
{
	ssize_t n = ipcx_recv(l, buf, max, T_GUARD_MS);
	cr_assert_geq(n, 0, "recv: %s (%s)", ipcx_strerror((int)n), ipcx_errdetail());
	struct mhdr h;
	cr_assert(msg_whole(buf, (size_t)n, &h, scratch),
		  "a %zd-byte message that no writer sent (claims writer %u seq %u len %u)", n,
		  h.writer, h.seq, h.len);
	cr_assert_lt(h.writer, nwriters, "writer %u", h.writer);
	cr_assert_geq(h.seq, next[h.writer], "writer %u: seq %u again or out of order", h.writer,
		      h.seq);
	next[h.writer] = h.seq + 1;
	return h.writer;
}

static const char *fifo_url(size_t max)
{
	static char url[400];
	snprintf(url, sizeof(url), "fifo:%s?max=%zu", t_path(t_name()), max);
	return url;
}

/*
 * Writers killed with SIGKILL at whatever point of a large message they have
 * reached, one after another: nothing torn is ever returned, the next writer
 * gets through, and the torn messages are counted.
 */
Test(fifo, torn_by_sigkill_never_returned, .timeout = 600)
{
	enum { ROUNDS = 60, FINAL = 20 };
	const size_t max = 200000;
	const char *url = fifo_url(max);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	char *buf = malloc(max), *scratch = malloc(max);
	uint32_t next[ROUNDS + 1] = { 0 };
	srand((unsigned)getpid());
	for (uint32_t r = 0; r < ROUNDS; r++) {
		struct writer w = { url, r, 0, max, NULL };
		pid_t pid = t_spawn(writer_main, &w);
		/* Take 1 to 3 of its messages (and whatever whole ones the last
		 * writer left), then kill it wherever it is. */
		uint32_t want = 1 + (uint32_t)rand() % 3;
		while (next[r] < want)
			recv_checked(l, buf, scratch, max, next, ROUNDS + 1);
		kill(pid, SIGKILL);
		cr_assert_eq(t_join(pid, T_GUARD_MS), 128 + SIGKILL, "writer %u exited early", r);
	}
	struct writer last = { url, ROUNDS, FINAL, max, NULL };
	pid_t pid = t_spawn(writer_main, &last);
	while (next[ROUNDS] < FINAL)
		recv_checked(l, buf, scratch, max, next, ROUNDS + 1);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0, "fifo: stats: %s", ipcx_strerror(-EOPNOTSUPP));
	/* Most kills land in the middle of a message (the writer waits for room
	 * in the pipe); each such message is dropped and counted, at most one a
	 * writer. */
	cr_log_info("fifo: %llu torn messages dropped in %d kills", (unsigned long long)st.dropped,
		    ROUNDS);
	cr_expect_gt(st.dropped, 0, "no torn message was counted in %d kills", ROUNDS);
	cr_expect_leq(st.dropped, ROUNDS, "dropped %llu", (unsigned long long)st.dropped);
	free(buf);
	free(scratch);
	cr_expect_eq(ipcx_close(l), 0);
}

/* Several writers of large messages at once: each message arrives whole. */
Test(fifo, large_messages_from_many_writers, .timeout = 600)
{
	enum { WRITERS = 4, COUNT = 40 };
	const size_t max = 300000;
	const char *url = fifo_url(max);
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	char *buf = malloc(max), *scratch = malloc(max);
	/* This process writes a large message first: the children it forks
	 * then inherit whatever it keeps about itself as a writer. */
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	msg_fill(buf, WRITERS, 0, max);
	cr_assert_eq(ipcx_send(d, buf, max, T_GUARD_MS), (ssize_t)max);
	struct writer w[WRITERS];
	pid_t pid[WRITERS];
	for (uint32_t i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ url, i, COUNT, max, NULL };
		pid[i] = t_spawn(writer_main, &w[i]);
	}
	uint32_t next[WRITERS + 1] = { 0 };
	for (int got = 0; got < WRITERS * COUNT + 1; got++)
		recv_checked(l, buf, scratch, max, next, WRITERS + 1);
	cr_expect_eq(next[WRITERS], 1);
	cr_expect_eq(ipcx_close(d), 0);
	for (int i = 0; i < WRITERS; i++) {
		cr_expect_eq(next[i], COUNT, "writer %d: %u of %d", i, next[i], COUNT);
		cr_expect_eq(t_join(pid[i], T_GUARD_MS), 0);
	}
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.dropped, 0);
	cr_expect_eq(st.received, (uint64_t)WRITERS * COUNT + 1);
	free(buf);
	free(scratch);
	cr_expect_eq(ipcx_close(l), 0);
}

/*
 * A message of up to max bytes, sent into an empty FIFO, is in the pipe
 * whole when ipcx_send returns: the listener, even in the same thread,
 * receives it at once (the pipe's capacity, 64 KiB, is raised to hold one).
 */
Test(fifo, whole_message_at_once)
{
	const size_t maxes[] = { 4092, 65536, 200000 };
	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		size_t max = maxes[i];
		const size_t sizes[] = { 1, 4064, 4065, 4092, 4096, 65532, 65536, max - 1, max };
		const char *url = fifo_url(max);
		ipcx_chan *l, *d;
		cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
		cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
		char *m = malloc(max), *buf = malloc(max + 1), *scratch = malloc(max);
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			size_t n = sizes[k];
			if (n > max)
				continue;
			memset(m, (int)(k + 1), n);
			ssize_t s = ipcx_send(d, m, n, 1000);
			cr_assert_eq(s, (ssize_t)n, "max=%zu: send %zu: %s", max, n,
				     ipcx_strerror((int)s));
			ssize_t r = ipcx_recv(l, buf, max + 1, 2000);
			cr_assert_eq(r, (ssize_t)n, "max=%zu: a %zu-byte message: recv gave %s", max, n,
				     r < 0 ? ipcx_strerror((int)r) : "another length");
			cr_expect(memcmp(buf, m, n) == 0, "max=%zu: %zu bytes differ", max, n);
		}
		free(m);
		free(buf);
		free(scratch);
		cr_expect_eq(ipcx_close(d), 0);
		cr_expect_eq(ipcx_close(l), 0);
	}
}

static size_t pipe_max_size(void)
{
	unsigned long v = 1u << 20;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 1u << 20;
		fclose(f);
	}
	return v;
}

/*
 * A send that runs out of time part-way is not a sent message: it fails, and
 * the listener drops (and counts) what it got of it and takes the next one.
 */
Test(fifo, timed_out_send_is_dropped_not_delivered)
{
	size_t big = 2 * pipe_max_size() + 1; /* more than the pipe can ever hold */
	if (big > (256u << 20))
		cr_skip_test("pipe-max-size is %zu: no message outgrows the pipe", big / 2);
	char url[400];
	snprintf(url, sizeof(url), "fifo:%s?max=%zu", t_path(t_name()), big);
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0, "%s", ipcx_errdetail());
	char *m = calloc(1, big), *buf = malloc(big);
	cr_expect_eq(ipcx_send(d, m, big, 100), -ETIMEDOUT, "nobody reads: the pipe fills");
	cr_expect_eq(ipcx_recv(l, buf, big, 0), -EAGAIN, "a part of a message is no message");
	cr_expect_eq(ipcx_send(d, "after", 5, T_GUARD_MS), 5);
	cr_expect_eq(ipcx_recv(l, buf, big, T_GUARD_MS), 5);
	cr_expect(memcmp(buf, "after", 5) == 0);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.dropped, 1, "the abandoned message: dropped %llu",
		     (unsigned long long)st.dropped);
	cr_expect_eq(st.received, 1);
	cr_assert_eq(ipcx_stats(d, &st), 0);
	cr_expect_eq(st.sent, 1, "sent %llu", (unsigned long long)st.sent);
	free(m);
	free(buf);
	cr_expect_eq(ipcx_close(d), 0);
	cr_expect_eq(ipcx_close(l), 0);
}

/* framing=len (a plain length, for other programs) is whole only up to PIPE_BUF. */
Test(fifo, framing_len_only_up_to_pipe_buf)
{
	char url[400];
	const char *p = t_path(t_name());
	ipcx_chan *l = NULL, *d;
	snprintf(url, sizeof(url), "fifo:%s?framing=len&max=4093", p);
	cr_expect_eq(ipcx_listen(url, 0, &l), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "framing=len"), "%s", ipcx_errdetail());
	cr_expect_null(l);
	snprintf(url, sizeof(url), "fifo:%s?framing=len", p);
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(url, 0, &d), 0);
	char m[4092] = "x", buf[4096];
	cr_expect_eq(ipcx_send(d, m, sizeof(m), T_GUARD_MS), (ssize_t)sizeof(m));
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), (ssize_t)sizeof(m));
	/* What a program that is not ipcx writes: a 4-byte length and the bytes. */
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_expect_eq(write(fd, "\3\0\0\0abc", 7), 7);
	close(fd);
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 3);
	cr_expect(memcmp(buf, "abc", 3) == 0);
	ipcx_close(d);
	cr_expect_eq(ipcx_close(l), 0);
}

/* ---- two listeners at once ----------------------------------------------------- */

struct racer {
	const char *url;
	struct t_sync *go;     /* both wait here, then listen at once */
	struct t_sync *result; /* each writes its listen result (an int) */
	struct t_sync *quit;   /* then waits here before closing */
};

/*
 * Listen and report.  When told to quit, a winner takes the message the
 * parent has sent by then (without waiting: it is in the pipe, or it went
 * to another listener) and exits 0 if it got it, 1 if not.
 */
static int racer_main(void *arg)
{
	struct racer *x = arg;
	if (!t_wait_post(x->go, T_GUARD_MS))
		return 80;
	ipcx_chan *l = NULL;
	int r = ipcx_listen(x->url, 0, &l);
	if (write(x->result->fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
		return 81;
	if (!t_wait_post(x->quit, T_GUARD_MS))
		return 83;
	int rc = 0;
	if (r == 0) {
		char buf[16];
		ssize_t n = ipcx_recv(l, buf, sizeof(buf), 0);
		rc = n == 5 && memcmp(buf, "hello", 5) == 0 ? 0 : 1;
	}
	ipcx_close(l);
	return rc;
}

static int read_result(struct t_sync *s)
{
	int r = 1;
	cr_assert_eq(read(s->fd[0], &r, sizeof(r)), (ssize_t)sizeof(r), "a racer died");
	return r;
}

/* ROUNDS of two processes listening on one FIFO path at the same moment. */
static void race(int rounds, bool stale)
{
	struct t_sync go, result, quit;
	t_sync_init(&go);
	t_sync_init(&result);
	t_sync_init(&quit);
	int both = 0, neither = 0, unreached = 0;
	for (int i = 0; i < rounds; i++) {
		const char *path = t_path(t_name());
		char url[300];
		snprintf(url, sizeof(url), "fifo:%s", path);
		if (stale) /* left by a listener that died: nobody reads it */
			cr_assert_eq(mkfifo(path, 0600), 0);
		struct racer x = { url, &go, &result, &quit };
		pid_t a = t_spawn(racer_main, &x), b = t_spawn(racer_main, &x);
		t_post(&go);
		t_post(&go);
		int ra = read_result(&result), rb = read_result(&result);
		int winners = (ra == 0) + (rb == 0);
		int loser = ra == 0 ? rb : ra;
		both += winners == 2;
		neither += winners == 0;
		if (winners == 1)
			cr_expect(loser == -EEXIST || loser == -EADDRINUSE, "round %d: the loser got %s",
				  i, ipcx_strerror(loser));
		if (winners >= 1) {
			/* Whoever won must be the one a dialer reaches. */
			ipcx_chan *d;
			int r = ipcx_dial(url, 0, &d);
			if (r == 0) {
				r = (int)ipcx_send(d, "hello", 5, T_GUARD_MS);
				ipcx_close(d);
			}
			unreached += r < 0;
		}
		t_post(&quit);
		t_post(&quit);
		int sa = t_join(a, T_GUARD_MS), sb = t_join(b, T_GUARD_MS);
		cr_expect(sa <= 1 && sb <= 1, "round %d: a racer failed (%d, %d)", i, sa, sb);
		if (winners == 1)
			cr_expect(sa == 0 && sb == 0, "round %d: the winner did not get the message", i);
		unlink(path); /* whatever a failed round left */
	}
	cr_expect_eq(both, 0, "both listeners won in %d of %d rounds", both, rounds);
	cr_expect_eq(neither, 0, "neither listener won in %d of %d rounds", neither, rounds);
	cr_expect_eq(unreached, 0, "a dialer reached no listener in %d rounds", unreached);
	t_sync_close(&go);
	t_sync_close(&result);
	t_sync_close(&quit);
}

Test(fifo, racing_listeners_one_winner, .timeout = 600)
{
	race(150, false);
}

Test(fifo, racing_listeners_on_a_stale_fifo_one_winner, .timeout = 600)
{
	race(250, true);
}
