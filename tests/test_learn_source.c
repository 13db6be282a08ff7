// SPDX-License-Identifier: GPL-2.0-only
/*
 * Learning mode in the agent's controller source, against a fake controller
 * on loopback: a snapshot with a learn-mode VPC and the cluster's nodes,
 * then a change answer that switches gateways, adds and removes a node,
 * carries a move notice (a remote endpoint put) and the delete of a remote
 * endpoint the node never held. The state after it has the new gateways,
 * nodes and the notice; the delete is handed on through take_gone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>

#include "agent/source.h"
#include "agent/source_ctrl.h"
#include "log.h"
#include "state.h"

#define SNAPSHOT                                                               \
	"{\"revision\": 10, \"vpcs\": [{\"id\": 7, \"mode\": \"learn\", "      \
	"\"gateways\": [\"192.168.100.3\", \"192.168.100.4\"]}], "             \
	"\"subnets\": [{\"vpc\": 7, \"cidr\": \"10.7.0.0/24\", \"vni\": 700, " \
	"\"gateway_ip\": \"10.7.0.1\", \"gateway_mac\": "                      \
	"\"02:78:76:70:63:07\"}], \"endpoints\": [{\"vpc\": 7, \"ip\": "       \
	"\"10.7.0.10\", \"mac\": \"02:00:00:07:00:0a\", \"node_ip\": "         \
	"\"192.168.100.1\", \"ifname\": \"xv1\"}], \"nodes\": "                \
	"[\"192.168.100.1\", \"192.168.100.2\", \"192.168.100.3\", "           \
	"\"192.168.100.4\"]}"

#define CHANGES                                                               \
	"{\"revision\": 15, \"snapshot\": false, \"changes\": ["              \
	"{\"revision\": 11, \"op\": \"put\", \"kind\": \"vpc\", \"object\": " \
	"{\"id\": 7, \"mode\": \"learn\", \"gateways\": [\"192.168.100.4\", " \
	"\"192.168.100.5\"]}},"                                               \
	"{\"revision\": 12, \"op\": \"put\", \"kind\": \"node\", "            \
	"\"object\": {\"ip\": \"192.168.100.5\"}},"                           \
	"{\"revision\": 13, \"op\": \"delete\", \"kind\": \"node\", "         \
	"\"object\": {\"ip\": \"192.168.100.3\"}},"                           \
	"{\"revision\": 14, \"op\": \"put\", \"kind\": \"endpoint\", "        \
	"\"object\": {\"vpc\": 7, \"ip\": \"10.7.0.20\", \"mac\": "           \
	"\"02:00:00:07:00:14\", \"node_ip\": \"192.168.100.2\"}},"            \
	"{\"revision\": 15, \"op\": \"delete\", \"kind\": \"endpoint\", "     \
	"\"object\": {\"vpc\": 7, \"ip\": \"10.7.0.30\", \"mac\": "           \
	"\"02:00:00:07:00:1e\", \"node_ip\": \"192.168.100.2\"}}]}"

#define EMPTY "{\"revision\": 15, \"snapshot\": false, \"changes\": []}"

struct fake {
	struct MHD_Daemon *d;
	uint16_t port;
	int polls;
	bool s1_seen; /* __atomic: the test has the snapshot's state */
};

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
			       const char *url, const char *method,
			       const char *version, const char *data,
			       size_t *data_size, void **con_cls)
{
	struct fake *f = cls;
	const char *since, *body;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned int status = 200;

	(void)version;
	(void)data;
	if (!*con_cls) {
		*con_cls = f;
		return MHD_YES;
	}
	if (*data_size) {
		*data_size = 0;
		return MHD_YES;
	}
	since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
	if (!strcmp(method, "POST") && !strcmp(url, "/v1/nodes")) {
		body = "{}";
		status = 201;
	} else if (strcmp(url, "/v1/nodes/n1/state")) {
		body = "{}";
		status = 404;
	} else if (!since) {
		body = SNAPSHOT;
	} else if (!strcmp(since, "10")) {
		/* Once the test has the snapshot's state: the source hands
		 * over only the newest state it has. Bounded (5 s). */
		for (int i = 0; i < 5000 &&
				!__atomic_load_n(&f->s1_seen, __ATOMIC_ACQUIRE);
		     i++)
			usleep(1000);
		body = CHANGES;
	} else {
		/* Nothing new: a short long-poll. */
		usleep(50000);
		body = EMPTY;
	}
	__atomic_fetch_add(&f->polls, 1, __ATOMIC_RELAXED);
	r = MHD_create_response_from_buffer(strlen(body), (void *)body,
					    MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The next state from the source, within 20 s (bound, not a timing
 * assertion). */
static struct xvpc_state *next_state(struct agent_source *src, __u64 rev)
{
	for (int i = 0; i < 200; i++) {
		struct pollfd p = {.fd = src->ops->fd(src), .events = POLLIN};
		struct xvpc_state *st = NULL;

		poll(&p, 1, 100);
		if (src->ops->fetch(src, false, &st) == 1) {
			if (st->revision == rev)
				return st;
			xvpc_state_free(st);
		}
	}
	return NULL;
}

static void test_learn_changes(void **unused)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct fake f = {0};
	struct agent_source *src = NULL;
	struct xvpc_state *s1 = NULL, *s2 = NULL;
	struct xvpc_ep_key *gone = NULL;
	const struct xvpc_state_vpc *v;
	const union MHD_DaemonInfo *info;
	char url[64];
	const char *urls[1] = {url};
	struct agent_ctrl_opts o = {
		.urls = urls,
		.n_urls = 1,
		.node_name = "n1",
		.node_ip = inet_addr("192.168.100.1"),
		.token = "t",
		.wait_s = 1,
	};
	size_t n_gone = 0;
	bool ok;

	(void)unused;
	f.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
				       MHD_USE_THREAD_PER_CONNECTION,
			       0, NULL, NULL, handler, &f, MHD_OPTION_SOCK_ADDR,
			       &sa, MHD_OPTION_END);
	assert_non_null(f.d);
	info = MHD_get_daemon_info(f.d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", info->port);
	ok = !agent_source_ctrl_new(&o, &src);
	if (ok)
		s1 = next_state(src, 10);
	__atomic_store_n(&f.s1_seen, true, __ATOMIC_RELEASE);
	if (s1 && (s2 = next_state(src, 15)) && src->ops->take_gone)
		n_gone = src->ops->take_gone(src, &gone);
	agent_source_destroy(src);
	MHD_stop_daemon(f.d);

	assert_true(ok);
	assert_non_null(s1);
	assert_non_null(s2);
	v = xvpc_state_find_vpc(s1, 7);
	assert_non_null(v);
	assert_int_equal(v->mode, XVPC_MODE_LEARN);
	assert_int_equal(s1->n_nodes, 4);

	/* After the changes: new gateways, nodes, the notice. */
	v = xvpc_state_find_vpc(s2, 7);
	assert_non_null(v);
	assert_int_equal(v->mode, XVPC_MODE_LEARN);
	assert_int_equal(v->n_gateways, 2);
	assert_int_equal(v->gateways[0], inet_addr("192.168.100.4"));
	assert_int_equal(v->gateways[1], inet_addr("192.168.100.5"));
	assert_int_equal(s2->n_nodes, 4);
	for (size_t i = 0; i < s2->n_nodes; i++)
		assert_int_not_equal(s2->nodes[i], inet_addr("192.168.100.3"));
	assert_int_equal(s2->n_eps, 2);
	/* The delete of an endpoint it never held is handed on. */
	assert_int_equal(n_gone, 1);
	assert_int_equal(gone[0].vpc_id, 7);
	assert_int_equal(gone[0].ip, inet_addr("10.7.0.30"));
	free(gone);
	xvpc_state_free(s1);
	xvpc_state_free(s2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_learn_changes),
	};

	xvpc_log_set_level(XVPC_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
