#!/bin/sh
# SPDX-License-Identifier: MIT
# test_introspect - glibc's introspection calls under libfancymalloc
# (lib/introspect.c; fancyalloc(7), "glibc compatibility"):
#   "mallinfo2 and mallinfo report this allocator's figures": uordblks
#     grows by at least the 10 MB allocated and shrinks back, a huge block
#     shows in hblks/hblkhd, mallinfo's int fields saturate at INT_MAX;
#   "malloc_stats prints glibc's layout to stderr", its in-use total grows;
#   "malloc_info writes glibc's XML schema": python3's xml.etree parses it,
#     with one <heap> per thread heap, <total> and <system> elements, and
#     the mmap total grows by the 64 MiB block;
#   "mallopt honours M_MMAP_THRESHOLD, M_TRIM_THRESHOLD and M_TOP_PAD and
#     returns 0 for the others": each changes what it says it does;
#   a real program reading mallinfo2 under fancyrun (the C helper, and
#     python3 through ctypes) sees non-zero figures matching fancy_stats_get.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_helper introspect
I=$helpers/introspect

# Exported from libfancymalloc only; libfancyalloc keeps exporting fancy_*
# alone (debian/libfancymalloc1.symbols lists them for dpkg-gensymbols).
if command -v nm >/dev/null 2>&1; then
  nm -D --defined-only "$FANCY_LIB" | awk '{ print $3 }' >"$tmp/syms"
  for s in mallinfo mallinfo2 malloc_stats malloc_info mallopt __libc_mallinfo __libc_mallopt; do
    grep -qx "$s" "$tmp/syms" || fail "$FANCY_LIB does not export $s"
  done
  core=$(dirname "$FANCY_LIB")/libfancyalloc.so.1
  if [ -f "$core" ]; then
    nm -D --defined-only "$core" | awk '$3 !~ /^fancy_/ { print $3 }' >"$tmp/other"
    [ ! -s "$tmp/other" ] || { cat "$tmp/other" >&2; fail "$core exports more than fancy_*"; }
  fi
  ok "the introspection calls are exported by libfancymalloc only"
fi

# run_ok MODE...: the helper must exit 0 and print no FAIL line.
run_ok() {
  fancy "$I" "$@" >"$tmp/out" 2>"$tmp/err"
  st=$?
  cat "$tmp/out"
  [ $st -eq 0 ] && ! grep -q '^FAIL' "$tmp/out" || { cat "$tmp/err" >&2; fail "introspect $*: status $st"; }
}

run_ok mallinfo
ok "mallinfo2/mallinfo track the live set"

run_ok stats
grep -q '^Arena 0:$' "$tmp/err" && grep -q '^Total (incl. mmap):$' "$tmp/err" &&
  grep -q '^max mmap regions = ' "$tmp/err" || { cat "$tmp/err" >&2; fail "malloc_stats: not glibc's layout"; }
inuse=$(sed -n '/^Total/,/^max/s/^in use bytes *= *//p' "$tmp/err")
set -- $inuse
[ $# -eq 2 ] && [ "$2" -ge $(($1 + 10000000)) ] ||
  { cat "$tmp/err" >&2; fail "malloc_stats: in-use total $1 -> $2 with 10 MB more live"; }
ok "malloc_stats: glibc's layout, in use bytes $1 -> $2"

require_prog python3
run_ok info "$tmp/info1.xml" "$tmp/info2.xml"
python3 - "$tmp/info1.xml" "$tmp/info2.xml" <<'PY' || fail "malloc_info: not glibc's schema (see above)"
import sys
import xml.etree.ElementTree as ET

def check(path):
    root = ET.parse(path).getroot()          # well-formed, or it raises
    assert root.tag == "malloc" and root.get("version") == "1", root.attrib
    heaps = root.findall("heap")
    assert heaps, "no <heap>"
    for h in heaps:
        assert h.find("sizes") is not None, "<heap> without <sizes>"
        for t in ("fast", "rest"):
            assert h.find("total[@type='%s']" % t) is not None, "<heap> without total %s" % t
        for t in ("current", "max"):
            assert h.find("system[@type='%s']" % t) is not None, "<heap> without system %s" % t
        for s in h.find("sizes"):
            assert s.tag == "size" and int(s.get("count")) > 0 and int(s.get("total")) > 0
    mm = root.find("total[@type='mmap']")
    cur = root.find("system[@type='current']")
    assert mm is not None and cur is not None, "no <total type=mmap> or <system type=current>"
    heapsys = sum(int(h.find("system[@type='current']").get("size")) for h in heaps)
    return int(mm.get("count")), int(mm.get("size")), int(cur.get("size")), len(heaps), heapsys

c1, s1, sys1, h1, hs1 = check(sys.argv[1])
c2, s2, sys2, h2, hs2 = check(sys.argv[2])
assert c2 == c1 + 1 and s2 >= s1 + (64 << 20), (c1, s1, c2, s2)
assert sys2 >= sys1 + (64 << 20), (sys1, sys2)
assert hs2 >= 10000000, hs2     # the heaps' segments hold the 10 MB
print("malloc_info: %d heap(s); mmap total %d -> %d blocks, %d -> %d bytes; "
      "heaps' system %d -> %d; total system %d -> %d" % (h2, c1, c2, s1, s2, hs1, hs2, sys1, sys2))
PY
ok "malloc_info: well-formed XML in glibc's schema, figures track the live set"

run_ok mallopt
ok "mallopt: M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD honoured, others 0"

# A real program under fancyrun: the C helper, and python3 via ctypes.
fancyrun=$top_builddir/bin/fancyrun
[ -f "$fancyrun" ] || hard "$fancyrun not built"
FANCYRUN_LIBRARY=$FANCY_LIB $TIMEOUT sh "$fancyrun" "$I" report >"$tmp/out" 2>"$tmp/err"
st=$?
cat "$tmp/out"
[ $st -eq 0 ] && grep -q '^ok: mallinfo2 matches fancy_stats_get$' "$tmp/out" ||
  { cat "$tmp/err" >&2; fail "fancyrun introspect report: status $st"; }
FANCYRUN_LIBRARY=$FANCY_LIB $TIMEOUT sh "$fancyrun" python3 - >"$tmp/out" 2>"$tmp/err" <<'PY'
import ctypes
F = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
class MI2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in F]
class Stats(ctypes.Structure):   # the first fields of fancy_stats_t
    _fields_ = [(f, ctypes.c_size_t) for f in
                "bytes_live bytes_huge bytes_mapped bytes_committed bytes_purged".split()]
    _fields_ += [("rest", ctypes.c_char * 4096)]
lib = ctypes.CDLL(None)
lib.mallinfo2.restype = MI2
buf = bytearray(50_000_000)
st = Stats()
m = lib.mallinfo2()
assert lib.fancy_stats_get(ctypes.byref(st), ctypes.sizeof(st)) == 0
print("python3 mallinfo2:", " ".join("%s=%d" % (f, getattr(m, f)) for f in F))
print("python3 fancy_stats_get: bytes_live=%d bytes_huge=%d bytes_mapped=%d"
      % (st.bytes_live, st.bytes_huge, st.bytes_mapped))
assert m.arena and m.uordblks and m.hblks and m.hblkhd >= 50_000_000, "zero figures"
# The interpreter allocates between the two calls: small blocks only.
assert m.hblkhd == st.bytes_huge, "hblkhd != bytes_huge"
assert abs(m.uordblks + m.hblkhd - st.bytes_live) < (1 << 20), "uordblks + hblkhd != bytes_live"
assert abs(m.arena + m.hblkhd - st.bytes_mapped) <= (4 << 20), "arena + hblkhd != bytes_mapped"
print("python3: mallinfo2 matches fancy_stats_get")
PY
st=$?
cat "$tmp/out"
[ $st -eq 0 ] && grep -q 'matches fancy_stats_get' "$tmp/out" ||
  { cat "$tmp/err" >&2; fail "fancyrun python3 mallinfo2: status $st"; }
ok "programs reading mallinfo2 under fancyrun see the allocator's figures"
exit 0
