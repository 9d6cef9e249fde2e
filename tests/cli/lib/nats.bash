# nats-server processes of a CLI test (sourced after common.bash): on
# loopback and free ports, each with its folder in $T, stopped by cleanup()
# (their pids are in PIDS).  Start-up is a handshake: the server's log comes
# through a FIFO, and the lines that say where it listens are read as they
# come; a reader then drains the rest so that the server never blocks on it.

# start_nats NAME [ARGS...]: start a server with extra ARGS (-js, --cluster
# ...).  Sets NATS_PID, NATS_ADDR (127.0.0.1:PORT) and NATS_ROUTE (the
# cluster URL, when ARGS ask for a cluster); false if it did not start.
start_nats() {
	local name=$1 dir=$T/nats-$1 line want_route=0 fd
	shift
	case " $* " in *" --cluster "*) want_route=1 ;; esac
	mkdir -p "$dir" && mkfifo "$dir/log" || return 1
	nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$dir" "$@" >/dev/null 2>"$dir/log" &
	NATS_PID=$!
	PIDS+=("$NATS_PID")
	exec {fd}<"$dir/log"
	NATS_ADDR= NATS_ROUTE=
	while read -r -t "$GUARD" -u "$fd" line; do
		case $line in
		*"Listening for client connections on "*) NATS_ADDR=${line##* on } ;;
		*"Listening for route connections on "*) NATS_ROUTE=nats://${line##* on } ;;
		esac
		[ -n "$NATS_ADDR" ] && { [ "$want_route" = 0 ] || [ -n "$NATS_ROUTE" ]; } && break
	done
	cat <&"$fd" >/dev/null &
	PIDS+=("$!")
	exec {fd}<&-
	[ -n "$NATS_ADDR" ] || { fail "nats-server $name did not start (is Debian's nats-server installed?)"; return 1; }
}

# start_cluster: three servers routed to each other.  Sets CLUSTER (their
# addresses, comma-separated, for a nats:// URL) and CLUSTER_PIDS.
start_cluster() {
	local routes="" i addrs=""
	CLUSTER_PIDS=()
	for i in 1 2 3; do
		# shellcheck disable=SC2086
		start_nats "c$i" --cluster nats://127.0.0.1:-1 --cluster_name "ipcxt-$TAG-$$" \
			${routes:+--routes "$routes"} || return 1
		routes=${routes:+$routes,}$NATS_ROUTE
		addrs=${addrs:+$addrs,}$NATS_ADDR
		CLUSTER_PIDS+=("$NATS_PID")
	done
	CLUSTER=$addrs
}
