/*
 * ipcx — every Linux IPC mechanism behind one small, safe, fast API.
 *
 * This is the whole public interface.  Conventions, everywhere:
 *   - Functions return 0 or a non-negative count on success and a negative
 *     errno value on failure (-EINVAL, -ETIMEDOUT, -EPIPE, -EMSGSIZE ...).
 *     ipcx_strerror() turns a code into words; ipcx_errdetail() says, for the
 *     last failure in this thread, which part of the input was wrong.
 *   - Output parameters come last and are left untouched on failure.
 *   - Timeouts are in milliseconds: 0 never blocks, -1 waits forever.
 *   - Close and free functions accept NULL.
 *   - Unknown flag bits are rejected with -EINVAL.
 *   - The library never prints, never exits and never raises SIGPIPE.
 */
#ifndef IPCX_H
#define IPCX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPCX_VERSION_MAJOR 0
#define IPCX_VERSION_MINOR 1
#define IPCX_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH". */
const char *ipcx_version(void);

/* Words for a negative errno value returned by ipcx (never NULL). */
const char *ipcx_strerror(int err);

/*
 * Detail of the last failure in the calling thread, naming what was wrong
 * ("tcp://h:70000: port out of range"), or "" when the last failure carried
 * none.  Valid until the thread's next ipcx call.
 */
const char *ipcx_errdetail(void);

/* ------------------------------------------------------------------------ */
/* Channels                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A channel carries whole messages: one send is one receive, on every
 * transport.  It is opened by URL; the scheme picks the transport:
 *
 *   fd:N                   an inherited descriptor (pipe, socketpair, ...)
 *   fifo:/path             named pipe
 *   unix:/path, unix:@name Unix stream socket (file or abstract name)
 *   unixpacket:/path       Unix SOCK_SEQPACKET socket
 *   unixgram:/path         Unix datagram socket
 *   tcp://host:port        TCP (IPv4, [IPv6], or a host name)
 *   udp://host:port        UDP
 *
 * and more as transports are added (docs/transports.md lists them all).
 * Options follow '?', as in "unix:/run/app.sock?max=1048576&mode=0660".
 * Options every transport understands where it makes sense:
 *   max=BYTES        largest message (bounds every allocation for it)
 *   mode=OCTAL       permissions of a created object (default 0600)
 *   keep=1           the listener does not remove its object on close
 *   framing=len|lines|raw   stream transports: length prefix (default),
 *                    one message per line, or each read is one message
 */
typedef struct ipcx_chan ipcx_chan;

/* Flags for ipcx_listen(), ipcx_dial() and ipcx_pair(). */
#define IPCX_INHERIT 0x1u /* descriptors survive exec (no close-on-exec) */
#define IPCX_ACCEPT  0x2u /* listen only: hand out one channel per peer
                             through ipcx_accept() instead of merging the
                             messages of all peers into ipcx_recv() */

/*
 * Create (and own) or bind the object named by url.  The object is removed
 * when the channel is closed, unless the URL says keep=1.  On a stream or
 * packet socket the listener accepts every peer and ipcx_recv() returns the
 * messages of all of them (fan-in); with IPCX_ACCEPT it instead hands out a
 * duplex channel per peer through ipcx_accept().
 */
int ipcx_listen(const char *url, unsigned flags, ipcx_chan **ret);

/* Attach to an existing object, or connect to a listener. */
int ipcx_dial(const char *url, unsigned flags, ipcx_chan **ret);

/*
 * The next peer of a listener opened with IPCX_ACCEPT, as a duplex channel
 * of its own.  The listener's descriptor is readable when a peer waits.
 */
int ipcx_accept(ipcx_chan *listener, int timeout_ms, ipcx_chan **ret);

/*
 * An anonymous connected pair for a parent and its child: kind "socket"
 * (duplex, a SOCK_SEQPACKET socketpair) or "pipe" (one way: a writes, b
 * reads).  Hand one end to a child by fork, or by exec with IPCX_INHERIT and
 * the URL "fd:N" where N is ipcx_fileno() of that end.
 */
int ipcx_pair(const char *kind, unsigned flags, ipcx_chan **a, ipcx_chan **b);

/*
 * Send one message.  Returns len, or -ETIMEDOUT, -EAGAIN (timeout 0 and no
 * room), -EMSGSIZE (larger than the channel's largest message), -EPIPE (the
 * peer is gone), or another negative errno.
 */
ssize_t ipcx_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms);

/*
 * Receive one message into buf.  Returns its length (0 is a valid, empty
 * message), or -ETIMEDOUT, -EAGAIN (timeout 0 and nothing waiting), -EPIPE
 * (the peer has gone and no message is left), -EMSGSIZE (cap is smaller than
 * the message; the message stays queued where the mechanism allows, see
 * docs/transports.md), or another negative errno.
 */
ssize_t ipcx_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms);

/*
 * A descriptor that is readable (level-triggered) exactly while ipcx_recv()
 * or ipcx_accept() would not block.  Use it with poll, epoll, libuv ...; do
 * not read from it or close it.
 */
int ipcx_fileno(ipcx_chan *c);

/* The largest message this channel sends or receives, in bytes. */
size_t ipcx_max_msg(const ipcx_chan *c);

/*
 * The channel's address as a URL, with what the system chose filled in (the
 * port of "tcp://127.0.0.1:0").  Returns the length, or -ENOSPC if cap is too
 * small.
 */
int ipcx_addr(ipcx_chan *c, char *buf, size_t cap);

/* The URL scheme of the channel's transport ("unix", "shm" ...). */
const char *ipcx_scheme(const ipcx_chan *c);

/*
 * Zero-copy access, where the transport offers it (shared memory); others
 * return -EOPNOTSUPP.  reserve/commit: write a message in place; peek/release:
 * read one in place.  A reserved or peeked message must be committed or
 * released before the next send or receive on the same channel.
 */
int ipcx_reserve(ipcx_chan *c, size_t len, int timeout_ms, void **slot);
int ipcx_commit(ipcx_chan *c, size_t len);
ssize_t ipcx_peek(ipcx_chan *c, int timeout_ms, const void **msg);
int ipcx_release(ipcx_chan *c);

/* Counters of a channel, where the transport keeps them (else -EOPNOTSUPP). */
struct ipcx_stats {
	uint64_t sent;     /* messages sent into the object */
	uint64_t received; /* messages taken out of it */
	uint64_t dropped;  /* messages lost: backpressure policy or dead peer */
	uint64_t depth;    /* messages waiting now */
	uint64_t peers;    /* processes attached now */
};
int ipcx_stats(ipcx_chan *c, struct ipcx_stats *ret);

/*
 * Close the channel; a listener removes the object it created (unless
 * keep=1).  NULL is a no-op.  Returns 0, or a negative errno if data could
 * not be flushed; the channel is freed either way.
 */
int ipcx_close(ipcx_chan *c);

/* ------------------------------------------------------------------------ */
/* Notifications (eventfd, signals)                                          */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Synchronisation (semaphores, robust mutex, file locks)                     */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Shared-memory regions                                                     */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Object inspection (ls, rm, gc)                                            */
/* ------------------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif

#endif /* IPCX_H */
