/* Fuzz entry point for the reader of a FIFO's chunked frames. */
#ifndef IPCX_FUZZ_CHUNKS_H
#define IPCX_FUZZ_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

/* A script of writers' chunks, deaths and stray bytes (see fuzz_chunks.c). */
void ipcx_fuzz_chunks(const uint8_t *data, size_t size);

#endif
