/*
 * Trust in an object that ipcx opens instead of creating: its contents are
 * believed only if nobody the caller does not trust could have written
 * them (trust.c says whom the caller trusts).
 */
#ifndef IPCX_CORE_TRUST_H
#define IPCX_CORE_TRUST_H

#include <sys/types.h>

/*
 * May the caller believe what is in an object it opened instead of creating?
 * uid, gid and mode are the object's; asked is the URL's mode= (0600 when
 * not given): its group- and others-write bits say whom the caller lets
 * write.  0, or -EPERM with a detail that starts with what (the URL) and
 * names the owner or the mode that could have let someone forge it.
 */
int ipcx__trust(const char *what, uid_t uid, gid_t gid, mode_t mode, mode_t asked);
/* The same for an open file (fstat). */
int ipcx__trust_fd(const char *what, int fd, mode_t asked);
/*
 * The same for a System V object (IPC_STAT's ipc_perm): its creator (cuid,
 * cgid) must pass as its owner does, since the kernel lets both write it.
 */
struct ipc_perm;
int ipcx__trust_ipc(const char *what, const struct ipc_perm *p, mode_t asked);

#endif
