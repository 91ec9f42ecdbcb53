#!/bin/sh
# SPDX-License-Identifier: MIT
# test_cgroup_ns - the installed kind of library (libfancymalloc, which has
# no test root) reads fake cgroup trees at the real paths: in a private
# mount namespace (unshare -m), fake files are bound over
# /proc/<pid>/cgroup, /proc/<pid>/mountinfo and /sys/fs/cgroup of the
# process that then becomes the program.  The same sentences as
# test_cgroup_fake.sh (README "Containers"): "the tightest of the cgroup
# and its ancestors", "`auto` takes 90% of it", '"max" ... no limit,
# silently', "one `fancyalloc: ` warning line and no limit", and
# "`FANCY_VERBOSE=1` prints the limits and the file they came from".
# Skipped (77) without root, unshare(1) or mount(8), or libfancymalloc.
me=test_cgroup_ns
. "${srcdir:-.}/tests/cgroup/common.sh"
require_preload
[ "$(id -u)" = 0 ] || skip "not root: no private mount namespace"
command -v unshare >/dev/null 2>&1 && command -v mount >/dev/null 2>&1 || skip "no unshare(1) or mount(8)"
unshare -m true 2>/dev/null || skip "unshare -m is not allowed here"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fa-cgns.XXXXXX") || hard "mktemp"
trap 'rm -rf "$tmp"' EXIT

# run TREE: fill (1 MiB, then exit 3) under the preload with
# FANCY_MEMORY_LIMIT=auto FANCY_VERBOSE=1, seeing TREE's files; stderr's
# fancyalloc lines other than the option list in $tmp/err
run() {
  t=$tmp/$1
  unshare -m sh -c '
    t=$1; shift
    mount --bind "$t/sys/fs/cgroup" /sys/fs/cgroup &&
    mount --bind "$t/proc/self/cgroup" /proc/$$/cgroup &&
    mount --bind "$t/proc/self/mountinfo" /proc/$$/mountinfo || exit 99
    exec "$@"' sh "$t" env LD_PRELOAD="$lib" FANCY_MEMORY_LIMIT=auto FANCY_VERBOSE=1 \
    "$fill" 1 >/dev/null 2>"$tmp/all"
  st=$?
  [ $st -eq 3 ] || { cat "$tmp/all" >&2; fail "$1: status $st"; }
  grep -v '^fancyalloc: option \|^fancyalloc: libfancyalloc ' "$tmp/all" >"$tmp/err"
}
tree() {
  t=$tmp/$1
  mkdir -p "$t/proc/self" "$t/sys/fs/cgroup"
  printf '%s\n' "$2" >"$t/proc/self/cgroup"
  printf '30 22 0:27 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n' >"$t/proc/self/mountinfo"
  echo 'cpu memory' >"$t/sys/fs/cgroup/cgroup.controllers"
}
put() { mkdir -p "$(dirname "$t/$1")"; printf '%s\n' "$2" >"$t/$1"; }

tree nested '0::/a/b'
put sys/fs/cgroup/a/memory.max $((100 * M))
put sys/fs/cgroup/a/b/memory.max max
run nested
want="fancyalloc: memory limit $((100 * M / 100 * 90)) bytes (FANCY_MEMORY_LIMIT=auto: 90% of $((100 * M)) in /sys/fs/cgroup/a/memory.max, cgroup v2)"
[ "$(cat "$tmp/err")" = "$want" ] || { cat "$tmp/err" >&2; fail "nested: expected '$want'"; }
ok "nested v2: $(cat "$tmp/err")"

tree max '0::/a'
put sys/fs/cgroup/a/memory.max max
run max
[ "$(cat "$tmp/err")" = "fancyalloc: memory limit: none (FANCY_MEMORY_LIMIT=auto: cgroup v2, no limit in /sys/fs/cgroup/a)" ] ||
  { cat "$tmp/err" >&2; fail "max: a limit or a message"; }
ok "max: no limit"

tree garbage '0::/a'
put sys/fs/cgroup/a/memory.max '-5'
run garbage
[ "$(grep -c . "$tmp/err")" -eq 2 ] &&
  grep -qx 'fancyalloc: cannot parse /sys/fs/cgroup/a/memory.max; no limit from the cgroup' "$tmp/err" ||
  { cat "$tmp/err" >&2; fail "garbage: expected one warning and the no-limit line"; }
ok "garbage: one warning, no limit"
exit 0
