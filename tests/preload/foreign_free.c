/* SPDX-License-Identifier: MIT */
/*
 * foreign_free - free() of blocks of glibc's own malloc, under LD_PRELOAD.
 * Before libfancymalloc is in charge, or through a library that reached
 * glibc's malloc directly (here: dlsym in libc.so.6), a block of glibc's
 * allocator may reach our free(); it goes back to glibc's free
 * (lib/foreign.c), and the allocator's own blocks keep working around it.
 * That glibc really gets the blocks back is checked by "misuse glibc"
 * (test_misuse.sh); pointers that are nobody's block abort (the same).
 * Only meaningful under the preload: without it, it says so and exits 77.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "which.h"

static int intact(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

int main(void) {
  if (strcmp(which_malloc(), "libfancymalloc") != 0) {
    printf("foreign_free: malloc is %s, not libfancymalloc: nothing to test\n", which_malloc());
    return 77;
  }
#ifndef __GLIBC__
  /* lib/foreign.c knows glibc's blocks only.  musl (1.2.1 on) sends its
   * own calls to the malloc that replaces its own, so no musl block reaches
   * our free unless the program looks musl's malloc up by name. */
  printf("foreign_free: not glibc: no foreign blocks to test\n");
  return 77;
#endif
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *(*glibc_malloc)(size_t) = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
  if (glibc_malloc == NULL || glibc_malloc == malloc) {
    printf("foreign_free: cannot reach glibc's malloc\n");
    return 1;
  }
  struct { const char *what; unsigned char *p; size_t n; } f[3];
  int nf = 0;
  f[nf].what = "glibc small block"; f[nf].n = 100; f[nf].p = glibc_malloc(100); nf++;
  f[nf].what = "glibc 1 MiB block (mmapped)"; f[nf].n = 1 << 20; f[nf].p = glibc_malloc(1 << 20); nf++;
  f[nf].what = "glibc 200 KiB block"; f[nf].n = 200000; f[nf].p = glibc_malloc(200000); nf++;
  for (int i = 0; i < nf; i++) {
    if (f[i].p == NULL) { printf("foreign_free: no %s\n", f[i].what); return 1; }
    memset(f[i].p, 0xa5, f[i].n);
  }
  for (int i = 0; i < nf; i++) {
    free(f[i].p);
    /* Our own blocks still work around it. */
    unsigned char *mine[100];
    for (int j = 0; j < 100; j++) {
      mine[j] = malloc(16 + (size_t)j * 300);
      if (mine[j] == NULL) return 1;
      memset(mine[j], 0x11, 16 + (size_t)j * 300);
    }
    for (int j = 0; j < 100; j++) {
      if (!intact(mine[j], 16 + (size_t)j * 300, 0x11)) {
        printf("foreign_free: a block of ours changed after freeing the %s\n", f[i].what);
        return 1;
      }
      free(mine[j]);
    }
    printf("foreign_free: %s released\n", f[i].what);
  }
  printf("foreign_free: ok\n");
  return 0;
}
