/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Link watcher: an rtnetlink socket on RTNLGRP_LINK so the agent notices
 * interfaces that appear (a pending endpoint can be bound) and disappear
 * underneath it (its binding and state are dropped).
 */
#ifndef XVPC_AGENT_NETLINK_H
#define XVPC_AGENT_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct agent_link_event {
	int ifindex;
	char ifname[16]; /* "" when the message had no name */
	int deleted;	 /* RTM_DELLINK, else RTM_NEWLINK */
};

typedef void (*agent_link_cb)(void *ctx, const struct agent_link_event *e);

/* Open a non-blocking socket subscribed to link changes: fd or -errno. */
int agent_nl_open(void);
/* Read what is queued and call cb per link message. Returns the number of
 * messages, 0 when nothing was queued, or -errno (-ENOBUFS: the socket
 * overflowed; the caller should resync everything). */
int agent_nl_read(int fd, agent_link_cb cb, void *ctx);
/* Parse a buffer of netlink messages (exposed for tests). */
int agent_nl_parse(const void *buf, size_t len, agent_link_cb cb, void *ctx);

#endif

/*
 * One-shot rtnetlink requests (health probes of local backends,
 * docs/loadbalancer.md "Health checks"). Each returns 0 or -errno.
 */
/* Add (EEXIST is success) or delete (ENOENT/EADDRNOTAVAIL are success) the
 * address ip/32, scope host, on ifindex. */
int agent_nl_addr(int ifindex, __be32 ip, bool add);
/* A permanent neighbour entry ip -> mac on ifindex (replaced if there). */
int agent_nl_neigh_perm(int ifindex, __be32 ip, const __u8 mac[6]);
/* net.ipv4.conf.<ifname>.rp_filter = value. */
int agent_set_rp_filter(const char *ifname, int value);
/* net.ipv4.conf.<ifname>.rp_filter, or -errno. */
int agent_get_rp_filter(const char *ifname);
