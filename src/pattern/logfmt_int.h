/*
 * How the drain turns a record into lines (src/pattern/logfmt.c): text
 * after a format, or JSON.  Rendering is a pure function of the record and
 * its id, so that a drain that starts can render what the log still holds
 * and recognise the lines an earlier drain wrote (logd.c, "resuming").
 */
#ifndef IPCX_PATTERN_LOGFMT_H
#define IPCX_PATTERN_LOGFMT_H

#include "bytes_int.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGFMT_MAX 32 /* parts of a format */

struct logfmt {
	bool json;
	int n;
	struct {
		char kind;        /* 0: literal text; else the letter after '%' */
		const char *text; /* literal: into the format string */
		size_t len;
	} part[LOGFMT_MAX];
};


/* The second a time string was made for, and the string (one per drain). */
struct logclock {
	int64_t sec;
	char text[40];
	size_t len;
};

/* Parse a text format (NULL: the default); -EINVAL with a detail for a bad one. */
int ipcx__logfmt_parse(const char *format, bool json, struct logfmt *f);

/*
 * Append the lines of the record (len bytes, id) to b: one line, and one
 * before it saying how many records its writer dropped, if any (text; JSON
 * says it in a field).  A record that is not well-formed becomes one line
 * that says so.  Returns 0, 1 (it was not well-formed) or -ENOMEM.  The
 * drops it reported are added to *dropped.
 */
int ipcx__logfmt_record(const struct logfmt *f, struct logclock *clk, uint64_t id,
			const void *rec, size_t len, struct pat_bytes *b, uint64_t *dropped);

#endif
