/* SPDX-License-Identifier: MIT */
/*
 * realloc.c - realloc chains: every worker first sweeps one block up
 * through every size class (each class size, one less and one more), the
 * large sizes and into huge blocks, then back down; then it runs random
 * chains of grows and shrinks, biased to class boundaries, with chains
 * handed to other threads mid-way (realloc by a thread that does not own
 * the block, often after its owner exited).  Contents are checked after
 * every step.  See stress_common.h for the driver and the final checks.
 *
 *   tests/stress/stress_realloc                 short run (make check)
 *   tests/stress/stress_realloc --seconds 60    long run (make check-stress)
 */
#define _GNU_SOURCE 1
#include "stress_common.h"

#define CHAINS 24

/* Boundary sizes: for every size class c, c - 1, c and c + 1; then large
 * and huge sizes around page and tier boundaries.  Ascending. */
static size_t sweep[3 * FANCY_STATS_MAX_CLASSES + 64];
static size_t sweep_n;

static void realloc_setup(void) {
  fancy_stats_t st;
  st_stats(&st);
  for (size_t c = 0; c < st.num_classes; c++) {
    size_t s = st.classes[c].block_size;
    if (s > 1 && (sweep_n == 0 || sweep[sweep_n - 1] < s - 1)) sweep[sweep_n++] = s - 1;
    if (sweep_n == 0 || sweep[sweep_n - 1] < s) sweep[sweep_n++] = s;
    sweep[sweep_n++] = s + 1;
  }
  static const size_t big[] = {
      48 << 10,  (64 << 10) - 1, 64 << 10, (64 << 10) + 1, 100 << 10, 128 << 10,
      192 << 10, (256 << 10) + 1, 512 << 10, (1 << 20) - 1, (1 << 20) + 1,
      3 << 19,   (2 << 20) - 1, 2 << 20,  (2 << 20) + 1,  3 << 20,   (4 << 20) + 1,
      6 << 20,   8 << 20,
  };
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
    if (big[i] > sweep[sweep_n - 1]) sweep[sweep_n++] = big[i];
  if (st.num_classes < 20) {
    fprintf(stderr, "stress_realloc: only %zu size classes reported\n", st.num_classes);
    exit(99);
  }
}

/* The next size of a chain: half the time a class boundary, else a size
 * from a tier: small, medium, large, now and then huge. */
static size_t next_size(uint64_t *rng) {
  uint64_t r = st_rand(rng);
  unsigned pct = (unsigned)(r % 100);
  if (pct < 50) {
    /* Mostly the classes; the large and huge tail of the list rarely. */
    size_t n = (r >> 8) % 8 ? sweep_n - 19 : sweep_n;
    return sweep[(r >> 16) % n];
  }
  if (pct < 75) return st_range(rng, 1, 512);
  if (pct < 92) return st_range(rng, 513, 32 * ST_KIB);
  if (pct < 99) return st_range(rng, 32 * ST_KIB + 1, 2 * ST_MIB);
  return st_range(rng, 2 * ST_MIB + 1, 6 * ST_MIB);
}

/* One block up through every boundary size, then back down. */
static bool do_sweep(uint64_t *rng, uint64_t *ops, st_worker_t *w) {
  st_blk_t b;
  if (!st_alloc(&b, 1, false, rng)) return false;
  bool ok = true;
  for (size_t i = 0; ok && i < sweep_n && !st_stopping(); i++) {
    ok = st_realloc(&b, sweep[i], rng);
    st_tick(w, ops);
  }
  for (size_t i = sweep_n; ok && i-- > 0 && !st_stopping();) {
    ok = st_realloc(&b, sweep[i], rng);
    st_tick(w, ops);
  }
  if (b.p != NULL) {
    if (ok) st_release(&b);
    else fancy_free(b.p);
  }
  return ok;
}

static void *realloc_worker(void *arg) {
  st_worker_t *w = arg;
  uint64_t rng = w->seed, ops = 0;
  st_blk_t v[CHAINS];
  unsigned steps[CHAINS] = {0};
  memset(v, 0, sizeof v);
  st_adopt(v, CHAINS, CHAINS / 2, &rng);
  bool ok = do_sweep(&rng, &ops, w);
  while (ok && st_tick(w, &ops)) {
    uint64_t r = st_rand(&rng);
    unsigned i = (unsigned)(r % CHAINS);
    st_blk_t *b = &v[i];
    unsigned act = (unsigned)((r >> 16) % 100);
    if (b->p == NULL) {
      steps[i] = 0;
      if (act < 40 && st_pool_take(&st_mailbox, &rng, b)) continue;  /* go on with it here */
      ok = st_alloc(b, next_size(&rng), act >= 90, &rng);
    } else if (++steps[i] > 64 || act < 2) {
      if (act < 50) st_release(b);
      else st_give(b);
    } else if (act < 10) {
      st_give(b);   /* another thread carries the chain on */
    } else {
      ok = st_realloc(b, act < 11 ? 0 : next_size(&rng), &rng);
    }
  }
  st_hand_over(v, CHAINS, &rng);
  w->ops = ops;
  atomic_store(&w->done, true);
  return NULL;
}

int main(int argc, char **argv) {
  st_config_t cfg = {
      .name = "stress_realloc",
      .threads = 3,
      .seconds = 2.0,
      .lifetime = 30000,
      .seed = 0x5eed0001,
      .pool_cap = 256,
      .worker = realloc_worker,
      .setup = realloc_setup,
  };
  return st_main(&cfg, argc, argv);
}
