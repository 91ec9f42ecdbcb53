/* SPDX-License-Identifier: MIT */
/*
 * limit.c - memory-limit accounting: the one place where bytes are charged
 * against a limit (the process's FANCY_MEMORY_LIMIT in os.c, an instance's
 * own limit in instance.c).
 *
 * A charge is checked before it is added, in a compare-and-swap loop, so a
 * refused charge never shows in the counter.  Adding first and taking the
 * bytes back when the sum is over the limit (as this code once did) makes a
 * thread that keeps asking for too much, say malloc(1 GiB) in a loop under
 * a 256 MiB limit, refuse the modest requests of every other thread for as
 * long as its bytes sit in the counter.
 */
#include "internal.h"

bool _fa_limit_charge(_Atomic size_t *counter, size_t limit, size_t bytes) {
  if (limit == 0) {
    atomic_fetch_add_explicit(counter, bytes, memory_order_relaxed);
    return true;
  }
  size_t cur = atomic_load_explicit(counter, memory_order_relaxed);
  do {
    if (bytes > limit || cur > limit - bytes) {
      fa_test_point(FA_TP_QUOTA_REFUSED, (void *)counter);
      return false;
    }
  } while (!atomic_compare_exchange_weak_explicit(counter, &cur, cur + bytes,
                                                  memory_order_relaxed, memory_order_relaxed));
  return true;
}

void _fa_limit_uncharge(_Atomic size_t *counter, size_t bytes) {
  atomic_fetch_sub_explicit(counter, bytes, memory_order_relaxed);
}
