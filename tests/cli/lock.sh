#!/usr/bin/env bash
# ipcx lock: exclusion (proved by handshakes, not timing), shared locks,
# timeouts, interplay with flock(1), exit status, signal forwarding, a killed
# holder, and usage errors.
set -u
B=${IPCX_BIN:?}
D=$(mktemp -d "/tmp/ipcxt-${IPCX_TEST_TAG:?}-lock-XXXXXX")
trap 'rm -rf "$D"' EXIT
F=$D/lockfile
fail() { echo "FAIL: $*"; exit 1; }
GUARD=60

# A FIFO opened read-write never blocks on open; read -t guards the wait.
mkfifo "$D/held" "$D/go"
exec 3<>"$D/held" 4<>"$D/go"
wait_held() { read -r -t $GUARD "$1" <&3 || fail "the holder never reported in (read status $?, after $SECONDS s)"; }

# ---- exclusion ---------------------------------------------------------------
"$B" lock "$F" -- sh -c 'echo a-in >> "$1/log"; echo $$ > "$1/held"; read x < "$1/go"; echo a-out >> "$1/log"' sh "$D" &
A=$!
wait_held apid
[ "$(stat -c %a "$F")" = 600 ] || fail "lock file mode is $(stat -c %a "$F"), want 600"

"$B" lock --timeout 0 "$F" -- true 2>"$D/err"
[ $? -eq 1 ] || fail "a second exclusive lock was granted"
grep -q "timed out" "$D/err" || fail "no 'timed out' in: $(cat "$D/err")"
[ "$(wc -l < "$D/err")" -eq 1 ] || fail "error is not one line: $(cat "$D/err")"
"$B" lock --shared --timeout 0 "$F" -- true 2>/dev/null && fail "a shared lock was granted under an exclusive one"
flock -n "$F" true && fail "flock(1) got the lock ipcx holds"
"$B" lock --timeout 100 "$F" -- true 2>/dev/null
[ $? -eq 1 ] || fail "--timeout 100 did not time out"

# B queues behind A; it can only log while holding the lock, so its line
# must come after A's last one.
"$B" lock "$F" -- sh -c 'echo b-in >> "$1/log"' sh "$D" &
Bpid=$!
echo go >&4
wait $A || fail "holder A failed"
wait $Bpid || fail "waiter B failed"
[ "$(tr '\n' ' ' < "$D/log")" = "a-in a-out b-in " ] || fail "not excluded: $(cat "$D/log")"

# ---- shared locks --------------------------------------------------------------
"$B" lock --shared "$F" -- sh -c 'echo $$ > "$1/held"; read x < "$1/go"' sh "$D" &
A=$!
wait_held apid
"$B" lock --shared --timeout 0 "$F" -- true || fail "two shared locks were refused"
"$B" lock --timeout 0 "$F" -- true 2>/dev/null && fail "exclusive granted under a shared lock"
echo go >&4
wait $A || fail "shared holder failed"

# ---- record locks are a different kind from flock ------------------------------
"$B" lock --record "$F" -- sh -c 'echo $$ > "$1/held"; read x < "$1/go"' sh "$D" &
A=$!
wait_held apid
"$B" lock --record --timeout 0 "$F" -- true 2>/dev/null && fail "two record locks at once"
"$B" lock --timeout 0 "$F" -- true || fail "flock and record locks should not exclude each other"
echo go >&4
wait $A || fail "record holder failed"

# ---- exit status, command not found --------------------------------------------
"$B" lock "$F" -- sh -c 'exit 7'
[ $? -eq 7 ] || fail "exit status of COMMAND not passed on"
"$B" lock "$F" -- "$D/no-such-command" 2>/dev/null
[ $? -eq 127 ] || fail "a missing command should give 127"

# ---- signals are forwarded to the command --------------------------------------
# The command is a signal waiter: it says "ready PID" once SIGTERM is blocked,
# then prints the SIGTERM it receives, with the sender (the forwarding ipcx).
"$B" lock "$F" -- "$B" signal wait TERM --ready >&3 &
A=$!
wait_held word
kill -TERM $A
wait $A || fail "the command did not exit cleanly after SIGTERM"
read -r -t $GUARD line <&3 || fail "no line from the signal waiter"
[ "${line%% *}" = TERM ] && [ "$(echo "$line" | sed 's/.*pid=\([0-9]*\).*/\1/')" = "$A" ] ||
	fail "SIGTERM was not forwarded by ipcx: $line"

# ---- a killed holder: the command keeps the lock; when it dies too, it is free --
"$B" lock "$F" -- sh -c 'echo $$ > "$1/held"; read x < "$1/go"' sh "$D" &
A=$!
wait_held cpid
{ kill -KILL $A; wait $A; } 2>/dev/null
"$B" lock --timeout 0 "$F" -- true 2>/dev/null && fail "the command lost the lock when ipcx died"
kill -KILL "$cpid"
"$B" lock --timeout $((GUARD * 1000)) "$F" -- true || fail "the lock was not released by the kill"

# ---- usage --------------------------------------------------------------------
"$B" lock --help | grep -q "usage: ipcx lock" || fail "--help"
"$B" lock "$F" 2>/dev/null; [ $? -eq 2 ] || fail "missing -- COMMAND should be a usage error"
"$B" lock "$F" -- 2>/dev/null; [ $? -eq 2 ] || fail "missing COMMAND should be a usage error"
"$B" lock -- true 2>/dev/null; [ $? -eq 2 ] || fail "missing PATH should be a usage error"
"$B" lock --timeout x "$F" -- true 2>/dev/null; [ $? -eq 2 ] || fail "bad --timeout"
"$B" lock --bogus "$F" -- true 2>/dev/null; [ $? -eq 2 ] || fail "unknown option"
ln -s "$D/victim" "$D/link"
"$B" lock "$D/link" -- true 2>/dev/null; [ $? -eq 1 ] || fail "locked through a symlink"
[ -e "$D/victim" ] && fail "created through a symlink"
echo "lock: all passed"
