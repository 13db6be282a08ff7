// SPDX-License-Identifier: GPL-2.0-only
/* State source: the controllers, through a long-poll client (libcurl). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cloc.h"
#include "httpbody.h"
#include "log.h"
#include "netutil.h"
#include "source_ctrl.h"

#define CTRL_BODY_MAX	(256u << 20) /* a snapshot of a very large node */
#define CTRL_WAIT_S	30
#define CTRL_CONNECT_MS 1000
#define CTRL_RETRY_MS	100
#define CTRL_RETRY_MAX	2000
#define CTRL_SLACK_S	10 /* beyond the long-poll wait, for the answer */
#define CTRL_SNAPSHOT_S 60
#define CTRL_WHY_LEN	512
#define CTRL_URL_LEN	1024
/* An answer of at most this many endpoint puts is validated by what it
 * changed; every CTRL_QUICK_EVERY such answers, the whole state again. */
#define CTRL_QUICK_MAX	 256
#define CTRL_QUICK_EVERY 1024
/* Answers of at most this many changes find endpoints by a scan (but in
 * place: the index kept, see apply_in_place). */
#define CTRL_SCAN_MAX 16
/* Endpoints deleted in place stay marked in the current state until they
 * are more than CTRL_DEAD_MIN and a quarter of it, or for CTRL_DEAD_ANSWERS
 * answers (each of which compacts its copy meanwhile). */
#define CTRL_DEAD_MIN	  64
#define CTRL_DEAD_ANSWERS 32

/*
 * Index of one kind of object in a working state: open addressing over
 * array positions (slot = position + 1, 0 empty). Deleted objects are
 * marked (vpc or id 0, never valid) and compacted away at the end.
 */
struct idx {
	__u32 *slot;
	size_t mask;
};

struct ctrl_source {
	struct agent_source s;
	char **urls;
	int n_urls;
	char node[256];
	char *node_esc; /* for the URL path */
	__be32 node_ip;
	unsigned int wait_s, connect_ms, retry_max_ms;
	/* Pacing: a token bucket of AGENT_CTRL_BURST answers with changes,
	 * one token back every batch_ms (0: off); tokens as of tokens_ms. */
	unsigned int batch_ms;
	double tokens;
	__u64 tokens_ms;
	unsigned int hdr_hint; /* X-Xvpc-Batch-Ms of the answer coming in */
	unsigned int hint_ms;  /* of the last answer */
	bool registered;
	bool want_snapshot;
	unsigned int quick_left; /* quick validations before a full one */
	/* Index of cur's endpoints, kept from answer to answer by the
	 * in-place path (slot NULL: to build); dropped when cur is replaced,
	 * compacted or taken back. cur_dead: endpoints of cur deleted in
	 * place and not compacted away yet (vpc 0; under mu): so that
	 * positions, and the index, hold; copies are compacted. */
	struct idx cur_ix;
	size_t cur_dead;
	unsigned int dead_answers; /* answers since cur had marked ones */
	json_tokener *tok;	   /* strict, reset for each answer */
	CURL *curl;
	CURLM *multi;
	struct curl_slist *hdrs;
	char curl_err[CURL_ERROR_SIZE];
	struct http_body body;
	int efd;
	pthread_t thread;
	bool started;
	bool stop; /* __atomic; also under mu for the condition */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct xvpc_state *cur;	    /* written by the thread under mu */
	struct xvpc_state *pending; /* under mu: not fetched yet */
	struct agent_ctrl_stats st; /* under mu */
	struct xvpc_ep_key *gone;   /* under mu: not taken yet */
	size_t n_gone;
};

#define CTRL_GONE_MAX 65536 /* beyond: they age out instead */

/* Under mu. */
static int gone_add(struct ctrl_source *cs, const struct xvpc_ep_key *k,
		    size_t n)
{
	struct xvpc_ep_key *p;

	if (cs->n_gone + n > CTRL_GONE_MAX)
		return -ENOSPC;
	p = realloc(cs->gone, (cs->n_gone + n) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(p + cs->n_gone, k, n * sizeof(*p));
	cs->gone = p;
	cs->n_gone += n;
	return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool stopping(struct ctrl_source *cs)
{
	return __atomic_load_n(&cs->stop, __ATOMIC_ACQUIRE);
}

static const char *cur_url(struct ctrl_source *cs)
{
	return cs->urls[cs->st.url];
}

/* ---- states ---------------------------------------------------------- */

static struct xvpc_state *state_dup(const struct xvpc_state *st)
{
	struct xvpc_state *d = xvpc_state_new();

	if (!d)
		return NULL;
	d->revision = st->revision;
	d->validated = st->validated;
#define DUP_ARRAY(f, n, cap)                                         \
	do {                                                         \
		if (st->n) {                                         \
			d->f = malloc(st->n * sizeof(*st->f));       \
			if (!d->f)                                   \
				goto fail;                           \
			memcpy(d->f, st->f, st->n * sizeof(*st->f)); \
			d->n = d->cap = st->n;                       \
		}                                                    \
	} while (0)
	DUP_ARRAY(vpcs, n_vpcs, cap_vpcs);
	DUP_ARRAY(subnets, n_subnets, cap_subnets);
	DUP_ARRAY(eps, n_eps, cap_eps);
	DUP_ARRAY(nodes, n_nodes, cap_nodes);
#undef DUP_ARRAY
	for (size_t i = 0; i < st->n_svcs; i++)
		if (xvpc_state_add_svc(d, &st->svcs[i]))
			goto fail;
	d->validated = st->validated;
	return d;
fail:
	xvpc_state_free(d);
	return NULL;
}

/* Hands copy to the agent (replacing a copy it has not fetched yet);
 * st, if not NULL, becomes the current state. */
static void hand_over(struct ctrl_source *cs, struct xvpc_state *st,
		      struct xvpc_state *copy, bool snapshot, size_t n_changes)
{
	struct xvpc_state *old_cur = NULL, *old_pending;
	__u64 one = 1;

	if (st) {
		free(cs->cur_ix.slot);
		cs->cur_ix.slot = NULL;
	}
	pthread_mutex_lock(&cs->mu);
	if (st) {
		old_cur = cs->cur;
		cs->cur = st;
		cs->cur_dead = 0;
		cs->dead_answers = 0;
	}
	old_pending = cs->pending;
	cs->pending = copy;
	cs->st.revision = copy->revision;
	if (snapshot)
		cs->st.snapshots++;
	else
		cs->st.updates++;
	cs->st.changes += n_changes;
	pthread_mutex_unlock(&cs->mu);
	xvpc_state_free(old_cur);
	xvpc_state_free(old_pending);
	if (write(cs->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("cannot wake the agent for a new state: %s",
			strerror(errno));
}

/* Makes st the current state and hands a copy to the agent. */
static int install(struct ctrl_source *cs, struct xvpc_state *st, bool snapshot,
		   size_t n_changes)
{
	struct xvpc_state *copy = state_dup(st);

	if (!copy) {
		xvpc_state_free(st);
		return -ENOMEM;
	}
	hand_over(cs, st, copy, snapshot, n_changes);
	return 0;
}

/* ---- HTTP ------------------------------------------------------------ */

static void seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* The controller's error message from an error body, or "". */
static void api_message(const struct http_body *b, char *out, size_t len)
{
	json_object *o, *e, *m;

	out[0] = '\0';
	if (!b->n)
		return;
	o = json_tokener_parse(b->p);
	if (o && json_object_object_get_ex(o, "error", &e) &&
	    json_object_object_get_ex(e, "message", &m))
		snprintf(out, len, ": %s", json_object_get_string(m));
	json_object_put(o);
}

/*
 * One request to the current URL (the multi handle only so that destroy
 * can interrupt a long-poll at once; the connection is kept alive between
 * requests). post: a JSON body to POST, else GET. -EINTR when stopped,
 * another -errno with a message in why when there is no HTTP answer.
 */
static int request(struct ctrl_source *cs, const char *path, const char *post,
		   long timeout_ms, long *status, char *why, size_t whylen)
{
	CURLcode rc = CURLE_OK;
	char url[CTRL_URL_LEN];
	CURLMsg *msg;
	int running, left;

	snprintf(url, sizeof(url), "%s%s", cur_url(cs), path);
	http_body_reset(&cs->body);
	cs->hdr_hint = 0;
	cs->curl_err[0] = '\0';
	curl_easy_setopt(cs->curl, CURLOPT_URL, url);
	curl_easy_setopt(cs->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (post) {
		curl_easy_setopt(cs->curl, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(cs->curl, CURLOPT_POSTFIELDSIZE,
				 (long)strlen(post));
	} else {
		curl_easy_setopt(cs->curl, CURLOPT_HTTPGET, 1L);
	}
	if (curl_multi_add_handle(cs->multi, cs->curl)) {
		snprintf(why, whylen, "cannot start a transfer");
		return -ENOMEM;
	}
	for (;;) {
		if (curl_multi_perform(cs->multi, &running)) {
			rc = CURLE_FAILED_INIT;
			break;
		}
		if (!running)
			break;
		if (stopping(cs)) {
			curl_multi_remove_handle(cs->multi, cs->curl);
			return -EINTR;
		}
		curl_multi_poll(cs->multi, NULL, 0, 1000, NULL);
	}
	while ((msg = curl_multi_info_read(cs->multi, &left)))
		if (msg->msg == CURLMSG_DONE)
			rc = msg->data.result;
	curl_multi_remove_handle(cs->multi, cs->curl);
	if (stopping(cs))
		return -EINTR;
	if (rc != CURLE_OK) {
		if (cs->body.too_large) {
			snprintf(why, whylen, "answer larger than %u MiB",
				 CTRL_BODY_MAX >> 20);
			return -EFBIG;
		}
		snprintf(why, whylen, "%s",
			 cs->curl_err[0] ? cs->curl_err
					 : curl_easy_strerror(rc));
		if (rc == CURLE_COULDNT_CONNECT)
			return -ECONNREFUSED;
		if (rc == CURLE_OPERATION_TIMEDOUT)
			return -ETIMEDOUT;
		return -EIO;
	}
	curl_easy_getinfo(cs->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* A non-200 answer: say what it was. */
static int http_failure(struct ctrl_source *cs, const char *what, long status,
			char *why, size_t whylen)
{
	char msg[256];

	api_message(&cs->body, msg, sizeof(msg));
	if (status == 401 || status == 403) {
		seterr(why, whylen,
		       "%s: HTTP %ld%s (check the agent's token: --token, "
		       "XVPC_TOKEN or `token =`)",
		       what, status, msg);
		return -EACCES;
	}
	if (status == 404 && !strcmp(what, "state")) {
		/* The node is gone from the controller's store: register
		 * it again before the next request. */
		cs->registered = false;
		seterr(why, whylen, "node %s is not registered%s", cs->node,
		       msg);
		return -ENOENT;
	}
	seterr(why, whylen, "%s: HTTP %ld%s", what, status, msg);
	return -EPROTO;
}

static int do_register(struct ctrl_source *cs, char *why, size_t whylen)
{
	char ip[XVPC_IP_STRLEN];
	json_object *o = json_object_new_object();
	long status = 0;
	int err;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "name", json_object_new_string(cs->node));
	json_object_object_add(
		o, "ip", json_object_new_string(xvpc_fmt_ip(cs->node_ip, ip)));
	err = request(cs, "/v1/nodes", json_object_to_json_string(o),
		      cs->connect_ms + CTRL_SLACK_S * 1000L, &status, why,
		      whylen);
	json_object_put(o);
	if (err)
		return err;
	if (status == 409) {
		char msg[256];

		api_message(&cs->body, msg, sizeof(msg));
		seterr(why, whylen,
		       "node %s is registered with another address than "
		       "%s%s (PATCH /v1/nodes/%s or fix --node-ip)",
		       cs->node, ip, msg, cs->node);
		return -EEXIST;
	}
	if (status != 200 && status != 201)
		return http_failure(cs, "registering the node", status, why,
				    whylen);
	if (status == 201)
		pr_info("registered node %s (%s) with %s", cs->node, ip,
			cur_url(cs));
	cs->registered = true;
	return 0;
}

/* ---- changes --------------------------------------------------------- */

struct pc {
	char *why;
	size_t len;
	const char *where; /* "changes[3] (endpoint)" */
};

static int only_fields(struct pc *p, json_object *o, const char *const *allowed)
{
	const char *bad = xvpc_json_unknown_field(o, allowed);

	if (!bad)
		return 0;
	seterr(p->why, p->len, "%s: unknown field \"%s\"", p->where, bad);
	return -EINVAL;
}

static json_object *field(struct pc *p, json_object *o, const char *name,
			  enum json_type type, bool required, int *err)
{
	json_object *v;

	*err = 0;
	if (!json_object_object_get_ex(o, name, &v)) {
		if (required) {
			seterr(p->why, p->len, "%s: field \"%s\" is missing",
			       p->where, name);
			*err = -EINVAL;
		}
		return NULL;
	}
	if (json_object_get_type(v) != type) {
		seterr(p->why, p->len, "%s: field \"%s\" has the wrong type",
		       p->where, name);
		*err = -EINVAL;
		return NULL;
	}
	return v;
}

static int field_u64(struct pc *p, json_object *o, const char *name, __u64 max,
		     __u64 *out)
{
	json_object *v;
	int64_t x;
	int err;

	v = field(p, o, name, json_type_int, true, &err);
	if (!v)
		return err;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < 0 || (__u64)x > max) {
		seterr(p->why, p->len, "%s: field \"%s\" is out of range",
		       p->where, name);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int field_u32(struct pc *p, json_object *o, const char *name, __u32 *out)
{
	__u64 v;
	int err = field_u64(p, o, name, UINT32_MAX, &v);

	if (!err)
		*out = v;
	return err;
}

static int field_str(struct pc *p, json_object *o, const char *name,
		     bool required, const char **out)
{
	json_object *v;
	int err;

	*out = NULL;
	v = field(p, o, name, json_type_string, required, &err);
	if (v)
		*out = json_object_get_string(v);
	return err;
}

static int field_ip(struct pc *p, json_object *o, const char *name, __be32 *ip)
{
	const char *s;
	int err = field_str(p, o, name, true, &s);

	if (err)
		return err;
	if (xvpc_parse_ip(s, ip)) {
		seterr(p->why, p->len,
		       "%s: field \"%s\": \"%s\" is not an IPv4 address",
		       p->where, name, s);
		return -EINVAL;
	}
	return 0;
}

static int field_mac(struct pc *p, json_object *o, const char *name,
		     __u8 mac[6])
{
	const char *s;
	int err = field_str(p, o, name, true, &s);

	if (err)
		return err;
	if (xvpc_parse_mac(s, mac)) {
		seterr(p->why, p->len,
		       "%s: field \"%s\": \"%s\" is not a MAC address",
		       p->where, name, s);
		return -EINVAL;
	}
	return 0;
}

static const char *const vpc_fields[] = {"id", "name", "mode", "gateways",
					 NULL};
static const char *const node_fields[] = {"ip", NULL};
static const char *const subnet_fields[] = {"vpc",	  "cidr",	 "vni",
					    "gateway_ip", "gateway_mac", NULL};
static const char *const ep_fields[] = {"vpc",	   "ip",     "mac",
					"node_ip", "ifname", NULL};
static const char *const change_fields[] = {"revision", "op", "kind", "object",
					    NULL};
static const char *const answer_fields[] = {"revision", "snapshot", "changes",
					    NULL};

/* "mode" and "gateways" of a VPC (docs/learning.md); the rules between
 * them are checked when the whole state is validated. */
static int parse_vpc_learn(struct pc *p, json_object *o,
			   struct xvpc_state_vpc *v)
{
	json_object *gws;
	const char *mode;
	size_t n;
	int err = field_str(p, o, "mode", false, &mode);

	if (err)
		return err;
	if (mode && !strcmp(mode, "learn")) {
		v->mode = XVPC_MODE_LEARN;
	} else if (mode && strcmp(mode, "push")) {
		seterr(p->why, p->len,
		       "%s: field \"mode\": \"%s\" is not push or learn",
		       p->where, mode);
		return -EINVAL;
	}
	gws = field(p, o, "gateways", json_type_array, false, &err);
	if (!gws)
		return err;
	n = json_object_array_length(gws);
	if (n > XVPC_STATE_GATEWAYS_MAX) {
		seterr(p->why, p->len, "%s: field \"gateways\": at most %d",
		       p->where, XVPC_STATE_GATEWAYS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *g = json_object_array_get_idx(gws, i);

		if (json_object_get_type(g) != json_type_string ||
		    xvpc_parse_ip(json_object_get_string(g), &v->gateways[i])) {
			seterr(p->why, p->len,
			       "%s: field \"gateways[%zu]\" is not an IPv4 "
			       "address",
			       p->where, i);
			return -EINVAL;
		}
	}
	v->n_gateways = n;
	return 0;
}

static int parse_vpc(struct pc *p, json_object *o, struct xvpc_state_vpc *v)
{
	const char *name;
	int err;

	memset(v, 0, sizeof(*v));
	err = only_fields(p, o, vpc_fields);
	if (!err)
		err = field_u32(p, o, "id", &v->id);
	if (!err)
		err = field_str(p, o, "name", false, &name);
	if (err)
		return err;
	if (!v->id || (name && strlen(name) >= sizeof(v->name))) {
		seterr(p->why, p->len, "%s: bad id or name too long", p->where);
		return -EINVAL;
	}
	if (name)
		strcpy(v->name, name);
	return parse_vpc_learn(p, o, v);
}

/* A node of the cluster (learning mode): {"ip": "192.168.250.3"}. */
static int parse_node(struct pc *p, json_object *o, __be32 *ip)
{
	int err = only_fields(p, o, node_fields);

	return err ?: field_ip(p, o, "ip", ip);
}

static int parse_subnet(struct pc *p, json_object *o,
			struct xvpc_state_subnet *s)
{
	const char *cidr;
	int err;

	memset(s, 0, sizeof(*s));
	err = only_fields(p, o, subnet_fields);
	if (!err)
		err = field_u32(p, o, "vpc", &s->vpc);
	if (!err)
		err = field_str(p, o, "cidr", true, &cidr);
	if (err)
		return err;
	if (xvpc_parse_cidr(cidr, &s->net, &s->plen)) {
		seterr(p->why, p->len,
		       "%s: field \"cidr\": \"%s\" is not a network/prefix",
		       p->where, cidr);
		return -EINVAL;
	}
	err = field_u32(p, o, "vni", &s->vni);
	if (!err)
		err = field_ip(p, o, "gateway_ip", &s->gw_ip);
	if (!err)
		err = field_mac(p, o, "gateway_mac", s->gw_mac);
	return err;
}

static int parse_ep(struct pc *p, json_object *o, struct xvpc_state_ep *e)
{
	const char *ifname;
	int err;

	memset(e, 0, sizeof(*e));
	err = only_fields(p, o, ep_fields);
	if (!err)
		err = field_u32(p, o, "vpc", &e->vpc);
	if (!err)
		err = field_ip(p, o, "ip", &e->ip);
	if (!err)
		err = field_mac(p, o, "mac", e->mac);
	if (!err)
		err = field_ip(p, o, "node_ip", &e->node_ip);
	if (!err)
		err = field_str(p, o, "ifname", false, &ifname);
	if (err)
		return err;
	if (ifname) {
		if (!*ifname || strlen(ifname) >= sizeof(e->ifname) ||
		    strpbrk(ifname, "/: \t\n")) {
			seterr(p->why, p->len,
			       "%s: field \"ifname\": \"%s\" is not an "
			       "interface name",
			       p->where, ifname);
			return -EINVAL;
		}
		strcpy(e->ifname, ifname);
	}
	return 0;
}

/* A service: the strict parser and the rules of lib/state.c, on a
 * document holding only it and its VPC; *out gets its own backends. */
static int parse_svc(struct pc *p, json_object *o, struct xvpc_state_svc *out)
{
	json_object *doc = json_object_new_object(), *arr, *v, *vpc;
	char msg[XVPC_STATE_ERR_LEN];
	struct xvpc_state *st = NULL;
	const char *txt;
	size_t len;
	int err;

	memset(out, 0, sizeof(*out));
	if (!doc)
		return -ENOMEM;
	vpc = json_object_object_get(o, "vpc");
	arr = json_object_new_array();
	v = json_object_new_object();
	json_object_object_add(v, "id", json_object_get(vpc));
	json_object_array_add(arr, v);
	json_object_object_add(doc, "vpcs", arr);
	json_object_object_add(doc, "subnets", json_object_new_array());
	json_object_object_add(doc, "endpoints", json_object_new_array());
	arr = json_object_new_array();
	json_object_array_add(arr, json_object_get(o));
	json_object_object_add(doc, "services", arr);
	txt = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN,
						&len);
	err = txt ? xvpc_state_parse(txt, len, 0, &st, msg, sizeof(msg))
		  : -ENOMEM;
	json_object_put(doc);
	if (err == -EINVAL)
		seterr(p->why, p->len, "%s: %s", p->where, msg);
	if (err)
		return err;
	*out = st->svcs[0];
	st->svcs[0].backends = NULL; /* now out's */
	st->svcs[0].n_backends = 0;
	xvpc_state_free(st);
	return 0;
}

enum kind { K_VPC, K_SUBNET, K_EP, K_SVC /* not indexed */ };

static __u64 mix(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static __u64 key_of(const struct xvpc_state *w, enum kind k, size_t i)
{
	switch (k) {
	case K_VPC:
		return w->vpcs[i].id;
	case K_SUBNET:
		return ((__u64)w->subnets[i].vpc << 32 | w->subnets[i].net) ^
		       ((__u64)w->subnets[i].plen << 56);
	default:
		return (__u64)w->eps[i].vpc << 32 | w->eps[i].ip;
	}
}

static __u64 key_vpc(__u32 id)
{
	return id;
}

static __u64 key_subnet(const struct xvpc_state_subnet *s)
{
	return ((__u64)s->vpc << 32 | s->net) ^ ((__u64)s->plen << 56);
}

static __u64 key_ep(const struct xvpc_state_ep *e)
{
	return (__u64)e->vpc << 32 | e->ip;
}

static bool live(const struct xvpc_state *w, enum kind k, size_t i)
{
	return k == K_VPC      ? w->vpcs[i].id
	       : k == K_SUBNET ? w->subnets[i].vpc
			       : w->eps[i].vpc;
}

/* The slot holding key (its value is position + 1) or the empty slot
 * where it would go. Dead entries keep their key 0-ish and never match a
 * live key because key 0 is never asked for (ids and VPCs are >= 1). */
static __u32 *idx_slot(struct idx *x, const struct xvpc_state *w, enum kind k,
		       __u64 key)
{
	size_t h = mix(key) & x->mask;

	for (;; h = (h + 1) & x->mask) {
		__u32 s = x->slot[h];

		if (!s || (live(w, k, s - 1) && key_of(w, k, s - 1) == key))
			return &x->slot[h];
	}
}

static int idx_build(struct idx *x, const struct xvpc_state *w, enum kind k,
		     size_t n, size_t extra)
{
	size_t size = 16;

	while (size < 2 * (n + extra))
		size *= 2;
	x->slot = calloc(size, sizeof(*x->slot));
	if (!x->slot)
		return -ENOMEM;
	x->mask = size - 1;
	for (size_t i = 0; i < n; i++)
		*idx_slot(x, w, k, key_of(w, k, i)) = i + 1;
	return 0;
}

/* An endpoint as it was before a change overwrote it (position). */
struct undo_ep {
	size_t pos;
	struct xvpc_state_ep old;
};

struct work {
	struct xvpc_state *w;
	struct idx ix[3];
	/* Endpoints deleted that the state did not hold (remote endpoints
	 * of a learn-mode VPC): the agent deletes what it learned of them. */
	struct xvpc_ep_key *gone;
	size_t n_gone, cap_gone;
	/* Positions of the endpoints put (before compact), and whether any
	 * change of another kind was applied: an answer of endpoint changes
	 * only is validated by what it changed (validate_quick). */
	size_t *puts;
	size_t n_puts, cap_puts;
	bool other;
	/* In place (apply_in_place): the endpoints overwritten or marked
	 * deleted, with what they held, and the count before the changes,
	 * to take everything back. dead: endpoints marked deleted. */
	bool in_place;
	struct undo_ep *undo;
	size_t n_undo, cap_undo, n_eps0, dead;
};

/* In place: note what eps[pos] holds before it is overwritten. */
static int note_undo(struct work *wk, size_t pos)
{
	if (!wk->in_place)
		return 0;
	if (wk->n_undo == wk->cap_undo) {
		size_t cap = wk->cap_undo ? wk->cap_undo * 2 : 16;
		void *p = realloc(wk->undo, cap * sizeof(*wk->undo));

		if (!p)
			return -ENOMEM;
		wk->undo = p;
		wk->cap_undo = cap;
	}
	wk->undo[wk->n_undo].pos = pos;
	wk->undo[wk->n_undo].old = wk->w->eps[pos];
	wk->n_undo++;
	return 0;
}

/* In place: back to the state before the changes. */
static void undo_all(struct work *wk)
{
	while (wk->n_undo) {
		wk->n_undo--;
		wk->w->eps[wk->undo[wk->n_undo].pos] = wk->undo[wk->n_undo].old;
	}
	wk->w->n_eps = wk->n_eps0;
}

static int note_put(struct work *wk, size_t pos)
{
	if (wk->n_puts == wk->cap_puts) {
		size_t cap = wk->cap_puts ? wk->cap_puts * 2 : 16;
		void *p = realloc(wk->puts, cap * sizeof(*wk->puts));

		if (!p)
			return -ENOMEM;
		wk->puts = p;
		wk->cap_puts = cap;
	}
	wk->puts[wk->n_puts++] = pos;
	return 0;
}

static int note_gone(struct work *wk, const struct xvpc_state_ep *e)
{
	if (wk->n_gone == wk->cap_gone) {
		size_t cap = wk->cap_gone ? wk->cap_gone * 2 : 16;
		void *p = realloc(wk->gone, cap * sizeof(*wk->gone));

		if (!p)
			return -ENOMEM;
		wk->gone = p;
		wk->cap_gone = cap;
	}
	wk->gone[wk->n_gone].vpc_id = e->vpc;
	wk->gone[wk->n_gone].ip = e->ip;
	wk->n_gone++;
	return 0;
}

static int apply_one(struct work *wk, bool put, enum kind k, const void *obj)
{
	struct xvpc_state *w = wk->w;
	__u64 key = k == K_VPC
			    ? key_vpc(((const struct xvpc_state_vpc *)obj)->id)
		    : k == K_SUBNET ? key_subnet(obj)
				    : key_ep(obj);
	__u32 *slot, pos = 0;
	int err;

	if (wk->ix[k].slot) {
		slot = idx_slot(&wk->ix[k], w, k, key);
	} else {
		/* A few endpoint changes: a scan costs less than an index. */
		for (size_t i = 0; i < w->n_eps && !pos; i++)
			if (w->eps[i].vpc && key_ep(&w->eps[i]) == key)
				pos = i + 1;
		slot = &pos;
	}

	if (k != K_EP)
		wk->other = true;
	if (k == K_EP && *slot) {
		err = note_undo(wk, *slot - 1);
		if (err)
			return err;
	}
	if (!put) {
		if (!*slot) /* already absent: maybe learned */
			return k == K_EP ? note_gone(wk, obj) : 0;
		if (k == K_VPC)
			w->vpcs[*slot - 1].id = 0;
		else if (k == K_SUBNET)
			w->subnets[*slot - 1].vpc = 0;
		else
			w->eps[*slot - 1].vpc = 0;
		wk->dead++;
		return 0;
	}
	if (*slot) {
		if (k == K_VPC)
			w->vpcs[*slot - 1] =
				*(const struct xvpc_state_vpc *)obj;
		else if (k == K_SUBNET)
			w->subnets[*slot - 1] =
				*(const struct xvpc_state_subnet *)obj;
		else
			w->eps[*slot - 1] = *(const struct xvpc_state_ep *)obj;
		return k == K_EP ? note_put(wk, *slot - 1) : 0;
	}
	if (k == K_VPC)
		err = xvpc_state_add_vpc(w, obj);
	else if (k == K_SUBNET)
		err = xvpc_state_add_subnet(w, obj);
	else
		err = xvpc_state_add_ep(w, obj);
	if (err)
		return err;
	*slot = (k == K_VPC	 ? w->n_vpcs
		 : k == K_SUBNET ? w->n_subnets
				 : w->n_eps);
	return k == K_EP ? note_put(wk, *slot - 1) : 0;
}

/* Services are few (the datapath holds 1,024): found by a linear search,
 * deleted ones marked with vpc 0 and compacted away. */
static int apply_svc(struct xvpc_state *w, bool put, struct xvpc_state_svc *s)
{
	struct xvpc_state_svc *cur = NULL;
	int err = 0;

	for (size_t i = 0; i < w->n_svcs && !cur; i++)
		if (w->svcs[i].vpc == s->vpc && w->svcs[i].vip == s->vip &&
		    w->svcs[i].port == s->port && w->svcs[i].proto == s->proto)
			cur = &w->svcs[i];
	if (cur) {
		free(cur->backends);
		*cur = *s;
		s->backends = NULL; /* now the state's */
		if (!put)
			cur->vpc = 0;
		w->validated = false;
	} else if (put) {
		err = xvpc_state_add_svc(w, s);
	}
	return err;
}

static void compact(struct xvpc_state *w)
{
	size_t o = 0;

	for (size_t i = 0; i < w->n_svcs; i++) {
		if (w->svcs[i].vpc)
			w->svcs[o++] = w->svcs[i];
		else
			free(w->svcs[i].backends);
	}
	w->n_svcs = o;
	o = 0;

	for (size_t i = 0; i < w->n_vpcs; i++)
		if (w->vpcs[i].id)
			w->vpcs[o++] = w->vpcs[i];
	w->n_vpcs = o;
	o = 0;
	for (size_t i = 0; i < w->n_subnets; i++)
		if (w->subnets[i].vpc)
			w->subnets[o++] = w->subnets[i];
	w->n_subnets = o;
	o = 0;
	for (size_t i = 0; i < w->n_eps; i++)
		if (w->eps[i].vpc)
			w->eps[o++] = w->eps[i];
	w->n_eps = o;
}

/* Cluster members are few: a linear list. */
static int apply_node(struct xvpc_state *w, bool put, __be32 ip)
{
	for (size_t i = 0; i < w->n_nodes; i++) {
		if (w->nodes[i] != ip)
			continue;
		if (!put)
			w->nodes[i] = w->nodes[--w->n_nodes];
		return 0;
	}
	return put ? xvpc_state_add_node(w, ip) : 0;
}

/* One element of "changes": parse it and apply it to the working state. */
static int change_one(struct work *wk, json_object *c, size_t i, __u64 since,
		      __u64 upto, char *why, size_t whylen, bool *skipped)
{
	char where[64];
	struct pc p = {.why = why, .len = whylen, .where = where};
	const char *op, *kind;
	json_object *obj;
	union {
		struct xvpc_state_vpc v;
		struct xvpc_state_subnet s;
		struct xvpc_state_ep e;
		struct xvpc_state_svc sv;
	} u;
	__u64 rev;
	enum kind k;
	bool put;
	int err;

	*skipped = false;
	snprintf(where, sizeof(where), "changes[%zu]", i);
	if (json_object_get_type(c) != json_type_object) {
		seterr(why, whylen, "%s: not an object", where);
		return -EINVAL;
	}
	err = only_fields(&p, c, change_fields);
	if (!err)
		err = field_u64(&p, c, "revision", UINT64_MAX, &rev);
	if (!err)
		err = field_str(&p, c, "op", true, &op);
	if (!err)
		err = field_str(&p, c, "kind", true, &kind);
	if (err)
		return err;
	obj = field(&p, c, "object", json_type_object, true, &err);
	if (!obj)
		return err;
	if (!strcmp(op, "put")) {
		put = true;
	} else if (!strcmp(op, "delete")) {
		put = false;
	} else {
		seterr(why, whylen, "%s: op \"%s\" is not put or delete", where,
		       op);
		return -EINVAL;
	}
	if (rev > upto) {
		seterr(why, whylen,
		       "%s: revision %llu is after the answer's %llu", where,
		       (unsigned long long)rev, (unsigned long long)upto);
		return -EINVAL;
	}
	snprintf(where, sizeof(where), "changes[%zu] (%s)", i, kind);
	if (!strcmp(kind, "node")) {
		__be32 ip;

		err = parse_node(&p, obj, &ip);
		if (err || rev <= since) {
			*skipped = !err;
			return err;
		}
		wk->other = true;
		return apply_node(wk->w, put, ip);
	}
	if (!strcmp(kind, "vpc")) {
		k = K_VPC;
		err = parse_vpc(&p, obj, &u.v);
	} else if (!strcmp(kind, "subnet")) {
		k = K_SUBNET;
		err = parse_subnet(&p, obj, &u.s);
	} else if (!strcmp(kind, "endpoint")) {
		k = K_EP;
		err = parse_ep(&p, obj, &u.e);
	} else if (!strcmp(kind, "service")) {
		k = K_SVC;
		err = parse_svc(&p, obj, &u.sv);
	} else {
		seterr(why, whylen,
		       "changes[%zu]: kind \"%s\" is not vpc, subnet, "
		       "endpoint, service or node",
		       i, kind);
		return -EINVAL;
	}
	if (err)
		return err;
	if (k == K_SVC) {
		if (rev <= since) {
			*skipped = true;
		} else {
			wk->other = true;
			err = apply_svc(wk->w, put, &u.sv);
		}
		free(u.sv.backends);
		return err;
	}
	if ((k == K_SUBNET && !u.s.vpc) || (k == K_EP && !u.e.vpc)) {
		seterr(why, whylen, "%s: field \"vpc\" must be >= 1", where);
		return -EINVAL;
	}
	if (rev <= since) {
		/* Already held: a change is never applied twice. */
		*skipped = true;
		return 0;
	}
	return apply_one(wk, put, k, &u);
}

/* Whether an endpoint's interface is named by another endpoint of the same
 * node (the one rule between endpoints that the index does not keep). */
static bool ifname_taken(const struct xvpc_state *w,
			 const struct xvpc_state_ep *e)
{
	for (size_t i = 0; i < w->n_eps; i++) {
		const struct xvpc_state_ep *o = &w->eps[i];

		if (o->vpc && o->node_ip == e->node_ip &&
		    !strncmp(o->ifname, e->ifname, sizeof(o->ifname)) &&
		    (o->vpc != e->vpc || o->ip != e->ip))
			return true;
	}
	return false;
}

/*
 * An answer of endpoint changes only, on a validated state: deleting an
 * endpoint breaks no rule, so only the endpoints put are checked, by the
 * rules of lib/state.c on a state holding them and every other object of
 * the working state (their VPC, subnet, the service VIPs), plus the
 * interface names of their node. Before compact (positions hold).
 */
static int validate_quick(struct work *wk, __be32 node_ip, char *err,
			  size_t len)
{
	struct xvpc_state mini = *wk->w;
	struct xvpc_state_ep *e;
	size_t n = 0;
	int ret = 0;

	e = malloc((wk->n_puts + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < wk->n_puts; i++) {
		size_t pos = wk->puts[i], j;

		for (j = 0; j < i && wk->puts[j] != pos; j++)
			;
		if (j == i && wk->w->eps[pos].vpc)
			e[n++] = wk->w->eps[pos];
	}
	mini.eps = e;
	mini.n_eps = mini.cap_eps = n;
	/* Unchanged, and only checked among themselves. */
	mini.n_nodes = 0;
	ret = xvpc_state_validate(&mini, node_ip, err, len);
	for (size_t i = 0; !ret && i < n; i++) {
		char ip[XVPC_IP_STRLEN];

		if (!e[i].ifname[0] || !ifname_taken(wk->w, &e[i]))
			continue;
		snprintf(err, len,
			 "endpoint (vpc %u, %s): field \"ifname\": \"%s\" is "
			 "already used by another endpoint on the same node",
			 e[i].vpc, xvpc_fmt_ip(e[i].ip, ip), e[i].ifname);
		ret = -EINVAL;
	}
	free(e);
	return ret;
}

/* Validates the working state after the changes and compacts it. */
static int validate_work(struct ctrl_source *cs, struct work *wk, char *err,
			 size_t len)
{
	bool quick = !wk->other && cs->cur->validated &&
		     wk->n_puts <= CTRL_QUICK_MAX && cs->quick_left;
	int ret;

	if (quick) {
		ret = validate_quick(wk, cs->node_ip, err, len);
		compact(wk->w);
		wk->w->validated = !ret;
		cs->quick_left--;
		return ret;
	}
	compact(wk->w);
	ret = xvpc_state_validate(wk->w, cs->node_ip, err, len);
	if (!ret)
		cs->quick_left = CTRL_QUICK_EVERY;
	return ret;
}

/* Every change of arr applied to wk->w, in order. */
static int run_changes(struct work *wk, json_object *arr, size_t n, __u64 since,
		       __u64 upto, char *why, size_t whylen, size_t *applied)
{
	struct xvpc_state *w = wk->w;
	int err = 0;

	/* In place: endpoint changes only, with the source's own index of
	 * the endpoints (set by the caller). */
	if (!wk->in_place)
		err = idx_build(&wk->ix[K_VPC], w, K_VPC, w->n_vpcs, n)
			      ?: idx_build(&wk->ix[K_SUBNET], w, K_SUBNET,
					   w->n_subnets, n);
	if (!err && !wk->in_place && n > CTRL_SCAN_MAX)
		err = idx_build(&wk->ix[K_EP], w, K_EP, w->n_eps, n);
	for (size_t i = 0; !err && i < n; i++) {
		bool skipped;

		err = change_one(wk, json_object_array_get_idx(arr, i), i,
				 since, upto, why, whylen, &skipped);
		*applied += !err && !skipped;
	}
	for (int k = 0; k < 3 && !wk->in_place; k++)
		free(wk->ix[k].slot);
	return err;
}

/* After the changes of an answer were applied: say so, and hand the
 * endpoints deleted that the state did not hold to the agent. */
static void changes_done(struct ctrl_source *cs, struct work *wk, __u64 upto,
			 size_t applied, const struct xvpc_state *st)
{
	pr_info("revision %llu from %s: %zu changes applied (%zu VPCs, %zu "
		"subnets, %zu endpoints, %zu services)",
		(unsigned long long)upto, cur_url(cs), applied, st->n_vpcs,
		st->n_subnets, st->n_eps, st->n_svcs);
	if (wk->n_gone) {
		int err;

		pthread_mutex_lock(&cs->mu);
		err = gone_add(cs, wk->gone, wk->n_gone);
		pthread_mutex_unlock(&cs->mu);
		if (err)
			pr_warn("out of memory noting %zu deleted endpoints: "
				"their learned entries age out instead",
				wk->n_gone);
	}
}

/* Whether every change of arr is of an endpoint (malformed ones are not:
 * the copy path says what is wrong with them). */
static bool endpoints_only(json_object *arr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_object *k;

		if (!json_object_object_get_ex(
			    json_object_array_get_idx(arr, i), "kind", &k) ||
		    json_object_get_type(k) != json_type_string ||
		    strcmp(json_object_get_string(k), "endpoint"))
			return false;
	}
	return true;
}

/*
 * An answer of a few endpoint changes on a validated state (the common
 * case: a port created, moved or deleted): applied to the current state
 * itself, noting what each change overwrote, and validated by what it
 * changed (validate_quick); any error takes every change back. Then a copy
 * goes to the agent: one copy of the state per answer, and no other work
 * in proportion to its size: endpoints are found by an index kept from
 * answer to answer; deleted ones stay in the current state, marked, for a
 * while (CTRL_DEAD_*: the copies are compacted). The thread holds
 * mu while the current state is not the one the agent may copy (fetch
 * with force).
 */
static int apply_in_place(struct ctrl_source *cs, json_object *arr, size_t n,
			  __u64 upto, char *why, size_t whylen)
{
	struct xvpc_state *cur = cs->cur, *copy = NULL;
	struct work wk = {.w = cur, .in_place = true, .n_eps0 = cur->n_eps};
	char err_v[XVPC_STATE_ERR_LEN];
	size_t applied = 0;
	int err;

	/* Room for every change to be a new endpoint (half full at most);
	 * built again with room to spare for the next answers. */
	if (cs->cur_ix.slot && 2 * (cur->n_eps + n) > cs->cur_ix.mask + 1) {
		free(cs->cur_ix.slot);
		cs->cur_ix.slot = NULL;
	}
	if (!cs->cur_ix.slot &&
	    idx_build(&cs->cur_ix, cur, K_EP, cur->n_eps, cur->n_eps / 2 + n))
		return -ENOMEM;
	wk.ix[K_EP] = cs->cur_ix;
	pthread_mutex_lock(&cs->mu);
	err = run_changes(&wk, arr, n, cur->revision, upto, why, whylen,
			  &applied);
	if (!err) {
		err = validate_quick(&wk, cs->node_ip, err_v, sizeof(err_v));
		if (err)
			seterr(why, whylen,
			       "the state after them is invalid: %s", err_v);
	}
	cur->validated = true; /* it was, and is again after undo_all */
	if (!err) {
		copy = state_dup(cur);
		err = copy ? 0 : -ENOMEM;
	}
	if (err) {
		/* Positions the index has that undo_all takes back. */
		free(cs->cur_ix.slot);
		cs->cur_ix.slot = NULL;
		undo_all(&wk);
	} else {
		cs->cur_dead += wk.dead;
		if (cs->cur_dead) {
			compact(copy);
			cs->dead_answers++;
		}
		if ((cs->cur_dead > CTRL_DEAD_MIN &&
		     cs->cur_dead > cur->n_eps / 4) ||
		    cs->dead_answers > CTRL_DEAD_ANSWERS) {
			compact(cur);
			cs->cur_dead = 0;
			cs->dead_answers = 0;
			free(cs->cur_ix.slot);
			cs->cur_ix.slot = NULL;
		}
		cur->revision = copy->revision = upto;
		cs->quick_left--;
	}
	pthread_mutex_unlock(&cs->mu);
	free(wk.puts);
	free(wk.undo);
	if (!err) {
		changes_done(cs, &wk, upto, applied, copy);
		hand_over(cs, NULL, copy, false, applied);
	}
	free(wk.gone);
	return err;
}

/*
 * A change answer: a working copy of the current state gets every change,
 * then is validated as a whole; only then does it replace the current one.
 * Any error leaves everything as it was. (A few endpoint changes on a
 * validated state go in place instead: apply_in_place.)
 */
static int apply_changes(struct ctrl_source *cs, json_object *top, __u64 upto,
			 char *why, size_t whylen)
{
	__u64 since = cs->cur->revision;
	struct work wk = {0};
	json_object *arr;
	size_t n, applied = 0;
	char err_v[XVPC_STATE_ERR_LEN];
	struct pc p = {.why = why, .len = whylen, .where = "answer"};
	int err;

	arr = field(&p, top, "changes", json_type_array, true, &err);
	if (!arr)
		return err;
	if (upto < since) {
		seterr(why, whylen,
		       "answer revision %llu is older than the %llu asked "
		       "from, without a snapshot",
		       (unsigned long long)upto, (unsigned long long)since);
		return -EINVAL;
	}
	n = json_object_array_length(arr);
	if (!n) {
		/* Nothing for this node up to upto. */
		pthread_mutex_lock(&cs->mu);
		cs->cur->revision = upto;
		cs->st.revision = upto;
		pthread_mutex_unlock(&cs->mu);
		return 0;
	}
	if (cs->cur->validated && cs->quick_left && n <= CTRL_QUICK_MAX &&
	    endpoints_only(arr, n))
		return apply_in_place(cs, arr, n, upto, why, whylen);
	wk.w = state_dup(cs->cur);
	if (!wk.w)
		return -ENOMEM;
	err = run_changes(&wk, arr, n, since, upto, why, whylen, &applied);
	if (!err) {
		err = validate_work(cs, &wk, err_v, sizeof(err_v));
		wk.w->revision = upto;
		if (err)
			seterr(why, whylen,
			       "the state after them is invalid: %s", err_v);
	}
	free(wk.puts);
	if (err) {
		xvpc_state_free(wk.w);
		free(wk.gone);
		return err;
	}
	changes_done(cs, &wk, upto, applied, wk.w);
	free(wk.gone);
	return install(cs, wk.w, false, applied);
}

/* ---- snapshot and long-poll ------------------------------------------ */

/* A snapshot: the document as text (json) or already parsed (doc). */
static int take_snapshot(struct ctrl_source *cs, const char *json, size_t len,
			 json_object *doc, const char *reason, char *why,
			 size_t whylen)
{
	char err_v[XVPC_STATE_ERR_LEN];
	struct xvpc_state *st;
	int err;

	err = doc ? xvpc_state_from_json(doc, cs->node_ip, &st, err_v,
					 sizeof(err_v))
		  : xvpc_state_parse(json, len, cs->node_ip, &st, err_v,
				     sizeof(err_v));
	if (err) {
		seterr(why, whylen, "snapshot rejected: %s", err_v);
		return err;
	}
	pr_info("snapshot%s from %s at revision %llu: %zu VPCs, %zu subnets, "
		"%zu endpoints, %zu services",
		reason, cur_url(cs), (unsigned long long)st->revision,
		st->n_vpcs, st->n_subnets, st->n_eps, st->n_svcs);
	cs->want_snapshot = false;
	cs->quick_left = CTRL_QUICK_EVERY; /* st is validated as a whole */
	return install(cs, st, true, 0);
}

static int do_snapshot(struct ctrl_source *cs, char *why, size_t whylen)
{
	char path[CTRL_URL_LEN];
	long status = 0;
	int err;

	snprintf(path, sizeof(path), "/v1/nodes/%s/state", cs->node_esc);
	err = request(cs, path, NULL, CTRL_SNAPSHOT_S * 1000L, &status, why,
		      whylen);
	if (err)
		return err;
	if (status != 200)
		return http_failure(cs, "state", status, why, whylen);
	return take_snapshot(cs, cs->body.p ? cs->body.p : "", cs->body.n, NULL,
			     "", why, whylen);
}

/*
 * The body of a 200 answer to a long-poll: a snapshot or changes after
 * the revision held. Nothing of a bad answer is applied.
 */
static int take_answer(struct ctrl_source *cs, const char *body, size_t n,
		       char *why, size_t whylen)
{
	struct pc p = {.why = why, .len = whylen, .where = "answer"};
	__u64 since = cs->cur ? cs->cur->revision : 0, upto;
	json_tokener *tok = cs->tok;
	json_object *top = NULL, *snap;
	int err;

	json_tokener_reset(tok);
	if (n)
		top = json_tokener_parse_ex(tok, body, n);
	if (!top || json_tokener_get_parse_end(tok) != n ||
	    json_object_get_type(top) != json_type_object) {
		seterr(why, whylen, "answer is not a JSON object");
		err = -EINVAL;
		goto out;
	}
	err = field_u64(&p, top, "revision", UINT64_MAX, &upto);
	if (err)
		goto out;
	snap = field(&p, top, "snapshot", json_type_boolean, true, &err);
	if (!snap)
		goto out;
	if (json_object_get_boolean(snap)) {
		char reason[96];

		/* The state document plus "snapshot": the state's reader
		 * takes the document without it (parsed once, strictly). */
		json_object_object_del(top, "snapshot");
		snprintf(reason, sizeof(reason),
			 " (revision %llu too old for it, or this node's VPCs "
			 "changed)",
			 (unsigned long long)since);
		err = take_snapshot(cs, NULL, 0, top, reason, why, whylen);
		goto out;
	}
	err = only_fields(&p, top, answer_fields);
	if (!err && !cs->cur) {
		seterr(why, whylen, "changes before any snapshot");
		err = -EINVAL;
	}
	if (!err)
		err = apply_changes(cs, top, upto, why, whylen);
	if (err == -EINVAL)
		/* Start over from a snapshot rather than build on an
		 * answer we could not use. */
		cs->want_snapshot = true;
out:
	json_object_put(top);
	return err;
}

static int do_poll(struct ctrl_source *cs, char *why, size_t whylen)
{
	char path[CTRL_URL_LEN];
	long status = 0;
	int err;

	snprintf(path, sizeof(path), "/v1/nodes/%s/state?since=%llu&wait=%u",
		 cs->node_esc, (unsigned long long)cs->cur->revision,
		 cs->wait_s);
	err = request(cs, path, NULL,
		      (cs->wait_s + CTRL_SLACK_S) * 1000L + cs->connect_ms,
		      &status, why, whylen);
	if (err)
		return err;
	if (status != 200)
		return http_failure(cs, "state", status, why, whylen);
	cs->hint_ms = cs->hdr_hint;
	return take_answer(cs, cs->body.p, cs->body.n, why, whylen);
}

/* ---- the thread ------------------------------------------------------ */

static void sleep_ms(struct ctrl_source *cs, unsigned int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&cs->mu);
	while (!cs->stop &&
	       pthread_cond_timedwait(&cs->cv, &cs->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&cs->mu);
}

static void on_failure(struct ctrl_source *cs, int err, const char *why,
		       unsigned int *fails)
{
	int from = cs->st.url, to = (from + 1) % cs->n_urls;
	unsigned int delay = 0;

	(*fails)++;
	if (*fails % cs->n_urls == 0) {
		unsigned int round = *fails / cs->n_urls - 1;

		delay = CTRL_RETRY_MS << (round < 5 ? round : 5);
		if (delay > cs->retry_max_ms)
			delay = cs->retry_max_ms;
	}
	pthread_mutex_lock(&cs->mu);
	cs->st.errors++;
	if (err == -EINVAL)
		cs->st.rejected++;
	cs->st.connected = false;
	if (to != from)
		cs->st.failovers++;
	cs->st.url = to;
	pthread_mutex_unlock(&cs->mu);
	if (err == -EINVAL)
		pr_err("controller %s: answer rejected, nothing of it applied: "
		       "%s",
		       cs->urls[from], why);
	else
		pr_warn("controller %s: %s", cs->urls[from], why);
	if (to != from)
		pr_warn("failover to %s (resuming from revision %llu)",
			cs->urls[to],
			(unsigned long long)(cs->cur ? cs->cur->revision : 0));
	if (delay) {
		pr_info("no controller answered: retrying in %u ms", delay);
		sleep_ms(cs, delay);
	}
}

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/*
 * After an answer that carried changes: spend a token; with none left,
 * wait for the next one before polling again. The changes made meanwhile
 * wait in the controller's feed and come in the next answer, all at once.
 */
static void pace(struct ctrl_source *cs)
{
	__u64 now = mono_ms();
	unsigned int wait, every = cs->batch_ms;

	/* A longer interval when the controller asks for it. */
	if (cs->hint_ms > every)
		every = cs->hint_ms;
	pthread_mutex_lock(&cs->mu);
	cs->st.hint_ms = cs->hint_ms;
	pthread_mutex_unlock(&cs->mu);
	cs->tokens += (double)(now - cs->tokens_ms) / every;
	if (cs->tokens > AGENT_CTRL_BURST)
		cs->tokens = AGENT_CTRL_BURST;
	cs->tokens_ms = now;
	cs->tokens -= 1;
	if (cs->tokens >= 1)
		return;
	/* Until a whole token is back for the next poll. */
	wait = (unsigned int)((1 - cs->tokens) * every) + 1;
	pthread_mutex_lock(&cs->mu);
	cs->st.paced++;
	pthread_mutex_unlock(&cs->mu);
	sleep_ms(cs, wait);
}

static void *ctrl_main(void *arg)
{
	struct ctrl_source *cs = arg;
	char why[CTRL_WHY_LEN];
	unsigned int fails = 0;

	xvpc_use_c_locale();

	while (!stopping(cs)) {
		bool was_connected;
		int err;

		bool polled = false;
		__u64 changes = cs->st.changes; /* written by this thread */

		why[0] = '\0';
		if (!cs->registered) {
			err = do_register(cs, why, sizeof(why));
		} else if (!cs->cur || cs->want_snapshot) {
			err = do_snapshot(cs, why, sizeof(why));
		} else {
			err = do_poll(cs, why, sizeof(why));
			polled = true;
		}
		if (err == -EINTR)
			break;
		if (err) {
			on_failure(cs, err, why, &fails);
			continue;
		}
		fails = 0;
		if (polled && cs->batch_ms && cs->st.changes != changes)
			pace(cs);
		if (!cs->cur)
			continue; /* registered: the snapshot comes next */
		pthread_mutex_lock(&cs->mu);
		was_connected = cs->st.connected;
		cs->st.connected = true;
		pthread_mutex_unlock(&cs->mu);
		if (!was_connected)
			pr_info("connected to %s at revision %llu", cur_url(cs),
				(unsigned long long)cs->cur->revision);
	}
	return NULL;
}

/* ---- source ops ------------------------------------------------------ */

static int ctrl_fd(struct agent_source *s)
{
	return ((struct ctrl_source *)s)->efd;
}

static int ctrl_fetch(struct agent_source *s, bool force,
		      struct xvpc_state **out)
{
	struct ctrl_source *cs = (struct ctrl_source *)s;
	struct xvpc_state *st;
	__u64 v;

	if (read(cs->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn("reading the state source's eventfd: %s",
			strerror(errno));
	pthread_mutex_lock(&cs->mu);
	st = cs->pending;
	cs->pending = NULL;
	if (!st && force && cs->cur) {
		st = state_dup(cs->cur);
		if (!st) {
			pthread_mutex_unlock(&cs->mu);
			return -ENOMEM;
		}
		if (cs->cur_dead)
			compact(st);
	}
	pthread_mutex_unlock(&cs->mu);
	if (!st)
		return 0;
	*out = st;
	return 1;
}

static void ctrl_destroy(struct agent_source *s)
{
	struct ctrl_source *cs = (struct ctrl_source *)s;

	if (cs->started) {
		pthread_mutex_lock(&cs->mu);
		__atomic_store_n(&cs->stop, true, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&cs->cv);
		pthread_mutex_unlock(&cs->mu);
		curl_multi_wakeup(cs->multi);
		pthread_join(cs->thread, NULL);
	}
	if (cs->multi)
		curl_multi_cleanup(cs->multi);
	if (cs->node_esc)
		curl_free(cs->node_esc);
	if (cs->curl)
		curl_easy_cleanup(cs->curl);
	curl_slist_free_all(cs->hdrs);
	for (int i = 0; i < cs->n_urls; i++)
		free(cs->urls[i]);
	free(cs->urls);
	http_body_free(&cs->body);
	xvpc_state_free(cs->cur);
	xvpc_state_free(cs->pending);
	free(cs->cur_ix.slot);
	if (cs->tok)
		json_tokener_free(cs->tok);
	free(cs->gone);
	if (cs->efd >= 0)
		close(cs->efd);
	pthread_cond_destroy(&cs->cv);
	pthread_mutex_destroy(&cs->mu);
	free(cs);
}

static size_t ctrl_take_gone(struct agent_source *s, struct xvpc_ep_key **out)
{
	struct ctrl_source *cs = (struct ctrl_source *)s;
	size_t n;

	pthread_mutex_lock(&cs->mu);
	*out = cs->gone;
	n = cs->n_gone;
	cs->gone = NULL;
	cs->n_gone = 0;
	pthread_mutex_unlock(&cs->mu);
	return n;
}

static const struct agent_source_ops ctrl_ops = {
	.name = "controller",
	.fd = ctrl_fd,
	.fetch = ctrl_fetch,
	.take_gone = ctrl_take_gone,
	.destroy = ctrl_destroy,
};

/* libcurl's header callback: notes X-Xvpc-Batch-Ms. */
static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	static const char name[] = "x-xvpc-batch-ms:";
	struct ctrl_source *cs = arg;
	size_t len = size * n;
	unsigned long v;
	char val[16], *end;

	if (len <= sizeof(name) - 1 || strncasecmp(buf, name, sizeof(name) - 1))
		return len;
	snprintf(val, sizeof(val), "%.*s", (int)(len - (sizeof(name) - 1)),
		 buf + sizeof(name) - 1);
	v = strtoul(val, &end, 10);
	if (end != val && (*end == '\r' || *end == '\n' || !*end))
		cs->hdr_hint =
			v < AGENT_CTRL_HINT_MAX_MS ? v : AGENT_CTRL_HINT_MAX_MS;
	return len;
}

static int setup_curl(struct ctrl_source *cs, const char *token)
{
	char auth[1024];

	cs->curl = curl_easy_init();
	cs->multi = curl_multi_init();
	if (!cs->curl || !cs->multi)
		return -ENOMEM;
	if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			     token) >= sizeof(auth))
		return -ENAMETOOLONG;
	cs->hdrs = curl_slist_append(NULL, auth);
	explicit_bzero(auth, sizeof(auth));
	if (!cs->hdrs)
		return -ENOMEM;
	if (!curl_slist_append(cs->hdrs, "Content-Type: application/json"))
		return -ENOMEM;
	cs->node_esc = curl_easy_escape(cs->curl, cs->node, 0);
	if (!cs->node_esc)
		return -ENOMEM;
	curl_easy_setopt(cs->curl, CURLOPT_HTTPHEADER, cs->hdrs);
	curl_easy_setopt(cs->curl, CURLOPT_WRITEFUNCTION, http_body_write);
	curl_easy_setopt(cs->curl, CURLOPT_WRITEDATA, &cs->body);
	curl_easy_setopt(cs->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(cs->curl, CURLOPT_HEADERDATA, cs);
	curl_easy_setopt(cs->curl, CURLOPT_ERRORBUFFER, cs->curl_err);
	curl_easy_setopt(cs->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cs->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(cs->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)cs->connect_ms);
	/* A controller host that vanishes without a reset is noticed while
	 * a long-poll waits, not only when it times out. */
	curl_easy_setopt(cs->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(cs->curl, CURLOPT_TCP_KEEPIDLE, 2L);
	curl_easy_setopt(cs->curl, CURLOPT_TCP_KEEPINTVL, 1L);
	curl_easy_setopt(cs->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	return 0;
}

static int copy_urls(struct ctrl_source *cs, const char *const *urls, int n)
{
	cs->urls = calloc(n, sizeof(*cs->urls));
	if (!cs->urls)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(urls[i]);

		cs->urls[i] = strdup(urls[i]);
		if (!cs->urls[i])
			return -ENOMEM;
		cs->n_urls++;
		while (len && cs->urls[i][len - 1] == '/')
			cs->urls[i][--len] = '\0';
	}
	return 0;
}

/* online: with its thread and HTTP client; else fed answers. */
static int ctrl_new(const struct agent_ctrl_opts *o, bool online,
		    struct agent_source **out)
{
	static const char *const fed_url[] = {"(fed answers)"};
	struct ctrl_source *cs;
	int err;

	if ((online && (!o->n_urls || !o->token || !*o->token)) ||
	    !o->node_name || !*o->node_name ||
	    strlen(o->node_name) >= sizeof(cs->node))
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return -ENOMEM;
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	cs->s.ops = &ctrl_ops;
	cs->efd = -1;
	cs->body.max = CTRL_BODY_MAX;
	pthread_mutex_init(&cs->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&cs->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	strcpy(cs->node, o->node_name);
	cs->node_ip = o->node_ip;
	cs->wait_s = o->wait_s ? o->wait_s : CTRL_WAIT_S;
	cs->connect_ms =
		o->connect_timeout_ms ? o->connect_timeout_ms : CTRL_CONNECT_MS;
	cs->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : CTRL_RETRY_MAX;
	cs->batch_ms = o->batch_ms;
	cs->tokens = AGENT_CTRL_BURST;
	cs->tokens_ms = mono_ms();
	cs->registered = o->no_register || !online;
	err = online || o->n_urls ? copy_urls(cs, o->urls, o->n_urls)
				  : copy_urls(cs, fed_url, 1);
	if (!err && online)
		err = setup_curl(cs, o->token);
	if (!err) {
		cs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (cs->efd < 0)
			err = -errno;
	}
	if (!err) {
		/* Strict like every state document (a snapshot is one). */
		cs->tok = json_tokener_new();
		if (cs->tok)
			json_tokener_set_flags(cs->tok, JSON_TOKENER_STRICT);
		else
			err = -ENOMEM;
	}
	if (!err && online) {
		err = -pthread_create(&cs->thread, NULL, ctrl_main, cs);
		cs->started = !err;
	}
	if (err) {
		ctrl_destroy(&cs->s);
		return err;
	}
	*out = &cs->s;
	return 0;
}

int agent_source_ctrl_new(const struct agent_ctrl_opts *o,
			  struct agent_source **out)
{
	return ctrl_new(o, true, out);
}

int agent_source_ctrl_new_fed(const struct agent_ctrl_opts *o,
			      struct agent_source **out)
{
	return ctrl_new(o, false, out);
}

int agent_source_ctrl_feed(struct agent_source *s, const char *body, size_t len,
			   char *why, size_t whylen)
{
	struct ctrl_source *cs = (struct ctrl_source *)s;

	if (cs->started)
		return -EBUSY;
	why[0] = '\0';
	return take_answer(cs, body, len, why, whylen);
}

void agent_source_ctrl_stats(struct agent_source *s,
			     struct agent_ctrl_stats *out)
{
	struct ctrl_source *cs = (struct ctrl_source *)s;

	pthread_mutex_lock(&cs->mu);
	*out = cs->st;
	pthread_mutex_unlock(&cs->mu);
}
