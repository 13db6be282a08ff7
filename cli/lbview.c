// SPDX-License-Identifier: GPL-2.0-only
/*
 * Load balancer views (cli/lbview.h): services with their table shares,
 * and the explanation of one flow's backend. Read-only, except
 * lbv_guard_undo(), which takes back what a test run wrote.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <json-c/json.h>

#include "datapath.h"
#include "lbview.h"
#include "netutil.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP   ? "tcp"
	       : proto == IPPROTO_UDP ? "udp"
				      : "?";
}

/* "10.0.100.10:80/tcp" */
static char *svc_name(const struct xvpc_lb_svc_key *k, char *buf, size_t len)
{
	char ip[XVPC_IP_STRLEN];

	snprintf(buf, len, "%s:%u/%s", xvpc_fmt_ip(k->vip, ip), ntohs(k->port),
		 proto_name(k->proto));
	return buf;
}

static char *be_name(const struct xvpc_lb_backend *b, char *buf, size_t len)
{
	char ip[XVPC_IP_STRLEN];

	snprintf(buf, len, "%s:%u", xvpc_fmt_ip(b->ip, ip), ntohs(b->port));
	return buf;
}

static int read_lb_config(struct xvpc_dp *dp, struct xvpc_lb_config *cfg)
{
	__u32 zero = 0;

	memset(cfg, 0, sizeof(*cfg));
	return bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_CONFIG), &zero,
				   cfg)
		       ? -errno
		       : 0;
}

/* As lb_timeout() in bpf/lb.h. */
static __u64 ct_timeout(const struct xvpc_lb_config *cfg,
			const struct xvpc_lb_ct *ct, __u8 proto)
{
	if (ct->state == XVPC_LB_CT_CLOSING)
		return cfg->closing_timeout_ns ?: XVPC_LB_CLOSING_TIMEOUT_NS;
	if (proto == IPPROTO_TCP)
		return cfg->tcp_timeout_ns ?: XVPC_LB_TCP_TIMEOUT_NS;
	return cfg->udp_timeout_ns ?: XVPC_LB_UDP_TIMEOUT_NS;
}

static __u64 ct_idle(const struct xvpc_lb_ct *ct, __u64 now)
{
	return (__s64)(now - ct->last_ns) > 0 ? now - ct->last_ns : 0;
}

static bool ct_alive(const struct xvpc_lb_config *cfg,
		     const struct xvpc_lb_ct *ct, __u8 proto, __u64 now)
{
	return ct_idle(ct, now) <= ct_timeout(cfg, ct, proto);
}

/* ---- services and their tables ---- */

struct be_share {
	struct xvpc_lb_backend be;
	__u32 entries;
	__u32 flows;
};

struct svc_view {
	struct xvpc_lb_svc_key key;
	struct xvpc_lb_svc svc;
	struct be_share *bes;
	__u32 n_bes, flows;
};

static int be_cmp(const void *a, const void *b)
{
	const struct be_share *x = a, *y = b;
	__u32 xi = ntohl(x->be.ip), yi = ntohl(y->be.ip);

	if (xi != yi)
		return xi < yi ? -1 : 1;
	return (int)ntohs(x->be.port) - (int)ntohs(y->be.port);
}

static int svc_cmp(const void *a, const void *b)
{
	const struct svc_view *x = a, *y = b;

	if (x->key.vpc_id != y->key.vpc_id)
		return x->key.vpc_id < y->key.vpc_id ? -1 : 1;
	if (x->key.vip != y->key.vip)
		return ntohl(x->key.vip) < ntohl(y->key.vip) ? -1 : 1;
	if (x->key.port != y->key.port)
		return ntohs(x->key.port) < ntohs(y->key.port) ? -1 : 1;
	return (int)x->key.proto - (int)y->key.proto;
}

static struct be_share *find_be(struct svc_view *v,
				const struct xvpc_lb_backend *be)
{
	for (__u32 i = 0; i < v->n_bes; i++)
		if (v->bes[i].be.ip == be->ip && v->bes[i].be.port == be->port)
			return &v->bes[i];
	return NULL;
}

/* Counts the entries of each backend in the service's inner table. */
static int read_table(struct xvpc_dp *dp, struct svc_view *v)
{
	__u32 slot = v->svc.slot, id, cap = 0;
	struct xvpc_lb_backend e;
	int fd, err = 0;

	if (!v->svc.m ||
	    bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_TABLES), &slot,
				&id))
		return 0; /* no table: a service without backends */
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (__u32 k = 0; k < v->svc.m; k++) {
		struct be_share *s;

		if (bpf_map_lookup_elem(fd, &k, &e) || !e.ip)
			continue;
		s = find_be(v, &e);
		if (!s) {
			if (v->n_bes == cap) {
				void *p = realloc(v->bes,
						  (cap = cap ? cap * 2 : 8) *
							  sizeof(*s));

				if (!p) {
					err = -ENOMEM;
					break;
				}
				v->bes = p;
			}
			s = &v->bes[v->n_bes++];
			*s = (struct be_share){.be = e};
		}
		s->entries++;
	}
	close(fd);
	qsort(v->bes, v->n_bes, sizeof(*v->bes), be_cmp);
	return err;
}

/* Live forward conntrack entries per service slot and backend. */
static void count_flows(struct xvpc_dp *dp, struct svc_view *vs, size_t n)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT);
	struct xvpc_lb_ct_key key, next, *prev = NULL;
	struct svc_view *by_slot[XVPC_LB_MAX_SERVICES] = {0}, *v;
	struct xvpc_lb_config cfg;
	__u64 now = mono_ns();
	struct xvpc_lb_ct ct;
	struct be_share *s;

	for (size_t i = 0; i < n; i++)
		if (vs[i].svc.slot < XVPC_LB_MAX_SERVICES)
			by_slot[vs[i].svc.slot] = &vs[i];
	read_lb_config(dp, &cfg);
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &ct) ||
		    ct.dir != XVPC_LB_CT_FWD ||
		    ct.slot >= XVPC_LB_MAX_SERVICES ||
		    !ct_alive(&cfg, &ct, key.proto, now))
			continue;
		/* The slot, and the key too: a slot may have been reused. */
		v = by_slot[ct.slot];
		if (!v || v->key.vpc_id != key.vpc_id ||
		    v->key.vip != key.dst || v->key.port != key.dport ||
		    v->key.proto != key.proto)
			continue;
		v->flows++;
		s = find_be(v, &ct.nat);
		if (s)
			s->flows++;
	}
}

static int read_services(struct xvpc_dp *dp, struct svc_view **out, size_t *n)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_SERVICES), err = 0;
	struct xvpc_lb_svc_key key, next, *prev = NULL;
	struct svc_view *vs;
	size_t cnt = 0;

	vs = calloc(XVPC_LB_MAX_SERVICES, sizeof(*vs));
	if (!vs)
		return -ENOMEM;
	while (cnt < XVPC_LB_MAX_SERVICES &&
	       !bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &vs[cnt].svc))
			continue; /* deleted meanwhile */
		vs[cnt].key = key;
		err = read_table(dp, &vs[cnt++]);
		if (err)
			break;
	}
	if (!err)
		count_flows(dp, vs, cnt);
	qsort(vs, cnt, sizeof(*vs), svc_cmp);
	*out = vs;
	*n = cnt;
	return err;
}

static struct json_object *jstr_ip(__be32 ip)
{
	char buf[XVPC_IP_STRLEN];

	return json_object_new_string(xvpc_fmt_ip(ip, buf));
}

static struct json_object *svc_json(const struct svc_view *v)
{
	struct json_object *o = json_object_new_object(),
			   *t = json_object_new_array();
	bool pub = v->key.vpc_id == XVPC_LB_PUBLIC;

	json_object_object_add(o, "vpc", json_object_new_int64(v->key.vpc_id));
	json_object_object_add(o, "public", json_object_new_boolean(pub));
	json_object_object_add(o, "backend_vpc",
			       json_object_new_int64(pub ? v->svc.backend_vpc
							 : v->key.vpc_id));
	json_object_object_add(o, "vip", jstr_ip(v->key.vip));
	json_object_object_add(o, "port",
			       json_object_new_int(ntohs(v->key.port)));
	json_object_object_add(
		o, "proto", json_object_new_string(proto_name(v->key.proto)));
	json_object_object_add(o, "slot", json_object_new_int64(v->svc.slot));
	json_object_object_add(o, "m", json_object_new_int64(v->svc.m));
	json_object_object_add(o, "backends",
			       json_object_new_int64(v->svc.backends));
	json_object_object_add(o, "flows", json_object_new_int64(v->flows));
	for (__u32 i = 0; i < v->n_bes; i++) {
		const struct be_share *s = &v->bes[i];
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "ip", jstr_ip(s->be.ip));
		json_object_object_add(b, "port",
				       json_object_new_int(ntohs(s->be.port)));
		json_object_object_add(b, "entries",
				       json_object_new_int64(s->entries));
		json_object_object_add(
			b, "share",
			json_object_new_double(
				v->svc.m ? s->entries * 100.0 / v->svc.m : 0));
		json_object_object_add(b, "flows",
				       json_object_new_int64(s->flows));
		json_object_array_add(t, b);
	}
	json_object_object_add(o, "table", t);
	return o;
}

int lbv_services_json(struct xvpc_dp *dp, struct json_object **out)
{
	struct json_object *top, *arr;
	struct svc_view *vs = NULL;
	size_t n = 0;
	int err;

	err = read_services(dp, &vs, &n);
	if (!err) {
		top = json_object_new_object();
		arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, svc_json(&vs[i]));
		json_object_object_add(top, "services", arr);
		*out = top;
	}
	for (size_t i = 0; i < n; i++)
		free(vs[i].bes);
	free(vs);
	return err;
}

static __s64 jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v)
						   : 0;
}

static const char *jtext(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v)
						   : "";
}

void lbv_services_print(FILE *f, struct json_object *top)
{
	struct json_object *arr, *t, *s, *b, *v;
	size_t n = 0;
	char name[48], vpc[24];

	if (json_object_object_get_ex(top, "services", &arr))
		n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		s = json_object_array_get_idx(arr, i);
		json_object_object_get_ex(s, "public", &v);
		if (json_object_get_boolean(v))
			snprintf(vpc, sizeof(vpc), "public->%lld",
				 (long long)jint(s, "backend_vpc"));
		else
			snprintf(vpc, sizeof(vpc), "%lld",
				 (long long)jint(s, "vpc"));
		snprintf(name, sizeof(name), "%s:%lld/%s", jtext(s, "vip"),
			 (long long)jint(s, "port"), jtext(s, "proto"));
		fprintf(f, "%s%-24s %-12s %6s %7s %9s %8s\n", i ? "\n" : "",
			"SERVICE", "VPC", "SLOT", "M", "BACKENDS", "FLOWS");
		fprintf(f, "%-24s %-12s %6lld %7lld %9lld %8lld\n", name, vpc,
			(long long)jint(s, "slot"), (long long)jint(s, "m"),
			(long long)jint(s, "backends"),
			(long long)jint(s, "flows"));
		json_object_object_get_ex(s, "table", &t);
		if (!json_object_array_length(t)) {
			fprintf(f, "  (no table: new flows are dropped, "
				   "lb_no_backend)\n");
			continue;
		}
		fprintf(f, "  %-22s %7s %7s %8s\n", "BACKEND", "ENTRIES",
			"SHARE", "FLOWS");
		for (size_t j = 0; j < json_object_array_length(t); j++) {
			b = json_object_array_get_idx(t, j);
			json_object_object_get_ex(b, "share", &v);
			snprintf(name, sizeof(name), "%s:%lld", jtext(b, "ip"),
				 (long long)jint(b, "port"));
			fprintf(f, "  %-22s %7lld %6.1f%% %8lld\n", name,
				(long long)jint(b, "entries"),
				json_object_get_double(v),
				(long long)jint(b, "flows"));
		}
	}
	fprintf(f, "(%zu services)\n", n);
}

/* ---- one flow ---- */

static const char *state_name(__u8 state)
{
	return state == XVPC_LB_CT_OPEN	     ? "open"
	       : state == XVPC_LB_CT_CLOSING ? "closing"
					     : "?";
}

static int lookup_ct(struct xvpc_dp *dp, const struct xvpc_lb_ct_key *k,
		     struct xvpc_lb_ct *ct)
{
	return bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_CT), k, ct)
		       ? -errno
		       : 0;
}

/* lb_forward_of(): the forward entry a reverse entry belongs to. */
static bool forward_of_alive(struct xvpc_dp *dp,
			     const struct xvpc_lb_config *cfg,
			     const struct xvpc_lb_ct_key *p,
			     const struct xvpc_lb_ct *rev, __u64 now)
{
	struct xvpc_lb_ct_key k = {.vpc_id = p->vpc_id,
				   .src = p->dst,
				   .dst = rev->nat.ip,
				   .sport = p->dport,
				   .dport = rev->nat.port,
				   .proto = p->proto};
	struct xvpc_lb_ct fwd;

	return !lookup_ct(dp, &k, &fwd) && fwd.dir == XVPC_LB_CT_FWD &&
	       fwd.nat.ip == p->src && fwd.nat.port == p->sport &&
	       ct_alive(cfg, &fwd, p->proto, now);
}

/* The entry the datapath would use for a forward packet (lb_forward_ok). */
static bool forward_usable(const struct xvpc_lb_config *cfg,
			   const struct lbv_explain *e, __u8 proto,
			   __u8 tcp_flags, __u64 now)
{
	if (!ct_alive(cfg, &e->ct, proto, now))
		return false;
	return !(e->ct.state == XVPC_LB_CT_CLOSING &&
		 (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN);
}

static void say_ct(struct lbv_explain *e, const char *what)
{
	char be[32];

	snprintf(e->text, sizeof(e->text),
		 "%s: conntrack entry (created %.1f s ago, state %s, idle "
		 "%.1f s) -> %s",
		 what, e->age_s, state_name(e->ct.state), e->idle_s,
		 be_name(&e->ct.nat, be, sizeof(be)));
}

/* Maglev: the flow's hash picks an entry of the service's table. */
static int pick(struct xvpc_dp *dp, const struct xvpc_lb_ct_key *k,
		struct lbv_explain *e, const char *why)
{
	char be[32], svc[48];
	__u32 slot = e->svc.slot, id;
	int fd;

	svc_name(&e->svc_key, svc, sizeof(svc));
	e->kind = LBV_NO_BACKEND;
	snprintf(e->text, sizeof(e->text),
		 "service %s has no backends: dropped (lb_no_backend)", svc);
	if (!e->svc.backends || !e->svc.m)
		return 0;
	e->hash =
		xvpc_lb_flow_hash(k->src, k->dst, k->sport, k->dport, k->proto);
	e->entry = e->hash % e->svc.m;
	if (bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_TABLES), &slot,
				&id))
		return 0;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	if (bpf_map_lookup_elem(fd, &e->entry, &e->be) || !e->be.ip) {
		close(fd);
		return 0;
	}
	close(fd);
	e->kind = LBV_MAGLEV;
	snprintf(e->text, sizeof(e->text),
		 "%s%sMaglev: hash 0x%08x %% m %u = entry %u -> backend %s "
		 "(service %s)",
		 why ? why : "", why ? "; " : "", e->hash, e->svc.m, e->entry,
		 be_name(&e->be, be, sizeof(be)), svc);
	return 0;
}

static bool find_service(struct xvpc_dp *dp, const struct xvpc_lb_ct_key *k,
			 struct lbv_explain *e)
{
	e->svc_key = (struct xvpc_lb_svc_key){.vpc_id = k->vpc_id,
					      .vip = k->dst,
					      .port = k->dport,
					      .proto = k->proto};
	e->has_svc = !bpf_map_lookup_elem(
		xvpc_dp_map_fd(dp, XVPC_M_LB_SERVICES), &e->svc_key, &e->svc);
	return e->has_svc;
}

static void not_a_service(struct lbv_explain *e, const char *where)
{
	char svc[48];

	e->kind = LBV_NONE;
	snprintf(e->text, sizeof(e->text),
		 "not load-balanced: no %sservice %s in vpc %u", where,
		 svc_name(&e->svc_key, svc, sizeof(svc)), e->svc_key.vpc_id);
}

/* A forward entry's verdict; false: none usable, balance anew. */
static bool use_forward(struct xvpc_dp *dp, const struct xvpc_lb_config *cfg,
			const struct xvpc_lb_ct_key *k, __u8 tcp_flags,
			__u64 now, struct lbv_explain *e, char *why, size_t len)
{
	if (!e->ct_found || e->ct.dir != XVPC_LB_CT_FWD)
		return false;
	if (forward_usable(cfg, e, k->proto, tcp_flags, now)) {
		find_service(dp, k, e); /* to name it; the entry decides */
		e->kind = LBV_CONNTRACK;
		e->be = e->ct.nat;
		say_ct(e, "established flow");
		return true;
	}
	e->ct_expired = true;
	snprintf(why, len,
		 "conntrack entry %s (idle %.1f s, state %s): a new flow",
		 ct_alive(cfg, &e->ct, k->proto, now) ? "closed and a SYN"
						      : "expired",
		 e->idle_s, state_name(e->ct.state));
	return false;
}

static int explain_public(struct xvpc_dp *dp, const struct xvpc_lb_config *cfg,
			  const struct xvpc_lb_ct_key *k, __u8 tcp_flags,
			  __u64 now, struct lbv_explain *e)
{
	char why[128] = "";

	if (!cfg->public_services) {
		e->kind = LBV_OFF;
		snprintf(e->text, sizeof(e->text),
			 "no public service on this node: not load-balanced");
		return 0;
	}
	if (!find_service(dp, k, e)) {
		not_a_service(e, "public ");
		return 0;
	}
	if (use_forward(dp, cfg, k, tcp_flags, now, e, why, sizeof(why)))
		return 0;
	return pick(dp, k, e, why[0] ? why : NULL);
}

static int explain_ep(struct xvpc_dp *dp, const struct xvpc_lb_config *cfg,
		      const struct xvpc_lb_ct_key *k, __u8 tcp_flags, __u64 now,
		      struct lbv_explain *e, bool decap)
{
	char why[128] = "", be[32];

	if (!decap &&
	    use_forward(dp, cfg, k, tcp_flags, now, e, why, sizeof(why)))
		return 0;
	if (e->ct_found && e->ct.dir == XVPC_LB_CT_REV) {
		if (ct_alive(cfg, &e->ct, k->proto, now) ||
		    forward_of_alive(dp, cfg, k, &e->ct, now)) {
			e->kind = LBV_REPLY;
			e->be = e->ct.nat;
			snprintf(e->text, sizeof(e->text),
				 "reply of a balanced flow: conntrack "
				 "reverse entry (created %.1f s ago, state "
				 "%s) -> source rewritten to %s%s",
				 e->age_s, state_name(e->ct.state),
				 be_name(&e->ct.nat, be, sizeof(be)),
				 e->ct.flags & XVPC_LB_CT_F_NS
					 ? ", out of the underlay (north-south)"
					 : "");
			return 0;
		}
		e->ct_expired = true;
	}
	if (decap) {
		e->kind = LBV_NONE;
		snprintf(e->text, sizeof(e->text),
			 "not load-balanced: no live reverse conntrack entry");
		return 0;
	}
	if (!find_service(dp, k, e)) {
		not_a_service(e, "");
		return 0;
	}
	return pick(dp, k, e, why[0] ? why : NULL);
}

int lbv_explain(struct xvpc_dp *dp, enum lbv_where where,
		const struct xvpc_lb_ct_key *key, __u8 tcp_flags,
		struct lbv_explain *e)
{
	struct xvpc_lb_ct_key k = *key;
	struct xvpc_lb_config cfg;
	__u64 now = mono_ns();
	int err;

	memset(e, 0, sizeof(*e));
	memset(k.pad, 0, sizeof(k.pad));
	if (k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP) {
		snprintf(e->text, sizeof(e->text),
			 "not load-balanced: only TCP and UDP are");
		return 0;
	}
	err = read_lb_config(dp, &cfg);
	if (err)
		return err;
	if (!cfg.services) {
		e->kind = LBV_OFF;
		snprintf(e->text, sizeof(e->text),
			 "no service on this node: the load balancer is off");
		return 0;
	}
	e->ct_found = !lookup_ct(dp, &k, &e->ct);
	if (e->ct_found) {
		e->age_s = e->ct.created_ns < now
				   ? (now - e->ct.created_ns) / 1e9
				   : 0;
		e->idle_s = ct_idle(&e->ct, now) / 1e9;
	}
	if (where == LBV_PUBLIC)
		return explain_public(dp, &cfg, &k, tcp_flags, now, e);
	return explain_ep(dp, &cfg, &k, tcp_flags, now, e, where == LBV_DECAP);
}

static const char *kind_name(enum lbv_kind k)
{
	static const char *const names[] = {
		[LBV_NONE] = "none",	       [LBV_OFF] = "off",
		[LBV_CONNTRACK] = "conntrack", [LBV_MAGLEV] = "maglev",
		[LBV_REPLY] = "reply",	       [LBV_NO_BACKEND] = "no_backend",
	};

	return k <= LBV_NO_BACKEND ? names[k] : "?";
}

struct json_object *lbv_explain_json(const struct lbv_explain *e)
{
	struct json_object *o = json_object_new_object();
	char buf[48];

	json_object_object_add(o, "decision",
			       json_object_new_string(kind_name(e->kind)));
	json_object_object_add(o, "text", json_object_new_string(e->text));
	if (e->has_svc)
		json_object_object_add(o, "service",
				       json_object_new_string(svc_name(
					       &e->svc_key, buf, sizeof(buf))));
	if (e->kind == LBV_CONNTRACK || e->kind == LBV_MAGLEV)
		json_object_object_add(o, "backend",
				       json_object_new_string(be_name(
					       &e->be, buf, sizeof(buf))));
	if (e->kind == LBV_REPLY)
		json_object_object_add(o, "source",
				       json_object_new_string(be_name(
					       &e->be, buf, sizeof(buf))));
	if (e->kind == LBV_MAGLEV) {
		json_object_object_add(o, "hash",
				       json_object_new_int64(e->hash));
		json_object_object_add(o, "m", json_object_new_int64(e->svc.m));
		json_object_object_add(o, "entry",
				       json_object_new_int64(e->entry));
	}
	if (e->ct_found) {
		struct json_object *c = json_object_new_object();

		json_object_object_add(
			c, "dir",
			json_object_new_string(e->ct.dir == XVPC_LB_CT_FWD
						       ? "forward"
						       : "reverse"));
		json_object_object_add(
			c, "state",
			json_object_new_string(state_name(e->ct.state)));
		json_object_object_add(c, "age_s",
				       json_object_new_double(e->age_s));
		json_object_object_add(c, "idle_s",
				       json_object_new_double(e->idle_s));
		json_object_object_add(c, "used",
				       json_object_new_boolean(!e->ct_expired));
		json_object_object_add(o, "conntrack", c);
	}
	return o;
}

/* ---- a test run without side effects ---- */

static void guard_add(struct xvpc_dp *dp, struct lbv_guard *g,
		      const struct xvpc_lb_ct_key *k)
{
	for (int i = 0; i < g->n; i++)
		if (!memcmp(&g->key[i], k, sizeof(*k)))
			return;
	if (g->n == LBV_GUARD_KEYS)
		return;
	g->key[g->n] = *k;
	g->had[g->n] = !lookup_ct(dp, k, &g->before[g->n]);
	g->n++;
}

void lbv_guard_take(struct xvpc_dp *dp, const struct lbv_explain *e,
		    const struct xvpc_lb_ct_key *key, struct lbv_guard *g)
{
	struct xvpc_lb_ct_key k = *key;

	memset(g, 0, sizeof(*g));
	memset(k.pad, 0, sizeof(k.pad));
	if (k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP)
		return;
	/* The forward entry under the packet's own tuple. */
	guard_add(dp, g, &k);
	/* The reverse entry of the backend it goes to (in the backend's VPC
	 * for a public service). */
	if (e->kind == LBV_MAGLEV || e->kind == LBV_CONNTRACK) {
		struct xvpc_lb_ct_key r = {
			.vpc_id = e->svc_key.vpc_id == XVPC_LB_PUBLIC &&
						  e->has_svc
					  ? e->svc.backend_vpc
					  : k.vpc_id,
			.src = e->be.ip,
			.dst = k.src,
			.sport = e->be.port,
			.dport = k.sport,
			.proto = k.proto,
		};

		guard_add(dp, g, &r);
	}
	/* The reverse entry a north-south packet writes on decapsulation. */
	struct xvpc_lb_ct_key s = {.vpc_id = k.vpc_id,
				   .src = k.dst,
				   .dst = k.src,
				   .sport = k.dport,
				   .dport = k.sport,
				   .proto = k.proto};

	guard_add(dp, g, &s);
}

int lbv_guard_undo(struct xvpc_dp *dp, const struct lbv_guard *g, int *created)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT), err = 0;
	struct xvpc_lb_ct now;

	*created = 0;
	for (int i = 0; i < g->n; i++) {
		if (lookup_ct(dp, &g->key[i], &now))
			continue;
		if (!g->had[i]) {
			(*created)++;
			if (bpf_map_delete_elem(fd, &g->key[i]) &&
			    errno != ENOENT)
				err = -errno;
		} else if (now.created_ns != g->before[i].created_ns) {
			(*created)++;
			if (bpf_map_update_elem(fd, &g->key[i], &g->before[i],
						BPF_ANY))
				err = -errno;
		} else if (now.state != g->before[i].state) {
			/* A traced FIN or RST closed a live flow: reopened. */
			(*created)++;
			now.state = g->before[i].state;
			if (bpf_map_update_elem(fd, &g->key[i], &now, BPF_ANY))
				err = -errno;
		}
	}
	return err;
}
