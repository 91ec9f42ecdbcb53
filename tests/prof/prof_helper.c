/* SPDX-License-Identifier: MIT */
/*
 * prof_helper.c - the programs behind tests/prof/test_prof*.sh: heap
 * profiling (FANCY_PROF) driven through the public API.
 *
 *   prof_helper sites PATH   three call sites with 10%, 30% and 60% of the
 *                            live bytes (64 B, 16 KiB and 200 KiB blocks),
 *                            then fancy_prof_dump(PATH)
 *   prof_helper leak         three sites; all blocks but leak_site's freed
 *   prof_helper exact DIR    FANCY_PROF_SAMPLE=1: every block is sampled;
 *                            checks the counts in dumps as blocks are
 *                            freed, by this thread and by another one
 *   prof_helper signal N     raise(N), then allocate: the dump appears
 *   prof_helper off          fancy_prof_dump fails with ENOTSUP
 *   prof_helper small        FANCY_PROF_SAMPLE=1: sampled blocks under
 *                            2 KiB are blocks of the 2 KiB class,
 *                            neighbours, and serve calloc with zeros
 *   prof_helper inplace      FANCY_PROF_SAMPLE=1: sampled blocks of 2 KiB
 *                            and more are blocks of their class, neighbours
 *   prof_helper double       FANCY_PROF_SAMPLE=1: a sampled block freed
 *                            twice (the second free must abort)
 *   prof_helper reuse        this thread frees a block of a live other
 *                            thread; its next malloc of the class gets it
 * Exit 0 when every check holds, 1 (with a message) otherwise.
 */
#include <fancyalloc.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_KEEP 400000
static void *keep[MAX_KEEP];
static size_t nkeep;

static void fail(const char *what) {
  fprintf(stderr, "prof_helper: FAIL: %s\n", what);
  exit(1);
}

__attribute__((noinline)) static void keep_block(void *p, size_t n) {
  if (p == NULL || nkeep == MAX_KEEP) fail("malloc");
  memset(p, 0x5a, n);
  keep[nkeep++] = p;
}

/* Global and never inlined: google-pprof names them from the symbol
 * table.  Each calls fancy_malloc itself, and none ends in a tail call, so
 * each is the first frame of its samples. */
void site_small(size_t bytes);
void site_medium(size_t bytes);
void site_large(size_t bytes);
void *leak_site(size_t n);

__attribute__((noinline)) void site_small(size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) keep_block(fancy_malloc(64), 64);
}
__attribute__((noinline)) void site_medium(size_t bytes) {
  for (size_t b = 0; b < bytes; b += 16384) keep_block(fancy_malloc(16384), 16384);
}
__attribute__((noinline)) void site_large(size_t bytes) {
  for (size_t b = 0; b < bytes; b += 204800) keep_block(fancy_malloc(204800), 204800);
}
__attribute__((noinline)) void *leak_site(size_t n) {
  char *p = fancy_malloc(n);
  if (p != NULL) memset(p, 1, n);
  return p;
}

/* The in-use sample count of a dump: "heap profile: <objs>: <bytes> ...". */
static long dump_count(const char *path) {
  if (fancy_prof_dump(path) != 0) fail("fancy_prof_dump");
  FILE *f = fopen(path, "r");
  if (f == NULL) fail("no dump written");
  long objs = -1, bytes = -1, rate = -1;
  if (fscanf(f, "heap profile: %ld: %ld [%*d: %*d] @ heap_v2/%ld", &objs, &bytes, &rate) != 3)
    fail("bad header");
  fclose(f);
  if (rate != 1) fail("header does not carry FANCY_PROF_SAMPLE=1");
  return objs;
}

static void *free_them(void *arg) {
  void **v = arg;
  for (size_t i = 0; i < 10; i++) fancy_free(v[i]);
  return NULL;
}

/* reuse: a thread that allocates one block, hands it over and stays
 * alive until told. */
static int reuse_go[2], reuse_done[2];
/* Its blocks of class 112: a backlog of 16 (FA_XFREE_BACKLOG_MAX), then
 * the one the other thread's next malloc should get back. */
#define REUSE_BACKLOG 16
static void *reuse_blocks[REUSE_BACKLOG + 1];

static void *reuse_owner(void *arg) {
  (void)arg;
  for (int i = 0; i <= REUSE_BACKLOG; i++)
    if ((reuse_blocks[i] = fancy_malloc(100)) == NULL) fail("malloc");
  void *p = reuse_blocks[REUSE_BACKLOG];
  if (write(reuse_go[1], &p, sizeof p) != sizeof p) fail("write");
  char c;
  if (read(reuse_done[0], &c, 1) != 1) fail("read");
  return NULL;
}

static int exact(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/exact.heap", dir);
  /* "sampled blocks are remembered until they are freed" */
  void *b[50];
  for (size_t i = 0; i < 50; i++) {
    b[i] = fancy_malloc(1 + i * 997);
    if (b[i] == NULL || fancy_malloc_usable_size(b[i]) < 1 + i * 997) fail("sampled block size");
    memset(b[i], 1, 1 + i * 997);
  }
  if (dump_count(path) != 50) fail("50 live samples expected");
  for (size_t i = 0; i < 20; i++) fancy_free(b[i]);
  if (dump_count(path) != 30) fail("30 live samples expected after 20 frees");
  /* freed by another thread than the one that sampled them */
  pthread_t t;
  pthread_create(&t, NULL, free_them, &b[20]);
  pthread_join(t, NULL);
  if (dump_count(path) != 20) fail("20 live samples expected after a thread freed 10");
  /* realloc moves a sampled block: the old sample goes, the new block is sampled */
  void *r = fancy_realloc(b[30], 200000);
  if (r == NULL) fail("realloc");
  b[30] = r;
  if (dump_count(path) != 20) fail("20 live samples expected after realloc");
  for (size_t i = 30; i < 50; i++) fancy_free(b[i]);
  if (dump_count(path) != 0) fail("no live sample expected");
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  size_t total = (size_t)32 << 20;
  if (strcmp(mode, "sites") == 0 && argc > 2) {
    site_small(total / 10);
    site_medium(total * 3 / 10);
    site_large(total * 6 / 10);
    if (fancy_prof_dump(argv[2]) != 0) fail("fancy_prof_dump");
    for (size_t i = 0; i < nkeep; i++) fancy_free(keep[i]);
    return 0;
  }
  if (strcmp(mode, "leak") == 0) {
    site_small(total / 10);
    site_medium(total * 3 / 10);
    site_large(total * 6 / 10);
    for (size_t i = 0; i < nkeep; i++) fancy_free(keep[i]);
    for (size_t i = 0; i < 2000; i++)
      if (leak_site(1000) == NULL) fail("malloc");   /* never freed */
    return 0;
  }
  if (strcmp(mode, "exact") == 0 && argc > 2) return exact(argv[2]);
  if (strcmp(mode, "signal") == 0 && argc > 2) {
    /* "the handler only sets a flag; the dump is written by the next
     * allocation" */
    fancy_free(fancy_malloc(100));
    raise(atoi(argv[2]));
    void *p = fancy_malloc(16);
    fancy_free(p);
    char path[4096];
    const char *prefix = getenv("FANCY_PROF_PREFIX");
    snprintf(path, sizeof path, "%s.%ld.0.heap", prefix ? prefix : "fancyalloc", (long)getpid());
    if (access(path, R_OK) != 0) fail("no dump after the signal");
    return 0;
  }
  if (strcmp(mode, "off") == 0) {
    errno = 0;
    if (fancy_prof_dump("/dev/null") != -1 || errno != ENOTSUP) fail("dump without FANCY_PROF");
    return 0;
  }
  if (strcmp(mode, "small") == 0) {
    /* fancy_prof_dump(3): "A sampled block of less than 2 KiB is a block
     * of the 2 KiB size class" (every block is sampled here) */
    char *p = fancy_malloc(100), *q = fancy_malloc(16);
    if (p == NULL || q == NULL) fail("malloc");
    if (fancy_malloc_usable_size(p) != 2048 || fancy_malloc_usable_size(q) != 2048)
      fail("a sampled small block is not a block of the 2 KiB class");
    if (q != p + 2048) fail("two sampled small blocks are not neighbours in their span");
    char *z = fancy_calloc(1, 2000);
    if (z == NULL) fail("calloc");
    for (size_t i = 0; i < 2000; i++)
      if (z[i] != 0) fail("calloc of a sampled small block is not zero");
    memset(p, 0xa5, 100);
    fancy_free(p);
    fancy_free(z);
    fancy_free(q);
    if (!fancy_validate_heap()) fail("heap invalid after freeing sampled small blocks");
    return 0;
  }
  if (strcmp(mode, "inplace") == 0) {
    /* fancy_prof_dump(3): "from 2 KiB to 32 KiB, a sampled block is a
     * block of its size class, where malloc would have put it" (every
     * block is sampled here) */
    char *p = fancy_malloc(5000), *q = fancy_malloc(5000);
    if (p == NULL || q == NULL) fail("malloc");
    size_t u = fancy_malloc_usable_size(p);
    if (u < 5000 || u >= (16 << 10)) fail("a sampled 5000-byte block is not a block of its class");
    if (q != p + u) fail("two sampled blocks of a class are not neighbours in its span");
    char *z = fancy_calloc(1, 9000);
    if (z == NULL) fail("calloc");
    for (size_t i = 0; i < 9000; i++)
      if (z[i] != 0) fail("calloc of a sampled block is not zero");
    if (fancy_malloc_usable_size(z) >= (64 << 10)) fail("a sampled 9000-byte block has a span");
    fancy_free(p);
    fancy_free(z);
    fancy_free(q);
    if (!fancy_validate_heap()) fail("heap invalid after freeing sampled blocks");
    return 0;
  }
  if (strcmp(mode, "reuse") == 0) {
    /* fancy_prof_dump(3): "A thread's frees of other threads' blocks go
     * to its lent blocks of the class, as they would go to the blocks it
     * keeps for reuse without profiling." */
    pthread_t t;
    if (pipe(reuse_go) != 0 || pipe(reuse_done) != 0) fail("pipe");
    if (pthread_create(&t, NULL, reuse_owner, NULL) != 0) fail("pthread_create");
    void *theirs;
    if (read(reuse_go[0], &theirs, sizeof theirs) != sizeof theirs) fail("read");
    void *mine = fancy_malloc(100);   /* this thread's blocks of the class */
    if (mine == NULL) fail("malloc");
    /* the owner sits idle: these wait on its page for it to collect, and
     * past them (README, "Cross-thread free") this thread keeps the next */
    for (int i = 0; i < REUSE_BACKLOG; i++) fancy_free(reuse_blocks[i]);
    fancy_free(theirs);               /* the owner is alive: not this heap's */
    void *again = fancy_malloc(100);
    if (again != theirs) fail("the other thread's freed block did not serve the next malloc");
    fancy_free(again);
    fancy_free(mine);
    char c = 0;
    if (write(reuse_done[1], &c, 1) != 1) fail("write");
    pthread_join(t, NULL);
    return 0;
  }
  if (strcmp(mode, "double") == 0) {
    void *p = fancy_malloc(100);
    fancy_free(p);
    fancy_free(p);   /* aborts */
    return 0;
  }
  fprintf(stderr, "usage: prof_helper sites PATH | leak | exact DIR | signal N | off | small | inplace | double\n");
  return 2;
}
