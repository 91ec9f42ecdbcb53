## tests/prof/local.mk - issue 16: heap profiling (FANCY_PROF), statistics
## as JSON and the walk over live blocks, through the public API.
##
##   test_prof         exact sample counts, the dump signal, the
##                     re-entrancy guard under LD_PRELOAD, profiling off
##   test_prof_pprof   three sites at 10/30/60% of the bytes, read back by
##                     google-pprof --text (skipped without google-pprof)
##   test_prof_leak    FANCY_PROF_FINAL's leak profile names the leaking
##                     site (skipped without google-pprof)
##   test_stats_json   fancy_stats_json through python3's json, totals
##                     equal to fancy_stats_get's
##   test_visit        fancy_heap_visit(_all) count exactly the live blocks
##
## The helpers are linked -no-install, so that google-pprof reads the
## real program and not a libtool wrapper script.

FA_PROF_TESTS = \
	tests/prof/test_prof.sh \
	tests/prof/test_prof_pprof.sh \
	tests/prof/test_prof_leak.sh \
	tests/prof/test_stats_json.sh \
	tests/prof/test_visit.sh

check_PROGRAMS += tests/prof/prof_helper tests/prof/visit_helper tests/prof/stats_json_helper
TESTS += $(FA_PROF_TESTS)
EXTRA_DIST += $(FA_PROF_TESTS) tests/prof/common.sh

tests_prof_prof_helper_SOURCES = tests/prof/prof_helper.c
tests_prof_prof_helper_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
tests_prof_prof_helper_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_prof_visit_helper_SOURCES = tests/prof/visit_helper.c
tests_prof_visit_helper_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
tests_prof_visit_helper_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_prof_stats_json_helper_SOURCES = tests/prof/stats_json_helper.c
tests_prof_stats_json_helper_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
tests_prof_stats_json_helper_LDFLAGS = $(AM_LDFLAGS) -no-install
