#!/usr/bin/env bash
# ipcx log and ipcx logd: records in, lines out, in order; SIGHUP reopens the
# file; a full log's drops are reported and counted; ls and info show a
# log's depth, drops and whether its drain is attached; rotation; usage.
. "$(dirname "$0")/lib/common.bash"

LOG="shm:/$ABS-log"

# start_logd NAME URL ARGS...: logd in the background, its stderr on fd 4
# (read with wait_stderr_line 4 ...); returns once the log is open.
start_logd() {
	local name=$1
	shift
	rm -f "$T/$name.ready" "$T/$name.err"
	mkfifo "$T/$name.ready" "$T/$name.err"
	# Opened in this order on both sides: stderr first, then the ready FIFO.
	"$IPCX" logd "$@" --ready-fd 3 2>"$T/$name.err" 3>"$T/$name.ready" &
	LOGD_PID=$!
	PIDS+=("$LOGD_PID")
	exec 4<"$T/$name.err"
	# A newline once the log is open; EOF if logd could not start.
	read -r -t "$GUARD" <"$T/$name.ready"
	local rc=$?
	rm -f "$T/$name.ready"
	return $rc
}

stop_logd() {
	kill -TERM "$LOGD_PID"
	wait "$LOGD_PID"
	LOGD_RC=$?
	exec 4<&-
}

# ---- a drain on shm:, writers from the command line --------------------------------
start_logd d1 "$LOG" --out "$T/app.txt" || fail "logd did not start"
run "$IPCX" log "$LOG" --tag web --level err disk is full
check "log: one record from the words (rc $RC: $ERR)" [ "$RC" -eq 0 ]
printf 'first line\n\nsecond\tline\n' | timeout "$GUARD" "$IPCX" log "$LOG" -t cron
check "log: standard input, a record per line" [ $? -eq 0 ]

run "$IPCX" info --json "$LOG"
check "info: the drain is attached (receivers 1)" \
	jq -e '.stats.receivers == 1 and .stats.dropped == 0' <<<"$OUT"
run "$IPCX" info "$LOG"
check "info says it in words" grep -q '^receiving *yes' <<<"$OUT"
run "$IPCX" ls --kind posix-shm --name "$ABS-log"
check "ls shows its drops and its receiver: $OUT" \
	awk 'NR == 2 && $8 == 0 && $9 == 1 { ok = 1 } END { exit !ok }' <<<"$OUT"

# SIGHUP: logrotate moved the file; logd reopens it and says so.
mv "$T/app.txt" "$T/app.txt.old"
kill -HUP "$LOGD_PID"
wait_stderr_line 4 "reopened $T/app.txt"
check "SIGHUP: logd reopens its file ($LINE)" [ $? -eq 0 ]
run "$IPCX" log "$LOG" --tag web after the move
stop_logd
check "SIGTERM: logd writes what is left and exits 0 (rc $LOGD_RC)" [ "$LOGD_RC" -eq 0 ]
check "the log is gone with its drain" [ ! -e "/dev/shm/$ABS-log" ]
check "before the move: three records, in order" \
	grep -Pzq '^\S+ web\[\d+/\d+\] err: disk is full\n\S+ cron\[\d+/\d+\] info: first line\n\S+ cron\[\d+/\d+\] info: second\\tline\n$' "$T/app.txt.old"
check "after the move: the new file" \
	grep -Pzq '^\S+ web\[\d+/\d+\] info: after the move\n$' "$T/app.txt"
check "the file is made 0600" [ "$(stat -c %a "$T/app.txt")" = 600 ]

run "$IPCX" log "$LOG" nobody drains
check "log: no drain on shm: is a failure, said ($ERR)" \
	eval '[ "$RC" -eq 1 ] && grep -q "cannot open the log $LOG" <<<"$ERR"'

# ---- an mmap: log fills while no drain runs ------------------------------------------------
M="mmap:$T/m.log"
run "$IPCX" log "$M?capacity=4096&max=256" --tag t first
for i in $(seq 1 100); do echo "line $i"; done >"$T/lines"
timeout "$GUARD" "$IPCX" log "$M" --tag t <"$T/lines" 2>"$T/full.err"
rc=$?
check "log: a full log is exit 1, with the count ($(cat "$T/full.err"))" \
	eval '[ "$rc" -eq 1 ] && grep -q "records dropped: $M was full" "$T/full.err"'
dropped=$(grep -o '^ipcx log: [0-9]*' "$T/full.err" | grep -o '[0-9]*$')
# The log counted them, and one more: the writer's last try, as it closed,
# to report its drops in a record of their own (it did not fit either).
run "$IPCX" info --json "$M"
check "info mmap: depth 64, dropped $dropped + 1, no drain" \
	jq -e ".kind == \"mmap-log\" and .stats.depth == 64 and .stats.dropped == $dropped + 1 and .stats.receivers == 0" <<<"$OUT"
run "$IPCX" ls --kind mmap-log "$T/m.log"
check "ls PATH lists the log: $OUT" grep -q "^mmap-log *$T/m.log " <<<"$OUT"
run "$IPCX" rm "$M"
check "rm refuses a log file" eval '[ "$RC" -eq 1 ] && [ -e "$T/m.log" ]'

run "$IPCX" logd "$M" --once --json --out "$T/m.json"
check "logd --once writes what the log holds (rc $RC $ERR)" [ "$RC" -eq 0 ]
check "JSON lines, 64 of them, in order" \
	jq -se 'length == 64 and .[0].msg == "first" and .[1].msg == "line 1" and .[63].msg == "line 63"' "$T/m.json"
# Those drops were that writer's: it is gone, and said so on stderr; the log
# counted them (above).  (test_log.c checks that a writer's next record
# reports them.)
run "$IPCX" log "$M" --tag t --level debug next
run "$IPCX" logd "$M" --once --json --out "$T/m.json"
check "a new writer has no drops to report" \
	jq -se '.[64].msg == "next" and .[64].level == "debug" and (.[64] | has("dropped") | not)' "$T/m.json"

# No --out: the lines go to standard output.
run "$IPCX" log "$M" --tag s --level notice to standard output
run "$IPCX" logd "$M" --once --format '%n %l: %s'
check "logd without --out writes to standard output (rc $RC: '$OUT')" \
	eval '[ "$RC" -eq 0 ] && [ "$OUT" = "s notice: to standard output" ]'

# logd makes a log that is not there (an mmap: file, 0600).
run "$IPCX" logd "mmap:$T/new.log" --once --out "$T/new.txt"
check "logd makes the mmap: log it is given (rc $RC: $ERR)" \
	eval '[ "$RC" -eq 0 ] && [ "$(stat -c %a "$T/new.log")" = 600 ] && [ ! -s "$T/new.txt" ]'

# One drain per log.
start_logd d2 "$M" --out "$T/m2.txt" || fail "logd on mmap: did not start"
run "$IPCX" logd "$M" --once
check "a second drain is refused ($ERR)" eval '[ "$RC" -eq 1 ] && grep -q "another drain" <<<"$ERR"'
stop_logd

# ---- rotation ----------------------------------------------------------------------------------
R="mmap:$T/r.log"
# Four rounds of 15 lines of 80 bytes, each drained by a logd of its own:
# every round's batch passes 1 KiB, so each ends with a rotation.
for round in 1 2 3 4; do
	for i in $(seq $(((round - 1) * 15 + 1)) $((round * 15))); do
		printf 'rotated record %03d %s\n' "$i" "$(printf 'x%.0s' $(seq 60))"
	done | timeout "$GUARD" "$IPCX" log "$R" --tag r
	run "$IPCX" logd "$R" --once --out "$T/r.txt" --format '%s' --rotate 1K --keep 2
	check "rotate: logd --once, round $round (rc $RC $ERR)" [ "$RC" -eq 0 ]
done
# FILE.1 holds records 46 to 60 (the record number is columns 16-18), FILE.2
# starts with 31.
rotated_as_expected() {
	[ "$(cut -c16-18 "$T/r.txt.1" | tr '\n' ' ')" = "$(seq -s ' ' -w 46 60 | sed 's/^/0/; s/ / 0/g') " ] &&
		[ "$(head -c 18 "$T/r.txt.2" | tail -c 3)" = 031 ]
}
check "rotate: FILE.1 and FILE.2 kept, no FILE.3, FILE empty" \
	eval '[ -s "$T/r.txt.1" ] && [ -s "$T/r.txt.2" ] && [ ! -e "$T/r.txt.3" ] && [ ! -s "$T/r.txt" ]'
check "rotate: FILE.1 holds records 46 to 60, FILE.2 31 to 45" \
	rotated_as_expected

# ---- usage -------------------------------------------------------------------------------------
usage() {
	local desc=$1
	shift
	run "$IPCX" "$@"
	check "usage: $desc (rc $RC: $ERR)" [ "$RC" -eq 2 ]
}
usage "log needs a URL" log
usage "log: unknown level" log "$M" --level loud x
usage "logd needs a URL" logd
usage "logd: --keep goes with --rotate" logd "$M" --out "$T/x" --keep 3
usage "logd: --rotate needs --out" logd "$M" --rotate 1M
usage "logd: a bad format" logd "$M" --format '%q'
usage "logd: a bad size" logd "$M" --out "$T/x" --rotate lots
run "$IPCX" logd --help
check "logd --help" eval '[ "$RC" -eq 0 ] && grep -q "usage: ipcx logd" <<<"$OUT"'
run "$IPCX" log --help
check "log --help" eval '[ "$RC" -eq 0 ] && grep -q "usage: ipcx log" <<<"$OUT"'

finish
