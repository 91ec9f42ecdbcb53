## tests/white.mk - white-box tests of the internals (make check).
## They link the uninstalled core so they can read segment and page
## structures and make mmap fail on purpose.
if FA_HAVE_CHECK
check_PROGRAMS += tests/check_white
TESTS += tests/check_white
tests_check_white_SOURCES = tests/check_white.c lib/version.c
tests_check_white_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib
tests_check_white_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -Wno-missing-prototypes
tests_check_white_LDADD = lib/libfancycore.la $(CHECK_LIBS) $(PTHREAD_LIBS)
else
EXTRA_DIST += tests/check_white.c
endif

## FANCY_CHECK=1 (canaries): re-executes itself with the variable set.
check_PROGRAMS += tests/check_mode
TESTS += tests/check_mode
tests_check_mode_SOURCES = tests/check_mode.c
tests_check_mode_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)

## Memcheck over fancy_* blocks (valgrind client requests, track.h).
check_PROGRAMS += tests/valgrind_prog
tests_valgrind_prog_SOURCES = tests/valgrind_prog.c
tests_valgrind_prog_LDADD = lib/libfancyalloc.la
# A real executable, not a libtool wrapper script, for valgrind to run.
tests_valgrind_prog_LDFLAGS = -no-install
TESTS += tests/test_valgrind.sh
EXTRA_DIST += tests/test_valgrind.sh

## Races at the hand-over points (issue 14): the core built again with
## -DFA_TEST_HOOKS=1, so that a test can pause a thread at an exact point
## (fa_test_point in lib/internal.h) while another acts.  Only for tests.
# (the first check_LTLIBRARIES: tests/preload/local.mk adds to it)
check_LTLIBRARIES = tests/libfancytest.la
tests_libfancytest_la_SOURCES = $(lib_libfancycore_la_SOURCES)
tests_libfancytest_la_CPPFLAGS = $(AM_CPPFLAGS) -DFA_TEST_HOOKS=1
tests_libfancytest_la_LIBADD = $(PTHREAD_LIBS)
if FA_HAVE_CHECK
check_PROGRAMS += tests/check_races
TESTS += tests/check_races
tests_check_races_SOURCES = tests/check_races.c lib/version.c
tests_check_races_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib -DFA_TEST_HOOKS=1
tests_check_races_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -Wno-missing-prototypes
tests_check_races_LDADD = tests/libfancytest.la $(CHECK_LIBS) $(PTHREAD_LIBS)
else
EXTRA_DIST += tests/check_races.c
endif

## The cgroup's limits (issue 17): FANCY_MEMORY_LIMIT=auto read from fake
## cgroup trees (test_cgroup_fake.sh, through the test build's
## FA_TEST_CGROUP_ROOT; test_cgroup_ns.sh: the same files bound over the
## real paths in a private mount namespace, as root), the soft limit, and a
## real memory cgroup
## (test_cgroup_real.sh: skipped unless root may create one).
check_PROGRAMS += tests/cgroup/limits_helper tests/cgroup/fill
tests_cgroup_limits_helper_SOURCES = tests/cgroup/limits_helper.c lib/version.c
tests_cgroup_limits_helper_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib
tests_cgroup_limits_helper_LDADD = tests/libfancytest.la $(PTHREAD_LIBS)
tests_cgroup_fill_SOURCES = tests/cgroup/fill.c
# -fno-builtin: clang takes malloc for a call that sets no errno and
# reported "NULL (Success)" in the all-switches clang build.
tests_cgroup_fill_CFLAGS = $(AM_CFLAGS) -fno-builtin
TESTS += tests/cgroup/test_cgroup_fake.sh tests/cgroup/test_cgroup_ns.sh tests/cgroup/test_cgroup_real.sh
EXTRA_DIST += tests/cgroup/common.sh tests/cgroup/test_cgroup_fake.sh tests/cgroup/test_cgroup_ns.sh \
	tests/cgroup/test_cgroup_real.sh
