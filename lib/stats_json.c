/* SPDX-License-Identifier: MIT */
/*
 * stats_json.c - fancy_stats_json, fancy_stats_json_print, FANCY_STATS=json.
 *
 * One document, schema "fancyalloc-stats/1" (documented in
 * fancy_stats_json(3)): "totals" and "classes" are fancy_stats_get's
 * figures, field for field; "heaps" splits the live blocks of the small,
 * medium and large tiers over the thread heaps that own them, "abandoned"
 * holds those of exited threads; "options" are the settings in effect and
 * "prof" the heap profiler's state.  Written without malloc: numbers are
 * formatted by _fa_format into a small buffer, then copied out.
 */
#include "internal.h"

#include <stdarg.h>

#define FA_JSON_MAX_HEAPS 256

typedef struct fa_json_s {
  char *buf;      /* buffer sink, or NULL */
  size_t cap;
  size_t len;     /* the whole document's length so far */
  FILE *out;      /* stream sink, or NULL */
  bool failed;
} fa_json_t;

static void fa_json(fa_json_t *j, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  size_t n = _fa_format(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (j->out != NULL) {
    if (fwrite(tmp, 1, n, j->out) != n) j->failed = true;
  } else if (j->len + 1 < j->cap) {
    size_t room = j->cap - 1 - j->len;
    memcpy(j->buf + j->len, tmp, n < room ? n : room);
  }
  j->len += n;
}

static const char *fa_bool(bool b) { return b ? "true" : "false"; }

typedef struct fa_heap_figures_s {
  fa_heap_t *heap;
  size_t thread;
  size_t segments, blocks_live, bytes_live;
} fa_heap_figures_t;

/* Live blocks and bytes of one segment, as stats.c counts them. */
static void fa_json_segment(fa_segment_t *seg, fa_heap_figures_t *f) {
  f->segments++;
  for (size_t idx = FA_FIRST_PAGE, n; idx < FA_GUARD_PAGE; idx += n) {
    n = fa_span_pages_seen(seg, idx);
    unsigned cls;
    size_t bytes;
    f->blocks_live += _fa_span_live(&seg->pages[idx], &cls, &bytes);
    f->bytes_live += bytes;
  }
}

static void fa_json_document(fa_json_t *j) {
  fancy_stats_t st;
  fancy_stats_get(&st, sizeof st);

  /* Per heap: the live heaps of the default instance, then every segment
   * attributed to its owner (lock order: heaps, then segments). */
  static fa_heap_figures_t figs[FA_JSON_MAX_HEAPS];   /* under _fa_heaps_lock */
  fa_heap_figures_t abandoned = {0};
  pthread_mutex_lock(&_fa_heaps_lock);
  size_t nh = 0;
  bool truncated = false;
  for (fa_heap_t *h = _fa_heaps; h != NULL; h = h->pool_next) {
    if (!fa_load(h->alive) || h->domain != &_fa_domain_default) continue;
    if (nh == FA_JSON_MAX_HEAPS) {
      truncated = true;
      break;
    }
    figs[nh] = (fa_heap_figures_t){.heap = h, .thread = (size_t)h->thread};
    nh++;
  }
  pthread_mutex_lock(&_fa_segments_lock);
  for (fa_segment_t *seg = _fa_all_segments; seg != NULL; seg = seg->gnext) {
    if (seg->domain != &_fa_domain_default) continue;
    if (seg->state == FA_SEG_ABANDONED || seg->state == FA_SEG_ORPHANED) {
      fa_json_segment(seg, &abandoned);
      continue;
    }
    if (seg->state != FA_SEG_OWNED) continue;
    fa_heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_relaxed);
    for (size_t i = 0; i < nh; i++) {
      if (figs[i].heap != owner) continue;
      fa_json_segment(seg, &figs[i]);
      break;
    }
  }
  pthread_mutex_unlock(&_fa_segments_lock);

  fa_heap_t *self = fa_heap_get();
  fa_json(j, "{\"schema\":\"fancyalloc-stats/1\",\"version\":\"%s\",", PACKAGE_VERSION);
  fa_json(j, "\"totals\":{\"bytes_live\":%zu,\"bytes_huge\":%zu,\"bytes_mapped\":%zu,",
          st.bytes_live, st.bytes_huge, st.bytes_mapped);
  fa_json(j, "\"bytes_committed\":%zu,\"bytes_purged\":%zu,\"segments\":%zu,",
          st.bytes_committed, st.bytes_purged, st.segments);
  fa_json(j, "\"segments_abandoned\":%zu,\"segments_cached\":%zu,\"huge_blocks\":%zu,",
          st.segments_abandoned, st.segments_cached, st.huge_blocks);
  fa_json(j, "\"threads\":%zu,\"threads_created\":%zu,\"remote_frees\":%zu,", st.threads,
          st.threads_created, st.remote_frees);
  fa_json(j, "\"mmap_calls\":%zu,\"purge_calls\":%zu,\"memory_limit\":%zu,", st.mmap_calls,
          st.purge_calls, st.memory_limit);
  fa_json(j, "\"memory_limit_hits\":%zu,\"soft_limit\":%zu,\"soft_limit_hits\":%zu,"
             "\"bytes_resident\":%zu},",
          st.memory_limit_hits, st.soft_limit, st.soft_limit_hits, st.bytes_resident);
  fa_json(j, "\"classes\":[");
  for (size_t c = 0; c < st.num_classes; c++)
    fa_json(j, "%s{\"block_size\":%zu,\"blocks_live\":%zu,\"pages\":%zu}", c ? "," : "",
            st.classes[c].block_size, st.classes[c].blocks_live, st.classes[c].pages);
  fa_json(j, "],\"heaps\":[");
  for (size_t i = 0; i < nh; i++)
    fa_json(j, "%s{\"thread\":%zu,\"self\":%s,\"segments\":%zu,\"blocks_live\":%zu,"
               "\"bytes_live\":%zu}",
            i ? "," : "", figs[i].thread, fa_bool(figs[i].heap == self), figs[i].segments,
            figs[i].blocks_live, figs[i].bytes_live);
  pthread_mutex_unlock(&_fa_heaps_lock);
  fa_json(j, "],\"heaps_truncated\":%s,", fa_bool(truncated));
  fa_json(j, "\"abandoned\":{\"segments\":%zu,\"blocks_live\":%zu,\"bytes_live\":%zu},",
          abandoned.segments, abandoned.blocks_live, abandoned.bytes_live);
  /* Blocks that threads freed into other threads' pages and keep to reuse
   * (free.c, fa_rcache_put): counted in their owners' figures above, not
   * in the totals. */
  size_t kept[FA_NUM_CLASSES], kept_blocks = 0, kept_bytes = 0;
  _fa_heaps_rcache_kept(&_fa_domain_default, kept);
  for (size_t c = 0; c < FA_NUM_CLASSES; c++) {
    kept_blocks += kept[c];
    kept_bytes += kept[c] * _fa_class_size[c];
  }
  fa_json(j, "\"kept\":{\"blocks\":%zu,\"bytes\":%zu},", kept_blocks, kept_bytes);
  fa_json(j, "\"options\":{\"arena_size\":%zu,\"memory_limit\":%zu,\"soft_limit\":%zu,"
             "\"huge_pages\":%s,\"huge_blocks\":%s,",
          _fa_opt.arena_size, _fa_opt.memory_limit, _fa_opt.soft_limit,
          fa_bool(_fa_opt.huge_pages), fa_bool(_fa_opt.huge_blocks));
  fa_json(j, "\"populate\":%s,\"reclaim\":%s,\"purge_delay_ms\":%zu,\"segment_cache\":%zu,",
          fa_bool(_fa_opt.populate), fa_bool(_fa_opt.reclaim), (size_t)_fa_opt.purge_delay,
          _fa_opt.segment_cache);
  fa_json(j, "\"check\":%s,\"prof\":%s,\"prof_sample\":%zu,\"prof_final\":%s,"
             "\"prof_signal\":%zu},",
          fa_bool(_fa_opt.check), fa_bool(_fa_opt.prof), _fa_opt.prof_sample,
          fa_bool(_fa_opt.prof_final), _fa_opt.prof_signal);
  size_t samples = 0, sbytes = 0, dropped = 0;
  if (_fa_opt.prof) _fa_prof_totals(&samples, &sbytes, &dropped);
  fa_json(j, "\"prof\":{\"enabled\":%s,\"sample_rate\":%zu,\"samples_live\":%zu,"
             "\"bytes_sampled_live\":%zu,\"samples_dropped\":%zu}}",
          fa_bool(_fa_opt.prof), _fa_opt.prof_sample, samples, sbytes, dropped);
}

size_t fancy_stats_json(char *buf, size_t size) FANCY_NOEXCEPT {
  fa_json_t j = {.buf = buf, .cap = buf != NULL ? size : 0};
  fa_json_document(&j);
  if (buf != NULL && size > 0) buf[j.len < size ? j.len : size - 1] = '\0';
  return j.len;
}

int fancy_stats_json_print(FILE *out) FANCY_NOEXCEPT {
  fa_json_t j = {.out = out != NULL ? out : stderr};
  fa_json_document(&j);
  if (fputc('\n', j.out) == EOF) j.failed = true;
  if (fflush(j.out) != 0) j.failed = true;
  if (j.failed) {
    if (errno == 0) errno = EIO;
    return -1;
  }
  return 0;
}
