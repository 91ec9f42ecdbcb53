/* SPDX-License-Identifier: MIT */
/*
 * check_white.c - white-box tests of the allocator's internals, linked
 * against the uninstalled core (lib/libfancycore.la) so they can read the
 * segment and page structures and inject mmap failures.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "../lib/internal.h"

static fa_page_t *span_of(void *p) { return fa_segment_span_of(fa_ptr_segment(p), p); }

static void check_valid(void) { ck_assert_msg(fancy_validate_heap(), "heap invalid"); }

/* Every size maps to the smallest class that holds it, and the class
 * table is what the document lists for the small tier. */
START_TEST(test_size_classes) {
  static const uint32_t doc[16] = {16, 32, 48, 64, 80, 96, 112, 128,
                                   160, 192, 224, 256, 320, 384, 448, 512};
  for (unsigned c = 0; c < 16; c++) ck_assert_uint_eq(_fa_class_size[c], doc[c]);
  for (size_t n = 0; n <= FA_MEDIUM_MAX; n++) {
    unsigned c = fa_size_class(n);
    ck_assert_uint_lt(c, FA_NUM_CLASSES);
    ck_assert_uint_ge(_fa_class_size[c], n);
    if (c > 0) ck_assert_uint_lt(_fa_class_size[c - 1], n ? n : 1);
    ck_assert_uint_eq(_fa_class_size[c] % 16, 0);
  }
}
END_TEST

/* Blocks carry no header: consecutive small blocks of one class sit
 * exactly bsize apart, and their page is found from the address. */
START_TEST(test_no_header) {
  if (_fa_opt.check) return;   /* checked mode adds 16 bytes on purpose */
  void *a = fancy_malloc(16), *b = fancy_malloc(16);
  fa_page_t *pa = span_of(a);
  ck_assert_ptr_eq(pa, span_of(b));
  ck_assert_int_eq(pa->kind, FA_PAGE_CLASS);
  ck_assert_uint_eq(pa->bsize, 16);
  intptr_t d = (intptr_t)b - (intptr_t)a;
  ck_assert_int_eq(d < 0 ? -d : d, 16);
  fancy_free(a);
  fancy_free(b);
  check_valid();
}
END_TEST

/* Freeing the large spans of a segment in any order coalesces them back
 * into one free span covering the whole segment. */
START_TEST(test_span_coalescing) {
  enum { N = 12 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = fancy_malloc(200 * 1024);   /* 4 pages each */
    ck_assert_ptr_nonnull(p[i]);
    ck_assert_int_eq(span_of(p[i])->kind, FA_PAGE_LARGE);
  }
  fa_segment_t *seg = fa_ptr_segment(p[0]);
  int order[N] = {3, 1, 2, 0, 7, 5, 6, 4, 11, 9, 10, 8};
  for (int i = 0; i < N; i++) {
    fancy_free(p[order[i]]);
    check_valid();      /* also checks that no two free spans touch */
  }
  fa_page_t *first = &seg->pages[FA_FIRST_PAGE];
  if (atomic_load(&seg->heap) == fa_heap_get()) {
    size_t used_pages = FA_SEGMENT_USABLE_PAGES - seg->free_pages;
    ck_assert_msg(first->kind != FA_PAGE_LARGE, "first span still large");
    ck_assert_uint_le(used_pages, FA_SEGMENT_USABLE_PAGES);
  }
}
END_TEST

/* A large block grows in place into the free pages after it. */
START_TEST(test_large_realloc_in_place) {
  if (_fa_opt.check) return;   /* checked mode always moves (fresh canary) */
  void *p = fancy_malloc(100 * 1024);
  void *guard = fancy_malloc(40 * 1024);   /* keep the heap busy elsewhere */
  memset(p, 0x5a, 100 * 1024);
  void *q = fancy_realloc(p, 300 * 1024);
  ck_assert_ptr_nonnull(q);
  unsigned char *c = q;
  for (size_t i = 0; i < 100 * 1024; i++) ck_assert_uint_eq(c[i], 0x5a);
  void *r = fancy_realloc(q, 70 * 1024);      /* shrink: always in place */
  ck_assert_ptr_eq(r, q);
  ck_assert_uint_eq(fancy_malloc_usable_size(r), 2 * FA_PAGE_SIZE);
  fancy_free(r);
  fancy_free(guard);
  check_valid();
}
END_TEST

struct xfer {
  void **blocks;
  size_t n;
};

static void *free_all(void *arg) {
  struct xfer *x = arg;
  for (size_t i = 0; i < x->n; i++) fancy_free(x->blocks[i]);
  return NULL;
}

/* Blocks freed by another thread land on the page's xfree list and are
 * counted as live until the owner collects them; then used drops. */
START_TEST(test_remote_free_collection) {
  enum { N = 1000 };
  void *blocks[N];
  for (int i = 0; i < N; i++) blocks[i] = fancy_malloc(48);
  fa_page_t *page = span_of(blocks[0]);
  uint32_t used_before = page->used;
  struct xfer x = {blocks, N};
  pthread_t t;
  pthread_create(&t, NULL, free_all, &x);
  pthread_join(t, NULL);
  ck_assert_uint_eq(page->used, used_before);     /* not collected yet */
  uintptr_t pending = atomic_load(&page->xfree);
  ck_assert_ptr_nonnull(fa_xfree_list(pending));
  /* the count travels with the list: as many as the list holds */
  ck_assert_uint_eq(fa_xfree_count(pending), _fa_list_length(fa_xfree_list(pending), N));
  ck_assert_uint_gt(fa_xfree_count(pending), 1);
  ck_assert_int_ne(atomic_load(&fa_heap_get()->xpending), 0);
  _fa_heap_collect_remote(fa_heap_get(), false);
  ck_assert_uint_eq(atomic_load(&page->xfree), 0);
  ck_assert_uint_lt(page->used, used_before);
  check_valid();
}
END_TEST

static void *alloc_and_exit(void *arg) {
  void **out = arg;
  for (int i = 0; i < 5000; i++) out[i] = fancy_malloc(64 + (size_t)(i % 7) * 100);
  return NULL;
}

/* A thread exits with live blocks: its segment is abandoned (no owner),
 * the blocks stay valid, and freeing them all lets the segment be
 * reclaimed; a new thread adopts abandoned memory before mapping more. */
START_TEST(test_abandon_and_adopt) {
  static void *blocks[5000];
  pthread_t t;
  pthread_create(&t, NULL, alloc_and_exit, blocks);
  pthread_join(t, NULL);
  fa_segment_t *seg = fa_ptr_segment(blocks[0]);
  ck_assert_ptr_null(atomic_load(&seg->heap));
  ck_assert_int_eq(seg->state, FA_SEG_ABANDONED);
  check_valid();                       /* deep-checks abandoned segments */
  for (int i = 0; i < 5000; i++) fancy_free(blocks[i]);
  size_t mapped = atomic_load(&_fa_counters.mapped);
  _fa_abandoned_collect(SIZE_MAX, true);
  ck_assert_int_ne(seg->state, FA_SEG_ABANDONED);
  /* A fresh thread reuses it instead of mapping a new segment. */
  pthread_create(&t, NULL, alloc_and_exit, blocks);
  pthread_join(t, NULL);
  ck_assert_uint_le(atomic_load(&_fa_counters.mapped), mapped + FA_SEGMENT_SIZE);
  for (int i = 0; i < 5000; i++) fancy_free(blocks[i]);
  check_valid();
}
END_TEST

/* When the OS refuses memory, allocation reports ENOMEM and the heap
 * stays usable; nothing crashes. */
START_TEST(test_mmap_failure_enomem) {
  void *keep = fancy_malloc(32);   /* the thread has a heap already */
  _fa_os_fail_after = 1;           /* the next mapping fails */
  errno = 0;
  void *huge = fancy_malloc(64u << 20);
  ck_assert_ptr_null(huge);
  ck_assert_int_eq(errno, ENOMEM);
  void *big[64];
  size_t got = 0;
  for (; got < 64; got++) {        /* exhaust what the heap has mapped */
    big[got] = fancy_malloc(1u << 20);
    if (big[got] == NULL) break;
  }
  ck_assert_uint_lt(got, 64);
  ck_assert_int_eq(errno, ENOMEM);
  _fa_os_fail_after = 0;
  for (size_t i = 0; i < got; i++) fancy_free(big[i]);
  void *again = fancy_malloc(64u << 20);
  ck_assert_ptr_nonnull(again);
  fancy_free(again);
  fancy_free(keep);
  check_valid();
}
END_TEST

/* Purging returns a free span's pages: afterwards they read as zero and
 * the committed count drops. */
START_TEST(test_purge_returns_memory) {
  void *p = fancy_malloc(1u << 20);
  memset(p, 0xab, 1u << 20);
  size_t committed = atomic_load(&_fa_counters.committed);
  fancy_free(p);
  ck_assert_int_eq(fancy_trim(0), 1);
  ck_assert_uint_lt(atomic_load(&_fa_counters.committed), committed);
  void *q = fancy_calloc(1, 1u << 20);
  ck_assert_ptr_nonnull(q);
  unsigned char *c = q;
  for (size_t i = 0; i < (1u << 20); i += 4096) ck_assert_uint_eq(c[i], 0);
  fancy_free(q);
  check_valid();
}
END_TEST

/* Generations of threads that overlap: each creates its successor and
 * exits while the successor frees and replaces its blocks.  A thread's
 * exit (heap.c: _fa_heap_done) once freed the span of a page emptied by
 * its last collection twice, and a later malloc handed out live memory. */
enum { GEN_SLOTS = 5000, GENERATIONS = 150 };
static void *gen_slots[GEN_SLOTS];
static uint32_t gen_rng = 7;
static _Atomic int gens_left;
static _Atomic int gens_done;

static uint32_t gen_rand(void) {
  gen_rng = gen_rng * 1103515245u + 12345u;
  return gen_rng >> 8;
}

static void *generation(void *arg) {
  (void)arg;
  for (int i = 0; i < 20000; i++) {
    uint32_t v = gen_rand() % GEN_SLOTS;
    size_t n = 8 + gen_rand() % 1000;
    fancy_free(gen_slots[v]);
    gen_slots[v] = fancy_malloc(n);
    memset(gen_slots[v], (int)v, n);
  }
  if (atomic_fetch_sub(&gens_left, 1) > 1) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, generation, NULL);   /* before this one exits */
    pthread_attr_destroy(&attr);
  } else {
    atomic_store(&gens_done, 1);
  }
  return NULL;
}

START_TEST(test_overlapping_thread_generations) {
  for (int round = 0; round < 5; round++) {   /* a race: several tries */
    for (int i = 0; i < GEN_SLOTS; i++) gen_slots[i] = fancy_malloc(64);
    atomic_store(&gens_left, GENERATIONS);
    atomic_store(&gens_done, 0);
    pthread_t t;
    pthread_create(&t, NULL, generation, NULL);
    pthread_detach(t);
    while (!atomic_load(&gens_done)) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
    for (int i = 0; i < GEN_SLOTS; i++) fancy_free(gen_slots[i]);
    check_valid();
  }
}
END_TEST

/* free's inline check: fa_block_index() of every offset in a span of
 * every class is the block number exactly at block starts and beyond the
 * span's blocks everywhere else (one multiply and one rotate). */
START_TEST(test_block_index_every_offset) {
  if (_fa_opt.check) return;   /* checked mode shifts the class of a size */
  for (unsigned c = 0; c < FA_NUM_CLASSES; c++) {
    void *p = fancy_malloc(_fa_class_size[c]);
    fa_page_t page = *span_of(p);
    ck_assert_uint_eq(page.bsize, _fa_class_size[c]);
    page.capacity = page.reserved;
    uintptr_t start = (uintptr_t)page.start;
    size_t end = (size_t)page.span_pages << FA_PAGE_SHIFT;
    for (size_t off = 0; off < end; off++) {
      bool is_start = off % page.bsize == 0 && off / page.bsize < page.reserved;
      uint32_t idx = fa_block_index(&page, start + off);
      ck_assert_msg(fa_page_is_block_start(&page, start + off) == is_start,
                    "class %u offset %zu", _fa_class_size[c], off);
      if (is_start) ck_assert_uint_eq(idx, off / page.bsize);
    }
    fancy_free(p);
  }
}
END_TEST

static void *malloc_fresh(void *arg) {
  void **out = arg;
  out[0] = fancy_malloc(20000);
  out[1] = span_of(out[0])->zeroed ? out[0] : NULL;
  return NULL;
}

/* malloc hands out blocks of fresh memory without writing to them, so
 * the page fault of a first touch happens in the caller, not in malloc:
 * a new thread's first medium block is not resident yet. */
START_TEST(test_fresh_blocks_untouched) {
  if (_fa_opt.populate || _fa_opt.huge_pages || _fa_opt.check) return;
  fancy_trim(0);                  /* the warm cache goes: fresh segments */
  void *out[2];
  pthread_t t;
  pthread_create(&t, NULL, malloc_fresh, out);
  pthread_join(t, NULL);
  ck_assert_ptr_nonnull(out[0]);
  ck_assert_msg(out[1] != NULL, "the new thread's span is not known to be zero");
  uintptr_t lo = (uintptr_t)out[0] & ~(uintptr_t)4095;
  uintptr_t hi = ((uintptr_t)out[0] + 20000 + 4095) & ~(uintptr_t)4095;
  unsigned char vec[8];
  ck_assert_int_eq(mincore((void *)lo, hi - lo, vec), 0);
  for (size_t i = 0; i < (hi - lo) / 4096; i++)
    ck_assert_msg((vec[i] & 1) == 0, "page %zu of a fresh block is resident", i);
  memset(out[0], 1, 20000);
  fancy_free(out[0]);
  check_valid();
}
END_TEST

/* A class span that emptied and went back to the free spans is reused,
 * unpurged, by the same class: its blocks still hold the free tags of
 * their first life.  Handing them out must clear the tags, or another
 * thread's free of such a block reads as a double free and aborts. */
START_TEST(test_reused_span_remote_free) {
  if (_fa_opt.check) return;
  enum { N = 4000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) blocks[i] = fancy_malloc(96);
  fa_page_t *first = span_of(blocks[0]);
  for (int i = 0; i < N; i++) fancy_free(blocks[i]);
  ck_assert_int_eq(first->kind, FA_PAGE_FREE);     /* retired, not the current span */
  bool stale = false;
  for (int i = 0; i < N; i++) {
    blocks[i] = fancy_malloc(96);
    fa_page_t *page = span_of(blocks[i]);
    if (page == first && !page->zeroed) stale = true;
  }
  ck_assert_msg(stale, "no block came from the unpurged span");
  struct xfer x = {blocks, N};
  pthread_t t;
  pthread_create(&t, NULL, free_all, &x);
  pthread_join(t, NULL);
  _fa_heap_collect_remote(fa_heap_get(), true);
  check_valid();
}
END_TEST

/* A purge of locked memory (mlockall programs) fails in the kernel; the
 * pages must still read as zero afterwards, as calloc and malloc's
 * in-place hand-out of purged memory assume. */
START_TEST(test_purge_locked_memory_zeroes) {
  size_t len = 65536;
  unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(p, MAP_FAILED);
  memset(p, 0xab, len);
  if (mlock(p, len) != 0) {       /* RLIMIT_MEMLOCK too small: nothing to test */
    munmap(p, len);
    return;
  }
  _fa_os_purge(p, len);
  for (size_t i = 0; i < len; i++) ck_assert_uint_eq(p[i], 0);
  munlock(p, len);
  munmap(p, len);
}
END_TEST

/* A free into a segment whose thread exited takes the segment over: the
 * free and those after it are local, the freed memory serves this
 * thread's mallocs at once, and once empty the segment is given back
 * (not kept under this thread's retention budget). */
START_TEST(test_free_reclaims_abandoned_segment) {
  static void *blocks[5000];
  fancy_free(fancy_malloc(16));         /* this thread has a heap */
  pthread_t t;
  pthread_create(&t, NULL, alloc_and_exit, blocks);
  pthread_join(t, NULL);
  fa_segment_t *seg = fa_ptr_segment(blocks[0]);
  ck_assert_int_eq(seg->state, FA_SEG_ABANDONED);
  fancy_free(blocks[0]);
  ck_assert_ptr_eq(atomic_load(&seg->heap), fa_heap_get());
  ck_assert_int_eq(seg->state, FA_SEG_OWNED);
  ck_assert(seg->reclaimed);
  size_t remote = atomic_load(&_fa_counters.remote_frees);
  for (int i = 1; i < 5000; i++)
    if (fa_ptr_segment(blocks[i]) == seg) fancy_free(blocks[i]);
  _fa_heap_collect_remote(fa_heap_get(), true);
  ck_assert_uint_eq(atomic_load(&_fa_counters.remote_frees), remote);   /* all local */
  ck_assert_msg(atomic_load(&seg->heap) != fa_heap_get(), "an emptied reclaimed segment stayed");
  for (int i = 1; i < 5000; i++)
    if (fa_ptr_segment(blocks[i]) != seg) fancy_free(blocks[i]);
  check_valid();
}
END_TEST

/* What is left of a split free span keeps its age, and the dirty list
 * stays sorted by age, so the purge (which stops at the first span too
 * young) does not leave older spans waiting behind younger ones. */
START_TEST(test_dirty_list_keeps_age_order) {
  void *a = fancy_malloc(16 * FA_PAGE_SIZE);
  void *sep1 = fancy_malloc(2 * FA_PAGE_SIZE);
  void *d = fancy_malloc(2 * FA_PAGE_SIZE);
  void *sep2 = fancy_malloc(2 * FA_PAGE_SIZE);
  fancy_free(a);                                  /* dirty, older */
  uint64_t t0 = _fa_clock_ms();
  while (_fa_clock_ms() == t0) {                  /* a coarse clock: wait for a tick */
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  fancy_free(d);                                  /* dirty, younger */
  fa_heap_t *heap = fa_heap_get();
  ck_assert_ptr_eq(heap->dirty_last, span_of(d));
  void *e = fancy_malloc(3 * FA_PAGE_SIZE);       /* split from a's span */
  ck_assert_ptr_eq(e, a);
  /* the older rest of a's span went before d, not after it */
  fa_page_t *rest = span_of(e) + span_of(e)->span_pages;   /* the page after e's span */
  ck_assert_int_eq(rest->kind, FA_PAGE_FREE);
  ck_assert_ptr_eq(span_of(d)->dprev, rest);
  check_valid();
  fancy_free(e);
  fancy_free(sep1);
  fancy_free(sep2);
  check_valid();
}
END_TEST

/* Minor page faults so far; under a sanitizer 0, since its shadow memory
 * faults too (TSan: thousands for the moved and grown block below), and a
 * count of the allocator's own faults cannot be had there. */
static long minflt_now(void) {
#ifdef FA_SANITIZE
  return 0;
#else
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
#endif
}

/* A freed huge block stays mapped for a while and serves the next request:
 * the program pays its page faults once.  A smaller request is cut from
 * a warm piece in place, and the rest stays warm; freed again, the two
 * join and serve the bigger request once more without a fault (README,
 * "How it works": "a smaller request is cut from a piece in place and
 * the rest stays warm"). */
START_TEST(test_huge_cache_reuses_warm_mapping) {
  if (_fa_opt.purge_delay == 0) return;    /* no cache: nothing to test */
  size_t n = 8u << 20, small = 4u << 20;
  char *p = fancy_malloc(n);
  ck_assert_ptr_nonnull(p);
  memset(p, 1, n);
  fancy_free(p);
  long f0 = minflt_now();
  char *q = fancy_malloc(n);
  ck_assert_ptr_eq(q, p);
  memset(q, 2, n);
  ck_assert_msg(minflt_now() - f0 < 64, "%ld page faults writing a warm 8 MiB block",
                minflt_now() - f0);
  fancy_free(q);
  size_t mapped = atomic_load(&_fa_counters.mapped);
  f0 = minflt_now();
  char *s = fancy_malloc(small);                 /* 4 MiB cut from the 8 MiB piece */
  ck_assert_ptr_eq(s, p);
  ck_assert_uint_eq(fancy_malloc_usable_size(s), small);
  ck_assert_uint_eq(atomic_load(&_fa_counters.mapped), mapped);   /* the rest stays warm */
  ck_assert_uint_eq(fa_unit_kind((uintptr_t)p + small), FA_UNIT_HUGE);
  memset(s, 3, small);
  ck_assert_msg(minflt_now() - f0 < 64, "%ld page faults writing 4 MiB of a warm block",
                minflt_now() - f0);
  fancy_free(s);                                 /* joins its rest again */
  f0 = minflt_now();
  char *g = fancy_malloc(n);
  ck_assert_ptr_eq(g, p);
  ck_assert_uint_eq(fancy_malloc_usable_size(g), n);
  memset(g, 4, n);
  ck_assert_msg(minflt_now() - f0 < 64, "%ld page faults writing 8 MiB of a block cut and joined",
                minflt_now() - f0);
  fancy_free(g);
  check_valid();
}
END_TEST

/* A piece that does not start on a 4 MiB boundary still serves a block
 * from its first boundary on, in place; what is left on either side stays
 * warm (README, "How it works": "a smaller request is cut from a piece in
 * place and the rest stays warm"). */
START_TEST(test_huge_cache_cuts_inside_piece) {
  if (_fa_opt.purge_delay == 0) return;
  fancy_trim(0);
  size_t n = 12u << 20, first = (5u << 20) / 2, second = 4u << 20;
  char *p = fancy_malloc(n);
  ck_assert_ptr_nonnull(p);
  memset(p, 1, n);
  fancy_free(p);
  char *a = fancy_malloc(first);                 /* from the start: the rest is unaligned */
  ck_assert_ptr_eq(a, p);
  size_t mapped = atomic_load(&_fa_counters.mapped);
  long f0 = minflt_now();
  char *b = fancy_malloc(second);
  ck_assert_ptr_eq(b, p + FA_SEGMENT_SIZE);
  memset(b, 2, second);
  ck_assert_msg(minflt_now() - f0 < 64, "%ld page faults writing a block cut inside a warm piece",
                minflt_now() - f0);
  ck_assert_uint_eq(atomic_load(&_fa_counters.mapped), mapped);
  char *c = fancy_malloc(second);                /* the tail beyond b, warm too */
  ck_assert_ptr_nonnull(c);
  if (!_fa_opt.check)   /* checked mode's blocks are bigger: the tail is short */
    ck_assert_ptr_eq(c, p + 2 * FA_SEGMENT_SIZE);
  fancy_free(a);
  fancy_free(b);
  fancy_free(c);
  check_valid();
}
END_TEST

/* A block cut from the middle of a piece while every piece slot is taken:
 * the rest beyond it, which shares the block's last 4 MiB unit, is given
 * back, and the block's unit must stay marked (the block is in neither
 * the table nor the cache at that moment).  It was unmarked once: the
 * block read as not ours (usable size 0) and its free aborted. */
START_TEST(test_huge_cache_cut_keeps_units_marked) {
  if (_fa_opt.purge_delay == 0) return;
  fancy_trim(0);
  enum { FILLERS = 15 };
  size_t quarter = (5u << 20) / 2;               /* 2.5 MiB */
  char *f[FILLERS];
  for (int i = 0; i < FILLERS; i++) {
    f[i] = fancy_malloc(quarter);
    ck_assert_ptr_nonnull(f[i]);
  }
  char *m = fancy_malloc(11u << 20);             /* 11: no filler can start at its end */
  ck_assert_ptr_nonnull(m);
  fancy_free(m);                                 /* piece [m, m + 11 MiB) */
  char *x = fancy_malloc(quarter);               /* cut from it: [m + 2.5 MiB, ...) is left */
  ck_assert_ptr_eq(x, m);
  for (int i = 0; i < FILLERS; i++) fancy_free(f[i]);   /* every piece slot taken */
  char *y = fancy_malloc(3u << 20);              /* from m + 4 MiB; its rest has no slot */
  ck_assert_ptr_eq(y, m + FA_SEGMENT_SIZE);
  ck_assert_uint_eq(fa_unit_kind((uintptr_t)y), FA_UNIT_HUGE);
  ck_assert_uint_eq(fancy_malloc_usable_size(y), 3u << 20);
  fancy_free(y);
  fancy_free(x);
  check_valid();
}
END_TEST

/* A request bigger than every warm piece grows one and moves the pages
 * of the others into the part it lacks: nothing faults, nothing more is
 * mapped, and the addresses the pages left are no longer ours (README,
 * "How it works": "a bigger one grows a piece by mremap and moves the
 * pages of other pieces into the part it lacks"). */
START_TEST(test_huge_cache_moves_pieces) {
  if (_fa_opt.purge_delay == 0) return;
  fancy_trim(0);                                 /* no older pieces */
  size_t n = 8u << 20;
  char *a = fancy_malloc(n), *sep = fancy_malloc(4u << 20), *b = fancy_malloc(n);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(sep);
  ck_assert_ptr_nonnull(b);
  memset(a, 1, n);
  memset(b, 2, n);
  fancy_free(a);                                 /* two pieces, kept apart by sep */
  fancy_free(b);
  size_t mapped = atomic_load(&_fa_counters.mapped);
  long f0 = minflt_now();
  char *g = fancy_malloc(2 * n);
  ck_assert_ptr_nonnull(g);
  memset(g, 3, 2 * n);
  long faults = minflt_now() - f0;
  ck_assert_msg(faults < 64, "%ld page faults writing 16 MiB made of two warm 8 MiB pieces", faults);
  ck_assert_uint_eq(atomic_load(&_fa_counters.mapped), mapped);
  for (size_t off = 0; off < 2 * n; off += FA_SEGMENT_SIZE)
    ck_assert_uint_eq(fa_unit_kind((uintptr_t)g + off), FA_UNIT_HUGE);
  char *gone = (g == a) ? b : a;                 /* the piece whose pages moved */
  if ((uintptr_t)gone + n <= (uintptr_t)g || (uintptr_t)g + 2 * n <= (uintptr_t)gone) {
    ck_assert_uint_eq(fa_unit_kind((uintptr_t)gone), FA_UNIT_NONE);
    ck_assert(!_fa_huge_contains(gone));
  }
  /* The kernel cannot grow a block made of several mappings in place or
   * by mremap: realloc copies it, keeping its contents and errno. */
  errno = 0;
  char *r = fancy_realloc(g, 3 * n);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(errno, 0);
  for (size_t off = 0; off < 2 * n; off += 4096) ck_assert_int_eq(r[off], 3);
  ck_assert_int_eq(r[2 * n - 1], 3);
  fancy_free(r);
  fancy_free(sep);
  check_valid();
}
END_TEST

/* fancy_allocator_malloc(3), NOTES: "a buffer overrun in one instance
 * cannot corrupt the blocks of another" (issue 14).  The block that ends
 * a segment of instance a is followed by the segment's guard page, not by
 * the header of the next segment, here instance b's: an overrun faults on
 * the guard, and both instances stay valid.  (Checked mode catches a
 * smaller overrun at free: check_mode.c, "buffer overrun".) */
static sigjmp_buf guard_jmp;
static void guard_segv(int sig) {
  (void)sig;
  siglongjmp(guard_jmp, 1);
}

START_TEST(test_instance_overrun_hits_guard) {
  if (_fa_opt.check) return;
  fancy_allocator_t *a = fancy_allocator_create(NULL), *b = fancy_allocator_create(NULL);
  ck_assert(a != NULL && b != NULL);
  /* Two blocks of half the usable pages fill a segment; a and b take
   * turns, so their segments alternate in the order they are carved. */
  size_t n = FA_SEGMENT_USABLE_PAGES / 2 * FA_PAGE_SIZE;
  enum { N = 64 };
  static void *pa[N], *pb[N];
  char *end = NULL;
  int used = 0;
  for (; used < N && end == NULL; used++) {
    pa[used] = fancy_allocator_malloc(a, n);
    pb[used] = fancy_allocator_malloc(b, n);
    ck_assert(pa[used] != NULL && pb[used] != NULL);
    for (int i = 0; i <= used && end == NULL; i++) {
      uintptr_t seg = (uintptr_t)fa_ptr_segment(pa[i]);
      uintptr_t e = (uintptr_t)pa[i] + fancy_allocator_usable_size(a, pa[i]);
      uintptr_t next = seg + FA_SEGMENT_SIZE;
      if (e == seg + FA_GUARD_PAGE * FA_PAGE_SIZE && fa_unit_kind(next) == FA_UNIT_SEGMENT &&
          ((fa_segment_t *)next)->domain == fa_ptr_segment(pb[0])->domain)
        end = (char *)e;
    }
  }
  ck_assert_msg(end != NULL, "no segment of a followed by one of b");
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = guard_segv;
  ck_assert_int_eq(sigaction(SIGSEGV, &sa, &old), 0);
  volatile int faulted = 0;
  if (sigsetjmp(guard_jmp, 1) == 0) {
    volatile char *v = end;
    for (int k = 0; k < 24; k++) v[k] = 0x41;   /* 24 bytes past the block */
  } else {
    faulted = 1;
  }
  sigaction(SIGSEGV, &old, NULL);
  ck_assert_msg(faulted, "an overrun past the last block of a segment wrote on");
  ck_assert(fancy_allocator_validate(b));
  ck_assert(fancy_allocator_validate(a));
  for (int i = 0; i < used; i++) {
    fancy_allocator_free(a, pa[i]);
    fancy_allocator_free(b, pb[i]);
  }
  ck_assert(fancy_allocator_validate(b));
  fancy_allocator_destroy(a);
  fancy_allocator_destroy(b);
  check_valid();
}
END_TEST

/* Does the mapping that holds p carry MADV_HUGEPAGE ("hg" in its
 * VmFlags in /proc/self/smaps)?  -1 if p is in no mapping. */
static int vma_hugepage(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  ck_assert_ptr_nonnull(f);
  char line[512];
  int found = -1;
  bool inside = false;
  while (found < 0 && fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (inside && strncmp(line, "VmFlags:", 8) == 0)
      found = strstr(line, " hg") != NULL;
  }
  fclose(f);
  return found;
}

/* README "Huge pages": "a block of 4 MiB and more that is not calloc's is
 * mapped in whole 2 MiB huge pages and advised MADV_HUGEPAGE"; smaller
 * blocks, calloc's, and an instance with huge_pages < 0 keep 4 KiB steps
 * and no advice; a block cut from a warm piece keeps both. */
START_TEST(test_huge_blocks_in_huge_pages) {
  /* FANCY_HUGE_BLOCKS=0 (and not FANCY_HUGE_PAGES=1): 4 KiB steps */
  size_t thp = _fa_opt.huge_blocks || _fa_opt.huge_pages ? _fa_os_thp_size() : 0;
  size_t page = FA_OS_PAGE_SIZE;
  /* The advice shows in smaps only on a real kernel: qemu-user (a cross
   * build's make check, tests/run-test.sh) drops madvise. */
  const char *runner = getenv("FA_TEST_RUNNER");
  bool smaps = _fa_os_thp_size() != 0 && (runner == NULL || *runner == '\0');
  bool exact = _fa_opt.check;   /* checked mode reports the size asked for */
  size_t big = (5u << 20) + 1, small = (3u << 20) + 1;
  char *p = fancy_malloc(big), *c = fancy_calloc(1, big), *s = fancy_malloc(small);
  ck_assert(p != NULL && c != NULL && s != NULL);
  if (!exact) {
    ck_assert_uint_eq(fancy_malloc_usable_size(p), thp ? 6u << 20 : (big + page - 1) & ~(page - 1));
    ck_assert_uint_eq(fancy_malloc_usable_size(c), (big + page - 1) & ~(page - 1));
    ck_assert_uint_eq(fancy_malloc_usable_size(s), (small + page - 1) & ~(page - 1));
  }
  if (smaps) {
    ck_assert_int_eq(vma_hugepage(p), thp != 0);
    if (!exact)   /* (checked mode's calloc is a malloc and a memset) */
      ck_assert_int_eq(vma_hugepage(c), _fa_opt.huge_pages);   /* FANCY_HUGE_PAGES=1: all */
    ck_assert_int_eq(vma_hugepage(s), _fa_opt.huge_pages);
  }
  memset(p, 1, big);
  fancy_free(p);
  char *q = fancy_malloc((4u << 20) + 5);   /* cut from p's warm pages */
  ck_assert_ptr_nonnull(q);
  if (_fa_opt.purge_delay != 0) ck_assert_ptr_eq(q, p);
  if (!exact && thp != 0) ck_assert_uint_eq(fancy_malloc_usable_size(q), 6u << 20);
  if (smaps) ck_assert_int_eq(vma_hugepage(q), thp != 0);
  fancy_free(q);
  fancy_free(c);
  fancy_free(s);
  /* Off for an instance that says so (in a new mapping: a warm piece
   * keeps the advice it was mapped with, whoever takes it). */
  fancy_trim(0);
  fancy_allocator_config_t cfg = {0};
  cfg.huge_pages = -1;
  fancy_allocator_t *a = fancy_allocator_create(&cfg);
  ck_assert_ptr_nonnull(a);
  char *o = fancy_allocator_malloc(a, big);
  ck_assert_ptr_nonnull(o);
  if (!exact) ck_assert_uint_eq(fancy_allocator_usable_size(a, o), (big + page - 1) & ~(page - 1));
  if (smaps) ck_assert_int_eq(vma_hugepage(o), 0);
  fancy_allocator_free(a, o);
  fancy_allocator_destroy(a);
  fancy_trim(0);
  check_valid();
}
END_TEST

/* calloc never gets a warm (dirty) mapping, and a cached mapping goes back
 * to the OS on trim (or after the purge delay): the address is no longer
 * ours and mapped bytes drop. */
START_TEST(test_huge_cache_calloc_and_trim) {
  size_t n = 8u << 20;
  unsigned char *p = fancy_malloc(n);
  memset(p, 0xab, n);
  fancy_free(p);
  unsigned char *z = fancy_calloc(1, n);
  ck_assert_ptr_nonnull(z);
  for (size_t i = 0; i < n; i += 4096) ck_assert_uint_eq(z[i], 0);
  ck_assert_uint_eq(z[n - 1], 0);
  fancy_free(z);
  if (_fa_opt.purge_delay == 0) return;    /* no cache: both unmapped at once */
  size_t mapped = atomic_load(&_fa_counters.mapped);
  fancy_trim(0);
  ck_assert_uint_le(atomic_load(&_fa_counters.mapped) + n, mapped);
  ck_assert_uint_eq(fa_unit_kind((uintptr_t)p), FA_UNIT_NONE);
  ck_assert_uint_eq(fa_unit_kind((uintptr_t)z), FA_UNIT_NONE);
  check_valid();
}
END_TEST

static size_t queue_pages(unsigned cls) {
  size_t n = 0;
  for (fa_page_t *pg = fa_heap_get()->queues[cls].first; pg != NULL; pg = pg->next) n++;
  return n;
}

/* Holes left in a class's pages are reused by later mallocs of that class
 * before any new page is taken.  The refill once stopped after the first
 * full page it moved to the back of the queue (the next page looked like
 * the start of the queue again), so every refill took a new page:
 * freeing every other block and allocating as many again doubled the
 * memory (bench/frag's RSS/live 1.53, larson's 13.5). */
START_TEST(test_refill_reuses_holes) {
  enum { N = 20000 };
  static void *p[N];
  unsigned cls = fa_size_class(1000);
  for (int i = 0; i < N; i++) p[i] = fancy_malloc(1000);
  size_t pages = queue_pages(cls);
  ck_assert_uint_ge(pages, N / 64);
  for (int i = 0; i < N; i += 2) fancy_free(p[i]);
  for (int i = 0; i < N; i += 2) p[i] = fancy_malloc(1000);
  ck_assert_msg(queue_pages(cls) <= pages + 1, "%zu pages after refilling the holes of %zu",
                queue_pages(cls), pages);
  for (int i = 0; i < N; i++) fancy_free(p[i]);
  check_valid();
}
END_TEST

/* Blocks freed into a span are handed out again before the span hands out
 * more never-used ones than its first step (claim README "a span hands out
 * its never-used blocks 4 KiB of them at first ... and moves on to more
 * only after the blocks freed into it meanwhile are used again"): a span's
 * memory is touched as the program needs it, not all of it before the
 * first reuse (espresso, glibc-thread: bench/README "Reusing freed blocks
 * first").  A new thread, so that its class queue starts empty: its span
 * hands out its first FA_EXTEND_BYTES, two of them are freed, and the next
 * two mallocs take those two, not never-used blocks. */
static void *reuse_before_fresh(void *arg) {
  enum { SZ = 448, MAX = 64 };
  size_t *out = arg;
  void *b[MAX];
  int n = 0;
  b[n++] = fancy_malloc(SZ);
  fa_page_t *page = span_of(b[0]);
  while (n < MAX && page->capacity < page->limit) b[n++] = fancy_malloc(SZ);
  uint32_t cap = page->capacity;
  fancy_free(b[5]);
  fancy_free(b[2]);
  void *again[2] = {fancy_malloc(SZ), fancy_malloc(SZ)};
  out[0] = again[0] == b[2] && again[1] == b[5];   /* the last freed first */
  out[1] = page->capacity - cap;                     /* never-used blocks taken */
  out[2] = page->reserved - cap;
  out[3] = (size_t)n;
  b[2] = again[0], b[5] = again[1];
  for (int i = 0; i < n; i++) fancy_free(b[i]);
  return NULL;
}

START_TEST(test_freed_blocks_reused_before_fresh) {
  if (_fa_opt.prof) return;              /* a sample would take a block elsewhere */
  size_t out[4];
  pthread_t t;
  pthread_create(&t, NULL, reuse_before_fresh, out);
  pthread_join(t, NULL);
  ck_assert_msg(out[3] <= FA_EXTEND_BYTES / 448 + 1, "the first step handed out %zu blocks",
                out[3]);
  ck_assert_msg(out[2] > 0, "the span was used up: nothing to choose between");
  ck_assert_msg(out[0] == 1 && out[1] == 0,
                "two frees, two mallocs: reused %zu, %zu never-used blocks handed out instead",
                out[0], out[1]);
  check_valid();
}
END_TEST

/* A new thread whose first malloc adopts an exited thread's segment takes
 * its block from that thread's part-used span of the class, not from a
 * span of its own (claim README "Thread exit": the adopting thread
 * allocates from the adopted segment's part-used spans first; mleak10:
 * 5000 threads each keeping one 128-byte block touched one 64 KiB span per
 * live block, bench/README "Peak RSS"). */
static void *malloc_128(void *arg) {
  *(void **)arg = fancy_malloc(128);
  return NULL;
}

START_TEST(test_new_thread_uses_adopted_span) {
  if (_fa_opt.prof) return;              /* a sample would take a block elsewhere */
  void *a, *b;
  pthread_t t;
  pthread_create(&t, NULL, malloc_128, &a);
  pthread_join(t, NULL);                 /* its segment is abandoned, a live */
  pthread_create(&t, NULL, malloc_128, &b);
  pthread_join(t, NULL);
  ck_assert_ptr_eq(fa_ptr_segment(b), fa_ptr_segment(a));   /* adopted */
  ck_assert_msg(span_of(b) == span_of(a), "the second thread carved a span of its own");
  fancy_free(a);
  fancy_free(b);
  check_valid();
}
END_TEST

/* A block of another live thread's page, freed here, serves this thread's
 * next malloc of its class (most recent first) instead of going back:
 * its page still counts it as used.  Statistics hand kept blocks back.
 * The helpers run `fn` in a thread that frees `blocks` and then waits. */
struct keep_job {
  void **blocks;
  int n;
  void *again[2];
  uint32_t used_between;
  pthread_barrier_t freed, done;
  pthread_t thread;
};

static fa_page_t *alloc_one_page(void **blocks, int n, size_t size) {
  for (int i = 0; i < n; i++) blocks[i] = fancy_malloc(size);
  fa_page_t *page = span_of(blocks[0]);
  for (int i = 1; i < n; i++) ck_assert_ptr_eq(span_of(blocks[i]), page);
  return page;
}

/* Start fn and return once it has freed the blocks. */
static void keep_job_start(struct keep_job *j, void **blocks, int n, void *(*fn)(void *)) {
  memset(j, 0, sizeof *j);
  j->blocks = blocks;
  j->n = n;
  pthread_barrier_init(&j->freed, NULL, 2);
  pthread_barrier_init(&j->done, NULL, 2);
  pthread_create(&j->thread, NULL, fn, j);
  pthread_barrier_wait(&j->freed);
}

/* Let it finish (and exit, which hands back what it kept). */
static void keep_job_finish(struct keep_job *j) {
  pthread_barrier_wait(&j->done);
  pthread_join(j->thread, NULL);
  pthread_barrier_destroy(&j->freed);
  pthread_barrier_destroy(&j->done);
}

static void *free_and_hold(void *arg) {
  struct keep_job *j = arg;
  fancy_free(fancy_malloc(16));            /* a heap of its own */
  for (int i = 0; i < j->n; i++) fancy_free(j->blocks[i]);
  pthread_barrier_wait(&j->freed);
  pthread_barrier_wait(&j->done);
  return NULL;
}

static void *free_then_reuse(void *arg) {
  struct keep_job *j = arg;
  fancy_free(fancy_malloc(16));
  fa_page_t *page = span_of(j->blocks[0]);
  for (int i = 0; i < j->n; i++) fancy_free(j->blocks[i]);
  j->used_between = page->used;            /* nothing handed back */
  j->again[0] = fancy_malloc(64);          /* the last freed first */
  j->again[1] = fancy_malloc(64);
  pthread_barrier_wait(&j->freed);
  pthread_barrier_wait(&j->done);
  fancy_free(j->again[0]);
  fancy_free(j->again[1]);
  return NULL;
}

/* README, "Cross-thread free": a block of a live thread that collects
 * goes back to its page; once fa_xfree_backlog_max of them wait there
 * (this thread sits idle meanwhile), the freeing thread keeps the next
 * ones and its next mallocs of the class take them, last freed first. */
START_TEST(test_remote_free_reused_by_freeing_thread) {
  if (_fa_opt.check) return;
  enum { N = FA_XFREE_BACKLOG_MAX + 8 };
  void *blocks[N];
  fa_page_t *page = alloc_one_page(blocks, N, 64);
  ck_assert_uint_eq(fa_xfree_backlog_max(page), FA_XFREE_BACKLOG_MAX);   /* 1024 blocks */
  uint32_t used = page->used;
  struct keep_job job;
  keep_job_start(&job, blocks, N, free_then_reuse);
  ck_assert_uint_eq(job.used_between, used);
  ck_assert_ptr_eq(job.again[0], blocks[N - 1]);
  ck_assert_ptr_eq(job.again[1], blocks[N - 2]);
  uintptr_t x = atomic_load(&page->xfree);
  ck_assert_uint_eq(fa_xfree_count(x), FA_XFREE_BACKLOG_MAX);   /* the first ones */
  ck_assert_ptr_eq(fa_xfree_list(x), blocks[FA_XFREE_BACKLOG_MAX - 1]);
  keep_job_finish(&job);
  _fa_heap_collect_remote(fa_heap_get(), true);
  ck_assert_uint_eq(page->used, used - N);
  check_valid();
}
END_TEST

/* README, "Cross-thread free": while the owner collects, a block of its
 * goes back to its page and the freeing thread keeps nothing: its next
 * mallocs of the class are none of them. */
START_TEST(test_remote_free_goes_back_while_owner_collects) {
  if (_fa_opt.check) return;
  enum { N = FA_XFREE_BACKLOG_MAX - 1 };
  void *blocks[N];
  fa_page_t *page = alloc_one_page(blocks, N, 64);
  struct keep_job job;
  keep_job_start(&job, blocks, N, free_then_reuse);
  ck_assert_uint_eq(fa_xfree_count(atomic_load(&page->xfree)), N);   /* all of them */
  for (int i = 0; i < N; i++) {
    ck_assert_ptr_ne(job.again[0], blocks[i]);
    ck_assert_ptr_ne(job.again[1], blocks[i]);
  }
  _fa_heap_collect_remote(fa_heap_get(), false);   /* the owner collects */
  ck_assert_uint_eq(atomic_load(&page->xfree), 0);
  keep_job_finish(&job);
  check_valid();
}
END_TEST

/* What a thread keeps of other threads' blocks is bounded in bytes too: of
 * eight 32 KiB blocks freed by a thread that never allocates again, into a
 * span of eight whose owner sits idle, the first two wait on their page
 * (fa_xfree_backlog_max), the next two (64 KiB) are kept and the other
 * four go back to their page at once. */
START_TEST(test_kept_blocks_bounded_in_bytes) {
  if (_fa_opt.check) return;
  enum { N = 8 };
  void *blocks[N];
  fa_page_t *page = alloc_one_page(blocks, N, 32768);
  ck_assert_uint_eq(fa_xfree_backlog_max(page), 2);
  struct keep_job job;
  keep_job_start(&job, blocks, N, free_and_hold);
  ck_assert_uint_eq(fa_xfree_count(atomic_load(&page->xfree)), N - FA_RCACHE_BYTES / 32768);
  keep_job_finish(&job);
  ck_assert_uint_eq(fa_xfree_count(atomic_load(&page->xfree)), N);   /* the rest at exit */
  check_valid();
}
END_TEST

/* A block another thread keeps to reuse is free: freeing it again aborts
 * (its tag is set), although it is on none of its page's lists. */
START_TEST(test_double_free_of_kept_block_aborts) {
  enum { N = FA_XFREE_BACKLOG_MAX + 1 };   /* a backlog on the page, then p */
  void *p[N];
  alloc_one_page(p, N, 64);
  struct keep_job job;
  keep_job_start(&job, p, N, free_and_hold);
  fancy_free(p[N - 1]);                    /* aborts */
  keep_job_finish(&job);
}
END_TEST

/* Run job on a new thread with profiling on, one sample per `sample`
 * bytes for its heap's first countdown. */
static void run_profiled(void *(*job)(void *), void *arg, size_t sample) {
  bool prof = _fa_opt.prof;
  size_t rate = _fa_opt.prof_sample;
  _fa_opt.prof_sample = sample;
  _fa_opt.prof = true;
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, job, arg), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  _fa_opt.prof = prof;
  _fa_opt.prof_sample = rate;
}

/* FANCY_PROF (prof.c fa_prof_sample, free.c fa_free_sampled): a sampled
 * block stays in its class span, which is marked so that all its frees
 * take the generic path and drop samples; the span's owner lifts the mark
 * at its first free after the last sample is gone, also when another
 * thread freed that one (only the owner writes the mark). */
static void *free_one(void *arg) {
  fancy_free(arg);   /* this thread has no heap: a remote free */
  return NULL;
}

static void *sampled_owner(void *arg) {
  (void)arg;
  enum { N = 5000 };   /* 2 KiB and more: sampled in place (prof.c) */
  void *x = fancy_malloc(N);              /* sampled (one per byte) */
  _fa_opt.prof_sample = (size_t)1 << 50;  /* the interval drawn at y's sample */
  void *y = fancy_malloc(N);              /* sampled, the last one */
  void *z = fancy_malloc(N);
  fa_page_t *page = span_of(x);
  ck_assert_ptr_eq(span_of(y), page);
  ck_assert_ptr_eq(span_of(z), page);
  ck_assert_uint_eq(page->free_mark, FA_FREE_MARK);
  ck_assert_uint_eq(FA_SAMPLE_COUNT(atomic_load(&page->samples)), 2);
  size_t samples, bytes, dropped;
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 2);
  fancy_free(y);                          /* the owner's: generic, dropped */
  ck_assert_uint_eq(FA_SAMPLE_COUNT(atomic_load(&page->samples)), 1);
  ck_assert_uint_eq(page->free_mark, FA_FREE_MARK);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, free_one, x), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_uint_eq(FA_SAMPLE_COUNT(atomic_load(&page->samples)), 0);
  ck_assert_uint_eq(page->free_mark, FA_FREE_MARK);   /* not the other's to lift */
  fancy_free(z);                          /* the owner's next free lifts it */
  ck_assert_uint_eq(page->free_mark, 0);
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 0);
  check_valid();
  return NULL;
}

START_TEST(test_prof_sampled_block_stays_in_its_span) {
  if (_fa_opt.check) return;   /* profiling is off in checked mode */
  run_profiled(sampled_owner, NULL, 1);   /* the first countdowns: every block */
  check_valid();
}
END_TEST

/* FANCY_PROF (prof.c fa_prof_sample; claims fancy_prof_dump(3) "A sampled
 * block of less than 2 KiB is a block of the 2 KiB size class" and "While
 * a span holds a sampled block, realloc() moves the blocks of that span
 * instead of resizing them in place"): sampled blocks under 2 KiB share a
 * marked span of 2 KiB blocks, each counted at the size asked for, a
 * realloc moves them, and freeing them drops the samples. */
static void *sampled_small(void *arg) {
  (void)arg;
  void *a = fancy_malloc(16), *b = fancy_malloc(100);   /* both sampled */
  _fa_opt.prof_sample = (size_t)1 << 50;
  fa_page_t *page = span_of(a);
  ck_assert_int_eq(page->kind, FA_PAGE_CLASS);
  ck_assert_uint_eq(page->bsize, 2048);
  ck_assert_ptr_eq(span_of(b), page);
  ck_assert_uint_eq(page->free_mark, FA_FREE_MARK);
  ck_assert_uint_eq(FA_SAMPLE_COUNT(atomic_load(&page->samples)), 2);
  ck_assert_uint_ge(fancy_malloc_usable_size(b), 100);
  size_t samples, bytes, dropped;
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 2);
  ck_assert_uint_eq(bytes, 16 + 100);   /* the sizes asked for */
  memset(b, 0x5a, 100);
  /* grown, it moves (a sampled block under 2 KiB: not in place, where it
   * would stay in the profile at 100 bytes), and its sample is dropped */
  char *c = fancy_realloc(b, 1500);   /* would fit in place */
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_ne(c, b);
  ck_assert_uint_eq((unsigned char)c[99], 0x5a);
  /* c is sampled too (the interval drawn at b's sample was 0) */
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 2);
  ck_assert_uint_eq(bytes, 16 + 1500);
  fancy_free(a);
  fancy_free(c);
  ck_assert_uint_eq(FA_SAMPLE_COUNT(atomic_load(&page->samples)), 0);
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 0);
  check_valid();
  return NULL;
}

START_TEST(test_prof_small_sample_in_4k_class_span) {
  if (_fa_opt.check) return;   /* profiling is off in checked mode */
  run_profiled(sampled_small, NULL, 1);   /* every block */
  check_valid();
}
END_TEST

/* FANCY_PROF (prof.c _fa_prof_crossed; claims fancy_prof_dump(3) "an
 * allocation of n bytes is sampled with probability 1 - exp(-n/rate)"
 * and "With profiling off, malloc's inline path counts down
 * from 2^63 bytes"): malloc's inline pop counts the bytes asked for down
 * the heap's countdown, and the allocation that takes it below zero is
 * sampled; the block the pop had taken goes back to the front of its list,
 * and the next malloc of the class gets it. */
static void *countdown_job(void *arg) {
  (void)arg;
  enum { N = 64 };
  void *a = fancy_malloc(N);   /* the thread's first: the generic path */
  fa_heap_t *heap = fa_heap_get();   /* made by that first malloc */
  /* drawn with mean 2^50: below 2^20 once in 2^30 runs (the bound was
   * 2^40 once, which failed once in 1024) */
  ck_assert_int_gt(heap->prof_left, (int64_t)1 << 20);
  void *b = fancy_malloc(N);   /* the inline pop: counted */
  fa_page_t *page = span_of(b);
  ck_assert_uint_eq(page->bsize, N);
  void *c = fancy_malloc(N);
  ck_assert_ptr_eq(span_of(c), page);
  heap->prof_left = 2 * N;     /* two more blocks, and the third is sampled */
  void *d = fancy_malloc(N), *e = fancy_malloc(N);
  ck_assert_int_eq(heap->prof_left, 0);
  uint32_t used = page->used;
  size_t samples, bytes, dropped;
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 0);
  void *f = fancy_malloc(N);   /* below zero: sampled */
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 1);
  ck_assert_uint_eq(bytes, N);
  ck_assert_uint_eq(span_of(f)->bsize, 2048);   /* where small samples live */
  ck_assert_int_gt(heap->prof_left, (int64_t)1 << 20);   /* redrawn */
  ck_assert_uint_eq(page->used, used);          /* the popped block went back */
  void *g = fancy_malloc(N);   /* and is the next one handed out */
  ck_assert_ptr_eq(span_of(g), page);
  ck_assert_uint_eq(page->used, used + 1);
  void *all[] = {a, b, c, d, e, f, g};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) fancy_free(all[i]);
  _fa_prof_totals(&samples, &bytes, &dropped);
  ck_assert_uint_eq(samples, 0);
  check_valid();
  return NULL;
}

START_TEST(test_prof_countdown_on_inline_path) {
  if (_fa_opt.check) return;   /* profiling is off in checked mode */
  run_profiled(countdown_job, NULL, (size_t)1 << 50);
  check_valid();
}
END_TEST

static void *prof_left_of_new_heap(void *arg) {
  fancy_free(fancy_malloc(16));   /* the generic path: the heap is made */
  fancy_free(fancy_malloc(16));   /* the inline path: counted */
  *(int64_t *)arg = fa_heap_get()->prof_left;
  return NULL;
}

START_TEST(test_prof_off_countdown_never_runs_out) {
  if (_fa_opt.prof) return;    /* this run profiles */
  if (_fa_opt.check) return;   /* checked mode has no inline path */
  int64_t left = 0;
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, prof_left_of_new_heap, &left), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(left, INT64_MAX - 16);   /* counted from 2^63 - 1 */
  ck_assert_int_eq(_fa_heap_empty.prof_left, INT64_MAX);
}
END_TEST

/* The profiler's stacks (unwind.c; claim: fancy_prof_dump(3), "On x86-64 the
 * library walks them itself"): the walk with rules kept per return
 * address gives exactly the frames libgcc's _Unwind_Backtrace gives, on
 * frames whose CFA is %rsp-based, %rbp-based (a VLA) and with %rbp saved
 * as a general register, on the main thread and on others; a second walk
 * of the same stack reads every rule from the table; and a stack that is
 * not the thread's own is declined, for libgcc to walk. */
#if defined HAVE_EXECINFO_H && defined HAVE_UNWIND_H && defined __x86_64__ && defined __linux__
#include <dlfcn.h>
#include <ucontext.h>
#include <unwind.h>

typedef struct unwind_fns_s {
  _Unwind_Reason_Code (*backtrace)(_Unwind_Trace_Fn, void *);
  _Unwind_Ptr (*get_ip)(struct _Unwind_Context *);
  fa_find_fde_t find;
} unwind_fns_t;
static unwind_fns_t unwind_fns;

typedef struct unwind_out_s {
  void *pc[64];
  int n;
} unwind_out_t;

static _Unwind_Reason_Code unwind_one(struct _Unwind_Context *ctx, void *arg) {
  unwind_out_t *o = arg;
  uintptr_t ip = (uintptr_t)unwind_fns.get_ip(ctx);
  if (ip == 0 || o->n == 64) return _URC_END_OF_STACK;
  o->pc[o->n++] = (void *)ip;
  return _URC_NO_REASON;
}

static void unwind_load(void) {
  void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
  ck_assert_ptr_nonnull(lib);
  void *f[3] = {dlsym(lib, "_Unwind_Backtrace"), dlsym(lib, "_Unwind_GetIP"),
                dlsym(lib, "_Unwind_Find_FDE")};
  ck_assert(f[0] != NULL && f[1] != NULL && f[2] != NULL);
  memcpy(&unwind_fns.backtrace, &f[0], sizeof f[0]);
  memcpy(&unwind_fns.get_ip, &f[1], sizeof f[1]);
  memcpy(&unwind_fns.find, &f[2], sizeof f[2]);
}

/* Both walks from here; the first address of each is the return address
 * of its own call, so the stacks are compared from the second on. */
static __attribute__((noinline)) void unwind_both(unwind_out_t *fast, unwind_out_t *slow) {
  fast->n = _fa_unwind(fast->pc, 64, unwind_fns.find);
  slow->n = 0;
  unwind_fns.backtrace(unwind_one, slow);
  __asm__ volatile("" ::: "memory");   /* not a tail call */
}

static void unwind_compare(const unwind_out_t *fast, const unwind_out_t *slow) {
  ck_assert_int_ge(fast->n, 6);
  ck_assert_int_eq(fast->n, slow->n);
  for (int i = 1; i < fast->n; i++) ck_assert_ptr_eq(fast->pc[i], slow->pc[i]);
}

static volatile int unwind_sink;

/* %rbp as a general register, saved in the prologue (an optimised build) */
static __attribute__((noinline)) void unwind_rbp_user(unwind_out_t *f, unwind_out_t *s) {
#if defined __OPTIMIZE__ && !defined __clang__
  __asm__ volatile("" ::: "rbx", "rbp", "r12", "r13", "r14", "r15");
#endif
  unwind_both(f, s);
  unwind_sink++;
}

/* a variable-length array: the CFA follows %rbp */
static __attribute__((noinline)) void unwind_vla(int n, unwind_out_t *f, unwind_out_t *s) {
  volatile char buf[n];
  buf[0] = 1;
  unwind_rbp_user(f, s);
  unwind_sink += buf[0];
}

static __attribute__((noinline)) void unwind_deep(int depth, unwind_out_t *f, unwind_out_t *s) {
  if (depth == 0) unwind_vla(unwind_sink + 40, f, s);
  else unwind_deep(depth - 1, f, s);
  unwind_sink++;
}

static void *unwind_job(void *arg) {
  *(void **)arg = (void *)pthread_self();   /* glibc: its descriptor, atop its stack block */
  unwind_out_t fast, slow;
  unwind_deep(5, &fast, &slow);
  unwind_compare(&fast, &slow);
  return NULL;
}

static unwind_out_t unwind_alt_fast, unwind_alt_slow;
static ucontext_t unwind_main_ctx, unwind_alt_ctx;
static void unwind_on_other_stack(void) { unwind_both(&unwind_alt_fast, &unwind_alt_slow); }

START_TEST(test_unwind_matches_libgcc) {
  unwind_load();
  unwind_out_t fast, slow;
  unwind_deep(8, &fast, &slow);
  unwind_compare(&fast, &slow);

  /* the same stack on two threads one after the other (the same return
   * addresses, whatever the compiler does with this function's calls):
   * the second works no rule out anew; and, on the stack block glibc
   * gives it from the first (joined) thread, it finds the block's bounds
   * kept and does not ask pthread_getattr_np again (unwind.c
   * fa_stack_bounds: a system call and two allocations a thread) */
  size_t worked[2], lookups[2];
  void *stack_of[2];
  for (int i = 0; i < 2; i++) {
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, unwind_job, &stack_of[i]), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    worked[i] = atomic_load(&_fa_unwind_worked_out);
    lookups[i] = atomic_load(&_fa_unwind_stack_lookups);
  }
  ck_assert_uint_gt(worked[0], 0);
  ck_assert_uint_eq(worked[1], worked[0]);
  ck_assert_uint_gt(lookups[0], 0);
  ck_assert_msg(stack_of[1] == stack_of[0], "glibc gave the second thread another stack block");
  ck_assert_uint_eq(lookups[1], lookups[0]);

  /* on a stack of its own (as a coroutine's, or a signal handler's on an
   * alternate stack): declined, and libgcc walks it */
  static char other_stack[1 << 16];
  ck_assert_int_eq(getcontext(&unwind_alt_ctx), 0);
  unwind_alt_ctx.uc_stack.ss_sp = other_stack;
  unwind_alt_ctx.uc_stack.ss_size = sizeof other_stack;
  unwind_alt_ctx.uc_link = &unwind_main_ctx;
  makecontext(&unwind_alt_ctx, unwind_on_other_stack, 0);
  ck_assert_int_eq(swapcontext(&unwind_main_ctx, &unwind_alt_ctx), 0);
  ck_assert_int_eq(unwind_alt_fast.n, -1);
  ck_assert_int_ge(unwind_alt_slow.n, 2);
}
END_TEST
#else
START_TEST(test_unwind_matches_libgcc) {
  void *pc[4];
  ck_assert_int_eq(_fa_unwind(pc, 4, NULL), -1);   /* declined: libgcc walks */
}
END_TEST
#endif

static Suite *white_suite(void) {
  Suite *s = suite_create("white-box");
  TCase *tc = tcase_create("internals");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_size_classes);
  tcase_add_test(tc, test_no_header);
  tcase_add_test(tc, test_span_coalescing);
  tcase_add_test(tc, test_large_realloc_in_place);
  tcase_add_test(tc, test_remote_free_collection);
  tcase_add_test(tc, test_abandon_and_adopt);
  tcase_add_test(tc, test_mmap_failure_enomem);
  tcase_add_test(tc, test_purge_returns_memory);
  tcase_add_test(tc, test_overlapping_thread_generations);
  tcase_add_test(tc, test_block_index_every_offset);
  tcase_add_test(tc, test_fresh_blocks_untouched);
  tcase_add_test(tc, test_reused_span_remote_free);
  tcase_add_test(tc, test_purge_locked_memory_zeroes);
  tcase_add_test(tc, test_free_reclaims_abandoned_segment);
  tcase_add_test(tc, test_dirty_list_keeps_age_order);
  tcase_add_test(tc, test_huge_cache_reuses_warm_mapping);
  tcase_add_test(tc, test_huge_cache_moves_pieces);
  tcase_add_test(tc, test_huge_cache_cuts_inside_piece);
  tcase_add_test(tc, test_huge_cache_cut_keeps_units_marked);
  tcase_add_test(tc, test_huge_cache_calloc_and_trim);
  tcase_add_test(tc, test_huge_blocks_in_huge_pages);
  tcase_add_test(tc, test_instance_overrun_hits_guard);
  tcase_add_test(tc, test_refill_reuses_holes);
  tcase_add_test(tc, test_freed_blocks_reused_before_fresh);
  tcase_add_test(tc, test_new_thread_uses_adopted_span);
  tcase_add_test(tc, test_remote_free_reused_by_freeing_thread);
  tcase_add_test(tc, test_remote_free_goes_back_while_owner_collects);
  tcase_add_test_raise_signal(tc, test_double_free_of_kept_block_aborts, SIGABRT);
  tcase_add_test(tc, test_kept_blocks_bounded_in_bytes);
  tcase_add_test(tc, test_prof_sampled_block_stays_in_its_span);
  tcase_add_test(tc, test_prof_small_sample_in_4k_class_span);
  tcase_add_test(tc, test_prof_countdown_on_inline_path);
  tcase_add_test(tc, test_prof_off_countdown_never_runs_out);
  tcase_add_test(tc, test_unwind_matches_libgcc);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(white_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
