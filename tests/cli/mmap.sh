#!/usr/bin/env bash
# The mmap: log from the command line: send with nobody receiving, receive
# later, in order, once.
set -u
B=${IPCX_BIN:?}
D=$(mktemp -d "/tmp/ipcxt-${IPCX_TEST_TAG:?}-mmap-XXXXXX")
trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$B" send "mmap:$D/log" a b c || fail "send with no receiver"
[ "$(stat -c %a "$D/log")" = 600 ] || fail "log mode is $(stat -c %a "$D/log"), want 600"
out=$("$B" recv "mmap:$D/log" -n 3 --timeout 10000) || fail "recv failed"
[ "$out" = "$(printf 'a\nb\nc')" ] || fail "got '$out'"
"$B" send "mmap:$D/log" d || fail "second send"
out=$("$B" recv "mmap:$D/log" -n 1 --timeout 10000) || fail "second recv"
[ "$out" = "d" ] || fail "records were taken twice or lost: '$out'"
ln -s "$D/log" "$D/link"
"$B" send "mmap:$D/link" x 2>/dev/null && fail "followed a symlink"
echo ok
