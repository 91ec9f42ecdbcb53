## tests/stress/local.mk - stress programs (issue 8).
