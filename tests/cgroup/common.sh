# SPDX-License-Identifier: MIT
# tests/cgroup/common.sh - sourced by the cgroup tests after they set $me:
# the helpers' paths, the automake exit statuses, and none of the
# variables that would change the limits under test.
top_builddir=$(pwd)
fill=$top_builddir/tests/cgroup/fill
helper=$top_builddir/tests/cgroup/limits_helper
lib=${FANCY_TEST_LIBRARY:-$top_builddir/lib/.libs/libfancymalloc.so.1}
skip() { echo "$me: SKIP: $*"; exit 77; }
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
hard() { echo "$me: ERROR: $*" >&2; exit 99; }
ok() { echo "$me: ok: $*"; }
for v in FANCY_MEMORY_LIMIT FANCY_MEMORY_SOFT_LIMIT FANCY_VERBOSE FANCY_STATS \
         FANCY_PURGE_DELAY FANCY_RECLAIM LD_PRELOAD; do
  unset "$v"
done
M=1048576

# require_preload: skip unless libfancymalloc is built and can be preloaded
# into fill (a sanitizer runtime must be the first library of a process).
require_preload() {
  [ -x "$fill" ] || hard "$fill not built"
  [ -f "$lib" ] || skip "libfancymalloc not built (--disable-malloc-replacement)"
  if command -v nm >/dev/null 2>&1 && nm -D "$lib" 2>/dev/null |
     grep -Eq ' (__asan_init|__tsan_init|__msan_init|__hwasan_init|__ubsan_handle_[a-z_]*)$'; then
    skip "$lib is built with sanitizers; it cannot be preloaded"
  fi
}
