/* The ring fuzz target, callable from libFuzzer and from the replay driver. */
#ifndef IPCX_FUZZ_RING_H
#define IPCX_FUZZ_RING_H

#include <stddef.h>
#include <stdint.h>

int ipcx_fuzz_ring(const uint8_t *data, size_t size);

#endif
