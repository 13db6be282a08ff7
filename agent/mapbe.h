/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Map backends: the small interface the reconciler writes through. Two
 * implementations: a real BPF map (by fd) and an in-memory hash table that
 * behaves like a BPF hash map (fixed max_entries, -E2BIG when full), used by
 * the unit tests and by simulated agents in the control-plane benchmark.
 */
#ifndef XVPC_MAPBE_H
#define XVPC_MAPBE_H

#include <stddef.h>
#include <linux/types.h>

struct xvpc_mapbe;

/* Called for each entry; a non-zero return stops the walk and is returned. */
typedef int (*xvpc_mapbe_iter_cb)(const void *key, const void *val, void *arg);

struct xvpc_mapbe_ops {
	/* 0, -ENOENT, or another negative errno. */
	int (*lookup)(struct xvpc_mapbe *m, const void *key, void *val);
	/* Create or replace; -E2BIG when the map is full. */
	int (*update)(struct xvpc_mapbe *m, const void *key, const void *val);
	int (*delete)(struct xvpc_mapbe *m, const void *key);
	int (*iterate)(struct xvpc_mapbe *m, xvpc_mapbe_iter_cb cb, void *arg);
	/* *n entries in, packed arrays of keys (and values). On error *n is
	 * how many were applied, in order, before the failing one. Deleting a
	 * missing key is not an error. */
	int (*update_batch)(struct xvpc_mapbe *m, const void *keys,
			    const void *vals, __u32 *n);
	int (*delete_batch)(struct xvpc_mapbe *m, const void *keys, __u32 *n);
	/* Number of entries (walks the map for BPF maps). */
	long (*count)(struct xvpc_mapbe *m);
	void (*destroy)(struct xvpc_mapbe *m);
};

struct xvpc_mapbe {
	const struct xvpc_mapbe_ops *ops;
	char name[32];
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
};

/* In-memory map with the given sizes. */
int xvpc_mapbe_mem_new(const char *name, __u32 key_size, __u32 value_size,
		       __u32 max_entries, struct xvpc_mapbe **out);
/* A BPF map by fd (borrowed: the caller keeps it open). Sizes come from the
 * kernel. Batch operations are used when the map type supports them. */
int xvpc_mapbe_bpf_new(int fd, const char *name, struct xvpc_mapbe **out);
void xvpc_mapbe_destroy(struct xvpc_mapbe *m);

#endif
