# `ipcx bridge` in CLI tests (sourced after common.bash).

# start_bridge NAME SRC DST [ARGS...]: a bridge in the background, its stderr
# in $T/NAME.err, started once it says it listens.  Sets BRIDGE_PID.
start_bridge() {
	local name=$1 src=$2 dst=$3 addr
	shift 3
	mkfifo "$T/$name.ready"
	"$IPCX" bridge "$src" "$dst" "$@" --ready-fd 3 3>"$T/$name.ready" 2>"$T/$name.err" &
	BRIDGE_PID=$!
	PIDS+=("$BRIDGE_PID")
	read -r -t "$GUARD" addr <"$T/$name.ready"
	[ -n "$addr" ] || { fail "bridge $src -> $dst did not start: $(cat "$T/$name.err")"; return 1; }
}

# counter WORD FILE: the number before WORD on the last counters line.
counter() {
	grep 'ipcx bridge: ' "$2" | tail -1 | grep -o "[0-9]* $1" | cut -d' ' -f1
}
