/*
 * test-audit-merkle.c — RFC 6962 trees and proofs, checked against a
 * separate, literal implementation of the RFC's recursive definitions
 * (MTH, PATH, PROOF/SUBPROOF) written here with one-shot SHA-256, for every
 * size up to a bound and for sampled larger ones; the same for proofs
 * served by a real audit file (leaf and stored-node source).
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "audit/merkle.h"
#include "core/encoding.h"
#include "core/err.h"
#include "crypto/hash.h"

#define H 32
#define MAXLEAVES 700

/* ---- the reference: RFC 6962 §2.1 as written ---- */

static uint8_t leaves[MAXLEAVES][H]; /* leaf hashes */

static void sha(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, const uint8_t *c,
		size_t nc, uint8_t out[H])
{
	uint8_t buf[1 + 2 * H + 64];
	assert_true(na + nb + nc <= sizeof(buf));
	memcpy(buf, a, na);
	memcpy(buf + na, b, nb);
	memcpy(buf + na + nb, c, nc);
	assert_int_equal(hash_sha256(buf, na + nb + nc, out), 0);
}

static uint64_t k_of(uint64_t n)
{
	uint64_t k = 1;
	while (k * 2 < n)
		k *= 2;
	return k;
}

/* MTH(D[lo:hi]) over leaf hashes. */
static void ref_mth(uint64_t lo, uint64_t hi, uint8_t out[H])
{
	static const uint8_t one = 1;
	if (hi - lo == 1) {
		memcpy(out, leaves[lo], H);
		return;
	}
	uint64_t k = k_of(hi - lo);
	uint8_t l[H], r[H];
	ref_mth(lo, lo + k, l);
	ref_mth(lo + k, hi, r);
	sha(&one, 1, l, H, r, H, out);
}

struct ref_proof {
	size_t n;
	uint8_t p[80][H];
};

static void ref_add(struct ref_proof *p, uint64_t lo, uint64_t hi)
{
	ref_mth(lo, hi, p->p[p->n++]);
}

/* PATH(m, D[lo:hi]) */
static void ref_path(struct ref_proof *p, uint64_t m, uint64_t lo, uint64_t hi)
{
	uint64_t n = hi - lo;
	if (n == 1)
		return;
	uint64_t k = k_of(n);
	if (m < k) {
		ref_path(p, m, lo, lo + k);
		ref_add(p, lo + k, hi);
	} else {
		ref_path(p, m - k, lo + k, hi);
		ref_add(p, lo, lo + k);
	}
}

/* SUBPROOF(m, D[lo:hi], b) */
static void ref_subproof(struct ref_proof *p, uint64_t m, uint64_t lo, uint64_t hi, int b)
{
	uint64_t n = hi - lo;
	if (m == n) {
		if (!b)
			ref_add(p, lo, hi);
		return;
	}
	uint64_t k = k_of(n);
	if (m <= k) {
		ref_subproof(p, m, lo, lo + k, b);
		ref_add(p, lo + k, hi);
	} else {
		ref_subproof(p, m - k, lo + k, hi, 0);
		ref_add(p, lo, lo + k);
	}
}

static int ref_src(void *arg, unsigned level, uint64_t index, uint8_t out[H])
{
	(void)arg;
	uint64_t lo = index << level, hi = lo + ((uint64_t)1 << level);
	if (hi > MAXLEAVES)
		return ODX_EINVAL;
	ref_mth(lo, hi, out);
	return 0;
}

static void fill_leaves(struct merkle_hasher *h)
{
	for (int i = 0; i < MAXLEAVES; i++) {
		uint8_t d[4] = {(uint8_t)(i >> 8), (uint8_t)i, 0xab, 0xcd};
		assert_int_equal(merkle_leaf_hash(h, d, sizeof(d), leaves[i]), 0);
	}
}

/* ---- tests ---- */

/* The RFC 6962 test inputs used by Certificate Transparency implementations. */
static void test_ct_vectors(void **state)
{
	(void)state;
	static const char *in[8] = {"", "00", "10", "2021", "3031", "40414243",
				    "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
	static const char *roots[8] = {
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	};
	struct merkle_hasher *h;
	assert_int_equal(merkle_hasher_new(&h), 0);
	struct merkle_frontier f;
	merkle_frontier_init(&f);
	uint8_t root[H], want[H];
	assert_int_equal(merkle_frontier_root(h, &f, root), 0);
	assert_int_equal(hex_decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				    H, want),
			 0);
	assert_memory_equal(root, want, H); /* MTH({}) = SHA-256() */
	for (int i = 0; i < 8; i++) {
		uint8_t d[16], leaf[H];
		size_t n = strlen(in[i]) / 2;
		assert_int_equal(hex_decode(in[i], n, d), 0);
		assert_int_equal(merkle_leaf_hash(h, d, n, leaf), 0);
		assert_int_equal(merkle_frontier_push(h, &f, leaf, NULL, NULL), 0);
		assert_int_equal(merkle_frontier_root(h, &f, root), 0);
		assert_int_equal(hex_decode(roots[i], H, want), 0);
		assert_memory_equal(root, want, H);
	}
	merkle_hasher_free(h);
}

struct emitted {
	int n;
	unsigned level[70];
	uint64_t index[70];
	uint8_t hash[70][H];
};

static int record_emit(void *arg, unsigned level, uint64_t index, const uint8_t hash[H])
{
	struct emitted *e = arg;
	assert_true(e->n < 70);
	e->level[e->n] = level;
	e->index[e->n] = index;
	memcpy(e->hash[e->n], hash, H);
	e->n++;
	return 0;
}

static void test_frontier_matches_reference(void **state)
{
	(void)state;
	struct merkle_hasher *h;
	assert_int_equal(merkle_hasher_new(&h), 0);
	fill_leaves(h);
	struct merkle_frontier f;
	merkle_frontier_init(&f);
	for (uint64_t n = 1; n <= MAXLEAVES; n++) {
		struct emitted e = {0};
		assert_int_equal(merkle_frontier_push(h, &f, leaves[n - 1], record_emit, &e), 0);
		assert_int_equal(f.size, n);
		uint8_t root[H], want[H];
		assert_int_equal(merkle_frontier_root(h, &f, root), 0);
		ref_mth(0, n, want);
		assert_memory_equal(root, want, H);
		/* every perfect subtree that ends at leaf n, each once, lowest first */
		int expect = __builtin_ctzll(n);
		assert_int_equal(e.n, expect);
		for (int i = 0; i < e.n; i++) {
			assert_int_equal(e.level[i], (unsigned)i + 1);
			uint64_t span = (uint64_t)1 << e.level[i];
			assert_int_equal(e.index[i], n / span - 1);
			ref_mth(n - span, n, want);
			assert_memory_equal(e.hash[i], want, H);
		}
	}
	merkle_hasher_free(h);
}

static void check_inclusion(struct merkle_hasher *h, merkle_subtree_fn src, void *arg, uint64_t m,
			    uint64_t n)
{
	uint8_t path[MERKLE_MAX_PATH][H];
	size_t np = 999;
	assert_int_equal(merkle_inclusion_proof(h, src, arg, m, n, path, &np), 0);
	struct ref_proof want = {0};
	ref_path(&want, m, 0, n);
	assert_int_equal(np, want.n);
	if (np)
		assert_memory_equal(path, want.p, np * H);
	uint8_t root[H];
	ref_mth(0, n, root);
	assert_int_equal(merkle_inclusion_verify(h, m, n, leaves[m], (const uint8_t(*)[H])path, np,
						 root),
			 0);
	/*
	 * Wrong leaf, wrong index, a flipped bit, a short path: refused. (A wrong
	 * size is not always caught: a path may fit two sizes of the same shape,
	 * so the size is bound by the signed checkpoint, not by the path.)
	 */
	uint8_t bad[H];
	memcpy(bad, leaves[m], H);
	bad[0] ^= 1;
	assert_int_equal(merkle_inclusion_verify(h, m, n, bad, (const uint8_t(*)[H])path, np, root),
			 ODX_ECORRUPT);
	if (n > 1) {
		uint64_t other = (m + 1) % n;
		assert_int_not_equal(merkle_inclusion_verify(h, other, n, leaves[m],
							     (const uint8_t(*)[H])path, np, root),
				     0);
		path[np - 1][5] ^= 0x40;
		assert_int_equal(merkle_inclusion_verify(h, m, n, leaves[m],
							 (const uint8_t(*)[H])path, np, root),
				 ODX_ECORRUPT);
		path[np - 1][5] ^= 0x40;
		assert_int_equal(merkle_inclusion_verify(h, m, n, leaves[m],
							 (const uint8_t(*)[H])path, np - 1, root),
				 ODX_ECORRUPT);
	}
}

static void check_consistency(struct merkle_hasher *h, merkle_subtree_fn src, void *arg,
			      uint64_t m, uint64_t n)
{
	uint8_t path[MERKLE_MAX_PATH][H];
	size_t np = 999;
	assert_int_equal(merkle_consistency_proof(h, src, arg, m, n, path, &np), 0);
	struct ref_proof want = {0};
	if (m < n)
		ref_subproof(&want, m, 0, n, 1);
	assert_int_equal(np, want.n);
	if (np)
		assert_memory_equal(path, want.p, np * H);
	uint8_t rm[H], rn[H];
	ref_mth(0, m, rm);
	ref_mth(0, n, rn);
	assert_int_equal(merkle_consistency_verify(h, m, n, rm, rn, (const uint8_t(*)[H])path, np), 0);
	uint8_t bad[H];
	memcpy(bad, rm, H);
	bad[31] ^= 1;
	assert_int_equal(merkle_consistency_verify(h, m, n, bad, rn, (const uint8_t(*)[H])path, np),
			 ODX_ECORRUPT);
	memcpy(bad, rn, H);
	bad[31] ^= 1;
	assert_int_equal(merkle_consistency_verify(h, m, n, rm, bad, (const uint8_t(*)[H])path, np),
			 ODX_ECORRUPT);
	for (size_t i = 0; i < np; i++) {
		path[i][i % H] ^= 0x80;
		assert_int_equal(
			merkle_consistency_verify(h, m, n, rm, rn, (const uint8_t(*)[H])path, np),
			ODX_ECORRUPT);
		path[i][i % H] ^= 0x80;
	}
	if (np)
		assert_int_equal(merkle_consistency_verify(h, m, n, rm, rn,
							   (const uint8_t(*)[H])path, np - 1),
				 ODX_ECORRUPT);
}

static void test_inclusion_all_small_sizes(void **state)
{
	(void)state;
	struct merkle_hasher *h;
	assert_int_equal(merkle_hasher_new(&h), 0);
	fill_leaves(h);
	for (uint64_t n = 1; n <= 80; n++)
		for (uint64_t m = 0; m < n; m++)
			check_inclusion(h, ref_src, NULL, m, n);
	static const uint64_t big[] = {127, 128, 129, 255, 256, 257, 511, 512, 513, 699, 700};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		for (uint64_t m = 0; m < big[i]; m += 7)
			check_inclusion(h, ref_src, NULL, m, big[i]);
	uint8_t path[MERKLE_MAX_PATH][H];
	size_t np;
	assert_int_equal(merkle_inclusion_proof(h, ref_src, NULL, 5, 5, path, &np), ODX_EINVAL);
	merkle_hasher_free(h);
}

static void test_consistency_all_small_sizes(void **state)
{
	(void)state;
	struct merkle_hasher *h;
	assert_int_equal(merkle_hasher_new(&h), 0);
	fill_leaves(h);
	for (uint64_t n = 1; n <= 64; n++)
		for (uint64_t m = 1; m <= n; m++)
			check_consistency(h, ref_src, NULL, m, n);
	static const uint64_t big[] = {100, 128, 129, 255, 256, 257, 600, 700};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		for (uint64_t m = 1; m <= big[i]; m += 13)
			check_consistency(h, ref_src, NULL, m, big[i]);
	uint8_t path[MERKLE_MAX_PATH][H];
	size_t np;
	assert_int_equal(merkle_consistency_proof(h, ref_src, NULL, 0, 5, path, &np), ODX_EINVAL);
	assert_int_equal(merkle_consistency_proof(h, ref_src, NULL, 6, 5, path, &np), ODX_EINVAL);
	/* a proof for another pair of sizes does not verify */
	uint8_t r3[H], r7[H], r6[H];
	ref_mth(0, 3, r3);
	ref_mth(0, 7, r7);
	ref_mth(0, 6, r6);
	assert_int_equal(merkle_consistency_proof(h, ref_src, NULL, 3, 7, path, &np), 0);
	assert_int_not_equal(merkle_consistency_verify(h, 3, 6, r3, r6, (const uint8_t(*)[H])path, np),
			     0);
	merkle_hasher_free(h);
}

/* ---- proofs served by a real audit file ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void test_log_proofs(void **state)
{
	(void)state;
	char dir[64], db[128], key[128];
	snprintf(dir, sizeof(dir), "/tmp/odx-test-audit-merkle-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/audit.db", dir);
	snprintf(key, sizeof(key), "%s/%s", dir, AUDIT_KEY_FILE);
	assert_int_equal(audit_key_init(dir), 0);
	struct audit_options o = {.key_path = key, .checkpoint_every = 1000000,
				  .checkpoint_interval_ns = INT64_MAX / 2};
	struct audit_log *log;
	assert_int_equal(audit_open(db, &o, &log), 0);
	struct merkle_hasher *h;
	assert_int_equal(merkle_hasher_new(&h), 0);
	const uint64_t N = 600; /* past 2^8 so stored nodes of level 4 and 8 serve proofs */
	for (uint64_t i = 0; i < N; i++) {
		char reason[32];
		snprintf(reason, sizeof(reason), "r%llu", (unsigned long long)i);
		struct audit_record r = {.actor_type = AUDIT_ACTOR_SYSTEM, .tenant_id = "",
					 .action = "test.proof", .outcome = AUDIT_SUCCESS,
					 .reason = reason};
		assert_int_equal(audit_append(log, &r), 0);
		assert_int_equal(r.seq, i + 1);
		/* the leaf, computed here from the record bytes */
		uint8_t canon[AUDIT_CANONICAL_MAX], buf[AUDIT_CANONICAL_MAX + 1];
		size_t n;
		assert_int_equal(audit_record_encode(&r, canon, &n), 0);
		buf[0] = 0;
		memcpy(buf + 1, canon, n);
		assert_int_equal(hash_sha256(buf, n + 1, leaves[i]), 0);
	}
	static const uint64_t sizes[] = {1, 2, 3, 15, 16, 17, 31, 255, 256, 257, 300, 511, 512, 513, 600};
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint64_t n = sizes[si];
		uint8_t root[H], want[H];
		assert_int_equal(audit_root(log, n, root), 0);
		ref_mth(0, n, want);
		assert_memory_equal(root, want, H);
		for (uint64_t seq = 1; seq <= n; seq += (n > 40 ? 37 : 1)) {
			struct audit_proof p;
			assert_int_equal(audit_inclusion_proof(log, seq, n, &p), 0);
			assert_memory_equal(p.leaf_hash, leaves[seq - 1], H);
			struct ref_proof rp = {0};
			ref_path(&rp, seq - 1, 0, n);
			assert_int_equal(p.n, rp.n);
			if (p.n)
				assert_memory_equal(p.path, rp.p, p.n * H);
			assert_int_equal(merkle_inclusion_verify(h, seq - 1, n, p.leaf_hash,
								 (const uint8_t(*)[H])p.path, p.n, root),
					 0);
		}
		for (uint64_t m = 1; m <= n; m += (n > 40 ? 29 : 1)) {
			struct audit_proof p;
			assert_int_equal(audit_consistency_proof(log, m, n, &p), 0);
			struct ref_proof rp = {0};
			if (m < n)
				ref_subproof(&rp, m, 0, n, 1);
			assert_int_equal(p.n, rp.n);
			if (p.n)
				assert_memory_equal(p.path, rp.p, p.n * H);
			uint8_t rm[H];
			ref_mth(0, m, rm);
			assert_int_equal(merkle_consistency_verify(h, m, n, rm, root,
								   (const uint8_t(*)[H])p.path, p.n),
					 0);
		}
	}
	struct audit_proof p;
	assert_int_equal(audit_inclusion_proof(log, 0, 10, &p), ODX_EINVAL);
	assert_int_equal(audit_inclusion_proof(log, 11, 10, &p), ODX_EINVAL);
	assert_int_equal(audit_inclusion_proof(log, 1, N + 1, &p), ODX_EINVAL);
	assert_int_equal(audit_consistency_proof(log, 0, 10, &p), ODX_EINVAL);
	assert_int_equal(audit_consistency_proof(log, 11, 10, &p), ODX_EINVAL);
	assert_int_equal(audit_consistency_proof(log, 10, N + 1, &p), ODX_EINVAL);
	merkle_hasher_free(h);
	audit_close(log);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ct_vectors),
		cmocka_unit_test(test_frontier_matches_reference),
		cmocka_unit_test(test_inclusion_all_small_sizes),
		cmocka_unit_test(test_consistency_all_small_sizes),
		cmocka_unit_test(test_log_proofs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
