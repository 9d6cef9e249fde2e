/*
 * The transport registry: every struct ipcx_tran the build found in
 * src/transport/ (cmake/registry.cmake generates the list from the file
 * names), each checked once before it is admitted: a well-formed, unique
 * scheme, at least one of listen and dial, and a well-formed option table.
 */
#ifndef IPCX_CORE_REGISTRY_H
#define IPCX_CORE_REGISTRY_H

#include "core/tran.h"

#include <stddef.h>

struct ipcx_tran;

/* The transport of a scheme (lower case), or NULL. */
const struct ipcx_tran *ipcx__tran_find(const char *scheme);
/* Iterate over registered transports: i = 0, 1, ... until NULL. */
const struct ipcx_tran *ipcx__tran_at(size_t i);

/* The generated list of every transport file's NULL-terminated list. */
extern const struct ipcx_tran *const *const ipcx__tran_lists[];

#endif
