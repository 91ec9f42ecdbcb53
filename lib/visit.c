/* SPDX-License-Identifier: MIT */
/*
 * visit.c - fancy_heap_visit and fancy_heap_visit_all: a walk over the
 * live blocks, for garbage collectors and leak checkers.
 *
 * A block is live when it was handed out (index below its span's
 * capacity, or the block of a large span in use) and does not carry the
 * free tag: every way a block leaves use (the owner's local list, another
 * thread's remote push, a thread keeping it to reuse) writes the tag
 * first, and malloc clears it (see fa_block_t).  So the walk needs no
 * list of free blocks and never touches another thread's lists: it reads
 * page descriptors with relaxed loads and each block's tag word.
 * Segments are never unmapped, so a walk racing with other threads reads
 * stale figures at worst, never unmapped memory.
 */
#include "internal.h"

static int fa_visit_segment(fa_segment_t *seg, fancy_visit_fn fn, void *arg) {
  uintptr_t end = (uintptr_t)seg + FA_SEGMENT_SIZE;
  for (size_t idx = FA_FIRST_PAGE, n; idx < FA_GUARD_PAGE; idx += n) {
    fa_page_t *page = &seg->pages[idx];
    n = fa_span_pages_seen(seg, idx);
    unsigned kind = fa_load(page->kind);
    uint8_t *start = __atomic_load_n(&page->start, __ATOMIC_RELAXED);
    if (kind == FA_PAGE_CLASS) {
      size_t bsize = fa_load(page->bsize), cap = fa_load(page->capacity);
      for (size_t i = 0; i < cap && bsize != 0; i++) {
        fa_block_t *b = (fa_block_t *)(start + i * bsize);
        if ((uintptr_t)b + bsize > end) break;
        if (__atomic_load_n(&b->tag, __ATOMIC_RELAXED) == fa_block_tag(b)) continue;
        int r = fn(b, _fa_opt.check ? _fa_usable_size((uintptr_t)b) : bsize, arg);
        if (r != 0) return r;
      }
    } else if (kind == FA_PAGE_LARGE && fa_load(page->used) != 0) {
      fa_block_t *b = (fa_block_t *)start;
      if ((uintptr_t)b >= (uintptr_t)seg && (uintptr_t)b < end &&
          __atomic_load_n(&b->tag, __ATOMIC_RELAXED) != fa_block_tag(b)) {
        int r = fn(b, _fa_opt.check ? _fa_usable_size((uintptr_t)b) : fa_load(page->bsize), arg);
        if (r != 0) return r;
      }
    }
  }
  return 0;
}

/* The calling thread owns these segments: nobody else adds or removes
 * any, and only remote frees (which write the tag) touch their blocks. */
int fancy_heap_visit(fancy_visit_fn fn, void *arg) FANCY_NOEXCEPT {
  if (fn == NULL) {
    errno = EINVAL;
    return -1;
  }
  fa_heap_t *heap = fa_heap_get();
  if (heap == &_fa_heap_empty) return 0;
  for (fa_segment_t *seg = heap->segments; seg != NULL; seg = seg->next) {
    int r = fa_visit_segment(seg, fn, arg);
    if (r != 0) return r;
  }
  return 0;
}

/* Every segment of the default instance that holds blocks, under the
 * segments lock (so none changes hands or enters the cache meanwhile),
 * then the huge blocks. */
int fancy_heap_visit_all(fancy_visit_fn fn, void *arg) FANCY_NOEXCEPT {
  if (fn == NULL) {
    errno = EINVAL;
    return -1;
  }
  _fa_process_init();
  int r = 0;
  pthread_mutex_lock(&_fa_segments_lock);
  for (fa_segment_t *seg = _fa_all_segments; seg != NULL && r == 0; seg = seg->gnext) {
    if (seg->state != FA_SEG_OWNED && seg->state != FA_SEG_ABANDONED &&
        seg->state != FA_SEG_ORPHANED)
      continue;
    if (seg->domain != &_fa_domain_default) continue;
    r = fa_visit_segment(seg, fn, arg);
  }
  pthread_mutex_unlock(&_fa_segments_lock);
  if (r != 0) return r;
  return _fa_huge_visit(&_fa_domain_default, fn, arg);
}
