/*
 * The transport contract, and the core services a transport may use.
 *
 * A transport is one file in src/transport/ that defines one or more
 * `struct ipcx_tran` and lists them in an array named after the file:
 *
 *     static const struct ipcx_tran unix_tran = { .scheme = "unix", ... };
 *     const struct ipcx_tran *const ipcx__trans_unix[] = { &unix_tran, NULL };
 *
 * The build generates the registry from the file names (cmake/registry.cmake),
 * so the core never names a transport.  Each entry is checked when the
 * registry is first used (ipcx__tran_check): a malformed one is skipped.
 *
 * A channel is a transport's own struct with a struct ipcx_chan in it (the
 * head, below), which the transport's operations get back to with
 * ipcx__container_of(); the core allocates nothing for it.  All of this is
 * private.
 */
#ifndef IPCX_TRAN_H
#define IPCX_TRAN_H

#include "ipcx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * The struct of the given type that holds *ptr as its member: a channel's
 * operations get their own struct back from the ipcx_chan they are handed.
 * The member must have ptr's type (the conditional makes a mismatch an
 * error), so a wrong struct or member does not compile.
 */
#define ipcx__container_of(ptr, type, member)                                          \
	((type *)(void *)((char *)(1 ? (ptr) : &((type *)0)->member) -                 \
			  offsetof(type, member)))

#define IPCX__URL_MAX    4096 /* longest URL accepted */
#define IPCX__OPT_MAX    16   /* most options in one URL */
#define IPCX__SCHEME_MAX 16

/* A URL split into its parts.  All strings point into buf. */
struct ipcx__url {
	char scheme[IPCX__SCHEME_MAX];
	const char *body; /* after "scheme:" and a "//" authority marker:
	                     "/tmp/x", "@name", "host:port", "42" */
	const char *orig; /* the whole URL as given, for messages */
	int nopts;
	struct {
		const char *key;
		const char *val;
	} opt[IPCX__OPT_MAX];
	char buf[IPCX__URL_MAX];
};

/* Operations on an open channel.  Optional members may be NULL. */
struct ipcx__chan_ops {
	ssize_t (*send)(ipcx_chan *c, const void *msg, size_t len, int timeout_ms);
	ssize_t (*recv)(ipcx_chan *c, void *buf, size_t cap, int timeout_ms);
	int (*accept)(ipcx_chan *c, int timeout_ms, ipcx_chan **ret);
	int (*reserve)(ipcx_chan *c, size_t len, int timeout_ms, void **slot);
	int (*commit)(ipcx_chan *c, size_t len);
	ssize_t (*peek)(ipcx_chan *c, int timeout_ms, const void **msg);
	int (*release)(ipcx_chan *c);
	int (*stats)(ipcx_chan *c, struct ipcx_stats *ret);
	/*
	 * The readiness descriptor, for transports that make it on first use
	 * (the shared-memory ring: a doorbell costs its senders a poke, so it
	 * exists only once someone polls).  NULL: the core decides (c->fd, or
	 * epoll over c->fd and `pending`; see ipcx__chan_pollfd).
	 */
	int (*fileno)(ipcx_chan *c);
	/*
	 * The process at the other end (ipcx_peer), for transports that know
	 * it without a socket's credentials (the rings).  NULL: the core asks
	 * the socket in fd (SO_PEERCRED), if it is a connected Unix socket.
	 */
	int (*peer)(ipcx_chan *c, struct ipcx_proc *ret);
	/* The address as a URL, when it differs from the one opened (tcp port 0). */
	int (*addr)(ipcx_chan *c, char *buf, size_t cap);
	/* Frees everything, the channel struct included; returns 0 or -errno. */
	int (*close)(ipcx_chan *c);
};

/* A transport: registered by scheme. */
struct ipcx_tran {
	const char *scheme;
	/* URL options this transport accepts, NULL-terminated; others are -EINVAL. */
	const char *const *options;
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

/* ---- errors --------------------------------------------------------------- */

/* Record a detail for ipcx_errdetail() and return err (a negative errno). */
int ipcx__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget the detail of an earlier failure. */
void ipcx__clear_detail(void);

/* ---- URL ------------------------------------------------------------------ */

int ipcx__url_parse(const char *url, struct ipcx__url *u);
/* Value of option key, or NULL if absent. */
const char *ipcx__url_opt(const struct ipcx__url *u, const char *key);
/* Parsed option values; absent options leave *ret as it was (the default). */
int ipcx__url_opt_u64(const struct ipcx__url *u, const char *key, uint64_t min,
		      uint64_t max, uint64_t *ret);
int ipcx__url_opt_size(const struct ipcx__url *u, const char *key, size_t min,
		       size_t max, size_t *ret);
int ipcx__url_opt_bool(const struct ipcx__url *u, const char *key, bool *ret);
int ipcx__url_opt_mode(const struct ipcx__url *u, mode_t *ret);
/* One of the words in choices (NULL-terminated); *ret gets its index. */
int ipcx__url_opt_enum(const struct ipcx__url *u, const char *key,
		       const char *const *choices, int *ret);
/* Body as an absolute filesystem path that fits in cap bytes. */
int ipcx__url_path(const struct ipcx__url *u, size_t cap, const char **ret);
/*
 * A System V key: the body as KEY (decimal or 0x hex, not 0 = IPC_PRIVATE)
 * or /path with ?proj=N (1 to 255) for ftok(path, N).
 */
int ipcx__url_sysv_key(const struct ipcx__url *u, key_t *ret);
/* Body as host:port; host is copied without IPv6 brackets. */
int ipcx__url_hostport(const struct ipcx__url *u, char *host, size_t hostcap,
		       uint16_t *port);

/* ---- time ----------------------------------------------------------------- */

/*
 * Every public function that takes a timeout checks it first: -1, 0 or a
 * positive number of milliseconds; any other negative value is -EINVAL
 * (with a detail), never taken for "forever".
 */
int ipcx__check_timeout(int timeout_ms);
/*
 * A deadline in CLOCK_MONOTONIC nanoseconds; -1 means none (wait forever)
 * and 0 means do not wait at all (a timeout of 0).
 */
int64_t ipcx__deadline(int timeout_ms);
/* Milliseconds left until deadline for poll(): -1 forever, 0 when passed. */
int ipcx__remaining_ms(int64_t deadline);
int64_t ipcx__now_ns(void);

/*
 * Wait until fd has any of events or the deadline passes.  Returns the
 * revents (> 0), -ETIMEDOUT, -EAGAIN for deadline 0 (a timeout of 0) when
 * not ready, or -errno.  EINTR restarts with the time left.
 */
int ipcx__wait_fd(int fd, short events, int64_t deadline);

/* ---- descriptors -------------------------------------------------------- */

int ipcx__set_nonblock(int fd);
int ipcx__set_cloexec(int fd, bool on);
/* Close, keeping errno; ignores fd < 0. */
void ipcx__close_fd(int fd);

/*
 * writev() that never raises SIGPIPE, for pipes and FIFOs, where
 * MSG_NOSIGNAL does not exist.  Returns bytes written or -errno.
 */
ssize_t ipcx__writev_nosig(int fd, const struct iovec *iov, int n);

/* ---- trust (src/core/trust.c) ------------------------------------------------ */

/*
 * May the caller believe what is in an object it opened instead of creating?
 * uid, gid and mode are the object's; asked is the URL's mode= (0600 when
 * not given): its group- and others-write bits say whom the caller lets
 * write.  0, or -EPERM with a detail that starts with what (the URL) and
 * names the owner or the mode that could have let someone forge it.
 */
int ipcx__trust(const char *what, uid_t uid, gid_t gid, mode_t mode, mode_t asked);
/* The same for an open file (fstat). */
int ipcx__trust_fd(const char *what, int fd, mode_t asked);

/* ---- creator records (for ipcx ls / gc) ------------------------------------ */

/*
 * A listener that created a kernel object calls ipcx__record_created() with
 * the object's canonical URL ("shm:/name", "sysvmq:0x00001234", "fifo:/path",
 * "unix:/path", "unix:@name", "mq:/name", "sem:/name"), and
 * ipcx__record_removed() when it removes the object.  A failure to record is
 * not fatal to the caller (the object works without it).  A listener with
 * keep=1 does not record: its object is meant to outlive it, and a recorded
 * object whose creator is gone is an orphan that `ipcx gc` removes.
 */
int ipcx__record_created(const char *url);
void ipcx__record_removed(const char *url);

/* ---- registry ------------------------------------------------------------- */

const struct ipcx_tran *ipcx__tran_find(const char *scheme);
/* Iterate over registered transports: i = 0, 1, ... until NULL. */
const struct ipcx_tran *ipcx__tran_at(size_t i);

#endif /* IPCX_TRAN_H */
