#include "tpriv.h"

#include "tsupport.h"

#include <errno.h>
#include <grp.h>
#include <ipcx.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

struct as_nobody {
	int (*fn)(void *arg);
	void *arg;
	long gid; /* -1: nobody's own group */
};

static int drop_and_run(void *p)
{
	struct as_nobody *a = p;
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = a->gid >= 0 ? (gid_t)a->gid : pw ? pw->pw_gid : 65534;
	/* Order matters: groups and gid first, while we still may. */
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		return 99;
	if (getuid() == 0 || geteuid() == 0)
		return 99;
	return a->fn(a->arg);
}

int t_run_as_nobody(int (*fn)(void *arg), void *arg)
{
	return t_join(t_spawn_as_nobody(fn, arg, -1), T_GUARD_MS);
}

bool t_have_nobody(void)
{
	return getpwnam("nobody") != NULL;
}

pid_t t_spawn_as_nobody(int (*fn)(void *arg), void *arg, long gid)
{
	/* t_spawn() forks before drop_and_run reads this: the child has its
	 * own copy, so a local is enough. */
	struct as_nobody a = { fn, arg, gid };
	return t_spawn(drop_and_run, &a);
}

int t_nobody_dial_send_recv(void *url)
{
	ipcx_chan *d;
	int r = ipcx_dial(url, 0, &d);
	if (r < 0)
		return r == -EACCES ? 10 : r == -EPERM ? 13 : 11;
	char buf[256];
	r = ipcx_send(d, "from nobody", 11, 1000) == 11 &&
	    ipcx_recv(d, buf, sizeof(buf), 1000) == 11;
	ipcx_close(d);
	return r ? 0 : 12;
}

void t_tmpdir_open_to_all(void)
{
	chmod(t_tmpdir(), 0711);
}
