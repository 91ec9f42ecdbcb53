#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_prof_leak.sh - the leak profile at exit (FANCY_PROF_FINAL=1) names
# the one leaking site.  fancyalloc(7): "FANCY_PROF_FINAL=1 writes
# PREFIX.PID.final.heap at exit: the sampled blocks still live, with their
# stacks - a leak profile".  Three sites allocate 32 MiB and free it all;
# leak_site keeps 2000 blocks of 1000 B.
. "${srcdir:-.}/tests/prof/common.sh"
command -v google-pprof >/dev/null 2>&1 || skip "google-pprof (google-perftools) is not installed"
grep -q '^#define HAVE_EXECINFO_H 1' "$top_builddir/config.h" ||
  skip "no backtrace(3) in this C library: the profiles have no stacks to name sites"
FANCY_PROF=1 FANCY_PROF_SAMPLE=16k FANCY_PROF_FINAL=1 FANCY_PROF_PREFIX=$tmp/run \
  "$helpers/prof_helper" leak 2>"$tmp/err" || { cat "$tmp/err"; fail "prof_helper leak"; }
cat "$tmp/err"
set -- "$tmp"/run.*.final.heap
[ -f "$1" ] || fail "no final profile written"
grep -q "^fancyalloc: leak profile: [0-9]* sampled blocks still live, in $1\$" "$tmp/err" ||
  fail "no one-line report of the leak profile on stderr"
google-pprof --text "$helpers/prof_helper" "$1" >"$tmp/text" 2>/dev/null || fail "google-pprof failed"
cat "$tmp/text"
# flat column: leak_site holds (nearly) everything, the freed sites nothing
awk '$6 == "leak_site" { sub(/%/, "", $2); found = 1; if ($2 + 0 < 95) bad = 1 }
     $6 ~ /^site_/ && $1 + 0 > 0 { bad = 1 }
     END { exit !(found && !bad) }' "$tmp/text" || fail "leak_site is not the leaking site"
ok "leak_site found"
