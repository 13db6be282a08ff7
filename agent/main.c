// SPDX-License-Identifier: GPL-2.0-only
/*
 * xvpc-agent: the node agent. Opens (or adopts) the pinned datapath,
 * reconciles its maps to the desired state, drains learning events, follows
 * interfaces through netlink and serves metrics. docs/agent.md.
 */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "netlink.h"
#include "netutil.h"
#include "health_report.h"
#include "resolve_http.h"
#include "source.h"
#include "source_ctrl.h"

#define EXIT_CONFIG 2

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread starts, so that they all inherit the mask. */
	return pthread_sigmask(SIG_BLOCK, set, NULL) ? -errno : 0;
}

static int resolve_node_ip(const struct agent_config *cfg, __be32 *ip)
{
	char buf[XVPC_IP_STRLEN];
	int err;

	if (xvpc_ifindex(cfg->underlay) < 0) {
		pr_err("underlay interface %s does not exist", cfg->underlay);
		return -ENODEV;
	}
	if (cfg->node_ip) {
		*ip = cfg->node_ip;
		return 0;
	}
	err = xvpc_if_ipv4(cfg->underlay, ip);
	if (err) {
		pr_err("underlay %s has no IPv4 address (%s): give --node-ip",
		       cfg->underlay, strerror(-err));
		return err;
	}
	pr_info("node address %s (first IPv4 of %s)", xvpc_fmt_ip(*ip, buf),
		cfg->underlay);
	return 0;
}

/* Fetch from the source and apply a new state if there is one. */
static int refresh(struct agent *a, struct agent_source *src, bool force)
{
	struct xvpc_state *st = NULL;
	int ret = src->ops->fetch(src, force, &st);
	struct xvpc_ep_key *gone = NULL;
	size_t n;

	if (ret > 0)
		ret = agent_apply(a, st);
	if (src->ops->take_gone) {
		n = src->ops->take_gone(src, &gone);
		if (n)
			agent_learn_forget(a, gone, n);
		free(gone);
	}
	return ret;
}

static int run_loop(struct agent *a, struct agent_source *src, int sigfd)
{
	int nlfd, err = 0;
	__u64 next_resync;
	bool stop = false;

	nlfd = agent_nl_open();
	if (nlfd < 0)
		pr_warn("cannot watch interfaces through netlink (%s): "
			"vanished interfaces are only noticed at resync",
			strerror(-nlfd));
	next_resync = a->cfg->resync_s ? now_ms() + a->cfg->resync_s * 1000ull
				       : UINT64_MAX;
	while (!stop) {
		struct pollfd pfd[3] = {
			{.fd = sigfd, .events = POLLIN},
			{.fd = src->ops->fd(src), .events = POLLIN},
			{.fd = nlfd, .events = POLLIN},
		};
		int n = poll(pfd, 3, 1000);

		if (n < 0 && errno != EINTR) {
			err = -errno;
			pr_err("poll failed: %s", strerror(-err));
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					pr_info("SIGHUP: re-reading the "
						"desired state and the maps");
					xvpc_rc_cache_invalidate(a->cache);
					refresh(a, src, true);
				} else {
					pr_info("signal %u: exiting; the "
						"datapath stays pinned and "
						"attached",
						si.ssi_signo);
					stop = true;
				}
			}
		}
		if (n > 0 && (pfd[1].revents & POLLIN))
			refresh(a, src, false);
		if (n > 0 && (pfd[2].revents & POLLIN)) {
			int r = agent_nl_read(nlfd, agent_on_link, a);

			if (r == -ENOBUFS) {
				pr_warn("netlink overflowed: full resync");
				a->resync_wanted = true;
			} else if (r < 0) {
				pr_warn("reading netlink failed: %s",
					strerror(-r));
			}
		}
		agent_learn_tick(a, now_ms());
		if (a->resync_wanted || now_ms() >= next_resync) {
			/* The timer also repairs drift: read the maps back. */
			agent_resync(a, now_ms() >= next_resync);
			if (a->cfg->resync_s)
				next_resync =
					now_ms() + a->cfg->resync_s * 1000ull;
		}
	}
	if (nlfd >= 0)
		close(nlfd);
	return err;
}

static int open_source(const struct agent_config *cfg, __be32 node_ip,
		       struct agent_source **src)
{
	const char *urls[AGENT_MAX_CONTROLLERS];
	struct agent_ctrl_opts o = {
		.urls = urls,
		.n_urls = cfg->n_controllers,
		.node_name = cfg->node_name,
		.node_ip = node_ip,
		.token = cfg->token,
		.batch_ms = cfg->ctrl_batch_ms,
	};
	int err;

	if (!cfg->n_controllers) {
		err = agent_source_file_new(cfg->state_path, node_ip, src);
		if (err)
			pr_err("state file %s: %s", cfg->state_path,
			       strerror(-err));
		return err;
	}
	for (int i = 0; i < cfg->n_controllers; i++)
		urls[i] = cfg->controllers[i];
	err = agent_source_ctrl_new(&o, src);
	if (err)
		pr_err("cannot start the controller client: %s",
		       strerror(-err));
	else
		pr_info("node %s: desired state from %s%s", cfg->node_name,
			urls[0],
			cfg->n_controllers > 1 ? " (and failover)" : "");
	return err;
}

/* The resolver asks the controller the state source is connected to. */
static int current_ctrl(void *ctx)
{
	struct agent_ctrl_stats st;

	agent_source_ctrl_stats(ctx, &st);
	return st.url;
}

/* Learning mode: misses are resolved through the controllers; with a
 * state file they are only counted. */
static int start_learning(struct agent *a, const struct agent_config *cfg,
			  struct agent_source *src)
{
	const char *urls[AGENT_MAX_CONTROLLERS];
	struct xvpc_resolve_http_opts o = {
		.urls = urls,
		.n_urls = cfg->n_controllers,
		.node_name = cfg->node_name,
		.token = cfg->token,
		.current_url = current_ctrl,
		.ctx = src,
	};
	struct xvpc_rsv_transport *t = NULL;
	int err;

	for (int i = 0; i < cfg->n_controllers; i++)
		urls[i] = cfg->controllers[i];
	if (cfg->n_controllers) {
		err = xvpc_resolve_http_new(&o, &t);
		if (err) {
			pr_err("cannot set up resolving through the "
			       "controllers: %s",
			       strerror(-err));
			return err;
		}
	}
	return agent_learn_start(a, t);
}

/* The health of this node's local load balancer backends goes to the
 * controller the state source uses (docs/loadbalancer.md, "Health
 * reports"). */
static int start_reports(struct agent *a, const struct agent_config *cfg,
			 struct agent_source *src)
{
	const char *urls[AGENT_MAX_CONTROLLERS];
	struct agent_hr_opts o = {
		.urls = urls,
		.n_urls = cfg->n_controllers,
		.node_name = cfg->node_name,
		.token = cfg->token,
		.current_url = current_ctrl,
		.ctx = src,
	};

	for (int i = 0; i < cfg->n_controllers; i++)
		urls[i] = cfg->controllers[i];
	return agent_report_start(a, &o);
}

/* The first desired state: at once from a file; from controllers, once
 * one answers (SIGINT/SIGTERM meanwhile: *st stays NULL, returns 0). */
static int first_state(struct agent_source *src, const sigset_t *set,
		       struct xvpc_state **st)
{
	int ret, sigfd;

	*st = NULL;
	ret = src->ops->fetch(src, true, st);
	if (ret || src->ops->fd(src) < 0 || !strcmp(src->ops->name, "file"))
		return ret;
	sigfd = signalfd(-1, set, SFD_CLOEXEC);
	if (sigfd < 0) {
		ret = -errno;
		pr_err("signalfd: %s", strerror(-ret));
		return ret;
	}
	pr_info("waiting for the first desired state");
	while (!ret) {
		struct pollfd pfd[2] = {
			{.fd = sigfd, .events = POLLIN},
			{.fd = src->ops->fd(src), .events = POLLIN},
		};
		struct signalfd_siginfo si;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			pr_err("poll failed: %s", strerror(-ret));
			break;
		}
		if ((pfd[0].revents & POLLIN) &&
		    read(sigfd, &si, sizeof(si)) == sizeof(si) &&
		    si.ssi_signo != SIGHUP) {
			pr_info("signal %u before any state: exiting",
				si.ssi_signo);
			break;
		}
		if (pfd[1].revents & POLLIN)
			ret = src->ops->fetch(src, false, st);
	}
	close(sigfd);
	return ret < 0 ? ret : 0;
}

int main(int argc, char **argv)
{
	struct agent_metrics *metrics = NULL;
	struct agent_source *src = NULL;
	struct xvpc_state *st = NULL;
	struct agent_config cfg;
	char err[AGENT_ERR_LEN];
	struct agent a;
	bool opened = false;
	__be32 node_ip = 0;
	int ret, sigfd = -1;
	sigset_t set;

	xvpc_log_set_ident("xvpc-agent");
	xvpc_log_hook_libs();
	ret = agent_config_load(&cfg, argc, argv, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "xvpc-agent: %s\n", err);
		return EXIT_CONFIG;
	}
	if (cfg.help) {
		agent_config_usage(stdout, "xvpc-agent");
		return 0;
	}
	xvpc_log_set_level(cfg.log_level);

	if (cfg.uninstall) {
		ret = xvpc_dp_uninstall(cfg.pin_dir,
					cfg.underlay[0] ? cfg.underlay : NULL);
		if (cfg.probe_ip && if_nametoindex("lo"))
			agent_nl_addr(if_nametoindex("lo"), cfg.probe_ip,
				      false);
		if (ret)
			pr_err("uninstall incomplete: %s", strerror(-ret));
		return ret ? 1 : 0;
	}
	if (cfg.n_controllers && !cfg.token[0]) {
		pr_err("--controller needs a token: give --token TOKEN, "
		       "XVPC_TOKEN or `token = ` in the config file");
		return EXIT_CONFIG;
	}
	if (block_signals(&set)) {
		pr_err("cannot block signals: %s", strerror(errno));
		return 1;
	}
	ret = resolve_node_ip(&cfg, &node_ip);
	if (ret)
		return EXIT_CONFIG;

	ret = open_source(&cfg, node_ip, &src);
	if (ret)
		return EXIT_CONFIG;
	/* A broken desired state at start changes nothing: the datapath is
	 * not even opened. */
	ret = first_state(src, &set, &st);
	if (ret < 0 || !st)
		goto out;

	pr_info("node %s: opening the datapath (pin dir %s, underlay %s, %s "
		"mode)",
		cfg.node_name, cfg.pin_dir, cfg.underlay,
		cfg.mode == XVPC_UNDERLAY_XDP ? "xdp" : "tc");
	ret = agent_open(&a, &cfg, node_ip);
	if (ret) {
		xvpc_state_free(st);
		goto out;
	}
	opened = true;
	ret = agent_apply(&a, st);
	if (cfg.once) {
		pr_info("--once: done; the datapath stays pinned and attached");
		goto out;
	}
	if (ret)
		pr_warn("starting anyway; the next change or resync retries");

	ret = start_learning(&a, &cfg, src);
	if (ret)
		pr_warn("learning-mode misses are not resolved: %s",
			strerror(-ret));
	if (cfg.n_controllers) {
		ret = start_reports(&a, &cfg, src);
		if (ret)
			pr_warn("backend health is not reported: %s",
				strerror(-ret));
	}
	ret = agent_events_start(&a.events, xvpc_dp_map_fd(a.dp, XVPC_M_EVENTS),
				 0);
	if (ret)
		pr_warn("learning events are not drained: %s", strerror(-ret));
	if (cfg.metrics) {
		ret = agent_metrics_start(&a, cfg.metrics_addr,
					  cfg.metrics_port, &metrics);
		if (ret)
			goto out;
	}
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		ret = -errno;
		pr_err("signalfd: %s", strerror(-ret));
		goto out;
	}
	ret = run_loop(&a, src, sigfd);
out:
	if (sigfd >= 0)
		close(sigfd);
	agent_metrics_stop(metrics);
	if (opened)
		agent_close(&a);
	agent_source_destroy(src);
	return ret ? 1 : 0;
}
