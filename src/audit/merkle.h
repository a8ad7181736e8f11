/*
 * merkle.h — RFC 6962 Merkle tree hashing, proofs and proof checks.
 *
 * Hashes (RFC 6962 §2.1, SHA-256):
 *   MTH({})        = SHA-256()                          (the empty tree)
 *   leaf hash      = SHA-256(0x00 || leaf bytes)
 *   node hash      = SHA-256(0x01 || left || right)
 *   MTH(D[0:n])    = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of
 *                    two smaller than n.
 * Every subtree of that shape is either perfect (2^l leaves starting at a
 * multiple of 2^l: "level l, index i" covers leaves [i*2^l, (i+1)*2^l)) or
 * a right edge made of perfect ones, so a source that answers perfect
 * subtree hashes is all the proof builders need (merkle_subtree_fn).
 *
 * Indices here are 0-based leaf indices (the audit log's seq is index + 1).
 * Nothing here allocates except merkle_hasher_new.
 */
#ifndef ODX_MERKLE_H
#define ODX_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32
#define MERKLE_MAX_LEVELS 64 /* a tree of up to 2^64-1 leaves */
#define MERKLE_MAX_PATH 66   /* longest inclusion (64) or consistency (65) proof */

/* A reusable SHA-256 context (cheaper than a one-shot digest per hash). */
struct merkle_hasher;

/* New hasher; caller frees with merkle_hasher_free (NULL accepted). */
int merkle_hasher_new(struct merkle_hasher **out);
void merkle_hasher_free(struct merkle_hasher *h);
/* out = SHA-256(a || b); either part may be empty. Returns 0 or ODX_ECRYPTO. */
int merkle_sha256_2(struct merkle_hasher *h, const void *a, size_t na, const void *b, size_t nb,
		    uint8_t out[static MERKLE_HASH_LEN]);
/* out = SHA-256(0x00 || data). */
int merkle_leaf_hash(struct merkle_hasher *h, const void *data, size_t n,
		     uint8_t out[static MERKLE_HASH_LEN]);
/* out = SHA-256(0x01 || left || right); out may alias left or right. */
int merkle_node_hash(struct merkle_hasher *h, const uint8_t left[static MERKLE_HASH_LEN],
		     const uint8_t right[static MERKLE_HASH_LEN], uint8_t out[static MERKLE_HASH_LEN]);

/*
 * The right frontier of a growing tree: one perfect subtree root per set
 * bit of size, largest (leftmost) first. Enough to append and to compute
 * the root; a plain value, copy it to try appends that may be undone.
 */
struct merkle_frontier {
	uint64_t size;
	unsigned n;
	uint8_t node[MERKLE_MAX_LEVELS][MERKLE_HASH_LEN];
};

/* Called for each perfect subtree of level >= 1 an append completes. */
typedef int (*merkle_emit_fn)(void *arg, unsigned level, uint64_t index,
			      const uint8_t hash[static MERKLE_HASH_LEN]);

void merkle_frontier_init(struct merkle_frontier *f);
/*
 * Appends one leaf hash. emit (may be NULL) sees every completed subtree,
 * lowest level first; a non-zero return from it is returned at once and f is
 * then left half-updated (callers work on a copy). ODX_ETOOBIG when full.
 */
int merkle_frontier_push(struct merkle_hasher *h, struct merkle_frontier *f,
			 const uint8_t leaf[static MERKLE_HASH_LEN], merkle_emit_fn emit, void *arg);
/* The root of the f->size leaves appended so far (MTH({}) when none). */
int merkle_frontier_root(struct merkle_hasher *h, const struct merkle_frontier *f,
			 uint8_t out[static MERKLE_HASH_LEN]);

/* Answers the hash of the perfect subtree (level, index). Returns 0 or an error. */
typedef int (*merkle_subtree_fn)(void *arg, unsigned level, uint64_t index,
				 uint8_t out[static MERKLE_HASH_LEN]);

/* MTH(D[lo:hi]) for an RFC-shaped range (lo a multiple of the largest power of two <= hi-lo). */
int merkle_range_hash(struct merkle_hasher *h, merkle_subtree_fn src, void *arg, uint64_t lo,
		      uint64_t hi, uint8_t out[static MERKLE_HASH_LEN]);
/*
 * The audit path of leaf `index` in the tree of `size` leaves (RFC 6962
 * §2.1.1), deepest first. Writes *npath entries into path. ODX_EINVAL unless
 * index < size.
 */
int merkle_inclusion_proof(struct merkle_hasher *h, merkle_subtree_fn src, void *arg,
			   uint64_t index, uint64_t size,
			   uint8_t path[static MERKLE_MAX_PATH][MERKLE_HASH_LEN], size_t *npath);
/*
 * The consistency proof between the trees of sizes m and n (RFC 6962
 * §2.1.2). ODX_EINVAL unless 1 <= m <= n; m == n gives an empty proof.
 */
int merkle_consistency_proof(struct merkle_hasher *h, merkle_subtree_fn src, void *arg,
			     uint64_t m, uint64_t n,
			     uint8_t path[static MERKLE_MAX_PATH][MERKLE_HASH_LEN], size_t *npath);

/*
 * Checks an audit path (RFC 9162 §2.1.3.2): 0 when `leaf` is leaf `index`
 * of the tree of `size` leaves whose root is `root`, ODX_ECORRUPT when not,
 * ODX_EINVAL for impossible arguments.
 */
int merkle_inclusion_verify(struct merkle_hasher *h, uint64_t index, uint64_t size,
			    const uint8_t leaf[static MERKLE_HASH_LEN],
			    const uint8_t (*path)[MERKLE_HASH_LEN], size_t npath,
			    const uint8_t root[static MERKLE_HASH_LEN]);
/*
 * Checks a consistency proof (RFC 9162 §2.1.4.2): 0 when the tree of size
 * m with root root_m is a prefix of the tree of size n with root root_n,
 * ODX_ECORRUPT when not, ODX_EINVAL unless 1 <= m <= n.
 */
int merkle_consistency_verify(struct merkle_hasher *h, uint64_t m, uint64_t n,
			      const uint8_t root_m[static MERKLE_HASH_LEN],
			      const uint8_t root_n[static MERKLE_HASH_LEN],
			      const uint8_t (*path)[MERKLE_HASH_LEN], size_t npath);

#endif
