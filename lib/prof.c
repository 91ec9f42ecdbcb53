/* SPDX-License-Identifier: MIT */
/*
 * prof.c - sampled heap profiling (FANCY_PROF=1).
 *
 * Off by default, and then nothing here runs: the only cost is malloc's
 * inline path counting down a heap's bytes until the next sample, which
 * starts at 2^63 bytes and never runs out (two instructions and a branch
 * that is never taken), and a test of _fa_opt.prof on malloc's generic
 * path and on the free paths of large and huge blocks, which are slow
 * paths.
 *
 * On, samples are the points of a Poisson process over the bytes asked
 * for, of rate 1 / FANCY_PROF_SAMPLE (as tcmalloc and jemalloc do): an
 * allocation of n bytes is sampled with probability 1 - exp(-n / rate),
 * which is what google-pprof assumes when it reads a "heap_v2/<rate>"
 * profile and scales each sample back up.  Each heap counts down its own
 * interval, drawn from an exponential distribution (the heap's
 * prof_left): malloc's inline path subtracts n after its pop and, when
 * the count goes below zero, calls _fa_prof_crossed, which puts the block
 * back, takes the sample and draws the next interval; allocations the
 * inline path does not serve are counted on the generic path
 * (_fa_prof_malloc).  A sample records n, the size asked for.
 *
 * This replaced per-class "proxy" pages that were lent blocks in advance
 * so that the inline path needed no counter: they cost larson 6-11% with
 * profiling on (colder blocks, lent lists walked back at thread exit),
 * the countdown costs it within the machine's spread (bench/README.md,
 * "Heap profiling: a countdown on the inline path").
 *
 * A sampled block of a size class is taken from one of the heap's own
 * class spans, and a span of 2 KiB blocks for a smaller one; the span is
 * marked while it holds a sample (free_mark), so that its frees take the
 * generic path, which drops the sample (see fa_prof_sample).  The free
 * paths of large and huge blocks test _fa_opt.prof and drop theirs.
 * Each sample keeps the size asked for and up to FA_PROF_DEPTH return
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
  size_t size;                    /* bytes asked for */
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
_Atomic int _fa_prof_pending;            /* the dump signal arrived */
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

/* Sampled blocks of classes this large stay in their class spans, smaller
 * ones are blocks of this class (see fa_prof_sample). */
#define FA_PROF_INPLACE_MIN 2048

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
  if (_fa_opt.prof_sample <= 1) return 0;   /* every allocation */
  double rate = (double)_fa_opt.prof_sample;
  double v = -fa_ln(u) * rate;   /* an allocation of n bytes is sampled when this is below n */
  if (v > 4e18) v = 4e18;
  return (int64_t)v;
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
 * threads' blocks): the span's free_mark is its owner's to write.  The
 * span's freed blocks first, those of other threads too (earlier samples,
 * mostly): each block of the small samples' class is a page of its own
 * or half of one, so a never-used one costs a page fault when the program
 * writes it.  *page is set to the span. */
static void *fa_prof_sample_block(fa_heap_t *heap, unsigned cls, fa_page_t **page) {
  fa_page_t *pg = heap->queues[cls].first;
  if (pg != NULL && pg->free == NULL) _fa_page_collect_lists(pg);
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
   * drops the sample.  Below 2 KiB it is a block of the 2 KiB class, whose
   * spans hold 32 blocks: marking a span of the block's own class sent an
   * eighth of the frees of every sampled class the generic path (a sample
   * marks 64 KiB of blocks per 512 KiB), and larson's small blocks paid
   * 16-22% so, and 30% with the countdown (bench/README.md).  A span of its
   * own (a large block), as before, cost a span taken and freed per
   * sample.  The 4 KiB class, as before, cost a page fault per sample
   * under larson's thread churn, where the 2 KiB class costs one per two:
   * larson at 8 threads ran 4% faster with it.  Recorded at n, as the
   * countdown counts. */
  void *p;
  size_t size = n;
  if (n > FA_MEDIUM_MAX) {
    p = _fa_malloc_raw(heap, n);
  } else {
    unsigned cls = fa_size_class(n);
    if (_fa_class_size[cls] < FA_PROF_INPLACE_MIN) cls = fa_size_class(FA_PROF_INPLACE_MIN);
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

/* The dump the signal asked for, unless this thread is taking a sample. */
static void fa_prof_dump_pending(void) {
  if (fa_prof_tls.busy || atomic_load_explicit(&_fa_prof_pending, memory_order_relaxed) == 0 ||
      atomic_exchange_explicit(&_fa_prof_pending, 0, memory_order_relaxed) == 0)
    return;
  fa_prof_tls.busy = true;
  fancy_prof_dump(NULL);
  fa_prof_tls.busy = false;
}

static void fa_prof_seed(fa_prof_tls_t *t) {
  if (t->rng == 0) t->rng = (_fa_secret ^ (uintptr_t)t ^ ((uint64_t)_fa_clock_ms() << 32)) | 1;
}

/* The bytes until heap's first sample (_fa_heap_new, on the thread that
 * will own it): drawn when profiling is on and heap serves the default
 * instance, else never (2^63 bytes). */
int64_t _fa_prof_start(const fa_domain_t *domain) {
  if (!_fa_opt.prof || domain != &_fa_domain_default) return INT64_MAX;
  fa_prof_tls_t *t = &fa_prof_tls;
  fa_prof_seed(t);
  return fa_prof_interval(t);
}

/* The countdown of the calling thread's heap ran out: draw the next
 * interval.  True when the allocation is to be sampled: not while the
 * thread takes a sample already (the unwinder may allocate), nor when
 * profiling was turned off meanwhile or heap serves another instance
 * (then the countdown never runs out again). */
static bool fa_prof_redraw(fa_heap_t *heap) {
  fa_prof_tls_t *t = &fa_prof_tls;
  if (!_fa_opt.prof || heap->domain != &_fa_domain_default) {
    heap->prof_left = INT64_MAX;
    return false;
  }
  fa_prof_seed(t);
  heap->prof_left = fa_prof_interval(t);
  return !t->busy;
}

/* malloc's inline pop took p from page, and the countdown ran out: p goes
 * back to the front of the list it came from (the page's, or the heap's
 * list of other threads' blocks), as if freed at once, and the sampled
 * block is taken where samples live (fa_prof_sample).  With profiling
 * off the countdown starts at 2^63 bytes and never gets here. */
void *_fa_prof_crossed(fa_heap_t *heap, fa_page_t *page, void *p, size_t n) {
  fa_prof_dump_pending();
  if (!fa_prof_redraw(heap)) return p;
  fa_block_t *b = p;
  b->tag = fa_block_tag(b);
  b->next = page->free;
  page->free = b;
  fa_add_owned(page->used, -1);
  void *q = fa_prof_sample(heap, n, &fa_prof_tls);
  return q != NULL ? q : _fa_malloc_raw(heap, n);
}

/* malloc's generic path, when profiling is on, calls this when a dump is
 * pending or the heap's countdown runs out at n (fa_prof_charge): the
 * allocations the inline path does not serve, larger blocks and the
 * first block of a page. */
void *_fa_prof_malloc(fa_heap_t *heap, size_t n) {
  fa_prof_dump_pending();
  if (fa_prof_charge(heap, n)) return _fa_malloc_raw(heap, n);   /* only the dump */
  void *p = fa_prof_redraw(heap) ? fa_prof_sample(heap, n, &fa_prof_tls) : NULL;
  return p != NULL ? p : _fa_malloc_raw(heap, n);
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
  atomic_store_explicit(&_fa_prof_pending, 1, memory_order_relaxed);
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
