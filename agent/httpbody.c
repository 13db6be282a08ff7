// SPDX-License-Identifier: GPL-2.0-only
#include <stdlib.h>
#include <string.h>

#include "httpbody.h"

size_t http_body_write(char *d, size_t sz, size_t nm, void *arg)
{
	struct http_body *b = arg;
	size_t len = sz * nm;

	if (b->n + len + 1 > b->max) {
		b->too_large = true;
		return 0;
	}
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *p;

		while (cap < b->n + len + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, len);
	b->n += len;
	b->p[b->n] = '\0';
	return len;
}

void http_body_reset(struct http_body *b)
{
	b->n = 0;
	b->too_large = false;
}

void http_body_free(struct http_body *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}
