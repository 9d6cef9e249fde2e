#!/usr/bin/env bash
# ipcx advise: for each need, every recommendation meets it according to
# docs/transports.md's "Choosing one" table (read here, independently of the
# program), every other row is left out with a reason, and figures from a
# benchmark run decide --latency and --rate.
source "$(dirname "$0")/lib/common.bash"

src=$(cd "$(dirname "$0")/../.." && pwd)
table=$src/docs/transports.md

# check_need ARGS...: run ipcx advise --json ARGS and judge it against the table.
check_need() {
	"$IPCX" advise --json "$@" >"$T/advice.json" 2>"$T/advice.err"
	local rc=$?
	if python3 - "$table" "$T/advice.json" "$rc" "$@" <<'PY'; then pass "advise $*"; else fail "advise $*"; fi
import json, re, sys
table, answer, rc, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
doc = open(table).read()
sec = doc.split("## Choosing one", 1)[1].split("\n## ", 1)[0]
rows = {}
for line in sec.splitlines():
    if not line.startswith("| `"):
        continue
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    url = re.match(r"`([^`]*)`(?: \(([^)]*)\))?", c[0])
    label = url.group(1) + (" (%s)" % url.group(2) if url.group(2) else "")
    rows[label] = dict(scope=c[1], reliable=c[2].startswith("yes"), outlives=c[3],
                       largest=int(c[4]), writers=c[5], fanout=c[6] == "yes", tools=c[7] == "yes")
assert len(rows) >= 14, "the table has %d rows" % len(rows)
a = json.load(open(answer))
need = {}
i = 0
while i < len(args):
    k = args[i]
    if k in ("--hosts", "--size", "--latency", "--rate", "--bench"):
        need[k] = args[i + 1]; i += 2
    else:
        need[k] = True; i += 1
def size_of(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]
def meets(r):
    if "--hosts" in need and int(need["--hosts"]) > 1 and r["scope"] != "network": return False
    if "--related" not in need and r["scope"] == "related": return False
    if "--reliable" in need and not r["reliable"]: return False
    if "--persist" in need and r["outlives"] == "no": return False
    if "--fan-out" in need and not r["fanout"]: return False
    if "--many-writers" in need and r["writers"] == "no": return False
    if "--language-agnostic" in need and not r["tools"]: return False
    if "--size" in need:
        limit = r["largest"]
        if "--many-writers" in need and r["writers"].isdigit(): limit = int(r["writers"])
        if size_of(need["--size"]) > limit: return False
    return True
rec = [x["table_url"] for x in a["recommended"]]
out = {x["table_url"]: x["why"] for x in a["left_out"]}
assert sorted(rec + list(out)) == sorted(rows), "rows answered differ from the table's"
for u in rec:
    assert meets(rows[u]), "%s recommended but the table says it breaks a need" % u
for u, why in out.items():
    assert why, "%s left out without a reason" % u
    # Left out by the facts only when the table says so; by figures otherwise.
    if meets(rows[u]):
        assert "--latency" in need or "--rate" in need, "%s left out though it meets the needs: %s" % (u, why)
assert (rc == 0) == bool(rec), "exit status %d with %d recommendations" % (rc, len(rec))
# Figures: a recommendation's measured round trip is within --latency; one
# left out for speed is measured above it.
if "--bench" in need:
    res = json.load(open(need["--bench"]))["results"]
    for x in a["recommended"]:
        if "--latency" in need and "rtt_ns" in x:
            assert x["rtt_ns"] <= float(need["--latency"]) * 1000, x
    for u, why in out.items():
        if meets(rows[u]):
            assert "round trip here" in why or "msg/s here" in why or "not measured" in why, (u, why)
            if "not measured" in why:
                assert not any(r["transport"] == [x for x in rows if x == u][0].split(":")[0] and r["impl"] == "ipcx"
                               for r in res), "%s is in the figures" % u
    if "--latency" in need:
        assert any("round trip here" in w for w in out.values()), "nothing left out for its round trip"
        assert rec, "nothing fast enough, though --latency lies between two measured round trips"
PY
}

for need in "" --related "--hosts 2" --persist --fan-out --many-writers --language-agnostic \
	--reliable "--size 9000" "--size 100K" "--size 1M --many-writers" \
	"--related --many-writers --size 5000" "--hosts 3 --reliable --language-agnostic" \
	"--persist --reliable --size 64K"; do
	# shellcheck disable=SC2086
	check_need $need
done

# No transport meets these at once: exit 1, one sentence, and every row says why.
run "$IPCX" advise --hosts 2 --persist --language-agnostic
check "impossible needs exit 1" [ "$RC" = 1 ]
check "impossible needs say so in one sentence" bash -c "[ \$(wc -l <'$T/run.err') = 1 ] && grep -q 'no transport meets' '$T/run.err'"

# --measure with only candidates the benchmark has no row for (the NATS
# stream): no benchmark run, an answer, and the stream not measured.
run "$IPCX" advise --hosts 2 --persist --measure --json
check "--measure with nothing to measure answers (exit 0)" [ "$RC" = 0 ]
check "--measure with nothing to measure runs no benchmark" \
	bash -c "! grep -q 'measuring' '$T/run.err'"
check "the NATS stream is recommended, not measured, with no bench name" python3 -c '
import json, sys
rec = json.load(open(sys.argv[1]))["recommended"]
s = [r for r in rec if "stream=" in r["table_url"]]
assert s and s[0]["bench"] is None and "rtt_ns" not in s[0], rec' "$T/run.out"

run "$IPCX" advise --size lots
check "a bad --size is a usage error" [ "$RC" = 2 ]
run "$IPCX" advise --latency 5
check "--latency without figures is a usage error that says what to add" \
	bash -c "[ $RC = 2 ] && grep -q -- '--measure' '$T/run.err'"


# docs/cli.md's answers that need no figures are what the program says now
# (they name the queues' limits: compared only where those are the
# kernel's defaults, 8192, as on the machine the docs were written on).
if [ "$(cat /proc/sys/fs/mqueue/msgsize_max)" = 8192 ] && [ "$(cat /proc/sys/kernel/msgmax)" = 8192 ]; then
	n=0
	while IFS= read -r cmd; do
		n=$((n + 1))
		python3 - "$src/docs/cli.md" "$cmd" >"$T/doc.out" <<'PY'
import sys
doc, cmd = open(sys.argv[1]).read(), sys.argv[2]
block = doc.split("```\n$ " + cmd + "\n", 1)[1].split("```", 1)[0]
sys.stdout.write(block)
PY
		# shellcheck disable=SC2086
		run "$IPCX" ${cmd#ipcx }
		if diff -u "$T/doc.out" "$T/run.out" >"$T/doc.diff"; then
			pass "docs/cli.md: $cmd"
		else
			fail "docs/cli.md's answer to '$cmd' is not what it prints now: $(cat "$T/doc.diff")"
		fi
	done < <(grep -E '^\$ ipcx advise ' "$src/docs/cli.md" | grep -v -- '--bench' | sed 's/^\$ //')
	check "docs/cli.md answers questions without figures" [ "$n" -ge 2 ]
else
	pass "skip: the queues' limits here are not the kernel's defaults; docs/cli.md's answers not compared"
fi

# Figures from a real (short) benchmark run: --latency set between the two
# measured round trips leaves the slower out, for its figure.
"$IPCX" bench --quick --only shm,unix --sizes 64 --json "$T/b.json" >/dev/null 2>"$T/b.err" ||
	fail "bench failed: $(cat "$T/b.err")"
mid=$(python3 -c '
import json, sys
r = {x["transport"]: x["rtt_ns"]["p50"] for x in json.load(open(sys.argv[1]))["results"] if x["impl"] == "ipcx"}
a, b = sorted([r["shm"], r["unix"]])
print("%.3f" % ((a + b) / 2 / 1000))' "$T/b.json")
check_need --latency "$mid" --bench "$T/b.json"
check_need --rate 1 --bench "$T/b.json"
finish
