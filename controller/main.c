// SPDX-License-Identifier: GPL-2.0-only
/* xvpc-controller: the tenants' HTTP API and state distribution to agents.
 * Without --zookeeper it runs alone on the embedded store in --data-dir;
 * with it, as one member of a cluster (cluster.h, docs/zookeeper.md). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cluster.h"
#include "log.h"
#include "netutil.h"
#include "store.h"

#define DEFAULT_LISTEN	 "127.0.0.1:8470"
#define DEFAULT_DATA_DIR "/var/lib/xvpc"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* --config FILE: "key = value" lines (listen, data-dir, admin-token,
 * log-level, zookeeper, zk-root), '#' comments. Flags and the environment
 * win over it. */
struct settings {
	char *listen, *dir, *token, *level, *zk, *root;
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && strchr(" \t\r\n", e[-1]))
		*--e = '\0';
	return s;
}

static int load_config(const char *path, struct settings *cfg)
{
	char line[512], *k, *v, *eq;
	int lineno = 0, err = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "xvpc-controller: --config %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	while (!err && fgets(line, sizeof(line), f)) {
		char **slot;

		lineno++;
		k = trim(line);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			fprintf(stderr,
				"xvpc-controller: %s:%d: want 'key = value'\n",
				path, lineno);
			err = -EINVAL;
			break;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		slot = !strcmp(k, "listen")	   ? &cfg->listen
		       : !strcmp(k, "data-dir")	   ? &cfg->dir
		       : !strcmp(k, "admin-token") ? &cfg->token
		       : !strcmp(k, "log-level")   ? &cfg->level
		       : !strcmp(k, "zookeeper")   ? &cfg->zk
		       : !strcmp(k, "zk-root")	   ? &cfg->root
						   : NULL;
		if (!slot) {
			fprintf(stderr,
				"xvpc-controller: %s:%d: unknown key '%s' "
				"(listen, data-dir, admin-token, "
				"log-level, zookeeper, zk-root)\n",
				path, lineno, k);
			err = -EINVAL;
			break;
		}
		free(*slot);
		*slot = strdup(v);
	}
	fclose(f);
	return err;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xvpc-controller [options]\n\n"
		"  --listen ADDR:PORT    HTTP API address (default %s)\n"
		"  --data-dir DIR        embedded store directory (default "
		"%s)\n"
		"  --admin-token TOKEN   admin token (env XVPC_ADMIN_TOKEN); "
		"without\n"
		"                        one, the stored one, or a new one "
		"printed once\n"
		"  --log-level LEVEL     error, warn, info (default), debug\n"
		"  --config FILE         'key = value' lines for the options "
		"above\n"
		"  --zookeeper HOSTS     run as a cluster member on this "
		"ZooKeeper\n"
		"                        ensemble (host:port[,host:port...]); "
		"without it\n"
		"                        the embedded store is used\n"
		"  --zk-root PATH        the cluster's znode (default /xvpc)\n"
		"  --node-down-after S   a node whose agent has not polled for "
		"S seconds\n"
		"                        is marked down (default 15)\n"
		"  --vpc-gateways N      gateway nodes per learn-mode VPC, "
		"1 .. 4 (default 2)\n"
		"  --answer-rate N       change answers per second to stay "
		"under: agents\n"
		"                        are asked to batch changes when "
		"more nodes\n"
		"                        poll (default %d; 0: never ask)\n"
		"  --public-prefix CIDR  public load balancers may take their "
		"VIPs here\n"
		"                        (repeatable, up to 16; none: public "
		"load\n"
		"                        balancers are refused)\n"
		"  --help                this text\n\n"
		"API reference: docs/api.md, GET /v1/openapi.json\n",
		DEFAULT_LISTEN, DEFAULT_DATA_DIR, API_ANSWER_RATE_DEFAULT);
}

/* --public-prefix CIDR: a network address and a prefix length of 1 .. 32. */
static int parse_public_prefix(const char *s, __be32 *net, __u8 *plen)
{
	if (xvpc_parse_cidr(s, net, plen) || !*plen) {
		fprintf(stderr,
			"xvpc-controller: public-prefix '%s': want a CIDR such "
			"as 203.0.113.0/24 (no host bits, not /0)\n",
			s);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"data-dir", required_argument, NULL, 'd'},
		{"admin-token", required_argument, NULL, 'a'},
		{"log-level", required_argument, NULL, 'v'},
		{"zookeeper", required_argument, NULL, 'z'},
		{"config", required_argument, NULL, 'c'},
		{"zk-root", required_argument, NULL, 'r'},
		{"node-down-after", required_argument, NULL, 'n'},
		{"vpc-gateways", required_argument, NULL, 'g'},
		{"answer-rate", required_argument, NULL, 'R'},
		{"public-prefix", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *listen = NULL, *dir = NULL, *level_s = NULL;
	const char *token = getenv("XVPC_ADMIN_TOKEN"), *zk = NULL;
	const char *config = NULL, *root = NULL, *down_s = NULL;
	const char *gw_s = NULL, *rate_s = NULL, *pub[API_PUB_PREFIXES + 1];
	__be32 pub_net[API_PUB_PREFIXES];
	__u8 pub_plen[API_PUB_PREFIXES];
	int n_pub = 0;
	int gateways = 0, answer_rate = 0;
	struct cluster *cluster = NULL;
	int down_after = 0;
	struct settings cfg = {0};
	struct http_server *srv = NULL;
	struct store *store = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	struct api api;
	uint32_t addr;
	uint16_t port;
	bool generated;
	int opt, level, err = 0;

	xvpc_log_set_ident("xvpc-controller");
	xvpc_log_set_level(XVPC_LOG_INFO);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'a':
			token = optarg;
			break;
		case 'v':
			level_s = optarg;
			break;
		case 'z':
			zk = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 'n':
			down_s = optarg;
			break;
		case 'g':
			gw_s = optarg;
			break;
		case 'R':
			rate_s = optarg;
			break;
		case 'p':
			/* One more than fits, so that the check says so. */
			if (n_pub <= API_PUB_PREFIXES)
				pub[n_pub++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "xvpc-controller: %s '%s'\n",
				optopt && strchr("ldavzcrngpR", optopt)
					? "missing value for"
					: "unknown option",
				argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xvpc-controller: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (config && load_config(config, &cfg)) {
		err = 2;
		goto out_cfg;
	}
	listen = listen ?: cfg.listen ?: DEFAULT_LISTEN;
	dir = dir ?: cfg.dir ?: DEFAULT_DATA_DIR;
	token = token ?: cfg.token;
	level_s = level_s ?: cfg.level;
	zk = zk ?: cfg.zk;
	root = root ?: cfg.root;
	if (zk && !*zk)
		zk = NULL;
	if (down_s) {
		char *end;
		long v = strtol(down_s, &end, 10);

		if (*end || v < 1 || v > 3600) {
			fprintf(stderr,
				"xvpc-controller: node-down-after '%s': want "
				"1 .. 3600 seconds\n",
				down_s);
			err = 2;
			goto out_cfg;
		}
		down_after = v;
	}
	if (gw_s) {
		char *end;
		long v = strtol(gw_s, &end, 10);

		if (*end || end == gw_s || v < 1 || v > 4) {
			fprintf(stderr,
				"xvpc-controller: vpc-gateways '%s': want 1 .. "
				"4 gateway nodes per learn-mode VPC\n",
				gw_s);
			err = 2;
			goto out_cfg;
		}
		gateways = v;
	}
	if (rate_s) {
		char *end;
		long v = strtol(rate_s, &end, 10);

		if (*end || end == rate_s || v < 0 || v > 10000000) {
			fprintf(stderr,
				"xvpc-controller: answer-rate '%s': want 0 .. "
				"10000000 answers per second (0: no batching "
				"asked)\n",
				rate_s);
			err = 2;
			goto out_cfg;
		}
		answer_rate = v ? v : -1;
	}
	if (n_pub > API_PUB_PREFIXES) {
		fprintf(stderr,
			"xvpc-controller: public-prefix: at most %d prefixes\n",
			API_PUB_PREFIXES);
		err = 2;
		goto out_cfg;
	}
	for (int i = 0; i < n_pub; i++) {
		if (parse_public_prefix(pub[i], &pub_net[i], &pub_plen[i])) {
			err = 2;
			goto out_cfg;
		}
	}
	if (root && (root[0] != '/' || strlen(root) < 2 ||
		     root[strlen(root) - 1] == '/' || strlen(root) > 200)) {
		fprintf(stderr,
			"xvpc-controller: zk-root '%s': want an absolute znode "
			"path such as /xvpc\n",
			root);
		err = 2;
		goto out_cfg;
	}
	if (http_parse_listen(listen, &addr, &port)) {
		fprintf(stderr,
			"xvpc-controller: listen '%s': want IPV4:PORT, e.g. "
			"127.0.0.1:8470\n",
			listen);
		err = 2;
		goto out_cfg;
	}
	if (level_s) {
		level = xvpc_log_parse_level(level_s);
		if (level < 0) {
			fprintf(stderr,
				"xvpc-controller: log-level '%s': want error, "
				"warn, info or debug\n",
				level_s);
			err = 2;
			goto out_cfg;
		}
		xvpc_log_set_level(level);
	}
	if (token && !*token)
		token = NULL;

	if (zk) {
		struct store_zk_opts zo = {.hosts = zk, .root = root};

		err = store_zk_open(&zo, &store);
		if (err) {
			pr_err("cannot join the cluster on ZooKeeper %s: %s",
			       zk, strerror(-err));
			err = 1;
			goto out_cfg;
		}
	} else {
		err = store_embed_open(dir, NULL, &store);
		if (err) {
			pr_err("cannot open the store in %s: %s", dir,
			       strerror(-err));
			err = 1;
			goto out_cfg;
		}
	}
	err = api_init(&api, store, token, &generated);
	if (err) {
		pr_err("cannot set up the admin token: %s", strerror(-err));
		goto out_store;
	}
	api.vpc_gateways = gateways;
	api.answer_rate = answer_rate;
	for (int i = 0; i < n_pub; i++) {
		api.public_prefix[i].net = pub_net[i];
		api.public_prefix[i].plen = pub_plen[i];
	}
	api.n_public_prefix = n_pub;
	if (generated) {
		/* Printed once, on the first start; kept in the store. */
		printf("admin token: %s\n", api.admin_token);
		fflush(stdout);
	}
	err = http_start(&api, listen, &srv);
	if (err)
		goto out_api;
	{
		char addr_s[64];
		struct cluster_opts co = {
			.store = store,
			.zookeeper = zk != NULL,
			.root = root,
			.api_addr = addr_s,
			.down_after_s = down_after,
			.api = &api,
			.vpc_gateways = gateways,
		};

		snprintf(addr_s, sizeof(addr_s), "%.*s:%u",
			 (int)strcspn(listen, ":"), listen, http_port(srv));
		err = cluster_start(&co, &cluster);
		if (err) {
			pr_err("cannot start the cluster duties: %s",
			       strerror(-err));
			goto out_http;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stop)
		pause();
	pr_info("stopping");
	cluster_stop(cluster);
out_http:
	http_stop(srv);
out_api:
	api_fini(&api);
out_store:
	store_close(store);
	if (err)
		err = 1;
out_cfg:
	free(cfg.listen);
	free(cfg.dir);
	free(cfg.token);
	free(cfg.level);
	free(cfg.zk);
	free(cfg.root);
	return err;
}
