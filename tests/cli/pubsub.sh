#!/usr/bin/env bash
# ipcx pub / ipcx sub: two subscribers running, three separate pub commands
# one after another reach both of them, each keeping its topics, on a
# shared-memory ring and on sockets; messages from standard input; history
# for a late joiner; ipcx info showing a ring's subscribers and their lag;
# usage errors; and nothing left behind.  Handshakes: sub --ready-fd says
# when it is subscribed, pub --wait N waits for N subscribers.
. "$(dirname "$0")/lib/common.bash"

# start_sub NAME SUB-ARGS...: start `ipcx sub` in the background and wait
# until it is subscribed.  Sets SUB_PID; its output goes to $T/NAME.out.
start_sub() {
	local name=$1
	shift
	rm -f "$T/$name.ready"
	mkfifo "$T/$name.ready"
	"$IPCX" sub --timeout "$GUARD_MS" --ready-fd 3 "$@" 3>"$T/$name.ready" \
		>"$T/$name.out" 2>"$T/$name.err" &
	SUB_PID=$!
	PIDS+=("$SUB_PID")
	local line=
	read -r -t "$GUARD" line <"$T/$name.ready"
	rm -f "$T/$name.ready"
	if [ -z "$line" ]; then
		fail "sub $* did not start: $(cat "$T/$name.err")"
		return 1
	fi
}

pub() {
	run "$IPCX" pub --timeout "$GUARD_MS" "$@"
}

KEY=$(sysv_key)
KEY_HEX=$(printf '0x%08x' "$KEY")
URLS=("shm:/$ABS-ps" "sysvshm:$KEY_HEX" "unix:$T/ps.sock" "unix:@$ABS-ps")
gone() {
	case $1 in
	unix:@*) abstract_gone "${1#unix:@}" ;;
	unix:*) [ ! -e "${1#unix:}" ] ;;
	shm:*) [ ! -e "/dev/shm/${1#shm:/}" ] ;;
	sysvshm:*) ! awk 'NR > 1 { printf "0x%08x\n", $1 }' /proc/sysvipc/shm | grep -qi "^$KEY_HEX" ;;
	esac
}

for url in "${URLS[@]}"; do
	start_sub all "$url" -n 3 || continue
	all_pid=$SUB_PID
	start_sub weather "$url" weather. -n 2 || continue
	weather_pid=$SUB_PID
	# Three publishers, one after another; --wait 2: on sockets the
	# subscribers dial each new publisher, and only then does it publish.
	pub "$url" weather.oslo rain --wait 2
	check "$url: first pub ($ERR)" [ "$RC" -eq 0 ]
	pub "$url" news hello --wait 2
	check "$url: second pub ($ERR)" [ "$RC" -eq 0 ]
	pub "$url" weather.rome 'sun	and wind' --wait 2
	check "$url: third pub ($ERR)" [ "$RC" -eq 0 ]
	wait "$all_pid"
	check "$url: the subscriber to everything got three" [ $? -eq 0 ]
	wait "$weather_pid"
	check "$url: the weather subscriber got two" [ $? -eq 0 ]
	check "$url: TOPIC<TAB>MESSAGE, in order, the tab escaped" \
		[ "$(cat "$T/all.out")" = $'weather.oslo\train\nnews\thello\nweather.rome\tsun\\tand wind' ]
	check "$url: only the weather" \
		[ "$(cat "$T/weather.out")" = $'weather.oslo\train\nweather.rome\tsun\\tand wind' ]
	check "$url: nothing left behind" gone "$url"
done

# ---- standard input, history, info ---------------------------------------------------------

R="shm:/$ABS-hist"
start_sub keep "$R" -n 6 || finish
keep_pid=$SUB_PID
printf 'one\ntwo\nthree\n' | timeout -k 5 "$GUARD" "$IPCX" pub "$R" lines >"$T/run.out" 2>"$T/run.err"
check "pub: one message per line of standard input" [ $? -eq 0 ]
start_sub late "$R" --history 2 -n 2 || finish
wait "$SUB_PID"
check "sub --history 2: the last two lines" [ "$(cat "$T/late.out")" = $'lines\ttwo\nlines\tthree' ]

# A stopped subscriber falls behind: info shows its lag, read from outside.
start_sub stopped "$R" -n 2 || finish
stopped_pid=$SUB_PID
kill -STOP "$stopped_pid"
pub "$R" t a
pub "$R" t b
run "$IPCX" info "$R"
check "info lists the ring's subscribers" grep -q "subscriber *pid $stopped_pid: received 0, lost 0, lag 2" <<<"$OUT"
run "$IPCX" ls --name "$ABS-hist"
check "ls lists them under the ring" grep -q "subscriber pid $stopped_pid" <<<"$OUT"
run "$IPCX" info --json "$R"
check "info --json has them" bash -c "jq -e '.subscribers | length == 2' <<<'$OUT' >/dev/null"
kill -CONT "$stopped_pid"
wait "$stopped_pid"
check "the stopped one, let go, reads its two" [ "$(cat "$T/stopped.out")" = $'t\ta\nt\tb' ]
pub "$R" t c
wait "$keep_pid"
check "the first one got all six" [ "$(wc -l <"$T/keep.out")" -eq 6 ]
check "the ring went with its last subscriber" gone "$R"

# ---- usage ---------------------------------------------------------------------------------

run "$IPCX" pub "shm:/$ABS-x"
check "pub without a topic is a usage error" [ "$RC" -eq 2 ]
run "$IPCX" sub "mq:/$ABS-x" -n 1
check "sub on a queue: exit 1 ($ERR)" [ "$RC" -eq 1 ]
check "... saying which URLs work" grep -q "shm:, sysvshm:" <<<"$ERR"
run "$IPCX" sub "unix:$T/x.sock?history=2" -n 1
check "history= on a socket is refused ($ERR)" [ "$RC" -eq 1 ]

finish
