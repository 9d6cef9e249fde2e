/*
 * Creator records (for ipcx ls / gc), and the canonical form of object
 * URLs.  Listeners write them; src/inspect reads them.
 */
#ifndef IPCX_CORE_RECORD_H
#define IPCX_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A listener that created a kernel object calls ipcx__record_created() with
 * the object's canonical URL ("shm:/name", "sysvmq:0x00001234", "fifo:/path",
 * "unix:/path", "unix:@name", "mq:/name", "sem:/name"), and
 * ipcx__record_removed() when it removes the object.  A failure to record is
 * not fatal to the caller (the object works without it).  A listener with
 * keep=1 does not record: its object is meant to outlive it, and a recorded
 * object whose creator is gone is an orphan that `ipcx gc` removes.
 */
int ipcx__record_created(const char *url);
void ipcx__record_removed(const char *url);

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

#endif
