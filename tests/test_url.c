/* The URL parser: a table of good and bad URLs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <unistd.h>

#include "core/record.h"
#include "core/url.h"
#include "tsupport.h"

struct good {
	const char *url, *scheme, *body;
	int nopts;
};

static const struct good goods[] = {
	{ "unix:/tmp/a", "unix", "/tmp/a", 0 },
	{ "unix:///tmp/a", "unix", "/tmp/a", 0 },
	{ "UNIX:/tmp/a", "unix", "/tmp/a", 0 },
	{ "unix:@name", "unix", "@name", 0 },
	{ "tcp://127.0.0.1:80", "tcp", "127.0.0.1:80", 0 },
	{ "tcp://[::1]:80?framing=lines", "tcp", "[::1]:80", 1 },
	{ "fifo:/tmp/f?max=100&mode=0640", "fifo", "/tmp/f", 2 },
	{ "fd:3", "fd", "3", 0 },
	{ "mq:/q?", "mq", "/q", 0 },
};

Test(url, good)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		struct ipcx__url u;
		int r = ipcx__url_parse(goods[i].url, &u);
		cr_assert_eq(r, 0, "%s: %d %s", goods[i].url, r, ipcx_errdetail());
		cr_expect_str_eq(u.scheme, goods[i].scheme);
		cr_expect_str_eq(u.body, goods[i].body);
		cr_expect_eq(u.nopts, goods[i].nopts, "%s", goods[i].url);
	}
}

struct bad {
	const char *url, *detail; /* detail: a word the message must contain */
};

static const struct bad bads[] = {
	{ "", "no scheme" },
	{ "noscheme", "no scheme" },
	{ ":/x", "scheme" },
	{ "1tcp://h:1", "scheme" },
	{ "thisschemeistoolong:/x", "scheme" },
	{ "unix:/x?novalue", "malformed option" },
	{ "unix:/x?=v", "malformed option" },
	{ "unix:/x?a=1&a=2", "twice" },
};

Test(url, bad)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct ipcx__url u;
		int r = ipcx__url_parse(bads[i].url, &u);
		cr_expect_eq(r, -EINVAL, "%s gave %d", bads[i].url, r);
		cr_expect(strstr(ipcx_errdetail(), bads[i].detail), "%s: detail '%s' lacks '%s'",
			  bads[i].url, ipcx_errdetail(), bads[i].detail);
	}
}

struct hp {
	const char *url;
	int err;
	const char *host;
	unsigned port;
};

static const struct hp hps[] = {
	{ "tcp://127.0.0.1:8080", 0, "127.0.0.1", 8080 },
	{ "tcp://[::1]:9", 0, "::1", 9 },
	{ "tcp://localhost:0", 0, "localhost", 0 },
	{ "tcp://h:65535", 0, "h", 65535 },
	{ "tcp://h:65536", -EINVAL, "out of range", 0 },
	{ "tcp://h:-1", -EINVAL, "malformed port", 0 },
	{ "tcp://h:", -EINVAL, "malformed port", 0 },
	{ "tcp://h:12x", -EINVAL, "malformed port", 0 },
	{ "tcp://h", -EINVAL, "host:port", 0 },
	{ "tcp://:80", -EINVAL, "no host", 0 },
	{ "tcp://::1:80", -EINVAL, "brackets", 0 },
	{ "tcp://[::1]80", -EINVAL, "[ipv6-address]:port", 0 },
	{ "tcp://[zz]:80", -EINVAL, "IPv6", 0 },
	{ "tcp://a b:80", -EINVAL, "host name", 0 },
};

Test(url, hostport)
{
	for (size_t i = 0; i < sizeof(hps) / sizeof(hps[0]); i++) {
		struct ipcx__url u;
		char host[256];
		uint16_t port = 0;
		cr_assert_eq(ipcx__url_parse(hps[i].url, &u), 0);
		int r = ipcx__url_hostport(&u, host, sizeof(host), &port);
		cr_expect_eq(r, hps[i].err, "%s gave %d", hps[i].url, r);
		if (r == 0) {
			cr_expect_str_eq(host, hps[i].host);
			cr_expect_eq(port, hps[i].port);
		} else {
			cr_expect(strstr(ipcx_errdetail(), hps[i].host), "%s: '%s'", hps[i].url,
				  ipcx_errdetail());
		}
	}
}

Test(url, options)
{
	static const char *const framings[] = { "len", "lines", "raw", NULL };
	enum { MAX, MODE, KEEP, FRAMING, N, ABSENT, RTYPE, NOPTS };
	static const struct ipcx__opt t[NOPTS + 1] = {
		[MAX] = IPCX__UINT("max", 1, 1 << 20, 1),
		[MODE] = IPCX__MODE("mode", 0600),
		[KEEP] = IPCX__BOOL("keep", false),
		[FRAMING] = IPCX__ENUM("framing", framings, 0),
		[N] = IPCX__UINT("n", 0, 10, 7),
		[ABSENT] = IPCX__UINT("absent", 0, 10, 9),
		[RTYPE] = IPCX__INT("rtype", -100, 100, 0),
	};
	struct ipcx__url u;

	/* A value that is no number: -EINVAL, and nothing is written. */
	cr_assert_eq(ipcx__url_parse("x:/p?max=4096&mode=0640&keep=1&framing=lines&n=abc", &u), 0);
	memset(u.val, 0xa5, sizeof(u.val));
	cr_expect_eq(ipcx__url_opts(&u, t), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "not a number"));
	cr_expect_eq(u.val[N].v, 0xa5a5a5a5a5a5a5a5ull, "output untouched on failure");
	cr_expect_eq(u.val[MAX].v, 0xa5a5a5a5a5a5a5a5ull, "output untouched on failure");

	cr_assert_eq(ipcx__url_parse("x:/p?max=4096&mode=0640&keep=1&framing=lines&rtype=-5", &u), 0);
	cr_assert_eq(ipcx__url_opts(&u, t), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx__opt(&u, MAX), 4096);
	cr_expect(ipcx__opt_set(&u, MAX));
	cr_expect_eq(ipcx__opt(&u, MODE), 0640);
	cr_expect_eq(ipcx__opt(&u, KEEP), 1);
	cr_expect_eq(ipcx__opt(&u, FRAMING), 1);
	cr_expect_eq((int64_t)ipcx__opt(&u, RTYPE), -5);
	cr_expect_eq(ipcx__opt(&u, ABSENT), 9, "an absent option has the table's default");
	cr_expect(!ipcx__opt_set(&u, ABSENT));

	/* A narrower range, known only later: the same words as the table's. */
	cr_expect_eq(ipcx__opt_within(&u, MAX, 1, 1 << 20), 0);
	cr_expect_eq(ipcx__opt_within(&u, MAX, 1, 100), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "option max: 4096 is out of range (1 to 100)"), "%s",
		  ipcx_errdetail());

	/* Out of the table's range, and out of the table. */
	cr_assert_eq(ipcx__url_parse("x:/p?n=11", &u), 0);
	cr_expect_eq(ipcx__url_opts(&u, t), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "out of range (0 to 10)"), "%s", ipcx_errdetail());
	cr_assert_eq(ipcx__url_parse("x:/p?rtype=-101", &u), 0);
	cr_expect_eq(ipcx__url_opts(&u, t), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "out of range (-100 to 100)"), "%s", ipcx_errdetail());
	cr_assert_eq(ipcx__url_parse("x:/p?colour=red&n=3", &u), 0);
	cr_expect_eq(ipcx__url_opts(&u, t), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "unknown option 'colour' for x:"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx__url_opts_lenient(&u, t), 0, "lenient: other options are passed over");
	cr_expect_eq(ipcx__opt(&u, N), 3);
}

/* A text option: its length is checked; its text is the URL's; absent is NULL. */
Test(url, text_options)
{
	enum { NAME, OTHER, NOPTS };
	static const struct ipcx__opt t[NOPTS + 1] = {
		[NAME] = IPCX__STR("name", 1, 8),
		[OTHER] = IPCX__STR("other", 0, 8),
	};
	struct ipcx__url u;
	cr_assert_eq(ipcx__url_parse("x:/p?name=workers", &u), 0);
	cr_assert_eq(ipcx__url_opts(&u, t), 0, "%s", ipcx_errdetail());
	cr_expect_str_eq(ipcx__opt_str(&u, NAME), "workers");
	cr_expect(ipcx__opt_set(&u, NAME));
	cr_expect_null(ipcx__opt_str(&u, OTHER), "an absent text option is NULL");
	cr_expect(!ipcx__opt_set(&u, OTHER));
	cr_assert_eq(ipcx__url_parse("x:/p?name=", &u), 0);
	cr_expect_eq(ipcx__url_opts(&u, t), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "option name: want 1 to 8 characters, not 0"), "%s",
		  ipcx_errdetail());
	cr_assert_eq(ipcx__url_parse("x:/p?name=123456789", &u), 0);
	cr_expect_eq(ipcx__url_opts(&u, t), -EINVAL);
}

/* A malformed table is refused, by the parser and by the registry's check. */
Test(url, option_tables)
{
	static const struct ipcx__opt twice[] = { IPCX__BOOL("a", 0), IPCX__BOOL("a", 0), { 0 } };
	static const struct ipcx__opt no_words[] = { IPCX__ENUM("e", NULL, 0), { 0 } };
	struct ipcx__opt many[IPCX__OPTS_MAX + 2];
	char names[IPCX__OPTS_MAX + 1][8];
	for (int i = 0; i <= IPCX__OPTS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "o%d", i);
		many[i] = (struct ipcx__opt)IPCX__BOOL(names[i], 0);
	}
	many[IPCX__OPTS_MAX + 1] = (struct ipcx__opt){ 0 };
	cr_expect_eq(ipcx__opts_count(NULL), 0);
	cr_expect_eq(ipcx__opts_count(many + 1), IPCX__OPTS_MAX);
	cr_expect_eq(ipcx__opts_count(many), -1);
	cr_expect_eq(ipcx__opts_count(twice), -1);
	cr_expect_eq(ipcx__opts_count(no_words), -1);
	struct ipcx__url u;
	cr_assert_eq(ipcx__url_parse("x:/p", &u), 0);
	cr_expect_eq(ipcx__url_opts(&u, twice), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "malformed"), "%s", ipcx_errdetail());
}

Test(url, path)
{
	struct ipcx__url u;
	const char *p = NULL;
	cr_assert_eq(ipcx__url_parse("unix:relative/x", &u), 0);
	cr_expect_eq(ipcx__url_path(&u, 108, &p), -EINVAL);
	char long_url[300] = "unix:/";
	memset(long_url + 6, 'a', 200);
	cr_assert_eq(ipcx__url_parse(long_url, &u), 0);
	cr_expect_eq(ipcx__url_path(&u, 108, &p), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "longer than 107"));
}

Test(url, public_api_rejects)
{
	ipcx_chan *c = (ipcx_chan *)0x1;
	cr_expect_eq(ipcx_dial("nosuch:/x", 0, &c), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "unknown scheme 'nosuch'"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_dial("nosuch:/x", 0x80, &c), -EINVAL);
	cr_expect(strstr(ipcx_errdetail(), "unknown flags"));
	cr_expect_eq(c, (ipcx_chan *)0x1, "output untouched on failure");
	cr_expect_eq(ipcx_close(NULL), 0);
	cr_expect_str_eq(ipcx_strerror(-EPIPE), "the peer has gone");
	cr_expect_str_eq(ipcx_strerror(-ENOENT), "No such file or directory");
}

/* A control character in a URL: refused, and echoed escaped in the detail. */
Test(url, control_characters)
{
	static const struct {
		const char *url, *shown;
	} ctl[] = {
		{ "unix:/tmp/d/s\nx", "unix:/tmp/d/s\\nx: a control character (\\n, byte 13)" },
		{ "fifo:/tmp/a\x01" "b", "fifo:/tmp/a\\x01b" },
		{ "shm:/x\ty", "shm:/x\\ty" },
		{ "mq:/q?mode=06\r00", "mq:/q?mode=06\\r00" },
		{ "\x1b[31munix:/x", "\\x1b[31munix:/x" },
		{ "sem:/del\x7f", "sem:/del\\x7f" },
	};
	for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
		struct ipcx__url u;
		cr_expect_eq(ipcx__url_parse(ctl[i].url, &u), -EINVAL, "case %zu", i);
		const char *d = ipcx_errdetail();
		cr_expect(strstr(d, ctl[i].shown), "case %zu: '%s' lacks '%s'", i, d, ctl[i].shown);
		cr_expect(strstr(d, "control character"), "case %zu: %s", i, d);
		for (const char *p = d; *p; p++)
			cr_expect((unsigned char)*p >= 0x20 && *p != 0x7f,
				  "case %zu: the detail holds byte 0x%02x", i, (unsigned char)*p);
	}
	struct ipcx__url u;
	cr_expect_eq(ipcx__url_parse("unix:/tmp/naïve ✓?max=10", &u), 0, "UTF-8 and spaces are fine");
}

/* Nothing is made for such a URL: no file, no object, no creator record. */
Test(url, control_characters_make_nothing)
{
	const char *path = t_path("s\nx");
	static const char *const schemes[] = { "unix", "unixgram", "fifo", "mmap", "file" };
	char u[600];
	ipcx_chan *c;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		snprintf(u, sizeof(u), "%s:%s", schemes[i], path);
		int r = ipcx_listen(u, 0, &c);
		cr_expect_eq(r, -EINVAL, "%s: listen gave %d", schemes[i], r);
		if (r == 0)
			ipcx_close(c);
		cr_expect_eq(access(path, F_OK), -1, "%s: a file was made", schemes[i]);
	}
	snprintf(u, sizeof(u), "shm:/%s\n", t_name());
	cr_expect_eq(ipcx_listen(u, 0, &c), -EINVAL);
	ipcx_region *rg;
	cr_expect_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &rg), -EINVAL);
	snprintf(u, sizeof(u), "sem:/%s\x01", t_name());
	ipcx_sem *s;
	cr_expect_eq(ipcx_sem_create(u, 1, 0, &s), -EINVAL);
	snprintf(u, sizeof(u), "unix:%s", path);
	cr_expect_eq(ipcx_obj_remove(u, 0), -EINVAL);
	/* No creator record names the folder (read as bytes: a record with a
	 * newline in its URL would not even parse). */
	char dir[4200], cmd[4400];
	cr_assert_eq(ipcx__record_dir(dir, sizeof(dir)), 0);
	snprintf(cmd, sizeof(cmd), "grep -rlF '%s' '%s'", t_tmpdir(), dir);
	FILE *f = popen(cmd, "r");
	cr_assert(f);
	char line[512];
	bool left = fgets(line, sizeof(line), f) != NULL;
	pclose(f);
	cr_expect(!left, "a creator record was left: %s", left ? line : "");
}

Test(url, sysv_keys)
{
	struct {
		const char *url;
		int err;
		unsigned key;
	} cases[] = {
		{ "sysvmq:42", 0, 42 },
		{ "sysvmq:0x7e001234", 0, 0x7e001234 },
		{ "sysvshm:0XFFFFFFFF", 0, 0xffffffffu },
		{ "sysvsem:0", -EINVAL, 0 },
		{ "sysvsem:0x0", -EINVAL, 0 },
		{ "sysvmq:-1", -EINVAL, 0 },
		{ "sysvmq:0x-1", -EINVAL, 0 },
		{ "sysvmq:+5", -EINVAL, 0 },
		{ "sysvmq:4294967296", -EINVAL, 0 },
		{ "sysvmq:12abc", -EINVAL, 0 },
		{ "sysvmq:0x", -EINVAL, 0 },
		{ "sysvmq:", -EINVAL, 0 },
		{ "sysvmq:12?proj=3", -EINVAL, 0 },
		{ "sysvmq:/tmp", -EINVAL, 0 },
		{ "sysvmq:/tmp?proj=0", -EINVAL, 0 },
		{ "sysvmq:/tmp?proj=256", -EINVAL, 0 },
		{ "sysvmq:/no/such/ipcxt-path?proj=1", -ENOENT, 0 },
	};
	/* proj= as the System V schemes take it (their tables have the same entry). */
	static const struct ipcx__opt proj[] = { IPCX__UINT("proj", 1, 255, 0), { 0 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ipcx__url u;
		key_t k = 77;
		cr_assert_eq(ipcx__url_parse(cases[i].url, &u), 0);
		int r = ipcx__url_opts(&u, proj);
		if (r == 0)
			r = ipcx__url_sysv_key(&u, ipcx__opt(&u, 0), &k);
		cr_expect_eq(r, cases[i].err, "%s gave %d (%s)", cases[i].url, r, ipcx_errdetail());
		if (r == 0)
			cr_expect_eq((unsigned)k, cases[i].key, "%s", cases[i].url);
		else
			cr_expect_eq(k, 77, "%s: output untouched", cases[i].url);
	}
	/* ftok of an existing path with a project id is the key ipcs shows. */
	struct ipcx__url u;
	key_t k;
	cr_assert_eq(ipcx__url_parse("sysvsem:/tmp?proj=7", &u), 0);
	cr_assert_eq(ipcx__url_opts(&u, proj), 0);
	cr_expect_eq(ipcx__url_sysv_key(&u, ipcx__opt(&u, 0), &k), 0);
	cr_expect_eq(k, ftok("/tmp", 7));
}
