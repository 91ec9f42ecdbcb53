/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - shared helpers of the black-box Check suites.
 *
 * Everything here is static inline, so a suite includes what it needs and
 * nothing is linked twice.  Book-keeping arrays of the tests are taken from
 * the C library's malloc, never from fancy_*, so that they do not move the
 * allocator's statistics that the tests measure.
 *
 * Check's ck_assert*() records the location of every assertion that passes
 * (one write to the runner per call), which is far too slow inside loops of
 * millions of iterations: loops use FA_REQUIRE, which only calls into Check
 * when the condition fails.  Worker threads never call Check at all: they
 * record the first failure with fa_fail() and the main thread asserts on it.
 */
#ifndef FA_TESTS_HELPERS_H
#define FA_TESTS_HELPERS_H

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fancyalloc.h"

#define FA_KIB ((size_t)1 << 10)
#define FA_MIB ((size_t)1 << 20)

/* Timeouts (seconds) for the test cases; CK_TIMEOUT_MULTIPLIER scales them
 * for slow machines, sanitizer builds or valgrind. */
#define FA_TIMEOUT_QUICK 30
#define FA_TIMEOUT_STRESS 120

/* Fail the current test, but only pay for Check when the test fails. */
#define FA_REQUIRE(cond, ...)                                                \
  do {                                                                       \
    if (!(cond)) ck_abort_msg(__VA_ARGS__);                                  \
  } while (0)

static inline int fa_is_aligned(const void *p, size_t alignment) {
  return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* ------------------------------------------------------------------------
 * Patterns: byte i of a block filled with seed s is a function of (i, s), so
 * a block that moved, was truncated or overlaps another one is caught.
 * ---------------------------------------------------------------------- */
static inline unsigned char fa_pattern_byte(size_t i, unsigned seed) {
  return (unsigned char)((i * 131u) ^ (i >> 8) ^ (seed * 0x9du) ^ (seed >> 8));
}

static inline void fa_fill(void *p, size_t from, size_t to, unsigned seed) {
  unsigned char *c = p;
  for (size_t i = from; i < to; i++) c[i] = fa_pattern_byte(i, seed);
}

/* Index of the first byte of [from, to) that does not hold the pattern, or
 * SIZE_MAX when they all do. */
static inline size_t fa_check(const void *p, size_t from, size_t to,
                              unsigned seed) {
  const unsigned char *c = p;
  for (size_t i = from; i < to; i++)
    if (c[i] != fa_pattern_byte(i, seed)) return i;
  return SIZE_MAX;
}

/* Index of the first non-zero byte of p[0..n), or SIZE_MAX. */
static inline size_t fa_first_nonzero(const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != 0) return i;
  return SIZE_MAX;
}

/* xorshift64*: a small deterministic generator, one state per thread. */
static inline uint64_t fa_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------------------
 * Self-describing blocks, for blocks that travel between threads or
 * processes: 16 header bytes (size, and a tag derived from size and seed),
 * then the pattern on the first 2 KiB and the last 64 bytes.  n >= 16.
 * ---------------------------------------------------------------------- */
#define FA_BLOCK_MAGIC 0x6661626c6f636b21ull

static inline void fa_mark(void *p, size_t n, unsigned seed) {
  uint64_t h[2] = {n, (n * 0x9e3779b97f4a7c15ull) ^ seed ^ FA_BLOCK_MAGIC};
  memcpy(p, h, sizeof(h));
  size_t head = n < 2048 ? n : 2048;
  fa_fill(p, 16, head, seed);
  if (n > 2048) fa_fill(p, n - 64 > head ? n - 64 : head, n, seed);
}

/* Size of the block if it is intact, else 0 (and *bad = failing byte). */
static inline size_t fa_verify(const void *p, size_t *bad) {
  uint64_t h[2];
  memcpy(h, p, sizeof(h));
  size_t n = (size_t)h[0];
  uint64_t seed64 = h[1] ^ (n * 0x9e3779b97f4a7c15ull) ^ FA_BLOCK_MAGIC;
  *bad = 0;
  if (n < 16 || seed64 > 0xffffffffu) return 0;  /* header overwritten */
  unsigned seed = (unsigned)seed64;
  size_t head = n < 2048 ? n : 2048;
  size_t b = fa_check(p, 16, head, seed);
  if (b == SIZE_MAX && n > 2048)
    b = fa_check(p, n - 64 > head ? n - 64 : head, n, seed);
  if (b != SIZE_MAX) {
    *bad = b;
    return 0;
  }
  return n;
}

/* ------------------------------------------------------------------------
 * Statistics
 * ---------------------------------------------------------------------- */
static inline fancy_stats_t fa_stats(void) {
  fancy_stats_t s;
  memset(&s, 0, sizeof(s));
  ck_assert_msg(fancy_stats_get(&s, sizeof(s)) == 0,
                "fancy_stats_get(&s, sizeof s) failed: %s", strerror(errno));
  return s;
}

/* Creates the calling thread's heap, so that baselines taken afterwards
 * already include it. */
static inline void fa_touch_heap(void) {
  void *p = fancy_malloc(1);
  ck_assert_msg(p != NULL, "fancy_malloc(1) returned NULL");
  fancy_free(p);
}

/* ------------------------------------------------------------------------
 * The checked fixture every test case uses: the test runs in its own
 * process (Check forks), so after the test the calling thread's heap must
 * still be consistent.
 * ---------------------------------------------------------------------- */
static inline void fa_validate_teardown(void) {
  ck_assert_msg(fancy_validate_heap(),
                "fancy_validate_heap() returned false after the test "
                "(its stderr line says what is inconsistent)");
}

static inline TCase *fa_tcase(const char *name, int timeout) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, NULL, fa_validate_teardown);
  tcase_set_timeout(tc, timeout);
  return tc;
}

/* ------------------------------------------------------------------------
 * First-failure recorder for worker threads and forked children.
 * ---------------------------------------------------------------------- */
typedef struct fa_failure {
  atomic_int failed;
  char msg[512];
} fa_failure_t;

static inline void fa_fail(fa_failure_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void fa_fail(fa_failure_t *f, const char *fmt, ...) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&f->failed, &expected, 1)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
  va_end(ap);
}

static inline int fa_failed(fa_failure_t *f) {
  return atomic_load_explicit(&f->failed, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Capturing stderr (the diagnostics print there).
 * ---------------------------------------------------------------------- */
typedef struct fa_capture {
  int saved_fd;
  FILE *file;
} fa_capture_t;

static inline void fa_capture_begin(fa_capture_t *c) {
  fflush(stderr);
  c->file = tmpfile();
  ck_assert_msg(c->file != NULL, "tmpfile(): %s", strerror(errno));
  c->saved_fd = dup(STDERR_FILENO);
  ck_assert_msg(c->saved_fd >= 0, "dup(2): %s", strerror(errno));
  ck_assert_msg(dup2(fileno(c->file), STDERR_FILENO) == STDERR_FILENO,
                "dup2: %s", strerror(errno));
}

/* Restores stderr and returns what was written to it (malloc'ed,
 * NUL-terminated; the caller frees it). */
static inline char *fa_capture_end(fa_capture_t *c) {
  fflush(stderr);
  dup2(c->saved_fd, STDERR_FILENO);
  close(c->saved_fd);
  long n = ftell(c->file);
  if (n < 0) n = 0;
  char *text = calloc(1, (size_t)n + 1);
  ck_assert_msg(text != NULL, "calloc failed");
  rewind(c->file);
  size_t got = fread(text, 1, (size_t)n, c->file);
  text[got] = '\0';
  fclose(c->file);
  return text;
}


/* pthread_create that fails the test when the thread cannot start. */
static inline void fa_start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  int e = pthread_create(t, NULL, fn, arg);
  ck_assert_msg(e == 0, "pthread_create: %s", strerror(e));
}

/* Sizes 16..40000: mostly small, some medium, a few up to 40000. */
static inline size_t fa_mixed_size(uint64_t *rng) {
  uint64_t r = fa_rand(rng);
  unsigned pct = (unsigned)(r % 100);
  r >>= 8;
  if (pct < 85) return 16 + r % 497;
  if (pct < 98) return 513 + r % 3584;
  return 4097 + r % (40000 - 4097 + 1);
}

/* Misuse tests abort on purpose: no core dumps from those children. */
static inline void fa_no_core_dump(void) { prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

/* Under an emulator (a cross build's make check, tests/run-test.sh)
 * qemu-user adds its own line to stderr when the program dies of a
 * signal: cut the child's stderr text there. */
static inline void fa_drop_emulator_line(char *text) {
  char *emu = getenv("FA_TEST_RUNNER") ? strstr(text, "qemu: uncaught target signal") : NULL;
  if (emu != NULL && (emu == text || emu[-1] == '\n')) *emu = '\0';
}

/* Runs fn(arg) in a child with stderr on a pipe; returns what the child
 * wrote (malloc'ed) and stores its wait status. */
static inline char *fa_stderr_of_child(void (*fn)(int), int arg, int *status) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fa_no_core_dump();
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t cap = 4096, len = 0;
  char *text = malloc(cap + 1);
  ck_assert_ptr_ne(text, NULL);
  ssize_t n;
  while ((n = read(fds[0], text + len, cap - len)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) len += (size_t)n;
    if (len == cap) break;
  }
  text[len] = '\0';
  close(fds[0]);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {}
  fa_drop_emulator_line(text);
  return text;
}


/* Runs child(k) for every k < count in a child process and asserts that
 * each one was killed by SIGABRT after writing exactly one line to stderr,
 * starting with "fancyalloc: ".  names[k] labels the failures. */
static inline void fa_assert_misuse_messages(void (*child)(int), int count,
                                             const char *const *names) {
  for (int k = 0; k < count; k++) {
    int status = 0;
    char *text = fa_stderr_of_child(child, k, &status);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "%s: the child was not killed by SIGABRT (status %#x, "
                  "stderr \"%s\")", names[k], status, text);
    ck_assert_msg(strncmp(text, "fancyalloc: ", 12) == 0,
                  "%s: stderr does not start with \"fancyalloc: \": \"%s\"",
                  names[k], text);
    char *nl = strchr(text, '\n');
    ck_assert_msg(nl != NULL && nl[1] == '\0',
                  "%s: stderr is not exactly one line: \"%s\"", names[k], text);
    free(text);
  }
}

#endif /* FA_TESTS_HELPERS_H */
