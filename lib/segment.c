/* SPDX-License-Identifier: MIT */
/*
 * segment.c - the life of a 4 MiB segment (types.h, "Life of a segment"):
 * owned by a heap, abandoned at its thread's exit and adopted, cached
 * empty, purged to the reserve, and taken back from any heap under memory
 * pressure.  The spans inside a segment are span.c's; the map from an
 * address to its segment is addrmap.c's.
 *
 * Segments are never unmapped.  A thread that frees a block remotely may
 * still touch the segment header for a few instructions after its push, so
 * a released segment is purged (MADV_DONTNEED: its RSS goes back to the
 * OS) and kept on the reserve list for reuse instead.  Address space is
 * cheap; a SIGSEGV in a remote free is not.
 */
#include "internal.h"

pthread_mutex_t _fa_segments_lock = PTHREAD_MUTEX_INITIALIZER;
fa_segment_t *_fa_all_segments;
fa_segment_t *_fa_abandoned;
fa_segment_t *_fa_cached;          /* empty and warm (committed) */
static fa_segment_t *fa_reserve;   /* empty and purged */
size_t _fa_abandoned_count;
size_t _fa_cached_count;
_Atomic int _fa_abandoned_xpending;
_Atomic uint64_t _fa_abandoned_dirty_due;

size_t _fa_segment_index(const fa_segment_t *seg, const fa_page_t *page) {
  return (size_t)(page - seg->pages);
}

/* ------------------------------------------------------------------------
 * Segments
 * ---------------------------------------------------------------------- */
static void fa_list_push(fa_segment_t **list, fa_segment_t *seg) {
  seg->prev = NULL;
  seg->next = *list;
  if (*list) (*list)->prev = seg;
  *list = seg;
}

static void fa_list_remove(fa_segment_t **list, fa_segment_t *seg) {
  if (seg->prev) seg->prev->next = seg->next;
  else *list = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = NULL;
}

static void fa_segment_header_init(fa_segment_t *seg) {
  memset(seg->pages, 0, sizeof seg->pages);
  for (size_t i = 0; i < FA_PAGES_PER_SEGMENT; i++) seg->pages[i].head = &seg->pages[i];
  seg->cookie = FA_SEGMENT_MAGIC ^ (uint64_t)(uintptr_t)seg ^ _fa_secret;
  atomic_store_explicit(&seg->xmask, 0, memory_order_relaxed);
  seg->free_pages = 0;
  seg->reclaimed = false;
  fa_store(seg->given_back, false);
  seg->dirty_time = 0;
}

/* Give the segment to heap as one free span of all usable pages. */
static void fa_segment_own(fa_heap_t *heap, fa_segment_t *seg, bool zeroed) {
  seg->state = FA_SEG_OWNED;
  seg->domain = heap->domain;
  fa_list_push(&heap->segments, seg);
  heap->segment_count++;
  fa_segment_set_owner(seg, heap);
  seg->free_pages = FA_SEGMENT_USABLE_PAGES;
  _fa_span_make_free(heap, &seg->pages[FA_FIRST_PAGE], FA_SEGMENT_USABLE_PAGES, zeroed,
                    _fa_clock_ms());
}

/* Take over an abandoned segment: rebuild this heap's queues and bins from
 * the page descriptors, collecting what other threads freed meanwhile. */
static void fa_segment_adopt(fa_heap_t *heap, fa_segment_t *seg) {
  fa_segment_set_owner(seg, heap);
  atomic_store_explicit(&seg->xmask, 0, memory_order_relaxed);
  size_t idx = FA_FIRST_PAGE;
  while (idx < FA_GUARD_PAGE) {
    fa_page_t *page = &seg->pages[idx];
    page -= page->span_offset;          /* a merge may have moved the start */
    size_t first = _fa_segment_index(seg, page);
    switch (page->kind) {
    case FA_PAGE_FREE:
      if (!page->in_bin) {
        _fa_span_file(heap, page);   /* keeps its age */
      }
      break;
    case FA_PAGE_CLASS:
      _fa_page_collect_lists(page);
      if (page->used != 0) _fa_queue_push_back(heap, page);
      else if (_fa_span_free(heap, seg, page)) return;   /* emptied and given back */
      break;
    case FA_PAGE_LARGE:
      _fa_page_collect_lists(page);
      if (page->used == 0 && _fa_span_free(heap, seg, page)) return;
      break;
    default:
      _fa_fatal("corrupt segment %p: page %zu has no span", (void *)seg, first);
    }
    page = &seg->pages[first];
    page -= page->span_offset;
    idx = _fa_segment_index(seg, page) + page->span_pages;
  }
}

/* ABANDONED -> OWNED, lock held (the caller's; it stays held): seg moves
 * from the abandoned list to heap's.  The caller unlocks, then adopts. */
static void fa_segment_take(fa_heap_t *heap, fa_segment_t *seg, bool reclaimed) {
  seg->reclaimed = reclaimed;
  fa_store(seg->given_back, false);
  seg->dirty_time = 0;   /* its dirty spans go on heap's dirty list */
  fa_list_remove(&_fa_abandoned, seg);
  _fa_abandoned_count--;
  seg->state = FA_SEG_OWNED;
  fa_list_push(&heap->segments, seg);
  heap->segment_count++;
}

/* The calling thread, owner of heap, frees a block into seg, which has no
 * owner: take the segment over (its blocks are probably those of a thread
 * that exited and handed its data to this one), so that this free and the
 * ones after it are local and the memory is reused here at once, instead
 * of waiting, unused, for a thread that needs a segment.  False when seg
 * is not abandoned in heap's instance (any more), or was given back. */
bool _fa_segment_reclaim(fa_heap_t *heap, fa_segment_t *seg) {
  fa_heap_lock(heap);
  pthread_mutex_lock(&_fa_segments_lock);
  if (seg->state != FA_SEG_ABANDONED || seg->domain != heap->domain || seg->given_back) {
    pthread_mutex_unlock(&_fa_segments_lock);
    fa_heap_unlock(heap);
    return false;
  }
  fa_segment_take(heap, seg, true);
  pthread_mutex_unlock(&_fa_segments_lock);
  fa_segment_adopt(heap, seg);
  fa_heap_unlock(heap);
  return true;
}

/* Find a segment for heap: one abandoned by an exited thread, a warm empty
 * one, a purged one from the reserve, or a new mapping, in that order. */
bool _fa_segment_acquire(fa_heap_t *heap) {
  fa_domain_t *d = heap->domain;
  pthread_mutex_lock(&_fa_segments_lock);
  /* Segments with live blocks stay in their instance; they are charged
   * to it already. */
  fa_segment_t *seg = _fa_abandoned;
  while (seg != NULL && seg->domain != d) seg = seg->next;
  if (seg != NULL) {
    fa_segment_take(heap, seg, false);
    pthread_mutex_unlock(&_fa_segments_lock);
    fa_segment_adopt(heap, seg);
    return true;
  }
  /* Any other segment is charged to the instance from here on. */
  if (!_fa_domain_charge(d, FA_SEGMENT_SIZE)) {
    pthread_mutex_unlock(&_fa_segments_lock);
    errno = ENOMEM;
    return false;
  }
  seg = _fa_cached;
  if (seg != NULL) {
    fa_list_remove(&_fa_cached, seg);
    __atomic_sub_fetch(&_fa_cached_count, 1, __ATOMIC_RELAXED);
    bool zeroed = seg->pages[FA_FIRST_PAGE].zeroed;
    fa_segment_header_init(seg);
    fa_segment_own(heap, seg, zeroed);
    pthread_mutex_unlock(&_fa_segments_lock);
    return true;
  }
  seg = fa_reserve;
  if (seg != NULL) {
    /* Its memory was given back: count it against the limit again. */
    if (!_fa_os_charge(FA_SEGMENT_SIZE)) {
      _fa_domain_uncharge(d, FA_SEGMENT_SIZE);
      pthread_mutex_unlock(&_fa_segments_lock);
      errno = ENOMEM;
      return false;
    }
    fa_list_remove(&fa_reserve, seg);
    fa_segment_header_init(seg);
    fa_segment_own(heap, seg, true);
    pthread_mutex_unlock(&_fa_segments_lock);
    return true;
  }
  pthread_mutex_unlock(&_fa_segments_lock);

  if (_fa_unit_count == 0) {
    _fa_domain_uncharge(d, FA_SEGMENT_SIZE);
    errno = ENOMEM;
    return false;
  }
  seg = _fa_os_map_segment(d->populate, d->huge_pages);
  if (seg == NULL) {
    _fa_domain_uncharge(d, FA_SEGMENT_SIZE);
    return false;
  }
  fa_count(segments, 1);
  fa_segment_header_init(seg);
  _fa_segmap_set((uintptr_t)seg, FA_UNIT_SEGMENT);
  pthread_mutex_lock(&_fa_segments_lock);
  seg->gprev = NULL;
  seg->gnext = _fa_all_segments;
  if (_fa_all_segments) _fa_all_segments->gprev = seg;
  _fa_all_segments = seg;
  fa_segment_own(heap, seg, true);
  pthread_mutex_unlock(&_fa_segments_lock);
  return true;
}

/* An empty segment leaves its instance (it stays mapped and charged to
 * the process, in the cache). */
static void fa_segment_unclaim(fa_segment_t *seg) {
  if (seg->domain != NULL) _fa_domain_uncharge(seg->domain, FA_SEGMENT_SIZE);
  seg->domain = NULL;
}

/* Purge an empty segment and move it to the reserve; lock held. */
static void fa_segment_to_reserve(fa_segment_t *seg) {
  fa_segment_unclaim(seg);
  fa_page_t *span = &seg->pages[FA_FIRST_PAGE];
  if (!span->zeroed) {
    _fa_os_purge(fa_page_address(seg, span), fa_span_bytes(span));
    fa_uncount(committed, fa_span_bytes(span));
  }
  seg->state = FA_SEG_RESERVED;
  fa_uncount(mapped, FA_SEGMENT_SIZE);
  fa_list_push(&fa_reserve, seg);
}

/* A cached segment leaves the warm cache for the reserve; lock held. */
static void fa_segment_uncache(fa_segment_t *seg) {
  fa_list_remove(&_fa_cached, seg);
  __atomic_sub_fetch(&_fa_cached_count, 1, __ATOMIC_RELAXED);
  fa_segment_to_reserve(seg);
}

/* An empty segment with no owner: to the warm cache while it has room
 * (and the memory is still there to be warm), else purged to the
 * reserve.  Lock held. */
static void fa_segment_park(fa_segment_t *seg) {
  if (!seg->pages[FA_FIRST_PAGE].zeroed && _fa_cached_count < _fa_opt.segment_cache &&
      !fa_soft_over()) {
    fa_segment_unclaim(seg);
    seg->state = FA_SEG_CACHED;
    seg->cache_time = _fa_clock_ms();
    _fa_purge_due_at(seg->cache_time + _fa_opt.purge_delay);
    fa_list_push(&_fa_cached, seg);
    __atomic_add_fetch(&_fa_cached_count, 1, __ATOMIC_RELAXED);
  } else {
    fa_segment_to_reserve(seg);
  }
}

/* An empty segment leaves its heap (heap NULL: it had none). */
void _fa_segment_release(fa_heap_t *heap, fa_segment_t *seg) {
  fa_page_t *span = &seg->pages[FA_FIRST_PAGE];
  fa_assert(span->kind == FA_PAGE_FREE && span->span_pages == FA_SEGMENT_USABLE_PAGES);
  _fa_span_unlink(heap, span);
  span->in_bin = span->dirty = 0;
  fa_segment_set_owner(seg, NULL);
  pthread_mutex_lock(&_fa_segments_lock);
  if (heap != NULL) {
    fa_list_remove(&heap->segments, seg);
    heap->segment_count--;
  }
  fa_segment_park(seg);
  pthread_mutex_unlock(&_fa_segments_lock);
  fa_test_point(FA_TP_SEGMENT_RELEASED, seg);
}

/* Purge cached segments older than delay (all when force); returns how
 * many were purged.  Takes the lock unless it cannot (trylock) and
 * blocking is false. */
size_t _fa_segment_cache_decay(uint64_t now, uint64_t delay, bool force, bool blocking) {
  if (blocking) pthread_mutex_lock(&_fa_segments_lock);
  else if (pthread_mutex_trylock(&_fa_segments_lock) != 0) return 0;
  size_t n = 0;
  fa_segment_t *seg = _fa_cached;
  while (seg != NULL) {
    fa_segment_t *next = seg->next;
    if (force || now - seg->cache_time >= delay) {
      fa_segment_uncache(seg);
      n++;
    }
    seg = next;
  }
  pthread_mutex_unlock(&_fa_segments_lock);
  return n;
}

/* fancy_trim(pad): keep the most recently cached segments whose bytes fit
 * in *budget (taken from it), purge the others to the reserve. */
size_t _fa_segment_cache_trim(size_t *budget) {
  pthread_mutex_lock(&_fa_segments_lock);
  size_t n = 0;
  fa_segment_t *seg = _fa_cached;   /* newest first: pushed at the head */
  while (seg != NULL) {
    fa_segment_t *next = seg->next;
    if (*budget >= FA_SEGMENT_SIZE) {
      *budget -= FA_SEGMENT_SIZE;
    } else {
      fa_segment_uncache(seg);
      n++;
    }
    seg = next;
  }
  pthread_mutex_unlock(&_fa_segments_lock);
  return n;
}

/* Instance d is being destroyed: every segment of it, whatever it holds,
 * is purged and goes to the reserve.  Its heaps are parked by the caller
 * (instance.c); nobody may use the instance any more. */
void _fa_segments_release_domain(fa_domain_t *d) {
  pthread_mutex_lock(&_fa_segments_lock);
  for (fa_segment_t *seg = _fa_all_segments; seg != NULL; seg = seg->gnext) {
    if (seg->domain != d) continue;
    if (seg->state == FA_SEG_OWNED) {
      fa_heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_relaxed);
      if (owner != NULL) {
        fa_list_remove(&owner->segments, seg);
        owner->segment_count--;
      }
    } else if (seg->state == FA_SEG_ABANDONED) {
      fa_list_remove(&_fa_abandoned, seg);
      _fa_abandoned_count--;
    } else {
      continue;   /* orphaned in a fork child: left as it is */
    }
    fa_segment_set_owner(seg, NULL);
    /* Everything not known to be zero was committed: give it back. */
    for (size_t idx = FA_FIRST_PAGE; idx < FA_GUARD_PAGE;) {
      fa_page_t *page = &seg->pages[idx];
      size_t n = page->span_pages ? page->span_pages : 1;
      if (!(page->kind == FA_PAGE_FREE && page->zeroed))
        fa_uncount(committed, n << FA_PAGE_SHIFT);
      idx += n;
    }
    _fa_os_purge(fa_page_address(seg, &seg->pages[FA_FIRST_PAGE]),
                 (size_t)FA_SEGMENT_USABLE_PAGES << FA_PAGE_SHIFT);
    _fa_span_make_free(NULL, &seg->pages[FA_FIRST_PAGE], FA_SEGMENT_USABLE_PAGES, true, 0);
    seg->free_pages = FA_SEGMENT_USABLE_PAGES;
    fa_segment_to_reserve(seg);
  }
  pthread_mutex_unlock(&_fa_segments_lock);
}

/* The earlier of two times (ms), 0 standing for none. */
static uint64_t fa_time_min(uint64_t a, uint64_t b) {
  return a == 0 || (b != 0 && b < a) ? b : a;
}

/* When span became free if it is a dirty free span (0 is read as 1, so
 * that it counts), else 0. */
static uint64_t fa_span_dirty_since(const fa_page_t *span) {
  if (span->kind != FA_PAGE_FREE || span->zeroed) return 0;
  return span->free_time ? span->free_time : 1;
}

/* When the oldest dirty free span of abandoned seg is due to be purged,
 * 0 if none is dirty. */
static uint64_t fa_abandoned_seg_due(const fa_segment_t *seg, uint64_t delay) {
  return seg->dirty_time != 0 ? seg->dirty_time + delay : 0;
}

/* Some dirty free span of an abandoned segment is due at `due` (ms);
 * segments lock held. */
static void fa_abandoned_due_at(uint64_t due) {
  uint64_t cur = atomic_load_explicit(&_fa_abandoned_dirty_due, memory_order_relaxed);
  atomic_store_explicit(&_fa_abandoned_dirty_due, fa_time_min(cur, due), memory_order_relaxed);
  _fa_purge_due_at(due);
}

/* OWNED -> ABANDONED, lock held: the segment's thread exited with blocks
 * still live in it.  Its dirty free spans keep their age: the adopter, or
 * _fa_abandoned_collect, purges them once FANCY_PURGE_DELAY has passed. */
static void fa_segment_abandon(fa_segment_t *seg) {
  /* The dying heap's bins and dirty list are discarded with it. */
  uint64_t oldest = 0;
  for (size_t i = FA_FIRST_PAGE; i < FA_GUARD_PAGE; i++) {
    fa_page_t *page = &seg->pages[i];
    oldest = fa_time_min(oldest, fa_span_dirty_since(page));
    page->in_bin = 0;
    page->dirty = 0;
  }
  seg->dirty_time = oldest;
  if (oldest != 0) fa_abandoned_due_at(oldest + _fa_opt.purge_delay);
  fa_segment_set_owner(seg, NULL);
  seg->state = FA_SEG_ABANDONED;
  fa_list_push(&_fa_abandoned, seg);
  _fa_abandoned_count++;
}

/* heap's thread is exiting (heap's lock held): every segment leaves it,
 * the empty ones to the shared pool, the others abandoned with their free
 * lists and spans intact.  One hold of the lock for all of it: a fork in the middle would
 * leave the child segments that are on no heap's list but still name
 * this heap as their owner, which the child's next thread on this heap
 * would then free into as its own. */
void _fa_segments_leave_heap(fa_heap_t *heap) {
  pthread_mutex_lock(&_fa_segments_lock);
  fa_segment_t *seg = heap->segments;
  heap->segments = NULL;
  heap->segment_count = 0;
  size_t abandoned = 0;
  while (seg != NULL) {
    fa_segment_t *next = seg->next;
    seg->next = seg->prev = NULL;
    if (seg->free_pages == FA_SEGMENT_USABLE_PAGES) {
      _fa_span_unlink(heap, &seg->pages[FA_FIRST_PAGE]);
      fa_segment_set_owner(seg, NULL);
      fa_segment_park(seg);
    } else {
      fa_segment_abandon(seg);
      abandoned++;
    }
    seg = next;
  }
  pthread_mutex_unlock(&_fa_segments_lock);
  if (abandoned != 0) atomic_store_explicit(&_fa_abandoned_xpending, 1, memory_order_relaxed);
}

/* OWNED -> ABANDONED while heap's thread lives on (heap's lock held, by
 * the caller): seg leaves heap's class queues, span bins, dirty list and
 * segment list, and waits on the abandoned list, its blocks intact, for
 * the next thread that needs a segment (fa_segment_acquire adopts it
 * before it maps one).  Its dirty free spans keep their age.  heap must
 * not read seg afterwards. */
static void fa_segment_give_back(fa_heap_t *heap, fa_segment_t *seg) {
  uint64_t pending = 0;   /* pages with remote frees not collected */
  for (size_t idx = FA_FIRST_PAGE; idx < FA_GUARD_PAGE;) {
    fa_page_t *page = &seg->pages[idx];
    if (page->kind == FA_PAGE_FREE) {
      _fa_span_unlink(heap, page);
    } else {
      if (page->kind == FA_PAGE_CLASS) {
        /* every class span of a heap is in its class's queue */
        fa_assert(page->prev != NULL || heap->queues[page->cls].first == page);
        _fa_queue_remove(heap, page);
      }
      if (atomic_load_explicit(&page->xfree, memory_order_relaxed) != 0)
        pending |= (uint64_t)1 << idx;
    }
    idx += page->span_pages;
  }
  pthread_mutex_lock(&_fa_segments_lock);
  fa_list_remove(&heap->segments, seg);
  heap->segment_count--;
  fa_store(seg->given_back, true);
  fa_segment_abandon(seg);
  /* A walk of heap's that is giving seg back (_fa_heap_collect_remote)
   * has taken the flags of pages it will not get to now: flagged again,
   * their blocks wait for _fa_abandoned_collect or the next owner. */
  atomic_fetch_or_explicit(&seg->xmask, pending, memory_order_relaxed);
  pthread_mutex_unlock(&_fa_segments_lock);
  atomic_store_explicit(&_fa_abandoned_xpending, 1, memory_order_relaxed);
  fa_test_point(FA_TP_SEGMENT_GIVEN_BACK, seg);
}

/* A span of seg, owned by heap, was just freed: give seg back if heap
 * took it over by a free, at least half of it is free, and heap has
 * FA_GIVE_BACK_SPARE_PAGES warm free pages elsewhere (see there).  True
 * when seg has left heap. */
bool _fa_segment_give_back_spare(fa_heap_t *heap, fa_segment_t *seg) {
  if (!seg->reclaimed || seg->free_pages < FA_SEGMENT_USABLE_PAGES / 2) return false;
  fa_heap_lock(heap);   /* other threads may purge its spans meanwhile */
  size_t here = 0;      /* seg's own dirty free pages */
  for (size_t idx = FA_FIRST_PAGE; idx < FA_GUARD_PAGE; idx += seg->pages[idx].span_pages)
    if (seg->pages[idx].kind == FA_PAGE_FREE && seg->pages[idx].dirty)
      here += seg->pages[idx].span_pages;
  bool give = heap->dirty_pages >= here + FA_GIVE_BACK_SPARE_PAGES;
  if (give) fa_segment_give_back(heap, seg);
  fa_heap_unlock(heap);
  return give;
}

/* Purge the free spans of abandoned seg that have been free for delay ms
 * and set seg->dirty_time to the oldest one left dirty; lock held. */
static void fa_segment_purge_abandoned(fa_segment_t *seg, uint64_t now, uint64_t delay) {
  uint64_t oldest = 0;
  for (size_t idx = FA_FIRST_PAGE; idx < FA_GUARD_PAGE;) {
    fa_page_t *page = &seg->pages[idx];
    size_t n = page->span_pages ? page->span_pages : 1;
    uint64_t since = fa_span_dirty_since(page);
    if (since != 0 && now - page->free_time >= delay) {
      fa_test_point(FA_TP_ABANDONED_PURGE, seg);
      _fa_span_purge_unowned(seg, page);
    } else {
      oldest = fa_time_min(oldest, since);
    }
    idx += n;
  }
  seg->dirty_time = oldest;
}

/* Work for _fa_abandoned_collect in seg: remote frees, or a dirty span due. */
static bool fa_abandoned_has_work(fa_segment_t *seg, uint64_t now, uint64_t delay) {
  return atomic_load_explicit(&seg->xmask, memory_order_relaxed) != 0 ||
         (seg->dirty_time != 0 && now - seg->dirty_time >= delay);
}

/* Collect remote frees in abandoned segments (nobody else may own them
 * while the lock is held), turn emptied pages into free spans, purge the
 * free spans that have been free for FANCY_PURGE_DELAY, and move segments
 * that became empty to the cache or reserve.  At most max segments with
 * something to do are worked on; the others are only looked at.  Returns
 * the number of segments released. */
size_t _fa_abandoned_collect(size_t max, bool blocking) {
  if (blocking) pthread_mutex_lock(&_fa_segments_lock);
  else if (pthread_mutex_trylock(&_fa_segments_lock) != 0) return 0;
  atomic_store_explicit(&_fa_abandoned_xpending, 0, memory_order_relaxed);
  uint64_t now = _fa_clock_ms(), delay = _fa_opt.purge_delay, due = 0;
  size_t released = 0, seen = 0;
  fa_segment_t *seg = _fa_abandoned;
  while (seg != NULL) {
    fa_segment_t *next = seg->next;
    if (!fa_abandoned_has_work(seg, now, delay)) {
      due = fa_time_min(due, fa_abandoned_seg_due(seg, delay));
      seg = next;
      continue;
    }
    if (seen >= max) {   /* left for the next call */
      if (atomic_load_explicit(&seg->xmask, memory_order_relaxed) != 0)
        atomic_store_explicit(&_fa_abandoned_xpending, 1, memory_order_relaxed);
      due = now;
      seg = next;
      continue;
    }
    seen++;
    uint64_t mask = atomic_exchange_explicit(&seg->xmask, 0, memory_order_acquire);
    while (mask != 0) {
      unsigned idx = (unsigned)__builtin_ctzll(mask);
      mask &= mask - 1;
      fa_page_t *page = &seg->pages[idx];
      if (page->span_offset != 0) continue;
      if (page->kind != FA_PAGE_CLASS && page->kind != FA_PAGE_LARGE) continue;
      _fa_page_collect_lists(page);
      /* Nobody's: a free span from now, purged after FANCY_PURGE_DELAY
       * like the rest (below), or by whoever adopts the segment; at once
       * would fault it in again at every generation of a program whose
       * threads hand their blocks on (bench/churn: 64% of its purges). */
      if (page->used == 0) _fa_span_free(NULL, seg, page);
    }
    if (seg->free_pages == FA_SEGMENT_USABLE_PAGES) {
      fa_list_remove(&_fa_abandoned, seg);
      _fa_abandoned_count--;
      fa_segment_park(seg);
      released++;
    } else {
      fa_segment_purge_abandoned(seg, now, delay);
      due = fa_time_min(due, fa_abandoned_seg_due(seg, delay));
    }
    seg = next;
  }
  atomic_store_explicit(&_fa_abandoned_dirty_due, due, memory_order_relaxed);
  pthread_mutex_unlock(&_fa_segments_lock);
  if (due != 0) _fa_purge_due_at(due);
  return released;
}

/* Some dirty free span of an abandoned segment is due to be purged. */
bool _fa_abandoned_purge_due(uint64_t now) {
  uint64_t due = atomic_load_explicit(&_fa_abandoned_dirty_due, memory_order_relaxed);
  return due != 0 && now >= due;
}

/* ------------------------------------------------------------------------
 * Other threads' heaps.  Free spans and empty segments are the process's
 * memory even while a heap holds them: any thread may purge the first and
 * take the second back, with the heap's lock (trylock: a busy heap is
 * skipped, its own thread is at work and will do it).  The heaps are
 * never unmapped and the list of them only grows, so it is walked without
 * _fa_heaps_lock.
 * ---------------------------------------------------------------------- */

/* Lock of heap held: every empty segment of heap is purged and goes to
 * the reserve, so that its share of the limits can be used again. */
static bool fa_heap_release_empty(fa_heap_t *heap) {
  bool any = false;
  pthread_mutex_lock(&_fa_segments_lock);
  fa_segment_t *seg = heap->segments;
  while (seg != NULL) {
    fa_segment_t *next = seg->next;
    if (seg->free_pages == FA_SEGMENT_USABLE_PAGES) {
      _fa_span_unlink(heap, &seg->pages[FA_FIRST_PAGE]);
      fa_segment_set_owner(seg, NULL);
      fa_list_remove(&heap->segments, seg);
      heap->segment_count--;
      fa_segment_to_reserve(seg);
      any = true;
    }
    seg = next;
  }
  pthread_mutex_unlock(&_fa_segments_lock);
  return any;
}

/* Out of memory: give every empty segment of every heap back to the OS,
 * this one's first, and every warm cached segment and freed huge mapping,
 * so that their share of the limits can be used again.  True if anything
 * was released. */
bool _fa_memory_pressure(fa_heap_t *heap) {
  bool any = false;
  if (heap != NULL && heap != &_fa_heap_empty) {
    fa_heap_lock(heap);
    _fa_rcache_flush(heap);
    any = fa_heap_release_empty(heap);
    fa_heap_unlock(heap);
  }
  for (fa_heap_t *h = __atomic_load_n(&_fa_heaps, __ATOMIC_ACQUIRE); h != NULL; h = h->pool_next) {
    if (h == heap || !fa_heap_trylock(h)) continue;
    if (fa_load(h->alive) && fa_heap_release_empty(h)) any = true;
    fa_heap_unlock(h);
  }
  if (_fa_segment_cache_decay(0, 0, true, true) > 0) any = true;
  if (_fa_huge_cache_decay(0, 0, true) > 0) any = true;
  return any;
}
