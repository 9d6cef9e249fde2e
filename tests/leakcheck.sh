#!/usr/bin/env bash
# The suite's leak check.  Every object a test creates carries the run's tag
# (IPCX_TEST_TAG) in its name, or, for System V, in its key (the top half is
# the tag's first four hex digits less the top bit: cli/lib/sysvkey.bash).
# "setup" clears what an earlier, failed run of this build left; "check"
# fails if anything tagged is still there after the suite.
#
# Objects are found with the CLI's own scanner, `ipcx ls --json` (IPCX_BIN),
# and, as a safety net that does not depend on it, by looking in /dev/shm,
# /dev/mqueue, /tmp, /proc/net/unix and /proc/sysvipc directly.
set -u
tag=${IPCX_TEST_TAG:?}
[[ $tag =~ ^[0-9a-f]{4} ]] || { echo "IPCX_TEST_TAG must start with 4 hex digits" >&2; exit 2; }
. "$(dirname "$0")/cli/lib/sysvkey.bash"
keyprefix=$(sysv_key_prefix "$tag")
bin=${IPCX_BIN:-}

# URLs of tagged objects, as ipcx ls sees them; fails if it cannot say.
ls_urls() {
	[ -x "$bin" ] && command -v jq >/dev/null || return 1
	local json
	json=$("$bin" ls --json --no-pids 2>/dev/null) || return 1
	printf '%s\n' "$json" | jq -r --arg t "ipcxt-$tag" --arg k "$keyprefix" \
		'.[] | select((.name | contains($t)) or ((.key // "") | startswith($k))) | .url'
}

raw_found() {
	ls -1 /dev/shm 2>/dev/null | grep "ipcxt-$tag" | sed 's|^|/dev/shm/|'
	ls -1 /dev/mqueue 2>/dev/null | grep "ipcxt-$tag" | sed 's|^|mqueue /|'
	grep -o "@ipcxt-$tag[^ ]*" /proc/net/unix 2>/dev/null | sort -u
	for f in msg sem shm; do
		awk -v p="$keyprefix" -v f="$f" 'NR > 1 {
			k = sprintf("0x%08x", $1 < 0 ? $1 + 4294967296 : $1)
			if (index(k, p) == 1) print "sysv " f " key=" k " id=" $2 }' /proc/sysvipc/$f
	done
}

found() {
	local urls raw
	if urls=$(ls_urls); then
		printf '%s' "$urls${urls:+$'\n'}"
	else
		echo "(ipcx ls --json unavailable: looking directly)" >&2
	fi
	raw=$(raw_found)
	# What ls listed is enough; anything only the direct look found is reported too.
	if [ -n "$raw" ] && [ -z "$urls" ]; then
		printf '%s\n' "$raw"
	fi
	ls -1d /tmp/ipcxt-"$tag"* 2>/dev/null
	servers | sed 's/^/a nats-server still running: /'
}

# nats-server processes a test started: their folders carry the tag.
servers() {
	pgrep -a -f "^nats-server .*/tmp/ipcxt-$tag" 2>/dev/null
}

remove() {
	local u p
	for p in $(servers | cut -d' ' -f1); do
		kill -KILL "$p" 2>/dev/null
	done
	for u in $(ls_urls 2>/dev/null); do
		"$bin" rm --force "$u" 2>/dev/null
	done
	rm -rf /dev/shm/*ipcxt-"$tag"* /dev/mqueue/*ipcxt-"$tag"* /tmp/ipcxt-"$tag"* 2>/dev/null
	for f in msg sem shm; do
		for id in $(awk -v p="$keyprefix" 'NR > 1 {
			k = sprintf("0x%08x", $1 < 0 ? $1 + 4294967296 : $1)
			if (index(k, p) == 1) print $2 }' /proc/sysvipc/$f); do
			ipcrm -"${f:0:1}" "$id" 2>/dev/null
		done
	done
}

case "${1:-}" in
setup)
	remove
	;;
check)
	left=$(found)
	if [ -n "$left" ]; then
		echo "objects left behind by the test suite:"
		echo "$left"
		remove
		exit 1
	fi
	echo "no objects left behind"
	;;
*)
	echo "usage: leakcheck.sh setup|check" >&2
	exit 2
	;;
esac
