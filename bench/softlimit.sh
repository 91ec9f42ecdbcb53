#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/softlimit.sh - the soft limit's RSS and its cost (issue 17).
#
# Runs bench/softlimit (THREADS threads taking turns to allocate WS MiB
# plus an 8 MiB block and free it all) REPS times under glibc's malloc,
# under libfancymalloc as it is, and under libfancymalloc with
# FANCY_MEMORY_SOFT_LIMIT=SOFT, with each FANCY_PURGE_DELAY in DELAYS, and
# prints each run and then the medians: malloc+free pairs per second, the
# peak RSS (VmHWM, the kernel's figure), and the cost of the soft limit
# as the change in pairs per second against the same delay without it.
#
#   bench/softlimit.sh            THREADS=4 WS=48 ROUNDS=20 SOFT=72m REPS=3
#                                 DELAYS="100 1000"
# Environment: BUILDDIR (the build tree, default: the source tree),
# FANCY_LIB (default $BUILDDIR/lib/.libs/libfancymalloc.so.1).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BUILDDIR=${BUILDDIR:-$(cd "$here/.." && pwd)}
prog=$BUILDDIR/bench/softlimit
lib=${FANCY_LIB:-$BUILDDIR/lib/.libs/libfancymalloc.so.1}
THREADS=${THREADS:-4} WS=${WS:-48} ROUNDS=${ROUNDS:-20} SOFT=${SOFT:-72m} REPS=${REPS:-3}
DELAYS=${DELAYS:-100 1000}
[ -x "$prog" ] || { echo "softlimit.sh: build $prog first (make bench-programs)" >&2; exit 1; }
[ -f "$lib" ] || { echo "softlimit.sh: no $lib" >&2; exit 1; }
unset FANCY_MEMORY_SOFT_LIMIT FANCY_MEMORY_LIMIT FANCY_PURGE_DELAY LD_PRELOAD
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# run LABEL ENV...: REPS runs, one line each, labelled
run() {
  label=$1
  shift
  i=0
  while [ $i -lt "$REPS" ]; do
    line=$(env "$@" "$prog" "$THREADS" "$WS" "$ROUNDS")
    echo "$label $line" | tee -a "$out"
    i=$((i + 1))
  done
}

echo "# bench/softlimit: $THREADS threads, $WS MiB + 8 MiB per turn, $ROUNDS rounds, $(nproc) CPUs"
run glibc
for d in $DELAYS; do
  run "fancy,delay=$d" LD_PRELOAD="$lib" FANCY_PURGE_DELAY="$d"
  run "fancy,delay=$d,soft=$SOFT" LD_PRELOAD="$lib" FANCY_PURGE_DELAY="$d" FANCY_MEMORY_SOFT_LIMIT="$SOFT"
done

echo
echo "# medians over $REPS runs"
awk '
  function kv(k,   i, f) { for (i = 2; i <= NF; i++) { split($i, f, "="); if (f[1] == k) return f[2] } return "" }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((n + 1) / 2)]
  }
  { if (!($1 in seen)) { order[++n] = $1; seen[$1] = 1 }
    pps[$1] = pps[$1] " " kv("pairs_per_sec"); hwm[$1] = hwm[$1] " " kv("hwm_mib")
    lim[$1] = kv("soft_limit_mib"); hits[$1] = hits[$1] " " kv("soft_limit_hits") }
  END {
    printf "%-28s %14s %10s %10s %10s %16s\n", "run", "pairs/s", "VmHWM MiB", "soft MiB", "soft hits", "pairs/s vs same"
    for (i = 1; i <= n; i++) {
      r = order[i]; p = median(pps[r]); base = r; sub(/,soft=.*/, "", base)
      cost = (base != r) ? sprintf("%+.1f%%", 100 * (p / median(pps[base]) - 1)) : "-"
      printf "%-28s %14.0f %10.1f %10s %10s %16s\n", r, p, median(hwm[r]), (lim[r] == "" || lim[r] == "0.0") ? "-" : lim[r], (lim[r] == "" ? "-" : median(hits[r])), cost
    }
  }' "$out"
