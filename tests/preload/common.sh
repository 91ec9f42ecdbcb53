# SPDX-License-Identifier: MIT
#
# tests/preload/common.sh - sourced by the tests/preload/test_*.sh scripts.
#
# The scripts run from the top build directory (make check; automake
# exports srcdir, the top source directory relative to it), in-tree or in
# a VPATH build such as make distcheck.  Each one runs a command under
# glibc's malloc and under libfancymalloc (LD_PRELOAD of the build tree's
# lib/.libs/libfancymalloc.so.1) and compares what they print.
#
# By hand, from the top build directory:
#     srcdir=. sh tests/preload/test_sort.sh
# FANCY_TEST_LIBRARY=/path/to/libfancymalloc.so.1 tests another copy of the
# library (an installed one, say).  FANCY_TEST_KEEP=1 keeps the temporary
# directory.  Exit status (automake): 0 pass, 1 fail, 77 skip, 99 error.

me=${0##*/}
me=${me%.sh}

top_srcdir=${srcdir:-$(dirname "$0")/../..}
top_builddir=${top_builddir:-.}
top_srcdir=$(cd "$top_srcdir" && pwd) || { echo "$me: ERROR: no $top_srcdir" >&2; exit 99; }
top_builddir=$(cd "$top_builddir" && pwd) || { echo "$me: ERROR: no $top_builddir" >&2; exit 99; }
helpers=$top_builddir/tests/preload

skip() { echo "$me: SKIP: $*"; exit 77; }
hard() { echo "$me: ERROR: $*" >&2; exit 99; }
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
ok() { echo "$me: ok: $*"; }

# The user's own allocator settings must not change the results; the
# glibc runs must really be glibc.
for v in FANCY_ARENA_SIZE FANCY_MEMORY_LIMIT FANCY_MEMORY_SOFT_LIMIT FANCY_HUGE_PAGES FANCY_POPULATE \
         FANCY_RECLAIM FANCY_PURGE_DELAY FANCY_SEGMENT_CACHE FANCY_STATS \
         FANCY_VERBOSE FANCY_CHECK LD_PRELOAD FANCYRUN_LIBRARY; do
  unset "$v"
done
LC_ALL=C
export LC_ALL

FANCY_LIB=${FANCY_TEST_LIBRARY:-$top_builddir/lib/.libs/libfancymalloc.so.1}

# require_preload: skip unless the preload library exists and can be
# preloaded.
require_preload() {
  [ -f "$FANCY_LIB" ] ||
    skip "$FANCY_LIB not built (configured with --disable-malloc-replacement?)"
  # A sanitizer runtime must be the first library of the process; one
  # pulled in by LD_PRELOAD after start-up aborts the program.
  if command -v nm >/dev/null 2>&1; then
    if nm -D "$FANCY_LIB" 2>/dev/null |
       grep -Eq ' (__asan_init|__tsan_init|__msan_init|__hwasan_init|__ubsan_handle_[a-z_]*)$'; then
      skip "$FANCY_LIB is built with sanitizers; it cannot be preloaded"
    fi
  fi
}

# A libfancymalloc built for musl (CC=musl-gcc, issue 18) loads only into
# musl programs: the system's programs (sort, env, python3, ...) are glibc's.
# system_progs_ok: true when the system's programs can preload it.
fancy_libc=glibc
if command -v readelf >/dev/null 2>&1 &&
   readelf -d "$FANCY_LIB" 2>/dev/null | grep -q 'NEEDED.*\[libc\.so\]'; then
  fancy_libc=musl
fi
system_progs_ok() { [ "$fancy_libc" = glibc ]; }

# require_prog PROG...: skip unless every PROG is installed (and can
# preload the library).
require_prog() {
  for p in "$@"; do
    command -v "$p" >/dev/null 2>&1 || skip "$p not installed"
    system_progs_ok || skip "$p is a glibc program; $FANCY_LIB is built for musl"
  done
}

# require_helper NAME: skip unless the check program tests/preload/NAME
# was built (it is not without a C++ compiler, for example).
require_helper() {
  [ -x "$helpers/$1" ] || skip "$1 not built (tests/preload/$1)"
}

# A temporary directory, removed at exit unless FANCY_TEST_KEEP=1.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX") || hard "mktemp failed"
if [ "${FANCY_TEST_KEEP:-0}" = 1 ]; then
  trap 'echo "$me: kept $tmp"' 0
else
  trap 'rm -rf "$tmp"' 0
fi
trap 'exit 1' HUP INT TERM

# Turns a hang (a deadlock after fork, say) into a failure.
TIMEOUT=
if command -v timeout >/dev/null 2>&1; then
  TIMEOUT="timeout ${FANCY_TEST_TIMEOUT:-300}"
fi

# glibc CMD...: run CMD with the C library's allocator.
glibc() { $TIMEOUT env -u LD_PRELOAD "$@"; }
# fancy CMD...: run CMD with libfancymalloc preloaded.
fancy() { $TIMEOUT env LD_PRELOAD="$FANCY_LIB" "$@"; }

# check_preloaded PROG [ARGS...]: fail unless running PROG (with ARGS, by
# default --version) under the preload reaches libfancyalloc, which
# FANCY_VERBOSE=1 proves by a "fancyalloc: libfancyalloc <version>" line.
# A static or set-user-ID program would ignore LD_PRELOAD and pass every
# comparison without testing anything.
check_preloaded() {
  prog=$1
  shift
  [ $# -gt 0 ] || set -- --version
  FANCY_VERBOSE=1 fancy "$prog" "$@" >/dev/null 2>"$tmp/verbose" </dev/null
  grep -q '^fancyalloc: libfancyalloc ' "$tmp/verbose" ||
    skip "$prog does not load $FANCY_LIB through LD_PRELOAD (static or set-user-ID?)"
}

# same_output WHAT GLIBC_FILE FANCY_FILE: fail unless the files are equal.
same_output() {
  if ! cmp -s "$2" "$3"; then
    echo "$me: $1 differs between glibc ($2) and libfancymalloc ($3):" >&2
    diff "$2" "$3" 2>&1 | head -n 20 >&2
    fail "$1 differs"
  fi
  ok "$1: same as glibc ($(wc -c <"$3") bytes)"
}

# same_status WHAT GLIBC_STATUS FANCY_STATUS
same_status() {
  [ "$2" -eq "$3" ] || fail "$1: exit status $3 under libfancymalloc, $2 under glibc"
}

# compare_helper NAME [ARG...]: run the check program tests/preload/NAME
# under glibc and under libfancymalloc; both must exit 0 and print the
# same on stdout.  Leaves the outputs in $tmp/NAME.glibc and
# $tmp/NAME.fancy (stderr in *.err).
compare_helper() {
  name=$1
  shift
  require_helper "$name"
  glibc "$helpers/$name" "$@" >"$tmp/$name.glibc" 2>"$tmp/$name.glibc.err"
  gs=$?
  fancy "$helpers/$name" "$@" >"$tmp/$name.fancy" 2>"$tmp/$name.fancy.err"
  fs=$?
  if [ $gs -ne 0 ]; then
    cat "$tmp/$name.glibc" "$tmp/$name.glibc.err" >&2
    hard "$name fails under glibc too (status $gs): the test is broken"
  fi
  if [ $fs -ne 0 ]; then
    cat "$tmp/$name.fancy" "$tmp/$name.fancy.err" >&2
    fail "$name exited with status $fs under libfancymalloc"
  fi
  same_output "$name" "$tmp/$name.glibc" "$tmp/$name.fancy"
}
