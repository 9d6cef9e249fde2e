/*
 * The byte-stream transports (fd: pipes, fifo:, unix:, tcp://) at their
 * edges: messages of every size around the kernel's and ipcx's own
 * boundaries, and peers that announce more than they send.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <ipcx.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tsupport.h"

#define MAX (300u << 10) /* max= for every channel below */

struct stream_case {
	const char *name;
	const char *pair; /* ipcx_pair() kind, or NULL */
	const char *fmt;  /* URL with %s for a fresh path, or NULL */
};

static const struct stream_case stream_cases[] = {
	{ "fd-pipe", "pipe", NULL },
	{ "fifo", NULL, "fifo:%s?max=307200" },
	{ "unix", NULL, "unix:%s?max=307200" },
	{ "tcp", NULL, "tcp://127.0.0.1:0?max=307200" },
};
#define NSTREAM (sizeof(stream_cases) / sizeof(stream_cases[0]))

static struct criterion_test_params stream_params(void)
{
	static int idx[NSTREAM];
	for (size_t i = 0; i < NSTREAM; i++)
		idx[i] = (int)i;
	return cr_make_param_array(int, idx, NSTREAM);
}

/* The sizes where something changes: a frame header, PIPE_BUF, one chunk of
 * a FIFO, the pipe's 64 KiB, the 64 KiB read-ahead buffer and its doubling,
 * and max. */
static const size_t sizes[] = {
	0,	1,	4059,	4060,	4063,	4064,	4065,	4068,	4088,	4091,	4092,
	4093,	4095,	4096,	4097,	8128,	8129,	8192,	65531,	65532,	65533,
	65535,	65536,	65537,	65540,	131068, 131072, 131073, 262144, MAX - 1, MAX,
};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void fill(char *m, size_t n, size_t k)
{
	for (size_t i = 0; i < n; i++)
		m[i] = (char)(k * 37 + i * 13 + (i >> 12));
}

struct sender {
	char url[400];
	ipcx_chan *end; /* pairs: the writing end, inherited */
};

static int send_every_size(void *arg)
{
	struct sender *s = arg;
	ipcx_chan *c = s->end;
	if (!c && ipcx_dial(s->url, 0, &c) < 0)
		return 90;
	char *m = malloc(MAX);
	for (size_t k = 0; k < NSIZES; k++) {
		fill(m, sizes[k], k);
		if (ipcx_send(c, m, sizes[k], T_GUARD_MS) != (ssize_t)sizes[k])
			return 91;
	}
	free(m);
	return ipcx_close(c) == 0 ? 0 : 92;
}

ParameterizedTestParameters(stream, every_boundary_size)
{
	return stream_params();
}

/* Each size, sent by another process, is received whole within a timeout. */
ParameterizedTest(int *ci, stream, every_boundary_size, .timeout = 300)
{
	const struct stream_case *tc = &stream_cases[*ci];
	ipcx_chan *l;
	struct sender s = { "", NULL };
	if (tc->pair) {
		cr_assert_eq(ipcx_pair(tc->pair, 0, &s.end, &l), 0);
	} else {
		char url[400];
		snprintf(url, sizeof(url), tc->fmt, t_path(t_name()));
		cr_assert_eq(ipcx_listen(url, 0, &l), 0, "%s: %s", url, ipcx_errdetail());
		cr_assert_gt(ipcx_addr(l, s.url, sizeof(s.url)), 0);
	}
	pid_t pid = t_spawn(send_every_size, &s);
	if (s.end)
		ipcx_close(s.end);
	char *buf = malloc(MAX + 1), *want = malloc(MAX);
	for (size_t k = 0; k < NSIZES; k++) {
		ssize_t n = ipcx_recv(l, buf, MAX + 1, 10000);
		cr_assert_eq(n, (ssize_t)sizes[k], "%s: a %zu-byte message gave %s", tc->name, sizes[k],
			     n < 0 ? ipcx_strerror((int)n) : "another length");
		fill(want, sizes[k], k);
		cr_assert(memcmp(buf, want, sizes[k]) == 0, "%s: %zu bytes differ", tc->name, sizes[k]);
	}
	cr_expect_eq(t_join(pid, T_GUARD_MS), 0, "%s: the sender failed", tc->name);
	free(buf);
	free(want);
	cr_expect_eq(ipcx_close(l), 0);
}

/* ---- memory follows data, not announcements ----------------------------------- */

#define PEERS     20
#define ANNOUNCED (16u << 20) /* each peer's frame: the default max */
#define SENT      1000        /* bytes of it that each peer sends */

static long vm_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = -1;
	if (f) {
		if (fscanf(f, "%ld", &pages) != 1)
			pages = -1;
		fclose(f);
	}
	return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

struct mem_listener {
	const char *url;
	struct t_sync *addr; /* the listener writes its address here */
	struct t_sync *go;   /* every peer has sent a part: read it all */
	struct t_sync *took; /* the listener has read it */
	struct t_sync *grew; /* the listener writes its growth (a long) here */
};

/* A fan-in listener in a process of its own, so that its growth is its own. */
static int mem_listener_main(void *arg)
{
	struct mem_listener *x = arg;
	ipcx_chan *l;
	if (ipcx_listen(x->url, 0, &l) < 0)
		return 70;
	char url[400] = "";
	ipcx_addr(l, url, sizeof(url));
	if (write(x->addr->fd[1], url, sizeof(url)) != (ssize_t)sizeof(url))
		return 71;
	char *buf = malloc(64);
	long before = vm_bytes();
	if (!t_wait_post(x->go, T_GUARD_MS))
		return 72;
	/* A receive that does not wait takes in all the peers have sent
	 * (their frames are not whole: nothing to return).  Twice: the peers
	 * send in two parts. */
	ssize_t n = ipcx_recv(l, buf, 64, 0);
	t_post(x->took);
	if (n != -EAGAIN || !t_wait_post(x->go, T_GUARD_MS))
		return 74;
	n = ipcx_recv(l, buf, 64, 0);
	long grew = vm_bytes() - before;
	if (write(x->grew->fd[1], &grew, sizeof(grew)) != (ssize_t)sizeof(grew))
		return 73;
	free(buf);
	ipcx_close(l);
	return n == -EAGAIN ? 0 : 74;
}

struct mem_peer {
	char url[400];
	struct t_sync *sent, *more, *quit;
};

/* A hostile peer: a raw socket that announces a large frame, then sends a
 * little of it, in two parts. */
static int announcing_peer(void *arg)
{
	struct mem_peer *p = arg;
	int fd;
	if (strncmp(p->url, "unix:", 5) == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p->url + 5);
		sa.sun_path[strcspn(sa.sun_path, "?")] = '\0';
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return 60;
	} else {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		const char *port = strrchr(p->url, ':');
		sa.sin_port = htons((uint16_t)atoi(port + 1));
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return 61;
	}
	static char frame[4 + SENT];
	uint32_t len = ANNOUNCED;
	for (int i = 0; i < 4; i++)
		frame[i] = (char)(len >> (8 * i));
	const size_t part = 4 + SENT / 2;
	if (write(fd, frame, part) != (ssize_t)part)
		return 62;
	t_post(p->sent);
	if (!t_wait_post(p->more, T_GUARD_MS))
		return 63;
	if (write(fd, frame + part, sizeof(frame) - part) != (ssize_t)(sizeof(frame) - part))
		return 64;
	t_post(p->sent);
	t_wait_post(p->quit, T_GUARD_MS);
	close(fd);
	return 0;
}

static const char *const mem_urls[] = { "unix:%s", "tcp://127.0.0.1:0" };

ParameterizedTestParameters(stream, memory_follows_data)
{
	static int idx[2] = { 0, 1 };
	return cr_make_param_array(int, idx, 2);
}

/*
 * PEERS peers each announce a 16 MiB frame and send 1000 bytes of it: the
 * listener's address space grows with what arrived (a 64 KiB read buffer a
 * peer), not with what was announced (320 MiB).
 */
ParameterizedTest(int *ci, stream, memory_follows_data, .timeout = 300)
{
	char url[400];
	snprintf(url, sizeof(url), mem_urls[*ci], t_path(t_name()));
	struct t_sync addr, go, took, grew, sent, more, quit;
	t_sync_init(&addr);
	t_sync_init(&go);
	t_sync_init(&took);
	t_sync_init(&grew);
	t_sync_init(&sent);
	t_sync_init(&more);
	t_sync_init(&quit);
	struct mem_listener x = { url, &addr, &go, &took, &grew };
	pid_t lpid = t_spawn(mem_listener_main, &x);
	struct mem_peer p = { "", &sent, &more, &quit };
	cr_assert_eq(read(addr.fd[0], p.url, sizeof(p.url)), (ssize_t)sizeof(p.url));
	pid_t peer[PEERS];
	for (int i = 0; i < PEERS; i++)
		peer[i] = t_spawn(announcing_peer, &p);
	for (int part = 0; part < 2; part++) {
		for (int i = 0; i < PEERS; i++)
			cr_assert(t_wait_post(&sent, T_GUARD_MS), "peer %d did not send", i);
		t_post(&go);
		if (part == 0) {
			cr_assert(t_wait_post(&took, T_GUARD_MS), "the listener did not read");
			for (int i = 0; i < PEERS; i++)
				t_post(&more);
		}
	}
	long growth = 0;
	cr_assert_eq(read(grew.fd[0], &growth, sizeof(growth)), (ssize_t)sizeof(growth));
	cr_expect_eq(t_join(lpid, T_GUARD_MS), 0, "the listener failed");
	for (int i = 0; i < PEERS; i++)
		t_post(&quit);
	for (int i = 0; i < PEERS; i++)
		cr_expect_eq(t_join(peer[i], T_GUARD_MS), 0, "peer %d failed", i);
	cr_log_info("%s: the listener grew by %ld KiB", url, growth >> 10);
	/* Announced: 20 x 16 MiB.  Arrived: 20 x 1000 bytes, in 20 read buffers
	 * of 64 KiB.  A wide margin either way. */
	cr_expect_lt(growth, 32L << 20, "%s: the listener grew by %ld MiB for %d announcements of "
		     "16 MiB with %d bytes each", url, growth >> 20, PEERS, SENT);
	t_sync_close(&addr);
	t_sync_close(&go);
	t_sync_close(&took);
	t_sync_close(&grew);
	t_sync_close(&sent);
	t_sync_close(&more);
	t_sync_close(&quit);
}
