#include "tnats.h"
#include "tsupport.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	return remove(p);
}

/*
 * Every server this process started and has not stopped, so that a test
 * that stops early (a failed assertion) leaves none behind: stopped at exit.
 * Copies, not pointers: a test's struct t_nats may be on its stack.
 */
static struct {
	pid_t pid;
	char dir[256];
} running[32];
static pid_t running_owner;

static void forget(pid_t pid)
{
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
		if (running[i].pid == pid)
			running[i].pid = 0;
}

static void stop_running(void)
{
	if (running_owner != getpid())
		return;
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++) {
		if (running[i].pid <= 0)
			continue;
		kill(running[i].pid, SIGKILL);
		t_join(running[i].pid, T_GUARD_MS);
		nftw(running[i].dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		running[i].pid = 0;
	}
}

static void remember(const struct t_nats *s)
{
	if (running_owner != getpid()) {
		memset(running, 0, sizeof(running));
		if (!running_owner)
			atexit(stop_running);
		running_owner = getpid();
	}
	for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
		if (running[i].pid <= 0) {
			running[i].pid = s->pid;
			snprintf(running[i].dir, sizeof(running[i].dir), "%s", s->dir);
			return;
		}
}

static void exec_server(const struct t_nats *s, bool js, const char *cluster,
			const char *routes, int port)
{
	char log[300], portarg[16], clusterurl[64];
	snprintf(log, sizeof(log), "%s/log", s->dir);
	snprintf(portarg, sizeof(portarg), "%d", port ? port : -1);
	snprintf(clusterurl, sizeof(clusterurl), "nats://127.0.0.1:-1");
	const char *argv[20];
	int n = 0;
	argv[n++] = "nats-server";
	argv[n++] = "-a";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-p";
	argv[n++] = portarg;
	argv[n++] = "--ports_file_dir";
	argv[n++] = s->dir;
	if (js) {
		argv[n++] = "-js";
		argv[n++] = "-sd";
		argv[n++] = s->dir;
	}
	if (cluster) {
		argv[n++] = "--cluster";
		argv[n++] = clusterurl;
		argv[n++] = "--cluster_name";
		argv[n++] = cluster;
	}
	if (routes) {
		argv[n++] = "--routes";
		argv[n++] = routes;
	}
	argv[n] = NULL;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		dup2(fd, 1), dup2(fd, 2);
	if (null >= 0)
		dup2(null, 0);
	execvp("nats-server", (char **)argv);
	_exit(127);
}

/* "...\"KEY\":[\"nats://127.0.0.1:PORT\"..." : PORT, or 0. */
static int port_of(const char *json, const char *key)
{
	char pat[32];
	snprintf(pat, sizeof(pat), "\"%s\":[\"", key);
	const char *p = strstr(json, pat);
	if (!p || !(p = strstr(p + strlen(pat), "127.0.0.1:")))
		return 0;
	return atoi(p + strlen("127.0.0.1:"));
}

static bool read_ports(struct t_nats *s)
{
	char path[320], buf[1024];
	snprintf(path, sizeof(path), "%s/nats-server_%d.ports", s->dir, (int)s->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	s->port = port_of(buf, "nats");
	s->cluster_port = port_of(buf, "cluster");
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
	if (s->cluster_port)
		snprintf(s->route, sizeof(s->route), "nats://127.0.0.1:%d", s->cluster_port);
	return s->port > 0;
}

static void print_log(const struct t_nats *s)
{
	char path[300], line[512];
	snprintf(path, sizeof(path), "%s/log", s->dir);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "nats-server: %s", line);
	if (f)
		fclose(f);
}

/*
 * Wait until the ports file is there (written when the server listens) or
 * the server is dead.  The inotify watch was made before the fork, so the
 * file cannot be written unseen.
 */
static bool wait_ports(struct t_nats *s, int ifd)
{
	int pfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	struct pollfd p[2] = { { ifd, POLLIN, 0 }, { pfd, POLLIN, 0 } };
	for (;;) {
		if (read_ports(s))
			break;
		int r = poll(p, pfd >= 0 ? 2 : 1, T_GUARD_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (p[1].revents & POLLIN))
			break;
		char ev[4096];
		ssize_t n = read(ifd, ev, sizeof(ev));
		(void)n;
	}
	if (pfd >= 0)
		close(pfd);
	return s->port > 0;
}

bool t_nats_start(struct t_nats *s, bool jetstream, const char *cluster, const char *routes,
		  int port)
{
	static unsigned n;
	if (!s->dir[0]) {
		snprintf(s->dir, sizeof(s->dir), "%s", t_path(""));
		snprintf(s->dir + strlen(s->dir), sizeof(s->dir) - strlen(s->dir), "nats-%d-%u",
			 (int)getpid(), ++n);
		if (mkdir(s->dir, 0700) < 0 && errno != EEXIST)
			return false;
	}
	s->port = s->cluster_port = 0;
	s->route[0] = '\0';
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0 || inotify_add_watch(ifd, s->dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
		return false;
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		exec_server(s, jetstream, cluster, routes, port);
	}
	if (pid < 0) {
		close(ifd);
		return false;
	}
	s->pid = pid;
	remember(s);
	bool ok = wait_ports(s, ifd);
	close(ifd);
	if (!ok) {
		fprintf(stderr, "nats-server did not start (is Debian's nats-server installed?)\n");
		print_log(s);
		t_nats_kill(s, SIGKILL);
	}
	return ok;
}

void t_nats_kill(struct t_nats *s, int sig)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	if (t_join(s->pid, T_GUARD_MS) < 0)
		fprintf(stderr, "nats-server %d: cannot reap it\n", (int)s->pid);
	forget(s->pid);
	s->pid = 0;
}

void t_nats_stop(struct t_nats *s)
{
	t_nats_kill(s, SIGTERM);
	if (s->dir[0])
		nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	s->dir[0] = '\0';
}

bool t_nats_cluster(struct t_nats s[3])
{
	char routes[200];
	memset(s, 0, 3 * sizeof(*s));
	const char *name = t_name();
	for (int i = 0; i < 3; i++) {
		routes[0] = '\0';
		for (int j = 0; j < i; j++)
			snprintf(routes + strlen(routes), sizeof(routes) - strlen(routes), "%s%s",
				 j ? "," : "", s[j].route);
		if (!t_nats_start(&s[i], false, name, i ? routes : NULL, 0)) {
			for (int j = 0; j < i; j++)
				t_nats_stop(&s[j]);
			return false;
		}
	}
	return true;
}

static struct t_nats shared;
static pid_t shared_owner;

static void shared_stop(void)
{
	if (shared_owner == getpid())
		t_nats_stop(&shared);
}

const char *t_nats_addr(void)
{
	if (shared_owner == getpid() && shared.pid > 0)
		return shared.addr;
	memset(&shared, 0, sizeof(shared));
	cr_assert(t_nats_start(&shared, true, NULL, NULL, 0), "cannot start a nats-server");
	if (!shared_owner)
		atexit(shared_stop);
	shared_owner = getpid();
	return shared.addr;
}
