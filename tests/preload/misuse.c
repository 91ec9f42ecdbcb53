/* SPDX-License-Identifier: MIT */
/*
 * misuse - one misuse of the malloc family per run, for test_misuse.sh:
 *     misuse KIND
 * prints "addr <pointer>" (flushed; before the first free of a double
 * free, so that stdio's buffer cannot take the freed block's place) and
 * then commits the misuse, which
 * must abort with one "fancyalloc: <what> at <pointer>" line.  Reaching
 * the end prints "survived" and exits 0 (the test then fails).
 * KIND "huge-unit N" frees the pointer N * 4 MiB + 64 bytes into a
 * 40 MiB block; "glibc" frees blocks of glibc's own malloc and checks that
 * glibc got them back (its mallinfo2), which must not abort.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../lib/glibc_malloc.h"
#include "which.h"

/* The misuse is the point: no warning about it. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static char static_object[256];

static void *announce(void *p) {
  printf("addr %p\n", p);
  fflush(stdout);
  return p;
}

/* Keep the compiler from seeing the misuse (-Wfree-nonheap-object). */
static void *launder(void *p) {
  void *volatile v = p;
  return v;
}

#ifndef __GLIBC__
/* No second malloc in the process to hand blocks back to (musl). */
static int glibc_case(void) {
  printf("not glibc: no glibc malloc to release blocks to\n");
  return 77;
}
#else
static int glibc_case(void) {
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *(*gmalloc)(size_t) = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
  void (*gfree)(void *) = libc ? (void (*)(void *))dlsym(libc, "free") : NULL;
  struct mallinfo2 (*gmallinfo2)(void) =
      libc ? (struct mallinfo2 (*)(void))dlsym(libc, "mallinfo2") : NULL;
  if (gmalloc == NULL || gfree == NULL || gmallinfo2 == NULL || gmalloc == malloc) {
    printf("cannot reach glibc's malloc\n");
    return 1;
  }
  gfree(gmalloc(1));   /* glibc sets up its per-thread cache */
  /* Released: glibc's figures are back where they were, or (a small
   * chunk, kept in glibc's per-thread cache, which its figures count as
   * in use) glibc's next malloc of the size hands the same chunk out. */
  size_t sizes[] = {24, 100, 1000, 4000, 200000, 1 << 20, 8 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct mallinfo2 before = gmallinfo2();
    char *p = gmalloc(sizes[i]);
    if (p == NULL) return 1;
    memset(p, 0x5a, sizes[i]);
    free(p);   /* ours: must hand it to glibc's free */
    struct mallinfo2 after = gmallinfo2();
    const char *how = "glibc's figures back to before";
    if (after.uordblks + after.hblkhd != before.uordblks + before.hblkhd) {
      char *again = gmalloc(sizes[i]);
      gfree(again);
      if (again != p) {
        printf("glibc block of %zu bytes: not released (glibc holds %zu more bytes)\n", sizes[i],
               after.uordblks + after.hblkhd - before.uordblks - before.hblkhd);
        return 1;
      }
      how = "glibc hands the same chunk out again";
    }
    printf("glibc block of %zu bytes released by glibc's free (%s)\n", sizes[i], how);
  }
  /* realloc of a glibc block moves it into ours and releases it. */
  struct mallinfo2 before = gmallinfo2();
  char *p = gmalloc(5000);
  memset(p, 7, 5000);
  char *q = realloc(p, 9000);
  struct mallinfo2 after = gmallinfo2();
  if (q == NULL || q[4999] != 7 || after.uordblks != before.uordblks) {
    printf("realloc of a glibc block: wrong\n");
    return 1;
  }
  free(q);
  printf("realloc of a glibc block: copied and released by glibc's free\n");
  return 0;
}
#endif

int main(int argc, char **argv) {
  if (strcmp(which_malloc(), "libfancymalloc") != 0) {
    printf("misuse: malloc is %s, not libfancymalloc\n", which_malloc());
    return 77;
  }
  const char *k = argc > 1 ? argv[1] : "";
  char stack_buf[64];
  if (strcmp(k, "double-small") == 0) {
    char *p = malloc(100);
    free(announce(p));
    free(p);
  } else if (strcmp(k, "double-medium") == 0) {
    char *p = malloc(20000);
    free(announce(p));
    free(p);
  } else if (strcmp(k, "double-large") == 0) {
    char *p = malloc(1 << 20);
    free(announce(p));
    free(p);
  } else if (strcmp(k, "double-huge") == 0) {
    char *p = malloc((size_t)100 << 20);   /* beyond the warm cache: unmapped */
    free(announce(p));
    free(p);
  } else if (strcmp(k, "double-huge-warm") == 0) {
    char *p = malloc((size_t)8 << 20);     /* kept mapped, warm */
    free(announce(p));
    free(p);
  } else if (strcmp(k, "interior-small") == 0) {
    char *p = malloc(100);
    free(announce(p + 16));
  } else if (strcmp(k, "interior-large") == 0) {
    char *p = malloc(1 << 20);
    free(announce(p + 65536));
  } else if (strcmp(k, "huge-unit") == 0 && argc > 2) {
    char *p = malloc((size_t)40 << 20);
    size_t unit = strtoul(argv[2], NULL, 10);
    free(announce(p + unit * ((size_t)4 << 20) + 64));
  } else if (strcmp(k, "stack") == 0) {
    free(announce(launder(stack_buf)));
  } else if (strcmp(k, "static") == 0) {
    free(announce(launder(static_object)));
  } else if (strcmp(k, "mmap") == 0) {
    char *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    memset(p, 0xa5, 1 << 16);
    free(announce(p + 4096));
  } else if (strcmp(k, "realloc-freed-small") == 0) {
    char *p = malloc(100);
    free(announce(p));
    p = realloc(p, 50);
  } else if (strcmp(k, "realloc-freed-large") == 0) {
    char *p = malloc(1 << 20);
    free(announce(p));
    p = realloc(p, 50);
  } else if (strcmp(k, "realloc-freed-huge") == 0) {
    char *p = malloc((size_t)100 << 20);
    free(announce(p));
    p = realloc(p, 50);
  } else if (strcmp(k, "usable-size-freed") == 0) {
    char *p = malloc(100), *q = malloc(1 << 20);
    size_t live = malloc_usable_size(p), qlive = malloc_usable_size(q);
    free(p);
    free(q);
    printf("usable %zu %zu freed %zu %zu\n", live, qlive, malloc_usable_size(p),
           malloc_usable_size(q));
    return 0;
  } else if (strcmp(k, "glibc") == 0) {
    return glibc_case();
  } else {
    fprintf(stderr, "misuse: unknown kind %s\n", k);
    return 2;
  }
  printf("survived\n");
  return 0;
}
