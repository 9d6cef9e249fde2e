/* Descriptors: the small system-call helpers every transport uses. */
#ifndef IPCX_CORE_FD_H
#define IPCX_CORE_FD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * Wait until fd has any of events or the deadline (core/clock.h) passes.
 * Returns the revents (> 0), -ETIMEDOUT, -EAGAIN for deadline 0 (a timeout
 * of 0) when not ready, or -errno.  EINTR restarts with the time left.
 */
int ipcx__wait_fd(int fd, short events, int64_t deadline);

int ipcx__set_nonblock(int fd);
int ipcx__set_cloexec(int fd, bool on);
/* Close, keeping errno; ignores fd < 0. */
void ipcx__close_fd(int fd);

/*
 * writev() that never raises SIGPIPE, for pipes and FIFOs, where
 * MSG_NOSIGNAL does not exist.  Returns bytes written or -errno.
 */
ssize_t ipcx__writev_nosig(int fd, const struct iovec *iov, int n);

/*
 * Raise the capacity of pipe fd (F_SETPIPE_SZ) to hold `bytes`, as far as
 * /proc/sys/fs/pipe-max-size allows (1 MiB if it cannot be read), root
 * included; never lowers it.  Best effort: when the kernel refuses (the
 * user's pipe quota, EPERM) the pipe keeps the size it has, which only
 * makes a large message take more wake-ups.  Returns the capacity now, or
 * -errno when fd is not a pipe.
 */
int ipcx__pipe_fit(int fd, size_t bytes);

#endif
