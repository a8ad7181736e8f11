/*
 * audit.h — the tamper-evident audit log (SPEC §9): append with group
 * commit, hash chain, RFC 6962 Merkle tree, signed checkpoints, proofs,
 * filtered reads, streaming export, offline verification.
 *
 * The log is its own SQLite file (the daemon uses <data>/audit.db), never
 * the state store. docs/audit.md is the normative description of the bytes:
 *
 *   canonical(r) = u8 version (1) || u64 seq || i64 time_ns ||
 *                  str actor_type || str actor_id || str actor_email ||
 *                  str tenant_id || str action || str resource ||
 *                  str outcome || str reason || str request_id || str source_ip
 *     integers big-endian, str = u32 big-endian byte length || UTF-8 bytes,
 *     enums as their names ("user", "success", ...).
 *   hash(r)      = SHA-256(prev_hash || canonical(r)); prev_hash of seq 1 is 32 zero bytes
 *   leaf(r)      = SHA-256(0x00 || canonical(r))          (RFC 6962 leaf, index seq-1)
 *   checkpoint signature = Ed25519 over
 *                  "odysseus-audit-checkpoint-v1" || 0x00 || u64 tree_size ||
 *                  i64 time_ns || root_hash(32)
 *   key_id       = base64url(first 12 bytes of SHA-256(raw 32-byte public key))
 *
 * Invariants: seq runs 1, 2, 3, ... without gaps; time_ns never decreases
 * along seq; records, checkpoints and keys are never updated or deleted —
 * this API has no call that would, and the file's triggers refuse UPDATE,
 * DELETE and out-of-sequence INSERT for any client.
 *
 * Tenancy: every read names its scope (struct audit_filter); a tenant's
 * caller passes AUDIT_SCOPE_TENANT with that tenant's id, so a tenant can
 * never read another's records by leaving a field out.
 *
 * Reads see a record as soon as audit_append has returned. They are served
 * by index tables the writer fills in bulk shortly after (db.c says why
 * records carries no SQL index) plus a scan of the not-yet-indexed tail.
 *
 * Threads: one struct audit_log is shared by all threads; every function
 * taking it is thread-safe.
 */
#ifndef ODX_AUDIT_H
#define ODX_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/merkle.h"

#define AUDIT_HASH_LEN 32
#define AUDIT_KEY_ID_LEN 17 /* 16 base64url chars + NUL */
#define AUDIT_PUB_LEN 32
#define AUDIT_SIG_LEN 64
#define AUDIT_KEY_FILE "keys/audit.pem" /* under the data directory */

/* Field caps in bytes (UTF-8); longer values are refused with ODX_EINVAL. */
#define AUDIT_MAX_ID 128        /* actor_id, tenant_id, request_id */
#define AUDIT_MAX_EMAIL 320
#define AUDIT_MAX_ACTION 64     /* [a-z0-9_.-]+ */
#define AUDIT_MAX_RESOURCE 512
#define AUDIT_MAX_REASON 1024
#define AUDIT_MAX_SOURCE_IP 64
#define AUDIT_QUERY_MAX 1000    /* most records per audit_query call */

enum audit_actor_type {
	AUDIT_ACTOR_USER = 1,
	AUDIT_ACTOR_API_KEY, /* actor_id = the key id; actor_email = its owner's, if any */
	AUDIT_ACTOR_AGENT,
	AUDIT_ACTOR_SYSTEM,
	AUDIT_ACTOR_ANONYMOUS, /* e.g. a failed login: actor_email = the address tried */
};

enum audit_outcome {
	AUDIT_SUCCESS = 1,
	AUDIT_FAILURE,
	AUDIT_DENIED,
};

/*
 * One record. The caller fills the fields below "caller"; NULL strings mean
 * "". audit_append fills seq, time_ns, prev_hash and hash. Records handed to
 * callbacks point into the log's buffers: valid during the callback only.
 */
struct audit_record {
	uint64_t seq;
	int64_t time_ns; /* UTC ns since the epoch */
	uint8_t prev_hash[AUDIT_HASH_LEN];
	uint8_t hash[AUDIT_HASH_LEN];
	/* caller */
	enum audit_actor_type actor_type;
	const char *actor_id;
	const char *actor_email;
	const char *tenant_id; /* "" = the platform */
	const char *action;    /* "auth.login", "user.create", "authz.denied", ... */
	const char *resource;  /* "users/usr_...", "" when none */
	enum audit_outcome outcome;
	const char *reason;
	const char *request_id;
	const char *source_ip;
};

/* A signed statement "the log had tree_size records and this root". */
struct audit_checkpoint {
	uint64_t tree_size;
	uint8_t root_hash[AUDIT_HASH_LEN];
	int64_t time_ns;
	char key_id[AUDIT_KEY_ID_LEN];
	uint8_t signature[AUDIT_SIG_LEN];
};

struct audit_options {
	const char *key_path;           /* Ed25519 PEM, see audit_key_init; required */
	uint64_t checkpoint_every;      /* sign after this many new records; 0: 10000 */
	int64_t checkpoint_interval_ns; /* or when the oldest unsigned record is this old; 0: 1 s */
	uint64_t index_every;           /* extend the read indexes every this many records; 0: 1024 */
	int64_t index_idle_ns;          /* or after this much quiet; 0: 0.2 s */
	const char *sqlite_vfs;         /* NULL: SQLite's default (tests pass a failing VFS) */
};

struct audit_log;

/* ---- the signing key ---- */

/*
 * Creates <data_dir>/keys (0700) and <data_dir>/keys/audit.pem (0600) with a
 * new Ed25519 key unless a valid one is there. Returns 0, -errno or
 * ODX_ECORRUPT (a file that is not an Ed25519 key: left alone).
 */
int audit_key_init(const char *data_dir);
/* key_id of a raw public key (the JWT keyring's rule). */
int audit_key_id(const uint8_t pub[static AUDIT_PUB_LEN], char out[static AUDIT_KEY_ID_LEN]);

/* ---- open, append ---- */

/*
 * Opens (creating if needed) the log at db_path and starts its writer
 * thread; loads the key and registers its public half in the file. Refuses
 * a file that is not an audit log (ODX_ECORRUPT) or was written by a newer
 * version. Caller frees with audit_close.
 */
int audit_open(const char *db_path, const struct audit_options *opts, struct audit_log **out);
/*
 * Writes pending records, signs a last checkpoint if records are unsigned,
 * stops the writer and frees everything. No call may be in flight. NULL ok.
 */
void audit_close(struct audit_log *log);
/*
 * Appends rec and returns once it is durable (committed with fsync). Fills
 * rec->seq, time_ns, prev_hash, hash on success only. Concurrent callers
 * share one transaction and one fsync (group commit). Returns 0,
 * ODX_EINVAL (a field is missing, too long, not UTF-8, or an unknown enum),
 * or ODX_EUNAVAIL when the file cannot be written (disk full, I/O error):
 * nothing of the batch is kept, no seq is used up, and the next call tries
 * again. Blocks: never call it on an event-loop thread.
 */
int audit_append(struct audit_log *log, struct audit_record *rec);
/*
 * True while the log cannot write: the last batch of records failed and
 * none has been written since. A caller that must not change anything
 * unaudited checks it first (the next append is the probe that clears it).
 */
bool audit_failing(struct audit_log *log);

/* ---- checkpoints ---- */

/*
 * Signs a checkpoint of everything committed so far (after any appends
 * already waiting) and writes it durably; when no record came since the
 * last checkpoint that one is returned. ODX_ENOTFOUND when the log is
 * empty, ODX_EUNAVAIL when it cannot be written.
 */
int audit_checkpoint_now(struct audit_log *log, struct audit_checkpoint *out);
/* The newest checkpoint; ODX_ENOTFOUND when there is none. */
int audit_checkpoint_latest(struct audit_log *log, struct audit_checkpoint *out);
/* The checkpoint of exactly tree_size; ODX_ENOTFOUND when there is none. */
int audit_checkpoint_get(struct audit_log *log, uint64_t tree_size, struct audit_checkpoint *out);
typedef int (*audit_checkpoint_fn)(const struct audit_checkpoint *cp, void *arg);
/*
 * Calls cb for up to limit (1..AUDIT_QUERY_MAX) checkpoints with
 * tree_size > after_size, ascending. A non-zero return from cb stops the
 * walk and is returned.
 */
int audit_checkpoints_list(struct audit_log *log, uint64_t after_size, int limit,
			   audit_checkpoint_fn cb, void *arg);
/* The bytes a checkpoint signature covers (always AUDIT_CHECKPOINT_MSG_LEN). */
#define AUDIT_CHECKPOINT_MSG_LEN (28 + 1 + 8 + 8 + AUDIT_HASH_LEN)
void audit_checkpoint_message(const struct audit_checkpoint *cp,
			      uint8_t out[static AUDIT_CHECKPOINT_MSG_LEN]);
/*
 * Checks cp's signature with pub and that cp->key_id names pub: 0, or
 * ODX_EAUTH.
 */
int audit_checkpoint_verify(const struct audit_checkpoint *cp,
			    const uint8_t pub[static AUDIT_PUB_LEN]);
/* The log's public key and its key_id (what a verifier pins). */
int audit_public_key(struct audit_log *log, uint8_t pub[static AUDIT_PUB_LEN],
		     char key_id[static AUDIT_KEY_ID_LEN]);

/* ---- tree, proofs ---- */

/* The number of committed records (= the tree size). */
int audit_size(struct audit_log *log, uint64_t *out);
/* The Merkle root of the first tree_size records (1..current size). */
int audit_root(struct audit_log *log, uint64_t tree_size, uint8_t out[static AUDIT_HASH_LEN]);

struct audit_proof {
	uint64_t tree_size;
	uint64_t seq;                     /* inclusion: the record; consistency: the older size */
	uint8_t leaf_hash[AUDIT_HASH_LEN]; /* inclusion only */
	size_t n;
	uint8_t path[MERKLE_MAX_PATH][AUDIT_HASH_LEN];
};

/*
 * Inclusion proof of record seq in the tree of tree_size records (leaf
 * index seq-1, RFC 6962 §2.1.1). ODX_EINVAL unless 1 <= seq <= tree_size
 * <= current size.
 */
int audit_inclusion_proof(struct audit_log *log, uint64_t seq, uint64_t tree_size,
			  struct audit_proof *out);
/* Consistency proof between sizes m and n (RFC 6962 §2.1.2); 1 <= m <= n <= current size. */
int audit_consistency_proof(struct audit_log *log, uint64_t m, uint64_t n,
			    struct audit_proof *out);

/* ---- reading ---- */

enum audit_scope {
	AUDIT_SCOPE_TENANT = 1, /* records of tenant_id only ("" = the platform's own) */
	AUDIT_SCOPE_ALL = 2,    /* every record: platform auditors and full exports only */
};

/*
 * Filters, all applied in SQL. scope is required (a zeroed filter is
 * refused): with AUDIT_SCOPE_TENANT, tenant_id must be set and is always
 * applied; with AUDIT_SCOPE_ALL, tenant_id must be NULL. Other fields are
 * optional: 0/NULL means "any".
 */
struct audit_filter {
	enum audit_scope scope;
	const char *tenant_id;
	int64_t from_ns;           /* time_ns >= from_ns */
	int64_t to_ns;             /* time_ns <  to_ns */
	const char *action_prefix; /* "auth." matches "auth.login"; [a-z0-9_.-]* */
	const char *actor_id;      /* exact */
	enum audit_outcome outcome;
	const char *resource;      /* exact */
};

typedef int (*audit_record_fn)(const struct audit_record *rec, void *arg);
/*
 * Calls cb for up to limit (1..AUDIT_QUERY_MAX) records matching f with
 * seq > after_seq, ascending seq (pass the last seq seen to get the next
 * page). Returns 0, ODX_EINVAL for a bad filter, or cb's non-zero return.
 */
int audit_query(struct audit_log *log, const struct audit_filter *f, uint64_t after_seq,
		int limit, audit_record_fn cb, void *arg);

enum audit_format {
	AUDIT_FORMAT_JSONL = 1, /* one JSON object per line, see docs/audit.md */
	AUDIT_FORMAT_CSV,       /* RFC 4180 with a header line; for people, not verification */
};
/* Receives export bytes; a non-zero return stops the export and is returned. */
typedef int (*audit_write_fn)(const void *buf, size_t n, void *arg);
/*
 * Streams every record matching f (no limit) in seq order through write,
 * in constant memory: the records that existed when it began. Each line
 * carries the record's prev_hash and hash; a JSON-lines export of
 * AUDIT_SCOPE_ALL with no other filter is verifiable by audit_verify_export.
 */
int audit_export(struct audit_log *log, const struct audit_filter *f, enum audit_format fmt,
		 audit_write_fn write, void *arg);

/*
 * The same export in parts, for a caller that must not block long (an
 * event loop sending to a slow client): begin fixes the snapshot (the
 * records committed so far), each next writes the matches among the next
 * `window` seqs. The filter's strings must outlive the cursor.
 */
#define AUDIT_EXPORT_WINDOW 4096
struct audit_export_cursor {
	struct audit_filter f;
	enum audit_format fmt;
	uint64_t end_seq;  /* the last seq of the snapshot */
	uint64_t done_seq; /* every seq up to this one is written */
	bool header_sent;
};
/* 0, or ODX_EINVAL for a bad filter or format. */
int audit_export_begin(struct audit_log *log, const struct audit_filter *f,
		       enum audit_format fmt, struct audit_export_cursor *cur);
/* Returns 1 when more parts remain, 0 when the export is complete, or an error. */
int audit_export_next(struct audit_log *log, struct audit_export_cursor *cur,
		      uint64_t window, audit_write_fn write, void *arg);
/*
 * Streams the checkpoints with tree_size <= max_tree_size (0: all) as JSON
 * lines, each with its signer's public key: the companion file of an
 * export for audit_verify_export. For a verifiable export of a live log:
 * audit_checkpoint_now (so a signature covers everything so far), export
 * the records, then the checkpoints up to the last seq exported (a
 * checkpoint beyond the records' end reads as truncation).
 */
int audit_export_checkpoints(struct audit_log *log, uint64_t max_tree_size, audit_write_fn write,
			     void *arg);

/* ---- the record bytes ---- */

#define AUDIT_CANONICAL_MAX 4096
/*
 * Writes canonical(rec) into buf and its length into *len. ODX_EINVAL when
 * a field breaks the rules above.
 */
int audit_record_encode(const struct audit_record *rec, uint8_t buf[static AUDIT_CANONICAL_MAX],
			size_t *len);
/* Names of enum values as stored and encoded ("user", "denied", ...); NULL if unknown. */
const char *audit_actor_type_name(enum audit_actor_type t);
const char *audit_outcome_name(enum audit_outcome o);
/* Parses a name back; returns 0 or ODX_EINVAL. */
int audit_actor_type_parse(const char *s, enum audit_actor_type *out);
int audit_outcome_parse(const char *s, enum audit_outcome *out);

/* ---- offline verification ---- */

enum audit_problem {
	AUDIT_PROBLEM_NONE = 0,
	AUDIT_PROBLEM_MALFORMED,    /* not an audit log, or a row/line that cannot be read */
	AUDIT_PROBLEM_ALTERED,      /* a record's content does not match its hash */
	AUDIT_PROBLEM_MISSING,      /* a record is absent (a gap in seq) */
	AUDIT_PROBLEM_REORDERED,    /* a record sits at another record's place */
	AUDIT_PROBLEM_INSERTED,     /* a record that is not part of the chain */
	AUDIT_PROBLEM_TRUNCATED,    /* fewer records than a checkpoint covers */
	AUDIT_PROBLEM_UNSIGNED,     /* records after the last signed checkpoint */
	AUDIT_PROBLEM_CHECKPOINT_ROOT,      /* a checkpoint's root does not match the records */
	AUDIT_PROBLEM_CHECKPOINT_SIGNATURE, /* bad signature, or an unknown or unpinned key */
	AUDIT_PROBLEM_SEEN_MISMATCH, /* the root at a previously seen size differs */
	AUDIT_PROBLEM_DERIVED,      /* a stored leaf hash or Merkle node disagrees with the records */
};

/* "altered", "missing", ... */
const char *audit_problem_name(enum audit_problem p);

struct audit_verify_opts {
	const uint8_t *pinned_pub; /* 32 bytes: every checkpoint must be signed by it; NULL:
				      trust the keys the file/export names (weaker) */
	uint64_t seen_size;        /* a checkpoint seen before (0: none): the log must */
	const uint8_t *seen_root;  /* still hold seen_size records with this root */
	bool allow_unsigned;       /* records after the last checkpoint are not an error
				      (a live log, or after a crash) */
	bool partial;              /* export only: a filtered export; check each record
				      against its own prev_hash/hash, nothing across records */
};

struct audit_verify_report {
	uint64_t records;     /* records read */
	uint64_t checkpoints; /* checkpoints whose root and signature verified */
	uint64_t signed_size; /* records covered by the last good checkpoint */
	uint8_t root[AUDIT_HASH_LEN]; /* root of all records read (full checks only) */
	enum audit_problem problem;   /* the first problem, in log order */
	uint64_t bad_seq;             /* its first bad seq (0: not about one record) */
	uint64_t checkpoint_size;     /* checkpoint problems: the checkpoint's tree_size */
	char detail[256];             /* one human sentence */
};

/*
 * Verifies an audit file read-only: seq gap-free from 1, each prev_hash
 * links, each hash and leaf recomputes, stored Merkle nodes match, every
 * checkpoint's root recomputes and its signature verifies, the seen
 * checkpoint (if any) is still there. opts may be NULL. Returns 0 when all
 * holds, ODX_ECORRUPT with rep describing the first problem, or an error
 * (ODX_ENOTFOUND, ODX_EIO, ...) when the file cannot be read. rep is
 * written in every case but the last.
 */
int audit_verify_file(const char *path, const struct audit_verify_opts *opts,
		      struct audit_verify_report *rep);
/*
 * The same checks on a JSON-lines export (records_path, from audit_export)
 * and its checkpoints (checkpoints_path from audit_export_checkpoints, or
 * NULL: then no signature covers the records, so allow_unsigned is needed).
 */
int audit_verify_export(const char *records_path, const char *checkpoints_path,
			const struct audit_verify_opts *opts, struct audit_verify_report *rep);

#endif
