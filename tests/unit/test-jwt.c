/*
 * test-jwt.c — access tokens: round trip, the classic JWS attacks (alg none,
 * HS256 with the public key as the HMAC secret), tampering, time checks,
 * strict header and claims, garbage, key rotation and the verified cache.
 *
 * Hand-made tokens are signed with the real current key (keyring_sign), so
 * when one is refused it is for the one thing the test changed; each such
 * test first checks that the same token without the change is accepted.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwt.h"
#include "auth/keyring.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/jsonx.h"
#include "crypto/random.h"
#include "tmpdir.h"

struct ctx {
	char dir[64];
	struct keyring *kr;
	int64_t now;
	char kid[KID_LEN];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (tmpdir_make(c->dir, sizeof(c->dir), "jwt") != 0 || keyring_init_dir(c->dir) != 0 ||
	    keyring_load(c->dir, &c->kr) != 0 || keyring_current_kid(c->kr, c->kid) != 0)
		return -1;
	c->now = (int64_t)time(NULL);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	keyring_free(c->kr);
	jwt_cache_free();
	tmpdir_remove(c->dir);
	free(c);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static char *b64(const void *data, size_t n)
{
	char *s = malloc(b64url_encoded_len(n) + 1);
	assert_non_null(s);
	b64url_encode(data, n, s);
	return s;
}

static char *b64_json(const json_t *v)
{
	char *text = jsonx_dump(v);
	assert_non_null(text);
	char *s = b64(text, strlen(text));
	free(text);
	return s;
}

/* "a.b" or "a.b.c" into a new string. */
static char *join3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
	char *s = malloc(n);
	assert_non_null(s);
	if (c)
		snprintf(s, n, "%s.%s.%s", a, b, c);
	else
		snprintf(s, n, "%s.%s", a, b);
	return s;
}

static json_t *std_header(const char *kid)
{
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", kid);
	assert_non_null(h);
	return h;
}

/* Valid claims for a tenant admin, issued at `iat`. */
static json_t *std_claims(int64_t iat)
{
	char sub[ID_MAX_LEN], tid[ID_MAX_LEN], jti[ID_MAX_LEN];
	assert_int_equal(random_id("usr", sub), 0);
	assert_int_equal(random_id("ten", tid), 0);
	assert_int_equal(random_id("jti", jti), 0);
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", JWT_ISSUER,
			      "aud", JWT_AUDIENCE, "sub", sub, "tid", tid, "role", "admin", "jti", jti,
			      "iat", (json_int_t)iat, "nbf", (json_int_t)iat, "exp",
			      (json_int_t)(iat + JWT_LIFETIME_S));
	assert_non_null(p);
	return p;
}

/* header.payload signed with the keyring's current (real) key. Consumes h and p. */
static char *craft(struct ctx *c, json_t *h, json_t *p)
{
	char *hs = b64_json(h), *ps = b64_json(p);
	json_decref(h);
	json_decref(p);
	char *input = join3(hs, ps, NULL);
	uint8_t sig[64];
	char kid[KID_LEN];
	assert_int_equal(keyring_sign(c->kr, input, strlen(input), kid, sig), 0);
	char *ss = b64(sig, sizeof(sig));
	char *tok = join3(hs, ps, ss);
	free(hs);
	free(ps);
	free(ss);
	free(input);
	return tok;
}

static int verify(struct ctx *c, const char *tok, int64_t now, struct jwt_claims *out)
{
	struct jwt_claims tmp;
	return jwt_verify(c->kr, tok, strlen(tok), now, out ? out : &tmp);
}

static void assert_rejected(struct ctx *c, const char *tok, size_t len, int64_t now)
{
	struct jwt_claims out;
	memset(&out, 0x5a, sizeof(out));
	int rc = jwt_verify(c->kr, tok, len, now, &out);
	if (rc != ODX_EAUTH)
		fail_msg("token accepted or misreported (rc %d): %.*s", rc, (int)(len > 200 ? 200 : len),
			 tok);
	/* *out is written only on success */
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(((uint8_t *)&out)[i], 0x5a);
}

static struct jwt_claims issue_claims(const char *role, bool with_tenant)
{
	struct jwt_claims cl;
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(random_id("usr", cl.sub), 0);
	if (with_tenant)
		assert_int_equal(random_id("ten", cl.tid), 0);
	snprintf(cl.role, sizeof(cl.role), "%s", role);
	return cl;
}

static char *issue(struct ctx *c, const char *role, int64_t at, struct jwt_claims *cl_out)
{
	struct jwt_claims cl = issue_claims(role, strcmp(role, "platform_admin") != 0);
	char *tok = NULL;
	assert_int_equal(jwt_issue(c->kr, &cl, at, &tok), 0);
	assert_non_null(tok);
	if (cl_out)
		*cl_out = cl;
	return tok;
}

/* Splits tok into its three segments (copies). */
static void split(const char *tok, char **h, char **p, char **s)
{
	const char *d1 = strchr(tok, '.');
	assert_non_null(d1);
	const char *d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	*h = strndup(tok, (size_t)(d1 - tok));
	*p = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
	*s = strdup(d2 + 1);
	assert_true(*h && *p && *s);
}

static json_t *decode_segment(const char *seg)
{
	uint8_t buf[2048];
	size_t n;
	assert_int_equal(b64url_decode(seg, strlen(seg), buf, sizeof(buf), &n), 0);
	json_error_t e;
	json_t *v = json_loadb((const char *)buf, n, 0, &e);
	assert_non_null(v);
	return v;
}

static void assert_claims_equal(const struct jwt_claims *a, const struct jwt_claims *b)
{
	assert_string_equal(a->sub, b->sub);
	assert_string_equal(a->tid, b->tid);
	assert_string_equal(a->role, b->role);
	assert_string_equal(a->jti, b->jti);
	assert_string_equal(a->kid, b->kid);
	assert_int_equal(a->iat, b->iat);
	assert_int_equal(a->nbf, b->nbf);
	assert_int_equal(a->exp, b->exp);
}

/* ---- tests -------------------------------------------------------------- */

static void test_round_trip(void **state)
{
	struct ctx *c = *state;
	struct jwt_claims in, out;
	char *tok = issue(c, "developer", c->now, &in);
	assert_true(strlen(tok) <= JWT_MAX_LEN);
	assert_true(random_id_valid("jti", in.jti));
	assert_string_equal(in.kid, c->kid);
	assert_int_equal(in.iat, c->now);
	assert_int_equal(in.nbf, c->now);
	assert_int_equal(in.exp, c->now + JWT_LIFETIME_S);
	assert_int_equal(verify(c, tok, c->now, &out), 0);
	assert_claims_equal(&in, &out);
	assert_string_equal(out.role, "developer");
	assert_true(random_id_valid("ten", out.tid));

	/* the header is exactly what jwt.h promises */
	char *h, *p, *s;
	split(tok, &h, &p, &s);
	json_t *hdr = decode_segment(h);
	json_t *want = std_header(c->kid);
	assert_true(json_equal(hdr, want));
	json_decref(want);
	json_decref(hdr);
	json_t *pl = decode_segment(p);
	assert_int_equal(json_object_size(pl), 9);
	assert_string_equal(json_string_value(json_object_get(pl, "iss")), JWT_ISSUER);
	assert_string_equal(json_string_value(json_object_get(pl, "aud")), JWT_AUDIENCE);
	json_decref(pl);
	free(h);
	free(p);
	free(s);
	free(tok);

	/* the platform administrator: tid null, "" in the claims */
	tok = issue(c, "platform_admin", c->now, &in);
	char *p2;
	split(tok, &h, &p2, &s);
	pl = decode_segment(p2);
	assert_true(json_is_null(json_object_get(pl, "tid")));
	json_decref(pl);
	free(h);
	free(p2);
	free(s);
	assert_int_equal(verify(c, tok, c->now, &out), 0);
	assert_claims_equal(&in, &out);
	assert_string_equal(out.tid, "");
	free(tok);

	/* two tokens never share a jti */
	struct jwt_claims a, b;
	char *t1 = issue(c, "readonly", c->now, &a), *t2 = issue(c, "readonly", c->now, &b);
	assert_string_not_equal(a.jti, b.jti);
	free(t1);
	free(t2);
}

static void test_crafted_control(void **state)
{
	/* The crafting helper makes tokens jwt_verify accepts: the refusals below mean something. */
	struct ctx *c = *state;
	char *tok = craft(c, std_header(c->kid), std_claims(c->now));
	struct jwt_claims out;
	assert_int_equal(verify(c, tok, c->now, &out), 0);
	assert_string_equal(out.role, "admin");
	free(tok);
}

static void test_alg_none(void **state)
{
	struct ctx *c = *state;
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "none", "typ", "JWT", "kid", c->kid);
	char *hs = b64_json(h), *ps = NULL;
	json_t *p = std_claims(c->now);
	ps = b64_json(p);
	/* empty signature: "h.p." */
	char *tok = join3(hs, ps, "");
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* no third segment at all: "h.p" */
	tok = join3(hs, ps, NULL);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	free(hs);
	/* variants of the name */
	const char *names[] = {"None", "NONE", "nOnE", "", "EdDSA ", "eddsa", "Ed25519", "ES256"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_object_set_new(h, "alg", json_string(names[i]));
		json_incref(h);
		json_incref(p);
		tok = craft(c, h, p); /* even with a valid signature */
		assert_rejected(c, tok, strlen(tok), c->now);
		free(tok);
	}
	json_decref(h);
	json_decref(p);
	free(ps);
}

static void test_alg_hs256_key_confusion(void **state)
{
	struct ctx *c = *state;
	/* What an attacker has: the public key from the JWKS. */
	json_t *jwks = keyring_jwks(c->kr, c->now * 1000000000LL);
	assert_non_null(jwks);
	json_t *k = json_array_get(json_object_get(jwks, "keys"), 0);
	const char *x = json_string_value(json_object_get(k, "x"));
	assert_non_null(x);
	assert_string_equal(json_string_value(json_object_get(k, "kid")), c->kid);
	uint8_t pub[32];
	size_t publen;
	assert_int_equal(b64url_decode(x, strlen(x), pub, sizeof(pub), &publen), 0);
	assert_int_equal(publen, 32);

	const char *algs[] = {"HS256", "HS384", "HS512"};
	const EVP_MD *mds[] = {EVP_sha256(), EVP_sha384(), EVP_sha512()};
	for (size_t i = 0; i < 3; i++) {
		json_t *h = json_pack("{s:s, s:s, s:s}", "alg", algs[i], "typ", "JWT", "kid", c->kid);
		json_t *p = std_claims(c->now);
		char *hs = b64_json(h), *ps = b64_json(p);
		char *input = join3(hs, ps, NULL);
		/* the secret: the raw public key bytes, then its base64url text */
		const void *secrets[] = {pub, x};
		int secret_lens[] = {32, (int)strlen(x)};
		for (size_t j = 0; j < 2; j++) {
			uint8_t mac[EVP_MAX_MD_SIZE];
			unsigned int maclen = 0;
			assert_non_null(HMAC(mds[i], secrets[j], secret_lens[j],
					     (const unsigned char *)input, strlen(input), mac, &maclen));
			char *ms = b64(mac, maclen);
			char *tok = join3(hs, ps, ms);
			assert_rejected(c, tok, strlen(tok), c->now);
			free(tok);
			free(ms);
		}
		free(input);
		free(hs);
		free(ps);
		json_decref(h);
		json_decref(p);
	}
	json_decref(jwks);
}

static void test_tampered_payload(void **state)
{
	struct ctx *c = *state;
	char *tok = issue(c, "readonly", c->now, NULL);
	assert_int_equal(verify(c, tok, c->now, NULL), 0);
	char *h, *p, *s;
	split(tok, &h, &p, &s);
	const char *roles[] = {"admin", "operator", "platform_admin"};
	for (size_t i = 0; i < 3; i++) {
		json_t *pl = decode_segment(p);
		json_object_set_new(pl, "role", json_string(roles[i]));
		if (strcmp(roles[i], "platform_admin") == 0)
			json_object_set_new(pl, "tid", json_null());
		char *np = b64_json(pl);
		json_decref(pl);
		char *forged = join3(h, np, s);
		assert_rejected(c, forged, strlen(forged), c->now);
		free(forged);
		free(np);
	}
	/* later expiry, same signature */
	json_t *pl = decode_segment(p);
	json_object_set_new(pl, "exp", json_integer(json_integer_value(json_object_get(pl, "exp")) + 1));
	char *np = b64_json(pl);
	json_decref(pl);
	char *forged = join3(h, np, s);
	assert_rejected(c, forged, strlen(forged), c->now);
	free(forged);
	free(np);
	/* the same JSON re-encoded with other whitespace is another message */
	pl = decode_segment(p);
	char *text = json_dumps(pl, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(pl);
	np = b64(text, strlen(text));
	free(text);
	forged = join3(h, np, s);
	assert_rejected(c, forged, strlen(forged), c->now);
	free(forged);
	free(np);
	/* another token's header or payload with this signature */
	char *tok2 = issue(c, "readonly", c->now, NULL);
	char *h2, *p2, *s2;
	split(tok2, &h2, &p2, &s2);
	forged = join3(h, p2, s);
	assert_rejected(c, forged, strlen(forged), c->now);
	free(forged);
	free(h2);
	free(p2);
	free(s2);
	free(tok2);
	free(h);
	free(p);
	free(s);
	free(tok);
}

static void test_flipped_signature_bits(void **state)
{
	struct ctx *c = *state;
	char *tok = issue(c, "operator", c->now, NULL);
	char *h, *p, *s;
	split(tok, &h, &p, &s);
	uint8_t sig[64];
	size_t n;
	assert_int_equal(b64url_decode(s, strlen(s), sig, sizeof(sig), &n), 0);
	assert_int_equal(n, 64);
	const size_t bits[] = {0, 7, 8, 255, 256, 300, 511};
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		uint8_t bad[64];
		memcpy(bad, sig, 64);
		bad[bits[i] / 8] ^= (uint8_t)(1u << (bits[i] % 8));
		char *bs = b64(bad, 64);
		char *forged = join3(h, p, bs);
		assert_rejected(c, forged, strlen(forged), c->now);
		free(forged);
		free(bs);
	}
	/* truncated, extended, all zero */
	char *bs = b64(sig, 63);
	char *forged = join3(h, p, bs);
	assert_rejected(c, forged, strlen(forged), c->now);
	free(forged);
	free(bs);
	uint8_t longer[66];
	memcpy(longer, sig, 64);
	longer[64] = longer[65] = 0;
	bs = b64(longer, 66);
	forged = join3(h, p, bs);
	assert_rejected(c, forged, strlen(forged), c->now);
	free(forged);
	free(bs);
	uint8_t zero[64] = {0};
	bs = b64(zero, 64);
	forged = join3(h, p, bs);
	assert_rejected(c, forged, strlen(forged), c->now);
	free(forged);
	free(bs);
	assert_int_equal(verify(c, tok, c->now, NULL), 0);
	free(h);
	free(p);
	free(s);
	free(tok);
}

static void test_expiry(void **state)
{
	struct ctx *c = *state;
	/* issued 2000 s ago: expired 1100 s ago */
	char *tok = issue(c, "admin", c->now - 2000, NULL);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* exp = now - 59: inside the 60 s skew */
	tok = issue(c, "admin", c->now - JWT_LIFETIME_S - (JWT_SKEW_S - 1), NULL);
	struct jwt_claims out;
	assert_int_equal(verify(c, tok, c->now, &out), 0);
	assert_int_equal(out.exp, c->now - (JWT_SKEW_S - 1));
	free(tok);
	/* exp = now - 60: just outside */
	tok = issue(c, "admin", c->now - JWT_LIFETIME_S - JWT_SKEW_S, NULL);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* the same token over its life */
	tok = issue(c, "admin", c->now, NULL);
	assert_int_equal(verify(c, tok, c->now + JWT_LIFETIME_S, NULL), 0);
	assert_int_equal(verify(c, tok, c->now + JWT_LIFETIME_S + JWT_SKEW_S - 1, NULL), 0);
	assert_rejected(c, tok, strlen(tok), c->now + JWT_LIFETIME_S + JWT_SKEW_S);
	free(tok);
	/* a crafted lifetime longer than ours is refused even though exp is in the future */
	json_t *p = std_claims(c->now);
	json_object_set_new(p, "exp", json_integer(c->now + 86400));
	tok = craft(c, std_header(c->kid), p);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
}

static void test_not_yet_valid(void **state)
{
	struct ctx *c = *state;
	/* nbf (and iat) 120 s ahead: beyond the skew */
	char *tok = issue(c, "admin", c->now + 120, NULL);
	assert_rejected(c, tok, strlen(tok), c->now);
	assert_int_equal(verify(c, tok, c->now + 120, NULL), 0);
	free(tok);
	/* nbf alone in the future, iat now */
	json_t *p = std_claims(c->now);
	json_object_set_new(p, "nbf", json_integer(c->now + JWT_SKEW_S + 1));
	tok = craft(c, std_header(c->kid), p);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* nbf 30 s ahead: within the skew */
	p = std_claims(c->now);
	json_object_set_new(p, "nbf", json_integer(c->now + 30));
	tok = craft(c, std_header(c->kid), p);
	assert_int_equal(verify(c, tok, c->now, NULL), 0);
	free(tok);
	/* iat alone in the future beyond the skew (nbf now, lifetime within bounds) */
	p = std_claims(c->now);
	json_object_set_new(p, "iat", json_integer(c->now + JWT_SKEW_S + 1));
	tok = craft(c, std_header(c->kid), p);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* exp before nbf */
	p = std_claims(c->now);
	json_object_set_new(p, "nbf", json_integer(c->now + 50));
	json_object_set_new(p, "exp", json_integer(c->now + 40));
	tok = craft(c, std_header(c->kid), p);
	assert_rejected(c, tok, strlen(tok), c->now + 45);
	free(tok);
}

static void test_wrong_iss_aud(void **state)
{
	struct ctx *c = *state;
	const char *keys[] = {"iss", "aud"};
	const char *values[] = {"evil", "", "odysseus ", "Odysseus", "odysseus-api", "odysseus"};
	for (size_t k = 0; k < 2; k++) {
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
			const char *right = k == 0 ? JWT_ISSUER : JWT_AUDIENCE;
			if (strcmp(values[v], right) == 0)
				continue;
			json_t *p = std_claims(c->now);
			json_object_set_new(p, keys[k], json_string(values[v]));
			char *tok = craft(c, std_header(c->kid), p);
			assert_rejected(c, tok, strlen(tok), c->now);
			free(tok);
		}
		/* an array audience holding the right value is still not the pinned string */
		json_t *p = std_claims(c->now);
		json_object_set_new(p, keys[k], json_pack("[s]", k == 0 ? JWT_ISSUER : JWT_AUDIENCE));
		char *tok = craft(c, std_header(c->kid), p);
		assert_rejected(c, tok, strlen(tok), c->now);
		free(tok);
	}
}

static void test_claim_shapes(void **state)
{
	struct ctx *c = *state;
	struct {
		const char *key;
		json_t *value;
	} bad[] = {
		{"role", json_string("root")},
		{"role", json_string("Admin")},
		{"role", json_string("platform_admin")}, /* with a tenant id */
		{"tid", json_null()},                     /* a tenant role without a tenant */
		{"tid", json_string("ten_nothex")},
		{"tid", json_string("../../etc/passwd")},
		{"sub", json_string("usr_123")},
		{"sub", json_string("")},
		{"sub", json_integer(1)},
		{"iat", json_string("0")},
		{"exp", json_real(1e18)},
		{"jti", json_null()},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *p = std_claims(c->now);
		json_object_set_new(p, bad[i].key, bad[i].value);
		char *tok = craft(c, std_header(c->kid), p);
		assert_rejected(c, tok, strlen(tok), c->now);
		free(tok);
	}
	/* missing claims */
	const char *names[] = {"iss", "aud", "sub", "tid", "role", "jti", "iat", "nbf", "exp"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *p = std_claims(c->now);
		json_object_del(p, names[i]);
		char *tok = craft(c, std_header(c->kid), p);
		assert_rejected(c, tok, strlen(tok), c->now);
		free(tok);
	}
}

static void test_unknown_kid(void **state)
{
	struct ctx *c = *state;
	const char *kids[] = {"AAAAAAAAAAAAAAAA", "", "../../../etc/x", "AAAAAAAAAAAAAAAAA"};
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
		char *tok = craft(c, std_header(kids[i]), std_claims(c->now));
		assert_rejected(c, tok, strlen(tok), c->now);
		free(tok);
	}
	/* no kid at all, and a kid that is not a string */
	json_t *h = json_pack("{s:s, s:s}", "alg", "EdDSA", "typ", "JWT");
	char *tok = craft(c, h, std_claims(c->now));
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	h = json_pack("{s:s, s:s, s:i}", "alg", "EdDSA", "typ", "JWT", "kid", 1);
	tok = craft(c, h, std_claims(c->now));
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* the current kid with a prefix of it */
	char shortkid[KID_LEN];
	memcpy(shortkid, c->kid, KID_LEN);
	shortkid[KID_LEN - 2] = '\0';
	tok = craft(c, std_header(shortkid), std_claims(c->now));
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
}

static void test_extra_header_member(void **state)
{
	struct ctx *c = *state;
	const char *extra[] = {"jku", "jwk", "x5u", "x5c", "crit", "cty", "b64", "zip"};
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		json_t *h = std_header(c->kid);
		json_object_set_new(h, extra[i], json_string("https://evil.example/jwks.json"));
		char *tok = craft(c, h, std_claims(c->now));
		assert_rejected(c, tok, strlen(tok), c->now);
		free(tok);
	}
	/* typ must be JWT; duplicate members are refused */
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "at+jwt", "kid", c->kid);
	char *tok = craft(c, h, std_claims(c->now));
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	char dup[160];
	snprintf(dup, sizeof(dup), "{\"alg\":\"none\",\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
		 c->kid);
	json_t *claims = std_claims(c->now);
	char *hs = b64(dup, strlen(dup)), *ps = b64_json(claims);
	json_decref(claims);
	char *input = join3(hs, ps, NULL);
	uint8_t sig[64];
	char kid[KID_LEN];
	assert_int_equal(keyring_sign(c->kr, input, strlen(input), kid, sig), 0);
	char *ss = b64(sig, 64);
	tok = join3(hs, ps, ss);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	free(ss);
	free(input);
	free(hs);
	free(ps);
}

static void test_extra_claim(void **state)
{
	struct ctx *c = *state;
	json_t *p = std_claims(c->now);
	json_object_set_new(p, "admin", json_true());
	char *tok = craft(c, std_header(c->kid), p);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	p = std_claims(c->now);
	json_object_set_new(p, "permissions", json_pack("[s]", "*"));
	tok = craft(c, std_header(c->kid), p);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
}

static void test_duplicate_claim(void **state)
{
	struct ctx *c = *state;
	/* {"role":"readonly", ..., "role":"admin"}: which one wins must never be a question */
	json_t *p = std_claims(c->now);
	json_object_set_new(p, "role", json_string("readonly"));
	char *text = jsonx_dump(p);
	json_decref(p);
	size_t n = strlen(text);
	char *dup = malloc(n + 32);
	assert_non_null(dup);
	memcpy(dup, text, n - 1);
	snprintf(dup + n - 1, 32, ",\"role\":\"admin\"}");
	free(text);
	json_t *hdr = std_header(c->kid);
	char *hs = b64_json(hdr), *ps = b64(dup, strlen(dup));
	json_decref(hdr);
	free(dup);
	char *input = join3(hs, ps, NULL);
	uint8_t sig[64];
	char kid[KID_LEN];
	assert_int_equal(keyring_sign(c->kr, input, strlen(input), kid, sig), 0);
	char *ss = b64(sig, 64);
	char *tok = join3(hs, ps, ss);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	free(ss);
	free(input);
	free(hs);
	free(ps);
}

static void test_garbage(void **state)
{
	struct ctx *c = *state;
	const char *garbage[] = {
		"", ".", "..", "...", "a.b.c", "a.b.c.d", "a..c", ".b.c", "a.b.",
		"eyJhbGciOiJFZERTQSJ9", "Bearer x.y.z", "null", "{}.{}.{}",
	};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		assert_rejected(c, garbage[i], strlen(garbage[i]), c->now);
	assert_rejected(c, "x", 0, c->now);

	char *tok = issue(c, "admin", c->now, NULL);
	size_t n = strlen(tok);
	assert_int_equal(verify(c, tok, c->now, NULL), 0);
	char *buf = malloc(JWT_MAX_LEN + 64);
	assert_non_null(buf);
	/* a fourth segment */
	snprintf(buf, JWT_MAX_LEN + 64, "%s.", tok);
	assert_rejected(c, buf, strlen(buf), c->now);
	snprintf(buf, JWT_MAX_LEN + 64, "%s.abc", tok);
	assert_rejected(c, buf, strlen(buf), c->now);
	/* padding on the signature or the header */
	snprintf(buf, JWT_MAX_LEN + 64, "%s=", tok);
	assert_rejected(c, buf, strlen(buf), c->now);
	snprintf(buf, JWT_MAX_LEN + 64, "%s==", tok);
	assert_rejected(c, buf, strlen(buf), c->now);
	char *h, *p, *s;
	split(tok, &h, &p, &s);
	snprintf(buf, JWT_MAX_LEN + 64, "%s=.%s.%s", h, p, s);
	assert_rejected(c, buf, strlen(buf), c->now);
	snprintf(buf, JWT_MAX_LEN + 64, "%s.%s=.%s", h, p, s);
	assert_rejected(c, buf, strlen(buf), c->now);
	/* characters outside base64url, in each segment */
	const char bad_chars[] = {'+', '/', '*', ' ', '\n', '%', '\x80'};
	for (size_t i = 0; i < sizeof(bad_chars); i++) {
		size_t positions[] = {0, strlen(h) + 1, n - 1};
		for (size_t j = 0; j < 3; j++) {
			memcpy(buf, tok, n + 1);
			buf[positions[j]] = bad_chars[i];
			assert_rejected(c, buf, n, c->now);
		}
	}
	/* an embedded NUL, and a token given with its NUL counted */
	memcpy(buf, tok, n + 1);
	buf[n / 2] = '\0';
	assert_rejected(c, buf, n, c->now);
	assert_rejected(c, tok, n + 1, c->now);
	/* whitespace around it */
	snprintf(buf, JWT_MAX_LEN + 64, " %s", tok);
	assert_rejected(c, buf, strlen(buf), c->now);
	snprintf(buf, JWT_MAX_LEN + 64, "%s\n", tok);
	assert_rejected(c, buf, strlen(buf), c->now);
	/* only a prefix of the buffer is the token: the length is honoured */
	memcpy(buf, tok, n);
	memcpy(buf + n, "GARBAGE", 8);
	assert_int_equal(jwt_verify(c->kr, buf, n, c->now, &(struct jwt_claims){0}), 0);
	assert_rejected(c, buf, n + 7, c->now);
	assert_rejected(c, buf, n - 1, c->now);
	free(h);
	free(p);
	free(s);
	free(tok);
	free(buf);
}

static void test_oversized(void **state)
{
	struct ctx *c = *state;
	/* JWT_MAX_LEN + 1 bytes of well-formed-looking base64url segments */
	size_t n = JWT_MAX_LEN + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'A', n);
	big[1000] = '.';
	big[2000] = '.';
	big[n] = '\0';
	assert_rejected(c, big, n, c->now);
	free(big);
	/* a validly signed token whose claims make it longer than JWT_MAX_LEN */
	json_t *p = std_claims(c->now);
	char pad[1600];
	memset(pad, 'a', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	json_object_set_new(p, "iss", json_string(pad));
	char *tok = craft(c, std_header(c->kid), p);
	assert_true(strlen(tok) > JWT_MAX_LEN);
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* a huge header */
	json_t *h = std_header(c->kid);
	json_object_set_new(h, "typ", json_string(pad));
	tok = craft(c, h, std_claims(c->now));
	assert_rejected(c, tok, strlen(tok), c->now);
	free(tok);
	/* the cached path refuses it too */
	big = malloc(JWT_MAX_LEN + 2);
	assert_non_null(big);
	memset(big, 'A', JWT_MAX_LEN + 1);
	big[JWT_MAX_LEN + 1] = '\0';
	struct jwt_claims out;
	assert_int_equal(jwt_verify_cached(c->kr, big, JWT_MAX_LEN + 1, c->now, &out), ODX_EAUTH);
	free(big);
}

static void test_rotation(void **state)
{
	struct ctx *c = *state;
	struct jwt_claims in_old, out;
	char *old_tok = issue(c, "admin", c->now, &in_old);
	assert_string_equal(in_old.kid, c->kid);

	char new_kid[KID_LEN];
	assert_int_equal(keyring_rotate(c->dir, new_kid), 0);
	assert_string_not_equal(new_kid, c->kid);
	assert_int_equal(keyring_reload_if_changed(c->kr), 0);
	char cur[KID_LEN];
	assert_int_equal(keyring_current_kid(c->kr, cur), 0);
	assert_string_equal(cur, new_kid);

	/* the old key still verifies what it signed */
	assert_int_equal(verify(c, old_tok, c->now, &out), 0);
	assert_claims_equal(&in_old, &out);
	/* new tokens carry the new kid and verify */
	struct jwt_claims in_new;
	char *new_tok = issue(c, "admin", c->now, &in_new);
	assert_string_equal(in_new.kid, new_kid);
	assert_int_equal(verify(c, new_tok, c->now, &out), 0);
	assert_string_equal(out.kid, new_kid);

	/* both keys are published */
	json_t *jwks = keyring_jwks(c->kr, c->now * 1000000000LL);
	assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 2);
	json_decref(jwks);

	/* a token naming the old kid but signed by the new key is refused */
	char *h, *p, *s;
	split(old_tok, &h, &p, &s);
	char *input = join3(h, p, NULL);
	uint8_t sig[64];
	char kid[KID_LEN];
	assert_int_equal(keyring_sign(c->kr, input, strlen(input), kid, sig), 0);
	assert_string_equal(kid, new_kid);
	char *ss = b64(sig, 64);
	char *forged = join3(h, p, ss);
	assert_rejected(c, forged, strlen(forged), c->now);
	free(forged);
	free(ss);
	free(input);
	free(h);
	free(p);
	free(s);

	/* a second keyring loaded from disk agrees */
	struct keyring *kr2;
	assert_int_equal(keyring_load(c->dir, &kr2), 0);
	assert_int_equal(jwt_verify(kr2, old_tok, strlen(old_tok), c->now, &out), 0);
	assert_int_equal(jwt_verify(kr2, new_tok, strlen(new_tok), c->now, &out), 0);
	keyring_free(kr2);

	memcpy(c->kid, new_kid, KID_LEN);
	free(old_tok);
	free(new_tok);
}

static void test_rotation_back_to_back(void **state)
{
	/*
	 * Rotations in quick succession must each be picked up: the reload may
	 * not depend on keyring.json's mtime alone having changed.
	 */
	struct ctx *c = *state;
	for (int i = 0; i < 5; i++) {
		char new_kid[KID_LEN], cur[KID_LEN];
		assert_int_equal(keyring_rotate(c->dir, new_kid), 0);
		assert_int_equal(keyring_reload_if_changed(c->kr), 0);
		assert_int_equal(keyring_current_kid(c->kr, cur), 0);
		if (strcmp(cur, new_kid) != 0)
			fail_msg("rotation %d not picked up by keyring_reload_if_changed: current %s, "
				 "rotated to %s",
				 i, cur, new_kid);
		char *tok = issue(c, "admin", c->now, NULL);
		assert_int_equal(verify(c, tok, c->now, NULL), 0);
		free(tok);
		memcpy(c->kid, new_kid, KID_LEN);
	}
}

static void test_verify_cached(void **state)
{
	struct ctx *c = *state;
	struct jwt_claims in, a, b, d;
	char *tok = issue(c, "developer", c->now, &in);
	size_t n = strlen(tok);
	assert_int_equal(jwt_verify(c->kr, tok, n, c->now, &a), 0);
	assert_int_equal(jwt_verify_cached(c->kr, tok, n, c->now, &b), 0); /* miss, then stored */
	assert_claims_equal(&a, &b);
	memset(&d, 0, sizeof(d));
	assert_int_equal(jwt_verify_cached(c->kr, tok, n, c->now + 10, &d), 0); /* hit */
	assert_claims_equal(&a, &d);
	/* after expiry (plus skew) the cached entry is refused, and stays refused */
	assert_int_equal(jwt_verify_cached(c->kr, tok, n, c->now + JWT_LIFETIME_S + JWT_SKEW_S, &d),
			 ODX_EAUTH);
	assert_int_equal(jwt_verify_cached(c->kr, tok, n, c->now + JWT_LIFETIME_S + JWT_SKEW_S, &d),
			 ODX_EAUTH);
	/* a forged token is not let through by the cache */
	char *h, *p, *s;
	split(tok, &h, &p, &s);
	json_t *pl = decode_segment(p);
	json_object_set_new(pl, "role", json_string("admin"));
	char *np = b64_json(pl);
	json_decref(pl);
	char *forged = join3(h, np, s);
	assert_int_equal(jwt_verify_cached(c->kr, forged, strlen(forged), c->now, &d), ODX_EAUTH);
	assert_int_equal(jwt_verify_cached(c->kr, forged, strlen(forged), c->now, &d), ODX_EAUTH);
	free(forged);
	free(np);
	free(h);
	free(p);
	free(s);
	/* garbage through the cache */
	assert_int_equal(jwt_verify_cached(c->kr, "", 0, c->now, &d), ODX_EAUTH);
	assert_int_equal(jwt_verify_cached(c->kr, "a.b.c", 5, c->now, &d), ODX_EAUTH);
	free(tok);

	/* many tokens through the bounded cache: each still verifies to its own claims */
	for (int i = 0; i < 300; i++) {
		struct jwt_claims x;
		char *t = issue(c, "readonly", c->now, &x);
		assert_int_equal(jwt_verify_cached(c->kr, t, strlen(t), c->now, &d), 0);
		assert_claims_equal(&x, &d);
		assert_int_equal(jwt_verify_cached(c->kr, t, strlen(t), c->now, &d), 0);
		assert_claims_equal(&x, &d);
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_crafted_control),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_alg_hs256_key_confusion),
		cmocka_unit_test(test_tampered_payload),
		cmocka_unit_test(test_flipped_signature_bits),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_not_yet_valid),
		cmocka_unit_test(test_wrong_iss_aud),
		cmocka_unit_test(test_claim_shapes),
		cmocka_unit_test(test_unknown_kid),
		cmocka_unit_test(test_extra_header_member),
		cmocka_unit_test(test_extra_claim),
		cmocka_unit_test(test_duplicate_claim),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_verify_cached),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_rotation_back_to_back),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
