#!/usr/bin/env bash
# ipcx signal: send with a value; wait and print; real-time signals queue in
# order; standard signals may merge; timeouts; usage errors.
set -u
B=${IPCX_BIN:?}
D=$(mktemp -d "/tmp/ipcxt-${IPCX_TEST_TAG:?}-signal-XXXXXX")
trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
GUARD=60

# Start a waiter whose output goes to a FIFO; its first line says it is ready.
mkfifo "$D/out"
exec 3<>"$D/out"
start_waiter() {
	"$B" signal wait "$@" --ready --timeout $((GUARD * 1000)) >&3 &
	W=$!
	read -r -t $GUARD word pid <&3 || fail "the waiter never got ready"
	[ "$word" = ready ] && [ "$pid" = "$W" ] || fail "bad ready line: $word $pid"
}
next_line() { read -r -t $GUARD line <&3 || fail "no line from the waiter"; echo "$line"; }

# A value travels with a real-time signal; several queue, in order.
start_waiter RTMIN+3 --count 5
for v in 10 11 12 13 14; do
	"$B" signal "$W" RTMIN+3 --value $v || fail "send $v"
done
for v in 10 11 12 13 14; do
	line=$(next_line)
	[ "$line" = "RTMIN+3 pid=${line#*pid=}" ] || fail "bad line: $line"
	case "$line" in *" value=$v") ;; *) fail "want value=$v in order, got: $line" ;; esac
done
wait $W || fail "waiter failed"

# Standard signals may merge: of 3 sent, at least one arrives.  The waiter
# leaves after the first it takes, so later sends may find it gone.
start_waiter USR1 --count 1
"$B" signal "$W" SIGUSR1 --value 1 || fail "send USR1"
for v in 2 3; do "$B" signal "$W" SIGUSR1 --value $v 2>/dev/null; done
line=$(next_line)
case "$line" in "USR1 pid="*" value="[123]) ;; *) fail "bad USR1 line: $line" ;; esac
wait $W || fail "USR1 waiter failed"

# Names and numbers: TERM by number reaches a plain process, which dies of it.
# The signal goes only after the process has said it runs: a forked shell that
# has not yet exec'd would run this script's EXIT trap when killed.
sh -c 'echo ready $$ >&3; exec sleep 1000' &
S=$!
read -r -t $GUARD word pid <&3 || fail "sleeper never started"
"$B" signal $S 15 || fail "signal by number"
wait $S
[ $? -eq 143 ] || fail "sleep did not die of SIGTERM"

# Timeouts and errors.
"$B" signal wait USR2 --timeout 30 2>"$D/err"
[ $? -eq 1 ] || fail "wait did not time out"
grep -q "timed out" "$D/err" || fail "no 'timed out': $(cat "$D/err")"
"$B" signal $S TERM 2>/dev/null; [ $? -eq 1 ] || fail "signalling a dead process"
"$B" signal --help | grep -q "usage: ipcx signal" || fail "--help"
"$B" signal 2>/dev/null; [ $? -eq 2 ] || fail "no arguments"
"$B" signal $$ NOSUCH 2>/dev/null; [ $? -eq 2 ] || fail "bad signal name"
"$B" signal abc TERM 2>/dev/null; [ $? -eq 2 ] || fail "bad pid"
"$B" signal $$ USR1 --value x 2>/dev/null; [ $? -eq 2 ] || fail "bad value"
"$B" signal wait KILL 2>/dev/null; [ $? -eq 1 ] || fail "waiting for SIGKILL"
"$B" signal wait 2>/dev/null; [ $? -eq 2 ] || fail "wait for nothing"
echo "signal: all passed"
