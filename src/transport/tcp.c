/*
 * tcp://host:port — TCP, IPv4 or IPv6 (a literal in brackets, or a host name
 * resolved with getaddrinfo).  Messages are length-prefixed frames, or lines
 * or raw reads with ?framing=, so ipcx can talk to nc and socat.  Nagle's
 * algorithm is off (TCP_NODELAY): a message goes out when it is sent.
 * Port 0 lets the system choose; ipcx_addr() tells which.
 */
#include "core/clock.h"
#include "core/error.h"
#include "core/io.h"
#include "core/sock.h"
#include "core/tran.h"
#include "core/url.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct ipcx_tran tcp_tran;

struct topts {
	char host[256];
	char port[8];
	int framing;
	size_t max_msg;
	uint64_t timeout_ms;
};

enum { TCP_FRAMING, TCP_MAX, TCP_TIMEOUT, TCP_NOPTS };
static const struct ipcx__opt tcp_options[TCP_NOPTS + 1] = {
	[TCP_FRAMING] = IPCX__FRAMING_OPT,
	[TCP_MAX] = IPCX__UINT("max", 1, IPCX__STREAM_MAX_LIMIT, IPCX__STREAM_MAX_DEFAULT),
	[TCP_TIMEOUT] = IPCX__UINT("timeout", 0, INT32_MAX, 10000), /* of a dial's connect */
};

static int parse(const struct ipcx__url *u, struct topts *o)
{
	uint16_t port;
	int r = ipcx__url_hostport(u, o->host, sizeof(o->host), &port);
	if (r < 0)
		return r;
	snprintf(o->port, sizeof(o->port), "%u", port);
	o->framing = (int)ipcx__opt(u, TCP_FRAMING);
	o->max_msg = (size_t)ipcx__opt(u, TCP_MAX);
	o->timeout_ms = ipcx__opt(u, TCP_TIMEOUT);
	return 0;
}

static int resolve(const struct ipcx__url *u, const struct topts *o, bool passive,
		   struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG,
	};
	int r = getaddrinfo(o->host, o->port, &hints, res);
	if (r == EAI_SYSTEM)
		return ipcx__fail(-errno, "%s: cannot resolve %s", u->orig, o->host);
	if (r != 0)
		return ipcx__fail(-EHOSTUNREACH, "%s: cannot resolve %s: %s", u->orig, o->host,
				  gai_strerror(r));
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int tcp_addr(ipcx_chan *c, char *buf, size_t cap)
{
	return ipcx__inet_addr_url(ipcx__srv_lfd(c), "tcp", buf, cap);
}

static int bind_listen(const struct addrinfo *ai, unsigned flags)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | ipcx__sock_flags(flags), 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	nodelay(fd); /* accepted sockets inherit it */
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int tcp_listen(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct topts o;
	struct addrinfo *res;
	int r;
	if ((r = parse(u, &o)) < 0 || (r = resolve(u, &o, true, &res)) < 0)
		return r;
	int fd = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = bind_listen(ai, flags);
	freeaddrinfo(res);
	if (fd < 0)
		return ipcx__fail(fd, "%s: cannot listen", u->orig);
	struct ipcx__srv_cfg cfg = {
		.framing = o.framing, .max_msg = o.max_msg, .flags = flags, .addr = tcp_addr,
	};
	return ipcx__srv_new(&tcp_tran, fd, &cfg, ret);
}

static int tcp_dial(const struct ipcx__url *u, unsigned flags, ipcx_chan **ret)
{
	struct topts o;
	struct addrinfo *res;
	int r;
	if ((r = parse(u, &o)) < 0 || (r = resolve(u, &o, false, &res)) < 0)
		return r;
	int64_t deadline = ipcx__deadline((int)o.timeout_ms);
	int fd = -1;
	r = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | ipcx__sock_flags(flags), 0);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		if ((r = ipcx__sock_connect(fd, ai->ai_addr, ai->ai_addrlen, deadline)) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return ipcx__fail(r, "%s: cannot connect", u->orig);
	nodelay(fd);
	if ((r = ipcx__conn_new(&tcp_tran, fd, o.framing, o.max_msg, true, ret)) < 0)
		close(fd);
	return r;
}


static const struct ipcx_tran tcp_tran = {
	.scheme = "tcp",
	.options = tcp_options,
	.listen = tcp_listen,
	.dial = tcp_dial,
};

const struct ipcx_tran *const ipcx__trans_tcp[] = { &tcp_tran, NULL };
