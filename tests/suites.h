/* SPDX-License-Identifier: MIT */
/*
 * suites.h - the Check suites that tests/check_fancy.c runs.
 *
 * Black-box suites (public API only):
 *   check_api.c      allocation calls, their edge cases and misuse aborts
 *   check_realloc.c  fancy_realloc
 *   check_aligned.c  fancy_aligned_alloc and fancy_posix_memalign
 *   check_stats.c    statistics and diagnostics
 *   check_threads.c  cross-thread frees, thread churn, many threads
 *   check_fork.c     fork() from a multi-threaded process
 *   check_instances.c allocator instances (fancy_allocator_*)
 */
#ifndef FA_TESTS_SUITES_H
#define FA_TESTS_SUITES_H

#include <check.h>

Suite *make_api_suite(void);
Suite *make_realloc_suite(void);
Suite *make_aligned_suite(void);
Suite *make_stats_suite(void);
Suite *make_threads_suite(void);
Suite *make_fork_suite(void);
Suite *make_instances_suite(void);

#endif /* FA_TESTS_SUITES_H */
