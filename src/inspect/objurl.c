/*
 * Object URLs, written and read: see objurl.h.  The scheme table is the
 * inspector's knowledge, not the core's: it says which scheme names which
 * kind of object, so that `ipcx ls` can show one URL per object and
 * `ipcx rm unixgram:/p` finds the socket file unix:/p.
 */
#include "inspect/objurl.h"

#include "core/error.h"
#include "core/record.h"
#include "core/url.h"
#include "ipcx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>

/* Every scheme that names an object; the first of a kind is its canonical one. */
static const struct {
	const char *scheme;
	int kind;
} schemes[] = {
	{ "sysvmq", IPCX_OBJ_SYSV_MSG },
	{ "sysvsem", IPCX_OBJ_SYSV_SEM },
	{ "sysvshm", IPCX_OBJ_SYSV_SHM },
	{ "shm", IPCX_OBJ_POSIX_SHM },
	{ "sem", IPCX_OBJ_POSIX_SEM },
	{ "mq", IPCX_OBJ_POSIX_MQ },
	{ "fifo", IPCX_OBJ_FIFO },
	{ "unix", IPCX_OBJ_UNIX_SOCKET },
	{ "unixpacket", IPCX_OBJ_UNIX_SOCKET },
	{ "unixgram", IPCX_OBJ_UNIX_SOCKET },
	/* A log file, found by path only and never recorded (it outlives its
	 * creator: gc must never take it for an orphan; rm refuses it). */
	{ "mmap", IPCX_OBJ_MMAP_LOG },
};
#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

static bool is_sysv(int kind)
{
	return kind == IPCX_OBJ_SYSV_MSG || kind == IPCX_OBJ_SYSV_SEM || kind == IPCX_OBJ_SYSV_SHM;
}

static const char *canon_scheme(int kind)
{
	for (size_t i = 0; i < NSCHEMES; i++)
		if (schemes[i].kind == kind)
			return schemes[i].scheme;
	return NULL;
}

int ipcx__obj_url(const struct ipcx__objid *o, char *buf, size_t cap)
{
	const char *scheme = canon_scheme(o->kind);
	if (!scheme || is_sysv(o->kind) != !o->name)
		return -EINVAL;
	int n = !o->name ? snprintf(buf, cap, "%s:0x%08x", scheme, (unsigned)o->key)
			 : snprintf(buf, cap, "%s:%s", scheme, o->name);
	if (n >= 0 && (size_t)n < cap && o->has_id)
		n += snprintf(buf + n, cap - (size_t)n, "?id=%u", (unsigned)o->id);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* What names a System V object besides its key; the owner's other options do not. */
enum { SYSV_ID, SYSV_PROJ, SYSV_NOPTS };
static const struct ipcx__opt sysv_options[SYSV_NOPTS + 1] = {
	[SYSV_ID] = IPCX__UINT("id", 0, 0x7fffffff, 0),
	[SYSV_PROJ] = IPCX__UINT("proj", 1, 255, 0),
};

static int sysv_parse(struct ipcx__url *u, struct ipcx__objid *o)
{
	int r = ipcx__url_opts_lenient(u, sysv_options);
	if (r < 0)
		return r;
	/* An IPC_PRIVATE object has key 0 and is named by its id instead. */
	char *end;
	o->has_id = ipcx__opt_set(u, SYSV_ID);
	o->id = (uint32_t)ipcx__opt(u, SYSV_ID);
	bool private_by_id = o->has_id && u->body[0] && strtoull(u->body, &end, 0) == 0 && !*end;
	key_t k = 0;
	r = private_by_id ? 0 : ipcx__url_sysv_key(u, ipcx__opt(u, SYSV_PROJ), &k);
	o->key = (uint32_t)k;
	return r;
}

/* POSIX names: "/name", one component, as shm_open/sem_open/mq_open take. */
static int posix_check(const struct ipcx__url *u, const char *scheme)
{
	const char *b = u->body;
	size_t len = strlen(b);
	if (b[0] != '/' || len < 2 || len > 250 || strchr(b + 1, '/'))
		return ipcx__fail(-EINVAL, "%s: want %s:/name (one component)", u->orig, scheme);
	return 0;
}

static int path_check(const struct ipcx__url *u, const char *scheme, int kind)
{
	const char *b = u->body;
	bool abstract = kind == IPCX_OBJ_UNIX_SOCKET && b[0] == '@' && b[1];
	if (!abstract && (b[0] != '/' || strlen(b) >= IPCX__NAME_MAX))
		return ipcx__fail(-EINVAL, "%s: want %s:/absolute/path", u->orig, scheme);
	return 0;
}

static int parse(struct ipcx__url *u, struct ipcx__objid *o, char *namebuf, size_t cap)
{
	size_t i = 0;
	while (i < NSCHEMES && strcmp(schemes[i].scheme, u->scheme) != 0)
		i++;
	if (i == NSCHEMES)
		return ipcx__fail(-EINVAL, "%s: '%s' names no IPC object ipcx can inspect", u->orig,
				  u->scheme);
	*o = (struct ipcx__objid){ .kind = schemes[i].kind };
	if (is_sysv(o->kind))
		return sysv_parse(u, o);
	const char *scheme = canon_scheme(o->kind);
	int r = o->kind == IPCX_OBJ_FIFO || o->kind == IPCX_OBJ_UNIX_SOCKET ||
				o->kind == IPCX_OBJ_MMAP_LOG
			? path_check(u, scheme, o->kind)
			: posix_check(u, scheme);
	if (r < 0)
		return r;
	if (strlen(u->body) >= cap)
		return -ENAMETOOLONG;
	strcpy(namebuf, u->body);
	o->name = namebuf;
	return 0;
}

int ipcx__obj_parse(const char *url, struct ipcx__objid *o, char *namebuf, size_t cap)
{
	struct ipcx__url *u = malloc(sizeof(*u));
	if (!u)
		return -ENOMEM;
	struct ipcx__objid got;
	int r = ipcx__url_parse(url, u);
	if (r == 0)
		r = parse(u, &got, namebuf, cap);
	free(u);
	if (r == 0)
		*o = got;
	return r;
}

int ipcx__obj_canon(const char *url, int *kind, char *buf, size_t cap)
{
	char *name = malloc(IPCX__NAME_MAX);
	if (!name)
		return -ENOMEM;
	struct ipcx__objid o;
	int r = ipcx__obj_parse(url, &o, name, IPCX__NAME_MAX);
	if (r == 0)
		r = ipcx__obj_url(&o, buf, cap);
	if (r == 0)
		*kind = o.kind;
	free(name);
	return r;
}

bool ipcx__obj_is_canon(const char *url)
{
	char canon[IPCX__CANON_MAX];
	int kind;
	return ipcx__obj_canon(url, &kind, canon, sizeof(canon)) == 0 && strcmp(canon, url) == 0;
}
