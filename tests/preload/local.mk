## tests/preload/local.mk - programs run under libfancymalloc (issue 4).
