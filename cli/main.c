// SPDX-License-Identifier: GPL-2.0-only
/* xvpcctl: tenants' commands (through the HTTP API) and operators' commands
 * (pinned maps, counters, traces). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "xvpc_abi.h"

/* Commands are added here as they are implemented, one line each. */
static const struct cli_cmd commands[] = {
	{"trace", cmd_trace, "run a packet through the datapath and explain"},
	{"map", cmd_map, "datapath maps: list, dump <map>"},
	{"stats", cmd_stats,
	 "datapath counters, drops by reason, per endpoint"},
	{"endpoint", cmd_endpoint, "endpoints in the datapath: list"},
	{"tenant", cmd_tenant,
	 "tenants (admin token): create|list|show|delete"},
	{"vpc", cmd_vpc, "VPCs: create|list|show|delete"},
	{"subnet", cmd_subnet, "subnets: create|list|show|delete"},
	{"port", cmd_port, "ports: create|list|show|delete"},
	{"node", cmd_node, "nodes (admin token): create|list|show|delete"},
	{"lb", cmd_lb,
	 "load balancers: create|list|show|delete|backends|health"},
	{NULL, NULL, NULL},
};

bool cli_is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h") ||
	       !strcmp(arg, "help");
}

static void json_escape_print(const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
}

int cli_error(const struct cli_ctx *ctx, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx && ctx->json) {
		printf("{\"error\": \"");
		json_escape_print(msg);
		printf("\", \"errno\": %d}\n", err < 0 ? -err : err);
	} else if (err) {
		fprintf(stderr, "xvpcctl: %s: %s\n", msg, strerror(abs(err)));
	} else {
		fprintf(stderr, "xvpcctl: %s\n", msg);
	}
	return err ? err : -EINVAL;
}

static void print_table(const char *prefix, const struct cli_cmd *cmds)
{
	fprintf(stdout, "usage: %s <command> [args] [--help]\n\ncommands:\n",
		prefix);
	for (; cmds->name; cmds++)
		fprintf(stdout, "  %-10s %s\n", cmds->name, cmds->help);
}

int cli_dispatch(struct cli_ctx *ctx, const char *prefix,
		 const struct cli_cmd *cmds, int argc, char **argv)
{
	const struct cli_cmd *c;

	if (argc < 1 || cli_is_help(argv[0])) {
		print_table(prefix, cmds);
		return argc < 1 ? -EINVAL : 0;
	}
	for (c = cmds; c->name; c++)
		if (!strcmp(c->name, argv[0]))
			return c->fn(ctx, argc - 1, argv + 1);
	print_table(prefix, cmds);
	return cli_error(ctx, -EINVAL, "%s: unknown command '%s'", prefix,
			 argv[0]);
}

static void usage(void)
{
	printf("usage: xvpcctl [--json] [--pin-dir DIR] [--api URL] "
	       "[--token TOKEN] <command> ...\n\n"
	       "  --json       machine-readable output (documented in "
	       "docs/cli.md)\n"
	       "  --pin-dir    pinned maps (default %s)\n"
	       "  --api        controller URL (env XVPC_API)\n"
	       "  --token      bearer token (env XVPC_TOKEN)\n\n",
	       XVPC_PIN_DIR);
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx = {
		.pin_dir = XVPC_PIN_DIR,
		.api = getenv("XVPC_API"),
		.token = getenv("XVPC_TOKEN"),
	};
	int i, err;

	xvpc_log_set_ident("xvpcctl");
	xvpc_log_set_level(XVPC_LOG_WARN);
	xvpc_log_hook_libs();
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json")) {
			ctx.json = true;
		} else if (!strcmp(argv[i], "--pin-dir") && i + 1 < argc) {
			ctx.pin_dir = argv[++i];
		} else if (!strcmp(argv[i], "--api") && i + 1 < argc) {
			ctx.api = argv[++i];
		} else if (!strcmp(argv[i], "--token") && i + 1 < argc) {
			ctx.token = argv[++i];
		} else if (cli_is_help(argv[i])) {
			usage();
			print_table("xvpcctl", commands);
			return 0;
		} else {
			usage();
			cli_error(&ctx, -EINVAL, "unknown option '%s'",
				  argv[i]);
			return 1;
		}
	}
	if (!ctx.api)
		ctx.api = "http://127.0.0.1:8470";
	if (i >= argc) {
		usage();
		print_table("xvpcctl", commands);
		return 1;
	}
	err = cli_dispatch(&ctx, "xvpcctl", commands, argc - i, argv + i);
	return err ? 1 : 0;
}
