/* The pattern layer's growing byte buffer: a drain's output lines, a socket subscriber's queue. */
#ifndef IPCX_PATTERN_BYTES_H
#define IPCX_PATTERN_BYTES_H

#include <errno.h>
#include <stdlib.h>

struct pat_bytes {
	char *p;
	size_t len, cap; /* bytes used, allocated */
};

/*
 * Room for more bytes after len, doubling from 4096: 0, or -ENOMEM with
 * the buffer as it was.
 */
static inline int pat_bytes_room(struct pat_bytes *b, size_t more)
{
	if (b->cap - b->len >= more)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

#endif
