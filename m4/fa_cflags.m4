# FA_CHECK_CFLAG(FLAG, ACTION-IF-OK, [ACTION-IF-NOT])
# ----------------------------------------------------
# Compile a trivial program with FLAG added to CFLAGS (and -Werror, so that a
# flag the compiler only warns about counts as unsupported).
AC_DEFUN([FA_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([fa_cv], [fa_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [fa_cv], [
    fa_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AS_VAR_SET([fa_cv], [yes])], [AS_VAR_SET([fa_cv], [no])])
    CFLAGS=$fa_save_CFLAGS])
  AS_VAR_IF([fa_cv], [yes], [$2], [$3])
  AS_VAR_POPDEF([fa_cv])
])
