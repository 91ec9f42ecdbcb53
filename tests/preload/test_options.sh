#!/bin/sh
# SPDX-License-Identifier: MIT
# test_options - the FANCY_* run-time options under the preload: a
# malformed value gives exactly one line on stderr, starting with
# "fancyalloc: " and naming the variable, and the program still runs
# correctly; good values give no message; FANCY_VERBOSE=1 shows the values
# in effect; FANCY_STATS=1 prints the statistics at exit, also for a
# program that closes stderr in an atexit handler (coreutils do).
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper workload
w=$(fancy "$helpers/workload" --which)
[ "$w" = libfancymalloc ] || fail "under LD_PRELOAD, malloc is served by $w"
glibc "$helpers/workload" >"$tmp/expected" 2>&1 || hard "workload fails under glibc"

# run VAR=VALUE...: the workload under the preload with these variables;
# stdout in $tmp/out, stderr in $tmp/err; fails on a wrong result.
run() {
  $TIMEOUT env "$@" LD_PRELOAD="$FANCY_LIB" "$helpers/workload" >"$tmp/out" 2>"$tmp/err"
  st=$?
  [ $st -eq 0 ] || { cat "$tmp/out" "$tmp/err" >&2; fail "workload with $*: status $st"; }
  cmp -s "$tmp/expected" "$tmp/out" || { cat "$tmp/out" >&2; fail "workload with $*: wrong output"; }
}

for bad in FANCY_ARENA_SIZE=banana FANCY_MEMORY_LIMIT=12q FANCY_HUGE_PAGES=maybe FANCY_HUGE_BLOCKS=2 \
           FANCY_POPULATE=2 FANCY_RECLAIM=yesno FANCY_PURGE_DELAY=soon \
           FANCY_SEGMENT_CACHE=-1 FANCY_STATS=verbose FANCY_VERBOSE=loud \
           FANCY_CHECK=please FANCY_ARENA_SIZE= FANCY_MEMORY_LIMIT=1x; do
  run "$bad"
  var=${bad%%=*}
  lines=$(wc -l <"$tmp/err")
  if [ "$lines" -ne 1 ] || ! grep -q "^fancyalloc: .*$var" "$tmp/err"; then
    cat "$tmp/err" >&2
    fail "$bad: expected one line \"fancyalloc: ... $var ...\" on stderr, got $lines"
  fi
  ok "$bad: $(cat "$tmp/err")"
done

for good in FANCY_ARENA_SIZE=32m FANCY_MEMORY_LIMIT=1g FANCY_HUGE_PAGES=1 FANCY_HUGE_BLOCKS=0 \
            FANCY_POPULATE=yes FANCY_RECLAIM=on FANCY_PURGE_DELAY=0 \
            FANCY_SEGMENT_CACHE=0 FANCY_STATS=0 FANCY_VERBOSE=off FANCY_CHECK=1 \
            FANCY_ARENA_SIZE=4096 FANCY_MEMORY_LIMIT=2GiB; do
  run "$good"
  [ ! -s "$tmp/err" ] || { cat "$tmp/err" >&2; fail "$good: unexpected message"; }
done
ok "valid values: no message, same output"

# Several bad values: one line each.
run FANCY_ARENA_SIZE=banana FANCY_PURGE_DELAY=soon FANCY_POPULATE=2
[ "$(grep -c '^fancyalloc: ' "$tmp/err")" -eq 3 ] && [ "$(wc -l <"$tmp/err")" -eq 3 ] ||
  { cat "$tmp/err" >&2; fail "three bad values: expected three lines"; }

# FANCY_VERBOSE=1 reports the values in effect.
run FANCY_VERBOSE=1 FANCY_ARENA_SIZE=32m FANCY_PURGE_DELAY=250 FANCY_MEMORY_LIMIT=1g
for want in 'FANCY_ARENA_SIZE=33554432' 'FANCY_PURGE_DELAY=250' 'FANCY_MEMORY_LIMIT=1073741824'; do
  grep -q "^fancyalloc: .*$want" "$tmp/err" || { cat "$tmp/err" >&2; fail "FANCY_VERBOSE=1 does not show $want"; }
done
grep -v -q '^fancyalloc: ' "$tmp/err" && { cat "$tmp/err" >&2; fail "FANCY_VERBOSE=1: a line without the fancyalloc: prefix"; }
ok "FANCY_VERBOSE=1 shows the values in effect"

# Sizes up to SIZE_MAX are accepted, one more is not (lib/options.c).
max=18446744073709551615
run FANCY_VERBOSE=1 FANCY_MEMORY_LIMIT=$max FANCY_ARENA_SIZE=18446744073709551610
grep -q "^fancyalloc: .*FANCY_MEMORY_LIMIT=$max " "$tmp/err" &&
  grep -q "^fancyalloc: .*FANCY_ARENA_SIZE=18446744073709551610 " "$tmp/err" ||
  { cat "$tmp/err" >&2; fail "sizes near SIZE_MAX are not taken"; }
run FANCY_MEMORY_LIMIT=18446744073709551616
grep -q '^fancyalloc: ignoring FANCY_MEMORY_LIMIT=' "$tmp/err" ||
  { cat "$tmp/err" >&2; fail "SIZE_MAX + 1 is not rejected"; }
ok "sizes up to SIZE_MAX taken, SIZE_MAX + 1 rejected"

# A memory limit large enough for the workload keeps it correct; one too
# small makes malloc fail, which the workload reports (status 1), and
# must not crash the process.
run FANCY_MEMORY_LIMIT=1g
$TIMEOUT env FANCY_MEMORY_LIMIT=4m LD_PRELOAD="$FANCY_LIB" "$helpers/workload" >"$tmp/out" 2>"$tmp/err"
st=$?
[ $st -eq 1 ] || { cat "$tmp/out" "$tmp/err" >&2; fail "FANCY_MEMORY_LIMIT=4m: expected the workload to see NULL (status 1), got $st"; }
ok "FANCY_MEMORY_LIMIT=4m: malloc returns NULL, no crash"

# FANCY_STATS=1: the report at exit.
run FANCY_STATS=1
grep -q '^libfancyalloc .* statistics' "$tmp/err" || { cat "$tmp/err" >&2; fail "FANCY_STATS=1 printed no statistics"; }
for field in live mapped committed segments threads; do
  grep -q "^ *$field " "$tmp/err" || { cat "$tmp/err" >&2; fail "FANCY_STATS=1: no '$field' line"; }
done
ok "FANCY_STATS=1 prints the statistics at exit"
if command -v sort >/dev/null 2>&1 && system_progs_ok; then
  # sort closes stdout and stderr in an atexit handler (close_stdout).
  printf 'b\na\n' >"$tmp/in"
  FANCY_STATS=1 fancy sort "$tmp/in" >"$tmp/out" 2>"$tmp/err" || fail "sort failed"
  printf 'a\nb\n' | cmp -s - "$tmp/out" || fail "sort's output is wrong"
  grep -q 'statistics' "$tmp/err" || { cat "$tmp/err" >&2; fail "FANCY_STATS=1 sort: no statistics (stderr closed at exit?)"; }
  ok "FANCY_STATS=1 reports even when the program closes stderr at exit"
fi
exit 0
