/* SPDX-License-Identifier: MIT */
/*
 * aligned.c - aligned_alloc and posix_memalign.
 *
 * No back-offset word and no interior pointers: a class span starts on a
 * 64 KiB boundary, so every block of a class whose size is a multiple of
 * the alignment is aligned.  The request is served from the smallest such
 * class (there is a power-of-two class at every doubling up to 32 KiB).
 * Large spans are 64 KiB aligned; larger alignments take a huge mapping,
 * which can have any alignment.
 */
#include "internal.h"

void *_fa_aligned_alloc(fa_heap_t *heap, size_t alignment, size_t size) {
  if (alignment <= FA_ALIGN) return fa_heap_malloc(heap, size);
  if (fa_unlikely(_fa_opt.check)) return _fa_aligned_checked(heap, alignment, size);
  if (size > PTRDIFF_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  if (alignment <= FA_MEDIUM_MAX && size <= FA_MEDIUM_MAX) {
    size_t n = (size + alignment - 1) & ~(alignment - 1);
    if (n == 0) n = alignment;
    unsigned cls = fa_size_class(n);
    while (_fa_class_size[cls] % alignment != 0) cls++;
    return fa_heap_malloc(heap, _fa_class_size[cls]);
  }
  if (alignment <= FA_PAGE_SIZE && size <= FA_LARGE_MAX)
    return fa_heap_malloc(heap, size > FA_MEDIUM_MAX ? size : FA_MEDIUM_MAX + 1);
  return _fa_huge_alloc(heap, size, alignment, false);
}

void *fancy_aligned_alloc(size_t alignment, size_t size) FANCY_NOEXCEPT {
  if (!fa_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return _fa_aligned_alloc(fa_heap_get(), alignment, size);
}

int fancy_posix_memalign(void **memptr, size_t alignment, size_t size) FANCY_NOEXCEPT {
  if (!fa_is_power_of_two(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = _fa_aligned_alloc(fa_heap_get(), alignment, size);
  if (p == NULL) {
    errno = saved;
    return ENOMEM;
  }
  *memptr = p;
  return 0;
}
