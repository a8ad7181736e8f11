/* apikey.c — see apikey.h. */
#include <stdio.h>
#include <string.h>

#include "auth/apikey.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/hash.h"

#define LAST_USED_RESOLUTION_NS                                                                    \
	(60LL * NSEC_PER_SEC) /* write last_used_at at most once a minute                          \
			       */

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
	if (rc == 0)
		rc = store_write(s, NULL,
				 "INSERT INTO api_key_directory (key_id, tenant_id) VALUES (?, ?)",
				 STORE_ARGS(S_TEXT(k.id), S_TEXT(tenant_id)));
	/* A directory row without its key authenticates nothing, so no undo is needed. */
	if (rc >= 0)
		rc = store_write(s, tenant_id,
				 "INSERT INTO api_keys (id, name, role, secret_hash, created_by, "
				 "created_at) VALUES (?, ?, ?, ?, ?, ?)",
				 STORE_ARGS(S_TEXT(k.id), S_TEXT(k.name), S_TEXT(role_name(role)),
					    S_BLOB(digest, SHA256_LEN), S_TEXT(k.created_by),
					    S_INT(k.created_at)));
	if (rc < 0)
		goto wipe;
	*out = k;
	return 0;
wipe:
	explicit_bzero(text, APIKEY_TEXT_LEN);
	return rc;
}

#define KEY_COLUMNS "id, name, role, created_by, created_at, last_used_at, secret_hash"

struct key_row {
	const char *tenant_id;
	struct apikey *k;
	uint8_t *secret_hash; /* SHA256_LEN bytes, or NULL when not wanted */
	json_t *list;
};

static int read_key(struct store_stmt *q, void *arg)
{
	struct key_row *r = arg;
	struct apikey *k = r->k;
	memset(k, 0, sizeof(*k));
	store_col_copy(q, 0, k->id, sizeof(k->id));
	store_col_copy(q, 1, k->name, sizeof(k->name));
	k->role = role_parse(store_col_text(q, 2));
	store_col_copy(q, 3, k->created_by, sizeof(k->created_by));
	k->created_at = store_col_int(q, 4);
	k->last_used_at = store_col_is_null(q, 5) ? 0 : store_col_int(q, 5);
	snprintf(k->tenant_id, sizeof(k->tenant_id), "%s", r->tenant_id);
	if (r->secret_hash) {
		size_t len = 0;
		const void *h = store_col_blob(q, 6, &len);
		if (len != SHA256_LEN)
			return ODX_ECORRUPT;
		memcpy(r->secret_hash, h, SHA256_LEN);
	}
	return 0;
}

static int append_key(struct store_stmt *q, void *arg)
{
	struct key_row *r = arg;
	int rc = read_key(q, r);
	if (rc == 0 && json_array_append_new(r->list, apikey_to_json(r->k)) != 0)
		rc = ODX_ENOMEM;
	return rc;
}

int apikey_list(struct store *s, const char *tenant_id, const char *after, int limit,
		json_t **items)
{
	struct apikey k;
	struct key_row r = {.tenant_id = tenant_id, .k = &k, .list = json_array()};
	if (!r.list)
		return ODX_ENOMEM;
	int rc = store_read(
	    s, tenant_id, "SELECT " KEY_COLUMNS " FROM api_keys WHERE id > ? ORDER BY id LIMIT ?",
	    STORE_ARGS(S_TEXT(after ? after : ""), S_INT(limit + 1)), append_key, &r);
	if (rc < 0) {
		json_decref(r.list);
		return rc;
	}
	*items = r.list;
	return 0;
}

int apikey_delete(struct store *s, const char *tenant_id, const char *id)
{
	if (!random_id_valid("key", id))
		return ODX_ENOTFOUND;
	int rc =
	    store_write(s, tenant_id, "DELETE FROM api_keys WHERE id = ?", STORE_ARGS(S_TEXT(id)));
	if (rc == 0)
		rc = ODX_ENOTFOUND;
	if (rc < 0)
		return rc;
	/* The key is gone; a directory row alone authenticates nothing. */
	store_write(s, NULL, "DELETE FROM api_key_directory WHERE key_id = ?",
		    STORE_ARGS(S_TEXT(id)));
	return 0;
}

/* Splits "odk_<32 hex>_<64 hex>" into the key id and the secret's digest. */
static int parse_text(const char *text, char id[static ID_MAX_LEN],
		      uint8_t digest[static SHA256_LEN])
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

static int read_tenant_id(struct store_stmt *q, void *arg)
{
	store_col_copy(q, 0, arg, ID_MAX_LEN);
	return 0;
}

int apikey_authenticate(struct store *s, const char *text, int64_t now_ns, struct apikey *out)
{
	char id[ID_MAX_LEN], tenant[ID_MAX_LEN];
	uint8_t digest[SHA256_LEN], stored[SHA256_LEN];
	int rc = parse_text(text, id, digest);
	if (rc == 0)
		rc = store_read_one(s, NULL,
				    "SELECT tenant_id FROM api_key_directory WHERE key_id = ?",
				    STORE_ARGS(S_TEXT(id)), read_tenant_id, tenant);
	struct key_row r = {.tenant_id = tenant, .k = out, .secret_hash = stored};
	if (rc == 0)
		rc = store_read_one(s, tenant, "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = ?",
				    STORE_ARGS(S_TEXT(id)), read_key, &r);
	if (rc == ODX_ENOTFOUND || (rc == 0 && !hash_equal(stored, digest, SHA256_LEN)))
		return ODX_EAUTH;
	if (rc < 0)
		return rc;
	/* last_used_at is written at most once a minute: a write per request would cost more than
	 * the request. */
	if (now_ns - out->last_used_at > LAST_USED_RESOLUTION_NS)
		store_write(s, tenant, "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
			    STORE_ARGS(S_INT(now_ns), S_TEXT(id)));
	return 0;
}
