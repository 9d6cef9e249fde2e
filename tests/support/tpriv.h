/*
 * Running test code as an unprivileged user.  The suite runs as root, which
 * passes every permission check; a permission test needs a process that
 * does not.
 */
#ifndef IPCX_TPRIV_H
#define IPCX_TPRIV_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Run fn(arg) in a child that has dropped to the user and group "nobody"
 * (supplementary groups cleared, no capabilities left) and return its exit
 * status as t_join() does.  The child exits 99 if it could not drop.
 */
int t_run_as_nobody(int (*fn)(void *arg), void *arg);

/*
 * The same without waiting: t_spawn() a child that drops to "nobody" with
 * group gid (-1: nobody's own group) and runs fn(arg); t_join() it.
 */
pid_t t_spawn_as_nobody(int (*fn)(void *arg), void *arg, long gid);

/* Whether the machine has a user "nobody" (tests that need one skip without). */
bool t_have_nobody(void);

/*
 * For t_run_as_nobody(fn, url): dial url (a char *), send "from nobody" and
 * receive it back, as on a queue, where the dialer reads what it sent.
 * Returns 0 when both worked, 10 when the dial was refused with EACCES (the
 * object's mode keeps nobody out), 13 with EPERM (nobody does not trust the
 * object: its dial URL does not accept its owner or mode), 11 when it failed
 * otherwise, 12 when the send or the receive did not work.
 */
int t_nobody_dial_send_recv(void *url);

/* Let "nobody" reach files in t_tmpdir() (mode 0711 on the folder). */
void t_tmpdir_open_to_all(void);

#endif
