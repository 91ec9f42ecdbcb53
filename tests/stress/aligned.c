/* SPDX-License-Identifier: MIT */
/*
 * aligned.c - aligned allocations of every power of two from 16 to 4 MiB
 * (each worker walks all of them in turn, and picks random ones), with
 * sizes 1, below, at and above the alignment and random ones, through
 * fancy_aligned_alloc and fancy_posix_memalign; alignment and usable size
 * are checked when the block is made and again when it is freed, by its
 * thread or another one; some are reallocated (contents checked, default
 * alignment only).  Invalid alignments must fail with EINVAL.  See
 * stress_common.h for the driver and the final checks.
 *
 *   tests/stress/stress_aligned                 short run (make check)
 *   tests/stress/stress_aligned --seconds 60    long run (make check-stress)
 */
#define _GNU_SOURCE 1
#include "stress_common.h"

#define SLOTS 32
#define MIN_SHIFT 4    /* 16 */
#define MAX_SHIFT 22   /* 4 MiB */

static bool aligned_new(st_blk_t *b, unsigned shift, uint64_t *rng) {
  size_t a = (size_t)1 << shift;
  size_t n;
  switch (st_rand(rng) % 6) {
  case 0: n = 1; break;
  case 1: n = st_range(rng, 1, 512); break;
  case 2: n = a; break;
  case 3: n = a + 1; break;
  case 4: n = a > 16 ? a - 1 : 17; break;
  default: n = st_range(rng, 1, a < 4096 ? 4096 : a); break;
  }
  b->n = n;
  b->align = a;
  b->seed = (uint32_t)st_rand(rng);
  b->flags = 0;
  const char *what;
  if (st_rand(rng) & 1) {
    what = "aligned_alloc";
    b->p = fancy_aligned_alloc(a, n);
    if (b->p == NULL) {
      st_fail("aligned_alloc(%zu, %zu) returned NULL (errno %d)", a, n, errno);
      return false;
    }
  } else {
    what = "posix_memalign";
    void *p = NULL;
    int e = fancy_posix_memalign(&p, a, n);
    if (e != 0 || p == NULL) {
      st_fail("posix_memalign(%zu, %zu) returned %d", a, n, e);
      return false;
    }
    b->p = p;
  }
  if (!st_check_new(b, what)) return false;
  st_fill(b);
  return true;
}

/* Alignments that are not powers of two are refused. */
static bool aligned_invalid(uint64_t *rng) {
  static const size_t bad[] = {3, 12, 24, 48, 96, 3 << 12, ((size_t)1 << 20) + 16};
  size_t a = bad[st_rand(rng) % (sizeof bad / sizeof bad[0])];
  errno = 0;
  void *p = fancy_aligned_alloc(a, 64);
  if (p != NULL || errno != EINVAL) {
    st_fail("aligned_alloc(%zu, 64) = %p errno %d, want NULL + EINVAL", a, p, errno);
    fancy_free(p);
    return false;
  }
  void *q = (void *)&q;
  int e = fancy_posix_memalign(&q, a, 64);
  if (e != EINVAL || q != (void *)&q) {
    st_fail("posix_memalign(%zu, 64) = %d, want EINVAL and *memptr untouched", a, e);
    return false;
  }
  return true;
}

static void *aligned_worker(void *arg) {
  st_worker_t *w = arg;
  uint64_t rng = w->seed, ops = 0;
  st_blk_t v[SLOTS];
  memset(v, 0, sizeof v);
  unsigned cursor = w->id;   /* walks every alignment in turn */
  st_adopt(v, SLOTS, SLOTS / 2, &rng);
  bool ok = true;
  while (ok && st_tick(w, &ops)) {
    uint64_t r = st_rand(&rng);
    st_blk_t *b = &v[r % SLOTS];
    unsigned act = (unsigned)((r >> 16) % 100);
    if (b->p != NULL) {
      if (act < 60) st_release(b);
      else if (act < 85) st_give(b);
      else ok = st_realloc(b, st_range(&rng, 1, 64 * ST_KIB), &rng);
    } else if (act < 20) {
      if (st_pool_take(&st_mailbox, &rng, b) && act >= 12) st_release(b);
    } else if (act < 21) {
      ok = aligned_invalid(&rng);
    } else {
      unsigned shift = act & 1 ? MIN_SHIFT + cursor++ % (MAX_SHIFT - MIN_SHIFT + 1)
                               : MIN_SHIFT + (unsigned)((r >> 32) % (MAX_SHIFT - MIN_SHIFT + 1));
      ok = aligned_new(b, shift, &rng);
    }
  }
  st_hand_over(v, SLOTS, &rng);
  w->ops = ops;
  atomic_store(&w->done, true);
  return NULL;
}

int main(int argc, char **argv) {
  st_config_t cfg = {
      .name = "stress_aligned",
      .threads = 3,
      .seconds = 2.0,
      .lifetime = 20000,
      .seed = 0xa119,
      .pool_cap = 128,
      .worker = aligned_worker,
  };
  return st_main(&cfg, argc, argv);
}
