/* SPDX-License-Identifier: MIT */
/*
 * stage.h - the stage counter that the threads of a test program (not a
 * Check suite) step through in order: one thread sets stage s when it has
 * done its part, the others wait until the counter reaches s.  Static, so
 * each program that includes it has its own.
 */
#ifndef FA_TESTS_STAGE_H
#define FA_TESTS_STAGE_H

#include <pthread.h>

static pthread_mutex_t stage_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stage_cond = PTHREAD_COND_INITIALIZER;
static int stage;

static void set_stage(int s) {
  pthread_mutex_lock(&stage_lock);
  stage = s;
  pthread_cond_broadcast(&stage_cond);
  pthread_mutex_unlock(&stage_lock);
}

static void wait_stage(int s) {
  pthread_mutex_lock(&stage_lock);
  while (stage < s) pthread_cond_wait(&stage_cond, &stage_lock);
  pthread_mutex_unlock(&stage_lock);
}

#endif
