#!/usr/bin/env bash
# ipcx ls / info / rm / gc: objects of every kind made by other programs
# (raw system calls, mkfifo) are listed with the right kind and owner, in the
# table and in JSON (checked with jq); rm removes each and nothing else; gc
# removes what a listener killed with SIGKILL left, and leaves a live one.
set -u
B=${IPCX_BIN:?}
H=${IPCX_TEST_HELPER:?}
TAG=${IPCX_TEST_TAG:?}
N="ipcxt-$TAG-$$"
D=$(mktemp -d "/tmp/ipcxt-$TAG-$$-XXXXXX")
. "$(dirname "$0")/lib/sysvkey.bash"
key() { sysv_key_of "$TAG" $(($$ * 17 + $1 * 7919)); }
KMQ=$(key 1) KSEM=$(key 2) KSHM=$(key 3) KLIVE=$(key 4)
ME=$(id -u)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -f /dev/shm/"$N"-* /dev/shm/sem."$N"-*
	for u in "sysvmq:$KMQ" "sysvsem:$KSEM" "sysvshm:$KSHM" "sysvmq:$KLIVE" "mq:/$N-mq" \
		"mq:/$N-dead" "mq:/$N-live"; do
		"$B" rm "$u" 2>/dev/null
	done
	rm -rf "$D"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v jq >/dev/null || fail "jq is missing (make deps installs it)"

# Start "$H" ARGS... with its stdin and stdout on FIFOs; wait for "ready".
# Sets HOLD_PID and HOLD_FD (write a byte to HOLD_FD to let it finish: later
# helpers inherit the descriptor, so closing it would not be seen).
start_held() {
	local tag=$1; shift
	local c="$D/ctl/$tag"
	mkdir -p "$D/ctl"
	mkfifo "$c.in" "$c.out"
	"$H" "$@" <"$c.in" >"$c.out" &
	HOLD_PID=$!
	PIDS+=("$HOLD_PID")
	exec {HOLD_FD}>"$c.in"
	local line
	exec {rd}<"$c.out"
	read -r -t 60 line <&$rd || fail "$*: no ready"
	exec {rd}<&-
	[ "$line" = ready ] || fail "$*: said '$line'"
}

# ---- every kind, made without ipcx -----------------------------------------
"$H" raw sysvmq "$KMQ" || fail "msgget"
"$H" raw sysvsem "$KSEM" || fail "semget"
"$H" raw sysvshm "$KSHM" || fail "shmget"
"$H" raw shm "/$N-shm" || fail "shm_open"
"$H" raw sem "/$N-sem" || fail "sem_open"
"$H" raw mq "/$N-mq" || fail "mq_open"
mkfifo -m 600 "$D/fifo" || fail "mkfifo"
"$H" raw unix "$D/sock" || fail "bind"
start_held abstract hold unix "@$N-abs"
ABS_FD=$HOLD_FD ABS_PID=$HOLD_PID

declare -A KIND=(
	["sysvmq:$KMQ"]=sysv-msg ["sysvsem:$KSEM"]=sysv-sem ["sysvshm:$KSHM"]=sysv-shm
	["shm:/$N-shm"]=posix-shm ["sem:/$N-sem"]=posix-sem ["mq:/$N-mq"]=posix-mq
	["fifo:$D/fifo"]=fifo ["unix:$D/sock"]=unix-socket ["unix:@$N-abs"]=unix-socket
)

"$B" ls --json >"$D/ls.json" || fail "ls --json"
jq -e 'type == "array"' "$D/ls.json" >/dev/null || fail "ls --json is not an array"
# Queues are listed through the mqueue mount, which ls makes only as root.
MQ_LISTED=1
if [ "$ME" != 0 ] && ! grep -q " - mqueue " /proc/self/mountinfo; then MQ_LISTED=0; fi
for u in "${!KIND[@]}"; do
	[ "${KIND[$u]}" = posix-mq ] && [ $MQ_LISTED = 0 ] && continue
	got=$(jq -r --arg u "$u" '.[] | select(.url == $u) | "\(.kind) \(.owner_uid) \(.ipcx) \(.orphan)"' "$D/ls.json")
	[ "$got" = "${KIND[$u]} $ME false false" ] || fail "$u: ls --json says '$got'"
done
# System V keys are 0x hex; the fields the documentation promises are there.
jq -e --arg k "$KMQ" '[.[] | select(.key == $k)] | length == 1' "$D/ls.json" >/dev/null ||
	fail "sysv key not \"$KMQ\""
jq -e --arg u "sysvshm:$KSHM" '.[] | select(.url == $u) |
	(.id | type == "number") and .size == 4096 and .mode == "0600" and (.pids | type == "array")' \
	"$D/ls.json" >/dev/null || fail "sysv-shm fields"
jq -e --arg u "unix:@$N-abs" --argjson p "$ABS_PID" '.[] | select(.url == $u) | .pids | index($p) != null' \
	"$D/ls.json" >/dev/null || fail "the abstract socket's holder is not among its pids"

# Filters.
"$B" ls --json --kind fifo,sysv-sem --name "$TAG-$$" >"$D/f.json" || fail "ls filtered"
jq -e 'all(.[]; .kind == "fifo" or .kind == "sysv-sem")' "$D/f.json" >/dev/null ||
	fail "--kind let other kinds through"
jq -e --arg u "fifo:$D/fifo" --arg s "sysvsem:$KSEM" \
	'any(.[]; .url == $u) and all(.[]; .url != $s)' "$D/f.json" >/dev/null ||
	fail "--kind fifo,sysv-sem --name: want our FIFO, not our semaphore set (its URL lacks the name)"
"$B" ls --json --owner 4000000 | jq -e 'length == 0' >/dev/null || fail "--owner"
"$B" ls --kind nosuch 2>/dev/null; [ $? -eq 2 ] || fail "unknown kind is a usage error"
"$B" ls | grep -q -- "$N-shm" || fail "the table lacks /$N-shm"
"$B" ls | grep -q -- "$KMQ" || fail "the table lacks $KMQ"
"$B" info "shm:/$N-shm" | grep -q "posix-shm" || fail "info"
"$B" info --json "sysvmq:$KMQ" | jq -e '.messages == 0 and .kind == "sysv-msg"' >/dev/null ||
	fail "info --json"
"$B" info "fifo:$D/nothing" 2>/dev/null; [ $? -eq 1 ] || fail "info on nothing"

# Names are any bytes: the JSON stays valid, and names that are UTF-8 come back intact.
ODD="$D/odd \"q\" back\\slash é"$'\t'"tab"
mkfifo "$ODD" "$D/bad"$'\xff'"byte" || fail "mkfifo odd names"
"$B" ls --json --kind fifo "$D" >"$D/odd.json" || fail "ls --json with odd names"
jq -e --arg u "fifo:$ODD" 'any(.[]; .url == $u)' "$D/odd.json" >/dev/null ||
	fail "odd name not intact: $(grep -a odd "$D/odd.json")"
jq -e 'any(.[]; .url | contains("bad\u00ffbyte"))' "$D/odd.json" >/dev/null ||
	fail "a byte that is not UTF-8 is not escaped: $(grep -a bad "$D/odd.json")"
rm -f "$ODD" "$D/bad"$'\xff'"byte"

# ---- rm ----------------------------------------------------------------------
: >"$D/regular"
ln -s "$D/fifo" "$D/link"
"$B" rm "fifo:$D/regular" 2>"$D/err"; [ $? -eq 1 ] || fail "rm removed a regular file"
grep -q "not a FIFO" "$D/err" || fail "rm of a regular file: $(cat "$D/err")"
"$B" rm "fifo:$D/link" 2>/dev/null; [ $? -eq 1 ] || fail "rm followed a symlink"
[ -f "$D/regular" ] && [ -L "$D/link" ] || fail "rm touched what it must not"
"$B" rm "unix:@$N-abs" 2>/dev/null; [ $? -eq 1 ] || fail "an abstract socket has no file to rm"
for u in "${!KIND[@]}"; do
	[ "$u" = "unix:@$N-abs" ] && continue
	"$B" rm "$u" || fail "rm $u"
	"$B" rm "$u" 2>"$D/err"; [ $? -eq 1 ] || fail "$u removed twice"
	grep -q "No such\|no such" "$D/err" || fail "rm of a missing $u: $(cat "$D/err")"
done
echo >&$ABS_FD
wait "$ABS_PID" || fail "the abstract holder"
# Nothing left but the test's own control FIFOs.
"$B" ls --json --name "$N" | jq -e 'all(.[]; .url | contains("/ctl/"))' >/dev/null ||
	fail "left after rm: $("$B" ls --name "$N")"
if [ "$ME" = 0 ]; then
	mkfifo "$D/theirs" && chown 65534 "$D/theirs"
	"$B" rm "fifo:$D/theirs" 2>"$D/err"; [ $? -eq 1 ] || fail "root removed another user's FIFO without --force"
	grep -q -- "--force" "$D/err" || fail "the refusal does not say --force"
	"$B" rm --force "fifo:$D/theirs" || fail "rm --force"
fi
"$B" rm "tcp://127.0.0.1:1" 2>/dev/null; [ $? -eq 1 ] || fail "rm of a non-object"
"$B" rm 2>/dev/null; [ $? -eq 2 ] || fail "rm without URL is a usage error"

# ---- gc: a listener killed with SIGKILL leaves an orphan -----------------------
start_held dead listen "shm:/$N-dead"
DEAD_PID=$HOLD_PID DEAD_FD=$HOLD_FD
start_held dead2 listen "sysvmq:$KLIVE"
LIVE_PID=$HOLD_PID LIVE_FD=$HOLD_FD
start_held live listen "shm:/$N-live"
LIVE2_PID=$HOLD_PID LIVE2_FD=$HOLD_FD
"$B" info --json "shm:/$N-dead" | jq -e '.ipcx and .creator_alive and (.orphan | not)' >/dev/null ||
	fail "a live listener's object: $("$B" info --json "shm:/$N-dead")"
"$B" info --json "shm:/$N-live" | jq -e '.stats.peers == 1' >/dev/null ||
	fail "ring statistics: $("$B" info --json "shm:/$N-live")"
# rm leaves a live listener's ring alone and says whose it is.
"$B" rm "shm:/$N-live" 2>"$D/err"; [ $? -eq 1 ] || fail "rm removed a live listener's ring"
grep -q "in use by a live listener (pid $LIVE2_PID)" "$D/err" || fail "rm of a live ring said: $(cat "$D/err")"
# A FIFO and a Unix socket listener, killed as well: their files are orphans.
start_held deadfifo listen "fifo:$D/dead.fifo"
DF_PID=$HOLD_PID
start_held deadsock listen "unix:$D/dead.sock"
DS_PID=$HOLD_PID
kill -9 "$DF_PID" "$DS_PID"; wait "$DF_PID" "$DS_PID" 2>/dev/null
"$B" gc --dry-run --json --match "*:$D/dead.*" >"$D/gc2.json" || fail "gc --dry-run (files)"
jq -e --arg f "fifo:$D/dead.fifo" --arg s "unix:$D/dead.sock" \
	'length == 2 and any(.[]; .url == $f) and any(.[]; .url == $s)' "$D/gc2.json" >/dev/null ||
	fail "a killed FIFO and socket listener's files: $(cat "$D/gc2.json")"
"$B" gc --match "*:$D/dead.*" >/dev/null || fail "gc (files)"
[ -e "$D/dead.fifo" ] || [ -e "$D/dead.sock" ] && fail "gc left a killed listener's file"
kill -9 "$DEAD_PID"; wait "$DEAD_PID" 2>/dev/null
"$B" info --json "shm:/$N-dead" | jq -e '.ipcx and .orphan' >/dev/null || fail "not an orphan after SIGKILL"
# Only this test's objects: other suites run at the same time.
"$B" gc --dry-run --json --match "shm:/$N-*" >"$D/gc.json" || fail "gc --dry-run"
jq -e --arg u "shm:/$N-dead" 'length == 1 and .[0].url == $u' "$D/gc.json" >/dev/null ||
	fail "gc --dry-run: $(cat "$D/gc.json")"
[ -e "/dev/shm/$N-dead" ] || fail "a dry run removed something"
"$B" gc --match "shm:/$N-*" | grep -q "removed shm:/$N-dead" || fail "gc did not say what it removed"
[ -e "/dev/shm/$N-dead" ] && fail "gc left the orphan"
[ -e "/dev/shm/$N-live" ] || fail "gc removed a live one"
"$B" info --json "sysvmq:$KLIVE" | jq -e '.ipcx and (.orphan | not)' >/dev/null || fail "sysvmq listener"
echo >&$LIVE_FD
echo >&$LIVE2_FD
wait "$LIVE_PID" || fail "sysvmq listener exit"
wait "$LIVE2_PID" || fail "shm listener exit"
[ -e "/dev/shm/$N-live" ] && fail "the listener did not remove its object on close"
"$B" info "sysvmq:$KLIVE" 2>/dev/null; [ $? -eq 1 ] || fail "sysvmq listener left its queue"
exit 0
