// SPDX-License-Identifier: GPL-2.0-only
/* Gateway designation of learn-mode VPCs (gateways.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateways.h"
#include "log.h"

struct gw_node {
	char name[GW_NAME];
	bool up;
	int load; /* gateway assignments over all learn-mode VPCs */
};

struct gw_view {
	struct gw_node *nodes;
	size_t n, cap;
	int err;
};

void gw_key(char *buf, size_t len, const char *node, uint32_t vpc)
{
	snprintf(buf, len, "gw/%s/%010u", node, vpc);
}

static struct gw_node *view_find(struct gw_view *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->nodes[i].name, name))
			return &v->nodes[i];
	return NULL;
}

static int add_node(const struct store_rec *r, void *arg)
{
	struct gw_view *v = arg;
	const char *name = r->key + strlen("node/");
	json_object *o, *st;
	struct gw_node *n;

	if (strlen(name) >= GW_NAME)
		return 0;
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 64;
		struct gw_node *p = realloc(v->nodes, cap * sizeof(*p));

		if (!p) {
			v->err = -ENOMEM;
			return 1;
		}
		v->nodes = p;
		v->cap = cap;
	}
	n = &v->nodes[v->n++];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	o = json_tokener_parse(r->val);
	n->up = o && !json_object_object_get_ex(o, "_deleting", NULL) &&
		!(json_object_object_get_ex(o, "status", &st) &&
		  !strcmp(json_object_get_string(st), "down"));
	json_object_put(o);
	return 0;
}

static bool is_learn(json_object *rec)
{
	json_object *m;

	return json_object_object_get_ex(rec, "mode", &m) &&
	       !strcmp(json_object_get_string(m), "learn");
}

static json_object *gateways_of(json_object *rec)
{
	json_object *g;

	if (!json_object_object_get_ex(rec, "gateways", &g) ||
	    !json_object_is_type(g, json_type_array))
		return NULL;
	return g;
}

static int count_vpc(const struct store_rec *r, void *arg)
{
	struct gw_view *v = arg;
	json_object *o = json_tokener_parse(r->val), *g;

	if (o && is_learn(o) && (g = gateways_of(o))) {
		for (size_t i = 0; i < json_object_array_length(g); i++) {
			struct gw_node *n = view_find(
				v, json_object_get_string(
					   json_object_array_get_idx(g, i)));

			if (n)
				n->load++;
		}
	}
	json_object_put(o);
	return 0;
}

int gw_view_load(struct store *s, struct gw_view **out)
{
	struct gw_view *v = calloc(1, sizeof(*v));
	int err;

	*out = NULL;
	if (!v)
		return -ENOMEM;
	err = store_list(s, "node/", NULL, 0, add_node, v);
	if (!err)
		err = v->err;
	if (!err)
		err = store_list(s, "vpc/", NULL, 0, count_vpc, v);
	if (err < 0) {
		gw_view_free(v);
		return err;
	}
	*out = v;
	return 0;
}

void gw_view_free(struct gw_view *v)
{
	if (!v)
		return;
	free(v->nodes);
	free(v);
}

/* Stable over runs and members: FNV-1a of the VPC id and the name. */
static uint32_t spread_hash(uint32_t vpc, const char *name)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 4; i++)
		h = (h ^ ((vpc >> (8 * i)) & 0xff)) * 16777619u;
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

static bool listed(char names[GW_MAX][GW_NAME], int count, const char *name)
{
	for (int i = 0; i < count; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

bool gw_pick(struct gw_view *v, uint32_t vpc, json_object *cur, int n,
	     char names[GW_MAX][GW_NAME], int *count)
{
	size_t ncur = cur ? json_object_array_length(cur) : 0;
	bool changed = false;

	if (n > GW_MAX)
		n = GW_MAX;
	*count = 0;
	for (size_t i = 0; i < ncur; i++) {
		const char *name = json_object_get_string(
			json_object_array_get_idx(cur, i));
		struct gw_node *g = name ? view_find(v, name) : NULL;

		if (!g || !g->up || *count >= n ||
		    listed(names, *count, name)) {
			if (g && g->load > 0)
				g->load--;
			changed = true;
			continue;
		}
		snprintf(names[(*count)++], GW_NAME, "%s", name);
	}
	while (*count < n) {
		struct gw_node *best = NULL;
		uint32_t best_h = 0;

		for (size_t i = 0; i < v->n; i++) {
			struct gw_node *g = &v->nodes[i];
			uint32_t h;

			if (!g->up || listed(names, *count, g->name))
				continue;
			h = spread_hash(vpc, g->name);
			if (!best || g->load < best->load ||
			    (g->load == best->load && h < best_h)) {
				best = g;
				best_h = h;
			}
		}
		if (!best)
			break;
		best->load++;
		snprintf(names[(*count)++], GW_NAME, "%s", best->name);
		changed = true;
	}
	return changed || (size_t)*count != ncur;
}

size_t gw_index_ops(struct store *s, uint32_t vpc, json_object *old,
		    char names[GW_MAX][GW_NAME], int count,
		    struct store_op *ops, char keys[][GW_NAME + 32])
{
	size_t nold = old ? json_object_array_length(old) : 0, n = 0;
	const char *prev[GW_MAX];
	int nprev = 0;

	for (size_t i = 0; i < nold && nprev < GW_MAX; i++) {
		const char *name = json_object_get_string(
			json_object_array_get_idx(old, i));
		bool dup = false;

		for (int j = 0; name && j < nprev; j++)
			dup |= !strcmp(prev[j], name);
		if (!name || dup || strlen(name) >= GW_NAME)
			continue;
		prev[nprev++] = name;
		if (listed(names, count, name))
			continue;
		gw_key(keys[n], GW_NAME + 32, name, vpc);
		/* A delete needs the record: skip one already gone. */
		if (store_get(s, keys[n], NULL, NULL))
			continue;
		ops[n] = (struct store_op){STORE_DEL, keys[n], NULL, 0,
					   STORE_ANY};
		n++;
	}
	for (int i = 0; i < count; i++) {
		bool had = false;

		for (int j = 0; j < nprev; j++)
			had |= !strcmp(prev[j], names[i]);
		if (had)
			continue;
		gw_key(keys[n], GW_NAME + 32, names[i], vpc);
		ops[n] = (struct store_op){STORE_PUT, keys[n], "{}", 2,
					   STORE_ANY};
		n++;
	}
	return n;
}

void gw_set(json_object *rec, char names[GW_MAX][GW_NAME], int count)
{
	json_object *arr = json_object_new_array();

	for (int i = 0; i < count; i++)
		json_object_array_add(arr, json_object_new_string(names[i]));
	json_object_object_add(rec, "gateways", arr);
}

struct vpc_keys {
	char **keys;
	size_t n, cap;
	int err;
};

static int note_learn_vpc(const struct store_rec *r, void *arg)
{
	struct vpc_keys *k = arg;

	/* A cheap filter before parsing: only learn-mode VPCs matter. */
	if (!strstr(r->val, "\"learn\""))
		return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 16;
		char **p = realloc(k->keys, cap * sizeof(*p));

		if (!p) {
			k->err = -ENOMEM;
			return 1;
		}
		k->keys = p;
		k->cap = cap;
	}
	k->keys[k->n] = strdup(r->key);
	if (!k->keys[k->n]) {
		k->err = -ENOMEM;
		return 1;
	}
	k->n++;
	return 0;
}

/* Re-designates one VPC if needed; 1 when it was rewritten. */
static int designate_one(struct store *s, struct gw_view *v, const char *key,
			 int n)
{
	char names[GW_MAX][GW_NAME], keys[2 * GW_MAX][GW_NAME + 32];
	struct store_op ops[1 + 2 * GW_MAX];
	json_object *o = NULL, *old;
	uint64_t ver;
	char *val = NULL;
	size_t nops;
	int count, err;

	err = store_get(s, key, &val, &ver);
	if (err)
		return err == -ENOENT ? 0 : err;
	o = json_tokener_parse(val);
	free(val);
	if (!o || !is_learn(o)) {
		json_object_put(o);
		return 0;
	}
	old = json_object_get(gateways_of(o));
	if (!gw_pick(v,
		     (uint32_t)json_object_get_int64(
			     json_object_object_get(o, "id")),
		     old, n, names, &count)) {
		err = 0;
		goto out;
	}
	nops = gw_index_ops(
		s, json_object_get_int64(json_object_object_get(o, "id")), old,
		names, count, ops + 1, keys);
	gw_set(o, names, count);
	val = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (!val) {
		err = -ENOMEM;
		goto out;
	}
	ops[0] = (struct store_op){STORE_PUT, key, val, strlen(val), ver};
	err = store_txn(s, ops, 1 + nops, NULL, NULL);
	free(val);
	if (!err) {
		pr_info("gateways: %s now has %d gateway%s", key, count,
			count == 1 ? "" : "s");
		err = 1;
	}
out:
	json_object_put(old);
	json_object_put(o);
	return err;
}

int gw_designate_all(struct store *s, int n, int *changed)
{
	struct vpc_keys k = {0};
	struct gw_view *v = NULL;
	int err, done = 0;

	if (changed)
		*changed = 0;
	err = store_list(s, "vpc/", NULL, 0, note_learn_vpc, &k);
	if (!err)
		err = k.err;
	if (!err && k.n)
		err = gw_view_load(s, &v);
	for (size_t i = 0; !err && i < k.n; i++) {
		int r = designate_one(s, v, k.keys[i], n);

		if (r > 0)
			done++;
		else if (r == -ECANCELED)
			pr_debug("gateways: %s changed meanwhile; next time",
				 k.keys[i]);
		else if (r < 0)
			err = r;
	}
	for (size_t i = 0; i < k.n; i++)
		free(k.keys[i]);
	free(k.keys);
	gw_view_free(v);
	if (changed)
		*changed = done;
	return err;
}
