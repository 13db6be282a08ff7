// SPDX-License-Identifier: GPL-2.0-only
/* Link watcher on rtnetlink. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "log.h"
#include "netlink.h"

int agent_nl_open(void)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK,
	};
	int fd, rcvbuf = 1 << 20;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int agent_nl_parse(const void *buf, size_t len, agent_link_cb cb, void *ctx)
{
	const struct nlmsghdr *nh;
	int n = 0;

	for (nh = buf; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
		struct agent_link_event e = {0};
		const struct ifinfomsg *ifi;
		const struct rtattr *rta;
		int alen;

		if (nh->nlmsg_type == NLMSG_DONE)
			break;
		if (nh->nlmsg_type != RTM_NEWLINK &&
		    nh->nlmsg_type != RTM_DELLINK)
			continue;
		if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
			return -EINVAL;
		ifi = NLMSG_DATA(nh);
		e.ifindex = ifi->ifi_index;
		e.deleted = nh->nlmsg_type == RTM_DELLINK;
		alen = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi));
		for (rta = IFLA_RTA(ifi); RTA_OK(rta, alen);
		     rta = RTA_NEXT(rta, alen)) {
			size_t l = RTA_PAYLOAD(rta);

			if (rta->rta_type != IFLA_IFNAME)
				continue;
			if (l >= sizeof(e.ifname))
				l = sizeof(e.ifname) - 1;
			memcpy(e.ifname, RTA_DATA(rta), l);
			e.ifname[l] = '\0';
		}
		cb(ctx, &e);
		n++;
	}
	return n;
}

int agent_nl_read(int fd, agent_link_cb cb, void *ctx)
{
	char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	int total = 0;

	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		int n;

		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return total;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n = agent_nl_parse(buf, len, cb, ctx);
		if (n < 0)
			return n;
		total += n;
	}
}
