/* SPDX-License-Identifier: MIT */
/*
 * which.h - which library serves this process's malloc (for the
 * tests/preload helpers): dladdr on the address the program sees for
 * malloc, which is the interposed one under LD_PRELOAD or -lfancymalloc.
 */
#ifndef FANCY_TESTS_PRELOAD_WHICH_H
#define FANCY_TESTS_PRELOAD_WHICH_H

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static inline const char *which_malloc(void) {
  void *(*volatile m)(size_t) = malloc;
  Dl_info info;
  if (dladdr((void *)m, &info) == 0 || info.dli_fname == NULL) return "unknown";
  if (strstr(info.dli_fname, "libfancymalloc") != NULL) return "libfancymalloc";
  if (strstr(info.dli_fname, "libc.so") != NULL) return "glibc";
  return info.dli_fname;
}

#endif
