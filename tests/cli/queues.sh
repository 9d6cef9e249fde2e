#!/usr/bin/env bash
# ipcx send / recv on the kernel queues and the record file: options that
# only these transports have (priorities, message types, ftok keys, reading
# a persistent file again), modes, and the errors that name a limit.
. "$(dirname "$0")/lib/common.bash"

has_scheme mq && has_scheme sysvmq && has_scheme file || finish

# ---- mq: ------------------------------------------------------------------

Q="mq:/$ABS-q"
start_recv mq "$Q?maxmsg=4&msgsize=128" -n 3 || finish
run "$IPCX" send "$Q?prio=5" "first" "second"
check "mq: send with a priority (rc $RC: $ERR)" [ "$RC" -eq 0 ]
run "$IPCX" send "$Q" ""
check "mq: an empty message" [ "$RC" -eq 0 ]
wait_recv
check "mq: recv got three messages (rc $RECV_RC)" [ "$RECV_RC" -eq 0 ]
check "mq: in order, the empty one last" [ "$(cat "$T/mq.out"; echo .)" = $'first\nsecond\n\n.' ]
run "$IPCX" send "$Q" "nobody there"
check "mq: the queue went with its listener" [ "$RC" -eq 1 ]
check "mq: says there is no such queue ($ERR)" grep -q "no such queue" "$T/run.err"

start_recv mq2 "$Q?maxmsg=2&msgsize=16&mode=0640" -n 1 || finish
if mq_dir=$(awk '$3 == "mqueue" { print $2; exit }' /proc/mounts) && [ -n "$mq_dir" ]; then
	check "mq: mode=0640 is the queue's mode" [ "$(stat -c %a "$mq_dir/$ABS-q")" = 640 ]
fi
run "$IPCX" send "$Q" "seventeen bytes.."
check "mq: a message larger than msgsize is refused" [ "$RC" -eq 1 ]
run "$IPCX" send "$Q" "fits"
wait_recv
check "mq: the next one arrives" [ "$(cat "$T/mq2.out")" = "fits" ]

run "$IPCX" recv "$Q?maxmsg=70000" -n 1 --timeout 0
check "mq: maxmsg above the kernel's hard limit is refused" [ "$RC" -eq 1 ]
check "mq: ... naming the option ($ERR)" grep -q "maxmsg" "$T/run.err"

# ---- sysvmq: -----------------------------------------------------------------

KEY=$(sysv_key)
# A receiver that takes only type 2 leaves the others in the queue.
start_recv sv "sysvmq:$KEY?rtype=2" -n 1 || finish
run "$IPCX" send "sysvmq:$KEY?type=1" "type one"
run "$IPCX" send "sysvmq:$KEY?type=2" "type two"
check "sysvmq: sends with a type" [ "$RC" -eq 0 ]
wait_recv
check "sysvmq: rtype=2 received only type 2" [ "$(cat "$T/sv.out")" = "type two" ]
check "sysvmq: recv removed the queue" bash -c "! ipcs -q | grep -qi '^$KEY '"

# The key from a path (ftok), and the mode of the queue.
touch "$T/anchor"
start_recv svp "sysvmq:$T/anchor?proj=7&mode=0640" -n 2 || finish
akey=$(printf '0x%08x' $(( $(stat -c '%i' "$T/anchor") & 0xffff | ($(stat -c '%d' "$T/anchor") & 0xff) << 16 | 7 << 24 )))
check "sysvmq: ftok key, mode 0640" bash -c "ipcs -q | awk '\$1 == \"$akey\" { print \$4 }' | grep -qx 640"
run "$IPCX" send "sysvmq:$T/anchor?proj=7" "via" "ftok"
wait_recv
check "sysvmq: path?proj=N" [ "$(cat "$T/svp.out")" = $'via\nftok' ]

run "$IPCX" recv "sysvmq:$(sysv_key)?max=100000000" -n 1 --timeout 0
check "sysvmq: max above msgmax is refused" [ "$RC" -eq 1 ]
check "sysvmq: ... naming msgmax ($ERR)" grep -q "msgmax" "$T/run.err"
run "$IPCX" send "sysvmq:0" "x"
check "sysvmq: key 0 (IPC_PRIVATE) is refused" [ "$RC" -eq 1 ]

# ---- file: ----------------------------------------------------------------------

F="file:$T/app.rec"
start_recv f1 "$F" -n 2 || finish
run "$IPCX" send "$F" "one" "two"
wait_recv
check "file: recv follows the file" [ "$(cat "$T/f1.out")" = $'one\ntwo' ]
check "file: created 0600" [ "$(stat -c %a "$T/app.rec")" = 600 ]
check "file: persists after recv" [ -s "$T/app.rec" ]
run "$IPCX" send "$F" "three"
# A second recv on the same file reads it again from the start.
run "$IPCX" recv "$F" -n 3 --timeout "$GUARD_MS"
check "file: recv again gets every record from the start" [ "$OUT" = $'one\ntwo\nthree' ]
printf 'binary\0bytes' | "$IPCX" send --raw "$F"
run "$IPCX" recv --raw "$F" -n 4 --timeout "$GUARD_MS"
check "file: --raw bytes come back unchanged" \
	[ "$(tail -c 12 "$T/run.out" | od -An -c | tr -s ' ')" = " b i n a r y \\0 b y t e s" ]
printf 'plain text\n' >"$T/text"
run "$IPCX" send "file:$T/text" "x"
check "file: a file that is not a record file is refused" [ "$RC" -eq 1 ]
check "file: ... and left alone" [ "$(cat "$T/text")" = "plain text" ]
ln -s "$T/app.rec" "$T/link.rec"
run "$IPCX" send "file:$T/link.rec" "x"
check "file: never through a symlink ($ERR)" [ "$RC" -eq 1 ]

finish
