#!/bin/sh
# SPDX-License-Identifier: MIT
# test_foreign_free - under LD_PRELOAD, free() of blocks of glibc's own
# malloc goes to glibc's free, without an abort, and our blocks keep
# working (tests/preload/foreign_free.c; lib/foreign.c).  Pointers that
# are nobody's block abort: test_misuse.sh.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper foreign_free
fancy "$helpers/foreign_free" >"$tmp/out" 2>&1
st=$?
cat "$tmp/out"
[ $st -eq 77 ] && skip "not glibc: lib/foreign.c knows glibc's blocks only"
[ $st -eq 0 ] || fail "foreign_free exited with status $st under libfancymalloc"
grep -q '^foreign_free: ok$' "$tmp/out" || fail "foreign_free did not finish"
exit 0
