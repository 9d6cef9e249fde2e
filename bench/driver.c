/*
 * `ipcx bench`: builds the list of mechanisms (raw baselines, ipcx
 * transports the library knows, primitives, peers whose programs were
 * built), runs every case with the same sizes and counts, and shows the
 * results.  Every object the run creates is named with the run's prefix,
 * in its own folder or System V keys, so that an interrupted run (Ctrl-C,
 * SIGTERM) can remove all of it before it exits.
 */
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The order of the table: each mechanism with its baseline and peers. */
static const char *const transport_order[] = {
	"pipe", "socketpair", "fifo", "unix", "unixpacket", "unixgram", "tcp", "udp", "nats",
	"mq", "sysvmq", "shm", "sysvshm", "mmap", "file",
	"rpc-shm", "rpc-sysvshm", "rpc-unix", "rpc-unixpacket", "rpc-tcp",
	"pubsub-shm", "pubsub-shm-drop", "pubsub-unix",
	"sem", "sysvsem", "mutex", "flock", "eventfd", "signal", "log", "pool", "slot", NULL,
};

/* Peer programs and the rows they provide (prim: measured once, as BH_OPS). */
struct peer {
	const char *prog, *impl, *transport, *mode, *arg;
	bool prim;
	int subs; /* fan-out rows: subscribers */
};
static const struct peer peers[] = {
	{ "ipcx-bench-zmq", "zmq", "unix", "ipc", "ipc", false, 0 },
	{ "ipcx-bench-zmq", "zmq", "tcp", "tcp", "tcp", false, 0 },
	{ "ipcx-bench-nng", "nng", "unix", "ipc", "ipc", false, 0 },
	{ "ipcx-bench-nng", "nng", "tcp", "tcp", "tcp", false, 0 },
	{ "ipcx-bench-iox", "iceoryx", "shm", "waitset", "shm", false, 0 },
	{ "ipcx-bench-zmq", "zmq", "rpc-unix", "req/rep", "reqrep-ipc", false, 0 },
	{ "ipcx-bench-zmq", "zmq", "rpc-unix", "dealer", "dealer-ipc", false, 0 },
	{ "ipcx-bench-zmq", "zmq", "rpc-tcp", "req/rep", "reqrep-tcp", false, 0 },
	{ "ipcx-bench-zmq", "zmq", "rpc-tcp", "dealer", "dealer-tcp", false, 0 },
	{ "ipcx-bench-nng", "nng", "rpc-unix", "req/rep", "reqrep-ipc", false, 0 },
	{ "ipcx-bench-nng", "nng", "rpc-tcp", "req/rep", "reqrep-tcp", false, 0 },
	{ "ipcx-bench-spdlog", "spdlog", "log", "1 writer", "1", true, 0 },
	{ "ipcx-bench-spdlog", "spdlog", "log", "2 writers", "2", true, 0 },
	{ "ipcx-bench-zmq", "zmq", "pubsub-unix", "1 sub", "pubsub-ipc", false, 1 },
	{ "ipcx-bench-zmq", "zmq", "pubsub-unix", "4 subs", "pubsub-ipc", false, 4 },
	{ "ipcx-bench-nng", "nng", "pubsub-unix", "1 sub", "pubsub-ipc", false, 1 },
	{ "ipcx-bench-nng", "nng", "pubsub-unix", "4 subs", "pubsub-ipc", false, 4 },
	{ "ipcx-bench-iox", "iceoryx", "pubsub-shm", "1 sub", "pubsub-shm", false, 1 },
	{ "ipcx-bench-iox", "iceoryx", "pubsub-shm", "4 subs", "pubsub-shm", false, 4 },
};
#define NPEERS (sizeof(peers) / sizeof(peers[0]))

struct opts {
	bool quick;
	char *only;
	const char *json, *report;
	bool have_sizes;
	bool progress;
	int ready_fd; /* --ready-fd, or -1 */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ipcx bench [--quick] [--only LIST] [--sizes LIST] [--json FILE]\n"
		"                  [--report FILE.html] [--ready-fd N]\n\n"
		"Measures every IPC mechanism side by side: round-trip latency (ping-pong\n"
		"between two processes on two cores) and one-way streaming throughput, for\n"
		"ipcx, the raw system calls, and ZeroMQ, nng and iceoryx where built; and\n"
		"request/reply (rpc-*): call round trip, and calls per second with %d in\n"
		"flight from one client.\n\n"
		"  --quick         fewer sizes and messages (under a minute)\n"
		"  --only LIST     comma-separated mechanisms or implementations:\n"
		"                  unix,shm,raw,ipcx,zmq,rpc ... (a case runs if any matches;\n"
		"                  rpc: every rpc-* row)\n"
		"  --sizes LIST    message sizes, e.g. 64,4K,1M\n"
		"  --json FILE     write {\"env\":..., \"results\":[...]}\n"
		"  --report FILE   write a self-contained HTML page with plots\n"
		"  --ready-fd N    once the run's first objects exist (both sides of a case\n"
		"                  are open), write a newline to descriptor N and close it\n"
		"                  (0, 1 and 2 stay open)\n\n"
		"docs/bench.md explains the method.\n", BH_INFLIGHT);
}

/* ---- what to run ------------------------------------------------------------- */

static bool matches(const char *only, const struct mech *m)
{
	if (!only)
		return true;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", only);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(t);
		if (!strcmp(t, m->transport) || !strcmp(t, m->impl))
			return true;
		/* "rpc": every rpc-* row */
		if (!strncmp(t, m->transport, n) && m->transport[n] == '-')
			return true;
	}
	return false;
}

static bool parse_size(const char *s, size_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno)
		return false;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' ? (end[1] == 'B' ? 2 : 1) : 1;
	if (*end || v > (64u << 20))
		return false;
	*ret = (size_t)v;
	return true;
}

static char self_dir[PATH_MAX];

static const char *peer_path(const char *prog, char *buf, size_t cap)
{
	const char *dir = getenv("IPCX_BENCH_PEERS");
	if ((size_t)snprintf(buf, cap, "%s/%s", dir && *dir ? dir : self_dir, prog) >= cap)
		return NULL;
	return access(buf, X_OK) == 0 ? buf : NULL;
}

static int add_mech(struct mech **list, size_t *n, struct mech m)
{
	struct mech *l = realloc(*list, (*n + 1) * sizeof(**list));
	if (!l)
		return -ENOMEM;
	l[(*n)++] = m;
	*list = l;
	return 0;
}

/* Every mechanism, grouped by transport in the table's order. */
static size_t build_mechs(const struct bh_params *probe, const char *only, struct mech **ret)
{
	struct mech *list = NULL;
	size_t n = 0;
	const struct bh_ops *const *sets[] = { bh_raw_ops, bh_ipcx_ops, bh_prim_ops,
					       bh_ipcx_prim_ops, bh_ipcx_rpc_ops, bh_log_ops, bh_pattern_ops };
	for (const char *const *t = transport_order; *t; t++) {
		for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++)
			for (const struct bh_ops *const *o = sets[s]; *o; o++) {
				if (strcmp((*o)->transport, *t))
					continue;
				/* Primitives, the log rows and patterns are measured once, at no size. */
				bool prim = sets[s] == bh_prim_ops || sets[s] == bh_ipcx_prim_ops ||
					    sets[s] == bh_log_ops || sets[s] == bh_pattern_ops;
				struct mech m = { (*o)->transport, (*o)->impl, (*o)->mode, *o, NULL,
						  NULL, prim, NULL, 0 };
				if (!matches(only, &m))
					continue;
				if (s == 1 && !bh_ipcx_available(*o, probe))
					continue; /* the library has no such transport yet */
				add_mech(&list, &n, m);
			}
		/* ipcx's fan-out rows: one publisher and 1 or 4 subscribers. */
		for (const struct bh_fan_ops *const *o = bh_ipcx_fan_ops; *o; o++)
			for (int k = 0; k < 2 && !strcmp((*o)->transport, *t); k++) {
				const char *mode = (*o)->modes ? (*o)->modes[k] : k ? "4 subs" : "1 sub";
				struct mech m = { (*o)->transport, (*o)->impl, mode,
						  NULL, NULL, NULL, false, *o, k ? 4 : 1 };
				if (matches(only, &m))
					add_mech(&list, &n, m);
			}
		for (size_t i = 0; i < NPEERS; i++) {
			char path[PATH_MAX];
			if (strcmp(peers[i].transport, *t) || !peer_path(peers[i].prog, path, sizeof(path)))
				continue;
			struct mech m = { peers[i].transport, peers[i].impl, peers[i].mode, NULL,
					  path, peers[i].arg, peers[i].prim, NULL,
					  peers[i].subs };
			if (!matches(only, &m) || !(m.exe = strdup(path)))
				continue;
			if (add_mech(&list, &n, m))
				free((char *)m.exe);
		}
	}
	*ret = list;
	return n;
}

/* Same counts for everyone: fewer for large messages, bounded in bytes. */
static void counts(enum bh_kind k, size_t size, bool quick, uint64_t *n, uint64_t *w)
{
	uint64_t base, cap, min;
	if (k == BH_THR) {
		base = quick ? 10000 : 100000;
		cap = quick ? (64u << 20) : (256u << 20);
		min = 64;
	} else {
		base = quick ? 1000 : 5000;
		cap = quick ? (32u << 20) : (128u << 20);
		min = 50;
	}
	uint64_t c = size ? cap / size : base;
	c = c < base ? c : base;
	*n = c < min ? min : c;
	*w = *n / 10 < 10 ? 10 : *n / 10;
}

/* ---- peers ------------------------------------------------------------------------ */

/* Wait for a child up to ms, then kill it; its wait status. */
static int wait_bounded(pid_t pid, int ms)
{
	int st = 0;
	for (int i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return st;
}

/* Run one case in a peer program, which prints one result line. */
static void run_peer(const struct mech *m, const struct bh_params *p, struct bh_result *r)
{
	int out[2];
	memset(r, 0, sizeof(*r));
	if (pipe2(out, O_CLOEXEC) < 0) {
		bh_note(r, BH_ERROR, "pipe: %s", strerror(errno));
		return;
	}
	char size[32], count[32], warm[32], cpus[32], tmo[32], seq[32], subs[16];
	snprintf(seq, sizeof(seq), "%u", p->seq);
	snprintf(subs, sizeof(subs), "%d", p->subs);
	snprintf(size, sizeof(size), "%zu", p->size);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)p->count);
	snprintf(warm, sizeof(warm), "%llu", (unsigned long long)p->warmup);
	snprintf(cpus, sizeof(cpus), "%d,%d", p->cpu[0], p->cpu[1]);
	snprintf(tmo, sizeof(tmo), "%d", p->timeout_ms);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(out[1], 1);
		/* Its library's log lines would tear the table: the result line says
		 * what went wrong. */
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, 0), dup2(devnull, 2);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execl(m->exe, m->exe, "--transport", m->exe_arg, "--kind",
		      p->kind == BH_LAT ? "lat" : p->kind == BH_OPS ? "ops" : "thr", "--size", size,
		      "--count", count,
		      "--warmup", warm, "--cpus", cpus, "--dir", p->dir, "--prefix", p->prefix,
		      "--timeout", tmo, "--seq", seq, p->subs ? "--subs" : (char *)NULL, subs,
		      (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	if (pid < 0) {
		close(out[0]);
		bh_note(r, BH_ERROR, "fork: %s", strerror(errno));
		return;
	}
	char line[1024];
	size_t used = 0;
	/* The peer keeps its own guard; ours is a little longer. */
	uint64_t deadline = bh_now() + (uint64_t)(p->timeout_ms + 5000) * 1000000u;
	bool done = false, timed_out = false;
	while (!done) {
		if (stop) {
			kill(pid, SIGTERM);
			break;
		}
		if (bh_now() > deadline) {
			kill(pid, SIGKILL);
			timed_out = true;
			break;
		}
		struct pollfd pf = { out[0], POLLIN, 0 };
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t k = read(out[0], line + used, sizeof(line) - 1 - used);
		if (k <= 0)
			break;
		used += (size_t)k;
		done = used == sizeof(line) - 1;
	}
	line[used] = 0;
	close(out[0]);
	int st = wait_bounded(pid, 3000);
	char *l = strstr(line, "result ");
	if (stop)
		bh_note(r, BH_ERROR, "interrupted");
	else if (timed_out)
		bh_note(r, BH_ERROR, "timed out");
	else if (!l || bh_result_parse(l, r) < 0)
		bh_note(r, BH_ERROR, "the peer program failed (status %d)", st);
}

/* The first line a program prints when run with one argument, or "". */
static void first_line(const char *prog, const char *arg, char *buf, size_t cap)
{
	buf[0] = 0;
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, 0), dup2(devnull, 2);
		execl(prog, prog, arg, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	size_t used = 0;
	ssize_t k;
	while (pid > 0 && used + 1 < cap && (k = read(out[0], buf + used, cap - 1 - used)) > 0)
		used += (size_t)k;
	buf[used] = 0;
	buf[strcspn(buf, "\n")] = 0;
	close(out[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* "zmq 4.3.4": ask each peer program for its library's version. */
static void peer_versions(const struct mech *ms, size_t n, char *buf, size_t cap)
{
	buf[0] = 0;
	const char *seen[8];
	size_t nseen = 0;
	for (size_t i = 0; i < n && nseen < 8; i++) {
		if (!ms[i].exe)
			continue;
		bool dup = false;
		for (size_t j = 0; j < nseen; j++)
			dup |= !strcmp(seen[j], ms[i].exe);
		if (dup)
			continue;
		seen[nseen++] = ms[i].exe;
		char v[128];
		first_line(ms[i].exe, "--version", v, sizeof(v));
		size_t len = strlen(buf);
		snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", *v ? v : ms[i].impl);
	}
}

/*
 * Start a daemon the bench needs (argv[0] found in PATH): its output goes to
 * /dev/null, it dies with the bench, and it takes SIGINT and SIGTERM as
 * usual whatever the bench does with them.  Its pid, or -1 (errno).
 */
static pid_t spawn_daemon(const char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, 0), dup2(devnull, 1), dup2(devnull, 2);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* ---- iceoryx's daemon --------------------------------------------------------- */

static pid_t roudi_pid;

/*
 * What RouDi creates: its management segment, a segment named after the
 * user, its socket and lock files.  It removes them when it stops cleanly;
 * when it does not (it can abort on shutdown after clients came and went),
 * the bench removes them, since it checked that none existed before.
 */
static void roudi_files(char files[5][128])
{
	struct passwd *pw = getpwuid(geteuid());
	snprintf(files[0], 128, "/dev/shm/iceoryx_mgmt");
	snprintf(files[1], 128, "/dev/shm/%s", pw ? pw->pw_name : "root");
	snprintf(files[2], 128, "/tmp/roudi");
	snprintf(files[3], 128, "/tmp/roudi.lock");
	snprintf(files[4], 128, "/tmp/iox-unique-roudi.lock");
}

static int roudi_start(void)
{
	char files[5][128];
	roudi_files(files);
	for (int i = 0; i < 5; i++)
		if (access(files[i], F_OK) == 0)
			return -EBUSY; /* another RouDi runs, or left these: not ours */
	static const char *const argv[] = { "iox-roudi", NULL };
	pid_t pid = spawn_daemon(argv);
	if (pid < 0)
		return -errno;
	roudi_pid = pid;
	return 0;
}

static void roudi_stop(void)
{
	if (roudi_pid <= 0)
		return;
	kill(roudi_pid, SIGTERM);
	bool gone = false;
	for (int i = 0; i < 200 && !gone; i++) {
		gone = waitpid(roudi_pid, NULL, WNOHANG) == roudi_pid;
		struct timespec ts = { 0, 25 * 1000000 };
		if (!gone)
			nanosleep(&ts, NULL);
	}
	if (!gone) {
		kill(roudi_pid, SIGKILL);
		waitpid(roudi_pid, NULL, 0);
	}
	roudi_pid = 0;
	char files[5][128];
	roudi_files(files);
	for (int i = 0; i < 5; i++)
		unlink(files[i]);
}

/* ---- a nats-server for the nats:// rows ------------------------------------------ */

/*
 * One local server on a free loopback port, for the whole run, in a folder
 * of the run's own (its ports file).  It is ready when it has written that
 * file (--ports_file_dir), which inotify tells us; a server that exits
 * first (not installed, cannot listen) is seen through a pidfd.
 */
static pid_t nats_pid;
static char nats_dir[160];

static int nats_port(void)
{
	char path[256], buf[512];
	snprintf(path, sizeof(path), "%s/nats-server_%d.ports", nats_dir, (int)nats_pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	const char *p = strstr(buf, "nats://127.0.0.1:");
	return p ? atoi(p + strlen("nats://127.0.0.1:")) : 0;
}

static int nats_wait(int ifd, int pfd)
{
	struct pollfd p[2] = { { ifd, POLLIN, 0 }, { pfd, POLLIN, 0 } };
	uint64_t deadline = bh_now() + 20000000000u;
	int port;
	while (!(port = nats_port())) {
		if (stop || bh_now() > deadline || (p[1].revents & POLLIN))
			return -ESRCH;
		if (poll(p, pfd >= 0 ? 2 : 1, 1000) > 0 && (p[0].revents & POLLIN)) {
			char ev[4096];
			ssize_t k = read(ifd, ev, sizeof(ev));
			(void)k;
		}
	}
	return port;
}

static void nats_stop(void);

static int nats_start(struct bh_params *base)
{
	snprintf(nats_dir, sizeof(nats_dir), "%s/nats", base->dir);
	int ifd = -1;
	if (mkdir(nats_dir, 0700) < 0 || (ifd = inotify_init1(IN_CLOEXEC)) < 0 ||
	    inotify_add_watch(ifd, nats_dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		int err = -errno;
		if (ifd >= 0)
			close(ifd);
		rmdir(nats_dir);
		return err;
	}
	const char *const argv[] = { "nats-server", "-a", "127.0.0.1", "-p", "-1",
				     "--ports_file_dir", nats_dir, NULL };
	pid_t pid = spawn_daemon(argv);
	int err = pid < 0 ? -errno : 0;
	nats_pid = pid > 0 ? pid : 0;
	int pfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	int port = pid > 0 ? nats_wait(ifd, pfd) : err;
	close(ifd);
	if (pfd >= 0)
		close(pfd);
	if (port <= 0) {
		nats_stop();
		return port < 0 ? port : -ESRCH;
	}
	snprintf(base->nats, sizeof(base->nats), "127.0.0.1:%d", port);
	return 0;
}

static void nats_stop(void)
{
	if (nats_pid > 0) {
		kill(nats_pid, SIGTERM);
		wait_bounded(nats_pid, 5000); /* SIGKILL past that; reaped either way */
		char path[256];
		snprintf(path, sizeof(path), "%s/nats-server_%d.ports", nats_dir, (int)nats_pid);
		unlink(path);
		nats_pid = 0;
	}
	if (nats_dir[0])
		rmdir(nats_dir);
	nats_dir[0] = '\0';
}

/* ---- the run ---------------------------------------------------------------------- */

static void fill_env(struct env *e, bool quick, const int cpus[2])
{
	memset(e, 0, sizeof(*e));
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(e->cpu, sizeof(e->cpu), "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (c && !strncmp(line, "model name", 10)) {
			c += 2;
			c[strcspn(c, "\n")] = 0;
			snprintf(e->cpu, sizeof(e->cpu), "%s", c);
			break;
		}
	}
	if (f)
		fclose(f);
	e->cores = sysconf(_SC_NPROCESSORS_ONLN);
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(e->kernel, sizeof(e->kernel), "%s %s %s", u.sysname, u.release, u.machine);
	e->cpus[0] = cpus[0];
	e->cpus[1] = cpus[1];
	e->quick = quick;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(e->date, sizeof(e->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void progress(const struct opts *o, size_t done, size_t total, const struct mech *m,
		     const char *what, size_t size)
{
	if (!o->progress)
		return;
	char sz[32];
	int width = 30, fill = total ? (int)(done * (size_t)width / total) : width;
	fprintf(stderr, "\r[%.*s%*s] %3zu/%zu %-10s %-8s %-9s %8s %-10s", fill,
		"##############################", width - fill, "", done, total, m->transport,
		m->impl, m->mode, m->prim ? "" : fmt_size(size, sz, sizeof(sz)), what);
	fflush(stderr);
}

static int add_outcome(struct run *run, const struct outcome *o)
{
	if (run->nout == run->capout) {
		size_t cap = run->capout ? run->capout * 2 : 64;
		struct outcome *n = realloc(run->out, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		run->out = n;
		run->capout = cap;
	}
	run->out[run->nout++] = *o;
	return 0;
}

static void run_case(const struct mech *m, struct bh_params *p, struct run *run)
{
	static unsigned seq;
	p->seq = ++seq;
	struct outcome o = { m, p->kind, p->size, p->count, 0, { 0 } };
	uint64_t t0 = bh_now();
	p->subs = m->subs;
	if (m->fan)
		bh_fan_run(m->fan, p, &stop, &o.r);
	else if (m->ops)
		bh_run(m->ops, p, &stop, &o.r);
	else
		run_peer(m, p, &o.r);
	o.wall_ns = bh_now() - t0;
	/* A side that was killed cannot have removed its objects: do it. */
	if (o.r.status != BH_OK || stop)
		bh_sweep(p);
	add_outcome(run, &o);
}

/* A descriptor open for writing, for --ready-fd; kept from peer programs. */
static bool parse_ready_fd(const char *s, int *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < 0 || v > INT_MAX)
		return false;
	int fl = fcntl((int)v, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY ||
	    (v > 2 && fcntl((int)v, F_SETFD, FD_CLOEXEC) < 0))
		return false;
	*ret = (int)v;
	return true;
}

static int parse_opts(int argc, char **argv, struct opts *o, struct run *run)
{
	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(a, "--quick")) {
			o->quick = true;
		} else if (!strcmp(a, "--only") && v) {
			o->only = argv[++i];
		} else if (!strcmp(a, "--json") && v) {
			o->json = argv[++i];
		} else if (!strcmp(a, "--report") && v) {
			o->report = argv[++i];
		} else if (!strcmp(a, "--ready-fd") && v) {
			if (!parse_ready_fd(argv[++i], &o->ready_fd)) {
				fprintf(stderr, "ipcx bench: --ready-fd %s: not a descriptor open "
						"for writing\n", argv[i]);
				return -1;
			}
		} else if (!strcmp(a, "--sizes") && v) {
			char buf[256];
			snprintf(buf, sizeof(buf), "%s", argv[++i]);
			run->nsizes = 0;
			for (char *save, *t = strtok_r(buf, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (run->nsizes == 16 || !parse_size(t, &run->sizes[run->nsizes])) {
					fprintf(stderr, "ipcx bench: bad size '%s' (up to 16 sizes, "
							"0 .. 64M, e.g. 64,4K,1M)\n", t);
					return -1;
				}
				run->nsizes++;
			}
			o->have_sizes = run->nsizes > 0;
		} else {
			fprintf(stderr, "ipcx bench: unknown or incomplete option '%s' "
					"(see 'ipcx bench --help')\n", a);
			return -1;
		}
	}
	return 0;
}

/* Where this run's objects live: names carry the test tag when there is one. */
static int make_place(struct bh_params *p)
{
	const char *tag = getenv("IPCX_TEST_TAG");
	unsigned keyhi = 0x7b00u;
	if (tag && *tag) {
		snprintf(p->prefix, sizeof(p->prefix), "ipcxt-%.16s-b%d", tag, (int)getpid());
		/* As a test's keys: tests/cli/lib/sysvkey.bash. */
		char hex[5];
		snprintf(hex, sizeof(hex), "%.4s", tag);
		keyhi = (unsigned)strtoul(hex, NULL, 16) & 0x7fffu;
		if (!keyhi)
			keyhi = 0x7fffu; /* never 0, as the tests' */
	} else {
		snprintf(p->prefix, sizeof(p->prefix), "ipcxb-%d", (int)getpid());
	}
	/* Two keys per run; the low half from the pid keeps concurrent runs apart. */
	p->key = (int)(keyhi << 16 | (((unsigned)getpid() * 2u) & 0xfffeu));
	snprintf(p->dir, sizeof(p->dir), "/tmp/%s-XXXXXX", p->prefix);
	if (!mkdtemp(p->dir))
		return -errno;
	return 0;
}

/*
 * The sizes a mechanism runs at: fan-out rows, unless --sizes says, at 64 B
 * and 64 KiB only (of the run's sizes; each case is 1 + N processes).
 */
static bool runs_at(const struct opts *o, const struct mech *m, size_t size)
{
	return !m->subs || o->have_sizes || size == 64 || size == 65536;
}

static void run_all(const struct opts *o, struct mech *ms, size_t nm, struct bh_params *base,
		    struct run *run)
{
	size_t total = 0, done = 0;
	for (size_t i = 0; i < nm; i++)
		for (int s = 0; s < (ms[i].prim ? 1 : run->nsizes); s++)
			total += ms[i].prim ? 1 : runs_at(o, &ms[i], run->sizes[s]) ? 2 : 0;
	bool roudi_tried = false, nats_tried = false;
	for (size_t i = 0; i < nm && !stop; i++) {
		const struct mech *m = &ms[i];
		if (!strcmp(m->transport, "nats") && !nats_tried) {
			nats_tried = true;
			int r = nats_start(base);
			if (r) {
				struct outcome out = { m, BH_LAT, 0, 0, 0, { 0 } };
				bh_note(&out.r, BH_SKIP, "nats-server: %s", r == -ESRCH ?
					"did not start (is Debian's nats-server installed?)" : strerror(-r));
				add_outcome(run, &out);
				done += (size_t)run->nsizes * 2;
				continue;
			}
		}
		if (!strcmp(m->transport, "nats") && !base->nats[0])
			continue;
		if (!strcmp(m->impl, "iceoryx") && !roudi_tried) {
			roudi_tried = true;
			int r = roudi_start();
			if (r) {
				struct outcome out = { m, BH_LAT, 0, 0, 0, { 0 } };
				bh_note(&out.r, BH_SKIP, "iox-roudi: %s", strerror(-r));
				add_outcome(run, &out);
				done += (size_t)run->nsizes * 2;
				continue;
			}
		}
		if (m->prim) {
			struct bh_params p = *base;
			p.kind = (m->ops && m->ops->op) || (m->exe && m->prim) ? BH_OPS : BH_LAT;
			p.size = 0;
			counts(BH_LAT, 0, o->quick, &p.count, &p.warmup);
			progress(o, done, total, m, "hand-off", 0);
			run_case(m, &p, run);
			done++;
			continue;
		}
		for (int s = 0; s < run->nsizes && !stop; s++) {
			for (int k = 0; k < 2 && !stop && runs_at(o, m, run->sizes[s]); k++) {
				struct bh_params p = *base;
				p.kind = k ? BH_THR : BH_LAT;
				p.size = run->sizes[s];
				counts(p.kind, p.size, o->quick, &p.count, &p.warmup);
				progress(o, done, total, m, k ? "stream" : "ping-pong", p.size);
				run_case(m, &p, run);
				done++;
			}
		}
	}
	roudi_stop();
	nats_stop();
	if (o->progress)
		fprintf(stderr, "\r%*s\r", 100, "");
}

static int write_reports(const struct opts *o, const struct run *run)
{
	report_table(run, stdout);
	int status = 0;
	if (o->json && report_json(run, o->json) < 0) {
		fprintf(stderr, "ipcx bench: cannot write %s: %s\n", o->json, strerror(errno));
		status = 1;
	}
	if (o->report && report_html(run, o->report) < 0) {
		fprintf(stderr, "ipcx bench: cannot write %s: %s\n", o->report, strerror(errno));
		status = 1;
	}
	return status;
}

int bench_main(int argc, char **argv)
{
	struct opts o;
	struct run run;
	memset(&run, 0, sizeof(run));
	static const size_t full[] = { 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };
	static const size_t quick[] = { 64, 1024, 65536 };
	int r = parse_opts(argc, argv, &o, &run);
	if (r)
		return r > 0 ? 0 : 2;
	if (!o.have_sizes) {
		const size_t *s = o.quick ? quick : full;
		run.nsizes = o.quick ? 3 : 8;
		memcpy(run.sizes, s, (size_t)run.nsizes * sizeof(*s));
	}
	o.progress = isatty(2);

	ssize_t k = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	self_dir[k > 0 ? k : 0] = 0;
	char *slash = strrchr(self_dir, '/');
	if (slash)
		*slash = 0;

	struct bh_params base;
	memset(&base, 0, sizeof(base));
	if (make_place(&base) < 0) {
		fprintf(stderr, "ipcx bench: cannot make a folder in /tmp: %s\n", strerror(errno));
		return 1;
	}
	bh_pick_cpus(base.cpu);
	base.timeout_ms = o.quick ? 20000 : 60000;
	base.ready_fd = &o.ready_fd;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: waits return and look at the flag */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct mech *ms = NULL;
	size_t nm = build_mechs(&base, o.only, &ms);
	fill_env(&run.env, o.quick, base.cpu);
	peer_versions(ms, nm, run.env.peers, sizeof(run.env.peers));
	snprintf(run.env.options, sizeof(run.env.options), "%s%s%s", o.quick ? "--quick" : "",
		 o.only ? " --only " : "", o.only ? o.only : "");
	if (!nm) {
		rmdir(base.dir);
		free(ms);
		fprintf(stderr, "ipcx bench: nothing matches --only %s\n", o.only ? o.only : "");
		return 2;
	}

	run_all(&o, ms, nm, &base, &run);
	bh_sweep(&base);
	rmdir(base.dir);
	int status = 0;
	if (stop) {
		fprintf(stderr, "ipcx bench: interrupted; removed what it had created\n");
		status = 130;
	} else {
		status = write_reports(&o, &run);
	}
	if (o.ready_fd > 2)
		close(o.ready_fd); /* no case got its sides open: closed without a word */
	for (size_t i = 0; i < nm; i++)
		free((char *)ms[i].exe);
	free(ms);
	free(run.out);
	return status;
}
