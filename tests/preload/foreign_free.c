/* SPDX-License-Identifier: MIT */
/*
 * foreign_free - free() of pointers the allocator did not hand out, under
 * LD_PRELOAD.  Before libfancymalloc is in charge, memory may come from
 * elsewhere (the dynamic loader's bootstrap allocator) and reach free()
 * later; the preload library must ignore such pointers, without crashing
 * and without writing into them.  The pointers here come from glibc's own
 * malloc (found with dlsym in libc.so.6, small and mmapped), from mmap,
 * and from static storage.  Only meaningful under the preload: without
 * it, it says so and exits 77.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "which.h"

static unsigned char static_area[8192] __attribute__((aligned(4096)));

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
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  void *(*glibc_malloc)(size_t) = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
  if (glibc_malloc == NULL || glibc_malloc == malloc) {
    printf("foreign_free: cannot reach glibc's malloc\n");
    return 1;
  }
  struct { const char *what; unsigned char *p; size_t n; } f[6];
  int nf = 0;
  f[nf].what = "glibc small block"; f[nf].n = 100; f[nf].p = glibc_malloc(100); nf++;
  f[nf].what = "glibc 1 MiB block (mmapped)"; f[nf].n = 1 << 20; f[nf].p = glibc_malloc(1 << 20); nf++;
  f[nf].what = "glibc 200 KiB block"; f[nf].n = 200000; f[nf].p = glibc_malloc(200000); nf++;
  f[nf].what = "mmap page";
  f[nf].n = 65536;
  f[nf].p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (f[nf].p == MAP_FAILED) f[nf].p = NULL;
  nf++;
  f[nf].what = "static array"; f[nf].n = sizeof static_area; f[nf].p = static_area; nf++;
  f[nf].what = "interior of a glibc block"; f[nf].n = 50; f[nf].p = f[0].p ? f[0].p + 16 : NULL; nf++;
  int bad = 0;
  for (int i = 0; i < nf; i++) {
    if (f[i].p == NULL) { printf("foreign_free: no %s\n", f[i].what); return 1; }
    if (i != 5) memset(f[i].p, 0xa5, f[i].n);
  }
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < nf; i++) {
      free(f[i].p);
      /* Our own blocks still work around it. */
      void *mine[100];
      for (int j = 0; j < 100; j++) {
        mine[j] = malloc(16 + (size_t)j * 300);
        if (mine[j] == NULL) return 1;
        memset(mine[j], 0x11, 16 + (size_t)j * 300);
      }
      for (int j = 0; j < 100; j++) free(mine[j]);
      if (!intact(i == 5 ? f[0].p : f[i].p, i == 5 ? 100 : f[i].n, 0xa5)) {
        printf("foreign_free: free() wrote into the %s\n", f[i].what);
        bad = 1;
      } else if (round == 0) {
        printf("foreign_free: %s ignored, left intact\n", f[i].what);
      }
    }
  }
  printf("foreign_free: %s\n", bad ? "FAILED" : "ok");
  return bad;
}
