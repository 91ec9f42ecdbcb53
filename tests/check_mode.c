/* SPDX-License-Identifier: MIT */
/*
 * check_mode.c - FANCY_CHECK=1: blocks work as usual, and writing past the
 * end of a block is caught when it is freed or reallocated, with a
 * one-line "fancyalloc: buffer overrun" message and an abort.
 *
 * The variable must be set before the library starts, so the program
 * re-executes itself with it.  Exit 0 on success, 1 on failure.
 */
#include <errno.h>
#include <fancyalloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond, ...)                       \
  do {                                          \
    if (!(cond)) {                              \
      printf("FAIL: " __VA_ARGS__);             \
      printf("\n");                             \
      failures++;                               \
    }                                           \
  } while (0)

static const size_t sizes[] = {0, 1, 24, 500, 600, 5000, 40000, 100000, 3u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void correct_use(void) {
  void *p[NSIZES];
  for (size_t i = 0; i < NSIZES; i++) {
    p[i] = fancy_malloc(sizes[i]);
    EXPECT(p[i] != NULL, "malloc(%zu)", sizes[i]);
    memset(p[i], (int)i + 1, sizes[i]);
    EXPECT(fancy_malloc_usable_size(p[i]) == sizes[i], "usable_size(%zu) = %zu", sizes[i],
           fancy_malloc_usable_size(p[i]));
  }
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = sizes[i] * 2 + 7;
    unsigned char *q = fancy_realloc(p[i], n);
    EXPECT(q != NULL, "realloc to %zu", n);
    for (size_t j = 0; j < sizes[i]; j++)
      if (q[j] != (unsigned char)(i + 1)) {
        EXPECT(0, "realloc lost byte %zu of %zu", j, sizes[i]);
        break;
      }
    memset(q, 0x33, n);
    fancy_free(q);
  }
  unsigned char *z = fancy_calloc(1000, 7);
  EXPECT(z != NULL, "calloc");
  for (size_t j = 0; z && j < 7000; j++)
    if (z[j]) {
      EXPECT(0, "calloc byte %zu not zero", j);
      break;
    }
  fancy_free(z);
  static const size_t aligns[] = {32, 64, 4096, 65536, 1u << 21};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    void *a = fancy_aligned_alloc(aligns[i], 100);
    EXPECT(a != NULL && (uintptr_t)a % aligns[i] == 0, "aligned_alloc(%zu)", aligns[i]);
    memset(a, 1, 100);
    fancy_free(a);
  }
  EXPECT(fancy_validate_heap(), "validate_heap");
}

/* In a child: allocate, write one byte past the end, then free (or
 * realloc).  The parent expects SIGABRT and the message. */
static void expect_overrun(size_t n, size_t align, int use_realloc) {
  int fd[2];
  if (pipe(fd) != 0) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    unsigned char *p = align ? fancy_aligned_alloc(align, n) : fancy_malloc(n);
    p[n] = 0x41;
    if (use_realloc) p = fancy_realloc(p, n + 1000);
    fancy_free(p);
    _exit(0);
  }
  close(fd[1]);
  char buf[512] = {0};
  ssize_t len = read(fd[0], buf, sizeof buf - 1);
  close(fd[0]);
  /* Under qemu-user (tests/run-test.sh) the emulator adds its own line
   * when the program dies of a signal. */
  char *emu = getenv("FA_TEST_RUNNER") ? strstr(buf, "qemu: uncaught target signal") : NULL;
  if (emu != NULL && emu > buf && emu[-1] == '\n') len = emu - buf, *emu = '\0';
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
         "overrun of a %zu-byte block (align %zu, %s) did not abort", n, align,
         use_realloc ? "realloc" : "free");
  EXPECT(len > 0 && strncmp(buf, "fancyalloc: buffer overrun at 0x", 32) == 0 &&
             strchr(buf, '\n') == buf + len - 1,
         "overrun message for %zu bytes was \"%s\"", n, buf);
}

int main(int argc, char **argv) {
  const char *v = getenv("FANCY_CHECK");
  if (v == NULL || strcmp(v, "1") != 0) {
    setenv("FANCY_CHECK", "1", 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    return 1;
  }
  (void)argc;
  correct_use();
  for (size_t i = 1; i < NSIZES; i++) expect_overrun(sizes[i], 0, 0);
  expect_overrun(24, 0, 1);
  expect_overrun(100000, 0, 1);
  expect_overrun(100, 64, 0);
  expect_overrun(5000, 4096, 0);
  printf("%s: FANCY_CHECK=1 (%d failures)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
