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

static void table_row(const struct run *run, const struct mech *m, size_t small, size_t big,
		      FILE *f)
{
	char a[32], b[32], c[32], d[32], e[32], g[48];
	const struct outcome *lat = find(run, m, m->prim ? -1 : BH_LAT, m->prim ? 0 : small);
	const struct outcome *thr = m->prim ? NULL : find(run, m, BH_THR, small);
	const struct outcome *bw = m->prim ? NULL : find(run, m, BH_THR, big);
	bool lat_ok = lat && lat->r.status == BH_OK && lat->r.samples && lat->kind != BH_OPS;
	bool ops_ok = lat && lat->r.status == BH_OK && lat->kind == BH_OPS;
	fprintf(f, "%-11s %-8s %-11s %9s %9s %9s  %9s %10s", m->transport, m->impl, m->mode,
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
	fprintf(f, "primitives: hand-offs: RTT = there and back; mutex, flock: RTT columns = one "
		   "lock+unlock (batches of 64), msg/s = lock+unlock per second\n\n");
	char h1[64], h2[64], h3[64];
	snprintf(h1, sizeof(h1), "RTT p50");
	snprintf(h2, sizeof(h2), "msg/s@%s", s1);
	snprintf(h3, sizeof(h3), "B/s@%s", s2);
	fprintf(f, "%-11s %-8s %-11s %9s %9s %9s  %9s %10s  %-10s %-8s %-10s  %s\n", "mechanism",
		"impl", "mode", h1, "p99", "p99.9", h2, h3, "largest ok", "scope", "persists",
		"note");
	const char *last = NULL;
	for (size_t i = 0; i < n; i++) {
		if (last && strcmp(last, ms[i]->transport) && (ms[i]->prim != ms[i - 1]->prim))
			fputc('\n', f);
		last = ms[i]->transport;
		table_row(run, ms[i], small, big, f);
	}
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
	/* Wall time of the cases, set-up included: where a run's minutes go. */
	fprintf(f, ", \"wall_ms\": %.1f",
		(double)((lat ? lat->wall_ns : 0) + (thr ? thr->wall_ns : 0) +
			 (ops ? ops->wall_ns : 0)) / 1e6);
	if (ops)
		fprintf(f, ", \"ops_per_s\": %.1f, \"msgs_per_s\": %.1f", ops->r.msgs_per_s,
			ops->r.msgs_per_s);
	fputc('}', f);
}

int report_json(const struct run *run, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
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
	return fclose(f) ? -errno : 0;
}

/* ---- HTML with SVG plots ------------------------------------------------------------ */

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

static double metric(const struct outcome *o, int which)
{
	return which == 0 ? (double)o->r.p50 : o->r.bytes_per_s;
}

/* The how-manieth distinct transport m's is among ms. */
static size_t transport_index(const struct mech **ms, size_t n, const char *transport)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (ms[i]->prim)
			continue;
		if (!strcmp(ms[i]->transport, transport))
			return k;
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = strcmp(ms[j]->transport, ms[i]->transport) != 0;
		k += first;
	}
	return k;
}

/* A log-log chart: x = message size, y = p50 RTT (which 0) or bytes/s (1). */
static void svg_chart(const struct run *run, const struct mech **ms, size_t n, int which, FILE *f)
{
	const int W = 980, H = 460, L = 70, R = 250, T = 20, B = 50;
	double ymin = INFINITY, ymax = -INFINITY;
	size_t xmin = (size_t)-1, xmax = 0;
	int kind = which == 0 ? BH_LAT : BH_THR;
	for (size_t i = 0; i < run->nout; i++) {
		const struct outcome *o = &run->out[i];
		if (o->m->prim || (int)o->kind != kind || o->r.status != BH_OK || !o->size)
			continue;
		double v = metric(o, which);
		if (v <= 0)
			continue;
		ymin = fmin(ymin, v), ymax = fmax(ymax, v);
		xmin = o->size < xmin ? o->size : xmin;
		xmax = o->size > xmax ? o->size : xmax;
	}
	const char *title = which == 0 ? "round-trip latency, median (ns), against message size"
				       : "one-way throughput (bytes/s), against message size";
	fprintf(f, "<h2>%s</h2>\n<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
		   "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
		title, which == 0 ? "latency" : "throughput", W, H, W, H);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
		   "stroke=\"#888\"/>\n", L, T, W - L - R, H - T - B);
	if (xmax == 0) {
		fprintf(f, "<text x=\"%d\" y=\"%d\">no data</text></svg>\n", L + 20, T + 40);
		return;
	}
	double ly0 = floor(log10(ymin)), ly1 = ceil(log10(ymax));
	if (ly1 <= ly0)
		ly1 = ly0 + 1;
	double lx0 = log2((double)xmin), lx1 = log2((double)xmax);
	if (lx1 <= lx0)
		lx0 -= 1, lx1 += 1;
	double pw = W - L - R, ph = H - T - B;
#define X(s) (L + (log2((double)(s)) - lx0) / (lx1 - lx0) * pw)
#define Y(v) (T + ph - (log10(v) - ly0) / (ly1 - ly0) * ph)
	/* Grid: powers of ten up, the measured sizes across. */
	for (double e = ly0; e <= ly1; e++) {
		char lab[64], num[32];
		double v = pow(10, e);
		if (which == 0)
			fmt_ns((uint64_t)v, lab, sizeof(lab));
		else
			snprintf(lab, sizeof(lab), "%sB/s", fmt_rate(v, num, sizeof(num)));
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			   "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
			L, W - R, Y(v), Y(v), L - 4, Y(v) + 4, lab);
	}
	for (int s = 0; s < run->nsizes; s++) {
		char lab[32];
		if (!run->sizes[s])
			continue;
		double x = X(run->sizes[s]);
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
			   "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
			x, x, T, H - B, x, H - B + 16, fmt_size(run->sizes[s], lab, sizeof(lab)));
	}
	fprintf(f, "<text x=\"%.0f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">message size "
		   "(log scale)</text>\n", L + pw / 2, H - 10);
	size_t drawn = 0;
	for (size_t i = 0; i < n; i++) {
		const struct mech *m = ms[i];
		if (m->prim)
			continue;
		char pts[4096] = "";
		size_t used = 0, npts = 0;
		for (int s = 0; s < run->nsizes; s++) {
			const struct outcome *o = find(run, m, kind, run->sizes[s]);
			if (!o || o->r.status != BH_OK || !o->size || metric(o, which) <= 0)
				continue;
			used += (size_t)snprintf(pts + used, sizeof(pts) - used, "%.1f,%.1f ",
						 X(o->size), Y(metric(o, which)));
			npts++;
		}
		if (!npts)
			continue;
		/* Colour by mechanism (its place in the table), line style by
		 * implementation, so a transport and its baseline share a colour. */
		int hue = (int)((transport_index(ms, n, m->transport) * 97) % 360);
		const char *dash = !strcmp(m->impl, "ipcx") ? "" :
				   !strcmp(m->impl, "raw") ? "6,3" : "2,3";
		fprintf(f, "<g class=\"series\" data-name=\"%s/%s/%s\"><polyline fill=\"none\" "
			   "stroke=\"hsl(%d,70%%,42%%)\" stroke-width=\"2\" stroke-dasharray=\"%s\" "
			   "points=\"%s\"/>",
			m->transport, m->impl, m->mode, hue, dash, pts);
		/* Dots, so that a one-size series is visible too. */
		for (char *save, *p = strtok_r(pts, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
			double x, y;
			if (sscanf(p, "%lf,%lf", &x, &y) == 2)
				fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" "
					   "fill=\"hsl(%d,70%%,42%%)\"/>", x, y, hue);
		}
		double ly = T + 12 + 14.0 * (double)drawn;
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"hsl(%d,70%%,42%%)\" "
			   "stroke-width=\"2\" stroke-dasharray=\"%s\"/><text x=\"%d\" y=\"%.1f\" "
			   "font-size=\"11\">%s %s %s</text></g>\n",
			W - R + 10, W - R + 40, ly - 4, ly - 4, hue, dash, W - R + 46, ly, m->transport,
			m->impl, m->mode);
		drawn++;
	}
#undef X
#undef Y
	fprintf(f, "</svg>\n");
}

int report_html(const struct run *run, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	const struct mech *ms[MAXMECH];
	size_t n = mechs_of(run, ms, MAXMECH);
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<title>ipcx bench</title>\n<style>body{font-family:sans-serif;margin:2em}"
		   "pre{font-size:12px;background:#f4f4f4;padding:1em;overflow-x:auto}"
		   /* Pointing at a line or its legend entry brings that series out. */
		   "svg.chart:hover g.series{opacity:.2}svg.chart g.series:hover{opacity:1}"
		   "svg.chart g.series:hover polyline{stroke-width:4}"
		   "</style></head><body>\n<h1>ipcx bench</h1>\n<ul>\n");
	fprintf(f, "<li>CPU: ");
	html_esc(f, run->env.cpu);
	fprintf(f, ", %ld cores</li>\n<li>kernel: ", run->env.cores);
	html_esc(f, run->env.kernel);
	fprintf(f, "</li>\n<li>pinning: %s CPUs %d and %d</li>\n<li>date: %s</li>\n<li>options: ",
		run->env.cpus[0] >= 0 ? "client and server on" : "none;", run->env.cpus[0],
		run->env.cpus[1], run->env.date);
	html_esc(f, run->env.options[0] ? run->env.options : "(full run)");
	fprintf(f, "</li>\n<li>ipcx URL options: %s</li>\n<li>peers: ", BENCH_URL_OPTIONS);
	html_esc(f, run->env.peers[0] ? run->env.peers : "none built");
	fprintf(f, "</li>\n</ul>\n<p>Dashed lines: the raw system calls; solid: ipcx; dotted: "
		   "peer libraries; one colour per mechanism.  Latency is a round trip "
		   "(ping-pong); throughput is one way.  Point at a line or a legend entry to "
		   "single it out.</p>\n");
	svg_chart(run, ms, n, 0, f);
	svg_chart(run, ms, n, 1, f);
	fprintf(f, "<h2>table</h2>\n<pre>");
	/* The terminal table, escaped. */
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (mem) {
		report_table(run, mem);
		fclose(mem);
		html_esc(f, buf);
		free(buf);
	}
	fprintf(f, "</pre>\n<p id=\"render-check\">not rendered</p>\n"
		   "<script>\n"
		   "/* Counts the plotted series that the browser actually laid out. */\n"
		   "window.addEventListener('load', function () {\n"
		   "  var n = 0;\n"
		   "  document.querySelectorAll('svg.chart g.series').forEach(function (g) {\n"
		   "    var b = g.getBBox(); if (b.width > 0 || b.height > 0) n++; });\n"
		   "  document.getElementById('render-check').textContent = 'rendered ' + n + ' series';\n"
		   "});\n</script>\n</body></html>\n");
	return fclose(f) ? -errno : 0;
}
