/*
 * merkle.c — see merkle.h. Proof builders follow the recursive definitions
 * of RFC 6962 §2.1.1/§2.1.2 literally over leaf ranges [lo, hi); the
 * checkers are RFC 9162's iterative algorithms, so the two sides are
 * written differently and a slip in one is caught by the other.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "audit/merkle.h"
#include "core/err.h"
#include "crypto/hash.h"

struct merkle_hasher {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
};

int merkle_hasher_new(struct merkle_hasher **out)
{
	struct merkle_hasher *h = calloc(1, sizeof(*h));
	if (!h)
		return ODX_ENOMEM;
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	if (!h->md || !h->ctx) {
		merkle_hasher_free(h);
		return ODX_ECRYPTO;
	}
	*out = h;
	return 0;
}

void merkle_hasher_free(struct merkle_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

static int sha256_3(struct merkle_hasher *h, const void *a, size_t na, const void *b, size_t nb,
		    const void *c, size_t nc, uint8_t out[static MERKLE_HASH_LEN])
{
	unsigned int len = 0;
	if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1 ||
	    (na && EVP_DigestUpdate(h->ctx, a, na) != 1) ||
	    (nb && EVP_DigestUpdate(h->ctx, b, nb) != 1) ||
	    (nc && EVP_DigestUpdate(h->ctx, c, nc) != 1) ||
	    EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != MERKLE_HASH_LEN)
		return ODX_ECRYPTO;
	return 0;
}

int merkle_sha256_2(struct merkle_hasher *h, const void *a, size_t na, const void *b, size_t nb,
		    uint8_t out[static MERKLE_HASH_LEN])
{
	return sha256_3(h, a, na, b, nb, NULL, 0, out);
}

int merkle_leaf_hash(struct merkle_hasher *h, const void *data, size_t n,
		     uint8_t out[static MERKLE_HASH_LEN])
{
	static const uint8_t zero = 0x00;
	return sha256_3(h, &zero, 1, data, n, NULL, 0, out);
}

int merkle_node_hash(struct merkle_hasher *h, const uint8_t left[static MERKLE_HASH_LEN],
		     const uint8_t right[static MERKLE_HASH_LEN], uint8_t out[static MERKLE_HASH_LEN])
{
	static const uint8_t one = 0x01;
	uint8_t tmp[MERKLE_HASH_LEN];
	int rc = sha256_3(h, &one, 1, left, MERKLE_HASH_LEN, right, MERKLE_HASH_LEN, tmp);
	if (rc == 0)
		memcpy(out, tmp, MERKLE_HASH_LEN);
	return rc;
}

void merkle_frontier_init(struct merkle_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

int merkle_frontier_push(struct merkle_hasher *h, struct merkle_frontier *f,
			 const uint8_t leaf[static MERKLE_HASH_LEN], merkle_emit_fn emit, void *arg)
{
	/* size has at least one zero bit below 2^64-1, so level stays < 64. */
	if (f->size == UINT64_MAX)
		return ODX_ETOOBIG;
	uint8_t cur[MERKLE_HASH_LEN];
	memcpy(cur, leaf, MERKLE_HASH_LEN);
	unsigned level = 0;
	while ((f->size >> level) & 1) {
		if (f->n == 0)
			return ODX_EINTERNAL;
		int rc = merkle_node_hash(h, f->node[f->n - 1], cur, cur);
		if (rc < 0)
			return rc;
		f->n--;
		level++;
		if (emit) {
			rc = emit(arg, level, ((f->size + 1) >> level) - 1, cur);
			if (rc != 0)
				return rc;
		}
	}
	if (f->n >= MERKLE_MAX_LEVELS)
		return ODX_EINTERNAL;
	memcpy(f->node[f->n++], cur, MERKLE_HASH_LEN);
	f->size++;
	return 0;
}

int merkle_frontier_root(struct merkle_hasher *h, const struct merkle_frontier *f,
			 uint8_t out[static MERKLE_HASH_LEN])
{
	if (f->n == 0)
		return merkle_sha256_2(h, NULL, 0, NULL, 0, out);
	uint8_t r[MERKLE_HASH_LEN];
	memcpy(r, f->node[f->n - 1], MERKLE_HASH_LEN);
	for (unsigned i = f->n - 1; i > 0; i--) {
		int rc = merkle_node_hash(h, f->node[i - 1], r, r);
		if (rc < 0)
			return rc;
	}
	memcpy(out, r, MERKLE_HASH_LEN);
	return 0;
}

static bool is_pow2(uint64_t n)
{
	return n && !(n & (n - 1));
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t split_of(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

int merkle_range_hash(struct merkle_hasher *h, merkle_subtree_fn src, void *arg, uint64_t lo,
		      uint64_t hi, uint8_t out[static MERKLE_HASH_LEN])
{
	if (hi <= lo)
		return ODX_EINVAL;
	uint64_t n = hi - lo;
	if (is_pow2(n)) {
		if (lo & (n - 1))
			return ODX_EINVAL;
		unsigned level = (unsigned)__builtin_ctzll(n);
		return src(arg, level, lo >> level, out);
	}
	uint64_t k = split_of(n);
	uint8_t l[MERKLE_HASH_LEN], r[MERKLE_HASH_LEN];
	int rc = merkle_range_hash(h, src, arg, lo, lo + k, l);
	if (rc == 0)
		rc = merkle_range_hash(h, src, arg, lo + k, hi, r);
	if (rc == 0)
		rc = merkle_node_hash(h, l, r, out);
	return rc;
}

struct proof_ctx {
	struct merkle_hasher *h;
	merkle_subtree_fn src;
	void *arg;
	uint8_t path[MERKLE_MAX_PATH][MERKLE_HASH_LEN];
	size_t n;
};

static int path_add(struct proof_ctx *p, uint64_t lo, uint64_t hi)
{
	if (p->n >= MERKLE_MAX_PATH)
		return ODX_EINTERNAL;
	int rc = merkle_range_hash(p->h, p->src, p->arg, lo, hi, p->path[p->n]);
	if (rc == 0)
		p->n++;
	return rc;
}

/* PATH(m, D[lo:hi]), m relative to lo. */
static int inclusion_rec(struct proof_ctx *p, uint64_t m, uint64_t lo, uint64_t hi)
{
	uint64_t n = hi - lo;
	if (n <= 1)
		return 0;
	uint64_t k = split_of(n);
	int rc;
	if (m < k) {
		rc = inclusion_rec(p, m, lo, lo + k);
		if (rc == 0)
			rc = path_add(p, lo + k, hi);
	} else {
		rc = inclusion_rec(p, m - k, lo + k, hi);
		if (rc == 0)
			rc = path_add(p, lo, lo + k);
	}
	return rc;
}

/* SUBPROOF(m, D[lo:hi], b). */
static int subproof_rec(struct proof_ctx *p, uint64_t m, uint64_t lo, uint64_t hi, bool b)
{
	uint64_t n = hi - lo;
	if (m == n)
		return b ? 0 : path_add(p, lo, hi);
	uint64_t k = split_of(n);
	int rc;
	if (m <= k) {
		rc = subproof_rec(p, m, lo, lo + k, b);
		if (rc == 0)
			rc = path_add(p, lo + k, hi);
	} else {
		rc = subproof_rec(p, m - k, lo + k, hi, false);
		if (rc == 0)
			rc = path_add(p, lo, lo + k);
	}
	return rc;
}

static int proof_finish(struct proof_ctx *p, int rc,
			uint8_t path[static MERKLE_MAX_PATH][MERKLE_HASH_LEN], size_t *npath)
{
	if (rc == 0) {
		memcpy(path, p->path, p->n * MERKLE_HASH_LEN);
		*npath = p->n;
	}
	return rc;
}

int merkle_inclusion_proof(struct merkle_hasher *h, merkle_subtree_fn src, void *arg,
			   uint64_t index, uint64_t size,
			   uint8_t path[static MERKLE_MAX_PATH][MERKLE_HASH_LEN], size_t *npath)
{
	if (index >= size)
		return ODX_EINVAL;
	struct proof_ctx p = {.h = h, .src = src, .arg = arg};
	return proof_finish(&p, inclusion_rec(&p, index, 0, size), path, npath);
}

int merkle_consistency_proof(struct merkle_hasher *h, merkle_subtree_fn src, void *arg,
			     uint64_t m, uint64_t n,
			     uint8_t path[static MERKLE_MAX_PATH][MERKLE_HASH_LEN], size_t *npath)
{
	if (m == 0 || m > n)
		return ODX_EINVAL;
	struct proof_ctx p = {.h = h, .src = src, .arg = arg};
	return proof_finish(&p, subproof_rec(&p, m, 0, n, true), path, npath);
}

int merkle_inclusion_verify(struct merkle_hasher *h, uint64_t index, uint64_t size,
			    const uint8_t leaf[static MERKLE_HASH_LEN],
			    const uint8_t (*path)[MERKLE_HASH_LEN], size_t npath,
			    const uint8_t root[static MERKLE_HASH_LEN])
{
	if (index >= size)
		return ODX_EINVAL;
	if (npath > MERKLE_MAX_PATH)
		return ODX_ECORRUPT;
	uint64_t fn = index, sn = size - 1;
	uint8_t r[MERKLE_HASH_LEN];
	memcpy(r, leaf, MERKLE_HASH_LEN);
	for (size_t i = 0; i < npath; i++) {
		if (sn == 0)
			return ODX_ECORRUPT;
		int rc;
		if ((fn & 1) || fn == sn) {
			rc = merkle_node_hash(h, path[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			rc = merkle_node_hash(h, r, path[i], r);
		}
		if (rc < 0)
			return rc;
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && hash_equal(r, root, MERKLE_HASH_LEN) ? 0 : ODX_ECORRUPT;
}

int merkle_consistency_verify(struct merkle_hasher *h, uint64_t m, uint64_t n,
			      const uint8_t root_m[static MERKLE_HASH_LEN],
			      const uint8_t root_n[static MERKLE_HASH_LEN],
			      const uint8_t (*path)[MERKLE_HASH_LEN], size_t npath)
{
	if (m == 0 || m > n)
		return ODX_EINVAL;
	if (m == n)
		return npath == 0 && hash_equal(root_m, root_n, MERKLE_HASH_LEN) ? 0 : ODX_ECORRUPT;
	if (npath == 0 || npath > MERKLE_MAX_PATH)
		return ODX_ECORRUPT;
	/* When m is a power of two its root is the proof's implicit first element. */
	const uint8_t *first = is_pow2(m) ? root_m : path[0];
	size_t i = is_pow2(m) ? 0 : 1;
	uint64_t fn = m - 1, sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	memcpy(fr, first, MERKLE_HASH_LEN);
	memcpy(sr, first, MERKLE_HASH_LEN);
	for (; i < npath; i++) {
		if (sn == 0)
			return ODX_ECORRUPT;
		int rc;
		if ((fn & 1) || fn == sn) {
			rc = merkle_node_hash(h, path[i], fr, fr);
			if (rc == 0)
				rc = merkle_node_hash(h, path[i], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			rc = merkle_node_hash(h, sr, path[i], sr);
		}
		if (rc < 0)
			return rc;
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && hash_equal(fr, root_m, MERKLE_HASH_LEN) &&
			       hash_equal(sr, root_n, MERKLE_HASH_LEN)
		       ? 0
		       : ODX_ECORRUPT;
}
