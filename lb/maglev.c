// SPDX-License-Identifier: GPL-2.0-only
/* Maglev table population with weights; see maglev.h and
 * docs/loadbalancer.md.
 *
 * Population, as in the paper: backends (in identity order) take turns; on
 * its turn a backend walks its permutation to the first free entry and takes
 * it. Weights: before filling, each backend gets a quota, its exact share
 * m * w / W rounded by the largest-remainder method, so shares match weights
 * to within one entry. Turns follow the weights: in every round a backend
 * earns w credits and takes one turn per wmax credits (Bresenham), so a
 * backend of the largest weight takes a turn every round and one of half
 * that weight every other round; a backend stops once it holds its quota.
 * With equal weights this is exactly the paper's algorithm.
 *
 * Speed (the same table, found faster): an occupancy bitmap of m bits that
 * stays in L1 for m = 65537; permutation entries tested 2 or 4 at a time so
 * that there is one hard-to-predict branch per group rather than per entry;
 * for the last TAIL_SLOTS entries, a scan of the free list instead of long
 * walks; and the fill compiled for x86-64-v3 too, used where the CPU has
 * it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "hash.h"
#include "maglev.h"

/* Primes from 251 to 655373 (docs/loadbalancer.md); each must stay below
 * 2^31 so that pos + skip fits in 32 bits. */
static const __u32 maglev_sizes[] = {
	251, 1021, 4099, 16381, 65537, 131071, 262147, 655373,
};

/* The two SipHash keys, 16 ASCII bytes each; changing them changes every
 * table (and so moves every flow) in a cluster: never do. */
static const __u8 key_offset[16] = "xvpc-maglev-offs";
static const __u8 key_skip[16] = "xvpc-maglev-skip";

/* Once this few entries are free, backends stop walking their permutations
 * (about m / free steps per entry) and pick from the list of free entries
 * instead (free steps): the same entries, found faster. */
#define TAIL_SLOTS 128

/* A backend taking part in the fill: weight > 0 and quota > 0. */
struct mg_turn {
	__u32 pos;	/* next entry of its permutation to try */
	__u32 skip;	/* permutation step */
	__u32 offset;	/* first entry of its permutation */
	__u32 inv_skip; /* skip^-1 mod m, to place entries in the tail */
	__u32 step[5];	/* k * skip mod m, k = 0..4 */
	__u32 left;	/* entries still to take */
	__u32 idx;	/* index in the caller's array */
	__u64 credit;
	__u64 weight;
};

struct xvpc_maglev_ctx;
typedef void (*fill_fn)(struct xvpc_maglev_ctx *ctx, __u32 nt, __u64 wmax,
			bool equal, __u32 *table);

static fill_fn pick_fill(bool portable);

struct xvpc_maglev_ctx {
	fill_fn fill; /* fill_portable() or a faster copy */
	__u32 m;
	__u64 m_recip;	       /* (2^64 - 1) / m */
	__u32 cap;	       /* backends the arrays below hold */
	__u32 *order;	       /* caller's indexes, in identity order */
	__u32 *rank;	       /* turn slots sorted for the quota rounding */
	__u32 *scratch;	       /* merge sort space */
	__u64 *rem;	       /* m * w mod W, per turn slot */
	struct mg_turn *turns; /* in identity order */
	__u64 *used;	       /* occupancy bitmap, m bits */
	__u32 *free_slots;     /* the last TAIL_SLOTS free entries */
};

const __u32 *xvpc_maglev_sizes(size_t *count)
{
	*count = sizeof(maglev_sizes) / sizeof(maglev_sizes[0]);
	return maglev_sizes;
}

bool xvpc_maglev_size_ok(__u32 m)
{
	for (size_t i = 0; i < sizeof(maglev_sizes) / sizeof(*maglev_sizes);
	     i++)
		if (maglev_sizes[i] == m)
			return true;
	return false;
}

/* a^-1 mod m for prime m and 0 < a < m (extended Euclid). */
static __u32 mod_inverse(__u32 a, __u32 m)
{
	__s64 r0 = m, r1 = a, t0 = 0, t1 = 1;

	while (r1) {
		__s64 q = r0 / r1, tmp;

		tmp = r0 - q * r1;
		r0 = r1;
		r1 = tmp;
		tmp = t0 - q * t1;
		t0 = t1;
		t1 = tmp;
	}
	return t0 < 0 ? t0 + m : t0;
}

static int check_id(const struct xvpc_maglev_backend *b, __u32 i)
{
	if (!b->id || b->id_len == 0 || b->id_len > XVPC_MAGLEV_ID_MAX) {
		pr_warn("maglev: backend %u: identity must be 1..%u bytes, "
			"got %u\n",
			i, XVPC_MAGLEV_ID_MAX, b->id ? b->id_len : 0);
		return -EINVAL;
	}
	return 0;
}

static void permutation(const void *id, __u32 id_len, __u32 m, __u32 *offset,
			__u32 *skip)
{
	struct xvpc_sipkey k1 = xvpc_sipkey_from_bytes(key_offset);
	struct xvpc_sipkey k2 = xvpc_sipkey_from_bytes(key_skip);

	*offset = xvpc_siphash24(&k1, id, id_len) % m;
	*skip = xvpc_siphash24(&k2, id, id_len) % (m - 1) + 1;
}

int xvpc_maglev_permutation(const void *id, __u32 id_len, __u32 m,
			    __u32 *offset, __u32 *skip)
{
	if (!id || id_len == 0 || id_len > XVPC_MAGLEV_ID_MAX ||
	    !xvpc_maglev_size_ok(m) || !offset || !skip)
		return -EINVAL;
	permutation(id, id_len, m, offset, skip);
	return 0;
}

int xvpc_maglev_ctx_new(__u32 m, struct xvpc_maglev_ctx **ctxp)
{
	struct xvpc_maglev_ctx *ctx;

	if (!ctxp)
		return -EINVAL;
	if (!xvpc_maglev_size_ok(m)) {
		pr_warn("maglev: table size %u is not one of the allowed "
			"primes (see docs/loadbalancer.md)\n",
			m);
		return -EINVAL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->m = m;
	ctx->m_recip = ~0ULL / m;
	ctx->fill = pick_fill(false);
	ctx->used = calloc((m + 63) / 64, sizeof(*ctx->used));
	ctx->free_slots = calloc(TAIL_SLOTS, sizeof(*ctx->free_slots));
	if (!ctx->used || !ctx->free_slots) {
		xvpc_maglev_ctx_free(ctx);
		return -ENOMEM;
	}
	*ctxp = ctx;
	return 0;
}

void xvpc_maglev_ctx_free(struct xvpc_maglev_ctx *ctx)
{
	if (!ctx)
		return;
	free(ctx->order);
	free(ctx->rank);
	free(ctx->scratch);
	free(ctx->rem);
	free(ctx->turns);
	free(ctx->used);
	free(ctx->free_slots);
	free(ctx);
}

__u32 xvpc_maglev_ctx_size(const struct xvpc_maglev_ctx *ctx)
{
	return ctx ? ctx->m : 0;
}

static int ctx_reserve(struct xvpc_maglev_ctx *ctx, __u32 n)
{
	__u32 *order, *rank, *scratch;
	__u64 *rem;
	struct mg_turn *turns;

	if (n <= ctx->cap)
		return 0;
	order = malloc(n * sizeof(*order));
	rank = malloc(n * sizeof(*rank));
	scratch = malloc(n * sizeof(*scratch));
	rem = malloc(n * sizeof(*rem));
	turns = malloc(n * sizeof(*turns));
	if (!order || !rank || !scratch || !rem || !turns) {
		free(order);
		free(rank);
		free(scratch);
		free(rem);
		free(turns);
		pr_err("maglev: no memory for %u backends\n", n);
		return -ENOMEM;
	}
	free(ctx->order);
	free(ctx->rank);
	free(ctx->scratch);
	free(ctx->rem);
	free(ctx->turns);
	ctx->order = order;
	ctx->rank = rank;
	ctx->scratch = scratch;
	ctx->rem = rem;
	ctx->turns = turns;
	ctx->cap = n;
	return 0;
}

static int id_cmp(const struct xvpc_maglev_backend *a,
		  const struct xvpc_maglev_backend *b)
{
	__u32 len = a->id_len < b->id_len ? a->id_len : b->id_len;
	int c = memcmp(a->id, b->id, len);

	if (c)
		return c;
	return (a->id_len > b->id_len) - (a->id_len < b->id_len);
}

typedef int (*idx_cmp_fn)(__u32 a, __u32 b, const void *arg);

/* Stable bottom-up merge sort of n indexes, tmp having room for n: no
 * allocation (glibc's qsort_r() mallocs above 1 KiB). */
static void sort_idx(__u32 *a, __u32 *tmp, __u32 n, idx_cmp_fn cmp,
		     const void *arg)
{
	__u32 *src = a, *dst = tmp, *swap;

	for (__u32 w = 1; w < n; w *= 2) {
		for (__u32 lo = 0; lo < n; lo += 2 * w) {
			__u32 mid = lo + w < n ? lo + w : n;
			__u32 hi = lo + 2 * w < n ? lo + 2 * w : n;
			__u32 i = lo, j = mid, k = lo;

			while (i < mid && j < hi)
				dst[k++] = cmp(src[j], src[i], arg) < 0
						   ? src[j++]
						   : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		swap = src;
		src = dst;
		dst = swap;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

static int order_cmp(__u32 a, __u32 b, const void *arg)
{
	const struct xvpc_maglev_backend *src = arg;

	return id_cmp(&src[a], &src[b]);
}

/* Larger remainder first; ties go to the earlier backend in identity
 * order, as in the paper's round robin. */
static int rank_cmp(__u32 a, __u32 b, const void *arg)
{
	const __u64 *rem = arg;

	if (rem[a] != rem[b])
		return rem[a] > rem[b] ? -1 : 1;
	return (a > b) - (a < b);
}

static int check_backends(const struct xvpc_maglev_backend *backends, __u32 n,
			  __u32 m)
{
	int err;

	if (n == 0)
		return -ENOENT;
	if (!backends)
		return -EINVAL;
	if (n > m) {
		pr_warn("maglev: %u backends do not fit a table of %u "
			"entries; choose a larger size\n",
			n, m);
		return -EINVAL;
	}
	for (__u32 i = 0; i < n; i++) {
		err = check_id(&backends[i], i);
		if (err)
			return err;
	}
	return 0;
}

/* An identity for a message: as text if it is printable, else in hex;
 * shortened to fit buf. */
static const char *fmt_id(const struct xvpc_maglev_backend *b, char *buf,
			  size_t len)
{
	const __u8 *p = b->id;
	bool text = true;
	size_t o = 0;

	for (__u32 i = 0; i < b->id_len; i++)
		text = text && p[i] >= 0x20 && p[i] < 0x7f;
	for (__u32 i = 0; i < b->id_len && o + 3 < len; i++)
		o += snprintf(buf + o, len - o, text ? "%c" : "%02x", p[i]);
	buf[o] = '\0';
	return buf;
}

/* Sorts ctx->order by identity; -EINVAL on a duplicate. */
static int sort_backends(struct xvpc_maglev_ctx *ctx,
			 const struct xvpc_maglev_backend *backends, __u32 n)
{
	for (__u32 i = 0; i < n; i++)
		ctx->order[i] = i;
	sort_idx(ctx->order, ctx->scratch, n, order_cmp, backends);
	for (__u32 i = 1; i < n; i++) {
		const struct xvpc_maglev_backend *a =
			&backends[ctx->order[i - 1]];
		const struct xvpc_maglev_backend *b = &backends[ctx->order[i]];
		char buf[80];

		if (id_cmp(a, b) == 0) {
			pr_warn("maglev: backends %u and %u have the same "
				"identity '%s'; identities must be unique\n",
				ctx->order[i - 1], ctx->order[i],
				fmt_id(a, buf, sizeof(buf)));
			return -EINVAL;
		}
	}
	return 0;
}

/* Fills ctx->turns with the backends of weight > 0, in identity order, and
 * their quotas. Returns how many, or 0 if all weights are 0. */
static __u32 set_quotas(struct xvpc_maglev_ctx *ctx,
			const struct xvpc_maglev_backend *backends, __u32 n,
			__u64 *wmaxp, bool *equalp)
{
	__u64 total = 0, wmax = 0, given = 0;
	__u32 nt = 0, extra;
	bool same_rem = true, equal = true;

	for (__u32 i = 0; i < n; i++) {
		__u64 w = backends[i].weight;

		total += w;
		if (w > wmax)
			wmax = w;
	}
	if (total == 0)
		return 0;

	for (__u32 i = 0; i < n; i++) {
		const struct xvpc_maglev_backend *b = &backends[ctx->order[i]];
		struct mg_turn *t = &ctx->turns[nt];
		__u64 share;

		if (b->weight == 0)
			continue;
		share = (__u64)ctx->m * b->weight;
		t->left = share / total;
		ctx->rem[nt] = share % total;
		same_rem = same_rem && ctx->rem[nt] == ctx->rem[0];
		given += t->left;
		equal = equal && b->weight == wmax;
		t->idx = ctx->order[i];
		t->weight = b->weight;
		t->credit = 0;
		permutation(b->id, b->id_len, ctx->m, &t->offset, &t->skip);
		t->pos = t->offset;
		t->inv_skip = mod_inverse(t->skip, ctx->m);
		for (int k = 0; k < 5; k++)
			t->step[k] = ((__u64)t->skip * k) % ctx->m;
		nt++;
	}

	/* Largest remainders get the entries the floors left over; there are
	 * fewer of those than backends. */
	extra = ctx->m - given;
	for (__u32 i = 0; i < nt; i++)
		ctx->rank[i] = i;
	if (!same_rem)
		sort_idx(ctx->rank, ctx->scratch, nt, rank_cmp, ctx->rem);
	for (__u32 i = 0; i < extra; i++)
		ctx->turns[ctx->rank[i]].left++;

	*wmaxp = wmax;
	*equalp = equal;
	return nt;
}

/* Drops the backends that hold their quota; keeps the order. */
static __u32 compact(struct mg_turn *turns, __u32 nt)
{
	__u32 k = 0;

	for (__u32 i = 0; i < nt; i++)
		if (turns[i].left)
			turns[k++] = turns[i];
	return k;
}

/* After a round in which nobody had enough credit: jump over the rounds in
 * which nobody would, so that tiny weights next to huge ones cost no more
 * than one round per entry. */
static void skip_idle_rounds(struct mg_turn *turns, __u32 nt, __u64 wmax)
{
	__u64 k = ~0ULL;

	for (__u32 i = 0; i < nt; i++) {
		__u64 need = wmax - turns[i].credit;
		__u64 rounds = (need + turns[i].weight - 1) / turns[i].weight;

		if (rounds < k)
			k = rounds;
	}
	k--; /* the round that reaches wmax runs normally */
	for (__u32 i = 0; i < nt; i++)
		turns[i].credit += k * turns[i].weight;
}

static inline __u32 add_mod(__u32 a, __u32 b, __u32 m)
{
	a += b;
	return a >= m ? a - m : a;
}

static inline unsigned int is_used(const __u64 *used, __u32 pos)
{
	return (used[pos >> 6] & (1ULL << (pos & 63))) != 0;
}

/* Walks the permutation of t from its cursor to the first free entry.
 * `width` (2 or 4, a constant in each inlined copy) entries per step,
 * tested together: one hard-to-predict branch per step instead of one per
 * entry. Two while the table is less than half full and the first entry
 * tried is usually free, four after that. */
static __attribute__((always_inline)) inline __u32
take_walk(struct mg_turn *t, __u64 *used, __u32 m, const int width)
{
	__u32 pos = t->pos, slot;
	unsigned int occ;

	/* Free entries remain, and a permutation visits every entry once per
	 * m steps, so this ends. */
	for (;;) {
		occ = is_used(used, pos) |
		      is_used(used, add_mod(pos, t->step[1], m)) << 1;
		if (width == 4)
			occ |= is_used(used, add_mod(pos, t->step[2], m)) << 2 |
			       is_used(used, add_mod(pos, t->step[3], m)) << 3;
		if (occ != (1u << width) - 1)
			break;
		pos = add_mod(pos, t->step[width], m);
	}
	/* Recomputed from the step table rather than picked from an array of
	 * the candidates: cheaper than a store-to-load round trip. */
	slot = add_mod(pos, t->step[__builtin_ctz(~occ)], m);
	used[slot >> 6] |= 1ULL << (slot & 63);
	t->pos = add_mod(slot, t->step[1], m);
	return slot;
}

/* x mod m for x < 2^52, with m_recip = (2^64 - 1) / m: the estimated
 * quotient is the true one or one less. */
static inline __u64 mod_barrett(__u64 x, __u32 m, __u64 m_recip)
{
	__u64 q = ((unsigned __int128)x * m_recip) >> 64;
	__u64 r = x - q * m;

	return r >= m ? r - m : r;
}

/* Same result as take_walk(), for when few entries are free: of the free
 * entries, t takes the one that comes first in its permutation, i.e. with
 * the least j = (entry - offset) / skip mod m. Every entry before t's
 * cursor was taken already, so that one is also the first free after it. */
static inline __u32 take_tail(const struct mg_turn *t, __u32 *free_slots,
			      __u32 *nfree, __u32 m, __u64 m_recip)
{
	__u64 best = m;
	__u32 at = 0, slot;

	for (__u32 k = 0; k < *nfree; k++) {
		__u32 s = free_slots[k];
		__u32 d = s >= t->offset ? s - t->offset : s + m - t->offset;
		__u64 j = mod_barrett((__u64)d * t->inv_skip, m, m_recip);

		if (j < best) {
			best = j;
			at = k;
		}
	}
	slot = free_slots[at];
	free_slots[at] = free_slots[--*nfree];
	return slot;
}

static __u32 list_free(const __u64 *used, __u32 m, __u32 *free_slots)
{
	__u32 n = 0;

	for (__u32 w = 0; w < (m + 63) / 64; w++) {
		__u64 bits = ~used[w];

		while (bits) {
			__u32 pos = w * 64 + __builtin_ctzll(bits);

			if (pos >= m)
				break;
			free_slots[n++] = pos;
			bits &= bits - 1;
		}
	}
	return n;
}

/* Where a fill stands; a fill runs in two phases that share it. */
struct fill_state {
	__u32 nt;	/* backends still taking turns */
	__u32 i;	/* next of them to take its turn in this round */
	__u32 filled;	/* entries taken */
	__u32 nfree;	/* in the tail: length of ctx->free_slots */
	bool took;	/* someone took an entry in this round */
	bool done_some; /* someone reached its quota in this round */
};

/* How a turn finds its entry in each phase of a fill. */
enum take_mode {
	TAKE_WALK2, /* take_walk(), 2 entries per step */
	TAKE_WALK4, /* take_walk(), 4 entries per step */
	TAKE_TAIL,  /* take_tail() */
};

/* Takes turns until `until` entries are taken. `mode` and `equal` (all
 * weights equal: everyone takes a turn every round, credit never matters)
 * are constants in each inlined copy, so the hot loop carries no tests of
 * them. */
static __attribute__((always_inline)) inline void
take_turns(struct xvpc_maglev_ctx *ctx, struct fill_state *st, __u64 wmax,
	   __u32 *table, __u32 until, const enum take_mode mode,
	   const bool equal)
{
	const __u32 m = ctx->m;
	struct mg_turn *turns = ctx->turns;
	__u64 *used = ctx->used;
	__u32 i = st->i, nt = st->nt, filled = st->filled;

	while (filled < until) {
		struct mg_turn *t;
		__u32 slot;

		if (i == nt) {
			/* End of a round. */
			if (st->done_some)
				nt = compact(turns, nt);
			if (!equal && !st->took && nt)
				skip_idle_rounds(turns, nt, wmax);
			st->done_some = st->took = false;
			i = 0;
			continue;
		}
		t = &turns[i++];
		if (!equal) {
			t->credit += t->weight;
			if (t->credit < wmax)
				continue;
			t->credit -= wmax;
			st->took = true;
		}
		if (mode == TAKE_TAIL)
			slot = take_tail(t, ctx->free_slots, &st->nfree, m,
					 ctx->m_recip);
		else
			slot = take_walk(t, used, m,
					 mode == TAKE_WALK2 ? 2 : 4);
		table[slot] = t->idx;
		filled++;
		if (--t->left == 0)
			st->done_some = true;
	}
	st->i = i;
	st->nt = nt;
	st->filled = filled;
}

/* Inlined, like everything fill() calls in its loops, so that each clone
 * of fill() below gets its own copy. */
static __attribute__((always_inline)) inline void
fill_phase(struct xvpc_maglev_ctx *ctx, struct fill_state *st, __u64 wmax,
	   bool equal, __u32 *table, __u32 until, const enum take_mode mode)
{
	if (equal)
		take_turns(ctx, st, wmax, table, until, mode, true);
	else
		take_turns(ctx, st, wmax, table, until, mode, false);
}

static __attribute__((always_inline)) inline void
fill_body(struct xvpc_maglev_ctx *ctx, __u32 nt, __u64 wmax, bool equal,
	  __u32 *table)
{
	const __u32 m = ctx->m;
	const __u32 walk_end = m > TAIL_SLOTS ? m - TAIL_SLOTS : 0;
	struct fill_state st = {.nt = compact(ctx->turns, nt)};

	memset(ctx->used, 0, ((m + 63) / 64) * sizeof(*ctx->used));
	fill_phase(ctx, &st, wmax, equal, table,
		   m / 2 < walk_end ? m / 2 : walk_end, TAKE_WALK2);
	fill_phase(ctx, &st, wmax, equal, table, walk_end, TAKE_WALK4);
	/* Exactly m - walk_end <= TAIL_SLOTS entries are free now. */
	st.nfree = list_free(ctx->used, m, ctx->free_slots);
	fill_phase(ctx, &st, wmax, equal, table, m, TAKE_TAIL);
}

/* The same code compiled twice: for any CPU, and for x86-64-v3 (BMI2
 * shifts, AVX2), about 10% faster; ctx_new() picks one, and
 * xvpc_maglev_ctx_set_portable() lets tests compare them. */
static void fill_portable(struct xvpc_maglev_ctx *ctx, __u32 nt, __u64 wmax,
			  bool equal, __u32 *table)
{
	fill_body(ctx, nt, wmax, equal, table);
}

#ifdef __x86_64__
__attribute__((target("arch=x86-64-v3"))) static void
fill_x86_64_v3(struct xvpc_maglev_ctx *ctx, __u32 nt, __u64 wmax, bool equal,
	       __u32 *table)
{
	fill_body(ctx, nt, wmax, equal, table);
}
#endif

static fill_fn pick_fill(bool portable)
{
#ifdef __x86_64__
	__builtin_cpu_init();
	if (!portable && __builtin_cpu_supports("avx2") &&
	    __builtin_cpu_supports("bmi2"))
		return fill_x86_64_v3;
#endif
	(void)portable;
	return fill_portable;
}

void xvpc_maglev_ctx_set_portable(struct xvpc_maglev_ctx *ctx, bool portable)
{
	if (ctx)
		ctx->fill = pick_fill(portable);
}

int xvpc_maglev_build(struct xvpc_maglev_ctx *ctx,
		      const struct xvpc_maglev_backend *backends, __u32 n,
		      __u32 *table)
{
	__u64 wmax = 0;
	bool equal = false;
	__u32 nt;
	int err;

	if (!ctx || !table)
		return -EINVAL;
	err = check_backends(backends, n, ctx->m);
	if (err)
		return err;
	err = ctx_reserve(ctx, n);
	if (err)
		return err;
	err = sort_backends(ctx, backends, n);
	if (err)
		return err;
	nt = set_quotas(ctx, backends, n, &wmax, &equal);
	if (nt == 0)
		return -ENOENT; /* every weight is 0 */
	ctx->fill(ctx, nt, wmax, equal, table);
	return 0;
}

int xvpc_maglev_shares(const __u32 *table, __u32 m, __u32 n, __u32 *counts)
{
	if (!table || !counts)
		return -EINVAL;
	for (__u32 k = 0; k < m; k++)
		if (table[k] >= n)
			return -EINVAL;
	memset(counts, 0, n * sizeof(*counts));
	for (__u32 k = 0; k < m; k++)
		counts[table[k]]++;
	return 0;
}

int xvpc_maglev_match(const struct xvpc_maglev_backend *from, __u32 n_from,
		      const struct xvpc_maglev_backend *to, __u32 n_to,
		      __u32 *map)
{
	__u32 *sorted = NULL;
	int err = 0;

	if ((n_from && (!from || !map)) || (n_to && !to))
		return -EINVAL;
	for (__u32 i = 0; i < n_from && !err; i++)
		err = check_id(&from[i], i);
	for (__u32 i = 0; i < n_to && !err; i++)
		err = check_id(&to[i], i);
	if (err)
		return err;
	if (n_to) {
		sorted = malloc(2 * (size_t)n_to * sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
		for (__u32 i = 0; i < n_to; i++)
			sorted[i] = i;
		sort_idx(sorted, sorted + n_to, n_to, order_cmp, to);
	}
	for (__u32 i = 0; i < n_from; i++) {
		__u32 lo = 0, hi = n_to;

		map[i] = XVPC_MAGLEV_NONE;
		while (lo < hi) {
			__u32 mid = lo + (hi - lo) / 2;
			int c = id_cmp(&to[sorted[mid]], &from[i]);

			if (c == 0) {
				map[i] = sorted[mid];
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	free(sorted);
	return 0;
}

int xvpc_maglev_disruption(const __u32 *old_table, __u32 n_old,
			   const __u32 *new_table, __u32 n_new, __u32 m,
			   const __u32 *old_to_new,
			   struct xvpc_maglev_disruption *d)
{
	struct xvpc_maglev_disruption r = {0};
	bool *kept_new;
	int err = 0;

	if (!old_table || !new_table || !old_to_new || !d)
		return -EINVAL;
	for (__u32 i = 0; i < n_old; i++)
		if (old_to_new[i] != XVPC_MAGLEV_NONE && old_to_new[i] >= n_new)
			return -EINVAL;
	kept_new = calloc(n_new ? n_new : 1, sizeof(*kept_new));
	if (!kept_new)
		return -ENOMEM;
	for (__u32 i = 0; i < n_old; i++)
		if (old_to_new[i] != XVPC_MAGLEV_NONE)
			kept_new[old_to_new[i]] = true;

	for (__u32 k = 0; k < m; k++) {
		__u32 o = old_table[k], nw = new_table[k];
		bool removed, added;

		if (o >= n_old || nw >= n_new) {
			err = -EINVAL;
			goto out;
		}
		removed = old_to_new[o] == XVPC_MAGLEV_NONE;
		added = !kept_new[nw];
		if (!removed && old_to_new[o] == nw)
			continue;
		r.changed++;
		r.removed_owned += removed;
		r.added_owned += added;
		r.moved += !removed && !added;
	}
	*d = r;
out:
	free(kept_new);
	return err;
}
