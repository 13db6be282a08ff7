/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's HTTP endpoint: /metrics (Prometheus text) and /healthz. */
#ifndef XVPC_AGENT_METRICS_H
#define XVPC_AGENT_METRICS_H

#include <linux/types.h>

struct agent;
struct agent_metrics;

int agent_metrics_start(struct agent *a, const char *addr, __u16 port,
			struct agent_metrics **out);
void agent_metrics_stop(struct agent_metrics *m);

#endif
