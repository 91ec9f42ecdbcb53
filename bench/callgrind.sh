#!/bin/sh
# callgrind.sh - exact user-space instruction counts per malloc+free pair.
#
# Runs bench/ring with 1 thread under valgrind --tool=callgrind, collecting
# only inside ring's timed_loop() and ring_cleanup() functions
# (--toggle-collect), so the totals hold exactly CG_OPS mallocs and CG_OPS
# frees plus the loop and memset.  The same run with --floor=warm (same
# loop, same sizes, same memset, no allocator) is subtracted:
#     Ir per pair = (Ir(allocator) - Ir(floor)) / CG_OPS
# for the 60/30/10 size mix and for --small-only (16-256 B).  Kernel work
# (page faults) is not user-space and is not counted.  Latency sampling is
# off (--sample 0).
#
# Environment: CG_OPS (default 100000), CG_SLOTS (default 25000), plus
# those of common.sh (BUILDDIR, BENCH_BIN, RESULTS_DIR, FANCY_LIB,
# ALLOCATORS).  Writes $RESULTS_DIR/callgrind.csv.
set -eu
PROG=callgrind.sh
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_SRCDIR/common.sh"

CG_OPS=${CG_OPS:-100000}
CG_SLOTS=${CG_SLOTS:-25000}
is_uint "$CG_OPS" && is_uint "$CG_SLOTS" || die "CG_OPS and CG_SLOTS must be integers"
command -v valgrind >/dev/null 2>&1 || die "valgrind is not installed (apt-get install valgrind)"
check_programs ring
mkdir -p "$RESULTS_DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fancybench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
setup_allocators
probe "$TMP/probe"

# cg ALLOC OUT ARGS... : Ir collected in timed_loop + ring_cleanup.
cg() {
	_ca=$1 _co=$2
	shift 2
	# run_bench preloads the allocator into valgrind and so into the
	# client; callgrind does not replace malloc, so the preloaded one runs.
	BENCH_WRAP="valgrind --tool=callgrind --callgrind-out-file=$_co.cg --toggle-collect=timed_loop --toggle-collect=ring_cleanup"
	run_bench "$_ca" "$_co" ring --threads 1 --ops "$CG_OPS" --slots "$CG_SLOTS" --sample 0 "$@" ||
		die "callgrind run failed: $_ca $*"
	BENCH_WRAP=
	_ir=$(awk '/^totals:/ { print $2; exit }' "$_co.cg")
	[ -n "$_ir" ] || die "no totals in $_co.cg"
	echo "$_ir"
}

echo "== callgrind: ring, 1 thread, $CG_OPS ops, $CG_SLOTS slots; Ir of timed_loop + ring_cleanup"
printf '   floor (mix) ... '
F_MIX=$(cg floor "$TMP/fm" --floor=warm)
echo "$F_MIX Ir"
printf '   floor (small-only) ... '
F_SMALL=$(cg floor "$TMP/fs" --floor=warm --small-only)
echo "$F_SMALL Ir"

ROWS=$TMP/rows
: >"$ROWS"
for a in $ALLOCS; do
	printf '   %s (mix) ... ' "$a"
	ir1=$(cg "$a" "$TMP/a1")
	echo "$ir1 Ir"
	printf '   %s (small-only) ... ' "$a"
	ir2=$(cg "$a" "$TMP/a2" --small-only)
	echo "$ir2 Ir"
	echo "$a,$(kv "$TMP/a1" alloc_version),$ir1,$F_MIX,$ir2,$F_SMALL" >>"$ROWS"
done

OUT=$RESULTS_DIR/callgrind.csv
machine_header "$OUT"
echo "# callgrind: ring --threads 1 --ops $CG_OPS --slots $CG_SLOTS --sample 0; Ir in timed_loop+ring_cleanup; per pair = (Ir - floor Ir) / $CG_OPS" >>"$OUT"
echo "allocator,alloc_version,workload,ir_total,ir_floor,ir_per_pair" >>"$OUT"
awk -F, -v ops="$CG_OPS" '{ printf "%s,%s,ring,%s,%s,%.1f\n%s,%s,ring_small,%s,%s,%.1f\n",
	$1, $2, $3, $4, ($3 - $4) / ops, $1, $2, $5, $6, ($5 - $6) / ops }' "$ROWS" >>"$OUT"
echo
echo "Instructions (Ir) per malloc+free pair above the floor, 1 thread ($OUT):"
printf '%-9s %14s %14s %12s   %14s %14s %12s\n' allocator "ring Ir" "floor Ir" "Ir/pair" "small Ir" "floor Ir" "Ir/pair"
awk -F, -v ops="$CG_OPS" '{ printf "%-9s %14s %14s %12.1f   %14s %14s %12.1f\n", $1, $3, $4, ($3 - $4) / ops, $5, $6, ($5 - $6) / ops }' "$ROWS"
