#!/bin/sh
# SPDX-License-Identifier: MIT
# test_sqlite - the sqlite3 shell under libfancymalloc: 100,000 rows, two
# indexes, an integrity check, aggregate and indexed queries and an
# ordered dump; the output must equal glibc's byte for byte.
. "${srcdir:-$(dirname "$0")/../..}/tests/preload/common.sh"

require_preload
require_prog sqlite3
check_preloaded sqlite3 -version

HOME=$tmp
export HOME
cat >"$tmp/script.sql" <<'SQL'
PRAGMA journal_mode = WAL;
PRAGMA cache_size = -2000;
CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, s TEXT NOT NULL, b BLOB);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t (id, k, s, b)
  SELECT x, (x * 7919) % 100003,
         printf('%08d-%s', (x * 31337) % 1000003,
                substr('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + x % 26, 5 + x % 27)),
         zeroblob(x % 300)
  FROM c;
COMMIT;
CREATE INDEX t_k ON t (k);
CREATE INDEX t_s ON t (s, k);
PRAGMA integrity_check;
SELECT count(*), sum(k), total(length(s)), sum(length(b)) FROM t;
SELECT id, k, s FROM t WHERE k BETWEEN 5000 AND 5040 ORDER BY k, id;
SELECT k % 10 AS g, count(*), min(s), max(s) FROM t GROUP BY g ORDER BY g;
SELECT count(*) FROM t AS a JOIN t AS b ON a.k = b.id WHERE b.s LIKE '0000%';
UPDATE t SET s = s || '-x', b = zeroblob(700) WHERE id % 7 = 0;
DELETE FROM t WHERE id % 11 = 0;
VACUUM;
PRAGMA integrity_check;
SELECT id, k, s, length(b) FROM t ORDER BY s, id;
SQL

# run RUNNER NAME
run() {
  rm -f "$tmp/$2.db" "$tmp/$2.db-wal" "$tmp/$2.db-shm"
  $1 sqlite3 -batch -bail "$tmp/$2.db" <"$tmp/script.sql" >"$tmp/$2.out" 2>"$tmp/$2.err"
}
run glibc g; gs=$?
run fancy f; fs=$?
[ $fs -eq 0 ] || { cat "$tmp/f.err" >&2; fail "sqlite3 exited with $fs under libfancymalloc"; }
same_status sqlite3 $gs $fs
[ "$(grep -c '^ok$' "$tmp/f.out")" -eq 2 ] || fail "PRAGMA integrity_check did not say ok twice"
[ "$(wc -l <"$tmp/f.out")" -gt 90000 ] || fail "the ordered dump is short"
same_output "sqlite3 queries" "$tmp/g.out" "$tmp/f.out"
exit 0
