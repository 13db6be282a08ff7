// SPDX-License-Identifier: GPL-2.0-only
/* xvpcctl's tenant commands (cli/cmd_api.c) against the real server on a
 * loopback ephemeral port: create, list, show, delete, in tables and
 * --json, and errors from the API reaching the user. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "cli/cli.h"
#include "controller/api.h"
#include "log.h"

#define ADMIN "xva_cli_admin_token_000"

/* cli/main.c is not in libcli.a: the two helpers the commands use. */
static char last_error[512];

int cli_error(const struct cli_ctx *ctx, int err, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err ? err : -EINVAL;
}

bool cli_is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

struct fix {
	char dir[64];
	char out[80];
	struct store *s;
	struct api api;
	struct http_server *srv;
	char base[64];
};

static struct fix *F;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	bool gen;

	F = calloc(1, sizeof(*F));
	strcpy(F->dir, "/tmp/xvpc-cli-XXXXXX");
	if (!mkdtemp(F->dir))
		return -1;
	snprintf(F->out, sizeof(F->out), "%s/stdout", F->dir);
	if (store_embed_open(F->dir, NULL, &F->s) ||
	    api_init(&F->api, F->s, ADMIN, &gen) ||
	    http_start(&F->api, "127.0.0.1:0", &F->srv))
		return -1;
	snprintf(F->base, sizeof(F->base), "http://127.0.0.1:%u",
		 http_port(F->srv));
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	http_stop(F->srv);
	api_fini(&F->api);
	store_close(F->s);
	nftw(F->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(F);
	return 0;
}

/* Runs a command with stdout captured; returns its result, *out the text
 * (malloc'ed). */
static int run(int (*cmd)(struct cli_ctx *, int, char **), const char *token,
	       bool json, char **out, int argc, ...)
{
	struct cli_ctx ctx = {.json = json, .api = F->base, .token = token};
	char *argv[16];
	va_list ap;
	int saved, fd, ret;
	FILE *f;
	long n;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(F->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	last_error[0] = '\0';
	ret = cmd(&ctx, argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	f = fopen(F->out, "r");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	*out = calloc(1, n + 1);
	if (fread(*out, 1, n, f) != (size_t)n)
		n = 0;
	fclose(f);
	return ret;
}

static void test_commands(void **state)
{
	json_object *o;
	char *out, tok[128];

	(void)state;
	/* Tenant with --json: the token comes back. */
	assert_int_equal(
		run(cmd_tenant, ADMIN, true, &out, 2, "create", "acme"), 0);
	o = json_tokener_parse(out);
	assert_non_null(o);
	snprintf(tok, sizeof(tok), "%s",
		 json_object_get_string(json_object_object_get(o, "token")));
	json_object_put(o);
	free(out);
	assert_int_equal(run(cmd_node, ADMIN, false, &out, 4, "create", "n1",
			     "--ip", "192.168.7.1"),
			 0);
	free(out);

	/* Human table. */
	assert_int_equal(run(cmd_vpc, tok, false, &out, 4, "create", "blue",
			     "--cidr", "10.0.0.0/16"),
			 0);
	assert_non_null(strstr(out, "NAME"));
	assert_non_null(strstr(out, "10.0.0.0/16"));
	free(out);
	assert_int_equal(run(cmd_subnet, tok, false, &out, 7, "create", "--vpc",
			     "1", "--cidr", "10.0.1.0/24", "--vni", "4242"),
			 0);
	assert_non_null(strstr(out, "4242"));
	free(out);
	assert_int_equal(run(cmd_port, tok, false, &out, 9, "create",
			     "--subnet", "1", "--node", "n1", "--ifname", "xv0",
			     "--ip", "10.0.1.20"),
			 0);
	assert_non_null(strstr(out, "10.0.1.20"));
	free(out);

	/* list --json is the API's objects, all pages. */
	assert_int_equal(run(cmd_port, tok, true, &out, 1, "list"), 0);
	o = json_tokener_parse(out);
	assert_int_equal(json_object_array_length(o), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(
				    json_object_array_get_idx(o, 0), "node")),
			    "n1");
	json_object_put(o);
	free(out);
	assert_int_equal(run(cmd_subnet, tok, false, &out, 2, "show", "1"), 0);
	assert_non_null(strstr(out, "02:78:76:70:63:01"));
	free(out);

	/* The API's refusal reaches the user with its field. */
	assert_int_equal(run(cmd_subnet, tok, false, &out, 2, "delete", "1"),
			 -EINVAL);
	assert_non_null(strstr(last_error, "409"));
	free(out);
	assert_int_equal(run(cmd_port, tok, false, &out, 5, "create",
			     "--subnet", "1", "--ip", "10.0.1.255"),
			 -EINVAL);
	assert_non_null(strstr(last_error, "field 'ip'"));
	free(out);
	/* Bad usage never reaches the server. */
	assert_int_equal(run(cmd_vpc, tok, false, &out, 2, "create", "x"),
			 -EINVAL);
	assert_non_null(strstr(last_error, "--cidr"));
	free(out);
	assert_int_equal(run(cmd_vpc, NULL, false, &out, 1, "list"), -EINVAL);
	assert_non_null(strstr(last_error, "token"));
	free(out);

	assert_int_equal(run(cmd_port, tok, false, &out, 2, "delete", "1"), 0);
	free(out);
	assert_int_equal(run(cmd_subnet, tok, false, &out, 2, "delete", "1"),
			 0);
	free(out);
	assert_int_equal(run(cmd_vpc, tok, true, &out, 1, "list"), 0);
	o = json_tokener_parse(out);
	assert_int_equal(json_object_array_length(o), 1);
	json_object_put(o);
	free(out);
}

/* Learning mode: create --mode learn, show with its gateways, update
 * --mode at run time, a bad mode refused with its field. */
static void test_vpc_mode(void **state)
{
	json_object *o;
	char *out, tok[128];

	(void)state;
	assert_int_equal(
		run(cmd_tenant, ADMIN, true, &out, 2, "create", "acme"), 0);
	o = json_tokener_parse(out);
	snprintf(tok, sizeof(tok), "%s",
		 json_object_get_string(json_object_object_get(o, "token")));
	json_object_put(o);
	free(out);
	assert_int_equal(run(cmd_node, ADMIN, false, &out, 4, "create", "n1",
			     "--ip", "192.168.7.1"),
			 0);
	free(out);
	assert_int_equal(run(cmd_node, ADMIN, false, &out, 4, "create", "n2",
			     "--ip", "192.168.7.2"),
			 0);
	free(out);
	assert_int_equal(run(cmd_vpc, tok, false, &out, 6, "create", "big",
			     "--cidr", "10.0.0.0/16", "--mode", "learn"),
			 0);
	assert_non_null(strstr(out, "GATEWAYS"));
	free(out);
	assert_int_equal(run(cmd_vpc, tok, false, &out, 2, "show", "1"), 0);
	assert_non_null(strstr(out, "learn"));
	assert_true(strstr(out, "n1,n2") || strstr(out, "n2,n1"));
	free(out);
	assert_int_equal(run(cmd_vpc, tok, true, &out, 4, "update", "1",
			     "--mode", "push"),
			 0);
	o = json_tokener_parse(out);
	assert_string_equal(
		json_object_get_string(json_object_object_get(o, "mode")),
		"push");
	assert_null(json_object_object_get(o, "gateways"));
	json_object_put(o);
	free(out);
	assert_int_equal(run(cmd_vpc, tok, false, &out, 4, "update", "1",
			     "--mode", "flood"),
			 -EINVAL);
	assert_non_null(strstr(last_error, "field 'mode'"));
	free(out);
	assert_int_equal(run(cmd_vpc, tok, false, &out, 2, "update", "1"),
			 -EINVAL);
	free(out);
	assert_int_equal(run(cmd_vpc, tok, false, &out, 4, "update", "1",
			     "--cidr", "10.1.0.0/16"),
			 -EINVAL);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vpc_mode, setup, teardown),
	};
	int ret;

	xvpc_log_set_level(XVPC_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
