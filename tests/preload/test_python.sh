#!/bin/sh
# SPDX-License-Identifier: MIT
# test_python - CPython's own regression tests for dict, set and json (its
# object allocator sits on malloc for everything above 512 bytes, and the
# tests grow and shrink containers hard) must pass under libfancymalloc,
# with the same counts as under glibc.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_prog python3
# Debian ships test.support in libpython3.N-stdlib but the test modules
# themselves in libpython3.N-testsuite: look for those.
python3 -c 'import test.support, test.libregrtest, test.test_dict, test.test_set, test.test_json' \
    >/dev/null 2>&1 ||
  skip "python3's test package not installed (Debian: libpython3.N-testsuite)"
check_preloaded python3

tests="test_dict test_set test_json"
# Only the summary lines: the rest holds timings.
summary() { grep -E '^(Total tests|Total test files|Result|Tests result|All [0-9]+ tests OK)' "$1"; }

cd "$tmp" || hard "cd $tmp"
# shellcheck disable=SC2086
glibc python3 -m test $tests >glibc.out 2>&1
gs=$?
# shellcheck disable=SC2086
fancy python3 -m test $tests >fancy.out 2>&1
fs=$?
if [ $fs -ne 0 ]; then
  tail -n 40 fancy.out >&2
  fail "python3 -m test $tests exited with $fs under libfancymalloc (glibc: $gs)"
fi
same_status "python3 -m test" $gs $fs
summary glibc.out >glibc.sum
summary fancy.out >fancy.sum
[ -s fancy.sum ] || { tail -n 20 fancy.out >&2; fail "no summary in the output of python3 -m test"; }
same_output "python3 -m test $tests summary" glibc.sum fancy.sum
cat fancy.sum
exit 0
