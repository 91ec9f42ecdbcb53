## tests/fuzz/local.mk - the libFuzzer target (issue 8).
##
##   make fuzz                       build tests/fuzz/fuzz_ops with clang
##   make fuzz-run FUZZ_SECONDS=60   build it and fuzz for that long, on a
##                                   copy of the seed corpus
##
## fuzz_ops compiles the library's own sources (the objects of
## libfancycore plus version.c; never override.c, so the fuzzer's malloc
## stays libFuzzer's) together with the target, all with
## -fsanitize=fuzzer,address,undefined, so that coverage feedback reaches
## into the allocator.  It needs clang with libFuzzer: CLANG=... picks the
## compiler; without one `make fuzz` says so and does nothing.  Neither
## target is part of `make all` or `make check`.
##
## tests/fuzz/corpus/ is the seed corpus, made by tests/fuzz/make_corpus.py
## (run it again after changing the input format).  A crash input is left
## in the build directory as tests/fuzz/crash-*; replay it with
## `tests/fuzz/fuzz_ops tests/fuzz/crash-...`.  The corpus the run grows
## is tests/fuzz/corpus-run/ in the build directory (made afresh by every
## fuzz-run); FUZZ_FLAGS passes more libFuzzer options, e.g. -jobs=2.

CLANG = clang
FUZZ_SECONDS = 60
FUZZ_FLAGS =
FUZZ_CFLAGS = -g -O1 -std=c11 -Wall -Wextra -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer
fuzz_sources = tests/fuzz/fuzz_ops.c

EXTRA_DIST += $(fuzz_sources) tests/fuzz/make_corpus.py tests/fuzz/corpus
CLEANFILES += tests/fuzz/fuzz_ops tests/fuzz/corpus-run/*

.PHONY: fuzz fuzz-run
fuzz:
	@if ! command -v "$(CLANG)" >/dev/null 2>&1; then \
	  echo "make fuzz: $(CLANG) not found; the fuzzer is not built (set CLANG=/path/to/clang)"; \
	  exit 0; \
	fi; \
	srcs=; \
	for f in $(lib_libfancycore_la_SOURCES) lib/version.c; do \
	  case $$f in *.c) srcs="$$srcs $(srcdir)/$$f";; esac; \
	done; \
	$(MKDIR_P) tests/fuzz && \
	echo "  CLANG    tests/fuzz/fuzz_ops" && \
	$(CLANG) $(FUZZ_CFLAGS) -I$(top_builddir) -I$(srcdir) -I$(srcdir)/include -I$(srcdir)/lib \
	  -pthread $(srcdir)/tests/fuzz/fuzz_ops.c $$srcs -o tests/fuzz/fuzz_ops

fuzz-run: fuzz
	@if test ! -x tests/fuzz/fuzz_ops; then echo "make fuzz-run: no fuzzer, skipped"; exit 0; fi; \
	rm -rf tests/fuzz/corpus-run && $(MKDIR_P) tests/fuzz/corpus-run && \
	cp $(srcdir)/tests/fuzz/corpus/* tests/fuzz/corpus-run/ && \
	cd tests/fuzz && ./fuzz_ops -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -rss_limit_mb=4096 $(FUZZ_FLAGS) corpus-run
