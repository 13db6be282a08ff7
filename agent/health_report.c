// SPDX-License-Identifier: GPL-2.0-only
/* Backend health reports to the controllers (health_report.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "health_report.h"
#include "httpbody.h"
#include "log.h"
#include "netutil.h"

#define HR_TIMEOUT_MS  2000
#define HR_REFRESH_MS  60000
#define HR_BACKOFF_MIN 500
#define HR_BACKOFF_MAX 30000
#define HR_BODY_MAX    (64u << 10)
#define HR_URL_LEN     1024

struct agent_hr {
	struct agent_hr_opts o;
	char **urls;
	char *node_esc;
	CURL *curl;
	struct curl_slist *hdrs;
	char curl_err[CURL_ERROR_SIZE];
	struct http_body body;

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop, dirty;
	struct agent_hr_stats st;

	/* The reporter thread's own. */
	struct agent_hc_local *sent; /* as the controller has it */
	size_t n_sent;
	bool need_full;
	unsigned int backoff;
	long long retry_at, next_refresh;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

char *agent_hr_body(const struct agent_hc_local *e, size_t n, bool full)
{
	size_t cap = 48 + n * 96, len;
	char *p = malloc(cap), ip[XVPC_IP_STRLEN];
	bool first = true;

	if (!p)
		return NULL;
	len = snprintf(p, cap, "{\"full\":%s,\"backends\":[",
		       full ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		if (!e[i].lb)
			continue;
		len += snprintf(p + len, cap - len,
				"%s{\"loadbalancer\":%u,\"address\":\"%s\","
				"\"port\":%u,\"healthy\":%s}",
				first ? "" : ",", e[i].lb,
				xvpc_fmt_ip(e[i].addr, ip), e[i].port,
				e[i].up ? "true" : "false");
		first = false;
	}
	snprintf(p + len, cap - len, "]}");
	return p;
}

static bool same_backend(const struct agent_hc_local *a,
			 const struct agent_hc_local *b)
{
	return a->lb == b->lb && a->addr == b->addr && a->port == b->port;
}

static const struct agent_hc_local *find_entry(const struct agent_hc_local *e,
					       size_t n,
					       const struct agent_hc_local *k)
{
	for (size_t i = 0; i < n; i++)
		if (same_backend(&e[i], k))
			return &e[i];
	return NULL;
}

/* The entries of now that differ from what was sent (in place, *n_out of
 * them); false when a sent one is gone (then only a full report clears
 * it). */
static bool delta(const struct agent_hr *hr, struct agent_hc_local *now,
		  size_t n, size_t *n_out)
{
	size_t out = 0;

	for (size_t i = 0; i < hr->n_sent; i++)
		if (hr->sent[i].lb && !find_entry(now, n, &hr->sent[i]))
			return false;
	for (size_t i = 0; i < n; i++) {
		const struct agent_hc_local *s =
			find_entry(hr->sent, hr->n_sent, &now[i]);

		if (now[i].lb && (!s || s->up != now[i].up))
			now[out++] = now[i];
	}
	*n_out = out;
	return true;
}

/* POSTs body to one controller: 0, or -errno with a warning. */
static int post_one(struct agent_hr *hr, int url, const char *body)
{
	char full[HR_URL_LEN];
	long status = 0;
	CURLcode rc;

	snprintf(full, sizeof(full), "%s/v1/nodes/%s/health", hr->urls[url],
		 hr->node_esc);
	http_body_reset(&hr->body);
	hr->curl_err[0] = '\0';
	curl_easy_setopt(hr->curl, CURLOPT_URL, full);
	curl_easy_setopt(hr->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(hr->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	rc = curl_easy_perform(hr->curl);
	if (rc != CURLE_OK) {
		pr_warn("health report to %s: %s", hr->urls[url],
			hr->curl_err[0] ? hr->curl_err
					: curl_easy_strerror(rc));
		return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	curl_easy_getinfo(hr->curl, CURLINFO_RESPONSE_CODE, &status);
	pthread_mutex_lock(&hr->mu);
	hr->st.last_status = status;
	pthread_mutex_unlock(&hr->mu);
	if (status == 200)
		return 0;
	/* A 4xx names the backend it refused (a service or port that moved
	 * meanwhile): the next full report, after the state caught up,
	 * carries the rest. */
	pr_warn("health report to %s refused: HTTP %ld %s", hr->urls[url],
		status, hr->body.p ?: "");
	return status == 401 || status == 403 ? -EACCES : -EPROTO;
}

/* Tries each controller once, the current one first. */
static int post(struct agent_hr *hr, const char *body)
{
	int first = hr->o.current_url ? hr->o.current_url(hr->o.ctx) : 0;
	int err = -EIO;

	if (first < 0 || first >= hr->o.n_urls)
		first = 0;
	for (int k = 0; k < hr->o.n_urls && err; k++) {
		err = post_one(hr, (first + k) % hr->o.n_urls, body);
		if (err) {
			pthread_mutex_lock(&hr->mu);
			hr->st.failed++;
			pthread_mutex_unlock(&hr->mu);
		}
	}
	return err;
}

/* The entries a report carries (those with a load balancer id). */
static size_t reported(const struct agent_hc_local *e, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += e[i].lb != 0;
	return k;
}

/* One round: reads the source and sends what the controller lacks. */
static int report(struct agent_hr *hr, bool full)
{
	struct agent_hc_local *now = NULL, *send;
	size_t n = 0, n_send;
	char *body;
	int err;

	err = hr->o.source(hr->o.source_ctx, &now, &n);
	if (err) {
		if (err != -EAGAIN)
			pr_warn("health report: cannot read the local "
				"backends: %s",
				strerror(-err));
		return err;
	}
	if (reported(now, n) > AGENT_HR_MAX) {
		pr_err("health report: %zu local backends, more than the %d "
		       "a report may carry: not reported",
		       reported(now, n), AGENT_HR_MAX);
		free(now);
		return -E2BIG;
	}
	send = malloc((n ?: 1) * sizeof(*send));
	if (!send) {
		free(now);
		return -ENOMEM;
	}
	if (n)
		memcpy(send, now, n * sizeof(*send));
	n_send = n;
	if (!full && !delta(hr, send, n, &n_send))
		full = true;
	err = 0;
	if (full || n_send) {
		body = full ? agent_hr_body(now, n, true)
			    : agent_hr_body(send, n_send, false);
		err = body ? post(hr, body) : -ENOMEM;
		free(body);
	}
	free(send);
	if (err) {
		free(now);
		return err;
	}
	pthread_mutex_lock(&hr->mu);
	if (full)
		hr->st.full++;
	else if (n_send)
		hr->st.deltas++;
	hr->st.entries += full ? n : n_send;
	pthread_mutex_unlock(&hr->mu);
	free(hr->sent);
	hr->sent = now;
	hr->n_sent = n;
	return 0;
}

static void wait_until(struct agent_hr *hr, long long at)
{
	long long left = at - now_ms();
	struct timespec ts;

	if (left <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&hr->cond, &hr->mu, &ts);
}

static void *hr_thread(void *arg)
{
	struct agent_hr *hr = arg;

	pthread_mutex_lock(&hr->mu);
	while (!hr->stop) {
		long long now = now_ms();
		bool refresh = now >= hr->next_refresh, full;
		int err;

		if (now < hr->retry_at ||
		    (!hr->dirty && !hr->need_full && !refresh)) {
			wait_until(hr, hr->retry_at > now ? hr->retry_at
							  : hr->next_refresh);
			continue;
		}
		hr->dirty = false;
		full = hr->need_full || refresh;
		pthread_mutex_unlock(&hr->mu);
		err = report(hr, full);
		now = now_ms();
		if (!err) {
			hr->need_full = false;
			hr->backoff = 0;
			hr->retry_at = 0;
			if (full)
				hr->next_refresh = now + hr->o.refresh_ms;
		} else if (err == -EAGAIN) {
			/* Not known yet: ask again, no failure. */
			hr->need_full = full;
			hr->retry_at = now + hr->o.backoff_min_ms;
		} else {
			hr->need_full = true;
			hr->backoff = hr->backoff ? hr->backoff * 2
						  : hr->o.backoff_min_ms;
			if (hr->backoff > hr->o.backoff_max_ms)
				hr->backoff = hr->o.backoff_max_ms;
			hr->retry_at = now + hr->backoff;
		}
		pthread_mutex_lock(&hr->mu);
	}
	pthread_mutex_unlock(&hr->mu);
	return NULL;
}

void agent_hr_changed(struct agent_hr *hr)
{
	if (!hr)
		return;
	pthread_mutex_lock(&hr->mu);
	hr->dirty = true;
	pthread_cond_signal(&hr->cond);
	pthread_mutex_unlock(&hr->mu);
}

void agent_hr_stats(struct agent_hr *hr, struct agent_hr_stats *st)
{
	pthread_mutex_lock(&hr->mu);
	*st = hr->st;
	pthread_mutex_unlock(&hr->mu);
}

void agent_hr_stop(struct agent_hr *hr)
{
	if (!hr)
		return;
	if (hr->started) {
		pthread_mutex_lock(&hr->mu);
		hr->stop = true;
		pthread_cond_signal(&hr->cond);
		pthread_mutex_unlock(&hr->mu);
		pthread_join(hr->thread, NULL);
	}
	if (hr->curl)
		curl_easy_cleanup(hr->curl);
	if (hr->node_esc)
		curl_free(hr->node_esc);
	curl_slist_free_all(hr->hdrs);
	for (int i = 0; hr->urls && i < hr->o.n_urls; i++)
		free(hr->urls[i]);
	free(hr->urls);
	http_body_free(&hr->body);
	free(hr->sent);
	pthread_cond_destroy(&hr->cond);
	pthread_mutex_destroy(&hr->mu);
	free(hr);
}

static int setup_curl(struct agent_hr *hr)
{
	char auth[1024];

	hr->curl = curl_easy_init();
	if (!hr->curl)
		return -ENOMEM;
	if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			     hr->o.token) >= sizeof(auth))
		return -ENAMETOOLONG;
	hr->hdrs = curl_slist_append(NULL, auth);
	explicit_bzero(auth, sizeof(auth));
	if (!hr->hdrs ||
	    !curl_slist_append(hr->hdrs, "Content-Type: application/json") ||
	    !curl_slist_append(hr->hdrs, "Expect:"))
		return -ENOMEM;
	hr->node_esc = curl_easy_escape(hr->curl, hr->o.node_name, 0);
	if (!hr->node_esc)
		return -ENOMEM;
	curl_easy_setopt(hr->curl, CURLOPT_HTTPHEADER, hr->hdrs);
	curl_easy_setopt(hr->curl, CURLOPT_WRITEFUNCTION, http_body_write);
	curl_easy_setopt(hr->curl, CURLOPT_WRITEDATA, &hr->body);
	curl_easy_setopt(hr->curl, CURLOPT_ERRORBUFFER, hr->curl_err);
	curl_easy_setopt(hr->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(hr->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(hr->curl, CURLOPT_TIMEOUT_MS, (long)hr->o.timeout_ms);
	curl_easy_setopt(hr->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)hr->o.timeout_ms);
	curl_easy_setopt(hr->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	return 0;
}

static int copy_urls(struct agent_hr *hr)
{
	hr->urls = calloc(hr->o.n_urls, sizeof(*hr->urls));
	if (!hr->urls)
		return -ENOMEM;
	for (int i = 0; i < hr->o.n_urls; i++) {
		size_t len;

		hr->urls[i] = strdup(hr->o.urls[i]);
		if (!hr->urls[i])
			return -ENOMEM;
		len = strlen(hr->urls[i]);
		while (len && hr->urls[i][len - 1] == '/')
			hr->urls[i][--len] = '\0';
	}
	return 0;
}

int agent_hr_start(const struct agent_hr_opts *o, struct agent_hr **out)
{
	pthread_condattr_t ca;
	struct agent_hr *hr;
	int err;

	*out = NULL;
	if (o->n_urls < 1 || !o->node_name || !*o->node_name || !o->token ||
	    !o->source)
		return -EINVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	hr = calloc(1, sizeof(*hr));
	if (!hr)
		return -ENOMEM;
	hr->o = *o;
	hr->o.timeout_ms = o->timeout_ms ?: HR_TIMEOUT_MS;
	hr->o.refresh_ms = o->refresh_ms ?: HR_REFRESH_MS;
	hr->o.backoff_min_ms = o->backoff_min_ms ?: HR_BACKOFF_MIN;
	hr->o.backoff_max_ms = o->backoff_max_ms ?: HR_BACKOFF_MAX;
	hr->body.max = HR_BODY_MAX;
	hr->need_full = true; /* first thing: a full report */
	pthread_mutex_init(&hr->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hr->cond, &ca);
	pthread_condattr_destroy(&ca);
	err = copy_urls(hr) ?: setup_curl(hr);
	if (!err)
		err = -pthread_create(&hr->thread, NULL, hr_thread, hr);
	if (err) {
		agent_hr_stop(hr);
		return err;
	}
	hr->started = true;
	*out = hr;
	return 0;
}
