/*
 * A peer program: one library (ZeroMQ, nng, iceoryx) as a bench backend.
 * bench/peer_main.c is the shared main(); each peer_LIB.c provides these.
 */
#ifndef IPCX_BENCH_PEER_H
#define IPCX_BENCH_PEER_H

#include "bench.h"

/* The backend for a transport argument ("ipc", "tcp", "shm"), or NULL. */
const struct bh_ops *peer_ops(const char *transport);
/* The fan-out backend for a transport argument ("pubsub-ipc", "pubsub-shm"), or NULL. */
const struct bh_fan_ops *peer_fan_ops(const char *transport);
/* "zmq 4.3.4" */
const char *peer_version(void);

/* Shared by the peers (peer_main.c). */
/* A peer's table of its channel rows, by transport argument. */
struct peer_row {
	const char *transport;
	const struct bh_ops *ops;
};
/* The ops of the row for transport among the n rows, or NULL. */
const struct bh_ops *peer_find(const struct peer_row *rows, size_t n, const char *transport);
/* "ipc://PATH" for a socket file named for tag in the run's folder (bh_path). */
void peer_ipc_url(const struct bh_params *p, const char *tag, char *url, size_t cap);

#endif
