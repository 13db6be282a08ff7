// SPDX-License-Identifier: GPL-2.0-only
/* The agent's health reporter (agent/health_report.h) against the real
 * controller in-process (embedded store in a temporary directory, server
 * on a loopback ephemeral port), with a fake source of local backends.
 *
 *   VPC 10.0.0.0/16, subnet 10.0.1.0/24: 10.0.1.10 on n1 (the client),
 *   10.0.1.20 and 10.0.1.21 on n2 (the reporter's node)
 *   load balancers L1 10.0.100.1:80 and L2 10.0.100.2:80, both -> .20, .21
 *
 * Covered: the body's format; the first full report, a delta per change
 * (the client node's state shows the backend down, then up), a backend no
 * longer local cleared by a full report, a dead first controller skipped
 * for the next one, a refused report (another node's backend) retried as
 * a full report once the source is right, a source that does not know its
 * set yet (-EAGAIN) holds the first full report back. Waits are bounded polls of the
 * client's state, never timing assertions. */
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "agent/health_report.h"
#include "controller/api.h"
#include "log.h"
#include "netutil.h"
#include "state.h"

#define ADMIN "xva_hr_test_admin_token_0"

struct fix {
	char dir[64];
	struct store *s;
	struct api api;
	struct http_server *srv;
	char base[64];
	char dead[64]; /* a loopback URL nobody listens on */
	char tok[128];
	int64_t l1, l2;
	/* The fake source. */
	pthread_mutex_t mu;
	struct agent_hc_local e[8];
	size_t n;
	int reads;
	bool unknown; /* the source answers -EAGAIN */
};

static struct fix *F;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->n + sz * nm + 1);

	if (!p)
		return 0;
	memcpy(p + b->n, d, sz * nm);
	b->p = p;
	b->n += sz * nm;
	p[b->n] = '\0';
	return sz * nm;
}

static long http(const char *method, const char *path, const char *token,
		 const char *body, json_object **out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[512], line[256];
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", F->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
	h = curl_slist_append(h, line);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (out)
		*out = b.p ? json_tokener_parse(b.p) : NULL;
	free(b.p);
	return status;
}

static int64_t create(const char *path, const char *token, const char *body)
{
	json_object *o = NULL;
	long st = http("POST", path, token, body, &o);
	int64_t id;

	if (st != 201)
		fail_msg("POST %s %s: %ld: %s", path, body, st,
			 o ? json_object_to_json_string(o) : "");
	id = json_object_get_int64(json_object_object_get(o, "id"));
	if (!strcmp(path, "/v1/tenants"))
		snprintf(F->tok, sizeof(F->tok), "%s",
			 json_object_get_string(
				 json_object_object_get(o, "token")));
	json_object_put(o);
	return id;
}

/* A loopback port that was free a moment ago: connections are refused. */
static void dead_url(char *buf, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(buf, len, "http://127.0.0.1:%u", ntohs(sa.sin_port));
}

static int setup(void **state)
{
	char body[256];
	int64_t vpc, sub;
	const char *ports[][2] = {
		{"10.0.1.10", "n1"}, {"10.0.1.20", "n2"}, {"10.0.1.21", "n2"}};
	bool gen;

	F = calloc(1, sizeof(*F));
	if (!F)
		return -1;
	pthread_mutex_init(&F->mu, NULL);
	strcpy(F->dir, "/tmp/xvpc-hr-XXXXXX");
	if (!mkdtemp(F->dir))
		return -1;
	if (store_embed_open(F->dir, NULL, &F->s) ||
	    api_init(&F->api, F->s, ADMIN, &gen) ||
	    http_start(&F->api, "127.0.0.1:0", &F->srv))
		return -1;
	snprintf(F->base, sizeof(F->base), "http://127.0.0.1:%u",
		 http_port(F->srv));
	dead_url(F->dead, sizeof(F->dead));
	create("/v1/tenants", ADMIN, "{\"name\":\"alpha\"}");
	create("/v1/nodes", ADMIN, "{\"name\":\"n1\",\"ip\":\"192.168.9.1\"}");
	create("/v1/nodes", ADMIN, "{\"name\":\"n2\",\"ip\":\"192.168.9.2\"}");
	vpc = create("/v1/vpcs", F->tok,
		     "{\"name\":\"v\",\"cidr\":\"10.0.0.0/16\"}");
	snprintf(body, sizeof(body), "{\"vpc\":%lld,\"cidr\":\"10.0.1.0/24\"}",
		 (long long)vpc);
	sub = create("/v1/subnets", F->tok, body);
	for (int i = 0; i < 3; i++) {
		snprintf(body, sizeof(body),
			 "{\"subnet\":%lld,\"ip\":\"%s\",\"node\":\"%s\","
			 "\"ifname\":\"xr%d\"}",
			 (long long)sub, ports[i][0], ports[i][1], i);
		create("/v1/ports", F->tok, body);
	}
	for (int i = 1; i <= 2; i++) {
		snprintf(body, sizeof(body),
			 "{\"vpc\":%lld,\"vip\":\"10.0.100.%d\",\"port\":80,"
			 "\"protocol\":\"tcp\",\"backends\":[{\"ip\":"
			 "\"10.0.1.20\"},{\"ip\":\"10.0.1.21\"}]}",
			 (long long)vpc, i);
		*(i == 1 ? &F->l1 : &F->l2) =
			create("/v1/loadbalancers", F->tok, body);
	}
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (F->srv)
		http_stop(F->srv);
	if (F->s) {
		api_fini(&F->api);
		store_close(F->s);
	}
	nftw(F->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	pthread_mutex_destroy(&F->mu);
	free(F);
	return 0;
}

/* ---- the fake source ---- */

static int source(void *ctx, struct agent_hc_local **out, size_t *n)
{
	struct fix *f = ctx;

	pthread_mutex_lock(&f->mu);
	f->reads++;
	if (f->unknown) {
		pthread_mutex_unlock(&f->mu);
		return -EAGAIN;
	}
	*n = f->n;
	*out = NULL;
	if (f->n) {
		*out = malloc(f->n * sizeof(**out));
		if (!*out) {
			pthread_mutex_unlock(&f->mu);
			return -ENOMEM;
		}
		memcpy(*out, f->e, f->n * sizeof(**out));
	}
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static void set_entries_locked(const struct agent_hc_local *e, size_t n)
{
	memcpy(F->e, e, n * sizeof(*e));
	F->n = n;
}

static void set_entries(const struct agent_hc_local *e, size_t n)
{
	pthread_mutex_lock(&F->mu);
	set_entries_locked(e, n);
	pthread_mutex_unlock(&F->mu);
}

static struct agent_hc_local entry(int64_t lb, const char *ip, bool up)
{
	struct agent_hc_local e = {.lb = lb, .port = 80, .up = up};

	xvpc_parse_ip(ip, &e.addr);
	return e;
}

static struct agent_hr *start(const char *first_url)
{
	const char *urls[2] = {first_url, F->base};
	struct agent_hr_opts o = {
		.urls = urls,
		.n_urls = first_url ? 2 : 1,
		.node_name = "n2",
		.token = ADMIN,
		.source = source,
		.source_ctx = F,
		.backoff_min_ms = 20,
		.backoff_max_ms = 100,
	};
	struct agent_hr *hr;

	if (!first_url)
		urls[0] = F->base;
	assert_int_equal(agent_hr_start(&o, &hr), 0);
	return hr;
}

/* Backend ip of load balancer lb as n1's state shows it: 1 down, 0 up. */
static int down_at_n1(int64_t lb, const char *ip)
{
	char msg[XVPC_STATE_ERR_LEN];
	struct xvpc_state *st = NULL;
	const char *txt;
	json_object *o;
	int d = -1;
	__be32 a;

	xvpc_parse_ip(ip, &a);
	assert_int_equal(http("GET", "/v1/nodes/n1/state", ADMIN, NULL, &o),
			 200);
	txt = json_object_to_json_string(o);
	if (xvpc_state_parse(txt, strlen(txt), 0, &st, msg, sizeof(msg)))
		fail_msg("n1's state: %s", msg);
	json_object_put(o);
	for (size_t i = 0; i < st->n_svcs; i++)
		for (__u32 j = 0;
		     st->svcs[i].id == lb && j < st->svcs[i].n_backends; j++)
			if (st->svcs[i].backends[j].ip == a)
				d = st->svcs[i].backends[j].down;
	xvpc_state_free(st);
	return d;
}

/* Polls n1's state for up to 10 s (a bound, not a timing assertion). */
static bool wait_down(int64_t lb, const char *ip, int want)
{
	for (int i = 0; i < 1000; i++) {
		if (down_at_n1(lb, ip) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static bool wait_stats(struct agent_hr *hr,
		       bool (*ok)(const struct agent_hr_stats *))
{
	struct agent_hr_stats st;

	for (int i = 0; i < 1000; i++) {
		agent_hr_stats(hr, &st);
		if (ok(&st))
			return true;
		usleep(10000);
	}
	return false;
}

static bool failed_once(const struct agent_hr_stats *st)
{
	return st->failed >= 1;
}

/* ---- tests ---- */

static void test_body(void **state)
{
	struct agent_hc_local e[3] = {
		entry(7, "10.0.1.20", false),
		entry(0, "10.0.1.21", true), /* no id: left out */
		entry(8, "10.0.1.22", true),
	};
	char *b;

	(void)state;
	e[2].port = 8080;
	b = agent_hr_body(e, 3, true);
	assert_string_equal(
		b, "{\"full\":true,\"backends\":[{\"loadbalancer\":7,"
		   "\"address\":\"10.0.1.20\",\"port\":80,\"healthy\":false},"
		   "{\"loadbalancer\":8,\"address\":\"10.0.1.22\",\"port\":"
		   "8080,\"healthy\":true}]}");
	free(b);
	b = agent_hr_body(NULL, 0, false);
	assert_string_equal(b, "{\"full\":false,\"backends\":[]}");
	free(b);
}

static void test_full_then_deltas(void **state)
{
	struct agent_hc_local e[3] = {
		entry(F->l1, "10.0.1.20", false),
		entry(F->l1, "10.0.1.21", true),
		entry(F->l2, "10.0.1.20", true),
	};
	struct agent_hr_stats st;
	struct agent_hr *hr;

	(void)state;
	set_entries(e, 3);
	hr = start(NULL);
	assert_true(wait_down(F->l1, "10.0.1.20", 1));
	assert_int_equal(down_at_n1(F->l2, "10.0.1.20"), 0);
	/* A change: a delta. */
	e[2].up = false;
	set_entries(e, 3);
	agent_hr_changed(hr);
	assert_true(wait_down(F->l2, "10.0.1.20", 1));
	e[0].up = true;
	set_entries(e, 3);
	agent_hr_changed(hr);
	assert_true(wait_down(F->l1, "10.0.1.20", 0));
	agent_hr_stats(hr, &st);
	assert_true(st.full >= 1);
	assert_true(st.deltas >= 2);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.last_status, 200);
	/* L2's .20 is no longer local (down when it left): a full report
	 * clears it. */
	set_entries(e, 2);
	agent_hr_changed(hr);
	assert_true(wait_down(F->l2, "10.0.1.20", 0));
	agent_hr_stop(hr);
}

static void test_dead_controller_skipped(void **state)
{
	struct agent_hc_local e = entry(F->l1, "10.0.1.21", false);
	struct agent_hr *hr;

	(void)state;
	set_entries(&e, 1);
	hr = start(F->dead);
	assert_true(wait_down(F->l1, "10.0.1.21", 1));
	assert_true(wait_stats(hr, failed_once));
	agent_hr_stop(hr);
}

static void test_refused_then_retried(void **state)
{
	/* 10.0.1.10 is no backend of L1 (and n1's port): refused, retried. */
	struct agent_hc_local e[2] = {
		entry(F->l1, "10.0.1.20", false),
		entry(F->l1, "10.0.1.10", false),
	};
	struct agent_hr *hr;

	(void)state;
	set_entries(e, 2);
	hr = start(NULL);
	assert_true(wait_stats(hr, failed_once));
	assert_int_equal(down_at_n1(F->l1, "10.0.1.20"), 0);
	/* The source is right again: the retry (a full report) lands. */
	set_entries(e, 1);
	assert_true(wait_down(F->l1, "10.0.1.20", 1));
	agent_hr_stop(hr);
}

static bool read_twice(const struct agent_hr_stats *st)
{
	int reads;

	(void)st;
	pthread_mutex_lock(&F->mu);
	reads = F->reads;
	pthread_mutex_unlock(&F->mu);
	return reads >= 2;
}

/* A source that does not know its set yet sends nothing (no full report
 * of nothing that would clear the node's reports), then the first full
 * report once it knows. */
static void test_unknown_set_waits(void **state)
{
	struct agent_hc_local e = entry(F->l1, "10.0.1.20", false);
	struct agent_hr_stats st;
	struct agent_hr *hr;
	char body[160];

	(void)state;
	/* n2's earlier report, from before a restart. */
	snprintf(body, sizeof(body),
		 "{\"backends\":[{\"loadbalancer\":%lld,\"address\":"
		 "\"10.0.1.20\",\"port\":80,\"healthy\":false}]}",
		 (long long)F->l1);
	assert_int_equal(http("POST", "/v1/nodes/n2/health", ADMIN, body, NULL),
			 200);
	F->unknown = true;
	set_entries(&e, 1);
	hr = start(NULL);
	assert_true(wait_stats(hr, read_twice));
	agent_hr_stats(hr, &st);
	assert_int_equal(st.full, 0);
	assert_int_equal(st.failed, 0);
	assert_int_equal(down_at_n1(F->l1, "10.0.1.20"), 1);
	pthread_mutex_lock(&F->mu);
	F->unknown = false;
	e.up = true;
	set_entries_locked(&e, 1);
	pthread_mutex_unlock(&F->mu);
	agent_hr_changed(hr);
	assert_true(wait_down(F->l1, "10.0.1.20", 0));
	agent_hr_stop(hr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body),
		cmocka_unit_test_setup_teardown(test_full_then_deltas, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dead_controller_skipped,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_then_retried,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_set_waits, setup,
						teardown),
	};
	int ret;

	xvpc_log_set_level(XVPC_LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
