/*
 * udp://host:port — UDP datagrams.  The listener binds and receives from
 * anyone; a dialer connects, so that it sends to one address and learns
 * (through ICMP) when nobody listens there: that send fails with -EPIPE.
 * One datagram is one message, up to 65507 bytes over IPv4 (65527 over
 * IPv6); UDP may lose, duplicate or reorder them, even on loopback under load.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/io.h"
#include "core/sock.h"
#include "core/tran.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UDP_MAX_V4 65507u
#define UDP_MAX_V6 65527u

/* max= defaults to the family's largest datagram, and is checked against it. */
enum { UDP_MAX, UDP_NOPTS };
static const struct ipcx__opt udp_options[UDP_NOPTS + 1] = {
	[UDP_MAX] = IPCX__UINT("max", 1, UDP_MAX_V6, UDP_MAX_V6),
};

static const struct ipcx_tran udp_tran;

struct udp {
	ipcx_chan base;
	struct ipcx__io io;
	bool listener;
};

static ssize_t udp_send(ipcx_chan *c, const void *msg, size_t len, int timeout_ms)
{
	struct udp *d = ipcx__container_of(c, struct udp, base);
	if (d->listener)
		return ipcx__fail(-EOPNOTSUPP, "a udp listener only receives");
	return ipcx__io_send(&d->io, msg, len, ipcx__deadline(timeout_ms));
}

static ssize_t udp_sendv(ipcx_chan *c, const struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	struct udp *d = ipcx__container_of(c, struct udp, base);
	if (d->listener)
		return ipcx__fail(-EOPNOTSUPP, "a udp listener only receives");
	return ipcx__io_sendv(&d->io, msgs, n, ipcx__deadline(timeout_ms));
}

static ssize_t udp_recvv(ipcx_chan *c, struct ipcx_msg *msgs, size_t n, int timeout_ms)
{
	struct udp *d = ipcx__container_of(c, struct udp, base);
	return ipcx__io_recvv(&d->io, msgs, n, ipcx__deadline(timeout_ms));
}

static ssize_t udp_recv(ipcx_chan *c, void *buf, size_t cap, int timeout_ms)
{
	struct udp *d = ipcx__container_of(c, struct udp, base);
	return ipcx__io_recv(&d->io, buf, cap, ipcx__deadline(timeout_ms));
}

static int udp_close(ipcx_chan *c)
{
	struct udp *d = ipcx__container_of(c, struct udp, base);
	ipcx__close_fd(d->io.fd);
	ipcx__io_fini(&d->io);
	free(d);
	return 0;
}

static int udp_addr(ipcx_chan *c, char *buf, size_t cap)
{
	return ipcx__inet_addr_url(c->fd, "udp", buf, cap);
}

static const struct ipcx__chan_ops udp_ops = {
	.send = udp_send,
	.sendv = udp_sendv,
	.recv = udp_recv,
	.recvv = udp_recvv,
	.close = udp_close,
	.addr = udp_addr,
};

/* Open, then bind (listen) or connect (dial), the first address that works. */
static int udp_open(const struct ipcx__url *u, unsigned flags, bool listen, ipcx_chan **ret)
{
	if (flags & IPCX_ACCEPT)
		return ipcx__fail(-EINVAL, "%s: udp has no connections to accept", u->orig);
	char host[256], port[8];
	uint16_t p;
	int r = ipcx__url_hostport(u, host, sizeof(host), &p);
	if (r < 0)
		return r;
	snprintf(port, sizeof(port), "%u", p);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
				  .ai_flags = listen ? AI_PASSIVE : AI_ADDRCONFIG };
	struct addrinfo *res;
	int g = getaddrinfo(host, port, &hints, &res);
	if (g != 0)
		return ipcx__fail(g == EAI_SYSTEM ? -errno : -EHOSTUNREACH, "%s: cannot resolve %s: %s",
				  u->orig, host, gai_strerror(g));
	int fd = -1, family = AF_INET;
	r = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_DGRAM | ipcx__sock_flags(flags), 0);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		family = ai->ai_family;
		if ((listen ? bind(fd, ai->ai_addr, ai->ai_addrlen)
			    : connect(fd, ai->ai_addr, ai->ai_addrlen)) < 0) {
			r = -errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return ipcx__fail(r, "%s: cannot %s", u->orig, listen ? "bind" : "connect");
	size_t limit = family == AF_INET6 ? UDP_MAX_V6 : UDP_MAX_V4, max = limit;
	struct udp *d = NULL;
	r = ipcx__opt_set(u, UDP_MAX) ? ipcx__opt_within(u, UDP_MAX, 1, limit) : 0;
	if (r == 0 && ipcx__opt_set(u, UDP_MAX))
		max = (size_t)ipcx__opt(u, UDP_MAX);
	if (r < 0 || !(d = calloc(1, sizeof(*d)))) {
		close(fd);
		return r < 0 ? r : -ENOMEM;
	}
	/* Room in the socket buffers for a burst of the largest datagrams. */
	int buf = (int)(4 * max + 65536);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	ipcx__chan_init(&d->base, &udp_ops, &udp_tran, fd, max);
	ipcx__io_init(&d->io, fd, IPCX__FRAME_PACKET, max, true);
	d->listener = listen;
	*ret = &d->base;
	return 0;
}

static int udp_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	return udp_open(u, flags, true, ret);
}

static int udp_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	return udp_open(u, flags, false, ret);
}


static const struct ipcx_tran udp_tran = {
	.scheme = "udp",
	.options = udp_options,
	.listen = udp_listen,
	.dial = udp_dial,
};

const struct ipcx_tran *const ipcx__trans_udp[] = { &udp_tran, NULL };
