// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netutil.h"

int xvpc_parse_mac(const char *s, __u8 mac[6])
{
	unsigned int b[6];
	char tail;

	if (!s ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
		   &b[4], &b[5], &tail) != 6 ||
	    strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
	return 0;
}

void xvpc_fmt_mac(const __u8 mac[6], char buf[XVPC_MAC_STRLEN])
{
	snprintf(buf, XVPC_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0],
		 mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int xvpc_parse_ip(const char *s, __be32 *ip)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ip = a.s_addr;
	return 0;
}

const char *xvpc_fmt_ip(__be32 ip, char buf[XVPC_IP_STRLEN])
{
	struct in_addr a = {.s_addr = ip};

	return inet_ntop(AF_INET, &a, buf, XVPC_IP_STRLEN);
}

__be32 xvpc_plen_mask(__u8 plen)
{
	return plen ? htonl(~0u << (32 - plen)) : 0;
}

int xvpc_parse_cidr(const char *s, __be32 *net, __u8 *plen)
{
	char buf[XVPC_CIDR_STRLEN + 1], *slash, *end;
	long len;
	__be32 ip;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	errno = 0;
	len = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1 || len < 0 || len > 32)
		return -EINVAL;
	if (xvpc_parse_ip(buf, &ip))
		return -EINVAL;
	if (ip & ~xvpc_plen_mask(len))
		return -EINVAL; /* host bits set */
	*net = ip;
	*plen = len;
	return 0;
}

const char *xvpc_fmt_cidr(__be32 net, __u8 plen, char buf[XVPC_CIDR_STRLEN])
{
	char ip[XVPC_IP_STRLEN];

	snprintf(buf, XVPC_CIDR_STRLEN, "%s/%u", xvpc_fmt_ip(net, ip), plen);
	return buf;
}

bool xvpc_cidr_contains(__be32 net, __u8 plen, __be32 ip)
{
	return (ip & xvpc_plen_mask(plen)) == net;
}

bool xvpc_cidr_overlap(__be32 a, __u8 alen, __be32 b, __u8 blen)
{
	__u8 len = alen < blen ? alen : blen;

	return (a & xvpc_plen_mask(len)) == (b & xvpc_plen_mask(len));
}

int xvpc_ifindex(const char *ifname)
{
	unsigned int idx = if_nametoindex(ifname);

	return idx ? (int)idx : -ENODEV;
}

static int if_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr)
{
	int fd, err = 0;

	if (strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(fd, req, ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

int xvpc_if_mtu(const char *ifname, int *mtu)
{
	struct ifreq ifr = {};
	int err = if_ioctl(ifname, SIOCGIFMTU, &ifr);

	if (!err)
		*mtu = ifr.ifr_mtu;
	return err;
}

int xvpc_if_set_mtu(const char *ifname, int mtu)
{
	struct ifreq ifr = {.ifr_mtu = mtu};

	return if_ioctl(ifname, SIOCSIFMTU, &ifr);
}

int xvpc_if_mac(const char *ifname, __u8 mac[6])
{
	struct ifreq ifr = {};
	int err = if_ioctl(ifname, SIOCGIFHWADDR, &ifr);

	if (!err)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return err;
}

int xvpc_if_ipv4(const char *ifname, __be32 *ip)
{
	struct ifaddrs *ifa, *it;
	int err = -EADDRNOTAVAIL;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (it = ifa; it; it = it->ifa_next) {
		if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET ||
		    strcmp(it->ifa_name, ifname))
			continue;
		*ip = ((struct sockaddr_in *)it->ifa_addr)->sin_addr.s_addr;
		err = 0;
		break;
	}
	freeifaddrs(ifa);
	return err;
}
