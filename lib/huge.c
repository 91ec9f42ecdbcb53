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
 * free keeps freed mappings warm for FANCY_PURGE_DELAY, as pieces: runs
 * of whole pages, still mapped, in no block (at most FA_HUGE_PIECES of them
 * and FA_HUGE_CACHE_BYTES in all).  A huge malloc takes the smallest piece
 * that starts aligned and fits, and what it does not need stays a piece;
 * else it grows the largest aligned piece by mremap (or maps a new block)
 * and moves other pieces' pages into the part it lacks (_fa_os_move: the
 * kernel moves page tables, nothing is copied).  Only what no piece could
 * give is faulted in.  A program that frees big buffers and allocates
 * others of other sizes (mimalloc-bench's malloc-large: 5-25 MiB, 20 live)
 * so pays its page faults about once, as with a heap that keeps freed big
 * blocks (glibc, tcmalloc), and the pieces still go back to the kernel
 * after the delay.  calloc never takes a piece (a new mapping is zero for
 * free).
 *
 * Huge pages (FANCY_HUGE_BLOCKS, on by default): a block of
 * FA_HUGE_GRAIN_MIN and more that is not calloc's is mapped in whole
 * huge-page steps (_fa_os_thp_size: 2 MiB) and advised MADV_HUGEPAGE, so
 * every block, piece and move starts and ends on a 2 MiB boundary and the
 * kernel keeps whole huge pages through cuts and moves (a move of an unaligned range splits them
 * into 4 KiB pages, a cut or free does nothing to them).  A fault then
 * fills 2 MiB and a move carries 2 MiB per page-table entry, about 35
 * times cheaper per byte than 4 KiB pages, most on a virtual machine,
 * where every page-table change is seen by the hypervisor.  The price: the
 * last huge page of a block is resident whole once the program writes its
 * end, up to 2 MiB more than the block asked for.  calloc's blocks keep
 * 4 KiB steps: a big zeroed table is the one often written sparsely.
 *
 * The states of a run of pages of huge memory (all moves under
 * _fa_huge_lock):
 *   live      a block: its entry in fa_huge_table;
 *   warm      a piece in fa_huge_cache: mapped, maybe resident, no block's;
 *   unmapped  given back to the kernel.
 * live -> warm: free (and nothing else: not above the soft limit, not
 * with FANCY_PURGE_DELAY=0).  warm -> live: a malloc cuts it or moves its
 * pages.  warm -> unmapped: the delay passed (_fa_huge_cache_decay),
 * fancy_trim, or the oldest piece makes room for a newer one.
 * live -> unmapped: free without the cache, instance destruction.
 *
 * A 4 MiB unit of the address map is marked huge while any live or warm
 * run covers part of it (fa_huge_unit_used): a block starts on a unit, a
 * piece anywhere.  A unit is unmarked before its run is unmapped or moved
 * away, never after: from then on another thread may map the address and
 * mark it.  Freed pieces stay marked, so a second free of a block whose
 * pages are warm is still caught.
 *
 * Locks: _fa_huge_lock is a leaf; nothing is locked under it.
 */
#include "internal.h"

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

/* Warm pieces, under _fa_huge_lock. */
#define FA_HUGE_PIECES 16
#define FA_HUGE_CACHE_BYTES ((size_t)64 << 20)
#define FA_HUGE_GRAIN_MIN ((size_t)4 << 20)  /* the smallest block in huge-page steps */
#define FA_HUGE_MOVES 4             /* pieces moved into one block at most */
typedef struct fa_huge_piece_s {
  uintptr_t addr;     /* 0 = empty slot */
  size_t size;
  uint64_t time;      /* ms, when its pages were freed */
} fa_huge_piece_t;
static fa_huge_piece_t fa_huge_cache[FA_HUGE_PIECES];
static size_t fa_huge_cache_bytes;
/* A run between the table and the cache for a moment (the block that
 * fa_huge_cache_take is making, the piece that fa_huge_cache_put is
 * joining): its units count as used while other runs are unmarked.
 * Under _fa_huge_lock; size 0 = none. */
static uintptr_t fa_huge_making;
static size_t fa_huge_making_size;

/* Mark every 4 MiB unit of [addr, addr + size) as kind in the address
 * map: free() of a pointer anywhere inside a huge block then reaches this
 * file (and aborts unless it is the block's start), instead of passing for
 * a pointer that is not ours. */
static void fa_huge_mark(uintptr_t addr, size_t size, unsigned kind) {
  for (uintptr_t u = addr & ~(uintptr_t)FA_SEGMENT_MASK; u < addr + size; u += FA_SEGMENT_SIZE)
    _fa_segmap_set(u, kind);
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
  fa_huge_entry_t *table = _fa_os_map_table(cap * sizeof *table);
  if (table == NULL) return false;
  for (size_t i = 0; i < fa_huge_cap; i++)
    if (fa_huge_table[i].addr != 0) fa_huge_put(table, cap, fa_huge_table[i]);
  _fa_os_unmap_table(fa_huge_table, fa_huge_cap * sizeof *table);
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

/* Lock held.  Does a live block or a warm piece cover part of unit u?
 * A block starts on a unit: walk back over the units marked huge to the
 * first block start, which covers u or ends before it. */
static bool fa_huge_unit_used(uintptr_t u) {
  if (fa_huge_making_size != 0 && fa_huge_making < u + FA_SEGMENT_SIZE &&
      u < fa_huge_making + fa_huge_making_size)
    return true;
  for (size_t i = 0; i < FA_HUGE_PIECES; i++) {
    const fa_huge_piece_t *c = &fa_huge_cache[i];
    if (c->addr != 0 && c->addr < u + FA_SEGMENT_SIZE && u < c->addr + c->size) return true;
  }
  for (uintptr_t v = u;; v -= FA_SEGMENT_SIZE) {
    const fa_huge_entry_t *e = fa_huge_find(v);
    if (e != NULL) return v + e->size > u;
    if (v == 0 || fa_unit_kind(v - FA_SEGMENT_SIZE) != FA_UNIT_HUGE) return false;
  }
}

/* Lock held.  [addr, addr + size) is neither live nor warm any more:
 * unmark the units that nothing else covers. */
static void fa_huge_unmark(uintptr_t addr, size_t size) {
  for (uintptr_t u = addr & ~(uintptr_t)FA_SEGMENT_MASK; u < addr + size; u += FA_SEGMENT_SIZE)
    if (!fa_huge_unit_used(u)) _fa_segmap_set(u, FA_UNIT_NONE);
}

/* Lock held.  The piece holding p (a block's start, or any address). */
static fa_huge_piece_t *fa_huge_piece_at(uintptr_t p) {
  for (size_t i = 0; i < FA_HUGE_PIECES; i++) {
    fa_huge_piece_t *c = &fa_huge_cache[i];
    if (c->addr != 0 && p - c->addr < c->size) return c;
  }
  return NULL;
}

/* Lock held.  Take the first size bytes of piece c out of the cache (its
 * rest stays a piece); returns their address.  They are still marked. */
static uintptr_t fa_huge_piece_cut(fa_huge_piece_t *c, size_t size) {
  uintptr_t addr = c->addr;
  c->addr += size;
  c->size -= size;
  if (c->size == 0) c->addr = 0;
  fa_huge_cache_bytes -= size;
  fa_uncount(huge, size);
  return addr;
}

/* Lock held.  Slot c (empty) takes the run [addr, addr + size), freed at
 * time; the inverse of fa_huge_piece_cut.  Its units must be marked. */
static void fa_huge_piece_add(fa_huge_piece_t *c, uintptr_t addr, size_t size, uint64_t time) {
  *c = (fa_huge_piece_t){addr, size, time};
  fa_huge_cache_bytes += size;
  fa_count(huge, size);
}

/* Lock held.  The piece freed longest ago, NULL if there is none. */
static fa_huge_piece_t *fa_huge_piece_oldest(void) {
  fa_huge_piece_t *oldest = NULL;
  for (size_t i = 0; i < FA_HUGE_PIECES; i++)
    if (fa_huge_cache[i].addr != 0 && (oldest == NULL || fa_huge_cache[i].time < oldest->time))
      oldest = &fa_huge_cache[i];
  return oldest;
}

/* Lock held.  Give piece c back to the kernel. */
static void fa_huge_piece_unmap(fa_huge_piece_t *c) {
  uintptr_t addr = c->addr;
  size_t size = c->size;
  fa_huge_piece_cut(c, size);
  fa_huge_unmark(addr, size);
  _fa_os_unmap((void *)addr, size);
  fa_huge_freed_note(addr);
}

/* Lock held.  The part [have, size) of block q lacks pages: move the
 * pages of up to FA_HUGE_MOVES pieces there, the largest first, so that
 * they need not fault in.  Returns how much of the block is warm now. */
static size_t fa_huge_fill(uintptr_t q, size_t have, size_t size) {
  for (unsigned moves = 0; have < size && moves < FA_HUGE_MOVES; moves++) {
    fa_huge_piece_t *c = NULL;
    for (size_t i = 0; i < FA_HUGE_PIECES; i++)
      if (fa_huge_cache[i].addr != 0 && (c == NULL || fa_huge_cache[i].size > c->size))
        c = &fa_huge_cache[i];
    if (c == NULL) break;
    size_t m = c->size < size - have ? c->size : size - have;
    uintptr_t src = fa_huge_piece_cut(c, m);
    fa_huge_unmark(src, m);   /* before the pages leave: see the top */
    if (!_fa_os_move((void *)src, m, (void *)(q + have))) {
      _fa_os_unmap((void *)src, m);
      break;
    }
    have += m;
  }
  return have;
}

/* Lock held.  Where in piece c a block of size bytes aligned to align
 * could start (its first aligned address), or 0 if it does not fit. */
static uintptr_t fa_huge_piece_fit(const fa_huge_piece_t *c, size_t size, size_t align) {
  uintptr_t a = (c->addr + align - 1) & ~(uintptr_t)(align - 1);
  if (c->addr == 0 || a - c->addr > c->size || c->size - (a - c->addr) < size) return 0;
  return a;
}

/* Lock held.  Take [a, a + size) out of piece c: what is before it stays
 * c, what is after it becomes a piece of its own (in a free slot, or
 * given back if there is none).  The block stays marked. */
static void fa_huge_piece_take(fa_huge_piece_t *c, uintptr_t a, size_t size) {
  if (a == c->addr) {
    fa_huge_piece_cut(c, size);
    return;
  }
  uintptr_t end = c->addr + c->size;
  size_t tail = end - (a + size);
  fa_huge_cache_bytes -= c->size - (a - c->addr);
  fa_uncount(huge, c->size - (a - c->addr));
  c->size = a - c->addr;
  if (tail == 0) return;
  for (size_t i = 0; i < FA_HUGE_PIECES; i++) {
    if (fa_huge_cache[i].addr != 0) continue;
    fa_huge_piece_add(&fa_huge_cache[i], a + size, tail, c->time);
    return;
  }
  fa_huge_unmark(a + size, tail);
  _fa_os_unmap((void *)(a + size), tail);
}

/* Lock held.  A block of size bytes aligned to align from the warm
 * pieces: cut in place from the smallest piece it fits in (what is left
 * on either side stays warm), else the largest piece that starts aligned,
 * grown by mremap, its new part filled from the other pieces.  The block
 * is marked huge.  0 if there is none of these (the caller maps a new
 * block and fills it). */
static uintptr_t fa_huge_cache_take(size_t size, size_t align, bool huge_pages) {
  fa_huge_piece_t *fit = NULL, *grow = NULL;
  uintptr_t at = 0;
  for (size_t i = 0; i < FA_HUGE_PIECES; i++) {
    fa_huge_piece_t *c = &fa_huge_cache[i];
    if (c->addr == 0) continue;
    uintptr_t a = fa_huge_piece_fit(c, size, align);
    if (a != 0) {
      if (fit == NULL || c->size < fit->size) fit = c, at = a;
    } else if (c->addr % align == 0 && (grow == NULL || c->size > grow->size)) {
      grow = c;
    }
  }
  if (fit != NULL) {
    fa_huge_making = at, fa_huge_making_size = size;
    fa_huge_piece_take(fit, at, size);
    return at;
  }
  if (grow == NULL) return 0;
  size_t have = grow->size;
  uintptr_t addr = fa_huge_piece_cut(grow, have);
  fa_huge_unmark(addr, have);   /* the pages may move */
  int saved_errno = errno;
  void *q = _fa_os_remap((void *)addr, have, size, align, huge_pages);
  if (q == NULL) {   /* still there (several mappings, or no room): a piece again */
    errno = saved_errno;
    fa_huge_mark(addr, have, FA_UNIT_HUGE);
    fa_huge_piece_add(grow, addr, have, grow->time);
    return 0;
  }
  fa_huge_mark((uintptr_t)q, size, FA_UNIT_HUGE);
  fa_huge_making = (uintptr_t)q, fa_huge_making_size = size;
  fa_huge_fill((uintptr_t)q, have, size);
  return (uintptr_t)q;
}

/* Lock held.  Keep a freed block's pages warm as a piece, joined with
 * the pieces right before and after it (often its own rest), making room
 * by unmapping the oldest pieces; false if it cannot be kept. */
static bool fa_huge_cache_put(uintptr_t addr, size_t size, uint64_t now) {
  if (_fa_opt.purge_delay == 0 || size > FA_HUGE_CACHE_BYTES) return false;
  fa_huge_piece_t *next = fa_huge_piece_at(addr + size);
  if (next != NULL && next->addr == addr + size && size + next->size <= FA_HUGE_CACHE_BYTES)
    size += next->size, fa_huge_piece_cut(next, next->size);
  fa_huge_piece_t *prev = addr != 0 ? fa_huge_piece_at(addr - 1) : NULL;
  if (prev != NULL && size + prev->size <= FA_HUGE_CACHE_BYTES) {
    size += prev->size;
    addr = fa_huge_piece_cut(prev, prev->size);
  }
  fa_huge_making = addr, fa_huge_making_size = size;
  for (;;) {
    fa_huge_piece_t *slot = NULL;
    for (size_t i = 0; i < FA_HUGE_PIECES && slot == NULL; i++)
      if (fa_huge_cache[i].addr == 0) slot = &fa_huge_cache[i];
    if (slot != NULL && size <= FA_HUGE_CACHE_BYTES - fa_huge_cache_bytes) {
      fa_huge_piece_add(slot, addr, size, now);
      fa_huge_making_size = 0;
      return true;
    }
    fa_huge_piece_unmap(fa_huge_piece_oldest());   /* there is one: slots or bytes are full */
  }
}

/* Unmap warm pieces freed delay ms ago or more (all when force). */
size_t _fa_huge_cache_decay(uint64_t now, uint64_t delay, bool force) {
  size_t n = 0;
  pthread_mutex_lock(&_fa_huge_lock);
  for (size_t i = 0; i < FA_HUGE_PIECES; i++) {
    fa_huge_piece_t *c = &fa_huge_cache[i];
    if (c->addr == 0 || !(force || now - c->time >= delay)) continue;
    fa_huge_piece_unmap(c);
    n++;
  }
  pthread_mutex_unlock(&_fa_huge_lock);
  return n;
}

/* fancy_trim(pad): unmap the oldest warm pieces until what stays fits in
 * *budget (taken from it). */
size_t _fa_huge_cache_trim(size_t *budget) {
  size_t n = 0;
  pthread_mutex_lock(&_fa_huge_lock);
  while (fa_huge_cache_bytes > *budget) {
    fa_huge_piece_t *c = fa_huge_piece_oldest();
    if (c == NULL) break;
    fa_huge_piece_unmap(c);
    n++;
  }
  *budget -= fa_huge_cache_bytes;
  pthread_mutex_unlock(&_fa_huge_lock);
  return n;
}

/* The mapping length of a block of n bytes (n <= PTRDIFF_MAX - 4 MiB) of
 * instance d, and whether to ask for huge pages: see the top. */
static size_t fa_huge_length(const fa_domain_t *d, size_t n, bool zeroed, bool *huge_pages) {
  size_t thp = d->huge_blocks && !zeroed && n >= FA_HUGE_GRAIN_MIN ? _fa_os_thp_size() : 0;
  size_t grain = thp != 0 ? thp : FA_OS_PAGE_SIZE;
  size_t size = (n + grain - 1) & ~(grain - 1);
  *huge_pages = d->huge_pages || thp != 0;
  return size != 0 ? size : grain;
}

void *_fa_huge_alloc(fa_heap_t *heap, size_t n, size_t alignment, bool zeroed) {
  _fa_process_init();
  fa_domain_t *d = heap->domain;
  if (n > PTRDIFF_MAX - FA_SEGMENT_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  bool huge_pages;
  size_t size = fa_huge_length(d, n, zeroed, &huge_pages);
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
    uintptr_t addr = fa_huge_cache_take(size, align, huge_pages);
    bool ok = addr != 0 && fa_huge_insert(addr, size, align, d);
    fa_huge_making_size = 0;   /* in the table now, or going back below */
    if (addr != 0 && !ok && !fa_huge_cache_put(addr, size, _fa_clock_ms())) {
      fa_huge_unmark(addr, size);
      _fa_os_unmap((void *)addr, size);
    }
    pthread_mutex_unlock(&_fa_huge_lock);
    if (ok) return (void *)addr;   /* marked huge in the address map */
  }
  fa_soft_check(heap, size);   /* a new mapping: make room under the soft limit */
  void *p = _fa_os_map_aligned(size, align, d->populate, huge_pages);
  if (p == NULL && _fa_memory_pressure(heap))
    p = _fa_os_map_aligned(size, align, d->populate, huge_pages);
  if (p == NULL) {
    _fa_domain_uncharge(d, size);
    return NULL;
  }
  pthread_mutex_lock(&_fa_huge_lock);
  bool ok = fa_huge_insert((uintptr_t)p, size, align, d);
  if (ok) {
    fa_huge_mark((uintptr_t)p, size, FA_UNIT_HUGE);
    if (!zeroed && !d->populate) fa_huge_fill((uintptr_t)p, 0, size);
  }
  pthread_mutex_unlock(&_fa_huge_lock);
  if (!ok) {
    _fa_os_unmap(p, size);
    _fa_domain_uncharge(d, size);
    errno = ENOMEM;
    return NULL;
  }
  return p;
}

/* Give a huge block's mapping back (its table entry is gone already, and
 * its units were unmarked under the lock: before the address can be
 * mapped again). */
static void fa_huge_unmap(fa_domain_t *d, void *p, size_t size) {
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
    bool freed = fa_huge_piece_at((uintptr_t)p) != NULL;   /* its pages are warm */
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
  if (!cached) fa_huge_unmark((uintptr_t)p, size);
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
    fa_huge_unmark((uintptr_t)p, size);
    pthread_mutex_unlock(&_fa_huge_lock);
    fa_huge_unmap(d, p, size);
    n++;
  }
}

/* Is p inside a live block or a warm piece?  A block starts on a unit:
 * walk back over the units marked huge to the block's start.  A unit's
 * tail beyond a block that ends inside it is not the block's: a piece or
 * another mapping may sit there. */
bool _fa_huge_contains(const void *p) {
  uintptr_t u = (uintptr_t)p & ~(uintptr_t)FA_SEGMENT_MASK;
  bool inside = false;
  pthread_mutex_lock(&_fa_huge_lock);
  if (fa_huge_piece_at((uintptr_t)p) != NULL) inside = true;
  for (; !inside; u -= FA_SEGMENT_SIZE) {
    fa_huge_entry_t *e = fa_huge_find(u);
    if (e != NULL) {
      inside = (uintptr_t)p - u < e->size;
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
 * copy into a normal block when it shrinks below FA_LARGE_MAX, or into a
 * new huge block when the kernel cannot grow it (made of moved pieces).  The table
 * lock is held across the remap: the moment mremap moves the pages another
 * thread may map the old address and want a table entry for it, which it
 * can only get after ours has moved too. */
void *_fa_huge_realloc(fa_heap_t *heap, void *p, size_t n) {
  fa_domain_t *d = heap->domain;
  int saved_errno = errno;
  pthread_mutex_lock(&_fa_huge_lock);
  fa_huge_entry_t *e = fa_huge_find((uintptr_t)p);
  if (e == NULL) {
    bool freed = fa_huge_piece_at((uintptr_t)p) != NULL;
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
  bool huge_pages;
  size_t new_size = fa_huge_length(d, n, false, &huge_pages);
  if (new_size == size) {
    pthread_mutex_unlock(&_fa_huge_lock);
    return p;
  }
  if (new_size > size && !_fa_domain_charge(d, new_size - size)) {
    pthread_mutex_unlock(&_fa_huge_lock);
    errno = ENOMEM;
    return NULL;
  }
  /* Out of the table and unmarked first: once the pages move, the old
   * range may be mapped by another thread (as a segment) at once.  No
   * room is needed to put it back: one out, one in. */
  fa_huge_remove(e);
  fa_huge_unmark((uintptr_t)p, size);
  void *q = _fa_os_remap(p, size, new_size, align, huge_pages);
  if (q == NULL) {
    fa_huge_insert((uintptr_t)p, size, align, d);
    fa_huge_mark((uintptr_t)p, size, FA_UNIT_HUGE);
    pthread_mutex_unlock(&_fa_huge_lock);
    if (new_size > size) _fa_domain_uncharge(d, new_size - size);
    /* The kernel grows a range of one mapping only, and a block made of
     * moved pieces is several: copy it into a new block. */
    errno = saved_errno;
    q = _fa_huge_alloc(heap, n, align, false);
    if (q == NULL) return NULL;
    memcpy(q, p, size);
    _fa_huge_free(d, p);
    return q;
  }
  fa_huge_insert((uintptr_t)q, new_size, align, d);
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
