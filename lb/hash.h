/* SPDX-License-Identifier: GPL-2.0-only */
/* Keyed hashes for the load balancer's control plane (not the datapath).
 *
 * SipHash-2-4 (Aumasson and Bernstein, 2012): a 64-bit keyed hash of a byte
 * string. Byte order is fixed by the algorithm (little-endian words), so the
 * same key and input give the same value on every machine. */
#ifndef XVPC_LB_HASH_H
#define XVPC_LB_HASH_H

#include <stddef.h>
#include <linux/types.h>

struct xvpc_sipkey {
	__u64 k0; /* bytes 0..7 of the 128-bit key, little-endian */
	__u64 k1; /* bytes 8..15 */
};

/* Key from 16 bytes, read little-endian as the reference does. */
struct xvpc_sipkey xvpc_sipkey_from_bytes(const __u8 bytes[16]);

__u64 xvpc_siphash24(const struct xvpc_sipkey *key, const void *data,
		     size_t len);

#endif
