// SPDX-License-Identifier: GPL-2.0-only
/* The resolver of learning-mode misses: coalescing, batching, the cache
 * with its positive and negative lifetimes (injected clock), installation
 * into an in-memory xvpc_learned, ARP replies (injected sender), failures;
 * and its HTTP transport against a fake controller on loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>

#include "agent/learn.h"
#include "agent/mapbe.h"
#include "agent/resolve_http.h"
#include "agent/resolver.h"
#include "log.h"
#include "state.h"

#define NODE  "192.168.100.1"
#define OTHER "192.168.100.2"
#define MS    1000000ull
#define SEC   1000000000ull

struct fixture {
	struct xvpc_mapbe *learned, *ifaces;
	struct xvpc_resolver *r;
	__u64 now;
	/* fake transport */
	int calls;
	size_t last_n, total_keys;
	int fail;	/* next calls fail */
	bool not_found; /* answer everything missing */
	__be32 answer_node;
	/* fake sender */
	int frames;
	__u32 frame_if;
	__u8 frame[XVPC_ARP_FRAME_LEN];
	int installed;
};

static __u64 fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->now;
}

/* Endpoint 10.7.0.X has MAC 02:00:00:07:00:X, vni 700 (X >= 100: vni
 * 701, another subnet), on answer_node. */
static int fake_resolve(void *ctx, const struct xvpc_ep_key *keys, size_t n,
			struct xvpc_rsv_answer *out)
{
	struct fixture *f = ctx;

	f->calls++;
	f->last_n = n;
	f->total_keys += n;
	if (f->fail) {
		f->fail--;
		return -ECONNREFUSED;
	}
	for (size_t i = 0; i < n; i++) {
		__u8 x = ntohl(keys[i].ip) & 0xff;

		out[i].key = keys[i];
		if (f->not_found)
			continue;
		out[i].found = true;
		memcpy(out[i].mac, (__u8[]){2, 0, 0, 7, 0, x}, 6);
		out[i].node_ip = f->answer_node;
		out[i].vni = x >= 100 ? 701 : 700;
	}
	return 0;
}

static int fake_send(void *ctx, __u32 ifindex, const void *frame, size_t len)
{
	struct fixture *f = ctx;

	f->frames++;
	f->frame_if = ifindex;
	assert_int_equal(len, XVPC_ARP_FRAME_LEN);
	memcpy(f->frame, frame, len);
	return 0;
}

static void on_installed(void *ctx, const struct xvpc_ep_key *k, __u64 lat)
{
	(void)k;
	(void)lat;
	((struct fixture *)ctx)->installed++;
}

static int make(struct fixture *f, __u32 batch_max, __u32 cache_max,
		bool transport)
{
	struct xvpc_resolver_opts o = {
		.batch_max = batch_max,
		.cache_max = cache_max,
		.node_ip = inet_addr(NODE),
		.learned = f->learned,
		.ifaces = f->ifaces,
		.now = fake_now,
		.send_frame = fake_send,
		.installed = on_installed,
		.ctx = f,
		.no_thread = true,
	};
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_state_vpc v7 = {.id = 7,
				    .mode = XVPC_MODE_LEARN,
				    .n_gateways = 1,
				    .gateways = {inet_addr(OTHER)}};
	struct xvpc_state_vpc v8 = {.id = 8};
	struct xvpc_state_vpc v9 = {.id = 9,
				    .mode = XVPC_MODE_LEARN,
				    .n_gateways = 1,
				    .gateways = {inet_addr(NODE)}};
	int err;

	if (transport) {
		o.transport = calloc(1, sizeof(*o.transport));
		if (!o.transport)
			return -ENOMEM;
		o.transport->resolve = fake_resolve;
		o.transport->ctx = f;
	}
	err = xvpc_resolver_new(&o, &f->r);
	if (err || !st)
		return err ?: -ENOMEM;
	if (xvpc_state_add_vpc(st, &v7) || xvpc_state_add_vpc(st, &v8) ||
	    xvpc_state_add_vpc(st, &v9) ||
	    xvpc_state_validate(st, 0, NULL, 0)) {
		xvpc_state_free(st);
		return -EINVAL;
	}
	err = xvpc_resolver_set_state(f->r, st);
	xvpc_state_free(st);
	return err;
}

static int setup_common(void **state, __u32 batch_max, __u32 cache_max,
			bool transport)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct xvpc_iface b = {.vpc_id = 7,
			       .ip = inet_addr("10.7.0.10"),
			       .mac = {2, 0, 0, 7, 0, 10},
			       .vni = 700};
	__u32 key = 5;

	if (!f)
		return -1;
	*state = f;
	f->now = 1000 * SEC;
	f->answer_node = inet_addr(OTHER);
	if (xvpc_mapbe_mem_new("learned", sizeof(struct xvpc_ep_key),
			       sizeof(struct xvpc_learned), 1024,
			       &f->learned) ||
	    xvpc_mapbe_mem_new("ifaces", 4, sizeof(struct xvpc_iface), 16,
			       &f->ifaces) ||
	    f->ifaces->ops->update(f->ifaces, &key, &b))
		return -1;
	return make(f, batch_max, cache_max, transport) ? -1 : 0;
}

static int setup(void **state)
{
	return setup_common(state, 4, 0, true);
}

static int setup_small_cache(void **state)
{
	return setup_common(state, 4, 4, true);
}

static int setup_no_transport(void **state)
{
	return setup_common(state, 4, 0, false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	xvpc_resolver_free(f->r);
	xvpc_mapbe_destroy(f->learned);
	xvpc_mapbe_destroy(f->ifaces);
	free(f);
	return 0;
}

static void miss(struct fixture *f, __u32 vpc, const char *dst, __u32 reason)
{
	struct xvpc_event ev = {
		.type = XVPC_EV_MISS,
		.vpc_id = vpc,
		.src_ip = inet_addr("10.7.0.10"),
		.dst_ip = inet_addr(dst),
		.ifindex = 5,
		.reason = reason,
	};

	xvpc_resolver_on_event(f->r, &ev);
}

static struct xvpc_rsv_stats stats(struct fixture *f)
{
	struct xvpc_rsv_stats s;

	xvpc_resolver_stats(f->r, &s);
	return s;
}

static int learned(struct fixture *f, const char *ip, struct xvpc_learned *v)
{
	struct xvpc_ep_key k = {.vpc_id = 7, .ip = inet_addr(ip)};

	return f->learned->ops->lookup(f->learned, &k, v);
}

static void test_coalesce_and_install(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rsv_stats s;
	struct xvpc_learned v;

	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	miss(f, 7, "10.7.0.21", XVPC_DROP_NO_ENDPOINT);
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	s = stats(f);
	assert_int_equal(s.misses, 4);
	assert_int_equal(s.queued, 2);
	assert_int_equal(s.coalesced, 2);
	assert_int_equal(s.pending, 2);
	assert_int_equal(f->calls, 0); /* not due yet */

	f->now += 2 * MS;
	assert_int_equal(xvpc_resolver_poll(f->r, false), 2);
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->last_n, 2);
	s = stats(f);
	assert_int_equal(s.requests, 1);
	assert_int_equal(s.installed, 2);
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.lat_count, 2);
	assert_int_equal(s.lat_sum_ns, 4 * MS);
	assert_int_equal(f->installed, 2);

	assert_int_equal(learned(f, "10.7.0.20", &v), 0);
	assert_int_equal(v.ep.flags, XVPC_EP_LEARNED | XVPC_EP_RESOLVED);
	assert_int_equal(v.ep.node_ip, inet_addr(OTHER));
	assert_int_equal(v.ep.vni, 700);
	assert_int_equal(v.ep.mac[5], 20);
	assert_int_equal(v.created_ns, f->now);
	assert_int_equal(v.last_ns, f->now);
	assert_int_equal(v.hits, 0);
	assert_int_equal(v.ep.ifindex, 0);
}

static void test_batches(void **state)
{
	struct fixture *f = *state;
	char ip[32];

	for (int i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "10.7.0.%d", 20 + i);
		miss(f, 7, ip, XVPC_DROP_NO_ENDPOINT);
	}
	/* Two full batches of 4 go at once; the last 2 wait for 1 ms. */
	assert_int_equal(xvpc_resolver_poll(f->r, false), 8);
	assert_int_equal(f->calls, 2);
	assert_int_equal(f->last_n, 4);
	f->now += 999 * 1000;
	assert_int_equal(xvpc_resolver_poll(f->r, false), 0);
	f->now += 1000;
	assert_int_equal(xvpc_resolver_poll(f->r, false), 2);
	assert_int_equal(f->calls, 3);
	assert_int_equal(f->last_n, 2);
	assert_int_equal(stats(f).installed, 10);
	assert_int_equal(f->learned->ops->count(f->learned), 10);
}

static void test_cache_positive(void **state)
{
	struct fixture *f = *state;
	struct xvpc_ep_key k = {.vpc_id = 7, .ip = inet_addr("10.7.0.20")};
	struct xvpc_rsv_stats s;
	struct xvpc_learned v;

	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	/* The entry aged out or was evicted; a new miss within 60 s is
	 * answered from the cache at once. */
	f->learned->ops->delete (f->learned, &k);
	f->now += 59 * SEC;
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	s = stats(f);
	assert_int_equal(s.cache_hits, 1);
	assert_int_equal(s.queued, 1);
	assert_int_equal(learned(f, "10.7.0.20", &v), 0);
	assert_int_equal(v.created_ns, f->now);
	assert_int_equal(f->calls, 1);
	/* After 60 s it is asked again. */
	f->now += 2 * SEC;
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(stats(f).queued, 2);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	assert_int_equal(f->calls, 2);
}

static void test_cache_negative(void **state)
{
	struct fixture *f = *state;
	struct xvpc_learned v;
	struct xvpc_rsv_stats s;

	f->not_found = true;
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	s = stats(f);
	assert_int_equal(s.missing, 1);
	assert_int_equal(s.installed, 0);
	assert_int_not_equal(learned(f, "10.7.0.20", &v), 0);
	f->now += 900 * MS;
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(stats(f).neg_hits, 1);
	assert_int_equal(stats(f).queued, 1);
	/* After 1 s: asked again, and now it exists. */
	f->now += 200 * MS;
	f->not_found = false;
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(stats(f).queued, 2);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	assert_int_equal(learned(f, "10.7.0.20", &v), 0);
}

static void test_cache_bounded(void **state)
{
	struct fixture *f = *state;
	char ip[32];

	for (int i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "10.7.0.%d", 20 + i);
		miss(f, 7, ip, XVPC_DROP_NO_ENDPOINT);
	}
	assert_int_equal(xvpc_resolver_poll(f->r, true), 10);
	assert_true(stats(f).cached <= 4);
	assert_true(stats(f).cached >= 1);
	assert_int_equal(stats(f).installed, 10);

	/* Expired answers go first: 3 negative ones expire, then 3 new
	 * positive ones all fit. */
	xvpc_resolver_flush_cache(f->r);
	f->not_found = true;
	for (int i = 0; i < 3; i++) {
		snprintf(ip, sizeof(ip), "10.7.0.%d", 40 + i);
		miss(f, 7, ip, XVPC_DROP_NO_ENDPOINT);
	}
	assert_int_equal(xvpc_resolver_poll(f->r, true), 3);
	f->not_found = false;
	f->now += 2 * SEC;
	miss(f, 7, "10.7.0.50", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	assert_int_equal(stats(f).cached, 4); /* full */
	for (int i = 0; i < 3; i++) {
		snprintf(ip, sizeof(ip), "10.7.0.%d", 60 + i);
		miss(f, 7, ip, XVPC_DROP_NO_ENDPOINT);
	}
	assert_int_equal(xvpc_resolver_poll(f->r, true), 3);
	assert_int_equal(stats(f).cached, 4);
	/* 10.7.0.50 (live) was kept: answered from the cache. */
	miss(f, 7, "10.7.0.50", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(stats(f).cache_hits, 1);
}

static void test_changed_and_flush(void **state)
{
	struct fixture *f = *state;
	struct xvpc_ep_key k = {.vpc_id = 7, .ip = inet_addr("10.7.0.20")};
	struct xvpc_ep moved = {.mac = {2, 0, 0, 7, 1, 20},
				.node_ip = inet_addr("192.168.100.9"),
				.vni = 700};
	struct xvpc_learned v;

	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	/* A move notice: the cached answer follows it. */
	xvpc_resolver_changed(f->r, &k, &moved);
	f->learned->ops->delete (f->learned, &k);
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(learned(f, "10.7.0.20", &v), 0);
	assert_int_equal(v.ep.node_ip, inet_addr("192.168.100.9"));
	/* Deleted: no cached answer, asked again. */
	xvpc_resolver_changed(f->r, &k, NULL);
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(stats(f).queued, 2);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	xvpc_resolver_flush_cache(f->r);
	assert_int_equal(stats(f).cached, 0);
}

/* A notice while the address is being resolved: the answer may be older
 * than the move, so the notice wins; a delete installs nothing. */
static void test_changed_in_flight(void **state)
{
	struct fixture *f = *state;
	struct xvpc_ep_key k = {.vpc_id = 7, .ip = inet_addr("10.7.0.20")};
	struct xvpc_ep_key k2 = {.vpc_id = 7, .ip = inet_addr("10.7.0.21")};
	struct xvpc_ep moved = {.mac = {2, 0, 0, 7, 1, 20},
				.node_ip = inet_addr("192.168.100.9"),
				.vni = 700};
	struct xvpc_learned v;

	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	miss(f, 7, "10.7.0.21", XVPC_DROP_NO_ENDPOINT);
	xvpc_resolver_changed(f->r, &k, &moved);
	xvpc_resolver_changed(f->r, &k2, NULL);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 2);
	assert_int_equal(learned(f, "10.7.0.20", &v), 0);
	assert_int_equal(v.ep.node_ip, inet_addr("192.168.100.9"));
	assert_int_equal(v.ep.mac[4], 1);
	assert_int_not_equal(learned(f, "10.7.0.21", &v), 0);
	/* Nothing cached for the deleted one: asked again. */
	miss(f, 7, "10.7.0.21", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(stats(f).queued, 3);
}

static void test_ignored(void **state)
{
	struct fixture *f = *state;
	struct xvpc_event other = {.type = 9, .vpc_id = 7};

	miss(f, 8, "10.8.0.20", XVPC_DROP_NO_ENDPOINT); /* push mode */
	miss(f, 9, "10.9.0.20", XVPC_DROP_NO_ENDPOINT); /* we are its gw */
	miss(f, 5, "10.5.0.20", XVPC_DROP_NO_ENDPOINT); /* unknown VPC */
	xvpc_resolver_on_event(f->r, &other);
	assert_int_equal(stats(f).ignored, 4);
	assert_int_equal(stats(f).queued, 0);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 0);
	assert_int_equal(f->calls, 0);
}

static void test_no_transport(void **state)
{
	struct fixture *f = *state;

	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	miss(f, 7, "10.7.0.21", XVPC_DROP_ARP_UNKNOWN);
	assert_int_equal(stats(f).misses, 2);
	assert_int_equal(stats(f).ignored, 2);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 0);
	assert_int_equal(f->learned->ops->count(f->learned), 0);
}

static void test_failure(void **state)
{
	struct fixture *f = *state;
	struct xvpc_rsv_stats s;

	f->fail = 1;
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(xvpc_resolver_poll(f->r, true), -ECONNREFUSED);
	s = stats(f);
	assert_int_equal(s.failures, 1);
	assert_int_equal(s.installed, 0);
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.cached, 0);
	/* Nothing remembered: the next miss asks again and succeeds. */
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	assert_int_equal(stats(f).installed, 1);
}

static void test_answer_here_not_installed(void **state)
{
	struct fixture *f = *state;

	f->answer_node = inet_addr(NODE);
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	assert_int_equal(stats(f).installed, 0);
	assert_int_equal(stats(f).missing, 1);
}

static void test_arp_reply(void **state)
{
	struct fixture *f = *state;
	__u8 want[XVPC_ARP_FRAME_LEN];

	miss(f, 7, "10.7.0.20", XVPC_DROP_ARP_UNKNOWN);
	miss(f, 7, "10.7.0.20", XVPC_DROP_ARP_UNKNOWN); /* coalesced */
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	assert_int_equal(f->frames, 1);
	assert_int_equal(f->frame_if, 5);
	/* To the VM (10.7.0.10, 02:00:00:07:00:0a): 10.7.0.20 is at
	 * 02:00:00:07:00:14. */
	xvpc_build_arp_reply(
		want, (__u8[]){2, 0, 0, 7, 0, 20}, inet_addr("10.7.0.20"),
		(__u8[]){2, 0, 0, 7, 0, 10}, inet_addr("10.7.0.10"));
	assert_memory_equal(f->frame, want, sizeof(want));
	assert_memory_equal(f->frame, ((__u8[]){2, 0, 0, 7, 0, 10}), 6);
	assert_int_equal(f->frame[12], 0x08);
	assert_int_equal(f->frame[13], 0x06);
	assert_int_equal(f->frame[21], 2); /* reply */
	assert_int_equal(stats(f).arp_replies, 1);

	/* From the cache, an ARP miss is answered at once too. */
	miss(f, 7, "10.7.0.20", XVPC_DROP_ARP_UNKNOWN);
	assert_int_equal(f->frames, 2);
	/* A plain miss sends no ARP reply. */
	miss(f, 7, "10.7.0.20", XVPC_DROP_NO_ENDPOINT);
	assert_int_equal(f->frames, 2);
	/* Another VNI (another subnet): installed, no reply. */
	miss(f, 7, "10.7.0.120", XVPC_DROP_ARP_UNKNOWN);
	assert_int_equal(xvpc_resolver_poll(f->r, true), 1);
	assert_int_equal(f->frames, 2);
	assert_int_equal(stats(f).installed, 4);
}

/*
 * The ARP reply through a real AF_PACKET socket: in a network namespace of
 * its own (a child process, so everything goes when it exits), a veth pair
 * h0 (host side, bound) <-> v0 (the VM's side). The reply sent out of h0
 * must arrive on v0.
 */
static int arp_child(void)
{
	struct fixture f = {.now = 1000 * SEC};
	struct xvpc_resolver_opts o = {.now = fake_now, .ctx = &f};
	struct xvpc_iface b = {.vpc_id = 7,
			       .ip = inet_addr("10.7.0.10"),
			       .mac = {2, 0, 0, 7, 0, 10},
			       .vni = 700};
	struct timeval tv = {.tv_sec = 2};
	struct sockaddr_ll sa = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_P_ARP)};
	__u8 want[XVPC_ARP_FRAME_LEN], got[128];
	struct xvpc_resolver *r = NULL;
	struct xvpc_event ev = {.type = XVPC_EV_MISS,
				.vpc_id = 7,
				.src_ip = inet_addr("10.7.0.10"),
				.dst_ip = inet_addr("10.7.0.20"),
				.reason = XVPC_DROP_ARP_UNKNOWN};
	__u32 key;
	int sock;
	ssize_t n;

	if (unshare(CLONE_NEWNET) ||
	    system("ip link add h0 type veth peer name v0 && ip link set h0 up "
		   "&& ip link set v0 up"))
		return 2;
	key = if_nametoindex("h0");
	sa.sll_ifindex = if_nametoindex("v0");
	sock = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ARP));
	if (!key || sock < 0 ||
	    bind(sock, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return 3;
	f.answer_node = inet_addr(OTHER);
	o.transport = calloc(1, sizeof(*o.transport));
	if (!o.transport ||
	    xvpc_mapbe_mem_new("learned", sizeof(struct xvpc_ep_key),
			       sizeof(struct xvpc_learned), 16, &f.learned) ||
	    xvpc_mapbe_mem_new("ifaces", 4, sizeof(struct xvpc_iface), 16,
			       &f.ifaces) ||
	    f.ifaces->ops->update(f.ifaces, &key, &b))
		return 4;
	o.transport->resolve = fake_resolve;
	o.transport->ctx = &f;
	o.node_ip = inet_addr(NODE);
	o.learned = f.learned;
	o.ifaces = f.ifaces;
	o.no_thread = true;
	if (xvpc_resolver_new(&o, &r))
		return 5;
	{
		struct xvpc_state *st = xvpc_state_new();
		struct xvpc_state_vpc v7 = {.id = 7,
					    .mode = XVPC_MODE_LEARN,
					    .n_gateways = 1,
					    .gateways = {inet_addr(OTHER)}};

		if (!st || xvpc_state_add_vpc(st, &v7) ||
		    xvpc_state_validate(st, 0, NULL, 0) ||
		    xvpc_resolver_set_state(r, st))
			return 6;
		xvpc_state_free(st);
	}
	ev.ifindex = key;
	xvpc_resolver_on_event(r, &ev);
	if (xvpc_resolver_poll(r, true) != 1)
		return 7;
	xvpc_build_arp_reply(
		want, (__u8[]){2, 0, 0, 7, 0, 20}, inet_addr("10.7.0.20"),
		(__u8[]){2, 0, 0, 7, 0, 10}, inet_addr("10.7.0.10"));
	/* Skip anything else the kernel may send on a new link. */
	for (int i = 0; i < 10; i++) {
		n = recv(sock, got, sizeof(got), 0);
		if (n < 0)
			return 8;
		if (n >= XVPC_ARP_FRAME_LEN && !memcmp(got, want, sizeof(want)))
			break;
		n = -1;
	}
	if (n < 0)
		return 9;
	xvpc_resolver_free(r);
	xvpc_mapbe_destroy(f.learned);
	xvpc_mapbe_destroy(f.ifaces);
	close(sock);
	return 0;
}

static void test_arp_reply_af_packet(void **unused)
{
	int status = -1;
	pid_t pid;

	(void)unused;
	if (geteuid())
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(arp_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("ARP reply through AF_PACKET: child status %d",
			 status);
}

/* ---- the HTTP transport ---- */

static void test_parse(void **unused)
{
	struct xvpc_ep_key keys[3] = {
		{7, inet_addr("10.7.0.5")},
		{7, inet_addr("10.7.0.6")},
		{8, inet_addr("10.8.0.5")},
	};
	struct xvpc_rsv_answer out[3];
	char why[256];
	const char *good =
		"{\"revision\":12,\"endpoints\":[{\"vpc\":8,\"ip\":"
		"\"10.8.0.5\",\"mac\":\"02:00:00:00:08:05\",\"node_ip\":"
		"\"192.168.100.2\",\"vni\":800}],\"missing\":[{\"vpc\":7,"
		"\"ip\":\"10.7.0.5\"}]}";
	const char *bad[] = {
		"[]",
		"{\"endpoints\":{}}",
		"{\"revision\":1,\"extra\":true}",
		/* not asked */
		"{\"endpoints\":[{\"vpc\":9,\"ip\":\"10.7.0.5\",\"mac\":"
		"\"02:00:00:00:08:05\",\"node_ip\":\"192.168.100.2\","
		"\"vni\":800}]}",
		/* no vni */
		"{\"endpoints\":[{\"vpc\":7,\"ip\":\"10.7.0.5\",\"mac\":"
		"\"02:00:00:00:08:05\",\"node_ip\":\"192.168.100.2\"}]}",
		/* bad mac */
		"{\"endpoints\":[{\"vpc\":7,\"ip\":\"10.7.0.5\",\"mac\":"
		"\"02:00:00\",\"node_ip\":\"192.168.100.2\",\"vni\":1}]}",
		"{\"missing\":[{\"vpc\":7,\"ip\":\"10.7.0.5\",\"x\":1}]}",
		"{\"missing\":[{\"vpc\":7}]}",
	};
	char *body;

	(void)unused;
	assert_int_equal(xvpc_resolve_parse(good, strlen(good), keys, 3, out,
					    why, sizeof(why)),
			 0);
	assert_false(out[0].found);
	assert_false(out[1].found); /* neither: not found */
	assert_true(out[2].found);
	assert_int_equal(out[2].vni, 800);
	assert_int_equal(out[2].node_ip, inet_addr("192.168.100.2"));
	assert_int_equal(out[2].mac[5], 5);
	assert_int_equal(out[2].key.vpc_id, 8);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (!xvpc_resolve_parse(bad[i], strlen(bad[i]), keys, 3, out,
					why, sizeof(why)))
			fail_msg("accepted: %s", bad[i]);
		assert_true(why[0]);
	}
	body = xvpc_resolve_body(keys, 2);
	assert_non_null(body);
	assert_string_equal(body, "{\"endpoints\":[{\"vpc\":7,\"ip\":"
				  "\"10.7.0.5\"},{\"vpc\":7,\"ip\":"
				  "\"10.7.0.6\"}]}");
	free(body);
}

struct fake_ctrl {
	struct MHD_Daemon *d;
	uint16_t port;
	pthread_mutex_t mu;
	int requests;
	int bad_requests; /* wrong path, method, token or body */
};

struct upload {
	char *p;
	size_t n;
};

/* Answers every asked address as found (vni 700) except 10.7.0.99. */
static char *fake_answer(const char *req)
{
	size_t cap = 64 + strlen(req) * 4, len;
	char *out = malloc(cap);
	const char *p = req;
	bool first = true, missing = false;

	if (!out)
		return NULL;
	len = snprintf(out, cap, "{\"revision\":3,\"endpoints\":[");
	while ((p = strstr(p, "\"ip\":\""))) {
		char ip[32];
		int x = 0;

		p += 6;
		if (sscanf(p, "%31[0-9.]", ip) != 1)
			break;
		sscanf(ip, "10.7.%*d.%d", &x);
		if (!strcmp(ip, "10.7.0.99")) {
			missing = true;
			continue;
		}
		len += snprintf(out + len, cap - len,
				"%s{\"vpc\":7,\"ip\":\"%s\",\"mac\":"
				"\"02:00:00:07:00:%02x\",\"node_ip\":"
				"\"192.168.100.2\",\"vni\":700}",
				first ? "" : ",", ip, x & 0xff);
		first = false;
	}
	snprintf(out + len, cap - len, "],\"missing\":[%s]}",
		 missing ? "{\"vpc\":7,\"ip\":\"10.7.0.99\"}" : "");
	return out;
}

static enum MHD_Result ctrl_handler(void *cls, struct MHD_Connection *c,
				    const char *url, const char *method,
				    const char *version, const char *data,
				    size_t *data_size, void **con_cls)
{
	struct fake_ctrl *fc = cls;
	struct upload *u = *con_cls;
	struct MHD_Response *resp;
	const char *auth;
	enum MHD_Result ret;
	char *answer;
	bool ok;

	(void)version;
	if (!u) {
		u = calloc(1, sizeof(*u));
		*con_cls = u;
		return u ? MHD_YES : MHD_NO;
	}
	if (*data_size) {
		char *p = realloc(u->p, u->n + *data_size + 1);

		if (!p)
			return MHD_NO;
		memcpy(p + u->n, data, *data_size);
		u->p = p;
		u->n += *data_size;
		u->p[u->n] = '\0';
		*data_size = 0;
		return MHD_YES;
	}
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	ok = !strcmp(method, "POST") && !strcmp(url, "/v1/nodes/n1/resolve") &&
	     auth && !strcmp(auth, "Bearer secret") && u->p &&
	     !strncmp(u->p, "{\"endpoints\":[", 14);
	pthread_mutex_lock(&fc->mu);
	fc->requests++;
	fc->bad_requests += !ok;
	pthread_mutex_unlock(&fc->mu);
	answer = ok ? fake_answer(u->p) : strdup("{}");
	if (!answer)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(answer), answer,
					       MHD_RESPMEM_MUST_FREE);
	ret = MHD_queue_response(c, ok ? 200 : 400, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void ctrl_done(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (u)
		free(u->p);
	free(u);
	*con_cls = NULL;
}

static int fake_ctrl_start(struct fake_ctrl *fc)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	const union MHD_DaemonInfo *info;

	pthread_mutex_init(&fc->mu, NULL);
	fc->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				 ctrl_handler, fc, MHD_OPTION_SOCK_ADDR, &sa,
				 MHD_OPTION_NOTIFY_COMPLETED, ctrl_done, NULL,
				 MHD_OPTION_END);
	if (!fc->d)
		return -EADDRINUSE;
	info = MHD_get_daemon_info(fc->d, MHD_DAEMON_INFO_BIND_PORT);
	fc->port = info ? info->port : 0;
	return fc->port ? 0 : -EIO;
}

static void fake_ctrl_stop(struct fake_ctrl *fc)
{
	if (fc->d)
		MHD_stop_daemon(fc->d);
	fc->d = NULL;
	pthread_mutex_destroy(&fc->mu);
}

static void test_http_transport(void **unused)
{
	struct fake_ctrl fc = {0};
	struct xvpc_rsv_transport *t = NULL;
	struct xvpc_ep_key keys[3] = {
		{7, inet_addr("10.7.0.5")},
		{7, inet_addr("10.7.0.99")},
		{7, inet_addr("10.7.0.6")},
	};
	struct xvpc_rsv_answer out[3];
	char dead[64], live[64];
	const char *urls[2] = {dead, live};
	struct xvpc_resolve_http_opts o = {
		.urls = urls,
		.n_urls = 2,
		.node_name = "n1",
		.token = "secret",
		.timeout_ms = 2000,
	};

	(void)unused;
	assert_int_equal(fake_ctrl_start(&fc), 0);
	/* The first URL refuses connections: the second answers. Port 1
	 * on loopback has no listener. */
	snprintf(dead, sizeof(dead), "http://127.0.0.1:1");
	snprintf(live, sizeof(live), "http://127.0.0.1:%u/", fc.port);
	if (xvpc_resolve_http_new(&o, &t)) {
		fake_ctrl_stop(&fc);
		fail_msg("cannot create the transport");
	}
	assert_int_equal(t->resolve(t->ctx, keys, 3, out), 0);
	assert_true(out[0].found);
	assert_false(out[1].found);
	assert_true(out[2].found);
	assert_int_equal(out[2].mac[5], 6);
	assert_int_equal(out[0].vni, 700);
	assert_int_equal(out[0].node_ip, inet_addr("192.168.100.2"));
	assert_int_equal(fc.requests, 1);
	assert_int_equal(fc.bad_requests, 0);
	t->destroy(t->ctx);
	free(t);
	fake_ctrl_stop(&fc);
}

/* The whole path with the worker thread: misses in, entries installed. */
static void test_http_end_to_end(void **unused)
{
	struct fake_ctrl fc = {0};
	struct xvpc_mapbe *learned = NULL;
	struct xvpc_resolver *r = NULL;
	struct xvpc_rsv_transport *t = NULL;
	char url[64];
	const char *urls[1] = {url};
	struct xvpc_resolve_http_opts ho = {
		.urls = urls,
		.n_urls = 1,
		.node_name = "n1",
		.token = "secret",
	};
	struct xvpc_state_vpc v7 = {.id = 7,
				    .mode = XVPC_MODE_LEARN,
				    .n_gateways = 1,
				    .gateways = {inet_addr(OTHER)}};
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_rsv_stats s = {0};
	int ok;

	(void)unused;
	assert_non_null(st);
	assert_int_equal(fake_ctrl_start(&fc), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", fc.port);
	ok = !xvpc_mapbe_mem_new("learned", sizeof(struct xvpc_ep_key),
				 sizeof(struct xvpc_learned), 1024, &learned) &&
	     !xvpc_resolve_http_new(&ho, &t) && !xvpc_state_add_vpc(st, &v7) &&
	     !xvpc_state_validate(st, 0, NULL, 0);
	if (ok) {
		struct xvpc_resolver_opts o = {
			.node_ip = inet_addr(NODE),
			.learned = learned,
			.transport = t,
		};

		ok = !xvpc_resolver_new(&o, &r) &&
		     !xvpc_resolver_set_state(r, st);
	}
	for (int i = 0; ok && i < 300; i++) {
		struct xvpc_event ev = {.type = XVPC_EV_MISS,
					.vpc_id = 7,
					.dst_ip = htonl(0x0a070000 + 1 + i),
					.reason = XVPC_DROP_NO_ENDPOINT};

		xvpc_resolver_on_event(r, &ev);
	}
	/* Bounded wait (10 s) for the worker; no timing is asserted. */
	for (int i = 0; ok && i < 1000; i++) {
		xvpc_resolver_stats(r, &s);
		if (s.installed + s.missing + s.failures * 256 >= 300)
			break;
		usleep(10000);
	}
	xvpc_resolver_free(r);
	fake_ctrl_stop(&fc);
	xvpc_state_free(st);
	if (ok)
		ok = learned->ops->count(learned) == 299;
	xvpc_mapbe_destroy(learned);
	assert_true(ok);
	assert_int_equal(s.installed, 299); /* 10.7.0.99 is missing */
	assert_int_equal(s.missing, 1);
	assert_int_equal(s.failures, 0);
	assert_true(s.requests >= 2); /* 256 at most per request */
	assert_int_equal(fc.bad_requests, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_coalesce_and_install,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_positive, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_negative, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cache_bounded,
						setup_small_cache, teardown),
		cmocka_unit_test_setup_teardown(test_changed_and_flush, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_changed_in_flight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_transport,
						setup_no_transport, teardown),
		cmocka_unit_test_setup_teardown(test_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_here_not_installed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_reply, setup,
						teardown),
		cmocka_unit_test(test_arp_reply_af_packet),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_http_transport),
		cmocka_unit_test(test_http_end_to_end),
	};

	xvpc_log_set_level(XVPC_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
