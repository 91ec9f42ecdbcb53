/* SPDX-License-Identifier: MIT */
/*
 * check_threads.c - blocks freed by other threads, many threads at once,
 * thread churn, and the memory of exited threads.
 *
 * Worker threads never call Check: they record their first failure in an
 * fa_failure_t and stop; the main thread asserts on it after joining.
 */
#define _GNU_SOURCE 1
#include <pthread.h>

#include "helpers.h"
#include "suites.h"

/* ------------------------------------------------------------------------
 * Cross-thread free: batches of 100k blocks made by one thread are checked
 * and freed by the other, while the first makes the next batch; the
 * direction flips every 3 batches.
 * ---------------------------------------------------------------------- */
#define XFER_N 100000
#define XFER_BATCHES 6

struct xfer {
  void **buf[2];
  pthread_barrier_t barrier;
  fa_failure_t fail;
};

struct xfer_arg {
  struct xfer *x;
  int id;
};

static int xfer_producer(int batch) { return (batch / 3) % 2; }

static void *xfer_thread(void *argp) {
  struct xfer_arg *arg = argp;
  struct xfer *x = arg->x;
  uint64_t rng = 0x1234567ull + (uint64_t)arg->id;
  for (int r = 0; r <= XFER_BATCHES; r++) {
    if (r < XFER_BATCHES && xfer_producer(r) == arg->id &&
        !fa_failed(&x->fail)) {
      void **b = x->buf[r % 2];
      for (int i = 0; i < XFER_N; i++) {
        size_t n = fa_mixed_size(&rng);
        b[i] = fancy_malloc(n);
        if (b[i] == NULL) {
          fa_fail(&x->fail, "thread %d: fancy_malloc(%zu) returned NULL",
                  arg->id, n);
          break;
        }
        fa_mark(b[i], n, (unsigned)i);
      }
    }
    /* the other thread than the one that made batch r-1 frees it */
    if (r > 0 && 1 - xfer_producer(r - 1) == arg->id) {
      void **b = x->buf[(r - 1) % 2];
      for (int i = 0; i < XFER_N; i++) {
        if (b[i] == NULL) continue;
        size_t bad;
        if (fa_verify(b[i], &bad) == 0)
          fa_fail(&x->fail, "batch %d block %d at %p, made by thread %d, "
                  "corrupt at byte %zu when thread %d came to free it", r - 1,
                  i, b[i], 1 - arg->id, bad, arg->id);
        fancy_free(b[i]);
        b[i] = NULL;
      }
    }
    pthread_barrier_wait(&x->barrier);
  }
  if (!fancy_validate_heap())
    fa_fail(&x->fail, "fancy_validate_heap() false in thread %d", arg->id);
  return NULL;
}

START_TEST(test_cross_thread_free) {
  struct xfer x;
  memset(&x, 0, sizeof(x));
  for (int i = 0; i < 2; i++) {
    x.buf[i] = calloc(XFER_N, sizeof(void *));
    ck_assert_ptr_ne(x.buf[i], NULL);
  }
  pthread_barrier_init(&x.barrier, NULL, 2);
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  pthread_t t[2];
  struct xfer_arg args[2] = {{&x, 0}, {&x, 1}};
  for (int i = 0; i < 2; i++) fa_start_thread(&t[i], xfer_thread, &args[i]);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  ck_assert_msg(!fa_failed(&x.fail), "%s", x.fail.msg);
  fancy_stats_t s = fa_stats();
  ck_assert_msg(s.bytes_live == base.bytes_live, "bytes_live %zu after all "
                "blocks were freed by the other thread, was %zu",
                s.bytes_live, base.bytes_live);
  ck_assert_msg(s.threads == base.threads, "threads %zu after joining, was %zu",
                s.threads, base.threads);
  pthread_barrier_destroy(&x.barrier);
  free(x.buf[0]);
  free(x.buf[1]);
}
END_TEST

/* ------------------------------------------------------------------------
 * Many threads at once: random malloc/calloc/aligned/realloc/free on
 * private slots, and blocks swapped through a shared array so that many
 * are freed or resized by another thread than the one that made them.
 * ---------------------------------------------------------------------- */
#define MANY_THREADS 16
#define MANY_OPS 50000
#define MANY_SLOTS 256
#define SHARED_SLOTS 64

struct many {
  _Atomic(void *) shared[SHARED_SLOTS];
  fa_failure_t fail;
};

struct many_arg {
  struct many *m;
  int id;
};

static size_t stress_size(uint64_t *rng) {
  uint64_t r = fa_rand(rng);
  if (r % 4000 == 0) return 2 * FA_MIB + (r >> 16) % FA_MIB;   /* huge */
  if (r % 100 == 0) return 32 * FA_KIB + (r >> 16) % (512 * FA_KIB);
  if (r % 10 == 0) return 513 + (r >> 16) % 32256;
  return 16 + (r >> 16) % 497;
}

/* Checks block p of the slot (if any) and reports corruption. */
static int verify_or_fail(struct many_arg *a, void *p, const char *when) {
  size_t bad;
  if (p == NULL || fa_verify(p, &bad) != 0) return 1;
  fa_fail(&a->m->fail, "thread %d: block %p corrupt at byte %zu %s", a->id, p,
          bad, when);
  return 0;
}

static void *many_thread(void *argp) {
  struct many_arg *a = argp;
  void *slot[MANY_SLOTS] = {0};
  uint64_t rng = 0x9e3779b9ull * (uint64_t)(a->id + 1);
  for (int op = 0; op < MANY_OPS && !fa_failed(&a->m->fail); op++) {
    int i = (int)(fa_rand(&rng) % MANY_SLOTS);
    unsigned kind = (unsigned)(fa_rand(&rng) % 10);
    unsigned seed = (unsigned)(a->id * MANY_OPS + op);
    if (kind == 9) {  /* swap with the shared array */
      int k = (int)(fa_rand(&rng) % SHARED_SLOTS);
      void *got = atomic_exchange(&a->m->shared[k], slot[i]);
      slot[i] = got;
      if (!verify_or_fail(a, got, "taken from the shared array")) break;
      continue;
    }
    if (slot[i] == NULL) {
      size_t n = stress_size(&rng);
      void *p;
      if (kind < 5) {
        p = fancy_malloc(n);
      } else if (kind < 7) {
        p = fancy_calloc(1, n);
        if (p != NULL && fa_first_nonzero(p, n < 4096 ? n : 4096) != SIZE_MAX) {
          fa_fail(&a->m->fail, "thread %d: fancy_calloc(1, %zu) not zeroed",
                  a->id, n);
          break;
        }
      } else {
        p = fancy_aligned_alloc((size_t)16 << (fa_rand(&rng) % 9), n);
      }
      if (p == NULL) {
        fa_fail(&a->m->fail, "thread %d: allocation of %zu bytes (kind %u) "
                "returned NULL", a->id, n, kind);
        break;
      }
      fa_mark(p, n, seed);
      slot[i] = p;
    } else if (kind < 6) {
      if (!verify_or_fail(a, slot[i], "before its free")) break;
      fancy_free(slot[i]);
      slot[i] = NULL;
    } else {
      if (!verify_or_fail(a, slot[i], "before its realloc")) break;
      size_t old;
      memcpy(&old, slot[i], sizeof(old));
      size_t n = stress_size(&rng);
      void *q = fancy_realloc(slot[i], n);
      if (q == NULL) {
        fa_fail(&a->m->fail, "thread %d: fancy_realloc(.., %zu) returned NULL",
                a->id, n);
        break;
      }
      /* the kept prefix survived (checked through a fresh mark) */
      size_t keep = old < n ? old : n;
      size_t head = keep < 2048 ? keep : 2048;
      if (head > 16) {
        uint64_t h[2];
        memcpy(h, q, sizeof(h));
        unsigned s = (unsigned)(h[1] ^ (old * 0x9e3779b97f4a7c15ull) ^
                                FA_BLOCK_MAGIC);
        size_t bad = fa_check(q, 16, head, s);
        if (bad != SIZE_MAX) {
          fa_fail(&a->m->fail, "thread %d: fancy_realloc %zu -> %zu lost "
                  "byte %zu", a->id, old, n, bad);
          break;
        }
      }
      fa_mark(q, n, seed);
      slot[i] = q;
    }
  }
  for (int i = 0; i < MANY_SLOTS; i++) {
    if (slot[i] != NULL) verify_or_fail(a, slot[i], "at the end");
    fancy_free(slot[i]);
  }
  if (!fancy_validate_heap())
    fa_fail(&a->m->fail, "fancy_validate_heap() false in thread %d", a->id);
  return NULL;
}

START_TEST(test_many_threads) {
  struct many *m = calloc(1, sizeof(*m));
  ck_assert_ptr_ne(m, NULL);
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  pthread_t t[MANY_THREADS];
  struct many_arg args[MANY_THREADS];
  for (int i = 0; i < MANY_THREADS; i++) {
    args[i].m = m;
    args[i].id = i;
    fa_start_thread(&t[i], many_thread, &args[i]);
  }
  for (int i = 0; i < MANY_THREADS; i++) pthread_join(t[i], NULL);
  ck_assert_msg(!fa_failed(&m->fail), "%s", m->fail.msg);
  for (int k = 0; k < SHARED_SLOTS; k++) {
    void *p = atomic_load(&m->shared[k]);
    size_t bad;
    ck_assert_msg(p == NULL || fa_verify(p, &bad) != 0,
                  "shared block %p corrupt at byte %zu", p, bad);
    fancy_free(p);
  }
  fancy_stats_t s = fa_stats();
  ck_assert_msg(s.bytes_live == base.bytes_live, "bytes_live %zu after %d "
                "threads freed everything, was %zu", s.bytes_live,
                MANY_THREADS, base.bytes_live);
  ck_assert_msg(s.threads == base.threads, "threads %zu after joining, was %zu",
                s.threads, base.threads);
  free(m);
}
END_TEST

/* ------------------------------------------------------------------------
 * Thread churn: 2000 short-lived threads, 8 at a time; every 10th leaves
 * blocks behind for the main thread to free.
 * ---------------------------------------------------------------------- */
#define CHURN_THREADS 2000
#define CHURN_WAVE 8
#define CHURN_LEFT 8
/* 2000 threads x 4 MiB would be 8 GiB; even the 200 that leave blocks
 * behind would pin 800 MiB if exited threads' segments were never taken
 * over or released. */
#define CHURN_MAPPED_BOUND (512 * FA_MIB)

struct churn {
  void **left;  /* CHURN_THREADS * CHURN_LEFT */
  fa_failure_t fail;
};

struct churn_arg {
  struct churn *c;
  int id;
};

static void *churn_thread(void *argp) {
  struct churn_arg *a = argp;
  uint64_t rng = 77 + (uint64_t)a->id;
  void *p[50];
  for (int i = 0; i < 50; i++) {
    size_t n = fa_mixed_size(&rng);
    p[i] = fancy_malloc(n);
    if (p[i] == NULL) {
      fa_fail(&a->c->fail, "churn thread %d: fancy_malloc(%zu) returned NULL",
              a->id, n);
      return NULL;
    }
    fa_mark(p[i], n, (unsigned)(a->id * 64 + i));
  }
  int keep = (a->id % 10 == 0) ? CHURN_LEFT : 0;
  for (int i = 0; i < 50; i++) {
    size_t bad;
    if (fa_verify(p[i], &bad) == 0)
      fa_fail(&a->c->fail, "churn thread %d: block %d corrupt at byte %zu",
              a->id, i, bad);
    if (i < keep)
      a->c->left[a->id * CHURN_LEFT + i] = p[i];
    else
      fancy_free(p[i]);
  }
  return NULL;
}

START_TEST(test_thread_churn) {
  struct churn c;
  memset(&c, 0, sizeof(c));
  c.left = calloc(CHURN_THREADS * CHURN_LEFT, sizeof(void *));
  ck_assert_ptr_ne(c.left, NULL);
  struct churn_arg *args = calloc(CHURN_THREADS, sizeof(*args));
  ck_assert_ptr_ne(args, NULL);
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  size_t peak = 0;
  for (int w = 0; w < CHURN_THREADS; w += CHURN_WAVE) {
    pthread_t t[CHURN_WAVE];
    for (int i = 0; i < CHURN_WAVE; i++) {
      args[w + i].c = &c;
      args[w + i].id = w + i;
      fa_start_thread(&t[i], churn_thread, &args[w + i]);
    }
    for (int i = 0; i < CHURN_WAVE; i++) pthread_join(t[i], NULL);
    fancy_stats_t s = fa_stats();
    if (s.bytes_mapped > peak) peak = s.bytes_mapped;
  }
  ck_assert_msg(!fa_failed(&c.fail), "%s", c.fail.msg);
  fancy_stats_t s = fa_stats();
  ck_assert_msg(s.threads == base.threads, "threads %zu after joining %d "
                "threads, was %zu", s.threads, CHURN_THREADS, base.threads);
  ck_assert_msg(s.threads_created >= base.threads_created + CHURN_THREADS,
                "threads_created %zu, was %zu before %d threads",
                s.threads_created, base.threads_created, CHURN_THREADS);
  ck_assert_msg(s.bytes_live > base.bytes_live, "bytes_live %zu with the "
                "blocks exited threads left behind, was %zu", s.bytes_live,
                base.bytes_live);
  for (int i = 0; i < CHURN_THREADS * CHURN_LEFT; i++) {
    if (c.left[i] == NULL) continue;
    size_t bad;
    FA_REQUIRE(fa_verify(c.left[i], &bad) != 0, "block %d left by exited "
               "thread %d corrupt at byte %zu", i % CHURN_LEFT,
               i / CHURN_LEFT, bad);
    fancy_free(c.left[i]);
  }
  s = fa_stats();
  ck_assert_msg(s.bytes_live == base.bytes_live, "bytes_live %zu after the "
                "main thread freed the blocks of exited threads, was %zu",
                s.bytes_live, base.bytes_live);
  ck_assert_msg(peak <= base.bytes_mapped + CHURN_MAPPED_BOUND,
                "bytes_mapped peaked at %zu MiB during thread churn (from %zu "
                "MiB), above the bound of +%zu MiB: memory of exited threads "
                "is not reused", peak / FA_MIB, base.bytes_mapped / FA_MIB,
                CHURN_MAPPED_BOUND / FA_MIB);
  free(args);
  free(c.left);
}
END_TEST

/* ------------------------------------------------------------------------
 * Producer/consumer through a locked queue: 2 producers, 2 consumers.
 * ---------------------------------------------------------------------- */
#define PC_ITEMS 100000  /* per producer */
#define PC_QUEUE 1024

struct pcq {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  void *item[PC_QUEUE];
  int head, count;
  fa_failure_t fail;
};

static void pcq_put(struct pcq *q, void *p) {
  pthread_mutex_lock(&q->lock);
  while (q->count == PC_QUEUE) pthread_cond_wait(&q->not_full, &q->lock);
  q->item[(q->head + q->count) % PC_QUEUE] = p;
  q->count++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->lock);
}

static void *pcq_get(struct pcq *q) {
  pthread_mutex_lock(&q->lock);
  while (q->count == 0) pthread_cond_wait(&q->not_empty, &q->lock);
  void *p = q->item[q->head];
  q->head = (q->head + 1) % PC_QUEUE;
  q->count--;
  pthread_cond_signal(&q->not_full);
  pthread_mutex_unlock(&q->lock);
  return p;
}

struct pc_arg {
  struct pcq *q;
  int id;
};

static void *producer(void *argp) {
  struct pc_arg *a = argp;
  uint64_t rng = 4242 + (uint64_t)a->id;
  for (int i = 0; i < PC_ITEMS; i++) {
    size_t n = fa_mixed_size(&rng);
    void *p = fancy_malloc(n);
    if (p == NULL) {
      fa_fail(&a->q->fail, "producer %d: fancy_malloc(%zu) returned NULL",
              a->id, n);
      break;
    }
    fa_mark(p, n, (unsigned)i);
    pcq_put(a->q, p);
  }
  pcq_put(a->q, NULL);  /* one end marker per producer */
  return NULL;
}

static void *consumer(void *argp) {
  struct pc_arg *a = argp;
  void *p;
  while ((p = pcq_get(a->q)) != NULL) {
    size_t bad;
    if (fa_verify(p, &bad) == 0)
      fa_fail(&a->q->fail, "consumer %d: block %p corrupt at byte %zu", a->id,
              p, bad);
    fancy_free(p);
  }
  return NULL;
}

START_TEST(test_producer_consumer) {
  struct pcq *q = calloc(1, sizeof(*q));
  ck_assert_ptr_ne(q, NULL);
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  pthread_t t[4];
  struct pc_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i].q = q;
    args[i].id = i;
    fa_start_thread(&t[i], i < 2 ? producer : consumer, &args[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  ck_assert_msg(!fa_failed(&q->fail), "%s", q->fail.msg);
  ck_assert_int_eq(q->count, 0);
  fancy_stats_t s = fa_stats();
  ck_assert_msg(s.bytes_live == base.bytes_live, "bytes_live %zu after the "
                "consumers freed everything, was %zu", s.bytes_live,
                base.bytes_live);
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
  free(q);
}
END_TEST

/* ------------------------------------------------------------------------
 * The memory of an exited thread is reused: 20 times, a thread allocates
 * 8 MiB in small blocks and exits, and the main thread frees them all.
 * ---------------------------------------------------------------------- */
#define REUSE_ROUNDS 20
#define REUSE_BYTES (8 * FA_MIB)
/* 8 MiB of small blocks fill 2-3 segments of 4 MiB.  Allow three rounds'
 * worth plus slack; without reuse, 20 rounds would map 160-240 MiB. */
#define REUSE_MAPPED_BOUND (40 * FA_MIB)

struct reuse {
  void **p;
  size_t n;
  int round;
  fa_failure_t fail;
};

static void *reuse_thread(void *argp) {
  struct reuse *r = argp;
  uint64_t rng = 555 + (uint64_t)r->round;
  size_t total = 0;
  r->n = 0;
  while (total < REUSE_BYTES) {
    size_t n = 16 + fa_rand(&rng) % 1009;
    void *p = fancy_malloc(n);
    if (p == NULL) {
      fa_fail(&r->fail, "round %d: fancy_malloc(%zu) returned NULL", r->round,
              n);
      return NULL;
    }
    fa_mark(p, n, (unsigned)r->n);
    r->p[r->n++] = p;
    total += n;
  }
  return NULL;
}

START_TEST(test_exited_thread_memory_reused) {
  struct reuse r;
  memset(&r, 0, sizeof(r));
  r.p = malloc((REUSE_BYTES / 16 + 1) * sizeof(void *));
  ck_assert_ptr_ne(r.p, NULL);
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  size_t mapped[REUSE_ROUNDS];
  for (int round = 0; round < REUSE_ROUNDS; round++) {
    r.round = round;
    pthread_t t;
    fa_start_thread(&t, reuse_thread, &r);
    pthread_join(t, NULL);
    ck_assert_msg(!fa_failed(&r.fail), "%s", r.fail.msg);
    for (size_t i = 0; i < r.n; i++) {
      size_t bad;
      FA_REQUIRE(fa_verify(r.p[i], &bad) != 0, "round %d: block %zu of the "
                 "exited thread corrupt at byte %zu", round, i, bad);
      fancy_free(r.p[i]);
    }
    fancy_stats_t s = fa_stats();
    mapped[round] = s.bytes_mapped;
    ck_assert_msg(s.bytes_live == base.bytes_live, "round %d: bytes_live %zu "
                  "after freeing the exited thread's blocks, was %zu", round,
                  s.bytes_live, base.bytes_live);
    ck_assert_msg(s.bytes_mapped <= base.bytes_mapped + REUSE_MAPPED_BOUND,
                  "round %d: bytes_mapped %zu MiB, from %zu MiB before round "
                  "0 (round 0 ended at %zu MiB): above the bound of +%zu MiB, "
                  "the memory of exited threads is not reused", round,
                  s.bytes_mapped / FA_MIB, base.bytes_mapped / FA_MIB,
                  mapped[0] / FA_MIB, REUSE_MAPPED_BOUND / FA_MIB);
  }
  free(r.p);
}
END_TEST

Suite *make_threads_suite(void) {
  Suite *s = suite_create("threads");
  TCase *tc = fa_tcase("threads", FA_TIMEOUT_STRESS);
  tcase_add_test(tc, test_cross_thread_free);
  tcase_add_test(tc, test_many_threads);
  tcase_add_test(tc, test_thread_churn);
  tcase_add_test(tc, test_producer_consumer);
  tcase_add_test(tc, test_exited_thread_memory_reused);
  suite_add_tcase(s, tc);
  return s;
}
