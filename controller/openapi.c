// SPDX-License-Identifier: GPL-2.0-only
/* docs/openapi.json, embedded at build time (the Makefile makes this object
 * depend on it) and NUL terminated. */
#include "api.h"

__asm__(".section .rodata\n"
	".global api_openapi_json\n"
	".type api_openapi_json, @object\n"
	".balign 16\n"
	"api_openapi_json:\n"
	".incbin \"docs/openapi.json\"\n"
	".byte 0\n"
	".size api_openapi_json, . - api_openapi_json\n"
	".previous\n");
