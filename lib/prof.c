/* SPDX-License-Identifier: MIT */
/*
 * prof.c - sampled heap profiling (FANCY_PROF=1).
 *
 * Off by default, and then nothing here runs: the only cost is a test of
 * _fa_opt.prof on malloc's generic path and on the free paths of large
 * and huge blocks, which are slow paths.
 *
 * On, samples are the points of a Poisson process over the bytes
 * allocated, of rate 1 / FANCY_PROF_SAMPLE (as tcmalloc and jemalloc do):
 * an allocation of n bytes is sampled with probability 1 - exp(-n / rate),
 * which is what google-pprof assumes when it reads a "heap_v2/<rate>"
 * profile and scales each sample back up.  Bytes are counted at block
 * size for the size classes (n for larger blocks), and the process is run
 * as independent ones, one per size class and one for larger blocks, each
 * with its own countdown drawn from an exponential distribution: Poisson
 * processes over disjoint parts of the byte stream add up to one.
 *
 * That lets malloc's inline path keep its speed.  With profiling on, a
 * heap's direct table leads each class to a *proxy* page (fa_prof_heap_t)
 * lent blocks of the class's pages in advance (fa_prof_fill): no more
 * than can be handed out before the class's countdown runs out.  malloc's
 * inline pop takes them and
 * counts them (the proxy's `used`); when the proxy is empty, malloc's
 * generic path lands in _fa_prof_malloc, which charges the countdown with
 * the blocks taken, samples the allocation when its countdown runs out,
 * and fills the proxy again.  Blocks in a proxy carry the free tag (see
 * fa_block_t), so they read as free to a double-free check and to the
 * heap walk; _fa_rcache_flush hands them back (_fa_prof_flush).
 *
 * A sampled block of a size class is taken from one of the heap's own
 * class spans, and a span of 4 KiB blocks for a smaller one; the span is
 * marked while it holds a sample (free_mark), so that its frees take the
 * generic path, which drops the sample (see fa_prof_sample).  The free
 * paths of large and huge blocks test _fa_opt.prof and drop theirs.
 * Each sample keeps the block size and up to FA_PROF_DEPTH return
 * addresses, walked by unwind.c with rules it keeps per return address,
 * or where it declines by the unwinder backtrace(3) uses (libgcc's
 * _Unwind_Backtrace where <unwind.h> is found), under a per-thread guard:
 * the unwinder may allocate (backtrace(3) loads libgcc_s on first use,
 * libgcc sorts registered frame tables in memory it mallocs), and those
 * allocations are never sampled.
 *
 * Samples live in FA_PROF_SHARDS tables, each under its own lock, in
 * memory mapped for them (never malloc'ed): an open-addressing index from
 * block address to a record, and a pool of records.
 */
#include "internal.h"

#ifdef HAVE_EXECINFO_H
#include <execinfo.h>
#define FA_HAVE_BACKTRACE 1
#ifdef HAVE_UNWIND_H
#include <unwind.h>   /* the unwinder backtrace(3) calls, without its frame */
#define FA_HAVE_UNWIND 1
#endif
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define FA_PROF_DEPTH 32
#define FA_PROF_SHARDS 8
#define FA_PROF_SLOTS 8192                       /* index slots per shard */
#define FA_PROF_RECORDS (FA_PROF_SLOTS * 3 / 4)  /* records per shard */

typedef struct fa_prof_record_s {
  size_t size;                    /* block size (bytes asked for above 32 KiB) */
  uint32_t depth;
  uint32_t next_free;             /* pool free list, index + 1 */
  void *pc[FA_PROF_DEPTH];
} fa_prof_record_t;

typedef struct fa_prof_slot_s {
  uintptr_t addr;                 /* 0 = empty */
  uint32_t record;
} fa_prof_slot_t;

typedef struct fa_prof_shard_s {
  pthread_mutex_t lock;
  fa_prof_slot_t *slots;
  fa_prof_record_t *records;
  uint32_t records_used;          /* records ever handed out (bump) */
  uint32_t free_list;             /* index + 1, 0 = empty */
  size_t live;                    /* samples in the table */
  size_t bytes;                   /* their bytes */
} fa_prof_shard_t;

static fa_prof_shard_t fa_prof_shards[FA_PROF_SHARDS];
static _Atomic size_t fa_prof_dropped;   /* samples the tables had no room for */
static _Atomic int fa_prof_pending;      /* the dump signal arrived */
static _Atomic unsigned fa_prof_seq;     /* dumps made so far */
static char fa_prof_prefix[256] = "fancyalloc";
/* our own code; the first samples of several threads may all look it up */
static _Atomic uintptr_t fa_prof_text_lo, fa_prof_text_hi;
static _Atomic int fa_prof_text_state;               /* 0 no, 1 found, 2 static */

typedef struct fa_prof_tls_s {
  int64_t left;                   /* bytes until the next sample */
  uint64_t rng;                   /* xorshift64* state, 0 = not seeded */
  bool busy;                      /* taking a sample: do not sample again */
} fa_prof_tls_t;
static FA_TLS fa_prof_tls_t fa_prof_tls;

/* A heap's sampling state (default instance only): the countdowns and the
 * proxy pages.  Heaps are never unmapped, only reused, so each heap gets
 * one for good, found through fa_prof_heaps; `thread` tells when the heap
 * passed to another thread (after an exit or in a forked child). */
#define FA_PROF_BATCH_BYTES ((size_t)8 << 10)
#define FA_PROF_BATCH_MAX 64
#define FA_PROF_MAX_HEAPS 4096
/* Sampled blocks of classes this large stay in their class spans, smaller
 * ones are blocks of this class (see fa_prof_sample). */
#define FA_PROF_INPLACE_MIN 4096
typedef struct fa_prof_heap_s {
  fa_heap_t *heap;
  pthread_t thread;
  int64_t left[FA_NUM_CLASSES];   /* bytes until the class's next sample */
  int64_t left_big;               /* the same for large and huge blocks */
  /* Blocks put in a proxy since it was last charged (filled or kept),
   * and how many may be: the blocks certainly not sampled (0 = none
   * more).  The inline pop can take no more than were put in. */
  uint32_t placed[FA_NUM_CLASSES];
  uint32_t limit[FA_NUM_CLASSES];
  /* how many the proxy may hold: those of the fill and up to the
   * rcache's bounds of other threads' blocks */
  uint32_t cap[FA_NUM_CLASSES];
  /* Such blocks kept in a list lent from a page: pushed and popped at
   * its front, so they sit in front of what is left of the lent blocks.
   * front: how many (as of seen, the proxy's `used` when last brought up
   * to date); lent_popped: the lent blocks malloc took meanwhile. */
  uint32_t front[FA_NUM_CLASSES];
  uint32_t seen[FA_NUM_CLASSES];
  uint32_t lent_popped[FA_NUM_CLASSES];
  fa_page_t proxy[FA_NUM_CLASSES];
  /* Heartbeats seen (_fa_prof_tick), and at which one each class's proxy
   * was last filled. */
  uint32_t epoch;
  uint32_t filled[FA_NUM_CLASSES];
  /* a proxy's flush is under way (fa_prof_flush_class holds the page it
   * was lent from in a local): no segment may leave the heap meanwhile */
  unsigned flushing;
} fa_prof_heap_t;
static pthread_mutex_t fa_prof_heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static fa_prof_heap_t **fa_prof_heaps;
static size_t fa_prof_heap_count;
static FA_TLS fa_prof_heap_t *fa_prof_mine;   /* the calling thread's */

/* ------------------------------------------------------------------------
 * The sampling interval: -rate * ln(U), U uniform in (0, 1].
 * ---------------------------------------------------------------------- */
static uint64_t fa_prof_random(fa_prof_tls_t *t) {
  uint64_t x = t->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t->rng = x;
  return x * 0x2545f4914f6cdd1dULL;
}

/* ln(x) for x in (0, 1], without libm: x = m 2^e with m in [1/sqrt2,
 * sqrt2], and ln m = 2 atanh((m - 1) / (m + 1)) by its series. */
static double fa_ln(double x) {
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & (((uint64_t)1 << 52) - 1)) | ((uint64_t)1023 << 52);
  double m;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m /= 2;
    e++;
  }
  /* |z| <= 0.172, so 12 terms reach the double's precision; the
   * reciprocals are constants (twelve divisions were most of the cost of
   * an interval, which every sample and every heap's reset pay for) */
  static const double inv[12] = {1.0,      1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11,
                                 1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23};
  double z = (m - 1) / (m + 1), z2 = z * z, term = z, s = 0;
  for (int k = 0; k < 12; k++) {
    s += term * inv[k];
    term *= z2;
  }
  return 2 * s + e * 0.6931471805599453;
}

static int64_t fa_prof_interval(fa_prof_tls_t *t) {
  double u = (double)((fa_prof_random(t) >> 11) + 1) / 9007199254740992.0;   /* 2^53 */
  if (_fa_opt.prof_sample <= 1) return 1;   /* every allocation */
  double rate = (double)_fa_opt.prof_sample;
  double v = -fa_ln(u) * rate;
  if (v > 4e18) v = 4e18;
  return (int64_t)v + 1;
}

/* ------------------------------------------------------------------------
 * The sample tables
 * ---------------------------------------------------------------------- */
static fa_prof_shard_t *fa_prof_shard(uintptr_t addr) {
  uint64_t h = (uint64_t)addr * 0x9e3779b97f4a7c15ULL;
  return &fa_prof_shards[h >> 61];   /* the top 3 bits: FA_PROF_SHARDS = 8 */
}

static size_t fa_prof_slot_of(uintptr_t addr) {
  uint64_t h = (uint64_t)(addr >> 4) * 0xff51afd7ed558ccdULL;
  return (size_t)(h >> 40) & (FA_PROF_SLOTS - 1);
}

/* Lock held. */
static bool fa_prof_insert(fa_prof_shard_t *s, uintptr_t addr, size_t size, void *const *pc,
                           unsigned depth) {
  if (s->slots == NULL) {
    s->slots = _fa_os_map_table(FA_PROF_SLOTS * sizeof(fa_prof_slot_t));
    s->records = _fa_os_map_table(FA_PROF_RECORDS * sizeof(fa_prof_record_t));
    if (s->slots == NULL || s->records == NULL) return false;   /* (leaks a table: rare) */
  }
  uint32_t r;
  if (s->free_list != 0) {
    r = s->free_list - 1;
    s->free_list = s->records[r].next_free;
  } else if (s->records_used < FA_PROF_RECORDS) {
    r = s->records_used++;
  } else {
    return false;
  }
  fa_prof_record_t *rec = &s->records[r];
  rec->size = size;
  rec->depth = depth;
  memcpy(rec->pc, pc, depth * sizeof(void *));
  size_t i = fa_prof_slot_of(addr);
  while (s->slots[i].addr != 0) i = (i + 1) & (FA_PROF_SLOTS - 1);
  s->slots[i].addr = addr;
  s->slots[i].record = r;
  s->live++;
  s->bytes += size;
  return true;
}

/* Lock held.  Linear probing with backward-shift deletion: no tombstones. */
static bool fa_prof_remove(fa_prof_shard_t *s, uintptr_t addr) {
  if (s->slots == NULL || s->live == 0) return false;
  size_t i = fa_prof_slot_of(addr);
  while (s->slots[i].addr != addr) {
    if (s->slots[i].addr == 0) return false;
    i = (i + 1) & (FA_PROF_SLOTS - 1);
  }
  uint32_t r = s->slots[i].record;
  s->bytes -= s->records[r].size;
  s->records[r].next_free = s->free_list;
  s->free_list = r + 1;
  s->live--;
  size_t j = i;
  for (;;) {
    j = (j + 1) & (FA_PROF_SLOTS - 1);
    if (s->slots[j].addr == 0) break;
    size_t home = fa_prof_slot_of(s->slots[j].addr);
    /* move j back into the hole at i unless its home lies in (i, j] */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    s->slots[i] = s->slots[j];
    i = j;
  }
  s->slots[i].addr = 0;
  return true;
}

/* ------------------------------------------------------------------------
 * Stacks: our own frames are dropped, so that the first address of a
 * sample is in the code that called malloc.
 * ---------------------------------------------------------------------- */
static int fa_prof_find_text(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t me = (uintptr_t)arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (me < lo || me >= hi) continue;
    atomic_store_explicit(&fa_prof_text_lo, lo, memory_order_relaxed);
    atomic_store_explicit(&fa_prof_text_hi, hi, memory_order_relaxed);
    /* Linked into the program itself: its text is the caller's too. */
    return info->dlpi_name == NULL || info->dlpi_name[0] == '\0' ? 2 : 1;
  }
  return 0;
}

#ifdef FA_HAVE_UNWIND
/* backtrace(3) of glibc is this over the same unwinder, plus a frame of
 * its own to unwind: one of the six or seven a sample of larson walks,
 * each some hundreds of cycles with the unwinder's tables out of cache. */
typedef struct fa_unwind_s {
  void **pc;
  int n, max;
  uintptr_t cfa;
} fa_unwind_t;

/* libgcc's unwinder, found when the first sample is taken, as
 * backtrace(3) finds it: linked against, libgcc_s would be loaded into
 * every process that loads the library, profiling or not (84 KiB of
 * resident memory, and one more object to map at each start). */
typedef struct fa_unwinder_s {
  _Unwind_Reason_Code (*backtrace)(_Unwind_Trace_Fn, void *);
  _Unwind_Ptr (*get_ip)(struct _Unwind_Context *);
  _Unwind_Word (*get_cfa)(struct _Unwind_Context *);
  fa_find_fde_t find_fde;   /* for unwind.c's walk; NULL: libgcc's only */
} fa_unwinder_t;
static fa_unwinder_t fa_unwinder;
/* 0 not looked for, 1 found, 2 none, 3 a thread is looking (it alone
 * writes fa_unwinder, before it stores 1) */
static _Atomic int fa_unwinder_state;

static bool fa_unwinder_find(void *from, fa_unwinder_t *u) {
  void *f[3] = {dlsym(from, "_Unwind_Backtrace"), dlsym(from, "_Unwind_GetIP"),
                dlsym(from, "_Unwind_GetCFA")};
  if (f[0] == NULL || f[1] == NULL || f[2] == NULL) return false;
  memcpy(&u->backtrace, &f[0], sizeof f[0]);   /* object to function pointer */
  memcpy(&u->get_ip, &f[1], sizeof f[1]);
  memcpy(&u->get_cfa, &f[2], sizeof f[2]);
  void *find = dlsym(from, "_Unwind_Find_FDE");
  memcpy(&u->find_fde, &find, sizeof find);
  return true;
}

/* Called under the sampling thread's guard: what dlopen allocates is not
 * sampled.  One thread looks, claiming the lookup with a compare-and-swap;
 * a sample taken meanwhile by another thread is walked by backtrace(3)
 * (NULL).  Each used to look and write fa_unwinder itself, which a thread
 * that had seen another's "found" could be reading meanwhile (a data race
 * TSan reported in stress_realloc under FANCY_PROF_SAMPLE=4k).  A child
 * forked during the lookup keeps backtrace(3). */
static const fa_unwinder_t *fa_prof_unwinder(void) {
  int state = atomic_load_explicit(&fa_unwinder_state, memory_order_acquire);
  if (fa_likely(state == 1)) return &fa_unwinder;
  if (state != 0 ||
      !atomic_compare_exchange_strong_explicit(&fa_unwinder_state, &state, 3, memory_order_acquire,
                                               memory_order_acquire))
    return state == 1 ? &fa_unwinder : NULL;
  fa_test_point(FA_TP_UNWINDER_CLAIMED, NULL);
  fa_unwinder_t u;
  bool found = fa_unwinder_find(RTLD_DEFAULT, &u);   /* already loaded (C++) */
  if (!found) {
    void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    found = lib != NULL && fa_unwinder_find(lib, &u);
  }
  if (found) fa_unwinder = u;
  atomic_store_explicit(&fa_unwinder_state, found ? 1 : 2, memory_order_release);
  return found ? &fa_unwinder : NULL;
}

static _Unwind_Reason_Code fa_prof_unwind_one(struct _Unwind_Context *ctx, void *arg) {
  fa_unwind_t *u = arg;
  uintptr_t ip = (uintptr_t)fa_unwinder.get_ip(ctx), cfa = (uintptr_t)fa_unwinder.get_cfa(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  /* no progress (as backtrace(3) checks): a broken frame, stop */
  if (u->n > 0 && (uintptr_t)u->pc[u->n - 1] == ip && u->cfa == cfa) return _URC_END_OF_STACK;
  u->cfa = cfa;
  u->pc[u->n++] = (void *)ip;
  return u->n < u->max ? _URC_NO_REASON : _URC_END_OF_STACK;
}
#endif

static unsigned fa_prof_stack(void **pc, unsigned max) {
  if (atomic_load_explicit(&fa_prof_text_state, memory_order_acquire) == 0) {
    int found = dl_iterate_phdr(fa_prof_find_text, (void *)(uintptr_t)&fa_prof_stack);
    atomic_store_explicit(&fa_prof_text_state, found == 1 ? 1 : 2, memory_order_release);
  }
  void *raw[FA_PROF_DEPTH + 16];
#if defined FA_HAVE_UNWIND
  int n;
  const fa_unwinder_t *unwinder = fa_prof_unwinder();
  if (fa_likely(unwinder != NULL)) {
    n = _fa_unwind(raw, FA_PROF_DEPTH + 16, unwinder->find_fde);   /* rules kept per address */
    if (fa_unlikely(n < 0)) {
      fa_unwind_t u = {raw, 0, FA_PROF_DEPTH + 16, 0};
      unwinder->backtrace(fa_prof_unwind_one, &u);
      n = u.n;
    }
  } else {
    n = backtrace(raw, FA_PROF_DEPTH + 16);   /* its own way, or none */
  }
#elif defined FA_HAVE_BACKTRACE
  int n = backtrace(raw, FA_PROF_DEPTH + 16);
#else
  /* No backtrace(3) in the C library (musl): samples are counted with an
   * empty stack, so the profile's totals hold but name no call site. */
  int n = 0;
#endif
  int skip = 0;
  if (atomic_load_explicit(&fa_prof_text_state, memory_order_acquire) == 1) {
    /* past the last of our frames (a sanitizer's backtrace interceptor
     * may come first) */
    uintptr_t lo = atomic_load_explicit(&fa_prof_text_lo, memory_order_relaxed);
    uintptr_t hi = atomic_load_explicit(&fa_prof_text_hi, memory_order_relaxed);
    for (int i = 0; i < n; i++)
      if ((uintptr_t)raw[i] >= lo && (uintptr_t)raw[i] < hi) skip = i + 1;
  } else {
    skip = n > 3 ? 3 : 0;   /* this function, the sampler, malloc's slow path */
  }
  unsigned depth = 0;
  for (int i = skip; i < n && depth < max; i++) pc[depth++] = raw[i];
  return depth;
}

/* ------------------------------------------------------------------------
 * Sampling
 * ---------------------------------------------------------------------- */
/* A sampled block of a size class: where malloc would put it, but from
 * one of the heap's own class spans (not from the heap's list of other
 * threads' blocks, nor a proxy): the span's free_mark is its owner's to
 * write.  *page is set to the span. */
static void *fa_prof_sample_block(fa_heap_t *heap, unsigned cls, fa_page_t **page) {
  fa_page_t *pg = heap->queues[cls].first;
  void *p = pg != NULL ? fa_page_take(pg) : NULL;
  if (p == NULL) {
    pg = _fa_page_find(heap, cls);
    if (pg == NULL) {
      errno = ENOMEM;
      return NULL;
    }
    p = fa_page_take(pg);
  }
  *page = pg;
  return p;
}

static FA_NOINLINE void *fa_prof_sample(fa_heap_t *heap, size_t n, fa_prof_tls_t *t) {
  t->busy = true;
  fa_page_t *page = NULL;
  /* A sampled block of a size class stays where malloc would put it, in
   * one of the heap's class spans, which is marked while it holds a
   * sample: every free of the span then takes the generic path, which
   * drops the sample.  Below 4 KiB it is a block of the 4 KiB class, whose
   * spans hold 16 blocks: marking a span of the block's own class sent an
   * eighth of the frees of every sampled class the generic path (a sample
   * marks 64 KiB of blocks per 512 KiB), and larson's small blocks paid
   * 16-22% so.  A span of its own (a large block), as before, cost a span
   * taken and freed per sample, and page faults where a freed one had been
   * purged: larson at 8 threads ran 5% faster, in 6% less memory, with the
   * 4 KiB class (bench/README.md).  Counted at the size of n's class, as
   * the countdowns count. */
  void *p;
  size_t size = n;
  if (n > FA_MEDIUM_MAX) {
    p = _fa_malloc_raw(heap, n);
  } else {
    unsigned cls = fa_size_class(n);
    size = _fa_class_size[cls];
    if (size < FA_PROF_INPLACE_MIN) cls = fa_size_class(FA_PROF_INPLACE_MIN);
    p = fa_prof_sample_block(heap, cls, &page);
  }
  if (p != NULL) {
    void *pc[FA_PROF_DEPTH];
    unsigned depth = fa_prof_stack(pc, FA_PROF_DEPTH);
    fa_prof_shard_t *s = fa_prof_shard((uintptr_t)p);
    pthread_mutex_lock(&s->lock);
    bool ok = fa_prof_insert(s, (uintptr_t)p, size, pc, depth);
    pthread_mutex_unlock(&s->lock);
    if (!ok) {
      atomic_fetch_add_explicit(&fa_prof_dropped, 1, memory_order_relaxed);
    } else if (page != NULL) {
      /* Before p is handed out: until its sample is dropped, every free
       * of the span takes the generic path, which drops it (free.c). */
      fa_store(page->free_mark, FA_FREE_MARK);   /* then the count: see validate.c */
      uint32_t idx = fa_block_index(page, (uintptr_t)p), w, nw;
      w = atomic_load_explicit(&page->samples, memory_order_relaxed);
      do {   /* the one sample's index, or FA_SAMPLE_ANY once there are two */
        uint32_t live = FA_SAMPLE_COUNT(w);
        uint32_t one = live == 0 && idx < FA_SAMPLE_ANY ? idx : FA_SAMPLE_ANY;
        nw = one << 16 | (live + 1);
      } while (!atomic_compare_exchange_weak_explicit(&page->samples, &w, nw,
                                                      memory_order_release, memory_order_relaxed));
    }
  }
  t->busy = false;
  return p;
}

static void fa_prof_dump_pending(void) {
  if (atomic_exchange_explicit(&fa_prof_pending, 0, memory_order_relaxed) == 0) return;
  fa_prof_tls.busy = true;
  fancy_prof_dump(NULL);
  fa_prof_tls.busy = false;
}

static void fa_prof_seed(fa_prof_tls_t *t) {
  if (t->rng == 0) t->rng = (_fa_secret ^ (uintptr_t)t ^ ((uint64_t)_fa_clock_ms() << 32)) | 1;
}

/* Fresh countdowns and empty proxies for heap, now the calling thread's. */
static void fa_prof_heap_reset(fa_prof_heap_t *ph, fa_heap_t *heap) {
  fa_prof_tls_t *t = &fa_prof_tls;
  fa_prof_seed(t);
  memset(ph, 0, sizeof *ph);
  ph->heap = heap;
  ph->thread = pthread_self();
  for (size_t c = 0; c < FA_NUM_CLASSES; c++) ph->left[c] = fa_prof_interval(t);
  ph->left_big = fa_prof_interval(t);
}

/* heap's sampling state when heap is the calling thread's heap in the
 * default instance; NULL otherwise (or when no memory can be had). */
static fa_prof_heap_t *fa_prof_heap_of(fa_heap_t *heap, bool create) {
  fa_prof_heap_t *ph = fa_prof_mine;
  if (fa_likely(ph != NULL && ph->heap == heap)) {
    heap->prof = ph;
    return ph;
  }
  if (heap != fa_heap_get() || heap == &_fa_heap_empty) return NULL;
  pthread_mutex_lock(&fa_prof_heaps_lock);
  ph = NULL;
  for (size_t i = 0; i < fa_prof_heap_count; i++)
    if (fa_prof_heaps[i]->heap == heap) ph = fa_prof_heaps[i];
  if (ph == NULL && create) {
    if (fa_prof_heaps == NULL)
      fa_prof_heaps = _fa_os_map_table(FA_PROF_MAX_HEAPS * sizeof(fa_prof_heap_t *));
    if (fa_prof_heaps != NULL && fa_prof_heap_count < FA_PROF_MAX_HEAPS) {
      ph = _fa_os_map_table(sizeof *ph);
      if (ph != NULL) {
        fa_prof_heap_reset(ph, heap);
        fa_prof_heaps[fa_prof_heap_count++] = ph;
      }
    }
  } else if (ph != NULL && !pthread_equal(ph->thread, pthread_self())) {
    /* The heap's earlier thread exited (its proxies were flushed then) or
     * vanished in a fork (their blocks stay counted as live: dropped). */
    fa_prof_heap_reset(ph, heap);
  }
  pthread_mutex_unlock(&fa_prof_heaps_lock);
  if (ph != NULL) fa_prof_mine = heap->prof = ph;
  return ph;
}

/* _fa_heap_set_direct: where the direct tables lead class cls. */
fa_page_t *_fa_prof_direct(fa_heap_t *heap, unsigned cls) {
  fa_prof_heap_t *ph = fa_prof_heap_of(heap, false);
  return ph != NULL ? &ph->proxy[cls] : &_fa_page_empty;
}

/* The pops since the last look took the kept blocks in front first. */
static void fa_prof_front_sync(fa_prof_heap_t *ph, unsigned cls) {
  uint32_t pops = ph->proxy[cls].used - ph->seen[cls];
  uint32_t k = pops < ph->front[cls] ? pops : ph->front[cls];
  ph->seen[cls] = ph->proxy[cls].used;
  ph->front[cls] -= k;
  ph->lent_popped[cls] += pops - k;
}

/* The proxy's blocks taken by malloc since it was last looked at. */
static void fa_prof_charge(fa_prof_heap_t *ph, unsigned cls) {
  fa_page_t *px = &ph->proxy[cls];
  ph->left[cls] -= (int64_t)px->used * _fa_class_size[cls];
  px->used = 0;
  ph->placed[cls] = ph->limit[cls] = 0;   /* until the next fill */
  ph->front[cls] = ph->seen[cls] = ph->lent_popped[cls] = 0;
}

/* Block by block, up to m blocks (and FA_PROF_BATCH_BYTES), as malloc
 * would take them: the fallback when no whole list can be lent. */
static size_t fa_prof_fill_each(fa_page_t *px, fa_heap_t *heap, unsigned cls, size_t m) {
  fa_page_t *rc = &heap->rcache[cls];
  size_t bsize = _fa_class_size[cls], cap = FA_PROF_BATCH_BYTES / bsize;
  if (cap > FA_PROF_BATCH_MAX) cap = FA_PROF_BATCH_MAX;
  if (m > cap) m = cap;
  for (size_t i = 0; i < m; i++) {
    fa_block_t *b = NULL;
    if (rc->free != NULL) b = fa_page_take(rc);
    if (b == NULL && heap->queues[cls].first != NULL) b = fa_page_take(heap->queues[cls].first);
    if (b == NULL) b = _fa_malloc_raw(heap, bsize);
    if (b == NULL) return i;
    b->tag = fa_block_tag(b);
    b->next = px->free;
    px->free = b;
  }
  return m;
}

/* Give the proxy of class cls up to m blocks that malloc's inline path
 * may hand out.  Without walking a list where it can: the heap's whole
 * list of other threads' blocks, or a page's whole free list (its length
 * is capacity - used when the local list is empty), is lent as it is,
 * its blocks counted as used by their pages; or a run of the page's
 * never-used blocks is reserved (capacity moves past it) and the proxy
 * hands it out in place, as fa_page_take does, without touching it. */
static void fa_prof_fill(fa_prof_heap_t *ph, fa_heap_t *heap, unsigned cls, size_t m) {
  fa_page_t *px = &ph->proxy[cls], *rc = &heap->rcache[cls];
  fa_page_t *src = heap->queues[cls].first;
  px->capacity = px->reserved = px->limit = 0;
  px->head = NULL;        /* the page lent from, when one page lent */
  px->span_pages = 0;     /* how many of its free blocks */
  size_t placed = 0;
  if (rc->free != NULL) {
    size_t kept = heap->rcache_pushed[cls] - rc->used;
    if (kept <= m) {
      px->free = rc->free;
      fa_rcache_reset(heap, cls);
      placed = kept;
    } else {
      placed = fa_prof_fill_each(px, heap, cls, m);
    }
  } else if (src != NULL) {
    if (src->free == NULL && src->local_free != NULL) {
      src->free = src->local_free;
      src->local_free = NULL;
    }
    size_t len = src->capacity - src->used;
    if (src->free != NULL && len <= m) {
      /* both lists: malloc's inline pop takes the first, the generic
       * path moves the second up (no walk over cold blocks) */
      px->free = src->free;
      px->local_free = src->local_free;
      px->head = src;
      px->span_pages = (uint32_t)len;
      src->free = src->local_free = NULL;
      fa_store(src->used, src->used + (uint32_t)len);
    } else if (src->free == NULL && src->capacity < src->reserved) {
      size_t k = src->reserved - src->capacity;
      if (k > m) k = m;
      px->head = src;
      px->start = src->start + (size_t)src->capacity * src->bsize;
      px->bsize = src->bsize;
      px->zeroed = src->zeroed;
      px->reserved = px->limit = (uint32_t)k;
      fa_store(src->capacity, src->capacity + (uint32_t)k);
      if (src->limit < src->capacity) src->limit = src->capacity;
      fa_store(src->used, src->used + (uint32_t)k);
    } else {
      placed = fa_prof_fill_each(px, heap, cls, m);
    }
  } else {
    placed = fa_prof_fill_each(px, heap, cls, m);
  }
  /* The proxy may take this thread's frees of other threads' blocks, up
   * to m blocks in all (_fa_prof_keep). */
  if (px->head != NULL) placed = px->span_pages + px->reserved;
  size_t bsize = _fa_class_size[cls], others = FA_RCACHE_BYTES / bsize;
  ph->placed[cls] = (uint32_t)placed;
  ph->cap[cls] = (uint32_t)placed + (uint32_t)(others < FA_RCACHE_MAX ? others : FA_RCACHE_MAX);
  ph->limit[cls] = m < UINT32_MAX ? (uint32_t)m : UINT32_MAX;
  ph->filled[cls] = ph->epoch;
  _fa_heap_set_direct(heap, cls, heap->queues[cls].first);
}

/* free of another thread's block of class cls, when profiling is on: the
 * proxy keeps it for this thread's next malloc of the class, as the
 * heap's list of such blocks (rcache) does without profiling, which the
 * proxy stands in front of: left there, that list would only be drained
 * at the proxy's next fill, and fill up and overflow into remote frees
 * meanwhile.  Within the same bounds as that list, and only while the
 * inline pop cannot take more blocks than the class's countdown allows.
 * False when the block should go the usual way. */
bool _fa_prof_keep(fa_heap_t *heap, unsigned cls, fa_block_t *b) {
  /* heap is the calling thread's; its state was set by the fill */
  fa_prof_heap_t *ph = heap->prof;
  if (ph == NULL || ph->placed[cls] >= ph->limit[cls]) return false;
  fa_page_t *px = &ph->proxy[cls];
  if (ph->placed[cls] - px->used >= ph->cap[cls]) return false;   /* holds enough */
  b->tag = fa_block_tag(b);
  b->next = px->free;
  px->free = b;
  ph->placed[cls]++;
  if (px->head != NULL) {   /* in front of a lent list: see fa_prof_flush_class */
    fa_prof_front_sync(ph, cls);
    ph->front[cls]++;
  }
  return true;
}

bool _fa_prof_reserved(const void *p) {
  uintptr_t u = (uintptr_t)p;
  pthread_mutex_lock(&fa_prof_heaps_lock);
  bool found = false;
  for (size_t i = 0; i < fa_prof_heap_count && !found; i++) {
    for (unsigned cls = 0; cls < FA_NUM_CLASSES && !found; cls++) {
      const fa_page_t *px = &fa_prof_heaps[i]->proxy[cls];
      uint8_t *start = __atomic_load_n(&px->start, __ATOMIC_RELAXED);
      uint32_t bsize = fa_load(px->bsize), from = fa_load(px->capacity), to = fa_load(px->reserved);
      found = from < to && u >= (uintptr_t)start + (size_t)from * bsize &&
              u < (uintptr_t)start + (size_t)to * bsize;
    }
  }
  pthread_mutex_unlock(&fa_prof_heaps_lock);
  return found;
}

/* After the last block of warm, a list of page src. */
static void fa_prof_append(const fa_page_t *src, fa_block_t *warm, fa_block_t *list) {
  for (uint32_t n = 1; warm->next != NULL; n++, warm = warm->next)
    if (n >= src->capacity) _fa_fatal("heap corruption: a free list of page %p loops", (void *)src->start);
  warm->next = list;
}

/* The lists lent from page src go back to it whole, into its two list
 * heads where they are empty, else each after the last block of one of
 * the page's own lists.  Those blocks were freed on this thread since the
 * fill and are warm, where the lent ones are cold: walking these block by
 * block, each a cache miss, was most of what a thread's exit cost larson
 * with profiling on. */
static void fa_prof_give_back(fa_page_t *src, fa_block_t *const lent[2]) {
  fa_block_t *warm[2] = {src->free, src->local_free};
  int w = 0;
  for (int i = 0; i < 2; i++) {
    if (lent[i] == NULL) continue;
    if (src->free == NULL) {
      src->free = lent[i];
    } else if (src->local_free == NULL) {
      src->local_free = lent[i];
    } else {   /* both taken: as many warm lists as lent ones left */
      while (warm[w] == NULL) w++;
      fa_prof_append(src, warm[w++], lent[i]);
    }
  }
}

/* What the proxy of class cls still holds goes back: a lent list or run
 * to its page at once when it can, else block by block, as frees. */
static void fa_prof_flush_class(fa_prof_heap_t *ph, fa_heap_t *heap, unsigned cls) {
  fa_page_t *px = &ph->proxy[cls], *src = px->head;
  ph->flushing++;   /* src is held below: see _fa_prof_leave_segment */
  fa_prof_front_sync(ph, cls);
  uint32_t front = ph->front[cls], popped = ph->lent_popped[cls];
  fa_prof_charge(ph, cls);
  uint32_t from = px->capacity, to = px->reserved;
  fa_store(px->capacity, 0u);
  fa_store(px->reserved, 0u);
  px->limit = 0;
  px->head = NULL;
  uint32_t lent = px->span_pages;
  px->span_pages = 0;
  if (src != NULL && lent > popped) {
    /* other threads' blocks in front, block by block (each free counts
     * itself); then the rest of the lent lists whole, and its count */
    for (fa_block_t *b; front > 0 && (b = px->free) != NULL; front--) {
      px->free = b->next;
      b->tag = 0;
      fa_heap_free(heap->domain, heap, b);
    }
    fa_block_t *lists[2] = {px->free, px->local_free};
    px->free = px->local_free = NULL;
    fa_prof_give_back(src, lists);
    fa_store(src->used, src->used - (lent - popped));
    if (src->used == 0) _fa_page_retire(heap, src);
  } else if (from < to && src != NULL &&
             src->start + (size_t)src->capacity * src->bsize == px->start + (size_t)to * px->bsize) {
    fa_store(src->capacity, src->capacity - (to - from));   /* never handed out */
    fa_store(src->used, src->used - (to - from));
    from = to;
    if (src->used == 0) _fa_page_retire(heap, src);
  }
  /* what is left, block by block: each free counts itself in its page
   * (those lent from src were counted as used when lent) */
  fa_block_t *lists[2] = {px->free, px->local_free};
  px->free = px->local_free = NULL;
  fa_block_t *b;
  for (int i = 0; i < 2; i++) {
    for (b = lists[i]; b != NULL;) {
      fa_block_t *next = b->next;
      b->tag = 0;   /* handed out, and freed at once */
      fa_heap_free(heap->domain, heap, b);
      b = next;
    }
  }
  for (uint32_t i = from; i < to; i++) {
    b = (fa_block_t *)(px->start + (size_t)i * px->bsize);
    b->tag = 0;
    fa_heap_free(heap->domain, heap, b);
  }
  ph->flushing--;
}

/* A busy proxy's share of the heartbeat: the other threads' blocks it
 * kept, in front of its lent list, go back to their pages, as the heap's
 * own list of such blocks does at every heartbeat (fa_rcache_return in
 * free.c).  Kept for good, the blocks of a thread that no longer calls the
 * allocator (larson's main thread) went round between this thread's
 * malloc and free: each of their frees took the generic path, and larson
 * with one long-lived thread ran 20% slower with profiling on and no
 * sample.  Blocks kept while no list is lent are not counted apart from
 * the rest (front); they go back at the proxy's flush. */
static void fa_prof_give_back_kept(fa_prof_heap_t *ph, unsigned cls) {
  fa_page_t *px = &ph->proxy[cls];
  if (px->head == NULL) return;
  fa_prof_front_sync(ph, cls);
  uint32_t n = 0;
  for (fa_block_t *b; ph->front[cls] > 0 && (b = px->free) != NULL; ph->front[cls]--, n++) {
    px->free = b->next;
    _fa_kept_give_back(b);
  }
  ph->placed[cls] -= n;   /* never handed out: not charged to the countdown */
}

/* Everything back: the proxies (thread exit, trim, statistics, memory
 * pressure). */
void _fa_prof_flush(fa_heap_t *heap) {
  fa_prof_heap_t *ph = fa_prof_heap_of(heap, false);
  if (ph == NULL) return;
  for (unsigned cls = 0; cls < FA_NUM_CLASSES; cls++) fa_prof_flush_class(ph, heap, cls);
}

/* The heartbeat's share: only what sat idle since the heartbeat before
 * last.  A class that malloc keeps refilling keeps its proxy: giving
 * them all back at every heartbeat, to fill them again at once, cost larson about 2%
 * (a heartbeat every few thousand operations, ~25,000 cycles each).  What
 * a proxy holds is bounded as before (the blocks up to the class's next
 * sample, and the rcache's bounds of other threads' blocks), and an idle
 * class gives it back within two heartbeats. */
void _fa_prof_tick(fa_heap_t *heap) {
  fa_prof_heap_t *ph = fa_prof_heap_of(heap, false);
  if (ph == NULL) return;
  uint32_t now = ++ph->epoch;
  for (unsigned cls = 0; cls < FA_NUM_CLASSES; cls++) {
    if (now - ph->filled[cls] > 1) fa_prof_flush_class(ph, heap, cls);
    else fa_prof_give_back_kept(ph, cls);
  }
}

/* Every malloc that misses the inline path, when profiling is on. */
void *_fa_prof_malloc(fa_heap_t *heap, size_t n) {
  fa_prof_tls_t *t = &fa_prof_tls;
  if (fa_unlikely(atomic_load_explicit(&fa_prof_pending, memory_order_relaxed) != 0) && !t->busy)
    fa_prof_dump_pending();
  if (t->busy || heap->domain != &_fa_domain_default) return _fa_malloc_raw(heap, n);
  fa_prof_heap_t *ph = fa_prof_heap_of(heap, true);
  if (fa_unlikely(ph == NULL)) {   /* no room for the state: one countdown */
    fa_prof_seed(t);
    t->left -= (int64_t)(n < INT64_MAX ? n : INT64_MAX);
    if (t->left > 0) return _fa_malloc_raw(heap, n);
    t->left = fa_prof_interval(t);
    return fa_prof_sample(heap, n, t);
  }
  if (n > FA_MEDIUM_MAX) {
    ph->left_big -= (int64_t)(n < INT64_MAX ? n : INT64_MAX);
    if (ph->left_big > 0) return _fa_malloc_raw(heap, n);
    fa_prof_seed(t);
    ph->left_big = fa_prof_interval(t);
    return fa_prof_sample(heap, n, t);
  }
  unsigned cls = fa_size_class(n);
  fa_page_t *px = &ph->proxy[cls];
  if (px->free == NULL && px->local_free != NULL) {   /* the second list lent (fa_prof_fill) */
    px->free = px->local_free;
    px->local_free = NULL;
  }
  void *b = fa_page_take(px);   /* counted when charged */
  if (b != NULL) return b;
  fa_prof_charge(ph, cls);
  /* empty: it no longer holds anything of the page it was lent from */
  px->head = NULL;
  px->span_pages = 0;
  px->capacity = px->reserved = px->limit = 0;
  int64_t bsize = (int64_t)_fa_class_size[cls];
  ph->left[cls] -= bsize;
  if (ph->left[cls] <= 0) {
    ph->left[cls] = fa_prof_interval(t);
    return fa_prof_sample(heap, n, t);
  }
  void *p = _fa_malloc_raw(heap, n);
  /* the next m blocks of the class are certainly not sampled */
  size_t m = (size_t)((ph->left[cls] - 1) / bsize);
  if (p != NULL && m > 0) fa_prof_fill(ph, heap, cls, m);
  return p;
}

/* heap gives seg back (_fa_segment_give_back_spare): nothing the
 * profiler holds may lead into seg afterwards.  A proxy lent blocks of one
 * of its pages forgets that page: it keeps the blocks, which stay counted
 * as used in their page, and hands them out as before, and its flush then
 * frees what is left one by one, as blocks of another heap, instead of
 * writing the lists back into a page that is no longer this heap's.
 * False, and seg stays, when this cannot be done now: another thread's
 * heap, or a proxy's flush is under way.  The calling thread's own state
 * is fa_prof_mine, also while it exits: _fa_heap_done runs after the
 * thread's heap pointer was cleared, and its collection gives segments
 * back once the proxies were flushed.  Refused there (the heap pointer
 * test this had), they stayed in the heap and were abandoned: larson at
 * 8 threads refused 779 of 2,529 give-backs so, and ended with 29
 * abandoned segments against 25 without profiling. */
bool _fa_prof_leave_segment(fa_heap_t *heap, fa_segment_t *seg) {
  fa_prof_heap_t *ph = heap->prof;
  if (ph == NULL) return true;
  if (ph != fa_prof_mine || ph->flushing != 0) return false;
  for (unsigned cls = 0; cls < FA_NUM_CLASSES; cls++) {
    fa_page_t *px = &ph->proxy[cls];
    if (px->head != NULL && fa_ptr_segment(px->head) == seg) px->head = NULL;
  }
  return true;
}

bool _fa_prof_forget(const void *p) {
  fa_prof_shard_t *s = fa_prof_shard((uintptr_t)p);
  pthread_mutex_lock(&s->lock);
  bool found = fa_prof_remove(s, (uintptr_t)p);
  pthread_mutex_unlock(&s->lock);
  return found;
}

void _fa_prof_totals(size_t *samples, size_t *bytes, size_t *dropped) {
  *samples = *bytes = 0;
  for (size_t i = 0; i < FA_PROF_SHARDS; i++) {
    pthread_mutex_lock(&fa_prof_shards[i].lock);
    *samples += fa_prof_shards[i].live;
    *bytes += fa_prof_shards[i].bytes;
    pthread_mutex_unlock(&fa_prof_shards[i].lock);
  }
  *dropped = atomic_load_explicit(&fa_prof_dropped, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * The dump: gperftools' heap-profile text format, as google-pprof and
 * jeprof read it:
 *   heap profile: <objs>: <bytes> [<objs>: <bytes>] @ heap_v2/<rate>
 *   1: <bytes> [1: <bytes>] @ 0x... 0x...      (one line per sample)
 *   MAPPED_LIBRARIES:
 *   <the text of /proc/self/maps>
 * The figures are the samples as taken; the reader scales each up by
 * 1 / (1 - exp(-bytes / rate)).  Only samples still live are kept, so the
 * bracketed "allocated" pair repeats the in-use one.
 * ---------------------------------------------------------------------- */
typedef struct fa_out_s {
  int fd;
  bool failed;
  size_t len;
  char buf[4096];
} fa_out_t;

static void fa_out_flush(fa_out_t *o) {
  const char *p = o->buf;
  size_t n = o->len;
  while (n > 0 && !o->failed) {
    ssize_t w = write(o->fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      o->failed = true;
      break;
    }
    p += w;
    n -= (size_t)w;
  }
  o->len = 0;
}

static void fa_out_printf(fa_out_t *o, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  size_t n = _fa_format(line, sizeof line, fmt, ap);
  va_end(ap);
  if (o->len + n > sizeof o->buf) fa_out_flush(o);
  memcpy(o->buf + o->len, line, n);
  o->len += n;
}

static void fa_prof_write_maps(fa_out_t *o) {
  fa_out_flush(o);
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t r;
  while ((r = read(fd, o->buf, sizeof o->buf)) > 0) {
    o->len = (size_t)r;
    fa_out_flush(o);
  }
  close(fd);
}

/* <prefix>.<pid>.<what>.heap, <what> the dump's number when NULL. */
static size_t fa_put_dec(char *path, size_t n, size_t cap, uint64_t v) {
  char num[24];
  size_t k = 0;
  do num[k++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (k && n + 1 < cap) path[n++] = num[--k];
  return n;
}

static size_t fa_put_str(char *path, size_t n, size_t cap, const char *s) {
  while (*s && n + 1 < cap) path[n++] = *s++;
  return n;
}

static void fa_prof_default_path(char *path, size_t cap, const char *what) {
  size_t n = fa_put_str(path, 0, cap, fa_prof_prefix);
  n = fa_put_str(path, n, cap, ".");
  n = fa_put_dec(path, n, cap, (uint64_t)getpid());
  n = fa_put_str(path, n, cap, ".");
  if (what != NULL) n = fa_put_str(path, n, cap, what);
  else n = fa_put_dec(path, n, cap, atomic_fetch_add(&fa_prof_seq, 1));
  n = fa_put_str(path, n, cap, ".heap");
  path[n] = '\0';
}

static int fa_prof_dump_to(const char *path, size_t *samples_out) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  static fa_out_t out;   /* under the shard locks: one dump at a time */
  for (size_t i = 0; i < FA_PROF_SHARDS; i++) pthread_mutex_lock(&fa_prof_shards[i].lock);
  fa_out_t *o = &out;
  o->fd = fd;
  o->failed = false;
  o->len = 0;
  size_t samples = 0, bytes = 0;
  for (size_t i = 0; i < FA_PROF_SHARDS; i++) {
    samples += fa_prof_shards[i].live;
    bytes += fa_prof_shards[i].bytes;
  }
  fa_out_printf(o, "heap profile: %zu: %zu [%zu: %zu] @ heap_v2/%zu\n", samples, bytes, samples,
                bytes, _fa_opt.prof_sample ? _fa_opt.prof_sample : (size_t)1);
  for (size_t i = 0; i < FA_PROF_SHARDS; i++) {
    fa_prof_shard_t *s = &fa_prof_shards[i];
    if (s->slots == NULL) continue;
    for (size_t j = 0; j < FA_PROF_SLOTS; j++) {
      if (s->slots[j].addr == 0) continue;
      const fa_prof_record_t *r = &s->records[s->slots[j].record];
      fa_out_printf(o, "1: %zu [1: %zu] @", r->size, r->size);
      for (unsigned k = 0; k < r->depth; k++) fa_out_printf(o, " %p", r->pc[k]);
      fa_out_printf(o, "\n");
    }
  }
  fa_out_printf(o, "\nMAPPED_LIBRARIES:\n");
  fa_prof_write_maps(o);
  fa_out_flush(o);
  bool failed = o->failed;
  for (size_t i = FA_PROF_SHARDS; i-- > 0;) pthread_mutex_unlock(&fa_prof_shards[i].lock);
  if (close(fd) != 0) failed = true;
  if (samples_out) *samples_out = samples;
  if (failed) {
    errno = EIO;
    return -1;
  }
  return 0;
}

int fancy_prof_dump(const char *path) FANCY_NOEXCEPT {
  _fa_process_init();
  if (!_fa_opt.prof) {
    errno = ENOTSUP;
    return -1;
  }
  char name[320];
  if (path == NULL) {
    fa_prof_default_path(name, sizeof name, NULL);
    path = name;
  }
  return fa_prof_dump_to(path, NULL);
}

/* ------------------------------------------------------------------------
 * Set-up: the dump signal, fork, and the profile at exit.
 * ---------------------------------------------------------------------- */
static void fa_prof_on_signal(int sig) {
  (void)sig;
  atomic_store_explicit(&fa_prof_pending, 1, memory_order_relaxed);
}

static void fa_prof_prefork(void) {
  for (size_t i = 0; i < FA_PROF_SHARDS; i++) pthread_mutex_lock(&fa_prof_shards[i].lock);
}

static void fa_prof_postfork(void) {
  for (size_t i = FA_PROF_SHARDS; i-- > 0;) pthread_mutex_unlock(&fa_prof_shards[i].lock);
}

void _fa_prof_init(void) {
  for (size_t i = 0; i < FA_PROF_SHARDS; i++)
    pthread_mutex_init(&fa_prof_shards[i].lock, NULL);
  if (_fa_opt.prof && _fa_opt.check) {
    _fa_warn("FANCY_CHECK is on: heap profiling (FANCY_PROF) is off");
    _fa_opt.prof = false;
  }
  if (!_fa_opt.prof) return;
  const char *prefix = getenv("FANCY_PROF_PREFIX");
  if (prefix != NULL && *prefix != '\0') {
    size_t n = strlen(prefix);
    if (n >= sizeof fa_prof_prefix) n = sizeof fa_prof_prefix - 1;
    memcpy(fa_prof_prefix, prefix, n);
    fa_prof_prefix[n] = '\0';
  }
  pthread_atfork(fa_prof_prefork, fa_prof_postfork, fa_prof_postfork);
  if (_fa_opt.prof_signal > 0 && _fa_opt.prof_signal < 65) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fa_prof_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction((int)_fa_opt.prof_signal, &sa, NULL) != 0)
      _fa_warn("FANCY_PROF_SIGNAL=%zu: cannot install the handler", _fa_opt.prof_signal);
  }
}

/* FANCY_PROF_FINAL=1: the leak profile, the samples still live at exit. */
__attribute__((destructor)) static void fa_prof_final(void) {
  if (!_fa_opt.prof || !_fa_opt.prof_final) return;
  fa_prof_tls.busy = true;
  char name[320];
  fa_prof_default_path(name, sizeof name, "final");
  size_t samples = 0;
  if (fa_prof_dump_to(name, &samples) != 0) _fa_warn("cannot write the heap profile %s", name);
  else _fa_warn("leak profile: %zu sampled blocks still live, in %s", samples, name);
}
