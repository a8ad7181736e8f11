/*
 * enroll.h — single-use enrollment tokens for new nodes (SPEC §2,
 * docs/nodes.md).
 *
 * Token text: "odx-enroll-" <64 hex: SHA-256 of the CA certificate> "-"
 * <24 hex token id> <64 hex secret>. Stored: the id, SHA-256 of the 32
 * secret bytes (a random 256-bit secret needs no slow hash), the optional
 * node name it is bound to, who made it, when it expires, when it was used
 * and by which node. The CA fingerprint lets the agent pin the control
 * plane before it sends anything; the server ignores it (a token made
 * before a CA rotation still works: the agent finds that CA in the chain
 * the server sends).
 */
#ifndef ODX_ENROLL_H
#define ODX_ENROLL_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define ENROLL_TOKEN_LEN (11 + 64 + 1 + 24 + 64 + 1) /* with NUL */
#define ENROLL_ID_LEN (4 + 24 + 1)                   /* "ent_" 24 hex NUL */
#define ENROLL_TTL_MAX_S 86400
#define ENROLL_NAME_MAX 63

struct enroll_token {
	char id[ENROLL_ID_LEN];
	char node_name[ENROLL_NAME_MAX + 1]; /* "" = not bound */
	int64_t expires_at;
};

/* True for a node name: [a-z0-9-], 1..63, not starting with '-'. */
bool enroll_name_valid(const char *name);
/*
 * Makes a token valid for ttl_s seconds (1..ENROLL_TTL_MAX_S), bound to
 * node_name when not NULL; writes its one-time text. ODX_EINVAL for a bad
 * ttl or name.
 */
int enroll_token_create(struct store *s, const char *ca_fingerprint, int64_t ttl_s,
			const char *node_name, const char *created_by, struct enroll_token *out,
			char text[static ENROLL_TOKEN_LEN]);
/*
 * Checks a presented token without using it up: 0 and *out, or ODX_EAUTH
 * for anything wrong (malformed, unknown, wrong secret, used, expired) —
 * one answer, so a caller learns nothing about which.
 */
int enroll_token_check(struct store *s, const char *text, int64_t now_ns,
		       struct enroll_token *out);
/* The token id a presented text names ("ent_" + 24 hex), if it has the token's shape. */
bool enroll_token_id(const char *text, char out[static ENROLL_ID_LEN]);
/*
 * Uses the token up for node_id inside tx (the transaction that also
 * records the node, so both or neither happen). ODX_EAUTH when it was used
 * or expired in the meantime.
 */
int enroll_token_consume(struct store_tx *tx, const char *id, const char *node_id,
			 int64_t now_ns);

#endif
