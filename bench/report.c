/*
 * Showing the results: the terminal table (one line per mechanism and
 * implementation, in the spirit of the seeds' comparison tables), the JSON
 * file, and a self-contained HTML page whose plots are SVG drawn here.
 */
#include "driver.h"

#include <ipcx.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the mechanism is, beside what was measured. */
struct facts {
	const char *transport, *scope, *persistence;
};
static const struct facts facts[] = {
	{ "pipe", "related", "process" },
	{ "socketpair", "related", "process" },
	{ "fifo", "host", "name in fs" },
	{ "unix", "host", "process" },
	{ "unixpacket", "host", "process" },
	{ "unixgram", "host", "process" },
	{ "tcp", "network", "process" },
	{ "udp", "network", "process" },
	{ "nats", "network", "server" },
	{ "mq", "host", "kernel" },
	{ "sysvmq", "host", "kernel" },
	{ "shm", "host", "kernel" },
	{ "sysvshm", "host", "kernel" },
	{ "mmap", "host", "file" },
	{ "file", "host", "file" },
	{ "sem", "host", "kernel" },
	{ "sysvsem", "host", "kernel" },
	{ "mutex", "host", "memory" },
	{ "flock", "host", "file" },
	{ "eventfd", "related", "process" },
	{ "signal", "host", "process" },
	{ "rpc-shm", "host", "kernel" },
	{ "rpc-sysvshm", "host", "kernel" },
	{ "rpc-unix", "host", "process" },
	{ "rpc-unixpacket", "host", "process" },
	{ "rpc-tcp", "network", "process" },
	{ "log", "host", "file" },
	{ "pool", "related", "process" },
	{ "slot", "host", "kernel" },
	{ "pubsub-shm", "host", "kernel" },
	{ "pubsub-shm-drop", "host", "kernel" },
	{ "pubsub-unix", "host", "process" },
};

static const struct facts *facts_of(const char *t)
{
	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
		if (!strcmp(facts[i].transport, t))
			return &facts[i];
	return NULL;
}

const char *fmt_size(size_t n, char *buf, size_t cap)
{
	if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(buf, cap, "%zu MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, cap, "%zu KiB", n >> 10);
	else
		snprintf(buf, cap, "%zu B", n);
	return buf;
}

static const char *fmt_ns(uint64_t ns, char *buf, size_t cap)
{
	if (ns < 1000)
		snprintf(buf, cap, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, cap, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
	return buf;
}

static const char *fmt_rate(double v, char *buf, size_t cap)
{
	if (v >= 1e9)
		snprintf(buf, cap, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, cap, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, cap, "%.1fk", v / 1e3);
	else
		snprintf(buf, cap, "%.0f", v);
	return buf;
}

static const struct outcome *find(const struct run *run, const struct mech *m, int kind,
				  size_t size)
{
	for (size_t i = 0; i < run->nout; i++) {
		const struct outcome *o = &run->out[i];
		if (o->m == m && (kind < 0 || (int)o->kind == kind) && o->size == size)
			return o;
	}
	return NULL;
}

/* The mechanisms in the order they ran, each once. */
static size_t mechs_of(const struct run *run, const struct mech **ret, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < run->nout && n < cap; i++) {
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = ret[j] == run->out[i].m;
		if (!seen)
			ret[n++] = run->out[i].m;
	}
	return n;
}

/* The first reason a case of m did not run, or NULL. */
static const char *why_not(const struct run *run, const struct mech *m)
{
	for (size_t i = 0; i < run->nout; i++)
		if (run->out[i].m == m && run->out[i].r.status != BH_OK)
			return run->out[i].r.note;
	return NULL;
}

/* Largest size that worked, and whether every size did. */
static size_t largest_ok(const struct run *run, const struct mech *m, bool *all)
{
	size_t best = 0;
	*all = true;
	bool any = false;
	for (size_t i = 0; i < run->nout; i++) {
		const struct outcome *o = &run->out[i];
		if (o->m != m)
			continue;
		if (o->r.status == BH_OK) {
			any = true;
			if (o->size > best)
				best = o->size;
		} else {
			*all = false;
		}
	}
	if (!any)
		*all = false;
	return any ? best : (size_t)-1;
}

#define MAXMECH 128

/* The outcome of a row named by transport, impl and mode (NULL: any mode). */
static const struct outcome *find_named(const struct run *run, const char *transport,
					const char *impl, const char *mode, int kind, size_t size)
{
	for (size_t i = 0; i < run->nout; i++) {
		const struct outcome *o = &run->out[i];
		if (!strcmp(o->m->transport, transport) && !strcmp(o->m->impl, impl) &&
		    (!mode || !strcmp(o->m->mode, mode)) && (int)o->kind == kind &&
		    o->size == size && o->r.status == BH_OK)
			return o;
	}
	return NULL;
}

/* One ratio against its target, if both rows ran. */
static void target_line(FILE *f, const char *what, double a, double b, bool at_most,
			double target)
{
	if (a <= 0 || b <= 0)
		return;
	double v = a / b;
	bool holds = at_most ? v <= target : v >= target;
	fprintf(f, "  %-52s %7.2f  (%s %g: %s)\n", what, v, at_most ? "<=" : ">=", target,
		holds ? "holds" : "misses");
}

/*
 * The request/reply targets of issue 10, as ratios of rows of this run:
 * rpc-shm round trip at most 2 x the shm: channel's and 50 x faster than
 * ZeroMQ REQ/REP over ipc; rpc-unix within 15 % of the unix: channel; calls
 * per second with BH_INFLIGHT in flight over unix at least ZeroMQ
 * DEALER/ROUTER's.
 */
static void report_rpc_targets(const struct run *run, size_t size, FILE *f)
{
	const struct outcome *rs = find_named(run, "rpc-shm", "ipcx", NULL, BH_LAT, size);
	const struct outcome *cs = find_named(run, "shm", "ipcx", NULL, BH_LAT, size);
	const struct outcome *zr = find_named(run, "rpc-unix", "zmq", "req/rep", BH_LAT, size);
	const struct outcome *ru = find_named(run, "rpc-unix", "ipcx", NULL, BH_LAT, size);
	const struct outcome *cu = find_named(run, "unix", "ipcx", NULL, BH_LAT, size);
	const struct outcome *rt = find_named(run, "rpc-unix", "ipcx", NULL, BH_THR, size);
	const struct outcome *zd = find_named(run, "rpc-unix", "zmq", "dealer", BH_THR, size);
	if (!rs && !ru)
		return;
	char sz[32];
	fprintf(f, "\nrequest/reply targets (issue 10), medians at %s, this run:\n",
		fmt_size(size, sz, sizeof(sz)));
	if (rs && cs)
		target_line(f, "rpc-shm round trip / shm channel round trip", (double)rs->r.p50,
			    (double)cs->r.p50, true, 2);
	if (rs && zr)
		target_line(f, "zmq REQ/REP ipc round trip / rpc-shm round trip", (double)zr->r.p50,
			    (double)rs->r.p50, false, 50);
	if (ru && cu)
		target_line(f, "rpc-unix round trip / unix channel round trip", (double)ru->r.p50,
			    (double)cu->r.p50, true, 1.15);
	char what[96];
	snprintf(what, sizeof(what), "rpc-unix calls/s / zmq DEALER/ROUTER's (%d in flight)",
		 BH_INFLIGHT);
	if (rt && zd)
		target_line(f, what, rt->r.msgs_per_s, zd->r.msgs_per_s, false, 1);
}

/*
 * The publish/subscribe targets of issue 11, as ratios of rows of this run
 * at the smallest size: over shm, 4 subscribers, each receives at least 10 x
 * ZeroMQ PUB/SUB's rate (ipc, 4 subscribers), printed for the subscribers
 * that take one message a call and for those that take batches of up to 64
 * (ipcx_sub_recvv, the row "4 subs b64"), and more than iceoryx's; the
 * publish-to-receive median with one subscriber is at most 2 x ipcx's shm:
 * one-way latency (half its round trip): so at most its round trip.  And
 * under policy=drop the publisher's cost per message does not grow with the
 * subscribers: its CPU time per message (the row's note) with 4 subscribers
 * over that with 1, at most 1.25 (room for the run's noise, not a cost).
 */
static double pub_cost(const struct outcome *o)
{
	double v = 0;
	return o && o->r.status == BH_OK && sscanf(o->r.note, "publisher %lf ns CPU", &v) == 1 ? v : 0;
}

static void report_pubsub_targets(const struct run *run, size_t size, FILE *f)
{
	const struct outcome *d1 = find_named(run, "pubsub-shm-drop", "ipcx", "1 sub", BH_THR, size);
	const struct outcome *d4 = find_named(run, "pubsub-shm-drop", "ipcx", "4 subs", BH_THR, size);
	const struct outcome *s4 = find_named(run, "pubsub-shm", "ipcx", "4 subs", BH_THR, size);
	const struct outcome *z4 = find_named(run, "pubsub-unix", "zmq", "4 subs", BH_THR, size);
	const struct outcome *i4 = find_named(run, "pubsub-shm", "iceoryx", "4 subs", BH_THR, size);
	const struct outcome *l1 = find_named(run, "pubsub-shm", "ipcx", "1 sub", BH_LAT, size);
	const struct outcome *cs = find_named(run, "shm", "ipcx", NULL, BH_LAT, size);
	if (!s4 && !l1 && !d4)
		return;
	char sz[32];
	fprintf(f, "\npublish/subscribe targets (issue 11), at %s, this run:\n",
		fmt_size(size, sz, sizeof(sz)));
	const struct outcome *b4 = find_named(run, "pubsub-shm", "ipcx", "4 subs b64", BH_THR, size);
	if (s4 && z4)
		target_line(f, "pubsub-shm 4 subs msg/s per sub / zmq PUB/SUB ipc's", s4->r.msgs_per_s,
			    z4->r.msgs_per_s, false, 10);
	if (b4 && z4)
		target_line(f, "pubsub-shm 4 subs b64 (batched) / zmq PUB/SUB ipc's",
			    b4->r.msgs_per_s, z4->r.msgs_per_s, false, 10);
	if (s4 && i4)
		target_line(f, "pubsub-shm 4 subs msg/s per sub / iceoryx's", s4->r.msgs_per_s,
			    i4->r.msgs_per_s, false, 1);
	if (l1 && cs)
		target_line(f, "pubsub-shm publish-to-receive p50 / shm one way (RTT/2)",
			    (double)l1->r.p50, (double)cs->r.p50 / 2, true, 2);
	target_line(f, "pubsub-shm-drop publisher CPU/msg, 4 subs / 1 sub", pub_cost(d4),
		    pub_cost(d1), true, 1.25);
}

static void table_row(const struct run *run, const struct mech *m, size_t small, size_t big,
		      FILE *f)
{
	char a[32], b[32], c[32], d[32], e[32], g[48];
	const struct outcome *lat = find(run, m, m->prim ? -1 : BH_LAT, m->prim ? 0 : small);
	const struct outcome *thr = m->prim ? NULL : find(run, m, BH_THR, small);
	const struct outcome *bw = m->prim ? NULL : find(run, m, BH_THR, big);
	bool lat_ok = lat && lat->r.status == BH_OK && lat->r.samples && lat->kind != BH_OPS;
	bool ops_ok = lat && lat->r.status == BH_OK && lat->kind == BH_OPS;
	fprintf(f, "%-14s %-8s %-11s %9s %9s %9s  %9s %10s", m->transport, m->impl, m->mode,
		lat_ok || ops_ok ? fmt_ns(lat->r.p50, a, sizeof(a)) : "-",
		lat_ok || ops_ok ? fmt_ns(lat->r.p99, b, sizeof(b)) : "-",
		lat_ok || ops_ok ? fmt_ns(lat->r.p999, c, sizeof(c)) : "-",
		ops_ok ? fmt_rate(lat->r.msgs_per_s, d, sizeof(d))
		: thr && thr->r.status == BH_OK ? fmt_rate(thr->r.msgs_per_s, d, sizeof(d)) : "-",
		bw && bw->r.status == BH_OK ? fmt_rate(bw->r.bytes_per_s, e, sizeof(e))
					    : "-");
	bool all;
	size_t best = largest_ok(run, m, &all);
	if (m->prim)
		snprintf(g, sizeof(g), "-");
	else if (best == (size_t)-1)
		snprintf(g, sizeof(g), "none");
	else
		snprintf(g, sizeof(g), "%s%s", all ? ">=" : "", fmt_size(best, a, sizeof(a)));
	const struct facts *fa = facts_of(m->transport);
	fprintf(f, "  %-10s %-8s %-10s", g, fa ? fa->scope : "?", fa ? fa->persistence : "?");
	const char *why = why_not(run, m);
	if (why && *why)
		fprintf(f, "  %.60s", why);
	fputc('\n', f);
}

void report_table(const struct run *run, FILE *f)
{
	const struct mech *ms[MAXMECH];
	size_t n = mechs_of(run, ms, MAXMECH);
	size_t small = run->sizes[0], big = run->sizes[0];
	for (int i = 0; i < run->nsizes; i++) {
		small = run->sizes[i] < small ? run->sizes[i] : small;
		big = run->sizes[i] > big ? run->sizes[i] : big;
	}
	char s1[32], s2[32];
	fmt_size(small, s1, sizeof(s1));
	fmt_size(big, s2, sizeof(s2));
	fprintf(f, "ipcx bench: %s, %ld cores, %s; ", run->env.cpu, run->env.cores,
		run->env.kernel);
	if (run->env.cpus[0] >= 0)
		fprintf(f, "the two processes pinned to CPUs %d and %d\n", run->env.cpus[0],
			run->env.cpus[1]);
	else
		fprintf(f, "not pinned (one core)\n");
	fprintf(f, "round trip (RTT) = ping-pong of one %s message between two processes; "
		   "msg/s, B/s = one-way stream\n", s1);
	fprintf(f, "primitives: hand-offs: RTT = there and back; mutex, flock, slot: RTT columns = "
		   "one lock+unlock (batches of 64), msg/s = lock+unlock per second\n");
	fprintf(f, "pool: RTT columns = time per empty task (batches of 64, 64 in flight), msg/s = "
		   "tasks per second\n");
	fprintf(f, "rpc-*: RTT = one call (request and reply of that size); msg/s, B/s = calls "
		   "per second with %d in flight from one client\n", BH_INFLIGHT);
	fprintf(f, "log: RTT columns = one log call of a 64 B message, msg/s = records per second "
		   "end to end into a file\n\n");
	fprintf(f, "pubsub-*: one publisher, N subscriber processes (the publisher on one CPU, "
		   "the subscribers sharing the other); RTT columns = publish-to-receive latency, "
		   "one message at a time; msg/s, B/s = received by each subscriber (mean); "
		   "mode 'b64': the subscribers take batches of up to 64 (ipcx_sub_recvv)\n\n");
	char h1[64], h2[64], h3[64];
	snprintf(h1, sizeof(h1), "RTT p50");
	snprintf(h2, sizeof(h2), "msg/s@%s", s1);
	snprintf(h3, sizeof(h3), "B/s@%s", s2);
	fprintf(f, "%-14s %-8s %-11s %9s %9s %9s  %9s %10s  %-10s %-8s %-10s  %s\n", "mechanism",
		"impl", "mode", h1, "p99", "p99.9", h2, h3, "largest ok", "scope", "persists",
		"note");
	const char *last = NULL;
	for (size_t i = 0; i < n; i++) {
		if (last && strcmp(last, ms[i]->transport) && (ms[i]->prim != ms[i - 1]->prim))
			fputc('\n', f);
		last = ms[i]->transport;
		table_row(run, ms[i], small, big, f);
	}
	report_rpc_targets(run, small, f);
	report_pubsub_targets(run, small, f);
	if (run->env.peers[0])
		fprintf(f, "\npeers: %s\n", run->env.peers);
}

/* ---- JSON --------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_env(const struct run *run, FILE *f)
{
	const struct env *e = &run->env;
	fprintf(f, "  \"env\": {\n    \"cpu\": ");
	json_str(f, e->cpu);
	fprintf(f, ",\n    \"cores\": %ld,\n    \"kernel\": ", e->cores);
	json_str(f, e->kernel);
	fprintf(f, ",\n    \"pinned\": %s,\n    \"cpus\": [%d, %d],\n", e->cpus[0] >= 0 ? "true" : "false",
		e->cpus[0], e->cpus[1]);
	fprintf(f, "    \"quick\": %s,\n    \"date\": ", e->quick ? "true" : "false");
	json_str(f, e->date);
	fprintf(f, ",\n    \"ipcx_version\": ");
	json_str(f, ipcx_version());
	fprintf(f, ",\n    \"peers\": ");
	json_str(f, e->peers);
	fprintf(f, ",\n    \"options\": ");
	json_str(f, e->options);
	fprintf(f, ",\n    \"transport_options\": ");
	json_str(f, BENCH_URL_OPTIONS);
	fprintf(f, ",\n    \"sizes\": [");
	for (int i = 0; i < run->nsizes; i++)
		fprintf(f, "%s%zu", i ? ", " : "", run->sizes[i]);
	fprintf(f, "],\n    \"latency\": \"round trip, ping-pong between two processes\",\n"
		   "    \"throughput\": \"one way, sender to receiver\"\n  }");
}

/* One result per (transport, impl, mode, size): latency and throughput merged. */
static void json_result(const struct run *run, const struct mech *m, size_t size, FILE *f,
			bool *first)
{
	const struct outcome *lat = NULL, *thr = NULL, *ops = NULL;
	for (size_t i = 0; i < run->nout; i++) {
		const struct outcome *o = &run->out[i];
		if (o->m != m || o->size != size || o->r.status != BH_OK)
			continue;
		if (o->kind == BH_LAT)
			lat = o;
		else if (o->kind == BH_THR)
			thr = o;
		else
			ops = o;
	}
	if (!lat && !thr && !ops)
		return;
	fprintf(f, "%s    {\"transport\": ", *first ? "" : ",\n");
	*first = false;
	json_str(f, m->transport);
	fprintf(f, ", \"impl\": ");
	json_str(f, m->impl);
	fprintf(f, ", \"mode\": ");
	json_str(f, m->mode);
	fprintf(f, ", \"size\": %zu", size);
	const struct outcome *l = lat ? lat : ops;
	if (l)
		fprintf(f, ", \"rtt_ns\": {\"p50\": %llu, \"p99\": %llu, \"p999\": %llu, \"max\": %llu}"
			   ", \"rtt_samples\": %llu",
			(unsigned long long)l->r.p50, (unsigned long long)l->r.p99,
			(unsigned long long)l->r.p999, (unsigned long long)l->r.max,
			(unsigned long long)l->r.samples);
	if (thr)
		fprintf(f, ", \"msgs_per_s\": %.1f, \"bytes_per_s\": %.1f, \"stream_messages\": %llu"
			   ", \"lost\": %llu",
			thr->r.msgs_per_s, thr->r.bytes_per_s, (unsigned long long)thr->count,
			(unsigned long long)thr->r.lost);
	if (thr && thr->r.note[0]) { /* fan-out rows: the publisher's rate, the slowest subscriber */
		fprintf(f, ", \"note\": ");
		json_str(f, thr->r.note);
	}
	/* Wall time of the cases, set-up included: where a run's minutes go. */
	fprintf(f, ", \"wall_ms\": %.1f",
		(double)((lat ? lat->wall_ns : 0) + (thr ? thr->wall_ns : 0) +
			 (ops ? ops->wall_ns : 0)) / 1e6);
	if (ops)
		fprintf(f, ", \"ops_per_s\": %.1f, \"msgs_per_s\": %.1f", ops->r.msgs_per_s,
			ops->r.msgs_per_s);
	fputc('}', f);
}

static void json_write(const struct run *run, FILE *f)
{
	fprintf(f, "{\n");
	json_env(run, f);
	fprintf(f, ",\n  \"results\": [\n");
	const struct mech *ms[MAXMECH];
	size_t n = mechs_of(run, ms, MAXMECH);
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (ms[i]->prim) {
			json_result(run, ms[i], 0, f, &first);
			continue;
		}
		for (int s = 0; s < run->nsizes; s++)
			json_result(run, ms[i], run->sizes[s], f, &first);
	}
	fprintf(f, "\n  ],\n  \"skipped\": [\n");
	first = true;
	for (size_t i = 0; i < run->nout; i++) {
		const struct outcome *o = &run->out[i];
		if (o->r.status == BH_OK)
			continue;
		fprintf(f, "%s    {\"transport\": ", first ? "" : ",\n");
		first = false;
		json_str(f, o->m->transport);
		fprintf(f, ", \"impl\": ");
		json_str(f, o->m->impl);
		fprintf(f, ", \"mode\": ");
		json_str(f, o->m->mode);
		fprintf(f, ", \"size\": %zu, \"kind\": \"%s\", \"status\": \"%s\", \"note\": ", o->size,
			o->kind == BH_THR ? "throughput" : "latency",
			o->r.status == BH_SKIP ? "skipped" : "error");
		json_str(f, o->r.note);
		fputc('}', f);
	}
	fprintf(f, "\n  ]\n}\n");
}

int report_json(const struct run *run, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	json_write(run, f);
	return fclose(f) ? -errno : 0;
}

/* ---- HTML ------------------------------------------------------------------------ */

/*
 * The page is the run's JSON and a script that draws it (bench/report_page.js,
 * carried in the program): the charts are laid out per family, with a few
 * lines each, which is easier in the browser than here.  The terminal table
 * is in the page too, for reading without scripts and for copying.
 */
#include "report_page.h"

static void html_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
	}
}

/* Text made by fn(run, memstream), as HTML text or as script data. */
static void emit(const struct run *run, void (*fn)(const struct run *, FILE *), bool script,
		 FILE *f)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (!mem)
		return;
	fn(run, mem);
	fclose(mem);
	if (!script) {
		html_esc(f, buf);
	} else {
		/* '<' only occurs inside JSON strings, where \u003c means the same
		 * and can never close the script element. */
		for (const char *p = buf; *p; p++)
			if (*p == '<')
				fputs("\\u003c", f);
			else
				fputc(*p, f);
	}
	free(buf);
}

static const char page_css[] =
	"body{font-family:sans-serif;margin:1.5em 2em;max-width:1400px;color:#222}"
	"h2{margin-top:1.6em;border-bottom:1px solid #ccc}h3{margin:.2em 0;font-size:1em}"
	"figure{margin:.3em .6em .6em 0;display:inline-block;vertical-align:top}"
	"figcaption{font-size:12px;color:#444}"
	".row{display:flex;flex-wrap:wrap;gap:1em}"
	".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(690px,1fr));gap:.5em 1em}"
	".cell{border:1px solid #eee;padding:.3em .5em}"
	"pre{font-size:11px;background:#f4f4f4;padding:1em;overflow-x:auto}"
	"table.results{border-collapse:collapse;font-size:12px}"
	"table.results th{cursor:pointer;background:#eee;padding:3px 6px;text-align:left}"
	"table.results th[data-dir=asc]:after{content:' \\25b2'}"
	"table.results th[data-dir=desc]:after{content:' \\25bc'}"
	"table.results td{padding:2px 6px;border-bottom:1px solid #eee}"
	"table.results td.num{text-align:right;font-variant-numeric:tabular-nums}"
	"svg .series:hover{opacity:.75}"
	"#render-check{color:#999;font-size:10px}";

int report_html(const struct run *run, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<title>ipcx bench</title>\n<style>%s</style></head><body>\n"
		   "<h1>ipcx bench</h1>\n<ul>\n<li>CPU: ", page_css);
	html_esc(f, run->env.cpu);
	fprintf(f, ", %ld cores</li>\n<li>kernel: ", run->env.cores);
	html_esc(f, run->env.kernel);
	fprintf(f, "</li>\n<li>pinning: %s CPUs %d and %d</li>\n<li>date: %s</li>\n<li>options: ",
		run->env.cpus[0] >= 0 ? "client and server on" : "none;", run->env.cpus[0],
		run->env.cpus[1], run->env.date);
	html_esc(f, run->env.options[0] ? run->env.options : "(full run)");
	fprintf(f, "</li>\n<li>ipcx URL options: %s</li>\n<li>peers: ", BENCH_URL_OPTIONS);
	html_esc(f, run->env.peers[0] ? run->env.peers : "none built");
	fprintf(f, "</li>\n</ul>\n<p>Latency is a round trip (ping-pong between two processes on "
		   "two cores); throughput is one way.  Lines and bars: <b style=\"color:#1f5fbf\">"
		   "ipcx</b>, <b style=\"color:#555\">the raw system calls</b> (dashed), peer "
		   "libraries (dotted: <b style=\"color:#d9730d\">ZeroMQ</b>, <b style=\"color:#2e8b57\">"
		   "nng</b>, <b style=\"color:#8e44ad\">iceoryx</b>).  Point at a mark for its value; "
		   "docs/bench.md explains the method.</p>\n"
		   "<noscript><p>The charts are drawn by the page's script; the table below needs "
		   "none.</p></noscript>\n<div id=\"report\"></div>\n"
		   "<h2>The terminal table</h2>\n<pre>");
	emit(run, report_table, false, f);
	fprintf(f, "</pre>\n<p id=\"render-check\">not rendered</p>\n"
		   "<script id=\"bench-data\" type=\"application/json\">\n");
	emit(run, json_write, true, f);
	fprintf(f, "</script>\n<script>\n%s</script>\n</body></html>\n", report_page_js);
	return fclose(f) ? -errno : 0;
}
