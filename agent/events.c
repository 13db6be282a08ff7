// SPDX-License-Identifier: GPL-2.0-only
/* Learning events: perf buffer draining thread, decoding, counting. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/perf_event.h>

#include "datapath.h"
#include "events.h"
#include "log.h"
#include "netutil.h"

/* Wakeups: the kernel wakes the reader once a ring holds WAKEUP_FRACTION of
 * its size, not on every event (in a VM every wakeup is an IPI, a VM exit).
 * Below that, the thread collects what is there every POLL_MS, so an event
 * reaches the resolver within POLL_MS at low rates: a learning-mode miss is
 * waiting on it (docs/learning.md), so 1 ms; an idle agent pays 1,000 cheap
 * polls a second for it. */
#define POLL_MS		1
#define WAKEUP_FRACTION 8

static void default_on_event(void *ctx, const struct xvpc_event *ev)
{
	char buf[160];

	(void)ctx;
	if (xvpc_log_get_level() < XVPC_LOG_DEBUG)
		return;
	agent_event_format(ev, buf, sizeof(buf));
	pr_debug("event: %s", buf);
}

/* At most one warning a second, with the sum since the last one. */
static void default_on_lost(void *ctx, int cpu, __u64 n)
{
	static __u64 pending, last_ns;
	struct timespec ts;
	__u64 now;

	(void)ctx;
	(void)cpu;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	pending += n;
	if (now - last_ns < 1000000000ull)
		return;
	pr_warn("events: the kernel lost %llu events (perf buffer full; the "
		"agent cannot keep up)",
		(unsigned long long)pending);
	pending = 0;
	last_ns = now;
}

const struct xvpc_resolver_ops xvpc_default_resolver = {
	.on_event = default_on_event,
	.on_lost = default_on_lost,
};

int agent_event_decode(const void *data, size_t size, struct xvpc_event *out)
{
	/* perf samples are padded to 8 bytes: accept the padding. */
	if (size < sizeof(*out) || size > ((sizeof(*out) + 7) & ~7ul) + 8)
		return -EINVAL;
	memcpy(out, data, sizeof(*out));
	if (out->type != XVPC_EV_MISS)
		return -EINVAL;
	return 0;
}

void agent_event_format(const struct xvpc_event *ev, char *buf, size_t len)
{
	char src[XVPC_IP_STRLEN], dst[XVPC_IP_STRLEN];

	snprintf(buf, len, "%s vpc %u %s -> %s ifindex %u reason %s",
		 ev->type == XVPC_EV_MISS ? "miss" : "unknown", ev->vpc_id,
		 xvpc_fmt_ip(ev->src_ip, src), xvpc_fmt_ip(ev->dst_ip, dst),
		 ev->ifindex, xvpc_stat_name(ev->reason));
}

void agent_events_init(struct agent_events *ev,
		       const struct xvpc_resolver_ops *resolver, void *ctx)
{
	memset(ev, 0, sizeof(*ev));
	ev->resolver = resolver ? resolver : &xvpc_default_resolver;
	ev->resolver_ctx = ctx;
}

void agent_events_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct agent_events *ev = ctx;
	struct xvpc_event e;

	(void)cpu;
	if (agent_event_decode(data, size, &e)) {
		if (__atomic_fetch_add(&ev->stats.malformed, 1,
				       __ATOMIC_RELAXED) < 5)
			pr_warn("events: malformed sample of %u bytes", size);
		return;
	}
	__atomic_fetch_add(&ev->stats.received, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&ev->stats.by_type[e.type < 4 ? e.type : 0], 1,
			   __ATOMIC_RELAXED);
	if (ev->resolver->on_event)
		ev->resolver->on_event(ev->resolver_ctx, &e);
}

void agent_events_lost(void *ctx, int cpu, __u64 n)
{
	struct agent_events *ev = ctx;

	__atomic_fetch_add(&ev->stats.lost, n, __ATOMIC_RELAXED);
	if (ev->resolver->on_lost)
		ev->resolver->on_lost(ev->resolver_ctx, cpu, n);
}

/* Raw records: PERF_RECORD_SAMPLE carries {u32 size; data}, LOST {u64 id;
 * u64 lost}. */
struct sample_rec {
	struct perf_event_header hdr;
	__u32 size;
	char data[];
};

struct lost_rec {
	struct perf_event_header hdr;
	__u64 id;
	__u64 lost;
};

static enum bpf_perf_event_ret on_record(void *ctx, int cpu,
					 struct perf_event_header *hdr)
{
	if (hdr->type == PERF_RECORD_SAMPLE) {
		struct sample_rec *s = (struct sample_rec *)hdr;

		agent_events_sample(ctx, cpu, s->data, s->size);
	} else if (hdr->type == PERF_RECORD_LOST) {
		struct lost_rec *l = (struct lost_rec *)hdr;

		agent_events_lost(ctx, cpu, l->lost);
	}
	return LIBBPF_PERF_EVENT_CONT;
}

int agent_events_open(struct agent_events *ev, int map_fd, size_t page_cnt)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_BPF_OUTPUT,
		.sample_type = PERF_SAMPLE_RAW,
		.sample_period = 1,
		.watermark = 1,
	};
	int err;

	if (!page_cnt)
		page_cnt = 256;
	attr.wakeup_watermark = page_cnt * getpagesize() / WAKEUP_FRACTION;
	ev->pb = perf_buffer__new_raw(map_fd, page_cnt, &attr, on_record, ev,
				      NULL);
	err = libbpf_get_error(ev->pb);
	if (err) {
		ev->pb = NULL;
		pr_err("events: cannot open the perf buffer: %s",
		       strerror(-err));
		return err;
	}
	return 0;
}

int agent_events_poll(struct agent_events *ev, int timeout_ms)
{
	int n = perf_buffer__poll(ev->pb, timeout_ms);

	if (n == -EINTR)
		n = 0;
	/* Nothing reached the watermark: collect what is below it. */
	if (n == 0)
		n = perf_buffer__consume(ev->pb);
	return n;
}

static void *events_thread(void *arg)
{
	struct agent_events *ev = arg;

	while (!__atomic_load_n(&ev->stop, __ATOMIC_RELAXED)) {
		int n = agent_events_poll(ev, POLL_MS);

		if (n < 0) {
			pr_err("events: polling the perf buffer failed: %s",
			       strerror(-n));
			break;
		}
	}
	return NULL;
}

int agent_events_start(struct agent_events *ev, int map_fd, size_t page_cnt)
{
	int err = agent_events_open(ev, map_fd, page_cnt);

	if (err)
		return err;
	ev->stop = false;
	err = pthread_create(&ev->thread, NULL, events_thread, ev);
	if (err) {
		pr_err("events: cannot start the thread: %s", strerror(err));
		perf_buffer__free(ev->pb);
		ev->pb = NULL;
		return -err;
	}
	ev->running = true;
	return 0;
}

void agent_events_stop(struct agent_events *ev)
{
	if (ev->running) {
		__atomic_store_n(&ev->stop, true, __ATOMIC_RELAXED);
		pthread_join(ev->thread, NULL);
		ev->running = false;
	}
	perf_buffer__free(ev->pb);
	ev->pb = NULL;
}

void agent_events_get_stats(const struct agent_events *ev,
			    struct agent_events_stats *out)
{
	out->received = __atomic_load_n(&ev->stats.received, __ATOMIC_RELAXED);
	out->lost = __atomic_load_n(&ev->stats.lost, __ATOMIC_RELAXED);
	out->malformed =
		__atomic_load_n(&ev->stats.malformed, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		out->by_type[i] = __atomic_load_n(&ev->stats.by_type[i],
						  __ATOMIC_RELAXED);
}
