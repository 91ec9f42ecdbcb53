#!/bin/sh
# SPDX-License-Identifier: MIT
# test_misuse - under LD_PRELOAD every bad pointer is caught: one line
# "fancyalloc: <what> at <address>" on stderr, then abort() (fancyalloc(7),
# "glibc compatibility"; README, "Misuse that is caught").  One run of
# tests/preload/misuse per kind; each checks the status (SIGABRT), that
# stderr is exactly that one line, and that it names the pointer the
# program printed.  A block of glibc's own malloc is released by glibc's
# free, without an abort; malloc_usable_size of a freed block is 0.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper misuse

# expect_abort WHAT_PATTERN KIND [ARG]: the run aborts with one line
# "fancyalloc: <what> at <the printed address>", <what> matching the
# extended regular expression WHAT_PATTERN.
expect_abort() {
  pat=$1
  shift
  # stderr redirected inside: the shell's own "Aborted" stays out of it.
  # The shell itself is not preloaded: with a musl build it is a glibc
  # program that could not load the library.
  $TIMEOUT sh -c 'e=$0; LD_PRELOAD=$1; export LD_PRELOAD; shift; exec "$@" 2>"$e"' \
    "$tmp/err" "$FANCY_LIB" "$helpers/misuse" "$@" >"$tmp/out"
  st=$?
  addr=$(sed -n 's/^addr //p' "$tmp/out")
  [ -n "$addr" ] || { cat "$tmp/out" "$tmp/err" >&2; hard "misuse $*: printed no address"; }
  # 134: the shell's 128 + SIGABRT (6)
  [ $st -eq 134 ] || { cat "$tmp/out" "$tmp/err" >&2; fail "misuse $*: status $st, not an abort (134)"; }
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || { cat "$tmp/err" >&2; fail "misuse $*: not exactly one line on stderr"; }
  grep -Eq "^fancyalloc: ($pat) at $addr\$" "$tmp/err" ||
    { cat "$tmp/err" >&2; fail "misuse $*: expected \"fancyalloc: $pat at $addr\""; }
  ok "$*: $(cat "$tmp/err")"
}

expect_abort 'double free' double-small
expect_abort 'double free' double-medium
expect_abort 'double free.*' double-large
expect_abort 'double free \(huge block\)' double-huge
expect_abort 'double free \(huge block\)' double-huge-warm
expect_abort 'invalid free \(not the start of a block\)' interior-small
expect_abort 'invalid free \(not the start of a block\)' interior-large
# every 4 MiB unit of a 40 MiB huge block
for unit in 0 1 2 3 4 5 6 7 8 9; do
  expect_abort 'invalid free \(inside a huge block\)' huge-unit $unit
done
expect_abort 'invalid free \(stack address\)' stack
expect_abort 'invalid free \(static object\)' static
expect_abort 'invalid free \(pointer into a mapping the program made\)' mmap
expect_abort 'realloc of a freed block' realloc-freed-small
expect_abort 'realloc of a freed block' realloc-freed-large
expect_abort 'realloc of a freed block \(huge block\)' realloc-freed-huge

# malloc_usable_size of a freed block: 0, as glibc returns.
fancy "$helpers/misuse" usable-size-freed >"$tmp/out" 2>"$tmp/err" ||
  { cat "$tmp/out" "$tmp/err" >&2; fail "usable-size-freed failed"; }
grep -Eq '^usable [1-9][0-9]* [1-9][0-9]* freed 0 0$' "$tmp/out" ||
  { cat "$tmp/out" >&2; fail "malloc_usable_size of a freed block is not 0"; }
ok "malloc_usable_size of a freed block is 0: $(cat "$tmp/out")"

# glibc's own blocks: released by glibc's free, no abort, no message.
fancy "$helpers/misuse" glibc >"$tmp/out" 2>"$tmp/err"
st=$?
cat "$tmp/out"
if [ $st -eq 77 ]; then
  ok "no glibc malloc in this process (another C library): glibc's blocks not tried"
  exit 0
fi
[ $st -eq 0 ] || { cat "$tmp/err" >&2; fail "misuse glibc: status $st"; }
[ ! -s "$tmp/err" ] || { cat "$tmp/err" >&2; fail "misuse glibc: a message on stderr"; }
ok "blocks of glibc's malloc go back to glibc's free"
exit 0
