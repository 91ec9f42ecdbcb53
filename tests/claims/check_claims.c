/* SPDX-License-Identifier: MIT */
/*
 * check_claims.c - promises of README.md and the man pages, one test each
 * (issue 19).
 *
 * Every test here is named claim_<page>_<what> and starts with a comment
 * quoting the page and the sentence it checks; tests/claims/CLAIMS lists
 * every claim with the test (here or elsewhere) that checks it, and
 * tests/claims/test_claims_list.sh fails when a man page or a README table
 * row has no entry there.  Each test runs in its own child process
 * (Check's fork mode), so statistics start from a fresh process.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../helpers.h"

static fancy_stats_t fa_st(void) {
  fancy_stats_t st;
  ck_assert_int_eq(fancy_stats_get(&st, sizeof st), 0);
  return st;
}

/* Is the page at p mapped?  mincore fails with ENOMEM on an unmapped one. */
static bool fa_mapped(const void *p) {
  unsigned char v;
  long ps = sysconf(_SC_PAGESIZE);
  return mincore((void *)((uintptr_t)p & ~(uintptr_t)(ps - 1)), 1, &v) == 0;
}

/* Run fn(arg) in a child with stderr in a pipe: true if it died of
 * SIGABRT after exactly one line, which starts with prefix. */
static bool fa_aborts_with(void (*fn)(void *), void *arg, const char *prefix) {
  int fd[2];
  ck_assert_int_eq(pipe(fd), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    fn(arg);
    _exit(0);
  }
  close(fd[1]);
  char buf[1024];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof buf - 1 && (r = read(fd[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = '\0';
  close(fd[0]);
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  fa_drop_emulator_line(buf);
  char *nl = strchr(buf, '\n');
  bool one_line = nl != NULL && nl[1] == '\0';
  if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && one_line &&
        strncmp(buf, prefix, strlen(prefix)) == 0)) {
    fprintf(stderr, "child status %#x, stderr: %s\n", st, buf);
    return false;
  }
  return true;
}

/* ------------------------------------------------------------------------
 * fancy_trim(3)
 * ---------------------------------------------------------------------- */

/* fancy_trim(3) DESCRIPTION: "At most pad bytes of free memory are kept
 * cached, ready for the next allocations; with a pad of 0, everything that
 * can be released is."  A freed huge block kept warm is free memory too:
 * fancy_trim(1 GiB) keeps it mapped and returns 0. */
START_TEST(claim_fancy_trim_pad_huge) {
  char *p = fancy_malloc(8 * FA_MIB);
  ck_assert_ptr_nonnull(p);
  memset(p, 1, 8 * FA_MIB);
  fancy_free(p);
  fancy_trim(1 << 30);   /* the heap's own spans may go either way */
  ck_assert_msg(fa_mapped(p), "the freed 8 MiB block is not cached; nothing to test");
  ck_assert_int_eq(fancy_trim(1 << 30), 0);
  ck_assert_msg(fa_mapped(p), "fancy_trim(1 GiB) unmapped a freed 8 MiB block");
  ck_assert_int_eq(fancy_trim(4 * FA_MIB), 1);
  ck_assert_msg(!fa_mapped(p), "fancy_trim(4 MiB) kept a freed 8 MiB block mapped");
}
END_TEST

static void *fa_churn_thread(void *arg) {
  (void)arg;
  enum { N = 48 };
  void *b[N];
  for (int i = 0; i < N; i++) {
    b[i] = fancy_malloc(64 * FA_KIB);
    if (b[i] != NULL) memset(b[i], 2, 64 * FA_KIB);
  }
  for (int i = 0; i < N; i++) fancy_free(b[i]);
  return NULL;
}

/* Same sentence, for "the caches shared by all threads, such as the empty
 * segments kept for reuse": the segments of an exited thread stay
 * committed under fancy_trim(1 GiB) and go with fancy_trim(0). */
START_TEST(claim_fancy_trim_pad_segments) {
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, fa_churn_thread, NULL), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  fancy_trim(1 << 30);
  fancy_stats_t a = fa_st();
  ck_assert_msg(a.segments_cached > 0, "no cached segment after a thread exit; nothing to test");
  ck_assert_int_eq(fancy_trim(1 << 30), 0);
  fancy_stats_t b = fa_st();
  ck_assert_uint_eq(b.segments_cached, a.segments_cached);
  ck_assert_uint_eq(b.bytes_purged, a.bytes_purged);
  ck_assert_int_eq(fancy_trim(0), 1);
  fancy_stats_t c = fa_st();
  ck_assert_uint_eq(c.segments_cached, 0);
  ck_assert_uint_gt(c.bytes_purged, b.bytes_purged);
}
END_TEST

/* ------------------------------------------------------------------------
 * fancy_aligned_alloc(3), fancy_malloc(3), fancy_stats_get(3)
 * ---------------------------------------------------------------------- */

/* fancy_aligned_alloc(3) DESCRIPTION: "An alignment up to 64 KiB is served
 * from the allocator's pages; a larger one makes a huge block, mapped on
 * its own with mmap(2) and counted as a huge block by fancy_stats_get(3),
 * whatever its size: fancy_aligned_alloc(1 << 20, 100) takes one page of
 * the system (4 KiB) at a 1 MiB boundary." */
START_TEST(claim_fancy_aligned_alloc_huge_alignment) {
  fancy_stats_t a = fa_st();
  void *p = fancy_aligned_alloc(64 * FA_KIB, 100);
  ck_assert_ptr_nonnull(p);
  ck_assert(fa_is_aligned(p, 64 * FA_KIB));
  fancy_stats_t b = fa_st();
  ck_assert_uint_eq(b.huge_blocks, a.huge_blocks);
  void *q = fancy_aligned_alloc(FA_MIB, 100);
  ck_assert_ptr_nonnull(q);
  ck_assert(fa_is_aligned(q, FA_MIB));
  fancy_stats_t c = fa_st();
  ck_assert_uint_eq(c.huge_blocks, b.huge_blocks + 1);
  long ps = sysconf(_SC_PAGESIZE);
  ck_assert_uint_eq(c.bytes_huge - b.bytes_huge, (size_t)ps);
  /* (checked mode, which reports the size asked for, its canary behind:
   * a 1-byte block's usable size is 1 there, 16 or more otherwise) */
  void *one = fancy_malloc(1);
  bool checked = fancy_malloc_usable_size(one) == 1;
  fancy_free(one);
  ck_assert_uint_eq(fancy_malloc_usable_size(q), checked ? 100 : (size_t)ps);
  fancy_free(q);
  fancy_free(p);
}
END_TEST

/* ------------------------------------------------------------------------
 * fancy_allocator_create(3)
 * ---------------------------------------------------------------------- */

static void fa_use_instance(void *a) {
  void *p = fancy_allocator_malloc(a, 100);
  fancy_allocator_free(a, p);
}

/* fancy_allocator_create(3) "Destroying with live blocks": "The handle of
 * a destroyed instance stays invalid for good, even once another instance
 * is created in its place: passing it to any fancy_allocator_*() call
 * aborts the process after the one-line message "fancyalloc: invalid or
 * destroyed allocator instance"." */
START_TEST(claim_fancy_allocator_create_stale_handle) {
  fancy_allocator_t *a = fancy_allocator_create(NULL);
  ck_assert_ptr_nonnull(a);
  fa_use_instance(a);
  fancy_allocator_destroy(a);
  fancy_allocator_t *b = fancy_allocator_create(NULL);   /* a's slot */
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_ne(a, b);
  ck_assert(fa_aborts_with(fa_use_instance, a,
                           "fancyalloc: invalid or destroyed allocator instance"));
  fa_use_instance(b);
  ck_assert(fancy_allocator_validate(b));
  /* A made-up handle too, and the default instance's own. */
  ck_assert(fa_aborts_with(fa_use_instance, (void *)((uintptr_t)b + 1),
                           "fancyalloc: invalid or destroyed allocator instance"));
  fa_use_instance(fancy_allocator_default());
  fa_use_instance(NULL);
  fancy_allocator_destroy(b);
}
END_TEST

/* ------------------------------------------------------------------------
 * fancy_check_leaks(3), fancy_stats_get(3) bytes_live
 * ---------------------------------------------------------------------- */

enum { FA_LEAK_N = 20 };
static pthread_barrier_t fa_leak_ready, fa_leak_checked;
static void *fa_leak_blocks[FA_LEAK_N + 2];
static void *fa_leak_main_block;

/* Owner thread: allocates blocks that main frees, then stays alive (and
 * idle) until main has checked, so the frees wait in its pages' lists. */
static void *fa_leak_owner(void *arg) {
  (void)arg;
  for (int i = 0; i < FA_LEAK_N; i++) fa_leak_blocks[i] = fancy_malloc(8000);
  fa_leak_blocks[FA_LEAK_N] = fancy_malloc(100);
  fa_leak_blocks[FA_LEAK_N + 1] = fancy_malloc(100 * FA_KIB);   /* a large block */
  pthread_barrier_wait(&fa_leak_ready);
  pthread_barrier_wait(&fa_leak_checked);
  return NULL;
}

/* Freeing thread: frees main's block (kept in its reuse list) and one of
 * its own, then stays alive until main has checked. */
static void *fa_leak_freer(void *arg) {
  (void)arg;
  fancy_free(fa_leak_main_block);
  fancy_free(fancy_malloc(100));
  pthread_barrier_wait(&fa_leak_ready);
  pthread_barrier_wait(&fa_leak_checked);
  return NULL;
}

/* fancy_validate_heap(3) RETURN VALUE: "fancy_check_leaks() returns true
 * if at least one block is still live, false otherwise", and
 * fancy_stats_get(3) bytes_live, "bytes in live blocks": a block freed by
 * another thread is not live, whether it waits in that thread's reuse
 * list or in the list of a live owner that has not collected it yet. */
START_TEST(claim_fancy_check_leaks_freed_elsewhere) {
  pthread_t owner, freer;
  fa_leak_main_block = fancy_malloc(100);
  ck_assert_ptr_nonnull(fa_leak_main_block);
  ck_assert_int_eq(pthread_barrier_init(&fa_leak_ready, NULL, 2), 0);
  ck_assert_int_eq(pthread_barrier_init(&fa_leak_checked, NULL, 3), 0);
  ck_assert_int_eq(pthread_create(&owner, NULL, fa_leak_owner, NULL), 0);
  pthread_barrier_wait(&fa_leak_ready);              /* the owner's blocks exist */
  for (int i = 0; i < FA_LEAK_N + 2; i++) {
    ck_assert_ptr_nonnull(fa_leak_blocks[i]);
    fancy_free(fa_leak_blocks[i]);
  }
  ck_assert_int_eq(pthread_create(&freer, NULL, fa_leak_freer, NULL), 0);
  pthread_barrier_wait(&fa_leak_ready);              /* the freer has freed */
  fancy_stats_t st = fa_st();
  bool leaks = fancy_check_leaks();
  pthread_barrier_wait(&fa_leak_checked);
  ck_assert_int_eq(pthread_join(owner, NULL), 0);
  ck_assert_int_eq(pthread_join(freer, NULL), 0);
  ck_assert_msg(st.bytes_live == 0, "bytes_live %zu with every block freed", st.bytes_live);
  for (size_t c = 0; c < st.num_classes; c++)
    ck_assert_msg(st.classes[c].blocks_live == 0, "%zu live blocks of %zu bytes",
                  st.classes[c].blocks_live, st.classes[c].block_size);
  ck_assert_msg(!leaks, "fancy_check_leaks() reports freed blocks");
  ck_assert(fancy_validate_heap());
}
END_TEST

/* ------------------------------------------------------------------------
 * Statistics identities: fancyalloc(7) "Statistics", fancy_stats_get(3),
 * fancy_allocator_print_stats(3)
 * ---------------------------------------------------------------------- */

typedef struct { size_t live, mapped, committed; } fa_report_t;

/* The figures of fancy_allocator_print_stats(a). */
static fa_report_t fa_report(fancy_allocator_t *a) {
  fa_report_t r = {0, 0, 0};
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  fancy_allocator_print_stats(a, f);
  rewind(f);
  char line[256], label[64];
  size_t v;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, " %63[a-z ] %zu", label, &v) != 2) continue;
    size_t n = strlen(label);
    while (n > 0 && label[n - 1] == ' ') label[--n] = '\0';
    if (strcmp(label, "live") == 0) r.live = v;
    else if (strcmp(label, "mapped") == 0) r.mapped = v;
    else if (strcmp(label, "committed") == 0) r.committed = v;
  }
  fclose(f);
  return r;
}

/* fancyalloc(7) Statistics: "live <= committed <= mapped, for the process
 * and for each instance"; fancy_stats_get(3): "for the whole process,
 * the blocks of every allocator instance included"; bytes_committed:
 * "huge blocks included"; fancy_allocator_validate(3): "the blocks, heaps
 * and memory of other instances, including the default instance, are
 * neither checked, counted nor shown". */
START_TEST(claim_fancyalloc_statistics_add_up) {
  fancy_allocator_t *a = fancy_allocator_create(NULL);
  ck_assert_ptr_nonnull(a);
  char *x = fancy_allocator_malloc(a, 40 * FA_MIB);
  char *y = fancy_allocator_malloc(a, 1000);
  char *p = fancy_malloc(3 * FA_MIB);
  ck_assert(x != NULL && y != NULL && p != NULL);
  memset(x, 1, 40 * FA_MIB);
  memset(p, 1, 3 * FA_MIB);
  fancy_stats_t st = fa_st();
  ck_assert_uint_ge(st.bytes_live, 43 * FA_MIB + 1000);   /* the instance's blocks too */
  ck_assert_uint_ge(st.bytes_committed, st.bytes_live);  /* huge blocks are committed */
  ck_assert_uint_ge(st.bytes_mapped, st.bytes_committed);
  fa_report_t inst = fa_report(a), def = fa_report(fancy_allocator_default());
  ck_assert_uint_ge(inst.live, 40 * FA_MIB + 1000);
  /* (40 MiB goes in 2 MiB huge-page steps: checked mode's 16 more bytes
   * make it 42; with the default instance's 3 MiB it would be 45) */
  ck_assert_uint_lt(inst.live, 43 * FA_MIB);
  ck_assert_uint_ge(inst.committed, inst.live);
  ck_assert_uint_ge(inst.mapped, inst.committed);
  ck_assert_uint_lt(inst.committed, 48 * FA_MIB);   /* not the process's */
  ck_assert_uint_ge(def.live, 3 * FA_MIB);
  ck_assert_uint_lt(def.live, 4 * FA_MIB);
  ck_assert_uint_ge(def.committed, def.live);
  ck_assert_uint_ge(def.mapped, def.committed);
  ck_assert_msg(def.mapped < 40 * FA_MIB, "the default instance's report shows %zu bytes "
                "mapped, the other instance's 40 MiB included", def.mapped);
  ck_assert(fancy_validate_heap());
  ck_assert(fancy_allocator_validate(a));
  fancy_free(p);
  fancy_allocator_destroy(a);
  st = fa_st();
  ck_assert_uint_le(st.bytes_live, st.bytes_committed);
  ck_assert_uint_le(st.bytes_committed, st.bytes_mapped);
}
END_TEST

static Suite *make_claims_suite(void) {
  Suite *s = suite_create("claims");
  TCase *tc = tcase_create("fancy_trim.3");
  tcase_set_timeout(tc, FA_TIMEOUT_QUICK);
  tcase_add_test(tc, claim_fancy_trim_pad_huge);
  tcase_add_test(tc, claim_fancy_trim_pad_segments);
  suite_add_tcase(s, tc);
  tc = tcase_create("fancy_aligned_alloc.3");
  tcase_set_timeout(tc, FA_TIMEOUT_QUICK);
  tcase_add_test(tc, claim_fancy_aligned_alloc_huge_alignment);
  suite_add_tcase(s, tc);
  tc = tcase_create("fancy_allocator_create.3");
  tcase_set_timeout(tc, FA_TIMEOUT_QUICK);
  tcase_add_test(tc, claim_fancy_allocator_create_stale_handle);
  suite_add_tcase(s, tc);
  tc = tcase_create("fancy_check_leaks.3");
  tcase_set_timeout(tc, FA_TIMEOUT_QUICK);
  tcase_add_test(tc, claim_fancy_check_leaks_freed_elsewhere);
  suite_add_tcase(s, tc);
  tc = tcase_create("fancyalloc.7");
  tcase_set_timeout(tc, FA_TIMEOUT_QUICK);
  tcase_add_test(tc, claim_fancyalloc_statistics_add_up);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(make_claims_suite());
  srunner_run_all(sr, getenv("CK_VERBOSITY") != NULL ? CK_ENV : CK_VERBOSE);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
