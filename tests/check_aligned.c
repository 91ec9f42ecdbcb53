/* SPDX-License-Identifier: MIT */
/*
 * check_aligned.c - fancy_aligned_alloc and fancy_posix_memalign.
 */
#define _GNU_SOURCE 1
#include "helpers.h"
#include "suites.h"

#define MAX_ALIGN_SHIFT 22 /* 4 MiB, one segment */

/* The sizes tried for each alignment a: below, at and above a, and some
 * unrelated ones (any size is accepted). */
static size_t size_for(size_t a, int i) {
  switch (i) {
  case 0: return 1;
  case 1: return a > 1 ? a - 1 : 1;
  case 2: return a;
  case 3: return a + 1;
  case 4: return 3 * a;
  case 5: return 100;
  case 6: return 5000;
  default: return 40000;
  }
}
#define NSIZES 8

/* Checks a block from an aligned call: alignment, usable size, writable,
 * and that it did not overlap the other blocks still live. */
static void check_aligned_block(const char *fn, void *p, size_t a, size_t n,
                                unsigned seed) {
  FA_REQUIRE(p != NULL, "%s(%zu, %zu) returned NULL", fn, a, n);
  FA_REQUIRE(fa_is_aligned(p, a), "%s(%zu, %zu) = %p: not %zu-aligned", fn, a,
             n, p, a);
  FA_REQUIRE(fa_is_aligned(p, 16), "%s(%zu, %zu) = %p: not 16-aligned", fn, a,
             n, p);
  size_t usable = fancy_malloc_usable_size(p);
  FA_REQUIRE(usable >= n, "%s(%zu, %zu): usable size %zu", fn, a, n, usable);
  fa_fill(p, 0, usable, seed);
}

START_TEST(test_aligned_alloc_every_power) {
  for (int k = 0; k <= MAX_ALIGN_SHIFT; k++) {
    size_t a = (size_t)1 << k;
    void *p[NSIZES];
    for (int i = 0; i < NSIZES; i++) {
      size_t n = size_for(a, i);
      errno = 0;
      p[i] = fancy_aligned_alloc(a, n);
      check_aligned_block("fancy_aligned_alloc", p[i], a, n,
                          (unsigned)(k * NSIZES + i));
    }
    for (int i = 0; i < NSIZES; i++) {
      size_t bad = fa_check(p[i], 0, fancy_malloc_usable_size(p[i]),
                            (unsigned)(k * NSIZES + i));
      FA_REQUIRE(bad == SIZE_MAX, "fancy_aligned_alloc(%zu, %zu): byte %zu "
                 "overwritten by a later block", a, size_for(a, i), bad);
    }
    for (int i = 0; i < NSIZES; i++) fancy_free(p[i]);
  }
}
END_TEST

/* Interleaved with plain blocks, many live at once, random order free. */
START_TEST(test_aligned_alloc_mixed) {
  enum { N = 4000 };
  void **p = malloc(N * sizeof(*p));
  size_t *sz = malloc(N * sizeof(*sz));
  ck_assert_ptr_ne(p, NULL);
  ck_assert_ptr_ne(sz, NULL);
  uint64_t rng = 99;
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  for (int i = 0; i < N; i++) {
    uint64_t r = fa_rand(&rng);
    size_t a = (size_t)1 << (r % 17);  /* up to 64 KiB */
    sz[i] = 1 + (r >> 8) % 3000;
    if (i % 3 == 0) {
      p[i] = fancy_malloc(sz[i]);
      check_aligned_block("fancy_malloc", p[i], 16, sz[i], (unsigned)i);
    } else {
      p[i] = fancy_aligned_alloc(a, sz[i]);
      check_aligned_block("fancy_aligned_alloc", p[i], a, sz[i], (unsigned)i);
    }
  }
  for (int i = 0; i < N; i++) {
    size_t bad = fa_check(p[i], 0, sz[i], (unsigned)i);
    FA_REQUIRE(bad == SIZE_MAX, "block %d (%zu bytes): byte %zu overwritten",
               i, sz[i], bad);
  }
  for (int i = N - 1; i > 0; i--) {
    int j = (int)(fa_rand(&rng) % (uint64_t)(i + 1));
    void *t = p[i]; p[i] = p[j]; p[j] = t;
  }
  for (int i = 0; i < N; i++) fancy_free(p[i]);
  free(p);
  free(sz);
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
}
END_TEST

START_TEST(test_aligned_alloc_size_zero) {
  void *a = fancy_aligned_alloc(64, 0);
  void *b = fancy_aligned_alloc(64, 0);
  ck_assert_msg(a != NULL && b != NULL && a != b,
                "fancy_aligned_alloc(64, 0) must give unique pointers as "
                "fancy_malloc(0) does: %p %p", a, b);
  ck_assert_msg(fa_is_aligned(a, 64) && fa_is_aligned(b, 64),
                "fancy_aligned_alloc(64, 0): %p %p not 64-aligned", a, b);
  fancy_free(a);
  fancy_free(b);
}
END_TEST

/* Alignments above the 4 MiB segment are powers of two too. */
START_TEST(test_aligned_alloc_beyond_segment) {
  const size_t aligns[] = {8 * FA_MIB, 16 * FA_MIB};
  for (int i = 0; i < 2; i++) {
    void *p = fancy_aligned_alloc(aligns[i], 100);
    ck_assert_msg(p != NULL, "fancy_aligned_alloc(%zu, 100) returned NULL",
                  aligns[i]);
    ck_assert_msg(fa_is_aligned(p, aligns[i]), "fancy_aligned_alloc(%zu, 100)"
                  " = %p", aligns[i], p);
    memset(p, 1, 100);
    void *q = fancy_aligned_alloc(aligns[i], 9 * FA_MIB);
    ck_assert_msg(q != NULL && fa_is_aligned(q, aligns[i]),
                  "fancy_aligned_alloc(%zu, 9 MiB) = %p", aligns[i], q);
    memset(q, 2, 9 * FA_MIB);
    fancy_free(p);
    fancy_free(q);
  }
}
END_TEST

START_TEST(test_aligned_alloc_einval) {
  const size_t bad[] = {0, 3, 24, 48, 5, 6, 12, 100, 4097, ((size_t)1 << 22) + 16,
                        SIZE_MAX, SIZE_MAX / 2};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errno = 0;
    void *p = fancy_aligned_alloc(bad[i], 64);
    ck_assert_msg(p == NULL, "fancy_aligned_alloc(%zu, 64) returned %p, "
                  "expected NULL", bad[i], p);
    ck_assert_msg(errno == EINVAL, "fancy_aligned_alloc(%zu, 64): errno %d, "
                  "expected EINVAL", bad[i], errno);
  }
}
END_TEST

START_TEST(test_aligned_alloc_enomem) {
  const size_t cases[][2] = {
    {64, SIZE_MAX}, {4096, SIZE_MAX - 100}, {FA_MIB, SIZE_MAX - FA_MIB / 2},
    {4 * FA_MIB, SIZE_MAX - FA_MIB}, {16, (size_t)PTRDIFF_MAX + 1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    errno = 0;
    void *p = fancy_aligned_alloc(cases[i][0], cases[i][1]);
    ck_assert_msg(p == NULL, "fancy_aligned_alloc(%zu, %#zx) returned %p",
                  cases[i][0], cases[i][1], p);
    ck_assert_msg(errno == ENOMEM, "fancy_aligned_alloc(%zu, %#zx): errno %d, "
                  "expected ENOMEM", cases[i][0], cases[i][1], errno);
  }
}
END_TEST

/* ------------------------------------------------------------------------
 * fancy_posix_memalign
 * ---------------------------------------------------------------------- */
START_TEST(test_posix_memalign_einval) {
  const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, SIZE_MAX};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    void *sentinel = (void *)(uintptr_t)0xdeadbeef;
    void *m = sentinel;
    errno = 4242;
    int r = fancy_posix_memalign(&m, bad[i], 64);
    ck_assert_msg(r == EINVAL, "fancy_posix_memalign(.., %zu, 64) returned %d,"
                  " expected EINVAL (%d)", bad[i], r, EINVAL);
    ck_assert_msg(m == sentinel, "fancy_posix_memalign(.., %zu, 64) failed "
                  "but wrote *memptr = %p", bad[i], m);
    ck_assert_msg(errno == 4242, "fancy_posix_memalign(.., %zu, 64) changed "
                  "errno to %d", bad[i], errno);
  }
}
END_TEST

START_TEST(test_posix_memalign_enomem) {
  const size_t cases[][2] = {
    {8, SIZE_MAX}, {64, SIZE_MAX - 63}, {4096, (size_t)PTRDIFF_MAX + 1},
    {FA_MIB, SIZE_MAX - FA_MIB},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    void *sentinel = (void *)(uintptr_t)0xfeedf00d;
    void *m = sentinel;
    errno = 4343;
    int r = fancy_posix_memalign(&m, cases[i][0], cases[i][1]);
    ck_assert_msg(r == ENOMEM, "fancy_posix_memalign(.., %zu, %#zx) returned "
                  "%d, expected ENOMEM", cases[i][0], cases[i][1], r);
    ck_assert_msg(m == sentinel, "failed fancy_posix_memalign wrote *memptr");
    ck_assert_msg(errno == 4343, "fancy_posix_memalign(.., %zu, %#zx) changed "
                  "errno to %d", cases[i][0], cases[i][1], errno);
  }
}
END_TEST

START_TEST(test_posix_memalign_every_power) {
  for (int k = 3; k <= MAX_ALIGN_SHIFT; k++) {
    size_t a = (size_t)1 << k;
    void *p[NSIZES];
    for (int i = 0; i < NSIZES; i++) {
      size_t n = size_for(a, i);
      p[i] = NULL;
      errno = 4444;
      int r = fancy_posix_memalign(&p[i], a, n);
      FA_REQUIRE(r == 0, "fancy_posix_memalign(.., %zu, %zu) returned %d", a,
                 n, r);
      FA_REQUIRE(errno == 4444, "successful fancy_posix_memalign(.., %zu, %zu) "
                 "changed errno to %d", a, n, errno);
      check_aligned_block("fancy_posix_memalign", p[i], a, n,
                          (unsigned)(k * NSIZES + i));
    }
    for (int i = 0; i < NSIZES; i++) {
      size_t bad = fa_check(p[i], 0, fancy_malloc_usable_size(p[i]),
                            (unsigned)(k * NSIZES + i));
      FA_REQUIRE(bad == SIZE_MAX, "fancy_posix_memalign(.., %zu, %zu): byte "
                 "%zu overwritten by a later block", a, size_for(a, i), bad);
    }
    for (int i = 0; i < NSIZES; i++) fancy_free(p[i]);
  }
  /* size 0 succeeds with a freeable pointer */
  void *z = (void *)(uintptr_t)1;
  ck_assert_int_eq(fancy_posix_memalign(&z, 64, 0), 0);
  ck_assert_msg(z != (void *)(uintptr_t)1, "*memptr not written on success");
  ck_assert_msg(fa_is_aligned(z, 64), "%p not 64-aligned", z);
  fancy_free(z);
}
END_TEST

Suite *make_aligned_suite(void) {
  Suite *s = suite_create("aligned");
  TCase *tc = fa_tcase("aligned_alloc", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_aligned_alloc_every_power);
  tcase_add_test(tc, test_aligned_alloc_mixed);
  tcase_add_test(tc, test_aligned_alloc_size_zero);
  tcase_add_test(tc, test_aligned_alloc_beyond_segment);
  tcase_add_test(tc, test_aligned_alloc_einval);
  tcase_add_test(tc, test_aligned_alloc_enomem);
  suite_add_tcase(s, tc);

  tc = fa_tcase("posix_memalign", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_posix_memalign_einval);
  tcase_add_test(tc, test_posix_memalign_enomem);
  tcase_add_test(tc, test_posix_memalign_every_power);
  suite_add_tcase(s, tc);
  return s;
}
