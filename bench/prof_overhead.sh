#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/prof_overhead.sh - what heap profiling costs (issue 16): ring and
# larson under libfancymalloc with FANCY_PROF=1 at the default rate
# (FANCY_PROF_SAMPLE=512k) against profiling off, at 1, 2, 4 and 8
# threads.  The two settings alternate run by run (off, on, off, on, ...)
# so that drift in the machine's load hits both alike, off first in odd
# repetitions and on first in even ones; each figure is the median of REPS
# runs.  Target: at most 3% slower.
#
#   bench/prof_overhead.sh [THREADS...]        (default: 1 2 4 8)
#
# Environment: BUILDDIR, BENCH_BIN, FANCY_LIB as for the other scripts
# (bench/common.sh); REPS (default 5); WORKLOADS (default "ring larson",
# for the throughput runs); RING_OPS (default 250000 per
# thread); LARSON_SECONDS (default 1); RESULTS_DIR (default
# $BENCH_BIN/results), where prof_overhead.csv is written.
# Prints one line per workload and thread count:
#   workload threads off_mops on_mops slowdown off_cpu on_cpu cpu_slowdown pair_slow
# where the *_cpu figures are the process's CPU time (user + system) per
# operation in microseconds, medians too: on a loaded machine, time spent
# waiting for a CPU does not count there, as it does in mops.  pair_slow
# is the slowdown as the median over the repetitions of on / off within
# one repetition: on a machine whose speed jumps between runs (the 2-core
# VM ran larson at 2 threads at 40 or 56 Mops/s, in turns), the medians
# of each setting's runs can fall on different speeds, the pairs cannot.
#
# PEERS=1 measures the peers' own heap profilers the same way, at the same
# mean rate, in the same interleaved runs: jemalloc (Debian's libjemalloc2,
# MALLOC_CONF=prof:true,lg_prof_sample:19 against no MALLOC_CONF) and
# gperftools tcmalloc (the full libtcmalloc.so.4, which samples;
# TCMALLOC_SAMPLE_PARAMETER=524288 against 0).  Their rows follow
# fancy's, workload named "ring/jemalloc" and so on.
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
WORKLOADS=${WORKLOADS:-ring larson}
mkdir -p "$RESULTS_DIR"
csv=$RESULTS_DIR/prof_overhead.csv
echo "workload,threads,rep,allocator,prof,mops,cpu_us_per_op" >"$csv"
ALLOCS=fancy
if [ "${PEERS:-0}" = 1 ]; then
	JE_LIB=$(find_so libjemalloc.so.2 libjemalloc.so) || die "PEERS=1: no libjemalloc (apt-get install libjemalloc2)"
	TC_LIB=$(find_so libtcmalloc.so.4 libtcmalloc.so) ||
		die "PEERS=1: no libtcmalloc.so.4 (apt-get install libgoogle-perftools4)"
	ALLOCS="fancy jemalloc tcmalloc"
fi

# run_workload workload threads larson_seconds command...: the workload's
# program and arguments, run by command (env ..., valgrind ...).
run_workload() {
	_w=$1 _t=$2 _s=$3
	shift 3
	case $_w in
	ring) "$@" "$BENCH_BIN/ring" -t "$_t" -n "$RING_OPS" --sample 0 ;;
	larson) "$@" "$BENCH_BIN/larson" -t "$_t" -d "$_s" --sample 0 ;;
	esac
}

mops() {   # allocator prof workload threads
	case $1.$2 in   # each profiler on at one sample per 512 KiB, or off
	fancy.*) set -- "$3" "$4" env FANCY_PROF="$2" LD_PRELOAD="$FANCY_LIB" ;;
	jemalloc.0) set -- "$3" "$4" env -u MALLOC_CONF LD_PRELOAD="$JE_LIB" ;;
	jemalloc.1) set -- "$3" "$4" env MALLOC_CONF=prof:true,lg_prof_sample:19 LD_PRELOAD="$JE_LIB" ;;
	tcmalloc.0) set -- "$3" "$4" env TCMALLOC_SAMPLE_PARAMETER=0 LD_PRELOAD="$TC_LIB" ;;
	tcmalloc.1) set -- "$3" "$4" env TCMALLOC_SAMPLE_PARAMETER=524288 LD_PRELOAD="$TC_LIB" ;;
	esac
	_mw=$1 _mt=$2
	shift 2
	# mops, and CPU microseconds per operation (ring: ops per thread)
	run_workload "$_mw" "$_mt" "$LARSON_SECONDS" "$@" | awk -F= '
		{ v[$1] = $2 }
		END { ops = ("ops_total" in v) ? v["ops_total"] : v["ops"] * v["threads"]
		      if (v["mops"] != "" && ops > 0)
		        printf "%s,%.4f\n", v["mops"], (v["utime_s"] + v["stime_s"]) * 1e6 / ops }'
}

# sel workload threads allocator prof column: the median of that column
sel() {
	awk -F, -v w="$1" -v t="$2" -v a="$3" -v p="$4" -v c="$5" \
		'$1 == w && $2 == t && $4 == a && $5 == p { print $c }' "$csv" | median
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# pairs workload threads allocator: the median over the repetitions of
# on / off within one repetition (the two runs next to each other)
pairs() {
	awk -F, -v w="$1" -v t="$2" -v a="$3" \
		'$1 == w && $2 == t && $4 == a { v[$3 "," $5] = $6; if ($3 > n) n = $3 }
		 END { for (r = 1; r <= n; r++) if (v[r ",0"] > 0 && v[r ",1"] > 0) print v[r ",1"] / v[r ",0"] }' "$csv" |
		median
}

if [ "${CALLGRIND:-0}" = 1 ]; then
	command -v valgrind >/dev/null 2>&1 || die "valgrind is not installed"
	CG_LARSON_SECONDS=${CG_LARSON_SECONDS:-3}
	cgtmp=$(mktemp -d "${TMPDIR:-/tmp}/profcg.XXXXXX")
	trap 'rm -rf "$cgtmp"' EXIT INT TERM
	irop() {   # prof workload threads: Ir per operation
		_p=$1 _w=$2
		run_workload "$_w" "$3" "$CG_LARSON_SECONDS" env FANCY_PROF="$_p" LD_PRELOAD="$FANCY_LIB" \
			valgrind --tool=callgrind --callgrind-out-file="$cgtmp/cg.out" >"$cgtmp/out" 2>/dev/null ||
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

printf '%-16s %7s %10s %10s %9s %9s %9s %9s %9s\n' workload threads off_mops on_mops slowdown \
	off_cpu on_cpu cpu_slow pair_slow
for w in $WORKLOADS; do
	for t in $THREADS; do
		r=1
		while [ "$r" -le "$REPS" ]; do
			# off first in odd repetitions, on first in even ones: a
			# run's position in its pair does not lean one way
			order="0 1"
			[ $((r % 2)) -eq 0 ] && order="1 0"
			for a in $ALLOCS; do
				for p in $order; do
					m=$(mops "$a" "$p" "$w" "$t")
					[ -n "$m" ] || die "$w -t $t under $a with profiling=$p printed no mops"
					echo "$w,$t,$r,$a,$p,$m" >>"$csv"
				done
			done
			r=$((r + 1))
		done
		for a in $ALLOCS; do
			off=$(sel "$w" "$t" "$a" 0 6) on=$(sel "$w" "$t" "$a" 1 6)
			coff=$(sel "$w" "$t" "$a" 0 7) con=$(sel "$w" "$t" "$a" 1 7)
			pr=$(pairs "$w" "$t" "$a")
			name=$w
			[ "$a" = fancy ] || name=$w/$a
			awk -v w="$name" -v t="$t" -v a="$off" -v b="$on" -v c="$coff" -v d="$con" -v r="$pr" \
				'BEGIN { printf "%-16s %7s %10.4f %10.4f %8.1f%% %9.3f %9.3f %8.1f%% %8.1f%%\n", w, t, a, b,
					(a - b) / a * 100, c, d, (d - c) / c * 100, (1 - r) * 100 }'
		done
	done
done
note "all runs in $csv"
