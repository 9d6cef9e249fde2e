#!/usr/bin/env bash
# ipcx talks to plain tools with ?framing=lines: nc (netcat-openbsd) and
# socat, over Unix stream sockets and TCP, in both directions.
. "$(dirname "$0")/lib/common.bash"

for tool in nc socat; do
	if ! command -v "$tool" >/dev/null; then
		fail "$tool is not installed (the Makefile's PACKAGES lists it)"
		finish
	fi
done
has_scheme unix && has_scheme tcp || finish

# start_tool NAME PATTERN COMMAND...: run a listening tool in the background,
# its output in $T/NAME.out, and wait until its stderr says PATTERN (nc -v
# and socat -d -d say when they listen).  Sets TOOL_PID and LINE.
start_tool() {
	local name=$1 pat=$2
	shift 2
	mkfifo "$T/$name.err"
	timeout -k 5 "$GUARD" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	TOOL_PID=$!
	PIDS+=("$TOOL_PID")
	# Keep reading its stderr open until it ends, so that it never meets a
	# closed pipe when it has more to say.
	exec {TOOL_ERR}<"$T/$name.err"
	if ! wait_stderr_line "$TOOL_ERR" "$pat"; then
		fail "$* did not start listening"
		return 1
	fi
}

# end_tool: wait for the tool; sets TOOL_RC.
end_tool() {
	wait "$TOOL_PID"
	TOOL_RC=$?
	exec {TOOL_ERR}<&-
}

# ---- tool -> ipcx recv ------------------------------------------------------

# to_recv NAME URL COMMAND...: COMMAND (a tool) connects to the recv on URL;
# the word ADDR in COMMAND stands for the address recv reports, PORT for its
# port.  It sends two lines, which must arrive as two messages.
to_recv() {
	local name=$1 url=$2
	shift 2
	start_recv "$name" "$url" -n 2 || return
	local port=${RECV_ADDR##*:} path=${RECV_ADDR#*:}
	path=${path%%\?*}
	local cmd=("${@//PORT/$port}")
	cmd=("${cmd[@]//PATH/$path}")
	printf 'hello from %s\nsecond line\n' "$name" | timeout -k 5 "$GUARD" "${cmd[@]}"
	check "$name: the tool sent its lines" [ $? -eq 0 ]
	wait_recv
	check "$name: recv got two messages and exits 0 ($(cat "$T/$name.err"))" [ "$RECV_RC" -eq 0 ]
	check "$name: the lines arrive as they were" \
		[ "$(cat "$T/$name.out")" = "hello from $name"$'\nsecond line' ]
}

to_recv nc-unix "unix:$T/a.sock?framing=lines" nc -N -U PATH
to_recv socat-unix "unix:$T/b.sock?framing=lines" socat -u - UNIX-CONNECT:PATH
to_recv nc-tcp "tcp://127.0.0.1:0?framing=lines" nc -N 127.0.0.1 PORT
to_recv socat-tcp "tcp://127.0.0.1:0?framing=lines" socat -u - TCP:127.0.0.1:PORT
check "recv removed its sockets" [ ! -e "$T/a.sock" -a ! -e "$T/b.sock" ]

# ---- ipcx send -> tool --------------------------------------------------------

# from_send NAME URL: send two messages to URL, where a tool listens; the tool
# must print them as two lines and end when send hangs up.
from_send() {
	local name=$1 url=$2
	run "$IPCX" send --timeout "$GUARD_MS" "$url" "hello to $name" "second line"
	check "$name: send exits 0 ($ERR)" [ "$RC" -eq 0 ]
	end_tool
	check "$name: the tool ends when send hangs up (status $TOOL_RC)" [ "$TOOL_RC" -eq 0 ]
	check "$name: two messages arrive as two lines" \
		[ "$(cat "$T/$name.out")" = "hello to $name"$'\nsecond line' ]
}

if start_tool nc-lunix "Listening on" nc -d -lvU "$T/c.sock"; then
	from_send nc-lunix "unix:$T/c.sock?framing=lines"
fi
if start_tool socat-lunix "listening on" socat -d -d -u "UNIX-LISTEN:$T/d.sock" STDOUT; then
	from_send socat-lunix "unix:$T/d.sock?framing=lines"
fi
# Port 0: the tool reports the port the system chose ("... port" for nc,
# "...:port" for socat).
if start_tool nc-ltcp "Listening on" nc -d -lv 127.0.0.1 0; then
	from_send nc-ltcp "tcp://127.0.0.1:${LINE##* }?framing=lines"
fi
if start_tool socat-ltcp "listening on" socat -d -d -u TCP-LISTEN:0,bind=127.0.0.1 STDOUT; then
	from_send socat-ltcp "tcp://127.0.0.1:${LINE##*:}?framing=lines"
fi

finish
