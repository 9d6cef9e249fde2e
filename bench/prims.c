/*
 * The primitives nobody measures, on the raw system calls: semaphore
 * hand-off (POSIX named, System V), eventfd and signal round trips (a
 * hand-off there and back, carrying no data), and lock/unlock of a
 * process-shared robust mutex and of an open-file-description lock,
 * uncontended (one process) and contended (two processes on two cores).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- POSIX named semaphores ------------------------------------------------- */

struct semside {
	sem_t *s[2]; /* s[i]: posted by side i */
	int ids;     /* System V set */
	bool owner;
};

static int psem_open(struct bh_ctx *c)
{
	struct semside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	s->ids = -1;
	char n[2][128];
	bh_name(c->p, "sem-0", n[0], sizeof(n[0]));
	bh_name(c->p, "sem-1", n[1], sizeof(n[1]));
	for (int i = 0; c->side && i < 2; i++) {
		s->s[i] = sem_open(n[i], O_CREAT | O_EXCL, 0600, 0);
		if (s->s[i] == SEM_FAILED)
			return -errno;
		s->owner = true;
	}
	int r = bh_ctl_sync(c);
	for (int i = 0; !r && !c->side && i < 2; i++)
		if ((s->s[i] = sem_open(n[i], 0)) == SEM_FAILED)
			r = -errno;
	return r;
}

static int psem_post(struct bh_ctx *c, const void *buf, size_t len)
{
	struct semside *s = c->priv;
	return sem_post(s->s[c->side]) ? -errno : 0;
}

static int psem_wait(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct semside *s = c->priv;
	while (sem_wait(s->s[!c->side]))
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void psem_close(struct bh_ctx *c)
{
	struct semside *s = c->priv;
	if (!s)
		return;
	char n[128];
	for (int i = 0; i < 2; i++) {
		if (s->s[i] && s->s[i] != SEM_FAILED)
			sem_close(s->s[i]);
		if (s->owner) {
			bh_name(c->p, i ? "sem-1" : "sem-0", n, sizeof(n));
			sem_unlink(n);
		}
	}
	free(s);
	c->priv = NULL;
}

/* ---- System V semaphores -------------------------------------------------------- */

static int ssem_open(struct bh_ctx *c)
{
	struct semside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	s->ids = -1;
	if (c->side) {
		s->ids = semget(c->p->key, 2, IPC_CREAT | IPC_EXCL | 0600);
		if (s->ids < 0)
			return -errno;
		s->owner = true;
	}
	int r = bh_ctl_sync(c);
	if (!r && !c->side && (s->ids = semget(c->p->key, 2, 0)) < 0)
		r = -errno;
	return r;
}

static int ssem_op(struct bh_ctx *c, int member, int delta)
{
	struct semside *s = c->priv;
	/* No SEM_UNDO: a post must outlive the poster's exit. */
	struct sembuf op = { (unsigned short)member, (short)delta, 0 };
	while (semop(s->ids, &op, 1))
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int ssem_post(struct bh_ctx *c, const void *buf, size_t len)
{
	return ssem_op(c, c->side, 1);
}

static int ssem_wait(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	return ssem_op(c, !c->side, -1);
}

static void ssem_close(struct bh_ctx *c)
{
	struct semside *s = c->priv;
	if (!s)
		return;
	if (s->owner && s->ids >= 0)
		semctl(s->ids, 0, IPC_RMID);
	free(s);
	c->priv = NULL;
}

/* ---- eventfd: two counters made before fork ------------------------------------ */

struct efds {
	int fd[2]; /* fd[i]: written by side i */
};

static size_t efd_bytes(const struct bh_params *p)
{
	return sizeof(struct efds);
}

static int efd_prepare(const struct bh_params *p, void *shared)
{
	struct efds *e = shared;
	e->fd[0] = eventfd(0, EFD_CLOEXEC);
	e->fd[1] = eventfd(0, EFD_CLOEXEC);
	if (e->fd[0] < 0 || e->fd[1] < 0) {
		int err = -errno;
		if (e->fd[0] >= 0)
			close(e->fd[0]);
		if (e->fd[1] >= 0)
			close(e->fd[1]);
		return err;
	}
	return 0;
}

static void efd_release(void *shared)
{
	struct efds *e = shared;
	close(e->fd[0]);
	close(e->fd[1]);
}

static int efd_post(struct bh_ctx *c, const void *buf, size_t len)
{
	struct efds *e = c->shared;
	uint64_t one = 1;
	while (write(e->fd[c->side], &one, sizeof(one)) != sizeof(one))
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int efd_wait(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct efds *e = c->shared;
	uint64_t v;
	while (read(e->fd[!c->side], &v, sizeof(v)) != sizeof(v))
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* ---- signals: a queued real-time signal each way ------------------------------- */

struct sigside {
	pid_t peer;
	sigset_t set;
};

static int sig_open(struct bh_ctx *c)
{
	struct sigside *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	/* Blocked before the other side can know our pid, so none is lost. */
	sigemptyset(&s->set);
	sigaddset(&s->set, SIGRTMIN);
	if (sigprocmask(SIG_BLOCK, &s->set, NULL))
		return -errno;
	pid_t me = getpid();
	int r = bh_ctl_send(c, &me, sizeof(me));
	return r ? r : bh_ctl_recv(c, &s->peer, sizeof(s->peer));
}

static int sig_post(struct bh_ctx *c, const void *buf, size_t len)
{
	struct sigside *s = c->priv;
	union sigval v = { .sival_int = 1 };
	return sigqueue(s->peer, SIGRTMIN, v) ? -errno : 0;
}

static int sig_wait(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct sigside *s = c->priv;
	while (sigwaitinfo(&s->set, NULL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void free_priv(struct bh_ctx *c)
{
	free(c->priv);
	c->priv = NULL;
}

/* ---- lock/unlock loops ------------------------------------------------------------ */

/*
 * One operation is a lock and an unlock.  Timing each would measure the
 * clock as much as the lock, so the client times batches of BATCH and
 * records the mean of each batch; both sides loop when contended, and the
 * rate counts the operations of both.
 */
#define BATCH 64

struct loopdone {
	uint64_t t_end;
	int err;
};

int bh_lock_loop(struct bh_ctx *c, const struct bh_lockops *lo, struct bh_hist *h,
		 struct bh_result *r)
{
	uint64_t n = c->p->count * BATCH / 8; /* cheap operations: more of them */
	uint64_t batches = n / BATCH;
	if (!lo->contended && c->side)
		return 0;
	uint64_t t_start = bh_now();
	int err = 0;
	for (uint64_t b = 0; b < batches && !err; b++) {
		uint64_t t0 = bh_now();
		for (int i = 0; i < BATCH && !err; i++) {
			err = lo->lock(c);
			if (!err)
				err = lo->unlock(c);
		}
		if (!c->side)
			bh_hist_add(h, (bh_now() - t0) / BATCH);
	}
	struct loopdone mine = { bh_now(), err }, theirs = { 0, 0 };
	if (!lo->contended) {
		if (!err) {
			bh_hist_result(h, r);
			r->msgs_per_s = (double)(batches * BATCH) / ((double)(mine.t_end - t_start) / 1e9);
		}
		return err;
	}
	if (c->side)
		return bh_ctl_send(c, &mine, sizeof(mine)) ? -EPIPE : err;
	int e = bh_ctl_recv(c, &theirs, sizeof(theirs));
	if (err || e || theirs.err)
		return err ? err : e ? e : theirs.err;
	uint64_t end = mine.t_end > theirs.t_end ? mine.t_end : theirs.t_end;
	bh_hist_result(h, r);
	r->msgs_per_s = (double)(2 * batches * BATCH) / ((double)(end - t_start) / 1e9);
	return 0;
}

/* A robust, process-shared mutex in the shared region. */
static size_t mutex_bytes(const struct bh_params *p)
{
	return sizeof(pthread_mutex_t);
}

static int mutex_prepare(const struct bh_params *p, void *shared)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	int r = pthread_mutex_init(shared, &a);
	pthread_mutexattr_destroy(&a);
	return -r;
}

static int mutex_lock(struct bh_ctx *c)
{
	int r = pthread_mutex_lock(c->shared);
	if (r == EOWNERDEAD) /* the other side died holding it: take it over */
		r = pthread_mutex_consistent(c->shared);
	return -r;
}

static int mutex_unlock(struct bh_ctx *c)
{
	return -pthread_mutex_unlock(c->shared);
}

static const struct bh_lockops mutex_un = { mutex_lock, mutex_unlock, false };
static const struct bh_lockops mutex_co = { mutex_lock, mutex_unlock, true };

static int mutex_un_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &mutex_un, h, r);
}

static int mutex_co_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &mutex_co, h, r);
}

/* Open-file-description locks (F_OFD_SETLKW): each side opens the file itself. */
static int flock_open(struct bh_ctx *c)
{
	char path[256];
	bh_path(c->p, "lock", path, sizeof(path));
	int *fd = malloc(2 * sizeof(int));
	if (!fd)
		return -ENOMEM;
	fd[0] = -1;
	fd[1] = c->side;
	c->priv = fd;
	if (c->side) {
		fd[0] = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd[0] < 0)
			return -errno;
	}
	int r = bh_ctl_sync(c);
	if (!r && !c->side && (fd[0] = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0)
		r = -errno;
	return r;
}

static int flock_set(struct bh_ctx *c, short type)
{
	int *fd = c->priv;
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	while (fcntl(fd[0], F_OFD_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int flock_lock(struct bh_ctx *c)
{
	return flock_set(c, F_WRLCK);
}

static int flock_unlock(struct bh_ctx *c)
{
	return flock_set(c, F_UNLCK);
}

static void flock_close(struct bh_ctx *c)
{
	int *fd = c->priv;
	if (!fd)
		return;
	if (fd[0] >= 0)
		close(fd[0]);
	if (fd[1]) { /* the server made it */
		char path[256];
		bh_path(c->p, "lock", path, sizeof(path));
		unlink(path);
	}
	free(fd);
	c->priv = NULL;
}

static const struct bh_lockops flock_un = { flock_lock, flock_unlock, false };
static const struct bh_lockops flock_co = { flock_lock, flock_unlock, true };

static int flock_un_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &flock_un, h, r);
}

static int flock_co_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &flock_co, h, r);
}

/* ---- the table ------------------------------------------------------------------ */

static const struct bh_ops p_sem = { "sem", "raw", "handoff", .open = psem_open,
	.send = psem_post, .recv = psem_wait, .close = psem_close };
static const struct bh_ops p_sysvsem = { "sysvsem", "raw", "handoff", .open = ssem_open,
	.send = ssem_post, .recv = ssem_wait, .close = ssem_close };
static const struct bh_ops p_efd = { "eventfd", "raw", "handoff", .shared_bytes = efd_bytes,
	.prepare = efd_prepare, .release = efd_release, .send = efd_post, .recv = efd_wait };
static const struct bh_ops p_sig = { "signal", "raw", "sigqueue", .open = sig_open,
	.send = sig_post, .recv = sig_wait, .close = free_priv };
static const struct bh_ops p_mutex_un = { "mutex", "raw", "uncontended",
	.shared_bytes = mutex_bytes, .prepare = mutex_prepare, .op = mutex_un_op };
static const struct bh_ops p_mutex_co = { "mutex", "raw", "contended",
	.shared_bytes = mutex_bytes, .prepare = mutex_prepare, .op = mutex_co_op };
static const struct bh_ops p_flock_un = { "flock", "raw", "uncontended", .open = flock_open,
	.close = flock_close, .op = flock_un_op };
static const struct bh_ops p_flock_co = { "flock", "raw", "contended", .open = flock_open,
	.close = flock_close, .op = flock_co_op };

const struct bh_ops *const bh_prim_ops[] = {
	&p_sem, &p_sysvsem, &p_mutex_un, &p_mutex_co, &p_flock_un, &p_flock_co, &p_efd,
	&p_sig, NULL,
};
