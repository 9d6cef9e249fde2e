/* The pattern layer's check of a timeout argument, as the library's own. */
#ifndef IPCX_PATTERN_TIMEOUT_H
#define IPCX_PATTERN_TIMEOUT_H

#include <errno.h>
#include <ipcx.h>

/* 0, or -EINVAL for a negative timeout other than -1 (with a detail). */
static inline int pattern_check_timeout(int timeout_ms)
{
	if (timeout_ms >= -1)
		return 0;
	return ipcx_errdetail_set(-EINVAL, "timeout %d ms: want -1 (wait forever), 0 (do not "
				  "wait) or a number of milliseconds", timeout_ms);
}

#endif
