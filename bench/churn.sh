#!/bin/sh
# churn.sh [THREADS...] - issue 14's thread-generation stress: bench/churn
# (50 generations of T threads created and joined, each handing 1000
# blocks to the next generation, half of which survive each round) for
# each T in THREADS (default "8 32") under every allocator found, REPS
# times (default 3), interleaved: rep 1 of every allocator and T, then
# rep 2, ... so that a slow minute on a shared machine hits all of them.
# Prints and writes, in $RESULTS_DIR:
#   churn_raw.csv      every run
#   churn_summary.csv  medians, min and max of time and peak RSS (VmHWM),
#                      and the medians' ratios to glibc's
#   churn.md           the same as a Markdown table
#   churn_failures.txt runs that failed (churn exits 3 when a block's
#                      contents changed while it was live), with the reason
# Environment: see common.sh (BUILDDIR, BENCH_BIN, RESULTS_DIR, FANCY_LIB,
# ALLOCATORS, RUN_TIMEOUT), REPS, CHURN_ARGS (more bench/churn options).
set -eu
PROG=churn.sh
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_SRCDIR/common.sh"

THREADS=${*:-8 32}
REPS=${REPS:-3}
CHURN_ARGS=${CHURN_ARGS:-}
for t in $THREADS; do is_uint "$t" && [ "$t" -ge 1 ] || die "usage: $PROG [THREADS...] (got '$t')"; done
is_uint "$REPS" && [ "$REPS" -ge 1 ] || die "REPS must be >= 1"
check_programs ring churn
mkdir -p "$RESULTS_DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fancychurn.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
setup_allocators
probe "$TMP/probe"

# mops = (mallocs + frees) / elapsed, in millions: summarize's spread column.
KEYS="mops elapsed_s vmhwm_kb maxrss_kb base_rss_kb end_rss_kb handoff_kb_max allocs_frees minflt"
RAW=$RESULTS_DIR/churn_raw.csv
FAILS=$RESULTS_DIR/churn_failures.txt
csv_header "$KEYS" >"$RAW"
: >"$FAILS"
: >"$TMP/failed"
echo "== churn: 50 generations of T threads, 1000 blocks handed on per thread, REPS=$REPS"
echo "   allocators: $ALLOCS; T: $THREADS ${CHURN_ARGS:+; extra: $CHURN_ARGS}"
total=$(( $(echo $ALLOCS | wc -w) * $(echo $THREADS | wc -w) * REPS ))
i=0
r=1
while [ "$r" -le "$REPS" ]; do
	for t in $THREADS; do
		for a in $ALLOCS; do
			i=$((i + 1))
			printf '[%d/%d] %-9s T=%-3s rep %d ... ' "$i" "$total" "$a" "$t" "$r"
			# shellcheck disable=SC2086
			if ! run_bench "$a" "$TMP/out" churn --threads "$t" $CHURN_ARGS; then
				# A failed run (churn exits 3 on a damaged block) is
				# counted and reported, not averaged over.
				echo "$a,$t" >>"$TMP/failed"
				echo "$a T=$t rep $r: $(tail -n 1 "$TMP/out.err")" >>"$FAILS"
				continue
			fi
			# The result line is "churn key=value ...": one pair a line for kv.
			grep '^churn ' "$TMP/out" | tr ' ' '\n' >>"$TMP/out"
			awk -v e="$(kv "$TMP/out" elapsed_s)" -v n="$(kv "$TMP/out" allocs_frees)" \
				'BEGIN { printf "%.4f\n", n / e / 1e6 }' | sed 's/^/mops=/' >>"$TMP/out"
			echo "$(kv "$TMP/out" elapsed_s) s, VmHWM $(kv "$TMP/out" vmhwm_kb) kB"
			echo "$a,$(kv "$TMP/out" alloc_version),churn,$t,$r,$(csv_values "$TMP/out" $KEYS)" >>"$RAW"
		done
	done
	r=$((r + 1))
done

# Medians and spreads, then each median against glibc's at the same T.
summarize "$RAW" "elapsed_s vmhwm_kb" >"$TMP/sum.csv"
OUT=$RESULTS_DIR/churn_summary.csv
machine_header "$OUT"
awk -F, '
	FILENAME ~ /failed$/ { failed[$1 "," $2]++; next }
	NR == FNR + nf0 { if (!h1) { for (i = 1; i <= NF; i++) c[$i] = i; h1 = 1; next }
		if ($c["allocator"] == "glibc") { gt[$c["threads"]] = $c["elapsed_s"]; gr[$c["threads"]] = $c["vmhwm_kb"] }
		next }
	!h2 { print $0 ",time_vs_glibc,rss_vs_glibc,failed_runs"; h2 = 1; next }
	{ t = $c["threads"]
	  printf "%s,%s,%s,%d\n", $0, (gt[t] > 0 ? sprintf("%.3f", $c["elapsed_s"] / gt[t]) : ""),
		(gr[t] > 0 ? sprintf("%.3f", $c["vmhwm_kb"] / gr[t]) : ""), failed[$c["allocator"] "," t] }
	' "$TMP/failed" nf0="$(wc -l <"$TMP/failed")" "$TMP/sum.csv" "$TMP/sum.csv" >>"$OUT"

MD=$RESULTS_DIR/churn.md
awk -F, -v reps="$REPS" '
	/^#/ { next }
	!h { for (i = 1; i <= NF; i++) c[$i] = i; h = 1
		printf "Medians of %s runs [min-max]; peak RSS is VmHWM.\n\n", reps
		print "| T | allocator | time s | time vs glibc | peak RSS MiB | peak RSS vs glibc | handed on MiB | failed runs |"
		print "|---:|---|---:|---:|---:|---:|---:|---:|"; next }
	{ printf "| %s | %s | %.2f [%.2f-%.2f] | %.2fx | %.1f [%.1f-%.1f] | %.2fx | %.1f | %d |\n",
		$c["threads"], $c["allocator"], $c["elapsed_s"], $c["elapsed_s_min"], $c["elapsed_s_max"],
		$c["time_vs_glibc"], $c["vmhwm_kb"] / 1024, $c["vmhwm_kb_min"] / 1024, $c["vmhwm_kb_max"] / 1024,
		$c["rss_vs_glibc"], $c["handoff_kb_max"] / 1024, $c["failed_runs"] }' "$OUT" >"$MD"
echo
cat "$MD"
echo
[ -s "$FAILS" ] && { echo "failed runs (not in the medians):"; cat "$FAILS"; echo; }
echo "wrote $RAW, $OUT, $MD, $FAILS"
