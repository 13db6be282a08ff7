// SPDX-License-Identifier: GPL-2.0-only
/* SipHash-2-4, written from the description in the SipHash paper: two
 * compression rounds per 8-byte word, four finalization rounds. */
#include "hash.h"

static inline __u64 rotl64(__u64 x, unsigned int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline __u64 load_le64(const __u8 *p)
{
	__u64 v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct sipstate {
	__u64 v0, v1, v2, v3;
};

static inline void sipround(struct sipstate *s)
{
	s->v0 += s->v1;
	s->v1 = rotl64(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl64(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl64(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl64(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl64(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl64(s->v2, 32);
}

static inline void sip_compress(struct sipstate *s, __u64 m)
{
	s->v3 ^= m;
	sipround(s);
	sipround(s);
	s->v0 ^= m;
}

struct xvpc_sipkey xvpc_sipkey_from_bytes(const __u8 bytes[16])
{
	struct xvpc_sipkey key = {
		.k0 = load_le64(bytes),
		.k1 = load_le64(bytes + 8),
	};

	return key;
}

__u64 xvpc_siphash24(const struct xvpc_sipkey *key, const void *data,
		     size_t len)
{
	const __u8 *p = data;
	struct sipstate s = {
		.v0 = key->k0 ^ 0x736f6d6570736575ULL,
		.v1 = key->k1 ^ 0x646f72616e646f6dULL,
		.v2 = key->k0 ^ 0x6c7967656e657261ULL,
		.v3 = key->k1 ^ 0x7465646279746573ULL,
	};
	size_t full = len & ~(size_t)7;
	__u64 last = (__u64)(len & 0xff) << 56;

	for (size_t i = 0; i < full; i += 8)
		sip_compress(&s, load_le64(p + i));
	for (size_t i = full; i < len; i++)
		last |= (__u64)p[i] << (8 * (i - full));
	sip_compress(&s, last);

	s.v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		sipround(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
