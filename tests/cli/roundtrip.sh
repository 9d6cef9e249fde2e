#!/usr/bin/env bash
# ipcx send -> ipcx recv over every transport: the messages arrive whole, in
# order, printed one per line, and recv removes the object it created.
. "$(dirname "$0")/lib/common.bash"

# The messages, and how recv prints them (escapes for tab and newline).
ALL_MSGS=("one" "two words" "" "tab	and
newline" "naïve ✓")
ALL_EXPECT=$'one\ntwo words\n\ntab\\tand\\nnewline\nnaïve ✓'
# SOCK_SEQPACKET reads an empty message as the end: none of those there.
NOEMPTY_MSGS=("one" "two words" "tab	and
newline" "naïve ✓")
NOEMPTY_EXPECT=$'one\ntwo words\ntab\\tand\\nnewline\nnaïve ✓'
# ?framing=lines: a message cannot hold a newline.
LINES_MSGS=("one" "two words" "" "tab	only" "naïve ✓")
LINES_EXPECT=$'one\ntwo words\n\ntab\\tonly\nnaïve ✓'

use_msgs() {
	local m="${1}_MSGS[@]" e="${1}_EXPECT"
	MSGS=("${!m}")
	EXPECT=${!e}
}
use_msgs ALL

# roundtrip URL [GONE-CHECK...]: send MSGS to a recv on URL; then check that
# the object is gone with GONE-CHECK (a command), if given.
roundtrip() {
	local url=$1
	shift
	start_recv rt "$url" -n "${#MSGS[@]}" || return
	local dial
	dial=$(with_query "$RECV_ADDR" "$url")
	run "$IPCX" send --timeout "$GUARD_MS" "$dial" "${MSGS[@]}"
	check "$url: send exits 0 ($ERR)" [ "$RC" -eq 0 ]
	[ "$RC" -eq 0 ] || stop_recv
	wait_recv
	check "$url: recv exits 0 after ${#MSGS[@]} messages ($(cat "$T/rt.err"))" [ "$RECV_RC" -eq 0 ]
	check "$url: every message arrives, in order" [ "$(cat "$T/rt.out")" = "$EXPECT" ]
	if [ $# -gt 0 ]; then
		check "$url: recv removed what it created" "$@"
	fi
}

# roundtrip_stdin URL: each line of send's standard input is one message.
roundtrip_stdin() {
	local url=$1
	start_recv rts "$url" -n 3 || return
	printf 'first\n\nthird line\n' |
		timeout -k 5 "$GUARD" "$IPCX" send "$(with_query "$RECV_ADDR" "$url")"
	local rc=$?
	check "$url: send from standard input exits 0" [ $rc -eq 0 ]
	[ $rc -eq 0 ] || stop_recv
	wait_recv
	check "$url: recv exits 0" [ "$RECV_RC" -eq 0 ]
	check "$url: one message per line of input" [ "$(cat "$T/rts.out")" = $'first\n\nthird line' ]
}

# roundtrip_raw URL [BYTES]: binary bytes (3000 unless told) go through
# unchanged with --raw on both sides.
roundtrip_raw() {
	local url=$1 bytes=${2:-3000}
	head -c "$bytes" /dev/urandom >"$T/blob"
	start_recv raw "$url" -n 1 --raw || return
	timeout -k 5 "$GUARD" "$IPCX" send --raw "$(with_query "$RECV_ADDR" "$url")" <"$T/blob"
	local rc=$?
	check "$url: send --raw exits 0" [ $rc -eq 0 ]
	[ $rc -eq 0 ] || stop_recv
	wait_recv
	check "$url: recv --raw exits 0" [ "$RECV_RC" -eq 0 ]
	check "$url: $bytes random bytes arrive unchanged" cmp -s "$T/blob" "$T/raw.out"
}

# Files and FIFOs in $T; abstract names tagged; ports chosen by the system.
if has_scheme fifo; then
	roundtrip "fifo:$T/f" [ ! -e "$T/f" ]
	roundtrip_stdin "fifo:$T/f2"
	roundtrip_raw "fifo:$T/f3"
	roundtrip_raw "fifo:$T/f4" 4092   # the largest: PIPE_BUF less the length
fi
if has_scheme unix; then
	roundtrip "unix:$T/u.sock" [ ! -e "$T/u.sock" ]
	roundtrip "unix:@$ABS-u" abstract_gone "$ABS-u"
	use_msgs LINES
	roundtrip "unix:$T/ul.sock?framing=lines&mode=0600" [ ! -e "$T/ul.sock" ]
	use_msgs ALL
	roundtrip_stdin "unix:$T/u2.sock"
	roundtrip_raw "unix:$T/u3.sock"
	roundtrip_raw "unix:$T/u4.sock" $((4 << 20))
fi
if has_scheme unixpacket; then
	use_msgs NOEMPTY
	roundtrip "unixpacket:$T/p.sock" [ ! -e "$T/p.sock" ]
	roundtrip "unixpacket:@$ABS-p" abstract_gone "$ABS-p"
	use_msgs ALL
	roundtrip_raw "unixpacket:$T/p3.sock"
fi
if has_scheme unixgram; then
	roundtrip "unixgram:$T/g.sock" [ ! -e "$T/g.sock" ]
	roundtrip "unixgram:@$ABS-g" abstract_gone "$ABS-g"
	roundtrip_raw "unixgram:$T/g3.sock"
fi
if has_scheme tcp; then
	roundtrip "tcp://127.0.0.1:0"
	use_msgs LINES
	roundtrip "tcp://127.0.0.1:0?framing=lines"
	use_msgs ALL
	roundtrip_stdin "tcp://127.0.0.1:0"
	roundtrip_raw "tcp://127.0.0.1:0"
	roundtrip_raw "tcp://127.0.0.1:0" $((4 << 20))
	if grep -q 00000000000000000000000000000001 /proc/net/if_inet6 2>/dev/null; then
		roundtrip "tcp://[::1]:0"
	else
		echo "skip: no IPv6 loopback here"
	fi
fi
if has_scheme udp; then
	roundtrip "udp://127.0.0.1:0"
	roundtrip_raw "udp://127.0.0.1:0"
	if grep -q 00000000000000000000000000000001 /proc/net/if_inet6 2>/dev/null; then
		roundtrip "udp://[::1]:0"
	fi
fi

# fd: a shell pipe between two ipcx processes, inherited as fd 1 and fd 0.
if has_scheme fd; then
	out=$(timeout -k 5 "$GUARD" "$IPCX" send fd:1 "a b" "c" |
		timeout -k 5 "$GUARD" "$IPCX" recv fd:0 -n 2 --timeout "$GUARD_MS")
	check "fd: send fd:1 | recv fd:0 -n 2" [ "$out" = $'a b\nc' ]
	# Without -n, recv stops at the end of the stream, as cat does.
	out=$(printf 'x\ny\nz\n' | timeout -k 5 "$GUARD" "$IPCX" send fd:1 |
		timeout -k 5 "$GUARD" "$IPCX" recv fd:0 --timeout "$GUARD_MS")
	check "fd: recv without -n ends with the stream (exit 0)" [ $? -eq 0 ]
	check "fd: three lines in, three messages out" [ "$out" = $'x\ny\nz' ]
fi

# Transports that other issues add, as they land.
if has_scheme mq; then
	roundtrip "mq:/$ABS-mq" [ ! -e "/dev/mqueue/$ABS-mq" ]
	roundtrip_raw "mq:/$ABS-mq2"
fi
if has_scheme sysvmq; then
	key=$(sysv_key)
	roundtrip "sysvmq:$key"
	check "sysvmq: recv removed queue $key" bash -c "! ipcs -q | grep -qi '^$key '"
fi
if has_scheme shm; then
	roundtrip "shm:/$ABS-shm" [ ! -e "/dev/shm/$ABS-shm" ]
fi
if has_scheme sysvshm; then
	key=$(sysv_key)
	roundtrip "sysvshm:$key"
	check "sysvshm: recv removed segment $key" bash -c "! ipcs -m | grep -qi '^$key '"
fi
if has_scheme mmap; then
	# A persistent log too: it outlives its listener (the trap removes it).
	roundtrip "mmap:$T/ring.mmap"
fi
if has_scheme file; then
	# A record file is a log: it outlives its listener (the trap removes it).
	roundtrip "file:$T/log.rec"
fi

finish
