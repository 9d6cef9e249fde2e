#!/usr/bin/env bash
# Help, version, and every kind of bad input: a clear one-line error, exit 1
# for a failure and 2 for a usage error, never a crash or a hang.
. "$(dirname "$0")/lib/common.bash"

# expect RC PATTERN COMMAND...: COMMAND exits RC and says PATTERN on stderr,
# in exactly one line, with nothing on stdout.
expect() {
	local want=$1 pat=$2
	shift 2
	run "$@"
	local what="ipcx ${*:2}"
	if [ "$RC" -ne "$want" ]; then
		fail "$what: exit $RC, want $want (stderr: $ERR)"
	elif [[ $ERR != *"$pat"* ]]; then
		fail "$what: stderr '$ERR' does not say '$pat'"
	elif [ "$(printf '%s\n' "$ERR" | wc -l)" -ne 1 ]; then
		fail "$what: more than one line on stderr: $ERR"
	elif [ -n "$OUT" ]; then
		fail "$what: wrote to stdout: $OUT"
	else
		pass "$what -> $RC: $ERR"
	fi
}

# ---- help and version: stdout, exit 0 -------------------------------------------
# helped RC-WANT PATTERN: the last run exited RC-WANT, with OUT matching the
# glob PATTERN and nothing on stderr.
helped() {
	[ "$RC" -eq "$1" ] && [ -z "$ERR" ] && [[ $OUT == $2 ]]
}
run "$IPCX" --version
check "--version prints 'ipcx X.Y.Z' ($OUT)" helped 0 "ipcx [0-9]*.[0-9]*.[0-9]*"
for verb in send recv tour; do
	for h in --help -h; do
		run "$IPCX" "$verb" "$h"
		check "$verb $h: usage on stdout, exit 0" helped 0 "usage: ipcx $verb*"
	done
done
run "$IPCX" --help
check "--help lists the verbs" helped 0 "*send*recv*tour*"

# ---- usage errors: exit 2 ---------------------------------------------------------
run "$IPCX"
check "no verb: exit 2 with the usage on stderr" eval '[ "$RC" -eq 2 ] && [ -z "$OUT" ] && [[ $ERR == usage:* ]]'
expect 2 "unknown verb 'frobnicate'" "$IPCX" frobnicate
expect 2 "missing URL" "$IPCX" recv
expect 2 "missing URL" "$IPCX" send
expect 2 "missing URL" "$IPCX" recv -n 3
expect 2 "unknown option '--bogus'" "$IPCX" recv --bogus "unix:$T/x"
expect 2 "unknown option '-q'" "$IPCX" send -q "unix:$T/x" hi
expect 2 "unknown option '--bogus'" "$IPCX" tour --bogus
expect 2 "needs a value" "$IPCX" recv "unix:$T/x" -n
expect 2 "needs a value" "$IPCX" send "unix:$T/x" --timeout
expect 2 "COUNT must be" "$IPCX" recv -n 0 "unix:$T/x"
expect 2 "COUNT must be" "$IPCX" recv -n -4 "unix:$T/x"
expect 2 "COUNT must be" "$IPCX" recv -n 3x "unix:$T/x"
expect 2 "COUNT must be" "$IPCX" recv -n 99999999999999999999 "unix:$T/x"
expect 2 "MS must be" "$IPCX" recv --timeout soon "unix:$T/x"
expect 2 "MS must be" "$IPCX" recv --timeout -2 "unix:$T/x"
expect 2 "MS must be" "$IPCX" send --timeout 1.5 "unix:$T/x" hi
expect 2 "FD must be" "$IPCX" recv --ready-fd x "unix:$T/x"
expect 2 "is not open" "$IPCX" recv --ready-fd 77 "unix:$T/x"
expect 2 "one URL only" "$IPCX" recv "unix:$T/x" "unix:$T/y"
expect 2 "give no MESSAGE" "$IPCX" send --raw "unix:$T/x" hi
expect 2 "N must be" "$IPCX" tour --count 0
expect 2 "BYTES must be" "$IPCX" tour --size 1
expect 2 "no scheme 'gopher'" "$IPCX" tour gopher

# ---- bad URLs: exit 1, the message names what is wrong ------------------------------
long=$(printf '/%0107d' 0)    # 108 bytes: one more than sun_path holds
expect 1 "unknown scheme 'gopher'" "$IPCX" recv gopher://x
expect 1 "unknown scheme 'gopher'" "$IPCX" send gopher://x hi
expect 1 "no scheme" "$IPCX" recv justaword
expect 2 "missing URL" "$IPCX" send "" hi
expect 1 "out of range" "$IPCX" recv tcp://127.0.0.1:65536
expect 1 "out of range" "$IPCX" send tcp://127.0.0.1:99999 hi
expect 1 "out of range" "$IPCX" recv udp://127.0.0.1:70000
expect 1 "path longer than 107 bytes" "$IPCX" recv "unix:$long"
expect 1 "path longer than 107 bytes" "$IPCX" send "unix:$long" hi
expect 1 "path longer than 107 bytes" "$IPCX" recv "unixgram:$long"
expect 1 "unknown option 'colour'" "$IPCX" recv "unix:$T/x?colour=red"
expect 1 "unknown option 'colour'" "$IPCX" send "tcp://127.0.0.1:1?colour=red" hi
expect 1 "malformed option" "$IPCX" recv "unix:$T/x?max"
expect 1 "'big' is not a number" "$IPCX" recv "unix:$T/x?max=big"
expect 1 "not an octal mode" "$IPCX" recv "fifo:$T/x?mode=999"
expect 1 "unknown value 'xml'" "$IPCX" recv "tcp://127.0.0.1:0?framing=xml"
expect 1 "absolute path" "$IPCX" recv "fifo:relative/path"
check "no object made by the bad URLs" [ -z "$(ls -A "$T" | grep -v '^run\.')" ]

# ---- control characters: refused before anything is made, echoed escaped -------------
# (--timeout: should a URL with a newline be taken, recv gives up at once.)
expect 1 "cannot listen on unix:$T/ctl\\nx: a control character (\\n, byte" \
	"$IPCX" recv "unix:$T/ctl"$'\n'"x" --timeout 100
expect 1 "cannot dial fifo:$T/ctl\\x01y" "$IPCX" send "fifo:$T/ctl"$'\001'"y" hi
expect 1 "cannot remove shm:/ctl\\x1b[0m" "$IPCX" rm "shm:/ctl"$'\033'"[0m"
expect 2 "unknown verb 'a\\tb'" "$IPCX" "a"$'\t'"b"
expect 2 "unknown option '--x\\ny'" "$IPCX" recv --x$'\n'y "unix:$T/x"
check "no object made by the URLs with control characters" [ -z "$(ls -A "$T" | grep -v '^run\.')" ]
# Nor a creator record (one holding a newline could never be read back, so
# `ipcx gc` would never remove it): look at the bytes of every record.
records_naming() {
	local uid d
	uid=$(id -u)
	for d in "/run/ipcx/$uid" "/run/user/$uid/ipcx" "/tmp/ipcx-$uid"; do
		[ -d "$d" ] && grep -rlF "$1" "$d"
	done
	return 0
}
left=$(records_naming "$T/ctl")
check "no creator record of the URL with a newline ($left)" [ -z "$left" ]
[ -z "$left" ] || rm -f $left

# ---- failures of the system: exit 1, one sentence ---------------------------------------
expect 1 "cannot dial unix:$T/nobody.sock" "$IPCX" send "unix:$T/nobody.sock" hi
# A port that was just free: listen on :0, learn the port, stop listening.
start_recv closed tcp://127.0.0.1:0 -n 1 && stop_recv
expect 1 "connection refused" "$IPCX" send "$RECV_ADDR" hi

# A path that holds something else is never touched.
echo precious >"$T/regular"
expect 1 "cannot listen on unix:$T/regular" "$IPCX" recv "unix:$T/regular"
check "a regular file in the way is left as it was" [ "$(cat "$T/regular")" = precious ]
rm -f "$T/regular"

# A live listener keeps its name: a second recv fails, the first goes on.
start_recv live "unix:$T/live.sock" -n 1
expect 1 "cannot listen on unix:$T/live.sock" "$IPCX" recv "unix:$T/live.sock"
run "$IPCX" send "unix:$T/live.sock" still-here
wait_recv
check "the first listener still works after the second failed" \
	[ "$RECV_RC" -eq 0 -a "$(cat "$T/live.out")" = still-here ]

# recv gives up after --timeout with a sentence, and still removes its object.
expect 1 "no message arrived on unix:$T/quiet.sock within 100 ms" \
	"$IPCX" recv "unix:$T/quiet.sock" --timeout 100 -n 1
check "recv removed its socket after the timeout" [ ! -e "$T/quiet.sock" ]
expect 1 "within 0 ms" "$IPCX" recv "fifo:$T/quiet.fifo" --timeout 0
check "recv removed its FIFO after the timeout" [ ! -e "$T/quiet.fifo" ]

# A message larger than the channel takes: -EMSGSIZE, named.
start_recv big "unix:$T/big.sock?max=16" -n 1
expect 1 "message too large" "$IPCX" send "unix:$T/big.sock?max=16" "seventeen bytes!!"
stop_recv
# A peer over the limit is reported, one sentence, and recv serves the others.
# (recv's stderr is a FIFO we read as it goes; it opens that first, then the
# ready FIFO, in the order we open them.)
mkfifo "$T/over.err" "$T/over.ready"
"$IPCX" recv --timeout "$GUARD_MS" "unix:$T/over.sock?max=16" -n 1 --ready-fd 3 \
	2>"$T/over.err" 3>"$T/over.ready" >"$T/over.out" &
RECV_PID=$!
PIDS+=("$RECV_PID")
exec 4<"$T/over.err"
read -r -t "$GUARD" _ <"$T/over.ready"
run "$IPCX" send "unix:$T/over.sock?max=100" "this message is longer than sixteen bytes"
check "the sender over the listener's limit is not refused by its own ($ERR)" [ "$RC" -eq 0 ]
if wait_stderr_line 4 "over the limit"; then
	pass "recv reports the message over its limit: $LINE"
	check "in one sentence that names the URL and the limit" \
		eval '[[ $LINE == "ipcx: a message over the limit of unix:$T/over.sock?max=16 (16 bytes)"*"; still listening" ]]'
	run "$IPCX" send "unix:$T/over.sock" fits
	check "another peer is still served ($ERR)" [ "$RC" -eq 0 ]
else
	fail "recv said nothing of the message over its limit"
	stop_recv
fi
wait_recv
rest=$(cat <&4)
exec 4<&-
check "recv exits 0 after the message that fits ($rest)" [ "$RECV_RC" -eq 0 ]
check "and printed it, and only it" [ "$(cat "$T/over.out")" = fits ]
check "nothing more on stderr" [ -z "$rest" ]
rm -f "$T/over.err" "$T/over.ready" "$T/over.out"

# A FIFO's largest message is PIPE_BUF less the 4-byte length (atomic writes).
start_recv bigf "fifo:$T/big.fifo" -n 1
head -c 4093 /dev/zero >"$T/big.in"
expect 1 "message too large" bash -c "exec '$IPCX' send --raw 'fifo:$T/big.fifo' < '$T/big.in'"
stop_recv
check "recv removed its FIFO" [ ! -e "$T/big.fifo" ]
printf '%020d' 0 >"$T/big.in"
run bash -c "'$IPCX' send --raw 'unix:$T/nobody.sock' < '$T/big.in'"
check "send --raw to nowhere fails cleanly" [ "$RC" -eq 1 ]

finish
