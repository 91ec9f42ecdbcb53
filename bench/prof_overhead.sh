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
#   workload threads off_mops on_mops slowdown off_cpu on_cpu cpu_slowdown
# where the *_cpu figures are the process's CPU time (user + system) per
# operation in microseconds, medians too: on a loaded machine, time spent
# waiting for a CPU does not count there, as it does in mops.
#
# CALLGRIND=1 counts instructions instead (valgrind --tool=callgrind, user
# space only, independent of the machine's load): ring (RING_OPS per
# thread, all of the program) and larson (CG_LARSON_SECONDS, default 3, of
# valgrind's slow time), off and on, as instructions per operation:
#   workload threads off_ir_per_op on_ir_per_op ratio
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
echo "workload,threads,rep,prof,mops,cpu_us_per_op" >"$csv"

mops() {   # prof workload threads
	case $2 in
	ring) set -- "$1" "$BENCH_BIN/ring" -t "$3" -n "$RING_OPS" --sample 0 ;;
	larson) set -- "$1" "$BENCH_BIN/larson" -t "$3" -d "$LARSON_SECONDS" --sample 0 ;;
	esac
	prof=$1
	shift
	# mops, and CPU microseconds per operation (ring: ops per thread)
	env FANCY_PROF="$prof" LD_PRELOAD="$FANCY_LIB" "$@" | awk -F= '
		{ v[$1] = $2 }
		END { ops = ("ops_total" in v) ? v["ops_total"] : v["ops"] * v["threads"]
		      if (v["mops"] != "" && ops > 0)
		        printf "%s,%.4f\n", v["mops"], (v["utime_s"] + v["stime_s"]) * 1e6 / ops }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

if [ "${CALLGRIND:-0}" = 1 ]; then
	command -v valgrind >/dev/null 2>&1 || die "valgrind is not installed"
	CG_LARSON_SECONDS=${CG_LARSON_SECONDS:-3}
	cgtmp=$(mktemp -d "${TMPDIR:-/tmp}/profcg.XXXXXX")
	trap 'rm -rf "$cgtmp"' EXIT INT TERM
	irop() {   # prof workload threads: Ir per operation
		case $2 in
		ring) set -- "$1" "$2" "$BENCH_BIN/ring" -t "$3" -n "$RING_OPS" --sample 0 ;;
		larson) set -- "$1" "$2" "$BENCH_BIN/larson" -t "$3" -d "$CG_LARSON_SECONDS" --sample 0 ;;
		esac
		_p=$1 _w=$2
		shift 2
		FANCY_PROF=$_p LD_PRELOAD=$FANCY_LIB valgrind --tool=callgrind \
			--callgrind-out-file="$cgtmp/cg.out" "$@" >"$cgtmp/out" 2>/dev/null ||
			die "$_w under callgrind failed"
		_ir=$(awk '/^totals:/ { print $2; exit }' "$cgtmp/cg.out")
		case $_w in
		ring) _ops=$(awk -F= '$1 == "threads" { print $2 * '"$RING_OPS"' }' "$cgtmp/out") ;;
		larson) _ops=$(awk -F= '$1 == "ops_total" { print $2 }' "$cgtmp/out") ;;
		esac
		awk -v i="$_ir" -v o="$_ops" 'BEGIN { printf "%.1f", i / o }'
	}
	printf '%-8s %7s %12s %12s %7s\n' workload threads off_ir_op on_ir_op ratio
	for w in ring larson; do
		for t in $THREADS; do
			off=$(irop 0 "$w" "$t")
			on=$(irop 1 "$w" "$t")
			awk -v w="$w" -v t="$t" -v a="$off" -v b="$on" \
				'BEGIN { printf "%-8s %7s %12.1f %12.1f %7.3f\n", w, t, a, b, b / a }'
		done
	done
	exit 0
fi

printf '%-8s %7s %10s %10s %9s %9s %9s %9s\n' workload threads off_mops on_mops slowdown \
	off_cpu on_cpu cpu_slow
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
		coff=$(awk -F, -v w="$w" -v t="$t" '$1 == w && $2 == t && $4 == 0 { print $6 }' "$csv" | median)
		con=$(awk -F, -v w="$w" -v t="$t" '$1 == w && $2 == t && $4 == 1 { print $6 }' "$csv" | median)
		awk -v w="$w" -v t="$t" -v a="$off" -v b="$on" -v c="$coff" -v d="$con" \
			'BEGIN { printf "%-8s %7s %10.4f %10.4f %8.1f%% %9.3f %9.3f %8.1f%%\n", w, t, a, b,
				(a - b) / a * 100, c, d, (d - c) / c * 100 }'
	done
done
note "all runs in $csv"
