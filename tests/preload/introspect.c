/* SPDX-License-Identifier: MIT */
/*
 * introspect - glibc's introspection calls under libfancymalloc, for
 * test_introspect.sh and test_enomem.sh.  One mode per run:
 *   mallinfo        mallinfo2 and mallinfo track a known live set
 *   stats           malloc_stats before and with 10 MB live (stderr)
 *   info F1 F2      malloc_info into F1, then with 10 MB + 64 MiB live into F2
 *   mallopt         each honoured mallopt parameter changes what it says
 *   report          mallinfo2's figures next to fancy_stats_get's
 *   enomem SIZE     malloc, calloc and realloc of SIZE bytes: NULL, ENOMEM
 * Prints "ok: ..." lines, or "FAIL: ..." and exits 1.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fancyalloc.h"
#include "../../lib/glibc_malloc.h"
#include "which.h"

#ifndef __GLIBC__
/* A C library without these calls (musl): libfancymalloc, preloaded,
 * provides them at run time; weak, so that the helper links without. */
#pragma weak mallinfo2
#pragma weak mallinfo
#pragma weak malloc_stats
#pragma weak malloc_info
#pragma weak mallopt
#endif

/* mallinfo is deprecated in glibc, but programs call it: so does this. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
/* free after a realloc that failed (and left the block alone). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#define MIB ((size_t)1 << 20)
#define NSMALL 1000
#define SMALL 10000      /* NSMALL * SMALL = 10 MB */

/* Pointers held in volatile variables: the compiler must not drop a
 * malloc whose block is only freed. */
static int failed;
#define CHECK(cond, ...)                              \
  do {                                                \
    if (!(cond)) {                                    \
      printf("FAIL: " __VA_ARGS__);                   \
      printf("\n");                                   \
      failed = 1;                                     \
    }                                                 \
  } while (0)

static void *blocks[NSMALL];

static void alloc_set(void) {
  for (int i = 0; i < NSMALL; i++) {
    blocks[i] = malloc(SMALL);
    if (blocks[i] == NULL) abort();
    memset(blocks[i], i, SMALL);
  }
}

static void free_set(void) {
  for (int i = 0; i < NSMALL; i++) free(blocks[i]);
}

static int (*stats_get)(fancy_stats_t *, size_t);

static int mode_mallinfo(void) {
  /* One round first: with reclamation on, the first large free starts the
     reclaim thread, and glibc's pthread_create allocates that thread's TLS
     vector with malloc; that block is the library's, not this test's. */
  alloc_set();
  free_set();
  struct mallinfo2 a = mallinfo2();
  struct mallinfo ia = mallinfo();
  alloc_set();
  struct mallinfo2 b = mallinfo2();
  struct mallinfo ib = mallinfo();
  free_set();
  struct mallinfo2 c = mallinfo2();
  CHECK(b.uordblks >= a.uordblks + (size_t)NSMALL * SMALL, "mallinfo2 uordblks %zu -> %zu with 10 MB live",
        a.uordblks, b.uordblks);
  CHECK(c.uordblks <= a.uordblks, "mallinfo2 uordblks %zu after freeing, %zu before", c.uordblks,
        a.uordblks);
  CHECK(b.arena >= b.uordblks && b.fordblks == b.arena - b.uordblks,
        "mallinfo2 arena %zu, uordblks %zu, fordblks %zu", b.arena, b.uordblks, b.fordblks);
  CHECK(ib.uordblks >= ia.uordblks + NSMALL * SMALL, "mallinfo uordblks %d -> %d", ia.uordblks,
        ib.uordblks);
  printf("ok: mallinfo2 uordblks %zu -> %zu -> %zu (10 MB allocated, freed)\n", a.uordblks,
         b.uordblks, c.uordblks);
  printf("ok: mallinfo uordblks %d -> %d\n", ia.uordblks, ib.uordblks);

  /* Huge blocks are glibc's mmapped chunks: hblks, hblkhd. */
  char *volatile h = malloc(64 * MIB);
  struct mallinfo2 d = mallinfo2();
  free(h);
  struct mallinfo2 e = mallinfo2();
  CHECK(d.hblks == c.hblks + 1 && d.hblkhd >= c.hblkhd + 64 * MIB, "hblks %zu -> %zu, hblkhd %zu -> %zu",
        c.hblks, d.hblks, c.hblkhd, d.hblkhd);
  CHECK(e.hblks == c.hblks && e.hblkhd == c.hblkhd, "hblks/hblkhd not back after free");
  printf("ok: mallinfo2 hblks %zu -> %zu, hblkhd %zu -> %zu (64 MiB block)\n", c.hblks, d.hblks,
         c.hblkhd, d.hblkhd);

  /* mallinfo's int fields saturate: 3 GiB mapped, not touched. */
  char *volatile big = malloc((size_t)3 << 30);
  if (big != NULL) {
    struct mallinfo ic = mallinfo();
    struct mallinfo2 f = mallinfo2();
    CHECK(f.hblkhd > INT_MAX && ic.hblkhd == INT_MAX, "mallinfo hblkhd %d with %zu in huge blocks",
          ic.hblkhd, f.hblkhd);
    printf("ok: mallinfo hblkhd %d (INT_MAX) while mallinfo2 says %zu\n", ic.hblkhd, f.hblkhd);
    free(big);
  }
  return failed;
}

static int mode_stats(void) {
  malloc_stats();
  alloc_set();
  fprintf(stderr, "-- with 10 MB live\n");
  malloc_stats();
  free_set();
  return 0;
}

static int mode_info(const char *f1, const char *f2) {
  FILE *a = fopen(f1, "w"), *b = fopen(f2, "w");
  if (a == NULL || b == NULL) return 1;
  CHECK(malloc_info(0, a) == 0, "malloc_info failed");
  alloc_set();
  char *volatile h = malloc(64 * MIB);
  CHECK(malloc_info(0, b) == 0, "malloc_info failed");
  CHECK(malloc_info(1, b) == -1 && errno == EINVAL, "malloc_info(1, fp) is not EINVAL");
  free(h);
  free_set();
  fclose(a);
  fclose(b);
  return failed;
}

/* Bytes of segments the heaps hold (mallinfo2: arena - keepcost), and
 * kept warm (keepcost), after 40 1 MiB blocks are written and freed. */
static void churn(size_t *held, size_t *kept) {
  char *p[40];
  for (int i = 0; i < 40; i++) {
    p[i] = malloc(MIB);
    if (p[i] == NULL) abort();
    memset(p[i], 1, MIB);
  }
  for (int i = 0; i < 40; i++) free(p[i]);
  struct mallinfo2 m = mallinfo2();
  *held = m.arena - m.keepcost;
  *kept = m.keepcost;
}

static int mode_mallopt(void) {
  size_t held0, kept0, held1, kept1, held2, kept2;
  churn(&held0, &kept0);
  /* M_TRIM_THRESHOLD: free memory a thread keeps. */
  CHECK(mallopt(M_TRIM_THRESHOLD, 0) == 1, "mallopt(M_TRIM_THRESHOLD) not honoured");
  /* M_TOP_PAD: empty segments kept warm (0: none). */
  CHECK(mallopt(M_TOP_PAD, 0) == 1, "mallopt(M_TOP_PAD) not honoured");
  churn(&held1, &kept1);
  CHECK(held0 >= 32 * MIB, "default: only %zu bytes held after freeing 40 MiB", held0);
  CHECK(held1 <= 8 * MIB, "M_TRIM_THRESHOLD 0: still %zu bytes held", held1);
  CHECK(kept1 == 0, "M_TOP_PAD 0: %zu bytes kept warm", kept1);
  printf("ok: M_TRIM_THRESHOLD: bytes held after freeing 40 MiB: %zu by default, %zu with 0\n",
         held0, held1);
  CHECK(mallopt(M_TOP_PAD, 32 << 20) == 1, "mallopt(M_TOP_PAD) not honoured");
  churn(&held2, &kept2);
  CHECK(kept2 >= 4 * MIB && kept2 <= 32 * MIB, "M_TOP_PAD 32 MiB: %zu bytes kept warm", kept2);
  printf("ok: M_TOP_PAD: bytes kept warm: %zu with 0, %zu with 32 MiB\n", kept1, kept2);

  /* M_MMAP_THRESHOLD: blocks above it get a mapping of their own. */
  struct mallinfo2 a = mallinfo2();
  char *volatile p = malloc(MIB);
  struct mallinfo2 b = mallinfo2();
  free(p);
  CHECK(mallopt(M_MMAP_THRESHOLD, 256 << 10) == 1, "mallopt(M_MMAP_THRESHOLD) not honoured");
  p = malloc(MIB);
  struct mallinfo2 c = mallinfo2();
  char *volatile q = malloc(200 << 10);
  struct mallinfo2 d = mallinfo2();
  free(q);
  free(p);
  CHECK(b.hblks == a.hblks, "1 MiB block mapped on its own by default");
  CHECK(c.hblks == a.hblks + 1, "M_MMAP_THRESHOLD 256 KiB: 1 MiB block not mapped on its own");
  CHECK(d.hblks == c.hblks, "M_MMAP_THRESHOLD 256 KiB: 200 KiB block mapped on its own");
  CHECK(mallopt(M_MMAP_THRESHOLD, 64 << 20) == 0, "M_MMAP_THRESHOLD above 2 MiB accepted");
  printf("ok: M_MMAP_THRESHOLD: mapped blocks %zu -> %zu for 1 MiB by default, %zu -> %zu at 256 KiB\n",
         a.hblks, b.hblks, a.hblks, c.hblks);
  /* Parameters that map onto nothing here: 0, as glibc for one it does
   * not know. */
  CHECK(mallopt(M_ARENA_MAX, 2) == 0 && mallopt(M_PERTURB, 0x55) == 0 && mallopt(M_MXFAST, 0) == 0 &&
            mallopt(M_MMAP_MAX, 0) == 0 && mallopt(12345, 1) == 0,
        "mallopt of a parameter not honoured returned 1");
  printf("ok: M_ARENA_MAX, M_PERTURB, M_MXFAST, M_MMAP_MAX and unknown parameters: 0\n");
  return failed;
}

static int mode_report(void) {
  alloc_set();
  char *volatile h = malloc(64 * MIB);
  struct mallinfo2 m = mallinfo2();
  fancy_stats_t st;
  if (stats_get == NULL || stats_get(&st, sizeof st) != 0) {
    printf("FAIL: fancy_stats_get not found\n");
    return 1;
  }
  printf("mallinfo2: arena %zu uordblks %zu fordblks %zu hblks %zu hblkhd %zu keepcost %zu\n",
         m.arena, m.uordblks, m.fordblks, m.hblks, m.hblkhd, m.keepcost);
  printf("fancy_stats_get: bytes_live %zu bytes_huge %zu huge_blocks %zu bytes_mapped %zu\n",
         st.bytes_live, st.bytes_huge, st.huge_blocks, st.bytes_mapped);
  CHECK(m.arena != 0 && m.uordblks != 0 && m.hblks != 0 && m.hblkhd != 0, "a zero figure");
  CHECK(m.uordblks + m.hblkhd == st.bytes_live, "uordblks + hblkhd != bytes_live");
  CHECK(m.hblkhd == st.bytes_huge && m.hblks == st.huge_blocks, "hblkhd/hblks != bytes_huge/huge_blocks");
  CHECK(m.arena + m.hblkhd == st.bytes_mapped, "arena + hblkhd != bytes_mapped");
  if (!failed) printf("ok: mallinfo2 matches fancy_stats_get\n");
  free(h);
  free_set();
  return failed;
}

static int mode_enomem(const char *arg) {
  size_t n = strtoull(arg, NULL, 10);
  errno = 0;
  void *p = malloc(n);
  CHECK(p == NULL && errno == ENOMEM, "malloc(%zu): %p, errno %d", n, p, errno);
  errno = 0;
  p = calloc(1, n);
  CHECK(p == NULL && errno == ENOMEM, "calloc(1, %zu): %p, errno %d", n, p, errno);
  errno = 0;
  p = realloc(NULL, n);
  CHECK(p == NULL && errno == ENOMEM, "realloc(NULL, %zu): %p, errno %d", n, p, errno);
  char *q = malloc(100);
  errno = 0;
  p = realloc(q, n);
  CHECK(p == NULL && errno == ENOMEM, "realloc(100-byte block, %zu): %p, errno %d", n, p, errno);
  free(q);
  char *volatile h = malloc(8 * MIB);   /* a huge block that cannot grow that far */
  errno = 0;
  p = realloc(h, n);
  CHECK(p == NULL && errno == ENOMEM, "realloc(8 MiB block, %zu): %p, errno %d", n, p, errno);
  free(h);
  if (!failed) printf("ok: malloc, calloc and realloc of %zu bytes: NULL, ENOMEM\n", n);
  return failed;
}

int main(int argc, char **argv) {
  if (strcmp(which_malloc(), "libfancymalloc") != 0) {
    printf("introspect: malloc is %s, not libfancymalloc\n", which_malloc());
    return 77;
  }
  setvbuf(stdout, NULL, _IONBF, 0);   /* no buffer to allocate mid-count */
  stats_get = (int (*)(fancy_stats_t *, size_t))dlsym(RTLD_DEFAULT, "fancy_stats_get");
  const char *m = argc > 1 ? argv[1] : "";
  if (strcmp(m, "mallinfo") == 0) return mode_mallinfo();
  if (strcmp(m, "stats") == 0) return mode_stats();
  if (strcmp(m, "info") == 0 && argc > 3) return mode_info(argv[2], argv[3]);
  if (strcmp(m, "mallopt") == 0) return mode_mallopt();
  if (strcmp(m, "report") == 0) return mode_report();
  if (strcmp(m, "enomem") == 0 && argc > 2) return mode_enomem(argv[2]);
  fprintf(stderr, "introspect: unknown mode\n");
  return 2;
}
