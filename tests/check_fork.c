/* SPDX-License-Identifier: MIT */
/*
 * check_fork.c - fork() from a multi-threaded process while other threads
 * allocate: the child must find the allocator usable (no lock held by a
 * thread that does not exist in the child) and consistent.
 *
 * A child never calls Check: it reports through its exit status, which the
 * parent turns into a message.  The parent waits with a deadline, so a
 * deadlocked child is reported as such rather than as a test timeout.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"
#include "suites.h"

#define FORK_ROUNDS 50
#define BG_THREADS 3
#define BG_PUBLISHED 100   /* stable blocks each background thread keeps */
#define MAIN_BLOCKS 200
#define CHILD_DEADLINE_MS 20000

enum child_status {
  CHILD_OK = 0,
  CHILD_MAIN_BLOCK_CORRUPT = 10,
  CHILD_THREAD_BLOCK_CORRUPT,
  CHILD_ALLOC_FAILED,
  CHILD_ALLOC_CORRUPT,
  CHILD_THREAD_CREATE,
  CHILD_THREAD_ALLOC_FAILED,
  CHILD_THREAD_CORRUPT,
  CHILD_THREAD_VALIDATE_FAILED,
  CHILD_VALIDATE_FAILED,
  CHILD_STATS_FAILED,
};

static const char *child_status_text(int code) {
  switch (code) {
  case CHILD_MAIN_BLOCK_CORRUPT:
    return "a block of the parent's forking thread was corrupt in the child";
  case CHILD_THREAD_BLOCK_CORRUPT:
    return "a block of another parent thread was corrupt in the child";
  case CHILD_ALLOC_FAILED: return "an allocation returned NULL in the child";
  case CHILD_ALLOC_CORRUPT: return "a block allocated in the child lost its "
                                   "contents";
  case CHILD_THREAD_CREATE: return "pthread_create failed in the child";
  case CHILD_THREAD_ALLOC_FAILED:
    return "an allocation returned NULL in a thread created in the child";
  case CHILD_THREAD_CORRUPT:
    return "a block allocated by a thread created in the child lost its "
           "contents";
  case CHILD_THREAD_VALIDATE_FAILED:
    return "fancy_validate_heap() returned false in a thread created in the "
           "child (after allocating and freeing 100 blocks)";
  case CHILD_VALIDATE_FAILED:
    return "fancy_validate_heap() returned false in the child";
  case CHILD_STATS_FAILED: return "fancy_stats_get failed in the child";
  default: return "unknown exit status";
  }
}

/* ------------------------------------------------------------------------
 * Background threads: churn until told to stop, keeping BG_PUBLISHED
 * stable blocks that the children free.
 * ---------------------------------------------------------------------- */
struct bg {
  atomic_int stop;
  pthread_barrier_t ready;
  void *published[BG_THREADS][BG_PUBLISHED];
  _Atomic(void *) exchange[16];
  fa_failure_t fail;
};

struct bg_arg {
  struct bg *b;
  int id;
};

static void *bg_thread(void *argp) {
  struct bg_arg *a = argp;
  struct bg *b = a->b;
  uint64_t rng = 1000 + (uint64_t)a->id;
  for (int i = 0; i < BG_PUBLISHED; i++) {
    size_t n = (i % 25 == 24) ? 100000 + (size_t)i : 16 + (size_t)i * 37;
    void *p = fancy_malloc(n);
    if (p == NULL) {
      fa_fail(&b->fail, "background thread %d: fancy_malloc(%zu) NULL", a->id,
              n);
      break;
    }
    fa_mark(p, n, (unsigned)(a->id * 1000 + i));
    b->published[a->id][i] = p;
  }
  pthread_barrier_wait(&b->ready);
  void *slot[64] = {0};
  while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
    int i = (int)(fa_rand(&rng) % 64);
    uint64_t r = fa_rand(&rng);
    if (slot[i] != NULL) {
      size_t bad;
      if (fa_verify(slot[i], &bad) == 0)
        fa_fail(&b->fail, "background thread %d: block corrupt at byte %zu",
                a->id, bad);
      if (r % 8 == 0) {  /* hand it to another thread */
        slot[i] = atomic_exchange(&b->exchange[r % 16], slot[i]);
        continue;
      }
      fancy_free(slot[i]);
      slot[i] = NULL;
    } else {
      size_t n = (r % 200 == 0) ? 2 * FA_MIB + r % FA_MIB
               : (r % 20 == 0) ? 40000 + r % 100000 : 16 + r % 1000;
      slot[i] = fancy_malloc(n);
      if (slot[i] == NULL) {
        fa_fail(&b->fail, "background thread %d: fancy_malloc(%zu) NULL",
                a->id, n);
        break;
      }
      fa_mark(slot[i], n, (unsigned)r);
    }
  }
  for (int i = 0; i < 64; i++) fancy_free(slot[i]);
  return NULL;
}

/* ------------------------------------------------------------------------
 * The child
 * ---------------------------------------------------------------------- */
/* A thread started in the child: its heap is new, but may take over memory
 * of parent threads that do not exist in the child.  Returns its status. */
static void *child_thread(void *arg) {
  int *status = arg;
  void *p[100];
  *status = CHILD_OK;
  for (int i = 0; i < 100; i++) {
    p[i] = fancy_malloc(16 + (size_t)i * 100);
    if (p[i] == NULL) {
      *status = CHILD_THREAD_ALLOC_FAILED;
      return NULL;
    }
    fa_mark(p[i], 16 + (size_t)i * 100, (unsigned)i);
  }
  for (int i = 0; i < 100; i++) {
    size_t bad;
    if (fa_verify(p[i], &bad) == 0 && *status == CHILD_OK)
      *status = CHILD_THREAD_CORRUPT;
    fancy_free(p[i]);
  }
  if (*status == CHILD_OK && !fancy_validate_heap())
    *status = CHILD_THREAD_VALIDATE_FAILED;
  return NULL;
}

/* Runs in the child; returns its exit status.  Frees `mine` (the forking
 * thread's blocks) and, when `b` is given, the other threads' published
 * blocks. */
static int child_main(void **mine, int nmine, struct bg *b, uint64_t seed) {
  for (int i = 0; i < nmine; i++) {
    size_t bad;
    if (fa_verify(mine[i], &bad) == 0) return CHILD_MAIN_BLOCK_CORRUPT;
    fancy_free(mine[i]);
  }
  if (b != NULL) {
    for (int t = 0; t < BG_THREADS; t++) {
      for (int i = 0; i < BG_PUBLISHED; i++) {
        size_t bad;
        if (fa_verify(b->published[t][i], &bad) == 0)
          return CHILD_THREAD_BLOCK_CORRUPT;
        fancy_free(b->published[t][i]);
      }
    }
  }
  /* A workload of its own, huge blocks included. */
  void *p[256] = {0};
  uint64_t rng = seed;
  for (int op = 0; op < 5000; op++) {
    int i = (int)(fa_rand(&rng) % 256);
    if (p[i] != NULL) {
      size_t bad;
      if (fa_verify(p[i], &bad) == 0) return CHILD_ALLOC_CORRUPT;
      fancy_free(p[i]);
      p[i] = NULL;
    } else {
      uint64_t r = fa_rand(&rng);
      size_t n = (r % 500 == 0) ? 3 * FA_MIB : (r % 20 == 0) ? 70000 : 16 + r % 2000;
      p[i] = fancy_malloc(n);
      if (p[i] == NULL) return CHILD_ALLOC_FAILED;
      fa_mark(p[i], n, (unsigned)op);
    }
  }
  for (int i = 0; i < 256; i++) fancy_free(p[i]);
  if (!fancy_validate_heap()) return CHILD_VALIDATE_FAILED;
  fancy_stats_t s;
  if (fancy_stats_get(&s, sizeof(s)) != 0) return CHILD_STATS_FAILED;
  pthread_t t;
  int thread_status = CHILD_OK;
  if (pthread_create(&t, NULL, child_thread, &thread_status) != 0)
    return CHILD_THREAD_CREATE;
  pthread_join(t, NULL);
  if (thread_status != CHILD_OK) return thread_status;
  if (!fancy_validate_heap()) return CHILD_VALIDATE_FAILED;
  return CHILD_OK;
}

/* Waits for the child; fails the test on a deadline, a signal or a
 * non-zero exit. */
static void wait_child(pid_t pid, int round) {
  int status = 0;
  struct timespec pause = {0, 1000000};
  for (int ms = 0;; ms++) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    ck_assert_msg(r == 0, "waitpid: %s", strerror(errno));
    if (ms >= CHILD_DEADLINE_MS) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ck_abort_msg("round %d: the forked child did not exit within %d s: "
                   "deadlock in the child (a lock held across fork?)", round,
                   CHILD_DEADLINE_MS / 1000);
    }
    nanosleep(&pause, NULL);
  }
  ck_assert_msg(!WIFSIGNALED(status), "round %d: the forked child died of "
                "signal %d (%s)", round, WTERMSIG(status),
                strsignal(WTERMSIG(status)));
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "round %d: the forked child exited with %d: %s", round,
                WEXITSTATUS(status), child_status_text(WEXITSTATUS(status)));
}

static void **alloc_marked(int n, unsigned seed) {
  void **p = malloc((size_t)n * sizeof(*p));
  ck_assert_ptr_ne(p, NULL);
  for (int i = 0; i < n; i++) {
    size_t sz = (i % 50 == 49) ? 3 * FA_MIB : (i % 10 == 9) ? 50000
              : 16 + (size_t)i * 13;
    p[i] = fancy_malloc(sz);
    ck_assert_ptr_ne(p[i], NULL);
    fa_mark(p[i], sz, seed + (unsigned)i);
  }
  return p;
}

static void free_marked(void **p, int n) {
  for (int i = 0; i < n; i++) {
    size_t bad;
    FA_REQUIRE(fa_verify(p[i], &bad) != 0, "block %d corrupt at byte %zu in "
               "the parent", i, bad);
    fancy_free(p[i]);
  }
  free(p);
}

START_TEST(test_fork_while_allocating) {
  /* qemu-user (a cross build's make check, tests/run-test.sh) cannot fork
   * a process whose other threads are running: its child exits 127. */
  if (getenv("FA_TEST_RUNNER") != NULL && *getenv("FA_TEST_RUNNER") != '\0') return;
  struct bg *b = calloc(1, sizeof(*b));
  ck_assert_ptr_ne(b, NULL);
  pthread_barrier_init(&b->ready, NULL, BG_THREADS + 1);
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  void **mine = alloc_marked(MAIN_BLOCKS, 7);
  pthread_t t[BG_THREADS];
  struct bg_arg args[BG_THREADS];
  for (int i = 0; i < BG_THREADS; i++) {
    args[i].b = b;
    args[i].id = i;
    ck_assert_int_eq(pthread_create(&t[i], NULL, bg_thread, &args[i]), 0);
  }
  pthread_barrier_wait(&b->ready);

  for (int round = 0; round < FORK_ROUNDS; round++) {
    /* the parent keeps allocating too, right up to the fork */
    void *extra = fancy_malloc(100 + (size_t)round);
    ck_assert_ptr_ne(extra, NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) _exit(child_main(mine, MAIN_BLOCKS, b, (uint64_t)round + 1));
    fancy_free(extra);
    wait_child(pid, round);
    ck_assert_msg(!fa_failed(&b->fail), "%s", b->fail.msg);
  }

  atomic_store(&b->stop, 1);
  for (int i = 0; i < BG_THREADS; i++) pthread_join(t[i], NULL);
  ck_assert_msg(!fa_failed(&b->fail), "%s", b->fail.msg);
  free_marked(mine, MAIN_BLOCKS);
  for (int i = 0; i < BG_THREADS; i++) {
    for (int j = 0; j < BG_PUBLISHED; j++) {
      size_t bad;
      FA_REQUIRE(fa_verify(b->published[i][j], &bad) != 0, "published block "
                 "corrupt at byte %zu", bad);
      fancy_free(b->published[i][j]);
    }
  }
  for (int k = 0; k < 16; k++) fancy_free(atomic_load(&b->exchange[k]));
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
  pthread_barrier_destroy(&b->ready);
  free(b);
}
END_TEST

/* fork() from a thread that is not the main thread, while the main thread
 * allocates: the child's only thread is that one. */
struct fork_from_worker {
  void **mine;
  atomic_int done;
  char msg[256];
};

static void *forking_thread(void *argp) {
  struct fork_from_worker *f = argp;
  void **mine = malloc(MAIN_BLOCKS * sizeof(void *));
  for (int i = 0; i < MAIN_BLOCKS && mine != NULL; i++) {
    size_t n = 16 + (size_t)i * 29;
    mine[i] = fancy_malloc(n);
    if (mine[i] != NULL) fa_mark(mine[i], n, (unsigned)i);
  }
  for (int round = 0; round < 10 && f->msg[0] == '\0'; round++) {
    pid_t pid = fork();
    if (pid == 0) _exit(child_main(mine, MAIN_BLOCKS, NULL, 99));
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
      snprintf(f->msg, sizeof(f->msg), "fork/waitpid failed: %s",
               strerror(errno));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      snprintf(f->msg, sizeof(f->msg), "round %d: child of a worker thread "
               "ended with status %#x: %s", round, status,
               WIFEXITED(status) ? child_status_text(WEXITSTATUS(status))
                                 : "killed by a signal");
    }
  }
  for (int i = 0; i < MAIN_BLOCKS && mine != NULL; i++) fancy_free(mine[i]);
  free(mine);
  atomic_store(&f->done, 1);
  return NULL;
}

START_TEST(test_fork_from_worker_thread) {
  struct fork_from_worker f;
  memset(&f, 0, sizeof(f));
  fa_touch_heap();
  fancy_stats_t base = fa_stats();
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, forking_thread, &f), 0);
  uint64_t rng = 5;
  void *slot[32] = {0};
  while (!atomic_load(&f.done)) {
    int i = (int)(fa_rand(&rng) % 32);
    if (slot[i] != NULL) {
      fancy_free(slot[i]);
      slot[i] = NULL;
    } else {
      slot[i] = fancy_malloc(16 + fa_rand(&rng) % 5000);
      FA_REQUIRE(slot[i] != NULL, "fancy_malloc returned NULL");
    }
  }
  pthread_join(t, NULL);
  for (int i = 0; i < 32; i++) fancy_free(slot[i]);
  ck_assert_msg(f.msg[0] == '\0', "%s", f.msg);
  ck_assert_uint_eq(fa_stats().bytes_live, base.bytes_live);
}
END_TEST

Suite *make_fork_suite(void) {
  Suite *s = suite_create("fork");
  TCase *tc = fa_tcase("fork", FA_TIMEOUT_STRESS);
  tcase_add_test(tc, test_fork_while_allocating);
  tcase_add_test(tc, test_fork_from_worker_thread);
  suite_add_tcase(s, tc);
  return s;
}
