/* SPDX-License-Identifier: MIT */
/*
 * internal.h - cross-file internals and the inlined fast paths.
 *
 * Naming: fancy_* is the public API (include/fancyalloc.h), _fa_* is
 * shared between files of lib/ (prototypes below, grouped by the file that
 * defines them), static fa_* is local to one file.  Everything here has
 * hidden visibility.
 */
#ifndef FA_INTERNAL_H
#define FA_INTERNAL_H

#include "config.h"
#include "types.h"
#include "fancyalloc.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#define FA_HIDDEN __attribute__((visibility("hidden")))
/* libfancymalloc's own exports (override.c, override_cxx.c, introspect.c) */
#define FA_EXPORT __attribute__((visibility("default")))
#define fa_likely(x) __builtin_expect(!!(x), 1)
#define fa_unlikely(x) __builtin_expect(!!(x), 0)
#define FA_NOINLINE __attribute__((noinline))
#define FA_COLD __attribute__((cold, noinline))
#define FA_NORETURN __attribute__((noreturn))

#if FA_DEBUG
#define fa_assert(x) \
  ((x) ? (void)0 : _fa_fatal("assertion failed: %s (%s:%d)", #x, __FILE__, __LINE__))
#else
#define fa_assert(x) ((void)0)
#endif

/* Relaxed atomic access to plain fields that the statistics walker reads
 * from other threads: plain moves on every target we build for, and no
 * data race in the C11 sense (so ThreadSanitizer stays quiet). */
#define fa_store(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define fa_load(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static inline bool fa_is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }
/* field += d by its owner thread, where the walker may read it: one
 * add to memory (the fast paths' page->used), as plain C.  Under
 * ThreadSanitizer the relaxed load and store above instead, which no
 * compiler fuses into one instruction. */
#if defined(__SANITIZE_THREAD__)
#define FA_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FA_TSAN 1
#endif
#endif
#ifdef FA_TSAN
#define fa_add_owned(field, d) fa_store(field, (field) + (d))
#else
#define fa_add_owned(field, d) ((field) += (d))
#endif
/* A field its owner thread writes, read on a fast path whose result only
 * counts in the owner thread (free's inline check: another thread reads
 * it, but goes on only if it owns the segment): plain C, so that it folds
 * into the instruction that uses it; the relaxed load under TSan. */
#ifdef FA_TSAN
#define fa_load_owned(field) fa_load(field)
#else
#define fa_load_owned(field) (field)
#endif

#if defined(FA_TLS_INITIAL_EXEC)
#define FA_TLS __thread __attribute__((tls_model("initial-exec")))
#else
#define FA_TLS __thread
#endif

/* ------------------------------------------------------------------------
 * Run-time options (options.c)
 * ---------------------------------------------------------------------- */
typedef struct fa_options_s {
  size_t arena_size;      /* FANCY_ARENA_SIZE: per-thread retention budget */
  size_t memory_limit;    /* FANCY_MEMORY_LIMIT: 0 = none */
  bool huge_pages;        /* FANCY_HUGE_PAGES */
  bool huge_blocks;       /* FANCY_HUGE_BLOCKS: huge pages for big malloc blocks */
  bool populate;          /* FANCY_POPULATE */
  bool reclaim;           /* FANCY_RECLAIM: background thread */
  uint64_t purge_delay;   /* FANCY_PURGE_DELAY, ms */
  size_t segment_cache;   /* FANCY_SEGMENT_CACHE: empty segments kept */
  bool stats;             /* FANCY_STATS: print at exit */
  bool verbose;           /* FANCY_VERBOSE */
  bool check;             /* FANCY_CHECK: canaries behind every block */
  size_t mmap_threshold;  /* mallopt(M_MMAP_THRESHOLD): larger blocks are
                             huge blocks; at most FA_LARGE_MAX */
  bool stats_json;        /* FANCY_STATS=json: print them as JSON at exit */
  bool prof;              /* FANCY_PROF: sampled heap profiling (prof.c) */
  bool prof_final;        /* FANCY_PROF_FINAL: leak profile at exit */
  size_t prof_sample;     /* FANCY_PROF_SAMPLE: mean bytes between samples */
  size_t prof_signal;     /* FANCY_PROF_SIGNAL: signal that asks for a dump */
  /* limit.c: "auto[:P]" sets these to P (percent of the cgroup's limit),
   * 0 for a plain size; memory_limit and soft_limit then hold the figures
   * computed from the cgroup, re-read on a slow clock (read them with
   * fa_load: they may change under other threads) */
  size_t memory_limit_auto;  /* FANCY_MEMORY_LIMIT=auto[:P] */
  size_t soft_limit;         /* FANCY_MEMORY_SOFT_LIMIT: 0 = none */
  size_t soft_limit_auto;    /* FANCY_MEMORY_SOFT_LIMIT=auto[:P] */
} fa_options_t;

/* options.c */
extern fa_options_t _fa_opt FA_HIDDEN;
FA_HIDDEN void _fa_options_init(void);
FA_HIDDEN void _fa_options_print(void);
FA_HIDDEN bool _fa_parse_size(const char *s, size_t *out);

/* ------------------------------------------------------------------------
 * Memory-limit accounting (limit.c)
 * ---------------------------------------------------------------------- */
/* Add bytes to counter unless that passes limit (0: no limit); false, and
 * nothing added, when it would.  The only check of a limit anywhere. */
FA_HIDDEN bool _fa_limit_charge(_Atomic size_t *counter, size_t limit, size_t bytes);
FA_HIDDEN void _fa_limit_uncharge(_Atomic size_t *counter, size_t bytes);
/* FANCY_MEMORY_LIMIT=auto, FANCY_MEMORY_SOFT_LIMIT: the limits from the
 * cgroup (at start-up, then again every FA_LIMITS_REREAD_MS from the
 * heartbeats and the reclamation thread), and the soft limit. */
#define FA_LIMITS_REREAD_MS 1000
#define FA_AUTO_PERCENT 90
FA_HIDDEN void _fa_limits_init(void);
FA_HIDDEN void _fa_limits_print(void);
FA_HIDDEN void _fa_limits_refresh(uint64_t now);
FA_HIDDEN void _fa_limits_after_fork_child(void);
/* Above the soft limit (resident > soft_limit): freed spans are purged at
 * once, empty segments skip the cache, freed huge blocks are unmapped. */
extern _Atomic bool _fa_soft_over FA_HIDDEN;
FA_HIDDEN size_t _fa_resident(void);
FA_HIDDEN void _fa_soft_pressure(fa_heap_t *heap, size_t more);
FA_HIDDEN void _fa_soft_recheck(void);
/* Slow paths where the allocator's resident memory grew by (or is about
 * to grow by) more bytes: give back what is purgeable when that passes
 * the soft limit. */
static inline void fa_soft_check(fa_heap_t *heap, size_t more) {
  size_t soft = __atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED);
  if (fa_unlikely(soft != 0) && _fa_resident() + more > soft) _fa_soft_pressure(heap, more);
}
static inline bool fa_soft_over(void) {
  return fa_unlikely(atomic_load_explicit(&_fa_soft_over, memory_order_relaxed));
}

/* ------------------------------------------------------------------------
 * The process's cgroup (cgroup.c)
 * ---------------------------------------------------------------------- */
#define FA_CGROUP_PATH_MAX 512
typedef struct fa_cgroup_s {
  int version;                        /* 1 or 2; 0: no memory cgroup found */
  uint64_t max;                       /* tightest memory.max / limit_in_bytes, 0 none */
  uint64_t high;                      /* tightest memory.high (v2), 0 none */
  char dir[FA_CGROUP_PATH_MAX];       /* the process's cgroup directory */
  char max_from[FA_CGROUP_PATH_MAX];  /* the file that set max */
  char high_from[FA_CGROUP_PATH_MAX]; /* the file that set high */
  char garbage[FA_CGROUP_PATH_MAX];   /* a file that was not a limit */
} fa_cgroup_t;
/* Read the limits of the process's memory cgroup, with every path under
 * root ("" in the library; the tests' fake trees elsewhere).  1: a memory
 * cgroup was found; 0: none; -1: a limit file held garbage (one warning
 * line printed, no limit). */
FA_HIDDEN int _fa_cgroup_read(const char *root, fa_cgroup_t *res);

/* procfile.c: the kernel's text files, read without malloc.
 * _fa_read_file: the whole file (at most cap - 1 bytes, NUL-terminated);
 * its length, or -1.  _fa_read_lines: fn on each line, without its
 * newline, cut to FA_LINE_MAX - 1 bytes (cut says so), until fn returns
 * nonzero; that value, 0 at the end of the file, -1 if it cannot be opened. */
#define FA_LINE_MAX 4096
typedef int (*fa_line_fn)(char *line, bool cut, void *arg);
FA_HIDDEN ssize_t _fa_read_file(const char *path, char *buf, size_t cap);
FA_HIDDEN int _fa_read_lines(const char *path, fa_line_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * Instances (instance.c)
 * ---------------------------------------------------------------------- */
extern fa_domain_t _fa_domain_default FA_HIDDEN;
extern pthread_mutex_t _fa_domains_lock FA_HIDDEN;
FA_HIDDEN void _fa_domain_default_init(void);
FA_HIDDEN fa_heap_t *_fa_domain_heap_new(fa_domain_t *d);
FA_HIDDEN bool _fa_domain_charge(fa_domain_t *d, size_t bytes);
FA_HIDDEN void _fa_domain_uncharge(fa_domain_t *d, size_t bytes);
FA_HIDDEN FA_NORETURN FA_COLD void _fa_wrong_instance(const void *p);

/* ------------------------------------------------------------------------
 * Process and thread set-up, messages (init.c)
 * ---------------------------------------------------------------------- */
extern fa_heap_t _fa_heap_empty FA_HIDDEN;
extern fa_page_t _fa_page_empty FA_HIDDEN;
extern FA_TLS fa_heap_t *_fa_tls_heap FA_HIDDEN;
extern uintptr_t _fa_secret FA_HIDDEN;
extern int _fa_override_mode FA_HIDDEN;  /* 1 in libfancymalloc */

FA_HIDDEN void _fa_process_init(void);
FA_HIDDEN fa_heap_t *_fa_thread_init(void);
FA_HIDDEN uint64_t _fa_clock_ms(void);
FA_HIDDEN FA_NORETURN FA_COLD void _fa_fatal(const char *fmt, ...);
FA_HIDDEN FA_COLD void _fa_warn(const char *fmt, ...);
FA_HIDDEN size_t _fa_format(char *buf, size_t cap, const char *fmt, __builtin_va_list ap);

/* ------------------------------------------------------------------------
 * Heaps (heap.c)
 * ---------------------------------------------------------------------- */
extern pthread_mutex_t _fa_heaps_lock FA_HIDDEN;
extern fa_heap_t *_fa_heaps FA_HIDDEN;          /* every heap ever made */
FA_HIDDEN fa_heap_t *_fa_heap_new(fa_domain_t *domain);
FA_HIDDEN void _fa_heap_done(fa_heap_t *heap);
FA_HIDDEN void _fa_heap_collect_remote(fa_heap_t *heap, bool force);
FA_HIDDEN void _fa_heap_heartbeat(fa_heap_t *heap);
FA_HIDDEN void _fa_heap_set_direct(fa_heap_t *heap, unsigned cls, fa_page_t *page);
FA_HIDDEN void _fa_heaps_after_fork_child(fa_heap_t *self);
FA_HIDDEN void _fa_heaps_release_domain(fa_domain_t *d);
FA_HIDDEN void _fa_heaps_lock_all(void);
FA_HIDDEN void _fa_heaps_unlock_all(void);
FA_HIDDEN void _fa_heaps_reinit_locks(void);

/* ------------------------------------------------------------------------
 * The address map (addrmap.c), segments (segment.c), the spans inside
 * them (span.c), and purging on a clock (purge.c).  A function named
 * *_locked wants the lock that its un-suffixed twin takes.
 * ---------------------------------------------------------------------- */
enum { FA_UNIT_NONE = 0, FA_UNIT_SEGMENT = 1, FA_UNIT_HUGE = 2 };
#define FA_UNITS ((size_t)1 << (FA_VA_BITS - FA_SEGMENT_SHIFT))   /* 2^25 */
/* One byte per 4 MiB unit of the address space (FA_UNIT_*), mapped at
 * start-up with MAP_NORESERVE (32 MiB of address space, touched only where
 * segments live).  Until then _fa_unit_count is 0 and every address reads
 * as FA_UNIT_NONE. */
extern uint8_t *_fa_unit_map FA_HIDDEN;
extern size_t _fa_unit_count FA_HIDDEN;
FA_HIDDEN void _fa_unit_map_init(void);
extern pthread_mutex_t _fa_segments_lock FA_HIDDEN;
extern fa_segment_t *_fa_all_segments FA_HIDDEN;   /* under the lock */
extern fa_segment_t *_fa_abandoned FA_HIDDEN;      /* under the lock */
extern fa_segment_t *_fa_cached FA_HIDDEN;         /* under the lock */
extern size_t _fa_abandoned_count FA_HIDDEN;
extern size_t _fa_cached_count FA_HIDDEN;
extern _Atomic int _fa_abandoned_xpending FA_HIDDEN;
/* The earliest time (ms) a dirty free span of an abandoned segment is due
 * to be purged, 0: none (written under _fa_segments_lock). */
extern _Atomic uint64_t _fa_abandoned_dirty_due FA_HIDDEN;

FA_HIDDEN void _fa_segmap_set(uintptr_t addr, unsigned kind);
FA_HIDDEN fa_page_t *_fa_span_alloc(fa_heap_t *heap, size_t pages);
/* True when the span freed was the segment's last and the segment left
 * the heap (it may belong to another thread at once: stop reading it). */
FA_HIDDEN bool _fa_span_free(fa_heap_t *heap, fa_segment_t *seg, fa_page_t *page);
FA_HIDDEN void _fa_span_set_tails(fa_page_t *page, size_t pages);
FA_HIDDEN bool _fa_span_grow(fa_heap_t *heap, fa_page_t *page, size_t pages);
FA_HIDDEN void _fa_span_shrink(fa_heap_t *heap, fa_page_t *page, size_t pages);
FA_HIDDEN void _fa_segments_leave_heap(fa_heap_t *heap);
FA_HIDDEN bool _fa_segment_reclaim(fa_heap_t *heap, fa_segment_t *seg);
FA_HIDDEN bool _fa_segment_give_back_spare(fa_heap_t *heap, fa_segment_t *seg);
FA_HIDDEN void _fa_segment_release(fa_heap_t *heap, fa_segment_t *seg);
FA_HIDDEN void _fa_segments_release_domain(fa_domain_t *d);
FA_HIDDEN size_t _fa_segment_index(const fa_segment_t *seg, const fa_page_t *page);
FA_HIDDEN void _fa_span_purge(fa_heap_t *heap, fa_segment_t *seg, fa_page_t *span);
/* span.c, for segment.c: heap's lock held, or heap NULL for a segment that
 * nobody owns, under _fa_segments_lock. */
FA_HIDDEN void _fa_span_unlink(fa_heap_t *heap, fa_page_t *span);
FA_HIDDEN void _fa_span_file(fa_heap_t *heap, fa_page_t *span);
FA_HIDDEN void _fa_span_make_free(fa_heap_t *heap, fa_page_t *page, size_t pages, bool zeroed,
                                  uint64_t now);
FA_HIDDEN void _fa_span_purge_unowned(fa_segment_t *seg, fa_page_t *span);
/* segment.c, for span.c: heap's lock held; false when no segment could be
 * had (limit or mmap). */
FA_HIDDEN bool _fa_segment_acquire(fa_heap_t *heap);
FA_HIDDEN size_t _fa_segment_cache_decay(uint64_t now, uint64_t delay, bool force, bool blocking);
FA_HIDDEN size_t _fa_segment_cache_trim(size_t *budget);
FA_HIDDEN size_t _fa_abandoned_collect(size_t max, bool blocking);
FA_HIDDEN bool _fa_abandoned_purge_due(uint64_t now);
FA_HIDDEN bool _fa_memory_pressure(fa_heap_t *heap);
FA_HIDDEN size_t _fa_heap_purge(fa_heap_t *heap, uint64_t now, uint64_t delay, size_t max);
FA_HIDDEN size_t _fa_heap_purge_locked(fa_heap_t *heap, uint64_t now, uint64_t delay, size_t max);
FA_HIDDEN size_t _fa_heaps_purge(uint64_t now, uint64_t delay, size_t max);
/* The earliest time (ms) some free memory is due to be purged, 0: none. */
extern _Atomic uint64_t _fa_purge_due FA_HIDDEN;
FA_HIDDEN void _fa_purge_due_at(uint64_t due);
FA_HIDDEN void _fa_purge_due_run(void);

/* ------------------------------------------------------------------------
 * Pages and size classes (page.c)
 * ---------------------------------------------------------------------- */
extern const uint32_t _fa_class_size[FA_NUM_CLASSES] FA_HIDDEN;
extern const uint8_t _fa_small_class[FA_SMALL_TABLE] FA_HIDDEN;
FA_HIDDEN fa_page_t *_fa_page_find(fa_heap_t *heap, unsigned cls);
/* Both true when the page's segment left the heap (see _fa_span_free). */
FA_HIDDEN bool _fa_page_collect(fa_heap_t *heap, fa_page_t *page);
FA_HIDDEN void _fa_page_collect_lists(fa_page_t *page);
FA_HIDDEN bool _fa_page_retire(fa_heap_t *heap, fa_page_t *page);
FA_HIDDEN void _fa_queue_remove(fa_heap_t *heap, fa_page_t *page);
FA_HIDDEN void _fa_queue_push_back(fa_heap_t *heap, fa_page_t *page);
FA_HIDDEN size_t _fa_list_length(const fa_block_t *b, size_t limit);

/* ------------------------------------------------------------------------
 * Allocation and free (alloc.c, free.c, aligned.c)
 * ---------------------------------------------------------------------- */
FA_HIDDEN void *_fa_malloc_generic(fa_heap_t *heap, size_t n);
FA_HIDDEN void *_fa_calloc(fa_heap_t *heap, size_t count, size_t size);
FA_HIDDEN void *_fa_realloc(fa_heap_t *heap, void *p, size_t n);
FA_HIDDEN size_t _fa_usable_size(uintptr_t u);  /* an address only */
FA_HIDDEN size_t _fa_block_size(uintptr_t u);   /* ignoring FANCY_CHECK */
FA_HIDDEN void _fa_check_block(void *p);        /* FANCY_CHECK: verify canary */
FA_HIDDEN void _fa_check_release(void *p);      /* FANCY_CHECK: block leaves use */
FA_HIDDEN void _fa_free_generic(fa_domain_t *d, fa_segment_t *seg, fa_page_t *page, void *p);
FA_HIDDEN void _fa_free_special(fa_domain_t *d, void *p);
FA_HIDDEN void _fa_rcache_flush(fa_heap_t *heap);
/* heap.c; d NULL: every instance's heaps */
FA_HIDDEN void _fa_heaps_rcache_kept(fa_domain_t *d, size_t kept[]);
FA_HIDDEN void *_fa_aligned_alloc(fa_heap_t *heap, size_t alignment, size_t size);
FA_HIDDEN void *_fa_aligned_checked(fa_heap_t *heap, size_t alignment, size_t size);
FA_HIDDEN FA_NORETURN FA_COLD void _fa_invalid_free(const void *p, const char *what);
/* foreign.c: as a malloc replacement, a pointer that is not ours is
 * glibc's (released by glibc's free) or a bug (abort) */
FA_HIDDEN void _fa_foreign_free(void *p);
FA_HIDDEN void *_fa_foreign_realloc(fa_heap_t *heap, void *p, size_t n);

FA_HIDDEN void *_fa_malloc_raw(fa_heap_t *heap, size_t n);   /* no FANCY_CHECK, no sampling */

/* ------------------------------------------------------------------------
 * Heap profiling (prof.c); _fa_prof_start sets every heap's countdown, the
 * others are only called when _fa_opt.prof is set
 * ---------------------------------------------------------------------- */
FA_HIDDEN void _fa_prof_init(void);
FA_HIDDEN void *_fa_prof_malloc(fa_heap_t *heap, size_t n);   /* a sample or a dump is due */
extern _Atomic int _fa_prof_pending FA_HIDDEN;   /* the dump signal arrived */
FA_HIDDEN bool _fa_prof_forget(const void *p);   /* a block is freed: was it sampled */
FA_HIDDEN int64_t _fa_prof_start(const fa_domain_t *domain);   /* a heap's first countdown */
FA_HIDDEN void *_fa_prof_crossed(fa_heap_t *heap, fa_page_t *page, void *p, size_t n);
FA_HIDDEN void _fa_prof_totals(size_t *samples, size_t *bytes, size_t *dropped);

/* unwind.c: up to max return addresses of the calling thread, from the
 * caller of _fa_unwind on, as libgcc's _Unwind_Backtrace reports them; -1
 * when this walker cannot (the profiler then takes libgcc's).  find is
 * libgcc's _Unwind_Find_FDE. */
typedef const void *(*fa_find_fde_t)(void *pc, void *bases);
FA_HIDDEN int _fa_unwind(void **pc, int max, fa_find_fde_t find);
FA_HIDDEN extern _Atomic size_t _fa_unwind_worked_out;   /* rules read from an FDE */
FA_HIDDEN extern _Atomic size_t _fa_unwind_stack_lookups;   /* pthread_getattr_np calls */

/* ------------------------------------------------------------------------
 * Huge blocks (huge.c)
 * ---------------------------------------------------------------------- */
FA_HIDDEN void *_fa_huge_alloc(fa_heap_t *heap, size_t n, size_t alignment, bool zeroed);
FA_HIDDEN size_t _fa_huge_cache_decay(uint64_t now, uint64_t delay, bool force);
FA_HIDDEN size_t _fa_huge_cache_trim(size_t *budget);
FA_HIDDEN bool _fa_huge_free(fa_domain_t *d, void *p);
FA_HIDDEN size_t _fa_huge_release_domain(fa_domain_t *d);
FA_HIDDEN size_t _fa_huge_size(const void *p);
FA_HIDDEN bool _fa_huge_contains(const void *p);     /* inside one, start included */
FA_HIDDEN bool _fa_huge_was_freed(const void *p);    /* one of the last unmapped */
FA_HIDDEN void *_fa_huge_realloc(fa_heap_t *heap, void *p, size_t n);
FA_HIDDEN void _fa_huge_totals(fa_domain_t *d, size_t *count, size_t *bytes);
FA_HIDDEN int _fa_huge_visit(fa_domain_t *d, fancy_visit_fn fn, void *arg);
extern pthread_mutex_t _fa_huge_lock FA_HIDDEN;

/* ------------------------------------------------------------------------
 * Reclamation (purge.c)
 * ---------------------------------------------------------------------- */
FA_HIDDEN size_t _fa_reclaim_tick(bool force, bool blocking);
FA_HIDDEN void _fa_reclaim_maybe_start(void);
FA_HIDDEN void _fa_reclaim_after_fork_child(void);
FA_HIDDEN int _fa_trim(fa_heap_t *heap, size_t pad);

/* ------------------------------------------------------------------------
 * Statistics (stats.c) -- counters bumped on slow paths only
 * ---------------------------------------------------------------------- */
FA_HIDDEN void _fa_stats_print(fa_domain_t *d, FILE *out);
FA_HIDDEN bool _fa_stats_add_up(fa_domain_t *d);   /* live <= committed <= mapped */
FA_HIDDEN size_t _fa_span_live(const fa_page_t *page, unsigned *cls, size_t *bytes);
FA_HIDDEN bool _fa_check_leaks(fa_domain_t *d);
FA_HIDDEN bool _fa_validate(fa_domain_t *d);   /* validate.c */

typedef struct fa_counters_s {
  _Atomic size_t mapped;          /* bytes mapped (segments + huge) */
  _Atomic size_t committed;       /* bytes of pages in use or warm */
  _Atomic size_t purged;          /* bytes returned, cumulative */
  _Atomic size_t segments;        /* segments mapped */
  _Atomic size_t threads;         /* live heaps */
  _Atomic size_t threads_created;
  _Atomic size_t remote_frees;
  _Atomic size_t mmap_calls;
  _Atomic size_t purge_calls;
  _Atomic size_t huge;            /* bytes of huge mappings, live or cached */
  _Atomic size_t limit_hits;      /* charges refused by a hard limit */
  _Atomic size_t soft_limit_hits; /* sweeps made above the soft limit */
} fa_counters_t;
extern fa_counters_t _fa_counters FA_HIDDEN;
#define fa_count(name, n) \
  atomic_fetch_add_explicit(&_fa_counters.name, (n), memory_order_relaxed)
#define fa_uncount(name, n) \
  atomic_fetch_sub_explicit(&_fa_counters.name, (n), memory_order_relaxed)

/* ------------------------------------------------------------------------
 * Test hooks (init.c).  Only the test build of the core
 * (tests/libfancytest.la, -DFA_TEST_HOOKS=1) has them: a race test sets
 * _fa_test_hook to pause the calling thread at one hand-over point while
 * another thread acts.  Elsewhere fa_test_point compiles to nothing.
 * ---------------------------------------------------------------------- */
typedef enum fa_test_point_e {
  FA_TP_SEGMENT_RELEASED = 1, /* _fa_segment_release: seg is in the shared pool */
  FA_TP_HEAP_DONE_UNLOCKED,   /* _fa_heap_done: its segments have left the heap */
  FA_TP_QUOTA_REFUSED,        /* fa_quota_charge: a charge was refused */
  FA_TP_ABANDONED_PURGE,      /* _fa_abandoned_collect: about to purge a due
                                 span of abandoned seg (segments lock held) */
  FA_TP_STATS_COLLECTED,      /* _fa_stats_add_up: between its two readings
                                 of the statistics (process, then instance) */
  FA_TP_SEGMENT_GIVEN_BACK,   /* fa_segment_give_back: seg is on the abandoned
                                 list, its former owner's lock still held */
  FA_TP_STATS_HUGE_READ,      /* fa_stats_collect: the huge blocks are read,
                                 after the mapped and committed bytes */
  FA_TP_UNWINDER_CLAIMED,     /* fa_prof_unwinder: this thread claimed the
                                 lookup of libgcc's unwinder, not yet done */
} fa_test_point_t;
#ifndef FA_TEST_HOOKS
#define FA_TEST_HOOKS 0
#endif
#if FA_TEST_HOOKS
extern void (*_fa_test_hook)(fa_test_point_t point, void *arg);
/* Added to _fa_clock_ms: a test moves time on without sleeping. */
extern _Atomic uint64_t _fa_test_clock_skew;
#define fa_test_point(point, arg) \
  do { if (_fa_test_hook != NULL) _fa_test_hook((point), (arg)); } while (0)
#else
#define fa_test_point(point, arg) ((void)0)
#endif

/* ------------------------------------------------------------------------
 * The OS seam (os.c; declared in os.h)
 * ---------------------------------------------------------------------- */
#include "os.h"
#include "track.h"

/* ========================================================================
 * Inline helpers: the fast paths live here so that fancy_malloc (alloc.c)
 * and malloc (override.c) both inline them.
 * ====================================================================== */

static inline fa_heap_t *fa_heap_get(void) { return _fa_tls_heap; }

/* Slow paths: purge what is due in any heap (segment.c). */
static inline void fa_purge_if_due(void) {
  if (fa_unlikely(atomic_load_explicit(&_fa_purge_due, memory_order_relaxed) != 0))
    _fa_purge_due_run();
}

/* fa_heap_t's lock (lock_owner, lock_depth). */
static inline bool fa_heap_trylock(fa_heap_t *heap) {
  uintptr_t me = (uintptr_t)&_fa_tls_heap, free_ = 0;
  if (atomic_load_explicit(&heap->lock_owner, memory_order_relaxed) == me) {
    heap->lock_depth++;
    return true;
  }
  if (!atomic_compare_exchange_strong_explicit(&heap->lock_owner, &free_, me,
                                               memory_order_acquire, memory_order_relaxed))
    return false;
  heap->lock_depth = 1;
  return true;
}

/* NULL is the owner-less case (abandoned segments): nothing to lock.  The
 * owner waits only for another thread's bounded purge of its spans. */
static inline void fa_heap_lock(fa_heap_t *heap) {
  if (heap != NULL)
    while (!fa_heap_trylock(heap)) sched_yield();
}

static inline void fa_heap_unlock(fa_heap_t *heap) {
  if (heap != NULL && --heap->lock_depth == 0)
    atomic_store_explicit(&heap->lock_owner, 0, memory_order_release);
}

static inline uintptr_t fa_block_tag(const fa_block_t *b) {
  return ~(uintptr_t)b ^ (uintptr_t)0x6a09e667f3bcc908ULL;
}

/* What the 4 MiB unit holding address u is: FA_UNIT_*.  NULL and any
 * address outside the user address space read as FA_UNIT_NONE. */
static inline unsigned fa_unit_kind(uintptr_t u) {
  uintptr_t unit = u >> FA_SEGMENT_SHIFT;
  if (fa_unlikely(unit >= __atomic_load_n(&_fa_unit_count, __ATOMIC_ACQUIRE))) return FA_UNIT_NONE;
  return __atomic_load_n(&__atomic_load_n(&_fa_unit_map, __ATOMIC_RELAXED)[unit], __ATOMIC_RELAXED);
}

/* Give seg to heap (NULL: to nobody); see fa_segment_t.fast_heap. */
static inline void fa_segment_set_owner(fa_segment_t *seg, fa_heap_t *heap) {
  atomic_store_explicit(&seg->fast_heap, _fa_opt.check ? NULL : heap, memory_order_relaxed);
  atomic_store_explicit(&seg->heap, heap, memory_order_release);
}

static inline fa_block_t *fa_xfree_list(uintptr_t x) {
  return (fa_block_t *)(x & (((uintptr_t)1 << FA_XFREE_SHIFT) - 1));
}

static inline size_t fa_xfree_count(uintptr_t x) { return (size_t)(x >> FA_XFREE_SHIFT); }

/* How many other threads' frees may wait on page's remote list before a
 * freeing thread keeps its blocks instead (see FA_XFREE_BACKLOG_MAX). */
static inline size_t fa_xfree_backlog_max(const fa_page_t *page) {
  size_t n = page->reserved / 8 + 1;
  return n < FA_XFREE_BACKLOG_MAX ? n : FA_XFREE_BACKLOG_MAX;
}

static inline fa_segment_t *fa_ptr_segment(const void *p) {
  return (fa_segment_t *)((uintptr_t)p & ~(uintptr_t)FA_SEGMENT_MASK);
}

/* The first page of the span holding p. */
static inline fa_page_t *fa_segment_span_of(fa_segment_t *seg, const void *p) {
  return seg->pages[((uintptr_t)p - (uintptr_t)seg) >> FA_PAGE_SHIFT].head;
}

/* The length in pages of the span at index idx of seg, for readers that
 * walk a segment while its owner may be changing it (statistics, the
 * heap walk): 1 where the count read is torn (0, or past the guard). */
static inline size_t fa_span_pages_seen(const fa_segment_t *seg, size_t idx) {
  size_t n = fa_load(seg->pages[idx].span_pages);
  return n == 0 || idx + n > FA_GUARD_PAGE ? 1 : n;
}

static inline size_t fa_span_bytes(const fa_page_t *span) {
  return (size_t)span->span_pages << FA_PAGE_SHIFT;
}

static inline uint8_t *fa_page_address(fa_segment_t *seg, const fa_page_t *page) {
  return (uint8_t *)seg + ((size_t)(page - seg->pages) << FA_PAGE_SHIFT);
}

/* The index of the block at u in a class span, or a number above the
 * blocks that fit when u is not a block's start: with bsize = d * 2^shift,
 * d odd, and inv the inverse of d modulo 2^32, rotating off * inv right by
 * shift gives off / bsize when bsize divides off, and a number above
 * (2^32 - 1) / bsize when it does not (Hacker's Delight, 10-17).  One
 * multiply and one rotate tell both "is it a block start" and "which". */
static inline uint32_t fa_block_index(const fa_page_t *page, uintptr_t u) {
  uint32_t x = (uint32_t)(u - (uintptr_t)page->start) * page->inv;
  unsigned k = page->shift;
  return (x >> k) | (x << ((32 - k) & 31));
}

/* Might the block of index idx be one of the span's sampled blocks, by
 * its samples word w?  Not when there are none, nor when there is one
 * whose index is known and another: most frees into a span that holds a
 * sample then need no look-up in the profiler's table (prof.c). */
static inline bool fa_page_may_be_sampled(uint32_t w, uint32_t idx) {
  uint32_t n = FA_SAMPLE_COUNT(w), one = w >> 16;
  return n != 0 && (n != 1 || one == FA_SAMPLE_ANY || one == idx);
}

/* Is u the start of a block that was handed out?  Never on pages that are
 * not class spans (capacity 0).  capacity only grows while the page has
 * live blocks, and other threads read it here: a relaxed atomic load. */
static inline bool fa_page_is_block_start(const fa_page_t *page, uintptr_t u) {
  return fa_block_index(page, u) < fa_load(page->capacity);
}

/* (512, 32768]: 4 classes per doubling, 640 .. 32768.  With b the top
 * bit of n - 1 (9 .. 14), (n - 1) >> (b - 2) is 4 + the quarter (0 .. 3),
 * so the class is FA_SMALL_CLASSES + 4 (b - 9) + quarter. */
static inline unsigned fa_medium_index(size_t n) {   /* 0 .. 23 */
  size_t m = n - 1;
  unsigned b = 63u ^ (unsigned)__builtin_clzll(m);   /* one bsr */
  return 4 * b + (unsigned)(m >> (b - 2)) - 40;
}

static inline unsigned fa_medium_class(size_t n) {
  return FA_SMALL_CLASSES + fa_medium_index(n);
}

static inline unsigned fa_size_class(size_t n) {
  if (n <= FA_SMALL_MAX) return _fa_small_class[(n + 15) >> 4];
  return fa_medium_class(n);
}

/* The calling thread's heap in instance d, NULL if it has none yet (the
 * default instance: the TLS pointer, possibly the empty heap). */
static inline fa_heap_t *fa_domain_thread_heap(fa_domain_t *d) {
  if (fa_likely(d == &_fa_domain_default)) return fa_heap_get();
  return (fa_heap_t *)pthread_getspecific(d->key);
}

/* Let fa_page_take hand out `step` more never-used blocks of page, and
 * twice as many the next time (see fa_page_t). */
static inline void fa_page_extend(fa_page_t *page) {
  uint32_t limit = page->capacity + page->step;
  page->limit = limit < page->reserved ? limit : page->reserved;
  if (page->step < 0x4000) page->step = (uint16_t)(page->step * 2);
}

/* A block of a class span, from its free list or else from its fresh
 * zero memory (without touching it), up to its limit, which it raises
 * when nothing was freed into it since; NULL when it has none of these
 * (the slow path collects the other lists then). */
static inline void *fa_page_take(fa_page_t *page) {
  fa_block_t *b = page->free;
  if (fa_likely(b != NULL)) {
    page->free = b->next;
    fa_add_owned(page->used, 1);
    b->tag = 0;
    return b;
  }
  uint32_t cap = page->capacity;
  if (fa_unlikely(cap == page->limit)) {
    if (cap == page->reserved || page->local_free != NULL) return NULL;
    fa_page_extend(page);
  }
  b = (fa_block_t *)(page->start + (uint32_t)(cap * page->bsize));   /* < 2^32: one span */
  fa_store(page->capacity, cap + 1);
  fa_add_owned(page->used, 1);
  if (!page->zeroed) b->tag = 0;    /* see fa_page_t */
  return b;
}

/* The heap's list of other threads' blocks for cls is empty (the inline
 * pop drained it, or it was handed back): restart its counts and point
 * the direct tables at the class's pages again. */
static inline void fa_rcache_reset(fa_heap_t *heap, unsigned cls) {
  heap->rcache[cls].free = NULL;
  fa_store(heap->rcache[cls].used, 0u);
  fa_store(heap->rcache_pushed[cls], 0u);   /* read by other threads' statistics */
  _fa_heap_set_direct(heap, cls, heap->queues[cls].first);
}

/* An allocation of n bytes that malloc's inline path does not serve,
 * charged to heap's countdown (prof.c); false, and nothing charged, when
 * the countdown runs out: the allocation is sampled. */
static inline bool fa_prof_charge(fa_heap_t *heap, size_t n) {
  int64_t k = n < INT64_MAX ? (int64_t)n : INT64_MAX;
  if (heap->prof_left < k) return false;
  heap->prof_left -= k;
  return true;
}

/* The direct tables' page for n into page, or else (n is larger than a
 * class) the statement `otherwise`. */
#define FA_DIRECT_PAGE(heap, n, page, otherwise)                              \
  do {                                                                        \
    if (fa_likely((n) <= FA_DIRECT_MAX)) (page) = (heap)->direct[((n) + 15) >> 4]; \
    else if (fa_likely((n) <= FA_MEDIUM_MAX)) (page) = (heap)->mdirect[fa_medium_index(n)]; \
    else otherwise;                                                           \
  } while (0)

/* After the inline pop took p of n bytes from page: the bytes until the
 * heap's next sample (prof.c), 2^63 when it does not profile. */
#define FA_PROF_COUNTDOWN(heap, page, p, n)                                   \
  do {                                                                        \
    if (fa_unlikely(((heap)->prof_left -= (int64_t)(n)) < 0))                 \
      return _fa_prof_crossed((heap), (page), (p), (n));                      \
  } while (0)

/* malloc fast path: a table load and a pop, in the given heap; NULL when
 * it does not apply (then _fa_malloc_generic does). */
static inline void *fa_heap_malloc_fast(fa_heap_t *heap, size_t n) {
  fa_page_t *page;
  FA_DIRECT_PAGE(heap, n, page, return NULL);
  void *p = fa_page_take(page);
  if (p != NULL) FA_PROF_COUNTDOWN(heap, page, p, n);
  return p;
}

/* The same, with the generic path where it does not apply; each of the
 * calls below is a tail call. */
static inline void *fa_heap_malloc(fa_heap_t *heap, size_t n) {
  fa_page_t *page;
  FA_DIRECT_PAGE(heap, n, page, return _fa_malloc_generic(heap, n));
  void *p = fa_page_take(page);
  if (fa_unlikely(p == NULL)) return _fa_malloc_generic(heap, n);
  FA_PROF_COUNTDOWN(heap, page, p, n);
  return p;
}

/* malloc: one TLS load, then the above. */
static inline void *fa_malloc_inline(size_t n) { return fa_heap_malloc(fa_heap_get(), n); }

/* free fast path in instance d, whose heap for this thread is `heap`:
 * classify the address, find the span by masking, and push onto the
 * page's local list when this heap owns it (which implies the block is
 * d's) and the span holds no sampled block (free_mark).  Anything else,
 * including a block of another instance, goes the generic path. */
static inline void fa_heap_free(fa_domain_t *d, fa_heap_t *heap, void *p) {
  uintptr_t u = (uintptr_t)p;
  if (fa_unlikely(fa_unit_kind(u) != FA_UNIT_SEGMENT)) {
    _fa_free_special(d, p);         /* NULL, huge, or not ours */
    return;
  }
  fa_segment_t *seg = fa_ptr_segment(p);
  fa_page_t *page = fa_segment_span_of(seg, p);
  fa_block_t *b = (fa_block_t *)p;
  if (fa_likely((fa_block_index(page, u) | fa_load_owned(page->free_mark)) <
                    fa_load_owned(page->capacity) &&
                atomic_load_explicit(&seg->fast_heap, memory_order_relaxed) == heap &&
                b->tag != fa_block_tag(b))) {
    b->tag = fa_block_tag(b);
    b->next = page->local_free;
    page->local_free = b;
    fa_add_owned(page->used, -1);
    if (fa_unlikely(page->used == 0)) _fa_page_retire(heap, page);
    return;
  }
  _fa_free_generic(d, seg, page, p);
}

static inline void fa_free_inline(void *p) {
  fa_heap_free(&_fa_domain_default, fa_heap_get(), p);
}

#endif /* FA_INTERNAL_H */
