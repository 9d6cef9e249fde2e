/*
 * Who has what open: one walk over /proc collects, for every process we may
 * look at, the files on /dev/shm and the mqueue mount it has open or mapped,
 * the named FIFOs it has open, its sockets, and the System V segments it has
 * attached.  Objects then find their processes by (type, dev, ino) with a
 * binary search, so the cost is one walk whatever the number of objects.
 */
#include "inspect/inspect.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int push(struct ptab *t, int type, uint64_t dev, uint64_t ino, pid_t pid, uid_t uid)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct pent *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = (struct pent){ .type = (uint8_t)type, .dev = dev, .ino = ino,
				      .pid = pid, .uid = uid };
	return 0;
}

static void add_path(struct ptab *t, const char *path)
{
	for (size_t i = 0; i < t->npaths; i++)
		if (strcmp(t->paths[i], path) == 0)
			return;
	char **p = realloc(t->paths, (t->npaths + 1) * sizeof(*p));
	if (!p)
		return;
	t->paths = p;
	if ((p[t->npaths] = strdup(path)))
		t->npaths++;
}

static bool dev_wanted(uint64_t dev, const uint64_t *devs, size_t ndevs)
{
	for (size_t i = 0; i < ndevs; i++)
		if (devs[i] && devs[i] == dev)
			return true;
	return false;
}

/* A process's descriptors: stat() through each /proc/PID/fd link. */
static void scan_fds(struct ptab *t, int pdir, pid_t pid, uid_t uid, const uint64_t *devs,
		     size_t ndevs)
{
	int fdd = openat(pdir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fdd < 0)
		return;
	DIR *d = fdopendir(fdd);
	if (!d) {
		close(fdd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' || fstatat(fdd, e->d_name, &st, 0) < 0)
			continue;
		if (S_ISSOCK(st.st_mode)) {
			push(t, MATCH_SOCK, 0, st.st_ino, pid, uid);
		} else if (S_ISFIFO(st.st_mode)) {
			char link[4096];
			ssize_t n = readlinkat(fdd, e->d_name, link, sizeof(link) - 1);
			/* "pipe:[N]" is an anonymous pipe; a path is a named FIFO. */
			if (n > 0 && link[0] == '/') {
				link[n] = '\0';
				push(t, MATCH_FILE, st.st_dev, st.st_ino, pid, uid);
				if (!strstr(link, " (deleted)"))
					add_path(t, link);
			}
		} else if (dev_wanted(st.st_dev, devs, ndevs)) {
			push(t, MATCH_FILE, st.st_dev, st.st_ino, pid, uid);
		}
	}
	closedir(d);
}

/*
 * A process's mappings: lines "addr perms offset MAJ:MIN inode path".  A
 * System V segment shows as "/SYSV<key> (deleted)" with its shmid as inode.
 */
static void scan_maps(struct ptab *t, int pdir, pid_t pid, uid_t uid, const uint64_t *devs,
		      size_t ndevs)
{
	int fd = openat(pdir, "maps", O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return;
	}
	char *line = NULL;
	size_t cap = 0;
	uint64_t last_dev = 0, last_ino = 0;
	while (getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		unsigned long long ino;
		int off = 0;
		if (sscanf(line, "%*s %*s %*s %x:%x %llu %n", &maj, &min, &ino, &off) != 3 || !off ||
		    ino == 0)
			continue;
		uint64_t dev = makedev(maj, min);
		if (dev == last_dev && ino == last_ino)
			continue; /* the next mapping of the same file */
		last_dev = dev;
		last_ino = ino;
		if (strncmp(line + off, "/SYSV", 5) == 0)
			push(t, MATCH_SYSV, 0, ino, pid, uid);
		else if (dev_wanted(dev, devs, ndevs))
			push(t, MATCH_FILE, dev, ino, pid, uid);
	}
	free(line);
	fclose(f);
}

static int pent_cmp(const void *a, const void *b)
{
	const struct pent *x = a, *y = b;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

int ipcx__ptab_build(struct ptab *t, const uint64_t *devs, size_t ndevs)
{
	memset(t, 0, sizeof(*t));
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(e->d_name);
		int pdir = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pdir < 0)
			continue;
		struct stat st;
		if (fstat(pdir, &st) == 0) {
			scan_fds(t, pdir, pid, st.st_uid, devs, ndevs);
			scan_maps(t, pdir, pid, st.st_uid, devs, ndevs);
		}
		close(pdir);
	}
	closedir(d);
	if (t->n)
		qsort(t->v, t->n, sizeof(*t->v), pent_cmp);
	return 0;
}

void ipcx__ptab_each(const struct ptab *t, int type, uint64_t dev, uint64_t ino,
		     void (*fn)(const struct pent *e, void *arg), void *arg)
{
	struct pent key = { .type = (uint8_t)type, .dev = dev, .ino = ino, .pid = 0 };
	size_t lo = 0, hi = t->n;
	while (lo < hi) { /* the first entry not below key */
		size_t mid = lo + (hi - lo) / 2;
		if (pent_cmp(&t->v[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < t->n; i++) {
		const struct pent *p = &t->v[i];
		if (p->type != type || p->dev != dev || p->ino != ino)
			break;
		fn(p, arg);
	}
}

void ipcx__ptab_free(struct ptab *t)
{
	free(t->v);
	for (size_t i = 0; i < t->npaths; i++)
		free(t->paths[i]);
	free(t->paths);
	memset(t, 0, sizeof(*t));
}

/*
 * /proc/locks lines read "N: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"
 * (major and minor in hex); a request still waiting reads "N: -> FLOCK ...".
 * The pid is the process that took the lock, which may since have died
 * leaving it to a child that inherited the descriptor or the mapping.
 */
pid_t ipcx__flock_holder(int fd)
{
	struct stat st;
	FILE *f = fstat(fd, &st) == 0 ? fopen("/proc/locks", "re") : NULL;
	char line[256];
	pid_t pid = 0;
	while (f && !pid && fgets(line, sizeof(line), f)) {
		char type[16];
		int p;
		unsigned maj, min;
		unsigned long long ino;
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", type, &p, &maj, &min, &ino) == 5 &&
		    !strcmp(type, "FLOCK") && maj == major(st.st_dev) && min == minor(st.st_dev) &&
		    ino == (unsigned long long)st.st_ino)
			pid = p;
	}
	if (f)
		fclose(f);
	return pid;
}
