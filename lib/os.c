/* SPDX-License-Identifier: MIT */
/*
 * os.c - mmap, munmap, madvise and mremap, with the process-wide memory
 * limit and the mapping counters.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

long _fa_os_fail_after = 0;
size_t _fa_os_page = 0;

/* AT_PAGESZ rather than sysconf: no libc state, safe before main and from
 * inside malloc.  Anything but a power of two from 4 KiB to a segment is
 * not a page size Linux has; keep 4 KiB then. */
size_t _fa_os_page_init(void) {
  size_t page = (size_t)getauxval(AT_PAGESZ);
  if (page < 4096 || page > FA_SEGMENT_SIZE || (page & (page - 1)) != 0) page = 4096;
  __atomic_store_n(&_fa_os_page, page, __ATOMIC_RELAXED);
  return page;
}

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

bool _fa_os_charge(size_t size) {
  return _fa_limit_charge(&_fa_counters.mapped,
                          __atomic_load_n(&_fa_opt.memory_limit, __ATOMIC_RELAXED), size);
}

/* A new mapping: the failure injection of the tests, then the charge. */
static bool fa_os_reserve_quota(size_t size) {
  if (fa_unlikely(_fa_os_fail_after != 0)) {
    if (__atomic_sub_fetch(&_fa_os_fail_after, 1, __ATOMIC_RELAXED) <= 0) {
      __atomic_store_n(&_fa_os_fail_after, -1, __ATOMIC_RELAXED);
      return false;
    }
  }
  return _fa_os_charge(size);
}

static void *fa_os_mmap(void *hint, size_t size, int prot, int flags) {
  fa_count(mmap_calls, 1);
  void *p = mmap(hint, size, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Reserve size bytes of address space aligned to align: over-map, then
 * trim the unaligned head and tail.  MAP_NORESERVE: what stays is
 * committed by fa_os_commit (or is PROT_NONE, a remap's destination).
 * The guard bytes before it stay reserved too, never to be mapped by
 * anyone (a chunk of segments: see _fa_os_map_segment). */
static void *fa_os_reserve_aligned(size_t size, size_t align, int prot, size_t guard) {
  size_t total = size + align - FA_OS_PAGE_SIZE + guard;
  if (total < size) return NULL;
  uint8_t *raw = fa_os_mmap(NULL, total, prot, MAP_NORESERVE);
  if (raw == NULL) return NULL;
  uint8_t *aligned =
      (uint8_t *)(((uintptr_t)raw + guard + align - 1) & ~(uintptr_t)(align - 1));
  size_t head = (size_t)(aligned - raw) - guard;
  size_t tail = total - head - guard - size;
  if (head) munmap(raw, head);
  if (tail) munmap(aligned + size, tail);
  return aligned;
}

/* FANCY_POPULATE and FANCY_HUGE_PAGES on a range just mapped. */
static void fa_os_prepare(void *p, size_t size, bool populate, bool huge_pages) {
#ifdef MAP_POPULATE
  /* Replace the fresh mapping in place by a pre-faulted one. */
  if (populate) fa_os_mmap(p, size, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_POPULATE);
#else
  (void)populate;
#endif
#ifdef MADV_HUGEPAGE
  if (huge_pages) madvise(p, size, MADV_HUGEPAGE);
#else
  (void)huge_pages;
#endif
}

/* Commit size bytes of address space reserved by fa_os_reserve_aligned:
 * map them again, read/write and without MAP_NORESERVE, so that the
 * kernel's overcommit policy (vm.overcommit_memory) applies as it does to
 * glibc's mmapped blocks: a request it would refuse fails here with
 * ENOMEM instead of succeeding and killing the program when it touches
 * the memory.  On failure the reservation is unmapped. */
static bool fa_os_commit(void *p, size_t size) {
  fa_count(mmap_calls, 1);
  void *q = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (q == MAP_FAILED) {
    munmap(p, size);
    return false;
  }
  return true;
}

void *_fa_os_map_aligned(size_t size, size_t align, bool populate, bool huge_pages) {
  if (!fa_os_reserve_quota(size)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = fa_os_reserve_aligned(size, align, PROT_NONE, 0);
  if (p == NULL || !fa_os_commit(p, size)) {
    fa_uncount(mapped, size);
    errno = ENOMEM;
    return NULL;
  }
  fa_os_prepare(p, size, populate, huge_pages);
  return p;
}

/* New segments are carved from chunks of address space mapped a few at a
 * time (1, 2, 4, ... up to FA_SEGMENT_CHUNK_MAX segments per mmap): every
 * mmap and munmap takes the process's memory-map lock for writing and
 * stalls the page faults of every other thread, so one mmap per 4 MiB
 * segment (plus two munmaps to align it) cost the ring workload several
 * percent of its time at 2 and more threads.  Segments are never unmapped,
 * so a chunk never needs to be given back whole.  A chunk is committed
 * (charged to the kernel's overcommit accounting) when it is mapped; the
 * memory limit counts segments handed out. */
#define FA_SEGMENT_CHUNK_MAX 16
static pthread_mutex_t fa_chunk_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *fa_chunk_next, *fa_chunk_end;
static size_t fa_chunk_segments = 1;

void *_fa_os_map_segment(bool populate, bool huge_pages) {
  if (!fa_os_reserve_quota(FA_SEGMENT_SIZE)) {
    errno = ENOMEM;
    return NULL;
  }
  pthread_mutex_lock(&fa_chunk_lock);
  if (fa_chunk_next == fa_chunk_end) {
    size_t bytes = fa_chunk_segments * FA_SEGMENT_SIZE;
    uint8_t *chunk = fa_os_reserve_aligned(bytes, FA_SEGMENT_SIZE, PROT_NONE, FA_PAGE_SIZE);
    if (chunk != NULL && !fa_os_commit(chunk, bytes)) chunk = NULL;
    if (chunk == NULL && bytes > FA_SEGMENT_SIZE) {   /* short of address space */
      bytes = FA_SEGMENT_SIZE;
      chunk = fa_os_reserve_aligned(bytes, FA_SEGMENT_SIZE, PROT_NONE, FA_PAGE_SIZE);
      if (chunk != NULL && !fa_os_commit(chunk, bytes)) chunk = NULL;
    }
    if (chunk == NULL) {
      pthread_mutex_unlock(&fa_chunk_lock);
      fa_uncount(mapped, FA_SEGMENT_SIZE);
      errno = ENOMEM;
      return NULL;
    }
    fa_chunk_next = chunk;
    fa_chunk_end = chunk + bytes;
    if (fa_chunk_segments < FA_SEGMENT_CHUNK_MAX) fa_chunk_segments *= 2;
  }
  void *p = fa_chunk_next;
  fa_chunk_next += FA_SEGMENT_SIZE;
  pthread_mutex_unlock(&fa_chunk_lock);
  fa_os_prepare(p, FA_SEGMENT_SIZE, populate, huge_pages);
  /* The guard page (types.h, FA_GUARD_PAGE); the first segment of a chunk
   * has one before it as well (the chunk's reservation keeps FA_PAGE_SIZE
   * in front), against an overrun of a huge block mapped right below.
   * Should the kernel refuse (its count of mappings exhausted), the
   * segment works unguarded. */
  mprotect((uint8_t *)p + FA_GUARD_PAGE * FA_PAGE_SIZE, FA_PAGE_SIZE, PROT_NONE);
  return p;
}

/* fork: held across it, like the other global locks (init.c). */
void _fa_os_lock(void) { pthread_mutex_lock(&fa_chunk_lock); }
void _fa_os_unlock(void) { pthread_mutex_unlock(&fa_chunk_lock); }

void *_fa_os_map_table(size_t size) {
  return fa_os_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_NORESERVE);
}

void *_fa_os_map_meta(size_t size) {
  return fa_os_mmap(NULL, size, PROT_READ | PROT_WRITE, 0);
}

void _fa_os_unmap_table(void *p, size_t size) {
  if (p != NULL && size != 0) munmap(p, size);
}

void _fa_os_unmap(void *p, size_t size) {
  if (p == NULL || size == 0) return;
  munmap(p, size);
  fa_uncount(mapped, size);
  fa_count(purge_calls, 1);
  fa_count(purged, size);
}

void _fa_os_purge(void *p, size_t size) {
  if (size == 0) return;
  /* MADV_DONTNEED, not MADV_FREE: the memory leaves RSS at once, which is
   * what users and container limits see (MADV_FREE pages linger as
   * LazyFree until the kernel is under pressure). */
  if (madvise(p, size, MADV_DONTNEED) != 0) {
    /* Locked memory (mlockall) refuses: callers rely on the pages
     * reading as zero afterwards (calloc, malloc's in-place hand-out). */
    memset(p, 0, size);
    return;
  }
  fa_count(purge_calls, 1);
  fa_count(purged, size);
}

void *_fa_os_remap(void *p, size_t old_size, size_t new_size, size_t align, bool huge_pages) {
  if (new_size <= old_size) {
    if (new_size < old_size) {
      munmap((uint8_t *)p + new_size, old_size - new_size);
      fa_uncount(mapped, old_size - new_size);
    }
    return p;
  }
  size_t extra = new_size - old_size;
  if (!fa_os_reserve_quota(extra)) {
    errno = ENOMEM;
    return NULL;
  }
  fa_count(mmap_calls, 1);
  /* A call that succeeds leaves errno as it was (POSIX: malloc, realloc
   * and posix_memalign set it only when they fail), though the first try
   * may fail. */
  int saved_errno = errno;
  /* First try to grow in place. */
  void *q = mremap(p, old_size, new_size, 0);
  if (q != MAP_FAILED) return q;
  /* Move it: reserve an aligned destination, then let the kernel move the
   * pages there (no copy). */
  void *dest = fa_os_reserve_aligned(new_size, align, PROT_NONE, 0);
  if (dest != NULL) {
    fa_count(mmap_calls, 1);
    q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
    if (q != MAP_FAILED) {
#ifdef MADV_HUGEPAGE
      if (huge_pages) madvise(q, new_size, MADV_HUGEPAGE);
#endif
      errno = saved_errno;
      return q;
    }
    munmap(dest, new_size);
  }
  fa_uncount(mapped, extra);
  errno = ENOMEM;
  return NULL;
}

bool _fa_os_move(void *src, size_t size, void *dst) {
  fa_count(mmap_calls, 1);
  if (mremap(src, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == MAP_FAILED) return false;
  fa_uncount(mapped, size);   /* dst's own pages are gone */
  return true;
}

size_t _fa_os_thp_size(void) {
  /* Read once; two threads that race here read the same files. */
  static _Atomic size_t known;   /* 0 unknown, 1 none, else the size */
  size_t v = atomic_load_explicit(&known, memory_order_relaxed);
  if (v != 0) return v == 1 ? 0 : v;
  char buf[128];
  v = 1;
  if (_fa_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf) > 0 &&
      strstr(buf, "[never]") == NULL &&
      _fa_read_file("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", buf, sizeof buf) > 0 &&
      strtoul(buf, NULL, 10) == ((size_t)2 << 20))
    v = (size_t)2 << 20;
  atomic_store_explicit(&known, v, memory_order_relaxed);
  return v == 1 ? 0 : v;
}
