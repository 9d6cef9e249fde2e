/* The doorbell: a pollable descriptor across unrelated processes (ring_bell.h). */
#include "shm/ring_bell.h"

#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t bell_addr(const struct ring *r, unsigned k, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	/* Abstract name; the uid is random per segment, so it is not guessable. */
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "ipcx.ring.%016llx.%u",
			 (unsigned long long)r->uid, k);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void poke(struct ring *r, unsigned k)
{
	int fd = __atomic_load_n(&r->pokefd, __ATOMIC_ACQUIRE);
	if (fd < 0) {
		int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (nfd < 0)
			return;
		int expect = -1;
		if (__atomic_compare_exchange_n(&r->pokefd, &expect, nfd, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			fd = nfd;
		else {
			close(nfd);
			fd = expect;
		}
	}
	struct sockaddr_un a;
	socklen_t alen = bell_addr(r, k, &a);
	char b = 1;
	ssize_t n = sendto(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
	(void)n; /* a full or vanished doorbell needs no second poke */
}

COLD void ipcx__ring_poke_pollers(struct ring *r)
{
	for (unsigned k = 0; k < RING_PEERS; k++) {
		struct ring_peer *pe = &r->h->peers[k];
		uint32_t one = 1;
		if (atomic_load_explicit(&pe->armed, RELAXED) &&
		    atomic_compare_exchange_strong(&pe->armed, &one, 0))
			poke(r, k);
	}
}

COLD void ipcx__ring_rearm(struct ring *r)
{
	char b[16];
	while (recv(r->bell, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
	struct ring_peer *pe = &r->h->peers[r->me];
	atomic_store(&pe->armed, 1);
	ipcx__ring_sleeper_barrier(); /* pairs with the committer's look at pollers */
	uint32_t one = 1;
	/* A message that came before we armed: ring our own bell. */
	if (ipcx__ring_has_msg(r) && atomic_compare_exchange_strong(&pe->armed, &one, 0))
		poke(r, (unsigned)r->me);
}

int ipcx__ring_fileno(struct ring *r)
{
	if (r->bell >= 0)
		return r->bell;
	if (r->me < 0)
		return -EBADF;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return ipcx__fail(-errno, "ring: doorbell socket");
	struct sockaddr_un a;
	socklen_t alen = bell_addr(r, (unsigned)r->me, &a);
	if (bind(fd, (struct sockaddr *)&a, alen) < 0) {
		int e = -errno;
		close(fd);
		return ipcx__fail(e, "ring: doorbell bind");
	}
	r->bell = fd;
	atomic_store(&r->h->peers[r->me].poller, 1);
	atomic_fetch_add(&r->h->pollers, 1);
	ipcx__ring_rearm(r);
	return fd;
}
