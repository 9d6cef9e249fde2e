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
check "the installed CLI runs" bash -c "'$prefix/bin/ipcx' --version | grep -q '^ipcx '"
finish
