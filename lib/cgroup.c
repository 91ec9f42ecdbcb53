/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c - the memory limits of the process's control group, read from
 * the files the kernel exports (FANCY_MEMORY_LIMIT=auto,
 * FANCY_MEMORY_SOFT_LIMIT=auto; the policy is in limit.c).
 *
 * /proc/self/cgroup names the process's cgroup in each hierarchy: the line
 * "0::<path>" in the unified one (cgroup v2), "<n>:...memory...:<path>" in
 * the v1 memory hierarchy.  /proc/self/mountinfo says where that hierarchy
 * is mounted (filesystem type cgroup2, or cgroup with the memory option)
 * and which of its directories the mount shows (field 4, "root": "/" on a
 * host, the container's own cgroup inside a container without a cgroup
 * namespace).  The limit is read in the cgroup's directory and in every
 * ancestor up to the mount point, and the tightest wins: a parent's
 * memory.max binds its children even when theirs say "max".
 *   v2: memory.max (hard), memory.high (soft: the kernel throttles and
 *       reclaims above it).  "max" means no limit at that level.
 *   v1: memory.limit_in_bytes; "no limit" reads as a huge number (the
 *       largest page-aligned long), taken as none.
 * A v2 hierarchy with the memory controller wins over v1 (hybrid systems
 * mount both; only one of them has the memory controller).
 *
 * Runs inside the first malloc and on the reclamation clock: no malloc, no
 * stdio, fixed buffers; an over-long line of mountinfo is skipped.
 * Contents that are neither a number nor "max" give one warning line and
 * no limit (res->garbage names the file).
 */
#include "internal.h"

/* v1 reports "no limit" as LONG_MAX rounded down to a page; anything this
 * large is no limit on any machine. */
#define FA_CGROUP_UNLIMITED ((uint64_t)1 << 60)

/* dst = a + b (+ c), truncated to cap; false if it did not fit. */
static bool fa_path_join(char *dst, size_t cap, const char *a, const char *b, const char *c) {
  size_t n = 0;
  const char *parts[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    for (const char *s = parts[i]; s != NULL && *s; s++) {
      if (n + 1 >= cap) return false;
      dst[n++] = *s;
    }
  dst[n] = '\0';
  return true;
}

/* A limit file's contents: a decimal number of bytes, or "max", each with
 * an optional newline.  1: a limit in *out; 0: no limit; -1: garbage. */
static int fa_parse_limit(const char *s, uint64_t *out) {
  if (strncmp(s, "max", 3) == 0 && (s[3] == '\0' || (s[3] == '\n' && s[4] == '\0'))) return 0;
  if (*s < '0' || *s > '9') return -1;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    uint64_t d = (uint64_t)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (*s == '\n') s++;
  if (*s != '\0') return -1;
  if (v >= FA_CGROUP_UNLIMITED) return 0;
  *out = v;
  return 1;
}

/* The tightest value of file over dir and its ancestors down to (and
 * including) the mount point mnt: 0 when none sets one.  *where gets the
 * file that set it; a file with garbage stops the walk (-1). */
static int fa_walk_limit(const char *mnt, const char *dir, const char *file, uint64_t *out,
                         char *where, size_t where_cap, char *bad, size_t bad_cap) {
  char path[FA_CGROUP_PATH_MAX];
  char cur[FA_CGROUP_PATH_MAX];
  char buf[64];
  size_t mlen = strlen(mnt);
  if (!fa_path_join(cur, sizeof cur, dir, NULL, NULL)) return 0;
  uint64_t best = 0;
  for (;;) {
    if (fa_path_join(path, sizeof path, cur, "/", file) &&
        _fa_read_file(path, buf, sizeof buf) >= 0) {
      uint64_t v;
      int r = fa_parse_limit(buf, &v);
      if (r < 0) {
        fa_path_join(bad, bad_cap, path, NULL, NULL);
        return -1;
      }
      if (r > 0 && (best == 0 || v < best)) {
        best = v;
        fa_path_join(where, where_cap, path, NULL, NULL);
      }
    }
    /* up one directory, never above the mount point */
    size_t len = strlen(cur);
    if (len <= mlen) break;
    while (len > mlen && cur[len - 1] != '/') len--;
    while (len > mlen && cur[len - 1] == '/') len--;
    cur[len] = '\0';
  }
  *out = best;
  return 0;
}

/* Split the n-th (0-based) space-separated field of line into out. */
static bool fa_field(const char *line, int n, char *out, size_t cap) {
  const char *s = line;
  for (int i = 0; i < n; i++) {
    s = strchr(s, ' ');
    if (s == NULL) return false;
    s++;
  }
  size_t len = 0;
  while (s[len] && s[len] != ' ' && s[len] != '\n') len++;
  if (len + 1 > cap) return false;
  memcpy(out, s, len);
  out[len] = '\0';
  return true;
}

/* Does a comma-separated list hold word? */
static bool fa_has_word(const char *list, const char *word) {
  size_t wl = strlen(word);
  for (const char *s = list; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == wl && strncmp(s, word, wl) == 0) return true;
    if (e == NULL) break;
    s = e + 1;
  }
  return false;
}

/* The process's cgroup path in hierarchy v2 (want_v1 false) or the v1
 * memory hierarchy, from /proc/self/cgroup. */
static bool fa_own_cgroup(const char *root, bool want_v1, char *out, size_t cap) {
  char path[FA_CGROUP_PATH_MAX];
  char buf[4096];
  if (!fa_path_join(path, sizeof path, root, "/proc/self/cgroup", NULL)) return false;
  if (_fa_read_file(path, buf, sizeof buf) < 0) return false;
  for (char *line = buf; *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 != NULL) {
      *c2 = '\0';
      bool match = want_v1 ? fa_has_word(c1 + 1, "memory")
                           : (strncmp(line, "0:", 2) == 0 && c1[1] == '\0');
      if (match) return fa_path_join(out, cap, c2 + 1, NULL, NULL);
    }
    if (!nl) break;
    line = nl + 1;
  }
  return false;
}

typedef struct fa_mount_query_s {
  const char *root;
  bool want_v1;
  char *mnt, *mroot;
  size_t mcap, rcap;
} fa_mount_query_t;

/* A line of mountinfo: "id parent maj:min root mountpoint options
 * [optional...] - type source superopts".  One cut short is skipped. */
static int fa_mount_line(char *line, bool cut, void *arg) {
  fa_mount_query_t *q = arg;
  char *sep = strstr(line, " - ");
  char type[32], super[256];
  if (cut || sep == NULL || !fa_field(sep + 3, 0, type, sizeof type) ||
      !fa_field(sep + 3, 2, super, sizeof super))
    return 0;
  bool match = q->want_v1 ? (strcmp(type, "cgroup") == 0 && fa_has_word(super, "memory"))
                          : strcmp(type, "cgroup2") == 0;
  char point[FA_CGROUP_PATH_MAX];
  return match && fa_field(line, 3, q->mroot, q->rcap) && fa_field(line, 4, point, sizeof point) &&
         fa_path_join(q->mnt, q->mcap, q->root, point, NULL);
}

/* The mount of the hierarchy (type cgroup2, or cgroup with option memory)
 * from /proc/self/mountinfo: its mount point (prefixed with root) and the
 * directory of the hierarchy it shows. */
static bool fa_find_mount(const char *root, bool want_v1, char *mnt, size_t mcap, char *mroot,
                          size_t rcap) {
  char path[FA_CGROUP_PATH_MAX];
  if (!fa_path_join(path, sizeof path, root, "/proc/self/mountinfo", NULL)) return false;
  fa_mount_query_t q = {root, want_v1, mnt, mroot, mcap, rcap};
  return _fa_read_lines(path, fa_mount_line, &q) > 0;
}

/* The cgroup's directory: the mount point plus the part of the cgroup's
 * path below the mount's root (all of it when the root is "/"; nothing
 * when the mount shows the cgroup itself, as in a container). */
static bool fa_cgroup_dir(const char *mnt, const char *mroot, const char *cg, char *out, size_t cap) {
  size_t rl = strlen(mroot);
  const char *rest = cg;
  if (strcmp(mroot, "/") == 0) rest = cg;
  else if (strncmp(cg, mroot, rl) == 0 && (cg[rl] == '/' || cg[rl] == '\0')) rest = cg + rl;
  else rest = "";   /* the mount shows another part of the tree: its top */
  if (strcmp(rest, "/") == 0) rest = "";
  return fa_path_join(out, cap, mnt, rest, NULL);
}

static int fa_cgroup_read_one(const char *root, bool v1, fa_cgroup_t *res) {
  char cg[FA_CGROUP_PATH_MAX], mnt[FA_CGROUP_PATH_MAX], mroot[FA_CGROUP_PATH_MAX];
  char dir[FA_CGROUP_PATH_MAX];
  if (!fa_own_cgroup(root, v1, cg, sizeof cg)) return 0;
  if (!fa_find_mount(root, v1, mnt, sizeof mnt, mroot, sizeof mroot)) return 0;
  if (!fa_cgroup_dir(mnt, mroot, cg, dir, sizeof dir)) return 0;
  /* A v2 hierarchy without the memory controller has no memory.max. */
  char path[FA_CGROUP_PATH_MAX], buf[512];
  if (!v1) {
    if (!fa_path_join(path, sizeof path, mnt, "/cgroup.controllers", NULL) ||
        _fa_read_file(path, buf, sizeof buf) < 0)
      return 0;
    for (char *s = buf; *s; s++)
      if (*s == ' ' || *s == '\n') *s = ',';
    if (!fa_has_word(buf, "memory")) return 0;
  }
  res->version = v1 ? 1 : 2;
  fa_path_join(res->dir, sizeof res->dir, dir, NULL, NULL);
  if (fa_walk_limit(mnt, dir, v1 ? "memory.limit_in_bytes" : "memory.max", &res->max,
                    res->max_from, sizeof res->max_from, res->garbage, sizeof res->garbage) < 0)
    return -1;
  if (!v1 && fa_walk_limit(mnt, dir, "memory.high", &res->high, res->high_from,
                           sizeof res->high_from, res->garbage, sizeof res->garbage) < 0)
    return -1;
  return 1;
}

int _fa_cgroup_read(const char *root, fa_cgroup_t *res) {
  memset(res, 0, sizeof *res);
  if (root == NULL) root = "";
  int r = fa_cgroup_read_one(root, false, res);
  if (r == 0) {
    memset(res, 0, sizeof *res);
    r = fa_cgroup_read_one(root, true, res);
  }
  if (r < 0) {
    _fa_warn("cannot parse %s; no limit from the cgroup", res->garbage);
    res->max = res->high = 0;
  }
  return r;
}
