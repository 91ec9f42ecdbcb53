#!/bin/sh
# SPDX-License-Identifier: MIT
# test_cgroup_real - README "Containers", the demo ("makes `malloc`
# return NULL (`ENOMEM`) before the kernel acts, so the program can free
# and go on"), in a real memory
# cgroup with a 64 MiB limit: tests/cgroup/fill allocates 1 MiB blocks
# until malloc fails.
#   - under glibc's malloc the kernel kills it (SIGKILL, status 137);
#   - under libfancymalloc with FANCY_MEMORY_LIMIT=auto "malloc returns
#     NULL (ENOMEM) before the kernel's OOM killer acts, and the program
#     can free and go on": it sees NULL, frees, and exits 0;
#   - FANCY_VERBOSE=1 names the cgroup file the limit came from.
# Needs root and a writable cgroup file system with the memory controller
# (v2, or the v1 memory hierarchy); skipped (77) otherwise, saying why.
# The cgroup is made as a child of the test's own memory cgroup where that
# works (v1, or v2 when the controller can be enabled there), else under
# the v2 root; it is removed at the end.
me=test_cgroup_real
. "${srcdir:-.}/tests/cgroup/common.sh"
require_preload
[ "$(id -u)" = 0 ] || skip "not root: cannot create a cgroup"

# mount_of TYPE [OPTION]: the mount point of a cgroup hierarchy
mount_of() {
  awk -v type="$1" -v opt="$2" '{
    for (i = 1; $i != "-"; i++) ;
    if ($(i + 1) != type) next
    if (opt != "" && ("," $(i + 3) ",") !~ ("," opt ",")) next
    print $5; exit }' /proc/self/mountinfo
}

LIMIT=$((64 * 1024 * 1024))
cg=
v2=$(mount_of cgroup2)
if [ -n "$v2" ] && grep -qw memory "$v2/cgroup.controllers" 2>/dev/null; then
  own=$v2$(sed -n 's/^0:://p' /proc/self/cgroup)
  for parent in "$own" "$v2"; do
    try=$parent/fancyalloc-test.$$
    mkdir "$try" 2>/dev/null || continue
    if [ ! -f "$try/memory.max" ]; then
      echo +memory >"$parent/cgroup.subtree_control" 2>/dev/null
    fi
    if [ -f "$try/memory.max" ] && echo $LIMIT >"$try/memory.max" 2>/dev/null; then
      [ -f "$try/memory.swap.max" ] && echo 0 >"$try/memory.swap.max"
      cg=$try; file=memory.max
      break
    fi
    rmdir "$try" 2>/dev/null
  done
fi
if [ -z "$cg" ]; then
  v1=$(mount_of cgroup memory)
  [ -n "$v1" ] || skip "no cgroup2 hierarchy with the memory controller and no v1 memory hierarchy"
  own=$v1$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}://p' /proc/self/cgroup)
  for parent in "$own" "$v1"; do
    try=$parent/fancyalloc-test.$$
    mkdir "$try" 2>/dev/null || continue
    if echo $LIMIT >"$try/memory.limit_in_bytes" 2>/dev/null; then
      [ -f "$try/memory.memsw.limit_in_bytes" ] && echo $LIMIT >"$try/memory.memsw.limit_in_bytes"
      cg=$try; file=memory.limit_in_bytes
      break
    fi
    rmdir "$try" 2>/dev/null
  done
fi
[ -n "$cg" ] || skip "cannot create a memory cgroup (read-only cgroup file system, or no permission)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fa-cgreal.XXXXXX") || { rmdir "$cg"; hard "mktemp"; }
trap 'rmdir "$cg" 2>/dev/null; rm -rf "$tmp"' EXIT
echo "$me: cgroup $cg, $file = $LIMIT"

# in_cgroup COMMAND...: run it as a member of the cgroup
in_cgroup() { sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }

# glibc: killed by the kernel, never sees NULL.
in_cgroup "$fill" >"$tmp/out" 2>&1 </dev/null
st=$?
[ $st -eq 137 ] || fail "under glibc's malloc: status $st, expected 137 (SIGKILL): $(cat "$tmp/out")"
ok "glibc's malloc: killed by the kernel (status $st)"

# libfancymalloc with FANCY_MEMORY_LIMIT=auto: NULL, free, exit 0.
in_cgroup env LD_PRELOAD="$lib" FANCY_MEMORY_LIMIT=auto FANCY_VERBOSE=1 "$fill" \
  >"$tmp/out" 2>"$tmp/err" </dev/null
st=$?
[ $st -eq 0 ] || { cat "$tmp/out" "$tmp/err" >&2; fail "under libfancymalloc: status $st, expected 0"; }
grep -q '^fill: malloc returned NULL (ENOMEM) after [0-9]* MiB; freed them all, exiting 0$' "$tmp/out" ||
  { cat "$tmp/out" >&2; fail "under libfancymalloc: malloc never returned NULL"; }
ok "libfancymalloc, FANCY_MEMORY_LIMIT=auto: $(cat "$tmp/out")"
grep -q "^fancyalloc: memory limit $((LIMIT / 100 * 90 + LIMIT % 100 * 90 / 100)) bytes (FANCY_MEMORY_LIMIT=auto: 90% of $LIMIT in $cg/$file, cgroup v[12])\$" "$tmp/err" ||
  { cat "$tmp/err" >&2; fail "FANCY_VERBOSE=1 does not name $cg/$file"; }
ok "FANCY_VERBOSE=1: $(grep '^fancyalloc: memory limit' "$tmp/err")"
exit 0
