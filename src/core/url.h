/*
 * URLs: "scheme:body?key=value&key=value" split into its parts (url.c), the
 * typed tables of the options a scheme takes, and the readers of a body: an
 * absolute path, a System V key, host:port.  The parser knows the shape of
 * URLs, not the transports: each transport (and each other owner of a
 * scheme: semaphores, regions) brings its own table, and the core checks
 * and parses the options against it once, before the owner sees the URL.
 */
#ifndef IPCX_CORE_URL_H
#define IPCX_CORE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPCX__URL_MAX    4096 /* longest URL accepted */
#define IPCX__OPT_MAX    16   /* most options in one URL */
#define IPCX__OPTS_MAX   24   /* most options in one table */
#define IPCX__SCHEME_MAX 16

/* ---- option tables ---------------------------------------------------------- */

enum ipcx__opt_type {
	IPCX__OPT_UINT, /* a number in [min, max]: decimal, 0x hex or 0 octal */
	IPCX__OPT_INT,  /* a signed decimal number in [(int64_t)min, (int64_t)max] */
	IPCX__OPT_BOOL, /* 1, true, yes or 0, false, no */
	IPCX__OPT_MODE, /* permission bits in octal, 0 to 0777 */
	IPCX__OPT_ENUM, /* one of words; the value is its index */
	IPCX__OPT_STR,  /* text of min to max bytes, read with ipcx__opt_str(); no
	                   default (NULL when absent); its owner checks what it holds */
};

/* One option a scheme takes; a table of them ends with a NULL name. */
struct ipcx__opt {
	const char *name;
	enum ipcx__opt_type type;
	uint64_t min, max;        /* UINT, INT */
	uint64_t def;             /* the value when the option is absent */
	const char *const *words; /* ENUM: NULL-terminated */
};

#define IPCX__UINT(n, lo, hi, d) { .name = n, .type = IPCX__OPT_UINT, .min = lo, .max = hi, .def = d }
#define IPCX__INT(n, lo, hi, d)                                                          \
	{ .name = n, .type = IPCX__OPT_INT, .min = (uint64_t)(int64_t)(lo),                  \
	  .max = (uint64_t)(int64_t)(hi), .def = (uint64_t)(int64_t)(d) }
#define IPCX__BOOL(n, d)         { .name = n, .type = IPCX__OPT_BOOL, .def = d }
#define IPCX__MODE(n, d)         { .name = n, .type = IPCX__OPT_MODE, .def = d }
#define IPCX__ENUM(n, w, d)      { .name = n, .type = IPCX__OPT_ENUM, .words = w, .def = d }
#define IPCX__STR(n, lo, hi)     { .name = n, .type = IPCX__OPT_STR, .min = lo, .max = hi }

/* An option's value, parsed: a number, a bool (0/1), a mode, an index; a text. */
struct ipcx__optval {
	uint64_t v;
	const char *s; /* STR: the text, in the URL's buf; NULL when absent */
	bool set;      /* given in the URL (else v is the table's default) */
};

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
	/* After ipcx__url_opts(): the table, and the value of each of its options. */
	const struct ipcx__opt *opts;
	struct ipcx__optval val[IPCX__OPTS_MAX];
	char buf[IPCX__URL_MAX];
};

int ipcx__url_parse(const char *url, struct ipcx__url *u);

/*
 * Check the URL's options against table (an option not in it is -EINVAL:
 * "unknown option") and parse each into u->val[i], i its index in the
 * table; an absent one gets the table's default.  On failure (-EINVAL with
 * a detail naming the option and what is wrong with its value) u->val is
 * untouched.
 */
int ipcx__url_opts(struct ipcx__url *u, const struct ipcx__opt *table);
/*
 * The same, but an option not in table is passed over: for a URL that only
 * names an object (ipcx ls, creator records), whose owner's other options
 * do not change which object it is.
 */
int ipcx__url_opts_lenient(struct ipcx__url *u, const struct ipcx__opt *table);
/* Entries in a table, or -1 if it has more than IPCX__OPTS_MAX or a bad one. */
int ipcx__opts_count(const struct ipcx__opt *table);

static inline uint64_t ipcx__opt(const struct ipcx__url *u, int i)
{
	return u->val[i].v;
}

static inline bool ipcx__opt_set(const struct ipcx__url *u, int i)
{
	return u->val[i].set;
}

/* Option i (STR): its text, or NULL when the URL did not give it. */
static inline const char *ipcx__opt_str(const struct ipcx__url *u, int i)
{
	return u->val[i].s;
}

/*
 * Option i (UINT), already parsed, must also lie in [min, max], a narrower
 * range that depends on what was opened (a packet socket's largest
 * message): -EINVAL with the same words as the table's own range check.
 */
int ipcx__opt_within(const struct ipcx__url *u, int i, uint64_t min, uint64_t max);

/* ---- the body ----------------------------------------------------------------- */

/* Body as an absolute filesystem path that fits in cap bytes. */
int ipcx__url_path(const struct ipcx__url *u, size_t cap, const char **ret);
/*
 * A System V key: the body as KEY (decimal or 0x hex, not 0 = IPC_PRIVATE),
 * or /path with proj, the URL's parsed ?proj=N (1 to 255; 0 when absent),
 * for ftok(path, proj).
 */
int ipcx__url_sysv_key(const struct ipcx__url *u, uint64_t proj, key_t *ret);
/* Body as host:port; host is copied without IPv6 brackets. */
int ipcx__url_hostport(const struct ipcx__url *u, char *host, size_t hostcap,
		       uint16_t *port);

#endif
