/* SPDX-License-Identifier: MIT */
/*
 * limit_helper.c - FANCY_MEMORY_LIMIT, which is read once at start-up, so
 * it is tested by a program of its own rather than a Check suite.
 *
 * Run without arguments (as `make check` does), it re-executes itself with
 * FANCY_MEMORY_LIMIT=64m and then checks that
 *   - fancy_stats_get reports the limit (64 MiB);
 *   - 1 MiB blocks eventually fail with NULL + ENOMEM, before 64 + 8 MiB
 *     have been handed out, and not before 32 MiB (half the limit);
 *   - a single block larger than the limit fails with NULL + ENOMEM;
 *   - after freeing everything, allocation works again, and as many 1 MiB
 *     blocks (give or take 4) can be had as the first time.
 * Exit status: 0 pass, 1 fail (with a message on stderr), as automake's
 * test harness expects.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fancyalloc.h"

#define MIB ((size_t)1 << 20)
#define LIMIT (64 * MIB)
#define MAX_BLOCKS 1024

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  failures++;
}

/* Allocates 1 MiB blocks until one fails; returns how many succeeded. */
static int fill(void **p, const char *what) {
  int n = 0;
  for (;;) {
    if (n == MAX_BLOCKS) {
      fail("%s: %d blocks of 1 MiB allocated with a 64 MiB limit, no failure",
           what, n);
      return n;
    }
    errno = 0;
    void *q = fancy_malloc(MIB);
    if (q == NULL) {
      if (errno != ENOMEM)
        fail("%s: fancy_malloc(1 MiB) failed with errno %d, expected ENOMEM",
             what, errno);
      return n;
    }
    memset(q, 0x77, MIB);  /* the memory is really usable */
    p[n++] = q;
  }
}

int main(int argc, char **argv) {
  if (getenv("FA_LIMIT_HELPER_CHILD") == NULL) {
    /* the limit must be in the environment before the library starts */
    setenv("FANCY_MEMORY_LIMIT", "64m", 1);
    setenv("FA_LIMIT_HELPER_CHILD", "1", 1);
    execv("/proc/self/exe", argv);
    perror("limit_helper: execv(/proc/self/exe)");
    return 1;
  }
  (void)argc;

  fancy_stats_t s;
  memset(&s, 0, sizeof(s));
  if (fancy_stats_get(&s, sizeof(s)) != 0)
    fail("fancy_stats_get failed");
  else if (s.memory_limit != LIMIT)
    fail("FANCY_MEMORY_LIMIT=64m: stats.memory_limit = %zu, expected %zu",
         s.memory_limit, LIMIT);

  static void *p[MAX_BLOCKS];
  int first = fill(p, "first round");
  size_t handed = (size_t)first * MIB;
  printf("first round: %d blocks of 1 MiB before ENOMEM\n", first);
  if (handed >= LIMIT + 8 * MIB)
    fail("first round: %zu MiB handed out under a 64 MiB limit", handed / MIB);
  if (handed < LIMIT / 2)
    fail("first round: only %zu MiB could be allocated under a 64 MiB limit",
         handed / MIB);
  if (fancy_stats_get(&s, sizeof(s)) == 0 && s.bytes_mapped > LIMIT)
    fail("at the limit: bytes_mapped %zu above the limit %zu", s.bytes_mapped,
         LIMIT);

  /* small blocks may still fit or fail, but must fail cleanly */
  errno = 0;
  void *small = fancy_malloc(16);
  if (small == NULL && errno != ENOMEM)
    fail("at the limit: fancy_malloc(16) NULL with errno %d", errno);
  fancy_free(small);

  for (int i = 0; i < first; i++) fancy_free(p[i]);

  /* a single block larger than the limit */
  errno = 0;
  void *big = fancy_malloc(LIMIT + MIB);
  if (big != NULL || errno != ENOMEM)
    fail("fancy_malloc(65 MiB) under a 64 MiB limit returned %s, errno %d",
         big != NULL ? "a block" : "NULL", errno);
  fancy_free(big);

  /* freeing made room again */
  void *q = fancy_malloc(MIB);
  if (q == NULL)
    fail("fancy_malloc(1 MiB) still fails after freeing everything");
  fancy_free(q);
  q = fancy_malloc(100);
  if (q == NULL)
    fail("fancy_malloc(100) fails after freeing everything");
  fancy_free(q);
  void *h = fancy_malloc(16 * MIB);
  if (h == NULL)
    fail("fancy_malloc(16 MiB) fails after freeing everything");
  fancy_free(h);

  int second = fill(p, "second round");
  printf("second round: %d blocks of 1 MiB before ENOMEM\n", second);
  if (second + 4 < first)
    fail("second round: only %d blocks of 1 MiB after freeing everything, %d "
         "the first time: freed memory still counts against the limit",
         second, first);
  for (int i = 0; i < second; i++) fancy_free(p[i]);

  if (!fancy_validate_heap())
    fail("fancy_validate_heap() returned false");
  if (failures == 0) printf("PASS: FANCY_MEMORY_LIMIT=64m\n");
  return failures == 0 ? 0 : 1;
}
