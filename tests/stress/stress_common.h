/* SPDX-License-Identifier: MIT */
/*
 * stress_common.h - the driver shared by the stress programs (issue 8).
 *
 * A stress program defines one worker function and calls st_main().  The
 * driver keeps `--threads` worker threads running: when one finishes its
 * lifetime (a random number of operations, or 0.1 to 0.6 s, whichever
 * comes first) it is joined and a new one is
 * started, until `--seconds` have passed or `--ops` operations were done.
 * Threads exit while they hold blocks: what a worker still holds when it
 * ends goes to the leftover pool, from which later threads adopt blocks and
 * free them, or to the mailbox, from which any thread takes blocks and
 * frees (or reallocates) them.  Blocks therefore die on threads other than
 * the one that made them, often after that thread has exited.
 *
 * Every block is filled with a pattern derived from a per-block seed and
 * checked before it is freed or reallocated.  Workers call
 * fancy_validate_heap() every ST_VALIDATE_EVERY operations; main calls it
 * while they run and after they are joined.
 *
 * At the end main frees whatever the pools still hold, calls fancy_trim(0)
 * and checks, with fancy_stats_get():
 *   - bytes_live is back to its value before the first thread started;
 *   - no segment is left abandoned or cached (trim(0) keeps nothing);
 *   - bytes_committed (pages in use or kept warm) is at most its value at
 *     the start plus ST_END_COMMITTED_FRACTION (1 %) of the peak live bytes
 *     plus ST_END_COMMITTED_SLACK (256 KiB).  Measured on a 2-core x86-64
 *     VM (gcc 12, 2 s and 20 s runs of all three programs): exactly 0
 *     bytes are left committed, against a peak live of 50-100 MiB, so the
 *     bound has a wide margin, yet the pages of a segment left behind by
 *     an exited thread would cross it.
 *   - while the workers run, main samples the statistics every 10 ms and
 *     every sample of bytes_committed must be at most ST_RUN_COMMITTED_FACTOR
 *     (2) times the peak live bytes seen so far plus ST_RUN_COMMITTED_SLACK
 *     (48 MiB: warm pages of each thread and the segment cache).  Since
 *     issue 19, bytes_committed counts every page not purged, free pages
 *     kept warm (FANCY_PURGE_DELAY) included, and huge blocks, and
 *     bytes_live leaves out blocks freed by another thread: it follows the
 *     RSS.  Measured then (2 s larson runs, 2-core VM): peak committed /
 *     peak live 1.5-2.2 (peak RSS 100-106 MiB for 50-65 MiB live), single
 *     samples up to 2.43 x the peak live so far, early in a run (92.5 MiB
 *     committed for 38 MiB; bound 124 MiB); before issue 19, when free
 *     warm pages were not counted, 1.2-1.7.  Memory that is not reused
 *     across thread churn (each program starts 20-120 threads) would grow
 *     without bound and cross it.
 *
 * Book-keeping memory comes from the C library's malloc, never from
 * fancy_*, so that it does not move the figures measured.
 *
 * The figures printed (ops/s, peak live, peak committed, peak RSS from
 * getrusage, committed after the trim) are the ones quoted in reports.
 */
#ifndef FA_STRESS_COMMON_H
#define FA_STRESS_COMMON_H

#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fancyalloc.h"

#define ST_KIB ((size_t)1 << 10)
#define ST_MIB ((size_t)1 << 20)

#define ST_VALIDATE_EVERY 4096

/* The bounds on bytes_committed; see the comment at the top. */
#define ST_END_COMMITTED_FRACTION 0.01
#define ST_END_COMMITTED_SLACK (256 * ST_KIB)
#define ST_RUN_COMMITTED_FACTOR 2.0
#define ST_RUN_COMMITTED_SLACK (48 * ST_MIB)

/* FANCY_POPULATE (or a build configured --enable-populate) trades memory
 * for fewer page faults on purpose: whole segments are pre-faulted, and a
 * populated segment takes long enough to map that more threads overlap
 * early in a run.  There the in-run committed/live bound measured 1.6-2.7 x
 * in the first 0.15 s, so it is not applied; the end-of-run bound (all
 * memory back after free + trim) is. */
static int st_populate(void) {
  const char *v = getenv("FANCY_POPULATE");
  if (v != NULL) return strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 ||
                        strcmp(v, "true") == 0;
#if defined(FA_DEFAULT_POPULATE) && FA_DEFAULT_POPULATE
  return 1;
#else
  return 0;
#endif
}

/* ------------------------------------------------------------------------
 * Random numbers, time
 * ---------------------------------------------------------------------- */
static inline uint64_t st_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline size_t st_range(uint64_t *s, size_t lo, size_t hi) {
  return lo + (size_t)(st_rand(s) % (hi - lo + 1));
}

static inline double st_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void st_sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------------
 * Failures: the first few are printed, all are counted; workers stop.
 * ---------------------------------------------------------------------- */
static atomic_uint st_failures;
static atomic_bool st_stop;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static inline void st_fail(const char *fmt, ...) {
  unsigned n = atomic_fetch_add(&st_failures, 1);
  atomic_store(&st_stop, true);
  if (n >= 10) return;
  va_list ap;
  va_start(ap, fmt);
  flockfile(stderr);
  fputs("FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  funlockfile(stderr);
  va_end(ap);
}

static inline bool st_stopping(void) {
  return atomic_load_explicit(&st_stop, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Blocks and their patterns.  The bytes checked are the first ST_HEAD,
 * the last ST_TAIL and every ST_STRIDE-th in between, which catches
 * overlapping blocks, moved or truncated contents and stray writes at the
 * ends of a block while keeping multi-MiB blocks cheap to fill.  The set
 * depends only on the size, and the byte at index i only on (i, seed), so
 * after a realloc the bytes [0, min(old, new)) are checked with the seed
 * of the old block and the block is then filled again for its new size.
 * ---------------------------------------------------------------------- */
#define ST_HEAD 4096
#define ST_TAIL 256
#define ST_STRIDE 509

enum { ST_ZEROED = 1u };   /* st_blk_t.flags: from calloc, not filled yet */

typedef struct st_blk {
  unsigned char *p;
  size_t n;          /* size asked for */
  size_t align;      /* alignment asked for (0: the default 16) */
  uint32_t seed;
  uint32_t flags;
} st_blk_t;

static inline unsigned char st_byte(size_t i, uint32_t seed) {
  uint32_t x = (uint32_t)i * 0x9e3779b1u + seed * 0x85ebca6bu;
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  return (unsigned char)(x >> 24);
}

/* Visit the checked bytes of a block of n bytes that lie below limit:
 * fill them (check false) or return the index of the first that differs
 * (SIZE_MAX if none); zero: expect 0. */
static inline size_t st_walk(unsigned char *c, size_t n, size_t limit, uint32_t seed, bool check,
                             bool zero) {
  size_t head = n < ST_HEAD ? n : ST_HEAD;
  size_t tail = n > ST_TAIL ? n - ST_TAIL : 0;
  if (tail < head) tail = head;
  size_t i = 0;
  for (;;) {
    if (i >= n || i >= limit) break;
    unsigned char want = zero ? 0 : st_byte(i, seed);
    if (check) {
      if (c[i] != want) return i;
    } else {
      c[i] = want;
    }
    if (i + 1 < head || i + 1 >= tail) {
      i++;
    } else {
      size_t next = (i / ST_STRIDE + 1) * ST_STRIDE;
      i = next < tail ? next : tail;
    }
  }
  return SIZE_MAX;
}

static inline void st_fill(st_blk_t *b) {
  st_walk(b->p, b->n, b->n, b->seed, false, false);
  b->flags &= ~(uint32_t)ST_ZEROED;
}

/* Check the bytes of b below limit (<= b->n); report a failure and
 * return false if they are not what was written. */
static inline bool st_check(const st_blk_t *b, size_t limit, const char *when) {
  bool zero = (b->flags & ST_ZEROED) != 0;
  size_t bad = st_walk(b->p, b->n, limit, b->seed, true, zero);
  if (bad == SIZE_MAX) return true;
  st_fail("%s: block %p of %zu bytes (alignment %zu%s): byte %zu is 0x%02x, want 0x%02x",
          when, (void *)b->p, b->n, b->align, zero ? ", calloc" : "", bad, b->p[bad],
          zero ? 0 : st_byte(bad, b->seed));
  return false;
}

/* Properties every fresh block has: alignment and usable size. */
static inline bool st_check_new(const st_blk_t *b, const char *what) {
  size_t al = b->align > 16 ? b->align : 16;
  if (((uintptr_t)b->p & (al - 1)) != 0) {
    st_fail("%s(%zu) with alignment %zu returned %p", what, b->n, al, (void *)b->p);
    return false;
  }
  size_t us = fancy_malloc_usable_size(b->p);
  if (us < b->n) {
    st_fail("%s(%zu) = %p: usable size %zu < size", what, b->n, (void *)b->p, us);
    return false;
  }
  return true;
}

/* Check and free a block (any thread). */
static inline void st_release(st_blk_t *b) {
  if (b->p == NULL) return;
  size_t al = b->align > 16 ? b->align : 16;
  if (((uintptr_t)b->p & (al - 1)) != 0)
    st_fail("block %p lost its alignment %zu", (void *)b->p, al);
  st_check(b, b->n, "free");
  fancy_free(b->p);
  b->p = NULL;
}

/* Allocate n bytes with malloc or calloc; false (and a failure) on NULL. */
static inline bool st_alloc(st_blk_t *b, size_t n, bool zeroed, uint64_t *rng) {
  b->n = n;
  b->align = 0;
  b->seed = (uint32_t)st_rand(rng);
  b->flags = 0;
  if (zeroed) {
    size_t m = n >= 2 && (n & 1) == 0 ? 2 : 1;
    b->p = fancy_calloc(m, n / m);
    b->flags = ST_ZEROED;
  } else {
    b->p = fancy_malloc(n);
  }
  if (b->p == NULL) {
    st_fail("%s(%zu) returned NULL (errno %d)", zeroed ? "calloc" : "malloc", n, errno);
    return false;
  }
  if (!st_check_new(b, zeroed ? "calloc" : "malloc")) return false;
  if (zeroed && !st_check(b, n, "calloc zeroed")) return false;
  st_fill(b);
  return true;
}

/* realloc b to n bytes, checking what must survive; n == 0 frees it. */
static inline bool st_realloc(st_blk_t *b, size_t n, uint64_t *rng) {
  size_t keep = n < b->n ? n : b->n;
  if (!st_check(b, b->n, "before realloc")) return false;
  unsigned char *q = fancy_realloc(b->p, n);
  if (n == 0) {
    /* realloc(p, 0) frees p and returns NULL, as glibc does. */
    if (q != NULL) {
      st_fail("realloc(%p, 0) returned %p, want NULL", (void *)b->p, (void *)q);
      fancy_free(q);
    }
    b->p = NULL;
    return true;
  }
  if (q == NULL) {
    st_fail("realloc(%p, %zu) from %zu returned NULL", (void *)b->p, n, b->n);
    return false;
  }
  size_t old = b->n;
  b->p = q;
  b->align = 0;   /* realloc keeps the default alignment only */
  /* The bytes of the old block's set below the new size survive. */
  if (!st_check(b, keep, "after realloc")) {
    fprintf(stderr, "  (realloc from %zu to %zu bytes)\n", old, n);
    b->n = keep;
    return false;
  }
  b->n = n;
  if (!st_check_new(b, "realloc")) return false;
  if (st_rand(rng) % 4 == 0) b->seed = (uint32_t)st_rand(rng);   /* new contents */
  st_fill(b);
  return true;
}

/* ------------------------------------------------------------------------
 * Pools of blocks shared between threads (mutex-protected).
 * ---------------------------------------------------------------------- */
typedef struct st_pool {
  pthread_mutex_t lock;
  st_blk_t *v;
  size_t n, cap;
} st_pool_t;

static inline void st_pool_init(st_pool_t *pool, size_t cap) {
  pthread_mutex_init(&pool->lock, NULL);
  pool->v = calloc(cap, sizeof *pool->v);
  if (pool->v == NULL) {
    perror("calloc");
    exit(99);
  }
  pool->n = 0;
  pool->cap = cap;
}

static inline bool st_pool_put(st_pool_t *pool, const st_blk_t *b) {
  pthread_mutex_lock(&pool->lock);
  bool ok = pool->n < pool->cap;
  if (ok) pool->v[pool->n++] = *b;
  pthread_mutex_unlock(&pool->lock);
  return ok;
}

/* Take a random block; false if the pool is empty. */
static inline bool st_pool_take(st_pool_t *pool, uint64_t *rng, st_blk_t *out) {
  uint64_t r = st_rand(rng);
  pthread_mutex_lock(&pool->lock);
  bool ok = pool->n > 0;
  if (ok) {
    size_t i = (size_t)(r % pool->n);
    *out = pool->v[i];
    pool->v[i] = pool->v[--pool->n];
  }
  pthread_mutex_unlock(&pool->lock);
  return ok;
}

/* Give away a block a thread no longer wants to free itself: to the
 * mailbox (freed by another thread) or, if full, free it here. */
static st_pool_t st_mailbox;    /* blocks waiting to be freed by another thread */
static st_pool_t st_leftover;   /* blocks of exited threads, to be adopted */

static inline void st_give(st_blk_t *b) {
  if (!st_pool_put(&st_mailbox, b)) st_release(b);
  b->p = NULL;
}

/* A worker that ends hands what it holds over: half to the leftover pool
 * (adopted by later threads), a quarter to the mailbox, a quarter freed. */
static inline void st_hand_over(st_blk_t *v, size_t n, uint64_t *rng) {
  for (size_t i = 0; i < n; i++) {
    if (v[i].p == NULL) continue;
    unsigned r = (unsigned)(st_rand(rng) % 4);
    if (r < 2 && st_pool_put(&st_leftover, &v[i])) v[i].p = NULL;
    else if (r == 2) st_give(&v[i]);
    else st_release(&v[i]);
  }
}

/* Adopt up to max blocks of exited threads into the free slots of v. */
static inline void st_adopt(st_blk_t *v, size_t n, size_t max, uint64_t *rng) {
  for (size_t i = 0; i < n && max > 0; i++) {
    if (v[i].p != NULL) continue;
    if (!st_pool_take(&st_leftover, rng, &v[i])) break;
    max--;
  }
}

/* ------------------------------------------------------------------------
 * Worker bookkeeping
 * ---------------------------------------------------------------------- */
typedef struct st_worker {
  pthread_t thread;
  unsigned id;          /* increasing over the run */
  uint64_t seed;
  uint64_t lifetime;    /* operations before the thread ends */
  double deadline;      /* or this time (st_now()), whichever comes first */
  uint64_t ops;         /* operations done (set when it ends) */
  atomic_bool done;
  bool running;
} st_worker_t;

/* Call every operation; validates the thread's heap every
 * ST_VALIDATE_EVERY operations.  Returns false when the worker must end. */
static inline bool st_tick(st_worker_t *w, uint64_t *ops) {
  ++*ops;
  if (*ops % ST_VALIDATE_EVERY == 0) {
    if (!fancy_validate_heap()) st_fail("thread %u: fancy_validate_heap failed after %" PRIu64 " ops", w->id, *ops);
  }
  if ((*ops & 255) == 0 && st_now() >= w->deadline) return false;
  return *ops < w->lifetime && !st_stopping();
}

typedef struct st_config {
  const char *name;
  unsigned threads;       /* workers running at once */
  double seconds;         /* time budget */
  uint64_t max_ops;       /* op budget (0: none) */
  uint64_t lifetime;      /* mean operations per worker thread */
  uint64_t seed;
  size_t pool_cap;        /* blocks the mailbox and the leftover pool hold */
  void *(*worker)(void *);   /* gets its st_worker_t */
  void (*setup)(void);       /* before the first thread, may be NULL */
} st_config_t;

static inline void st_usage(const char *name) {
  fprintf(stderr,
          "usage: %s [--seconds S] [--ops N] [--threads T] [--lifetime N] [--seed X]\n"
          "  runs for S seconds (default: short, for make check) or N operations,\n"
          "  whichever comes first; prints ops/s, peak live, peak RSS, committed.\n",
          name);
  exit(2);
}

static inline void st_parse(st_config_t *cfg, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) st_usage(argv[0]);
    const char *v = argv[++i];
    char *end;
    errno = 0;
    if (strcmp(a, "--seconds") == 0) {
      cfg->seconds = strtod(v, &end);
      if (*end || cfg->seconds <= 0) st_usage(argv[0]);
      continue;
    }
    unsigned long long x = strtoull(v, &end, 0);
    if (*end || errno) st_usage(argv[0]);
    if (strcmp(a, "--ops") == 0) cfg->max_ops = x;
    else if (strcmp(a, "--threads") == 0 && x >= 1 && x <= 256) cfg->threads = (unsigned)x;
    else if (strcmp(a, "--lifetime") == 0 && x >= 1) cfg->lifetime = x;
    else if (strcmp(a, "--seed") == 0) cfg->seed = x;
    else st_usage(argv[0]);
  }
}

static inline void st_start(const st_config_t *cfg, st_worker_t *w, unsigned id, uint64_t *rng) {
  w->id = id;
  w->seed = st_rand(rng);
  w->lifetime = cfg->lifetime / 2 + st_rand(rng) % (cfg->lifetime + 1);
  /* 0.1 to 0.6 s, so that threads come and go at any speed (sanitizers). */
  w->deadline = st_now() + 0.1 + (double)(st_rand(rng) % 500) / 1000.0;
  w->ops = 0;
  atomic_store(&w->done, false);
  int e = pthread_create(&w->thread, NULL, cfg->worker, w);
  if (e != 0) {
    fprintf(stderr, "%s: pthread_create: %s\n", cfg->name, strerror(e));
    exit(99);
  }
  w->running = true;
}

static inline double st_mib(size_t b) { return (double)b / (double)ST_MIB; }

static inline void st_stats(fancy_stats_t *st) {
  if (fancy_stats_get(st, sizeof *st) != 0) {
    perror("fancy_stats_get");
    exit(99);
  }
}

/* Run the workload; returns the exit status (0 pass, 1 fail). */
static inline int st_main(st_config_t *cfg, int argc, char **argv) {
  st_parse(cfg, argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);
  st_pool_init(&st_mailbox, cfg->pool_cap);
  st_pool_init(&st_leftover, cfg->pool_cap);
  if (cfg->setup) cfg->setup();

  fancy_stats_t st0, st;
  st_stats(&st0);
  printf("%s: %u threads at a time, %.1f s%s, mean thread lifetime %" PRIu64 " ops, seed %" PRIu64 "\n",
         cfg->name, cfg->threads, cfg->seconds, cfg->max_ops ? " or op budget" : "",
         cfg->lifetime, cfg->seed);

  st_worker_t *w = calloc(cfg->threads, sizeof *w);
  if (w == NULL) return 99;
  uint64_t rng = cfg->seed;
  unsigned next_id = 0;
  uint64_t total_ops = 0;
  size_t peak_live = 0, peak_committed = 0, peak_mapped = 0, samples = 0;
  double worst_ratio = 0;   /* committed / peak live so far, over the samples */
  unsigned main_validations = 0;
  double t0 = st_now(), last_sample = 0;

  for (unsigned i = 0; i < cfg->threads; i++) st_start(cfg, &w[i], next_id++, &rng);
  for (;;) {
    double t = st_now() - t0;
    bool over = t >= cfg->seconds || (cfg->max_ops && total_ops >= cfg->max_ops) ||
                atomic_load(&st_failures) != 0;
    if (over) atomic_store(&st_stop, true);
    unsigned running = 0;
    for (unsigned i = 0; i < cfg->threads; i++) {
      if (!w[i].running) continue;
      if (atomic_load(&w[i].done)) {
        pthread_join(w[i].thread, NULL);
        w[i].running = false;
        total_ops += w[i].ops;
        if (!over) st_start(cfg, &w[i], next_id++, &rng);
      }
      if (w[i].running) running++;
    }
    if (over && running == 0) break;
    if (t - last_sample >= 0.01) {
      last_sample = t;
      st_stats(&st);
      samples++;
      if (st.bytes_live > peak_live) peak_live = st.bytes_live;
      if (st.bytes_committed > peak_committed) peak_committed = st.bytes_committed;
      if (st.bytes_mapped > peak_mapped) peak_mapped = st.bytes_mapped;
      if (peak_live >= 8 * ST_MIB &&
          (double)st.bytes_committed / (double)peak_live > worst_ratio)
        worst_ratio = (double)st.bytes_committed / (double)peak_live;
      size_t bound = st0.bytes_committed + (size_t)(ST_RUN_COMMITTED_FACTOR * (double)peak_live) +
                     ST_RUN_COMMITTED_SLACK;
      if (st.bytes_committed > bound && !st_populate())
        st_fail("%.2f s: %.1f MiB committed > bound %.1f MiB (%.1f x peak live %.1f MiB + %.0f MiB)",
                t, st_mib(st.bytes_committed), st_mib(bound), ST_RUN_COMMITTED_FACTOR,
                st_mib(peak_live), st_mib(ST_RUN_COMMITTED_SLACK));
      if (samples % 10 == 0) {
        main_validations++;
        if (!fancy_validate_heap()) st_fail("%.2f s: fancy_validate_heap failed in main", t);
      }
    }
    st_sleep_ms(1);
  }
  double elapsed = st_now() - t0;

  if (!fancy_validate_heap()) st_fail("fancy_validate_heap failed in main after the joins");
  st_stats(&st);
  size_t live_joined = st.bytes_live;
  /* Free everything still held, as the last owner. */
  st_blk_t b;
  size_t leftover = 0;
  while (st_pool_take(&st_mailbox, &rng, &b)) st_release(&b), leftover++;
  while (st_pool_take(&st_leftover, &rng, &b)) st_release(&b), leftover++;
  if (!fancy_validate_heap()) st_fail("fancy_validate_heap failed in main after freeing all");
  fancy_trim(0);
  if (!fancy_validate_heap()) st_fail("fancy_validate_heap failed in main after fancy_trim");
  st_stats(&st);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double rss = (double)ru.ru_maxrss / 1024.0;   /* KiB -> MiB */
  printf("%s: %" PRIu64 " ops in %.2f s = %.0f ops/s; %u threads created (library: %zu)\n",
         cfg->name, total_ops, elapsed, (double)total_ops / elapsed, next_id,
         st.threads_created);
  printf("%s: peak live %.1f MiB, peak committed %.1f MiB (%.2f x peak live), peak mapped %.1f MiB, "
         "peak RSS %.1f MiB; %zu samples, %u validations in main\n",
         cfg->name, st_mib(peak_live), st_mib(peak_committed),
         peak_live ? (double)peak_committed / (double)peak_live : 0.0, st_mib(peak_mapped), rss,
         samples, main_validations);
  printf("%s: highest committed / peak live so far over the samples: %.2f (bound %.1f x + %.0f MiB)\n",
         cfg->name, worst_ratio, ST_RUN_COMMITTED_FACTOR, st_mib(ST_RUN_COMMITTED_SLACK));
  printf("%s: after the joins %.1f MiB live in %zu blocks left by exited threads; "
         "%zu remote frees collected\n",
         cfg->name, st_mib(live_joined), leftover, st.remote_frees);

  size_t end_bound = st0.bytes_committed +
                     (size_t)(ST_END_COMMITTED_FRACTION * (double)peak_live) + ST_END_COMMITTED_SLACK;
  printf("%s: after free + trim: live %zu B (start %zu B), committed %.2f MiB "
         "(%.4f of peak live; bound %.2f MiB = start + %.2f x peak live + %.2f MiB), "
         "mapped %.1f MiB, segments %zu (abandoned %zu, cached %zu), huge blocks %zu\n",
         cfg->name, st.bytes_live, st0.bytes_live, st_mib(st.bytes_committed),
         peak_live ? (double)st.bytes_committed / (double)peak_live : 0.0, st_mib(end_bound),
         ST_END_COMMITTED_FRACTION, st_mib(ST_END_COMMITTED_SLACK), st_mib(st.bytes_mapped),
         st.segments, st.segments_abandoned, st.segments_cached, st.huge_blocks);
  if (st.bytes_live != st0.bytes_live) {
    st_fail("bytes_live is %zu after freeing everything, was %zu at the start", st.bytes_live,
            st0.bytes_live);
    fancy_check_leaks();
  }
  if (st.bytes_committed > end_bound)
    st_fail("%.2f MiB committed after free + trim > bound %.2f MiB", st_mib(st.bytes_committed),
            st_mib(end_bound));
  if (st.huge_blocks != 0) st_fail("%zu huge blocks live at the end", st.huge_blocks);
  if (st.segments_abandoned != 0 || st.segments_cached != 0)
    st_fail("after free + trim(0): %zu segments abandoned, %zu cached; want none",
            st.segments_abandoned, st.segments_cached);
  if (total_ops == 0) st_fail("no operations done");

  unsigned f = atomic_load(&st_failures);
  if (f) {
    fancy_print_stats(stderr);
    printf("%s: FAILED (%u failures)\n", cfg->name, f);
  } else {
    printf("%s: PASS\n", cfg->name);
  }
  free(w);
  return f ? 1 : 0;
}

#endif /* FA_STRESS_COMMON_H */
