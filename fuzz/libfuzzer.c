/*
 * The fuzz target under libFuzzer (fuzz_NAME, cmake -DIPCX_FUZZ=ON with
 * clang): the same entry point that replay.c drives as a plain test.
 * FUZZ_HEADER and FUZZ_ONE name the target (fuzz/CMakeLists.txt).
 */
#include FUZZ_HEADER

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FUZZ_ONE(data, size); /* the targets take every input: nothing to reject */
	return 0;
}
