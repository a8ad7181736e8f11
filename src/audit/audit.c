/*
 * audit.c — opening the log, the writer thread (group commit) and
 * checkpoints. See audit.h for the contract and docs/audit.md for the bytes.
 *
 * Group commit: audit_append validates the record, links a `struct
 * pending` (on the caller's stack) onto the queue and sleeps on its semaphore.
 * The one writer thread takes the whole queue, and in ONE transaction
 * assigns seq/time, computes the chain and leaf hashes, inserts the rows
 * and the completed Merkle nodes, signs a checkpoint when one is due, and
 * commits (synchronous=FULL: one fsync of the WAL). Then it wakes the
 * first pending of the batch only; every woken waiter wakes two more (a
 * binary tree laid over the batch list: node k wakes 2k+1 and 2k+2). Each
 * waiter sleeps on its own semaphore, so nobody retakes the queue lock to
 * wake up, and the writer does not spend its time in futex wakes (a
 * shared condvar broadcast made 64 waiters convoy on the lock; waking them
 * one by one from the writer cost a quarter of its time).
 * While it commits, new appends queue up and form the next batch, so the
 * number of fsyncs per second stays about constant and records per fsync
 * grow with the number of callers.
 *
 * Failure: if anything in the transaction fails (SQLITE_FULL, SQLITE_IOERR,
 * a trigger refusing out-of-sequence rows), it is rolled back, every
 * pending of the batch gets ODX_EUNAVAIL, and the in-memory state (next
 * seq, last hash, frontier) is not advanced — it was worked on as a copy.
 * The writer then reopens its connection and re-reads that state from the
 * file before the next batch, so whatever the file really holds wins and
 * seq stays gap-free. Appends succeed again as soon as writing works.
 *
 * Read indexes: after waking a batch, the writer extends the idx_* tables
 * (db.c) when index_every records are unindexed, or after index_idle of
 * quiet, in a transaction of its own — so indexing never delays a reply,
 * and an index failure only makes the writer re-read its state.
 *
 * Writer-only state (size, last_hash, last_time, fr, last_cp, indexed, wdb
 * and its statements) is touched only by the writer thread (and by
 * audit_open before the thread starts). `committed` is the size published
 * under lock.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/internal.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/sign.h"

#define DEFAULT_CP_EVERY 10000
#define DEFAULT_CP_INTERVAL_NS NSEC_PER_SEC
#define MAX_CP_INTERVAL_NS ((int64_t)100 * 365 * 86400 * NSEC_PER_SEC) /* sums stay finite */
#define DEFAULT_INDEX_EVERY 1024
#define INDEX_MAX_CHUNK 65536          /* records per index transaction at most */
#define DEFAULT_INDEX_IDLE_NS (NSEC_PER_SEC / 5)
#define POOL_MAX_IDLE 8

struct pending {
	struct pending *next;
	struct pending *wake[2]; /* whom this waiter wakes once woken (the tree) */
	struct audit_record *rec; /* NULL: a checkpoint request */
	/* results, written by the writer */
	uint64_t seq;
	int64_t time_ns;
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	struct audit_checkpoint cp;
	int rc;
	sem_t done; /* posted by the writer once rc and the results are set */
};

struct audit_log {
	char *path;
	char *vfs;
	struct sign_key *key;
	uint8_t pub[AUDIT_PUB_LEN];
	char key_id[AUDIT_KEY_ID_LEN];
	uint64_t cp_every;
	int64_t cp_interval_ns;
	uint64_t index_every;
	int64_t index_idle_ns;

	pthread_mutex_t lock;
	pthread_cond_t work_cv; /* the writer waits here (CLOCK_MONOTONIC) */
	struct pending *head, *tail;
	bool stopping;
	bool writer_started;
	pthread_t writer;
	uint64_t committed; /* records durable, published under lock */
	bool failing;       /* the last batch with records failed; under lock */

	/* writer-only */
	sqlite3 *wdb;
	sqlite3_stmt *ins_rec, *ins_node, *ins_cp;
	struct merkle_hasher *wh;
	bool reload;
	uint64_t size;
	uint8_t last_hash[AUDIT_HASH_LEN];
	int64_t last_time;
	struct merkle_frontier fr;
	struct audit_checkpoint last_cp; /* tree_size 0: none */
	int64_t unsigned_since;          /* monotonic ns when records first went unsigned; 0: none */
	uint64_t indexed;                /* records covered by the idx_* tables */
	int64_t last_write;              /* monotonic ns of the last batch */

	pthread_mutex_t pool_lock;
	struct audit_rconn *idle[POOL_MAX_IDLE];
	int nidle;
};

static int exec(sqlite3 *db, const char *sql)
{
	return audit_map_sqlite(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* ---- the writer's connection and state ---- */

static void writer_db_close(struct audit_log *log)
{
	sqlite3_finalize(log->ins_rec);
	sqlite3_finalize(log->ins_node);
	sqlite3_finalize(log->ins_cp);
	log->ins_rec = log->ins_node = log->ins_cp = NULL;
	sqlite3_close(log->wdb);
	log->wdb = NULL;
}

static int writer_db_open(struct audit_log *log)
{
	int rc = audit_db_open(log->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, log->vfs,
			       &log->wdb);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = NULL;
	rc = sqlite3_prepare_v2(log->wdb, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
		rc = SQLITE_IOERR;
	sqlite3_finalize(st);
	rc = audit_map_sqlite(rc);
	if (rc == 0)
		rc = exec(log->wdb, "PRAGMA synchronous = FULL; PRAGMA recursive_triggers = ON; PRAGMA cache_size = -65536");
	int64_t version = 0;
	if (rc == 0) {
		rc = sqlite3_prepare_v2(log->wdb, "PRAGMA user_version", -1, &st, NULL);
		if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		rc = audit_map_sqlite(rc);
	}
	if (rc == 0 && version == 0) {
		char pragmas[128];
		snprintf(pragmas, sizeof(pragmas), "PRAGMA application_id = %d; PRAGMA user_version = %d",
			 AUDIT_APP_ID, AUDIT_SCHEMA_VERSION);
		rc = exec(log->wdb, "BEGIN IMMEDIATE");
		if (rc == 0)
			rc = exec(log->wdb, audit_schema_sql);
		if (rc == 0)
			rc = exec(log->wdb, pragmas);
		if (rc == 0)
			rc = exec(log->wdb, "COMMIT");
		if (rc < 0 && !sqlite3_get_autocommit(log->wdb))
			exec(log->wdb, "ROLLBACK");
	}
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			log->wdb, "INSERT INTO records (" AUDIT_RECORD_COLS ") VALUES "
				  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
			-1, &log->ins_rec, NULL));
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			log->wdb, "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?1, ?2, ?3)", -1,
			&log->ins_node, NULL));
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			log->wdb, "INSERT INTO checkpoints (tree_size, root_hash, time_ns, key_id, "
				  "signature) VALUES (?1, ?2, ?3, ?4, ?5)",
			-1, &log->ins_cp, NULL));
	if (rc < 0)
		writer_db_close(log);
	return rc;
}

/* Registers the signing key's public half in the file (once per key). */
static int register_key(struct audit_log *log)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(log->wdb, "SELECT public_key FROM signing_keys WHERE key_id = ?1",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return audit_map_sqlite(rc);
	sqlite3_bind_text(st, 1, log->key_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	bool found = rc == SQLITE_ROW;
	bool same = found && sqlite3_column_bytes(st, 0) == AUDIT_PUB_LEN &&
		    memcmp(sqlite3_column_blob(st, 0), log->pub, AUDIT_PUB_LEN) == 0;
	sqlite3_finalize(st);
	if (found)
		return same ? 0 : ODX_ECORRUPT;
	if (rc != SQLITE_DONE)
		return audit_map_sqlite(rc);
	rc = sqlite3_prepare_v2(log->wdb,
				"INSERT INTO signing_keys (key_id, public_key, created_ns) VALUES (?1, ?2, ?3)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return audit_map_sqlite(rc);
	sqlite3_bind_text(st, 1, log->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, log->pub, AUDIT_PUB_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, time_now_ns());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : audit_map_sqlite(rc);
}

/* Re-reads size, last hash/time, the frontier and the last checkpoint from the file. */
static int writer_load_state(struct audit_log *log)
{
	struct audit_tree_src src = {0};
	sqlite3_stmt *st = NULL;
	uint64_t size = 0;
	uint8_t last_hash[AUDIT_HASH_LEN] = {0};
	int64_t last_time = 0;
	struct merkle_frontier fr;
	struct audit_checkpoint cp = {0};
	merkle_frontier_init(&fr);

	int rc = exec(log->wdb, "BEGIN");
	if (rc < 0)
		return rc;
	rc = audit_map_sqlite(sqlite3_prepare_v2(
		log->wdb, "SELECT seq, hash, time_ns FROM records ORDER BY seq DESC LIMIT 1", -1, &st,
		NULL));
	if (rc == 0) {
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW) {
			if (sqlite3_column_bytes(st, 1) != AUDIT_HASH_LEN ||
			    sqlite3_column_int64(st, 0) < 1) {
				rc = ODX_ECORRUPT;
			} else {
				size = (uint64_t)sqlite3_column_int64(st, 0);
				memcpy(last_hash, sqlite3_column_blob(st, 1), AUDIT_HASH_LEN);
				last_time = sqlite3_column_int64(st, 2);
			}
		} else if (s != SQLITE_DONE) {
			rc = audit_map_sqlite(s);
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == 0)
		rc = audit_tree_src_init(&src, log->wdb, log->wh);
	/* One perfect subtree per set bit of size, largest first. */
	uint64_t start = 0;
	for (int level = 63; rc == 0 && level >= 0; level--) {
		if (!((size >> level) & 1))
			continue;
		rc = audit_tree_subtree(&src, (unsigned)level, start >> level, fr.node[fr.n]);
		fr.n++;
		start += (uint64_t)1 << level;
	}
	fr.size = size;
	audit_tree_src_done(&src);
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			log->wdb, "SELECT tree_size, root_hash, time_ns, key_id, signature FROM "
				  "checkpoints ORDER BY tree_size DESC LIMIT 1",
			-1, &st, NULL));
	if (rc == 0) {
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW)
			rc = audit_checkpoint_row(st, &cp);
		else if (s != SQLITE_DONE)
			rc = audit_map_sqlite(s);
	}
	sqlite3_finalize(st);
	st = NULL;
	uint64_t indexed = 0;
	if (rc == 0)
		rc = audit_map_sqlite(sqlite3_prepare_v2(
			log->wdb, "SELECT coalesce(max(upto), 0) FROM idx_marks", -1, &st, NULL));
	if (rc == 0) {
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW)
			indexed = (uint64_t)sqlite3_column_int64(st, 0);
		else
			rc = audit_map_sqlite(s);
	}
	sqlite3_finalize(st);
	exec(log->wdb, "COMMIT");
	if (rc < 0)
		return rc;
	log->indexed = indexed > size ? size : indexed;
	log->size = size;
	memcpy(log->last_hash, last_hash, AUDIT_HASH_LEN);
	log->last_time = last_time;
	log->fr = fr;
	log->last_cp = cp;
	log->unsigned_since = size > cp.tree_size ? time_mono_ns() : 0;
	pthread_mutex_lock(&log->lock);
	log->committed = size;
	pthread_mutex_unlock(&log->lock);
	return 0;
}

static int writer_reopen(struct audit_log *log)
{
	writer_db_close(log);
	int rc = writer_db_open(log);
	if (rc == 0)
		rc = writer_load_state(log);
	if (rc < 0)
		writer_db_close(log);
	return rc;
}

/* ---- one batch ---- */

static int emit_node(void *arg, unsigned level, uint64_t index,
		     const uint8_t hash[static MERKLE_HASH_LEN])
{
	struct audit_log *log = arg;
	if (level % AUDIT_NODE_STRIDE)
		return 0;
	sqlite3_stmt *st = log->ins_node;
	sqlite3_bind_int64(st, 1, level);
	sqlite3_bind_int64(st, 2, (int64_t)index);
	sqlite3_bind_blob(st, 3, hash, MERKLE_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : audit_map_sqlite(rc);
}

static int insert_record(struct audit_log *log, const struct audit_record *r,
			 const uint8_t leaf[static AUDIT_HASH_LEN])
{
	sqlite3_stmt *st = log->ins_rec;
	const char *texts[] = {
		audit_actor_type_name(r->actor_type), r->actor_id, r->actor_email, r->tenant_id,
		r->action, r->resource, audit_outcome_name(r->outcome), r->reason, r->request_id,
		r->source_ip,
	};
	sqlite3_bind_int64(st, 1, (int64_t)r->seq);
	sqlite3_bind_int64(st, 2, r->time_ns);
	for (int i = 0; i < 10; i++)
		sqlite3_bind_text(st, 3 + i, texts[i] ? texts[i] : "", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 13, r->prev_hash, AUDIT_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 14, r->hash, AUDIT_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 15, leaf, AUDIT_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : audit_map_sqlite(rc);
}

static int insert_checkpoint(struct audit_log *log, const struct audit_checkpoint *cp)
{
	sqlite3_stmt *st = log->ins_cp;
	sqlite3_bind_int64(st, 1, (int64_t)cp->tree_size);
	sqlite3_bind_blob(st, 2, cp->root_hash, AUDIT_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, cp->time_ns);
	sqlite3_bind_text(st, 4, cp->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, cp->signature, AUDIT_SIG_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : audit_map_sqlite(rc);
}

static int sign_checkpoint(struct audit_log *log, uint64_t size, int64_t min_time,
			   const struct merkle_frontier *fr, struct audit_checkpoint *out)
{
	struct audit_checkpoint cp = {.tree_size = size};
	int64_t now = time_now_ns();
	cp.time_ns = now > min_time ? now : min_time;
	memcpy(cp.key_id, log->key_id, AUDIT_KEY_ID_LEN);
	int rc = merkle_frontier_root(log->wh, fr, cp.root_hash);
	uint8_t msg[AUDIT_CHECKPOINT_MSG_LEN];
	if (rc == 0) {
		audit_checkpoint_message(&cp, msg);
		rc = sign_message(log->key, msg, sizeof(msg), cp.signature);
	}
	if (rc == 0)
		*out = cp;
	return rc;
}

/*
 * Writes the batch (records, then a checkpoint when due or asked for) in
 * one transaction. `tick` is set when the writer woke for the time-based
 * checkpoint or is stopping.
 */
static void write_batch(struct audit_log *log, struct pending *batch, bool tick)
{
	bool asked = false;
	size_t nrec = 0;
	for (struct pending *p = batch; p; p = p->next) {
		if (p->rec)
			nrec++;
		else
			asked = true;
	}
	int rc = 0;
	if (log->reload) {
		rc = writer_reopen(log);
		if (rc < 0)
			goto out;
		log->reload = false;
	}

	/* Work on copies: nothing in log changes unless the commit succeeds. */
	uint64_t size = log->size;
	uint8_t prev[AUDIT_HASH_LEN];
	memcpy(prev, log->last_hash, AUDIT_HASH_LEN);
	int64_t last_time = log->last_time;
	struct merkle_frontier fr = log->fr;
	struct audit_checkpoint cp = log->last_cp;
	bool new_cp = false, cp_sign_failed = false;
	int64_t mono = time_mono_ns();

	bool unsigned_after = size + nrec > cp.tree_size;
	bool due = asked || tick || size + nrec - cp.tree_size >= log->cp_every ||
		   (log->unsigned_since && mono - log->unsigned_since >= log->cp_interval_ns);
	bool in_tx = nrec > 0 || (due && unsigned_after);
	if (!in_tx)
		goto out;
	rc = exec(log->wdb, "BEGIN IMMEDIATE");
	for (struct pending *p = batch; rc == 0 && p; p = p->next) {
		if (!p->rec)
			continue;
		struct audit_record r = *p->rec;
		int64_t now = time_now_ns();
		r.seq = ++size;
		r.time_ns = now > last_time ? now : last_time;
		memcpy(r.prev_hash, prev, AUDIT_HASH_LEN);
		uint8_t leaf[AUDIT_HASH_LEN];
		rc = audit_record_hashes(log->wh, &r, prev, r.hash, leaf);
		if (rc == 0)
			rc = insert_record(log, &r, leaf);
		if (rc == 0)
			rc = merkle_frontier_push(log->wh, &fr, leaf, emit_node, log);
		if (rc == 0) {
			p->seq = r.seq;
			p->time_ns = r.time_ns;
			memcpy(p->prev, prev, AUDIT_HASH_LEN);
			memcpy(p->hash, r.hash, AUDIT_HASH_LEN);
			memcpy(prev, r.hash, AUDIT_HASH_LEN);
			last_time = r.time_ns;
		}
	}
	if (rc == 0 && due && size > cp.tree_size) {
		struct audit_checkpoint next;
		if (sign_checkpoint(log, size, last_time, &fr, &next) == 0) {
			rc = insert_checkpoint(log, &next);
			if (rc == 0) {
				cp = next;
				new_cp = true;
			}
		} else {
			cp_sign_failed = true; /* keep the records; sign next time */
		}
	}
	if (rc == 0)
		rc = exec(log->wdb, "COMMIT");
	if (rc < 0) {
		if (!sqlite3_get_autocommit(log->wdb))
			exec(log->wdb, "ROLLBACK");
		log->reload = true;
		goto out;
	}
	log->size = size;
	memcpy(log->last_hash, prev, AUDIT_HASH_LEN);
	log->last_time = last_time;
	log->fr = fr;
	if (new_cp)
		log->last_cp = cp;
	if (size == log->last_cp.tree_size)
		log->unsigned_since = 0;
	else if (!log->unsigned_since)
		log->unsigned_since = mono;
out:
	if (rc < 0) {
		rc = ODX_EUNAVAIL;
		/* Wait a full interval before the next timed attempt, not a busy loop. */
		if (log->unsigned_since)
			log->unsigned_since = time_mono_ns();
	}
	for (struct pending *p = batch; p; p = p->next) {
		if (rc < 0)
			p->rc = rc;
		else if (p->rec)
			p->rc = 0;
		else if (log->last_cp.tree_size == 0)
			p->rc = ODX_ENOTFOUND;
		else if (cp_sign_failed && log->last_cp.tree_size != log->size)
			p->rc = ODX_ECRYPTO;
		else {
			p->cp = log->last_cp;
			p->rc = 0;
		}
	}
}

#define AUDIT_STR_(x) #x
#define AUDIT_STR(x) AUDIT_STR_(x)

/*
 * Extends the idx_* tables over records (indexed, indexed + n]: one
 * transaction, rows inserted sorted by (bucket, key, seq) so they land in
 * the current bucket's small key range (db.c explains why). On failure the
 * transaction is rolled back and the state re-read before the next batch.
 */
static void index_flush(struct audit_log *log)
{
#define B "(seq >> " AUDIT_STR(AUDIT_BUCKET_BITS) ")"
	static const char *const fill[] = {
		"INSERT INTO idx_tenant SELECT " B ", tenant_id, seq FROM records "
		"WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2, 3",
		"INSERT INTO idx_tenant_action SELECT " B ", tenant_id, action, seq FROM records "
		"WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2, 3, 4",
		"INSERT INTO idx_actor SELECT " B ", actor_id, seq FROM records "
		"WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2, 3",
		"INSERT INTO idx_resource SELECT " B ", resource, seq FROM records "
		"WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2, 3",
		"INSERT INTO idx_marks (upto, time_ns) SELECT ?2, ?3 WHERE ?1 >= 0",
	};
#undef B
	uint64_t from = log->indexed;
	uint64_t to = log->size - from > INDEX_MAX_CHUNK ? from + INDEX_MAX_CHUNK : log->size;
	if (log->reload || to <= from)
		return;
	int rc = exec(log->wdb, "BEGIN IMMEDIATE");
	for (size_t i = 0; rc == 0 && i < sizeof(fill) / sizeof(fill[0]); i++) {
		sqlite3_stmt *st;
		rc = audit_map_sqlite(sqlite3_prepare_v2(log->wdb, fill[i], -1, &st, NULL));
		if (rc < 0)
			break;
		sqlite3_bind_int64(st, 1, (int64_t)from);
		sqlite3_bind_int64(st, 2, (int64_t)to);
		sqlite3_bind_int64(st, 3, time_now_ns());
		int s = sqlite3_step(st);
		rc = s == SQLITE_DONE ? 0 : audit_map_sqlite(s);
		sqlite3_finalize(st);
	}
	if (rc == 0)
		rc = exec(log->wdb, "COMMIT");
	if (rc < 0) {
		if (!sqlite3_get_autocommit(log->wdb))
			exec(log->wdb, "ROLLBACK");
		log->reload = true;
		return;
	}
	log->indexed = to;
}

static void *writer_main(void *arg)
{
	struct audit_log *log = arg;
	pthread_mutex_lock(&log->lock);
	for (;;) {
		bool tick = false, idle_index = false;
		while (!log->head && !log->stopping) {
			/* Sleep until work, the checkpoint deadline, or indexing after quiet. */
			int64_t now = time_mono_ns(), deadline = INT64_MAX;
			if (log->unsigned_since) {
				deadline = log->unsigned_since + log->cp_interval_ns;
				if (now >= deadline) {
					tick = true;
					break;
				}
			}
			if (log->size > log->indexed && !log->reload) {
				int64_t d = log->last_write + log->index_idle_ns;
				if (now >= d) {
					idle_index = true;
					break;
				}
				deadline = d < deadline ? d : deadline;
			}
			if (deadline == INT64_MAX) {
				pthread_cond_wait(&log->work_cv, &log->lock);
			} else {
				struct timespec ts = {.tv_sec = deadline / NSEC_PER_SEC,
						      .tv_nsec = deadline % NSEC_PER_SEC};
				pthread_cond_timedwait(&log->work_cv, &log->lock, &ts);
			}
		}
		struct pending *batch = log->head;
		log->head = log->tail = NULL;
		bool stopping = log->stopping;
		pthread_mutex_unlock(&log->lock);

		if (batch || tick || stopping) {
			write_batch(log, batch, tick || stopping);
			log->last_write = time_mono_ns();
			int health = 0; /* 1: records were written, -1: a write failed */
			for (struct pending *p = batch; p; p = p->next)
				if (p->rc == ODX_EUNAVAIL)
					health = -1;
				else if (p->rec && p->rc == 0 && health == 0)
					health = 1;
			pthread_mutex_lock(&log->lock);
			log->committed = log->size;
			if (health)
				log->failing = health < 0;
			pthread_mutex_unlock(&log->lock);
			/* Lay the wake tree over the list, then wake its root. */
			struct pending *kid = batch ? batch->next : NULL;
			for (struct pending *p = batch; p; p = p->next)
				for (int i = 0; i < 2; i++) {
					p->wake[i] = kid;
					kid = kid ? kid->next : NULL;
				}
			if (batch)
				sem_post(&batch->done); /* batch may be gone from here on */
		}
		/* Indexing runs after the waiters are woken: it never delays an append's reply. */
		if (stopping) {
			while (!log->reload && log->indexed < log->size)
				index_flush(log);
		} else if (idle_index || log->size - log->indexed >= log->index_every) {
			index_flush(log);
		}
		pthread_mutex_lock(&log->lock);
		if (stopping && !log->head)
			break;
	}
	pthread_mutex_unlock(&log->lock);
	return NULL;
}

/* Queues p and sleeps until the writer has written (or failed) it. */
static int submit(struct audit_log *log, struct pending *p)
{
	if (sem_init(&p->done, 0, 0) != 0)
		return -errno;
	pthread_mutex_lock(&log->lock);
	if (log->tail)
		log->tail->next = p;
	else
		log->head = p;
	log->tail = p;
	pthread_cond_signal(&log->work_cv);
	pthread_mutex_unlock(&log->lock);
	while (sem_wait(&p->done) != 0)
		; /* EINTR only */
	/* Results are set for the whole batch before its first waiter wakes. */
	for (int i = 0; i < 2; i++)
		if (p->wake[i])
			sem_post(&p->wake[i]->done);
	sem_destroy(&p->done);
	return p->rc;
}

/* ---- public ---- */

int audit_append(struct audit_log *log, struct audit_record *rec)
{
	uint8_t buf[AUDIT_CANONICAL_MAX];
	size_t n;
	struct audit_record probe = *rec;
	probe.seq = 1;
	int rc = audit_record_encode(&probe, buf, &n); /* the writer must not meet bad input */
	if (rc < 0)
		return rc;
	struct pending p = {.rec = rec};
	rc = submit(log, &p);
	if (rc < 0)
		return rc;
	rec->seq = p.seq;
	rec->time_ns = p.time_ns;
	memcpy(rec->prev_hash, p.prev, AUDIT_HASH_LEN);
	memcpy(rec->hash, p.hash, AUDIT_HASH_LEN);
	return 0;
}

int audit_checkpoint_now(struct audit_log *log, struct audit_checkpoint *out)
{
	struct pending p = {0};
	int rc = submit(log, &p);
	if (rc == 0)
		*out = p.cp;
	return rc;
}

int audit_size(struct audit_log *log, uint64_t *out)
{
	pthread_mutex_lock(&log->lock);
	*out = log->committed;
	pthread_mutex_unlock(&log->lock);
	return 0;
}

bool audit_failing(struct audit_log *log)
{
	pthread_mutex_lock(&log->lock);
	bool f = log->failing;
	pthread_mutex_unlock(&log->lock);
	return f;
}

int audit_public_key(struct audit_log *log, uint8_t pub[static AUDIT_PUB_LEN],
		     char key_id[static AUDIT_KEY_ID_LEN])
{
	memcpy(pub, log->pub, AUDIT_PUB_LEN);
	memcpy(key_id, log->key_id, AUDIT_KEY_ID_LEN);
	return 0;
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

int audit_open(const char *db_path, const struct audit_options *opts, struct audit_log **out)
{
	if (!db_path || !opts || !opts->key_path || opts->checkpoint_interval_ns < 0 ||
	    opts->index_idle_ns < 0)
		return ODX_EINVAL;
	struct audit_log *log = calloc(1, sizeof(*log));
	if (!log)
		return ODX_ENOMEM;
	bool locks = false;
	int rc = 0;
	pthread_condattr_t ca;
	log->cp_every = opts->checkpoint_every ? opts->checkpoint_every : DEFAULT_CP_EVERY;
	log->index_every = opts->index_every ? opts->index_every : DEFAULT_INDEX_EVERY;
	log->index_idle_ns = opts->index_idle_ns > 0 ? opts->index_idle_ns : DEFAULT_INDEX_IDLE_NS;
	if (log->index_idle_ns > MAX_CP_INTERVAL_NS)
		log->index_idle_ns = MAX_CP_INTERVAL_NS;
	log->cp_interval_ns =
		opts->checkpoint_interval_ns ? opts->checkpoint_interval_ns : DEFAULT_CP_INTERVAL_NS;
	if (log->cp_interval_ns > MAX_CP_INTERVAL_NS)
		log->cp_interval_ns = MAX_CP_INTERVAL_NS;
	log->path = dup_str(db_path);
	log->vfs = opts->sqlite_vfs ? dup_str(opts->sqlite_vfs) : NULL;
	if (!log->path || (opts->sqlite_vfs && !log->vfs)) {
		rc = ODX_ENOMEM;
		goto out;
	}
	if (pthread_condattr_init(&ca) != 0) {
		rc = ODX_ENOMEM;
		goto out;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&log->lock, NULL) != 0 || pthread_mutex_init(&log->pool_lock, NULL) != 0 ||
	    pthread_cond_init(&log->work_cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		rc = ODX_ENOMEM;
		goto out;
	}
	pthread_condattr_destroy(&ca);
	locks = true;
	rc = sign_key_load(opts->key_path, &log->key);
	if (rc == 0)
		rc = sign_key_public(log->key, log->pub);
	if (rc == 0)
		rc = audit_key_id(log->pub, log->key_id);
	if (rc == 0)
		rc = merkle_hasher_new(&log->wh);
	if (rc == 0)
		rc = writer_db_open(log);
	if (rc == 0)
		rc = register_key(log);
	if (rc == 0)
		rc = writer_load_state(log);
	if (rc == 0) {
		rc = -pthread_create(&log->writer, NULL, writer_main, log);
		log->writer_started = rc == 0;
	}
out:
	if (rc < 0) {
		if (!locks) {
			free(log->path);
			free(log->vfs);
			free(log);
		} else {
			audit_close(log);
		}
		return rc;
	}
	*out = log;
	return 0;
}

void audit_close(struct audit_log *log)
{
	if (!log)
		return;
	if (log->writer_started) {
		pthread_mutex_lock(&log->lock);
		log->stopping = true;
		pthread_cond_signal(&log->work_cv);
		pthread_mutex_unlock(&log->lock);
		pthread_join(log->writer, NULL);
	}
	writer_db_close(log);
	for (int i = 0; i < log->nidle; i++) {
		sqlite3_close(log->idle[i]->db);
		merkle_hasher_free(log->idle[i]->h);
		free(log->idle[i]);
	}
	merkle_hasher_free(log->wh);
	sign_key_free(log->key);
	pthread_mutex_destroy(&log->lock);
	pthread_mutex_destroy(&log->pool_lock);
	pthread_cond_destroy(&log->work_cv);
	free(log->path);
	free(log->vfs);
	free(log);
}

/* ---- read connections ---- */

int audit_rconn_get(struct audit_log *log, struct audit_rconn **out)
{
	pthread_mutex_lock(&log->pool_lock);
	struct audit_rconn *c = log->nidle ? log->idle[--log->nidle] : NULL;
	pthread_mutex_unlock(&log->pool_lock);
	if (c) {
		*out = c;
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return ODX_ENOMEM;
	int rc = audit_db_open(log->path, SQLITE_OPEN_READWRITE, log->vfs, &c->db);
	if (rc == 0)
		rc = exec(c->db, "PRAGMA query_only = ON");
	if (rc == 0)
		rc = merkle_hasher_new(&c->h);
	if (rc < 0) {
		sqlite3_close(c->db);
		merkle_hasher_free(c->h);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void audit_rconn_put(struct audit_log *log, struct audit_rconn *c)
{
	if (!c)
		return;
	if (!sqlite3_get_autocommit(c->db))
		exec(c->db, "ROLLBACK");
	pthread_mutex_lock(&log->pool_lock);
	if (log->nidle < POOL_MAX_IDLE) {
		log->idle[log->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&log->pool_lock);
	if (c) {
		sqlite3_close(c->db);
		merkle_hasher_free(c->h);
		free(c);
	}
}
