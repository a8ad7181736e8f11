/*
 * db.c — the audit file's schema, opening it, reading its rows, and the
 * perfect-subtree source the proofs and the writer's restart use.
 *
 * The schema makes the file append-only by itself: triggers abort any
 * UPDATE or DELETE, and any INSERT that is not the next record in sequence
 * linking to the previous hash (which also stops INSERT OR REPLACE, whose
 * implicit delete would not fire a delete trigger). An attacker with the
 * file can still drop the triggers; that is what the chain, the tree and
 * the signed checkpoints are for.
 *
 * Indexes are kept off the durable path. A secondary index on records
 * makes every append dirty one more page at a random place (a record's
 * tenant, actor, resource are all over the tree), and each dirty page
 * costs a WAL frame and a checkpoint write: measured here, four such
 * indexes made appends write ~41 KB per record and cut group-commit
 * throughput ~8x. So records has none. The idx_* tables are what the
 * indexes would be, with one change: their key starts with
 * bucket = seq >> AUDIT_BUCKET_BITS. The writer fills them in bulk (every
 * index_every records, or after a quiet moment), and because of the
 * bucket every fill lands in the current bucket's small key range instead
 * of next to each key's older entries all over the tree, so a fill
 * dirties a few dozen pages, not one per record. Readers look bucket by
 * bucket (query.c). idx_marks says how far the idx_* tables cover
 * (max(upto)); queries scan the short unindexed tail of records after it.
 * All idx_* data is derived: the verifier does not trust it, and nothing
 * depends on it for integrity.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "audit/internal.h"
#include "core/err.h"

#define NO_CHANGE(tbl)                                                                       \
	"CREATE TRIGGER " tbl "_no_update BEFORE UPDATE ON " tbl                             \
	" BEGIN SELECT RAISE(ABORT, 'audit log is append-only: " tbl " cannot be updated'); END;\n" \
	"CREATE TRIGGER " tbl "_no_delete BEFORE DELETE ON " tbl                             \
	" BEGIN SELECT RAISE(ABORT, 'audit log is append-only: " tbl " cannot be deleted'); END;\n"

const char audit_schema_sql[] =
	"CREATE TABLE records (\n"
	"  seq INTEGER PRIMARY KEY CHECK (seq >= 1),\n"
	"  time_ns INTEGER NOT NULL,\n"
	"  actor_type TEXT NOT NULL,\n"
	"  actor_id TEXT NOT NULL,\n"
	"  actor_email TEXT NOT NULL,\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  action TEXT NOT NULL,\n"
	"  resource TEXT NOT NULL,\n"
	"  outcome TEXT NOT NULL,\n"
	"  reason TEXT NOT NULL,\n"
	"  request_id TEXT NOT NULL,\n"
	"  source_ip TEXT NOT NULL,\n"
	"  prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),\n"
	"  hash BLOB NOT NULL CHECK (length(hash) = 32),\n"
	"  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32));\n"
	"CREATE TRIGGER records_in_sequence BEFORE INSERT ON records\n"
	"  WHEN NEW.seq IS NOT coalesce((SELECT max(seq) FROM records), 0) + 1\n"
	"    OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM records WHERE seq = NEW.seq - 1),\n"
	"                                      zeroblob(32))\n"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records are added in sequence'); END;\n"
	NO_CHANGE("records")
	"CREATE TABLE merkle_nodes (\n"
	"  level INTEGER NOT NULL, idx INTEGER NOT NULL,\n"
	"  hash BLOB NOT NULL CHECK (length(hash) = 32),\n"
	"  PRIMARY KEY (level, idx)) WITHOUT ROWID;\n"
	"CREATE TRIGGER merkle_nodes_once BEFORE INSERT ON merkle_nodes\n"
	"  WHEN EXISTS (SELECT 1 FROM merkle_nodes WHERE level = NEW.level AND idx = NEW.idx)\n"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only: node exists'); END;\n"
	NO_CHANGE("merkle_nodes")
	"CREATE TABLE checkpoints (\n"
	"  tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 1),\n"
	"  root_hash BLOB NOT NULL CHECK (length(root_hash) = 32),\n"
	"  time_ns INTEGER NOT NULL,\n"
	"  key_id TEXT NOT NULL,\n"
	"  signature BLOB NOT NULL CHECK (length(signature) = 64));\n"
	"CREATE TRIGGER checkpoints_in_sequence BEFORE INSERT ON checkpoints\n"
	"  WHEN NEW.tree_size <= coalesce((SELECT max(tree_size) FROM checkpoints), 0)\n"
	"    OR NEW.tree_size > coalesce((SELECT max(seq) FROM records), 0)\n"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only: checkpoints grow'); END;\n"
	NO_CHANGE("checkpoints")
	"CREATE TABLE idx_tenant (bucket INTEGER NOT NULL, tenant_id TEXT NOT NULL,\n"
	"  seq INTEGER NOT NULL, PRIMARY KEY (bucket, tenant_id, seq)) WITHOUT ROWID;\n"
	NO_CHANGE("idx_tenant")
	"CREATE TABLE idx_tenant_action (bucket INTEGER NOT NULL, tenant_id TEXT NOT NULL,\n"
	"  action TEXT NOT NULL, seq INTEGER NOT NULL,\n"
	"  PRIMARY KEY (bucket, tenant_id, action, seq)) WITHOUT ROWID;\n"
	NO_CHANGE("idx_tenant_action")
	"CREATE TABLE idx_actor (bucket INTEGER NOT NULL, actor_id TEXT NOT NULL,\n"
	"  seq INTEGER NOT NULL, PRIMARY KEY (bucket, actor_id, seq)) WITHOUT ROWID;\n"
	NO_CHANGE("idx_actor")
	"CREATE TABLE idx_resource (bucket INTEGER NOT NULL, resource TEXT NOT NULL,\n"
	"  seq INTEGER NOT NULL, PRIMARY KEY (bucket, resource, seq)) WITHOUT ROWID;\n"
	NO_CHANGE("idx_resource")
	"CREATE TABLE idx_marks (upto INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL);\n"
	"CREATE TRIGGER idx_marks_in_sequence BEFORE INSERT ON idx_marks\n"
	"  WHEN NEW.upto <= coalesce((SELECT max(upto) FROM idx_marks), 0)\n"
	"    OR NEW.upto > coalesce((SELECT max(seq) FROM records), 0)\n"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only: index marks grow'); END;\n"
	NO_CHANGE("idx_marks")
	"CREATE TABLE signing_keys (\n"
	"  key_id TEXT PRIMARY KEY,\n"
	"  public_key BLOB NOT NULL CHECK (length(public_key) = 32),\n"
	"  created_ns INTEGER NOT NULL);\n"
	"CREATE TRIGGER signing_keys_once BEFORE INSERT ON signing_keys\n"
	"  WHEN EXISTS (SELECT 1 FROM signing_keys WHERE key_id = NEW.key_id)\n"
	"  BEGIN SELECT RAISE(ABORT, 'audit log is append-only: key exists'); END;\n"
	NO_CHANGE("signing_keys");

int audit_map_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: return 0;
	case SQLITE_CONSTRAINT: return ODX_ECONFLICT;
	case SQLITE_FULL: return ODX_EUNAVAIL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return ODX_EBUSY;
	case SQLITE_NOMEM: return ODX_ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return ODX_ECORRUPT;
	case SQLITE_CANTOPEN: return ODX_ENOTFOUND;
	case SQLITE_IOERR:
	case SQLITE_READONLY: return ODX_EIO;
	default: return ODX_EINTERNAL;
	}
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return audit_map_sqlite(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : audit_map_sqlite(rc);
}

int audit_db_open(const char *path, int flags, const char *vfs, sqlite3 **out)
{
	sqlite3 *db = NULL;
	/* Made 0600 whatever the umask: SQLite gives -wal and -shm the file's mode. */
	if (flags & SQLITE_OPEN_CREATE) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, vfs);
	if (rc != SQLITE_OK) {
		rc = audit_map_sqlite(rc);
		goto out;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, AUDIT_BUSY_MS);
	int64_t app = 0, version = 0, tables = 0;
	rc = pragma_int(db, "PRAGMA application_id", &app);
	if (rc == 0)
		rc = pragma_int(db, "PRAGMA user_version", &version);
	if (rc == 0)
		rc = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &tables);
	if (rc < 0)
		goto out;
	if (app == 0 && version == 0 && tables == 0)
		rc = 0; /* a new file */
	else if (app != AUDIT_APP_ID || version < 1)
		rc = ODX_ECORRUPT; /* not an audit log */
	else if (version > AUDIT_SCHEMA_VERSION)
		rc = ODX_ECORRUPT; /* written by a newer odysseusd: refuse to guess */
out:
	if (rc < 0) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

static int col_text(sqlite3_stmt *st, int i, const char **out)
{
	if (sqlite3_column_type(st, i) != SQLITE_TEXT)
		return ODX_ECORRUPT;
	const char *s = (const char *)sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);
	if (!s || strlen(s) != (size_t)n)
		return ODX_ECORRUPT; /* embedded NUL: never written by us */
	*out = s;
	return 0;
}

static int col_hash(sqlite3_stmt *st, int i, uint8_t out[static AUDIT_HASH_LEN])
{
	if (sqlite3_column_type(st, i) != SQLITE_BLOB || sqlite3_column_bytes(st, i) != AUDIT_HASH_LEN)
		return ODX_ECORRUPT;
	memcpy(out, sqlite3_column_blob(st, i), AUDIT_HASH_LEN);
	return 0;
}

int audit_row_read(sqlite3_stmt *st, struct audit_row *row)
{
	struct audit_row r = {0};
	if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || sqlite3_column_type(st, 1) != SQLITE_INTEGER)
		return ODX_ECORRUPT;
	int64_t seq = sqlite3_column_int64(st, 0);
	if (seq < 1)
		return ODX_ECORRUPT;
	r.rec.seq = (uint64_t)seq;
	r.rec.time_ns = sqlite3_column_int64(st, 1);
	const char *actor, *outcome;
	int rc = col_text(st, 2, &actor);
	if (rc == 0)
		rc = audit_actor_type_parse(actor, &r.rec.actor_type) == 0 ? 0 : ODX_ECORRUPT;
	if (rc == 0)
		rc = col_text(st, 3, &r.rec.actor_id);
	if (rc == 0)
		rc = col_text(st, 4, &r.rec.actor_email);
	if (rc == 0)
		rc = col_text(st, 5, &r.rec.tenant_id);
	if (rc == 0)
		rc = col_text(st, 6, &r.rec.action);
	if (rc == 0)
		rc = col_text(st, 7, &r.rec.resource);
	if (rc == 0)
		rc = col_text(st, 8, &outcome);
	if (rc == 0)
		rc = audit_outcome_parse(outcome, &r.rec.outcome) == 0 ? 0 : ODX_ECORRUPT;
	if (rc == 0)
		rc = col_text(st, 9, &r.rec.reason);
	if (rc == 0)
		rc = col_text(st, 10, &r.rec.request_id);
	if (rc == 0)
		rc = col_text(st, 11, &r.rec.source_ip);
	if (rc == 0)
		rc = col_hash(st, 12, r.rec.prev_hash);
	if (rc == 0)
		rc = col_hash(st, 13, r.rec.hash);
	if (rc == 0)
		rc = col_hash(st, 14, r.leaf_hash);
	if (rc == 0)
		*row = r;
	return rc;
}

int audit_checkpoint_row(sqlite3_stmt *st, struct audit_checkpoint *cp)
{
	struct audit_checkpoint c = {0};
	if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || sqlite3_column_int64(st, 0) < 1 ||
	    sqlite3_column_type(st, 2) != SQLITE_INTEGER || sqlite3_column_type(st, 3) != SQLITE_TEXT ||
	    sqlite3_column_type(st, 4) != SQLITE_BLOB || sqlite3_column_bytes(st, 4) != AUDIT_SIG_LEN ||
	    sqlite3_column_bytes(st, 3) != AUDIT_KEY_ID_LEN - 1)
		return ODX_ECORRUPT;
	c.tree_size = (uint64_t)sqlite3_column_int64(st, 0);
	int rc = col_hash(st, 1, c.root_hash);
	if (rc < 0)
		return rc;
	c.time_ns = sqlite3_column_int64(st, 2);
	memcpy(c.key_id, sqlite3_column_text(st, 3), AUDIT_KEY_ID_LEN - 1);
	c.key_id[AUDIT_KEY_ID_LEN - 1] = 0;
	memcpy(c.signature, sqlite3_column_blob(st, 4), AUDIT_SIG_LEN);
	*cp = c;
	return 0;
}

int audit_tree_src_init(struct audit_tree_src *s, sqlite3 *db, struct merkle_hasher *h)
{
	struct audit_tree_src t = {.db = db, .h = h};
	int rc = sqlite3_prepare_v2(db,
				    "SELECT leaf_hash FROM records WHERE seq >= ?1 AND seq <= ?2 "
				    "ORDER BY seq",
				    -1, &t.leaves, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db,
					"SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx >= ?2 "
					"AND idx <= ?3 ORDER BY idx",
					-1, &t.nodes, NULL);
	if (rc != SQLITE_OK) {
		audit_tree_src_done(&t);
		return audit_map_sqlite(rc);
	}
	*s = t;
	return 0;
}

void audit_tree_src_done(struct audit_tree_src *s)
{
	sqlite3_finalize(s->leaves);
	sqlite3_finalize(s->nodes);
	s->leaves = s->nodes = NULL;
}

/*
 * The subtree (level, index) from the nearest stored level at or below it:
 * at most 2^(STRIDE-1) = 8 stored hashes folded pairwise.
 */
int audit_tree_subtree(void *arg, unsigned level, uint64_t index, uint8_t out[static AUDIT_HASH_LEN])
{
	struct audit_tree_src *s = arg;
	unsigned base = level - level % AUDIT_NODE_STRIDE;
	unsigned up = level - base;
	uint64_t cnt = (uint64_t)1 << up;
	if (level >= 62 || index > ((uint64_t)INT64_MAX >> level))
		return ODX_EINVAL;
	uint64_t first = index << up;
	uint8_t buf[1 << (AUDIT_NODE_STRIDE - 1)][AUDIT_HASH_LEN];
	sqlite3_stmt *st;
	if (base == 0) {
		st = s->leaves;
		sqlite3_bind_int64(st, 1, (int64_t)first + 1);
		sqlite3_bind_int64(st, 2, (int64_t)(first + cnt));
	} else {
		st = s->nodes;
		sqlite3_bind_int64(st, 1, base);
		sqlite3_bind_int64(st, 2, (int64_t)first);
		sqlite3_bind_int64(st, 3, (int64_t)(first + cnt - 1));
	}
	uint64_t got = 0;
	int rc, src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (got >= cnt || sqlite3_column_bytes(st, 0) != AUDIT_HASH_LEN) {
			got = cnt + 1;
			break;
		}
		memcpy(buf[got++], sqlite3_column_blob(st, 0), AUDIT_HASH_LEN);
	}
	rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : audit_map_sqlite(src);
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	if (got != cnt)
		return ODX_ECORRUPT; /* a stored leaf or node is missing or malformed */
	for (; cnt > 1; cnt /= 2)
		for (uint64_t i = 0; i < cnt / 2; i++) {
			rc = merkle_node_hash(s->h, buf[2 * i], buf[2 * i + 1], buf[i]);
			if (rc < 0)
				return rc;
		}
	memcpy(out, buf[0], AUDIT_HASH_LEN);
	return 0;
}
