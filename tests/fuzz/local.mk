## tests/fuzz/local.mk - the libFuzzer target (issue 8).
