/* SPDX-License-Identifier: MIT */
/*
 * validate.c - fancy_validate_heap: check the invariants of every
 * structure the caller may safely read.
 *
 * The calling thread's heap and the abandoned segments (nobody owns them
 * while the segments lock is held) are checked in depth: spans, boundary
 * tags, coalescing, bins, queues and every free list.  Segments owned by
 * other live threads change under us, so only their headers are checked.
 */
#include "internal.h"

#define FA_CHECK(cond, ...)          \
  do {                               \
    if (fa_unlikely(!(cond))) {      \
      _fa_warn(__VA_ARGS__);         \
      return false;                  \
    }                                \
  } while (0)

static bool fa_check_list(const fa_page_t *page, const fa_block_t *b, size_t *count) {
  size_t n = 0;
  uintptr_t lo = (uintptr_t)page->start;
  uintptr_t hi = lo + (uintptr_t)page->capacity * page->bsize;
  for (; b != NULL; b = b->next) {
    FA_CHECK(++n <= page->capacity, "heap inconsistency: free list of page %p has a cycle",
             (void *)page->start);
    uintptr_t u = (uintptr_t)b;
    FA_CHECK(u >= lo && u < hi && (u - lo) % page->bsize == 0,
             "heap inconsistency: free list of page %p holds %p, not one of its blocks",
             (void *)page->start, (void *)b);
  }
  *count += n;
  return true;
}

static bool fa_check_class_page(const fa_page_t *page, bool with_xfree) {
  FA_CHECK(page->bsize == _fa_class_size[page->cls] && page->capacity <= page->limit &&
               page->limit <= page->reserved &&
               (size_t)page->reserved * page->bsize <= (size_t)page->span_pages << FA_PAGE_SHIFT &&
               page->used <= page->capacity && (page->bsize >> page->shift) * page->inv == 1,
           "heap inconsistency: class page %p has bsize %u used %u capacity %u limit %u reserved %u",
           (void *)page->start, page->bsize, page->used, page->capacity, page->limit, page->reserved);
  size_t n = 0;
  if (!fa_check_list(page, page->free, &n) || !fa_check_list(page, page->local_free, &n))
    return false;
  size_t pending = 0;
  if (with_xfree) {
    uintptr_t x = atomic_load_explicit(&page->xfree, memory_order_acquire);
    if (!fa_check_list(page, fa_xfree_list(x), &pending)) return false;
    FA_CHECK(pending == fa_xfree_count(x),
             "heap inconsistency: page %p: %zu remote frees listed, %zu counted",
             (void *)page->start, pending, fa_xfree_count(x));
  }
  FA_CHECK(n + page->used == page->capacity,
           "heap inconsistency: page %p: %zu free + %u used != capacity %u",
           (void *)page->start, n, page->used, page->capacity);
  FA_CHECK(pending <= page->used, "heap inconsistency: page %p: %zu remote frees > %u used",
           (void *)page->start, pending, page->used);
  /* (a sampled block freed by another thread is counted down before it is
   * listed as a remote free) */
  uint32_t samples = FA_SAMPLE_COUNT(atomic_load_explicit(&page->samples, memory_order_acquire));
  uint32_t mark = fa_load(page->free_mark);   /* set before the count goes up */
  FA_CHECK((mark == 0 || mark == FA_FREE_MARK) && (samples == 0 || mark != 0) &&
               samples <= fa_load(page->used),
           "heap inconsistency: page %p: %u sampled blocks of %u used, free mark %#x",
           (void *)page->start, samples, page->used, mark);
  return true;
}

/* Spans tile pages 1..62, tails point back, no two free spans touch, and
 * the free page count agrees. */
static bool fa_check_segment(fa_segment_t *seg, bool deep) {
  FA_CHECK(seg->cookie == (FA_SEGMENT_MAGIC ^ (uint64_t)(uintptr_t)seg ^ _fa_secret),
           "heap inconsistency: segment %p has a bad header", (void *)seg);
  FA_CHECK(fa_unit_kind((uintptr_t)seg) == FA_UNIT_SEGMENT,
           "heap inconsistency: segment %p is not in the address map", (void *)seg);
  if (!deep) return true;
  size_t idx = FA_FIRST_PAGE, free_pages = 0;
  bool prev_free = false;
  while (idx < FA_GUARD_PAGE) {
    fa_page_t *page = &seg->pages[idx];
    size_t n = page->span_pages;
    FA_CHECK(page->span_offset == 0 && n >= 1 && idx + n <= FA_GUARD_PAGE,
             "heap inconsistency: segment %p page %zu: bad span (%zu pages, offset %u)",
             (void *)seg, idx, n, page->span_offset);
    FA_CHECK(page->head == page, "heap inconsistency: segment %p page %zu: bad head", (void *)seg,
             idx);
    for (size_t i = 1; i < n; i++)
      FA_CHECK(page[i].span_offset == i && page[i].head == page && page[i].kind == FA_PAGE_UNUSED,
               "heap inconsistency: segment %p page %zu: bad boundary tag", (void *)seg, idx + i);
    switch (page->kind) {
    case FA_PAGE_FREE:
      FA_CHECK(!prev_free, "heap inconsistency: segment %p page %zu: free spans not coalesced",
               (void *)seg, idx);
      free_pages += n;
      break;
    case FA_PAGE_CLASS:
      if (!fa_check_class_page(page, true)) return false;
      break;
    case FA_PAGE_LARGE:
      FA_CHECK(page->used <= 1 && page->bsize == n << FA_PAGE_SHIFT,
               "heap inconsistency: segment %p page %zu: bad large span", (void *)seg, idx);
      break;
    default:
      FA_CHECK(false, "heap inconsistency: segment %p page %zu: kind %u", (void *)seg, idx,
               (unsigned)page->kind);
    }
    prev_free = page->kind == FA_PAGE_FREE;
    idx += n;
  }
  FA_CHECK(free_pages == seg->free_pages,
           "heap inconsistency: segment %p counts %u free pages, has %zu", (void *)seg,
           seg->free_pages, free_pages);
  return true;
}

static bool fa_check_heap(fa_heap_t *heap) {
  size_t segs = 0;
  for (fa_segment_t *seg = heap->segments; seg != NULL; seg = seg->next, segs++) {
    FA_CHECK(atomic_load(&seg->heap) == heap && seg->state == FA_SEG_OWNED,
             "heap inconsistency: segment %p on the heap's list has another owner", (void *)seg);
    if (!fa_check_segment(seg, true)) return false;
  }
  FA_CHECK(segs == heap->segment_count, "heap inconsistency: heap counts %zu segments, has %zu",
           heap->segment_count, segs);
  for (unsigned cls = 0; cls < FA_NUM_CLASSES; cls++) {
    const fa_page_queue_t *q = &heap->queues[cls];
    const fa_page_t *prev = NULL;
    for (const fa_page_t *page = q->first; page != NULL; prev = page, page = page->next) {
      FA_CHECK(page->kind == FA_PAGE_CLASS && page->cls == cls && page->prev == prev &&
                   atomic_load(&fa_ptr_segment(page)->heap) == heap,
               "heap inconsistency: queue of class %u holds a foreign page", cls);
    }
    FA_CHECK(q->last == prev, "heap inconsistency: queue of class %u has a bad tail", cls);
    /* FANCY_CHECK keeps the direct tables empty on purpose */
    const fa_page_t *want = q->first && !_fa_opt.check ? q->first : &_fa_page_empty;
    if (heap->rcache[cls].free != NULL) want = &heap->rcache[cls];
    size_t size = _fa_class_size[cls];
    FA_CHECK((size > FA_DIRECT_MAX || heap->direct[size / 16] == want) &&
                 (cls < FA_SMALL_CLASSES || heap->mdirect[cls - FA_SMALL_CLASSES] == want),
             "heap inconsistency: direct entry of class %u is stale", cls);
  }
  for (unsigned bin = 0; bin < FA_SPAN_BINS; bin++) {
    FA_CHECK(((heap->bin_mask >> bin) & 1u) == (heap->bins[bin] != NULL),
             "heap inconsistency: span bin %u and its mask bit disagree", bin);
    for (const fa_page_t *span = heap->bins[bin]; span != NULL; span = span->next)
      FA_CHECK(span->kind == FA_PAGE_FREE && span->in_bin &&
                   atomic_load(&fa_ptr_segment(span)->heap) == heap,
               "heap inconsistency: span bin %u holds a span that is not free", bin);
  }
  /* The dirty list: free, unpurged spans of this heap, oldest first (the
   * purge stops at the first span that is too young). */
  size_t dirty = 0;
  const fa_page_t *prev = NULL;
  for (const fa_page_t *span = heap->dirty_first; span != NULL; prev = span, span = span->dnext) {
    FA_CHECK(span->kind == FA_PAGE_FREE && span->dirty && !span->zeroed && span->dprev == prev &&
                 (prev == NULL || prev->free_time <= span->free_time),
             "heap inconsistency: dirty list out of order or holding a clean span at %p",
             (void *)span);
    dirty += span->span_pages;
  }
  FA_CHECK(heap->dirty_last == prev && heap->dirty_pages == dirty,
           "heap inconsistency: dirty list tail or page count (%zu, counted %zu)",
           heap->dirty_pages, dirty);
  return true;
}

bool _fa_validate(fa_domain_t *d) {
  _fa_process_init();
  fa_heap_t *heap = fa_domain_thread_heap(d);
  _fa_rcache_flush(heap);
  if (heap != NULL && heap != &_fa_heap_empty) {
    fa_heap_lock(heap);
    bool good = fa_check_heap(heap);
    fa_heap_unlock(heap);
    if (!good) return false;
  }
  bool ok = true;
  size_t mine = 0;   /* segments that name this thread's heap as owner */
  pthread_mutex_lock(&_fa_segments_lock);
  for (fa_segment_t *seg = _fa_all_segments; seg != NULL && ok; seg = seg->gnext) {
    if (heap != NULL && heap != &_fa_heap_empty && atomic_load(&seg->heap) == heap) mine++;
    if (seg->state != FA_SEG_CACHED && seg->domain != d) continue;
    if (seg->state == FA_SEG_ABANDONED) ok = fa_check_segment(seg, true);
    else if (seg->state == FA_SEG_OWNED || seg->state == FA_SEG_CACHED ||
             seg->state == FA_SEG_ORPHANED)
      ok = fa_check_segment(seg, false);
  }
  pthread_mutex_unlock(&_fa_segments_lock);
  /* Every segment that says it is this heap's is on its list (a segment
   * off the list that still names the heap takes the heap's frees as
   * local ones into pages none of its queues hold). */
  if (ok && heap != NULL && heap != &_fa_heap_empty && mine != heap->segment_count) {
    _fa_warn("heap inconsistency: %zu segments name the heap as owner, its list has %zu", mine,
             heap->segment_count);
    return false;
  }
  return ok && _fa_stats_add_up(d);
}

bool fancy_validate_heap(void) FANCY_NOEXCEPT { return _fa_validate(&_fa_domain_default); }
