/*
 * The fuzz target as a plain test, with any compiler: replays every file of
 * the corpus directories given, then inputs made by a fixed pseudo-random
 * generator (so a run is repeatable), through the same entry point that
 * libFuzzer drives.  Exits 0 when none crashed (a crash is the failure).
 *
 *   usage: replay_ring [-n GENERATED] [CORPUS_DIR_OR_FILE...]
 */
/*
 * FUZZ_HEADER and FUZZ_ONE name the target (fuzz/CMakeLists.txt, which
 * also builds libfuzzer.c around the same entry point).
 */
#ifndef FUZZ_ONE
#error "FUZZ_ONE and FUZZ_HEADER name the target: build through fuzz/CMakeLists.txt"
#endif
#include FUZZ_HEADER

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static uint8_t buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	FUZZ_ONE(buf, n);
	return 1;
}

static int replay_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		n += replay_file(p);
	}
	if (d)
		closedir(d);
	return n;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	long generated = 3000;
	int files = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			generated = strtol(argv[++i], NULL, 10);
		else
			files += replay_path(argv[i]);
	}
	static uint8_t buf[8192];
	for (long k = 0; k < generated; k++) {
		size_t n = 1 + next() % (k % 10 == 0 ? sizeof(buf) - 1 : 64);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)next();
		/* Mostly small scribbles over a valid ring; now and then a raw segment. */
		buf[0] = (uint8_t)((buf[0] & ~1u) | (k % 8 != 0));
		FUZZ_ONE(buf, n);
	}
	printf("%s: %d corpus files and %ld generated inputs, no crash\n", argv[0], files, generated);
	return 0;
}
