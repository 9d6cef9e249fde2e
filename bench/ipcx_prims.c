/*
 * The primitives through ipcx's public API, measured exactly as their raw
 * baselines in bench/prims.c: semaphore, eventfd and signal hand-offs there
 * and back, and lock/unlock loops of the robust mutex and of file locks.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ipcx.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- semaphores: sem:/NAME and sysvsem:KEY -------------------------------------- */

struct isem {
	ipcx_sem *s[2]; /* s[i]: posted by side i */
};

static void sem_url(struct bh_ctx *c, int i, char *buf, size_t cap)
{
	const char *kind = c->arg;
	if (!strcmp(kind, "sem")) {
		char leaf[32], name[128];
		snprintf(leaf, sizeof(leaf), "%u-sem%d", c->p->seq, i);
		bh_name(c->p, leaf, name, sizeof(name));
		snprintf(buf, cap, "sem:%s", name);
	} else {
		/* No SEM_UNDO: a post must outlive the poster. */
		snprintf(buf, cap, "sysvsem:%d?undo=0", c->p->key + i);
	}
}

static int isem_fail(struct bh_ctx *c, int r, const char *what, const char *url)
{
	bh_note(c->res, BH_ERROR, "%s %s: %s (%s)", what, url, ipcx_strerror(r), ipcx_errdetail());
	return r;
}

static int isem_open(struct bh_ctx *c)
{
	struct isem *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	char url[2][160];
	sem_url(c, 0, url[0], sizeof(url[0]));
	sem_url(c, 1, url[1], sizeof(url[1]));
	for (int i = 0; c->side && i < 2; i++) {
		int r = ipcx_sem_create(url[i], 0, 0, &s->s[i]);
		if (r)
			return isem_fail(c, r, "create", url[i]);
	}
	int r = bh_ctl_sync(c);
	for (int i = 0; !r && !c->side && i < 2; i++)
		if ((r = ipcx_sem_open(url[i], 0, &s->s[i])))
			return isem_fail(c, r, "open", url[i]);
	return r;
}

static int isem_post(struct bh_ctx *c, const void *buf, size_t len)
{
	struct isem *s = c->priv;
	return ipcx_sem_post(s->s[c->side]);
}

static int isem_wait(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct isem *s = c->priv;
	return ipcx_sem_wait(s->s[!c->side], timeout_ms);
}

static void isem_close(struct bh_ctx *c)
{
	struct isem *s = c->priv;
	if (!s)
		return;
	/* The server created them: its close removes them. */
	for (int i = 0; i < 2; i++)
		ipcx_sem_close(s->s[i]);
	free(s);
	c->priv = NULL;
}

/* ---- eventfd: two counters made before fork --------------------------------------- */

struct ievents {
	ipcx_event *e[2]; /* e[i]: posted by side i */
};

static size_t iev_bytes(const struct bh_params *p)
{
	return sizeof(struct ievents);
}

static int iev_prepare(const struct bh_params *p, void *shared)
{
	struct ievents *ev = shared;
	int r = ipcx_event_open(0, 0, &ev->e[0]);
	if (!r && (r = ipcx_event_open(0, 0, &ev->e[1])))
		ipcx_event_close(ev->e[0]);
	return r;
}

/* Each process closes its own copies: the parent's here, the sides' in close. */
static void iev_release(void *shared)
{
	struct ievents *ev = shared;
	ipcx_event_close(ev->e[0]);
	ipcx_event_close(ev->e[1]);
}

static int iev_post(struct bh_ctx *c, const void *buf, size_t len)
{
	struct ievents *ev = c->shared;
	return ipcx_event_post(ev->e[c->side], 1);
}

static int iev_wait(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct ievents *ev = c->shared;
	uint64_t v;
	return ipcx_event_wait(ev->e[!c->side], timeout_ms, &v);
}

static void iev_close(struct bh_ctx *c)
{
	iev_release(c->shared);
}

/* ---- signals: ipcx_signal_send + a signal set ------------------------------------------ */

struct isig {
	ipcx_sigs *set;
	pid_t peer;
};

static int isig_open(struct bh_ctx *c)
{
	struct isig *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	c->priv = s;
	int sig = SIGRTMIN;
	/* Blocked (by the set) before the other side learns our pid. */
	int r = ipcx_signals_open(&sig, 1, 0, &s->set);
	if (r)
		return r;
	pid_t me = getpid();
	r = bh_ctl_send(c, &me, sizeof(me));
	return r ? r : bh_ctl_recv(c, &s->peer, sizeof(s->peer));
}

static int isig_post(struct bh_ctx *c, const void *buf, size_t len)
{
	struct isig *s = c->priv;
	return ipcx_signal_send(s->peer, SIGRTMIN, 1);
}

static int isig_wait(struct bh_ctx *c, void *buf, size_t len, int timeout_ms)
{
	struct isig *s = c->priv;
	struct ipcx_siginfo si;
	return ipcx_signals_next(s->set, timeout_ms, &si);
}

static void isig_close(struct bh_ctx *c)
{
	struct isig *s = c->priv;
	if (!s)
		return;
	ipcx_signals_close(s->set);
	free(s);
	c->priv = NULL;
}

/* ---- the robust mutex ------------------------------------------------------------------- */

static size_t imutex_bytes(const struct bh_params *p)
{
	return IPCX_MUTEX_SIZE;
}

static int imutex_prepare(const struct bh_params *p, void *shared)
{
	ipcx_mutex *m;
	int r = ipcx_mutex_init_at(shared, IPCX_MUTEX_SIZE, 0, &m);
	if (!r)
		ipcx_mutex_close(m); /* the mutex stays in the memory */
	return r;
}

static int imutex_open(struct bh_ctx *c)
{
	ipcx_mutex *m;
	int r = ipcx_mutex_attach_at(c->shared, IPCX_MUTEX_SIZE, &m);
	if (!r)
		c->priv = m;
	return r;
}

static int imutex_lock(struct bh_ctx *c)
{
	int r = ipcx_mutex_lock(c->priv, -1);
	return r == -EOWNERDEAD ? ipcx_mutex_consistent(c->priv) : r;
}

static int imutex_unlock(struct bh_ctx *c)
{
	return ipcx_mutex_unlock(c->priv);
}

static void imutex_close(struct bh_ctx *c)
{
	ipcx_mutex_close(c->priv);
	c->priv = NULL;
}

static const struct bh_lockops imutex_un = { imutex_lock, imutex_unlock, false };
static const struct bh_lockops imutex_co = { imutex_lock, imutex_unlock, true };

static int imutex_un_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &imutex_un, h, r);
}

static int imutex_co_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &imutex_co, h, r);
}

/* ---- file locks: ipcx_lock_fd on a file each side opens itself ------------------------- */

struct ilock {
	int fd;
	bool owner;
};

static int ilock_open(struct bh_ctx *c)
{
	struct ilock *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = -1;
	c->priv = l;
	char path[256], leaf[32];
	snprintf(leaf, sizeof(leaf), "%u-lock", c->p->seq);
	bh_path(c->p, leaf, path, sizeof(path));
	if (c->side) {
		l->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (l->fd < 0)
			return -errno;
		l->owner = true;
	}
	int r = bh_ctl_sync(c);
	if (!r && !c->side && (l->fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0)
		r = -errno;
	return r;
}

static int ilock_lock(struct bh_ctx *c)
{
	struct ilock *l = c->priv;
	return ipcx_lock_fd(l->fd, 0, 0, 0, -1);
}

static int ilock_unlock(struct bh_ctx *c)
{
	struct ilock *l = c->priv;
	return ipcx_unlock_fd(l->fd, 0, 0, 0);
}

static void ilock_close(struct bh_ctx *c)
{
	struct ilock *l = c->priv;
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	if (l->owner) {
		char path[256], leaf[32];
		snprintf(leaf, sizeof(leaf), "%u-lock", c->p->seq);
		bh_path(c->p, leaf, path, sizeof(path));
		unlink(path);
	}
	free(l);
	c->priv = NULL;
}

static const struct bh_lockops ilock_un = { ilock_lock, ilock_unlock, false };
static const struct bh_lockops ilock_co = { ilock_lock, ilock_unlock, true };

static int ilock_un_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &ilock_un, h, r);
}

static int ilock_co_op(struct bh_ctx *c, struct bh_hist *h, struct bh_result *r)
{
	return bh_lock_loop(c, &ilock_co, h, r);
}

/* ---- the table ----------------------------------------------------------------------- */

static const struct bh_ops i_sem = { "sem", "ipcx", "handoff", .open = isem_open,
	.send = isem_post, .recv = isem_wait, .close = isem_close, .arg = "sem" };
static const struct bh_ops i_sysvsem = { "sysvsem", "ipcx", "handoff", .open = isem_open,
	.send = isem_post, .recv = isem_wait, .close = isem_close, .arg = "sysvsem" };
static const struct bh_ops i_efd = { "eventfd", "ipcx", "handoff", .shared_bytes = iev_bytes,
	.prepare = iev_prepare, .release = iev_release, .send = iev_post, .recv = iev_wait,
	.close = iev_close };
static const struct bh_ops i_sig = { "signal", "ipcx", "sigqueue", .open = isig_open,
	.send = isig_post, .recv = isig_wait, .close = isig_close };
static const struct bh_ops i_mutex_un = { "mutex", "ipcx", "uncontended",
	.shared_bytes = imutex_bytes, .prepare = imutex_prepare, .open = imutex_open,
	.close = imutex_close, .op = imutex_un_op };
static const struct bh_ops i_mutex_co = { "mutex", "ipcx", "contended",
	.shared_bytes = imutex_bytes, .prepare = imutex_prepare, .open = imutex_open,
	.close = imutex_close, .op = imutex_co_op };
static const struct bh_ops i_lock_un = { "flock", "ipcx", "uncontended", .open = ilock_open,
	.close = ilock_close, .op = ilock_un_op };
static const struct bh_ops i_lock_co = { "flock", "ipcx", "contended", .open = ilock_open,
	.close = ilock_close, .op = ilock_co_op };

const struct bh_ops *const bh_ipcx_prim_ops[] = {
	&i_sem, &i_sysvsem, &i_mutex_un, &i_mutex_co, &i_lock_un, &i_lock_co, &i_efd, &i_sig,
	NULL,
};
