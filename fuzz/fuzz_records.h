/* Fuzz entry point for the record file (file:): what other writers left in it. */
#ifndef IPCX_FUZZ_RECORDS_H
#define IPCX_FUZZ_RECORDS_H

#include <stddef.h>
#include <stdint.h>

/*
 * The input is a script that builds a record file: whole records, records
 * cut short (a writer killed mid-record), and raw bytes; then a reader
 * follows the file with buffers of changing sizes.
 */
void ipcx_fuzz_records(const uint8_t *data, size_t size);

#endif
