/* SPDX-License-Identifier: MIT */
/*
 * larson.c - larson/mstress-style stress: threads come and go, each keeps
 * a table of blocks of every tier (small, medium, large, occasionally
 * huge), frees most of them itself, hands some to other threads through a
 * mailbox (they are freed or reallocated there), takes blocks from it, and
 * exits holding blocks that later threads adopt and free.  See
 * stress_common.h for the driver and the checks at the end.
 *
 *   tests/stress/stress_larson                 short run (make check)
 *   tests/stress/stress_larson --seconds 60    long run (make check-stress)
 */
#define _GNU_SOURCE 1
#include "stress_common.h"

#define SLOTS 256

/* 80 % 1..512, 15 % ..32 KiB, 4 % ..256 KiB, 0.8 % ..2 MiB, 0.2 % huge
 * up to 8 MiB (about 27 KiB per block on average). */
static size_t larson_size(uint64_t *rng) {
  unsigned pct = (unsigned)(st_rand(rng) % 1000);
  if (pct < 800) return st_range(rng, 1, 512);
  if (pct < 950) return st_range(rng, 513, 32 * ST_KIB);
  if (pct < 990) return st_range(rng, 32 * ST_KIB + 1, 256 * ST_KIB);
  if (pct < 998) return st_range(rng, 256 * ST_KIB + 1, 2 * ST_MIB);
  return st_range(rng, 2 * ST_MIB + 1, 8 * ST_MIB);
}

static void *larson_worker(void *arg) {
  st_worker_t *w = arg;
  uint64_t rng = w->seed, ops = 0;
  st_blk_t *v = calloc(SLOTS, sizeof *v);
  if (v == NULL) abort();
  st_adopt(v, SLOTS, SLOTS / 2, &rng);
  while (st_tick(w, &ops)) {
    uint64_t r = st_rand(&rng);
    st_blk_t *b = &v[r % SLOTS];
    unsigned act = (unsigned)((r >> 16) % 100);
    if (b->p != NULL) {
      if (act < 70) st_release(b);
      else if (act < 88) st_give(b);
      else if (!st_realloc(b, act < 89 ? 0 : larson_size(&rng), &rng)) break;
    } else if (act < 25) {
      /* A block another thread made: free it here, or keep it. */
      if (st_pool_take(&st_mailbox, &rng, b) && act >= 15) st_release(b);
    } else if (!st_alloc(b, larson_size(&rng), act >= 85, &rng)) {
      break;
    }
  }
  st_hand_over(v, SLOTS, &rng);
  free(v);
  w->ops = ops;
  atomic_store(&w->done, true);
  return NULL;
}

int main(int argc, char **argv) {
  st_config_t cfg = {
      .name = "stress_larson",
      .threads = 4,
      .seconds = 2.0,
      .lifetime = 40000,
      .seed = 0x1a2b3c4d,
      .pool_cap = 1024,
      .worker = larson_worker,
  };
  return st_main(&cfg, argc, argv);
}
