#!/bin/sh
# SPDX-License-Identifier: MIT
# test_ctor - no recursion at bootstrap: allocation from a program
# constructor (every function of the malloc family, stdio), and from the
# constructor of a library preloaded after libfancymalloc, which runs
# before the allocator's constructor, so that the first malloc sets the
# allocator up.  Also with FANCY_VERBOSE/FANCY_STATS (their output is
# written while the allocator starts and stops) and FANCY_RECLAIM.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper ctor_alloc
compare_helper ctor_alloc

early=$helpers/.libs/libearly.so
[ -f "$early" ] || skip "$early not built"
glibc env LD_PRELOAD="$early" "$helpers/ctor_alloc" >"$tmp/g.out" 2>&1 ||
  { cat "$tmp/g.out" >&2; hard "ctor_alloc with libearly fails under glibc"; }
grep -q '^libearly constructor: ok$' "$tmp/g.out" || { cat "$tmp/g.out" >&2; hard "libearly was not preloaded"; }
for vars in "" "FANCY_VERBOSE=1 FANCY_STATS=1" "FANCY_RECLAIM=1 FANCY_PURGE_DELAY=0"; do
  # shellcheck disable=SC2086
  $TIMEOUT env $vars LD_PRELOAD="$FANCY_LIB $early" "$helpers/ctor_alloc" >"$tmp/f.out" 2>"$tmp/f.err"
  fs=$?
  [ $fs -eq 0 ] || { cat "$tmp/f.out" "$tmp/f.err" >&2; fail "ctor_alloc with libearly preloaded after libfancymalloc ($vars): status $fs"; }
  same_output "ctor_alloc, libearly preloaded after libfancymalloc${vars:+ ($vars)}" "$tmp/g.out" "$tmp/f.out"
  if [ -n "$vars" ] && [ "${vars#FANCY_VERBOSE}" != "$vars" ]; then
    grep -q '^fancyalloc: libfancyalloc' "$tmp/f.err" || fail "FANCY_VERBOSE=1 printed nothing"
    grep -q 'statistics' "$tmp/f.err" || fail "FANCY_STATS=1 printed nothing"
  fi
done
exit 0
