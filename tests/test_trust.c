/*
 * Whose files are trusted (docs/transports.md, "Trust"): an object that ipcx
 * opens instead of creating — an mmap: log, a file: record file, a file: or
 * shm: region, a queue or ring that a dial attaches to — is refused (-EPERM,
 * with a detail) when another user owns it (or, System V, created it) or
 * when group or others may write it, unless the URL's mode= accepts that.
 * The suite runs as root: these tests make files of "nobody" (and skip,
 * saying so, where there is no such user or they are not root).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tpriv.h"
#include "tsupport.h"

static uid_t nobody_uid;
static gid_t nobody_gid;

/* Root, and a user "nobody" to give files to; else skip. */
static void need_root_and_nobody(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to give a file to another user");
	struct passwd *pw = getpwnam("nobody");
	if (!pw)
		cr_skip_test("this machine has no user 'nobody'");
	nobody_uid = pw->pw_uid;
	nobody_gid = pw->pw_gid;
}

static const char *url_of(const char *scheme, const char *leaf, const char *opts)
{
	static char u[4][512];
	static int n;
	char *b = u[n++ % 4];
	snprintf(b, 512, "%s:%s%s%s", scheme, t_path(leaf), opts ? "?" : "", opts ? opts : "");
	return b;
}

static void expect_refused(int r, const char *want)
{
	cr_expect_eq(r, -EPERM, "refused with -EPERM, not %d (%s)", r, ipcx_errdetail());
	cr_expect(strstr(ipcx_errdetail(), want), "the detail says '%s': %s", want,
		  ipcx_errdetail());
}

/* Make a channel's file (listen, send one record, close). */
static void make_with_record(const char *url, const char *msg)
{
	ipcx_chan *c;
	cr_assert_eq(ipcx_dial(url, 0, &c), 0, "%s: %s", url, ipcx_errdetail());
	cr_assert_eq(ipcx_send(c, msg, strlen(msg), 1000), (ssize_t)strlen(msg));
	ipcx_close(c);
}

/* Open url with op and receive want; the channel is accepted. */
static void expect_accepted(int (*op)(const char *, unsigned, ipcx_chan **), const char *url,
			    const char *want)
{
	ipcx_chan *c;
	cr_assert_eq(op(url, 0, &c), 0, "%s: %s", url, ipcx_errdetail());
	t_expect_recv(c, want);
	ipcx_close(c);
}

/* ---- mmap: ------------------------------------------------------------------ */

/* As nobody: make a log in the open folder, mode 0666, with a forged record. */
static int nobody_plants_log(void *arg)
{
	ipcx_chan *c;
	char u[600];
	snprintf(u, sizeof(u), "%s?mode=0666", (const char *)arg);
	if (ipcx_dial(u, 0, &c) < 0)
		return 1;
	int ok = ipcx_send(c, "forged", 6, 1000) == 6;
	ipcx_close(c);
	return ok ? 0 : 2;
}

Test(trust, mmap_log_planted_by_nobody)
{
	need_root_and_nobody();
	t_tmpdir_open_to_all();
	cr_assert_eq(mkdir(t_path("pub"), 0777), 0);
	cr_assert_eq(chmod(t_path("pub"), 0777), 0); /* whatever the umask */
	const char *u = url_of("mmap", "pub/log", NULL);
	cr_assert_eq(t_run_as_nobody(nobody_plants_log, (void *)u), 0);
	struct stat st;
	cr_assert_eq(stat(t_path("pub/log"), &st), 0);
	cr_assert_eq(st.st_uid, nobody_uid, "nobody made it");
	ipcx_chan *c;
	expect_refused(ipcx_listen(u, 0, &c), "owned by uid");
	expect_refused(ipcx_dial(u, 0, &c), "not by you or root");
	/* The caller who says others may write it takes it as it is. */
	expect_accepted(ipcx_listen, url_of("mmap", "pub/log", "mode=0666"), "forged");
}

Test(trust, mmap_log_of_another_user)
{
	need_root_and_nobody();
	const char *u = url_of("mmap", "log", NULL);
	make_with_record(u, "theirs");
	cr_assert_eq(chown(t_path("log"), nobody_uid, nobody_gid), 0);
	ipcx_chan *c;
	expect_refused(ipcx_listen(u, 0, &c), "owned by uid");
	expect_accepted(ipcx_dial, url_of("mmap", "log", "mode=0666"), "theirs");
}

Test(trust, mmap_log_writable_by_others)
{
	need_root_and_nobody();
	const char *u = url_of("mmap", "log", NULL);
	make_with_record(u, "open");
	cr_assert_eq(chmod(t_path("log"), 0666), 0);
	ipcx_chan *c;
	expect_refused(ipcx_listen(u, 0, &c), "writable by group or others");
	cr_assert_eq(chmod(t_path("log"), 0620), 0);
	expect_refused(ipcx_dial(u, 0, &c), "writable by group or others");
	expect_refused(ipcx_dial(url_of("mmap", "log", "mode=0644"), 0, &c), "mode 0620");
	expect_accepted(ipcx_listen, url_of("mmap", "log", "mode=0660"), "open");
	cr_assert_eq(chmod(t_path("log"), 0666), 0);
	make_with_record(url_of("mmap", "log", "mode=0666"), "again");
	expect_accepted(ipcx_listen, url_of("mmap", "log", "mode=0666"), "again");
	/* Read bits are nobody's business here: 0644 is trusted as 0600 is. */
	cr_assert_eq(chmod(t_path("log"), 0644), 0);
	make_with_record(u, "read");
	expect_accepted(ipcx_listen, u, "read");
}

/* ---- file: ------------------------------------------------------------------ */

Test(trust, record_file_of_another_user)
{
	need_root_and_nobody();
	ipcx_chan *w, *c;
	const char *u = url_of("file", "recs", NULL);
	cr_assert_eq(ipcx_listen(u, 0, &w), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(w, "theirs", 6, 1000), 6);
	ipcx_close(w);
	cr_assert_eq(chown(t_path("recs"), nobody_uid, nobody_gid), 0);
	expect_refused(ipcx_dial(u, 0, &c), "owned by uid");
	expect_refused(ipcx_listen(u, 0, &c), "owned by uid");
	expect_accepted(ipcx_dial, url_of("file", "recs", "mode=0666"), "theirs");
}

Test(trust, record_file_writable_by_others)
{
	need_root_and_nobody();
	ipcx_chan *w, *c;
	const char *u = url_of("file", "recs", NULL);
	cr_assert_eq(ipcx_listen(u, 0, &w), 0, "%s", ipcx_errdetail());
	cr_assert_eq(ipcx_send(w, "open", 4, 1000), 4);
	ipcx_close(w);
	cr_assert_eq(chmod(t_path("recs"), 0666), 0);
	expect_refused(ipcx_dial(u, 0, &c), "writable by group or others");
	expect_refused(ipcx_listen(u, 0, &c), "writable by group or others");
	expect_accepted(ipcx_dial, url_of("file", "recs", "mode=0666"), "open");
	expect_accepted(ipcx_listen, url_of("file", "recs", "mode=0666"), "open");
}

/* ---- regions ------------------------------------------------------------------ */

static void expect_region(const char *url, int want, const char *detail)
{
	ipcx_region *r = NULL;
	int got = ipcx_region_open(url, 0, 0, &r);
	if (want == 0) {
		cr_expect_eq(got, 0, "%s: %s", url, ipcx_errdetail());
		ipcx_region_close(r);
	} else {
		expect_refused(got, detail);
	}
}

Test(trust, file_region)
{
	need_root_and_nobody();
	int fd = open(t_path("reg"), O_CREAT | O_EXCL | O_RDWR, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	close(fd);
	expect_region(url_of("file", "reg", NULL), 0, NULL);
	cr_assert_eq(chown(t_path("reg"), nobody_uid, nobody_gid), 0);
	expect_region(url_of("file", "reg", NULL), -EPERM, "owned by uid");
	expect_region(url_of("file", "reg", "mode=0666"), 0, NULL);
	cr_assert_eq(chown(t_path("reg"), 0, 0), 0);
	cr_assert_eq(chmod(t_path("reg"), 0666), 0);
	expect_region(url_of("file", "reg", NULL), -EPERM, "writable by group or others");
	expect_region(url_of("file", "reg", "mode=0666"), 0, NULL);
}

Test(trust, shm_region)
{
	need_root_and_nobody();
	char u[256], open_u[300];
	const char *name = t_name();
	snprintf(u, sizeof(u), "shm:/%s?keep=1&mode=0666", name);
	ipcx_region *a;
	cr_assert_eq(ipcx_region_open(u, IPCX_REGION_CREATE, 4096, &a), 0, "%s", ipcx_errdetail());
	ipcx_region_close(a);
	snprintf(open_u, sizeof(open_u), "shm:/%s", name);
	expect_region(open_u, -EPERM, "writable by group or others");
	expect_region(u, 0, NULL);
	int fd = shm_open(name, O_RDWR, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fchmod(fd, 0600), 0);
	cr_assert_eq(fchown(fd, nobody_uid, nobody_gid), 0);
	close(fd);
	expect_region(open_u, -EPERM, "owned by uid");
	expect_region(u, 0, NULL);
	shm_unlink(name);
}

/* ---- queues and rings in shared name spaces, on dial ------------------------------ */

/*
 * As nobody: take the name first (listen with mode=0666, kept), and put a
 * forged message in, as a squatter would for a root service to receive.
 */
static int nobody_plants(void *arg)
{
	char u[600];
	snprintf(u, sizeof(u), "%s%skeep=1&mode=0666", (const char *)arg,
		 strchr(arg, '?') ? "&" : "?");
	ipcx_chan *c, *d;
	if (ipcx_listen(u, 0, &c) < 0)
		return 1;
	/* A queue's listener can send; a ring's listener as well: either is a peer. */
	int ok = ipcx_dial(u, 0, &d) == 0 && ipcx_send(d, "forged", 6, 1000) == 6;
	if (ok)
		ipcx_close(d);
	ipcx_close(c);
	return ok ? 0 : 2;
}

/* url (no options) planted by nobody: refused on dial, taken with mode=0666. */
static void planted_by_nobody(const char *url, const char *opts)
{
	char with[600], plain[600];
	snprintf(plain, sizeof(plain), "%s%s%s", url, opts ? "?" : "", opts ? opts : "");
	snprintf(with, sizeof(with), "%s?%s%smode=0666", url, opts ? opts : "", opts ? "&" : "");
	cr_assert_eq(t_run_as_nobody(nobody_plants, plain), 0, "nobody took %s", url);
	ipcx_chan *c = NULL;
	expect_refused(ipcx_dial(plain, 0, &c), "owned by uid");
	cr_expect_null(c);
	/* Only a caller that says it shares the object with everyone takes it. */
	expect_accepted(ipcx_dial, with, "forged");
	cr_expect_eq(ipcx_obj_remove(url, IPCX_RM_FORCE), 0, "%s: %s", url, ipcx_errdetail());
}

static const char *posix_url(const char *scheme)
{
	static char u[2][256];
	static int n;
	char *b = u[n++ % 2];
	snprintf(b, 256, "%s:/%s", scheme, t_name());
	return b;
}

static const char *sysv_url(const char *scheme)
{
	static char u[2][256];
	static int n;
	char *b = u[n++ % 2];
	snprintf(b, 256, "%s:0x%08x", scheme, (unsigned)t_sysv_key());
	return b;
}

Test(trust, mq_planted_by_nobody)
{
	need_root_and_nobody();
	planted_by_nobody(posix_url("mq"), "maxmsg=4&msgsize=64");
}

Test(trust, sysvmq_planted_by_nobody)
{
	need_root_and_nobody();
	planted_by_nobody(sysv_url("sysvmq"), NULL);
}

Test(trust, shm_ring_planted_by_nobody)
{
	need_root_and_nobody();
	planted_by_nobody(posix_url("shm"), "capacity=4096&max=64");
}

Test(trust, sysvshm_ring_planted_by_nobody)
{
	need_root_and_nobody();
	planted_by_nobody(sysv_url("sysvshm"), "capacity=4096&max=64");
}

/* Our own objects that group or others may write: refused unless mode= says so. */
Test(trust, rings_and_queues_writable_by_others)
{
	need_root_and_nobody();
	const char *urls[] = { posix_url("mq"), sysv_url("sysvmq"), posix_url("shm"),
			       sysv_url("sysvshm") };
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char open_u[300], u[300];
		snprintf(u, sizeof(u), "%s?mode=0620", urls[i]);
		ipcx_chan *l, *c;
		cr_assert_eq(ipcx_listen(u, 0, &l), 0, "%s: %s", u, ipcx_errdetail());
		expect_refused(ipcx_dial(urls[i], 0, &c), "writable by group or others");
		snprintf(open_u, sizeof(open_u), "%s?mode=0644", urls[i]);
		expect_refused(ipcx_dial(open_u, 0, &c), "mode 0620");
		/* Root is in its own group only: 0660 accepts a root group's object. */
		snprintf(open_u, sizeof(open_u), "%s?mode=0660", urls[i]);
		cr_expect_eq(ipcx_dial(open_u, 0, &c), 0, "%s: %s", open_u, ipcx_errdetail());
		ipcx_close(c);
		ipcx_close(l);
	}
}

/*
 * A System V object names its creator apart from its owner, and the kernel
 * lets both write it.  A queue nobody made and then gave to root (IPC_SET of
 * uid and gid, which its creator may do) is still nobody's to forge.
 */
static int nobody_makes_and_gives(void *arg)
{
	int key = *(int *)arg;
	int id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
	struct msqid_ds ds;
	if (id < 0 || msgctl(id, IPC_STAT, &ds) < 0)
		return 1;
	ds.msg_perm.uid = 0;
	ds.msg_perm.gid = 0;
	return msgctl(id, IPC_SET, &ds) < 0 ? 2 : 0;
}

Test(trust, sysvmq_made_by_nobody_given_to_root)
{
	need_root_and_nobody();
	int key = t_sysv_key();
	cr_assert_eq(t_run_as_nobody(nobody_makes_and_gives, &key), 0);
	int id = msgget(key, 0);
	struct msqid_ds ds;
	cr_assert_eq(msgctl(id, IPC_STAT, &ds), 0);
	cr_assert_eq(ds.msg_perm.uid, 0, "root owns it now");
	cr_assert_eq(ds.msg_perm.cuid, nobody_uid, "nobody made it");
	char u[64], with[80];
	snprintf(u, sizeof(u), "sysvmq:0x%08x", (unsigned)key);
	snprintf(with, sizeof(with), "%s?mode=0666", u);
	ipcx_chan *c;
	expect_refused(ipcx_dial(u, 0, &c), "created by uid");
	cr_expect_eq(ipcx_dial(with, 0, &c), 0, "%s", ipcx_errdetail());
	ipcx_close(c);
	msgctl(id, IPC_RMID, NULL);
}
