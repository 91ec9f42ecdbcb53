/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - malloc's slow path, large blocks, calloc, realloc and the
 * public allocation entry points.
 */
#include "internal.h"

#include <stdint.h>

/* A block of its own run of pages, for FA_MEDIUM_MAX < n <= FA_LARGE_MAX. */
static void *fa_large_alloc(fa_heap_t *heap, size_t n) {
  size_t pages = (n + FA_PAGE_SIZE - 1) >> FA_PAGE_SHIFT;
  fa_page_t *page = _fa_span_alloc(heap, pages);
  if (page == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  fa_segment_t *seg = fa_ptr_segment(page);
  page->start = fa_page_address(seg, page);
  fa_store(page->bsize, (uint32_t)(pages << FA_PAGE_SHIFT));
  page->inv = 0;
  page->shift = 0;
  fa_store(page->capacity, 0u);   /* not a class span: free's inline check fails */
  page->reserved = page->limit = 0;
  fa_store(page->used, 1u);
  page->free = page->local_free = NULL;
  atomic_store_explicit(&page->xfree, 0, memory_order_relaxed);
  fa_store(page->kind, (uint8_t)FA_PAGE_LARGE);
  ((fa_block_t *)page->start)->tag = 0;
  return page->start;
}

/* Medium and larger sizes, refills, and the periodic heartbeat. */
static void *fa_malloc_raw(fa_heap_t *heap, size_t n) {
  if (n <= FA_MEDIUM_MAX) {
    unsigned cls = fa_size_class(n);
    fa_page_t *rc = &heap->rcache[cls];
    if (rc->free != NULL) return fa_page_take(rc);
    if (rc->used != 0) fa_rcache_reset(heap, cls);   /* the inline pop emptied it */
    fa_page_t *page = heap->queues[cls].first;
    if (page != NULL) {   /* checked mode: the direct tables lead nowhere */
      void *p = fa_page_take(page);
      if (p != NULL) return p;
    }
    if (fa_unlikely(++heap->generic_count % FA_HEARTBEAT == 0)) _fa_heap_heartbeat(heap);
    fa_purge_if_due();
    page = _fa_page_find(heap, cls);
    if (fa_unlikely(page == NULL)) {
      errno = ENOMEM;
      return NULL;
    }
    return fa_page_take(page);
  }
  if (fa_unlikely(++heap->generic_count % FA_HEARTBEAT == 0)) _fa_heap_heartbeat(heap);
  fa_purge_if_due();
  if (n <= FA_LARGE_MAX && n <= __atomic_load_n(&_fa_opt.mmap_threshold, __ATOMIC_RELAXED))
    return fa_large_alloc(heap, n);
  if (n > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  return _fa_huge_alloc(heap, n, 0, false);
}

void *_fa_malloc_raw(fa_heap_t *heap, size_t n) { return fa_malloc_raw(heap, n); }

/* ------------------------------------------------------------------------
 * FANCY_CHECK: the size asked for in the block's last word, a canary
 * behind the request.
 * ---------------------------------------------------------------------- */
static void *fa_check_arm(void *p, size_t n) {
  if (p == NULL) return NULL;
  uint8_t *b = p;
  size_t block = _fa_block_size((uintptr_t)p);
  size_t end = block - sizeof(size_t);
  fa_track_undefined(b, block);
  memcpy(b + end, &n, sizeof n);
  size_t c = end - n;
  memset(b + n, FA_CANARY_BYTE, c < FA_CANARY_MAX ? c : FA_CANARY_MAX);
  fa_track_malloc(b, n);                  /* memcheck: a heap block of n */
  fa_track_noaccess(b + n, block - n);
  return p;
}

static size_t fa_check_size(const void *p) {
  size_t block = _fa_block_size((uintptr_t)p), n;
  if (block < FA_CHECK_EXTRA) _fa_invalid_free(p, "invalid pointer (checked mode)");
  const uint8_t *word = (const uint8_t *)p + block - sizeof n;
  fa_track_defined(word, sizeof n);
  memcpy(&n, word, sizeof n);
  fa_track_noaccess(word, sizeof n);
  if (n > block - FA_CHECK_EXTRA) _fa_fatal("buffer overrun at %p (size word clobbered)", p);
  return n;
}

/* The block is being freed: memcheck forgets it, and only the words the
 * allocator keeps in a free block stay addressable. */
void _fa_check_release(void *p) {
  size_t block = _fa_block_size((uintptr_t)p);
  fa_track_free(p);
  fa_track_noaccess(p, block);
  fa_track_undefined(p, sizeof(fa_block_t));
}

void _fa_check_block(void *p) {
  size_t n = fa_check_size(p);
  size_t c = _fa_block_size((uintptr_t)p) - sizeof(size_t) - n;
  const uint8_t *b = (const uint8_t *)p + n;
  fa_track_defined(b, c < FA_CANARY_MAX ? c : FA_CANARY_MAX);
  for (size_t i = 0; i < c && i < FA_CANARY_MAX; i++)
    if (b[i] != FA_CANARY_BYTE)
      _fa_fatal("buffer overrun at %p (block of %zu bytes, byte %zu past its end written)", p, n,
                i);
}

static void *fa_malloc_checked(fa_heap_t *heap, size_t n) {
  if (n > PTRDIFF_MAX - FA_CHECK_EXTRA) {
    errno = ENOMEM;
    return NULL;
  }
  return fa_check_arm(fa_malloc_raw(heap, n + FA_CHECK_EXTRA), n);
}

/* Everything malloc's inline path does not do; the first allocation of a
 * thread lands here and sets the thread up. */
void *_fa_malloc_generic(fa_heap_t *heap, size_t n) {
  if (fa_unlikely(heap == &_fa_heap_empty)) {
    heap = _fa_thread_init();
    if (heap == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  if (fa_unlikely(_fa_opt.check)) return fa_malloc_checked(heap, n);
  /* the heap's countdown (prof.c); a dump pending: uncharged, the
   * profiler charges it */
  if (fa_unlikely(_fa_opt.prof) &&
      (fa_unlikely(atomic_load_explicit(&_fa_prof_pending, memory_order_relaxed) != 0) ||
       fa_unlikely(!fa_prof_charge(heap, n))))
    return _fa_prof_malloc(heap, n);
  return fa_malloc_raw(heap, n);
}

/* An aligned block in checked mode: room for the canary, alignment kept
 * (see aligned.c for the classes that are naturally aligned). */
void *_fa_aligned_checked(fa_heap_t *heap, size_t alignment, size_t size) {
  if (heap == &_fa_heap_empty) heap = _fa_thread_init();
  if (heap == NULL || size > PTRDIFF_MAX - FA_CHECK_EXTRA - alignment) {
    errno = ENOMEM;
    return NULL;
  }
  size_t n = size + FA_CHECK_EXTRA;
  if (alignment <= FA_MEDIUM_MAX && n <= FA_MEDIUM_MAX) {
    unsigned cls = fa_size_class((n + alignment - 1) & ~(alignment - 1));
    while (_fa_class_size[cls] % alignment != 0) cls++;
    return fa_check_arm(fa_malloc_raw(heap, _fa_class_size[cls]), size);
  }
  if (alignment <= FA_PAGE_SIZE && n <= FA_LARGE_MAX)
    return fa_check_arm(fa_malloc_raw(heap, n > FA_MEDIUM_MAX ? n : FA_MEDIUM_MAX + 1), size);
  return fa_check_arm(_fa_huge_alloc(heap, n, alignment, false), size);
}

/* The block's usable size, or 0 for NULL, pointers that are not ours and
 * blocks that are free (as glibc's malloc_usable_size returns for a freed
 * chunk): a free block of a segment carries its tag (fa_block_t). */
size_t _fa_usable_size(uintptr_t u) {
  size_t n = _fa_block_size(u);
  if (n != 0 && n <= FA_LARGE_MAX && ((const fa_block_t *)u)->tag == fa_block_tag((void *)u))
    return 0;
  if (fa_unlikely(_fa_opt.check) && n != 0) return fa_check_size((void *)u);
  return n;
}

/* The size of the block at u as the allocator sees it. */
size_t _fa_block_size(uintptr_t u) {
  const void *p = (const void *)u;
  switch (fa_unit_kind(u)) {
  case FA_UNIT_SEGMENT: {
    fa_page_t *page = fa_segment_span_of(fa_ptr_segment(p), p);
    if (page->kind == FA_PAGE_CLASS || page->kind == FA_PAGE_LARGE) {
      size_t off = (size_t)(u - (uintptr_t)page->start);
      if (page->kind == FA_PAGE_LARGE) return off == 0 ? page->bsize : 0;
      return fa_page_is_block_start(page, u) ? page->bsize : 0;
    }
    return 0;
  }
  case FA_UNIT_HUGE: return _fa_huge_size(p);
  default: return 0;
  }
}

void *_fa_calloc(fa_heap_t *heap, size_t count, size_t size) {
  size_t n;
  if (fa_unlikely(__builtin_mul_overflow(count, size, &n))) {
    errno = ENOMEM;
    return NULL;
  }
  /* A fresh mapping is zero: no memset, and no warm (dirty) one. */
  if (n > FA_LARGE_MAX && !_fa_opt.check && !_fa_opt.prof && n <= PTRDIFF_MAX)
    return _fa_huge_alloc(heap, n, 0, true);
  void *p = fa_heap_malloc(heap, n);
  if (p == NULL) return NULL;
  if (n > FA_MEDIUM_MAX && n <= FA_LARGE_MAX && !_fa_opt.check) {
    /* Large spans carved from purged or fresh pages are zero too. */
    fa_page_t *page = fa_segment_span_of(fa_ptr_segment(p), p);
    if (page->zeroed) return p;
  }
  memset(p, 0, n);
  return p;
}

/* Check that p is a live block realloc may read and resize; abort if
 * not.  A freed block must be caught here: it may already be another
 * malloc's, and resizing it in place would give it two owners.  A free
 * class block carries its tag; a free large block is a free span, or
 * (freed by another thread, not collected yet) the head of its page's
 * remote list with its tag. */
static fa_page_t *fa_realloc_page(fa_domain_t *d, void *p) {
  fa_segment_t *seg = fa_ptr_segment(p);
  fa_page_t *page = fa_segment_span_of(seg, p);
  fa_block_t *b = p;
  if (page->kind == FA_PAGE_CLASS) {
    if (!fa_page_is_block_start(page, (uintptr_t)p))
      _fa_invalid_free(p, "realloc of a pointer that is not the start of a block");
    if (b->tag == fa_block_tag(b)) _fa_invalid_free(p, "realloc of a freed block");
  } else if (page->kind == FA_PAGE_LARGE && p == page->start) {
    if (b->tag == fa_block_tag(b) &&
        fa_xfree_list(atomic_load_explicit(&page->xfree, memory_order_relaxed)) == b)
      _fa_invalid_free(p, "realloc of a freed block");
  } else if (page->kind == FA_PAGE_FREE && (uint8_t *)p == fa_page_address(seg, page)) {
    _fa_invalid_free(p, "realloc of a freed block");
  } else {
    _fa_invalid_free(p, "realloc of a pointer that is not the start of a block");
  }
  if (seg->domain != d) _fa_wrong_instance(p);
  return page;
}

static void *fa_realloc_move(fa_heap_t *heap, void *p, size_t old, size_t n) {
  fa_domain_t *d = heap->domain;
  void *q = fa_heap_malloc(heap, n);
  if (q == NULL) return NULL;
  memcpy(q, p, old < n ? old : n);
  /* the heap may have been set up by that malloc */
  fa_heap_t *now = fa_domain_thread_heap(d);
  fa_heap_free(d, now ? now : heap, p);
  return q;
}

void *_fa_realloc(fa_heap_t *heap, void *p, size_t n) {
  if (p == NULL) return fa_heap_malloc(heap, n);
  if (n == 0) {
    fa_heap_free(heap->domain, heap, p);
    return NULL;
  }
  unsigned kind = fa_unit_kind((uintptr_t)p);
  /* Checked mode moves every block, after the checks of the plain path: a
   * freed or foreign block, or a bad pointer, goes the plain way (to the
   * same message, or to foreign.c); only a live block gets here. */
  if (fa_unlikely(_fa_opt.check)) {
    if (kind == FA_UNIT_SEGMENT) {
      fa_track_defined(p, sizeof(fa_block_t));   /* the tag may lie past a tiny block */
      fa_realloc_page(heap->domain, p);          /* aborts unless p is a live block */
    }
    if (kind == FA_UNIT_SEGMENT || (kind == FA_UNIT_HUGE && _fa_huge_size(p) != 0)) {
      _fa_check_block(p);
      return fa_realloc_move(heap, p, fa_check_size(p), n);
    }
  }
  if (kind == FA_UNIT_HUGE) {
    if (fa_unlikely(_fa_opt.prof)) _fa_prof_forget(p);   /* it may move */
    return _fa_huge_realloc(heap, p, n);
  }
  if (fa_unlikely(kind != FA_UNIT_SEGMENT)) {
    /* glibc's own block, as a malloc replacement (foreign.c), or a bug */
    if (_fa_override_mode) return _fa_foreign_realloc(heap, p, n);
    _fa_invalid_free(p, _fa_huge_was_freed(p) ? "realloc of a freed block (huge block)"
                                              : "realloc of a pointer not allocated by fancyalloc");
  }
  fa_page_t *page = fa_realloc_page(heap->domain, p);
  size_t usable = page->bsize;
  if (page->kind == FA_PAGE_CLASS) {
    /* Stay when it fits and would not fit a class under half the size.
     * Not in a span marked for the heap profiler: a sampled block under
     * 2 KiB sits in a span of 2 KiB blocks (prof.c), and grown in place
     * it would stay in the profile at its old size; moved, its free drops
     * the sample and the new block is counted as any other. */
    if (n <= usable && (n > usable / 2 || usable <= 16) &&
        fa_load(page->free_mark) == 0)
      return p;
    return fa_realloc_move(heap, p, usable, n);
  }
  /* A large span: shrink or grow its pages in place when we own it. */
  fa_segment_t *seg = fa_ptr_segment(p);
  bool owner = atomic_load_explicit(&seg->heap, memory_order_relaxed) == heap;
  if (n > FA_MEDIUM_MAX && n <= FA_LARGE_MAX) {
    size_t pages = (n + FA_PAGE_SIZE - 1) >> FA_PAGE_SHIFT;
    if (pages == page->span_pages) return p;
    if (owner) {
      if (pages < page->span_pages) {
        _fa_span_shrink(heap, page, pages);
        fa_store(page->bsize, (uint32_t)(pages << FA_PAGE_SHIFT));
        return p;
      }
      if (_fa_span_grow(heap, page, pages)) {
        fa_store(page->bsize, (uint32_t)(pages << FA_PAGE_SHIFT));
        return p;
      }
    } else if (n <= usable) {
      return p;
    }
  }
  return fa_realloc_move(heap, p, usable, n);
}

/* ------------------------------------------------------------------------
 * Public entry points
 * ---------------------------------------------------------------------- */
void *fancy_malloc(size_t size) FANCY_NOEXCEPT { return fa_malloc_inline(size); }

void *fancy_calloc(size_t nmemb, size_t size) FANCY_NOEXCEPT {
  return _fa_calloc(fa_heap_get(), nmemb, size);
}

void *fancy_realloc(void *ptr, size_t size) FANCY_NOEXCEPT {
  return _fa_realloc(fa_heap_get(), ptr, size);
}

size_t fancy_malloc_usable_size(const void *ptr) FANCY_NOEXCEPT {
  return _fa_usable_size((uintptr_t)ptr);
}
