/* SPDX-License-Identifier: MIT */
/*
 * stats_json_helper.c - prints fancy_stats_json's document (line 1) and
 * fancy_stats_get's figures as JSON (line 2), taken while no other thread
 * runs, for tests/prof/test_stats_json.sh to compare; checks the buffer
 * semantics ("returns the length of the whole document, as snprintf
 * does") and fancy_stats_json_print itself.
 */
#include <fancyalloc.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what) {
  fprintf(stderr, "stats_json_helper: FAIL: %s\n", what);
  exit(1);
}

static void *leave_some(void *arg) {
  (void)arg;
  for (int i = 0; i < 100; i++) (void)!fancy_malloc(48);   /* abandoned at exit */
  return NULL;
}

/* A worker keeps 200 blocks while the figures are taken, and sits idle; a
 * keeper thread frees 36 of them (the first 16 wait on their page for the
 * owner, FA_XFREE_BACKLOG_MAX; it keeps the next 20 to reuse:
 * fa_rcache_put) and main frees 100 more (remote frees its owner has not
 * collected): none of the 136 is live any more. */
enum { BACKLOG = 16, KEPT = 20, MAIN_FREES = 100, FREED = BACKLOG + KEPT + MAIN_FREES };
static void *worker_blocks[200];
static pthread_barrier_t step;

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) worker_blocks[i] = fancy_malloc(48);
  pthread_barrier_wait(&step);   /* 1: allocated */
  pthread_barrier_wait(&step);   /* 2: the keeper frees */
  pthread_barrier_wait(&step);   /* 3: it has; main frees, takes the figures */
  pthread_barrier_wait(&step);   /* 4: done */
  return NULL;
}

static void *keeper(void *arg) {
  (void)arg;
  fancy_free(fancy_malloc(16));   /* a heap of its own */
  pthread_barrier_wait(&step);
  pthread_barrier_wait(&step);
  for (int i = 0; i < BACKLOG + KEPT; i++) fancy_free(worker_blocks[i]);
  pthread_barrier_wait(&step);
  pthread_barrier_wait(&step);
  return NULL;
}

static char doc[1 << 20], again[1 << 20];

int main(void) {
  /* first, so that they do not adopt leave_some's segment */
  pthread_t w, k;
  pthread_barrier_init(&step, NULL, 3);
  pthread_create(&w, NULL, worker, NULL);
  pthread_create(&k, NULL, keeper, NULL);
  pthread_barrier_wait(&step);
  void *keep[3000];
  for (int i = 0; i < 3000; i++) keep[i] = fancy_malloc((size_t)(i % 40) * 100 + 1);
  void *large = fancy_malloc(100000), *huge = fancy_malloc((size_t)3 << 20);
  pthread_t t;
  pthread_create(&t, NULL, leave_some, NULL);
  pthread_join(t, NULL);
  for (int i = 0; i < 3000; i += 2) fancy_free(keep[i]);

  size_t bsize = fancy_malloc_usable_size(worker_blocks[0]);
  fancy_stats_t before;
  if (fancy_stats_get(&before, sizeof before) != 0) fail("fancy_stats_get");
  pthread_barrier_wait(&step);
  pthread_barrier_wait(&step);
  for (int i = BACKLOG + KEPT; i < FREED; i++) fancy_free(worker_blocks[i]);

  fancy_stats_t st;
  if (fancy_stats_get(&st, sizeof st) != 0) fail("fancy_stats_get");
  /* fancy_stats_get(3): blocks freed are not live, whoever keeps them.
   * (Not under FANCY_PROF, where a sampled block lives in a span of its
   * own and counts at that span's size: the run for the prof section.) */
  const char *prof = getenv("FANCY_PROF");
  if ((prof == NULL || strcmp(prof, "1") != 0) && before.bytes_live - st.bytes_live != FREED * bsize) {
    fprintf(stderr, "bytes_live fell by %zu, not %zu\n", before.bytes_live - st.bytes_live,
            FREED * bsize);
    fail("blocks freed by other threads still counted live");
  }
  size_t n = fancy_stats_json(doc, sizeof doc);
  if (n == 0 || n >= sizeof doc || strlen(doc) != n) fail("length");
  /* cut short: the same length returned, a NUL-terminated prefix written */
  char small[40];
  if (fancy_stats_json(small, sizeof small) != n) fail("length when cut short");
  if (strlen(small) != sizeof small - 1 || memcmp(small, doc, sizeof small - 1) != 0)
    fail("the prefix written when cut short");
  if (fancy_stats_json(NULL, 0) != n) fail("length with no buffer");
  /* the stream version writes the same document */
  FILE *f = fmemopen(again, sizeof again, "w");
  if (f == NULL || fancy_stats_json_print(f) != 0) fail("fancy_stats_json_print");
  fclose(f);
  if (strncmp(again, doc, n) != 0 || again[n] != '\n') fail("print differs from the buffer");

  printf("%s\n", doc);
  printf("{\"bytes_live\":%zu,\"bytes_huge\":%zu,\"bytes_mapped\":%zu,\"bytes_committed\":%zu,"
         "\"bytes_purged\":%zu,\"segments\":%zu,\"segments_abandoned\":%zu,"
         "\"segments_cached\":%zu,\"huge_blocks\":%zu,\"threads\":%zu,\"threads_created\":%zu,"
         "\"remote_frees\":%zu,\"mmap_calls\":%zu,\"purge_calls\":%zu,\"memory_limit\":%zu,"
         "\"memory_limit_hits\":%zu,\"soft_limit\":%zu,\"soft_limit_hits\":%zu,"
         "\"bytes_resident\":%zu,\"classes\":[",
         st.bytes_live, st.bytes_huge, st.bytes_mapped, st.bytes_committed, st.bytes_purged,
         st.segments, st.segments_abandoned, st.segments_cached, st.huge_blocks, st.threads,
         st.threads_created, st.remote_frees, st.mmap_calls, st.purge_calls, st.memory_limit,
         st.memory_limit_hits, st.soft_limit, st.soft_limit_hits, st.bytes_resident);
  for (size_t c = 0; c < st.num_classes; c++)
    printf("%s[%zu,%zu,%zu]", c ? "," : "", st.classes[c].block_size, st.classes[c].blocks_live,
           st.classes[c].pages);
  printf("]}\n");
  fflush(stdout);
  pthread_barrier_wait(&step);
  pthread_join(w, NULL);
  pthread_join(k, NULL);
  for (int i = FREED; i < 200; i++) fancy_free(worker_blocks[i]);
  fancy_free(large);
  fancy_free(huge);
  return 0;
}
