#!/usr/bin/env bash
# .ci/ports.sh - the other platforms of README's "Platforms" table (issue
# 18), run by .ci/run after the main tests, from the top of the tree (the
# source tree must not be configured in place: each build is out of tree).
#
#   aarch64  cross-built with gcc-aarch64-linux-gnu, `make check` under
#            qemu-user (qemu-aarch64, libc6:arm64 from multiarch); then the
#            tests that depend on the page size again as on a 64 KiB page
#            kernel (qemu-aarch64 -p 65536: the page-size, huge-block and
#            larson stress, checked-mode and limit tests; not the Check
#            suites again, to keep CI's time)
#   clang    CC=clang ./configure --enable-werror && make check
#   musl     CC=musl-gcc: libfancymalloc, the Check suite (Check itself
#            built with musl-gcc from Debian's source package) and the
#            preload tests on musl-linked programs
#   arm64    dpkg-buildpackage -a arm64 (cross, nocheck): the packages
#            build and debian/*.symbols hold for arm64's exports
#
# Each step fails the script when its build or any test fails.  The Check
# timeouts are scaled (CK_TIMEOUT_MULTIPLIER): x10 under qemu (emulation
# is some 5-10 times slower), x3 for musl (its memset and malloc are slower,
# and the white-box test of every block offset comes near 30 s).  PORTS=
# "aarch64 clang musl deb-arm64" (the default) picks steps.  Needs (Debian,
# with `dpkg --add-architecture arm64`): qemu-user gcc-aarch64-linux-gnu
# g++-aarch64-linux-gnu libc6-dev-arm64-cross check:arm64 libstdc++6:arm64 musl-tools
# devscripts crossbuild-essential-arm64 (.ci/run installs them).
#
# Why no `qemu-aarch64 -L /usr/aarch64-linux-gnu`: with -L, Debian 12's
# qemu-aarch64 (7.2) hangs in the child of fork() of a dynamically linked
# program on this machine (a spinning child, every time for a plain
# fork+malloc test), and the Check suite forks for every test.  Without
# -L it finds the loader and libraries of libc6:arm64 (multiarch) in /lib
# and forks fine.  The preload tests skip there (tests/run-test.sh: they
# run the build's programs from the host shell); the musl step runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
PORTS=${PORTS:-aarch64 clang musl deb-arm64}
src=$PWD

step() { printf '\n==> %s  [%ds]\n' "$*" "$SECONDS"; }
show_logs() {
  for f in "$1"/test-suite.log "$1"/tests/*.log "$1"/tests/*/*.log; do
    [ -f "$f" ] && grep -q '^FAIL\|^ERROR' "$f" && { echo "---- $f"; tail -n 60 "$f"; }
  done
  return 1
}
# passed DIR TEST...: each TEST's result in DIR is PASS (not SKIP).
passed() {
  local dir=$1 t
  shift
  for t in "$@"; do
    grep -q '^:test-result: PASS' "$dir/$t.trs" ||
      { echo "ports.sh: $t did not pass in $dir:"; cat "$dir/$t.log"; return 1; }
  done
}
want() { case " $PORTS " in *" $1 "*) return 0 ;; esac; return 1; }

if want aarch64; then
  step "aarch64: cross build, make check under qemu-aarch64"
  rm -rf _build-aarch64 && mkdir _build-aarch64
  (cd _build-aarch64 &&
     ../configure -q --host=aarch64-linux-gnu --enable-werror --with-test-runner=qemu-aarch64 &&
     make -s -j"$JOBS" && CK_TIMEOUT_MULTIPLIER=10 make -s -j"$JOBS" check) || show_logs _build-aarch64
  file _build-aarch64/tests/.libs/check_fancy | grep -q 'ARM aarch64' ||
    { echo "ports.sh: the aarch64 tests are not aarch64 programs"; exit 1; }
  passed _build-aarch64 tests/check_fancy tests/check_white tests/check_pagesize \
    tests/check_mode tests/limit_helper tests/stress/stress_larson

  step "aarch64: as on a 64 KiB page kernel (qemu-aarch64 -p 65536)"
  (cd _build-aarch64 &&
     CK_TIMEOUT_MULTIPLIER=10 make -s -j"$JOBS" check FA_TEST_RUNNER="qemu-aarch64 -p 65536" \
       TESTS="tests/check_pagesize tests/stress/stress_huge tests/stress/stress_larson tests/check_mode tests/limit_helper") ||
    show_logs _build-aarch64
fi

if want clang; then
  step "clang: CC=clang configure --enable-werror, make check"
  rm -rf _build-clang && mkdir _build-clang
  # clang 14's optimizer crashes (segfault) on tests/check_instances.c at
  # -O2, with or without sanitizers (see .ci/run's TSan step): that one
  # test object is compiled at -O1; the library and the rest at -O2.
  # -gdwarf-4: clang 14 writes DWARF 5, which Debian 12's valgrind (3.19)
  # cannot read (tests/test_valgrind.sh would fail on the debug info).
  (cd _build-clang && ../configure -q CC=clang CXX=clang++ CFLAGS="-g -gdwarf-4 -O2" --enable-werror &&
     make -s -j"$JOBS" && make -s tests/check_fancy-check_instances.o CFLAGS="-g -gdwarf-4 -O1" &&
     make -s -j"$JOBS" check) || show_logs _build-clang
  grep -q '^CC = clang$' _build-clang/Makefile || { echo "ports.sh: not built by clang"; exit 1; }
fi

if want musl; then
  step "musl: Check built with musl-gcc"
  # Debian ships Check for glibc only; build the same version from
  # Debian's source package, static, into _build-musl-check.
  # The native package's version: with check:arm64 installed too, a plain
  # `check` names both, and their versions ran together.
  ckver=$(dpkg-query -W -f '${source:Version}' "check:$(dpkg --print-architecture)" | sed 's/+b[0-9]*$//')
  # The Debian mirror apt is set up with.
  mirror=$(awk '/^URIs:/ { print $2; exit } /^deb / { print $2; exit }' \
             /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null)
  ckdir=$src/_build-musl-check
  if [ ! -f "$ckdir/prefix/lib/libcheck.a" ]; then
    rm -rf "$ckdir" && mkdir -p "$ckdir"
    (cd "$ckdir" &&
       dget -q -u -d "${mirror%/}/pool/main/c/check/check_${ckver}.dsc" &&
       tar xzf check_"${ckver%-*}".orig.tar.gz && cd check-"${ckver%-*}" &&
       ./configure -q CC=musl-gcc --prefix="$ckdir/prefix" --disable-shared \
         --enable-subunit=no --disable-timeout-tests >/dev/null &&
       make -s -j"$JOBS" -C lib >/dev/null && make -s -j"$JOBS" -C src >/dev/null &&
       make -s -C src install >/dev/null && cp check_stdint.h "$ckdir/prefix/include/")
  fi

  step "musl: CC=musl-gcc configure, make check (preload tests on musl programs)"
  rm -rf _build-musl && mkdir _build-musl
  # CXX=false: there is no musl C++ toolchain in Debian; the C++ tests skip.
  (cd _build-musl &&
     ../configure -q CC=musl-gcc CXX=false --enable-werror \
       CHECK_CFLAGS="-I$ckdir/prefix/include" CHECK_LIBS="$ckdir/prefix/lib/libcheck.a" &&
     make -s -j"$JOBS" && CK_TIMEOUT_MULTIPLIER=3 make -s -j"$JOBS" check) || show_logs _build-musl
  readelf -d _build-musl/lib/.libs/libfancymalloc.so | grep -q 'NEEDED.*\[libc\.so\]' ||
    { echo "ports.sh: libfancymalloc is not linked against musl"; exit 1; }
  # Not test_foreign_free.sh: it skips off glibc (lib/foreign.c knows
  # glibc's blocks only).
  passed _build-musl tests/check_fancy tests/check_white tests/check_pagesize tests/check_mode \
    tests/preload/test_fork.sh tests/preload/test_thread_exit.sh tests/preload/test_dlopen.sh \
    tests/preload/test_atexit_tls.sh tests/preload/test_ctor.sh
fi

if want deb-arm64; then
  step "arm64 Debian packages: dpkg-buildpackage -a arm64 (nocheck)"
  apt-get build-dep -y -q -a arm64 -P nocheck "$src" >/dev/null
  # The packages land next to the tree: in $work.
  work=$(mktemp -d "${TMPDIR:-/tmp}/fancy-deb-arm64.XXXXXX")
  mkdir "$work/src"
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work/src"
  (cd "$work/src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -a arm64 -Pnocheck -us -uc -b) ||
    { echo "ports.sh: arm64 package build failed (dpkg-gensymbols included); kept $work"; exit 1; }
  for d in "$work"/libfancyalloc1_*_arm64.deb "$work"/libfancymalloc1_*_arm64.deb; do
    [[ $(dpkg-deb -c "$d") == *usr/lib/aarch64-linux-gnu/lib* ]] ||
      { echo "ports.sh: $d: no arm64 library"; exit 1; }
  done
  ls -l "$work"/*_arm64.deb
  rm -rf "$work"
fi

step "ports: all passed"
