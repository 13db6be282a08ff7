// SPDX-License-Identifier: GPL-2.0-only
/* docs/openapi.json and the controller's route table agree: every route is
 * documented with its method, every documented operation is served, and
 * the served document is the file. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "controller/api.h"

#define DOC "docs/openapi.json"

static const char *const methods[] = {"get",	 "post",   "put",
				      "patch",	 "delete", "head",
				      "options", "trace",  NULL};

static bool route_served(const char *method, const char *path)
{
	for (const struct api_route *r = api_routes; r->method; r++)
		if (!strcasecmp(r->method, method) && !strcmp(r->path, path))
			return true;
	return false;
}

static void test_document_matches_routes(void **state)
{
	json_object *doc = json_object_from_file(DOC), *paths, *item, *op;
	int documented = 0, served = 0;

	(void)state;
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "paths", &paths));
	/* Documented -> served. */
	json_object_object_foreach(paths, path, it)
	{
		for (int i = 0; methods[i]; i++) {
			if (!json_object_object_get_ex(it, methods[i], &op))
				continue;
			documented++;
			if (!route_served(methods[i], path))
				fail_msg("%s %s is documented but not served",
					 methods[i], path);
		}
	}
	/* Served -> documented. */
	for (const struct api_route *r = api_routes; r->method; r++) {
		char m[16];

		served++;
		snprintf(m, sizeof(m), "%s", r->method);
		for (char *p = m; *p; p++)
			*p = *p - 'A' + 'a';
		if (!json_object_object_get_ex(paths, r->path, &item) ||
		    !json_object_object_get_ex(item, m, &op))
			fail_msg("%s %s is served but not documented",
				 r->method, r->path);
		/* Admin routes say so. */
		if (r->auth == API_AUTH_ADMIN) {
			json_object *sec =
				json_object_object_get(op, "security");

			assert_non_null(sec);
			assert_non_null(strstr(json_object_to_json_string(sec),
					       "admin"));
		}
	}
	assert_int_equal(documented, served);
	json_object_put(doc);
}

static void test_served_document_is_the_file(void **state)
{
	FILE *f = fopen(DOC, "r");
	char *buf;
	long n;

	(void)state;
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	assert_int_equal(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	assert_string_equal(api_openapi_json, buf);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_document_matches_routes),
		cmocka_unit_test(test_served_document_is_the_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
