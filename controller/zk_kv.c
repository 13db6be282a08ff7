// SPDX-License-Identifier: GPL-2.0-only
/* Versioned records and multi-record transactions on ZooKeeper. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "zk_priv.h"

int zk_get(struct zk *zk, const char *path, char **data, int *len,
	   struct zk_stat *st)
{
	struct Stat s;
	int err;

	*data = NULL;
	err = zk_check_path(path);
	if (err)
		return err;
	err = zk_get_raw(zk, path, NULL, NULL, data, len, &s);
	if (!err)
		zk_stat_from(st, &s);
	return err;
}

static int parent_of(const char *path, char *out)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash - path;

	if (n == 0)
		return -ENOENT; /* the root always exists */
	memcpy(out, path, n);
	out[n] = '\0';
	return 0;
}

/* Creates one node; on a missing parent, makes the parents and retries. */
int zk_create_node(struct zk *zk, const char *path, const void *data, int len,
		   int mode, char *buf, int buflen)
{
	char parent[ZK_PATH_MAX];
	int rc, err;

	for (int tries = 0;; tries++) {
		err = zk_ready(zk);
		if (err)
			return err;
		rc = zoo_create(zk->zh, path, data, data ? len : -1,
				&ZOO_OPEN_ACL_UNSAFE, mode, buf, buflen);
		if (rc != ZNONODE || tries)
			return zk_err(rc);
		if (parent_of(path, parent))
			return -ENOENT;
		err = zk_mkdirs(zk, parent);
		if (err)
			return err;
	}
}

int zk_mkdirs(struct zk *zk, const char *path)
{
	int err = zk_check_path(path);

	if (err)
		return err;
	if (!strcmp(path, "/"))
		return 0;
	err = zk_create_node(zk, path, NULL, 0, ZOO_PERSISTENT, NULL, 0);
	return err == -EEXIST ? 0 : err;
}

int zk_create(struct zk *zk, const char *path, const void *data, int len)
{
	int err = zk_check_path(path);

	if (!err)
		err = zk_check_len(len);
	if (err)
		return err;
	return zk_create_node(zk, path, data ? data : "", len, ZOO_PERSISTENT,
			      NULL, 0);
}

int zk_put(struct zk *zk, const char *path, const void *data, int len,
	   int version, int *new_version)
{
	struct Stat st;
	int err = zk_check_path(path);

	if (!err)
		err = zk_check_len(len);
	if (!err)
		err = zk_ready(zk);
	if (err)
		return err;
	err = zk_err(
		zoo_set2(zk->zh, path, data ? data : "", len, version, &st));
	if (!err && new_version)
		*new_version = st.version;
	return err;
}

int zk_delete(struct zk *zk, const char *path, int version)
{
	int err = zk_check_path(path);

	if (!err)
		err = zk_ready(zk);
	if (err)
		return err;
	return zk_err(zoo_delete(zk->zh, path, version));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int zk_children(struct zk *zk, const char *path, char ***names, int *n)
{
	struct String_vector sv;
	struct Stat st;
	char **out = NULL;
	int err, i;

	*names = NULL;
	*n = 0;
	err = zk_check_path(path);
	if (!err)
		err = zk_children_raw(zk, path, NULL, NULL, &sv, &st);
	if (err)
		return err;
	if (sv.count) {
		out = calloc(sv.count, sizeof(*out));
		if (!out) {
			err = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < sv.count; i++) {
		out[i] = strdup(sv.data[i]);
		if (!out[i]) {
			zk_strings_free(out, i);
			out = NULL;
			err = -ENOMEM;
			goto out;
		}
	}
	qsort(out, sv.count, sizeof(*out), cmp_str);
	*names = out;
	*n = sv.count;
out:
	deallocate_String_vector(&sv);
	return err;
}

void zk_strings_free(char **names, int n)
{
	for (int i = 0; i < n && names; i++)
		free(names[i]);
	free(names);
}

/* --- transactions ---------------------------------------------------- */

enum txn_type { TXN_CREATE, TXN_PUT, TXN_DELETE, TXN_CHECK, TXN_PUBLISH };

struct txn_op {
	enum txn_type type;
	char *path;
	char *data;
	int len;
	int version;
	/* Results. */
	struct Stat st;
	char *created; /* path buffer of creates */
	int new_version;
	int64_t seq;
};

struct zk_txn {
	struct txn_op *ops;
	int n, cap;
	long bytes;
	int failed;
};

struct zk_txn *zk_txn_new(void)
{
	struct zk_txn *t = calloc(1, sizeof(*t));

	if (t)
		t->failed = -1;
	return t;
}

void zk_txn_free(struct zk_txn *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n; i++) {
		free(t->ops[i].path);
		free(t->ops[i].data);
		free(t->ops[i].created);
	}
	free(t->ops);
	free(t);
}

int zk_txn_count(const struct zk_txn *t)
{
	return t->n;
}

static int txn_add(struct zk_txn *t, enum txn_type type, const char *path,
		   const void *data, int len, int version)
{
	struct txn_op *op;
	int err;

	if (!t)
		return -EINVAL;
	err = zk_check_path(path);
	if (!err)
		err = zk_check_len(len);
	if (err)
		return err;
	if (t->bytes + len + (long)strlen(path) > ZK_TXN_MAX)
		return -EMSGSIZE;
	if (t->n == t->cap) {
		int cap = t->cap ? 2 * t->cap : 8;
		struct txn_op *ops = realloc(t->ops, cap * sizeof(*ops));

		if (!ops)
			return -ENOMEM;
		t->ops = ops;
		t->cap = cap;
	}
	op = &t->ops[t->n];
	memset(op, 0, sizeof(*op));
	op->type = type;
	op->len = len;
	op->version = version;
	op->seq = -1;
	op->new_version = -1;
	if (type == TXN_PUBLISH) {
		if (asprintf(&op->path, "%s/m-", path) < 0)
			op->path = NULL;
	} else {
		op->path = strdup(path);
	}
	op->data = malloc(len + 1);
	if (type == TXN_CREATE || type == TXN_PUBLISH)
		op->created = malloc(ZK_PATH_MAX);
	if (!op->path || !op->data ||
	    ((type == TXN_CREATE || type == TXN_PUBLISH) && !op->created)) {
		free(op->path);
		free(op->data);
		free(op->created);
		return -ENOMEM;
	}
	if (len)
		memcpy(op->data, data, len);
	op->data[len] = '\0';
	t->bytes += len + strlen(path);
	return t->n++;
}

int zk_txn_create(struct zk_txn *t, const char *path, const void *data, int len)
{
	return txn_add(t, TXN_CREATE, path, data, len, 0);
}

int zk_txn_put(struct zk_txn *t, const char *path, const void *data, int len,
	       int version)
{
	return txn_add(t, TXN_PUT, path, data, len, version);
}

int zk_txn_delete(struct zk_txn *t, const char *path, int version)
{
	return txn_add(t, TXN_DELETE, path, NULL, 0, version);
}

int zk_txn_check(struct zk_txn *t, const char *path, int version)
{
	return txn_add(t, TXN_CHECK, path, NULL, 0, version);
}

int zk_txn_publish(struct zk_txn *t, const char *chan, const void *data,
		   int len)
{
	return txn_add(t, TXN_PUBLISH, chan, data, len, 0);
}

int zk_txn_failed_op(const struct zk_txn *t)
{
	return t->failed;
}

int zk_txn_version(const struct zk_txn *t, int op)
{
	if (op < 0 || op >= t->n)
		return -EINVAL;
	return t->ops[op].new_version;
}

int64_t zk_txn_seq(const struct zk_txn *t, int op)
{
	if (op < 0 || op >= t->n)
		return -EINVAL;
	return t->ops[op].seq;
}

int64_t zk_txn_zxid(const struct zk_txn *t, int op)
{
	if (op < 0 || op >= t->n || t->ops[op].type != TXN_PUT)
		return -EINVAL;
	return t->ops[op].st.mzxid;
}

static void txn_init_ops(struct zk_txn *t, zoo_op_t *zops)
{
	for (int i = 0; i < t->n; i++) {
		struct txn_op *op = &t->ops[i];

		switch (op->type) {
		case TXN_CREATE:
		case TXN_PUBLISH:
			zoo_create_op_init(&zops[i], op->path, op->data,
					   op->len, &ZOO_OPEN_ACL_UNSAFE,
					   op->type == TXN_PUBLISH
						   ? ZOO_PERSISTENT_SEQUENTIAL
						   : ZOO_PERSISTENT,
					   op->created, ZK_PATH_MAX);
			break;
		case TXN_PUT:
			zoo_set_op_init(&zops[i], op->path, op->data, op->len,
					op->version, &op->st);
			break;
		case TXN_DELETE:
			zoo_delete_op_init(&zops[i], op->path, op->version);
			break;
		case TXN_CHECK:
			zoo_check_op_init(&zops[i], op->path, op->version);
			break;
		}
	}
}

/* Makes the parents of every created node (the channel of a publish). */
static int txn_make_parents(struct zk *zk, struct zk_txn *t)
{
	char parent[ZK_PATH_MAX];
	int err;

	for (int i = 0; i < t->n; i++) {
		if (t->ops[i].type != TXN_CREATE &&
		    t->ops[i].type != TXN_PUBLISH)
			continue;
		if (parent_of(t->ops[i].path, parent))
			continue;
		err = zk_mkdirs(zk, parent);
		if (err)
			return err;
	}
	return 0;
}

int zk_txn_commit(struct zk *zk, struct zk_txn *t)
{
	zoo_op_result_t *res = NULL;
	zoo_op_t *zops = NULL;
	int err = 0, rc;

	t->failed = -1;
	if (!t->n)
		return 0;
	zops = calloc(t->n, sizeof(*zops));
	res = calloc(t->n, sizeof(*res));
	if (!zops || !res) {
		err = -ENOMEM;
		goto out;
	}
	txn_init_ops(t, zops);
	for (int tries = 0;; tries++) {
		err = zk_ready(zk);
		if (err)
			goto out;
		memset(res, 0, t->n * sizeof(*res));
		rc = zoo_multi(zk->zh, t->n, zops, res);
		t->failed = -1;
		if (rc == ZOK)
			break;
		for (int i = 0; i < t->n; i++)
			if (res[i].err != ZOK &&
			    res[i].err != ZRUNTIMEINCONSISTENCY) {
				t->failed = i;
				rc = res[i].err;
				break;
			}
		err = zk_err(rc);
		if (err == -ENOENT && !tries && t->failed >= 0 &&
		    (t->ops[t->failed].type == TXN_CREATE ||
		     t->ops[t->failed].type == TXN_PUBLISH)) {
			err = txn_make_parents(zk, t);
			if (err)
				goto out;
			continue;
		}
		goto out;
	}
	for (int i = 0; i < t->n; i++) {
		struct txn_op *op = &t->ops[i];

		if (op->type == TXN_PUT)
			op->new_version = op->st.version;
		else if (op->type == TXN_CREATE)
			op->new_version = 0;
		else if (op->type == TXN_PUBLISH)
			op->seq = zk_seq_of(strrchr(op->created, '/') + 1);
	}
out:
	free(zops);
	free(res);
	return err;
}
