## lib/local.mk - the allocator.
##
## One set of objects (the noinst convenience library libfancycore.la)
## makes three libraries:
##   libfancyalloc.la   installed; exports only fancy_*; safe to -l link.
##   libfancymalloc.la  installed with --enable-malloc-replacement; the
##                      same allocator plus the malloc family (override.c)
##                      C++'s operator new and delete (override_cxx.c)
##                      and glibc's introspection calls (introspect.c),
##                      for LD_PRELOAD or -lfancymalloc.
##   libfancycore.la    not installed; white-box tests link it directly.

noinst_LTLIBRARIES += lib/libfancycore.la
lib_libfancycore_la_SOURCES = \
	lib/types.h lib/internal.h lib/os.h lib/track.h lib/glibc_malloc.h \
	lib/alloc.c lib/free.c lib/aligned.c lib/huge.c \
	lib/page.c lib/addrmap.c lib/segment.c lib/span.c lib/heap.c lib/purge.c \
	lib/os.c lib/procfile.c lib/limit.c lib/cgroup.c lib/options.c lib/stats.c lib/validate.c lib/init.c lib/instance.c \
	lib/foreign.c \
	lib/prof.c lib/unwind.c lib/stats_json.c lib/visit.c
lib_libfancycore_la_LIBADD = $(PTHREAD_LIBS)

lib_LTLIBRARIES += lib/libfancyalloc.la
lib_libfancyalloc_la_SOURCES = lib/version.c
lib_libfancyalloc_la_LIBADD = lib/libfancycore.la $(PTHREAD_LIBS)
lib_libfancyalloc_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(FA_LT_VERSION_INFO) \
	-no-undefined -export-symbols-regex '^fancy_'

if FA_MALLOC_REPLACEMENT
lib_LTLIBRARIES += lib/libfancymalloc.la
lib_libfancymalloc_la_SOURCES = lib/override.c lib/override_cxx.c lib/introspect.c lib/version.c
# C++ exceptions pass through override_cxx.c's frames (std::bad_alloc)
lib_libfancymalloc_la_CFLAGS = $(AM_CFLAGS) -fexceptions
lib_libfancymalloc_la_LIBADD = lib/libfancycore.la $(PTHREAD_LIBS)
lib_libfancymalloc_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(FA_LT_VERSION_INFO) \
	-no-undefined -shared
endif
