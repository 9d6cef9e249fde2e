#include "tsupport.h"

#include "core/record.h"
#include "inspect/objurl.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

const char *t_tag(void)
{
	const char *t = getenv("IPCX_TEST_TAG");
	return t && *t ? t : "local";
}

const char *t_name(void)
{
	static __thread char buf[8][64];
	static __thread unsigned slot;
	static unsigned counter;
	char *b = buf[slot++ % 8];
	snprintf(b, 64, "ipcxt-%s-%d-%u", t_tag(), (int)getpid(),
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	return b;
}

int t_sysv_key(void)
{
	static unsigned counter;
	/* The tag's first four hex digits less the top bit, as in
	 * tests/cli/lib/sysvkey.bash, then 16 bits from the pid and a counter.
	 * Never 0 (a tag of 0000..., 8000... or none in hex, "local" outside
	 * ctest): a key below 0x10000 is one the pool's "sysvmq:KEY" refuses. */
	char hex[5];
	snprintf(hex, sizeof(hex), "%.4s", t_tag());
	unsigned hi = (unsigned)strtoul(hex, NULL, 16) & 0x7fffu;
	if (!hi)
		hi = 0x7fffu;
	unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	unsigned low = ((unsigned)getpid() * 31u + n * 7919u) & 0xffffu;
	return (int)(hi << 16 | low);
}

static char tmpdir[128];
static pid_t tmpdir_owner;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	return remove(p);
}

static void tmpdir_cleanup(void)
{
	if (tmpdir[0] && tmpdir_owner == getpid())
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *t_tmpdir(void)
{
	if (tmpdir[0] && tmpdir_owner == getpid())
		return tmpdir;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ipcxt-%s-%d-XXXXXX", t_tag(), (int)getpid());
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		abort();
	}
	if (!tmpdir_owner)
		atexit(tmpdir_cleanup);
	tmpdir_owner = getpid();
	return tmpdir;
}

const char *t_path(const char *leaf)
{
	static __thread char buf[8][256];
	static __thread unsigned slot;
	char *b = buf[slot++ % 8];
	snprintf(b, 256, "%s/%s", t_tmpdir(), leaf);
	return b;
}

void t_sync_init(struct t_sync *s)
{
	if (pipe2(s->fd, O_CLOEXEC) != 0)
		abort();
}

void t_post(struct t_sync *s)
{
	char c = 1;
	while (write(s->fd[1], &c, 1) < 0 && errno == EINTR)
		;
}

bool t_wait_post(struct t_sync *s, int timeout_ms)
{
	struct pollfd p = { .fd = s->fd[0], .events = POLLIN };
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		char c;
		return read(s->fd[0], &c, 1) == 1;
	}
}

bool t_wait_gate(struct t_sync *s, int timeout_ms)
{
	close(s->fd[1]); /* ours: the gate opens when the last write end goes */
	s->fd[1] = -1;
	struct pollfd p = { .fd = s->fd[0], .events = POLLIN };
	int r;
	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	char c;
	return r == 1 && read(s->fd[0], &c, 1) == 0;
}

void t_open_gate(struct t_sync *s)
{
	close(s->fd[1]);
	s->fd[1] = -1;
}

void t_sync_close(struct t_sync *s)
{
	close(s->fd[0]);
	if (s->fd[1] >= 0) /* not an opened gate */
		close(s->fd[1]);
}

pid_t t_spawn(int (*fn)(void *arg), void *arg)
{
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		/* A test that dies before it reaps its child must not leave the
		 * child running (a listener waiting forever, say). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99); /* the parent died before prctl() */
		tmpdir_owner = 0; /* the child must not remove the parent's folder */
		_exit(fn(arg));
	}
	return pid;
}

int t_join(pid_t pid, int timeout_ms)
{
	/* A pidfd becomes readable when the child exits: no polling loop. */
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		int r;
		while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		close(pfd);
		if (r == 0)
			kill(pid, SIGKILL);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char *t_bin(void)
{
	const char *b = getenv("IPCX_BIN");
	return b ? b : "build/bin/ipcx";
}

const char *t_helper(void)
{
	const char *b = getenv("IPCX_TEST_HELPER");
	return b ? b : "build/bin/ipcx_test_helper";
}

int t_record_created(const char *url)
{
	char name[IPCX__NAME_MAX];
	struct ipcx__objid o;
	int r = ipcx__obj_parse(url, &o, name, sizeof(name));
	return r < 0 ? r : ipcx__record_created(&o);
}

void t_record_removed(const char *url)
{
	char name[IPCX__NAME_MAX];
	struct ipcx__objid o;
	if (ipcx__obj_parse(url, &o, name, sizeof(name)) == 0)
		ipcx__record_removed(&o);
}

bool t_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	return r > 0 && (p.revents & POLLIN);
}

bool t_chan_readable(ipcx_chan *c, int timeout_ms)
{
	return t_readable(ipcx_fileno(c), timeout_ms);
}

void t_expect_recv(ipcx_chan *c, const char *want)
{
	char buf[256];
	ssize_t n = ipcx_recv(c, buf, sizeof(buf), T_GUARD_MS);
	cr_assert_eq(n, (ssize_t)strlen(want), "got %zd for '%s': %s", n, want, ipcx_errdetail());
	cr_expect_eq(memcmp(buf, want, (size_t)n), 0, "want '%s'", want);
}
