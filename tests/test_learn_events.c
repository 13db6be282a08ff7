// SPDX-License-Identifier: GPL-2.0-only
/*
 * The resolving path with real BPF pieces: miss events written by a BPF
 * program (bpf/evgen.bpf.c through BPF_PROG_TEST_RUN) into a perf buffer,
 * drained by the events thread, resolved by the resolver's worker thread
 * (injected transport) and installed into a real LRU hash map with the
 * layout of xvpc_learned. Skipped without BPF (not root).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "agent/events.h"
#include "agent/mapbe.h"
#include "agent/resolver.h"
#include "evgen.skel.h"
#include "log.h"
#include "state.h"

#define N_EVENTS 200

static int answer_all(void *ctx, const struct xvpc_ep_key *keys, size_t n,
		      struct xvpc_rsv_answer *out)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++) {
		out[i].key = keys[i];
		out[i].found = true;
		memcpy(out[i].mac, (__u8[]){2, 0, 0, 0, 0, 1}, 6);
		out[i].node_ip = inet_addr("192.168.100.2");
		out[i].vni = 101;
	}
	return 0;
}

static void on_event(void *ctx, const struct xvpc_event *ev)
{
	xvpc_resolver_on_event(ctx, ev);
}

static const struct xvpc_resolver_ops ops = {.on_event = on_event};

struct check {
	long n, bad;
};

static int check_cb(const void *key, const void *val, void *arg)
{
	const struct xvpc_ep_key *k = key;
	const struct xvpc_learned *v = val;
	struct check *c = arg;

	c->n++;
	if (k->vpc_id != 1 ||
	    v->ep.flags != (XVPC_EP_LEARNED | XVPC_EP_RESOLVED) ||
	    v->ep.node_ip != inet_addr("192.168.100.2") || v->ep.vni != 101 ||
	    !v->created_ns || v->created_ns != v->last_ns || v->hits)
		c->bad++;
	return 0;
}

static void test_events_to_learned(void **unused)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	struct xvpc_state_vpc v1 = {.id = 1,
				    .mode = XVPC_MODE_LEARN,
				    .n_gateways = 1,
				    .gateways = {inet_addr("192.168.100.3")}};
	unsigned char pkt[64] = {0};
	struct xvpc_rsv_transport *t = calloc(1, sizeof(*t));
	struct xvpc_state *st = xvpc_state_new();
	struct xvpc_resolver *r = NULL;
	struct xvpc_mapbe *learned = NULL;
	struct xvpc_rsv_stats s = {0};
	struct agent_events e;
	struct evgen_bpf *skel;
	struct check c = {0};
	int fd, err;

	(void)unused;
	assert_non_null(t);
	assert_non_null(st);
	skel = evgen_bpf__open_and_load();
	if (!skel) {
		free(t);
		xvpc_state_free(st);
		skip(); /* no BPF here (not root?) */
	}
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "t_learned",
			    sizeof(struct xvpc_ep_key),
			    sizeof(struct xvpc_learned), 1024, NULL);
	err = fd < 0 ? -errno : xvpc_mapbe_bpf_new(fd, "t_learned", &learned);
	if (!err) {
		struct xvpc_resolver_opts o = {
			.node_ip = inet_addr("192.168.100.1"),
			.learned = learned,
			.transport = t,
		};

		t->resolve = answer_all;
		err = xvpc_resolver_new(&o, &r);
		t = NULL;
	}
	if (!err)
		err = xvpc_state_add_vpc(st, &v1) ?:
		      xvpc_state_validate(st, 0, NULL, 0) ?:
		      xvpc_resolver_set_state(r, st);
	if (!err) {
		agent_events_init(&e, &ops, r);
		err = agent_events_start(
			&e, bpf_map__fd(skel->maps.evgen_events), 64);
	}
	if (!err) {
		skel->data->n_events = N_EVENTS;
		opts.data_in = pkt;
		opts.data_size_in = sizeof(pkt);
		opts.repeat = 1;
		err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.evgen),
					     &opts);
		/* Bounded wait (10 s) for both threads; no timing asserted. */
		for (int i = 0; !err && i < 1000; i++) {
			xvpc_resolver_stats(r, &s);
			if (s.installed >= N_EVENTS)
				break;
			usleep(10000);
		}
		agent_events_stop(&e);
		learned->ops->iterate(learned, check_cb, &c);
	}
	xvpc_resolver_free(r);
	free(t);
	xvpc_mapbe_destroy(learned);
	if (fd >= 0)
		close(fd);
	xvpc_state_free(st);
	evgen_bpf__destroy(skel);
	assert_int_equal(err, 0);
	assert_int_equal(s.misses, N_EVENTS);
	assert_int_equal(s.installed, N_EVENTS);
	assert_int_equal(c.n, N_EVENTS);
	assert_int_equal(c.bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_to_learned),
	};

	xvpc_log_set_level(XVPC_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
