#!/bin/sh
# SPDX-License-Identifier: MIT
# test_claims_list - every promise has a test: each man page (alias pages
# by their function name), each row of README.md's API table and each row
# of its switches-and-variables table has a line in tests/claims/CLAIMS,
# and every test that CLAIMS names exists.  A page, a function or a table
# row added without a claim line fails here, so it shows up in review.
me=test_claims_list
top=$(cd "${srcdir:-$(dirname "$0")/../..}" && pwd) || exit 99
claims=$top/tests/claims/CLAIMS
[ -r "$claims" ] || { echo "$me: ERROR: no $claims" >&2; exit 99; }
bad=0
miss() { echo "$me: FAIL: $*" >&2; bad=1; }

# The claim lines, without comments: PAGE | SENTENCE | FILE:NAME.
grep -v '^#' "$claims" | grep -v '^[[:space:]]*$' >"${TMPDIR:-/tmp}/$me.$$" || exit 99
lines=${TMPDIR:-/tmp}/$me.$$
trap 'rm -f "$lines"' 0

# Every line well formed, and its test present.
n=0
while IFS= read -r line; do
  n=$((n + 1))
  ref=${line##*| }
  case $line in
    *' | '*' | '*) ;;
    *) miss "malformed line in CLAIMS: $line"; continue ;;
  esac
  file=${ref%%:*}
  name=${ref#*:}
  [ -n "$file" ] && [ -n "$name" ] && [ "$file" != "$ref" ] || { miss "no FILE:NAME in: $line"; continue; }
  [ -f "$top/$file" ] || { miss "$file does not exist (claim: $line)"; continue; }
  grep -qF -- "$name" "$top/$file" || miss "$file does not contain \"$name\" (claim: $line)"
done <"$lines"

# Every man page, by file name: fancy_malloc.3, fancyalloc.7, fancyrun.1.
for page in "$top"/man/*.[0-9]; do
  p=${page##*/}
  grep -q "^$p | " "$lines" || miss "man page $p has no claim in CLAIMS"
done

# Every row of README's API table (rows beginning "| `fancy_") and of the
# switches-and-variables table (rows beginning "| `--" or "| | `FANCY_"):
# the first backquoted cell must start a README claim.
sed -n 's/^| `\(fancy_[^`]*\)`.*/\1/p; s/^| `\(--[^`]*\)`.*/\1/p; s/^| | `\(FANCY_[^`]*\)`.*/\1/p' \
  "$top/README.md" | while IFS= read -r key; do
  grep -qF -- "README | \`$key\`" "$lines" || { echo "$me: FAIL: README row \`$key\` has no claim in CLAIMS" >&2; echo x; }
done | grep -q x && bad=1
rows=$(sed -n '/^| `fancy_/p; /^| `--/p; /^| | `FANCY_/p' "$top/README.md" | wc -l)
[ "$rows" -ge 30 ] || miss "only $rows README table rows found: has the table format changed?"

[ $bad -eq 0 ] || exit 1
echo "$me: ok: $n claims; every man page and all $rows README table rows have one, every test named exists"
exit 0
