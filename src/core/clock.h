/*
 * Timeouts and deadlines.  A public function takes a timeout in
 * milliseconds (-1 forever, 0 never wait); inside, a wait runs to a
 * deadline on CLOCK_MONOTONIC, so that a wait that is interrupted and
 * restarted never waits longer in all than it was asked to.
 */
#ifndef IPCX_CORE_CLOCK_H
#define IPCX_CORE_CLOCK_H

#include <stdint.h>

/*
 * Every public function that takes a timeout checks it first: -1, 0 or a
 * positive number of milliseconds; any other negative value is -EINVAL
 * (with a detail), never taken for "forever".
 */
int ipcx__check_timeout(int timeout_ms);
/*
 * A deadline in CLOCK_MONOTONIC nanoseconds; -1 means none (wait forever)
 * and 0 means do not wait at all (a timeout of 0).
 */
int64_t ipcx__deadline(int timeout_ms);
/* Milliseconds left until deadline for poll(): -1 forever, 0 when passed. */
int ipcx__remaining_ms(int64_t deadline);
int64_t ipcx__now_ns(void);

#endif
