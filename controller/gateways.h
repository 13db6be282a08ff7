/* SPDX-License-Identifier: GPL-2.0-only */
/* Gateway nodes of learn-mode VPCs (docs/learning.md).
 *
 * A learn-mode VPC's record holds "gateways": the names of the nodes that
 * get its full table. They are picked among the registered nodes that are
 * up (node/<name> without "status": "down", not being deleted): fewest
 * gateway assignments first (over all learn-mode VPCs), ties broken by a
 * stable hash of (vpc, node) so VPCs spread over the cluster. Each gateway
 * also has an index record gw/<node>/<vpc>, written in the same
 * transaction as the VPC, so a node finds the VPCs it is a gateway of
 * without a scan.
 *
 * The API designates when a VPC is created in or switched to learn mode;
 * the leader (cluster.c) re-designates every learn-mode VPC whose gateway
 * went down or was deleted, or that has fewer than N while more nodes are
 * up. */
#ifndef XVPC_CTRL_GATEWAYS_H
#define XVPC_CTRL_GATEWAYS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define GW_DEFAULT 2
#define GW_MAX	   4 /* = XVPC_STATE_GATEWAYS_MAX */
#define GW_NAME	   64

struct gw_view;

/* Reads the nodes and the assignments of every learn-mode VPC. */
int gw_view_load(struct store *s, struct gw_view **out);
void gw_view_free(struct gw_view *v);

/* The gateways VPC `vpc` should have, given its current list `cur` (an
 * array of names, or NULL): the current ones that are still up, then new
 * ones up to n. Fills names/count and updates the view's assignment counts
 * to match. Returns true when the list differs from cur. */
bool gw_pick(struct gw_view *v, uint32_t vpc, json_object *cur, int n,
	     char names[GW_MAX][GW_NAME], int *count);

/* Adds to ops (at most 2 * GW_MAX) the index changes from the gateway
 * list `old` (array of names or NULL) to names/count for VPC vpc: deletes
 * of gw/<node>/<vpc> records that exist, puts of new ones. The keys live
 * in keys[] (2 * GW_MAX rows). Returns the number of ops added. */
size_t gw_index_ops(struct store *s, uint32_t vpc, json_object *old,
		    char names[GW_MAX][GW_NAME], int count,
		    struct store_op *ops, char keys[][GW_NAME + 32]);

/* Sets rec's "gateways" to names/count. */
void gw_set(json_object *rec, char names[GW_MAX][GW_NAME], int count);

/* The leader's duty: brings the gateways of every learn-mode VPC in line
 * (n per VPC). *changed (may be NULL) gets the number of VPCs rewritten.
 * A VPC changed meanwhile is left for the next run. */
int gw_designate_all(struct store *s, int n, int *changed);

/* The index key of a gateway: gw/<node>/<vpc>. */
void gw_key(char *buf, size_t len, const char *node, uint32_t vpc);

#endif
