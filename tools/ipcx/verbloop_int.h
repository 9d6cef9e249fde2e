/*
 * What the channel verbs (send, recv, pub, sub, call, serve, bridge) do
 * alike, so that each verb's file keeps only what is its own: the getopt
 * loop with the options they share, the lines or arguments a sender sends,
 * standard input read whole, and the stop signals around a loop.  Every
 * message they print is one the verbs printed before; the verb's name is
 * passed in so that each still names itself.
 */
#ifndef IPCX_VERBLOOP_INT_H
#define IPCX_VERBLOOP_INT_H

#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ipcx_chan;

/*
 * How a verb reads its options.  verb_getopt runs getopt_long over argv
 * and handles, the same way in every verb:
 *   'h'  --help: help() is printed and verb_getopt returns -1;
 *   't'  --timeout MS into *timeout_ms (-1 .. INT_MAX), when it is set;
 *   'n'  --count into *count (1 .. LONG_MAX), when it is set, the value
 *        called count_name in the message ("COUNT", "N");
 *   'R'  --ready-fd FD into *ready_fd, which must be an open descriptor,
 *        when it is set;
 *   ':'  and unknown options: the usage errors.
 * Any other option goes to own(ch, optarg, arg), which returns CLI_OK,
 * what cli_usage returned, or VERB_UNKNOWN for a ch it does not know.  With url set, the first operand is the URL
 * ("missing URL" without one) and optind is left after it; otherwise
 * optind is left at the first operand.
 */
struct verb_opts {
	const char *verb;              /* for the messages: "recv" */
	const char *shortopts;         /* for getopt_long: ":n:t:h" */
	const struct option *longopts;
	void (*help)(void);
	long *timeout_ms;
	long *count;
	const char *count_name;
	long *ready_fd;
	const char **url;
	int (*own)(int ch, const char *optarg, void *arg);
	void *arg;
};

#define VERB_UNKNOWN (-2)

/* The rows of a verb's option table for the options verb_getopt handles. */
#define VERB_OPT_COUNT    { "count", required_argument, NULL, 'n' }
#define VERB_OPT_TIMEOUT  { "timeout", required_argument, NULL, 't' }
#define VERB_OPT_READY_FD { "ready-fd", required_argument, NULL, 'R' }
#define VERB_OPTS_END     { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }

/* CLI_OK, -1 after --help (the verb then exits 0), or CLI_USAGE. */
int verb_getopt(int argc, char **argv, const struct verb_opts *o);

/*
 * The messages a sender sends: each of the n arguments in msgs, or, with
 * none, each line of standard input (without its newline).  one(arg,
 * message, length, nth) sends one, nth counting from 1, and returns CLI_OK
 * or CLI_FAIL after saying why; the first failure ends it.  A failure to
 * read standard input is said here.
 */
typedef int verb_send_fn(void *arg, const char *msg, size_t len, long nth);
int verb_send_each(char **msgs, int n, verb_send_fn *one, void *arg);

/*
 * All of standard input into *buf (malloc'd) and *len; stops early, with
 * *len > limit, once it is plainly more than limit.  0 or -errno.
 */
int verb_read_stdin(size_t limit, char **buf, size_t *len);

/*
 * The stop signals of a verb that runs until stopped: SIGPIPE is ignored
 * (a closed standard output is an error we report, not a death), and
 * SIGINT, SIGTERM, SIGHUP and the n signals in extra come on the signalfd
 * sfd.  verb_stop_open returns CLI_OK, or CLI_FAIL after saying why.
 * verb_stop_close closes sfd and ends the verb: it dies of sig, when a
 * stop signal was taken into it, or restores the signal mask and returns
 * rc.
 */
struct verb_stop {
	int sfd;
	int sig;      /* the stop signal that came, or 0 */
	sigset_t old; /* the mask before */
};
int verb_stop_open(struct verb_stop *st, const int *extra, size_t n);
int verb_stop_close(struct verb_stop *st, int rc);

/* CLOCK_MONOTONIC in milliseconds, for deadlines. */
int64_t verb_now_ms(void);

/*
 * --ready-fd for a channel: its address (with the port the system chose
 * for :0), or the URL given when the transport cannot tell.
 */
int verb_announce_chan(struct ipcx_chan *c, const char *url, long fd);

/* "no message arrived on URL within MS ms (N received)"; CLI_FAIL. */
int verb_no_message(const char *url, long timeout_ms, long got);

/*
 * Standard output failed with -err: said in words for a reader that has
 * gone (ipcx's own words for EPIPE speak of peers); CLI_FAIL.
 */
int verb_stdout_failed(int err);

#endif
