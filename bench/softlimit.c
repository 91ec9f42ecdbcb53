/* SPDX-License-Identifier: MIT */
/*
 * softlimit.c - a workload that frees and reallocates above a soft limit
 * (issue 17; bench/softlimit.sh runs it under FANCY_MEMORY_SOFT_LIMIT).
 *
 * THREADS threads take turns: in its turn a thread allocates WS MiB in
 * blocks of 1 KiB to 256 KiB (sizes from a fixed pseudo-random sequence)
 * plus one 8 MiB block, writes every byte, frees it all and hands over to
 * the next thread.  At most WS + 8 MiB are live at any time, but each
 * thread's heap keeps what it freed warm for FANCY_PURGE_DELAY (and up to
 * its arena budget), so without a soft limit the resident memory grows
 * towards THREADS times that.  After every turn the program samples its
 * RSS (/proc/self/statm).
 *
 *   softlimit [THREADS [WS_MIB [ROUNDS]]]      defaults: 4 48 40
 *
 * Prints one line of key=value pairs: pairs_per_sec (malloc+free pairs
 * per second), rss_base_mib (before the first allocation), rss_max_mib
 * (the largest sample), hwm_mib (VmHWM: the kernel's peak RSS), and under
 * libfancyalloc soft_limit_mib and soft_limit_hits (fancy_stats_get, found
 * with dlsym).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fancyalloc.h"

#define MIB ((size_t)1 << 20)

static int threads = 4, rounds = 40;
static size_t ws = 48 * MIB;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int turn;
static long pairs;
static size_t rss_max;

/* The start of a /proc file in buf (read(2): no allocation); false if
 * it cannot be read. */
static bool read_proc(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return true;
}

/* RSS in bytes from /proc/self/statm. */
static size_t rss_now(void) {
  char buf[128];
  unsigned long size, res;
  if (!read_proc("/proc/self/statm", buf, sizeof buf) ||
      sscanf(buf, "%lu %lu", &size, &res) != 2)
    return 0;
  return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t hwm(void) {
  char buf[4096];
  if (!read_proc("/proc/self/status", buf, sizeof buf)) return 0;
  char *p = strstr(buf, "VmHWM:");
  return p ? (size_t)strtoul(p + 6, NULL, 10) << 10 : 0;
}

static void *worker(void *arg) {
  int me = (int)(intptr_t)arg;
  uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(me + 1);
  size_t cap = ws / 1024 + 1;
  void **blocks = malloc(cap * sizeof *blocks);
  if (blocks == NULL) abort();
  for (int r = 0; r < rounds; r++) {
    pthread_mutex_lock(&lock);
    while (turn != me) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    size_t n = 0, total = 0;
    while (total < ws && n < cap) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      size_t sz = 1024 + (size_t)(seed >> 33) % (255 * 1024);
      void *p = malloc(sz);
      if (p == NULL) {
        fprintf(stderr, "softlimit: malloc(%zu) failed\n", sz);
        exit(1);
      }
      memset(p, (int)n, sz);
      blocks[n++] = p;
      total += sz;
    }
    void *big = malloc(8 * MIB);
    if (big == NULL) {
      fprintf(stderr, "softlimit: malloc(8 MiB) failed\n");
      exit(1);
    }
    memset(big, 1, 8 * MIB);
    size_t rss = rss_now();   /* the turn's peak: everything live */
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    free(big);
    pthread_mutex_lock(&lock);
    pairs += (long)n + 1;
    if (rss > rss_max) rss_max = rss;
    rss = rss_now();          /* after the frees: what is kept */
    if (rss > rss_max) rss_max = rss;
    turn = (turn + 1) % threads;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
  }
  free(blocks);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) threads = atoi(argv[1]);
  if (argc > 2) ws = (size_t)atol(argv[2]) * MIB;
  if (argc > 3) rounds = atoi(argv[3]);
  if (threads < 1 || threads > 64 || ws == 0 || rounds < 1) {
    fprintf(stderr, "usage: softlimit [THREADS [WS_MIB [ROUNDS]]]\n");
    return 2;
  }
  size_t base = rss_now();
  pthread_t t[64];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("threads=%d ws_mib=%zu rounds=%d pairs_per_sec=%.0f rss_base_mib=%.1f rss_max_mib=%.1f "
         "hwm_mib=%.1f",
         threads, ws / MIB, rounds, (double)pairs / secs, (double)base / MIB,
         (double)rss_max / MIB, (double)hwm() / MIB);
  /* libfancyalloc's counters, when it serves malloc (found with dlsym:
   * the program links nothing but libc, and runs under any allocator;
   * fancyalloc.h gives only the struct's layout). */
  int (*get)(fancy_stats_t *, size_t) =
      (int (*)(fancy_stats_t *, size_t))dlsym(RTLD_DEFAULT, "fancy_stats_get");
  if (get != NULL) {
    fancy_stats_t st;
    memset(&st, 0, sizeof st);
    get(&st, sizeof st);
    printf(" soft_limit_mib=%.1f soft_limit_hits=%zu", (double)st.soft_limit / MIB,
           st.soft_limit_hits);
  }
  printf("\n");
  return 0;
}
