#!/usr/bin/env bash
# The man pages: make install puts ipcx(1), ipcx(7) and a section-3 page for
# every function the library exports; man renders each without a warning;
# ipcx(1) has a section for every verb the CLI lists.
source "$(dirname "$0")/lib/common.bash"

build=$(dirname "$(dirname "$IPCX")")
prefix=$T/prefix
if ! cmake --install "$build" --prefix "$prefix" >"$T/install.log" 2>&1; then
	cat "$T/install.log"
	fail "cmake --install failed"
	finish
fi
man=$prefix/share/man
lib=$(find "$prefix" -name libipcx.so | head -1)
[ -n "$lib" ] || { fail "no libipcx.so installed"; finish; }

# render PAGE: man's own formatting, warnings on (groff -ww) to stderr.
render() {
	(cd "$man" && MANWIDTH=80 man --warnings -l "$1") 2>"$T/man.err" >"$T/man.out"
	[ $? -eq 0 ] && [ ! -s "$T/man.err" ] && [ -s "$T/man.out" ]
}

funcs=$(nm -D --defined-only "$lib" | awk '$2 == "T" && $3 ~ /^ipcx_/ { print $3 }')
[ "$(echo "$funcs" | wc -l)" -gt 50 ] || fail "too few exported functions found in $lib"
missing=0
for f in $funcs; do
	page=$man/man3/$f.3
	if [ ! -f "$page" ]; then
		fail "$f has no man page: add it to the NAME line of a page in docs/man/"
		missing=1
	elif ! render "man3/$f.3"; then
		fail "man3/$f.3 does not render cleanly: $(head -3 "$T/man.err")"
	elif ! grep -q "$f" "$T/man.out"; then
		fail "man3/$f.3 does not mention $f"
	fi
done
[ $missing -eq 0 ] && pass "every exported function ($(echo "$funcs" | wc -l)) has a page that renders"

for p in man1/ipcx.1 man7/ipcx.7; do
	check "$p renders without warnings" render "$p"
done

# Every verb of 'ipcx --help' is a section of ipcx(1).
render man1/ipcx.1
verbs=$("$IPCX" --help | awk '/^verbs:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$verbs" ] || fail "ipcx --help lists no verbs"
for v in $verbs; do
	grep -q "^   ipcx $v\$" "$T/man.out" || fail "ipcx(1) has no section for the verb $v"
done
pass "ipcx(1) has a section for each of: $(echo $verbs)"

# A man page that is not generated from docs/man would go unchecked.
extra=$(find "$man" -type f | sed "s|^$man/||" | sort)
check "only ipcx's pages are installed" bash -c "! echo '$extra' | grep -v -E '^man(1/ipcx\.1|7/ipcx\.7|3/ipcx_[a-z_]+\.3)\$'"
finish
