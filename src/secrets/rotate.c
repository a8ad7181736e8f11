/*
 * rotate.c — KEK rotation (kek.h): re-wraps data keys, never re-encrypts values.
 *
 * The steps, each durable before the next, so that a crash anywhere leaves
 * a state the same call finishes:
 *   1. platform.db gains the new KEK as 'next' (the old one stays 'current');
 *      from here on odysseusd refuses to start (ODX_ECONFLICT) until the
 *      rotation is finished, since tenants may hold keys under either KEK.
 *   2. each tenant, in one transaction of its own: every data key still
 *      wrapped by the old KEK is unwrapped and wrapped by the new one.
 *   3. platform.db: the old row goes, the new one becomes 'current'.
 * Resuming at 1 finds 'next' already there; at 2 skips keys already under
 * the new KEK; after 3 finds the new KEK current and only sweeps again.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/random.h"
#include "secrets/internal.h"

/* Both KEKs and the data key in flight, all in locked memory. */
struct rot_keys {
	struct secrets_kek old, new;
	uint8_t dek[GCM_KEY_LEN];
};

/* Tenant ids, copied out of platform.db before any tenant transaction. */
struct tenant_list {
	char (*id)[ID_MAX_LEN];
	size_t n, cap;
};

/* What step 1 finds: 0 to go on (*write: record 'next' first), or why not. */
static int rotation_state(const struct secrets_kek_rows *rows, const struct rot_keys *k,
			  bool *write, bool *done)
{
	*write = *done = false;
	if (secrets_kek_row_is(&rows->current, &k->old)) {
		*write = !rows->next.present;
		if (*write || secrets_kek_row_is(&rows->next, &k->new))
			return 0;
		return ODX_ECONFLICT; /* another rotation, to another key, is unfinished */
	}
	if (secrets_kek_row_is(&rows->current, &k->new) && !rows->next.present) {
		*done = true;
		return 0;
	}
	return rows->current.present ? ODX_EAUTH : ODX_ENOTFOUND;
}

/* Step 1. *done: the rotation finished earlier (the new KEK is current). */
static int rotation_begin(struct store *s, const struct rot_keys *k, bool *done)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	struct secrets_kek_rows rows;
	bool write = false;
	rc = secrets_kek_rows_read(tx, &rows);
	if (rc == 0)
		rc = rotation_state(&rows, k, &write, done);
	if (rc == 0 && write)
		rc = secrets_kek_row_insert(tx, &k->new, "next");
	if (rc == 0 && write)
		return store_tx_commit(tx);
	store_tx_abort(tx);
	return rc;
}

static int tenant_collect(struct store_stmt *st, void *ctx)
{
	struct tenant_list *l = ctx;
	const char *id = store_col_text(st, 0);
	if (!id || strlen(id) >= ID_MAX_LEN)
		return ODX_ECORRUPT;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *p = reallocarray(l->id, cap, sizeof(*l->id));
		if (!p)
			return ODX_ENOMEM;
		l->id = p;
		l->cap = cap;
	}
	memcpy(l->id[l->n++], id, strlen(id) + 1);
	return 0;
}

/* The first data key of the tenant not yet under the new KEK, if any (1 found, 0 none). */
static int next_stale(struct store_tx *tx, const struct rot_keys *k, int64_t *gen,
		      char kek_id[static SECRETS_KEK_ID_LEN],
		      uint8_t wrapped[static SECRETS_WRAPPED_LEN])
{
	struct store_stmt *st;
	int rc = store_query(tx,
			     "SELECT generation, kek_id, wrapped FROM secret_data_keys "
			     "WHERE kek_id <> ? ORDER BY generation LIMIT 1",
			     STORE_ARGS(S_TEXT(k->new.id)), &st);
	if (rc < 0)
		return rc;
	rc = store_step(st);
	if (rc == 1) {
		size_t n;
		const void *w = store_col_blob(st, 2, &n);
		const char *id = store_col_text(st, 1);
		*gen = store_col_int(st, 0);
		if (!w || n != SECRETS_WRAPPED_LEN || !id || strlen(id) != SECRETS_KEK_ID_LEN - 1)
			rc = ODX_ECORRUPT;
		else {
			memcpy(wrapped, w, n);
			memcpy(kek_id, id, SECRETS_KEK_ID_LEN);
		}
	}
	store_stmt_free(st);
	return rc;
}

/* Re-wraps one stale data key in tx; the plaintext key exists only in k->dek. */
static int rewrap_one(struct store_tx *tx, struct rot_keys *k, const char *tenant, int64_t gen,
		      const char *kek_id, const uint8_t wrapped[static SECRETS_WRAPPED_LEN])
{
	if (strcmp(kek_id, k->old.id) != 0)
		return ODX_ECORRUPT; /* wrapped by a KEK that is neither of ours */
	uint8_t out[SECRETS_WRAPPED_LEN];
	int rc = secrets_dek_unwrap(&k->old, tenant, wrapped, SECRETS_WRAPPED_LEN, k->dek);
	if (rc == 0)
		rc = secrets_dek_wrap(&k->new, tenant, k->dek, out);
	explicit_bzero(k->dek, sizeof(k->dek));
	if (rc == 0)
		rc = store_exec(
		    tx,
		    "UPDATE secret_data_keys SET kek_id = ?, wrapped = ?, wrapped_at = ? "
		    "WHERE generation = ?",
		    STORE_ARGS(S_TEXT(k->new.id), S_BLOB(out, sizeof(out)), S_INT(time_now_ns()),
			       S_INT(gen)));
	return rc < 0 ? rc : 0;
}

/* Step 2 for one tenant; *changed: how many keys it re-wrapped. */
static int rewrap_tenant(struct store *s, struct rot_keys *k, const char *tenant, int *changed)
{
	struct store_tx *tx;
	*changed = 0;
	int rc = store_tx_begin(s, tenant, STORE_WRITE, &tx);
	if (rc == ODX_ENOTFOUND)
		return 0; /* listed but its database is gone (being deleted) */
	if (rc < 0)
		return rc;
	for (;;) {
		int64_t gen;
		char kek_id[SECRETS_KEK_ID_LEN];
		uint8_t wrapped[SECRETS_WRAPPED_LEN];
		rc = next_stale(tx, k, &gen, kek_id, wrapped);
		if (rc <= 0)
			break;
		rc = rewrap_one(tx, k, tenant, gen, kek_id, wrapped);
		if (rc < 0)
			break;
		(*changed)++;
	}
	if (rc < 0 || *changed == 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

static int rotation_sweep(struct store *s, struct rot_keys *k, size_t max, bool *all)
{
	struct tenant_list l = {0};
	int rc = store_read(s, NULL, "SELECT id FROM tenants ORDER BY id", STORE_NOARGS,
			    tenant_collect, &l);
	size_t done = 0;
	*all = true;
	for (size_t i = 0; rc >= 0 && i < l.n; i++) {
		if (done == max) {
			*all = false;
			break;
		}
		int changed;
		rc = rewrap_tenant(s, k, l.id[i], &changed);
		if (changed > 0)
			done++;
	}
	free(l.id);
	return rc < 0 ? rc : 0;
}

/* Step 3. */
static int rotation_finish(struct store *s, const struct rot_keys *k)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx, "DELETE FROM secrets_kek WHERE role = 'current' AND kek_id = ?",
			STORE_ARGS(S_TEXT(k->old.id)));
	if (rc == 1)
		rc = store_exec(tx,
				"UPDATE secrets_kek SET role = 'current' "
				"WHERE role = 'next' AND kek_id = ?",
				STORE_ARGS(S_TEXT(k->new.id)));
	if (rc != 1) {
		store_tx_abort(tx);
		return rc < 0 ? rc : ODX_ECONFLICT; /* changed under us: another rotation ran */
	}
	return store_tx_commit(tx);
}

int secrets_kek_rotate_some(const char *old_path, const char *new_path, struct store *s,
			    size_t max_tenants, bool *finished)
{
	bool locked;
	struct rot_keys *k = secrets_locked_alloc(sizeof(*k), &locked);
	if (!k)
		return ODX_ENOMEM;
	int rc = secrets_kek_load(old_path, &k->old);
	if (rc == 0)
		rc = secrets_kek_load(new_path, &k->new);
	if (rc == 0 && strcmp(k->old.id, k->new.id) == 0)
		rc = ODX_EINVAL;
	bool done_before = false, all = false;
	if (rc == 0)
		rc = rotation_begin(s, k, &done_before);
	if (rc == 0)
		rc = rotation_sweep(s, k, max_tenants, &all);
	if (rc == 0 && all && !done_before)
		rc = rotation_finish(s, k);
	secrets_locked_free(k, sizeof(*k));
	if (rc == 0 && finished)
		*finished = all;
	return rc;
}

int secrets_kek_rotate(const char *old_path, const char *new_path, struct store *s)
{
	bool finished;
	int rc = secrets_kek_rotate_some(old_path, new_path, s, SIZE_MAX, &finished);
	return rc == 0 && !finished ? ODX_EINTERNAL : rc;
}
