# System V keys of a test run; sourced, never run.
#
# A key is the run tag's first four hex digits less the top bit (so that it
# stays a positive int, which URLs in decimal need), then 16 bits of the
# test's own: 0xTTTTxxxx.  t_sysv_key() (tests/support/tsupport.c) and
# `ipcx bench` (bench/driver.c) make the same; tests/leakcheck.sh finds a
# run's objects by the prefix, so that other runs' keys, even with a tag of
# the same first byte, are not taken for this run's.

# sysv_key_prefix TAG: "0xTTTT".
sysv_key_prefix() {
	local hi=$((16#${1:0:4} & 0x7fff))
	printf '0x%04x' $((hi ? hi : 0x7fff)) # never 0, as t_sysv_key()
}

# sysv_key_of TAG N: the run's key with N's low 16 bits.
sysv_key_of() {
	printf '%s%04x' "$(sysv_key_prefix "$1")" $(($2 & 0xffff))
}
