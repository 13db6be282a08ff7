// SPDX-License-Identifier: GPL-2.0-only
/* Message bus and snapshot + replay against a real ZooKeeper server:
 * concurrent publishers, a subscriber gets every message once and in
 * order; subscribing from a sequence; garbage collection and the gap it
 * reports; a member joining during writes rebuilds exactly the writers'
 * state from a snapshot and the messages after it. */
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

#include "controller/zk.h"
#include "log.h"
#include "tests/zk_harness.h"

#define PUBLISHERS 3
#define PER_PUB	   60
#define MAX_MSGS   512

static struct zkh srv;

struct inbox {
	pthread_mutex_t lock;
	int n, gaps, shutdowns;
	int64_t seq[MAX_MSGS];
	char data[MAX_MSGS][32];
	int64_t gap_upto;
	bool unsubscribe_at_3;
};

static int group_setup(void **state)
{
	(void)state;
	xvpc_log_set_level(XVPC_LOG_ERROR);
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

static int open_session(struct zk **zk)
{
	struct zk_config cfg = {
		.hosts = srv.hosts,
		.session_timeout_ms = 4000,
	};

	return zk_open(&cfg, zk);
}

static void inbox_init(struct inbox *in)
{
	memset(in, 0, sizeof(*in));
	pthread_mutex_init(&in->lock, NULL);
}

static void on_msg(struct zk_sub *s, int err, const struct zk_msg *msg,
		   void *arg)
{
	struct inbox *in = arg;

	pthread_mutex_lock(&in->lock);
	if (err == -ENOENT) {
		in->gaps++;
		in->gap_upto = msg->seq;
	} else if (err) {
		in->shutdowns++;
	} else if (in->n < MAX_MSGS) {
		in->seq[in->n] = msg->seq;
		snprintf(in->data[in->n], sizeof(in->data[0]), "%.*s", msg->len,
			 msg->data);
		in->n++;
	}
	pthread_mutex_unlock(&in->lock);
	if (in->unsubscribe_at_3 && in->n == 3)
		zk_bus_unsubscribe(s);
}

struct wait_n {
	struct inbox *in;
	int n;
};

static bool got_n(void *arg)
{
	struct wait_n *w = arg;
	int n;

	pthread_mutex_lock(&w->in->lock);
	n = w->in->n;
	pthread_mutex_unlock(&w->in->lock);
	return n >= w->n;
}

static bool wait_msgs(struct inbox *in, int n)
{
	struct wait_n w = {in, n};

	return zkh_until(got_n, &w, 15000);
}

static void *publisher(void *arg)
{
	int id = (int)(intptr_t)arg, err = 0;
	struct zk *zk;
	char buf[32];

	if (open_session(&zk))
		return (void *)1;
	for (int i = 0; i < PER_PUB && !err; i++) {
		snprintf(buf, sizeof(buf), "p%d-%d", id, i);
		err = zk_bus_publish(zk, "/b1/chan", buf, strlen(buf), NULL);
	}
	zk_close(zk);
	return err ? (void *)1 : NULL;
}

static void test_bus_order_exactly_once(void **state)
{
	int next[PUBLISHERS] = {0};
	pthread_t th[PUBLISHERS];
	struct inbox in;
	struct zk_sub *sub;
	struct zk *zk;
	int64_t last;
	void *ret;

	(void)state;
	inbox_init(&in);
	assert_int_equal(open_session(&zk), 0);
	/* Subscribing before the channel exists is fine. */
	assert_int_equal(zk_bus_subscribe(zk, "/b1/chan", 0, on_msg, &in, &sub),
			 0);
	for (int i = 0; i < PUBLISHERS; i++)
		pthread_create(&th[i], NULL, publisher, (void *)(intptr_t)i);
	for (int i = 0; i < PUBLISHERS; i++) {
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	assert_true(wait_msgs(&in, PUBLISHERS * PER_PUB));
	assert_int_equal(zk_bus_last(zk, "/b1/chan", &last), 0);
	/* Nothing arrives twice: wait for the subscriber to catch up with
	 * the last sequence, then count. */
	for (int i = 0; i < 300 && zk_sub_last(sub) < last; i++)
		usleep(10000);
	assert_int_equal(zk_sub_last(sub), last);
	pthread_mutex_lock(&in.lock);
	assert_int_equal(in.n, PUBLISHERS * PER_PUB);
	assert_int_equal(in.gaps, 0);
	for (int i = 0; i < in.n; i++) {
		int p, k;

		if (i)
			assert_true(in.seq[i] > in.seq[i - 1]);
		/* Each publisher's messages in its own order, none lost. */
		assert_int_equal(sscanf(in.data[i], "p%d-%d", &p, &k), 2);
		assert_int_equal(k, next[p]);
		next[p]++;
	}
	pthread_mutex_unlock(&in.lock);
	for (int p = 0; p < PUBLISHERS; p++)
		assert_int_equal(next[p], PER_PUB);
	zk_bus_unsubscribe(sub);
	zk_close(zk);
}

static void test_bus_from_seq_and_gc(void **state)
{
	struct inbox in, in2, in3;
	struct zk_sub *sub;
	int64_t seq[10], last;
	struct zk *zk;
	char buf[8];
	int deleted;

	(void)state;
	inbox_init(&in);
	inbox_init(&in2);
	inbox_init(&in3);
	assert_int_equal(open_session(&zk), 0);
	assert_int_equal(zk_bus_last(zk, "/b2/chan", &last), 0);
	assert_int_equal(last, -1);
	for (int i = 0; i < 10; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		assert_int_equal(zk_bus_publish(zk, "/b2/chan", buf,
						strlen(buf), &seq[i]),
				 0);
	}
	/* From the middle. */
	assert_int_equal(
		zk_bus_subscribe(zk, "/b2/chan", seq[6], on_msg, &in, &sub), 0);
	assert_true(wait_msgs(&in, 4));
	assert_string_equal(in.data[0], "m6");
	assert_int_equal(in.seq[3], seq[9]);
	zk_bus_unsubscribe(sub);

	/* Collect below m5: a subscriber from 0 is told what it missed,
	 * then gets m5..m9. */
	assert_int_equal(zk_bus_gc(zk, "/b2/chan", seq[5], &deleted), 0);
	assert_int_equal(deleted, 5);
	assert_int_equal(zk_bus_gc(zk, "/b2/chan", seq[5], &deleted), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(zk_bus_last(zk, "/b2/chan", &last), 0);
	assert_int_equal(last, seq[9]);
	assert_int_equal(
		zk_bus_subscribe(zk, "/b2/chan", 0, on_msg, &in2, &sub), 0);
	assert_true(wait_msgs(&in2, 5));
	assert_int_equal(in2.gaps, 1);
	assert_int_equal(in2.gap_upto, seq[4]);
	assert_string_equal(in2.data[0], "m5");
	zk_bus_unsubscribe(sub);

	/* Everything collected: the last sequence survives. */
	assert_int_equal(zk_bus_gc(zk, "/b2/chan", seq[9] + 1, &deleted), 0);
	assert_int_equal(deleted, 5);
	assert_int_equal(zk_bus_last(zk, "/b2/chan", &last), 0);
	assert_int_equal(last, seq[9]);

	/* Unsubscribing from inside the callback stops delivery there. */
	in3.unsubscribe_at_3 = true;
	for (int i = 0; i < 5; i++)
		assert_int_equal(zk_bus_publish(zk, "/b3/chan", "x", 1, NULL),
				 0);
	assert_int_equal(
		zk_bus_subscribe(zk, "/b3/chan", 0, on_msg, &in3, &sub), 0);
	assert_true(wait_msgs(&in3, 3));
	assert_int_equal(zk_bus_publish(zk, "/b3/chan", "y", 1, NULL), 0);
	assert_int_equal(zk_bus_publish(zk, "/b2/chan", "sync", 4, NULL), 0);
	usleep(100000);
	assert_int_equal(in3.n, 3);

	assert_int_equal(zk_bus_publish(zk, "b3", "x", 1, NULL), -EINVAL);
	assert_int_equal(
		zk_bus_subscribe(zk, "/b3/chan", -1, on_msg, &in3, &sub),
		-EINVAL);
	zk_close(zk);
}

/* Snapshot + replay. Writers set /s<N>/data/k<j> = v and publish "k<j>=v"
 * in one transaction. A member joining meanwhile takes a snapshot, replays
 * the messages after its sequence, and must end with exactly the records;
 * each message after the snapshot is applied or found covered, once. */
#define KEYS   8
#define WRITES 150

struct replica {
	pthread_mutex_t lock;
	const char *root;
	const struct zk_snapshot *snap;
	int val[KEYS];
	int applied, covered;
};

struct writer_arg {
	const char *root;
	int id;
};

static void *writer(void *arg)
{
	struct writer_arg *w = arg;
	char path[64], bus[64], val[32], msg[64];
	struct zk *zk;
	int err = 0;

	if (open_session(&zk))
		return (void *)1;
	snprintf(bus, sizeof(bus), "%s/bus", w->root);
	for (int i = 0; i < WRITES && !err; i++) {
		int k = (i * 3 + w->id) % KEYS, v = w->id * 100000 + i;
		struct zk_txn *t = zk_txn_new();

		snprintf(path, sizeof(path), "%s/data/k%d", w->root, k);
		snprintf(val, sizeof(val), "%d", v);
		snprintf(msg, sizeof(msg), "k%d=%d", k, v);
		zk_txn_put(t, path, val, strlen(val), ZK_ANY_VERSION);
		zk_txn_publish(t, bus, msg, strlen(msg));
		err = zk_txn_commit(zk, t);
		zk_txn_free(t);
	}
	zk_close(zk);
	return err ? (void *)1 : NULL;
}

static void apply_msg(struct zk_sub *s, int err, const struct zk_msg *msg,
		      void *arg)
{
	struct replica *r = arg;
	char path[64];
	int k, v;

	(void)s;
	if (err || sscanf(msg->data, "k%d=%d", &k, &v) != 2 || k < 0 ||
	    k >= KEYS)
		return;
	snprintf(path, sizeof(path), "%s/data/k%d", r->root, k);
	pthread_mutex_lock(&r->lock);
	if (zk_snapshot_covers(r->snap, path, msg->zxid)) {
		r->covered++;
	} else {
		r->val[k] = v;
		r->applied++;
	}
	pthread_mutex_unlock(&r->lock);
}

/* Runs the recipe with `writers` writers busy while the snapshot is taken
 * (0: taken in a quiet moment, between two rounds of writes). */
static void snapshot_replay(const char *root, int writers)
{
	struct writer_arg wa[2] = {{root, 1}, {root, 2}};
	struct zk_snapshot *snap = NULL;
	struct replica r = {.root = root};
	char path[64], bus[64], data_root[64], **names;
	pthread_t th[2];
	struct zk_sub *sub;
	int64_t last = -1;
	struct zk *zk;
	int n, after = 0;
	void *ret;

	pthread_mutex_init(&r.lock, NULL);
	snprintf(bus, sizeof(bus), "%s/bus", root);
	snprintf(data_root, sizeof(data_root), "%s/data", root);
	assert_int_equal(open_session(&zk), 0);
	for (int k = 0; k < KEYS; k++) {
		snprintf(path, sizeof(path), "%s/data/k%d", root, k);
		assert_int_equal(zk_create(zk, path, "0", 1), 0);
	}
	if (!writers) {
		/* A first round, finished before the snapshot. */
		pthread_create(&th[0], NULL, writer, &wa[0]);
		pthread_join(th[0], &ret);
		assert_null(ret);
	}
	for (int i = 0; i < writers; i++)
		pthread_create(&th[i], NULL, writer, &wa[i]);
	if (writers) /* join once they are going */
		for (int i = 0; i < 200; i++) {
			assert_int_equal(zk_bus_last(zk, bus, &last), 0);
			if (last >= 20)
				break;
			usleep(2000);
		}
	assert_int_equal(zk_snapshot_take(zk, data_root, bus, &snap), 0);
	r.snap = snap;
	assert_int_equal(snap->n, KEYS + 1); /* the root and its keys */
	assert_string_equal(snap->recs[0].path, data_root);
	for (int i = 1; i < snap->n; i++) {
		int k = atoi(strrchr(snap->recs[i].path, '/') + 2);

		r.val[k] = atoi(snap->recs[i].data);
	}
	assert_int_equal(
		zk_bus_subscribe(zk, bus, snap->seq + 1, apply_msg, &r, &sub),
		0);
	if (!writers) {
		assert_true(snap->exact);
		pthread_create(&th[0], NULL, writer, &wa[1]);
		writers = 1;
	}
	for (int i = 0; i < writers; i++) {
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(zk_bus_last(zk, bus, &last), 0);
	for (int i = 0; i < 1500 && zk_sub_last(sub) < last; i++)
		usleep(10000);
	assert_int_equal(zk_sub_last(sub), last);

	/* The replica equals the records. */
	pthread_mutex_lock(&r.lock);
	for (int k = 0; k < KEYS; k++) {
		char *data;
		int len;

		snprintf(path, sizeof(path), "%s/data/k%d", root, k);
		assert_int_equal(zk_get(zk, path, &data, &len, NULL), 0);
		assert_int_equal(r.val[k], atoi(data));
		free(data);
	}
	pthread_mutex_unlock(&r.lock);

	/* Each message after the snapshot was handled once. An exact
	 * snapshot is the state after the messages up to its sequence. */
	assert_int_equal(zk_children(zk, bus, &names, &n), 0);
	{
		int state_at[KEYS] = {0};

		for (int i = 0; i < n; i++) {
			int64_t seq = atoll(names[i] + 2);
			char p[160], *data;
			int k, v, len;

			if (seq > snap->seq) {
				after++;
				continue;
			}
			snprintf(p, sizeof(p), "%s/%s", bus, names[i]);
			assert_int_equal(zk_get(zk, p, &data, &len, NULL), 0);
			assert_int_equal(sscanf(data, "k%d=%d", &k, &v), 2);
			state_at[k] = v;
			free(data);
		}
		assert_int_equal(r.applied + r.covered, after);
		for (int i = 1; i < snap->n && snap->exact; i++) {
			int k = atoi(strrchr(snap->recs[i].path, '/') + 2);

			assert_int_equal(atoi(snap->recs[i].data), state_at[k]);
		}
		if (snap->exact)
			assert_int_equal(r.covered, 0);
	}
	print_message("%s: snapshot %s at seq %lld of %d messages: %d "
		      "replayed, %d already covered\n",
		      root, snap->exact ? "exact" : "inexact",
		      (long long)snap->seq, n, r.applied, r.covered);
	zk_strings_free(names, n);
	zk_bus_unsubscribe(sub);
	zk_snapshot_free(snap);
	zk_close(zk);
}

static void test_snapshot_quiet(void **state)
{
	(void)state;
	snapshot_replay("/s1", 0);
}

static void test_snapshot_during_writes(void **state)
{
	(void)state;
	snapshot_replay("/s2", 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus_order_exactly_once),
		cmocka_unit_test(test_bus_from_seq_and_gc),
		cmocka_unit_test(test_snapshot_quiet),
		cmocka_unit_test(test_snapshot_during_writes),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
