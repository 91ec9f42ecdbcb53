/* SPDX-License-Identifier: MIT */
/*
 * limits_helper.c - FANCY_MEMORY_LIMIT=auto and FANCY_MEMORY_SOFT_LIMIT
 * seen from a program (tests/cgroup/test_cgroup_fake.sh drives it).
 * Linked with the test build of the core (tests/libfancytest.la), whose
 * cgroup files are read under FA_TEST_CGROUP_ROOT, a fake tree.
 *
 *   limits_helper limits             print "limit=N soft=N"
 *   limits_helper reread FILE VALUE  write VALUE into FILE (a fake
 *        memory.max), then allocate and free until the limit changes;
 *        print "limit=OLD -> NEW" (exit 0), or exit 1 after 5 s
 *   limits_helper soft               the main thread allocates 12 MiB and
 *        frees it, a second one then allocates 12 MiB, the main thread
 *        frees an 8 MiB block: print the allocator's resident bytes, the
 *        soft limit and its hits ("resident=N soft=N hits=N")
 *   limits_helper hard               allocate 1 MiB blocks until NULL:
 *        print "mib=N refusals=N errno=ENOMEM"
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fancyalloc.h>

#define MIB ((size_t)1 << 20)

static fancy_stats_t stats(void) {
  fancy_stats_t st;
  memset(&st, 0, sizeof st);
  fancy_stats_get(&st, sizeof st);
  return st;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { N = 64 };

/* 12 MiB in N blocks of 192 KiB (large spans) into b, written with byte. */
static void alloc_written(void **b, int byte) {
  for (int i = 0; i < N; i++) {
    b[i] = fancy_malloc(192 << 10);
    if (b[i] == NULL) {
      fprintf(stderr, "limits_helper: malloc failed under the soft limit\n");
      exit(1);
    }
    memset(b[i], byte, 192 << 10);
  }
}

/* The 12 MiB, written, then freed. */
static void *phase(void *arg) {
  (void)arg;   /* (a thread's start routine's shape) */
  void *b[N];
  alloc_written(b, 1);
  for (int i = 0; i < N; i++) fancy_free(b[i]);
  return NULL;
}

static void *hold(void *arg) {
  /* the second thread keeps its blocks (its heap is live at the end) */
  alloc_written(arg, 2);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "limits") == 0) {
    fancy_stats_t st = stats();
    printf("limit=%zu soft=%zu\n", st.memory_limit, st.soft_limit);
    return 0;
  }
  if (strcmp(argv[1], "reread") == 0 && argc == 4) {
    size_t before = stats().memory_limit;
    int fd = open(argv[2], O_WRONLY | O_TRUNC);
    if (fd < 0 || write(fd, argv[3], strlen(argv[3])) < 0 || close(fd) != 0) return 2;
    double t0 = now_s();
    while (now_s() - t0 < 5.0) {
      /* medium blocks: every call takes the slow path, whose heartbeat
       * re-reads the limits on their clock */
      for (int i = 0; i < 1000; i++) fancy_free(fancy_malloc(40000));
      size_t after = stats().memory_limit;
      if (after != before) {
        printf("limit=%zu -> %zu\n", before, after);
        return 0;
      }
      usleep(10000);
    }
    printf("limit=%zu unchanged after 5 s\n", before);
    return 1;
  }
  if (strcmp(argv[1], "soft") == 0) {
    /* This thread's heap keeps the 12 MiB it frees, warm (the test sets
     * a long FANCY_PURGE_DELAY), while another thread allocates 12 MiB
     * of fresh memory: 24 MiB resident without a soft limit. */
    phase(NULL);
    void *held[N];
    pthread_t t;
    pthread_create(&t, NULL, hold, held);
    pthread_join(t, NULL);
    /* A freed huge block: cached for reuse (8 MiB more resident) below
     * the soft limit, unmapped at once above it. */
    void *h = fancy_malloc(8 * MIB);
    if (h == NULL) return 1;
    memset(h, 3, 8 * MIB);
    fancy_free(h);
    fancy_stats_t st = stats();
    printf("resident=%zu soft=%zu hits=%zu\n", st.bytes_resident, st.soft_limit,
           st.soft_limit_hits);
    for (int i = 0; i < N; i++) fancy_free(held[i]);
    return 0;
  }
  if (strcmp(argv[1], "hard") == 0) {
    void *head = NULL;
    size_t mib = 0;
    while (mib < 4096) {
      void **b = fancy_malloc(MIB);
      if (b == NULL) break;
      *b = head;
      head = b;
      mib++;
    }
    int err = errno;
    fancy_stats_t st = stats();
    while (head != NULL) {
      void *next = *(void **)head;
      fancy_free(head);
      head = next;
    }
    printf("mib=%zu refusals=%zu errno=%s\n", mib, st.memory_limit_hits,
           err == ENOMEM ? "ENOMEM" : "other");
    return 0;
  }
  return 2;
}
