/*
 * Messages over a descriptor: the codec shared by every transport built on
 * a pipe or a socket.  Five framings:
 *
 *   LEN     a 4-byte little-endian length, then the payload (the default on
 *           byte streams with one writer: pipes, stream sockets)
 *   CHUNK   chunks of at most PIPE_BUF bytes that say whose message they
 *           carry (the default on FIFOs, which many writers share: chunk.h)
 *   LINES   one message per line, without its '\n' (talks to nc, socat, sh)
 *   RAW     each read() is one message (whatever the kernel hands over)
 *   PACKET  the kernel keeps boundaries (SOCK_SEQPACKET, SOCK_DGRAM)
 *
 * The descriptor is non-blocking; waits happen in poll() with a deadline, so
 * nothing blocks past its timeout.  A stream read brings as much as is there,
 * so one read() can serve many messages; the buffer grows to fit the largest
 * frame seen, never beyond max_msg whatever a length prefix claims, and only
 * as the frame's bytes arrive (to twice what has come, 64 KiB at least).
 */
#ifndef IPCX_CORE_IO_H
#define IPCX_CORE_IO_H

#include "core/chunk.h"
#include "core/url.h"
#include "ipcx.h"

#include <sys/socket.h>

enum ipcx__framing {
	IPCX__FRAME_LEN,
	IPCX__FRAME_LINES,
	IPCX__FRAME_RAW,
	IPCX__FRAME_PACKET,
	IPCX__FRAME_CHUNK, /* chunks of at most PIPE_BUF, for many writers (chunk.h) */
};

#define IPCX__STREAM_MAX_DEFAULT (16u << 20) /* largest message on a stream */
#define IPCX__LEN_HDR            4u          /* LEN framing: bytes of the length prefix */
#define IPCX__STREAM_MAX_LIMIT   (1u << 30)  /* largest that ?max= accepts */

struct ipcx__io {
	int fd;
	int framing;
	bool sock;        /* a socket: send with MSG_NOSIGNAL */
	bool eof;         /* the peer closed its end */
	bool seqpacket;   /* SOCK_SEQPACKET: a 0-byte read is the end */
	bool exact;       /* LEN: never read past the current frame (see below) */
	size_t max_msg;
	char *rbuf;       /* received bytes [rpos, rlen) not yet taken */
	size_t rcap, rpos, rlen;
	size_t skip;      /* bytes of an oversize message still to discard */
	char *tbuf;       /* unsent tail of a message whose send ran out of time */
	size_t tcap, tpos, tlen;
	struct ipcx__ck_asm ck; /* CHUNK, reading: messages being put together */
	uint32_t ck_chan;       /* CHUNK, writing: this channel, among the process's */
	bool ck_abandoned;      /* CHUNK, writing: a message was cut short by a timeout */
	/*
	 * PACKET, reading: the judge of each packet's sender, given its
	 * control data (SCM_CREDENTIALS, with room for nothing else); a packet
	 * it refuses is dropped and counted in `refused`.  NULL: no control
	 * data is asked for, and every packet is taken.
	 */
	bool (*admit)(void *arg, struct msghdr *mh);
	void *admit_arg;
	uint64_t sent, received, refused;
};

/*
 * An exact reader never reads past the frame it is taking (two reads a
 * message instead of one per burst), so nothing waits in its buffer and its
 * own descriptor is an exact readiness signal.  Switching is possible only
 * while nothing is buffered; returns whether the reader is now exact (LEN
 * framing, or a framing that never buffers).
 */
bool ipcx__io_set_exact(struct ipcx__io *io);

/*
 * The framing= option of a stream transport's table: len, lines or raw,
 * whose index is the enum ipcx__framing above.  Its default is only a
 * placeholder: a transport with another default looks at ipcx__opt_set().
 */
extern const char *const ipcx__framing_words[];
#define IPCX__FRAMING_OPT IPCX__ENUM("framing", ipcx__framing_words, IPCX__FRAME_LEN)

void ipcx__io_init(struct ipcx__io *io, int fd, int framing, size_t max_msg, bool sock);
/* Free the buffers (not the descriptor). */
void ipcx__io_fini(struct ipcx__io *io);

/* True when a receive would return at once without reading the descriptor. */
bool ipcx__io_has_msg(const struct ipcx__io *io);

/* One message if one can be had without waiting, else -EAGAIN. */
ssize_t ipcx__io_try_recv(struct ipcx__io *io, void *buf, size_t cap);
ssize_t ipcx__io_recv(struct ipcx__io *io, void *buf, size_t cap, int64_t deadline);
ssize_t ipcx__io_send(struct ipcx__io *io, const void *msg, size_t len, int64_t deadline);
/*
 * Up to n messages under one deadline for the first, returning as
 * ipcx_recvv() does.  PACKET: while the buffers hold max_msg bytes each,
 * up to 64 packets to a recvmmsg(); a smaller buffer is filled by itself,
 * after a peek, so that a packet too large for it stays queued.  Streams:
 * one ipcx__io_try_recv() a message, out of what a read brought.
 */
ssize_t ipcx__io_recvv(struct ipcx__io *io, struct ipcx_msg *msgs, size_t n, int64_t deadline);
/*
 * msgs[0..n) under one deadline, returning as ipcx_sendv() does.  LEN: up
 * to 64 frames to a writev() (sendmsg on a socket).  CHUNK: messages of one
 * chunk as many to a write as fit in PIPE_BUF bytes (each write whole among
 * many writers), longer ones one by one.  PACKET: up to 64 packets to a
 * sendmmsg().  Not for LINES or RAW.
 */
ssize_t ipcx__io_sendv(struct ipcx__io *io, const struct ipcx_msg *msgs, size_t n,
		       int64_t deadline);
/* The same, one ipcx__io_send() a message: any framing. */
ssize_t ipcx__io_send_each(struct ipcx__io *io, const struct ipcx_msg *msgs, size_t n,
			   int64_t deadline);
/*
 * Send what an earlier send left unsent; 0 when nothing is left.  CHUNK
 * framing leaves nothing unsent: a message cut short by a timeout is
 * abandoned (the send said so), and this tells the reader to drop its part.
 */
int ipcx__io_flush(struct ipcx__io *io, int64_t deadline);

#endif
