/* Error words and the per-thread detail of the last failure. */
#include "core/error.h"

#include "ipcx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char detail[512];

IPCX_EXPORT const char *ipcx_version(void)
{
	return "0.1.0";
}

IPCX_EXPORT const char *ipcx_errdetail(void)
{
	return detail;
}

int ipcx__fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return err;
}

/* The same, for code built on the public API (src/pattern, wrappers). */
IPCX_EXPORT int ipcx_errdetail_set(int err, const char *fmt, ...)
	__attribute__((alias("ipcx__fail")));

void ipcx__clear_detail(void)
{
	detail[0] = '\0';
}

/* Words that fit what ipcx means by a code better than libc's do. */
static const struct {
	int err;
	const char *text;
} words[] = {
	{ EPIPE, "the peer has gone" },
	{ ETIMEDOUT, "timed out" },
	{ EMSGSIZE, "message too large for this channel" },
	{ EBADMSG, "corrupt data from the peer or shared memory" },
	{ EOWNERDEAD, "the previous owner died holding the lock" },
	{ EOPNOTSUPP, "not supported by this transport" },
	{ EPROTONOSUPPORT, "URL scheme not supported here" },
};

IPCX_EXPORT const char *ipcx_strerror(int err)
{
	if (err > 0)
		err = -err;
	if (err == 0)
		return "success";
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (words[i].err == -err)
			return words[i].text;
	/* strerrordesc_np is thread-safe and returns static text (glibc 2.32). */
	const char *s = strerrordesc_np(-err);
	return s ? s : "unknown error";
}
