/* SPDX-License-Identifier: MIT */
/*
 * check_stats.c - fancy_stats_get, fancy_print_stats, fancy_check_leaks,
 * fancy_validate_heap.
 *
 * Each test runs in a fresh child process of the runner, which itself
 * never calls the allocator, so a test sees only its own blocks.
 */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <pthread.h>

#include "helpers.h"
#include "suites.h"

START_TEST(test_stats_null) {
  errno = 0;
  ck_assert_int_eq(fancy_stats_get(NULL, sizeof(fancy_stats_t)), -1);
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_int_eq(fancy_stats_get(NULL, 0), -1);
  ck_assert_int_eq(errno, EINVAL);
  fancy_stats_t s;
  ck_assert_int_eq(fancy_stats_get(&s, sizeof(s)), 0);
}
END_TEST

/* bytes_live rises by at least N * size and falls back exactly. */
START_TEST(test_stats_bytes_live) {
  const size_t sizes[] = {1, 16, 100, 512, 5000, 32768, 100000, FA_MIB,
                          3 * FA_MIB};
  enum { N = 64 };
  fa_touch_heap();
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    fancy_stats_t base = fa_stats();
    void *p[N];
    for (int j = 0; j < N; j++) {
      p[j] = fancy_malloc(sizes[i]);
      ck_assert_ptr_ne(p[j], NULL);
    }
    fancy_stats_t s = fa_stats();
    ck_assert_msg(s.bytes_live >= base.bytes_live + N * sizes[i],
                  "%d blocks of %zu bytes: bytes_live %zu -> %zu, expected a "
                  "rise of at least %zu", N, sizes[i], base.bytes_live,
                  s.bytes_live, N * sizes[i]);
    ck_assert_msg(s.bytes_mapped >= s.bytes_live, "bytes_mapped %zu < "
                  "bytes_live %zu", s.bytes_mapped, s.bytes_live);
    ck_assert_msg(s.bytes_mapped >= s.bytes_committed, "bytes_mapped %zu < "
                  "bytes_committed %zu", s.bytes_mapped, s.bytes_committed);
    ck_assert_uint_gt(s.mmap_calls, 0);
    ck_assert_uint_ge(s.threads, 1);
    ck_assert_uint_ge(s.threads_created, 1);
    for (int j = 0; j < N; j++) fancy_free(p[j]);
    s = fa_stats();
    ck_assert_msg(s.bytes_live == base.bytes_live,
                  "after freeing the %d blocks of %zu bytes: bytes_live %zu, "
                  "expected %zu", N, sizes[i], s.bytes_live, base.bytes_live);
  }
}
END_TEST

/* Small blocks are counted per class, at the class's block size. */
START_TEST(test_stats_classes) {
  fa_touch_heap();
  fancy_stats_t s = fa_stats();
  ck_assert_msg(s.num_classes > 16 && s.num_classes <= FANCY_STATS_MAX_CLASSES,
                "num_classes = %zu", s.num_classes);
  ck_assert_uint_eq(s.classes[0].block_size, 16);
  ck_assert_uint_eq(s.classes[15].block_size, 512);
  for (size_t i = 1; i < s.num_classes; i++)
    ck_assert_msg(s.classes[i].block_size > s.classes[i - 1].block_size &&
                  s.classes[i].block_size % 16 == 0,
                  "classes[%zu].block_size = %zu after %zu", i,
                  s.classes[i].block_size, s.classes[i - 1].block_size);
  for (size_t i = s.num_classes; i < FANCY_STATS_MAX_CLASSES; i++)
    ck_assert_msg(s.classes[i].block_size == 0 &&
                  s.classes[i].blocks_live == 0 && s.classes[i].pages == 0,
                  "classes[%zu], past num_classes = %zu, is not zero", i,
                  s.num_classes);

  const size_t sizes[] = {1, 16, 17, 100, 500, 512, 513, 3000};
  enum { N = 100 };
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    size_t n = sizes[k];
    fancy_stats_t before = fa_stats();
    void *p[N];
    for (int j = 0; j < N; j++) p[j] = fancy_malloc(n);
    fancy_stats_t after = fa_stats();
    /* the N blocks went to classes whose blocks hold n bytes, and the
     * live bytes count them at block size */
    size_t blocks = 0, bytes = 0, cls = SIZE_MAX;
    for (size_t i = 0; i < after.num_classes; i++) {
      size_t d = after.classes[i].blocks_live - before.classes[i].blocks_live;
      if (d == 0) continue;
      ck_assert_msg(after.classes[i].block_size >= n, "%zu-byte blocks were "
                    "counted in class %zu of %zu-byte blocks", n, i,
                    after.classes[i].block_size);
      ck_assert_msg(after.classes[i].pages > 0, "class %zu has %zu live "
                    "blocks but no pages", i, after.classes[i].blocks_live);
      blocks += d;
      bytes += d * after.classes[i].block_size;
      cls = i;
    }
    ck_assert_msg(blocks == N, "%d blocks of %zu bytes: classes' blocks_live "
                  "rose by %zu", N, n, blocks);
    ck_assert_msg(after.bytes_live - before.bytes_live == bytes,
                  "%d blocks of %zu bytes in class %zu: bytes_live rose by "
                  "%zu, the classes account for %zu", N, n, cls,
                  after.bytes_live - before.bytes_live, bytes);
    for (int j = 0; j < N; j++) fancy_free(p[j]);
    fancy_stats_t end = fa_stats();
    for (size_t i = 0; i < end.num_classes; i++)
      ck_assert_msg(end.classes[i].blocks_live == before.classes[i].blocks_live,
                    "class %zu: blocks_live %zu after freeing, was %zu", i,
                    end.classes[i].blocks_live, before.classes[i].blocks_live);
  }
}
END_TEST

START_TEST(test_stats_huge) {
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  void *p = fancy_malloc(16 * FA_MIB);
  ck_assert_ptr_ne(p, NULL);
  memset(p, 0x5a, 16 * FA_MIB);
  fancy_stats_t s = fa_stats();
  ck_assert_msg(s.huge_blocks == base.huge_blocks + 1,
                "huge_blocks %zu -> %zu after a 16 MiB block",
                base.huge_blocks, s.huge_blocks);
  ck_assert_msg(s.bytes_huge >= base.bytes_huge + 16 * FA_MIB,
                "bytes_huge %zu -> %zu after a 16 MiB block", base.bytes_huge,
                s.bytes_huge);
  ck_assert_msg(s.bytes_live >= base.bytes_live + 16 * FA_MIB,
                "bytes_live %zu -> %zu after a 16 MiB block", base.bytes_live,
                s.bytes_live);
  ck_assert_uint_ge(s.bytes_live, s.bytes_huge);
  ck_assert_uint_ge(s.bytes_mapped, base.bytes_mapped + 16 * FA_MIB);
  void *q = fancy_malloc(20 * FA_MIB);
  ck_assert_ptr_ne(q, NULL);
  ck_assert_uint_eq(fa_stats().huge_blocks, base.huge_blocks + 2);
  fancy_free(q);
  fancy_free(p);
  s = fa_stats();
  ck_assert_uint_eq(s.huge_blocks, base.huge_blocks);
  ck_assert_uint_eq(s.bytes_huge, base.bytes_huge);
  ck_assert_uint_eq(s.bytes_live, base.bytes_live);
}
END_TEST

/* With a smaller size, only that many bytes are written. */
START_TEST(test_stats_partial_size) {
  const size_t cuts[] = {0, 1, sizeof(size_t), offsetof(fancy_stats_t, bytes_huge),
                         offsetof(fancy_stats_t, threads) + 3,
                         offsetof(fancy_stats_t, classes),
                         sizeof(fancy_stats_t) - 1};
  void *p = fancy_malloc(100);  /* so that bytes_live is not 0 */
  ck_assert_ptr_ne(p, NULL);
  fancy_stats_t full = fa_stats();
  for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
    union {
      fancy_stats_t stats;
      unsigned char bytes[sizeof(fancy_stats_t) + 64];
    } u;
    unsigned char *buf = u.bytes;
    memset(buf, 0xa5, sizeof(u.bytes));
    ck_assert_int_eq(fancy_stats_get(&u.stats, cuts[i]), 0);
    for (size_t j = cuts[i]; j < sizeof(u.bytes); j++)
      FA_REQUIRE(buf[j] == 0xa5, "fancy_stats_get(.., %zu) wrote byte %zu",
                 cuts[i], j);
    /* what was written is the start of the real structure */
    if (cuts[i] >= sizeof(size_t)) {
      size_t live;
      memcpy(&live, buf, sizeof(live));
      ck_assert_uint_eq(live, full.bytes_live);
    }
  }
  fancy_free(p);
}
END_TEST

START_TEST(test_stats_memory_limit_default) {
  if (getenv("FANCY_MEMORY_LIMIT") != NULL) return;  /* set by the caller */
  ck_assert_uint_eq(fa_stats().memory_limit, 0);
}
END_TEST

/* A thread's heap shows in threads/threads_created while it lives. */
struct thread_sync {
  pthread_barrier_t started, stop;
};

static void *heap_thread(void *arg) {
  struct thread_sync *ts = arg;
  void *p = fancy_malloc(64);
  pthread_barrier_wait(&ts->started);
  pthread_barrier_wait(&ts->stop);
  fancy_free(p);
  return NULL;
}

START_TEST(test_stats_threads) {
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  struct thread_sync ts;
  pthread_barrier_init(&ts.started, NULL, 3);
  pthread_barrier_init(&ts.stop, NULL, 3);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, heap_thread, &ts), 0);
  pthread_barrier_wait(&ts.started);
  fancy_stats_t s = fa_stats();
  ck_assert_msg(s.threads == base.threads + 2, "threads %zu with 2 more "
                "threads allocating, was %zu", s.threads, base.threads);
  ck_assert_uint_ge(s.threads_created, base.threads_created + 2);
  pthread_barrier_wait(&ts.stop);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  s = fa_stats();
  ck_assert_msg(s.threads == base.threads, "threads %zu after joining, was %zu",
                s.threads, base.threads);
  ck_assert_uint_eq(s.bytes_live, base.bytes_live);
  pthread_barrier_destroy(&ts.started);
  pthread_barrier_destroy(&ts.stop);
}
END_TEST

static int has_digit(const char *s) {
  for (; *s; s++)
    if (isdigit((unsigned char)*s)) return 1;
  return 0;
}

START_TEST(test_print_stats) {
  void *p = fancy_malloc(1000);
  void *h = fancy_malloc(5 * FA_MIB);
  ck_assert_ptr_ne(p, NULL);
  ck_assert_ptr_ne(h, NULL);
  FILE *f = tmpfile();
  ck_assert_ptr_ne(f, NULL);
  fancy_print_stats(f);
  fflush(f);
  long n = ftell(f);
  ck_assert_msg(n > 0, "fancy_print_stats(file) wrote nothing");
  char *text = calloc(1, (size_t)n + 1);
  rewind(f);
  ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
  ck_assert_msg(has_digit(text), "fancy_print_stats printed no figure: %s",
                text);
  free(text);
  fclose(f);

  /* NULL: stderr */
  fa_capture_t c;
  fa_capture_begin(&c);
  fancy_print_stats(NULL);
  text = fa_capture_end(&c);
  ck_assert_msg(strlen(text) > 0, "fancy_print_stats(NULL) wrote nothing to "
                "stderr");
  free(text);
  fancy_free(h);
  fancy_free(p);
}
END_TEST

START_TEST(test_check_leaks) {
  fancy_stats_t s = fa_stats();
  fa_capture_t c;
  char *text;
  if (s.bytes_live == 0) {  /* nothing allocated yet in this process */
    fa_capture_begin(&c);
    bool leaks = fancy_check_leaks();
    text = fa_capture_end(&c);
    ck_assert_msg(!leaks, "fancy_check_leaks() is true with no block live: %s",
                  text);
    free(text);
  }
  void *p = fancy_malloc(48);
  void *h = fancy_malloc(3 * FA_MIB);
  ck_assert_ptr_ne(p, NULL);
  fa_capture_begin(&c);
  bool leaks = fancy_check_leaks();
  text = fa_capture_end(&c);
  ck_assert_msg(leaks, "fancy_check_leaks() is false with blocks live");
  ck_assert_msg(strlen(text) > 0, "fancy_check_leaks() reported nothing on "
                "stderr with a live 48-byte block");
  free(text);
  fancy_free(p);
  fancy_free(h);
  if (s.bytes_live == 0) {
    fa_capture_begin(&c);
    leaks = fancy_check_leaks();
    text = fa_capture_end(&c);
    ck_assert_msg(!leaks, "fancy_check_leaks() still true after freeing "
                  "everything: %s", text);
    free(text);
  }
}
END_TEST

/* A random workload of all block kinds; the heap validates throughout. */
START_TEST(test_validate_heap_workload) {
  enum { SLOTS = 2000, OPS = 100000 };
  void **p = calloc(SLOTS, sizeof(*p));
  ck_assert_ptr_ne(p, NULL);
  uint64_t rng = 77;
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  for (int op = 0; op < OPS; op++) {
    int i = (int)(fa_rand(&rng) % SLOTS);
    uint64_t r = fa_rand(&rng);
    if (p[i] != NULL) {
      fancy_free(p[i]);
      p[i] = NULL;
    } else {
      size_t n = (r % 500 == 0) ? 2 * FA_MIB + r % (3 * FA_MIB)
               : (r % 20 == 0) ? 32 * FA_KIB + r % (512 * FA_KIB)
               : r % 1024;
      p[i] = (r & 0x100) ? fancy_malloc(n)
                         : fancy_aligned_alloc((size_t)1 << ((r >> 12) % 13), n);
      FA_REQUIRE(p[i] != NULL, "allocation of %zu bytes failed", n);
    }
    if (op % 10000 == 0)
      FA_REQUIRE(fancy_validate_heap(), "fancy_validate_heap() false after "
                 "%d operations", op);
  }
  for (int i = 0; i < SLOTS; i++) fancy_free(p[i]);
  free(p);
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
  ck_assert(fancy_validate_heap());
}
END_TEST

Suite *make_stats_suite(void) {
  Suite *s = suite_create("stats");
  TCase *tc = fa_tcase("stats_get", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_stats_null);
  tcase_add_test(tc, test_stats_bytes_live);
  tcase_add_test(tc, test_stats_classes);
  tcase_add_test(tc, test_stats_huge);
  tcase_add_test(tc, test_stats_partial_size);
  tcase_add_test(tc, test_stats_memory_limit_default);
  tcase_add_test(tc, test_stats_threads);
  suite_add_tcase(s, tc);

  tc = fa_tcase("diagnostics", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_print_stats);
  tcase_add_test(tc, test_check_leaks);
  tcase_add_test(tc, test_validate_heap_workload);
  suite_add_tcase(s, tc);
  return s;
}
