/*
 * api.h — the public API: the route table, the one dispatch path
 * (authenticate -> authorize -> handler) and the helpers handlers share
 * for bodies, paging and replies. One file per resource implements the
 * handlers (auth.c, tenants.c, users.c, apikeys.c, health.c).
 */
#ifndef ODX_API_H
#define ODX_API_H

#include <jansson.h>
#include <stdbool.h>

#include "auth/keyring.h"
#include "auth/revocation.h"
#include "auth/throttle.h"
#include "authz/authz.h"
#include "http/reply.h"
#include "http/server.h"
#include "store/store.h"

#define API_AUTH_MAX_BODY 8192
#define API_LIST_DEFAULT  50
#define API_LIST_MAX	  500
/* Imported reports: the webgoat pair in tests/data is 4 MiB; big images reach tens of MiB. */
#define API_SCAN_IMPORT_MAX_BODY (32 * 1024 * 1024)

struct api_trail;
struct audit_log;
struct node_registry;
struct actions;
struct sched;
struct secrets_keyring;
struct x509_ca;
struct api_scans;

struct api {
	struct store *store;
	struct api_trail *trail; /* the way to the audit log (trail.c) */
	struct audit_log *audit;
	struct keyring *keyring;
	struct throttle *throttle;
	struct revocation *revocation;
	/* Nodes (docs/nodes.md): the inventory, the CA that certifies agents. */
	struct node_registry *nodes;
	struct x509_ca *ca;
	char ca_fingerprint[65];
	int64_t agent_cert_lifetime_s;
	int heartbeat_interval_s;
	struct sched *sched; /* deployments' containers on nodes (docs/deployments.md) */
	struct actions *actions; /* what the API asks of agents (container logs) */
	struct secrets_keyring *secrets; /* seals and opens secret values (docs/secrets.md) */
	/* Scanning (docs/scanning.md): the engines' programs (a path or a name in PATH), how long
	 * one may run, and the queue of scans the worker runs (scans.c). */
	const char *scan_trivy, *scan_grype;
	int scan_timeout_s;
	int64_t scan_rescan_floor_s; /* shortest rescan interval a tenant may ask for */
	struct api_scans *scans;
};

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

/* The http_server_config.dispatch of odysseusd. */
void api_dispatch(struct http_exchange *ex);

/* The verified caller of the current request (NULL on public routes). */
const struct principal *api_principal(const struct http_exchange *ex);
/* Parses the JSON object body; on failure replies 400/415 and returns < 0. */
int api_body(struct http_exchange *ex, json_t **out);
struct jdoc;
/* api_body for big bodies (the scan import): a read-only core/jdoc.h document nested at most
 * max_depth deep. */
int api_body_doc(struct http_exchange *ex, unsigned max_depth, struct jdoc **out);
/* jsonx_unpack on the body; on failure replies 400 with the reason and returns < 0. */
int api_unpack(struct http_exchange *ex, json_t *body, const char *fmt, ...);
/*
 * Reads ?limit= and ?cursor= (decoding the cursor into after[after_len];
 * "" when absent); replies 400 and returns < 0 on bad
 * ones. The cursor must be an id with id_prefix, or (id_prefix NULL) a name.
 */
int api_list_params(struct http_exchange *ex, const char *id_prefix, int *limit, char *after,
		    size_t after_len);
struct evkeyvalq;
/* Parses the query string into q (empty when there is none); replies 400 and returns < 0 when
 * it is malformed. Free with evhttp_clear_headers. */
int api_query(struct http_exchange *ex, struct evkeyvalq *q);
/* Reads ?limit= from parsed query q (default 50, 1..500); replies 400 on a bad one. */
int api_limit_param(struct http_exchange *ex, struct evkeyvalq *q, int *limit);
/* Replies 200 {"items": first `limit` of items, "next_cursor"}; consumes items. */
void api_reply_list(struct http_exchange *ex, json_t *items, int limit);
/* api_reply_list for items whose cursor key is `key` (e.g. "name") instead of "id". */
void api_reply_list_by(struct http_exchange *ex, json_t *items, int limit, const char *key);
/* Replaces subject's permission sets with names (a JSON array); replies 400 on bad ones. */
int api_assign_permsets(struct http_exchange *ex, const char *subject, json_t *names);
/* Logs a denial or a security event to the daemon's log (the audit log gets it too). */
void api_log_security(const struct http_exchange *ex, const char *event, const char *reason);

/* Starts the thread that writes queued records (denials, retries) to log (see trail.c). */
int api_trail_start(struct audit_log *log, struct store *store, struct api_trail **out);
/* Writes out queued denials and stops the thread; NULL ok. */
void api_trail_stop(struct api_trail *t);
/* Queues the denial of this request for the audit log (any thread; does not wait). */
void api_trail_denied(struct http_exchange *ex);
/*
 * Records the outcome of a request on a route with an action, durably; on
 * failure turns a success reply into 503 and queues the record until the
 * log writes again. Waits: worker threads only.
 */
void api_trail_result(struct http_exchange *ex);
/*
 * Before an audited handler runs: false (503 set) while the audit log is
 * failing, so nothing changes that could not be recorded.
 */
bool api_trail_gate(struct http_exchange *ex);

/*
 * Queues a record of something more this request did (an override, a
 * container's death an agent reports): the request's actor, tenant, id and
 * source with this action, resource and reason, outcome success. Any thread;
 * waits while the queue is full.
 */
void api_trail_event(struct http_exchange *ex, const char *action, const char *resource,
		     const char *reason);

struct audit_record;
/* Queues a record made outside a request (the system's own events); waits while the queue is
 * full. */
void api_trail_record(struct api *api, const struct audit_record *r);
/* Queues a record of a refused TLS handshake on the agent API; never waits (a full queue drops it
 * and says so in the log). */
void api_trail_tls_rejected(void *app, const char *source_ip, const char *reason);

/* Handlers. */
void api_healthz(struct http_exchange *ex);
void api_readyz(struct http_exchange *ex);
void api_metrics(struct http_exchange *ex);
void api_auth_login(struct http_exchange *ex);
void api_auth_refresh(struct http_exchange *ex);
void api_auth_logout(struct http_exchange *ex);
void api_auth_jwks(struct http_exchange *ex);
void api_me(struct http_exchange *ex);
void api_tenants_list(struct http_exchange *ex);
void api_tenants_create(struct http_exchange *ex);
void api_tenants_get(struct http_exchange *ex);
void api_tenants_update(struct http_exchange *ex);
void api_tenants_delete(struct http_exchange *ex);
void api_tenants_set_quotas(struct http_exchange *ex);
void api_quotas_get(struct http_exchange *ex);
void api_users_list(struct http_exchange *ex);
void api_users_create(struct http_exchange *ex);
void api_users_get(struct http_exchange *ex);
void api_users_update(struct http_exchange *ex);
void api_users_delete(struct http_exchange *ex);
void api_apikeys_list(struct http_exchange *ex);
void api_apikeys_create(struct http_exchange *ex);
void api_apikeys_delete(struct http_exchange *ex);
void api_audit_list(struct http_exchange *ex);
void api_audit_checkpoints(struct http_exchange *ex);
void api_audit_proof(struct http_exchange *ex);
void api_audit_export(struct http_exchange *ex);
void api_nodes_token_create(struct http_exchange *ex);
int api_deployment_owner(struct http_exchange *ex, char *owner, size_t size);
void api_deployments_list(struct http_exchange *ex);
void api_deployments_create(struct http_exchange *ex);
void api_deployments_get(struct http_exchange *ex);
void api_deployments_update(struct http_exchange *ex);
void api_deployments_scale(struct http_exchange *ex);
void api_deployments_restart(struct http_exchange *ex);
void api_deployments_rollback(struct http_exchange *ex);
void api_deployments_delete(struct http_exchange *ex);
void api_deployments_revisions(struct http_exchange *ex);
void api_containers_list(struct http_exchange *ex);
void api_containers_get(struct http_exchange *ex);
void api_containers_restart(struct http_exchange *ex);
void api_containers_stop(struct http_exchange *ex);
void api_containers_logs(struct http_exchange *ex);
void api_secrets_list(struct http_exchange *ex);
void api_secrets_get(struct http_exchange *ex);
void api_secrets_put(struct http_exchange *ex);
void api_secrets_rotate(struct http_exchange *ex);
void api_secrets_grants(struct http_exchange *ex);
void api_secrets_delete(struct http_exchange *ex);
/* Replaces, one replica at a time, the deployments that receive the secret (after a rotation). */
void api_secrets_restart_users(struct api *api, const char *tenant, const char *name);
/* Rotates the secrets whose policy says so (the daemon's loop calls it). */
void api_secrets_rotate_due(struct api *api);
/* 0 when every secret in names exists and is granted to deployment; else 400 set. */
int api_secrets_check_grants(struct http_exchange *ex, const char *deployment, const json_t *names);
void api_nodes_list(struct http_exchange *ex);
void api_nodes_get(struct http_exchange *ex);
void api_nodes_delete(struct http_exchange *ex);
void api_scans_create(struct http_exchange *ex);
void api_scans_import(struct http_exchange *ex);
void api_scans_list(struct http_exchange *ex);
void api_scans_get(struct http_exchange *ex);
void api_scan_policies_list(struct http_exchange *ex);
void api_scan_policies_get(struct http_exchange *ex);
void api_scan_policies_create(struct http_exchange *ex);
void api_scan_policies_put(struct http_exchange *ex);
void api_scan_policies_delete(struct http_exchange *ex);
void api_scan_settings_get(struct http_exchange *ex);
void api_scan_settings_put(struct http_exchange *ex);
/* Starts the scan worker and queues the scans a restart interrupted. */
int api_scans_start(struct api *api);
/* Stops the worker (a running engine is waited for); NULL scans ok. */
void api_scans_stop(struct api *api);
/* Queues a rescan of every deployed image whose newest scan is older than its tenant's interval. */
void api_scans_rescan_due(struct api *api);
/*
 * The tenant's scan policies on the image a deployment is about to run
 * (create, update, rollback): 0 when it may run — no policy blocks it, or
 * policy_override ({"justification"}, NULL when absent) came from an Admin
 * or Operator and is recorded and audited; otherwise < 0 with the reply set
 * (422 blocked_by_policy listing the findings, 403, 400).
 */
int api_scan_gate(struct http_exchange *ex, const char *deployment, const char *image_ref,
		  json_t *policy_override);
void api_permsets_list(struct http_exchange *ex);
void api_permsets_get(struct http_exchange *ex);
void api_permsets_create(struct http_exchange *ex);
void api_permsets_put(struct http_exchange *ex);
void api_permsets_delete(struct http_exchange *ex);

#endif
