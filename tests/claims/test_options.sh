#!/bin/sh
# SPDX-License-Identifier: MIT
# test_options - claims of fancyalloc(7) ENVIRONMENT and fancyrun(1) about
# option values (issue 19); each block names the claim of CLAIMS it checks.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper workload

# verbose VAR=VALUE...: the options in effect (FANCY_VERBOSE=1) and any
# warning, in $tmp/err.
verbose() {
  $TIMEOUT env "$@" FANCY_VERBOSE=1 LD_PRELOAD="$FANCY_LIB" "$helpers/workload" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; fail "workload with $*: status $?"; }
}
# expect VAR=VALUE SHOWN: no warning and the option in effect is SHOWN.
expect() {
  verbose "$1"
  var=${1%%=*}
  ! grep -q 'ignoring' "$tmp/err" || { cat "$tmp/err" >&2; fail "$1: a warning"; }
  grep -q "^fancyalloc: option $var=$2 " "$tmp/err" ||
    { grep "option $var" "$tmp/err" >&2; fail "$1: expected $var=$2 in effect"; }
}
# rejected VAR=VALUE: one warning naming it, and the value in effect is
# the default, as a run without VAR shows it (a configure switch such as
# --enable-populate changes some defaults).
rejected() {
  var=${1%%=*}
  verbose LC_ALL=C
  def=$(sed -n "s/^fancyalloc: option $var=\([^ ]*\) .*/\1/p" "$tmp/err")
  [ -n "$def" ] || { cat "$tmp/err" >&2; hard "FANCY_VERBOSE=1 does not show $var"; }
  verbose "$1"
  [ "$(grep -c "^fancyalloc: ignoring $var=" "$tmp/err")" -eq 1 ] ||
    { cat "$tmp/err" >&2; fail "$1: no warning"; }
  grep -q "^fancyalloc: option $var=$def " "$tmp/err" || fail "$1: the default $def is not in effect"
}

# claim fancyalloc.7-counts: fancyalloc(7) ENVIRONMENT, "Counts and
# milliseconds (FANCY_PURGE_DELAY, FANCY_SEGMENT_CACHE, FANCY_PROF_SIGNAL)
# are plain decimal numbers, without a suffix."
expect FANCY_PURGE_DELAY=250 250
expect FANCY_SEGMENT_CACHE=3 3
rejected FANCY_PURGE_DELAY=2k
rejected FANCY_SEGMENT_CACHE=1m
rejected FANCY_PROF_SIGNAL=1k
rejected FANCY_PURGE_DELAY=18446744073709551616
ok "counts and milliseconds: plain numbers only"

# claim fancyalloc.7-sizes: fancyalloc(7) ENVIRONMENT, "Sizes are in bytes
# and accept a k, m, g or t suffix, in powers of 1024, optionally followed
# by i and b (64m and 64MiB are 64 MiB); a size above the largest size_t is
# malformed."
expect FANCY_ARENA_SIZE=64m 67108864
expect FANCY_ARENA_SIZE=64MiB 67108864
expect FANCY_ARENA_SIZE=64mb 67108864
expect FANCY_MEMORY_LIMIT=1t 1099511627776
expect FANCY_MEMORY_LIMIT=1073741824 1073741824
rejected FANCY_MEMORY_LIMIT=16777216t
rejected FANCY_MEMORY_LIMIT=18446744073709551616
rejected FANCY_MEMORY_LIMIT=64q
ok "sizes: k/m/g/t, i, b; overflow rejected"

# claim fancyalloc.7-switches: fancyalloc(7) ENVIRONMENT, "Switches take 1
# (or yes, y, on, true) and 0 (or no, n, off, false), in upper or lower case."
for v in 1 yes y on true YES Y On TRUE; do expect FANCY_POPULATE=$v 1; done
for v in 0 no n off false NO N Off FALSE; do expect FANCY_POPULATE=$v 0; done
rejected FANCY_POPULATE=2
rejected FANCY_POPULATE=yep
ok "switches: every documented spelling"

# claim fancyrun.1-values: fancyrun(1), "fancyrun rejects a malformed value
# itself": a value fancyrun accepts is one the library takes without a
# warning, and one it rejects (status 2) the library would ignore.
fancyrun=$top_builddir/bin/fancyrun
if [ -f "$fancyrun" ] && system_progs_ok; then
  for opt in "arena-size ARENA_SIZE" "memory-limit MEMORY_LIMIT" "purge-delay PURGE_DELAY" \
             "segment-cache SEGMENT_CACHE"; do
    o=${opt% *}; var=FANCY_${opt#* }
    for v in 0 7 1k 2m 64MiB 3gb 1t 16777215t 16777216t 17179869184g 17592186044416m \
             18014398509481984k 18446744073709551615 18446744073709551616 \
             0018446744073709551615 1x -1 1.5 ''; do
      $TIMEOUT sh "$fancyrun" --library="$FANCY_LIB" "--$o=$v" true >/dev/null 2>&1
      frst=$?
      $TIMEOUT env "$var=$v" LD_PRELOAD="$FANCY_LIB" true >/dev/null 2>"$tmp/err"
      if grep -q "ignoring $var=" "$tmp/err"; then lib=bad; else lib=good; fi
      case $frst/$lib in
        0/good|2/bad) ;;
        *) fail "--$o=$v: fancyrun status $frst, but the library finds it $lib" ;;
      esac
    done
  done
  ok "fancyrun accepts exactly the values the library takes"
fi
exit 0
