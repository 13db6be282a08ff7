// SPDX-License-Identifier: GPL-2.0-only
/* Resolver transport: POST /v1/nodes/{name}/resolve over libcurl. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "httpbody.h"
#include "log.h"
#include "netutil.h"
#include "resolve_http.h"

#define RSV_TIMEOUT_MS 1000
#define RSV_BODY_MAX   (4u << 20)
#define RSV_URL_LEN    1024

struct http_tr {
	char **urls;
	int n_urls;
	char *node_esc;
	unsigned int timeout_ms;
	int (*current_url)(void *ctx);
	void *ctx;
	CURL *curl;
	struct curl_slist *hdrs;
	char curl_err[CURL_ERROR_SIZE];
	struct http_body body;
};

static void seterr(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* ---- body and answer ---- */

char *xvpc_resolve_body(const struct xvpc_ep_key *keys, size_t n)
{
	size_t cap = 32 + n * 48, len;
	char *p = malloc(cap), ip[XVPC_IP_STRLEN];

	if (!p)
		return NULL;
	len = snprintf(p, cap, "{\"endpoints\":[");
	for (size_t i = 0; i < n; i++)
		len += snprintf(p + len, cap - len,
				"%s{\"vpc\":%u,\"ip\":\"%s\"}", i ? "," : "",
				keys[i].vpc_id, xvpc_fmt_ip(keys[i].ip, ip));
	snprintf(p + len, cap - len, "]}");
	return p;
}

struct kidx {
	__u64 key;
	size_t i;
};

static int cmp_kidx(const void *a, const void *b)
{
	__u64 x = ((const struct kidx *)a)->key,
	      y = ((const struct kidx *)b)->key;

	return x < y ? -1 : x > y;
}

static __u64 k64(__u32 vpc, __be32 ip)
{
	return (__u64)vpc << 32 | ip;
}

static const char *const ep_fields[] = {"vpc",	   "ip",  "mac",
					"node_ip", "vni", NULL};
static const char *const miss_fields[] = {"vpc", "ip", NULL};
static const char *const top_fields[] = {"revision", "endpoints", "missing",
					 NULL};

static int get_u32(json_object *o, const char *name, __u32 max, __u32 *out)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, name, &v) ||
	    json_object_get_type(v) != json_type_int)
		return -EINVAL;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < 0 || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

static const char *get_str(json_object *o, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    json_object_get_type(v) != json_type_string)
		return NULL;
	return json_object_get_string(v);
}

/* One element: its (vpc, ip), and for found ones the rest. */
static int parse_elem(json_object *e, bool found, struct xvpc_rsv_answer *a)
{
	const char *s;

	memset(a, 0, sizeof(*a));
	if (json_object_get_type(e) != json_type_object ||
	    xvpc_json_unknown_field(e, found ? ep_fields : miss_fields) ||
	    get_u32(e, "vpc", UINT32_MAX, &a->key.vpc_id) || !a->key.vpc_id ||
	    !(s = get_str(e, "ip")) || xvpc_parse_ip(s, &a->key.ip))
		return -EINVAL;
	if (!found)
		return 0;
	a->found = true;
	if (!(s = get_str(e, "mac")) || xvpc_parse_mac(s, a->mac) ||
	    !(s = get_str(e, "node_ip")) || xvpc_parse_ip(s, &a->node_ip) ||
	    !a->node_ip || get_u32(e, "vni", XVPC_VNI_MAX, &a->vni) || !a->vni)
		return -EINVAL;
	return 0;
}

static int parse_list(json_object *top, const char *name, bool found,
		      const struct kidx *ix, size_t n,
		      struct xvpc_rsv_answer *out, char *why, size_t whylen)
{
	json_object *arr;
	size_t len;

	if (!json_object_object_get_ex(top, name, &arr))
		return 0;
	if (json_object_get_type(arr) != json_type_array) {
		seterr(why, whylen, "\"%s\" is not an array", name);
		return -EINVAL;
	}
	len = json_object_array_length(arr);
	for (size_t i = 0; i < len; i++) {
		struct xvpc_rsv_answer a;
		struct kidx want, *hit;

		if (parse_elem(json_object_array_get_idx(arr, i), found, &a)) {
			seterr(why, whylen, "%s[%zu] is malformed", name, i);
			return -EINVAL;
		}
		want.key = k64(a.key.vpc_id, a.key.ip);
		hit = bsearch(&want, ix, n, sizeof(*ix), cmp_kidx);
		if (!hit) {
			char ip[XVPC_IP_STRLEN];

			seterr(why, whylen, "%s[%zu]: vpc %u %s was not asked",
			       name, i, a.key.vpc_id,
			       xvpc_fmt_ip(a.key.ip, ip));
			return -EINVAL;
		}
		/* A key asked twice (cannot happen: queries are
		 * coalesced) gets the answer at one place. */
		out[hit->i] = a;
	}
	return 0;
}

int xvpc_resolve_parse(const char *json, size_t len,
		       const struct xvpc_ep_key *keys, size_t n,
		       struct xvpc_rsv_answer *out, char *why, size_t whylen)
{
	json_tokener *tok = json_tokener_new();
	json_object *top = NULL;
	struct kidx *ix = calloc(n + 1, sizeof(*ix));
	const char *bad;
	int err = -ENOMEM;

	if (!tok || !ix) {
		seterr(why, whylen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ix[i].key = k64(keys[i].vpc_id, keys[i].ip);
		ix[i].i = i;
		memset(&out[i], 0, sizeof(out[i]));
		out[i].key = keys[i];
	}
	qsort(ix, n, sizeof(*ix), cmp_kidx);
	err = -EINVAL;
	top = json_tokener_parse_ex(tok, json, len);
	if (!top || json_tokener_get_parse_end(tok) != len ||
	    json_object_get_type(top) != json_type_object) {
		seterr(why, whylen, "answer is not a JSON object");
		goto out;
	}
	bad = xvpc_json_unknown_field(top, top_fields);
	if (bad) {
		seterr(why, whylen, "unknown field \"%s\"", bad);
		goto out;
	}
	err = parse_list(top, "endpoints", true, ix, n, out, why, whylen)
		      ?: parse_list(top, "missing", false, ix, n, out, why,
				    whylen);
out:
	json_object_put(top);
	json_tokener_free(tok);
	free(ix);
	return err;
}

/* ---- HTTP ---- */

static int post(struct http_tr *t, int url, const char *req, char *why,
		size_t whylen)
{
	char full[RSV_URL_LEN];
	long status = 0;
	CURLcode rc;

	snprintf(full, sizeof(full), "%s/v1/nodes/%s/resolve", t->urls[url],
		 t->node_esc);
	http_body_reset(&t->body);
	t->curl_err[0] = '\0';
	curl_easy_setopt(t->curl, CURLOPT_URL, full);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
	rc = curl_easy_perform(t->curl);
	if (rc != CURLE_OK) {
		seterr(why, whylen, "%s: %s", t->urls[url],
		       t->curl_err[0] ? t->curl_err : curl_easy_strerror(rc));
		return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		seterr(why, whylen, "%s: HTTP %ld", t->urls[url], status);
		return status == 401 || status == 403 ? -EACCES : -EPROTO;
	}
	return 0;
}

static int http_resolve(void *ctx, const struct xvpc_ep_key *keys, size_t n,
			struct xvpc_rsv_answer *out)
{
	struct http_tr *t = ctx;
	char why[512] = "";
	int first = t->current_url ? t->current_url(t->ctx) : 0, err = -EIO;
	char *req;

	if (n > XVPC_RESOLVE_MAX)
		return -E2BIG;
	req = xvpc_resolve_body(keys, n);
	if (!req)
		return -ENOMEM;
	if (first < 0 || first >= t->n_urls)
		first = 0;
	for (int k = 0; k < t->n_urls; k++) {
		int url = (first + k) % t->n_urls;

		err = post(t, url, req, why, sizeof(why));
		if (!err)
			err = xvpc_resolve_parse(t->body.p ? t->body.p : "",
						 t->body.n, keys, n, out, why,
						 sizeof(why));
		if (!err)
			break;
		pr_warn("resolve: %s", why);
	}
	free(req);
	return err;
}

static void http_destroy(void *ctx)
{
	struct http_tr *t = ctx;

	if (!t)
		return;
	if (t->curl)
		curl_easy_cleanup(t->curl);
	if (t->node_esc)
		curl_free(t->node_esc);
	curl_slist_free_all(t->hdrs);
	for (int i = 0; i < t->n_urls; i++)
		free(t->urls[i]);
	free(t->urls);
	http_body_free(&t->body);
	free(t);
}

static int setup(struct http_tr *t, const struct xvpc_resolve_http_opts *o)
{
	char auth[1024];

	t->curl = curl_easy_init();
	if (!t->curl)
		return -ENOMEM;
	if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			     o->token) >= sizeof(auth))
		return -ENAMETOOLONG;
	t->hdrs = curl_slist_append(NULL, auth);
	explicit_bzero(auth, sizeof(auth));
	/* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
	if (!t->hdrs ||
	    !curl_slist_append(t->hdrs, "Content-Type: application/json") ||
	    !curl_slist_append(t->hdrs, "Expect:"))
		return -ENOMEM;
	t->node_esc = curl_easy_escape(t->curl, o->node_name, 0);
	if (!t->node_esc)
		return -ENOMEM;
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->hdrs);
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, http_body_write);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, &t->body);
	curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, t->curl_err);
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)t->timeout_ms);
	curl_easy_setopt(t->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	return 0;
}

int xvpc_resolve_http_new(const struct xvpc_resolve_http_opts *o,
			  struct xvpc_rsv_transport **out)
{
	struct xvpc_rsv_transport *tr;
	struct http_tr *t;
	int err = 0;

	if (!o->n_urls || !o->node_name || !*o->node_name || !o->token ||
	    !*o->token)
		return -EINVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	t = calloc(1, sizeof(*t));
	tr = calloc(1, sizeof(*tr));
	if (!t || !tr) {
		free(t);
		free(tr);
		return -ENOMEM;
	}
	t->body.max = RSV_BODY_MAX;
	t->timeout_ms = o->timeout_ms ?: RSV_TIMEOUT_MS;
	t->current_url = o->current_url;
	t->ctx = o->ctx;
	t->urls = calloc(o->n_urls, sizeof(*t->urls));
	err = t->urls ? 0 : -ENOMEM;
	for (int i = 0; !err && i < o->n_urls; i++) {
		size_t len;

		t->urls[i] = strdup(o->urls[i]);
		if (!t->urls[i]) {
			err = -ENOMEM;
			break;
		}
		t->n_urls++;
		len = strlen(t->urls[i]);
		while (len && t->urls[i][len - 1] == '/')
			t->urls[i][--len] = '\0';
	}
	if (!err)
		err = setup(t, o);
	if (err) {
		http_destroy(t);
		free(tr);
		return err;
	}
	tr->resolve = http_resolve;
	tr->destroy = http_destroy;
	tr->ctx = t;
	*out = tr;
	return 0;
}
