/* Fuzz entry points for what ipcx parses from others: URLs and stream frames. */
#ifndef IPCX_FUZZ_PARSE_H
#define IPCX_FUZZ_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Any bytes as a URL, through the parser and every option reader. */
void ipcx_fuzz_url(const uint8_t *data, size_t size);
/* Any bytes as what a peer wrote on a stream, through the frame decoder. */
void ipcx_fuzz_frames(const uint8_t *data, size_t size);

#endif
