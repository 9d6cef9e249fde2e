/*
 * Chunked frames: the framing of a byte stream that many writers share and
 * any of them may die in the middle of a message (a FIFO).
 *
 * The kernel writes up to PIPE_BUF (4096) bytes to a pipe at once: never
 * torn, never mixed with another writer's bytes.  So a message goes out as
 * chunks of at most 4096 bytes, each with a header that says whose message
 * it belongs to and where in it, and each written whole.  The reader puts
 * each writer's chunks back together; a message whose writer died (or gave
 * up on a timeout) before its last chunk is dropped and counted, never
 * returned; other writers' messages are not disturbed.
 *
 * A chunk, all little-endian:
 *
 *   0  u32 magic "IXC1"
 *   4  u8  flags: FIRST, LAST (a message of one chunk has both), ABORT
 *   5  u8  0
 *   6  u16 payload bytes in this chunk
 *   8  u32 writer's pid         \  0 in a message of one chunk, which
 *  12  u32 writer's pid namespace > needs no putting together
 *  16  u32 writer's channel      /
 *  20  u32 FIRST: the message's length; else the offset of this payload
 *  24  u32 check: CRC-32C of bytes 0..23
 *  28      payload, then (a message of more than one chunk) zeros up to
 *          byte 4091 of the chunk, so that every such chunk is 4096 bytes
 *   .  u32 the check again, as a trailer
 *
 * A message of one chunk (up to 4064 bytes) is 32 bytes longer than its
 * payload; the chunks of a longer message are a page each, so that several
 * can go in one writev(): a pipe fills whole pages, so a write that stops
 * short stops between two chunks.  The trailer makes the reader independent
 * of that: a chunk whose trailer does not match its header is not whole, and
 * is skipped like any bytes that are not a chunk (a program that is not ipcx
 * writing to the FIFO).
 */
#ifndef IPCX_CORE_CHUNK_H
#define IPCX_CORE_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPCX__CHUNK       4096u /* PIPE_BUF: the most the kernel writes whole */
#define IPCX__CHUNK_HDR   28u
#define IPCX__CHUNK_TRAIL 4u
#define IPCX__CHUNK_DATA  (IPCX__CHUNK - IPCX__CHUNK_HDR - IPCX__CHUNK_TRAIL) /* 4064 */

enum {
	IPCX__CK_FIRST = 1,
	IPCX__CK_LAST = 2,
	IPCX__CK_ABORT = 4, /* the writer gave up on its message being put together */
};

struct ipcx__ck_hdr {
	uint8_t flags;
	uint16_t len;
	uint32_t pid, pidns, chan; /* the writer */
	uint32_t arg;              /* FIRST: the message's length; else the offset */
	uint32_t check;
};

/* Bytes of a chunk on the stream, trailer included. */
size_t ipcx__ck_wire(const struct ipcx__ck_hdr *h);
/* A message of one chunk (FIRST and LAST). */
bool ipcx__ck_single(const struct ipcx__ck_hdr *h);
/* Chunks a message of len bytes takes. */
size_t ipcx__ck_count(size_t len);

/* Write h (its check computed) as the first IPCX__CHUNK_HDR bytes of out,
 * and the trailer into trail. */
void ipcx__ck_encode(const struct ipcx__ck_hdr *h, char *out, char trail[IPCX__CHUNK_TRAIL]);
/*
 * Read a header from the first avail bytes at p: 0, -EAGAIN (too few bytes,
 * and those there may start a header) or -EBADMSG (not a header).
 */
int ipcx__ck_decode(const char *p, size_t avail, struct ipcx__ck_hdr *h);
/* Whether the whole chunk at p (ipcx__ck_wire(h) bytes) ends with its trailer. */
bool ipcx__ck_whole(const char *p, const struct ipcx__ck_hdr *h);
/* Where the next header may start in p[0..n), after its first byte; n if nowhere. */
size_t ipcx__ck_resync(const char *p, size_t n);

/* Little-endian 32-bit numbers in a byte stream (also the LEN framing's). */
uint32_t ipcx__get_le32(const char *p);
void ipcx__put_le32(char *p, uint32_t v);

/* This process's pid, without a system call each time (it survives fork()). */
uint32_t ipcx__ck_self_pid(void);
/* This process's pid namespace (its inode number), or 0 when unknown. */
uint32_t ipcx__ck_pidns(void);
/* A number for a new writing channel, distinct among this process's. */
uint32_t ipcx__ck_new_chan(void);

/* ---- putting messages together ------------------------------------------------ */

/* A message being put together: its writer, and its bytes so far. */
struct ipcx__ck_part {
	uint32_t pid, pidns, chan;
	size_t total, len, cap;
	char *buf;
	bool discard;  /* larger than max: counted through, not kept */
	uint64_t used; /* the assembler's clock at its last chunk */
};

struct ipcx__ck_asm {
	struct ipcx__ck_part *parts; /* one per writer with a message under way */
	size_t nparts, cap;
	struct ipcx__ck_part ready;  /* a message put together, not yet taken */
	bool has_ready;
	char *spare;                 /* the buffer of a message taken, for reuse */
	size_t spare_cap;
	uint32_t pidns;              /* ours: writers of the same can be asked if alive */
	uint64_t clock;              /* ticks at each chunk: the least recent goes first */
	unsigned singles;            /* messages of one chunk since the last look at writers */
	uint64_t dropped;            /* messages dropped: torn, abandoned, evicted */
};

void ipcx__ck_asm_init(struct ipcx__ck_asm *a);
void ipcx__ck_asm_fini(struct ipcx__ck_asm *a);

/*
 * A chunk of a message of several, or an ABORT: put it where it belongs.  A
 * FIRST chunk of a message larger than max starts a message that is only
 * counted through (its chunks discarded as they come); the caller tells the
 * receiver (-EMSGSIZE).  When a LAST chunk completes a message, it is
 * ready (ipcx__ck_take).
 */
void ipcx__ck_add(struct ipcx__ck_asm *a, const struct ipcx__ck_hdr *h, const char *data,
		  size_t max);
/* A message of one chunk passed by: now and then, look for writers that died. */
void ipcx__ck_single_seen(struct ipcx__ck_asm *a);
/* A message is ready to take. */
bool ipcx__ck_ready(const struct ipcx__ck_asm *a);
/* Take the ready message: its length, or -EMSGSIZE (kept) if cap is too small. */
ssize_t ipcx__ck_take(struct ipcx__ck_asm *a, void *buf, size_t cap);

#endif
