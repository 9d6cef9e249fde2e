/*
 * NATS servers of the test's own: nats-server processes on loopback and
 * free ports, each with its folder (store and ports file) in t_tmpdir().
 * A server dies with the process that started it (PR_SET_PDEATHSIG), and
 * t_nats_stop() or the end of that process stops it and removes its folder.
 *
 * Start-up is a handshake, not a sleep: nats-server writes its ports file
 * (--ports_file_dir) once it listens, and we wait for that file with
 * inotify (or for the server's death, with a pidfd).
 */
#ifndef IPCX_TNATS_H
#define IPCX_TNATS_H

#include <stdbool.h>
#include <sys/types.h>

struct t_nats {
	pid_t pid;          /* 0 when not running */
	int port;           /* clients */
	int cluster_port;   /* routes, or 0 */
	char dir[256];      /* its folder */
	char addr[64];      /* "127.0.0.1:PORT", for nats:// URLs */
	char route[64];     /* "nats://127.0.0.1:CLUSTER_PORT", or "" */
};

/*
 * Start a server.  jetstream: with -js and its store in the folder.
 * cluster: a cluster name, or NULL for none; routes: "nats://...,..." or
 * NULL.  port: 0 for a free one, or the port to take (a restart).  false,
 * with the reason on stderr, if it could not start (not installed ...).
 */
bool t_nats_start(struct t_nats *s, bool jetstream, const char *cluster, const char *routes,
		  int port);

/* Send sig to the server and reap it (SIGKILL mid-test); the folder stays. */
void t_nats_kill(struct t_nats *s, int sig);

/* Stop it (SIGTERM, then SIGKILL past the guard) and remove its folder. */
void t_nats_stop(struct t_nats *s);

/*
 * Three servers routed to each other (explicit routes between every pair),
 * without JetStream.  false if one could not start (the others stopped).
 */
bool t_nats_cluster(struct t_nats s[3]);

/*
 * "127.0.0.1:PORT" of one JetStream server shared by the calling process,
 * started on first use and stopped when the process exits.  A test that
 * cannot have one stops (cr_assert).
 */
const char *t_nats_addr(void);

#endif
