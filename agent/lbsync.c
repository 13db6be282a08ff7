// SPDX-License-Identifier: GPL-2.0-only
/* Load balancer services -> datapath, as a diff: see lbsync.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbsync.h"
#include "log.h"
#include "netutil.h"

struct applied {
	struct xvpc_lb_svc_key key;
	__u32 backend_vpc; /* public services */
	__u32 n;
	struct xvpc_lb_backend_spec *be;
};

struct agent_lb_sync {
	const struct agent_lb_ops *ops;
	void *ctx;
	struct applied *a;
	size_t n;
	bool valid;
};

struct agent_lb_sync *agent_lb_sync_new(const struct agent_lb_ops *ops,
					void *ctx)
{
	struct agent_lb_sync *ls = calloc(1, sizeof(*ls));

	if (ls) {
		ls->ops = ops;
		ls->ctx = ctx;
	}
	return ls;
}

static void free_applied(struct applied *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i].be);
	free(a);
}

void agent_lb_sync_invalidate(struct agent_lb_sync *ls)
{
	if (!ls)
		return;
	free_applied(ls->a, ls->n);
	ls->a = NULL;
	ls->n = 0;
	ls->valid = false;
}

void agent_lb_sync_free(struct agent_lb_sync *ls)
{
	agent_lb_sync_invalidate(ls);
	free(ls);
}

void agent_lb_key(const struct xvpc_state_svc *s, struct xvpc_lb_svc_key *k)
{
	memset(k, 0, sizeof(*k));
	k->vpc_id = s->public ? XVPC_LB_PUBLIC : s->vpc;
	k->vip = s->vip;
	k->port = htons(s->port);
	k->proto = s->proto;
}

static const struct applied *find_applied(const struct agent_lb_sync *ls,
					  const struct xvpc_lb_svc_key *k)
{
	for (size_t i = 0; i < ls->n; i++)
		if (!memcmp(&ls->a[i].key, k, sizeof(*k)))
			return &ls->a[i];
	return NULL;
}

static bool key_listed(const struct xvpc_lb_svc_key *keys, size_t n,
		       const struct xvpc_lb_svc_key *k)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(&keys[i], k, sizeof(*k)))
			return true;
	return false;
}

static const char *key_str(const struct xvpc_lb_svc_key *k, char *buf,
			   size_t len)
{
	char ip[XVPC_IP_STRLEN];

	if (k->vpc_id == XVPC_LB_PUBLIC)
		snprintf(buf, len, "public %s:%u/%s", xvpc_fmt_ip(k->vip, ip),
			 ntohs(k->port), k->proto == 6 ? "tcp" : "udp");
	else
		snprintf(buf, len, "vpc %u %s:%u/%s", k->vpc_id,
			 xvpc_fmt_ip(k->vip, ip), ntohs(k->port),
			 k->proto == 6 ? "tcp" : "udp");
	return buf;
}

/* A public service goes through set_public (its backends are endpoints of
 * its VPC; the key's VPC is XVPC_LB_PUBLIC). */
static int set_one(const struct agent_lb_sync *ls, const struct applied *w)
{
	if (w->key.vpc_id != XVPC_LB_PUBLIC)
		return ls->ops->set(ls->ctx, &w->key, w->be, w->n);
	if (!ls->ops->set_public)
		return -EOPNOTSUPP;
	return ls->ops->set_public(ls->ctx, &w->key, w->backend_vpc, w->be,
				   w->n);
}

int agent_lb_sync(struct agent_lb_sync *ls, const struct xvpc_state *st,
		  agent_lb_up_fn up, void *up_ctx, struct agent_lb_stats *res)
{
	struct xvpc_lb_svc_key *have = NULL;
	struct applied *next = NULL;
	size_t n_have = 0, n_next = 0;
	char ks[64];
	int ret = 0, err;

	memset(res, 0, sizeof(*res));
	err = ls->ops->list(ls->ctx, &have, &n_have);
	if (err) {
		pr_err("load balancer: cannot list the services in the maps: "
		       "%s",
		       strerror(-err));
		return err;
	}
	if (st->n_svcs) {
		next = calloc(st->n_svcs, sizeof(*next));
		if (!next) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < st->n_svcs; i++) {
		const struct xvpc_state_svc *s = &st->svcs[i];
		struct applied *w = &next[n_next];
		const struct applied *old;
		bool listed;

		agent_lb_key(s, &w->key);
		w->backend_vpc = s->public ? s->vpc : 0;
		if (s->n_backends) {
			w->be = calloc(s->n_backends, sizeof(*w->be));
			if (!w->be) {
				ret = -ENOMEM;
				goto out;
			}
		}
		for (__u32 j = 0; j < s->n_backends; j++) {
			const struct xvpc_state_lb_backend *b = &s->backends[j];

			/* Down as its own node reported it, or as probed
			 * from here. */
			if (b->down || (up && !up(up_ctx, s, b))) {
				res->backends_down++;
				continue;
			}
			w->be[w->n++] = (struct xvpc_lb_backend_spec){
				.ip = b->ip,
				.port = htons(b->port),
				.weight = b->weight,
			};
		}
		listed = key_listed(have, n_have, &w->key);
		old = ls->valid ? find_applied(ls, &w->key) : NULL;
		if (listed && old && old->n == w->n &&
		    old->backend_vpc == w->backend_vpc &&
		    (!w->n || !memcmp(old->be, w->be, w->n * sizeof(*w->be)))) {
			res->unchanged++;
			n_next++;
			continue;
		}
		err = set_one(ls, w);
		if (err) {
			pr_err("load balancer: cannot set service %s: %s",
			       key_str(&w->key, ks, sizeof(ks)),
			       strerror(-err));
			res->failed++;
			if (!ret)
				ret = err;
			free(w->be);
			w->be = NULL;
			w->n = 0;
			continue;
		}
		pr_info("load balancer: %s service %s with %u backends",
			listed ? "replaced" : "added",
			key_str(&w->key, ks, sizeof(ks)), w->n);
		if (listed)
			res->changed++;
		else
			res->added++;
		n_next++;
	}
	for (size_t i = 0; i < n_have; i++) {
		bool wanted = false;

		for (size_t j = 0; j < st->n_svcs && !wanted; j++) {
			struct xvpc_lb_svc_key k;

			agent_lb_key(&st->svcs[j], &k);
			wanted = !memcmp(&k, &have[i], sizeof(k));
		}
		if (wanted)
			continue;
		err = ls->ops->del(ls->ctx, &have[i]);
		if (err && err != -ENOENT) {
			pr_err("load balancer: cannot delete service %s: %s",
			       key_str(&have[i], ks, sizeof(ks)),
			       strerror(-err));
			res->failed++;
			if (!ret)
				ret = err;
			continue;
		}
		pr_info("load balancer: deleted service %s",
			key_str(&have[i], ks, sizeof(ks)));
		res->removed++;
	}
	/* What the maps hold now (failed sets are left out, so they are
	 * retried next time). */
	free_applied(ls->a, ls->n);
	ls->a = next;
	ls->n = n_next;
	ls->valid = true;
	next = NULL;
	n_next = 0;
out:
	if (next) {
		for (size_t i = 0; i < st->n_svcs; i++)
			free(next[i].be);
		free(next);
	}
	if (ret == -ENOMEM)
		agent_lb_sync_invalidate(ls);
	free(have);
	return ret;
}
