## bin/local.mk - the fancyrun wrapper (issue 4).
##
## bin/fancyrun is made from bin/fancyrun.in at make time, not by
## configure, so that $(libdir) is fully expanded (configure would write
## "${exec_prefix}/lib") and follows `make libdir=...'.  The build-tree copy
## names the installation's library; the tests point it at
## lib/.libs/libfancymalloc.so.1 with FANCYRUN_LIBRARY.

bin_SCRIPTS += bin/fancyrun
CLEANFILES += bin/fancyrun
EXTRA_DIST += bin/fancyrun.in

## FANCYRUN_DEFAULT_LIBRARY is what fancyrun preloads when neither
## FANCYRUN_LIBRARY nor --library says otherwise.  A distribution with
## multiarch library directories may set it to the bare soname on the make
## command line (debian/rules does), so that the dynamic loader finds the
## library of each program's own architecture.
FANCYRUN_DEFAULT_LIBRARY = $(libdir)/libfancymalloc.so.$(FA_SONAME_MAJOR)

fa_edit_fancyrun = $(SED) \
	-e 's|@FANCYRUN_DEFAULT_LIBRARY[@]|$(FANCYRUN_DEFAULT_LIBRARY)|g' \
	-e 's|@PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g'

bin/fancyrun: $(srcdir)/bin/fancyrun.in Makefile
	$(AM_V_GEN)$(MKDIR_P) bin && rm -f $@ $@.tmp && \
	$(fa_edit_fancyrun) $(srcdir)/bin/fancyrun.in >$@.tmp && \
	chmod +x $@.tmp && mv -f $@.tmp $@
