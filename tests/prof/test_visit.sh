#!/bin/sh
# SPDX-License-Identifier: MIT
# test_visit.sh - tests/prof/visit_helper (see there), plain and with
# FANCY_PROF=1 FANCY_PROF_SAMPLE=4k (sampled blocks are large blocks, still
# visited once) and FANCY_CHECK=1.
. "${srcdir:-.}/tests/prof/common.sh"
"$helpers/visit_helper" || fail "visit_helper"
FANCY_PROF=1 FANCY_PROF_SAMPLE=4k "$helpers/visit_helper" || fail "visit_helper with FANCY_PROF=1"
FANCY_CHECK=1 "$helpers/visit_helper" || fail "visit_helper with FANCY_CHECK=1"
