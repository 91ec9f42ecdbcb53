/* SPDX-License-Identifier: MIT */
/*
 * check_fancy.c - runs every Check suite of libfancyalloc.
 *
 * Add a suite by declaring make_<x>_suite() in suites.h and adding one
 * srunner_add_suite() line below.  Each test runs in a child process
 * (CK_FORK=no runs them in this process, for gdb, but then the statistics
 * tests see what earlier tests left).  CK_RUN_SUITE / CK_RUN_CASE select
 * tests, CK_VERBOSITY sets the output (default: one line per test), and
 * CK_TIMEOUT_MULTIPLIER scales the per-case timeouts.
 */
#include <stdlib.h>

#include "suites.h"

int main(void) {
  SRunner *sr = srunner_create(make_api_suite());
  srunner_add_suite(sr, make_realloc_suite());
  srunner_add_suite(sr, make_aligned_suite());
  srunner_add_suite(sr, make_stats_suite());
  srunner_add_suite(sr, make_threads_suite());
  srunner_add_suite(sr, make_fork_suite());
  srunner_add_suite(sr, make_instances_suite());

  srunner_run_all(sr, getenv("CK_VERBOSITY") != NULL ? CK_ENV : CK_VERBOSE);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
