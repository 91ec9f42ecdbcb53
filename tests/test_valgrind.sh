#!/bin/sh
# test_valgrind.sh - memcheck sees fancy_* blocks as heap blocks: a
# deliberate leak is reported with its size, use after free, overrun and
# uninitialised reads are reported, and a clean workload reports nothing.
# Skipped (77) without valgrind, without the client requests built in
# (configure --enable-valgrind), or in a sanitizer build.
set -u
top=${top_builddir:-.}
prog=$top/tests/valgrind_prog
config=$top/config.h
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind is not installed"; exit 77; }
grep -q '^#define FA_VALGRIND 1' "$config" || { echo "SKIP: built without valgrind client requests"; exit 77; }
if grep -q '^#define FA_SANITIZE 1' "$config"; then echo "SKIP: sanitizer build"; exit 77; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail=0

run() {   # run MODE: memcheck's report of valgrind_prog MODE into $out
  valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=none "$prog" "$1" >"$out" 2>&1
}
expect() {  # expect MODE PATTERN WHAT
  if grep -Eq "$2" "$out"; then echo "PASS: $1: $3"
  else echo "FAIL: $1: expected $3 (/$2/)"; sed 's/^/    /' "$out"; fail=1; fi
}
reject() {  # reject MODE PATTERN WHAT
  if grep -Eq "$2" "$out"; then echo "FAIL: $1: unexpected $3"; sed 's/^/    /' "$out"; fail=1
  else echo "PASS: $1: no $3"; fi
}

run clean
expect clean 'ERROR SUMMARY: 0 errors' "no errors"
reject clean 'definitely lost: [1-9]' "leak"

run leak
expect leak 'definitely lost: 100 bytes in 1 blocks' "the 100-byte leak"
expect leak 'ERROR SUMMARY: 0 errors' "no other errors"

run uaf
expect uaf 'Invalid read of size 1' "the use after free"
expect uaf 'inside a block of size [0-9,]+ free.d' "a freed block named"

run overrun
expect overrun 'Invalid write of size 1' "the overrun"
expect overrun '0 bytes after a .*block of size 24 ' "the 24-byte block named"

run uninit
expect uninit 'depends on uninitialised value' "the uninitialised read"

exit $fail
