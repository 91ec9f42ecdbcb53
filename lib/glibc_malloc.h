/* SPDX-License-Identifier: MIT */
/*
 * glibc_malloc.h - glibc's introspection declarations (mallinfo2,
 * mallinfo, malloc_stats, malloc_info, mallopt) for a C library whose
 * <malloc.h> lacks them (musl).  libfancymalloc defines these calls
 * (introspect.c) so that programs built against glibc find them; the
 * preload test helpers call them through the same declarations.
 * On glibc, <malloc.h> alone.
 */
#ifndef FA_GLIBC_MALLOC_H
#define FA_GLIBC_MALLOC_H

#include <malloc.h>
#include <stddef.h>
#include <stdio.h>

#ifndef __GLIBC__
struct mallinfo {
  int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct mallinfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
#define M_TRIM_THRESHOLD -1
#define M_TOP_PAD -2
#define M_MMAP_THRESHOLD -3
#define M_MXFAST 1
#define M_MMAP_MAX -4
#define M_PERTURB -6
#define M_ARENA_MAX -8
struct mallinfo mallinfo(void);
struct mallinfo2 mallinfo2(void);
void malloc_stats(void);
int malloc_info(int options, FILE *fp);
int mallopt(int param, int value);
#endif

#endif /* FA_GLIBC_MALLOC_H */
