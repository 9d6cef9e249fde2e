#!/usr/bin/env bash
# ipcx bench: a short run writes a table, JSON with the fields the issue
# names, and an HTML report that a headless browser renders and takes a
# screenshot of; an interrupted run (SIGINT to the bench alone, and Ctrl-C
# to its whole process group) exits 130 and leaves none of its objects
# behind.  Nothing here looks at how fast anything was.
set -euo pipefail
bin=${IPCX_BIN:?}
tag=${IPCX_TEST_TAG:?}
. "$(dirname "$0")/lib/sysvkey.bash"
work=$(mktemp -d "/tmp/ipcxt-$tag-benchsh-XXXXXX")
bgpid=
cleanup() {
	[ -n "$bgpid" ] && kill -KILL -- "-$bgpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- usage errors ------------------------------------------------------------
set +e
"$bin" bench --sizes 12Q >/dev/null 2>"$work/err"; st=$?
set -e
[ "$st" = 2 ] || fail "a bad size should exit 2, got $st"
grep -q "bad size" "$work/err" || fail "no word about the bad size: $(cat "$work/err")"
set +e
"$bin" bench --only no-such-thing >/dev/null 2>"$work/err"; st=$?
set -e
[ "$st" = 2 ] || fail "--only matching nothing should exit 2, got $st"
for fd in x 9 0; do # not a number; not open; open only for reading
	set +e
	"$bin" bench --ready-fd "$fd" --only pipe >/dev/null 2>"$work/err" 9>&- </dev/null; st=$?
	set -e
	[ "$st" = 2 ] || fail "--ready-fd $fd should exit 2, got $st"
	grep -q "ready-fd" "$work/err" || fail "no word about --ready-fd $fd: $(cat "$work/err")"
done

# ---- a short run: table, JSON, report -------------------------------------------
"$bin" bench --quick --only pipe,unix,sem,mutex,pubsub-shm --sizes 64,1K \
	--json "$work/b.json" --report "$work/b.html" >"$work/table" 2>"$work/err" \
	|| fail "bench failed: $(cat "$work/err")"
grep -q "^pipe  *raw" "$work/table" || fail "no pipe row in the table: $(cat "$work/table")"
grep -q "^sem  *raw  *handoff" "$work/table" || fail "no semaphore row: $(cat "$work/table")"
grep -q "pinned\|not pinned" "$work/table" || fail "the table does not say how it pinned"

python3 - "$work/b.json" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
env, res = d["env"], d["results"]
for k in ("cpu", "cores", "kernel", "pinned", "sizes"):
    assert k in env, "env lacks " + k
assert env["sizes"] == [64, 1024], env["sizes"]
assert res, "no results"
seen = set()
for r in res:
    for k in ("transport", "impl", "mode", "size"):
        assert k in r, "result lacks %s: %r" % (k, r)
    # --only pubsub-shm takes pubsub-shm-drop too (a name and its "-" suffixes)
    assert r["transport"] in ("pipe", "unix", "sem", "mutex", "pubsub-shm", "pubsub-shm-drop"), r
    assert r["impl"] in ("raw", "ipcx", "zmq", "nng", "iceoryx"), r
    seen.add((r["transport"], r["impl"], r["mode"], r["size"]))
    if "rtt_ns" in r:
        q = r["rtt_ns"]
        assert 0 < q["p50"] <= q["p99"] <= q["p999"] <= q["max"], q
    if r["transport"] in ("pipe", "unix"):
        assert "rtt_ns" in r and "msgs_per_s" in r and "bytes_per_s" in r, r
        assert r["msgs_per_s"] > 0
        # bytes/s is messages/s times the size, one way.
        assert abs(r["bytes_per_s"] - r["msgs_per_s"] * r["size"]) <= 1e-4 * r["bytes_per_s"] + 1, r
# Each mechanism beside its raw baseline (and, for unix, the peers built).
for size in (64, 1024):
    for t in ("pipe", "unix"):
        for impl in ("raw", "ipcx"):
            assert (t, impl, "blocking", size) in seen, (t, impl, size, sorted(seen))
# Fan-out: one publisher and 1 or 4 subscribers, latency and rate per subscriber.
for r in res:
    if r["transport"] == "pubsub-shm" and r["impl"] == "ipcx":
        # A case that failed is in "skipped" with its note: say it.
        why = [x for x in d.get("skipped", []) if (x["transport"], x["mode"], x["size"]) ==
               (r["transport"], r["mode"], r["size"])]
        assert "rtt_ns" in r and r.get("msgs_per_s", 0) > 0 and r.get("lost") == 0, (r, why)
    # policy=drop: the publisher's own cost per message is in the note.
    if r["transport"] == "pubsub-shm-drop":
        assert re.match(r"publisher [0-9]+ ns CPU/msg, [0-9]+ msg/s; slowest subscriber", r.get("note", "")), r
for size in (64, 1024):
    for mode in ("1 sub", "4 subs"):
        assert ("pubsub-shm", "ipcx", mode, size) in seen, (mode, size, sorted(seen))
        # the same ring, subscribers taking batches (ipcx_sub_recvv)
        assert ("pubsub-shm", "ipcx", mode + " b64", size) in seen, (mode, size, sorted(seen))
        assert ("pubsub-shm-drop", "ipcx", mode, size) in seen, (mode, size, sorted(seen))
for impl in ("raw", "ipcx"):
    assert ("sem", impl, "handoff", 0) in seen, sorted(seen)
    assert ("mutex", impl, "contended", 0) in seen, sorted(seen)
    assert ("mutex", impl, "uncontended", 0) in seen, sorted(seen)
PY

# The report: self-contained (nothing fetched), and a browser draws every
# chart the run calls for, each with data, with no script error: two cost
# charts (ipcx over raw), two against the peers when a peer ran, two small
# charts per mechanism that carries messages, one for the primitives.
grep -qiE '(src|href)="https?:' "$work/b.html" && fail "the report loads something from the network"
want=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
res = d["results"]
msg = {r["transport"] for r in res if r["size"] > 0}
peer = any(r["impl"] not in ("raw", "ipcx") and not r["transport"].startswith("pubsub-") for r in res)
prim = any(r["size"] == 0 for r in res)
print(2 + 2 * peer + 2 * len(msg) + prim)' "$work/b.json")
[ "$want" -ge 7 ] || fail "the run should call for at least seven charts, got $want"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || fail "chromium is not installed (make deps installs it)"
# A private profile and HOME, so that the browser touches nothing shared.
HOME="$work" timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
	--no-first-run --disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$work/profile" --dump-dom "file://$work/b.html" \
	>"$work/dom.html" 2>"$work/browser.log" || fail "chromium failed: $(tail -5 "$work/browser.log")"
python3 - "$work/dom.html" "$want" <<'PY' || fail "the rendered report is not complete"
import html, json, re, sys
dom = open(sys.argv[1]).read()
m = re.search(r'id="render-check">([^<]*)<', dom)
assert m, "the page's script did not finish (no render check)"
got = json.loads(html.unescape(m.group(1)))
assert got["errors"] == [], "script errors: %r" % got["errors"]
assert got["empty"] == [], "charts without data: %r" % got["empty"]
assert got["charts"] == int(sys.argv[2]), "drew %d charts, expected %s" % (got["charts"], sys.argv[2])
assert dom.count('class="mark"') == got["marks"] > 0, "marks counted and drawn differ"
for h in ("What ipcx costs over the raw system calls", "Streams and sockets", "Primitives",
          "Publish/subscribe", "All results"):
    assert h in dom, "no section " + h
assert re.search(r"<th[^>]*>RTT p50</th>", dom), "no sortable table"
PY
# A screenshot of the page as the browser drew it (the top: what ipcx costs
# over the raw calls): a picture of the window's size, not blank, with
# ipcx's colour (#1f5fbf, the bars and lines of ipcx) in it.  Read with
# Debian's Pillow (python3-pil), hence Debian's own python3.
HOME="$work" timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
	--no-first-run --disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$work/profile" --hide-scrollbars --window-size=1200,1200 \
	--screenshot="$work/shot.png" "file://$work/b.html" \
	>"$work/browser.log" 2>&1 || fail "chromium's screenshot failed: $(tail -5 "$work/browser.log")"
/usr/bin/python3 - "$work/shot.png" <<'PY' || fail "the screenshot does not show the report"
import sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
assert img.size == (1200, 1200), "a screenshot of %dx%d, not of the 1200x1200 window" % img.size
colours = img.getcolors(maxcolors=1 << 24)
assert len(colours) > 50, "the screenshot is blank (%d colours)" % len(colours)
ipcx = sum(n for n, c in colours if c == (0x1f, 0x5f, 0xbf))
assert ipcx >= 1000, "ipcx's colour covers %d pixels of the screenshot: no charts drawn" % ipcx
PY

# ---- a size above a transport's limit: the note says which limit ---------------------
# 64 KiB is above the kernel's defaults for both queues (8192); a machine
# whose limits are higher measures instead, and this check says so.
"$bin" bench --quick --only mq,sysvmq --sizes 64K --json "$work/lim.json" \
	>/dev/null 2>"$work/err" || fail "bench of the queues failed: $(cat "$work/err")"
python3 - "$work/lim.json" \
	"mq:msgsize_max:$(cat /proc/sys/fs/mqueue/msgsize_max)" \
	"sysvmq:msgmax:$(cat /proc/sys/kernel/msgmax)" <<'PY' || fail "limit notes"
import json, sys
d = json.load(open(sys.argv[1]))
for arg in sys.argv[2:]:
    t, name, val = arg.split(":")
    if int(val) >= 65536:
        print("skip: %s's %s is %s here, not below 64 KiB" % (t, name, val))
        continue
    notes = {s["note"] for s in d["skipped"] if s["transport"] == t and s["impl"] == "ipcx"}
    ok = [r for r in d["results"] if r["transport"] == t and r["impl"] == "ipcx"]
    if not notes and ok:
        print("skip: %s took 64 KiB (CAP_SYS_RESOURCE?)" % t)
        continue
    want = "64 KiB is above %s's %s, %s" % (t, name, val)
    assert notes == {want}, "%s: notes %r, want %r" % (t, notes, want)
    print("ok: " + want)
PY

# ---- interrupted runs leave nothing behind ----------------------------------------
# Objects of a run are named ipcxt-TAG-bPID...; list whatever of them exists.
leftovers() {
	local p="ipcxt-$tag-b$1"
	ls -d /tmp/"$p"* 2>/dev/null || true
	ls /dev/shm /dev/mqueue 2>/dev/null | grep "$p" || true
	grep -o "$p[^ ]*" /proc/net/unix 2>/dev/null || true
}

interrupt_test() { # $1: "self" (SIGINT to the bench) or "group" (Ctrl-C)
	# The bench writes a newline on descriptor 3 once its first objects
	# exist; the read's timeout is only a guard.
	rm -f "$work/ready"
	mkfifo "$work/ready"
	setsid "$bin" bench --ready-fd 3 --only fifo,unix,mq,sysvmq,sem,sysvsem --sizes 64,64K,1M \
		>"$work/int.out" 2>"$work/int.err" 3>"$work/ready" &
	bgpid=$!
	exec 4<"$work/ready"
	IFS= read -r -t 120 -u 4 line || fail "the bench never said its objects exist: $(cat "$work/int.err")"
	if [ "$1" = self ]; then kill -INT "$bgpid"; else kill -INT -- "-$bgpid"; fi
	set +e
	wait "$bgpid"; st=$?
	set -e
	local pid=$bgpid
	bgpid=
	[ "$st" = 130 ] || fail "interrupted ($1) bench exited $st, not 130: $(cat "$work/int.err")"
	# One newline, then the descriptor was closed: nothing more comes.
	more=$(timeout 10 cat <&4 | wc -c) || fail "--ready-fd was left open"
	exec 4<&-
	[ -z "$line" ] && [ "$more" = 0 ] \
		|| fail "--ready-fd wrote '$line' and $more bytes more, not one newline"
	left=$(leftovers "$pid")
	[ -z "$left" ] || fail "interrupted ($1) bench left: $left"
	# System V: the run's two keys, from the pid as the bench makes them.
	key=$(sysv_key_of "$tag" $((pid * 2)))
	for f in msg sem shm; do
		awk -v k="$key" 'NR > 1 && sprintf("0x%08x", $1) == k { exit 1 }' /proc/sysvipc/$f \
			|| fail "interrupted ($1) bench left a System V $f object, key $key"
	done
}
interrupt_test self
interrupt_test group
echo "ok"
