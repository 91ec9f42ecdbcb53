/* SPDX-License-Identifier: MIT */
/*
 * check_api.c - the allocation calls of include/fancyalloc.h, their edge
 * cases and errors, and the aborts on misuse.
 */
#define _GNU_SOURCE 1
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "helpers.h"
#include "suites.h"

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a;
  uintptr_t y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

/* Checks that a fresh block of `size` bytes is aligned, big enough, and
 * writable over its whole usable size. */
static void check_fresh_block(void *p, size_t size) {
  FA_REQUIRE(p != NULL, "fancy_malloc(%zu) returned NULL", size);
  FA_REQUIRE(fa_is_aligned(p, 16), "fancy_malloc(%zu) = %p: not 16-aligned",
             size, p);
  size_t usable = fancy_malloc_usable_size(p);
  FA_REQUIRE(usable >= size, "fancy_malloc_usable_size = %zu < %zu asked",
             usable, size);
  fa_fill(p, 0, usable, (unsigned)size);
  size_t bad = fa_check(p, 0, usable, (unsigned)size);
  FA_REQUIRE(bad == SIZE_MAX, "block of %zu bytes: byte %zu did not keep "
             "what was written", size, bad);
}

/* ------------------------------------------------------------------------
 * fancy_malloc
 * ---------------------------------------------------------------------- */
START_TEST(test_malloc_zero_unique) {
  enum { N = 1000 };
  void **p = malloc(N * sizeof(*p));
  ck_assert_ptr_ne(p, NULL);
  for (int i = 0; i < N; i++) {
    p[i] = fancy_malloc(0);
    FA_REQUIRE(p[i] != NULL, "fancy_malloc(0) #%d returned NULL", i);
    FA_REQUIRE(fa_is_aligned(p[i], 16), "fancy_malloc(0) = %p: not aligned",
               p[i]);
  }
  qsort(p, N, sizeof(*p), cmp_ptr);
  for (int i = 1; i < N; i++)
    FA_REQUIRE(p[i] != p[i - 1], "fancy_malloc(0) returned %p twice while "
               "both were live", p[i]);
  for (int i = 0; i < N; i++) fancy_free(p[i]);
  free(p);
}
END_TEST

/* Every size 1..600, all live at once: aligned, usable >= size, and no two
 * blocks overlap (each keeps its own pattern until the end). */
START_TEST(test_malloc_sizes_1_to_600) {
  enum { MAXSZ = 600 };
  void *p[MAXSZ + 1];
  for (size_t n = 1; n <= MAXSZ; n++) {
    p[n] = fancy_malloc(n);
    check_fresh_block(p[n], n);
  }
  for (size_t n = 1; n <= MAXSZ; n++) {
    size_t usable = fancy_malloc_usable_size(p[n]);
    size_t bad = fa_check(p[n], 0, usable, (unsigned)n);
    FA_REQUIRE(bad == SIZE_MAX, "block of %zu bytes at %p: byte %zu was "
               "overwritten by a later allocation", n, p[n], bad);
  }
  for (size_t n = 1; n <= MAXSZ; n++) fancy_free(p[n]);
}
END_TEST

/* Powers of two and +-1, 1 byte .. 64 MiB.  Blocks up to 1 MiB stay live
 * until the end to catch overlaps; bigger ones are freed at once. */
START_TEST(test_malloc_powers_of_two) {
  void *live[3 * 27];
  size_t live_size[3 * 27];
  int nlive = 0;
  for (int k = 0; k <= 26; k++) {
    size_t base = (size_t)1 << k;
    size_t sizes[3] = {base - 1, base, base + 1};
    for (int j = 0; j < 3; j++) {
      size_t n = sizes[j];
      if (n == 0) continue;
      void *p = fancy_malloc(n);
      check_fresh_block(p, n);
      if (n <= FA_MIB) {
        live[nlive] = p;
        live_size[nlive++] = n;
      } else {
        fancy_free(p);
      }
    }
  }
  for (int i = 0; i < nlive; i++) {
    size_t usable = fancy_malloc_usable_size(live[i]);
    size_t bad = fa_check(live[i], 0, usable, (unsigned)live_size[i]);
    FA_REQUIRE(bad == SIZE_MAX, "block of %zu bytes: byte %zu overwritten "
               "by a later allocation", live_size[i], bad);
    fancy_free(live[i]);
  }
}
END_TEST

/* Many random sizes, all live at once, freed in random order. */
START_TEST(test_malloc_many_live_blocks) {
  enum { N = 20000 };
  void **p = malloc(N * sizeof(*p));
  size_t *sz = malloc(N * sizeof(*sz));
  ck_assert_ptr_ne(p, NULL);
  ck_assert_ptr_ne(sz, NULL);
  uint64_t rng = 42;
  for (int i = 0; i < N; i++) {
    uint64_t r = fa_rand(&rng);
    /* mostly small, some medium, a few large */
    sz[i] = (r % 100 < 80) ? 1 + r % 512
          : (r % 100 < 98) ? 513 + r % 32768 : 32769 + r % (1536 * FA_KIB);
    p[i] = fancy_malloc(sz[i]);
    FA_REQUIRE(p[i] != NULL, "fancy_malloc(%zu) returned NULL", sz[i]);
    FA_REQUIRE(fa_is_aligned(p[i], 16), "%p not 16-aligned", p[i]);
    fa_fill(p[i], 0, sz[i], (unsigned)i);
  }
  for (int i = 0; i < N; i++) {
    size_t bad = fa_check(p[i], 0, sz[i], (unsigned)i);
    FA_REQUIRE(bad == SIZE_MAX, "block #%d (%zu bytes) byte %zu was "
               "overwritten", i, sz[i], bad);
  }
  for (int i = N - 1; i > 0; i--) {  /* shuffle, then free */
    int j = (int)(fa_rand(&rng) % (uint64_t)(i + 1));
    void *t = p[i]; p[i] = p[j]; p[j] = t;
  }
  for (int i = 0; i < N; i++) fancy_free(p[i]);
  free(p);
  free(sz);
}
END_TEST

START_TEST(test_malloc_too_big) {
  const size_t sizes[] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 4096,
    SIZE_MAX - (4 * FA_MIB), (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
    (size_t)1 << 62, (size_t)1 << 48,
  };
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    errno = 0;
    void *p = fancy_malloc(sizes[i]);
    ck_assert_msg(p == NULL, "fancy_malloc(%#zx) returned %p, expected NULL",
                  sizes[i], p);
    ck_assert_msg(errno == ENOMEM, "fancy_malloc(%#zx): errno %d (%s), "
                  "expected ENOMEM", sizes[i], errno, strerror(errno));
  }
  /* and the heap still works */
  void *q = fancy_malloc(100);
  check_fresh_block(q, 100);
  fancy_free(q);
}
END_TEST

START_TEST(test_free_null) {
  fa_touch_heap();
  fancy_stats_t before = fa_stats();
  fancy_free(NULL);
  fancy_free(NULL);
  fancy_stats_t after = fa_stats();
  ck_assert_uint_eq(after.bytes_live, before.bytes_live);
  void *p = fancy_malloc(24);
  check_fresh_block(p, 24);
  fancy_free(p);
}
END_TEST

START_TEST(test_usable_size_null) {
  ck_assert_uint_eq(fancy_malloc_usable_size(NULL), 0);
  void *p = fancy_malloc(1);
  ck_assert_ptr_ne(p, NULL);
  ck_assert_uint_ge(fancy_malloc_usable_size(p), 1);
  fancy_free(p);
  ck_assert_uint_eq(fancy_malloc_usable_size(NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * fancy_calloc
 * ---------------------------------------------------------------------- */
START_TEST(test_calloc_zeroed) {
  const size_t cases[][2] = {
    {1, 1}, {3, 5}, {16, 16}, {100, 7}, {1, 600}, {8, 4096}, {1000, 100},
    {1, 65536}, {3, FA_MIB}, {1, 5 * FA_MIB}, {16, FA_MIB}, {7, 3333},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t n = cases[i][0] * cases[i][1];
    errno = 0;
    unsigned char *p = fancy_calloc(cases[i][0], cases[i][1]);
    ck_assert_msg(p != NULL, "fancy_calloc(%zu, %zu) returned NULL",
                  cases[i][0], cases[i][1]);
    ck_assert_msg(fa_is_aligned(p, 16), "fancy_calloc: %p not aligned",
                  (void *)p);
    ck_assert_uint_ge(fancy_malloc_usable_size(p), n);
    size_t bad = fa_first_nonzero(p, n);
    ck_assert_msg(bad == SIZE_MAX, "fancy_calloc(%zu, %zu): byte %zu is "
                  "%#x, not 0", cases[i][0], cases[i][1], bad,
                  bad == SIZE_MAX ? 0u : p[bad]);
    fancy_free(p);
  }
}
END_TEST

START_TEST(test_calloc_zero_size) {
  void *a = fancy_calloc(0, 16);
  void *b = fancy_calloc(16, 0);
  void *c = fancy_calloc(0, 0);
  ck_assert_msg(a != NULL && b != NULL && c != NULL,
                "fancy_calloc with a zero product returned NULL "
                "(%p %p %p): like fancy_malloc(0) it must return a unique "
                "pointer", a, b, c);
  ck_assert_msg(a != b && b != c && a != c, "zero-byte callocs share %p %p %p",
                a, b, c);
  fancy_free(a);
  fancy_free(b);
  fancy_free(c);
}
END_TEST

/* A block dirtied and freed must come back zeroed from calloc of the same
 * size, however often: a reused block is never assumed to be clean. */
START_TEST(test_calloc_zero_after_dirty_reuse) {
  const size_t sizes[] = {
    1, 16, 48, 100, 512, 513, 1000, 4096, 10000, 32768, 40000, 100000,
    FA_MIB, 3 * FA_MIB,
  };
  enum { BATCH = 32 };
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = sizes[i];
    int rounds = n >= FA_MIB ? 8 : 40;
    for (int r = 0; r < rounds; r++) {
      void *p = fancy_malloc(n);
      FA_REQUIRE(p != NULL, "fancy_malloc(%zu) returned NULL", n);
      memset(p, 0xff, fancy_malloc_usable_size(p));
      fancy_free(p);
      unsigned char *q = (r & 1) ? fancy_calloc(n, 1) : fancy_calloc(1, n);
      FA_REQUIRE(q != NULL, "fancy_calloc(%zu) returned NULL", n);
      size_t bad = fa_first_nonzero(q, n);
      FA_REQUIRE(bad == SIZE_MAX, "fancy_calloc(%zu) after a dirtied free of "
                 "the same size (round %d, same block: %s): byte %zu is %#x",
                 n, r, q == p ? "yes" : "no", bad, q[bad]);
      memset(q, 0xff, fancy_malloc_usable_size(q));
      fancy_free(q);
    }
    if (n > 100000) continue;
    /* A batch, so that the free list holds several dirty blocks. */
    void *b[BATCH];
    for (int j = 0; j < BATCH; j++) {
      b[j] = fancy_malloc(n);
      FA_REQUIRE(b[j] != NULL, "fancy_malloc(%zu) returned NULL", n);
      memset(b[j], 0xa5, fancy_malloc_usable_size(b[j]));
    }
    for (int j = 0; j < BATCH; j++) fancy_free(b[j]);
    for (int j = 0; j < BATCH; j++) {
      b[j] = fancy_calloc(1, n);
      FA_REQUIRE(b[j] != NULL, "fancy_calloc(1, %zu) returned NULL", n);
      size_t bad = fa_first_nonzero(b[j], n);
      FA_REQUIRE(bad == SIZE_MAX, "fancy_calloc(1, %zu) #%d of a batch: byte "
                 "%zu not zero", n, j, bad);
    }
    for (int j = 0; j < BATCH; j++) fancy_free(b[j]);
  }
}
END_TEST

START_TEST(test_calloc_overflow) {
  const size_t cases[][2] = {
    {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {SIZE_MAX, SIZE_MAX},
    {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, 2}, {65537, SIZE_MAX / 65536},
    {1, SIZE_MAX}, {(size_t)PTRDIFF_MAX, 2},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    errno = 0;
    void *p = fancy_calloc(cases[i][0], cases[i][1]);
    ck_assert_msg(p == NULL, "fancy_calloc(%#zx, %#zx) returned %p, expected "
                  "NULL", cases[i][0], cases[i][1], p);
    ck_assert_msg(errno == ENOMEM, "fancy_calloc(%#zx, %#zx): errno %d, "
                  "expected ENOMEM", cases[i][0], cases[i][1], errno);
  }
}
END_TEST

/* ------------------------------------------------------------------------
 * fancy_trim, fancy_version
 * ---------------------------------------------------------------------- */
static void **alloc_mix(int n, uint64_t seed) {
  void **p = malloc((size_t)n * sizeof(*p));
  ck_assert_ptr_ne(p, NULL);
  for (int i = 0; i < n; i++) {
    size_t sz = (i % 100 == 0) ? FA_MIB : 16 + fa_rand(&seed) % 2000;
    p[i] = fancy_malloc(sz);
    FA_REQUIRE(p[i] != NULL, "fancy_malloc(%zu) returned NULL", sz);
    fa_fill(p[i], 0, sz < 256 ? sz : 256, (unsigned)i);
  }
  return p;
}

START_TEST(test_trim) {
  enum { N = 20000 };
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  void **p = alloc_mix(N, 7);
  for (int i = 0; i < N; i++) fancy_free(p[i]);

  int r = fancy_trim(SIZE_MAX);
  ck_assert_msg(r == 0 || r == 1, "fancy_trim(SIZE_MAX) returned %d", r);
  fancy_stats_t s0 = fa_stats();
  r = fancy_trim(0);
  ck_assert_msg(r == 0 || r == 1, "fancy_trim(0) returned %d", r);
  fancy_stats_t s1 = fa_stats();
  if (r == 1)
    ck_assert_msg(s1.bytes_purged > s0.bytes_purged ||
                  s1.purge_calls > s0.purge_calls,
                  "fancy_trim(0) returned 1 (released memory) but neither "
                  "bytes_purged (%zu -> %zu) nor purge_calls (%zu -> %zu) grew",
                  s0.bytes_purged, s1.bytes_purged, s0.purge_calls,
                  s1.purge_calls);
  ck_assert_uint_le(s1.bytes_mapped, s0.bytes_mapped);
  ck_assert_uint_eq(s1.bytes_live, base.bytes_live);
  /* With pad 0 nothing free stays cached, so a second call has nothing to
   * release. */
  r = fancy_trim(0);
  ck_assert_msg(r == 0, "fancy_trim(0) right after fancy_trim(0), with no "
                "allocation in between, returned %d: the first call kept "
                "free memory although pad was 0", r);

  /* The heap is still usable, for all block kinds. */
  p = alloc_mix(N, 8);
  for (int i = 0; i < N; i++) {
    size_t bad = fa_check(p[i], 0, 16, (unsigned)i);
    FA_REQUIRE(bad == SIZE_MAX, "after fancy_trim, block %d lost byte %zu",
               i, bad);
  }
  for (int i = 0; i < N; i++) fancy_free(p[i]);
  free(p);
  void *h = fancy_malloc(16 * FA_MIB);
  check_fresh_block(h, 16 * FA_MIB);
  fancy_free(h);
  r = fancy_trim(0);
  ck_assert_msg(r == 0 || r == 1, "fancy_trim(0) returned %d", r);
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
}
END_TEST

START_TEST(test_version) {
  const char *v = fancy_version();
  ck_assert_ptr_ne(v, NULL);
  ck_assert_str_eq(v, FANCY_VERSION);
}
END_TEST

/* ------------------------------------------------------------------------
 * Misuse: each must abort.  The test process is Check's child, so the
 * abort only ends that child; core dumps are switched off first.
 * ---------------------------------------------------------------------- */
enum misuse_kind {
  MISUSE_STACK,
  MISUSE_LIBC,
  MISUSE_INTERIOR_8,
  MISUSE_INTERIOR_16,
  MISUSE_DOUBLE_SMALL,
  MISUSE_DOUBLE_LARGE,
  MISUSE_DOUBLE_HUGE,
  MISUSE_INTERIOR_HUGE,
  MISUSE_DOUBLE_HUGE_JOINED,
  MISUSE_COUNT
};

static const char *const misuse_name[MISUSE_COUNT] = {
  "free of a stack buffer", "free of a glibc malloc() block",
  "free of p+8 of a 64-byte block", "free of p+16 of a 64-byte block",
  "double free of a 32-byte block", "double free of a 256 KiB block",
  "double free of an 8 MiB block", "free of p+4096 of an 8 MiB block",
  "double free of a huge block whose pages joined a warm piece",
};

/* Performs one misuse; returns only if the library did not abort. */
static void do_misuse(enum misuse_kind kind) {
  /* volatile: keep the compiler from reasoning about the misuse */
  void *volatile p;
  switch (kind) {
  case MISUSE_STACK: {
    _Alignas(64) char buf[256];
    memset(buf, 1, sizeof(buf));
    p = buf + 64;
    fancy_free(p);
    break;
  }
  case MISUSE_LIBC:
    p = malloc(64);
    fancy_free(p);
    break;
  case MISUSE_INTERIOR_8:
  case MISUSE_INTERIOR_16: {
    /* some neighbours, so that the interior pointer is inside a live page */
    void *n1 = fancy_malloc(64);
    p = fancy_malloc(64);
    void *n2 = fancy_malloc(64);
    (void)n1; (void)n2;
    fancy_free((char *)p + (kind == MISUSE_INTERIOR_8 ? 8 : 16));
    break;
  }
  case MISUSE_DOUBLE_SMALL:
    p = fancy_malloc(32);
    fancy_free(p);
    fancy_free(p);
    break;
  case MISUSE_DOUBLE_LARGE:
    p = fancy_malloc(256 * FA_KIB);
    fancy_free(p);
    fancy_free(p);
    break;
  case MISUSE_DOUBLE_HUGE:
    p = fancy_malloc(8 * FA_MIB);
    fancy_free(p);
    fancy_free(p);
    break;
  case MISUSE_INTERIOR_HUGE:
    p = fancy_malloc(8 * FA_MIB);
    fancy_free((char *)p + 4096);
    break;
  case MISUSE_DOUBLE_HUGE_JOINED: {
    /* Two 4 MiB blocks cut from one freed 8 MiB mapping, freed again: the
     * second joins the first's piece, so its start lies inside a piece. */
    void *a = fancy_malloc(8 * FA_MIB);
    memset(a, 1, 8 * FA_MIB);
    fancy_free(a);
    void *b = fancy_malloc(4 * FA_MIB);
    p = fancy_malloc(4 * FA_MIB);
    fancy_free(b);
    fancy_free(p);
    fancy_free(p);
    break;
  }
  default:
    break;
  }
}

#define MISUSE_TEST(name, kind)                                              \
  START_TEST(name) {                                                         \
    fa_no_core_dump();                                                          \
    do_misuse(kind);                                                         \
    ck_abort_msg("%s did not abort", misuse_name[kind]);                     \
  }                                                                          \
  END_TEST

MISUSE_TEST(test_abort_free_stack, MISUSE_STACK)
MISUSE_TEST(test_abort_free_libc, MISUSE_LIBC)
MISUSE_TEST(test_abort_free_interior_8, MISUSE_INTERIOR_8)
MISUSE_TEST(test_abort_free_interior_16, MISUSE_INTERIOR_16)
MISUSE_TEST(test_abort_double_free_small, MISUSE_DOUBLE_SMALL)
MISUSE_TEST(test_abort_double_free_large, MISUSE_DOUBLE_LARGE)
MISUSE_TEST(test_abort_double_free_huge, MISUSE_DOUBLE_HUGE)
MISUSE_TEST(test_abort_free_interior_huge, MISUSE_INTERIOR_HUGE)
MISUSE_TEST(test_abort_double_free_huge_joined, MISUSE_DOUBLE_HUGE_JOINED)

/* The child side of fa_stderr_of_child. */
static void misuse_child(int kind) { do_misuse((enum misuse_kind)kind); }

START_TEST(test_abort_message_one_line) {
  fa_assert_misuse_messages(misuse_child, MISUSE_COUNT, misuse_name);
}
END_TEST

Suite *make_api_suite(void) {
  Suite *s = suite_create("api");

  TCase *tc = fa_tcase("malloc", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_malloc_zero_unique);
  tcase_add_test(tc, test_malloc_sizes_1_to_600);
  tcase_add_test(tc, test_malloc_powers_of_two);
  tcase_add_test(tc, test_malloc_many_live_blocks);
  tcase_add_test(tc, test_malloc_too_big);
  tcase_add_test(tc, test_free_null);
  tcase_add_test(tc, test_usable_size_null);
  suite_add_tcase(s, tc);

  tc = fa_tcase("calloc", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_calloc_zeroed);
  tcase_add_test(tc, test_calloc_zero_size);
  tcase_add_test(tc, test_calloc_zero_after_dirty_reuse);
  tcase_add_test(tc, test_calloc_overflow);
  suite_add_tcase(s, tc);

  tc = fa_tcase("misc", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_trim);
  tcase_add_test(tc, test_version);
  suite_add_tcase(s, tc);

  /* No heap validation after these: they end in abort(). */
  tc = tcase_create("misuse");
  tcase_set_timeout(tc, FA_TIMEOUT_QUICK);
  tcase_add_test_raise_signal(tc, test_abort_free_stack, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_free_libc, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_free_interior_8, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_free_interior_16, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_double_free_small, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_double_free_large, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_double_free_huge, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_free_interior_huge, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_double_free_huge_joined, SIGABRT);
  tcase_add_test(tc, test_abort_message_one_line);
  suite_add_tcase(s, tc);
  return s;
}
