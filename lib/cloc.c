// SPDX-License-Identifier: GPL-2.0-only
#include <locale.h>

#include "cloc.h"

void xvpc_use_c_locale(void)
{
	/* The C locale object: a constant of glibc, never freed. */
	locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);

	if (c != (locale_t)0)
		uselocale(c);
}
