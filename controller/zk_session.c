// SPDX-License-Identifier: GPL-2.0-only
/* ZooKeeper session: connection state, error mapping and the event thread
 * that runs watch handlers and user callbacks.
 *
 * libzookeeper_mt calls watchers on its completion thread, where a
 * synchronous call would deadlock (its answer is delivered by that very
 * thread). Watchers therefore only queue the watching object's id; our own
 * event thread runs the handlers, which may call synchronously. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloc.h"
#include "log.h"
#include "zk_priv.h"

#define EV_EXPIRE (1ull << 63) /* id flag: run expire() instead */
/* Routine re-resolution of the ZooKeeper server names, at most this often. */
#define ZK_RESOLVE_MS 30000

int64_t zk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Condition variables use CLOCK_MONOTONIC (set in zk_open). */
static void deadline_ts(struct timespec *ts, int64_t deadline_ms)
{
	ts->tv_sec = deadline_ms / 1000;
	ts->tv_nsec = (deadline_ms % 1000) * 1000000;
}

int zk_err(int zrc)
{
	if (zrc == ZOK)
		return 0;
	if (zrc == ZNONODE)
		return -ENOENT;
	if (zrc == ZNODEEXISTS)
		return -EEXIST;
	if (zrc == ZBADVERSION)
		return -ESTALE;
	if (zrc == ZNOTEMPTY)
		return -ENOTEMPTY;
	if (zrc == ZBADARGUMENTS || zrc == ZNOCHILDRENFOREPHEMERALS ||
	    zrc == ZINVALIDACL || zrc == ZINVALIDCALLBACK)
		return -EINVAL;
	if (zrc == ZNOAUTH || zrc == ZAUTHFAILED)
		return -EACCES;
	if (zrc == ZCONNECTIONLOSS || zrc == ZSESSIONMOVED ||
	    zrc == ZTHROTTLEDOP)
		return -EAGAIN;
	if (zrc == ZOPERATIONTIMEOUT)
		return -ETIMEDOUT;
	if (zrc == ZSESSIONEXPIRED || zrc == ZCLOSING || zrc == ZINVALIDSTATE)
		return -ESHUTDOWN;
	if (zrc == ZNOTREADONLY)
		return -ZK_ENOQUORUM;
	if (zrc == ZMARSHALLINGERROR)
		return -EMSGSIZE;
	if (zrc == ZUNIMPLEMENTED)
		return -EOPNOTSUPP;
	return -EIO;
}

bool zk_err_unavailable(int err)
{
	return err == -EAGAIN || err == -ETIMEDOUT || err == -ZK_ENOQUORUM ||
	       err == -ESHUTDOWN;
}

int zk_check_path(const char *path)
{
	size_t len;

	if (!path || path[0] != '/')
		return -EINVAL;
	len = strlen(path);
	if (len >= ZK_PATH_MAX || (len > 1 && path[len - 1] == '/') ||
	    strstr(path, "//"))
		return -EINVAL;
	return 0;
}

int zk_check_len(int len)
{
	if (len < 0)
		return -EINVAL;
	if (len > ZK_RECORD_MAX)
		return -EMSGSIZE;
	return 0;
}

int64_t zk_seq_of(const char *name)
{
	char *end;
	long long v;

	if (strncmp(name, "m-", 2) || !name[2])
		return -1;
	errno = 0;
	v = strtoll(name + 2, &end, 10);
	if (errno || *end || v < 0)
		return -1;
	return v;
}

void zk_stat_from(struct zk_stat *out, const struct Stat *st)
{
	if (!out)
		return;
	out->version = st->version;
	out->mzxid = st->mzxid;
	out->num_children = st->numChildren;
}

/* --- event queue --------------------------------------------------- */

static struct zk_obj *obj_find(struct zk *zk, uint64_t id)
{
	for (struct zk_obj *o = zk->objs; o; o = o->next)
		if (o->id == id)
			return o;
	return NULL;
}

/* Under zk->lock. Returns the event's sequence. */
static uint64_t queue_ev(struct zk *zk, uint64_t id)
{
	struct zk_ev *ev = calloc(1, sizeof(*ev));

	if (!ev) {
		pr_err("zk: out of memory queueing a watch event\n");
		return zk->ev_seq;
	}
	ev->seq = ++zk->ev_seq;
	ev->id = id;
	if (zk->tail)
		zk->tail->next = ev;
	else
		zk->head = ev;
	zk->tail = ev;
	pthread_cond_broadcast(&zk->cond);
	return ev->seq;
}

/* Under zk->lock: one pending run per object is enough, since handlers
 * re-read everything they look at. */
static uint64_t queue_run(struct zk_obj *o)
{
	if (!o->pend)
		o->pend = queue_ev(o->zk, o->id);
	return o->pend;
}

void *zk_obj_ctx(struct zk_obj *o)
{
	return (void *)(uintptr_t)o->id;
}

void zk_obj_watcher(zhandle_t *zh, int type, int state, const char *path,
		    void *ctx)
{
	struct zk *zk = (struct zk *)zoo_get_context(zh);
	struct zk_obj *o;

	(void)state;
	(void)path;
	if (type != ZOO_CREATED_EVENT && type != ZOO_DELETED_EVENT &&
	    type != ZOO_CHANGED_EVENT && type != ZOO_CHILD_EVENT)
		return;
	pthread_mutex_lock(&zk->lock);
	o = obj_find(zk, (uintptr_t)ctx);
	if (o && !o->gone) {
		o->woken = true;
		queue_run(o);
	}
	pthread_mutex_unlock(&zk->lock);
}

void zk_obj_add(struct zk *zk, struct zk_obj *o,
		void (*handle)(struct zk_obj *, bool),
		void (*expire)(struct zk_obj *),
		void (*destroy)(struct zk_obj *))
{
	o->zk = zk;
	o->handle = handle;
	o->expire = expire;
	o->destroy = destroy;
	pthread_mutex_lock(&zk->lock);
	o->id = ++zk->next_id;
	o->next = zk->objs;
	zk->objs = o;
	pthread_mutex_unlock(&zk->lock);
}

static bool on_event_thread(struct zk *zk)
{
	return zk->thread_started && pthread_equal(pthread_self(), zk->thread);
}

void zk_obj_kick(struct zk_obj *o, bool wait)
{
	struct zk *zk = o->zk;
	uint64_t seq;

	pthread_mutex_lock(&zk->lock);
	seq = queue_run(o);
	if (wait && !on_event_thread(zk))
		while (zk->ev_done < seq && !zk->stop)
			pthread_cond_wait(&zk->cond, &zk->lock);
	pthread_mutex_unlock(&zk->lock);
}

void zk_obj_retry_later(struct zk_obj *o)
{
	struct zk *zk = o->zk;

	pthread_mutex_lock(&zk->lock);
	if (zk->connected)
		queue_run(o);
	else
		o->retry = true;
	pthread_mutex_unlock(&zk->lock);
}

void zk_obj_remove(struct zk_obj *o)
{
	struct zk *zk = o->zk;
	struct zk_obj **pp;

	pthread_mutex_lock(&zk->lock);
	for (pp = &zk->objs; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	o->gone = true;
	if (o->busy && on_event_thread(zk)) {
		/* Removed from its own callback: the event thread frees it
		 * when the handler returns. */
		o->free_later = true;
		pthread_mutex_unlock(&zk->lock);
		return;
	}
	while (o->busy)
		pthread_cond_wait(&zk->cond, &zk->lock);
	pthread_mutex_unlock(&zk->lock);
	o->destroy(o);
}

static void run_event(struct zk *zk, struct zk_ev *ev)
{
	bool expire = ev->id & EV_EXPIRE;
	uint64_t id = ev->id & ~EV_EXPIRE;
	struct zk_obj *o;
	bool from_watch;

	if (!id) {
		pthread_mutex_unlock(&zk->lock);
		pr_warn("zk: session 0x%llx expired: membership and watches "
			"are gone\n",
			(unsigned long long)zk_session_id(zk));
		if (zk->cfg.on_expired)
			zk->cfg.on_expired(zk, zk->cfg.arg);
		pthread_mutex_lock(&zk->lock);
		return;
	}
	o = obj_find(zk, id);
	if (!o)
		return;
	if (!expire && o->pend == ev->seq)
		o->pend = 0;
	from_watch = o->woken;
	o->woken = false;
	o->busy = true;
	pthread_mutex_unlock(&zk->lock);
	if (expire)
		o->expire(o);
	else
		o->handle(o, from_watch);
	pthread_mutex_lock(&zk->lock);
	o->busy = false;
	pthread_cond_broadcast(&zk->cond);
	if (o->free_later) {
		pthread_mutex_unlock(&zk->lock);
		o->destroy(o);
		pthread_mutex_lock(&zk->lock);
	}
}

static void *event_thread(void *arg)
{
	struct zk *zk = arg;
	struct zk_ev *ev;

	xvpc_use_c_locale();

	pthread_mutex_lock(&zk->lock);
	for (;;) {
		while (!zk->stop && !zk->head)
			pthread_cond_wait(&zk->cond, &zk->lock);
		if (zk->stop)
			break;
		ev = zk->head;
		zk->head = ev->next;
		if (!zk->head)
			zk->tail = NULL;
		run_event(zk, ev);
		zk->ev_done = ev->seq;
		pthread_cond_broadcast(&zk->cond);
		free(ev);
	}
	pthread_mutex_unlock(&zk->lock);
	return NULL;
}

/* --- session ------------------------------------------------------- */

static void session_watcher(zhandle_t *zh, int type, int state,
			    const char *path, void *ctx)
{
	struct zk *zk = ctx;

	(void)zh;
	(void)path;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&zk->lock);
	if (state == ZOO_CONNECTED_STATE) {
		if (!zk->connected && zk->was_connected)
			pr_info("zk: reconnected to a ZooKeeper server\n");
		zk->connected = true;
		zk->was_connected = true;
		for (struct zk_obj *o = zk->objs; o; o = o->next)
			if (o->retry) {
				o->retry = false;
				queue_run(o);
			}
	} else if (state == ZOO_CONNECTING_STATE ||
		   state == ZOO_ASSOCIATING_STATE ||
		   state == ZOO_NOTCONNECTED_STATE) {
		if (zk->connected) {
			pr_warn("zk: lost the connection to ZooKeeper, "
				"reconnecting\n");
			zk->down_since_ms = zk_now_ms();
		}
		zk->connected = false;
	} else if (state == ZOO_EXPIRED_SESSION_STATE ||
		   state == ZOO_AUTH_FAILED_STATE) {
		zk->connected = false;
		if (!zk->expired) {
			zk->expired = true;
			queue_ev(zk, 0);
			for (struct zk_obj *o = zk->objs; o; o = o->next)
				queue_ev(zk, o->id | EV_EXPIRE);
		}
	}
	pthread_cond_broadcast(&zk->cond);
	pthread_mutex_unlock(&zk->lock);
}

static void log_cb(const char *msg)
{
	pr_debug("zk client: %s\n", msg);
}

int zk_ready(struct zk *zk)
{
	struct timespec ts;
	int64_t deadline;
	int err = 0;

	pthread_mutex_lock(&zk->lock);
	for (;;) {
		if (zk->closing || zk->expired) {
			err = -ESHUTDOWN;
			break;
		}
		if (zk->connected)
			break;
		deadline = zk->down_since_ms + zk->cfg.reconnect_wait_ms;
		if (zk_now_ms() >= deadline) {
			err = -ZK_ENOQUORUM;
			break;
		}
		deadline_ts(&ts, deadline);
		pthread_cond_timedwait(&zk->cond, &zk->lock, &ts);
	}
	pthread_mutex_unlock(&zk->lock);
	return err;
}

int zk_wait_connected(struct zk *zk, int timeout_ms)
{
	int64_t deadline = zk_now_ms() + timeout_ms;
	struct timespec ts;
	int err = 0;

	deadline_ts(&ts, deadline);
	pthread_mutex_lock(&zk->lock);
	while (!zk->connected && !zk->expired && !zk->closing) {
		if (pthread_cond_timedwait(&zk->cond, &zk->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
	if (zk->expired || zk->closing)
		err = -ESHUTDOWN;
	else if (!zk->connected)
		err = -ETIMEDOUT;
	pthread_mutex_unlock(&zk->lock);
	return err;
}

bool zk_connected(struct zk *zk)
{
	bool c;

	pthread_mutex_lock(&zk->lock);
	c = zk->connected;
	pthread_mutex_unlock(&zk->lock);
	return c;
}

bool zk_expired(struct zk *zk)
{
	bool e;

	pthread_mutex_lock(&zk->lock);
	e = zk->expired;
	pthread_mutex_unlock(&zk->lock);
	return e;
}

int64_t zk_session_id(struct zk *zk)
{
	const clientid_t *cid = zk->zh ? zoo_client_id(zk->zh) : NULL;

	return cid ? cid->client_id : 0;
}

int zk_open(const struct zk_config *cfg, struct zk **out)
{
	pthread_condattr_t ca;
	struct zk *zk;
	int err;

	*out = NULL;
	if (!cfg || !cfg->hosts || !*cfg->hosts) {
		pr_err("zk: no ZooKeeper host list given\n");
		return -EINVAL;
	}
	zk = calloc(1, sizeof(*zk));
	if (!zk)
		return -ENOMEM;
	zk->cfg = *cfg;
	zk->hosts = strdup(cfg->hosts);
	if (!zk->hosts) {
		err = -ENOMEM;
		goto err_free;
	}
	zk->cfg.hosts = zk->hosts;
	if (zk->cfg.session_timeout_ms <= 0)
		zk->cfg.session_timeout_ms = 10000;
	if (zk->cfg.connect_timeout_ms <= 0)
		zk->cfg.connect_timeout_ms = 10000;
	if (zk->cfg.reconnect_wait_ms <= 0)
		zk->cfg.reconnect_wait_ms = 2000;
	pthread_mutex_init(&zk->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&zk->cond, &ca);
	pthread_condattr_destroy(&ca);
	zk->down_since_ms = zk_now_ms();

	err = -pthread_create(&zk->thread, NULL, event_thread, zk);
	if (err) {
		pr_err("zk: cannot start the event thread: %s\n",
		       strerror(-err));
		goto err_sync;
	}
	zk->thread_started = true;

	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
	zk->zh = zookeeper_init2(zk->hosts, session_watcher,
				 zk->cfg.session_timeout_ms, NULL, zk, 0,
				 log_cb);
	if (!zk->zh) {
		err = errno ? -errno : -EINVAL;
		pr_err("zk: cannot start a ZooKeeper client for '%s': %s\n",
		       zk->hosts, strerror(-err));
		goto err_thread;
	}
	/* The client resolves its server names on every readiness check
	 * unless told otherwise: a getaddrinfo (with a netlink dump of the
	 * addresses) per request. Once in ZK_RESOLVE_MS still follows DNS;
	 * a lost connection resolves at once in any case. */
	zoo_set_servers_resolution_delay(zk->zh, ZK_RESOLVE_MS);
	err = zk_wait_connected(zk, zk->cfg.connect_timeout_ms);
	if (err) {
		pr_err("zk: no ZooKeeper server of '%s' accepted a session "
		       "within %d ms: %s\n",
		       zk->hosts, zk->cfg.connect_timeout_ms, strerror(-err));
		goto err_zh;
	}
	pr_debug("zk: session 0x%llx on %s\n",
		 (unsigned long long)zk_session_id(zk), zk->hosts);
	*out = zk;
	return 0;

err_zh:
	zookeeper_close(zk->zh);
	zk->zh = NULL;
err_thread:
	pthread_mutex_lock(&zk->lock);
	zk->stop = true;
	pthread_cond_broadcast(&zk->cond);
	pthread_mutex_unlock(&zk->lock);
	pthread_join(zk->thread, NULL);
	while (zk->head) {
		struct zk_ev *ev = zk->head;

		zk->head = ev->next;
		free(ev);
	}
err_sync:
	pthread_cond_destroy(&zk->cond);
	pthread_mutex_destroy(&zk->lock);
err_free:
	free(zk->hosts);
	free(zk);
	return err;
}

void zk_close(struct zk *zk)
{
	struct zk_obj *o;
	struct zk_ev *ev;

	if (!zk)
		return;
	if (on_event_thread(zk)) {
		pr_err("zk: zk_close() called from a callback, ignored\n");
		return;
	}
	pthread_mutex_lock(&zk->lock);
	zk->closing = true;
	zk->stop = true;
	pthread_cond_broadcast(&zk->cond);
	pthread_mutex_unlock(&zk->lock);
	pthread_join(zk->thread, NULL);
	zk->thread_started = false;

	/* Ends the session: the server deletes its ephemeral nodes now. */
	zookeeper_close(zk->zh);
	zk->zh = NULL;

	while ((o = zk->objs)) {
		zk->objs = o->next;
		o->destroy(o);
	}
	while ((ev = zk->head)) {
		zk->head = ev->next;
		free(ev);
	}
	pthread_cond_destroy(&zk->cond);
	pthread_mutex_destroy(&zk->lock);
	free(zk->hosts);
	free(zk);
}

/* --- raw helpers ---------------------------------------------------- */

int zk_get_raw(struct zk *zk, const char *path, watcher_fn w, void *ctx,
	       char **data, int *len, struct Stat *st)
{
	int cap = 4096, blen, rc, err;
	char *buf;

	err = zk_ready(zk);
	if (err)
		return err;
	for (;;) {
		buf = malloc(cap + 1);
		if (!buf)
			return -ENOMEM;
		blen = cap;
		if (w)
			rc = zoo_wget(zk->zh, path, w, ctx, buf, &blen, st);
		else
			rc = zoo_get(zk->zh, path, 0, buf, &blen, st);
		if (rc != ZOK) {
			free(buf);
			return zk_err(rc);
		}
		if (st->dataLength <= cap)
			break;
		/* Grew between the calls or larger than the first guess. */
		cap = st->dataLength;
		free(buf);
	}
	if (blen < 0)
		blen = 0;
	buf[blen] = '\0';
	*data = buf;
	if (len)
		*len = blen;
	return 0;
}

int zk_children_raw(struct zk *zk, const char *path, watcher_fn w, void *ctx,
		    struct String_vector *sv, struct Stat *st)
{
	int rc, err;

	err = zk_ready(zk);
	if (err)
		return err;
	memset(sv, 0, sizeof(*sv));
	if (w)
		rc = zoo_wget_children2(zk->zh, path, w, ctx, sv, st);
	else
		rc = zoo_get_children2(zk->zh, path, 0, sv, st);
	return zk_err(rc);
}
