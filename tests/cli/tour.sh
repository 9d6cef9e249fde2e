#!/usr/bin/env bash
# ipcx tour (make run): it really sends messages over every transport in the
# build, reports each, and leaves nothing behind -- also when it is stopped
# by a signal halfway.  Times are printed, never checked.
. "$(dirname "$0")/lib/common.bash"

# The tour names what it makes after its pid: ipcx-tour-PID.
leftovers() {
	local pid=$1
	ls -d /tmp/ipcx-tour-"$pid"-* 2>/dev/null
	ls /dev/shm /dev/mqueue 2>/dev/null | grep "ipcx-tour-$pid-"
	grep "@ipcx-tour-$pid-" /proc/net/unix
	# System V objects: the keys the tour printed in its URLs.
	local key
	for key in $(grep -o 'sysv[a-z]*:0x[0-9a-f]*' "$T/tour.out" | cut -d: -f2); do
		ipcs -q -m | grep -i "^$key "
	done
}

# tour ARGS...: run `ipcx tour ARGS` and learn its pid; sets RC and PID.
tour() {
	timeout -k 5 "$GUARD" bash -c 'echo $$ >"$0"; exec "$@"' "$T/tour.pid" \
		"$IPCX" tour "$@" >"$T/tour.out" 2>"$T/tour.err"
	RC=$?
	PID=$(cat "$T/tour.pid")
}

tour --count 50
cat "$T/tour.out"
check "tour exits 0 ($(cat "$T/tour.err"))" [ "$RC" -eq 0 ]
check "tour reports no failure" grep -q "^[0-9]* transports*, 0 failed\.$" "$T/tour.out"
check "tour left nothing behind" [ -z "$(leftovers "$PID")" ]
# Every transport the build has shows a line of 50 checked round trips.
for scheme in fd fifo unix unixpacket unixgram tcp udp mq sysvmq shm sysvshm mmap file; do
	if has_scheme "$scheme" >/dev/null; then
		check "tour went over $scheme" grep -q "^  $scheme  *.* 50 round trips, median" "$T/tour.out"
	else
		check "tour lists $scheme as not in this build" \
			grep -q "^  not in this build:.* $scheme\( \|$\)" "$T/tour.out"
	fi
done

# Two schemes of this build, for the checks below (streams first).
two=()
for scheme in unix fifo tcp mq file shm; do
	if [ ${#two[@]} -lt 2 ] && has_scheme "$scheme" >/dev/null; then
		two+=("$scheme")
	fi
done
if [ ${#two[@]} -lt 2 ]; then
	fail "fewer than two transports in this build: ${two[*]}"
	finish
fi

# Only the schemes asked for.
tour --count 5 --size 1000 "${two[@]}"
check "tour ${two[*]}: exit 0" [ "$RC" -eq 0 ]
check "tour ${two[*]}: two transports" grep -q "^2 transports, 0 failed\.$" "$T/tour.out"
check "tour ${two[*]}: nothing else" [ "$(grep -c "round trips, median" "$T/tour.out")" -eq 2 ]
check "tour ${two[*]}: left nothing behind" [ -z "$(leftovers "$PID")" ]

# Stopped by SIGTERM in the middle of a long stop: it finishes the message at
# hand, removes everything, and dies of the signal.  The first line of its
# output comes once its folder exists and signals are held: the handshake.
for scheme in "${two[@]}"; do
	mkfifo "$T/long.out"
	bash -c 'echo $$ >"$0"; exec "$@"' "$T/tour.pid" \
		"$IPCX" tour --count 10000000 "$scheme" >"$T/long.out" 2>"$T/long.err" &
	PIDS+=("$!")
	exec {out}<"$T/long.out"
	read -r -t "$GUARD" -u "$out" first
	PID=$(cat "$T/tour.pid")
	check "long tour ($scheme) started: $first" [ -n "$first" ]
	kill -TERM "$PID"
	wait "$PID"
	rc=$?
	exec {out}<&-
	rm -f "$T/long.out"
	check "SIGTERM ends the tour by the signal (status $rc)" [ "$rc" -eq 143 ]
	check "the stopped tour ($scheme) left nothing behind" [ -z "$(leftovers "$PID")" ]
done

finish
