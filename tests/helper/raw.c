/*
 * Objects for the CLI tests, made with raw system calls (not through ipcx),
 * and a listener to kill:
 *   raw sysvmq|sysvsem|sysvshm KEY   msgget/semget/shmget, mode 0600
 *   raw shm|sem|mq /NAME             shm_open/sem_open/mq_open, mode 0600
 *   raw unix /PATH                   bind a socket, close it: a stale socket file
 *   hold unix @NAME                  bind an abstract socket; prints "ready",
 *                                    holds it until a byte (or EOF) on stdin
 *   listen URL                       ipcx_listen; prints "ready", closes the
 *                                    channel on a byte (or EOF) on stdin
 */
#include "raw.h"

#include <fcntl.h>
#include <ipcx.h>
#include <mqueue.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int raw_sysv(const char *kind, const char *keytext)
{
	key_t key = (key_t)strtoul(keytext, NULL, 0);
	int id = !strcmp(kind, "sysvmq")    ? msgget(key, IPC_CREAT | IPC_EXCL | 0600)
		 : !strcmp(kind, "sysvsem") ? semget(key, 2, IPC_CREAT | IPC_EXCL | 0600)
					    : shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
	if (id < 0)
		perror(kind);
	return id < 0;
}

static int raw_posix(const char *kind, const char *name)
{
	if (!strcmp(kind, "shm")) {
		int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, 4096) < 0)
			return perror("shm_open"), 1;
		return close(fd) < 0;
	}
	if (!strcmp(kind, "sem")) {
		sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
		if (s == SEM_FAILED)
			return perror("sem_open"), 1;
		return sem_close(s) < 0;
	}
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, NULL);
	if (q == (mqd_t)-1)
		return perror("mq_open"), 1;
	return mq_close(q) < 0;
}

static int bind_unix(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	if (n >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, name, n);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0 ||
	    listen(fd, 1) < 0) {
		perror("bind");
		return -1;
	}
	return fd;
}

/* Tell the test we are ready, then wait for a byte (or the end) on stdin. */
static void ready_then_wait(void)
{
	printf("ready\n");
	fflush(stdout);
	char b;
	while (read(0, &b, 1) < 0)
		;
}

int helper_raw(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "raw")) {
		const char *k = argv[2];
		if (!strncmp(k, "sysv", 4))
			return raw_sysv(k, argv[3]);
		if (!strcmp(k, "shm") || !strcmp(k, "sem") || !strcmp(k, "mq"))
			return raw_posix(k, argv[3]);
		if (!strcmp(k, "unix")) {
			int fd = bind_unix(argv[3]);
			return fd < 0 || close(fd) < 0;
		}
	}
	if (argc == 4 && !strcmp(argv[1], "hold") && !strcmp(argv[2], "unix")) {
		int fd = bind_unix(argv[3]);
		if (fd < 0)
			return 1;
		ready_then_wait();
		return close(fd) < 0;
	}
	if (argc == 3 && !strcmp(argv[1], "listen")) {
		ipcx_chan *c;
		int r = ipcx_listen(argv[2], 0, &c);
		if (r < 0) {
			fprintf(stderr, "helper: listen %s: %s %s\n", argv[2], ipcx_strerror(r),
				ipcx_errdetail());
			return 1;
		}
		ready_then_wait();
		return ipcx_close(c) < 0;
	}
	return 2;
}
