/* enroll.c — see enroll.h. */
#include <stdio.h>
#include <string.h>

#include "auth/enroll.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/hash.h"
#include "crypto/random.h"

#define PREFIX "odx-enroll-"
#define PREFIX_LEN 11
#define FP_HEX 64
#define ID_HEX 24
#define SECRET_HEX 64

bool enroll_name_valid(const char *name)
{
	return name_validate(name, ENROLL_NAME_MAX) == 0;
}

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int enroll_token_create(struct store *s, const char *ca_fingerprint, int64_t ttl_s,
			const char *node_name, const char *created_by, struct enroll_token *out,
			char text[static ENROLL_TOKEN_LEN])
{
	if (ttl_s < 1 || ttl_s > ENROLL_TTL_MAX_S || strlen(ca_fingerprint) != FP_HEX ||
	    (node_name && !enroll_name_valid(node_name)))
		return ODX_EINVAL;
	uint8_t idb[ID_HEX / 2], secret[SECRET_HEX / 2], digest[SHA256_LEN];
	int rc = random_bytes(idb, sizeof(idb));
	if (rc == 0)
		rc = random_bytes(secret, sizeof(secret));
	if (rc < 0)
		return rc;
	struct enroll_token t = {.expires_at = time_now_ns() + ttl_s * NSEC_PER_SEC};
	memcpy(t.id, "ent_", 4);
	hex_encode(idb, sizeof(idb), t.id + 4);
	snprintf(t.node_name, sizeof(t.node_name), "%s", node_name ? node_name : "");
	char *w = text;
	memcpy(w, PREFIX, PREFIX_LEN);
	memcpy(w += PREFIX_LEN, ca_fingerprint, FP_HEX);
	w[FP_HEX] = '-';
	memcpy(w += FP_HEX + 1, t.id + 4, ID_HEX);
	hex_encode(secret, sizeof(secret), w + ID_HEX);
	rc = hash_sha256(secret, sizeof(secret), digest);
	explicit_bzero(secret, sizeof(secret));
	if (rc == 0)
		rc = store_write(s, NULL,
				 "INSERT INTO enrollment_tokens (id, secret_hash, node_name, "
				 "created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
				 STORE_ARGS(S_TEXT(t.id), S_BLOB(digest, SHA256_LEN),
					    node_name ? S_TEXT(node_name) : S_NULL,
					    S_TEXT(created_by), S_INT(time_now_ns()),
					    S_INT(t.expires_at)));
	if (rc < 0) {
		explicit_bzero(text, ENROLL_TOKEN_LEN);
		return rc;
	}
	*out = t;
	return 0;
}

struct token_row {
	struct enroll_token *t;
	uint8_t hash[SHA256_LEN];
	bool used;
};

static int read_token(struct store_stmt *q, void *arg)
{
	struct token_row *r = arg;
	size_t len = 0;
	const void *h = store_col_blob(q, 0, &len);
	if (len != SHA256_LEN)
		return ODX_ECORRUPT;
	memcpy(r->hash, h, SHA256_LEN);
	if (!store_col_is_null(q, 1))
		store_col_copy(q, 1, r->t->node_name, sizeof(r->t->node_name));
	r->t->expires_at = store_col_int(q, 2);
	r->used = !store_col_is_null(q, 3);
	return 0;
}

bool enroll_token_id(const char *text, char out[static ENROLL_ID_LEN])
{
	const char *fp = text + PREFIX_LEN, *id = fp + FP_HEX + 1;
	if (strlen(text) != ENROLL_TOKEN_LEN - 1 || strncmp(text, PREFIX, PREFIX_LEN) != 0 ||
	    fp[FP_HEX] != '-' || !lower_hex(fp, FP_HEX) || !lower_hex(id, ID_HEX + SECRET_HEX))
		return false;
	memcpy(out, "ent_", 4);
	memcpy(out + 4, id, ID_HEX);
	out[4 + ID_HEX] = '\0';
	return true;
}

int enroll_token_check(struct store *s, const char *text, int64_t now_ns,
		       struct enroll_token *out)
{
	struct enroll_token t = {0};
	if (!enroll_token_id(text, t.id))
		return ODX_EAUTH;
	const char *sec = text + PREFIX_LEN + FP_HEX + 1 + ID_HEX;
	struct token_row r = {.t = &t};
	int rc = store_read_one(s, NULL,
				"SELECT secret_hash, node_name, expires_at, used_at "
				"FROM enrollment_tokens WHERE id = ?",
				STORE_ARGS(S_TEXT(t.id)), read_token, &r);
	if (rc == ODX_ENOTFOUND)
		return ODX_EAUTH;
	if (rc < 0)
		return rc;
	uint8_t secret[SECRET_HEX / 2], digest[SHA256_LEN];
	rc = hex_decode(sec, sizeof(secret), secret) == 0 ? 0 : ODX_EAUTH;
	if (rc == 0)
		rc = hash_sha256(secret, sizeof(secret), digest);
	explicit_bzero(secret, sizeof(secret));
	if (rc == 0 && !hash_equal(digest, r.hash, SHA256_LEN))
		rc = ODX_EAUTH;
	if (rc == 0 && (r.used || now_ns >= t.expires_at))
		rc = ODX_EAUTH;
	if (rc == 0)
		*out = t;
	return rc;
}

int enroll_token_consume(struct store_tx *tx, const char *id, const char *node_id,
			 int64_t now_ns)
{
	int rc = store_exec(tx,
			    "UPDATE enrollment_tokens SET used_at = ?, used_by = ? "
			    "WHERE id = ? AND used_at IS NULL AND expires_at > ?",
			    STORE_ARGS(S_INT(now_ns), S_TEXT(node_id), S_TEXT(id), S_INT(now_ns)));
	return rc == 1 ? 0 : rc < 0 ? rc : ODX_EAUTH;
}
