/*
 * store_sqlite.c — the SQLite backend of store.h.
 *
 * Layout: <data>/platform.db and <data>/tenants/<tenant-id>.db, WAL mode,
 * synchronous=FULL (a commit is on disk before it returns), 5 s busy wait.
 * Connections are pooled per database file and used by one thread at a
 * time (SQLITE_OPEN_NOMUTEX); each caches its prepared statements keyed by
 * the SQL text, which callers pass as string literals.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "crypto/random.h"
#include "store/migrations.h"
#include "store/store.h"

#define POOL_MAX_IDLE	8
#define STMT_CACHE	48
#define BUSY_TIMEOUT_MS 5000

struct pool;

struct conn {
	sqlite3 *db;
	struct pool *pool;
	size_t ncache;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
};

struct pool {
	char key[ID_MAX_LEN]; /* tenant id, "" for platform */
	char *path;
	enum store_scope_kind scope;
	struct conn *idle[POOL_MAX_IDLE];
	int nidle;
	int out;   /* connections checked out */
	bool dead; /* tenant destroyed: close connections as they come back */
	bool opened; /* a connection to its file was opened: the file existed */
	struct pool *next;
};

struct store {
	char *dir;
	pthread_mutex_t lock;
	struct pool *pools;
};

struct store_tx {
	struct store *s;
	struct conn *c;
};

struct store_stmt {
	sqlite3_stmt *st;
	bool owned; /* not from the cache: finalize on free */
};

static int map_sqlite(int rc)
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

static int prepare(struct conn *c, const char *sql, sqlite3_stmt **st, bool *owned);
static void release_stmt(sqlite3_stmt *st, bool owned);

/* Runs a statement without arguments or rows through the connection's statement cache:
 * BEGIN, COMMIT and ROLLBACK run on every request, and parsing them each time showed. */
static int conn_run(struct conn *c, const char *sql)
{
	sqlite3_stmt *st;
	bool owned;
	int rc = prepare(c, sql, &st, &owned);
	if (rc < 0)
		return rc;
	int s = sqlite3_step(st);
	rc = s == SQLITE_DONE || s == SQLITE_ROW ? 0 : map_sqlite(s);
	release_stmt(st, owned);
	return rc;
}

static int exec_plain(sqlite3 *db, const char *sql)
{
	return map_sqlite(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int migrate(sqlite3 *db, enum store_scope_kind scope)
{
	size_t n;
	const char *const *steps = migrations_for(scope, &n);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return ODX_EIO;
	int64_t version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0)
		return ODX_EIO;
	if ((size_t)version > n)
		return ODX_ECORRUPT; /* written by a newer odysseusd: refuse to guess */
	for (size_t i = (size_t)version; i < n; i++) {
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %zu", i + 1);
		int rc = exec_plain(db, "BEGIN IMMEDIATE");
		if (rc == 0)
			rc = exec_plain(db, steps[i]);
		if (rc == 0)
			rc = exec_plain(db, bump);
		if (rc == 0)
			rc = exec_plain(db, "COMMIT");
		if (rc < 0) {
			exec_plain(db, "ROLLBACK");
			return rc;
		}
	}
	return 0;
}

static int conn_open(const char *path, enum store_scope_kind scope, bool create, struct conn **out)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return ODX_ENOMEM;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = map_sqlite(sqlite3_open_v2(path, &c->db, flags, NULL));
	if (rc == 0) {
		sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
		sqlite3_extended_result_codes(c->db, 1);
		rc = exec_plain(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				       "PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;");
	}
	if (rc == 0)
		rc = migrate(c->db, scope);
	if (rc < 0) {
		sqlite3_close_v2(c->db);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ncache; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close_v2(c->db);
	free(c);
}

static int tenant_path(const struct store *s, const char *tenant_id, char **out)
{
	/* The id is ours (random hex), but check: it becomes part of a path. */
	if (!random_id_valid("ten", tenant_id))
		return ODX_ENOTFOUND;
	size_t n = strlen(s->dir) + strlen(tenant_id) + 16;
	char *p = malloc(n);
	if (!p)
		return ODX_ENOMEM;
	snprintf(p, n, "%s/tenants/%s.db", s->dir, tenant_id);
	*out = p;
	return 0;
}

static void pool_free(struct pool *p)
{
	for (int i = 0; i < p->nidle; i++)
		conn_close(p->idle[i]);
	free(p->path);
	free(p);
}

/* Finds or makes the pool for a scope; s->lock held. */
static int pool_get_locked(struct store *s, const char *tenant_id, struct pool **out)
{
	const char *key = tenant_id ? tenant_id : "";
	for (struct pool *p = s->pools; p; p = p->next) {
		if (strcmp(p->key, key) == 0) {
			*out = p;
			return 0;
		}
	}
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return ODX_ENOMEM;
	int rc;
	if (tenant_id) {
		rc = tenant_path(s, tenant_id, &p->path);
		p->scope = STORE_TENANT;
	} else {
		size_t n = strlen(s->dir) + 16;
		p->path = malloc(n);
		rc = p->path ? 0 : ODX_ENOMEM;
		if (p->path)
			snprintf(p->path, n, "%s/platform.db", s->dir);
		p->scope = STORE_PLATFORM;
	}
	if (rc < 0) {
		free(p);
		return rc;
	}
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->next = s->pools;
	s->pools = p;
	*out = p;
	return 0;
}

static int conn_checkout(struct store *s, const char *tenant_id, bool create, struct conn **out)
{
	pthread_mutex_lock(&s->lock);
	struct pool *p;
	int rc = pool_get_locked(s, tenant_id, &p);
	if (rc < 0) {
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	p->out++;
	struct conn *c = p->nidle > 0 ? p->idle[--p->nidle] : NULL;
	pthread_mutex_unlock(&s->lock);
	if (!c) {
		/* Tenant files are made only by store_tenant_create: a missing one is a missing
		 * tenant. */
		if (tenant_id && !create && access(p->path, F_OK) != 0)
			rc = ODX_ENOTFOUND;
		else
			rc = conn_open(p->path, p->scope, create, &c);
		pthread_mutex_lock(&s->lock);
		if (rc < 0)
			p->out--;
		else
			p->opened = true;
		pthread_mutex_unlock(&s->lock);
		if (rc < 0)
			return rc;
		c->pool = p;
	}
	*out = c;
	return 0;
}

static void unlink_pool_locked(struct store *s, struct pool *p)
{
	for (struct pool **pp = &s->pools; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void conn_checkin(struct store *s, struct conn *c, bool healthy)
{
	struct pool *p = c->pool;
	pthread_mutex_lock(&s->lock);
	p->out--;
	if (healthy && !p->dead && p->nidle < POOL_MAX_IDLE) {
		p->idle[p->nidle++] = c;
		c = NULL;
	}
	bool free_pool = p->dead && p->out == 0;
	pthread_mutex_unlock(&s->lock);
	conn_close(c);
	if (free_pool)
		pool_free(p);
}

int store_open(const char *data_dir, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return ODX_ENOMEM;
	s->dir = strdup(data_dir);
	pthread_mutex_init(&s->lock, NULL);
	char sub[4200];
	snprintf(sub, sizeof(sub), "%s/tenants", data_dir);
	int rc = s->dir ? 0 : ODX_ENOMEM;
	if (rc == 0 && mkdir(data_dir, 0700) != 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0 && mkdir(sub, 0700) != 0 && errno != EEXIST)
		rc = -errno;
	struct conn *c = NULL;
	if (rc == 0)
		rc = conn_checkout(s, NULL, true, &c);
	if (rc < 0) {
		store_free(s);
		return rc;
	}
	conn_checkin(s, c, true);
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	while (s->pools) {
		struct pool *p = s->pools;
		s->pools = p->next;
		pool_free(p);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

int store_tenant_create(struct store *s, const char *tenant_id)
{
	char *path;
	int rc = tenant_path(s, tenant_id, &path);
	if (rc < 0)
		return rc == ODX_ENOTFOUND ? ODX_EINVAL : rc;
	bool exists = access(path, F_OK) == 0;
	free(path);
	if (exists)
		return ODX_ECONFLICT;
	struct conn *c;
	rc = conn_checkout(s, tenant_id, true, &c);
	if (rc < 0)
		return rc;
	conn_checkin(s, c, true);
	return 0;
}

int store_tenant_destroy(struct store *s, const char *tenant_id)
{
	char *path;
	int rc = tenant_path(s, tenant_id, &path);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&s->lock);
	for (struct pool *p = s->pools; p; p = p->next) {
		if (strcmp(p->key, tenant_id) == 0) {
			unlink_pool_locked(s, p);
			p->dead = true;
			for (int i = 0; i < p->nidle; i++)
				conn_close(p->idle[i]);
			p->nidle = 0;
			if (p->out == 0)
				pool_free(p);
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	const char *suffixes[] = {"-wal", "-shm", ""};
	size_t n = strlen(path) + 8;
	char *f = malloc(n);
	if (!f) {
		free(path);
		return ODX_ENOMEM;
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(f, n, "%s%s", path, suffixes[i]);
		if (unlink(f) != 0 && errno != ENOENT)
			rc = -errno;
	}
	free(f);
	free(path);
	return rc;
}

bool store_tenant_exists(struct store *s, const char *tenant_id)
{
	pthread_mutex_lock(&s->lock);
	bool found = false;
	/* A pool left by a failed attempt on a missing tenant proves nothing: only one
	 * that opened the file does. */
	for (struct pool *p = s->pools; p && !found; p = p->next)
		found = !p->dead && p->opened && strcmp(p->key, tenant_id) == 0;
	pthread_mutex_unlock(&s->lock);
	if (found)
		return true;
	char *path;
	if (tenant_path(s, tenant_id, &path) < 0)
		return false;
	found = access(path, F_OK) == 0;
	free(path);
	return found;
}

int store_tx_begin(struct store *s, const char *tenant_id, enum store_mode mode,
		   struct store_tx **out)
{
	/* A tenant scope needs a real tenant id: "" must never fall through to the platform. */
	if (tenant_id && !random_id_valid("ten", tenant_id))
		return ODX_ENOTFOUND;
	struct store_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		return ODX_ENOMEM;
	int rc = conn_checkout(s, tenant_id, false, &tx->c);
	if (rc < 0) {
		free(tx);
		return rc;
	}
	tx->s = s;
	rc = conn_run(tx->c, mode == STORE_WRITE ? "BEGIN IMMEDIATE" : "BEGIN");
	if (rc < 0) {
		conn_checkin(s, tx->c, false);
		free(tx);
		return rc;
	}
	*out = tx;
	return 0;
}

static void tx_release(struct store_tx *tx, bool healthy)
{
	conn_checkin(tx->s, tx->c, healthy);
	free(tx);
}

int store_tx_commit(struct store_tx *tx)
{
	int rc = conn_run(tx->c, "COMMIT");
	if (rc < 0)
		conn_run(tx->c, "ROLLBACK");
	tx_release(tx, rc == 0);
	return rc;
}

void store_tx_abort(struct store_tx *tx)
{
	if (!tx)
		return;
	bool healthy = conn_run(tx->c, "ROLLBACK") == 0;
	tx_release(tx, healthy);
}

static int bind_args(sqlite3_stmt *st, const struct store_arg *args, size_t nargs)
{
	if ((int)nargs != sqlite3_bind_parameter_count(st))
		return ODX_EINTERNAL;
	for (size_t i = 0; i < nargs; i++) {
		int idx = (int)i + 1, rc;
		switch (args[i].type) {
		case STORE_ARG_NULL: rc = sqlite3_bind_null(st, idx); break;
		case STORE_ARG_TEXT:
			rc = sqlite3_bind_text(st, idx, args[i].ptr, -1, SQLITE_STATIC);
			break;
		case STORE_ARG_INT: rc = sqlite3_bind_int64(st, idx, args[i].i); break;
		case STORE_ARG_REAL: rc = sqlite3_bind_double(st, idx, args[i].d); break;
		case STORE_ARG_BLOB:
			rc = sqlite3_bind_blob(st, idx, args[i].ptr, (int)args[i].len,
					       SQLITE_STATIC);
			break;
		default: return ODX_EINTERNAL;
		}
		if (rc != SQLITE_OK)
			return map_sqlite(rc);
	}
	return 0;
}

/* A prepared statement for sql: the cached one when it is idle, else a fresh one. */
static int prepare(struct conn *c, const char *sql, sqlite3_stmt **st, bool *owned)
{
	for (size_t i = 0; i < c->ncache; i++) {
		if (c->cache[i].sql == sql || strcmp(c->cache[i].sql, sql) == 0) {
			if (sqlite3_stmt_busy(c->cache[i].st))
				break;
			*st = c->cache[i].st;
			*owned = false;
			return 0;
		}
	}
	int rc =
	    map_sqlite(sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL));
	if (rc < 0)
		return rc;
	*owned = true;
	if (c->ncache < STMT_CACHE) {
		c->cache[c->ncache].sql = sql;
		c->cache[c->ncache].st = *st;
		c->ncache++;
		*owned = false;
	}
	return 0;
}

static void release_stmt(sqlite3_stmt *st, bool owned)
{
	if (owned) {
		sqlite3_finalize(st);
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

int store_exec(struct store_tx *tx, const char *sql, const struct store_arg *args, size_t nargs)
{
	sqlite3_stmt *st;
	bool owned;
	int rc = prepare(tx->c, sql, &st, &owned);
	if (rc < 0)
		return rc;
	rc = bind_args(st, args, nargs);
	if (rc == 0) {
		int s = sqlite3_step(st);
		rc = s == SQLITE_DONE || s == SQLITE_ROW ? 0 : map_sqlite(s);
	}
	if (rc == 0)
		rc = sqlite3_changes(tx->c->db);
	release_stmt(st, owned);
	return rc;
}

int store_query(struct store_tx *tx, const char *sql, const struct store_arg *args, size_t nargs,
		struct store_stmt **out)
{
	struct store_stmt *q = calloc(1, sizeof(*q));
	if (!q)
		return ODX_ENOMEM;
	int rc = prepare(tx->c, sql, &q->st, &q->owned);
	if (rc == 0) {
		rc = bind_args(q->st, args, nargs);
		if (rc < 0)
			release_stmt(q->st, q->owned);
	}
	if (rc < 0) {
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

int store_step(struct store_stmt *q)
{
	int rc = sqlite3_step(q->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return map_sqlite(rc);
}

const char *store_col_text(struct store_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q->st, col);
	return t ? (const char *)t : "";
}

void store_col_copy(struct store_stmt *q, int col, char *buf, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(q->st, col);
	size_t n = t ? (size_t)sqlite3_column_bytes(q->st, col) : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(buf, t, n);
	buf[n] = '\0';
}

int64_t store_col_int(struct store_stmt *q, int col)
{
	return sqlite3_column_int64(q->st, col);
}

double store_col_real(struct store_stmt *q, int col)
{
	return sqlite3_column_double(q->st, col);
}

const void *store_col_blob(struct store_stmt *q, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(q->st, col);
	*len = (size_t)sqlite3_column_bytes(q->st, col);
	return p;
}

bool store_col_is_null(struct store_stmt *q, int col)
{
	return sqlite3_column_type(q->st, col) == SQLITE_NULL;
}

void store_stmt_free(struct store_stmt *q)
{
	if (!q)
		return;
	release_stmt(q->st, q->owned);
	free(q);
}

int store_ping(struct store *s)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	struct store_stmt *q;
	rc = store_query(tx, "SELECT count(*) FROM tenants", STORE_NOARGS, &q);
	if (rc == 0) {
		rc = store_step(q) == 1 ? 0 : ODX_EIO;
		store_stmt_free(q);
	}
	store_tx_abort(tx);
	return rc;
}
