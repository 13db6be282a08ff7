// SPDX-License-Identifier: GPL-2.0-only
/* Backend health checks: see health.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "netutil.h"

#define TICK_MS	  100 /* longest sleep: bounds how late stop is noticed */
#define REPLY_MAX 32  /* enough of the reply for "HTTP/1.1 200" */

enum probe_phase { IDLE, CONNECTING, READING };

struct target {
	__be32 ip;
	__u16 port;
	struct xvpc_state_hc hc;
	bool up;
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
};

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool same_target(const struct target *t, __be32 ip, __u16 port,
			const struct xvpc_state_hc *hc)
{
	return t->ip == ip && t->port == port &&
	       !memcmp(&t->hc, hc, sizeof(*hc));
}

static struct target *find(struct agent_hc *hc, __be32 ip, __u16 port,
			   const struct xvpc_state_hc *c)
{
	for (size_t i = 0; i < hc->n; i++)
		if (same_target(&hc->t[i], ip, port, c))
			return &hc->t[i];
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
	if (ok) {
		t->fail_run = 0;
		if (++t->ok_run >= t->hc.rise)
			t->up = true;
	} else {
		t->ok_run = 0;
		if (++t->fail_run >= t->hc.fall)
			t->up = false;
		pr_debug("health: %s:%u: probe failed: %s",
			 xvpc_fmt_ip(t->ip, ip), t->port, why);
	}
	if (was == t->up)
		return false;
	pr_info("health: backend %s:%u is %s (%s)", xvpc_fmt_ip(t->ip, ip),
		t->port, t->up ? "up" : "DOWN", t->up ? "probes succeed" : why);
	return true;
}

/* 0, or the errno of a connect that failed at once. */
static int probe_start(struct target *t, __u64 now)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = t->ip,
		.sin_port = htons(t->port),
	};

	t->next_ms = now + t->hc.interval_ms;
	t->deadline_ms = now + t->hc.timeout_ms;
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0)
		return errno;
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
		if (t->hc.type == XVPC_HC_TCP)
			return probe_done(t, true, NULL);
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.0\r\nHost: %s\r\n"
			     "User-Agent: xvpc-agent\r\n\r\n",
			     t->hc.path, xvpc_fmt_ip(t->ip, ip));
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
	if (status != t->hc.expect_status)
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
				probe_start(t, now);
				hc->probes++;
				if (t->phase == IDLE)
					changed |= probe_done(t, false,
							      "no socket");
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

int agent_hc_set(struct agent_hc *hc, const struct xvpc_state *st)
{
	struct target *nt = NULL;
	size_t n = 0, cap = 0;
	__u64 now = now_ms();
	int ret = 0;

	pthread_mutex_lock(&hc->lock);
	for (size_t i = 0; i < hc->n; i++)
		hc->t[i].keep = false;
	for (size_t i = 0; i < st->n_svcs; i++) {
		const struct xvpc_state_svc *s = &st->svcs[i];

		if (s->hc.type == XVPC_HC_NONE)
			continue;
		for (__u32 j = 0; j < s->n_backends; j++) {
			const struct xvpc_state_lb_backend *b = &s->backends[j];
			__u16 port = b->port ? b->port : s->port;
			struct target *old = find(hc, b->ip, port, &s->hc);
			bool dup = false;

			for (size_t k = 0; k < n && !dup; k++)
				dup = same_target(&nt[k], b->ip, port, &s->hc);
			if (dup)
				continue;
			if (n == cap) {
				struct target *p;

				cap = cap ? cap * 2 : 16;
				p = realloc(nt, cap * sizeof(*nt));
				if (!p) {
					ret = -ENOMEM;
					goto out;
				}
				nt = p;
			}
			if (old) {
				nt[n] = *old;
				old->keep = true;
				old->fd = -1; /* moved */
			} else {
				nt[n] = (struct target){
					.ip = b->ip,
					.port = port,
					.hc = s->hc,
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
			struct target *o =
				find(hc, nt[k].ip, nt[k].port, &nt[k].hc);

			if (o && o->fd < 0)
				o->fd = nt[k].fd;
		}
		free(nt);
	}
	pthread_mutex_unlock(&hc->lock);
	return ret;
}

bool agent_hc_up(struct agent_hc *hc, const struct xvpc_state_svc *s,
		 const struct xvpc_state_lb_backend *b)
{
	struct target *t;
	bool up = true;

	if (!hc || s->hc.type == XVPC_HC_NONE)
		return true;
	pthread_mutex_lock(&hc->lock);
	t = find(hc, b->ip, b->port ? b->port : s->port, &s->hc);
	if (t)
		up = t->up;
	pthread_mutex_unlock(&hc->lock);
	return up;
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
