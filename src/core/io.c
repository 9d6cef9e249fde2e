/* Messages over a pipe or socket descriptor: see io.h. */
#include "core/io.h"

#include "core/chunk.h"
#include "core/error.h"
#include "core/fd.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR         IPCX__LEN_HDR
#define RBUF_START  (64u << 10) /* first size of the receive buffer */
#define SKIP_LINE   ((size_t)-1) /* LINES: discard up to the next newline */

/* In the order of enum ipcx__framing. */
const char *const ipcx__framing_words[] = { "len", "lines", "raw", NULL };
_Static_assert(IPCX__FRAME_LEN == 0 && IPCX__FRAME_LINES == 1 && IPCX__FRAME_RAW == 2,
	       "framing= names the enum ipcx__framing by index");

void ipcx__io_init(struct ipcx__io *io, int fd, int framing, size_t max_msg, bool sock)
{
	memset(io, 0, sizeof(*io));
	io->fd = fd;
	io->framing = framing;
	io->max_msg = max_msg;
	io->sock = sock;
	if (framing == IPCX__FRAME_CHUNK) {
		ipcx__ck_asm_init(&io->ck);
		io->ck_chan = ipcx__ck_new_chan();
	}
	if (framing == IPCX__FRAME_PACKET) {
		int type = 0;
		socklen_t tl = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0)
			io->seqpacket = type == SOCK_SEQPACKET;
	}
}

bool ipcx__io_set_exact(struct ipcx__io *io)
{
	if (io->framing == IPCX__FRAME_RAW || io->framing == IPCX__FRAME_PACKET)
		return true;
	if (io->framing != IPCX__FRAME_LEN || io->rlen != io->rpos || io->skip)
		return false;
	io->exact = true;
	return true;
}

void ipcx__io_fini(struct ipcx__io *io)
{
	free(io->rbuf);
	free(io->tbuf);
	io->rbuf = io->tbuf = NULL;
	io->rcap = io->tcap = 0;
	ipcx__ck_asm_fini(&io->ck);
}

/* A peer that vanished shows up under several names; ipcx says -EPIPE. */
static int peer_err(int err)
{
	if (err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ECONNREFUSED)
		return -EPIPE;
	return -err;
}

/* ---- receiving: the buffer ------------------------------------------------ */

/* Make room for `need` unread bytes in a row: compact, then grow if needed. */
static int rbuf_reserve(struct ipcx__io *io, size_t need)
{
	if (io->rpos > 0 && (io->rcap - io->rpos < need || io->rlen == io->rcap)) {
		memmove(io->rbuf, io->rbuf + io->rpos, io->rlen - io->rpos);
		io->rlen -= io->rpos;
		io->rpos = 0;
	}
	if (io->rcap >= need && io->rlen < io->rcap)
		return 0;
	size_t cap = io->rcap ? io->rcap : RBUF_START;
	while (cap < need || cap <= io->rlen)
		cap *= 2;
	char *p = realloc(io->rbuf, cap);
	if (!p)
		return -ENOMEM;
	io->rbuf = p;
	io->rcap = cap;
	return 0;
}

/*
 * Room to make for a frame that needs `need` unread bytes in a row: no more
 * than twice what has arrived (and RBUF_START at least), so that the buffer
 * grows with the bytes a peer has sent, never with the length it announced:
 * a peer that announces max bytes and sends a few costs a few, not max.
 */
static size_t rbuf_want(const struct ipcx__io *io, size_t need)
{
	size_t avail = io->rlen - io->rpos;
	size_t grown = avail < RBUF_START / 2 ? RBUF_START : 2 * avail;
	return need < grown ? need : grown;
}

/* One read() into the buffer: bytes read, 0 at the end of the stream, -errno. */
static ssize_t rbuf_fill(struct ipcx__io *io, size_t need)
{
	int r = rbuf_reserve(io, rbuf_want(io, need));
	if (r < 0)
		return r;
	size_t room = io->rcap - io->rlen, avail = io->rlen - io->rpos;
	if (io->exact && need > avail && need - avail < room)
		room = need - avail;
	ssize_t n;
	do
		n = read(io->fd, io->rbuf + io->rlen, room);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return peer_err(errno);
	if (n == 0)
		io->eof = true;
	io->rlen += (size_t)n;
	return n;
}

static void rbuf_consume(struct ipcx__io *io, size_t n)
{
	io->rpos += n;
	if (io->rpos == io->rlen)
		io->rpos = io->rlen = 0;
}

/* Discard what remains of an oversize message; true when done. */
static bool skip_oversize(struct ipcx__io *io)
{
	size_t avail = io->rlen - io->rpos;
	if (io->skip == SKIP_LINE) {
		const char *nl = memchr(io->rbuf + io->rpos, '\n', avail);
		if (!nl) {
			rbuf_consume(io, avail);
			return false;
		}
		rbuf_consume(io, (size_t)(nl - (io->rbuf + io->rpos)) + 1);
		io->skip = 0;
		return true;
	}
	size_t d = avail < io->skip ? avail : io->skip;
	rbuf_consume(io, d);
	io->skip -= d;
	return io->skip == 0;
}

/*
 * Take one LEN frame out of the buffer.  Returns its length, -EAGAIN if the
 * frame is not whole yet (*need says how many bytes it takes), or -EMSGSIZE:
 * for a frame larger than cap (kept, so a larger buffer can take it) or
 * larger than max_msg (discarded as it arrives: the peer broke the limit).
 */
static ssize_t take_len(struct ipcx__io *io, void *buf, size_t cap, size_t *need)
{
	size_t avail = io->rlen - io->rpos;
	*need = HDR;
	if (avail < HDR)
		return -EAGAIN;
	size_t n = ipcx__get_le32(io->rbuf + io->rpos);
	if (n > io->max_msg) {
		rbuf_consume(io, HDR);
		io->skip = n;
		skip_oversize(io);
		return -EMSGSIZE;
	}
	*need = HDR + n;
	if (avail < HDR + n)
		return -EAGAIN;
	if (n > cap)
		return -EMSGSIZE;
	memcpy(buf, io->rbuf + io->rpos + HDR, n);
	rbuf_consume(io, HDR + n);
	return (ssize_t)n;
}

/* Take one line (without its newline); at the end a last unfinished line counts. */
static ssize_t take_line(struct ipcx__io *io, void *buf, size_t cap, size_t *need)
{
	size_t avail = io->rlen - io->rpos;
	const char *start = io->rbuf + io->rpos;
	const char *nl = avail ? memchr(start, '\n', avail) : NULL;
	size_t n = nl ? (size_t)(nl - start) : avail;
	if (!nl && !(io->eof && avail)) {
		if (avail > io->max_msg) {
			io->skip = SKIP_LINE;
			skip_oversize(io);
			return -EMSGSIZE;
		}
		*need = avail + 1;
		return -EAGAIN;
	}
	if (n > io->max_msg) {
		rbuf_consume(io, n + (nl != NULL));
		return -EMSGSIZE;
	}
	if (n > cap)
		return -EMSGSIZE;
	memcpy(buf, start, n);
	rbuf_consume(io, n + (nl != NULL));
	return (ssize_t)n;
}

/* ---- receiving: CHUNK framing (chunk.h) ------------------------------------- */

/*
 * The whole, well-formed chunk at the head of the buffer, skipping whatever
 * is not one; false when there is none yet (*need: the bytes it takes).
 */
static bool chunk_at_head(struct ipcx__io *io, struct ipcx__ck_hdr *h, size_t *need)
{
	for (;;) {
		size_t avail = io->rlen - io->rpos;
		const char *p = io->rbuf + io->rpos;
		int r = avail ? ipcx__ck_decode(p, avail, h) : -EAGAIN;
		*need = IPCX__CHUNK_HDR;
		if (r == -EAGAIN)
			return false;
		if (r == 0) {
			size_t wire = ipcx__ck_wire(h);
			*need = wire;
			if (avail < wire)
				return false;
			if (ipcx__ck_whole(p, h))
				return true;
		}
		rbuf_consume(io, ipcx__ck_resync(p, avail));
	}
}

/* A chunk the receiver must hear of: a message of one chunk, or one too large. */
static bool chunk_for_receiver(const struct ipcx__io *io, const struct ipcx__ck_hdr *h)
{
	return ipcx__ck_single(h) || ((h->flags & IPCX__CK_FIRST) && h->arg > io->max_msg);
}

/*
 * Put the chunks of messages under way where they belong, until a receive
 * has something to return at once (a message put together, or a chunk at
 * the head for chunk_for_receiver), or the buffer holds no whole chunk.
 */
static bool chunk_settle(struct ipcx__io *io, size_t *need)
{
	struct ipcx__ck_hdr h;
	while (!ipcx__ck_ready(&io->ck)) {
		if (!chunk_at_head(io, &h, need))
			return false;
		if (chunk_for_receiver(io, &h))
			return true;
		ipcx__ck_add(&io->ck, &h, io->rbuf + io->rpos + IPCX__CHUNK_HDR, io->max_msg);
		rbuf_consume(io, ipcx__ck_wire(&h));
	}
	return true;
}

static ssize_t take_chunk_now(struct ipcx__io *io, void *buf, size_t cap, size_t *need)
{
	if (!chunk_settle(io, need))
		return -EAGAIN;
	if (ipcx__ck_ready(&io->ck))
		return ipcx__ck_take(&io->ck, buf, cap);
	struct ipcx__ck_hdr h;
	chunk_at_head(io, &h, need);
	const char *data = io->rbuf + io->rpos + IPCX__CHUNK_HDR;
	if (!ipcx__ck_single(&h)) {
		/* Larger than max: refused now, its chunks discarded as they come. */
		ipcx__ck_add(&io->ck, &h, data, io->max_msg);
		rbuf_consume(io, ipcx__ck_wire(&h));
		return -EMSGSIZE;
	}
	if (h.len > io->max_msg) {
		rbuf_consume(io, ipcx__ck_wire(&h));
		return -EMSGSIZE;
	}
	if (h.len > cap)
		return -EMSGSIZE;
	memcpy(buf, data, h.len);
	rbuf_consume(io, ipcx__ck_wire(&h));
	ipcx__ck_single_seen(&io->ck);
	return h.len;
}

/* Take one message, then settle, so that ipcx__io_has_msg() can tell at a look. */
static ssize_t take_chunk(struct ipcx__io *io, void *buf, size_t cap, size_t *need)
{
	ssize_t r = take_chunk_now(io, buf, cap, need);
	if (r != -EAGAIN) {
		size_t ignored;
		chunk_settle(io, &ignored);
	}
	return r;
}

static bool chunk_has_msg(const struct ipcx__io *io)
{
	if (ipcx__ck_ready(&io->ck))
		return true;
	/* Settled: the head is a chunk for the receiver, or nothing whole. */
	size_t avail = io->rlen - io->rpos;
	const char *p = io->rbuf + io->rpos;
	struct ipcx__ck_hdr h;
	return avail && ipcx__ck_decode(p, avail, &h) == 0 && avail >= ipcx__ck_wire(&h) &&
	       ipcx__ck_whole(p, &h) && chunk_for_receiver(io, &h);
}

static ssize_t take(struct ipcx__io *io, void *buf, size_t cap, size_t *need)
{
	if (io->framing == IPCX__FRAME_CHUNK)
		return take_chunk(io, buf, cap, need);
	if (io->skip && !skip_oversize(io)) {
		*need = 1;
		return -EAGAIN;
	}
	return io->framing == IPCX__FRAME_LEN ? take_len(io, buf, cap, need)
					      : take_line(io, buf, cap, need);
}

bool ipcx__io_has_msg(const struct ipcx__io *io)
{
	if (io->framing == IPCX__FRAME_RAW || io->framing == IPCX__FRAME_PACKET)
		return io->eof;
	if (io->framing == IPCX__FRAME_CHUNK)
		return io->eof || chunk_has_msg(io);
	size_t avail = io->rlen - io->rpos;
	if (io->eof || io->skip)
		return io->eof;
	if (io->framing == IPCX__FRAME_LEN) {
		if (avail < HDR)
			return false;
		size_t n = ipcx__get_le32(io->rbuf + io->rpos);
		return n > io->max_msg || avail >= HDR + n;
	}
	return avail > io->max_msg || (avail && memchr(io->rbuf + io->rpos, '\n', avail));
}

/* ---- receiving: one attempt per framing ------------------------------------ */

static ssize_t try_recv_stream(struct ipcx__io *io, void *buf, size_t cap)
{
	size_t need = 0;
	ssize_t r = take(io, buf, cap, &need);
	if (r != -EAGAIN)
		return r;
	if (io->eof)
		return -EPIPE; /* a partial message at the end is lost with its writer */
	ssize_t n = rbuf_fill(io, need);
	if (n < 0)
		return n == -EAGAIN || n == -EWOULDBLOCK ? -EAGAIN : n;
	r = take(io, buf, cap, &need);
	if (r == -EAGAIN && io->eof)
		return -EPIPE;
	return r;
}

/*
 * CHUNK: read until a message is whole or the pipe is empty.  A writer
 * writes a chunk whole, so a chunk still incomplete when the pipe is empty
 * never will be: it is not a chunk (the trailer would have said so later).
 * Skipping it at once keeps a stray header from holding back the messages
 * behind it until 4 KiB more arrive.
 */
static ssize_t try_recv_chunks(struct ipcx__io *io, void *buf, size_t cap)
{
	for (;;) {
		size_t need = 0;
		ssize_t r = take(io, buf, cap, &need);
		if (r != -EAGAIN)
			return r;
		if (io->eof)
			return -EPIPE; /* a message cut short at the end is lost with its writer */
		ssize_t n = rbuf_fill(io, need);
		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			size_t avail = io->rlen - io->rpos;
			if (!avail)
				return -EAGAIN;
			rbuf_consume(io, ipcx__ck_resync(io->rbuf + io->rpos, avail));
		} else if (n < 0) {
			return n;
		}
	}
}

static ssize_t try_recv_raw(struct ipcx__io *io, void *buf, size_t cap)
{
	if (io->eof)
		return -EPIPE;
	if (cap == 0)
		return -EMSGSIZE;
	size_t want = cap < io->max_msg ? cap : io->max_msg;
	ssize_t n;
	do
		n = read(io->fd, buf, want);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : peer_err(errno);
	if (n == 0) {
		io->eof = true;
		return -EPIPE;
	}
	return n;
}

/* Room for a sender's credentials only: nothing else can be installed. */
#define ADMIT_CTL CMSG_SPACE(sizeof(struct ucred))

/*
 * One recvmsg() of a packet, peeked or taken (flags), with its sender's
 * control data for io->admit when there is a judge: its whole length
 * (MSG_TRUNC), -EAGAIN or -errno; *ok says whether the judge admits it.
 */
static ssize_t packet_recvmsg(struct ipcx__io *io, void *buf, size_t cap, int flags, bool *ok)
{
	union {
		char b[ADMIT_CTL];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (io->admit) {
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
	}
	ssize_t n;
	do
		n = recvmsg(io->fd, &mh, flags | MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : peer_err(errno);
	*ok = !io->admit || io->admit(io->admit_arg, &mh);
	return n;
}

/*
 * SOCK_SEQPACKET and SOCK_DGRAM keep boundaries.  When cap may be too small,
 * peek first, so that the message stays queued and -EMSGSIZE loses nothing;
 * with a buffer of max_msg bytes one recv() is all it takes.  A packet the
 * judge refuses (io->admit) is dropped and counted, peeked or not.
 */
static ssize_t try_recv_packet(struct ipcx__io *io, void *buf, size_t cap)
{
	for (;;) {
		if (io->eof)
			return -EPIPE;
		bool ok = true;
		ssize_t n;
		if (cap < io->max_msg) {
			n = packet_recvmsg(io, buf, cap, MSG_PEEK, &ok);
			/* Nothing to peek: wait, rather than take one that lands just now unpeeked. */
			if (n < 0)
				return n;
			if (ok && (size_t)n > cap)
				return -EMSGSIZE;
		}
		if ((n = packet_recvmsg(io, buf, cap, 0, &ok)) < 0)
			return n;
		if (!ok) {
			io->refused++;
			continue;
		}
		if (n == 0 && io->seqpacket) {
			/* On SOCK_SEQPACKET a 0-byte read is the end of the stream (which
			 * is why sending empty messages there is refused); a datagram
			 * socket has no end, and 0 bytes are an empty message. */
			io->eof = true;
			return -EPIPE;
		}
		if ((size_t)n > cap)
			return -EMSGSIZE; /* larger than our limit: the kernel dropped the rest */
		return n;
	}
}

ssize_t ipcx__io_try_recv(struct ipcx__io *io, void *buf, size_t cap)
{
	ssize_t r;
	switch (io->framing) {
	case IPCX__FRAME_RAW:
		r = try_recv_raw(io, buf, cap);
		break;
	case IPCX__FRAME_PACKET:
		r = try_recv_packet(io, buf, cap);
		break;
	case IPCX__FRAME_CHUNK:
		r = try_recv_chunks(io, buf, cap);
		break;
	default:
		r = try_recv_stream(io, buf, cap);
		break;
	}
	io->received += r >= 0;
	return r;
}

ssize_t ipcx__io_recv(struct ipcx__io *io, void *buf, size_t cap, int64_t deadline)
{
	for (;;) {
		ssize_t r = ipcx__io_try_recv(io, buf, cap);
		if (r != -EAGAIN)
			return r;
		int w = ipcx__wait_fd(io->fd, POLLIN, deadline);
		if (w < 0)
			return w;
	}
}

/* ---- receiving: batches ---------------------------------------------------- */

#define MMSG_BATCH 64 /* packets to a recvmmsg() or sendmmsg() */

/*
 * How many of msgs[0..n) from the first can take any packet the channel
 * accepts (cap >= max_msg): those recvmmsg() may fill, since none can be cut
 * short.  A smaller buffer needs the peek of try_recv_packet, so that a
 * message too large for it stays queued.
 */
static size_t mmsg_prefix(const struct ipcx__io *io, const struct ipcx_msg *msgs, size_t n)
{
	size_t k = 0;
	if (io->framing != IPCX__FRAME_PACKET)
		return 0;
	while (k < n && k < MMSG_BATCH && msgs[k].cap >= io->max_msg)
		k++;
	return k;
}

/*
 * Several packets at once into msgs[0..k), whose buffers all hold max_msg
 * bytes: how many were taken (lengths set), -EAGAIN or -errno; *drained is
 * set when the kernel had fewer than k.  Each packet is judged as
 * try_recv_packet judges one; the ones refused are dropped, counted, and
 * the ones after them moved up.  A packet larger than max_msg (a peer that
 * ignores max=) is dropped, as a single receive drops it, but it ends the
 * batch only when it came first: the packets taken with it are delivered.
 */
static ssize_t try_recvv_packets(struct ipcx__io *io, struct ipcx_msg *msgs, size_t k,
				 bool *drained)
{
	if (io->eof)
		return -EPIPE;
	struct mmsghdr mm[MMSG_BATCH];
	struct iovec iov[MMSG_BATCH];
	union {
		char b[ADMIT_CTL];
		struct cmsghdr align;
	} ctl[MMSG_BATCH];
	for (size_t i = 0; i < k; i++) {
		iov[i] = (struct iovec){ msgs[i].buf, msgs[i].cap };
		mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
		if (io->admit) {
			mm[i].msg_hdr.msg_control = &ctl[i];
			mm[i].msg_hdr.msg_controllen = sizeof(ctl[i].b);
		}
	}
	int r;
	do
		r = recvmmsg(io->fd, mm, (unsigned)k, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC,
			     NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : peer_err(errno);
	*drained = (size_t)r < k;
	size_t out = 0;
	bool oversize = false;
	for (size_t i = 0; i < (size_t)r; i++) {
		size_t len = mm[i].msg_len;
		if (len == 0 && io->seqpacket) {
			io->eof = true; /* the end of the stream: nothing follows it */
			break;
		}
		if (io->admit && !io->admit(io->admit_arg, &mm[i].msg_hdr)) {
			io->refused++;
			continue;
		}
		if (len > io->max_msg) {
			oversize = true;
			continue;
		}
		if (out != i) /* len <= max_msg <= every cap */
			memcpy(msgs[out].buf, msgs[i].buf, len);
		msgs[out++].len = len;
	}
	if (out == 0)
		return io->eof ? -EPIPE : oversize ? -EMSGSIZE : -EAGAIN;
	io->received += out;
	return (ssize_t)out;
}

/* What can be had now without waiting, into msgs[0..n): a count or -errno. */
static ssize_t recv_some(struct ipcx__io *io, struct ipcx_msg *msgs, size_t n, bool *drained)
{
	size_t k = mmsg_prefix(io, msgs, n);
	if (k > 1)
		return try_recvv_packets(io, msgs, k, drained);
	ssize_t r = ipcx__io_try_recv(io, msgs[0].buf, msgs[0].cap);
	if (r < 0)
		return r;
	msgs[0].len = (size_t)r;
	return 1;
}

ssize_t ipcx__io_recvv(struct ipcx__io *io, struct ipcx_msg *msgs, size_t n, int64_t deadline)
{
	size_t got = 0;
	while (got < n) {
		bool drained = false;
		ssize_t r = recv_some(io, msgs + got, n - got, &drained);
		if (r > 0) {
			got += (size_t)r;
			if (drained)
				break; /* the kernel had no more: spare a system call */
			continue;
		}
		if (r != -EAGAIN) /* after the first: the next receive's to report */
			return got ? (ssize_t)got : r;
		/* After the first, only a look: a frame may be read in two parts. */
		int w = ipcx__wait_fd(io->fd, POLLIN, got ? 0 : deadline);
		if (w < 0)
			return got ? (ssize_t)got : w;
	}
	return (ssize_t)got;
}

/* ---- sending ---------------------------------------------------------------- */

static ssize_t write_iov(struct ipcx__io *io, struct iovec *iov, int n)
{
	for (;;) {
		ssize_t r;
		if (io->sock) {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
			r = sendmsg(io->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			r = r < 0 ? -errno : r;
		} else {
			r = ipcx__writev_nosig(io->fd, iov, n);
		}
		if (r == -EINTR)
			continue;
		if (r == -EWOULDBLOCK)
			return -EAGAIN;
		return r >= 0 || r == -EAGAIN || r == -EMSGSIZE ? r : peer_err((int)-r);
	}
}

/* Drop `done` bytes from the front of an iovec array. */
static int iov_advance(struct iovec *iov, int n, size_t done)
{
	int i = 0;
	while (i < n && done >= iov[i].iov_len)
		done -= iov[i++].iov_len;
	if (i < n) {
		iov[i].iov_base = (char *)iov[i].iov_base + done;
		iov[i].iov_len -= done;
	}
	memmove(iov, iov + i, (size_t)(n - i) * sizeof(*iov));
	return n - i;
}

/*
 * Part of a frame went out and the time is up.  The stream must not carry
 * half a message, so keep the rest and send it before anything else; the
 * message counts as sent.
 */
static int keep_tail(struct ipcx__io *io, const struct iovec *iov, int n)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (io->tcap < total) {
		char *p = realloc(io->tbuf, total);
		if (!p)
			return -ENOMEM;
		io->tbuf = p;
		io->tcap = total;
	}
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		memcpy(io->tbuf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	io->tpos = 0;
	io->tlen = total;
	return 0;
}

/*
 * Write a whole iovec (*n entries, advanced as it goes), waiting for room
 * until the deadline; *wrote tells whether any of it went out.
 */
static int write_all(struct ipcx__io *io, struct iovec *iov, int *n, int64_t deadline,
		     bool *wrote)
{
	while (*n > 0) {
		ssize_t w = write_iov(io, iov, *n);
		if (w > 0) {
			*wrote = true;
			*n = iov_advance(iov, *n, (size_t)w);
			continue;
		}
		if (w != -EAGAIN)
			return (int)w;
		int p = ipcx__wait_fd(io->fd, POLLOUT, deadline);
		if (p < 0)
			return p;
	}
	return 0;
}

/* Write a whole iovec; on timeout after a partial write, keep the tail. */
static ssize_t send_iov(struct ipcx__io *io, struct iovec *iov, int n, int64_t deadline)
{
	bool started = false;
	int r = write_all(io, iov, &n, deadline, &started);
	if (started && (r == -ETIMEDOUT || r == -EAGAIN))
		return keep_tail(io, iov, n);
	return r;
}

/* ---- sending: CHUNK framing (chunk.h) -------------------------------------- */

#define CK_BATCH 64 /* chunks in one writev(): 256 KiB */

static const char ck_zeros[IPCX__CHUNK_DATA];

/* Put the iovec of chunk i of a message (h says which) into iov; entries used. */
static int chunk_iov(struct ipcx__ck_hdr *h, const char *msg, size_t len, size_t i,
		     size_t nchunks, char *hdr, char *trail, struct iovec *iov)
{
	size_t at = i * IPCX__CHUNK_DATA;
	size_t piece = len - at < IPCX__CHUNK_DATA ? len - at : IPCX__CHUNK_DATA;
	h->flags = (uint8_t)((i == 0 ? IPCX__CK_FIRST : 0) | (i + 1 == nchunks ? IPCX__CK_LAST : 0));
	h->len = (uint16_t)piece;
	h->arg = (uint32_t)(i == 0 ? len : at);
	ipcx__ck_encode(h, hdr, trail);
	int n = 0;
	iov[n++] = (struct iovec){ hdr, IPCX__CHUNK_HDR };
	iov[n++] = (struct iovec){ (void *)(msg + at), piece };
	/* A chunk of a longer message fills its page (see chunk.h). */
	if (nchunks > 1 && piece < IPCX__CHUNK_DATA)
		iov[n++] = (struct iovec){ (void *)ck_zeros, IPCX__CHUNK_DATA - piece };
	iov[n++] = (struct iovec){ trail, IPCX__CHUNK_TRAIL };
	return n;
}

/*
 * A message as chunks, each whole in the pipe (chunk.h), up to CK_BATCH of
 * them to a writev().  A message that cannot go out whole before the
 * deadline is abandoned: the send fails, and the reader drops what it got
 * of it (told by an ABORT chunk, or when it finds us dead).  Nothing is
 * left to send later: a timed-out send is not a sent message.
 */
static int send_chunks(struct ipcx__io *io, const char *msg, size_t len, int64_t deadline)
{
	struct ipcx__ck_hdr h = { 0 };
	size_t nchunks = ipcx__ck_count(len);
	if (nchunks > 1) { /* whose message: the reader puts it together */
		h.pid = ipcx__ck_self_pid();
		h.pidns = io->ck.pidns;
		h.chan = io->ck_chan;
	}
	bool wrote = false;
	for (size_t done = 0; done < nchunks;) {
		char hdr[CK_BATCH][IPCX__CHUNK_HDR], trail[CK_BATCH][IPCX__CHUNK_TRAIL];
		struct iovec iov[CK_BATCH * 4];
		int n = 0;
		for (size_t i = 0; i < CK_BATCH && done < nchunks; i++, done++)
			n += chunk_iov(&h, msg, len, done, nchunks, hdr[i], trail[i], iov + n);
		int r = write_all(io, iov, &n, deadline, &wrote);
		if (r < 0) {
			io->ck_abandoned |= wrote && nchunks > 1;
			return r;
		}
	}
	if (nchunks > 1)
		io->ck_abandoned = false; /* its first chunk replaced the abandoned one */
	return 0;
}

/*
 * Tell the reader to drop what it has of our abandoned message: one ABORT
 * chunk, if the pipe has room now.  Otherwise later (the reader also drops
 * it at our next message of several chunks, or when we are gone).
 */
static void chunk_abort(struct ipcx__io *io)
{
	struct ipcx__ck_hdr h = { .flags = IPCX__CK_ABORT, .pid = ipcx__ck_self_pid(),
				  .pidns = io->ck.pidns, .chan = io->ck_chan };
	char hdr[IPCX__CHUNK_HDR], trail[IPCX__CHUNK_TRAIL];
	ipcx__ck_encode(&h, hdr, trail);
	struct iovec iov[2] = { { hdr, IPCX__CHUNK_HDR }, { trail, IPCX__CHUNK_TRAIL } };
	int n = 2;
	bool wrote = false;
	if (write_all(io, iov, &n, 0, &wrote) == 0)
		io->ck_abandoned = false;
}

int ipcx__io_flush(struct ipcx__io *io, int64_t deadline)
{
	if (io->framing == IPCX__FRAME_CHUNK) {
		if (io->ck_abandoned)
			chunk_abort(io);
		return 0;
	}
	while (io->tpos < io->tlen) {
		struct iovec iov = { io->tbuf + io->tpos, io->tlen - io->tpos };
		ssize_t w = write_iov(io, &iov, 1);
		if (w > 0) {
			io->tpos += (size_t)w;
			continue;
		}
		if (w != -EAGAIN)
			return (int)w;
		int p = ipcx__wait_fd(io->fd, POLLOUT, deadline);
		if (p < 0)
			return p;
	}
	io->tpos = io->tlen = 0;
	return 0;
}

ssize_t ipcx__io_send(struct ipcx__io *io, const void *msg, size_t len, int64_t deadline)
{
	int r = ipcx__io_flush(io, deadline);
	if (r < 0)
		return r;
	if (io->framing == IPCX__FRAME_CHUNK) {
		if ((r = send_chunks(io, msg, len, deadline)) < 0)
			return r;
		io->sent++;
		return (ssize_t)len;
	}
	char hdr[HDR];
	struct iovec iov[2];
	int n = 0;
	switch (io->framing) {
	case IPCX__FRAME_LEN:
		ipcx__put_le32(hdr, (uint32_t)len);
		iov[n++] = (struct iovec){ hdr, HDR };
		break;
	case IPCX__FRAME_LINES:
		if (memchr(msg, '\n', len))
			return ipcx__fail(-EINVAL, "framing=lines: a message cannot contain a newline");
		break;
	case IPCX__FRAME_RAW:
		if (len == 0)
			return ipcx__fail(-EINVAL, "framing=raw: an empty message cannot be sent");
		break;
	default:
		if (len == 0 && io->seqpacket)
			return ipcx__fail(-EINVAL, "SOCK_SEQPACKET: an empty message would read as "
						   "the end of the stream");
		break;
	}
	iov[n++] = (struct iovec){ (void *)msg, len };
	if (io->framing == IPCX__FRAME_LINES)
		iov[n++] = (struct iovec){ "\n", 1 };
	ssize_t s = send_iov(io, iov, n, deadline);
	if (s < 0)
		return s;
	io->sent++;
	return (ssize_t)len;
}

/* ---- sending: a batch of LEN frames ------------------------------------------ */

#define SENDV_BATCH 64 /* frames in one writev(): 128 entries, far below IOV_MAX */

/* The bytes still in iov[0..n): what a write_all() that stopped left unwritten. */
static size_t iov_bytes(const struct iovec *iov, int n)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	return total;
}

/*
 * A batch stopped after `wrote` bytes of frames msgs[0..k): how many
 * messages went out.  A frame cut short by the time (err -ETIMEDOUT or
 * -EAGAIN) keeps its tail for the next send, as a single send does, and
 * counts; after any other failure the stream is broken, and it does not.
 */
static ssize_t sendv_stopped(struct ipcx__io *io, const struct ipcx_msg *msgs, size_t k,
			     size_t wrote, int err)
{
	size_t i = 0;
	while (i < k && wrote >= HDR + msgs[i].len) {
		wrote -= HDR + msgs[i].len;
		i++;
	}
	if (i < k && wrote > 0 && (err == -ETIMEDOUT || err == -EAGAIN)) {
		char hdr[HDR];
		ipcx__put_le32(hdr, (uint32_t)msgs[i].len);
		struct iovec iov[2] = { { hdr, HDR }, { msgs[i].buf, msgs[i].len } };
		int r = keep_tail(io, iov, iov_advance(iov, 2, wrote));
		if (r < 0)
			return i ? (ssize_t)i : r;
		i++;
	}
	return i ? (ssize_t)i : err;
}

/*
 * CHUNK: messages of one chunk each go as many to a write as fit in
 * IPCX__CHUNK (PIPE_BUF) bytes, so that each write stays whole among the
 * other writers (the kernel writes it all or nothing, never mixed); a
 * message of several chunks goes by itself.  Returns the messages in the
 * write (0 for none: *err says why).
 */
static size_t chunk_group_send(struct ipcx__io *io, const struct ipcx_msg *m, size_t n,
			       int64_t deadline, int *err)
{
	if (ipcx__ck_count(m[0].len) > 1) {
		*err = send_chunks(io, m[0].buf, m[0].len, deadline);
		return *err < 0 ? 0 : 1;
	}
	struct ipcx__ck_hdr h = { 0 };
	char hdr[SENDV_BATCH][IPCX__CHUNK_HDR], trail[SENDV_BATCH][IPCX__CHUNK_TRAIL];
	struct iovec iov[3 * SENDV_BATCH];
	size_t k = 0, bytes = 0;
	int cnt = 0;
	while (k < n && k < SENDV_BATCH && ipcx__ck_count(m[k].len) == 1 &&
	       bytes + IPCX__CHUNK_HDR + m[k].len + IPCX__CHUNK_TRAIL <= IPCX__CHUNK) {
		bytes += IPCX__CHUNK_HDR + m[k].len + IPCX__CHUNK_TRAIL;
		cnt += chunk_iov(&h, m[k].buf, m[k].len, 0, 1, hdr[k], trail[k], iov + cnt);
		k++;
	}
	bool wrote = false;
	*err = write_all(io, iov, &cnt, deadline, &wrote);
	/* All or nothing (at most PIPE_BUF bytes): a failed write sent none. */
	return *err < 0 ? 0 : k;
}

static ssize_t sendv_chunks(struct ipcx__io *io, const struct ipcx_msg *msgs, size_t n,
			    int64_t deadline)
{
	size_t done = 0;
	while (done < n) {
		int err = 0;
		size_t k = chunk_group_send(io, msgs + done, n - done, deadline, &err);
		if (k == 0)
			return done ? (ssize_t)done : err;
		done += k;
		io->sent += k;
	}
	return (ssize_t)done;
}

/*
 * PACKET: up to MMSG_BATCH packets to a sendmmsg().  The kernel sends them
 * in order and stops at the first that does not go (no room: wait for it
 * until the deadline; an error: the batch ends there), so the count it
 * returns is exactly what was sent.  An empty message on SOCK_SEQPACKET
 * ends the batch before it (ipcx__io_send says why).
 */
static ssize_t sendv_packets(struct ipcx__io *io, const struct ipcx_msg *msgs, size_t n,
			     int64_t deadline)
{
	size_t done = 0;
	while (done < n) {
		struct mmsghdr mm[MMSG_BATCH];
		struct iovec iov[MMSG_BATCH];
		size_t k = 0;
		while (done + k < n && k < MMSG_BATCH && !(io->seqpacket && !msgs[done + k].len)) {
			iov[k] = (struct iovec){ msgs[done + k].buf, msgs[done + k].len };
			mm[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k], .msg_iovlen = 1 } };
			k++;
		}
		if (k == 0) {
			ssize_t r = ipcx__io_send(io, msgs[done].buf, 0, deadline);
			return done ? (ssize_t)done : r;
		}
		int r = sendmmsg(io->fd, mm, (unsigned)k, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			done += (size_t)r;
			io->sent += (uint64_t)r;
			continue;
		}
		int err = r < 0 ? errno : EAGAIN;
		if (err == EINTR)
			continue;
		int e;
		if (err == EAGAIN || err == EWOULDBLOCK)
			e = ipcx__wait_fd(io->fd, POLLOUT, deadline); /* a revents: try again */
		else
			e = err == EMSGSIZE ? -EMSGSIZE : peer_err(err);
		if (e < 0)
			return done ? (ssize_t)done : e;
	}
	return (ssize_t)done;
}

ssize_t ipcx__io_sendv(struct ipcx__io *io, const struct ipcx_msg *msgs, size_t n,
		       int64_t deadline)
{
	int r = ipcx__io_flush(io, deadline);
	if (r < 0)
		return r;
	if (io->framing == IPCX__FRAME_CHUNK)
		return sendv_chunks(io, msgs, n, deadline);
	if (io->framing == IPCX__FRAME_PACKET)
		return sendv_packets(io, msgs, n, deadline);
	size_t done = 0;
	while (done < n) {
		char hdr[SENDV_BATCH][HDR];
		struct iovec iov[2 * SENDV_BATCH];
		size_t k = n - done < SENDV_BATCH ? n - done : SENDV_BATCH;
		const struct ipcx_msg *m = msgs + done;
		int cnt = 0;
		for (size_t i = 0; i < k; i++) {
			ipcx__put_le32(hdr[i], (uint32_t)m[i].len);
			iov[cnt++] = (struct iovec){ hdr[i], HDR };
			iov[cnt++] = (struct iovec){ m[i].buf, m[i].len };
		}
		size_t total = iov_bytes(iov, cnt);
		bool wrote = false;
		r = write_all(io, iov, &cnt, deadline, &wrote);
		if (r < 0) {
			ssize_t s = sendv_stopped(io, m, k, total - iov_bytes(iov, cnt), r);
			if (s < 0)
				return done ? (ssize_t)done : s;
			io->sent += (uint64_t)s;
			return (ssize_t)(done + (size_t)s);
		}
		done += k;
		io->sent += k;
	}
	return (ssize_t)done;
}

ssize_t ipcx__io_send_each(struct ipcx__io *io, const struct ipcx_msg *msgs, size_t n,
			   int64_t deadline)
{
	for (size_t i = 0; i < n; i++) {
		ssize_t r = ipcx__io_send(io, msgs[i].buf, msgs[i].len, deadline);
		if (r < 0)
			return i ? (ssize_t)i : r;
	}
	return (ssize_t)n;
}
