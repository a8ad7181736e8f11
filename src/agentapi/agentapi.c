/* agentapi.c — see agentapi.h. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "agentapi/agentapi.h"
#include "audit/audit.h"
#include "auth/enroll.h"
#include "core/encoding.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "crypto/x509.h"
#include "sched/actions.h"
#include "sched/node.h"
#include "sched/scheduler.h"
#include "secrets/seal.h"
#include "secrets/secret.h"

#define B HTTP_ROUTE_BLOCKING
#define CSR_BODY_MAX (X509_CSR_MAX + 4096)

/* clang-format off: a table reads best as one */
const struct http_route agentapi_routes[] = {
	{.method = HTTP_POST, .pattern = "/agent/v1/enroll", .handler = agentapi_enroll,
	 .perm = PERM_PUBLIC, .max_body = CSR_BODY_MAX, .flags = B, .action = "node.enroll"},
	{.method = HTTP_POST, .pattern = "/agent/v1/renew", .handler = agentapi_renew,
	 .perm = PERM_AGENT, .max_body = CSR_BODY_MAX, .flags = B, .action = "node.renew"},
	{.method = HTTP_POST, .pattern = "/agent/v1/status", .handler = agentapi_status,
	 .perm = PERM_AGENT, .max_body = 65536},
	{.method = HTTP_GET, .pattern = "/agent/v1/assignments", .handler = agentapi_assignments,
	 .perm = PERM_AGENT},
	{.method = HTTP_GET, .pattern = "/agent/v1/actions", .handler = agentapi_actions,
	 .perm = PERM_AGENT},
	{.method = HTTP_POST, .pattern = "/agent/v1/actions/{id}/result",
	 .handler = agentapi_action_result, .perm = PERM_AGENT},
	{.method = HTTP_GET, .pattern = "/agent/v1/secrets/{container}", .handler = agentapi_secrets,
	 .perm = PERM_AGENT, .flags = B, .action = "secret.deliver"},
};
/* clang-format on */
const size_t agentapi_nroutes = sizeof(agentapi_routes) / sizeof(agentapi_routes[0]);

/* The caller, as the TLS layer verified it and the inventory still knows it. */
static bool authenticate(struct api *api, struct http_exchange *ex, struct principal *p)
{
	p->kind = PRINCIPAL_AGENT;
	memcpy(p->id, ex->peer_id, sizeof(p->id) < sizeof(ex->peer_id) ? sizeof(p->id) : sizeof(ex->peer_id));
	p->id[sizeof(p->id) - 1] = '\0';
	if (ex->route->perm == PERM_PUBLIC)
		return true;
	const char *why = !ex->peer_id[0] ? "no client certificate"
			  : node_registry_live(api->nodes, ex->peer_id) < 0 ? "node revoked"
									     : NULL;
	if (!why)
		return true;
	snprintf(ex->audit_reason, sizeof(ex->audit_reason), "%s",
		 ex->peer_id[0] ? "node_revoked" : "unauthenticated");
	api_log_security(ex, "denied", ex->audit_reason);
	reply_error(ex, 401, "unauthorized", why);
	return false;
}

void agentapi_dispatch(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct principal p;
	memset(&p, 0, sizeof(p));
	ex->auth = &p;
	bool ok = authenticate(api, ex, &p);
	if (ok && ex->route->action && !api_trail_gate(ex))
		ok = false;
	if (ok)
		ex->route->handler(ex);
	if (ex->route->action)
		api_trail_result(ex);
	else if (ex->status == 401 || ex->status == 403)
		api_trail_denied(ex);
	ex->auth = NULL;
}

/* The agent's own principal, which enrollment fills in once the node exists. */
static struct principal *caller(struct http_exchange *ex)
{
	return (struct principal *)ex->auth;
}

/* Issues a certificate for node id from the request's CSR; replies 400 on a bad one. */
static int issue(struct http_exchange *ex, const char *csr, const char *id, char **pem,
		 int64_t *not_after, char fp[static 65])
{
	struct api *api = ex->app;
	int rc = x509_ca_issue_client(api->ca, csr, strlen(csr), id, api->agent_cert_lifetime_s,
				      pem, not_after);
	if (rc == ODX_EINVAL) {
		reply_error(ex, 400, "bad_request",
			    "csr must be one PEM certificate request of an EC P-256 or Ed25519 key");
		return rc;
	}
	if (rc == 0 && (rc = x509_cert_pem_fingerprint(*pem, strlen(*pem), fp)) < 0) {
		free(*pem);
		*pem = NULL;
	}
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	return rc;
}

/* {certificate, ca_bundle, not_after} plus extra fields of the caller. */
static json_t *cert_reply(struct api *api, const char *pem, int64_t not_after)
{
	char *bundle = NULL, exp[TIME_RFC3339_LEN];
	if (x509_ca_bundle_pem(api->ca, &bundle) < 0)
		return NULL;
	time_format_rfc3339(not_after * NSEC_PER_SEC, exp);
	json_t *o = json_pack("{s:s, s:s, s:s}", "certificate", pem, "ca_bundle", bundle,
			      "not_after", exp);
	free(bundle);
	return o;
}

/* Records the node and uses the token up, both or neither. */
static int enroll_commit(struct api *api, const char *token_id, const struct node_info *n)
{
	struct store_tx *tx;
	int rc = store_tx_begin(api->store, NULL, STORE_WRITE, &tx);
	if (rc < 0)
		return rc;
	rc = enroll_token_consume(tx, token_id, n->id, time_now_ns());
	if (rc == 0)
		rc = node_insert(tx, n);
	if (rc < 0) {
		store_tx_abort(tx);
		return rc;
	}
	return store_tx_commit(tx);
}

static int enroll_name(struct http_exchange *ex, const struct enroll_token *t, const char *asked,
		       const char *id, char name[static NODE_NAME_MAX + 1])
{
	if (asked && !enroll_name_valid(asked)) {
		reply_error(ex, 400, "bad_request",
			    "name: 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
		return ODX_EINVAL;
	}
	if (t->node_name[0] && asked && strcmp(asked, t->node_name) != 0) {
		reply_error(ex, 400, "bad_request", "this token is bound to another node name");
		return ODX_EINVAL;
	}
	if (t->node_name[0])
		snprintf(name, NODE_NAME_MAX + 1, "%s", t->node_name);
	else if (asked)
		snprintf(name, NODE_NAME_MAX + 1, "%s", asked);
	else
		snprintf(name, NODE_NAME_MAX + 1, "node-%.8s", id + 4);
	return 0;
}

void agentapi_enroll(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body = NULL;
	const char *token, *csr, *asked = NULL;
	char *pem = NULL;
	if (api_body(ex, &body) < 0 ||
	    api_unpack(ex, body, "{s:s, s:s, s?s}", "token", &token, "csr", &csr, "name", &asked) <
		0)
		goto out;
	struct enroll_token t;
	/* Who tried: the token it presented, when it has a token's shape. */
	char tid[ENROLL_ID_LEN];
	if (enroll_token_id(token, tid))
		snprintf(caller(ex)->id, sizeof(caller(ex)->id), "%s", tid);
	int rc = enroll_token_check(api->store, token, time_now_ns(), &t);
	if (rc == ODX_EAUTH) {
		snprintf(ex->audit_reason, sizeof(ex->audit_reason), "invalid_token");
		reply_error(ex, 401, "unauthorized", "invalid or expired enrollment token");
		goto out;
	}
	struct node_info n = {.enrolled_at = time_now_ns()};
	if (rc == 0)
		rc = random_id("nod", n.id);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	if (enroll_name(ex, &t, asked, n.id, n.name) < 0 ||
	    issue(ex, csr, n.id, &pem, &n.cert_not_after, n.cert_fingerprint) < 0)
		goto out;
	n.cert_not_after *= NSEC_PER_SEC;
	rc = enroll_commit(api, t.id, &n);
	if (rc == ODX_EAUTH) {
		snprintf(ex->audit_reason, sizeof(ex->audit_reason), "invalid_token");
		reply_error(ex, 401, "unauthorized", "invalid or expired enrollment token");
		goto out;
	}
	if (rc == ODX_ECONFLICT) {
		reply_error(ex, 409, "conflict", "a node with this name is enrolled");
		goto out;
	}
	if (rc == 0)
		rc = node_registry_add(api->nodes, &n, time_now_ns());
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	snprintf(caller(ex)->id, sizeof(caller(ex)->id), "%s", n.id);
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/nodes/%s", n.id);
	json_t *res = cert_reply(api, pem, n.cert_not_after / NSEC_PER_SEC);
	if (res && json_object_set_new(res, "node_id", json_string(n.id)) == 0 &&
	    json_object_set_new(res, "name", json_string(n.name)) == 0 &&
	    json_object_set_new(res, "heartbeat_interval_s",
				json_integer(api->heartbeat_interval_s)) == 0)
		reply_json(ex, 201, res);
	else {
		json_decref(res);
		reply_odx_error(ex, ODX_ENOMEM, NULL);
	}
out:
	free(pem);
	json_decref(body);
}

void agentapi_renew(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	json_t *body = NULL;
	const char *csr;
	char *pem = NULL, fp[65];
	int64_t not_after;
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/nodes/%s", p->id);
	if (api_body(ex, &body) < 0 || api_unpack(ex, body, "{s:s}", "csr", &csr) < 0 ||
	    issue(ex, csr, p->id, &pem, &not_after, fp) < 0)
		goto out;
	int rc = node_registry_renewed(api->nodes, api->store, p->id, not_after * NSEC_PER_SEC, fp);
	if (rc == ODX_ENOTFOUND) {
		reply_error(ex, 401, "unauthorized", "node revoked");
		goto out;
	}
	json_t *res = rc == 0 ? cert_reply(api, pem, not_after) : NULL;
	if (res)
		reply_json(ex, 200, res);
	else
		reply_odx_error(ex, rc < 0 ? rc : ODX_ENOMEM, NULL);
out:
	free(pem);
	json_decref(body);
}

/* What the heartbeat's "containers" and "events" may hold (docs/deployments.md). */
static int check_report(struct http_exchange *ex, json_t *containers, json_t *events)
{
	if ((containers && (!json_is_array(containers) || json_array_size(containers) > 500)) ||
	    (events && (!json_is_array(events) || json_array_size(events) > 100))) {
		reply_error(ex, 400, "bad_request",
			    "containers: at most 500 objects; events: at most 100 objects");
		return ODX_EINVAL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(containers, i, v)
	{
		if (!json_is_object(v) || !json_is_string(json_object_get(v, "container")) ||
		    !json_is_string(json_object_get(v, "state"))) {
			reply_error(ex, 400, "bad_request", "each container needs container and state");
			return ODX_EINVAL;
		}
	}
	return 0;
}

/* Container events worth the audit log: a crash, an out-of-memory kill. */
static void audit_events(struct http_exchange *ex, const json_t *events)
{
	size_t i;
	json_t *v;
	json_array_foreach(events, i, v)
	{
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *ctr = json_string_value(json_object_get(v, "container"));
		if (!type || !ctr || (strcmp(type, "die") != 0 && strcmp(type, "oom") != 0) ||
		    !random_id_valid("ctr", ctr))
			continue;
		char resource[96], reason[48], action[32];
		snprintf(resource, sizeof(resource), "/v1/containers/%s", ctr);
		snprintf(action, sizeof(action), "container.%s", type);
		snprintf(reason, sizeof(reason), "exit code %lld",
			 (long long)json_integer_value(json_object_get(v, "exit_code")));
		api_trail_event(ex, action, resource, reason);
	}
}

void agentapi_status(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	json_t *body = NULL, *containers = NULL, *events = NULL;
	const char *version, *root = NULL;
	json_int_t cpus, mem, disk, umem, udisk;
	double cpu;
	if (api_body(ex, &body) < 0 ||
	    api_unpack(ex, body, "{s:s, s:{s:I, s:I, s:I}, s:{s:F, s:I, s:I}, s?s, s?o, s?o}",
		       "agent_version", &version, "capacity", "cpus", &cpus, "memory_bytes", &mem,
		       "disk_bytes", &disk, "usage", "cpu_percent", &cpu, "memory_bytes", &umem,
		       "disk_bytes", &udisk, "docker_root", &root, "containers", &containers,
		       "events", &events) < 0)
		goto out;
	if (cpus < 0 || mem < 0 || disk < 0 || umem < 0 || udisk < 0 || !(cpu >= 0) ||
	    strlen(version) > 64 || (root && strlen(root) > 4096)) {
		reply_error(ex, 400, "bad_request", "numbers must not be negative; strings are short");
		goto out;
	}
	if (check_report(ex, containers, events) < 0)
		goto out;
	/* The inventory keeps the node's own figures; containers go to the scheduler. */
	json_t *status = json_pack("{s:s, s:O, s:O, s:o}", "agent_version", version, "capacity",
				   json_object_get(body, "capacity"), "usage",
				   json_object_get(body, "usage"), "docker_root",
				   root ? json_string(root) : json_null());
	int rc = status ? node_registry_heartbeat(api->nodes, p->id, status, time_now_ns())
			: ODX_ENOMEM;
	json_decref(status);
	if (rc == ODX_ENOTFOUND) {
		reply_error(ex, 401, "unauthorized", "node revoked");
		goto out;
	}
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	if (api->sched)
		sched_report(api->sched, p->id, containers);
	audit_events(ex, events);
	reply_json(ex, 200, json_pack("{s:i}", "heartbeat_interval_s", api->heartbeat_interval_s));
out:
	json_decref(body);
}

/*
 * The node's desired state: at once when it changed since `since`, else
 * held until it changes (http_server_wake with the node id) or `wait` ends.
 */
void agentapi_assignments(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	int64_t wait = 30, since = 0;
	const char *v;
	if ((ex->query && evhttp_parse_query_str(ex->query, &q) != 0) ||
	    ((v = evhttp_find_header(&q, "wait")) && parse_int64(v, 0, AGENTAPI_WAIT_MAX_S, &wait) < 0) ||
	    ((v = evhttp_find_header(&q, "since")) && parse_int64(v, 0, INT64_MAX, &since) < 0)) {
		reply_error(ex, 400, "bad_request", "wait must be 0 to 60 seconds; since a revision");
		goto out;
	}
	json_t *res = NULL;
	int rc = api->sched ? sched_assignments(api->sched, p->id, &res)
			    : ((res = json_pack("{s:i, s:[]}", "revision", 0, "assignments")) ? 0 : ODX_ENOMEM);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	int64_t rev = json_integer_value(json_object_get(res, "revision"));
	reply_json(ex, 200, res);
	if (rev <= since && wait > 0) {
		ex->hold_ms = (int)wait * 1000;
		snprintf(ex->hold_key, sizeof(ex->hold_key), "a:%s", p->id);
	}
out:
	evhttp_clear_headers(&q);
}

/* The node's waiting actions; held until one comes (or `wait` ends) when there are none. */
void agentapi_actions(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	int64_t wait = 30;
	const char *v;
	if ((ex->query && evhttp_parse_query_str(ex->query, &q) != 0) ||
	    ((v = evhttp_find_header(&q, "wait")) && parse_int64(v, 0, AGENTAPI_WAIT_MAX_S, &wait) < 0)) {
		evhttp_clear_headers(&q);
		reply_error(ex, 400, "bad_request", "wait must be 0 to 60 seconds");
		return;
	}
	evhttp_clear_headers(&q);
	json_t *list = actions_take(api->actions, p->id);
	bool none = list && json_array_size(list) == 0;
	reply_json(ex, 200, json_pack("{s:o}", "actions", list ? list : json_array()));
	if (none && wait > 0) {
		ex->hold_ms = (int)wait * 1000;
		snprintf(ex->hold_key, sizeof(ex->hold_key), "x:%s", p->id);
	}
}

/* {"output_b64": "..."} or {"error": "not_found"|"..."} for one of this node's actions. */
void agentapi_action_result(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body = NULL;
	const char *err = NULL, *b64 = NULL;
	if (api_body(ex, &body) < 0 ||
	    api_unpack(ex, body, "{s?s, s?s}", "error", &err, "output_b64", &b64) < 0)
		goto out;
	size_t cap = b64 ? strlen(b64) / 4 * 3 + 3 : 1, len = 0;
	uint8_t *raw = malloc(cap);
	int rc = raw ? 0 : ODX_ENOMEM;
	if (rc == 0 && !err && (!b64 || b64url_decode(b64, strlen(b64), raw, cap, &len) < 0))
		rc = ODX_EINVAL;
	if (rc == 0)
		rc = actions_result(api->actions, api_principal(ex)->id, ex->params[0],
				    err ? (strlen(err) ? err : "error") : NULL, raw, len);
	free(raw);
	if (rc == ODX_EINVAL)
		reply_error(ex, 400, "bad_request", "give error, or output_b64 (base64url)");
	else if (rc == ODX_ENOTFOUND)
		reply_error(ex, 404, "not_found", "no such action waiting for this node");
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		reply_no_content(ex);
out:
	json_decref(body);
}

/* One granted secret's current value, base64url, into bundle; audited by the caller's route. */
static int add_secret(struct api *api, const char *tenant, const char *dep, const char *name,
		      json_t *bundle)
{
	int rc = secret_granted(api->store, tenant, name, dep);
	uint8_t *value = NULL;
	size_t len = 0;
	int64_t version = 0;
	if (rc == 0)
		rc = secret_value(api->store, api->secrets, tenant, name, &value, &len, &version);
	if (rc < 0)
		return rc;
	char *b64 = malloc(b64url_encoded_len(len) + 1);
	if (b64)
		b64url_encode(value, len, b64);
	secrets_free_plain(value);
	json_t *o = b64 ? json_pack("{s:s, s:I, s:s}", "name", name, "version", (json_int_t)version,
				    "value_b64", b64)
			: NULL;
	if (b64) {
		explicit_bzero(b64, strlen(b64));
		free(b64);
	}
	return o && json_array_append_new(bundle, o) == 0 ? 0 : ODX_ENOMEM;
}

/*
 * GET /agent/v1/secrets/{container}: the granted secrets of a container placed
 * on the calling node, and nothing for any other (docs/secrets.md, Delivery).
 */
void agentapi_secrets(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *ctr = ex->params[0];
	char tenant[ID_MAX_LEN], dep[64];
	json_t *names = NULL, *bundle = json_array();
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/containers/%s", ctr);
	int rc = !bundle ? ODX_ENOMEM
		 : random_id_valid("ctr", ctr) && api->sched
		     ? sched_container_secrets(api->sched, api_principal(ex)->id, ctr, tenant, dep,
					       &names)
		     : ODX_ENOTFOUND;
	/* Recorded in the tenant's records, whatever the answer. */
	if (rc == 0)
		snprintf(ex->audit_tenant_id, sizeof(ex->audit_tenant_id), "%s", tenant);
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v) if (rc == 0) rc =
	    add_secret(api, tenant, dep, json_string_value(v), bundle);
	json_decref(names);
	if (rc == 0) {
		json_array_foreach(bundle, i, v)
			sched_note_delivery(api->sched, ctr,
					    json_string_value(json_object_get(v, "name")),
					    json_integer_value(json_object_get(v, "version")));
		reply_json(ex, 200, json_pack("{s:o}", "secrets", bundle));
		bundle = NULL;
	} else if (rc == ODX_ENOTFOUND) {
		reply_error(ex, 404, "not_found", "no such container on this node");
	} else if (rc == ODX_EFORBIDDEN) {
		reply_error(ex, 403, "forbidden",
			    "not this node's container, or a secret not granted to its deployment");
	} else {
		reply_odx_error(ex, rc, NULL);
	}
	json_decref(bundle);
}
