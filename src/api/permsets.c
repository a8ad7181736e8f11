/* permsets.c — a tenant's custom permission sets (Admin). */
#include <string.h>

#include "api/api.h"
#include "authz/permset.h"
#include "core/err.h"

/* Validates a rules array the way evaluation will read it; replies 400 on a bad one. */
static int check_rules(struct http_exchange *ex, const char *name, json_t *rules)
{
	struct permset_rules parsed;
	char err[160];
	int rc = permset_rules_parse(rules, name, &parsed, err, sizeof(err));
	if (rc == ODX_EINVAL)
		reply_error(ex, 400, "bad_request", err);
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		permset_rules_done(&parsed);
	return rc;
}

void api_permsets_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int limit;
	char after[PERMSET_NAME_MAX + 1];
	if (api_list_params(ex, NULL, &limit, after, sizeof(after)) < 0)
		return;
	json_t *items;
	int rc = permset_list(api->store, api_principal(ex)->tenant_id, after, limit, &items);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		api_reply_list_by(ex, items, limit, "name");
}

void api_permsets_get(struct http_exchange *ex)
{
	struct api *api = ex->app;
	json_t *set;
	int rc = permset_get(api->store, api_principal(ex)->tenant_id, ex->params[0], &set);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "permission set not found" : NULL);
	else
		reply_json(ex, 200, set);
}

/* POST (create, name in the body) and PUT (replace, name in the path) share this. */
static void put_set(struct http_exchange *ex, const char *name, json_t *rules, bool create)
{
	struct api *api = ex->app;
	if (permset_name_validate(name) < 0) {
		reply_error(ex, 400, "bad_request", "name must be 1-64 of a-z, 0-9 and '-'");
		return;
	}
	if (check_rules(ex, name, rules) < 0)
		return;
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/permission-sets/%s", name);
	json_t *set;
	int rc = permset_put(api->store, api_principal(ex)->tenant_id, name, rules, create, &set);
	if (rc == ODX_ECONFLICT)
		reply_error(ex, 409, "conflict", "a permission set with this name exists");
	else if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "permission set not found" : NULL);
	else
		reply_json(ex, create ? 201 : 200, set);
}

void api_permsets_create(struct http_exchange *ex)
{
	json_t *body, *rules;
	const char *name;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s, s:o}", "name", &name, "rules", &rules) == 0)
		put_set(ex, name, rules, true);
	json_decref(body);
}

void api_permsets_put(struct http_exchange *ex)
{
	json_t *body, *rules;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:o}", "rules", &rules) == 0)
		put_set(ex, ex->params[0], rules, false);
	json_decref(body);
}

void api_permsets_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int rc = permset_delete(api->store, api_principal(ex)->tenant_id, ex->params[0]);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "permission set not found" : NULL);
	else
		reply_no_content(ex);
}

int api_assign_permsets(struct http_exchange *ex, const char *subject, json_t *names)
{
	struct api *api = ex->app;
	const char *missing = NULL;
	int rc = permset_assign(api->store, api_principal(ex)->tenant_id, subject, names, &missing);
	if (rc == ODX_EINVAL)
		reply_error(ex, 400, "bad_request",
			    "permission_sets must be an array of at most 16 set names");
	else if (rc == ODX_ENOTFOUND && missing)
		reply_error(ex, 400, "bad_request",
			    "permission_sets names a set that does not exist");
	else if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	return rc;
}
