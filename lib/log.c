// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "log.h"

static enum xvpc_log_level cur_level = XVPC_LOG_INFO;
static const char *log_ident = "xvpc";
static const char *const level_names[] = {
	[XVPC_LOG_ERROR] = "error",
	[XVPC_LOG_WARN] = "warn",
	[XVPC_LOG_INFO] = "info",
	[XVPC_LOG_DEBUG] = "debug",
};

void xvpc_log_set_level(enum xvpc_log_level level)
{
	cur_level = level;
}

enum xvpc_log_level xvpc_log_get_level(void)
{
	return cur_level;
}

void xvpc_log_set_ident(const char *ident)
{
	log_ident = ident;
}

int xvpc_log_parse_level(const char *s)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(*level_names);
	     i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -EINVAL;
}

/* One write per line: lines of concurrent threads do not mix, and a line
 * costs one system call (stderr is unbuffered). */
static void vlog(enum xvpc_log_level level, const char *fmt, va_list ap)
{
	char line[1024], *p = line, *big = NULL;
	struct timespec ts;
	struct tm tm;
	int head, n;
	va_list aq;

	if (level > cur_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	head = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	head += snprintf(line + head, sizeof(line) - head,
			 ".%03ldZ %s %s: ", ts.tv_nsec / 1000000,
			 level_names[level], log_ident);
	va_copy(aq, ap);
	n = vsnprintf(line + head, sizeof(line) - head, fmt, aq);
	va_end(aq);
	if (n < 0)
		return;
	if ((size_t)(head + n + 1) >= sizeof(line)) {
		/* A long message: the whole of it, from the heap. */
		big = malloc(head + n + 2);
		if (big) {
			memcpy(big, line, head);
			vsnprintf(big + head, n + 1, fmt, ap);
			p = big;
		} else {
			n = sizeof(line) - head - 2; /* cut */
		}
	}
	n += head;
	if (!n || p[n - 1] != '\n')
		p[n++] = '\n';
	fwrite(p, 1, n, stderr);
	free(big);
}

void xvpc_log(enum xvpc_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	enum xvpc_log_level l = level == LIBBPF_WARN   ? XVPC_LOG_WARN
				: level == LIBBPF_INFO ? XVPC_LOG_DEBUG
						       : XVPC_LOG_DEBUG + 1;

	if (l <= XVPC_LOG_DEBUG)
		vlog(l, fmt, ap);
	return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt,
			va_list ap)
{
	enum xvpc_log_level l = level == LIBXDP_WARN   ? XVPC_LOG_WARN
				: level == LIBXDP_INFO ? XVPC_LOG_DEBUG
						       : XVPC_LOG_DEBUG + 1;

	if (l <= XVPC_LOG_DEBUG)
		vlog(l, fmt, ap);
	return 0;
}

void xvpc_log_hook_libs(void)
{
	libbpf_set_print(libbpf_print);
	libxdp_set_print(libxdp_print);
}
