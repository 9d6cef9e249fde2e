/*
 * Rendering log records as lines (logfmt_int.h).  Everything in a record came
 * from a writer that may be buggy or hostile: its text is escaped (no line
 * breaks, no control characters, valid UTF-8 in JSON), its fields are
 * printed as numbers, and a record that is not well-formed becomes one line
 * saying so.  Nothing here depends on the time of rendering or the locale.
 */
#include "logfmt_int.h"

#include "logrec_int.h"

#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_FORMAT "%t %n[%p/%T] %l: %s"

int ipcx__logfmt_parse(const char *format, bool json, struct logfmt *f)
{
	memset(f, 0, sizeof(*f));
	f->json = json;
	const char *s = format ? format : DEFAULT_FORMAT;
	while (*s) {
		if (f->n == LOGFMT_MAX)
			return -E2BIG;
		if (*s == '%') {
			if (!strchr("tmlnpTds%", s[1]) || !s[1])
				return -EINVAL;
			f->part[f->n].kind = s[1];
			s += 2;
		} else {
			size_t k = strcspn(s, "%");
			f->part[f->n].text = s;
			f->part[f->n].len = k;
			s += k;
		}
		f->n++;
	}
	return 0;
}

/* ---- the buffer ---------------------------------------------------------------- */

/* The callers make room first: these never fail. */
static void put(struct pat_bytes *b, const char *s, size_t n)
{
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void putc1(struct pat_bytes *b, char c)
{
	b->p[b->len++] = c;
}

static void put_u64(struct pat_bytes *b, uint64_t v)
{
	char d[20];
	int n = 0;
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		putc1(b, d[--n]);
}

/* v as exactly nine digits (the nanoseconds of a time). */
static void put_ns9(struct pat_bytes *b, uint32_t v)
{
	for (int i = 8; i >= 0; i--) {
		b->p[b->len + (size_t)i] = (char)('0' + v % 10);
		v /= 10;
	}
	b->len += 9;
}

static const char hex[] = "0123456789abcdef";

/* Text: control bytes and DEL escaped, so a record is one line whatever it holds. */
static void put_text(struct pat_bytes *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t run = 0;
		while (i + run < n && (unsigned char)s[i + run] >= 0x20 && s[i + run] != 0x7f)
			run++;
		put(b, s + i, run); /* the plain run in one copy */
		if ((i += run) == n)
			break;
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' || c == '\t' || c == '\r') {
			putc1(b, '\\');
			putc1(b, c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
		} else {
			put(b, "\\x", 2);
			putc1(b, hex[c >> 4]);
			putc1(b, hex[c & 15]);
		}
	}
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k = c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
	if (!k || k > n)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong, surrogate and past-U+10FFFF forms are not UTF-8. */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
		return 0;
	return k;
}

/* A JSON string, quoted: escaped, and valid UTF-8 (a bad byte is U+FFFD). */
static void put_json(struct pat_bytes *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	putc1(b, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		if (c == '"' || c == '\\') {
			putc1(b, '\\');
			putc1(b, (char)c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			put(b, "\\u00", 4);
			putc1(b, hex[c >> 4]);
			putc1(b, hex[c & 15]);
			i++;
		} else if (c < 0x80) {
			putc1(b, (char)c);
			i++;
		} else {
			size_t k = utf8_len(u + i, n - i);
			if (k) {
				put(b, s + i, k);
				i += k;
			} else {
				put(b, "\\ufffd", 6);
				i++;
			}
		}
	}
	putc1(b, '"');
}

/* Bytes that rendering a record of n bytes may take (two lines of the format). */
static size_t worst(const struct logfmt *f, size_t n)
{
	if (f->json)
		return 6 * n + 512;
	size_t w = 1;
	for (int i = 0; i < f->n; i++) {
		char k = f->part[i].kind;
		w += k == 0 ? f->part[i].len : k == 's' ? 4 * n + 64 : k == 'n' ? 4 * LOG_NAME_MAX : 48;
	}
	return 2 * w;
}

/* ---- fields ---------------------------------------------------------------------- */

/* "2026-11-24T07:31:00.123456789Z" (UTC), the second's part made once per second. */
static void put_time(struct pat_bytes *b, struct logclock *clk, uint64_t ns)
{
	int64_t sec = (int64_t)(ns / 1000000000u);
	if (sec != clk->sec || !clk->len) {
		time_t t = (time_t)sec;
		struct tm tm;
		clk->len = gmtime_r(&t, &tm) ? strftime(clk->text, sizeof(clk->text),
							  "%Y-%m-%dT%H:%M:%S", &tm)
					     : 0;
		if (!clk->len)
			clk->len = (size_t)snprintf(clk->text, sizeof(clk->text), "@%lld",
						    (long long)sec);
		clk->sec = sec;
	}
	put(b, clk->text, clk->len);
	putc1(b, '.');
	put_ns9(b, (uint32_t)(ns % 1000000000u));
	putc1(b, 'Z');
}

static void put_mono(struct pat_bytes *b, uint64_t ns)
{
	put_u64(b, ns / 1000000000u);
	putc1(b, '.');
	put_ns9(b, (uint32_t)(ns % 1000000000u));
}

/* One text line after the format; msg replaces the record's message (a drop line). */
static void text_line(const struct logfmt *f, struct logclock *clk, uint64_t id,
		      const struct log_rec *r, int level, const char *msg, size_t msg_len,
		      bool cut, struct pat_bytes *b)
{
	for (int i = 0; i < f->n; i++) {
		switch (f->part[i].kind) {
		case 0: put(b, f->part[i].text, f->part[i].len); break;
		case 't': put_time(b, clk, r->h.wall_ns); break;
		case 'm': put_mono(b, r->h.mono_ns); break;
		case 'l': {
			const char *l = ipcx_log_level_name(level);
			put(b, l, strlen(l));
			break;
		}
		case 'n': put_text(b, r->name, r->name_len); break;
		case 'p': put_u64(b, r->h.pid); break;
		case 'T': put_u64(b, r->h.tid); break;
		case 'd': put_u64(b, id); break;
		case 's':
			put_text(b, msg, msg_len);
			if (cut)
				put(b, " [truncated]", 12);
			break;
		default: putc1(b, '%'); break;
		}
	}
	putc1(b, '\n');
}

static void json_line(struct logclock *clk, uint64_t id, const struct log_rec *r,
		      struct pat_bytes *b)
{
	put(b, "{\"id\":", 6);
	put_u64(b, id);
	put(b, ",\"time\":\"", 9);
	put_time(b, clk, r->h.wall_ns);
	put(b, "\",\"mono_ns\":", 12);
	put_u64(b, r->h.mono_ns);
	put(b, ",\"level\":\"", 10);
	const char *l = ipcx_log_level_name(r->h.level);
	put(b, l, strlen(l));
	put(b, "\",\"prog\":", 9);
	put_json(b, r->name, r->name_len);
	put(b, ",\"pid\":", 7);
	put_u64(b, r->h.pid);
	put(b, ",\"tid\":", 7);
	put_u64(b, r->h.tid);
	if (r->h.dropped) {
		put(b, ",\"dropped\":", 11);
		put_u64(b, r->h.dropped);
	}
	if (r->h.flags & LOG_REC_TRUNC)
		put(b, ",\"truncated\":true", 17);
	if (!(r->h.flags & LOG_REC_DROPS)) {
		put(b, ",\"msg\":", 7);
		put_json(b, r->msg, r->msg_len);
	}
	put(b, "}\n", 2);
}

static void invalid_line(const struct logfmt *f, uint64_t id, size_t len, const char *why,
			 struct pat_bytes *b)
{
	char line[160];
	int n = f->json ? snprintf(line, sizeof(line),
				   "{\"id\":%llu,\"invalid\":\"%s\",\"bytes\":%zu}\n",
				   (unsigned long long)id, why, len)
			: snprintf(line, sizeof(line), "ipcx logd: invalid record %llu (%zu bytes): %s\n",
				   (unsigned long long)id, len, why);
	put(b, line, (size_t)n);
}

int ipcx__logfmt_record(const struct logfmt *f, struct logclock *clk, uint64_t id,
			const void *rec, size_t len, struct pat_bytes *b, uint64_t *dropped)
{
	if (pat_bytes_room(b, worst(f, len)) < 0)
		return -ENOMEM;
	struct log_rec r;
	const char *why = log_rec_check(rec, len, &r);
	if (why) {
		invalid_line(f, id, len, why, b);
		return 1;
	}
	*dropped += r.h.dropped;
	if (f->json) {
		json_line(clk, id, &r, b);
		return 0;
	}
	if (r.h.dropped) {
		char m[64];
		int n = snprintf(m, sizeof(m), "%llu record%s dropped", (unsigned long long)r.h.dropped,
				 r.h.dropped == 1 ? "" : "s");
		text_line(f, clk, id, &r, IPCX_LOG_WARNING, m, (size_t)n, false, b);
	}
	if (!(r.h.flags & LOG_REC_DROPS))
		text_line(f, clk, id, &r, r.h.level, r.msg, r.msg_len, r.h.flags & LOG_REC_TRUNC, b);
	return 0;
}
