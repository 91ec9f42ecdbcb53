## tests/stress/local.mk - stress programs (issue 8).
##
## Three programs, each a workload of tests/stress/stress_common.h's
## driver (threads coming and going, blocks freed by other threads and
## after their thread exited, patterns checked, fancy_validate_heap() from
## every thread, live and committed bytes checked at the end):
##   stress_larson    mixed sizes of every tier, larson/mstress style
##   stress_realloc   realloc chains across every size class
##   stress_aligned   every power-of-two alignment from 16 to 4 MiB
##   stress_huge      huge blocks reallocated by several threads at once
##                    (found the mremap race fixed in lib/huge.c)
## `make check` runs each for 2 seconds; `make check-stress` runs each for
## STRESS_SECONDS (default 60) with STRESS_THREADS threads (default: each
## program's own).

stress_programs = \
	tests/stress/stress_larson \
	tests/stress/stress_realloc \
	tests/stress/stress_aligned \
	tests/stress/stress_huge
check_PROGRAMS += $(stress_programs)
TESTS += $(stress_programs)

tests_stress_stress_larson_SOURCES = tests/stress/larson.c tests/stress/stress_common.h
tests_stress_stress_larson_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
tests_stress_stress_realloc_SOURCES = tests/stress/realloc.c tests/stress/stress_common.h
tests_stress_stress_realloc_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
tests_stress_stress_aligned_SOURCES = tests/stress/aligned.c tests/stress/stress_common.h
tests_stress_stress_aligned_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)
tests_stress_stress_huge_SOURCES = tests/stress/huge.c tests/stress/stress_common.h
tests_stress_stress_huge_LDADD = lib/libfancyalloc.la $(PTHREAD_LIBS)

STRESS_SECONDS = 60
STRESS_THREADS =

.PHONY: check-stress
check-stress: $(stress_programs)
	@fail=0; t='$(STRESS_THREADS)'; \
	for p in $(stress_programs); do \
	  echo "==> $$p --seconds $(STRESS_SECONDS) $${t:+--threads $$t}"; \
	  ./$$p --seconds $(STRESS_SECONDS) $${t:+--threads $$t} || fail=1; \
	done; test $$fail = 0
