/* jwt.c — see jwt.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/jsonx.h"
#include "core/timeutil.h"
#include "crypto/hash.h"
#include "crypto/sign.h"

#define HEADER_MAX  256
#define PAYLOAD_MAX 1024
#define CACHE_SLOTS 1024

static bool valid_role(const char *r)
{
	static const char *const roles[] = {"platform_admin", "admin", "operator", "developer",
					    "readonly"};
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(r, roles[i]) == 0)
			return true;
	return false;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		return ODX_EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

int jwt_issue(struct keyring *kr, struct jwt_claims *c, int64_t now_s, char **out)
{
	int rc = random_id("jti", c->jti);
	if (rc < 0)
		return rc;
	c->iat = c->nbf = now_s;
	c->exp = now_s + JWT_LIFETIME_S;
	rc = keyring_current_kid(kr, c->kid);
	if (rc < 0)
		return rc;
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", c->kid);
	json_t *pl = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:I}", "iss", JWT_ISSUER,
			       "aud", JWT_AUDIENCE, "sub", c->sub, "tid",
			       c->tid[0] ? json_string(c->tid) : json_null(), "role", c->role,
			       "jti", c->jti, "iat", (json_int_t)c->iat, "nbf", (json_int_t)c->nbf,
			       "exp", (json_int_t)c->exp);
	char *h = hdr ? jsonx_dump(hdr) : NULL, *p = pl ? jsonx_dump(pl) : NULL;
	json_decref(hdr);
	json_decref(pl);
	char *tok = NULL;
	rc = ODX_ENOMEM;
	if (!h || !p)
		goto out;
	size_t hl = b64url_encoded_len(strlen(h)), pll = b64url_encoded_len(strlen(p));
	size_t sl = b64url_encoded_len(SIGN_SIG_LEN);
	tok = malloc(hl + 1 + pll + 1 + sl + 1);
	if (!tok)
		goto out;
	b64url_encode((const uint8_t *)h, strlen(h), tok);
	tok[hl] = '.';
	b64url_encode((const uint8_t *)p, strlen(p), tok + hl + 1);
	uint8_t sig[SIGN_SIG_LEN];
	char kid[KID_LEN];
	rc = keyring_sign(kr, tok, hl + 1 + pll, kid, sig);
	/* A rotation between reading the kid and signing would mislabel the token. */
	if (rc == 0 && strcmp(kid, c->kid) != 0)
		rc = ODX_EBUSY;
	if (rc < 0)
		goto out;
	tok[hl + 1 + pll] = '.';
	b64url_encode(sig, SIGN_SIG_LEN, tok + hl + 1 + pll + 1);
	*out = tok;
	tok = NULL;
out:
	free(tok);
	free(h);
	free(p);
	return rc;
}

/* Decodes one base64url segment that must hold a JSON object. */
static int decode_json(const char *seg, size_t len, size_t cap, json_t **out)
{
	uint8_t buf[PAYLOAD_MAX];
	size_t n;
	char msg[JSONX_MSG_LEN];
	if (cap > sizeof(buf) || b64url_decode(seg, len, buf, cap, &n) < 0)
		return ODX_EAUTH;
	return jsonx_parse_object((const char *)buf, n, out, msg) == 0 ? 0 : ODX_EAUTH;
}

static int check_header(const char *seg, size_t len, char kid[static KID_LEN])
{
	json_t *h;
	if (decode_json(seg, len, HEADER_MAX, &h) < 0)
		return ODX_EAUTH;
	const char *alg, *typ, *k;
	char msg[JSONX_MSG_LEN];
	int rc = ODX_EAUTH;
	if (jsonx_unpack(h, msg, "{s:s, s:s, s:s}", "alg", &alg, "typ", &typ, "kid", &k) == 0 &&
	    strcmp(alg, "EdDSA") == 0 && strcmp(typ, "JWT") == 0 && copy_str(kid, KID_LEN, k) == 0)
		rc = 0;
	json_decref(h);
	return rc;
}

static int check_claims(const char *seg, size_t len, int64_t now_s, struct jwt_claims *c)
{
	json_t *p;
	if (decode_json(seg, len, PAYLOAD_MAX, &p) < 0)
		return ODX_EAUTH;
	const char *iss, *aud, *sub, *role, *jti;
	json_t *tid;
	json_int_t iat, nbf, exp;
	char msg[JSONX_MSG_LEN];
	int rc = ODX_EAUTH;
	if (jsonx_unpack(p, msg, "{s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:I}", "iss", &iss,
			 "aud", &aud, "sub", &sub, "tid", &tid, "role", &role, "jti", &jti, "iat",
			 &iat, "nbf", &nbf, "exp", &exp) != 0)
		goto out;
	if (strcmp(iss, JWT_ISSUER) || strcmp(aud, JWT_AUDIENCE) || !valid_role(role))
		goto out;
	if (exp <= now_s - JWT_SKEW_S || nbf > now_s + JWT_SKEW_S || iat > now_s + JWT_SKEW_S ||
	    exp - iat > JWT_LIFETIME_S || exp < nbf)
		goto out;
	if (!random_id_valid("usr", sub) && !random_id_valid("key", sub))
		goto out;
	c->tid[0] = '\0';
	if (json_is_string(tid)) {
		if (!random_id_valid("ten", json_string_value(tid)))
			goto out;
		copy_str(c->tid, sizeof(c->tid), json_string_value(tid));
	} else if (!json_is_null(tid)) {
		goto out;
	}
	if (copy_str(c->sub, sizeof(c->sub), sub) || copy_str(c->role, sizeof(c->role), role) ||
	    copy_str(c->jti, sizeof(c->jti), jti))
		goto out;
	/* The platform administrator has no tenant; everyone else has one. */
	if ((strcmp(role, "platform_admin") == 0) != (c->tid[0] == '\0'))
		goto out;
	c->iat = iat;
	c->nbf = nbf;
	c->exp = exp;
	rc = 0;
out:
	json_decref(p);
	return rc;
}

int jwt_verify(struct keyring *kr, const char *token, size_t len, int64_t now_s,
	       struct jwt_claims *out)
{
	if (len == 0 || len > JWT_MAX_LEN || memchr(token, '\0', len))
		return ODX_EAUTH;
	const char *d1 = memchr(token, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return ODX_EAUTH;
	struct jwt_claims c;
	memset(&c, 0, sizeof(c));
	if (check_header(token, (size_t)(d1 - token), c.kid) < 0)
		return ODX_EAUTH;
	uint8_t sig[SIGN_SIG_LEN + 3];
	size_t siglen;
	if (b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof(sig), &siglen) < 0)
		return ODX_EAUTH;
	if (keyring_verify(kr, c.kid, token, (size_t)(d2 - token), sig, siglen,
			   now_s * NSEC_PER_SEC) < 0)
		return ODX_EAUTH;
	if (check_claims(d1 + 1, (size_t)(d2 - d1 - 1), now_s, &c) < 0)
		return ODX_EAUTH;
	*out = c;
	return 0;
}

struct cache_slot {
	uint8_t key[SHA256_LEN];
	bool used;
	struct jwt_claims claims;
};

/* One cache per thread, freed by the key's destructor when the thread ends. */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void)
{
	pthread_key_create(&cache_key, free);
}

static struct cache_slot *thread_cache(void)
{
	pthread_once(&cache_once, cache_key_init);
	struct cache_slot *c = pthread_getspecific(cache_key);
	if (!c) {
		c = calloc(CACHE_SLOTS, sizeof(*c));
		if (c && pthread_setspecific(cache_key, c) != 0) {
			free(c);
			c = NULL;
		}
	}
	return c;
}

int jwt_verify_cached(struct keyring *kr, const char *token, size_t len, int64_t now_s,
		      struct jwt_claims *out)
{
	uint8_t key[SHA256_LEN];
	if (len == 0 || len > JWT_MAX_LEN || hash_sha256(token, len, key) < 0)
		return ODX_EAUTH;
	struct cache_slot *cache = thread_cache(), *slot = NULL;
	if (cache) {
		uint32_t idx;
		memcpy(&idx, key, sizeof(idx));
		slot = &cache[idx % CACHE_SLOTS];
		if (slot->used && hash_equal(slot->key, key, SHA256_LEN)) {
			if (slot->claims.exp > now_s - JWT_SKEW_S) {
				*out = slot->claims;
				return 0;
			}
			slot->used = false;
			return ODX_EAUTH;
		}
	}
	int rc = jwt_verify(kr, token, len, now_s, out);
	if (rc == 0 && slot) {
		memcpy(slot->key, key, SHA256_LEN);
		slot->claims = *out;
		slot->used = true;
	}
	return rc;
}

void jwt_cache_free(void)
{
	pthread_once(&cache_once, cache_key_init);
	free(pthread_getspecific(cache_key));
	pthread_setspecific(cache_key, NULL);
}
