// SPDX-License-Identifier: GPL-2.0-only
/* Learning events: decoding, counting, the resolver interface, and a real
 * perf buffer fed by the bpf/evgen.bpf.c generator. */
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

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "agent/events.h"
#include "agent/netlink.h"
#include "evgen.skel.h"
#include "log.h"

struct seen {
	int events;
	__u64 lost;
	struct xvpc_event last;
};

static void on_event(void *ctx, const struct xvpc_event *ev)
{
	struct seen *s = ctx;

	s->events++;
	s->last = *ev;
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
	(void)cpu;
	((struct seen *)ctx)->lost += n;
}

static const struct xvpc_resolver_ops counting = {
	.on_event = on_event,
	.on_lost = on_lost,
};

static struct xvpc_event sample(void)
{
	return (struct xvpc_event){
		.type = XVPC_EV_MISS,
		.vpc_id = 7,
		.src_ip = inet_addr("10.0.1.10"),
		.dst_ip = inet_addr("10.0.1.99"),
		.ifindex = 12,
		.reason = XVPC_DROP_NO_ENDPOINT,
	};
}

static void test_decode(void **unused)
{
	struct xvpc_event in = sample(), out;
	unsigned char buf[64] = {0};

	(void)unused;
	assert_int_equal(sizeof(struct xvpc_event), 24);
	memcpy(buf, &in, sizeof(in));
	assert_int_equal(agent_event_decode(buf, sizeof(in), &out), 0);
	assert_memory_equal(&in, &out, sizeof(in));
	/* perf pads samples to 8 bytes (+4 for its size header) */
	assert_int_equal(agent_event_decode(buf, 28, &out), 0);
	/* too short, too long */
	assert_int_equal(agent_event_decode(buf, 20, &out), -EINVAL);
	assert_int_equal(agent_event_decode(buf, 0, &out), -EINVAL);
	assert_int_equal(agent_event_decode(buf, 64, &out), -EINVAL);
	/* unknown type */
	in.type = 99;
	memcpy(buf, &in, sizeof(in));
	assert_int_equal(agent_event_decode(buf, sizeof(in), &out), -EINVAL);
}

static void test_format(void **unused)
{
	struct xvpc_event ev = sample();
	char buf[160];

	(void)unused;
	agent_event_format(&ev, buf, sizeof(buf));
	assert_string_equal(buf, "miss vpc 7 10.0.1.10 -> 10.0.1.99 ifindex "
				 "12 reason drop_no_endpoint");
}

static void test_counting(void **unused)
{
	struct xvpc_event ev = sample(), bad = sample();
	struct agent_events_stats st;
	struct agent_events e;
	struct seen s = {0};

	(void)unused;
	bad.type = 0;
	agent_events_init(&e, &counting, &s);
	for (int i = 0; i < 10; i++)
		agent_events_sample(&e, 0, &ev, sizeof(ev));
	agent_events_sample(&e, 1, &bad, sizeof(bad));
	agent_events_sample(&e, 1, &ev, 3);
	agent_events_lost(&e, 1, 5);
	agent_events_lost(&e, 0, 2);
	agent_events_get_stats(&e, &st);
	assert_int_equal(st.received, 10);
	assert_int_equal(st.by_type[XVPC_EV_MISS], 10);
	assert_int_equal(st.malformed, 2);
	assert_int_equal(st.lost, 7);
	/* The resolver saw exactly the good events and the losses. */
	assert_int_equal(s.events, 10);
	assert_int_equal(s.lost, 7);
	assert_int_equal(s.last.vpc_id, 7);
}

static void test_default_resolver(void **unused)
{
	struct xvpc_event ev = sample();
	struct agent_events e;
	struct agent_events_stats st;

	(void)unused;
	agent_events_init(&e, NULL, NULL);
	assert_ptr_equal(e.resolver, &xvpc_default_resolver);
	agent_events_sample(&e, 0, &ev, sizeof(ev));
	agent_events_get_stats(&e, &st);
	assert_int_equal(st.received, 1);
}

/* The real path: BPF writes events, the draining thread receives them. */
static void test_perf_buffer(void **unused)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	unsigned char pkt[64] = {0};
	struct agent_events_stats st;
	struct agent_events e;
	struct evgen_bpf *skel;
	struct seen s = {0};
	int i, err;

	(void)unused;
	skel = evgen_bpf__open_and_load();
	if (!skel)
		skip(); /* no BPF here (not root?) */
	agent_events_init(&e, &counting, &s);
	err = agent_events_start(&e, bpf_map__fd(skel->maps.evgen_events), 64);
	if (err) {
		evgen_bpf__destroy(skel);
		fail_msg("agent_events_start: %s", strerror(-err));
	}
	skel->data->n_events = 100;
	opts.data_in = pkt;
	opts.data_size_in = sizeof(pkt);
	opts.repeat = 1;
	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.evgen), &opts);
	/* Wait (bounded) for the thread to drain them. */
	for (i = 0; i < 200; i++) {
		agent_events_get_stats(&e, &st);
		if (st.received + st.lost >= 100)
			break;
		usleep(10000);
	}
	agent_events_stop(&e);
	agent_events_get_stats(&e, &st);
	assert_int_equal(err, 0);
	assert_int_equal(skel->bss->failed, 0);
	assert_int_equal(st.received, 100);
	assert_int_equal(st.lost, 0);
	assert_int_equal(s.events, 100);
	assert_int_equal(s.last.type, XVPC_EV_MISS);
	assert_int_equal(s.last.reason, XVPC_DROP_NO_ENDPOINT);
	evgen_bpf__destroy(skel);
}

/* Link events: RTM_NEWLINK/RTM_DELLINK decoded with index and name; other
 * messages skipped; a truncated message is an error. */
struct links {
	int n;
	struct agent_link_event last[4];
};

static void on_link(void *ctx, const struct agent_link_event *e)
{
	struct links *l = ctx;

	if (l->n < 4)
		l->last[l->n] = *e;
	l->n++;
}

static size_t put_link(unsigned char *buf, __u16 type, int ifindex,
		       const char *name)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct ifinfomsg *ifi = NLMSG_DATA(nh);
	struct rtattr *rta;
	size_t len = NLMSG_LENGTH(sizeof(*ifi));

	memset(buf, 0, NLMSG_SPACE(sizeof(*ifi)) + RTA_SPACE(16));
	ifi->ifi_index = ifindex;
	if (name) {
		rta = (struct rtattr *)(buf + NLMSG_ALIGN(len));
		rta->rta_type = IFLA_IFNAME;
		rta->rta_len = RTA_LENGTH(strlen(name) + 1);
		memcpy(RTA_DATA(rta), name, strlen(name) + 1);
		len = NLMSG_ALIGN(len) + RTA_ALIGN(rta->rta_len);
	}
	nh->nlmsg_len = len;
	nh->nlmsg_type = type;
	return NLMSG_ALIGN(len);
}

static void test_link_events(void **unused)
{
	unsigned char buf[512] __attribute__((aligned(4)));
	struct links l = {0};
	size_t off = 0;

	(void)unused;
	off += put_link(buf + off, RTM_NEWLINK, 7, "xv1a");
	off += put_link(buf + off, RTM_NEWADDR, 7, NULL); /* skipped */
	off += put_link(buf + off, RTM_DELLINK, 9, "xv1b");
	off += put_link(buf + off, RTM_DELLINK, 11, NULL);
	assert_int_equal(agent_nl_parse(buf, off, on_link, &l), 3);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.last[0].ifindex, 7);
	assert_false(l.last[0].deleted);
	assert_string_equal(l.last[0].ifname, "xv1a");
	assert_true(l.last[1].deleted);
	assert_int_equal(l.last[1].ifindex, 9);
	assert_string_equal(l.last[1].ifname, "xv1b");
	assert_string_equal(l.last[2].ifname, "");
	/* A link message too short for its header. */
	((struct nlmsghdr *)buf)->nlmsg_len = NLMSG_LENGTH(4);
	assert_int_equal(agent_nl_parse(buf, NLMSG_LENGTH(4), on_link, &l),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_counting),
		cmocka_unit_test(test_default_resolver),
		cmocka_unit_test(test_perf_buffer),
		cmocka_unit_test(test_link_events),
	};

	xvpc_log_set_level(XVPC_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
