/*
 * URL parsing: "scheme:body?key=value&key=value".  "scheme://body" and
 * "scheme:body" are the same, so "unix:///tmp/s" is "unix:/tmp/s".  The
 * parser knows the shape of URLs, not the transports: which options a scheme
 * takes, their types and ranges, come from its owner's table (core/url.h),
 * against which ipcx__url_opts() checks and parses them, once.
 */
#include "core/url.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <stdlib.h>
#include <string.h>

static int parse_options(struct ipcx__url *u, char *q)
{
	while (q && *q) {
		char *next = strchr(q, '&');
		if (next)
			*next++ = '\0';
		char *eq = strchr(q, '=');
		if (!eq || eq == q)
			return ipcx__fail(-EINVAL, "%s: malformed option '%s' (want key=value)",
					  u->orig, q);
		*eq = '\0';
		for (int i = 0; i < u->nopts; i++)
			if (strcmp(u->opt[i].key, q) == 0)
				return ipcx__fail(-EINVAL, "%s: option '%s' given twice", u->orig, q);
		if (u->nopts == IPCX__OPT_MAX)
			return ipcx__fail(-EINVAL, "%s: too many options", u->orig);
		u->opt[u->nopts].key = q;
		u->opt[u->nopts].val = eq + 1;
		u->nopts++;
		q = next;
	}
	return 0;
}

/*
 * The URL with its control characters written as escapes (\n, \t, \r,
 * \xHH), cut to fit cap: for a detail that is printed on one line.
 */
static void escape(const char *s, char *buf, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n' || c == '\t' || c == '\r')
			o += (size_t)snprintf(buf + o, cap - o, "\\%c",
					      c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
}

/*
 * A control character has no business in a name: it would make a file or
 * object that no listing shows plainly, break the one-line creator record
 * (so that `ipcx gc` could never read it), and garble the messages that
 * echo the URL.  Refused before anything is made.
 */
static int check_bytes(const char *url)
{
	for (const char *p = url; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f) {
			char e[256], one[8];
			escape(url, e, sizeof(e));
			escape((const char[]){ (char)c, '\0' }, one, sizeof(one));
			return ipcx__fail(-EINVAL, "%s: a control character (%s, byte %zu) cannot be "
					  "part of a URL", e, one, (size_t)(p - url));
		}
	}
	return 0;
}

int ipcx__url_parse(const char *url, struct ipcx__url *u)
{
	memset(u, 0, offsetof(struct ipcx__url, buf));
	if (!url)
		return ipcx__fail(-EINVAL, "no URL given");
	u->orig = url;
	size_t len = strlen(url);
	if (len >= sizeof(u->buf))
		return ipcx__fail(-EINVAL, "URL longer than %d bytes", IPCX__URL_MAX - 1);
	int r = check_bytes(url);
	if (r < 0)
		return r;
	memcpy(u->buf, url, len + 1);

	char *colon = strchr(u->buf, ':');
	if (!colon)
		return ipcx__fail(-EINVAL, "%s: no scheme (want scheme:address)", url);
	size_t slen = (size_t)(colon - u->buf);
	if (slen == 0 || slen >= sizeof(u->scheme) || !isalpha((unsigned char)u->buf[0]))
		return ipcx__fail(-EINVAL, "%s: malformed scheme", url);
	for (size_t i = 0; i < slen; i++) {
		unsigned char ch = (unsigned char)u->buf[i];
		if (!isalnum(ch) && ch != '+' && ch != '-' && ch != '.')
			return ipcx__fail(-EINVAL, "%s: malformed scheme", url);
		u->scheme[i] = (char)tolower(ch);
	}

	char *body = colon + 1;
	if (body[0] == '/' && body[1] == '/')
		body += 2;
	char *q = strchr(body, '?');
	if (q)
		*q++ = '\0';
	u->body = body;
	return parse_options(u, q);
}

/* ---- option tables ------------------------------------------------------------ */

int ipcx__opts_count(const struct ipcx__opt *t)
{
	int n = 0;
	for (; t && t[n].name; n++) {
		if (n == IPCX__OPTS_MAX || !t[n].name[0] ||
		    (t[n].type == IPCX__OPT_ENUM && !t[n].words))
			return -1;
		for (int k = 0; k < n; k++)
			if (strcmp(t[k].name, t[n].name) == 0)
				return -1;
	}
	return n;
}

static int range_fail(const struct ipcx__url *u, const char *name, const char *v,
		      uint64_t min, uint64_t max)
{
	return ipcx__fail(-EINVAL, "%s: option %s: %s is out of range (%llu to %llu)", u->orig,
			  name, v, (unsigned long long)min, (unsigned long long)max);
}

static int parse_uint(const struct ipcx__url *u, const struct ipcx__opt *o, const char *v,
		      uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 0);
	if (!*v || *end || errno || v[0] == '-')
		return ipcx__fail(-EINVAL, "%s: option %s: '%s' is not a number", u->orig, o->name, v);
	if (n < o->min || n > o->max)
		return range_fail(u, o->name, v, o->min, o->max);
	*ret = n;
	return 0;
}

static int parse_int(const struct ipcx__url *u, const struct ipcx__opt *o, const char *v,
		     uint64_t *ret)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || errno)
		return ipcx__fail(-EINVAL, "%s: option %s: '%s' is not a number", u->orig, o->name, v);
	if (n < (int64_t)o->min || n > (int64_t)o->max)
		return ipcx__fail(-EINVAL, "%s: option %s: %s is out of range (%lld to %lld)",
				  u->orig, o->name, v, (long long)(int64_t)o->min,
				  (long long)(int64_t)o->max);
	*ret = (uint64_t)(int64_t)n;
	return 0;
}

static int parse_bool(const struct ipcx__url *u, const struct ipcx__opt *o, const char *v,
		      uint64_t *ret)
{
	if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*ret = 1;
	else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
		*ret = 0;
	else
		return ipcx__fail(-EINVAL, "%s: option %s: '%s' is not 0 or 1", u->orig, o->name, v);
	return 0;
}

static int parse_mode(const struct ipcx__url *u, const struct ipcx__opt *o, const char *v,
		      uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long m = strtoul(v, &end, 8);
	if (!*v || *end || errno || m > 0777)
		return ipcx__fail(-EINVAL, "%s: option %s: '%s' is not an octal mode (0 to 0777)",
				  u->orig, o->name, v);
	*ret = m;
	return 0;
}

static int parse_enum(const struct ipcx__url *u, const struct ipcx__opt *o, const char *v,
		      uint64_t *ret)
{
	for (uint64_t i = 0; o->words[i]; i++)
		if (strcmp(v, o->words[i]) == 0) {
			*ret = i;
			return 0;
		}
	return ipcx__fail(-EINVAL, "%s: option %s: unknown value '%s'", u->orig, o->name, v);
}

/* A text option: its length must lie in [min, max]; what it holds is its owner's to check. */
static int parse_str(const struct ipcx__url *u, const struct ipcx__opt *o, const char *v,
		     struct ipcx__optval *ret)
{
	size_t n = strlen(v);
	if (n < o->min || n > o->max)
		return ipcx__fail(-EINVAL, "%s: option %s: want %llu to %llu characters, not %zu",
				  u->orig, o->name, (unsigned long long)o->min,
				  (unsigned long long)o->max, n);
	ret->s = v;
	return 0;
}

static int parse_value(const struct ipcx__url *u, const struct ipcx__opt *o, const char *v,
		       struct ipcx__optval *val)
{
	uint64_t *ret = &val->v;
	switch (o->type) {
	case IPCX__OPT_STR:
		return parse_str(u, o, v, val);
	case IPCX__OPT_UINT:
		return parse_uint(u, o, v, ret);
	case IPCX__OPT_INT:
		return parse_int(u, o, v, ret);
	case IPCX__OPT_BOOL:
		return parse_bool(u, o, v, ret);
	case IPCX__OPT_MODE:
		return parse_mode(u, o, v, ret);
	case IPCX__OPT_ENUM:
		return parse_enum(u, o, v, ret);
	}
	return -EINVAL;
}

/* The table's index of an option named in the URL, or -1. */
static int opt_index(const struct ipcx__opt *t, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(t[i].name, key) == 0)
			return i;
	return -1;
}

static int parse_opts(struct ipcx__url *u, const struct ipcx__opt *t, bool strict)
{
	int n = ipcx__opts_count(t);
	if (n < 0)
		return ipcx__fail(-EINVAL, "%s: the option table of %s: is malformed", u->orig,
				  u->scheme);
	struct ipcx__optval val[IPCX__OPTS_MAX];
	for (int i = 0; i < n; i++)
		val[i] = (struct ipcx__optval){ .v = t[i].def };
	for (int k = 0; k < u->nopts; k++) {
		int i = opt_index(t, n, u->opt[k].key);
		if (i < 0 && !strict)
			continue;
		if (i < 0)
			return ipcx__fail(-EINVAL, "%s: unknown option '%s' for %s:", u->orig,
					  u->opt[k].key, u->scheme);
		int r = parse_value(u, &t[i], u->opt[k].val, &val[i]);
		if (r < 0)
			return r;
		val[i].set = true;
	}
	memcpy(u->val, val, (size_t)n * sizeof(val[0]));
	u->opts = t;
	return 0;
}

int ipcx__url_opts(struct ipcx__url *u, const struct ipcx__opt *t)
{
	return parse_opts(u, t, true);
}

int ipcx__url_opts_lenient(struct ipcx__url *u, const struct ipcx__opt *t)
{
	return parse_opts(u, t, false);
}

/* The option's text as given in the URL (for messages), or "". */
static const char *given(const struct ipcx__url *u, const char *name)
{
	for (int k = 0; k < u->nopts; k++)
		if (strcmp(u->opt[k].key, name) == 0)
			return u->opt[k].val;
	return "";
}

int ipcx__opt_within(const struct ipcx__url *u, int i, uint64_t min, uint64_t max)
{
	if (u->val[i].v >= min && u->val[i].v <= max)
		return 0;
	const char *name = u->opts[i].name;
	return range_fail(u, name, given(u, name), min, max);
}

int ipcx__url_path(const struct ipcx__url *u, size_t cap, const char **ret)
{
	const char *p = u->body;
	if (p[0] != '/')
		return ipcx__fail(-EINVAL, "%s: want an absolute path after '%s:'", u->orig,
				  u->scheme);
	size_t n = strlen(p);
	if (n >= cap)
		return ipcx__fail(-EINVAL, "%s: path longer than %zu bytes", u->orig, cap - 1);
	*ret = p;
	return 0;
}

int ipcx__url_hostport(const struct ipcx__url *u, char *host, size_t hostcap,
		       uint16_t *port)
{
	const char *b = u->body, *portstr;
	size_t hlen;
	if (b[0] == '[') {
		const char *close = strchr(b, ']');
		if (!close || close[1] != ':')
			return ipcx__fail(-EINVAL, "%s: want [ipv6-address]:port", u->orig);
		b++;
		hlen = (size_t)(close - b);
		portstr = close + 2;
		struct in6_addr a6;
		char tmp[INET6_ADDRSTRLEN + 1];
		if (hlen == 0 || hlen >= sizeof(tmp))
			return ipcx__fail(-EINVAL, "%s: malformed IPv6 address", u->orig);
		memcpy(tmp, b, hlen);
		tmp[hlen] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return ipcx__fail(-EINVAL, "%s: malformed IPv6 address '%s'", u->orig, tmp);
	} else {
		const char *c = strrchr(b, ':');
		if (!c)
			return ipcx__fail(-EINVAL, "%s: want host:port", u->orig);
		if (memchr(b, ':', (size_t)(c - b)))
			return ipcx__fail(-EINVAL, "%s: put an IPv6 address in brackets: [addr]:port",
					  u->orig);
		hlen = (size_t)(c - b);
		portstr = c + 1;
		if (hlen == 0)
			return ipcx__fail(-EINVAL, "%s: no host before the port", u->orig);
		for (size_t i = 0; i < hlen; i++) {
			unsigned char ch = (unsigned char)b[i];
			if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
				return ipcx__fail(-EINVAL, "%s: malformed host name", u->orig);
		}
	}
	if (hlen >= hostcap)
		return ipcx__fail(-EINVAL, "%s: host name too long", u->orig);
	char *end;
	errno = 0;
	long p = strtol(portstr, &end, 10);
	if (!*portstr || *end || !isdigit((unsigned char)*portstr))
		return ipcx__fail(-EINVAL, "%s: malformed port '%s'", u->orig, portstr);
	if (errno || p < 0 || p > 65535)
		return ipcx__fail(-EINVAL, "%s: port %s out of range (0 to 65535)", u->orig, portstr);
	memcpy(host, b, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* A key as ipcs shows it: decimal or 0x hex, 32 bits, unsigned. */
static bool parse_key_number(const char *s, long long *ret)
{
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hex ? s + 2 : s;
	if (!isxdigit((unsigned char)*digits) || (!hex && !isdigit((unsigned char)*digits)))
		return false; /* no sign, no blanks: ipcs shows keys unsigned */
	char *end;
	errno = 0;
	long long k = (long long)strtoull(digits, &end, hex ? 16 : 10);
	if (*end || errno || k > (long long)UINT_MAX)
		return false;
	*ret = k;
	return true;
}

int ipcx__url_sysv_key(const struct ipcx__url *u, uint64_t proj, key_t *ret)
{
	const char *b = u->body;
	if (b[0] == '/') {
		if (!proj || proj > 255)
			return ipcx__fail(-EINVAL, "%s: a path needs ?proj=N (1 to 255)", u->orig);
		key_t k = ftok(b, (int)proj);
		if (k == -1)
			return ipcx__fail(-errno, "%s: ftok(%s)", u->orig, b);
		*ret = k;
		return 0;
	}
	if (proj)
		return ipcx__fail(-EINVAL, "%s: proj goes with a path, not a key", u->orig);
	long long k;
	if (!parse_key_number(b, &k))
		return ipcx__fail(-EINVAL, "%s: want %s:KEY (decimal or 0x hex) or %s:/path?proj=N",
				  u->orig, u->scheme, u->scheme);
	if (k == IPC_PRIVATE)
		return ipcx__fail(-EINVAL, "%s: key 0 is IPC_PRIVATE, which nobody else can open",
				  u->orig);
	*ret = (key_t)(int)(unsigned)k;
	return 0;
}
