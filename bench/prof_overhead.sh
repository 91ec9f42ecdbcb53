#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/prof_overhead.sh - what heap profiling costs (issue 16): ring and
# larson under libfancymalloc with FANCY_PROF=1 at the default rate
# (FANCY_PROF_SAMPLE=512k) against profiling off, at 1, 2, 4 and 8
# threads.  The two settings alternate run by run (off, on, off, on, ...)
# so that drift in the machine's load hits both alike; each figure is the
# median of REPS runs.  Target: at most 3% slower.
#
#   bench/prof_overhead.sh [THREADS...]        (default: 1 2 4 8)
#
# Environment: BUILDDIR, BENCH_BIN, FANCY_LIB as for the other scripts
# (bench/common.sh); REPS (default 5); RING_OPS (default 250000 per
# thread); LARSON_SECONDS (default 1); RESULTS_DIR (default
# $BENCH_BIN/results), where prof_overhead.csv is written.
# Prints one line per workload and thread count:
#   workload threads off_mops on_mops slowdown_percent
set -eu
PROG=prof_overhead
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_SRCDIR/common.sh"
check_programs ring larson
FANCY_LIB=${FANCY_LIB:-$FANCY_LIB_DEFAULT}
[ -e "$FANCY_LIB" ] || die "no $FANCY_LIB: build libfancymalloc first"
REPS=${REPS:-5}
RING_OPS=${RING_OPS:-250000}
LARSON_SECONDS=${LARSON_SECONDS:-1}
THREADS=${*:-1 2 4 8}
mkdir -p "$RESULTS_DIR"
csv=$RESULTS_DIR/prof_overhead.csv
echo "workload,threads,rep,prof,mops" >"$csv"

mops() {   # prof workload threads
	case $2 in
	ring) set -- "$1" "$BENCH_BIN/ring" -t "$3" -n "$RING_OPS" --sample 0 ;;
	larson) set -- "$1" "$BENCH_BIN/larson" -t "$3" -d "$LARSON_SECONDS" --sample 0 ;;
	esac
	prof=$1
	shift
	env FANCY_PROF="$prof" LD_PRELOAD="$FANCY_LIB" "$@" | awk -F= '$1 == "mops" { print $2 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-8s %7s %10s %10s %9s\n' workload threads off_mops on_mops slowdown
for w in ring larson; do
	for t in $THREADS; do
		r=1
		while [ "$r" -le "$REPS" ]; do
			for p in 0 1; do
				m=$(mops "$p" "$w" "$t")
				[ -n "$m" ] || die "$w -t $t with FANCY_PROF=$p printed no mops"
				echo "$w,$t,$r,$p,$m" >>"$csv"
			done
			r=$((r + 1))
		done
		off=$(awk -F, -v w="$w" -v t="$t" '$1 == w && $2 == t && $4 == 0 { print $5 }' "$csv" | median)
		on=$(awk -F, -v w="$w" -v t="$t" '$1 == w && $2 == t && $4 == 1 { print $5 }' "$csv" | median)
		awk -v w="$w" -v t="$t" -v a="$off" -v b="$on" \
			'BEGIN { printf "%-8s %7s %10.4f %10.4f %8.1f%%\n", w, t, a, b, (a - b) / a * 100 }'
	done
done
note "all runs in $csv"
