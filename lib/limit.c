/* SPDX-License-Identifier: MIT */
/*
 * limit.c - memory-limit accounting: the one place where bytes are charged
 * against a limit (the process's FANCY_MEMORY_LIMIT in os.c, an instance's
 * own limit in instance.c).
 *
 * A charge is checked before it is added, in a compare-and-swap loop, so a
 * refused charge never shows in the counter.  Adding first and taking the
 * bytes back when the sum is over the limit (as this code once did) makes a
 * thread that keeps asking for too much, say malloc(1 GiB) in a loop under
 * a 256 MiB limit, refuse the modest requests of every other thread for as
 * long as its bytes sit in the counter.
 *
 * It also sets the limits: FANCY_MEMORY_LIMIT=auto[:P] takes P percent
 * (default FA_AUTO_PERCENT, 90) of the cgroup's memory.max (cgroup.c), so
 * that the program's memory the allocator does not count (code, stacks,
 * page tables, the kernel's share of the cgroup, the allocator's own
 * metadata) has the rest before the kernel's OOM killer acts.  The cgroup
 * is read again every FA_LIMITS_REREAD_MS, since a container's limit may
 * be changed while it runs.
 *
 * The soft limit (FANCY_MEMORY_SOFT_LIMIT=<size>|auto[:P]; auto: P percent
 * of the cgroup's memory.high, else of the hard limit) bounds the
 * allocator's resident memory (_fa_resident: pages in use or kept warm,
 * and huge mappings, live or cached).  When an allocation takes it above,
 * _fa_soft_pressure gives back everything purgeable at once: free spans of
 * every heap whatever their age, the caller's cache of other threads'
 * blocks, empty segments, the segment cache and the huge-block cache.
 * While the memory stays above, frees return their memory at once instead
 * of after FANCY_PURGE_DELAY.  Nothing fails at the soft limit.
 */
#include "internal.h"

#include <stdlib.h>

bool _fa_limit_charge(_Atomic size_t *counter, size_t limit, size_t bytes) {
  if (limit == 0) {
    atomic_fetch_add_explicit(counter, bytes, memory_order_relaxed);
    return true;
  }
  size_t cur = atomic_load_explicit(counter, memory_order_relaxed);
  do {
    if (bytes > limit || cur > limit - bytes) {
      fa_count(limit_hits, 1);
      fa_test_point(FA_TP_QUOTA_REFUSED, (void *)counter);
      return false;
    }
  } while (!atomic_compare_exchange_weak_explicit(counter, &cur, cur + bytes,
                                                  memory_order_relaxed, memory_order_relaxed));
  return true;
}

void _fa_limit_uncharge(_Atomic size_t *counter, size_t bytes) {
  atomic_fetch_sub_explicit(counter, bytes, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Limits from the cgroup
 * ---------------------------------------------------------------------- */
static fa_cgroup_t fa_cgroup;              /* the last reading */
static int fa_cgroup_status;               /* _fa_cgroup_read's result */
static pthread_mutex_t fa_limits_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t fa_limits_next;    /* ms: the next re-reading */

/* Where the cgroup files are: "" (/proc and /sys themselves).  The test
 * build of the core (tests/libfancytest.la) takes a fake tree's root from
 * FA_TEST_CGROUP_ROOT; the installed libraries have no such variable. */
static const char *fa_cgroup_root(void) {
#if FA_TEST_HOOKS
  const char *r = getenv("FA_TEST_CGROUP_ROOT");
  if (r != NULL) return r;
#endif
  return "";
}

static size_t fa_percent_of(uint64_t v, size_t pct) {
  uint64_t r = v / 100 * pct + v % 100 * pct / 100;
  return r > SIZE_MAX ? SIZE_MAX : (size_t)r;
}

/* Read the cgroup and set the limits that are "auto"; lock held. */
static void fa_limits_read(void) {
  fa_cgroup_status = _fa_cgroup_read(fa_cgroup_root(), &fa_cgroup);
  size_t hard = __atomic_load_n(&_fa_opt.memory_limit, __ATOMIC_RELAXED);
  if (_fa_opt.memory_limit_auto) {
    hard = fa_percent_of(fa_cgroup.max, _fa_opt.memory_limit_auto);
    __atomic_store_n(&_fa_opt.memory_limit, hard, __ATOMIC_RELAXED);
    __atomic_store_n(&_fa_domain_default.memory_limit, hard, __ATOMIC_RELAXED);
  }
  if (_fa_opt.soft_limit_auto) {
    size_t soft = fa_cgroup.high ? fa_percent_of(fa_cgroup.high, _fa_opt.soft_limit_auto)
                                 : fa_percent_of(hard, _fa_opt.soft_limit_auto);
    __atomic_store_n(&_fa_opt.soft_limit, soft, __ATOMIC_RELAXED);
  }
  if (__atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED) == 0)
    atomic_store_explicit(&_fa_soft_over, false, memory_order_relaxed);
}

void _fa_limits_init(void) {
  if (!_fa_opt.memory_limit_auto && !_fa_opt.soft_limit_auto) return;
  pthread_mutex_lock(&fa_limits_lock);
  fa_limits_read();
  atomic_store_explicit(&fa_limits_next, _fa_clock_ms() + FA_LIMITS_REREAD_MS,
                        memory_order_relaxed);
  pthread_mutex_unlock(&fa_limits_lock);
}

/* FANCY_VERBOSE: the limits and where they came from, one line each. */
void _fa_limits_print(void) {
  size_t hard = __atomic_load_n(&_fa_opt.memory_limit, __ATOMIC_RELAXED);
  size_t soft = __atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED);
  const char *where = fa_cgroup.version == 0 ? "no memory cgroup found"
                      : fa_cgroup.version == 1 ? "cgroup v1" : "cgroup v2";
  if (_fa_opt.memory_limit_auto) {
    if (hard)
      _fa_warn("memory limit %zu bytes (FANCY_MEMORY_LIMIT=auto: %zu%% of %zu in %s, %s)", hard,
               _fa_opt.memory_limit_auto, (size_t)fa_cgroup.max, fa_cgroup.max_from, where);
    else
      _fa_warn("memory limit: none (FANCY_MEMORY_LIMIT=auto: %s%s%s)", where,
               fa_cgroup.version ? ", no limit in " : "", fa_cgroup.dir);
  } else if (hard) {
    _fa_warn("memory limit %zu bytes (FANCY_MEMORY_LIMIT)", hard);
  }
  if (_fa_opt.soft_limit_auto) {
    if (soft && fa_cgroup.high)
      _fa_warn("soft memory limit %zu bytes (FANCY_MEMORY_SOFT_LIMIT=auto: %zu%% of %zu in %s)",
               soft, _fa_opt.soft_limit_auto, (size_t)fa_cgroup.high, fa_cgroup.high_from);
    else if (soft)
      _fa_warn("soft memory limit %zu bytes (FANCY_MEMORY_SOFT_LIMIT=auto: %zu%% of the memory "
               "limit; no memory.high)", soft, _fa_opt.soft_limit_auto);
    else
      _fa_warn("soft memory limit: none (FANCY_MEMORY_SOFT_LIMIT=auto: no memory.high and no "
               "memory limit)");
  } else if (soft) {
    _fa_warn("soft memory limit %zu bytes (FANCY_MEMORY_SOFT_LIMIT)", soft);
  }
}

/* Read the cgroup again when FA_LIMITS_REREAD_MS have passed, by one
 * thread at a time; the others go on at once. */
void _fa_limits_refresh(uint64_t now) {
  if (!_fa_opt.memory_limit_auto && !_fa_opt.soft_limit_auto) return;
  uint64_t next = atomic_load_explicit(&fa_limits_next, memory_order_relaxed);
  if (now < next) return;
  if (!atomic_compare_exchange_strong_explicit(&fa_limits_next, &next, now + FA_LIMITS_REREAD_MS,
                                               memory_order_relaxed, memory_order_relaxed))
    return;
  if (pthread_mutex_trylock(&fa_limits_lock) != 0) return;
  size_t hard = __atomic_load_n(&_fa_opt.memory_limit, __ATOMIC_RELAXED);
  size_t soft = __atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED);
  fa_limits_read();
  if (_fa_opt.verbose && (hard != __atomic_load_n(&_fa_opt.memory_limit, __ATOMIC_RELAXED) ||
                          soft != __atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED)))
    _fa_limits_print();
  pthread_mutex_unlock(&fa_limits_lock);
}

/* A thread that was reading the cgroup during fork does not exist in the
 * child: the lock is made anew there (the reading is only a cache). */
void _fa_limits_after_fork_child(void) { pthread_mutex_init(&fa_limits_lock, NULL); }

/* ------------------------------------------------------------------------
 * The soft limit
 * ---------------------------------------------------------------------- */
_Atomic bool _fa_soft_over;
static _Atomic uint64_t fa_soft_last;   /* ms, the last sweep */

size_t _fa_resident(void) {
  return atomic_load_explicit(&_fa_counters.committed, memory_order_relaxed) +
         atomic_load_explicit(&_fa_counters.huge, memory_order_relaxed);
}

void _fa_soft_recheck(void) {
  size_t soft = __atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED);
  atomic_store_explicit(&_fa_soft_over, soft != 0 && _fa_resident() > soft,
                        memory_order_relaxed);
}

/* resident + more passes the soft limit: give back everything that can be
 * given back without failing anything.  While the memory stays above,
 * every free already returns its memory at once, so a sweep finds little:
 * they are spaced by at least a millisecond. */
void _fa_soft_pressure(fa_heap_t *heap, size_t more) {
  uint64_t now = _fa_clock_ms();
  uint64_t last = atomic_load_explicit(&fa_soft_last, memory_order_relaxed);
  if (fa_soft_over() && now == last) return;
  atomic_store_explicit(&fa_soft_last, now, memory_order_relaxed);
  atomic_store_explicit(&_fa_soft_over, true, memory_order_relaxed);
  fa_count(soft_limit_hits, 1);
  if (heap != NULL && heap != &_fa_heap_empty) {
    fa_heap_lock(heap);
    _fa_rcache_flush(heap);
    _fa_heap_purge(heap, now, 0, SIZE_MAX);
    fa_heap_unlock(heap);
  }
  _fa_heaps_purge(now, 0, SIZE_MAX);   /* other heaps: those not busy */
  _fa_memory_pressure(heap);           /* empty segments, both caches */
  size_t soft = __atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED);
  atomic_store_explicit(&_fa_soft_over, soft != 0 && _fa_resident() + more > soft,
                        memory_order_relaxed);
}
