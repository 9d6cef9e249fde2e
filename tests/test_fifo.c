/*
 * fifo: beyond the conformance suite: two listeners racing for one name.
 * Synchronisation is by handshakes only.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsupport.h"

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
