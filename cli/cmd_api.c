// SPDX-License-Identifier: GPL-2.0-only
/* Tenant commands over the controller's HTTP API (docs/api.md):
 *   xvpcctl tenant|vpc|subnet|port|node create|list|show|delete
 *   xvpcctl vpc update ID [--name NAME] [--mode push|learn]
 *   xvpcctl port update ID [--name NAME] [--node NODE] [--ifname IF]
 * Human tables by default, the API's JSON with --json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "cli.h"

enum otype {
	O_STR,
	O_INT,
};

struct opt {
	const char *flag;  /* "--cidr" */
	const char *field; /* JSON field */
	enum otype type;
	bool required;
};

struct kind {
	const char *name;	/* "vpc" */
	const char *path;	/* "/v1/vpcs" */
	const char *positional; /* field filled by a bare argument, or NULL */
	const struct opt *opts;
	const char *const *cols;      /* table columns = JSON fields */
	const struct opt *patch_opts; /* `update` options; NULL: none */
};

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->n + sz * nm + 1);

	if (!p)
		return 0;
	memcpy(p + b->n, d, sz * nm);
	b->p = p;
	b->n += sz * nm;
	p[b->n] = '\0';
	return sz * nm;
}

int cli_api_call(struct cli_ctx *ctx, const char *method, const char *path,
		 const char *body, const char *idem, json_object **out)
{
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[1024], line[512];
	json_object *o = NULL, *e;
	long status = 0;
	CURLcode rc;
	CURL *c;
	int err = 0;

	*out = NULL;
	if (!ctx->token)
		return cli_error(ctx, -EINVAL,
				 "no token: pass --token or set XVPC_TOKEN");
	c = curl_easy_init();
	if (!c)
		return cli_error(ctx, -ENOMEM, "cannot start libcurl");
	snprintf(url, sizeof(url), "%s%s", ctx->api, path);
	snprintf(line, sizeof(line), "Authorization: Bearer %s", ctx->token);
	h = curl_slist_append(h, line);
	if (idem) {
		snprintf(line, sizeof(line), "Idempotency-Key: %s", idem);
		h = curl_slist_append(h, line);
	}
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		err = cli_error(ctx, -EHOSTUNREACH, "%s %s: %s", method, url,
				curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (b.p)
		o = json_tokener_parse(b.p);
	if (status >= 400) {
		const char *msg = "", *field = NULL;

		if (json_object_object_get_ex(o, "error", &e)) {
			msg = json_object_get_string(
				json_object_object_get(e, "message"));
			field = json_object_get_string(
				json_object_object_get(e, "field"));
		}
		err = cli_error(ctx, 0, "%s %s: HTTP %ld: %s%s%s%s", method,
				path, status, msg ? msg : "",
				field ? " (field '" : "", field ? field : "",
				field ? "')" : "");
		json_object_put(o);
		o = NULL;
		goto out;
	}
	*out = o;
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.p);
	return err;
}

/* A value as a table shows it: arrays as "a,b", absent as "-". */
static const char *cell_text(json_object *v, char *buf, size_t len)
{
	size_t off = 0;

	if (!v)
		return "-";
	if (!json_object_is_type(v, json_type_array))
		return json_object_get_string(v);
	buf[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(v) && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? "," : "",
				json_object_get_string(
					json_object_array_get_idx(v, i)));
	return buf[0] ? buf : "-";
}

static void print_cell(json_object *o, const char *col, int width)
{
	char buf[512];

	printf("%-*s", width,
	       cell_text(json_object_object_get(o, col), buf, sizeof(buf)));
}

static void print_table(const struct kind *k, json_object *items)
{
	size_t n = json_object_array_length(items);
	int w[16];
	int i;

	for (i = 0; k->cols[i]; i++) {
		w[i] = strlen(k->cols[i]) + 2;
		for (size_t r = 0; r < n; r++) {
			char buf[512];
			int len = strlen(cell_text(
				json_object_object_get(
					json_object_array_get_idx(items, r),
					k->cols[i]),
				buf, sizeof(buf)));

			if (len + 2 > w[i])
				w[i] = len + 2;
		}
	}
	for (i = 0; k->cols[i]; i++) {
		char up[32];

		snprintf(up, sizeof(up), "%s", k->cols[i]);
		for (char *p = up; *p; p++)
			*p = (*p >= 'a' && *p <= 'z') ? *p - 32 : *p;
		printf("%-*s", k->cols[i + 1] ? w[i] : 0, up);
	}
	printf("\n");
	for (size_t r = 0; r < n; r++) {
		json_object *o = json_object_array_get_idx(items, r);

		for (i = 0; k->cols[i]; i++)
			print_cell(o, k->cols[i], k->cols[i + 1] ? w[i] : 0);
		printf("\n");
	}
}

static void print_object(struct cli_ctx *ctx, const struct kind *k,
			 json_object *o)
{
	if (ctx->json) {
		printf("%s\n",
		       json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PRETTY |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
		return;
	}
	(void)k;
	json_object_object_foreach(o, key, v)
	{
		char buf[512];

		printf("%-12s %s\n", key, cell_text(v, buf, sizeof(buf)));
	}
}

static int do_list(struct cli_ctx *ctx, const struct kind *k, int argc,
		   char **argv)
{
	json_object *all = json_object_new_array(), *page, *items, *next;
	char path[512], after[128] = "";
	int err = 0;

	if (argc)
		return cli_error(ctx, -EINVAL, "%s list: unexpected '%s'",
				 k->name, argv[0]);
	for (;;) {
		snprintf(path, sizeof(path), "%s?limit=1000%s%s", k->path,
			 after[0] ? "&after=" : "", after);
		err = cli_api_call(ctx, "GET", path, NULL, NULL, &page);
		if (err)
			break;
		items = json_object_object_get(page, "items");
		for (size_t i = 0; i < json_object_array_length(items); i++)
			json_object_array_add(
				all, json_object_get(json_object_array_get_idx(
					     items, i)));
		next = json_object_object_get(page, "next");
		if (next)
			snprintf(after, sizeof(after), "%s",
				 json_object_get_string(next));
		json_object_put(page);
		if (!next)
			break;
	}
	if (!err) {
		if (ctx->json)
			printf("%s\n",
			       json_object_to_json_string_ext(
				       all,
				       JSON_C_TO_STRING_PRETTY |
					       JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			print_table(k, all);
	}
	json_object_put(all);
	return err;
}

static int do_show_delete(struct cli_ctx *ctx, const struct kind *k, bool del,
			  int argc, char **argv)
{
	char path[512];
	json_object *o;
	int err;

	if (argc != 1 || strchr(argv[0], '/') || strchr(argv[0], '?'))
		return cli_error(ctx, -EINVAL, "usage: xvpcctl %s %s <%s>",
				 k->name, del ? "delete" : "show",
				 k->positional && !strcmp(k->name, "node")
					 ? "name"
					 : "id");
	snprintf(path, sizeof(path), "%s/%s", k->path, argv[0]);
	err = cli_api_call(ctx, del ? "DELETE" : "GET", path, NULL, NULL, &o);
	if (err)
		return err;
	if (del) {
		if (ctx->json)
			printf("{\"deleted\": \"%s\"}\n", argv[0]);
		else
			printf("deleted %s %s\n", k->name, argv[0]);
	} else {
		print_object(ctx, k, o);
	}
	json_object_put(o);
	return 0;
}

static void create_usage(const struct kind *k)
{
	printf("usage: xvpcctl %s create%s", k->name,
	       k->positional ? " <name>" : "");
	for (const struct opt *o = k->opts; o->flag; o++)
		printf(o->required ? " %s <%s>" : " [%s <%s>]", o->flag,
		       o->field);
	printf(" [--idempotency-key KEY]\n");
}

static int do_create(struct cli_ctx *ctx, const struct kind *k, int argc,
		     char **argv)
{
	json_object *body = json_object_new_object(), *o = NULL;
	const char *idem = NULL;
	int err = 0;

	for (int i = 0; i < argc && !err; i++) {
		const struct opt *op;

		if (cli_is_help(argv[i])) {
			create_usage(k);
			json_object_put(body);
			return 0;
		}
		if (!strcmp(argv[i], "--idempotency-key") && i + 1 < argc) {
			idem = argv[++i];
			continue;
		}
		if (argv[i][0] != '-' && k->positional &&
		    !json_object_object_get_ex(body, k->positional, NULL)) {
			json_object_object_add(body, k->positional,
					       json_object_new_string(argv[i]));
			continue;
		}
		for (op = k->opts; op->flag; op++)
			if (!strcmp(op->flag, argv[i]))
				break;
		if (!op->flag || i + 1 >= argc) {
			create_usage(k);
			err = cli_error(
				ctx, -EINVAL, "%s create: %s '%s'", k->name,
				op->flag ? "missing value for" : "unexpected",
				argv[i]);
			break;
		}
		i++;
		if (op->type == O_INT) {
			char *end;
			long long v = strtoll(argv[i], &end, 10);

			if (*end || end == argv[i]) {
				err = cli_error(ctx, -EINVAL,
						"%s: '%s' is not a number",
						op->flag, argv[i]);
				break;
			}
			json_object_object_add(body, op->field,
					       json_object_new_int64(v));
		} else {
			json_object_object_add(body, op->field,
					       json_object_new_string(argv[i]));
		}
	}
	for (const struct opt *op = k->opts; !err && op->flag; op++)
		if (op->required &&
		    !json_object_object_get_ex(body, op->field, NULL)) {
			create_usage(k);
			err = cli_error(ctx, -EINVAL,
					"%s create: %s is required", k->name,
					op->flag);
		}
	if (!err && k->positional &&
	    !json_object_object_get_ex(body, k->positional, NULL)) {
		create_usage(k);
		err = cli_error(ctx, -EINVAL, "%s create: a %s is required",
				k->name, k->positional);
	}
	if (!err)
		err = cli_api_call(ctx, "POST", k->path,
				   json_object_to_json_string(body), idem, &o);
	if (!err && o) {
		if (ctx->json) {
			print_object(ctx, k, o);
		} else {
			json_object *one = json_object_new_array();

			json_object_array_add(one, json_object_get(o));
			print_table(k, one);
			json_object_put(one);
			if (json_object_object_get(o, "token"))
				printf("token: %s (shown once; keep it)\n",
				       json_object_get_string(
					       json_object_object_get(
						       o, "token")));
		}
	}
	json_object_put(o);
	json_object_put(body);
	return err;
}

static void update_usage(const struct kind *k)
{
	printf("usage: xvpcctl %s update <id>", k->name);
	for (const struct opt *o = k->patch_opts; o->flag; o++)
		printf(" [%s <%s>]", o->flag, o->field);
	printf("\n");
}

/* PATCH of the options given (at least one). */
static int do_update(struct cli_ctx *ctx, const struct kind *k, int argc,
		     char **argv)
{
	json_object *body, *o = NULL;
	char path[512];
	int err = 0;

	if (argc >= 1 && cli_is_help(argv[0])) {
		update_usage(k);
		return 0;
	}
	if (argc < 3 || strchr(argv[0], '/') || strchr(argv[0], '?')) {
		update_usage(k);
		return cli_error(ctx, -EINVAL,
				 "%s update: want an id and at least one "
				 "option",
				 k->name);
	}
	body = json_object_new_object();
	for (int i = 1; i < argc && !err; i += 2) {
		const struct opt *op;

		for (op = k->patch_opts; op->flag; op++)
			if (!strcmp(op->flag, argv[i]))
				break;
		if (!op->flag || i + 1 >= argc) {
			update_usage(k);
			err = cli_error(
				ctx, -EINVAL, "%s update: %s '%s'", k->name,
				op->flag ? "missing value for" : "unexpected",
				argv[i]);
			break;
		}
		json_object_object_add(body, op->field,
				       json_object_new_string(argv[i + 1]));
	}
	snprintf(path, sizeof(path), "%s/%s", k->path, argv[0]);
	if (!err)
		err = cli_api_call(ctx, "PATCH", path,
				   json_object_to_json_string(body), NULL, &o);
	if (!err && o) {
		if (ctx->json) {
			print_object(ctx, k, o);
		} else {
			json_object *one = json_object_new_array();

			json_object_array_add(one, json_object_get(o));
			print_table(k, one);
			json_object_put(one);
		}
	}
	json_object_put(o);
	json_object_put(body);
	return err;
}

static int run_kind(struct cli_ctx *ctx, const struct kind *k, int argc,
		    char **argv)
{
	static const char *const subs[] = {"create", "list", "show", "delete",
					   NULL};

	if (argc < 1 || cli_is_help(argv[0])) {
		printf("usage: xvpcctl %s create|list|show|delete%s ...\n",
		       k->name, k->patch_opts ? "|update" : "");
		create_usage(k);
		if (k->patch_opts)
			update_usage(k);
		return argc < 1 ? -EINVAL : 0;
	}
	if (!strcmp(argv[0], subs[0]))
		return do_create(ctx, k, argc - 1, argv + 1);
	if (!strcmp(argv[0], subs[1]))
		return do_list(ctx, k, argc - 1, argv + 1);
	if (!strcmp(argv[0], subs[2]))
		return do_show_delete(ctx, k, false, argc - 1, argv + 1);
	if (!strcmp(argv[0], subs[3]))
		return do_show_delete(ctx, k, true, argc - 1, argv + 1);
	if (k->patch_opts && !strcmp(argv[0], "update"))
		return do_update(ctx, k, argc - 1, argv + 1);
	return cli_error(ctx, -EINVAL,
			 "%s: unknown command '%s' (create, list, show, "
			 "delete%s)",
			 k->name, argv[0], k->patch_opts ? ", update" : "");
}

static const struct opt no_opts[] = {{NULL, NULL, O_STR, false}};
static const char *const tenant_cols[] = {"id", "name", NULL};
static const struct kind tenant_kind = {"tenant", "/v1/tenants", "name",
					no_opts,  tenant_cols,	 NULL};

static const struct opt vpc_opts[] = {
	{"--cidr", "cidr", O_STR, true},
	{"--mode", "mode", O_STR, false},
	{NULL, NULL, O_STR, false},
};
static const struct opt vpc_patch_opts[] = {
	{"--name", "name", O_STR, false},
	{"--mode", "mode", O_STR, false},
	{NULL, NULL, O_STR, false},
};
static const char *const vpc_cols[] = {"id",   "name",	   "cidr",
				       "mode", "gateways", NULL};
static const struct kind vpc_kind = {"vpc",    "/v1/vpcs", "name",
				     vpc_opts, vpc_cols,   vpc_patch_opts};

static const struct opt subnet_opts[] = {
	{"--vpc", "vpc", O_INT, true},
	{"--cidr", "cidr", O_STR, true},
	{"--name", "name", O_STR, false},
	{"--gateway", "gateway_ip", O_STR, false},
	{"--vni", "vni", O_INT, false},
	{NULL, NULL, O_STR, false},
};
static const char *const subnet_cols[] = {"id",		"vpc", "name", "cidr",
					  "gateway_ip", "vni", NULL};
static const struct kind subnet_kind = {"subnet",    "/v1/subnets", NULL,
					subnet_opts, subnet_cols,   NULL};

static const struct opt port_opts[] = {
	{"--subnet", "subnet", O_INT, true},  {"--ip", "ip", O_STR, false},
	{"--name", "name", O_STR, false},     {"--node", "node", O_STR, false},
	{"--ifname", "ifname", O_STR, false}, {NULL, NULL, O_STR, false},
};
static const char *const port_cols[] = {"id",  "subnet", "name",   "ip",
					"mac", "node",	 "ifname", NULL};
/* Re-binding a port to another node and interface: a live migration. */
static const struct opt port_patch_opts[] = {
	{"--name", "name", O_STR, false},
	{"--node", "node", O_STR, false},
	{"--ifname", "ifname", O_STR, false},
	{NULL, NULL, O_STR, false},
};
static const struct kind port_kind = {"port",	 "/v1/ports", NULL,
				      port_opts, port_cols,   port_patch_opts};

static const struct opt node_opts[] = {
	{"--ip", "ip", O_STR, true},
	{NULL, NULL, O_STR, false},
};
static const char *const node_cols[] = {"name", "ip", NULL};
static const struct kind node_kind = {"node",	 "/v1/nodes", "name",
				      node_opts, node_cols,   NULL};

int cmd_tenant(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_kind(ctx, &tenant_kind, argc, argv);
}

int cmd_vpc(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_kind(ctx, &vpc_kind, argc, argv);
}

int cmd_subnet(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_kind(ctx, &subnet_kind, argc, argv);
}

int cmd_port(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_kind(ctx, &port_kind, argc, argv);
}

int cmd_node(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_kind(ctx, &node_kind, argc, argv);
}
