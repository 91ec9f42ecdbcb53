#!/bin/sh
# SPDX-License-Identifier: MIT
# test_cgroup_fake - FANCY_MEMORY_LIMIT=auto and FANCY_MEMORY_SOFT_LIMIT=auto
# against fake cgroup trees: /proc/self/cgroup, /proc/self/mountinfo and
# the cgroup files, made under a temporary directory that the test build
# of the library (tests/libfancytest.la) reads instead of / when
# FA_TEST_CGROUP_ROOT names it (no installed library has that variable).
#
# Checks these sentences of README "Containers" (and the same promises in
# fancyalloc(7), ENVIRONMENT and Containers, and fancy_stats_get(3)):
#   "the limit is cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`, the
#    tightest of the cgroup and its ancestors"        (v2, nested, v1, v1ct)
#   "`auto` takes 90% of it (`auto:P` takes P%)"        (every case; v2)
#   '"max", no cgroup, or no limit file: no limit, silently'
#                                              (max, nothing, nofile, nomount)
#   "A limit file whose contents are not a limit gives one `fancyalloc: `
#    warning line and no limit"                         (garbage)
#   "The cgroup is read again every second, so a limit changed at run time
#    takes effect"                                      (re-read)
#   "`FANCY_MEMORY_SOFT_LIMIT=<size>|auto[:P]` (auto: P% of v2
#    `memory.high`, else of the hard limit)"           (v2, nested, high)
#   "above it, every free byte goes back to the OS at once (the purge delay
#    is skipped) ... the segment and huge-block caches are emptied.  Nothing
#    fails at the soft limit"                           (soft: resident under
#    the limit with FANCY_PURGE_DELAY=60000, 24 MiB more without it, a freed
#    huge block not kept, every malloc succeeded)
#   "`FANCY_VERBOSE=1` prints the limits and the file they came from;
#    `fancy_stats_get(3)` counts the hits of each limit" (verbose, soft, hard)
# Exit status (automake): 0 pass, 1 fail, 99 error.
me=test_cgroup_fake
. "${srcdir:-.}/tests/cgroup/common.sh"
[ -x "$helper" ] || hard "$helper not built"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fa-cgroup.XXXXXX") || hard "mktemp"
trap 'rm -rf "$tmp"' EXIT

V2_MOUNT='30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate'
V1_MOUNT='34 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory'
OTHER='22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw'

# tree NAME CGROUP-LINES MOUNTINFO-LINES: a fake root in $tmp/NAME
tree() {
  t=$tmp/$1
  mkdir -p "$t/proc/self" "$t/sys/fs/cgroup"
  printf '%s\n' "$2" >"$t/proc/self/cgroup"
  printf '%s\n' "$3" >"$t/proc/self/mountinfo"
}
# put FILE CONTENTS: a cgroup file of the current tree
put() { mkdir -p "$(dirname "$t/$1")"; printf '%s\n' "$2" >"$t/$1"; }

# expect NAME LIMIT SOFT [VAR=VALUE...]: the helper's figures with
# FANCY_MEMORY_LIMIT=auto FANCY_MEMORY_SOFT_LIMIT=auto (or the variables
# given), and nothing on stderr
expect() {
  name=$1 limit=$2 soft=$3
  shift 3
  out=$(env FA_TEST_CGROUP_ROOT="$tmp/$name" FANCY_MEMORY_LIMIT=auto \
        FANCY_MEMORY_SOFT_LIMIT=auto "$@" "$helper" limits 2>"$tmp/err") ||
    fail "$name: helper status $?"
  [ "$out" = "limit=$limit soft=$soft" ] || fail "$name: got '$out', expected limit=$limit soft=$soft"
  [ ! -s "$tmp/err" ] || { cat "$tmp/err" >&2; fail "$name: unexpected message"; }
  ok "$name: limit=$limit soft=$soft"
}
pct() { echo $(( $1 / 100 * $2 + $1 % 100 * $2 / 100 )); }

# cgroup v2, one level: 90% of memory.max; no memory.high: the soft limit
# is 90% of the hard one.
tree v2 '0::/app' "$OTHER
$V2_MOUNT"
put sys/fs/cgroup/cgroup.controllers 'cpuset cpu io memory pids'
put sys/fs/cgroup/app/memory.max $((100 * M))
put sys/fs/cgroup/app/memory.high max
hard_v2=$(pct $((100 * M)) 90)
expect v2 "$hard_v2" "$(pct "$hard_v2" 90)"
expect v2 "$(pct $((100 * M)) 50)" "$(pct $((100 * M)) 50)" \
  FANCY_MEMORY_LIMIT=auto:50 FANCY_MEMORY_SOFT_LIMIT=50m

# nested v2: a parent's memory.max binds a child that says "max" or more,
# and the tightest memory.high is the soft limit's base.
tree nested '0::/a/b/c' "$V2_MOUNT"
put sys/fs/cgroup/cgroup.controllers 'memory pids'
put sys/fs/cgroup/a/memory.max $((50 * M))
put sys/fs/cgroup/a/b/memory.max max
put sys/fs/cgroup/a/b/memory.high $((40 * M))
put sys/fs/cgroup/a/b/c/memory.max $((200 * M))
put sys/fs/cgroup/a/b/c/memory.high max
expect nested "$(pct $((50 * M)) 90)" "$(pct $((40 * M)) 90)"
out=$(env FA_TEST_CGROUP_ROOT="$tmp/nested" FANCY_MEMORY_LIMIT=auto FANCY_MEMORY_SOFT_LIMIT=auto \
      FANCY_VERBOSE=1 "$helper" limits 2>&1 >/dev/null)
echo "$out" | grep -qx "fancyalloc: memory limit $(pct $((50 * M)) 90) bytes (FANCY_MEMORY_LIMIT=auto: 90% of $((50 * M)) in $tmp/nested/sys/fs/cgroup/a/memory.max, cgroup v2)" ||
  { echo "$out" >&2; fail "FANCY_VERBOSE does not say where the limit came from"; }
echo "$out" | grep -qx "fancyalloc: soft memory limit $(pct $((40 * M)) 90) bytes (FANCY_MEMORY_SOFT_LIMIT=auto: 90% of $((40 * M)) in $tmp/nested/sys/fs/cgroup/a/b/memory.high)" ||
  { echo "$out" >&2; fail "FANCY_VERBOSE does not say where the soft limit came from"; }
ok "FANCY_VERBOSE names the files"

# "max" everywhere: no limit, silently.
tree max '0::/app' "$V2_MOUNT"
put sys/fs/cgroup/cgroup.controllers 'memory'
put sys/fs/cgroup/app/memory.max max
put sys/fs/cgroup/app/memory.high max
expect max 0 0

# cgroup v1 on a hybrid system (the v2 hierarchy has no memory
# controller): memory.limit_in_bytes, its parent's "no limit" number
# ignored.
tree v1 '4:memory:/docker/abc
1:cpu,cpuacct:/docker/abc
0::/' "$OTHER
31 30 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw
32 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,cpu,cpuacct
$V1_MOUNT"
put sys/fs/cgroup/unified/cgroup.controllers 'hugetlb'
put sys/fs/cgroup/memory/memory.limit_in_bytes 9223372036854771712
put sys/fs/cgroup/memory/docker/memory.limit_in_bytes 9223372036854771712
put sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes $((256 * M))
expect v1 "$(pct $((256 * M)) 90)" "$(pct "$(pct $((256 * M)) 90)" 90)"

# v1 in a container: the mount shows the container's own cgroup (mount
# root /docker/abc), and a mountinfo line longer than the reader's buffer
# comes first.
long=$(printf '%05000d' 0)
tree v1ct '9:memory:/docker/abc' "40 30 0:50 / /x$long rw - tmpfs tmpfs rw
41 30 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory"
put sys/fs/cgroup/memory/memory.limit_in_bytes $((128 * M))
expect v1ct "$(pct $((128 * M)) 90)" "$(pct "$(pct $((128 * M)) 90)" 90)"

# Missing files: no /proc/self/cgroup; a cgroup without memory.max; no
# cgroup mount at all.  No limit, silently.
mkdir -p "$tmp/nothing"
expect nothing 0 0
tree nofile '0::/app' "$V2_MOUNT"
put sys/fs/cgroup/cgroup.controllers 'memory'
mkdir -p "$t/sys/fs/cgroup/app"
expect nofile 0 0
tree nomount '0::/app' "$OTHER"
expect nomount 0 0

# Garbage: one line starting "fancyalloc: " that names the file, and no
# limit.
tree garbage '0::/app' "$V2_MOUNT"
put sys/fs/cgroup/cgroup.controllers 'memory'
put sys/fs/cgroup/app/memory.max 'lots of memory'
out=$(env FA_TEST_CGROUP_ROOT="$tmp/garbage" FANCY_MEMORY_LIMIT=auto "$helper" limits 2>"$tmp/err") ||
  fail "garbage: helper status $?"
[ "$out" = "limit=0 soft=0" ] || fail "garbage: got '$out', expected no limit"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || { cat "$tmp/err" >&2; fail "garbage: not exactly one line"; }
grep -q "^fancyalloc: cannot parse $tmp/garbage/sys/fs/cgroup/app/memory.max; no limit from the cgroup\$" "$tmp/err" ||
  { cat "$tmp/err" >&2; fail "garbage: wrong message"; }
ok "garbage: one warning line, no limit"
put sys/fs/cgroup/app/memory.max '123abc'
env FA_TEST_CGROUP_ROOT="$tmp/garbage" FANCY_MEMORY_LIMIT=auto "$helper" limits 2>"$tmp/err" >/dev/null
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "garbage '123abc': not exactly one line"
ok "garbage '123abc': one warning line"

# A bad percentage: one warning line, no limit.
for bad in auto:0 auto:101 auto:x auto:; do
  out=$(env FA_TEST_CGROUP_ROOT="$tmp/v2" FANCY_MEMORY_LIMIT=$bad "$helper" limits 2>"$tmp/err")
  [ "$out" = "limit=0 soft=0" ] || fail "FANCY_MEMORY_LIMIT=$bad: got '$out'"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^fancyalloc: ignoring FANCY_MEMORY_LIMIT=\"$bad\"" "$tmp/err" ||
    { cat "$tmp/err" >&2; fail "FANCY_MEMORY_LIMIT=$bad: not one warning line"; }
done
ok "bad percentages: one warning line each, no limit"

# Read again at run time: the container's limit is lowered.
out=$(env FA_TEST_CGROUP_ROOT="$tmp/v2" FANCY_MEMORY_LIMIT=auto \
      "$helper" reread "$tmp/v2/sys/fs/cgroup/app/memory.max" $((60 * M))) ||
  { echo "$out" >&2; fail "the limit was not read again"; }
[ "$out" = "limit=$hard_v2 -> $(pct $((60 * M)) 90)" ] || fail "re-read: got '$out'"
ok "re-read: $out"

# The soft limit: 16 MiB.  Without it the helper's process ends with
# 12 MiB free but warm, 12 MiB live and an 8 MiB freed huge block cached
# (FANCY_PURGE_DELAY=60000: nothing decays meanwhile); with it, the
# resident memory stays under 16 MiB, and every allocation succeeded.
out=$(env FANCY_PURGE_DELAY=60000 "$helper" soft) || fail "soft (no limit): status $?"
res=${out#resident=}; res=${res%% *}
[ "$res" -gt $((16 * M)) ] || fail "without a soft limit the scenario stays under 16 MiB ($out): it tests nothing"
ok "no soft limit: $out"
out=$(env FANCY_PURGE_DELAY=60000 FANCY_MEMORY_SOFT_LIMIT=16m "$helper" soft) || fail "soft: status $?"
res=${out#resident=}; res=${res%% *}
hits=${out##*hits=}
[ "$res" -le $((16 * M)) ] || fail "resident memory above the soft limit: $out"
[ "$hits" -ge 1 ] || fail "the soft limit's hits are not counted: $out"
ok "FANCY_MEMORY_SOFT_LIMIT=16m: $out"
# auto, from memory.high
tree high '0::/app' "$V2_MOUNT"
put sys/fs/cgroup/cgroup.controllers 'memory'
put sys/fs/cgroup/app/memory.high $((18 * M))
out=$(env FA_TEST_CGROUP_ROOT="$tmp/high" FANCY_PURGE_DELAY=60000 FANCY_MEMORY_SOFT_LIMIT=auto \
      "$helper" soft) || fail "soft auto: status $?"
res=${out#resident=}; res=${res%% *}
[ "$res" -le "$(pct $((18 * M)) 90)" ] && [ "${out##*hits=}" -ge 1 ] ||
  fail "FANCY_MEMORY_SOFT_LIMIT=auto with memory.high 18 MiB: $out"
ok "FANCY_MEMORY_SOFT_LIMIT=auto (memory.high): $out"

# The hard limit's refusals are counted.
out=$(env FANCY_MEMORY_LIMIT=32m "$helper" hard) || fail "hard: status $?"
case $out in
  "mib="*" refusals=0 "*) fail "refusals not counted: $out" ;;
  *errno=ENOMEM) ok "FANCY_MEMORY_LIMIT=32m: $out" ;;
  *) fail "hard: $out" ;;
esac
exit 0
