## bench/local.mk - the benchmark suite (included by the top-level
## Makefile.am).  The programs are plain executables linked against libc
## and pthread only: the allocator under test comes from LD_PRELOAD, so
## glibc, jemalloc, tcmalloc, mimalloc and libfancymalloc all run the very
## same binary.  They are small and build with `make all`; they are not
## part of `make check`.
##
##   make bench            build them, then bench/run_unified.sh 2
##   make bench-full       build them, then bench/run_full_benchmark.sh $(BENCH_THREADS)
##   make bench-callgrind  instruction counts (bench/callgrind.sh)
##   make bench-targets    issue 5's targets against those results (bench/targets.sh)
##   make bench-programs   only build them
##   make bench-public MIMALLOC_BENCH=PATH [MB_ALLOCS="name=lib.so ..."]
##                         the public suite (bench/mimalloc-bench.sh) from a
##                         checkout of daanx/mimalloc-bench you downloaded

bench_programs = bench/ring bench/xthread bench/larson bench/frag
noinst_PROGRAMS += $(bench_programs)

# Own flags: AM_CFLAGS would bring sanitizer flags (which cannot be
# combined with a preloaded malloc) and library-only settings.  User
# CFLAGS still come last.
bench_cflags = -std=c11 -O2 $(WARN_CFLAGS) $(PTHREAD_CFLAGS)
bench_ldadd = $(PTHREAD_LIBS)

bench_ring_SOURCES = bench/ring.c bench/bench_common.h
bench_ring_CFLAGS = $(bench_cflags)
bench_ring_LDFLAGS =
bench_ring_LDADD = $(bench_ldadd)

bench_xthread_SOURCES = bench/xthread.c bench/bench_common.h
bench_xthread_CFLAGS = $(bench_cflags)
bench_xthread_LDFLAGS =
bench_xthread_LDADD = $(bench_ldadd)

bench_larson_SOURCES = bench/larson.c bench/bench_common.h
bench_larson_CFLAGS = $(bench_cflags)
bench_larson_LDFLAGS =
bench_larson_LDADD = $(bench_ldadd)

bench_frag_SOURCES = bench/frag.c bench/bench_common.h
bench_frag_CFLAGS = $(bench_cflags)
bench_frag_LDFLAGS =
bench_frag_LDADD = $(bench_ldadd)

EXTRA_DIST += \
	bench/README.md \
	bench/common.sh \
	bench/plots.sh \
	bench/run_unified.sh \
	bench/run_full_benchmark.sh \
	bench/callgrind.sh \
	bench/targets.sh \
	bench/mimalloc-bench.sh \
	bench/prof_overhead.sh

# The malloc drop-in, when it is built, is what `make bench` measures.
bench_deps = $(bench_programs)
if FA_MALLOC_REPLACEMENT
bench_deps += lib/libfancymalloc.la
endif

BENCH_THREADS = 8
bench_env = BUILDDIR="$(abs_top_builddir)" BENCH_BIN="$(abs_top_builddir)/bench"

.PHONY: bench bench-full bench-programs bench-callgrind bench-targets bench-public
bench-programs: $(bench_programs)
bench: $(bench_deps)
	$(bench_env) $(SHELL) "$(abs_top_srcdir)/bench/run_unified.sh" 2
bench-full: $(bench_deps)
	$(bench_env) $(SHELL) "$(abs_top_srcdir)/bench/run_full_benchmark.sh" $(BENCH_THREADS)
bench-callgrind: $(bench_deps)
	$(bench_env) $(SHELL) "$(abs_top_srcdir)/bench/callgrind.sh"
# issue 5's targets, from the results of bench-full and bench-callgrind
bench-targets:
	$(bench_env) $(SHELL) "$(abs_top_srcdir)/bench/targets.sh"
# The public suite: MIMALLOC_BENCH names a checkout you downloaded;
# MB_ALLOCS adds allocators as NAME=/path/lib.so (mimalloc v3, snmalloc).
MIMALLOC_BENCH =
MB_ALLOCS =
bench-public: $(bench_deps)
	@test -n "$(MIMALLOC_BENCH)" || { echo "usage: make bench-public MIMALLOC_BENCH=/path/to/mimalloc-bench [MB_ALLOCS='mimalloc3=/path/libmimalloc.so.3']"; exit 2; }
	$(bench_env) $(SHELL) "$(abs_top_srcdir)/bench/mimalloc-bench.sh" \
	  $(foreach a,$(MB_ALLOCS),-a $(a)) "$(MIMALLOC_BENCH)"

## The soft limit (issue 17): bench/softlimit.sh runs bench/softlimit
## under glibc and libfancymalloc, without and with FANCY_MEMORY_SOFT_LIMIT.
noinst_PROGRAMS += bench/softlimit
bench_softlimit_SOURCES = bench/softlimit.c
bench_softlimit_CFLAGS = $(bench_cflags)
bench_softlimit_LDFLAGS =
bench_softlimit_LDADD = $(bench_ldadd) -ldl
EXTRA_DIST += bench/softlimit.sh

## Thread generations and idle phases (issue 14): bench/churn.sh runs
## bench/churn, bench/phases.sh runs bench/phases, under every allocator.
noinst_PROGRAMS += bench/churn bench/phases
bench_churn_SOURCES = bench/churn.c bench/bench_common.h
bench_churn_CFLAGS = $(bench_cflags)
bench_churn_LDFLAGS =
bench_churn_LDADD = $(bench_ldadd)
bench_phases_SOURCES = bench/phases.c bench/bench_common.h
bench_phases_CFLAGS = $(bench_cflags)
bench_phases_LDFLAGS =
bench_phases_LDADD = $(bench_ldadd)
EXTRA_DIST += bench/churn.sh bench/phases.sh

## Issue 13's peak-RSS causes (bench/README.md): helpers run by hand.
EXTRA_DIST += bench/peak_rss.sh bench/rss_sample.c bench/span_map.c
