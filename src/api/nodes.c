/*
 * nodes.c — the node inventory and enrollment tokens (platform
 * administrator; docs/nodes.md). The token is shown once, in the 201.
 */
#include <string.h>

#include "api/api.h"
#include "auth/enroll.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "sched/node.h"

void api_nodes_token_create(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *body;
	json_int_t ttl = ENROLL_TTL_MAX_S;
	const char *name = NULL;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s?I, s?s}", "ttl_seconds", &ttl, "node_name", &name) < 0)
		goto out;
	if (ttl < 1 || ttl > ENROLL_TTL_MAX_S) {
		reply_error(ex, 400, "bad_request", "ttl_seconds must be 1 to 86400");
		goto out;
	}
	if (name && !enroll_name_valid(name)) {
		reply_error(ex, 400, "bad_request",
			    "node_name: 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
		goto out;
	}
	struct enroll_token t;
	char text[ENROLL_TOKEN_LEN], exp[TIME_RFC3339_LEN];
	int rc = enroll_token_create(api->store, api->ca_fingerprint, ttl, name,
				     api_principal(ex)->id, &t, text);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	snprintf(ex->audit_resource, sizeof(ex->audit_resource),
		 "/v1/nodes/enrollment-tokens/%s", t.id);
	time_format_rfc3339(t.expires_at, exp);
	reply_json(ex, 201,
		   json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", t.id, "token", text, "expires_at",
			     exp, "node_name", name ? json_string(name) : json_null(),
			     "ca_fingerprint", api->ca_fingerprint));
	explicit_bzero(text, sizeof(text));
out:
	json_decref(body);
}

void api_nodes_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int limit;
	char after[ID_MAX_LEN];
	if (api_list_params(ex, "nod", &limit, after, sizeof(after)) < 0)
		return;
	json_t *items;
	int rc = node_registry_list(api->nodes, after[0] ? after : NULL, limit, time_now_ns(),
				    &items);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		api_reply_list(ex, items, limit);
}

void api_nodes_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *node;
	int rc = random_id_valid("nod", ex->params[0])
		     ? node_registry_get(api->nodes, ex->params[0], time_now_ns(), &node)
		     : ODX_ENOTFOUND;
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such node" : NULL);
	else
		reply_json(ex, 200, node);
}

/* Revokes: the node's next request on the agent API is refused. */
void api_nodes_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	struct node_info n;
	int rc = random_id_valid("nod", ex->params[0])
		     ? node_registry_revoke(api->nodes, api->store, ex->params[0], &n)
		     : ODX_ENOTFOUND;
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "no such node" : NULL);
	else
		reply_no_content(ex);
}
