/*
 * internal.h — shared by the audit module's files only (audit.c, query.c,
 * record.c, verify.c); not part of its interface.
 *
 * The file's tables (schema version 1, PRAGMA application_id 'ODXA'):
 *   records(seq PK, time_ns, actor_type, actor_id, actor_email, tenant_id,
 *           action, resource, outcome, reason, request_id, source_ip,
 *           prev_hash, hash, leaf_hash)
 *   merkle_nodes(level, idx, hash)  perfect subtrees at levels 4, 8, 12, ...
 *                                   (derived data: speeds up proofs)
 *   idx_tenant(bucket, tenant_id, seq), idx_tenant_action(bucket, tenant_id,
 *   action, seq), idx_actor(bucket, actor_id, seq), idx_resource(bucket,
 *   resource, seq)  with bucket = seq >> AUDIT_BUCKET_BITS
 *                                   (derived: the read indexes, filled in
 *                                   bulk up to max(idx_marks.upto); db.c)
 *   idx_marks(upto, time_ns)
 *   checkpoints(tree_size PK, root_hash, time_ns, key_id, signature)
 *   signing_keys(key_id PK, public_key, created_ns)
 */
#ifndef ODX_AUDIT_INTERNAL_H
#define ODX_AUDIT_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "audit/merkle.h"

#define AUDIT_APP_ID 0x4F445841 /* 'ODXA' */
#define AUDIT_SCHEMA_VERSION 1
#define AUDIT_NODE_STRIDE 4 /* merkle_nodes keeps levels that are multiples of this */
#define AUDIT_BUCKET_BITS 12 /* idx_* tables: 4096 records per bucket */
#define AUDIT_BUSY_MS 5000

/* Column list of records, in the order audit_row_read expects. */
#define AUDIT_RECORD_COLS                                                                   \
	"seq, time_ns, actor_type, actor_id, actor_email, tenant_id, action, resource, "    \
	"outcome, reason, request_id, source_ip, prev_hash, hash, leaf_hash"

/* The schema, created in one transaction by audit_open. */
extern const char audit_schema_sql[];

/* Maps an SQLite result code to ODX_E*. */
int audit_map_sqlite(int rc);
/*
 * Opens path with flags (SQLITE_OPEN_*) and vfs (NULL: default), sets the
 * busy timeout, and checks application_id/user_version unless the file is
 * new (empty). Returns 0 or an ODX_E* code.
 */
int audit_db_open(const char *path, int flags, const char *vfs, sqlite3 **out);

/*
 * A record read from a row: strings point into the statement's current
 * row and live until the next step. leaf_hash is the stored (derived)
 * leaf. Returns 0, or ODX_ECORRUPT when a column has the wrong type or
 * size, or an enum is unknown.
 */
struct audit_row {
	struct audit_record rec;
	uint8_t leaf_hash[AUDIT_HASH_LEN];
};
int audit_row_read(sqlite3_stmt *st, struct audit_row *row);

/* Reads a checkpoints row (tree_size, root_hash, time_ns, key_id, signature). */
int audit_checkpoint_row(sqlite3_stmt *st, struct audit_checkpoint *cp);

/* True when s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool audit_utf8_valid(const char *s, size_t n);
/*
 * canonical(rec), chain hash and leaf hash in one go. prev is the hash the
 * record links to. Returns 0, ODX_EINVAL (bad field) or ODX_ECRYPTO.
 */
int audit_record_hashes(struct merkle_hasher *h, const struct audit_record *rec,
			const uint8_t prev[static AUDIT_HASH_LEN], uint8_t hash[static AUDIT_HASH_LEN],
			uint8_t leaf[static AUDIT_HASH_LEN]);

/*
 * Perfect-subtree source over a file's records.leaf_hash and merkle_nodes
 * (a merkle_subtree_fn). Uses the connection's current transaction.
 */
struct audit_tree_src {
	sqlite3 *db;
	struct merkle_hasher *h;
	sqlite3_stmt *leaves; /* SELECT leaf_hash FROM records WHERE seq BETWEEN ? AND ? */
	sqlite3_stmt *nodes;  /* SELECT hash FROM merkle_nodes WHERE level = ? AND idx BETWEEN ? AND ? */
};
int audit_tree_src_init(struct audit_tree_src *s, sqlite3 *db, struct merkle_hasher *h);
void audit_tree_src_done(struct audit_tree_src *s);
int audit_tree_subtree(void *arg, unsigned level, uint64_t index, uint8_t out[static AUDIT_HASH_LEN]);

/*
 * A pooled read connection (query_only) with its own hasher; used by one
 * thread at a time. put ends any transaction left open.
 */
struct audit_rconn {
	sqlite3 *db;
	struct merkle_hasher *h;
};
int audit_rconn_get(struct audit_log *log, struct audit_rconn **out);
void audit_rconn_put(struct audit_log *log, struct audit_rconn *c);

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 when invalid or NUL. */
size_t audit_utf8_len(const unsigned char *s, size_t n);

/* JSON-lines and CSV renderings of records and checkpoints (query.c). */
struct audit_outbuf {
	char *buf;
	size_t len, cap;
	audit_write_fn write;
	void *arg;
};
int audit_out_flush(struct audit_outbuf *o);
int audit_out_record_json(struct audit_outbuf *o, const struct audit_record *r);
int audit_out_checkpoint_json(struct audit_outbuf *o, const struct audit_checkpoint *cp,
			      const uint8_t pub[static AUDIT_PUB_LEN]);

#endif
