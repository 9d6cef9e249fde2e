/*
 * A robust, process-shared mutex in shared memory.
 *
 * PTHREAD_MUTEX_ROBUST makes the kernel (through the robust futex list each
 * thread registers) mark the mutex when its holder dies, so the next locker
 * gets EOWNERDEAD instead of waiting forever.  PTHREAD_MUTEX_ERRORCHECK makes
 * a relock by the holder an error (EDEADLK) rather than a silent deadlock.
 * Timed locks use CLOCK_MONOTONIC, so a change of the wall clock moves no
 * deadline.
 */
#include "core/clock.h"
#include "core/error.h"
#include "ipcx.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define MUTEX_MAGIC 0x4d584950u /* "PIXM" */

struct shm_mutex {
	_Atomic uint32_t magic;
	uint32_t version;
	pthread_mutex_t m;
};
_Static_assert(sizeof(struct shm_mutex) <= IPCX_MUTEX_SIZE, "IPCX_MUTEX_SIZE too small");

struct ipcx_mutex {
	struct shm_mutex *shm;
};

static int mem_check(void *mem, size_t len, ipcx_mutex **ret)
{
	if (!mem || len < IPCX_MUTEX_SIZE)
		return ipcx__fail(-EINVAL, "want at least %d bytes of memory", IPCX_MUTEX_SIZE);
	if ((uintptr_t)mem % 8)
		return ipcx__fail(-EINVAL, "memory not 8-byte aligned");
	if (!ret)
		return ipcx__fail(-EINVAL, "no place for the mutex");
	return 0;
}

static int wrap(struct shm_mutex *shm, ipcx_mutex **ret)
{
	ipcx_mutex *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->shm = shm;
	*ret = m;
	return 0;
}

IPCX_EXPORT int ipcx_mutex_init_at(void *mem, size_t len, unsigned flags, ipcx_mutex **ret)
{
	int r = mem_check(mem, len, ret);
	if (r < 0)
		return r;
	if (flags)
		return ipcx__fail(-EINVAL, "unknown flags 0x%x", flags);
	struct shm_mutex *shm = mem;
	atomic_store_explicit(&shm->magic, 0, memory_order_relaxed);
	shm->version = 1;
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	r = pthread_mutex_init(&shm->m, &a);
	pthread_mutexattr_destroy(&a);
	if (r)
		return ipcx__fail(-r, "pthread_mutex_init");
	if ((r = wrap(shm, ret)) < 0)
		return r;
	/* Publish: an attacher that sees the magic sees an initialised mutex. */
	atomic_store_explicit(&shm->magic, MUTEX_MAGIC, memory_order_release);
	return 0;
}

IPCX_EXPORT int ipcx_mutex_attach_at(void *mem, size_t len, ipcx_mutex **ret)
{
	int r = mem_check(mem, len, ret);
	if (r < 0)
		return r;
	struct shm_mutex *shm = mem;
	if (atomic_load_explicit(&shm->magic, memory_order_acquire) != MUTEX_MAGIC ||
	    shm->version != 1)
		return ipcx__fail(-EBADMSG, "no ipcx mutex in this memory");
	return wrap(shm, ret);
}

IPCX_EXPORT int ipcx_mutex_lock(ipcx_mutex *m, int timeout_ms)
{
	if (ipcx__check_timeout(timeout_ms) < 0)
		return -EINVAL;
	if (!m)
		return ipcx__fail(-EINVAL, "no mutex");
	int r;
	if (timeout_ms < 0) {
		r = pthread_mutex_lock(&m->shm->m);
	} else if (timeout_ms == 0) {
		r = pthread_mutex_trylock(&m->shm->m);
		if (r == EBUSY)
			return -EAGAIN;
	} else {
		int64_t d = ipcx__deadline(timeout_ms);
		struct timespec abs = { .tv_sec = d / 1000000000, .tv_nsec = d % 1000000000 };
		r = pthread_mutex_clocklock(&m->shm->m, CLOCK_MONOTONIC, &abs);
	}
	switch (r) {
	case 0:
		return 0;
	case EOWNERDEAD:
		return ipcx__fail(-EOWNERDEAD, "the holder died: repair the data, then call "
				  "ipcx_mutex_consistent()");
	case ENOTRECOVERABLE:
		return ipcx__fail(-ENOTRECOVERABLE, "a holder died and the mutex was unlocked "
				  "without ipcx_mutex_consistent()");
	case ETIMEDOUT:
		return -ETIMEDOUT;
	case EDEADLK:
		return ipcx__fail(-EDEADLK, "this thread holds the mutex already");
	default:
		return ipcx__fail(-r, "pthread_mutex_lock");
	}
}

IPCX_EXPORT int ipcx_mutex_consistent(ipcx_mutex *m)
{
	if (!m)
		return ipcx__fail(-EINVAL, "no mutex");
	int r = pthread_mutex_consistent(&m->shm->m);
	return r ? ipcx__fail(-r, "the mutex is not held after -EOWNERDEAD") : 0;
}

IPCX_EXPORT int ipcx_mutex_unlock(ipcx_mutex *m)
{
	if (!m)
		return ipcx__fail(-EINVAL, "no mutex");
	int r = pthread_mutex_unlock(&m->shm->m);
	return r ? ipcx__fail(-r, "this thread does not hold the mutex") : 0;
}

IPCX_EXPORT int ipcx_mutex_close(ipcx_mutex *m)
{
	free(m);
	return 0;
}
