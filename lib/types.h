/* SPDX-License-Identifier: MIT */
/*
 * types.h - every internal structure and compile-time constant.
 *
 * Memory layout
 * -------------
 * All small, medium and large blocks live in *segments*: 4 MiB regions
 * aligned to 4 MiB, so the segment of any block is `p & ~FA_SEGMENT_MASK`.
 * A segment is cut into 64 pages of 64 KiB.  Page 0 holds the segment
 * header (fa_segment_t, with one fa_page_t descriptor per page); pages
 * 1..62 hold blocks, page 63 is a guard (FA_GUARD_PAGE).  Consecutive
 * pages form *spans*: a span is either
 *   - a class span: blocks of one size class (the document's slabs), or
 *   - a large span: one block of more than FA_MEDIUM_MAX bytes, or
 *   - a free span: kept in the owning heap's span bins, coalesced with its
 *     free neighbours at once (the document's boundary tags and immediate
 *     coalescing, applied to runs of pages rather than to objects).
 * Huge blocks (> FA_LARGE_MAX) are mapped on their own, 4 MiB aligned, and
 * described in a global table (huge.c).  A process-wide map with one byte
 * per 4 MiB unit of address space (segment.c) says whether a unit is a
 * segment, a huge block or neither, so any pointer can be classified
 * without touching memory that may not be ours.
 *
 * Ownership
 * ---------
 * Each thread has a heap (fa_heap_t) reached through one TLS pointer.  A
 * segment belongs to one heap (seg->heap) or to nobody (abandoned, after
 * its thread exited).  Only the owner touches a page's `free` and
 * `local_free` lists and the heap's queues and bins; other threads free
 * into a page through its atomic `xfree` list and flag the page in the
 * segment's atomic `xmask`, which the owner collects on its slow path.
 *
 * Lock order
 * ----------
 * Take them in this order, never the other way round; no function
 * releases a lock its caller took (each unlocks what it locked itself):
 *   _fa_domains_lock   (instance.c: creating and destroying instances)
 *   _fa_heaps_lock     (heap.c: the pool of heaps)
 *   fa_heap_t.lock     (a heap's free spans; other threads only trylock)
 *   _fa_segments_lock  (segment.c: every segment list and state change)
 *   _fa_huge_lock      (huge.c: the huge-block table and its cache)
 *   fa_chunk_lock      (os.c: the address-space chunk new segments come from)
 * fa_reclaim_lock (purge.c, starting the background thread) is held around
 * pthread_create, whose own mallocs may take any of the above.  fork holds
 * them all, in order (init.c), so a child sees no half-done hand-over.
 * Memory-limit counters are not locks: limit.c charges them with a
 * compare-and-swap loop that checks before it adds.
 *
 * Life of a segment (fa_segment_state_t; every change of state, list and
 * owner under _fa_segments_lock, in the function named on the arrow):
 *
 *                 new mapping (fa_segment_acquire: charged to the
 *                      |      instance and to the process)
 *                      v
 *   +---------- [ OWNED ] <-------------- fa_segment_take ---------+
 *   |  _fa_segments_leave_heap |  (thread exit, live blocks), or   |
 *   |  fa_segment_give_back    |  (its thread lives on but has     |
 *   |                          |  free memory to spare; given_back)|
 *   |                          v                                   |
 *   |                   [ ABANDONED ] ------------------------------+
 *   |                          |  _fa_abandoned_collect: emptied      (a free into it:
 *   | fa_segment_park          v                                  _fa_segment_reclaim,
 *   | (emptied: release,  fa_segment_park                         or fa_segment_acquire)
 *   |  memory pressure,       |
 *   |  thread exit)           v
 *   +------------------> [ CACHED ]  warm; instance uncharged, process charged
 *   |                        |  cache full, decay, memory pressure
 *   |                        v  (fa_segment_to_reserve: purged)
 *   +------------------> [ RESERVED ] purged; charged to nothing
 *                 CACHED and RESERVED -> OWNED in fa_segment_acquire
 *                 (charged again: instance, and for RESERVED the process)
 *   OWNED -> ORPHANED only in a forked child, for the segments of threads
 *   that did not survive the fork (heap.c); they are never reused.
 *   An instance being destroyed sends its OWNED and ABANDONED segments to
 *   RESERVED (_fa_segments_release_domain).
 * A segment is never unmapped.  The owner of an OWNED segment must stop
 * reading it once it has left the heap: _fa_span_free and _fa_page_retire
 * say so by returning true, and the walkers (_fa_heap_collect_remote,
 * fa_segment_adopt) stop.
 * A segment given back (given_back set) is not taken over by a free
 * (_fa_segment_reclaim refuses it): it waits for a thread that needs a
 * segment, which fa_segment_acquire makes its owner (clearing the flag).
 *
 * Life of a span (fa_page_kind_t of its first page; owner only):
 *   FREE --_fa_span_alloc/_fa_span_grow--> CLASS or LARGE
 *   CLASS or LARGE --_fa_span_free (merges with free neighbours)--> FREE
 *   FREE is dirty (on the owner's dirty list) until purged, then zeroed.
 *   Pages inside a span other than its first are UNUSED.
 *
 * A FREE span of an ABANDONED segment is on no list (in_bin = dirty = 0)
 * and is in one of two states:
 *   dirty, with an age: zeroed = 0, free_time = when it became free (its
 *     thread exited without purging it; seg->dirty_time is the oldest);
 *   purged: zeroed = 1.
 * Only _fa_abandoned_collect purges it (dirty -> purged, once it has been
 * free for FANCY_PURGE_DELAY), with _fa_segments_lock held while the
 * segment is on the abandoned list.  Adoption (fa_segment_take) moves the
 * segment off that list under the same lock, so the collector and the
 * adopter never both see it: fa_segment_adopt, after the lock, files each
 * dirty span on the adopter's dirty list keeping its age, and from then on
 * only the adopter's heap lock guards it (its heartbeat purges it).
 */
#ifndef FA_TYPES_H
#define FA_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
 * Build-time settings (config.h, from configure) and their fallbacks.
 *   FA_DEBUG             1: assert invariants on slow paths.
 *   FA_TLS_INITIAL_EXEC  1: initial-exec TLS for the heap pointer.
 *   FA_DEFAULT_*         build-time defaults of the run-time options.
 * ---------------------------------------------------------------------- */
#ifndef FA_DEBUG
#define FA_DEBUG 0
#endif
#ifndef FA_DEFAULT_HUGE_PAGES
#define FA_DEFAULT_HUGE_PAGES 0
#endif
#ifndef FA_DEFAULT_POPULATE
#define FA_DEFAULT_POPULATE 0
#endif
#ifndef FA_DEFAULT_RECLAIM
#define FA_DEFAULT_RECLAIM 0
#endif
#ifndef FA_DEFAULT_CHECK
#define FA_DEFAULT_CHECK 0
#endif

/* FANCY_CHECK=1: every block gets FA_CHECK_EXTRA more bytes; its last word
 * holds the size asked for and up to FA_CANARY_MAX bytes after the request
 * hold FA_CANARY_BYTE, verified when the block is freed or reallocated. */
#define FA_CHECK_EXTRA 16
#define FA_CANARY_MAX 64
#define FA_CANARY_BYTE 0xfc

/* ------------------------------------------------------------------------
 * Geometry
 * ---------------------------------------------------------------------- */
#define FA_SEGMENT_SHIFT 22                       /* 4 MiB */
#define FA_SEGMENT_SIZE ((size_t)1 << FA_SEGMENT_SHIFT)
#define FA_SEGMENT_MASK (FA_SEGMENT_SIZE - 1)
#define FA_PAGE_SHIFT 16                          /* 64 KiB */
#define FA_PAGE_SIZE ((size_t)1 << FA_PAGE_SHIFT)
#define FA_PAGES_PER_SEGMENT (FA_SEGMENT_SIZE / FA_PAGE_SIZE)   /* 64 */
#define FA_FIRST_PAGE 1                           /* page 0 is the header */
/* The last page is a guard (PROT_NONE, os.c): an overrun of the block
 * that ends a segment faults there instead of rewriting the header of the
 * next segment, which may be another instance's.  Pages [FA_FIRST_PAGE,
 * FA_GUARD_PAGE) hold spans; the guard is never in one. */
#define FA_GUARD_PAGE (FA_PAGES_PER_SEGMENT - 1)
#define FA_SEGMENT_USABLE_PAGES (FA_GUARD_PAGE - FA_FIRST_PAGE)

#define FA_VA_BITS 47                             /* user address space */
/* The kernel's page size: 4 KiB on x86-64, 4, 16 or 64 KiB on arm64.
 * Read at start-up (os.h); FA_PAGE_SIZE is a multiple of all of them. */
#define FA_OS_PAGE_SIZE fa_os_page_size()

/* Size tiers. */
#define FA_SMALL_MAX 512                /* 16 classes, 16..512 (document) */
#define FA_MEDIUM_MAX 32768             /* 4 classes per doubling */
#define FA_LARGE_MAX ((size_t)2 << 20)  /* a span of pages of its own */
#define FA_ALIGN 16                     /* minimum alignment of every block */

#define FA_SMALL_CLASSES 16
#define FA_MEDIUM_CLASSES 24            /* 640 .. 32768 */
#define FA_NUM_CLASSES (FA_SMALL_CLASSES + FA_MEDIUM_CLASSES)
/* malloc finds the page of sizes up to FA_DIRECT_MAX by (n + 15) >> 4 in
 * the heap's direct table, of larger medium sizes by class (mdirect). */
#define FA_DIRECT_MAX 2048
#define FA_DIRECT_SIZE (FA_DIRECT_MAX / 16 + 1)
#define FA_SMALL_TABLE (FA_SMALL_MAX / 16 + 1)   /* _fa_small_class */

/* How many pages of a class queue a refill looks at before taking a new
 * page, so that a refill does bounded work. */
#define FA_MAX_CANDIDATES 4
/* A class span's never-used blocks are handed out FA_EXTEND_BYTES of them
 * first, then twice as many each time, at least FA_EXTEND_MIN blocks:
 * see fa_page_t's invariants.  One: a block of 4 KiB or more is a step
 * of its own (four of 32 KiB touched 128 KiB for a class that may never
 * hold more than one live block). */
#define FA_EXTEND_BYTES 4096
#define FA_EXTEND_MIN 1
/* Free-span bins: 1..8 pages exactly, then two bins per doubling. */
#define FA_SPAN_BINS 16
/* Heartbeat: every so many generic (slow-path) calls the heap collects
 * remote frees and purges expired free spans. */
#define FA_HEARTBEAT 256
/* At most this many purges (madvise calls) per heartbeat. */
#define FA_PURGE_BATCH 4
/* At most this many free spans, over all heaps, purged by one allocator
 * call that finds some due (_fa_purge_due_run). */
#define FA_PURGE_PER_CALL 16
/* A heap that took over an exited thread's segment by a free gives it back
 * (to the abandoned list, where the next thread that needs a segment
 * takes it) once a span in it is freed while at least half of it is free
 * and the heap has at least this many warm free pages (4 MiB, a segment's
 * worth) in its other segments: the segment's free memory is then not
 * needed here, and a thread that only frees what exited threads left
 * would otherwise pool their segments (mstress: 2.4x glibc's peak RSS;
 * bench/README).  16 pages did as well there, but then larson's threads,
 * which hold 16-59 warm free pages and go on freeing their predecessors'
 * blocks into the segments they took over, gave back 8-38 segments a run
 * (10 s, 2 threads) instead of 1-12. */
#define FA_GIVE_BACK_SPARE_PAGES 64
/* At most this many blocks, and this many bytes of them, of other
 * threads a heap keeps per class to reuse itself (fa_heap_t.rcache): at
 * most 2.5 MiB per thread over all classes, whether or not it ever
 * allocates again. */
#define FA_RCACHE_MAX 64
#define FA_RCACHE_BYTES ((size_t)64 << 10)
/* But a block of another live thread goes back to its page, for the owner
 * to collect and reuse, while fewer than an eighth of the span's blocks
 * plus one, and fewer than this many, wait there (fa_xfree_backlog_max):
 * kept by the freeing thread, a block stays the owner's, so its every
 * later free there is a remote one and it goes round that thread for good
 * (larson's threads free the blocks of a segment another thread took
 * over: 1.25x the allocation rate without that round on mimalloc-bench's
 * larsonN, bench/README).  A longer backlog means the owner does not
 * collect (a thread that allocated, then sleeps): then the freeing thread
 * keeps the block and reuses the memory that would otherwise wait. */
#define FA_XFREE_BACKLOG_MAX 16

/* ------------------------------------------------------------------------
 * Blocks and pages
 * ---------------------------------------------------------------------- */

/* A free block.  Every block is at least 16 bytes, so a free block holds
 * the link and a tag: tag == fa_block_tag(b) marks a block as free, which
 * lets free() spot a double free with one load (confirmed by a list walk
 * before aborting, since live data could match by chance). */
typedef struct fa_block_s {
  struct fa_block_s *next;
  uintptr_t tag;
} fa_block_t;

/* See fa_page_t.xfree.  Block addresses fit in the low 48 bits. */
#define FA_XFREE_SHIFT 48
#define FA_XFREE_COUNT_MAX 0xffffu

typedef enum fa_page_kind_e {
  FA_PAGE_UNUSED = 0,  /* tail page of a span, or not part of any span */
  FA_PAGE_FREE,        /* first page of a free span */
  FA_PAGE_CLASS,       /* first page of a class span */
  FA_PAGE_LARGE,       /* first page of a large span (one block) */
} fa_page_kind_t;

struct fa_heap_s;

/* An allocator instance (fancy_allocator_t).  Every heap and segment
 * belongs to one; the default instance serves the plain fancy_* calls and
 * malloc.  Empty segments (cache, reserve) belong to none and are shared. */
#define FA_MAX_DOMAINS 64   /* the default one and 63 more */
#define FA_DOMAIN_MAGIC 0x46414e4359444f4dULL   /* "FANCYDOM" */
typedef struct fa_domain_s {
  uint64_t magic;           /* FA_DOMAIN_MAGIC while it exists */
  unsigned index;           /* 0 = the default instance */
  size_t arena_size;        /* per-thread retention budget */
  size_t memory_limit;      /* 0 = none */
  bool reclaim, huge_pages, populate;
  bool huge_blocks;         /* huge.c: big blocks in huge-page steps */
  _Atomic size_t mapped;    /* its segments and huge blocks, bytes */
  pthread_key_t key;        /* the thread's heap (not for the default) */
  uint64_t generation;      /* in its handle: a stale handle is caught (instance.c) */
} fa_domain_t;

/* One descriptor per 64 KiB page, in the segment header.  Only the first
 * page of a span carries the span's state; every page of a span records
 * its distance back to the first (span_offset), and the last page of a
 * free span records it too, which is the boundary tag that lets a freed
 * neighbour find the start of this span in O(1).
 *
 * Invariants of a class span owned by heap H (only H writes them):
 *   used = blocks handed out, including blocks other threads have freed
 *          onto xfree that H has not collected yet;
 *   capacity = blocks ever handed out (0 on pages that are not class
 *          spans, so that free's inline check fails on them);
 *   capacity - used = |free| + |local_free| (blocks handed out and freed);
 *   capacity <= reserved = blocks that fit in the span.
 * No free list is ever carved: once free and local_free are empty,
 * malloc hands out block number `capacity` and counts it (fa_page_take),
 * up to `limit` (capacity <= limit <= reserved).  limit is raised
 * (fa_page_extend) only when free and local_free are empty, by malloc
 * itself, or by the slow path after it moved the other lists over and got
 * fewer blocks back than a quarter of the span's first step (or none:
 * fa_page_extend_if_short): blocks freed into the
 * span are reused before it hands out more never-used ones, so its memory
 * is touched as the program needs it.  Each raise adds `step` blocks and
 * doubles it (FA_EXTEND_BYTES of blocks first, at least FA_EXTEND_MIN), so
 * that a span whose frees go elsewhere (a large, randomly freed working
 * set) reaches its end in a few raises, as mimalloc extends its pages.
 * The slow path, not malloc's inline path, moves local_free over: a
 * malloc that took the block free() had just pushed would wait on that
 * store (measured: glibc-thread 1.4x slower).
 * In a span that was zero when it became a class span (fresh or purged
 * memory) that writes nothing into the block, so the first touch, and the
 * page fault, happen in the caller and not inside malloc; in a reused
 * span the block's tag word is cleared, since it may still hold the free
 * tag of an earlier life.
 * Fields that statistics read from other threads (kind, cls, used, bsize,
 * span_pages) are written with relaxed atomic stores.  `head` (every page)
 * and span_offset (every page; on the last page of a free span it is the
 * boundary tag) both lead to the first page: head for the fast paths,
 * span_offset for index arithmetic. */
typedef struct fa_page_s {
  /* hot: malloc/free fast paths, all in the first 64 bytes */
  fa_block_t *free;             /* malloc pops here */
  fa_block_t *local_free;       /* owner frees push here */
  struct fa_page_s *head;       /* the first page of this page's span */
  uint8_t *start;               /* first block */
  uint32_t inv;                 /* offset -> block index, see fa_block_index */
  uint32_t used;
  uint32_t bsize;               /* block size (span size for large) */
  uint32_t capacity;            /* blocks handed out so far; 0 unless class */
  uint32_t reserved;            /* blocks that fit in the span */
  /* FA_FREE_MARK while the class span holds a block sampled by the heap
   * profiler (prof.c), else 0: OR-ed into the block index by free's
   * inline check, it sends every free of the span to the generic path,
   * which drops the sample.  Written only by the span's owner. */
  uint32_t free_mark;
  uint8_t shift;                /* offset -> block index, see fa_block_index */
  uint8_t kind;                 /* fa_page_kind_t */
  uint8_t cls;                  /* size class of a class span */
  uint8_t zeroed;               /* span memory known to be zero */
  uint32_t limit;               /* never-used blocks handed out up to here */
  /* cold */
  uint8_t dirty;                /* on the heap's dirty list */
  uint8_t in_bin;               /* on one of the heap's span bins */
  uint16_t step;                /* blocks the next raise of limit adds */
  uint32_t span_offset;         /* pages back to the span's first page */
  /* blocks freed by other threads: the list's head, and in the top
   * 64 - FA_XFREE_SHIFT bits how many blocks it holds (fa_xfree_list,
   * fa_xfree_count), so that the owner takes the batch without walking
   * the list (every block of it is a cache miss) */
  _Atomic uintptr_t xfree;
  /* queue links: class queue (class span) or span bin (free span) */
  struct fa_page_s *next;
  struct fa_page_s *prev;
  /* free spans only: dirty list (not yet purged), oldest first */
  struct fa_page_s *dnext;
  struct fa_page_s *dprev;
  uint64_t free_time;           /* ms, when the span became free */
  uint32_t span_pages;          /* pages in this span (first page) */
  /* sampled blocks live in the class span (prof.c): counted up by the
   * owner when it samples, down by whichever thread frees one, in the low
   * 16 bits; in the high 16 the block index of the sample when it is the
   * only one since the count was 0, else FA_SAMPLE_ANY (see
   * fa_page_may_be_sampled) */
  _Atomic uint32_t samples;
} fa_page_t;

#define FA_FREE_MARK 0x80000000u   /* above any block index of a span */
#define FA_SAMPLE_ANY 0xffffu      /* fa_page_t.samples: no one index known */
#define FA_SAMPLE_COUNT(w) ((w) & 0xffffu)

/* A power of two, so that finding a page from an address is a shift. */
_Static_assert(sizeof(fa_page_t) == 128, "fa_page_t must be 128 bytes");

#define FA_SEGMENT_MAGIC 0x46414e4359534547ULL   /* "FANCYSEG" */

/* The states of a segment: see "Life of a segment" at the top. */
typedef enum fa_segment_state_e {
  FA_SEG_OWNED = 1,    /* belongs to a live heap */
  FA_SEG_ABANDONED,    /* its thread exited; waiting to be taken over */
  FA_SEG_CACHED,       /* empty, kept mapped for reuse */
  FA_SEG_ORPHANED,     /* in a forked child: its thread vanished mid-flight */
  FA_SEG_RESERVED,     /* empty and purged, charged to nothing, for reuse */
} fa_segment_state_t;

/* The segment header at the base of each 4 MiB segment. */
typedef struct fa_segment_s {
  uint64_t cookie;                    /* FA_SEGMENT_MAGIC ^ address ^ secret */
  _Atomic(struct fa_heap_s *) heap;   /* owner, NULL when abandoned/cached */
  /* == heap, except NULL under FANCY_CHECK: free's inline path compares
   * only this, so that checked frees all take the generic path. */
  _Atomic(struct fa_heap_s *) fast_heap;
  fa_domain_t *domain;                /* instance, while owned or abandoned */
  _Atomic uint64_t xmask;             /* pages with pending remote frees */
  uint32_t state;                     /* fa_segment_state_t, under the lock */
  uint32_t free_pages;                /* pages in free spans */
  /* taken over by a free (_fa_segment_reclaim): given back as soon as it
   * is empty, whatever the owner's retention budget */
  bool reclaimed;
  /* given back while its owner lived on (fa_segment_give_back): ABANDONED
   * and left for a thread that needs a segment, not for a free to take
   * over, until fa_segment_take (read without the lock by free) */
  bool given_back;
  uint64_t cache_time;                /* ms, when it entered the cache */
  /* ABANDONED only, under fa_segments_lock: the oldest free_time of its
   * dirty free spans, 0 when none is dirty (see "Life of a span") */
  uint64_t dirty_time;
  /* all segments (global, under fa_segments_lock) */
  struct fa_segment_s *gnext, *gprev;
  /* the owner's segments, or the abandoned / cached list (same lock) */
  struct fa_segment_s *next, *prev;
  fa_page_t pages[FA_PAGES_PER_SEGMENT];
} fa_segment_t;

/* ------------------------------------------------------------------------
 * Heaps
 * ---------------------------------------------------------------------- */
typedef struct fa_page_queue_s {
  fa_page_t *first;
  fa_page_t *last;
} fa_page_queue_t;

/* A thread's heap.  `direct` maps (n + 15) >> 4 to the current page of
 * the size class, for sizes up to FA_DIRECT_MAX, and `mdirect` a medium
 * class to its current page, so malloc's fast path is one TLS load, one
 * table load and a list pop.  A fresh thread points at fa_heap_empty, whose
 * direct entries all lead to a page with no free blocks: its first malloc
 * falls into the slow path, which sets the thread up (no init test on the
 * fast path). */
typedef struct fa_heap_s {
  /* Bytes until the next sample of the heap profiler, counted down by
   * malloc (prof.c); INT64_MAX, never reached, when it does not profile.
   * Written by the owner only. */
  int64_t prof_left;
  fa_page_t *direct[FA_DIRECT_SIZE];
  fa_page_t *mdirect[FA_MEDIUM_CLASSES];  /* medium classes' current pages */
  fa_domain_t *domain;                /* the instance it allocates for */
  fa_page_queue_t queues[FA_NUM_CLASSES];
  fa_page_t *bins[FA_SPAN_BINS];      /* free spans, by fa_span_bin() */
  uint32_t bin_mask;                  /* bit b set: bins[b] non-empty */
  fa_page_t *dirty_first;             /* free spans not purged, oldest first */
  fa_page_t *dirty_last;
  size_t dirty_pages;
  fa_segment_t *segments;             /* owned segments */
  size_t segment_count;
  /* Guards the free spans (bins, dirty list, free_pages) and the segment
   * list, so that another thread can purge this heap's free spans or take
   * its empty segments while its own thread is idle.  Taken by the owner
   * in segment.c's span functions, never on the malloc/free fast paths; by
   * others only with trylock (fa_heap_trylock).  Recursive, since the span
   * functions nest: `lock_owner` is the holding thread's id (the address of
   * its TLS heap pointer), 0 when free; `lock_depth` is written by the
   * holder only.  A lock word rather than a pthread mutex: the owner takes
   * it uncontended on every span operation, and a recursive pthread mutex
   * cost the ring workload 3 instructions per malloc+free pair. */
  _Atomic uintptr_t lock_owner;
  uint32_t lock_depth;
  _Atomic int xpending;               /* hint: some owned page has xfree */
  /* Blocks of other threads' pages that this thread freed, kept to serve
   * its own next mallocs of the class, most recent first (free.c,
   * fa_rcache_put).  rcache[cls].free is the list, in a page descriptor
   * so that the direct tables can lead malloc's inline pop to it; its
   * `used` counts the pops, rcache_pushed the pushes. */
  fa_page_t rcache[FA_NUM_CLASSES];
  uint32_t rcache_pushed[FA_NUM_CLASSES];
  uint64_t generic_count;
  uint64_t last_purge_ms;
  pthread_t thread;                   /* its thread (for fork) */
  bool alive;
  struct fa_heap_s *pool_next;        /* all heaps (live and parked) */
  struct fa_heap_s *free_next;        /* parked heaps */
} fa_heap_t;

#endif /* FA_TYPES_H */
