/*
 * store.h — the state store interface: transactions bound to one tenant.
 *
 * All tenant-scoped reads and writes happen inside a transaction opened for
 * exactly one tenant (tenant_id from the verified credential) or for the
 * platform scope (tenant_id NULL: tenants, platform admins, the login and
 * API-key directories, refresh-token sessions). The SQLite backend keeps
 * one database file per tenant plus platform.db, so a query inside a tenant
 * transaction cannot reach another tenant's rows. A PostgreSQL backend
 * binds the tenant to the transaction with row-level security instead;
 * callers do not change.
 *
 * SQL is backend-neutral: `?` placeholders, values only through
 * store_arg (never concatenated), standard types (TEXT, INTEGER, BLOB).
 */
#ifndef ODX_STORE_H
#define ODX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_tx;
struct store_stmt;

enum store_scope_kind { STORE_PLATFORM, STORE_TENANT };
enum store_mode { STORE_READ, STORE_WRITE };

enum store_arg_type {
	STORE_ARG_NULL,
	STORE_ARG_TEXT,
	STORE_ARG_INT,
	STORE_ARG_REAL,
	STORE_ARG_BLOB
};

struct store_arg {
	enum store_arg_type type;
	const void *ptr; /* text (NUL-terminated) or blob */
	size_t len;	 /* blob length */
	int64_t i;
	double d;
};

#define S_NULL	     ((struct store_arg){.type = STORE_ARG_NULL})
#define S_TEXT(s)    ((struct store_arg){.type = STORE_ARG_TEXT, .ptr = (s)})
#define S_INT(v)     ((struct store_arg){.type = STORE_ARG_INT, .i = (int64_t)(v)})
#define S_REAL(v)    ((struct store_arg){.type = STORE_ARG_REAL, .d = (double)(v)})
#define S_BLOB(p, n) ((struct store_arg){.type = STORE_ARG_BLOB, .ptr = (p), .len = (n)})
/* STORE_ARGS(a, b, ...) expands to the (array, count) pair the calls take. */
#define STORE_ARGS(...)                                                                            \
	(const struct store_arg[]){__VA_ARGS__},                                                   \
	    sizeof((const struct store_arg[]){__VA_ARGS__}) / sizeof(struct store_arg)
#define STORE_NOARGS NULL, 0

/*
 * Opens (creating if needed) the store in data_dir: platform.db and the
 * tenants/ folder; applies migrations. Caller frees with store_free.
 */
int store_open(const char *data_dir, struct store **out);
void store_free(struct store *s);

/* Creates the tenant's database and applies migrations. ODX_ECONFLICT if it exists. */
int store_tenant_create(struct store *s, const char *tenant_id);
/* Removes the tenant's database files. Open transactions keep their handle. */
int store_tenant_destroy(struct store *s, const char *tenant_id);

/* True when the tenant has a database (cheap: no transaction). */
bool store_tenant_exists(struct store *s, const char *tenant_id);

/*
 * Begins a transaction in the platform scope (tenant_id NULL) or in one
 * tenant's scope. ODX_ENOTFOUND when the tenant has no database. WRITE takes
 * the write lock at once. The tx is freed by commit or abort.
 */
int store_tx_begin(struct store *s, const char *tenant_id, enum store_mode mode,
		   struct store_tx **out);
/* Commits durably (fsync) and frees tx. On failure the tx is rolled back and freed. */
int store_tx_commit(struct store_tx *tx);
/* Rolls back and frees tx; NULL is fine. */
void store_tx_abort(struct store_tx *tx);

/*
 * Runs one statement without result rows. Returns the number of rows changed
 * (>= 0) or a negative code: ODX_ECONFLICT for a constraint violation,
 * ODX_EUNAVAIL when the disk is full, ODX_EBUSY, ODX_EIO, ODX_ECORRUPT.
 */
int store_exec(struct store_tx *tx, const char *sql, const struct store_arg *args, size_t nargs);
/* Prepares a query; iterate with store_step, free with store_stmt_free. */
int store_query(struct store_tx *tx, const char *sql, const struct store_arg *args, size_t nargs,
		struct store_stmt **out);
/* 1 when a row is ready, 0 when done, negative on error. */
int store_step(struct store_stmt *st);
/* Column accessors for the current row; text is valid until the next step. */
const char *store_col_text(struct store_stmt *st, int col);
/* Copies a text column into buf (truncated to cap-1 bytes, always NUL-terminated). */
void store_col_copy(struct store_stmt *st, int col, char *buf, size_t cap);
int64_t store_col_int(struct store_stmt *st, int col);
double store_col_real(struct store_stmt *st, int col);
const void *store_col_blob(struct store_stmt *st, int col, size_t *len);
bool store_col_is_null(struct store_stmt *st, int col);
void store_stmt_free(struct store_stmt *st);

/*
 * Helpers on top of the calls above, the same for every backend
 * (store_util.c). A row callback returns 0 to go on, negative to stop with
 * that code.
 */
typedef int (*store_row_fn)(struct store_stmt *row, void *ctx);
/* Runs a query in tx and calls fn (NULL: none, rows are counted) for each row; returns the
 * number of rows or an error. */
int store_each(struct store_tx *tx, const char *sql, const struct store_arg *args, size_t nargs,
	       store_row_fn fn, void *ctx);
/* Ends tx by the outcome of its work: rc < 0 rolls back and returns rc, else commits (the
 * commit's result). */
int store_tx_end(struct store_tx *tx, int rc);
/* store_each in a read transaction of its own in the scope of tenant_id (NULL: platform). */
int store_read(struct store *s, const char *tenant_id, const char *sql,
	       const struct store_arg *args, size_t nargs, store_row_fn fn, void *ctx);
/* Like store_read for one row: 0 when fn saw it, ODX_ENOTFOUND when there was none. */
int store_read_one(struct store *s, const char *tenant_id, const char *sql,
		   const struct store_arg *args, size_t nargs, store_row_fn fn, void *ctx);
/* One statement in a write transaction of its own; returns the rows changed or an error. */
int store_write(struct store *s, const char *tenant_id, const char *sql,
		const struct store_arg *args, size_t nargs);

/* Readiness: 0 when the platform database answers. */
int store_ping(struct store *s);

#endif
