#!/bin/sh
# run_unified.sh [N] - quick throughput comparison: the design document's
# ring workload (100,000 slots, 250,000 ops per thread) at N threads
# (default 2), under every allocator found.  REPS=k repeats each run
# (default 1) and reports the median.  Writes $RESULTS_DIR/unified.csv.
set -eu
PROG=run_unified.sh
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_SRCDIR/common.sh"

N=${1:-2}
REPS=${REPS:-1}
is_uint "$N" && [ "$N" -ge 1 ] || die "usage: $PROG [THREADS]  (THREADS >= 1, got '$N')"
is_uint "$REPS" && [ "$REPS" -ge 1 ] || die "REPS must be >= 1"
check_programs ring
mkdir -p "$RESULTS_DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fancybench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
setup_allocators
probe "$TMP/probe"

echo "== ring workload, $N threads, 100000 slots x 250000 ops/thread, REPS=$REPS"
echo "   allocators: $ALLOCS"
echo "   (untimed warm-up run first)"
run_bench glibc "$TMP/warm" ring --threads "$N" --ops 50000 --slots 20000 || die "warm-up failed"

RAW=$TMP/raw.csv
csv_header "$RING_KEYS" >"$RAW"
FAILED=
total=$(( $(echo $ALLOCS | wc -w) * REPS ))
i=0
for a in $ALLOCS; do
	r=1
	while [ "$r" -le "$REPS" ]; do
		i=$((i + 1))
		printf '[%d/%d] %-9s threads=%s rep %d/%d ... ' "$i" "$total" "$a" "$N" "$r" "$REPS"
		if run_bench "$a" "$TMP/out" ring --threads "$N"; then
			echo "$(kv "$TMP/out" mops) Mops/s ($(kv "$TMP/out" elapsed_s) s)"
			echo "$a,$(kv "$TMP/out" alloc_version),ring,$N,$r,$(csv_values "$TMP/out" $RING_KEYS)" >>"$RAW"
		else
			echo "FAILED"
			FAILED="$FAILED $a"
			break
		fi
		r=$((r + 1))
	done
done

OUT=$RESULTS_DIR/unified.csv
machine_header "$OUT"
summarize "$RAW" >>"$OUT"
echo
echo "Results ($OUT):"
awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1
	printf "%-9s %8s %17s %15s %15s %9s %9s\n", "allocator", "Mops/s", "(min-max)", "malloc p99/p99.9", "free p99/p99.9", "RSS/live", "minflt"; next }
	{ printf "%-9s %8.3f %17s %15s %15s %9.3f %9d\n", $c["allocator"], $c["mops"],
	  "(" $c["mops_min"] "-" $c["mops_max"] ")", $c["malloc_p99_ns"] "/" $c["malloc_p999_ns"],
	  $c["free_p99_ns"] "/" $c["free_p999_ns"], $c["rss_ratio"], $c["minflt"] }' "$OUT"
echo "(latencies in ns, every 8th call sampled; RSS/live = (VmHWM - base RSS) / peak live requested bytes)"
[ -z "$FAILED" ] || die "failed runs:$FAILED"
