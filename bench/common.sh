# bench/common.sh - shared by run_unified.sh, run_full_benchmark.sh and
# callgrind.sh.  Sourced, not run; the caller sets PROG and BENCH_SRCDIR
# and has already done `set -eu`.
#
# Environment (all optional):
#   BUILDDIR     build tree (default: the source tree, i.e. bench/..)
#   BENCH_BIN    where the bench programs are (default: $BUILDDIR/bench)
#   RESULTS_DIR  output directory (default: $BENCH_BIN/results)
#   FANCY_LIB    libfancymalloc to preload
#                (default: $BUILDDIR/lib/.libs/libfancymalloc.so)
#   ALLOCATORS   subset/order, default "glibc jemalloc tcmalloc mimalloc fancy"
#   RUN_TIMEOUT  seconds before one run is killed (default 300)

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }

BUILDDIR=${BUILDDIR:-$(cd "$BENCH_SRCDIR/.." && pwd)}
BENCH_BIN=${BENCH_BIN:-$BUILDDIR/bench}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_BIN/results}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
ALLOCATORS=${ALLOCATORS:-glibc jemalloc tcmalloc mimalloc fancy}
FANCY_LIB_DEFAULT=$BUILDDIR/lib/.libs/libfancymalloc.so

# check_programs NAME... : the bench programs must have been built.
check_programs() {
	for _p in "$@"; do
		[ -x "$BENCH_BIN/$_p" ] || die "bench program $BENCH_BIN/$_p is missing.
  Build it first: 'make bench-programs' in the build tree (after ./configure),
  or point BUILDDIR=/path/to/build (or BENCH_BIN=dir) at a tree where it is built."
	done
}

# find_so NAME... : path of the first shared object found, by soname.
find_so() {
	for _n in "$@"; do
		_p=$(/sbin/ldconfig -p 2>/dev/null | awk -v n="$_n" '$1 == n { print $NF; exit }') || _p=
		if [ -n "$_p" ] && [ -e "$_p" ]; then echo "$_p"; return 0; fi
		for _d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 \
		          /usr/lib /usr/local/lib /usr/local/lib64; do
			if [ -e "$_d/$_n" ]; then echo "$_d/$_n"; return 0; fi
		done
	done
	return 1
}

# The libc the bench programs are linked against.
glibc_path() {
	ldd "$BENCH_BIN/ring" | awk '$1 == "libc.so.6" { print $3; exit }'
}

# dpkg_version FILE : "package version" of the Debian package owning FILE.
dpkg_version() {
	command -v dpkg >/dev/null 2>&1 || { echo "unknown (no dpkg)"; return 0; }
	_f=$(readlink -f "$1")
	_pkg=
	for _c in "$_f" "$1" "/usr${_f#/usr}" "${_f#/usr}"; do
		_pkg=$(dpkg -S "$_c" 2>/dev/null | head -n1 | cut -d: -f1) || _pkg=
		[ -n "$_pkg" ] && break
	done
	if [ -z "$_pkg" ]; then echo "not from a package"; return 0; fi
	dpkg-query -W -f='${Package} ${Version}' "$_pkg" 2>/dev/null || echo "$_pkg ?"
}

# setup_allocators: sets ALLOCS (names to run) and lib_<name>, expect_<name>,
# pkgver_<name>.  Missing optional allocators are skipped with a note.
setup_allocators() {
	ALLOCS=
	for _a in $ALLOCATORS; do
		_lib=
		case $_a in
		glibc) _lib= ;;
		jemalloc) _lib=$(find_so libjemalloc.so.2 libjemalloc.so) || _lib=MISSING ;;
		tcmalloc) _lib=$(find_so libtcmalloc_minimal.so.4 libtcmalloc.so.4 libtcmalloc_minimal.so libtcmalloc.so) || _lib=MISSING ;;
		mimalloc) _lib=$(find_so libmimalloc.so.2 libmimalloc.so) || _lib=MISSING ;;
		fancy)
			_lib=${FANCY_LIB:-$FANCY_LIB_DEFAULT}
			if [ ! -e "$_lib" ]; then
				if [ -n "${FANCY_LIB:-}" ]; then
					die "FANCY_LIB=$FANCY_LIB does not exist"
				fi
				note "skipping fancy: $_lib not built (build the library or set FANCY_LIB)"
				continue
			fi
			_lib=$(readlink -f "$_lib") ;;
		*) die "unknown allocator '$_a' in ALLOCATORS (glibc jemalloc tcmalloc mimalloc fancy)" ;;
		esac
		if [ "$_lib" = MISSING ]; then
			note "skipping $_a: not installed (apt-get install lib${_a%malloc}malloc-dev or similar)"
			continue
		fi
		if [ "$_a" = glibc ]; then
			_exp=$(glibc_path)
			[ -n "$_exp" ] || die "cannot find the libc of $BENCH_BIN/ring with ldd"
			_ver=$(dpkg_version "$_exp")
		else
			_exp=$_lib
			if [ "$_a" = fancy ]; then
				_ver="libfancyalloc $(fancy_build_version)"
			else
				_ver=$(dpkg_version "$_lib")
			fi
		fi
		eval "lib_$_a=\$_lib; expect_$_a=\$_exp; pkgver_$_a=\$_ver"
		ALLOCS="$ALLOCS $_a"
	done
	ALLOCS=${ALLOCS# }
	[ -n "$ALLOCS" ] || die "no allocator to run"
}

# The fancy version from its build tree: config.h's PACKAGE_VERSION and the
# git commit of the source (the run output adds fancy_version()).
fancy_build_version() {
	_v=
	if [ -f "$BUILDDIR/config.h" ]; then
		_v=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$BUILDDIR/config.h")
	fi
	_g=$(git -C "$BENCH_SRCDIR" describe --always --dirty 2>/dev/null) || _g=
	echo "${_v:-?}${_g:+ (git $_g)}"
}

alloc_lib() { eval "echo \"\${lib_$1}\""; }
alloc_expect() { eval "echo \"\${expect_$1}\""; }
alloc_pkgver() { eval "echo \"\${pkgver_$1}\""; }

# kv FILE KEY : the value of KEY=... in a bench program's output.
kv() { awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1"; }

# run_bench ALLOC OUT PROG ARGS... : run one bench program (prefixed by
# $BENCH_WRAP, e.g. valgrind, when set) with ALLOC
# preloaded (ALLOC "floor" = no preload, used for --floor runs), write its
# key=value output to OUT, and verify which library really served malloc.
# Returns 1 (after a message) when the program failed or timed out;
# exits when malloc came from the wrong library.
run_bench() {
	_a=$1 _out=$2 _prog=$3
	shift 3
	_rc=0
	if [ "$_a" = glibc ] || [ "$_a" = floor ]; then
		env -u LD_PRELOAD timeout "$RUN_TIMEOUT" ${BENCH_WRAP:-} "$BENCH_BIN/$_prog" "$@" >"$_out" 2>"$_out.err" || _rc=$?
		_exp=$(glibc_path)
	else
		_lib=$(alloc_lib "$_a")
		env LD_PRELOAD="$_lib" timeout "$RUN_TIMEOUT" ${BENCH_WRAP:-} "$BENCH_BIN/$_prog" "$@" >"$_out" 2>"$_out.err" || _rc=$?
		_exp=$(alloc_expect "$_a")
	fi
	if [ "$_rc" -ne 0 ]; then
		[ "$_rc" -eq 124 ] && note "$_prog under $_a timed out after ${RUN_TIMEOUT}s"
		note "FAILED (exit $_rc): $_a: $_prog $*"
		sed 's/^/    /' "$_out.err" | tail -n 5 >&2
		return 1
	fi
	_got=$(kv "$_out" malloc_lib)
	if [ -z "$_got" ] || [ "$(readlink -f "$_got")" != "$(readlink -f "$_exp")" ]; then
		sed 's/^/    /' "$_out.err" | tail -n 5 >&2
		die "$_a: malloc was served by '${_got:-?}', expected '$_exp'
  (a preload that fails to load silently falls back to glibc; refusing to report it)"
	fi
	rm -f "$_out.err"
	return 0
}

# csv_values FILE KEY... : the values of KEYs, comma-separated.
csv_values() {
	_f=$1
	shift
	awk -v keys="$*" 'BEGIN { n = split(keys, k, " ") }
		{ p = index($0, "="); if (p) v[substr($0, 1, p - 1)] = substr($0, p + 1) }
		END { s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? "," : "") v[k[i]]; print s }' "$_f"
}

# machine_header FILE : "# key: value" lines describing the machine and
# the allocators; every result CSV starts with them.
machine_header() {
	{
		echo "# libfancyalloc benchmark results - $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		echo "# cpu: $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
		echo "# cores: $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN) online CPUs"
		echo "# memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
		echo "# kernel: $(uname -srm)"
		echo "# thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo ?)"
		echo "# glibc: $(getconf GNU_LIBC_VERSION 2>/dev/null || echo ?)"
		echo "# compiler: ${BENCH_CC_VERSION:-?}"
		for _a in $ALLOCS; do
			_l=$(alloc_lib "$_a")
			echo "# allocator $_a: $(alloc_pkgver "$_a") [${_l:-no LD_PRELOAD}]"
		done
	} >"$1"
}

# summarize RAW_CSV [COLS] : group rows by allocator,workload,threads; print
# the median of every metric column plus the min and max of mops and, after
# those, of each column in COLS (as COL_min,COL_max).
summarize() {
	awk -F, -v spread="${2:-}" '
	/^#/ { next }
	!hdr { for (i = 1; i <= NF; i++) { h[i] = $i; col[$i] = i } nf = NF; hdr = 1; next }
	{
		g = $col["allocator"] SUBSEP $col["workload"] SUBSEP $col["threads"]
		if (!(g in cnt)) { order[++ng] = g; ver[g] = $col["alloc_version"] }
		c = ++cnt[g]
		for (i = 1; i <= nf; i++) val[g, i, c] = $i
	}
	function fmt(v) { return (v == int(v)) ? sprintf("%.0f", v) : sprintf("%.4f", v) }
	function median(g, i,    n, j, k, t, a) {
		n = cnt[g]
		for (j = 1; j <= n; j++) a[j] = val[g, i, j] + 0
		for (j = 2; j <= n; j++) { t = a[j]; for (k = j - 1; k >= 1 && a[k] > t; k--) a[k + 1] = a[k]; a[k + 1] = t }
		lo = a[1]; hi = a[n]
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		skip["allocator"] = skip["alloc_version"] = skip["workload"] = skip["threads"] = skip["rep"] = 1
		ns = split(spread, sp, " ")
		printf "allocator,alloc_version,workload,threads,reps,mops_min,mops_max"
		for (j = 1; j <= ns; j++) printf ",%s_min,%s_max", sp[j], sp[j]
		for (i = 1; i <= nf; i++) if (!(h[i] in skip)) printf ",%s", h[i]
		printf "\n"
		for (o = 1; o <= ng; o++) {
			g = order[o]
			split(g, gk, SUBSEP)
			median(g, col["mops"])
			printf "%s,%s,%s,%s,%d,%s,%s", gk[1], ver[g], gk[2], gk[3], cnt[g], fmt(lo), fmt(hi)
			for (j = 1; j <= ns; j++) { median(g, col[sp[j]]); printf ",%s,%s", fmt(lo), fmt(hi) }
			for (i = 1; i <= nf; i++) if (!(h[i] in skip)) printf ",%s", fmt(median(g, i))
			printf "\n"
		}
	}' "$1"
}

# fmt_secs N
fmt_secs() { awk -v s="$1" 'BEGIN { printf "%dm%02ds", s / 60, s % 60 }'; }

# Columns taken from ring's output, in CSV order.
RING_KEYS="mops elapsed_s malloc_p50_ns malloc_p99_ns malloc_p999_ns malloc_max_ns free_p50_ns free_p99_ns free_p999_ns free_max_ns live_peak_kb maxrss_kb vmhwm_kb rss_ratio minflt utime_s stime_s"

# csv_header KEYS : the raw CSV header line for a program's KEYS.
csv_header() { echo "allocator,alloc_version,workload,threads,rep,$(echo "$1" | tr ' ' ',')"; }

# probe : one tiny untimed glibc run; records the compiler of the bench
# programs in BENCH_CC_VERSION and proves the programs run at all.
probe() {
	run_bench glibc "$1" ring --threads 1 --ops 2000 --slots 500 --sample 0 ||
		die "the bench program $BENCH_BIN/ring does not run"
	BENCH_CC_VERSION=$(kv "$1" cc)
}

# is_uint X
is_uint() { case $1 in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
