/* SPDX-License-Identifier: GPL-2.0-only */
/* xvpcctl: a table of commands (cli/main.c) and one error printer. */
#ifndef XVPC_CLI_H
#define XVPC_CLI_H

#include <stdbool.h>

struct cli_ctx {
	bool json;	     /* --json: machine-readable output */
	const char *pin_dir; /* --pin-dir, default XVPC_PIN_DIR */
	const char *api;     /* --api / XVPC_API / config file */
	const char *token;   /* --token / XVPC_TOKEN / config file */
};

struct cli_cmd {
	const char *name;
	int (*fn)(struct cli_ctx *ctx, int argc, char **argv);
	const char *help; /* one line for the command list */
};

/* Prints "xvpcctl: <what>: <strerror(-err)>" (or a JSON error object with
 * --json) and returns err. */
int cli_error(const struct cli_ctx *ctx, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Dispatch argv[0] among a sub-table; prints the table on --help or error. */
int cli_dispatch(struct cli_ctx *ctx, const char *prefix,
		 const struct cli_cmd *cmds, int argc, char **argv);
bool cli_is_help(const char *arg);

/* Operator commands (pinned maps, traces). */
int cmd_map(struct cli_ctx *ctx, int argc, char **argv);
int cmd_stats(struct cli_ctx *ctx, int argc, char **argv);
int cmd_endpoint(struct cli_ctx *ctx, int argc, char **argv);
int cmd_trace(struct cli_ctx *ctx, int argc, char **argv);
/* Tenant commands (HTTP API). */
int cmd_tenant(struct cli_ctx *ctx, int argc, char **argv);
int cmd_vpc(struct cli_ctx *ctx, int argc, char **argv);
int cmd_subnet(struct cli_ctx *ctx, int argc, char **argv);
int cmd_port(struct cli_ctx *ctx, int argc, char **argv);
int cmd_node(struct cli_ctx *ctx, int argc, char **argv);
int cmd_lb(struct cli_ctx *ctx, int argc, char **argv);

/* One call to the controller's API (cli/cmd_api.c): ctx->api + path with
 * ctx->token; body (JSON) and idem (Idempotency-Key) may be NULL. Returns
 * 0 with *out the parsed answer (NULL for 204), or a negative errno after
 * printing why (the API's message and field included). */
struct json_object;
int cli_api_call(struct cli_ctx *ctx, const char *method, const char *path,
		 const char *body, const char *idem, struct json_object **out);

#endif
