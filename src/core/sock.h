/*
 * The socket service shared by connection-oriented transports (Unix stream
 * and seqpacket, TCP): a connected socket as a channel, and a listener that
 * either merges the messages of all its peers (fan-in) or hands out one
 * channel per peer (IPCX_ACCEPT).
 */
#ifndef IPCX_CORE_SOCK_H
#define IPCX_CORE_SOCK_H

#include "core/tran.h"

#include <sys/socket.h>

/*
 * Let ipcx_fileno() on this channel (from ipcx__conn_new) return the
 * descriptor itself, by turning it into an exact reader (io.h) when it is
 * first asked for, so that the number can be handed to another process as
 * fd:N.  Until then it reads ahead like any stream.
 */
void ipcx__conn_exact_on_poll(ipcx_chan *c);

/* Wrap a connected, non-blocking socket (or pipe end) as a channel, which
 * owns fd from then on (on failure, fd stays the caller's). */
int ipcx__conn_new(const struct ipcx_tran *t, int fd, int framing, size_t max_msg,
		   bool sock, ipcx_chan **ret);

struct ipcx__srv_cfg {
	int framing;
	size_t max_msg;
	unsigned flags;    /* IPCX_ACCEPT, IPCX_INHERIT */
	bool check_peer;   /* admit only peers the mode allows (abstract Unix names) */
	int sndbuf;        /* send buffer for each accepted peer, or 0 (see below) */
	mode_t mode;
	char *unlink_path; /* removed on close; the listener takes it (malloc'd) */
	dev_t dev;         /* ... if it still is this file (ipcx__sockfile_remove) */
	ino_t ino;
	char *record;      /* a Unix socket's name in its creator record ("/path",
	                      "@name"), removed with it (malloc'd), or NULL */
	pid_t creator;     /* the process that listened: only its close removes both */
	int (*addr)(ipcx_chan *c, char *buf, size_t cap);
};

/* A listener on the bound, listening socket lfd.  It owns lfd (closed on
 * failure too) and, on success, the strings in cfg. */
int ipcx__srv_new(const struct ipcx_tran *t, int lfd, struct ipcx__srv_cfg *cfg,
		  ipcx_chan **ret);
/* The listening socket of a listener made by ipcx__srv_new(). */
int ipcx__srv_lfd(ipcx_chan *c);

/*
 * Creating or replacing a socket file.  A listener that finds a socket file
 * at its path asks it whether anyone listens; one that nobody answers is
 * stale and removed.  But a socket bound and not yet listening does not
 * answer either, so two listeners doing this at once could each remove the
 * other's socket and both "win".  Whoever creates or replaces the file
 * therefore holds an exclusive flock from before it examines the path until
 * its socket is ready: on "PATH.ipcx-lock", created beside it (0600,
 * O_NOFOLLOW, only ever a regular file of the caller's own) and removed by
 * its holder.  ipcx__path_lock() returns the lock's descriptor, waiting
 * for another holder until deadline, or -errno with a detail naming url.
 */
int ipcx__path_lock(const char *url, const char *path, int64_t deadline);
void ipcx__path_unlock(const char *path, int fd);

/*
 * Remove the socket file at path if it is still the one made (dev, ino).
 * Call it before closing the socket: while it listens, no other listener
 * takes the file for stale, so nobody can have replaced it in between.
 */
void ipcx__sockfile_remove(const char *path, dev_t dev, ino_t ino);

/*
 * Who may reach an abstract Unix name.  It has no file, so no permissions:
 * anyone in the network namespace could connect.  ipcx applies the
 * listener's mode to each peer's credentials instead, with the meaning the
 * bits have on a socket file, where connecting takes write permission:
 * root and the listener's own user (its effective uid when it listened)
 * always; a member of its group if mode has 0020; anyone if mode has 0002.
 */
bool ipcx__mode_admits(mode_t mode, uid_t owner, uid_t uid, bool in_group);

/*
 * A connection's dialer cannot tell a listener that will admit it from one
 * that will refuse it, and its connect() succeeds either way (the kernel
 * queues it before any accept).  So across users a listener tells: it
 * sends one byte, IPCX__ADMITTED, to a peer of another user it admits, and
 * closes the connection of one it refuses.  A peer that is root or the
 * listener's own user (SO_PEERCRED tells it which) is admitted without a
 * word.  ipcx__await_admission() is the dialer's side, after connect() to
 * an abstract name: 0 when admitted; -EACCES when refused; -ETIMEDOUT when
 * no verdict came by deadline; each with a detail naming url.
 */
#define IPCX__ADMITTED 0x06 /* ASCII ACK */
int ipcx__await_admission(const char *url, int fd, int64_t deadline);

/* connect() with a deadline; fd must be non-blocking.  0 or -errno. */
int ipcx__sock_connect(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline);

/*
 * Give a packet socket's send buffer room for a message of `bytes`: larger
 * packets fail with EMSGSIZE otherwise.  Root may exceed net.core.wmem_max.
 */
void ipcx__sock_sndbuf(int fd, int bytes);

/* "tcp://[::1]:4242": the socket's own address as a URL of scheme. */
int ipcx__inet_addr_url(int fd, const char *scheme, char *buf, size_t cap);

/* Socket flags for the channel's descriptors. */
int ipcx__sock_flags(unsigned flags);

#endif
