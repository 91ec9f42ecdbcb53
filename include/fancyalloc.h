/* SPDX-License-Identifier: MIT */
/*
 * fancyalloc.h - the public API of libfancyalloc.
 *
 * A per-thread-heap memory allocator.  Every call is thread-safe; a block
 * may be freed by any thread.  Link with `pkg-config --libs fancyalloc`.
 * Linking libfancyalloc never replaces the program's malloc: that is what
 * the separate libfancymalloc does (see fancyalloc(7)).
 */
#ifndef FANCYALLOC_H
#define FANCYALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define FANCY_VERSION_MAJOR 0
#define FANCY_VERSION_MINOR 1
#define FANCY_VERSION_PATCH 0
#define FANCY_VERSION "0.1.0"

#if defined(__GNUC__) || defined(__clang__)
#  define FANCY_API __attribute__((visibility("default")))
#  define FANCY_ATTR_MALLOC __attribute__((malloc, warn_unused_result))
#  define FANCY_ATTR_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#  define FANCY_ATTR_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#  define FANCY_ATTR_ALLOC_ALIGN(n) __attribute__((alloc_align(n)))
#  define FANCY_ATTR_NODISCARD __attribute__((warn_unused_result))
#  if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
/* The call looks at the block's address, never at its contents. */
#    define FANCY_ATTR_NO_ACCESS(n) __attribute__((access(none, n)))
#  endif
#else
#  define FANCY_API
#  define FANCY_ATTR_MALLOC
#  define FANCY_ATTR_ALLOC_SIZE(n)
#  define FANCY_ATTR_ALLOC_SIZE2(n, m)
#  define FANCY_ATTR_ALLOC_ALIGN(n)
#  define FANCY_ATTR_NODISCARD
#endif

#ifndef FANCY_ATTR_NO_ACCESS
#  define FANCY_ATTR_NO_ACCESS(n)
#endif

#ifdef __cplusplus
#  define FANCY_NOEXCEPT noexcept
extern "C" {
#else
#  define FANCY_NOEXCEPT
#endif

/* ------------------------------------------------------------------------
 * Allocation (C11 / POSIX semantics)
 * ---------------------------------------------------------------------- */

/* Allocate size bytes, 16-byte aligned.  size 0 returns a unique pointer.
 * NULL with errno ENOMEM on failure. */
FANCY_API FANCY_ATTR_MALLOC FANCY_ATTR_ALLOC_SIZE(1)
void *fancy_malloc(size_t size) FANCY_NOEXCEPT;

/* Release a block from any fancy_* allocation call, from any thread.
 * NULL does nothing.  A pointer this library did not return, or one freed
 * twice, aborts the process with a "fancyalloc: ..." message on stderr. */
FANCY_API void fancy_free(void *ptr) FANCY_NOEXCEPT;

/* nmemb * size zeroed bytes; NULL + ENOMEM when the product overflows. */
FANCY_API FANCY_ATTR_MALLOC FANCY_ATTR_ALLOC_SIZE2(1, 2)
void *fancy_calloc(size_t nmemb, size_t size) FANCY_NOEXCEPT;

/* Resize, keeping min(old, new) bytes; grows in place where it can.
 * realloc(NULL, n) = malloc(n); realloc(p, 0) frees p and returns NULL,
 * as glibc does.  On failure p is left intact and NULL + ENOMEM is
 * returned. */
FANCY_API FANCY_ATTR_NODISCARD FANCY_ATTR_ALLOC_SIZE(2)
void *fancy_realloc(void *ptr, size_t size) FANCY_NOEXCEPT;

/* C11 aligned_alloc: alignment must be a power of two (any size is
 * accepted, as glibc does); otherwise NULL + EINVAL. */
FANCY_API FANCY_ATTR_MALLOC FANCY_ATTR_ALLOC_ALIGN(1) FANCY_ATTR_ALLOC_SIZE(2)
void *fancy_aligned_alloc(size_t alignment, size_t size) FANCY_NOEXCEPT;

/* POSIX posix_memalign: returns 0, EINVAL (alignment not a power of two
 * multiple of sizeof(void *)) or ENOMEM; errno is left untouched and
 * *memptr is only written on success. */
FANCY_API FANCY_ATTR_NODISCARD
int fancy_posix_memalign(void **memptr, size_t alignment, size_t size) FANCY_NOEXCEPT;

/* Usable bytes in the block at ptr (>= the size asked for); 0 for NULL. */
FANCY_API FANCY_ATTR_NO_ACCESS(1)
size_t fancy_malloc_usable_size(const void *ptr) FANCY_NOEXCEPT;

/* Return free memory of the calling thread's heap and of the shared caches
 * to the OS now, keeping at most pad bytes of free memory cached.
 * Returns 1 if any memory was released, else 0 (like malloc_trim). */
FANCY_API int fancy_trim(size_t pad) FANCY_NOEXCEPT;

/* ------------------------------------------------------------------------
 * Diagnostics
 * ---------------------------------------------------------------------- */

#define FANCY_STATS_MAX_CLASSES 64

/* One size class.  Entries past fancy_stats_t.num_classes are zero. */
typedef struct fancy_class_stats {
  size_t block_size;     /* bytes per block of this class */
  size_t blocks_live;    /* blocks handed out and not yet freed */
  size_t pages;          /* 64 KiB pages (or page runs) holding this class */
} fancy_class_stats_t;

/* A snapshot of the allocator.  Figures from threads other than the caller
 * are read without stopping them, so they are exact only when those threads
 * are quiet. */
typedef struct fancy_stats {
  size_t bytes_live;        /* bytes in live blocks (counted at block size) */
  size_t bytes_huge;        /* of which in huge blocks mapped on their own */
  size_t bytes_mapped;      /* address space currently mapped from the OS */
  size_t bytes_committed;   /* mapped memory in use by pages or kept warm */
  size_t bytes_purged;      /* returned to the OS since start (cumulative) */
  size_t segments;          /* 4 MiB segments currently mapped */
  size_t segments_abandoned;/* segments of exited threads not yet taken over */
  size_t segments_cached;   /* empty segments kept for reuse */
  size_t huge_blocks;       /* live huge blocks */
  size_t threads;           /* thread heaps alive now */
  size_t threads_created;   /* thread heaps initialised since start */
  size_t remote_frees;      /* blocks freed by a thread other than the owner
                               and collected by the owner since start */
  size_t mmap_calls;        /* mmap/mremap calls since start */
  size_t purge_calls;       /* madvise/munmap calls that returned memory */
  size_t memory_limit;      /* FANCY_MEMORY_LIMIT in bytes, 0 = none */
  size_t num_classes;       /* used entries of classes[] */
  fancy_class_stats_t classes[FANCY_STATS_MAX_CLASSES];
  /* Added in 0.1.0 for containers (fancyalloc(7), "Containers"); an
   * older library leaves them as they were. */
  size_t memory_limit_hits; /* requests for memory refused by a hard limit
                               (FANCY_MEMORY_LIMIT or an instance's) */
  size_t soft_limit;        /* FANCY_MEMORY_SOFT_LIMIT in bytes, 0 = none */
  size_t soft_limit_hits;   /* times resident memory passed the soft limit
                               and everything free was given back */
  size_t bytes_resident;    /* what the soft limit bounds: committed bytes
                               plus huge mappings, live or cached */
} fancy_stats_t;

/* Fill *stats.  Pass sizeof(*stats) as size, so that a program built
 * against an older, smaller fancy_stats_t keeps working: only the first
 * size bytes are written.  Returns 0, or -1 with errno EINVAL if stats is
 * NULL. */
FANCY_API int fancy_stats_get(fancy_stats_t *stats, size_t size) FANCY_NOEXCEPT;

/* Print the statistics in human-readable form to out (stderr if NULL). */
FANCY_API void fancy_print_stats(FILE *out) FANCY_NOEXCEPT;

/* Walk the process's heaps and check their invariants (segment headers,
 * page-run boundary tags, free lists and counts of the calling thread's
 * heap and of abandoned segments).  Returns true when all is consistent;
 * on the first inconsistency prints one "fancyalloc: ..." line to stderr
 * and returns false. */
FANCY_API bool fancy_validate_heap(void) FANCY_NOEXCEPT;

/* Report live blocks to stderr, per size class.  Returns true if any
 * block is still live (a leak, when called at the end of a program). */
FANCY_API bool fancy_check_leaks(void) FANCY_NOEXCEPT;

/* The library's version string, e.g. "0.1.0" (may differ from
 * FANCY_VERSION, which is the header's). */
FANCY_API const char *fancy_version(void) FANCY_NOEXCEPT;

/* ------------------------------------------------------------------------
 * Heap profiling, statistics as JSON, and a walk over live blocks
 * ---------------------------------------------------------------------- */

/* Write the sampled heap profile (FANCY_PROF=1) to path, or when path is
 * NULL to <FANCY_PROF_PREFIX>.<pid>.<n>.heap, in gperftools' heap-profile
 * text format that google-pprof and jeprof read.  Returns 0, or -1 with
 * errno ENOTSUP when profiling is off, or the errno of open/write. */
FANCY_API int fancy_prof_dump(const char *path) FANCY_NOEXCEPT;

/* The statistics as one JSON document (schema in fancy_stats_json(3)),
 * written into buf as snprintf does: at most size bytes including the
 * terminating NUL.  Returns the length of the whole document, so a return
 * >= size means it was cut short. */
FANCY_API size_t fancy_stats_json(char *buf, size_t size) FANCY_NOEXCEPT;

/* The same document written to out (stderr if NULL), with a newline.
 * Returns 0, or -1 (errno set) if writing failed. */
FANCY_API int fancy_stats_json_print(FILE *out) FANCY_NOEXCEPT;

/* Called once per live block; a nonzero return stops the walk and is
 * returned by the walk. */
typedef int (*fancy_visit_fn)(void *block, size_t size, void *arg);

/* Call fn for every live block in the calling thread's heap (size is the
 * usable size).  fn must not allocate or free through libfancyalloc.
 * Returns 0, fn's nonzero value, or -1 with errno EINVAL if fn is NULL. */
FANCY_API int fancy_heap_visit(fancy_visit_fn fn, void *arg) FANCY_NOEXCEPT;

/* The same over every heap of the process (every thread's, those of
 * exited threads, and huge blocks).  See fancy_heap_visit(3) for what it
 * guarantees while other threads allocate and free. */
FANCY_API int fancy_heap_visit_all(fancy_visit_fn fn, void *arg) FANCY_NOEXCEPT;

/* ------------------------------------------------------------------------
 * Allocator instances (the design document's FancyPerThreadAllocator)
 *
 * An instance has its own per-thread heaps: two instances never share
 * memory, and fancy_allocator_destroy() releases everything an instance
 * holds at once, live blocks included (region-style freeing).  A block
 * must be freed into the instance that allocated it; anything else aborts
 * with a "fancyalloc: ..." message.  The fancy_* calls above are the
 * default instance, fancy_allocator_default().
 * ---------------------------------------------------------------------- */

typedef struct fancy_allocator fancy_allocator_t;

/* Zero (or a NULL config) means the default for every field. */
typedef struct fancy_allocator_config {
  size_t arena_size;    /* per-thread arena budget in bytes (default 64 MiB) */
  size_t memory_limit;  /* most memory the instance maps (default: none) */
  int reclamation;      /* > 0 on, < 0 off, 0 the process setting (FANCY_RECLAIM) */
  int huge_pages;       /* > 0 on, < 0 off, 0 the process setting (FANCY_HUGE_PAGES) */
  int populate;         /* > 0 on, < 0 off, 0 the process setting (FANCY_POPULATE) */
} fancy_allocator_config_t;

/* A new instance; NULL with errno ENOMEM, or EAGAIN when the process has
 * no room for more instances. */
FANCY_API FANCY_ATTR_NODISCARD
fancy_allocator_t *fancy_allocator_create(const fancy_allocator_config_t *config) FANCY_NOEXCEPT;

/* Release every block and all memory of the instance.  No thread may use
 * it or its blocks afterwards.  NULL and the default instance are left
 * alone. */
FANCY_API void fancy_allocator_destroy(fancy_allocator_t *allocator) FANCY_NOEXCEPT;

/* The instance behind the plain fancy_* calls. */
FANCY_API fancy_allocator_t *fancy_allocator_default(void) FANCY_NOEXCEPT;

/* As fancy_malloc() and friends, in the given instance. */
FANCY_API FANCY_ATTR_MALLOC FANCY_ATTR_ALLOC_SIZE(2)
void *fancy_allocator_malloc(fancy_allocator_t *allocator, size_t size) FANCY_NOEXCEPT;
FANCY_API FANCY_ATTR_MALLOC FANCY_ATTR_ALLOC_SIZE2(2, 3)
void *fancy_allocator_calloc(fancy_allocator_t *allocator, size_t nmemb, size_t size) FANCY_NOEXCEPT;
FANCY_API FANCY_ATTR_NODISCARD FANCY_ATTR_ALLOC_SIZE(3)
void *fancy_allocator_realloc(fancy_allocator_t *allocator, void *ptr, size_t size) FANCY_NOEXCEPT;
FANCY_API FANCY_ATTR_MALLOC FANCY_ATTR_ALLOC_ALIGN(2) FANCY_ATTR_ALLOC_SIZE(3)
void *fancy_allocator_aligned_alloc(fancy_allocator_t *allocator, size_t alignment,
                                    size_t size) FANCY_NOEXCEPT;
FANCY_API void fancy_allocator_free(fancy_allocator_t *allocator, void *ptr) FANCY_NOEXCEPT;
FANCY_API FANCY_ATTR_NO_ACCESS(2)
size_t fancy_allocator_usable_size(fancy_allocator_t *allocator, const void *ptr) FANCY_NOEXCEPT;
FANCY_API void fancy_allocator_print_stats(fancy_allocator_t *allocator, FILE *out) FANCY_NOEXCEPT;
FANCY_API bool fancy_allocator_validate(fancy_allocator_t *allocator) FANCY_NOEXCEPT;
FANCY_API bool fancy_allocator_check_leaks(fancy_allocator_t *allocator) FANCY_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* FANCYALLOC_H */
