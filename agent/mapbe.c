// SPDX-License-Identifier: GPL-2.0-only
/* Map backends: BPF maps by fd, and an in-memory hash map. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "log.h"
#include "mapbe.h"

void xvpc_mapbe_destroy(struct xvpc_mapbe *m)
{
	if (m)
		m->ops->destroy(m);
}

/* ---- in memory: open addressing, linear probing, backward-shift delete */

struct mem_map {
	struct xvpc_mapbe m;
	size_t cap; /* slots, a power of two */
	size_t n;
	size_t rec; /* 1 (used flag) + key + value, rounded up */
	unsigned char *slots;
};

static __u64 hash_bytes(const void *p, size_t len)
{
	const unsigned char *b = p;
	__u64 h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

static unsigned char *slot(struct mem_map *mm, size_t i)
{
	return mm->slots + i * mm->rec;
}

/* Slot holding key, or the empty slot where it would go. */
static size_t mem_find(struct mem_map *mm, const void *key, bool *found)
{
	size_t mask = mm->cap - 1;
	size_t i = hash_bytes(key, mm->m.key_size) & mask;

	for (;; i = (i + 1) & mask) {
		unsigned char *s = slot(mm, i);

		if (!s[0]) {
			*found = false;
			return i;
		}
		if (!memcmp(s + 1, key, mm->m.key_size)) {
			*found = true;
			return i;
		}
	}
}

static int mem_resize(struct mem_map *mm, size_t cap)
{
	unsigned char *old = mm->slots;
	size_t ocap = mm->cap;

	mm->slots = calloc(cap, mm->rec);
	if (!mm->slots) {
		mm->slots = old;
		return -ENOMEM;
	}
	mm->cap = cap;
	for (size_t i = 0; i < ocap; i++) {
		unsigned char *s = old + i * mm->rec;
		bool found;

		if (s[0])
			memcpy(slot(mm, mem_find(mm, s + 1, &found)), s,
			       mm->rec);
	}
	free(old);
	return 0;
}

static int mem_lookup(struct xvpc_mapbe *m, const void *key, void *val)
{
	struct mem_map *mm = (struct mem_map *)m;
	bool found;
	size_t i = mem_find(mm, key, &found);

	if (!found)
		return -ENOENT;
	memcpy(val, slot(mm, i) + 1 + m->key_size, m->value_size);
	return 0;
}

static int mem_update(struct xvpc_mapbe *m, const void *key, const void *val)
{
	struct mem_map *mm = (struct mem_map *)m;
	unsigned char *s;
	bool found;
	size_t i = mem_find(mm, key, &found);

	if (!found) {
		if (mm->n >= m->max_entries)
			return -E2BIG;
		if ((mm->n + 1) * 2 > mm->cap) {
			int err = mem_resize(mm, mm->cap * 2);

			if (err)
				return err;
			i = mem_find(mm, key, &found);
		}
		mm->n++;
	}
	s = slot(mm, i);
	s[0] = 1;
	memcpy(s + 1, key, m->key_size);
	memcpy(s + 1 + m->key_size, val, m->value_size);
	return 0;
}

static int mem_delete(struct xvpc_mapbe *m, const void *key)
{
	struct mem_map *mm = (struct mem_map *)m;
	size_t mask = mm->cap - 1, i, j;
	bool found;

	i = mem_find(mm, key, &found);
	if (!found)
		return -ENOENT;
	slot(mm, i)[0] = 0;
	mm->n--;
	/* Shift back the entries of the probe run that follows. */
	for (j = (i + 1) & mask; slot(mm, j)[0]; j = (j + 1) & mask) {
		size_t home = hash_bytes(slot(mm, j) + 1, m->key_size) & mask;

		/* Move j to i when its home is not in (i, j]. */
		if (i <= j ? (home <= i || home > j)
			   : (home <= i && home > j)) {
			memcpy(slot(mm, i), slot(mm, j), mm->rec);
			slot(mm, j)[0] = 0;
			i = j;
		}
	}
	return 0;
}

static int mem_iterate(struct xvpc_mapbe *m, xvpc_mapbe_iter_cb cb, void *arg)
{
	struct mem_map *mm = (struct mem_map *)m;

	for (size_t i = 0; i < mm->cap; i++) {
		unsigned char *s = slot(mm, i);
		int ret;

		if (!s[0])
			continue;
		ret = cb(s + 1, s + 1 + m->key_size, arg);
		if (ret)
			return ret;
	}
	return 0;
}

static int mem_update_batch(struct xvpc_mapbe *m, const void *keys,
			    const void *vals, __u32 *n)
{
	const unsigned char *k = keys, *v = vals;

	for (__u32 i = 0; i < *n; i++) {
		int err = mem_update(m, k + (size_t)i * m->key_size,
				     v + (size_t)i * m->value_size);

		if (err) {
			*n = i;
			return err;
		}
	}
	return 0;
}

static int mem_delete_batch(struct xvpc_mapbe *m, const void *keys, __u32 *n)
{
	const unsigned char *k = keys;

	for (__u32 i = 0; i < *n; i++)
		mem_delete(m, k + (size_t)i * m->key_size);
	return 0;
}

static long mem_count(struct xvpc_mapbe *m)
{
	return ((struct mem_map *)m)->n;
}

static void mem_destroy(struct xvpc_mapbe *m)
{
	struct mem_map *mm = (struct mem_map *)m;

	free(mm->slots);
	free(mm);
}

static const struct xvpc_mapbe_ops mem_ops = {
	.lookup = mem_lookup,
	.update = mem_update,
	.delete = mem_delete,
	.iterate = mem_iterate,
	.update_batch = mem_update_batch,
	.delete_batch = mem_delete_batch,
	.count = mem_count,
	.destroy = mem_destroy,
};

int xvpc_mapbe_mem_new(const char *name, __u32 key_size, __u32 value_size,
		       __u32 max_entries, struct xvpc_mapbe **out)
{
	struct mem_map *mm;

	if (!key_size || !value_size || !max_entries)
		return -EINVAL;
	mm = calloc(1, sizeof(*mm));
	if (!mm)
		return -ENOMEM;
	mm->m.ops = &mem_ops;
	snprintf(mm->m.name, sizeof(mm->m.name), "%s", name);
	mm->m.key_size = key_size;
	mm->m.value_size = value_size;
	mm->m.max_entries = max_entries;
	mm->rec = (1 + key_size + value_size + 7) & ~7u;
	mm->cap = 64;
	mm->slots = calloc(mm->cap, mm->rec);
	if (!mm->slots) {
		free(mm);
		return -ENOMEM;
	}
	*out = &mm->m;
	return 0;
}

/* ---- BPF maps ---- */

#define BPF_ITER_CHUNK 4096

struct bpf_be {
	struct xvpc_mapbe m;
	int fd;
	__u32 type;
	bool batch_lookup; /* cleared when the kernel says no */
	bool batch_update;
	bool batch_delete;
};

static bool unsupported(int err)
{
	return err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP ||
	       err == -524 /* ENOTSUPP, kernel-internal */;
}

static int bpf_lookup(struct xvpc_mapbe *m, const void *key, void *val)
{
	int err = bpf_map_lookup_elem(((struct bpf_be *)m)->fd, key, val);

	return err ? -errno : 0;
}

static int bpf_update(struct xvpc_mapbe *m, const void *key, const void *val)
{
	int err = bpf_map_update_elem(((struct bpf_be *)m)->fd, key, val,
				      BPF_ANY);

	return err ? -errno : 0;
}

static int bpf_delete(struct xvpc_mapbe *m, const void *key)
{
	int err = bpf_map_delete_elem(((struct bpf_be *)m)->fd, key);

	return err ? -errno : 0;
}

static int iterate_keys(struct bpf_be *b, xvpc_mapbe_iter_cb cb, void *arg)
{
	unsigned char *key, *next, *val;
	bool first = true;
	int ret = 0;

	key = malloc(b->m.key_size);
	next = malloc(b->m.key_size);
	val = malloc(b->m.value_size);
	if (!key || !next || !val) {
		ret = -ENOMEM;
		goto out;
	}
	while (!bpf_map_get_next_key(b->fd, first ? NULL : key, next)) {
		first = false;
		memcpy(key, next, b->m.key_size);
		if (bpf_map_lookup_elem(b->fd, key, val))
			continue; /* deleted under us */
		ret = cb(key, val, arg);
		if (ret)
			goto out;
	}
	if (errno != ENOENT)
		ret = -errno;
out:
	free(key);
	free(next);
	free(val);
	return ret;
}

static int iterate_batch(struct bpf_be *b, xvpc_mapbe_iter_cb cb, void *arg)
{
	size_t tok = b->m.key_size > 8 ? b->m.key_size : 8;
	unsigned char *keys, *vals, *in, *out;
	bool first = true, done = false;
	int ret = 0;

	keys = malloc((size_t)BPF_ITER_CHUNK * b->m.key_size);
	vals = malloc((size_t)BPF_ITER_CHUNK * b->m.value_size);
	in = calloc(1, tok);
	out = calloc(1, tok);
	if (!keys || !vals || !in || !out) {
		ret = -ENOMEM;
		goto out;
	}
	while (!done) {
		__u32 n = BPF_ITER_CHUNK;
		int err;

		err = bpf_map_lookup_batch(b->fd, first ? NULL : in, out, keys,
					   vals, &n, NULL);
		if (err) {
			err = -errno;
			if (err != -ENOENT) {
				ret = err;
				if (first && unsupported(err))
					b->batch_lookup = false;
				goto out;
			}
			done = true;
		}
		first = false;
		for (__u32 i = 0; i < n; i++) {
			ret = cb(keys + (size_t)i * b->m.key_size,
				 vals + (size_t)i * b->m.value_size, arg);
			if (ret)
				goto out;
		}
		memcpy(in, out, tok);
	}
out:
	free(keys);
	free(vals);
	free(in);
	free(out);
	return ret;
}

static int bpf_iterate(struct xvpc_mapbe *m, xvpc_mapbe_iter_cb cb, void *arg)
{
	struct bpf_be *b = (struct bpf_be *)m;
	int ret;

	if (b->batch_lookup) {
		ret = iterate_batch(b, cb, arg);
		if (!b->batch_lookup) /* not supported, nothing delivered */
			return iterate_keys(b, cb, arg);
		return ret;
	}
	return iterate_keys(b, cb, arg);
}

static int bpf_update_batch(struct xvpc_mapbe *m, const void *keys,
			    const void *vals, __u32 *n)
{
	struct bpf_be *b = (struct bpf_be *)m;
	const unsigned char *k = keys, *v = vals;
	__u32 i, want = *n;

	if (b->batch_update && want) {
		__u32 cnt = want;

		if (!bpf_map_update_batch(b->fd, keys, vals, &cnt, NULL))
			return 0;
		if (!unsupported(-errno) || cnt) {
			*n = cnt;
			return -errno;
		}
		b->batch_update = false;
	}
	for (i = 0; i < want; i++) {
		if (bpf_map_update_elem(b->fd, k + (size_t)i * m->key_size,
					v + (size_t)i * m->value_size,
					BPF_ANY)) {
			*n = i;
			return -errno;
		}
	}
	return 0;
}

static int bpf_delete_batch(struct xvpc_mapbe *m, const void *keys, __u32 *n)
{
	struct bpf_be *b = (struct bpf_be *)m;
	const unsigned char *k = keys;
	__u32 i, want = *n;

	/* The kernel stops a delete batch at the first missing key, so a
	 * batch is tried first and the rest is finished one by one. */
	i = 0;
	if (b->batch_delete && want) {
		__u32 cnt = want;

		if (!bpf_map_delete_batch(b->fd, keys, &cnt, NULL))
			return 0;
		if (unsupported(-errno) && !cnt)
			b->batch_delete = false;
		i = cnt;
	}
	for (; i < want; i++) {
		if (bpf_map_delete_elem(b->fd, k + (size_t)i * m->key_size) &&
		    errno != ENOENT) {
			*n = i;
			return -errno;
		}
	}
	return 0;
}

static int count_cb(const void *key, const void *val, void *arg)
{
	(void)key;
	(void)val;
	(*(long *)arg)++;
	return 0;
}

static long bpf_count(struct xvpc_mapbe *m)
{
	long n = 0;
	int err = bpf_iterate(m, count_cb, &n);

	return err ? err : n;
}

static void bpf_destroy(struct xvpc_mapbe *m)
{
	free(m);
}

static const struct xvpc_mapbe_ops bpf_ops = {
	.lookup = bpf_lookup,
	.update = bpf_update,
	.delete = bpf_delete,
	.iterate = bpf_iterate,
	.update_batch = bpf_update_batch,
	.delete_batch = bpf_delete_batch,
	.count = bpf_count,
	.destroy = bpf_destroy,
};

int xvpc_mapbe_bpf_new(int fd, const char *name, struct xvpc_mapbe **out)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);
	struct bpf_be *b;

	if (fd < 0)
		return -EBADF;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->m.ops = &bpf_ops;
	snprintf(b->m.name, sizeof(b->m.name), "%s", name ? name : info.name);
	b->m.key_size = info.key_size;
	b->m.value_size = info.value_size;
	b->m.max_entries = info.max_entries;
	b->fd = fd;
	b->type = info.type;
	b->batch_lookup = b->batch_update = b->batch_delete = true;
	*out = &b->m;
	return 0;
}
