/*
 * Errors: a negative errno value, and a detail in words for
 * ipcx_errdetail() (per thread) saying what was wrong with what.
 */
#ifndef IPCX_CORE_ERROR_H
#define IPCX_CORE_ERROR_H

/* Record a detail for ipcx_errdetail() and return err (a negative errno). */
int ipcx__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget the detail of an earlier failure. */
void ipcx__clear_detail(void);

#endif
