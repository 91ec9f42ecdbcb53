/* SPDX-License-Identifier: MIT */
/*
 * os.h - the one seam between the allocator and the kernel.  Only os.c
 * includes <sys/mman.h>; every mapping, purge and remap goes through here,
 * so the counters stay right and tests can make mapping fail.
 */
#ifndef FA_OS_H
#define FA_OS_H

#include <stdbool.h>
#include <stddef.h>

/* The kernel's page size (FA_OS_PAGE_SIZE), from the auxiliary vector
 * (AT_PAGESZ) at the first call.  Huge blocks are rounded up to it, and
 * every mapping, unmap, purge and remap is aligned to it: a 16 or 64 KiB
 * page kernel refuses a 4 KiB-aligned munmap or madvise (EINVAL).  Tests
 * store another power of two in _fa_os_page before allocating, to check
 * the calls a 16 or 64 KiB page kernel would get (tests/check_pagesize.c). */
extern size_t _fa_os_page FA_HIDDEN;
FA_HIDDEN size_t _fa_os_page_init(void);
static inline size_t fa_os_page_size(void) {
  size_t page = __atomic_load_n(&_fa_os_page, __ATOMIC_RELAXED);
  return page != 0 ? page : _fa_os_page_init();
}

/* Map size bytes (a multiple of FA_OS_PAGE_SIZE) read/write, aligned to
 * align (a power of two >= FA_OS_PAGE_SIZE).  Honours FANCY_MEMORY_LIMIT, FANCY_POPULATE and
 * FANCY_HUGE_PAGES.  NULL (errno ENOMEM) on failure. */
FA_HIDDEN void *_fa_os_map_aligned(size_t size, size_t align, bool populate, bool huge_pages);
/* A new 4 MiB segment, aligned to 4 MiB, carved from address space mapped
 * a few segments at a time.  Honours the same options and limit.  NULL
 * (errno ENOMEM) on failure.  Never unmapped. */
FA_HIDDEN void *_fa_os_map_segment(bool populate, bool huge_pages);
FA_HIDDEN void _fa_os_lock(void);     /* fork: the chunk lock (a leaf) */
FA_HIDDEN void _fa_os_unlock(void);
/* Unmap what _fa_os_map_aligned returned. */
FA_HIDDEN void _fa_os_unmap(void *p, size_t size);
/* Give the pages back to the kernel (they read as zero afterwards). */
FA_HIDDEN void _fa_os_purge(void *p, size_t size);
/* Resize a mapping made by _fa_os_map_aligned, keeping its alignment and
 * contents; may move it.  NULL (errno ENOMEM) on failure, old intact. */
FA_HIDDEN void *_fa_os_remap(void *p, size_t old_size, size_t new_size, size_t align,
                             bool huge_pages);
/* Move the pages of [src, src + size) to dst, over pages of a mapping of
 * ours that they replace (the kernel moves the page tables: nothing is
 * copied, nothing faults).  src is unmapped afterwards.  false, nothing
 * changed, if the kernel refuses. */
FA_HIDDEN bool _fa_os_move(void *src, size_t size, void *dst);
/* The kernel's transparent huge page (PMD) size when it is 2 MiB and THP
 * is not "never" (/sys/kernel/mm/transparent_hugepage), else 0: a 16 or
 * 64 KiB page kernel's are 32 and 512 MiB, no step for a malloc block. */
FA_HIDDEN size_t _fa_os_thp_size(void);
/* An internal table of size bytes (zero-filled, address space reserved
 * without commit charge, not counted against the memory limit). */
FA_HIDDEN void *_fa_os_map_table(size_t size);
FA_HIDDEN void _fa_os_unmap_table(void *p, size_t size);
/* Allocator metadata of size bytes (heaps): committed like any mapping,
 * zero-filled, not counted against the memory limit.  NULL on failure. */
FA_HIDDEN void *_fa_os_map_meta(size_t size);
/* Count size more bytes against FANCY_MEMORY_LIMIT (the process's mapped
 * counter); false, nothing counted, past it.  For memory the allocator
 * maps again without a new mapping (a segment out of the purged reserve). */
FA_HIDDEN bool _fa_os_charge(size_t size);
/* Tests: when nonzero, that many more mappings succeed, then all fail. */
extern long _fa_os_fail_after FA_HIDDEN;

#endif /* FA_OS_H */
