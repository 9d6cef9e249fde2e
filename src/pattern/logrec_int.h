/*
 * A log record as writers put it into the log's channel (src/pattern/log.c)
 * and the drain takes it out (logd.c): a fixed header, the program name,
 * the message.  One host, so host byte order.  The drain trusts none of it:
 * log_rec_check() is the only way from bytes to a record.
 */
#ifndef IPCX_PATTERN_LOGREC_H
#define IPCX_PATTERN_LOGREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LOG_REC_MAGIC 0x314c5849u /* "IXL1" */
#define LOG_REC_TRUNC 0x01u       /* the message was cut to fit the log's largest record */
#define LOG_REC_DROPS 0x02u       /* no message: it reports the writer's drops (at close) */
#define LOG_REC_FLAGS (LOG_REC_TRUNC | LOG_REC_DROPS)
#define LOG_NAME_MAX  64u         /* program name bytes */

struct log_rec_hdr {
	uint32_t magic;
	uint8_t level;    /* 0 (emerg) .. 7 (debug), as syslog's */
	uint8_t flags;    /* LOG_REC_* */
	uint8_t name_len; /* bytes of program name after the header */
	uint8_t pad;
	uint32_t pid, tid;
	uint64_t wall_ns; /* CLOCK_REALTIME */
	uint64_t mono_ns; /* CLOCK_MONOTONIC */
	uint64_t dropped; /* this writer's records dropped since its last record */
};

#define LOG_REC_HDR sizeof(struct log_rec_hdr)
_Static_assert(LOG_REC_HDR == 40, "the record header is part of the format");

/* A record, checked: pointers into the bytes it came from. */
struct log_rec {
	struct log_rec_hdr h;
	const char *name, *msg;
	size_t name_len, msg_len;
};

/* NULL when the bytes are a well-formed record (filled into *rec), else why not. */
static inline const char *log_rec_check(const void *buf, size_t len, struct log_rec *rec)
{
	if (len < LOG_REC_HDR)
		return "shorter than a record header";
	memcpy(&rec->h, buf, LOG_REC_HDR);
	if (rec->h.magic != LOG_REC_MAGIC)
		return "not a log record";
	if (rec->h.level > 7 || (rec->h.flags & ~LOG_REC_FLAGS) || rec->h.pad)
		return "bad level or flags";
	if (rec->h.name_len > LOG_NAME_MAX || rec->h.name_len > len - LOG_REC_HDR)
		return "bad name length";
	rec->name = (const char *)buf + LOG_REC_HDR;
	rec->name_len = rec->h.name_len;
	rec->msg = rec->name + rec->name_len;
	rec->msg_len = len - LOG_REC_HDR - rec->name_len;
	if ((rec->h.flags & LOG_REC_DROPS) && (rec->msg_len || !rec->h.dropped))
		return "a drop report with a message, or with no drops";
	return NULL;
}

/*
 * The URL a writer or the drain opens: a ring is made with policy=drop
 * (block with block) unless the URL chose.  A string to free, or NULL.
 */
char *ipcx__log_url(const char *url, bool block);
/* shm:, sysvshm:, mmap: (reserve/commit and read ahead). */
bool ipcx__log_is_ring(const char *url);

#endif
