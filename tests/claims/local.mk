## tests/claims/local.mk - the promises of README.md and the man pages
## (issue 19).  tests/claims/CLAIMS lists each one with the test that
## checks it; test_claims_list.sh fails when a page or a README table row
## has none.  check_claims holds the C-level claims not tested elsewhere.

if FA_HAVE_CHECK
check_PROGRAMS += tests/claims/check_claims
TESTS += tests/claims/check_claims
tests_claims_check_claims_SOURCES = tests/claims/check_claims.c tests/helpers.h
tests_claims_check_claims_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_claims_check_claims_LDADD = lib/libfancyalloc.la $(CHECK_LIBS) $(PTHREAD_LIBS)
endif

check_PROGRAMS += tests/claims/idle_wakeups
TESTS += tests/claims/idle_wakeups
tests_claims_idle_wakeups_SOURCES = tests/claims/idle_wakeups.c
tests_claims_idle_wakeups_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)

TESTS += tests/claims/test_options.sh
EXTRA_DIST += tests/claims/test_options.sh

check_PROGRAMS += tests/claims/limit_rss
TESTS += tests/claims/limit_rss
tests_claims_limit_rss_SOURCES = tests/claims/limit_rss.c
tests_claims_limit_rss_LDADD = lib/libfancyalloc.la

TESTS += tests/claims/test_claims_list.sh
EXTRA_DIST += tests/claims/test_claims_list.sh tests/claims/CLAIMS
## CLAIMS names the CI script as the test of the configure switches, and
## test_claims_list checks that it exists, in a release tarball too.
EXTRA_DIST += .ci/run
