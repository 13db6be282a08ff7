// SPDX-License-Identifier: GPL-2.0-only
/* Desired state: model, strict JSON parser/validator and serializer for
 * docs/state-format.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include <json-c/json.h>

#include "netutil.h"
#include "state.h"
#include "xvpc_abi.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct xvpc_state *xvpc_state_new(void)
{
	return calloc(1, sizeof(struct xvpc_state));
}

void xvpc_state_free(struct xvpc_state *st)
{
	if (!st)
		return;
	free(st->vpcs);
	free(st->subnets);
	free(st->eps);
	for (size_t i = 0; i < st->n_svcs; i++)
		free(st->svcs[i].backends);
	free(st->svcs);
	free(st->nodes);
	free(st);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

int xvpc_state_add_vpc(struct xvpc_state *st, const struct xvpc_state_vpc *v)
{
	int err =
		grow((void **)&st->vpcs, &st->cap_vpcs, st->n_vpcs, sizeof(*v));

	if (err)
		return err;
	st->vpcs[st->n_vpcs++] = *v;
	st->validated = false;
	return 0;
}

int xvpc_state_add_subnet(struct xvpc_state *st,
			  const struct xvpc_state_subnet *s)
{
	int err = grow((void **)&st->subnets, &st->cap_subnets, st->n_subnets,
		       sizeof(*s));

	if (err)
		return err;
	st->subnets[st->n_subnets++] = *s;
	st->validated = false;
	return 0;
}

int xvpc_state_add_ep(struct xvpc_state *st, const struct xvpc_state_ep *e)
{
	int err = grow((void **)&st->eps, &st->cap_eps, st->n_eps, sizeof(*e));

	if (err)
		return err;
	st->eps[st->n_eps++] = *e;
	st->validated = false;
	return 0;
}

int xvpc_state_add_node(struct xvpc_state *st, __be32 node_ip)
{
	int ret = grow((void **)&st->nodes, &st->cap_nodes, st->n_nodes,
		       sizeof(*st->nodes));

	if (ret)
		return ret;
	st->nodes[st->n_nodes++] = node_ip;
	st->validated = false;
	return 0;
}

int xvpc_state_add_svc(struct xvpc_state *st, const struct xvpc_state_svc *s)
{
	struct xvpc_state_lb_backend *be = NULL;
	int err =
		grow((void **)&st->svcs, &st->cap_svcs, st->n_svcs, sizeof(*s));

	if (err)
		return err;
	if (s->n_backends) {
		if (!s->backends)
			return -EINVAL;
		be = malloc(s->n_backends * sizeof(*be));
		if (!be)
			return -ENOMEM;
		memcpy(be, s->backends, s->n_backends * sizeof(*be));
	}
	st->svcs[st->n_svcs] = *s;
	st->svcs[st->n_svcs++].backends = be;
	st->validated = false;
	return 0;
}

void xvpc_state_hc_defaults(struct xvpc_state_hc *hc)
{
	if (!hc->interval_ms)
		hc->interval_ms = 2000;
	if (!hc->timeout_ms)
		hc->timeout_ms =
			hc->interval_ms < 1000 ? hc->interval_ms : 1000;
	if (!hc->rise)
		hc->rise = 2;
	if (!hc->fall)
		hc->fall = 3;
	if (!hc->expect_status)
		hc->expect_status = 200;
	if (!hc->path[0])
		strcpy(hc->path, "/");
}

const struct xvpc_state_svc *xvpc_state_find_svc(const struct xvpc_state *st,
						 __u32 vpc, __be32 vip,
						 __u16 port, __u8 proto)
{
	for (size_t i = 0; i < st->n_svcs; i++) {
		const struct xvpc_state_svc *s = &st->svcs[i];

		if (s->vpc == vpc && s->vip == vip && s->port == port &&
		    s->proto == proto)
			return s;
	}
	return NULL;
}

/* ---- validation ---- */

static bool mac_is_unicast(const __u8 mac[6])
{
	static const __u8 zero[6];

	return !(mac[0] & 1) && memcmp(mac, zero, 6);
}

/* Sort key: (vpc, host-order address) in one integer. */
static __u64 vpc_ip_key(__u32 vpc, __be32 ip)
{
	return (__u64)vpc << 32 | ntohl(ip);
}

static int cmp_subnet(const void *a, const void *b)
{
	const struct xvpc_state_subnet *x = a, *y = b;
	__u64 kx = vpc_ip_key(x->vpc, x->net), ky = vpc_ip_key(y->vpc, y->net);

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return (int)x->plen - (int)y->plen;
}

struct keyidx {
	__u64 key;
	size_t idx;
};

static int cmp_keyidx(const void *a, const void *b)
{
	const struct keyidx *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts (key, index) pairs and returns the first duplicate pair (in input
 * order of the later one), or false. */
static bool find_dup(struct keyidx *ki, size_t n, size_t *first, size_t *dup)
{
	bool found = false;

	qsort(ki, n, sizeof(*ki), cmp_keyidx);
	for (size_t i = 1; i < n; i++) {
		if (ki[i].key != ki[i - 1].key)
			continue;
		if (!found || ki[i].idx < *dup) {
			*first = ki[i - 1].idx;
			*dup = ki[i].idx;
			found = true;
		}
	}
	return found;
}

static bool vpc_listed(const struct xvpc_state *st, __u32 id)
{
	size_t lo = 0, hi = st->n_vpcs;

	/* vpcs are sorted by id during validation */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (st->vpcs[mid].id == id)
			return true;
		if (st->vpcs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_vpc(const void *a, const void *b)
{
	const struct xvpc_state_vpc *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

const struct xvpc_state_subnet *
xvpc_state_find_subnet(const struct xvpc_state *st, __u32 vpc, __be32 ip)
{
	__u64 key = vpc_ip_key(vpc, ip);
	size_t lo = 0, hi = st->n_subnets;
	const struct xvpc_state_subnet *s;

	/* Last subnet whose (vpc, net) <= (vpc, ip); subnets of one VPC do
	 * not overlap, so it is the only candidate. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (vpc_ip_key(st->subnets[mid].vpc, st->subnets[mid].net) <=
		    key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	s = &st->subnets[lo - 1];
	if (s->vpc != vpc || !xvpc_cidr_contains(s->net, s->plen, ip))
		return NULL;
	return s;
}

const struct xvpc_state_vpc *xvpc_state_find_vpc(const struct xvpc_state *st,
						 __u32 id)
{
	size_t lo = 0, hi = st->n_vpcs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->vpcs[mid].id == id)
			return &st->vpcs[mid];
		if (st->vpcs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int validate_mode(const struct xvpc_state_vpc *v, size_t i, char *err,
			 size_t errlen)
{
	char ip[XVPC_IP_STRLEN];

	if (v->mode != XVPC_MODE_PUSH && v->mode != XVPC_MODE_LEARN) {
		seterr(err, errlen,
		       "vpcs[%zu] (id %u): field \"mode\": must be \"push\" "
		       "or \"learn\"",
		       i, v->id);
		return -EINVAL;
	}
	if (v->n_gateways > XVPC_STATE_GATEWAYS_MAX ||
	    (v->mode == XVPC_MODE_PUSH && v->n_gateways)) {
		seterr(err, errlen,
		       "vpcs[%zu] (id %u): field \"gateways\": at most %d, "
		       "and only in learn mode",
		       i, v->id, XVPC_STATE_GATEWAYS_MAX);
		return -EINVAL;
	}
	for (__u32 j = 0; j < v->n_gateways; j++) {
		if (!v->gateways[j]) {
			seterr(err, errlen,
			       "vpcs[%zu] (id %u): field \"gateways[%u]\": "
			       "0.0.0.0 is not a node",
			       i, v->id, j);
			return -EINVAL;
		}
		for (__u32 k = 0; k < j; k++)
			if (v->gateways[k] == v->gateways[j]) {
				seterr(err, errlen,
				       "vpcs[%zu] (id %u): field "
				       "\"gateways\": %s listed twice",
				       i, v->id,
				       xvpc_fmt_ip(v->gateways[j], ip));
				return -EINVAL;
			}
	}
	return 0;
}

static int cmp_be32(const void *a, const void *b)
{
	__u32 x = ntohl(*(const __be32 *)a), y = ntohl(*(const __be32 *)b);

	return x < y ? -1 : x > y;
}

static int validate_nodes(struct xvpc_state *st, char *err, size_t errlen)
{
	char ip[XVPC_IP_STRLEN];

	qsort(st->nodes, st->n_nodes, sizeof(*st->nodes), cmp_be32);
	for (size_t i = 0; i < st->n_nodes; i++) {
		if (!st->nodes[i]) {
			seterr(err, errlen,
			       "nodes: 0.0.0.0 is not a node address");
			return -EINVAL;
		}
		if (i && st->nodes[i] == st->nodes[i - 1]) {
			seterr(err, errlen, "nodes: %s listed twice",
			       xvpc_fmt_ip(st->nodes[i], ip));
			return -EINVAL;
		}
	}
	return 0;
}

static int validate_vpcs(struct xvpc_state *st, char *err, size_t errlen)
{
	for (size_t i = 0; i < st->n_vpcs; i++) {
		int ret = validate_mode(&st->vpcs[i], i, err, errlen);

		if (ret)
			return ret;
		if (!st->vpcs[i].id) {
			seterr(err, errlen,
			       "vpcs[%zu]: field \"id\": must be 1 .. "
			       "4294967295",
			       i);
			return -EINVAL;
		}
		if (!memchr(st->vpcs[i].name, '\0', XVPC_STATE_NAME_MAX)) {
			seterr(err, errlen,
			       "vpcs[%zu] (id %u): field \"name\": longer than "
			       "%d characters",
			       i, st->vpcs[i].id, XVPC_STATE_NAME_MAX - 1);
			return -EINVAL;
		}
	}
	qsort(st->vpcs, st->n_vpcs, sizeof(*st->vpcs), cmp_vpc);
	for (size_t i = 1; i < st->n_vpcs; i++) {
		if (st->vpcs[i].id == st->vpcs[i - 1].id) {
			seterr(err, errlen,
			       "vpcs: field \"id\": VPC %u listed twice",
			       st->vpcs[i].id);
			return -EINVAL;
		}
	}
	return 0;
}

static int validate_subnets(struct xvpc_state *st, char *err, size_t errlen)
{
	char c1[XVPC_CIDR_STRLEN], c2[XVPC_CIDR_STRLEN], ip[XVPC_IP_STRLEN];
	struct keyidx *ki = NULL;
	size_t first, dup;
	int ret = -EINVAL;

	for (size_t i = 0; i < st->n_subnets; i++) {
		const struct xvpc_state_subnet *s = &st->subnets[i];

		if (s->plen > 32 || (s->net & ~xvpc_plen_mask(s->plen))) {
			seterr(err, errlen,
			       "subnets[%zu]: field \"cidr\": %s/%u has host "
			       "bits set",
			       i, xvpc_fmt_ip(s->net, ip), s->plen);
			return -EINVAL;
		}
		xvpc_fmt_cidr(s->net, s->plen, c1);
		if (!vpc_listed(st, s->vpc)) {
			seterr(err, errlen,
			       "subnets[%zu] (%s): field \"vpc\": VPC %u is "
			       "not listed in \"vpcs\"",
			       i, c1, s->vpc);
			return -EINVAL;
		}
		if (!s->vni || s->vni > XVPC_VNI_MAX) {
			seterr(err, errlen,
			       "subnets[%zu] (%s): field \"vni\": %u is not in "
			       "1 .. %u",
			       i, c1, s->vni, XVPC_VNI_MAX);
			return -EINVAL;
		}
		if (!xvpc_cidr_contains(s->net, s->plen, s->gw_ip)) {
			seterr(err, errlen,
			       "subnets[%zu] (%s): field \"gateway_ip\": %s is "
			       "not inside %s",
			       i, c1, xvpc_fmt_ip(s->gw_ip, ip), c1);
			return -EINVAL;
		}
		if (!mac_is_unicast(s->gw_mac)) {
			seterr(err, errlen,
			       "subnets[%zu] (%s): field \"gateway_mac\": must "
			       "be a unicast, non-zero MAC",
			       i, c1);
			return -EINVAL;
		}
	}

	if (st->n_subnets) {
		ki = calloc(st->n_subnets, sizeof(*ki));
		if (!ki)
			return -ENOMEM;
	}
	for (size_t i = 0; i < st->n_subnets; i++)
		ki[i] = (struct keyidx){st->subnets[i].vni, i};
	if (find_dup(ki, st->n_subnets, &first, &dup)) {
		seterr(err, errlen,
		       "subnets[%zu] (%s): field \"vni\": %u is already used "
		       "by subnets[%zu] (%s)",
		       dup,
		       xvpc_fmt_cidr(st->subnets[dup].net,
				     st->subnets[dup].plen, c1),
		       st->subnets[dup].vni, first,
		       xvpc_fmt_cidr(st->subnets[first].net,
				     st->subnets[first].plen, c2));
		goto out;
	}

	/* Overlap inside a VPC: CIDRs nest or are disjoint, so once sorted by
	 * (vpc, net) any overlap shows between neighbours. */
	qsort(st->subnets, st->n_subnets, sizeof(*st->subnets), cmp_subnet);
	for (size_t i = 1; i < st->n_subnets; i++) {
		const struct xvpc_state_subnet *a = &st->subnets[i - 1];
		const struct xvpc_state_subnet *b = &st->subnets[i];

		if (a->vpc != b->vpc ||
		    !xvpc_cidr_overlap(a->net, a->plen, b->net, b->plen))
			continue;
		seterr(err, errlen,
		       "subnets (vpc %u): field \"cidr\": %s overlaps %s",
		       a->vpc, xvpc_fmt_cidr(b->net, b->plen, c1),
		       xvpc_fmt_cidr(a->net, a->plen, c2));
		goto out;
	}
	ret = 0;
out:
	free(ki);
	return ret;
}

static bool ifname_ok(const char *s)
{
	size_t len = strnlen(s, IF_NAMESIZE);

	if (!len || len >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || (unsigned char)*s <= ' ' ||
		    (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int cmp_ifname(const void *a, const void *b, void *arg)
{
	const struct xvpc_state *st = arg;
	const struct xvpc_state_ep *x = &st->eps[*(const size_t *)a];
	const struct xvpc_state_ep *y = &st->eps[*(const size_t *)b];
	int c;

	if (x->node_ip != y->node_ip)
		return x->node_ip < y->node_ip ? -1 : 1;
	c = strcmp(x->ifname, y->ifname);
	if (c)
		return c;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Two endpoints of one node never share an interface. */
static int check_ifnames(const struct xvpc_state *st, char *err, size_t errlen)
{
	char ip[XVPC_IP_STRLEN];
	size_t *idx, n = 0;
	int ret = 0;

	idx = calloc(st->n_eps + 1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < st->n_eps; i++)
		if (st->eps[i].ifname[0])
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_ifname, (void *)st);
	for (size_t i = 1; i < n; i++) {
		const struct xvpc_state_ep *a = &st->eps[idx[i - 1]];
		const struct xvpc_state_ep *b = &st->eps[idx[i]];

		if (a->node_ip != b->node_ip || strcmp(a->ifname, b->ifname))
			continue;
		seterr(err, errlen,
		       "endpoints[%zu] (vpc %u, %s): field \"ifname\": \"%s\" "
		       "is already used by endpoints[%zu] on the same node",
		       idx[i], b->vpc, xvpc_fmt_ip(b->ip, ip), b->ifname,
		       idx[i - 1]);
		ret = -EINVAL;
		break;
	}
	free(idx);
	return ret;
}

static int validate_eps(struct xvpc_state *st, __be32 node_ip, char *err,
			size_t errlen)
{
	char ip[XVPC_IP_STRLEN], ip2[XVPC_IP_STRLEN];
	struct keyidx *ki = NULL;
	size_t first, dup;
	int ret = -EINVAL;

	for (size_t i = 0; i < st->n_eps; i++) {
		const struct xvpc_state_ep *e = &st->eps[i];
		const struct xvpc_state_subnet *s;

		xvpc_fmt_ip(e->ip, ip);
		if (!vpc_listed(st, e->vpc)) {
			seterr(err, errlen,
			       "endpoints[%zu] (vpc %u, %s): field \"vpc\": "
			       "VPC %u is "
			       "not listed in \"vpcs\"",
			       i, e->vpc, ip, e->vpc);
			return -EINVAL;
		}
		s = xvpc_state_find_subnet(st, e->vpc, e->ip);
		if (!s) {
			seterr(err, errlen,
			       "endpoints[%zu] (vpc %u, %s): field \"ip\": not "
			       "inside any subnet of VPC %u",
			       i, e->vpc, ip, e->vpc);
			return -EINVAL;
		}
		if (e->ip == s->gw_ip) {
			seterr(err, errlen,
			       "endpoints[%zu] (vpc %u, %s): field \"ip\": is "
			       "the subnet's gateway_ip",
			       i, e->vpc, ip);
			return -EINVAL;
		}
		if (!mac_is_unicast(e->mac)) {
			seterr(err, errlen,
			       "endpoints[%zu] (vpc %u, %s): field \"mac\": "
			       "must be a unicast, non-zero MAC",
			       i, e->vpc, ip);
			return -EINVAL;
		}
		if (!e->node_ip) {
			seterr(err, errlen,
			       "endpoints[%zu] (vpc %u, %s): field "
			       "\"node_ip\": 0.0.0.0 is not a node address",
			       i, e->vpc, ip);
			return -EINVAL;
		}
		if (e->ifname[0] && !ifname_ok(e->ifname)) {
			seterr(err, errlen,
			       "endpoints[%zu] (vpc %u, %s): field \"ifname\": "
			       "\"%.*s\" is not a valid interface name",
			       i, e->vpc, ip, IF_NAMESIZE, e->ifname);
			return -EINVAL;
		}
		if (node_ip && e->node_ip == node_ip && !e->ifname[0]) {
			seterr(err, errlen,
			       "endpoints[%zu] (vpc %u, %s): field \"ifname\": "
			       "required for an endpoint on this node (%s)",
			       i, e->vpc, ip, xvpc_fmt_ip(node_ip, ip2));
			return -EINVAL;
		}
	}

	ret = check_ifnames(st, err, errlen);
	if (ret)
		return ret;
	ret = -EINVAL;
	if (st->n_eps) {
		ki = calloc(st->n_eps, sizeof(*ki));
		if (!ki)
			return -ENOMEM;
	}
	for (size_t i = 0; i < st->n_eps; i++)
		ki[i] = (struct keyidx){
			vpc_ip_key(st->eps[i].vpc, st->eps[i].ip), i};
	if (find_dup(ki, st->n_eps, &first, &dup)) {
		seterr(err, errlen,
		       "endpoints[%zu] (vpc %u, %s): fields \"vpc\", \"ip\": "
		       "same as endpoints[%zu]",
		       dup, st->eps[dup].vpc, xvpc_fmt_ip(st->eps[dup].ip, ip),
		       first);
		goto out;
	}
	ret = 0;
out:
	free(ki);
	return ret;
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP   ? "tcp"
	       : proto == IPPROTO_UDP ? "udp"
				      : "?";
}

static bool path_ok(const char *p)
{
	size_t len = strnlen(p, XVPC_STATE_HC_PATH_MAX);

	if (len >= XVPC_STATE_HC_PATH_MAX || p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static bool ep_listed(const struct xvpc_state *st, __u32 vpc, __be32 ip)
{
	for (size_t i = 0; i < st->n_eps; i++)
		if (st->eps[i].vpc == vpc && st->eps[i].ip == ip)
			return true;
	return false;
}

static int validate_hc(const struct xvpc_state_svc *s, size_t i, const char *w,
		       char *err, size_t errlen)
{
	const struct xvpc_state_hc *hc = &s->hc;

	if (hc->type > XVPC_HC_HTTP) {
		seterr(err, errlen,
		       "services[%zu] (%s): field \"health_check.type\": must "
		       "be \"none\", \"tcp\" or \"http\"",
		       i, w);
		return -EINVAL;
	}
	if (hc->type == XVPC_HC_NONE)
		return 0;
	if (hc->interval_ms < 100 || hc->interval_ms > 3600000) {
		seterr(err, errlen,
		       "services[%zu] (%s): field "
		       "\"health_check.interval_ms\": "
		       "%u is not in 100 .. 3600000",
		       i, w, hc->interval_ms);
		return -EINVAL;
	}
	if (hc->timeout_ms < 10 || hc->timeout_ms > hc->interval_ms) {
		seterr(err, errlen,
		       "services[%zu] (%s): field \"health_check.timeout_ms\": "
		       "%u is not in 10 .. interval_ms (%u)",
		       i, w, hc->timeout_ms, hc->interval_ms);
		return -EINVAL;
	}
	if (hc->rise < 1 || hc->rise > 100 || hc->fall < 1 || hc->fall > 100) {
		seterr(err, errlen,
		       "services[%zu] (%s): field \"health_check.%s\": %u is "
		       "not in 1 .. 100",
		       i, w, hc->rise < 1 || hc->rise > 100 ? "rise" : "fall",
		       hc->rise < 1 || hc->rise > 100 ? hc->rise : hc->fall);
		return -EINVAL;
	}
	if (hc->type == XVPC_HC_HTTP && !path_ok(hc->path)) {
		seterr(err, errlen,
		       "services[%zu] (%s): field \"health_check.path\": must "
		       "start with '/', hold no spaces or control characters "
		       "and be shorter than %d characters",
		       i, w, XVPC_STATE_HC_PATH_MAX);
		return -EINVAL;
	}
	if (hc->type == XVPC_HC_HTTP &&
	    (hc->expect_status < 100 || hc->expect_status > 599)) {
		seterr(err, errlen,
		       "services[%zu] (%s): field "
		       "\"health_check.expect_status\": %u is not in 100 .. "
		       "599",
		       i, w, hc->expect_status);
		return -EINVAL;
	}
	return 0;
}

static bool same_backend(const struct xvpc_state_svc *a,
			 const struct xvpc_state_lb_backend *x,
			 const struct xvpc_state_svc *b,
			 const struct xvpc_state_lb_backend *y)
{
	return x->ip == y->ip &&
	       (x->port ? x->port : a->port) == (y->port ? y->port : b->port);
}

/* A backend ip:port of public services k < i as well as of i, or 0. */
static int public_shared(const struct xvpc_state *st, size_t i, size_t *k,
			 __u32 *j)
{
	const struct xvpc_state_svc *s = &st->svcs[i];

	for (*k = 0; *k < i; (*k)++) {
		const struct xvpc_state_svc *o = &st->svcs[*k];

		if (!o->public || o->vpc != s->vpc || o->proto != s->proto)
			continue;
		for (*j = 0; *j < s->n_backends; (*j)++)
			for (__u32 m = 0; m < o->n_backends; m++)
				if (same_backend(s, &s->backends[*j], o,
						 &o->backends[m]))
					return -EEXIST;
	}
	return 0;
}

/* A public service: its VIP outside the VPC's subnets, its VIP:port used
 * by no other public service (they share one key space), and none of its
 * backends serving another public service (the backend's node finds the
 * VIP of a reply by the backend's address and port). */
static int validate_public(const struct xvpc_state *st, size_t i, const char *w,
			   char *err, size_t errlen)
{
	const struct xvpc_state_svc *s = &st->svcs[i];
	char ip[XVPC_IP_STRLEN];
	size_t k;
	__u32 j;

	if (!s->public)
		return 0;
	if (xvpc_state_find_subnet(st, s->vpc, s->vip)) {
		seterr(err, errlen,
		       "services[%zu] (%s): field \"vip\": a public VIP must "
		       "be outside the VPC's subnets",
		       i, w);
		return -EINVAL;
	}
	for (k = 0; k < i; k++) {
		const struct xvpc_state_svc *o = &st->svcs[k];

		if (o->public && o->vip == s->vip && o->port == s->port &&
		    o->proto == s->proto) {
			seterr(err, errlen,
			       "services[%zu] (%s): fields \"vip\", \"port\", "
			       "\"protocol\": public, like services[%zu] of "
			       "VPC %u",
			       i, w, k, o->vpc);
			return -EINVAL;
		}
	}
	if (public_shared(st, i, &k, &j)) {
		seterr(err, errlen,
		       "services[%zu] (%s): field \"backends[%u]\": %s "
		       "already serves public services[%zu]; a backend serves "
		       "one public VIP",
		       i, w, j, xvpc_fmt_ip(s->backends[j].ip, ip), k);
		return -EINVAL;
	}
	return 0;
}

static int validate_svcs(struct xvpc_state *st, char *err, size_t errlen)
{
	char w[64], ip[XVPC_IP_STRLEN], cidr[XVPC_CIDR_STRLEN];

	for (size_t i = 0; i < st->n_svcs; i++) {
		struct xvpc_state_svc *s = &st->svcs[i];
		const struct xvpc_state_subnet *sn;
		int ret;

		if (s->hc.type != XVPC_HC_NONE)
			xvpc_state_hc_defaults(&s->hc);
		snprintf(w, sizeof(w), "vpc %u, %s:%u/%s", s->vpc,
			 xvpc_fmt_ip(s->vip, ip), s->port,
			 proto_name(s->proto));
		if (!vpc_listed(st, s->vpc)) {
			seterr(err, errlen,
			       "services[%zu] (%s): field \"vpc\": VPC %u is "
			       "not listed in \"vpcs\"",
			       i, w, s->vpc);
			return -EINVAL;
		}
		if (!s->vip || ep_listed(st, s->vpc, s->vip)) {
			seterr(err, errlen,
			       "services[%zu] (%s): field \"vip\": %s", i, w,
			       s->vip ? "is the address of an endpoint"
				      : "0.0.0.0 is not a service address");
			return -EINVAL;
		}
		/* The datapath answers ARP for endpoints and gateways only:
		 * clients reach a VIP through their gateway, so it must lie
		 * outside every subnet (the API's rule too). */
		sn = xvpc_state_find_subnet(st, s->vpc, s->vip);
		if (sn) {
			seterr(err, errlen,
			       "services[%zu] (%s): field \"vip\": inside "
			       "subnet %s, where no client could reach it (ARP "
			       "is answered for endpoints and the gateway "
			       "only): a VIP must be outside the VPC's "
			       "subnets",
			       i, w, xvpc_fmt_cidr(sn->net, sn->plen, cidr));
			return -EINVAL;
		}
		if (!s->port) {
			seterr(err, errlen,
			       "services[%zu] (%s): field \"port\": must be 1 "
			       ".. 65535",
			       i, w);
			return -EINVAL;
		}
		if (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP) {
			seterr(err, errlen,
			       "services[%zu] (%s): field \"protocol\": must "
			       "be \"tcp\" or \"udp\"",
			       i, w);
			return -EINVAL;
		}
		if (s->n_backends > XVPC_STATE_LB_BACKENDS_MAX) {
			seterr(err, errlen,
			       "services[%zu] (%s): field \"backends\": %u "
			       "backends, at most %d",
			       i, w, s->n_backends, XVPC_STATE_LB_BACKENDS_MAX);
			return -EINVAL;
		}
		for (__u32 j = 0; j < s->n_backends; j++) {
			const struct xvpc_state_lb_backend *b = &s->backends[j];
			__u16 pj = b->port ? b->port : s->port;

			if (!b->ip) {
				seterr(err, errlen,
				       "services[%zu] (%s): field "
				       "\"backends[%u].ip\": 0.0.0.0 is not a "
				       "backend address",
				       i, w, j);
				return -EINVAL;
			}
			if (b->weight > 65535) {
				seterr(err, errlen,
				       "services[%zu] (%s): field "
				       "\"backends[%u].weight\": %u is not in "
				       "0 "
				       ".. 65535",
				       i, w, j, b->weight);
				return -EINVAL;
			}
			for (__u32 k = 0; k < j; k++) {
				const struct xvpc_state_lb_backend *c =
					&s->backends[k];

				if (c->ip == b->ip &&
				    (c->port ? c->port : s->port) == pj) {
					seterr(err, errlen,
					       "services[%zu] (%s): field "
					       "\"backends[%u]\": %s:%u is "
					       "already backends[%u]",
					       i, w, j, xvpc_fmt_ip(b->ip, ip),
					       pj, k);
					return -EINVAL;
				}
			}
		}
		ret = validate_hc(s, i, w, err, errlen);
		if (!ret)
			ret = validate_public(st, i, w, err, errlen);
		if (ret)
			return ret;
		for (size_t k = 0; k < i; k++) {
			const struct xvpc_state_svc *o = &st->svcs[k];

			if (o->vpc == s->vpc && o->vip == s->vip &&
			    o->port == s->port && o->proto == s->proto) {
				seterr(err, errlen,
				       "services[%zu] (%s): fields \"vpc\", "
				       "\"vip\", \"port\", \"protocol\": same "
				       "as services[%zu]",
				       i, w, k);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int xvpc_state_validate(struct xvpc_state *st, __be32 node_ip, char *err,
			size_t errlen)
{
	int ret;

	st->validated = false;
	ret = validate_vpcs(st, err, errlen);
	if (!ret)
		ret = validate_subnets(st, err, errlen);
	if (!ret)
		ret = validate_eps(st, node_ip, err, errlen);
	if (!ret)
		ret = validate_svcs(st, err, errlen);
	if (!ret)
		ret = validate_nodes(st, err, errlen);
	if (ret == -ENOMEM)
		seterr(err, errlen, "out of memory while validating");
	if (!ret)
		st->validated = true;
	return ret;
}

/* ---- parsing ---- */

struct pctx {
	char *err;
	size_t errlen;
	char where[96]; /* "subnets[3]" */
};

static const char *const top_fields[] = {
	"revision", "vpcs", "subnets", "endpoints", "services", "nodes", NULL};
static const char *const svc_fields[] = {"id",		 "vpc",	     "vip",
					 "port",	 "protocol", "backends",
					 "health_check", "public",   NULL};
static const char *const be_fields[] = {"ip", "port", "weight", "healthy",
					NULL};
static const char *const hc_fields[] = {
	"type", "interval_ms", "timeout_ms",	"rise",
	"fall", "path",	       "expect_status", NULL};
static const char *const vpc_fields[] = {"id", "name", "mode", "gateways",
					 NULL};
static const char *const subnet_fields[] = {"vpc",	  "cidr",	 "vni",
					    "gateway_ip", "gateway_mac", NULL};
static const char *const ep_fields[] = {"vpc",	   "ip",     "mac",
					"node_ip", "ifname", NULL};

const char *xvpc_json_unknown_field(struct json_object *o,
				    const char *const *allowed)
{
	json_object_object_foreach(o, key, val)
	{
		const char *const *a;

		(void)val;
		for (a = allowed; *a; a++)
			if (!strcmp(*a, key))
				break;
		if (!*a)
			return key;
	}
	return NULL;
}

static int check_fields(struct pctx *p, struct json_object *o,
			const char *const *allowed)
{
	const char *bad = xvpc_json_unknown_field(o, allowed);

	if (!bad)
		return 0;
	seterr(p->err, p->errlen, "%s: unknown field \"%s\"", p->where, bad);
	return -EINVAL;
}

static struct json_object *get_field(struct pctx *p, struct json_object *o,
				     const char *name, enum json_type type,
				     bool required, int *ret)
{
	static const char *const tnames[] = {
		[json_type_null] = "null",
		[json_type_boolean] = "a boolean",
		[json_type_double] = "a number",
		[json_type_int] = "an integer",
		[json_type_object] = "an object",
		[json_type_array] = "an array",
		[json_type_string] = "a string",
	};
	struct json_object *v;

	*ret = 0;
	if (!json_object_object_get_ex(o, name, &v)) {
		if (required) {
			seterr(p->err, p->errlen, "%s: field \"%s\" is missing",
			       p->where, name);
			*ret = -EINVAL;
		}
		return NULL;
	}
	if (json_object_get_type(v) != type) {
		seterr(p->err, p->errlen, "%s: field \"%s\" must be %s, not %s",
		       p->where, name, tnames[type],
		       tnames[json_object_get_type(v)]);
		*ret = -EINVAL;
		return NULL;
	}
	return v;
}

static int get_u32(struct pctx *p, struct json_object *o, const char *name,
		   __u32 *out)
{
	struct json_object *v;
	int64_t x;
	int ret;

	v = get_field(p, o, name, json_type_int, true, &ret);
	if (!v)
		return ret;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < 0 || x > UINT32_MAX) {
		seterr(p->err, p->errlen,
		       "%s: field \"%s\": %s is not in 0 .. 4294967295",
		       p->where, name, json_object_to_json_string(v));
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/* A string field parsed by fn (an address parser). what: "an IPv4
 * address" etc., for the message. */
static int get_str(struct pctx *p, struct json_object *o, const char *name,
		   bool required, const char **out)
{
	struct json_object *v;
	int ret;

	*out = NULL;
	v = get_field(p, o, name, json_type_string, required, &ret);
	if (v)
		*out = json_object_get_string(v);
	return ret;
}

static int get_ip(struct pctx *p, struct json_object *o, const char *name,
		  __be32 *ip)
{
	const char *s;
	int ret = get_str(p, o, name, true, &s);

	if (ret)
		return ret;
	if (xvpc_parse_ip(s, ip)) {
		seterr(p->err, p->errlen,
		       "%s: field \"%s\": \"%s\" is not an IPv4 address",
		       p->where, name, s);
		return -EINVAL;
	}
	return 0;
}

static int get_mac(struct pctx *p, struct json_object *o, const char *name,
		   __u8 mac[6])
{
	const char *s;
	int ret = get_str(p, o, name, true, &s);

	if (ret)
		return ret;
	if (xvpc_parse_mac(s, mac)) {
		seterr(p->err, p->errlen,
		       "%s: field \"%s\": \"%s\" is not a MAC address "
		       "(aa:bb:cc:dd:ee:ff)",
		       p->where, name, s);
		return -EINVAL;
	}
	return 0;
}

/* An array of IPv4 address strings, at most max, into out[]. */
static int get_ip_array(struct pctx *p, struct json_object *o, const char *name,
			__be32 *out, size_t max, size_t *n)
{
	struct json_object *arr;
	int ret;

	*n = 0;
	arr = get_field(p, o, name, json_type_array, false, &ret);
	if (!arr)
		return ret;
	if (json_object_array_length(arr) > max) {
		seterr(p->err, p->errlen, "%s: field \"%s\": more than %zu",
		       p->where, name, max);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		const char *s = json_object_get_string(v);

		if (json_object_get_type(v) != json_type_string ||
		    xvpc_parse_ip(s, &out[i])) {
			seterr(p->err, p->errlen,
			       "%s: field \"%s[%zu]\": must be an IPv4 "
			       "address string",
			       p->where, name, i);
			return -EINVAL;
		}
	}
	*n = json_object_array_length(arr);
	return 0;
}

static int parse_mode(struct pctx *p, struct json_object *o,
		      struct xvpc_state_vpc *v)
{
	const char *mode;
	size_t n;
	int ret;

	ret = get_str(p, o, "mode", false, &mode);
	if (ret)
		return ret;
	if (mode && !strcmp(mode, "learn")) {
		v->mode = XVPC_MODE_LEARN;
	} else if (mode && strcmp(mode, "push")) {
		seterr(p->err, p->errlen,
		       "%s: field \"mode\": \"%s\" is neither \"push\" nor "
		       "\"learn\"",
		       p->where, mode);
		return -EINVAL;
	}
	ret = get_ip_array(p, o, "gateways", v->gateways,
			   XVPC_STATE_GATEWAYS_MAX, &n);
	v->n_gateways = n;
	return ret;
}

/* Top-level "nodes": cluster members' underlay addresses. */
static int parse_nodes(struct pctx *p, struct json_object *top,
		       struct xvpc_state *st)
{
	struct json_object *arr;
	int ret;

	snprintf(p->where, sizeof(p->where), "state");
	arr = get_field(p, top, "nodes", json_type_array, false, &ret);
	if (!arr)
		return ret;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		__be32 ip;

		if (json_object_get_type(v) != json_type_string ||
		    xvpc_parse_ip(json_object_get_string(v), &ip)) {
			seterr(p->err, p->errlen,
			       "state: field \"nodes[%zu]\": must be an IPv4 "
			       "address string",
			       i);
			return -EINVAL;
		}
		ret = xvpc_state_add_node(st, ip);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_vpc(struct pctx *p, struct json_object *o,
		     struct xvpc_state *st)
{
	struct xvpc_state_vpc v = {0};
	const char *name;
	int ret;

	ret = check_fields(p, o, vpc_fields);
	if (!ret)
		ret = get_u32(p, o, "id", &v.id);
	if (!ret)
		ret = get_str(p, o, "name", false, &name);
	if (ret)
		return ret;
	if (name && strlen(name) >= sizeof(v.name)) {
		seterr(p->err, p->errlen,
		       "%s: field \"name\": longer than %zu characters",
		       p->where, sizeof(v.name) - 1);
		return -EINVAL;
	}
	if (name)
		strcpy(v.name, name);
	if (!v.id) {
		seterr(p->err, p->errlen,
		       "%s: field \"id\": must be 1 .. 4294967295", p->where);
		return -EINVAL;
	}
	ret = parse_mode(p, o, &v);
	if (ret)
		return ret;
	return xvpc_state_add_vpc(st, &v);
}

static int parse_subnet(struct pctx *p, struct json_object *o,
			struct xvpc_state *st)
{
	struct xvpc_state_subnet s = {0};
	const char *cidr;
	int ret;

	ret = check_fields(p, o, subnet_fields);
	if (!ret)
		ret = get_u32(p, o, "vpc", &s.vpc);
	if (!ret)
		ret = get_str(p, o, "cidr", true, &cidr);
	if (ret)
		return ret;
	if (xvpc_parse_cidr(cidr, &s.net, &s.plen)) {
		seterr(p->err, p->errlen,
		       "%s: field \"cidr\": \"%s\" is not a "
		       "network/prefix-length with no host bits set",
		       p->where, cidr);
		return -EINVAL;
	}
	snprintf(p->where + strlen(p->where),
		 sizeof(p->where) - strlen(p->where), " (%s)", cidr);
	ret = get_u32(p, o, "vni", &s.vni);
	if (!ret)
		ret = get_ip(p, o, "gateway_ip", &s.gw_ip);
	if (!ret)
		ret = get_mac(p, o, "gateway_mac", s.gw_mac);
	if (ret)
		return ret;
	return xvpc_state_add_subnet(st, &s);
}

static int parse_ep(struct pctx *p, struct json_object *o,
		    struct xvpc_state *st)
{
	struct xvpc_state_ep e = {0};
	const char *ifname;
	char ip[XVPC_IP_STRLEN];
	int ret;

	ret = check_fields(p, o, ep_fields);
	if (!ret)
		ret = get_u32(p, o, "vpc", &e.vpc);
	if (!ret)
		ret = get_ip(p, o, "ip", &e.ip);
	if (ret)
		return ret;
	snprintf(p->where + strlen(p->where),
		 sizeof(p->where) - strlen(p->where), " (vpc %u, %s)", e.vpc,
		 xvpc_fmt_ip(e.ip, ip));
	ret = get_mac(p, o, "mac", e.mac);
	if (!ret)
		ret = get_ip(p, o, "node_ip", &e.node_ip);
	if (!ret)
		ret = get_str(p, o, "ifname", false, &ifname);
	if (ret)
		return ret;
	if (ifname) {
		if (!ifname_ok(ifname)) {
			seterr(p->err, p->errlen,
			       "%s: field \"ifname\": \"%s\" is not a valid "
			       "interface name (1-%d characters, no '/', ':' "
			       "or spaces)",
			       p->where, ifname, IF_NAMESIZE - 1);
			return -EINVAL;
		}
		strcpy(e.ifname, ifname);
	}
	return xvpc_state_add_ep(st, &e);
}

/* An optional integer field in lo .. hi; absent leaves *out as it is. */
static int get_u32_range(struct pctx *p, struct json_object *o,
			 const char *name, const char *shown, __u32 lo,
			 __u32 hi, __u32 *out)
{
	struct json_object *v;
	int64_t x;
	int ret;

	v = get_field(p, o, name, json_type_int, false, &ret);
	if (!v)
		return ret;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < lo || x > hi) {
		seterr(p->err, p->errlen,
		       "%s: field \"%s\": %s is not in %u .. %u", p->where,
		       shown, json_object_to_json_string(v), lo, hi);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int parse_hc(struct pctx *p, struct json_object *o,
		    struct xvpc_state_hc *hc)
{
	const char *type, *path;
	int ret;

	ret = check_fields(p, o, hc_fields);
	if (!ret)
		ret = get_str(p, o, "type", true, &type);
	if (ret) {
		if (strstr(p->err ? p->err : "", "field \"type\""))
			seterr(p->err, p->errlen,
			       "%s: field \"health_check.type\" is missing "
			       "or not a string",
			       p->where);
		return ret;
	}
	if (!strcmp(type, "none"))
		hc->type = XVPC_HC_NONE;
	else if (!strcmp(type, "tcp"))
		hc->type = XVPC_HC_TCP;
	else if (!strcmp(type, "http"))
		hc->type = XVPC_HC_HTTP;
	else {
		seterr(p->err, p->errlen,
		       "%s: field \"health_check.type\": \"%s\" is not "
		       "\"none\", \"tcp\" or \"http\"",
		       p->where, type);
		return -EINVAL;
	}
	ret = get_u32_range(p, o, "interval_ms", "health_check.interval_ms",
			    100, 3600000, &hc->interval_ms) ?:
	      get_u32_range(p, o, "timeout_ms", "health_check.timeout_ms", 10,
			    3600000, &hc->timeout_ms) ?:
	      get_u32_range(p, o, "rise", "health_check.rise", 1, 100,
			    &hc->rise) ?:
	      get_u32_range(p, o, "fall", "health_check.fall", 1, 100,
			    &hc->fall) ?:
	      get_u32_range(p, o, "expect_status",
			    "health_check.expect_status", 100, 599,
			    &hc->expect_status) ?:
	      get_str(p, o, "path", false, &path);
	if (ret)
		return ret;
	if (path) {
		if (strlen(path) >= sizeof(hc->path) || !path_ok(path)) {
			seterr(p->err, p->errlen,
			       "%s: field \"health_check.path\": \"%.40s\" "
			       "must start with '/', hold no spaces and be "
			       "shorter than %zu characters",
			       p->where, path, sizeof(hc->path));
			return -EINVAL;
		}
		strcpy(hc->path, path);
	}
	return 0;
}

static int parse_backend(struct pctx *p, struct json_object *o, __u32 j,
			 struct xvpc_state_lb_backend *b)
{
	char shown[48];
	struct json_object *healthy;
	__u32 port = 0, weight = 1;
	int ret;

	ret = check_fields(p, o, be_fields);
	if (!ret)
		ret = get_ip(p, o, "ip", &b->ip);
	if (ret)
		return ret;
	healthy = get_field(p, o, "healthy", json_type_boolean, false, &ret);
	if (ret)
		return ret;
	b->down = healthy && !json_object_get_boolean(healthy);
	snprintf(shown, sizeof(shown), "backends[%u].port", j);
	ret = get_u32_range(p, o, "port", shown, 0, 65535, &port);
	snprintf(shown, sizeof(shown), "backends[%u].weight", j);
	if (!ret)
		ret = get_u32_range(p, o, "weight", shown, 0, 65535, &weight);
	b->port = port;
	b->weight = weight;
	return ret;
}

static int parse_svc(struct pctx *p, struct json_object *o,
		     struct xvpc_state *st)
{
	struct xvpc_state_svc s = {0};
	struct json_object *arr, *hc, *pub;
	const char *proto;
	char where[sizeof(p->where)], ip[XVPC_IP_STRLEN];
	__u32 port = 0;
	int ret;

	ret = check_fields(p, o, svc_fields);
	if (!ret && json_object_object_get_ex(o, "id", NULL))
		ret = get_u32(p, o, "id", &s.id);
	if (!ret)
		ret = get_u32(p, o, "vpc", &s.vpc);
	if (!ret)
		ret = get_ip(p, o, "vip", &s.vip);
	if (!ret && !json_object_object_get_ex(o, "port", NULL)) {
		seterr(p->err, p->errlen, "%s: field \"port\" is missing",
		       p->where);
		ret = -EINVAL;
	}
	if (!ret)
		ret = get_u32_range(p, o, "port", "port", 1, 65535, &port);
	if (!ret)
		ret = get_str(p, o, "protocol", true, &proto);
	if (ret)
		return ret;
	s.port = port;
	if (!strcmp(proto, "tcp")) {
		s.proto = IPPROTO_TCP;
	} else if (!strcmp(proto, "udp")) {
		s.proto = IPPROTO_UDP;
	} else {
		seterr(p->err, p->errlen,
		       "%s: field \"protocol\": \"%s\" is not \"tcp\" or "
		       "\"udp\"",
		       p->where, proto);
		return -EINVAL;
	}
	snprintf(p->where + strlen(p->where),
		 sizeof(p->where) - strlen(p->where), " (vpc %u, %s:%u/%s)",
		 s.vpc, xvpc_fmt_ip(s.vip, ip), s.port, proto);
	pub = get_field(p, o, "public", json_type_boolean, false, &ret);
	if (ret)
		return ret;
	s.public = pub && json_object_get_boolean(pub);
	hc = get_field(p, o, "health_check", json_type_object, false, &ret);
	if (ret)
		return ret;
	if (hc) {
		ret = parse_hc(p, hc, &s.hc);
		if (ret)
			return ret;
	}
	arr = get_field(p, o, "backends", json_type_array, true, &ret);
	if (!arr)
		return ret;
	s.n_backends = json_object_array_length(arr);
	if (s.n_backends > XVPC_STATE_LB_BACKENDS_MAX) {
		seterr(p->err, p->errlen,
		       "%s: field \"backends\": %u backends, at most %d",
		       p->where, s.n_backends, XVPC_STATE_LB_BACKENDS_MAX);
		return -EINVAL;
	}
	if (s.n_backends) {
		s.backends = calloc(s.n_backends, sizeof(*s.backends));
		if (!s.backends)
			return -ENOMEM;
	}
	snprintf(where, sizeof(where), "%s", p->where);
	for (__u32 j = 0; j < s.n_backends && !ret; j++) {
		struct json_object *b = json_object_array_get_idx(arr, j);

		if (json_object_get_type(b) != json_type_object) {
			seterr(p->err, p->errlen,
			       "%s: field \"backends[%u]\": must be an object",
			       where, j);
			ret = -EINVAL;
			break;
		}
		snprintf(p->where, sizeof(p->where), "%.60s backends[%u]",
			 where, j);
		ret = parse_backend(p, b, j, &s.backends[j]);
	}
	if (!ret)
		ret = xvpc_state_add_svc(st, &s);
	free(s.backends);
	return ret;
}

typedef int (*parse_fn)(struct pctx *p, struct json_object *o,
			struct xvpc_state *st);

static int parse_array(struct pctx *p, struct json_object *top,
		       const char *name, parse_fn fn, struct xvpc_state *st)
{
	struct json_object *arr;
	size_t n;
	int ret;

	snprintf(p->where, sizeof(p->where), "state");
	arr = get_field(p, top, name, json_type_array, true, &ret);
	if (!arr)
		return ret;
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(arr, i);

		snprintf(p->where, sizeof(p->where), "%s[%zu]", name, i);
		if (json_object_get_type(o) != json_type_object) {
			seterr(p->err, p->errlen, "%s: must be an object",
			       p->where);
			return -EINVAL;
		}
		ret = fn(p, o, st);
		if (ret)
			return ret;
	}
	return 0;
}

int xvpc_state_from_json(struct json_object *top, __be32 node_ip,
			 struct xvpc_state **out, char *err, size_t errlen)
{
	struct pctx p = {.err = err, .errlen = errlen};
	struct json_object *rev;
	struct xvpc_state *st;
	int ret;

	st = xvpc_state_new();
	if (!st) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(p.where, sizeof(p.where), "state");
	if (json_object_get_type(top) != json_type_object) {
		ret = -EINVAL;
		seterr(err, errlen, "state: the document must be an object");
		goto out;
	}
	ret = check_fields(&p, top, top_fields);
	if (ret)
		goto out;
	rev = get_field(&p, top, "revision", json_type_int, false, &ret);
	if (ret)
		goto out;
	if (rev) {
		errno = 0;
		int64_t r = json_object_get_int64(rev);

		if (errno || r < 0) {
			ret = -EINVAL;
			seterr(err, errlen,
			       "state: field \"revision\": must be 0 .. "
			       "2^63-1");
			goto out;
		}
		st->revision = r;
	}
	ret = parse_array(&p, top, "vpcs", parse_vpc, st);
	if (!ret)
		ret = parse_array(&p, top, "subnets", parse_subnet, st);
	if (!ret)
		ret = parse_array(&p, top, "endpoints", parse_ep, st);
	if (!ret && json_object_object_get_ex(top, "services", NULL))
		ret = parse_array(&p, top, "services", parse_svc, st);
	if (!ret)
		ret = parse_nodes(&p, top, st);
	if (ret == -ENOMEM)
		seterr(err, errlen, "out of memory while parsing");
	if (!ret)
		ret = xvpc_state_validate(st, node_ip, err, errlen);
	if (!ret) {
		*out = st;
		st = NULL;
	}
out:
	xvpc_state_free(st);
	return ret;
}

int xvpc_state_parse(const char *json, size_t len, __be32 node_ip,
		     struct xvpc_state **out, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *top = NULL;
	enum json_tokener_error jerr;
	int ret;

	if (len > INT32_MAX) {
		seterr(err, errlen, "state: document too large");
		return -EFBIG;
	}
	tok = json_tokener_new();
	if (!tok) {
		ret = -ENOMEM;
		seterr(err, errlen, "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	top = json_tokener_parse_ex(tok, json, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!top || jerr != json_tokener_success) {
		ret = -EINVAL;
		seterr(err, errlen, "state: not valid JSON at offset %zu: %s",
		       json_tokener_get_parse_end(tok),
		       jerr == json_tokener_continue
			       ? "unexpected end of document"
			       : json_tokener_error_desc(jerr));
		goto out;
	}
	/* Only whitespace may follow the document. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (json[i] != ' ' && json[i] != '\n' && json[i] != '\t' &&
		    json[i] != '\r' && json[i] != '\0') {
			ret = -EINVAL;
			seterr(err, errlen,
			       "state: trailing data at offset %zu after the "
			       "document",
			       i);
			goto out;
		}
	}
	ret = xvpc_state_from_json(top, node_ip, out, err, errlen);
out:
	json_object_put(top);
	if (tok)
		json_tokener_free(tok);
	return ret;
}

int xvpc_state_parse_file(const char *path, __be32 node_ip,
			  struct xvpc_state **out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;
	int ret;

	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		seterr(err, errlen, "%s: cannot open: %s", path,
		       strerror(-ret));
		return ret;
	}
	for (;;) {
		if (len + 65536 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 1 << 20;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				seterr(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		ret = -EIO;
		seterr(err, errlen, "%s: read error", path);
		goto out;
	}
	ret = xvpc_state_parse(buf, len, node_ip, out, err, errlen);
	if (ret && err && errlen) {
		char tmp[XVPC_STATE_ERR_LEN];

		snprintf(tmp, sizeof(tmp), "%s", err);
		seterr(err, errlen, "%s: %s", path, tmp);
	}
out:
	free(buf);
	fclose(f);
	return ret;
}

/* ---- serializing ---- */

static struct json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int put_arr(struct json_object *arr, struct json_object *o)
{
	if (!o)
		return -ENOMEM;
	if (json_object_array_add(arr, o)) {
		json_object_put(o);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *ip_array(const __be32 *ips, size_t n)
{
	struct json_object *arr = json_object_new_array_ext(n);
	char ip[XVPC_IP_STRLEN];

	for (size_t i = 0; arr && i < n; i++) {
		if (put_arr(arr, jstr(xvpc_fmt_ip(ips[i], ip)))) {
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}

/* A push-mode VPC serializes as before learning mode existed. */
static struct json_object *vpc_json(const struct xvpc_state_vpc *v)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (add(o, "id", json_object_new_int64(v->id)) ||
	    (v->name[0] && add(o, "name", jstr(v->name))) ||
	    (v->mode == XVPC_MODE_LEARN &&
	     (add(o, "mode", jstr("learn")) ||
	      add(o, "gateways", ip_array(v->gateways, v->n_gateways))))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *subnet_json(const struct xvpc_state_subnet *s)
{
	char cidr[XVPC_CIDR_STRLEN], ip[XVPC_IP_STRLEN], mac[XVPC_MAC_STRLEN];
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	xvpc_fmt_mac(s->gw_mac, mac);
	if (add(o, "vpc", json_object_new_int64(s->vpc)) ||
	    add(o, "cidr", jstr(xvpc_fmt_cidr(s->net, s->plen, cidr))) ||
	    add(o, "vni", json_object_new_int64(s->vni)) ||
	    add(o, "gateway_ip", jstr(xvpc_fmt_ip(s->gw_ip, ip))) ||
	    add(o, "gateway_mac", jstr(mac))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *ep_json(const struct xvpc_state_ep *e)
{
	char ip[XVPC_IP_STRLEN], nip[XVPC_IP_STRLEN], mac[XVPC_MAC_STRLEN];
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	xvpc_fmt_mac(e->mac, mac);
	if (add(o, "vpc", json_object_new_int64(e->vpc)) ||
	    add(o, "ip", jstr(xvpc_fmt_ip(e->ip, ip))) ||
	    add(o, "mac", jstr(mac)) ||
	    add(o, "node_ip", jstr(xvpc_fmt_ip(e->node_ip, nip))) ||
	    (e->ifname[0] && add(o, "ifname", jstr(e->ifname)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *hc_json(const struct xvpc_state_hc *hc)
{
	static const char *const types[] = {"none", "tcp", "http"};
	struct json_object *o = json_object_new_object();
	int err;

	if (!o)
		return NULL;
	err = add(o, "type",
		  jstr(types[hc->type <= XVPC_HC_HTTP ? hc->type : 0]));
	if (!err && hc->type != XVPC_HC_NONE)
		err = add(o, "interval_ms",
			  json_object_new_int64(hc->interval_ms)) ||
		      add(o, "timeout_ms",
			  json_object_new_int64(hc->timeout_ms)) ||
		      add(o, "rise", json_object_new_int64(hc->rise)) ||
		      add(o, "fall", json_object_new_int64(hc->fall));
	if (!err && hc->type == XVPC_HC_HTTP)
		err = add(o, "path", jstr(hc->path)) ||
		      add(o, "expect_status",
			  json_object_new_int64(hc->expect_status));
	if (err) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *svc_json(const struct xvpc_state_svc *s)
{
	char ip[XVPC_IP_STRLEN];
	struct json_object *o = json_object_new_object(), *arr;

	if (!o)
		return NULL;
	arr = json_object_new_array_ext(s->n_backends);
	if ((s->id && add(o, "id", json_object_new_int64(s->id))) ||
	    add(o, "vpc", json_object_new_int64(s->vpc)) ||
	    add(o, "vip", jstr(xvpc_fmt_ip(s->vip, ip))) ||
	    add(o, "port", json_object_new_int64(s->port)) ||
	    add(o, "protocol", jstr(proto_name(s->proto))) ||
	    add(o, "backends", arr))
		goto fail;
	for (__u32 j = 0; j < s->n_backends; j++) {
		const struct xvpc_state_lb_backend *b = &s->backends[j];
		struct json_object *bo = json_object_new_object();

		if (put_arr(arr, bo) ||
		    add(bo, "ip", jstr(xvpc_fmt_ip(b->ip, ip))) ||
		    (b->port &&
		     add(bo, "port", json_object_new_int64(b->port))) ||
		    add(bo, "weight", json_object_new_int64(b->weight)) ||
		    (b->down &&
		     add(bo, "healthy", json_object_new_boolean(false))))
			goto fail;
	}
	if (s->hc.type != XVPC_HC_NONE &&
	    add(o, "health_check", hc_json(&s->hc)))
		goto fail;
	if (s->public && add(o, "public", json_object_new_boolean(true)))
		goto fail;
	return o;
fail:
	json_object_put(o);
	return NULL;
}

int xvpc_state_to_json(const struct xvpc_state *st, bool pretty, char **out)
{
	struct json_object *top, *vpcs, *subnets, *eps;
	const char *s;
	int ret = -ENOMEM;

	top = json_object_new_object();
	if (!top)
		return -ENOMEM;
	vpcs = json_object_new_array_ext(st->n_vpcs);
	subnets = json_object_new_array_ext(st->n_subnets);
	eps = json_object_new_array_ext(st->n_eps);
	if (!vpcs || !subnets || !eps) {
		json_object_put(vpcs);
		json_object_put(subnets);
		json_object_put(eps);
		goto out;
	}
	if (add(top, "revision", json_object_new_int64(st->revision)) ||
	    add(top, "vpcs", vpcs) || add(top, "subnets", subnets) ||
	    add(top, "endpoints", eps))
		goto out;
	for (size_t i = 0; i < st->n_vpcs; i++)
		if (put_arr(vpcs, vpc_json(&st->vpcs[i])))
			goto out;
	for (size_t i = 0; i < st->n_subnets; i++)
		if (put_arr(subnets, subnet_json(&st->subnets[i])))
			goto out;
	for (size_t i = 0; i < st->n_eps; i++)
		if (put_arr(eps, ep_json(&st->eps[i])))
			goto out;
	if (st->n_nodes && add(top, "nodes", ip_array(st->nodes, st->n_nodes)))
		goto out;
	if (st->n_svcs) {
		struct json_object *svcs =
			json_object_new_array_ext(st->n_svcs);

		if (add(top, "services", svcs))
			goto out;
		for (size_t i = 0; i < st->n_svcs; i++)
			if (put_arr(svcs, svc_json(&st->svcs[i])))
				goto out;
	}
	s = json_object_to_json_string_ext(
		top, JSON_C_TO_STRING_NOSLASHESCAPE |
			     (pretty ? JSON_C_TO_STRING_PRETTY |
					       JSON_C_TO_STRING_SPACED
				     : JSON_C_TO_STRING_PLAIN));
	*out = s ? strdup(s) : NULL;
	if (*out)
		ret = 0;
out:
	json_object_put(top);
	return ret;
}
