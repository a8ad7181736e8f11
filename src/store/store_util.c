/* store_util.c — helpers of store.h built only on the interface, so every backend shares them. */
#include "core/err.h"
#include "store/store.h"

int store_each(struct store_tx *tx, const char *sql, const struct store_arg *args, size_t nargs,
	       store_row_fn fn, void *ctx)
{
	struct store_stmt *q;
	int rc = store_query(tx, sql, args, nargs, &q);
	if (rc < 0)
		return rc;
	int rows = 0;
	while ((rc = store_step(q)) == 1) {
		rows++;
		rc = fn ? fn(q, ctx) : 0;
		if (rc < 0)
			break;
	}
	store_stmt_free(q);
	return rc < 0 ? rc : rows;
}

int store_tx_end(struct store_tx *tx, int rc)
{
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

int store_read(struct store *s, const char *tenant_id, const char *sql,
	       const struct store_arg *args, size_t nargs, store_row_fn fn, void *ctx)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	rc = store_each(tx, sql, args, nargs, fn, ctx);
	store_tx_abort(tx); /* nothing to keep: a read */
	return rc;
}

int store_read_one(struct store *s, const char *tenant_id, const char *sql,
		   const struct store_arg *args, size_t nargs, store_row_fn fn, void *ctx)
{
	int rc = store_read(s, tenant_id, sql, args, nargs, fn, ctx);
	return rc < 0 ? rc : rc == 0 ? ODX_ENOTFOUND : 0;
}

int store_write(struct store *s, const char *tenant_id, const char *sql,
		const struct store_arg *args, size_t nargs)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	int changed = store_exec(tx, sql, args, nargs);
	if (changed < 0) {
		store_tx_abort(tx);
		return changed;
	}
	rc = store_tx_commit(tx);
	return rc < 0 ? rc : changed;
}
