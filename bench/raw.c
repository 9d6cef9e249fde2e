/*
 * Raw baselines: each mechanism driven directly through its system calls,
 * the way a careful program would without ipcx, so that the cost ipcx adds
 * is visible next to it.  A byte stream (pipe, FIFO, stream socket) carries
 * fixed-size messages with no framing: both sides know the size.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* Per-side state of the descriptor-based baselines. */
struct rawfd {
	int rfd, wfd;      /* receive from, send to (may be the same socket) */
	bool stream;       /* a byte stream: loop until the whole message moved */
	char path[2][256]; /* files the server removes on close */
	int npath;
	mqd_t mq[2];
	int msqid[2];
	void *msgbuf; /* System V message buffer: mtype + data */
};

static struct rawfd *rawfd_new(struct bh_ctx *c, bool stream)
{
	struct rawfd *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->rfd = s->wfd = -1;
	s->stream = stream;
	s->mq[0] = s->mq[1] = (mqd_t)-1;
	s->msqid[0] = s->msqid[1] = -1;
	c->priv = s;
	return s;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int wait_readable(int fd, int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	struct pollfd pf = { fd, POLLIN, 0 };
	for (;;) {
		int n = poll(&pf, 1, timeout_ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int fd_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct rawfd *s = c->priv;
	if (s->stream)
		return write_full(s->wfd, buf, len);
	for (;;) {
		ssize_t n = send(s->wfd, buf, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

static int fd_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct rawfd *s = c->priv;
	int r = wait_readable(s->rfd, timeout_ms);
	if (r)
		return r;
	if (s->stream)
		return read_full(s->rfd, buf, len);
	for (;;) {
		ssize_t n = recv(s->rfd, buf, len ? len : 1, 0);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EBADMSG;
	}
}

static void fd_close(struct bh_ctx *c)
{
	struct rawfd *s = c->priv;
	if (!s)
		return;
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->wfd >= 0 && s->wfd != s->rfd)
		close(s->wfd);
	for (int i = 0; i < s->npath; i++)
		unlink(s->path[i]);
	free(s);
	c->priv = NULL;
}

/* ---- anonymous pipe and socketpair: made before fork --------------------- */

struct fdset {
	int a[2]; /* client -> server */
	int b[2]; /* server -> client (unused by the socketpair) */
};

static size_t fdset_bytes(const struct bh_params *p)
{
	(void)p;
	return sizeof(struct fdset);
}

static int pipe_prepare(const struct bh_params *p, void *shared)
{
	struct fdset *f = shared;
	f->a[0] = f->a[1] = f->b[0] = f->b[1] = -1;
	if (pipe2(f->a, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(f->b, O_CLOEXEC) < 0) {
		int e = errno;
		close(f->a[0]), close(f->a[1]);
		return -e;
	}
	return 0;
}

static void fdset_release(void *shared)
{
	struct fdset *f = shared;
	for (int i = 0; i < 2; i++) {
		if (f->a[i] >= 0)
			close(f->a[i]);
		if (f->b[i] >= 0)
			close(f->b[i]);
	}
}

static int pipe_open(struct bh_ctx *c)
{
	struct fdset *f = c->shared;
	struct rawfd *s = rawfd_new(c, true);
	if (!s)
		return -ENOMEM;
	s->rfd = c->side ? f->a[0] : f->b[0];
	s->wfd = c->side ? f->b[1] : f->a[1];
	close(c->side ? f->a[1] : f->b[1]);
	close(c->side ? f->b[0] : f->a[0]);
	return 0;
}

static int spair_prepare(const struct bh_params *p, void *shared)
{
	struct fdset *f = shared;
	f->a[0] = f->a[1] = f->b[0] = f->b[1] = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->a) < 0)
		return -errno;
	/* Room for the largest message, as far as the system allows. */
	int sz = p->size > (1u << 30) ? (1 << 30) : (int)(p->size * 2 + 4096);
	for (int i = 0; i < 2; i++) {
		setsockopt(f->a[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(f->a[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	return 0;
}

static int spair_open(struct bh_ctx *c)
{
	struct fdset *f = c->shared;
	struct rawfd *s = rawfd_new(c, false);
	if (!s)
		return -ENOMEM;
	s->rfd = s->wfd = f->a[c->side];
	close(f->a[!c->side]);
	return 0;
}

/* ---- FIFO ------------------------------------------------------------------ */

static int fifo_open(struct bh_ctx *c)
{
	struct rawfd *s = rawfd_new(c, true);
	if (!s)
		return -ENOMEM;
	char a[256], b[256];
	bh_path(c->p, "fifo-a", a, sizeof(a));
	bh_path(c->p, "fifo-b", b, sizeof(b));
	if (c->side) {
		if (mkfifo(a, 0600) < 0)
			return -errno;
		snprintf(s->path[s->npath++], sizeof(s->path[0]), "%s", a);
		if (mkfifo(b, 0600) < 0)
			return -errno;
		snprintf(s->path[s->npath++], sizeof(s->path[0]), "%s", b);
	}
	int r = bh_ctl_sync(c); /* the FIFOs exist */
	if (r)
		return r;
	/* Both open a, then b, so the blocking opens pair up. */
	s->rfd = c->side ? open(a, O_RDONLY | O_CLOEXEC) : -1;
	s->wfd = c->side ? -1 : open(a, O_WRONLY | O_CLOEXEC);
	if ((c->side ? s->rfd : s->wfd) < 0)
		return -errno;
	int fd = open(b, (c->side ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (c->side)
		s->wfd = fd;
	else
		s->rfd = fd;
	return 0;
}

/* ---- sockets with addresses --------------------------------------------------- */

static void tune_socket(int fd, int type, size_t size)
{
	int one = 1;
	if (type == SOCK_STREAM)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (type != SOCK_STREAM) {
		int sz = size > (1u << 30) ? (1 << 30) : (int)(size * 2 + 4096);
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
}

static int unix_addr(struct bh_ctx *c, const char *leaf, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	char path[256];
	bh_path(c->p, leaf, path, sizeof(path));
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* unix (SOCK_STREAM) and unixpacket (SOCK_SEQPACKET): listen, accept, connect. */
static int unix_conn_open(struct bh_ctx *c, int type)
{
	struct rawfd *s = rawfd_new(c, type == SOCK_STREAM);
	if (!s)
		return -ENOMEM;
	struct sockaddr_un sa;
	int r = unix_addr(c, "sock", &sa);
	if (r)
		return r;
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (c->side) {
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		snprintf(s->path[s->npath++], sizeof(s->path[0]), "%s", sa.sun_path);
		r = bh_ctl_sync(c);
		int cfd = r ? -1 : accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (!r && cfd < 0)
			r = -errno;
		close(fd);
		fd = cfd;
	} else {
		r = bh_ctl_sync(c);
		if (!r && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			r = -errno;
	}
	if (r) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	tune_socket(fd, type == SOCK_STREAM ? -1 : type, c->p->size);
	s->rfd = s->wfd = fd;
	return 0;
}

static int unix_open(struct bh_ctx *c)
{
	return unix_conn_open(c, SOCK_STREAM);
}

static int unixpacket_open(struct bh_ctx *c)
{
	return unix_conn_open(c, SOCK_SEQPACKET);
}

/* unixgram: each side binds its own path and connects to the other's. */
static int unixgram_open(struct bh_ctx *c)
{
	struct rawfd *s = rawfd_new(c, false);
	if (!s)
		return -ENOMEM;
	struct sockaddr_un mine, peer;
	int r = unix_addr(c, c->side ? "gram-s" : "gram-c", &mine);
	if (!r)
		r = unix_addr(c, c->side ? "gram-c" : "gram-s", &peer);
	if (r)
		return r;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	s->rfd = s->wfd = fd;
	if (bind(fd, (struct sockaddr *)&mine, sizeof(mine)) < 0)
		return -errno;
	snprintf(s->path[s->npath++], sizeof(s->path[0]), "%s", mine.sun_path);
	tune_socket(fd, SOCK_DGRAM, c->p->size);
	r = bh_ctl_sync(c); /* both bound */
	if (!r && connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		r = -errno;
	return r;
}

/* tcp and udp on the loopback, ports chosen by the kernel and exchanged. */
static int inet_bind_any(int fd, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	*port = sa.sin_port;
	return 0;
}

static int inet_connect(int fd, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = port,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

static int tcp_open(struct bh_ctx *c)
{
	struct rawfd *s = rawfd_new(c, true);
	if (!s)
		return -ENOMEM;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	uint16_t port = 0;
	int r = 0;
	if (c->side) {
		r = inet_bind_any(fd, &port);
		if (!r && listen(fd, 1) < 0)
			r = -errno;
		if (!r)
			r = bh_ctl_send(c, &port, sizeof(port));
		int cfd = r ? -1 : accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (!r && cfd < 0)
			r = -errno;
		close(fd);
		fd = cfd;
	} else {
		r = bh_ctl_recv(c, &port, sizeof(port));
		if (!r)
			r = inet_connect(fd, port);
	}
	if (r) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	tune_socket(fd, SOCK_STREAM, c->p->size);
	s->rfd = s->wfd = fd;
	return 0;
}

static int udp_open(struct bh_ctx *c)
{
	if (c->p->size > 65507)
		return -EMSGSIZE;
	struct rawfd *s = rawfd_new(c, false);
	if (!s)
		return -ENOMEM;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	s->rfd = s->wfd = fd;
	tune_socket(fd, SOCK_DGRAM, c->p->size);
	uint16_t mine = 0, peer = 0;
	int r = inet_bind_any(fd, &mine);
	if (!r)
		r = bh_ctl_send(c, &mine, sizeof(mine));
	if (!r)
		r = bh_ctl_recv(c, &peer, sizeof(peer));
	if (!r)
		r = inet_connect(fd, peer);
	return r;
}

/* ---- POSIX message queues ------------------------------------------------------ */

/*
 * Queue depth: ten messages (the default msg_max) while that stays small,
 * fewer for large messages, since all queues of a user share
 * RLIMIT_MSGQUEUE (800 KiB by default) with everything else that user runs.
 */
static long mq_depth(size_t size)
{
	long d = (long)((128u << 10) / (size ? size : 1));
	return d < 1 ? 1 : d > 10 ? 10 : d;
}

static int mq_open_all(struct bh_ctx *c)
{
	struct rawfd *s = rawfd_new(c, false);
	if (!s)
		return -ENOMEM;
	size_t size = c->p->size ? c->p->size : 1;
	if (size * (size_t)mq_depth(size) > (128u << 10) && size > 8192)
		return -EMSGSIZE;
	char a[128], b[128];
	bh_name(c->p, "mq-a", a, sizeof(a));
	bh_name(c->p, "mq-b", b, sizeof(b));
	if (c->side) {
		struct mq_attr at = { .mq_maxmsg = mq_depth(size), .mq_msgsize = (long)size };
		s->mq[0] = mq_open(a, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &at);
		if (s->mq[0] == (mqd_t)-1)
			return errno == EINVAL || errno == EMFILE ? -EMSGSIZE : -errno;
		s->npath = -1; /* marks: the server unlinks the queues */
		s->mq[1] = mq_open(b, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &at);
		if (s->mq[1] == (mqd_t)-1)
			return errno == EINVAL || errno == EMFILE ? -EMSGSIZE : -errno;
	}
	int r = bh_ctl_sync(c);
	if (r)
		return r;
	if (!c->side) {
		s->mq[1] = mq_open(a, O_WRONLY | O_CLOEXEC);
		s->mq[0] = mq_open(b, O_RDONLY | O_CLOEXEC);
		if (s->mq[0] == (mqd_t)-1 || s->mq[1] == (mqd_t)-1)
			return -errno;
	}
	return 0;
}

static int mq_send1(struct bh_ctx *c, const void *buf, size_t len)
{
	struct rawfd *s = c->priv;
	while (mq_send(s->mq[1], buf, len, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int mq_recv1(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct rawfd *s = c->priv;
	char tmp[1] = { 0 };
	for (;;) {
		ssize_t n = mq_receive(s->mq[0], len ? buf : tmp, len ? len : 1, NULL);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EBADMSG;
	}
}

static void mq_close_all(struct bh_ctx *c)
{
	struct rawfd *s = c->priv;
	if (!s)
		return;
	for (int i = 0; i < 2; i++)
		if (s->mq[i] != (mqd_t)-1)
			mq_close(s->mq[i]);
	if (s->npath == -1) {
		char n[128];
		bh_name(c->p, "mq-a", n, sizeof(n));
		mq_unlink(n);
		bh_name(c->p, "mq-b", n, sizeof(n));
		mq_unlink(n);
	}
	free(s);
	c->priv = NULL;
}

/* ---- System V message queues -------------------------------------------------- */

static int sysvmq_open(struct bh_ctx *c)
{
	struct rawfd *s = rawfd_new(c, false);
	if (!s)
		return -ENOMEM;
	s->msgbuf = malloc(sizeof(long) + (c->p->size ? c->p->size : 1));
	if (!s->msgbuf)
		return -ENOMEM;
	if (c->side) {
		for (int i = 0; i < 2; i++) {
			s->msqid[i] = msgget(c->p->key + i, IPC_CREAT | IPC_EXCL | 0600);
			if (s->msqid[i] < 0)
				return -errno;
		}
		s->npath = -1;
	}
	int r = bh_ctl_sync(c);
	if (r)
		return r;
	if (!c->side)
		for (int i = 0; i < 2; i++)
			if ((s->msqid[i] = msgget(c->p->key + i, 0)) < 0)
				return -errno;
	return 0;
}

static int sysvmq_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct rawfd *s = c->priv;
	*(long *)s->msgbuf = 1;
	memcpy((char *)s->msgbuf + sizeof(long), buf, len);
	int q = s->msqid[c->side ? 1 : 0];
	while (msgsnd(q, s->msgbuf, len, 0) < 0)
		if (errno != EINTR)
			return errno == EINVAL ? -EMSGSIZE : -errno;
	return 0;
}

static int sysvmq_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct rawfd *s = c->priv;
	int q = s->msqid[c->side ? 0 : 1];
	for (;;) {
		ssize_t n = msgrcv(q, s->msgbuf, len, 0, 0);
		if (n == (ssize_t)len) {
			memcpy(buf, (char *)s->msgbuf + sizeof(long), len);
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EBADMSG;
	}
}

static void sysvmq_close(struct bh_ctx *c)
{
	struct rawfd *s = c->priv;
	if (!s)
		return;
	if (s->npath == -1)
		for (int i = 0; i < 2; i++)
			if (s->msqid[i] >= 0)
				msgctl(s->msqid[i], IPC_RMID, NULL);
	free(s->msgbuf);
	free(s);
	c->priv = NULL;
}

/* ---- shared memory: an SPSC ring per direction, spin or futex ------------------ */

/*
 * Each direction is a single-producer single-consumer ring of fixed slots of
 * the message size.  head and tail live on cache lines of their own (two
 * lines, so the adjacent-line prefetcher does not couple them).  A side that
 * must wait either spins (mode spin) or announces itself in `waiting` and
 * sleeps on the futex (mode futex); the other side wakes it only when it
 * announced itself, so an uncontended hand-off makes no system call.
 */
#define LINE 128

struct ring {
	_Alignas(LINE) _Atomic uint32_t head;  /* producer's count */
	_Atomic uint32_t head_waiting;         /* consumer sleeps on head */
	_Alignas(LINE) _Atomic uint32_t tail;  /* consumer's count */
	_Atomic uint32_t tail_waiting;         /* producer sleeps on tail */
	_Alignas(LINE) uint32_t slots;
	uint32_t pad;
	uint64_t slot_size;
	/* slot data follows, LINE-aligned */
};

static uint32_t ring_slots(size_t size)
{
	size_t n = (4u << 20) / (size ? size : 1);
	return n < 2 ? 2 : n > 256 ? 256 : (uint32_t)n;
}

static size_t ring_bytes(size_t size)
{
	size_t slot = (size + LINE - 1) / LINE * LINE;
	if (!slot)
		slot = LINE;
	return sizeof(struct ring) + (size_t)ring_slots(size) * slot;
}

static size_t rings_bytes(const struct bh_params *p)
{
	return 2 * ring_bytes(p->size);
}

static int rings_prepare(const struct bh_params *p, void *shared)
{
	for (int i = 0; i < 2; i++) {
		struct ring *r = (struct ring *)((char *)shared + i * ring_bytes(p->size));
		r->slots = ring_slots(p->size);
		r->slot_size = (p->size + LINE - 1) / LINE * LINE;
		if (!r->slot_size)
			r->slot_size = LINE;
	}
	return 0;
}

struct ringside {
	struct ring *tx, *rx;
	bool futex;
	bool yield; /* one core: a spinner must let the other side run */
	uint32_t tail_seen; /* tx: the consumer's count when last read */
	uint32_t head_seen; /* rx: the producer's count when last read */
};

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
	return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static int ring_open(struct bh_ctx *c, bool use_futex)
{
	struct ringside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct ring *a = c->shared;
	struct ring *b = (struct ring *)((char *)c->shared + ring_bytes(c->p->size));
	s->tx = c->side ? b : a;
	s->rx = c->side ? a : b;
	s->futex = use_futex;
	s->yield = c->p->cpu[0] < 0;
	c->priv = s;
	return 0;
}

static int ring_open_spin(struct bh_ctx *c)
{
	return ring_open(c, false);
}

static int ring_open_futex(struct bh_ctx *c)
{
	return ring_open(c, true);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Wait until *word differs from old; returns its new value. */
static uint32_t ring_wait(struct ringside *s, _Atomic uint32_t *word, _Atomic uint32_t *waiting,
			  uint32_t old)
{
	uint32_t v;
	while ((v = atomic_load_explicit(word, memory_order_acquire)) == old) {
		if (!s->futex) {
			if (s->yield)
				sched_yield();
			else
				cpu_relax();
			continue;
		}
		/* Announce, re-check, sleep: the waker reads `waiting` after its
		 * store to *word, so one of the two sees the other (seq_cst). */
		atomic_store(waiting, 1);
		if (atomic_load(word) == old)
			futex(word, FUTEX_WAIT, old);
		atomic_store(waiting, 0);
	}
	return v;
}

static void ring_wake(struct ringside *s, _Atomic uint32_t *word, _Atomic uint32_t *waiting)
{
	if (s->futex && atomic_load(waiting))
		futex(word, FUTEX_WAKE, 1);
}

static inline void *slot_at(struct ring *r, uint32_t i)
{
	return (char *)(r + 1) + (size_t)(i % r->slots) * r->slot_size;
}

/*
 * Each side keeps the last index it read of the other side's counter, and
 * reads the shared one only when that copy says full (sender) or empty
 * (receiver): in a stream the cache lines then move once per batch, not
 * once per message.
 */
static int ring_send(struct bh_ctx *c, const void *buf, size_t len)
{
	struct ringside *s = c->priv;
	struct ring *r = s->tx;
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	while (head - s->tail_seen >= r->slots) {
		uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head - tail >= r->slots)
			tail = ring_wait(s, &r->tail, &r->tail_waiting, tail);
		s->tail_seen = tail;
	}
	memcpy(slot_at(r, head), buf, len);
	if (s->futex)
		atomic_store(&r->head, head + 1); /* seq_cst: pairs with ring_wait */
	else
		atomic_store_explicit(&r->head, head + 1, memory_order_release);
	ring_wake(s, &r->head, &r->head_waiting);
	return 0;
}

static int ring_recv(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct ringside *s = c->priv;
	struct ring *r = s->rx;
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (s->head_seen == tail)
		s->head_seen = ring_wait(s, &r->head, &r->head_waiting, tail);
	memcpy(buf, slot_at(r, tail), len);
	if (s->futex)
		atomic_store(&r->tail, tail + 1);
	else
		atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	ring_wake(s, &r->tail, &r->tail_waiting);
	return 0;
}

static void ring_close(struct bh_ctx *c)
{
	free(c->priv);
	c->priv = NULL;
}

/* ---- the table ------------------------------------------------------------------ */

#define FD_OPS .send = fd_send, .recv = fd_recv, .close = fd_close

static const struct bh_ops raw_pipe = { "pipe", "raw", "blocking",
	.shared_bytes = fdset_bytes, .prepare = pipe_prepare, .release = fdset_release,
	.open = pipe_open, FD_OPS };
static const struct bh_ops raw_spair = { "socketpair", "raw", "blocking",
	.shared_bytes = fdset_bytes, .prepare = spair_prepare, .release = fdset_release,
	.open = spair_open, FD_OPS };
static const struct bh_ops raw_fifo = { "fifo", "raw", "blocking", .open = fifo_open, FD_OPS };
static const struct bh_ops raw_unix = { "unix", "raw", "blocking", .open = unix_open, FD_OPS };
static const struct bh_ops raw_unixpacket = { "unixpacket", "raw", "blocking",
	.open = unixpacket_open, FD_OPS };
static const struct bh_ops raw_unixgram = { "unixgram", "raw", "blocking",
	.open = unixgram_open, FD_OPS };
static const struct bh_ops raw_tcp = { "tcp", "raw", "blocking", .open = tcp_open, FD_OPS };
static const struct bh_ops raw_udp = { "udp", "raw", "blocking", .lossy = true,
	.open = udp_open, FD_OPS };
static const struct bh_ops raw_mq = { "mq", "raw", "blocking", .open = mq_open_all,
	.send = mq_send1, .recv = mq_recv1, .close = mq_close_all };
static const struct bh_ops raw_sysvmq = { "sysvmq", "raw", "blocking", .open = sysvmq_open,
	.send = sysvmq_send, .recv = sysvmq_recv, .close = sysvmq_close };
static const struct bh_ops raw_shm_futex = { "shm", "raw", "futex",
	.shared_bytes = rings_bytes, .prepare = rings_prepare, .open = ring_open_futex,
	.send = ring_send, .recv = ring_recv, .close = ring_close };
static const struct bh_ops raw_shm_spin = { "shm", "raw", "spin",
	.shared_bytes = rings_bytes, .prepare = rings_prepare, .open = ring_open_spin,
	.send = ring_send, .recv = ring_recv, .close = ring_close };

const struct bh_ops *const bh_raw_ops[] = {
	&raw_pipe, &raw_spair, &raw_fifo, &raw_unix, &raw_unixpacket, &raw_unixgram,
	&raw_tcp, &raw_udp, &raw_mq, &raw_sysvmq, &raw_shm_futex, &raw_shm_spin, NULL,
};
