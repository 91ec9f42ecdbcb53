/* SPDX-License-Identifier: MIT */
/*
 * introspect.c - glibc's malloc introspection calls, for libfancymalloc
 * only: mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt and the
 * __libc_ aliases, with this allocator's figures.
 *
 * The figures map onto glibc's fields as fancyalloc(7) ("glibc
 * compatibility") lists: glibc's "arena" (memory not obtained by mmap of
 * its own) is the segments here, its "mmapped chunks" are the huge blocks,
 * and its totals come from the same snapshot as fancy_stats_get, so that
 * uordblks + hblkhd is fancy_stats_t.bytes_live and arena + hblkhd is
 * bytes_mapped.  Free-block counts come from a walk of the segments.
 */
#include "internal.h"

#include <limits.h>
#include "glibc_malloc.h"

/* Figures of one thread heap (or of the abandoned segments). */
#define FA_INFO_HEAPS 64    /* more heaps are added into the last one */
typedef struct fa_heap_figures_s {
  size_t system;          /* bytes of its segments */
  size_t live;            /* bytes in live blocks */
  size_t free_spans;      /* free page runs */
  size_t free_span_bytes;
  uint32_t class_free[FA_NUM_CLASSES];   /* free blocks per class */
} fa_heap_figures_t;

typedef struct fa_info_s {
  fancy_stats_t st;                   /* the totals */
  size_t heaps;                       /* used entries of heap[] */
  fa_heap_figures_t heap[FA_INFO_HEAPS + 1];   /* + the abandoned segments */
  fa_heap_figures_t all;              /* the sum */
} fa_info_t;

static void fa_figures_add_segment(fa_heap_figures_t *f, fa_segment_t *seg) {
  f->system += FA_SEGMENT_SIZE;
  for (size_t idx = FA_FIRST_PAGE, n; idx < FA_GUARD_PAGE; idx += n) {
    fa_page_t *page = &seg->pages[idx];
    n = fa_span_pages_seen(seg, idx);
    unsigned cls;
    size_t bytes, used = _fa_span_live(page, &cls, &bytes);   /* as fancy_stats_get counts */
    f->live += bytes;
    if (cls < FA_NUM_CLASSES) {
      size_t fit = fa_load(page->reserved);
      if (fit > used) f->class_free[cls] += (uint32_t)(fit - used);
    } else if (fa_load(page->kind) == FA_PAGE_FREE) {
      f->free_spans++;
      f->free_span_bytes += n << FA_PAGE_SHIFT;
    }
  }
}

/* Totals as fancy_stats_get gives them, then the per-heap walk of the
 * default instance's segments. */
static void fa_info_collect(fa_info_t *info) {
  memset(info, 0, sizeof *info);
  fancy_stats_get(&info->st, sizeof info->st);
  fa_heap_t *heaps[FA_INFO_HEAPS];
  size_t nheaps = 0;
  pthread_mutex_lock(&_fa_heaps_lock);
  pthread_mutex_lock(&_fa_segments_lock);
  for (fa_heap_t *h = _fa_heaps; h != NULL; h = h->pool_next)
    if (h->alive && h->domain == &_fa_domain_default && nheaps < FA_INFO_HEAPS) heaps[nheaps++] = h;
  for (fa_segment_t *seg = _fa_all_segments; seg != NULL; seg = seg->gnext) {
    if (seg->domain != &_fa_domain_default) continue;
    fa_heap_figures_t *f = NULL;
    if (seg->state == FA_SEG_OWNED) {
      fa_heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_relaxed);
      size_t i = 0;
      while (i < nheaps && heaps[i] != owner) i++;
      f = &info->heap[i < nheaps ? i : (nheaps ? nheaps - 1 : 0)];
    } else if (seg->state == FA_SEG_ABANDONED || seg->state == FA_SEG_ORPHANED) {
      f = &info->heap[FA_INFO_HEAPS];
    }
    if (f != NULL) fa_figures_add_segment(f, seg);
  }
  pthread_mutex_unlock(&_fa_segments_lock);
  pthread_mutex_unlock(&_fa_heaps_lock);
  info->heaps = nheaps ? nheaps : 1;
  if (info->heap[FA_INFO_HEAPS].system != 0) info->heap[info->heaps++] = info->heap[FA_INFO_HEAPS];
  for (size_t i = 0; i < info->heaps; i++) {
    fa_heap_figures_t *f = &info->heap[i];
    info->all.system += f->system;
    info->all.live += f->live;
    info->all.free_spans += f->free_spans;
    info->all.free_span_bytes += f->free_span_bytes;
    for (size_t c = 0; c < FA_NUM_CLASSES; c++) info->all.class_free[c] += f->class_free[c];
  }
}

static void fa_class_free(const fa_heap_figures_t *f, size_t *count, size_t *bytes) {
  *count = *bytes = 0;
  for (size_t c = 0; c < FA_NUM_CLASSES; c++) {
    *count += f->class_free[c];
    *bytes += (size_t)f->class_free[c] * _fa_class_size[c];
  }
}

/* ------------------------------------------------------------------------
 * mallinfo2, mallinfo
 * ---------------------------------------------------------------------- */
FA_EXPORT struct mallinfo2 mallinfo2(void) {
  fa_info_t info;
  fa_info_collect(&info);
  const fancy_stats_t *st = &info.st;
  struct mallinfo2 m;
  memset(&m, 0, sizeof m);
  size_t small_count, small_bytes;
  fa_class_free(&info.all, &small_count, &small_bytes);
  m.arena = st->bytes_mapped > st->bytes_huge ? st->bytes_mapped - st->bytes_huge : 0;
  m.uordblks = st->bytes_live - st->bytes_huge;
  m.fordblks = m.arena > m.uordblks ? m.arena - m.uordblks : 0;
  m.hblks = st->huge_blocks;
  m.hblkhd = st->bytes_huge;
  m.smblks = small_count;
  m.fsmblks = small_bytes;
  m.ordblks = small_count + info.all.free_spans;
  m.usmblks = 0;   /* as glibc: unused */
  m.keepcost = st->segments_cached * FA_SEGMENT_SIZE;
  return m;
}

static int fa_int(size_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

FA_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m;
  m.arena = fa_int(m2.arena);
  m.ordblks = fa_int(m2.ordblks);
  m.smblks = fa_int(m2.smblks);
  m.hblks = fa_int(m2.hblks);
  m.hblkhd = fa_int(m2.hblkhd);
  m.usmblks = fa_int(m2.usmblks);
  m.fsmblks = fa_int(m2.fsmblks);
  m.uordblks = fa_int(m2.uordblks);
  m.fordblks = fa_int(m2.fordblks);
  m.keepcost = fa_int(m2.keepcost);
  return m;
}

/* ------------------------------------------------------------------------
 * malloc_stats: glibc's layout, one "Arena N:" per thread heap
 * ---------------------------------------------------------------------- */
FA_EXPORT void malloc_stats(void) {
  fa_info_t info;
  fa_info_collect(&info);
  for (size_t i = 0; i < info.heaps; i++) {
    fprintf(stderr, "Arena %zu:\n", i);
    fprintf(stderr, "system bytes     = %10zu\n", info.heap[i].system);
    fprintf(stderr, "in use bytes     = %10zu\n", info.heap[i].live);
  }
  fprintf(stderr, "Total (incl. mmap):\n");
  fprintf(stderr, "system bytes     = %10zu\n", info.st.bytes_mapped);
  fprintf(stderr, "in use bytes     = %10zu\n", info.st.bytes_live);
  fprintf(stderr, "max mmap regions = %10zu\n", info.st.huge_blocks);
  fprintf(stderr, "max mmap bytes   = %10zu\n", info.st.bytes_huge);
  fflush(stderr);
}

/* ------------------------------------------------------------------------
 * malloc_info: glibc's XML schema (<malloc version="1">)
 * ---------------------------------------------------------------------- */
static void fa_info_totals(FILE *fp, const fa_heap_figures_t *f) {
  size_t count, bytes;
  fa_class_free(f, &count, &bytes);
  fprintf(fp, "<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n", count, bytes);
  fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", f->free_spans,
          f->free_span_bytes);
}

static void fa_info_system(FILE *fp, size_t system) {
  fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", system);
  fprintf(fp, "<system type=\"max\" size=\"%zu\"/>\n", system);
  fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", system);
  fprintf(fp, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", system);
}

FA_EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0 || fp == NULL) {
    errno = EINVAL;
    return -1;
  }
  fa_info_t *info = fancy_malloc(sizeof *info);   /* too big for some stacks */
  if (info == NULL) return -1;
  fa_info_collect(info);
  fprintf(fp, "<malloc version=\"1\">\n");
  for (size_t i = 0; i < info->heaps; i++) {
    const fa_heap_figures_t *f = &info->heap[i];
    fprintf(fp, "<heap nr=\"%zu\">\n<sizes>\n", i);
    for (size_t c = 0; c < FA_NUM_CLASSES; c++) {
      if (f->class_free[c] == 0) continue;
      fprintf(fp, "<size from=\"%u\" to=\"%u\" total=\"%zu\" count=\"%u\"/>\n",
              c ? _fa_class_size[c - 1] + 1 : 1, _fa_class_size[c],
              (size_t)f->class_free[c] * _fa_class_size[c], f->class_free[c]);
    }
    fprintf(fp, "</sizes>\n");
    fa_info_totals(fp, f);
    fa_info_system(fp, f->system);
    fprintf(fp, "</heap>\n");
  }
  fa_info_totals(fp, &info->all);
  fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", info->st.huge_blocks,
          info->st.bytes_huge);
  fa_info_system(fp, info->st.bytes_mapped);
  fprintf(fp, "</malloc>\n");
  fancy_free(info);
  return 0;
}

/* ------------------------------------------------------------------------
 * mallopt: the parameters that map onto an option of this allocator;
 * 0 (as glibc for a parameter it does not know) for the others.
 * ---------------------------------------------------------------------- */
FA_EXPORT int mallopt(int param, int value) {
  _fa_process_init();
  switch (param) {
  case M_MMAP_THRESHOLD:
    /* Blocks above it get a mapping of their own (huge blocks); above
     * FA_LARGE_MAX they always do, so a larger value cannot be honoured. */
    if (value < 0 || (size_t)value > FA_LARGE_MAX) return 0;
    __atomic_store_n(&_fa_opt.mmap_threshold, (size_t)value, __ATOMIC_RELAXED);
    return 1;
  case M_TRIM_THRESHOLD:
    /* Free memory a thread keeps before it gives empty segments back:
     * FANCY_ARENA_SIZE (at least one segment). */
    if (value < 0) return 0;
    {
      size_t v = (size_t)value < FA_SEGMENT_SIZE ? FA_SEGMENT_SIZE : (size_t)value;
      __atomic_store_n(&_fa_opt.arena_size, v, __ATOMIC_RELAXED);
      __atomic_store_n(&_fa_domain_default.arena_size, v, __ATOMIC_RELAXED);
    }
    return 1;
  case M_TOP_PAD:
    /* Memory kept beyond what is in use: empty segments kept warm
     * (FANCY_SEGMENT_CACHE), value rounded up to whole segments. */
    if (value < 0) return 0;
    __atomic_store_n(&_fa_opt.segment_cache, ((size_t)value + FA_SEGMENT_MASK) >> FA_SEGMENT_SHIFT,
                     __ATOMIC_RELAXED);
    return 1;
  default:
    return 0;
  }
}

/* glibc-internal names. */
FA_EXPORT struct mallinfo __libc_mallinfo(void);
FA_EXPORT int __libc_mallopt(int param, int value);
FA_EXPORT struct mallinfo __libc_mallinfo(void) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"   /* glibc's, not ours */
  return mallinfo();
#pragma GCC diagnostic pop
}
FA_EXPORT int __libc_mallopt(int param, int value) { return mallopt(param, value); }
