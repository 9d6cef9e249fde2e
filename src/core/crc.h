/* CRC-32C (Castagnoli), for checksums of data written by others. */
#ifndef IPCX_CORE_CRC_H
#define IPCX_CORE_CRC_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC-32C over n more bytes: start with crc = 0, feed the
 * previous result back in to checksum data in pieces.
 */
uint32_t ipcx__crc32c(uint32_t crc, const void *data, size_t n);

#endif
