/* apikey.c — see apikey.h. */
#include <stdio.h>
#include <string.h>

#include "auth/apikey.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/hash.h"

#define LAST_USED_RESOLUTION_NS (60LL * NSEC_PER_SEC) /* write last_used_at at most once a minute */

int apikey_looks_like(const char *text)
{
	return strncmp(text, "odk_", 4) == 0;
}

json_t *apikey_to_json(const struct apikey *k)
{
	char created[TIME_RFC3339_LEN], used[TIME_RFC3339_LEN];
	time_format_rfc3339(k->created_at, created);
	if (k->last_used_at)
		time_format_rfc3339(k->last_used_at, used);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", k->id, "name", k->name, "role",
			 role_name(k->role), "created_by", k->created_by, "created_at", created,
			 "last_used_at", k->last_used_at ? json_string(used) : json_null());
}

int apikey_create(struct store *s, const char *tenant_id, const char *name, enum role role,
		  const char *created_by, struct apikey *out, char text[static APIKEY_TEXT_LEN])
{
	struct apikey k = {.role = role, .created_at = time_now_ns()};
	snprintf(k.tenant_id, sizeof(k.tenant_id), "%s", tenant_id);
	snprintf(k.name, sizeof(k.name), "%s", name);
	snprintf(k.created_by, sizeof(k.created_by), "%s", created_by);
	uint8_t secret[32], digest[SHA256_LEN];
	int rc = random_id("key", k.id);
	if (rc == 0)
		rc = random_bytes(secret, sizeof(secret));
	if (rc < 0)
		return rc;
	snprintf(text, APIKEY_TEXT_LEN, "odk_%s_", k.id + 4);
	hex_encode(secret, sizeof(secret), text + 4 + ID_HEX_LEN + 1);
	explicit_bzero(secret, sizeof(secret));
	rc = hash_sha256(text + 4 + ID_HEX_LEN + 1, 64, digest);
	if (rc < 0)
		goto wipe;
	struct store_tx *tx;
	rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		goto wipe;
	rc = store_exec(tx, "INSERT INTO api_key_directory (key_id, tenant_id) VALUES (?, ?)",
			STORE_ARGS(S_TEXT(k.id), S_TEXT(tenant_id)));
	if (rc < 0) {
		store_tx_abort(tx);
		goto wipe;
	}
	rc = store_tx_commit(tx);
	if (rc < 0)
		goto wipe;
	rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc == 0) {
		rc = store_exec(tx,
				"INSERT INTO api_keys (id, name, role, secret_hash, created_by, "
				"created_at) VALUES (?, ?, ?, ?, ?, ?)",
				STORE_ARGS(S_TEXT(k.id), S_TEXT(k.name), S_TEXT(role_name(role)),
					   S_BLOB(digest, SHA256_LEN), S_TEXT(k.created_by),
					   S_INT(k.created_at)));
		if (rc < 0)
			store_tx_abort(tx);
		else
			rc = store_tx_commit(tx);
	}
	if (rc < 0)
		goto wipe; /* the directory row alone authenticates nothing */
	*out = k;
	return 0;
wipe:
	explicit_bzero(text, APIKEY_TEXT_LEN);
	return rc;
}

static void key_from_row(struct store_stmt *q, const char *tenant_id, struct apikey *k)
{
	memset(k, 0, sizeof(*k));
	store_col_copy(q, 0, k->id, sizeof(k->id));
	store_col_copy(q, 1, k->name, sizeof(k->name));
	k->role = role_parse(store_col_text(q, 2));
	store_col_copy(q, 3, k->created_by, sizeof(k->created_by));
	k->created_at = store_col_int(q, 4);
	k->last_used_at = store_col_is_null(q, 5) ? 0 : store_col_int(q, 5);
	snprintf(k->tenant_id, sizeof(k->tenant_id), "%s", tenant_id);
}

int apikey_list(struct store *s, const char *tenant_id, const char *after, int limit,
		json_t **items)
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	struct store_stmt *q = NULL;
	rc = store_query(tx,
			 "SELECT id, name, role, created_by, created_at, last_used_at FROM api_keys "
			 "WHERE id > ? ORDER BY id LIMIT ?",
			 STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)), &q);
	json_t *arr = json_array();
	if (rc == 0 && !arr)
		rc = ODX_ENOMEM;
	while (rc == 0 && (rc = store_step(q)) == 1) {
		struct apikey k;
		key_from_row(q, tenant_id, &k);
		rc = json_array_append_new(arr, apikey_to_json(&k)) == 0 ? 0 : ODX_ENOMEM;
	}
	store_stmt_free(q);
	store_tx_abort(tx);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*items = arr;
	return 0;
}

int apikey_delete(struct store *s, const char *tenant_id, const char *id)
{
	if (!random_id_valid("key", id))
		return ODX_ENOTFOUND;
	struct store_tx *tx;
	int rc = store_tx_begin(s, tenant_id, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(tx, "DELETE FROM api_keys WHERE id = ?", STORE_ARGS(S_TEXT(id)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	rc = store_tx_commit(tx);
	if (rc < 0)
		return rc;
	if (store_tx_begin(s, NULL, STORE_WRITE, &tx) == 0) {
		store_exec(tx, "DELETE FROM api_key_directory WHERE key_id = ?", STORE_ARGS(S_TEXT(id)));
		store_tx_commit(tx);
	}
	return 0;
}

/* Splits "odk_<32 hex>_<64 hex>" into the key id and the secret's digest. */
static int parse_text(const char *text, char id[static ID_MAX_LEN], uint8_t digest[static SHA256_LEN])
{
	if (strlen(text) != APIKEY_TEXT_LEN - 1 || strncmp(text, "odk_", 4) != 0 ||
	    text[4 + ID_HEX_LEN] != '_')
		return ODX_EAUTH;
	snprintf(id, ID_MAX_LEN, "key_%.*s", ID_HEX_LEN, text + 4);
	if (!random_id_valid("key", id))
		return ODX_EAUTH;
	const char *secret = text + 4 + ID_HEX_LEN + 1;
	uint8_t raw[32];
	if (hex_decode(secret, sizeof(raw), raw) < 0)
		return ODX_EAUTH;
	explicit_bzero(raw, sizeof(raw));
	return hash_sha256(secret, 64, digest) == 0 ? 0 : ODX_EAUTH;
}

static int directory_tenant(struct store *s, const char *id, char tenant[static ID_MAX_LEN])
{
	struct store_tx *tx;
	int rc = store_tx_begin(s, NULL, STORE_READ, &tx);
	if (rc < 0)
		return rc;
	struct store_stmt *q;
	rc = store_query(tx, "SELECT tenant_id FROM api_key_directory WHERE key_id = ?",
			 STORE_ARGS(S_TEXT(id)), &q);
	if (rc == 0) {
		rc = store_step(q);
		if (rc == 1)
			store_col_copy(q, 0, tenant, ID_MAX_LEN);
		rc = rc == 1 ? 0 : rc == 0 ? ODX_EAUTH : rc;
		store_stmt_free(q);
	}
	store_tx_abort(tx);
	return rc;
}

static void touch_last_used(struct store *s, const struct apikey *k, int64_t now)
{
	struct store_tx *tx;
	if (store_tx_begin(s, k->tenant_id, STORE_WRITE, &tx) < 0)
		return;
	store_exec(tx, "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
		   STORE_ARGS(S_INT(now), S_TEXT(k->id)));
	store_tx_commit(tx);
}

int apikey_authenticate(struct store *s, const char *text, int64_t now_ns, struct apikey *out)
{
	char id[ID_MAX_LEN], tenant[ID_MAX_LEN];
	uint8_t digest[SHA256_LEN];
	int rc = parse_text(text, id, digest);
	if (rc == 0)
		rc = directory_tenant(s, id, tenant);
	if (rc < 0)
		return rc;
	struct store_tx *tx;
	rc = store_tx_begin(s, tenant, STORE_READ, &tx);
	if (rc < 0)
		return rc == ODX_ENOTFOUND ? ODX_EAUTH : rc;
	struct store_stmt *q;
	rc = store_query(tx,
			 "SELECT id, name, role, created_by, created_at, last_used_at, secret_hash "
			 "FROM api_keys WHERE id = ?",
			 STORE_ARGS(S_TEXT(id)), &q);
	if (rc == 0) {
		rc = store_step(q);
		size_t len = 0;
		const void *stored = rc == 1 ? store_col_blob(q, 6, &len) : NULL;
		if (rc == 1 && len == SHA256_LEN && hash_equal(stored, digest, SHA256_LEN)) {
			key_from_row(q, tenant, out);
			rc = 0;
		} else if (rc >= 0) {
			rc = ODX_EAUTH;
		}
		store_stmt_free(q);
	}
	store_tx_abort(tx);
	if (rc == 0 && now_ns - out->last_used_at > LAST_USED_RESOLUTION_NS)
		touch_last_used(s, out, now_ns);
	return rc;
}
