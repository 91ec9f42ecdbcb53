## bin/local.mk - the fancyrun wrapper (issue 4).
