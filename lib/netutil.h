/* SPDX-License-Identifier: GPL-2.0-only */
/* Address parsing and printing shared by every binary. All return 0 or a
 * negative errno; addresses are stored in network byte order. */
#ifndef XVPC_NETUTIL_H
#define XVPC_NETUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#define XVPC_MAC_STRLEN	 18 /* "aa:bb:cc:dd:ee:ff" + NUL */
#define XVPC_IP_STRLEN	 16
#define XVPC_CIDR_STRLEN 19

int xvpc_parse_mac(const char *s, __u8 mac[6]);
void xvpc_fmt_mac(const __u8 mac[6], char buf[XVPC_MAC_STRLEN]);
int xvpc_parse_ip(const char *s, __be32 *ip);
const char *xvpc_fmt_ip(__be32 ip, char buf[XVPC_IP_STRLEN]);
/* "10.0.1.0/24": the address must be the network address (no host bits). */
int xvpc_parse_cidr(const char *s, __be32 *net, __u8 *plen);
const char *xvpc_fmt_cidr(__be32 net, __u8 plen, char buf[XVPC_CIDR_STRLEN]);
__be32 xvpc_plen_mask(__u8 plen);
bool xvpc_cidr_contains(__be32 net, __u8 plen, __be32 ip);
bool xvpc_cidr_overlap(__be32 a, __u8 alen, __be32 b, __u8 blen);
/* Interface helpers (in the calling thread's network namespace). */
int xvpc_ifindex(const char *ifname);
int xvpc_if_mtu(const char *ifname, int *mtu);
int xvpc_if_set_mtu(const char *ifname, int mtu);
int xvpc_if_mac(const char *ifname, __u8 mac[6]);
int xvpc_if_ipv4(const char *ifname, __be32 *ip);

#endif
