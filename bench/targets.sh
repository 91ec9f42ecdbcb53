#!/bin/sh
# targets.sh [RESULTS_DIR] - issue 5's performance targets, checked against
# one run's results: ring_summary.csv and larson_summary.csv from
# run_full_benchmark.sh, and callgrind.csv from callgrind.sh when it is
# there.  Prints one line per target, its figure for fancy, the peers' in
# the same run, and "met" or "NOT MET"; writes the same as targets.txt.
# Exit status 0 whatever it finds: the targets are goals, not tests.
#
#   instructions per malloc+free above the floor, ring mix  <= 85
#   ring Mops/s >= mimalloc's at every thread count
#   ring peak RSS / peak live bytes                          <= 1.05
#   ring malloc p99 <= 1 us and p99.9 <= 4 us at every thread count
#   larson Mops/s >= 1.1 x the best peer at every thread count
set -eu
PROG=targets.sh
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_SRCDIR/common.sh"
[ $# -ge 1 ] && RESULTS_DIR=$1
RING=$RESULTS_DIR/ring_summary.csv
LARSON=$RESULTS_DIR/larson_summary.csv
CG=$RESULTS_DIR/callgrind.csv
[ -f "$RING" ] && [ -f "$LARSON" ] ||
	die "no ring_summary.csv / larson_summary.csv in $RESULTS_DIR (run run_full_benchmark.sh first)"

{
echo "issue 5 targets, fancy against the peers of the same run ($RESULTS_DIR)"
if [ -f "$CG" ]; then
	awk -F, '/^#/ || $1 == "allocator" || $3 != "ring" { next }
		{ ir[$1] = $6; order[++n] = $1 }
		END { peers = ""
		      for (i = 1; i <= n; i++) if (order[i] != "fancy") peers = peers sprintf(" %s %s", order[i], ir[order[i]])
		      if (!("fancy" in ir)) { print "instructions per pair (ring mix) <= 85: no figure for fancy"; exit }
		      printf "instructions per pair (ring mix) <= 85: fancy %s%s %s\n", ir["fancy"],
		             (peers == "" ? "" : ";" peers), (ir["fancy"] + 0 <= 85 ? "met" : "NOT MET") }' "$CG"
else
	echo "instructions per pair (ring mix) <= 85: not measured in this run (bench/callgrind.sh)"
fi
awk -F, '/^#/ || $1 == "allocator" || $3 != "ring" { next }
	{ m[$1 "," $4] = $8; rss[$1 "," $4] = $21; p99[$1 "," $4] = $11; p999[$1 "," $4] = $12
	  if (!($4 in seen)) { seen[$4] = 1; thr[++nt] = $4 } }
	END {
	  ok = 1; line = ""
	  for (i = 1; i <= nt; i++) { t = thr[i]
	    if (!(("fancy," t) in m) || !(("mimalloc," t) in m)) { ok = 0; line = line sprintf(" %s:n/a", t); continue }
	    r = m["fancy," t] / m["mimalloc," t]; if (r < 1) ok = 0
	    line = line sprintf(" %sthr %.2f", t, r) }
	  printf "ring Mops/s >= mimalloc at every thread count: fancy/mimalloc%s %s\n", line, ok ? "met" : "NOT MET"
	  worst = 0; line = ""
	  for (i = 1; i <= nt; i++) { t = thr[i]; v = rss["fancy," t] + 0; if (v > worst) worst = v }
	  line = sprintf("fancy worst %.3f; best peer", worst)
	  best = ""; bv = 1e9
	  split("glibc jemalloc tcmalloc mimalloc", peer, " ")
	  for (j = 1; j <= 4; j++) { w = 0; have = 0
	    for (i = 1; i <= nt; i++) { k = peer[j] "," thr[i]; if (k in rss) { have = 1; if (rss[k] + 0 > w) w = rss[k] + 0 } }
	    if (have && w < bv) { bv = w; best = peer[j] } }
	  if (best != "") line = line sprintf(" %s %.3f", best, bv); else line = line " none"
	  printf "ring peak RSS / live <= 1.05: %s %s\n", line, worst <= 1.05 ? "met" : "NOT MET"
	  w99 = 0; w999 = 0
	  for (i = 1; i <= nt; i++) { t = thr[i]
	    if (p99["fancy," t] + 0 > w99) w99 = p99["fancy," t] + 0
	    if (p999["fancy," t] + 0 > w999) w999 = p999["fancy," t] + 0 }
	  printf "ring malloc p99 <= 1 us, p99.9 <= 4 us, every thread count: fancy worst %d ns / %d ns %s\n",
	         w99, w999, (w99 <= 1000 && w999 <= 4000) ? "met" : "NOT MET"
	}' "$RING"
awk -F, '/^#/ || $1 == "allocator" || $3 != "larson" { next }
	{ m[$1 "," $4] = $8; if (!($4 in seen)) { seen[$4] = 1; thr[++nt] = $4 } }
	END { ok = 1; line = ""
	  split("glibc jemalloc tcmalloc mimalloc", peer, " ")
	  for (i = 1; i <= nt; i++) { t = thr[i]; best = 0; bn = ""
	    for (j = 1; j <= 4; j++) { k = peer[j] "," t; if ((k in m) && m[k] + 0 > best) { best = m[k] + 0; bn = peer[j] } }
	    if (!(("fancy," t) in m) || best == 0) { ok = 0; line = line sprintf(" %sthr n/a", t); continue }
	    r = m["fancy," t] / best; if (r < 1.1) ok = 0
	    line = line sprintf(" %sthr %.2f(%s)", t, r, bn) }
	  printf "larson Mops/s >= 1.1 x best peer, every thread count: fancy/best%s %s\n", line, ok ? "met" : "NOT MET" }' "$LARSON"
} | tee "$RESULTS_DIR/targets.txt"
