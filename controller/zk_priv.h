/* SPDX-License-Identifier: GPL-2.0-only */
/* Internals shared by controller/zk*.c. Not for other users. */
#ifndef XVPC_CTRL_ZK_PRIV_H
#define XVPC_CTRL_ZK_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The synchronous calls of libzookeeper_mt are declared only with THREADED. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "zk.h"

/* Something that watches znodes: teams and subscriptions. Watches carry
 * the object's id, never its address, so a watch firing after the object
 * is gone is dropped. The event thread calls handle() for each wake-up. */
struct zk_obj {
	struct zk_obj *next;
	struct zk *zk;
	uint64_t id;
	bool busy;	 /* handle() is running */
	bool gone;	 /* unlinked */
	bool free_later; /* removed by its own handler: free on return */
	bool woken;	 /* the pending run comes from a watch */
	bool retry;	 /* run again on reconnection */
	uint64_t pend;	 /* sequence of its queued event, 0 if none */
	void (*handle)(struct zk_obj *o, bool from_watch);
	void (*expire)(struct zk_obj *o);
	void (*destroy)(struct zk_obj *o);
};

struct zk_ev {
	struct zk_ev *next;
	uint64_t seq;
	uint64_t id; /* 0: session expired */
};

struct zk {
	zhandle_t *zh;
	struct zk_config cfg;
	char *hosts;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool connected;
	bool was_connected;
	bool expired;
	bool closing;
	int64_t down_since_ms; /* when the connection was lost */

	/* Event thread and its queue, under lock. */
	pthread_t thread;
	bool thread_started;
	bool stop;
	struct zk_ev *head, *tail;
	uint64_t ev_seq;  /* last queued */
	uint64_t ev_done; /* last finished */
	struct zk_obj *objs;
	uint64_t next_id;
};

int64_t zk_now_ms(void);
/* Waits for a usable connection before a call: 0, ZK_ENOQUORUM or
 * -ESHUTDOWN. */
int zk_ready(struct zk *zk);
int zk_check_path(const char *path);
int zk_check_len(int len);

void zk_obj_add(struct zk *zk, struct zk_obj *o,
		void (*handle)(struct zk_obj *, bool),
		void (*expire)(struct zk_obj *),
		void (*destroy)(struct zk_obj *));
/* Queues a run of o->handle; with wait, returns once it ran (or o is gone).
 * Never waits on the event thread itself. */
void zk_obj_kick(struct zk_obj *o, bool wait);
/* Unlinks o and calls destroy, now or when its running handle returns. */
void zk_obj_remove(struct zk_obj *o);
/* Watcher for zoo_w*(): ctx is the object's id. */
void zk_obj_watcher(zhandle_t *zh, int type, int state, const char *path,
		    void *ctx);
void *zk_obj_ctx(struct zk_obj *o);

/* zoo_create; on a missing parent, makes the parents and retries. */
int zk_create_node(struct zk *zk, const char *path, const void *data, int len,
		   int mode, char *buf, int buflen);
/* After a handler failed for want of a connection: run it again once
 * connected. */
void zk_obj_retry_later(struct zk_obj *o);

/* zoo_get into a malloc'ed, NUL terminated buffer of the right size. */
int zk_get_raw(struct zk *zk, const char *path, watcher_fn w, void *ctx,
	       char **data, int *len, struct Stat *st);
int zk_children_raw(struct zk *zk, const char *path, watcher_fn w, void *ctx,
		    struct String_vector *sv, struct Stat *st);
/* "m-0000000012" -> 12; -1 if the name is not a sequential child. */
int64_t zk_seq_of(const char *name);
void zk_stat_from(struct zk_stat *out, const struct Stat *st);

#endif
