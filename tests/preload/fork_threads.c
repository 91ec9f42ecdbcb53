/* SPDX-License-Identifier: MIT */
/*
 * fork_threads - fork from a multi-threaded process while the other
 * threads allocate and free (so that allocator locks may be held at the
 * moment of fork).  Each child allocates and frees blocks of every kind,
 * starts a thread of its own, forks once more, and exits 0; the parent
 * checks every child's status.  A deadlock shows as a timeout.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 3
#define FORKS 30

static atomic_int stop;
static atomic_long rounds;

static void *churn(void *arg) {
  unsigned seed = (unsigned)(size_t)arg;
  void *keep[256] = {0};
  while (!atomic_load(&stop)) {
    for (int i = 0; i < 256; i++) {
      seed = seed * 1103515245u + 12345u;
      size_t n = (seed >> 8) % 4 == 0 ? 40000 + (seed >> 12) % 300000 : 1 + (seed >> 12) % 2000;
      if ((seed >> 20) % 97 == 0) n = (5u << 20);   /* now and then a huge block */
      free(keep[i]);
      keep[i] = malloc(n);
      if (keep[i] == NULL) abort();
      memset(keep[i], i, n < 256 ? n : 256);
    }
    atomic_fetch_add(&rounds, 1);
  }
  for (int i = 0; i < 256; i++) free(keep[i]);
  return NULL;
}

static void *child_thread(void *arg) {
  char **v = malloc(1000 * sizeof *v);
  if (v == NULL) return arg;
  for (int i = 0; i < 1000; i++) {
    v[i] = malloc(16 + (size_t)i * 37);
    if (v[i] == NULL) return arg;
    memset(v[i], 1, 16);
  }
  for (int i = 0; i < 1000; i++) free(v[i]);
  free(v);
  return NULL;
}

/* What a child does; returns its exit status. */
static int child_work(int depth) {
  void *blocks[512];
  for (int i = 0; i < 512; i++) {
    size_t n = (i % 64 == 0) ? (3u << 20) : (i % 8 == 0) ? 70000 : (size_t)(1 + i * 13);
    blocks[i] = malloc(n);
    if (blocks[i] == NULL) return 10;
    memset(blocks[i], 0x5a, n < 4096 ? n : 4096);
  }
  char *s = strdup("child");
  s = realloc(s, 1 << 20);
  if (s == NULL || strcmp(s, "child") != 0) return 11;
  free(s);
  for (int i = 0; i < 512; i += 2) free(blocks[i]);
  pthread_t t;
  void *r = NULL;
  if (pthread_create(&t, NULL, child_thread, &r) != 0) return 12;
  if (pthread_join(t, &r) != 0 || r != NULL) return 13;
  for (int i = 1; i < 512; i += 2) free(blocks[i]);
  if (depth == 0) {
    pid_t pid = fork();
    if (pid < 0) return 14;
    if (pid == 0) _exit(child_work(1));
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 15;
  }
  return 0;
}

int main(void) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, churn, (void *)(size_t)(i + 1)) != 0) return 2;
  while (atomic_load(&rounds) < THREADS) usleep(1000);
  int failures = 0;
  for (int f = 0; f < FORKS; f++) {
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
      /* exit, not _exit: atexit handlers and stdio flushing run too. */
      exit(child_work(0));
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); return 2; }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (failures++ < 5) {
        if (WIFSIGNALED(st)) fprintf(stderr, "fork_threads: child %d killed by signal %d\n", f, WTERMSIG(st));
        else fprintf(stderr, "fork_threads: child %d exited with %d\n", f, WEXITSTATUS(st));
      }
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  printf("fork_threads: %d forks, %d failed\n", FORKS, failures);
  return failures ? 1 : 0;
}
