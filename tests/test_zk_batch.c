// SPDX-License-Identifier: GPL-2.0-only
/* Group commit of the ZooKeeper store (store_zk.c), against one real
 * server (zk_harness), with two members on one root:
 *   - many writer threads: every acknowledged write is there exactly once,
 *     on both members, each writer's revisions grow, a shared counter
 *     updated with version checks loses no increment, and both members
 *     list the same changes at the same revisions;
 *   - one batch (made deterministic by pausing the committer) holding two
 *     conflicting creations and a stale version check: the first writer
 *     wins, the others get -ECANCELED with the index of their failing op,
 *     the rest of the batch commits at one revision;
 *   - a batch whose multi ZooKeeper refuses (the stamp node was removed
 *     behind the store's back) falls back to one commit at a time and
 *     loses nothing;
 *   - check elision: a member that wrote last sends its next batch
 *     without record checks (the stamp's version stands for them); once
 *     the other member has written, that batch is refused on the stamp
 *     and sent again with its checks, so a stale check still fails. */
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

#include "controller/store.h"
#include "controller/zk.h"
#include "log.h"
#include "zk_harness.h"

#define WRITERS	    16
#define PER_WRITER  40
#define WAIT_ROUNDS 200 /* of 50 ms: bounded waits */

static struct zkh zkh;

static int group_setup(void **state)
{
	(void)state;
	xvpc_log_set_level(XVPC_LOG_WARN);
	return zkh_start(&zkh, 1) ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return zkh_stop(&zkh);
}

struct members {
	char root[64];
	struct store *a, *b;
};

static int open_member(const char *root, struct store **s)
{
	struct store_zk_opts o = {.hosts = zkh.hosts, .root = root};

	return store_zk_open(&o, s);
}

static int members_setup(void **state)
{
	static int n;
	struct members *m = calloc(1, sizeof(*m));

	if (!m)
		return -1;
	snprintf(m->root, sizeof(m->root), "/batch%d-%d", (int)getpid(), ++n);
	*state = m;
	if (open_member(m->root, &m->a) || open_member(m->root, &m->b))
		return -1;
	return 0;
}

static int members_teardown(void **state)
{
	struct members *m = *state;

	store_close(m->a);
	store_close(m->b);
	free(m);
	return 0;
}

static void sync_to(struct store *s, uint64_t rev)
{
	for (int i = 0; i < WAIT_ROUNDS && store_revision(s) < rev; i++)
		store_wait(s, store_revision(s), 50);
	assert_true(store_revision(s) >= rev);
}

/* ---- many writers ------------------------------------------------------ */

struct writer {
	struct store *s;
	int id;
	pthread_t th;
	int acked, bumps, errors;
	bool rev_order_ok;
	uint64_t last_rev;
};

/* Read-modify-write of the shared counter with a version check. */
static int bump(struct store *s, uint64_t *rev)
{
	for (int tries = 0; tries < 1000; tries++) {
		struct store_op op = {STORE_PUT, "ctr", NULL, 0, STORE_ABSENT};
		char *v = NULL, buf[32];
		uint64_t ver;
		int err = store_get(s, "ctr", &v, &ver);

		if (err && err != -ENOENT)
			return err;
		snprintf(buf, sizeof(buf), "%ld",
			 v ? strtol(v, NULL, 10) + 1 : 1);
		free(v);
		op.val = buf;
		op.len = strlen(buf);
		op.expect = err ? STORE_ABSENT : ver;
		err = store_txn(s, &op, 1, rev, NULL);
		if (err != -ECANCELED)
			return err;
	}
	return -EAGAIN;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	w->rev_order_ok = true;
	for (int i = 0; i < PER_WRITER; i++) {
		char key[64], val[64];
		uint64_t rev = 0;
		int err;

		snprintf(key, sizeof(key), "w/%02d/%03d", w->id, i);
		snprintf(val, sizeof(val), "writer %d write %d", w->id, i);
		struct store_op ops[2] = {
			{STORE_PUT, key, val, strlen(val), STORE_ABSENT},
			{STORE_CHECK, "anchor", NULL, 0, STORE_ANY},
		};

		err = store_txn(w->s, ops, 2, &rev, NULL);
		if (err) {
			w->errors++;
			continue;
		}
		w->acked++;
		if (rev <= w->last_rev)
			w->rev_order_ok = false;
		w->last_rev = rev;
		if (i % 4)
			continue;
		err = bump(w->s, &rev);
		if (err) {
			w->errors++;
			continue;
		}
		w->bumps++;
		if (rev <= w->last_rev)
			w->rev_order_ok = false;
		w->last_rev = rev;
	}
	return NULL;
}

struct listing {
	int n;
	bool ok; /* every value is the one its key was written with */
};

static int check_rec(const struct store_rec *r, void *arg)
{
	struct listing *l = arg;
	int id, i;
	char want[64];

	l->n++;
	if (sscanf(r->key, "w/%d/%d", &id, &i) != 2)
		l->ok = false;
	snprintf(want, sizeof(want), "writer %d write %d", id, i);
	if (strcmp(r->val, want))
		l->ok = false;
	return 0;
}

struct feed {
	uint64_t revs[4 * WRITERS * PER_WRITER];
	char keys[4 * WRITERS * PER_WRITER][16];
	int n;
};

static int feed_cb(const struct store_change *c, void *arg)
{
	struct feed *f = arg;

	if (f->n == (int)(sizeof(f->revs) / sizeof(f->revs[0])))
		return -E2BIG;
	f->revs[f->n] = c->rev;
	snprintf(f->keys[f->n], sizeof(f->keys[0]), "%s", c->key);
	f->n++;
	return 0;
}

static void test_many_writers(void **state)
{
	struct members *m = *state;
	static struct writer w[WRITERS];
	static struct feed fa, fb;
	struct listing la = {0, true}, lb = {0, true};
	uint64_t base, upto, max_rev = 0, batches, txns;
	int acked = 0, bumps = 0;
	char *v = NULL;

	base = store_revision(m->a);
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.s = m->a, .id = i};
		assert_int_equal(
			pthread_create(&w[i].th, NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].errors, 0);
		assert_true(w[i].rev_order_ok);
		acked += w[i].acked;
		bumps += w[i].bumps;
		if (w[i].last_rev > max_rev)
			max_rev = w[i].last_rev;
	}
	assert_int_equal(acked, WRITERS * PER_WRITER);

	/* Every acknowledged write once, with its value, on both members. */
	sync_to(m->b, max_rev);
	assert_int_equal(store_list(m->a, "w/", NULL, 0, check_rec, &la), 0);
	assert_int_equal(store_list(m->b, "w/", NULL, 0, check_rec, &lb), 0);
	assert_int_equal(la.n, acked);
	assert_int_equal(lb.n, acked);
	assert_true(la.ok && lb.ok);
	/* No increment lost. */
	assert_int_equal(store_get(m->b, "ctr", &v, NULL), 0);
	assert_int_equal(strtol(v, NULL, 10), bumps);
	free(v);

	/* Both members went through the same changes at the same
	 * revisions. */
	sync_to(m->b, store_revision(m->a));
	assert_int_equal(store_changes(m->a, base, feed_cb, &fa, &upto), 0);
	assert_int_equal(store_changes(m->b, base, feed_cb, &fb, &upto), 0);
	assert_int_equal(fa.n, acked + bumps);
	assert_int_equal(fa.n, fb.n);
	for (int i = 0; i < fa.n; i++) {
		assert_int_equal(fa.revs[i], fb.revs[i]);
		assert_string_equal(fa.keys[i], fb.keys[i]);
		if (i)
			assert_true(fa.revs[i] >= fa.revs[i - 1]);
	}
	store_zk_batch_stats(m->a, &batches, &txns);
	print_message("%d commits, %llu of them in %llu shared multis\n",
		      acked + bumps, (unsigned long long)txns,
		      (unsigned long long)batches);
}

/* ---- one batch, made deterministic --------------------------------------- */

struct one {
	struct store *s;
	const struct store_op *ops;
	size_t n;
	pthread_t th;
	int err;
	size_t failed;
	uint64_t rev;
};

static void *one_main(void *arg)
{
	struct one *o = arg;

	o->err = store_txn(o->s, o->ops, o->n, &o->rev, &o->failed);
	return NULL;
}

/* Starts the commits in order, each queued before the next starts, with
 * the committer paused; then lets them go out together. */
static void run_batch(struct store *s, struct one *o, int n)
{
	for (int i = 0; i < n; i++) {
		o[i].s = s;
		o[i].failed = SIZE_MAX;
		assert_int_equal(
			pthread_create(&o[i].th, NULL, one_main, &o[i]), 0);
		for (int r = 0;
		     r < WAIT_ROUNDS && store_zk_queued(s) < (size_t)i + 1; r++)
			usleep(10000);
		assert_int_equal(store_zk_queued(s), i + 1);
	}
	store_zk_pause(s, false);
	for (int i = 0; i < n; i++)
		pthread_join(o[i].th, NULL);
}

static void test_conflicts_in_one_batch(void **state)
{
	struct members *m = *state;
	uint64_t ver, b0, t0, b1, t1;
	struct one o[4] = {0};
	char *v = NULL;

	struct store_op seed = {STORE_PUT, "c/old", "v1", 2, STORE_ABSENT};

	assert_int_equal(store_txn(m->a, &seed, 1, NULL, NULL), 0);
	assert_int_equal(store_get(m->a, "c/old", NULL, &ver), 0);

	struct store_op first[] = {
		{STORE_PUT, "c/k", "one", 3, STORE_ABSENT},
		{STORE_PUT, "c/old", "v2", 2, ver},
	};
	struct store_op second[] = {
		{STORE_PUT, "c/other", "x", 1, STORE_ABSENT},
		{STORE_PUT, "c/k", "two", 3, STORE_ABSENT},
	};
	struct store_op stale[] = {
		{STORE_CHECK, "c/k", NULL, 0, STORE_ANY},
		{STORE_PUT, "c/z2", "y", 1, STORE_ABSENT},
		{STORE_PUT, "c/old", "v3", 2, ver}, /* written by first */
	};
	struct store_op third[] = {
		{STORE_PUT, "c/z", "z", 1, STORE_ABSENT},
		{STORE_DEL, "c/k", NULL, 0, STORE_ANY}, /* first's create */
	};

	o[0].ops = first;
	o[0].n = 2;
	o[1].ops = second;
	o[1].n = 2;
	o[2].ops = stale;
	o[2].n = 3;
	o[3].ops = third;
	o[3].n = 2;
	store_zk_batch_stats(m->a, &b0, &t0);
	store_zk_pause(m->a, true);
	run_batch(m->a, o, 4);
	store_zk_batch_stats(m->a, &b1, &t1);

	assert_int_equal(o[0].err, 0);
	assert_int_equal(o[1].err, -ECANCELED);
	assert_int_equal(o[1].failed, 1);
	assert_int_equal(o[2].err, -ECANCELED);
	assert_int_equal(o[2].failed, 2);
	assert_int_equal(o[3].err, 0);
	/* The two that committed went out in one multi, at one revision. */
	assert_int_equal(b1 - b0, 1);
	assert_int_equal(t1 - t0, 2);
	assert_int_equal(o[0].rev, o[3].rev);

	/* first, then third deleted first's record; nothing of the two
	 * that failed. Same on the other member. */
	sync_to(m->b, o[3].rev);
	for (int i = 0; i < 2; i++) {
		struct store *s = i ? m->b : m->a;

		assert_int_equal(store_get(s, "c/k", NULL, NULL), -ENOENT);
		assert_int_equal(store_get(s, "c/other", NULL, NULL), -ENOENT);
		assert_int_equal(store_get(s, "c/z2", NULL, NULL), -ENOENT);
		assert_int_equal(store_get(s, "c/z", NULL, NULL), 0);
		assert_int_equal(store_get(s, "c/old", &v, &ver), 0);
		assert_string_equal(v, "v2");
		assert_int_equal(ver, o[0].rev);
		free(v);
		v = NULL;
	}
	/* The records are usable afterwards with the versions read. */
	struct store_op again = {STORE_PUT, "c/old", "v4", 2, ver};

	assert_int_equal(store_txn(m->b, &again, 1, NULL, NULL), 0);
	struct store_op recreate = {STORE_PUT, "c/k", "three", 5, STORE_ABSENT};

	assert_int_equal(store_txn(m->a, &recreate, 1, NULL, NULL), 0);
}

/* ZooKeeper refuses the batch's multi: each commit is retried alone. */
static void test_refused_multi_falls_back(void **state)
{
	struct members *m = *state;
	struct store_op a = {STORE_PUT, "f/a", "a", 1, STORE_ABSENT};
	struct store_op b = {STORE_PUT, "f/b", "b", 1, STORE_ABSENT};
	struct store_op dup = {STORE_PUT, "f/a", "dup", 3, STORE_ABSENT};
	struct one o[3] = {{.ops = &a, .n = 1},
			   {.ops = &b, .n = 1},
			   {.ops = &dup, .n = 1}};
	struct zk_config cfg = {.hosts = zkh.hosts};
	uint64_t b0, t0, b1, t1;
	char stamp[128];
	struct zk *zk;

	assert_int_equal(zk_open(&cfg, &zk), 0);
	snprintf(stamp, sizeof(stamp), "%s/bus/store-stamp", m->root);
	assert_int_equal(zk_delete(zk, stamp, ZK_ANY_VERSION), 0);
	zk_close(zk);

	store_zk_batch_stats(m->a, &b0, &t0);
	store_zk_pause(m->a, true);
	run_batch(m->a, o, 3);
	store_zk_batch_stats(m->a, &b1, &t1);
	assert_int_equal(o[0].err, 0);
	assert_int_equal(o[1].err, 0);
	assert_int_equal(o[2].err, -ECANCELED);
	assert_int_equal(o[2].failed, 0);
	assert_int_equal(b1, b0); /* committed one by one */
	assert_true(o[1].rev > o[0].rev);
	sync_to(m->b, o[1].rev);
	assert_int_equal(store_get(m->b, "f/a", NULL, NULL), 0);
	assert_int_equal(store_get(m->b, "f/b", NULL, NULL), 0);
}

static void test_check_elision(void **state)
{
	struct members *m = *state;
	struct store_op seed = {STORE_PUT, "e/x", "1", 1, STORE_ANY};
	struct store_op bump_b = {STORE_PUT, "e/x", "2", 1, STORE_ANY};
	uint64_t ver, rev, e0, e1;
	struct store_op chk[2], y1 = {STORE_PUT, "e/y1", "y", 1, STORE_ABSENT};
	struct store_op z1 = {STORE_PUT, "e/z1", "z", 1, STORE_ABSENT};
	struct store_op z2 = {STORE_PUT, "e/z2", "z", 1, STORE_ABSENT};
	struct one o[2];

	/* a writes last: it knows the stamp's version. */
	assert_int_equal(store_txn(m->a, &seed, 1, &rev, NULL), 0);
	assert_int_equal(store_get(m->a, "e/x", NULL, &ver), 0);
	chk[0] = (struct store_op){STORE_CHECK, "e/x", NULL, 0, ver};
	chk[1] = y1;
	memset(o, 0, sizeof(o));
	o[0] = (struct one){.ops = chk, .n = 2};
	o[1] = (struct one){.ops = &z1, .n = 1};
	e0 = store_zk_elided(m->a);
	store_zk_pause(m->a, true);
	run_batch(m->a, o, 2);
	e1 = store_zk_elided(m->a);
	assert_int_equal(o[0].err, 0);
	assert_int_equal(o[1].err, 0);
	assert_int_equal(e1, e0 + 1);

	/* b changes e/x; a's next batch checks the version it read before:
	 * refused on the stamp (or already by a's copy), never committed. */
	sync_to(m->b, o[1].rev);
	assert_int_equal(store_txn(m->b, &bump_b, 1, NULL, NULL), 0);
	chk[1] = (struct store_op){STORE_PUT, "e/y2", "y", 1, STORE_ABSENT};
	o[0] = (struct one){.ops = chk, .n = 2};
	o[1] = (struct one){.ops = &z2, .n = 1};
	store_zk_pause(m->a, true);
	run_batch(m->a, o, 2);
	assert_int_equal(o[0].err, -ECANCELED);
	assert_int_equal(o[0].failed, 0);
	assert_int_equal(o[1].err, 0);
	sync_to(m->b, o[1].rev);
	for (int i = 0; i < 2; i++) {
		struct store *s = i ? m->b : m->a;
		char *v = NULL;

		assert_int_equal(store_get(s, "e/y2", NULL, NULL), -ENOENT);
		assert_int_equal(store_get(s, "e/z2", NULL, NULL), 0);
		assert_int_equal(store_get(s, "e/y1", NULL, NULL), 0);
		assert_int_equal(store_get(s, "e/x", &v, NULL), 0);
		assert_string_equal(v, "2");
		free(v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_check_elision, members_setup, members_teardown),
		cmocka_unit_test_setup_teardown(
			test_many_writers, members_setup, members_teardown),
		cmocka_unit_test_setup_teardown(test_conflicts_in_one_batch,
						members_setup,
						members_teardown),
		cmocka_unit_test_setup_teardown(test_refused_multi_falls_back,
						members_setup,
						members_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
