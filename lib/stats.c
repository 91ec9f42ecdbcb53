/* SPDX-License-Identifier: MIT */
/*
 * stats.c - statistics, printed and as a struct, and the leak report.
 *
 * Nothing here runs on a fast path.  Counters of mappings and purges are
 * bumped on slow paths; live blocks are counted when asked, from the
 * `used` count of every class span (read with relaxed atomic loads, so a
 * snapshot taken while other threads run is approximate, never a race).
 *
 * One accounting, two scopes (fancyalloc(7), "Statistics"):
 *   - the process (fancy_stats_get, fancy_print_stats, d == NULL): every
 *     instance's blocks; mapped and committed are the OS-level counters,
 *     committed including the live huge blocks (freed ones kept mapped
 *     for reuse count in mapped only, as the memory fancy_trim returns);
 *   - one instance (fancy_allocator_print_stats, d != NULL): its blocks;
 *     mapped is what is charged to it (its segments and huge blocks),
 *     committed is the pages of its segments that hold blocks (free spans
 *     are the owners' to purge, not read here) plus its huge blocks.  Cached segments and huge mappings belong to no instance.
 * In both, live <= committed <= mapped; _fa_stats_add_up checks it.
 */
#include "internal.h"

fa_counters_t _fa_counters;

#define FA_LOAD(name) atomic_load_explicit(&_fa_counters.name, memory_order_relaxed)

/* The live blocks of the span whose first page is `page` (their bytes in
 * *bytes), as every statistic counts them: a class span's `used` less the
 * remote frees its owner, if any, has not collected yet (freed for the
 * program, so not live; the list word counts them); a large span's block
 * unless it waits, freed, on its list.  *cls is the span's class, or
 * FA_NUM_CLASSES for any other span. */
size_t _fa_span_live(const fa_page_t *page, unsigned *cls, size_t *bytes) {
  *cls = FA_NUM_CLASSES;
  *bytes = 0;
  switch (fa_load(page->kind)) {
  case FA_PAGE_CLASS: {
    unsigned c = fa_load(page->cls);
    size_t used = fa_load(page->used);
    size_t pending = fa_xfree_count(atomic_load(&page->xfree));
    used = pending < used ? used - pending : 0;
    if (c >= FA_NUM_CLASSES) return 0;
    *cls = c;
    *bytes = used * _fa_class_size[c];
    return used;
  }
  case FA_PAGE_LARGE:
    if (fa_load(page->used) == 0 || atomic_load(&page->xfree) != 0) return 0;
    *bytes = fa_load(page->bsize);
    return 1;
  default:
    return 0;
  }
}

/* Statistics of instance d, or of the process (d == NULL); the event
 * counters (purges, mmap calls, threads) are the process's in both. */
static void fa_stats_collect(fa_domain_t *d, fancy_stats_t *st) {
  memset(st, 0, sizeof *st);
  _fa_process_init();
  fa_heap_t *heap = fa_domain_thread_heap(d != NULL ? d : &_fa_domain_default);
  _fa_rcache_flush(heap);   /* this thread's frees count */
  if (heap != NULL && heap != &_fa_heap_empty) _fa_heap_collect_remote(heap, false);
  /* The bounds before what they bound: while _fa_stats_add_up checks
   * them, the figures can only fall (see there), so a bound read first
   * still holds for what is read after it.  Read the other way round, a
   * huge block freed between the reading of the huge blocks and that of
   * `mapped` showed more committed than mapped. */
  size_t mapped = d == NULL ? FA_LOAD(mapped) : atomic_load_explicit(&d->mapped, memory_order_relaxed);
  size_t committed = FA_LOAD(committed);   /* the process's, in segments */
  size_t committed_pages = 0;   /* of d's segments */
  st->num_classes = FA_NUM_CLASSES;
  for (size_t c = 0; c < FA_NUM_CLASSES; c++) st->classes[c].block_size = _fa_class_size[c];

  size_t kept[FA_NUM_CLASSES];   /* (lock order: heaps before segments) */
  _fa_heaps_rcache_kept(d, kept);
  pthread_mutex_lock(&_fa_segments_lock);
  for (fa_segment_t *seg = _fa_all_segments; seg != NULL; seg = seg->gnext) {
    if (seg->state != FA_SEG_OWNED && seg->state != FA_SEG_ABANDONED &&
        seg->state != FA_SEG_ORPHANED)
      continue;
    if (d != NULL && seg->domain != d) continue;
    committed_pages += FA_FIRST_PAGE;   /* the header */
    for (size_t idx = FA_FIRST_PAGE, n; idx < FA_GUARD_PAGE; idx += n) {
      fa_page_t *page = &seg->pages[idx];
      n = fa_span_pages_seen(seg, idx);
      unsigned cls;
      size_t bytes, blocks = _fa_span_live(page, &cls, &bytes);
      st->bytes_live += bytes;
      if (cls < FA_NUM_CLASSES) {
        st->classes[cls].blocks_live += blocks;
        st->classes[cls].pages += n;
      }
      if (fa_load(page->kind) != FA_PAGE_FREE) committed_pages += n;
    }
  }
  /* Blocks other threads freed and keep to reuse (fa_heap_t.rcache) stay
   * counted in their pages: freed for the program, so not live. */
  for (size_t c = 0; c < FA_NUM_CLASSES; c++) {
    size_t k = kept[c] < st->classes[c].blocks_live ? kept[c] : st->classes[c].blocks_live;
    st->classes[c].blocks_live -= k;
    st->bytes_live -= k * _fa_class_size[c];
  }
  st->segments_abandoned = _fa_abandoned_count;
  st->segments_cached = _fa_cached_count;
  pthread_mutex_unlock(&_fa_segments_lock);

  _fa_huge_totals(d, &st->huge_blocks, &st->bytes_huge);
  fa_test_point(FA_TP_STATS_HUGE_READ, d);
  /* one reading of the huge blocks, in live and in committed alike */
  st->bytes_live += st->bytes_huge;
  st->bytes_mapped = mapped;
  if (d == NULL) st->bytes_committed = committed + st->bytes_huge;
  else st->bytes_committed = (committed_pages << FA_PAGE_SHIFT) + st->bytes_huge;
  st->bytes_purged = FA_LOAD(purged);
  st->segments = FA_LOAD(segments);
  st->threads = FA_LOAD(threads);
  st->threads_created = FA_LOAD(threads_created);
  st->remote_frees = FA_LOAD(remote_frees);
  st->mmap_calls = FA_LOAD(mmap_calls);
  st->purge_calls = FA_LOAD(purge_calls);
  st->memory_limit = __atomic_load_n(d != NULL ? &d->memory_limit : &_fa_opt.memory_limit,
                                     __ATOMIC_RELAXED);
  st->memory_limit_hits = FA_LOAD(limit_hits);   /* limits (limit.c) */
  st->soft_limit = __atomic_load_n(&_fa_opt.soft_limit, __ATOMIC_RELAXED);
  st->soft_limit_hits = FA_LOAD(soft_limit_hits);
  st->bytes_resident = _fa_resident();
}

int fancy_stats_get(fancy_stats_t *stats, size_t size) FANCY_NOEXCEPT {
  if (stats == NULL) {
    errno = EINVAL;
    return -1;
  }
  fancy_stats_t st;
  fa_stats_collect(NULL, &st);
  memcpy(stats, &st, size < sizeof st ? size : sizeof st);
  return 0;
}

static void fa_print_size(FILE *out, const char *label, size_t v) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double d = (double)v;
  unsigned u = 0;
  while (d >= 1024.0 && u < 4) {
    d /= 1024.0;
    u++;
  }
  fprintf(out, "  %-20s %12zu  (%.1f %s)\n", label, v, d, units[u]);
}

void _fa_stats_print(fa_domain_t *d, FILE *out) {
  fancy_stats_t st;
  fa_stats_collect(d, &st);
  if (out == NULL) out = stderr;
  if (d == NULL) fprintf(out, "libfancyalloc %s statistics\n", PACKAGE_VERSION);
  else if (d == &_fa_domain_default)
    fprintf(out, "libfancyalloc %s statistics, default instance\n", PACKAGE_VERSION);
  else fprintf(out, "libfancyalloc %s statistics, instance %u\n", PACKAGE_VERSION, d->index);
  fa_print_size(out, "live", st.bytes_live);
  fa_print_size(out, "live in huge blocks", st.bytes_huge);
  fa_print_size(out, "mapped", st.bytes_mapped);
  fa_print_size(out, "committed", st.bytes_committed);
  fa_print_size(out, "purged (total)", st.bytes_purged);
  if (st.memory_limit) fa_print_size(out, "memory limit", st.memory_limit);
  if (st.memory_limit) fprintf(out, "  %-20s %12zu\n", "  refusals", st.memory_limit_hits);
  if (st.soft_limit) fa_print_size(out, "soft memory limit", st.soft_limit);
  if (st.soft_limit) fprintf(out, "  %-20s %12zu\n", "  times passed", st.soft_limit_hits);
  fprintf(out, "  %-20s %12zu\n", "segments", st.segments);
  fprintf(out, "  %-20s %12zu\n", "  abandoned", st.segments_abandoned);
  fprintf(out, "  %-20s %12zu\n", "  cached", st.segments_cached);
  fprintf(out, "  %-20s %12zu\n", "huge blocks", st.huge_blocks);
  fprintf(out, "  %-20s %12zu (created %zu)\n", "threads", st.threads, st.threads_created);
  fprintf(out, "  %-20s %12zu\n", "remote frees", st.remote_frees);
  fprintf(out, "  %-20s %12zu\n", "mmap calls", st.mmap_calls);
  fprintf(out, "  %-20s %12zu\n", "purge calls", st.purge_calls);
  fprintf(out, "  %10s %12s %8s\n", "class", "live blocks", "pages");
  for (size_t c = 0; c < st.num_classes; c++) {
    if (st.classes[c].blocks_live == 0 && st.classes[c].pages == 0) continue;
    fprintf(out, "  %10zu %12zu %8zu\n", st.classes[c].block_size, st.classes[c].blocks_live,
            st.classes[c].pages);
  }
  fflush(out);
}

void fancy_print_stats(FILE *out) FANCY_NOEXCEPT { _fa_stats_print(NULL, out); }

/* fancy_validate_heap / fancy_allocator_validate: the identities of
 * fancyalloc(7), for the instance and for the process.  The figures are
 * read without stopping other threads, and a charge is counted before its
 * mapping is made, so they are checked only when the calling thread's
 * heap is the only one alive, before and after the reading.  Even then a
 * thread without a heap may free (a block it was handed, before its first
 * malloc); that only lowers figures, so the process is read first and the
 * instance second: read the other way round, a free in between showed the
 * instance holding more than the process. */
bool _fa_stats_add_up(fa_domain_t *d) {
  if (FA_LOAD(threads) > 1) return true;
  size_t created = FA_LOAD(threads_created);
  fancy_stats_t st[2];   /* the instance, the process */
  fa_stats_collect(NULL, &st[1]);
  fa_test_point(FA_TP_STATS_COLLECTED, d);
  fa_stats_collect(d, &st[0]);
  if (FA_LOAD(threads) > 1 || FA_LOAD(threads_created) != created) return true;
  for (int i = 0; i < 2; i++) {
    const char *what = i == 0 ? "instance" : "process";
    if (st[i].bytes_live > st[i].bytes_committed || st[i].bytes_committed > st[i].bytes_mapped ||
        st[i].bytes_huge > st[i].bytes_live) {
      _fa_warn("statistics do not add up (%s): live %zu, huge %zu, committed %zu, mapped %zu", what,
               st[i].bytes_live, st[i].bytes_huge, st[i].bytes_committed, st[i].bytes_mapped);
      return false;
    }
  }
  if (st[0].bytes_live > st[1].bytes_live) {
    _fa_warn("statistics do not add up: the instance has live %zu, the process %zu",
             st[0].bytes_live, st[1].bytes_live);
    return false;
  }
  return true;
}

bool _fa_check_leaks(fa_domain_t *d) {
  fancy_stats_t st;
  fa_stats_collect(d, &st);
  size_t blocks = 0;
  for (size_t c = 0; c < st.num_classes; c++) blocks += st.classes[c].blocks_live;
  if (st.bytes_live == 0) return false;
  fprintf(stderr, "fancyalloc: %zu bytes still live (%zu small/medium blocks, %zu huge blocks)\n",
          st.bytes_live, blocks, st.huge_blocks);
  for (size_t c = 0; c < st.num_classes; c++) {
    if (st.classes[c].blocks_live == 0) continue;
    fprintf(stderr, "fancyalloc:   %zu blocks of %zu bytes\n", st.classes[c].blocks_live,
            st.classes[c].block_size);
  }
  size_t large = st.bytes_live - st.bytes_huge;
  for (size_t c = 0; c < st.num_classes; c++)
    large -= st.classes[c].blocks_live * st.classes[c].block_size;
  if (large) fprintf(stderr, "fancyalloc:   %zu bytes in large blocks\n", large);
  if (st.bytes_huge) fprintf(stderr, "fancyalloc:   %zu bytes in huge blocks\n", st.bytes_huge);
  return true;
}

bool fancy_check_leaks(void) FANCY_NOEXCEPT { return _fa_check_leaks(&_fa_domain_default); }
