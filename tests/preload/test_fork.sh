#!/bin/sh
# SPDX-License-Identifier: MIT
# test_fork - fork from a multi-threaded process while the other threads
# allocate; every child allocates, frees, starts a thread, forks again and
# exits 0 (tests/preload/fork_threads.c).  A deadlock is a timeout.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
compare_helper fork_threads
exit 0
