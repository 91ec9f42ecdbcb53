#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_manpages.sh - lint the man pages and check that every function has one.
#
# Run by `make check` (TESTS in man/local.mk), from the top build directory,
# with $srcdir set by automake; works in-tree and in a VPATH build such as
# `make distcheck`.  By hand, from the top build directory:
#
#     srcdir=/path/to/source sh /path/to/source/tests/test_manpages.sh
#
# Checks, each failure naming the page or symbol at fault:
#   (a) every page in man/ renders without warnings: `groff -man -t -ww -z`
#       and, when man-db is installed, what lintian runs
#       (`MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z`), both from a
#       man root (man3/, man7/) so that `.so man3/x.3` links resolve; and
#       lexgrog (when installed) parses each NAME line and finds the page's
#       own name in it, which is what whatis/apropos need;
#   (b) every fancy_* symbol exported by the built lib/.libs/libfancyalloc.so
#       (and libfancymalloc.so, when built) has a page man/<symbol>.3;
#   (c) every function declared in include/fancyalloc.h has a page, and its
#       prototype appears, as in the header minus the attribute macros, in
#       the rendered SYNOPSIS of a page;
#   (d) every page is listed in dist_man_MANS in man/local.mk (else neither
#       `make install` nor `make dist` takes it), and every listed page exists;
#   (e) every .TH line names the version of configure.ac (fa_version), so a
#       release cannot ship pages with a stale version.
#
# Exit status (automake): 0 pass, 1 fail, 77 skip (groff, tbl or nm
# missing), 99 hard error (source tree not found).

me=test_manpages

# Automake exports srcdir (relative to the top build directory, where this
# runs); fall back on the directory above this script.
top_srcdir=${srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}

skip() { echo "$me: SKIP: $*"; exit 77; }
hard() { echo "$me: ERROR: $*" >&2; exit 99; }

# Absolute paths: the checks below run from a temporary man root.
top_srcdir=$(cd "$top_srcdir" && pwd) || hard "no source directory $top_srcdir"
top_builddir=$(cd "$top_builddir" && pwd) || hard "no build directory $top_builddir"
mansrc=$top_srcdir/man
header=$top_srcdir/include/fancyalloc.h
localmk=$mansrc/local.mk

for tool in groff tbl nm; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -f "$header" ] || hard "no $header (srcdir=$top_srcdir)"
[ -d "$mansrc" ] || hard "no $mansrc"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX") || hard "mktemp failed"
trap 'rm -rf "$tmp"' 0
trap 'exit 1' HUP INT TERM

nfail=0
fail() { echo "$me: FAIL: $*" >&2; nfail=$((nfail + 1)); }
# pass MARK TEXT: report TEXT if no failure was counted since MARK.
pass() { [ "$nfail" -eq "$1" ] && shift && echo "$me: ok: $*"; }

# A man root, as installed: man1/*.1, man3/*.3 and man7/*.7.
mkdir "$tmp/root" "$tmp/root/man1" "$tmp/root/man3" "$tmp/root/man7" || hard "cannot fill $tmp"
npages=0
for f in "$mansrc"/*.1 "$mansrc"/*.3 "$mansrc"/*.7; do
  [ -f "$f" ] || continue
  base=${f##*/}
  cp "$f" "$tmp/root/man${base##*.}/" || hard "cannot copy $f"
  npages=$((npages + 1))
done
[ "$npages" -gt 0 ] || hard "no pages in $mansrc"
cd "$tmp/root" || hard "cd $tmp/root"

is_so() { head -n 1 "$1" | grep -q '^\.so '; }

# ---------------------------------------------------------------------------
# (a) rendering and whatis
# ---------------------------------------------------------------------------
mark=$nfail
have_man=no
command -v man >/dev/null 2>&1 && have_man=yes
have_lexgrog=no
command -v lexgrog >/dev/null 2>&1 && have_lexgrog=yes
for page in man1/*.1 man3/*.3 man7/*.7; do
  [ -f "$page" ] || continue
  name=${page##*/}; name=${name%.*}
  if ! groff -man -t -ww -z "$page" >/dev/null 2>"$tmp/err" || [ -s "$tmp/err" ]; then
    fail "man/${page#*/}: groff -man -t -ww -z:"
    sed 's/^/    /' "$tmp/err" >&2
  fi
  if [ $have_man = yes ]; then
    if ! LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
         man --warnings -E UTF-8 -l -Tutf8 -Z "$page" >/dev/null 2>"$tmp/err" \
       || [ -s "$tmp/err" ]; then
      fail "man/${page#*/}: man --warnings -E UTF-8 -l -Tutf8 -Z (lintian):"
      sed 's/^/    /' "$tmp/err" >&2
    fi
  fi
  if is_so "$page"; then
    target=$(sed -n '1s/^\.so[ 	]*//p' "$page")
    [ -f "$target" ] || fail "man/${page#*/}: .so target $target does not exist"
  elif ! grep -q '^\.TH ' "$page"; then
    fail "man/${page#*/}: no .TH line"
  elif ! awk '/^\.SH/ { on = ($0 ~ /^\.SH "?NAME"?$/); next } on' "$page" |
         grep -qF '\-'; then
    fail "man/${page#*/}: the NAME line needs \\- between names and text"
  fi
  if [ $have_lexgrog = yes ]; then
    if ! lexgrog "$page" >"$tmp/whatis" 2>&1 || grep -q 'parse failed' "$tmp/whatis"; then
      fail "man/${page#*/}: lexgrog cannot parse the NAME section (use \"name \\- text\"):"
      sed 's/^/    /' "$tmp/whatis" >&2
    elif ! grep -q "\"$name - " "$tmp/whatis"; then
      fail "man/${page#*/}: its NAME section does not list $name"
    fi
  fi
done
[ $have_man = yes ] || echo "$me: note: man is not installed; lintian's check skipped"
[ $have_lexgrog = yes ] || echo "$me: note: lexgrog is not installed; NAME parsing not checked"
pass "$mark" "$npages pages render without warnings"

# ---------------------------------------------------------------------------
# (b) every exported fancy_* symbol has a page
# ---------------------------------------------------------------------------
for lib in libfancyalloc libfancymalloc; do
  so=$top_builddir/lib/.libs/$lib.so
  if [ ! -e "$so" ]; then
    [ $lib = libfancyalloc ] &&
      echo "$me: note: $so not built; exported symbols not checked"
    continue
  fi
  if ! nm -D --defined-only "$so" >"$tmp/nm" 2>"$tmp/err"; then
    fail "nm -D --defined-only $so failed:"
    sed 's/^/    /' "$tmp/err" >&2
    continue
  fi
  # "address type name[@version]"; keep fancy_* names.
  awk 'NF >= 3 { sub(/@.*/, "", $3); if ($3 ~ /^fancy_/) print $3 }' \
    "$tmp/nm" | sort -u >"$tmp/syms"
  if [ ! -s "$tmp/syms" ]; then
    fail "$so exports no fancy_* symbol"
    continue
  fi
  mark=$nfail
  while read -r sym; do
    [ -f "man3/$sym.3" ] || fail "$lib exports $sym, which has no page man/$sym.3"
  done <"$tmp/syms"
  pass "$mark" "$(wc -l <"$tmp/syms") fancy_* symbols of $so have pages"
done

# ---------------------------------------------------------------------------
# (c) every function of the header has a page and its prototype
# ---------------------------------------------------------------------------
# Strip comments and preprocessor lines, cut into declarations at ';', keep
# those that declare a fancy_* function, drop the attribute macros and
# anything up to an extern "C" brace, and squeeze blanks:
#   void *fancy_malloc(size_t size);
awk '{ s = s $0 "\n" }
     END { while ((i = index(s, "/*")) > 0) {
             rest = substr(s, i + 2); j = index(rest, "*/")
             if (j == 0) break
             s = substr(s, 1, i - 1) " " substr(rest, j + 2)
           }
           printf "%s", s }' "$header" |
  grep -v '^[[:space:]]*#' | tr '\n' ' ' | tr ';' '\n' |
  grep 'fancy_[a-z0-9_]*[[:space:]]*(' |
  sed -e 's/.*[{}]//' \
      -e 's/FANCY_[A-Z0-9_]*[[:space:]]*([^()]*)//g' \
      -e 's/FANCY_[A-Z0-9_]*//g' \
      -e 's/[[:space:]][[:space:]]*/ /g' -e 's/^ //' -e 's/ $//' \
      -e 's/ (/(/' -e 's/$/;/' >"$tmp/protos"
if [ ! -s "$tmp/protos" ]; then
  fail "found no function in $header: the parser of this script needs fixing"
fi

# The rendered SYNOPSIS of every page that is not a .so link.
: >"$tmp/synopsis"
for page in man3/*.3; do
  is_so "$page" && continue
  groff -man -t -Tascii -P-c -P-b -P-o -P-u -rLL=200n "$page" 2>/dev/null |
    awk '/^[A-Z]/ { on = ($0 == "SYNOPSIS") ; next } on' |
    sed -e 's/[[:space:]][[:space:]]*/ /g' -e 's/^ //' -e 's/ $//' \
    >>"$tmp/synopsis"
done

mark=$nfail
nfunc=0
while read -r proto; do
  func=$(echo "$proto" | sed 's/^.*[ *]\(fancy_[a-z0-9_]*\)(.*/\1/')
  nfunc=$((nfunc + 1))
  if [ ! -f "man3/$func.3" ]; then
    fail "$func is declared in include/fancyalloc.h but has no page man/$func.3"
  elif ! grep -qxF "$proto" "$tmp/synopsis"; then
    fail "no SYNOPSIS shows the header's prototype of $func: $proto"
  fi
done <"$tmp/protos"
pass "$mark" "$nfunc functions of include/fancyalloc.h have pages and prototypes"

# ---------------------------------------------------------------------------
# (d) dist_man_MANS lists exactly the pages
# ---------------------------------------------------------------------------
if [ -f "$localmk" ]; then
  mark=$nfail
  sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba' -e '}' "$localmk" |
    sed -n 's/^[[:space:]]*dist_man_MANS[[:space:]]*+\{0,1\}=//p' |
    tr ' \t' '\n\n' | sed -n 's:^man/::p' | sort -u >"$tmp/listed"
  (cd man1 && ls; cd ../man3 && ls; cd ../man7 && ls) | sort -u >"$tmp/present"
  for p in $(comm -23 "$tmp/present" "$tmp/listed"); do
    fail "man/$p is not in dist_man_MANS (man/local.mk): not installed, not distributed"
  done
  for p in $(comm -13 "$tmp/present" "$tmp/listed"); do
    fail "dist_man_MANS (man/local.mk) lists man/$p, which does not exist"
  done
  pass "$mark" "dist_man_MANS in man/local.mk lists exactly the pages"
else
  echo "$me: note: no $localmk; dist_man_MANS not checked"
fi

# ---------------------------------------------------------------------------
# (e) the .TH lines name the package version (the pages are not templates)
# ---------------------------------------------------------------------------
version=$(sed -n 's/^m4_define(\[fa_version\], *\[\([^]]*\)\]).*/\1/p' \
            "$top_srcdir/configure.ac" 2>/dev/null)
if [ -n "$version" ]; then
  mark=$nfail
  for page in man1/*.1 man3/*.3 man7/*.7; do
    is_so "$page" && continue
    grep -q "^\.TH .* \"libfancyalloc $version\" " "$page" ||
      fail "man/${page#*/}: .TH does not say \"libfancyalloc $version\" (configure.ac)"
  done
  pass "$mark" ".TH lines name libfancyalloc $version"
else
  echo "$me: note: no fa_version in configure.ac; .TH versions not checked"
fi

if [ "$nfail" -gt 0 ]; then
  echo "$me: $nfail failure(s)" >&2
  exit 1
fi
echo "$me: PASS"
exit 0
