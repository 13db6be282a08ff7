// SPDX-License-Identifier: GPL-2.0-only
/* The API's router, authentication, shared helpers, and the admin's
 * resources (tenants, nodes). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api_priv.h"
#include "log.h"
#include "netutil.h"

static int openapi_get(struct api *api, struct api_ctx *c)
{
	(void)api;
	c->resp->status = 200;
	c->resp->body = strdup(api_openapi_json);
	return c->resp->body
		       ? 0
		       : api_fail(c, 500, "internal", NULL, "out of memory");
}

const struct api_route api_routes[] = {
	{"GET", "/v1/openapi.json", openapi_get, API_AUTH_NONE},
	{"POST", "/v1/tenants", api_tenant_create, API_AUTH_ADMIN},
	{"GET", "/v1/tenants", api_tenant_list, API_AUTH_ADMIN},
	{"GET", "/v1/tenants/{id}", api_tenant_get, API_AUTH_ADMIN},
	{"PATCH", "/v1/tenants/{id}", api_tenant_patch, API_AUTH_ADMIN},
	{"DELETE", "/v1/tenants/{id}", api_tenant_delete, API_AUTH_ADMIN},
	{"POST", "/v1/tenants/{id}/token", api_tenant_token, API_AUTH_ADMIN},
	{"POST", "/v1/nodes", api_node_create, API_AUTH_ADMIN},
	{"GET", "/v1/nodes", api_node_list, API_AUTH_ADMIN},
	{"GET", "/v1/nodes/{name}", api_node_get, API_AUTH_ADMIN},
	{"PATCH", "/v1/nodes/{name}", api_node_patch, API_AUTH_ADMIN},
	{"DELETE", "/v1/nodes/{name}", api_node_delete, API_AUTH_ADMIN},
	{"GET", "/v1/nodes/{name}/state", api_node_state, API_AUTH_ADMIN},
	{"POST", "/v1/nodes/{name}/resolve", api_node_resolve, API_AUTH_ADMIN},
	{"POST", "/v1/nodes/{name}/health", api_node_health, API_AUTH_ADMIN},
	{"POST", "/v1/vpcs", api_vpc_create, API_AUTH_TENANT},
	{"GET", "/v1/vpcs", api_vpc_list, API_AUTH_TENANT},
	{"GET", "/v1/vpcs/{id}", api_vpc_get, API_AUTH_TENANT},
	{"PATCH", "/v1/vpcs/{id}", api_vpc_patch, API_AUTH_TENANT},
	{"DELETE", "/v1/vpcs/{id}", api_vpc_delete, API_AUTH_TENANT},
	{"POST", "/v1/subnets", api_subnet_create, API_AUTH_TENANT},
	{"GET", "/v1/subnets", api_subnet_list, API_AUTH_TENANT},
	{"GET", "/v1/subnets/{id}", api_subnet_get, API_AUTH_TENANT},
	{"PATCH", "/v1/subnets/{id}", api_subnet_patch, API_AUTH_TENANT},
	{"DELETE", "/v1/subnets/{id}", api_subnet_delete, API_AUTH_TENANT},
	{"POST", "/v1/ports", api_port_create, API_AUTH_TENANT},
	{"GET", "/v1/ports", api_port_list, API_AUTH_TENANT},
	{"GET", "/v1/ports/{id}", api_port_get, API_AUTH_TENANT},
	{"PATCH", "/v1/ports/{id}", api_port_patch, API_AUTH_TENANT},
	{"DELETE", "/v1/ports/{id}", api_port_delete, API_AUTH_TENANT},
	{"POST", "/v1/loadbalancers", api_lb_create, API_AUTH_TENANT},
	{"GET", "/v1/loadbalancers", api_lb_list, API_AUTH_TENANT},
	{"GET", "/v1/loadbalancers/{id}", api_lb_get, API_AUTH_TENANT},
	{"PATCH", "/v1/loadbalancers/{id}", api_lb_patch, API_AUTH_TENANT},
	{"DELETE", "/v1/loadbalancers/{id}", api_lb_delete, API_AUTH_TENANT},
	{NULL, NULL, NULL, API_AUTH_NONE},
};

int api_fail(struct api_ctx *c, int status, const char *code, const char *field,
	     const char *fmt, ...)
{
	json_object *err = json_object_new_object(), *top;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(err, "code", json_object_new_string(code));
	json_object_object_add(err, "field",
			       field ? json_object_new_string(field) : NULL);
	json_object_object_add(err, "message", json_object_new_string(msg));
	top = json_object_new_object();
	json_object_object_add(top, "error", err);
	api_reply(c, status, top);
	return -1;
}

int api_reply(struct api_ctx *c, int status, json_object *obj)
{
	free(c->resp->body);
	c->resp->status = status;
	c->resp->body =
		obj ? strdup(json_object_to_json_string_ext(
			      obj, JSON_C_TO_STRING_PLAIN |
					   JSON_C_TO_STRING_NOSLASHESCAPE))
		    : NULL;
	json_object_put(obj);
	if (obj && !c->resp->body)
		c->resp->status = 500;
	return 0;
}

int api_fail_store(struct api_ctx *c, int err)
{
	if (err == -EAGAIN || err == -ECANCELED)
		return api_fail(c, 503, "busy", NULL,
				"too many concurrent changes to the same "
				"objects; retry");
	if (err == -EIO)
		return api_fail(c, 503, "unavailable", NULL,
				"the store could not make the change durable; "
				"nothing was changed");
	if (err == -ENOTCONN)
		return api_fail(c, 503, "unavailable", NULL,
				"no ZooKeeper quorum is reachable from this "
				"controller: changes are refused, reads are "
				"served from its copy; retry later");
	if (err == -ETIMEDOUT)
		return api_fail(c, 503, "outcome_unknown", NULL,
				"the connection to ZooKeeper broke during the "
				"commit: the change may or may not have been "
				"applied; read it back (or retry with the same "
				"Idempotency-Key)");
	return api_fail(c, 500, "internal", NULL, "store error: %s",
			strerror(-err));
}

int api_load(struct api *api, const char *key, json_object **obj, uint64_t *ver)
{
	char *val = NULL;
	int err = store_get(api->store, key, &val, ver);

	if (err)
		return err;
	*obj = json_tokener_parse(val);
	free(val);
	if (!*obj || !json_object_is_type(*obj, json_type_object)) {
		pr_err("api: record %s is not a JSON object", key);
		json_object_put(*obj);
		*obj = NULL;
		return -EBADMSG;
	}
	return 0;
}

const char *api_str(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t api_int(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v))
		return 0;
	return json_object_get_int64(v);
}

json_object *api_public(json_object *o)
{
	json_object *p = json_object_new_object();

	json_object_object_foreach(o, k, v)
	{
		if (k[0] != '_')
			json_object_object_add(p, k, json_object_get(v));
	}
	return p;
}

void api_op_put_json(struct store_op *op, struct api_strs *strs,
		     const char *key, json_object *obj, uint64_t expect)
{
	const char *s = json_object_to_json_string_ext(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *copy = strdup(s);
	char *kcopy = strdup(key);

	/* Keys are copied too: callers build them in reused buffers. */
	if (strs->n + 2 <= (int)(sizeof(strs->s) / sizeof(strs->s[0]))) {
		strs->s[strs->n++] = copy;
		strs->s[strs->n++] = kcopy;
	} else {
		pr_err("api: too many records in one transaction");
		free(copy);
		free(kcopy);
		copy = kcopy = NULL;
	}
	op->type = STORE_PUT;
	op->key = kcopy;
	op->val = copy;
	op->len = copy ? strlen(copy) : 0;
	op->expect = expect;
}

void api_strs_free(struct api_strs *strs)
{
	for (int i = 0; i < strs->n; i++)
		free(strs->s[i]);
	strs->n = 0;
}

void api_txb_put(struct api_txb *t, const char *key, json_object *o,
		 uint64_t expect)
{
	api_op_put_json(&t->ops[t->n++], &t->strs, key, o, expect);
}

void api_txb_ref(struct api_txb *t, const char *key, const char *field,
		 int64_t v, uint64_t expect)
{
	json_object *o = json_object_new_object();

	if (field)
		json_object_object_add(o, field, json_object_new_int64(v));
	api_txb_put(t, key, o, expect);
	json_object_put(o);
}

void api_txb_op(struct api_txb *t, enum store_op_type type, const char *key,
		uint64_t expect)
{
	char *k = strdup(key);
	struct store_op *op = &t->ops[t->n++];

	if (k && t->strs.n < (int)(sizeof(t->strs.s) / sizeof(t->strs.s[0])))
		t->strs.s[t->strs.n++] = k;
	else {
		free(k);
		k = NULL;
	}
	op->type = type;
	op->key = k;
	op->val = NULL;
	op->len = 0;
	op->expect = expect;
}

int api_txb_commit(struct api *api, struct api_txb *t)
{
	int err = store_txn(api->store, t->ops, t->n, NULL, NULL);

	api_strs_free(&t->strs);
	t->n = 0;
	return err;
}

static const char *kind_label(const char *kind)
{
	return !strcmp(kind, "vpc")  ? "VPC"
	       : !strcmp(kind, "lb") ? "load balancer"
				     : kind;
}

/* Loads kind/<id> owned by the caller's tenant. A missing object and
 * another tenant's object are the same 404; `field` names the body field
 * that referred to it, if any. */
int api_load_owned(struct api *api, struct api_ctx *c, const char *kind,
		   uint32_t id, json_object **o, uint64_t *ver,
		   const char *field)
{
	char key[64];
	int err;

	snprintf(key, sizeof(key), KF_ID, kind, id);
	err = api_load(api, key, o, ver);
	if (!err && api_int(*o, "tenant") != c->tenant) {
		json_object_put(*o);
		err = -ENOENT;
	}
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", field, "no %s %u",
				kind_label(kind), id);
	if (err)
		return api_fail_store(c, err);
	return 0;
}

static const char *type_name(enum api_ftype t)
{
	return t == F_INT      ? "an integer"
	       : t == F_ARRAY  ? "an array"
	       : t == F_OBJECT ? "an object"
	       : t == F_BOOL   ? "a boolean"
			       : "a string";
}

int api_parse_body(struct api_ctx *c, const struct api_field *fields,
		   bool patch, json_object **out)
{
	const struct api_req *r = c->req;
	struct json_tokener *tok;
	json_object *obj;
	size_t end;

	*out = NULL;
	if (r->body_too_large)
		return api_fail(c, 413, "too_large", NULL,
				"request body is larger than %d bytes",
				API_BODY_MAX);
	if (!r->body_len)
		return api_fail(c, 400, "invalid_json", NULL,
				"request body is empty; expected a JSON "
				"object");
	tok = json_tokener_new_ex(16);
	if (!tok)
		return api_fail(c, 500, "internal", NULL, "out of memory");
	obj = json_tokener_parse_ex(tok, r->body, r->body_len);
	if (!obj) {
		enum json_tokener_error e = json_tokener_get_error(tok);

		json_tokener_free(tok);
		return api_fail(c, 400, "invalid_json", NULL,
				"request body is not valid JSON: %s",
				e == json_tokener_continue
					? "unexpected end of input"
					: json_tokener_error_desc(e));
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < r->body_len; end++)
		if (!strchr(" \t\r\n", r->body[end])) {
			json_object_put(obj);
			return api_fail(c, 400, "invalid_json", NULL,
					"request body has data after the "
					"JSON value");
		}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return api_fail(c, 400, "invalid_json", NULL,
				"request body must be a JSON object");
	}
	json_object_object_foreach(obj, key, val)
	{
		const struct api_field *f;
		json_type t = json_object_get_type(val);
		bool ok;

		for (f = fields; f->name; f++)
			if (!strcmp(f->name, key))
				break;
		if (!f->name || (patch && !f->patchable)) {
			api_fail(c, 400,
				 f->name ? "read_only" : "unknown_field", key,
				 f->name ? "field '%s' cannot be changed"
					 : "unknown field '%s'",
				 key);
			goto err;
		}
		switch (f->type) {
		case F_INT:
			ok = t == json_type_int;
			break;
		case F_STR_OR_NULL:
			ok = t == json_type_string || t == json_type_null;
			break;
		case F_ARRAY:
			ok = t == json_type_array;
			break;
		case F_OBJECT:
			ok = t == json_type_object;
			break;
		case F_BOOL:
			ok = t == json_type_boolean;
			break;
		default:
			ok = t == json_type_string;
		}
		if (!ok) {
			api_fail(c, 400, "invalid_type", key,
				 "field '%s' must be %s%s", key,
				 type_name(f->type),
				 f->type == F_STR_OR_NULL ? " or null" : "");
			goto err;
		}
	}
	for (const struct api_field *f = fields; !patch && f->name; f++)
		if (f->required &&
		    !json_object_object_get_ex(obj, f->name, NULL)) {
			api_fail(c, 400, "missing_field", f->name,
				 "field '%s' is required", f->name);
			goto err;
		}
	*out = obj;
	return 0;
err:
	json_object_put(obj);
	return -1;
}

static int parse_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x == 0 || x > ID_MAX)
		return -EINVAL;
	*v = x;
	return 0;
}

int api_param_id(struct api_ctx *c, uint32_t *id)
{
	if (parse_u32(c->param, id))
		return api_fail(c, 404, "not_found", NULL,
				"'%s' is not an id (1 .. 4294967295)",
				c->param);
	return 0;
}

int api_list_params(struct api_ctx *c, bool ids, size_t *limit, char *after,
		    size_t after_len)
{
	const struct api_req *r = c->req;
	const char *l = r->query ? r->query(r->qarg, "limit") : NULL;
	const char *a = r->query ? r->query(r->qarg, "after") : NULL;
	uint32_t v;

	*limit = API_LIST_DEFAULT;
	after[0] = '\0';
	if (l) {
		if (parse_u32(l, &v) || v > API_LIST_MAX)
			return api_fail(c, 400, "invalid_value", "limit",
					"limit must be an integer 1 .. %d",
					API_LIST_MAX);
		*limit = v;
	}
	if (a) {
		if (ids && parse_u32(a, &v))
			return api_fail(c, 400, "invalid_value", "after",
					"after must be an id");
		if (!ids && !api_valid_name(a))
			return api_fail(c, 400, "invalid_value", "after",
					"after must be a name");
		if (ids)
			snprintf(after, after_len, "%010u", v);
		else
			snprintf(after, after_len, "%s", a);
	}
	return 0;
}

struct keylist {
	char **keys;
	size_t n, cap;
	int err;
};

static int keylist_add(const struct store_rec *r, void *arg)
{
	struct keylist *kl = arg;

	if (kl->n == kl->cap) {
		size_t cap = kl->cap ? kl->cap * 2 : 64;
		char **p = realloc(kl->keys, cap * sizeof(*p));

		if (!p) {
			kl->err = -ENOMEM;
			return 1;
		}
		kl->keys = p;
		kl->cap = cap;
	}
	kl->keys[kl->n] = strdup(r->key);
	if (!kl->keys[kl->n]) {
		kl->err = -ENOMEM;
		return 1;
	}
	kl->n++;
	return 0;
}

static void keylist_free(struct keylist *kl)
{
	for (size_t i = 0; i < kl->n; i++)
		free(kl->keys[i]);
	free(kl->keys);
}

int api_list_reply(struct api *api, struct api_ctx *c, const char *index,
		   const char *primary)
{
	bool ids = strcmp(primary, "node") != 0;
	struct keylist kl = {0};
	char after[128], akey[STORE_KEY_MAX], pkey[STORE_KEY_MAX];
	size_t limit;
	json_object *items, *top;
	const char *last = NULL;
	int err;

	if (api_list_params(c, ids, &limit, after, sizeof(after)))
		return -1;
	snprintf(akey, sizeof(akey), "%s%s", index, after);
	err = store_list(api->store, index, after[0] ? akey : NULL, limit + 1,
			 keylist_add, &kl);
	if (err || kl.err) {
		keylist_free(&kl);
		return api_fail_store(c, kl.err ? kl.err : err);
	}
	items = json_object_new_array();
	for (size_t i = 0; i < kl.n && i < limit; i++) {
		const char *tail = strrchr(kl.keys[i], '/') + 1;
		json_object *o;

		snprintf(pkey, sizeof(pkey), "%s/%s", primary, tail);
		if (api_load(api, pkey, &o, NULL))
			continue; /* deleted since the listing */
		json_object_array_add(items, api_public(o));
		json_object_put(o);
		last = tail;
	}
	top = json_object_new_object();
	json_object_object_add(top, "items", items);
	if (kl.n > limit && last) {
		json_object_object_add(top, "next",
				       ids ? json_object_new_int64(atoll(last))
					   : json_object_new_string(last));
	} else {
		json_object_object_add(top, "next", NULL);
	}
	keylist_free(&kl);
	return api_reply(c, 200, top);
}

bool api_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			    "YZ"
			    "0123456789._-",
			    *s))
			return false;
	return true;
}

static const char *const seq_kinds[API_SEQ_KINDS] = {"tenant", "vpc", "subnet",
						     "port", "lb"};

/* Reserves the next block of ids of a kind in the store: [*first, *end). */
static int seq_reserve_once(struct api *api, int k, int64_t *first,
			    int64_t *end)
{
	int64_t block = api->id_block > 0 ? api->id_block : API_ID_BLOCK;
	struct api_strs strs = {0};
	struct store_op op;
	json_object *o = NULL;
	uint64_t ver = STORE_ABSENT;
	int64_t next = 1;
	char key[64];
	int err;

	snprintf(key, sizeof(key), "seq/%s", seq_kinds[k]);
	err = api_load(api, key, &o, &ver);
	if (err && err != -ENOENT)
		return err;
	if (o)
		next = api_int(o, "next");
	json_object_put(o);
	if (next < 1 || next > ID_MAX)
		return -ENOSPC;
	*first = next;
	*end = next + block;
	if (*end > (int64_t)ID_MAX + 1)
		*end = (int64_t)ID_MAX + 1;
	o = json_object_new_object();
	json_object_object_add(o, "next", json_object_new_int64(*end));
	api_op_put_json(&op, &strs, key, o, ver);
	json_object_put(o);
	err = store_txn(api->store, &op, 1, NULL, NULL);
	api_strs_free(&strs);
	return err;
}

/* The same, again when another controller reserved one meanwhile. */
static int seq_reserve(struct api *api, int k, int64_t *first, int64_t *end)
{
	int err = -ECANCELED;

	for (int i = 0; err == -ECANCELED && i < API_RETRIES; i++)
		err = seq_reserve_once(api, k, first, end);
	return err;
}

/* Takes the next id of q's current block, moving on to the block reserved
 * ahead or, without one, reserving a block while holding seq_mu. Sets
 * *ahead when the caller is to reserve the next block. Called with seq_mu
 * held. */
static int seq_take(struct api *api, int k, uint32_t *id, bool *ahead)
{
	int64_t block = api->id_block > 0 ? api->id_block : API_ID_BLOCK;
	struct api_seq *q = &api->seq[k];
	int64_t first, end;

	while (q->next >= q->end && q->reserving)
		pthread_cond_wait(&api->seq_cond, &api->seq_mu);
	if (q->next >= q->end && q->aend > q->anext) {
		q->next = q->anext;
		q->end = q->aend;
		q->anext = q->aend = 0;
	}
	if (q->next >= q->end) {
		int err = seq_reserve(api, k, &first, &end);

		if (err)
			return err;
		q->next = first;
		q->end = end;
	}
	*id = q->next++;
	*ahead = !q->reserving && q->aend <= q->anext &&
		 (q->end - q->next) * 2 <= block && q->end <= ID_MAX;
	if (*ahead)
		q->reserving = true;
	return 0;
}

int api_seq_next(struct api *api, const char *kind, uint32_t *id)
{
	int64_t first = 0, end = 0;
	bool ahead = false;
	int k, err;

	for (k = 0; k < API_SEQ_KINDS; k++)
		if (!strcmp(seq_kinds[k], kind))
			break;
	if (k == API_SEQ_KINDS)
		return -EINVAL;
	pthread_mutex_lock(&api->seq_mu);
	err = seq_take(api, k, id, &ahead);
	pthread_mutex_unlock(&api->seq_mu);
	if (!ahead)
		return err;
	/* This request has its id; it reserves the next block for the
	 * others (a failure leaves it to the one that finds none). */
	if (seq_reserve(api, k, &first, &end))
		first = end = 0;
	pthread_mutex_lock(&api->seq_mu);
	api->seq[k].anext = first;
	api->seq[k].aend = end;
	api->seq[k].reserving = false;
	pthread_cond_broadcast(&api->seq_cond);
	pthread_mutex_unlock(&api->seq_mu);
	return err;
}

static bool valid_idem_key(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 128)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			    "YZ"
			    "0123456789._:-",
			    *s))
			return false;
	return true;
}

int api_idem_lookup(struct api *api, struct api_ctx *c, const char *kind,
		    char *key, size_t key_len, uint32_t *id)
{
	const char *k = c->req->idempotency_key;
	json_object *o;
	int err;

	key[0] = '\0';
	*id = 0;
	if (!k)
		return 0;
	if (!valid_idem_key(k))
		return api_fail(c, 400, "invalid_value", "Idempotency-Key",
				"Idempotency-Key must be 1 .. 128 characters "
				"of A-Z a-z 0-9 . _ : -");
	snprintf(key, key_len, "idem/%010u/%s/%s", c->tenant, kind, k);
	err = api_load(api, key, &o, NULL);
	if (err == -ENOENT)
		return 0;
	if (err)
		return api_fail_store(c, err);
	*id = api_int(o, "id");
	json_object_put(o);
	return 0;
}

/* ---- authentication and routing ---------------------------------- */

static bool token_chars_ok(const char *t)
{
	size_t n = strlen(t);

	if (n < 8 || n > 100)
		return false;
	for (; *t; t++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			    "YZ"
			    "0123456789_-.",
			    *t))
			return false;
	return true;
}

static bool const_time_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
	return !d;
}

static int authenticate(struct api *api, struct api_ctx *c, enum api_auth need)
{
	const char *h = c->req->authorization, *tok;
	char key[160];
	json_object *o;
	int err;

	if (need == API_AUTH_NONE)
		return 0;
	if (!h || strncasecmp(h, "Bearer ", 7))
		return api_fail(c, 401, "unauthorized", NULL,
				"missing 'Authorization: Bearer <token>' "
				"header");
	tok = h + 7;
	while (*tok == ' ')
		tok++;
	if (!token_chars_ok(tok))
		return api_fail(c, 401, "unauthorized", NULL, "invalid token");
	if (const_time_eq(tok, api->admin_token)) {
		c->admin = true;
		if (need == API_AUTH_TENANT)
			return api_fail(c, 403, "forbidden", NULL,
					"the admin token owns no VPCs, "
					"subnets or ports; use a tenant's "
					"token");
		return 0;
	}
	snprintf(key, sizeof(key), "tok/%s", tok);
	err = api_load(api, key, &o, NULL);
	if (err == -ENOENT)
		return api_fail(c, 401, "unauthorized", NULL, "invalid token");
	if (err)
		return api_fail_store(c, err);
	c->tenant = api_int(o, "tenant");
	json_object_put(o);
	if (need == API_AUTH_ADMIN)
		return api_fail(c, 403, "forbidden", NULL,
				"only the admin token manages tenants and "
				"nodes");
	return 0;
}

/* Matches path against a pattern; one {param} segment is copied out. */
static bool path_match(const char *pat, const char *path, char *param,
		       size_t plen)
{
	while (*pat && *path) {
		if (*pat == '{') {
			const char *seg_end = strchr(path, '/');
			size_t n = seg_end ? (size_t)(seg_end - path)
					   : strlen(path);

			if (!n || n >= plen)
				return false;
			memcpy(param, path, n);
			param[n] = '\0';
			path += n;
			pat = strchr(pat, '}') + 1;
			continue;
		}
		if (*pat++ != *path++)
			return false;
	}
	return !*pat && !*path;
}

void api_handle(struct api *api, const struct api_req *req,
		struct api_resp *resp)
{
	struct api_ctx c = {.req = req, .resp = resp};
	const struct api_route *r, *found = NULL;
	bool path_known = false;
	char param[64];
	size_t plen = strlen(req->path);

	memset(resp, 0, sizeof(*resp));
	resp->content_type = "application/json";
	/* A trailing slash names the same resource. */
	char path[512];

	snprintf(path, sizeof(path), "%s", req->path);
	if (plen > 1 && plen < sizeof(path) && path[plen - 1] == '/')
		path[plen - 1] = '\0';
	for (r = api_routes; r->method; r++) {
		if (!path_match(r->path, path, param, sizeof(param)))
			continue;
		path_known = true;
		if (!strcmp(r->method, req->method)) {
			found = r;
			memcpy(c.param, param, sizeof(param));
			break;
		}
	}
	if (!found) {
		if (path_known)
			api_fail(&c, 405, "method_not_allowed", NULL,
				 "%s is not allowed on %s", req->method,
				 req->path);
		else
			api_fail(&c, 404, "not_found", NULL,
				 "no such resource: %s", req->path);
		goto out;
	}
	if (authenticate(api, &c, found->auth))
		goto out;
	if (found->fn(api, &c) == 0 && !resp->status)
		api_fail(&c, 500, "internal", NULL, "no response");
out:
	pr_debug("api: %s %s -> %d", req->method, req->path, resp->status);
}

/* ---- tokens and the admin token ---------------------------------- */

static int new_token(const char *prefix, char *out, size_t len)
{
	unsigned char rnd[20];
	size_t off;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -errno;
	off = snprintf(out, len, "%s", prefix);
	for (size_t i = 0; i < sizeof(rnd) && off + 2 < len; i++)
		off += snprintf(out + off, len - off, "%02x", rnd[i]);
	return 0;
}

int api_init(struct api *api, struct store *store, const char *token,
	     bool *generated)
{
	struct store_op op;
	struct api_strs strs = {0};
	json_object *o = NULL;
	uint64_t ver = STORE_ABSENT;
	int err;

	memset(api, 0, sizeof(*api));
	api->store = store;
	pthread_mutex_init(&api->hint_mu, NULL);
	pthread_mutex_init(&api->seq_mu, NULL);
	pthread_cond_init(&api->seq_cond, NULL);
	pthread_mutex_init(&api->seen_mu, NULL);
	*generated = false;
	if (token && !token_chars_ok(token)) {
		pr_err("admin token: must be 8 .. 100 characters of A-Z a-z "
		       "0-9 _ - .");
		return -EINVAL;
	}
	err = api_load(api, K_ADMIN, &o, &ver);
	if (err && err != -ENOENT)
		return err;
	if (o && (!token || !strcmp(token, api_str(o, "token") ?: ""))) {
		snprintf(api->admin_token, sizeof(api->admin_token), "%s",
			 api_str(o, "token") ?: "");
		json_object_put(o);
		if (api->admin_token[0])
			goto done;
	}
	json_object_put(o);
	if (token) {
		snprintf(api->admin_token, sizeof(api->admin_token), "%s",
			 token);
	} else {
		err = new_token(API_ADMIN_PREFIX, api->admin_token,
				sizeof(api->admin_token));
		if (err)
			return err;
		*generated = true;
	}
	o = json_object_new_object();
	json_object_object_add(o, "token",
			       json_object_new_string(api->admin_token));
	api_op_put_json(&op, &strs, K_ADMIN, o, STORE_ANY);
	json_object_put(o);
	err = store_txn(store, &op, 1, NULL, NULL);
	api_strs_free(&strs);
	if (err)
		return err;
done:
	pr_info("api: admin token %.8s... (%s)", api->admin_token,
		*generated ? "generated"
		: token	   ? "given"
			   : "from the store");
	return 0;
}

void api_fini(struct api *api)
{
	pthread_mutex_destroy(&api->hint_mu);
	pthread_mutex_destroy(&api->seq_mu);
	pthread_cond_destroy(&api->seq_cond);
	api_seen_free(api);
	pthread_mutex_destroy(&api->seen_mu);
}

/* ---- tenants ------------------------------------------------------- */

static const struct api_field tenant_fields[] = {
	{"name", F_STR, true, true},
	{NULL, 0, false, false},
};

static int tenant_reply_by_id(struct api *api, struct api_ctx *c, uint32_t id,
			      int status, bool with_token)
{
	char key[64];
	json_object *o, *p;
	int err;

	snprintf(key, sizeof(key), KF_ID, "tenant", id);
	err = api_load(api, key, &o, NULL);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no tenant %u", id);
	if (err)
		return api_fail_store(c, err);
	p = api_public(o);
	if (with_token)
		json_object_object_add(
			p, "token",
			json_object_new_string(api_str(o, "_token") ?: ""));
	json_object_put(o);
	return api_reply(c, status, p);
}

static int tenant_create_once(struct api *api, struct api_ctx *c,
			      const char *name)
{
	struct store_op ops[6];
	struct api_strs strs = {0};
	char idem[256], key[256], token[64];
	json_object *o;
	uint32_t id;
	size_t n = 0;
	int err;

	if (api_idem_lookup(api, c, "tenant", idem, sizeof(idem), &id))
		return -1;
	if (id)
		return tenant_reply_by_id(api, c, id, 200, true);
	snprintf(key, sizeof(key), "tname/%s", name);
	if (!store_get(api->store, key, NULL, NULL))
		return api_fail(c, 409, "exists", "name",
				"a tenant named '%s' exists", name);
	err = api_seq_next(api, "tenant", &id);
	if (!err)
		err = new_token(API_TOKEN_PREFIX, token, sizeof(token));
	if (err)
		goto out;
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "_token", json_object_new_string(token));
	if (idem[0])
		json_object_object_add(o, "_idem",
				       json_object_new_string(idem));
	snprintf(key, sizeof(key), KF_ID, "tenant", id);
	api_op_put_json(&ops[n++], &strs, key, o, STORE_ABSENT);
	json_object_put(o);
	o = json_object_new_object();
	json_object_object_add(o, "tenant", json_object_new_int64(id));
	snprintf(key, sizeof(key), "tok/%s", token);
	api_op_put_json(&ops[n++], &strs, key, o, STORE_ABSENT);
	snprintf(key, sizeof(key), "tname/%s", name);
	api_op_put_json(&ops[n++], &strs, key, o, STORE_ABSENT);
	if (idem[0]) {
		json_object *i = json_object_new_object();

		json_object_object_add(i, "id", json_object_new_int64(id));
		api_op_put_json(&ops[n++], &strs, idem, i, STORE_ABSENT);
		json_object_put(i);
	}
	json_object_put(o);
	err = store_txn(api->store, ops, n, NULL, NULL);
out:
	api_strs_free(&strs);
	if (err == -ECANCELED)
		return -EAGAIN;
	if (err)
		return api_fail_store(c, err);
	pr_info("api: created tenant %u '%s'", id, name);
	return tenant_reply_by_id(api, c, id, 201, true);
}

int api_tenant_create(struct api *api, struct api_ctx *c)
{
	json_object *body;
	const char *name;
	int ret = -EAGAIN;

	if (api_parse_body(c, tenant_fields, false, &body))
		return -1;
	name = api_str(body, "name");
	if (!api_valid_name(name))
		ret = api_fail(c, 400, "invalid_value", "name",
			       "name must be 1 .. 63 characters of A-Z a-z "
			       "0-9 . _ -");
	for (int i = 0; ret == -EAGAIN && i < API_RETRIES; i++)
		ret = tenant_create_once(api, c, name);
	if (ret == -EAGAIN)
		ret = api_fail_store(c, -EAGAIN);
	json_object_put(body);
	return ret;
}

int api_tenant_list(struct api *api, struct api_ctx *c)
{
	return api_list_reply(api, c, "tenant/", "tenant");
}

int api_tenant_get(struct api *api, struct api_ctx *c)
{
	uint32_t id;

	if (api_param_id(c, &id))
		return -1;
	return tenant_reply_by_id(api, c, id, 200, false);
}

static int tenant_patch_once(struct api *api, struct api_ctx *c, uint32_t id,
			     const char *name)
{
	struct store_op ops[3];
	struct api_strs strs = {0};
	char key[256];
	json_object *o, *ref;
	uint64_t ver;
	const char *old;
	int err;

	snprintf(key, sizeof(key), KF_ID, "tenant", id);
	err = api_load(api, key, &o, &ver);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no tenant %u", id);
	if (err)
		return api_fail_store(c, err);
	old = api_str(o, "name");
	if (old && !strcmp(old, name)) {
		json_object_put(o);
		return tenant_reply_by_id(api, c, id, 200, false);
	}
	ops[1].type = STORE_DEL;
	snprintf(key, sizeof(key), "tname/%s", old ? old : "");
	ref = json_object_new_object();
	json_object_object_add(ref, "tenant", json_object_new_int64(id));
	api_op_put_json(&ops[1], &strs, key, ref, STORE_ANY);
	ops[1].type = STORE_DEL;
	snprintf(key, sizeof(key), "tname/%s", name);
	api_op_put_json(&ops[2], &strs, key, ref, STORE_ABSENT);
	json_object_put(ref);
	json_object_object_add(o, "name", json_object_new_string(name));
	snprintf(key, sizeof(key), KF_ID, "tenant", id);
	api_op_put_json(&ops[0], &strs, key, o, ver);
	json_object_put(o);
	err = store_txn(api->store, ops, 3, NULL, NULL);
	api_strs_free(&strs);
	if (err == -ECANCELED) {
		snprintf(key, sizeof(key), "tname/%s", name);
		if (!store_get(api->store, key, NULL, NULL))
			return api_fail(c, 409, "exists", "name",
					"a tenant named '%s' exists", name);
		return -EAGAIN;
	}
	if (err)
		return api_fail_store(c, err);
	return tenant_reply_by_id(api, c, id, 200, false);
}

int api_tenant_patch(struct api *api, struct api_ctx *c)
{
	json_object *body;
	const char *name;
	uint32_t id;
	int ret = -EAGAIN;

	if (api_param_id(c, &id) ||
	    api_parse_body(c, tenant_fields, true, &body))
		return -1;
	name = api_str(body, "name");
	if (!name) {
		json_object_put(body);
		return tenant_reply_by_id(api, c, id, 200, false);
	}
	if (!api_valid_name(name))
		ret = api_fail(c, 400, "invalid_value", "name",
			       "name must be 1 .. 63 characters of A-Z a-z "
			       "0-9 . _ -");
	for (int i = 0; ret == -EAGAIN && i < API_RETRIES; i++)
		ret = tenant_patch_once(api, c, id, name);
	if (ret == -EAGAIN)
		ret = api_fail_store(c, -EAGAIN);
	json_object_put(body);
	return ret;
}

static int has_any(struct api *api, const char *prefix)
{
	struct keylist kl = {0};
	int err = store_list(api->store, prefix, NULL, 1, keylist_add, &kl);
	int n = kl.n;

	keylist_free(&kl);
	return err ? err : kl.err ? kl.err : n;
}

static void op_del(struct store_op *op, const char *key, uint64_t expect)
{
	op->type = STORE_DEL;
	op->key = key;
	op->val = NULL;
	op->len = 0;
	op->expect = expect;
}

int api_tenant_delete(struct api *api, struct api_ctx *c)
{
	char key[64], tok[160], name[160], idx[64];
	struct store_op ops[4];
	json_object *o;
	uint64_t ver;
	uint32_t id;
	size_t n = 0;
	int err;

	if (api_param_id(c, &id))
		return -1;
	snprintf(key, sizeof(key), KF_ID, "tenant", id);
	err = api_load(api, key, &o, &ver);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no tenant %u", id);
	if (err)
		return api_fail_store(c, err);
	snprintf(idx, sizeof(idx), "tv/%010u/", id);
	err = has_any(api, idx);
	if (err) {
		json_object_put(o);
		return err > 0 ? api_fail(c, 409, "in_use", NULL,
					  "tenant %u still has VPCs; delete "
					  "them first",
					  id)
			       : api_fail_store(c, err);
	}
	snprintf(tok, sizeof(tok), "tok/%s", api_str(o, "_token") ?: "");
	snprintf(name, sizeof(name), "tname/%s", api_str(o, "name") ?: "");
	op_del(&ops[n++], key, ver);
	op_del(&ops[n++], tok, STORE_ANY);
	op_del(&ops[n++], name, STORE_ANY);
	if (api_str(o, "_idem"))
		op_del(&ops[n++], api_str(o, "_idem"), STORE_ANY);
	err = store_txn(api->store, ops, n, NULL, NULL);
	json_object_put(o);
	if (err == -ECANCELED)
		return api_fail(c, 409, "conflict", NULL,
				"tenant %u changed meanwhile; retry", id);
	if (err)
		return api_fail_store(c, err);
	pr_info("api: deleted tenant %u", id);
	return api_reply(c, 204, NULL);
}

/* A new token for the tenant; the old one stops working at once. */
int api_tenant_token(struct api *api, struct api_ctx *c)
{
	struct store_op ops[3];
	struct api_strs strs = {0};
	char key[64], old[160], neu[160], token[64];
	json_object *o, *ref;
	uint64_t ver;
	uint32_t id;
	int err;

	if (api_param_id(c, &id))
		return -1;
	snprintf(key, sizeof(key), KF_ID, "tenant", id);
	err = api_load(api, key, &o, &ver);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no tenant %u", id);
	if (err)
		return api_fail_store(c, err);
	err = new_token(API_TOKEN_PREFIX, token, sizeof(token));
	if (err) {
		json_object_put(o);
		return api_fail(c, 500, "internal", NULL,
				"cannot make a token: %s", strerror(-err));
	}
	snprintf(old, sizeof(old), "tok/%s", api_str(o, "_token") ?: "");
	snprintf(neu, sizeof(neu), "tok/%s", token);
	json_object_object_add(o, "_token", json_object_new_string(token));
	api_op_put_json(&ops[0], &strs, key, o, ver);
	json_object_put(o);
	ops[1] = (struct store_op){STORE_DEL, old, NULL, 0, STORE_ANY};
	ref = json_object_new_object();
	json_object_object_add(ref, "tenant", json_object_new_int64(id));
	api_op_put_json(&ops[2], &strs, neu, ref, STORE_ABSENT);
	json_object_put(ref);
	err = store_txn(api->store, ops, 3, NULL, NULL);
	api_strs_free(&strs);
	if (err == -ECANCELED)
		return api_fail(c, 409, "conflict", NULL,
				"tenant %u changed meanwhile; retry", id);
	if (err)
		return api_fail_store(c, err);
	pr_info("api: new token for tenant %u", id);
	return tenant_reply_by_id(api, c, id, 200, true);
}

/* ---- nodes --------------------------------------------------------- */

static const struct api_field node_fields[] = {
	{"name", F_STR, true, false},
	{"ip", F_STR, true, true},
	{NULL, 0, false, false},
};

static int node_reply(struct api *api, struct api_ctx *c, const char *name,
		      int status)
{
	char key[128];
	json_object *o, *p;
	int err;

	snprintf(key, sizeof(key), "node/%s", name);
	err = api_load(api, key, &o, NULL);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no node '%s'",
				name);
	if (err)
		return api_fail_store(c, err);
	p = api_public(o);
	json_object_put(o);
	return api_reply(c, status, p);
}

static int check_node_ip(struct api_ctx *c, const char *ip)
{
	__be32 a;

	if (xvpc_parse_ip(ip, &a) || !a || a == 0xffffffff)
		return api_fail(c, 400, "invalid_value", "ip",
				"'%s' is not a unicast IPv4 address", ip);
	return 0;
}

int api_node_create(struct api *api, struct api_ctx *c)
{
	json_object *body, *o = NULL;
	const char *name, *ip;
	struct store_op op;
	struct api_strs strs = {0};
	char key[128];
	int err, ret;

	if (api_parse_body(c, node_fields, false, &body))
		return -1;
	name = api_str(body, "name");
	ip = api_str(body, "ip");
	if (!api_valid_name(name)) {
		ret = api_fail(c, 400, "invalid_value", "name",
			       "name must be 1 .. 63 characters of A-Z a-z "
			       "0-9 . _ -");
		goto out;
	}
	if ((ret = check_node_ip(c, ip)))
		goto out;
	snprintf(key, sizeof(key), "node/%s", name);
	err = api_load(api, key, &o, NULL);
	if (!err) {
		/* Agents register again after a restart: same answer. */
		if (!strcmp(api_str(o, "ip") ?: "", ip))
			ret = api_reply(c, 200, json_object_get(o));
		else
			ret = api_fail(c, 409, "exists", "name",
				       "node '%s' exists with ip %s; PATCH it "
				       "to change the address",
				       name, api_str(o, "ip"));
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "ip", json_object_new_string(ip));
	api_op_put_json(&op, &strs, key, o, STORE_ABSENT);
	err = store_txn(api->store, &op, 1, NULL, NULL);
	api_strs_free(&strs);
	if (err == -ECANCELED)
		ret = api_fail(c, 409, "exists", "name",
			       "node '%s' was created meanwhile", name);
	else if (err)
		ret = api_fail_store(c, err);
	else
		ret = api_reply(c, 201, json_object_get(o));
	if (!err)
		pr_info("api: registered node '%s' at %s", name, ip);
out:
	json_object_put(o);
	json_object_put(body);
	return ret;
}

int api_node_list(struct api *api, struct api_ctx *c)
{
	return api_list_reply(api, c, "node/", "node");
}

int api_node_get(struct api *api, struct api_ctx *c)
{
	return node_reply(api, c, c->param, 200);
}

int api_node_patch(struct api *api, struct api_ctx *c)
{
	json_object *body, *o = NULL;
	struct store_op op;
	struct api_strs strs = {0};
	const char *ip;
	char key[256];
	uint64_t ver;
	int err, ret;

	if (api_parse_body(c, node_fields, true, &body))
		return -1;
	ip = api_str(body, "ip");
	if (ip && (ret = check_node_ip(c, ip)))
		goto out;
	snprintf(key, sizeof(key), "node/%s", c->param);
	err = api_load(api, key, &o, &ver);
	if (err == -ENOENT) {
		ret = api_fail(c, 404, "not_found", NULL, "no node '%s'",
			       c->param);
		goto out;
	}
	if (err) {
		ret = api_fail_store(c, err);
		goto out;
	}
	if (ip)
		json_object_object_add(o, "ip", json_object_new_string(ip));
	api_op_put_json(&op, &strs, key, o, ver);
	err = store_txn(api->store, &op, 1, NULL, NULL);
	api_strs_free(&strs);
	if (err == -ECANCELED)
		ret = api_fail(c, 409, "conflict", NULL,
			       "node '%s' changed meanwhile; retry", c->param);
	else if (err)
		ret = api_fail_store(c, err);
	else
		ret = api_reply(c, 200, json_object_get(o));
out:
	json_object_put(o);
	json_object_put(body);
	return ret;
}

int api_node_delete(struct api *api, struct api_ctx *c)
{
	struct store_op op;
	struct api_strs strs = {0};
	char key[256], idx[256];
	json_object *o;
	uint64_t ver;
	int err;

	snprintf(key, sizeof(key), "node/%s", c->param);
	err = api_load(api, key, &o, &ver);
	if (err == -ENOENT)
		return api_fail(c, 404, "not_found", NULL, "no node '%s'",
				c->param);
	if (err)
		return api_fail_store(c, err);
	snprintf(idx, sizeof(idx), "np/%s/", c->param);
	err = has_any(api, idx);
	if (err) {
		json_object_put(o);
		return err > 0 ? api_fail(c, 409, "in_use", NULL,
					  "node '%s' still has ports bound; "
					  "unbind or delete them first",
					  c->param)
			       : api_fail_store(c, err);
	}
	/* Mark it, then look again: a port binding after the mark fails its
	 * version check, one bound before it is found. */
	json_object_object_add(o, "_deleting", json_object_new_boolean(1));
	api_op_put_json(&op, &strs, key, o, ver);
	err = store_txn(api->store, &op, 1, &ver, NULL);
	if (err)
		goto out;
	err = has_any(api, idx);
	if (err > 0) {
		json_object_object_del(o, "_deleting");
		api_op_put_json(&op, &strs, key, o, ver);
		store_txn(api->store, &op, 1, NULL, NULL);
		json_object_put(o);
		api_strs_free(&strs);
		return api_fail(c, 409, "in_use", NULL,
				"node '%s' still has ports bound; unbind or "
				"delete them first",
				c->param);
	}
	if (!err) {
		op_del(&op, key, ver);
		err = store_txn(api->store, &op, 1, NULL, NULL);
	}
out:
	json_object_put(o);
	api_strs_free(&strs);
	if (err == -ECANCELED)
		return api_fail(c, 409, "conflict", NULL,
				"node '%s' changed meanwhile; retry", c->param);
	if (err)
		return api_fail_store(c, err);
	pr_info("api: deleted node '%s'", c->param);
	return api_reply(c, 204, NULL);
}
