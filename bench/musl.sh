#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/musl.sh - musl programs: musl's own malloc against libfancymalloc
# preloaded by musl's loader (issue 18), ring and larson at 1-8 threads.
#
# Usage, from a build configured with CC=musl-gcc (see README, Platforms):
#     BUILDDIR=_build-musl sh bench/musl.sh [THREADS...]     (default 1 2 4 8)
# Environment: REPS (3; the median is kept), RING_OPS (20000 per thread),
# RING_SLOTS (10000), LARSON_SECONDS (1).  The ring sizes are a fifth of
# the default run's: musl's malloc takes some 50 us per operation of the
# ring mix (its blocks above 128 KiB are mmap'ed and munmap'ed each time).
#
# Prints one line per workload and thread count: the throughput (Mops/s)
# under each allocator and fancy/musl.  Each run must report the allocator
# it was meant to measure (malloc_lib=, bench_common.h), else the script
# stops: a preload that does not load would measure musl twice.
set -eu
BUILDDIR=${BUILDDIR:-.}
bin=$BUILDDIR/bench
lib=${FANCY_LIB:-$BUILDDIR/lib/.libs/libfancymalloc.so.1}
REPS=${REPS:-3}
RING_OPS=${RING_OPS:-20000}
RING_SLOTS=${RING_SLOTS:-10000}
LARSON_SECONDS=${LARSON_SECONDS:-1}
[ $# -gt 0 ] || set -- 1 2 4 8

die() { echo "bench/musl.sh: $*" >&2; exit 1; }
[ -x "$bin/ring" ] && [ -x "$bin/larson" ] || die "no $bin/ring or $bin/larson (set BUILDDIR)"
[ -f "$lib" ] || die "no $lib"
readelf -l "$bin/ring" | grep -q 'ld-musl' || die "$bin/ring is not a musl program"

# run ALLOC PROGRAM ARGS...: mops= of one run (ALLOC musl or fancy).
run() {
  a=$1
  shift
  if [ "$a" = fancy ]; then out=$(LD_PRELOAD=$lib "$@" --sample 0); else out=$("$@" --sample 0); fi
  got=$(printf '%s\n' "$out" | sed -n 's/^malloc_lib=//p')
  case "$a:$got" in
    fancy:*libfancymalloc*|musl:*ld-musl*) ;;
    *) die "$a run of $1 was served by '$got'" ;;
  esac
  printf '%s\n' "$out" | sed -n 's/^mops=//p'
}

# median ALLOC PROGRAM ARGS...
median() {
  i=0
  while [ $i -lt "$REPS" ]; do run "$@"; i=$((i + 1)); done | sort -g |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "# $(uname -m), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); REPS=$REPS RING_OPS=$RING_OPS RING_SLOTS=$RING_SLOTS LARSON_SECONDS=$LARSON_SECONDS"
echo "workload threads musl_mops fancy_mops fancy/musl"
for t in "$@"; do
  set -- "$bin/ring" -t "$t" -n "$RING_OPS" -s "$RING_SLOTS"
  m=$(median musl "$@")
  f=$(median fancy "$@")
  echo "ring $t $m $f $(awk -v m="$m" -v f="$f" 'BEGIN { printf "%.1f", f / m }')"
  set -- "$bin/larson" -t "$t" -d "$LARSON_SECONDS"
  m=$(median musl "$@")
  f=$(median fancy "$@")
  echo "larson $t $m $f $(awk -v m="$m" -v f="$f" 'BEGIN { printf "%.1f", f / m }')"
done
