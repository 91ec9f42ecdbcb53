/* SPDX-License-Identifier: MIT */
/* version.c - the library's own version string. */
#include "internal.h"

const char *fancy_version(void) FANCY_NOEXCEPT { return PACKAGE_VERSION; }
