/*
 * What ls, info and gc share: objects as JSON and as words, and making the
 * POSIX message queues visible (the library never mounts anything; the CLI,
 * run by root, mounts the mqueue file system where Linux expects it).
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <ipcx.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return s[0] < 0xf8 ? n : 0;
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n;
		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, f);
		} else if ((n = utf8_len(p))) {
			fwrite(p, 1, n, f);
			p += n;
		} else {
			/* Not UTF-8 (file names may be any bytes): keep the JSON valid. */
			fprintf(f, "\\u%04x", *p++);
		}
	}
	fputc('"', f);
}

static void json_num(FILE *f, const char *key, int64_t v)
{
	if (v < 0)
		fprintf(f, ", \"%s\": null", key);
	else
		fprintf(f, ", \"%s\": %" PRId64, key, v);
}

void cli_obj_json(FILE *f, const struct ipcx_obj *o)
{
	fprintf(f, "{\"kind\": \"%s\", \"url\": ", ipcx_obj_kind_name(o->kind));
	cli_json_str(f, o->url);
	fputs(", \"name\": ", f);
	cli_json_str(f, o->name);
	if (o->key >= 0)
		fprintf(f, ", \"key\": \"0x%08" PRIx64 "\"", (uint64_t)o->key);
	else
		fputs(", \"key\": null", f);
	json_num(f, "id", o->id);
	json_num(f, "owner_uid", o->uid);
	json_num(f, "gid", o->gid);
	fprintf(f, ", \"mode\": \"%04o\"", o->mode);
	json_num(f, "size", o->size);
	json_num(f, "messages", o->messages);
	json_num(f, "nsems", o->nsems);
	json_num(f, "nattch", o->nattch);
	json_num(f, "ctime", o->ctime);
	json_num(f, "age_s", o->ctime >= 0 && time(NULL) >= o->ctime ? time(NULL) - o->ctime : -1);
	fputs(", \"pids\": [", f);
	for (size_t i = 0; i < o->npids; i++)
		fprintf(f, "%s%d", i ? ", " : "", (int)o->pids[i]);
	fputc(']', f);
	json_num(f, "creator_pid", o->creator > 0 ? o->creator : -1);
	fprintf(f, ", \"creator_alive\": %s, \"ipcx\": %s, \"orphan\": %s",
		o->ipcx ? (o->creator_alive ? "true" : "false") : "null",
		o->ipcx ? "true" : "false", o->orphan ? "true" : "false");
	if (o->has_stats)
		fprintf(f,
			", \"stats\": {\"sent\": %" PRIu64 ", \"received\": %" PRIu64
			", \"dropped\": %" PRIu64 ", \"depth\": %" PRIu64 ", \"peers\": %" PRIu64
			", \"receivers\": %" PRIu64 "}",
			o->stats.sent, o->stats.received, o->stats.dropped, o->stats.depth,
			o->stats.peers, o->stats.receivers);
	else
		fputs(", \"stats\": null", f);
	if (o->nsubs) {
		fputs(", \"subscribers\": [", f);
		for (size_t k = 0; k < o->nsubs; k++)
			fprintf(f,
				"%s{\"pid\": %d, \"received\": %" PRIu64 ", \"lost\": %" PRIu64
				", \"lag\": %" PRIu64 "}",
				k ? ", " : "", (int)o->subs[k].pid, o->subs[k].received,
				o->subs[k].lost, o->subs[k].lag);
		fputc(']', f);
	}
	fputc('}', f);
}

const char *cli_user(int64_t uid, char *buf, size_t cap)
{
	if (uid < 0)
		return "?";
	struct passwd *pw = getpwuid((uid_t)uid);
	if (pw && strlen(pw->pw_name) < cap)
		snprintf(buf, cap, "%s", pw->pw_name);
	else
		snprintf(buf, cap, "%" PRId64, uid);
	return buf;
}

const char *cli_age(int64_t ctime, char *buf, size_t cap)
{
	time_t now = time(NULL);
	if (ctime < 0 || now < ctime)
		return "-";
	int64_t s = now - ctime;
	if (s < 120)
		snprintf(buf, cap, "%" PRId64 "s", s);
	else if (s < 7200)
		snprintf(buf, cap, "%" PRId64 "m", s / 60);
	else if (s < 172800)
		snprintf(buf, cap, "%" PRId64 "h", s / 3600);
	else
		snprintf(buf, cap, "%" PRId64 "d", s / 86400);
	return buf;
}

bool cli_mqueue_prepare(bool mount_ok)
{
	char dir[4096];
	if (ipcx_mqueue_dir(dir, sizeof(dir)) == 0)
		return true;
	if (mount_ok && geteuid() == 0) {
		if ((mkdir("/dev/mqueue", 0755) == 0 || errno == EEXIST) &&
		    mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) == 0) {
			fprintf(stderr, "ipcx: mounted the mqueue file system at /dev/mqueue\n");
			return true;
		}
		fprintf(stderr, "ipcx: cannot mount the mqueue file system at /dev/mqueue: %s\n",
			strerror(errno));
	}
	fprintf(stderr, "ipcx: POSIX message queues are not listed: the mqueue file system is not "
			"mounted (as root: mount -t mqueue none /dev/mqueue)\n");
	return false;
}
