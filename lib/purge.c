/* SPDX-License-Identifier: MIT */
/*
 * purge.c - reclamation: giving memory back to the OS after a delay
 * (the design document's GlobalArenaManager).
 *
 * Four kinds of memory are returned, each after FANCY_PURGE_DELAY:
 *   - free spans inside a live heap: only the owner may touch them, so the
 *     owner purges them on its heartbeat (heap.c);
 *   - empty segments in the shared cache: purged and moved to the reserve;
 *   - segments of exited threads: their remote frees are collected, their
 *     free spans purged once FANCY_PURGE_DELAY old (thread exit leaves
 *     them dirty), and once empty they go to the cache;
 *   - freed huge mappings kept warm (huge.c): unmapped.
 * The last three are done by _fa_reclaim_tick, either by the background
 * thread (FANCY_RECLAIM=1, started lazily from a thread's first
 * allocation, never from a constructor) or inline from heartbeats with
 * trylock, so that no allocating thread ever waits for it.
 */
#include "internal.h"

#include <time.h>

_Atomic uint64_t _fa_purge_due;

/* Some free memory may be purged from time `due` (ms) on. */
void _fa_purge_due_at(uint64_t due) {
  if (due == 0) due = 1;
  uint64_t cur = atomic_load_explicit(&_fa_purge_due, memory_order_relaxed);
  while ((cur == 0 || due < cur) &&
         !atomic_compare_exchange_weak_explicit(&_fa_purge_due, &cur, due, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

static pthread_mutex_t fa_reclaim_lock = PTHREAD_MUTEX_INITIALIZER;
static bool fa_reclaim_started;
static pthread_t fa_reclaim_thread;
static _Atomic uint64_t fa_last_tick;

size_t _fa_reclaim_tick(bool force, bool blocking) {
  uint64_t now = _fa_clock_ms();
  size_t n = 0;
  if (force || atomic_load_explicit(&_fa_abandoned_xpending, memory_order_relaxed) ||
      _fa_abandoned_purge_due(now) ||
      now - atomic_load_explicit(&fa_last_tick, memory_order_relaxed) >= 10 * _fa_opt.purge_delay) {
    n += _fa_abandoned_collect(force ? SIZE_MAX : 16, blocking);
  }
  n += _fa_segment_cache_decay(now, _fa_opt.purge_delay, force, blocking);
  /* fancy_trim (force) purges its own heap, keeping its pad. */
  if (blocking && !force) n += _fa_heaps_purge(now, _fa_opt.purge_delay, SIZE_MAX);
  n += _fa_huge_cache_decay(now, _fa_opt.purge_delay, force);
  atomic_store_explicit(&fa_last_tick, now, memory_order_relaxed);
  if (blocking) _fa_limits_refresh(now);
  return n;
}

/* The thread wakes every FANCY_PURGE_DELAY ms, but never more than 100
 * times a second: with a delay of 0 the slow paths purge at once anyway,
 * and a thread waking every millisecond costs an idle program about a
 * thousand context switches a second. */
#define FA_RECLAIM_MIN_PERIOD_MS 10

static void *fa_reclaim_main(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t ms = _fa_opt.purge_delay > FA_RECLAIM_MIN_PERIOD_MS ? _fa_opt.purge_delay
                                                                 : FA_RECLAIM_MIN_PERIOD_MS;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    _fa_reclaim_tick(false, true);
  }
  return NULL;
}

void _fa_reclaim_maybe_start(void) {
  if (__atomic_load_n(&fa_reclaim_started, __ATOMIC_ACQUIRE)) return;
  pthread_mutex_lock(&fa_reclaim_lock);
  if (!fa_reclaim_started) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 << 10);
    if (pthread_create(&fa_reclaim_thread, &attr, fa_reclaim_main, NULL) == 0)
      __atomic_store_n(&fa_reclaim_started, true, __ATOMIC_RELEASE);
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_unlock(&fa_reclaim_lock);
}

/* The thread does not survive fork: the child starts its own on demand. */
void _fa_reclaim_after_fork_child(void) {
  pthread_mutex_init(&fa_reclaim_lock, NULL);
  fa_reclaim_started = false;
}

/* fancy_trim: pad bytes of free memory stay warm in all, the most recently
 * freed first: the heap's own free spans, then the cached empty segments,
 * then the cached huge mappings. */
int _fa_trim(fa_heap_t *heap, size_t pad) {
  size_t before = atomic_load_explicit(&_fa_counters.purged, memory_order_relaxed);
  size_t budget = pad, n = 0;
  if (heap != NULL && heap != &_fa_heap_empty) {
    _fa_rcache_flush(heap);
    _fa_heap_collect_remote(heap, true);
    size_t keep = pad >> FA_PAGE_SHIFT;
    fa_heap_lock(heap);
    while (heap->dirty_first != NULL && heap->dirty_pages > keep)
      _fa_span_purge(heap, fa_ptr_segment(heap->dirty_first), heap->dirty_first);
    budget -= (size_t)heap->dirty_pages << FA_PAGE_SHIFT;
    fa_heap_unlock(heap);
  }
  /* Segments of exited threads, once empty, join the cache first. */
  _fa_abandoned_collect(SIZE_MAX, true);
  n += _fa_segment_cache_trim(&budget);
  n += _fa_huge_cache_trim(&budget);
  atomic_store_explicit(&fa_last_tick, _fa_clock_ms(), memory_order_relaxed);
  return n > 0 || atomic_load_explicit(&_fa_counters.purged, memory_order_relaxed) != before;
}

int fancy_trim(size_t pad) FANCY_NOEXCEPT { return _fa_trim(fa_heap_get(), pad); }

/* Purge, in every heap, the free spans that have been free for delay ms,
 * at most max spans in all; returns how many, and leaves _fa_purge_due
 * at the time the next one is due (now when max was reached, or a heap
 * was busy: the next call goes on). */
size_t _fa_heaps_purge(uint64_t now, uint64_t delay, size_t max) {
  size_t n = 0;
  uint64_t next = 0;
  for (fa_heap_t *h = __atomic_load_n(&_fa_heaps, __ATOMIC_ACQUIRE); h != NULL;
       h = h->pool_next) {
    if (n >= max) {
      next = now;
      break;
    }
    if (!fa_heap_trylock(h)) {   /* busy: its thread is at work */
      next = now + 1;
      continue;
    }
    if (fa_load(h->alive)) {
      n += _fa_heap_purge_locked(h, now, delay, max - n);
      fa_page_t *span = h->dirty_first;
      if (span != NULL && (next == 0 || span->free_time + delay < next))
        next = span->free_time + delay;
    }
    fa_heap_unlock(h);
  }
  if (next != 0) _fa_purge_due_at(next);
  return n;
}

/* An allocator call of any thread, past the time some free memory became
 * due to be purged: purge a bounded share of it, in every heap (one
 * thread at a time; the others go on at once). */
void _fa_purge_due_run(void) {
  uint64_t due = atomic_load_explicit(&_fa_purge_due, memory_order_relaxed);
  uint64_t now = _fa_clock_ms();
  if (due == 0 || now < due) return;
  if (!atomic_compare_exchange_strong_explicit(&_fa_purge_due, &due, 0, memory_order_relaxed,
                                               memory_order_relaxed))
    return;
  _fa_heaps_purge(now, _fa_opt.purge_delay, FA_PURGE_PER_CALL);
  /* Abandoned segments' free spans (at most as many segments as spans
   * above; a busy lock or more left to do: the next call goes on). */
  if (_fa_abandoned_purge_due(now)) _fa_abandoned_collect(FA_PURGE_PER_CALL, false);
  /* re-armed (it was cleared above) for what is left or not yet due */
  uint64_t adue = atomic_load_explicit(&_fa_abandoned_dirty_due, memory_order_relaxed);
  if (adue != 0) _fa_purge_due_at(adue);
  /* Cached segments (the rest of _fa_reclaim_tick is left to the
   * heartbeats: this runs far more often). */
  if (__atomic_load_n(&_fa_cached_count, __ATOMIC_RELAXED) != 0 &&
      _fa_segment_cache_decay(now, _fa_opt.purge_delay, false, false) == 0 &&
      __atomic_load_n(&_fa_cached_count, __ATOMIC_RELAXED) != 0)
    _fa_purge_due_at(now + 1);
}
