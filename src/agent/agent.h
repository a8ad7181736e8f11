/*
 * agent.h — odysseus-agent, the node daemon: what enroll and run share.
 *
 * The agent dials out to the control plane's agent API and never listens.
 * `enroll` pins the control plane's CA by the fingerprint in an enrollment
 * token, makes a key and CSR and trades the token for a client certificate
 * (enroll.h). `run` heartbeats, long-polls assignments and renews the
 * certificate (run.h). docs/agent.md and docs/nodes.md describe both.
 *
 * The enrollment token, "odx-enroll-<64 hex CA SHA-256>-<88 hex secret>",
 * is a credential: it is never printed or logged. Its first 24 hex of
 * secret are the token id (shown as ent_<24 hex>), which may be.
 */
#ifndef ODX_AGENT_AGENT_H
#define ODX_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#ifndef ODYSSEUS_VERSION
#define ODYSSEUS_VERSION "0.1.0"
#endif

/* Exit statuses (docs/nodes.md). */
#define AGENT_EXIT_OK	   0
#define AGENT_EXIT_ERROR   1
#define AGENT_EXIT_USAGE   2
#define AGENT_EXIT_REFUSED 3 /* bad token, node revoked */
#define AGENT_EXIT_PIN	   4 /* the server is not the one the token names */

#define AGENT_STATE_DIR_DEFAULT "/var/lib/odysseus-agent"

#define AGENT_TOKEN_PREFIX    "odx-enroll-"
#define AGENT_FINGERPRINT_HEX 64
#define AGENT_SECRET_HEX      88
#define AGENT_TOKEN_ID_HEX    24
#define AGENT_TOKEN_ID_LEN    (4 + AGENT_TOKEN_ID_HEX + 1) /* "ent_" + hex + NUL */

#define AGENT_URL_MAX  512
#define AGENT_HOST_MAX 256

#define AGENT_BACKOFF_MIN_MS 1000
#define AGENT_BACKOFF_MAX_MS 30000

/* What an enrollment token says in public: never the secret. */
struct agent_token {
	char fingerprint[AGENT_FINGERPRINT_HEX + 1]; /* the CA's SHA-256, lowercase hex */
	char id[AGENT_TOKEN_ID_LEN];		     /* "ent_<24 hex>" */
};

/*
 * Checks token's shape exactly (prefix, 64 and 88 lowercase hex, one '-'
 * between) and fills out. Returns 0 or ODX_EINVAL; contacts nothing.
 */
int agent_token_parse(const char *token, struct agent_token *out);

/* The control plane's base URL, split for the pinning connection. */
struct agent_url {
	char base[AGENT_URL_MAX];  /* "https://host:port", no trailing slash */
	char host[AGENT_HOST_MAX]; /* without brackets for IPv6 */
	char port[8];
};

/*
 * Parses "https://HOST[:PORT][/]" (HOST a name, an IPv4 literal or an IPv6
 * literal in brackets; PORT 1..65535, default 443). No user info, path,
 * query or fragment. Returns 0 or ODX_EINVAL.
 */
int agent_url_parse(const char *url, struct agent_url *out);

/*
 * Exponential backoff with full jitter: each wait is uniform in [0, b],
 * where b starts at AGENT_BACKOFF_MIN_MS and doubles up to
 * AGENT_BACKOFF_MAX_MS; a success resets it.
 */
struct agent_backoff {
	int64_t bound_ms;
};

void agent_backoff_reset(struct agent_backoff *b);
/* The next wait in milliseconds, in [0, AGENT_BACKOFF_MAX_MS]. */
int64_t agent_backoff_next(struct agent_backoff *b);

/* Checks a node id from the control plane: 1..64 of [a-z0-9_-]. */
bool agent_node_id_valid(const char *s);

#endif
