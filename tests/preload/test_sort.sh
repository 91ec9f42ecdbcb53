#!/bin/sh
# SPDX-License-Identifier: MIT
# test_sort - sort(1) on a generated 50 MB file under libfancymalloc, in
# memory (large buffers, several threads) and as an external merge sort
# (small buffer, temporary files); byte for byte the same as under glibc.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_prog sort awk cmp
check_preloaded sort

# 2.5 million lines, about 50 MB; deterministic.
awk 'BEGIN { for (i = 1; i <= 2500000; i++)
               printf "%d %s%d line %d\n", (i * 7919) % 1000003, substr("qwertyuiopasdfghjklzxcvbnm", 1 + i % 26, 1 + i % 7), i % 1013, i }' \
  >"$tmp/in.txt" || hard "awk failed"
size=$(wc -c <"$tmp/in.txt")
[ "$size" -gt 40000000 ] || hard "generated only $size bytes"

# run NAME SORT-OPTIONS...: sort under glibc and libfancymalloc, compare.
run() {
  name=$1
  shift
  glibc sort "$@" -T "$tmp" "$tmp/in.txt" >"$tmp/g.out" 2>"$tmp/g.err"
  gs=$?
  fancy sort "$@" -T "$tmp" "$tmp/in.txt" >"$tmp/f.out" 2>"$tmp/f.err"
  fs=$?
  [ $fs -eq 0 ] || { cat "$tmp/f.err" >&2; fail "sort $* exited with $fs under libfancymalloc"; }
  same_status "sort $*" $gs $fs
  same_output "$name (sort $*)" "$tmp/g.out" "$tmp/f.out"
  rm -f "$tmp/g.out" "$tmp/f.out"
}
run "in memory, 2 threads" --parallel=2 -S 200M
run "external merge" -S 4M --parallel=2 -k2,2 -k1,1n
run "numeric, unique" -n -u --parallel=1
exit 0
