## tests/ports.mk - what the ports need (issue 18: aarch64, clang, musl).
##
## tests/check_pagesize runs the allocator as on a 16 KiB and a 64 KiB page
## kernel (arm64): it overrides the page size the allocator assumes and
## checks every mmap, munmap, madvise and mremap it makes.
##
## Cross builds run `make check` through $(FA_TEST_RUNNER) (configure
## --with-test-runner, e.g. qemu-aarch64):
## tests/run-test.sh runs compiled tests under it, and the shell tests
## read it from the environment.  See .ci/ports.sh.
if FA_HAVE_CHECK
check_PROGRAMS += tests/check_pagesize
TESTS += tests/check_pagesize
tests_check_pagesize_SOURCES = tests/check_pagesize.c lib/version.c
tests_check_pagesize_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib
tests_check_pagesize_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -Wno-missing-prototypes
tests_check_pagesize_LDADD = lib/libfancycore.la $(CHECK_LIBS) $(PTHREAD_LIBS)
else
EXTRA_DIST += tests/check_pagesize.c
endif

## Every test goes through tests/run-test.sh (natively it only execs it).
LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/run-test.sh
AM_TESTS_ENVIRONMENT = FA_TEST_RUNNER='$(FA_TEST_RUNNER)'; LIBTOOL='$(LIBTOOL)'; \
	export FA_TEST_RUNNER LIBTOOL;
EXTRA_DIST += tests/run-test.sh
