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
	uint32_t key;            /* System V */
	char url[NAME_MAX + 16]; /* for messages: "sem:/name", "sysvsem:0x0000abcd" */
};

/*
 * A semaphore URL's options: sem: takes the first two (its table is
 * posix_options in sem.c), sysvsem: all (ipcx__sysvsem_options).  sem.c
 * checks and parses them (ipcx__url_opts) before either kind sees the URL.
 */
enum { SEM_OPT_MODE, SEM_OPT_KEEP, SEM_OPT_NSEMS, SEM_OPT_INDEX, SEM_OPT_UNDO, SEM_OPT_PROJ,
       SEM_NOPTS };
extern const struct ipcx__opt ipcx__sysvsem_options[SEM_NOPTS + 1];

/* sysvsem: url is parsed, options too, and its scheme is "sysvsem". */
int ipcx__sysvsem_create(const struct ipcx__url *u, unsigned value, struct ipcx_sem *s);
int ipcx__sysvsem_open(const struct ipcx__url *u, struct ipcx_sem *s);
int ipcx__sysvsem_post(struct ipcx_sem *s);
int ipcx__sysvsem_wait(struct ipcx_sem *s, int timeout_ms);
int ipcx__sysvsem_value(struct ipcx_sem *s, unsigned *ret);
int ipcx__sysvsem_remove(struct ipcx_sem *s);
int ipcx__sysvsem_unlink(const struct ipcx__url *u);

#endif
