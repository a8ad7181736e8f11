/*
 * jwt.h — access tokens: JWS compact serialization, EdDSA (Ed25519) only.
 *
 * Header: exactly {"alg":"EdDSA","typ":"JWT","kid":"<kid>"}; any other alg,
 * a missing or unknown kid, or an extra header member (crit, jku, x5u...) is
 * rejected before any signature work. Claims: exactly iss, aud, sub, tid
 * (tenant id or null for the platform administrator), role, jti, iat, nbf,
 * exp. The token is at most JWT_MAX_LEN bytes.
 */
#ifndef ODX_JWT_H
#define ODX_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "auth/keyring.h"
#include "crypto/random.h"

#define JWT_MAX_LEN    2048
#define JWT_ISSUER     "odysseus"
#define JWT_AUDIENCE   "odysseus-api"
#define JWT_LIFETIME_S 900
#define JWT_SKEW_S     60
#define ROLE_MAX       16

struct jwt_claims {
	char sub[ID_MAX_LEN];
	char tid[ID_MAX_LEN]; /* "" when the claim is null */
	char role[ROLE_MAX];
	char jti[ID_MAX_LEN];
	char kid[KID_LEN];
	int64_t iat, nbf, exp; /* seconds */
};

/*
 * Signs a token for sub/tid/role valid from now_s for JWT_LIFETIME_S; fills
 * the rest of *c (jti, times, kid). *out is malloc'd, NUL-terminated.
 */
int jwt_issue(struct keyring *kr, struct jwt_claims *c, int64_t now_s, char **out);
/*
 * Verifies token[0..len) at time now_s: 0 and *out filled, or ODX_EAUTH
 * (malformed, bad signature, wrong iss/aud, expired, not yet valid).
 */
int jwt_verify(struct keyring *kr, const char *token, size_t len, int64_t now_s,
	       struct jwt_claims *out);
/*
 * jwt_verify behind a per-thread cache of verified tokens keyed by their
 * SHA-256, so a token's signature is checked once per thread, not per request.
 */
int jwt_verify_cached(struct keyring *kr, const char *token, size_t len, int64_t now_s,
		      struct jwt_claims *out);

/* Frees this thread's verified-token cache (call as a thread ends). */
void jwt_cache_free(void);

#endif
