/* SPDX-License-Identifier: MIT */
/*
 * ctor_alloc - allocation before main: a constructor of the program that
 * allocates with every function of the malloc family and uses stdio, and
 * (when tests/preload/libearly.so is preloaded after libfancymalloc) a
 * library constructor that runs before the allocator's own constructor.
 * Prints what the constructors saw; exits 1 if anything was wrong.
 */
#include "config.h"

#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *ctor_text;
static int ctor_bad = -1;
static void *ctor_blocks[64];

__attribute__((constructor(101))) static void ctor_first(void) {
  int bad = 0;
  for (int i = 0; i < 64; i++) {
    ctor_blocks[i] = malloc((size_t)1 << (i % 23));
    if (ctor_blocks[i] == NULL) bad |= 1;
    else memset(ctor_blocks[i], i, (size_t)1 << (i % 23));
  }
  void *m = memalign(64, 1000);
  void *al = aligned_alloc(256, 512);
  void *v = valloc(100);
  if (m == NULL || ((size_t)m & 63) || al == NULL || ((size_t)al & 255) || v == NULL) bad |= 2;
  free(m);
  free(al);
  free(v);
  /* stdio allocates its buffers. */
  FILE *f = fopen("/dev/null", "w");
  if (f == NULL) bad |= 4;
  else {
    fprintf(f, "%s %d\n", "constructor", 42);
    fclose(f);
  }
  size_t len = 0;
  char *s = NULL;
  FILE *mem = open_memstream(&s, &len);
  if (mem == NULL) bad |= 8;
  else {
    for (int i = 0; i < 1000; i++) fprintf(mem, "%d,", i);
    fclose(mem);
    if (len < 3000) bad |= 16;
  }
  ctor_text = s;
  ctor_bad = bad;
}

int main(void) {
  int bad = ctor_bad;
  for (int i = 0; i < 64; i++) {
    const unsigned char *b = ctor_blocks[i];
    size_t n = (size_t)1 << (i % 23);
    if (b == NULL || b[0] != i || b[n - 1] != i) bad |= 32;
    free(ctor_blocks[i]);
  }
  printf("program constructor: %s (%zu bytes of text)\n", bad ? "BAD" : "ok",
         ctor_text ? strlen(ctor_text) : (size_t)0);
  free(ctor_text);
  /* libearly, when preloaded. */
  const char *(*early)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "early_result");
  if (early != NULL) {
    const char *r = early();
    printf("%s\n", r);
    if (strstr(r, ": ok") == NULL) bad |= 64;
  }
  return bad ? 1 : 0;
}
