## man/local.mk - the manual pages.
##
## One section-3 page per function of include/fancyalloc.h, as Linux
## man-pages does: a page may document several functions, the others being
## one-line ".so man3/<page>.3" files (dh_installman turns them into
## symlinks).  fancyalloc.7 is the overview: architecture, configure
## switches, environment variables, LD_PRELOAD use.  The pages are plain
## files rather than .in templates, so that they ship ready to read and
## need no configure step; bump the version in their .TH lines at release
## (the test fails when it differs from fa_version in configure.ac).
##
## tests/test_manpages.sh lints them (groff, man --warnings as lintian
## does) and fails if a function of the header or an exported fancy_*
## symbol has no page, or if a page is missing from this list.

dist_man_MANS += \
	man/fancy_malloc.3 \
	man/fancy_free.3 \
	man/fancy_calloc.3 \
	man/fancy_realloc.3 \
	man/fancy_aligned_alloc.3 \
	man/fancy_posix_memalign.3 \
	man/fancy_malloc_usable_size.3 \
	man/fancy_trim.3 \
	man/fancy_stats_get.3 \
	man/fancy_print_stats.3 \
	man/fancy_validate_heap.3 \
	man/fancy_check_leaks.3 \
	man/fancy_version.3 \
	man/fancy_prof_dump.3 \
	man/fancy_stats_json.3 \
	man/fancy_stats_json_print.3 \
	man/fancy_heap_visit.3 \
	man/fancy_heap_visit_all.3 \
	man/fancy_allocator_create.3 \
	man/fancy_allocator_destroy.3 \
	man/fancy_allocator_default.3 \
	man/fancy_allocator_malloc.3 \
	man/fancy_allocator_calloc.3 \
	man/fancy_allocator_realloc.3 \
	man/fancy_allocator_aligned_alloc.3 \
	man/fancy_allocator_free.3 \
	man/fancy_allocator_usable_size.3 \
	man/fancy_allocator_validate.3 \
	man/fancy_allocator_check_leaks.3 \
	man/fancy_allocator_print_stats.3 \
	man/fancyalloc.7 \
	man/fancyrun.1

TESTS += tests/test_manpages.sh
EXTRA_DIST += tests/test_manpages.sh
