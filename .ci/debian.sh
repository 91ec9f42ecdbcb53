#!/bin/bash
# .ci/debian.sh - build the Debian packages of libfancyalloc and check them.
#
# Run by CI (as root, CI=true) from the top directory of a clean clone,
# after the main tests (.ci/run calls it).  Also usable by hand as root in
# a throw-away Debian/Ubuntu container:  bash .ci/debian.sh
#
# It never builds in the checkout itself: the tree is copied to a temporary
# directory and dpkg-buildpackage runs there (it cleans its tree).
#
# Environment:
#   FANCY_DEB_NOCHECK=1  build with DEB_BUILD_OPTIONS=nocheck and the nocheck
#                        build profile (skip "make check"; default: run it)
#   FANCY_DEB_KEEP=1     keep the temporary directory (it is always kept,
#                        and its path printed, when a step fails)
#
# Steps: install the build dependencies (apt-get build-dep on debian/control),
# dpkg-buildpackage -us -uc -b, lintian --fail-on error,warning, apt-get
# install of the four .debs, checks of the installed files (pkg-config, a
# consumer program, man pages, LD_PRELOAD of libfancymalloc, fancyrun),
# apt-get purge, and a check that nothing is left behind.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8

PACKAGES=(libfancyalloc1 libfancyalloc-dev libfancymalloc1 fancyalloc-tools)
APT_GET=(apt-get -y -q -o Dpkg::Use-Pty=0)

step() { printf '\n==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
# loads PROGRAM LIB: PROGRAM's ldd resolves LIB to $libdir/LIB (compared
# with readlink -f, since with merged /usr ldd may print /lib/<triplet>).
loads() {
  local got
  got=$(ldd "$1" | awk -v lib="$2" '$1 == lib { print $3 }')
  [[ -n $got && $(readlink -f "$got") = "$(readlink -f "$libdir/$2")" ]]
}
fail() { printf 'debian.sh: FAIL: %s\n' "$*" >&2; exit 1; }

[[ -f debian/control && -f configure.ac ]] ||
  fail "run me from the top directory of the libfancyalloc tree"
[[ $(id -u) -eq 0 ]] || fail "needs root (apt-get install/purge); run it in a container"

src=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/fancy-deb.XXXXXX")
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 || ${FANCY_DEB_KEEP:-0} = 1 ]]; then
    printf '\ndebian.sh: work directory kept: %s\n' "$work"
  else
    rm -rf "$work"
  fi
  if [[ $rc -eq 0 ]]; then
    printf '\ndebian.sh: all Debian packaging checks passed\n'
  else
    printf '\ndebian.sh: FAILED (exit %d)\n' "$rc" >&2
  fi
}
trap cleanup EXIT

apt_profiles=()
dpkg_profiles=()
if [[ ${FANCY_DEB_NOCHECK:-0} = 1 ]]; then
  export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck"
  export DEB_BUILD_PROFILES="${DEB_BUILD_PROFILES:+$DEB_BUILD_PROFILES }nocheck"
  apt_profiles=(--build-profiles=nocheck)
  dpkg_profiles=(--build-profiles=nocheck)
  echo "FANCY_DEB_NOCHECK=1: building without running the test suite"
fi
if [[ ${DEB_BUILD_OPTIONS:-} != *parallel=* ]]; then
  jobs=$(nproc)
  export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$jobs"
fi
echo "DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS"

# ---------------------------------------------------------------------------
step "Installing the packaging tools and the build dependencies"
run "${APT_GET[@]}" update
run "${APT_GET[@]}" install --no-install-recommends \
  build-essential dpkg-dev fakeroot lintian man-db pkgconf
# apt reads Build-Depends (with build profiles) from the unpacked tree.
run "${APT_GET[@]}" build-dep --no-install-recommends "${apt_profiles[@]}" "$src/"

# ---------------------------------------------------------------------------
step "Copying the tree to $work/libfancyalloc"
run cp -a "$src" "$work/libfancyalloc"
cd "$work/libfancyalloc"
# The main tests may have left build products in the checkout: drop every
# untracked file, in the copy only.
if [[ -e .git ]] && command -v git >/dev/null; then
  run git -c safe.directory='*' clean -xfdq
fi

# ---------------------------------------------------------------------------
step "Building the packages: dpkg-buildpackage -us -uc -b"
run dpkg-buildpackage -us -uc -b "${dpkg_profiles[@]}"
cd "$work"
run ls -l "$work"
changes=("$work"/libfancyalloc_*.changes)
[[ -f ${changes[0]} ]] || fail "no .changes file was produced"

# ---------------------------------------------------------------------------
step "lintian (fails on errors and warnings)"
run lintian --info --display-info --fail-on error,warning "${changes[0]}"

# ---------------------------------------------------------------------------
step "Installing the built packages"
run "${APT_GET[@]}" install --no-install-recommends \
  ./libfancyalloc1_*.deb ./libfancyalloc-dev_*.deb ./libfancymalloc1_*.deb \
  ./fancyalloc-tools_*.deb
for p in "${PACKAGES[@]}"; do
  run dpkg -L "$p" >/dev/null
done

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=/usr/lib/$multiarch
upstream_version=$(dpkg-parsechangelog -l libfancyalloc/debian/changelog -SVersion)
upstream_version=${upstream_version%-*}
upstream_version=${upstream_version#*:}

# ---------------------------------------------------------------------------
step "pkg-config"
run pkg-config --cflags --libs fancyalloc
modversion=$(pkg-config --modversion fancyalloc)
echo "pkg-config --modversion fancyalloc: $modversion"
[[ $modversion = "$upstream_version" ]] ||
  fail "pkg-config version $modversion != package version $upstream_version"

# ---------------------------------------------------------------------------
step "A consumer program built with \$(pkg-config --cflags --libs fancyalloc)"
mkdir -p "$work/consumer"
cd "$work/consumer"
cat > consumer.c <<'EOF'
#include <stdio.h>
#include <string.h>
#include <fancyalloc.h>

int main(void)
{
  size_t sizes[] = { 1, 16, 100, 4096, 100000, 8u << 20 };
  void *blocks[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    blocks[i] = fancy_malloc(sizes[i]);
    if (blocks[i] == NULL) { fprintf(stderr, "fancy_malloc(%zu) failed\n", sizes[i]); return 1; }
    if (fancy_malloc_usable_size(blocks[i]) < sizes[i]) { fprintf(stderr, "usable size too small\n"); return 1; }
    memset(blocks[i], 0xa5, sizes[i]);
  }
  fancy_print_stats(stdout);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    fancy_free(blocks[i]);
  printf("consumer: libfancyalloc %s (header %s): OK\n", fancy_version(), FANCY_VERSION);
  return 0;
}
EOF
# shellcheck disable=SC2046  # word splitting of pkg-config output is wanted
run cc -Wall -Werror -o consumer consumer.c $(pkg-config --cflags --libs fancyalloc)
run timeout 60 ./consumer
loads ./consumer libfancyalloc.so.1 ||
  fail "consumer does not load $libdir/libfancyalloc.so.1"
echo "consumer loads $libdir/libfancyalloc.so.1"

step "The design document's Quick Start, in C and C++17, against the installed package"
cat > quickstart.c <<'EOF'
#include <stdio.h>
#include <string.h>
#include <fancyalloc.h>
int main(void) {
  fancy_allocator_config_t config = {.arena_size = 64 * 1024 * 1024, .reclamation = 1};
  fancy_allocator_t *alloc = fancy_allocator_create(&config);
  if (alloc == NULL) return 1;
  void *ptr = fancy_allocator_malloc(alloc, 1024);
  void *aligned = fancy_allocator_aligned_alloc(alloc, 64, 1024);
  if (ptr == NULL || aligned == NULL || (size_t)aligned % 64 != 0) return 1;
  memset(ptr, 0, 1024);
  memset(aligned, 0, 1024);
  fancy_allocator_free(alloc, ptr);
  fancy_allocator_free(alloc, aligned);
  if (!fancy_allocator_validate(alloc)) return 1;
  fancy_allocator_destroy(alloc);
  puts("quickstart (C): OK");
  return 0;
}
EOF
cat > quickstart.cc <<'EOF'
#include <cstdint>
#include <cstdio>
#include <vector>
#include <fancyalloc.hpp>
int main() {
  fancy::PerThreadAllocator alloc(64 * 1024 * 1024, true);
  void* ptr = alloc.allocate(1024);
  void* aligned = alloc.allocateAligned(1024, 64);
  if (!ptr || !aligned || reinterpret_cast<std::uintptr_t>(aligned) % 64 != 0) return 1;
  alloc.deallocate(ptr);
  alloc.deallocate(aligned);
  std::vector<int, fancy::stl_allocator<int>> v(alloc);
  v.assign(1000, 42);
  std::puts("quickstart (C++): OK");
  return 0;
}
EOF
# shellcheck disable=SC2046  # word splitting of pkg-config output is wanted
run cc -Wall -Werror -o quickstart quickstart.c $(pkg-config --cflags --libs fancyalloc)
run timeout 60 ./quickstart
# shellcheck disable=SC2046
run c++ -std=c++17 -Wall -Werror -o quickstart-cxx quickstart.cc $(pkg-config --cflags --libs fancyalloc)
run timeout 60 ./quickstart-cxx
if ldd ./consumer | grep -q libfancymalloc; then
  fail "linking -lfancyalloc pulled in libfancymalloc"
fi

step "A program linked with -lfancymalloc (malloc replaced at link time)"
cat > replaced.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fancyalloc.h>

int main(void)
{
  void *p = malloc(100);
  if (p == NULL) return 1;
  memset(p, 0, 100);
  /* Only a block of libfancyalloc's heap has a fancy usable size. */
  if (fancy_malloc_usable_size(p) < 100) return 1;
  free(p);
  puts("replaced: malloc served by libfancymalloc: OK");
  return 0;
}
EOF
run cc -Wall -Werror -o replaced replaced.c -lfancymalloc
run timeout 60 ./replaced
loads ./replaced libfancymalloc.so.1 ||
  fail "program linked with -lfancymalloc does not load $libdir/libfancymalloc.so.1"

# ---------------------------------------------------------------------------
step "Man pages"
# Check only pages the package really contains (they may not be written yet),
# and note when a minimal image's dpkg configuration (path-exclude) drops
# /usr/share/man at install time.
for page in man3/fancy_malloc.3 man7/fancyalloc.7; do
  name=${page#*/}; name=${name%.*}; section=${page%%/*}; section=${section#man}
  if ! dpkg-deb -c "$work"/libfancyalloc-dev_*.deb | grep -q "/usr/share/man/$page\.gz"; then
    echo "$page is not in libfancyalloc-dev (not written yet?): skipped"
    continue
  fi
  if [[ ! -e /usr/share/man/$page.gz ]] &&
     grep -qs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    echo "$page is in the package but dpkg's path-exclude drops man pages here: skipped"
    continue
  fi
  found=$(run man -w "$section" "$name")
  echo "$found"
  [[ $found = "/usr/share/man/$page.gz" ]] || fail "man -w $section $name found '$found'"
  run man -P cat "$section" "$name" >"$work/page.txt"
  head -n 4 "$work/page.txt"
done

# ---------------------------------------------------------------------------
step "LD_PRELOAD of libfancymalloc"
preload=$libdir/libfancymalloc.so.1
[[ -f $preload ]] || fail "$preload is missing"
out=$(timeout 60 env LD_PRELOAD="$preload" ls /) || fail "LD_PRELOAD=$preload ls / failed"
[[ -n $out ]] || fail "LD_PRELOAD=$preload ls / printed nothing"
echo "+ LD_PRELOAD=$preload ls /: OK ($(wc -w <<<"$out") entries)"
# The dynamic linker must bind ls's malloc to libfancymalloc, not glibc.
bindings=$(timeout 60 env LD_DEBUG=bindings LD_PRELOAD="$preload" ls / 2>&1 >/dev/null)
if grep -m 1 -E "to [^ ]*libfancymalloc\.so\.1 \[0\]: normal symbol \`malloc'" <<<"$bindings"; then
  echo "malloc is bound to libfancymalloc"
else
  fail "with LD_PRELOAD, malloc is not bound to libfancymalloc"
fi
run timeout 60 env LD_PRELOAD="$preload" sh -c 'echo preloaded shell: OK'

# ---------------------------------------------------------------------------
step "fancyrun (fancyalloc-tools)"
[[ $(command -v fancyrun) = /usr/bin/fancyrun ]] || fail "fancyrun is not /usr/bin/fancyrun"
run fancyrun --version
out=$(timeout 60 fancyrun ls /) || fail "fancyrun ls / failed"
[[ -n $out ]] || fail "fancyrun ls / printed nothing"
echo "+ fancyrun ls /: OK ($(wc -w <<<"$out") entries)"
# The library it preloads (the bare soname, found by the dynamic loader)
# must really serve malloc, and its options must reach the allocator.
bindings=$(timeout 60 env LD_DEBUG=bindings fancyrun ls / 2>&1 >/dev/null)
grep -m 1 -E "to [^ ]*libfancymalloc\.so\.1 \[0\]: normal symbol \`malloc'" <<<"$bindings" ||
  fail "under fancyrun, malloc is not bound to libfancymalloc"
stats=$(timeout 60 fancyrun --stats --arena-size=32m --verbose ls / 2>&1 >/dev/null)
grep -q '^fancyalloc: option FANCY_ARENA_SIZE=33554432 ' <<<"$stats" ||
  fail "fancyrun --arena-size=32m did not reach the allocator"
grep -q 'statistics' <<<"$stats" || fail "fancyrun --stats printed no statistics"
echo "fancyrun options reach the allocator"
if fancyrun --no-such-option true 2>/dev/null; then fail "fancyrun accepted a bad option"; fi
if dpkg-deb -c "$work"/fancyalloc-tools_*.deb | grep -q '/usr/share/man/man1/fancyrun\.1\.gz' &&
   ! grep -qs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
  found=$(run man -w 1 fancyrun)
  [[ $found = /usr/share/man/man1/fancyrun.1.gz ]] || fail "man -w 1 fancyrun found '$found'"
fi

# ---------------------------------------------------------------------------
step "Purging the packages"
cd "$work"
run "${APT_GET[@]}" purge "${PACKAGES[@]}"
for p in "${PACKAGES[@]}"; do
  if dpkg -L "$p" >/dev/null 2>&1; then fail "dpkg -L $p still succeeds after purge"; fi
  echo "dpkg -L $p: not installed (good)"
done
for f in /usr/include/fancyalloc.h "$libdir/pkgconfig/fancyalloc.pc" \
         "$libdir/libfancyalloc.so" "$libdir/libfancyalloc.so.1" "$libdir/libfancyalloc.a" \
         "$libdir/libfancymalloc.so" "$libdir/libfancymalloc.so.1" \
         /usr/share/man/man3/fancy_malloc.3.gz /usr/share/man/man7/fancyalloc.7.gz \
         /usr/bin/fancyrun /usr/share/man/man1/fancyrun.1.gz \
         /usr/share/doc/libfancyalloc1 /usr/share/doc/libfancyalloc-dev /usr/share/doc/libfancymalloc1 \
         /usr/share/doc/fancyalloc-tools; do
  if [[ -e $f || -L $f ]]; then fail "$f is left after purge"; fi
done
echo "no file of the packages is left"
if pkg-config --exists fancyalloc; then fail "pkg-config still finds fancyalloc"; fi
if ldconfig -p | grep -q 'libfancy'; then fail "ldconfig cache still lists libfancy*"; fi
echo "pkg-config and the ldconfig cache no longer know libfancyalloc"
