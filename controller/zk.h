/* SPDX-License-Identifier: GPL-2.0-only */
/* ZooKeeper coordination for the controller cluster, on libzookeeper_mt.
 *
 * Generic building blocks, with no knowledge of what the controller stores:
 *   session   connect, wait for a server, ride out reconnects, report expiry
 *   kv        versioned records: get, create, put, delete, list, mkdirs
 *   txn       atomic multi-record transactions (zoo_multi) with version checks
 *   team      ephemeral sequential members, herd-free leader election
 *   bus       per-channel ordered message queues, exactly-once subscribers
 *   snapshot  a consistent copy of a subtree and the bus sequence it matches
 *
 * docs/zookeeper.md describes the znode layout and the recipes.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure; zk_err() maps ZooKeeper's codes:
 *   -ENOENT     no such node                  -EEXIST   node exists
 *   -ESTALE     version check failed          -ENOTEMPTY node has children
 *   -EINVAL     bad path or argument          -EMSGSIZE record too large
 *   -EAGAIN     the connection broke during the call: the change may or may
 *               not have been applied, re-read before retrying
 *   -ETIMEDOUT  the server did not answer in time (same caveat)
 *   -ENOTCONN   ZK_ENOQUORUM: no server that has a quorum is reachable; the
 *               call was not sent (fails fast once the reconnect grace has
 *               passed)
 *   -ESHUTDOWN  the session expired or is closed; open a new one
 * zk_err_unavailable() is true for the last four: the controller answers
 * those with 503 and keeps serving reads from its own copy.
 *
 * Callbacks (expiry, team, bus) run on one event thread owned by the
 * session, one at a time, and may call any function here except zk_close().
 */
#ifndef XVPC_CTRL_ZK_H
#define XVPC_CTRL_ZK_H

#include <stdbool.h>
#include <stdint.h>

#define ZK_ENOQUORUM ENOTCONN

/* Expected version meaning "no check". */
#define ZK_ANY_VERSION (-1)
/* Largest record value: ZooKeeper's default jute.maxbuffer is 1 MiB for a
 * whole packet; keep room for the path and the headers. */
#define ZK_RECORD_MAX (1024 * 1024 - 8192)
/* Largest sum of values in one transaction (same packet limit). */
#define ZK_TXN_MAX  ZK_RECORD_MAX
#define ZK_PATH_MAX 1024

struct zk;

struct zk_config {
	const char *hosts;	/* "127.0.0.1:2181,127.0.0.1:2182" */
	int session_timeout_ms; /* asked of the server; 0: 10000 */
	int connect_timeout_ms; /* zk_open() waits this long; 0: 10000 */
	/* While disconnected, a call waits up to this long (counted from
	 * the disconnection) for the client to reconnect to another
	 * server, then fails with ZK_ENOQUORUM at once; 0: 2000. */
	int reconnect_wait_ms;
	/* Called once on the event thread when the server expired the
	 * session: ephemeral nodes (team membership) are gone and every
	 * further call fails with -ESHUTDOWN. The caller closes this
	 * session and opens a new one. May be NULL. */
	void (*on_expired)(struct zk *zk, void *arg);
	void *arg;
};

/* Session. */
int zk_open(const struct zk_config *cfg, struct zk **out);
/* Frees teams and subscriptions still open, deletes this session's
 * ephemeral nodes. Not from a callback. NULL is a no-op. */
void zk_close(struct zk *zk);
bool zk_connected(struct zk *zk);
bool zk_expired(struct zk *zk);
/* Waits until connected; 0, -ETIMEDOUT or -ESHUTDOWN. */
int zk_wait_connected(struct zk *zk, int timeout_ms);
int64_t zk_session_id(struct zk *zk);
/* ZooKeeper return code to negative errno (see above). */
int zk_err(int zrc);
bool zk_err_unavailable(int err);

/* Key-value records. Paths are absolute ("/a/b"), without trailing '/'.
 * Versions are ZooKeeper's data versions: 0 after create, +1 per put. */
struct zk_stat {
	int version;
	int64_t mzxid; /* transaction that last wrote the record */
	int num_children;
};

/* *data gets a malloc'ed copy with a NUL byte after *len bytes. */
int zk_get(struct zk *zk, const char *path, char **data, int *len,
	   struct zk_stat *st);
/* Creates a persistent record, and its missing parents (empty). */
int zk_create(struct zk *zk, const char *path, const void *data, int len);
/* Replaces the value if the version matches (or ZK_ANY_VERSION);
 * new_version may be NULL. */
int zk_put(struct zk *zk, const char *path, const void *data, int len,
	   int version, int *new_version);
int zk_delete(struct zk *zk, const char *path, int version);
/* Creates path and all its missing parents; existing ones are fine. */
int zk_mkdirs(struct zk *zk, const char *path);
/* Child names (not paths), sorted; free with zk_strings_free(). */
int zk_children(struct zk *zk, const char *path, char ***names, int *n);
void zk_strings_free(char **names, int n);

/* Transactions: all ops commit or none. Each add returns the op's index or
 * a negative errno (-EINVAL bad path, -EMSGSIZE too large), in which case
 * the transaction is unchanged. */
struct zk_txn;
struct zk_txn *zk_txn_new(void);
void zk_txn_free(struct zk_txn *t);
int zk_txn_create(struct zk_txn *t, const char *path, const void *data,
		  int len);
int zk_txn_put(struct zk_txn *t, const char *path, const void *data, int len,
	       int version);
int zk_txn_delete(struct zk_txn *t, const char *path, int version);
int zk_txn_check(struct zk_txn *t, const char *path, int version);
/* Appends a message to a bus channel in the same transaction. */
int zk_txn_publish(struct zk_txn *t, const char *chan, const void *data,
		   int len);
/* -ESTALE when another writer changed a checked record: nothing was
 * applied, re-read and retry. Parents of created records are made as
 * needed (outside the transaction). */
int zk_txn_commit(struct zk *zk, struct zk_txn *t);
/* After a failed commit: index of the op that failed, or -1. */
int zk_txn_failed_op(const struct zk_txn *t);
/* After a commit: the new version of a put, the sequence of a publish. */
int zk_txn_version(const struct zk_txn *t, int op);
int64_t zk_txn_seq(const struct zk_txn *t, int op);
/* After a commit: the transaction's zxid, from a put op (creates do not
 * report it); -EINVAL for another op. */
int64_t zk_txn_zxid(const struct zk_txn *t, int op);
int zk_txn_count(const struct zk_txn *t);

/* Team: members register as ephemeral sequential nodes "m-<seq>" under
 * a path; the lowest sequence is the leader. Each member watches only its
 * predecessor, so a departure wakes at most one member for the election.
 * member_joined/member_left are optional: setting either makes this member
 * watch the whole member list (every change then wakes every member that
 * asked), and leader_changed then also reports other members' leadership. */
struct zk_member {
	char name[32]; /* "m-0000000007" */
	int64_t seq;
	char *data; /* NUL terminated */
	int len;
};

struct zk_team;

struct zk_team_ops {
	void (*member_joined)(struct zk_team *t, const struct zk_member *m,
			      void *arg);
	void (*member_left)(struct zk_team *t, const struct zk_member *m,
			    void *arg);
	/* leader is NULL when unknown (session expired); is_self is true
	 * when this member just became the leader. */
	void (*leader_changed)(struct zk_team *t,
			       const struct zk_member *leader, bool is_self,
			       void *arg);
};

/* Registers and runs the first election before returning. */
int zk_team_join(struct zk *zk, const char *path, const void *data, int len,
		 const struct zk_team_ops *ops, void *arg,
		 struct zk_team **out);
/* Deletes the member node (the successor takes over) and frees t. */
void zk_team_leave(struct zk_team *t);
/* True while elected and connected. */
bool zk_team_is_leader(struct zk_team *t);
const char *zk_team_self(struct zk_team *t);
/* Times this member re-ran the election after a watch fired. */
uint64_t zk_team_wakeups(struct zk_team *t);
/* Current members in sequence order (first is the leader), read from the
 * server; free with zk_members_free(). Works without joining. */
int zk_team_list(struct zk *zk, const char *path, struct zk_member **out,
		 int *n);
int zk_team_members(struct zk_team *t, struct zk_member **out, int *n);
void zk_members_free(struct zk_member *m, int n);

/* Bus: a channel is a persistent node whose children "m-<seq>" are the
 * messages, persistent sequential, so their sequence numbers grow in
 * commit order (with gaps: deletions advance the counter too). */
struct zk_msg {
	int64_t seq;
	int64_t zxid; /* transaction that created it */
	const char *data;
	int len;
};

struct zk_sub;

/* err 0: msg is the next message. err -ENOENT: messages up to msg->seq
 * were garbage-collected before this subscriber saw them; the caller
 * resynchronises (snapshot). err -ESHUTDOWN: the session expired, no more
 * messages. */
typedef void (*zk_bus_cb)(struct zk_sub *s, int err, const struct zk_msg *msg,
			  void *arg);

/* Creates the channel if needed; *seq (may be NULL) gets the sequence. */
int zk_bus_publish(struct zk *zk, const char *chan, const void *data, int len,
		   int64_t *seq);
/* Delivers every message with sequence >= from_seq, each once, in order,
 * on the event thread, then keeps watching. The channel need not exist. */
int zk_bus_subscribe(struct zk *zk, const char *chan, int64_t from_seq,
		     zk_bus_cb cb, void *arg, struct zk_sub **out);
/* Stops delivery; waits for a running callback (unless called from it). */
void zk_bus_unsubscribe(struct zk_sub *s);
/* Sequence of the last message delivered (from_seq - 1 at first). */
int64_t zk_sub_last(struct zk_sub *s);
/* The subscriber already has every message up to seq (it applied its own
 * commits): they are neither fetched nor delivered again. */
void zk_sub_advance(struct zk_sub *s, int64_t seq);
/* Highest sequence published so far, or -1 when none. */
int zk_bus_last(struct zk *zk, const char *chan, int64_t *seq);
/* Deletes messages with sequence < below (done by the leader); *deleted
 * (may be NULL) gets their number. */
int zk_bus_gc(struct zk *zk, const char *chan, int64_t below, int *deleted);

/* Snapshot: every node under root (root included, the channel's subtree
 * excluded) and the bus sequence it matches. The recipe (docs/zookeeper.md):
 * every writer publishes on chan in the same transaction as its change; a
 * joining member takes the snapshot, subscribes from seq + 1 and applies
 * each message's change to a record unless zk_snapshot_covers() says the
 * copy already has it. */
struct zk_record {
	char *path;
	char *data; /* NUL terminated */
	int len;
	struct zk_stat st;
};

struct zk_snapshot {
	int64_t seq; /* every message <= seq is in the copy; -1 when none */
	/* No message was published while the copy was read: it is exactly
	 * the state after seq. Otherwise some changes after seq may be in
	 * the copy too (zk_snapshot_covers() tells which). */
	bool exact;
	/* Every change in the copy was committed by a transaction <= zxid
	 * (the channel's pzxid read after the copy): a message with a
	 * larger zxid is new to the copy. 0 when the channel is absent. */
	int64_t zxid;
	struct zk_record *recs; /* depth first, children in name order */
	int n;
};

/* Tries a few times for an exact copy, then returns an inexact one. */
int zk_snapshot_take(struct zk *zk, const char *root, const char *chan,
		     struct zk_snapshot **out);
void zk_snapshot_free(struct zk_snapshot *s);
const struct zk_record *zk_snapshot_find(const struct zk_snapshot *s,
					 const char *path);
/* True when the copy of path already holds the change made by the
 * transaction zxid (a replayed message's zxid): skip it. Always false for
 * an exact snapshot (every later message is new). */
bool zk_snapshot_covers(const struct zk_snapshot *s, const char *path,
			int64_t zxid);

#endif
