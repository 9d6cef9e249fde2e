/*
 * The CLI's shared pieces.  Each verb is one file, tools/ipcx/VERB.c, with an
 * entry `int cli_VERB(int argc, char **argv)` listed in main.c's table.  A
 * verb gets argv with argv[0] = the verb's name, and returns the exit status:
 * 0 success, 1 failure (after one sentence on stderr), 2 a usage error.
 * The CLI uses only the public header.
 */
#ifndef IPCX_CLI_H
#define IPCX_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

struct ipcx_obj;
struct ipcx_chan;

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/*
 * Print "ipcx: WHAT: REASON (DETAIL)" to stderr, where REASON is
 * ipcx_strerror(err) and DETAIL what the library recorded about the failure
 * (without the URL that WHAT already names); for -EINVAL only the detail,
 * which says what is wrong.  Returns CLI_FAIL.
 * Example: cli_fail(r, "cannot dial %s", url) prints
 * "ipcx: cannot dial tcp://127.0.0.1:1: connection refused (cannot connect)".
 */
int cli_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * s with its control characters written as escapes (\n, \t, \r, \xHH), cut
 * to fit cap; returns buf.  Whatever the CLI echoes of its input goes
 * through it, so that an error is one line however the input was made.
 * cli_fail and cli_usage escape their whole message.
 */
const char *cli_escape(const char *s, char *buf, size_t cap);

/* Print "ipcx VERB: MESSAGE" and a hint to try --help; returns CLI_USAGE. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a whole decimal number in [min, max]; false if malformed. */
bool cli_parse_long(const char *s, long min, long max, long *ret);

/*
 * Verbs that run until stopped (stop.c).  cli_stop_open blocks SIGINT,
 * SIGTERM and SIGHUP (those not ignored by our parent) and returns a
 * signalfd for them (old: the mask before), or -1 after saying why;
 * cli_stop_take reads one: its number, or 0.  cli_reraise dies of sig once
 * everything is closed (128 + sig if it did not).  cli_announce writes
 * "ADDR\n" to fd (--ready-fd) and closes it unless it is 0, 1 or 2.
 */
int cli_stop_open(sigset_t *old);
/* The same with more signals on the signalfd (n of them in extra). */
int cli_signals_open(const int *extra, size_t n, sigset_t *old);
int cli_stop_take(int sfd);
int cli_reraise(int sig, const sigset_t *old);
int cli_announce(const char *addr, int fd);

/*
 * A message as text on one line (recv.c): \\, \n, \t, \r and \xHH for
 * bytes that are not printable or valid UTF-8, so that a message with a
 * newline or binary bytes never spills over lines or into the terminal's
 * controls.  No newline is added.
 */
void cli_put_escaped(FILE *f, const void *msg, size_t n);

/* Objects, for ls, info and gc (objfmt.c). */
/* A JSON string: escaped, and valid UTF-8 whatever bytes s holds. */
void cli_json_str(FILE *f, const char *s);
/* One object as a JSON object (the fields docs/cli.md lists). */
void cli_obj_json(FILE *f, const struct ipcx_obj *o);
/* A user name for uid (or the number), and an age ("42s", "3h") in buf. */
const char *cli_user(int64_t uid, char *buf, size_t cap);
const char *cli_age(int64_t ctime, char *buf, size_t cap);
/*
 * Make POSIX message queues listable: true if the mqueue file system is
 * mounted, or could be mounted at /dev/mqueue (root, mount_ok); else says
 * on stderr that queues are not listed.
 */
bool cli_mqueue_prepare(bool mount_ok);

/*
 * Run cmd as a child with the signal mask orig, passing on SIGTERM, SIGINT,
 * SIGHUP and SIGQUIT; prep(arg), if given, runs in the child before exec.
 * Returns the command's exit status (128 + N for signal N; 127 when it
 * cannot be found, 126 when it cannot run).
 */
int cli_run_command(char **cmd, const sigset_t *orig, void (*prep)(void *), void *arg);

/* Verb entry points (one file each). */
int cli_send(int argc, char **argv);
int cli_recv(int argc, char **argv);
int cli_tour(int argc, char **argv);
int cli_lock(int argc, char **argv);
int cli_signal(int argc, char **argv);
int cli_sem(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_advise(int argc, char **argv);
int cli_gc(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_call(int argc, char **argv);
int cli_log(int argc, char **argv);
int cli_logd(int argc, char **argv);
int cli_bridge(int argc, char **argv);
int cli_pool(int argc, char **argv);
int cli_slot(int argc, char **argv);
int cli_pub(int argc, char **argv);
int cli_sub(int argc, char **argv);

#endif
