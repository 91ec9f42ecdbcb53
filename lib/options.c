/* SPDX-License-Identifier: MIT */
/*
 * options.c - run-time options, read once from the environment.
 *
 * Every option has a build-time default (configure switch -> config.h) and
 * a FANCY_<NAME> variable that overrides it for one process.  Parsing uses
 * no malloc and no stdio, since it runs inside the first allocation.  A
 * malformed value gives a one-line warning and the default.
 */
#include "internal.h"

#include <stdlib.h>

fa_options_t _fa_opt = {
  .arena_size = (size_t)64 << 20,
  .memory_limit = 0,
  .huge_pages = FA_DEFAULT_HUGE_PAGES,
  .huge_blocks = true,
  .populate = FA_DEFAULT_POPULATE,
  .reclaim = FA_DEFAULT_RECLAIM,
  .purge_delay = 100,
  .segment_cache = 8,
  .stats = false,
  .verbose = false,
  .check = FA_DEFAULT_CHECK,
  .mmap_threshold = FA_LARGE_MAX,
  .prof_sample = (size_t)512 << 10,
};

typedef enum { FA_OPT_BOOL, FA_OPT_SIZE, FA_OPT_COUNT } fa_opt_type_t;

typedef struct fa_option_desc_s {
  const char *name;       /* environment variable */
  fa_opt_type_t type;
  void *value;
  const char *doc;
} fa_option_desc_t;

static const fa_option_desc_t fa_option_table[] = {
  {"FANCY_ARENA_SIZE", FA_OPT_SIZE, &_fa_opt.arena_size,
   "per-thread arena budget (bytes, k/m/g suffix)"},
  {"FANCY_MEMORY_LIMIT", FA_OPT_SIZE, &_fa_opt.memory_limit,
   "cap on memory mapped by the allocator (0 = none; auto[:P] = P% of the cgroup's)"},
  {"FANCY_MEMORY_SOFT_LIMIT", FA_OPT_SIZE, &_fa_opt.soft_limit,
   "resident memory above which all free memory is returned at once (0 = none; auto[:P])"},
  {"FANCY_HUGE_PAGES", FA_OPT_BOOL, &_fa_opt.huge_pages, "madvise(MADV_HUGEPAGE)"},
  {"FANCY_HUGE_BLOCKS", FA_OPT_BOOL, &_fa_opt.huge_blocks,
   "blocks of 4 MiB and more (not calloc's) in 2 MiB steps, with huge pages"},
  {"FANCY_POPULATE", FA_OPT_BOOL, &_fa_opt.populate, "MAP_POPULATE segments"},
  {"FANCY_RECLAIM", FA_OPT_BOOL, &_fa_opt.reclaim, "background reclamation thread"},
  {"FANCY_PURGE_DELAY", FA_OPT_COUNT, &_fa_opt.purge_delay,
   "ms before free memory is returned to the OS"},
  {"FANCY_SEGMENT_CACHE", FA_OPT_COUNT, &_fa_opt.segment_cache,
   "empty 4 MiB segments kept for reuse"},
  {"FANCY_STATS", FA_OPT_BOOL, &_fa_opt.stats, "print statistics at exit"},
  {"FANCY_VERBOSE", FA_OPT_BOOL, &_fa_opt.verbose, "print the options at start-up"},
  {"FANCY_CHECK", FA_OPT_BOOL, &_fa_opt.check, "canaries that catch buffer overruns"},
  {"FANCY_PROF", FA_OPT_BOOL, &_fa_opt.prof, "sampled heap profiling"},
  {"FANCY_PROF_SAMPLE", FA_OPT_SIZE, &_fa_opt.prof_sample,
   "mean bytes allocated between two samples"},
  {"FANCY_PROF_FINAL", FA_OPT_BOOL, &_fa_opt.prof_final, "write the leak profile at exit"},
  {"FANCY_PROF_SIGNAL", FA_OPT_COUNT, &_fa_opt.prof_signal,
   "signal number that asks for a heap profile (0 = none)"},
};
#define FA_OPTION_COUNT (sizeof(fa_option_table) / sizeof(fa_option_table[0]))

static bool fa_streq_nocase(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
    if (ca != *b) return false;
  }
  return *a == *b;
}

static bool fa_parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"1", "yes", "on", "true", "y"};
  static const char *const no[] = {"0", "no", "off", "false", "n"};
  for (size_t i = 0; i < 5; i++) {
    if (fa_streq_nocase(s, yes[i])) { *out = true; return true; }
    if (fa_streq_nocase(s, no[i])) { *out = false; return true; }
  }
  return false;
}

/* Decimal number with an optional k/m/g/t suffix (powers of 1024) and an
 * optional trailing 'b' or "ib": "64m", "64MiB", "1g", "4096". */
bool _fa_parse_size(const char *s, size_t *out) {
  if (s == NULL || *s == '\0') return false;
  uint64_t v = 0;
  const char *c = s;
  if (*c < '0' || *c > '9') return false;
  for (; *c >= '0' && *c <= '9'; c++) {
    uint64_t digit = (uint64_t)(*c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;   /* v * 10 + digit overflows */
    v = v * 10 + digit;
  }
  unsigned shift = 0;
  switch (*c | 0x20) {
  case 'k': shift = 10; c++; break;
  case 'm': shift = 20; c++; break;
  case 'g': shift = 30; c++; break;
  case 't': shift = 40; c++; break;
  default: break;
  }
  if (shift && (*c | 0x20) == 'i') c++;
  if ((*c | 0x20) == 'b') c++;
  if (*c != '\0') return false;
  if (shift && v > (UINT64_MAX >> shift)) return false;
  v <<= shift;
  if (v > SIZE_MAX) return false;
  *out = (size_t)v;
  return true;
}

/* A count or a number of milliseconds: plain decimal digits, no suffix
 * (FANCY_PURGE_DELAY=2k is not 2048 ms, it is a mistake). */
static bool fa_parse_count(const char *s, size_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  size_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    size_t digit = (size_t)(*s - '0');
    if (v > (SIZE_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  if (*s != '\0') return false;
  *out = v;
  return true;
}

/* "auto" or "auto:P" (1 <= P <= 100): 1 and *pct set; 0: another value;
 * -1: auto with a bad percentage. */
static int fa_parse_auto(const char *s, size_t *pct) {
  if (strncmp(s, "auto", 4) != 0) return 0;
  if (s[4] == '\0') {
    *pct = FA_AUTO_PERCENT;
    return 1;
  }
  size_t v;
  if (s[4] != ':' || !fa_parse_count(s + 5, &v) || v < 1 || v > 100) return -1;
  *pct = v;
  return 1;
}

void _fa_options_init(void) {
  for (size_t i = 0; i < FA_OPTION_COUNT; i++) {
    const fa_option_desc_t *d = &fa_option_table[i];
    const char *s = getenv(d->name);   /* getenv does not allocate */
    if (s == NULL) continue;
    bool ok = false;
    if (d->value == &_fa_opt.stats && fa_streq_nocase(s, "json")) {
      _fa_opt.stats = _fa_opt.stats_json = true;   /* FANCY_STATS=json */
      continue;
    }
    if (d->value == &_fa_opt.memory_limit || d->value == &_fa_opt.soft_limit) {
      size_t *pct = d->value == &_fa_opt.memory_limit ? &_fa_opt.memory_limit_auto
                                                      : &_fa_opt.soft_limit_auto;
      int r = fa_parse_auto(s, pct);   /* auto, auto:P (limit.c) */
      if (r > 0) continue;
      if (r < 0) {
        _fa_warn("ignoring %s=\"%s\" (auto:P takes a percentage from 1 to 100); no limit",
                 d->name, s);
        continue;
      }
    }
    switch (d->type) {
    case FA_OPT_BOOL: ok = fa_parse_bool(s, (bool *)d->value); break;
    case FA_OPT_SIZE: ok = _fa_parse_size(s, (size_t *)d->value); break;
    case FA_OPT_COUNT: {
      size_t v;
      ok = fa_parse_count(s, &v);
      if (ok) {
        if (d->value == &_fa_opt.purge_delay) _fa_opt.purge_delay = v;
        else *(size_t *)d->value = v;
      }
      break;
    }
    }
    if (!ok) _fa_warn("ignoring %s=\"%s\" (%s); using the default", d->name, s, d->doc);
  }
  /* A budget below one segment would make every heap give back its only
   * segment on each emptying; one segment is the floor. */
  if (_fa_opt.arena_size < FA_SEGMENT_SIZE) _fa_opt.arena_size = FA_SEGMENT_SIZE;
  if (_fa_opt.prof_sample == 0) _fa_opt.prof_sample = 1;   /* every allocation */
}

void _fa_options_print(void) {
  for (size_t i = 0; i < FA_OPTION_COUNT; i++) {
    const fa_option_desc_t *d = &fa_option_table[i];
    size_t v;
    switch (d->type) {
    case FA_OPT_BOOL: v = *(bool *)d->value; break;
    case FA_OPT_COUNT:
      v = (d->value == &_fa_opt.purge_delay) ? (size_t)_fa_opt.purge_delay : *(size_t *)d->value;
      break;
    default: v = *(size_t *)d->value; break;
    }
    _fa_warn("option %s=%zu (%s)", d->name, v, d->doc);
  }
}
