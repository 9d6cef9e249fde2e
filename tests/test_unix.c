/*
 * What a listener may and may not do to the file system: sockets and FIFOs
 * are created owner-only, stale ones replaced, live ones and anything that
 * is not ours refused; bad addresses rejected with a clear detail.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tsupport.h"

static const char *const kinds[] = { "unix", "unixpacket", "unixgram", "fifo" };
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *url_of(const char *kind, const char *path, const char *opts)
{
	static char buf[512];
	snprintf(buf, sizeof(buf), "%s:%s%s", kind, path, opts);
	return buf;
}

Test(files, created_owner_only_and_removed)
{
	for (size_t i = 0; i < NKINDS; i++) {
		const char *p = t_path(t_name());
		ipcx_chan *l;
		cr_assert_eq(ipcx_listen(url_of(kinds[i], p, ""), 0, &l), 0, "%s: %s", kinds[i],
			     ipcx_errdetail());
		struct stat st;
		cr_assert_eq(lstat(p, &st), 0);
		cr_expect_eq(st.st_mode & 07777, 0600, "%s: mode %o", kinds[i], st.st_mode & 07777);
		cr_expect(strcmp(kinds[i], "fifo") ? S_ISSOCK(st.st_mode) : S_ISFIFO(st.st_mode));
		char url[300];
		snprintf(url, sizeof(url), "%s:%s", strcmp(kinds[i], "fifo") ? "unix" : "fifo", p);
		struct ipcx_obj *o = NULL;
		cr_assert_eq(ipcx_obj_find(url, 0, &o), 0, "%s: %s", url, ipcx_errdetail());
		cr_expect(o->ipcx, "%s: a listener records that it created the object", kinds[i]);
		cr_expect_not(o->orphan, "%s: its creator is alive", kinds[i]);
		ipcx_objs_free(o, 1);
		cr_expect_eq(ipcx_close(l), 0);
		cr_expect_neq(access(p, F_OK), 0, "%s: the listener must remove its file", kinds[i]);
	}
}

Test(files, explicit_mode_and_keep)
{
	for (size_t i = 0; i < NKINDS; i++) {
		const char *p = t_path(t_name());
		ipcx_chan *l;
		cr_assert_eq(ipcx_listen(url_of(kinds[i], p, "?mode=0660&keep=1"), 0, &l), 0,
			     "%s: %s", kinds[i], ipcx_errdetail());
		struct stat st;
		cr_assert_eq(lstat(p, &st), 0);
		cr_expect_eq(st.st_mode & 07777, 0660, "%s: mode %o", kinds[i], st.st_mode & 07777);
		ipcx_close(l);
		cr_expect_eq(access(p, F_OK), 0, "%s: keep=1 leaves the file", kinds[i]);
		/* A kept object is meant to outlive its creator: no creator record,
		 * so ipcx gc never takes it for an orphan. */
		char url[300];
		snprintf(url, sizeof(url), "%s:%s", strcmp(kinds[i], "fifo") ? "unix" : "fifo", p);
		struct ipcx_obj *o = NULL;
		cr_assert_eq(ipcx_obj_find(url, 0, &o), 0, "%s: %s", url, ipcx_errdetail());
		cr_expect_not(o->ipcx, "%s: keep=1 must leave no creator record", kinds[i]);
		ipcx_objs_free(o, 1);
		unlink(p);
	}
}

Test(files, live_listener_is_refused)
{
	for (size_t i = 0; i < NKINDS; i++) {
		const char *p = t_path(t_name());
		ipcx_chan *l, *l2 = NULL;
		cr_assert_eq(ipcx_listen(url_of(kinds[i], p, ""), 0, &l), 0);
		cr_expect_eq(ipcx_listen(url_of(kinds[i], p, ""), 0, &l2), -EADDRINUSE, "%s",
			     kinds[i]);
		cr_expect(strstr(ipcx_errdetail(), "live"), "%s: %s", kinds[i], ipcx_errdetail());
		cr_expect_null(l2);
		/* The live listener still works. */
		ipcx_chan *d;
		cr_assert_eq(ipcx_dial(url_of(kinds[i], p, ""), 0, &d), 0, "%s", kinds[i]);
		cr_expect_eq(ipcx_send(d, "ok", 2, T_GUARD_MS), 2);
		char buf[8];
		cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 2, "%s", kinds[i]);
		ipcx_close(d);
		ipcx_close(l);
	}
}

Test(files, stale_socket_is_replaced)
{
	/* A socket file whose listener is gone: bound, then closed, not removed. */
	const char *p = t_path(t_name());
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, p);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ipcx_chan *l;
	cr_expect_eq(ipcx_listen(url_of("unix", p, ""), 0, &l), 0, "%s", ipcx_errdetail());
	ipcx_close(l);
	cr_expect_neq(access(p, F_OK), 0);
}

Test(files, never_touch_what_is_not_ours)
{
	const char *file = t_path("regular"), *link = t_path("link"), *target = t_path("target");
	int fd = open(file, O_CREAT | O_EXCL | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "data", 4), 4);
	close(fd);
	cr_assert_eq(symlink(target, link), 0);
	for (size_t i = 0; i < NKINDS; i++) {
		ipcx_chan *l = NULL;
		cr_expect_eq(ipcx_listen(url_of(kinds[i], file, ""), 0, &l), -EEXIST, "%s", kinds[i]);
		cr_expect(strstr(ipcx_errdetail(), "not touching it"), "%s", ipcx_errdetail());
		cr_expect_eq(ipcx_listen(url_of(kinds[i], link, ""), 0, &l), -EEXIST,
			     "%s: a symlink is not followed", kinds[i]);
		cr_expect_null(l);
		cr_expect_neq(access(target, F_OK), 0, "%s: nothing created through the link",
			      kinds[i]);
	}
	struct stat st;
	cr_assert_eq(stat(file, &st), 0, "the regular file is still there");
	cr_expect_eq(st.st_size, 4);
	/* A FIFO dialer refuses to write frames into a regular file. */
	ipcx_chan *d = NULL;
	cr_expect_eq(ipcx_dial(url_of("fifo", file, ""), 0, &d), -EINVAL);
	cr_expect_null(d);
	unlink(file);
	unlink(link);
}

Test(files, bad_addresses)
{
	char longp[200] = "/tmp/";
	memset(longp + 5, 'x', 120);
	struct {
		const char *url;
		int err;
		const char *detail;
	} bad[] = {
		{ "unix:relative.sock", -EINVAL, "absolute path" },
		{ url_of("unix", longp, ""), -EINVAL, "longer than 107" },
		{ "unix:@", -EINVAL, "empty abstract name" },
		{ "unix:/tmp/x?colour=red", -EINVAL, "unknown option 'colour'" },
		{ "unix:/tmp/x?max=big", -EINVAL, "not a number" },
		{ "unix:/tmp/x?max=0", -EINVAL, "out of range" },
		{ "unix:/tmp/x?framing=xml", -EINVAL, "unknown value" },
		{ "unix:/tmp/x?mode=999", -EINVAL, "octal" },
		{ "unixgram:/tmp/x?framing=lines", -EINVAL, "unknown option 'framing'" },
		{ "tcp://127.0.0.1:99999", -EINVAL, "out of range" },
		{ "tcp://127.0.0.1", -EINVAL, "host:port" },
		{ "udp://[::1:53", -EINVAL, "ipv6" },
		{ "fifo:/tmp/x?keep=maybe", -EINVAL, "not 0 or 1" },
		{ "gopher://x:70", -EINVAL, "unknown scheme 'gopher'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char url[512];
		snprintf(url, sizeof(url), "%s", bad[i].url);
		ipcx_chan *c = NULL;
		int r = ipcx_listen(url, 0, &c);
		cr_expect_eq(r, bad[i].err, "%s gave %d", url, r);
		cr_expect(strcasestr(ipcx_errdetail(), bad[i].detail), "%s: '%s' lacks '%s'", url,
			  ipcx_errdetail(), bad[i].detail);
		cr_expect_null(c);
	}
}

Test(tcp, refused_and_addr)
{
	ipcx_chan *l, *c = NULL;
	cr_assert_eq(ipcx_listen("tcp://127.0.0.1:0", 0, &l), 0);
	char addr[128];
	cr_assert_gt(ipcx_addr(l, addr, sizeof(addr)), 0);
	cr_expect(strncmp(addr, "tcp://127.0.0.1:", 16) == 0 && strcmp(addr, "tcp://127.0.0.1:0"),
		  "%s", addr);
	cr_expect_eq(ipcx_addr(l, addr, 4), -ENOSPC);
	char url[160];
	snprintf(url, sizeof(url), "%s", addr);
	ipcx_close(l);
	/* Nobody listens there now. */
	cr_expect_eq(ipcx_dial(url, 0, &c), -ECONNREFUSED, "%s", ipcx_errdetail());
	cr_expect_null(c);
}

/* ---- abstract names: the mode applies to the peer's credentials ---------- */

#include <pwd.h>

struct nobody_arg {
	char url[256];
	struct t_sync go, sent;
};

static int nobody_sender(void *p)
{
	struct nobody_arg *a = p;
	struct passwd *pw = getpwnam("nobody");
	if (!pw || setgid(pw->pw_gid) || setuid(pw->pw_uid))
		return 80;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 81;
	ssize_t first = ipcx_send(c, "hi", 2, T_GUARD_MS);
	t_post(&a->sent);
	if (!t_wait_post(&a->go, T_GUARD_MS))
		return 82;
	/* Refused: the listener closed the connection; allowed: it still reads. */
	ssize_t second = ipcx_send(c, "hi", 2, T_GUARD_MS);
	ipcx_close(c);
	if (first != 2)
		return 83;
	return second == 2 ? 0 : second == -EPIPE ? 10 : 84;
}

static void abstract_peer(const char *opts, bool allowed)
{
	struct nobody_arg a;
	snprintf(a.url, sizeof(a.url), "unix:@%s%s", t_name(), opts);
	t_sync_init(&a.go);
	t_sync_init(&a.sent);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(a.url, 0, &l), 0, "%s", ipcx_errdetail());
	pid_t pid = t_spawn(nobody_sender, &a);
	cr_assert(t_wait_post(&a.sent, T_GUARD_MS));
	char buf[8];
	ssize_t n = ipcx_recv(l, buf, sizeof(buf), allowed ? T_GUARD_MS : 300);
	cr_expect_eq(n, allowed ? 2 : -ETIMEDOUT, "%s: %zd", opts, n);
	t_post(&a.go);
	cr_expect_eq(t_join(pid, T_GUARD_MS), allowed ? 0 : 10, "%s", opts);
	ipcx_close(l);
	t_sync_close(&a.go);
	t_sync_close(&a.sent);
}

Test(abstract, other_users_refused_by_default)
{
	abstract_peer("", false);
}

Test(abstract, mode_lets_other_users_in)
{
	abstract_peer("?mode=0666", true);
}
