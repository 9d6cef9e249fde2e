#!/usr/bin/env bash
# make install: the header, the libraries, the CLI and ipcx.pc land in a
# prefix, and a program built with pkg-config against them runs.
source "$(dirname "$0")/lib/common.bash"

die() {
	fail "$@"
	finish
}

build=$(dirname "$(dirname "$IPCX")")
src=$(cd "$(dirname "$0")/../.." && pwd)
prefix=$T/prefix
if ! cmake --install "$build" --prefix "$prefix" >"$T/install.log" 2>&1; then
	cat "$T/install.log"
	die "cmake --install failed"
fi
for f in include/ipcx.h bin/ipcx; do
	[ -e "$prefix/$f" ] || fail "installed tree lacks $f"
done
pc=$(find "$prefix" -name ipcx.pc | head -1)
[ -n "$pc" ] || die "no ipcx.pc installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir ipcx)
# A sanitizer build's library needs its runtime first: build hello the same way.
san=
if ldd "$libdir/libipcx.so" 2>/dev/null | grep -q libasan; then
	san="-fsanitize=address,undefined"
fi
cc $san -o "$T/hello" "$src/examples/hello.c" $(pkg-config --cflags --libs ipcx) \
	-Wl,-rpath,"$libdir" || die "cannot build against the installed ipcx"
out=$(timeout "$GUARD" "$T/hello") || die "the installed hello failed"
check "an installed program says hello" [ "$out" = hello ]

# The CMake package: a consumer project finds ipcx by find_package alone and
# links the shared library, then the static one.
mkdir -p "$T/consumer"
cp "$src/examples/hello.c" "$T/consumer/"
cat >"$T/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer LANGUAGES C)
find_package(ipcx 0.1 CONFIG REQUIRED)
add_executable(hello_shared hello.c)
target_link_libraries(hello_shared PRIVATE ipcx::ipcx)
add_executable(hello_static hello.c)
target_link_libraries(hello_static PRIVATE ipcx::ipcx_static)
CMAKE
if cmake -S "$T/consumer" -B "$T/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >"$T/consumer.log" 2>&1 &&
	cmake --build "$T/consumer/build" >>"$T/consumer.log" 2>&1; then
	for kind in shared static; do
		out=$(timeout "$GUARD" "$T/consumer/build/hello_$kind")
		check "a CMake consumer linked to the $kind library says hello" [ "$out" = hello ]
	done
	check "the shared consumer uses the installed library" \
		bash -c "ldd '$T/consumer/build/hello_shared' | grep -q '$prefix/'"
	check "the static consumer needs no libipcx.so" \
		bash -c "! ldd '$T/consumer/build/hello_static' | grep -q libipcx"
else
	cat "$T/consumer.log"
	fail "a CMake project cannot find_package(ipcx) in the installed prefix"
fi
check "the installed CLI runs" bash -c "'$prefix/bin/ipcx' --version | grep -q '^ipcx '"
finish
