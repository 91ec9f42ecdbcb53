/* SPDX-License-Identifier: MIT */
/*
 * free.c - free's slow path: remote frees, large blocks, and the checks
 * that turn a double or invalid free into a clear abort instead of heap
 * corruption.
 */
#include "internal.h"

void _fa_invalid_free(const void *p, const char *what) {
  _fa_fatal("%s at %p", what, p);
}

/* Push b onto the page's remote list; the first block of a batch also
 * flags the page in its segment and wakes the owner's collection. */
static void fa_free_remote(fa_segment_t *seg, fa_page_t *page, fa_block_t *b) {
  b->tag = fa_block_tag(b);
  uintptr_t old = atomic_load_explicit(&page->xfree, memory_order_relaxed), x;
  do {
    size_t n = fa_xfree_count(old);
    /* more remote frees pending than blocks fit in any span */
    if (n == FA_XFREE_COUNT_MAX) _fa_fatal("double free detected in page %p", (void *)page->start);
    b->next = fa_xfree_list(old);
    x = (uintptr_t)b | (uintptr_t)(n + 1) << FA_XFREE_SHIFT;
  } while (!atomic_compare_exchange_weak_explicit(&page->xfree, &old, x, memory_order_release,
                                                  memory_order_relaxed));
  if (old == 0) {
    unsigned idx = (unsigned)_fa_segment_index(seg, page);
    atomic_fetch_or_explicit(&seg->xmask, (uint64_t)1 << idx, memory_order_release);
    fa_heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_acquire);
    if (owner != NULL) atomic_store_explicit(&owner->xpending, 1, memory_order_relaxed);
    else atomic_store_explicit(&_fa_abandoned_xpending, 1, memory_order_relaxed);
  }
}

/* A block of another thread's class page, freed by this thread, whose
 * owner does not collect (!fa_owner_collects) or is gone:
 * keep it to serve this thread's next malloc of the class (most recent
 * first, still warm in this CPU's cache) instead of handing it back.  It
 * stays counted as used in its page meanwhile.  False when the cache of
 * the class is full. */
static bool fa_rcache_put(fa_heap_t *heap, fa_page_t *page, fa_block_t *b) {
  unsigned cls = page->cls;
  fa_page_t *rc = &heap->rcache[cls];
  uint32_t kept = heap->rcache_pushed[cls] - rc->used;
  if (heap == &_fa_heap_empty || _fa_opt.check) return false;
  if (kept >= FA_RCACHE_MAX || (size_t)(kept + 1) * page->bsize > FA_RCACHE_BYTES) return false;
  b->tag = fa_block_tag(b);
  b->next = rc->free;
  bool was_empty = rc->free == NULL;
  rc->free = b;
  fa_store(heap->rcache_pushed[cls], heap->rcache_pushed[cls] + 1);   /* read by statistics */
  if (was_empty) _fa_heap_set_direct(heap, cls, heap->queues[cls].first);
  return true;
}

/* b's page belongs to a live heap that collects what other threads free
 * into it: its remote list is shorter than fa_xfree_backlog_max.  Then b
 * goes back there rather than into this thread's rcache. */
static bool fa_owner_collects(fa_segment_t *seg, const fa_page_t *page) {
  if (atomic_load_explicit(&seg->heap, memory_order_relaxed) == NULL) return false;
  uintptr_t x = atomic_load_explicit(&page->xfree, memory_order_relaxed);
  return fa_xfree_count(x) < fa_xfree_backlog_max(page);
}

static void fa_rcache_return(fa_heap_t *heap);

/* Hand every kept block back to its page (thread exit, trim, statistics,
 * memory pressure, and the heartbeat). */
void _fa_rcache_flush(fa_heap_t *heap) {
  if (heap == NULL || heap == &_fa_heap_empty) return;
  fa_rcache_return(heap);
}

static void fa_rcache_return(fa_heap_t *heap) {
  for (unsigned cls = 0; cls < FA_NUM_CLASSES; cls++) {
    fa_page_t *rc = &heap->rcache[cls];
    if (rc->free == NULL && rc->used == 0) continue;
    fa_block_t *b = rc->free;
    fa_rcache_reset(heap, cls);
    while (b != NULL) {
      fa_block_t *next = b->next;
      fa_segment_t *seg = fa_ptr_segment(b);   /* back onto its page's remote list */
      fa_free_remote(seg, fa_segment_span_of(seg, b), b);
      b = next;
    }
  }
}

void _fa_wrong_instance(const void *p) {
  _fa_fatal("free of a block of another allocator instance at %p", p);
}

/* A free into a segment nobody owns: take it over (see
 * _fa_segment_reclaim), unless this thread has no heap to take it or the
 * segment was given back (checked first without a lock: every free into
 * it would take two). */
static bool fa_free_reclaims(fa_heap_t *heap, fa_segment_t *seg) {
  return heap != &_fa_heap_empty &&
         atomic_load_explicit(&seg->heap, memory_order_relaxed) == NULL &&
         !fa_load(seg->given_back) && _fa_segment_reclaim(heap, seg);
}

/* A free into a class span that may hold blocks the heap profiler sampled
 * (prof.c marks the span, so that all its frees come here; no mark, no
 * sample: the owner marks before it counts one up, and a sampled block
 * reaches another thread only after that; only the profiler marks, so the
 * mark alone is tested, also after profiling was turned off): drop p's
 * sample if it is one.  The span's owner lifts the mark once none is left;
 * a thread that frees the last one leaves that to the owner's next free
 * (only the owner writes free_mark, which its inline path reads). */
static void fa_free_sampled(fa_page_t *page, void *p, bool owner) {
  uint32_t w = atomic_load_explicit(&page->samples, memory_order_acquire);
  if (fa_page_may_be_sampled(w, fa_block_index(page, (uintptr_t)p)) && _fa_prof_forget(p))
    atomic_fetch_sub_explicit(&page->samples, 1, memory_order_relaxed);   /* the count's bits */
  if (owner && FA_SAMPLE_COUNT(atomic_load_explicit(&page->samples, memory_order_relaxed)) == 0)
    fa_store(page->free_mark, 0u);
}

void _fa_free_generic(fa_domain_t *d, fa_segment_t *seg, fa_page_t *page, void *p) {
  fa_heap_t *heap = fa_domain_thread_heap(d);
  if (heap == NULL) heap = &_fa_heap_empty;       /* owns nothing */
  bool owner = atomic_load_explicit(&seg->heap, memory_order_relaxed) == heap;
  fa_block_t *b = p;
  if ((page->kind == FA_PAGE_CLASS || page->kind == FA_PAGE_LARGE) && seg->domain != d)
    _fa_wrong_instance(p);
  switch (page->kind) {
  case FA_PAGE_CLASS:
    if (!fa_page_is_block_start(page, (uintptr_t)p))
      _fa_invalid_free(p, "invalid free (not the start of a block)");
    if (fa_unlikely(_fa_opt.check)) {
      fa_track_defined(b, sizeof *b);     /* the tag may lie past a tiny block */
      if (b->tag != fa_block_tag(b)) _fa_check_block(p);
    }
    /* Freed already: on one of the page's lists, or kept by some thread
     * to reuse (fa_rcache_put).  A live block never carries its tag
     * (malloc clears it), and live data that matches it, the block's own
     * address scrambled, is too unlikely to be chance. */
    if (b->tag == fa_block_tag(b)) _fa_invalid_free(p, "double free");
    if (fa_unlikely(_fa_opt.check)) _fa_check_release(p);
    /* before the block may be kept (fa_rcache_put) */
    if (fa_unlikely(fa_load(page->free_mark) != 0)) fa_free_sampled(page, p, owner);
    if (owner || fa_free_reclaims(heap, seg)) {
      b->tag = fa_block_tag(b);
      b->next = page->local_free;
      page->local_free = b;
      fa_store(page->used, page->used - 1);
      if (page->used == 0) _fa_page_retire(heap, page);
    } else if (fa_owner_collects(seg, page) || !fa_rcache_put(heap, page, b)) {
      fa_free_remote(seg, page, b);
    }
    return;
  case FA_PAGE_LARGE:
    if (p != page->start) _fa_invalid_free(p, "invalid free (not the start of a block)");
    if (fa_unlikely(_fa_opt.check)) {
      fa_track_defined(b, sizeof *b);
      if (b->tag != fa_block_tag(b)) _fa_check_block(p);
    }
    if (b->tag == fa_block_tag(b) &&
        (!owner || fa_xfree_list(atomic_load_explicit(&page->xfree, memory_order_relaxed)) == b))
      _fa_invalid_free(p, "double free");
    if (fa_unlikely(_fa_opt.check)) _fa_check_release(p);
    if (fa_unlikely(_fa_opt.prof)) _fa_prof_forget(p);
    if (owner || fa_free_reclaims(heap, seg)) {
      fa_store(page->used, 0u);
      _fa_span_free(heap, seg, page);
    } else {
      fa_free_remote(seg, page, b);
    }
    return;
  case FA_PAGE_FREE:
    _fa_invalid_free(p, "double free (block already returned)");
  default:
    _fa_invalid_free(p, "invalid free (not an allocated block)");
  }
}

/* NULL, huge blocks, and pointers that are not ours. */
void _fa_free_special(fa_domain_t *d, void *p) {
  if (p == NULL) return;
  if (fa_unit_kind((uintptr_t)p) == FA_UNIT_HUGE) {
    if (fa_unlikely(_fa_opt.prof)) _fa_prof_forget(p);
    if (fa_unlikely(_fa_opt.check) && _fa_huge_size(p) != 0) {
      _fa_check_block(p);
      fa_track_free(p);
    }
    if (_fa_huge_free(d, p)) return;
    if (_fa_huge_contains(p)) _fa_invalid_free(p, "invalid free (inside a huge block)");
    /* else: a unit's tail beyond the end of a huge block, someone else's */
  }
  /* As a malloc replacement, a pointer of glibc's own allocator (handed
   * out before we were loaded, or by a library that reached it directly)
   * may come back to us: foreign.c tells it from a bug and gives it to
   * glibc's free.  Through the fancy_* API any such pointer is a bug. */
  if (_fa_override_mode) {
    _fa_foreign_free(p);
    return;
  }
  if (_fa_huge_was_freed(p)) _fa_invalid_free(p, "double free (huge block)");
  _fa_invalid_free(p, "invalid free (pointer not allocated by fancyalloc)");
}

void fancy_free(void *ptr) FANCY_NOEXCEPT { fa_free_inline(ptr); }
