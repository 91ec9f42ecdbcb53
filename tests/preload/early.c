/* SPDX-License-Identifier: MIT */
/*
 * early.c - libearly.so, a library whose constructor allocates.  Preloaded
 * after libfancymalloc (LD_PRELOAD="libfancymalloc.so.1 libearly.so"), its
 * constructor runs before libfancymalloc's own, so the allocator must set
 * itself up from inside that first malloc, without recursing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *early_message;
int early_status = -1;

__attribute__((visibility("default"))) const char *early_result(void);

__attribute__((constructor)) static void early_constructor(void) {
  int bad = 0;
  char *p = malloc(24);
  if (p == NULL) bad |= 1;
  else strcpy(p, "early malloc");
  char *q = calloc(100, 10);
  if (q == NULL) bad |= 2;
  else for (int i = 0; i < 1000; i++) bad |= q[i] ? 4 : 0;
  void *a = NULL;
  if (posix_memalign(&a, 4096, 5000) != 0 || ((size_t)a & 4095)) bad |= 8;
  p = realloc(p, 100000);
  if (p == NULL || strcmp(p, "early malloc") != 0) bad |= 16;
  char buf[64];
  snprintf(buf, sizeof buf, "libearly constructor: %s", bad ? "BAD" : "ok");
  early_message = strdup(buf);
  free(a);
  free(q);
  free(p);
  early_status = bad;
}

const char *early_result(void) {
  return early_message ? early_message : "libearly constructor: did not run";
}
