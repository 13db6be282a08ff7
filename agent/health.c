// SPDX-License-Identifier: GPL-2.0-only
/* Backend health checks: see health.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "health.h"
#include "log.h"
#include "netlink.h"
#include "netutil.h"

#define TICK_MS	   100 /* longest sleep: bounds how late stop is noticed */
#define REPLY_MAX  32  /* enough of the reply for "HTTP/1.1 200" */
#define BIND_TRIES 8   /* source ports tried per probe */

enum probe_phase { IDLE, CONNECTING, READING };

/* What makes a target: the same backend in two services with the same
 * check is probed once. */
struct target_id {
	enum agent_hc_where where; /* PLAIN or LOCAL */
	__u32 vpc;
	__be32 ip;
	__u16 port;
	struct xvpc_state_hc hc;
	/* LOCAL: the endpoint's interface and MAC */
	char ifname[IF_NAMESIZE];
	__u8 mac[6];
};

struct target {
	struct target_id id;
	int prepared; /* LOCAL: ifindex prepared for probes, 0: none */
	int prep_err; /* LOCAL: last preparation error, 0: none */
	bool up, checked;
	__u32 ok_run, fail_run;
	enum probe_phase phase;
	int fd;
	__u64 next_ms, deadline_ms;
	char reply[REPLY_MAX + 1];
	size_t reply_len;
	bool keep; /* mark for agent_hc_set */
};

struct agent_hc {
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	struct target *t;
	size_t n, cap;
	unsigned long probes;
	agent_hc_changed_fn changed;
	void *ctx;
	struct agent_hc_probe probe;
	__u16 next_port; /* offset in the probe port range */
	bool warned_no_probe;
};

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool same_id(const struct target_id *a, const struct target_id *b)
{
	return a->where == b->where && a->vpc == b->vpc && a->ip == b->ip &&
	       a->port == b->port && !memcmp(&a->hc, &b->hc, sizeof(a->hc)) &&
	       !strcmp(a->ifname, b->ifname) && !memcmp(a->mac, b->mac, 6);
}

static struct target *find(struct agent_hc *hc, const struct target_id *id)
{
	for (size_t i = 0; i < hc->n; i++)
		if (same_id(&hc->t[i].id, id))
			return &hc->t[i];
	return NULL;
}

/* The target of backend b of s, whatever its kind. */
static struct target *find_backend(struct agent_hc *hc,
				   const struct xvpc_state_svc *s,
				   const struct xvpc_state_lb_backend *b)
{
	__u16 port = b->port ? b->port : s->port;

	for (size_t i = 0; i < hc->n; i++) {
		const struct target_id *id = &hc->t[i].id;

		if (id->vpc == s->vpc && id->ip == b->ip && id->port == port &&
		    !memcmp(&id->hc, &s->hc, sizeof(id->hc)))
			return &hc->t[i];
	}
	return NULL;
}

static void probe_close(struct target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->phase = IDLE;
	t->reply_len = 0;
}

/* Returns true when the backend's up/down state changed. */
static bool probe_done(struct target *t, bool ok, const char *why)
{
	char ip[XVPC_IP_STRLEN];
	bool was = t->up;

	probe_close(t);
	t->checked = true;
	if (ok) {
		t->fail_run = 0;
		if (++t->ok_run >= t->id.hc.rise)
			t->up = true;
	} else {
		t->ok_run = 0;
		if (++t->fail_run >= t->id.hc.fall)
			t->up = false;
		pr_debug("health: %s:%u: probe failed: %s",
			 xvpc_fmt_ip(t->id.ip, ip), t->id.port, why);
	}
	if (was == t->up)
		return false;
	pr_info("health: backend %s:%u%s%s is %s (%s)",
		xvpc_fmt_ip(t->id.ip, ip), t->id.port,
		t->id.where == AGENT_HC_LOCAL ? " on " : "", t->id.ifname,
		t->up ? "up" : "DOWN", t->up ? "probes succeed" : why);
	return true;
}

int agent_hc_prepare_iface(void *ctx, int ifindex, const char *ifname,
			   __be32 ip, const __u8 mac[6])
{
	int err;

	(void)ctx;
	err = agent_nl_neigh_perm(ifindex, ip, mac);
	if (err)
		return err;
	return agent_set_rp_filter(ifname, 0);
}

/* A local target's socket: on the VM's interface, from the probe address
 * and a port of the probe range (the datapath passes the VM's answer only
 * to those), closed with a reset (no TIME_WAIT holds the port). 0 or an
 * errno. */
static int probe_bind_local(struct agent_hc *hc, struct target *t)
{
	const struct agent_hc_probe *p = &hc->probe;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = p->probe_ip,
	};
	__u32 span = p->port_max - p->port_min + 1;
	int one = 1, ifindex, err;

	ifindex = if_nametoindex(t->id.ifname);
	if (!ifindex)
		return ENODEV;
	if (ifindex != t->prepared) {
		agent_hc_prepare_fn prep =
			p->prepare ? p->prepare : agent_hc_prepare_iface;

		err = prep(p->prepare_ctx, ifindex, t->id.ifname, t->id.ip,
			   t->id.mac);
		if (err) {
			if (err != t->prep_err) /* once, not every probe */
				pr_warn("health: cannot prepare %s for probes: "
					"%s",
					t->id.ifname, strerror(-err));
			t->prep_err = err;
			return -err;
		}
		t->prepared = ifindex;
		t->prep_err = 0;
	}
	if (setsockopt(t->fd, SOL_SOCKET, SO_BINDTODEVICE, t->id.ifname,
		       strlen(t->id.ifname) + 1) ||
	    setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		return errno;
	for (int i = 0; i < BIND_TRIES; i++) {
		sa.sin_port = htons(p->port_min + hc->next_port++ % span);
		hc->next_port %= span;
		if (!bind(t->fd, (struct sockaddr *)&sa, sizeof(sa)))
			return 0;
		if (errno != EADDRINUSE)
			return errno;
	}
	return EADDRINUSE;
}

/* 0, or the errno of a probe that failed before or at its connect. */
static int probe_start(struct agent_hc *hc, struct target *t, __u64 now)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = t->id.ip,
		.sin_port = htons(t->id.port),
	};
	int err;

	t->next_ms = now + t->id.hc.interval_ms;
	t->deadline_ms = now + t->id.hc.timeout_ms;
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0)
		return errno;
	if (t->id.where == AGENT_HC_LOCAL) {
		err = probe_bind_local(hc, t);
		if (err)
			return err; /* phase IDLE: the caller fails the probe */
	}
	t->phase = CONNECTING;
	if (connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    errno != EINPROGRESS)
		return errno;
	return 0;
}

/* One poll event of a probe; true when the up/down state changed. */
static bool probe_event(struct target *t, short revents)
{
	char req[XVPC_STATE_HC_PATH_MAX + 64], ip[XVPC_IP_STRLEN];
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	unsigned status;
	ssize_t n;

	if (t->phase == CONNECTING) {
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) ||
		    soerr)
			return probe_done(t, false,
					  strerror(soerr ? soerr : errno));
		if (!(revents & POLLOUT))
			return false;
		if (t->id.hc.type == XVPC_HC_TCP)
			return probe_done(t, true, NULL);
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.0\r\nHost: %s\r\n"
			     "User-Agent: xvpc-agent\r\n\r\n",
			     t->id.hc.path, xvpc_fmt_ip(t->id.ip, ip));
		if (send(t->fd, req, n, MSG_NOSIGNAL) != n)
			return probe_done(t, false, "sending the request");
		t->phase = READING;
		return false;
	}
	n = recv(t->fd, t->reply + t->reply_len, REPLY_MAX - t->reply_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n < 0) {
		getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		return probe_done(t, false, strerror(soerr ? soerr : errno));
	}
	t->reply_len += n;
	t->reply[t->reply_len] = '\0';
	if (n > 0 && t->reply_len < 12 && !strchr(t->reply, '\n'))
		return false;
	if (sscanf(t->reply, "HTTP/1.%*1[01] %3u", &status) != 1)
		return probe_done(t, false, "not an HTTP reply");
	if (status != t->id.hc.expect_status)
		return probe_done(t, false, "unexpected HTTP status");
	return probe_done(t, true, NULL);
}

static void *hc_thread(void *arg)
{
	struct agent_hc *hc = arg;
	struct pollfd *pfd = NULL;
	size_t *idx = NULL, cap = 0;

	pthread_mutex_lock(&hc->lock);
	while (!hc->stop) {
		__u64 now = now_ms(), wake = now + TICK_MS;
		bool changed = false;
		size_t np = 0;
		int n;

		if (cap < hc->n) {
			free(pfd);
			free(idx);
			cap = hc->n;
			pfd = calloc(cap, sizeof(*pfd));
			idx = calloc(cap, sizeof(*idx));
			if (!pfd || !idx) {
				cap = 0;
				pthread_mutex_unlock(&hc->lock);
				usleep(TICK_MS * 1000);
				pthread_mutex_lock(&hc->lock);
				continue;
			}
		}
		for (size_t i = 0; i < hc->n; i++) {
			struct target *t = &hc->t[i];

			if (t->phase != IDLE && now >= t->deadline_ms)
				changed |= probe_done(t, false, "timeout");
			if (t->phase == IDLE && now >= t->next_ms) {
				int err = probe_start(hc, t, now);

				hc->probes++;
				if (t->phase == IDLE)
					changed |= probe_done(
						t, false,
						strerror(err ? err : EIO));
			}
			if (t->phase != IDLE) {
				pfd[np] = (struct pollfd){
					.fd = t->fd,
					.events = t->phase == CONNECTING
							  ? POLLOUT
							  : POLLIN,
				};
				idx[np++] = i;
				if (t->deadline_ms < wake)
					wake = t->deadline_ms;
			} else if (t->next_ms < wake) {
				wake = t->next_ms;
			}
		}
		pthread_mutex_unlock(&hc->lock);
		if (changed && hc->changed)
			hc->changed(hc->ctx);
		changed = false;
		n = poll(pfd, np, wake > now ? (int)(wake - now) : 0);
		pthread_mutex_lock(&hc->lock);
		/* agent_hc_set may have replaced the targets meanwhile: only
		 * trust an entry whose fd is still the one polled. */
		for (size_t k = 0; n > 0 && k < np; k++) {
			struct target *t;

			if (!pfd[k].revents || idx[k] >= hc->n)
				continue;
			t = &hc->t[idx[k]];
			if (t->fd != pfd[k].fd || t->phase == IDLE)
				continue;
			changed |= probe_event(t, pfd[k].revents);
		}
		if (changed && hc->changed) {
			pthread_mutex_unlock(&hc->lock);
			hc->changed(hc->ctx);
			pthread_mutex_lock(&hc->lock);
		}
	}
	pthread_mutex_unlock(&hc->lock);
	free(pfd);
	free(idx);
	return NULL;
}

int agent_hc_start(agent_hc_changed_fn changed, void *ctx,
		   struct agent_hc **out)
{
	struct agent_hc *hc = calloc(1, sizeof(*hc));
	int err;

	if (!hc)
		return -ENOMEM;
	hc->changed = changed;
	hc->ctx = ctx;
	pthread_mutex_init(&hc->lock, NULL);
	err = pthread_create(&hc->thread, NULL, hc_thread, hc);
	if (err) {
		pr_err("cannot start the health checker: %s", strerror(err));
		pthread_mutex_destroy(&hc->lock);
		free(hc);
		return -err;
	}
	*out = hc;
	return 0;
}

void agent_hc_stop(struct agent_hc *hc)
{
	if (!hc)
		return;
	pthread_mutex_lock(&hc->lock);
	hc->stop = true;
	pthread_mutex_unlock(&hc->lock);
	pthread_join(hc->thread, NULL);
	for (size_t i = 0; i < hc->n; i++)
		probe_close(&hc->t[i]);
	free(hc->t);
	pthread_mutex_destroy(&hc->lock);
	free(hc);
}

void agent_hc_set_probe(struct agent_hc *hc, const struct agent_hc_probe *p)
{
	pthread_mutex_lock(&hc->lock);
	hc->probe = *p;
	if (hc->probe.port_min > hc->probe.port_max)
		hc->probe.probe_ip = 0;
	hc->next_port = 0;
	pthread_mutex_unlock(&hc->lock);
}

/* The endpoint of vpc with address ip on node_ip, or NULL. */
static const struct xvpc_state_ep *local_ep(const struct xvpc_state_ep **eps,
					    size_t n, __u32 vpc, __be32 ip)
{
	for (size_t i = 0; i < n; i++)
		if (eps[i]->vpc == vpc && eps[i]->ip == ip)
			return eps[i];
	return NULL;
}

static enum agent_hc_where
classify_in(const struct xvpc_state *st, const struct xvpc_state_ep **loc,
	    size_t n_loc, const struct xvpc_state_svc *s, __be32 ip,
	    const struct xvpc_state_ep **ep)
{
	const struct xvpc_state_ep *e = local_ep(loc, n_loc, s->vpc, ip);

	if (ep)
		*ep = e;
	if (e)
		return AGENT_HC_LOCAL;
	return xvpc_state_find_subnet(st, s->vpc, ip) ? AGENT_HC_REMOTE
						      : AGENT_HC_PLAIN;
}

/* The state's endpoints on node_ip (pointers into st), malloc'd. */
static int local_eps(const struct xvpc_state *st, __be32 node_ip,
		     const struct xvpc_state_ep ***out, size_t *n)
{
	const struct xvpc_state_ep **v = NULL;

	*n = 0;
	for (size_t i = 0; node_ip && i < st->n_eps; i++) {
		if (st->eps[i].node_ip != node_ip)
			continue;
		if (!v) {
			v = calloc(st->n_eps - i, sizeof(*v));
			if (!v)
				return -ENOMEM;
		}
		v[(*n)++] = &st->eps[i];
	}
	*out = v;
	return 0;
}

enum agent_hc_where agent_hc_classify(const struct xvpc_state *st,
				      __be32 node_ip,
				      const struct xvpc_state_svc *s, __be32 ip,
				      const struct xvpc_state_ep **ep)
{
	const struct xvpc_state_ep *e = NULL;

	for (size_t i = 0; node_ip && i < st->n_eps && !e; i++)
		if (st->eps[i].node_ip == node_ip && st->eps[i].vpc == s->vpc &&
		    st->eps[i].ip == ip)
			e = &st->eps[i];
	return classify_in(st, &e, e ? 1 : 0, s, ip, ep);
}

/* The target identity of backend b of s; false when this node does not
 * probe it. */
static bool target_of(struct agent_hc *hc, const struct xvpc_state *st,
		      const struct xvpc_state_ep **loc, size_t n_loc,
		      const struct xvpc_state_svc *s,
		      const struct xvpc_state_lb_backend *b,
		      struct target_id *id)
{
	const struct xvpc_state_ep *ep;
	char ip[XVPC_IP_STRLEN];

	memset(id, 0, sizeof(*id));
	id->where = classify_in(st, loc, n_loc, s, b->ip, &ep);
	if (id->where == AGENT_HC_REMOTE)
		return false;
	if (id->where == AGENT_HC_LOCAL && !hc->probe.probe_ip) {
		if (!hc->warned_no_probe)
			pr_warn("health: backend %s is a VM on this node, and "
				"the probe address is off: it is not probed",
				xvpc_fmt_ip(b->ip, ip));
		hc->warned_no_probe = true;
		return false;
	}
	if (id->where == AGENT_HC_LOCAL && !ep->ifname[0]) {
		pr_warn("health: backend %s is a VM on this node without an "
			"interface name in the state: it is not probed",
			xvpc_fmt_ip(b->ip, ip));
		return false;
	}
	id->vpc = s->vpc;
	id->ip = b->ip;
	id->port = b->port ? b->port : s->port;
	id->hc = s->hc;
	if (id->where == AGENT_HC_LOCAL) {
		snprintf(id->ifname, sizeof(id->ifname), "%s", ep->ifname);
		memcpy(id->mac, ep->mac, 6);
	}
	return true;
}

static int grow(struct target **nt, size_t n, size_t *cap)
{
	struct target *p;

	if (n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 16;
	p = realloc(*nt, *cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*nt = p;
	return 0;
}

int agent_hc_set(struct agent_hc *hc, const struct xvpc_state *st)
{
	const struct xvpc_state_ep **loc = NULL;
	struct target *nt = NULL;
	size_t n = 0, cap = 0, n_loc = 0;
	__u64 now = now_ms();
	int ret;

	pthread_mutex_lock(&hc->lock);
	ret = local_eps(st, hc->probe.node_ip, &loc, &n_loc);
	if (ret)
		goto out;
	for (size_t i = 0; i < hc->n; i++)
		hc->t[i].keep = false;
	for (size_t i = 0; i < st->n_svcs; i++) {
		const struct xvpc_state_svc *s = &st->svcs[i];

		if (s->hc.type == XVPC_HC_NONE)
			continue;
		for (__u32 j = 0; j < s->n_backends; j++) {
			struct target_id id;
			struct target *old;
			bool dup = false;

			if (!target_of(hc, st, loc, n_loc, s, &s->backends[j],
				       &id))
				continue;
			for (size_t k = 0; k < n && !dup; k++)
				dup = same_id(&nt[k].id, &id);
			if (dup)
				continue;
			ret = grow(&nt, n, &cap);
			if (ret)
				goto out;
			old = find(hc, &id);
			if (old) {
				nt[n] = *old;
				old->keep = true;
				old->fd = -1; /* moved */
			} else {
				nt[n] = (struct target){
					.id = id,
					.up = true,
					.fd = -1,
					/* spread first probes over a tick */
					.next_ms = now + n % TICK_MS,
				};
			}
			n++;
		}
	}
	for (size_t i = 0; i < hc->n; i++)
		if (!hc->t[i].keep)
			probe_close(&hc->t[i]);
	free(hc->t);
	hc->t = nt;
	hc->n = n;
	hc->cap = cap;
	nt = NULL;
out:
	if (nt) {
		/* Undo the moves: the old array still owns its fds. */
		for (size_t k = 0; k < n; k++) {
			struct target *o = find(hc, &nt[k].id);

			if (o && o->fd < 0)
				o->fd = nt[k].fd;
		}
		free(nt);
	}
	pthread_mutex_unlock(&hc->lock);
	free(loc);
	return ret;
}

bool agent_hc_up(struct agent_hc *hc, const struct xvpc_state_svc *s,
		 const struct xvpc_state_lb_backend *b)
{
	struct target *t;
	bool up = !b->down;

	if (!hc || s->hc.type == XVPC_HC_NONE)
		return up;
	pthread_mutex_lock(&hc->lock);
	t = find_backend(hc, s, b);
	if (t)
		up = t->up;
	pthread_mutex_unlock(&hc->lock);
	return up;
}

int agent_hc_local_health(struct agent_hc *hc, const struct xvpc_state *st,
			  struct agent_hc_health **out, size_t *n)
{
	struct agent_hc_health *v = NULL;
	size_t cap = 0;
	int ret = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&hc->lock);
	for (size_t i = 0; i < st->n_svcs; i++) {
		const struct xvpc_state_svc *s = &st->svcs[i];

		for (__u32 j = 0; j < s->n_backends; j++) {
			const struct xvpc_state_lb_backend *b = &s->backends[j];
			struct target *t = find_backend(hc, s, b);

			if (!t || t->id.where != AGENT_HC_LOCAL)
				continue;
			if (*n == cap) {
				struct agent_hc_health *p;

				cap = cap ? cap * 2 : 16;
				p = realloc(v, cap * sizeof(*p));
				if (!p) {
					ret = -ENOMEM;
					goto out;
				}
				v = p;
			}
			v[(*n)++] = (struct agent_hc_health){
				.svc_id = s->id,
				.vpc = s->vpc,
				.vip = s->vip,
				.svc_port = s->port,
				.proto = s->proto,
				.up = t->up,
				.checked = t->checked,
				.ip = b->ip,
				.port = t->id.port,
			};
		}
	}
out:
	pthread_mutex_unlock(&hc->lock);
	if (ret) {
		free(v);
		v = NULL;
		*n = 0;
	}
	*out = v;
	return ret;
}

void agent_hc_counts(struct agent_hc *hc, unsigned long *targets,
		     unsigned long *down, unsigned long *probes)
{
	pthread_mutex_lock(&hc->lock);
	*targets = hc->n;
	*down = 0;
	for (size_t i = 0; i < hc->n; i++)
		*down += !hc->t[i].up;
	*probes = hc->probes;
	pthread_mutex_unlock(&hc->lock);
}
