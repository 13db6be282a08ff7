// SPDX-License-Identifier: GPL-2.0-only
/* The agent's load balancer parts: services applied as a diff (fake map
 * ops: added, replaced, deleted, unchanged untouched, unhealthy backends
 * left out) and the health checker against loopback listeners (a closed
 * port leaves after `fall` probes, an open one comes back after `rise`),
 * and who probes which backend: a VM on this node (through its interface),
 * a VM elsewhere (nobody here: the state's verdict), a plain address. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/health.h"
#include "agent/lbsync.h"

/* ---- fake maps ---- */

#define MAXS 8

struct fake {
	struct xvpc_lb_svc_key keys[MAXS];
	__u32 n_be[MAXS];
	size_t n;
	int sets, dels;
	int fail_set;	   /* error of the next set */
	int public_sets;   /* through set_public */
	__u32 backend_vpc; /* of the last set_public */
};

static long fake_find(struct fake *f, const struct xvpc_lb_svc_key *k)
{
	for (size_t i = 0; i < f->n; i++)
		if (!memcmp(&f->keys[i], k, sizeof(*k)))
			return i;
	return -1;
}

static int fake_set(void *ctx, const struct xvpc_lb_svc_key *key,
		    const struct xvpc_lb_backend_spec *be, __u32 n)
{
	struct fake *f = ctx;
	long i = fake_find(f, key);

	(void)be;
	if (f->fail_set) {
		int e = f->fail_set;

		f->fail_set = 0;
		return e;
	}
	f->sets++;
	if (i < 0) {
		i = f->n++;
		f->keys[i] = *key;
	}
	f->n_be[i] = n;
	return 0;
}

static int fake_set_public(void *ctx, const struct xvpc_lb_svc_key *key,
			   __u32 backend_vpc,
			   const struct xvpc_lb_backend_spec *be, __u32 n)
{
	struct fake *f = ctx;

	f->public_sets++;
	f->backend_vpc = backend_vpc;
	return fake_set(ctx, key, be, n);
}

static int fake_del(void *ctx, const struct xvpc_lb_svc_key *key)
{
	struct fake *f = ctx;
	long i = fake_find(f, key);

	if (i < 0)
		return -ENOENT;
	f->dels++;
	f->keys[i] = f->keys[f->n - 1];
	f->n_be[i] = f->n_be[f->n - 1];
	f->n--;
	return 0;
}

static int fake_list(void *ctx, struct xvpc_lb_svc_key **keys, size_t *n)
{
	struct fake *f = ctx;

	*keys = calloc(f->n + 1, sizeof(**keys));
	if (!*keys)
		return -ENOMEM;
	memcpy(*keys, f->keys, f->n * sizeof(**keys));
	*n = f->n;
	return 0;
}

static const struct agent_lb_ops fake_ops = {
	.set = fake_set,
	.set_public = fake_set_public,
	.del = fake_del,
	.list = fake_list,
};

static const char *const base =
	"\"vpcs\": [{\"id\": 1}], \"subnets\": [{\"vpc\": 1, \"cidr\": "
	"\"10.0.1.0/24\", \"vni\": 1001, \"gateway_ip\": \"10.0.1.1\", "
	"\"gateway_mac\": \"02:78:76:70:63:01\"}], \"endpoints\": []";

static struct xvpc_state *state(const char *svcs)
{
	struct xvpc_state *st = NULL;
	char doc[4096], err[XVPC_STATE_ERR_LEN] = "";

	snprintf(doc, sizeof(doc), "{%s, \"services\": [%s]}", base, svcs);
	if (xvpc_state_parse(doc, strlen(doc), 0, &st, err, sizeof(err)))
		fail_msg("state: %s", err);
	return st;
}

#define S80                                                                    \
	"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, \"protocol\": " \
	"\"tcp\", \"backends\": [{\"ip\": \"10.0.1.10\"}, {\"ip\": "           \
	"\"10.0.1.11\"}]}"
#define S80B                                                                   \
	"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, \"protocol\": " \
	"\"tcp\", \"backends\": [{\"ip\": \"10.0.1.10\"}, {\"ip\": "           \
	"\"10.0.1.11\", \"weight\": 3}]}"
#define S80D                                                                   \
	"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, \"protocol\": " \
	"\"tcp\", \"backends\": [{\"ip\": \"10.0.1.10\"}, {\"ip\": "           \
	"\"10.0.1.11\", \"weight\": 3, \"healthy\": false}]}"
#define S53                                                                    \
	"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 53, \"protocol\": " \
	"\"udp\", \"backends\": [{\"ip\": \"10.0.1.12\"}]}"

#define SPUB                                                                   \
	"{\"vpc\": 1, \"vip\": \"203.0.113.10\", \"port\": 80, \"protocol\": " \
	"\"tcp\", \"public\": true, \"backends\": [{\"ip\": \"10.0.1.10\"}]}"

/* A public service is set through set_public, keyed in VPC 0 with the
 * backends' VPC beside, diffed and deleted like any other. */
static void test_public(void **unused)
{
	struct fake f = {0};
	struct agent_lb_sync *ls = agent_lb_sync_new(&fake_ops, &f);
	struct xvpc_state *st = state(SPUB ", " S80);
	struct agent_lb_stats r;

	(void)unused;
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.added, 2);
	assert_int_equal(f.public_sets, 1);
	assert_int_equal(f.backend_vpc, 1);
	assert_true(f.keys[0].vpc_id == XVPC_LB_PUBLIC ||
		    f.keys[1].vpc_id == XVPC_LB_PUBLIC);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.unchanged, 2);
	assert_int_equal(f.public_sets, 1);
	xvpc_state_free(st);
	st = state(S80);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.removed, 1);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.keys[0].vpc_id, 1);
	xvpc_state_free(st);
	agent_lb_sync_free(ls);
}

static bool down_11(void *ctx, const struct xvpc_state_svc *s,
		    const struct xvpc_state_lb_backend *b)
{
	(void)ctx;
	(void)s;
	return b->ip != inet_addr("10.0.1.11");
}

static void test_diff(void **unused)
{
	struct fake f = {0};
	struct agent_lb_sync *ls = agent_lb_sync_new(&fake_ops, &f);
	struct agent_lb_stats r;
	struct xvpc_state *st;

	(void)unused;
	assert_non_null(ls);
	st = state(S80 ", " S53);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.added, 2);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.sets, 2);
	/* the same state again: nothing touched */
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.unchanged, 2);
	assert_int_equal(f.sets, 2);
	xvpc_state_free(st);

	/* a weight changes: only that service is replaced; the other goes */
	st = state(S80B);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.changed, 1);
	assert_int_equal(r.removed, 1);
	assert_int_equal(r.unchanged, 0);
	assert_int_equal(f.sets, 3);
	assert_int_equal(f.dels, 1);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.n_be[0], 2);

	/* a backend down: replaced without it, then back */
	assert_int_equal(agent_lb_sync(ls, st, down_11, NULL, &r), 0);
	assert_int_equal(r.changed, 1);
	assert_int_equal(r.backends_down, 1);
	assert_int_equal(f.n_be[0], 1);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.changed, 1);
	assert_int_equal(f.n_be[0], 2);

	/* reported down by its node ("healthy": false): left out without
	 * any probe, and back when the report is gone */
	xvpc_state_free(st);
	st = state(S80D);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.changed, 1);
	assert_int_equal(r.backends_down, 1);
	assert_int_equal(f.n_be[0], 1);
	xvpc_state_free(st);
	st = state(S80B);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.changed, 1);
	assert_int_equal(f.n_be[0], 2);

	/* a service deleted behind the agent's back is set again */
	fake_del(&f, &f.keys[0]);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.added, 1);

	/* a failed set is reported and retried on the next run */
	xvpc_state_free(st);
	st = state(S80B ", " S53);
	f.fail_set = -ENOSPC;
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), -ENOSPC);
	assert_int_equal(r.failed, 1);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.added, 1);
	assert_int_equal(r.unchanged, 1);

	/* after invalidation (restart, SIGHUP) every service is set again */
	agent_lb_sync_invalidate(ls);
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.changed, 2);
	/* no services: all deleted */
	xvpc_state_free(st);
	st = state("");
	assert_int_equal(agent_lb_sync(ls, st, NULL, NULL, &r), 0);
	assert_int_equal(r.removed, 2);
	assert_int_equal(f.n, 0);
	xvpc_state_free(st);
	agent_lb_sync_free(ls);
}

/* ---- health ---- */

static int listen_lo(__u16 *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int changes;
static void on_change(void *ctx)
{
	(void)ctx;
	__atomic_add_fetch(&changes, 1, __ATOMIC_SEQ_CST);
}

/* Polls up to 10 s (a bound, not a timing assertion) for up == want. */
static bool wait_up(struct agent_hc *hc, const struct xvpc_state_svc *s,
		    bool want)
{
	for (int i = 0; i < 1000; i++) {
		if (agent_hc_up(hc, s, &s->backends[0]) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_health_tcp(void **unused)
{
	struct xvpc_state *st;
	struct agent_hc *hc = NULL;
	char svc[512];
	__u16 port;
	int lfd = listen_lo(&port);
	unsigned long targets, down, probes;

	(void)unused;
	snprintf(
		svc, sizeof(svc),
		"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		"\"protocol\": \"tcp\", \"backends\": [{\"ip\": \"127.0.0.1\", "
		"\"port\": %u}], \"health_check\": {\"type\": \"tcp\", "
		"\"interval_ms\": 100, \"timeout_ms\": 50, \"rise\": 2, "
		"\"fall\": 2}}",
		port);
	st = state(svc);
	assert_int_equal(agent_hc_start(on_change, NULL, &hc), 0);
	assert_int_equal(agent_hc_set(hc, st), 0);
	agent_hc_counts(hc, &targets, &down, &probes);
	assert_int_equal(targets, 1);
	assert_true(agent_hc_up(hc, &st->svcs[0], &st->svcs[0].backends[0]));
	/* the listener goes away: refused connects take it down */
	close(lfd);
	assert_true(wait_up(hc, &st->svcs[0], false));
	agent_hc_counts(hc, &targets, &down, &probes);
	assert_int_equal(down, 1);
	assert_true(probes >= 2);
	assert_true(__atomic_load_n(&changes, __ATOMIC_SEQ_CST) >= 1);
	/* a new listener on the same port brings it back */
	{
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons(port),
					 .sin_addr.s_addr =
						 htonl(INADDR_LOOPBACK)};
		int one = 1;

		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)),
				 0);
		assert_int_equal(listen(lfd, 64), 0);
	}
	assert_true(wait_up(hc, &st->svcs[0], true));
	/* the set shrinks: no target left, state kept for nobody */
	xvpc_state_free(st);
	st = state("");
	assert_int_equal(agent_hc_set(hc, st), 0);
	agent_hc_counts(hc, &targets, &down, &probes);
	assert_int_equal(targets, 0);
	agent_hc_stop(hc);
	close(lfd);
	xvpc_state_free(st);
}

/* A tiny HTTP server in a thread-less way: the test answers probes itself
 * between waits. */
struct http_srv {
	int lfd;
	const char *reply;
};

static void serve_some(struct http_srv *h, int ms)
{
	struct pollfd p = {.fd = h->lfd, .events = POLLIN};

	while (poll(&p, 1, ms) > 0) {
		char buf[512];
		int c = accept(h->lfd, NULL, NULL);

		if (c < 0)
			break;
		if (recv(c, buf, sizeof(buf), 0) > 0)
			send(c, h->reply, strlen(h->reply), MSG_NOSIGNAL);
		close(c);
	}
}

static void test_health_http(void **unused)
{
	struct http_srv h = {.reply = "HTTP/1.0 503 Busy\r\n\r\n"};
	struct xvpc_state *st;
	struct agent_hc *hc = NULL;
	char svc[512];
	__u16 port;
	bool ok = false;

	(void)unused;
	h.lfd = listen_lo(&port);
	snprintf(
		svc, sizeof(svc),
		"{\"vpc\": 1, \"vip\": \"10.0.100.100\", \"port\": 80, "
		"\"protocol\": \"tcp\", \"backends\": [{\"ip\": \"127.0.0.1\", "
		"\"port\": %u}], \"health_check\": {\"type\": \"http\", "
		"\"interval_ms\": 100, \"timeout_ms\": 80, \"rise\": 1, "
		"\"fall\": 1, \"path\": \"/health\"}}",
		port);
	st = state(svc);
	assert_int_equal(agent_hc_start(NULL, NULL, &hc), 0);
	assert_int_equal(agent_hc_set(hc, st), 0);
	for (int i = 0; i < 100 && !ok; i++) {
		serve_some(&h, 50);
		ok = !agent_hc_up(hc, &st->svcs[0], &st->svcs[0].backends[0]);
	}
	assert_true(ok); /* 503 is not the expected 200 */
	h.reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	ok = false;
	for (int i = 0; i < 100 && !ok; i++) {
		serve_some(&h, 50);
		ok = agent_hc_up(hc, &st->svcs[0], &st->svcs[0].backends[0]);
	}
	assert_true(ok);
	agent_hc_stop(hc);
	close(h.lfd);
	xvpc_state_free(st);
}

/* ---- who probes what (issue 5: the agent next to the backend) ---- */

#define NODE1 "192.168.1.1"

/* VPC 1 10.0.1.0/24: vm1 .10 on this node (interface "xvpct-none0", which
 * does not exist), vm2 .11 on node 2. Service 7 (id from the controller)
 * over vm1 (local), vm2 (remote, reported down by its node), .50 (in the
 * subnet, no endpoint known: remote, learn mode) and 127.0.0.1 (plain). */
static struct xvpc_state *where_state(void)
{
	struct xvpc_state *st = NULL;
	char err[XVPC_STATE_ERR_LEN] = "";
	const char *doc =
		"{\"vpcs\": [{\"id\": 1}], \"subnets\": [{\"vpc\": 1, "
		"\"cidr\": \"10.0.1.0/24\", \"vni\": 1001, \"gateway_ip\": "
		"\"10.0.1.1\", \"gateway_mac\": \"02:78:76:70:63:01\"}], "
		"\"endpoints\": [{\"vpc\": 1, \"ip\": \"10.0.1.10\", \"mac\": "
		"\"02:00:00:00:01:0a\", \"node_ip\": \"" NODE1 "\", "
		"\"ifname\": \"xvpct-none0\"}, {\"vpc\": 1, \"ip\": "
		"\"10.0.1.11\", \"mac\": \"02:00:00:00:01:0b\", \"node_ip\": "
		"\"192.168.1.2\"}], \"services\": [{\"id\": 7, \"vpc\": 1, "
		"\"vip\": \"10.0.100.100\", \"port\": 80, \"protocol\": "
		"\"tcp\", \"backends\": [{\"ip\": \"10.0.1.10\"}, {\"ip\": "
		"\"10.0.1.11\", \"healthy\": false}, {\"ip\": \"10.0.1.50\"}, "
		"{\"ip\": \"127.0.0.1\", \"port\": 1}], \"health_check\": "
		"{\"type\": \"tcp\", \"interval_ms\": 100, \"timeout_ms\": 50, "
		"\"rise\": 1, \"fall\": 2}}]}";

	if (xvpc_state_parse(doc, strlen(doc), 0, &st, err, sizeof(err)))
		fail_msg("state: %s", err);
	return st;
}

static void test_classify(void **unused)
{
	struct xvpc_state *st = where_state();
	const struct xvpc_state_svc *s = &st->svcs[0];
	const struct xvpc_state_ep *ep = NULL;
	__be32 node = inet_addr(NODE1);

	(void)unused;
	assert_int_equal(
		agent_hc_classify(st, node, s, inet_addr("10.0.1.10"), &ep),
		AGENT_HC_LOCAL);
	assert_non_null(ep);
	assert_string_equal(ep->ifname, "xvpct-none0");
	assert_int_equal(
		agent_hc_classify(st, node, s, inet_addr("10.0.1.11"), &ep),
		AGENT_HC_REMOTE);
	assert_null(ep);
	assert_int_equal(
		agent_hc_classify(st, node, s, inet_addr("10.0.1.50"), NULL),
		AGENT_HC_REMOTE);
	assert_int_equal(
		agent_hc_classify(st, node, s, inet_addr("127.0.0.1"), NULL),
		AGENT_HC_PLAIN);
	/* seen from node 2, vm2 is the local one and vm1 remote */
	assert_int_equal(agent_hc_classify(st, inet_addr("192.168.1.2"), s,
					   inet_addr("10.0.1.11"), NULL),
			 AGENT_HC_LOCAL);
	assert_int_equal(agent_hc_classify(st, inet_addr("192.168.1.2"), s,
					   inet_addr("10.0.1.10"), NULL),
			 AGENT_HC_REMOTE);
	xvpc_state_free(st);
}

static int prepared;
static int fake_prepare(void *ctx, int ifindex, const char *ifname, __be32 ip,
			const __u8 mac[6])
{
	(void)ctx, (void)ifindex, (void)ifname, (void)ip, (void)mac;
	prepared++;
	return 0;
}

/* Targets by kind; a remote backend follows the state's verdict; the
 * local one is reported, and a local VM whose interface is gone fails its
 * probes and goes down. */
static void test_local_remote_plain(void **unused)
{
	struct agent_hc_probe p = {.node_ip = inet_addr(NODE1),
				   .probe_ip = inet_addr("169.254.169.250"),
				   .port_min = 60000,
				   .port_max = 60999,
				   .prepare = fake_prepare};
	struct xvpc_state *st = where_state();
	const struct xvpc_state_svc *s = &st->svcs[0];
	unsigned long targets, down, probes;
	struct agent_hc_health *h = NULL;
	struct agent_hc *hc = NULL;
	size_t n = 0;
	bool gone = false;

	(void)unused;
	assert_int_equal(agent_hc_start(NULL, NULL, &hc), 0);
	/* without a probe path only the plain address is probed */
	assert_int_equal(agent_hc_set(hc, st), 0);
	agent_hc_counts(hc, &targets, &down, &probes);
	assert_int_equal(targets, 1);
	assert_int_equal(agent_hc_local_health(hc, st, &h, &n), 0);
	assert_int_equal(n, 0);
	assert_null(h);

	agent_hc_set_probe(hc, &p);
	assert_int_equal(agent_hc_set(hc, st), 0);
	agent_hc_counts(hc, &targets, &down, &probes);
	assert_int_equal(targets, 2); /* vm1 and 127.0.0.1 */
	/* remote: the state's verdict, whatever the probes */
	assert_false(agent_hc_up(hc, s, &s->backends[1]));
	assert_true(agent_hc_up(hc, s, &s->backends[2]));
	assert_int_equal(agent_hc_local_health(hc, st, &h, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].svc_id, 7);
	assert_int_equal(h[0].ip, inet_addr("10.0.1.10"));
	assert_int_equal(h[0].port, 80);
	assert_int_equal(h[0].vip, inet_addr("10.0.100.100"));
	free(h);
	/* no interface "xvpct-none0": probes fail, the backend goes down */
	for (int i = 0; i < 200 && !gone; i++) {
		usleep(10000);
		gone = !agent_hc_up(hc, s, &s->backends[0]);
	}
	assert_true(gone);
	assert_int_equal(prepared, 0); /* never prepared: no interface */
	assert_int_equal(agent_hc_local_health(hc, st, &h, &n), 0);
	assert_int_equal(n, 1);
	assert_false(h[0].up);
	assert_true(h[0].checked);
	free(h);
	agent_hc_stop(hc);
	xvpc_state_free(st);
}

/* The local path on loopback: a "VM" 127.0.0.5 on interface lo, probed
 * from 127.0.0.1 (standing in for the probe address) bound to lo and to a
 * port of the range; the interface is prepared once; the listener sees the
 * probe's source port in the range. Needs root (SO_BINDTODEVICE). */
static void test_local_probe_path(void **unused)
{
	struct agent_hc_probe p = {.node_ip = inet_addr(NODE1),
				   .probe_ip = inet_addr("127.0.0.1"),
				   .port_min = 61000,
				   .port_max = 61009,
				   .prepare = fake_prepare};
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = inet_addr("127.0.0.5")},
			   peer;
	socklen_t len = sizeof(sa);
	struct pollfd pf = {.events = POLLIN};
	struct xvpc_state *st = NULL;
	char doc[2048], err[XVPC_STATE_ERR_LEN] = "";
	struct agent_hc *hc = NULL;
	bool gone = false;
	int lfd, c;

	(void)unused;
	if (geteuid())
		skip();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 64), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	snprintf(doc, sizeof(doc),
		 "{\"vpcs\": [{\"id\": 1}], \"subnets\": [{\"vpc\": 1, "
		 "\"cidr\": \"127.0.0.0/24\", \"vni\": 1001, \"gateway_ip\": "
		 "\"127.0.0.254\", \"gateway_mac\": \"02:78:76:70:63:01\"}], "
		 "\"endpoints\": [{\"vpc\": 1, \"ip\": \"127.0.0.5\", \"mac\": "
		 "\"02:00:00:00:01:05\", \"node_ip\": \"" NODE1 "\", "
		 "\"ifname\": \"lo\"}], \"services\": [{\"vpc\": 1, \"vip\": "
		 "\"10.0.100.100\", \"port\": 80, \"protocol\": \"tcp\", "
		 "\"backends\": [{\"ip\": \"127.0.0.5\", \"port\": %u}], "
		 "\"health_check\": {\"type\": \"tcp\", \"interval_ms\": 100, "
		 "\"timeout_ms\": 50, \"rise\": 1, \"fall\": 2}}]}",
		 ntohs(sa.sin_port));
	if (xvpc_state_parse(doc, strlen(doc), 0, &st, err, sizeof(err)))
		fail_msg("state: %s", err);
	prepared = 0;
	assert_int_equal(agent_hc_start(NULL, NULL, &hc), 0);
	agent_hc_set_probe(hc, &p);
	assert_int_equal(agent_hc_set(hc, st), 0);
	/* three probes arrive, each from a port of the range */
	pf.fd = lfd;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(poll(&pf, 1, 2000), 1);
		len = sizeof(peer);
		c = accept(lfd, (struct sockaddr *)&peer, &len);
		assert_true(c >= 0);
		assert_int_equal(peer.sin_addr.s_addr, inet_addr("127.0.0.1"));
		assert_in_range(ntohs(peer.sin_port), 61000, 61009);
		close(c);
	}
	assert_true(agent_hc_up(hc, &st->svcs[0], &st->svcs[0].backends[0]));
	assert_int_equal(prepared, 1); /* once per interface */
	close(lfd);
	for (int i = 0; i < 200 && !gone; i++) {
		usleep(10000);
		gone = !agent_hc_up(hc, &st->svcs[0], &st->svcs[0].backends[0]);
	}
	assert_true(gone);
	agent_hc_stop(hc);
	xvpc_state_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_public),
		cmocka_unit_test(test_health_tcp),
		cmocka_unit_test(test_health_http),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_local_remote_plain),
		cmocka_unit_test(test_local_probe_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
