/*
 * Shared-memory regions of every kind: create, attach, size, read-only,
 * memfd sealing and passing over a Unix socket, parent/child anonymous
 * memory, and removal (only of the creator's own object, by its own process).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ipcx.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
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
	/* Kept: meant to outlive its creator, so no creator record for gc. */
	struct ipcx_obj *o;
	snprintf(u, sizeof(u), "shm:/%s", name);
	cr_assert_eq(ipcx_obj_find(u, IPCX_LS_NOPIDS, &o), 0);
	cr_expect(!o->ipcx, "a kept region was recorded as ipcx's");
	ipcx_objs_free(o, 1);
	cr_assert_eq(ipcx_region_open(u, 0, 0, &a), 0);
	cr_assert_eq(ipcx_region_remove(a), 0);
	cr_expect_eq(stat(path, &st), -1);
	cr_expect_eq(((volatile char *)ipcx_region_addr(a))[0], 0, "still mapped");
	ipcx_region_close(a);
}

/* The name leads to an object whose first byte is mark (a shm: name or a path). */
static bool leads_to(const char *name, bool shm, char mark)
{
	int fd = shm ? shm_open(name, O_RDONLY, 0) : open(name, O_RDONLY | O_CLOEXEC);
	char c = 0;
	bool ok = fd >= 0 && pread(fd, &c, 1, 0) == 1 && c == mark;
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * A creator whose name was removed meanwhile and made again by someone
 * else: its close (shm:) or remove (file:) leaves the successor's object
 * alone and says so.  On main the close unlinked the name whatever it led to.
 */
Test(shm_region, creator_leaves_a_successor_alone)
{
	char u[256], name[200];
	snprintf(name, sizeof(name), "/%s", t_name());
	snprintf(u, sizeof(u), "shm:%s", name);
	ipcx_region *a, *b;
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &a), 0, "%s", ipcx_errdetail());
	cr_assert_eq(shm_unlink(name), 0, "someone removes the name by hand");
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &b), 0, "%s", ipcx_errdetail());
	*(char *)ipcx_region_addr(b) = 'B';
	cr_expect_eq(ipcx_region_close(a), -ENOENT, "not removed: %s", ipcx_errdetail());
	cr_expect(strstr(ipcx_errdetail(), "no longer leads"), "%s", ipcx_errdetail());
	cr_expect(leads_to(name, true, 'B'), "the successor's object is still there");
	cr_expect_eq(ipcx_region_close(b), 0, "%s", ipcx_errdetail());
	cr_expect(shm_open(name, O_RDONLY, 0) < 0 && errno == ENOENT, "its own close removed it");

	const char *path = t_path("region");
	snprintf(u, sizeof(u), "file:%s", path);
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &a), 0, "%s", ipcx_errdetail());
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &b), 0, "%s", ipcx_errdetail());
	*(char *)ipcx_region_addr(b) = 'F';
	cr_expect_eq(ipcx_region_remove(a), -ENOENT, "not removed: %s", ipcx_errdetail());
	cr_expect(leads_to(path, false, 'F'), "the successor's file is still there");
	ipcx_region_close(a);
	cr_expect_eq(ipcx_region_remove(b), 0, "%s", ipcx_errdetail());
	ipcx_region_close(b);
}

/* A live creator holds its object's lock, as a shm: listener does: rm leaves it alone. */
Test(shm_region, rm_leaves_a_live_creators_object)
{
	char u[256], name[200];
	snprintf(name, sizeof(name), "/%s", t_name());
	snprintf(u, sizeof(u), "shm:%s", name);
	ipcx_region *a;
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &a), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_obj_remove(u, 0), -EBUSY, "%s", ipcx_errdetail());
	cr_expect(strstr(ipcx_errdetail(), "locked by pid"), "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_region_close(a), 0, "its creator removes it: %s", ipcx_errdetail());
}

struct region_child {
	ipcx_region *r;
	struct t_sync *closed;
};

static int close_copy(void *arg)
{
	struct region_child *a = arg;
	int r = ipcx_region_close(a->r);
	t_post(a->closed);
	return r == 0 ? 0 : 1;
}

/* A child made by fork() that closes its copy of a region leaves the object alone. */
Test(shm_region, forked_child_close_keeps_the_object)
{
	char u[256], name[200];
	snprintf(name, sizeof(name), "/%s", t_name());
	snprintf(u, sizeof(u), "shm:%s", name);
	const char *kinds[] = { u, NULL };
	char sv[64];
	snprintf(sv, sizeof(sv), "sysvshm:0x%08x", (unsigned)t_sysv_key());
	kinds[1] = sv;
	for (int i = 0; i < 2; i++) {
		ipcx_region *a, *b;
		cr_assert_eq(ipcx_region_open(kinds[i], IPCX_REGION_CREATE, 4096, &a), 0, "%s: %s",
			     kinds[i], ipcx_errdetail());
		*(char *)ipcx_region_addr(a) = 'P';
		struct t_sync closed;
		t_sync_init(&closed);
		struct region_child c = { a, &closed };
		cr_expect_eq(t_join(t_spawn(close_copy, &c), T_GUARD_MS), 0);
		cr_assert(t_wait_post(&closed, T_GUARD_MS));
		t_sync_close(&closed);
		cr_assert_eq(ipcx_region_open(kinds[i], 0, 0, &b), 0, "%s: the child removed it: %s",
			     kinds[i], ipcx_errdetail());
		cr_expect_eq(*(char *)ipcx_region_addr(b), 'P');
		ipcx_region_close(b);
		cr_expect_eq(ipcx_region_close(a), 0, "%s", ipcx_errdetail());
		cr_expect_neq(ipcx_region_open(kinds[i], 0, 0, &b), 0, "%s: the creator removed it",
			      kinds[i]);
	}
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
