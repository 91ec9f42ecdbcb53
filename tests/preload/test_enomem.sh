#!/bin/sh
# SPDX-License-Identifier: MIT
# test_enomem - "a request the kernel's overcommit policy would refuse
# fails with ENOMEM, as under glibc" (fancyalloc(7), "glibc
# compatibility"): malloc, calloc and realloc of twice RAM plus swap
# return NULL with errno ENOMEM under the preload, as do 1 TiB and 64 TiB,
# and python3's bytearray(1 << 40) raises MemoryError under fancyrun.
# Skipped in overcommit mode 1, where the kernel refuses nothing.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper introspect
mode=$(cat /proc/sys/vm/overcommit_memory 2>/dev/null) || skip "no /proc/sys/vm/overcommit_memory"
[ "$mode" != 1 ] || skip "vm.overcommit_memory is 1: the kernel refuses no request"
kb=$(awk '/^(MemTotal|SwapTotal):/ { s += $2 } END { print s }' /proc/meminfo)
[ -n "$kb" ] && [ "$kb" -gt 0 ] || hard "cannot read /proc/meminfo"
beyond=$((kb * 1024 * 2))

for n in $beyond $((1 << 40)) $((64 << 40)); do
  [ "$n" -gt $((kb * 1024)) ] || continue
  fancy "$helpers/introspect" enomem $n >"$tmp/out" 2>"$tmp/err"
  st=$?
  cat "$tmp/out"
  [ $st -eq 0 ] || { cat "$tmp/err" >&2; fail "requests of $n bytes (RAM + swap: $((kb * 1024))) did not fail with ENOMEM"; }
done
ok "malloc/calloc/realloc beyond RAM + swap ($((kb * 1024)) bytes): NULL, ENOMEM"

require_prog python3
[ $((1 << 40)) -gt $((kb * 1024)) ] || skip "1 TiB fits in RAM + swap here"
fancyrun=$top_builddir/bin/fancyrun
FANCYRUN_LIBRARY=$FANCY_LIB $TIMEOUT sh "$fancyrun" python3 -c '
try:
    b = bytearray(1 << 40)
    print("no MemoryError")
except MemoryError:
    print("MemoryError")' >"$tmp/out" 2>"$tmp/err"
st=$?
[ $st -eq 0 ] && [ "$(cat "$tmp/out")" = MemoryError ] ||
  { cat "$tmp/out" "$tmp/err" >&2; fail "python3 bytearray(1 << 40) under fancyrun: no MemoryError"; }
ok "python3 bytearray(1 << 40) raises MemoryError under fancyrun"
exit 0
