/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Link watcher: an rtnetlink socket on RTNLGRP_LINK so the agent notices
 * interfaces that appear (a pending endpoint can be bound) and disappear
 * underneath it (its binding and state are dropped).
 */
#ifndef XVPC_AGENT_NETLINK_H
#define XVPC_AGENT_NETLINK_H

#include <stddef.h>

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
