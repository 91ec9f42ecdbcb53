/* SPDX-License-Identifier: MIT */
/*
 * rss_sample.c - an LD_PRELOAD helper (not built by make) that says where a
 * program's resident memory is.  A thread of its own samples
 * /proc/self/statm and, under libfancymalloc, fancy_stats_get() every
 * RSS_SAMPLE_US microseconds (default 1000); at exit it prints to stderr
 * the sample with the highest RSS and the highest value seen of each
 * figure.  With RSS_SAMPLE_MAP=1 it also prints, at the highest RSS and at
 * exit, each private anonymous mapping's resident pages (mincore), split
 * into the first 64 KiB of each 4 MiB-aligned unit (a segment's header)
 * and the rest, and how many 64 KiB pages have any page resident.  With
 * RSS_SAMPLE_TRACE=1 it prints every sample (one `rss_trace` line).  Its
 * own thread adds one thread heap (one segment) to fancy's figures.
 *
 *   cc -O2 -shared -fPIC -Iinclude -o rss_sample.so bench/rss_sample.c -pthread
 *   LD_PRELOAD="lib/.libs/libfancymalloc.so ./rss_sample.so" RSS_SAMPLE_MAP=1 prog ...
 *
 * Used for bench/README.md, "Where fancy loses on the public suite, and why".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <stdint.h>
#include <fancyalloc.h>

#pragma weak fancy_stats_get

typedef struct {
  double t;
  size_t rss, file, live, committed, mapped, segments, cached, abandoned, threads, resident;
} sample_t;

static sample_t peak, maxv;
static char map_peak[16384], map_now[16384];
static int map_on, trace_on;
static void map_scan(char *out, size_t cap);
static volatile int stop;
static struct timespec t0;
static size_t pagesz;

static void take(sample_t *s) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  memset(s, 0, sizeof *s);
  if (n > 0) {
    unsigned long sz, res, shared;
    buf[n] = 0;
    if (sscanf(buf, "%lu %lu %lu", &sz, &res, &shared) == 3) {
      s->rss = res * pagesz;
      s->file = shared * pagesz;
    }
  }
  if (fancy_stats_get) {
    static fancy_stats_t st;
    if (fancy_stats_get(&st, sizeof st) == 0) {
      s->live = st.bytes_live; s->committed = st.bytes_committed; s->mapped = st.bytes_mapped;
      s->segments = st.segments; s->cached = st.segments_cached;
      s->abandoned = st.segments_abandoned; s->threads = st.threads;
      s->resident = st.bytes_resident;
    }
  }
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  s->t = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
}

#define MAXF(f) if (s.f > maxv.f) maxv.f = s.f
static void record(void) {
  sample_t s;
  take(&s);
  if (trace_on)
    fprintf(stderr, "rss_trace t=%.4f rss=%.1f live=%.1f committed=%.1f segments=%zu cached=%zu abandoned=%zu threads=%zu\n",
            s.t, s.rss / 1048576.0, s.live / 1048576.0, s.committed / 1048576.0, s.segments, s.cached,
            s.abandoned, s.threads);
  if (s.rss > peak.rss) { peak = s; if (map_on) map_scan(map_peak, sizeof map_peak); }
  MAXF(rss); MAXF(live); MAXF(committed); MAXF(mapped); MAXF(segments);
  MAXF(cached); MAXF(abandoned); MAXF(threads); MAXF(resident);
}

static void *sampler(void *arg) {
  long us = arg ? atol((const char *)arg) : 1000;
  struct timespec d = { us / 1000000, (us % 1000000) * 1000 };
  while (!stop) { record(); nanosleep(&d, NULL); }
  return NULL;
}

#define MB(x) ((double)(x) / 1048576.0)
static void report(const char *what, const sample_t *s) {
  fprintf(stderr, "rss_sample %s: t=%.3fs rss=%.1f (file %.1f) live=%.1f committed=%.1f mapped=%.1f "
          "resident=%.1f MiB segments=%zu cached=%zu abandoned=%zu threads=%zu\n", what, s->t,
          MB(s->rss), MB(s->file), MB(s->live), MB(s->committed), MB(s->mapped), MB(s->resident),
          s->segments, s->cached, s->abandoned, s->threads);
}

__attribute__((constructor)) static void start(void) {
  pthread_t th;
  pagesz = (size_t)sysconf(_SC_PAGESIZE);
  map_on = getenv("RSS_SAMPLE_MAP") != NULL;
  trace_on = getenv("RSS_SAMPLE_TRACE") != NULL;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (pthread_create(&th, NULL, sampler, getenv("RSS_SAMPLE_US")) == 0) pthread_detach(th);
}

/* RSS_SAMPLE_MAP=1: at each new peak of RSS and at exit, for each private
 * anonymous mapping: its resident 4 KiB pages (mincore), split into the
 * first 64 KiB of each 4 MiB-aligned unit (where a segment keeps its
 * header) and the rest, and how many 64 KiB pages have any resident page. */
static void map_scan(char *out, size_t cap) {
  static char line[512];
  static unsigned char vec[1024];
  size_t len = 0, tot = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return;
  out[0] = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off; char perm[8]; int inode = -1, n = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %*s %d %n", &lo, &hi, perm, &off, &inode, &n) < 5) continue;
    if (inode != 0 || perm[0] != 'r' || line[n] == '[') continue;
    size_t res = 0, hdr = 0, p64 = 0, units = 0;
    for (unsigned long u = lo & ~((1UL << 22) - 1); u < hi; u += 1UL << 22) {
      unsigned long a = u < lo ? lo : u, b = u + (1UL << 22) > hi ? hi : u + (1UL << 22);
      size_t cur = (size_t)-1, r0 = res;
      if (mincore((void *)a, b - a, vec) != 0) continue;
      for (unsigned long i = 0; i < (b - a) / pagesz; i++) {
        if (!(vec[i] & 1)) continue;
        unsigned long addr = a + i * pagesz;
        res++;
        if (addr - u < 65536) hdr++;
        if ((addr - u) >> 16 != cur) { cur = (addr - u) >> 16; p64++; }
      }
      if (res > r0) units++;
    }
    tot += res;
    if (res * pagesz >= 64 * 1024 && len + 200 < cap)
      len += (size_t)snprintf(out + len, cap - len,
                              "rss_map %lx-%lx (%lu KiB): resident %zu KiB in %zu units; first 64K of units %zu KiB; 64K pages touched %zu\n",
                              lo, hi, (hi - lo) >> 10, res * pagesz >> 10, units, hdr * pagesz >> 10, p64);
  }
  fclose(f);
  if (len + 100 < cap)
    snprintf(out + len, cap - len, "rss_map all private anonymous resident %zu KiB\n", tot * pagesz >> 10);
}

__attribute__((destructor)) static void end(void) {
  record();
  stop = 1;
  report("at peak", &peak);
  report("maxima ", &maxv);
  if (map_on) { map_scan(map_now, sizeof map_now); fprintf(stderr, "-- at peak\n%s-- at exit\n%s", map_peak, map_now); }
}
