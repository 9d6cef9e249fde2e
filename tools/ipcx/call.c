/*
 * ipcx call [--timeout MS] URL [PAYLOAD]
 *
 * One call to an RPC server (ipcx serve, or any program using
 * ipcx_rpc_serve): the payload is the argument, or all of standard input;
 * the reply is written to standard output byte for byte.  An error reply,
 * a timeout or a missing server is one sentence on standard error and exit
 * status 1.
 */
#include "verbloop_int.h"

#include <errno.h>
#include <getopt.h>
#include <ipcx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLY_LIMIT ((size_t)1 << 30)

struct call_args {
	const char *url;
	const char *payload; /* NULL: standard input */
	long timeout_ms;
};

static void help(void)
{
	printf("usage: ipcx call [--timeout MS] URL [PAYLOAD]\n"
	       "\n"
	       "Call the RPC server at URL (see 'ipcx serve') with PAYLOAD, or with all of\n"
	       "standard input when there is no PAYLOAD, and write the reply to standard\n"
	       "output, byte for byte.  An error reply, a timeout, or no server: one\n"
	       "sentence on standard error, exit 1.  The call is made once (never resent).\n"
	       "\n"
	       "  -t, --timeout MS  give up after MS ms (default -1: wait forever)\n"
	       "  -h, --help        show this help\n"
	       "\n"
	       "examples:\n"
	       "  ipcx call unix:/tmp/upper.sock hello          # HELLO\n"
	       "  ipcx call --timeout 500 shm:/wc < notes.txt\n");
}

static int parse_args(int argc, char **argv, struct call_args *a)
{
	static const struct option opts[] = {
		VERB_OPT_TIMEOUT,
		VERB_OPTS_END,
	};
	*a = (struct call_args){ .timeout_ms = -1 };
	int rc = verb_getopt(argc, argv, &(struct verb_opts){
		.verb = "call", .shortopts = ":t:h", .longopts = opts, .help = help,
		.timeout_ms = &a->timeout_ms, .url = &a->url });
	if (rc != CLI_OK)
		return rc;
	if (optind < argc)
		a->payload = argv[optind++];
	if (optind < argc)
		return cli_usage("call", "one PAYLOAD only; unexpected '%s' (quote it)", argv[optind]);
	return CLI_OK;
}

static int write_all(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Say why the call failed, in one sentence. */
static int call_failed(const struct call_args *a, ssize_t err)
{
	if (err == -ETIMEDOUT)
		fprintf(stderr, "ipcx: no reply from %s within %ld ms\n", a->url, a->timeout_ms);
	else if (err == -ECONNRESET)
		fprintf(stderr, "ipcx: the server at %s went away during the call (it may or may "
				"not have run): %s\n", a->url, ipcx_errdetail());
	else if (err == -EPIPE)
		fprintf(stderr, "ipcx: the server at %s has gone; the call did not run\n", a->url);
	else if (err == -EMSGSIZE && strstr(ipcx_errdetail(), "buffer"))
		cli_fail((int)err, "the reply from %s is too large", a->url);
	else
		fprintf(stderr, "ipcx: the server at %s answered with an error: %s%s%s%s\n", a->url,
			ipcx_strerror((int)err), *ipcx_errdetail() ? " (" : "", ipcx_errdetail(),
			*ipcx_errdetail() ? ")" : "");
	return CLI_FAIL;
}

int cli_call(int argc, char **argv)
{
	struct call_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc < 0 ? CLI_OK : rc;
	signal(SIGPIPE, SIG_IGN);
	ipcx_rpc_client *c;
	int r = ipcx_rpc_dial(a.url, 0, &c);
	if (r < 0)
		return cli_fail(r, "cannot reach a server at %s", a.url);
	char *in = NULL;
	size_t len = a.payload ? strlen(a.payload) : 0;
	if (!a.payload && (r = verb_read_stdin(REPLY_LIMIT, &in, &len)) < 0) {
		ipcx_rpc_client_close(c);
		return cli_fail(r, "cannot read standard input");
	}
	/* Room for the largest reply the channel carries (pages are touched as used). */
	size_t cap = ipcx_rpc_client_max(c);
	char *out = malloc(cap > REPLY_LIMIT ? REPLY_LIMIT : cap ? cap : 1);
	cap = cap > REPLY_LIMIT ? REPLY_LIMIT : cap;
	ssize_t n = out ? ipcx_rpc_call(c, a.payload ? a.payload : in, len, out, cap,
					(int)a.timeout_ms) : -ENOMEM;
	if (n == -EMSGSIZE && !strstr(ipcx_errdetail(), "buffer"))
		rc = cli_fail((int)n, "cannot call %s with %zu bytes", a.url, len);
	else if (n < 0)
		rc = call_failed(&a, n);
	else if ((r = write_all(out, (size_t)n)) < 0)
		rc = verb_stdout_failed(r);
	free(out);
	free(in);
	ipcx_rpc_client_close(c);
	return rc;
}
