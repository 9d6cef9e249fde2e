/*
 * The benchmark's measuring core: the histogram's percentiles, the result
 * line the peer programs print, and the harness running real cases (a raw
 * pipe, an ipcx shared-memory ring when built), failing ones, hanging ones
 * and interrupted ones.  Nothing here looks at how fast anything was.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "tnats.h"
#include "tsupport.h"

/* ---- histogram ------------------------------------------------------------- */

static struct bh_hist *hist(void)
{
	struct bh_hist *h = malloc(sizeof(*h));
	cr_assert(h);
	bh_hist_init(h);
	return h;
}

/* Within the histogram's promised precision: one part in 64. */
static void near(uint64_t got, uint64_t want)
{
	uint64_t tol = want / 64 + 1;
	cr_expect(got + tol >= want && got <= want + tol, "got %llu, want %llu +- %llu",
		  (unsigned long long)got, (unsigned long long)want, (unsigned long long)tol);
}

Test(bench, hist_uniform)
{
	struct bh_hist *h = hist();
	for (uint64_t v = 1; v <= 100000; v++)
		bh_hist_add(h, v);
	struct bh_result r;
	memset(&r, 0, sizeof(r));
	bh_hist_result(h, &r);
	cr_expect_eq(r.samples, 100000);
	cr_expect_eq(r.min, 1);
	cr_expect_eq(r.max, 100000, "max is exact");
	near(r.p50, 50000);
	near(r.p99, 99000);
	near(r.p999, 99900);
	cr_expect_eq(r.mean, 50000);
	free(h);
}

Test(bench, hist_every_magnitude)
{
	/* One value at a time, from 0 to 2^62: the median is that value, to 1/64. */
	for (int shift = 0; shift < 63; shift++) {
		for (uint64_t k = 1; k < 4; k++) {
			uint64_t v = (k << shift) + (uint64_t)shift;
			struct bh_hist *h = hist();
			bh_hist_add(h, v);
			near(bh_hist_quantile(h, 0.5), v);
			cr_expect_eq(bh_hist_quantile(h, 1.0), v);
			free(h);
		}
	}
}

Test(bench, hist_tail)
{
	/* 999 fast values and one slow: p99 is fast, p99.9 and max the slow one. */
	struct bh_hist *h = hist();
	for (int i = 0; i < 999; i++)
		bh_hist_add(h, 1000);
	bh_hist_add(h, 5000000);
	near(bh_hist_quantile(h, 0.99), 1000);
	near(bh_hist_quantile(h, 0.999), 1000);
	near(bh_hist_quantile(h, 0.9999), 5000000);
	cr_expect_eq(h->max, 5000000);
	free(h);
}

Test(bench, hist_empty)
{
	struct bh_hist *h = hist();
	cr_expect_eq(bh_hist_quantile(h, 0.5), 0);
	free(h);
}

/* ---- result lines ------------------------------------------------------------ */

Test(bench, result_line_round_trip)
{
	struct bh_result a, b;
	memset(&a, 0, sizeof(a));
	a.status = BH_SKIP;
	a.samples = 12345;
	a.p50 = 1, a.p99 = 22, a.p999 = 333, a.max = 4444, a.min = 0, a.mean = 7;
	a.msgs_per_s = 1.5e6;
	a.bytes_per_s = 9.75e8;
	a.lost = 3;
	snprintf(a.note, sizeof(a.note), "largest message is 8192 bytes");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bh_result_print(&a, f);
	fclose(f);
	cr_assert_eq(bh_result_parse(buf, &b), 0, "%s", buf);
	cr_expect_eq(b.status, a.status);
	cr_expect_eq(b.samples, a.samples);
	cr_expect_eq(b.p999, a.p999);
	cr_expect_eq(b.max, a.max);
	cr_expect_eq(b.lost, a.lost);
	cr_expect(b.msgs_per_s > 1.49e6 && b.msgs_per_s < 1.51e6);
	cr_expect_str_eq(b.note, a.note);
	free(buf);
	cr_expect_eq(bh_result_parse("garbage", &b), -EINVAL);
	cr_expect_eq(bh_result_parse("result 7 1 2 3 4 5 6 7 1 1 0 x", &b), -EINVAL,
		     "an unknown status is refused");
}

/* ---- the harness ------------------------------------------------------------- */

static struct bh_params params(enum bh_kind kind, size_t size, uint64_t count)
{
	struct bh_params p;
	memset(&p, 0, sizeof(p));
	p.kind = kind;
	p.size = size;
	p.count = count;
	p.warmup = 10;
	bh_pick_cpus(p.cpu);
	snprintf(p.dir, sizeof(p.dir), "%s", t_tmpdir());
	snprintf(p.prefix, sizeof(p.prefix), "%s", t_name());
	p.key = t_sysv_key();
	p.timeout_ms = T_GUARD_MS;
	return p;
}

static const struct bh_ops *raw(const char *transport, const char *mode)
{
	for (const struct bh_ops *const *o = bh_raw_ops; *o; o++)
		if (!strcmp((*o)->transport, transport) && !strcmp((*o)->mode, mode))
			return *o;
	cr_assert_fail("no raw %s %s", transport, mode);
	return NULL;
}

/* No child of this process may be left after a case. */
static void no_children(void)
{
	cr_expect_eq(waitpid(-1, NULL, WNOHANG), -1, "a side of the case is still around");
	cr_expect_eq(errno, ECHILD);
}

Test(bench, pipe_latency_and_stream)
{
	struct bh_params p = params(BH_LAT, 256, 200);
	struct bh_result r;
	cr_assert_eq(bh_run(raw("pipe", "blocking"), &p, NULL, &r), 0);
	cr_assert_eq(r.status, BH_OK, "%s", r.note);
	cr_expect_eq(r.samples, 200, "the warm-up is not counted");
	cr_expect(r.min > 0 && r.min <= r.p50 && r.p50 <= r.p99 && r.p99 <= r.p999 &&
		  r.p999 <= r.max);
	p = params(BH_THR, 4096, 500);
	cr_assert_eq(bh_run(raw("pipe", "blocking"), &p, NULL, &r), 0);
	cr_assert_eq(r.status, BH_OK, "%s", r.note);
	cr_expect_eq(r.samples, 500);
	cr_expect_eq(r.lost, 0);
	cr_expect(r.msgs_per_s > 0);
	cr_expect(r.bytes_per_s > r.msgs_per_s * 4095 && r.bytes_per_s < r.msgs_per_s * 4097);
	no_children();
}

Test(bench, every_raw_baseline_runs)
{
	/* Small counts: this checks that each baseline works and cleans up. */
	for (const struct bh_ops *const *o = bh_raw_ops; *o; o++) {
		for (int k = 0; k < 2; k++) {
			struct bh_params p = params(k ? BH_THR : BH_LAT, 1000, 100);
			struct bh_result r;
			cr_assert_eq(bh_run(*o, &p, NULL, &r), 0);
			cr_expect_eq(r.status, BH_OK, "%s %s: %s", (*o)->transport, (*o)->mode, r.note);
		}
	}
	no_children();
}

Test(bench, every_primitive_runs)
{
	const struct bh_ops *const *sets[] = { bh_prim_ops, bh_ipcx_prim_ops };
	for (int s = 0; s < 2; s++)
		for (const struct bh_ops *const *o = sets[s]; *o; o++) {
			struct bh_params p = params((*o)->op ? BH_OPS : BH_LAT, 0, 200);
			struct bh_result r;
			cr_assert_eq(bh_run(*o, &p, NULL, &r), 0);
			cr_expect_eq(r.status, BH_OK, "%s %s %s: %s", (*o)->impl, (*o)->transport,
				     (*o)->mode, r.note);
			cr_expect(r.samples > 0);
		}
	no_children();
}

Test(bench, every_ipcx_transport_runs)
{
	/* Every transport in this build, through the bench's own URL rows.  The
	 * nats:// row gets a server of its own, as the driver gives it one
	 * (stopped before no_children() looks). */
	int ran = 0;
	for (const struct bh_ops *const *o = bh_ipcx_ops; *o; o++) {
		struct bh_params probe = params(BH_LAT, 1000, 100);
		if (!bh_ipcx_available(*o, &probe))
			continue;
		struct t_nats srv = { 0 };
		bool nats = !strcmp((*o)->transport, "nats");
		if (nats)
			cr_assert(t_nats_start(&srv, false, NULL, NULL, 0), "no nats-server");
		for (int k = 0; k < 2; k++) {
			struct bh_params p = params(k ? BH_THR : BH_LAT, 1000, 100);
			p.seq = (unsigned)(ran * 2 + k);
			if (nats)
				snprintf(p.nats, sizeof(p.nats), "%s", srv.addr);
			struct bh_result r;
			cr_assert_eq(bh_run(*o, &p, NULL, &r), 0);
			cr_expect_eq(r.status, BH_OK, "ipcx %s %s: %s", (*o)->transport,
				     k ? "stream" : "ping-pong", r.note);
		}
		if (nats)
			t_nats_stop(&srv);
		ran++;
	}
	cr_expect(ran >= 2, "only %d ipcx transports ran", ran);
	no_children();
}

/* A backend that fails to open on the server side. */
static int fail_open(struct bh_ctx *c)
{
	if (!c->side)
		return bh_ctl_sync(c); /* waits for a server that never answers */
	bh_note(c->res, BH_ERROR, "deliberately broken");
	return -EIO;
}

static int never_send(struct bh_ctx *c, const void *buf, size_t len)
{
	return 0;
}

/* Waits for a message that never comes. */
static int hang_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	pause();
	return -EINTR;
}

/* A case whose sides never finish: only the timeout or a stop request ends it. */
static const struct bh_ops stuck = { "stuck", "raw", "blocking", .send = never_send,
				     .recv = hang_recv };

/* Run a case that must end in an error whose note says why, leaving no side behind. */
static void expect_error(const struct bh_ops *o, const struct bh_params *p,
			 volatile sig_atomic_t *stop, const char *why)
{
	struct bh_result r;
	cr_assert_eq(bh_run(o, p, stop, &r), 0);
	cr_expect_eq(r.status, BH_ERROR);
	cr_expect(strstr(r.note, why), "%s", r.note);
	no_children();
}

Test(bench, a_failing_side_is_reported)
{
	struct bh_ops broken = { "broken", "raw", "blocking", .open = fail_open,
				 .send = never_send, .recv = hang_recv };
	struct bh_params p = params(BH_LAT, 64, 10);
	expect_error(&broken, &p, NULL, "deliberately broken");
}

Test(bench, a_hanging_case_is_killed)
{
	struct bh_params p = params(BH_LAT, 64, 10);
	p.timeout_ms = 300;
	expect_error(&stuck, &p, NULL, "timed out");
}

Test(bench, a_stop_request_ends_the_case)
{
	struct bh_params p = params(BH_LAT, 64, 10);
	volatile sig_atomic_t stop = 1;
	expect_error(&stuck, &p, &stop, "interrupted");
}
