/* SPDX-License-Identifier: GPL-2.0-only */
/* In-memory pieces shared by the store backends: an ordered map of records
 * (a skip list: O(log n) inserts, in-order walks for listing by prefix; plus
 * a hash index of the keys, so exact lookups compare one key, not log n of
 * them) and the change feed (a ring of the latest changes).
 *
 * Neither locks: the backend holds its own lock around every call. */
#ifndef XVPC_CTRL_STORE_MEM_H
#define XVPC_CTRL_STORE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define MEM_LEVELS 24

struct mem_rec {
	char *key;
	char *val; /* NUL terminated */
	size_t len;
	uint64_t ver; /* the store version */
	int64_t aux;  /* the backend's own (ZooKeeper: the data version) */
	struct mem_rec *hnext; /* hash chain */
	uint64_t hash;
	int levels;
	struct mem_rec *next[];
};

struct mem_map {
	struct mem_rec *head; /* sentinel, MEM_LEVELS high */
	size_t n;
	size_t live_bytes; /* keys and values */
	uint64_t rnd;
	struct mem_rec **buckets; /* hash index: n_buckets, a power of 2 */
	size_t n_buckets;
};

int mem_map_init(struct mem_map *m);
void mem_map_fini(struct mem_map *m);
void mem_map_clear(struct mem_map *m);
struct mem_rec *mem_map_find(const struct mem_map *m, const char *key);
/* First record whose key is >= key, or NULL. */
struct mem_rec *mem_map_seek(const struct mem_map *m, const char *key);
static inline struct mem_rec *mem_map_first(const struct mem_map *m)
{
	return m->head->next[0];
}
/* Creates or replaces; takes ownership of val (malloc'ed, NUL terminated)
 * on success only. NULL when out of memory. */
struct mem_rec *mem_map_put(struct mem_map *m, const char *key, char *val,
			    size_t len, uint64_t ver);
void mem_map_del(struct mem_map *m, const char *key);
/* A top-level string field of a JSON object's text into out: 1; 0 when
 * absent or null; -1 when it is not a string, does not fit or the text is
 * not JSON. Read off the text; parsed only when the value is escaped. */
int mem_str_field(const char *json, const char *field, char *out, size_t len);
/* store_ops.list on the map. */
int mem_map_list(const struct mem_map *m, const char *prefix, const char *after,
		 size_t limit, store_rec_cb cb, void *arg);
/* malloc'ed copy of len bytes plus a NUL. */
char *mem_dup(const char *v, size_t len);

/* The change feed: the latest `cap` changes, in revision order. It holds
 * every change with a revision > base. */
struct mem_feed_ent {
	uint64_t rev;
	char *key;
	char *old_val;
	char *new_val;
	uint32_t vpc; /* store_change.vpc */
	/* The scope index (struct store_scope): the entry's number in the
	 * feed (counted since it was made), the number of the one before it
	 * in its scope (UINT64_MAX: none), and how many entries of a VPC's
	 * scope came before it. */
	uint64_t seq, prev, vbefore;
};

/* The newest entry of a scope (an open-addressing table). */
struct mem_feed_scope {
	uint64_t scope; /* 0: an empty slot */
	uint64_t last;
};

struct mem_feed {
	struct mem_feed_ent *ents;
	size_t cap, head, count;
	uint64_t base;
	uint64_t first_seq; /* the oldest entry's seq */
	uint64_t vtotal;    /* entries of a VPC's scope so far */
	struct mem_feed_scope *scopes;
	size_t scopes_cap, scopes_used;
};

int mem_feed_init(struct mem_feed *f, size_t cap, uint64_t base);
void mem_feed_fini(struct mem_feed *f);
/* Forgets every change: the feed then starts after base. */
void mem_feed_reset(struct mem_feed *f, uint64_t base);
/* Appends one change (copies the strings). Out of memory forgets the feed,
 * so readers take snapshots instead of missing a change. */
void mem_feed_push(struct mem_feed *f, uint64_t rev, const char *key,
		   const char *old_val, const char *new_val);
/* store_ops.changes: every change with revision > since, given the
 * backend's current revision cur; -ERANGE when since is before the feed's
 * base or after cur. */
int mem_feed_walk(const struct mem_feed *f, uint64_t since, uint64_t cur,
		  store_change_cb cb, void *arg, uint64_t *upto);
/* The same for the changes in scope only (NULL: every change), through
 * the scope index; -ENOMEM when it cannot hold the window's entries. */
int mem_feed_walk_scoped(const struct mem_feed *f, uint64_t since, uint64_t cur,
			 struct store_scope *scope, store_change_cb cb,
			 void *arg, uint64_t *upto);

/*
 * Secondary indexes the copies keep themselves, never written to a
 * backend's storage: for each port/<id> record,
 *   tp/<tenant>/<id> = {}            the tenant's ports (listing)
 *   vp/<vpc>/<id>    = {}            the VPC's ports (a node's snapshot)
 *   np/<node>/<id>   = {"vpc":<vpc>} the ports bound to a node
 * (tenant and VPC as %010u), with the port record's version, put and
 * deleted with it and in the change feed beside it. Every member derives
 * them from the same records, so the copies agree; a port costs one
 * stored record instead of four.
 */
/* Whether key is a derived record's (a transaction may not write it). */
bool mem_derived_key(const char *key);
/* Brings the records derived from key to its new value (NULL: deleted),
 * from its old one (NULL: created), with changes into f (NULL: none).
 * Call before the record itself changes (old_val must be valid). */
int mem_derive(struct mem_map *m, struct mem_feed *f, uint64_t rev,
	       const char *key, const char *old_val, const char *new_val);

#endif
