/* SPDX-License-Identifier: MIT */
/*
 * procfile.c - reading the kernel's small text files (/proc/self/maps,
 * /proc/self/mountinfo, /proc/self/cgroup, the cgroup limit files) with
 * read(2) into fixed buffers: no malloc and no stdio, since the callers run
 * inside malloc and free (foreign.c, cgroup.c).
 */
#include "internal.h"

#include <fcntl.h>
#include <unistd.h>

ssize_t _fa_read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0) {
      close(fd);
      return -1;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  return (ssize_t)n;
}

int _fa_read_lines(const char *path, fa_line_fn fn, void *arg) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096], line[FA_LINE_MAX];
  size_t len = 0;
  bool cut = false;
  int stopped = 0;
  ssize_t got = 0;
  for (;;) {
    got = read(fd, buf, sizeof buf);
    if (got <= 0) break;
    for (ssize_t i = 0; i < got && !stopped; i++) {
      if (buf[i] != '\n') {
        if (len < sizeof line - 1) line[len++] = buf[i];
        else cut = true;
        continue;
      }
      line[len] = '\0';
      stopped = fn(line, cut, arg);
      len = 0;
      cut = false;
    }
    if (stopped) break;
  }
  if (!stopped && got == 0 && len > 0) {   /* the last line, without its newline */
    line[len] = '\0';
    stopped = fn(line, cut, arg);
  }
  close(fd);
  return stopped;
}
