#!/usr/bin/env bash
# ipcx pool and ipcx slot.  pool: every task once, --ordered, workers started
# once, a worker that dies (its task reported, the worker restarted), --retry,
# a crash loop, SIGHUP (workers replaced) and SIGTERM (workers gone), errors.
# slot: N holders and no more, a timeout, a killed holder's slot comes back
# marked (and its command dies with it), ipcx info, exit status, errors.
# Handshakes through FIFOs; timeouts only as guards.
. "$(dirname "$0")/lib/common.bash"

# ---- pool ------------------------------------------------------------------------------

seq 1 300 > "$T/in"
timeout -k 5 "$GUARD" "$IPCX" pool -j 3 -- cat < "$T/in" > "$T/out" 2> "$T/err"
RC=$?
check "pool: exit 0 (stderr: $(cat "$T/err"))" [ "$RC" -eq 0 ]
check "pool: every task once, with its number" \
	bash -c "sort -n '$T/out' | diff -q - <(paste '$T/in' '$T/in') >/dev/null"

printf 'r%s\n' $(seq 1 300) | paste "$T/in" - > "$T/want"
timeout -k 5 "$GUARD" "$IPCX" pool -j 4 --ordered -- sh -c 'while read l; do echo "r$l"; done' \
	< "$T/in" > "$T/out"
check "pool --ordered: results in input order" diff -q "$T/out" "$T/want"

# Slow-to-start workers are started once each, not once per task.
timeout -k 5 "$GUARD" "$IPCX" pool -j 2 -- sh -c "echo started >> '$T/starts'; exec cat" \
	< "$T/in" > /dev/null
check "pool: 2 workers started for 300 tasks ($(wc -l < "$T/starts"))" \
	[ "$(wc -l < "$T/starts")" -eq 2 ]

# A worker that dies with a task: reported, restarted, the rest done.
DIE='while read l; do [ "$l" = die ] && kill -9 $$; echo "got $l"; done'
printf 'a\ndie\nb\nc\n' > "$T/in2"
timeout -k 5 "$GUARD" "$IPCX" pool -j 1 --ordered -- sh -c "$DIE" < "$T/in2" > "$T/out" 2> "$T/err"
RC=$?
check "pool: a task lost with its worker is exit 1 ($RC)" [ "$RC" -eq 1 ]
check "pool: ... and said on stderr ($(cat "$T/err"))" grep -q "task 2 failed: its worker died" "$T/err"
check "pool: ... and the restarted worker did the rest" \
	diff -q "$T/out" <(printf '1\tgot a\n3\tgot b\n4\tgot c\n')

# --retry: the task runs again on the restarted worker (it dies once only).
ONCE="while read l; do [ \"\$l\" = die ] && [ ! -e '$T/died' ] && touch '$T/died' && kill -9 \$\$; echo \"got \$l\"; done"
timeout -k 5 "$GUARD" "$IPCX" pool -j 1 --ordered --retry -- sh -c "$ONCE" < "$T/in2" > "$T/out" 2> "$T/err"
RC=$?
check "pool --retry: exit 0 ($RC, $(cat "$T/err"))" [ "$RC" -eq 0 ]
check "pool --retry: every task has its result" \
	diff -q "$T/out" <(printf '1\tgot a\n2\tgot die\n3\tgot b\n4\tgot c\n')

# A worker that cannot stay up: a crash loop, reported, not spun.
seq 1 100 | timeout -k 5 "$GUARD" "$IPCX" pool -j 2 -- false > /dev/null 2> "$T/err"
RC=$?
check "pool: crash loop is exit 1 ($RC)" [ "$RC" -eq 1 ]
check "pool: ... said on stderr" grep -q "crash loop" "$T/err"

run "$IPCX" pool -j 1 -- "$T/no-such-program"
check "pool: a missing program is 127, one line ($RC: $ERR)" \
	bash -c "[ $RC -eq 127 ] && [ $(printf '%s\n' "$ERR" | wc -l) -eq 1 ] && [[ '$ERR' == *'cannot run'* ]]"
for bad in "-j 0 -- cat" "-j x -- cat" "--bogus -- cat" "-j 2" "-j 2 --"; do
	run "$IPCX" pool $bad
	check "pool $bad: usage error ($RC)" [ "$RC" -eq 2 ]
done
run "$IPCX" pool --help
check "pool --help" bash -c "[ $RC -eq 0 ] && [[ '$OUT' == 'usage: ipcx pool'* ]]"

# SIGHUP replaces the workers one by one; SIGTERM stops, every worker gone.
mkfifo "$T/pids" "$T/tasks"
exec 7<>"$T/pids"
"$IPCX" pool -j 2 -- sh -c "echo \$\$ > '$T/pids'; exec cat" < "$T/tasks" > "$T/out" 2> "$T/err" &
POOL=$!
PIDS+=("$POOL")
exec 8>"$T/tasks"
read -r -t "$GUARD" w1 <&7 && read -r -t "$GUARD" w2 <&7
check "pool: two workers up ($w1 $w2)" bash -c "[ -n '$w1' ] && [ -n '$w2' ]"
kill -HUP "$POOL"
read -r -t "$GUARD" n1 <&7 && read -r -t "$GUARD" n2 <&7
check "pool: SIGHUP started two new workers ($n1 $n2)" bash -c "[ -n '$n1' ] && [ -n '$n2' ]"
timeout "$GUARD" tail --pid="$w1" -f /dev/null && timeout "$GUARD" tail --pid="$w2" -f /dev/null
check "pool: ... and the old ones left" bash -c "! kill -0 $w1 2>/dev/null && ! kill -0 $w2 2>/dev/null"
echo after-reload >&8
kill -TERM "$POOL"
wait "$POOL"
RC=$?
check "pool: SIGTERM ends it, exit 1: input left unread ($RC)" [ "$RC" -eq 1 ]
check "pool: ... and no worker is left" bash -c "! kill -0 $n1 2>/dev/null && ! kill -0 $n2 2>/dev/null"
exec 7<&- 8>&-

# ---- the prefork example: nginx-style workers on one socket, reload, stop ----------------

EX=$(dirname "$IPCX")/example_prefork_server
# children PID: the worker pids of PID, one line.
children() { pgrep -P "$1" | sort | tr '\n' ' '; }
if [ -x "$EX" ]; then
	mkfifo "$T/ex"
	"$EX" 0 2 > "$T/ex" &
	EXP=$!
	PIDS+=("$EXP")
	read -r -t "$GUARD" addr _ <"$T/ex"
	port=${addr##*:}
	r1=$(printf 'hi\nquit\n' | timeout "$GUARD" nc -q 5 127.0.0.1 "$port")
	check "prefork: a worker answers ($r1)" bash -c "[[ '$r1' == [0-9]*': hi' ]]"
	old=$(children "$EXP")
	check "prefork: it is one of the workers ($old)" bash -c "[[ ' $old' == *' ${r1%%:*} '* ]]"
	kill -HUP "$EXP"
	# Replaced one by one: wait (guarded) until two workers run and none is old.
	for _ in $(seq 1 $((GUARD * 20))); do
		now=$(children "$EXP")
		new=1
		for o in $old; do [[ " $now" == *" $o "* ]] && new=0; done
		[ "$new" -eq 1 ] && [ "$(echo $now | wc -w)" -eq 2 ] && break
		sleep 0.05
	done
	check "prefork: SIGHUP replaced both workers ($old -> $now)" bash -c "[ $new -eq 1 ]"
	r2=$(printf 'again\nquit\n' | timeout "$GUARD" nc -q 5 127.0.0.1 "$port")
	check "prefork: a new worker answers ($r2)" bash -c "[[ ' $now' == *' ${r2%%:*} '* ]]"
	kill -TERM "$EXP"
	wait "$EXP"
	RC=$?
	check "prefork: SIGTERM stops it, exit 0 ($RC)" [ "$RC" -eq 0 ]
	gone=1
	for o in $now; do kill -0 "$o" 2>/dev/null && gone=0; done
	check "prefork: no worker left" [ "$gone" -eq 1 ]
else
	fail "no $EX"
fi

# ---- slot ------------------------------------------------------------------------------

URL="shm:/$ABS-slots"
cleanup_slots() { "$IPCX" rm "$URL" 2>/dev/null; }
trap 'cleanup_slots; cleanup' EXIT

run "$IPCX" slot "$URL" -n 2 -- sh -c 'echo "slot $IPCX_SLOT"'
check "slot: runs the command in a slot ($OUT)" bash -c "[ $RC -eq 0 ] && [[ '$OUT' == 'slot '[01] ]]"
check "slot: the table stays, 0600" [ "$(stat -c %a "/dev/shm/$ABS-slots")" = 600 ]

mkfifo "$T/held" "$T/go"
exec 7<>"$T/held" 9<>"$T/go"
for i in 1 2; do
	"$IPCX" slot "$URL" -n 2 -- sh -c "echo \$\$ > '$T/held'; read x < '$T/go'" &
	PIDS+=("$!")
	H[$i]=$!
done
read -r -t "$GUARD" c1 <&7 && read -r -t "$GUARD" c2 <&7
check "slot: two holders ($c1 $c2)" bash -c "[ -n '$c1' ] && [ -n '$c2' ]"
run "$IPCX" slot --timeout 0 "$URL" -n 2 -- true
check "slot: no third ($RC: $ERR)" bash -c "[ $RC -eq 1 ] && [[ '$ERR' == *'timed out'* ]]"
run "$IPCX" slot --timeout 50 "$URL" -n 2 -- true
check "slot: --timeout 50 times out ($RC)" [ "$RC" -eq 1 ]
run "$IPCX" info "$URL"
check "slot: info shows 2 held ($OUT)" bash -c "[[ '$OUT' == *'2 (2 held'* ]]"
run "$IPCX" info --json "$URL"
check "slot: info --json names the holders" \
	bash -c "echo '$OUT' | jq -e '.slots.held == 2 and (.slots.holders | length) == 2' >/dev/null"
echo go >&9
echo go >&9
wait "${H[1]}" && wait "${H[2]}"
RC=$?
check "slot: holders exit 0 when their commands do" [ "$RC" -eq 0 ]

# A holder killed with SIGKILL: its command dies with it, the slot comes back marked.
"$IPCX" slot "$URL" -n 2 -- sh -c "echo \$\$ > '$T/held'; exec sleep 600" &
K=$!
read -r -t "$GUARD" kc <&7
"$IPCX" slot "$URL" -n 2 -- sh -c "echo \$\$ > '$T/held'; read x < '$T/go'" &
H2=$!
PIDS+=("$H2")
read -r -t "$GUARD" hc <&7
kill -KILL "$K"
wait "$K" 2>/dev/null
timeout "$GUARD" tail --pid="$kc" -f /dev/null
check "slot: the command died with its ipcx" bash -c "! kill -0 $kc 2>/dev/null"
run "$IPCX" slot --timeout "$GUARD_MS" "$URL" -n 2 -- sh -c 'echo "recovered=$IPCX_SLOT_RECOVERED"'
check "slot: the killed holder's slot, marked ($OUT; $ERR)" \
	bash -c "[ $RC -eq 0 ] && [ '$OUT' = recovered=1 ] && [[ '$ERR' == *'died'* ]]"
run "$IPCX" info --json "$URL"
check "slot: recovered counted" bash -c "echo '$OUT' | jq -e '.slots.recovered == 1' >/dev/null"
echo go >&9
wait "$H2"
exec 7<&- 9<&-

run "$IPCX" slot "$URL" -n 2 -- sh -c 'exit 7'
check "slot: the command's exit status ($RC)" [ "$RC" -eq 7 ]
run "$IPCX" slot "$URL" -n 2 -- "$T/no-such-program"
check "slot: a missing command is 127 ($RC)" [ "$RC" -eq 127 ]
run "$IPCX" slot "$URL" -n 3 -- true
check "slot: -n must match the table ($RC: $ERR)" bash -c "[ $RC -eq 1 ] && [[ '$ERR' == *'2 slots'* ]]"
for bad in "$URL -- true" "-n 2 -- true" "$URL -n 0 -- true" "$URL -n 2" "$URL -n 2 --" \
	   "--bogus $URL -n 2 -- true"; do
	run "$IPCX" slot $bad
	check "slot $bad: usage error ($RC)" [ "$RC" -eq 2 ]
done
run "$IPCX" rm "$URL"
check "slot: ipcx rm removes the table" bash -c "[ $RC -eq 0 ] && [ ! -e '/dev/shm/$ABS-slots' ]"
finish
