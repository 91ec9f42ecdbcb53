/* SPDX-License-Identifier: MIT */
/*
 * idle_memory.c - free memory goes back to the OS although the thread
 * that freed it never calls the allocator again (fancyalloc(7),
 * FANCY_PURGE_DELAY and FANCY_RECLAIM).
 *
 * Run without arguments (as `make check` does), it runs itself three
 * times with FANCY_PURGE_DELAY=300:
 *   reclaim  FANCY_RECLAIM=1: a thread frees 40 MiB and waits without
 *            calling the allocator; RSS must be back within 2 MiB of where
 *            it started within 3 x FANCY_PURGE_DELAY ("the background
 *            thread purges every heap's free memory").
 *   call     FANCY_RECLAIM=0: the same; after the delay RSS is still up
 *            (nobody called the allocator), and right after another
 *            thread's allocator call it must be back within 2 MiB ("any
 *            allocator call of any thread purges what is due").
 *   exit     FANCY_RECLAIM=0: a thread frees 7/8 of its 40 MiB and
 *            exits.  Right after it has exited its free pages are still
 *            committed (they are not purged at exit); after the delay,
 *            right after another thread's allocator call, RSS must be
 *            within 2 MiB of the start plus the pages of the blocks still
 *            live ("Thread exit": "... their free pages are purged after
 *            FANCY_PURGE_DELAY ... by any thread's slow path").
 * RSS is read from /proc/self/statm.  Exit status 0 pass, 1 fail, 77
 * skip: under a sanitizer, whose shadow memory of the 40 MiB stays
 * resident whatever the allocator gives back.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fancyalloc.h"
#include "stage.h"

#define MIB ((size_t)1 << 20)
#define BLOCK ((size_t)100 << 10)
#define NBLOCKS 400                 /* 40 MiB */
#define DELAY_MS 300
#define SLACK (2 * MIB)

static void *blocks[NBLOCKS];
static int keep_every;               /* exit mode: every so many blocks stay live */

static size_t rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f == NULL || fscanf(f, "%lu %lu", &size, &res) != 2) {
    perror("/proc/self/statm");
    exit(1);
  }
  fclose(f);
  return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t freed_at;

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < NBLOCKS; i++) {
    blocks[i] = fancy_malloc(BLOCK);
    if (blocks[i] == NULL) exit(1);
    memset(blocks[i], 1, BLOCK);
  }
  for (int i = 0; i < NBLOCKS; i++)
    if (keep_every == 0 || i % keep_every != 0) fancy_free(blocks[i]);
  freed_at = now_ms();
  if (keep_every != 0) return NULL;   /* exit mode: the thread exits */
  set_stage(1);
  wait_stage(2);                      /* idle: no allocator call any more */
  return NULL;
}

static int run(const char *mode) {
  size_t base = rss();
  pthread_t t;
  keep_every = strcmp(mode, "exit") == 0 ? 8 : 0;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  if (keep_every != 0) {
    pthread_join(t, NULL);
    size_t after = rss();
    size_t live = (size_t)((NBLOCKS + keep_every - 1) / keep_every) * 2 * 65536;
    uint64_t since = now_ms() - freed_at;
    while (now_ms() - freed_at <= DELAY_MS + 50) sleep_ms(10);
    size_t before_call = rss();
    void *p = fancy_malloc(16);       /* another thread's allocator call */
    fancy_free(p);
    size_t after_call = rss();
    printf("exit: RSS at start %zu KiB, %zu KiB %llu ms after the thread's frees (it has exited), "
           "%zu KiB after the delay, %zu KiB right after another thread's malloc; "
           "live blocks' pages %zu KiB\n",
           base >> 10, after >> 10, (unsigned long long)since, before_call >> 10,
           after_call >> 10, live >> 10);
    int failed = 0;
    if (since < DELAY_MS && after < base + live + 20 * MIB) {
      fprintf(stderr, "FAIL: the exited thread's free pages were purged before the delay\n");
      failed = 1;
    }
    if (after_call > base + live + SLACK) {
      fprintf(stderr, "FAIL: an exited thread's free pages stay committed after the delay\n");
      failed = 1;
    }
    return failed;
  }
  wait_stage(1);
  size_t high = rss();
  int failed = 0;
  if (high < base + 30 * MIB) {
    fprintf(stderr, "FAIL: RSS rose only from %zu to %zu KiB: the test measures nothing\n",
            base >> 10, high >> 10);
    failed = 1;
  } else if (strcmp(mode, "reclaim") == 0) {
    size_t cur = high;
    uint64_t elapsed = 0;
    while ((cur = rss()) > base + SLACK && (elapsed = now_ms() - freed_at) <= 3 * DELAY_MS)
      sleep_ms(10);
    elapsed = now_ms() - freed_at;
    printf("reclaim: RSS %zu KiB at start, %zu KiB after the frees, %zu KiB %llu ms after them\n",
           base >> 10, high >> 10, cur >> 10, (unsigned long long)elapsed);
    if (cur > base + SLACK) {
      fprintf(stderr, "FAIL: not back within 2 MiB in 3 x FANCY_PURGE_DELAY\n");
      failed = 1;
    }
  } else {
    sleep_ms(DELAY_MS + 50);
    size_t before_call = rss();
    void *p = fancy_malloc(BLOCK);    /* another thread's allocator call */
    fancy_free(p);
    size_t after_call = rss();
    printf("call: RSS %zu KiB at start, %zu KiB after the frees, %zu KiB after the delay, "
           "%zu KiB right after another thread's malloc\n",
           base >> 10, high >> 10, before_call >> 10, after_call >> 10);
    if (after_call > base + SLACK) {
      fprintf(stderr, "FAIL: not back within 2 MiB right after another thread's call\n");
      failed = 1;
    }
  }
  set_stage(2);
  pthread_join(t, NULL);
  return failed;
}

int main(int argc, char **argv) {
#ifdef FA_SANITIZE
  (void)argc;
  (void)argv;
  return 77;
#endif
  if (argc == 2) return run(argv[1]);
  static const char *modes[] = {"reclaim", "call", "exit"};
  int failed = 0;
  for (int i = 0; i < 3; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      setenv("FANCY_PURGE_DELAY", "300", 1);
      setenv("FANCY_RECLAIM", i == 0 ? "1" : "0", 1);
      /* The bound is on the freed memory: with transparent huge pages or
       * MAP_POPULATE (configure's --enable-huge-pages, --enable-populate)
       * the other thread's own first malloc commits 2 MiB or a whole
       * segment of its own, which the 2 MiB bound would count too. */
      setenv("FANCY_HUGE_PAGES", "0", 1);
      setenv("FANCY_POPULATE", "0", 1);
      execl("/proc/self/exe", argv[0], modes[i], (char *)NULL);
      _exit(1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      failed = 1;
  }
  return failed;
}
