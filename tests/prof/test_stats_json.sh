#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_stats_json.sh - fancy_stats_json's document through python3's json
# parser.  Issue 16: "JSON output passes a real parser (python3's json) in
# a test, and its totals match fancy_stats_get".  fancy_stats_json(3):
# "totals and classes hold fancy_stats_get's figures, field for field";
# "the bytes_live of heaps and abandoned, less kept.bytes, add up to
# totals.bytes_live minus totals.bytes_huge" (with remote frees pending in
# a live heap and blocks kept by another thread); fancyalloc(7):
# "FANCY_STATS=json prints the same document at exit".
. "${srcdir:-.}/tests/prof/common.sh"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
FANCY_STATS=json "$helpers/stats_json_helper" >"$tmp/out" 2>"$tmp/err" || fail "stats_json_helper"
python3 - "$tmp/out" "$tmp/err" <<'PY' || fail "JSON checks"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
doc, ref = json.loads(lines[0]), json.loads(lines[1])
assert doc["schema"] == "fancyalloc-stats/1", doc["schema"]
for k, v in doc["totals"].items():
    assert ref[k] == v, (k, v, ref[k])
assert set(doc["totals"]) == set(ref) - {"classes"}, set(ref) ^ set(doc["totals"])
assert [[c["block_size"], c["blocks_live"], c["pages"]] for c in doc["classes"]] == ref["classes"]
t = doc["totals"]
assert t["bytes_live"] > 0 and t["huge_blocks"] == 1 and t["bytes_huge"] >= 3 << 20
heaps = sum(h["bytes_live"] for h in doc["heaps"]) + doc["abandoned"]["bytes_live"]
assert doc["kept"]["blocks"] == 20, doc["kept"]   # the helper's keeper thread
assert heaps - doc["kept"]["bytes"] == t["bytes_live"] - t["bytes_huge"], (heaps, doc["kept"], t)
assert sum(h["self"] for h in doc["heaps"]) == 1
assert doc["abandoned"]["blocks_live"] >= 100, doc["abandoned"]
assert doc["options"]["prof"] is False and doc["prof"]["enabled"] is False
assert doc["options"]["huge_blocks"] is True  # FANCY_HUGE_BLOCKS: on by default
# FANCY_STATS=json: the document at exit, on stderr
atexit = [l for l in open(sys.argv[2]).read().splitlines() if l.startswith("{")]
assert len(atexit) == 1, open(sys.argv[2]).read()
assert json.loads(atexit[0])["schema"] == "fancyalloc-stats/1"
print("totals, classes, heaps and the exit report check out")
PY
ok "fancy_stats_json"
FANCY_PROF=1 FANCY_STATS=json "$helpers/stats_json_helper" >"$tmp/out" 2>/dev/null || fail "with FANCY_PROF=1"
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); assert d["prof"]["enabled"] and d["options"]["prof_sample"] == 524288' "$tmp/out" ||
  fail "prof section with FANCY_PROF=1"
ok "prof section"
# fancy_stats_json(3): totals hold fancy_stats_get's soft_limit and options
# the setting in effect.
FANCY_MEMORY_SOFT_LIMIT=64m "$helpers/stats_json_helper" >"$tmp/out" 2>/dev/null ||
  fail "with FANCY_MEMORY_SOFT_LIMIT=64m"
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); assert d["totals"]["soft_limit"] == d["options"]["soft_limit"] == 64 << 20 and d["totals"]["bytes_resident"] > 0, (d["totals"], d["options"])' "$tmp/out" ||
  fail "soft_limit in totals and options with FANCY_MEMORY_SOFT_LIMIT=64m"
ok "soft limit figures"
