/*
 * The transport contract: what a transport gives the core (struct
 * ipcx_tran, struct ipcx__chan_ops) and the head of every channel (struct
 * ipcx_chan).  The services a transport may use have headers of their own:
 * core/url.h, core/error.h, core/clock.h, core/fd.h, core/io.h,
 * core/sock.h, core/record.h, core/trust.h, shm/ringchan.h.
 *
 * A transport is one file in src/transport/ that defines one or more
 * `struct ipcx_tran` and lists them in an array named after the file:
 *
 *     static const struct ipcx_tran unix_tran = { .scheme = "unix", ... };
 *     const struct ipcx_tran *const ipcx__trans_unix[] = { &unix_tran, NULL };
 *
 * The build generates the registry from the file names (cmake/registry.cmake),
 * so the core never names a transport (core/registry.h).
 *
 * Its URL options are a typed table (core/url.h: name, type, range,
 * default), indexed by an enum of its own and ended by an empty entry:
 *
 *     enum { FOO_MODE, FOO_DEPTH, FOO_NOPTS };
 *     static const struct ipcx__opt foo_options[FOO_NOPTS + 1] = {
 *             [FOO_MODE] = IPCX__MODE("mode", 0600),
 *             [FOO_DEPTH] = IPCX__UINT("depth", 1, 1024, 64),
 *     };
 *
 * with .options = foo_options.  The core refuses any other option and
 * parses these once, before listen or dial; the transport reads
 * ipcx__opt(u, FOO_DEPTH) (the default when absent) and ipcx__opt_set().
 * A transport over the shared-memory ring starts its table with
 * IPCX__RING_OPTS (shm/ringchan.h) and numbers its own from RING_NOPTS.
 *
 * A channel is a transport's own struct with a struct ipcx_chan in it (the
 * head, below), which the transport's operations get back to with
 * ipcx__container_of(); the core allocates nothing for it.
 *
 * What every operation may take for granted, because the core (core/chan.c)
 * has checked it before the call:
 *   - c is a channel this transport opened, not yet closed, and every
 *     pointer the operation is given is non-NULL, except a buffer of
 *     length 0;
 *   - a timeout is -1 (wait forever), 0 (do not wait) or a positive number
 *     of milliseconds;
 *   - an operation the transport leaves NULL is never called: the public
 *     function returns -EOPNOTSUPP (fileno, peer and addr have a default
 *     instead, said at each).
 * What every operation owes:
 *   - 0 or a count on success, a negative errno on failure, with a detail
 *     (ipcx__fail, core/error.h) when the code alone does not say what was
 *     wrong; output parameters untouched on failure;
 *   - a timeout of 0 never blocks (-EAGAIN instead), and no wait outlasts
 *     its timeout (-ETIMEDOUT), whatever signals interrupt it;
 *   - nothing is printed, no signal is raised (SIGPIPE), the process never
 *     exits;
 *   - everything read from a peer or from shared memory is checked before
 *     it is believed: a buggy or hostile peer makes its own messages fail
 *     (-EBADMSG), never a crash or a hang.
 */
#ifndef IPCX_CORE_TRAN_H
#define IPCX_CORE_TRAN_H

#include "core/url.h"
#include "ipcx.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The struct of the given type that holds *ptr as its member: a channel's
 * operations get their own struct back from the ipcx_chan they are handed.
 * The member must have ptr's type (the conditional makes a mismatch an
 * error), so a wrong struct or member does not compile.
 */
#define ipcx__container_of(ptr, type, member)                                          \
	((type *)(void *)((char *)(1 ? (ptr) : &((type *)0)->member) -                 \
			  offsetof(type, member)))

/* Operations on an open channel.  Every member but close may be NULL. */
struct ipcx__chan_ops {
	/*
	 * Send one message of len bytes (ipcx_send).  The core has checked
	 * len <= c->max_msg; 0 is a message too, unless the mechanism cannot
	 * carry one (then -EINVAL).  The message goes whole or not at all: a
	 * receiver never sees a part of it.  msg is the caller's again when
	 * the call returns (a stream keeps the unsent tail of a message whose
	 * send timed out, and sends it first next time: core/io.h).  Returns
	 * len, or -EAGAIN (timeout 0, no room), -ETIMEDOUT, -EPIPE (nobody
	 * receives any more, where the mechanism can tell), -EMSGSIZE (the
	 * system refuses a message this large: a queue's limit), -EBUSY (a
	 * reserved or peeked message is not finished), or another -errno.
	 */
	ssize_t (*send)(ipcx_chan *c, const void *msg, size_t len, int timeout_ms);
	/*
	 * Send one message to `to`, a place under the channel's address
	 * (ipcx_send_to: a nats:// subject's suffix); to is a NUL-terminated
	 * string the transport checks.  Otherwise as send.  NULL: -EOPNOTSUPP.
	 */
	ssize_t (*send_to)(ipcx_chan *c, const char *to, const void *msg, size_t len,
			   int timeout_ms);
	/*
	 * Receive one message into buf (ipcx_recv): whole, or not at all.
	 * Returns its length (0 for an empty message), or -EAGAIN (timeout 0,
	 * nothing waiting), -ETIMEDOUT, -EPIPE (every sender has gone and
	 * nothing is left), -EMSGSIZE (cap is too small: the message stays
	 * queued where the mechanism allows it, else it is dropped;
	 * docs/transports.md says which), -EBADMSG (a malformed message from a
	 * peer, dropped), -EBUSY (a peeked or reserved message is not finished),
	 * or another -errno.
	 */
	ssize_t (*recv)(ipcx_chan *c, void *buf, size_t cap, int timeout_ms);
	/*
	 * A batch in fewer system calls than a send each (ipcx_sendv); NULL:
	 * the core sends one by one.  Called with n >= 1 messages none of
	 * which is larger than max_msg; returns as ipcx_sendv does.
	 */
	ssize_t (*sendv)(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n, int timeout_ms);
	/*
	 * A batch received in fewer system calls than a recv each (ipcx_recvv);
	 * NULL: the core receives one by one, the first under the timeout and
	 * the others with 0.  Called with n >= 1 buffers, each with a non-NULL
	 * buf or a cap of 0; returns as ipcx_recvv does, and leaves the
	 * readiness descriptor as exact as recv does (`pending` updated).
	 */
	ssize_t (*recvv)(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms);
	/*
	 * The next peer of a listener opened with IPCX_ACCEPT (ipcx_accept),
	 * as a new duplex channel that the caller owns from then on.  -EINVAL
	 * on a listener opened without IPCX_ACCEPT; -EAGAIN, -ETIMEDOUT, or
	 * -EMFILE/-ENFILE when the process has no descriptor left for it (the
	 * peer then stays waiting).
	 */
	int (*accept)(ipcx_chan *c, int timeout_ms, ipcx_chan **ret);
	/*
	 * Zero-copy send, first half (ipcx_reserve): room for a message of len
	 * bytes (len <= c->max_msg, checked by the core), in place.  *slot
	 * points into the transport's memory (shared memory): the caller may
	 * write len bytes there until it commits; the slot stays the
	 * transport's, and is abandoned (nothing is published) if the channel
	 * is closed first.  Until commit, send, recv, reserve and peek on this
	 * channel are -EBUSY.  Errors as send.
	 */
	int (*reserve)(ipcx_chan *c, size_t len, int timeout_ms, void **slot);
	/*
	 * Zero-copy send, second half (ipcx_commit): publish the first len
	 * bytes of the reserved slot as one message; the caller may not touch
	 * the slot after.  The core has checked that a reservation is open
	 * and that len is no more than it reserved (else -EINVAL, and the
	 * reservation stays open).
	 */
	int (*commit)(ipcx_chan *c, size_t len);
	/*
	 * Zero-copy receive, first half (ipcx_peek): the next message, in
	 * place.  *msg points into the transport's memory and may be read,
	 * for the returned length, until release; nobody else takes the
	 * message meanwhile.  Returns its length, or errors as recv (never
	 * -EMSGSIZE: nothing is copied).  Until release, send, recv, reserve
	 * and peek on this channel are -EBUSY.
	 */
	ssize_t (*peek)(ipcx_chan *c, int timeout_ms, const void **msg);
	/*
	 * Zero-copy receive, second half (ipcx_release): the peeked message is
	 * taken (counted as received) and its memory goes back to the
	 * transport.  -EINVAL without a peek.
	 */
	int (*release)(ipcx_chan *c);
	/*
	 * Zero-copy batch, first half (ipcx_peekv): up to n (>= 1) messages in
	 * place, the first waited for under the timeout, the others taken only
	 * if they wait already: msgs[i].buf and .len (and .cap = .len) set for
	 * each.  Returns how many, or errors as peek.  Until releasev, the
	 * channel is busy as after a peek.  NULL: -EOPNOTSUPP.
	 */
	ssize_t (*peekv)(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms);
	/*
	 * Zero-copy batch, second half (ipcx_releasev): take the first n of
	 * the batch (n <= what peekv gave, else -EINVAL), the rest stay queued;
	 * returns how many of those n, from the first, were still whole (a
	 * broadcast ring under policy=drop: the rest were overwritten while
	 * held, and count lost), or -ESTALE when none was.
	 */
	ssize_t (*releasev)(ipcx_chan *c, size_t n);
	/*
	 * Read ahead (ipcx_read_ahead): copy the message at *cursor (0: the
	 * oldest) into buf without taking it, and move *cursor past it.  The
	 * core has checked the timeout.  Returns its length, or -ESTALE (the
	 * message at the cursor was taken since), -EAGAIN (nothing at the
	 * cursor yet, or timeout 0), -ETIMEDOUT (waiting applies only at the
	 * oldest message), -EMSGSIZE (cap too small; the cursor stays), or
	 * errors as recv.  NULL: the core answers -EOPNOTSUPP.
	 */
	ssize_t (*read_ahead)(ipcx_chan *c, uint64_t *cursor, void *buf, size_t cap,
			      int timeout_ms);
	/*
	 * Counters (ipcx_stats): the transport writes all of *ret, 0 in what it
	 * does not count (struct ipcx_stats in ipcx.h says what each means).
	 */
	int (*stats)(ipcx_chan *c, struct ipcx_stats *ret);
	/* The subscribers of a broadcast ring (ipcx_subscribers); NULL: -EOPNOTSUPP. */
	ssize_t (*subscribers)(ipcx_chan *c, struct ipcx_subscriber *buf, size_t n);
	/*
	 * The readiness descriptor (ipcx_fileno), for transports that make it
	 * on first use (the shared-memory ring: a doorbell costs its senders a
	 * poke, so it exists only once someone polls).  Level-triggered:
	 * readable exactly while recv or accept would not block; the channel
	 * keeps it (the caller never reads or closes it).  NULL: the core
	 * decides (c->fd, or epoll over c->fd and `pending`; see
	 * ipcx__chan_pollfd).
	 */
	int (*fileno)(ipcx_chan *c);
	/*
	 * The process at the other end (ipcx_peer), for transports that know
	 * it without a socket's credentials (the rings): 0, or -EPIPE (it has
	 * gone), -ENOTCONN (no one peer: a listener), -EOPNOTSUPP.  NULL: the
	 * core asks the socket in fd (SO_PEERCRED), if it is a connected Unix
	 * socket.
	 */
	int (*peer)(ipcx_chan *c, struct ipcx_proc *ret);
	/*
	 * The address as a URL (ipcx_addr), when it differs from the one
	 * opened (the port the system chose for tcp://...:0): the length
	 * written to buf (NUL-terminated), or -ENOSPC.  NULL: the URL the
	 * channel was opened with (ipcx__chan_url).
	 */
	int (*addr)(ipcx_chan *c, char *buf, size_t cap);
	/*
	 * Close the channel (ipcx_close), called once; the core has already
	 * let go of what it added (ipcx__chan_fini).  Abandons a reserved or
	 * peeked message, removes what a listener created (unless keep=1, and
	 * only while the name still leads to its own object), and frees
	 * everything, the channel struct included.  Returns 0, or -errno if
	 * data could not be flushed; the channel is gone either way.
	 */
	int (*close)(ipcx_chan *c);
};

/* A transport: registered by scheme. */
struct ipcx_tran {
	const char *scheme; /* lower-case letters and digits */
	/*
	 * The URL options it takes, with their types, ranges and defaults
	 * (core/url.h), ended by a NULL name; NULL for none.  The core refuses
	 * any other option and parses these before listen or dial: they find
	 * option i's value in ipcx__opt(u, i), and whether the URL gave it in
	 * ipcx__opt_set(u, i).
	 */
	const struct ipcx__opt *options;
	/*
	 * Open a channel (ipcx_listen: create and own the object, or bind;
	 * ipcx_dial: attach to it, or connect).  The core has parsed the URL
	 * (u is valid during the call only: copy what the channel keeps),
	 * found this transport by its scheme, checked and parsed the options
	 * against .options (u->val), cleared the detail of an earlier failure, and checked flags:
	 * IPCX_INHERIT (descriptors survive exec) and, for listen only,
	 * IPCX_ACCEPT.  On success *ret is the head of a channel filled by
	 * ipcx__chan_init(); a listener that created a kernel object has
	 * recorded it (ipcx__record_created, core/record.h) unless keep=1.  On
	 * failure nothing is left behind (no object, descriptor or memory) and
	 * *ret is untouched.  Either may be NULL: that direction is then
	 * -EOPNOTSUPP.
	 */
	int (*listen)(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret);
	int (*dial)(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret);
};

/* The head of every channel. */
struct ipcx_chan {
	const struct ipcx__chan_ops *ops;
	const struct ipcx_tran *tran;
	/*
	 * The transport's readiness descriptor: readable while a receive or
	 * accept would not block, unless `buffered` is set (below).
	 */
	int fd;
	size_t max_msg;
	/*
	 * Transports that read ahead (a stream read can bring several frames)
	 * set `buffered`, and call ipcx__chan_pending() whenever whole messages
	 * start or stop waiting in their buffer; ipcx_fileno() then hands out an
	 * epoll descriptor over fd and an eventfd that mirrors `pending`.
	 */
	bool buffered;
	bool pending;
	int pollfd;  /* epoll fd made by ipcx_fileno(), or -1 */
	int readyfd; /* eventfd mirroring pending, or -1 */
	char *url;   /* the URL it was opened with (set by the core), or NULL */
	/*
	 * A reservation (ipcx_reserve) not yet committed, and its length: the
	 * core refuses a commit of more, so that no transport has to.
	 */
	bool reserving;
	size_t reserved;
};

/* Fill the head of a new channel (fd may be set later). */
void ipcx__chan_init(ipcx_chan *c, const struct ipcx__chan_ops *ops,
		     const struct ipcx_tran *t, int fd, size_t max_msg);
/* Release what the core added to a channel (pollfd, readyfd). */
void ipcx__chan_fini(ipcx_chan *c);
/* The core's pollable descriptor: fd, or epoll over fd and `pending`. */
int ipcx__chan_pollfd(ipcx_chan *c);
/* The URL the channel was opened with, as ipcx_addr() returns it. */
int ipcx__chan_url(ipcx_chan *c, char *buf, size_t cap);
/* Whole messages are (or are no longer) waiting in the transport's buffer. */
void ipcx__chan_pending(ipcx_chan *c, bool pending);

#endif
