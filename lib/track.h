/* SPDX-License-Identifier: MIT */
/*
 * track.h - telling valgrind's memcheck about blocks.
 *
 * Built in when configure finds valgrind/valgrind.h (--enable-valgrind,
 * the default "auto").  When the process runs under valgrind the library
 * switches itself to checked mode (init.c): every call then takes the slow
 * path, which is where these requests are made, so the fast paths carry no
 * trace of them.  Memcheck then sees each block as a heap block of exactly
 * the size asked for: leaks, reads of uninitialised memory, overruns and
 * uses after free are reported as under glibc.  The first 16 bytes of a
 * freed block stay addressable (the allocator keeps its free-list link and
 * tag there), so a use after free of those bytes goes unreported.
 */
#ifndef FA_TRACK_H
#define FA_TRACK_H

#if defined(FA_VALGRIND) && FA_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define fa_track_malloc(p, n) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, 0)
#define fa_track_free(p) VALGRIND_FREELIKE_BLOCK((p), 0)
#define fa_track_undefined(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define fa_track_defined(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define fa_track_noaccess(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define fa_running_on_valgrind() (RUNNING_ON_VALGRIND != 0)
#else
#define fa_track_malloc(p, n) ((void)(p), (void)(n))
#define fa_track_free(p) ((void)(p))
#define fa_track_undefined(p, n) ((void)(p), (void)(n))
#define fa_track_defined(p, n) ((void)(p), (void)(n))
#define fa_track_noaccess(p, n) ((void)(p), (void)(n))
#define fa_running_on_valgrind() 0
#endif

#endif /* FA_TRACK_H */
