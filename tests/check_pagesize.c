/* SPDX-License-Identifier: MIT */
/*
 * check_pagesize.c - the allocator on 16 KiB and 64 KiB page kernels
 * (arm64), tested on any machine: each test stores that page size in
 * _fa_os_page (the page size the allocator assumes, os.h) before its first
 * allocation, and this program interposes mmap, munmap, madvise and mremap
 * (the executable's definitions win over libc's for the core linked into
 * it) to record every call the allocator makes.  A 16 or 64 KiB page
 * kernel refuses an munmap or madvise at an address that is not a multiple
 * of its page (EINVAL: the memory would never be given back), and rounds
 * lengths up, so the allocator's accounting would drift; so every address
 * and length must be a multiple of the page; but a mapping made with a
 * length that is not (lib/huge.c's table) may be unmapped whole with that
 * same length, which the kernel rounds alike.  Checks README
 * ("Platforms"): "Huge blocks (above 2 MiB) are rounded up to the kernel's
 * page, 64 KiB on such a kernel" and "every munmap, madvise and mremap is
 * page-aligned".
 *
 * The calls are forwarded with syscall(2), which needs no libc state.
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/internal.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

/* What the interposed calls saw since the last pg_start(). */
static size_t pg_page;          /* 0: not recording */
static unsigned pg_calls[4];    /* mmap, munmap, madvise, mremap */
static unsigned pg_bad;
static char pg_first_bad[160];

static void pg_check(unsigned kind, const char *name, uintptr_t addr, size_t len) {
  if (pg_page == 0) return;
  pg_calls[kind]++;
  if (addr % pg_page == 0 && len % pg_page == 0) return;
  if (pg_bad++ == 0)
    snprintf(pg_first_bad, sizeof pg_first_bad, "%s(%#lx, %#zx) with %zu KiB pages", name,
             (unsigned long)addr, len, pg_page / KIB);
}

/* Whole mappings of a length that is not a multiple of the page. */
static struct { uintptr_t addr; size_t len; } pg_odd[64];

/* mmap(NULL, ...) on a kernel of pg_page pages returns a multiple of it;
 * under qemu-user, or without the newer kernels' THP alignment of large
 * mappings, this machine's may not: place such mappings as that kernel
 * would (over-map, unmap the unaligned head and the tail, unrecorded). */
static void *pg_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (pg_page == 0 || addr != NULL || (flags & MAP_FIXED) || fd != -1)
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  size_t total = len + pg_page;
  char *raw = (void *)syscall(SYS_mmap, NULL, total, prot, flags, fd, off);
  if (raw == MAP_FAILED) return MAP_FAILED;
  char *p = (char *)(((uintptr_t)raw + pg_page - 1) & ~(uintptr_t)(pg_page - 1));
  size_t head = (size_t)(p - raw), end = (len + 4095) & ~(size_t)4095;
  if (head) syscall(SYS_munmap, raw, head);
  if (total - head > end) syscall(SYS_munmap, p + end, total - head - end);
  return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  void *p = pg_mmap(addr, len, prot, flags, fd, off);
  if (pg_page != 0 && addr == NULL && len % pg_page != 0 && p != MAP_FAILED) {
    for (size_t i = 0; i < sizeof pg_odd / sizeof pg_odd[0]; i++)
      if (pg_odd[i].addr == 0) {
        pg_odd[i].addr = (uintptr_t)p;
        pg_odd[i].len = len;
        pg_calls[0]++;
        return p;
      }
  }
  pg_check(0, "mmap", (uintptr_t)addr, len);
  return p;
}

int munmap(void *addr, size_t len) {
  bool whole = false;
  for (size_t i = 0; i < sizeof pg_odd / sizeof pg_odd[0] && !whole; i++)
    if (pg_odd[i].addr == (uintptr_t)addr && pg_odd[i].len == len) {
      pg_odd[i].addr = 0;
      whole = true;
    }
  if (whole)
    pg_calls[1]++;
  else
    pg_check(1, "munmap", (uintptr_t)addr, len);
  return (int)syscall(SYS_munmap, addr, len);
}

int madvise(void *addr, size_t len, int advice) {
  pg_check(2, "madvise", (uintptr_t)addr, len);
  return (int)syscall(SYS_madvise, addr, len, advice);
}

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
  void *dest = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    dest = va_arg(ap, void *);
    va_end(ap);
  }
  pg_check(3, "mremap", (uintptr_t)old, old_len);
  pg_check(3, "mremap", (uintptr_t)dest, new_len);
  return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, dest);
}

static const size_t pg_sizes[] = {16 * KIB, 64 * KIB};

/* Assume page bytes per page from here on, and record. */
static void pg_start(size_t page) {
  __atomic_store_n(&_fa_os_page, page, __ATOMIC_RELAXED);
  memset(pg_calls, 0, sizeof pg_calls);
  pg_bad = 0;
  pg_page = page;
}

static void pg_stop(void) {
  pg_page = 0;
  ck_assert_msg(pg_bad == 0, "%u calls not aligned to the page; the first: %s", pg_bad,
                pg_first_bad);
  ck_assert_msg(fancy_validate_heap(), "heap invalid");
}

/* Huge blocks (more than 2 MiB): sizes that are not a multiple of 4, 16 or
 * 64 KiB are rounded up to the page; growing and shrinking them with
 * realloc (mremap in place, moved, and munmap of the tail) and taking a
 * warm cached mapping (its tail unmapped) keep every call aligned. */
START_TEST(test_huge_blocks_page_aligned) {
  size_t page = pg_sizes[_i];
  pg_start(page);
  static const size_t sizes[] = {2 * MIB + 1, 3 * MIB + 100, 5 * MIB + 4 * KIB + 1,
                                 9 * MIB - 4 * KIB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = fancy_malloc(sizes[i]);
    ck_assert_ptr_nonnull(p);
    size_t usable = fancy_malloc_usable_size(p);
    ck_assert_uint_ge(usable, sizes[i]);
    /* (checked mode reports the size asked for: its canary follows; a
     * block of 4 MiB and more is rounded up to a huge page, 2 MiB, a
     * multiple of every page size: README "Huge pages") */
    size_t step = sizes[i] >= 4 * MIB && _fa_os_thp_size() != 0 ? _fa_os_thp_size() : page;
    if (!_fa_opt.check)
      ck_assert_msg(usable % page == 0 && usable - sizes[i] < step,
                  "usable size %zu of a %zu-byte block: not rounded up to %zu", usable, sizes[i],
                  step);
    memset(p, 0x5a, sizes[i]);
    /* Grow by less than a page, grow a lot (may move), shrink. */
    p = fancy_realloc(p, sizes[i] + 100);
    ck_assert_ptr_nonnull(p);
    if (!_fa_opt.check) ck_assert_uint_eq(fancy_malloc_usable_size(p) % page, 0);
    p = fancy_realloc(p, sizes[i] + 7 * MIB + 12345);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p[sizes[i] - 1], 0x5a);
    p = fancy_realloc(p, sizes[i] / 2 + 2 * MIB + 3);
    ck_assert_ptr_nonnull(p);
    if (!_fa_opt.check) ck_assert_uint_eq(fancy_malloc_usable_size(p) % page, 0);
    ck_assert_uint_eq(p[2 * MIB], 0x5a);
    fancy_free(p);
  }
  /* A freed 8 MiB block stays mapped (FANCY_PURGE_DELAY); a slightly
   * smaller one takes it and unmaps the tail. */
  void *a = fancy_malloc(8 * MIB);
  ck_assert_ptr_nonnull(a);
  fancy_free(a);
  void *b = fancy_malloc(7 * MIB + 3 * KIB);
  ck_assert_ptr_nonnull(b);
  if (!_fa_opt.check) ck_assert_uint_eq(fancy_malloc_usable_size(b) % page, 0);
  fancy_free(b);
  fancy_trim(0);
  ck_assert_uint_gt(pg_calls[1], 0);   /* the test reached munmap... */
  ck_assert_uint_gt(pg_calls[3], 0);   /* ... and mremap */
  pg_stop();
}
END_TEST

/* Segments: freeing the spans of many medium and large blocks and
 * trimming purges them (madvise) in whole allocator pages, which are a
 * multiple of every Linux page size. */
START_TEST(test_segment_purges_page_aligned) {
  size_t page = pg_sizes[_i];
  pg_start(page);
  ck_assert_uint_eq(FA_PAGE_SIZE % page, 0);
  enum { N = 200 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) {
    size_t n = (i % 3 == 0) ? 40000 + 777 * (size_t)i : (size_t)(i % 7 + 1) * 70 * KIB + 5;
    blocks[i] = fancy_malloc(n);
    ck_assert_ptr_nonnull(blocks[i]);
    memset(blocks[i], i, n);
  }
  for (int i = 0; i < N; i++) fancy_free(blocks[i]);
  ck_assert_int_eq(fancy_trim(0), 1);
  ck_assert_uint_gt(pg_calls[2], 0);   /* the test reached madvise */
  pg_stop();
}
END_TEST

static Suite *pagesize_suite(void) {
  Suite *s = suite_create("pagesize");
  TCase *tc = tcase_create("page");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_huge_blocks_page_aligned, 0, 2);
  tcase_add_loop_test(tc, test_segment_purges_page_aligned, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(pagesize_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
