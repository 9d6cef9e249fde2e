/*
 * The socket service shared by connection-oriented transports (Unix stream
 * and seqpacket, TCP): a connected socket as a channel, and a listener that
 * either merges the messages of all its peers (fan-in) or hands out one
 * channel per peer (IPCX_ACCEPT).
 */
#ifndef IPCX_SOCK_H
#define IPCX_SOCK_H

#include "io.h"

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
	char *record;      /* canonical URL for ipcx__record_removed (malloc'd) */
	int (*addr)(ipcx_chan *c, char *buf, size_t cap);
};

/* A listener on the bound, listening socket lfd.  It owns lfd (closed on
 * failure too) and, on success, the strings in cfg. */
int ipcx__srv_new(const struct ipcx_tran *t, int lfd, struct ipcx__srv_cfg *cfg,
		  ipcx_chan **ret);
/* The listening socket of a listener made by ipcx__srv_new(). */
int ipcx__srv_lfd(ipcx_chan *c);

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
