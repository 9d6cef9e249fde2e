/*
 * System V semaphore sets (sysvsem:KEY, sysvsem:/path?proj=N).
 *
 * Every operation of a handle opened with undo=1 (the default) carries
 * SEM_UNDO: the kernel keeps, per process, the sum of its changes and
 * reverses it when the process exits, however it dies.  That is what lets a
 * holder killed with SIGKILL give its unit back.
 *
 * A new set has every member at 0 and sem_otime 0; the creator sets the
 * initial values with one semop (which also sets sem_otime), and an opener
 * waits briefly for sem_otime to become non-zero, so that it never uses a set
 * before its creator initialised it (the race described in semget(2)).
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/record.h"
#include "core/trust.h"
#include "core/url.h"
#include "sync/sem.h"
#include "ipcx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>

#define SYSV_VALUE_MAX 32767 /* SEMVMX */
#define NSEMS_MAX      250   /* SEMMSL's default: larger sets may be refused */

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

const struct ipcx__opt ipcx__sysvsem_options[SEM_NOPTS + 1] = {
	[SEM_OPT_MODE] = IPCX__MODE("mode", 0600),
	[SEM_OPT_KEEP] = IPCX__BOOL("keep", false),
	[SEM_OPT_NSEMS] = IPCX__UINT("nsems", 1, NSEMS_MAX, 1),
	[SEM_OPT_INDEX] = IPCX__UINT("index", 0, NSEMS_MAX - 1, 0),
	[SEM_OPT_UNDO] = IPCX__BOOL("undo", true),
	[SEM_OPT_PROJ] = IPCX__UINT("proj", 1, 255, 0), /* with a /path: ftok(path, proj) */
};

/* What every handle takes: the key, the member and SEM_UNDO. */
static int handle_opts(const struct ipcx__url *u, struct ipcx_sem *s, key_t *key)
{
	int r = ipcx__url_sysv_key(u, ipcx__opt(u, SEM_OPT_PROJ), key);
	if (r < 0)
		return r;
	s->index = (unsigned short)ipcx__opt(u, SEM_OPT_INDEX);
	s->undo = ipcx__opt(u, SEM_OPT_UNDO) ? SEM_UNDO : 0;
	s->key = (uint32_t)*key;
	snprintf(s->url, sizeof(s->url), "sysvsem:0x%08x", (unsigned)*key);
	return 0;
}

int ipcx__sysvsem_create(const struct ipcx__url *u, unsigned value, struct ipcx_sem *s)
{
	key_t key = 0;
	uint64_t nsems = ipcx__opt(u, SEM_OPT_NSEMS);
	mode_t mode = (mode_t)ipcx__opt(u, SEM_OPT_MODE);
	int r = handle_opts(u, s, &key);
	if (r < 0)
		return r;
	if (s->index >= nsems)
		return ipcx__fail(-EINVAL, "%s: index %u is past the %u members", u->orig,
				  s->index, (unsigned)nsems);
	if (value > SYSV_VALUE_MAX)
		return ipcx__fail(-EINVAL, "%s: value %u is above %d", u->orig, value,
				  SYSV_VALUE_MAX);
	/* The mode goes in as given: System V ignores the umask. */
	int id = semget(key, (int)nsems, IPC_CREAT | IPC_EXCL | (int)mode);
	if (id < 0 && errno == ENOSPC)
		return ipcx__fail(-ENOSPC, "%s: the system's limit of semaphore sets or "
				  "semaphores is reached (SEMMNI, SEMMNS in /proc/sys/kernel/sem)",
				  s->url);
	if (id < 0 && errno == EINVAL)
		return ipcx__fail(-EINVAL, "%s: %u members is more than a set may have "
				  "(SEMMSL in /proc/sys/kernel/sem)", s->url, (unsigned)nsems);
	if (id < 0)
		return ipcx__fail(-errno, "%s: semget", s->url);
	/*
	 * Initialise every member in one semop, without SEM_UNDO (the initial
	 * value belongs to the set, not to the creator).  An op of 0 on a
	 * member at 0 succeeds at once: it only sets sem_otime.
	 */
	struct sembuf ops[NSEMS_MAX];
	for (unsigned i = 0; i < nsems; i++)
		ops[i] = (struct sembuf){ .sem_num = (unsigned short)i,
					  .sem_op = (short)value, .sem_flg = IPC_NOWAIT };
	if (semop(id, ops, nsems) < 0) {
		r = ipcx__fail(-errno, "%s: setting the initial value", s->url);
		semctl(id, 0, IPC_RMID);
		return r;
	}
	s->semid = id;
	return 0;
}

/* Wait (up to about a second) until the creator has initialised the set. */
static int wait_initialised(int id, const char *url, unsigned short *nsems,
			    struct ipc_perm *perm)
{
	for (long delay_us = 100; ; delay_us *= 2) {
		struct semid_ds ds;
		union semun arg = { .buf = &ds };
		if (semctl(id, 0, IPC_STAT, arg) < 0)
			return ipcx__fail(-errno, "%s: semctl(IPC_STAT)", url);
		*nsems = (unsigned short)ds.sem_nsems;
		*perm = ds.sem_perm;
		/*
		 * A set that another program created and never operated on keeps
		 * sem_otime 0 for good: after the wait, use it as it is.
		 */
		if (ds.sem_otime != 0 || delay_us > 500000)
			return 0;
		struct timespec ts = { 0, delay_us * 1000 };
		nanosleep(&ts, NULL);
	}
}

int ipcx__sysvsem_open(const struct ipcx__url *u, struct ipcx_sem *s)
{
	key_t key = 0;
	int r = handle_opts(u, s, &key);
	if (r < 0)
		return r;
	if (ipcx__opt_set(u, SEM_OPT_NSEMS) || ipcx__opt_set(u, SEM_OPT_KEEP))
		return ipcx__fail(-EINVAL, "%s: nsems and keep are for the creator", u->orig);
	int id = semget(key, 0, 0);
	if (id < 0)
		return ipcx__fail(-errno, "%s: semget", s->url);
	unsigned short nsems = 0;
	struct ipc_perm perm;
	/* IPC_STAT needs read permission: a 0600 set refuses others here. */
	if ((r = wait_initialised(id, s->url, &nsems, &perm)) < 0)
		return r;
	/* Any user may take a key first: a set we do not trust is not used
	 * (docs/transports.md, "Trust"; mode= says whom we let write). */
	if ((r = ipcx__trust_ipc(s->url, &perm, (mode_t)ipcx__opt(u, SEM_OPT_MODE))) < 0)
		return r;
	if (s->index >= nsems)
		return ipcx__fail(-EINVAL, "%s: index %u is past the %u members", u->orig,
				  s->index, nsems);
	s->semid = id;
	return 0;
}

int ipcx__sysvsem_post(struct ipcx_sem *s)
{
	struct sembuf op = { .sem_num = s->index, .sem_op = 1,
			     .sem_flg = (short)(s->undo | IPC_NOWAIT) };
	while (semop(s->semid, &op, 1) < 0) {
		if (errno == ERANGE)
			return ipcx__fail(-EOVERFLOW, "%s: value would pass %d", s->url,
					  SYSV_VALUE_MAX);
		if (errno != EINTR)
			return ipcx__fail(-errno, "%s: semop", s->url);
	}
	return 0;
}

int ipcx__sysvsem_wait(struct ipcx_sem *s, int timeout_ms)
{
	struct sembuf op = { .sem_num = s->index, .sem_op = -1, .sem_flg = s->undo };
	if (timeout_ms == 0)
		op.sem_flg |= IPC_NOWAIT;
	int64_t deadline = ipcx__deadline(timeout_ms);
	for (;;) {
		struct timespec ts, *tsp = NULL;
		if (timeout_ms > 0) {
			int64_t left = deadline - ipcx__now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
			ts = (struct timespec){ left / 1000000000, left % 1000000000 };
			tsp = &ts;
		}
		if (semtimedop(s->semid, &op, 1, tsp) == 0)
			return 0;
		/* EAGAIN is both "IPC_NOWAIT and taken" and "timed out". */
		if (errno == EAGAIN && timeout_ms == 0)
			return -EAGAIN;
		if (errno == EIDRM)
			return ipcx__fail(-EIDRM, "%s: the set was removed", s->url);
		if (errno != EAGAIN && errno != EINTR)
			return ipcx__fail(-errno, "%s: semtimedop", s->url);
		/* Interrupted, or timed out: the loop checks the deadline again. */
	}
}

int ipcx__sysvsem_value(struct ipcx_sem *s, unsigned *ret)
{
	int v = semctl(s->semid, s->index, GETVAL);
	if (v < 0)
		return ipcx__fail(-errno, "%s: semctl(GETVAL)", s->url);
	*ret = (unsigned)v;
	return 0;
}

int ipcx__sysvsem_remove(struct ipcx_sem *s)
{
	if (semctl(s->semid, 0, IPC_RMID) < 0 && errno != EIDRM && errno != EINVAL)
		return ipcx__fail(-errno, "%s: semctl(IPC_RMID)", s->url);
	return 0;
}

int ipcx__sysvsem_unlink(const struct ipcx__url *u)
{
	struct ipcx_sem s = { .kind = SEM_SYSV };
	key_t key = 0;
	int r = handle_opts(u, &s, &key);
	if (r < 0)
		return r;
	int id = semget(key, 0, 0);
	if (id < 0)
		return ipcx__fail(-errno, "%s: semget", s.url);
	if (semctl(id, 0, IPC_RMID) < 0)
		return ipcx__fail(-errno, "%s: semctl(IPC_RMID)", s.url);
	ipcx__record_removed(IPCX__OBJ_KEYED(IPCX_OBJ_SYSV_SEM, key));
	return 0;
}
