/* SPDX-License-Identifier: MIT */
/*
 * check_realloc.c - fancy_realloc: contents kept across every size-class
 * boundary and block kind, the NULL and 0 cases, and failure.
 */
#define _GNU_SOURCE 1
#include "helpers.h"
#include "suites.h"

/* Resizes p (holding `old` pattern bytes with seed `seed`) to `n` bytes,
 * checks that min(old, n) bytes survived, and fills the rest. */
static void *resize_checked(void *p, size_t old, size_t n, unsigned seed) {
  void *q = fancy_realloc(p, n);
  FA_REQUIRE(q != NULL, "fancy_realloc(%p, %zu) from %zu bytes returned NULL",
             p, n, old);
  FA_REQUIRE(fa_is_aligned(q, 16), "fancy_realloc(.., %zu) = %p: not "
             "16-aligned", n, q);
  FA_REQUIRE(fancy_malloc_usable_size(q) >= n, "fancy_realloc(.., %zu): "
             "usable size %zu", n, fancy_malloc_usable_size(q));
  size_t keep = old < n ? old : n;
  size_t bad = fa_check(q, 0, keep, seed);
  FA_REQUIRE(bad == SIZE_MAX, "fancy_realloc %zu -> %zu bytes (%s): byte %zu "
             "of the %zu kept changed", old, n, q == p ? "in place" : "moved",
             bad, keep);
  if (n > old) fa_fill(q, old, n, seed);
  return q;
}

/* Grows byte by byte through 1..2048 (every small and the first medium
 * class boundaries), then in steps to 6 MiB (medium, large, huge), then
 * shrinks back the same way, checking the contents at every step.  A
 * neighbour block is allocated between steps so that in-place growth is
 * sometimes impossible. */
START_TEST(test_realloc_grow_shrink_all_classes) {
  const unsigned seed = 0x5a;
  size_t cur = 1;
  void *p = fancy_malloc(1);
  ck_assert_ptr_ne(p, NULL);
  fa_fill(p, 0, 1, seed);
  void *neighbours[64];
  int nn = 0;
  for (size_t n = 2; n <= 2048; n++) {
    p = resize_checked(p, cur, n, seed);
    cur = n;
    if (n % 37 == 0 && nn < 64) neighbours[nn++] = fancy_malloc(n);
  }
  size_t steps[64];
  int ns = 0;
  for (size_t n = 2048; n < 6 * FA_MIB; n += n / 3 + 16) steps[ns++] = n;
  steps[ns++] = 6 * FA_MIB;
  for (int i = 0; i < ns; i++) {
    p = resize_checked(p, cur, steps[i], seed);
    cur = steps[i];
  }
  for (int i = ns - 2; i >= 0; i--) {
    p = resize_checked(p, cur, steps[i], seed);
    cur = steps[i];
  }
  for (size_t n = 2047; n >= 1; n--) {
    p = resize_checked(p, cur, n, seed);
    cur = n;
  }
  fancy_free(p);
  for (int i = 0; i < nn; i++) fancy_free(neighbours[i]);
}
END_TEST

/* Every power-of-two boundary, both ways, from fresh blocks. */
START_TEST(test_realloc_boundaries) {
  for (int k = 4; k <= 23; k++) {
    size_t b = (size_t)1 << k;
    const size_t from[] = {b - 1, b, b + 1};
    const size_t to[] = {b / 2, b - 1, b + 1, 2 * b + 1, b / 3 + 1};
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 5; j++) {
        void *p = fancy_malloc(from[i]);
        FA_REQUIRE(p != NULL, "fancy_malloc(%zu) returned NULL", from[i]);
        fa_fill(p, 0, from[i], (unsigned)(i * 5 + j));
        p = resize_checked(p, from[i], to[j], (unsigned)(i * 5 + j));
        fancy_free(p);
      }
    }
  }
}
END_TEST

START_TEST(test_realloc_null_is_malloc) {
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  void *p = fancy_realloc(NULL, 100);
  ck_assert_ptr_ne(p, NULL);
  ck_assert_msg(fa_is_aligned(p, 16), "%p not 16-aligned", p);
  ck_assert_uint_ge(fancy_malloc_usable_size(p), 100);
  memset(p, 0x33, 100);
  ck_assert_uint_ge(fa_stats().bytes_live, base.bytes_live + 100);
  void *z1 = fancy_realloc(NULL, 0);
  void *z2 = fancy_realloc(NULL, 0);
  ck_assert_msg(z1 != NULL && z2 != NULL && z1 != z2,
                "fancy_realloc(NULL, 0) must act as fancy_malloc(0): unique "
                "non-NULL pointers, got %p and %p", z1, z2);
  void *h = fancy_realloc(NULL, 5 * FA_MIB);
  ck_assert_ptr_ne(h, NULL);
  memset(h, 0x44, 5 * FA_MIB);
  fancy_free(h);
  fancy_free(z1);
  fancy_free(z2);
  fancy_free(p);
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
}
END_TEST

/* realloc(p, 0) frees p: the live byte count falls back. */
START_TEST(test_realloc_zero_frees) {
  const size_t sizes[] = {1, 100, 4000, 100000, 3 * FA_MIB};
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    void *p = fancy_malloc(sizes[i]);
    ck_assert_ptr_ne(p, NULL);
    ck_assert_uint_gt(fa_stats().bytes_live, base.bytes_live);
    void *q = fancy_realloc(p, 0);
    ck_assert_msg(q == NULL, "fancy_realloc(p, 0) returned %p, expected NULL",
                  q);
    fancy_stats_t s = fa_stats();
    ck_assert_msg(s.bytes_live == base.bytes_live,
                  "fancy_realloc(p of %zu bytes, 0): bytes_live %zu, was %zu "
                  "before the allocation: the block was not freed",
                  sizes[i], s.bytes_live, base.bytes_live);
  }
}
END_TEST

/* On failure the old block is left intact and can still be freed. */
START_TEST(test_realloc_too_big_keeps_block) {
  const size_t sizes[] = {24, 3000, 100000, FA_MIB, 3 * FA_MIB};
  const size_t bad_sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1,
                              (size_t)1 << 62};
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    void *p = fancy_malloc(sizes[i]);
    ck_assert_ptr_ne(p, NULL);
    fa_fill(p, 0, sizes[i], (unsigned)i);
    for (size_t j = 0; j < sizeof(bad_sizes) / sizeof(bad_sizes[0]); j++) {
      errno = 0;
      void *q = fancy_realloc(p, bad_sizes[j]);
      ck_assert_msg(q == NULL, "fancy_realloc(%zu-byte block, %#zx) returned "
                    "%p, expected NULL", sizes[i], bad_sizes[j], q);
      ck_assert_msg(errno == ENOMEM, "fancy_realloc(.., %#zx): errno %d, "
                    "expected ENOMEM", bad_sizes[j], errno);
      size_t bad = fa_check(p, 0, sizes[i], (unsigned)i);
      ck_assert_msg(bad == SIZE_MAX, "failed fancy_realloc(%zu-byte block, "
                    "%#zx) changed byte %zu of the old block", sizes[i],
                    bad_sizes[j], bad);
      ck_assert_uint_ge(fancy_malloc_usable_size(p), sizes[i]);
    }
    /* still resizable, then freeable */
    p = resize_checked(p, sizes[i], sizes[i] + 1000, (unsigned)i);
    fancy_free(p);
  }
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
}
END_TEST

/* Huge blocks (mapped on their own) keep their contents when they grow,
 * shrink, and move between the huge and segment worlds. */
START_TEST(test_realloc_huge) {
  const size_t chain[] = {3 * FA_MIB, 64 * FA_MIB, 5 * FA_MIB, 5 * FA_MIB + 1,
                          2 * FA_MIB + 1, 100 * FA_KIB, 100, 9 * FA_MIB};
  const unsigned seed = 0xc3;
  void *p = fancy_malloc(chain[0]);
  ck_assert_ptr_ne(p, NULL);
  fa_fill(p, 0, chain[0], seed);
  size_t cur = chain[0];
  for (size_t i = 1; i < sizeof(chain) / sizeof(chain[0]); i++) {
    p = resize_checked(p, cur, chain[i], seed);
    cur = chain[i];
  }
  fancy_free(p);

  /* growth of a huge block while another huge block sits right after it */
  void *a = fancy_malloc(4 * FA_MIB);
  void *b = fancy_malloc(4 * FA_MIB);
  ck_assert_ptr_ne(a, NULL);
  ck_assert_ptr_ne(b, NULL);
  fa_fill(a, 0, 4 * FA_MIB, 1);
  fa_fill(b, 0, 4 * FA_MIB, 2);
  a = resize_checked(a, 4 * FA_MIB, 20 * FA_MIB, 1);
  size_t bad = fa_check(b, 0, 4 * FA_MIB, 2);
  ck_assert_msg(bad == SIZE_MAX, "growing a huge block to 20 MiB changed "
                "byte %zu of the neighbouring huge block", bad);
  fancy_free(a);
  fancy_free(b);
}
END_TEST

/* Blocks from the aligned calls can be resized like any other. */
START_TEST(test_realloc_aligned_blocks) {
  const size_t aligns[] = {16, 64, 4096, 65536, FA_MIB, 4 * FA_MIB};
  const size_t sizes[] = {10, 1000, 100000, 3 * FA_MIB};
  for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
      unsigned seed = (unsigned)(a * 16 + s);
      void *p = fancy_aligned_alloc(aligns[a], sizes[s]);
      ck_assert_msg(p != NULL, "fancy_aligned_alloc(%zu, %zu) returned NULL",
                    aligns[a], sizes[s]);
      fa_fill(p, 0, sizes[s], seed);
      size_t cur = sizes[s];
      const size_t to[] = {cur * 3 + 7, cur / 2 + 1, 2 * FA_MIB + 5, 17};
      for (int t = 0; t < 4; t++) {
        p = resize_checked(p, cur, to[t], seed);
        cur = to[t];
      }
      fancy_free(p);

      void *m = NULL;
      ck_assert_int_eq(fancy_posix_memalign(&m, aligns[a], sizes[s]), 0);
      fa_fill(m, 0, sizes[s], seed);
      m = resize_checked(m, sizes[s], sizes[s] * 2 + 1, seed);
      m = resize_checked(m, sizes[s] * 2 + 1, sizes[s] / 4 + 1, seed);
      fancy_free(m);
    }
  }
}
END_TEST

/* Resizing to the size it already has, or within the usable size, keeps
 * the contents (and the block stays valid). */
START_TEST(test_realloc_same_and_usable) {
  const size_t sizes[] = {1, 17, 500, 5000, 50000, 500000, 3 * FA_MIB};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    void *p = fancy_malloc(sizes[i]);
    ck_assert_ptr_ne(p, NULL);
    size_t usable = fancy_malloc_usable_size(p);
    fa_fill(p, 0, usable, (unsigned)i);
    p = resize_checked(p, usable, sizes[i], (unsigned)i);
    fa_fill(p, 0, fancy_malloc_usable_size(p), (unsigned)i);
    usable = fancy_malloc_usable_size(p);
    p = resize_checked(p, usable, usable, (unsigned)i);
    fancy_free(p);
  }
}
END_TEST

/* Random resizes of many live blocks; live bytes back to baseline. */
START_TEST(test_realloc_random) {
  enum { SLOTS = 512, OPS = 60000 };
  void *p[SLOTS] = {0};
  size_t sz[SLOTS] = {0};
  uint64_t rng = 1234;
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  for (int op = 0; op < OPS; op++) {
    int i = (int)(fa_rand(&rng) % SLOTS);
    uint64_t r = fa_rand(&rng);
    size_t n = (r % 16 == 0) ? r % (600 * FA_KIB) : r % 3000;
    if (r % 1000 == 0) n = 2 * FA_MIB + r % FA_MIB;
    if (p[i] == NULL) {
      p[i] = fancy_realloc(NULL, n);
      FA_REQUIRE(p[i] != NULL, "fancy_realloc(NULL, %zu) returned NULL", n);
      fa_fill(p[i], 0, n, (unsigned)i);
      sz[i] = n;
    } else if (n == 0) {
      size_t bad = fa_check(p[i], 0, sz[i], (unsigned)i);
      FA_REQUIRE(bad == SIZE_MAX, "slot %d: byte %zu of %zu changed", i, bad,
                 sz[i]);
      void *q = fancy_realloc(p[i], 0);
      FA_REQUIRE(q == NULL, "fancy_realloc(p, 0) returned %p", q);
      p[i] = NULL;
    } else {
      p[i] = resize_checked(p[i], sz[i], n, (unsigned)i);
      sz[i] = n;
    }
  }
  for (int i = 0; i < SLOTS; i++) {
    if (p[i] == NULL) continue;
    size_t bad = fa_check(p[i], 0, sz[i], (unsigned)i);
    FA_REQUIRE(bad == SIZE_MAX, "slot %d: byte %zu of %zu changed", i, bad,
               sz[i]);
    fancy_free(p[i]);
  }
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
}
END_TEST

Suite *make_realloc_suite(void) {
  Suite *s = suite_create("realloc");
  TCase *tc = fa_tcase("contents", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_realloc_grow_shrink_all_classes);
  tcase_add_test(tc, test_realloc_boundaries);
  tcase_add_test(tc, test_realloc_huge);
  tcase_add_test(tc, test_realloc_aligned_blocks);
  tcase_add_test(tc, test_realloc_same_and_usable);
  tcase_add_test(tc, test_realloc_random);
  suite_add_tcase(s, tc);

  tc = fa_tcase("edge", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_realloc_null_is_malloc);
  tcase_add_test(tc, test_realloc_zero_frees);
  tcase_add_test(tc, test_realloc_too_big_keeps_block);
  suite_add_tcase(s, tc);
  return s;
}
