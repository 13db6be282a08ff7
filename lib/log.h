/* SPDX-License-Identifier: GPL-2.0-only */
/* One logging module for every xvpc binary; libbpf and libxdp output goes
 * through the same level filter. */
#ifndef XVPC_LOG_H
#define XVPC_LOG_H

enum xvpc_log_level {
	XVPC_LOG_ERROR = 0,
	XVPC_LOG_WARN,
	XVPC_LOG_INFO,
	XVPC_LOG_DEBUG,
};

void xvpc_log_set_level(enum xvpc_log_level level);
enum xvpc_log_level xvpc_log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns the level or -EINVAL. */
int xvpc_log_parse_level(const char *s);
/* Sends libbpf's and libxdp's messages through xvpc_log(). */
void xvpc_log_hook_libs(void);
/* Prefix of every line, e.g. the program name. */
void xvpc_log_set_ident(const char *ident);

void xvpc_log(enum xvpc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)   xvpc_log(XVPC_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...)  xvpc_log(XVPC_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  xvpc_log(XVPC_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) xvpc_log(XVPC_LOG_DEBUG, __VA_ARGS__)

#endif
