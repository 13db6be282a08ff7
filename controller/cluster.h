/* SPDX-License-Identifier: GPL-2.0-only */
/* The controller's place in its cluster and the leader's duties.
 *
 * With ZooKeeper, each controller joins the team <root>/members (ephemeral
 * sequential, data = its API address); the lowest member leads (zk_team,
 * no herd). On the embedded store the single controller always leads.
 * The leader, once per tick:
 *   - node liveness: an agent's state polls are noted in memory by the
 *     controller it polls (api_live_nodes(): no store commit, so liveness
 *     moves neither the revision nor the change feed); with ZooKeeper
 *     every member writes the nodes polling it into its ephemeral
 *     <root>/live/<member> record every min(5 s, down_after_s / 3), and
 *     the leader reads them all. A node not reported for down_after_s
 *     seconds, by the leader's own clock, gets "status": "down" in
 *     node/<node>, and "up" again when it is;
 *   - gateways of learn-mode VPCs (gateways.h): when the store changed
 *     since the last look, every learn-mode VPC whose gateway is down or
 *     gone, or that has fewer than vpc_gateways while more nodes are up,
 *     is re-designated;
 *   - backend health reports (lbhealth.h): when the store changed since
 *     the last look, the reports of deleted load balancers, of backends no
 *     longer in their load balancer or no longer bound to the reporting
 *     node, and of nodes that are down are cleared;
 *   - garbage collection of the store's bus messages (all but gc_keep).
 * VNI uniqueness needs no leader: the vni/<vni> record is created with an
 * absence check in the subnet's own transaction. */
#ifndef XVPC_CTRL_CLUSTER_H
#define XVPC_CTRL_CLUSTER_H

#include <stdbool.h>

#include "store.h"

struct api;

struct cluster_opts {
	struct store *store;
	bool zookeeper;	      /* store is store_zk_open()'s */
	const char *root;     /* NULL: "/xvpc" (as the store's) */
	const char *api_addr; /* the member's data, "127.0.0.1:8470" */
	struct api *api;      /* whose pollers are the live nodes; NULL:
				 no liveness marking */
	int down_after_s;     /* 0: 15 */
	int tick_ms;	      /* 0: 1000 */
	int gc_keep;	      /* bus messages kept; 0: 2000 */
	int gc_every_s;	      /* 0: 5 */
	int vpc_gateways;     /* per learn-mode VPC, 1 .. 4; 0: 2 */
};

struct cluster;

int cluster_start(const struct cluster_opts *opts, struct cluster **out);
void cluster_stop(struct cluster *c);
bool cluster_is_leader(struct cluster *c);
/* The member name ("m-0000000003"; "" on the embedded store or while not
 * registered). */
void cluster_self(struct cluster *c, char *buf, size_t len);

#endif
