/* SPDX-License-Identifier: GPL-2.0-only */
/* Maglev lookup tables (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016), with weights.
 *
 * A table has M entries (M prime, from xvpc_maglev_sizes()); each entry is
 * the index of a backend in the caller's array. A flow hashes to an entry.
 * Every backend has a permutation of the M entries, fixed by two keyed hashes
 * of its identity; backends take turns claiming the next free entry of their
 * permutation until the table is full. Same backends (identity, weight) and
 * same M give the same table on every node and every run, in whatever order
 * the caller lists them. See docs/loadbalancer.md.
 *
 * All functions return 0 or a negative errno and leave their outputs
 * untouched on error. */
#ifndef XVPC_LB_MAGLEV_H
#define XVPC_LB_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define XVPC_MAGLEV_M_DEFAULT 65537
#define XVPC_MAGLEV_ID_MAX    256	  /* bytes of a backend identity */
#define XVPC_MAGLEV_NONE      0xffffffffu /* "no backend" in index maps */

/* One backend as the caller knows it. */
struct xvpc_maglev_backend {
	/* Stable identity: the same bytes on every node for the same backend,
	 * e.g. "10.0.2.5:80" or a port UUID. 1..XVPC_MAGLEV_ID_MAX bytes,
	 * unique among the backends of one table. */
	const void *id;
	__u32 id_len;
	/* Share of the table is weight / sum of weights; 0 = no entries. */
	__u32 weight;
};

/* Table sizes allowed, ascending; *count gets their number. Each is prime
 * and at least ~100 times the backends it serves keeps disruption low. */
const __u32 *xvpc_maglev_sizes(size_t *count);
bool xvpc_maglev_size_ok(__u32 m);

/* A backend's permutation: entry j of it is (offset + j * skip) mod m.
 * offset = h1 mod m, skip = h2 mod (m - 1) + 1, with h1 and h2 SipHash-2-4
 * of the identity under two different fixed keys. -EINVAL on a bad size or
 * identity. */
int xvpc_maglev_permutation(const void *id, __u32 id_len, __u32 m,
			    __u32 *offset, __u32 *skip);

/* Reusable build state (permutation cursors, occupancy bitmap, sort space)
 * for tables of m entries; grows to the largest backend count seen, so
 * repeated builds allocate nothing. Not thread-safe: one per thread. */
struct xvpc_maglev_ctx;

/* -EINVAL if m is not an allowed size, -ENOMEM. */
int xvpc_maglev_ctx_new(__u32 m, struct xvpc_maglev_ctx **ctxp);
void xvpc_maglev_ctx_free(struct xvpc_maglev_ctx *ctx);
__u32 xvpc_maglev_ctx_size(const struct xvpc_maglev_ctx *ctx);
/* The build runs code compiled for x86-64-v3 when the CPU has it; true
 * selects the baseline code instead (tests compare the two; both give the
 * same tables). */
void xvpc_maglev_ctx_set_portable(struct xvpc_maglev_ctx *ctx, bool portable);

/* Fills table[0..m-1] with indexes into backends[0..n-1].
 * -ENOENT: no backends, or all have weight 0 (a VIP without backends).
 * -EINVAL: NULL arguments, n > m, an empty or too long identity, or two
 *          backends with the same identity.
 * -ENOMEM: growing the context failed. */
int xvpc_maglev_build(struct xvpc_maglev_ctx *ctx,
		      const struct xvpc_maglev_backend *backends, __u32 n,
		      __u32 *table);

/* counts[i] = entries of table[0..m-1] that hold backend i, for i < n.
 * -EINVAL if an entry is >= n. */
int xvpc_maglev_shares(const __u32 *table, __u32 m, __u32 n, __u32 *counts);

/* map[i] = index in to[] of the backend with from[i]'s identity, or
 * XVPC_MAGLEV_NONE if to[] has none. -ENOMEM, -EINVAL (NULL, bad identity). */
int xvpc_maglev_match(const struct xvpc_maglev_backend *from, __u32 n_from,
		      const struct xvpc_maglev_backend *to, __u32 n_to,
		      __u32 *map);

/* How a table change moved entries. "Kept" backends are in both tables. */
struct xvpc_maglev_disruption {
	__u32 changed;	     /* entries whose backend differs */
	__u32 removed_owned; /* entries the removed backends held before */
	__u32 added_owned;   /* entries the added backends hold after */
	__u32 moved;	     /* entries that went from one kept backend to
			      * another: the collateral damage */
};

/* Compares old_table (indexes into an array of n_old backends) with
 * new_table (into n_new backends), both of m entries; old_to_new maps old
 * indexes to new ones or XVPC_MAGLEV_NONE (see xvpc_maglev_match()).
 * -EINVAL on an out-of-range index, -ENOMEM. */
int xvpc_maglev_disruption(const __u32 *old_table, __u32 n_old,
			   const __u32 *new_table, __u32 n_new, __u32 m,
			   const __u32 *old_to_new,
			   struct xvpc_maglev_disruption *d);

#endif
