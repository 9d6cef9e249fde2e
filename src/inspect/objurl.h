/*
 * Object URLs: the canonical URL of a kernel object ("sysvmq:0x00001234",
 * "shm:/name", "unix:@name" ...) is written by ipcx__obj_url() and read by
 * ipcx__obj_parse(), and nowhere else.  objurl.c holds the one table that
 * ties the object kinds (enum ipcx_obj_kind) to the URL schemes that name
 * them; the core and the transports name objects by kind and name
 * (struct ipcx__objid, core/record.h), never by scheme.
 */
#ifndef IPCX_INSPECT_OBJURL_H
#define IPCX_INSPECT_OBJURL_H

#include "core/record.h"

#include <stddef.h>

#define IPCX__CANON_MAX 4200 /* longest canonical URL: a path of PATH_MAX and a scheme */

/*
 * The canonical URL of o: "KIND-SCHEME:NAME", or "KIND-SCHEME:0xKEY" for a
 * System V object ("?id=N" after the key of a private one).  It checks
 * nothing but the kind (-EINVAL for one without a scheme): what is listed
 * is named as it is found.  -ENAMETOOLONG if buf is too small.
 */
int ipcx__obj_url(const struct ipcx__objid *o, char *buf, size_t cap);

/*
 * The object a URL names, whatever form it is given in: sysvmq:4660 and
 * sysvmq:/path?proj=N (ftok), shm:///name?opts (the owner's options do not
 * change which object it is), unixgram:/p for the socket file unix:/p.  The
 * name is copied into namebuf (cap bytes) and o->name points there.
 * -EINVAL, with a detail, for a URL that names no object ipcx can inspect.
 */
int ipcx__obj_parse(const char *url, struct ipcx__objid *o, char *namebuf, size_t cap);

/* Both: the canonical URL of the object url names, and its kind. */
int ipcx__obj_canon(const char *url, int *kind, char *buf, size_t cap);

/* Is url the canonical URL of an object (as a record or an old listing has it)? */
bool ipcx__obj_is_canon(const char *url);

#endif
