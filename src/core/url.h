/*
 * URLs: "scheme:body?key=value&key=value" split into its parts (url.c), and
 * the readers of a body: an absolute path, a System V key, host:port.  The
 * parser knows the shape of URLs, not the transports.
 */
#ifndef IPCX_CORE_URL_H
#define IPCX_CORE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPCX__URL_MAX    4096 /* longest URL accepted */
#define IPCX__OPT_MAX    16   /* most options in one URL */
#define IPCX__SCHEME_MAX 16

/* A URL split into its parts.  All strings point into buf. */
struct ipcx__url {
	char scheme[IPCX__SCHEME_MAX];
	const char *body; /* after "scheme:" and a "//" authority marker:
	                     "/tmp/x", "@name", "host:port", "42" */
	const char *orig; /* the whole URL as given, for messages */
	int nopts;
	struct {
		const char *key;
		const char *val;
	} opt[IPCX__OPT_MAX];
	char buf[IPCX__URL_MAX];
};

int ipcx__url_parse(const char *url, struct ipcx__url *u);
/* Value of option key, or NULL if absent. */
const char *ipcx__url_opt(const struct ipcx__url *u, const char *key);
/* Parsed option values; absent options leave *ret as it was (the default). */
int ipcx__url_opt_u64(const struct ipcx__url *u, const char *key, uint64_t min,
		      uint64_t max, uint64_t *ret);
int ipcx__url_opt_size(const struct ipcx__url *u, const char *key, size_t min,
		       size_t max, size_t *ret);
int ipcx__url_opt_bool(const struct ipcx__url *u, const char *key, bool *ret);
int ipcx__url_opt_mode(const struct ipcx__url *u, mode_t *ret);
/* One of the words in choices (NULL-terminated); *ret gets its index. */
int ipcx__url_opt_enum(const struct ipcx__url *u, const char *key,
		       const char *const *choices, int *ret);
/* Body as an absolute filesystem path that fits in cap bytes. */
int ipcx__url_path(const struct ipcx__url *u, size_t cap, const char **ret);
/*
 * A System V key: the body as KEY (decimal or 0x hex, not 0 = IPC_PRIVATE)
 * or /path with ?proj=N (1 to 255) for ftok(path, N).
 */
int ipcx__url_sysv_key(const struct ipcx__url *u, key_t *ret);
/* Body as host:port; host is copied without IPv6 brackets. */
int ipcx__url_hostport(const struct ipcx__url *u, char *host, size_t hostcap,
		       uint16_t *port);

#endif
