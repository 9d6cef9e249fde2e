/*
 * ipcx advise: the seeds' guide to choosing a mechanism, as a command.
 *
 * The user says what they need; the answer is the transports that meet
 * every need, best first, each with its reason, and the others with the
 * need each breaks.  The facts come from docs/transports.md itself (its
 * "Choosing one" table and the mechanism column of the main table, carried
 * in the program at build time), so the docs and the advice cannot drift
 * apart; the figures come from a benchmark run (--bench FILE, or a short one
 * made here with --measure), else the order is the table's, shared memory
 * first, and says so.
 */
#include "cli.h"
#include "transports_md_int.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum scope { SCOPE_RELATED, SCOPE_HOST, SCOPE_NETWORK };
enum outlives { OUTLIVES_NO, OUTLIVES_REBOOT, OUTLIVES_DISK };

struct cand {
	char url[64];    /* "shm:/name", "fd:N" */
	char label[112]; /* the URL as the table shows it: "fd:N (pipe)" */
	char qual[32];   /* the table's word after the URL: "pipe", "stream"; or "" */
	char bench[32];  /* the benchmark's name for it: "shm", "pipe" ...; "" if none */
	char mech[128];  /* the main table's words: "ring in POSIX shared memory ..." */
	enum scope scope;
	bool reliable, fanout, tools;
	enum outlives outlives;
	unsigned long long largest;
	long long writers; /* -1: one writer; 0: many; N: many, up to N bytes each */
	/* Figures from a benchmark run, at fig_size. */
	bool measured;
	double rtt_ns, rate;
	size_t fig_size;
	char why_not[200]; /* the first need it breaks; "" if it meets them all */
	int order;         /* its row in the table: ties keep the table's order */
};

struct needs {
	bool related, persist, fanout, many_writers, tools, reliable;
	long hosts;
	unsigned long long size;
	double rate, latency_us;
	const char *bench_file;
	bool measure, json;
};

#define MAXCAND 32

static void help(FILE *f)
{
	fprintf(f,
		"usage: ipcx advise [NEEDS...] [--bench FILE | --measure] [--json]\n\n"
		"Which transport fits?  State what you need; ipcx lists the URLs that meet\n"
		"every need, best first, with the reason, and says why it left the others out.\n\n"
		"needs:\n"
		"  --related            the processes are parent and child (pipes and socket\n"
		"                       pairs qualify; without it they are unrelated)\n"
		"  --hosts N            the processes run on N machines (N > 1: a network)\n"
		"  --persist            messages wait for a receiver that is not running,\n"
		"                       and survive the processes' deaths\n"
		"  --size BYTES         the largest message (4096, 64K, 1M ...)\n"
		"  --rate MSG/S         messages per second one way, at that size\n"
		"  --latency US         a round trip (there and back) within US microseconds\n"
		"  --fan-out            every receiver gets every message\n"
		"  --many-writers       several processes send to one receiver\n"
		"  --language-agnostic  the other side is a plain tool (nc, socat, a shell)\n"
		"  --reliable           nothing may be lost while both sides run\n\n"
		"figures (for --rate and --latency, and to rank by speed):\n"
		"  --bench FILE         a run of 'ipcx bench --json FILE' on this machine\n"
		"  --measure            run a short benchmark of the candidates now\n"
		"  --json               the answer as JSON\n"
		"  -h, --help           show this help\n\n"
		"--rate and --latency need figures; a transport the figures lack is left\n"
		"out for them.  Without figures shared memory comes first, then the order\n"
		"of docs/transports.md's table.\n\n"
		"examples:\n"
		"  ipcx advise --size 256 --latency 5 --many-writers --measure\n"
		"  ipcx advise --hosts 3 --reliable\n"
		"  ipcx advise --persist --size 1M\n");
}

/* ---- the facts, from docs/transports.md ------------------------------------------ */

/* The cells of a table row "| a | b | c |" into cells[], trimmed; the count. */
static int split_row(char *line, char **cells, int max)
{
	int n = 0;
	char *save, *p = line;
	if (*p == '|')
		p++;
	for (char *c = strtok_r(p, "|", &save); c && n < max; c = strtok_r(NULL, "|", &save)) {
		while (*c == ' ')
			c++;
		size_t len = strlen(c);
		while (len && (c[len - 1] == ' ' || c[len - 1] == '\n'))
			c[--len] = '\0';
		cells[n++] = c;
	}
	return n;
}

/* The first `code` of a cell, and what follows it in parentheses: "pipe". */
static void url_of(const char *cell, char *url, size_t cap, char *qual, size_t qcap)
{
	const char *a = strchr(cell, '`'), *b = a ? strchr(a + 1, '`') : NULL;
	snprintf(url, cap, "%.*s", a && b ? (int)(b - a - 1) : 0, a ? a + 1 : "");
	const char *q = b ? strchr(b, '(') : NULL, *e = q ? strchr(q, ')') : NULL;
	snprintf(qual, qcap, "%.*s", q && e ? (int)(e - q - 1) : 0, q ? q + 1 : "");
}

static bool yes(const char *s)
{
	return !strncmp(s, "yes", 3);
}

/* One row of "Choosing one"; false if it does not parse. */
static bool parse_cand(char *line, struct cand *c)
{
	char *cell[9], qual[32];
	if (split_row(line, cell, 9) != 8)
		return false;
	memset(c, 0, sizeof(*c));
	url_of(cell[0], c->url, sizeof(c->url), qual, sizeof(qual));
	snprintf(c->qual, sizeof(c->qual), "%s", qual);
	size_t colon = strcspn(c->url, ":");
	snprintf(c->bench, sizeof(c->bench), "%.*s", (int)colon, c->url);
	/* fd:N's qualifier is its mechanism, a row of the benchmark; any other
	 * (the NATS stream) has no row (the benchmark measures core NATS):
	 * no name, never measured. */
	if (qual[0])
		snprintf(c->bench, sizeof(c->bench), "%s",
			 !strcmp(c->bench, "fd") ? qual : "");
	snprintf(c->label, sizeof(c->label), "%s%s%s%s", c->url, qual[0] ? " (" : "", qual,
		 qual[0] ? ")" : "");
	c->scope = !strcmp(cell[1], "related") ? SCOPE_RELATED
		   : !strcmp(cell[1], "network") ? SCOPE_NETWORK : SCOPE_HOST;
	c->reliable = yes(cell[2]);
	c->outlives = !strcmp(cell[3], "disk") ? OUTLIVES_DISK
		      : !strcmp(cell[3], "reboot") ? OUTLIVES_REBOOT : OUTLIVES_NO;
	c->largest = strtoull(cell[4], NULL, 10);
	c->writers = yes(cell[5]) ? 0 : !strcmp(cell[5], "no") ? -1 : strtoll(cell[5], NULL, 10);
	c->fanout = yes(cell[6]);
	c->tools = yes(cell[7]);
	return c->url[0] && c->largest > 0;
}

/* The main table's mechanism words for c (its row names the same URL). */
static void mech_of(const char *table, struct cand *c)
{
	char *copy = strdup(table), *save;
	if (!copy)
		return;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *cell[9], url[64], qual[32];
		if (line[0] != '|' || split_row(line, cell, 9) < 2)
			continue;
		url_of(cell[0], url, sizeof(url), qual, sizeof(qual));
		size_t colon = strcspn(c->url, ":");
		bool same = !strncmp(url, c->url, colon + 1) &&
			    (!qual[0] || !strcmp(qual, c->qual));
		if (same) {
			size_t k = 0;
			for (const char *p = cell[1]; *p && k + 1 < sizeof(c->mech); p++)
				if (*p != '`')
					c->mech[k++] = *p;
			c->mech[k] = '\0';
			break;
		}
	}
	free(copy);
}

/* The section of the docs that starts with heading, up to the next "## ". */
static char *section(const char *doc, const char *heading)
{
	const char *a = strstr(doc, heading);
	if (!a)
		return NULL;
	a += strlen(heading);
	const char *b = strstr(a, "\n## ");
	return strndup(a, b ? (size_t)(b - a) : strlen(a));
}

static int load_cands(struct cand *cs, int max)
{
	char *choose = section(transports_md, "## Choosing one");
	char *main_table = section(transports_md, "## The table");
	int n = 0;
	if (choose && main_table) {
		char *save;
		for (char *line = strtok_r(choose, "\n", &save); line && n < max;
		     line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "| `", 3) || !parse_cand(line, &cs[n]))
				continue;
			mech_of(main_table, &cs[n]);
			cs[n].order = n;
			n++;
		}
	}
	free(choose);
	free(main_table);
	return n;
}

/* ---- the figures, from a benchmark's JSON --------------------------------------- */

static double num(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static const char *str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/*
 * For each candidate, ipcx's figures at the smallest measured size that
 * holds the message (or the largest measured, if none does).
 */
static int load_figures(const char *path, struct cand *cs, int n, unsigned long long size)
{
	json_object *root = json_object_from_file(path), *results;
	if (!root)
		return -ENOENT;
	if (!json_object_object_get_ex(root, "results", &results) ||
	    !json_object_is_type(results, json_type_array)) {
		json_object_put(root);
		return -EBADMSG;
	}
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		json_object *r = json_object_array_get_idx(results, i), *rtt;
		if (strcmp(str(r, "impl"), "ipcx"))
			continue;
		size_t s = (size_t)num(r, "size");
		for (int k = 0; k < n; k++) {
			struct cand *c = &cs[k];
			if (strcmp(c->bench, str(r, "transport")) || !s)
				continue;
			bool fits = s >= size, had_fit = c->measured && c->fig_size >= size;
			bool better = !c->measured || (fits && (!had_fit || s < c->fig_size)) ||
				      (!fits && !had_fit && s > c->fig_size);
			if (!better)
				continue;
			c->measured = true;
			c->fig_size = s;
			c->rtt_ns = json_object_object_get_ex(r, "rtt_ns", &rtt) ? num(rtt, "p50") : 0;
			c->rate = num(r, "msgs_per_s");
		}
	}
	json_object_put(root);
	return 0;
}

/*
 * Run `ipcx bench --quick` on the candidates still in, at the size asked,
 * into out: 1, or 0 when none has a row in the benchmark (nothing run).
 */
static int measure(struct cand *cs, int n, unsigned long long size, const char *out)
{
	char only[512] = "", sizes[32];
	for (int i = 0; i < n; i++)
		if (!cs[i].why_not[0] && cs[i].bench[0] &&
		    strlen(only) + strlen(cs[i].bench) + 2 < sizeof(only))
			snprintf(only + strlen(only), sizeof(only) - strlen(only), "%s%s",
				 only[0] ? "," : "", cs[i].bench);
	if (!only[0])
		return 0; /* nothing the benchmark has a row for */
	snprintf(sizes, sizeof(sizes), "%llu", size ? size : 64);
	fprintf(stderr, "ipcx advise: measuring %s at %s bytes (ipcx bench --quick) ...\n", only,
		sizes);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execl("/proc/self/exe", "ipcx", "bench", "--quick", "--only", only, "--sizes", sizes,
		      "--json", out, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 1 : -EIO;
}

/* ---- judging -------------------------------------------------------------------- */

static const char *scope_words(enum scope s)
{
	return s == SCOPE_RELATED ? "related processes only"
	       : s == SCOPE_HOST  ? "one host" : "a network";
}

/* The first need c breaks, in c->why_not (figures are judged later). */
static void judge_facts(const struct needs *nd, struct cand *c)
{
	char *w = c->why_not;
	size_t cap = sizeof(c->why_not);
	unsigned long long limit = nd->many_writers && c->writers > 0 ? (unsigned long long)c->writers
								      : c->largest;
	if (nd->hosts > 1 && c->scope != SCOPE_NETWORK)
		snprintf(w, cap, "%s, not across hosts (--hosts %ld)", scope_words(c->scope), nd->hosts);
	else if (!nd->related && c->scope == SCOPE_RELATED)
		snprintf(w, cap, "only between a parent and its child (say --related if they are)");
	else if (nd->reliable && !c->reliable)
		snprintf(w, cap, "may lose messages (--reliable)");
	else if (nd->persist && c->outlives == OUTLIVES_NO)
		snprintf(w, cap, "messages die with the processes (--persist)");
	else if (nd->fanout && !c->fanout)
		snprintf(w, cap, "each message goes to one receiver (--fan-out)");
	else if (nd->many_writers && c->writers < 0)
		snprintf(w, cap, "one sender only (--many-writers)");
	else if (nd->tools && !c->tools)
		snprintf(w, cap, "needs ipcx (or its format) on both sides (--language-agnostic)");
	else if (nd->size > limit)
		snprintf(w, cap, "messages up to %llu bytes%s (--size %llu)", limit,
			 limit != c->largest ? " with many writers" : "", nd->size);
}

static void fmt_rate(double v, char *buf, size_t cap)
{
	if (v >= 1e6)
		snprintf(buf, cap, "%.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, cap, "%.1f k", v / 1e3);
	else
		snprintf(buf, cap, "%.0f", v);
}

static void fmt_time(double ns, char *buf, size_t cap)
{
	if (ns < 1e3)
		snprintf(buf, cap, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, cap, "%.1f us", ns / 1e3);
	else
		snprintf(buf, cap, "%.2f ms", ns / 1e6);
}

static void judge_figures(const struct needs *nd, struct cand *c)
{
	char t[32];
	if (c->why_not[0])
		return;
	if (!c->measured) {
		/* A speed nobody measured is not a speed we can promise. */
		if (nd->latency_us > 0 || nd->rate > 0)
			snprintf(c->why_not, sizeof(c->why_not),
				 "not measured in the figures (--latency, --rate)");
		return;
	}
	if (nd->latency_us > 0 && c->rtt_ns > nd->latency_us * 1e3) {
		fmt_time(c->rtt_ns, t, sizeof(t));
		snprintf(c->why_not, sizeof(c->why_not), "%s round trip here, above %.0f us (--latency)",
			 t, nd->latency_us);
	} else if (nd->rate > 0 && c->rate < nd->rate) {
		char want[32];
		fmt_rate(c->rate, t, sizeof(t));
		fmt_rate(nd->rate, want, sizeof(want));
		snprintf(c->why_not, sizeof(c->why_not), "%s msg/s here, below %s (--rate)", t, want);
	}
}

/* Shared memory first when nothing was measured: no system call per message. */
static int rank_static(const struct cand *c)
{
	return !strcmp(c->bench, "shm") || !strcmp(c->bench, "sysvshm") ? 0
	       : !strcmp(c->bench, "mmap") ? 1 : 2;
}

static const struct needs *sort_needs;

static int by_rank(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->measured != y->measured)
		return x->measured ? -1 : 1;
	if (x->measured && y->measured) {
		/* Rank by the figure the user asked about: rate alone, else latency. */
		if (sort_needs->rate > 0 && !(sort_needs->latency_us > 0) && x->rate != y->rate)
			return x->rate > y->rate ? -1 : 1;
		if (x->rtt_ns != y->rtt_ns)
			return x->rtt_ns < y->rtt_ns ? -1 : 1;
	} else if (rank_static(x) != rank_static(y)) {
		return rank_static(x) - rank_static(y);
	}
	return x->order - y->order;
}

/* Add "name=value" to a URL in buf. */
static void add_option(char *buf, size_t cap, const char *opt)
{
	size_t n = strlen(buf);
	snprintf(buf + n, cap - n, "%c%s", strchr(buf, '?') ? '&' : '?', opt);
}

/*
 * The URL to use: the table's, with max= when the message is larger than
 * usual, and one message per line where a plain tool is on the other side.
 */
static void suggest(const struct needs *nd, const struct cand *c, char *buf, size_t cap)
{
	bool own_size = !strcmp(c->bench, "mq") || !strcmp(c->bench, "sysvmq") ||
			!strcmp(c->bench, "udp") || !strcmp(c->bench, "socketpair");
	bool stream = !strcmp(c->bench, "pipe") || !strcmp(c->bench, "fifo") ||
		      !strcmp(c->bench, "unix") || !strcmp(c->bench, "tcp");
	char opt[48];
	snprintf(buf, cap, "%s", c->url);
	if (nd->size > 4092 && !own_size) {
		snprintf(opt, sizeof(opt), "max=%llu", nd->size);
		add_option(buf, cap, opt);
	}
	if (nd->tools && stream)
		add_option(buf, cap, "framing=lines");
	if (!strcmp(buf, c->url))
		snprintf(buf, cap, "%s", c->label);
}

static void reason(const struct needs *nd, const struct cand *c, char *buf, size_t cap)
{
	char t[32], rt[32];
	int n = snprintf(buf, cap, "%s; %s", c->mech, scope_words(c->scope));
	if (c->outlives != OUTLIVES_NO)
		n += snprintf(buf + n, cap - (size_t)n, "; messages survive %s",
			      c->outlives == OUTLIVES_DISK ? "a reboot (a file)" : "the processes, until reboot");
	if (c->measured) {
		fmt_time(c->rtt_ns, t, sizeof(t));
		fmt_rate(c->rate, rt, sizeof(rt));
		snprintf(buf + n, cap - (size_t)n, "; here: %s round trip, %s msg/s at %zu B", t, rt,
			 c->fig_size);
	}
}

/* ---- output ------------------------------------------------------------------------ */

static void print_text(const struct needs *nd, const struct cand *cs, int n, const char *figs)
{
	char url[128], why[512];
	int k = 0;
	for (int i = 0; i < n; i++)
		k += !cs[i].why_not[0];
	printf("%d transport%s fit%s (figures: %s):\n", k, k == 1 ? "" : "s", k == 1 ? "s" : "",
	       figs);
	for (int i = 0, j = 1; i < n; i++) {
		if (cs[i].why_not[0])
			continue;
		suggest(nd, &cs[i], url, sizeof(url));
		reason(nd, &cs[i], why, sizeof(why));
		printf("%2d. %-26s %s\n", j++, url, why);
	}
	if (k < n)
		printf("\nleft out:\n");
	for (int i = 0; i < n; i++)
		if (cs[i].why_not[0])
			printf("    %-26s %s\n", cs[i].label, cs[i].why_not);
}

static void print_json(const struct needs *nd, const struct cand *cs, int n, const char *figs)
{
	char url[128], why[512];
	printf("{\"figures\": ");
	cli_json_str(stdout, figs);
	printf(", \"recommended\": [");
	for (int i = 0, first = 1; i < n; i++) {
		if (cs[i].why_not[0])
			continue;
		suggest(nd, &cs[i], url, sizeof(url));
		reason(nd, &cs[i], why, sizeof(why));
		printf("%s\n  {\"url\": ", first ? "" : ",");
		first = 0;
		cli_json_str(stdout, url);
		printf(", \"table_url\": ");
		cli_json_str(stdout, cs[i].label);
		printf(", \"bench\": ");
		if (cs[i].bench[0])
			cli_json_str(stdout, cs[i].bench);
		else
			printf("null"); /* no row of the benchmark measures it */
		printf(", \"reason\": ");
		cli_json_str(stdout, why);
		if (cs[i].measured)
			printf(", \"rtt_ns\": %.0f, \"msgs_per_s\": %.1f, \"size\": %zu", cs[i].rtt_ns,
			       cs[i].rate, cs[i].fig_size);
		printf("}");
	}
	printf("],\n \"left_out\": [");
	for (int i = 0, first = 1; i < n; i++) {
		if (!cs[i].why_not[0])
			continue;
		printf("%s\n  {\"table_url\": ", first ? "" : ",");
		first = 0;
		cli_json_str(stdout, cs[i].label);
		printf(", \"why\": ");
		cli_json_str(stdout, cs[i].why_not);
		printf("}");
	}
	printf("]}\n");
}

/* ---- options ------------------------------------------------------------------------ */

/* "64K", "1M", "4096" */
static bool parse_bytes(const char *s, unsigned long long *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return false;
	unsigned shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (*end || v > (1ULL << 40) >> shift)
		return false;
	*ret = v << shift;
	return true;
}

static bool parse_pos(const char *s, double *ret)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0))
		return false;
	*ret = v;
	return true;
}

static int parse(int argc, char **argv, struct needs *nd)
{
	enum { O_RELATED = 256, O_HOSTS, O_PERSIST, O_SIZE, O_RATE, O_LATENCY, O_FANOUT, O_WRITERS,
	       O_TOOLS, O_RELIABLE, O_BENCH, O_MEASURE, O_JSON };
	static const struct option lo[] = {
		{ "related", no_argument, 0, O_RELATED },   { "hosts", required_argument, 0, O_HOSTS },
		{ "persist", no_argument, 0, O_PERSIST },   { "size", required_argument, 0, O_SIZE },
		{ "rate", required_argument, 0, O_RATE },   { "latency", required_argument, 0, O_LATENCY },
		{ "fan-out", no_argument, 0, O_FANOUT },    { "many-writers", no_argument, 0, O_WRITERS },
		{ "language-agnostic", no_argument, 0, O_TOOLS },
		{ "reliable", no_argument, 0, O_RELIABLE }, { "bench", required_argument, 0, O_BENCH },
		{ "measure", no_argument, 0, O_MEASURE },   { "json", no_argument, 0, O_JSON },
		{ "help", no_argument, 0, 'h' },            { 0, 0, 0, 0 },
	};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case O_RELATED: nd->related = true; break;
		case O_PERSIST: nd->persist = true; break;
		case O_FANOUT: nd->fanout = true; break;
		case O_WRITERS: nd->many_writers = true; break;
		case O_TOOLS: nd->tools = true; break;
		case O_RELIABLE: nd->reliable = true; break;
		case O_MEASURE: nd->measure = true; break;
		case O_JSON: nd->json = true; break;
		case O_BENCH: nd->bench_file = optarg; break;
		case O_HOSTS:
			if (!cli_parse_long(optarg, 1, 1000000, &nd->hosts))
				return cli_usage("advise", "--hosts takes a number of machines, not '%s'", optarg);
			break;
		case O_SIZE:
			if (!parse_bytes(optarg, &nd->size))
				return cli_usage("advise", "--size takes bytes (4096, 64K, 1M), not '%s'", optarg);
			break;
		case O_RATE:
			if (!parse_pos(optarg, &nd->rate))
				return cli_usage("advise", "--rate takes messages per second, not '%s'", optarg);
			break;
		case O_LATENCY:
			if (!parse_pos(optarg, &nd->latency_us))
				return cli_usage("advise", "--latency takes microseconds, not '%s'", optarg);
			break;
		case 'h': help(stdout); return -1;
		default: return cli_usage("advise", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("advise", "unexpected '%s' (needs are options)", argv[optind]);
	if (nd->measure && nd->bench_file)
		return cli_usage("advise", "--bench and --measure: choose one");
	if ((nd->latency_us > 0 || nd->rate > 0) && !nd->measure && !nd->bench_file)
		return cli_usage("advise", "--latency and --rate need figures: add --measure, or "
					   "--bench FILE from 'ipcx bench --json FILE'");
	return 0;
}

int cli_advise(int argc, char **argv)
{
	struct needs nd = { .hosts = 1 };
	int r = parse(argc, argv, &nd);
	if (r)
		return r < 0 ? CLI_OK : r;
	struct cand cs[MAXCAND];
	int n = load_cands(cs, MAXCAND);
	if (n == 0)
		return cli_fail(-EBADMSG, "cannot read the transport table built into this program");
	for (int i = 0; i < n; i++)
		judge_facts(&nd, &cs[i]);
	char figs[PATH_MAX + 32] = "none";
	char tmp[] = "/tmp/ipcx-advise-XXXXXX";
	const char *file = nd.bench_file;
	if (nd.measure) {
		int fd = mkstemp(tmp);
		if (fd < 0)
			return cli_fail(-errno, "cannot make a temporary file");
		close(fd);
		r = measure(cs, n, nd.size, tmp);
		file = r > 0 ? tmp : NULL;
		if (r <= 0)
			unlink(tmp);
		if (r < 0)
			return cli_fail(r, "the measurement (ipcx bench) failed");
		if (r == 0)
			snprintf(figs, sizeof(figs), "none: the benchmark measures no candidate");
	}
	if (file) {
		r = load_figures(file, cs, n, nd.size);
		if (nd.measure)
			unlink(tmp);
		if (r < 0)
			return cli_fail(r, "cannot read benchmark results from %s", file);
		snprintf(figs, sizeof(figs), "%s", nd.measure ? "measured now" : file);
	}
	for (int i = 0; i < n; i++)
		judge_figures(&nd, &cs[i]);
	sort_needs = &nd;
	qsort(cs, (size_t)n, sizeof(cs[0]), by_rank);
	int fit = 0;
	for (int i = 0; i < n; i++)
		fit += !cs[i].why_not[0];
	if (nd.json)
		print_json(&nd, cs, n, figs);
	else
		print_text(&nd, cs, n, figs);
	if (!fit) {
		fprintf(stderr, "ipcx: no transport meets every need; each one left out says which "
				"need it breaks\n");
		return CLI_FAIL;
	}
	return CLI_OK;
}
