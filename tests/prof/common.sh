# SPDX-License-Identifier: MIT
#
# tests/prof/common.sh - sourced by tests/prof/test_*.sh.  They run from
# the top build directory (make check exports srcdir); exit status as
# automake reads it: 0 pass, 1 fail, 77 skip, 99 error.  FANCY_TEST_KEEP=1
# keeps the temporary directory.
me=${0##*/}
me=${me%.sh}
top_builddir=$(cd "${top_builddir:-.}" && pwd) || exit 99
helpers=$top_builddir/tests/prof
skip() { echo "$me: SKIP: $*"; exit 77; }
hard() { echo "$me: ERROR: $*" >&2; exit 99; }
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
ok() { echo "$me: ok: $*"; }
for v in FANCY_ARENA_SIZE FANCY_MEMORY_LIMIT FANCY_HUGE_PAGES FANCY_POPULATE \
         FANCY_RECLAIM FANCY_PURGE_DELAY FANCY_SEGMENT_CACHE FANCY_STATS \
         FANCY_VERBOSE FANCY_CHECK FANCY_PROF FANCY_PROF_SAMPLE FANCY_PROF_FINAL \
         FANCY_PROF_SIGNAL FANCY_PROF_PREFIX LD_PRELOAD; do
  unset "$v"
done
# Profiling is off in checked mode (fancyalloc(7)), which a build
# configured with --enable-check has on by default: these tests profile.
FANCY_CHECK=0
LC_ALL=C
export LC_ALL FANCY_CHECK
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX") || hard "mktemp"
[ -n "${FANCY_TEST_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
