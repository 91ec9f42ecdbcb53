#!/bin/sh
# SPDX-License-Identifier: MIT
# test_dlopen - a program not linked with libfancyalloc dlopens
# lib/.libs/libfancyalloc.so.1 and uses fancy_malloc/fancy_free and the
# rest through dlsym, from several threads (tests/preload/dlopen_api.c).
#
# The initial-exec TLS caveat: by default the library reaches its thread
# heap through initial-exec TLS (the ELF flag STATIC_TLS), which a library
# loaded by dlopen can only get from the loader's small surplus of static
# TLS.  That surplus normally suffices; with none
# (GLIBC_TUNABLES=glibc.rtld.optional_static_tls=0) dlopen fails, and
# configure --disable-initial-exec-tls is the fix.  This test checks that
# a build without STATIC_TLS loads even then.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_helper dlopen_api
lib=${FANCY_TEST_API_LIBRARY:-$top_builddir/lib/.libs/libfancyalloc.so.1}
[ -f "$lib" ] || skip "$lib not built"
if nm -D "$lib" 2>/dev/null | grep -Eq ' (__asan_init|__tsan_init|__msan_init|__hwasan_init)$'; then
  skip "$lib is built with sanitizers; it cannot be loaded late"
fi

$TIMEOUT "$helpers/dlopen_api" "$lib" >"$tmp/out" 2>&1
st=$?
cat "$tmp/out"
[ $st -eq 0 ] || fail "dlopen_api $lib: status $st"

static_tls=unknown
if command -v readelf >/dev/null 2>&1; then
  if readelf -d "$lib" | grep -q 'STATIC_TLS'; then static_tls=yes; else static_tls=no; fi
fi
GLIBC_TUNABLES=glibc.rtld.optional_static_tls=0 $TIMEOUT "$helpers/dlopen_api" "$lib" >"$tmp/out0" 2>&1
st0=$?
case $static_tls in
  no)
    [ $st0 -eq 0 ] || { cat "$tmp/out0" >&2; fail "general-dynamic TLS build, yet dlopen fails without static TLS surplus"; }
    ok "general-dynamic TLS: dlopen works even with glibc.rtld.optional_static_tls=0" ;;
  yes)
    echo "$me: note: initial-exec TLS build (STATIC_TLS); without the loader's static TLS surplus:"
    sed 's/^/    /' "$tmp/out0"
    echo "$me: note: configure --disable-initial-exec-tls for programs that dlopen the library" ;;
esac
exit 0
