# Shared pieces of the CLI tests (tests/cli/*.sh); sourced, never run alone.
#
# Every object a test makes is named with the run's tag: files live in $T, a
# folder /tmp/ipcxt-TAG-cli-*, abstract names start with @ipcxt-TAG-, and
# System V keys come from sysv_key.  Processes synchronise by handshakes:
# `ipcx recv --ready-fd` says when it listens and where; nc -v and socat -d -d
# say so on stderr.  Timeouts are guards against hangs only.
set -u

IPCX=${IPCX_BIN:?IPCX_BIN must name the ipcx CLI}
TAG=${IPCX_TEST_TAG:?IPCX_TEST_TAG must be set}
T=$(mktemp -d "/tmp/ipcxt-$TAG-cli-XXXXXX")
ABS=ipcxt-$TAG-$$            # prefix of abstract socket names
GUARD=60                     # seconds any one command may take
GUARD_MS=$((GUARD * 1000))
FAILS=0
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

pass() {
	echo "ok: $*"
}

# check DESC COMMAND...: pass if COMMAND succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}

finish() {
	if [ "$FAILS" -ne 0 ]; then
		echo "$FAILS check(s) failed"
		exit 1
	fi
	echo "all checks passed"
	exit 0
}

# run COMMAND...: run it under the guard; sets RC, OUT and ERR.
run() {
	timeout -k 5 "$GUARD" "$@" >"$T/run.out" 2>"$T/run.err" </dev/null
	RC=$?
	OUT=$(cat "$T/run.out")
	ERR=$(cat "$T/run.err")
}

# A System V key for this run: the tag's prefix (lib/sysvkey.bash), 16 bits of our own.
. "$(dirname "${BASH_SOURCE[0]}")/sysvkey.bash"
SYSV_N=0
sysv_key() {
	SYSV_N=$((SYSV_N + 1))
	sysv_key_of "$TAG" $(($$ * 31 + SYSV_N * 7919))
}

# start_recv NAME RECV-ARGS...: start `ipcx recv` in the background and wait
# until it listens.  Sets RECV_PID and RECV_ADDR (the address it reports, with
# the port the system chose); its output goes to $T/NAME.out and .err.
start_recv() {
	local name=$1
	shift
	rm -f "$T/$name.ready"
	mkfifo "$T/$name.ready"
	"$IPCX" recv --timeout "$GUARD_MS" "$@" --ready-fd 3 3>"$T/$name.ready" \
		>"$T/$name.out" 2>"$T/$name.err" &
	RECV_PID=$!
	PIDS+=("$RECV_PID")
	RECV_ADDR=
	# recv writes the address once it listens, or exits (EOF) if it cannot.
	read -r -t "$GUARD" RECV_ADDR <"$T/$name.ready"
	rm -f "$T/$name.ready"
	if [ -z "$RECV_ADDR" ]; then
		fail "recv $* did not start: $(cat "$T/$name.err")"
		return 1
	fi
}

# wait_recv: wait for the recv started last; sets RECV_RC.
wait_recv() {
	wait "$RECV_PID"
	RECV_RC=$?
}

# with_query ADDR URL: ADDR with URL's "?options", unless ADDR has its own
# (ipcx_addr reports the port the system chose, not the options).
with_query() {
	case $1 in
	*\?*) echo "$1" ;;
	*) case $2 in
		*\?*) echo "$1?${2#*\?}" ;;
		*) echo "$1" ;;
		esac ;;
	esac
}

# stop_recv: the test failed early; do not let recv wait out its guard.
stop_recv() {
	kill -TERM "$RECV_PID" 2>/dev/null
	wait "$RECV_PID" 2>/dev/null
}

# wait_stderr_line FD PATTERN: read lines from FD until one contains PATTERN;
# the line is in LINE.  False on EOF or after the guard.
wait_stderr_line() {
	LINE=
	while read -r -t "$GUARD" -u "$1" LINE; do
		case $LINE in *"$2"*) return 0 ;; esac
	done
	return 1
}

# abstract_gone NAME: no socket is bound to @NAME.
abstract_gone() {
	! grep -q "@$1\$" /proc/net/unix
}

# A scheme this build does not have: skip its checks, loudly.
has_scheme() {
	local out
	out=$(timeout -k 5 "$GUARD" "$IPCX" send "$1:probe" 2>&1 </dev/null)
	case $out in *"unknown scheme"*) echo "skip: no $1: transport in this build"; return 1 ;; esac
	return 0
}
