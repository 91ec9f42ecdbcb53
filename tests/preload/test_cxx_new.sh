#!/bin/sh
# SPDX-License-Identifier: MIT
# test_cxx_new - libfancymalloc replaces C++'s operator new and operator
# delete (lib/override_cxx.c): under LD_PRELOAD and linked with
# -lfancymalloc, all 20 forms resolve to it, and tests/preload/cxx_new.cc
# prints the same as under glibc and libstdc++'s own operators (every form
# allocates, aligns and frees; a failed new calls the new-handler, throws
# std::bad_alloc, lets the handler's exception through, and the nothrow
# forms return NULL).
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
[ -x "$helpers/cxx_new" ] || skip "cxx_new not built (no C++17 compiler?)"

# claim fancyalloc.7-operator-new: all 20 forms are libfancymalloc's
fancy "$helpers/cxx_new" --which >"$tmp/which.fancy" 2>&1 || fail "cxx_new --which failed"
n=$(grep -c ' libfancymalloc$' "$tmp/which.fancy")
[ "$n" -eq 20 ] || { cat "$tmp/which.fancy" >&2; fail "under LD_PRELOAD, $n of 20 operators are libfancymalloc's"; }
glibc "$helpers/cxx_new" --which >"$tmp/which.glibc" 2>&1 || hard "cxx_new --which failed under glibc"
grep -q ' libfancymalloc$' "$tmp/which.glibc" && hard "cxx_new sees libfancymalloc without it"
ok "under LD_PRELOAD, the 20 forms of operator new and delete are libfancymalloc's"

# claim fancyalloc.7-operator-new-failure: behaviour as libstdc++'s
compare_helper cxx_new
grep -q 'with a new-handler: 3 calls, then std::bad_alloc' "$tmp/cxx_new.fancy" ||
  fail "the new-handler was not called as under glibc"
ok "cxx_new prints the same as under glibc"

linked=$helpers/cxx_new_linked
[ -x "$linked" ] || skip "cxx_new_linked not built"
$TIMEOUT "$linked" --which >"$tmp/which.linked" 2>&1 || fail "cxx_new_linked --which failed"
n=$(grep -c ' libfancymalloc$' "$tmp/which.linked")
[ "$n" -eq 20 ] || { cat "$tmp/which.linked" >&2; fail "linked, $n of 20 operators are libfancymalloc's"; }
$TIMEOUT "$linked" >"$tmp/linked.out" 2>"$tmp/linked.err"
st=$?
[ $st -eq 0 ] || { cat "$tmp/linked.err" >&2; fail "cxx_new_linked: status $st"; }
same_output "cxx_new linked with -lfancymalloc" "$tmp/cxx_new.glibc" "$tmp/linked.out"
ok "linked with -lfancymalloc, the same"
exit 0
