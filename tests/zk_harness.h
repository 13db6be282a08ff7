/* SPDX-License-Identifier: GPL-2.0-only */
/* C side of tests/zk_harness.sh: start 1 or 3 throw-away ZooKeeper servers
 * on loopback from a cmocka group setup, stop them from its teardown. The
 * script's guard also stops them if the test process dies. Header only,
 * since each tests/test_*.c is built on its own. */
#ifndef XVPC_TESTS_ZK_HARNESS_H
#define XVPC_TESTS_ZK_HARNESS_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

struct zkh {
	char dir[64];
	char hosts[256];
	int n;
};

static inline const char *zkh_script(void)
{
	static char path[PATH_MAX + 64];
	char exe[PATH_MAX];
	ssize_t len;

	if (getenv("ZK_HARNESS"))
		return getenv("ZK_HARNESS");
	if (!access("tests/zk_harness.sh", X_OK))
		return "tests/zk_harness.sh";
	/* bin/tests/test_x -> ../../tests/zk_harness.sh */
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return "tests/zk_harness.sh";
	exe[len] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(path, sizeof(path), "%s/../../tests/zk_harness.sh", exe);
	return path;
}

/* Runs the script; its first output line goes to out (may be NULL).
 * Returns its exit status, or -1. */
static inline int zkh_run(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[PATH_MAX + 1024], line[512];
	int n, status;
	va_list ap;
	FILE *f;

	n = snprintf(cmd, sizeof(cmd), "%s ", zkh_script());
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - n, fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (out)
		out[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (out && !out[0] && outlen) {
			size_t n = strcspn(line, "\n");

			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, line, n);
			out[n] = '\0';
		}
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline int zkh_start(struct zkh *h, int n)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "/tmp/xvpc-zk.XXXXXX");
	if (!mkdtemp(h->dir))
		return -errno;
	h->n = n;
	if (zkh_run(h->hosts, sizeof(h->hosts), "start %d %s %d", n, h->dir,
		    (int)getpid()) ||
	    !h->hosts[0]) {
		fprintf(stderr, "zk_harness: could not start %d servers\n", n);
		zkh_run(NULL, 0, "stop %s", h->dir);
		return -EIO;
	}
	return 0;
}

/* 0 when every server is gone and the directory removed. */
static inline int zkh_stop(struct zkh *h)
{
	if (!h->dir[0])
		return 0;
	return zkh_run(NULL, 0, "stop %s", h->dir) ? -EIO : 0;
}

/* Number of server processes of this harness still alive. */
static inline int zkh_procs(struct zkh *h)
{
	char cmd[PATH_MAX + 256], line[64];
	int n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s procs %s", zkh_script(), h->dir);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	pclose(f);
	return n;
}

static inline int zkh_kill(struct zkh *h, int i)
{
	return zkh_run(NULL, 0, "kill %s %d", h->dir, i) ? -EIO : 0;
}

static inline int zkh_restart(struct zkh *h, int i)
{
	return zkh_run(NULL, 0, "restart %s %d", h->dir, i) ? -EIO : 0;
}

static inline int zkh_wait(struct zkh *h)
{
	return zkh_run(NULL, 0, "wait %s", h->dir) ? -EIO : 0;
}

/* Index (1..n) of the member that leads, or -1. */
static inline int zkh_leader(struct zkh *h)
{
	char out[16];

	if (zkh_run(out, sizeof(out), "leader %s", h->dir))
		return -1;
	return atoi(out);
}

static inline long long zkh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Polls pred every 5 ms for up to timeout_ms; true once it holds. */
static inline bool zkh_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
	long long end = zkh_now_ms() + timeout_ms;

	while (!pred(arg)) {
		if (zkh_now_ms() > end)
			return false;
		usleep(5000);
	}
	return true;
}

#endif
