/* Chunked frames for byte streams with many writers: see chunk.h. */
#include "core/chunk.h"

#include "core/crc.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC       "IXC1"
#define MAX_PARTS   64          /* messages under way at once (one per writer) */
#define PART_START  (64u << 10) /* first buffer of a message being put together */
#define SWEEP_EVERY 64          /* messages of one chunk between looks at writers */

uint32_t ipcx__get_le32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

void ipcx__put_le32(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}

bool ipcx__ck_single(const struct ipcx__ck_hdr *h)
{
	return (h->flags & (IPCX__CK_FIRST | IPCX__CK_LAST)) == (IPCX__CK_FIRST | IPCX__CK_LAST);
}

size_t ipcx__ck_wire(const struct ipcx__ck_hdr *h)
{
	if (ipcx__ck_single(h) || h->flags == IPCX__CK_ABORT)
		return IPCX__CHUNK_HDR + h->len + IPCX__CHUNK_TRAIL;
	return IPCX__CHUNK;
}

size_t ipcx__ck_count(size_t len)
{
	return len <= IPCX__CHUNK_DATA ? 1 : (len + IPCX__CHUNK_DATA - 1) / IPCX__CHUNK_DATA;
}

void ipcx__ck_encode(const struct ipcx__ck_hdr *h, char *out, char trail[IPCX__CHUNK_TRAIL])
{
	memcpy(out, MAGIC, 4);
	out[4] = (char)h->flags;
	out[5] = 0;
	out[6] = (char)(h->len & 0xff);
	out[7] = (char)(h->len >> 8);
	ipcx__put_le32(out + 8, h->pid);
	ipcx__put_le32(out + 12, h->pidns);
	ipcx__put_le32(out + 16, h->chan);
	ipcx__put_le32(out + 20, h->arg);
	uint32_t check = ipcx__crc32c(0, out, 24);
	ipcx__put_le32(out + 24, check);
	ipcx__put_le32(trail, check);
}

/* The rules a writer's headers follow; anything else is not a chunk. */
static bool well_formed(const struct ipcx__ck_hdr *h)
{
	if (h->len > IPCX__CHUNK_DATA)
		return false;
	if (h->flags == IPCX__CK_ABORT)
		return h->len == 0 && h->pid != 0;
	if (h->flags & ~(IPCX__CK_FIRST | IPCX__CK_LAST))
		return false;
	if (ipcx__ck_single(h))
		return h->arg == h->len;
	if (h->pid == 0)
		return false; /* a message of several chunks says whose it is */
	if (h->flags & IPCX__CK_FIRST)
		return h->len == IPCX__CHUNK_DATA && h->arg > IPCX__CHUNK_DATA;
	/* The offset of a chunk is a whole number of chunks in. */
	return h->arg > 0 && h->arg % IPCX__CHUNK_DATA == 0 &&
	       ((h->flags & IPCX__CK_LAST) ? h->len > 0 : h->len == IPCX__CHUNK_DATA);
}

int ipcx__ck_decode(const char *p, size_t avail, struct ipcx__ck_hdr *h)
{
	if (memcmp(p, MAGIC, avail < 4 ? avail : 4) != 0)
		return -EBADMSG;
	if (avail < IPCX__CHUNK_HDR)
		return -EAGAIN;
	h->flags = (uint8_t)p[4];
	h->len = (uint16_t)((unsigned char)p[6] | (unsigned char)p[7] << 8);
	h->pid = ipcx__get_le32(p + 8);
	h->pidns = ipcx__get_le32(p + 12);
	h->chan = ipcx__get_le32(p + 16);
	h->arg = ipcx__get_le32(p + 20);
	h->check = ipcx__get_le32(p + 24);
	if (p[5] != 0 || ipcx__crc32c(0, p, 24) != h->check || !well_formed(h))
		return -EBADMSG;
	return 0;
}

bool ipcx__ck_whole(const char *p, const struct ipcx__ck_hdr *h)
{
	return ipcx__get_le32(p + ipcx__ck_wire(h) - IPCX__CHUNK_TRAIL) == h->check;
}

size_t ipcx__ck_resync(const char *p, size_t n)
{
	const char *q = n > 1 ? memchr(p + 1, MAGIC[0], n - 1) : NULL;
	return q ? (size_t)(q - p) : n;
}

/*
 * getpid() is a system call (glibc keeps no copy, since a copy goes stale
 * in a child made without fork()), and a costly one in a virtual machine: a
 * few microseconds, as much as a 4 KiB message costs.  So keep it in a page
 * that the kernel zeroes in a child (MADV_WIPEONFORK): whatever made the
 * child, a stale pid is never read.
 */
static _Atomic uint32_t *pid_page;

static void map_pid_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	if (madvise(p, 4096, MADV_WIPEONFORK) < 0) {
		munmap(p, 4096);
		return;
	}
	pid_page = p;
}

uint32_t ipcx__ck_self_pid(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, map_pid_page);
	if (!pid_page)
		return (uint32_t)getpid();
	uint32_t pid = atomic_load_explicit(pid_page, memory_order_relaxed);
	if (!pid) {
		pid = (uint32_t)getpid();
		atomic_store_explicit(pid_page, pid, memory_order_relaxed);
	}
	return pid;
}

uint32_t ipcx__ck_pidns(void)
{
	struct stat st;
	return stat("/proc/self/ns/pid", &st) == 0 ? (uint32_t)st.st_ino : 0;
}

uint32_t ipcx__ck_new_chan(void)
{
	static atomic_uint next;
	return atomic_fetch_add(&next, 1) + 1;
}

/* ---- putting messages together ------------------------------------------------ */

void ipcx__ck_asm_init(struct ipcx__ck_asm *a)
{
	memset(a, 0, sizeof(*a));
	a->pidns = ipcx__ck_pidns();
}

void ipcx__ck_asm_fini(struct ipcx__ck_asm *a)
{
	for (size_t i = 0; i < a->nparts; i++)
		free(a->parts[i].buf);
	free(a->parts);
	free(a->ready.buf);
	free(a->spare);
	memset(a, 0, sizeof(*a));
}

static bool same_writer(const struct ipcx__ck_part *p, const struct ipcx__ck_hdr *h)
{
	return p->pid == h->pid && p->pidns == h->pidns && p->chan == h->chan;
}

static struct ipcx__ck_part *find(struct ipcx__ck_asm *a, const struct ipcx__ck_hdr *h)
{
	for (size_t i = 0; i < a->nparts; i++)
		if (same_writer(&a->parts[i], h))
			return &a->parts[i];
	return NULL;
}

/* Keep the larger of a finished message's buffer and the spare one. */
static void recycle(struct ipcx__ck_asm *a, char *buf, size_t cap)
{
	if (cap > a->spare_cap) {
		free(a->spare);
		a->spare = buf;
		a->spare_cap = cap;
	} else {
		free(buf);
	}
}

/* Forget a message under way; it counts as dropped unless it was refused. */
static void drop(struct ipcx__ck_asm *a, struct ipcx__ck_part *p)
{
	if (!p->discard)
		a->dropped++;
	recycle(a, p->buf, p->cap);
	*p = a->parts[--a->nparts];
}

/*
 * Drop the messages of writers that have died: a message cut off by a
 * SIGKILL never gets its last chunk.  Only writers in our pid namespace can
 * be asked; a message from another one waits for its writer's next message,
 * or is dropped when MAX_PARTS writers are under way.
 */
static void sweep(struct ipcx__ck_asm *a)
{
	for (size_t i = 0; i < a->nparts;) {
		struct ipcx__ck_part *p = &a->parts[i];
		if (a->pidns && p->pidns == a->pidns && kill((pid_t)p->pid, 0) < 0 && errno == ESRCH)
			drop(a, p); /* the last part moved here: look at i again */
		else
			i++;
	}
}

static struct ipcx__ck_part *least_recent(struct ipcx__ck_asm *a)
{
	struct ipcx__ck_part *old = &a->parts[0];
	for (size_t i = 1; i < a->nparts; i++)
		if (a->parts[i].used < old->used)
			old = &a->parts[i];
	return old;
}

/* A FIRST chunk: a new message of its writer, whose earlier one is abandoned. */
static struct ipcx__ck_part *start(struct ipcx__ck_asm *a, const struct ipcx__ck_hdr *h,
				   size_t max)
{
	struct ipcx__ck_part *p = find(a, h);
	if (p)
		drop(a, p);
	if (a->nparts)
		sweep(a);
	if (a->nparts == MAX_PARTS)
		drop(a, least_recent(a));
	if (a->nparts == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4;
		struct ipcx__ck_part *n = realloc(a->parts, cap * sizeof(*n));
		if (!n)
			return NULL;
		a->parts = n;
		a->cap = cap;
	}
	p = &a->parts[a->nparts++];
	*p = (struct ipcx__ck_part){ .pid = h->pid, .pidns = h->pidns, .chan = h->chan,
				     .total = h->arg, .discard = h->arg > max };
	return p;
}

/* Add n bytes to a message; its buffer grows with what has arrived, up to its length. */
static bool append(struct ipcx__ck_asm *a, struct ipcx__ck_part *p, const char *data, size_t n)
{
	if (p->discard) {
		p->len += n;
		return true;
	}
	if (!p->buf && a->spare) {
		p->buf = a->spare;
		p->cap = a->spare_cap;
		a->spare = NULL;
		a->spare_cap = 0;
	}
	size_t need = p->len + n;
	if (need > p->cap) {
		size_t grown = p->cap * 2 > PART_START ? p->cap * 2 : PART_START;
		size_t cap = grown < p->total ? grown : p->total;
		char *b = realloc(p->buf, cap > need ? cap : need);
		if (!b)
			return false;
		p->buf = b;
		p->cap = cap > need ? cap : need;
	}
	memcpy(p->buf + p->len, data, n);
	p->len = need;
	return true;
}

/* A chunk that is not the first belongs after what its writer's message has. */
static bool continues(const struct ipcx__ck_part *p, const struct ipcx__ck_hdr *h)
{
	size_t end = p->len + h->len;
	return h->arg == p->len && end <= p->total && (!(h->flags & IPCX__CK_LAST) || end == p->total);
}

void ipcx__ck_add(struct ipcx__ck_asm *a, const struct ipcx__ck_hdr *h, const char *data,
		  size_t max)
{
	a->clock++;
	struct ipcx__ck_part *p = find(a, h);
	if (h->flags == IPCX__CK_ABORT) {
		if (p)
			drop(a, p);
		return;
	}
	if (h->flags & IPCX__CK_FIRST) {
		if (!(p = start(a, h, max))) {
			a->dropped++; /* no memory to even begin */
			return;
		}
	} else if (!p) {
		return; /* the rest of a message that was dropped already */
	} else if (!continues(p, h)) {
		drop(a, p);
		return;
	}
	p->used = a->clock;
	if (!append(a, p, data, h->len)) {
		drop(a, p);
		return;
	}
	if (!(h->flags & IPCX__CK_LAST))
		return;
	if (p->discard) {
		*p = a->parts[--a->nparts]; /* refused when it began; nothing kept */
		return;
	}
	a->ready = *p;
	a->has_ready = true;
	*p = a->parts[--a->nparts];
}

void ipcx__ck_single_seen(struct ipcx__ck_asm *a)
{
	if (a->nparts && ++a->singles >= SWEEP_EVERY) {
		a->singles = 0;
		sweep(a);
	}
}

bool ipcx__ck_ready(const struct ipcx__ck_asm *a)
{
	return a->has_ready;
}

ssize_t ipcx__ck_take(struct ipcx__ck_asm *a, void *buf, size_t cap)
{
	struct ipcx__ck_part *r = &a->ready;
	if (r->len > cap)
		return -EMSGSIZE;
	memcpy(buf, r->buf, r->len);
	recycle(a, r->buf, r->cap);
	a->has_ready = false;
	ssize_t n = (ssize_t)r->len;
	*r = (struct ipcx__ck_part){ 0 };
	return n;
}
