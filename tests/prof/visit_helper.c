/* SPDX-License-Identifier: MIT */
/*
 * visit_helper.c - fancy_heap_visit and fancy_heap_visit_all count
 * exactly the live blocks, in one thread and across threads.
 *
 * fancy_heap_visit(3): "fn is called exactly once for each live block of
 * the calling thread's heap", "fancy_heap_visit_all ... every live block of
 * the process", "a block freed by another thread is not reported".
 * Blocks come in every tier (small, medium, large; huge for the
 * process-wide walk), half of them are freed again, some by other
 * threads, so free, local, remote and kept-for-reuse blocks must all be
 * told from live ones.  The other threads wait on a barrier while the
 * main thread walks, so the walk's result is deterministic.
 */
#include <fancyalloc.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define PER 3000

static void fail(const char *what) {
  fprintf(stderr, "visit_helper: FAIL: %s\n", what);
  exit(1);
}

typedef struct set_s {
  uintptr_t *v;
  size_t n, cap;
} set_t;

static void add(set_t *s, void *p) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 1024;
    s->v = realloc(s->v, s->cap * sizeof *s->v);   /* glibc's malloc: not the visited heap */
    if (s->v == NULL) fail("realloc");
  }
  s->v[s->n++] = (uintptr_t)p;
}

static int cmp(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

static int collect(void *block, size_t size, void *arg) {
  if (size == 0) fail("visited a block of size 0");
  add(arg, block);
  return 0;
}

/* The visited set must be exactly the live set. */
static void same(set_t *live, set_t *seen, const char *what) {
  qsort(live->v, live->n, sizeof *live->v, cmp);
  qsort(seen->v, seen->n, sizeof *seen->v, cmp);
  if (live->n != seen->n) {
    fprintf(stderr, "visit_helper: %s: %zu live blocks, %zu visited\n", what, live->n, seen->n);
    fail(what);
  }
  for (size_t i = 0; i < live->n; i++)
    if (live->v[i] != seen->v[i]) fail(what);
  printf("visit_helper: ok: %s: %zu blocks\n", what, live->n);
}

static size_t size_of(unsigned i) {
  static const size_t sizes[] = {16, 24, 100, 512, 700, 2048, 5000, 32768, 40000, 300000};
  return sizes[i % 10];
}

static pthread_barrier_t made, walked, swapped, done;
static void *blocks[THREADS][PER];
static set_t own_live[THREADS];

static void *worker(void *arg) {
  unsigned t = (unsigned)(uintptr_t)arg;
  for (unsigned i = 0; i < PER; i++) {
    blocks[t][i] = fancy_malloc(size_of(i + t));
    if (blocks[t][i] == NULL) fail("malloc");
    memset(blocks[t][i], 0, size_of(i + t) < 64 ? size_of(i + t) : 64);
  }
  for (unsigned i = 0; i < PER; i += 4) {   /* a quarter freed by their owner */
    fancy_free(blocks[t][i]);
    blocks[t][i] = NULL;
  }
  pthread_barrier_wait(&made);
  /* a quarter of the next thread's blocks freed here: remote frees, and
   * blocks this thread keeps to reuse */
  unsigned u = (t + 1) % THREADS;
  for (unsigned i = 1; i < PER; i += 4) {
    fancy_free(blocks[u][i]);
    blocks[u][i] = NULL;
  }
  pthread_barrier_wait(&swapped);
  pthread_barrier_wait(&walked);   /* main walks every heap */
  /* each thread walks its own heap: exactly its blocks still live */
  set_t seen = {0};
  if (fancy_heap_visit(collect, &seen) != 0) fail("fancy_heap_visit");
  char what[64];
  snprintf(what, sizeof what, "thread %u, its own heap", t);
  same(&own_live[t], &seen, what);
  pthread_barrier_wait(&done);
  return NULL;
}

static int stop_at_3(void *block, size_t size, void *arg) {
  (void)block;
  (void)size;
  return ++*(int *)arg == 3 ? 42 : 0;
}

int main(void) {
  /* One thread. */
  set_t live = {0}, seen = {0};
  void *mine[2000];
  for (unsigned i = 0; i < 2000; i++) mine[i] = fancy_malloc(size_of(i * 7));
  for (unsigned i = 0; i < 2000; i += 3) {
    fancy_free(mine[i]);
    mine[i] = NULL;
  }
  for (unsigned i = 0; i < 2000; i++)
    if (mine[i] != NULL) add(&live, mine[i]);
  if (fancy_heap_visit(collect, &seen) != 0) fail("fancy_heap_visit");
  same(&live, &seen, "one thread, fancy_heap_visit");
  void *huge = fancy_malloc((size_t)5 << 20);
  add(&live, huge);
  seen.n = 0;
  if (fancy_heap_visit_all(collect, &seen) != 0) fail("fancy_heap_visit_all");
  same(&live, &seen, "one thread, fancy_heap_visit_all (with a huge block)");
  int calls = 0;
  if (fancy_heap_visit(stop_at_3, &calls) != 42 || calls != 3) fail("stopping the walk");
  errno = 0;
  if (fancy_heap_visit(NULL, NULL) != -1 || errno != EINVAL) fail("NULL fn: EINVAL");
  if (fancy_heap_visit_all(NULL, NULL) != -1 || errno != EINVAL) fail("NULL fn: EINVAL (all)");

  /* Across threads. */
  pthread_barrier_init(&made, NULL, THREADS);
  pthread_barrier_init(&swapped, NULL, THREADS + 1);
  pthread_barrier_init(&walked, NULL, THREADS + 1);
  pthread_barrier_init(&done, NULL, THREADS);
  pthread_t th[THREADS];
  for (unsigned t = 0; t < THREADS; t++)
    pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
  pthread_barrier_wait(&swapped);
  for (unsigned t = 0; t < THREADS; t++)
    for (unsigned i = 0; i < PER; i++)
      if (blocks[t][i] != NULL) {
        add(&live, blocks[t][i]);
        add(&own_live[t], blocks[t][i]);
      }
  seen.n = 0;
  if (fancy_heap_visit_all(collect, &seen) != 0) fail("fancy_heap_visit_all");
  same(&live, &seen, "threads, fancy_heap_visit_all");
  pthread_barrier_wait(&walked);
  for (unsigned t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  /* after the threads exited their segments are abandoned, not lost */
  seen.n = 0;
  if (fancy_heap_visit_all(collect, &seen) != 0) fail("fancy_heap_visit_all");
  same(&live, &seen, "exited threads, fancy_heap_visit_all");
  return 0;
}
