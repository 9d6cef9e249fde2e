#!/usr/bin/env bash
# ipcx serve / ipcx call: request/reply from the shell, over every RPC
# transport; a CMD that fails, one that hangs past the caller's timeout,
# several CMDs at once (-j), a server stopped with calls pending, and what
# each leaves behind (nothing).  Handshakes: serve --ready-fd says when it
# serves and where; two CMDs meet on a FIFO.
. "$(dirname "$0")/lib/common.bash"

# start_serve NAME SERVE-ARGS...: start `ipcx serve` in the background and wait
# until it serves.  Sets SERVE_PID and SERVE_ADDR; its stderr goes to $T/NAME.err.
start_serve() {
	local name=$1
	shift
	rm -f "$T/$name.ready"
	mkfifo "$T/$name.ready"
	"$IPCX" serve --ready-fd 3 "$@" 3>"$T/$name.ready" >"$T/$name.out" 2>"$T/$name.err" &
	SERVE_PID=$!
	PIDS+=("$SERVE_PID")
	SERVE_ADDR=
	read -r -t "$GUARD" SERVE_ADDR <"$T/$name.ready"
	rm -f "$T/$name.ready"
	if [ -z "$SERVE_ADDR" ]; then
		fail "serve $* did not start: $(cat "$T/$name.err")"
		return 1
	fi
}

# stop_serve: SIGTERM, as a service manager would; sets SERVE_RC.
stop_serve() {
	kill -TERM "$SERVE_PID" 2>/dev/null
	wait "$SERVE_PID"
	SERVE_RC=$?
}

# call ARGS...: `ipcx call` under the guard; sets RC, OUT, ERR.
call() {
	run "$IPCX" call "$@"
}

# answered WANT: the last call exited 0 and printed WANT.
answered() {
	[ "$RC" -eq 0 ] && [ "$OUT" = "$1" ]
}

# said PATTERN: the last command's stderr matches PATTERN.
said() {
	grep -q "$1" <<<"$ERR"
}

# pid_gone FILE: the process whose pid FILE holds has gone.
pid_gone() {
	! kill -0 "$(cat "$1")" 2>/dev/null
}

# The transports: each with a check that what serve made is gone after it.
KEY=$(sysv_key)
KEY_HEX=$(printf '0x%08x' "$KEY")
URLS=("unix:$T/s.sock" "unix:@$ABS-rpc" "unixpacket:$T/p.sock" "tcp://127.0.0.1:0"
      "shm:/$ABS-rpc" "sysvshm:$KEY_HEX")
gone() {
	case $1 in
	unix:@*) abstract_gone "${1#unix:@}" ;;
	unix:* | unixpacket:*) [ ! -e "${1#*:}" ] ;;
	shm:*) ! ls /dev/shm | grep -q "^${1#shm:/}" ;;
	sysvshm:*) ! awk 'NR > 1 { printf "0x%08x\n", $1 }' /proc/sysvipc/shm | grep -qi "^$KEY_HEX" ;;
	*) true ;;
	esac
}

for url in "${URLS[@]}"; do
	start_serve echo --echo "$url" || continue
	addr=$SERVE_ADDR
	call --timeout "$GUARD_MS" "$addr" "hello there"
	check "$url: --echo answers with the request ($ERR)" answered "hello there"
	head -c 3000 /dev/urandom >"$T/blob"
	timeout -k 5 "$GUARD" "$IPCX" call --timeout "$GUARD_MS" "$addr" <"$T/blob" >"$T/blob.back"
	check "$url: a binary payload from standard input comes back unchanged" cmp -s "$T/blob" "$T/blob.back"
	stop_serve
	check "$url: serve stopped by SIGTERM ends by it (status $SERVE_RC)" [ "$SERVE_RC" -eq 143 ]
	check "$url: serve removed what it created" gone "$url"
done

# A CMD answers: its standard output is the reply.
start_serve upper "unix:$T/upper.sock" -- tr a-z A-Z && {
	call --timeout "$GUARD_MS" "$SERVE_ADDR" "make me loud"
	check "CMD's output is the reply ($ERR)" answered "MAKE ME LOUD"
	stop_serve
}

# A CMD that fails is an error reply: exit 1 and one sentence that says so.
start_serve failing "shm:/$ABS-fail" -- sh -c 'cat >/dev/null; exit 3' && {
	call --timeout "$GUARD_MS" "$SERVE_ADDR" x
	check "a failing CMD: call exits 1 (got $RC)" [ "$RC" -eq 1 ]
	check "a failing CMD: the sentence names its status ($ERR)" said "exited with status 3"
	check "a failing CMD: one line on stderr" [ "$(wc -l <<<"$ERR")" -eq 1 ]
	check "a failing CMD: nothing on stdout" [ -z "$OUT" ]
	stop_serve
}

# A CMD that hangs past the caller's timeout: call gives up, exit 1; with -j 2
# the server still answers the next call meanwhile; stopping ends the hung CMD.
start_serve hang -j 2 "unix:$T/hang.sock" -- sh -c 'read x; [ "$x" = hang ] && echo $$ > "$0" && exec sleep 600; echo "$x"' "$T/hang.pid" && {
	call --timeout 300 "$SERVE_ADDR" hang
	check "a hanging CMD: call exits 1 after its timeout (got $RC)" [ "$RC" -eq 1 ]
	check "a hanging CMD: the sentence says so ($ERR)" said "no reply from .* within 300 ms"
	check "a hanging CMD: one line on stderr" [ "$(wc -l <<<"$ERR")" -eq 1 ]
	check "a hanging CMD: nothing on stdout" [ -z "$OUT" ]
	call --timeout "$GUARD_MS" "$SERVE_ADDR" next
	check "the other job answers meanwhile ($ERR)" answered next
	stop_serve
	check "the hung CMD is ended with the server" pid_gone "$T/hang.pid"
}

# -j 2 runs two CMDs at once: the first waits on a FIFO that only the second writes.
mkfifo "$T/meet"
start_serve jobs -j 2 "unix:$T/jobs.sock" -- sh -c 'read x; if [ "$x" = first ]; then cat "$0"; else echo met > "$0"; fi' "$T/meet" && {
	timeout -k 5 "$GUARD" "$IPCX" call --timeout "$GUARD_MS" "$SERVE_ADDR" first >"$T/first.out" 2>&1 &
	first=$!
	call --timeout "$GUARD_MS" "$SERVE_ADDR" second
	check "-j 2: the second CMD runs while the first waits ($ERR)" [ "$RC" -eq 0 ]
	wait "$first"
	check "-j 2: the first CMD got what the second wrote" [ "$(cat "$T/first.out")" = met ]
	stop_serve
}

# Stopped with a call pending: the caller learns at once (its timeout is the guard).
mkfifo "$T/started"
start_serve pending "shm:/$ABS-pending" -- sh -c 'echo started > "$0"; exec sleep 600' "$T/started" && {
	timeout -k 5 "$GUARD" "$IPCX" call --timeout "$GUARD_MS" "$SERVE_ADDR" x >/dev/null 2>"$T/pending.err" &
	caller=$!
	# The CMD runs once the call is taken; it says so, then the server is stopped.
	read -r -t "$GUARD" _ <"$T/started"
	stop_serve
	wait "$caller"
	rc=$?
	check "a pending call fails when its server stops (exit $rc)" [ "$rc" -eq 1 ]
	check "... saying the server went away ($(cat "$T/pending.err"))" grep -q "went away" "$T/pending.err"
	check "the server's ring is gone" gone "shm:/$ABS-pending"
}

# Two servers on one ring: --join adds a worker; each call is answered once.
start_serve first --echo "shm:/$ABS-join" && {
	first_pid=$SERVE_PID
	start_serve second --join --echo "shm:/$ABS-join" && {
		ok=0
		for i in $(seq 1 20); do
			call --timeout "$GUARD_MS" "shm:/$ABS-join" "n$i"
			answered "n$i" && ok=$((ok + 1))
		done
		check "--join: 20 calls answered with two workers ($ok)" [ "$ok" -eq 20 ]
		stop_serve
	}
	SERVE_PID=$first_pid
	stop_serve
	check "--join: the ring goes with its first server" gone "shm:/$ABS-join"
}

# No server; usage errors.
call --timeout 1000 "unix:$T/nobody.sock" x
check "no server: exit 1 ($ERR)" [ "$RC" -eq 1 ]
check "no server: the sentence says so" said "cannot reach"
run "$IPCX" serve "unix:$T/u.sock"
check "serve without CMD or --echo is a usage error" [ "$RC" -eq 2 ]
run "$IPCX" serve --echo "unix:$T/u.sock" -- cat
check "serve --echo with a CMD is a usage error" [ "$RC" -eq 2 ]
run "$IPCX" serve -j 0 "unix:$T/u.sock" -- cat
check "serve -j 0 is a usage error" [ "$RC" -eq 2 ]
run "$IPCX" call
check "call without URL is a usage error" [ "$RC" -eq 2 ]
run "$IPCX" serve --echo "udp://127.0.0.1:0"
check "serve over udp:// fails ($ERR)" [ "$RC" -eq 1 ]
check "serve over udp:// says why" said "RPC needs"

finish
