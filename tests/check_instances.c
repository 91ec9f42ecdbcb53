/* SPDX-License-Identifier: MIT */
/*
 * check_instances.c - allocator instances (fancy_allocator_create(3) and
 * the fancy_allocator_* calls, issue 9): the allocation calls in an
 * instance, instances used from many threads, destroy with live blocks
 * (region-style), the fixed maximum of instances, per-instance memory
 * limits, the per-instance diagnostics, and the aborts when a block is
 * freed into an instance that did not allocate it.
 *
 * Every test validates the instances it made before destroying them
 * (fancy_allocator_validate), and the fixture validates the default
 * instance afterwards.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "config.h"
#include "helpers.h"
#include "suites.h"

/* Under a sanitizer, RSS also counts its shadow memory, which purging our
 * pages does not give back: the checks that RSS falls again are only
 * meaningful without one. */
#ifdef FA_SANITIZE
static const int rss_falls = 0;
#else
static const int rss_falls = 1;
#endif

/* The most instances alive at once besides the default one. */
#define MAX_INSTANCES 63

static fancy_allocator_t *create_or_fail(const fancy_allocator_config_t *c) {
  errno = 0;
  fancy_allocator_t *a = fancy_allocator_create(c);
  ck_assert_msg(a != NULL, "fancy_allocator_create failed: %s",
                strerror(errno));
  ck_assert_msg(a != fancy_allocator_default(),
                "fancy_allocator_create returned the default instance");
  return a;
}

static void validate_and_destroy(fancy_allocator_t *a, const char *what) {
  ck_assert_msg(fancy_allocator_validate(a),
                "fancy_allocator_validate(%s) returned false (its stderr "
                "line says what is inconsistent)", what);
  fancy_allocator_destroy(a);
}

static void instances_teardown(void) {
  ck_assert_msg(fancy_allocator_validate(fancy_allocator_default()),
                "fancy_allocator_validate(default) returned false after the "
                "test");
  fa_validate_teardown();
}

static TCase *inst_tcase(const char *name, int timeout) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, NULL, instances_teardown);
  tcase_set_timeout(tc, timeout);
  return tc;
}

/* Resident and total mapped bytes of the process (/proc/self/statm). */
static void proc_memory(size_t *rss, size_t *vsize) {
  FILE *f = fopen("/proc/self/statm", "r");
  ck_assert_msg(f != NULL, "/proc/self/statm: %s", strerror(errno));
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  ck_assert_msg(n == 2, "cannot parse /proc/self/statm");
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (rss) *rss = (size_t)resident * page;
  if (vsize) *vsize = (size_t)size * page;
}

/* A block of `size` bytes from fancy_allocator_malloc(a, size): aligned,
 * big enough, writable over its whole usable size. */
static void check_fresh_block(fancy_allocator_t *a, void *p, size_t size) {
  FA_REQUIRE(p != NULL, "fancy_allocator_malloc(%zu) returned NULL: %s",
             size, strerror(errno));
  FA_REQUIRE(fa_is_aligned(p, 16), "fancy_allocator_malloc(%zu) = %p: not "
             "16-aligned", size, p);
  size_t usable = fancy_allocator_usable_size(a, p);
  FA_REQUIRE(usable >= size, "fancy_allocator_usable_size = %zu < %zu asked",
             usable, size);
  fa_fill(p, 0, usable, (unsigned)size);
}

/* ------------------------------------------------------------------------
 * Creation, the default instance, the allocation calls
 * ---------------------------------------------------------------------- */
START_TEST(test_create_configs) {
  fancy_allocator_config_t zero;
  memset(&zero, 0, sizeof(zero));
  fancy_allocator_config_t on = {
    .arena_size = 1 * FA_MIB, .memory_limit = 0,
    .reclamation = 1, .huge_pages = 1, .populate = 1,
  };
  fancy_allocator_config_t off = {
    .arena_size = 256 * FA_MIB, .memory_limit = 512 * FA_MIB,
    .reclamation = -1, .huge_pages = -1, .populate = -1,
  };
  const fancy_allocator_config_t *configs[] = {NULL, &zero, &on, &off};
  const char *names[] = {"NULL", "all zero", "all on", "all off"};
  for (int c = 0; c < 4; c++) {
    fancy_allocator_t *a = create_or_fail(configs[c]);
    for (size_t n = 1; n <= 4 * FA_MIB; n *= 4) {
      void *p = fancy_allocator_malloc(a, n);
      ck_assert_msg(p != NULL, "config %s: fancy_allocator_malloc(%zu): %s",
                    names[c], n, strerror(errno));
      check_fresh_block(a, p, n);
      fancy_allocator_free(a, p);
    }
    validate_and_destroy(a, names[c]);
  }
}
END_TEST

START_TEST(test_default_instance) {
  fancy_allocator_t *d = fancy_allocator_default();
  ck_assert_ptr_ne(d, NULL);
  ck_assert_ptr_eq(fancy_allocator_default(), d);

  /* the default instance is the one behind fancy_malloc/fancy_free */
  void *p = fancy_allocator_malloc(d, 100);
  check_fresh_block(d, p, 100);
  ck_assert_uint_eq(fancy_allocator_usable_size(d, p),
                    fancy_malloc_usable_size(p));
  fancy_free(p);
  p = fancy_malloc(200);
  ck_assert_ptr_ne(p, NULL);
  ck_assert_uint_eq(fancy_allocator_usable_size(d, p),
                    fancy_malloc_usable_size(p));
  fancy_allocator_free(d, p);

  /* destroying NULL or the default instance does nothing */
  p = fancy_malloc(64);
  ck_assert_ptr_ne(p, NULL);
  fa_fill(p, 0, 64, 7);
  fancy_allocator_destroy(NULL);
  fancy_allocator_destroy(d);
  ck_assert_uint_eq(fa_check(p, 0, 64, 7), SIZE_MAX);
  fancy_free(p);
  p = fancy_allocator_malloc(d, 64);
  ck_assert_ptr_ne(p, NULL);
  fancy_allocator_free(d, p);
  ck_assert(fancy_allocator_validate(d));
}
END_TEST

START_TEST(test_malloc_sizes) {
  fancy_allocator_t *a = create_or_fail(NULL);
  enum { MAXSZ = 600 };
  void *p[MAXSZ + 1];
  for (size_t n = 1; n <= MAXSZ; n++) {
    p[n] = fancy_allocator_malloc(a, n);
    check_fresh_block(a, p[n], n);
  }
  /* powers of two and +-1 up to 16 MiB, live together with the above */
  void *big[3 * 25];
  size_t big_size[3 * 25];
  int nbig = 0;
  for (int k = 10; k <= 24; k++) {
    size_t sizes[3] = {((size_t)1 << k) - 1, (size_t)1 << k,
                       ((size_t)1 << k) + 1};
    for (int j = 0; j < 3; j++) {
      big[nbig] = fancy_allocator_malloc(a, sizes[j]);
      check_fresh_block(a, big[nbig], sizes[j]);
      big_size[nbig++] = sizes[j];
    }
  }
  for (size_t n = 1; n <= MAXSZ; n++) {
    size_t bad = fa_check(p[n], 0, fancy_allocator_usable_size(a, p[n]),
                          (unsigned)n);
    FA_REQUIRE(bad == SIZE_MAX, "block of %zu bytes at %p: byte %zu was "
               "overwritten by a later allocation", n, p[n], bad);
    fancy_allocator_free(a, p[n]);
  }
  for (int i = 0; i < nbig; i++) {
    size_t bad = fa_check(big[i], 0, fancy_allocator_usable_size(a, big[i]),
                          (unsigned)big_size[i]);
    FA_REQUIRE(bad == SIZE_MAX, "block of %zu bytes: byte %zu overwritten",
               big_size[i], bad);
    fancy_allocator_free(a, big[i]);
  }
  /* size 0: unique pointers */
  void *z1 = fancy_allocator_malloc(a, 0);
  void *z2 = fancy_allocator_malloc(a, 0);
  ck_assert_ptr_ne(z1, NULL);
  ck_assert_ptr_ne(z2, NULL);
  ck_assert_ptr_ne(z1, z2);
  fancy_allocator_free(a, z1);
  fancy_allocator_free(a, z2);
  fancy_allocator_free(a, NULL);
  validate_and_destroy(a, "a");
}
END_TEST

START_TEST(test_malloc_too_big) {
  fancy_allocator_t *a = create_or_fail(NULL);
  volatile size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    errno = 0;
    void *p = fancy_allocator_malloc(a, sizes[i]);
    ck_assert_msg(p == NULL, "fancy_allocator_malloc(%zu) did not fail",
                  sizes[i]);
    ck_assert_int_eq(errno, ENOMEM);
  }
  validate_and_destroy(a, "a");
}
END_TEST

START_TEST(test_usable_size_null) {
  fancy_allocator_t *a = create_or_fail(NULL);
  ck_assert_uint_eq(fancy_allocator_usable_size(a, NULL), 0);
  ck_assert_uint_eq(fancy_allocator_usable_size(fancy_allocator_default(),
                                                NULL), 0);
  validate_and_destroy(a, "a");
}
END_TEST

START_TEST(test_calloc) {
  fancy_allocator_t *a = create_or_fail(NULL);
  /* dirty the memory first, so that zeroing is really tested */
  for (size_t n = 16; n <= 256 * FA_KIB; n *= 2) {
    void *p = fancy_allocator_malloc(a, n);
    ck_assert_ptr_ne(p, NULL);
    memset(p, 0xa5, n);
    fancy_allocator_free(a, p);
  }
  for (size_t n = 1; n <= 4 * FA_MIB; n = n * 3 + 1) {
    unsigned char *p = fancy_allocator_calloc(a, n, 1);
    FA_REQUIRE(p != NULL, "fancy_allocator_calloc(%zu, 1) failed", n);
    size_t nz = fa_first_nonzero(p, n);
    FA_REQUIRE(nz == SIZE_MAX, "fancy_allocator_calloc(%zu, 1): byte %zu "
               "is not zero", n, nz);
    memset(p, 0x5a, n);
    fancy_allocator_free(a, p);
    p = fancy_allocator_calloc(a, 1, n);
    FA_REQUIRE(p != NULL, "fancy_allocator_calloc(1, %zu) failed", n);
    nz = fa_first_nonzero(p, n);
    FA_REQUIRE(nz == SIZE_MAX, "fancy_allocator_calloc(1, %zu) after a "
               "dirty free: byte %zu is not zero", n, nz);
    fancy_allocator_free(a, p);
  }
  /* zero elements or zero size: a unique pointer */
  void *p0 = fancy_allocator_calloc(a, 0, 16);
  void *p1 = fancy_allocator_calloc(a, 16, 0);
  ck_assert_ptr_ne(p0, NULL);
  ck_assert_ptr_ne(p1, NULL);
  ck_assert_ptr_ne(p0, p1);
  fancy_allocator_free(a, p0);
  fancy_allocator_free(a, p1);
  /* overflow of nmemb * size */
  size_t half = (SIZE_MAX >> (sizeof(size_t) * 4)) + 1;  /* 2^32 on LP64 */
  size_t bad[][2] = {{SIZE_MAX, 2}, {2, SIZE_MAX}, {half, half},
                     {SIZE_MAX / 16 + 1, 16}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errno = 0;
    void *p = fancy_allocator_calloc(a, bad[i][0], bad[i][1]);
    ck_assert_msg(p == NULL, "fancy_allocator_calloc(%zu, %zu) did not fail",
                  bad[i][0], bad[i][1]);
    ck_assert_int_eq(errno, ENOMEM);
  }
  validate_and_destroy(a, "a");
}
END_TEST

START_TEST(test_realloc) {
  fancy_allocator_t *a = create_or_fail(NULL);
  /* realloc(NULL, n) = malloc(n) */
  unsigned char *p = fancy_allocator_realloc(a, NULL, 10);
  ck_assert_ptr_ne(p, NULL);
  fa_fill(p, 0, 10, 1);
  /* grow through every class of size up to 16 MiB: contents kept */
  size_t n = 10;
  while (n < 16 * FA_MIB) {
    size_t m = n * 2 + 7;
    unsigned char *q = fancy_allocator_realloc(a, p, m);
    FA_REQUIRE(q != NULL, "fancy_allocator_realloc(%zu -> %zu) failed", n, m);
    size_t bad = fa_check(q, 0, n, 1);
    FA_REQUIRE(bad == SIZE_MAX, "realloc %zu -> %zu: byte %zu lost", n, m,
               bad);
    FA_REQUIRE(fancy_allocator_usable_size(a, q) >= m,
               "realloc to %zu: usable size %zu", m,
               fancy_allocator_usable_size(a, q));
    fa_fill(q, n, m, 1);
    p = q;
    n = m;
  }
  /* and shrink back down */
  while (n > 8) {
    size_t m = n / 3;
    unsigned char *q = fancy_allocator_realloc(a, p, m);
    FA_REQUIRE(q != NULL, "fancy_allocator_realloc(%zu -> %zu) failed", n, m);
    size_t bad = fa_check(q, 0, m, 1);
    FA_REQUIRE(bad == SIZE_MAX, "realloc %zu -> %zu: byte %zu lost", n, m,
               bad);
    p = q;
    n = m;
  }
  /* too big: NULL + ENOMEM, the block intact */
  volatile size_t too_big = SIZE_MAX - 4096;  /* hide it from -Walloc-size */
  errno = 0;
  void *q = fancy_allocator_realloc(a, p, too_big);
  ck_assert_ptr_eq(q, NULL);
  ck_assert_int_eq(errno, ENOMEM);
  ck_assert_uint_eq(fa_check(p, 0, n, 1), SIZE_MAX);
  /* realloc(p, 0) frees p and returns NULL */
  ck_assert_ptr_eq(fancy_allocator_realloc(a, p, 0), NULL);
  validate_and_destroy(a, "a");
}
END_TEST

START_TEST(test_aligned) {
  fancy_allocator_t *a = create_or_fail(NULL);
  size_t sizes[] = {1, 16, 100, 4096, 70000, 3 * FA_MIB};
  for (size_t al = 1; al <= 4 * FA_MIB; al *= 2) {
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
      void *p = fancy_allocator_aligned_alloc(a, al, sizes[i]);
      FA_REQUIRE(p != NULL, "fancy_allocator_aligned_alloc(%zu, %zu): %s",
                 al, sizes[i], strerror(errno));
      FA_REQUIRE(fa_is_aligned(p, al < 16 ? 16 : al),
                 "fancy_allocator_aligned_alloc(%zu, %zu) = %p: misaligned",
                 al, sizes[i], p);
      FA_REQUIRE(fancy_allocator_usable_size(a, p) >= sizes[i],
                 "aligned block of %zu: usable size %zu", sizes[i],
                 fancy_allocator_usable_size(a, p));
      memset(p, 0x11, sizes[i]);
      fancy_allocator_free(a, p);
    }
  }
  size_t bad_al[] = {0, 3, 24, 48, 4097};
  for (size_t i = 0; i < sizeof(bad_al) / sizeof(bad_al[0]); i++) {
    errno = 0;
    void *p = fancy_allocator_aligned_alloc(a, bad_al[i], 64);
    ck_assert_msg(p == NULL, "fancy_allocator_aligned_alloc(%zu, 64) did "
                  "not fail", bad_al[i]);
    ck_assert_int_eq(errno, EINVAL);
  }
  validate_and_destroy(a, "a");
}
END_TEST

/* Blocks of different instances never share memory: no 4 KiB page holds
 * blocks of two instances. */
static int cmp_uptr(const void *x, const void *y) {
  uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
  return a < b ? -1 : a > b;
}

START_TEST(test_separate_memory) {
  enum { N = 4000, NI = 3 };
  fancy_allocator_t *inst[NI] = {fancy_allocator_default(),
                                 create_or_fail(NULL), create_or_fail(NULL)};
  /* page of each block, tagged with its instance in the low bits */
  uintptr_t *pages = malloc(NI * N * 2 * sizeof(*pages));
  void **blocks = malloc(NI * N * sizeof(*blocks));
  ck_assert_ptr_ne(pages, NULL);
  ck_assert_ptr_ne(blocks, NULL);
  size_t np = 0;
  uint64_t rng = 99;
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < NI; k++) {
      size_t n = fa_mixed_size(&rng);
      void *p = fancy_allocator_malloc(inst[k], n);
      FA_REQUIRE(p != NULL, "instance %d: malloc(%zu) failed", k, n);
      blocks[i * NI + k] = p;
      uintptr_t first = (uintptr_t)p & ~(uintptr_t)4095;
      uintptr_t last = ((uintptr_t)p + n - 1) & ~(uintptr_t)4095;
      pages[np++] = first | (uintptr_t)k;
      if (last != first) pages[np++] = last | (uintptr_t)k;
    }
  }
  qsort(pages, np, sizeof(*pages), cmp_uptr);
  for (size_t i = 1; i < np; i++) {
    uintptr_t pg = pages[i] & ~(uintptr_t)4095;
    uintptr_t prev = pages[i - 1] & ~(uintptr_t)4095;
    FA_REQUIRE(pg != prev || (pages[i] & 3) == (pages[i - 1] & 3),
               "page %#lx holds blocks of instances %d and %d",
               (unsigned long)pg, (int)(pages[i - 1] & 3),
               (int)(pages[i] & 3));
  }
  for (int i = 0; i < N; i++)
    for (int k = 0; k < NI; k++)
      fancy_allocator_free(inst[k], blocks[i * NI + k]);
  free(pages);
  free(blocks);
  validate_and_destroy(inst[1], "a");
  validate_and_destroy(inst[2], "b");
}
END_TEST

/* ------------------------------------------------------------------------
 * Diagnostics cover one instance
 * ---------------------------------------------------------------------- */
START_TEST(test_diagnostics) {
  fancy_allocator_t *a = create_or_fail(NULL);
  fancy_allocator_t *b = create_or_fail(NULL);
  void *pa[10];
  for (int i = 0; i < 10; i++) {
    pa[i] = fancy_allocator_malloc(a, 48);
    ck_assert_ptr_ne(pa[i], NULL);
  }
  void *pd = fancy_malloc(48);
  ck_assert_ptr_ne(pd, NULL);
  ck_assert(fancy_allocator_validate(a));
  ck_assert(fancy_allocator_validate(b));

  fa_capture_t c;
  fa_capture_begin(&c);
  bool leaks_a = fancy_allocator_check_leaks(a);
  char *text_a = fa_capture_end(&c);
  fa_capture_begin(&c);
  bool leaks_b = fancy_allocator_check_leaks(b);
  char *text_b = fa_capture_end(&c);
  ck_assert_msg(leaks_a, "fancy_allocator_check_leaks(a) with 10 live "
                "blocks returned false");
  ck_assert_msg(text_a[0] != '\0', "fancy_allocator_check_leaks(a) with "
                "live blocks printed nothing");
  ck_assert_msg(!leaks_b, "fancy_allocator_check_leaks(b), which has no "
                "live block (a and the default instance do), returned true: "
                "\"%s\"", text_b);
  free(text_a);
  free(text_b);

  /* print_stats: to a stream, and to stderr with NULL */
  FILE *f = tmpfile();
  ck_assert_ptr_ne(f, NULL);
  fancy_allocator_print_stats(a, f);
  ck_assert_msg(ftell(f) > 0, "fancy_allocator_print_stats(a, f) wrote "
                "nothing");
  fclose(f);
  fa_capture_begin(&c);
  fancy_allocator_print_stats(a, NULL);
  char *text = fa_capture_end(&c);
  ck_assert_msg(text[0] != '\0', "fancy_allocator_print_stats(a, NULL) "
                "wrote nothing to stderr");
  free(text);

  for (int i = 0; i < 10; i++) fancy_allocator_free(a, pa[i]);
  fa_capture_begin(&c);
  leaks_a = fancy_allocator_check_leaks(a);
  text_a = fa_capture_end(&c);
  ck_assert_msg(!leaks_a, "fancy_allocator_check_leaks(a) after freeing "
                "every block of a (the default instance still has one) "
                "returned true: \"%s\"", text_a);
  free(text_a);
  fancy_free(pd);
  validate_and_destroy(a, "a");
  validate_and_destroy(b, "b");
}
END_TEST

/* ------------------------------------------------------------------------
 * Many threads in two instances, blocks handed across threads
 * ---------------------------------------------------------------------- */
#define MT_THREADS 8
#define MT_OPS 60000
#define MT_BOX 256

struct mt_item {
  void *p;
  int inst;
};

struct mt_box {
  pthread_mutex_t lock;
  int n;
  struct mt_item item[MT_BOX];
};

struct mt {
  fancy_allocator_t *inst[2];
  struct mt_box box[MT_THREADS];
  pthread_barrier_t barrier;
  fa_failure_t fail;
};

struct mt_arg {
  struct mt *m;
  int id;
};

static void mt_release(struct mt *m, int id, struct mt_item it) {
  size_t bad;
  if (fa_verify(it.p, &bad) == 0)
    fa_fail(&m->fail, "thread %d: block %p of instance %d corrupt at byte "
            "%zu", id, it.p, it.inst, bad);
  fancy_allocator_free(m->inst[it.inst], it.p);
}

static void mt_drain(struct mt *m, int id) {
  struct mt_box *b = &m->box[id];
  struct mt_item local[MT_BOX];
  pthread_mutex_lock(&b->lock);
  int n = b->n;
  memcpy(local, b->item, (size_t)n * sizeof(local[0]));
  b->n = 0;
  pthread_mutex_unlock(&b->lock);
  for (int i = 0; i < n; i++) mt_release(m, id, local[i]);
}

static void *mt_thread(void *argp) {
  struct mt_arg *arg = argp;
  struct mt *m = arg->m;
  uint64_t rng = 0xabcdef12ull * (uint64_t)(arg->id + 1);
  enum { KEEP = 64 };
  struct mt_item own[KEEP];
  int nown = 0;
  for (int op = 0; op < MT_OPS && !fa_failed(&m->fail); op++) {
    uint64_t r = fa_rand(&rng);
    int inst = (int)(r & 1);
    size_t n = fa_mixed_size(&rng);
    void *p = fancy_allocator_malloc(m->inst[inst], n);
    if (p == NULL) {
      fa_fail(&m->fail, "thread %d: fancy_allocator_malloc(inst %d, %zu) "
              "returned NULL", arg->id, inst, n);
      break;
    }
    size_t usable = fancy_allocator_usable_size(m->inst[inst], p);
    if (usable < n)
      fa_fail(&m->fail, "thread %d: usable size %zu < %zu", arg->id, usable,
              n);
    fa_mark(p, n, (unsigned)op);
    struct mt_item it = {p, inst};
    if ((r >> 8) % 3 != 0) {
      /* hand it to the next thread */
      struct mt_box *b = &m->box[(arg->id + 1) % MT_THREADS];
      pthread_mutex_lock(&b->lock);
      int full = b->n == MT_BOX;
      if (!full) b->item[b->n++] = it;
      pthread_mutex_unlock(&b->lock);
      if (full) mt_release(m, arg->id, it);
    } else {
      if (nown == KEEP) mt_release(m, arg->id, own[--nown]);
      own[nown++] = it;
    }
    if (op % 16 == 0) mt_drain(m, arg->id);
  }
  while (nown > 0) mt_release(m, arg->id, own[--nown]);
  pthread_barrier_wait(&m->barrier);  /* nobody hands blocks any more */
  mt_drain(m, arg->id);
  return NULL;
}

START_TEST(test_threads_two_instances) {
  struct mt *m = calloc(1, sizeof(*m));
  ck_assert_ptr_ne(m, NULL);
  m->inst[0] = create_or_fail(NULL);
  m->inst[1] = create_or_fail(NULL);
  for (int i = 0; i < MT_THREADS; i++)
    pthread_mutex_init(&m->box[i].lock, NULL);
  pthread_barrier_init(&m->barrier, NULL, MT_THREADS);
  pthread_t t[MT_THREADS];
  struct mt_arg args[MT_THREADS];
  for (int i = 0; i < MT_THREADS; i++) {
    args[i].m = m;
    args[i].id = i;
    fa_start_thread(&t[i], mt_thread, &args[i]);
  }
  for (int i = 0; i < MT_THREADS; i++) pthread_join(t[i], NULL);
  ck_assert_msg(!fa_failed(&m->fail), "%s", m->fail.msg);
  for (int k = 0; k < 2; k++) {
    fa_capture_t c;
    fa_capture_begin(&c);
    bool leaks = fancy_allocator_check_leaks(m->inst[k]);
    char *text = fa_capture_end(&c);
    ck_assert_msg(!leaks, "instance %d: every block was freed, but "
                  "fancy_allocator_check_leaks reports: \"%s\"", k, text);
    free(text);
  }
  validate_and_destroy(m->inst[0], "instance 0");
  validate_and_destroy(m->inst[1], "instance 1");
  pthread_barrier_destroy(&m->barrier);
  free(m);
}
END_TEST

/* One instance in use by 4 threads while the main thread creates, fills
 * and destroys other instances. */
struct busy {
  fancy_allocator_t *a;
  atomic_int stop;
  fa_failure_t fail;
  int id;
};

static void *busy_thread(void *argp) {
  struct busy *b = argp;
  uint64_t rng = 77 + (uint64_t)b->id;
  enum { KEEP = 512 };
  void *keep[KEEP] = {0};
  unsigned long it = 0;
  while (!atomic_load(&b->stop) && !fa_failed(&b->fail)) {
    int slot = (int)(fa_rand(&rng) % KEEP);
    if (keep[slot] != NULL) {
      size_t bad;
      if (fa_verify(keep[slot], &bad) == 0)
        fa_fail(&b->fail, "busy thread %d: block %p corrupt at byte %zu "
                "(after %lu operations)", b->id, keep[slot], bad, it);
      fancy_allocator_free(b->a, keep[slot]);
    }
    size_t n = fa_mixed_size(&rng);
    keep[slot] = fancy_allocator_malloc(b->a, n);
    if (keep[slot] == NULL) {
      fa_fail(&b->fail, "busy thread %d: malloc(%zu) failed", b->id, n);
      break;
    }
    fa_mark(keep[slot], n, (unsigned)it++);
  }
  for (int i = 0; i < KEEP; i++) fancy_allocator_free(b->a, keep[i]);
  return NULL;
}

START_TEST(test_destroy_while_other_in_use) {
  enum { NT = 4 };
  struct busy *b = calloc(NT, sizeof(*b));
  ck_assert_ptr_ne(b, NULL);
  fancy_allocator_t *a = create_or_fail(NULL);
  pthread_t t[NT];
  for (int i = 0; i < NT; i++) {
    b[i].a = a;
    b[i].id = i;
    fa_start_thread(&t[i], busy_thread, &b[i]);
  }
  uint64_t rng = 5;
  for (int round = 0; round < 50; round++) {
    fancy_allocator_t *x = create_or_fail(NULL);
    for (int i = 0; i < 2000; i++) {
      size_t n = fa_mixed_size(&rng);
      void *p = fancy_allocator_malloc(x, n);
      FA_REQUIRE(p != NULL, "round %d: malloc(%zu) in the new instance "
                 "failed", round, n);
      fa_fill(p, 0, n < 64 ? n : 64, (unsigned)i);
    }
    void *h = fancy_allocator_malloc(x, 3 * FA_MIB);  /* a huge block too */
    FA_REQUIRE(h != NULL, "round %d: 3 MiB block failed", round);
    fancy_allocator_destroy(x);  /* with every block live */
  }
  for (int i = 0; i < NT; i++) atomic_store(&b[i].stop, 1);
  for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < NT; i++)
    ck_assert_msg(!fa_failed(&b[i].fail), "%s", b[i].fail.msg);
  validate_and_destroy(a, "the busy instance");
  free(b);
}
END_TEST

/* ------------------------------------------------------------------------
 * Destroy releases everything at once
 * ---------------------------------------------------------------------- */
#define BIG_TOTAL (256 * FA_MIB)

/* Fills a with BIG_TOTAL bytes of blocks of every kind (10% of them up to
 * 4 MiB, so also huge ones), all written to, all left live; the same
 * blocks for the same seed.  Returns how many. */
static unsigned long fill_instance(fancy_allocator_t *a, uint64_t seed) {
  uint64_t rng = seed;
  size_t total = 0;
  unsigned long nblocks = 0;
  while (total < BIG_TOTAL) {
    uint64_t r = fa_rand(&rng);
    size_t n = r % 10 == 0 ? (size_t)(r >> 8) % (4 * FA_MIB) + 1
                           : fa_mixed_size(&rng);
    void *p = fancy_allocator_malloc(a, n);
    FA_REQUIRE(p != NULL, "malloc(%zu) failed after %zu bytes", n, total);
    memset(p, 0x77, n);  /* make it resident */
    total += n;
    nblocks++;
  }
  return nblocks;
}

START_TEST(test_destroy_live_blocks) {
  fa_touch_heap();
  size_t rss0, vs0;
  proc_memory(&rss0, &vs0);
  fancy_stats_t s0 = fa_stats();

  fancy_allocator_t *a = create_or_fail(NULL);
  unsigned long nblocks = fill_instance(a, 1);
  size_t rss1, vs1;
  proc_memory(&rss1, &vs1);
  ck_assert_msg(rss1 >= rss0 + BIG_TOTAL / 2, "RSS grew by only %zu bytes "
                "with %zu bytes written", rss1 - rss0, (size_t)BIG_TOTAL);
  ck_assert(fancy_allocator_validate(a));
  fancy_allocator_destroy(a);  /* nblocks live blocks */

  size_t rss2, vs2;
  proc_memory(&rss2, &vs2);
  fancy_stats_t s2 = fa_stats();
  ck_assert_msg(!rss_falls || rss2 <= rss0 + 16 * FA_MIB,
                "after destroying an instance with %lu live blocks (%zu "
                "bytes), RSS is %zu KiB, %zu KiB above what it was before "
                "(%zu KiB, %zu KiB at the peak)", nblocks,
                (size_t)BIG_TOTAL, rss2 >> 10, (rss2 - rss0) >> 10,
                rss0 >> 10, rss1 >> 10);
  ck_assert_msg(s2.bytes_mapped <= s0.bytes_mapped + 16 * FA_MIB,
                "fancy_stats_get: bytes_mapped %zu after destroy, %zu "
                "before create", s2.bytes_mapped, s0.bytes_mapped);
  ck_assert_msg(s2.bytes_live <= s0.bytes_live,
                "fancy_stats_get: bytes_live %zu after destroy, %zu before "
                "create", s2.bytes_live, s0.bytes_live);

  /* Address space need not come back (segments are never unmapped, see
   * lib/segment.c: they are purged and kept for reuse), but a new instance
   * doing the same again must reuse it rather than map as much again. */
  fancy_allocator_t *b = create_or_fail(NULL);
  fill_instance(b, 1);
  size_t rss3, vs3;
  proc_memory(&rss3, &vs3);
  ck_assert_msg(vs3 <= vs1 + 32 * FA_MIB, "a new instance doing the same "
                "as the destroyed one took the address space to %zu MiB, "
                "%zu MiB above the first instance's peak: the destroyed "
                "instance's memory was not reused", vs3 >> 20,
                (vs3 - vs1) >> 20);
  (void)vs0;
  (void)vs2;
  ck_assert(fancy_allocator_validate(b));
  fancy_allocator_destroy(b);
  proc_memory(&rss3, NULL);
  ck_assert_msg(!rss_falls || rss3 <= rss0 + 16 * FA_MIB, "after destroying the second "
                "instance, RSS is %zu KiB above what it was before the "
                "first", (rss3 - rss0) >> 10);
}
END_TEST

START_TEST(test_create_destroy_1000) {
  enum { ROUNDS = 1000, WARMUP = 10 };
  fa_touch_heap();
  size_t rss0 = 0, vs0 = 0, mapped0 = 0;
  uint64_t rng = 3;
  for (int round = 0; round < ROUNDS; round++) {
    if (round == WARMUP) {
      proc_memory(&rss0, &vs0);
      mapped0 = fa_stats().bytes_mapped;
    }
    fancy_allocator_t *a = create_or_fail(NULL);
    void *keep[64];
    for (int i = 0; i < 64; i++) {
      size_t n = fa_mixed_size(&rng);
      keep[i] = fancy_allocator_malloc(a, n);
      FA_REQUIRE(keep[i] != NULL, "round %d: malloc(%zu) failed", round, n);
      memset(keep[i], i, n);
    }
    void *big = fancy_allocator_malloc(a, FA_MIB);
    void *huge = fancy_allocator_malloc(a, 3 * FA_MIB);
    FA_REQUIRE(big != NULL && huge != NULL, "round %d: large blocks failed",
               round);
    memset(big, 1, FA_MIB);
    memset(huge, 2, 3 * FA_MIB);
    /* free half, leave the rest to destroy */
    for (int i = 0; i < 64; i += 2) fancy_allocator_free(a, keep[i]);
    if (round % 2) fancy_allocator_free(a, huge);
    if (round % 100 == 0)
      FA_REQUIRE(fancy_allocator_validate(a), "round %d: validate failed",
                 round);
    fancy_allocator_destroy(a);
  }
  size_t rss1, vs1;
  proc_memory(&rss1, &vs1);
  size_t mapped1 = fa_stats().bytes_mapped;
  /* Bound: 32 MiB of growth over 990 rounds, each of which had ~5 MiB
   * live when destroyed (about 5 GB in all). */
  ck_assert_msg(vs1 <= vs0 + 32 * FA_MIB, "address space grew by %zu MiB "
                "over %d create/destroy rounds", (vs1 - vs0) >> 20,
                ROUNDS - WARMUP);
  ck_assert_msg(!rss_falls || rss1 <= rss0 + 32 * FA_MIB, "RSS grew by %zu MiB over %d "
                "create/destroy rounds", (rss1 - rss0) >> 20,
                ROUNDS - WARMUP);
  ck_assert_msg(mapped1 <= mapped0 + 32 * FA_MIB, "fancy_stats_get: "
                "bytes_mapped grew by %zu MiB over %d create/destroy rounds",
                (mapped1 - mapped0) >> 20, ROUNDS - WARMUP);
}
END_TEST

/* ------------------------------------------------------------------------
 * The maximum of instances
 * ---------------------------------------------------------------------- */
START_TEST(test_max_instances) {
  fancy_allocator_t *all[MAX_INSTANCES + 8];
  void *blk[MAX_INSTANCES + 8];
  int n = 0;
  for (;;) {
    errno = 0;
    fancy_allocator_t *a = fancy_allocator_create(NULL);
    if (a == NULL) break;
    ck_assert_msg(n < MAX_INSTANCES, "fancy_allocator_create succeeded %d "
                  "times: more than the maximum of %d", n + 1, MAX_INSTANCES);
    all[n] = a;
    blk[n] = fancy_allocator_malloc(a, 100 + (size_t)n);
    ck_assert_msg(blk[n] != NULL, "instance #%d: malloc failed", n);
    fa_fill(blk[n], 0, 100 + (size_t)n, (unsigned)n);
    n++;
  }
  ck_assert_msg(errno == EAGAIN, "fancy_allocator_create #%d failed with "
                "errno %d (%s), not EAGAIN", n + 1, errno, strerror(errno));
  ck_assert_msg(n == MAX_INSTANCES, "only %d instances could be created, "
                "not %d", n, MAX_INSTANCES);
  /* still full: EAGAIN again */
  errno = 0;
  ck_assert_ptr_eq(fancy_allocator_create(NULL), NULL);
  ck_assert_int_eq(errno, EAGAIN);
  /* the default instance still works */
  void *d = fancy_malloc(1000);
  ck_assert_ptr_ne(d, NULL);
  fancy_free(d);
  /* all distinct, every block intact */
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < i; j++) ck_assert_ptr_ne(all[i], all[j]);
    ck_assert_uint_eq(fa_check(blk[i], 0, 100 + (size_t)i, (unsigned)i),
                      SIZE_MAX);
  }
  /* one slot freed: one more instance, then EAGAIN again */
  validate_and_destroy(all[n - 1], "the last instance");
  all[n - 1] = create_or_fail(NULL);
  errno = 0;
  ck_assert_ptr_eq(fancy_allocator_create(NULL), NULL);
  ck_assert_int_eq(errno, EAGAIN);
  for (int i = 0; i < n; i++) validate_and_destroy(all[i], "an instance");
  /* all slots free again */
  for (int i = 0; i < n; i++) {
    all[i] = create_or_fail(NULL);
    void *p = fancy_allocator_malloc(all[i], 64);
    ck_assert_ptr_ne(p, NULL);
  }
  for (int i = 0; i < n; i++) fancy_allocator_destroy(all[i]);
}
END_TEST

/* ------------------------------------------------------------------------
 * memory_limit per instance
 * ---------------------------------------------------------------------- */
#define LIMIT (32 * FA_MIB)

START_TEST(test_memory_limit) {
  fancy_allocator_config_t cfg = {.memory_limit = LIMIT};
  fancy_allocator_t *a = create_or_fail(&cfg);
  enum { MAXB = 128 };
  void *b[MAXB];
  int n = 0;
  for (;;) {
    ck_assert_msg(n < MAXB, "%d blocks of 1 MiB from an instance limited "
                  "to %zu MiB", n, LIMIT >> 20);
    errno = 0;
    b[n] = fancy_allocator_malloc(a, FA_MIB);
    if (b[n] == NULL) break;
    memset(b[n], 3, FA_MIB);
    n++;
  }
  ck_assert_msg(errno == ENOMEM, "the failing malloc set errno %d (%s), not "
                "ENOMEM", errno, strerror(errno));
  ck_assert_msg((size_t)n * FA_MIB <= LIMIT, "%d MiB handed out under a "
                "limit of %zu MiB", n, LIMIT >> 20);
  ck_assert_msg((size_t)n * FA_MIB >= LIMIT / 2, "only %d MiB handed out "
                "under a limit of %zu MiB", n, LIMIT >> 20);
  /* one block bigger than the limit */
  errno = 0;
  ck_assert_ptr_eq(fancy_allocator_malloc(a, LIMIT + FA_MIB), NULL);
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_eq(fancy_allocator_calloc(a, 1, 2 * LIMIT), NULL);
  ck_assert_int_eq(errno, ENOMEM);

  /* the default instance, and an instance without a limit, are unaffected */
  void *d[64];
  for (int i = 0; i < 64; i++) {
    d[i] = fancy_malloc(FA_MIB);
    ck_assert_msg(d[i] != NULL, "default instance: 1 MiB block #%d failed "
                  "while instance a is at its limit", i);
    memset(d[i], 4, FA_MIB);
  }
  void *dh = fancy_malloc(2 * LIMIT);
  ck_assert_msg(dh != NULL, "default instance: %zu MiB block failed",
                (2 * LIMIT) >> 20);
  fancy_free(dh);
  for (int i = 0; i < 64; i++) fancy_free(d[i]);
  fancy_allocator_t *u = create_or_fail(NULL);
  void *uh = fancy_allocator_malloc(u, 2 * LIMIT);
  ck_assert_msg(uh != NULL, "an instance without a limit: %zu MiB failed",
                (2 * LIMIT) >> 20);
  fancy_allocator_free(u, uh);
  validate_and_destroy(u, "u");

  /* after freeing, a can allocate again, about as much as before */
  for (int i = 0; i < n; i++) fancy_allocator_free(a, b[i]);
  int again = 0;
  for (;;) {
    void *p = fancy_allocator_malloc(a, FA_MIB);
    if (p == NULL) break;
    b[again++] = p;
    ck_assert_int_lt(again, MAXB);
  }
  ck_assert_msg(again >= n - 4, "after freeing everything, only %d MiB "
                "could be had again (%d the first time)", again, n);
  for (int i = 0; i < again; i++) fancy_allocator_free(a, b[i]);
  validate_and_destroy(a, "a");
}
END_TEST

/* ------------------------------------------------------------------------
 * Misuse: a block freed into another instance aborts
 * ---------------------------------------------------------------------- */
enum misuse_kind {
  MISUSE_B_FREES_A_SMALL,
  MISUSE_B_FREES_A_LARGE,
  MISUSE_B_FREES_A_HUGE,
  MISUSE_FANCY_FREE_OF_A,
  MISUSE_FANCY_FREE_OF_A_HUGE,
  MISUSE_A_FREES_DEFAULT,
  MISUSE_A_FREES_DEFAULT_HUGE,
  MISUSE_DEFAULT_FREES_A,
  MISUSE_COUNT
};

static const char *const misuse_name[MISUSE_COUNT] = {
  "fancy_allocator_free(b, 64-byte block of a)",
  "fancy_allocator_free(b, 256 KiB block of a)",
  "fancy_allocator_free(b, 8 MiB block of a)",
  "fancy_free(64-byte block of a)",
  "fancy_free(8 MiB block of a)",
  "fancy_allocator_free(a, 64-byte block of the default instance)",
  "fancy_allocator_free(a, 8 MiB block of the default instance)",
  "fancy_allocator_free(fancy_allocator_default(), 64-byte block of a)",
};

static void do_misuse(enum misuse_kind kind) {
  fancy_allocator_t *a = fancy_allocator_create(NULL);
  fancy_allocator_t *b = fancy_allocator_create(NULL);
  if (a == NULL || b == NULL) {
    fprintf(stderr, "test: fancy_allocator_create failed: %s\n",
            strerror(errno));
    _exit(2);
  }
  /* b has blocks of its own, so that its heap is not empty */
  void *nb = fancy_allocator_malloc(b, 64);
  (void)nb;
  void *volatile p = NULL;
  switch (kind) {
  case MISUSE_B_FREES_A_SMALL:
    p = fancy_allocator_malloc(a, 64);
    fancy_allocator_free(b, p);
    break;
  case MISUSE_B_FREES_A_LARGE:
    p = fancy_allocator_malloc(a, 256 * FA_KIB);
    fancy_allocator_free(b, p);
    break;
  case MISUSE_B_FREES_A_HUGE:
    p = fancy_allocator_malloc(a, 8 * FA_MIB);
    fancy_allocator_free(b, p);
    break;
  case MISUSE_FANCY_FREE_OF_A:
    p = fancy_allocator_malloc(a, 64);
    fancy_free(p);
    break;
  case MISUSE_FANCY_FREE_OF_A_HUGE:
    p = fancy_allocator_malloc(a, 8 * FA_MIB);
    fancy_free(p);
    break;
  case MISUSE_A_FREES_DEFAULT:
    p = fancy_malloc(64);
    fancy_allocator_free(a, p);
    break;
  case MISUSE_A_FREES_DEFAULT_HUGE:
    p = fancy_malloc(8 * FA_MIB);
    fancy_allocator_free(a, p);
    break;
  case MISUSE_DEFAULT_FREES_A:
    p = fancy_allocator_malloc(a, 64);
    fancy_allocator_free(fancy_allocator_default(), p);
    break;
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

MISUSE_TEST(test_abort_b_frees_a_small, MISUSE_B_FREES_A_SMALL)
MISUSE_TEST(test_abort_b_frees_a_large, MISUSE_B_FREES_A_LARGE)
MISUSE_TEST(test_abort_b_frees_a_huge, MISUSE_B_FREES_A_HUGE)
MISUSE_TEST(test_abort_fancy_free_of_a, MISUSE_FANCY_FREE_OF_A)
MISUSE_TEST(test_abort_fancy_free_of_a_huge, MISUSE_FANCY_FREE_OF_A_HUGE)
MISUSE_TEST(test_abort_a_frees_default, MISUSE_A_FREES_DEFAULT)
MISUSE_TEST(test_abort_a_frees_default_huge, MISUSE_A_FREES_DEFAULT_HUGE)
MISUSE_TEST(test_abort_default_frees_a, MISUSE_DEFAULT_FREES_A)

/* The child side of fa_stderr_of_child. */
static void misuse_child(int kind) { do_misuse((enum misuse_kind)kind); }

START_TEST(test_abort_message_one_line) {
  fa_assert_misuse_messages(misuse_child, MISUSE_COUNT, misuse_name);
}
END_TEST

Suite *make_instances_suite(void) {
  Suite *s = suite_create("instances");

  TCase *tc = inst_tcase("calls", FA_TIMEOUT_QUICK);
  tcase_add_test(tc, test_create_configs);
  tcase_add_test(tc, test_default_instance);
  tcase_add_test(tc, test_malloc_sizes);
  tcase_add_test(tc, test_malloc_too_big);
  tcase_add_test(tc, test_usable_size_null);
  tcase_add_test(tc, test_calloc);
  tcase_add_test(tc, test_realloc);
  tcase_add_test(tc, test_aligned);
  tcase_add_test(tc, test_separate_memory);
  tcase_add_test(tc, test_diagnostics);
  suite_add_tcase(s, tc);

  tc = inst_tcase("threads", FA_TIMEOUT_STRESS);
  tcase_add_test(tc, test_threads_two_instances);
  tcase_add_test(tc, test_destroy_while_other_in_use);
  suite_add_tcase(s, tc);

  tc = inst_tcase("lifetime", FA_TIMEOUT_STRESS);
  tcase_add_test(tc, test_destroy_live_blocks);
  tcase_add_test(tc, test_create_destroy_1000);
  tcase_add_test(tc, test_max_instances);
  tcase_add_test(tc, test_memory_limit);
  suite_add_tcase(s, tc);

  /* No validation after these: they end in abort(). */
  tc = tcase_create("misuse");
  tcase_set_timeout(tc, FA_TIMEOUT_QUICK);
  tcase_add_test_raise_signal(tc, test_abort_b_frees_a_small, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_b_frees_a_large, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_b_frees_a_huge, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_fancy_free_of_a, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_fancy_free_of_a_huge, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_a_frees_default, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_a_frees_default_huge, SIGABRT);
  tcase_add_test_raise_signal(tc, test_abort_default_frees_a, SIGABRT);
  tcase_add_test(tc, test_abort_message_one_line);
  suite_add_tcase(s, tc);
  return s;
}
