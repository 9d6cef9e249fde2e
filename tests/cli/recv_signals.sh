#!/usr/bin/env bash
# However recv ends -- SIGINT (Ctrl-C), SIGTERM, SIGHUP, a closed standard
# output -- it closes its channel, so the object it created is removed; and a
# stop signal still ends it by that signal, as the shell expects.
. "$(dirname "$0")/lib/common.bash"

# Job control: background jobs get their own process group and keep SIGINT
# (without it, bash starts them with SIGINT ignored, and recv respects that).
set -m

# stopped_by SIG URL GONE-CHECK...: recv on URL, SIG once it listens.
stopped_by() {
	local sig=$1 url=$2
	shift 2
	start_recv sig "$url" || return
	kill -"$sig" "$RECV_PID"
	wait_recv
	local want=$((128 + $(kill -l "$sig")))
	check "SIG$sig ends recv on $url by the signal (status $RECV_RC, want $want)" \
		[ "$RECV_RC" -eq "$want" ]
	check "SIG$sig: recv removed what it made on $url" "$@"
}

for sig in INT TERM HUP; do
	stopped_by "$sig" "unix:$T/s-$sig.sock" [ ! -e "$T/s-$sig.sock" ]
	stopped_by "$sig" "fifo:$T/f-$sig" [ ! -e "$T/f-$sig" ]
	stopped_by "$sig" "unix:@$ABS-$sig" abstract_gone "$ABS-$sig"
done
if has_scheme mq; then
	stopped_by TERM "mq:/$ABS-mq" [ ! -e "/dev/mqueue/$ABS-mq" ]
fi
if has_scheme shm; then
	stopped_by INT "shm:/$ABS-shm" [ ! -e "/dev/shm/$ABS-shm" ]
fi

# A signal after a message is no different: recv has had one message,
# waits for the next, and is stopped.
start_recv mid "unix:$T/mid.sock" -n 5
run "$IPCX" send "unix:$T/mid.sock" first
kill -TERM "$RECV_PID"
wait_recv
check "SIGTERM after a message: recv ends by the signal" [ "$RECV_RC" -eq 143 ]
check "SIGTERM after a message: the socket is gone" [ ! -e "$T/mid.sock" ]

# A signal the parent ignores stays ignored (nohup, background jobs without
# job control): recv goes on, and ends normally.
set +m
mkfifo "$T/ign.ready"
(
	trap '' HUP
	exec "$IPCX" recv "unix:$T/ign.sock" -n 1 --timeout "$GUARD_MS" --ready-fd 3 \
		3>"$T/ign.ready" >"$T/ign.out" 2>"$T/ign.err"
) &
RECV_PID=$!
PIDS+=("$RECV_PID")
read -r -t "$GUARD" RECV_ADDR <"$T/ign.ready"
kill -HUP "$RECV_PID"
run "$IPCX" send "$RECV_ADDR" "after the ignored SIGHUP"
wait_recv
check "an ignored SIGHUP does not stop recv" \
	[ "$RECV_RC" -eq 0 -a "$(cat "$T/ign.out")" = "after the ignored SIGHUP" ]
check "recv removed its socket" [ ! -e "$T/ign.sock" ]

# Standard output closed under recv (a reader that went away): recv says so
# and exits 1 -- not killed by SIGPIPE -- and removes its socket.
mkfifo "$T/pipe.out" "$T/pipe.ready"
# (Redirections open in order: first the output, which this shell opens next,
# then the ready FIFO, read once recv listens.)
"$IPCX" recv "unix:$T/pipe.sock" -n 3 --timeout "$GUARD_MS" --ready-fd 3 \
	>"$T/pipe.out" 3>"$T/pipe.ready" 2>"$T/pipe.err" &
RECV_PID=$!
PIDS+=("$RECV_PID")
exec {reader}<"$T/pipe.out"
read -r -t "$GUARD" RECV_ADDR <"$T/pipe.ready"
run "$IPCX" send "$RECV_ADDR" one
read -r -t "$GUARD" -u "$reader" line
check "the reader got the first message" [ "$line" = one ]
exec {reader}<&-
run "$IPCX" send "$RECV_ADDR" two
wait_recv
check "recv exits 1 when its output is gone (status $RECV_RC)" [ "$RECV_RC" -eq 1 ]
check "it says why: $(cat "$T/pipe.err")" grep -q "cannot write to standard output" "$T/pipe.err"
check "recv removed its socket" [ ! -e "$T/pipe.sock" ]

finish
