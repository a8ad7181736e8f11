/* apikeys.c — a tenant's API keys (Admin). The secret is shown once, in the 201. */
#include <string.h>

#include "api/api.h"
#include "auth/apikey.h"
#include "authz/permset.h"
#include "core/err.h"

static bool name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n < 1 || n > APIKEY_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

void api_apikeys_list(struct http_exchange *ex)
{
	struct api *api = ex->app;
	int limit;
	char after[ID_MAX_LEN];
	if (api_list_params(ex, "key", &limit, after, sizeof(after)) < 0)
		return;
	json_t *items;
	int rc = apikey_list(api->store, api_principal(ex)->tenant_id, after, limit, &items);
	if (rc < 0)
		reply_odx_error(ex, rc, NULL);
	else
		api_reply_list(ex, items, limit);
}

void api_apikeys_create(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const struct principal *p = api_principal(ex);
	json_t *body, *sets = NULL;
	const char *name, *role_s;
	if (api_body(ex, &body) < 0)
		return;
	if (api_unpack(ex, body, "{s:s, s:s, s?o}", "name", &name, "role", &role_s,
		       "permission_sets", &sets) < 0)
		goto out;
	enum role role = role_parse(role_s);
	if (!name_valid(name)) {
		reply_error(ex, 400, "bad_request", "name must be 1-64 printable characters");
		goto out;
	}
	if (!role_is_tenant_role(role)) {
		reply_error(ex, 400, "bad_request",
			    "role must be one of admin, operator, developer, readonly");
		goto out;
	}
	struct apikey k;
	char text[APIKEY_TEXT_LEN];
	int rc = apikey_create(api->store, p->tenant_id, name, role, p->id, &k, text);
	if (rc < 0) {
		reply_odx_error(ex, rc, NULL);
		goto out;
	}
	/* Assigned before the key is shown: a key never works without the limits meant for it. */
	if (sets && api_assign_permsets(ex, k.id, sets) < 0) {
		apikey_delete(api->store, p->tenant_id, k.id);
		explicit_bzero(text, sizeof(text));
		goto out;
	}
	snprintf(ex->audit_resource, sizeof(ex->audit_resource), "/v1/api-keys/%s", k.id);
	json_t *res = apikey_to_json(&k);
	json_object_set_new(res, "key", json_string(text));
	explicit_bzero(text, sizeof(text));
	reply_json(ex, 201, res);
out:
	json_decref(body);
}

void api_apikeys_delete(struct http_exchange *ex)
{
	struct api *api = ex->app;
	const char *tenant = api_principal(ex)->tenant_id;
	int rc = apikey_delete(api->store, tenant, ex->params[0]);
	if (rc == 0)
		rc = permset_forget(api->store, tenant, ex->params[0]);
	if (rc < 0)
		reply_odx_error(ex, rc, rc == ODX_ENOTFOUND ? "API key not found" : NULL);
	else
		reply_no_content(ex);
}
