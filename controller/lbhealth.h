/* SPDX-License-Identifier: GPL-2.0-only */
/* Backend health reported by the agent next to a backend
 * (docs/loadbalancer.md, "Health reports"), kept in the store:
 *
 *   lbh/<lb>/<ip hex>/<port>         {"lb", "vpc", "node", "ip", "port"}
 *                                    one per backend reported down
 *   nh/<node>/<lb>/<ip hex>/<port>   {} the same, indexed by its node
 *
 * Up is the absence of a record, so only transitions are written (a
 * report that changes nothing commits nothing) and a healthy cloud stores
 * nothing. Keyed per (load balancer, backend) so that building a service
 * reads one short prefix and a change moves exactly one service in the
 * nodes' change stream; the node index makes a full report (everything
 * else of that node is cleared) a listing of that node's records only.
 *
 * A record is stale when its load balancer is gone or no longer has the
 * backend, its backend is no longer a port bound to the reporting node, or
 * that node is down: the
 * leader's sweep (cluster.c) deletes those, and deleting a load balancer
 * clears its records at once (best effort; the sweep finishes). */
#ifndef XVPC_CTRL_LBHEALTH_H
#define XVPC_CTRL_LBHEALTH_H

#include <json-c/json.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define LBH_PREFIX	"lbh/"
#define LBH_NODE_PREFIX "nh/"

void lbh_key(char *buf, size_t len, uint32_t lb, __be32 ip, uint16_t port);
void lbh_node_key(char *buf, size_t len, const char *node, uint32_t lb,
		  __be32 ip, uint16_t port);
/* Parses an lbh/ or nh/ key (after its node for nh/): 0 or -EINVAL. */
int lbh_parse_key(const char *key, uint32_t *lb, __be32 *ip, uint16_t *port);

/* Whether load balancer record lb has the backend ip:port (a backend
 * without a port has the load balancer's). */
bool lbh_lb_has_backend(json_object *lb, __be32 ip, uint16_t port);

/* 1 when a port of VPC vpc with address ip is bound to node, 0 when not,
 * or a negative store error. */
int lbh_port_on(struct store *s, uint32_t vpc, __be32 ip, const char *node);

/* A copy of a load balancer record's backends array where each backend
 * reported down has "healthy": false (lb_port: the load balancer's port,
 * for backends without one). NULL when out of memory. */
json_object *lbh_mark_backends(struct store *s, uint32_t lb, int64_t lb_port,
			       json_object *backends);

/* Deletes every record of load balancer lb. */
int lbh_clear_lb(struct store *s, uint32_t lb);

/* The leader's duty: deletes the stale records (see above). *removed
 * (may be NULL) gets their number. */
int lbh_sweep(struct store *s, int *removed);

#endif
