#!/bin/sh
# SPDX-License-Identifier: MIT
#
# tests/run-test.sh - how `make check` runs each test (LOG_COMPILER,
# tests/ports.mk).  Usage: run-test.sh TEST [ARGS...]
#
# Natively (FA_TEST_RUNNER empty) it runs TEST as it is.
#
# In a cross build, FA_TEST_RUNNER (configure --with-test-runner=CMD, or
# the environment) is the emulator, e.g. qemu-aarch64 (with libc6:arm64
# installed by multiarch; see .ci/ports.sh for why not -L).  With no binfmt_misc registration (containers, CI) the kernel cannot run
# a foreign program by itself, so:
#   - a compiled test runs under the runner; a libtool wrapper script
#     through `libtool --mode=execute`, which points the real program at
#     the uninstalled libraries;
#   - the tests that re-execute themselves with a variable set
#     (tests/check_mode: FANCY_CHECK=1, tests/limit_helper:
#     FANCY_MEMORY_LIMIT=64m, tests/limit_threads: 32m, tests/check_races: 256m and FANCY_PURGE_DELAY=1000000,
#     tests/claims/idle_wakeups, tests/claims/limit_rss)
#     get it set here instead, since the emulated
#     program cannot exec itself again;
#   - a shell test runs with FA_TEST_RUNNER exported; those that run
#     programs of the build (preload, valgrind) need the host to run them
#     and skip (77), naming the reason; tests/test_manpages.sh and
#     tests/test_os_seam.sh (they read sources only) run.
# Exit status: the test's (automake: 0 pass, 77 skip, 99 hard error).
set -u
test $# -ge 1 || { echo "usage: run-test.sh TEST [ARGS...]" >&2; exit 99; }
runner=${FA_TEST_RUNNER:-}
test -n "$runner" || exec "$@"
export FA_TEST_RUNNER

t=$1
name=${t##*/}
case $name in
  check_mode) FANCY_CHECK=1; export FANCY_CHECK ;;
  limit_helper) FANCY_MEMORY_LIMIT=64m FA_LIMIT_HELPER_CHILD=1
                export FANCY_MEMORY_LIMIT FA_LIMIT_HELPER_CHILD ;;
  limit_threads) FANCY_MEMORY_LIMIT=32m; export FANCY_MEMORY_LIMIT ;;
  check_races) FANCY_MEMORY_LIMIT=256m FANCY_PURGE_DELAY=1000000
               export FANCY_MEMORY_LIMIT FANCY_PURGE_DELAY ;;
  idle_wakeups) FANCY_IDLE_WAKEUPS_CHILD=1 FANCY_RECLAIM=1 FANCY_PURGE_DELAY=0
                export FANCY_IDLE_WAKEUPS_CHILD FANCY_RECLAIM FANCY_PURGE_DELAY ;;
  limit_rss) FANCY_LIMIT_RSS_CHILD=1 FANCY_MEMORY_LIMIT=16m
             export FANCY_LIMIT_RSS_CHILD FANCY_MEMORY_LIMIT ;;
  idle_memory) echo "idle_memory: SKIP: forks and re-executes itself in three modes, and would"
               echo "  measure the emulator's RSS; cross build (FA_TEST_RUNNER=$runner)"
               exit 77 ;;
esac

if head -c 4 "$t" 2>/dev/null | grep -q 'ELF'; then
  exec $runner "$@"
fi
if grep -q 'libtool' "$t" 2>/dev/null && test -f "${t%/*}/.libs/$name"; then
  # A libtool wrapper script of a program linked with an uninstalled
  # shared library.
  exec ${LIBTOOL:-./libtool} --mode=execute $runner "$@"
fi
case $name in
  test_manpages.sh|test_os_seam.sh) exec "$@" ;;
  *.sh) echo "$name: SKIP: runs the build's programs on the host; cross build (FA_TEST_RUNNER=$runner)"
        exit 77 ;;
esac
exec "$@"
