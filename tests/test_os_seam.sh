#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_os_seam.sh - lib/os.h promises: "Only os.c includes <sys/mman.h>;
# every mapping, purge and remap goes through here, so the counters stay
# right and tests can make mapping fail."  A call of mmap, munmap, mremap
# or madvise anywhere else in lib/ bypasses the mapped-bytes counter, the
# memory limit and the tests' failure injection (_fa_os_fail_after).
#
# Run by `make check` with $srcdir set by automake (in-tree or VPATH).
srcdir=${srcdir:-.}
pat='#include <sys/mman\.h>|(^|[^_a-z])(mmap|munmap|mremap|madvise)[[:space:]]*\('
bad=
for f in "$srcdir"/lib/*.c "$srcdir"/lib/*.h; do
  case $f in */lib/os.c) continue ;; esac
  # string literals and comment lines do not count
  hits=$(sed -e 's/"[^"]*"//g' "$f" | grep -nE "$pat" | grep -vE '^[0-9]+:[[:space:]]*(/?\*|//)')
  [ -n "$hits" ] && bad="$bad$(printf '%s\n' "$hits" | sed "s|^|$f:|")
"
done
if [ -n "$bad" ]; then
  echo "test_os_seam: FAIL: system calls on mappings outside lib/os.c:" >&2
  echo "$bad" >&2
  exit 1
fi
n=$(grep -cE '(^|[^_a-z])(mmap|munmap|mremap|madvise)[[:space:]]*\(' "$srcdir/lib/os.c")
if [ "$n" -lt 4 ]; then
  echo "test_os_seam: FAIL: lib/os.c has $n mapping calls; is this the right tree?" >&2
  exit 1
fi
echo "test_os_seam: ok: only lib/os.c calls mmap, munmap, mremap and madvise ($n calls)"
