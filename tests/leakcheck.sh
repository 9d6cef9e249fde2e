#!/usr/bin/env bash
# The suite's leak check.  Every object a test creates carries the run's tag
# (IPCX_TEST_TAG) in its name, or, for System V, in its key (0x7e, then the
# tag's first byte).  "setup" clears what an earlier, failed run of this build
# left; "check" fails if anything tagged is still there after the suite.
set -u
tag=${IPCX_TEST_TAG:?}
keyprefix=$(printf '0x7e%s' "${tag:0:2}")

found() {
	ls -1 /dev/shm 2>/dev/null | grep "ipcxt-$tag" | sed 's|^|/dev/shm/|'
	ls -1 /dev/mqueue 2>/dev/null | grep "ipcxt-$tag" | sed 's|^|mqueue /|'
	ls -1d /tmp/ipcxt-"$tag"* 2>/dev/null
	grep -o "@ipcxt-$tag[^ ]*" /proc/net/unix 2>/dev/null | sort -u
	for f in msg sem shm; do
		awk -v p="$keyprefix" -v f="$f" 'NR > 1 {
			k = sprintf("0x%08x", $1 < 0 ? $1 + 4294967296 : $1)
			if (index(k, p) == 1) print "sysv " f " key=" k " id=" $2 }' /proc/sysvipc/$f
	done
}

remove() {
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
