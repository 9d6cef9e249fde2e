/*
 * ipcx — every Linux IPC mechanism behind one small, safe, fast API.
 *
 * This is the whole public interface.  Conventions, everywhere:
 *   - Functions return 0 or a non-negative count on success and a negative
 *     errno value on failure (-EINVAL, -ETIMEDOUT, -EPIPE, -EMSGSIZE ...).
 *     ipcx_strerror() turns a code into words; ipcx_errdetail() says, for the
 *     last failure in this thread, which part of the input was wrong.
 *   - Output parameters come last and are left untouched on failure.
 *   - Timeouts are in milliseconds: 0 never blocks, -1 waits forever; any
 *     other negative timeout is -EINVAL (never taken for "forever").
 *   - A URL with a control character in it (0x00-0x1f, 0x7f) is -EINVAL,
 *     and nothing is created for it.
 *   - Close and free functions accept NULL.
 *   - Unknown flag bits are rejected with -EINVAL.
 *   - The library never prints, never exits and never raises SIGPIPE.
 */
#ifndef IPCX_H
#define IPCX_H

#include <stdarg.h>
#include <stdbool.h>
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
 *   nats://host:port[,host:port...]/subject
 *                          a subject on a NATS server or cluster: dial
 *                          publishes, listen subscribes (libnats, loaded
 *                          at run time; docs/nats.md).  A listener, or a
 *                          dialer with reply=1, whose connection moved to
 *                          another server gets -ECONNRESET once from
 *                          ipcx_recv, readable as soon as it reconnected
 *
 * and more as transports are added (docs/transports.md lists them all).
 * Options follow '?', as in "unix:/run/app.sock?max=1048576&mode=0660".
 * Options every transport understands where it makes sense:
 *   max=BYTES        largest message (bounds every allocation for it)
 *   mode=OCTAL       permissions of a created object (default 0600); for an
 *                    object that is opened rather than created (mmap:,
 *                    file:, and what a dial of mq:, sysvmq:, shm:,
 *                    sysvshm: attaches to), also whom the caller lets have
 *                    written it: another user's object (root included: it
 *                    accepts root's only), or one writable by group or
 *                    others, is -EPERM unless mode= shares it as widely
 *                    (docs/transports.md, "Trust")
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
 * the URL "fd:N" where N is ipcx_fileno() of that end, asked before that end
 * has received anything (it then reads exactly, so N is the descriptor itself).
 */
int ipcx_pair(const char *kind, unsigned flags, ipcx_chan **a, ipcx_chan **b);

/*
 * Send one message.  Returns len, or -ETIMEDOUT, -EAGAIN (timeout 0 and no
 * room), -EMSGSIZE (larger than the channel's largest message), -EPIPE (the
 * peer is gone), or another negative errno.
 */
ssize_t ipcx_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms);

/*
 * Send one message to TO, a place under the channel's own address, as
 * ipcx_send() sends to the address itself.  On a dialled core nats://
 * channel of subject SUBJECT it publishes to SUBJECT.TO (TO: one or more
 * dot-separated tokens, no wildcards; the whole subject at most 255 bytes:
 * else -EINVAL), on the channel's one connection, so that messages to
 * several subjects keep their order.  The publish/subscribe layer puts each
 * topic on a subject of its own this way (docs/pubsub.md).  Returns as
 * ipcx_send(); -EOPNOTSUPP on every other channel.
 */
ssize_t ipcx_send_to(ipcx_chan *c, const char *to, const void *msg, size_t len,
		     int timeout_ms);

/*
 * Receive one message into buf.  Returns its length (0 is a valid, empty
 * message), or -ETIMEDOUT, -EAGAIN (timeout 0 and nothing waiting), -EPIPE
 * (the peer has gone and no message is left), -EMSGSIZE (cap is smaller than
 * the message; the message stays queued where the mechanism allows, see
 * docs/transports.md), or another negative errno.
 */
ssize_t ipcx_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms);

/*
 * Batches: many messages in one call, in as few system calls as the
 * transport allows (byte streams write a whole batch with one writev; a
 * receive takes what one read brought; packet and datagram sockets use
 * sendmmsg and, while every buffer holds ipcx_max_msg() bytes, recvmmsg).  Send: buf and len describe each
 * message (cap is not used).  Receive: buf and cap describe each buffer,
 * and len gets the length of the message put there.
 */
struct ipcx_msg {
	void *buf;
	size_t cap;
	size_t len;
};

/*
 * Send msgs[0..n) in order, under one timeout for the whole batch.  Returns
 * how many were sent, from the first on: n, or fewer when the batch stopped
 * part-way (the timeout passed, the peer went, the next message is larger
 * than ipcx_max_msg()); the messages after those were not sent, and sending
 * the first of them again tells why.  A negative errno, as from ipcx_send(),
 * when not even the first was sent.  n = 0 returns 0.
 */
ssize_t ipcx_sendv(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n, int timeout_ms);

/*
 * Receive up to n messages: wait up to the timeout for the first, then take
 * those that wait already, without waiting again.  Returns how many were
 * received (msgs[i].len set for each), or a negative errno, as from
 * ipcx_recv(), when none was.  A failure after the first message (the next
 * is larger than its cap, the peer has gone) ends the batch early; the
 * next receive reports it.  Messages left waiting keep ipcx_fileno()
 * readable.  n = 0 returns 0.
 */
ssize_t ipcx_recvv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms);

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
 * released before the next send or receive on the same channel.  commit
 * takes n <= the len reserved; more is -EINVAL, and the reservation stays
 * open (commit it again; close abandons it, and it is never delivered).
 * On a ring with policy=drop, a reserve that finds no room drops the
 * message it was for, counts it (sent and dropped, as a send would) and
 * returns -ENOBUFS.
 */
int ipcx_reserve(ipcx_chan *c, size_t len, int timeout_ms, void **slot);
int ipcx_commit(ipcx_chan *c, size_t len);
ssize_t ipcx_peek(ipcx_chan *c, int timeout_ms, const void **msg);
int ipcx_release(ipcx_chan *c);

/*
 * Zero-copy batches, where the transport offers them (a broadcast ring:
 * shm:, sysvshm: with fanout=1; others -EOPNOTSUPP): ipcx_peek for several
 * messages at once.  ipcx_peekv waits up to the timeout for the first, then
 * takes those already waiting (up to n, at most 64 a call), without waiting
 * again: msgs[i].buf points at message i in the transport's memory (read
 * it, do not write it), msgs[i].len (and .cap) is its length.  Returns how
 * many, or a negative errno as from ipcx_peek().  They stay the channel's
 * until ipcx_releasev(), which takes the first n of them (n at most what
 * ipcx_peekv returned; the others stay queued, first in line, and n = 0
 * puts them all back) and returns how many of those, from the first, were
 * still whole: n, or fewer under policy=drop, where a publisher may
 * overwrite messages while they are held: the first that was is counted
 * lost with whatever else was overwritten meanwhile (what was read of them
 * may be torn), and -ESTALE when not even the first was whole.  The
 * channel's descriptor stays readable while messages are left.  A batch
 * moves the reader's cursor and counters once, and looks once whether a
 * publisher waits for it.
 */
ssize_t ipcx_peekv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms);
ssize_t ipcx_releasev(ipcx_chan *c, size_t n);

/*
 * Read ahead without taking, where the transport offers it (shared memory;
 * others -EOPNOTSUPP): copy the message at *cursor into buf (*cursor = 0:
 * the oldest waiting) and move *cursor past it.  The message stays queued
 * for ipcx_recv/ipcx_peek, so a consumer can act on messages (write them
 * out) before it takes them, and one killed in between loses none.  The
 * value *cursor gets also names the message: unique within the ring and
 * increasing in its order.  Returns the length; when no message is at the
 * cursor, -ETIMEDOUT (or -EAGAIN for timeout 0) if the cursor is at the
 * oldest message, where it waits, and -EAGAIN at once past it; -ESTALE when
 * the message at the cursor was taken since (start again from 0); -EMSGSIZE
 * (cap too small; the cursor stays).
 */
ssize_t ipcx_read_ahead(ipcx_chan *c, uint64_t *cursor, void *buf, size_t cap, int timeout_ms);

/* Counters of a channel, where the transport keeps them (else -EOPNOTSUPP). */
struct ipcx_stats {
	uint64_t sent;     /* messages sent into the object */
	uint64_t received; /* messages taken out of it */
	uint64_t dropped;  /* messages lost: backpressure policy or dead peer; on a
			      socket listener, peers its mode refused (docs/transports.md) */
	uint64_t depth;    /* messages waiting now */
	uint64_t peers;    /* processes attached now */
	uint64_t receivers; /* of them, channels that have received (consumers) */
};
int ipcx_stats(ipcx_chan *c, struct ipcx_stats *ret);

/*
 * A broadcast ring (shm: and sysvshm: with fanout=1, docs/shm.md) delivers
 * every message to every subscriber, each reading at its own pace.  On such
 * a channel ipcx_stats() gives: sent, the messages published into the ring
 * by anyone; received, dropped (lost: overwritten before it read them, under
 * policy=drop) and depth (lag: published, not yet read) of this channel as
 * a subscriber, or of all live subscribers (sums, the largest lag) for a
 * channel that does not subscribe.  ipcx_subscribers() lists the live
 * subscribers: it fills up to n entries of buf and returns how many there
 * are (more than n: call again with a larger buf).  Other channels:
 * -EOPNOTSUPP.
 */
struct ipcx_subscriber {
	pid_t pid;         /* the subscribing process */
	uint64_t received; /* messages it has read */
	uint64_t lost;     /* messages it never saw (overwritten first) */
	uint64_t lag;      /* messages published that it has not read yet */
};
ssize_t ipcx_subscribers(ipcx_chan *c, struct ipcx_subscriber *buf, size_t n);

/*
 * Close the channel; a listener removes the object it created (unless
 * keep=1), in the process that listened only (a fork()ed child's close of
 * its copy leaves it).  NULL is a no-op.  Returns 0, or a negative errno if data could
 * not be flushed; the channel is freed either way.
 */
int ipcx_close(ipcx_chan *c);

/*
 * Record a detail for ipcx_errdetail() in the calling thread and return err
 * (a negative errno), as the library does for its own failures: for code
 * built on ipcx (the patterns, wrappers) that reports errors the same way.
 */
int ipcx_errdetail_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------ */
/* Processes: who is at the other end, and learning at once that it died     */
/* ------------------------------------------------------------------------ */

/*
 * A process as other processes can name it: its pid and its start time
 * (clock ticks after boot, field 22 of /proc/PID/stat).  A pid the kernel
 * hands to a later process comes with another start time, so an ipcx_proc
 * never names the wrong process.
 */
struct ipcx_proc {
	pid_t pid;
	uint64_t start;
};

/* The calling process. */
int ipcx_proc_self(struct ipcx_proc *ret);

/*
 * The process at the other end of a channel: the peer of a connected Unix
 * socket (SO_PEERCRED: the process that connected, or accepted; for an
 * ipcx_pair("socket") end, the process that made the pair), or, for a
 * shm:/sysvshm: ring opened with ipcx_dial(), the listener that created it.
 * -EPIPE if that process has gone; -ENOTCONN where there is no one peer (a
 * listener, a ring's own listener); -EOPNOTSUPP where the transport cannot
 * tell (TCP, pipes, FIFOs, queues, files, the mmap: log).
 */
int ipcx_peer(ipcx_chan *c, struct ipcx_proc *ret);

/*
 * A descriptor that turns readable, and stays readable, once process p has
 * exited (a pidfd: poll it or put it in epoll; no privilege needed): a
 * death is an event, not something to poll for.  -ESRCH if p has gone
 * already, or its pid names another process now.  flags: IPCX_INHERIT.
 * Close it with close().
 */
int ipcx_proc_watch(const struct ipcx_proc *p, unsigned flags, int *ret);

/* ------------------------------------------------------------------------ */
/* Notifications (eventfd, signals)                                          */
/* ------------------------------------------------------------------------ */

/*
 * An event counter (eventfd).  Posts add to a 64-bit counter; a wait takes
 * the whole count and resets it to 0 (counter mode), or takes exactly 1
 * (IPCX_EVENT_SEMAPHORE).  Its descriptor is readable while a wait would not
 * block, and may be handed to a child (fork, or exec with IPCX_INHERIT and
 * ipcx_event_adopt() on the number) or to any process over a Unix socket
 * (ipcx_fd_send / ipcx_fd_recv).  The descriptor is non-blocking: processes
 * that share it should all wait through poll or ipcx.
 */
typedef struct ipcx_event ipcx_event;

#define IPCX_EVENT_SEMAPHORE 0x100u /* a wait takes 1, not the whole count */

/* A new counter starting at initial; flags: IPCX_EVENT_SEMAPHORE, IPCX_INHERIT. */
int ipcx_event_open(uint64_t initial, unsigned flags, ipcx_event **ret);

/*
 * Take over an eventfd descriptor received from a parent or a socket; it must
 * be one (-EINVAL otherwise).  Its mode (counter or semaphore) is the one it
 * was created with.  flags: IPCX_INHERIT (else it is made close-on-exec).
 * On success the event owns fd; on failure fd is left open and untouched.
 */
int ipcx_event_adopt(int fd, unsigned flags, ipcx_event **ret);

/* Add n (1 .. 2^64-2) to the counter.  -EAGAIN if it would overflow. */
int ipcx_event_post(ipcx_event *e, uint64_t n);

/*
 * Wait until the counter is non-zero, then take the whole count (counter
 * mode) or 1 (semaphore mode) into *ret.  -ETIMEDOUT, or -EAGAIN if
 * timeout_ms is 0 and the counter is 0.
 */
int ipcx_event_wait(ipcx_event *e, int timeout_ms, uint64_t *ret);

/* The eventfd: readable while the counter is non-zero.  Do not close it. */
int ipcx_event_fileno(ipcx_event *e);

/* Close the descriptor and free the event.  NULL is a no-op. */
int ipcx_event_close(ipcx_event *e);

/*
 * Pass a descriptor to another process over a connected Unix socket (stream,
 * seqpacket or datagram), as SCM_RIGHTS ancillary data with one byte of
 * payload.  The receiver gets its own descriptor for the same open file;
 * closing either leaves the other open.  ipcx_fd_recv() makes it
 * close-on-exec unless flags has IPCX_INHERIT, and rejects a message that
 * carries anything but exactly one descriptor (-EBADMSG, closing what came).
 * -EPIPE when the peer has gone.
 */
int ipcx_fd_send(int sock, int fd, int timeout_ms);
int ipcx_fd_recv(int sock, unsigned flags, int timeout_ms, int *ret);

/*
 * Send signal sig to pid with an integer value (sigqueue).  The receiver
 * reads the value from struct ipcx_siginfo.  Real-time signals
 * (SIGRTMIN..SIGRTMAX) queue, every one is delivered, in order, each with its
 * value; -EAGAIN when the receiver's queue is full (RLIMIT_SIGPENDING).
 * Standard signals (SIGTERM, SIGUSR1 ...) do NOT queue: while one is pending,
 * more of the same number merge into it, and only one value survives.  Never
 * count standard signals.
 */
int ipcx_signal_send(pid_t pid, int sig, int value);

/*
 * Signals as pollable events (signalfd).  ipcx_signals_open() blocks the
 * given signals in the calling thread, so that they stay pending instead of
 * running a handler or the default action, and returns a set whose
 * descriptor is readable while one of them is pending.  Open it before
 * starting threads (new threads inherit the mask): a thread that does not
 * block a signal may take it instead.  A signal whose disposition is SIG_IGN
 * is discarded by the kernel and never reaches the set (nohup ignores SIGHUP;
 * a shell starts background jobs with SIGINT ignored).  Closing the set
 * discards the pending signals of the set and restores the mask those
 * signals had (so with two sets of one signal, close them in the reverse
 * order of opening).
 */
typedef struct ipcx_sigs ipcx_sigs;

/* What a received signal means to the shutdown helper. */
#define IPCX_SIG_OTHER  0
#define IPCX_SIG_STOP   1 /* SIGTERM or SIGINT: finish up and exit */
#define IPCX_SIG_RELOAD 2 /* SIGHUP: reread configuration */

struct ipcx_siginfo {
	int signo;  /* the signal number */
	int code;   /* si_code: SI_QUEUE for ipcx_signal_send, SI_USER for kill ... */
	pid_t pid;  /* the sender (0 if the kernel sent it) */
	uid_t uid;  /* the sender's real user */
	int value;  /* the value of ipcx_signal_send / sigqueue (0 otherwise) */
	int action; /* IPCX_SIG_STOP, IPCX_SIG_RELOAD or IPCX_SIG_OTHER */
};

/*
 * A set of n signals (1 <= n <= 64; SIGKILL and SIGSTOP cannot be caught:
 * -EINVAL).  flags: 0, or IPCX_INHERIT for a descriptor that survives exec.
 */
int ipcx_signals_open(const int *sigs, size_t n, unsigned flags, ipcx_sigs **ret);

/*
 * The graceful shutdown and reload helper: the set {SIGTERM, SIGINT, SIGHUP}.
 * Put ipcx_signals_fileno() in the event loop; when it is readable,
 * ipcx_signals_next() says which arrived (action STOP or RELOAD).
 */
int ipcx_signals_shutdown(unsigned flags, ipcx_sigs **ret);

/*
 * The next pending signal of the set, oldest real-time signal first.
 * -ETIMEDOUT, or -EAGAIN if timeout_ms is 0 and none is pending.
 */
int ipcx_signals_next(ipcx_sigs *s, int timeout_ms, struct ipcx_siginfo *ret);

/* The signalfd: readable while a signal of the set is pending. */
int ipcx_signals_fileno(ipcx_sigs *s);

/* Discard the set's pending signals, restore their mask, free.  NULL: no-op. */
int ipcx_signals_close(ipcx_sigs *s);

/* ------------------------------------------------------------------------ */
/* Synchronisation (semaphores, robust mutex, file locks)                     */
/* ------------------------------------------------------------------------ */

/*
 * Counting semaphores, named by URL:
 *
 *   sem:/name          POSIX named semaphore (/dev/shm/sem.name)
 *   sysvsem:KEY        System V semaphore set, KEY decimal or 0x hex
 *   sysvsem:/path?proj=N   ... with the key ftok(path, N) makes
 *
 * Options: mode=OCTAL (created object's permissions, default 0600),
 * keep=1 (the creator does not remove it on close); System V only:
 * nsems=N (members in a created set, default 1), index=I (the member this
 * handle works on, default 0), undo=0|1 (SEM_UNDO, default 1).
 *
 * With SEM_UNDO the kernel undoes, when a process exits or is killed, every
 * change it made: a holder killed with SIGKILL gives its units back.  The
 * same holds for units it posted, so a process that only posts (a producer)
 * should open the set with undo=0, or its posts vanish when it exits.
 *
 * A POSIX semaphore has no such protection: a holder that dies keeps its unit.
 */
typedef struct ipcx_sem ipcx_sem;

/*
 * Create a semaphore with value (POSIX: up to SEM_VALUE_MAX; System V: up to
 * 32767), exclusively: -EEXIST if it exists.  The creator removes it on
 * close unless the URL says keep=1.  flags: none yet (0).
 */
int ipcx_sem_create(const char *url, unsigned value, unsigned flags, ipcx_sem **ret);

/*
 * Open an existing semaphore.  -ENOENT if there is none, -EACCES if denied,
 * -EPERM if another user than the caller or root owns it or group or others
 * may write it, unless the URL's mode= shares it that widely (mode=0666).
 */
int ipcx_sem_open(const char *url, unsigned flags, ipcx_sem **ret);

/*
 * An unnamed semaphore inside memory shared between processes (a MAP_SHARED
 * mapping, a shared-memory region): init_at creates one at mem, attach_at
 * uses one that another process made (-EBADMSG if mem holds none).  mem must
 * be 8-byte aligned and len at least IPCX_SEM_SIZE.  Closing the handle
 * leaves the semaphore in the memory.
 */
#define IPCX_SEM_SIZE 64
int ipcx_sem_init_at(void *mem, size_t len, unsigned value, ipcx_sem **ret);
int ipcx_sem_attach_at(void *mem, size_t len, ipcx_sem **ret);

/* Add 1.  -EOVERFLOW past the largest value. */
int ipcx_sem_post(ipcx_sem *s);

/* Take 1, waiting up to timeout_ms: -ETIMEDOUT, or -EAGAIN if timeout_ms is 0. */
int ipcx_sem_wait(ipcx_sem *s, int timeout_ms);

/* The current value (a snapshot: others may change it at once). */
int ipcx_sem_value(ipcx_sem *s, unsigned *ret);

/* Free the handle; the creator also removes the object (unless keep=1). */
int ipcx_sem_close(ipcx_sem *s);

/* Remove a named semaphore (sem: or sysvsem:) by URL. */
int ipcx_sem_unlink(const char *url);

/*
 * A robust mutex shared between processes, living in shared memory (len at
 * least IPCX_MUTEX_SIZE, 8-byte aligned).  If its holder dies, the next
 * ipcx_mutex_lock() returns -EOWNERDEAD with the mutex held: the caller
 * repairs the data it protects, then calls ipcx_mutex_consistent() and
 * carries on (unlock later as usual).  Unlocking without marking it
 * consistent makes it unusable for good (-ENOTRECOVERABLE).  Relocking a
 * mutex one already holds gives -EDEADLK; unlocking one held by another
 * gives -EPERM.
 */
typedef struct ipcx_mutex ipcx_mutex;

#define IPCX_MUTEX_SIZE 64
int ipcx_mutex_init_at(void *mem, size_t len, unsigned flags, ipcx_mutex **ret);
int ipcx_mutex_attach_at(void *mem, size_t len, ipcx_mutex **ret);

/* 0, -EOWNERDEAD (held: repair, then consistent), -ETIMEDOUT, -ENOTRECOVERABLE. */
int ipcx_mutex_lock(ipcx_mutex *m, int timeout_ms);
int ipcx_mutex_consistent(ipcx_mutex *m);
int ipcx_mutex_unlock(ipcx_mutex *m);

/* Free the handle (the mutex stays in the memory).  NULL is a no-op. */
int ipcx_mutex_close(ipcx_mutex *m);

/*
 * File locks.  Two kinds, both owned by the open file (not the process), so
 * that they work between threads and are released when the last descriptor
 * of that open file is closed, or its process dies:
 *   - record locks (fcntl F_OFD_SETLK), on a byte range or the whole file;
 *   - IPCX_LOCK_FLOCK: flock(2), whole file only; the kind flock(1) takes.
 * The kinds do not exclude each other.  IPCX_LOCK_SHARED takes a shared
 * (read) lock instead of an exclusive (write) one.  An exclusive record lock
 * needs a descriptor open for writing.
 *
 * The kernel has no timed wait for these locks.  A finite timeout is served by
 * trying without blocking and sleeping between tries, from 1 ms doubling up
 * to 32 ms (so a wait costs at most ~30 wake-ups a second, and may see the
 * lock up to 32 ms late, with no fairness between waiters); -1 blocks in the
 * kernel, 0 tries once (-EAGAIN).  See docs/api.md.
 */
typedef struct ipcx_lock ipcx_lock;

#define IPCX_LOCK_SHARED 0x1u
#define IPCX_LOCK_FLOCK  0x2u

/*
 * Lock the byte range [start, start+len) of fd (len 0: to the end of the
 * file, and beyond; 0, 0 is the whole file).  Flock locks take start = len = 0.
 * Locking again converts the lock (shared <-> exclusive).
 */
int ipcx_lock_fd(int fd, off_t start, off_t len, unsigned flags, int timeout_ms);
int ipcx_unlock_fd(int fd, off_t start, off_t len, unsigned flags);

/*
 * Open path as a lock file (created with mode, or 0600 when mode is 0, never
 * through a symlink) and lock it whole.  A directory can be locked with
 * IPCX_LOCK_FLOCK.  ipcx_lock_close() releases the lock.
 */
int ipcx_lock_open(const char *path, unsigned flags, mode_t mode, int timeout_ms,
		   ipcx_lock **ret);
int ipcx_lock_fileno(ipcx_lock *l);
int ipcx_lock_close(ipcx_lock *l);

/* ------------------------------------------------------------------------ */
/* Shared-memory regions                                                     */
/* ------------------------------------------------------------------------ */

/*
 * A region is shared memory mapped into this process, of one of the kinds
 * Linux offers, named by URL:
 *
 *   shm:/name      POSIX shared memory (shm_open), in /dev/shm
 *   sysvshm:KEY    System V segment (shmget); KEY a non-zero number
 *   memfd:NAME     an anonymous memory file (memfd_create), create only.
 *                  Hand it to another process with ipcx_fd_send() of
 *                  ipcx_region_fd(); the receiver calls ipcx_region_adopt().
 *                  It may be sealed (ipcx_region_seal).
 *   anon:          anonymous MAP_SHARED memory, create only: shared with
 *                  the children this process forks afterwards
 *   file:/path     a regular file mapped MAP_SHARED (persistent)
 *
 * With IPCX_REGION_CREATE the object is created exclusively (never through
 * a symlink), of size bytes, 0600 unless the URL says mode=OCTAL; without
 * it an existing object is attached, size 0 meaning all of it, if nobody
 * but the caller, root and whom mode= names could have written it (else
 * -EPERM).  The creator removes a shm: or sysvshm: object when it closes
 * the region, unless keep=1; a file: is kept unless ipcx_region_remove() is
 * called.  Regions hold raw bytes: synchronising access to them is the
 * caller's business (see the shm: channel for a ring that does it).
 */
typedef struct ipcx_region ipcx_region;

#define IPCX_REGION_CREATE 0x1u /* create the object, of the given size */
#define IPCX_REGION_RDONLY 0x2u /* map it read-only */

int ipcx_region_open(const char *url, unsigned flags, size_t size, ipcx_region **ret);

/*
 * Map a descriptor received from another process (a memfd, or a POSIX shm
 * or file descriptor).  On success the region owns fd; on failure fd is
 * left open.  A memfd sealed against writes must be adopted IPCX_REGION_RDONLY.
 */
int ipcx_region_adopt(int fd, unsigned flags, ipcx_region **ret);

void *ipcx_region_addr(const ipcx_region *r);
size_t ipcx_region_size(const ipcx_region *r);

/* The region's descriptor (shm:, memfd:, file:), or -EOPNOTSUPP. */
int ipcx_region_fd(const ipcx_region *r);

/*
 * Seal a memfd region: its size can no longer change, nor its seals.  With
 * IPCX_SEAL_WRITE its contents are frozen too: this process's mapping
 * becomes read-only (at a new address: call ipcx_region_addr() again), and
 * no process can map it for writing again.
 */
#define IPCX_SEAL_WRITE 0x1u
int ipcx_region_seal(ipcx_region *r, unsigned flags);

/* Remove the object's name now; mappings stay valid until closed. */
int ipcx_region_remove(ipcx_region *r);

/*
 * Unmap (and, for a creator without keep=1, remove: only in the creating
 * process, and only while the name still leads to the object created, else
 * -ENOENT).  NULL is a no-op.
 */
int ipcx_region_close(ipcx_region *r);

/* ------------------------------------------------------------------------ */
/* Request/reply (RPC)                                                        */
/* ------------------------------------------------------------------------ */

/*
 * Calls from a client to a server over a channel, matched by id: any number
 * in flight, answered in any order, no lockstep, no automatic resend (a call
 * runs at most once).  docs/rpc.md explains the protocol and what each
 * transport gives.  URLs: unix:, unixpacket:, tcp:// (the server listens
 * with IPCX_ACCEPT and answers each client on its own connection), shm:,
 * sysvshm: (one request ring shared by every client and server; each client
 * gets replies on a ring of its own), or an existing duplex channel
 * (ipcx_pair("socket"), fd:N) through ipcx_rpc_serve_chan() and
 * ipcx_rpc_client_chan().
 *
 * Errors of a call: the server's error reply (its negative errno, and its
 * detail in ipcx_errdetail()), -ETIMEDOUT (no reply in time; a reply that
 * comes later is discarded and counted, never given to another call),
 * -ECONNRESET (the server went away while it held the call: it may or may
 * not have run), -EPIPE (the server was already gone, or closed with the
 * call still queued: it did not run), -ECONNREFUSED (no server at the URL),
 * -EMSGSIZE (the reply is larger than the buffer given).
 */
typedef struct ipcx_rpc_server ipcx_rpc_server;
typedef struct ipcx_rpc_client ipcx_rpc_client;

/* ipcx_rpc_serve(): join the server already serving a shm:/sysvshm: URL. */
#define IPCX_RPC_JOIN 0x10u

/*
 * Serve url.  Sockets: listen with IPCX_ACCEPT, creating the socket (which
 * close removes).  shm:, sysvshm:: create the request ring (-EEXIST if a
 * live server has it), or with IPCX_RPC_JOIN attach to the ring of the
 * server already there, as one more worker taking requests from it (each
 * request goes to exactly one worker; the URL lives as long as the server
 * that created it).  flags: IPCX_RPC_JOIN, IPCX_INHERIT.
 */
int ipcx_rpc_serve(const char *url, unsigned flags, ipcx_rpc_server **ret);

/*
 * Serve on a channel opened by the caller, who keeps it (close it after the
 * server): a listener made with IPCX_ACCEPT (share one between forked
 * workers: each worker serves the clients it accepts), or one duplex
 * connection (an ipcx_pair("socket") end, fd:N, an accepted peer).
 */
int ipcx_rpc_serve_chan(ipcx_chan *c, unsigned flags, ipcx_rpc_server **ret);

/* A request taken by ipcx_rpc_next(). */
struct ipcx_rpc_req {
	const void *data; /* the request's bytes, valid until it is answered */
	size_t len;
	uint64_t id;      /* the caller's id for the call */
};

/*
 * The next request, waiting up to timeout_ms: 0 and *ret, -ETIMEDOUT,
 * -EAGAIN (timeout 0), -EPIPE (a joined worker whose server has gone, or a
 * duplex connection whose client has gone).  Frames that are not valid
 * requests are dropped and counted (stats.malformed).  One thread at a time.
 */
int ipcx_rpc_next(ipcx_rpc_server *s, int timeout_ms, struct ipcx_rpc_req **ret);

/*
 * Answer a request, once, at any later time, in any order, from any thread;
 * the request is freed either way.  ipcx_rpc_reply() sends len bytes back
 * (at most the channel's largest message less 32 bytes: -EMSGSIZE, and the
 * caller gets -EMSGSIZE too); ipcx_rpc_fail() sends an error: err a
 * negative errno (-4095 .. -1), detail a short text (NULL for none; cut at
 * 255 bytes) that the caller reads from ipcx_errdetail().  A caller that has
 * gone, or that leaves its replies unread for a second with its channel
 * full, loses the answer: counted (stats.dropped), and the call returns
 * -EPIPE here.
 */
int ipcx_rpc_reply(struct ipcx_rpc_req *req, const void *msg, size_t len);
int ipcx_rpc_fail(struct ipcx_rpc_req *req, int err, const char *detail);

/*
 * Readable (level-triggered) while a request may be waiting (also the rest
 * of a batch the server has read): ipcx_rpc_next() with timeout 0 then
 * returns it, or -EAGAIN when what woke it was not a request (a new client,
 * one that left, a request another worker took).
 */
int ipcx_rpc_server_fileno(ipcx_rpc_server *s);

/*
 * The server's address as a URL (with the port the system chose for
 * tcp://...:0), to give to clients.  Returns its length, or -ENOSPC.
 */
int ipcx_rpc_server_addr(ipcx_rpc_server *s, char *buf, size_t cap);

/* Counters of a server or a client. */
struct ipcx_rpc_stats {
	uint64_t calls;     /* client: calls started; server: requests taken */
	uint64_t replies;   /* client: replies received; server: replies sent */
	uint64_t errors;    /* client: calls that ended in an error (any kind);
	                       server: error replies sent */
	uint64_t timeouts;  /* client: calls that timed out */
	uint64_t late;      /* client: replies that came after their call had
	                       ended, or for no call of ours: discarded */
	uint64_t malformed; /* frames dropped because they were not valid */
	uint64_t dropped;   /* server: answers that could not be delivered */
	uint64_t pending;   /* client: calls in flight; server: requests taken
	                       and not yet answered */
};
int ipcx_rpc_server_stats(ipcx_rpc_server *s, struct ipcx_rpc_stats *ret);

/*
 * Stop serving.  Requests not yet answered are failed (their callers get
 * -ECONNRESET) and freed: answer nothing after this.  The server that
 * created a shm:/sysvshm: ring also fails what is still queued in it
 * (-EPIPE) and tells its clients, so that their calls end at once.  NULL is
 * a no-op.
 */
int ipcx_rpc_server_close(ipcx_rpc_server *s);

/*
 * A client of the server at url.  Sockets: connect.  shm:, sysvshm:: attach
 * to the request ring, and create the client's reply ring beside it
 * (shm:/NAME.rpc.HEX, or for sysvshm:KEY a free key with KEY's upper 16
 * bits; 0600, exclusive, removed on close).  -ECONNREFUSED if no server is
 * there.  flags: IPCX_INHERIT.
 */
int ipcx_rpc_dial(const char *url, unsigned flags, ipcx_rpc_client **ret);

/* A client over a duplex channel of the caller's (who closes it after). */
int ipcx_rpc_client_chan(ipcx_chan *c, unsigned flags, ipcx_rpc_client **ret);

/*
 * One call: send req, wait up to timeout_ms (-1: forever) for the reply and
 * copy it into reply.  Returns the reply's length, or the call's error (see
 * above).  Calls started with ipcx_rpc_start() may be in flight meanwhile:
 * their results wait for ipcx_rpc_wait().
 */
ssize_t ipcx_rpc_call(ipcx_rpc_client *c, const void *req, size_t len, void *reply,
		      size_t cap, int timeout_ms);

/*
 * Start a call without waiting for its reply: 0 and its id in *id.
 * timeout_ms bounds the whole call (-1: none); the send itself waits at
 * most that long for room.  At most IPCX_RPC_MAX_CALLS calls may be in
 * flight (-ENOBUFS beyond).  A client whose server has gone dials the URL
 * again on its next call (the reconnect rule; -ECONNREFUSED if nobody
 * serves it yet).
 *
 * flags: IPCX_RPC_MORE says more calls follow at once: on a socket this
 * call may wait in the client, to go out with them in one message (one
 * system call and one wake-up of the server for all; their answers come
 * back together too).  It goes at the latest with the next call started
 * without the flag, or when the client waits (ipcx_rpc_wait, ipcx_rpc_call)
 * or is polled (ipcx_rpc_client_fileno: from then on every call goes at
 * once).  Rings ignore it.
 */
#define IPCX_RPC_MAX_CALLS 65536
#define IPCX_RPC_MORE 0x1u
int ipcx_rpc_start(ipcx_rpc_client *c, const void *req, size_t len, int timeout_ms,
		   unsigned flags, uint64_t *id);

/* A finished call, from ipcx_rpc_wait(). */
struct ipcx_rpc_result {
	uint64_t id;    /* as ipcx_rpc_start() gave it */
	ssize_t status; /* the reply's length (the reply is in buf), or the
	                   call's error (buf then holds its detail, as a string) */
};

/*
 * The next call to finish, in the order they finish, waiting up to
 * timeout_ms: 0 and *ret (its reply copied into buf; -EMSGSIZE as its
 * status if it does not fit cap), or -ETIMEDOUT / -EAGAIN when none
 * finished in time.  A call whose own timeout passes finishes then, with
 * -ETIMEDOUT.
 */
int ipcx_rpc_wait(ipcx_rpc_client *c, int timeout_ms, void *buf, size_t cap,
		  struct ipcx_rpc_result *ret);

/*
 * Readable (level-triggered) while ipcx_rpc_wait() has a result to give,
 * or may have (a frame that turns out not to finish a call wakes it too:
 * ipcx_rpc_wait(..., 0) then returns -EAGAIN and clears it).
 */
int ipcx_rpc_client_fileno(ipcx_rpc_client *c);

/* The largest reply this client can receive, in bytes: a buffer for any reply. */
size_t ipcx_rpc_client_max(const ipcx_rpc_client *c);

int ipcx_rpc_client_stats(ipcx_rpc_client *c, struct ipcx_rpc_stats *ret);

/* Close; calls in flight are forgotten (no result).  NULL is a no-op. */
int ipcx_rpc_client_close(ipcx_rpc_client *c);

/* ------------------------------------------------------------------------ */
/* Asynchronous logging (docs/log.md)                                        */
/* ------------------------------------------------------------------------ */

/*
 * Many processes and threads write log records into one log, named by URL
 * (shm:/name, mmap:/path for a log that keeps records while no drain runs;
 * any other channel works, more slowly); one drain (ipcx_logd, `ipcx logd`)
 * takes them out in order and writes them to a file or standard output.
 * A write never waits for the drain: when the log is full the record is
 * dropped and counted, and the writer's next record that gets through
 * carries the count, so the output says "N records dropped" where they
 * were lost.  Each record carries its level, wall-clock and monotonic
 * time, pid, thread id and program name.
 */
typedef struct ipcx_log ipcx_log;

/* Levels, as syslog's LOG_EMERG .. LOG_DEBUG. */
#define IPCX_LOG_EMERG   0
#define IPCX_LOG_ALERT   1
#define IPCX_LOG_CRIT    2
#define IPCX_LOG_ERR     3
#define IPCX_LOG_WARNING 4
#define IPCX_LOG_NOTICE  5
#define IPCX_LOG_INFO    6
#define IPCX_LOG_DEBUG   7

/* "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"; NULL past them. */
const char *ipcx_log_level_name(int level);
/* The level of such a name (also "error", "warn", "panic"), or -EINVAL. */
int ipcx_log_level_parse(const char *name);

/* Flags for ipcx_log_open(). */
#define IPCX_LOG_BLOCK 0x1u /* wait for room instead of dropping (a log made
                               with policy=block; the default is policy=drop) */

/*
 * Open the log at url for writing.  shm: and sysvshm: logs are made by
 * their drain (-ECONNREFUSED before it runs); an mmap: log is made by whoever
 * opens it first.  name: the program name in every record (NULL: this
 * program's, program_invocation_short_name; up to 64 bytes are kept).
 * Threads may share the handle (a lock inside; docs/log.md says what it
 * costs).  A child made by fork() opens its own: calls through the
 * parent's handle return -ECHILD there.
 */
int ipcx_log_open(const char *url, const char *name, unsigned flags, ipcx_log **ret);

/*
 * Write one record of len bytes (a message longer than the log's largest
 * record is cut, and marked so).  Returns 0, or -ENOBUFS when the log was
 * full and the record was dropped (counted: the next record that gets
 * through carries the count), -EPIPE when the drain of a log over a socket
 * is gone (also counted; on a ring whose drain is gone, records fill it and
 * are then dropped: -ENOBUFS), -ECHILD in a forked child, or another
 * negative errno.
 * Never waits for the drain unless the log was opened with IPCX_LOG_BLOCK
 * (then it waits for room on a policy=block log); it may wait up to a
 * millisecond for another writer's claim in progress.  Not async-signal-safe.
 */
int ipcx_log_write(ipcx_log *l, int level, const char *msg, size_t len);
/* The same with a printf-style message. */
int ipcx_log_printf(ipcx_log *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int ipcx_log_vprintf(ipcx_log *l, int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

struct ipcx_log_stats {
	uint64_t written; /* records this handle put into the log */
	uint64_t dropped; /* records it dropped (log full, drain gone) */
	uint64_t pending; /* of those, not yet reported by a record that got through */
};
int ipcx_log_stats(ipcx_log *l, struct ipcx_log_stats *ret);

/* Close the handle (records already written stay in the log).  NULL: no-op. */
int ipcx_log_close(ipcx_log *l);

/*
 * The drain: takes records out of the log in order and writes each as one
 * line, text (a format, below) or JSON.  On a log that can be read ahead
 * (shm:, sysvshm:, mmap:) a record leaves the log only after its line is
 * written, and a drain that starts finds in its output file what an earlier
 * one wrote before it was killed: nothing is lost, nothing written twice
 * (docs/log.md; on standard output, which cannot be read back, a restarted
 * drain may write the killed one's last batch again).  One drain per log.
 */
typedef struct ipcx_logd ipcx_logd;

#define IPCX_LOGD_JSON  0x1u /* JSON lines instead of text */
#define IPCX_LOGD_FSYNC 0x2u /* fdatasync the output before records leave the log
                                (survives a machine crash, not only a kill) */

struct ipcx_logd_opts {
	const char *out;      /* output file (created 0600, appended to), or NULL
	                         or "-" for standard output */
	const char *format;   /* text line: %t wall time (UTC, ns), %m monotonic
	                         seconds, %l level, %n program, %p pid, %T thread
	                         id, %d record id, %s message, %% a '%'; NULL:
	                         "%t %n[%p/%T] %l: %s" */
	uint64_t rotate_size; /* rotate the file when it reaches this size; 0: never */
	unsigned keep;        /* rotated files kept: FILE.1 (newest) .. FILE.keep */
	unsigned flags;       /* IPCX_LOGD_JSON, IPCX_LOGD_FSYNC */
};

/*
 * Open (or create) the log at url as its drain and open the output.  o may
 * be NULL (standard output, default format).  -EBUSY if another drain has
 * the log.
 */
int ipcx_logd_open(const char *url, const struct ipcx_logd_opts *o, ipcx_logd **ret);

/*
 * Write out what waits in the log, waiting up to timeout_ms for the first
 * record (on a ring by polling, so that writers never make a system call
 * to wake the drain: a record comes out within 16 ms of an idle spell).
 * Returns the number of records written (0 is possible: records
 * that an earlier drain had written), -ETIMEDOUT / -EAGAIN (nothing came),
 * or an error of the output (-ENOSPC ...; the records stay in the log);
 * -EBADMSG when another process cut the log short while it was empty.
 */
ssize_t ipcx_logd_run(ipcx_logd *d, int timeout_ms);

/* Reopen the output file (after logrotate moved it: SIGHUP). */
int ipcx_logd_reopen(ipcx_logd *d);

struct ipcx_logd_stats {
	uint64_t records;  /* records written out */
	uint64_t dropped;  /* drops the records reported (sum of their counts) */
	uint64_t invalid;  /* records that were not well-formed (written as such) */
	uint64_t skipped;  /* records found already written by an earlier drain */
	uint64_t rotations;
};
int ipcx_logd_stats(ipcx_logd *d, struct ipcx_logd_stats *ret);

/* Close the output and the log (records not yet written stay in an mmap: log). */
int ipcx_logd_close(ipcx_logd *d);

/* ------------------------------------------------------------------------ */
/* Process pools: a master, supervised workers, tasks (docs/pool.md)          */
/* ------------------------------------------------------------------------ */

/*
 * A master (the process that calls ipcx_pool_start) runs N workers, each a
 * function in a forked child or a program it executes, each with a private
 * duplex control channel.  A worker that dies is restarted with a back-off;
 * too many deaths in a window is a crash loop, which stops the pool and is
 * reported (-ECHILD) instead of restarting forever.  Workers die with the
 * master (PR_SET_PDEATHSIG, set with the race after fork checked): the pool
 * is driven by one thread, the one that started it, which must not exit
 * before ipcx_pool_close() (the death signal follows the thread that forked).
 *
 * Tasks: ipcx_pool_submit() gives bytes and gets an id; each task goes to
 * exactly one worker over that worker's queue (a pair of shm: rings by
 * default, or any channel URL that can carry tasks); ipcx_pool_result() hands back its outcome, matched by id.  A
 * worker records in shared memory which task it starts before it runs it,
 * so when it dies the master knows exactly which of its tasks never started
 * (handed to another worker, always) and which one it was running: that one
 * fails with -EOWNERDEAD (at most once, the default), or with
 * IPCX_POOL_AT_LEAST_ONCE is handed to another worker.  Every task has
 * exactly one outcome.  The pool calls (submit, result, run, stop) also do
 * the supervising: there is no hidden thread.
 */
typedef struct ipcx_pool ipcx_pool;
typedef struct ipcx_worker ipcx_worker;

#define IPCX_POOL_SIGNALS       0x1u /* SIGTERM, SIGINT: stop; SIGHUP: reload (a signal set
                                        opened in the calling thread, closed by close) */
#define IPCX_POOL_AT_LEAST_ONCE 0x2u /* run again elsewhere the task a dead worker was running */

/* Every field 0 (or NULL) means its default. */
struct ipcx_pool_opts {
	unsigned workers;    /* N, 1 .. 1024 (required) */
	/* Fork mode: fn(w, arg) runs in each child; its return value is the
	 * child's exit status.  Exec mode: argv (execvp); the program calls
	 * ipcx_worker_open(), or with queue "stdio" reads one task per line on
	 * its standard input and writes one result line per task. */
	int (*fn)(ipcx_worker *w, void *arg);
	void *arg;
	char *const *argv;
	unsigned flags;      /* IPCX_POOL_SIGNALS, IPCX_POOL_AT_LEAST_ONCE */
	/* Each worker's task queue and result queue.  A channel URL, from
	 * which the pool names one queue per worker (docs/pool.md, "Queues"):
	 * "shm:" (default), "mq:", "sysvmq:"/"sysvshm:" (a random key, or
	 * "sysvmq:KEY" keeps KEY's upper 16 bits), a folder or a prefix of
	 * names ("fifo:/dir/", "file:/dir/", "mmap:/dir/", "unix:/dir/app-",
	 * "unix:@prefix", "unixpacket:...", "unixgram:..."), "tcp://HOST:0"
	 * (a port per worker), "nats://HOST:PORT[,...]/PREFIX" (exec mode
	 * only: subjects PREFIX + NAME-sSgG + t/r, each worker addressed on
	 * its own; a loss the NATS client reports on a worker's queue kills
	 * that worker, and its death settles its tasks); options may follow
	 * ("shm:?spin=0"; the pool sets max, capacity, spsc, policy).  udp:,
	 * fd:, and nats:// with fn, are refused (-EINVAL).  Or "socket" (the
	 * control channel itself), or
	 * "stdio" (exec mode: lines on the program's stdin/stdout, one task
	 * in flight). */
	const char *queue;
	const char *name;    /* start of the names of the objects made (default ipcx-pool-PID-N) */
	size_t max_msg;      /* largest task or result (default 4096) */
	unsigned window;     /* tasks in flight per worker (default 8; stdio: 1) */
	unsigned limit;      /* tasks the pool holds: not yet taken by ipcx_pool_result (default 4096) */
	int grace_ms;        /* stop: how long workers may finish what they hold (default 5000) */
	int backoff_ms;      /* restart delay after a quick death, doubling (default 100) */
	int backoff_max_ms;  /* at most (default 5000); a worker up this long resets it */
	unsigned crash_limit;  /* deaths within crash_window_ms that are a crash loop (default 10) */
	int crash_window_ms;   /* (default 10000) */
};

/*
 * Start the pool: make the workers' queues and start them (the first start
 * of an exec'd program that cannot run fails the call: -ENOENT ...).
 */
int ipcx_pool_start(const struct ipcx_pool_opts *o, ipcx_pool **ret);

/*
 * Queue a task of len bytes (<= max_msg; stdio: no newline) and set *id.
 * Waits up to timeout_ms while the pool holds `limit` tasks (their outcomes
 * not yet taken): -ETIMEDOUT / -EAGAIN.  -ECHILD after a crash loop,
 * -ESHUTDOWN once stopping.
 */
int ipcx_pool_submit(ipcx_pool *p, const void *task, size_t len, int timeout_ms, uint64_t *id);

/* The outcome of a task. */
struct ipcx_task_result {
	uint64_t id;     /* as ipcx_pool_submit gave it */
	int status;      /* 0: a result of len bytes is in buf;
	                    -EOWNERDEAD: its worker died while running it;
	                    -ECANCELED: the pool stopped before it started;
	                    -ECHILD: a crash loop stopped the pool before it ran */
	size_t len;      /* bytes of the result */
	unsigned worker; /* the worker (0 .. N-1) that ran or held it */
};

/*
 * The next outcome, in the order they arrive (not submission order), into
 * buf (up to cap bytes; a larger result: -EMSGSIZE, kept for a larger buf).
 * Returns 0, -ETIMEDOUT, -EAGAIN (timeout 0), -ENOENT (no task outstanding),
 * -ECHILD (crash loop, every outcome taken).
 */
int ipcx_pool_result(ipcx_pool *p, void *buf, size_t cap, int timeout_ms,
		     struct ipcx_task_result *ret);

/*
 * Supervise without tasks (a prefork server's master): returns 0 once the
 * pool has stopped (ipcx_pool_stop, or SIGTERM with IPCX_POOL_SIGNALS),
 * -ETIMEDOUT, or -ECHILD after a crash loop.  Outcomes that arrive meanwhile
 * are kept for ipcx_pool_result().
 */
int ipcx_pool_run(ipcx_pool *p, int timeout_ms);

/*
 * Graceful stop: tasks not yet handed out fail with -ECANCELED, every worker
 * is asked to stop and finishes the tasks it holds; after grace_ms (-1: the
 * pool's grace) the rest are killed.  Returns only when every worker is gone.
 */
int ipcx_pool_stop(ipcx_pool *p, int grace_ms);

/*
 * Rolling restart: each worker in turn is replaced by a new one, which is up
 * (it said so on its control channel) before the old one is asked to stop;
 * the old one finishes the tasks it holds.  Returns at once; the calls above
 * carry it on (ipcx_pool_stats: reloading).  -EBUSY if a reload is running.
 */
int ipcx_pool_reload(ipcx_pool *p);

struct ipcx_pool_stats {
	uint64_t queued;    /* submitted, not started by a worker */
	uint64_t running;   /* started, no outcome yet */
	uint64_t done;      /* results received */
	uint64_t failed;    /* failed outcomes (-EOWNERDEAD, -ECANCELED, -ECHILD) */
	uint64_t restarts;  /* workers started again after a death */
	uint64_t requeued;  /* tasks handed to another worker after a death */
	unsigned workers;   /* workers up now (said so on their control channel) */
	unsigned reloading; /* workers still to be replaced by a reload */
	bool stopped;       /* stopped (every worker gone) */
	bool crashloop;     /* stopped by a crash loop */
};
int ipcx_pool_stats(ipcx_pool *p, struct ipcx_pool_stats *ret);

/* The pid of worker i (0 .. N-1) now, or -ESRCH if it has none running. */
pid_t ipcx_pool_pid(ipcx_pool *p, unsigned i);

/*
 * A descriptor for an event loop: after a pool call returned -EAGAIN or
 * -ETIMEDOUT, it becomes readable when the pool has something to do (an
 * outcome, a dead worker, a signal, a restart due); then call
 * ipcx_pool_result() or ipcx_pool_run() with timeout 0.
 */
int ipcx_pool_fileno(ipcx_pool *p);

/* Stop (with the pool's grace) if not stopped, remove its objects, free.  NULL: no-op. */
int ipcx_pool_close(ipcx_pool *p);

/*
 * The worker's side.  In fork mode the pool passes the worker to fn; an
 * exec'd program gets it from ipcx_worker_open() (-ENOENT when not started
 * by a pool).
 */
int ipcx_worker_open(unsigned flags, ipcx_worker **ret);

/*
 * The next task, into buf; records it as started (in the master's shared
 * memory) before returning.  Returns its length, -ESHUTDOWN when the master
 * asked this worker to stop (after every task given to it), -EPIPE when the
 * master is gone, -ETIMEDOUT / -EAGAIN.
 */
ssize_t ipcx_worker_next(ipcx_worker *w, void *buf, size_t cap, int timeout_ms);

/* The result of the task ipcx_worker_next() returned last (len <= max_msg). */
int ipcx_worker_reply(ipcx_worker *w, const void *res, size_t len);

/*
 * For workers that take no tasks (a prefork server): the control channel's
 * descriptor, readable when the master has asked something; then
 * ipcx_worker_stopping() says whether it asked this worker to stop (1) or
 * not (0).
 */
int ipcx_worker_fileno(ipcx_worker *w);
int ipcx_worker_stopping(ipcx_worker *w);

/* This worker's index, 0 .. N-1 (a replacement keeps the index it replaces). */
unsigned ipcx_worker_index(const ipcx_worker *w);

/* Close the worker's channels (fork mode: the pool does it when fn returns). */
int ipcx_worker_close(ipcx_worker *w);

/* ------------------------------------------------------------------------ */
/* Shared slots: a crash-safe pool of N records (docs/pool.md)                */
/* ------------------------------------------------------------------------ */

/*
 * A named table of N slots in shared memory, each with a record of
 * record_size bytes (the address and state of a connection ...).  A process
 * acquires one slot exclusively, with a timeout, and releases it.  Each slot
 * is a robust mutex: a holder killed with SIGKILL gives the slot back, and
 * the next holder gets the flag IPCX_SLOT_RECOVERED (check the record), until
 * a holder releases it normally.  URL: a region (shm:/name, sysvshm:KEY,
 * file:/path); mode= and keep= as for regions.
 */
typedef struct ipcx_slots ipcx_slots;

#define IPCX_SLOTS_CREATE   0x1u /* create the table, exclusively (n, record_size) */
#define IPCX_SLOTS_RDONLY   0x2u /* open to read counters and holders only */
#define IPCX_SLOT_RECOVERED 0x1u /* acquire: the slot's last holder died holding it */

/* Open (or with IPCX_SLOTS_CREATE create) a table; -EBADMSG if it holds none. */
int ipcx_slots_open(const char *url, unsigned n, size_t record_size, unsigned flags,
		    ipcx_slots **ret);

/*
 * Acquire a free slot, waiting up to timeout_ms for one: returns its index,
 * or -ETIMEDOUT / -EAGAIN.  *flags (may be NULL) gets IPCX_SLOT_RECOVERED when
 * the previous holder died holding it.  Release from the same thread.
 */
int ipcx_slot_acquire(ipcx_slots *t, int timeout_ms, unsigned *flags);

/* The record of slot i (record_size bytes, zero when the table was made). */
void *ipcx_slot_record(ipcx_slots *t, unsigned i);

/* Give slot i back; its record is taken to be consistent again. */
int ipcx_slot_release(ipcx_slots *t, unsigned i);

struct ipcx_slots_stats {
	unsigned slots;      /* N */
	unsigned held;       /* held now (by a live or a dead holder) */
	unsigned waiting;    /* processes waiting for a slot */
	size_t record_size;
	uint64_t acquired;   /* acquisitions since the table was made */
	uint64_t recovered;  /* slots taken back from a dead holder */
	uint64_t timeouts;   /* acquisitions that gave up */
};
int ipcx_slots_stats(ipcx_slots *t, struct ipcx_slots_stats *ret);

/* Who holds slot i: 0 if free, else its pid (*dead true if that process is gone). */
pid_t ipcx_slot_holder(ipcx_slots *t, unsigned i, bool *dead);

/* Unmap; the creator removes the table (unless keep=1).  NULL is a no-op. */
int ipcx_slots_close(ipcx_slots *t);

/* ------------------------------------------------------------------------ */
/* Publish/subscribe                                                          */
/* ------------------------------------------------------------------------ */

/*
 * One message to every interested process.  Each message carries a topic
 * (a string of at most IPCX_TOPIC_MAX bytes); a subscriber keeps the topics
 * that start with one of its prefixes ("" or none: all).  docs/pubsub.md
 * explains the policies and what each family gives.  URLs:
 *
 *   shm:/NAME, sysvshm:KEY   a broadcast ring in shared memory, no daemon:
 *       publishers write into it, every subscriber reads every message
 *       from its own cursor and keeps the topics it wants.  Whoever comes
 *       first creates the ring (capacity=, max=, policy=, mode= count only
 *       then); the last one out removes it.  history=N: a subscriber starts
 *       with up to N of the latest messages still in the ring.
 *   unix:/PATH, unix:@NAME, unixpacket:..., tcp://HOST:PORT   the publisher
 *       listens (one publisher per URL at a time) and keeps a bounded queue
 *       per subscriber (queue=N messages, default 1024), sending each only
 *       the topics it asked for; subscribers dial it, and dial again when a
 *       publisher comes back.  linger=MS: how long ipcx_pub_close() goes on
 *       delivering what is queued (default 2000).
 *   nats://HOST:PORT[,HOST:PORT...]/SUBJECT   on a NATS server or cluster:
 *       a message of topic T goes to the subject SUBJECT.T (the empty topic
 *       to SUBJECT._); a topic must be dot-separated tokens NATS can route
 *       (none empty, no blanks or control characters, no token '*' or '>':
 *       else -EINVAL).  A subscriber listens on one subject that covers its
 *       prefixes, and is subscribed when ipcx_sub_open() returns.  policy=
 *       drop only (block, history= refused); a subscriber's queue is
 *       pending=N; one that moved to another server gets -ECONNRESET once
 *       from a receive (what was published meanwhile may be lost, uncounted).
 *       A NATS publisher does not know its subscribers (ipcx_pub_wait,
 *       ipcx_pub_subscribers: -EOPNOTSUPP).
 *
 * policy=block|drop (default block; over nats:// drop, the only one), fixed
 * by whoever creates the ring, or by the publisher on sockets: block makes a
 * publisher wait (up to its timeout) for the slowest live subscriber; drop
 * never waits: a subscriber that falls behind loses messages (the oldest on
 * a ring, the newest on sockets and NATS), and counts them exactly.  A
 * subscriber killed with SIGKILL never holds a publisher back for long.
 */
typedef struct ipcx_pub ipcx_pub;
typedef struct ipcx_sub ipcx_sub;

#define IPCX_TOPIC_MAX 255

/* Counters of a publisher or a subscriber. */
struct ipcx_pubsub_stats {
	uint64_t published;   /* publisher: messages it published; subscriber: messages
	                         published for it since it subscribed (= received +
	                         filtered + lost + lag) */
	uint64_t received;    /* subscriber: messages given to the caller */
	uint64_t filtered;    /* subscriber: messages read and passed over (no prefix
	                         matched; shared memory only) */
	uint64_t lost;        /* subscriber: messages it will never see; publisher:
	                         the sum over its subscribers */
	uint64_t lag;         /* subscriber: messages published for it not yet read;
	                         publisher: the largest over its subscribers */
	uint64_t subscribers; /* live subscribers (of the ring, or of this publisher) */
};

/* A publisher on url.  flags: 0 (reserved). */
int ipcx_pub_open(const char *url, unsigned flags, ipcx_pub **ret);

/*
 * Publish msg under topic.  Returns len, or -ETIMEDOUT / -EAGAIN (timeout 0)
 * when policy=block and a subscriber has no room (then no subscriber got
 * it), -EMSGSIZE (larger than max= less the topic), -EINVAL (topic too
 * long).  With nobody subscribed it succeeds and reaches nobody (a ring
 * keeps it as history).
 */
ssize_t ipcx_pub_send(ipcx_pub *p, const char *topic, const void *msg, size_t len,
		      int timeout_ms);

/*
 * Wait until at least n subscribers are there (on sockets, connected and
 * subscribed): 0, or -ETIMEDOUT.  The cure for the slow joiner: publish
 * once the subscribers you expect can hear.
 */
int ipcx_pub_wait(ipcx_pub *p, size_t n, int timeout_ms);

/*
 * The live subscribers, as ipcx_subscribers() gives them (on sockets as
 * the publisher sees them: received = sent to it, lag = queued for it, pid
 * 0 where the socket does not tell).
 */
ssize_t ipcx_pub_subscribers(ipcx_pub *p, struct ipcx_subscriber *buf, size_t n);

int ipcx_pub_stats(ipcx_pub *p, struct ipcx_pubsub_stats *ret);

/* The address as a URL (with the port chosen for tcp://...:0): length, or -ENOSPC. */
int ipcx_pub_addr(ipcx_pub *p, char *buf, size_t cap);

/*
 * Close.  On sockets, what is queued goes on being delivered for up to
 * linger= ms; what is left then is lost.  NULL is a no-op.
 */
int ipcx_pub_close(ipcx_pub *p);

/*
 * A subscriber on url, keeping the topics that start with one of the n
 * prefixes (n = 0, or a prefix "": every topic).  It hears what is
 * published from now on (and with history=N on a ring, up to N earlier
 * messages).  On sockets no publisher need be there yet: it dials when it
 * can.  flags: 0 (reserved).
 */
int ipcx_sub_open(const char *url, const char *const *prefixes, size_t n, unsigned flags,
		  ipcx_sub **ret);

/*
 * The next message: its payload copied into buf, its topic, NUL-terminated,
 * into topic (cut to tcap - 1 bytes; NULL, 0 to skip it).  Returns the
 * payload's length, or -ETIMEDOUT, -EAGAIN (timeout 0), -EMSGSIZE (cap too
 * small: the message stays for the next call), -EBADMSG (a corrupt ring),
 * and over nats:// -ECONNRESET (moved to another server; the next call goes
 * on) and -EPIPE (the connection is closed for good).
 * Messages lost before it are counted, never returned.  A receive reads no
 * precise clock while messages are there: a call that passes over messages
 * (topics it does not want, one overwritten under policy=drop) counts its
 * timeout from its start as the coarse clock saw it, never ending early and
 * at most one tick of that clock (1-4 ms) late.
 */
ssize_t ipcx_sub_recv(ipcx_sub *s, char *topic, size_t tcap, void *buf, size_t cap,
		      int timeout_ms);

/*
 * A batch: up to n messages, each into its own entry (its topic,
 * NUL-terminated, into topic, cut to tcap - 1 bytes, NULL and 0 to skip
 * it; its payload into buf, cap bytes; len gets the payload's length).
 * Waits up to the timeout for the first, then takes those already
 * waiting, without waiting again.  Returns how many (entries 0..count-1
 * filled), or, when not even one was received, a negative errno as from
 * ipcx_sub_recv() (-EMSGSIZE: the first is larger than msgs[0].cap).  A
 * message larger than its entry's cap after the first ends the batch
 * before it; it stays for the next call.  Messages passed over (topics not
 * kept) take no entry; lost messages are counted (ipcx_sub_stats), never
 * returned, as with ipcx_sub_recv(), and under policy=drop a message
 * overwritten while it was copied is not returned either: the batch ends
 * before it.  Messages left waiting keep ipcx_sub_fileno() readable.  On a
 * ring a batch of up to 64 costs one pass over the subscriber's cursor
 * (ipcx_peekv); on sockets it is ipcx_sub_recv() in a loop.
 */
struct ipcx_sub_msg {
	char *topic;
	size_t tcap;
	void *buf;
	size_t cap;
	size_t len;
};
ssize_t ipcx_sub_recvv(ipcx_sub *s, struct ipcx_sub_msg *msgs, size_t n, int timeout_ms);

/*
 * Zero-copy: the next message in place (in the ring, or in the
 * subscriber's buffer on sockets), valid until ipcx_sub_release().  Under
 * policy=drop a publisher may overwrite a ring's message while it is held:
 * ipcx_sub_release() then returns -ESTALE (what was read may be torn; it
 * is counted lost, not received).
 */
ssize_t ipcx_sub_peek(ipcx_sub *s, int timeout_ms, const char **topic, const void **msg);
int ipcx_sub_release(ipcx_sub *s);

/*
 * Readable (level-triggered) while a message may be waiting: ipcx_sub_recv()
 * with timeout 0 then returns one, or -EAGAIN when what woke it was not for
 * this subscriber (a topic it does not keep; on sockets a reconnection
 * attempt falling due), and clears it.
 */
int ipcx_sub_fileno(ipcx_sub *s);

int ipcx_sub_stats(ipcx_sub *s, struct ipcx_pubsub_stats *ret);

/* Close (leaving the ring, or hanging up).  NULL is a no-op. */
int ipcx_sub_close(ipcx_sub *s);

/* ------------------------------------------------------------------------ */
/* Object inspection (ls, rm, gc)                                            */
/* ------------------------------------------------------------------------ */

/*
 * Every IPC object on the machine, whoever made it: what `ipcx ls`, `rm`,
 * `gc` and `info` are built on.  Inspection only reads /proc, /dev/shm, the
 * mqueue file system and directories; it never attaches, dials or receives,
 * so it never disturbs the objects it looks at.
 */
enum ipcx_obj_kind {
	IPCX_OBJ_SYSV_MSG = 1, /* "sysv-msg"    System V message queue */
	IPCX_OBJ_SYSV_SEM,     /* "sysv-sem"    System V semaphore set */
	IPCX_OBJ_SYSV_SHM,     /* "sysv-shm"    System V shared memory */
	IPCX_OBJ_POSIX_SHM,    /* "posix-shm"   POSIX shared memory (/dev/shm) */
	IPCX_OBJ_POSIX_SEM,    /* "posix-sem"   POSIX named semaphore */
	IPCX_OBJ_POSIX_MQ,     /* "posix-mq"    POSIX message queue */
	IPCX_OBJ_FIFO,         /* "fifo"        named pipe */
	IPCX_OBJ_UNIX_SOCKET,  /* "unix-socket" Unix socket, path or abstract */
	IPCX_OBJ_MMAP_LOG,     /* "mmap-log"    an mmap: log file (found by path only) */
};

/* The kind's name as above ("sysv-msg" ...), or NULL for an unknown kind. */
const char *ipcx_obj_kind_name(int kind);
/* The kind named name, or -EINVAL. */
int ipcx_obj_kind_parse(const char *name);

/* One object.  Numbers the kernel does not tell are -1. */
struct ipcx_obj {
	int kind;          /* enum ipcx_obj_kind */
	char *url;         /* canonical URL, as rm and info take it:
	                      "sysvshm:0x7e001234", "shm:/name", "unix:@name" */
	char *name;        /* "/name", "/path", "@name"; "" for System V */
	int64_t key;       /* System V key */
	int64_t id;        /* System V id; the socket inode of a bound socket */
	int64_t uid;       /* owner */
	int64_t gid;
	unsigned mode;     /* permission bits (0777) */
	int64_t size;      /* bytes: segment or file size, bytes queued */
	int64_t messages;  /* messages queued (message queues) */
	int64_t nsems;     /* semaphores in a System V set */
	int64_t nattch;    /* attachments of a System V segment */
	int64_t ctime;     /* creation time (or last change), seconds since 1970 */
	pid_t creator;     /* creating process when known (ipcx record, shm cpid) */
	bool ipcx;          /* an ipcx listener created it (a creator record) */
	bool creator_alive; /* that creator still runs (pid reuse checked) */
	bool orphan;        /* ipcx created it, its creator is dead, and no
	                       process has it open, mapped or attached */
	bool has_stats;     /* stats below are valid */
	struct ipcx_stats stats;
	size_t npids;      /* processes that have it open, mapped or attached */
	pid_t *pids;       /* (those whose /proc this process may read) */
	size_t nsubs;      /* a broadcast ring (shm:, fanout=1): its live */
	struct ipcx_subscriber *subs; /* subscribers, read from outside */
};

/* Flags for ipcx_ls() and ipcx_obj_find(). */
#define IPCX_LS_NOPIDS 0x1u /* skip the walk over /proc: pids stay empty and
                               orphan false (faster) */

/*
 * List every object.  FIFOs and socket files are found where they usually
 * are (/tmp, /var/tmp, /run, /dev/shm, a few levels deep), where a process
 * has them open, where ipcx recorded creating them, and under paths (a
 * NULL-terminated list of files or folders, or NULL).  POSIX message queues
 * are listed when the mqueue file system is mounted (ipcx_mqueue_dir()).
 * Returns the count and sets *ret to an array to free with ipcx_objs_free().
 */
ssize_t ipcx_ls(const char *const *paths, unsigned flags, struct ipcx_obj **ret);

/* One object, by URL (any form rm takes); -ENOENT if there is none. */
int ipcx_obj_find(const char *url, unsigned flags, struct ipcx_obj **ret);

/* Free what ipcx_ls(), ipcx_obj_find() (n = 1) or ipcx_gc() returned. */
void ipcx_objs_free(struct ipcx_obj *objs, size_t n);

/* Flags for ipcx_obj_remove(). */
#define IPCX_RM_FORCE 0x1u /* root: remove another user's object too */

/*
 * Remove the object named by url: sysvmq:KEY, sysvsem:KEY, sysvshm:KEY
 * (KEY decimal or 0x hex; "?id=N" picks one of several IPC_PRIVATE objects),
 * shm:/name, sem:/name, mq:/name, fifo:/path, unix:/path.  -ENOENT if it
 * does not exist; -EPERM for another user's object unless root passes
 * IPCX_RM_FORCE; -EINVAL if a path is not a FIFO or socket (a symlink is
 * never followed and nothing else is ever deleted); -EBUSY for a shm: ring
 * whose lock is held, or a socket file whose listener answers or whose
 * PATH.ipcx-lock a listener making it holds.  Its creator record, if any,
 * goes with it.
 */
int ipcx_obj_remove(const char *url, unsigned flags);

/* Flags for ipcx_gc(). */
#define IPCX_GC_DRY_RUN 0x1u /* remove nothing; return what would go */

/*
 * Remove the orphans that ipcx created (see struct ipcx_obj), and the
 * creator records of objects that no longer exist.  Only the caller's own
 * objects, unless the caller is root; with match, only those whose URL
 * matches that shell pattern (fnmatch(3): "shm:/myapp-*").  Returns how many orphans were removed (or would be) and sets
 * *ret to them, to free with ipcx_objs_free().  Beside the recorded paths of
 * fifo: and unix: objects it also removes, uncounted, the PATH.ipcx-lock
 * files and .ipcx-fifo-* FIFOs that listeners killed while making their
 * objects left, if nobody holds them.
 */
ssize_t ipcx_gc(const char *match, unsigned flags, struct ipcx_obj **ret);

/*
 * Where the mqueue file system is mounted (POSIX message queues are listed
 * only through it): copies the folder into buf; -ENOENT if it is not mounted.
 * The library never mounts it; `ipcx ls` does, at /dev/mqueue, when root.
 */
int ipcx_mqueue_dir(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* IPCX_H */
