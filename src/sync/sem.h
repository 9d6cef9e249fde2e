/*
 * Semaphores, private to the library: the handle shared by the POSIX
 * (sem.c) and System V (sysvsem.c) kinds, and the System V entry points.
 */
#ifndef IPCX_SYNC_SEM_H
#define IPCX_SYNC_SEM_H

#include "core/url.h"

#include <limits.h>
#include <semaphore.h>
#include <stdbool.h>

enum sem_kind { SEM_POSIX_NAMED, SEM_POSIX_MEM, SEM_SYSV };

struct ipcx_sem {
	enum sem_kind kind;
	bool owner; /* created it, and removes it on close */
	sem_t *sem; /* POSIX: the mapped semaphore */
	int semid;  /* System V: the set, the member, SEM_UNDO or 0 */
	unsigned short index;
	short undo;
	char url[NAME_MAX + 16]; /* canonical: "sem:/name", "sysvsem:0x0000abcd" */
};

/* sysvsem: url is parsed, its scheme is "sysvsem". */
int ipcx__sysvsem_create(const struct ipcx__url *u, unsigned value, struct ipcx_sem *s);
int ipcx__sysvsem_open(const struct ipcx__url *u, struct ipcx_sem *s);
int ipcx__sysvsem_post(struct ipcx_sem *s);
int ipcx__sysvsem_wait(struct ipcx_sem *s, int timeout_ms);
int ipcx__sysvsem_value(struct ipcx_sem *s, unsigned *ret);
int ipcx__sysvsem_remove(struct ipcx_sem *s);
int ipcx__sysvsem_unlink(const struct ipcx__url *u);

/* Reject options that are not in allowed (NULL-terminated). */
int ipcx__sem_check_opts(const struct ipcx__url *u, const char *const *allowed);

#endif
