// SPDX-License-Identifier: GPL-2.0-only
/* Link watcher on rtnetlink, and the few one-shot requests of the
 * health probes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/neighbour.h>
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

struct nl_req {
	struct nlmsghdr nh;
	union {
		struct ifaddrmsg ifa;
		struct ndmsg nd;
	};
	char attrs[64];
};

static void nl_attr(struct nl_req *r, __u16 type, const void *data, size_t len)
{
	struct rtattr *rta =
		(struct rtattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	r->nh.nlmsg_len =
		NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* Send one request and wait for its acknowledgement: 0 or -errno. */
static int nl_talk(struct nl_req *r)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	char buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct timeval tv = {.tv_sec = 2};
	const struct nlmsghdr *nh;
	int fd, err = -EIO;
	ssize_t n;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r->nh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	r->nh.nlmsg_seq = 1;
	if (sendto(fd, r, r->nh.nlmsg_len, 0, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0) {
		err = -errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	for (nh = (void *)buf; NLMSG_OK(nh, (size_t)n);
	     nh = NLMSG_NEXT(nh, n)) {
		if (nh->nlmsg_type != NLMSG_ERROR ||
		    nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
			continue;
		err = ((const struct nlmsgerr *)NLMSG_DATA(nh))->error;
		break;
	}
out:
	close(fd);
	return err;
}

int agent_nl_addr(int ifindex, __be32 ip, bool add)
{
	struct nl_req r = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
		.nh.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR,
		.nh.nlmsg_flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0,
		.ifa.ifa_family = AF_INET,
		.ifa.ifa_prefixlen = 32,
		.ifa.ifa_scope = RT_SCOPE_HOST,
		.ifa.ifa_index = ifindex,
	};
	int err;

	nl_attr(&r, IFA_LOCAL, &ip, sizeof(ip));
	nl_attr(&r, IFA_ADDRESS, &ip, sizeof(ip));
	err = nl_talk(&r);
	if (add && err == -EEXIST)
		return 0;
	if (!add && (err == -ENOENT || err == -EADDRNOTAVAIL))
		return 0;
	return err;
}

int agent_nl_neigh_perm(int ifindex, __be32 ip, const __u8 mac[6])
{
	struct nl_req r = {
		.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
		.nh.nlmsg_type = RTM_NEWNEIGH,
		.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE,
		.nd.ndm_family = AF_INET,
		.nd.ndm_ifindex = ifindex,
		.nd.ndm_state = NUD_PERMANENT,
	};

	nl_attr(&r, NDA_DST, &ip, sizeof(ip));
	nl_attr(&r, NDA_LLADDR, mac, 6);
	return nl_talk(&r);
}

static int rp_filter_path(const char *ifname, char *path, size_t len)
{
	int n = snprintf(path, len, "/proc/sys/net/ipv4/conf/%s/rp_filter",
			 ifname);

	return n < 0 || (size_t)n >= len || strchr(ifname, '/') ? -EINVAL : 0;
}

int agent_set_rp_filter(const char *ifname, int value)
{
	char path[128], v[8];
	int fd, n, err = 0;

	if (rp_filter_path(ifname, path, sizeof(path)))
		return -EINVAL;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(v, sizeof(v), "%d\n", value);
	if (write(fd, v, n) != n)
		err = -errno;
	close(fd);
	return err;
}

int agent_get_rp_filter(const char *ifname)
{
	char path[128], v[8] = "";
	int fd;
	ssize_t n;

	if (rp_filter_path(ifname, path, sizeof(path)))
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, v, sizeof(v) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	return atoi(v);
}
