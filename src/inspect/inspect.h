/*
 * The object scanner behind ipcx_ls(): private pieces shared by
 * the files of src/inspect.  scan.c finds objects, procs.c finds who has what open,
 * inspect.c puts them together behind the public API.
 */
#ifndef IPCX_INSPECT_INSPECT_H
#define IPCX_INSPECT_INSPECT_H


#include "ipcx.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* How an object is recognised in a process's descriptors and mappings. */
enum match_type {
	MATCH_NONE = 0,
	MATCH_FILE, /* (dev, ino) of an open or mapped file: /dev/shm, mqueue, FIFO */
	MATCH_SOCK, /* socket inode (sockfs), from /proc/net/unix */
	MATCH_SYSV, /* System V shm id, from "/SYSV..." mappings */
};

/* What the library knows of an object beyond struct ipcx_obj. */
struct objx {
	int match;
	uint64_t dev, ino;
	uint64_t *socks; /* socket inodes bound to a path or abstract name */
	size_t nsocks;
};

struct objvec {
	struct ipcx_obj *v;
	struct objx *x;
	size_t n, cap;
	size_t *hash; /* index + 1 by URL hash, open addressing; 0 = empty */
	size_t hcap;
};

/* Add an object with every number unknown; NULL on ENOMEM or if url is listed. */
struct ipcx_obj *ipcx__ov_add(struct objvec *ov, int kind, const char *url, const char *name);
/* The listed object with this URL, or NULL. */
struct ipcx_obj *ipcx__ov_find(const struct objvec *ov, const char *url);
static inline struct objx *ipcx__ov_x(struct objvec *ov, const struct ipcx_obj *o)
{
	return &ov->x[o - ov->v];
}
void ipcx__ov_free(struct objvec *ov);

/* ---- who has what open (procs.c) ---------------------------------------------- */

struct pent {
	uint8_t type; /* enum match_type */
	uint64_t dev, ino;
	pid_t pid;
	uid_t uid; /* the process's owner */
};

struct ptab {
	struct pent *v;
	size_t n, cap;
	char **paths; /* named FIFOs and socket files processes have open */
	size_t npaths;
};

/*
 * Walk /proc: every process's descriptors and mappings of files on the
 * devices in devs (ndevs of them), every FIFO, socket and System V segment.
 */
int ipcx__ptab_build(struct ptab *t, const uint64_t *devs, size_t ndevs);
/* Calls fn for each process entry matching (type, dev, ino). */
void ipcx__ptab_each(const struct ptab *t, int type, uint64_t dev, uint64_t ino,
		     void (*fn)(const struct pent *e, void *arg), void *arg);
void ipcx__ptab_free(struct ptab *t);

/* ---- sources (scan.c) ----------------------------------------------------------- */

int ipcx__scan_sysv(struct objvec *ov);
int ipcx__scan_devshm(struct objvec *ov);
/* POSIX message queues through the mqueue mount; -ENOENT if not mounted. */
int ipcx__scan_mqueue(struct objvec *ov);
int ipcx__scan_unix(struct objvec *ov);
/*
 * FIFOs and socket files: the usual folders a few levels deep, then each of
 * paths (files, or folders to walk), NULL-terminated or NULL.
 */
int ipcx__scan_files(struct objvec *ov, const char *const *paths, size_t npaths);
/* Look at one path: a FIFO, socket file or mmap: log is added (or completed). */
void ipcx__scan_path(struct objvec *ov, const char *path);

/* Fill o->stats if o is an ipcx shared-memory ring or mmap: log (stats.c). */
void ipcx__ring_stats_of(struct ipcx_obj *o);
/* The live listener of the ring open in fd (from a copy of its header), or 0. */
pid_t ipcx__ring_owner_of(int fd);
/* The process /proc/locks names as holding a flock on the file open in fd, or 0. */
pid_t ipcx__flock_holder(int fd);
/* Does the regular file at path hold an ipcx ring (an mmap: log)? */
bool ipcx__ring_file(const char *path);

/* st_dev of /dev/shm and of the mqueue mount (0 if absent). */
uint64_t ipcx__devshm_dev(void);
uint64_t ipcx__mqueue_dev(void);
int ipcx__mqueue_mount(char *buf, size_t cap);

#endif
