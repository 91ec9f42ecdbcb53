/* SPDX-License-Identifier: MIT */
/*
 * override_cxx.c - C++'s replaceable operator new and operator delete, for
 * libfancymalloc only.
 *
 * libstdc++'s own operators call malloc and free through the PLT: one call
 * and one indirect jump more for every new and every delete, about 5% of
 * alloc-test1's time (bench/README.md, "espresso and alloc-test1/N").
 * These run malloc's and free's inline fast paths themselves, as
 * tcmalloc's, jemalloc's and mimalloc's do.
 *
 * Only the path that succeeds is ours.  When the allocation fails, the
 * operator calls the definition it replaced, libstdc++'s (the next one in
 * lookup order, dlsym(RTLD_NEXT)), which tries malloc again, calls the
 * new-handler and throws std::bad_alloc, or returns NULL for the nothrow
 * forms: a program sees the standard's behaviour exactly as without us.
 * The exception passes through this file's frames, which is why the
 * library is built with -fexceptions (lib/local.mk).  Without a next
 * definition (no libstdc++ in the process, which a C++ program cannot be)
 * the throwing forms abort with a fancyalloc: message, the nothrow forms
 * return NULL.
 *
 * The names are the Itanium C++ ABI's: _Znwm is operator new(size_t),
 * _ZdlPvm operator delete(void *, size_t), St11align_val_t the C++17
 * alignment argument, RKSt9nothrow_t a const std::nothrow_t &; size_t is
 * "m" (unsigned long) on 64-bit targets and "j" (unsigned int) on 32-bit
 * ones.
 */
#include "internal.h"

#include <dlfcn.h>

#define FA_UNUSED_ARG __attribute__((unused))

#if __SIZEOF_POINTER__ == 8
#define FA_Z "m"
#else
#define FA_Z "j"
#endif

/* ---- the definitions we replace, found on the first failure ---- */

typedef void *(*fa_new_fn)(size_t);
typedef void *(*fa_new_aligned_fn)(size_t, size_t);

static void *fa_cxx_next(const char *name, bool nothrow) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f == NULL && !nothrow)
    _fa_fatal("out of memory in %s, and no C++ runtime to throw std::bad_alloc", name);
  return f;
}

/* malloc's generic path, then the definition we replaced */
FA_NOINLINE static void *fa_cxx_new_slow(size_t n, const char *name, bool nothrow) {
  void *p = _fa_malloc_generic(fa_heap_get(), n);
  if (p != NULL) return p;
  fa_new_fn next = (fa_new_fn)fa_cxx_next(name, nothrow);
  return next != NULL ? next(n) : NULL;
}

FA_NOINLINE static void *fa_cxx_new_aligned_failed(const char *name, size_t n, size_t al,
                                                   bool nothrow) {
  fa_new_aligned_fn next = (fa_new_aligned_fn)fa_cxx_next(name, nothrow);
  return next != NULL ? next(n, al) : NULL;
}

/* The nothrow forms take a const std::nothrow_t &, which we never read. */
static inline void *fa_cxx_new(size_t n, const char *name, bool nothrow) {
  void *p = fa_heap_malloc_fast(fa_heap_get(), n);
  if (fa_likely(p != NULL)) return p;
  return fa_cxx_new_slow(n, name, nothrow);
}

/* An alignment that is not a power of two fails here too (EINVAL), and
 * libstdc++'s then throws std::bad_alloc. */
static inline void *fa_cxx_new_aligned(size_t n, size_t al, const char *name, bool nothrow) {
  void *p = fancy_aligned_alloc(al, n);
  if (fa_likely(p != NULL)) return p;
  return fa_cxx_new_aligned_failed(name, n, al, nothrow);
}

/* ---- operator new ---- */

#define FA_NEW(id, mangled, nothrow)                                            \
  FA_EXPORT void *id(size_t n) __asm__(mangled);                                \
  void *id(size_t n) { return fa_cxx_new(n, mangled, nothrow); }
#define FA_NEW_NOTHROW(id, mangled)                                             \
  FA_EXPORT void *id(size_t n, const void *tag) __asm__(mangled);               \
  void *id(size_t n, const void *tag) {                                         \
    (void)tag;                                                                  \
    return fa_cxx_new(n, mangled, true);                                        \
  }
#define FA_NEW_ALIGNED(id, mangled)                                             \
  FA_EXPORT void *id(size_t n, size_t al) __asm__(mangled);                     \
  void *id(size_t n, size_t al) { return fa_cxx_new_aligned(n, al, mangled, false); }
#define FA_NEW_ALIGNED_NOTHROW(id, mangled)                                     \
  FA_EXPORT void *id(size_t n, size_t al, const void *tag) __asm__(mangled);    \
  void *id(size_t n, size_t al, const void *tag) {                              \
    (void)tag;                                                                  \
    return fa_cxx_new_aligned(n, al, mangled, true);                            \
  }

FA_NEW(fa_cxx_new_1, "_Znw" FA_Z, false)
FA_NEW(fa_cxx_new_array, "_Zna" FA_Z, false)
FA_NEW_NOTHROW(fa_cxx_new_1_nothrow, "_Znw" FA_Z "RKSt9nothrow_t")
FA_NEW_NOTHROW(fa_cxx_new_array_nothrow, "_Zna" FA_Z "RKSt9nothrow_t")
FA_NEW_ALIGNED(fa_cxx_new_1_aligned, "_Znw" FA_Z "St11align_val_t")
FA_NEW_ALIGNED(fa_cxx_new_array_aligned, "_Zna" FA_Z "St11align_val_t")
FA_NEW_ALIGNED_NOTHROW(fa_cxx_new_1_aligned_nothrow, "_Znw" FA_Z "St11align_val_tRKSt9nothrow_t")
FA_NEW_ALIGNED_NOTHROW(fa_cxx_new_array_aligned_nothrow, "_Zna" FA_Z "St11align_val_tRKSt9nothrow_t")

/* ---- operator delete: every form is free(); the size and alignment
 * arguments tell nothing the block's span does not ---- */

#define FA_DELETE(id, mangled, ...)                                             \
  FA_EXPORT void id(void *p, ##__VA_ARGS__) __asm__(mangled);                   \
  void id(void *p, ##__VA_ARGS__) { fa_free_inline(p); }

FA_DELETE(fa_cxx_delete_1, "_ZdlPv")
FA_DELETE(fa_cxx_delete_array, "_ZdaPv")
FA_DELETE(fa_cxx_delete_1_sized, "_ZdlPv" FA_Z, size_t n FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_array_sized, "_ZdaPv" FA_Z, size_t n FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_1_nothrow, "_ZdlPvRKSt9nothrow_t", const void *tag FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_array_nothrow, "_ZdaPvRKSt9nothrow_t", const void *tag FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_1_aligned, "_ZdlPvSt11align_val_t", size_t al FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_array_aligned, "_ZdaPvSt11align_val_t", size_t al FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_1_sized_aligned, "_ZdlPv" FA_Z "St11align_val_t",
          size_t n FA_UNUSED_ARG, size_t al FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_array_sized_aligned, "_ZdaPv" FA_Z "St11align_val_t",
          size_t n FA_UNUSED_ARG, size_t al FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_1_aligned_nothrow, "_ZdlPvSt11align_val_tRKSt9nothrow_t",
          size_t al FA_UNUSED_ARG, const void *tag FA_UNUSED_ARG)
FA_DELETE(fa_cxx_delete_array_aligned_nothrow, "_ZdaPvSt11align_val_tRKSt9nothrow_t",
          size_t al FA_UNUSED_ARG, const void *tag FA_UNUSED_ARG)
