// SPDX-License-Identifier: GPL-2.0-only
/*
 * The controller source's handling of long-poll answers, fed directly
 * (agent_source_ctrl_new_fed: no thread, no HTTP), against a model: random
 * answers of endpoint changes (puts of new and existing endpoints, moves,
 * deletes, deletes of absent ones), some of them invalid as a whole, some
 * with a change of another kind. After each, the source's state must be
 * exactly the model's (same endpoints, same order: the reconciler's quick
 * path relies on it), and a refused answer must leave it as it was (the
 * in-place path takes every change back). Deletes of endpoints the state
 * did not hold come out of take_gone.
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

#include <cmocka.h>

#include "agent/source_ctrl.h"
#include "log.h"
#include "netutil.h"

#define NODE_IP	 "192.168.100.1"
#define MAX_EPS	 256
#define ANSWERS	 600
#define LOCAL_IF 4 /* local endpoints use xv0 .. xv3 */

struct model {
	struct xvpc_state_ep eps[MAX_EPS];
	size_t n;
	__u64 rev;
};

struct fix {
	struct agent_source *src;
	struct model m;
	unsigned int seed;
	char *buf;
	size_t len;
	FILE *f;
};

static unsigned int rnd(struct fix *F)
{
	F->seed = F->seed * 1103515245u + 12345u;
	return F->seed >> 8;
}

static __be32 ip_of(const char *s)
{
	__be32 ip = 0;

	xvpc_parse_ip(s, &ip);
	return ip;
}

static long find(const struct model *m, __be32 ip)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->eps[i].ip == ip)
			return i;
	return -1;
}

/* ---- answers --------------------------------------------------------- */

static void begin(struct fix *F)
{
	F->buf = NULL;
	F->len = 0;
	F->f = open_memstream(&F->buf, &F->len);
	assert_non_null(F->f);
}

static void end(struct fix *F)
{
	assert_int_equal(fclose(F->f), 0);
}

static void ep_json(FILE *f, const struct xvpc_state_ep *e)
{
	char ip[XVPC_IP_STRLEN], node[XVPC_IP_STRLEN];

	fprintf(f,
		"{\"vpc\":%u,\"ip\":\"%s\",\"mac\":\"%02x:%02x:%02x:%02x:%02x:"
		"%02x\",\"node_ip\":\"%s\"",
		e->vpc, xvpc_fmt_ip(e->ip, ip), e->mac[0], e->mac[1], e->mac[2],
		e->mac[3], e->mac[4], e->mac[5], xvpc_fmt_ip(e->node_ip, node));
	if (e->ifname[0])
		fprintf(f, ",\"ifname\":\"%s\"", e->ifname);
	fputc('}', f);
}

/* A random endpoint of 10.0.0.0/24 or 10.0.1.0/24 (hosts 10 .. 73):
 * remote, or local with an interface name no other endpoint of m has
 * (false: none free). */
static bool random_ep(struct fix *F, const struct model *m,
		      struct xvpc_state_ep *e, bool local)
{
	unsigned int h = 10 + rnd(F) % 64, sn = rnd(F) % 2;

	memset(e, 0, sizeof(*e));
	e->vpc = 1;
	e->ip = htonl(0x0a000000u | sn << 8 | h);
	e->mac[0] = 0x02;
	e->mac[4] = sn;
	e->mac[5] = h;
	e->node_ip = htonl(0xc0a86402u + rnd(F) % 4); /* 192.168.100.2+ */
	if (!local)
		return true;
	e->node_ip = ip_of(NODE_IP);
	for (int i = 0; i < LOCAL_IF; i++) {
		bool used = false;

		snprintf(e->ifname, sizeof(e->ifname), "xv%d", i);
		for (size_t j = 0; j < m->n; j++)
			used |= m->eps[j].ip != e->ip &&
				!strcmp(m->eps[j].ifname, e->ifname);
		if (!used)
			return true;
	}
	return false;
}

static void change_json(struct fix *F, bool *first, bool put,
			const struct xvpc_state_ep *e)
{
	fprintf(F->f,
		"%s{\"revision\":%llu,\"op\":\"%s\",\"kind\":\"endpoint\","
		"\"object\":",
		*first ? "" : ",", (unsigned long long)F->m.rev + 1,
		put ? "put" : "delete");
	ep_json(F->f, e);
	fputc('}', F->f);
	*first = false;
}

static void feed_ok(struct fix *F)
{
	char why[512];
	int err = agent_source_ctrl_feed(F->src, F->buf, F->len, why,
					 sizeof(why));

	if (err)
		fail_msg("answer refused: %s\n%s", why, F->buf);
	free(F->buf);
}

/* The source's current state (a copy), compared with the model. */
static void check_state(struct fix *F)
{
	struct xvpc_state *st = NULL;
	int ret = F->src->ops->fetch(F->src, true, &st);

	assert_int_equal(ret, 1);
	assert_true(st->validated);
	assert_int_equal(st->revision, F->m.rev);
	assert_int_equal(st->n_eps, F->m.n);
	for (size_t i = 0; i < F->m.n; i++)
		if (memcmp(&st->eps[i], &F->m.eps[i], sizeof(st->eps[i])))
			fail_msg("endpoint %zu differs from the model", i);
	assert_int_equal(st->n_subnets, 2);
	xvpc_state_free(st);
}

/* ---- fixture ---------------------------------------------------------- */

static int setup(void **state)
{
	struct agent_ctrl_opts o = {.node_name = "n1"};
	struct fix *F = calloc(1, sizeof(*F));

	if (!F)
		return -1;
	o.node_ip = ip_of(NODE_IP);
	if (agent_source_ctrl_new_fed(&o, &F->src)) {
		free(F);
		return -1;
	}
	F->seed = 12345;
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	struct fix *F = *state;

	agent_source_destroy(F->src);
	free(F);
	return 0;
}

/* Snapshot: VPC 1 with two subnets, a local and two remote endpoints. */
static void snapshot(struct fix *F)
{
	struct model *m = &F->m;
	bool first = true;

	m->rev = 10;
	m->n = 0;
	for (int i = 0; i < 3; i++) {
		struct xvpc_state_ep *e = &m->eps[m->n];

		random_ep(F, m, e, i == 0);
		if (find(m, e->ip) < 0)
			m->n++;
	}
	begin(F);
	fprintf(F->f,
		"{\"revision\":%llu,\"snapshot\":true,\"vpcs\":[{\"id\":1}],"
		"\"subnets\":[{\"vpc\":1,\"cidr\":\"10.0.0.0/24\",\"vni\":100,"
		"\"gateway_ip\":\"10.0.0.1\",\"gateway_mac\":"
		"\"02:00:00:00:01:01\"},{\"vpc\":1,\"cidr\":\"10.0.1.0/24\","
		"\"vni\":101,\"gateway_ip\":\"10.0.1.1\",\"gateway_mac\":"
		"\"02:00:00:00:01:02\"}],\"endpoints\":[",
		(unsigned long long)m->rev);
	for (size_t i = 0; i < m->n; i++) {
		fputs(first ? "" : ",", F->f);
		ep_json(F->f, &m->eps[i]);
		first = false;
	}
	fputs("],\"services\":[]}", F->f);
	end(F);
	feed_ok(F);
}

/* ---- the test ---------------------------------------------------------- */

enum bad {
	BAD_NONE,
	BAD_OUTSIDE, /* an endpoint outside every subnet */
	BAD_GATEWAY, /* the subnet's gateway address */
	BAD_IFNAME,  /* a local endpoint with another one's interface */
	BAD_FIELD,   /* an unknown field */
};

/* One random change into the answer, applied to model n (a copy). */
static void random_change(struct fix *F, struct model *n, bool *first,
			  __be32 *gone, size_t *n_gone)
{
	unsigned int r = rnd(F) % 100;
	struct xvpc_state_ep e;
	long i;

	if (r < 35 || !n->n) { /* put: new or existing, maybe local */
		if (!random_ep(F, n, &e, r < 5))
			random_ep(F, n, &e, false);
		change_json(F, first, true, &e);
		i = find(n, e.ip);
		if (i >= 0)
			n->eps[i] = e;
		else if (n->n < MAX_EPS)
			n->eps[n->n++] = e;
		else
			fail_msg("model full");
		return;
	}
	if (r < 60) { /* move an existing remote one to another node */
		i = rnd(F) % n->n;
		e = n->eps[i];
		if (e.ifname[0])
			return;
		e.node_ip = htonl(0xc0a86402u + rnd(F) % 4);
		change_json(F, first, true, &e);
		n->eps[i] = e;
		return;
	}
	if (r < 90) { /* delete an existing one */
		i = rnd(F) % n->n;
		change_json(F, first, false, &n->eps[i]);
		memmove(&n->eps[i], &n->eps[i + 1],
			(n->n - i - 1) * sizeof(n->eps[0]));
		n->n--;
		return;
	}
	/* delete one the state does not hold */
	random_ep(F, n, &e, false);
	if (find(n, e.ip) >= 0)
		return;
	change_json(F, first, false, &e);
	gone[(*n_gone)++] = e.ip;
}

/* A change that makes the answer invalid, after the changes that made
 * model n. */
static void bad_change(struct fix *F, const struct model *n, bool *first,
		       enum bad b)
{
	struct xvpc_state_ep e;

	random_ep(F, n, &e, false);
	if (b == BAD_OUTSIDE)
		e.ip = ip_of("10.0.9.1");
	else if (b == BAD_GATEWAY)
		e.ip = ip_of("10.0.1.1");
	if (b == BAD_IFNAME) {
		/* Another IP on this node with a name a local one has. */
		for (size_t i = 0; i < n->n; i++)
			if (n->eps[i].ifname[0]) {
				e.node_ip = ip_of(NODE_IP);
				strcpy(e.ifname, n->eps[i].ifname);
				e.ip = htonl(0x0a000000u | 200);
			}
		if (!e.ifname[0])
			e.ip = ip_of("10.0.9.2"); /* no local one: outside */
	}
	if (b == BAD_FIELD) {
		fprintf(F->f,
			"%s{\"revision\":%llu,\"op\":\"put\",\"kind\":"
			"\"endpoint\",\"object\":{\"vpc\":1,\"colour\":1}}",
			*first ? "" : ",", (unsigned long long)F->m.rev + 1);
		*first = false;
		return;
	}
	change_json(F, first, true, &e);
}

static void test_random_answers_match_model(void **state)
{
	struct fix *F = *state;
	size_t accepted = 0, refused = 0, gone_seen = 0;

	snapshot(F);
	check_state(F);
	for (int a = 0; a < ANSWERS; a++) {
		struct model *n = malloc(sizeof(*n));
		unsigned int k = 1 + rnd(F) % (a % 7 ? 6 : 40);
		enum bad b = rnd(F) % 5 ? BAD_NONE : 1 + rnd(F) % BAD_FIELD;
		/* A later change could free the name a bad ifname took. */
		unsigned int bad_at = b == BAD_IFNAME ? k - 1 : rnd(F) % k;
		bool first = true, other = !(rnd(F) % 10);
		__be32 gone[64];
		size_t n_gone = 0;
		struct xvpc_ep_key *keys = NULL;
		char why[512];
		int err;

		assert_non_null(n);
		*n = F->m;
		begin(F);
		fprintf(F->f,
			"{\"revision\":%llu,\"snapshot\":false,\"changes\":[",
			(unsigned long long)F->m.rev + 1);
		if (other) /* a subnet put, unchanged: the copy path */
			fprintf(F->f,
				"{\"revision\":%llu,\"op\":\"put\",\"kind\":"
				"\"subnet\",\"object\":{\"vpc\":1,\"cidr\":"
				"\"10.0.0.0/24\",\"vni\":100,\"gateway_ip\":"
				"\"10.0.0.1\",\"gateway_mac\":"
				"\"02:00:00:00:01:01\"}}",
				(unsigned long long)F->m.rev + 1);
		first = !other;
		for (unsigned int i = 0; i < k && n_gone < 60; i++) {
			if (b && i == bad_at)
				bad_change(F, n, &first, b);
			else
				random_change(F, n, &first, gone, &n_gone);
		}
		fputs("]}", F->f);
		end(F);
		err = agent_source_ctrl_feed(F->src, F->buf, F->len, why,
					     sizeof(why));
		if (b && !err)
			fail_msg("answer %d accepted with bad change %d:\n%s",
				 a, b, F->buf);
		if (!b && err)
			fail_msg("answer %d refused: %s\n%s", a, why, F->buf);
		free(F->buf);
		if (!err) {
			n->rev++;
			F->m = *n;
			accepted++;
		} else {
			refused++;
		}
		free(n);
		check_state(F);
		/* Deletes of absent endpoints, in order, once accepted. */
		n_gone = err ? 0 : n_gone;
		assert_int_equal(F->src->ops->take_gone(F->src, &keys), n_gone);
		for (size_t i = 0; i < n_gone; i++)
			assert_int_equal(keys[i].ip, gone[i]);
		gone_seen += n_gone;
		free(keys);
	}
	/* The mix did what it says. */
	assert_true(accepted > ANSWERS / 2);
	assert_true(refused > ANSWERS / 10);
	assert_true(gone_seen > 0);
}

/* Feeding a source that runs its own thread is refused. */
static void test_feed_needs_fed_source(void **state)
{
	const char *urls[] = {"http://127.0.0.1:9"};
	struct agent_ctrl_opts o = {.urls = urls,
				    .n_urls = 1,
				    .node_name = "n1",
				    .token = "t",
				    .no_register = true,
				    .connect_timeout_ms = 100,
				    .retry_max_ms = 100};
	struct agent_source *s;
	char why[64];

	(void)state;
	o.node_ip = ip_of(NODE_IP);
	assert_int_equal(agent_source_ctrl_new(&o, &s), 0);
	assert_int_equal(agent_source_ctrl_feed(s, "{}", 2, why, sizeof(why)),
			 -EBUSY);
	agent_source_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_answers_match_model,
						setup, teardown),
		cmocka_unit_test(test_feed_needs_fed_source),
	};

	xvpc_log_set_level(getenv("XVPC_TEST_LOG") ? XVPC_LOG_DEBUG
						   : XVPC_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
