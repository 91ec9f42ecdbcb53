/* SPDX-License-Identifier: MIT */
/*
 * page.c - size classes and class spans ("pages"): initialising, handing out
 * blocks, collecting frees, retiring, and the per-class queues.
 *
 * Each class span has three free lists (mimalloc's free-list sharding):
 * `free`, which malloc pops; `local_free`, which the owner's free pushes;
 * and the atomic `xfree`, which other threads push.  malloc only ever pops
 * `free`, or hands out the next never-used block of the span; when both
 * run dry the slow path moves the other two lists over.  That keeps both
 * fast paths free of atomics, and guarantees that the slow path (which
 * does the heap's housekeeping) runs every so often.
 */
#include "internal.h"

/* The document's 16 small classes, then 4 classes per doubling. */
const uint32_t _fa_class_size[FA_NUM_CLASSES] = {
  16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
  640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
  5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768,
};

/* (n + 15) >> 4  ->  small class. */
const uint8_t _fa_small_class[FA_SMALL_TABLE] = {
  0, 0, 1, 2, 3, 4, 5, 6, 7,           /* 0..128 by 16 */
  8, 8, 9, 9, 10, 10, 11, 11,          /* 160, 192, 224, 256 */
  12, 12, 12, 12, 13, 13, 13, 13,      /* 320, 384 */
  14, 14, 14, 14, 15, 15, 15, 15,      /* 448, 512 */
};

/* Pages per class span: room for at least 8 blocks (one page up to 8 KiB). */
static size_t fa_class_span_pages(size_t bsize) {
  size_t pages = (8 * bsize + FA_PAGE_SIZE - 1) >> FA_PAGE_SHIFT;
  return pages ? pages : 1;
}

size_t _fa_list_length(const fa_block_t *b, size_t limit) {
  size_t n = 0;
  for (; b != NULL && n <= limit; b = b->next) n++;
  return n;
}

/* ------------------------------------------------------------------------
 * Queues: the class spans of a heap, current one first
 * ---------------------------------------------------------------------- */
static void fa_queue_push_front(fa_heap_t *heap, fa_page_t *page) {
  fa_page_queue_t *q = &heap->queues[page->cls];
  page->prev = NULL;
  page->next = q->first;
  if (q->first) q->first->prev = page;
  else q->last = page;
  q->first = page;
  _fa_heap_set_direct(heap, page->cls, page);
}

void _fa_queue_push_back(fa_heap_t *heap, fa_page_t *page) {
  fa_page_queue_t *q = &heap->queues[page->cls];
  page->next = NULL;
  page->prev = q->last;
  if (q->last) q->last->next = page;
  else {
    q->first = page;
    _fa_heap_set_direct(heap, page->cls, page);
  }
  q->last = page;
}

/* Move page to the back of q without touching the direct tables (the
 * caller sets them once, when it is done reordering). */
static void fa_queue_to_back(fa_page_queue_t *q, fa_page_t *page) {
  if (q->last == page) return;
  if (page->prev) page->prev->next = page->next;
  else q->first = page->next;
  page->next->prev = page->prev;
  page->prev = q->last;
  page->next = NULL;
  q->last->next = page;
  q->last = page;
}

static void fa_queue_unlink_last(fa_page_queue_t *q) {
  fa_page_t *page = q->last;
  q->last = page->prev;
  if (q->last) q->last->next = NULL;
  else q->first = NULL;
  page->prev = NULL;
}

/* page, somewhere in q, becomes its first (and the class's current) page. */
static void fa_queue_to_front(fa_heap_t *heap, fa_page_queue_t *q, fa_page_t *page) {
  fa_queue_to_back(q, page);   /* unlinks it; then to the front */
  fa_queue_unlink_last(q);
  fa_queue_push_front(heap, page);
}

void _fa_queue_remove(fa_heap_t *heap, fa_page_t *page) {
  fa_page_queue_t *q = &heap->queues[page->cls];
  if (page->prev) page->prev->next = page->next;
  else {
    q->first = page->next;
    _fa_heap_set_direct(heap, page->cls, q->first);
  }
  if (page->next) page->next->prev = page->prev;
  else q->last = page->prev;
  page->next = page->prev = NULL;
}

/* ------------------------------------------------------------------------
 * Class spans
 * ---------------------------------------------------------------------- */
/* The first raise of a span's limit: FA_EXTEND_BYTES of blocks, at least
 * FA_EXTEND_MIN. */
static uint32_t fa_page_first_step(const fa_page_t *page) {
  uint32_t step = FA_EXTEND_BYTES / page->bsize;
  return step > FA_EXTEND_MIN ? step : FA_EXTEND_MIN;
}

static void fa_page_init(fa_segment_t *seg, fa_page_t *page, unsigned cls) {
  size_t bsize = _fa_class_size[cls];
  page->start = fa_page_address(seg, page);
  fa_store(page->bsize, (uint32_t)bsize);
  unsigned shift = (unsigned)__builtin_ctz((unsigned)bsize);
  /* every class size is 1, 3, 5 or 7 times a power of two: odd * inv == 1
   * modulo 2^32 (fancy_validate_heap checks it) */
  static const uint32_t odd_inverse[8] = {0, 1, 0, 0xaaaaaaabu, 0, 0xcccccccdu, 0, 0xb6db6db7u};
  uint32_t odd = (uint32_t)bsize >> shift;
  fa_assert(odd < 8 && odd_inverse[odd] != 0);
  page->inv = odd_inverse[odd];
  page->shift = (uint8_t)shift;
  page->reserved = (uint32_t)(((size_t)page->span_pages << FA_PAGE_SHIFT) / bsize);
  page->limit = 0;   /* fa_page_extend raises it */
  page->step = (uint16_t)fa_page_first_step(page);
  fa_store(page->capacity, 0u);
  fa_store(page->used, 0u);
  fa_store(page->free_mark, 0u);
  atomic_store_explicit(&page->samples, 0, memory_order_relaxed);
  page->free = page->local_free = NULL;
  atomic_store_explicit(&page->xfree, 0, memory_order_relaxed);
  fa_store(page->cls, (uint8_t)cls);
  fa_store(page->kind, (uint8_t)FA_PAGE_CLASS);
}

/* Move remote frees to local_free (one atomic exchange for the whole
 * batch, counted in the same word), then local_free to free if free is
 * empty.  The batch is walked (to find its tail) only when both local
 * lists hold blocks already. */
void _fa_page_collect_lists(fa_page_t *page) {
  if (atomic_load_explicit(&page->xfree, memory_order_relaxed) != 0) {
    uintptr_t x = atomic_exchange_explicit(&page->xfree, 0, memory_order_acquire);
    fa_block_t *list = fa_xfree_list(x);
    size_t n = fa_xfree_count(x);
    if (page->kind == FA_PAGE_LARGE) {
      if (list != NULL) fa_store(page->used, 0u);
    } else if (list != NULL) {
      if (n > page->used) _fa_fatal("double free detected in page %p", (void *)page->start);
      if (page->local_free == NULL) {
        page->local_free = list;
      } else if (page->free == NULL) {
        page->free = page->local_free;
        page->local_free = list;
      } else {
        fa_block_t *tail = list;
        for (size_t i = 1; i < n && tail->next != NULL; i++) tail = tail->next;
        tail->next = page->local_free;
        page->local_free = list;
      }
      fa_store(page->used, page->used - (uint32_t)n);
      fa_count(remote_frees, n);
    }
  }
  if (page->free == NULL && page->local_free != NULL) {
    page->free = page->local_free;
    page->local_free = NULL;
  }
}

bool _fa_page_collect(fa_heap_t *heap, fa_page_t *page) {
  _fa_page_collect_lists(page);
  if (page->used != 0) return false;
  if (page->kind == FA_PAGE_LARGE) return _fa_span_free(heap, fa_ptr_segment(page), page);
  return _fa_page_retire(heap, page);
}

/* A class span has no live block left.  The current span of its class
 * stays (so a malloc/free pair at the boundary does not map and unmap a
 * span each time), unless its segment was only taken over by a free and
 * should go back once empty; any other goes back to the free spans, and
 * such a segment may then be given back (_fa_segment_give_back_spare).
 * True when the segment has left heap. */
bool _fa_page_retire(fa_heap_t *heap, fa_page_t *page) {
  fa_page_queue_t *q = &heap->queues[page->cls];
  fa_segment_t *seg = fa_ptr_segment(page);
  if (q->first == page && !seg->reclaimed) return false;
  _fa_queue_remove(heap, page);
  return _fa_span_free(heap, seg, page) || _fa_segment_give_back_spare(heap, seg);
}

/* page's limit is reached and its lists were just collected: when they
 * gave back fewer blocks than a quarter of its first step (or none),
 * raise the limit too, so that this slow-path call buys at least that
 * many.  A whole first step was measured too: every class span then kept
 * a step of free blocks beside its live ones and reached three pages
 * where one served (glibc-thread, 700 KiB per thread for 60 KiB live). */
static __attribute__((noinline)) void fa_page_extend_if_short(fa_page_t *page) {
  uint32_t few = fa_page_first_step(page) / 4;
  if (page->capacity - page->used < (few > 0 ? few : 1)) fa_page_extend(page);
}

/* Can page hand out a block: what was freed into it first, then
 * never-used blocks (see fa_page_t). */
static bool fa_page_ready(fa_page_t *page) {
  if (page->free != NULL) return true;
  _fa_page_collect_lists(page);
  if (fa_unlikely(page->capacity == page->limit) && page->capacity < page->reserved)
    fa_page_extend_if_short(page);
  return page->free != NULL || page->capacity < page->limit;
}

/* After a span allocation: a span that joined the back of queue q after
 * `last` (adoption puts an exited thread's spans there) with at least an
 * eighth of its blocks to hand out, or NULL.  `last` is only compared:
 * it may be gone.  Looks at FA_MAX_CANDIDATES + 1 spans at most. */
static fa_page_t *fa_page_adopted_ready(fa_page_queue_t *q, const fa_page_t *last) {
  fa_page_t *page = q->last;
  for (int i = 0; page != NULL && page != last && i <= FA_MAX_CANDIDATES; i++, page = page->prev)
    if (fa_page_ready(page) && page->reserved - page->used > page->reserved / 8) return page;
  return NULL;
}

static fa_page_t *fa_page_new(fa_heap_t *heap, unsigned cls);

/* A class span of cls with a free block, first in its queue.  Looks at
 * no more than FA_MAX_CANDIDATES + 1 spans before taking a new one, and
 * takes the one with the most blocks to hand out, or the first with at
 * least an eighth of its blocks (switching to a span with one or two
 * holes would only bring the next refill closer).  Spans found full go to
 * the back of the queue.  NULL when out of memory. */
fa_page_t *_fa_page_find(fa_heap_t *heap, unsigned cls) {
  fa_page_queue_t *q = &heap->queues[cls];
  fa_page_t *page = q->first, *moved = NULL, *best = NULL;
  uint32_t best_avail = 0;
  for (int i = 0; page != NULL && page != moved && i <= FA_MAX_CANDIDATES; i++) {
    fa_page_t *next = page->next;
    if (fa_page_ready(page)) {
      uint32_t avail = page->reserved - page->used;   /* free lists + never used */
      if (avail > best_avail) {
        best = page;
        best_avail = avail;
      }
      if (avail > page->reserved / 8) break;
    } else if (q->last != page) {   /* full: to the back; stop on seeing it again */
      fa_queue_to_back(q, page);
      if (moved == NULL) moved = page;
    }
    page = next;
  }
  if (best != NULL && q->first != best) {
    fa_queue_to_front(heap, q, best);
  } else if (moved != NULL) {
    _fa_heap_set_direct(heap, cls, q->first);
  }
  if (best != NULL) return best;
  /* Blocks freed by other threads may have refilled some span. */
  if (atomic_load_explicit(&heap->xpending, memory_order_relaxed) != 0) {
    _fa_heap_collect_remote(heap, false);
    page = q->first;
    if (page != NULL && fa_page_ready(page)) return page;
  }
  return fa_page_new(heap, cls);
}

/* A new class span of cls for heap, first in its queue; NULL when out of
 * memory.  Kept out of _fa_page_find's loop (registers). */
static __attribute__((noinline)) fa_page_t *fa_page_new(fa_heap_t *heap, unsigned cls) {
  fa_page_queue_t *q = &heap->queues[cls];
  fa_page_t *last = q->last;
  fa_page_t *page = _fa_span_alloc(heap, fa_class_span_pages(_fa_class_size[cls]));
  if (page == NULL) return NULL;
  fa_page_init(fa_ptr_segment(page), page, cls);
  /* Getting the span may have adopted an exited thread's segment, whose
   * spans of this class joined the back of the queue: one with room
   * serves instead, and the new span goes back untouched (else a thread
   * that allocates a few blocks leaves every adopted span as it found
   * it, and touches a span of its own: mleak10 in bench/README). */
  fa_page_t *adopted = fa_page_adopted_ready(q, last);
  if (adopted != NULL) {
    _fa_span_free(heap, fa_ptr_segment(page), page);
    fa_queue_to_front(heap, q, adopted);
    return adopted;
  }
  fa_page_extend(page);
  fa_queue_push_front(heap, page);
  return page;
}
