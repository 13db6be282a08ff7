// SPDX-License-Identifier: GPL-2.0-only
/* /metrics and /healthz over libmicrohttpd; the text is rendered from the
 * pinned maps and the agent's counters on every scrape. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <microhttpd.h>

#include "agent.h"
#include "log.h"
#include "mapbe.h"
#include "metrics.h"
#include "netutil.h"

struct agent_metrics {
	struct MHD_Daemon *d;
	struct agent *a;
};

static void ep_stats(struct agent *a, FILE *out)
{
	int sfd = xvpc_dp_map_fd(a->dp, XVPC_M_EP_STATS);
	int ifd = xvpc_dp_map_fd(a->dp, XVPC_M_IFACES);
	int cpus = libbpf_num_possible_cpus();
	__u32 key, next, *prev = NULL;
	static const char *const names[] = {"rx_packets", "rx_bytes",
					    "tx_packets", "tx_bytes"};
	struct xvpc_ep_stats *vals;

	if (cpus <= 0)
		return;
	vals = calloc(cpus, sizeof(*vals));
	if (!vals)
		return;
	for (int m = 0; m < 4; m++)
		fprintf(out,
			"# HELP xvpc_endpoint_%s_total Traffic of a local "
			"endpoint (rx: from it, tx: delivered to it).\n"
			"# TYPE xvpc_endpoint_%s_total counter\n",
			names[m], names[m]);
	while (!bpf_map_get_next_key(sfd, prev, &next)) {
		char ifname[IF_NAMESIZE] = "", ip[XVPC_IP_STRLEN] = "";
		struct xvpc_iface b = {0};
		__u64 sum[4] = {0};

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(sfd, &key, vals))
			continue;
		for (int c = 0; c < cpus; c++) {
			sum[0] += vals[c].rx_packets;
			sum[1] += vals[c].rx_bytes;
			sum[2] += vals[c].tx_packets;
			sum[3] += vals[c].tx_bytes;
		}
		if (!bpf_map_lookup_elem(ifd, &key, &b))
			xvpc_fmt_ip(b.ip, ip);
		if_indextoname(key, ifname);
		for (int m = 0; m < 4; m++)
			fprintf(out,
				"xvpc_endpoint_%s_total{ifindex=\"%u\",ifname="
				"\"%s\",vpc=\"%u\",ip=\"%s\"} %llu\n",
				names[m], key, ifname, b.vpc_id, ip,
				(unsigned long long)sum[m]);
	}
	free(vals);
}

static void dp_stats(struct agent *a, FILE *out)
{
	fprintf(out, "# HELP xvpc_datapath_packets_total Packets the datapath "
		     "handled, by outcome.\n"
		     "# TYPE xvpc_datapath_packets_total counter\n");
	for (unsigned int s = 0; s < XVPC_STAT_MAX; s++) {
		const char *name = xvpc_stat_name(s);
		struct xvpc_counter c;

		if (!strncmp(name, "drop_", 5) ||
		    xvpc_dp_read_stat(a->dp, s, &c))
			continue;
		fprintf(out,
			"xvpc_datapath_packets_total{outcome=\"%s\"} %llu\n",
			name, (unsigned long long)c.packets);
	}
	fprintf(out, "# HELP xvpc_datapath_drops_total Packets dropped, by "
		     "named reason.\n"
		     "# TYPE xvpc_datapath_drops_total counter\n");
	for (unsigned int s = 0; s < XVPC_STAT_MAX; s++) {
		const char *name = xvpc_stat_name(s);
		struct xvpc_counter c;

		if (strncmp(name, "drop_", 5) ||
		    xvpc_dp_read_stat(a->dp, s, &c))
			continue;
		fprintf(out, "xvpc_datapath_drops_total{reason=\"%s\"} %llu\n",
			name + 5, (unsigned long long)c.packets);
	}
}

static void map_stats(struct agent *a, FILE *out)
{
	fprintf(out, "# HELP xvpc_map_entries Entries in a datapath map.\n"
		     "# TYPE xvpc_map_entries gauge\n"
		     "# HELP xvpc_map_capacity max_entries of a datapath map.\n"
		     "# TYPE xvpc_map_capacity gauge\n");
	for (int i = 0; i < XVPC_M__COUNT; i++) {
		int fd = xvpc_dp_map_fd(a->dp, i);
		struct bpf_map_info info = {0};
		__u32 len = sizeof(info);
		struct xvpc_mapbe *m;
		long n;

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) ||
		    info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY)
			continue;
		if (info.type == BPF_MAP_TYPE_ARRAY ||
		    info.type == BPF_MAP_TYPE_PERCPU_ARRAY) {
			n = info.max_entries;
		} else {
			if (xvpc_mapbe_bpf_new(fd, NULL, &m))
				continue;
			n = m->ops->count(m);
			xvpc_mapbe_destroy(m);
		}
		if (n < 0)
			continue;
		fprintf(out, "xvpc_map_entries{map=\"%s\"} %ld\n",
			xvpc_dp_map_name(i), n);
		fprintf(out, "xvpc_map_capacity{map=\"%s\"} %u\n",
			xvpc_dp_map_name(i), info.max_entries);
	}
}

static void agent_stats(struct agent *a, FILE *out)
{
	struct agent_events_stats es;
	struct agent_rc_stats rc;

	agent_events_get_stats(&a->events, &es);
	fprintf(out,
		"# HELP xvpc_events_received_total Learning events drained "
		"from the perf buffer.\n"
		"# TYPE xvpc_events_received_total counter\n"
		"xvpc_events_received_total %llu\n"
		"# HELP xvpc_events_lost_total Events the kernel lost (perf "
		"buffer full).\n"
		"# TYPE xvpc_events_lost_total counter\n"
		"xvpc_events_lost_total %llu\n"
		"# HELP xvpc_events_malformed_total Samples that did not "
		"decode.\n"
		"# TYPE xvpc_events_malformed_total counter\n"
		"xvpc_events_malformed_total %llu\n",
		(unsigned long long)es.received, (unsigned long long)es.lost,
		(unsigned long long)es.malformed);

	pthread_mutex_lock(&a->lock);
	rc = a->rc;
	pthread_mutex_unlock(&a->lock);
	fprintf(out,
		"# HELP xvpc_reconcile_runs_total Reconciliations run.\n"
		"# TYPE xvpc_reconcile_runs_total counter\n"
		"xvpc_reconcile_runs_total %llu\n"
		"# HELP xvpc_reconcile_errors_total Reconciliations that did "
		"not apply everything.\n"
		"# TYPE xvpc_reconcile_errors_total counter\n"
		"xvpc_reconcile_errors_total %llu\n"
		"# HELP xvpc_reconcile_map_full_total Reconciliations that "
		"found a map full.\n"
		"# TYPE xvpc_reconcile_map_full_total counter\n"
		"xvpc_reconcile_map_full_total %llu\n"
		"# HELP xvpc_reconcile_duration_seconds Time of "
		"reconciliations.\n"
		"# TYPE xvpc_reconcile_duration_seconds summary\n"
		"xvpc_reconcile_duration_seconds_sum %.6f\n"
		"xvpc_reconcile_duration_seconds_count %llu\n"
		"# HELP xvpc_reconcile_last_duration_seconds Time of the last "
		"reconciliation.\n"
		"# TYPE xvpc_reconcile_last_duration_seconds gauge\n"
		"xvpc_reconcile_last_duration_seconds %.6f\n"
		"# HELP xvpc_endpoints_pending Local endpoints waiting for "
		"their interface.\n"
		"# TYPE xvpc_endpoints_pending gauge\n"
		"xvpc_endpoints_pending %llu\n"
		"# HELP xvpc_state_revision Revision of the desired state last "
		"applied.\n"
		"# TYPE xvpc_state_revision gauge\n"
		"xvpc_state_revision %llu\n"
		"# HELP xvpc_ifaces_gone_total Bindings dropped because the "
		"interface disappeared.\n"
		"# TYPE xvpc_ifaces_gone_total counter\n"
		"xvpc_ifaces_gone_total %llu\n",
		(unsigned long long)rc.runs, (unsigned long long)rc.errors,
		(unsigned long long)rc.full, rc.sum_ns / 1e9,
		(unsigned long long)rc.runs, rc.last_ns / 1e9,
		(unsigned long long)rc.pending, (unsigned long long)rc.revision,
		(unsigned long long)rc.unbound_gone);
	fprintf(out, "# HELP xvpc_reconcile_entries_total Map entries written "
		     "or removed by reconciliation.\n"
		     "# TYPE xvpc_reconcile_entries_total counter\n");
	for (int i = 0; i < XVPC_RC__COUNT; i++) {
		const char *n = xvpc_rc_map_name(i);

		fprintf(out,
			"xvpc_reconcile_entries_total{map=\"%s\",op=\"added\"} "
			"%llu\n"
			"xvpc_reconcile_entries_total{map=\"%s\",op="
			"\"changed\"} %llu\n"
			"xvpc_reconcile_entries_total{map=\"%s\",op="
			"\"removed\"} %llu\n"
			"xvpc_reconcile_entries_total{map=\"%s\",op=\"failed\"}"
			" %llu\n",
			n, (unsigned long long)rc.added[i], n,
			(unsigned long long)rc.changed[i], n,
			(unsigned long long)rc.removed[i], n,
			(unsigned long long)rc.failed[i]);
	}
}

static void counter(FILE *out, const char *name, const char *help,
		    unsigned long long v)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help,
		name, name, v);
}

static void gauge(FILE *out, const char *name, const char *help, double v)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.0f\n", name, help,
		name, name, v);
}

static void latency(FILE *out, const struct xvpc_rsv_stats *s)
{
	unsigned long long acc = 0;

	fprintf(out, "# HELP xvpc_learn_resolve_latency_seconds Time from a "
		     "miss to its answer installed.\n"
		     "# TYPE xvpc_learn_resolve_latency_seconds histogram\n");
	for (int i = 0; i < XVPC_RSV_LAT_BUCKETS; i++) {
		acc += s->lat_bucket[i];
		fprintf(out,
			"xvpc_learn_resolve_latency_seconds_bucket{le=\"%g\"} "
			"%llu\n",
			xvpc_rsv_lat_bounds[i], acc);
	}
	fprintf(out,
		"xvpc_learn_resolve_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
		"xvpc_learn_resolve_latency_seconds_sum %.6f\n"
		"xvpc_learn_resolve_latency_seconds_count %llu\n",
		(unsigned long long)s->lat_count, s->lat_sum_ns / 1e9,
		(unsigned long long)s->lat_count);
}

/* Learning mode: the learned map, the resolver, aging. */
static void learn_stats(struct agent *a, FILE *out)
{
	struct agent_learn_stats l;
	struct xvpc_rsv_stats s = {0};
	long n = -1;

	if (a->maps.learned)
		n = a->maps.learned->ops->count(a->maps.learned);
	if (n >= 0) {
		gauge(out, "xvpc_learned_entries",
		      "Entries in xvpc_learned (datapath and agent).", n);
		gauge(out, "xvpc_learned_capacity",
		      "max_entries of xvpc_learned (LRU: the oldest go when "
		      "full).",
		      a->maps.learned->max_entries);
	}
	pthread_mutex_lock(&a->lock);
	l = a->learn;
	pthread_mutex_unlock(&a->lock);
	counter(out, "xvpc_learn_aged_total",
		"Learned entries deleted by the aging sweep.", l.aged);
	counter(out, "xvpc_learn_moved_total",
		"Learned entries moved by a notice of the controller.",
		l.moved);
	counter(out, "xvpc_learn_forgotten_total",
		"Learned entries deleted: their endpoint was deleted.",
		l.forgotten);
	counter(out, "xvpc_learn_flushed_total",
		"Learned entries of VPCs that left learn mode.", l.flushed);
	if (!a->resolver)
		return;
	xvpc_resolver_stats(a->resolver, &s);
	counter(out, "xvpc_learn_misses_total",
		"Miss events handed to the resolver.", s.misses);
	counter(out, "xvpc_learn_misses_ignored_total",
		"Misses not resolved: not a learn-mode VPC of this node, or no "
		"controller.",
		s.ignored);
	counter(out, "xvpc_learn_cache_hits_total",
		"Misses answered from the resolver's cache.", s.cache_hits);
	counter(out, "xvpc_learn_cache_negative_hits_total",
		"Misses answered \"unknown\" from the cache.", s.neg_hits);
	counter(out, "xvpc_learn_coalesced_total",
		"Misses of an address already being resolved.", s.coalesced);
	counter(out, "xvpc_learn_queue_dropped_total",
		"Misses dropped: too many queries pending.", s.dropped);
	counter(out, "xvpc_learn_resolve_requests_total",
		"Resolve requests sent to a controller.", s.requests);
	counter(out, "xvpc_learn_resolve_failures_total",
		"Resolve requests that failed.", s.failures);
	counter(out, "xvpc_learn_resolve_missing_total",
		"Addresses the controller did not know (or refused).",
		s.missing);
	counter(out, "xvpc_learn_installed_total",
		"Resolved entries written into xvpc_learned.", s.installed);
	counter(out, "xvpc_learn_install_errors_total",
		"Writes into xvpc_learned that failed.", s.install_err);
	counter(out, "xvpc_learn_arp_replies_total",
		"ARP replies sent into a VM for a resolved address.",
		s.arp_replies);
	gauge(out, "xvpc_learn_cache_entries",
	      "Answers in the resolver's cache.", s.cached);
	gauge(out, "xvpc_learn_pending", "Queries queued or in flight.",
	      s.pending);
	latency(out, &s);
}

int agent_metrics_render(struct agent *a, FILE *out)
{
	fprintf(out,
		"# HELP xvpc_agent_info The agent and its node.\n"
		"# TYPE xvpc_agent_info gauge\n"
		"xvpc_agent_info{node=\"%s\",abi=\"%d\"} 1\n",
		a->cfg->node_name, XVPC_ABI_VERSION);
	dp_stats(a, out);
	ep_stats(a, out);
	map_stats(a, out);
	agent_stats(a, out);
	learn_stats(a, out);
	return ferror(out) ? -EIO : 0;
}

int agent_health(struct agent *a, char *why, size_t len)
{
	int err;

	pthread_mutex_lock(&a->lock);
	err = a->rc.last_err;
	if (!a->rc.runs) {
		snprintf(why, len, "not reconciled yet");
		err = -EAGAIN;
	} else if (err) {
		snprintf(why, len, "last reconcile failed: %s", strerror(-err));
	} else {
		snprintf(why, len, "ok");
	}
	pthread_mutex_unlock(&a->lock);
	return err;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status,
			     const char *type, char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
			       const char *url, const char *method,
			       const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct agent_metrics *m = cls;
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET"))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
			     strdup("only GET\n"), 9);
	if (!strcmp(url, "/healthz")) {
		char why[200];
		int err = agent_health(m->a, why, sizeof(why) - 1);

		strcat(why, "\n");
		return reply(c,
			     err ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
			     "text/plain", strdup(why), strlen(why));
	}
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
			     strdup("not found: try /metrics or /healthz\n"),
			     37);
	f = open_memstream(&body, &len);
	if (!f)
		return MHD_NO;
	agent_metrics_render(m->a, f);
	fclose(f);
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", body, len);
}

int agent_metrics_start(struct agent *a, const char *addr, __u16 port,
			struct agent_metrics **out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};
	struct agent_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->a = a;
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		free(m);
		return -EINVAL;
	}
	m->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
		NULL, handler, m, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	if (!m->d) {
		pr_err("cannot serve metrics on %s:%u (address in use?)", addr,
		       port);
		free(m);
		return -EADDRINUSE;
	}
	pr_info("serving /metrics and /healthz on http://%s:%u", addr, port);
	*out = m;
	return 0;
}

void agent_metrics_stop(struct agent_metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}
