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

#endif
