// SPDX-License-Identifier: GPL-2.0-only
/* Ordered map of records and change feed, shared by the store backends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "store_mem.h"

char *mem_dup(const char *v, size_t len)
{
	char *p = malloc(len + 1);

	if (p) {
		memcpy(p, v, len);
		p[len] = '\0';
	}
	return p;
}

#define MEM_BUCKETS_MIN 1024

static uint64_t key_hash(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/* Twice the buckets once there are more records than buckets; a failed
 * allocation keeps the old table (longer chains, still correct). */
static void buckets_grow(struct mem_map *m)
{
	size_t nb = m->n_buckets * 2;
	struct mem_rec **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct mem_rec *r = m->buckets[i], *next;

		for (; r; r = next) {
			next = r->hnext;
			r->hnext = b[r->hash & (nb - 1)];
			b[r->hash & (nb - 1)] = r;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = nb;
}

static struct mem_rec **bucket_of(const struct mem_map *m, uint64_t h)
{
	return &m->buckets[h & (m->n_buckets - 1)];
}

static void hash_unlink(struct mem_map *m, struct mem_rec *r)
{
	struct mem_rec **pp = bucket_of(m, r->hash);

	while (*pp != r)
		pp = &(*pp)->hnext;
	*pp = r->hnext;
}

int mem_map_init(struct mem_map *m)
{
	memset(m, 0, sizeof(*m));
	m->buckets = calloc(MEM_BUCKETS_MIN, sizeof(*m->buckets));
	if (!m->buckets)
		return -ENOMEM;
	m->n_buckets = MEM_BUCKETS_MIN;
	m->head = calloc(1, sizeof(*m->head) +
				    MEM_LEVELS * sizeof(m->head->next[0]));
	if (!m->head) {
		free(m->buckets);
		m->buckets = NULL;
		return -ENOMEM;
	}
	m->head->levels = MEM_LEVELS;
	m->rnd = 0x9e3779b97f4a7c15ull;
	return 0;
}

void mem_map_clear(struct mem_map *m)
{
	struct mem_rec *r = m->head ? m->head->next[0] : NULL, *next;

	for (; r; r = next) {
		next = r->next[0];
		free(r->key);
		free(r->val);
		free(r);
	}
	if (m->head)
		memset(m->head->next, 0, MEM_LEVELS * sizeof(m->head->next[0]));
	if (m->buckets)
		memset(m->buckets, 0, m->n_buckets * sizeof(*m->buckets));
	m->n = 0;
	m->live_bytes = 0;
}

void mem_map_fini(struct mem_map *m)
{
	mem_map_clear(m);
	free(m->head);
	m->head = NULL;
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = 0;
}

/* First record whose key is >= key; prev[] gets the last record before it
 * on every level (when prev is not NULL). */
static struct mem_rec *lower_bound(const struct mem_map *m, const char *key,
				   struct mem_rec **prev)
{
	struct mem_rec *x = m->head;

	for (int l = MEM_LEVELS - 1; l >= 0; l--) {
		while (x->next[l] && strcmp(x->next[l]->key, key) < 0)
			x = x->next[l];
		if (prev)
			prev[l] = x;
	}
	return x->next[0];
}

struct mem_rec *mem_map_seek(const struct mem_map *m, const char *key)
{
	return lower_bound(m, key, NULL);
}

static struct mem_rec *hash_find(const struct mem_map *m, const char *key,
				 uint64_t h)
{
	struct mem_rec *r = *bucket_of(m, h);

	while (r && (r->hash != h || strcmp(r->key, key)))
		r = r->hnext;
	return r;
}

struct mem_rec *mem_map_find(const struct mem_map *m, const char *key)
{
	return hash_find(m, key, key_hash(key));
}

static int random_levels(struct mem_map *m)
{
	int l = 1;

	/* xorshift64; a quarter of the nodes climb each level */
	m->rnd ^= m->rnd << 13;
	m->rnd ^= m->rnd >> 7;
	m->rnd ^= m->rnd << 17;
	for (uint64_t r = m->rnd; l < MEM_LEVELS && (r & 3) == 0; r >>= 2)
		l++;
	return l;
}

struct mem_rec *mem_map_put(struct mem_map *m, const char *key, char *val,
			    size_t len, uint64_t ver)
{
	uint64_t h = key_hash(key);
	struct mem_rec *prev[MEM_LEVELS], *r = hash_find(m, key, h);
	int levels;

	if (r) {
		m->live_bytes -= r->len;
		free(r->val);
		r->val = val;
		r->len = len;
		r->ver = ver;
		m->live_bytes += len;
		return r;
	}
	lower_bound(m, key, prev);
	levels = random_levels(m);
	r = malloc(sizeof(*r) + levels * sizeof(r->next[0]));
	if (!r)
		return NULL;
	r->key = strdup(key);
	if (!r->key) {
		free(r);
		return NULL;
	}
	r->val = val;
	r->len = len;
	r->ver = ver;
	r->aux = 0;
	r->levels = levels;
	for (int l = 0; l < levels; l++) {
		r->next[l] = prev[l]->next[l];
		prev[l]->next[l] = r;
	}
	r->hash = h;
	r->hnext = *bucket_of(m, h);
	*bucket_of(m, h) = r;
	m->n++;
	if (m->n > m->n_buckets)
		buckets_grow(m);
	m->live_bytes += len + strlen(key);
	return r;
}

void mem_map_del(struct mem_map *m, const char *key)
{
	struct mem_rec *prev[MEM_LEVELS], *r = lower_bound(m, key, prev);

	if (!r || strcmp(r->key, key))
		return;
	for (int l = 0; l < r->levels; l++)
		prev[l]->next[l] = r->next[l];
	hash_unlink(m, r);
	m->live_bytes -= r->len + strlen(r->key);
	free(r->key);
	free(r->val);
	free(r);
	m->n--;
}

int mem_map_list(const struct mem_map *m, const char *prefix, const char *after,
		 size_t limit, store_rec_cb cb, void *arg)
{
	size_t plen = strlen(prefix), count = 0;
	struct mem_rec *r = lower_bound(m, prefix, NULL);
	int ret = 0;

	if (after && strcmp(after, prefix) >= 0) {
		r = lower_bound(m, after, NULL);
		if (r && !strcmp(r->key, after))
			r = r->next[0];
	}
	for (; r && (!limit || count < limit); r = r->next[0], count++) {
		struct store_rec sr = {r->key, r->val, r->len, r->ver};

		if (strncmp(r->key, prefix, plen))
			break;
		ret = cb(&sr, arg);
		if (ret)
			break;
	}
	return ret;
}

static void ent_free(struct mem_feed_ent *e)
{
	free(e->key);
	free(e->old_val);
	free(e->new_val);
	e->key = e->old_val = e->new_val = NULL;
}

int mem_feed_init(struct mem_feed *f, size_t cap, uint64_t base)
{
	memset(f, 0, sizeof(*f));
	f->ents = calloc(cap ? cap : 1, sizeof(*f->ents));
	if (!f->ents)
		return -ENOMEM;
	f->cap = cap ? cap : 1;
	f->base = base;
	return 0;
}

void mem_feed_reset(struct mem_feed *f, uint64_t base)
{
	for (size_t i = 0; f->ents && i < f->count; i++)
		ent_free(&f->ents[(f->head + i) % f->cap]);
	/* Every scope's newest entry is now before the first one. */
	f->first_seq += f->count;
	f->head = f->count = 0;
	f->base = base;
}

void mem_feed_fini(struct mem_feed *f)
{
	mem_feed_reset(f, 0);
	free(f->ents);
	f->ents = NULL;
	free(f->scopes);
	f->scopes = NULL;
	f->scopes_cap = f->scopes_used = 0;
}

/* Where the value of a top-level field of a JSON object's text starts
 * (just after its colon), without parsing all of it; NULL when absent. */
static const char *peek_field(const char *s, const char *field)
{
	size_t fl = strlen(field);
	const char *q;
	int depth = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
		} else if (*p == '"') {
			for (q = p + 1; *q && *q != '"'; q++)
				if (*q == '\\' && q[1])
					q++;
			if (!*q)
				return NULL;
			if (depth == 1 && (size_t)(q - p - 1) == fl &&
			    !strncmp(p + 1, field, fl)) {
				const char *c =
					q + 1 + strspn(q + 1, " \t\r\n");

				if (*c == ':')
					return c + 1 + strspn(c + 1, " \t\r\n");
			}
			p = q;
		}
	}
	return NULL;
}

/* The unsigned integer of a top-level field; 0 when absent or not a plain
 * integer. */
static uint32_t peek_u32(const char *s, const char *field)
{
	const char *v = peek_field(s, field);
	unsigned long n;
	char *end;

	if (!v || *v < '0' || *v > '9')
		return 0;
	n = strtoul(v, &end, 10);
	end += strspn(end, " \t\r\n");
	return (*end == ',' || *end == '}') && n <= UINT32_MAX ? (uint32_t)n
							       : 0;
}

/* A top-level string field without escapes into out: 1; 0 when absent or
 * null; -1 when it is something else (the caller parses the text). */
static int peek_str(const char *s, const char *field, char *out, size_t len)
{
	const char *v = peek_field(s, field), *e;

	if (!v || !strncmp(v, "null", 4))
		return 0;
	if (*v != '"')
		return -1;
	e = strpbrk(v + 1, "\"\\");
	if (!e || *e != '"' || (size_t)(e - v - 1) >= len)
		return -1;
	memcpy(out, v + 1, e - v - 1);
	out[e - v - 1] = '\0';
	return 1;
}

int mem_str_field(const char *json, const char *field, char *out, size_t len)
{
	int has = peek_str(json, field, out, len);
	json_object *o, *v;

	if (has >= 0)
		return has;
	/* Escaped, too long or not a string: parse it. */
	o = json_tokener_parse(json);
	has = o && json_object_object_get_ex(o, field, &v) &&
			      json_object_is_type(v, json_type_string) &&
			      snprintf(out, len, "%s",
				       json_object_get_string(v)) < (int)len
		      ? 1
		      : -1;
	json_object_put(o);
	return has;
}

/* store_change.vpc of a change. */
static uint32_t change_vpc(const char *key, const char *old_val,
			   const char *new_val)
{
	static const char *const kinds[] = {"subnet/", "port/", "lb/", "lbh/"};
	const char *field = NULL;
	uint32_t o, n;

	if (!strncmp(key, "vpc/", 4))
		field = "id";
	for (size_t i = 0; !field && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strncmp(key, kinds[i], strlen(kinds[i])))
			field = "vpc";
	if (!field)
		return 0;
	o = old_val ? peek_u32(old_val, field) : 0;
	n = new_val ? peek_u32(new_val, field) : 0;
	if (old_val && new_val && o != n)
		return 0;
	return new_val ? n : o;
}

/* ---- scope index (struct store_scope) ------------------------------ */

#define SCOPE_NONE 0ull		/* in no reader's scope */
#define SCOPE_ALL  1ull		/* in every reader's */
#define SCOPE_VPC  (1ull << 32) /* | the VPC */
#define SCOPE_NODE (2ull << 32) /* | a hash of the node's name */
#define SEQ_NONE   UINT64_MAX

/* FNV-1a of a node's name, up to a '/' or the end. Two names with the
 * same hash share a scope: their readers filter by key anyway. */
static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s && *s != '/'; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

/* A change's scope (store.h): the records a node's state is made of;
 * every other record (tenants, tokens, address and index records, ...)
 * is in none. */
static uint64_t change_scope(const char *key, uint32_t vpc)
{
	static const char *const every[] = {"node/",   "gw/",	"lbp/", "vpc/",
					    "subnet/", "port/", "lb/",	"lbh/"};

	if (vpc)
		return SCOPE_VPC | vpc;
	if (!strncmp(key, "np/", 3))
		return SCOPE_NODE | name_hash(key + 3);
	for (size_t i = 0; i < sizeof(every) / sizeof(every[0]); i++)
		if (!strncmp(key, every[i], strlen(every[i])))
			return SCOPE_ALL;
	return SCOPE_NONE;
}

static size_t scope_slot(const struct mem_feed *f, uint64_t scope)
{
	size_t mask = f->scopes_cap - 1;
	size_t i = (size_t)((scope * 0x9e3779b97f4a7c15ull) >> 40) & mask;

	while (f->scopes[i].scope && f->scopes[i].scope != scope)
		i = (i + 1) & mask;
	return i;
}

/* The seq of the newest entry of scope still in the feed, or SEQ_NONE. */
static uint64_t scope_last(const struct mem_feed *f, uint64_t scope)
{
	const struct mem_feed_scope *s;

	if (!f->scopes_cap)
		return SEQ_NONE;
	s = &f->scopes[scope_slot(f, scope)];
	return s->scope == scope && s->last >= f->first_seq ? s->last
							    : SEQ_NONE;
}

/* Room for one more scope: when the table is half full, a new one twice
 * as large as the scopes that still have entries in the feed. */
static int scope_room(struct mem_feed *f)
{
	struct mem_feed_scope *old = f->scopes;
	size_t old_cap = f->scopes_cap, live = 0, cap = 64;

	if ((f->scopes_used + 1) * 2 <= f->scopes_cap)
		return 0;
	for (size_t i = 0; i < old_cap; i++)
		live += old[i].scope && old[i].last >= f->first_seq;
	while (cap < (live + 1) * 4)
		cap *= 2;
	f->scopes = calloc(cap, sizeof(*f->scopes));
	if (!f->scopes) {
		f->scopes = old;
		return -ENOMEM;
	}
	f->scopes_cap = cap;
	f->scopes_used = 0;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].scope || old[i].last < f->first_seq)
			continue;
		f->scopes[scope_slot(f, old[i].scope)] = old[i];
		f->scopes_used++;
	}
	free(old);
	return 0;
}

/* Links entry e (its seq set) to its scope. */
static int scope_link(struct mem_feed *f, struct mem_feed_ent *e,
		      uint64_t scope)
{
	struct mem_feed_scope *s;

	e->prev = SEQ_NONE;
	e->vbefore = f->vtotal;
	if (scope == SCOPE_NONE)
		return 0;
	if (scope_room(f))
		return -ENOMEM;
	s = &f->scopes[scope_slot(f, scope)];
	if (!s->scope) {
		s->scope = scope;
		f->scopes_used++;
	} else if (s->last >= f->first_seq) {
		e->prev = s->last;
	}
	s->last = e->seq;
	if ((scope >> 32) == 1)
		f->vtotal++;
	return 0;
}

void mem_feed_push(struct mem_feed *f, uint64_t rev, const char *key,
		   const char *old_val, const char *new_val)
{
	struct mem_feed_ent *e;

	if (f->count == f->cap) {
		e = &f->ents[f->head];
		f->base = e->rev;
		ent_free(e);
		f->head = (f->head + 1) % f->cap;
		f->count--;
		f->first_seq++;
	}
	e = &f->ents[(f->head + f->count) % f->cap];
	e->rev = rev;
	e->vpc = change_vpc(key, old_val, new_val);
	e->seq = f->first_seq + f->count;
	e->key = strdup(key);
	e->old_val = old_val ? strdup(old_val) : NULL;
	e->new_val = new_val ? strdup(new_val) : NULL;
	if (!e->key || (old_val && !e->old_val) || (new_val && !e->new_val) ||
	    scope_link(f, e, change_scope(key, e->vpc))) {
		ent_free(e);
		mem_feed_reset(f, rev);
		return;
	}
	f->count++;
}

/* Index (from the oldest entry) of the first entry with a revision after
 * since: the ring is in revision order, so a binary search finds it. */
static size_t feed_first_after(const struct mem_feed *f, uint64_t since)
{
	size_t lo = 0, hi = f->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->ents[(f->head + mid) % f->cap].rev <= since)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int mem_feed_walk(const struct mem_feed *f, uint64_t since, uint64_t cur,
		  store_change_cb cb, void *arg, uint64_t *upto)
{
	int ret;

	if (since < f->base || since > cur)
		return -ERANGE;
	for (size_t i = feed_first_after(f, since); i < f->count; i++) {
		const struct mem_feed_ent *e = &f->ents[(f->head + i) % f->cap];
		struct store_change c = {e->rev, e->key, e->old_val, e->new_val,
					 e->vpc};

		ret = cb(&c, arg);
		if (ret)
			return ret;
	}
	if (upto)
		*upto = cur;
	return 0;
}

static const struct mem_feed_ent *ent_at(const struct mem_feed *f, uint64_t seq)
{
	return &f->ents[(f->head + (seq - f->first_seq)) % f->cap];
}

struct seqs {
	uint64_t *v;
	size_t n, cap;
};

/* Appends the seqs of scope's entries from seq `from` on (newest first). */
static int gather(const struct mem_feed *f, uint64_t scope, uint64_t from,
		  struct seqs *out)
{
	uint64_t s = scope_last(f, scope);

	for (; s != SEQ_NONE && s >= from; s = ent_at(f, s)->prev) {
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 64;
			uint64_t *p = realloc(out->v, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			out->v = p;
			out->cap = cap;
		}
		out->v[out->n++] = s;
	}
	return 0;
}

static int by_seq(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int mem_feed_walk_scoped(const struct mem_feed *f, uint64_t since, uint64_t cur,
			 struct store_scope *scope, store_change_cb cb,
			 void *arg, uint64_t *upto)
{
	struct seqs q = {0};
	uint64_t from, in_vpcs = 0, window_vpcs = 0;
	int ret;

	if (!scope)
		return mem_feed_walk(f, since, cur, cb, arg, upto);
	if (since < f->base || since > cur)
		return -ERANGE;
	from = f->first_seq + feed_first_after(f, since);
	if (from < f->first_seq + f->count)
		window_vpcs = f->vtotal - ent_at(f, from)->vbefore;
	ret = gather(f, SCOPE_ALL, from, &q);
	if (!ret && scope->node)
		ret = gather(f, SCOPE_NODE | name_hash(scope->node), from, &q);
	for (size_t i = 0; !ret && i < scope->n_vpcs; i++)
		if (scope->vpcs[i])
			ret = gather(f, SCOPE_VPC | scope->vpcs[i], from, &q);
	if (ret)
		goto out;
	qsort(q.v, q.n, sizeof(*q.v), by_seq);
	for (size_t i = 0; i < q.n; i++) {
		const struct mem_feed_ent *e = ent_at(f, q.v[i]);
		struct store_change c = {e->rev, e->key, e->old_val, e->new_val,
					 e->vpc};

		if (i && q.v[i] == q.v[i - 1]) /* a VPC named twice */
			continue;
		in_vpcs += e->vpc != 0;
		ret = cb(&c, arg);
		if (ret)
			goto out;
	}
	scope->others = window_vpcs - in_vpcs;
	if (upto)
		*upto = cur;
out:
	free(q.v);
	return ret;
}

/* ---- derived records --------------------------------------------------- */

#define DERIVED_MAX 3

struct derived {
	char key[STORE_KEY_MAX];
	char val[32];
};

bool mem_derived_key(const char *key)
{
	return (key[0] == 't' || key[0] == 'v' || key[0] == 'n') &&
	       key[1] == 'p' && key[2] == '/';
}

/* The records derived from port record key = val: how many (0 when the
 * value is not a port's). */
static int derive(const char *key, const char *val, struct derived *d)
{
	const char *id = key + strlen("port/");
	uint32_t tenant = peek_u32(val, "tenant"), vpc = peek_u32(val, "vpc");
	char node[STORE_KEY_MAX];
	int n = 0;

	if (!tenant || !vpc)
		return 0;
	snprintf(d[n].key, sizeof(d[n].key), "tp/%010u/%s", tenant, id);
	strcpy(d[n++].val, "{}");
	snprintf(d[n].key, sizeof(d[n].key), "vp/%010u/%s", vpc, id);
	strcpy(d[n++].val, "{}");
	if (mem_str_field(val, "node", node, sizeof(node)) > 0 &&
	    snprintf(d[n].key, sizeof(d[n].key), "np/%s/%s", node, id) <
		    (int)sizeof(d[n].key)) {
		snprintf(d[n].val, sizeof(d[n].val), "{\"vpc\":%u}", vpc);
		n++;
	}
	return n;
}

static const struct derived *derived_find(const struct derived *d, int n,
					  const char *key)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(d[i].key, key))
			return &d[i];
	return NULL;
}

int mem_derive(struct mem_map *m, struct mem_feed *f, uint64_t rev,
	       const char *key, const char *old_val, const char *new_val)
{
	struct derived od[DERIVED_MAX], nd[DERIVED_MAX];
	int no, nn;

	if (strncmp(key, "port/", 5))
		return 0;
	no = old_val ? derive(key, old_val, od) : 0;
	nn = new_val ? derive(key, new_val, nd) : 0;
	for (int i = 0; i < no; i++) {
		struct mem_rec *r;

		if (derived_find(nd, nn, od[i].key))
			continue;
		r = mem_map_find(m, od[i].key);
		if (!r)
			continue;
		if (f)
			mem_feed_push(f, rev, r->key, r->val, NULL);
		mem_map_del(m, od[i].key);
	}
	for (int i = 0; i < nn; i++) {
		const struct derived *o = derived_find(od, no, nd[i].key);
		struct mem_rec *r = mem_map_find(m, nd[i].key);
		char *v;

		if (o && r && !strcmp(o->val, nd[i].val))
			continue;
		v = mem_dup(nd[i].val, strlen(nd[i].val));
		if (!v)
			return -ENOMEM;
		if (f)
			mem_feed_push(f, rev, nd[i].key, r ? r->val : NULL, v);
		if (!mem_map_put(m, nd[i].key, v, strlen(v), rev)) {
			free(v);
			return -ENOMEM;
		}
	}
	return 0;
}
