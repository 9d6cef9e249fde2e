/* The broadcast ring's fuzz target, callable from libFuzzer and from the replay driver. */
#ifndef IPCX_FUZZ_BCAST_H
#define IPCX_FUZZ_BCAST_H

#include <stddef.h>
#include <stdint.h>

int ipcx_fuzz_bcast(const uint8_t *data, size_t size);

#endif
