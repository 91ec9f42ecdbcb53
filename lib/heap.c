/* SPDX-License-Identifier: MIT */
/*
 * heap.c - thread heaps: creation, remote-free collection, the heartbeat,
 * and handing memory back when a thread exits.
 *
 * Heap structures are never unmapped: they are parked and reused by later
 * threads.  That keeps a stale pointer to a heap (a remote freer setting
 * the xpending hint of a heap whose thread just exited) harmless.
 */
#include "internal.h"


pthread_mutex_t _fa_heaps_lock = PTHREAD_MUTEX_INITIALIZER;
fa_heap_t *_fa_heaps;                 /* all heaps, via pool_next */
static fa_heap_t *fa_heaps_parked;    /* via free_next */
static fa_heap_t *fa_heap_chunk;      /* bump area for new heaps */
static size_t fa_heap_chunk_left;

#define FA_HEAP_CHUNK ((size_t)256 << 10)

static void fa_heap_lock_init(fa_heap_t *heap) {
  atomic_store_explicit(&heap->lock_owner, 0, memory_order_relaxed);
  heap->lock_depth = 0;
}

/* The heap's span bins and dirty list name no span any more. */
static void fa_heap_forget_spans(fa_heap_t *heap) {
  memset(heap->bins, 0, sizeof heap->bins);
  heap->bin_mask = 0;
  heap->dirty_first = heap->dirty_last = NULL;
  heap->dirty_pages = 0;
}

/* Field by field: xpending may be set at any time by a remote freer
 * holding a stale pointer, so it is only ever written atomically. */
static void fa_heap_reset(fa_heap_t *heap) {
  for (size_t i = 0; i < FA_DIRECT_SIZE; i++) heap->direct[i] = &_fa_page_empty;
  for (size_t i = 0; i < FA_MEDIUM_CLASSES; i++) heap->mdirect[i] = &_fa_page_empty;
  memset(heap->queues, 0, sizeof heap->queues);
  memset(heap->rcache, 0, sizeof heap->rcache);   /* flushed, or dropped with its domain */
  for (unsigned c = 0; c < FA_NUM_CLASSES; c++) fa_rcache_reset(heap, c);   /* statistics read them */
  fa_heap_forget_spans(heap);
  heap->segments = NULL;
  heap->segment_count = 0;
  atomic_store_explicit(&heap->xpending, 0, memory_order_relaxed);
  heap->generic_count = 0;
  heap->last_purge_ms = 0;
  fa_store(heap->alive, false);
  heap->free_next = NULL;
  heap->prof_left = INT64_MAX;
}

fa_heap_t *_fa_heap_new(fa_domain_t *domain) {
  pthread_mutex_lock(&_fa_heaps_lock);
  fa_heap_t *heap = fa_heaps_parked;
  if (heap != NULL) {
    fa_heaps_parked = heap->free_next;
  } else {
    if (fa_heap_chunk_left == 0) {
      /* Heap metadata comes from its own mapping, never from a segment,
       * and is not counted against the memory limit. */
      void *chunk = _fa_os_map_meta(FA_HEAP_CHUNK);
      if (chunk == NULL) {
        pthread_mutex_unlock(&_fa_heaps_lock);
        errno = ENOMEM;
        return NULL;
      }
      fa_heap_chunk = chunk;
      fa_heap_chunk_left = FA_HEAP_CHUNK / sizeof(fa_heap_t);
    }
    heap = fa_heap_chunk++;
    fa_heap_chunk_left--;
    fa_heap_lock_init(heap);
    heap->pool_next = _fa_heaps;
    /* published: other threads walk the list without the lock */
    __atomic_store_n(&_fa_heaps, heap, __ATOMIC_RELEASE);
  }
  fa_heap_lock(heap);
  fa_heap_reset(heap);
  fa_store(heap->domain, domain);   /* read by other threads' statistics */
  heap->prof_left = _fa_prof_start(domain);
  heap->thread = pthread_self();
  heap->last_purge_ms = _fa_clock_ms();
  fa_store(heap->alive, true);
  fa_heap_unlock(heap);
  pthread_mutex_unlock(&_fa_heaps_lock);
  fa_count(threads, 1);
  fa_count(threads_created, 1);
  return heap;
}

void _fa_heap_set_direct(fa_heap_t *heap, unsigned cls, fa_page_t *page) {
  /* FANCY_CHECK sends every malloc to the slow path, which adds the
   * canary: the direct tables then always lead to the empty page. */
  if (heap->rcache[cls].free != NULL) page = &heap->rcache[cls];   /* reuse those first */
  if (page == NULL || _fa_opt.check) page = &_fa_page_empty;
  if (cls >= FA_SMALL_CLASSES) heap->mdirect[cls - FA_SMALL_CLASSES] = page;
  if (_fa_class_size[cls] > FA_DIRECT_MAX) return;
  /* direct[i] serves sizes (16(i-1), 16i]; class cls covers the sizes
   * above the previous class size up to its own. */
  size_t hi = _fa_class_size[cls] / 16;
  size_t lo = cls == 0 ? 0 : _fa_class_size[cls - 1] / 16 + 1;
  /* one entry or an even number of them (up to 16), two at a time: a
   * refill that switches pages runs this */
  if (((hi - lo) & 1) == 0) heap->direct[lo++] = page;
  for (size_t i = lo; i < hi; i += 2) heap->direct[i] = heap->direct[i + 1] = page;
}

/* Collect the blocks other threads freed into pages of this heap.  Unless
 * forced, only when a remote freer raised the hint. */
void _fa_heap_collect_remote(fa_heap_t *heap, bool force) {
  if (!force && atomic_load_explicit(&heap->xpending, memory_order_relaxed) == 0) return;
  atomic_store_explicit(&heap->xpending, 0, memory_order_relaxed);
  fa_heap_lock(heap);   /* other threads may take empty segments off the list */
  fa_segment_t *seg = heap->segments;
  while (seg != NULL) {
    fa_segment_t *next = seg->next;   /* the segment may be released */
    uint64_t mask = atomic_exchange_explicit(&seg->xmask, 0, memory_order_acquire);
    if (force) mask = ~(uint64_t)0;
    while (mask != 0) {
      unsigned idx = (unsigned)__builtin_ctzll(mask);
      mask &= mask - 1;
      if (idx >= FA_PAGES_PER_SEGMENT) break;
      fa_page_t *page = &seg->pages[idx];
      if (page->span_offset != 0) continue;
      if (atomic_load_explicit(&page->xfree, memory_order_relaxed) == 0) continue;
      /* A segment emptied by this collection went to the shared pool at
       * once, where another thread may take it: not one more look. */
      if ((page->kind == FA_PAGE_CLASS || page->kind == FA_PAGE_LARGE) &&
          _fa_page_collect(heap, page))
        break;
    }
    seg = next;
  }
  fa_heap_unlock(heap);
}

/* Every FA_HEARTBEAT slow-path calls: collect remote frees, purge free
 * spans whose delay has passed, and do a bounded share of the global
 * reclamation when no background thread does it. */
void _fa_heap_heartbeat(fa_heap_t *heap) {
  _fa_rcache_flush(heap);
  _fa_heap_collect_remote(heap, false);
  uint64_t now = _fa_clock_ms();
  if (now - heap->last_purge_ms >= _fa_opt.purge_delay / 2 + 1) {
    heap->last_purge_ms = now;
    _fa_heap_purge(heap, now, _fa_opt.purge_delay, FA_PURGE_BATCH);
    if (!heap->domain->reclaim) _fa_reclaim_tick(false, false);
    _fa_limits_refresh(now);   /* the cgroup's limits, on a slow clock */
  }
}

/* The thread of this heap is exiting: collect what can be collected, give
 * empty segments back, and abandon the rest for other threads to take
 * over.  Blocks still live stay valid and can be freed by anyone. */
void _fa_heap_done(fa_heap_t *heap) {
  fa_heap_lock(heap);
  _fa_rcache_flush(heap);
  _fa_heap_collect_remote(heap, true);
  for (unsigned cls = 0; cls < FA_NUM_CLASSES; cls++) {
    fa_page_t *page = heap->queues[cls].first;
    while (page != NULL) {
      fa_page_t *next = page->next;
      /* Only the lists: _fa_page_collect would retire an emptied page
       * itself, and this loop would then free its span a second time. */
      _fa_page_collect_lists(page);
      if (page->used == 0) {
        _fa_queue_remove(heap, page);
        _fa_span_free(heap, fa_ptr_segment(page), page);
      }
      page = next;
    }
  }
  /* The free spans of the segments left with live blocks are not purged
   * here: they keep their age, and the thread that adopts the segment, or
   * _fa_abandoned_collect if nobody does, purges them after
   * FANCY_PURGE_DELAY.  Purging at once cost larson a sixth of its time in
   * TLB shootdowns, and its next thread the page faults to get them back. */
  _fa_segments_leave_heap(heap);
  /* Its bins and dirty list go with its segments, before the unlock: from
   * there on another thread may adopt a segment and allocate its free
   * spans, while other threads' purges (_fa_heaps_purge) walk this heap's
   * dirty list until fa_heap_reset below. */
  fa_heap_forget_spans(heap);
  fa_heap_unlock(heap);
  fa_test_point(FA_TP_HEAP_DONE_UNLOCKED, heap);
  pthread_mutex_lock(&_fa_heaps_lock);
  fa_heap_lock(heap);
  fa_heap_reset(heap);
  fa_heap_unlock(heap);
  heap->free_next = fa_heaps_parked;
  fa_heaps_parked = heap;
  pthread_mutex_unlock(&_fa_heaps_lock);
  fa_uncount(threads, 1);
}

/* Instance d is being destroyed: its segments are released and its heaps
 * parked, with the heaps locked meanwhile (another thread purging their
 * free spans must not see them half done).  Threads still holding one no
 * longer reach it: the instance's key is deleted. */
void _fa_heaps_release_domain(fa_domain_t *d) {
  pthread_mutex_lock(&_fa_heaps_lock);
  for (fa_heap_t *heap = _fa_heaps; heap != NULL; heap = heap->pool_next)
    if (heap->alive && heap->domain == d) fa_heap_lock(heap);
  _fa_segments_release_domain(d);   /* unlinks them from the heaps */
  for (fa_heap_t *heap = _fa_heaps; heap != NULL; heap = heap->pool_next) {
    if (!heap->alive || heap->domain != d) continue;
    fa_heap_reset(heap);
    fa_heap_unlock(heap);
    heap->free_next = fa_heaps_parked;
    fa_heaps_parked = heap;
    fa_uncount(threads, 1);
  }
  pthread_mutex_unlock(&_fa_heaps_lock);
}

/* fork: every heap's lock, after _fa_heaps_lock (init.c). */
void _fa_heaps_lock_all(void) {
  for (fa_heap_t *heap = _fa_heaps; heap != NULL; heap = heap->pool_next) fa_heap_lock(heap);
}

void _fa_heaps_unlock_all(void) {
  for (fa_heap_t *heap = _fa_heaps; heap != NULL; heap = heap->pool_next) fa_heap_unlock(heap);
}

/* In the child: made anew (the forking thread, the only one left, holds
 * them all from fa_atfork_prepare). */
void _fa_heaps_reinit_locks(void) {
  for (fa_heap_t *heap = _fa_heaps; heap != NULL; heap = heap->pool_next) fa_heap_lock_init(heap);
}

/* In a forked child, every heap but the caller's belonged to a thread that
 * no longer exists and may have been stopped in the middle of changing its
 * own pages (no lock guards them).  Their segments are orphaned: blocks in
 * them stay valid and can be freed (as remote frees nobody collects), but
 * their memory is not reused by the child.  The child is single-threaded
 * here and the locks are fresh. */
static fa_heap_t fa_heap_orphan;

void _fa_heaps_after_fork_child(fa_heap_t *self) {
  (void)self;
  pthread_t me = pthread_self();
  for (fa_heap_t *heap = _fa_heaps; heap != NULL; heap = heap->pool_next) {
    /* the forking thread keeps its heaps, in every instance */
    if (!heap->alive || pthread_equal(heap->thread, me)) continue;
    fa_segment_t *seg = heap->segments;
    heap->segments = NULL;
    while (seg != NULL) {
      fa_segment_t *next = seg->next;
      seg->next = seg->prev = NULL;
      seg->state = FA_SEG_ORPHANED;
      fa_segment_set_owner(seg, &fa_heap_orphan);
      seg = next;
    }
    fa_heap_reset(heap);
    heap->free_next = fa_heaps_parked;
    fa_heaps_parked = heap;
    fa_uncount(threads, 1);
  }
}

/* Statistics: how many blocks of each class the live heaps of d (of
 * every instance when d is NULL) keep to reuse (fa_heap_t.rcache), read
 * without stopping their threads.  Under _fa_heaps_lock, so that no heap
 * is being reset (its rcache cleared) meanwhile: the caller holds no
 * lock that comes after it. */
void _fa_heaps_rcache_kept(fa_domain_t *d, size_t kept[]) {
  for (size_t c = 0; c < FA_NUM_CLASSES; c++) kept[c] = 0;
  pthread_mutex_lock(&_fa_heaps_lock);
  for (fa_heap_t *h = _fa_heaps; h != NULL; h = h->pool_next) {
    if (!__atomic_load_n(&h->alive, __ATOMIC_ACQUIRE) || (d != NULL && fa_load(h->domain) != d))
      continue;
    for (size_t c = 0; c < FA_NUM_CLASSES; c++)
      kept[c] += (uint32_t)(fa_load(h->rcache_pushed[c]) - fa_load(h->rcache[c].used));
  }
  pthread_mutex_unlock(&_fa_heaps_lock);
}
