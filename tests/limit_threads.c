/* SPDX-License-Identifier: MIT */
/*
 * limit_threads.c - FANCY_MEMORY_LIMIT across threads: memory one thread
 * freed serves another thread once the limit is reached, whether or not
 * the first thread ever calls the allocator again (fancyalloc(7), "the
 * program can free and continue"; memory pressure in one thread takes back
 * the free memory of every heap, not only its own).
 *
 * Run without arguments (as `make check` does), it re-executes itself with
 * FANCY_MEMORY_LIMIT=32m.  A worker thread allocates 200 KB blocks until
 * malloc fails, frees them all and waits (alive, idle); the main thread
 * must then get as many 200 KB blocks as the worker had, less 8 (the
 * worker keeps the span of its current page class), and at least one.
 *
 * Then instances, as fancy_allocator_create(3) says: "FANCY_MEMORY_LIMIT
 * is the process's limit, over every instance together", "Memory that
 * another instance, or another thread, freed counts as free for both
 * limits" (an unlimited instance allocates 24 MiB and frees it; an
 * instance limited to 64 MiB then gets as much as the process limit
 * allows, and no more), and an instance's own limit holds "whatever the
 * other instances and the default one use" (8 MiB: ENOMEM past it while
 * the process has room).
 * Exit status 0 pass, 1 fail.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fancyalloc.h"
#include "stage.h"

#define BLOCK (200 * 1000)
#define MAX_BLOCKS 1024

static void *blocks[MAX_BLOCKS];
static size_t worker_got;

/* 200 KB blocks from a until it fails (or max); their number. */
static size_t fill(fancy_allocator_t *a, size_t max) {
  size_t n = 0;
  while (n < max && (blocks[n] = fancy_allocator_malloc(a, BLOCK)) != NULL) n++;
  return n;
}

static void drain(fancy_allocator_t *a, size_t n) {
  for (size_t i = 0; i < n; i++) fancy_allocator_free(a, blocks[i]);
}

static int check_instances(size_t process_blocks) {
  int failures = 0;
  fancy_allocator_config_t cu = {0}, cl = {0}, c8 = {0};
  cl.memory_limit = (size_t)64 << 20;
  c8.memory_limit = (size_t)8 << 20;
  fancy_allocator_t *u = fancy_allocator_create(&cu);
  fancy_allocator_t *l = fancy_allocator_create(&cl);
  fancy_allocator_t *e = fancy_allocator_create(&c8);
  if (u == NULL || l == NULL || e == NULL) return 1;
  size_t nu = fill(u, 120);   /* 24 MiB */
  drain(u, nu);
  size_t nl = fill(l, MAX_BLOCKS);
  drain(l, nl);
  printf("instances: unlimited one %zu blocks, freed; 64 MiB one then %zu blocks (process limit 32 MiB)\n",
         nu, nl);
  if (nu != 120 || nl + 8 < process_blocks || nl > process_blocks + 8) {
    fprintf(stderr, "FAIL: an instance did not get the memory another one freed, or passed "
            "FANCY_MEMORY_LIMIT\n");
    failures++;
  }
  errno = 0;
  size_t n8 = fill(e, MAX_BLOCKS);
  int err = errno;
  drain(e, n8);
  printf("instance limited to 8 MiB: %zu blocks of 200 KB\n", n8);
  if (n8 * BLOCK > ((size_t)8 << 20) || n8 < 20 || err != ENOMEM) {
    fprintf(stderr, "FAIL: an instance's own 8 MiB limit did not hold\n");
    failures++;
  }
  fancy_allocator_destroy(u);
  fancy_allocator_destroy(l);
  fancy_allocator_destroy(e);
  return failures;
}

static void *worker(void *arg) {
  (void)arg;
  size_t n = 0;
  while (n < MAX_BLOCKS && (blocks[n] = fancy_malloc(BLOCK)) != NULL) n++;
  worker_got = n;
  for (size_t i = 0; i < n; i++) fancy_free(blocks[i]);
  set_stage(1);
  wait_stage(2);   /* idle, alive: its heap keeps whatever it keeps */
  return NULL;
}

int main(int argc, char **argv) {
  (void)argc;
  const char *v = getenv("FANCY_MEMORY_LIMIT");
  if (v == NULL || strcmp(v, "32m") != 0) {
    setenv("FANCY_MEMORY_LIMIT", "32m", 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    return 1;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  wait_stage(1);
  int failures = 0;
  if (worker_got < 100 || worker_got >= MAX_BLOCKS) {
    fprintf(stderr, "FAIL: the worker got %zu blocks of 200 KB under a 32 MiB limit\n", worker_got);
    failures++;
  }
  size_t n = 0;
  while (n < MAX_BLOCKS && (blocks[n] = fancy_malloc(BLOCK)) != NULL) n++;
  if (n == 0) {
    fprintf(stderr, "FAIL: the main thread's first 200 KB malloc failed (%s) after the worker "
            "freed everything\n", strerror(errno));
    failures++;
  } else if (n + 8 < worker_got) {
    fprintf(stderr, "FAIL: the main thread got %zu blocks, the worker %zu\n", n, worker_got);
    failures++;
  }
  printf("worker: %zu blocks of 200 KB; main thread after the worker freed them: %zu\n",
         worker_got, n);
  for (size_t i = 0; i < n; i++) fancy_free(blocks[i]);
  failures += check_instances(worker_got);
  set_stage(2);
  pthread_join(t, NULL);
  return failures ? 1 : 0;
}
