/*
 * Processes: naming one without fear of pid reuse (pid + start time), the
 * process at the other end of a channel, and a descriptor that turns
 * readable when a process dies (a pidfd), so that a death is an event.
 */
#include "core/proc.h"

#include "core/error.h"
#include "core/fd.h"
#include "core/tran.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int ipcx__proc_stat(pid_t pid, char *state, uint64_t *ret)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -EIO;
	buf[n] = '\0';
	/* The command name may hold spaces and ')': fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	while (*p == ' ')
		p++;
	/* Fields 3 (state) to 22 (starttime): skip 19 fields, then read one. */
	for (int f = 3; f < 22; f++) {
		while (*p == ' ')
			p++;
		if (f == 3 && state)
			*state = *p;
		while (*p && *p != ' ')
			p++;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (end == p || errno)
		return -EIO;
	*ret = v;
	return 0;
}

int ipcx__proc_start(pid_t pid, uint64_t *ret)
{
	return ipcx__proc_stat(pid, NULL, ret);
}

bool ipcx__proc_alive(pid_t pid, uint64_t start)
{
	uint64_t now;
	return pid > 0 && ipcx__proc_start(pid, &now) == 0 && now == start;
}

IPCX_EXPORT int ipcx_proc_self(struct ipcx_proc *ret)
{
	if (!ret)
		return -EINVAL;
	pid_t me = getpid();
	uint64_t start;
	int r = ipcx__proc_start(me, &start);
	if (r < 0)
		return ipcx__fail(r, "cannot read /proc/%d/stat", (int)me);
	ret->pid = me;
	ret->start = start;
	return 0;
}

/* The peer of a connected Unix socket, by its credentials. */
static int sock_peer(int fd, struct ipcx_proc *ret)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return ipcx__fail(-EOPNOTSUPP, "not a socket: no peer to name");
	if (ss.ss_family != AF_UNIX)
		return ipcx__fail(-EOPNOTSUPP, "not a Unix socket: the kernel does not name its peer");
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return errno == ENOTCONN ? ipcx__fail(-ENOTCONN, "a listener has no one peer")
					 : -errno;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0)
		return -errno;
	uint64_t start;
	if (cr.pid <= 0 || ipcx__proc_start(cr.pid, &start) < 0)
		return ipcx__fail(-EPIPE, "the peer (pid %d) has gone", (int)cr.pid);
	ret->pid = cr.pid;
	ret->start = start;
	return 0;
}

IPCX_EXPORT int ipcx_peer(ipcx_chan *c, struct ipcx_proc *ret)
{
	if (!c || !ret)
		return -EINVAL;
	ipcx__clear_detail();
	struct ipcx_proc p;
	int r = c->ops->peer ? c->ops->peer(c, &p) : sock_peer(c->fd, &p);
	if (r == 0)
		*ret = p;
	return r;
}

IPCX_EXPORT int ipcx_proc_watch(const struct ipcx_proc *p, unsigned flags, int *ret)
{
	if (!p || !ret || p->pid <= 0)
		return -EINVAL;
	if (flags & ~IPCX_INHERIT)
		return ipcx__fail(-EINVAL, "ipcx_proc_watch: unknown flags 0x%x", flags & ~IPCX_INHERIT);
	int fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (fd < 0)
		return errno == ESRCH ? ipcx__fail(-ESRCH, "process %d has gone", (int)p->pid)
				      : ipcx__fail(-errno, "pidfd_open(%d)", (int)p->pid);
	/*
	 * The pidfd names whoever has the pid now.  If that is still the same
	 * start time, it is our process, and stays so: a pid is not reused while
	 * a pidfd holds it (or rather, the pidfd keeps naming the old process).
	 */
	if (!ipcx__proc_alive(p->pid, p->start)) {
		close(fd);
		return ipcx__fail(-ESRCH, "process %d has gone (its pid names another now)",
				  (int)p->pid);
	}
	if ((flags & IPCX_INHERIT) && ipcx__set_cloexec(fd, false) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	*ret = fd;
	return 0;
}
