/*
 * Trust in an object that ipcx opens instead of creating (a log, a record
 * file, a region): its contents are believed only if nobody but the people
 * the caller trusts could have written them, as OpenSSH treats key files.
 *
 * Who could have written it: its owner, its group's members if it is
 * group-writable, everyone if it is writable by others.  Whom the caller
 * trusts: itself and root, and whoever the URL's mode= lets write (the same
 * words as for an object it creates): a group-write bit accepts the file's
 * group if the caller is a member of it, an others-write bit accepts anyone.
 * A file's owner other than the caller or root is therefore accepted only
 * when mode= shares the file that way (a user who is not root can give a
 * file only a group the user belongs to, so an owner of a file of a group
 * the caller shares is one of that group).
 */
#include "core/trust.h"

#include "core/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is the caller a member of gid (effective or supplementary)? */
static bool in_group(gid_t gid)
{
	if (getegid() == gid)
		return true;
	int n = getgroups(0, NULL);
	if (n <= 0)
		return false;
	gid_t *v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return false;
	n = getgroups(n, v);
	bool found = false;
	for (int i = 0; i < n && !found; i++)
		found = v[i] == gid;
	free(v);
	return found;
}

/*
 * Someone other than the caller and root owns (or made) the object: accepted
 * only if the caller shares objects that widely (see the top).  noun says
 * which of the object's ids it is ("owned", "created").
 */
static int trust_user(const char *what, const char *noun, uid_t uid, gid_t gid, mode_t asked)
{
	if (uid == geteuid() || uid == 0 || (asked & S_IWOTH) ||
	    ((asked & S_IWGRP) && in_group(gid)))
		return 0;
	return ipcx__fail(-EPERM, "%s: %s by uid %u, not by you or root (its owner could have "
			  "forged its contents; mode=0666 in the URL accepts another user's "
			  "object)", what, noun, (unsigned)uid);
}

/* Writable by group or others: accepted only if the caller lets them write. */
static int trust_mode(const char *what, gid_t gid, mode_t mode, mode_t asked)
{
	bool others_ok = asked & S_IWOTH;
	bool group_ok = others_ok || ((asked & S_IWGRP) && in_group(gid));
	if (((mode & S_IWGRP) && !group_ok) || ((mode & S_IWOTH) && !others_ok))
		return ipcx__fail(-EPERM, "%s: writable by group or others (mode 0%03o), who "
				  "could have forged its contents; mode=0%03o in the URL accepts "
				  "that", what, (unsigned)(mode & 0777), (unsigned)(mode & 0777));
	return 0;
}

int ipcx__trust(const char *what, uid_t uid, gid_t gid, mode_t mode, mode_t asked)
{
	int r = trust_user(what, "owned", uid, gid, asked);
	return r ? r : trust_mode(what, gid, mode, asked);
}

int ipcx__trust_fd(const char *what, int fd, mode_t asked)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	return ipcx__trust(what, st.st_uid, st.st_gid, st.st_mode, asked);
}

/*
 * A System V object has two users and two groups: its owner (uid, gid) and
 * its creator (cuid, cgid), and the kernel lets both users write it (and
 * change its owner to anyone, root included), and members of either group
 * when the group-write bit is set.  So both must pass.
 */
int ipcx__trust_ipc(const char *what, const struct ipc_perm *p, mode_t asked)
{
	int r = trust_user(what, "owned", p->uid, p->gid, asked);
	if (!r)
		r = trust_user(what, "created", p->cuid, p->cgid, asked);
	if (!r)
		r = trust_mode(what, p->gid, p->mode, asked);
	if (!r && p->cgid != p->gid)
		r = trust_mode(what, p->cgid, p->mode, asked);
	return r;
}
