## tests/local.mk - the unit tests (make check).
##
## tests/check_fancy runs the Check suites (one SRunner, see check_fancy.c):
## black-box tests of the public API in tests/check_*.c.  Each test runs in
## its own child process with its own timeout (tcase_set_timeout; scale
## them with CK_TIMEOUT_MULTIPLIER).  tests/limit_helper tests
## FANCY_MEMORY_LIMIT, which must be set before the process starts: it
## re-executes itself with FANCY_MEMORY_LIMIT=64m.
##
## Without Check (configure says "Check unit tests ... no") these tests are
## not built; `make check` runs the others.

## tests/test_os_seam.sh: lib/os.h's promise that every mmap, munmap,
## mremap and madvise goes through lib/os.c (it reads the sources).
TESTS += tests/test_os_seam.sh
EXTRA_DIST += tests/test_os_seam.sh

FA_CHECK_SUITES = \
	tests/check_api.c \
	tests/check_realloc.c \
	tests/check_aligned.c \
	tests/check_stats.c \
	tests/check_threads.c \
	tests/check_fork.c \
	tests/check_instances.c

if FA_HAVE_CHECK
check_PROGRAMS += tests/check_fancy tests/limit_helper
TESTS += tests/check_fancy tests/limit_helper

tests_check_fancy_SOURCES = tests/check_fancy.c $(FA_CHECK_SUITES) \
	tests/suites.h tests/helpers.h
tests_check_fancy_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_fancy_LDADD = lib/libfancyalloc.la $(CHECK_LIBS) $(PTHREAD_LIBS)

tests_limit_helper_SOURCES = tests/limit_helper.c
tests_limit_helper_LDADD = lib/libfancyalloc.la
endif

## FANCY_MEMORY_LIMIT across threads (issue 14): re-executes itself with
## FANCY_MEMORY_LIMIT=32m.
check_PROGRAMS += tests/limit_threads
TESTS += tests/limit_threads
tests_limit_threads_SOURCES = tests/limit_threads.c tests/stage.h
tests_limit_threads_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)

## Idle memory goes back to the OS (issue 14): runs itself three times
## with FANCY_PURGE_DELAY=300 (see the comment at its top).
check_PROGRAMS += tests/idle_memory
TESTS += tests/idle_memory
tests_idle_memory_SOURCES = tests/idle_memory.c tests/stage.h
tests_idle_memory_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
