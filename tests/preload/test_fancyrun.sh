#!/bin/sh
# SPDX-License-Identifier: MIT
# test_fancyrun - bin/fancyrun of the build tree, pointed at the build
# tree's library with FANCYRUN_LIBRARY and --library: it preloads the
# library (prepended to LD_PRELOAD), its options reach the allocator,
# --help/--version work, bad options give the usage and status 2, a
# missing library 125, and the program's own status comes back.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

fancyrun=$top_builddir/bin/fancyrun
[ -f "$fancyrun" ] || hard "$fancyrun not built"
require_preload
require_helper workload
system_progs_ok || skip "it runs the system's programs (sh, env: glibc programs); $FANCY_LIB is built for musl"

# The installed script names the installation's libdir, fully expanded.
if grep -Eq '@[A-Z_]+@|\$\{?(exec_)?prefix' "$fancyrun"; then
  grep -En '@[A-Z_]+@|\$\{?(exec_)?prefix' "$fancyrun" >&2
  fail "$fancyrun has unexpanded variables"
fi
sh -n "$fancyrun" || fail "sh -n $fancyrun: syntax error"

FANCYRUN_LIBRARY=$FANCY_LIB
export FANCYRUN_LIBRARY
glibc "$helpers/workload" >"$tmp/expected" 2>&1 || hard "workload fails under glibc"

# fr ARGS...: run fancyrun; stdout in $tmp/out, stderr in $tmp/err, status in $st.
fr() {
  $TIMEOUT sh "$fancyrun" "$@" >"$tmp/out" 2>"$tmp/err"
  st=$?
}

fr "$helpers/workload" --which
[ $st -eq 0 ] && [ "$(cat "$tmp/out")" = libfancymalloc ] ||
  { cat "$tmp/out" "$tmp/err" >&2; fail "fancyrun workload --which: not served by libfancymalloc"; }
fr "$helpers/workload"
[ $st -eq 0 ] && cmp -s "$tmp/expected" "$tmp/out" && [ ! -s "$tmp/err" ] ||
  { cat "$tmp/out" "$tmp/err" >&2; fail "fancyrun workload: wrong result"; }
ok "fancyrun PROGRAM runs PROGRAM on libfancymalloc"

# --library instead of FANCYRUN_LIBRARY; both forms of option values.
for form in "--library=$FANCY_LIB" "--library $FANCY_LIB" "-l $FANCY_LIB"; do
  # shellcheck disable=SC2086
  FANCYRUN_LIBRARY=/nonexistent/lib.so fr $form "$helpers/workload" --which
  [ $st -eq 0 ] && [ "$(cat "$tmp/out")" = libfancymalloc ] ||
    { cat "$tmp/err" >&2; fail "fancyrun $form: not served by libfancymalloc"; }
done
ok "--library=PATH, --library PATH and -l PATH"

# Options reach the allocator (FANCY_VERBOSE prints the values in effect).
fr --verbose --arena-size=32m --memory-limit 1g --purge-delay=250 --segment-cache=3 \
   --huge-pages --populate --reclaim --check "$helpers/workload"
[ $st -eq 0 ] && cmp -s "$tmp/expected" "$tmp/out" || { cat "$tmp/err" >&2; fail "fancyrun with options: wrong result"; }
for want in FANCY_ARENA_SIZE=33554432 FANCY_MEMORY_LIMIT=1073741824 FANCY_PURGE_DELAY=250 \
            FANCY_SEGMENT_CACHE=3 FANCY_HUGE_PAGES=1 FANCY_POPULATE=1 FANCY_RECLAIM=1 FANCY_CHECK=1; do
  grep -q "^fancyalloc: option $want " "$tmp/err" ||
    { cat "$tmp/err" >&2; fail "fancyrun options: the allocator does not see $want"; }
done
fr -v --no-huge-pages --no-populate --no-reclaim --no-check "$helpers/workload"
for want in FANCY_HUGE_PAGES=0 FANCY_POPULATE=0 FANCY_RECLAIM=0 FANCY_CHECK=0; do
  grep -q "^fancyalloc: option $want " "$tmp/err" ||
    { cat "$tmp/err" >&2; fail "fancyrun --no-*: the allocator does not see $want"; }
done
# --memory-limit=auto and --memory-soft-limit (fancyrun(1): "auto[:P]")
fr --memory-limit=auto --memory-soft-limit auto:80 env
grep -qx 'FANCY_MEMORY_LIMIT=auto' "$tmp/out" && grep -qx 'FANCY_MEMORY_SOFT_LIMIT=auto:80' "$tmp/out" ||
  fail "--memory-limit=auto --memory-soft-limit auto:80 are not passed on"
fr -v --memory-soft-limit=48m "$helpers/workload"
grep -q "^fancyalloc: option FANCY_MEMORY_SOFT_LIMIT=50331648 " "$tmp/err" ||
  { cat "$tmp/err" >&2; fail "--memory-soft-limit=48m: the allocator does not see it"; }
ok "--memory-limit=auto, --memory-soft-limit"
# Options override the environment.
FANCY_ARENA_SIZE=8m fr -v --arena-size=16m "$helpers/workload"
grep -q "^fancyalloc: option FANCY_ARENA_SIZE=16777216 " "$tmp/err" ||
  { cat "$tmp/err" >&2; fail "--arena-size does not override FANCY_ARENA_SIZE"; }
fr --stats "$helpers/workload"
grep -q '^libfancyalloc .* statistics' "$tmp/err" || { cat "$tmp/err" >&2; fail "fancyrun --stats: no statistics"; }
fr -s "$helpers/workload"
grep -q 'statistics' "$tmp/err" || fail "fancyrun -s: no statistics"
ok "options reach the allocator"

# LD_PRELOAD: prepended, the old value kept, no duplicate.
other=$top_builddir/lib/.libs/libfancyalloc.so.1
LD_PRELOAD=$other fr env
grep -qx "LD_PRELOAD=$FANCY_LIB $other" "$tmp/out" ||
  { grep LD_PRELOAD "$tmp/out" >&2; fail "LD_PRELOAD is not the library followed by the old value"; }
LD_PRELOAD=$FANCY_LIB fr env
grep -qx "LD_PRELOAD=$FANCY_LIB" "$tmp/out" || { grep LD_PRELOAD "$tmp/out" >&2; fail "the library is preloaded twice"; }
fr --stats env
grep -qx "FANCY_STATS=1" "$tmp/out" || fail "FANCY_STATS=1 is not in the program's environment"
ok "LD_PRELOAD prepended; FANCY_* exported"

# Arguments pass through untouched, options end at the program or --.
fr -- sh -c 'printf "[%s]" "$@"' x 'a b' '' '--stats' '*'
[ "$(cat "$tmp/out")" = '[a b][][--stats][*]' ] || { cat "$tmp/out" >&2; fail "arguments mangled"; }
fr sh -c 'exit 7'
[ $st -eq 7 ] || fail "the program's exit status 7 came back as $st"
fr /nonexistent/program
[ $st -eq 127 ] || fail "a missing program: status $st, expected 127"
ok "arguments, -- and exit status"

# --help, --version.
fr --help
[ $st -eq 0 ] && grep -q '^Usage: fancyrun ' "$tmp/out" && grep -q -- '--arena-size' "$tmp/out" && [ ! -s "$tmp/err" ] ||
  fail "fancyrun --help"
fr -h
[ $st -eq 0 ] && grep -q '^Usage: fancyrun ' "$tmp/out" || fail "fancyrun -h"
fr --version
[ $st -eq 0 ] && grep -Eq '^fancyrun \(libfancyalloc\) [0-9]' "$tmp/out" || fail "fancyrun --version"
ok "--help, --version"

# Usage errors: status 2, the message and a hint on stderr, nothing run.
for args in "--bogus true" "-x true" "--arena-size=banana true" "--memory-limit=12q true" \
            "--memory-limit=auto:0 true" "--memory-limit=autox true" "--memory-soft-limit=auto:101 true" \
            "--purge-delay=soon true" "--segment-cache=-1 true" "--stats=1 true" \
            "--arena-size" "" "--stats" "--library= true"; do
  # shellcheck disable=SC2086
  fr $args
  [ $st -eq 2 ] || fail "fancyrun $args: status $st, expected 2"
  [ ! -s "$tmp/out" ] || fail "fancyrun $args: printed on stdout"
  grep -q '^fancyrun: ' "$tmp/err" && grep -q -- "--help" "$tmp/err" ||
    { cat "$tmp/err" >&2; fail "fancyrun $args: no usage message on stderr"; }
done
ok "bad options: usage on stderr, status 2"

FANCYRUN_LIBRARY=$tmp/missing.so fr true
[ $st -eq 125 ] && grep -q 'cannot find the library' "$tmp/err" || fail "a missing library: status $st, expected 125"
ok "a missing library: status 125"

# claim fancyrun.1-exit-125: fancyrun(1) EXIT STATUS, "125 if the library
# cannot be found" and "a bare name is looked up as the loader does":
# ld.so itself only warns and runs the program on glibc's malloc.
echo 'int main(void) { return 0; }' >"$tmp/nomalloc.c"
for lib in libfancyalloc-nosuch.so.1 /etc/passwd "$tmp" "$tmp/nomalloc.c"; do
  FANCYRUN_LIBRARY=$lib fr sh -c 'echo ran'
  [ $st -eq 125 ] && [ ! -s "$tmp/out" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    grep -q "^fancyrun: cannot preload $lib: " "$tmp/err" ||
    { cat "$tmp/out" "$tmp/err" >&2; fail "library $lib: status $st, expected 125 and one line"; }
done
if ls /lib*/*/libz.so.1 /usr/lib*/*/libz.so.1 /lib*/libz.so.1 >/dev/null 2>&1 &&
   LD_DEBUG=bindings LD_BIND_NOW=1 LD_PRELOAD=libz.so.1 sh -c : 2>&1 | grep -q 'binding file'; then
  # A loadable library that does not export malloc.
  FANCYRUN_LIBRARY=libz.so.1 fr sh -c 'echo ran'
  [ $st -eq 125 ] && [ ! -s "$tmp/out" ] && grep -q '^fancyrun: libz.so.1 does not provide malloc' "$tmp/err" ||
    { cat "$tmp/out" "$tmp/err" >&2; fail "libz.so.1 (no malloc): status $st, expected 125"; }
  # A bare soname found through LD_LIBRARY_PATH, as ld.so finds it.
  LD_LIBRARY_PATH=$(dirname "$FANCY_LIB") FANCYRUN_LIBRARY=$(basename "$FANCY_LIB") fr "$helpers/workload" --which
  [ $st -eq 0 ] && [ "$(cat "$tmp/out")" = libfancymalloc ] ||
    { cat "$tmp/out" "$tmp/err" >&2; fail "a bare soname on LD_LIBRARY_PATH: status $st"; }
fi
ok "a library that cannot be preloaded or has no malloc: status 125, one line"

# claim fancyrun.1-messages: fancyrun(1) EXIT STATUS, "126 if program
# cannot be executed and 127 if it cannot be found" and "Every message
# fancyrun prints starts with fancyrun:" (not the shell's "fancyrun: 157:
# exec: ...").
for case in "127 fancyrun-no-such-program" "127 $tmp/nonexistent" "126 $tmp" "126 $tmp/nomalloc.c"; do
  want=${case%% *}; prog=${case#* }
  fr "$prog"
  [ $st -eq "$want" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^fancyrun: $prog: [a-z]" "$tmp/err" ||
    { cat "$tmp/err" >&2; fail "program $prog: status $st (expected $want) or a bad message"; }
done
ok "a missing or unrunnable program: 127/126 and one fancyrun: line"
exit 0
