/*
 * fuzz-jwt.c — jwt_verify and jwt_verify_cached on attacker bytes.
 *
 * One keyring is made in a temporary data directory at start. Two modes,
 * chosen by the first byte:
 *
 *   'S' + header JSON + '\n' + claims JSON
 *       The harness base64url-encodes both, signs them with the real key and
 *       verifies the result, so the fuzzer reaches the header and claims
 *       checks behind the signature. In the header "@KID@" becomes the real
 *       kid; in the claims "@NOW@" and "@EXP@" become NOW_S and NOW_S + 900.
 *   anything else
 *       The bytes are the token. No input can carry a valid signature, so an
 *       accepted token is a bug.
 *
 * Oracles (abort on violation): jwt_verify_cached agrees with jwt_verify; an
 * accepted token has exactly the pinned header and the nine claims with
 * iss/aud pinned, a known role, and times valid at NOW_S.
 */
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/jwt.h"
#include "auth/keyring.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/jsonx.h"

#define NOW_S 1700000000LL

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keyring *kr;
static char dir[64];
static char kid[KID_LEN];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	keyring_free(kr);
	jwt_cache_free();
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/odx-fuzz-jwt-XXXXXX");
	if (!mkdtemp(dir) || keyring_init_dir(dir) != 0 || keyring_load(dir, &kr) != 0 ||
	    keyring_current_kid(kr, kid) != 0) {
		fprintf(stderr, "fuzz-jwt: cannot set up a keyring in %s\n", dir);
		abort();
	}
	atexit(cleanup);
	return 0;
}

/* Copies src[0..n) into a new string, replacing each key with its value. */
static char *substitute(const char *src, size_t n, const char *const *keys, const char *const *vals,
			size_t nkeys)
{
	size_t cap = n * 4 + 64, o = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		bool done = false;
		for (size_t k = 0; k < nkeys && !done; k++) {
			size_t kl = strlen(keys[k]), vl = strlen(vals[k]);
			if (i + kl <= n && memcmp(src + i, keys[k], kl) == 0) {
				if (o + vl + 1 > cap)
					break;
				memcpy(out + o, vals[k], vl);
				o += vl;
				i += kl;
				done = true;
			}
		}
		if (done)
			continue;
		if (o + 2 > cap)
			break;
		out[o++] = src[i++];
	}
	out[o] = '\0';
	return out;
}

static char *b64(const void *p, size_t n)
{
	char *s = malloc(b64url_encoded_len(n) + 1);
	if (s)
		b64url_encode(p, n, s);
	return s;
}

static const char *str_of(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

static bool claims_equal(const struct jwt_claims *a, const struct jwt_claims *b)
{
	return strcmp(a->sub, b->sub) == 0 && strcmp(a->tid, b->tid) == 0 &&
	       strcmp(a->role, b->role) == 0 && strcmp(a->jti, b->jti) == 0 &&
	       strcmp(a->kid, b->kid) == 0 && a->iat == b->iat && a->nbf == b->nbf &&
	       a->exp == b->exp;
}

/* The invariants of an accepted token. */
static void check_accepted(const char *tok, size_t len, const struct jwt_claims *c)
{
	const char *d1 = memchr(tok, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (!d2)
		abort();
	uint8_t buf[2048];
	size_t n;
	json_error_t e;
	if (b64url_decode(tok, (size_t)(d1 - tok), buf, sizeof(buf), &n) != 0)
		abort();
	json_t *h = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &e);
	if (!h || json_object_size(h) != 3 || strcmp(str_of(h, "alg"), "EdDSA") != 0 ||
	    strcmp(str_of(h, "typ"), "JWT") != 0 || strcmp(str_of(h, "kid"), kid) != 0)
		abort();
	json_decref(h);
	if (b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof(buf), &n) != 0)
		abort();
	json_t *p = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &e);
	if (!p || json_object_size(p) != 9 || strcmp(str_of(p, "iss"), JWT_ISSUER) != 0 ||
	    strcmp(str_of(p, "aud"), JWT_AUDIENCE) != 0)
		abort();
	json_decref(p);
	static const char *const roles[] = {"platform_admin", "admin", "operator", "developer",
					    "readonly"};
	bool role_ok = false;
	for (size_t i = 0; i < 5; i++)
		role_ok |= strcmp(c->role, roles[i]) == 0;
	if (!role_ok || c->exp <= NOW_S - JWT_SKEW_S || c->nbf > NOW_S + JWT_SKEW_S ||
	    c->exp - c->iat > JWT_LIFETIME_S || strcmp(c->kid, kid) != 0)
		abort();
	if ((strcmp(c->role, "platform_admin") == 0) != (c->tid[0] == '\0'))
		abort();
}

static void verify_both(const char *tok, size_t len, bool may_accept)
{
	struct jwt_claims a, b;
	int ra = jwt_verify(kr, tok, len, NOW_S, &a);
	int rb = jwt_verify_cached(kr, tok, len, NOW_S, &b);
	if (ra != 0 && ra != ODX_EAUTH)
		abort();
	if ((ra == 0) != (rb == 0))
		abort();
	if (ra == 0) {
		if (!may_accept || !claims_equal(&a, &b))
			abort();
		check_accepted(tok, len, &a);
	}
}

static void sign_mode(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	if (!nl)
		return;
	size_t hl = (size_t)(nl - (const char *)data);
	const char *kh[] = {"@KID@"};
	const char *vh[] = {kid};
	const char *kp[] = {"@NOW@", "@EXP@"};
	char now[24], exp[24];
	snprintf(now, sizeof(now), "%lld", NOW_S);
	snprintf(exp, sizeof(exp), "%lld", NOW_S + JWT_LIFETIME_S);
	const char *vp[] = {now, exp};
	char *hdr = substitute((const char *)data, hl, kh, vh, 1);
	char *pl = substitute(nl + 1, size - hl - 1, kp, vp, 2);
	char *hs = hdr ? b64(hdr, strlen(hdr)) : NULL;
	char *ps = pl ? b64(pl, strlen(pl)) : NULL;
	char *tok = NULL;
	if (hs && ps) {
		size_t a = strlen(hs), b = strlen(ps);
		size_t sl = b64url_encoded_len(64);
		tok = malloc(a + b + sl + 3);
		if (tok) {
			memcpy(tok, hs, a);
			tok[a] = '.';
			memcpy(tok + a + 1, ps, b);
			uint8_t sig[64];
			char skid[KID_LEN];
			if (keyring_sign(kr, tok, a + 1 + b, skid, sig) != 0)
				abort();
			tok[a + 1 + b] = '.';
			b64url_encode(sig, 64, tok + a + 1 + b + 1);
			verify_both(tok, strlen(tok), true);
		}
	}
	free(tok);
	free(hs);
	free(ps);
	free(hdr);
	free(pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4 * JWT_MAX_LEN)
		return 0;
	if (size > 0 && data[0] == 'S') {
		sign_mode(data + 1, size - 1);
		return 0;
	}
	verify_both((const char *)data, size, false);
	return 0;
}
