/*
 * A channel over a ring: the part shm:, sysvshm: and mmap: share.  The
 * transport maps the segment; this file attaches the ring and fills the
 * channel operations.
 */
#ifndef IPCX_SHM_RINGCHAN_H
#define IPCX_SHM_RINGCHAN_H

#include "core/tran.h"
#include "shm/ring.h"

#include <limits.h>

struct ringchan {
	struct ipcx_chan c;
	struct ring ring;
	void *map;
	size_t maplen;
	/* Undo the mapping and, for an owner, remove the object (set by the transport). */
	int (*unmap)(struct ringchan *rc);
	bool owner, keep;
	bool cut;   /* another process cut the segment short: the channel is dead */
	int shmid;  /* sysvshm, and its key */
	uint32_t key;
	int lockfd; /* mmap: holds a shared flock for the channel's life */
	dev_t dev;  /* shm: the object created, so that close removes only its name */
	ino_t ino;
	char url[PATH_MAX + 16]; /* the URL as given, for messages */
	char name[PATH_MAX + 1]; /* shm: the object's name ("/name"); mmap: its path */
};

/*
 * The segment mapped at map (size bytes) holds all of the ring its header
 * describes, if its header describes one: 0, or -EBADMSG with a detail
 * naming url.  Checked before anything past the header is read.
 */
int ipcx__ringchan_fits(const void *map, size_t size, const char *url);

/*
 * The URL options of a ring's geometry, which shm:, sysvshm: and mmap: put
 * first in their option tables (IPCX__RING_OPTS), so that these indexes are
 * the same in each; capacity= absent means a capacity to fit max=.
 */
enum { RING_OPT_CAPACITY, RING_OPT_MAX, RING_OPT_SPSC, RING_OPT_POLICY, RING_OPT_SPIN,
       RING_NOPTS };
extern const char *const ipcx__ring_policy_words[];
#define IPCX__RING_OPTS                                                                    \
	[RING_OPT_CAPACITY] = IPCX__UINT("capacity", RING_MIN_CAP, RING_MAX_CAP, 0),      \
	[RING_OPT_MAX] = IPCX__UINT("max", 1, RING_MAX_MSG, RING_DEF_MAX),                \
	[RING_OPT_SPSC] = IPCX__BOOL("spsc", false),                                       \
	[RING_OPT_POLICY] = IPCX__ENUM("policy", ipcx__ring_policy_words, RING_BLOCK),    \
	[RING_OPT_SPIN] = IPCX__UINT("spin", 0, 10000000, RING_DEF_SPIN)

/* The geometry the URL's parsed ring options (IPCX__RING_OPTS) ask for, checked. */
int ipcx__ring_geom_parse(const struct ipcx__url *u, struct ring_geom *g);

/*
 * A broadcast ring's options (fanout=1, sub=1, history=N: docs/shm.md),
 * which shm: and sysvshm: put right after IPCX__RING_OPTS; mmap: has none
 * (a log cannot be a broadcast ring).
 */
enum { RING_OPT_FANOUT = RING_NOPTS, RING_OPT_SUB, RING_OPT_HISTORY, RING_BCAST_NOPTS };
#define IPCX__RING_BCAST_OPTS                                                              \
	[RING_OPT_FANOUT] = IPCX__BOOL("fanout", false),                                   \
	[RING_OPT_SUB] = IPCX__BOOL("sub", false),                                         \
	[RING_OPT_HISTORY] = IPCX__UINT("history", 0, UINT32_MAX, 0)

/* After ipcx__ring_geom_parse, on shm: and sysvshm:: the broadcast options into g, checked. */
int ipcx__ring_bcast_parse(const struct ipcx__url *u, struct ring_geom *g);

/*
 * Attach the ring in rc->map (rc->maplen bytes) and make rc a channel.  On
 * failure the caller still owns the mapping.
 */
int ipcx__ringchan_init(struct ringchan *rc, const struct ipcx_tran *t, bool format,
			const struct ring_geom *g);

extern const struct ipcx__chan_ops ipcx__ringchan_ops;

#endif
