/*
 * The leak check (tests/leakcheck.sh) against objects made the way tests
 * make them: one keyed with t_sysv_key() or named with t_name() under a run's
 * tag fails the check (which removes it); one whose key differs only in the
 * last hex digit of the tag's part, as another run's may, is left alone and
 * fails nothing.  The tag here is made up (the run's own with a bit flipped),
 * so that the check sees none of the objects other tests have open meanwhile.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <unistd.h>

#include "tsupport.h"

static char fake[16];

/* The run's tag with a bit of its key prefix flipped. */
static const char *fake_tag(void)
{
	const char *t = t_tag();
	char hex[5];
	snprintf(hex, sizeof(hex), "%.4s", t);
	unsigned v = ((unsigned)strtoul(hex, NULL, 16) ^ 0x4000u) & 0xffffu;
	snprintf(fake, sizeof(fake), "%04x%.4s", v, strlen(t) >= 8 ? t + 4 : "0000");
	return fake;
}

static int exec_check(void *tag)
{
	setenv("IPCX_TEST_TAG", tag, 1);
	int null = open("/dev/null", O_WRONLY);
	if (null >= 0)
		dup2(null, 1);
	const char *lc = getenv("IPCX_LEAKCHECK");
	execl(lc, lc, "check", (char *)NULL);
	return 127;
}

/* leakcheck.sh check under tag: its exit status. */
static int leak_check(const char *tag)
{
	return t_join(t_spawn(exec_check, (void *)tag), T_GUARD_MS);
}

static bool queue_is(int key, int id)
{
	return msgget(key, 0) == id;
}

Test(leakcheck, this_runs_objects_only)
{
	cr_assert_not_null(getenv("IPCX_LEAKCHECK"), "run by ctest, which names the leak check");
	const char *tag = fake_tag();
	setenv("IPCX_TEST_TAG", tag, 1); /* what t_sysv_key() and t_name() use */
	int key = t_sysv_key();
	int other = key ^ 0x10000; /* another run's: its tag differs in the 4th digit */
	int oid = msgget(other, IPC_CREAT | IPC_EXCL | 0600);
	cr_assert_geq(oid, 0, "msgget: %s", strerror(errno));

	int st = leak_check(tag);
	bool left = queue_is(other, oid);
	int id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
	char name[128];
	snprintf(name, sizeof(name), "/%s", t_name());
	int shm = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	int st2 = id >= 0 && shm >= 0 ? leak_check(tag) : -1;
	bool gone = msgget(key, 0) < 0 && shm_unlink(name) < 0;
	bool left2 = queue_is(other, oid);

	msgctl(oid, IPC_RMID, NULL);
	if (!gone) {
		msgctl(id, IPC_RMID, NULL);
		shm_unlink(name);
	}
	if (shm >= 0)
		close(shm);
	cr_expect_eq(st, 0, "another run's object fails the check");
	cr_expect(left, "the check removed another run's object");
	cr_assert_geq(id, 0, "msgget: %s", strerror(errno));
	cr_assert_geq(shm, 0, "shm_open: %s", strerror(errno));
	cr_expect_eq(st2, 1, "a leaked object of the run passes the check");
	cr_expect(gone, "the check leaves the run's objects behind");
	cr_expect(left2, "the check removed another run's object beside the run's own");
}
