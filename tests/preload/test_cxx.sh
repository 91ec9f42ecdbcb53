#!/bin/sh
# SPDX-License-Identifier: MIT
# test_cxx - a multi-threaded C++ program (tests/preload/cxx_threads.cc:
# new/delete, std::vector/string/map, std::thread, objects destroyed on
# other threads, exceptions across threads) under LD_PRELOAD and linked
# with -lfancymalloc (cxx_threads_linked); same output as under glibc.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
[ -x "$helpers/cxx_threads" ] || skip "cxx_threads not built (no C++ compiler?)"
compare_helper cxx_threads
w=$(fancy "$helpers/cxx_threads" --which)
[ "$w" = libfancymalloc ] || fail "under LD_PRELOAD, malloc is served by $w"

# Linked: a libtool wrapper script in the build tree that finds
# lib/.libs/libfancymalloc.so.1.
linked=$helpers/cxx_threads_linked
[ -x "$linked" ] || skip "cxx_threads_linked not built"
w=$($TIMEOUT "$linked" --which)
[ "$w" = libfancymalloc ] || fail "linked with -lfancymalloc, malloc is served by $w"
$TIMEOUT "$linked" >"$tmp/linked.out" 2>"$tmp/linked.err"
st=$?
[ $st -eq 0 ] || { cat "$tmp/linked.err" >&2; fail "cxx_threads_linked: status $st"; }
same_output "cxx_threads linked with -lfancymalloc" "$tmp/cxx_threads.glibc" "$tmp/linked.out"
exit 0
