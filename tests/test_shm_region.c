/*
 * Shared-memory regions of every kind: create, attach, size, read-only,
 * memfd sealing and passing over a Unix socket, parent/child anonymous
 * memory, and removal.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsupport.h"

static void create_attach(const char *u)
{
	ipcx_region *a, *b, *ro;
	int r = ipcx_region_open(u, IPCX_REGION_CREATE, 10000, &a);
	cr_assert_eq(r, 0, "%s: %s %s", u, ipcx_strerror(r), ipcx_errdetail());
	cr_expect_eq(ipcx_region_size(a), 10000);
	cr_expect_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 10000, &b), -EEXIST, "exclusive");
	strcpy((char *)ipcx_region_addr(a) + 9000, "shared bytes");
	cr_assert_eq(ipcx_region_open(u, 0, 0, &b), 0, "%s", ipcx_errdetail());
	cr_expect_geq(ipcx_region_size(b), 10000);
	cr_expect_str_eq((char *)ipcx_region_addr(b) + 9000, "shared bytes");
	((char *)ipcx_region_addr(b))[0] = 'B';
	cr_expect_eq(((char *)ipcx_region_addr(a))[0], 'B');
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_RDONLY, 100, &ro), 0);
	cr_expect_eq(ipcx_region_size(ro), 100);
	cr_expect_eq(((char *)ipcx_region_addr(ro))[0], 'B');
	cr_expect_eq(ipcx_region_open(u, 0, 1 << 20, &b), -EINVAL, "larger than the object");
	ipcx_region_close(ro);
	ipcx_region_close(b);
	cr_assert_eq(ipcx_region_close(a), 0);
}

Test(shm_region, posix)
{
	char u[256];
	const char *name = t_name();
	snprintf(u, sizeof(u), "shm:/%s", name);
	create_attach(u);
	char path[300];
	struct stat st;
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	cr_expect_eq(stat(path, &st), -1, "removed by its creator");
}

Test(shm_region, sysv)
{
	char u[64];
	int key = t_sysv_key();
	snprintf(u, sizeof(u), "sysvshm:%d", key);
	create_attach(u);
	cr_expect_eq(shmget(key, 0, 0), -1, "removed by its creator");
}

Test(shm_region, file_is_kept)
{
	char u[512];
	snprintf(u, sizeof(u), "file:%s", t_path("region"));
	create_attach(u);
	struct stat st;
	cr_assert_eq(stat(t_path("region"), &st), 0, "a file region persists");
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(symlink(t_path("region"), t_path("link")), 0);
	snprintf(u, sizeof(u), "file:%s", t_path("link"));
	ipcx_region *r;
	cr_expect_eq(ipcx_region_open(u, 0, 0, &r), -ELOOP);
	snprintf(u, sizeof(u), "file:%s", t_path("region"));
	cr_assert_eq(ipcx_region_open(u, 0, 0, &r), 0);
	cr_assert_eq(ipcx_region_remove(r), 0);
	cr_expect_eq(stat(t_path("region"), &st), -1);
	ipcx_region_close(r);
}

Test(shm_region, keep_and_remove)
{
	char u[256];
	const char *name = t_name();
	snprintf(u, sizeof(u), "shm:/%s?keep=1&mode=0640", name);
	ipcx_region *a;
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &a), 0);
	ipcx_region_close(a);
	char path[300];
	struct stat st;
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0640);
	snprintf(u, sizeof(u), "shm:/%s", name);
	cr_assert_eq(ipcx_region_open(u, 0, 0, &a), 0);
	cr_assert_eq(ipcx_region_remove(a), 0);
	cr_expect_eq(stat(path, &st), -1);
	cr_expect_eq(((volatile char *)ipcx_region_addr(a))[0], 0, "still mapped");
	ipcx_region_close(a);
}

static int write_ro(void *arg)
{
	*(volatile char *)arg = 1;
	return 0;
}

Test(shm_region, readonly_means_readonly)
{
	char u[256];
	snprintf(u, sizeof(u), "shm:/%s", t_name());
	ipcx_region *a, *ro;
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &a), 0);
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_RDONLY, 0, &ro), 0);
	/* A write through the read-only mapping faults (in a child). */
	cr_expect_neq(t_join(t_spawn(write_ro, ipcx_region_addr(ro)), T_GUARD_MS), 0);
	ipcx_region_close(ro);
	ipcx_region_close(a);
}

static int anon_child(void *arg)
{
	strcpy(arg, "from the child");
	return 0;
}

Test(shm_region, anon_parent_child)
{
	ipcx_region *r;
	cr_assert_eq(ipcx_region_open("anon:", IPCX_REGION_CREATE, 4096, &r), 0);
	cr_expect_eq(ipcx_region_fd(r), -EOPNOTSUPP);
	cr_assert_eq(t_join(t_spawn(anon_child, ipcx_region_addr(r)), T_GUARD_MS), 0);
	cr_expect_str_eq(ipcx_region_addr(r), "from the child");
	ipcx_region_close(r);
}

static int memfd_receiver(void *arg)
{
	int sock = *(int *)arg, fd;
	if (ipcx_fd_recv(sock, 0, T_GUARD_MS, &fd) < 0)
		return 1;
	ipcx_region *r;
	if (ipcx_region_adopt(fd, 0, &r) == 0)
		return 2; /* sealed against writes: no writable mapping */
	if (ipcx_region_adopt(fd, IPCX_REGION_RDONLY, &r) < 0)
		return 3;
	if (strcmp(ipcx_region_addr(r), "sealed") != 0 || ipcx_region_size(r) != 8192)
		return 4;
	ipcx_region_close(r);
	return 0;
}

Test(shm_region, memfd_sealed_and_passed)
{
	ipcx_region *r;
	cr_expect_eq(ipcx_region_open("memfd:x", 0, 0, &r), -EINVAL, "create only");
	cr_assert_eq(ipcx_region_open("memfd:ipcx-test", IPCX_REGION_CREATE, 8192, &r), 0);
	strcpy(ipcx_region_addr(r), "sealed");
	cr_assert_eq(ipcx_region_seal(r, IPCX_SEAL_WRITE), 0, "%s", ipcx_errdetail());
	cr_expect_str_eq(ipcx_region_addr(r), "sealed", "mapped again read-only, same bytes");
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = t_spawn(memfd_receiver, &sv[1]);
	cr_assert_eq(ipcx_fd_send(sv[0], ipcx_region_fd(r), T_GUARD_MS), 0);
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0);
	close(sv[0]);
	close(sv[1]);
	ipcx_region_close(r);
}

Test(shm_region, bad_arguments)
{
	ipcx_region *r;
	cr_expect_eq(ipcx_region_open("shm:/x", 0x80, 0, &r), -EINVAL);
	cr_expect_eq(ipcx_region_open("shm:/x", IPCX_REGION_CREATE, 0, &r), -EINVAL);
	cr_expect_eq(ipcx_region_open("shm:/x", IPCX_REGION_CREATE | IPCX_REGION_RDONLY, 10, &r),
		     -EINVAL);
	cr_expect_eq(ipcx_region_open("tcp://x:1", IPCX_REGION_CREATE, 10, &r), -EINVAL);
	cr_expect_eq(ipcx_region_open("shm:/x?bogus=1", IPCX_REGION_CREATE, 10, &r), -EINVAL);
	cr_expect_eq(ipcx_region_open("shm:nameless", IPCX_REGION_CREATE, 10, &r), -EINVAL);
	cr_expect_eq(ipcx_region_close(NULL), 0);
	cr_expect_eq(ipcx_region_seal(NULL, 0), -EINVAL);
}
