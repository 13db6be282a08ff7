// SPDX-License-Identifier: GPL-2.0-only
/* xvpc-controller: the tenants' HTTP API and state distribution to agents.
 * Without --zookeeper it runs alone on the embedded store in --data-dir. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "store.h"

#define DEFAULT_LISTEN	 "127.0.0.1:8470"
#define DEFAULT_DATA_DIR "/var/lib/xvpc"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
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
		"  --zookeeper HOSTS     ZooKeeper ensemble (not supported yet "
		"by this\n"
		"                        build; without it the embedded store "
		"is used)\n"
		"  --help                this text\n\n"
		"API reference: docs/api.md, GET /v1/openapi.json\n",
		DEFAULT_LISTEN, DEFAULT_DATA_DIR);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"data-dir", required_argument, NULL, 'd'},
		{"admin-token", required_argument, NULL, 'a'},
		{"log-level", required_argument, NULL, 'v'},
		{"zookeeper", required_argument, NULL, 'z'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *listen = DEFAULT_LISTEN, *dir = DEFAULT_DATA_DIR;
	const char *token = getenv("XVPC_ADMIN_TOKEN"), *zk = NULL;
	struct http_server *srv = NULL;
	struct store *store = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	struct api api;
	uint32_t addr;
	uint16_t port;
	bool generated;
	int opt, level, err;

	xvpc_log_set_ident("xvpc-controller");
	xvpc_log_set_level(XVPC_LOG_INFO);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen = optarg;
			if (http_parse_listen(listen, &addr, &port)) {
				fprintf(stderr,
					"xvpc-controller: --listen '%s': want "
					"IPV4:PORT, e.g. 127.0.0.1:8470\n",
					listen);
				return 2;
			}
			break;
		case 'd':
			dir = optarg;
			break;
		case 'a':
			token = optarg;
			break;
		case 'v':
			level = xvpc_log_parse_level(optarg);
			if (level < 0) {
				fprintf(stderr,
					"xvpc-controller: --log-level '%s': "
					"want error, warn, info or debug\n",
					optarg);
				return 2;
			}
			xvpc_log_set_level(level);
			break;
		case 'z':
			zk = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "xvpc-controller: %s '%s'\n",
				optopt && strchr("ldavz", optopt)
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
	if (zk) {
		fprintf(stderr,
			"xvpc-controller: --zookeeper: the ZooKeeper store is "
			"not in this build yet; run without it for the "
			"embedded store\n");
		return 2;
	}
	if (token && !*token)
		token = NULL;

	err = store_embed_open(dir, NULL, &store);
	if (err) {
		pr_err("cannot open the store in %s: %s", dir, strerror(-err));
		return 1;
	}
	err = api_init(&api, store, token, &generated);
	if (err) {
		pr_err("cannot set up the admin token: %s", strerror(-err));
		goto out_store;
	}
	if (generated) {
		/* Printed once, on the first start; kept in the store. */
		printf("admin token: %s\n", api.admin_token);
		fflush(stdout);
	}
	err = http_start(&api, listen, &srv);
	if (err)
		goto out_api;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stop)
		pause();
	pr_info("stopping");
	http_stop(srv);
out_api:
	api_fini(&api);
out_store:
	store_close(store);
	return err ? 1 : 0;
}
