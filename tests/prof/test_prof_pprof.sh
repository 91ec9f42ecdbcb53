#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_prof_pprof.sh - FANCY_PROF profiles as google-pprof reads them.
#
# Issue 16: "a program with three known allocation sites taking about 10%,
# 30% and 60% of the bytes, dumps a profile, runs google-pprof --text on
# it and asserts the three functions appear with shares within 5 points of
# the truth".  The sites use 64 B, 16 KiB and 200 KiB blocks, which are
# sampled with very different probabilities at FANCY_PROF_SAMPLE=16k: the
# shares come out right only if the dump carries the sampling rate and
# pprof scales each sample back up (fancy_prof_dump(3): "google-pprof
# scales each sample back up by 1 / (1 - exp(-size / rate))").  With
# 32 MiB live the sampling error of each share is about 1 point.
. "${srcdir:-.}/tests/prof/common.sh"
command -v google-pprof >/dev/null 2>&1 || skip "google-pprof (google-perftools) is not installed"
grep -q '^#define HAVE_EXECINFO_H 1' "$top_builddir/config.h" ||
  skip "no backtrace(3) in this C library: the profiles have no stacks to name sites"
FANCY_PROF=1 FANCY_PROF_SAMPLE=16k "$helpers/prof_helper" sites "$tmp/sites.heap" ||
  fail "prof_helper sites"
head -n 1 "$tmp/sites.heap" | grep -q '@ heap_v2/16384$' || fail "header: $(head -n 1 "$tmp/sites.heap")"
google-pprof --text "$helpers/prof_helper" "$tmp/sites.heap" >"$tmp/text" 2>"$tmp/err" ||
  { cat "$tmp/err"; fail "google-pprof failed"; }
cat "$tmp/text"
# The cumulative share (column 5): the bytes allocated with the function
# anywhere in the stack, which holds however the compiler inlines.
check() {   # function, true share in percent
  share=$(awk -v f="$1" '$6 == f { sub(/%/, "", $5); print $5 }' "$tmp/text")
  [ -n "$share" ] || fail "$1 is not in google-pprof's output"
  awk -v s="$share" -v t="$2" 'BEGIN { d = s - t; if (d < 0) d = -d; exit !(d <= 5) }' ||
    fail "$1 has ${share}% of the bytes, not ${2}% +- 5"
  ok "$1: ${share}% (truth ${2}%)"
}
check site_small 10
check site_medium 30
check site_large 60
