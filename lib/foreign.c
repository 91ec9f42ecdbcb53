/* SPDX-License-Identifier: MIT */
/*
 * foreign.c - free() and realloc() of a pointer that is not ours, as a
 * malloc replacement (libfancymalloc): glibc's block, or a bug.
 *
 * Under LD_PRELOAD a block of glibc's own allocator can reach our free: a
 * library that found glibc's malloc with dlsym, or memory handed out
 * before the preload took over.  It must go back to glibc's free.  Every
 * other pointer that is not ours (a stack buffer, a static object, a
 * region the program mapped itself, a huge block freed twice) is a bug,
 * reported with one "fancyalloc: <what> at <address>" line and abort().
 *
 * This is the rare slow path of free (the address map said "not ours"),
 * so it may read /proc/self/maps.  A pointer is glibc's when
 *   - it lies in the [heap] mapping (glibc's main arena: we never use
 *     brk) and the chunk header before it is that of a chunk in use; or
 *   - the header before it says "mmapped chunk" (IS_MMAPPED) and the
 *     mapping it names (chunk - prev_size, chunk size + prev_size bytes,
 *     page aligned) lies inside one anonymous mapping; or
 *   - the header says "non-main arena" and the 64 MiB aligned heap_info
 *     below it names an arena and a heap size that hold the chunk.
 * glibc's chunk header: the word before the pointer is the chunk size
 * (a multiple of 16) with flags PREV_INUSE 1, IS_MMAPPED 2, NON_MAIN_ARENA
 * 4; the word before that is prev_size (for an mmapped chunk, its offset
 * from the start of the mapping).
 * Memory of the dynamic loader's bootstrap allocator (inside ld.so's own
 * data) is left alone, as before: not ours, and not glibc malloc's.
 */
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>

typedef enum {
  FA_FOREIGN_GLIBC,      /* glibc's block: its free releases it */
  FA_FOREIGN_LOADER,     /* ld.so's bootstrap allocator: left alone */
  FA_FOREIGN_BUG,        /* anything else: abort */
} fa_foreign_kind_t;

/* ------------------------------------------------------------------------
 * Loaded objects: static storage
 * ---------------------------------------------------------------------- */
typedef struct fa_object_hit_s {
  uintptr_t p;
  int found;             /* 0 no, 1 an object, 2 the dynamic loader */
} fa_object_hit_t;

static bool fa_is_loader(const char *name) {
  const char *base = name;
  for (const char *c = name; *c; c++)
    if (*c == '/') base = c + 1;
  return strncmp(base, "ld-", 3) == 0 || strncmp(base, "ld.so", 5) == 0;
}

static int fa_object_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  fa_object_hit_t *hit = arg;
  (void)size;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    uintptr_t hi = lo + ph->p_memsz;
    /* The loader's bootstrap allocator starts at its _end and uses the
     * rest of that page. */
    bool loader = info->dlpi_name != NULL && fa_is_loader(info->dlpi_name);
    if (loader) hi = (hi + FA_OS_PAGE_SIZE - 1) & ~(uintptr_t)(FA_OS_PAGE_SIZE - 1);
    if (hit->p >= lo && hit->p < hi) {
      hit->found = loader ? 2 : 1;
      return 1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * /proc/self/maps, read without malloc
 * ---------------------------------------------------------------------- */
typedef struct fa_mapping_s {
  uintptr_t start, end;
  char perms[5];
  char name[16];         /* first characters of the path, "" if anonymous */
} fa_mapping_t;

static uintptr_t fa_hex(const char **s) {
  uintptr_t v = 0;
  for (;; (*s)++) {
    char c = **s;
    if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
    else return v;
  }
}

/* One line of /proc/self/maps: "start-end perms offset dev inode   path". */
static void fa_parse_mapping(const char *line, fa_mapping_t *m) {
  const char *s = line;
  m->start = fa_hex(&s);
  if (*s == '-') s++;
  m->end = fa_hex(&s);
  while (*s == ' ') s++;
  for (int i = 0; i < 4; i++) m->perms[i] = *s ? *s++ : '-';
  m->perms[4] = '\0';
  for (int field = 0; field < 3; field++) {   /* offset, dev, inode */
    while (*s == ' ') s++;
    while (*s && *s != ' ' && *s != '\n') s++;
  }
  while (*s == ' ') s++;
  size_t n = 0;
  while (s[n] && s[n] != '\n' && n < sizeof m->name - 1) {
    m->name[n] = s[n];
    n++;
  }
  m->name[n] = '\0';
}

/* The mapping holding u; false if none (or /proc is not mounted: then
 * *unknown is set). */
typedef struct fa_mapping_query_s {
  uintptr_t u;
  fa_mapping_t *out;
} fa_mapping_query_t;

/* (a line cut short still has the addresses, and the name's start) */
static int fa_mapping_line(char *line, bool cut, void *arg) {
  (void)cut;
  fa_mapping_query_t *q = arg;
  fa_mapping_t m;
  fa_parse_mapping(line, &m);
  if (q->u < m.start || q->u >= m.end) return 0;
  *q->out = m;
  return 1;
}

static bool fa_find_mapping(uintptr_t u, fa_mapping_t *out, bool *unknown) {
  fa_mapping_query_t q = {u, out};
  int r = _fa_read_lines("/proc/self/maps", fa_mapping_line, &q);
  *unknown = r < 0;
  return r > 0;
}

/* ------------------------------------------------------------------------
 * glibc's chunks
 * ---------------------------------------------------------------------- */
#define FA_GLIBC_PREV_INUSE 1u
#define FA_GLIBC_IS_MMAPPED 2u
#define FA_GLIBC_NON_MAIN 4u
#define FA_GLIBC_FLAGS 7u
#define FA_GLIBC_HEAP_MAX ((uintptr_t)64 << 20)   /* 2 * 4 MiB * sizeof(long) */

typedef struct fa_glibc_heap_info_s {   /* glibc's heap_info, its first fields */
  void *ar_ptr;
  void *prev;
  size_t size;
  size_t mprotect_size;
} fa_glibc_heap_info_t;

static bool fa_in(uintptr_t lo, uintptr_t hi, const fa_mapping_t *m) {
  return lo >= m->start && hi <= m->end && lo <= hi;
}

static bool fa_glibc_chunk(uintptr_t p, const fa_mapping_t *m) {
  if (p % 16 != 0 || p - m->start < 2 * sizeof(size_t) || m->perms[0] != 'r' ||
      m->perms[1] != 'w')
    return false;
  uintptr_t c = p - 2 * sizeof(size_t);
  size_t prev_size = ((const size_t *)c)[0];
  size_t head = ((const size_t *)c)[1];
  size_t csize = head & ~(size_t)FA_GLIBC_FLAGS;
  if (csize < 4 * sizeof(size_t) || csize % 16 != 0 || csize > PTRDIFF_MAX) return false;
  if (head & FA_GLIBC_IS_MMAPPED) {
    uintptr_t base = c - prev_size;
    return prev_size <= c && base % FA_OS_PAGE_SIZE == 0 &&
           (prev_size + csize) % FA_OS_PAGE_SIZE == 0 && fa_in(base, c + csize, m);
  }
  /* In use: the next chunk's PREV_INUSE bit. */
  if (!fa_in(c, c + csize + 2 * sizeof(size_t), m)) return false;
  if (!(((const size_t *)(c + csize))[1] & FA_GLIBC_PREV_INUSE)) return false;
  if (strcmp(m->name, "[heap]") == 0) return !(head & FA_GLIBC_NON_MAIN);
  if (!(head & FA_GLIBC_NON_MAIN) || m->name[0] != '\0') return false;
  uintptr_t h = c & ~(FA_GLIBC_HEAP_MAX - 1);
  if (!fa_in(h, h + sizeof(fa_glibc_heap_info_t), m)) return false;
  const fa_glibc_heap_info_t *hi = (const fa_glibc_heap_info_t *)h;
  return hi->ar_ptr != NULL && hi->size <= FA_GLIBC_HEAP_MAX && c + csize <= h + hi->size;
}

/* ------------------------------------------------------------------------
 * Classification
 * ---------------------------------------------------------------------- */

/* What p is; for FA_FOREIGN_BUG, *what says what went wrong ("invalid
 * free (stack address)" or, with realloc, "realloc of a stack address"). */
static fa_foreign_kind_t fa_foreign_classify(void *p, bool realloc, const char **what) {
  uintptr_t u = (uintptr_t)p;
  fa_object_hit_t hit = {u, 0};
  dl_iterate_phdr(fa_object_cb, &hit);
  if (hit.found == 2) return FA_FOREIGN_LOADER;
  if (hit.found == 1) {
    *what = realloc ? "realloc of a static object" : "invalid free (static object)";
    return FA_FOREIGN_BUG;
  }
  fa_mapping_t m, here;
  bool unknown;
  if (!fa_find_mapping(u, &m, &unknown)) {
    if (unknown) return FA_FOREIGN_LOADER;   /* no /proc: cannot tell, leave it */
    if (_fa_huge_was_freed(p))
      *what = realloc ? "realloc of a freed block (huge block)" : "double free (huge block)";
    else
      *what = realloc ? "realloc of an unmapped address" : "invalid free (unmapped address)";
    return FA_FOREIGN_BUG;
  }
  if (fa_glibc_chunk(u, &m)) return FA_FOREIGN_GLIBC;
  volatile char local = 0;
  bool unknown_here;
  if (strcmp(m.name, "[stack]") == 0 ||
      (fa_find_mapping((uintptr_t)&local, &here, &unknown_here) && here.start == m.start)) {
    *what = realloc ? "realloc of a stack address" : "invalid free (stack address)";
  } else if (_fa_huge_was_freed(p)) {
    *what = realloc ? "realloc of a freed block (huge block)" : "double free (huge block)";
  } else if (strcmp(m.name, "[heap]") == 0) {
    *what = realloc ? "realloc of a pointer into glibc's heap that is no block"
                    : "invalid free (pointer into glibc's heap, not a block)";
  } else {
    *what = realloc ? "realloc of a pointer into a mapping the program made"
                    : "invalid free (pointer into a mapping the program made)";
  }
  return FA_FOREIGN_BUG;
}

/* glibc's own function name, the next definition after ours. */
static void *fa_glibc_fn(const char *name) {
  return dlsym(RTLD_NEXT, name);
}

void _fa_foreign_free(void *p) {
  const char *what = NULL;
  switch (fa_foreign_classify(p, false, &what)) {
  case FA_FOREIGN_GLIBC: {
    void (*glibc_free)(void *) = (void (*)(void *))fa_glibc_fn("free");
    if (glibc_free != NULL && glibc_free != free) glibc_free(p);
    return;
  }
  case FA_FOREIGN_LOADER:
    return;
  case FA_FOREIGN_BUG:
  default:
    _fa_invalid_free(p, what);
  }
}

void *_fa_foreign_realloc(fa_heap_t *heap, void *p, size_t n) {
  const char *what = "realloc of a pointer not allocated by fancyalloc";
  if (fa_foreign_classify(p, true, &what) != FA_FOREIGN_GLIBC) _fa_invalid_free(p, what);
  size_t (*glibc_usable)(void *) = (size_t(*)(void *))fa_glibc_fn("malloc_usable_size");
  void (*glibc_free)(void *) = (void (*)(void *))fa_glibc_fn("free");
  if (glibc_usable == NULL || glibc_free == NULL) _fa_invalid_free(p, what);
  void *q = fa_heap_malloc(heap, n);
  if (q == NULL) return NULL;
  size_t old = glibc_usable(p);
  memcpy(q, p, old < n ? old : n);
  glibc_free(p);
  return q;
}
