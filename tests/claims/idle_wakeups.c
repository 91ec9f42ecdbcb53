/* SPDX-License-Identifier: MIT */
/*
 * idle_wakeups.c - claim fancyalloc.7-reclaim-period: fancyalloc(7),
 * FANCY_RECLAIM: "The thread wakes every FANCY_PURGE_DELAY milliseconds,
 * but at most 100 times a second (every 10 ms with a delay of 0)."
 *
 * Run without arguments it re-executes itself with FANCY_RECLAIM=1
 * FANCY_PURGE_DELAY=0 (options are read once, at start-up), starts the
 * background thread with one large allocation, and counts the context
 * switches of every other thread of the process over one idle second
 * (/proc/self/task/<tid>/status).  Waking every millisecond, as before,
 * gives about 1000; at most 100 wake-ups a second gives about 100, so the
 * bound of 300 leaves room for a loaded machine and none for the old rate.
 * This measures a rate, not a race: no result depends on who runs first.
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fancyalloc.h"

/* Threads that existed before the allocator started (a sanitizer's own). */
static int fa_old_tids[64], fa_old_count;

static bool fa_old_tid(int tid) {
  for (int i = 0; i < fa_old_count; i++)
    if (fa_old_tids[i] == tid) return true;
  return false;
}

/* Context switches of every thread the allocator started; *threads gets
 * how many there are. */
static long other_switches(int *threads) {
  char path[320], line[256];
  long total = 0;
  *threads = 0;
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || fa_old_tid(atoi(e->d_name))) continue;
    (*threads)++;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    while (fgets(line, sizeof line, f) != NULL) {
      long v;
      if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
          sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
        total += v;
    }
    fclose(f);
  }
  closedir(d);
  return total;
}

/* A sanitizer runtime starts threads of its own at any time. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FA_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FA_SANITIZED 1
#endif
#endif

int main(int argc, char **argv) {
  (void)argc;
#ifdef FA_SANITIZED
  puts("idle_wakeups: SKIP under a sanitizer (its runtime has threads of its own)");
  return 77;
#endif
  if (getenv("FANCY_IDLE_WAKEUPS_CHILD") == NULL) {
    setenv("FANCY_IDLE_WAKEUPS_CHILD", "1", 1);
    setenv("FANCY_RECLAIM", "1", 1);
    setenv("FANCY_PURGE_DELAY", "0", 1);
    execv("/proc/self/exe", argv);
    perror("idle_wakeups: execv");
    return 99;
  }
  DIR *dir = opendir("/proc/self/task");
  struct dirent *ent;
  while (dir != NULL && (ent = readdir(dir)) != NULL && fa_old_count < 64)
    if (ent->d_name[0] != '.') fa_old_tids[fa_old_count++] = atoi(ent->d_name);
  if (dir != NULL) closedir(dir);
  void *p = fancy_malloc(3 << 20);   /* slow path: starts the thread */
  fancy_free(p);
  p = fancy_malloc(100);
  fancy_free(p);
  struct timespec settle = {0, 100 * 1000000L}, idle = {1, 0};
  nanosleep(&settle, NULL);
  int threads;
  long before = other_switches(&threads);
  if (threads != 1) {
    fprintf(stderr, "FAIL: %d other threads, expected the reclaim thread alone\n", threads);
    return 1;
  }
  nanosleep(&idle, NULL);
  long after = other_switches(&threads);
  long n = after - before;
  printf("idle_wakeups: the reclaim thread switched %ld times in 1 s idle "
         "(FANCY_PURGE_DELAY=0)\n", n);
  if (n > 300) {
    fprintf(stderr, "FAIL: %ld context switches in 1 s idle, more than 300\n", n);
    return 1;
  }
  return 0;
}
