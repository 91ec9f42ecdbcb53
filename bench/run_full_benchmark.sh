#!/bin/sh
# run_full_benchmark.sh [N] - the full comparison, up to N threads (default 8).
#
#   ring        the design document's workload (100,000 slots, 250,000
#               ops/thread, 60/30/10 size mix) at 1, 2, 4, ... N threads:
#               throughput, malloc/free latency percentiles, peak RSS,
#               minor faults
#   ring_small  the same with 16-256 B only
#   floor_*     the same loop with no allocator (cold and warm pool), run
#               once per thread count, to report time above the floor
#   larson      thread churn: blocks outlive the thread that made them
#   xthread     producer/consumer: every block freed by another thread
#   frag        peak RSS against peak live bytes (1 and N threads)
#
# Every run is repeated REPS times (default 3), interleaving the
# allocators; CSVs keep every run (*_raw.csv) and the median with the
# min..max spread (*_summary.csv).  One untimed warm-up run per allocator
# comes first.  Plots (PNG, gnuplot) go to the same directory.
#
# Environment: REPS, LARSON_SECONDS (default 1), XTHREAD_OPS (per
# producer, default 200000), FRAG_BLOCKS (default 100000), plus those of
# common.sh (BUILDDIR, BENCH_BIN, RESULTS_DIR, FANCY_LIB, ALLOCATORS,
# RUN_TIMEOUT).
set -eu
PROG=run_full_benchmark.sh
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_SRCDIR/common.sh"

N=${1:-8}
REPS=${REPS:-3}
LARSON_SECONDS=${LARSON_SECONDS:-1}
XTHREAD_OPS=${XTHREAD_OPS:-200000}
FRAG_BLOCKS=${FRAG_BLOCKS:-100000}
is_uint "$N" && [ "$N" -ge 1 ] || die "usage: $PROG [MAX_THREADS]  (>= 1, got '$N')"
is_uint "$REPS" && [ "$REPS" -ge 1 ] || die "REPS must be >= 1"
is_uint "$XTHREAD_OPS" && is_uint "$FRAG_BLOCKS" || die "XTHREAD_OPS and FRAG_BLOCKS must be integers"

check_programs ring xthread larson frag
mkdir -p "$RESULTS_DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fancybench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
setup_allocators
probe "$TMP/probe"

THREADS=
t=1
while [ "$t" -lt "$N" ]; do THREADS="$THREADS $t"; t=$((t * 2)); done
THREADS="${THREADS# } $N"
NT=$(echo $THREADS | wc -w)
NA=$(echo $ALLOCS | wc -w)
FRAG_T1_BLOCKS=$FRAG_BLOCKS
FRAG_TN_BLOCKS=$(( FRAG_BLOCKS / N > 2 ? FRAG_BLOCKS / N : 2 ))

LARSON_KEYS="mops ops_total threads_created malloc_p50_ns malloc_p99_ns malloc_p999_ns malloc_max_ns free_p50_ns free_p99_ns free_p999_ns free_max_ns live_peak_kb vmhwm_kb rss_ratio minflt"
XTHREAD_KEYS="mops elapsed_s producers consumers malloc_p50_ns malloc_p99_ns malloc_p999_ns malloc_max_ns free_p50_ns free_p99_ns free_p999_ns free_max_ns vmhwm_kb minflt"
FRAG_KEYS="mops elapsed_s live_peak_kb vmhwm_kb rss_ratio final_live_kb final_rss_kb final_ratio minflt"
csv_header "$RING_KEYS" >"$TMP/ring_raw.csv"
csv_header "$LARSON_KEYS" >"$TMP/larson_raw.csv"
csv_header "$XTHREAD_KEYS" >"$TMP/xthread_raw.csv"
csv_header "$FRAG_KEYS" >"$TMP/frag_raw.csv"

# Runs per repetition: floors 4 per thread count; per allocator ring and
# ring_small per thread count, larson and xthread per thread count, frag 2.
NFRAG=2; [ "$N" -gt 1 ] || NFRAG=1
TOTAL=$(( NA + REPS * (4 * NT + NA * (4 * NT + NFRAG)) ))
START=$(date +%s)
I=0
FAILED=

echo "== libfancyalloc full benchmark: threads $THREADS, REPS=$REPS"
echo "   allocators: $ALLOCS"
echo "   results:    $RESULTS_DIR"
for a in $ALLOCS; do
	printf '   %-9s %s\n' "$a" "$(alloc_pkgver "$a")"
done

# FAILED holds "alloc" (warm-up failed: skip it entirely) or
# "alloc:workload" (skip the rest of that workload for it).
is_failed() { case " $FAILED " in *" $1 "*|*" $1:$2 "*) return 0 ;; *) return 1 ;; esac; }

# one ALLOC WORKLOAD THREADS REP CSV KEYS PROG ARGS... : one counted run.
one() {
	o_a=$1 o_w=$2 o_t=$3 o_r=$4 o_csv=$5 o_keys=$6 o_prog=$7
	shift 7
	I=$((I + 1))
	if is_failed "$o_a" "$o_w"; then return 0; fi
	printf '[%3d/%d %s] %-10s %-9s t=%-3s rep %d/%d ... ' "$I" "$TOTAL" \
		"$(fmt_secs $(( $(date +%s) - START )))" "$o_w" "$o_a" "$o_t" "$o_r" "$REPS"
	if run_bench "$o_a" "$TMP/out" "$o_prog" "$@"; then
		o_m=$(kv "$TMP/out" mops)
		o_x=
		case $o_w in
		ring*) o_x="malloc p99 $(kv "$TMP/out" malloc_p99_ns) ns, RSS/live $(kv "$TMP/out" rss_ratio)" ;;
		floor*) o_x="minflt $(kv "$TMP/out" minflt)" ;;
		frag*) o_x="RSS/live $(kv "$TMP/out" rss_ratio)" ;;
		*) o_x="free p99 $(kv "$TMP/out" free_p99_ns) ns" ;;
		esac
		echo "$o_m Mops/s ($o_x)"
		echo "$o_a,$(kv "$TMP/out" alloc_version),$o_w,$o_t,$o_r,$(csv_values "$TMP/out" $o_keys)" >>"$o_csv"
	else
		echo "FAILED - skipping $o_w for $o_a from here on"
		FAILED="$FAILED $o_a:$o_w"
	fi
}

# Untimed warm-up: one ring run per allocator (loads the libraries, warms
# the page cache and the CPU clocks); its output is discarded.
for a in $ALLOCS; do
	I=$((I + 1))
	printf '[%3d/%d] warm-up    %-9s (untimed)\n' "$I" "$TOTAL" "$a"
	run_bench "$a" "$TMP/out" ring --threads 1 || { FAILED="$FAILED $a"; echo "   FAILED - skipping $a"; }
done

r=1
while [ "$r" -le "$REPS" ]; do
	for t in $THREADS; do
		one floor floor_cold "$t" "$r" "$TMP/ring_raw.csv" "$RING_KEYS" ring --threads "$t" --floor=cold
		one floor floor_warm "$t" "$r" "$TMP/ring_raw.csv" "$RING_KEYS" ring --threads "$t" --floor=warm
		one floor floor_small_cold "$t" "$r" "$TMP/ring_raw.csv" "$RING_KEYS" ring --threads "$t" --floor=cold --small-only
		one floor floor_small_warm "$t" "$r" "$TMP/ring_raw.csv" "$RING_KEYS" ring --threads "$t" --floor=warm --small-only
		for a in $ALLOCS; do
			one "$a" ring "$t" "$r" "$TMP/ring_raw.csv" "$RING_KEYS" ring --threads "$t"
			one "$a" ring_small "$t" "$r" "$TMP/ring_raw.csv" "$RING_KEYS" ring --threads "$t" --small-only
		done
	done
	for t in $THREADS; do
		for a in $ALLOCS; do
			one "$a" larson "$t" "$r" "$TMP/larson_raw.csv" "$LARSON_KEYS" larson --threads "$t" --seconds "$LARSON_SECONDS"
			one "$a" xthread "$t" "$r" "$TMP/xthread_raw.csv" "$XTHREAD_KEYS" xthread --threads "$t" --ops "$XTHREAD_OPS" --small-only
		done
	done
	for a in $ALLOCS; do
		one "$a" frag 1 "$r" "$TMP/frag_raw.csv" "$FRAG_KEYS" frag --threads 1 --blocks "$FRAG_T1_BLOCKS"
		if [ "$N" -gt 1 ]; then
			one "$a" frag "$N" "$r" "$TMP/frag_raw.csv" "$FRAG_KEYS" frag --threads "$N" --blocks "$FRAG_TN_BLOCKS"
		fi
	done
	r=$((r + 1))
done

# Results: every CSV starts with the machine / allocator header.
ELAPSED=$(( $(date +%s) - START ))
BENCH_WALL="$(fmt_secs "$ELAPSED") for run_full_benchmark.sh $N (REPS=$REPS)"
machine_header "$TMP/header"
echo "# run: $BENCH_WALL; threads $THREADS; larson ${LARSON_SECONDS}s; xthread $XTHREAD_OPS ops/producer (16-256 B); frag $FRAG_T1_BLOCKS blocks (1 thread), $FRAG_TN_BLOCKS/thread ($N threads)" >>"$TMP/header"
cp "$TMP/header" "$RESULTS_DIR/machine.txt"
for b in ring larson xthread frag; do
	{ cat "$TMP/header"; cat "$TMP/${b}_raw.csv"; } >"$RESULTS_DIR/${b}_raw.csv"
	{ cat "$TMP/header"; summarize "$TMP/${b}_raw.csv"; } >"$RESULTS_DIR/${b}_summary.csv"
done

# Time above the floor: aggregate wall-clock ns per operation (1000/Mops)
# minus the warm floor's (same loop, sizes and memset over a pre-touched
# pool: no allocator, no page faults) at the same thread count and size
# mix.  The difference is the allocator's code plus the page faults its
# memory costs; minflt_per_op shows the second part (the cold floor's
# minflt_per_op is the reference for touching fresh pages).
{
	cat "$TMP/header"
	awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
		{ k = $c["allocator"] SUBSEP $c["workload"] SUBSEP $c["threads"]
		  m[k] = $c["mops"]; f[k] = $c["minflt"]
		  if ($c["allocator"] != "floor" && $c["workload"] !~ /^floor/) row[++nr] = k }
		END {
			print "allocator,workload,threads,ns_per_op,floor_warm_ns_per_op,above_warm_ns,floor_cold_ns_per_op,minflt_per_op,floor_cold_minflt_per_op"
			for (r = 1; r <= nr; r++) {
				split(row[r], p, SUBSEP); a = p[1]; w = p[2]; t = p[3]
				if (m[row[r]] <= 0) continue
				sfx = (w == "ring") ? "" : "small_"
				wk = "floor" SUBSEP "floor_" sfx "warm" SUBSEP t
				ck = "floor" SUBSEP "floor_" sfx "cold" SUBSEP t
				ns = 1000 / m[row[r]]
				nw = (wk in m && m[wk] > 0) ? 1000 / m[wk] : 0
				nc = (ck in m && m[ck] > 0) ? 1000 / m[ck] : 0
				ops = t * RING_OPS
				printf "%s,%s,%s,%.1f,%.1f,%.1f,%.1f,%.3f,%.3f\n", a, w, t, ns, nw, ns - nw, nc, f[row[r]] / ops, (ck in f) ? f[ck] / ops : 0
			} }' RING_OPS=250000 "$RESULTS_DIR/ring_summary.csv"
} >"$RESULTS_DIR/ring_above_floor.csv"

# The text summary (also saved as summary.txt).
{
	echo "libfancyalloc benchmark summary - $BENCH_WALL"
	sed 's/^# //' "$TMP/header" | sed -n '2,$p'
	echo
	echo "ring (100k slots, 250k ops/thread, 60/30/10 mix): median of $REPS [min-max]; latency ns (every 8th call sampled)"
	awk -F, -v N="$N" '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1
		printf "%-9s %-17s %4s %8s %17s %13s %13s %13s %8s %9s\n", "allocator", "workload", "thr", "Mops/s", "[min-max]", "malloc p50", "malloc p99", "malloc p99.9", "RSS/live", "minflt"; next }
		$c["workload"] !~ /^(ring|floor_warm|floor_cold)$/ { next }
		{ printf "%-9s %-17s %4s %8.3f %17s %13s %13s %13s %8.3f %9d\n", $c["allocator"], $c["workload"], $c["threads"], $c["mops"],
		  "[" $c["mops_min"] "-" $c["mops_max"] "]", $c["malloc_p50_ns"], $c["malloc_p99_ns"], $c["malloc_p999_ns"], $c["rss_ratio"], $c["minflt"] }' \
		"$RESULTS_DIR/ring_summary.csv"
	echo
	echo "free latency, ring (ns):"
	awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1
		printf "%-9s %4s %11s %11s %11s %11s\n", "allocator", "thr", "free p50", "free p99", "free p99.9", "free max"; next }
		$c["workload"] != "ring" { next }
		{ printf "%-9s %4s %11s %11s %11s %11s\n", $c["allocator"], $c["threads"], $c["free_p50_ns"], $c["free_p99_ns"], $c["free_p999_ns"], $c["free_max_ns"] }' \
		"$RESULTS_DIR/ring_summary.csv"
	echo
	echo "ring_small (16-256 B):"
	awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1
		printf "%-9s %-17s %4s %8s %17s %11s %11s %11s %8s\n", "allocator", "workload", "thr", "Mops/s", "[min-max]", "malloc p99", "malloc p99.9", "free p99.9", "RSS/live"; next }
		$c["workload"] !~ /small/ { next }
		{ printf "%-9s %-17s %4s %8.3f %17s %11s %11s %11s %8.3f\n", $c["allocator"], $c["workload"], $c["threads"], $c["mops"],
		  "[" $c["mops_min"] "-" $c["mops_max"] "]", $c["malloc_p99_ns"], $c["malloc_p999_ns"], $c["free_p999_ns"], $c["rss_ratio"] }' \
		"$RESULTS_DIR/ring_summary.csv"
	echo
	echo "ns per op above the floor (aggregate wall ns/op = 1000/Mops; warm floor = same loop and memset, no allocator, no faults):"
	awk -F, '/^#/ { next } !h { h = 1; printf "%-9s %-11s %4s %9s %11s %11s %11s %13s %13s\n", "allocator", "workload", "thr", "ns/op", "warm floor", "above warm", "cold floor", "minflt/op", "cold minflt/op"; next }
		{ printf "%-9s %-11s %4s %9s %11s %11s %11s %13s %13s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$RESULTS_DIR/ring_above_floor.csv"
	for b in larson xthread; do
		echo
		echo "$b:"
		awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1
			printf "%-9s %4s %8s %17s %11s %11s %11s %11s %10s\n", "allocator", "thr", "Mops/s", "[min-max]", "malloc p99", "malloc p99.9", "free p99", "free p99.9", "VmHWM MB"; next }
			{ printf "%-9s %4s %8.3f %17s %11s %11s %11s %11s %10.1f\n", $c["allocator"], $c["threads"], $c["mops"], "[" $c["mops_min"] "-" $c["mops_max"] "]",
			  $c["malloc_p99_ns"], $c["malloc_p999_ns"], $c["free_p99_ns"], $c["free_p999_ns"], $c["vmhwm_kb"] / 1024 }' "$RESULTS_DIR/${b}_summary.csv"
	done
	echo
	echo "frag (RSS/live = (VmHWM - base RSS) / peak live; final = (RSS - base) / live after freeing 15/16; VmHWM raw):"
	awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1
		printf "%-9s %4s %8s %12s %10s %9s %12s %9s\n", "allocator", "thr", "Mops/s", "live peak MB", "VmHWM MB", "RSS/live", "final RSS MB", "final/live"; next }
		{ printf "%-9s %4s %8.3f %12.1f %10.1f %9.3f %12.1f %9.2f\n", $c["allocator"], $c["threads"], $c["mops"], $c["live_peak_kb"] / 1024,
		  $c["vmhwm_kb"] / 1024, $c["rss_ratio"], $c["final_rss_kb"] / 1024, $c["final_ratio"] }' "$RESULTS_DIR/frag_summary.csv"
} >"$RESULTS_DIR/summary.txt"

# The same as Markdown tables (for bench/README.md and issue comments).
# md_table CSV WORKLOAD TITLE EXTRA [FLOOR] : Mops/s per thread count, and
# latency / RSS columns at N threads when EXTRA is x or lat (lat adds
# faults per op); FLOOR names the floor workload shown as a first row.
md_table() {
	awk -F, -v W="$2" -v T="$3" -v X="$4" -v F="${5:-}" -v TH="$THREADS" -v N="$N" -v OPS=250000 '
		/^#/ { next }
		!h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
		($c["workload"] == W && $c["allocator"] != "floor") || ($c["allocator"] == "floor" && $c["workload"] == F) {
			a = $c["allocator"]; if (a == "floor") a = "floor (warm)"
			if (!(a in seen)) { seen[a] = 1; ord[++na] = a }
			t = $c["threads"]
			v[a, t] = sprintf("%.2f [%.2f-%.2f]", $c["mops"], $c["mops_min"], $c["mops_max"])
			if (t == N) {
				if ("malloc_p99_ns" in c) lat[a] = $c["malloc_p99_ns"] " / " $c["malloc_p999_ns"] " | " $c["free_p99_ns"] " / " $c["free_p999_ns"]
				if ("rss_ratio" in c) rss[a] = sprintf("%.3f", $c["rss_ratio"])
				if ("minflt" in c && X == "lat") fl[a] = sprintf("%.3f", $c["minflt"] / (t * OPS))
			}
		}
		END {
			nt = split(TH, th, " ")
			print "**" T "** (Mops/s, median [min-max])"
			print ""
			s = "| allocator |"; u = "|---|"
			for (i = 1; i <= nt; i++) { s = s " " th[i] " thr |"; u = u "---:|" }
			if (X != "") { s = s " malloc p99 / p99.9 ns (" N " thr) | free p99 / p99.9 ns (" N " thr) | RSS/live (" N " thr) |"; u = u "---:|---:|---:|" }
			if (X == "lat") { s = s " minflt/op (" N " thr) |"; u = u "---:|" }
			print s; print u
			for (o = 1; o <= na; o++) { a = ord[o]; s = "| " a " |"
				for (i = 1; i <= nt; i++) s = s " " ((a, th[i]) in v ? v[a, th[i]] : "-") " |"
				if (X != "") s = s " " (a in lat ? lat[a] : "- | -") " | " (a in rss ? rss[a] : "-") " |"
				if (X == "lat") s = s " " (a in fl ? fl[a] : "-") " |"
				print s }
			print "" }' "$1"
}
{
	echo "Machine: $(sed -n 's/^# cpu: //p' "$TMP/header"), $(sed -n 's/^# cores: //p' "$TMP/header"), $(sed -n 's/^# memory: //p' "$TMP/header"), $(sed -n 's/^# kernel: //p' "$TMP/header"), $(sed -n 's/^# glibc: //p' "$TMP/header"), $(sed -n 's/^# compiler: //p' "$TMP/header"), THP $(sed -n 's/^# thp: //p' "$TMP/header")."
	echo
	sed -n 's/^# allocator \([^:]*\): \(.*\) \[.*/- \1: \2/p' "$TMP/header"
	echo
	echo "$BENCH_WALL; REPS=$REPS; latencies sample every 8th call (rdtscp, ~10 ns timer included)."
	echo
	md_table "$RESULTS_DIR/ring_summary.csv" ring "ring (100k slots, 250k ops/thread, 60/30/10 mix)" lat floor_warm
	md_table "$RESULTS_DIR/ring_summary.csv" ring_small "ring --small-only (16-256 B)" lat floor_small_warm
	md_table "$RESULTS_DIR/larson_summary.csv" larson "larson (thread churn, ${LARSON_SECONDS}s)" x
	md_table "$RESULTS_DIR/xthread_summary.csv" xthread "xthread (producer/consumer, 16-256 B)" x
	echo "**frag** (RSS/live = (VmHWM - base) / peak live; final = after freeing 15/16 of the blocks)"
	echo
	echo "| allocator | threads | Mops/s | peak live MB | VmHWM MB | RSS/live | final RSS MB | final RSS/live |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; next }
		{ printf "| %s | %s | %.2f | %.1f | %.1f | %.3f | %.1f | %.2f |\n", $c["allocator"], $c["threads"], $c["mops"], $c["live_peak_kb"] / 1024,
		  $c["vmhwm_kb"] / 1024, $c["rss_ratio"], $c["final_rss_kb"] / 1024, $c["final_ratio"] }' "$RESULTS_DIR/frag_summary.csv"
} >"$RESULTS_DIR/summary.md"

echo
cat "$RESULTS_DIR/summary.txt"
echo
if command -v gnuplot >/dev/null 2>&1; then
	N="$N" RESULTS_DIR="$RESULTS_DIR" sh "$BENCH_SRCDIR/plots.sh" "$RESULTS_DIR" "$N" ||
		note "plotting failed (the CSVs are complete)"
else
	note "gnuplot not installed: no PNG plots (apt-get install gnuplot-nox)"
fi
echo
# issue 5's targets (with callgrind.csv when bench/callgrind.sh wrote one here)
sh "$BENCH_SRCDIR/targets.sh" "$RESULTS_DIR" || note "targets.sh failed (the CSVs are complete)"
echo
echo "wrote $RESULTS_DIR: ring/larson/xthread/frag *_raw.csv and *_summary.csv, ring_above_floor.csv, summary.txt, summary.md, targets.txt, machine.txt, *.png"
echo "total time: $BENCH_WALL"
[ -z "$FAILED" ] || die "allocators with failed runs (partial results):$FAILED"
