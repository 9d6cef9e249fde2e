#!/usr/bin/env bash
# ipcx sem: create, post, wait (with timeouts), value, remove, on POSIX named
# semaphores and System V sets; modes; exclusive creation; usage errors.
set -u
B=${IPCX_BIN:?}
TAG=${IPCX_TEST_TAG:?}
NAME="ipcxt-$TAG-$$-clisem"
. "$(dirname "$0")/lib/sysvkey.bash"
KEY=$(sysv_key_of "$TAG" $(($$ * 13 + 40503)))
cleanup() {
	rm -f "/dev/shm/sem.$NAME"
	"$B" sem remove "sysvsem:$KEY" 2>/dev/null
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

for URL in "sem:/$NAME" "sysvsem:$KEY"; do
	"$B" sem create "$URL" --value 2 || fail "$URL: create"
	"$B" sem create "$URL" 2>/dev/null; [ $? -eq 1 ] || fail "$URL: created twice"
	[ "$("$B" sem value "$URL")" = 2 ] || fail "$URL: value after create"
	"$B" sem wait "$URL" --timeout 0 || fail "$URL: wait 1"
	"$B" sem wait "$URL" || fail "$URL: wait 2"
	# Each CLI command is a process: a unit taken must stay taken after it exits.
	[ "$("$B" sem value "$URL")" = 0 ] || fail "$URL: units came back after the CLI exited"
	"$B" sem wait "$URL" --timeout 0 2>/dev/null; [ $? -eq 1 ] || fail "$URL: wait on 0"
	"$B" sem wait "$URL" --timeout 50 2>/dev/null; rc=$?
	[ $rc -eq 1 ] || fail "$URL: --timeout 50 gave $rc"
	"$B" sem post "$URL" --count 3 || fail "$URL: post"
	[ "$("$B" sem value "$URL")" = 3 ] || fail "$URL: value after post"
	"$B" sem remove "$URL" || fail "$URL: remove"
	"$B" sem value "$URL" 2>/dev/null; [ $? -eq 1 ] || fail "$URL: still there after remove"
	"$B" sem remove "$URL" 2>/dev/null; [ $? -eq 1 ] || fail "$URL: removed twice"
done

# Modes: 0600 unless told.
"$B" sem create "sem:/$NAME" || fail "create"
[ "$(stat -c %a "/dev/shm/sem.$NAME")" = 600 ] || fail "mode not 0600"
"$B" sem remove "sem:/$NAME"
"$B" sem create "sem:/$NAME?mode=0644" || fail "create with mode"
[ "$(stat -c %a "/dev/shm/sem.$NAME")" = 644 ] || fail "explicit mode not exact"
"$B" sem remove "sem:/$NAME"
"$B" sem create "sysvsem:$KEY?mode=0640" || fail "sysv create with mode"
ipcs -s | awk -v k="$KEY" '$1 == k { print $4 }' | grep -qx 640 || fail "sysv mode not 640"
"$B" sem remove "sysvsem:$KEY"

# A waiter blocks until someone posts.
"$B" sem create "sem:/$NAME" || fail "create"
"$B" sem wait "sem:/$NAME" --timeout 60000 &
W=$!
"$B" sem post "sem:/$NAME"
wait $W || fail "the waiter was not woken"
"$B" sem remove "sem:/$NAME"

# Errors and usage.
"$B" sem --help | grep -q "usage: ipcx sem" || fail "--help"
"$B" sem 2>/dev/null; [ $? -eq 2 ] || fail "no command"
"$B" sem frob "sem:/$NAME" 2>/dev/null; [ $? -eq 2 ] || fail "unknown command"
"$B" sem wait 2>/dev/null; [ $? -eq 2 ] || fail "no URL"
"$B" sem wait "sem:/$NAME" --count 2 2>/dev/null; [ $? -eq 2 ] || fail "--count on wait"
"$B" sem create "sem:/$NAME" --value -1 2>/dev/null; [ $? -eq 2 ] || fail "negative value"
"$B" sem create "sem:/a/b" 2>/dev/null; [ $? -eq 1 ] || fail "bad name accepted"
"$B" sem value "sem:/$NAME" 2>&1 >/dev/null | grep -q "^ipcx: " || fail "error format"
echo "sem: all passed"
