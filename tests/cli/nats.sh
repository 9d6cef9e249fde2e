#!/usr/bin/env bash
# nats:// from the command line, on nats-server processes of the test's own
# (loopback, free ports): the library loads without libnats and says what to
# install; send -> recv; pub -> sub on subjects; a JetStream stream read after it was written; the
# example program moved from shm: to a three-server cluster by its URL alone;
# and ipcx bridge shm: -> nats:// -> unix:, stopped by SIGTERM mid-stream,
# losing nothing it had taken.
. "$(dirname "$0")/lib/common.bash"
. "$(dirname "$0")/lib/nats.bash"
. "$(dirname "$0")/lib/bridge.bash"

BIN=$(dirname "$IPCX")
LIB=$BIN/../lib/libipcx.so

check "libipcx.so does not need libnats to load" \
	bash -c "readelf -d '$LIB' | grep -q NEEDED && ! readelf -d '$LIB' | grep -q libnats"

# Without libnats (a name that is not there): one sentence, naming the package.
run env IPCX_NATS_LIBRARY=/nonexistent/libnats.so.3.4 "$IPCX" send nats://127.0.0.1:4222/x hi
check "without libnats: exit 1" [ "$RC" = 1 ]
check "without libnats: one line that names the package ($ERR)" \
	bash -c "[ \$(wc -l <'$T/run.err') = 1 ] && grep -q \"install Debian's libnats3.4\" '$T/run.err'"
IPCX_NATS_LIBRARY=/nonexistent/libnats.so.3.4 start_recv nolib "unix:$T/nolib.sock" -n 1 &&
	run env IPCX_NATS_LIBRARY=/nonexistent/libnats.so.3.4 "$IPCX" send "unix:$T/nolib.sock" still &&
	wait_recv
check "without libnats, other transports work ($ERR)" [ "$(cat "$T/nolib.out")" = still ]

command -v nats-server >/dev/null || { fail "nats-server is not installed (make deps installs it)"; finish; }
start_nats one -js -sd "$T/nats-one" || finish
S=$NATS_ADDR

start_recv rt "nats://$S/greetings" -n 3 || finish
run "$IPCX" send "nats://$S/greetings" one "two words" three
check "send to a subject exits 0 ($ERR)" [ "$RC" = 0 ]
wait_recv
check "recv on the subject gets them, in order" [ "$(cat "$T/rt.out")" = $'one\ntwo words\nthree' ]

# ipcx pub / ipcx sub on subjects (docs/pubsub.md, "NATS"): two subscribers,
# three separate publishers; a topic is a subject under the URL's.
# start_psub NAME SUB-ARGS...: ipcx sub in the background, subscribed (its
# --ready-fd said so) when this returns.  Sets PSUB_PID.
start_psub() {
	local name=$1 line=
	shift
	mkfifo "$T/$name.ready"
	"$IPCX" sub --timeout "$GUARD_MS" --ready-fd 3 "$@" 3>"$T/$name.ready" \
		>"$T/$name.out" 2>"$T/$name.err" &
	PSUB_PID=$!
	PIDS+=("$PSUB_PID")
	read -r -t "$GUARD" line <"$T/$name.ready"
	[ -n "$line" ] || { fail "sub $* did not start: $(cat "$T/$name.err")"; return 1; }
}
PS="nats://$S/ipcxt.news"
start_psub psall "$PS" -n 3 && psall=$PSUB_PID &&
	start_psub psweather "$PS" weather. -n 2 && psweather=$PSUB_PID || finish
run "$IPCX" pub --timeout "$GUARD_MS" "$PS" weather.oslo rain
check "pub on a subject exits 0 ($ERR)" [ "$RC" = 0 ]
run "$IPCX" pub --timeout "$GUARD_MS" "$PS" news hello
check "a second pub exits 0 ($ERR)" [ "$RC" = 0 ]
run "$IPCX" pub --timeout "$GUARD_MS" "$PS" weather.rome $'sun\tand wind'
check "a third pub exits 0 ($ERR)" [ "$RC" = 0 ]
wait "$psall"
check "the subscriber to every topic got three ($(cat "$T/psall.err"))" [ $? = 0 ]
wait "$psweather"
check "the weather subscriber got two ($(cat "$T/psweather.err"))" [ $? = 0 ]
check "TOPIC<TAB>MESSAGE, in order" \
	[ "$(cat "$T/psall.out")" = $'weather.oslo\train\nnews\thello\nweather.rome\tsun\\tand wind' ]
check "only the weather" \
	[ "$(cat "$T/psweather.out")" = $'weather.oslo\train\nweather.rome\tsun\\tand wind' ]
run "$IPCX" pub "$PS?policy=block" news x
check "pub policy=block on a subject: exit 1, and why ($ERR)" \
	eval '[ "$RC" = 1 ] && [[ $ERR == *"policy=drop"* ]]'
run "$IPCX" pub "$PS" 'two words' x
check "pub of a topic NATS cannot route: exit 1 ($ERR)" \
	eval '[ "$RC" = 1 ] && [[ $ERR == *"blanks"* ]]'

# RPC on a subject: ipcx serve / ipcx call (docs/rpc.md), and a subject nobody serves.
mkfifo "$T/serve.ready"
"$IPCX" serve --ready-fd 3 "nats://$S/upper" -- tr a-z A-Z 3>"$T/serve.ready" 2>"$T/serve.err" &
SERVE=$!
PIDS+=("$SERVE")
read -r -t "$GUARD" serve_addr <"$T/serve.ready"
check "serve gives an address to dial, with reply=1 ($serve_addr)" \
	[ "$serve_addr" = "nats://$S/upper?reply=1" ]
run "$IPCX" call "nats://$S/upper" hello
check "call on a subject gets the reply ($ERR)" [ "$OUT" = HELLO ]
run "$IPCX" call --timeout "$GUARD_MS" "nats://$S/nobody" hello
check "a call nobody serves fails at once, not at its timeout ($ERR)" \
	eval '[ "$RC" = 1 ] && [[ $ERR != *"timed out"* ]]'
kill -TERM "$SERVE"
wait "$SERVE"
serve_rc=$?
check "serve ends by the SIGTERM that stopped it ($serve_rc: $(cat "$T/serve.err"))" \
	[ "$serve_rc" = 143 ]

# JetStream: sent while nobody listens, received by a listener started later.
run "$IPCX" send "nats://$S/orders?stream=ipcxt_orders" a b c
check "send to a stream exits 0 ($ERR)" [ "$RC" = 0 ]
run "$IPCX" recv "nats://$S/orders?stream=ipcxt_orders" -n 3 --timeout "$GUARD_MS"
check "a later listener of the stream gets all three ($ERR)" [ "$OUT" = $'a\nb\nc' ]

# docs/nats.md: the same program on a ring and on a cluster, by its URL.
start_cluster || finish
run "$BIN/example_jobs" "shm:/ipcxt-$TAG-$$-jobs"
check "example_jobs on shm: ($ERR)" [ "$RC" = 0 ]
on_shm=$OUT
run "$BIN/example_jobs" "nats://$CLUSTER/ipcxt.jobs"
check "example_jobs on a three-server cluster ($ERR)" [ "$RC" = 0 ]
check "both say the same ($on_shm / $OUT)" [ "$OUT" = "$on_shm" ]

# ---- ipcx bridge: shm: -> nats:// -> unix:, SIGTERM mid-stream ------------------

RING="shm:/ipcxt-$TAG-$$-relay"
# The last receiver writes to a FIFO that we read as it goes: the test
# counts lines as they come, no polling.  Open order: its --ready-fd, then
# its stdout (bash opens them left to right).
mkfifo "$T/final.ready" "$T/final.out"
"$IPCX" recv --timeout "$GUARD_MS" "unix:$T/final.sock" --ready-fd 3 3>"$T/final.ready" \
	>"$T/final.out" 2>"$T/final.err" &
FINAL=$!
PIDS+=("$FINAL")
exec {ready}<"$T/final.ready" {lines}<"$T/final.out"
read -r -t "$GUARD" -u "$ready" _ || fail "the last recv did not start: $(cat "$T/final.err")"
exec {ready}<&-

# Core NATS has no flow control: a listener that falls behind loses what
# its queue cannot hold (reported, docs/nats.md "Falling behind").  Under load
# bridge 2 can fall behind bridge 1 by more than the default 65536 messages;
# its queue holds the whole run, so that what is checked is the bridges.
start_bridge b2 "nats://$S/relay?pending=200000" "unix:$T/final.sock" && B2=$BRIDGE_PID || finish
start_bridge b1 "$RING" "nats://$S/relay" && B1=$BRIDGE_PID || finish
seq 1 200000 | "$IPCX" send --timeout "$GUARD_MS" "$RING" 2>"$T/prod.err" &
PROD=$!
PIDS+=("$PROD")

# next_lines N: read lines up to number N from the last receiver; each must be
# the next number.  Sets GOT.
GOT=0
next_lines() {
	local line
	while [ "$GOT" -lt "$1" ] && read -r -t "$GUARD" -u "$lines" line; do
		GOT=$((GOT + 1))
		[ "$line" = "$GOT" ] || { fail "line $GOT is '$line'"; return 1; }
	done
	[ "$GOT" -ge "$1" ]
}

check "the relay runs: 2000 messages went through shm: -> nats:// -> unix:" next_lines 2000
kill -USR1 "$B1"
kill -TERM "$B1"
wait "$B1"
b1_rc=$?
taken=$(counter taken "$T/b1.err")
forwarded=$(counter forwarded "$T/b1.err")
check "bridge 1 exits 0 on SIGTERM ($(cat "$T/b1.err"))" [ "$b1_rc" = 0 ]
check "bridge 1 printed its counters on SIGUSR1 and at the end" \
	[ "$(grep -c 'ipcx bridge: ' "$T/b1.err")" -ge 2 ]
check "bridge 1 forwarded all it had taken ($taken taken, $forwarded forwarded)" \
	[ -n "$taken" ] && [ "$taken" = "$forwarded" ] && [ "$taken" -ge 2000 ]
check "the last receiver gets exactly those $forwarded, in order" next_lines "${forwarded:-0}"
kill -TERM "$PROD" 2>/dev/null
wait "$PROD" 2>/dev/null
kill -TERM "$B2"
wait "$B2"
check "bridge 2 exits 0 on SIGTERM ($(cat "$T/b2.err"))" [ "$?" = 0 ]
check "bridge 2 took and forwarded the same $forwarded" \
	[ "$(counter taken "$T/b2.err")" = "$forwarded" ] && [ "$(counter forwarded "$T/b2.err")" = "$forwarded" ]
kill -TERM "$FINAL"
wait "$FINAL" 2>/dev/null
extra=$(cat <&"$lines" | wc -l)
exec {lines}<&-
check "and nothing more ($extra extra lines)" [ "$extra" = 0 ]
check "the ring is gone with bridge 1" [ ! -e "/dev/shm/ipcxt-$TAG-$$-relay" ]
finish
