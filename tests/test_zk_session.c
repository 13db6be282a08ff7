// SPDX-License-Identifier: GPL-2.0-only
/* ZooKeeper session, versioned records and transactions against a real
 * single server started by tests/zk_harness.sh: connection and errors,
 * version checks, conflicting writers that retry, multi-op atomicity, the
 * record size limit, and session expiry reported to the caller. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/zk_priv.h"
#include "log.h"
#include "tests/zk_harness.h"

static struct zkh srv;

struct fixture {
	struct zk *zk;
};

static int open_session(struct zk **zk, void (*on_expired)(struct zk *, void *),
			void *arg)
{
	struct zk_config cfg = {
		.hosts = srv.hosts,
		.session_timeout_ms = 4000,
		.connect_timeout_ms = 10000,
		.on_expired = on_expired,
		.arg = arg,
	};

	return zk_open(&cfg, zk);
}

static int group_setup(void **state)
{
	(void)state;
	xvpc_log_set_level(XVPC_LOG_WARN);
	return zkh_start(&srv, 1) ? -1 : 0;
}

static int group_teardown(void **state)
{
	int err = zkh_stop(&srv);

	(void)state;
	if (zkh_procs(&srv) > 0)
		return -1;
	return err ? -1 : 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || open_session(&f->zk, NULL, NULL)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	zk_close(f->zk);
	free(f);
	return 0;
}

static void test_session_basics(void **state)
{
	struct fixture *f = *state;

	assert_true(zk_connected(f->zk));
	assert_false(zk_expired(f->zk));
	assert_int_not_equal(zk_session_id(f->zk), 0);
	assert_int_equal(zk_wait_connected(f->zk, 1000), 0);
}

static void test_session_errors(void **state)
{
	struct zk_config cfg = {0};
	struct zk *zk = (void *)1;

	(void)state;
	assert_int_equal(zk_open(&cfg, &zk), -EINVAL);
	assert_null(zk);
	/* Nothing listens on port 1 of loopback: bounded failure. */
	cfg.hosts = "127.0.0.1:1";
	cfg.connect_timeout_ms = 300;
	assert_int_equal(zk_open(&cfg, &zk), -ETIMEDOUT);
	assert_null(zk);

	assert_int_equal(zk_err(ZNONODE), -ENOENT);
	assert_int_equal(zk_err(ZNODEEXISTS), -EEXIST);
	assert_int_equal(zk_err(ZBADVERSION), -ESTALE);
	assert_int_equal(zk_err(ZCONNECTIONLOSS), -EAGAIN);
	assert_int_equal(zk_err(ZOPERATIONTIMEOUT), -ETIMEDOUT);
	assert_int_equal(zk_err(ZSESSIONEXPIRED), -ESHUTDOWN);
	assert_true(zk_err_unavailable(-ZK_ENOQUORUM));
	assert_false(zk_err_unavailable(-ESTALE));
}

static void test_kv_versions(void **state)
{
	struct fixture *f = *state;
	struct zk_stat st;
	char *data;
	int len, v;

	/* Parents are made on the way. */
	assert_int_equal(zk_create(f->zk, "/kv1/a/b", "one", 3), 0);
	assert_int_equal(zk_get(f->zk, "/kv1/a/b", &data, &len, &st), 0);
	assert_string_equal(data, "one");
	assert_int_equal(len, 3);
	assert_int_equal(st.version, 0);
	free(data);
	assert_int_equal(zk_create(f->zk, "/kv1/a/b", "two", 3), -EEXIST);

	assert_int_equal(zk_put(f->zk, "/kv1/a/b", "two", 3, 0, &v), 0);
	assert_int_equal(v, 1);
	/* A writer holding the old version loses and changes nothing. */
	assert_int_equal(zk_put(f->zk, "/kv1/a/b", "old", 3, 0, NULL), -ESTALE);
	assert_int_equal(zk_get(f->zk, "/kv1/a/b", &data, &len, &st), 0);
	assert_string_equal(data, "two");
	assert_int_equal(st.version, 1);
	free(data);
	assert_int_equal(
		zk_put(f->zk, "/kv1/a/b", "any", 3, ZK_ANY_VERSION, &v), 0);
	assert_int_equal(v, 2);

	assert_int_equal(zk_put(f->zk, "/kv1/nope", "x", 1, 0, NULL), -ENOENT);
	assert_int_equal(zk_delete(f->zk, "/kv1/a", ZK_ANY_VERSION),
			 -ENOTEMPTY);
	assert_int_equal(zk_delete(f->zk, "/kv1/a/b", 1), -ESTALE);
	assert_int_equal(zk_delete(f->zk, "/kv1/a/b", 2), 0);
	assert_int_equal(zk_get(f->zk, "/kv1/a/b", &data, &len, &st), -ENOENT);
	assert_null(data);
}

static void test_kv_children_and_paths(void **state)
{
	struct fixture *f = *state;
	char **names;
	char *data;
	int n, len;

	assert_int_equal(zk_mkdirs(f->zk, "/kv2/c"), 0);
	assert_int_equal(zk_mkdirs(f->zk, "/kv2/c"), 0);
	assert_int_equal(zk_create(f->zk, "/kv2/b", NULL, 0), 0);
	assert_int_equal(zk_create(f->zk, "/kv2/a", "", 0), 0);
	assert_int_equal(zk_children(f->zk, "/kv2", &names, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_string_equal(names[2], "c");
	zk_strings_free(names, n);
	assert_int_equal(zk_get(f->zk, "/kv2/a", &data, &len, NULL), 0);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	free(data);

	assert_int_equal(zk_create(f->zk, "kv2", "x", 1), -EINVAL);
	assert_int_equal(zk_create(f->zk, "/kv2/", "x", 1), -EINVAL);
	assert_int_equal(zk_create(f->zk, "/kv2//x", "x", 1), -EINVAL);
	assert_int_equal(zk_get(f->zk, NULL, &data, &len, NULL), -EINVAL);
	assert_int_equal(zk_children(f->zk, "/kv2/none", &names, &n), -ENOENT);
}

static void test_kv_size_limit(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(ZK_RECORD_MAX + 1), *data;
	struct zk_stat st;
	int len;

	assert_non_null(big);
	memset(big, 'z', ZK_RECORD_MAX + 1);
	assert_int_equal(zk_create(f->zk, "/kv3/big", big, ZK_RECORD_MAX), 0);
	assert_int_equal(zk_get(f->zk, "/kv3/big", &data, &len, &st), 0);
	assert_int_equal(len, ZK_RECORD_MAX);
	assert_memory_equal(data, big, ZK_RECORD_MAX);
	free(data);
	/* One byte more is refused before it reaches the server. */
	assert_int_equal(
		zk_put(f->zk, "/kv3/big", big, ZK_RECORD_MAX + 1, 0, NULL),
		-EMSGSIZE);
	assert_int_equal(zk_create(f->zk, "/kv3/big2", big, ZK_RECORD_MAX + 1),
			 -EMSGSIZE);
	assert_int_equal(zk_get(f->zk, "/kv3/big", &data, &len, &st), 0);
	assert_int_equal(st.version, 0);
	free(data);
	free(big);
}

/* Conflicting writers: each increments a counter by read, put with the
 * version read, retry on -ESTALE. No increment may be lost. */
#define WRITERS	   3
#define INCREMENTS 40

static void *incrementer(void *arg)
{
	int *retries = arg, err;
	struct zk *zk;

	if (open_session(&zk, NULL, NULL))
		return (void *)1;
	for (int i = 0; i < INCREMENTS; i++) {
		do {
			struct zk_stat st;
			char *data, buf[16];
			int len;

			err = zk_get(zk, "/kv4/counter", &data, &len, &st);
			if (err)
				break;
			snprintf(buf, sizeof(buf), "%d", atoi(data) + 1);
			free(data);
			err = zk_put(zk, "/kv4/counter", buf, strlen(buf),
				     st.version, NULL);
			if (err == -ESTALE)
				(*retries)++;
		} while (err == -ESTALE);
		if (err)
			break;
	}
	zk_close(zk);
	return err ? (void *)1 : NULL;
}

static void test_kv_conflicting_writers(void **state)
{
	struct fixture *f = *state;
	int retries[WRITERS] = {0}, total = 0, len;
	pthread_t th[WRITERS];
	struct zk_stat st;
	void *ret;
	char *data;

	assert_int_equal(zk_create(f->zk, "/kv4/counter", "0", 1), 0);
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, incrementer, &retries[i]),
			0);
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(th[i], &ret);
		assert_null(ret);
		total += retries[i];
	}
	assert_int_equal(zk_get(f->zk, "/kv4/counter", &data, &len, &st), 0);
	assert_int_equal(atoi(data), WRITERS * INCREMENTS);
	assert_int_equal(st.version, WRITERS * INCREMENTS);
	free(data);
	print_message("conflicting writers: %d increments, %d retries\n",
		      WRITERS * INCREMENTS, total);
}

static void test_txn_atomic(void **state)
{
	struct fixture *f = *state;
	struct zk_txn *t;
	struct zk_stat st;
	char *data;
	int len, op;

	assert_int_equal(zk_create(f->zk, "/kv5/y", "y0", 2), 0);

	/* The put's version is wrong: the create must not happen either. */
	t = zk_txn_new();
	assert_non_null(t);
	assert_int_equal(zk_txn_create(t, "/kv5/x", "x0", 2), 0);
	assert_int_equal(zk_txn_put(t, "/kv5/y", "y1", 2, 7), 1);
	assert_int_equal(zk_txn_commit(f->zk, t), -ESTALE);
	assert_int_equal(zk_txn_failed_op(t), 1);
	zk_txn_free(t);
	assert_int_equal(zk_get(f->zk, "/kv5/x", &data, &len, NULL), -ENOENT);
	assert_int_equal(zk_get(f->zk, "/kv5/y", &data, &len, &st), 0);
	assert_string_equal(data, "y0");
	free(data);

	/* Right versions: everything applies, parents made on the way. */
	t = zk_txn_new();
	assert_int_equal(zk_txn_create(t, "/kv5/x", "x0", 2), 0);
	assert_int_equal(zk_txn_put(t, "/kv5/y", "y1", 2, 0), 1);
	assert_int_equal(zk_txn_create(t, "/kv5/deep/z", "z0", 2), 2);
	op = zk_txn_publish(t, "/kv5/bus", "changed x y z", 13);
	assert_int_equal(op, 3);
	assert_int_equal(zk_txn_check(t, "/kv5", ZK_ANY_VERSION), 4);
	assert_int_equal(zk_txn_count(t), 5);
	assert_int_equal(zk_txn_commit(f->zk, t), 0);
	assert_int_equal(zk_txn_failed_op(t), -1);
	assert_int_equal(zk_txn_version(t, 1), 1);
	assert_true(zk_txn_seq(t, op) >= 0);
	{
		int64_t last;

		assert_int_equal(zk_bus_last(f->zk, "/kv5/bus", &last), 0);
		assert_int_equal(last, zk_txn_seq(t, op));
	}
	zk_txn_free(t);
	assert_int_equal(zk_get(f->zk, "/kv5/deep/z", &data, &len, NULL), 0);
	assert_string_equal(data, "z0");
	free(data);

	/* Delete of a missing record fails the lot. */
	t = zk_txn_new();
	assert_int_equal(zk_txn_delete(t, "/kv5/x", 0), 0);
	assert_int_equal(zk_txn_delete(t, "/kv5/missing", ZK_ANY_VERSION), 1);
	assert_int_equal(zk_txn_commit(f->zk, t), -ENOENT);
	assert_int_equal(zk_txn_failed_op(t), 1);
	zk_txn_free(t);
	assert_int_equal(zk_get(f->zk, "/kv5/x", &data, &len, NULL), 0);
	free(data);
}

/* Two writers prepare transactions from the same reads; the second one to
 * commit gets -ESTALE and leaves no trace. */
static void test_txn_conflict(void **state)
{
	struct fixture *f = *state;
	struct zk_txn *a, *b;
	struct zk *zk2;
	char *data;
	int len;

	assert_int_equal(open_session(&zk2, NULL, NULL), 0);
	assert_int_equal(zk_create(f->zk, "/kv6/p", "p", 1), 0);
	assert_int_equal(zk_create(f->zk, "/kv6/q", "q", 1), 0);
	a = zk_txn_new();
	b = zk_txn_new();
	zk_txn_put(a, "/kv6/p", "pa", 2, 0);
	zk_txn_put(a, "/kv6/q", "qa", 2, 0);
	zk_txn_put(b, "/kv6/q", "qb", 2, 0);
	zk_txn_create(b, "/kv6/r", "rb", 2);
	assert_int_equal(zk_txn_commit(zk2, a), 0);
	assert_int_equal(zk_txn_commit(f->zk, b), -ESTALE);
	assert_int_equal(zk_txn_failed_op(b), 0);
	assert_int_equal(zk_get(f->zk, "/kv6/q", &data, &len, NULL), 0);
	assert_string_equal(data, "qa");
	free(data);
	assert_int_equal(zk_get(f->zk, "/kv6/r", &data, &len, NULL), -ENOENT);
	zk_txn_free(a);
	zk_txn_free(b);
	zk_close(zk2);
}

static void test_txn_bad_input(void **state)
{
	struct zk_txn *t = zk_txn_new();
	char *big = calloc(1, ZK_RECORD_MAX);

	(void)state;
	assert_non_null(big);
	assert_int_equal(zk_txn_put(t, "bad", "x", 1, 0), -EINVAL);
	assert_int_equal(zk_txn_create(t, "/ok", big, ZK_RECORD_MAX + 1),
			 -EMSGSIZE);
	assert_int_equal(zk_txn_create(t, "/ok", big, ZK_RECORD_MAX / 2), 0);
	/* The sum over the transaction is limited as well. */
	assert_int_equal(zk_txn_create(t, "/ok2", big, ZK_RECORD_MAX / 2 + 8),
			 -EMSGSIZE);
	assert_int_equal(zk_txn_count(t), 1);
	zk_txn_free(t);
	free(big);
}

/* Expiry: a second client takes over the session and closes it; the first
 * client's next reconnection finds it expired. */
static void on_expired(struct zk *zk, void *arg)
{
	(void)zk;
	__atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static bool flag_set(void *arg)
{
	return __atomic_load_n((int *)arg, __ATOMIC_SEQ_CST);
}

static void test_session_expiry(void **state)
{
	struct zk_team *team;
	clientid_t cid;
	zhandle_t *zh2;
	struct zk *zk;
	int expired = 0;

	(void)state;
	assert_int_equal(open_session(&zk, on_expired, &expired), 0);
	assert_int_equal(
		zk_team_join(zk, "/kv7/team", "me", 2, NULL, NULL, &team), 0);
	assert_true(zk_team_is_leader(team));
	cid = *zoo_client_id(zk->zh);
	/* Another handle takes the session over and closes it: the server
	 * ends it. If our handle reconnects first and takes the session back,
	 * the close is refused and the session lives on: try again. */
	for (int attempt = 0; attempt < 5 && !flag_set(&expired); attempt++) {
		zh2 = zookeeper_init(srv.hosts, NULL, 4000, &cid, NULL, 0);
		assert_non_null(zh2);
		for (int i = 0;
		     i < 400 && zoo_state(zh2) != ZOO_CONNECTED_STATE; i++)
			usleep(10000);
		/* Not connected: the session may be gone already. */
		zookeeper_close(zh2);
		zkh_until(flag_set, &expired, 8000);
	}
	assert_true(flag_set(&expired));
	assert_true(zk_expired(zk));
	assert_false(zk_team_is_leader(team));
	assert_int_equal(zk_create(zk, "/kv7/after", "x", 1), -ESHUTDOWN);
	zk_team_leave(team);
	zk_close(zk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_session_basics, setup,
						teardown),
		cmocka_unit_test(test_session_errors),
		cmocka_unit_test_setup_teardown(test_kv_versions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kv_children_and_paths,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_size_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kv_conflicting_writers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_txn_atomic, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_txn_conflict, setup,
						teardown),
		cmocka_unit_test(test_txn_bad_input),
		cmocka_unit_test(test_session_expiry),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
