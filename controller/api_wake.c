// SPDX-License-Identifier: GPL-2.0-only
/* Parked state long-polls and the changes that concern them.
 *
 * A long-poll (GET /v1/nodes/{name}/state?since=&wait=) that finds nothing
 * for its node parks here with what it is interested in: its node's name
 * and the VPCs the node gets. One thread per api (the dispatcher, started
 * with the first parked poll) follows the store's change feed and, per
 * window of new revisions, works out what the window touches:
 *
 *   VPCs      of every vpc/, subnet/, port/, lb/ and lbh/ (backend health)
 *             record changed (old
 *             and new value): the polls of nodes that get one of them;
 *   nodes     named by a changed np/<node>/ or gw/<node>/ index record or
 *             a changed port's node (old and new): those nodes' polls,
 *             since the set of VPCs they get may change (a port created
 *             on a node new to its VPC, a port moved between nodes);
 *   everyone  a node/ record created, deleted or given another underlay
 *             address (every state lists the nodes), a public load
 *             balancer's lbp/ record (its VPC goes to every node), a
 *             value that does not parse, or a feed that no longer reaches
 *             back (then every poll looks for itself).
 *
 * and wakes only those polls, found through wake lists (hashed by VPC id
 * and by node name; a parked poll is on the list of each VPC its node
 * gets and on its node's) or, for everyone, the list of all parked polls;
 * the rest sleep on, and learn when they wake that the windows they slept
 * through held nothing for them (they look from there). Nothing else in
 * the feed (tenants, indexes by VPC, ids, idempotency records, the
 * leader's status updates of node records) is in any node's state. A
 * woken poll computes its answer itself (api_state.c), so a spurious wake
 * costs time, never correctness; what must not happen is a missed one: a
 * poll parks only if the dispatcher has not yet gone past the revision the
 * poll has looked at (else it looks again first).
 *
 * A parked poll also wakes every `every` ms to look at its client socket
 * (an agent killed mid-poll: its node must go down) and at its deadline.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cloc.h"
#include "api_priv.h"
#include "log.h"

#define WAKE_IDLE_MS 1000 /* the dispatcher looks at its quit flag */
#define WAKE_SLOTS   4096 /* of the wake lists by VPC and by node */

/* A parked poll on one wake list: of a VPC its node gets, or of its node
 * (key: the VPC id, or the hash of the node's name). */
struct wake_link {
	struct wake_link *next, **pprev;
	struct api_waiter *w;
	uint32_t key;
};

/* A parked poll. Waiters are the waker's (a pool, kept until api_fini,
 * their condition variables initialised once): the dispatcher signals
 * after letting go of the lock, and a signal that comes after its poll
 * left only wakes the next user of the waiter for nothing. */
struct api_waiter {
	struct api_waiter *prev, *next; /* parked polls, or the free pool */
	struct wake_link *links;	/* n_vpcs VPCs, then the node */
	size_t cap_links;
	const char *node;
	uint32_t node_hash;
	const uint32_t *vpcs;
	size_t n_vpcs;
	uint64_t clean; /* no change up to here concerns it */
	pthread_cond_t cond;
	bool woken;
};

struct api_waker {
	struct api *api;
	pthread_t th;
	pthread_mutex_t mu;
	struct api_waiter *head, *pool;
	struct wake_link *by_vpc[WAKE_SLOTS], *by_node[WAKE_SLOTS];
	struct api_waiter **wake; /* the dispatcher's: to signal */
	size_t n_wake, cap_wake;
	uint64_t dispatched; /* windows up to this revision are dispatched */
	bool quit, stopping;
	struct api_wake_stats stats;
};

/* Lazy creation of api->waker. */
static pthread_mutex_t waker_mu = PTHREAD_MUTEX_INITIALIZER;

/* What one window touches. */
struct wake_set {
	uint32_t *vpcs;
	size_t n_vpcs, cap_vpcs;
	char **nodes;
	size_t n_nodes, cap_nodes;
	bool all;
};

/* One change, copied out of the feed (its callback runs under the store's
 * lock: parse after). */
struct wake_chg {
	char *key, *old_val, *new_val;
};

struct wake_feed {
	struct wake_chg *c;
	size_t n, cap;
	int err;
};

static uint32_t name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len && s[i]; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static void link_add(struct wake_link **head, struct wake_link *l)
{
	l->next = *head;
	if (*head)
		(*head)->pprev = &l->next;
	*head = l;
	l->pprev = head;
}

static void link_del(struct wake_link *l)
{
	*l->pprev = l->next;
	if (l->next)
		l->next->pprev = l->pprev;
}

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	size_t c;
	void *q;

	if (n < *cap)
		return p;
	c = *cap ? *cap * 2 : 16;
	q = realloc(p, c * size);
	if (q)
		*cap = c;
	return q;
}

static int set_vpc(struct wake_set *s, uint32_t vpc)
{
	uint32_t *p;

	for (size_t i = 0; i < s->n_vpcs; i++)
		if (s->vpcs[i] == vpc)
			return 0;
	p = grow(s->vpcs, &s->cap_vpcs, s->n_vpcs, sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->vpcs = p;
	s->vpcs[s->n_vpcs++] = vpc;
	return 0;
}

static int set_node(struct wake_set *s, const char *name, size_t len)
{
	char **p;

	for (size_t i = 0; i < s->n_nodes; i++)
		if (!strncmp(s->nodes[i], name, len) && !s->nodes[i][len])
			return 0;
	p = grow(s->nodes, &s->cap_nodes, s->n_nodes, sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->nodes = p;
	s->nodes[s->n_nodes] = strndup(name, len);
	if (!s->nodes[s->n_nodes])
		return -ENOMEM;
	s->n_nodes++;
	return 0;
}

static void set_free(struct wake_set *s)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		free(s->nodes[i]);
	free(s->nodes);
	free(s->vpcs);
	memset(s, 0, sizeof(*s));
}

static int copy_cb(const struct store_change *sc, void *arg)
{
	struct wake_feed *f = arg;
	struct wake_chg *c = grow(f->c, &f->cap, f->n, sizeof(*c));

	if (!c) {
		f->err = -ENOMEM;
		return 1;
	}
	f->c = c;
	c = &f->c[f->n++];
	c->key = strdup(sc->key);
	c->old_val = sc->old_val ? strdup(sc->old_val) : NULL;
	c->new_val = sc->new_val ? strdup(sc->new_val) : NULL;
	if (!c->key || (sc->old_val && !c->old_val) ||
	    (sc->new_val && !c->new_val)) {
		f->err = -ENOMEM;
		return 1;
	}
	return 0;
}

static void wake_feed_free(struct wake_feed *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->c[i].key);
		free(f->c[i].old_val);
		free(f->c[i].new_val);
	}
	free(f->c);
	memset(f, 0, sizeof(*f));
}

/* One value of a vpc/, subnet/, port/ or lb/ record: its VPC (field
 * idf) and, for a port, its node. A value that does not parse: all. */
static int touch_val(struct wake_set *s, const char *val, const char *idf,
		     bool port)
{
	json_object *o;
	const char *node;
	int err;

	if (!val)
		return 0;
	o = json_tokener_parse(val);
	if (!o) {
		s->all = true;
		return 0;
	}
	err = set_vpc(s, api_int(o, idf));
	node = port ? api_str(o, "node") : NULL;
	if (!err && node)
		err = set_node(s, node, strlen(node));
	json_object_put(o);
	return err;
}

/* A node record whose underlay address stays (the leader's status):
 * nobody's state changes. */
static bool same_ip(const struct wake_chg *c)
{
	json_object *o, *n;
	bool same;

	if (!c->old_val || !c->new_val)
		return false;
	o = json_tokener_parse(c->old_val);
	n = json_tokener_parse(c->new_val);
	same = o && n && api_str(o, "ip") && api_str(n, "ip") &&
	       !strcmp(api_str(o, "ip"), api_str(n, "ip"));
	json_object_put(o);
	json_object_put(n);
	return same;
}

static int touch(struct wake_set *s, const struct wake_chg *c)
{
	const char *k = c->key, *name, *slash;
	const char *idf = has_prefix(k, "vpc/") ? "id" : "vpc";

	if (has_prefix(k, "node/")) {
		s->all = s->all || !same_ip(c);
	} else if (has_prefix(k, API_LB_PUBLIC_PREFIX)) {
		s->all = true;
	} else if (has_prefix(k, "np/") || has_prefix(k, "gw/")) {
		name = k + 3;
		slash = strchr(name, '/');
		return set_node(s, name,
				slash ? (size_t)(slash - name) : strlen(name));
	} else if (has_prefix(k, "vpc/") || has_prefix(k, "subnet/") ||
		   has_prefix(k, "port/") || has_prefix(k, "lb/") ||
		   has_prefix(k, "lbh/")) {
		bool port = has_prefix(k, "port/");

		return touch_val(s, c->old_val, idf, port)
			       ?: touch_val(s, c->new_val, idf, port);
	}
	return 0;
}

/* Under wk->mu: marks it woken, to be signalled (signal_woken). The
 * windows before from held nothing for it. Without memory to note it,
 * it is signalled now. */
static void wake_one(struct api_waker *wk, struct api_waiter *w, uint64_t from)
{
	struct api_waiter **p;

	if (w->woken)
		return;
	if (from > w->clean)
		w->clean = from;
	w->woken = true;
	wk->stats.woken++;
	p = grow(wk->wake, &wk->cap_wake, wk->n_wake, sizeof(*p));
	if (!p) {
		pthread_cond_signal(&w->cond);
		return;
	}
	wk->wake = p;
	wk->wake[wk->n_wake++] = w;
}

/* After wk->mu is let go: the woken polls do not queue behind it. */
static void signal_woken(struct api_waker *wk)
{
	for (size_t i = 0; i < wk->n_wake; i++)
		pthread_cond_signal(&wk->wake[i]->cond);
	wk->n_wake = 0;
}

/* Wakes the polls that s concerns, through the wake lists of its VPCs and
 * nodes; the window (from, upto] is done. */
static void dispatch(struct api_waker *wk, const struct wake_set *s,
		     uint64_t from, uint64_t upto)
{
	struct wake_link *l;

	pthread_mutex_lock(&wk->mu);
	for (struct api_waiter *w = wk->head; s->all && w; w = w->next)
		wake_one(wk, w, from);
	for (size_t i = 0; !s->all && i < s->n_vpcs; i++)
		for (l = wk->by_vpc[s->vpcs[i] % WAKE_SLOTS]; l; l = l->next)
			if (l->key == s->vpcs[i])
				wake_one(wk, l->w, from);
	for (size_t i = 0; !s->all && i < s->n_nodes; i++) {
		uint32_t h = name_hash(s->nodes[i], strlen(s->nodes[i]));

		for (l = wk->by_node[h % WAKE_SLOTS]; l; l = l->next)
			if (l->key == h && !strcmp(l->w->node, s->nodes[i]))
				wake_one(wk, l->w, from);
	}
	if (upto > wk->dispatched)
		wk->dispatched = upto;
	wk->stats.dispatched = wk->dispatched;
	wk->stats.windows++;
	pthread_mutex_unlock(&wk->mu);
	signal_woken(wk);
}

/* The window (from, ...]: what it touches in *s, its end in *upto. */
static void window(struct api *api, uint64_t from, uint64_t rev,
		   struct wake_set *s, uint64_t *upto)
{
	struct wake_feed f = {0};
	int err;

	err = store_changes(api->store, from, copy_cb, &f, upto);
	if (err || f.err) {
		/* -ERANGE (the feed moved on), no memory: everyone looks. */
		s->all = true;
		*upto = rev;
	}
	for (size_t i = 0; !s->all && i < f.n; i++)
		if (touch(s, &f.c[i]))
			s->all = true;
	wake_feed_free(&f);
}

static void stop_all(struct api_waker *wk)
{
	pthread_mutex_lock(&wk->mu);
	wk->stopping = true;
	for (struct api_waiter *w = wk->head; w; w = w->next)
		wake_one(wk, w, 0);
	pthread_mutex_unlock(&wk->mu);
	signal_woken(wk);
}

static void *waker_main(void *arg)
{
	struct api_waker *wk = arg;
	struct api *api = wk->api;
	uint64_t from = wk->dispatched;

	xvpc_use_c_locale();

	for (;;) {
		struct wake_set s = {0};
		uint64_t rev, upto = 0;
		bool quit;

		rev = store_wait(api->store, from, WAKE_IDLE_MS);
		pthread_mutex_lock(&wk->mu);
		quit = wk->quit;
		pthread_mutex_unlock(&wk->mu);
		if (api->stopping || quit)
			stop_all(wk);
		if (quit)
			break;
		if (rev <= from)
			continue;
		window(api, from, rev, &s, &upto);
		dispatch(wk, &s, from, upto);
		set_free(&s);
		from = upto;
	}
	return NULL;
}

/* api->waker, started if need be; NULL when it cannot be. */
static struct api_waker *waker_get(struct api *api)
{
	struct api_waker *wk;
	int err;

	pthread_mutex_lock(&waker_mu);
	wk = api->waker;
	if (wk)
		goto out;
	wk = calloc(1, sizeof(*wk));
	if (!wk)
		goto out;
	wk->api = api;
	wk->dispatched = store_revision(api->store);
	wk->stats.dispatched = wk->dispatched;
	pthread_mutex_init(&wk->mu, NULL);
	err = pthread_create(&wk->th, NULL, waker_main, wk);
	if (err) {
		pr_warn("api: cannot start the long-poll dispatcher: %s "
			"(every change wakes every parked poll)",
			strerror(err));
		pthread_mutex_destroy(&wk->mu);
		free(wk);
		wk = NULL;
		goto out;
	}
	api->waker = wk;
out:
	pthread_mutex_unlock(&waker_mu);
	return wk;
}

void api_wake_fini(struct api *api)
{
	struct api_waker *wk = api->waker;

	if (!wk)
		return;
	pthread_mutex_lock(&wk->mu);
	wk->quit = true;
	pthread_mutex_unlock(&wk->mu);
	store_wake_all(api->store);
	pthread_join(wk->th, NULL);
	while (wk->pool) {
		struct api_waiter *w = wk->pool;

		wk->pool = w->next;
		pthread_cond_destroy(&w->cond);
		free(w->links);
		free(w);
	}
	pthread_mutex_destroy(&wk->mu);
	free(wk->wake);
	free(wk);
	api->waker = NULL;
}

void api_wake_stats(struct api *api, struct api_wake_stats *st)
{
	struct api_waker *wk;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&waker_mu);
	wk = api->waker;
	if (wk) {
		pthread_mutex_lock(&wk->mu);
		*st = wk->stats;
		pthread_mutex_unlock(&wk->mu);
	}
	pthread_mutex_unlock(&waker_mu);
}

bool api_client_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
	char b;

	if (fd <= 0 || poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
		return true;
	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void abs_time(struct timespec *ts, long long ms)
{
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (ms % 1000) * 1000000;
}

/* Without a dispatcher: sleep until the revision moves past since. */
static int park_plain(struct api *api, uint64_t since, long long deadline,
		      int every)
{
	long long left = deadline - mono_ms();

	store_wait(api->store, since, (int)(left < every ? left : every));
	return 0;
}

/* Under wk->mu: a waiter from the pool (or a new one) with room for n
 * links; NULL without memory. */
static struct api_waiter *waiter_get(struct api_waker *wk, size_t n)
{
	struct api_waiter *w = wk->pool;
	pthread_condattr_t ca;

	if (w) {
		wk->pool = w->next;
	} else {
		w = calloc(1, sizeof(*w));
		if (!w)
			return NULL;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&w->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (w->cap_links < n) {
		struct wake_link *l = realloc(w->links, n * sizeof(*l));

		if (!l) {
			w->next = wk->pool;
			wk->pool = w;
			return NULL;
		}
		w->links = l;
		w->cap_links = n;
	}
	return w;
}

/* Under wk->mu: on the list of all and on its wake lists. */
static void waiter_link(struct api_waker *wk, struct api_waiter *w,
			const struct api_park *p)
{
	size_t n = p->n_vpcs + 1;

	w->prev = NULL;
	w->next = wk->head;
	if (wk->head)
		wk->head->prev = w;
	wk->head = w;
	for (size_t i = 0; i < n; i++) {
		bool node = i == p->n_vpcs;
		struct wake_link **list = node ? wk->by_node : wk->by_vpc;

		w->links[i].w = w;
		w->links[i].key = node ? w->node_hash : p->vpcs[i];
		link_add(&list[w->links[i].key % WAKE_SLOTS], &w->links[i]);
	}
	wk->stats.parked++;
}

/* Under wk->mu: off every list, back to the pool. */
static void waiter_put(struct api_waker *wk, struct api_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		wk->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	for (size_t i = 0; i < w->n_vpcs + 1; i++)
		link_del(&w->links[i]);
	wk->stats.parked--;
	w->next = wk->pool;
	wk->pool = w;
}

/* Under wk->mu: sleeps until woken, the deadline, the server stopping or
 * the client gone (-EPIPE). */
static int waiter_sleep(struct api *api, struct api_waker *wk,
			struct api_waiter *w, const struct api_park *p)
{
	int ret = 0;

	for (;;) {
		long long now = mono_ms(), until;
		struct timespec ts;

		if (w->woken || api->stopping || now >= p->deadline_ms)
			return 0;
		until = now + p->every_ms;
		if (until > p->deadline_ms)
			until = p->deadline_ms;
		abs_time(&ts, until);
		if (pthread_cond_timedwait(&w->cond, &wk->mu, &ts) != ETIMEDOUT)
			continue;
		if (w->woken)
			return 0;
		pthread_mutex_unlock(&wk->mu);
		if (api_client_gone(p->client_fd))
			ret = -EPIPE;
		pthread_mutex_lock(&wk->mu);
		if (ret)
			return ret;
	}
}

int api_park(struct api *api, struct api_park *p)
{
	struct api_waker *wk = waker_get(api);
	struct api_waiter *w;
	int ret = 0;

	p->clean = p->since;
	if (!wk)
		return park_plain(api, p->since, p->deadline_ms, p->every_ms);
	pthread_mutex_lock(&wk->mu);
	/* Windows after since already dispatched without this poll: it
	 * looks at them first. */
	if (wk->dispatched > p->since || wk->stopping) {
		pthread_mutex_unlock(&wk->mu);
		return 0;
	}
	w = waiter_get(wk, p->n_vpcs + 1);
	if (!w) {
		pthread_mutex_unlock(&wk->mu);
		return park_plain(api, p->since, p->deadline_ms, p->every_ms);
	}
	w->node = p->node;
	w->node_hash = name_hash(p->node, strlen(p->node));
	w->vpcs = p->vpcs;
	w->n_vpcs = p->n_vpcs;
	w->clean = p->since;
	w->woken = false;
	waiter_link(wk, w, p);
	ret = waiter_sleep(api, wk, w, p);
	/* Not woken: every window dispatched meanwhile held nothing for
	 * it. */
	if (!w->woken && wk->dispatched > w->clean)
		w->clean = wk->dispatched;
	p->clean = w->clean;
	waiter_put(wk, w);
	pthread_mutex_unlock(&wk->mu);
	return ret;
}
