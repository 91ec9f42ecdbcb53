## tests/preload/local.mk - programs run under libfancymalloc (issue 4).
##
## Every test is a shell script, run from the top build directory; it
## sources tests/preload/common.sh, runs a command under glibc's malloc and
## with LD_PRELOAD=lib/.libs/libfancymalloc.so.1, and compares the output.
## Each skips (exit 77, "SKIP: <program> not installed") when the program
## it needs is missing, when libfancymalloc is not built
## (--disable-malloc-replacement) or when it is built with sanitizers
## (their runtime cannot be preloaded into a running program).
##
##   test_python       python3 -m test test_dict test_set test_json
##   test_git          init, 2000 files, commits, merge, gc, log, fsck
##   test_sqlite       sqlite3: 100k rows, indexes, integrity check, queries
##   test_sort         sort(1) of 50 MB, in memory and as an external merge
##   test_cxx          cxx_threads.cc under LD_PRELOAD and -lfancymalloc
##   test_cxx_new      C++'s operator new/delete are libfancymalloc's, and
##                     fail as libstdc++'s do (cxx_new.cc, C++17)
##   test_ctor         allocation in constructors, before the allocator's own
##   test_fork         fork while other threads allocate
##   test_foreign_free free() of glibc's own blocks goes to glibc's free
##   test_misuse       each misuse aborts with one line; glibc's blocks do not
##   test_introspect   mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt
##   test_enomem       requests beyond RAM + swap: NULL, ENOMEM; MemoryError
##   test_thread_exit  threads exit holding blocks that others free
##   test_dlopen       dlopen(libfancyalloc.so.1) + dlsym; the TLS caveat
##   test_atexit_tls   allocation in atexit, key and thread_local destructors
##   test_options      FANCY_* values: warnings, FANCY_VERBOSE, FANCY_STATS
##   test_fancyrun     bin/fancyrun: options, LD_PRELOAD, exit status
##
## The C++ helpers are EXTRA_PROGRAMS built by the phony check_DATA target
## below only when $(CXX) can compile (AC_PROG_CXX sets CXX even when no
## C++ compiler exists); without one their tests skip.

FA_PRELOAD_TESTS = \
	tests/preload/test_python.sh \
	tests/preload/test_git.sh \
	tests/preload/test_sqlite.sh \
	tests/preload/test_sort.sh \
	tests/preload/test_cxx.sh \
	tests/preload/test_cxx_new.sh \
	tests/preload/test_ctor.sh \
	tests/preload/test_fork.sh \
	tests/preload/test_foreign_free.sh \
	tests/preload/test_thread_exit.sh \
	tests/preload/test_dlopen.sh \
	tests/preload/test_atexit_tls.sh \
	tests/preload/test_options.sh \
	tests/preload/test_fancyrun.sh \
	tests/preload/test_misuse.sh \
	tests/preload/test_introspect.sh \
	tests/preload/test_enomem.sh

TESTS += $(FA_PRELOAD_TESTS)
EXTRA_DIST += $(FA_PRELOAD_TESTS) tests/preload/common.sh

check_PROGRAMS += \
	tests/preload/workload \
	tests/preload/ctor_alloc \
	tests/preload/fork_threads \
	tests/preload/foreign_free \
	tests/preload/thread_exit \
	tests/preload/dlopen_api \
	tests/preload/atexit_tls \
	tests/preload/misuse \
	tests/preload/introspect

tests_preload_workload_SOURCES = tests/preload/workload.c tests/preload/which.h
tests_preload_workload_LDADD = $(PTHREAD_LIBS)
tests_preload_ctor_alloc_SOURCES = tests/preload/ctor_alloc.c
tests_preload_fork_threads_SOURCES = tests/preload/fork_threads.c
tests_preload_fork_threads_LDADD = $(PTHREAD_LIBS)
tests_preload_foreign_free_SOURCES = tests/preload/foreign_free.c tests/preload/which.h
tests_preload_thread_exit_SOURCES = tests/preload/thread_exit.c
tests_preload_thread_exit_LDADD = $(PTHREAD_LIBS)
tests_preload_dlopen_api_SOURCES = tests/preload/dlopen_api.c
tests_preload_dlopen_api_LDADD = $(PTHREAD_LIBS)
tests_preload_atexit_tls_SOURCES = tests/preload/atexit_tls.c
tests_preload_atexit_tls_LDADD = $(PTHREAD_LIBS)
tests_preload_misuse_SOURCES = tests/preload/misuse.c tests/preload/which.h
tests_preload_introspect_SOURCES = tests/preload/introspect.c tests/preload/which.h
# -fno-builtin: clang takes malloc for a call that writes no memory of the
# program's, errno included, and folds errno after a failed malloc to the 0
# stored before it (test_enomem then reads "NULL, errno 0").
tests_preload_introspect_CFLAGS = $(AM_CFLAGS) -fno-builtin

# libearly.so: preloaded after libfancymalloc, its constructor allocates
# before the allocator's constructor has run (test_ctor).  -rpath makes
# libtool build a shared object for a library that is never installed.
check_LTLIBRARIES += tests/preload/libearly.la
tests_preload_libearly_la_SOURCES = tests/preload/early.c
tests_preload_libearly_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-rpath $(abs_builddir)/tests/preload

# C++ helpers.
EXTRA_PROGRAMS += tests/preload/cxx_threads tests/preload/cxx_tls
FA_PRELOAD_CXX = tests/preload/cxx_threads$(EXEEXT) tests/preload/cxx_tls$(EXEEXT)
tests_preload_cxx_threads_SOURCES = tests/preload/cxx_threads.cc
tests_preload_cxx_threads_LDADD = $(PTHREAD_LIBS)
tests_preload_cxx_tls_SOURCES = tests/preload/cxx_tls.cc
tests_preload_cxx_tls_LDADD = $(PTHREAD_LIBS)
if FA_MALLOC_REPLACEMENT
# The same program linked with -lfancymalloc (malloc replaced at link time).
EXTRA_PROGRAMS += tests/preload/cxx_threads_linked
FA_PRELOAD_CXX += tests/preload/cxx_threads_linked$(EXEEXT)
tests_preload_cxx_threads_linked_SOURCES = tests/preload/cxx_threads.cc
tests_preload_cxx_threads_linked_LDADD = lib/libfancymalloc.la $(PTHREAD_LIBS)
endif
if FA_HAVE_CXX17
# std::align_val_t and the aligned operators are C++17; clang before 19
# declares the sized operator delete only with -fsized-deallocation.
EXTRA_PROGRAMS += tests/preload/cxx_new
FA_PRELOAD_CXX += tests/preload/cxx_new$(EXEEXT)
tests_preload_cxx_new_SOURCES = tests/preload/cxx_new.cc
tests_preload_cxx_new_CXXFLAGS = $(AM_CXXFLAGS) -std=c++17 -fsized-deallocation
tests_preload_cxx_new_LDADD = $(PTHREAD_LIBS)
if FA_MALLOC_REPLACEMENT
EXTRA_PROGRAMS += tests/preload/cxx_new_linked
FA_PRELOAD_CXX += tests/preload/cxx_new_linked$(EXEEXT)
tests_preload_cxx_new_linked_SOURCES = tests/preload/cxx_new.cc
tests_preload_cxx_new_linked_CXXFLAGS = $(AM_CXXFLAGS) -std=c++17 -fsized-deallocation
tests_preload_cxx_new_linked_LDADD = lib/libfancymalloc.la $(PTHREAD_LIBS)
endif
endif
CLEANFILES += $(FA_PRELOAD_CXX) tests/preload/cxx-probe.cc tests/preload/cxx-probe$(EXEEXT)

# No other fragment defines check_DATA; make it += if one does.
check_DATA = fa-preload-cxx
.PHONY: fa-preload-cxx
fa-preload-cxx:
	@$(MKDIR_P) tests/preload; \
	echo 'int main() { return 0; }' >tests/preload/cxx-probe.cc; \
	if $(CXX) $(CXXFLAGS) $(LDFLAGS) -o tests/preload/cxx-probe$(EXEEXT) \
	     tests/preload/cxx-probe.cc >/dev/null 2>&1; then \
	  rm -f tests/preload/cxx-probe.cc tests/preload/cxx-probe$(EXEEXT); \
	  $(MAKE) $(AM_MAKEFLAGS) $(FA_PRELOAD_CXX); \
	else \
	  rm -f tests/preload/cxx-probe.cc tests/preload/cxx-probe$(EXEEXT); \
	  echo "tests/preload: $(CXX) cannot compile C++: the C++ preload tests will be skipped"; \
	fi
