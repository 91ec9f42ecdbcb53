/* SPDX-License-Identifier: MIT */
/*
 * thread_exit - threads that exit while they still own blocks.  Each round
 * starts 6 threads; each allocates blocks of every kind, frees a share of
 * the blocks the previous round's (exited) threads left behind, and exits
 * holding the rest of its own.  Main checks the contents of every block
 * after the threads are gone and frees what is left at the end.  With
 * libfancymalloc, it also asks fancy_validate_heap (found with dlsym).
 * Prints a checksum, the same under any allocator.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 6
#define THREADS 6
#define PER_THREAD 3000

typedef struct {
  unsigned char *p;
  size_t n;
  unsigned tag;
} block_t;

static block_t blocks[ROUNDS][THREADS][PER_THREAD];

typedef struct {
  int round, id;
  uint64_t sum;
  int bad;
} arg_t;

static size_t size_of(unsigned tag) {
  unsigned r = (tag * 2654435761u) >> 7;
  switch (r % 50) {
  case 0: return 40000 + r % 900000;              /* large */
  case 1: return r % 40 == 0 ? (3u << 20) + r % 5000 : 700 + r % 30000;
  default: return 1 + r % 600;                     /* small */
  }
}

static void fill(block_t *b) {
  for (size_t i = 0; i < b->n; i += 97) b->p[i] = (unsigned char)(b->tag ^ i);
}

static bool check(const block_t *b) {
  for (size_t i = 0; i < b->n; i += 97)
    if (b->p[i] != (unsigned char)(b->tag ^ i)) return false;
  return true;
}

static void *work(void *v) {
  arg_t *a = v;
  for (unsigned i = 0; i < PER_THREAD; i++) {
    block_t *b = &blocks[a->round][a->id][i];
    b->tag = ((unsigned)a->round * THREADS + (unsigned)a->id) * PER_THREAD + i;
    b->n = size_of(b->tag);
    b->p = malloc(b->n);
    if (b->p == NULL) { a->bad = 1; return NULL; }
    fill(b);
  }
  /* Free every third block of one thread of the previous round. */
  if (a->round > 0) {
    block_t *old = blocks[a->round - 1][(a->id + 1) % THREADS];
    for (unsigned i = 0; i < PER_THREAD; i += 3) {
      if (old[i].p == NULL) continue;
      if (!check(&old[i])) a->bad = 2;
      a->sum += old[i].n;
      free(old[i].p);
      old[i].p = NULL;
    }
  }
  /* And some of its own, then exit holding the rest. */
  for (unsigned i = 1; i < PER_THREAD; i += 5) {
    block_t *b = &blocks[a->round][a->id][i];
    a->sum += b->n;
    free(b->p);
    b->p = NULL;
  }
  return NULL;
}

int main(void) {
  bool (*validate)(void) = (bool (*)(void))dlsym(RTLD_DEFAULT, "fancy_validate_heap");
  uint64_t total = 0;
  int bad = 0;
  for (int r = 0; r < ROUNDS; r++) {
    pthread_t t[THREADS];
    arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
      args[i] = (arg_t){.round = r, .id = i};
      if (pthread_create(&t[i], NULL, work, &args[i]) != 0) return 2;
    }
    for (int i = 0; i < THREADS; i++) {
      pthread_join(t[i], NULL);
      total += args[i].sum;
      if (args[i].bad) { printf("round %d thread %d: bad %d\n", r, i, args[i].bad); bad = 1; }
    }
    /* The owners are gone: check what they left, free a little of it. */
    for (int i = 0; i < THREADS; i++)
      for (unsigned j = 0; j < PER_THREAD; j++) {
        block_t *b = &blocks[r][i][j];
        if (b->p == NULL) continue;
        if (!check(b)) { printf("round %d thread %d block %u corrupted\n", r, i, j); bad = 1; }
        if (j % 7 == 0) { total += b->n; free(b->p); b->p = NULL; }
      }
    if (validate != NULL && !validate()) { printf("fancy_validate_heap failed after round %d\n", r); bad = 1; }
  }
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < THREADS; i++)
      for (unsigned j = 0; j < PER_THREAD; j++) {
        block_t *b = &blocks[r][i][j];
        if (b->p == NULL) continue;
        if (!check(b)) { printf("final: round %d thread %d block %u corrupted\n", r, i, j); bad = 1; }
        total += b->n;
        free(b->p);
      }
  if (validate != NULL && !validate()) { printf("fancy_validate_heap failed at the end\n"); bad = 1; }
  printf("thread_exit: %s, %llu bytes freed\n", bad ? "FAILED" : "ok", (unsigned long long)total);
  return bad;
}
