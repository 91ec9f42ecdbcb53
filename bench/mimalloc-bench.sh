#!/bin/sh
# mimalloc-bench.sh [-r REPS] [-t THREADS] [-T "TEST..."] [-a NAME=LIB.so]... PATH
#
# Runs the field's public allocator benchmarks, daanx/mimalloc-bench, against
# glibc, jemalloc, tcmalloc, mimalloc (Debian's) and libfancymalloc, plus any
# allocator given with -a NAME=/path/lib.so (mimalloc v3, snmalloc, ...: see
# bench/README.md, "The public suite", for how to build those).
#
# PATH is a checkout of mimalloc-bench that you downloaded yourself; this
# script neither fetches nor copies its code.  Its bench/ programs are built
# out of tree, with the suite's own CMakeLists.txt, in $MB_BUILD (default
# $RESULTS_DIR/build).  Targets whose sources are not in the checkout (the
# suite's build-bench-env.sh downloads some of them, e.g. shbench) are left
# out of the CMake file and named in the output; targets that fail to compile
# are named too.
#
# Every test runs REPS times (default 3); the repetitions are interleaved
# (rep 1 of every test and allocator, then rep 2, ...).  Time is the wall
# time, or for the rate tests the suite's own "relative time" derived from
# the rate they print, exactly as its bench.sh does (larson, rptest,
# xmalloc-test, glibc-thread); peak RSS is /usr/bin/time's maximum RSS.
#
# Writes to $RESULTS_DIR (default: bench/results/public in the build tree):
#   raw.csv        one row per run: test,allocator,rep,time_s,rss_kb
#   summary.csv    per test and allocator: median, min and max of time and
#                  RSS, and the ratio of the median to the best OTHER
#                  allocator's median (time and RSS; < 1 = better than all)
#   summary.md     the same as a Markdown table, plus each allocator's
#                  geometric mean of those ratios over the tests
#   ratios.png     a gnuplot chart of the time and RSS ratios per test
#
# Environment: BUILDDIR, FANCY_LIB, ALLOCATORS, RUN_TIMEOUT (see common.sh),
# REPS, THREADS, TESTS, MB_BUILD.
set -eu
PROG=mimalloc-bench.sh
BENCH_SRCDIR=$(cd "$(dirname "$0")" && pwd)
BENCH_BIN=${BENCH_BIN:-/nonexistent}   # common.sh's programs are not used here
. "$BENCH_SRCDIR/common.sh"
RESULTS_DIR=${RESULTS_DIR_PUBLIC:-$BUILDDIR/bench/results/public}

REPS=${REPS:-3}
THREADS=${THREADS:-$(nproc 2>/dev/null || echo 2)}
DEFAULT_TESTS="cfrac espresso barnes larsonN larsonN-sized mstressN rptestN alloc-test1 alloc-testN xmalloc-testN cache-scratch1 cache-scratchN cache-thrash1 cache-thrashN glibc-simple glibc-thread malloc-large mleak10 mleak100"
TESTS=${TESTS:-$DEFAULT_TESTS}
EXTRA=

usage() {
	sed -n '2,3p' "$0" | sed 's/^# //' >&2
	exit 2
}
while getopts r:t:T:a:h opt; do
	case $opt in
	r) REPS=$OPTARG ;;
	t) THREADS=$OPTARG ;;
	T) TESTS=$OPTARG ;;
	a) case $OPTARG in
	   *=*) EXTRA="$EXTRA $OPTARG" ;;
	   *) die "-a takes NAME=/path/to/lib.so, got '$OPTARG'" ;;
	   esac ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
MB=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
[ -f "$MB/bench/CMakeLists.txt" ] ||
	die "$MB is not a mimalloc-bench checkout (no bench/CMakeLists.txt)"
is_uint "$REPS" && [ "$REPS" -ge 1 ] || die "REPS must be >= 1"
is_uint "$THREADS" && [ "$THREADS" -ge 1 ] || die "THREADS must be >= 1"
command -v cmake >/dev/null 2>&1 || die "cmake is needed (apt-get install cmake)"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed (apt-get install time)"

MB_BUILD=${MB_BUILD:-$RESULTS_DIR/build}
mkdir -p "$RESULTS_DIR" "$MB_BUILD"
MB_BUILD=$(cd "$MB_BUILD" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fancymb.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

# ---------------------------------------------------------------- build
# A view of the suite's bench/ directory: its subdirectories linked, its
# CMakeLists.txt with the targets whose literal sources are missing taken
# out (every command naming the target), so that CMake can generate.
build_suite() {
	_v=$MB_BUILD/src
	rm -rf "$_v"
	mkdir -p "$_v"
	for _d in "$MB"/bench/*; do
		[ "$(basename "$_d")" = CMakeLists.txt ] || ln -s "$_d" "$_v/$(basename "$_d")"
	done
	# Targets of add_executable(NAME a/b.c ...) lines with a missing file.
	_drop=$(awk -v root="$MB/bench" '
		/^[ \t]*add_executable\(/ {
			line = $0; sub(/^[ \t]*add_executable\(/, "", line); sub(/\).*/, "", line)
			n = split(line, w, /[ \t]+/)
			for (i = 2; i <= n; i++)
				if (w[i] ~ /\// && w[i] !~ /\$/ && system("test -e \"" root "/" w[i] "\"") != 0) {
					print w[1]; break
				}
		}' "$MB/bench/CMakeLists.txt" | sort -u | tr '\n' ' ')
	awk -v drop="$_drop" '
		BEGIN { n = split(drop, d, " "); for (i = 1; i <= n; i++) gone[d[i]] = 1 }
		{
			line = $0
			if (match(line, /^[ \t]*(add_executable|target_[a-z_]+)\([ \t]*[A-Za-z0-9_.+-]+/)) {
				t = substr(line, RSTART, RLENGTH); sub(/^[^(]*\([ \t]*/, "", t)
				if (t in gone) { print "# left out by fancyalloc mimalloc-bench.sh: " line; next }
			}
			print
		}' "$MB/bench/CMakeLists.txt" >"$_v/CMakeLists.txt"
	LEFT_OUT=$_drop
	note "building the suite's bench/ programs in $MB_BUILD/out (log: $MB_BUILD/build.log)"
	(cmake -S "$_v" -B "$MB_BUILD/out" -DCMAKE_BUILD_TYPE=Release &&
		make -k -C "$MB_BUILD/out" -j"$(nproc 2>/dev/null || echo 2)") >"$MB_BUILD/build.log" 2>&1 ||
		note "some targets failed to build (see $MB_BUILD/build.log)"
	[ -z "$LEFT_OUT" ] || note "left out (sources not in the checkout): $LEFT_OUT"
}
build_suite
OUT=$MB_BUILD/out

# ---------------------------------------------------------------- tests
# test_cmd TEST : sets BIN, ARGS, STDIN, RATE (how time is derived).
test_cmd() {
	STDIN=/dev/null RATE=wall
	case $1 in
	cfrac) BIN=cfrac ARGS="17545186520507317056371138836327483792789528" ;;
	espresso) BIN=espresso ARGS="$MB/bench/espresso/largest.espresso" ;;
	barnes) BIN=barnes ARGS= STDIN=$MB/bench/barnes/input ;;
	larsonN) BIN=larson ARGS="5 8 1000 5000 100 4141 $THREADS" RATE=larson ;;
	larsonN-sized) BIN=larson-sized ARGS="5 8 1000 5000 100 4141 $THREADS" RATE=larson ;;
	mstressN) BIN=mstress ARGS="$THREADS 50 25" ;;
	rptestN) BIN=rptest ARGS="$THREADS 0 1 2 500 1000 100 8 16000" RATE=rptest ;;
	alloc-test1) BIN=alloc-test ARGS=1 ;;
	alloc-testN) BIN=alloc-test ARGS=$(( THREADS > 16 ? 16 : THREADS )) ;;
	xmalloc-testN) BIN=xmalloc-test ARGS="-w $THREADS -t 5 -s 64" RATE=xmalloc ;;
	cache-scratch1) BIN=cache-scratch ARGS="1 1000 1 2000000 $THREADS" ;;
	cache-scratchN) BIN=cache-scratch ARGS="$THREADS 1000 1 2000000 $THREADS" ;;
	cache-thrash1) BIN=cache-thrash ARGS="1 1000 1 2000000 $THREADS" ;;
	cache-thrashN) BIN=cache-thrash ARGS="$THREADS 1000 1 2000000 $THREADS" ;;
	glibc-simple) BIN=glibc-simple ARGS= ;;
	glibc-thread) BIN=glibc-thread ARGS=$THREADS RATE=glibc ;;
	malloc-large) BIN=malloc-large ARGS= ;;
	mleak10) BIN=mleak ARGS=5 ;;
	mleak100) BIN=mleak ARGS=50 ;;
	*) die "unknown test '$1' (known: $DEFAULT_TESTS)" ;;
	esac
}

# rate_time RATE OUTFILE WALL : the suite's relative time for rate tests.
rate_time() {
	case $1 in
	wall) echo "$3" ;;
	larson) sed -n 's/.*relative time: \([0-9.]*\).*/\1/p' "$2" | tail -n 1 ;;
	xmalloc) sed -n 's/^rtime: \([0-9.]*\).*/\1/p' "$2" | tail -n 1 ;;
	rptest) awk '/memory ops/ { s = $0; sub(/ memory ops.*/, "", s); sub(/.*[^0-9]/, "", s); if (s > 0) t = 2000000 / s }
	             END { if (t) printf "%.4f\n", t }' "$2" ;;
	glibc) awk 'NR == 1 && $1 + 0 > 0 { printf "%.4f\n", 1e9 / $1 }' "$2" ;;
	esac
}

# ---------------------------------------------------------------- allocators
# The libc the suite's programs are linked against (common.sh's version
# asks bench/ring).
glibc_path() { ldd "$OUT/cfrac" | awk '$1 == "libc.so.6" { print $3; exit }'; }
setup_allocators
ALL=$ALLOCS
for e in $EXTRA; do
	n=${e%%=*} l=${e#*=}
	[ -e "$l" ] || die "-a $e: no such file"
	l=$(readlink -f "$l")
	eval "lib_$(echo "$n" | tr -c 'A-Za-z0-9_\n' _)=\$l"
	ALL="$ALL $n"
done
libof() { alloc_lib "$(echo "$1" | tr -c 'A-Za-z0-9_\n' _)"; }

# A preload that ld.so cannot load is ignored with a message, and the run
# would silently measure glibc: refuse that.
for a in $ALL; do
	l=$(libof "$a")
	[ -n "$l" ] || continue
	if env LD_PRELOAD="$l" /bin/true 2>&1 | grep -q .; then
		die "$a: LD_PRELOAD=$l does not load cleanly: $(env LD_PRELOAD="$l" /bin/true 2>&1 | head -n 1)"
	fi
done

RUN_TESTS=
for t in $TESTS; do
	test_cmd "$t"
	if [ -x "$OUT/$BIN" ]; then RUN_TESTS="$RUN_TESTS $t"; else note "skipping $t: $BIN did not build"; fi
done
[ -n "$RUN_TESTS" ] || die "no test to run"

# ---------------------------------------------------------------- run
RAW=$RESULTS_DIR/raw.csv
{
	echo "# mimalloc-bench $(git -C "$MB" describe --always --dirty 2>/dev/null || echo '?') - $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# cpu: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null); $(nproc) online CPUs; kernel $(uname -r); threads N=$THREADS; reps $REPS"
	[ -z "${LEFT_OUT:-}" ] || echo "# left out (sources not in the checkout): $LEFT_OUT"
	for a in $ALL; do echo "# allocator $a: $(libof "$a" | sed 's/^$/(no LD_PRELOAD)/')"; done
	echo "test,allocator,rep,time_s,rss_kb"
} >"$RAW"

cd "$OUT"
for rep in $(seq 1 "$REPS"); do
	for t in $RUN_TESTS; do
		test_cmd "$t"
		for a in $ALL; do
			l=$(libof "$a")
			rc=0
			if [ -n "$l" ]; then
				env LD_PRELOAD="$l" /usr/bin/time -o "$TMP/time" -f '%e %M' \
					timeout "$RUN_TIMEOUT" "./$BIN" $ARGS <"$STDIN" >"$TMP/out" 2>"$TMP/err" || rc=$?
			else
				env -u LD_PRELOAD /usr/bin/time -o "$TMP/time" -f '%e %M' \
					timeout "$RUN_TIMEOUT" "./$BIN" $ARGS <"$STDIN" >"$TMP/out" 2>"$TMP/err" || rc=$?
			fi
			if [ "$rc" -ne 0 ]; then
				note "FAILED (exit $rc): $t under $a"
				tail -n 3 "$TMP/err" | sed 's/^/    /' >&2
				continue
			fi
			wall=$(awk 'END { print $1 }' "$TMP/time")
			rss=$(awk 'END { print $2 }' "$TMP/time")
			tm=$(rate_time "$RATE" "$TMP/out" "$wall")
			[ -n "$tm" ] || { note "$t under $a: no rate in its output"; continue; }
			echo "$t,$a,$rep,$tm,$rss" >>"$RAW"
			printf '%s: rep %s %-15s %-10s %8ss %8s KiB\n' "$PROG" "$rep" "$t" "$a" "$tm" "$rss" >&2
		done
	done
done

# ---------------------------------------------------------------- summary
# Medians, spreads, and each allocator's ratio to the best of the others.
SUM=$RESULTS_DIR/summary.csv
awk -F, -v order="$ALL" '
	/^#/ || $1 == "test" { next }
	{ k = $1 SUBSEP $2; n = ++cnt[k]; T[k, n] = $4 + 0; R[k, n] = $5 + 0
	  if (!($1 in seen)) { seen[$1] = 1; tests[++nt] = $1 } }
	function med(A, k, n,    i, j, t, a) {
		for (i = 1; i <= n; i++) a[i] = A[k, i]
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		lo = a[1]; hi = a[n]
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		na = split(order, al, " ")
		print "test,allocator,reps,time_med,time_min,time_max,rss_med_kb,rss_min_kb,rss_max_kb,time_vs_best_other,rss_vs_best_other"
		for (i = 1; i <= nt; i++) {
			t = tests[i]
			for (j = 1; j <= na; j++) {
				k = t SUBSEP al[j]; if (!(k in cnt)) continue
				tm[j] = med(T, k, cnt[k]); tl[j] = lo; th[j] = hi
				rm[j] = med(R, k, cnt[k]); rl[j] = lo; rh[j] = hi
			}
			for (j = 1; j <= na; j++) {
				k = t SUBSEP al[j]; if (!(k in cnt)) continue
				bt = br = 0
				for (m = 1; m <= na; m++) {
					if (m == j || !((t SUBSEP al[m]) in cnt)) continue
					if (!bt || tm[m] < bt) bt = tm[m]
					if (!br || rm[m] < br) br = rm[m]
				}
				printf "%s,%s,%d,%.4f,%.4f,%.4f,%d,%d,%d,%s,%s\n", t, al[j], cnt[k], tm[j], tl[j], th[j], rm[j], rl[j], rh[j],
					(bt > 0 ? sprintf("%.3f", tm[j] / bt) : ""), (br > 0 ? sprintf("%.3f", rm[j] / br) : "")
			}
		}
	}' "$RAW" >"$SUM"

MD=$RESULTS_DIR/summary.md
awk -F, -v order="$ALL" -v n="$THREADS" -v reps="$REPS" '
	NR == 1 { next }
	{ t = $1; a = $2; if (!(t in seen)) { seen[t] = 1; tests[++nt] = t }
	  tm[t, a] = $4; tl[t, a] = $5; th[t, a] = $6; rs[t, a] = $7; rt[t, a] = $10; rr[t, a] = $11
	  if ($10 != "") { lt[a] += log($10); ct[a]++ } if ($11 != "") { lr[a] += log($11); cr[a]++ } }
	END {
		na = split(order, al, " ")
		printf "Time in seconds (median of %d, [min-max]) and, below it, the ratio to the best of the\n", reps
		printf "other allocators (< 1: faster than all of them). N = %d threads.\n\n", n
		printf "| test |"; for (j = 1; j <= na; j++) printf " %s |", al[j]; printf "\n|---|"
		for (j = 1; j <= na; j++) printf "---|"; printf "\n"
		for (i = 1; i <= nt; i++) {
			t = tests[i]; printf "| %s |", t
			for (j = 1; j <= na; j++) { a = al[j]
				if ((t, a) in tm) printf " %.3g [%.3g-%.3g] **%s** |", tm[t, a], tl[t, a], th[t, a], rt[t, a]; else printf " - |" }
			printf "\n"
		}
		printf "\nPeak RSS in MiB (median) and its ratio to the lowest of the other allocators.\n\n"
		printf "| test |"; for (j = 1; j <= na; j++) printf " %s |", al[j]; printf "\n|---|"
		for (j = 1; j <= na; j++) printf "---|"; printf "\n"
		for (i = 1; i <= nt; i++) {
			t = tests[i]; printf "| %s |", t
			for (j = 1; j <= na; j++) { a = al[j]
				if ((t, a) in rs) printf " %.1f **%s** |", rs[t, a] / 1024, rr[t, a]; else printf " - |" }
			printf "\n"
		}
		printf "\nGeometric mean over the tests of each allocator'"'"'s ratio to the best of the others:\n\n"
		printf "| allocator | time | peak RSS |\n|---|---|---|\n"
		for (j = 1; j <= na; j++) { a = al[j]
			printf "| %s | %s | %s |\n", a, (ct[a] ? sprintf("%.3f", exp(lt[a] / ct[a])) : "-"), (cr[a] ? sprintf("%.3f", exp(lr[a] / cr[a])) : "-") }
	}' "$SUM" >"$MD"

# One chart: the time and RSS ratio of every allocator, test by test.
if command -v gnuplot >/dev/null 2>&1; then
	awk -F, -v order="$ALL" 'NR == 1 { next }
		{ if (!($1 in s)) { s[$1] = 1; t[++nt] = $1 } rt[$1, $2] = $10; rr[$1, $2] = $11 }
		END { na = split(order, al, " ")
		      printf "test"; for (j = 1; j <= na; j++) printf " %s", al[j]; printf "\n"
		      for (i = 1; i <= nt; i++) { printf "%s", t[i]; for (j = 1; j <= na; j++) printf " %s", (rt[t[i], al[j]] == "" ? "NaN" : rt[t[i], al[j]]); printf "\n" }
		      printf "\n\n"
		      printf "test"; for (j = 1; j <= na; j++) printf " %s", al[j]; printf "\n"
		      for (i = 1; i <= nt; i++) { printf "%s", t[i]; for (j = 1; j <= na; j++) printf " %s", (rr[t[i], al[j]] == "" ? "NaN" : rr[t[i], al[j]]); printf "\n" } }' \
		"$SUM" >"$RESULTS_DIR/ratios.dat"
	NA=$(echo $ALL | wc -w)
	gnuplot <<EOF || note "gnuplot failed; the CSV and Markdown tables are written"
set terminal pngcairo size 1400,900 font ",9" noenhanced
set output "$RESULTS_DIR/ratios.png"
set multiplot layout 2,1 title "mimalloc-bench, N=$THREADS: ratio to the best of the other allocators (1 = level, < 1 = best)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 2
set yrange [0.25:16]
set grid ytics
set key outside right
set xtics rotate by -35
set ylabel "time ratio"
plot for [c=2:$((NA + 1))] "$RESULTS_DIR/ratios.dat" index 0 using c:xtic(1) title columnheader
set ylabel "peak RSS ratio"
plot for [c=2:$((NA + 1))] "$RESULTS_DIR/ratios.dat" index 1 using c:xtic(1) title columnheader
unset multiplot
EOF
fi
cat "$MD"
note "results: $RAW, $SUM, $MD${LEFT_OUT:+ (left out: $LEFT_OUT)}"
