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
