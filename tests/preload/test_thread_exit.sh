#!/bin/sh
# SPDX-License-Identifier: MIT
# test_thread_exit - threads exit while they own blocks; later threads and
# main check and free them (tests/preload/thread_exit.c), also with the
# background reclamation thread and no purge delay.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
compare_helper thread_exit
FANCY_RECLAIM=1 FANCY_PURGE_DELAY=0 FANCY_SEGMENT_CACHE=0
export FANCY_RECLAIM FANCY_PURGE_DELAY FANCY_SEGMENT_CACHE
compare_helper thread_exit
exit 0
