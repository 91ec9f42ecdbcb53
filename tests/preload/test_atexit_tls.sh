#!/bin/sh
# SPDX-License-Identifier: MIT
# test_atexit_tls - allocation in pthread key destructors (run at thread
# exit, several passes), in atexit handlers and in a destructor function
# (tests/preload/atexit_tls.c); and in C++ thread_local and static
# destructors (tests/preload/cxx_tls.cc, when a C++ compiler was found).
# With FANCY_STATS=1 too, whose report is printed from a destructor.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
compare_helper atexit_tls
if [ -x "$helpers/cxx_tls" ]; then
  compare_helper cxx_tls
else
  echo "$me: note: cxx_tls not built (no C++ compiler): C++ thread_local not tested"
fi
FANCY_STATS=1
export FANCY_STATS
compare_helper atexit_tls
grep -q 'statistics' "$tmp/atexit_tls.fancy.err" || fail "FANCY_STATS=1 printed no statistics"
exit 0
