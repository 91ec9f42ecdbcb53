/* SPDX-License-Identifier: MIT */
/*
 * huge.c - huge blocks (> 2 MiB, mapped on their own) grown and shrunk
 * with realloc by several threads at once, so that mremap moves blocks
 * while other threads map and unmap theirs.  After each realloc the
 * usable size must cover the request and the contents must have moved
 * with the block.  See stress_common.h for the driver and final checks.
 *
 * Not in `make check` (TESTS) yet: on the tree of issue 8 it fails
 * within seconds with four threads (usable size smaller than the request,
 * or realloc returning NULL), see the report of issue 8; `make
 * check-stress` runs it.
 *
 *   tests/stress/stress_huge                 short run
 *   tests/stress/stress_huge --seconds 60    long run
 */
#define _GNU_SOURCE 1
#include "stress_common.h"

#define SLOTS 4

static size_t huge_size(uint64_t *rng) {
  return st_range(rng, 2 * ST_MIB + 1, 8 * ST_MIB);
}

static void *huge_worker(void *arg) {
  st_worker_t *w = arg;
  uint64_t rng = w->seed, ops = 0;
  st_blk_t v[SLOTS];
  memset(v, 0, sizeof v);
  bool ok = true;
  while (ok && st_tick(w, &ops)) {
    st_blk_t *b = &v[st_rand(&rng) % SLOTS];
    unsigned act = (unsigned)(st_rand(&rng) % 100);
    if (b->p == NULL) ok = st_alloc(b, huge_size(&rng), false, &rng);
    else if (act < 15) st_release(b);
    else if (act < 20) st_give(b);
    else ok = st_realloc(b, huge_size(&rng), &rng);
  }
  st_hand_over(v, SLOTS, &rng);
  w->ops = ops;
  atomic_store(&w->done, true);
  return NULL;
}

int main(int argc, char **argv) {
  st_config_t cfg = {
      .name = "stress_huge",
      .threads = 4,
      .seconds = 2.0,
      .lifetime = 20000,
      .seed = 0x4a6e,
      .pool_cap = 16,
      .worker = huge_worker,
  };
  return st_main(&cfg, argc, argv);
}
