/* SPDX-License-Identifier: MIT */
/*
 * valgrind_prog.c - run under valgrind by tests/test_valgrind.sh: each
 * mode makes one mistake (or none) with fancy_* blocks, which memcheck
 * must report as it would for malloc'ed memory.
 */
#include <fancyalloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *volatile sink;

/* Allocations of every tier, freed again, so a clean run has something to
 * be clean about. */
static void workload(void) {
  static const size_t sizes[] = {1, 16, 100, 512, 600, 5000, 40000, 300000, 3u << 20};
  void *p[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    p[i] = fancy_malloc(sizes[i]);
    memset(p[i], 1, sizes[i]);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    p[i] = fancy_realloc(p[i], sizes[i] + 100);
    fancy_free(p[i]);
  }
  unsigned char *z = fancy_calloc(10, 1000);
  int sum = 0;
  for (int i = 0; i < 10000; i++) sum += z[i];
  fancy_free(z);
  void *a = fancy_aligned_alloc(4096, 100);
  memset(a, 2, 100);
  fancy_free(a);
  if (sum != 0) puts("calloc not zero");
}

static void leak(void) {
  char *p = fancy_malloc(100);   /* definitely lost: 100 bytes in 1 block */
  memset(p, 3, 100);
  sink = p + 1;                  /* no pointer to its start survives... */
  sink = NULL;                   /* ...nor any other */
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  workload();
  if (strcmp(mode, "leak") == 0) {
    leak();
  } else if (strcmp(mode, "uaf") == 0) {
    char *p = fancy_malloc(64);
    memset(p, 4, 64);
    fancy_free(p);
    printf("%d\n", p[40]);       /* Invalid read of size 1 */
  } else if (strcmp(mode, "overrun") == 0) {
    volatile size_t end = 24;    /* hidden from gcc's bounds warning */
    char *p = fancy_malloc(24);
    p[end] = 5;                  /* Invalid write of size 1 */
    sink = p;
  } else if (strcmp(mode, "uninit") == 0) {
    char *p = fancy_malloc(32);
    if (p[5] == 7) puts("seven"); /* depends on uninitialised value */
    fancy_free(p);
  }
  return 0;
}
