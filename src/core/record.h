/*
 * Creator records (for ipcx ls / gc): which process created which kernel
 * object.  Listeners write them; src/inspect reads them, and turns an
 * object's kind and name into its URL (inspect/objurl.h): the core knows
 * object kinds, the public enum ipcx_obj_kind, but no scheme.
 */
#ifndef IPCX_CORE_RECORD_H
#define IPCX_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* An object as its kind names it. */
struct ipcx__objid {
	int kind;         /* enum ipcx_obj_kind */
	const char *name; /* POSIX objects "/name", FIFOs and sockets "/path" or
	                     "@name"; NULL for System V objects, named by key */
	uint32_t key;     /* System V */
	bool has_id;      /* System V, key 0 (IPC_PRIVATE): named by its id */
	uint32_t id;      /* (never recorded: a listener creates no such object) */
};

#define IPCX__NAME_MAX 4096 /* longest name of an object: a path of PATH_MAX */

/*
 * A listener that created a kernel object calls ipcx__record_created() with
 * it, and ipcx__record_removed() when it removes the object.  A failure to
 * record is not fatal to the caller (the object works without it): -EINVAL
 * for an object no record can name (no kind, or a name that is not an
 * absolute path or "@name"), else -errno.  A listener with keep=1 does not
 * record: its object is meant to outlive it, and a recorded object whose
 * creator is gone is an orphan that `ipcx gc` removes.
 */
int ipcx__record_created(const struct ipcx__objid *o);
void ipcx__record_removed(const struct ipcx__objid *o);

/* The same object (kind, and name or key). */
bool ipcx__objid_eq(const struct ipcx__objid *a, const struct ipcx__objid *b);

/* An object named by its name (kind k), or by its System V key. */
#define IPCX__OBJ_NAMED(k, n) (&(struct ipcx__objid){ .kind = (k), .name = (n) })
#define IPCX__OBJ_KEYED(k, key_) (&(struct ipcx__objid){ .kind = (k), .key = (uint32_t)(key_) })

/* One creator record, as read back from a record folder. */
struct ipcx__rec {
	int kind;
	char *name;     /* NULL: a System V object, named by key */
	uint32_t key;
	pid_t pid;      /* the creator */
	uint64_t start; /* its start time (clock ticks since boot) */
	uid_t owner;    /* who wrote the record (owner of the file) */
	char *dir;      /* the record's folder and file, for ipcx__record_unlink */
	char file[24];
};

/* The object a record names. */
static inline struct ipcx__objid ipcx__rec_obj(const struct ipcx__rec *r)
{
	return (struct ipcx__objid){ .kind = r->kind, .name = r->name, .key = r->key };
}

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
