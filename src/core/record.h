/*
 * Creator records, read side, and the canonical form of object URLs.  The
 * write side is ipcx__record_created()/ipcx__record_removed() in tran.h.
 * Private to the library (src/inspect reads records through this).
 */
#ifndef IPCX_RECORD_H
#define IPCX_RECORD_H

#include "tran.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define IPCX__CANON_MAX 4200 /* longest canonical URL: a path of PATH_MAX and a scheme */

/*
 * The canonical URL of an object, whatever form it was given in:
 * "sysvmq:0x00001234" for sysvmq:4660 or sysvmq:/path?proj=N, "shm:/name"
 * for shm:///name?opts, "unix:/p" for unixgram:/p.  *kind gets the
 * enum ipcx_obj_kind.  System V URLs keep "?id=N" (it names one IPC_PRIVATE
 * object among several).  -EINVAL for a URL that names no IPC object.
 */
int ipcx__obj_canon(const char *url, int *kind, char *buf, size_t cap);

/* One creator record, as read back from a record folder. */
struct ipcx__rec {
	char *url;      /* canonical */
	int kind;
	pid_t pid;      /* the creator */
	uint64_t start; /* its start time (clock ticks since boot) */
	uid_t owner;    /* who wrote the record (owner of the file) */
	char *dir;      /* the record's folder and file, for ipcx__record_unlink */
	char file[24];
};

/*
 * Every record this process may read: its own folder, and when it runs as
 * root every user's.  A record is believed only if its folder and file
 * belong to one user and nobody else can write them.
 */
int ipcx__record_list(struct ipcx__rec **ret, size_t *n);
void ipcx__record_list_free(struct ipcx__rec *r, size_t n);
/* Delete one record read by ipcx__record_list (a stale one, or after rm). */
int ipcx__record_unlink(const struct ipcx__rec *r);

/* This user's record folder (made if missing), for tests. */
int ipcx__record_dir(char *buf, size_t cap);

/* Start time of a process (field 22 of /proc/PID/stat), or -errno. */
int ipcx__proc_start(pid_t pid, uint64_t *ret);
/*
 * The same, and its state (field 3: 'R', 'S', 'Z' for a zombie ...) in
 * *state when state is not NULL; the state may be set on a failure.
 */
int ipcx__proc_stat(pid_t pid, char *state, uint64_t *ret);
/* The process pid runs and is the one that started at start. */
bool ipcx__proc_alive(pid_t pid, uint64_t start);

#endif
