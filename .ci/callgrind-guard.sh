#!/bin/sh
# callgrind-guard.sh - fail when libfancymalloc's instructions per
# malloc+free (bench/callgrind.sh, exact and repeatable) rise more than
# 5% above .ci/callgrind-baseline.  Run from the top of a built tree.
set -eu
cd "$(dirname "$0")/.."
lib=$PWD/lib/.libs/libfancymalloc.so.1
[ -f "$lib" ] || { echo "callgrind-guard: $lib not built" >&2; exit 1; }
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
ALLOCATORS=fancy FANCY_LIB=$lib RESULTS_DIR=$results sh bench/callgrind.sh
awk -F, '
  FNR == NR { if ($0 !~ /^#/ && NF == 0) next
              if ($0 !~ /^#/) { split($0, f, " "); base[f[1]] = f[2] } next }
  /^#/ || $1 != "fancy" { next }
  { seen[$3] = 1
    limit = base[$3] * 1.05
    status = ($6 + 0 > limit) ? "FAIL" : "ok"
    printf "callgrind-guard: %-10s %6.1f Ir/pair (baseline %s, limit %.1f) %s\n", $3, $6, base[$3], limit, status
    if (status == "FAIL") bad = 1 }
  END { for (w in base) if (!(w in seen)) { print "callgrind-guard: no figure for " w; bad = 1 }
        exit bad }
' .ci/callgrind-baseline "$results/callgrind.csv"
