#!/usr/bin/env bash
# ipcx bridge between unix: sockets (no server needed): a message DST
# refuses for a while is tried again, DST dialled anew, and reaches the
# next listener; one DST can never take (over its max=) is reported and the
# bridge goes on; one DST does not take within --timeout is reported and
# ends the bridge with exit 1.  Never a silent drop.  shm: -> nats:// ->
# unix: and a SIGTERM mid-stream: tests/cli/nats.sh.
. "$(dirname "$0")/lib/common.bash"
. "$(dirname "$0")/lib/bridge.bash"

# ---- retried until a listener is back; too long for DST; stopped -------------------

SRC=unix:$T/src.sock
DST=unix:$T/dst.sock
start_recv d1 "$DST" -n 1 || finish
# The bridge's stderr comes through a FIFO that the test reads as it goes.
# Open order: its --ready-fd, then its stderr (bash opens them left to right).
mkfifo "$T/br.ready" "$T/br.err"
"$IPCX" bridge "$SRC" "$DST?max=16" --timeout "$GUARD_MS" --ready-fd 3 3>"$T/br.ready" \
	2>"$T/br.err" &
B=$!
PIDS+=("$B")
exec {bready}<"$T/br.ready" {berr}<"$T/br.err"
read -r -t "$GUARD" -u "$bready" _ || { fail "the bridge did not start"; finish; }
exec {bready}<&-

run "$IPCX" send "$SRC" one
wait_recv
check "the first listener got the first message ($(cat "$T/d1.err"))" [ "$(cat "$T/d1.out")" = one ]

# The first listener has gone: the bridge takes "two" and tries DST again and
# again.  Ask for its counters until they say so (each SIGUSR1 is answered by
# a line).
run "$IPCX" send "$SRC" two
waiting=0
for _ in $(seq 1000); do
	kill -USR1 "$B"
	read -r -t "$GUARD" -u "$berr" line || break
	case $line in *"2 taken, 1 forwarded, 0 failed"*) waiting=1; break ;; esac
done
check "the bridge holds the message while DST has no listener ($line)" [ "$waiting" = 1 ]

start_recv d2 "$DST" -n 2 || finish
run "$IPCX" send "$SRC" "longer than sixteen bytes"
run "$IPCX" send "$SRC" four
wait_recv
check "the next listener gets the held message, then the next that fits ($(cat "$T/d2.err"))" \
	[ "$(cat "$T/d2.out")" = $'two\nfour' ]
kill -TERM "$B"
wait "$B"
rc=$?
errs=$(cat <&"$berr")
exec {berr}<&-
check "stopped after a failed message, the bridge exits 1 ($rc)" [ "$rc" = 1 ]
check "the message over DST's max= is reported ($errs)" \
	grep -q "message 3 (25 bytes) not forwarded to $DST?max=16, whose limit is 16 bytes" <<<"$errs"
check "the counters: 4 taken, 3 forwarded, 1 failed, 1 redial" \
	grep -q "4 taken, 3 forwarded, 1 failed, 0 losses reported by the source, 1 redials (stopped)" \
	<<<"$errs"

# ---- not taken within --timeout: reported, exit 1 ----------------------------------

SRC=unix:$T/src2.sock
DST=unix:$T/dst2.sock
start_recv d3 "$DST" -n 1 || finish
start_bridge br2 "$SRC" "$DST" --timeout 500 || finish
B=$BRIDGE_PID
run "$IPCX" send "$SRC" a
wait_recv
run "$IPCX" send "$SRC" b
wait "$B"
rc=$?
check "a message DST never took ends the bridge with exit 1 ($rc)" [ "$rc" = 1 ]
check "and is reported ($(cat "$T/br2.err"))" \
	grep -q "message 2 (1 bytes) not forwarded to $DST within 500 ms" "$T/br2.err"
check "the counters: 2 taken, 1 forwarded, 1 failed" \
	[ "$(counter taken "$T/br2.err")/$(counter forwarded "$T/br2.err")/$(counter failed "$T/br2.err")" = 2/1/1 ]
finish
