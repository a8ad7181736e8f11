/*
 * verify.c — offline verification of an audit file or a JSON-lines export.
 *
 * One checker walks the records in seq order, whatever their source, and
 * stops at the first problem. For each record it recomputes canonical(r),
 * the chain hash from the record's stored prev_hash and the RFC 6962 leaf:
 *   - prev_hash must equal the previous record's hash ("link"),
 *   - the recomputed hash must equal the stored one ("self"),
 *   - the stored leaf hash and Merkle nodes (file only) must match,
 *   - time_ns must not decrease (the writer guarantees it; queries rely on it).
 * Checkpoints are read in tree_size order alongside: when the walk reaches
 * a checkpoint's size its signature is checked (pinned key, or the key the
 * file/export names) and then its root against the frontier's root.
 *
 * Naming what went wrong, at the first record that fails:
 *   link ok, self bad   -> altered (content or stored hash changed)
 *   link bad, self ok   -> inserted (a self-consistent record from elsewhere)
 *   both bad            -> look for the seq t the record was hashed with
 *                          (within AUDIT_VERIFY_WINDOW of its place):
 *                          t > place: reordered if the record it links to
 *                                     still exists, else missing (the log
 *                                     was cut and renumbered);
 *                          t < place: inserted (records were pushed up);
 *                          none:      altered.
 *   a gap in seq        -> missing (export: reordered if the missing seq
 *                          turns up later in the file).
 * After the walk: a checkpoint beyond the last record or a seen checkpoint
 * larger than the log means truncation; records after the last good
 * checkpoint are "unsigned" unless allowed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/jsonx.h"
#include "core/timeutil.h"
#include "crypto/hash.h"

#define AUDIT_VERIFY_WINDOW 4096
#define MAX_KEYS 64
#define MAX_LINE (64 * 1024)

struct cp_item {
	struct audit_checkpoint cp;
	bool has_pub;
	uint8_t pub[AUDIT_PUB_LEN];
};

/* Next checkpoint in tree_size order; *eof at the end. ODX_ECORRUPT: malformed. */
typedef int (*cp_next_fn)(void *arg, struct cp_item *out, bool *eof);
/* Whether any record's stored hash equals h. */
typedef int (*hash_exists_fn)(void *arg, const uint8_t h[static AUDIT_HASH_LEN], bool *found);
/* Whether a stored Merkle node matches (level, index, hash); *present false when absent. */
typedef int (*node_check_fn)(void *arg, unsigned level, uint64_t index,
			     const uint8_t h[static AUDIT_HASH_LEN], bool *same);

struct checker {
	struct merkle_hasher *h;
	const struct audit_verify_opts *opts;
	struct audit_verify_report *rep;
	uint64_t expect;
	uint8_t prev[AUDIT_HASH_LEN];
	struct merkle_frontier fr;
	uint64_t last_good_cp;
	int64_t last_time;

	cp_next_fn cp_next;
	void *cp_arg;
	struct cp_item cur;
	bool have_cur, cp_eof;

	hash_exists_fn hash_exists;
	node_check_fn node_check;
	void *src_arg;
	int node_rc; /* problem found inside the emit callback */
};

static int fail(struct checker *ck, enum audit_problem p, uint64_t bad_seq, uint64_t cp_size,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(struct checker *ck, enum audit_problem p, uint64_t bad_seq, uint64_t cp_size,
		const char *fmt, ...)
{
	struct audit_verify_report *r = ck->rep;
	r->problem = p;
	r->bad_seq = bad_seq;
	r->checkpoint_size = cp_size;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return ODX_ECORRUPT;
}

#define ULL(x) ((unsigned long long)(x))

static int cp_advance(struct checker *ck)
{
	ck->have_cur = false;
	if (ck->cp_eof || !ck->cp_next)
		return 0;
	struct cp_item it;
	bool eof = false;
	int rc = ck->cp_next(ck->cp_arg, &it, &eof);
	if (rc == ODX_ECORRUPT)
		return fail(ck, AUDIT_PROBLEM_MALFORMED, 0, 0, "a checkpoint cannot be read");
	if (rc < 0)
		return rc;
	if (eof) {
		ck->cp_eof = true;
		return 0;
	}
	if (it.cp.tree_size == 0 ||
	    (ck->rep->checkpoints && it.cp.tree_size <= ck->last_good_cp))
		return fail(ck, AUDIT_PROBLEM_MALFORMED, 0, it.cp.tree_size,
			    "checkpoints are not in increasing tree_size order");
	ck->cur = it;
	ck->have_cur = true;
	return 0;
}

static int check_signature(struct checker *ck, const struct cp_item *it)
{
	const uint8_t *pub = ck->opts->pinned_pub ? ck->opts->pinned_pub
						  : (it->has_pub ? it->pub : NULL);
	if (!pub)
		return fail(ck, AUDIT_PROBLEM_CHECKPOINT_SIGNATURE, 0, it->cp.tree_size,
			    "checkpoint at size %llu names key %.16s, which the log does not hold",
			    ULL(it->cp.tree_size), it->cp.key_id);
	if (audit_checkpoint_verify(&it->cp, pub) != 0)
		return fail(ck, AUDIT_PROBLEM_CHECKPOINT_SIGNATURE, 0, it->cp.tree_size,
			    "checkpoint at size %llu: signature does not verify%s",
			    ULL(it->cp.tree_size),
			    ck->opts->pinned_pub ? " with the pinned key" : "");
	return 0;
}

/* Checks every checkpoint of exactly the current size (the walk just reached it). */
static int check_checkpoints_here(struct checker *ck)
{
	uint64_t size = ck->fr.size;
	while (ck->have_cur && ck->cur.cp.tree_size == size) {
		int rc = check_signature(ck, &ck->cur);
		if (rc < 0)
			return rc;
		uint8_t root[AUDIT_HASH_LEN];
		rc = merkle_frontier_root(ck->h, &ck->fr, root);
		if (rc < 0)
			return rc;
		if (!hash_equal(root, ck->cur.cp.root_hash, AUDIT_HASH_LEN))
			return fail(ck, AUDIT_PROBLEM_CHECKPOINT_ROOT, ck->last_good_cp + 1, size,
				    "checkpoint at size %llu (validly signed) does not match the "
				    "records: a record in %llu..%llu was changed and the chain rewritten",
				    ULL(size), ULL(ck->last_good_cp + 1), ULL(size));
		ck->rep->checkpoints++;
		ck->rep->signed_size = size;
		ck->last_good_cp = size;
		rc = cp_advance(ck);
		if (rc < 0)
			return rc;
	}
	if (ck->opts->seen_size == size) {
		uint8_t root[AUDIT_HASH_LEN];
		int rc = merkle_frontier_root(ck->h, &ck->fr, root);
		if (rc < 0)
			return rc;
		if (!ck->opts->seen_root || !hash_equal(root, ck->opts->seen_root, AUDIT_HASH_LEN))
			return fail(ck, AUDIT_PROBLEM_SEEN_MISMATCH, 0, size,
				    "the root at size %llu differs from the checkpoint seen before: "
				    "the log was rewritten",
				    ULL(size));
	}
	return 0;
}

static int emit_check(void *arg, unsigned level, uint64_t index,
		      const uint8_t hash[static MERKLE_HASH_LEN])
{
	struct checker *ck = arg;
	if (level % AUDIT_NODE_STRIDE || !ck->node_check)
		return 0;
	bool same = false;
	int rc = ck->node_check(ck->src_arg, level, index, hash, &same);
	if (rc < 0)
		return rc;
	if (!same) {
		uint64_t first = (index << level) + 1;
		ck->node_rc = fail(ck, AUDIT_PROBLEM_DERIVED, first, 0,
				   "stored Merkle node (level %u, index %llu) does not match records "
				   "%llu..%llu",
				   level, ULL(index), ULL(first), ULL(first + ((uint64_t)1 << level) - 1));
		return ck->node_rc;
	}
	return 0;
}

/* Finds t != place within the window such that the record hashed with seq t gives its hash. */
static int find_hashed_seq(struct checker *ck, const struct audit_record *r, uint64_t *out)
{
	uint8_t buf[AUDIT_CANONICAL_MAX];
	size_t n;
	int rc = audit_record_encode(r, buf, &n);
	if (rc < 0)
		return 0; /* not encodable: nothing to find */
	uint64_t s = r->seq;
	uint64_t lo = s > AUDIT_VERIFY_WINDOW ? s - AUDIT_VERIFY_WINDOW : 1;
	uint64_t hi = s + AUDIT_VERIFY_WINDOW;
	for (uint64_t t = lo; t <= hi; t++) {
		if (t == s)
			continue;
		for (int i = 0; i < 8; i++)
			buf[1 + i] = (uint8_t)(t >> (8 * (7 - i)));
		uint8_t hh[AUDIT_HASH_LEN];
		rc = merkle_sha256_2(ck->h, r->prev_hash, AUDIT_HASH_LEN, buf, n, hh);
		if (rc < 0)
			return rc;
		if (hash_equal(hh, r->hash, AUDIT_HASH_LEN)) {
			*out = t;
			return 0;
		}
	}
	return 0;
}

static int classify(struct checker *ck, const struct audit_record *r, bool link_ok, bool self_ok,
		    bool encodable)
{
	uint64_t s = r->seq;
	if (!encodable)
		return fail(ck, AUDIT_PROBLEM_ALTERED, s, 0,
			    "record %llu has a field no writer produces (altered)", ULL(s));
	if (link_ok && !self_ok)
		return fail(ck, AUDIT_PROBLEM_ALTERED, s, 0,
			    "record %llu does not match its hash: its content or hash was changed",
			    ULL(s));
	if (!link_ok && self_ok)
		return fail(ck, AUDIT_PROBLEM_INSERTED, s, 0,
			    "record %llu is self-consistent but does not follow record %llu: "
			    "it was inserted or replaced",
			    ULL(s), ULL(s - 1));
	uint64_t t = 0;
	int rc = find_hashed_seq(ck, r, &t);
	if (rc < 0)
		return rc;
	if (t == 0)
		return fail(ck, AUDIT_PROBLEM_ALTERED, s, 0,
			    "record %llu matches neither its hash nor its predecessor (altered)",
			    ULL(s));
	if (t < s)
		return fail(ck, AUDIT_PROBLEM_INSERTED, t, 0,
			    "record %llu sits at seq %llu: %llu record(s) were inserted before it",
			    ULL(t), ULL(s), ULL(s - t));
	bool linked_exists = true;
	if (ck->hash_exists) {
		rc = ck->hash_exists(ck->src_arg, r->prev_hash, &linked_exists);
		if (rc < 0)
			return rc;
	}
	if (linked_exists)
		return fail(ck, AUDIT_PROBLEM_REORDERED, s, 0,
			    "record %llu sits at seq %llu: records were reordered", ULL(t), ULL(s));
	return fail(ck, AUDIT_PROBLEM_MISSING, s, 0,
		    "record %llu sits at seq %llu and the record before it is gone: records "
		    "%llu..%llu were deleted and the rest renumbered",
		    ULL(t), ULL(s), ULL(s), ULL(t - 1));
}

/* One record in walk order. stored_leaf may be NULL (exports). */
static int check_record(struct checker *ck, const struct audit_record *r, const uint8_t *stored_leaf)
{
	uint8_t hash[AUDIT_HASH_LEN], leaf[AUDIT_HASH_LEN];
	int rc = audit_record_hashes(ck->h, r, r->prev_hash, hash, leaf);
	bool encodable = rc == 0;
	if (rc < 0 && rc != ODX_EINVAL)
		return rc;
	bool self_ok = encodable && hash_equal(hash, r->hash, AUDIT_HASH_LEN);
	ck->rep->records++;
	if (ck->opts->partial) {
		if (!self_ok)
			return fail(ck, AUDIT_PROBLEM_ALTERED, r->seq, 0,
				    "record %llu does not match its hash", ULL(r->seq));
		return 0;
	}
	bool link_ok = hash_equal(r->prev_hash, ck->prev, AUDIT_HASH_LEN);
	if (!link_ok || !self_ok)
		return classify(ck, r, link_ok, self_ok, encodable);
	if (r->time_ns < ck->last_time)
		return fail(ck, AUDIT_PROBLEM_ALTERED, r->seq, 0,
			    "record %llu is dated before record %llu: time never goes back in a "
			    "log (the chain was rebuilt)",
			    ULL(r->seq), ULL(r->seq - 1));
	if (stored_leaf && !hash_equal(stored_leaf, leaf, AUDIT_HASH_LEN))
		return fail(ck, AUDIT_PROBLEM_DERIVED, r->seq, 0,
			    "record %llu: stored leaf hash does not match the record", ULL(r->seq));
	ck->node_rc = 0;
	rc = merkle_frontier_push(ck->h, &ck->fr, leaf, emit_check, ck);
	if (rc < 0)
		return ck->node_rc ? ck->node_rc : rc;
	memcpy(ck->prev, r->hash, AUDIT_HASH_LEN);
	ck->last_time = r->time_ns;
	ck->expect++;
	return check_checkpoints_here(ck);
}

static int checker_start(struct checker *ck)
{
	ck->expect = 1;
	merkle_frontier_init(&ck->fr);
	memset(ck->prev, 0, sizeof(ck->prev));
	return cp_advance(ck);
}

/* After the last record: truncation, unsigned tail, the final root. */
static int checker_finish(struct checker *ck)
{
	uint64_t n = ck->fr.size;
	struct audit_verify_report *rep = ck->rep;
	int rc = merkle_frontier_root(ck->h, &ck->fr, rep->root);
	if (rc < 0)
		return rc;
	if (ck->opts->partial)
		return 0;
	if (ck->have_cur) {
		rc = check_signature(ck, &ck->cur);
		if (rc < 0)
			return rc;
		return fail(ck, AUDIT_PROBLEM_TRUNCATED, n + 1, ck->cur.cp.tree_size,
			    "the log ends at seq %llu but a signed checkpoint covers %llu records: "
			    "records %llu..%llu are gone",
			    ULL(n), ULL(ck->cur.cp.tree_size), ULL(n + 1), ULL(ck->cur.cp.tree_size));
	}
	if (ck->opts->seen_size > n)
		return fail(ck, AUDIT_PROBLEM_TRUNCATED, n + 1, ck->opts->seen_size,
			    "the log ends at seq %llu but a checkpoint of %llu records was seen "
			    "before: records %llu..%llu are gone",
			    ULL(n), ULL(ck->opts->seen_size), ULL(n + 1), ULL(ck->opts->seen_size));
	if (n > ck->last_good_cp && !ck->opts->allow_unsigned)
		return fail(ck, AUDIT_PROBLEM_UNSIGNED, ck->last_good_cp + 1, 0,
			    "records %llu..%llu are not covered by any signed checkpoint (written "
			    "after the last one: a live log, a crash, or forged)",
			    ULL(ck->last_good_cp + 1), ULL(n));
	return 0;
}

static void report_init(struct audit_verify_report *rep)
{
	memset(rep, 0, sizeof(*rep));
}

/* ---- the file ---- */

struct file_src {
	sqlite3 *db;
	sqlite3_stmt *cps, *node, *exists;
	size_t nkeys;
	struct {
		char id[AUDIT_KEY_ID_LEN];
		uint8_t pub[AUDIT_PUB_LEN];
	} keys[MAX_KEYS];
};

static int file_cp_next(void *arg, struct cp_item *out, bool *eof)
{
	struct file_src *f = arg;
	int s = sqlite3_step(f->cps);
	if (s == SQLITE_DONE) {
		*eof = true;
		return 0;
	}
	if (s != SQLITE_ROW)
		return audit_map_sqlite(s);
	struct cp_item it = {0};
	int rc = audit_checkpoint_row(f->cps, &it.cp);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < f->nkeys; i++)
		if (strcmp(f->keys[i].id, it.cp.key_id) == 0) {
			memcpy(it.pub, f->keys[i].pub, AUDIT_PUB_LEN);
			it.has_pub = true;
		}
	*out = it;
	return 0;
}

static int file_hash_exists(void *arg, const uint8_t h[static AUDIT_HASH_LEN], bool *found)
{
	struct file_src *f = arg;
	sqlite3_bind_blob(f->exists, 1, h, AUDIT_HASH_LEN, SQLITE_STATIC);
	int s = sqlite3_step(f->exists);
	sqlite3_reset(f->exists);
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		return audit_map_sqlite(s);
	*found = s == SQLITE_ROW;
	return 0;
}

static int file_node_check(void *arg, unsigned level, uint64_t index,
			   const uint8_t h[static AUDIT_HASH_LEN], bool *same)
{
	struct file_src *f = arg;
	sqlite3_bind_int64(f->node, 1, level);
	sqlite3_bind_int64(f->node, 2, (int64_t)index);
	int s = sqlite3_step(f->node);
	*same = s == SQLITE_ROW && sqlite3_column_bytes(f->node, 0) == AUDIT_HASH_LEN &&
		memcmp(sqlite3_column_blob(f->node, 0), h, AUDIT_HASH_LEN) == 0;
	sqlite3_reset(f->node);
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		return audit_map_sqlite(s);
	return 0;
}

static int load_keys(struct file_src *f)
{
	sqlite3_stmt *st;
	int rc = audit_map_sqlite(sqlite3_prepare_v2(
		f->db, "SELECT key_id, public_key FROM signing_keys", -1, &st, NULL));
	if (rc < 0)
		return rc;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (f->nkeys >= MAX_KEYS || sqlite3_column_bytes(st, 0) != AUDIT_KEY_ID_LEN - 1 ||
		    sqlite3_column_bytes(st, 1) != AUDIT_PUB_LEN)
			continue; /* a malformed key only matters if a checkpoint names it */
		memcpy(f->keys[f->nkeys].id, sqlite3_column_text(st, 0), AUDIT_KEY_ID_LEN - 1);
		f->keys[f->nkeys].id[AUDIT_KEY_ID_LEN - 1] = 0;
		memcpy(f->keys[f->nkeys].pub, sqlite3_column_blob(st, 1), AUDIT_PUB_LEN);
		f->nkeys++;
	}
	sqlite3_finalize(st);
	return s == SQLITE_DONE ? 0 : audit_map_sqlite(s);
}

static int file_schema_ok(sqlite3 *db)
{
	sqlite3_stmt *st;
	int64_t app = 0, ver = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &st, NULL) != SQLITE_OK)
		return ODX_EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		app = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return ODX_EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		ver = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return app == AUDIT_APP_ID && ver == AUDIT_SCHEMA_VERSION ? 0 : ODX_ECORRUPT;
}

int audit_verify_file(const char *path, const struct audit_verify_opts *opts,
		      struct audit_verify_report *rep)
{
	static const struct audit_verify_opts defaults = {0};
	struct audit_verify_opts o = opts ? *opts : defaults;
	o.partial = false;
	struct audit_verify_report r;
	report_init(&r);
	struct file_src f = {0};
	struct checker ck = {.opts = &o, .rep = &r, .cp_next = file_cp_next, .cp_arg = &f,
			     .hash_exists = file_hash_exists, .node_check = file_node_check,
			     .src_arg = &f};
	sqlite3_stmt *recs = NULL;
	bool reported = false;
	int rc = merkle_hasher_new(&ck.h);
	if (rc < 0)
		return rc;
	rc = audit_db_open(path, SQLITE_OPEN_READONLY, NULL, &f.db);
	if (rc == 0)
		rc = file_schema_ok(f.db);
	if (rc == ODX_ECORRUPT) {
		fail(&ck, AUDIT_PROBLEM_MALFORMED, 0, 0, "%s is not an Odysseus audit log (v%d)",
		     path, AUDIT_SCHEMA_VERSION);
		reported = true;
		goto out;
	}
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_exec(f.db, "BEGIN", NULL, NULL, NULL));
	if (rc == 0)
		rc = load_keys(&f);
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			f.db, "SELECT " AUDIT_RECORD_COLS " FROM records ORDER BY seq", -1, &recs, NULL));
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			f.db, "SELECT tree_size, root_hash, time_ns, key_id, signature FROM checkpoints "
			      "ORDER BY tree_size",
			-1, &f.cps, NULL));
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			f.db, "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2", -1, &f.node,
			NULL));
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			f.db, "SELECT 1 FROM records WHERE hash = ?1 LIMIT 1", -1, &f.exists, NULL));
	if (rc == 0)
		rc = checker_start(&ck);
	while (rc == 0) {
		int s = sqlite3_step(recs);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			rc = audit_map_sqlite(s);
			break;
		}
		struct audit_row row;
		uint64_t seq = sqlite3_column_int64(recs, 0) > 0 ? (uint64_t)sqlite3_column_int64(recs, 0)
								  : 0;
		if (seq > ck.expect) {
			if (seq - ck.expect == 1)
				rc = fail(&ck, AUDIT_PROBLEM_MISSING, ck.expect, 0,
					  "record %llu is missing", ULL(ck.expect));
			else
				rc = fail(&ck, AUDIT_PROBLEM_MISSING, ck.expect, 0,
					  "records %llu..%llu are missing", ULL(ck.expect), ULL(seq - 1));
			break;
		}
		rc = audit_row_read(recs, &row);
		if (rc == ODX_ECORRUPT) {
			rc = fail(&ck, AUDIT_PROBLEM_ALTERED, ck.expect, 0,
				  "record %llu has a field of the wrong type or value (altered)",
				  ULL(ck.expect));
			break;
		}
		if (rc == 0)
			rc = check_record(&ck, &row.rec, row.leaf_hash);
	}
	if (rc == 0)
		rc = checker_finish(&ck);
	reported = rc == 0 || rc == ODX_ECORRUPT;
	if (rc == ODX_ECORRUPT && r.problem == AUDIT_PROBLEM_NONE)
		fail(&ck, AUDIT_PROBLEM_MALFORMED, ck.expect, 0, "the file is damaged (SQLite)");
out:
	sqlite3_finalize(recs);
	sqlite3_finalize(f.cps);
	sqlite3_finalize(f.node);
	sqlite3_finalize(f.exists);
	sqlite3_close(f.db);
	merkle_hasher_free(ck.h);
	if (reported) {
		*rep = r;
		return r.problem == AUDIT_PROBLEM_NONE ? 0 : ODX_ECORRUPT;
	}
	return rc;
}

/* ---- exports ---- */

struct line_reader {
	FILE *f;
	char *buf;
	size_t cap;
	uint64_t lineno;
};

/* Next non-empty line (without its newline) into lr->buf; *eof at the end. */
static int read_line(struct line_reader *lr, size_t *len, bool *eof)
{
	for (;;) {
		errno = 0;
		ssize_t n = getline(&lr->buf, &lr->cap, lr->f);
		if (n < 0) {
			if (errno == ENOMEM)
				return ODX_ENOMEM;
			if (ferror(lr->f))
				return ODX_EIO;
			*eof = true;
			return 0;
		}
		lr->lineno++;
		if (n > MAX_LINE)
			return ODX_ECORRUPT;
		if (n && lr->buf[n - 1] == '\n')
			lr->buf[--n] = 0;
		if (n == 0)
			continue;
		*len = (size_t)n;
		return 0;
	}
}

static int hex32(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return ODX_ECORRUPT;
	return hex_decode(s, n, out) == 0 ? 0 : ODX_ECORRUPT;
}

static int cp_from_json(const char *line, size_t len, struct cp_item *out)
{
	json_t *obj;
	char msg[JSONX_MSG_LEN];
	if (jsonx_parse_object(line, len, &obj, msg) != 0)
		return ODX_ECORRUPT;
	json_int_t size, t;
	const char *when, *root, *kid, *sig, *pub = NULL;
	struct cp_item it = {0};
	int rc = jsonx_unpack(obj, msg, "{s:I, s:s, s:s, s:I, s:s, s:s, s?s}", "tree_size", &size,
			      "root_hash", &root, "time", &when, "time_ns", &t, "key_id", &kid,
			      "signature", &sig, "public_key", &pub) == 0
			 ? 0
			 : ODX_ECORRUPT;
	if (rc == 0 && (size < 1 || strlen(kid) != AUDIT_KEY_ID_LEN - 1))
		rc = ODX_ECORRUPT;
	if (rc == 0)
		rc = hex32(root, it.cp.root_hash, AUDIT_HASH_LEN);
	if (rc == 0)
		rc = hex32(sig, it.cp.signature, AUDIT_SIG_LEN);
	if (rc == 0 && pub) {
		rc = hex32(pub, it.pub, AUDIT_PUB_LEN);
		it.has_pub = rc == 0;
	}
	if (rc == 0) {
		it.cp.tree_size = (uint64_t)size;
		it.cp.time_ns = (int64_t)t;
		memcpy(it.cp.key_id, kid, AUDIT_KEY_ID_LEN);
		*out = it;
	}
	json_decref(obj);
	return rc;
}

static int export_cp_next(void *arg, struct cp_item *out, bool *eof)
{
	struct line_reader *lr = arg;
	size_t len = 0;
	int rc = read_line(lr, &len, eof);
	if (rc < 0 || *eof)
		return rc;
	return cp_from_json(lr->buf, len, out);
}

/*
 * Parses one export line into rec; strings point into *obj (caller decrefs).
 * ODX_ECORRUPT when it is not a record line.
 */
static int record_from_json(const char *line, size_t len, json_t **obj, struct audit_record *rec,
			    bool *time_ok)
{
	char msg[JSONX_MSG_LEN];
	json_t *o;
	if (jsonx_parse_object(line, len, &o, msg) != 0)
		return ODX_ECORRUPT;
	json_int_t seq, t;
	const char *when, *at, *oc, *prev, *hash;
	struct audit_record r = {0};
	int rc = jsonx_unpack(o, msg,
			      "{s:I, s:s, s:I, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
			      "s:s, s:s}",
			      "seq", &seq, "time", &when, "time_ns", &t, "actor", "type", &at, "id",
			      &r.actor_id, "email", &r.actor_email, "tenant_id", &r.tenant_id,
			      "action", &r.action, "resource", &r.resource, "outcome", &oc, "reason",
			      &r.reason, "request_id", &r.request_id, "source_ip", &r.source_ip,
			      "prev_hash", &prev, "hash", &hash) == 0
			 ? 0
			 : ODX_ECORRUPT;
	if (rc == 0 && seq < 1)
		rc = ODX_ECORRUPT;
	if (rc == 0)
		rc = hex32(prev, r.prev_hash, AUDIT_HASH_LEN);
	if (rc == 0)
		rc = hex32(hash, r.hash, AUDIT_HASH_LEN);
	if (rc == 0) {
		r.seq = (uint64_t)seq;
		r.time_ns = (int64_t)t;
		/* An unknown name leaves the enum 0: the record then fails as altered. */
		audit_actor_type_parse(at, &r.actor_type);
		audit_outcome_parse(oc, &r.outcome);
		char fmt[TIME_RFC3339_LEN];
		time_format_rfc3339(r.time_ns, fmt);
		*time_ok = strcmp(fmt, when) == 0;
		*rec = r;
		*obj = o;
		return 0;
	}
	json_decref(o);
	return rc;
}

int audit_verify_export(const char *records_path, const char *checkpoints_path,
			const struct audit_verify_opts *opts, struct audit_verify_report *rep)
{
	static const struct audit_verify_opts defaults = {0};
	struct audit_verify_opts o = opts ? *opts : defaults;
	struct audit_verify_report r;
	report_init(&r);
	struct line_reader recs = {0}, cps = {0};
	struct checker ck = {.opts = &o, .rep = &r};
	bool reported = false;
	int rc = merkle_hasher_new(&ck.h);
	if (rc < 0)
		return rc;
	recs.f = fopen(records_path, "r");
	if (!recs.f) {
		rc = -errno;
		goto out;
	}
	if (checkpoints_path && !o.partial) {
		cps.f = fopen(checkpoints_path, "r");
		if (!cps.f) {
			rc = -errno;
			goto out;
		}
		ck.cp_next = export_cp_next;
		ck.cp_arg = &cps;
	}
	rc = checker_start(&ck);
	uint64_t missing = 0;   /* a gap was seen at this seq: look for it further down */
	bool found_later = false;
	uint64_t last_seq = 0;  /* partial: seq must increase */
	while (rc == 0) {
		size_t len = 0;
		bool eof = false;
		rc = read_line(&recs, &len, &eof);
		if (rc == ODX_ECORRUPT)
			rc = fail(&ck, AUDIT_PROBLEM_MALFORMED, ck.expect, 0,
				  "line %llu is longer than %d bytes", ULL(recs.lineno), MAX_LINE);
		if (rc < 0 || eof)
			break;
		json_t *obj = NULL;
		struct audit_record rec;
		bool time_ok = false;
		rc = record_from_json(recs.buf, len, &obj, &rec, &time_ok);
		if (rc == ODX_ECORRUPT) {
			rc = fail(&ck, AUDIT_PROBLEM_MALFORMED, missing ? missing : ck.expect, 0,
				  "line %llu is not an audit record", ULL(recs.lineno));
			break;
		}
		if (rc < 0)
			break;
		if (missing) {
			found_later = rec.seq == missing;
			json_decref(obj);
			if (found_later)
				break;
			continue;
		}
		if (o.partial) {
			if (rec.seq <= last_seq)
				rc = fail(&ck, AUDIT_PROBLEM_REORDERED, rec.seq, 0,
					  "record %llu comes after record %llu", ULL(rec.seq),
					  ULL(last_seq));
			last_seq = rec.seq;
		} else if (rec.seq > ck.expect) {
			missing = ck.expect;
		} else if (rec.seq < ck.expect) {
			rc = fail(&ck, AUDIT_PROBLEM_INSERTED, ck.expect, 0,
				  "line %llu holds record %llu again where %llu was expected",
				  ULL(recs.lineno), ULL(rec.seq), ULL(ck.expect));
		}
		if (rc == 0 && !missing && !time_ok)
			rc = fail(&ck, AUDIT_PROBLEM_ALTERED, rec.seq, 0,
				  "record %llu: \"time\" does not match \"time_ns\"", ULL(rec.seq));
		if (rc == 0 && !missing)
			rc = check_record(&ck, &rec, NULL);
		json_decref(obj);
	}
	if (rc == 0 && missing)
		rc = found_later ? fail(&ck, AUDIT_PROBLEM_REORDERED, missing, 0,
					"record %llu is out of place: it comes later in the export",
					ULL(missing))
				 : fail(&ck, AUDIT_PROBLEM_MISSING, missing, 0,
					"record %llu is missing from the export", ULL(missing));
	if (rc == 0)
		rc = checker_finish(&ck);
	reported = rc == 0 || rc == ODX_ECORRUPT;
out:
	if (recs.f)
		fclose(recs.f);
	if (cps.f)
		fclose(cps.f);
	free(recs.buf);
	free(cps.buf);
	merkle_hasher_free(ck.h);
	if (reported) {
		*rep = r;
		return r.problem == AUDIT_PROBLEM_NONE ? 0 : ODX_ECORRUPT;
	}
	return rc;
}
