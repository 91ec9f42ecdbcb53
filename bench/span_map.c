/* SPDX-License-Identifier: MIT */
/*
 * span_map.c - an LD_PRELOAD helper (not built by make) that says which
 * resident pages of libfancymalloc's segments hold live data.  Once, either
 * SPAN_MAP_AT_MS milliseconds after start (from a thread of its own) or at
 * exit, it walks every live block (fancy_heap_visit_all), reads each
 * segment's residency with mincore, and prints to stderr, for each 4 MiB
 * segment holding a live block:
 *
 *   - one `span_map page` line per 64 KiB page with a resident 4 KiB page:
 *     its resident 4 KiB pages, how many of them hold live bytes, and the
 *     page's descriptor (kind, the span's first page, class size, used,
 *     capacity, limit, reserved, and the blocks on its remote-free list);
 *   - one `span_map segment` line: the same totals, the owner heap (0 for
 *     none), the segment's state, and its remote-free blocks;
 *
 * and one `span_map class` line per block size with class spans: spans,
 * resident 4 KiB pages, those with live bytes, live blocks visited, and
 * the sum of the spans' used counts and remote-free blocks.  A block is
 * "used" in its page from malloc until its owner collects it back, so
 * used - live is what sits in other threads' lists of kept blocks and on
 * remote-free lists.
 *
 * It reads the allocator's private structures (lib/types.h): build it
 * against the same tree as the library it is preloaded with.
 *
 *   cc -O1 -shared -fPIC -Iinclude -Ilib -I. -o span_map.so bench/span_map.c -pthread
 *   LD_PRELOAD="lib/.libs/libfancymalloc.so ./span_map.so" SPAN_MAP_AT_MS=3000 prog ...
 *
 * Used for bench/README.md, "larsonN: the blocks a sleeping thread never
 * collects".  The walk runs while the program does: counts taken from
 * other threads' structures are a snapshot, not exact.
 */
#define _GNU_SOURCE
#include "config.h"
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_SEGS 256
#define SUB_PAGES (FA_SEGMENT_SIZE / 4096)          /* 4 KiB pages per segment */
#define SUB_PER_PAGE ((size_t)1 << (FA_PAGE_SHIFT - 12))

typedef struct {
  uintptr_t base;
  unsigned char live[SUB_PAGES];                    /* 4 KiB page holds live bytes */
  unsigned blocks[FA_PAGES_PER_SEGMENT];            /* live blocks starting in the page */
} seg_info_t;

static seg_info_t segs[MAX_SEGS];
static int nsegs;

static seg_info_t *seg_of(uintptr_t a) {
  uintptr_t base = a & ~(uintptr_t)FA_SEGMENT_MASK;
  for (int i = 0; i < nsegs; i++)
    if (segs[i].base == base) return &segs[i];
  if (nsegs == MAX_SEGS) return NULL;
  segs[nsegs].base = base;
  return &segs[nsegs++];
}

static int visit(void *block, size_t size, void *arg) {
  (void)arg;
  uintptr_t a = (uintptr_t)block;
  if (size > FA_LARGE_MAX) return 0;                /* huge: not in a segment */
  seg_info_t *s = seg_of(a);
  if (s == NULL) return 0;
  for (uintptr_t p = a & ~(uintptr_t)4095; p < a + size; p += 4096)
    if (p - s->base < FA_SEGMENT_SIZE) s->live[(p - s->base) >> 12] = 1;
  s->blocks[(a - s->base) >> FA_PAGE_SHIFT]++;
  return 0;
}

typedef struct {
  unsigned bsize, spans, resident, with_live, visited;
  size_t used, xfree;
} class_sum_t;

static class_sum_t classes[FA_NUM_CLASSES];

static size_t xfree_count(const fa_page_t *page) {
  return fa_xfree_count(atomic_load_explicit(&page->xfree, memory_order_relaxed));
}

static void report(void) {
  fancy_heap_visit_all(visit, NULL);
  for (int i = 0; i < nsegs; i++) {
    seg_info_t *s = &segs[i];
    fa_segment_t *seg = (fa_segment_t *)s->base;
    unsigned char vec[SUB_PAGES];
    if (mincore((void *)s->base, FA_SEGMENT_SIZE, vec) != 0) continue;
    unsigned seg_res = 0, seg_live = 0;
    size_t seg_xfree = 0;
    for (size_t pg = 0; pg < FA_PAGES_PER_SEGMENT; pg++) {
      fa_page_t *page = &seg->pages[pg];
      const fa_page_t *head = pg >= FA_FIRST_PAGE ? page->head : NULL;   /* the span's first page */
      unsigned res = 0, live = 0;
      for (size_t k = pg * SUB_PER_PAGE; k < (pg + 1) * SUB_PER_PAGE; k++) {
        res += vec[k] & 1;
        live += (vec[k] & 1) && s->live[k];
      }
      seg_res += res;
      seg_live += live;
      if (page->kind == FA_PAGE_CLASS) {
        size_t xfree = xfree_count(page);   /* one reading for both sums */
        class_sum_t *c = &classes[page->cls];
        c->bsize = page->bsize;
        c->spans++;
        c->used += page->used;
        c->xfree += xfree;
        seg_xfree += xfree;
      }
      /* a class span's pages, the first and the rest, count to its class */
      if (head != NULL && head->kind == FA_PAGE_CLASS) {
        class_sum_t *c = &classes[head->cls];
        c->resident += res;
        c->with_live += live;
        c->visited += s->blocks[pg];
      }
      if (res == 0) continue;
      const fa_page_t *h = head != NULL ? head : page;
      fprintf(stderr,
              "span_map page %#lx+%zu resident %u with_live %u kind %u first %ld bsize %u used %u "
              "capacity %u limit %u reserved %u xfree %zu\n",
              (unsigned long)s->base, pg, res, live, page->kind, (long)(h - seg->pages), h->bsize,
              h->used, h->capacity, h->limit, h->reserved,
              h->kind == FA_PAGE_CLASS ? xfree_count(h) : (size_t)0);
    }
    fprintf(stderr, "span_map segment %#lx resident %u with_live %u heap %p state %u xfree %zu\n",
            (unsigned long)s->base, seg_res, seg_live,
            (void *)atomic_load_explicit(&seg->heap, memory_order_relaxed), seg->state, seg_xfree);
  }
  for (unsigned cls = 0; cls < FA_NUM_CLASSES; cls++) {
    const class_sum_t *c = &classes[cls];
    if (c->spans == 0) continue;
    fprintf(stderr,
            "span_map class %u spans %u resident %u with_live %u visited %u used %zu xfree %zu\n",
            c->bsize, c->spans, c->resident, c->with_live, c->visited, c->used, c->xfree);
  }
}

static void *later(void *arg) {
  usleep((useconds_t)(uintptr_t)arg * 1000);
  report();
  return NULL;
}

static int at_ms = -1;

__attribute__((constructor)) static void span_map_init(void) {
  const char *e = getenv("SPAN_MAP_AT_MS");
  if (e == NULL) return;
  at_ms = atoi(e);
  pthread_t t;
  if (pthread_create(&t, NULL, later, (void *)(uintptr_t)at_ms) == 0) pthread_detach(t);
}

__attribute__((destructor)) static void span_map_fini(void) {
  if (at_ms < 0) report();
}
