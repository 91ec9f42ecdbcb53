/* SPDX-License-Identifier: MIT */
/*
 * workload - a deterministic malloc workload for the preload tests: two
 * threads allocate blocks of every kind (small, medium, large, huge), fill
 * and check them, grow and shrink them with realloc, and free half of
 * each other's blocks.  Prints one checksum line on stdout, nothing on
 * stderr, so that the tests can compare both streams with glibc's.
 * "workload --which" prints which library serves malloc instead.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "which.h"

#define NBLOCKS 4000

typedef struct {
  unsigned id;
  unsigned char *blocks[NBLOCKS];
  size_t sizes[NBLOCKS];
  uint64_t sum;
  int bad;
} worker_t;

static worker_t workers[2];
static pthread_barrier_t barrier;

static uint32_t next_rand(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

static size_t pick_size(uint32_t *s) {
  uint32_t r = next_rand(s) % 1000;
  if (r < 700) return 1 + next_rand(s) % 512;           /* small */
  if (r < 950) return 513 + next_rand(s) % 32256;       /* medium */
  if (r < 998) return 32769 + next_rand(s) % 200000;    /* large */
  return (3u << 20) + next_rand(s) % 100000;            /* huge */
}

static void fill(unsigned char *p, size_t n, unsigned tag) {
  for (size_t i = 0; i < n; i += 61) p[i] = (unsigned char)(tag + i);
  p[n - 1] = (unsigned char)tag;
}

static int check(const unsigned char *p, size_t n, unsigned tag) {
  for (size_t i = 0; i < n; i += 61)
    if (p[i] != (unsigned char)(tag + i) && !(i == n - 1)) return 0;
  return p[n - 1] == (unsigned char)tag;
}

static void *run(void *arg) {
  worker_t *w = arg;
  uint32_t seed = 12345u + w->id;
  for (unsigned i = 0; i < NBLOCKS; i++) {
    size_t n = pick_size(&seed);
    w->blocks[i] = malloc(n);
    /* On failure (FANCY_MEMORY_LIMIT) go on to the barriers all the same,
     * so that the other thread is not left waiting. */
    if (w->blocks[i] == NULL) { w->bad = 1; w->sizes[i] = 0; continue; }
    w->sizes[i] = n;
    fill(w->blocks[i], n, i);
  }
  /* Grow and shrink a third of them. */
  for (unsigned i = 0; i < NBLOCKS && !w->bad; i += 3) {
    size_t n = (i % 2) ? w->sizes[i] * 3 + 7 : w->sizes[i] / 2 + 1;
    size_t keep = n < w->sizes[i] ? n : w->sizes[i];
    unsigned char *q = realloc(w->blocks[i], n);
    if (q == NULL) { w->bad = 1; break; }
    for (size_t j = 0; j < keep; j += 61)
      if (q[j] != (unsigned char)(i + j) && j != w->sizes[i] - 1) w->bad = 2;
    w->blocks[i] = q;
    w->sizes[i] = n;
    fill(q, n, i);
  }
  pthread_barrier_wait(&barrier);
  /* Free the odd blocks of the other thread. */
  worker_t *other = &workers[1 - w->id];
  for (unsigned i = 1; i < NBLOCKS; i += 2) {
    if (other->blocks[i] != NULL && !check(other->blocks[i], other->sizes[i], i)) w->bad = 3;
    free(other->blocks[i]);
    other->blocks[i] = NULL;
  }
  pthread_barrier_wait(&barrier);
  for (unsigned i = 0; i < NBLOCKS; i += 2) {
    if (w->blocks[i] == NULL) continue;
    if (!check(w->blocks[i], w->sizes[i], i)) w->bad = 4;
    w->sum += w->sizes[i] * (i + 1);
    free(w->blocks[i]);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--which") == 0) {
    printf("%s\n", which_malloc());
    return 0;
  }
  pthread_t t[2];
  pthread_barrier_init(&barrier, NULL, 2);
  for (unsigned i = 0; i < 2; i++) {
    workers[i].id = i;
    if (pthread_create(&t[i], NULL, run, &workers[i]) != 0) return 2;
  }
  for (unsigned i = 0; i < 2; i++) pthread_join(t[i], NULL);
  int bad = workers[0].bad | workers[1].bad;
  printf("workload: %s %llu %llu\n", bad ? "BAD" : "ok",
         (unsigned long long)workers[0].sum, (unsigned long long)workers[1].sum);
  return bad ? 1 : 0;
}
