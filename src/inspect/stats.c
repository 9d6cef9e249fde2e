/*
 * Statistics of ipcx shared-memory rings and mmap: logs, read the way `ipcx
 * ls` must: from outside, without attaching.  The ring header is copied with pread() (a
 * mapping could fault if the owner truncates the file under us), checked,
 * and its counters read from the copy; nothing is written to the segment
 * and no peer slot is taken.  System V segments are not read: attaching,
 * even read-only, would show up in their attach count.
 */
#include "core/proc.h"
#include "inspect/inspect.h"
#include "shm/ring.h"
#include "ipcx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copy the header of the ring open in fd; false if it is not a ring. */
static bool read_header_fd(int fd, struct ring_hdr *h)
{
	struct stat st;
	bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= (off_t)RING_HDR &&
		  pread(fd, h, sizeof(*h), 0) == (ssize_t)sizeof(*h);
	uint64_t ncells = ok ? h->ncells : 0;
	/* The same checks as an attach makes, on our private copy. */
	return ok && h->magic == RING_MAGIC && h->version == RING_VERSION &&
	       atomic_load(&h->ready) && h->hdr_size == RING_HDR && h->cell_size == RING_CELL &&
	       ncells >= RING_MIN_CAP / RING_CELL && !(ncells & (ncells - 1)) &&
	       ncells * RING_CELL <= RING_MAX_CAP &&
	       h->total_size <= (uint64_t)st.st_size;
}

/* Copy the header of the ring in dir/name (dir NULL: name is a path, an mmap: log). */
static bool read_header(const char *dir, const char *name, struct ring_hdr *h)
{
	int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : AT_FDCWD;
	int fd = dfd >= 0 || dfd == AT_FDCWD
			 ? openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
			 : -1;
	if (dfd >= 0)
		close(dfd);
	if (fd < 0)
		return false;
	bool ok = read_header_fd(fd, h);
	close(fd);
	return ok;
}

static struct ring_hdr *header_alloc(void)
{
	return aligned_alloc(RING_LINE, (sizeof(struct ring_hdr) + RING_LINE - 1) / RING_LINE *
						RING_LINE);
}

pid_t ipcx__ring_owner_of(int fd)
{
	struct ring_hdr *h = header_alloc();
	bool ring = h && read_header_fd(fd, h);
	pid_t pid = 0;
	for (unsigned k = 0; ring && k < RING_PEERS && !pid; k++) {
		const struct ring_peer *pe = &h->peers[k];
		if (atomic_load(&pe->owner) && ipcx__proc_alive((pid_t)atomic_load(&pe->pid),
								atomic_load(&pe->start)))
			pid = (pid_t)atomic_load(&pe->pid);
	}
	free(h);
	return pid;
}

bool ipcx__ring_file(const char *path)
{
	struct ring_hdr *h = header_alloc();
	bool ok = h && read_header(NULL, path, h);
	free(h);
	return ok;
}

/* A broadcast ring's live subscribers, with their counters. */
static void subs_of(struct ipcx_obj *o, struct ring *r)
{
	ssize_t n = ipcx__bcast_subscribers(r, NULL, 0);
	o->subs = n > 0 ? calloc((size_t)n, sizeof(*o->subs)) : NULL;
	if (o->subs)
		o->nsubs = (size_t)ipcx__bcast_subscribers(r, o->subs, (size_t)n);
	if (o->nsubs > (size_t)n)
		o->nsubs = (size_t)n; /* one joined between the two looks */
}

void ipcx__ring_stats_of(struct ipcx_obj *o)
{
	bool shm = o->kind == IPCX_OBJ_POSIX_SHM, log = o->kind == IPCX_OBJ_MMAP_LOG;
	if ((!shm && !log) || o->size < (int64_t)RING_HDR || strlen(o->name) < 2)
		return;
	struct ring_hdr *h = header_alloc();
	if (!h)
		return;
	if (shm ? read_header("/dev/shm", o->name + 1, h) : read_header(NULL, o->name, h)) {
		struct ring r = { .h = h, .ncells = h->ncells, .mask = h->ncells - 1, .me = -1,
				  .flags = h->flags };
		uint64_t v[6];
		if (ipcx__ring_stats(&r, v) == 0) {
			o->stats = (struct ipcx_stats){ .sent = v[0], .received = v[1],
							.dropped = v[2], .depth = v[3],
							.peers = v[4], .receivers = v[5] };
			o->has_stats = true;
			o->messages = (int64_t)v[3]; /* what waits in a ring is its depth */
		}
		if (h->flags & RING_F_BCAST)
			subs_of(o, &r);
	}
	free(h);
}
