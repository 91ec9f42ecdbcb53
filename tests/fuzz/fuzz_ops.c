/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ops.c - libFuzzer target: an input is a program of allocator calls
 * over a table of FZ_SLOTS blocks, checked against a shadow model.
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined from
 * the library's own sources (every lib/ source but override.c), so coverage
 * feedback reaches into the allocator; see tests/fuzz/local.mk.
 *
 * Input format: a sequence of operations, each an opcode byte followed by
 * its argument bytes; reading past the end gives zeros and ends the run.
 *   slot  = one byte (FZ_SLOTS = 256 slots)
 *   size  = a selector byte and up to three more: 0..512, up to 32 KiB,
 *           up to 2 MiB, a size next to a class or tier boundary, or now and
 *           then a huge size up to 8 MiB (see fz_size)
 * Operations (opcode % FZ_NOPS):
 *   MALLOC slot size      CALLOC slot nmemb size     REALLOC slot size
 *   ALIGNED slot shift size (aligned_alloc, any alignment 1 .. 4 MiB, or
 *           an invalid one that must give NULL + EINVAL)
 *   MEMALIGN slot shift size (posix_memalign; EINVAL cases too)
 *   FREE slot             USABLE slot (checks it and writes the slack)
 *   TRIM pad              VALIDATE (fancy_validate_heap + live bytes)
 *   REMOTE_FREE slot      the helper thread frees the block
 *   REMOTE_REALLOC slot size   the helper reallocs it and hands it back
 *   REMOTE_MALLOC slot size    the helper allocates, main owns it after
 *   HELPER_EXIT           the helper thread exits (holding nothing; its
 *                         blocks in the table live on in abandoned
 *                         segments) and a new one starts
 * The helper thread runs one request at a time while main waits, so a run
 * is deterministic.
 *
 * Shadow model: each live block remembers its size, its alignment and a
 * generation; its bytes (the first 4 KiB, the last 256 and every 509th in
 * between, or every n/128th in a big block) hold a pattern of (slot, generation, index), checked on every
 * free and realloc (up to min(old, new) after a realloc); calloc memory
 * must read as zero; usable_size >= size; the alignment asked for holds.
 * At the end of each input every block is freed and bytes_live must be
 * back to zero.  Any failure aborts with a message (a crash for libFuzzer).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fancyalloc.h"

#define FZ_SLOTS 256
#define FZ_MAX_LIVE ((size_t)96 << 20)   /* keep an input's memory bounded */
#define FZ_KIB ((size_t)1 << 10)
#define FZ_MIB ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ------------------------------------------------------------------------
 * Input reader
 * ---------------------------------------------------------------------- */
typedef struct fz_in {
  const uint8_t *p;
  size_t n;
  bool eof;
} fz_in_t;

static uint8_t fz_u8(fz_in_t *in) {
  if (in->n == 0) {
    in->eof = true;
    return 0;
  }
  in->n--;
  return *in->p++;
}

static uint32_t fz_u16(fz_in_t *in) {
  uint32_t lo = fz_u8(in);
  return lo | (uint32_t)fz_u8(in) << 8;
}

static uint32_t fz_u24(fz_in_t *in) {
  uint32_t lo = fz_u16(in);
  return lo | (uint32_t)fz_u8(in) << 16;
}

/* Sizes next to the boundaries of classes, pages and tiers. */
static const size_t fz_edges[] = {
    0,     1,     15,    16,    17,    31,    32,    33,    127,   128,   129,
    511,   512,   513,   639,   640,   641,   1023,  1024,  1025,  4095,  4096,
    4097,  16383, 16384, 16385, 32767, 32768, 32769, 65535, 65536, 65537,
    131072, 262143, 262145, 1048575, 1048576, 2097151, 2097152, 2097153,
    4194304, 4194305,
};
#define FZ_NEDGES (sizeof fz_edges / sizeof fz_edges[0])

static size_t fz_size(fz_in_t *in) {
  uint8_t sel = fz_u8(in);
  switch (sel & 7) {
  case 0: case 1: case 2: return fz_u16(in) % 513;
  case 3: case 4: return fz_u16(in) % (32 * FZ_KIB + 1);
  case 5: return fz_u24(in) % (2 * FZ_MIB + 1);
  case 6: return fz_edges[fz_u8(in) % FZ_NEDGES];
  default:
    /* Huge only when the high bits agree: now and then. */
    if ((sel >> 3) % 4 == 0) return 2 * FZ_MIB + 1 + fz_u24(in) % (6 * FZ_MIB);
    return fz_u8(in);
  }
}

/* ------------------------------------------------------------------------
 * Shadow model
 * ---------------------------------------------------------------------- */
typedef struct fz_blk {
  unsigned char *p;
  size_t n;
  size_t align;
  uint32_t gen;
  bool zeroed;    /* calloc, not yet filled */
} fz_blk_t;

static fz_blk_t fz_tab[FZ_SLOTS];
static size_t fz_live;      /* sum of n over the table */
static uint32_t fz_gen;

/* The bytes of an n-byte block that carry the pattern: the first FZ_HEAD,
 * the last FZ_TAIL and every stride-th in between, stride FZ_STRIDE or,
 * for big blocks, n / 128 (so that a multi-MiB block costs 128 page
 * faults, not one per 4 KiB page). */
#define FZ_HEAD 4096
#define FZ_TAIL 256
#define FZ_STRIDE 509

/* The harness's own loops carry no coverage instrumentation: the feedback
 * that matters is the allocator's, and loop counts would only add noise. */
#if defined(__clang__) && __clang_major__ >= 13
#define FZ_NOCOV __attribute__((no_sanitize("coverage")))
#else
#define FZ_NOCOV
#endif

FZ_NOCOV static unsigned char fz_byte(size_t i, uint32_t gen) {
  uint32_t x = (uint32_t)i * 0x9e3779b1u + gen * 0x85ebca6bu;
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  return (unsigned char)(x >> 24);
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
static void fz_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz_ops: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

/* Visit the pattern bytes of an n-byte block below limit: fill, or return
 * the first index that differs (SIZE_MAX if none). */
FZ_NOCOV static size_t fz_walk(unsigned char *c, size_t n, size_t limit, uint32_t gen,
                               bool check, bool zero) {
  size_t stride = n / 128 > FZ_STRIDE ? n / 128 : FZ_STRIDE;
  size_t head = n < FZ_HEAD ? n : FZ_HEAD;
  size_t tail = n > FZ_TAIL ? n - FZ_TAIL : 0;
  if (tail < head) tail = head;
  for (size_t i = 0; i < n && i < limit;) {
    unsigned char want = zero ? 0 : fz_byte(i, gen);
    if (check) {
      if (c[i] != want) return i;
    } else {
      c[i] = want;
    }
    if (i + 1 < head || i + 1 >= tail) {
      i++;
    } else {
      size_t next = (i / stride + 1) * stride;
      i = next < tail ? next : tail;
    }
  }
  return SIZE_MAX;
}

static void fz_check(unsigned slot, size_t limit, const char *when) {
  fz_blk_t *b = &fz_tab[slot];
  size_t bad = fz_walk(b->p, b->n, limit, b->gen, true, b->zeroed);
  if (bad != SIZE_MAX)
    fz_die("%s: slot %u block %p of %zu bytes (alignment %zu%s): byte %zu is 0x%02x, want 0x%02x",
           when, slot, (void *)b->p, b->n, b->align, b->zeroed ? ", calloc" : "", bad,
           b->p[bad], b->zeroed ? 0 : fz_byte(bad, b->gen));
}

static void fz_fill(unsigned slot) {
  fz_blk_t *b = &fz_tab[slot];
  b->gen = ++fz_gen * 0x10000u + slot;   /* pattern of (slot, generation) */
  fz_walk(b->p, b->n, b->n, b->gen, false, false);
  b->zeroed = false;
}

/* The slot holding p, or -1. */
FZ_NOCOV static int fz_find(const void *p) {
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (fz_tab[i].p == p) return (int)i;
  return -1;
}

/* A new block in slot: check alignment and usable size, then fill it
 * (calloc blocks are checked for zeros first and filled later). */
static void fz_new(unsigned slot, void *p, size_t n, size_t align, bool zeroed, const char *what) {
  fz_blk_t *b = &fz_tab[slot];
  if (p == NULL) fz_die("%s(%zu) returned NULL (errno %d)", what, n, errno);
  size_t al = align > 16 ? align : 16;
  if (((uintptr_t)p & (al - 1)) != 0)
    fz_die("%s(%zu) with alignment %zu returned %p", what, n, al, p);
  size_t us = fancy_malloc_usable_size(p);
  if (us < n) fz_die("%s(%zu) = %p has usable size %zu", what, n, p, us);
  if (fz_find(p) >= 0) fz_die("%s(%zu) returned %p, live in slot %d", what, n, p, fz_find(p));
  b->p = p;
  b->n = n;
  b->align = align;
  b->zeroed = zeroed;
  fz_live += n;
  if (zeroed) fz_check(slot, n, "calloc zeroed");
  if (!zeroed || (fz_gen & 1)) fz_fill(slot);   /* some calloc blocks stay zero */
}

static void fz_forget(unsigned slot) {
  fz_live -= fz_tab[slot].n;
  memset(&fz_tab[slot], 0, sizeof fz_tab[slot]);
}

static void fz_free(unsigned slot) {
  fz_blk_t *b = &fz_tab[slot];
  if (b->p == NULL) return;
  fz_check(slot, b->n, "free");
  fancy_free(b->p);
  fz_forget(slot);
}

static size_t fz_bound(size_t n) {
  /* Keep the input's memory bounded: a size that would pass the cap
   * becomes small. */
  return fz_live + n > FZ_MAX_LIVE ? n % 513 : n;
}

/* ------------------------------------------------------------------------
 * The helper thread: runs one request at a time while main waits.
 * ---------------------------------------------------------------------- */
enum { FZ_REQ_NONE, FZ_REQ_FREE, FZ_REQ_REALLOC, FZ_REQ_MALLOC, FZ_REQ_STATS, FZ_REQ_EXIT };

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t thread;
  bool running;
  int req;          /* FZ_REQ_NONE when idle / done */
  void *p;
  size_t n;
} fz_helper = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *fz_helper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&fz_helper.lock);
  for (;;) {
    while (fz_helper.req == FZ_REQ_NONE) pthread_cond_wait(&fz_helper.cond, &fz_helper.lock);
    int req = fz_helper.req;
    switch (req) {
    case FZ_REQ_FREE: fancy_free(fz_helper.p); break;
    case FZ_REQ_REALLOC: fz_helper.p = fancy_realloc(fz_helper.p, fz_helper.n); break;
    case FZ_REQ_MALLOC: fz_helper.p = fancy_malloc(fz_helper.n); break;
    case FZ_REQ_STATS: {
      /* Collects the remote frees main made into this thread's pages. */
      fancy_stats_t st;
      fancy_stats_get(&st, sizeof st);
      if (!fancy_validate_heap()) fz_die("fancy_validate_heap failed on the helper thread");
      break;
    }
    default: break;
    }
    fz_helper.req = FZ_REQ_NONE;
    pthread_cond_broadcast(&fz_helper.cond);
    if (req == FZ_REQ_EXIT) break;
  }
  pthread_mutex_unlock(&fz_helper.lock);
  return NULL;
}

static void fz_helper_call(int req) {
  if (!fz_helper.running) {
    if (pthread_create(&fz_helper.thread, NULL, fz_helper_main, NULL) != 0)
      fz_die("pthread_create failed");
    fz_helper.running = true;
  }
  pthread_mutex_lock(&fz_helper.lock);
  fz_helper.req = req;
  pthread_cond_broadcast(&fz_helper.cond);
  while (fz_helper.req != FZ_REQ_NONE) pthread_cond_wait(&fz_helper.cond, &fz_helper.lock);
  pthread_mutex_unlock(&fz_helper.lock);
  if (req == FZ_REQ_EXIT) {
    pthread_join(fz_helper.thread, NULL);
    fz_helper.running = false;
  }
}

/* ------------------------------------------------------------------------
 * Checks of the whole state
 * ---------------------------------------------------------------------- */
static void fz_check_live(bool exact) {
  if (fz_helper.running) fz_helper_call(FZ_REQ_STATS);
  fancy_stats_t st;
  if (fancy_stats_get(&st, sizeof st) != 0) fz_die("fancy_stats_get failed");
  if (exact ? st.bytes_live != fz_live : st.bytes_live < fz_live)
    fz_die("bytes_live %zu, the table holds %zu bytes%s", st.bytes_live, fz_live,
           exact ? " (after freeing all)" : "");
}

static void fz_validate(void) {
  if (!fancy_validate_heap()) fz_die("fancy_validate_heap failed");
}

/* ------------------------------------------------------------------------
 * The operations
 * ---------------------------------------------------------------------- */
enum {
  OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_ALIGNED, OP_MEMALIGN, OP_FREE, OP_USABLE, OP_TRIM,
  OP_VALIDATE, OP_REMOTE_FREE, OP_REMOTE_REALLOC, OP_REMOTE_MALLOC, OP_HELPER_EXIT,
  FZ_NOPS
};

static void fz_realloc(unsigned slot, size_t n, bool remote) {
  fz_blk_t *b = &fz_tab[slot];
  if (b->p == NULL && remote) return;
  if (b->p != NULL) fz_check(slot, b->n, "before realloc");
  fz_blk_t old = *b;
  void *q;
  if (remote) {
    fz_helper.p = b->p;
    fz_helper.n = n;
    fz_helper_call(FZ_REQ_REALLOC);
    q = fz_helper.p;
  } else {
    q = fancy_realloc(b->p, n);
  }
  if (old.p != NULL && n == 0) {
    if (q != NULL) fz_die("realloc(%p, 0) returned %p, want NULL", (void *)old.p, q);
    fz_forget(slot);
    return;
  }
  if (q == NULL) fz_die("realloc(%p, %zu) from %zu bytes returned NULL", (void *)old.p, n, old.n);
  /* The old block's pattern bytes below min(old, new) must have moved. */
  if (old.p != NULL) {
    b->p = q;
    fz_check(slot, n < old.n ? n : old.n, "after realloc");
  }
  fz_live -= old.n;
  b->p = NULL;
  if (fz_find(q) >= 0) fz_die("realloc(%zu) returned %p, live in slot %d", n, q, fz_find(q));
  /* Fill the new block with a new generation's pattern. */
  b->p = q;
  b->n = n;
  b->align = 0;
  fz_live += n;
  size_t us = fancy_malloc_usable_size(q);
  if (us < n) fz_die("realloc(%zu) = %p has usable size %zu", n, q, us);
  if (((uintptr_t)q & 15) != 0) fz_die("realloc(%zu) = %p is not 16-byte aligned", n, q);
  fz_fill(slot);
}

static void fz_aligned(fz_in_t *in, unsigned slot, bool posix) {
  uint8_t a = fz_u8(in);
  size_t n = fz_bound(fz_size(in));
  size_t align;
  bool valid;
  if (a & 0x80) {
    /* Not a power of two, or (posix_memalign) less than sizeof(void *). */
    static const size_t bad[] = {0, 3, 12, 24, 48, 96, 4095, 65537, 1, 2, 4};
    align = bad[(a & 0x7f) % (sizeof bad / sizeof bad[0])];
    valid = align != 0 && (align & (align - 1)) == 0 && (!posix || align >= sizeof(void *));
  } else {
    align = (size_t)1 << (a % 23);   /* 1 .. 4 MiB */
    valid = !posix || align >= sizeof(void *);
  }
  if (posix) {
    void *sentinel = (void *)&fz_tab;
    void *p = sentinel;
    errno = 12345;
    int e = fancy_posix_memalign(&p, align, n);
    if (errno != 12345) fz_die("posix_memalign(%zu, %zu) changed errno to %d", align, n, errno);
    if (!valid) {
      if (e != EINVAL || p != sentinel)
        fz_die("posix_memalign(%zu, %zu) = %d, *memptr %p; want EINVAL, untouched", align, n, e, p);
      return;
    }
    if (e != 0) fz_die("posix_memalign(%zu, %zu) = %d", align, n, e);
    fz_free(slot);
    fz_new(slot, p, n, align, false, "posix_memalign");
  } else {
    errno = 0;
    void *p = fancy_aligned_alloc(align, n);
    if (!valid) {
      if (p != NULL || errno != EINVAL)
        fz_die("aligned_alloc(%zu, %zu) = %p errno %d; want NULL + EINVAL", align, n, p, errno);
      return;
    }
    fz_free(slot);
    fz_new(slot, p, n, align, false, "aligned_alloc");
  }
}

static void fz_run(fz_in_t *in) {
  for (unsigned ops = 0; ops < 4096; ops++) {
    uint8_t op = fz_u8(in);
    if (in->eof) break;
    switch (op % FZ_NOPS) {
    case OP_MALLOC: {
      unsigned slot = fz_u8(in);
      size_t n = fz_bound(fz_size(in));
      fz_free(slot);
      fz_new(slot, fancy_malloc(n), n, 0, false, "malloc");
      break;
    }
    case OP_CALLOC: {
      unsigned slot = fz_u8(in);
      uint8_t m = fz_u8(in);
      size_t n = fz_bound(fz_size(in));
      if (m == 0xff) {
        /* nmemb * size overflows: NULL + ENOMEM. */
        errno = 0;
        void *p = fancy_calloc(SIZE_MAX / 2 + 1 + n, 2 + n % 7);
        if (p != NULL || errno != ENOMEM) fz_die("calloc overflow: %p errno %d", p, errno);
        break;
      }
      size_t nmemb = 1 + m % 8;
      size_t each = n / nmemb;
      fz_free(slot);
      fz_new(slot, fancy_calloc(nmemb, each), nmemb * each, 0, true, "calloc");
      break;
    }
    case OP_REALLOC: {
      unsigned slot = fz_u8(in);
      size_t n = fz_size(in);
      size_t cur = fz_tab[slot].n;
      if (fz_live - cur + n > FZ_MAX_LIVE) n %= 513;
      fz_realloc(slot, n, false);
      break;
    }
    case OP_ALIGNED: fz_aligned(in, fz_u8(in), false); break;
    case OP_MEMALIGN: fz_aligned(in, fz_u8(in), true); break;
    case OP_FREE: fz_free(fz_u8(in)); break;
    case OP_USABLE: {
      fz_blk_t *b = &fz_tab[fz_u8(in)];
      if (b->p == NULL) {
        if (fancy_malloc_usable_size(NULL) != 0) fz_die("usable_size(NULL) != 0");
        break;
      }
      size_t us = fancy_malloc_usable_size(b->p);
      if (us < b->n) fz_die("usable_size(%p) = %zu < %zu", (void *)b->p, us, b->n);
      /* The slack is the caller's: write it (a neighbour's pattern would
       * catch a usable size that overstates the block). */
      size_t end = us - b->n > 4096 ? b->n + 4096 : us;
      memset(b->p + b->n, 0xa5, end - b->n);
      if (us - b->n > 4096) memset(b->p + us - 64, 0x5a, 64);
      break;
    }
    case OP_TRIM: {
      uint8_t pad = fz_u8(in);
      int r = fancy_trim(pad % 4 == 0 ? 0 : (size_t)pad << 14);
      if (r != 0 && r != 1) fz_die("trim returned %d", r);
      break;
    }
    case OP_VALIDATE:
      fz_validate();
      fz_check_live(false);
      break;
    case OP_REMOTE_FREE: {
      unsigned slot = fz_u8(in);
      fz_blk_t *b = &fz_tab[slot];
      if (b->p == NULL) break;
      fz_check(slot, b->n, "before remote free");
      fz_helper.p = b->p;
      fz_helper_call(FZ_REQ_FREE);
      fz_forget(slot);
      break;
    }
    case OP_REMOTE_REALLOC: {
      unsigned slot = fz_u8(in);
      size_t n = fz_size(in);
      if (fz_live - fz_tab[slot].n + n > FZ_MAX_LIVE) n %= 513;
      fz_realloc(slot, n, true);
      break;
    }
    case OP_REMOTE_MALLOC: {
      unsigned slot = fz_u8(in);
      size_t n = fz_bound(fz_size(in));
      fz_free(slot);
      fz_helper.n = n;
      fz_helper_call(FZ_REQ_MALLOC);
      fz_new(slot, fz_helper.p, n, 0, false, "remote malloc");
      break;
    }
    case OP_HELPER_EXIT:
      if (fz_helper.running) fz_helper_call(FZ_REQ_EXIT);
      break;
    }
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fancy_stats_t st;
  fancy_stats_get(&st, sizeof st);
  if (st.bytes_live != 0) fz_die("bytes_live %zu at start", st.bytes_live);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in_t in = {data, size, false};
  fz_run(&in);
  fz_validate();
  fz_check_live(false);
  for (unsigned i = 0; i < FZ_SLOTS; i++) fz_free(i);
  fz_validate();
  fz_check_live(true);
  return 0;
}
