/* SPDX-License-Identifier: MIT */
/*
 * fill.c - the README's container demo ("Containers"): allocate 1 MiB
 * blocks, writing every byte, until malloc fails; then free them all and
 * exit 0.  Run in a memory cgroup, under glibc's malloc the kernel's OOM
 * killer ends it (SIGKILL) long before malloc fails; under libfancymalloc
 * with FANCY_MEMORY_LIMIT=auto malloc returns NULL below the cgroup's
 * limit and the program goes on.
 *
 *   fill [MAX_MIB]   stop (exit 3) after MAX_MIB MiB without a failure
 *                    (default 65536), so that it ends without a limit too.
 *
 * The blocks are chained through their first word: the program allocates
 * nothing but the blocks it counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  size_t max_mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 65536;
  void *head = NULL;
  size_t mib = 0;
  for (;;) {
    if (mib == max_mib) {
      printf("fill: %zu MiB allocated and malloc never failed\n", mib);
      return 3;
    }
    errno = 0;
    void **b = malloc((size_t)1 << 20);
    if (b == NULL) break;
    memset(b, 0xa5, (size_t)1 << 20);
    *b = head;
    head = b;
    mib++;
  }
  int err = errno;
  while (head != NULL) {
    void *next = *(void **)head;
    free(head);
    head = next;
  }
  /* The memory is usable again once freed. */
  void *again = malloc((size_t)1 << 20);
  if (again == NULL) {
    printf("fill: malloc still fails after freeing everything\n");
    return 1;
  }
  memset(again, 0, (size_t)1 << 20);
  free(again);
  printf("fill: malloc returned NULL (%s) after %zu MiB; freed them all, exiting 0\n",
         err == ENOMEM ? "ENOMEM" : strerror(err), mib);
  return 0;
}
