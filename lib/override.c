/* SPDX-License-Identifier: MIT */
/*
 * override.c - the malloc family, for libfancymalloc only.
 *
 * Every entry inlines the same fast paths as fancy_malloc/fancy_free.  The
 * __libc_* names are exported too: glibc calls them internally, and a
 * block from glibc's allocator freed into ours (or the reverse) would be
 * corruption.
 */
#include "internal.h"

#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

/* Tells the core that foreign pointers may legitimately reach free(). */
int _fa_override_mode = 1;

FA_EXPORT void *malloc(size_t size) { return fa_malloc_inline(size); }
FA_EXPORT void free(void *p) { fa_free_inline(p); }
FA_EXPORT void cfree(void *p);
FA_EXPORT void cfree(void *p) { fa_free_inline(p); }
FA_EXPORT void *calloc(size_t n, size_t size) { return _fa_calloc(fa_heap_get(), n, size); }
FA_EXPORT void *realloc(void *p, size_t size) { return _fa_realloc(fa_heap_get(), p, size); }

FA_EXPORT void *reallocarray(void *p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return _fa_realloc(fa_heap_get(), p, total);
}

FA_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  return fancy_aligned_alloc(alignment, size);
}

FA_EXPORT void *memalign(size_t alignment, size_t size) {
  /* glibc's memalign rounds a non-power-of-two alignment up. */
  if (alignment & (alignment - 1)) {
    size_t a = 1;
    while (a < alignment && a != 0) a <<= 1;
    if (a == 0) {
      errno = EINVAL;
      return NULL;
    }
    alignment = a;
  }
  return _fa_aligned_alloc(fa_heap_get(), alignment ? alignment : 1, size);
}

FA_EXPORT int posix_memalign(void **memptr, size_t alignment, size_t size) {
  return fancy_posix_memalign(memptr, alignment, size);
}

FA_EXPORT void *valloc(size_t size) { return _fa_aligned_alloc(fa_heap_get(), FA_OS_PAGE_SIZE, size); }

/* pvalloc, malloc_trim and the __libc_* names below are glibc's: musl has
 * none of them, and calls none of its malloc internally (issue 18). */
#ifdef __GLIBC__
FA_EXPORT void *pvalloc(size_t size) {
  size_t rounded = (size + FA_OS_PAGE_SIZE - 1) & ~(size_t)(FA_OS_PAGE_SIZE - 1);
  if (rounded < size) {
    errno = ENOMEM;
    return NULL;
  }
  return _fa_aligned_alloc(fa_heap_get(), FA_OS_PAGE_SIZE, rounded ? rounded : FA_OS_PAGE_SIZE);
}

FA_EXPORT int malloc_trim(size_t pad) { return _fa_trim(fa_heap_get(), pad); }
#endif

FA_EXPORT size_t malloc_usable_size(void *p) { return _fa_usable_size((uintptr_t)p); }

#ifdef __GLIBC__

/* glibc-internal names. */
FA_EXPORT void *__libc_malloc(size_t size);
FA_EXPORT void __libc_free(void *p);
FA_EXPORT void *__libc_calloc(size_t n, size_t size);
FA_EXPORT void *__libc_realloc(void *p, size_t size);
FA_EXPORT void *__libc_memalign(size_t alignment, size_t size);
FA_EXPORT void *__libc_valloc(size_t size);
FA_EXPORT void *__libc_pvalloc(size_t size);
FA_EXPORT int __posix_memalign(void **memptr, size_t alignment, size_t size);
FA_EXPORT void *__libc_malloc(size_t size) { return fa_malloc_inline(size); }
FA_EXPORT void __libc_free(void *p) { fa_free_inline(p); }
FA_EXPORT void *__libc_calloc(size_t n, size_t size) { return _fa_calloc(fa_heap_get(), n, size); }
FA_EXPORT void *__libc_realloc(void *p, size_t size) { return _fa_realloc(fa_heap_get(), p, size); }
FA_EXPORT void *__libc_memalign(size_t alignment, size_t size) { return memalign(alignment, size); }
FA_EXPORT void *__libc_valloc(size_t size) { return valloc(size); }
FA_EXPORT void *__libc_pvalloc(size_t size) { return pvalloc(size); }
FA_EXPORT int __posix_memalign(void **memptr, size_t alignment, size_t size) {
  return fancy_posix_memalign(memptr, alignment, size);
}
#endif /* __GLIBC__ */
