/*
 * Helpers for the test suite: names unique to the run, temporary folders,
 * child processes and handshakes between them.  Tests synchronise through
 * these handshakes, never by sleeping; timeouts are only guards against hangs.
 */
#ifndef IPCX_TSUPPORT_H
#define IPCX_TSUPPORT_H

#include <ipcx.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Guard against hangs: generous, since the machine may be loaded. */
#define T_GUARD_MS 60000

/* The run's tag (IPCX_TEST_TAG), in every object name a test creates. */
const char *t_tag(void);

/* A name unique to this run and process: "ipcxt-TAG-PID-N". */
const char *t_name(void);

/*
 * A System V key unique to this run and process, tagged for the leak check:
 * 0xTTTTxxxx, TTTT the tag's first four hex digits less the top bit (a
 * positive int), as tests/cli/lib/sysvkey.bash makes them.
 */
int t_sysv_key(void);

/*
 * A folder private to this process (a child from t_spawn() gets its own if
 * it asks, which nobody removes: make paths in the parent), "/tmp/ipcxt-TAG-PID-XXXXXX", removed with
 * everything in it when the process exits.  t_path() names a file in it.
 */
const char *t_tmpdir(void);
const char *t_path(const char *leaf);

/* A handshake: one side posts, the other waits (each byte is one post). */
struct t_sync {
	int fd[2];
};
void t_sync_init(struct t_sync *s);
void t_post(struct t_sync *s);
/*
 * A gate, for races: children (made by t_spawn() after t_sync_init()) wait
 * with t_wait_gate(); t_open_gate() in the parent wakes them all at the same
 * moment (end of file on the pipe, one event for every waiter, where posts
 * wake them one after the other).  Used once per t_sync.
 */
bool t_wait_gate(struct t_sync *s, int timeout_ms);
void t_open_gate(struct t_sync *s);
/* Waits for one post; false on timeout or if the poster died first. */
bool t_wait_post(struct t_sync *s, int timeout_ms);
void t_sync_close(struct t_sync *s);

/*
 * Run fn(arg) in a child process, which exits with fn's return value
 * (0 meaning success).  t_join() waits for it up to timeout_ms, killing it
 * with SIGKILL past that, and returns its exit status, or 128+signal.
 */
pid_t t_spawn(int (*fn)(void *arg), void *arg);
int t_join(pid_t pid, int timeout_ms);

/*
 * Receive one message on c (waiting up to the guard): the test stops unless
 * it is as long as want, and fails unless it holds want's bytes.
 */
void t_expect_recv(ipcx_chan *c, const char *want);

/*
 * Is fd readable (POLLIN) now (timeout_ms 0), or does it turn readable
 * within timeout_ms?  t_chan_readable() asks it of ipcx_fileno(c).
 */
bool t_readable(int fd, int timeout_ms);
bool t_chan_readable(ipcx_chan *c, int timeout_ms);

/*
 * Record the object url names as created by this process, as its listener
 * would (core/record.h), or drop that record: 0, or -EINVAL for a URL that
 * names no object.
 */
int t_record_created(const char *url);
void t_record_removed(const char *url);

/* The CLI and the exec helper, as built (IPCX_BIN, IPCX_TEST_HELPER). */
const char *t_bin(void);
const char *t_helper(void);

#endif
