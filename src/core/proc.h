/*
 * Processes named without fear of pid reuse: a pid and the start time the
 * kernel gave that process (field 22 of /proc/PID/stat).
 */
#ifndef IPCX_CORE_PROC_H
#define IPCX_CORE_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Start time of a process (field 22 of /proc/PID/stat), or -errno. */
int ipcx__proc_start(pid_t pid, uint64_t *ret);
/*
 * The same, and its state (field 3: 'R', 'S', 'Z' for a zombie ...) in
 * *state when state is not NULL; the state may be set on a failure.
 */
int ipcx__proc_stat(pid_t pid, char *state, uint64_t *ret);
/* The process pid runs and is the one that started at start. */
bool ipcx__proc_alive(pid_t pid, uint64_t start);

#endif
