/*
 * record.c — the audit record's canonical bytes and hashes, enum names,
 * field rules, the audit signing key and the checkpoint signature bytes.
 * The byte layouts are the ones in audit.h's top comment and docs/audit.md;
 * changing any of them breaks every existing log's verification.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/internal.h"
#include "core/encoding.h"
#include "core/err.h"
#include "crypto/hash.h"
#include "crypto/sign.h"

#define CANONICAL_VERSION 1
#define CHECKPOINT_CONTEXT "odysseus-audit-checkpoint-v1"

static const char *const actor_names[] = {
	[AUDIT_ACTOR_USER] = "user",
	[AUDIT_ACTOR_API_KEY] = "api_key",
	[AUDIT_ACTOR_AGENT] = "agent",
	[AUDIT_ACTOR_SYSTEM] = "system",
	[AUDIT_ACTOR_ANONYMOUS] = "anonymous",
};

static const char *const outcome_names[] = {
	[AUDIT_SUCCESS] = "success",
	[AUDIT_FAILURE] = "failure",
	[AUDIT_DENIED] = "denied",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *audit_actor_type_name(enum audit_actor_type t)
{
	return (unsigned)t < NELEM(actor_names) ? actor_names[t] : NULL;
}

const char *audit_outcome_name(enum audit_outcome o)
{
	return (unsigned)o < NELEM(outcome_names) ? outcome_names[o] : NULL;
}

int audit_actor_type_parse(const char *s, enum audit_actor_type *out)
{
	for (size_t i = 1; s && i < NELEM(actor_names); i++)
		if (strcmp(s, actor_names[i]) == 0) {
			*out = (enum audit_actor_type)i;
			return 0;
		}
	return ODX_EINVAL;
}

int audit_outcome_parse(const char *s, enum audit_outcome *out)
{
	for (size_t i = 1; s && i < NELEM(outcome_names); i++)
		if (strcmp(s, outcome_names[i]) == 0) {
			*out = (enum audit_outcome)i;
			return 0;
		}
	return ODX_EINVAL;
}

size_t audit_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c < 0x80)
		return c ? 1 : 0;
	size_t len;
	unsigned cp, min;
	if ((c & 0xe0) == 0xc0) {
		len = 2, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool audit_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		if (s[i] >= 0x01 && s[i] < 0x80) {
			i++;
			continue;
		}
		size_t len = audit_utf8_len(s + i, n - i);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

static bool action_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

struct enc {
	uint8_t *buf;
	size_t len;
	int rc;
};

static void put_u64(struct enc *e, uint64_t v)
{
	if (e->rc)
		return;
	if (AUDIT_CANONICAL_MAX - e->len < 8) {
		e->rc = ODX_EINVAL;
		return;
	}
	for (int i = 7; i >= 0; i--)
		e->buf[e->len++] = (uint8_t)(v >> (8 * i));
}

static void put_str(struct enc *e, const char *s, size_t max)
{
	if (e->rc)
		return;
	if (!s)
		s = "";
	size_t n = strnlen(s, max + 1);
	if (n > max || !audit_utf8_valid(s, n) || AUDIT_CANONICAL_MAX - e->len < 4 + n) {
		e->rc = ODX_EINVAL;
		return;
	}
	for (int i = 3; i >= 0; i--)
		e->buf[e->len++] = (uint8_t)((uint32_t)n >> (8 * i));
	memcpy(e->buf + e->len, s, n);
	e->len += n;
}

int audit_record_encode(const struct audit_record *r, uint8_t buf[static AUDIT_CANONICAL_MAX],
			size_t *len)
{
	const char *actor = audit_actor_type_name(r->actor_type);
	const char *outcome = audit_outcome_name(r->outcome);
	if (!actor || !outcome || !r->action || !r->action[0] || r->seq == 0 ||
	    r->seq > (uint64_t)INT64_MAX)
		return ODX_EINVAL;
	size_t alen = strnlen(r->action, AUDIT_MAX_ACTION + 1);
	if (alen > AUDIT_MAX_ACTION)
		return ODX_EINVAL;
	for (size_t i = 0; i < alen; i++)
		if (!action_char(r->action[i]))
			return ODX_EINVAL;
	struct enc e = {.buf = buf};
	buf[e.len++] = CANONICAL_VERSION;
	put_u64(&e, r->seq);
	put_u64(&e, (uint64_t)r->time_ns);
	put_str(&e, actor, 16);
	put_str(&e, r->actor_id, AUDIT_MAX_ID);
	put_str(&e, r->actor_email, AUDIT_MAX_EMAIL);
	put_str(&e, r->tenant_id, AUDIT_MAX_ID);
	put_str(&e, r->action, AUDIT_MAX_ACTION);
	put_str(&e, r->resource, AUDIT_MAX_RESOURCE);
	put_str(&e, outcome, 16);
	put_str(&e, r->reason, AUDIT_MAX_REASON);
	put_str(&e, r->request_id, AUDIT_MAX_ID);
	put_str(&e, r->source_ip, AUDIT_MAX_SOURCE_IP);
	if (e.rc)
		return e.rc;
	*len = e.len;
	return 0;
}

int audit_record_hashes(struct merkle_hasher *h, const struct audit_record *rec,
			const uint8_t prev[static AUDIT_HASH_LEN], uint8_t hash[static AUDIT_HASH_LEN],
			uint8_t leaf[static AUDIT_HASH_LEN])
{
	uint8_t buf[AUDIT_CANONICAL_MAX];
	size_t n;
	int rc = audit_record_encode(rec, buf, &n);
	if (rc == 0)
		rc = merkle_sha256_2(h, prev, AUDIT_HASH_LEN, buf, n, hash);
	if (rc == 0)
		rc = merkle_leaf_hash(h, buf, n, leaf);
	return rc;
}

/* ---- key ---- */

int audit_key_id(const uint8_t pub[static AUDIT_PUB_LEN], char out[static AUDIT_KEY_ID_LEN])
{
	uint8_t h[SHA256_LEN];
	int rc = hash_sha256(pub, AUDIT_PUB_LEN, h);
	if (rc == 0)
		b64url_encode(h, 12, out);
	return rc;
}

int audit_key_init(const char *data_dir)
{
	char dir[4096], path[4200];
	if (snprintf(dir, sizeof(dir), "%s/keys", data_dir) >= (int)sizeof(dir))
		return ODX_EINVAL;
	snprintf(path, sizeof(path), "%s/%s", data_dir, AUDIT_KEY_FILE);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	struct sign_key *key = NULL;
	int rc = sign_key_load(path, &key);
	if (rc == -ENOENT) {
		rc = sign_key_generate(&key);
		if (rc == 0)
			rc = sign_key_save(key, path);
	}
	sign_key_free(key);
	return rc;
}

/* ---- checkpoint signature bytes ---- */

void audit_checkpoint_message(const struct audit_checkpoint *cp,
			      uint8_t out[static AUDIT_CHECKPOINT_MSG_LEN])
{
	size_t o = 0;
	memcpy(out, CHECKPOINT_CONTEXT, sizeof(CHECKPOINT_CONTEXT) - 1);
	o += sizeof(CHECKPOINT_CONTEXT) - 1;
	out[o++] = 0x00;
	for (int i = 7; i >= 0; i--)
		out[o++] = (uint8_t)(cp->tree_size >> (8 * i));
	for (int i = 7; i >= 0; i--)
		out[o++] = (uint8_t)((uint64_t)cp->time_ns >> (8 * i));
	memcpy(out + o, cp->root_hash, AUDIT_HASH_LEN);
}

int audit_checkpoint_verify(const struct audit_checkpoint *cp,
			    const uint8_t pub[static AUDIT_PUB_LEN])
{
	char kid[AUDIT_KEY_ID_LEN];
	if (audit_key_id(pub, kid) != 0 || memchr(cp->key_id, 0, AUDIT_KEY_ID_LEN) == NULL ||
	    strcmp(kid, cp->key_id) != 0)
		return ODX_EAUTH;
	uint8_t msg[AUDIT_CHECKPOINT_MSG_LEN];
	audit_checkpoint_message(cp, msg);
	return sign_verify(pub, msg, sizeof(msg), cp->signature, AUDIT_SIG_LEN) == 0 ? 0
										     : ODX_EAUTH;
}

const char *audit_problem_name(enum audit_problem p)
{
	switch (p) {
	case AUDIT_PROBLEM_NONE: return "none";
	case AUDIT_PROBLEM_MALFORMED: return "malformed";
	case AUDIT_PROBLEM_ALTERED: return "altered";
	case AUDIT_PROBLEM_MISSING: return "missing";
	case AUDIT_PROBLEM_REORDERED: return "reordered";
	case AUDIT_PROBLEM_INSERTED: return "inserted";
	case AUDIT_PROBLEM_TRUNCATED: return "truncated";
	case AUDIT_PROBLEM_UNSIGNED: return "unsigned";
	case AUDIT_PROBLEM_CHECKPOINT_ROOT: return "checkpoint-root";
	case AUDIT_PROBLEM_CHECKPOINT_SIGNATURE: return "checkpoint-signature";
	case AUDIT_PROBLEM_SEEN_MISMATCH: return "seen-mismatch";
	case AUDIT_PROBLEM_DERIVED: return "derived";
	}
	return "unknown";
}
