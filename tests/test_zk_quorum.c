// SPDX-License-Identifier: GPL-2.0-only
/* A three-member ZooKeeper ensemble on loopback and one client session:
 * with one follower killed, writes still work; with two members killed the
 * quorum is lost and writes fail fast with ZK_ENOQUORUM (the controller's
 * 503); after restarting them, writes resume on the same session. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/zk.h"
#include "log.h"
#include "tests/zk_harness.h"

static struct zkh ens;

static int group_setup(void **state)
{
	(void)state;
	xvpc_log_set_level(XVPC_LOG_ERROR);
	return zkh_start(&ens, 3) ? -1 : 0;
}

static int group_teardown(void **state)
{
	int err = zkh_stop(&ens);

	(void)state;
	if (zkh_procs(&ens) > 0)
		return -1;
	return err ? -1 : 0;
}

static int write_once(struct zk *zk, int i)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%d", i);
	return zk_put(zk, "/q/rec", buf, strlen(buf), ZK_ANY_VERSION, NULL);
}

/* Writes until one succeeds; a failure in between must be one the caller
 * can retry (the connection moved to another member). */
static int write_retry(struct zk *zk, int i, int timeout_ms)
{
	long long end = zkh_now_ms() + timeout_ms;
	int err;

	do {
		err = write_once(zk, i);
		if (!err || !zk_err_unavailable(err))
			return err;
		usleep(50000);
	} while (zkh_now_ms() < end);
	return err;
}

static void test_quorum_loss_and_return(void **state)
{
	struct zk_config cfg = {
		.hosts = ens.hosts,
		/* Longer than the outage below, so the session survives. */
		.session_timeout_ms = 30000,
		.reconnect_wait_ms = 2000,
	};
	int leader, f1, f2, err, i;
	long long t0, worst = 0;
	int64_t sid;
	struct zk *zk;
	char *data;
	int len;

	(void)state;
	assert_int_equal(zk_open(&cfg, &zk), 0);
	sid = zk_session_id(zk);
	assert_int_equal(zk_create(zk, "/q/rec", "start", 5), 0);

	leader = zkh_leader(&ens);
	assert_true(leader >= 1 && leader <= 3);
	f1 = leader % 3 + 1;
	f2 = f1 % 3 + 1;

	/* One follower down: two of three still make a quorum. Writes work
	 * (a client on that member moves; a call caught in the move is
	 * retried). */
	assert_int_equal(zkh_kill(&ens, f1), 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(write_retry(zk, i, 10000), 0);

	/* Two down: the survivor stops serving. Once the client noticed,
	 * every write fails fast with ZK_ENOQUORUM. */
	assert_int_equal(zkh_kill(&ens, f2), 0);
	t0 = zkh_now_ms();
	do {
		err = write_once(zk, 100);
		assert_true(zk_err_unavailable(err));
	} while (err != -ZK_ENOQUORUM && zkh_now_ms() - t0 < 20000);
	assert_int_equal(err, -ZK_ENOQUORUM);
	print_message("quorum lost: first ENOQUORUM after %lld ms\n",
		      zkh_now_ms() - t0);
	for (i = 0; i < 5; i++) {
		long long t = zkh_now_ms();

		assert_int_equal(write_once(zk, 100 + i), -ZK_ENOQUORUM);
		if (zkh_now_ms() - t > worst)
			worst = zkh_now_ms() - t;
	}
	print_message("quorum lost: later writes failed within %lld ms\n",
		      worst);
	assert_int_equal(zk_get(zk, "/q/rec", &data, &len, NULL),
			 -ZK_ENOQUORUM);

	/* Back: the same session carries on. */
	t0 = zkh_now_ms();
	assert_int_equal(zkh_restart(&ens, f1), 0);
	assert_int_equal(zkh_restart(&ens, f2), 0);
	assert_int_equal(zkh_wait(&ens), 0);
	assert_int_equal(zk_wait_connected(zk, 20000), 0);
	assert_int_equal(write_retry(zk, 200, 20000), 0);
	print_message("quorum back: writes resumed %lld ms after restarting\n",
		      zkh_now_ms() - t0);
	assert_int_equal(zk_session_id(zk), sid);
	assert_false(zk_expired(zk));
	assert_int_equal(zk_get(zk, "/q/rec", &data, &len, NULL), 0);
	assert_string_equal(data, "200");
	free(data);
	zk_close(zk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quorum_loss_and_return),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
