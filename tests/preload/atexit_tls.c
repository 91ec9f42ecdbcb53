/* SPDX-License-Identifier: MIT */
/*
 * atexit_tls - allocation in the last moments of threads and of the
 * process: pthread key destructors that allocate, free and set their key
 * again (so that they run several times, after the allocator's own
 * thread-exit handling may already have run), atexit handlers that
 * allocate and print, a handler registered from a handler, and a
 * destructor function.  The output is the same under any allocator.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t key_a, key_b;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long dtor_calls, dtor_bytes;
static char *leftovers[64];
static int nleft;

/* Runs at thread exit with the thread's value; allocates, and the first
 * times sets a new value so that it is called again. */
static void dtor(void *value) {
  char *s = value;
  size_t len = strlen(s);
  char *t = malloc(len + 32);
  if (t == NULL) abort();
  snprintf(t, len + 32, "%s+", s);
  free(s);
  pthread_mutex_lock(&lock);
  dtor_calls++;
  dtor_bytes += (long)len;
  pthread_mutex_unlock(&lock);
  if (strlen(t) < 5) {
    pthread_setspecific(key_a, t);    /* called again in the next pass */
  } else {
    /* Keep one block past the thread's end, for main to free. */
    pthread_mutex_lock(&lock);
    if (nleft < 64) leftovers[nleft++] = t;
    else free(t);
    pthread_mutex_unlock(&lock);
  }
}

static void dtor_b(void *value) {
  /* A large and a huge block, then free the value. */
  void *big = malloc(300000), *huge = malloc(5u << 20);
  if (big == NULL || huge == NULL) abort();
  memset(big, 1, 300000);
  memset(huge, 2, 4096);
  free(huge);
  free(big);
  free(value);
}

static void *thread(void *arg) {
  char *s = malloc(16);
  snprintf(s, 16, "t%zu", (size_t)arg);
  pthread_setspecific(key_a, s);
  pthread_setspecific(key_b, calloc(1, 1000));
  for (int i = 0; i < 1000; i++) free(malloc((size_t)i * 11 + 1));
  return NULL;
}

static char *exit_text;

static void late_handler(void) {
  /* Registered by first_handler while exit() runs its handlers. */
  char *p = realloc(exit_text, 1 << 20);
  if (p == NULL) abort();
  printf("late handler: %s\n", p);
  free(p);
}

static void first_handler(void) {
  exit_text = strdup("allocated in an atexit handler");
  atexit(late_handler);
  char *buf = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&buf, &n);
  for (int i = 0; i < 500; i++) fprintf(m, "%d ", i);
  fclose(m);
  printf("first handler: %zu bytes from open_memstream\n", n);
  free(buf);
}

__attribute__((destructor)) static void program_destructor(void) {
  char *p = calloc(1000, 1000);
  if (p == NULL) abort();
  free(p);
  /* stdout may be flushed already; write(2) avoids depending on it. */
}

int main(void) {
  atexit(first_handler);
  pthread_key_create(&key_a, dtor);
  pthread_key_create(&key_b, dtor_b);
  for (int round = 0; round < 4; round++) {
    pthread_t t[8];
    for (size_t i = 0; i < 8; i++) pthread_create(&t[i], NULL, thread, (void *)i);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  }
  printf("key destructors: %ld calls, %ld bytes\n", dtor_calls, dtor_bytes);
  for (int i = 0; i < nleft; i++) {
    if (leftovers[i][0] != 't') printf("leftover %d corrupted\n", i);
    free(leftovers[i]);
  }
  printf("leftovers freed: %d\n", nleft);
  /* The main thread's own key values: destructors do not run for it. */
  pthread_setspecific(key_a, strdup("main"));
  return 0;
}
