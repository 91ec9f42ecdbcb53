#!/bin/sh
# SPDX-License-Identifier: MIT
# test_foreign_free - under LD_PRELOAD, free() of pointers libfancymalloc
# did not hand out (glibc's own blocks, mmap, static storage, an interior
# pointer) is ignored: no crash, nothing written into them
# (tests/preload/foreign_free.c; _fa_free_special in lib/free.c).
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper foreign_free
fancy "$helpers/foreign_free" >"$tmp/out" 2>&1
st=$?
cat "$tmp/out"
[ $st -eq 0 ] || fail "foreign_free exited with status $st under libfancymalloc"
grep -q '^foreign_free: ok$' "$tmp/out" || fail "foreign_free did not finish"
exit 0
