/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Agent configuration: a file of `key = value` lines (docs/agent.md) and
 * command-line flags that override it.
 */
#ifndef XVPC_AGENT_CONFIG_H
#define XVPC_AGENT_CONFIG_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#include "datapath.h"

#define AGENT_MAX_CONTROLLERS 8
#define AGENT_URL_MAX	      256
#define AGENT_ERR_LEN	      512

struct agent_config {
	char config_path[PATH_MAX];
	char node_name[256];
	char underlay[IF_NAMESIZE];
	enum xvpc_underlay_mode mode;
	__be32 node_ip; /* 0: first IPv4 address of the underlay */
	char state_path[PATH_MAX];
	char controllers[AGENT_MAX_CONTROLLERS][AGENT_URL_MAX];
	int n_controllers;
	char token[256]; /* for the controllers; also $XVPC_TOKEN */
	char pin_dir[PATH_MAX];
	int log_level; /* enum xvpc_log_level */
	bool metrics;  /* metrics_addr/metrics_port are set */
	char metrics_addr[64];
	__u16 metrics_port;
	unsigned int resync_s;	    /* full reconcile period, 0: never */
	unsigned int learn_idle_s;  /* learned entries idle longer go */
	unsigned int ctrl_batch_ms; /* change answers' pacing, 0: off */
	/* Health probes of local VPC backends (docs/loadbalancer.md, "Health
	 * checks"): the node's link-local probe address (0: off) and the
	 * source ports of the probe sockets, host order. */
	__be32 probe_ip;
	__u16 probe_port_min, probe_port_max;
	bool once;
	bool uninstall;
	bool help;
};

/* Defaults: pin dir XVPC_PIN_DIR, tc mode, log level info, node name the
 * host name, resync 30 s, learn idle 300 s, controller batch 100 ms, probe address 169.254.169.250
 * and ports 60000-60999. */
void agent_config_defaults(struct agent_config *cfg);

/* Apply one `key = value` setting (the file's keys, documented in
 * docs/agent.md). -EINVAL with a message in err. */
int agent_config_set(struct agent_config *cfg, const char *key,
		     const char *value, char *err, size_t errlen);
/* Parse a configuration text (file contents); errors name the line. */
int agent_config_parse_text(struct agent_config *cfg, const char *text,
			    const char *origin, char *err, size_t errlen);
int agent_config_parse_file(struct agent_config *cfg, const char *path,
			    char *err, size_t errlen);

/* Full load: defaults, then the file named by --config (if any), then the
 * flags; then agent_config_check(). argv is not modified. */
int agent_config_load(struct agent_config *cfg, int argc, char **argv,
		      char *err, size_t errlen);
/* Cross-field rules (e.g. a state file or controllers, not both). */
int agent_config_check(const struct agent_config *cfg, char *err,
		       size_t errlen);

void agent_config_usage(FILE *out, const char *prog);

#endif
