# EM_CHECK_CFLAG(FLAG, ACTION-IF-OK) — does $CC accept FLAG (warnings as errors)?
AC_DEFUN([EM_CHECK_CFLAG], [
  AC_MSG_CHECKING([whether $CC accepts $1])
  em_save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -Werror $1"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])], [AC_MSG_RESULT([yes]); $2], [AC_MSG_RESULT([no])])
  CFLAGS=$em_save_CFLAGS
])
# EM_CHECK_LDFLAG(FLAG, ACTION-IF-OK)
AC_DEFUN([EM_CHECK_LDFLAG], [
  AC_MSG_CHECKING([whether the linker accepts $1])
  em_save_LDFLAGS=$LDFLAGS
  LDFLAGS="$LDFLAGS $1"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])], [AC_MSG_RESULT([yes]); $2], [AC_MSG_RESULT([no])])
  LDFLAGS=$em_save_LDFLAGS
])
