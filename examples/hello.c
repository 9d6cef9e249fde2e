/* The README's first example: one process, both ends of a channel. */
#include <ipcx.h>
#include <stdio.h>

int main(void)
{
	ipcx_chan *rx, *tx;
	char buf[64];
	if (ipcx_listen("unix:@ipcx-hello", 0, &rx) < 0 || ipcx_dial("unix:@ipcx-hello", 0, &tx) < 0)
		return fprintf(stderr, "hello: %s\n", ipcx_errdetail()), 1;
	ipcx_send(tx, "hello", 5, -1);
	ssize_t n = ipcx_recv(rx, buf, sizeof(buf), 1000);
	printf("%.*s\n", (int)n, buf);
	ipcx_close(tx);
	return ipcx_close(rx) < 0;
}
