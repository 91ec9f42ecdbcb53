#!/bin/sh
# peak_rss.sh - peak RSS (/usr/bin/time's %M, KiB) and wall time of some of
# the public suite's programs, repetitions interleaved, as CSV on stdout.
#
#   bench/peak_rss.sh [-r REPS] [-o OUTDIR] [-e NAME=VAR=V,VAR=V]... \
#       [-a NAME=/path/lib.so]... TEST...
#
# OUTDIR is the suite's build directory (bench/mimalloc-bench.sh's
# bench/results/public/build/out, or MIMALLOC_BENCH_OUT); TEST is one of
# mstressN glibc-thread mleak10 espresso larsonN alloc-test1 alloc-testN with
# mimalloc-bench.sh's arguments at N=2 (espresso needs MIMALLOC_BENCH, the
# suite's checkout, for its input).  -a adds an allocator (LD_PRELOAD; an
# empty path is the C library's); -e adds a run of libfancymalloc with
# environment settings (e.g. -e pd0=FANCY_PURGE_DELAY=0).  Used for
# bench/README.md, "Where fancy loses on the public suite, and why".
set -eu
REPS=3
OUT=${MIMALLOC_BENCH_OUT:-bench/results/public/build/out}
MB=${MIMALLOC_BENCH:-}
FANCY=${FANCY_LIB:-lib/.libs/libfancymalloc.so}
RUNS=""
while getopts r:o:e:a: opt; do
  case $opt in
    r) REPS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    a) RUNS="$RUNS ${OPTARG%%=*}:=${OPTARG#*=}" ;;          # name:=lib
    e) RUNS="$RUNS ${OPTARG%%=*}:${OPTARG#*=}=$FANCY" ;;    # name:env=lib
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ -n "$RUNS" ] || RUNS="fancy:=$FANCY"
TMP=$(mktemp); trap 'rm -f "$TMP"' EXIT
echo "rep,test,run,wall_s,maxrss_kb"
r=1
while [ "$r" -le "$REPS" ]; do
  for t in "$@"; do
    case $t in
      mstressN) BIN=mstress ARGS="2 50 25" ;;
      glibc-thread) BIN=glibc-thread ARGS=2 ;;
      mleak10) BIN=mleak ARGS=5 ;;
      espresso) BIN=espresso ARGS="$MB/bench/espresso/largest.espresso" ;;
      larsonN) BIN=larson ARGS="5 8 1000 5000 100 4141 2" ;;
      alloc-test1) BIN=alloc-test ARGS=1 ;;
      alloc-testN) BIN=alloc-test ARGS=2 ;;
      *) echo "peak_rss.sh: unknown test $t" >&2; exit 2 ;;
    esac
    for run in $RUNS; do
      name=${run%%:*}; rest=${run#*:}
      lib=${rest##*=}; envs=${rest%=*}; envs=${envs%=}
      # shellcheck disable=SC2086
      env ${lib:+LD_PRELOAD=$lib} $(echo "$envs" | tr , ' ') \
        /usr/bin/time -f "%e %M" -o "$TMP" "$OUT/$BIN" $ARGS >/dev/null 2>&1 || true
      l=$(tail -n 1 "$TMP")
      echo "$r,$t,$name,${l% *},${l#* }"
    done
  done
  r=$((r + 1))
done
