/*
 * session.h — refresh tokens: opaque, single use, grouped in families.
 *
 * A login starts a family and hands out its first refresh token
 * ("odr_" + 64 hex = 256 random bits). Only SHA-256 of a token is stored.
 * Each refresh spends the presented token and issues its successor in the
 * same family. Presenting a spent token means it was copied: the whole
 * family is revoked (every descendant stops working) and the caller is told
 * so with ODX_EREUSED. A family lives at most SESSION_FAMILY_TTL_S.
 * The tables live in the platform scope; see docs/architecture.md.
 */
#ifndef ODX_SESSION_H
#define ODX_SESSION_H

#include <stdint.h>

#include "crypto/random.h"
#include "store/store.h"

#define REFRESH_TOKEN_LEN    69 /* "odr_" + 64 hex + NUL */
#define SESSION_FAMILY_TTL_S (30LL * 86400)

struct session_subject {
	char tenant_id[ID_MAX_LEN]; /* "" for the platform administrator */
	char user_id[ID_MAX_LEN];
	char family_id[ID_MAX_LEN];
};

/* Starts a family for the subject; writes its first refresh token. */
int session_start(struct store *s, const struct session_subject *who, int64_t now_ns,
		  char token[static REFRESH_TOKEN_LEN]);
/*
 * Spends `token` and writes its successor into next; fills *who.
 * ODX_EAUTH: unknown, expired or revoked. ODX_EREUSED: already spent (the
 * family is now revoked; *who names whose it was, for the audit).
 */
int session_refresh(struct store *s, const char *token, int64_t now_ns,
		    char next[static REFRESH_TOKEN_LEN], struct session_subject *who);
/*
 * Revokes the family of `token` if it belongs to user_id. ODX_EAUTH when
 * the token is unknown or someone else's.
 */
int session_logout(struct store *s, const char *token, const char *user_id, int64_t now_ns);
/* Revokes every family of a user (deleted user, changed password). */
int session_revoke_user(struct store *s, const char *user_id, int64_t now_ns, const char *reason);

#endif
