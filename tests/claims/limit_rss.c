/* SPDX-License-Identifier: MIT */
/*
 * limit_rss.c - claim fancyalloc.7-memory-limit: fancyalloc(7),
 * FANCY_MEMORY_LIMIT: "The most memory the allocator holds for blocks ...:
 * the bytes_mapped of fancy_stats_get(3) ... This bounds the memory that
 * can be resident, not the process's virtual size".
 *
 * Run without arguments it re-executes itself with FANCY_MEMORY_LIMIT=16m,
 * then fills memory with blocks of every tier (64 B, 8 KiB, 256 KiB, 3 MiB),
 * touching every byte, until each fails with ENOMEM; bytes_mapped never
 * exceeds 16 MiB, and the resident set grows by at most the limit plus
 * 1 MiB (the allocator's tables), while the virtual size may grow more.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fancyalloc.h"

/* A sanitizer's shadow memory is resident too: no bound on RSS there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FA_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define FA_SANITIZED 1
#endif
#endif
#ifndef FA_SANITIZED
#define FA_SANITIZED 0
#endif

#define MIB ((size_t)1 << 20)
#define LIMIT (16 * MIB)

/* Resident and virtual size in bytes, from /proc/self/statm. */
static void sizes(size_t *rss, size_t *vsz) {
  unsigned long v = 0, r = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%lu %lu", &v, &r) != 2) {
    fprintf(stderr, "FAIL: cannot read /proc/self/statm\n");
    exit(99);
  }
  fclose(f);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  *rss = r * page;
  *vsz = v * page;
}

static size_t mapped(void) {
  fancy_stats_t st;
  fancy_stats_get(&st, sizeof st);
  return st.bytes_mapped;
}

int main(int argc, char **argv) {
  (void)argc;
  if (getenv("FANCY_LIMIT_RSS_CHILD") == NULL) {
    setenv("FANCY_LIMIT_RSS_CHILD", "1", 1);
    setenv("FANCY_MEMORY_LIMIT", "16m", 1);
    execv("/proc/self/exe", argv);
    perror("limit_rss: execv");
    return 99;
  }
  static void *blocks[1 << 20];
  size_t nblocks = 0, rss0, vsz0, rss, vsz, most = 0;
  free(malloc(1));                      /* stdio's buffers, before the baseline */
  fancy_free(fancy_malloc(1));          /* the allocator's set-up */
  sizes(&rss0, &vsz0);
  static const size_t tiers[] = {3 * MIB, 256 << 10, 8 << 10, 64};
  for (size_t t = 0; t < sizeof tiers / sizeof tiers[0]; t++) {
    for (;;) {
      if (nblocks == sizeof blocks / sizeof blocks[0]) break;
      errno = 0;
      void *p = fancy_malloc(tiers[t]);
      if (p == NULL) {
        if (errno != ENOMEM) {
          fprintf(stderr, "FAIL: NULL with errno %d, not ENOMEM\n", errno);
          return 1;
        }
        break;
      }
      memset(p, 0x5a, tiers[t]);
      blocks[nblocks++] = p;
      size_t m = mapped();
      if (m > most) most = m;
      if (m > LIMIT) {
        fprintf(stderr, "FAIL: bytes_mapped %zu above the 16 MiB limit\n", m);
        return 1;
      }
    }
  }
  sizes(&rss, &vsz);
  printf("limit_rss: %zu blocks; bytes_mapped at most %zu; RSS +%zu, virtual size +%zu bytes\n",
         nblocks, most, rss - rss0, vsz - vsz0);
  if (most < LIMIT - 4 * MIB) {
    fprintf(stderr, "FAIL: ENOMEM with only %zu bytes mapped\n", most);
    return 1;
  }
  if (!FA_SANITIZED && rss - rss0 > LIMIT + MIB) {
    fprintf(stderr, "FAIL: the resident set grew by %zu bytes, more than 17 MiB\n", rss - rss0);
    return 1;
  }
  for (size_t i = 0; i < nblocks; i++) fancy_free(blocks[i]);
  return 0;
}
