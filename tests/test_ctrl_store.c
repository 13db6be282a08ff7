// SPDX-License-Identifier: GPL-2.0-only
/* The store: conformance cases that every backend must pass (commits,
 * version checks, listing, the change feed, recovery after a restart), run
 * here on the embedded store and by test_ctrl_zk.c, which includes this
 * file with STORE_CASES_ONLY, on ZooKeeper; then the embedded store's own
 * cases (a torn tail record, corruption, compaction). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "controller/store.h"
#include "controller/store_mem.h"

struct fix {
	char dir[64];
	char log[96];
	char root[64]; /* ZooKeeper: a fresh root per test */
	struct store *s;
};

/* Set by test_ctrl_zk.c's group setup: run the cases on ZooKeeper. */
static const char *zk_hosts;

static int open_store(struct fix *f)
{
	struct store_zk_opts o = {.hosts = zk_hosts, .root = f->root};

	if (zk_hosts)
		return store_zk_open(&o, &f->s);
	return store_embed_open(f->dir, NULL, &f->s);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	static int n;

	strcpy(f->dir, "/tmp/xvpc-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->log, sizeof(f->log), "%s/store.log", f->dir);
	snprintf(f->root, sizeof(f->root), "/t%d-%d", (int)getpid(), ++n);
	if (open_store(f))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	store_close(f->s);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void reopen(struct fix *f)
{
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(open_store(f), 0);
}

static int put(struct store *s, const char *k, const char *v, uint64_t expect)
{
	struct store_op op = {STORE_PUT, k, v, strlen(v), expect};

	return store_txn(s, &op, 1, NULL, NULL);
}

static void assert_val(struct store *s, const char *k, const char *want)
{
	char *v = NULL;

	assert_int_equal(store_get(s, k, &v, NULL), 0);
	assert_string_equal(v, want);
	free(v);
}

static void test_commit_and_checks(void **state)
{
	struct fix *f = *state;
	uint64_t ver, rev;
	size_t failed = 99;

	assert_int_equal(put(f->s, "a/1", "one", STORE_ABSENT), 0);
	assert_int_equal(put(f->s, "a/1", "again", STORE_ABSENT), -ECANCELED);
	assert_int_equal(store_get(f->s, "a/1", NULL, &ver), 0);
	assert_int_equal(put(f->s, "a/1", "two", ver), 0);
	assert_int_equal(put(f->s, "a/1", "stale", ver), -ECANCELED);
	assert_val(f->s, "a/1", "two");

	/* All or nothing: the second op fails, the first is not applied. */
	struct store_op ops[] = {
		{STORE_PUT, "a/2", "x", 1, STORE_ABSENT},
		{STORE_DEL, "a/missing", NULL, 0, STORE_ANY},
	};
	rev = store_revision(f->s);
	assert_int_equal(store_txn(f->s, ops, 2, NULL, &failed), -ECANCELED);
	assert_int_equal(failed, 1);
	assert_int_equal(store_get(f->s, "a/2", NULL, NULL), -ENOENT);
	assert_int_equal(store_revision(f->s), rev);

	struct store_op ok[] = {
		{STORE_PUT, "a/2", "x", 1, STORE_ABSENT},
		{STORE_CHECK, "a/1", NULL, 0, ver + 1},
		{STORE_PUT, "b/1", "y", 1, STORE_ANY},
	};
	assert_int_equal(store_get(f->s, "a/1", NULL, &ver), 0);
	ok[1].expect = ver;
	assert_int_equal(store_txn(f->s, ok, 3, &rev, NULL), 0);
	assert_int_equal(rev, store_revision(f->s));
}

struct keys {
	char k[8][16];
	int n;
};

static int collect(const struct store_rec *r, void *arg)
{
	struct keys *k = arg;

	snprintf(k->k[k->n++], 16, "%s", r->key);
	return k->n == 8;
}

static void test_list_prefix(void **state)
{
	struct fix *f = *state;
	struct keys k = {0};

	assert_int_equal(put(f->s, "p/03", "c", STORE_ANY), 0);
	assert_int_equal(put(f->s, "p/01", "a", STORE_ANY), 0);
	assert_int_equal(put(f->s, "q/01", "z", STORE_ANY), 0);
	assert_int_equal(put(f->s, "p/02", "b", STORE_ANY), 0);
	assert_int_equal(put(f->s, "o/09", "z", STORE_ANY), 0);
	assert_int_equal(store_list(f->s, "p/", NULL, 0, collect, &k), 0);
	assert_int_equal(k.n, 3);
	assert_string_equal(k.k[0], "p/01");
	assert_string_equal(k.k[2], "p/03");
	k.n = 0;
	assert_int_equal(store_list(f->s, "p/", "p/01", 1, collect, &k), 0);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.k[0], "p/02");
}

struct feed {
	int n;
	char keys[8][32];
	int deleted[8];
	uint32_t vpc[8];
};

static int feed_cb(const struct store_change *c, void *arg)
{
	struct feed *fd = arg;

	snprintf(fd->keys[fd->n], sizeof(fd->keys[0]), "%s", c->key);
	fd->vpc[fd->n] = c->vpc;
	fd->deleted[fd->n++] = !c->new_val;
	return 0;
}

static void test_change_feed(void **state)
{
	struct fix *f = *state;
	struct feed fd = {0};
	uint64_t rev0 = store_revision(f->s), r1, r2, r3, upto, ver;
	struct store_op del = {STORE_DEL, "k1", NULL, 0, STORE_ANY};
	struct store_op p1 = {STORE_PUT, "k1", "v", 1, STORE_ANY};
	struct store_op p2 = {STORE_PUT, "k2", "v", 1, STORE_ANY};

	/* Revisions grow with every commit (not necessarily by one), and
	 * a record's version is the revision that wrote it. */
	assert_int_equal(store_txn(f->s, &p1, 1, &r1, NULL), 0);
	assert_int_equal(store_txn(f->s, &p2, 1, &r2, NULL), 0);
	assert_int_equal(store_get(f->s, "k2", NULL, &ver), 0);
	assert_int_equal(ver, r2);
	assert_int_equal(store_txn(f->s, &del, 1, &r3, NULL), 0);
	assert_true(rev0 < r1 && r1 < r2 && r2 < r3);
	assert_int_equal(store_revision(f->s), r3);
	assert_int_equal(store_changes(f->s, rev0, feed_cb, &fd, &upto), 0);
	assert_int_equal(upto, r3);
	assert_int_equal(fd.n, 3);
	assert_string_equal(fd.keys[2], "k1");
	assert_true(fd.deleted[2]);
	fd.n = 0;
	assert_int_equal(store_changes(f->s, r2, feed_cb, &fd, &upto), 0);
	assert_int_equal(fd.n, 1);
	/* Waiting returns at once when the revision is already past. */
	assert_int_equal(store_wait(f->s, rev0, 5000), r3);
	assert_int_equal(store_wait(f->s, r3, 10), r3);
	/* After a restart the feed starts over: older revisions are gone. */
	reopen(f);
	assert_int_equal(store_revision(f->s), r3);
	assert_int_equal(store_changes(f->s, rev0, feed_cb, &fd, &upto),
			 -ERANGE);
	assert_int_equal(store_changes(f->s, r3, feed_cb, &fd, &upto), 0);
}

static bool has_key(struct store *s, const char *k)
{
	return store_get(s, k, NULL, NULL) == 0;
}

/* A port record brings its index records (tp/, vp/, np/) with it: kept by
 * the copy, moved and deleted with the port, in the change feed, rebuilt
 * on reopening; a transaction may not write them. */
static void test_derived_indexes(void **state)
{
	struct fix *f = *state;
	struct store_op bad = {STORE_PUT, "np/n1/0000000007", "{}", 2,
			       STORE_ANY};
	struct store_op del = {STORE_DEL, "port/0000000007", NULL, 0,
			       STORE_ANY};
	const char *p1 = "{\"id\":7,\"tenant\":3,\"vpc\":5,\"node\":\"n1\"}";
	const char *p2 = "{\"id\":7,\"tenant\":3,\"vpc\":5,\"node\":\"n2\"}";
	const char *p3 = "{\"id\":7,\"tenant\":3,\"vpc\":5,\"node\":null}";
	struct feed fd = {0};
	uint64_t rev0, ver, pver, upto;
	bool np = false;

	assert_int_equal(store_txn(f->s, &bad, 1, NULL, NULL), -EINVAL);
	assert_false(has_key(f->s, "np/n1/0000000007"));
	rev0 = store_revision(f->s);
	assert_int_equal(put(f->s, "port/0000000007", p1, STORE_ABSENT), 0);
	assert_val(f->s, "tp/0000000003/0000000007", "{}");
	assert_val(f->s, "vp/0000000005/0000000007", "{}");
	assert_val(f->s, "np/n1/0000000007", "{\"vpc\":5}");
	assert_int_equal(store_get(f->s, "port/0000000007", NULL, &pver), 0);
	assert_int_equal(store_get(f->s, "np/n1/0000000007", NULL, &ver), 0);
	assert_int_equal(ver, pver);
	assert_int_equal(store_changes(f->s, rev0, feed_cb, &fd, &upto), 0);
	assert_int_equal(fd.n, 4);
	for (int i = 0; i < fd.n; i++) {
		np = np || !strcmp(fd.keys[i], "np/n1/0000000007");
		/* The feed notes a port's VPC (store_change.vpc). */
		assert_int_equal(fd.vpc[i],
				 strncmp(fd.keys[i], "port/", 5) ? 0 : 5);
	}
	assert_true(np);

	/* Moved to another node, unbound, bound again. */
	assert_int_equal(put(f->s, "port/0000000007", p2, STORE_ANY), 0);
	assert_false(has_key(f->s, "np/n1/0000000007"));
	assert_val(f->s, "np/n2/0000000007", "{\"vpc\":5}");
	assert_int_equal(put(f->s, "port/0000000007", p3, STORE_ANY), 0);
	assert_false(has_key(f->s, "np/n2/0000000007"));
	assert_true(has_key(f->s, "vp/0000000005/0000000007"));
	assert_int_equal(put(f->s, "port/0000000007", p1, STORE_ANY), 0);

	/* Any JSON spacing. */
	assert_int_equal(put(f->s, "port/0000000008",
			     "{ \"id\": 8, \"tenant\" : 3, \"vpc\": 5, "
			     "\"node\": \"n\\u0031\" }",
			     STORE_ABSENT),
			 0);
	assert_val(f->s, "np/n1/0000000008", "{\"vpc\":5}");
	assert_true(has_key(f->s, "tp/0000000003/0000000008"));

	/* Rebuilt from the port record on reopening. */
	reopen(f);
	assert_val(f->s, "np/n1/0000000007", "{\"vpc\":5}");
	assert_true(has_key(f->s, "tp/0000000003/0000000007"));

	assert_int_equal(store_txn(f->s, &del, 1, NULL, NULL), 0);
	assert_false(has_key(f->s, "tp/0000000003/0000000007"));
	assert_false(has_key(f->s, "vp/0000000005/0000000007"));
	assert_false(has_key(f->s, "np/n1/0000000007"));
	reopen(f);
	assert_false(has_key(f->s, "np/n1/0000000007"));
}

static void test_recover(void **state)
{
	struct fix *f = *state;
	struct store_op del = {STORE_DEL, "r/2", NULL, 0, STORE_ANY};
	uint64_t ver, ver2, rev;

	assert_int_equal(put(f->s, "r/1", "one", STORE_ABSENT), 0);
	assert_int_equal(put(f->s, "r/2", "two", STORE_ABSENT), 0);
	assert_int_equal(store_txn(f->s, &del, 1, NULL, NULL), 0);
	assert_int_equal(store_get(f->s, "r/1", NULL, &ver), 0);
	rev = store_revision(f->s);
	reopen(f);
	assert_int_equal(store_revision(f->s), rev);
	assert_val(f->s, "r/1", "one");
	assert_int_equal(store_get(f->s, "r/1", NULL, &ver2), 0);
	assert_int_equal(ver, ver2);
	assert_int_equal(store_get(f->s, "r/2", NULL, NULL), -ENOENT);
	/* The old version still guards the record after the restart. */
	assert_int_equal(put(f->s, "r/1", "changed", ver), 0);
	assert_int_equal(put(f->s, "r/1", "stale", ver), -ECANCELED);
}

#define CW_THREADS 8
#define CW_TXNS	   40

struct cw_arg {
	struct store *s;
	int id;
	int errors; /* failed checks inside the thread */
	uint64_t revs[CW_TXNS];
};

/* One writer: CW_TXNS commits, each creating its own record and raising
 * the shared counter with a version check (again on a conflict). */
static void *cw_main(void *p)
{
	struct cw_arg *a = p;
	char key[32], val[32], cval[32], *cur;
	uint64_t ver, got;

	for (int i = 0; i < CW_TXNS; i++) {
		struct store_op ops[2];
		int err;

		snprintf(key, sizeof(key), "cw/%d/%03d", a->id, i);
		snprintf(val, sizeof(val), "%d", i);
		do {
			cur = NULL;
			if (store_get(a->s, "cw-counter", &cur, &ver)) {
				a->errors++;
				return NULL;
			}
			snprintf(cval, sizeof(cval), "%ld",
				 strtol(cur, NULL, 10) + 1);
			free(cur);
			ops[0] = (struct store_op){STORE_PUT, "cw-counter",
						   cval, strlen(cval), ver};
			ops[1] = (struct store_op){STORE_PUT, key, val,
						   strlen(val), STORE_ABSENT};
			err = store_txn(a->s, ops, 2, &a->revs[i], NULL);
		} while (err == -ECANCELED);
		/* Acknowledged: this member reads it back at that version. */
		if (err || store_get(a->s, key, NULL, &got) ||
		    got != a->revs[i])
			a->errors++;
	}
	return NULL;
}

struct cw_feed {
	uint64_t last_rev;
	int n, out_of_order;
};

static int cw_feed_cb(const struct store_change *chg, void *arg)
{
	struct cw_feed *f = arg;

	if (chg->rev < f->last_rev)
		f->out_of_order++;
	f->last_rev = chg->rev;
	f->n++;
	return 0;
}

/* Concurrent writers (group commit, pipelined commits): every commit is
 * acknowledged once, read back by its writer, counted once in the shared
 * record and in the change feed, in revision order, and survives a
 * restart. */
static void test_concurrent_writers(void **state)
{
	struct fix *f = *state;
	struct cw_arg args[CW_THREADS];
	pthread_t th[CW_THREADS];
	struct cw_feed fd = {0};
	uint64_t rev0, upto;
	char want[32];

	assert_int_equal(put(f->s, "cw-counter", "0", STORE_ABSENT), 0);
	rev0 = store_revision(f->s);
	for (int t = 0; t < CW_THREADS; t++) {
		args[t] = (struct cw_arg){.s = f->s, .id = t};
		assert_int_equal(
			pthread_create(&th[t], NULL, cw_main, &args[t]), 0);
	}
	for (int t = 0; t < CW_THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < CW_THREADS; t++) {
		assert_int_equal(args[t].errors, 0);
		for (int i = 1; i < CW_TXNS; i++)
			assert_true(args[t].revs[i] > args[t].revs[i - 1]);
	}
	snprintf(want, sizeof(want), "%d", CW_THREADS * CW_TXNS);
	assert_val(f->s, "cw-counter", want);
	/* Each commit changed two records: the feed has each change once,
	 * in revision order, and covers the last commit. */
	assert_int_equal(store_changes(f->s, rev0, cw_feed_cb, &fd, &upto), 0);
	assert_int_equal(fd.n, 2 * CW_THREADS * CW_TXNS);
	assert_int_equal(fd.out_of_order, 0);
	assert_int_equal(upto, store_revision(f->s));
	reopen(f);
	assert_val(f->s, "cw-counter", want);
	for (int t = 0; t < CW_THREADS; t++) {
		char key[32];

		snprintf(key, sizeof(key), "cw/%d/%03d", t, CW_TXNS - 1);
		assert_int_equal(store_get(f->s, key, NULL, NULL), 0);
	}
}

/* The cases every backend passes. */
static const struct CMUnitTest store_cases[] = {
	cmocka_unit_test_setup_teardown(test_commit_and_checks, setup,
					teardown),
	cmocka_unit_test_setup_teardown(test_list_prefix, setup, teardown),
	cmocka_unit_test_setup_teardown(test_change_feed, setup, teardown),
	cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
	cmocka_unit_test_setup_teardown(test_derived_indexes, setup, teardown),
	cmocka_unit_test_setup_teardown(test_concurrent_writers, setup,
					teardown),
};

#ifndef STORE_CASES_ONLY
static void test_locked(void **state)
{
	struct fix *f = *state;
	struct store *other = NULL;

	/* A second process cannot open the same directory. */
	assert_int_equal(store_embed_open(f->dir, NULL, &other), -EBUSY);
}

static void test_torn_tail(void **state)
{
	struct fix *f = *state;
	size_t good;
	int fd;

	assert_int_equal(put(f->s, "t/1", "kept", STORE_ABSENT), 0);
	good = store_embed_log_size(f->s);
	assert_int_equal(put(f->s, "t/2", "torn", STORE_ABSENT), 0);
	store_close(f->s);
	f->s = NULL;
	/* Cut the last record in the middle, as a crash during write would. */
	assert_int_equal(truncate(f->log, good + 11), 0);
	assert_int_equal(store_embed_open(f->dir, NULL, &f->s), 0);
	assert_val(f->s, "t/1", "kept");
	assert_int_equal(store_get(f->s, "t/2", NULL, NULL), -ENOENT);
	assert_int_equal(store_embed_log_size(f->s), good);
	/* Appending after the cut works and survives another restart. */
	assert_int_equal(put(f->s, "t/3", "after", STORE_ABSENT), 0);
	reopen(f);
	assert_val(f->s, "t/3", "after");

	/* A corrupted final record (complete length, bad bytes) is cut too. */
	good = store_embed_log_size(f->s);
	assert_int_equal(put(f->s, "t/4", "flipped", STORE_ABSENT), 0);
	store_close(f->s);
	f->s = NULL;
	fd = open(f->log, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, good + 12), 1);
	close(fd);
	assert_int_equal(store_embed_open(f->dir, NULL, &f->s), 0);
	assert_int_equal(store_get(f->s, "t/4", NULL, NULL), -ENOENT);
	assert_val(f->s, "t/3", "after");
}

static void test_corrupt_middle_refused(void **state)
{
	struct fix *f = *state;
	size_t first;
	int fd;

	assert_int_equal(put(f->s, "c/1", "one", STORE_ABSENT), 0);
	first = store_embed_log_size(f->s);
	assert_int_equal(put(f->s, "c/2", "two", STORE_ABSENT), 0);
	assert_int_equal(put(f->s, "c/3", "three", STORE_ABSENT), 0);
	store_close(f->s);
	f->s = NULL;
	fd = open(f->log, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, first + 12), 1);
	close(fd);
	assert_int_equal(store_embed_open(f->dir, NULL, &f->s), -EBADMSG);
}

static void test_compaction(void **state)
{
	struct fix *f = *state;
	struct store_embed_opts o = {.compact_bytes = 4096};
	char val[64];
	size_t before;
	uint64_t rev;

	store_close(f->s);
	assert_int_equal(store_embed_open(f->dir, &o, &f->s), 0);
	for (int i = 0; i < 500; i++) {
		snprintf(val, sizeof(val), "value-%d", i);
		assert_int_equal(put(f->s, "hot", val, STORE_ANY), 0);
	}
	assert_int_equal(put(f->s, "cold", "stays", STORE_ANY), 0);
	/* 500 overwrites of one key stay far below 500 records. */
	assert_true(store_embed_log_size(f->s) < 8192);
	before = store_embed_log_size(f->s);
	assert_int_equal(store_embed_compact(f->s), 0);
	assert_true(store_embed_log_size(f->s) <= before);
	rev = store_revision(f->s);
	assert_int_equal(put(f->s, "after", "compaction", STORE_ANY), 0);
	reopen(f);
	assert_int_equal(store_revision(f->s), rev + 1);
	assert_val(f->s, "hot", "value-499");
	assert_val(f->s, "cold", "stays");
	assert_val(f->s, "after", "compaction");
}

/* The copy's map: 5000 keys put, replaced and deleted at random against a
 * plain array; exact lookups (hash index, grown past its first size) and
 * the ordered walk agree with it at every step's end. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_mem_map_index(void **state)
{
	enum { N = 5000, STEPS = 40000 };
	static char keys[N][32];
	static bool live[N];
	static char *sorted[N];
	struct mem_map m;
	uint64_t rnd = 42;
	size_t n_live = 0, k = 0;

	(void)state;
	assert_int_equal(mem_map_init(&m), 0);
	for (int i = 0; i < N; i++)
		snprintf(keys[i], sizeof(keys[i]), "ip/%010u/%u", i % 7, i);
	for (int step = 0; step < STEPS; step++) {
		int i;

		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		i = (rnd >> 33) % N;
		if ((rnd >> 20) % 3) {
			char *v = mem_dup(keys[i], strlen(keys[i]));

			assert_non_null(
				mem_map_put(&m, keys[i], v, strlen(v), step));
			n_live += !live[i];
			live[i] = true;
		} else {
			mem_map_del(&m, keys[i]);
			n_live -= live[i];
			live[i] = false;
		}
	}
	assert_int_equal(m.n, n_live);
	assert_true(m.n_buckets >= 2048); /* grew */
	for (int i = 0; i < N; i++) {
		struct mem_rec *r = mem_map_find(&m, keys[i]);

		assert_int_equal(r != NULL, live[i]);
		if (r)
			assert_string_equal(r->val, keys[i]);
		if (live[i])
			sorted[k++] = keys[i];
	}
	qsort(sorted, k, sizeof(sorted[0]), cmp_str);
	k = 0;
	for (struct mem_rec *r = mem_map_first(&m); r; r = r->next[0])
		assert_string_equal(r->key, sorted[k++]);
	assert_int_equal(k, n_live);
	mem_map_clear(&m);
	assert_null(mem_map_find(&m, keys[0]));
	assert_non_null(mem_map_put(&m, "a", mem_dup("1", 1), 1, 1));
	assert_non_null(mem_map_find(&m, "a"));
	mem_map_fini(&m);
}

/* ---- the feed's scope index ---------------------------------------- */

struct walked {
	uint64_t rev[256];
	char key[256][48];
	size_t n;
};

static int walked_cb(const struct store_change *c, void *arg)
{
	struct walked *w = arg;

	assert_true(w->n < 256);
	w->rev[w->n] = c->rev;
	snprintf(w->key[w->n++], sizeof(w->key[0]), "%s", c->key);
	return 0;
}

/* The scope rule of store.h, for the reference walk. */
static bool in_scope(const struct store_change *c, const struct store_scope *sc)
{
	size_t nl = sc->node ? strlen(sc->node) : 0;

	if (c->vpc) {
		for (size_t i = 0; i < sc->n_vpcs; i++)
			if (sc->vpcs[i] == c->vpc)
				return true;
		return false;
	}
	if (!strncmp(c->key, "np/", 3))
		return sc->node && !strncmp(c->key + 3, sc->node, nl) &&
		       c->key[3 + nl] == '/';
	return !strncmp(c->key, "node/", 5) || !strncmp(c->key, "lbp/", 4) ||
	       !strncmp(c->key, "gw/", 3) || !strncmp(c->key, "vpc/", 4) ||
	       !strncmp(c->key, "subnet/", 7) || !strncmp(c->key, "port/", 5) ||
	       !strncmp(c->key, "lb/", 3) || !strncmp(c->key, "lbh/", 4);
}

struct ref_walk {
	struct walked w;
	const struct store_scope *sc;
	size_t others;
};

static int ref_cb(const struct store_change *c, void *arg)
{
	struct ref_walk *r = arg;

	if (in_scope(c, r->sc))
		return walked_cb(c, &r->w);
	r->others += c->vpc != 0;
	return 0;
}

/* Random changes of every kind of record into a small feed (it wraps,
 * scopes come and go): a scoped walk from any revision returns exactly
 * what the full walk does with the scope rule applied, in order, and
 * counts the other VPCs' changes it left out. */
static void test_feed_scopes(void **state)
{
	static const char *const nodes[] = {"n1", "n2", "n10", "n1x"};
	struct mem_feed f;
	uint64_t rnd = 7, rev = 0;

	(void)state;
	assert_int_equal(mem_feed_init(&f, 200, 0), 0);
	for (int step = 0; step < 20000; step++) {
		char key[64], val[64];
		uint32_t vpc, id;
		const char *node;

		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		vpc = (rnd >> 40) % 300 + 1;
		id = (rnd >> 20) % 50;
		node = nodes[(rnd >> 52) % 4];
		snprintf(val, sizeof(val), "{\"vpc\":%u,\"id\":%u}", vpc, vpc);
		switch ((rnd >> 33) % 10) {
		case 8:
			snprintf(key, sizeof(key), "sip/%u/%u", vpc, id);
			break;
		case 9:
			snprintf(key, sizeof(key), "lbp/%u", id);
			break;
		case 0:
			snprintf(key, sizeof(key), "port/%u", id);
			break;
		case 1:
			snprintf(key, sizeof(key), "vpc/%u", vpc);
			break;
		case 2:
			snprintf(key, sizeof(key), "np/%s/%u", node, id);
			break;
		case 3:
			snprintf(key, sizeof(key), "gw/%s/%u", node, vpc);
			break;
		case 4:
			snprintf(key, sizeof(key), "vp/%010u/%u", vpc, id);
			break;
		case 5:
			snprintf(key, sizeof(key), "node/%s", node);
			break;
		case 6:
			snprintf(key, sizeof(key), "lbh/%u/x", id);
			break;
		default:
			snprintf(key, sizeof(key), "subnet/%u", id);
			break;
		}
		if (!(step % 3))
			rev++;
		mem_feed_push(&f, rev + 1, key, step % 5 ? val : NULL, val);
		if (step % 97)
			continue;
		for (uint64_t since = f.base; since <= rev + 1; since += 3) {
			uint32_t vpcs[3] = {vpc, (vpc * 7) % 300 + 1, vpc};
			struct store_scope sc = {vpcs, step % 2 ? 3 : 1,
						 step % 4 ? node : NULL, 0};
			struct ref_walk r = {.sc = &sc};
			struct walked w = {0};
			uint64_t upto;

			assert_int_equal(mem_feed_walk(&f, since, rev + 1,
						       ref_cb, &r, &upto),
					 0);
			assert_int_equal(
				mem_feed_walk_scoped(&f, since, rev + 1, &sc,
						     walked_cb, &w, &upto),
				0);
			assert_int_equal(w.n, r.w.n);
			for (size_t i = 0; i < w.n; i++) {
				assert_int_equal(w.rev[i], r.w.rev[i]);
				assert_string_equal(w.key[i], r.w.key[i]);
			}
			assert_int_equal(sc.others, r.others);
		}
	}
	assert_int_equal(mem_feed_walk_scoped(&f, f.base - 1, rev + 1,
					      &(struct store_scope){0},
					      walked_cb, NULL, NULL),
			 -ERANGE);
	mem_feed_reset(&f, rev + 1);
	assert_int_equal(mem_feed_walk_scoped(&f, rev + 1, rev + 1,
					      &(struct store_scope){0},
					      walked_cb, NULL, NULL),
			 0);
	mem_feed_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feed_scopes),
		cmocka_unit_test(test_mem_map_index),
		cmocka_unit_test_setup_teardown(test_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_middle_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup,
						teardown),
	};

	int fails = cmocka_run_group_tests_name("store conformance, embedded",
						store_cases, NULL, NULL);

	return fails +
	       cmocka_run_group_tests_name("embedded store", tests, NULL, NULL);
}
#endif
