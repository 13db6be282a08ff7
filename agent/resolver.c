// SPDX-License-Identifier: GPL-2.0-only
/* Resolver of learning-mode misses: cache, coalescing, batches, install. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "learn.h"
#include "log.h"
#include "netutil.h"
#include "resolver.h"

#define DEF_POS_TTL   (60ull * 1000000000ull)
#define DEF_NEG_TTL   (1000000000ull)
#define DEF_CACHE_MAX 65536
#define DEF_BATCH_MAX 256
#define DEF_BATCH_NS  1000000ull
#define DEF_PENDING   65536
#define ARP_WAITERS   4
#define MAX_ERR_LOGS  5

const double xvpc_rsv_lat_bounds[XVPC_RSV_LAT_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005,
	0.01,	0.025,	 0.05,	 0.1,	0.5,   1.0,
};

struct cache_val {
	__u64 expires_ns;
	__u8 mac[6];
	__u8 found;
	__u8 pad;
	__be32 node_ip;
	__u32 vni;
};

struct arp_waiter {
	__u32 ifindex;
	__be32 src_ip;
};

enum pend_override {
	PEND_ASKED = 0, /* take the controller's answer */
	PEND_MOVED,	/* a notice came meanwhile: take it instead */
	PEND_GONE,	/* deleted meanwhile: install nothing */
};

struct pend_val {
	__u64 t0;
	__u32 n_arp;
	__u32 override; /* enum pend_override */
	struct arp_waiter arp[ARP_WAITERS];
	struct cache_val moved; /* PEND_MOVED */
};

struct xvpc_resolver {
	struct xvpc_resolver_opts o;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started;
	bool stop;
	struct xvpc_mapbe *cache;   /* key -> struct cache_val */
	struct xvpc_mapbe *pending; /* key -> struct pend_val */
	struct xvpc_ep_key *queue;  /* ring of keys not sent yet */
	size_t qhead, qn;
	__u64 qfirst_ns; /* when the oldest queued was queued */
	__u32 *vpcs;	 /* sorted learn-mode VPC ids (not a gateway) */
	size_t n_vpcs;
	int sock; /* AF_PACKET, opened on first use */
	struct xvpc_ep_key *batch;
	struct xvpc_rsv_answer *answers;
	struct xvpc_rsv_stats st;
	unsigned int err_logs;
};

static __u64 real_now(void)
{
	return xvpc_learn_now_ns();
}

static __u64 r_now(struct xvpc_resolver *r)
{
	return r->o.now ? r->o.now(r->o.ctx) : real_now();
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static bool learn_vpc(struct xvpc_resolver *r, __u32 vpc)
{
	return bsearch(&vpc, r->vpcs, r->n_vpcs, sizeof(*r->vpcs), cmp_u32);
}

/* ---- ARP replies ---- */

void xvpc_build_arp_reply(__u8 *f, const __u8 mac[6], __be32 ip,
			  const __u8 to_mac[6], __be32 to_ip)
{
	static const __u8 arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 2};

	memcpy(f, to_mac, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	memcpy(f + 14, arp_hdr, sizeof(arp_hdr));
	memcpy(f + 22, mac, 6);
	memcpy(f + 28, &ip, 4);
	memcpy(f + 32, to_mac, 6);
	memcpy(f + 38, &to_ip, 4);
}

static int packet_send(struct xvpc_resolver *r, __u32 ifindex,
		       const void *frame, size_t len)
{
	struct sockaddr_ll sa = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ARP),
		.sll_ifindex = (int)ifindex,
		.sll_halen = 6,
	};

	if (r->sock < 0) {
		/* Protocol 0: a send-only socket, it receives nothing. */
		r->sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (r->sock < 0)
			return -errno;
	}
	memcpy(sa.sll_addr, frame, 6);
	if (sendto(r->sock, frame, len, 0, (struct sockaddr *)&sa, sizeof(sa)) <
	    0)
		return -errno;
	return 0;
}

/* Answer the VM behind w that asked who has k: only within its VNI (a
 * target in another subnet is reached through the gateway, which the
 * datapath answers for). */
static void arp_reply(struct xvpc_resolver *r, const struct arp_waiter *w,
		      const struct xvpc_ep_key *k, const struct cache_val *c)
{
	__u8 frame[XVPC_ARP_FRAME_LEN];
	struct xvpc_iface b;
	char ip[XVPC_IP_STRLEN];
	__u32 key = w->ifindex;
	int err;

	if (!r->o.ifaces || r->o.ifaces->ops->lookup(r->o.ifaces, &key, &b))
		return;
	if (b.vpc_id != k->vpc_id || b.vni != c->vni)
		return;
	xvpc_build_arp_reply(frame, c->mac, k->ip, b.mac, b.ip);
	err = r->o.send_frame
		      ? r->o.send_frame(r->o.ctx, w->ifindex, frame,
					sizeof(frame))
		      : packet_send(r, w->ifindex, frame, sizeof(frame));
	if (!err) {
		r->st.arp_replies++;
		return;
	}
	r->st.arp_err++;
	if (r->err_logs++ < MAX_ERR_LOGS)
		pr_warn("resolver: ARP reply for %s into ifindex %u failed: %s",
			xvpc_fmt_ip(k->ip, ip), w->ifindex, strerror(-err));
}

/* ---- installing ---- */

static void lat_add(struct xvpc_resolver *r, __u64 ns)
{
	double s = ns / 1e9;
	int i = 0;

	while (i < XVPC_RSV_LAT_BUCKETS && s > xvpc_rsv_lat_bounds[i])
		i++;
	r->st.lat_bucket[i]++;
	r->st.lat_count++;
	r->st.lat_sum_ns += ns;
}

/* Under mu. */
static int install(struct xvpc_resolver *r, const struct xvpc_ep_key *k,
		   const struct cache_val *c, __u64 now)
{
	struct xvpc_mapbe *m = r->o.learned;
	struct xvpc_learned old, v;
	int err;

	xvpc_learn_value(&v, c->mac, c->node_ip, c->vni, now);
	if (!m->ops->lookup(m, k, &old)) {
		v.created_ns = old.created_ns;
		v.hits = old.hits;
	}
	err = m->ops->update(m, k, &v);
	if (err) {
		char ip[XVPC_IP_STRLEN];

		r->st.install_err++;
		if (r->err_logs++ < MAX_ERR_LOGS)
			pr_err("resolver: installing vpc %u %s into %s "
			       "failed: %s",
			       k->vpc_id, xvpc_fmt_ip(k->ip, ip), m->name,
			       strerror(-err));
		return err;
	}
	r->st.installed++;
	return 0;
}

static void cache_put(struct xvpc_resolver *r, const struct xvpc_ep_key *k,
		      const struct cache_val *c);

/* Under mu: the answer for k arrived (a is NULL when the request failed:
 * nothing is cached, the next miss asks again). */
static void answered(struct xvpc_resolver *r, const struct xvpc_ep_key *k,
		     const struct xvpc_rsv_answer *a, __u64 now)
{
	struct cache_val c = {0};
	struct pend_val p;
	bool waited = !r->pending->ops->lookup(r->pending, k, &p);

	if (waited)
		r->pending->ops->delete (r->pending, k);
	if (!a || (waited && p.override == PEND_GONE))
		return;
	if (waited && p.override == PEND_MOVED) {
		/* The answer may predate the move: the notice wins. */
		c = p.moved;
		c.expires_ns = now + r->o.pos_ttl_ns;
		r->st.found++;
	} else if (a->found && a->node_ip && a->node_ip != r->o.node_ip) {
		memcpy(c.mac, a->mac, 6);
		c.found = 1;
		c.node_ip = a->node_ip;
		c.vni = a->vni;
		c.expires_ns = now + r->o.pos_ttl_ns;
		r->st.found++;
	} else {
		c.expires_ns = now + r->o.neg_ttl_ns;
		r->st.missing++;
	}
	cache_put(r, k, &c);
	if (!c.found || install(r, k, &c, now))
		return;
	if (waited) {
		lat_add(r, now > p.t0 ? now - p.t0 : 0);
		if (r->o.installed)
			r->o.installed(r->o.ctx, k,
				       now > p.t0 ? now - p.t0 : 0);
		for (__u32 i = 0; i < p.n_arp; i++)
			arp_reply(r, &p.arp[i], k, &c);
	}
}

/* ---- cache ---- */

struct evict {
	struct xvpc_ep_key *keys;
	size_t n, cap;
	__u64 now;
	bool live; /* second pass: take entries that did not expire */
};

static int evict_cb(const void *key, const void *val, void *arg)
{
	const struct cache_val *c = val;
	struct evict *e = arg;

	if (e->n == e->cap || (c->expires_ns > e->now) != e->live)
		return 0;
	e->keys[e->n++] = *(const struct xvpc_ep_key *)key;
	return 0;
}

/* Full cache: drop what expired, and if that is less than an eighth,
 * arbitrary entries (the hash order) up to an eighth. */
static void cache_evict(struct xvpc_resolver *r)
{
	struct xvpc_mapbe *m = r->cache;
	struct evict e = {.now = r_now(r), .cap = m->max_entries};

	e.keys = malloc(e.cap * sizeof(*e.keys));
	if (!e.keys)
		return;
	m->ops->iterate(m, evict_cb, &e);
	if (e.n < e.cap / 8 + 1) {
		e.live = true;
		e.cap = e.cap / 8 + 1;
		m->ops->iterate(m, evict_cb, &e);
	}
	for (size_t i = 0; i < e.n; i++)
		m->ops->delete (m, &e.keys[i]);
	free(e.keys);
}

static void cache_put(struct xvpc_resolver *r, const struct xvpc_ep_key *k,
		      const struct cache_val *c)
{
	if (r->cache->ops->update(r->cache, k, c) != -E2BIG)
		return;
	cache_evict(r);
	r->cache->ops->update(r->cache, k, c);
}

static int new_cache(struct xvpc_resolver *r)
{
	return xvpc_mapbe_mem_new("resolver_cache", sizeof(struct xvpc_ep_key),
				  sizeof(struct cache_val), r->o.cache_max,
				  &r->cache);
}

/* Under mu. */
static void cache_flush_locked(struct xvpc_resolver *r)
{
	struct xvpc_mapbe *old = r->cache;

	r->cache = NULL;
	if (new_cache(r)) {
		r->cache = old; /* keep the old one rather than none */
		return;
	}
	xvpc_mapbe_destroy(old);
}

void xvpc_resolver_flush_cache(struct xvpc_resolver *r)
{
	pthread_mutex_lock(&r->mu);
	cache_flush_locked(r);
	pthread_mutex_unlock(&r->mu);
}

void xvpc_resolver_changed(struct xvpc_resolver *r, const struct xvpc_ep_key *k,
			   const struct xvpc_ep *ep)
{
	struct cache_val c;
	struct pend_val p;

	pthread_mutex_lock(&r->mu);
	if (!r->pending->ops->lookup(r->pending, k, &p)) {
		/* In flight: its answer may be older than this. */
		p.override = ep ? PEND_MOVED : PEND_GONE;
		if (ep) {
			memset(&p.moved, 0, sizeof(p.moved));
			memcpy(p.moved.mac, ep->mac, 6);
			p.moved.found = 1;
			p.moved.node_ip = ep->node_ip;
			p.moved.vni = ep->vni;
		}
		r->pending->ops->update(r->pending, k, &p);
	}
	if (!r->cache->ops->lookup(r->cache, k, &c)) {
		if (ep) {
			memcpy(c.mac, ep->mac, 6);
			c.found = 1;
			c.node_ip = ep->node_ip;
			c.vni = ep->vni;
			r->cache->ops->update(r->cache, k, &c);
		} else {
			r->cache->ops->delete (r->cache, k);
		}
	}
	pthread_mutex_unlock(&r->mu);
}

/* ---- misses ---- */

static void queue_push(struct xvpc_resolver *r, const struct xvpc_ep_key *k)
{
	size_t cap = r->o.pending_max;

	if (!r->qn)
		r->qfirst_ns = r_now(r);
	r->queue[(r->qhead + r->qn) % cap] = *k;
	r->qn++;
	r->st.queued++;
	if (r->qn == 1 || r->qn == r->o.batch_max)
		pthread_cond_signal(&r->cv);
}

static void add_waiter(struct pend_val *p, const struct xvpc_event *ev)
{
	if (ev->reason != XVPC_DROP_ARP_UNKNOWN || p->n_arp >= ARP_WAITERS)
		return;
	for (__u32 i = 0; i < p->n_arp; i++)
		if (p->arp[i].ifindex == ev->ifindex)
			return;
	p->arp[p->n_arp].ifindex = ev->ifindex;
	p->arp[p->n_arp].src_ip = ev->src_ip;
	p->n_arp++;
}

static void on_miss_locked(struct xvpc_resolver *r, const struct xvpc_event *ev)
{
	struct xvpc_ep_key k = {.vpc_id = ev->vpc_id, .ip = ev->dst_ip};
	__u64 now = r_now(r);
	struct cache_val c;
	struct pend_val p;

	if (!r->cache->ops->lookup(r->cache, &k, &c) && c.expires_ns > now) {
		struct arp_waiter w = {ev->ifindex, ev->src_ip};

		if (!c.found) {
			r->st.neg_hits++;
			return;
		}
		r->st.cache_hits++;
		if (!install(r, &k, &c, now) &&
		    ev->reason == XVPC_DROP_ARP_UNKNOWN)
			arp_reply(r, &w, &k, &c);
		return;
	}
	if (!r->pending->ops->lookup(r->pending, &k, &p)) {
		r->st.coalesced++;
		add_waiter(&p, ev);
		r->pending->ops->update(r->pending, &k, &p);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.t0 = now;
	add_waiter(&p, ev);
	if (r->qn >= r->o.pending_max ||
	    r->pending->ops->update(r->pending, &k, &p)) {
		r->st.dropped++;
		return;
	}
	queue_push(r, &k);
}

void xvpc_resolver_on_event(struct xvpc_resolver *r,
			    const struct xvpc_event *ev)
{
	pthread_mutex_lock(&r->mu);
	r->st.misses++;
	if (ev->type != XVPC_EV_MISS || !r->o.transport ||
	    !learn_vpc(r, ev->vpc_id))
		r->st.ignored++;
	else
		on_miss_locked(r, ev);
	pthread_mutex_unlock(&r->mu);
}

/* ---- batches ---- */

/* Under mu: move up to batch_max queued keys into r->batch. */
static size_t take_batch(struct xvpc_resolver *r)
{
	size_t n = r->qn < r->o.batch_max ? r->qn : r->o.batch_max;

	for (size_t i = 0; i < n; i++) {
		r->batch[i] = r->queue[r->qhead];
		r->qhead = (r->qhead + 1) % r->o.pending_max;
	}
	r->qn -= n;
	if (r->qn)
		r->qfirst_ns = r_now(r);
	return n;
}

/* Called with mu held; drops it around the request. */
static int send_batch(struct xvpc_resolver *r, size_t n)
{
	struct xvpc_rsv_transport *t = r->o.transport;
	__u64 now;
	int err;

	r->st.requests++;
	memset(r->answers, 0, n * sizeof(*r->answers));
	pthread_mutex_unlock(&r->mu);
	err = t->resolve(t->ctx, r->batch, n, r->answers);
	pthread_mutex_lock(&r->mu);
	now = r_now(r);
	if (err) {
		r->st.failures++;
		if (r->err_logs++ < MAX_ERR_LOGS)
			pr_warn("resolver: resolving %zu addresses failed: %s",
				n, strerror(-err));
	}
	for (size_t i = 0; i < n; i++)
		answered(r, &r->batch[i], err ? NULL : &r->answers[i], now);
	return err ? err : (int)n;
}

static bool batch_due(struct xvpc_resolver *r, bool force)
{
	return r->qn && (force || r->qn >= r->o.batch_max ||
			 r_now(r) - r->qfirst_ns >= r->o.batch_ns);
}

int xvpc_resolver_poll(struct xvpc_resolver *r, bool force)
{
	int total = 0, err = 0;

	pthread_mutex_lock(&r->mu);
	while (r->o.transport && batch_due(r, force)) {
		int n = send_batch(r, take_batch(r));

		if (n < 0)
			err = n;
		else
			total += n;
	}
	pthread_mutex_unlock(&r->mu);
	return err ? err : total;
}

/* Wait until the oldest queued query is due (its time is on r's clock,
 * the wait on the real one). */
static void wait_due(struct xvpc_resolver *r)
{
	__u64 now = r_now(r), due = r->qfirst_ns + r->o.batch_ns;
	__u64 ns = real_now() + (due > now ? due - now : 0);
	struct timespec ts = {.tv_sec = ns / 1000000000ull,
			      .tv_nsec = ns % 1000000000ull};

	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void *worker(void *arg)
{
	struct xvpc_resolver *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		if (!r->qn) {
			pthread_cond_wait(&r->cv, &r->mu);
			continue;
		}
		if (!batch_due(r, false)) {
			wait_due(r);
			continue;
		}
		send_batch(r, take_batch(r));
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---- life cycle ---- */

int xvpc_resolver_set_state(struct xvpc_resolver *r,
			    const struct xvpc_state *st)
{
	__u32 *ids = calloc(st->n_vpcs + 1, sizeof(*ids));
	bool left = false;
	size_t n = 0;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < st->n_vpcs; i++) {
		struct xvpc_vpc v;

		if (xvpc_learn_vpc_value(&st->vpcs[i], r->o.node_ip, &v) &&
		    !(v.flags & XVPC_VPC_GATEWAY))
			ids[n++] = st->vpcs[i].id;
	}
	qsort(ids, n, sizeof(*ids), cmp_u32);
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n_vpcs && !left; i++)
		left = !bsearch(&r->vpcs[i], ids, n, sizeof(*ids), cmp_u32);
	free(r->vpcs);
	r->vpcs = ids;
	r->n_vpcs = n;
	if (left)
		cache_flush_locked(r);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static void set_defaults(struct xvpc_resolver_opts *o)
{
	o->pos_ttl_ns = o->pos_ttl_ns ?: DEF_POS_TTL;
	o->neg_ttl_ns = o->neg_ttl_ns ?: DEF_NEG_TTL;
	o->cache_max = o->cache_max ?: DEF_CACHE_MAX;
	o->batch_max = o->batch_max ?: DEF_BATCH_MAX;
	o->batch_ns = o->batch_ns ?: DEF_BATCH_NS;
	o->pending_max = o->pending_max ?: DEF_PENDING;
}

int xvpc_resolver_new(const struct xvpc_resolver_opts *o,
		      struct xvpc_resolver **out)
{
	struct xvpc_resolver *r;
	pthread_condattr_t ca;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r || !o->learned ||
	    o->learned->value_size != sizeof(struct xvpc_learned)) {
		/* The transport is ours whatever happens. */
		if (o->transport && o->transport->destroy)
			o->transport->destroy(o->transport->ctx);
		free(o->transport);
		err = r ? -EINVAL : -ENOMEM;
		free(r);
		return err;
	}
	r->o = *o;
	set_defaults(&r->o);
	r->sock = -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	r->queue = calloc(r->o.pending_max, sizeof(*r->queue));
	r->batch = calloc(r->o.batch_max, sizeof(*r->batch));
	r->answers = calloc(r->o.batch_max, sizeof(*r->answers));
	err = r->queue && r->batch && r->answers ? 0 : -ENOMEM;
	if (!err)
		err = new_cache(r);
	if (!err)
		err = xvpc_mapbe_mem_new(
			"resolver_pending", sizeof(struct xvpc_ep_key),
			sizeof(struct pend_val), r->o.pending_max, &r->pending);
	if (!err && r->o.transport && !r->o.no_thread) {
		err = -pthread_create(&r->thread, NULL, worker, r);
		r->started = !err;
	}
	if (err) {
		xvpc_resolver_free(r); /* also the transport */
		return err;
	}
	*out = r;
	return 0;
}

void xvpc_resolver_free(struct xvpc_resolver *r)
{
	struct xvpc_rsv_transport *t;

	if (!r)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->mu);
		r->stop = true;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
	}
	t = r->o.transport;
	if (t && t->destroy)
		t->destroy(t->ctx);
	free(t);
	xvpc_mapbe_destroy(r->cache);
	xvpc_mapbe_destroy(r->pending);
	if (r->sock >= 0)
		close(r->sock);
	free(r->queue);
	free(r->batch);
	free(r->answers);
	free(r->vpcs);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

void xvpc_resolver_stats(struct xvpc_resolver *r, struct xvpc_rsv_stats *out)
{
	pthread_mutex_lock(&r->mu);
	*out = r->st;
	out->cached = r->cache->ops->count(r->cache);
	out->pending = r->pending->ops->count(r->pending);
	pthread_mutex_unlock(&r->mu);
}

double xvpc_rsv_stats_quantile(const struct xvpc_rsv_stats *s, double q)
{
	__u64 want, acc = 0;

	if (!s->lat_count)
		return -1;
	want = (__u64)(q * s->lat_count);
	if (want >= s->lat_count)
		want = s->lat_count - 1;
	for (int i = 0; i < XVPC_RSV_LAT_BUCKETS; i++) {
		acc += s->lat_bucket[i];
		if (acc > want)
			return xvpc_rsv_lat_bounds[i];
	}
	return 2 * xvpc_rsv_lat_bounds[XVPC_RSV_LAT_BUCKETS - 1];
}
