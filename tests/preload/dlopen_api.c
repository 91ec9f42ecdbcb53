/* SPDX-License-Identifier: MIT */
/*
 * dlopen_api PATH - a program that is not linked with libfancyalloc loads
 * it with dlopen (PATH: lib/.libs/libfancyalloc.so.1) and calls the
 * fancy_* API through dlsym, from the main thread, from a thread started
 * before the dlopen and from threads started after, passing blocks
 * between them.  Exit 0 and "dlopen_api: ok"; 3 when dlopen fails (the
 * message names the reason, e.g. no static TLS space for an initial-exec
 * build); 1 on a wrong result.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*f_malloc)(size_t);
static void (*f_free)(void *);
static void *(*f_realloc)(void *, size_t);
static size_t (*f_usable)(const void *);
static bool (*f_validate)(void);
static const char *(*f_version)(void);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int loaded;

#define N 2000
static char *handoff[4][N];

static int use_api(int slot) {
  int bad = 0;
  for (int i = 0; i < N; i++) {
    size_t n = 1 + (size_t)((i * 7919) % (i % 50 == 0 ? 300000 : 2000));
    char *p = f_malloc(n);
    if (p == NULL || f_usable(p) < n) { bad = 1; break; }
    memset(p, slot + 1, n);
    if (i % 3 == 0) {
      p = f_realloc(p, n * 2 + 1);
      if (p == NULL || p[n - 1] != slot + 1) { bad = 1; break; }
    }
    handoff[slot][i] = p;
  }
  /* Free the blocks of the previous slot (allocated by another thread). */
  if (slot > 0)
    for (int i = 0; i < N; i++) {
      if (handoff[slot - 1][i] == NULL || handoff[slot - 1][i][0] != slot) bad = 1;
      f_free(handoff[slot - 1][i]);
      handoff[slot - 1][i] = NULL;
    }
  return bad;
}

static void *early_thread(void *arg) {
  pthread_mutex_lock(&lock);
  while (!loaded) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  return (void *)(size_t)use_api(1);
}

static void *late_thread(void *arg) {
  return (void *)(size_t)use_api((int)(size_t)arg);
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: dlopen_api PATH-TO-libfancyalloc.so.1\n"); return 2; }
  if (dlsym(RTLD_DEFAULT, "fancy_malloc") != NULL) {
    fprintf(stderr, "dlopen_api: fancy_malloc is already loaded\n");
    return 2;
  }
  pthread_t early;
  if (pthread_create(&early, NULL, early_thread, NULL) != 0) return 2;
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    printf("dlopen_api: dlopen failed: %s\n", dlerror());
    return 3;
  }
#define GET(var, name) \
  if ((var = (__typeof__(var))dlsym(h, name)) == NULL) { printf("dlopen_api: no %s\n", name); return 1; }
  GET(f_malloc, "fancy_malloc");
  GET(f_free, "fancy_free");
  GET(f_realloc, "fancy_realloc");
  GET(f_usable, "fancy_malloc_usable_size");
  GET(f_validate, "fancy_validate_heap");
  GET(f_version, "fancy_version");
  int bad = use_api(0);
  pthread_mutex_lock(&lock);
  loaded = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  void *r;
  pthread_join(early, &r);
  bad |= r != NULL;
  for (size_t s = 2; s < 4; s++) {
    pthread_t t;
    if (pthread_create(&t, NULL, late_thread, (void *)s) != 0) return 2;
    pthread_join(t, &r);
    bad |= r != NULL;
  }
  for (int i = 0; i < N; i++) f_free(handoff[3][i]);
  if (!f_validate()) { printf("dlopen_api: fancy_validate_heap failed\n"); bad = 1; }
  printf("dlopen_api: %s (libfancyalloc %s)\n", bad ? "FAILED" : "ok", f_version());
  return bad;
}
