/* SPDX-License-Identifier: MIT */
/*
 * span.c - spans: runs of 64 KiB pages inside a segment, each a class
 * span, a large block or free (types.h, "Life of a span"), and the
 * owner's bins and dirty list of free spans.
 *
 * Free spans are the document's "segregated bins with __builtin_clz lookup,
 * boundary tags and immediate coalescing", applied to runs of 64 KiB pages:
 * a freed span merges with its free neighbours at once (the last page of
 * every span records the distance to its first), and lands in one of 16
 * bins by size.  Every function here runs under the owning heap's lock
 * (the _fa_* ones that take heap take it themselves, unless they say
 * "locked" or "heap's lock held"), or with heap NULL for a segment that
 * nobody owns, under _fa_segments_lock.
 */
#include "internal.h"

static void fa_span_purge(fa_heap_t *heap, fa_segment_t *seg, fa_page_t *span);

/* ------------------------------------------------------------------------
 * Span bins and the dirty list (owner only)
 * ---------------------------------------------------------------------- */
static unsigned fa_span_bin(size_t pages) {
  if (pages <= 8) return (unsigned)pages - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll(pages);          /* >= 3 */
  unsigned bin = 8 + (b - 3) * 2 + (unsigned)((pages >> (b - 1)) & 1);
  return bin < FA_SPAN_BINS ? bin : FA_SPAN_BINS - 1;
}

static void fa_bin_insert(fa_heap_t *heap, fa_page_t *span) {
  unsigned bin = fa_span_bin(span->span_pages);
  span->prev = NULL;
  span->next = heap->bins[bin];
  if (span->next) span->next->prev = span;
  heap->bins[bin] = span;
  heap->bin_mask |= 1u << bin;
  span->in_bin = 1;
}

static void fa_bin_remove(fa_heap_t *heap, fa_page_t *span) {
  if (!span->in_bin) return;
  unsigned bin = fa_span_bin(span->span_pages);
  if (span->prev) span->prev->next = span->next;
  else heap->bins[bin] = span->next;
  if (span->next) span->next->prev = span->prev;
  if (heap->bins[bin] == NULL) heap->bin_mask &= ~(1u << bin);
  span->next = span->prev = NULL;
  span->in_bin = 0;
}

/* File span on heap's dirty list, which stays sorted by free_time (oldest
 * first): a span that keeps an older age (the rest of a split span, the
 * spans of an adopted segment) goes before younger ones, or it would wait
 * behind them to be purged. */
static void fa_dirty_append(fa_heap_t *heap, fa_page_t *span) {
  fa_page_t *after = heap->dirty_last;
  while (after != NULL && after->free_time > span->free_time) after = after->dprev;
  span->dprev = after;
  span->dnext = after ? after->dnext : heap->dirty_first;
  if (span->dnext) span->dnext->dprev = span;
  else heap->dirty_last = span;
  if (after) after->dnext = span;
  else heap->dirty_first = span;
  heap->dirty_pages += span->span_pages;
  span->dirty = 1;
  _fa_purge_due_at(span->free_time + _fa_opt.purge_delay);
}

static void fa_dirty_remove(fa_heap_t *heap, fa_page_t *span) {
  if (!span->dirty) return;
  if (span->dprev) span->dprev->dnext = span->dnext;
  else heap->dirty_first = span->dnext;
  if (span->dnext) span->dnext->dprev = span->dprev;
  else heap->dirty_last = span->dprev;
  heap->dirty_pages -= span->span_pages;
  span->dnext = span->dprev = NULL;
  span->dirty = 0;
}

/* Take a free span off the heap's lists (heap may be NULL for segments
 * that nobody owns, whose spans are on no list). */
void _fa_span_unlink(fa_heap_t *heap, fa_page_t *span) {
  if (heap == NULL) return;
  fa_bin_remove(heap, span);
  fa_dirty_remove(heap, span);
}

void _fa_span_set_tails(fa_page_t *page, size_t pages) {
  fa_store(page->span_pages, (uint32_t)pages);
  page->span_offset = 0;
  page->head = page;
  for (size_t i = 1; i < pages; i++) {
    page[i].span_offset = (uint32_t)i;
    page[i].head = page;
    fa_store(page[i].kind, (uint8_t)FA_PAGE_UNUSED);
    fa_store(page[i].capacity, 0u);
  }
}

/* File free span in heap's bins and, unless it is purged, on the dirty
 * list, keeping its age. */
void _fa_span_file(fa_heap_t *heap, fa_page_t *span) {
  fa_bin_insert(heap, span);
  if (!span->zeroed) fa_dirty_append(heap, span);
}

/* Make [page, page+pages) one free span and file it. */
void _fa_span_make_free(fa_heap_t *heap, fa_page_t *page, size_t pages, bool zeroed,
                        uint64_t now) {
  _fa_span_set_tails(page, pages);
  fa_store(page->kind, (uint8_t)FA_PAGE_FREE);
  fa_store(page->capacity, 0u);   /* free's inline check fails */
  fa_store(page->used, 0u);
  page->free = page->local_free = NULL;
  atomic_store_explicit(&page->xfree, 0, memory_order_relaxed);
  page->zeroed = zeroed;
  page->in_bin = page->dirty = 0;
  page->free_time = now;
  if (heap != NULL) _fa_span_file(heap, page);
}

/* ------------------------------------------------------------------------
 * Spans
 * ---------------------------------------------------------------------- */
static fa_page_t *fa_bins_find(fa_heap_t *heap, size_t pages) {
  unsigned bin = fa_span_bin(pages);
  for (fa_page_t *s = heap->bins[bin]; s != NULL; s = s->next)
    if (s->span_pages >= pages) return s;
  uint32_t mask = heap->bin_mask & ~((2u << bin) - 1);
  if (mask == 0) return NULL;
  return heap->bins[__builtin_ctz(mask)];
}

/* A run of pages pages for heap; its first page is returned with the
 * tails set, kind still FREE (the caller gives it a role). */
static fa_page_t *fa_span_alloc(fa_heap_t *heap, size_t pages) {
  fa_assert(pages >= 1 && pages <= FA_SEGMENT_USABLE_PAGES);
  bool collected = false;
  for (;;) {
    fa_page_t *span = fa_bins_find(heap, pages);
    if (span != NULL) {
      fa_segment_t *seg = fa_ptr_segment(span);
      uint64_t free_time = span->free_time;
      _fa_span_unlink(heap, span);
      size_t have = span->span_pages;
      if (have > pages)   /* the rest keeps its age and state */
        _fa_span_make_free(heap, span + pages, have - pages, span->zeroed, free_time);
      if (span->zeroed) fa_count(committed, pages << FA_PAGE_SHIFT);
      _fa_span_set_tails(span, pages);
      seg->free_pages -= (uint32_t)pages;
      return span;
    }
    if (_fa_segment_acquire(heap)) continue;
    if (collected) return NULL;
    /* Out of memory (limit or mmap): take back what other threads freed
     * into this heap, give back what is only kept warm (cached segments,
     * freed huge mappings), and try once more. */
    collected = true;
    _fa_heap_collect_remote(heap, true);
    _fa_memory_pressure(heap);
  }
}

fa_page_t *_fa_span_alloc(fa_heap_t *heap, size_t pages) {
  fa_heap_lock(heap);
  fa_page_t *span = fa_span_alloc(heap, pages);
  if (span != NULL) fa_soft_check(heap, 0);   /* committed may have grown */
  fa_heap_unlock(heap);
  return span;
}

/* Return a span (class, large or an unattached run) to the free spans,
 * merging it with free neighbours.  heap is the owner, or NULL while the
 * segment has none (abandoned, under the segments lock). */
static bool fa_span_free(fa_heap_t *heap, fa_segment_t *seg, fa_page_t *page) {
  size_t idx = _fa_segment_index(seg, page);
  size_t pages = page->span_pages;
  bool zeroed = false;
  seg->free_pages += (uint32_t)pages;
  if (idx > FA_FIRST_PAGE) {
    fa_page_t *left = &seg->pages[idx - 1];
    left -= left->span_offset;
    if (left->kind == FA_PAGE_FREE) {
      _fa_span_unlink(heap, left);
      if (left->zeroed) fa_count(committed, fa_span_bytes(left));
      pages += left->span_pages;
      page = left;
      idx = _fa_segment_index(seg, left);
    }
  }
  if (idx + pages < FA_GUARD_PAGE) {
    fa_page_t *right = &seg->pages[idx + pages];
    if (right->kind == FA_PAGE_FREE) {
      _fa_span_unlink(heap, right);
      if (right->zeroed) fa_count(committed, fa_span_bytes(right));
      pages += right->span_pages;
    }
  }
  /* memcheck: the pages are the allocator's again (no-op without it). */
  if (fa_unlikely(_fa_opt.check))
    fa_track_undefined(fa_page_address(seg, page), pages << FA_PAGE_SHIFT);
  _fa_span_make_free(heap, page, pages, zeroed, _fa_clock_ms());
  /* Above the soft limit (limit.c) freed memory goes back at once. */
  if (fa_soft_over() && heap != NULL) {
    fa_span_purge(heap, seg, page);
    _fa_soft_recheck();
  }
  if (heap != NULL && pages == FA_SEGMENT_USABLE_PAGES &&
      (seg->reclaimed || heap->segment_count * FA_SEGMENT_SIZE > heap->domain->arena_size)) {
    _fa_segment_release(heap, seg);
    return true;
  }
  return false;
}

bool _fa_span_free(fa_heap_t *heap, fa_segment_t *seg, fa_page_t *page) {
  fa_heap_lock(heap);
  bool released = fa_span_free(heap, seg, page);
  fa_heap_unlock(heap);
  return released;
}

/* Grow a large span in place into the free span right after it. */
static bool fa_span_grow(fa_heap_t *heap, fa_page_t *page, size_t pages) {
  fa_segment_t *seg = fa_ptr_segment(page);
  size_t idx = _fa_segment_index(seg, page);
  size_t cur = page->span_pages;
  if (pages <= cur) return true;
  size_t need = pages - cur;
  if (idx + cur >= FA_GUARD_PAGE) return false;
  fa_page_t *right = &seg->pages[idx + cur];
  if (right->kind != FA_PAGE_FREE || right->span_pages < need) return false;
  size_t have = right->span_pages;
  bool zeroed = right->zeroed;
  uint64_t free_time = right->free_time;
  _fa_span_unlink(heap, right);
  if (have > need) _fa_span_make_free(heap, right + need, have - need, zeroed, free_time);
  if (zeroed) fa_count(committed, need << FA_PAGE_SHIFT);
  seg->free_pages -= (uint32_t)need;
  _fa_span_set_tails(page, pages);
  return true;
}

bool _fa_span_grow(fa_heap_t *heap, fa_page_t *page, size_t pages) {
  fa_heap_lock(heap);
  bool grown = fa_span_grow(heap, page, pages);
  if (grown) fa_soft_check(heap, 0);
  fa_heap_unlock(heap);
  return grown;
}

/* Give the pages of a large span past the first `pages` back. */
void _fa_span_shrink(fa_heap_t *heap, fa_page_t *page, size_t pages) {
  size_t cur = page->span_pages;
  if (pages >= cur) return;
  fa_heap_lock(heap);
  fa_page_t *tail = page + pages;
  _fa_span_set_tails(page, pages);
  _fa_span_set_tails(tail, cur - pages);
  fa_store(tail->kind, (uint8_t)FA_PAGE_LARGE);
  fa_span_free(heap, fa_ptr_segment(page), tail);
  fa_heap_unlock(heap);
}

static void fa_span_purge(fa_heap_t *heap, fa_segment_t *seg, fa_page_t *span) {
  if (span->zeroed) return;
  _fa_os_purge(fa_page_address(seg, span), fa_span_bytes(span));
  fa_uncount(committed, fa_span_bytes(span));
  span->zeroed = 1;
  if (heap != NULL) fa_dirty_remove(heap, span);
}

void _fa_span_purge(fa_heap_t *heap, fa_segment_t *seg, fa_page_t *span) {
  fa_heap_lock(heap);
  fa_span_purge(heap, seg, span);
  fa_heap_unlock(heap);
}

void _fa_span_purge_unowned(fa_segment_t *seg, fa_page_t *span) { fa_span_purge(NULL, seg, span); }

/* Purge up to max free spans of heap that have been free for delay ms;
 * heap's lock held. */
size_t _fa_heap_purge_locked(fa_heap_t *heap, uint64_t now, uint64_t delay, size_t max) {
  size_t n = 0;
  fa_page_t *span;
  while (n < max && (span = heap->dirty_first) != NULL && now - span->free_time >= delay) {
    fa_span_purge(heap, fa_ptr_segment(span), span);
    n++;
  }
  return n;
}

size_t _fa_heap_purge(fa_heap_t *heap, uint64_t now, uint64_t delay, size_t max) {
  fa_heap_lock(heap);
  size_t n = _fa_heap_purge_locked(heap, now, delay, max);
  fa_heap_unlock(heap);
  return n;
}
