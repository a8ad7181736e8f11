/*
 * agentapi.h — the agent API (docs/nodes.md, SPEC §10): what enrolled
 * nodes call over mutual TLS on their own port. The caller is the node
 * named by the client certificate the TLS layer verified; every request
 * is checked against the node inventory, so a revoked node is refused on
 * its next request whatever its certificate says. Enrollment is the one
 * route without a certificate: its token authenticates it.
 *
 * The app of the agent server is the same struct api as the public API's.
 */
#ifndef ODX_AGENTAPI_H
#define ODX_AGENTAPI_H

#include "api/api.h"

#define AGENTAPI_ENROLL_ALPN "odysseus-enroll/1"
#define AGENTAPI_WAIT_MAX_S 60

extern const struct http_route agentapi_routes[];
extern const size_t agentapi_nroutes;

/* The http_server_config.dispatch of the agent server. */
void agentapi_dispatch(struct http_exchange *ex);

void agentapi_enroll(struct http_exchange *ex);
void agentapi_renew(struct http_exchange *ex);
void agentapi_status(struct http_exchange *ex);
void agentapi_assignments(struct http_exchange *ex);
void agentapi_actions(struct http_exchange *ex);
void agentapi_action_result(struct http_exchange *ex);
void agentapi_secrets(struct http_exchange *ex);

#endif
