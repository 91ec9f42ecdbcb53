/* SPDX-License-Identifier: MIT */
/*
 * huge.c - blocks above FA_LARGE_MAX, each mapped on its own.
 *
 * A huge block starts its mapping, aligned to at least 4 MiB so that its
 * 4 MiB unit of the address map belongs to it alone.  Its size lives in a
 * small open-addressing table (linear probing, backward-shift deletion)
 * under one lock; a huge allocation costs a system call anyway.
 * realloc uses mremap, which moves pages instead of copying them.
 *
 * free keeps a few freed mappings (FA_HUGE_CACHE_SLOTS, at most
 * FA_HUGE_CACHE_BYTES) mapped and warm for FANCY_PURGE_DELAY, so that a
 * program that frees and allocates big buffers again and again pays their
 * page faults once.  A cached mapping serves a request of any size (a
 * bigger one loses its tail, a smaller one grows); it stays marked huge in
 * the address map, so a second free of it is still caught.  Then it is
 * unmapped.  calloc never takes one (a fresh mapping is zero for free).
 */
#include "internal.h"

#include <sys/mman.h>

typedef struct fa_huge_entry_s {
  uintptr_t addr;     /* 0 = empty slot */
  size_t size;        /* mapping length, a multiple of 4 KiB */
  size_t align;
  fa_domain_t *domain;
} fa_huge_entry_t;

pthread_mutex_t _fa_huge_lock = PTHREAD_MUTEX_INITIALIZER;
static fa_huge_entry_t *fa_huge_table;
static size_t fa_huge_cap;      /* a power of two */
static size_t fa_huge_count;
static size_t fa_huge_bytes;

/* Freed mappings kept warm, under _fa_huge_lock. */
#define FA_HUGE_CACHE_SLOTS 8
#define FA_HUGE_CACHE_BYTES ((size_t)64 << 20)
typedef struct fa_huge_cached_s {
  uintptr_t addr;     /* 0 = empty slot */
  size_t size;
  uint64_t time;      /* ms, when it was freed */
} fa_huge_cached_t;
static fa_huge_cached_t fa_huge_cache[FA_HUGE_CACHE_SLOTS];
static size_t fa_huge_cache_bytes;

/* Mark every 4 MiB unit of [addr, addr + size) as kind in the address
 * map: free() of a pointer anywhere inside a huge block then reaches this
 * file (and aborts unless it is the block's start), instead of passing for
 * a pointer that is not ours. */
static void fa_huge_mark(uintptr_t addr, size_t size, unsigned kind) {
  for (uintptr_t u = addr; u - addr < size; u += FA_SEGMENT_SIZE) _fa_segmap_set(u, kind);
}

/* The last few huge blocks unmapped, so that a second free() of one, whose
 * address is no longer ours at all, is still reported as a double free. */
#define FA_HUGE_FREED_SLOTS 16
static _Atomic uintptr_t fa_huge_freed[FA_HUGE_FREED_SLOTS];
static _Atomic unsigned fa_huge_freed_next;

static void fa_huge_freed_note(uintptr_t addr) {
  unsigned i = atomic_fetch_add_explicit(&fa_huge_freed_next, 1, memory_order_relaxed);
  atomic_store_explicit(&fa_huge_freed[i % FA_HUGE_FREED_SLOTS], addr, memory_order_relaxed);
}

bool _fa_huge_was_freed(const void *p) {
  for (size_t i = 0; i < FA_HUGE_FREED_SLOTS; i++)
    if (atomic_load_explicit(&fa_huge_freed[i], memory_order_relaxed) == (uintptr_t)p) return true;
  return false;
}

static size_t fa_huge_slot(uintptr_t addr, size_t cap) {
  uint64_t h = (uint64_t)(addr >> FA_SEGMENT_SHIFT) * 0x9e3779b97f4a7c15ULL;
  return (size_t)(h >> 32) & (cap - 1);
}

static void fa_huge_put(fa_huge_entry_t *table, size_t cap, fa_huge_entry_t e) {
  size_t i = fa_huge_slot(e.addr, cap);
  while (table[i].addr != 0) i = (i + 1) & (cap - 1);
  table[i] = e;
}

/* Lock held.  The table itself is mapped directly, never malloc'ed. */
static bool fa_huge_grow(void) {
  size_t cap = fa_huge_cap ? fa_huge_cap * 2 : 256;
  fa_huge_entry_t *table = mmap(NULL, cap * sizeof *table, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED) return false;
  for (size_t i = 0; i < fa_huge_cap; i++)
    if (fa_huge_table[i].addr != 0) fa_huge_put(table, cap, fa_huge_table[i]);
  if (fa_huge_table != NULL) munmap(fa_huge_table, fa_huge_cap * sizeof *table);
  fa_huge_table = table;
  fa_huge_cap = cap;
  return true;
}

static fa_huge_entry_t *fa_huge_find(uintptr_t addr) {
  if (fa_huge_cap == 0) return NULL;
  size_t i = fa_huge_slot(addr, fa_huge_cap);
  while (fa_huge_table[i].addr != 0) {
    if (fa_huge_table[i].addr == addr) return &fa_huge_table[i];
    i = (i + 1) & (fa_huge_cap - 1);
  }
  return NULL;
}

static void fa_huge_remove(fa_huge_entry_t *e) {
  size_t cap = fa_huge_cap;
  size_t i = (size_t)(e - fa_huge_table);
  fa_huge_count--;
  fa_huge_bytes -= e->size;
  fa_uncount(huge, e->size);
  /* Backward-shift: pull later entries of the probe run into the hole. */
  size_t j = i;
  for (;;) {
    fa_huge_table[i].addr = 0;
    for (;;) {
      j = (j + 1) & (cap - 1);
      if (fa_huge_table[j].addr == 0) return;
      size_t home = fa_huge_slot(fa_huge_table[j].addr, cap);
      /* move j to i unless its home lies cyclically in (i, j] */
      bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) break;
    }
    fa_huge_table[i] = fa_huge_table[j];
    i = j;
  }
}

static bool fa_huge_insert(uintptr_t addr, size_t size, size_t align, fa_domain_t *d) {
  if ((fa_huge_count + 1) * 2 > fa_huge_cap && !fa_huge_grow()) return false;
  fa_huge_entry_t e = {addr, size, align, d};
  fa_huge_put(fa_huge_table, fa_huge_cap, e);
  fa_huge_count++;
  fa_huge_bytes += size;
  fa_count(huge, size);
  return true;
}

/* Lock held.  Take a cached mapping for size bytes aligned to align: the
 * smallest one that fits (its tail beyond size is unmapped), else the
 * largest smaller one, grown by mremap (its pages move with it, only the
 * new tail faults).  A program that frees big buffers and allocates others
 * of different sizes (mimalloc-bench's malloc-large: 5-25 MiB) so reuses
 * the pages of the one it freed instead of faulting in a fresh mapping.
 * The address map is kept marked huge across the remap.  0 if none. */
static uintptr_t fa_huge_cache_take(size_t size, size_t align, bool huge_pages) {
  fa_huge_cached_t *fit = NULL, *grow = NULL;
  for (size_t i = 0; i < FA_HUGE_CACHE_SLOTS; i++) {
    fa_huge_cached_t *c = &fa_huge_cache[i];
    if (c->addr == 0 || c->addr % align != 0) continue;
    if (c->size >= size) {
      if (fit == NULL || c->size < fit->size) fit = c;
    } else if (grow == NULL || c->size > grow->size) {
      grow = c;
    }
  }
  fa_huge_cached_t *c = fit != NULL ? fit : grow;
  if (c == NULL) return 0;
  uintptr_t addr = c->addr;
  if (c->size > size) {
    size_t kept = (size + FA_SEGMENT_MASK) & ~FA_SEGMENT_MASK;   /* whole units */
    if (kept < c->size) fa_huge_mark(addr + kept, c->size - kept, FA_UNIT_NONE);
    _fa_os_unmap((void *)(addr + size), c->size - size);
  } else if (c->size < size) {
    /* Unmarked first: once the pages move, the old range may be mapped by
     * another thread at once. */
    fa_huge_mark(addr, c->size, FA_UNIT_NONE);
    void *q = _fa_os_remap((void *)addr, c->size, size, align, huge_pages);
    if (q == NULL) {
      fa_huge_mark(addr, c->size, FA_UNIT_HUGE);
      return 0;
    }
    addr = (uintptr_t)q;
    fa_huge_mark(addr, size, FA_UNIT_HUGE);
  }
  fa_huge_cache_bytes -= c->size;
  fa_uncount(huge, c->size);
  c->addr = 0;
  return addr;
}

/* Lock held.  Keep a freed mapping warm if there is room; false if not. */
static bool fa_huge_cache_put(uintptr_t addr, size_t size, uint64_t now) {
  if (_fa_opt.purge_delay == 0 || size > FA_HUGE_CACHE_BYTES - fa_huge_cache_bytes) return false;
  for (size_t i = 0; i < FA_HUGE_CACHE_SLOTS; i++) {
    if (fa_huge_cache[i].addr != 0) continue;
    fa_huge_cache[i] = (fa_huge_cached_t){addr, size, now};
    fa_huge_cache_bytes += size;
    fa_count(huge, size);
    return true;
  }
  return false;
}

/* Unmap cached mappings freed delay ms ago or more (all when force). */
size_t _fa_huge_cache_decay(uint64_t now, uint64_t delay, bool force) {
  size_t n = 0;
  pthread_mutex_lock(&_fa_huge_lock);
  for (size_t i = 0; i < FA_HUGE_CACHE_SLOTS; i++) {
    fa_huge_cached_t *c = &fa_huge_cache[i];
    if (c->addr == 0 || !(force || now - c->time >= delay)) continue;
    /* Unmarked first, before the address can be mapped again. */
    fa_huge_mark(c->addr, c->size, FA_UNIT_NONE);
    _fa_os_unmap((void *)c->addr, c->size);
    fa_huge_freed_note(c->addr);
    fa_huge_cache_bytes -= c->size;
    fa_uncount(huge, c->size);
    c->addr = 0;
    n++;
  }
  pthread_mutex_unlock(&_fa_huge_lock);
  return n;
}

/* fancy_trim(pad): unmap the oldest cached mappings until what stays fits
 * in *budget (taken from it). */
size_t _fa_huge_cache_trim(size_t *budget) {
  size_t n = 0;
  pthread_mutex_lock(&_fa_huge_lock);
  while (fa_huge_cache_bytes > *budget) {
    fa_huge_cached_t *c = NULL;
    for (size_t i = 0; i < FA_HUGE_CACHE_SLOTS; i++)
      if (fa_huge_cache[i].addr != 0 && (c == NULL || fa_huge_cache[i].time < c->time))
        c = &fa_huge_cache[i];
    if (c == NULL) break;
    fa_huge_mark(c->addr, c->size, FA_UNIT_NONE);
    _fa_os_unmap((void *)c->addr, c->size);
    fa_huge_freed_note(c->addr);
    fa_huge_cache_bytes -= c->size;
    c->addr = 0;
    n++;
  }
  *budget -= fa_huge_cache_bytes;
  pthread_mutex_unlock(&_fa_huge_lock);
  return n;
}

void *_fa_huge_alloc(fa_heap_t *heap, size_t n, size_t alignment, bool zeroed) {
  _fa_process_init();
  fa_domain_t *d = heap->domain;
  if (n > PTRDIFF_MAX - FA_SEGMENT_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t size = (n + FA_OS_PAGE_SIZE - 1) & ~(size_t)(FA_OS_PAGE_SIZE - 1);
  if (size == 0) size = FA_OS_PAGE_SIZE;
  if (_fa_unit_count == 0) {
    errno = ENOMEM;
    return NULL;
  }
  size_t align = alignment > FA_SEGMENT_SIZE ? alignment : FA_SEGMENT_SIZE;
  if (!_fa_domain_charge(d, size) && !(_fa_memory_pressure(heap) && _fa_domain_charge(d, size))) {
    errno = ENOMEM;
    return NULL;
  }
  if (!zeroed) {
    pthread_mutex_lock(&_fa_huge_lock);
    uintptr_t addr = fa_huge_cache_take(size, align, d->huge_pages);
    bool ok = addr != 0 && fa_huge_insert(addr, size, align, d);
    if (addr != 0 && !ok) fa_huge_cache_put(addr, size, _fa_clock_ms());
    pthread_mutex_unlock(&_fa_huge_lock);
    if (ok) return (void *)addr;   /* still marked huge in the address map */
  }
  fa_soft_check(heap, size);   /* a new mapping: make room under the soft limit */
  void *p = _fa_os_map_aligned(size, align, d->populate, d->huge_pages);
  if (p == NULL && _fa_memory_pressure(heap))
    p = _fa_os_map_aligned(size, align, d->populate, d->huge_pages);
  if (p == NULL) {
    _fa_domain_uncharge(d, size);
    return NULL;
  }
  pthread_mutex_lock(&_fa_huge_lock);
  bool ok = fa_huge_insert((uintptr_t)p, size, align, d);
  pthread_mutex_unlock(&_fa_huge_lock);
  if (!ok) {
    _fa_os_unmap(p, size);
    _fa_domain_uncharge(d, size);
    errno = ENOMEM;
    return NULL;
  }
  fa_huge_mark((uintptr_t)p, size, FA_UNIT_HUGE);
  return p;
}

/* Give a huge block's mapping back (its table entry is gone already).
 * The map is cleared first, before the address can be handed out again. */
static void fa_huge_unmap(fa_domain_t *d, void *p, size_t size) {
  fa_huge_mark((uintptr_t)p, size, FA_UNIT_NONE);
  _fa_os_unmap(p, size);
  _fa_domain_uncharge(d, size);
  fa_huge_freed_note((uintptr_t)p);
}

/* Free a huge block of instance d: into the warm cache, or unmapped;
 * false if p is no huge block. */
bool _fa_huge_free(fa_domain_t *d, void *p) {
  uint64_t now = _fa_clock_ms();
  pthread_mutex_lock(&_fa_huge_lock);
  fa_huge_entry_t *e = fa_huge_find((uintptr_t)p);
  if (e == NULL) {
    bool freed = false;
    for (size_t i = 0; i < FA_HUGE_CACHE_SLOTS; i++) freed |= fa_huge_cache[i].addr == (uintptr_t)p;
    pthread_mutex_unlock(&_fa_huge_lock);
    if (freed) _fa_invalid_free(p, "double free (huge block)");
    return false;
  }
  if (e->domain != d) {
    pthread_mutex_unlock(&_fa_huge_lock);
    _fa_wrong_instance(p);
  }
  size_t size = e->size;
  fa_huge_remove(e);
  /* Above the soft limit (limit.c) the mapping goes back at once. */
  bool cached = !fa_soft_over() && fa_huge_cache_put((uintptr_t)p, size, now);
  pthread_mutex_unlock(&_fa_huge_lock);
  if (cached) _fa_domain_uncharge(d, size);
  else fa_huge_unmap(d, p, size);
  _fa_huge_cache_decay(now, _fa_opt.purge_delay, false);
  return true;
}

/* Unmap every huge block of instance d (it is being destroyed). */
size_t _fa_huge_release_domain(fa_domain_t *d) {
  size_t n = 0;
  for (;;) {
    pthread_mutex_lock(&_fa_huge_lock);
    fa_huge_entry_t *e = NULL;
    for (size_t i = 0; i < fa_huge_cap && e == NULL; i++)
      if (fa_huge_table[i].addr != 0 && fa_huge_table[i].domain == d) e = &fa_huge_table[i];
    if (e == NULL) {
      pthread_mutex_unlock(&_fa_huge_lock);
      return n;
    }
    void *p = (void *)e->addr;
    size_t size = e->size;
    fa_huge_remove(e);
    pthread_mutex_unlock(&_fa_huge_lock);
    fa_huge_unmap(d, p, size);
    n++;
  }
}

/* Is p inside a live or warm (freed, cached) huge block?  Walks back over
 * the units marked huge to the block's start.  A unit's tail beyond a
 * block that ends inside it is not the block's: another mapping may sit
 * there. */
bool _fa_huge_contains(const void *p) {
  uintptr_t u = (uintptr_t)p & ~(uintptr_t)FA_SEGMENT_MASK;
  bool inside = false;
  pthread_mutex_lock(&_fa_huge_lock);
  for (;; u -= FA_SEGMENT_SIZE) {
    fa_huge_entry_t *e = fa_huge_find(u);
    size_t size = e ? e->size : 0;
    for (size_t i = 0; i < FA_HUGE_CACHE_SLOTS && size == 0; i++)
      if (fa_huge_cache[i].addr == u) size = fa_huge_cache[i].size;
    if (size != 0) {
      inside = (uintptr_t)p - u < size;
      break;
    }
    if (u == 0 || fa_unit_kind(u - FA_SEGMENT_SIZE) != FA_UNIT_HUGE) break;
  }
  pthread_mutex_unlock(&_fa_huge_lock);
  return inside;
}

size_t _fa_huge_size(const void *p) {
  pthread_mutex_lock(&_fa_huge_lock);
  fa_huge_entry_t *e = fa_huge_find((uintptr_t)p);
  size_t size = e ? e->size : 0;
  pthread_mutex_unlock(&_fa_huge_lock);
  return size;
}

/* realloc of a huge block: mremap (pages move, nothing is copied), or a
 * copy into a normal block when it shrinks below FA_LARGE_MAX.  The table
 * lock is held across the remap: the moment mremap moves the pages another
 * thread may map the old address and want a table entry for it, which it
 * can only get after ours has moved too. */
void *_fa_huge_realloc(fa_heap_t *heap, void *p, size_t n) {
  fa_domain_t *d = heap->domain;
  pthread_mutex_lock(&_fa_huge_lock);
  fa_huge_entry_t *e = fa_huge_find((uintptr_t)p);
  if (e == NULL) {
    bool freed = false;
    for (size_t i = 0; i < FA_HUGE_CACHE_SLOTS; i++) freed |= fa_huge_cache[i].addr == (uintptr_t)p;
    pthread_mutex_unlock(&_fa_huge_lock);
    if (freed) _fa_invalid_free(p, "realloc of a freed block (huge block)");
    _fa_invalid_free(p, _fa_huge_contains(p) ? "realloc of a pointer inside a huge block"
                                             : "realloc of an invalid pointer");
  }
  if (e->domain != d) {
    pthread_mutex_unlock(&_fa_huge_lock);
    _fa_wrong_instance(p);
  }
  size_t size = e->size, align = e->align;
  if (n <= FA_LARGE_MAX || n > PTRDIFF_MAX - FA_SEGMENT_SIZE) {
    pthread_mutex_unlock(&_fa_huge_lock);
    if (n > PTRDIFF_MAX - FA_SEGMENT_SIZE) {
      errno = ENOMEM;
      return NULL;
    }
    void *q = fa_heap_malloc(heap, n);
    if (q == NULL) return NULL;
    memcpy(q, p, n < size ? n : size);
    _fa_huge_free(d, p);
    return q;
  }
  size_t new_size = (n + FA_OS_PAGE_SIZE - 1) & ~(size_t)(FA_OS_PAGE_SIZE - 1);
  if (new_size == size) {
    pthread_mutex_unlock(&_fa_huge_lock);
    return p;
  }
  if (new_size > size && !_fa_domain_charge(d, new_size - size)) {
    pthread_mutex_unlock(&_fa_huge_lock);
    errno = ENOMEM;
    return NULL;
  }
  /* Unmark first: once the pages move, the old range may be mapped by
   * another thread (as a segment) at once. */
  fa_huge_mark((uintptr_t)p, size, FA_UNIT_NONE);
  void *q = _fa_os_remap(p, size, new_size, align, d->huge_pages);
  if (q == NULL) {
    fa_huge_mark((uintptr_t)p, size, FA_UNIT_HUGE);
    pthread_mutex_unlock(&_fa_huge_lock);
    if (new_size > size) _fa_domain_uncharge(d, new_size - size);
    return NULL;
  }
  fa_huge_remove(e);                               /* e is still p's: locked */
  fa_huge_insert((uintptr_t)q, new_size, align, d);   /* room: one out, one in */
  fa_huge_mark((uintptr_t)q, new_size, FA_UNIT_HUGE);
  pthread_mutex_unlock(&_fa_huge_lock);
  if (new_size < size) _fa_domain_uncharge(d, size - new_size);
  return q;
}

/* Live huge blocks of instance d (all instances when d is NULL). */
void _fa_huge_totals(fa_domain_t *d, size_t *count, size_t *bytes) {
  pthread_mutex_lock(&_fa_huge_lock);
  if (d == NULL) {
    *count = fa_huge_count;
    *bytes = fa_huge_bytes;
  } else {
    *count = *bytes = 0;
    for (size_t i = 0; i < fa_huge_cap; i++) {
      if (fa_huge_table[i].addr == 0 || fa_huge_table[i].domain != d) continue;
      (*count)++;
      *bytes += fa_huge_table[i].size;
    }
  }
  pthread_mutex_unlock(&_fa_huge_lock);
}

/* fancy_heap_visit_all: fn for each live huge block of instance d,
 * called outside the lock (taken per batch of table slots).  Returns fn's
 * first nonzero value. */
int _fa_huge_visit(fa_domain_t *d, fancy_visit_fn fn, void *arg) {
  size_t slot = 0;
  for (;;) {
    uintptr_t batch[64];
    size_t n = 0;
    pthread_mutex_lock(&_fa_huge_lock);
    for (; slot < fa_huge_cap && n < 64; slot++)
      if (fa_huge_table[slot].addr != 0 && fa_huge_table[slot].domain == d)
        batch[n++] = fa_huge_table[slot].addr;
    bool more = slot < fa_huge_cap;
    pthread_mutex_unlock(&_fa_huge_lock);
    for (size_t i = 0; i < n; i++) {
      size_t size = _fa_usable_size(batch[i]);
      if (size == 0) continue;   /* freed meanwhile */
      int r = fn((void *)batch[i], size, arg);
      if (r != 0) return r;
    }
    if (!more) return 0;
  }
}
