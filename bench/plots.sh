#!/bin/sh
# plots.sh RESULTS_DIR [N] - draw the PNG plots from the *_summary.csv files
# written by run_full_benchmark.sh (N = the largest thread count; default:
# the largest in ring_summary.csv).  Needs gnuplot (pngcairo or png).
#   throughput.png  ring and ring_small Mops/s vs threads, bars = min..max,
#                   with the floor runs for reference
#   latency.png     malloc and free p50/p99/p99.9 (ring, N threads), log scale
#   memory.png      peak RSS / peak live (ring, ring_small, larson, frag)
#                   and minor faults per ring operation
#   dashboard.png   the four views above on one page
set -eu
PROG=plots.sh
D=${1:?usage: plots.sh RESULTS_DIR [N]}
[ -f "$D/ring_summary.csv" ] || { echo "$PROG: error: $D/ring_summary.csv missing" >&2; exit 1; }
command -v gnuplot >/dev/null 2>&1 || { echo "$PROG: error: gnuplot not installed" >&2; exit 1; }
N=${2:-$(awk -F, '/^#/ || /^allocator/ { next } { if ($4 + 0 > m) m = $4 + 0 } END { print m }' "$D/ring_summary.csv")}
P=$D/plotdata
mkdir -p "$P"
rm -f "$P"/*.dat

# Columns by name from a summary CSV.
sel() { # FILE FILTER-AWK-EXPR COLS...  -> whitespace-separated rows
	_f=$1 _e=$2
	shift 2
	awk -F, -v cols="$*" '
		/^#/ { next }
		!h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1; n = split(cols, k, " "); next }
		{ if (!('"$_e"')) next; s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? " " : "") $c[k[i]]; print s }' "$_f"
}
# ALLOCS in file order, floor last.
ALLOCS=$(awk -F, '/^#/ { next } !h { h = 1; next } $1 != "floor" && !s[$1]++ { printf "%s ", $1 }' "$D/ring_summary.csv")

for a in $ALLOCS floor; do
	for w in ring ring_small floor_warm floor_cold floor_small_warm floor_small_cold; do
		sel "$D/ring_summary.csv" "\$c[\"allocator\"] == \"$a\" && \$c[\"workload\"] == \"$w\"" \
			threads mops mops_min mops_max >"$P/${w}_$a.dat"
		[ -s "$P/${w}_$a.dat" ] || rm -f "$P/${w}_$a.dat"
	done
done
sel "$D/ring_summary.csv" "\$c[\"workload\"] == \"ring\" && \$c[\"threads\"] == $N" \
	allocator malloc_p50_ns malloc_p99_ns malloc_p999_ns free_p50_ns free_p99_ns free_p999_ns >"$P/latency.dat"
# memory: allocator ring ring_small larson frag(1) frag(N) ratios; faults per op
for a in $ALLOCS; do
	r1=$(sel "$D/ring_summary.csv" "\$c[\"allocator\"] == \"$a\" && \$c[\"workload\"] == \"ring\" && \$c[\"threads\"] == $N" rss_ratio)
	r2=$(sel "$D/ring_summary.csv" "\$c[\"allocator\"] == \"$a\" && \$c[\"workload\"] == \"ring_small\" && \$c[\"threads\"] == $N" rss_ratio)
	r3=$(sel "$D/larson_summary.csv" "\$c[\"allocator\"] == \"$a\" && \$c[\"threads\"] == $N" rss_ratio 2>/dev/null || true)
	r4=$(sel "$D/frag_summary.csv" "\$c[\"allocator\"] == \"$a\" && \$c[\"threads\"] == 1" rss_ratio 2>/dev/null || true)
	r5=$(sel "$D/frag_summary.csv" "\$c[\"allocator\"] == \"$a\" && \$c[\"threads\"] == $N" rss_ratio 2>/dev/null || true)
	f1=$(sel "$D/ring_summary.csv" "\$c[\"allocator\"] == \"$a\" && \$c[\"workload\"] == \"ring\" && \$c[\"threads\"] == $N" minflt)
	f2=$(sel "$D/ring_summary.csv" "\$c[\"allocator\"] == \"floor\" && \$c[\"workload\"] == \"floor_cold\" && \$c[\"threads\"] == $N" minflt)
	echo "$a ${r1:-0} ${r2:-0} ${r3:-0} ${r4:-0} ${r5:-0} ${f1:-0} ${f2:-0}" >>"$P/memory.dat"
done
for b in larson xthread; do
	[ -f "$D/${b}_summary.csv" ] || continue
	for a in $ALLOCS; do
		sel "$D/${b}_summary.csv" "\$c[\"allocator\"] == \"$a\"" threads mops mops_min mops_max >"$P/${b}_$a.dat"
		[ -s "$P/${b}_$a.dat" ] || rm -f "$P/${b}_$a.dat"
	done
done
RING_OPS=250000

if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
	TERM_PNG='pngcairo noenhanced font "DejaVu Sans,10"'
else
	TERM_PNG='png noenhanced'
fi
MACHINE=$(awk -F': ' '/^# cpu:/ { c = $2 } /^# cores:/ { n = $2 } /^# kernel:/ { k = $2 } END { printf "%s, %s, %s", c, n, k }' "$D/ring_summary.csv" | sed 's/"/\\"/g')

# plot command pieces
tp_lines() { # WORKLOAD-PREFIX: lines for each allocator
	_s=
	_i=1
	for a in $ALLOCS; do
		f=$P/${1}_$a.dat
		[ -f "$f" ] && _s="$_s'$f' u 1:2:3:4 w yerrorlines lw 2 pt 7 lc $_i t '$a', "
		_i=$((_i + 1))
	done
	echo "$_s"
}
floor_lines() { # warm cold
	_s=
	[ -f "$P/${1}_floor.dat" ] && _s="$_s'$P/${1}_floor.dat' u 1:2 w lp dt 2 lc rgb 'gray30' pt 4 t 'floor (warm pool)', "
	[ -f "$P/${2}_floor.dat" ] && _s="$_s'$P/${2}_floor.dat' u 1:2 w lp dt 3 lc rgb 'gray60' pt 6 t 'floor (cold pool)', "
	echo "$_s"
}
other_lines() { # larson|xthread
	_s=
	_i=1
	for a in $ALLOCS; do
		f=$P/${1}_$a.dat
		[ -f "$f" ] && _s="$_s'$f' u 1:2:3:4 w yerrorlines lw 2 pt 7 lc $_i t '$a', "
		_i=$((_i + 1))
	done
	echo "$_s"
}
RING_PLOT="plot $(tp_lines ring)$(floor_lines floor_warm floor_cold)"
SMALL_PLOT="plot $(tp_lines ring_small)$(floor_lines floor_small_warm floor_small_cold)"
LARSON_PLOT="plot $(other_lines larson)"
XTHREAD_PLOT="plot $(other_lines xthread)"

cat >"$P/plots.gp" <<EOF
set datafile separator whitespace
set grid ytics
set key outside right top
set style fill solid 0.85 border -1
set boxwidth 0.9

# ---- throughput ----
set terminal $TERM_PNG size 1400,560
set output '$D/throughput.png'
set multiplot layout 1,2 title "ring workload throughput (median of runs, bars = min..max) - $MACHINE"
set logscale x 2
set xrange [0.8:$N*1.25]
set xlabel 'threads'
set ylabel 'Mops/s (malloc+free+memset per op)'
set yrange [0:*]
set title 'ring: 100k slots, 250k ops/thread, 60/30/10 size mix'
${RING_PLOT%, }
set title 'ring --small-only: 16-256 B'
${SMALL_PLOT%, }
unset multiplot
unset logscale x
set autoscale x

# ---- latency ----
set terminal $TERM_PNG size 1400,560
set output '$D/latency.png'
set multiplot layout 1,2 title "per-call latency, ring workload, $N threads (every 8th call sampled, rdtscp; includes ~10 ns timer)"
set style data histograms
set style histogram clustered gap 1
set logscale y
set yrange [1:*]
set ylabel 'ns (log scale)'
set xlabel ''
set title 'malloc'
plot '$P/latency.dat' u 2:xtic(1) t 'p50', '' u 3 t 'p99', '' u 4 t 'p99.9'
set title 'free'
plot '$P/latency.dat' u 5:xtic(1) t 'p50', '' u 6 t 'p99', '' u 7 t 'p99.9'
unset multiplot
unset logscale y

# ---- memory ----
set terminal $TERM_PNG size 1400,560
set output '$D/memory.png'
set multiplot layout 1,2 title "memory - $MACHINE"
set style data histograms
set style histogram clustered gap 1
set yrange [0:*]
set ylabel 'peak RSS / peak live bytes'
set title 'RSS overhead (1.0 = no overhead)'
plot '$P/memory.dat' u 2:xtic(1) t 'ring $N thr', '' u 3 t 'ring small $N thr', '' u 4 t 'larson $N thr', '' u 5 t 'frag 1 thr', '' u 6 t 'frag $N thr'
set ylabel 'minor faults per op'
set title 'ring, $N threads: minor page faults per operation'
plot '$P/memory.dat' u (\$7/($N*$RING_OPS.0)):xtic(1) t 'allocator', '' u (\$8/($N*$RING_OPS.0)) t 'floor (cold pool)'
unset multiplot

# ---- dashboard ----
set terminal $TERM_PNG size 1800,1200
set output '$D/dashboard.png'
set multiplot layout 2,3 title "libfancyalloc benchmark dashboard - $MACHINE"
set style data linespoints
set logscale x 2
set xrange [0.8:$N*1.25]
set yrange [0:*]
set xlabel 'threads'
set ylabel 'Mops/s'
set key below horizontal
set title 'ring throughput'
${RING_PLOT%, }
set title 'larson (thread churn) throughput'
${LARSON_PLOT%, }
set title 'xthread (producer/consumer) throughput'
${XTHREAD_PLOT%, }
unset logscale x
set autoscale x
set xlabel ''
set style data histograms
set style histogram clustered gap 1
set key outside right top
set logscale y
set yrange [1:*]
set ylabel 'ns (log)'
set title 'ring malloc latency, $N threads'
plot '$P/latency.dat' u 2:xtic(1) t 'p50', '' u 3 t 'p99', '' u 4 t 'p99.9'
set title 'ring free latency, $N threads'
plot '$P/latency.dat' u 5:xtic(1) t 'p50', '' u 6 t 'p99', '' u 7 t 'p99.9'
unset logscale y
set yrange [0:*]
set ylabel 'peak RSS / peak live'
set title 'memory overhead'
plot '$P/memory.dat' u 2:xtic(1) t 'ring', '' u 3 t 'ring small', '' u 4 t 'larson', '' u 5 t 'frag 1', '' u 6 t 'frag $N'
unset multiplot
EOF
gnuplot "$P/plots.gp"
echo "$PROG: wrote $D/throughput.png latency.png memory.png dashboard.png"
