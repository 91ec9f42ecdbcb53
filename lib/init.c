/* SPDX-License-Identifier: MIT */
/*
 * init.c - process and thread set-up, fork handling and messages.
 *
 * The TLS heap pointer starts at _fa_heap_empty, so the very first malloc
 * of a thread fails its fast path and lands in _fa_malloc_generic, which
 * calls _fa_thread_init.  Process set-up runs once, from a constructor or
 * from the first allocation, whichever comes first; it may be re-entered
 * by the same thread (pthread_atfork may allocate), which then proceeds.
 */
#include "internal.h"

#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

/* The empty heap: every direct entry leads to a page with no free block. */
/* Statically initialised: another library's constructor may call malloc
 * before ours has run. */
fa_page_t _fa_page_empty;
fa_heap_t _fa_heap_empty = {
  .prof_left = INT64_MAX,
  .direct = {[0 ... FA_DIRECT_SIZE - 1] = &_fa_page_empty},
  .mdirect = {[0 ... FA_MEDIUM_CLASSES - 1] = &_fa_page_empty},
  .domain = &_fa_domain_default,
};
FA_TLS fa_heap_t *_fa_tls_heap = &_fa_heap_empty;
uintptr_t _fa_secret;
#if FA_TEST_HOOKS
void (*_fa_test_hook)(fa_test_point_t point, void *arg);
_Atomic uint64_t _fa_test_clock_skew;
#endif
/* libfancymalloc (override.c) defines this as 1. */
__attribute__((weak)) int _fa_override_mode = 0;   /* not const: gcc would fold a
                                                       * weak const default */

static pthread_key_t fa_thread_key;
/* FANCY_STATS=1: a private duplicate of stderr, taken at start-up,
 * because many programs (coreutils among them) close stderr in an atexit
 * handler that runs before the exit report. */
static int fa_stats_fd = -1;
static _Atomic int fa_init_state;          /* 0 no, 1 running, 2 done */
static FA_TLS bool fa_tls_in_init;

/* ------------------------------------------------------------------------
 * Messages: formatted without malloc or stdio, written with one write(2).
 * ---------------------------------------------------------------------- */
static size_t fa_put_num(char *buf, size_t pos, size_t cap, uint64_t v, unsigned base, bool neg) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v && n < sizeof tmp);
  if (neg && pos < cap) buf[pos++] = '-';
  while (n && pos < cap) buf[pos++] = tmp[--n];
  return pos;
}

/* A small vsnprintf: %s %d %u %zu %x %p %%.  Always NUL-terminates. */
size_t _fa_format(char *buf, size_t cap, const char *fmt, va_list ap) {
  size_t pos = 0;
  if (cap == 0) return 0;
  cap--;
  for (const char *f = fmt; *f && pos < cap; f++) {
    if (*f != '%') { buf[pos++] = *f; continue; }
    f++;
    bool z = false;
    if (*f == 'z') { z = true; f++; }
    switch (*f) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (s == NULL) s = "(null)";
      while (*s && pos < cap) buf[pos++] = *s++;
      break;
    }
    case 'd': {
      long long v = z ? (long long)va_arg(ap, ssize_t) : va_arg(ap, int);
      pos = fa_put_num(buf, pos, cap, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, v < 0);
      break;
    }
    case 'u': {
      uint64_t v = z ? va_arg(ap, size_t) : va_arg(ap, unsigned);
      pos = fa_put_num(buf, pos, cap, v, 10, false);
      break;
    }
    case 'x': {
      uint64_t v = z ? va_arg(ap, size_t) : va_arg(ap, unsigned);
      pos = fa_put_num(buf, pos, cap, v, 16, false);
      break;
    }
    case 'p': {
      if (pos + 2 <= cap) { buf[pos++] = '0'; buf[pos++] = 'x'; }
      pos = fa_put_num(buf, pos, cap, (uintptr_t)va_arg(ap, void *), 16, false);
      break;
    }
    case '%': buf[pos++] = '%'; break;
    default: if (*f == '\0') f--; break;
    }
  }
  buf[pos] = '\0';
  return pos;
}

static void fa_message(const char *fmt, va_list ap) {
  char buf[512];
  size_t n = 12;
  memcpy(buf, "fancyalloc: ", n);
  n += _fa_format(buf + n, sizeof buf - n - 1, fmt, ap);
  buf[n++] = '\n';
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w <= 0) break;
    p += w;
    n -= (size_t)w;
  }
}

void _fa_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fa_message(fmt, ap);
  va_end(ap);
  abort();
}

void _fa_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fa_message(fmt, ap);
  va_end(ap);
}

uint64_t _fa_clock_ms(void) {
  struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
#if FA_TEST_HOOKS
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
         atomic_load_explicit(&_fa_test_clock_skew, memory_order_relaxed);
#else
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
}

/* ------------------------------------------------------------------------
 * fork: take every global lock before, release them (parent and child)
 * (child) after.  In the child only the forking thread survives; the
 * heaps of the other threads are orphaned there (heap.c).
 * ---------------------------------------------------------------------- */
static void fa_atfork_prepare(void) {
  pthread_mutex_lock(&_fa_domains_lock);
  pthread_mutex_lock(&_fa_heaps_lock);
  _fa_heaps_lock_all();
  pthread_mutex_lock(&_fa_segments_lock);
  pthread_mutex_lock(&_fa_huge_lock);
  _fa_os_lock();
}

static void fa_atfork_parent(void) {
  _fa_os_unlock();
  pthread_mutex_unlock(&_fa_huge_lock);
  pthread_mutex_unlock(&_fa_segments_lock);
  _fa_heaps_unlock_all();
  pthread_mutex_unlock(&_fa_heaps_lock);
  pthread_mutex_unlock(&_fa_domains_lock);
}

/* The forking thread took the locks in prepare and is the thread that
 * runs on in the child, so it may release them there. */
static void fa_atfork_child(void) {
  _fa_reclaim_after_fork_child();
  _fa_limits_after_fork_child();
  fa_heap_t *self = _fa_tls_heap;
  _fa_heaps_after_fork_child(self == &_fa_heap_empty ? NULL : self);
  _fa_os_unlock();
  pthread_mutex_unlock(&_fa_huge_lock);
  pthread_mutex_unlock(&_fa_segments_lock);
  _fa_heaps_reinit_locks();
  pthread_mutex_unlock(&_fa_heaps_lock);
  pthread_mutex_unlock(&_fa_domains_lock);
}

/* ------------------------------------------------------------------------
 * Thread exit: the key's destructor hands the heap's memory back.
 * ---------------------------------------------------------------------- */
static void fa_thread_done(void *value) {
  fa_heap_t *heap = value;
  if (heap == NULL || heap == &_fa_heap_empty) return;
  _fa_tls_heap = &_fa_heap_empty;   /* later mallocs make a fresh heap */
  _fa_heap_done(heap);
}

static void fa_secret_init(void) {
  uintptr_t s = (uintptr_t)&fa_thread_key ^ (uintptr_t)_fa_clock_ms();
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  if (r != NULL) {
    uintptr_t v;
    memcpy(&v, r, sizeof v);
    s ^= v;
  }
  _fa_secret = s | 1;
}

static void fa_process_init_once(void) {
  fa_tls_in_init = true;
  _fa_options_init();
  _fa_limits_init();   /* FANCY_MEMORY_LIMIT=auto: the cgroup's */
  _fa_domain_default_init();
  /* Under memcheck every call goes through the checked slow path, which
   * tells memcheck about each block (track.h).  Only memcheck: callgrind
   * must count the real fast paths.  An explicit FANCY_CHECK wins. */
  if (fa_running_on_valgrind() && getenv("FANCY_CHECK") == NULL) {
    const char *pre = getenv("LD_PRELOAD");
    if (pre != NULL && strstr(pre, "vgpreload_memcheck") != NULL) _fa_opt.check = true;
  }
  fa_secret_init();
  (void)fa_os_page_size();   /* the kernel's page size, once (os.h) */
  _fa_unit_map_init();
  if (pthread_key_create(&fa_thread_key, fa_thread_done) != 0)
    _fa_fatal("cannot create the thread-exit key");
  /* From here on the first allocation of this thread can succeed, which
   * pthread_atfork may need. */
  atomic_store_explicit(&fa_init_state, 2, memory_order_release);
  pthread_atfork(fa_atfork_prepare, fa_atfork_parent, fa_atfork_child);
  _fa_prof_init();
  if (_fa_opt.stats) fa_stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  if (_fa_opt.verbose) {
    _fa_warn("libfancyalloc %s%s", PACKAGE_VERSION, _fa_override_mode ? " (malloc replacement)" : "");
    _fa_options_print();
    _fa_limits_print();
  }
  fa_tls_in_init = false;
}

void _fa_process_init(void) {
  if (fa_likely(atomic_load_explicit(&fa_init_state, memory_order_acquire) == 2)) return;
  int expected = 0;
  if (atomic_compare_exchange_strong(&fa_init_state, &expected, 1)) {
    fa_process_init_once();
    return;
  }
  if (fa_tls_in_init) return;     /* re-entered from our own set-up */
  while (atomic_load_explicit(&fa_init_state, memory_order_acquire) != 2) sched_yield();
}

/* Give the calling thread a heap.  NULL when no memory can be had. */
fa_heap_t *_fa_thread_init(void) {
  _fa_process_init();
  fa_heap_t *heap = _fa_heap_new(&_fa_domain_default);
  if (heap == NULL) return NULL;
  /* Set the TLS pointer before pthread_setspecific, which may allocate
   * (glibc callocs the second-level key array) and so re-enter malloc. */
  _fa_tls_heap = heap;
  pthread_setspecific(fa_thread_key, heap);
  if (_fa_domain_default.reclaim) _fa_reclaim_maybe_start();
  return heap;
}

__attribute__((constructor)) static void fa_constructor(void) {
  _fa_process_init();
}

__attribute__((destructor)) static void fa_destructor(void) {
  if (!_fa_opt.stats) return;
  FILE *out = fa_stats_fd >= 0 ? fdopen(fa_stats_fd, "w") : NULL;
  if (_fa_opt.stats_json) fancy_stats_json_print(out ? out : stderr);
  else fancy_print_stats(out ? out : stderr);
  if (out) fclose(out);
  fa_stats_fd = -1;
}
