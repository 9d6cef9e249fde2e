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

static int close_copy(void *arg)
{
	return ipcx_close(arg) == 0 ? 0 : 1;
}

/*
 * A child made by fork() that closes its copy of a listener (a prefork
 * server's worker) leaves the parent's socket file or FIFO alone: the
 * parent still listens there.  Before, the child's close unlinked it and
 * nobody could dial the parent any more.
 */
Test(files, forked_child_close_keeps_the_file)
{
	for (size_t i = 0; i < NKINDS; i++) {
		const char *p = t_path(t_name());
		ipcx_chan *l, *d;
		cr_assert_eq(ipcx_listen(url_of(kinds[i], p, ""), 0, &l), 0, "%s: %s", kinds[i],
			     ipcx_errdetail());
		cr_expect_eq(t_join(t_spawn(close_copy, l), T_GUARD_MS), 0, "%s", kinds[i]);
		cr_expect_eq(access(p, F_OK), 0, "%s: the child's close removed the file", kinds[i]);
		cr_assert_eq(ipcx_dial(url_of(kinds[i], p, ""), 0, &d), 0, "%s: %s", kinds[i],
			     ipcx_errdetail());
		cr_expect_eq(ipcx_send(d, "ok", 2, T_GUARD_MS), 2);
		char buf[8];
		cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 2, "%s", kinds[i]);
		ipcx_close(d);
		ipcx_close(l);
		cr_expect_neq(access(p, F_OK), 0, "%s: the parent's close removes it", kinds[i]);
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

#include <poll.h>

#include "tpriv.h"

struct abstract_arg {
	char url[256];
	bool gram;
};

/*
 * As nobody: dial and send one message.  0: dialed and sent; 10: the dial
 * was refused with -EACCES and a detail that says why; 11: another failure.
 */
static int nobody_dials(void *p)
{
	struct abstract_arg *a = p;
	ipcx_chan *c;
	int r = ipcx_dial(a->url, 0, &c);
	if (r == -EACCES && strstr(ipcx_errdetail(), "mode"))
		return 10;
	if (r < 0)
		return 11;
	r = ipcx_send(c, "hi", 2, T_GUARD_MS) == 2 ? 0 : 12;
	ipcx_close(c);
	return r;
}

/*
 * A listener of `scheme` on an abstract name with `opts`; a dialer that is
 * nobody, in group gid (-1: nogroup).  Allowed: its message arrives.  Not:
 * a connection's dial fails with -EACCES, a datagram is dropped; either way
 * the listener counts it in ipcx_stats().dropped and nothing arrives.
 */
static void abstract_case(const char *scheme, const char *opts, long gid, bool allowed)
{
	if (!t_have_nobody())
		cr_skip_test("this machine has no user 'nobody' to dial as");
	struct abstract_arg a = { .gram = strcmp(scheme, "unixgram") == 0 };
	snprintf(a.url, sizeof(a.url), "%s:@%s%s", scheme, t_name(), opts);
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(a.url, 0, &l), 0, "%s", ipcx_errdetail());
	pid_t pid = t_spawn_as_nobody(nobody_dials, &a, gid);
	char buf[8];
	ssize_t n = -EAGAIN;
	if (!a.gram) {
		/* The dialer waits for the listener's verdict: serve it. */
		struct pollfd p = { .fd = ipcx_fileno(l), .events = POLLIN };
		cr_assert_eq(poll(&p, 1, T_GUARD_MS), 1, "%s: nobody never connected", a.url);
		n = ipcx_recv(l, buf, sizeof(buf), 0);
		cr_expect(n == -EAGAIN || (allowed && n == 2), "%s: %zd", a.url, n);
	}
	int st = t_join(pid, T_GUARD_MS);
	cr_assert_neq(st, 99, "could not become nobody");
	cr_expect_eq(st, allowed ? 0 : a.gram ? 0 : 10, "%s (gid %ld): child status %d", a.url,
		     gid, st);
	if (n == -EAGAIN)
		n = ipcx_recv(l, buf, sizeof(buf), allowed ? T_GUARD_MS : 0);
	cr_expect_eq(n, allowed ? 2 : -EAGAIN, "%s (gid %ld): %zd", a.url, gid, n);
	struct ipcx_stats st_;
	cr_assert_eq(ipcx_stats(l, &st_), 0, "%s: %s", a.url, ipcx_errdetail());
	cr_expect_eq(st_.dropped, allowed ? 0 : 1, "%s (gid %ld): dropped %llu", a.url, gid,
		     (unsigned long long)st_.dropped);
	/* The listener still serves its own user. */
	ipcx_chan *d;
	cr_assert_eq(ipcx_dial(a.url, 0, &d), 0, "%s", ipcx_errdetail());
	cr_expect_eq(ipcx_send(d, "me", 2, T_GUARD_MS), 2);
	t_expect_recv(l, "me");
	ipcx_close(d);
	ipcx_close(l);
}

static const char *const socket_schemes[] = { "unix", "unixpacket", "unixgram" };

Test(abstract, other_users_refused_by_default)
{
	for (size_t i = 0; i < 3; i++)
		abstract_case(socket_schemes[i], "", -1, false);
}

Test(abstract, mode_lets_other_users_in)
{
	for (size_t i = 0; i < 3; i++)
		abstract_case(socket_schemes[i], "?mode=0666", -1, true);
}

/* The bits mean what they mean on a socket file: connecting takes write. */
Test(abstract, mode_bits_are_write_permission)
{
	gid_t mine = getegid();
	for (size_t i = 0; i < 3; i++) {
		const char *s = socket_schemes[i];
		abstract_case(s, "?mode=0644", -1, false); /* others may read only */
		abstract_case(s, "?mode=0602", -1, true);
		abstract_case(s, "?mode=0620", -1, false);  /* not in the group */
		abstract_case(s, "?mode=0620", (long)mine, true);
		abstract_case(s, "?mode=0640", (long)mine, false);
	}
}

/* As nobody: dial, then talk both ways with the listener's accepted channel. */
static int nobody_converses(void *p)
{
	struct abstract_arg *a = p;
	ipcx_chan *c;
	int r = ipcx_dial(a->url, 0, &c);
	if (r < 0)
		return r == -EACCES ? 10 : 11;
	char buf[16];
	/* The verdict byte must not show up as (part of) a message. */
	ssize_t n = ipcx_recv(c, buf, sizeof(buf), T_GUARD_MS);
	r = n == 4 && memcmp(buf, "pong", 4) == 0 ? 0 : 12;
	if (r == 0 && ipcx_send(c, "ping", 4, T_GUARD_MS) != 4)
		r = 13;
	ipcx_close(c);
	return r;
}

/* IPCX_ACCEPT: a refused peer is never handed out; an admitted one talks. */
static void abstract_accept_case(const char *scheme, const char *opts, bool allowed)
{
	if (!t_have_nobody())
		cr_skip_test("this machine has no user 'nobody' to dial as");
	struct abstract_arg a = { 0 };
	snprintf(a.url, sizeof(a.url), "%s:@%s%s", scheme, t_name(), opts);
	ipcx_chan *l, *c = NULL;
	cr_assert_eq(ipcx_listen(a.url, IPCX_ACCEPT, &l), 0, "%s", ipcx_errdetail());
	pid_t pid = t_spawn_as_nobody(nobody_converses, &a, -1);
	struct pollfd p = { .fd = ipcx_fileno(l), .events = POLLIN };
	cr_assert_eq(poll(&p, 1, T_GUARD_MS), 1, "%s: nobody never connected", a.url);
	int r = ipcx_accept(l, 0, &c);
	if (allowed) {
		cr_assert_eq(r, 0, "%s: %s", a.url, ipcx_errdetail());
		cr_expect_eq(ipcx_send(c, "pong", 4, T_GUARD_MS), 4);
		t_expect_recv(c, "ping");
	} else {
		cr_expect_eq(r, -EAGAIN, "%s: a refused peer was handed out (%d)", a.url, r);
		cr_expect_null(c);
	}
	cr_expect_eq(t_join(pid, T_GUARD_MS), allowed ? 0 : 10, "%s", a.url);
	struct ipcx_stats st;
	cr_assert_eq(ipcx_stats(l, &st), 0);
	cr_expect_eq(st.dropped, allowed ? 0 : 1, "%s", a.url);
	ipcx_close(c);
	ipcx_close(l);
}

Test(abstract, accept_admits_by_mode)
{
	abstract_accept_case("unix", "", false);
	abstract_accept_case("unixpacket", "", false);
	abstract_accept_case("unix", "?mode=0602", true);
	abstract_accept_case("unixpacket", "?mode=0602", true);
}

/* Descriptors a sender passes with a datagram are not left in the listener. */
Test(abstract, datagram_descriptors_are_closed)
{
	char url[256];
	snprintf(url, sizeof(url), "unixgram:@%s", t_name());
	ipcx_chan *l;
	cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s", ipcx_errdetail());
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(url) - strlen("unixgram:@");
	memcpy(sa.sun_path + 1, url + strlen("unixgram:@"), n);
	int passed[2];
	cr_assert_eq(pipe(passed), 0);
	union {
		char b[CMSG_SPACE(sizeof(passed))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { "fd", 2 };
	struct msghdr mh = { .msg_name = &sa,
			     .msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n),
			     .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			     .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(passed));
	memcpy(CMSG_DATA(cm), passed, sizeof(passed));
	cr_assert_eq(sendmsg(s, &mh, 0), 2, "%s", strerror(errno));
	close(passed[0]);
	close(passed[1]);
	/* Passed descriptors the listener kept would take the lowest free number. */
	int lowest = dup(0);
	close(lowest);
	char buf[8];
	cr_expect_eq(ipcx_recv(l, buf, sizeof(buf), T_GUARD_MS), 2);
	int after = dup(0);
	cr_expect_eq(after, lowest, "the listener kept a passed descriptor (%d is taken)", lowest);
	close(after);
	close(s);
	ipcx_close(l);
}

/* As nobody: dial and send "x0", "x1", "x2".  0 when all three went. */
static int nobody_sends_three(void *p)
{
	struct abstract_arg *a = p;
	ipcx_chan *c;
	if (ipcx_dial(a->url, 0, &c) < 0)
		return 11;
	int r = 0;
	for (int i = 0; i < 3 && r == 0; i++) {
		char m[2] = { 'x', (char)('0' + i) };
		r = ipcx_send(c, m, 2, T_GUARD_MS) == 2 ? 0 : 12;
	}
	ipcx_close(c);
	return r;
}

/*
 * A batch taken by one recvmmsg (buffers of max= bytes) judges every
 * datagram in it: nobody's three, between two of our own, are dropped and
 * counted unless the mode admits them, and ours come in order, moved up.
 */
static void abstract_batch_case(const char *opts, bool allowed)
{
	if (!t_have_nobody())
		cr_skip_test("this machine has no user 'nobody' to dial as");
	struct abstract_arg a = { .gram = true };
	snprintf(a.url, sizeof(a.url), "unixgram:@%s?max=8%s", t_name(), opts);
	ipcx_chan *l, *d;
	cr_assert_eq(ipcx_listen(a.url, 0, &l), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_dial(a.url, 0, &d), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(d, "m0", 2, T_GUARD_MS), 2);
	pid_t pid = t_spawn_as_nobody(nobody_sends_three, &a, -1);
	int st = t_join(pid, T_GUARD_MS);
	cr_assert_neq(st, 99, "could not become nobody");
	cr_assert_eq(st, 0, "%s: nobody's sends: status %d", a.url, st);
	cr_assert_eq(ipcx_send(d, "m1", 2, T_GUARD_MS), 2);
	cr_assert_eq(ipcx_send(d, "m2", 2, T_GUARD_MS), 2);
	/* All six wait: one receive of buffers of max= bytes takes them at once. */
	const char *want[] = { "m0", "x0", "x1", "x2", "m1", "m2" };
	const char *ours[] = { "m0", "m1", "m2" };
	const char **w = allowed ? want : ours;
	size_t nw = allowed ? 6 : 3;
	char bufs[16][8];
	struct ipcx_msg v[16];
	for (int i = 0; i < 16; i++)
		v[i] = (struct ipcx_msg){ .buf = bufs[i], .cap = sizeof(bufs[i]) };
	ssize_t n = ipcx_recvv(l, v, 16, T_GUARD_MS);
	cr_assert_eq(n, (ssize_t)nw, "%s: %zd received", a.url, n);
	for (size_t i = 0; i < nw; i++)
		cr_expect(v[i].len == 2 && memcmp(v[i].buf, w[i], 2) == 0, "%s: message %zu: %.*s",
			  a.url, i, (int)v[i].len, (char *)v[i].buf);
	cr_expect_eq(ipcx_recvv(l, v, 16, 0), -EAGAIN, "%s", a.url);
	struct ipcx_stats s;
	cr_assert_eq(ipcx_stats(l, &s), 0);
	cr_expect_eq(s.dropped, allowed ? 0 : 3, "%s: dropped %llu", a.url,
		     (unsigned long long)s.dropped);
	cr_expect_eq(s.received, nw, "%s: received %llu", a.url, (unsigned long long)s.received);
	ipcx_close(d);
	ipcx_close(l);
}

Test(abstract, datagram_batch_judges_every_sender)
{
	abstract_batch_case("", false);
	abstract_batch_case("&mode=0602", true);
}
