// SPDX-License-Identifier: GPL-2.0-only
/*
 * xvpcctl's load balancer views (cli/lbview.h) against maps made by the
 * loader with nothing pinned, in a private network namespace (the
 * selftests' fixture): the share of each backend in `map dump lb_services`,
 * and what `trace` says about a flow: Maglev for a new one, the conntrack
 * entry for an established one, a reply, a public service, no backend; and
 * that a test run's conntrack entries are taken back (created: deleted;
 * closed by a traced FIN: reopened).
 *
 *   VPC 1  web  10.0.100.10:80/tcp -> a2 10.0.1.20:8080 weight 1 (remote)
 *                                     a3 10.0.1.40:8080 weight 2 (local)
 *                                     b1 10.0.2.10:8080 weight 1 (local)
 *          void 10.0.100.11:80/tcp -> no backends
 *   public 203.0.113.10:80/tcp -> VPC 1 a3 10.0.1.40:8080
 *   client a1 10.0.1.10 (local, port "a1"); m = 251
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
#include <time.h>
#include <linux/pkt_cls.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "cli/lbview.h"
#include "lb.h"
#include "log.h"
#include "selftests/fixture.h"

#define VIP    "10.0.100.10"
#define VOID   "10.0.100.11"
#define PUB    "203.0.113.10"
#define CLIENT "10.0.1.10"
#define TBL_M  251
#define SEC_NS 1000000000ull

static struct xvpc_lb_svc_key key_web, key_void, key_pub;
static struct xvpc_lb_backend_spec web_be[3];
static struct xvpc_lb_backend table[TBL_M]; /* web's, built here too */

static struct xvpc_lb_backend_spec spec(const char *ip, __u32 w)
{
	return (struct xvpc_lb_backend_spec){
		.ip = pkt_ip(ip), .port = htons(8080), .weight = w};
}

static struct xvpc_lb_svc_key svc_key(__u32 vpc, const char *vip)
{
	return (struct xvpc_lb_svc_key){.vpc_id = vpc,
					.vip = pkt_ip(vip),
					.port = htons(80),
					.proto = 6};
}

static struct xvpc_lb_ct_key flow(__u32 vpc, const char *dst, __u16 sport)
{
	return (struct xvpc_lb_ct_key){.vpc_id = vpc,
				       .src = pkt_ip(CLIENT),
				       .dst = pkt_ip(dst),
				       .sport = htons(sport),
				       .dport = htons(80),
				       .proto = 6};
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * SEC_NS + ts.tv_nsec;
}

static int ct_fd(void)
{
	return xvpc_dp_map_fd(dp, XVPC_M_LB_CT);
}

static int group_setup(void **state)
{
	struct xvpc_lb_backend_spec pub_be[1] = {spec("10.0.1.40", 1)};
	struct xvpc_maglev_ctx *ctx = NULL;
	int err;

	(void)state;
	web_be[0] = spec("10.0.1.20", 1);
	web_be[1] = spec("10.0.1.40", 2);
	web_be[2] = spec("10.0.2.10", 1);
	key_web = svc_key(1, VIP);
	key_void = svc_key(1, VOID);
	key_pub = svc_key(XVPC_LB_PUBLIC, PUB);
	err = setup(); /* fixture.h: namespace, ports, loader, endpoints */
	if (!err)
		err = xvpc_lb_set_service(dp, &key_web, web_be, 3, TBL_M) ?:
		      xvpc_lb_set_service(dp, &key_void, NULL, 0, TBL_M) ?:
		      xvpc_lb_set_public_service(dp, &key_pub, 1, pub_be, 1,
						 TBL_M);
	if (!err)
		err = xvpc_maglev_ctx_new(TBL_M, &ctx)
			      ?: xvpc_lb_build_table(ctx, web_be, 3,
						     key_web.port, table);
	xvpc_maglev_ctx_free(ctx);
	if (err)
		fprintf(stderr, "setup failed: %s\n", strerror(-err));
	return err ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	xvpc_dp_close(dp); /* maps and namespace go with the process */
	return 0;
}

/* Between tests: no conntrack entry left. */
static int flush_ct(void **state)
{
	(void)state;
	flush_map(XVPC_M_LB_CT, sizeof(struct xvpc_lb_ct_key));
	return 0;
}

static struct json_object *service(struct json_object *top, const char *vip)
{
	struct json_object *arr, *s, *v;

	assert_true(json_object_object_get_ex(top, "services", &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		s = json_object_array_get_idx(arr, i);
		json_object_object_get_ex(s, "vip", &v);
		if (!strcmp(json_object_get_string(v), vip))
			return s;
	}
	fail_msg("no service %s", vip);
	return NULL;
}

static __s64 jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, k, &v));
	return json_object_get_int64(v);
}

static void test_shares(void **state)
{
	struct json_object *top = NULL, *s, *t, *b, *v;
	const double want[3] = {25, 50, 25}; /* weights 1:2:1 */
	__s64 sum = 0;

	(void)state;
	assert_int_equal(lbv_services_json(dp, &top), 0);
	s = service(top, VIP);
	assert_int_equal(jint(s, "vpc"), 1);
	assert_int_equal(jint(s, "m"), TBL_M);
	assert_int_equal(jint(s, "backends"), 3);
	assert_int_equal(jint(s, "port"), 80);
	assert_true(json_object_object_get_ex(s, "table", &t));
	assert_int_equal(json_object_array_length(t), 3);
	for (size_t i = 0; i < 3; i++) {
		char ip[XVPC_IP_STRLEN];

		b = json_object_array_get_idx(t, i);
		json_object_object_get_ex(b, "ip", &v);
		assert_string_equal(json_object_get_string(v),
				    xvpc_fmt_ip(web_be[i].ip, ip));
		json_object_object_get_ex(b, "share", &v);
		assert_true(json_object_get_double(v) > want[i] - 1.5 &&
			    json_object_get_double(v) < want[i] + 1.5);
		assert_int_equal(jint(b, "flows"), 0);
		sum += jint(b, "entries");
	}
	assert_int_equal(sum, TBL_M);
	/* The service without backends has no table. */
	s = service(top, VOID);
	assert_true(json_object_object_get_ex(s, "table", &t));
	assert_int_equal(json_object_array_length(t), 0);
	/* The public one names the backends' VPC. */
	s = service(top, PUB);
	json_object_object_get_ex(s, "public", &v);
	assert_true(json_object_get_boolean(v));
	assert_int_equal(jint(s, "backend_vpc"), 1);
	json_object_put(top);
}

static void test_shares_printed(void **state)
{
	struct json_object *top = NULL;
	char *text = NULL, line[128];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int n[3] = {0};

	(void)state;
	assert_non_null(f);
	assert_int_equal(lbv_services_json(dp, &top), 0);
	lbv_services_print(f, top);
	fclose(f);
	json_object_put(top);
	/* Each backend line shows its entries and their share of m. */
	for (int i = 0; i < TBL_M; i++)
		for (int b = 0; b < 3; b++)
			n[b] += table[i].ip == web_be[b].ip;
	for (int b = 0; b < 3; b++) {
		char ip[XVPC_IP_STRLEN], be[32];

		snprintf(be, sizeof(be), "%s:8080",
			 xvpc_fmt_ip(web_be[b].ip, ip));
		snprintf(line, sizeof(line), "  %-22s %7d %6.1f%% %8d\n", be,
			 n[b], n[b] * 100.0 / TBL_M, 0);
		if (!strstr(text, line))
			fail_msg("no line '%s' in:\n%s", line, text);
	}
	assert_non_null(strstr(text, "10.0.100.10:80/tcp"));
	assert_non_null(strstr(text, "public->1"));
	assert_non_null(strstr(text, "(3 services)"));
	free(text);
}

static void test_new_flow_maglev(void **state)
{
	struct xvpc_lb_ct_key k = flow(1, VIP, 40000);
	__u32 hash = xvpc_lb_flow_hash(k.src, k.dst, k.sport, k.dport, 6);
	struct lbv_explain e;
	char want[128], ip[XVPC_IP_STRLEN];

	(void)state;
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_MAGLEV);
	assert_int_equal(e.hash, hash);
	assert_int_equal(e.entry, hash % TBL_M);
	assert_int_equal(e.be.ip, table[e.entry].ip);
	assert_int_equal(e.be.port, htons(8080));
	assert_false(e.ct_found);
	snprintf(want, sizeof(want),
		 "Maglev: hash 0x%08x %% m 251 = entry %u -> backend %s:8080",
		 hash, hash % TBL_M, xvpc_fmt_ip(table[e.entry].ip, ip));
	if (!strstr(e.text, want))
		fail_msg("'%s' does not say '%s'", e.text, want);
}

static struct xvpc_lb_ct ct_entry(__u8 dir, __u8 state, const char *ip,
				  __u64 age, __u64 idle)
{
	__u64 now = now_ns();

	return (struct xvpc_lb_ct){
		.nat = {.ip = pkt_ip(ip), .port = htons(8080)},
		.dir = dir,
		.state = state,
		.created_ns = now - age,
		.last_ns = now - idle,
	};
}

/* A backend Maglev would not pick for @k, so the answer shows which rule
 * decided. */
static const char *other_backend(const struct xvpc_lb_ct_key *k)
{
	__u32 e = xvpc_lb_flow_entry(k, TBL_M);

	return table[e].ip == pkt_ip("10.0.2.10") ? "10.0.1.20" : "10.0.2.10";
}

static void test_conntrack_hit(void **state)
{
	struct xvpc_lb_ct_key k = flow(1, VIP, 40001);
	const char *ip = other_backend(&k);
	struct xvpc_lb_ct v =
		ct_entry(XVPC_LB_CT_FWD, XVPC_LB_CT_OPEN, ip, 5 * SEC_NS, 0);
	struct json_object *top = NULL, *t, *b;
	struct lbv_explain e;
	char want[96];

	struct xvpc_lb_svc svc;

	(void)state;
	assert_int_equal(
		bpf_map_lookup_elem(xvpc_dp_map_fd(dp, XVPC_M_LB_SERVICES),
				    &key_web, &svc),
		0);
	v.slot = svc.slot;
	assert_int_equal(bpf_map_update_elem(ct_fd(), &k, &v, 0), 0);
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x10, &e), 0);
	assert_int_equal(e.kind, LBV_CONNTRACK);
	assert_int_equal(e.be.ip, pkt_ip(ip));
	/* The ages are printed, but not asserted to the digit. */
	assert_true(e.age_s >= 5);
	assert_non_null(strstr(e.text, "established flow: conntrack entry "
				       "(created "));
	assert_non_null(strstr(e.text, " s ago, state open, idle "));
	snprintf(want, sizeof(want), " s) -> %s:8080", ip);
	if (!strstr(e.text, want))
		fail_msg("'%s' does not say '%s'", e.text, want);
	/* The live forward entry counts as a flow of its backend. */
	assert_int_equal(lbv_services_json(dp, &top), 0);
	t = json_object_object_get(service(top, VIP), "table");
	for (size_t i = 0; i < json_object_array_length(t); i++) {
		b = json_object_array_get_idx(t, i);
		assert_int_equal(
			jint(b, "flows"),
			!strcmp(json_object_get_string(
					json_object_object_get(b, "ip")),
				ip));
	}
	assert_int_equal(jint(service(top, VIP), "flows"), 1);
	json_object_put(top);
}

static void test_conntrack_not_used(void **state)
{
	struct xvpc_lb_ct_key k = flow(1, VIP, 40002);
	const char *ip = other_backend(&k);
	struct xvpc_lb_ct v = ct_entry(XVPC_LB_CT_FWD, XVPC_LB_CT_CLOSING, ip,
				       20 * SEC_NS, 1 * SEC_NS);
	struct lbv_explain e;

	(void)state;
	assert_int_equal(bpf_map_update_elem(ct_fd(), &k, &v, 0), 0);
	/* A closing entry still serves the flow's last packets ... */
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x11, &e), 0);
	assert_int_equal(e.kind, LBV_CONNTRACK);
	assert_non_null(strstr(e.text, "state closing"));
	/* ... but a new SYN is a new flow. */
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_MAGLEV);
	assert_true(e.ct_expired);
	assert_non_null(strstr(e.text, "closed and a SYN"));
	/* An entry idle longer than the timeout is not used either. */
	v = ct_entry(XVPC_LB_CT_FWD, XVPC_LB_CT_OPEN, ip, 3 * 3600 * SEC_NS,
		     3 * 3600 * SEC_NS);
	assert_int_equal(bpf_map_update_elem(ct_fd(), &k, &v, 0), 0);
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x10, &e), 0);
	assert_int_equal(e.kind, LBV_MAGLEV);
	assert_non_null(strstr(e.text, "expired"));
	assert_int_equal(e.be.ip, table[e.entry].ip);
}

static void test_reply(void **state)
{
	/* The backend's reply to the client: a reverse entry. */
	struct xvpc_lb_ct_key k = {.vpc_id = 1,
				   .src = pkt_ip("10.0.1.40"),
				   .dst = pkt_ip(CLIENT),
				   .sport = htons(8080),
				   .dport = htons(40003),
				   .proto = 6};
	struct xvpc_lb_ct v =
		ct_entry(XVPC_LB_CT_REV, XVPC_LB_CT_OPEN, VIP, SEC_NS, 0);
	struct lbv_explain e;

	(void)state;
	v.nat.port = htons(80);
	assert_int_equal(bpf_map_update_elem(ct_fd(), &k, &v, 0), 0);
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x12, &e), 0);
	assert_int_equal(e.kind, LBV_REPLY);
	assert_non_null(strstr(e.text, "source rewritten to 10.0.100.10:80"));
	assert_int_equal(lbv_explain(dp, LBV_DECAP, &k, 0x12, &e), 0);
	assert_int_equal(e.kind, LBV_REPLY);
}

static void test_not_balanced(void **state)
{
	struct xvpc_lb_ct_key k = flow(1, VOID, 40004);
	struct json_object *j;
	struct lbv_explain e;

	(void)state;
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_NO_BACKEND);
	assert_non_null(strstr(e.text, "lb_no_backend"));
	k = flow(1, "10.0.2.10", 40004);
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_NONE);
	k.proto = 1;
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0, &e), 0);
	assert_int_equal(e.kind, LBV_NONE);
	j = lbv_explain_json(&e);
	assert_string_equal(
		json_object_get_string(json_object_object_get(j, "decision")),
		"none");
	json_object_put(j);
}

static void test_public(void **state)
{
	struct xvpc_lb_ct_key k = flow(XVPC_LB_PUBLIC, PUB, 40005);
	struct json_object *j;
	struct lbv_explain e;

	(void)state;
	k.src = pkt_ip("198.51.100.7");
	assert_int_equal(lbv_explain(dp, LBV_PUBLIC, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_MAGLEV);
	assert_int_equal(e.be.ip, pkt_ip("10.0.1.40"));
	assert_int_equal(e.svc.backend_vpc, 1);
	j = lbv_explain_json(&e);
	assert_string_equal(
		json_object_get_string(json_object_object_get(j, "backend")),
		"10.0.1.40:8080");
	assert_int_equal(json_object_get_int64(json_object_object_get(j, "m")),
			 TBL_M);
	json_object_put(j);
	/* Not a public service: the same VIP in a VPC is not one. */
	k.dst = pkt_ip(VIP);
	assert_int_equal(lbv_explain(dp, LBV_PUBLIC, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_NONE);
}

/* A run of the endpoint program on a new flow writes both conntrack
 * entries to the backend the explanation named; the guard takes them
 * back, and leaves an established flow's entry as it was. */
static int run_from_a1(const struct xvpc_lb_ct_key *k, __u8 flags, __u8 *out,
		       __u32 *out_len, __u32 *verdict)
{
	__u8 in[PKT_MAX];
	struct pkt_inner pi = {.smac = MAC_A1,
			       .dmac = MAC_GW,
			       .src = CLIENT,
			       .dst = VIP,
			       .proto = 6,
			       .payload = 20,
			       .sport = ntohs(k->sport),
			       .dport = 80};
	size_t len = pkt_inner_write(in, 0, &pi);
	struct __sk_buff skb = {.ifindex = ifidx[P_A1]}, skb_out = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
		    .data_out = out, .data_size_out = PKT_MAX + 128,
		    .ctx_in = &skb, .ctx_size_in = sizeof(skb),
		    .ctx_out = &skb_out, .ctx_size_out = sizeof(skb_out),
		    .repeat = 1);
	int err;

	in[14 + 20 + 12] = 5 << 4;
	in[14 + 20 + 13] = flags;
	err = bpf_prog_test_run_opts(xvpc_dp_prog_fd(dp, XVPC_P_FROM_EP), &o);
	*out_len = o.data_size_out;
	*verdict = o.retval;
	return err;
}

static void test_guard_new_flow(void **state)
{
	struct xvpc_lb_ct_key k = flow(1, VIP, 40006), r;
	__u8 out[PKT_MAX + 128];
	struct lbv_explain e;
	struct lbv_guard g;
	struct xvpc_lb_ct v;
	__u32 len, verdict;
	int created;
	__be32 dst;

	(void)state;
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_MAGLEV);
	lbv_guard_take(dp, &e, &k, &g);
	assert_int_equal(run_from_a1(&k, 0x02, out, &len, &verdict), 0);
	assert_int_equal(verdict, TC_ACT_REDIRECT);
	/* The program picked the backend the explanation named: in the
	 * conntrack entry and in the packet (VXLAN to a2's node: inner). */
	assert_int_equal(bpf_map_lookup_elem(ct_fd(), &k, &v), 0);
	assert_int_equal(v.nat.ip, e.be.ip);
	memcpy(&dst, out + (e.be.ip == pkt_ip("10.0.1.20") ? 50 : 0) + 30, 4);
	assert_int_equal(dst, e.be.ip);
	r = (struct xvpc_lb_ct_key){.vpc_id = 1,
				    .src = e.be.ip,
				    .dst = k.src,
				    .sport = e.be.port,
				    .dport = k.sport,
				    .proto = 6};
	assert_int_equal(bpf_map_lookup_elem(ct_fd(), &r, &v), 0);
	/* Taken back: no entry left. */
	assert_int_equal(lbv_guard_undo(dp, &g, &created), 0);
	assert_int_equal(created, 2);
	assert_int_not_equal(bpf_map_lookup_elem(ct_fd(), &k, &v), 0);
	assert_int_not_equal(bpf_map_lookup_elem(ct_fd(), &r, &v), 0);
}

static void test_guard_established(void **state)
{
	struct xvpc_lb_ct_key k = flow(1, VIP, 40007);
	const char *ip = other_backend(&k);
	struct xvpc_lb_ct v = ct_entry(XVPC_LB_CT_FWD, XVPC_LB_CT_OPEN, ip,
				       5 * SEC_NS, 0),
			  after;
	__u8 out[PKT_MAX + 128];
	struct lbv_explain e;
	struct lbv_guard g;
	__u32 len, verdict;
	int created;

	(void)state;
	assert_int_equal(bpf_map_update_elem(ct_fd(), &k, &v, 0), 0);
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x02, &e), 0);
	assert_int_equal(e.kind, LBV_CONNTRACK);
	lbv_guard_take(dp, &e, &k, &g);
	assert_int_equal(run_from_a1(&k, 0x02, out, &len, &verdict), 0);
	assert_int_equal(verdict, TC_ACT_REDIRECT);
	assert_int_equal(lbv_guard_undo(dp, &g, &created), 0);
	assert_int_equal(created, 0);
	assert_int_equal(bpf_map_lookup_elem(ct_fd(), &k, &after), 0);
	assert_int_equal(after.created_ns, v.created_ns);
	assert_int_equal(after.nat.ip, pkt_ip(ip));
}

/* A traced FIN closes the flow's entry in the run; the guard reopens it. */
static void test_guard_fin(void **state)
{
	struct xvpc_lb_ct_key k = flow(1, VIP, 40008);
	const char *ip = other_backend(&k);
	struct xvpc_lb_ct v = ct_entry(XVPC_LB_CT_FWD, XVPC_LB_CT_OPEN, ip,
				       5 * SEC_NS, 0),
			  after;
	__u8 out[PKT_MAX + 128];
	struct lbv_explain e;
	struct lbv_guard g;
	__u32 len, verdict;
	int created;

	(void)state;
	assert_int_equal(bpf_map_update_elem(ct_fd(), &k, &v, 0), 0);
	assert_int_equal(lbv_explain(dp, LBV_FROM_EP, &k, 0x11, &e), 0);
	assert_int_equal(e.kind, LBV_CONNTRACK);
	lbv_guard_take(dp, &e, &k, &g);
	assert_int_equal(run_from_a1(&k, 0x11, out, &len, &verdict), 0);
	assert_int_equal(bpf_map_lookup_elem(ct_fd(), &k, &after), 0);
	assert_int_equal(after.state, XVPC_LB_CT_CLOSING);
	assert_int_equal(lbv_guard_undo(dp, &g, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(bpf_map_lookup_elem(ct_fd(), &k, &after), 0);
	assert_int_equal(after.state, XVPC_LB_CT_OPEN);
	assert_int_equal(after.created_ns, v.created_ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_shares, flush_ct),
		cmocka_unit_test_teardown(test_shares_printed, flush_ct),
		cmocka_unit_test_teardown(test_new_flow_maglev, flush_ct),
		cmocka_unit_test_teardown(test_conntrack_hit, flush_ct),
		cmocka_unit_test_teardown(test_conntrack_not_used, flush_ct),
		cmocka_unit_test_teardown(test_reply, flush_ct),
		cmocka_unit_test_teardown(test_not_balanced, flush_ct),
		cmocka_unit_test_teardown(test_public, flush_ct),
		cmocka_unit_test_teardown(test_guard_new_flow, flush_ct),
		cmocka_unit_test_teardown(test_guard_established, flush_ct),
		cmocka_unit_test_teardown(test_guard_fin, flush_ct),
	};

	xvpc_log_set_ident("test_cli_lb");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
