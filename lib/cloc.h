/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The calling thread on the C locale object.
 *
 * json-c (0.16) parses every document under a copy of the thread's locale
 * (duplocale + newlocale + freelocale per json_tokener_parse_ex). On the
 * process's global locale that copy takes glibc's global locale lock and
 * allocates; on the C locale object it is free (glibc returns the object
 * itself). Measured: a 150-byte record, 4 threads on 2 cores, 3.4-3.8 us per
 * parse on the global locale, 2.4-2.7 us on the C object. Every thread of
 * ours that parses JSON calls this (cheap: a thread-local pointer; the
 * HTTP handlers call it per request, since libmicrohttpd makes the
 * threads). The process never calls setlocale(), so its global locale is
 * "C" already: numbers are formatted and parsed the same either way.
 */
#ifndef XVPC_CLOC_H
#define XVPC_CLOC_H

void xvpc_use_c_locale(void);

#endif
