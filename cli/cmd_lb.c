// SPDX-License-Identifier: GPL-2.0-only
/* Load balancers over the controller's API (docs/cli.md, docs/api.md):
 *   xvpcctl lb create|list|show|delete|backends|health
 * Human tables by default, the API's JSON with --json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "cli.h"

#define LB_PATH "/v1/loadbalancers"

static const char create_usage[] =
	"usage: xvpcctl lb create --vpc ID --vip IP --port N\n"
	"         [--protocol tcp|udp] [--name NAME]\n"
	"         [--backend IP[:PORT[:WEIGHT]]]...\n"
	"         [--health none|tcp|http[:PATH[:STATUS]]] [--interval MS]\n"
	"         [--timeout MS] [--rise N] [--fall N]\n"
	"         [--public] [--idempotency-key KEY]\n"
	"  protocol defaults to tcp; a backend's PORT defaults to the\n"
	"  service's (write IP::WEIGHT to give a weight only), WEIGHT to 1.\n"
	"  --public: a north-south load balancer, reached from outside the\n"
	"  overlay; its VIP in the controller's --public-prefix ranges,\n"
	"  outside the VPC's CIDR (cannot be changed later).\n";
static const char backends_usage[] =
	"usage: xvpcctl lb backends ID [--add IP[:PORT[:WEIGHT]]]...\n"
	"         [--remove IP[:PORT]]... [--weight IP[:PORT]=W]...\n"
	"  without options: list the backends. Changes are applied in one\n"
	"  update (read, change, write back).\n";
static const char health_usage[] =
	"usage: xvpcctl lb health ID [--health none|tcp|http[:PATH[:STATUS]]\n"
	"         [--interval MS] [--timeout MS] [--rise N] [--fall N]]\n"
	"  without options: each backend's health as its node last reported\n"
	"  it. With --health: replaces the health check; left-out values get\n"
	"  their defaults.\n";

static int parse_uint(const char *s, long long max, long long *v)
{
	char *end;

	if (!s || !*s || *s < '0' || *s > '9')
		return -EINVAL;
	*v = strtoll(s, &end, 10);
	return *end || *v > max ? -EINVAL : 0;
}

/* "IP[:PORT[:WEIGHT]]" (weight allowed) or "IP[:PORT]". PORT may be empty
 * ("IP::W"); absent values are -1. */
static int parse_backend(const char *s, bool weight, char *ip, size_t iplen,
			 long long *port, long long *w)
{
	char copy[128], *p, *q;

	*port = *w = -1;
	if (snprintf(copy, sizeof(copy), "%s", s) >= (int)sizeof(copy))
		return -EINVAL;
	p = strchr(copy, ':');
	if (p)
		*p++ = '\0';
	q = p ? strchr(p, ':') : NULL;
	if (q)
		*q++ = '\0';
	if (!copy[0] || (q && !weight) || strlen(copy) >= iplen)
		return -EINVAL;
	memcpy(ip, copy, strlen(copy) + 1);
	if (p && *p && parse_uint(p, 65535, port))
		return -EINVAL;
	if (q && parse_uint(q, 65535, w))
		return -EINVAL;
	return 0;
}

static json_object *backend_json(const char *ip, long long port, long long w)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ip", json_object_new_string(ip));
	if (port > 0)
		json_object_object_add(o, "port", json_object_new_int64(port));
	if (w >= 0)
		json_object_object_add(o, "weight", json_object_new_int64(w));
	return o;
}

static int64_t iget(json_object *o, const char *k)
{
	return json_object_get_int64(json_object_object_get(o, k));
}

static const char *sget(json_object *o, const char *k)
{
	json_object *v = json_object_object_get(o, k);

	return v ? json_object_get_string(v) : "";
}

/* ---- health check options ------------------------------------------ */

struct hc_opts {
	json_object *hc; /* NULL until --health */
	long long interval, timeout, rise, fall;
};

/* Takes one health option at argv[*i]; 1 when it was one, 0 when not,
 * negative on error (printed). */
static int hc_opt(struct cli_ctx *ctx, struct hc_opts *h, int argc, char **argv,
		  int *i)
{
	static const char *const names[] = {"--interval", "--timeout", "--rise",
					    "--fall", NULL};
	long long *vals[] = {&h->interval, &h->timeout, &h->rise, &h->fall};
	const char *a = argv[*i];
	char spec[160], *path, *status;
	long long st;

	if (!strcmp(a, "--health")) {
		if (*i + 1 >= argc)
			return cli_error(ctx, -EINVAL,
					 "--health needs a value");
		snprintf(spec, sizeof(spec), "%s", argv[++*i]);
		path = strchr(spec, ':');
		if (path)
			*path++ = '\0';
		status = path ? strrchr(path, ':') : NULL;
		if (status)
			*status++ = '\0';
		if (strcmp(spec, "none") && strcmp(spec, "tcp") &&
		    strcmp(spec, "http"))
			return cli_error(ctx, -EINVAL,
					 "--health: '%s' is not none, tcp or "
					 "http",
					 spec);
		if (path && strcmp(spec, "http"))
			return cli_error(ctx, -EINVAL,
					 "--health: only http takes a path");
		json_object_put(h->hc);
		h->hc = json_object_new_object();
		json_object_object_add(h->hc, "type",
				       json_object_new_string(spec));
		if (path && *path)
			json_object_object_add(h->hc, "path",
					       json_object_new_string(path));
		if (status) {
			if (parse_uint(status, 999, &st))
				return cli_error(ctx, -EINVAL,
						 "--health: '%s' is not a "
						 "status code",
						 status);
			json_object_object_add(h->hc, "expect_status",
					       json_object_new_int64(st));
		}
		return 1;
	}
	for (int k = 0; names[k]; k++) {
		if (strcmp(a, names[k]))
			continue;
		if (*i + 1 >= argc ||
		    parse_uint(argv[*i + 1], 1LL << 31, vals[k]))
			return cli_error(ctx, -EINVAL,
					 "%s needs a number (got '%s')", a,
					 *i + 1 < argc ? argv[*i + 1] : "");
		++*i;
		return 1;
	}
	return 0;
}

/* The health_check object of the options (NULL without --health). */
static int hc_finish(struct cli_ctx *ctx, struct hc_opts *h, json_object **out)
{
	static const char *const fields[] = {"interval_ms", "timeout_ms",
					     "rise", "fall"};
	long long vals[] = {h->interval, h->timeout, h->rise, h->fall};
	bool any = false;

	*out = NULL;
	for (int k = 0; k < 4; k++)
		any |= vals[k] >= 0;
	if (!h->hc) {
		if (any)
			return cli_error(ctx, -EINVAL,
					 "--interval, --timeout, --rise and "
					 "--fall need --health");
		return 0;
	}
	for (int k = 0; k < 4; k++)
		if (vals[k] >= 0)
			json_object_object_add(h->hc, fields[k],
					       json_object_new_int64(vals[k]));
	*out = h->hc;
	h->hc = NULL;
	return 0;
}

/* ---- output ---------------------------------------------------------- */

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PRETTY |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void health_str(json_object *hc, char *buf, size_t len)
{
	const char *type = hc ? sget(hc, "type") : "none";

	if (!strcmp(type, "http"))
		snprintf(buf, len, "http:%s:%lld/%lldms", sget(hc, "path"),
			 (long long)iget(hc, "expect_status"),
			 (long long)iget(hc, "interval_ms"));
	else if (!strcmp(type, "tcp"))
		snprintf(buf, len, "tcp/%lldms",
			 (long long)iget(hc, "interval_ms"));
	else
		snprintf(buf, len, "none");
}

static bool is_public(json_object *lb)
{
	json_object *p;

	return json_object_object_get_ex(lb, "public", &p) &&
	       json_object_get_boolean(p);
}

static void print_lbs(json_object *items)
{
	size_t n = json_object_array_length(items);

	printf("%-6s %-6s %-16s %-21s %-8s %-9s %s\n", "ID", "VPC", "NAME",
	       "VIP", "PROTO", "BACKENDS", "HEALTH");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(items, i);
		char vip[40], hc[200];

		snprintf(vip, sizeof(vip), "%s:%lld", sget(o, "vip"),
			 (long long)iget(o, "port"));
		health_str(json_object_object_get(o, "health_check"), hc,
			   sizeof(hc));
		printf("%-6lld %-6lld %-16s %-21s %-8s %-9zu %s\n",
		       (long long)iget(o, "id"), (long long)iget(o, "vpc"),
		       sget(o, "name")[0] ? sget(o, "name") : "-", vip,
		       is_public(o) ? (strcmp(sget(o, "protocol"), "udp")
					       ? "tcp,pub"
					       : "udp,pub")
				    : sget(o, "protocol"),
		       json_object_array_length(
			       json_object_object_get(o, "backends")),
		       hc);
	}
}

static void print_backends(json_object *lb)
{
	json_object *be = json_object_object_get(lb, "backends");
	size_t n = json_object_array_length(be);

	printf("%-16s %-6s %s\n", "BACKEND", "PORT", "WEIGHT");
	for (size_t i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(be, i);
		char port[16];

		if (json_object_object_get(b, "port"))
			snprintf(port, sizeof(port), "%lld",
				 (long long)iget(b, "port"));
		else
			snprintf(port, sizeof(port), "(%lld)",
				 (long long)iget(lb, "port"));
		printf("%-16s %-6s %lld\n", sget(b, "ip"), port,
		       (long long)iget(b, "weight"));
	}
}

static void print_lb(struct cli_ctx *ctx, json_object *lb)
{
	char hc[200];

	if (ctx->json) {
		print_json(lb);
		return;
	}
	health_str(json_object_object_get(lb, "health_check"), hc, sizeof(hc));
	printf("id        %lld\nvpc       %lld\nname      %s\n"
	       "service   %s:%lld/%s%s\nhealth    %s\n",
	       (long long)iget(lb, "id"), (long long)iget(lb, "vpc"),
	       sget(lb, "name")[0] ? sget(lb, "name") : "-", sget(lb, "vip"),
	       (long long)iget(lb, "port"), sget(lb, "protocol"),
	       is_public(lb) ? " (public)" : "", hc);
	print_backends(lb);
}

/* ---- commands -------------------------------------------------------- */

static int lb_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char *const strs[][2] = {
		{"--vip", "vip"},
		{"--protocol", "protocol"},
		{"--name", "name"},
		{NULL, NULL},
	};
	json_object *body = json_object_new_object(), *be, *hc = NULL, *o;
	struct hc_opts h = {NULL, -1, -1, -1, -1};
	const char *idem = NULL;
	char ip[64];
	long long v, port, w;
	int err = 0, k;

	be = json_object_new_array();
	json_object_object_add(body, "backends", be);
	for (int i = 0; i < argc && !err; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (cli_is_help(a)) {
			fputs(create_usage, stdout);
			goto out;
		}
		err = hc_opt(ctx, &h, argc, argv, &i);
		if (err) {
			err = err < 0 ? err : 0;
			continue;
		}
		for (k = 0; strs[k][0] && strcmp(strs[k][0], a); k++)
			;
		if (!strcmp(a, "--public")) {
			json_object_object_add(body, "public",
					       json_object_new_boolean(1));
		} else if (!val) {
			err = cli_error(ctx, -EINVAL,
					"lb create: '%s' needs a value", a);
		} else if (strs[k][0]) {
			json_object_object_add(body, strs[k][1],
					       json_object_new_string(val));
			i++;
		} else if (!strcmp(a, "--vpc") || !strcmp(a, "--port")) {
			if (parse_uint(val, 1LL << 32, &v))
				err = cli_error(ctx, -EINVAL,
						"%s: '%s' is not a number", a,
						val);
			else
				json_object_object_add(
					body, a + 2, json_object_new_int64(v));
			i++;
		} else if (!strcmp(a, "--backend")) {
			if (parse_backend(val, true, ip, sizeof(ip), &port, &w))
				err = cli_error(ctx, -EINVAL,
						"--backend: '%s' is not "
						"IP[:PORT[:WEIGHT]]",
						val);
			else
				json_object_array_add(
					be, backend_json(ip, port, w));
			i++;
		} else if (!strcmp(a, "--idempotency-key")) {
			idem = val;
			i++;
		} else {
			fputs(create_usage, stdout);
			err = cli_error(ctx, -EINVAL,
					"lb create: unexpected '%s'", a);
		}
	}
	for (k = 0; !err && k < 3; k++) {
		static const char *const req[] = {"vpc", "vip", "port"};

		if (!json_object_object_get_ex(body, req[k], NULL)) {
			fputs(create_usage, stdout);
			err = cli_error(ctx, -EINVAL,
					"lb create: --%s is required", req[k]);
		}
	}
	if (!err && !json_object_object_get_ex(body, "protocol", NULL))
		json_object_object_add(body, "protocol",
				       json_object_new_string("tcp"));
	if (!err)
		err = hc_finish(ctx, &h, &hc);
	if (hc)
		json_object_object_add(body, "health_check", hc);
	if (!err)
		err = cli_api_call(ctx, "POST", LB_PATH,
				   json_object_to_json_string(body), idem, &o);
	if (!err) {
		print_lb(ctx, o);
		json_object_put(o);
	}
out:
	json_object_put(h.hc);
	json_object_put(body);
	return err;
}

static int lb_list(struct cli_ctx *ctx, int argc, char **argv)
{
	json_object *all = json_object_new_array(), *page, *items, *next;
	char path[256], after[32] = "";
	int err = 0;

	if (argc && cli_is_help(argv[0])) {
		printf("usage: xvpcctl lb list\n");
		goto out;
	}
	if (argc) {
		err = cli_error(ctx, -EINVAL, "lb list: unexpected '%s'",
				argv[0]);
		goto out;
	}
	for (;;) {
		snprintf(path, sizeof(path), "%s?limit=1000%s%s", LB_PATH,
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
			snprintf(after, sizeof(after), "%lld",
				 (long long)json_object_get_int64(next));
		json_object_put(page);
		if (!next)
			break;
	}
	if (!err && ctx->json)
		print_json(all);
	else if (!err)
		print_lbs(all);
out:
	json_object_put(all);
	return err;
}

/* The id argument as a path; fills a usage error. */
static int lb_path(struct cli_ctx *ctx, const char *cmd, const char *id,
		   char *path, size_t len)
{
	long long v;

	if (!id || parse_uint(id, 0xffffffffLL, &v) || !v)
		return cli_error(ctx, -EINVAL, "usage: xvpcctl lb %s <id>",
				 cmd);
	snprintf(path, len, "%s/%lld", LB_PATH, v);
	return 0;
}

static int lb_show_delete(struct cli_ctx *ctx, bool del, int argc, char **argv)
{
	const char *cmd = del ? "delete" : "show";
	char path[128];
	json_object *o;
	int err;

	if (argc == 1 && cli_is_help(argv[0])) {
		printf("usage: xvpcctl lb %s <id>\n", cmd);
		return 0;
	}
	if (argc != 1)
		return cli_error(ctx, -EINVAL, "usage: xvpcctl lb %s <id>",
				 cmd);
	err = lb_path(ctx, cmd, argv[0], path, sizeof(path));
	if (!err)
		err = cli_api_call(ctx, del ? "DELETE" : "GET", path, NULL,
				   NULL, &o);
	if (err)
		return err;
	if (!del)
		print_lb(ctx, o);
	else if (ctx->json)
		printf("{\"deleted\": %s}\n", argv[0] + strspn(argv[0], "0"));
	else
		printf("deleted lb %s\n", argv[0]);
	json_object_put(o);
	return 0;
}

/* Index of the backend (ip, port) in arr, -1 if none; port -1 or 0 and a
 * backend without port both mean the service's port. */
static int find_backend(json_object *arr, const char *ip, long long port,
			long long svc_port)
{
	long long want = port > 0 ? port : svc_port;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *b = json_object_array_get_idx(arr, i);
		long long p = iget(b, "port");

		if (!strcmp(sget(b, "ip"), ip) && (p ? p : svc_port) == want)
			return i;
	}
	return -1;
}

/* Applies one --add/--remove/--weight to arr; fills a usage error. */
static int edit_backend(struct cli_ctx *ctx, json_object *arr, const char *op,
			const char *val, long long svc_port)
{
	char spec[128], ip[64], *eq;
	long long port, w;
	int i;

	snprintf(spec, sizeof(spec), "%s", val);
	eq = !strcmp(op, "--weight") ? strrchr(spec, '=') : NULL;
	if (eq)
		*eq++ = '\0';
	if (parse_backend(spec, !strcmp(op, "--add"), ip, sizeof(ip), &port,
			  &w) ||
	    (!strcmp(op, "--weight") && (!eq || parse_uint(eq, 65535, &w))))
		return cli_error(ctx, -EINVAL, "%s: '%s' is not %s", op, val,
				 !strcmp(op, "--add") ? "IP[:PORT[:WEIGHT]]"
				 : !strcmp(op, "--remove")
					 ? "IP[:PORT]"
					 : "IP[:PORT]=WEIGHT");
	i = find_backend(arr, ip, port, svc_port);
	if (!strcmp(op, "--add")) {
		if (i >= 0)
			return cli_error(ctx, -EINVAL,
					 "--add: %s is already a backend", val);
		json_object_array_add(arr, backend_json(ip, port, w));
		return 0;
	}
	if (i < 0)
		return cli_error(ctx, -ENOENT, "%s: %s is not a backend", op,
				 spec);
	if (!strcmp(op, "--remove"))
		json_object_array_del_idx(arr, i, 1);
	else
		json_object_object_add(json_object_array_get_idx(arr, i),
				       "weight", json_object_new_int64(w));
	return 0;
}

static int lb_backends(struct cli_ctx *ctx, int argc, char **argv)
{
	json_object *lb = NULL, *arr, *body, *o = NULL;
	char path[128];
	bool changed = false;
	int err;

	if (argc >= 1 && cli_is_help(argv[0])) {
		fputs(backends_usage, stdout);
		return 0;
	}
	err = lb_path(ctx, "backends", argc ? argv[0] : NULL, path,
		      sizeof(path));
	if (!err)
		err = cli_api_call(ctx, "GET", path, NULL, NULL, &lb);
	if (err)
		return err;
	arr = json_object_object_get(lb, "backends");
	for (int i = 1; !err && i < argc; i += 2) {
		if (strcmp(argv[i], "--add") && strcmp(argv[i], "--remove") &&
		    strcmp(argv[i], "--weight")) {
			fputs(backends_usage, stdout);
			err = cli_error(ctx, -EINVAL,
					"lb backends: unexpected '%s'",
					argv[i]);
		} else if (i + 1 >= argc) {
			err = cli_error(ctx, -EINVAL, "%s needs a value",
					argv[i]);
		} else {
			err = edit_backend(ctx, arr, argv[i], argv[i + 1],
					   iget(lb, "port"));
			changed = true;
		}
	}
	if (!err && changed) {
		body = json_object_new_object();
		json_object_object_add(body, "backends", json_object_get(arr));
		err = cli_api_call(ctx, "PATCH", path,
				   json_object_to_json_string(body), NULL, &o);
		json_object_put(body);
		if (!err) {
			json_object_put(lb);
			lb = o;
		}
	}
	if (!err && ctx->json)
		print_json(json_object_object_get(lb, "backends"));
	else if (!err)
		print_backends(lb);
	json_object_put(lb);
	return err;
}

/* The backends' reported health ("backend_health" of the load balancer). */
static void print_backend_health(struct cli_ctx *ctx, json_object *lb)
{
	json_object *bh = json_object_object_get(lb, "backend_health");
	char hc[200];

	if (ctx->json) {
		if (bh)
			print_json(bh);
		else
			printf("[]\n");
		return;
	}
	health_str(json_object_object_get(lb, "health_check"), hc, sizeof(hc));
	printf("health check %s\n", hc);
	printf("%-16s %-6s %s\n", "BACKEND", "PORT", "HEALTH");
	for (size_t i = 0; i < json_object_array_length(bh); i++) {
		json_object *b = json_object_array_get_idx(bh, i), *h;

		h = json_object_object_get(b, "healthy");
		printf("%-16s %-6lld %s\n", sget(b, "ip"),
		       (long long)iget(b, "port"),
		       !h || json_object_get_boolean(h) ? "up" : "down");
	}
}

/* `lb health ID`: the reported health of the backends. */
static int lb_health_show(struct cli_ctx *ctx, const char *path)
{
	json_object *o;
	int err;

	err = cli_api_call(ctx, "GET", path, NULL, NULL, &o);
	if (err)
		return err;
	print_backend_health(ctx, o);
	json_object_put(o);
	return 0;
}

static int lb_health(struct cli_ctx *ctx, int argc, char **argv)
{
	struct hc_opts h = {NULL, -1, -1, -1, -1};
	json_object *hc = NULL, *body, *o;
	char path[128];
	int err;

	if (argc >= 1 && cli_is_help(argv[0])) {
		fputs(health_usage, stdout);
		return 0;
	}
	err = lb_path(ctx, "health", argc ? argv[0] : NULL, path, sizeof(path));
	if (!err && argc == 1)
		return lb_health_show(ctx, path);
	for (int i = 1; !err && i < argc; i++) {
		err = hc_opt(ctx, &h, argc, argv, &i);
		if (!err) {
			fputs(health_usage, stdout);
			err = cli_error(ctx, -EINVAL,
					"lb health: unexpected '%s'", argv[i]);
		}
		err = err < 0 ? err : 0;
	}
	if (!err)
		err = hc_finish(ctx, &h, &hc);
	if (!err && !hc) {
		fputs(health_usage, stdout);
		err = cli_error(ctx, -EINVAL,
				"lb health: --health is required");
	}
	json_object_put(h.hc);
	if (err) {
		json_object_put(hc);
		return err;
	}
	body = json_object_new_object();
	json_object_object_add(body, "health_check", hc);
	err = cli_api_call(ctx, "PATCH", path, json_object_to_json_string(body),
			   NULL, &o);
	json_object_put(body);
	if (!err)
		print_lb(ctx, o);
	json_object_put(o);
	return err;
}

static int lb_show(struct cli_ctx *ctx, int argc, char **argv)
{
	return lb_show_delete(ctx, false, argc, argv);
}

static int lb_delete(struct cli_ctx *ctx, int argc, char **argv)
{
	return lb_show_delete(ctx, true, argc, argv);
}

static const struct cli_cmd lb_cmds[] = {
	{"create", lb_create, "create a load balancer (see its --help)"},
	{"list", lb_list, "the tenant's load balancers"},
	{"show", lb_show, "one load balancer and its backends"},
	{"delete", lb_delete, "delete a load balancer"},
	{"backends", lb_backends, "list, add, remove, reweight backends"},
	{"health", lb_health,
	 "the backends' reported health, or replace the health check"},
	{NULL, NULL, NULL},
};

int cmd_lb(struct cli_ctx *ctx, int argc, char **argv)
{
	int n = 0;

	/* --json may also come after the command. */
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ctx->json = true;
		else
			argv[n++] = argv[i];
	}
	return cli_dispatch(ctx, "xvpcctl lb", lb_cmds, n, argv);
}
