#!/bin/sh
# SPDX-License-Identifier: MIT
# test_git - git under libfancymalloc: init a repository, commit 2000 small
# files and then a change to 200 of them, gc (pack-objects searches deltas
# in several threads), log and fsck; with fixed names and dates the commit
# hashes, the object list and fsck's verdict must equal glibc's.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_prog git
check_preloaded git

GIT_AUTHOR_NAME='Fancy Test'; GIT_AUTHOR_EMAIL='test@example.org'
GIT_COMMITTER_NAME='Fancy Test'; GIT_COMMITTER_EMAIL='test@example.org'
GIT_AUTHOR_DATE='2026-01-01T00:00:00+0000'; GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE
GIT_CONFIG_NOSYSTEM=1; HOME=$tmp; XDG_CONFIG_HOME=$tmp
export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL \
  GIT_AUTHOR_DATE GIT_COMMITTER_DATE GIT_CONFIG_NOSYSTEM HOME XDG_CONFIG_HOME
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY

# steps RUNNER DIR: the whole scenario, with every git command run by
# RUNNER (glibc or fancy); what is compared goes to DIR.out.
steps() {
  run=$1 dir=$tmp/$2
  mkdir "$dir" && cd "$dir" || hard "cannot make $dir"
  {
    $run git -c init.defaultBranch=main init -q . &&
    $run git config gc.autoDetach false &&
    $run git config pack.threads 2 &&
    i=0 &&
    while [ $i -lt 2000 ]; do
      d=dir$((i % 20))
      [ -d $d ] || mkdir $d
      printf 'file %d\nline two of %d\n%s\n' $i $i "$(printf '%0*d' $((i % 97)) 0)" >$d/f$i.txt
      i=$((i + 1))
    done &&
    $run git add . &&
    $run git commit -q -m 'first: 2000 files' &&
    i=0 &&
    while [ $i -lt 2000 ]; do
      echo "changed $i" >>dir$((i % 20))/f$i.txt
      i=$((i + 10))
    done &&
    $run git commit -q -a -m 'second: 200 files changed' &&
    $run git checkout -q -b side HEAD~1 &&
    $run git rm -q -r dir7 &&
    $run git commit -q -m 'side: drop dir7' &&
    $run git checkout -q main &&
    $run git merge -q --no-edit side &&
    $run git gc -q &&
    $run git repack -a -d -f -q
  } >"$dir.steps" 2>&1 || { cat "$dir.steps" >&2; fail "the git steps failed under $run"; }
  {
    echo "== log"; $run git log --format='%H %s'
    echo "== tree"; $run git rev-parse 'HEAD^{tree}'
    echo "== objects"; $run git cat-file --batch-all-objects --batch-check | sort
    echo "== fsck"; $run git fsck --full --strict 2>&1; echo "fsck status $?"
    echo "== status"; $run git status --porcelain
    echo "== diff"; $run git diff --stat HEAD~2 HEAD
  } >"$dir.out" 2>&1
  cd "$tmp" || hard "cd $tmp"
}

steps glibc g
steps fancy f
grep -q '^fsck status 0$' "$tmp/f.out" || { cat "$tmp/f.out" >&2; fail "git fsck failed under libfancymalloc"; }
same_output "git log/objects/fsck" "$tmp/g.out" "$tmp/f.out"
exit 0
