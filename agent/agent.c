// SPDX-License-Identifier: GPL-2.0-only
/* Agent core: datapath, map backends, reconciling, link events. */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "health_report.h"
#include "log.h"
#include "netutil.h"

static const enum xvpc_map_id rc_to_dp[XVPC_RC__COUNT] = {
	[XVPC_RC_VNIS] = XVPC_M_VNIS,
	[XVPC_RC_SUBNETS] = XVPC_M_SUBNETS,
	[XVPC_RC_ENDPOINTS] = XVPC_M_ENDPOINTS,
	[XVPC_RC_IFACES] = XVPC_M_IFACES,
};

static int dp_bind(void *ctx, int ifindex, const struct xvpc_iface *b)
{
	struct agent *a = ctx;
	char name[IF_NAMESIZE] = "?", ip[XVPC_IP_STRLEN];
	int err = xvpc_dp_bind_iface(a->dp, ifindex, b);

	if_indextoname(ifindex, name);
	if (err)
		pr_err("cannot bind %s (ifindex %d) to vpc %u %s: %s", name,
		       ifindex, b->vpc_id, xvpc_fmt_ip(b->ip, ip),
		       strerror(-err));
	else
		pr_info("bound %s (ifindex %d) to vpc %u %s", name, ifindex,
			b->vpc_id, xvpc_fmt_ip(b->ip, ip));
	return err;
}

static int dp_unbind(void *ctx, int ifindex)
{
	struct agent *a = ctx;
	int err = xvpc_dp_unbind_iface(a->dp, ifindex);

	if (err == -ENOENT || err == -ENODEV)
		err = 0;
	if (err)
		pr_err("cannot unbind ifindex %d: %s", ifindex, strerror(-err));
	else
		pr_info("unbound ifindex %d", ifindex);
	return err;
}

static int lb_set(void *ctx, const struct xvpc_lb_svc_key *key,
		  const struct xvpc_lb_backend_spec *be, __u32 n)
{
	struct agent *a = ctx;

	return xvpc_lb_set_service(a->dp, key, be, n, 0);
}

static int lb_set_public(void *ctx, const struct xvpc_lb_svc_key *key,
			 __u32 backend_vpc,
			 const struct xvpc_lb_backend_spec *be, __u32 n)
{
	struct agent *a = ctx;

	return xvpc_lb_set_public_service(a->dp, key, backend_vpc, be, n, 0);
}

static int lb_del(void *ctx, const struct xvpc_lb_svc_key *key)
{
	struct agent *a = ctx;

	return xvpc_lb_delete_service(a->dp, key);
}

static int lb_list(void *ctx, struct xvpc_lb_svc_key **keys, size_t *n)
{
	struct agent *a = ctx;
	struct xvpc_lb_service_info *info = NULL;
	size_t max = 64, count = 0;
	int err;

	for (;;) {
		free(info);
		info = calloc(max, sizeof(*info));
		if (!info)
			return -ENOMEM;
		err = xvpc_lb_list_services(a->dp, info, max, &count);
		if (err) {
			free(info);
			return err;
		}
		if (count <= max)
			break;
		max = count;
	}
	*keys = calloc(count + 1, sizeof(**keys));
	if (!*keys) {
		free(info);
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++)
		(*keys)[i] = info[i].key;
	*n = count;
	free(info);
	return 0;
}

/* ---- learning mode ---- */

static void learn_changed(void *ctx, const struct xvpc_ep_key *k,
			  const struct xvpc_ep *ep)
{
	struct agent *a = ctx;

	if (a->resolver)
		xvpc_resolver_changed(a->resolver, k, ep);
}

static void learn_flushed(void *ctx, __u32 vpc)
{
	struct agent *a = ctx;

	(void)vpc;
	if (a->resolver)
		xvpc_resolver_flush_cache(a->resolver);
}

static void rsv_on_event(void *ctx, const struct xvpc_event *ev)
{
	xvpc_resolver_on_event(ctx, ev);
}

/* Lost events are logged as by the default resolver. */
static void rsv_on_lost(void *ctx, int cpu, __u64 n)
{
	xvpc_default_resolver.on_lost(ctx, cpu, n);
}

static const struct xvpc_resolver_ops rsv_ops = {
	.on_event = rsv_on_event,
	.on_lost = rsv_on_lost,
};

int agent_learn_start(struct agent *a, struct xvpc_rsv_transport *transport)
{
	struct xvpc_resolver_opts o = {
		.node_ip = a->node_ip,
		.learned = a->maps.learned,
		.ifaces = a->maps.m[XVPC_RC_IFACES],
		.transport = transport,
	};
	int err;

	if (!a->maps.learned) {
		if (transport && transport->destroy)
			transport->destroy(transport->ctx);
		free(transport);
		return -ENOENT;
	}
	err = xvpc_resolver_new(&o, &a->resolver);
	if (err) {
		a->resolver = NULL;
		pr_err("cannot start the resolver: %s", strerror(-err));
		return err;
	}
	pthread_mutex_lock(&a->lock);
	if (a->state)
		xvpc_resolver_set_state(a->resolver, a->state);
	pthread_mutex_unlock(&a->lock);
	agent_events_init(&a->events, &rsv_ops, a->resolver);
	return 0;
}

void agent_learn_tick(struct agent *a, __u64 now_ms)
{
	long n;

	if (!a->maps.learned || now_ms < a->next_age_ms)
		return;
	a->next_age_ms = now_ms + AGENT_AGE_EVERY_MS;
	n = xvpc_learn_age(a->maps.learned, xvpc_learn_now_ns(),
			   (__u64)a->cfg->learn_idle_s * 1000000000ull,
			   &a->learn_hooks);
	pthread_mutex_lock(&a->lock);
	a->learn.sweeps++;
	if (n > 0)
		a->learn.aged += n;
	else if (n < 0)
		a->learn.failed++;
	pthread_mutex_unlock(&a->lock);
	if (n > 0)
		pr_info("learning: %ld entries idle for more than %u s "
			"deleted",
			n, a->cfg->learn_idle_s);
	else if (n < 0)
		pr_warn("learning: the aging sweep failed: %s",
			strerror((int)-n));
}

void agent_learn_forget(struct agent *a, const struct xvpc_ep_key *keys,
			size_t n)
{
	__u64 gone = 0;

	for (size_t i = 0; a->maps.learned && i < n; i++) {
		if (a->maps.learned->ops->delete (a->maps.learned, &keys[i]))
			continue;
		gone++;
		learn_changed(a, &keys[i], NULL);
	}
	for (size_t i = 0; a->resolver && i < n; i++)
		xvpc_resolver_changed(a->resolver, &keys[i], NULL);
	pthread_mutex_lock(&a->lock);
	a->learn.forgotten += gone;
	pthread_mutex_unlock(&a->lock);
	if (gone)
		pr_info("learning: %llu learned entries of deleted endpoints "
			"deleted",
			(unsigned long long)gone);
}

static int open_learn_maps(struct agent *a)
{
	static const enum xvpc_map_id ids[3] = {XVPC_M_VPCS, XVPC_M_NODES,
						XVPC_M_LEARNED};
	struct xvpc_mapbe **dst[3] = {&a->maps.vpcs, &a->maps.nodes,
				      &a->maps.learned};

	for (int i = 0; i < 3; i++) {
		int err = xvpc_mapbe_bpf_new(xvpc_dp_map_fd(a->dp, ids[i]),
					     xvpc_dp_map_name(ids[i]), dst[i]);

		if (err) {
			pr_err("cannot use map %s: %s",
			       xvpc_dp_map_name(ids[i]), strerror(-err));
			*dst[i] = NULL;
			return err;
		}
	}
	a->notices = xvpc_learn_notices_new();
	if (!a->notices)
		return -ENOMEM;
	a->learn_hooks.ctx = a;
	a->learn_hooks.changed = learn_changed;
	a->learn_hooks.flushed = learn_flushed;
	a->env.notices = a->notices;
	a->env.learn_hooks = &a->learn_hooks;
	return 0;
}

static const struct agent_lb_ops lb_ops = {
	.set = lb_set,
	.set_public = lb_set_public,
	.del = lb_del,
	.list = lb_list,
};

static bool lb_up(void *ctx, const struct xvpc_state_svc *s,
		  const struct xvpc_state_lb_backend *b)
{
	return agent_hc_up(ctx, s, b);
}

static int lb_sync_locked(struct agent *a)
{
	struct agent_lb_stats st;
	int err;

	if (!a->state)
		return 0;
	err = agent_lb_sync(a->lbsync, a->state, lb_up, a->hc, &st);
	if (err)
		a->lb_errors++;
	a->lb_last = st;
	if (st.added || st.changed || st.removed || st.failed)
		pr_info("load balancer: %llu services added, %llu replaced, "
			"%llu deleted, %llu unchanged, %llu failed; %llu "
			"backends down",
			(unsigned long long)st.added,
			(unsigned long long)st.changed,
			(unsigned long long)st.removed,
			(unsigned long long)st.unchanged,
			(unsigned long long)st.failed,
			(unsigned long long)st.backends_down);
	return err;
}

/* Health checker thread: a backend went down or came back. */
static void on_health_change(void *ctx)
{
	struct agent *a = ctx;

	pthread_mutex_lock(&a->lock);
	lb_sync_locked(a);
	agent_hr_changed(a->hr);
	pthread_mutex_unlock(&a->lock);
}

/* The reporter's source (its thread): this node's local backends as
 * probed here; -EAGAIN until there is a state and each has a verdict. */
static int hr_source(void *ctx, struct agent_hc_local **out, size_t *n)
{
	struct agent *a = ctx;
	struct agent_hc_health *h = NULL;
	size_t m = 0, k = 0;
	int err = -EAGAIN;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&a->lock);
	if (a->state && a->hc)
		err = agent_hc_local_health(a->hc, a->state, &h, &m);
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; !err && i < m; i++)
		if (!h[i].checked)
			err = -EAGAIN;
	if (!err && m) {
		*out = calloc(m, sizeof(**out));
		err = *out ? 0 : -ENOMEM;
	}
	for (size_t i = 0; !err && i < m; i++)
		if (h[i].svc_id)
			(*out)[k++] = (struct agent_hc_local){
				.lb = h[i].svc_id,
				.addr = h[i].ip,
				.port = h[i].port ?: h[i].svc_port,
				.up = h[i].up,
			};
	*n = k;
	free(h);
	return err;
}

int agent_report_start(struct agent *a, const struct agent_hr_opts *o)
{
	struct agent_hr_opts ro = *o;
	struct agent_hr *hr;
	int err;

	ro.source = hr_source;
	ro.source_ctx = a;
	err = agent_hr_start(&ro, &hr);
	if (err)
		return err;
	pthread_mutex_lock(&a->lock);
	a->hr = hr;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* The probe path of local VPC backends (docs/loadbalancer.md, "Health
 * checks"): the probe address on lo, and in the datapath's config so a VM's
 * answer goes up the stack. The kernel takes the larger of the `all` and
 * the interface's rp_filter: with `all` set, the answers (from addresses
 * the node has no route to) would be dropped and every local backend would
 * look dead, so the path stays off. Failing, the agent runs without it
 * (local VPC backends are then not probed). */
static void probe_start(struct agent *a)
{
	const struct agent_config *cfg = a->cfg;
	struct agent_hc_probe p = {.node_ip = a->node_ip};
	char ip[XVPC_IP_STRLEN];
	int rpf, lo, err = 0;

	if (cfg->probe_ip) {
		rpf = agent_get_rp_filter("all");
		lo = if_nametoindex("lo");
		if (rpf > 0) {
			pr_warn("health: net.ipv4.conf.all.rp_filter is %d: "
				"VMs' "
				"answers to probes would be dropped; set it to "
				"0 to probe local backends",
				rpf);
			err = -EPERM;
		} else if (!lo) {
			err = -ENODEV;
		} else {
			err = agent_nl_addr(lo, cfg->probe_ip, true);
		}
		if (!err)
			err = xvpc_dp_set_probe(a->dp, cfg->probe_ip,
						cfg->probe_port_min,
						cfg->probe_port_max);
		if (err) {
			pr_warn("health: no probe path (address %s): %s; VMs "
				"of this node that are backends are not probed",
				xvpc_fmt_ip(cfg->probe_ip, ip), strerror(-err));
			xvpc_dp_set_probe(a->dp, 0, 0, 0);
		} else {
			a->probe_on = true;
			p.probe_ip = cfg->probe_ip;
			p.port_min = cfg->probe_port_min;
			p.port_max = cfg->probe_port_max;
			pr_info("health: probing local backends from %s, ports "
				"%u-%u",
				xvpc_fmt_ip(cfg->probe_ip, ip),
				cfg->probe_port_min, cfg->probe_port_max);
		}
	} else {
		xvpc_dp_set_probe(a->dp, 0, 0, 0);
	}
	agent_hc_set_probe(a->hc, &p);
}

/* Clean shutdown: the probe address goes, and with it the datapath's
 * passage to it. */
static void probe_stop(struct agent *a)
{
	int lo = if_nametoindex("lo");

	if (!a->probe_on)
		return;
	if (a->dp)
		xvpc_dp_set_probe(a->dp, 0, 0, 0);
	if (lo)
		agent_nl_addr(lo, a->cfg->probe_ip, false);
	a->probe_on = false;
}

int agent_open(struct agent *a, const struct agent_config *cfg, __be32 node_ip)
{
	struct xvpc_dp_opts opts = {
		.pin_dir = cfg->pin_dir,
		.underlay_ifname = cfg->underlay[0] ? cfg->underlay : NULL,
		.mode = cfg->mode,
		.node_ip = node_ip,
	};
	int err;

	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->node_ip = node_ip;
	pthread_mutex_init(&a->lock, NULL);
	agent_events_init(&a->events, NULL, a);
	err = xvpc_dp_open(&opts, &a->dp);
	if (err) {
		pr_err("cannot open the datapath (pin dir %s, underlay %s): %s",
		       cfg->pin_dir, cfg->underlay, strerror(-err));
		a->dp = NULL;
		return err;
	}
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		err = xvpc_mapbe_bpf_new(xvpc_dp_map_fd(a->dp, rc_to_dp[i]),
					 xvpc_dp_map_name(rc_to_dp[i]),
					 &a->maps.m[i]);
		if (err) {
			pr_err("cannot use map %s: %s",
			       xvpc_dp_map_name(rc_to_dp[i]), strerror(-err));
			agent_close(a);
			return err;
		}
	}
	err = open_learn_maps(a);
	if (err) {
		agent_close(a);
		return err;
	}
	a->env.node_ip = node_ip;
	a->env.ctx = a;
	a->env.bind = dp_bind;
	a->env.unbind = dp_unbind;
	a->cache = xvpc_rc_cache_new();
	if (!a->cache) {
		agent_close(a);
		return -ENOMEM;
	}
	a->env.cache = a->cache;
	a->lbsync = agent_lb_sync_new(&lb_ops, a);
	if (!a->lbsync) {
		agent_close(a);
		return -ENOMEM;
	}
	err = agent_hc_start(on_health_change, a, &a->hc);
	if (err) {
		a->hc = NULL;
		agent_close(a);
		return err;
	}
	probe_start(a);
	return 0;
}

void agent_close(struct agent *a)
{
	agent_events_stop(&a->events);
	xvpc_resolver_free(a->resolver);
	a->resolver = NULL;
	xvpc_mapbe_destroy(a->maps.vpcs);
	xvpc_mapbe_destroy(a->maps.nodes);
	xvpc_mapbe_destroy(a->maps.learned);
	a->maps.vpcs = a->maps.nodes = a->maps.learned = NULL;
	xvpc_learn_notices_free(a->notices);
	a->notices = NULL;
	/* The reporter first: its source reads the checker. */
	agent_hr_stop(a->hr);
	a->hr = NULL;
	agent_hc_stop(a->hc);
	a->hc = NULL;
	probe_stop(a);
	agent_lb_sync_free(a->lbsync);
	a->lbsync = NULL;
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		xvpc_mapbe_destroy(a->maps.m[i]);
		a->maps.m[i] = NULL;
	}
	xvpc_state_free(a->state);
	a->state = NULL;
	xvpc_rc_cache_free(a->cache);
	a->cache = NULL;
	a->env.cache = NULL;
	if (a->dp)
		xvpc_dp_close(a->dp);
	a->dp = NULL;
	pthread_mutex_destroy(&a->lock);
}

static int reconcile_locked(struct agent *a)
{
	struct xvpc_rc_result res;
	int err;

	err = xvpc_reconcile(&a->maps, &a->env, a->state, &res);
	xvpc_rc_log_result(&res);
	/* Services after the endpoints they point at. */
	if (a->hc && agent_hc_set(a->hc, a->state))
		pr_warn("health: out of memory updating the probed backends");
	agent_hr_changed(a->hr); /* the set of local backends may change */
	if (lb_sync_locked(a) && !err)
		err = -EIO;
	a->rc.runs++;
	a->rc.last_ns = res.duration_ns;
	a->rc.sum_ns += res.duration_ns;
	a->rc.pending = res.pending;
	a->rc.revision = a->state->revision;
	a->rc.last_err = err;
	a->learn.moved += res.learn.moved;
	a->learn.forgotten += res.learn.forgotten;
	a->learn.flushed += res.learn.flushed;
	a->learn.failed += res.learn.failed;
	a->learn.notices = res.notices;
	if (a->resolver && xvpc_resolver_set_state(a->resolver, a->state))
		pr_warn("resolver: out of memory taking the new state");
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		a->rc.added[i] += res.maps[i].added;
		a->rc.changed[i] += res.maps[i].changed;
		a->rc.removed[i] += res.maps[i].removed;
		a->rc.failed[i] += res.maps[i].failed;
	}
	if (err) {
		a->rc.errors++;
		if (err == -ENOSPC)
			a->rc.full++;
		pr_err("reconcile of revision %llu incomplete: %s",
		       (unsigned long long)a->state->revision, strerror(-err));
	}
	return err;
}

int agent_apply(struct agent *a, struct xvpc_state *st)
{
	int err;

	pthread_mutex_lock(&a->lock);
	xvpc_state_free(a->state);
	a->state = st;
	err = reconcile_locked(a);
	pthread_mutex_unlock(&a->lock);
	return err;
}

int agent_resync(struct agent *a, bool reread)
{
	int err = 0;

	pthread_mutex_lock(&a->lock);
	if (reread) {
		xvpc_rc_cache_invalidate(a->cache);
		agent_lb_sync_invalidate(a->lbsync);
	}
	a->resync_wanted = false;
	if (a->state)
		err = reconcile_locked(a);
	pthread_mutex_unlock(&a->lock);
	return err;
}

void agent_on_link(void *ctx, const struct agent_link_event *e)
{
	struct agent *a = ctx;
	struct xvpc_iface b;
	__u32 key = e->ifindex;
	int fd = xvpc_dp_map_fd(a->dp, XVPC_M_IFACES);

	if (!e->deleted) {
		/* A pending endpoint may now have its interface. */
		if (__atomic_load_n(&a->rc.pending, __ATOMIC_RELAXED))
			a->resync_wanted = true;
		return;
	}
	if (bpf_map_lookup_elem(fd, &key, &b))
		return; /* not ours */
	pr_info("interface %s (ifindex %d) disappeared: unbinding it",
		e->ifname[0] ? e->ifname : "?", e->ifindex);
	dp_unbind(a, e->ifindex);
	pthread_mutex_lock(&a->lock);
	xvpc_rc_cache_invalidate(a->cache);
	a->rc.unbound_gone++;
	pthread_mutex_unlock(&a->lock);
	/* Its endpoint entry still says LOCAL on a dead ifindex: the resync
	 * finds the interface missing and removes it. */
	a->resync_wanted = true;
}
