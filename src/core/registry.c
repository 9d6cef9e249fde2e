/*
 * The transport registry: a flat table built once from the generated lists
 * (build/gen/transport/registry.c), each entry checked before it is admitted.
 */
#include "core/registry.h"

#include "core/tran.h"
#include "core/url.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>

#define TRAN_MAX 64

static const struct ipcx_tran *table[TRAN_MAX];
static size_t ntable;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/*
 * A transport must name a well-formed, unique scheme, open something, and
 * bring a well-formed option table (at most IPCX__OPTS_MAX, named, unique).
 */
static bool tran_check(const struct ipcx_tran *t)
{
	if (!t->scheme || !*t->scheme || strlen(t->scheme) >= IPCX__SCHEME_MAX)
		return false;
	for (const char *p = t->scheme; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p))
			return false;
	if (!t->listen && !t->dial)
		return false;
	if (ipcx__opts_count(t->options) < 0)
		return false;
	for (size_t i = 0; i < ntable; i++)
		if (strcmp(table[i]->scheme, t->scheme) == 0)
			return false;
	return true;
}

static void build(void)
{
	for (size_t l = 0; ipcx__tran_lists[l]; l++)
		for (size_t i = 0; ipcx__tran_lists[l][i]; i++)
			if (ntable < TRAN_MAX && tran_check(ipcx__tran_lists[l][i]))
				table[ntable++] = ipcx__tran_lists[l][i];
}

const struct ipcx_tran *ipcx__tran_find(const char *scheme)
{
	pthread_once(&once, build);
	for (size_t i = 0; i < ntable; i++)
		if (strcmp(table[i]->scheme, scheme) == 0)
			return table[i];
	return NULL;
}

const struct ipcx_tran *ipcx__tran_at(size_t i)
{
	pthread_once(&once, build);
	return i < ntable ? table[i] : NULL;
}
