/* session.c — see session.h. */
#include <stdio.h>
#include <string.h>

#include "auth/session.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/hash.h"

static int new_token(char token[static REFRESH_TOKEN_LEN], uint8_t hash[static SHA256_LEN])
{
	uint8_t raw[32];
	int rc = random_bytes(raw, sizeof(raw));
	if (rc < 0)
		return rc;
	memcpy(token, "odr_", 4);
	hex_encode(raw, sizeof(raw), token + 4);
	explicit_bzero(raw, sizeof(raw));
	return hash_sha256(token, REFRESH_TOKEN_LEN - 1, hash);
}

static int token_hash(const char *token, uint8_t hash[static SHA256_LEN])
{
	if (strlen(token) != REFRESH_TOKEN_LEN - 1 || strncmp(token, "odr_", 4) != 0)
		return ODX_EAUTH;
	return hash_sha256(token, REFRESH_TOKEN_LEN - 1, hash);
}

static int insert_token(struct store_tx *tx, const char *family, const uint8_t *hash, int64_t now)
{
	int rc = store_exec(tx,
			    "INSERT INTO refresh_tokens (token_hash, family_id, issued_at) "
			    "VALUES (?, ?, ?)",
			    STORE_ARGS(S_BLOB(hash, SHA256_LEN), S_TEXT(family), S_INT(now)));
	return rc < 0 ? rc : 0;
}

int session_start(struct store *s, const struct session_subject *who, int64_t now_ns,
		  char token[static REFRESH_TOKEN_LEN])
{
	char family[ID_MAX_LEN];
	uint8_t hash[SHA256_LEN];
	int rc = random_id("fam", family);
	if (rc == 0)
		rc = new_token(token, hash);
	if (rc < 0)
		return rc;
	struct store_tx *tx;
	rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = store_exec(
	    tx,
	    "INSERT INTO token_families (id, tenant_id, user_id, created_at, expires_at) "
	    "VALUES (?, ?, ?, ?, ?)",
	    STORE_ARGS(S_TEXT(family), who->tenant_id[0] ? S_TEXT(who->tenant_id) : S_NULL,
		       S_TEXT(who->user_id), S_INT(now_ns),
		       S_INT(now_ns + SESSION_FAMILY_TTL_S * NSEC_PER_SEC)));
	if (rc >= 0)
		rc = insert_token(tx, family, hash, now_ns);
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

static int revoke_family(struct store_tx *tx, const char *family, int64_t now, const char *reason)
{
	int rc = store_exec(tx,
			    "UPDATE token_families SET revoked_at = ?, revoked_reason = ? "
			    "WHERE id = ? AND revoked_at IS NULL",
			    STORE_ARGS(S_INT(now), S_TEXT(reason), S_TEXT(family)));
	return rc < 0 ? rc : 0;
}

struct token_state {
	struct session_subject who;
	bool used, live;
	int64_t now;
};

static int read_token(struct store_stmt *q, void *arg)
{
	struct token_state *t = arg;
	store_col_copy(q, 0, t->who.family_id, sizeof(t->who.family_id));
	store_col_copy(q, 1, t->who.tenant_id, sizeof(t->who.tenant_id));
	store_col_copy(q, 2, t->who.user_id, sizeof(t->who.user_id));
	t->used = !store_col_is_null(q, 3);
	t->live = store_col_is_null(q, 4) && store_col_int(q, 5) > t->now;
	return 0;
}

/* Looks the token up in tx; ODX_EAUTH when it is unknown. */
static int find_token(struct store_tx *tx, const uint8_t *hash, struct token_state *t)
{
	int rc =
	    store_each(tx,
		       "SELECT f.id, coalesce(f.tenant_id, ''), f.user_id, t.used_at, "
		       "f.revoked_at, f.expires_at FROM refresh_tokens t JOIN token_families f "
		       "ON f.id = t.family_id WHERE t.token_hash = ?",
		       STORE_ARGS(S_BLOB(hash, SHA256_LEN)), read_token, t);
	return rc < 0 ? rc : rc == 0 ? ODX_EAUTH : 0;
}

int session_refresh(struct store *s, const char *token, int64_t now_ns,
		    char next[static REFRESH_TOKEN_LEN], struct session_subject *who)
{
	uint8_t hash[SHA256_LEN], next_hash[SHA256_LEN];
	int rc = token_hash(token, hash);
	if (rc < 0)
		return rc;
	struct store_tx *tx;
	rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	struct token_state t = {.now = now_ns};
	const struct session_subject *w = &t.who;
	rc = find_token(tx, hash, &t);
	if (rc < 0)
		goto fail;
	if (t.used) {
		/* A spent token came back: whoever holds the family's tokens may be an attacker. */
		rc = revoke_family(tx, w->family_id, now_ns, "refresh_token_reuse");
		if (rc == 0)
			rc = store_tx_commit(tx);
		else
			store_tx_abort(tx);
		*who = *w;
		return rc < 0 ? rc : ODX_EREUSED;
	}
	if (!t.live) {
		rc = ODX_EAUTH;
		goto fail;
	}
	rc = store_exec(tx, "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?",
			STORE_ARGS(S_INT(now_ns), S_BLOB(hash, SHA256_LEN)));
	if (rc >= 0)
		rc = new_token(next, next_hash);
	if (rc >= 0)
		rc = insert_token(tx, w->family_id, next_hash, now_ns);
	if (rc < 0)
		goto fail;
	rc = store_tx_commit(tx);
	if (rc == 0)
		*who = *w;
	return rc;
fail:
	store_tx_abort(tx);
	return rc;
}

int session_logout(struct store *s, const char *token, const char *user_id, int64_t now_ns)
{
	uint8_t hash[SHA256_LEN];
	int rc = token_hash(token, hash);
	if (rc < 0)
		return rc;
	struct store_tx *tx;
	rc = store_tx_begin(s, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	struct token_state t = {.now = now_ns};
	rc = find_token(tx, hash, &t);
	if (rc == 0 && strcmp(t.who.user_id, user_id) != 0)
		rc = ODX_EAUTH;
	if (rc == 0)
		rc = revoke_family(tx, t.who.family_id, now_ns, "logout");
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

int session_revoke_user(struct store *s, const char *user_id, int64_t now_ns, const char *reason)
{
	int rc = store_write(s, NULL,
			     "UPDATE token_families SET revoked_at = ?, revoked_reason = ? "
			     "WHERE user_id = ? AND revoked_at IS NULL",
			     STORE_ARGS(S_INT(now_ns), S_TEXT(reason), S_TEXT(user_id)));
	return rc < 0 ? rc : 0;
}
