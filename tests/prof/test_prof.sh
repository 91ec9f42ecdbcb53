#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_prof.sh - FANCY_PROF without google-pprof: exact sample counts,
# the dump signal, the re-entrancy guard, profiling off.
. "${srcdir:-.}/tests/prof/common.sh"
h=$helpers/prof_helper

# fancy_prof_dump(3): "Sampled blocks are remembered until they are freed,
# by whichever thread frees them."  FANCY_PROF_SAMPLE=1 samples every block.
FANCY_PROF=1 FANCY_PROF_SAMPLE=1 "$h" exact "$tmp" || fail "exact sample counts"
ok "every block sampled and forgotten when freed (same thread, other thread, realloc)"

# fancyalloc(7): "FANCY_PROF_SIGNAL=N ... the handler only sets a flag; the
# next allocation writes PREFIX.PID.SEQ.heap".
FANCY_PROF=1 FANCY_PROF_SIGNAL=12 FANCY_PROF_PREFIX=$tmp/sig "$h" signal 12 || fail "signal dump"
ok "SIGUSR2 dump"

# fancy_prof_dump(3): "A sampled block of less than 2 KiB is a block of
# the 2 KiB size class".
FANCY_PROF=1 FANCY_PROF_SAMPLE=1 "$h" small || fail "sampled small blocks in 2 KiB class spans"
ok "a sampled block under 2 KiB is a block of the 2 KiB class"
# fancy_prof_dump(3): "from 2 KiB to 32 KiB, a sampled block is a block of
# its size class, where malloc would have put it".  A second free of a
# sampled block is a double free: abort after one "fancyalloc:" line.
FANCY_PROF=1 FANCY_PROF_SAMPLE=1 "$h" inplace || fail "sampled blocks in their class spans"
ok "a sampled block of 2 KiB and more is a block of its class"
if FANCY_PROF=1 FANCY_PROF_SAMPLE=1 "$h" double 2>"$tmp/double.err"; then
  fail "double free of a sampled block did not abort"
fi
# (dash adds its "Aborted" line to the redirected stderr)
[ "$(grep -c '^fancyalloc: ' "$tmp/double.err")" -eq 1 ] &&
  grep -q '^fancyalloc: double free' "$tmp/double.err" ||
  { cat "$tmp/double.err" >&2; fail "double free of a sampled block: one fancyalloc: line expected"; }
ok "double free of a sampled block aborts"

# fancy_prof_dump(3): "A thread's frees of other threads' blocks go to its
# lent blocks of the class, as they would go to the blocks it keeps for
# reuse without profiling."  (FANCY_PROF_SAMPLE=1T: nothing is sampled.)
"$h" reuse || fail "a freed block of another thread, profiling off"
FANCY_PROF=1 FANCY_PROF_SAMPLE=1T "$h" reuse || fail "a freed block of another thread, profiling on"
ok "another thread's freed block serves the next malloc, profiling on as off"

# fancy_prof_dump(3): "ENOTSUP profiling is off".
"$h" off || fail "fancy_prof_dump with profiling off"
ok "ENOTSUP when off"

# prof.c: the unwinder may allocate (libgcc mallocs to sort frame tables);
# under LD_PRELOAD those allocations come back into the sampler, which must
# not sample them again.  Every allocation is sampled here.
lib=$top_builddir/lib/.libs/libfancymalloc.so.1
config=$top_builddir/config.h
# The system's programs can preload it: built, without sanitizers, and not
# for musl (sort and ls are glibc programs).
sysprogs=no
if [ -f "$lib" ] && ! grep -q '^#define FA_SANITIZE 1' "$config" &&
   ! readelf -d "$lib" 2>/dev/null | grep -q 'NEEDED.*\[libc\.so\]'; then
  sysprogs=yes
fi
if [ $sysprogs = yes ]; then
  seq 1 20000 | FANCY_PROF=1 FANCY_PROF_SAMPLE=1 LD_PRELOAD=$lib sort -r >"$tmp/sorted" ||
    fail "sort under FANCY_PROF=1 FANCY_PROF_SAMPLE=1"
  [ "$(head -n 1 "$tmp/sorted")" = 9999 ] || fail "sort output"
  ok "sampling every allocation under LD_PRELOAD"
  FANCY_PROF=1 FANCY_PROF_FINAL=1 FANCY_PROF_PREFIX=$tmp/ls LD_PRELOAD=$lib ls / >/dev/null 2>"$tmp/err" ||
    fail "ls under FANCY_PROF_FINAL=1"
  set -- "$tmp"/ls.*.final.heap
  [ -f "$1" ] && head -n 1 "$1" | grep -q '^heap profile: [0-9]*: [0-9]* \[[0-9]*: [0-9]*\] @ heap_v2/524288$' ||
    fail "final profile of ls"
  ok "final profile at the default rate"
fi

# fancy_prof_dump(3): "the library looks the unwinder up in libgcc_s.so.1
# ... when the first sample is taken: libfancyalloc and libfancymalloc
# need only the C library, and a program that does not profile never loads
# libgcc_s for them."  (cat is a C program that does not load it itself.)
if [ $sysprogs = yes ]; then
  for l in "$lib" "$top_builddir/lib/.libs/libfancyalloc.so.1"; do
    extra=$(readelf -d "$l" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' |
            grep -Ev '^(libc|libpthread|libdl)\.so' || true)
    [ -z "$extra" ] || fail "${l##*/} needs $extra besides the C library"
  done
  if LD_PRELOAD=$lib cat /proc/self/maps | grep -q 'libgcc_s'; then
    fail "libgcc_s loaded with profiling off"
  fi
  FANCY_PROF=1 FANCY_PROF_SAMPLE=1 LD_PRELOAD=$lib cat /proc/self/maps | grep -q 'libgcc_s' ||
    fail "libgcc_s not loaded after a sample"
  ok "libgcc_s only once a sample is taken"
fi

# fancyrun(1): "--prof[=sample] Sampled heap profiling (FANCY_PROF=1), one
# sample per sample bytes allocated on average (FANCY_PROF_SAMPLE, default
# 512k), and the leak profile fancyalloc.pid.final.heap written at exit".
if [ $sysprogs = yes ]; then
  (cd "$tmp" && FANCYRUN_LIBRARY=$lib sh "$top_builddir/bin/fancyrun" --prof=64k ls / >/dev/null 2>&1) ||
    fail "fancyrun --prof=64k ls"
  set -- "$tmp"/fancyalloc.*.final.heap
  [ -f "$1" ] && head -n 1 "$1" | grep -q '@ heap_v2/65536$' || fail "fancyrun --prof=64k: no final profile"
  FANCYRUN_LIBRARY=$lib sh "$top_builddir/bin/fancyrun" --prof=lots true 2>/dev/null
  [ $? -eq 2 ] || fail "fancyrun --prof=lots is not a usage error"
  ok "fancyrun --prof"
fi

# Profiling on must not change what the allocator does: the stress
# programs of tests/stress (every tier, realloc chains, calloc of huge
# blocks, threads freeing each other's blocks) with a sample every 4 KiB.
for t in stress_larson stress_realloc; do
  FANCY_PROF=1 FANCY_PROF_SAMPLE=4k "$top_builddir/tests/stress/$t" >"$tmp/$t.out" 2>&1 ||
    { grep -v "^  " "$tmp/$t.out" | tail -20; fail "$t under FANCY_PROF=1 FANCY_PROF_SAMPLE=4k"; }
done
ok "stress programs with profiling on"
