#!/bin/sh
# phases.sh - issue 14's RSS-over-time workload: bench/phases (worker
# threads taking turns to allocate and free MIB MiB, each phase followed by
# an idle gap in which no thread calls the allocator) under every allocator
# found, with default settings, and under libfancymalloc also with
# FANCY_RECLAIM=1 (the background reclamation thread).  One run each; RSS
# is sampled every 20 ms.  Writes, in $RESULTS_DIR:
#   phases.csv          every sample: allocator,t_s,rss_mib,phase,state
#   phases_summary.csv  per allocator: peak RSS and RSS at the end of each
#                       idle gap (MiB), and the mean of those
#   phases.md           the same as a Markdown table
#   phases.png          RSS over time, one line per allocator (gnuplot)
# Environment: see common.sh (BUILDDIR, BENCH_BIN, RESULTS_DIR, FANCY_LIB,
# ALLOCATORS, RUN_TIMEOUT); THREADS (4), CYCLES (2), MIB (64), IDLE_MS (1000).
set -eu
PROG=phases.sh
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_SRCDIR/common.sh"

THREADS=${THREADS:-4} CYCLES=${CYCLES:-2} MIB=${MIB:-64} IDLE_MS=${IDLE_MS:-1000}
for v in "$THREADS" "$CYCLES" "$MIB" "$IDLE_MS"; do is_uint "$v" || die "THREADS, CYCLES, MIB, IDLE_MS must be numbers"; done
check_programs ring phases
command -v gnuplot >/dev/null 2>&1 || die "gnuplot not installed (apt-get install gnuplot-nox)"
# The allocators' defaults, whatever the caller's environment says.
unset FANCY_RECLAIM FANCY_PURGE_DELAY FANCY_MEMORY_SOFT_LIMIT FANCY_MEMORY_LIMIT MALLOC_ARENA_MAX
mkdir -p "$RESULTS_DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fancyphases.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
setup_allocators
probe "$TMP/probe"

RUNS=
for a in $ALLOCS; do
	RUNS="$RUNS $a"
	[ "$a" = fancy ] && RUNS="$RUNS fancy-reclaim"
done
echo "== phases: $THREADS threads x $CYCLES turns, $MIB MiB allocated and freed per turn, ${IDLE_MS} ms idle after each"
CSV=$RESULTS_DIR/phases.csv
SUM=$RESULTS_DIR/phases_summary.csv
echo "allocator,t_s,rss_mib,phase,state" >"$TMP/all.csv"
: >"$TMP/sum"
for run in $RUNS; do
	a=${run%-reclaim}
	printf '%-14s ... ' "$run"
	[ "$run" = fancy-reclaim ] && export FANCY_RECLAIM=1
	run_bench "$a" "$TMP/out" phases --threads "$THREADS" --cycles "$CYCLES" --mib "$MIB" \
		--idle "$IDLE_MS" --out "$TMP/samples.csv" || die "phases failed under $run"
	unset FANCY_RECLAIM
	grep '^phases ' "$TMP/out" | tr ' ' '\n' >>"$TMP/out"
	awk -v a="$run" 'NR > 1 { print a "," $0 }' "$TMP/samples.csv" >>"$TMP/all.csv"
	echo "$run $(kv "$TMP/out" base_kb) $(kv "$TMP/out" peak_kb) $(kv "$TMP/out" idle_end_kb)" | tee -a "$TMP/sum" |
		awk '{ printf "peak %.1f MiB, after the idle gaps:", $3 / 1024; n = split($4, v, ";")
		       for (i = 1; i <= n; i++) printf " %.1f", v[i] / 1024; print " MiB" }'
done
cp "$TMP/all.csv" "$CSV"

machine_header "$SUM"
echo "# phases: $THREADS threads x $CYCLES turns, $MIB MiB per turn, ${IDLE_MS} ms idle; RSS in MiB" >>"$SUM"
awk '
	{ n = split($4, v, ";")
	  if (NR == 1) { printf "allocator,base_mib,peak_mib"; for (i = 1; i <= n; i++) printf ",idle%d_mib", i; print ",idle_mean_mib" }
	  printf "%s,%.1f,%.1f", $1, $2 / 1024, $3 / 1024; s = 0
	  for (i = 1; i <= n; i++) { printf ",%.1f", v[i] / 1024; s += v[i] }
	  printf ",%.1f\n", s / n / 1024 }' "$TMP/sum" >>"$SUM"
MD=$RESULTS_DIR/phases.md
awk -F, '
	/^#/ { next }
	!h { h = 1; n = NF - 4
		printf "| allocator | peak |"; for (i = 1; i <= n; i++) printf " idle %d |", i; print " mean idle |"
		printf "|---|---:|"; for (i = 1; i <= n; i++) printf "---:|"; print "---:|"; next }
	{ printf "| %s |", $1; for (i = 3; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$SUM" >"$MD"

# The plot: one line per run, the work phases shaded.
if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
	TERM_PNG='pngcairo noenhanced font "DejaVu Sans,10"'
else
	TERM_PNG='png noenhanced'
fi
PLOT=
for run in $RUNS; do
	awk -F, -v a="$run" '$1 == a { print $2, $3 }' "$CSV" >"$TMP/$run.dat"
	PLOT="$PLOT'$TMP/$run.dat' u 1:2 w l lw 2 t '$run', "
done
# work intervals of the first run, as shaded rectangles
FIRST=$(echo $RUNS | cut -d' ' -f1)
RECTS=$(awk -F, -v a="$FIRST" '
	$1 == a && $5 == "work" && !inw { s = $2; inw = 1 }
	$1 == a && $5 == "idle" && inw { printf "set object rect from %s, graph 0 to %s, graph 1 fc rgb \"#eeeeee\" fs solid noborder behind\n", s, $2; inw = 0 }' "$CSV")
gnuplot <<EOF
set terminal $TERM_PNG size 1100,520
set output '$RESULTS_DIR/phases.png'
set title "RSS over time: $THREADS threads take turns to allocate and free $MIB MiB, then ${IDLE_MS} ms idle (shaded: $FIRST at work)"
set xlabel 'seconds'
set ylabel 'RSS MiB (/proc/self/statm, every 20 ms)'
set grid
set key outside right top
set yrange [0:*]
$RECTS
plot ${PLOT%, }
EOF
echo
cat "$MD"
echo
echo "wrote $CSV, $SUM, $MD, $RESULTS_DIR/phases.png"
