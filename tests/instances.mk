## tests/instances.mk - allocator instances (issue 9): the C++ header and
## its test.  (The C API of instances is tested by tests/check_instances.c,
## a suite of tests/check_fancy: see tests/local.mk.)
##
## include/fancyalloc.hpp, the header-only C++17 wrapper
## (fancy::PerThreadAllocator, fancy::stl_allocator), is installed next to
## fancyalloc.h.
##
## tests/check_cxx.cc tests it, built and run by `make check` when
## configure found a C++17 compiler (FA_HAVE_CXX17).

include_HEADERS += include/fancyalloc.hpp

if FA_HAVE_CXX17
check_PROGRAMS += tests/check_cxx
TESTS += tests/check_cxx
endif
tests_check_cxx_SOURCES = tests/check_cxx.cc
tests_check_cxx_CXXFLAGS = -std=c++17 $(AM_CXXFLAGS)
tests_check_cxx_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
