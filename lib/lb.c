// SPDX-License-Identifier: GPL-2.0-only
/* Load balancer services in the datapath maps: see lb.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "lb.h"
#include "log.h"
#include "netutil.h"

#define ID_LEN 24 /* "255.255.255.255:65535" */

static const char *svc_str(const struct xvpc_lb_svc_key *k, char *buf,
			   size_t len)
{
	char ip[XVPC_IP_STRLEN];

	snprintf(buf, len, "VPC %u %s:%u/%s", k->vpc_id,
		 xvpc_fmt_ip(k->vip, ip), ntohs(k->port),
		 k->proto == IPPROTO_TCP ? "tcp" : "udp");
	return buf;
}

int xvpc_lb_validate(const struct xvpc_lb_svc_key *key,
		     const struct xvpc_lb_backend_spec *be, __u32 n, __u32 m)
{
	char ip[XVPC_IP_STRLEN];

	if (!key || (n && !be))
		return -EINVAL;
	if (key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP) {
		pr_err("service protocol %u: only TCP (6) and UDP (17)",
		       key->proto);
		return -EINVAL;
	}
	if (!key->vip || !key->port) {
		pr_err("a service needs a VIP and a port");
		return -EINVAL;
	}
	if (key->pad) {
		pr_err("service key padding must be zero");
		return -EINVAL;
	}
	if (m && !xvpc_maglev_size_ok(m)) {
		pr_err("table size %u is not one of the Maglev primes", m);
		return -EINVAL;
	}
	if (n > (m ? m : XVPC_MAGLEV_M_DEFAULT)) {
		pr_err("%u backends do not fit a table of %u entries", n,
		       m ? m : XVPC_MAGLEV_M_DEFAULT);
		return -EINVAL;
	}
	for (__u32 i = 0; i < n; i++) {
		__be16 pi = be[i].port ? be[i].port : key->port;

		if (!be[i].ip) {
			pr_err("backend %u has no address", i);
			return -EINVAL;
		}
		for (__u32 j = 0; j < i; j++) {
			__be16 pj = be[j].port ? be[j].port : key->port;

			if (be[j].ip == be[i].ip && pj == pi) {
				pr_err("backend %s:%u is listed twice",
				       xvpc_fmt_ip(be[i].ip, ip), ntohs(pi));
				return -EINVAL;
			}
		}
	}
	return 0;
}

int xvpc_lb_build_table(struct xvpc_maglev_ctx *ctx,
			const struct xvpc_lb_backend_spec *be, __u32 n,
			__be16 svc_port, struct xvpc_lb_backend *table)
{
	__u32 m = xvpc_maglev_ctx_size(ctx), *idx = NULL;
	struct xvpc_maglev_backend *mb = NULL;
	char(*ids)[ID_LEN] = NULL;
	int err = -ENOMEM;

	if (!n)
		return -ENOENT;
	mb = calloc(n, sizeof(*mb));
	ids = calloc(n, sizeof(*ids));
	idx = malloc(m * sizeof(*idx));
	if (!mb || !ids || !idx)
		goto out;
	for (__u32 i = 0; i < n; i++) {
		char ip[XVPC_IP_STRLEN];
		__be16 port = be[i].port ? be[i].port : svc_port;

		mb[i].id_len = snprintf(ids[i], ID_LEN, "%s:%u",
					xvpc_fmt_ip(be[i].ip, ip), ntohs(port));
		mb[i].id = ids[i];
		mb[i].weight = be[i].weight;
	}
	err = xvpc_maglev_build(ctx, mb, n, idx);
	if (err)
		goto out;
	for (__u32 k = 0; k < m; k++) {
		const struct xvpc_lb_backend_spec *b = &be[idx[k]];

		table[k] = (struct xvpc_lb_backend){
			.ip = b->ip,
			.port = b->port ? b->port : svc_port,
		};
	}
out:
	free(idx);
	free(ids);
	free(mb);
	return err;
}

__u32 xvpc_lb_flow_entry(const struct xvpc_lb_ct_key *f, __u32 m)
{
	return m ? xvpc_lb_flow_hash(f->src, f->dst, f->sport, f->dport,
				     f->proto) %
			       m
		 : 0;
}

/* A new inner array holding @table; its fd in *fd. */
static int table_map(const struct xvpc_lb_backend *table, __u32 m, int *fd)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_INNER_MAP);
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 *keys = malloc(m * sizeof(*keys)), count = m;
	int err = 0, mfd;

	if (!keys)
		return -ENOMEM;
	for (__u32 k = 0; k < m; k++)
		keys[k] = k;
	mfd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "xvpc_lb_table", sizeof(__u32),
			     sizeof(*table), m, &mo);
	if (mfd < 0) {
		err = -errno;
		pr_err("cannot create a lookup table of %u entries: %s", m,
		       strerror(-err));
		goto out;
	}
	if (bpf_map_update_batch(mfd, keys, table, &count, &bo)) {
		err = -errno;
		pr_err("cannot fill the lookup table: %s", strerror(-err));
		close(mfd);
		goto out;
	}
	*fd = mfd;
out:
	free(keys);
	return err;
}

/* Slots in use, as a bitmap of XVPC_LB_MAX_SERVICES bits; *n services. */
static int used_slots(int svc_fd, __u8 *used, __u32 *n, __u32 *public)
{
	struct xvpc_lb_svc_key key, next, *prev = NULL;
	struct xvpc_lb_svc v;

	memset(used, 0, XVPC_LB_MAX_SERVICES / 8);
	*n = 0;
	*public = 0;
	while (!bpf_map_get_next_key(svc_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(svc_fd, &key, &v))
			continue; /* deleted meanwhile */
		if (v.slot < XVPC_LB_MAX_SERVICES)
			used[v.slot / 8] |= 1 << (v.slot % 8);
		(*n)++;
		*public += key.vpc_id == XVPC_LB_PUBLIC;
	}
	return errno == ENOENT ? 0 : -errno;
}

static int free_slot(const __u8 *used, __u32 *slot)
{
	for (__u32 s = 0; s < XVPC_LB_MAX_SERVICES; s++) {
		if (!(used[s / 8] & (1 << (s % 8)))) {
			*slot = s;
			return 0;
		}
	}
	return -ENOSPC;
}

/* config.services = number of services: 0 turns the datapath part off;
 * config.public_services: 0 turns the underlay ingress lookup off. */
static int write_count(struct xvpc_dp *dp)
{
	int cfg_fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CONFIG);
	__u8 used[XVPC_LB_MAX_SERVICES / 8];
	struct xvpc_lb_config cfg = {};
	__u32 zero = 0, n, public;
	int err;

	err = used_slots(xvpc_dp_map_fd(dp, XVPC_M_LB_SERVICES), used, &n,
			 &public);
	if (err)
		return err;
	if (bpf_map_lookup_elem(cfg_fd, &zero, &cfg))
		return -errno;
	cfg.services = n;
	cfg.public_services = public;
	return bpf_map_update_elem(cfg_fd, &zero, &cfg, 0) ? -errno : 0;
}

static int install_table(struct xvpc_dp *dp, const struct xvpc_lb_svc_key *key,
			 const struct xvpc_lb_backend_spec *be, __u32 n,
			 __u32 m, __u32 slot)
{
	struct xvpc_maglev_ctx *ctx = NULL;
	struct xvpc_lb_backend *table;
	int err, fd = -1;

	table = malloc(m * sizeof(*table));
	if (!table)
		return -ENOMEM;
	err = xvpc_maglev_ctx_new(m, &ctx);
	if (!err)
		err = xvpc_lb_build_table(ctx, be, n, key->port, table);
	if (!err)
		err = table_map(table, m, &fd);
	if (!err && bpf_map_update_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_TABLES),
					&slot, &fd, 0)) {
		err = -errno;
		pr_err("cannot install the lookup table in slot %u: %s", slot,
		       strerror(-err));
	}
	if (fd >= 0)
		close(fd); /* the outer map holds it */
	xvpc_maglev_ctx_free(ctx);
	free(table);
	return err;
}

static __u32 weighted(const struct xvpc_lb_backend_spec *be, __u32 n)
{
	__u32 w = 0;

	for (__u32 i = 0; i < n; i++)
		w += be[i].weight > 0;
	return w;
}

static int set_service(struct xvpc_dp *dp, const struct xvpc_lb_svc_key *key,
		       __u32 backend_vpc, const struct xvpc_lb_backend_spec *be,
		       __u32 n, __u32 m)
{
	int svc_fd = xvpc_dp_map_fd(dp, XVPC_M_LB_SERVICES);
	int tbl_fd = xvpc_dp_map_fd(dp, XVPC_M_LB_TABLES);
	__u8 used[XVPC_LB_MAX_SERVICES / 8];
	struct xvpc_lb_svc old, v = {};
	__u32 count, public;
	bool exists;
	char name[64];
	int err;

	svc_str(key, name, sizeof(name));
	exists = !bpf_map_lookup_elem(svc_fd, key, &old);
	v.m = m;
	v.backends = weighted(be, n);
	v.backend_vpc = backend_vpc;
	/* Same slot when the size stays: the new table replaces the old one
	 * in one update. A new size gets a new slot, so that no packet reads
	 * a table with the other size's modulus. */
	if (exists && old.m == m) {
		v.slot = old.slot;
	} else {
		err = used_slots(svc_fd, used, &count, &public);
		if (!err)
			err = free_slot(used, &v.slot);
		if (err) {
			pr_err("cannot add service %s: %s", name,
			       err == -ENOSPC ? "all service slots are taken"
					      : strerror(-err));
			return err;
		}
	}
	if (v.backends) {
		err = install_table(dp, key, be, n, m, v.slot);
		if (err)
			return err;
	}
	if (bpf_map_update_elem(svc_fd, key, &v, 0)) {
		err = -errno;
		pr_err("cannot write service %s: %s", name, strerror(-err));
		if (!exists || v.slot != old.slot)
			bpf_map_delete_elem(tbl_fd, &v.slot);
		return err;
	}
	/* A table nobody reads any more: no backends now, or a moved slot. */
	if (!v.backends)
		bpf_map_delete_elem(tbl_fd, &v.slot);
	if (exists && old.slot != v.slot)
		bpf_map_delete_elem(tbl_fd, &old.slot);
	pr_debug("service %s: %u backends, slot %u, m %u", name, v.backends,
		 v.slot, m);
	return write_count(dp);
}

int xvpc_lb_set_service(struct xvpc_dp *dp, const struct xvpc_lb_svc_key *key,
			const struct xvpc_lb_backend_spec *be, __u32 n, __u32 m)
{
	int err;

	if (!m)
		m = XVPC_MAGLEV_M_DEFAULT;
	err = xvpc_lb_validate(key, be, n, m);
	if (err)
		return err;
	if (key->vpc_id == XVPC_LB_PUBLIC) {
		pr_err("VPC id %u is reserved for public services "
		       "(xvpc_lb_set_public_service())",
		       XVPC_LB_PUBLIC);
		return -EINVAL;
	}
	return set_service(dp, key, 0, be, n, m);
}

/* ---- north-south: public services and xvpc_lb_ns ---- */

static struct xvpc_lb_ns_key ns_key(__u32 vpc, const struct xvpc_lb_svc_key *s,
				    const struct xvpc_lb_backend_spec *b)
{
	struct xvpc_lb_ns_key k = {
		.vpc_id = vpc,
		.ip = b->ip,
		.port = b->port ? b->port : s->port,
		.proto = s->proto,
	};
	return k;
}

/* Every backend either has no reverse entry or one naming this service:
 * a backend ip:port serves one public VIP:port, or its replies could not
 * be translated unambiguously. */
static int ns_check(int fd, const struct xvpc_lb_svc_key *key, __u32 vpc,
		    const struct xvpc_lb_backend_spec *be, __u32 n)
{
	char ip[XVPC_IP_STRLEN], vip[XVPC_IP_STRLEN];

	for (__u32 i = 0; i < n; i++) {
		struct xvpc_lb_ns_key k = ns_key(vpc, key, &be[i]);
		struct xvpc_lb_ns_vip v;

		if (bpf_map_lookup_elem(fd, &k, &v))
			continue;
		if (v.vip == key->vip && v.port == key->port)
			continue;
		pr_err("backend %s:%u of VPC %u already serves public VIP "
		       "%s:%u: a backend serves one public VIP",
		       xvpc_fmt_ip(k.ip, ip), ntohs(k.port), vpc,
		       xvpc_fmt_ip(v.vip, vip), ntohs(v.port));
		return -EEXIST;
	}
	return 0;
}

static bool ns_listed(const struct xvpc_lb_ns_key *k, __u32 vpc,
		      const struct xvpc_lb_svc_key *key,
		      const struct xvpc_lb_backend_spec *be, __u32 n)
{
	for (__u32 i = 0; i < n; i++) {
		struct xvpc_lb_ns_key w = ns_key(vpc, key, &be[i]);

		if (!memcmp(&w, k, sizeof(w)))
			return true;
	}
	return false;
}

/* Removes the reverse entries of @key that are not among @be (all of them
 * with n = 0). */
static void ns_prune(int fd, const struct xvpc_lb_svc_key *key, __u32 vpc,
		     const struct xvpc_lb_backend_spec *be, __u32 n)
{
	struct xvpc_lb_ns_key k, next, *prev = NULL;
	struct xvpc_lb_ns_vip v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (!bpf_map_lookup_elem(fd, &next, &v) &&
		    next.proto == key->proto && v.vip == key->vip &&
		    v.port == key->port && !ns_listed(&next, vpc, key, be, n)) {
			bpf_map_delete_elem(fd, &next);
			continue;
		}
		k = next;
		prev = &k;
	}
}

static int ns_write(int fd, const struct xvpc_lb_svc_key *key, __u32 vpc,
		    const struct xvpc_lb_backend_spec *be, __u32 n)
{
	struct xvpc_lb_ns_vip v = {.vip = key->vip, .port = key->port};
	int err;

	for (__u32 i = 0; i < n; i++) {
		struct xvpc_lb_ns_key k = ns_key(vpc, key, &be[i]);

		if (bpf_map_update_elem(fd, &k, &v, 0)) {
			err = -errno;
			pr_err("cannot write the public VIP of a backend: %s",
			       strerror(-err));
			return err;
		}
	}
	return 0;
}

int xvpc_lb_set_public_service(struct xvpc_dp *dp,
			       const struct xvpc_lb_svc_key *key,
			       __u32 backend_vpc,
			       const struct xvpc_lb_backend_spec *be, __u32 n,
			       __u32 m)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_NS);
	int err;

	if (!m)
		m = XVPC_MAGLEV_M_DEFAULT;
	err = xvpc_lb_validate(key, be, n, m);
	if (err)
		return err;
	if (key->vpc_id != XVPC_LB_PUBLIC || backend_vpc == XVPC_LB_PUBLIC) {
		pr_err("a public service has key VPC %u and a backend VPC "
		       "other than %u",
		       XVPC_LB_PUBLIC, XVPC_LB_PUBLIC);
		return -EINVAL;
	}
	err = ns_check(fd, key, backend_vpc, be, n);
	if (err)
		return err;
	/* Reverse entries first: a backend's node can translate the replies
	 * of a flow as soon as an LB node (this one included) sends it. */
	err = ns_write(fd, key, backend_vpc, be, n);
	if (!err)
		err = set_service(dp, key, backend_vpc, be, n, m);
	if (err)
		return err;
	ns_prune(fd, key, backend_vpc, be, n);
	return 0;
}

/* Conntrack entries of a service: forward ones are keyed by its VIP and
 * port, reverse ones translate back to them. */
static bool ct_of(const struct xvpc_lb_svc_key *s,
		  const struct xvpc_lb_ct_key *k, const struct xvpc_lb_ct *v)
{
	if (k->proto != s->proto)
		return false;
	/* north-south reverse entries are keyed in the backend's VPC */
	if (v->dir == XVPC_LB_CT_REV && (v->flags & XVPC_LB_CT_F_NS))
		return s->vpc_id == XVPC_LB_PUBLIC && v->nat.ip == s->vip &&
		       v->nat.port == s->port;
	if (k->vpc_id != s->vpc_id)
		return false;
	if (v->dir == XVPC_LB_CT_FWD)
		return k->dst == s->vip && k->dport == s->port;
	return v->nat.ip == s->vip && v->nat.port == s->port;
}

static int flush_ct(struct xvpc_dp *dp, const struct xvpc_lb_svc_key *s)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CT);
	struct xvpc_lb_ct_key key, next, *prev = NULL;
	struct xvpc_lb_ct v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (!bpf_map_lookup_elem(fd, &next, &v) &&
		    ct_of(s, &next, &v)) {
			/* Deleting the current key restarts the walk from its
			 * successor, which get_next_key(prev) still gives. */
			bpf_map_delete_elem(fd, &next);
			continue;
		}
		key = next;
		prev = &key;
	}
	return 0;
}

int xvpc_lb_delete_service(struct xvpc_dp *dp,
			   const struct xvpc_lb_svc_key *key)
{
	int svc_fd = xvpc_dp_map_fd(dp, XVPC_M_LB_SERVICES);
	struct xvpc_lb_svc v;
	char name[64];
	int err;

	if (!key)
		return -EINVAL;
	if (bpf_map_lookup_elem(svc_fd, key, &v))
		return -errno;
	if (bpf_map_delete_elem(svc_fd, key)) {
		err = -errno;
		pr_err("cannot delete service %s: %s",
		       svc_str(key, name, sizeof(name)), strerror(-err));
		return err;
	}
	bpf_map_delete_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_TABLES), &v.slot);
	if (key->vpc_id == XVPC_LB_PUBLIC)
		ns_prune(xvpc_dp_map_fd(dp, XVPC_M_LB_NS), key, v.backend_vpc,
			 NULL, 0);
	flush_ct(dp, key);
	return write_count(dp);
}

int xvpc_lb_list_services(struct xvpc_dp *dp, struct xvpc_lb_service_info *out,
			  size_t max, size_t *count)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_SERVICES);
	struct xvpc_lb_svc_key key, next, *prev = NULL;
	struct xvpc_lb_svc v;
	size_t n = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		if (n < max) {
			out[n].key = key;
			out[n].svc = v;
		}
		n++;
	}
	if (errno != ENOENT)
		return -errno;
	*count = n;
	return 0;
}

int xvpc_lb_set_timeouts(struct xvpc_dp *dp, __u64 tcp_ns, __u64 closing_ns,
			 __u64 udp_ns)
{
	int fd = xvpc_dp_map_fd(dp, XVPC_M_LB_CONFIG);
	struct xvpc_lb_config cfg = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return -errno;
	cfg.tcp_timeout_ns = tcp_ns;
	cfg.closing_timeout_ns = closing_ns;
	cfg.udp_timeout_ns = udp_ns;
	return bpf_map_update_elem(fd, &zero, &cfg, 0) ? -errno : 0;
}
