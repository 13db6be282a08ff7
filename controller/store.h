/* SPDX-License-Identifier: GPL-2.0-only */
/* The controller's object store: versioned records under string keys,
 * atomic multi-record transactions with version checks, listing by prefix,
 * a global revision counter and a change feed.
 *
 * Two backends sit behind struct store_ops: the embedded one (store_embed.c,
 * an in-memory map recovered from an fsync'ed append-only log) and, later,
 * ZooKeeper (multi-op for transactions, znode versions for checks).
 *
 * Versions are opaque, non-zero while a record exists, and change on every
 * write of that record; a record's version is the revision of the commit
 * that last wrote it. Revisions are monotonic but not necessarily dense:
 * every commit gets a revision larger than all before it (the embedded
 * store counts 1, 2, 3...; ZooKeeper uses the transaction's zxid), and two
 * members of a cluster at the same revision hold the same records. The
 * change feed lists, per revision, the records it changed with their old
 * and new values.
 *
 * Errors of txn besides -EINVAL and -ECANCELED: -ENOTCONN when the store
 * is unavailable (ZooKeeper quorum lost, session being renewed) and
 * nothing was sent; -ETIMEDOUT when the connection broke during the commit
 * so it may or may not have been applied; -EIO when the embedded log could
 * not be made durable (nothing applied). Reads never fail for want of a
 * quorum: they are served from the member's copy. */
#ifndef XVPC_CTRL_STORE_H
#define XVPC_CTRL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX 512
#define STORE_VAL_MAX (1u << 20)

/* Version expectations in a store_op. */
#define STORE_ANY    UINT64_MAX /* no check */
#define STORE_ABSENT 0		/* the record must not exist */

enum store_op_type {
	STORE_PUT,   /* create or replace */
	STORE_DEL,   /* delete; the record must exist */
	STORE_CHECK, /* only check the version */
};

struct store_op {
	enum store_op_type type;
	const char *key;
	const char *val; /* STORE_PUT only; need not be NUL terminated */
	size_t len;
	uint64_t expect; /* STORE_ANY, STORE_ABSENT or a version */
};

struct store_rec {
	const char *key;
	const char *val; /* NUL terminated (len excludes it) */
	size_t len;
	uint64_t version;
};

/* One record changed by the transaction that produced revision `rev`. */
struct store_change {
	uint64_t rev;
	const char *key;
	const char *old_val; /* NULL when the record was created */
	const char *new_val; /* NULL when the record was deleted */
	/* The VPC of a vpc/, subnet/, port/, lb/ or lbh/ record, the same
	 * in both values (read once when the change entered the feed, so
	 * readers filter by VPC without parsing); 0: none or not known. */
	uint32_t vpc;
};

/*
 * The changes one node's state is made of (store_changes_scoped): those of
 * records of its VPCs (vpc/, subnet/, port/, lb/, lbh/ with that
 * store_change.vpc), of its own port index records (np/<node>/), of every
 * node/, gw/ and lbp/ record and of vpc/, subnet/, port/, lb/, lbh/
 * records without a VPC (store_change.vpc 0). No other record's change
 * is. The feed indexes its changes by these scopes, so such a walk costs
 * the changes it returns, not the window's.
 */
struct store_scope {
	const uint32_t *vpcs;
	size_t n_vpcs;
	const char *node; /* NULL: no node's own records */
	/* Out: changes of records of other VPCs left out of the window. */
	size_t others;
};

/* Return non-zero to stop the iteration (that value is returned). */
typedef int (*store_rec_cb)(const struct store_rec *rec, void *arg);
typedef int (*store_change_cb)(const struct store_change *chg, void *arg);

struct store;

struct store_ops {
	/* Copies the value into *val (malloc'ed, NUL terminated, caller
	 * frees); -ENOENT when absent. val or version may be NULL. */
	int (*get)(struct store *s, const char *key, char **val,
		   uint64_t *version);
	/* Records whose key starts with prefix and sorts strictly after
	 * `after` (NULL: from the start), in key order, at most limit
	 * (0: no limit). Callbacks must not call back into the store. */
	int (*list)(struct store *s, const char *prefix, const char *after,
		    size_t limit, store_rec_cb cb, void *arg);
	/* All ops or none. -ECANCELED when a version check fails (then
	 * *failed is the index of the first failing op, if failed != NULL),
	 * see above for the others. *rev gets the new revision on success
	 * (rev may be NULL); with the ZooKeeper backend the member's copy
	 * already holds the commit when txn returns. */
	int (*txn)(struct store *s, const struct store_op *ops, size_t n,
		   uint64_t *rev, size_t *failed);
	uint64_t (*revision)(struct store *s);
	/* Feeds every change with revision > since, in revision order, and
	 * sets *upto to the revision the feed covers. -ERANGE when the feed
	 * no longer holds all changes after `since` (the caller then takes
	 * a snapshot). scope NULL: every change; else only those in it
	 * (also a superset: callers still filter). */
	int (*changes)(struct store *s, uint64_t since,
		       struct store_scope *scope, store_change_cb cb, void *arg,
		       uint64_t *upto);
	/* Blocks until the revision exceeds rev or timeout_ms passes;
	 * returns the current revision. */
	uint64_t (*wait)(struct store *s, uint64_t rev, int timeout_ms);
	/* Ends every store_wait in progress at once (shutting down). */
	void (*wake_all)(struct store *s);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

static inline int store_get(struct store *s, const char *key, char **val,
			    uint64_t *version)
{
	return s->ops->get(s, key, val, version);
}

static inline int store_list(struct store *s, const char *prefix,
			     const char *after, size_t limit, store_rec_cb cb,
			     void *arg)
{
	return s->ops->list(s, prefix, after, limit, cb, arg);
}

static inline int store_txn(struct store *s, const struct store_op *ops,
			    size_t n, uint64_t *rev, size_t *failed)
{
	return s->ops->txn(s, ops, n, rev, failed);
}

static inline uint64_t store_revision(struct store *s)
{
	return s->ops->revision(s);
}

static inline int store_changes(struct store *s, uint64_t since,
				store_change_cb cb, void *arg, uint64_t *upto)
{
	return s->ops->changes(s, since, NULL, cb, arg, upto);
}

static inline int store_changes_scoped(struct store *s, uint64_t since,
				       struct store_scope *scope,
				       store_change_cb cb, void *arg,
				       uint64_t *upto)
{
	return s->ops->changes(s, since, scope, cb, arg, upto);
}

static inline uint64_t store_wait(struct store *s, uint64_t rev, int timeout_ms)
{
	return s->ops->wait(s, rev, timeout_ms);
}

static inline void store_wake_all(struct store *s)
{
	s->ops->wake_all(s);
}

static inline void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

/* Embedded backend. The log lives in dir/store.log (created if missing,
 * locked against a second process). */
struct store_embed_opts {
	size_t compact_bytes; /* compact when the log exceeds this and
				   twice the live data; 0: default 8 MiB */
	size_t feed_changes;  /* changes kept in the feed; 0: 65536 */
};

int store_embed_open(const char *dir, const struct store_embed_opts *opts,
		     struct store **out);
/* Forces a compaction now (for tests). */
int store_embed_compact(struct store *s);
/* Size of the log file in bytes (for tests). */
size_t store_embed_log_size(struct store *s);

/* ZooKeeper backend (store_zk.c, docs/zookeeper.md): records are znodes
 * under <root>/store, a commit is one zoo_multi that also publishes the
 * change on the bus channel <root>/bus/store, and each member serves reads
 * from its own copy, built from a snapshot and kept current from the bus.
 * It renews an expired session and resynchronises by itself. */
struct zk;
struct store_zk_opts {
	const char *hosts;	/* "127.0.0.1:2181,..." */
	const char *root;	/* NULL: "/xvpc" */
	int session_timeout_ms; /* 0: 10000 */
	int reconnect_wait_ms;	/* 0: 2000 (see struct zk_config) */
	size_t feed_changes;	/* 0: 65536 */
	bool single_commits;	/* no group commit: a multi per commit
				   (for comparison in benchmarks) */
};

int store_zk_open(const struct store_zk_opts *opts, struct store **out);
/* Calls fn(zk) now with the current session, and again from the store's
 * own thread whenever it changes: fn(NULL) before the old session is
 * closed (drop everything made on it), fn(new) once the copy is in sync
 * again. One watcher per store. */
void store_zk_watch_session(struct store *s,
			    void (*fn)(struct zk *zk, void *arg), void *arg);
/* Deletes bus messages that every member in sync has applied, keeping the
 * latest `keep` (run by the leader); *deleted (may be NULL) gets their
 * number. */
int store_zk_gc(struct store *s, int keep, int *deleted);
/* Whether the session is connected to a member with a quorum. */
bool store_zk_connected(struct store *s);
/* Resynchronisations from a fresh snapshot since open (a missed message,
 * a new session), for tests. */
uint64_t store_zk_resyncs(struct store *s);
/* Group commit figures since open: multis that carried several commits,
 * and the commits they carried (for tests and benchmarks). */
void store_zk_batch_stats(struct store *s, uint64_t *batches, uint64_t *txns);
/* Multis sent with their checks elided (the stamp's version stood for
 * them: nobody had committed since this member's last multi). */
uint64_t store_zk_elided(struct store *s);
/* For tests: while paused, transactions queue and no commit starts, so
 * the ones queued meanwhile go out as one batch; and how many wait. */
void store_zk_pause(struct store *s, bool pause);
size_t store_zk_queued(struct store *s);

#endif
